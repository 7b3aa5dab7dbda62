"""End to end in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by
Debian's python3-selenium) on a physicist's machine beside the facility, the testbed's "laptop"
container. Bob logs in on the OIDC provider's own login page, lands in JupyterLab, runs the public-data
Z-peak notebook in his server and sees the histogram in JupyterLab. Screenshots are kept in the test's
temporary directory (printed) for a human to look at.

The browser trusts the site CA through its own NSS database; TLS is verified throughout.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.hub import log_in, stop_server

pytestmark = pytest.mark.testbed

NODE = "services"
HUB = f"https://{NODE}.af.test:8443"
ISSUER = f"https://{NODE}.af.test:4443/api/oidc"
SCRIPT = Path(__file__).resolve().parents[1] / "support" / "browser_e2e.py"
# The laptop image: the node base image plus the browser, made once per machine (the packages come
# from Debian's mirror, as on a physicist's Debian laptop).
BROWSER_IMAGE = "af-testbed-browser:trixie-1"
BROWSER_PACKAGES = "chromium chromium-driver python3-selenium libnss3-tools fonts-dejavu-core"


def docker(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}...: {result.stderr[-2000:]}")
    return result


def browser_image() -> str:
    if docker("image", "inspect", BROWSER_IMAGE, check=False).returncode == 0:
        return BROWSER_IMAGE
    name = f"af-browser-build-{id(BROWSER_IMAGE)}"
    docker("run", "-d", "--name", name, "af-node-base:trixie", "sleep", "infinity")
    try:
        install = (
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
            f"{BROWSER_PACKAGES} >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*"
        )
        docker("exec", name, "bash", "-c", install, timeout=1200)
        docker("commit", name, BROWSER_IMAGE)
    finally:
        docker("rm", "-f", name, check=False)
    return BROWSER_IMAGE


@pytest.fixture(scope="module")
def laptop(facility):
    """The browser container on the testbed network, the site CA in its browser's trust store."""
    name = f"{facility.name}-laptop"
    network = docker(
        "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", facility.container(NODE)
    )
    address = docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", facility.container(NODE)
    )
    docker(
        "run", "-d", "--name", name, "--network", network.stdout.strip(), "--shm-size", "512m",
        "--add-host", f"{NODE}.af.test:{address.stdout.strip()}", browser_image(), "sleep", "infinity",
    )  # fmt: skip
    try:
        docker("cp", str(facility.credentials / "site-ca" / "ca.crt"), f"{name}:/tmp/site-ca.crt")
        docker("cp", str(SCRIPT), f"{name}:/usr/local/bin/browser_e2e.py")
        trust = (
            "mkdir -p /root/.pki/nssdb && certutil -d sql:/root/.pki/nssdb -N --empty-password && "
            "certutil -d sql:/root/.pki/nssdb -A -t C,, -n af-site-ca -i /tmp/site-ca.crt"
        )
        docker("exec", name, "bash", "-c", trust)
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def browse(laptop: str, *args: str) -> dict:
    command = "python3 /usr/local/bin/browser_e2e.py " + " ".join(shlex.quote(a) for a in args)
    run = docker("exec", laptop, "bash", "-c", command, check=False, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_bob_logs_in_with_chromium_runs_the_z_peak_notebook_and_sees_the_histogram(facility, laptop, web, tmp_path):
    password = (facility.credentials / "oidc" / "bob.password").read_text().strip()
    docker("exec", laptop, "bash", "-c", f"umask 077; printf %s {shlex.quote(password)} > /root/bob.password")
    try:
        first = browse(laptop, "--hub", HUB, "--user", "bob", "--password-file", "/root/bob.password", "--out", "/out")
        assert first["login_button"].startswith("Sign in with")
        assert first["provider_url"].startswith(f"https://{NODE}.af.test:4443/")
        assert first["lab_url"].startswith(f"{HUB}/user/bob/lab")
        # The file browser shows his home (or, on a later visit, the folder he was last in).
        assert {"examples", "zpeak-public-data.ipynb"} & set(first["files"])
        print(f"Chromium: login {first['login_s']} s, JupyterLab {first['spawn_s']} s after login")

        notebook = "cd ~/examples && jupyter execute --inplace zpeak-public-data.ipynb"
        run = facility.exec(NODE, f"docker exec jupyter-bob bash -c {shlex.quote(notebook)}", timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(
            facility.exec(NODE, "docker exec jupyter-bob cat examples/results/zpeak-public-data.json").stdout
        )
        assert 88 <= result["peak_gev"] <= 94

        shown = browse(
            laptop, "--hub", HUB, "--user", "bob", "--out", "/out", "--notebook", "examples/zpeak-public-data.ipynb"
        )
        assert shown["notebook_images"] >= 1
        assert "peak_gev" in shown["notebook_text"]
    finally:
        docker("cp", f"{laptop}:/out/.", str(tmp_path), check=False)
        print(f"screenshots: {sorted(str(p) for p in tmp_path.glob('*.png'))}")
        session = web()
        log_in(session, HUB, ISSUER, "bob", password)
        stop_server(session, HUB, "bob")
    assert (tmp_path / "jupyterlab.png").stat().st_size > 10_000
    assert (tmp_path / "notebook.png").stat().st_size > 10_000
