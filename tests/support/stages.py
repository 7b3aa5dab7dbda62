"""Run stages (make targets) one after the other and end with a table of their durations.

    python tests/support/stages.py lint test-unit test-molecule test-integration    (make test)
    python tests/support/stages.py demo-image demo-up demo-site demo-analysis ...   (make demo)

The first stage that fails stops the run (as make would), and its exit status is this program's; the
table still comes last, so a CI log ends with where the time went and which stage failed.
"""

from __future__ import annotations

import subprocess
import sys
import time


def fmt(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def table(rows: list[tuple[str, str, float]]) -> str:
    """A Markdown table of (stage, result, seconds) rows and their total."""
    total = sum(seconds for _stage, _result, seconds in rows)
    lines = ["| stage | result | duration |", "|---|---|---|"]
    lines += [f"| {stage} | {result} | {fmt(seconds)} |" for stage, result, seconds in rows]
    lines.append(f"| total | | {fmt(total)} |")
    return "\n".join(lines)


def main(stages: list[str]) -> int:
    rows: list[tuple[str, str, float]] = []
    status = 0
    for stage in stages:
        started = time.monotonic()
        status = subprocess.run(["make", "--no-print-directory", stage], check=False).returncode
        rows.append((stage, "passed" if status == 0 else f"FAILED (exit {status})", time.monotonic() - started))
        if status:
            break
    rows += [(stage, "not run", 0.0) for stage in stages[len(rows) :]]
    print("\nStage durations\n" + table(rows), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
