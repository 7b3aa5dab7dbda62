#!/usr/bin/env python3
"""Benchmark: what a converge of the whole facility costs, stock Ansible and Mitogen side by side.

For each testbed size (default: the demo's 7-node shape, 2 execute nodes): bring a throwaway testbed
up, converge site.yml cold (Mitogen, the default), then warm, every host `changed=0`, with stock Ansible
and with Mitogen, one after the other. Every run has Ansible's profile_tasks and profile_roles callbacks
on; the JSON keeps each run's time per role and its slowest tasks. Prints a table and writes
tests/benchmarks/results/converge.json. Targets (issue 14): a warm converge of the default testbed
within 60 s; warm 8-execute-node / 2-execute-node ratio within 1.3.

  python tests/benchmarks/bench_converge.py [--execute 2 8] [--warm-runs 1]
  python tests/benchmarks/bench_converge.py --inventory inventories/local   # a converged testbed: warm runs only
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.testbed import (
    LOCAL_INVENTORY,
    REPO,
    free_subnet,
    inventory_hosts,
    make_inventory,
    run_playbook,
    testbed_name,
    write_result,
)

TARGET_WARM_SECONDS = 60.0
TARGET_RATIO = 1.3
STRATEGIES = {"stock": "linear", "mitogen": "mitogen_linear"}
PROFILE_ENV = {
    "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,ansible.posix.profile_roles",
    "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "15",
}
PROFILE_LINE = re.compile(r"^(?P<name>\S.*?) -{3,} (?P<seconds>\d+\.\d+)s\s*$")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(name: str) -> float:
    """CPU seconds used so far by every process with this command name (dockerd, containerd)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            if fields[0].split("(", 1)[1] == name:
                values = fields[1].split()
                total += (int(values[11]) + int(values[12])) / CLOCK_TICKS
        except (OSError, IndexError):
            continue
    return total


def _container_cpu_seconds(prefix: str) -> float:
    """CPU seconds used so far inside the testbed's containers (cgroup v1 cpuacct or v2 cpu.stat)."""
    ids = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=af.testbed={prefix}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    total = 0.0
    for container in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat")
        if v1.exists():
            total += int(v1.read_text()) / 1e9
        elif v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            total += int(usage["usage_usec"]) / 1e6
    return total


def parse_profile(output: str) -> dict[str, dict[str, float]]:
    """The TASKS RECAP and ROLES RECAP blocks of a run's output, as {name: seconds} per block."""
    blocks: dict[str, dict[str, float]] = {"tasks": {}, "roles": {}}
    current = None
    for line in output.splitlines():
        if line.startswith("TASKS RECAP"):
            current = "tasks"
        elif line.startswith("ROLES RECAP"):
            current = "roles"
        elif current:
            match = PROFILE_LINE.match(line)
            if match and match["name"] != "total":
                blocks[current][match["name"]] = float(match["seconds"])
    return blocks


def fact_cache(inventory: Path) -> dict[str, str]:
    """The demo testbed's fact cache is the Makefile's (warm runs gather no facts); a throwaway
    testbed's is its own (run_playbook's default)."""
    if inventory.resolve() == LOCAL_INVENTORY.resolve():
        return {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(REPO / ".cache" / "ansible-facts")}
    return {}


def profiled_converge(name: str, inventory: Path, strategy: str) -> dict:
    """Run site.yml under one strategy; its time, CPU split (controller, Docker engine, nodes), profile."""
    before = (
        resource.getrusage(resource.RUSAGE_CHILDREN),
        _process_cpu_seconds("dockerd") + _process_cpu_seconds("containerd"),
        _container_cpu_seconds(name),
    )
    env = {"ANSIBLE_STRATEGY": STRATEGIES[strategy], **PROFILE_ENV, **fact_cache(inventory)}
    run = run_playbook("site.yml", inventory, timeout=5400, **env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.rc != 0:
        raise RuntimeError(f"{strategy} converge failed:\n{run.output[-4000:]}")
    return {
        "seconds": round(run.seconds, 1),
        "changed": run.total_changed(),
        "cpu_s": {
            # ansible-playbook and everything it starts on the controller (docker CLI included)
            "controller": round(after.ru_utime + after.ru_stime - before[0].ru_utime - before[0].ru_stime, 1),
            "docker_engine": round(_process_cpu_seconds("dockerd") + _process_cpu_seconds("containerd") - before[1], 1),
            "nodes": round(_container_cpu_seconds(name) - before[2], 1),
        },
        "profile": parse_profile(run.output),
    }


def warm_runs(name: str, inventory: Path, count: int, strategies: list[str]) -> dict:
    """count warm converges per strategy, alternating; each must change nothing. Median seconds per strategy."""
    runs: dict[str, list[dict]] = {strategy: [] for strategy in strategies}
    for _ in range(count):
        for strategy in strategies:
            run = profiled_converge(name, inventory, strategy)
            if run["changed"]:
                raise RuntimeError(f"warm {strategy} converge changed {run['changed']} things")
            runs[strategy].append(run)
    return {
        strategy: {"seconds": statistics.median(run["seconds"] for run in done), "runs": done}
        for strategy, done in runs.items()
    }


def measure(execute_nodes: int, warm_count: int, strategies: list[str], workdir: Path) -> dict:
    name = f"afbenchc{execute_nodes}"
    inventory = make_inventory(workdir, name, free_subnet(range(220, 240)), execute_nodes)
    row: dict = {"execute_nodes": execute_nodes, "nodes": len(inventory_hosts(inventory))}
    try:
        up = run_playbook("playbooks/testbed.yml", inventory)
        if up.rc != 0:
            raise RuntimeError(f"testbed up failed:\n{up.output[-3000:]}")
        row["testbed_up_s"] = round(up.seconds, 1)
        row["cold"] = profiled_converge(name, inventory, "mitogen")
        row["warm"] = warm_runs(name, inventory, warm_count, strategies)
    finally:
        down = run_playbook("playbooks/testbed_down.yml", inventory)
        row["testbed_down_s"] = round(down.seconds, 1)
    return row


def print_table(rows: list[dict]) -> None:
    print("| execute nodes | nodes | cold (Mitogen) | warm stock | warm Mitogen | stock / Mitogen |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        cold = f"{row['cold']['seconds']:.0f} s" if "cold" in row else "-"
        warm = {strategy: data["seconds"] for strategy, data in row["warm"].items()}
        stock, mitogen = (f"{warm[key]:.0f} s" if key in warm else "-" for key in ("stock", "mitogen"))
        ratio = f"{warm['stock'] / warm['mitogen']:.1f}" if len(warm) == len(STRATEGIES) else "-"
        print(f"| {row['execute_nodes']} | {row['nodes']} | {cold} | {stock} | {mitogen} | {ratio} |")
    for row in rows:
        for label, run in [("cold", row.get("cold"))] + [
            (f"warm {strategy}", data["runs"][-1]) for strategy, data in row["warm"].items()
        ]:
            if not run:
                continue
            roles = sorted(run["profile"]["roles"].items(), key=lambda item: -item[1])[:6]
            listed = ", ".join(f"{role} {seconds:.0f} s" for role, seconds in roles)
            print(f"{row['nodes']} nodes, {label}: {listed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", type=int, nargs="+", default=[2], help="execute-node counts to measure")
    parser.add_argument("--warm-runs", type=int, default=1, help="warm converges per strategy (median reported)")
    parser.add_argument("--inventory", type=Path, help="a converged testbed's inventory: warm runs only")
    parser.add_argument(
        "--strategies", nargs="+", choices=list(STRATEGIES), default=list(STRATEGIES), help="warm runs under these"
    )
    args = parser.parse_args()

    if args.inventory:
        inventory = args.inventory.resolve()
        hosts = inventory_hosts(inventory)
        execute = sum(host.startswith("exec") for host in hosts)
        rows = [
            {
                "execute_nodes": execute,
                "nodes": len(hosts),
                "inventory": str(inventory),
                "warm": warm_runs(testbed_name(inventory), inventory, args.warm_runs, args.strategies),
            }
        ]
    else:
        with tempfile.TemporaryDirectory(prefix="afbench-") as tmp:
            rows = [measure(count, args.warm_runs, args.strategies, Path(tmp)) for count in args.execute]

    by_size = {row["execute_nodes"]: row for row in rows}
    summary: dict = {}
    if 2 in by_size:
        summary["warm_default_s"] = {strategy: data["seconds"] for strategy, data in by_size[2]["warm"].items()}
        if "mitogen" in by_size[2]["warm"]:
            summary["warm_target_met"] = by_size[2]["warm"]["mitogen"]["seconds"] <= TARGET_WARM_SECONDS
    if 2 in by_size and 8 in by_size and "mitogen" in args.strategies:
        ratio = by_size[8]["warm"]["mitogen"]["seconds"] / by_size[2]["warm"]["mitogen"]["seconds"]
        summary["warm_ratio_8_to_2"] = round(ratio, 2)
        summary["ratio_target_met"] = ratio <= TARGET_RATIO

    print_table(rows)
    for key, value in summary.items():
        print(f"{key}: {value}")
    write_result(
        "converge",
        targets={"warm_default_s": TARGET_WARM_SECONDS, "warm_ratio_8_to_2": TARGET_RATIO},
        rows=rows,
        summary=summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
