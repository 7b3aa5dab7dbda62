#!/usr/bin/env python3
"""Write the example notebooks (examples/*.ipynb) from the cell sources below: the notebooks stay
reviewable as Python, and a change to them is a change to this file.
Run: python make_examples.py && ruff format examples/  (the formatter owns the cells' layout)"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "examples"


def setup(*, dask: bool = False, plots: bool = True) -> str:
    """The first code cell: imports (sorted as ruff wants them) and where the data is."""
    third_party = ["from coffea import processor", "from coffea.nanoevents import NanoAODSchema"]
    if plots:
        third_party.insert(0, "import matplotlib.pyplot as plt")
    if dask:
        third_party += ["from coffea_casa import CoffeaCasaCluster", "from distributed import Client"]
    if plots:
        third_party.append("from IPython.display import Image, display")
    return (
        "import json\nimport os\nimport time\n\n"
        + "\n".join(third_party)
        + "\nfrom zpeak import ZPeak  # the analysis, next to this notebook\n\n"
        + 'DATA = os.environ["AF_XROOTD_URL"].rstrip("/")  # the site\'s XRootD endpoint (set by the hub)\n'
        + 'os.makedirs("results", exist_ok=True)'
    )


SUMMARY = """\
def summary(output, seconds, name):
    histogram = output["mass"]
    peak = float(histogram.axes[0].centers[histogram.values().argmax()])
    result = {"events": int(output["events"]), "pairs": int(histogram.values().sum()),
              "peak_gev": peak, "seconds": round(seconds, 2)}
    with open(f"results/{name}.json", "w") as handle:
        json.dump(result, handle)
    figure, axes = plt.subplots()
    histogram.plot1d(ax=axes)
    axes.set_title(f"Dimuon mass: {result['pairs']} pairs, peak at {peak:.1f} GeV")
    figure.savefig(f"results/{name}.png", dpi=80)
    plt.close(figure)
    display(Image(filename=f"results/{name}.png"))
    return result"""

NOTEBOOKS = {
    "zpeak-public-data": [
        (
            "markdown",
            "# Z peak on public data\n\nThe facility serves open data without a token: this notebook drops its "
            "token on purpose and reads `/store/public` over XRootD, in this notebook's own process (no Dask "
            "cluster). Run all cells; the histogram is in `results/`.",
        ),
        (
            "code",
            setup() + '\nos.environ.pop("BEARER_TOKEN_FILE", None)  # public data needs no token\n'
            'print(f"reading {DATA}//store/public without a token")',
        ),
        ("code", SUMMARY),
        (
            "code",
            'fileset = {"dimuon": {"files": [f"{DATA}//store/public/nano_synthetic_dimuon.root"], '
            '"treename": "Events"}}\n'
            "started = time.monotonic()\n"
            "runner = processor.Runner(executor=processor.IterativeExecutor(), schema=NanoAODSchema, "
            "chunksize=250_000)\n"
            "output = runner(fileset, ZPeak())\n"
            'summary(output, time.monotonic() - started, "zpeak-public-data")',
        ),
    ],
    "zpeak-protected-data": [
        (
            "markdown",
            "# Z peak on protected data, with Dask workers on HTCondor\n\n`/store/samples` needs a token: yours "
            "is in `$BEARER_TOKEN_FILE`, and `CoffeaCasaCluster` sends it to your workers with HTCondor's "
            "encrypted file transfer. The workers are HTCondor jobs in the facility's worker image; the "
            "cluster talks TLS with your own certificate. The Dask dashboard is linked in the Dask tab.",
        ),
        ("code", setup(dask=True)),
        ("code", SUMMARY),
        (
            "code",
            "cluster = CoffeaCasaCluster()\n"
            "client = Client(cluster)\n"
            'client.upload_file("zpeak.py")  # the workers (now and later ones) import the analysis too\n'
            "cluster.scale(2)\n"
            "client.wait_for_workers(2, timeout=180)\n"
            "sorted(worker['host'] for worker in client.scheduler_info()['workers'].values())",
        ),
        (
            "code",
            'fileset = {"dimuon": {"files": [f"{DATA}//store/samples/nano_synthetic_dimuon.root"], '
            '"treename": "Events"}}\n'
            "started = time.monotonic()\n"
            "runner = processor.Runner(executor=processor.DaskExecutor(client=client, status=False, retries=5),\n"
            "                          schema=NanoAODSchema, chunksize=100_000)\n"
            "output = runner(fileset, ZPeak())\n"
            'summary(output, time.monotonic() - started, "zpeak-protected-data")',
        ),
        ("code", "client.close()\ncluster.close()  # the HTCondor jobs leave the queue"),
    ],
    "scaling": [
        (
            "markdown",
            "# Scaling: the same analysis on 1 and 2 workers\n\nEvents per second with one HTCondor worker, "
            "then two. On the testbed each execute node offers one core; on a real site raise `WORKERS` and "
            "`REPEAT`.",
        ),
        ("code", setup(dask=True, plots=False)),
        ("code", "WORKERS = [1, 2]\nREPEAT = 2  # how many times the sample is read per step"),
        (
            "code",
            'fileset = {"dimuon": {"files": [f"{DATA}//store/samples/nano_synthetic_dimuon.root"] * REPEAT, '
            '"treename": "Events"}}\n'
            "cluster = CoffeaCasaCluster()\n"
            "client = Client(cluster)\n"
            'client.upload_file("zpeak.py")  # the workers (now and later ones) import the analysis too\n'
            "rates = []\n"
            "for workers in WORKERS:\n"
            "    cluster.scale(workers)\n"
            "    client.wait_for_workers(workers, timeout=180)\n"
            "    started = time.monotonic()\n"
            "    runner = processor.Runner(executor=processor.DaskExecutor(client=client, status=False, retries=5),\n"
            "                              schema=NanoAODSchema, chunksize=100_000)\n"
            "    output = runner(fileset, ZPeak())\n"
            "    seconds = time.monotonic() - started\n"
            '    rates.append({"workers": workers, "events": int(output["events"]), "seconds": round(seconds, 2),\n'
            '                  "events_per_s": round(output["events"] / seconds)})\n'
            "client.close()\n"
            "cluster.close()\n"
            'with open("results/scaling.json", "w") as handle:\n'
            "    json.dump(rates, handle)\n"
            "for row in rates:\n"
            "    print(f\"{row['workers']} worker(s): {row['events_per_s']:>9} events/s\")",
        ),
    ],
}


def notebook(cells: list[tuple[str, str]]) -> dict:
    def cell(kind: str, source: str) -> dict:
        lines = source.splitlines(keepends=True)
        if kind == "markdown":
            return {"cell_type": "markdown", "metadata": {}, "source": lines}
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": lines}

    return {
        "cells": [cell(kind, source) for kind, source in cells],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        (HERE / f"{name}.ipynb").write_text(json.dumps(notebook(cells), indent=1) + "\n")
        print(f"wrote examples/{name}.ipynb")


if __name__ == "__main__":
    main()
