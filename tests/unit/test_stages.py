"""tests/support/stages.py: the suite's stages run in order, the first failure stops the run with its
status, and the output ends with the table of durations either way."""

import pytest

from tests.support import stages

MAKEFILE = """\
fast:
\t@echo fast ran
slow:
\t@sleep 1
broken:
\t@exit 3
never:
\t@echo never ran
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "Makefile").write_text(MAKEFILE)
    monkeypatch.chdir(tmp_path)


def test_every_stage_runs_and_the_table_comes_last(project, capfd):
    assert stages.main(["fast", "slow"]) == 0
    out = capfd.readouterr().out
    tail = out[out.index("Stage durations") :].splitlines()
    assert tail[1:3] == ["| stage | result | duration |", "|---|---|---|"]
    assert tail[3].startswith("| fast | passed |") and tail[4] == "| slow | passed | 1 s |"
    assert tail[-1].startswith("| total | |") and out.rstrip().endswith(tail[-1])


def test_the_first_failure_stops_the_run_with_its_status(project, capfd):
    assert stages.main(["fast", "broken", "never"]) == 2  # make says 2 when a recipe fails
    out = capfd.readouterr().out
    assert "never ran" not in out
    assert "| broken | FAILED (exit 2) |" in out and "| never | not run | 0 s |" in out
