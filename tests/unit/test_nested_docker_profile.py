"""The seccomp profile of nested-Docker execute nodes is one profile, used by the testbed and molecule."""

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "roles/testbed_nodes/files/nested-docker-seccomp.json"


def test_molecule_execute_node_uses_the_testbed_profile():
    platforms = yaml.safe_load((REPO / "molecule/htcondor/molecule.yml").read_text())["platforms"]
    exec1 = next(p for p in platforms if p["name"] == "exec1")
    options = [o for o in exec1["security_opts"] if o.startswith("seccomp=")]
    assert len(options) == 1
    assert json.loads(options[0].removeprefix("seccomp=")) == json.loads(PROFILE.read_text())


def test_profile_blocks_kernel_level_escapes_but_allows_what_runc_needs():
    profile = json.loads(PROFILE.read_text())
    denied = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO" for name in rule["names"]}
    assert {"init_module", "finit_module", "kexec_load", "open_by_handle_at"} <= denied
    # Docker's default profile blocks these, and runc inside the node needs them.
    assert not denied & {"keyctl", "add_key", "request_key", "pivot_root"}
