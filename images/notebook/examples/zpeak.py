"""Z-peak (dimuon mass) analysis with coffea: the facility's reference analysis.

Runs unchanged on a laptop-style single process (--local) or on Dask workers that the facility
starts as HTCondor jobs (--workers N, through coffea_casa.CoffeaCasaCluster). Input is NanoAOD read
over root:// with the user's own bearer token (BEARER_TOKEN_FILE, set by the spawner; workers get
theirs through HTCondor's encrypted file transfer).

    python zpeak.py --local --json local.json
    python zpeak.py --workers 2 --png zpeak.png --json dask.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import awkward as ak
import hist
import matplotlib
from coffea import processor
from coffea.nanoevents import NanoAODSchema
from coffea_casa import CoffeaCasaCluster
from distributed import Client

matplotlib.use("Agg")  # files, not windows
import matplotlib.pyplot as plt

DEFAULT_FILE = "/store/samples/nano_synthetic_dimuon.root"


class ZPeak(processor.ProcessorABC):
    """Opposite-sign muon pairs in events with exactly two good muons; their invariant mass."""

    def process(self, events):
        muons = events.Muon
        muons = muons[(muons.pt > 5) & (abs(muons.eta) < 2.4)]
        pairs = muons[ak.num(muons) == 2]
        pairs = pairs[ak.sum(pairs.charge, axis=1) == 0]
        mass = (pairs[:, 0] + pairs[:, 1]).mass
        histogram = hist.Hist.new.Reg(120, 0, 120, name="mass", label=r"$m_{\mu\mu}$ [GeV]").Double()
        histogram.fill(mass=ak.to_numpy(mass))
        return {"mass": histogram, "events": len(events)}

    def postprocess(self, accumulator):
        return accumulator


def files_from(args) -> list[str]:
    if args.files:
        return args.files
    base = os.environ.get("AF_XROOTD_URL", "").rstrip("/")
    if not base:
        raise SystemExit("no input: pass --files or set AF_XROOTD_URL (e.g. root://storage1.af.test:1094)")
    return [f"{base}/{DEFAULT_FILE}"] * args.repeat


def run(args) -> dict:
    fileset = {"dimuon": {"files": files_from(args), "treename": "Events"}}
    cluster = client = None
    worker_hosts: list[str] = []
    started = time.monotonic()
    if args.local:
        executor = processor.IterativeExecutor()
    else:
        cluster = CoffeaCasaCluster()
        client = Client(cluster)
        cluster.scale(args.workers)
        client.wait_for_workers(args.workers, timeout=args.worker_timeout)
        executor = processor.DaskExecutor(client=client, status=False, retries=5)
        worker_hosts = [worker["host"] for worker in client.scheduler_info()["workers"].values()]
    workers_ready = time.monotonic()
    if args.marker:
        with open(args.marker, "w") as handle:
            handle.write("processing\n")
    try:
        runner = processor.Runner(executor=executor, schema=NanoAODSchema, chunksize=args.chunksize)
        output = runner(fileset, ZPeak())
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    finished = time.monotonic()
    histogram = output["mass"]
    counts = histogram.values()
    centers = histogram.axes[0].centers
    peak = float(centers[counts.argmax()])
    cores = 1 if args.local else args.workers
    result = {
        "mode": "local" if args.local else f"dask x{args.workers}",
        "events": int(output["events"]),
        "entries": int(counts.sum()),
        "counts": [float(c) for c in counts],
        "peak_gev": peak,
        "startup_s": round(workers_ready - started, 2),
        "processing_s": round(finished - workers_ready, 2),
        "worker_hosts": worker_hosts,
        "events_per_s_per_core": round(output["events"] / (finished - workers_ready) / cores, 1),
    }
    if args.png:
        figure, axes = plt.subplots()
        histogram.plot1d(ax=axes)
        axes.set_title(f"Dimuon mass, {result['entries']} pairs (peak {peak:.1f} GeV)")
        figure.savefig(args.png, dpi=80)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local", action="store_true", help="one process, no Dask cluster")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-timeout", type=float, default=120)
    parser.add_argument("--files", nargs="*", help="input URLs (default: the sample on AF_XROOTD_URL)")
    parser.add_argument("--repeat", type=int, default=1, help="read the default sample this many times")
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--png", help="save the histogram here")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--marker", help="write this file when processing starts (tests)")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text)
    summary = {key: value for key, value in result.items() if key != "counts"}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
