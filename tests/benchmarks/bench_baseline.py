#!/usr/bin/env python3
"""Benchmark: testbed creation, cold and warm converge of the node baseline, 2 vs 8 execute nodes.

Prints a table and writes JSON (tests/benchmarks/results/baseline.json). Targets (issue #2):
warm converge of the default testbed (2 execute nodes) under 60 s; 8-node / 2-node warm ratio under 1.5.
  python tests/benchmarks/bench_baseline.py [--execute 2 8] [--warm-runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.testbed import REPO, inventory_hosts, make_inventory, run_playbook

RESULTS = REPO / "tests" / "benchmarks" / "results"
TARGET_WARM_SECONDS = 60.0
TARGET_RATIO = 1.5


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


def timed_converge(name: str, inventory: Path, *args: str):
    """Run site.yml; return the run and where its CPU time went (controller, Docker engine, nodes)."""
    before = (
        resource.getrusage(resource.RUSAGE_CHILDREN),
        _process_cpu_seconds("dockerd") + _process_cpu_seconds("containerd"),
        _container_cpu_seconds(name),
    )
    run = run_playbook("site.yml", inventory, *args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        # ansible-playbook and everything it starts on the controller (docker CLI included)
        "controller_cpu_s": round(after.ru_utime + after.ru_stime - before[0].ru_utime - before[0].ru_stime, 1),
        "docker_engine_cpu_s": round(
            _process_cpu_seconds("dockerd") + _process_cpu_seconds("containerd") - before[1], 1
        ),
        "nodes_cpu_s": round(_container_cpu_seconds(name) - before[2], 1),
    }
    return run, cpu


def measure(execute_nodes: int, warm_runs: int, workdir: Path) -> dict:
    name = f"afbench{execute_nodes}"
    inventory = make_inventory(workdir, name, f"172.30.{220 + execute_nodes}.0/24", execute_nodes)
    row: dict = {"execute_nodes": execute_nodes, "nodes": len(inventory_hosts(inventory))}
    try:
        up = run_playbook("playbooks/testbed.yml", inventory)
        if up.rc != 0:
            raise RuntimeError(f"testbed up failed:\n{up.output[-3000:]}")
        row["testbed_up_s"] = round(up.seconds, 1)
        cold, _ = timed_converge(name, inventory)
        if cold.rc != 0:
            raise RuntimeError(f"cold converge failed:\n{cold.output[-3000:]}")
        row["cold_converge_s"] = round(cold.seconds, 1)
        warm, cpu = [], []
        for _ in range(warm_runs):
            run, usage = timed_converge(name, inventory)
            if run.rc != 0 or run.total_changed():
                raise RuntimeError(f"warm converge failed or changed something:\n{run.output[-3000:]}")
            warm.append(run.seconds)
            cpu.append(usage)
        row["warm_converge_s"] = round(statistics.median(warm), 1)
        row["warm_runs_s"] = [round(seconds, 1) for seconds in warm]
        # CPU of the median-like (last) warm run, split by where it was spent.
        row["warm_cpu"] = cpu[-1]
    finally:
        down = run_playbook("playbooks/testbed_down.yml", inventory)
        row["testbed_down_s"] = round(down.seconds, 1)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", type=int, nargs="+", default=[2, 8], help="execute-node counts to measure")
    parser.add_argument("--warm-runs", type=int, default=2, help="warm converges per size (median reported)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="afbench-") as tmp:
        rows = [measure(count, args.warm_runs, Path(tmp)) for count in args.execute]

    by_size = {row["execute_nodes"]: row for row in rows}
    summary = {}
    if 2 in by_size:
        summary["warm_converge_default_s"] = by_size[2]["warm_converge_s"]
        summary["warm_target_met"] = by_size[2]["warm_converge_s"] < TARGET_WARM_SECONDS
    if 2 in by_size and 8 in by_size:
        ratio = by_size[8]["warm_converge_s"] / by_size[2]["warm_converge_s"]
        summary["warm_ratio_8_to_2"] = round(ratio, 2)
        summary["ratio_target_met"] = ratio < TARGET_RATIO

    header = (
        f"{'execute':>7} {'nodes':>5} {'testbed up':>10} {'cold':>8} {'warm':>8} {'down':>6}"
        f" | warm CPU s: {'controller':>10} {'engine':>6} {'nodes':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['execute_nodes']:>7} {row['nodes']:>5} {row['testbed_up_s']:>9.1f}s {row['cold_converge_s']:>7.1f}s"
            f" {row['warm_converge_s']:>7.1f}s {row['testbed_down_s']:>5.1f}s"
            f" | {'':>11} {row['warm_cpu']['controller_cpu_s']:>10.1f} {row['warm_cpu']['docker_engine_cpu_s']:>6.1f}"
            f" {row['warm_cpu']['nodes_cpu_s']:>6.1f}"
        )
    for key, value in summary.items():
        print(f"{key}: {value}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "baseline",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets": {"warm_converge_default_s": TARGET_WARM_SECONDS, "warm_ratio_8_to_2": TARGET_RATIO},
        "rows": rows,
        "summary": summary,
    }
    (RESULTS / "baseline.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'baseline.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
