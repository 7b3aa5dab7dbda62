"""The facility testbed shared by the integration tests: one site.yml converge, many checks.

Six nodes (head, submit1, exec1, exec2, storage1, services = issuer + registry + hub): the shape a
physicist's analysis needs end to end (two execute nodes so that one can be killed mid-run). The
XCache node of the demo testbed is left out; the storage molecule scenario covers it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.oidc import ResolvingAdapter
from tests.support.testbed import Run, docker_exec, free_subnet, make_inventory, run_playbook

# Unique per run: two runs on one Docker engine (a developer's and CI's) must never share nodes.
NAME = f"afci{os.getpid()}"
DOMAIN = "af.test"


@dataclass
class Facility:
    inventory: Path
    name: str
    dry_run: Run | None
    after_dry_run: dict
    first: Run | None

    @property
    def credentials(self) -> Path:
        return self.inventory / "credentials"

    def container(self, node: str) -> str:
        return f"{self.name}-{node}"

    def exec(self, node: str, command: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run `bash -c command` as root on a node (text output, never raises on failure)."""
        return subprocess.run(
            ["docker", "exec", self.container(node), "bash", "-c", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )


def pytest_collection_modifyitems(items):
    """Tests marked disruptive (they kill nodes) run after every other test of the session."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
def facility(tmp_path_factory):
    """Bring the testbed up, dry-run site.yml on the new nodes, then converge it once.

    AF_TEST_FACILITY_INVENTORY=<inventory of a converged testbed> reuses that one instead (a
    developer's loop: the site-level tests that need the first converge then skip).
    """
    reuse = os.environ.get("AF_TEST_FACILITY_INVENTORY")
    if reuse:
        inventory = Path(reuse).resolve()
        name = inventory.name
        yield Facility(inventory, name, None, {}, None)
        return
    subnet = free_subnet(range(200, 240))
    inventory = make_inventory(
        tmp_path_factory.mktemp("facility"), NAME, subnet, execute_nodes=2, drop_hosts=("xcache1",)
    )
    try:
        up = run_playbook("playbooks/testbed.yml", inventory)
        assert up.rc == 0, up.output[-3000:]
        dry_run = run_playbook("site.yml", inventory, "--check", "--diff")
        # What a dry run left behind on a node that was never converged (it must be nothing).
        after_dry_run = {
            "alice": docker_exec(f"{NAME}-head", "getent passwd alice").returncode,
            "tls_dir": docker_exec(f"{NAME}-head", "test -e /etc/af").returncode,
            "ca": (inventory / "credentials" / "site-ca" / "ca.key").exists(),
        }
        first = run_playbook("site.yml", inventory)
        yield Facility(inventory, NAME, dry_run, after_dry_run, first)
    finally:
        down = run_playbook("playbooks/testbed_down.yml", inventory)
        assert down.rc == 0, down.output[-3000:]


@pytest.fixture(scope="session")
def web(facility):
    """A factory of requests sessions that reach the services node by its name from the controller,
    as a physicist's browser would (TLS verified against the site CA, cookies kept)."""
    address_format = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    address = subprocess.run(
        ["docker", "inspect", "-f", address_format, facility.container("services")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    def session() -> requests.Session:
        new = requests.Session()
        new.trust_env = False  # REQUESTS_CA_BUNDLE (and proxies) from the environment would override verify
        new.verify = str(facility.credentials / "site-ca" / "ca.crt")
        new.mount("https://", ResolvingAdapter({f"services.{DOMAIN}": address}))
        return new

    return session
