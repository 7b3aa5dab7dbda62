#!/usr/bin/env python3
"""Sample data for the testbed's storage: real CMS NanoAOD files and a larger synthetic one.

Real: nano_dy.root and nano_dimuon.root from the tests/samples/ directory of coffea's source
distribution on PyPI (the wheel has no samples), downloaded with pip (so the site's index, proxy and
CA settings apply) and checked against a pinned sha256. Synthetic: nano_synthetic_dimuon.root, a
NanoAOD-layout TTree (run, luminosityBlock, event, nMuon, Muon_pt/eta/phi/mass/charge) generated with
uproot from a fixed seed, with opposite-sign muon pairs from a Z (91.19 GeV, Breit-Wigner) plus a
falling background: labelled synthetic in its name, made for throughput and physics checks.

  python tests/samples/fetch_samples.py [--dest DIR] [--events N]
Files already present (and matching) are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COFFEA_SDIST = "coffea==2026.9.0"
COFFEA_SDIST_FILE = "coffea-2026.9.0.tar.gz"
COFFEA_SDIST_SHA256 = "7dfc1b54d9d1533c8a5bd8a5786d13272ea1a170b0817061d4478f721aedae04"
REAL_FILES = ("nano_dy.root", "nano_dimuon.root")
SYNTHETIC = "nano_synthetic_dimuon.root"
Z_MASS = 91.1876
Z_WIDTH = 2.4952


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_real(dest: Path) -> None:
    if all((dest / name).is_file() for name in REAL_FILES):
        return
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*command, "--dest", tmp, COFFEA_SDIST], check=True)
        sdist = Path(tmp) / COFFEA_SDIST_FILE
        if sha256(sdist) != COFFEA_SDIST_SHA256:
            raise SystemExit(f"{COFFEA_SDIST_FILE}: checksum mismatch, refusing to use it")
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if name in REAL_FILES and member.name.endswith(f"tests/samples/{name}") and member.isfile():
                    source = archive.extractfile(member)
                    assert source is not None
                    (dest / name).write_bytes(source.read())
    missing = [name for name in REAL_FILES if not (dest / name).is_file()]
    if missing:
        raise SystemExit(f"{COFFEA_SDIST_FILE} has no {', '.join(missing)}")


def make_synthetic(path: Path, events: int, seed: int = 20261122) -> None:
    import awkward as ak  # noqa: PLC0415 - only needed here
    import numpy as np  # noqa: PLC0415
    import uproot  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    # Half the events hold a Z -> mu mu pair (plus sometimes an extra soft muon), the rest 0-2
    # background muons.
    is_z = rng.random(events) < 0.5
    extra = rng.poisson(0.3, events)
    background = rng.poisson(0.8, events)
    counts = np.where(is_z, 2 + extra, background)
    total = int(counts.sum())
    pt = rng.exponential(15.0, total).astype("f4") + 3.0
    eta = rng.uniform(-2.4, 2.4, total).astype("f4")
    phi = rng.uniform(-np.pi, np.pi, total).astype("f4")
    charge = rng.choice(np.array([-1, 1], "i4"), total)
    # The Z pair: back to back in the transverse plane, pt from the mass at fixed eta (eta1 = eta2 = 0
    # would be too simple: pick eta per muon and solve for the common pt).
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    z_events = np.flatnonzero(is_z)
    mass = rng.standard_cauchy(z_events.size) * Z_WIDTH / 2 + Z_MASS
    mass = np.clip(mass, 60.0, 120.0)
    first = starts[z_events]
    second = first + 1
    d_eta = eta[first] - eta[second]
    # m^2 = 2 pt^2 (cosh(d_eta) - cos(d_phi)) with d_phi = pi  ->  pt = m / sqrt(2 (cosh(d_eta) + 1))
    z_pt = (mass / np.sqrt(2 * (np.cosh(d_eta) + 1))).astype("f4")
    pt[first] = z_pt
    pt[second] = z_pt
    phi[second] = np.where(phi[first] > 0, phi[first] - np.pi, phi[first] + np.pi).astype("f4")
    charge[first] = 1
    charge[second] = -1

    def jagged(values):
        return ak.unflatten(values, counts)

    muons = ak.zip(
        {
            "pt": jagged(pt),
            "eta": jagged(eta),
            "phi": jagged(phi),
            "mass": jagged(np.full(total, 0.1057, "f4")),
            "charge": jagged(charge),
        }
    )
    branches = {
        "run": np.ones(events, "u4"),
        "luminosityBlock": np.ones(events, "u4"),
        "event": np.arange(events, dtype="u8"),
        "Muon": muons,
    }
    tmp = path.with_suffix(".tmp")
    with uproot.recreate(tmp, compression=uproot.ZLIB(4)) as out:
        types = {key: (value.type if isinstance(value, ak.Array) else value.dtype) for key, value in branches.items()}
        tree = out.mktree("Events", types, title="synthetic NanoAOD-layout sample (not CMS data)")
        step = 100_000
        for start in range(0, events, step):
            tree.extend({key: value[start : start + step] for key, value in branches.items()})
    tmp.rename(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=HERE, help="directory for the files (default: here)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the synthetic file")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    fetch_real(args.dest)
    synthetic = args.dest / SYNTHETIC
    if not synthetic.is_file():
        make_synthetic(synthetic, args.events)
    for name in (*REAL_FILES, SYNTHETIC):
        print(f"{name}\t{(args.dest / name).stat().st_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
