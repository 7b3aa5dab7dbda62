#!/usr/bin/env python3
"""Benchmark: JupyterHub login and spawn times, as a physicist's browser sees them.

On a converged facility testbed (one made here with site.yml unless --inventory names a converged
one), RUNS times for alice, each with a new browser session (tests/support/hub.py, no browser
process: the same HTTP exchanges):
  * login: from the hub's login button to the hub's cookie (the OIDC provider's login and consent,
    the code exchange, the user lookup);
  * spawn: from the spawn request to JupyterLab's page served through the proxy (container start,
    single-user server start, the server's own OAuth round trip with the hub);
  * login to JupyterLab: both together.
The server is stopped between runs (so each spawn is a real container start; the notebook image is
already on the hub node). Prints a table, writes JSON (tests/benchmarks/results/hub.json).

  python tests/benchmarks/bench_hub.py [--inventory DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.hub import log_in, start_server, stop_server
from tests.support.oidc import ResolvingAdapter
from tests.support.testbed import REPO, converged_facility, testbed_name

RESULTS = REPO / "tests" / "benchmarks" / "results"
NAME = "afbenchhub"
SUBNET = "172.30.233.0/24"
NODE = "services.af.test"
HUB = f"https://{NODE}:8443"
ISSUER = f"https://{NODE}:4443/api/oidc"
USER = "alice"


def measure(inventory: Path, runs: int) -> dict:
    container = f"{testbed_name(inventory)}-services"
    address = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    password = (inventory / "credentials" / "oidc" / f"{USER}.password").read_text().strip()
    samples = []
    for _ in range(runs):
        session = requests.Session()
        session.trust_env = False
        session.verify = str(inventory / "credentials" / "site-ca" / "ca.crt")
        session.mount("https://", ResolvingAdapter({NODE: address}))
        started = time.perf_counter()
        log_in(session, HUB, ISSUER, USER, password)
        logged_in = time.perf_counter()
        start_server(session, HUB, USER)
        served = time.perf_counter()
        samples.append({"login_s": logged_in - started, "spawn_s": served - logged_in, "total_s": served - started})
        stop_server(session, HUB, USER)
    return {"samples": samples}


def table(results: dict) -> str:
    rows = ["| measure | median | min | max |", "|---|---|---|---|"]
    for key, label in (("login_s", "login"), ("spawn_s", "spawn to JupyterLab"), ("total_s", "login to JupyterLab")):
        values = [sample[key] for sample in results["samples"]]
        rows.append(
            f"| {label} (n={len(values)}) | {statistics.median(values):.2f} s | {min(values):.2f} s "
            f"| {max(values):.2f} s |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, help="a converged testbed inventory (default: make one)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with converged_facility(args.inventory, NAME, SUBNET) as (inventory, converge_s):
        results = measure(inventory, args.runs)
    for key in ("login_s", "spawn_s", "total_s"):
        results[f"median_{key}"] = round(statistics.median(sample[key] for sample in results["samples"]), 2)
    results.update(
        benchmark="hub",
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "platform": platform.platform()},
        site_converge_s=converge_s,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hub.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
