#!/usr/bin/env python3
"""Benchmark: HTCondor pool converge-to-ready time and submit-to-running latency (vanilla, Docker).

On a throwaway testbed (central manager, submit node, 2 execute nodes): the node baseline first, then
playbooks/htcondor.yml timed cold (packages, configuration, tokens, until the central manager sees
every execute node) and warm. Then, as a facility user on the submit node, N jobs one after the other:
the time from submit() returning to the schedd reporting the job running (polled every 50 ms through
the Python bindings on the submit node). Prints a table and writes JSON
(tests/benchmarks/results/htcondor.json).

Targets (issue #3): median submit-to-running under 3 s (vanilla) and under 10 s for a Docker-universe
job whose image is already on the node, with the default tuning.
  python tests/benchmarks/bench_htcondor.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.testbed import make_inventory, run_playbook, write_result

NAME = "afbenchhtc"
SUBNET = "172.30.230.0/24"
TARGETS = {"vanilla_median_s": 3.0, "docker_median_s": 10.0}
JOB_IMAGE = "af-node-base:trixie"

# Runs inside the submit node as the user, with Debian's htcondor2 bindings.
PROBE = r"""
import json, sys, time
import htcondor2 as htcondor

universe, count = sys.argv[1], int(sys.argv[2])
schedd = htcondor.Schedd()
description = {"executable": "/bin/sleep", "arguments": "2", "request_memory": "64M", "log": "/dev/null"}
if universe == "docker":
    description.update({"universe": "docker", "docker_image": sys.argv[3], "transfer_executable": "false",
                        "should_transfer_files": "YES", "when_to_transfer_output": "ON_EXIT"})
latencies = []
for _ in range(count):
    result = schedd.submit(htcondor.Submit(description))
    started = time.monotonic()
    constraint = f"ClusterId == {result.cluster()}"
    while True:
        ads = schedd.query(constraint, projection=["JobStatus", "HoldReason"])
        status = ads[0]["JobStatus"] if ads else 4
        if status in (2, 4):
            break
        if status == 5:
            raise SystemExit(f"job held: {ads[0].get('HoldReason')}")
        if time.monotonic() - started > 120:
            raise SystemExit("job not running after 120 s")
        time.sleep(0.05)
    latencies.append(time.monotonic() - started)
    schedd.act(htcondor.JobAction.Remove, constraint)
print(json.dumps(latencies))
"""


def container(host: str) -> str:
    return f"{NAME}-{host}"


def probe(universe: str, jobs: int) -> list[float]:
    command = ["docker", "exec", "-i", "-u", "alice", "-w", "/home/alice", "-e", "HOME=/home/alice"]
    command += [container("submit1"), "python3", "-", universe, str(jobs), JOB_IMAGE]
    result = subprocess.run(command, input=PROBE, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{universe} probe failed: {result.stderr or result.stdout}")
    return json.loads(result.stdout)


def side_load_image(hosts: list[str]) -> None:
    saved = subprocess.run(["docker", "save", JOB_IMAGE], capture_output=True, check=True).stdout
    for host in hosts:
        subprocess.run(
            ["docker", "exec", "-i", container(host), "docker", "load"], input=saved, capture_output=True, check=True
        )


def summary_of(values: list[float]) -> dict:
    return {
        "median_s": round(statistics.median(values), 2),
        "min_s": round(min(values), 2),
        "max_s": round(max(values), 2),
        "jobs": len(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs per universe (one after the other)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="afbench-") as tmp:
        inventory = make_inventory(Path(tmp), NAME, SUBNET, execute_nodes=2, empty_groups=("storage",))
        try:
            steps = {}
            for label, playbook in (("testbed_up", "playbooks/testbed.yml"), ("baseline", "playbooks/baseline.yml")):
                run = run_playbook(playbook, inventory)
                if run.rc:
                    raise SystemExit(f"{playbook} failed:\n{run.output[-3000:]}")
                steps[f"{label}_s"] = round(run.seconds, 1)
            cold = run_playbook("playbooks/htcondor.yml", inventory)
            if cold.rc:
                raise SystemExit(f"htcondor.yml failed:\n{cold.output[-3000:]}")
            warm = run_playbook("playbooks/htcondor.yml", inventory)
            steps["pool_cold_converge_to_ready_s"] = round(cold.seconds, 1)
            steps["pool_warm_converge_s"] = round(warm.seconds, 1)
            steps["warm_changed"] = warm.total_changed()
            side_load_image(["exec1", "exec2"])
            vanilla = summary_of(probe("vanilla", args.jobs))
            docker = summary_of(probe("docker", args.jobs))
        finally:
            run_playbook("playbooks/testbed_down.yml", inventory)

    met = {
        "vanilla_median_s": vanilla["median_s"] < TARGETS["vanilla_median_s"],
        "docker_median_s": docker["median_s"] < TARGETS["docker_median_s"],
    }
    print(f"{'step':<34} {'seconds':>8}")
    print("-" * 43)
    for key, value in steps.items():
        print(f"{key:<34} {value:>8}")
    print()
    print(f"{'submit -> running':<18} {'jobs':>4} {'median':>7} {'min':>6} {'max':>6} {'target':>7} {'met':>4}")
    print("-" * 58)
    for label, row, key in (("vanilla", vanilla, "vanilla_median_s"), ("docker", docker, "docker_median_s")):
        print(
            f"{label:<18} {row['jobs']:>4} {row['median_s']:>6.2f}s {row['min_s']:>5.2f}s {row['max_s']:>5.2f}s"
            f" {TARGETS[key]:>6.1f}s {'yes' if met[key] else 'NO':>4}"
        )

    write_result(
        "htcondor",
        testbed={"central_manager": 1, "submit": 1, "execute": 2},
        targets=TARGETS,
        steps=steps,
        submit_to_running={"vanilla": vanilla, "docker": docker},
        targets_met=met,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
