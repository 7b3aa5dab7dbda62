#!/usr/bin/env python3
"""Benchmark: Dask workers as HTCondor jobs, the Z-peak analysis rate, the facility images.

On a converged facility testbed (one made here with site.yml unless --inventory names a converged
one), as the facility user alice in her notebook container (af-notebook):
  * time from cluster.scale(2) to 2 workers connected, median of RUNS cluster starts (worker image
    already on the execute nodes: the images role pre-pulls it);
  * the Z-peak analysis (images/notebook/examples/zpeak.py) over 4x the 1 M-event synthetic NanoAOD
    sample through root:// with her token: events/s per worker core with 2 workers, and in one
    local process for comparison;
  * image build-and-push time and sizes, from the images role's report of the build.
Prints a table, writes JSON (tests/benchmarks/results/dask.json).

Targets (issue #5): time-to-workers under 10 s median; the per-core rate is reported against the
published 30.7 kHz/core of the coffea-casa 200 Gbps run (../shared/reference/performance-anchors.md).
  python tests/benchmarks/bench_dask.py [--inventory inventories/local] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.testbed import REPO, converged_facility, testbed_name

RESULTS = REPO / "tests" / "benchmarks" / "results"
NAME = "afbenchdask"
SUBNET = "172.30.232.0/24"
TARGET_TIME_TO_WORKERS_S = 10.0
PUBLISHED_RATE_PER_CORE = 30_700.0

TIME_TO_WORKERS = r"""
import json, sys, time
from distributed import Client
from coffea_casa import CoffeaCasaCluster

runs = int(sys.argv[1])
timings = []
for _ in range(runs):
    cluster = CoffeaCasaCluster()
    client = Client(cluster)
    started = time.perf_counter()
    cluster.scale(2)
    client.wait_for_workers(2, timeout=300)
    timings.append(time.perf_counter() - started)
    client.close()
    cluster.close()
    time.sleep(3)  # let the removed jobs leave the slots
print(json.dumps(timings))
"""


def notebook(container: str, user: str, command: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "exec", container, "bash", "-c", f"af-notebook {user} {command}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def measure(inventory: Path, runs: int) -> dict:
    services = f"{testbed_name(inventory)}-services"
    script = subprocess.run(
        [
            "docker",
            "exec",
            "-i",
            services,
            "bash",
            "-c",
            "cat > /home/alice/bench_ttw.py && chown alice /home/alice/bench_ttw.py",
        ],
        input=TIME_TO_WORKERS,
        text=True,
        check=True,
    )
    assert script.returncode == 0
    ttw = notebook(services, "alice", f"python /home/alice/bench_ttw.py {runs}")
    if ttw.returncode != 0:
        raise SystemExit(f"time-to-workers run failed:\n{ttw.stdout[-2000:]}\n{ttw.stderr[-4000:]}")
    timings = json.loads(ttw.stdout.strip().splitlines()[-1])
    analysis = {}
    for mode, options in (("dask", "--workers 2 --repeat 4"), ("local", "--local --repeat 4")):
        run = notebook(
            services, "alice", f"python /opt/af/examples/zpeak.py {options} --json /home/alice/bench-{mode}.json"
        )
        if run.returncode != 0:
            raise SystemExit(f"zpeak {mode} failed:\n{run.stderr[-4000:]}")
        result = json.loads(
            subprocess.run(
                ["docker", "exec", services, "cat", f"/home/alice/bench-{mode}.json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        result.pop("counts")
        analysis[mode] = result
    reports = sorted((REPO / ".cache" / "images").glob("build-report-*.json"), key=os.path.getmtime)
    build = json.loads(reports[-1].read_text()) if reports else {}
    return {"time_to_workers_s": timings, "analysis": analysis, "images": build}


def table(results: dict) -> str:
    ttw = results["time_to_workers_s"]
    median = statistics.median(ttw)
    dask_rate = results["analysis"]["dask"]["events_per_s_per_core"]
    local_rate = results["analysis"]["local"]["events_per_s_per_core"]
    met = "met" if median < TARGET_TIME_TO_WORKERS_S else "NOT met"
    rows = [
        "| measure | value | target / reference |",
        "|---|---|---|",
        f"| scale(2) -> 2 workers, median of {len(ttw)} | {median:.1f} s (min {min(ttw):.1f}, max {max(ttw):.1f}) "
        f"| < {TARGET_TIME_TO_WORKERS_S:.0f} s: **{met}** |",
        f"| Z-peak, 2 HTCondor workers | {dask_rate / 1000:.1f} kHz per core "
        f"| published 30.7 kHz/core: {dask_rate / PUBLISHED_RATE_PER_CORE:.2f}x |",
        f"| Z-peak, one local process | {local_rate / 1000:.1f} kHz per core | |",
    ]
    images = results.get("images") or {}
    if images:
        sizes = ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in images.get("size_bytes", {}).items())
        rows.append(
            f"| images build + push ({', '.join(images.get('built', []))}) "
            f"| {images.get('build_and_push_seconds')} s | {sizes} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, help="a converged testbed inventory (default: make one)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with converged_facility(args.inventory, NAME, SUBNET) as (inventory, converge_s):
        results = measure(inventory, args.runs)
    results.update(
        benchmark="dask",
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "platform": platform.platform()},
        site_converge_s=converge_s,
        targets={"time_to_workers_s": TARGET_TIME_TO_WORKERS_S, "published_rate_per_core": PUBLISHED_RATE_PER_CORE},
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dask.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
