#!/usr/bin/env python3
"""Benchmark: analysis-style reads through XRootD with bearer tokens vs local disk; token cost per request.

On a throwaway testbed (issuer, one XRootD origin): the muon branches of the synthetic NanoAOD file
(tests/samples/nano_synthetic_dimuon.root) read with uproot from local disk, from root:// with a token
and from https:// with a token (median of 5 reads each, time and MB/s of the compressed bytes read),
and the request rate of opening and reading 300 small files with token authorization vs without it
(a public path). The client is a container on the testbed network running this repository's Python
environment (the site's CA trusted, TLS verified). Prints a table, writes JSON
(tests/benchmarks/results/xrootd.json).

Targets (issue #4): root://+token at least 0.9 of local throughput for that read; small-file request
rate with token authorization at least 0.9 of the rate without it.
  python tests/benchmarks/bench_xrootd.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from module_utils import af_jwt
from tests.support.testbed import REPO, make_inventory, run_playbook, write_result

NAME = "afbenchxrd"
SUBNET = "172.30.231.0/24"
DOMAIN = "af.test"
SAMPLE = "nano_synthetic_dimuon.root"
SMALL_FILES = 300
TARGETS = {"root_vs_local": 0.9, "token_vs_public_rate": 0.9}

CLIENT = r"""
import json, os, statistics, sys, time
import uproot
from XRootD import client as xrd

settings = json.loads(sys.argv[1])
# The site CA: XRootD's hashed directory, and Python's default trust for https (verification stays on).
os.environ.update(X509_CERT_DIR=settings["certdir"], BEARER_TOKEN_FILE=settings["token_file"],
                  SSL_CERT_FILE=settings["ca"])
token = open(settings["token_file"]).read().strip()
branches = ["nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge"]

def read(url, **options):
    started = time.perf_counter()
    with uproot.open(url, **options) as f:
        tree = f["Events"]
        arrays = tree.arrays(branches)
        nbytes = sum(tree[b].compressed_bytes for b in branches)
    return time.perf_counter() - started, nbytes, len(arrays)

sources = {
    "local": (settings["local"], {}),
    "root+token": (f"root://{settings['server']}//store/samples/{settings['sample']}",
                   {"handler": uproot.source.xrootd.XRootDSource}),
    # uproot's HTTP source sends no custom headers: the token goes as XrdHttp's authz parameter.
    "https+token": (f"https://{settings['server']}:8443/store/samples/{settings['sample']}"
                    f"?authz=Bearer%20{token}", {"handler": uproot.source.http.HTTPSource}),
}
result = {}
for name, (url, options) in sources.items():
    read(url, **options)  # warm: page cache, connection, token validation
    runs = [read(url, **options) for _ in range(5)]
    seconds = statistics.median(r[0] for r in runs)
    result[name] = {"seconds": round(seconds, 3), "mb": round(runs[0][1] / 1e6, 2),
                    "mb_per_s": round(runs[0][1] / 1e6 / seconds, 1), "events": runs[0][2]}

def rate(directory, use_token):
    if not use_token:
        os.environ.pop("BEARER_TOKEN_FILE", None)
    else:
        os.environ["BEARER_TOKEN_FILE"] = settings["token_file"]
    names = [f"{directory}/f{i:04d}" for i in range(settings["small_files"])]
    started = time.perf_counter()
    for name in names:
        f = xrd.File()
        status, _ = f.open(f"root://{settings['server']}/{name}")
        assert status.ok, (name, status.message)
        status, data = f.read()
        assert status.ok and len(data) == 1024, name
        f.close()
    return len(names) / (time.perf_counter() - started)

for attempt in range(2):  # the first pass warms both paths
    public = rate("/store/public/small", False)
    tokened = rate("/store/small", True)
result["small_files"] = {"files": settings["small_files"], "public_per_s": round(public, 1),
                         "token_per_s": round(tokened, 1)}
print(json.dumps(result))
"""


def docker(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"docker {args[0]} failed:\n{result.stderr[-3000:]}")
    return result


def bring_up(workdir: Path) -> tuple[Path, dict]:
    """Testbed with the issuer and one origin (plus a public path and small files); returns the inventory."""
    inventory = make_inventory(
        workdir, NAME, SUBNET, execute_nodes=0, empty_groups=("submit", "execute", "registry", "hub")
    )
    hosts_file = inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    hosts["all"]["children"]["testbed"]["children"]["storage"]["hosts"] = {"storage1": None}
    hosts_file.write_text(yaml.safe_dump(hosts, sort_keys=False))
    (inventory / "group_vars" / "storage.yml").write_text(
        yaml.safe_dump({"xrootd_sample_data": True, "xrootd_public_paths": ["/store/public"]})
    )
    steps = {}
    for playbook in ("playbooks/testbed.yml", "playbooks/baseline.yml", "playbooks/token_issuer.yml",
                     "playbooks/storage.yml"):  # fmt: skip
        run = run_playbook(playbook, inventory)
        if run.rc:
            raise SystemExit(f"{playbook} failed:\n{run.output[-3000:]}")
        steps[Path(playbook).stem + "_s"] = round(run.seconds, 1)
    make_small = (
        "set -e; for d in /srv/xrootd/store/small /srv/xrootd/store/public/small; do mkdir -p $d; "
        f"for i in $(seq -f %04g 0 {SMALL_FILES - 1}); do head -c 1024 /dev/urandom > $d/f$i; done; done; "
        "chown -R xrootd: /srv/xrootd/store"
    )
    docker("exec", f"{NAME}-storage1", "sh", "-c", make_small)
    return inventory, steps


def measure(inventory: Path, workdir: Path) -> dict:
    """Run the client in a container on the testbed network with a fresh token and the site CA."""
    keys = inventory / "credentials" / "token-issuer"
    kid = (keys / "active-kid").read_text().strip()
    now = int(time.time())
    claims = {"iss": f"https://services.{DOMAIN}", "sub": "alice", "aud": f"https://{DOMAIN}",
              "scope": "storage.read:/store", "wlcg.ver": "1.0", "iat": now, "nbf": now, "exp": now + 3600,
              "jti": "bench"}  # fmt: skip
    token_file = workdir / "token"
    token_file.write_text(af_jwt.mint((keys / f"{kid}.key").read_bytes(), kid, claims))
    token_file.chmod(0o600)
    ca = inventory / "credentials" / "site-ca" / "ca.crt"
    certdir = workdir / "certs"
    certdir.mkdir()
    ca_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca)], capture_output=True, text=True, check=True
    ).stdout.strip()
    (certdir / f"{ca_hash}.0").write_bytes(ca.read_bytes())
    settings = {
        "certdir": str(certdir),
        "token_file": str(token_file),
        "ca": str(ca),
        "sample": SAMPLE,
        "local": str(REPO / "tests" / "samples" / SAMPLE),
        "server": f"storage1.{DOMAIN}",
        "small_files": SMALL_FILES,
    }
    prefix, base = Path(sys.prefix), Path(sys.base_prefix)
    command = ["run", "--rm", "--network", f"{NAME}-net", "--cpus", "1"]
    for path in {prefix, base, REPO, workdir}:
        command += ["-v", f"{path}:{path}:ro"]
    command += ["af-node-base:trixie", str(prefix / "bin" / "python"), "-c", CLIENT, json.dumps(settings)]
    return json.loads(docker(*command).stdout)


def main() -> int:
    subprocess.run(
        [sys.executable, str(REPO / "tests" / "samples" / "fetch_samples.py")], check=True, capture_output=True
    )
    with tempfile.TemporaryDirectory(prefix="afbench-") as tmp:
        workdir = Path(tmp)
        try:
            inventory, steps = bring_up(workdir)
            measured = measure(inventory, workdir)
        finally:
            run_playbook("playbooks/testbed_down.yml", workdir / NAME)

    ratio_root = measured["root+token"]["mb_per_s"] / measured["local"]["mb_per_s"]
    small = measured["small_files"]
    ratio_rate = small["token_per_s"] / small["public_per_s"]
    summary = {
        "root_vs_local": round(ratio_root, 2),
        "https_vs_local": round(measured["https+token"]["mb_per_s"] / measured["local"]["mb_per_s"], 2),
        "token_vs_public_rate": round(ratio_rate, 2),
    }
    met = {key: summary[key] >= TARGETS[key] for key in TARGETS}

    print(f"{'read (muon branches)':<22} {'seconds':>8} {'MB':>7} {'MB/s':>8}")
    print("-" * 48)
    for name in ("local", "root+token", "https+token"):
        row = measured[name]
        print(f"{name:<22} {row['seconds']:>8.3f} {row['mb']:>7.2f} {row['mb_per_s']:>8.1f}")
    print()
    print(f"small files ({small['files']} x 1 KiB): public {small['public_per_s']}/s, token {small['token_per_s']}/s")
    for key, value in summary.items():
        target = f" (target >= {TARGETS[key]}, {'met' if met[key] else 'NOT met'})" if key in TARGETS else ""
        print(f"{key}: {value}{target}")

    write_result(
        "xrootd",
        client="container on the testbed network, 1 CPU, this repository's Python environment",
        targets=TARGETS,
        steps=steps,
        reads={k: measured[k] for k in ("local", "root+token", "https+token")},
        small_files=small,
        summary=summary,
        targets_met=met,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
