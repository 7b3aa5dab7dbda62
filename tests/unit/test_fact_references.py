"""ansible.cfg turns off inject_facts_as_vars (a deep copy of every host's facts per task): no role,
playbook or template may read a fact as a top-level ansible_* variable, which would then be undefined."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("roles", "playbooks", "molecule", "inventories", "tests/integration/playbooks")
REFERENCE = re.compile(r"\bansible_([a-z0-9_]+)")


def fact_names() -> set[str]:
    """The facts Ansible gathers on this machine, as the names they had when injected (ansible_<fact>)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    environment["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    gathered = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.setup",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-o",
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    facts = json.loads(gathered.split("=>", 1)[1])["ansible_facts"]
    return {name.removeprefix("ansible_") for name in facts} - {"local"}  # ansible_local is always promoted


def test_inject_facts_as_vars_is_off():
    assert re.search(r"^inject_facts_as_vars = False$", (REPO / "ansible.cfg").read_text(), re.MULTILINE)


def test_no_role_playbook_or_template_reads_a_fact_as_a_top_level_variable():
    facts = fact_names()
    assert {"distribution", "default_ipv4", "hostname"} <= facts  # the lookup itself works
    offenders = []
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*")):
            if path.suffix not in {".yml", ".yaml", ".j2"} or not path.is_file():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for name in REFERENCE.findall(line):
                    if name in facts:
                        offenders.append(
                            f"{path.relative_to(REPO)}:{number}: ansible_{name} (use ansible_facts['{name}'])"
                        )
    assert offenders == []
