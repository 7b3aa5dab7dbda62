"""Throwaway testbeds for tests and benchmarks: generated inventories, playbook runs, recaps.

A throwaway testbed is a copy of inventories/local with its own container names, network and
subnet (so it can run beside a developer's demo testbed) and any number of execute nodes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LOCAL_INVENTORY = REPO / "inventories" / "local"
VENV_BIN = Path(sys.executable).parent
RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


def make_inventory(
    directory: Path,
    name: str,
    subnet: str,
    execute_nodes: int = 2,
    empty_groups: tuple[str, ...] = (),
    *,
    drop_hosts: tuple[str, ...] = (),
) -> Path:
    """Copy the local testbed inventory under a new testbed name, with N execute nodes.

    Groups in empty_groups keep their name but lose their hosts, and hosts in drop_hosts leave every
    group (a smaller testbed for tests).
    """
    inventory = directory / name
    shutil.copytree(LOCAL_INVENTORY, inventory, ignore=shutil.ignore_patterns("credentials", "artifacts"))
    hosts_file = inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    groups = hosts["all"]["children"]["testbed"]["children"]
    groups["execute"]["hosts"] = {f"exec{i}": None for i in range(1, execute_nodes + 1)}
    for group in empty_groups:
        groups[group]["hosts"] = {}
    for group in groups.values():
        for host in drop_hosts:
            (group.get("hosts") or {}).pop(host, None)
    hosts_file.write_text(yaml.safe_dump(hosts, sort_keys=False))
    testbed_vars = inventory / "group_vars" / "all" / "testbed.yml"
    settings = yaml.safe_load(testbed_vars.read_text())
    settings.update(testbed_name=name, testbed_network_name=f"{name}-net", testbed_network_subnet=subnet)
    testbed_vars.write_text(yaml.safe_dump(settings, sort_keys=False))
    return inventory


def free_subnet(thirds: range = range(240, 255)) -> str:
    """A 172.30.<third>.0/24 that no Docker network on this engine overlaps.

    Other testbeds (a developer's demo, molecule scenarios, other projects' CI) share the engine.
    """
    used = []
    listed = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True, check=True)
    for network in listed.stdout.split():
        configs = subprocess.run(
            ["docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", network],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        used += [ipaddress.ip_network(subnet) for subnet in configs.split() if "." in subnet]
    for third in thirds:
        candidate = ipaddress.ip_network(f"172.30.{third}.0/24")
        if not any(candidate.overlaps(subnet) for subnet in used):
            return str(candidate)
    raise RuntimeError(f"no free subnet among 172.30.{thirds.start}-{thirds.stop - 1}.0/24: {used}")


def inventory_hosts(inventory: Path) -> list[str]:
    """Every host of a YAML inventory directory's hosts.yml, however deeply its groups nest."""
    hosts: list[str] = []
    pending = [yaml.safe_load((inventory / "hosts.yml").read_text())["all"]]
    while pending:
        group = pending.pop(0) or {}
        hosts += [host for host in group.get("hosts") or {} if host not in hosts]
        pending += list((group.get("children") or {}).values())
    return hosts


@dataclass
class Run:
    rc: int
    output: str
    seconds: float
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap.items()}

    def total_changed(self) -> int:
        return sum(self.changed.values())

    def changed_tasks(self, host: str) -> list[str]:
        """Names of the tasks and handlers that reported "changed" on host, in run order."""
        names: list[str] = []
        current = ""
        for line in self.output.splitlines():
            header = TASK_HEADER.match(line)
            if header:
                current = header["name"]
            elif line.startswith(f"changed: [{host}]") and (not names or names[-1] != current):
                names.append(current)
        return names


TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\] \*+$")


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    recap_start = output.rfind("PLAY RECAP")
    text = output[recap_start:] if recap_start >= 0 else ""
    return {
        match["host"]: {key: int(match[key]) for key in ("ok", "changed", "unreachable", "failed")}
        for match in RECAP_LINE.finditer(text)
    }


def ansible_env(inventory: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    if inventory is not None:
        # One fact cache per testbed: container addresses differ between testbeds.
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(inventory.parent / f"{inventory.name}.facts")
    env.update(extra)
    return env


def run_playbook(playbook: str, inventory: Path, *args: str, timeout: float = 1800, **env: str) -> Run:
    """Run ansible-playbook from the repository root; never raises on a failed play."""
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), playbook, *args]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=REPO,
        env=ansible_env(inventory, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    return Run(result.returncode, output, time.monotonic() - started, parse_recap(output))


def docker_exec(container: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True, check=False
    )


def testbed_name(inventory: Path) -> str:
    """The testbed_name of a (generated or local) testbed inventory."""
    return yaml.safe_load((inventory / "group_vars" / "all" / "testbed.yml").read_text())["testbed_name"]


@contextmanager
def converged_facility(inventory: Path | None, name: str, subnet: str) -> Iterator[tuple[Path, float | None]]:
    """For benchmarks: the given converged testbed inventory, or a new six-node facility testbed
    (head, submit1, exec1, exec2, storage1, services) converged with site.yml and torn down afterwards.
    Yields (inventory, seconds the site converge took, or None for a given inventory)."""
    if inventory is not None:
        yield inventory.resolve(), None
        return
    workdir = Path(tempfile.gettempdir()) / name
    workdir.mkdir(exist_ok=True)
    inventory = make_inventory(workdir, name, subnet, execute_nodes=2, drop_hosts=("xcache1",))
    try:
        up = run_playbook("playbooks/testbed.yml", inventory)
        assert up.rc == 0, up.output[-3000:]
        site = run_playbook("site.yml", inventory, timeout=3600)
        assert site.rc == 0, site.output[-5000:]
        yield inventory.resolve(), round(site.seconds, 1)
    finally:
        run_playbook("playbooks/testbed_down.yml", inventory)


RESULTS = REPO / "tests" / "benchmarks" / "results"


def write_result(benchmark: str, **fields: object) -> Path:
    """Write a benchmark's JSON (tests/benchmarks/results/<benchmark>.json): its name, when it ran, on
    what machine, then the benchmark's own fields in the given order. Prints and returns the path."""
    result = {
        "benchmark": benchmark,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **fields,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path
