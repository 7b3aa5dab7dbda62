"""af-dask-worker: starts dask-worker inside an HTCondor Docker-universe job of CoffeaCasaCluster.

dask-jobqueue runs ``<python> -m distributed.cli.dask_worker <scheduler> <args...>``; CoffeaCasaCluster
sets ``python`` to this launcher, so it is called with ``-m distributed.cli.dask_worker <scheduler> ...``.

Outside HTCondor (no ``$_CONDOR_JOB_AD``) it execs ``python -m distributed.cli.dask_worker`` with the
arguments unchanged (``-m distributed.cli.dask_worker`` is added when the call lacks it, as in
``af-dask-worker --help``). Inside a job (the current directory is the job's scratch directory, holding the
transferred files ``data.token``, ``site-ca.pem``, ``dask-ca.pem``, ``dask-tls.crt``, ``dask-tls.key``) it

- makes the token and the key private, points ``BEARER_TOKEN_FILE`` at the token, builds an
  ``X509_CERT_DIR`` holding the site CA and sets ``SSL_CERT_FILE`` to it;
- waits for HTCondor to publish the port Docker mapped to the container's Dask port (``dask_HostPort``
  in the job ad, rewritten by HTCondor some seconds after the job starts);
- execs dask-worker listening on the container port and advertising ``<node IP>:<dask_HostPort>``, with
  the transferred TLS files, without a nanny (see :class:`coffea_casa.cluster.CoffeaCasaJob`).

The parsing helpers are pure functions; only :func:`main` touches the process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

WORKER_MODULE = "distributed.cli.dask_worker"
DASK_SERVICE = "dask"
DASK_CONTAINER_PORT = 8786
HOSTPORT_ATTR = f"{DASK_SERVICE}_HostPort"

# Transferred files, by their fixed names in the scratch directory.
DATA_TOKEN = "data.token"  # noqa: S105 - a file name, not a token
SITE_CA = "site-ca.pem"
DASK_CA = "dask-ca.pem"
DASK_CERT = "dask-tls.crt"
DASK_KEY = "dask-tls.key"
CERT_DIR = "certificates"

DEFAULT_TIMEOUT = 30.0
DEFAULT_POLL = 0.2

# dask-worker options the launcher decides itself inside a job: dropped from the incoming arguments.
_DROP_WITH_VALUE = {
    "--listen-address",
    "--contact-address",
    "--host",
    "--worker-port",
    "--nanny-port",
    "--protocol",
    "--interface",
    "--nworkers",
    "--tls-ca-file",
    "--tls-cert",
    "--tls-key",
}
_DROP_FLAGS = {"--nanny", "--no-nanny"}

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+")
_SINFUL_ADDR = re.compile(r"^<(\[[0-9A-Fa-f:.]+\]|[^:?>]+)")


class LauncherError(RuntimeError):
    """The worker cannot be started; the message says why."""


def parse_classad_value(raw: str) -> Any:
    """A ClassAd literal as Python: string, int, float, bool, None for ``undefined``; else the expression text."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    lowered = raw.lower()
    if lowered == "undefined":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def parse_job_ad(text: str) -> dict[str, Any]:
    """Parse a job ad in HTCondor's text format (``Name = value`` lines) into a dict."""
    ad: dict[str, Any] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith(("#", "[", "]")) or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        if name:
            ad[name] = parse_classad_value(value)
    return ad


def lookup(ad: Mapping[str, Any], name: str) -> Any:
    """An attribute of a parsed ad, by case-insensitive name (ClassAd names are); None if absent."""
    if name in ad:
        return ad[name]
    lowered = name.lower()
    for key, value in ad.items():
        if key.lower() == lowered:
            return value
    return None


def node_ip(sinful: str) -> str:
    """The IP of an HTCondor address like ``<172.20.0.2:9618?addrs=...&alias=exec1.af.test>``."""
    match = _SINFUL_ADDR.match(sinful.strip())
    if not match:
        raise LauncherError(f"cannot read an IP address from StartdIpAddr {sinful!r}")
    return match.group(1)


def _split_worker_args(argv: Sequence[str]) -> tuple[str, str, list[str]]:
    args = list(argv)
    module = WORKER_MODULE
    if len(args) >= 2 and args[0] == "-m":
        module, args = args[1], args[2:]
    if not args or args[0].startswith("-"):
        raise LauncherError(f"expected the scheduler address after '-m {module}', got {args!r}")
    return module, args[0], args[1:]


def _drop_options(args: Sequence[str]) -> list[str]:
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        option = arg.split("=", 1)[0]
        if arg in _DROP_FLAGS:
            continue
        if option in _DROP_WITH_VALUE:
            skip_value = "=" not in arg
            continue
        kept.append(arg)
    return kept


def scheduler_protocol(scheduler: str) -> str:
    """``tls`` or ``tcp``, from a scheduler address (no scheme means tcp)."""
    scheme = scheduler.split("://", 1)[0].lower() if "://" in scheduler else "tcp"
    if scheme not in ("tls", "tcp"):
        raise LauncherError(f"unsupported scheduler protocol {scheme!r} in {scheduler!r} (tls or tcp)")
    return scheme


def worker_command(
    argv: Sequence[str], job_ad: Mapping[str, Any], scratch: Path, python: str = sys.executable
) -> list[str]:
    """The dask-worker command for a job: listen on the container port, advertise the published one."""
    module, scheduler, args = _split_worker_args(argv)
    protocol = scheduler_protocol(scheduler)
    host_port = lookup(job_ad, HOSTPORT_ATTR)
    if isinstance(host_port, str) and host_port.isdigit():
        host_port = int(host_port)
    if not isinstance(host_port, int) or isinstance(host_port, bool):
        raise LauncherError(f"{HOSTPORT_ATTR} is not a port number in the job ad: {host_port!r}")
    startd = lookup(job_ad, "StartdIpAddr")
    if not isinstance(startd, str):
        raise LauncherError("the job ad has no StartdIpAddr: cannot tell the address the scheduler can reach")
    ip = node_ip(startd)
    command = [
        python,
        "-m",
        module,
        scheduler,
        *_drop_options(args),
        "--no-nanny",
        "--listen-address",
        f"{protocol}://0.0.0.0:{DASK_CONTAINER_PORT}",
        "--contact-address",
        f"{protocol}://{ip}:{host_port}",
    ]
    if protocol == "tls":
        scratch = Path(scratch).absolute()
        command += [
            "--tls-ca-file",
            str(scratch / DASK_CA),
            "--tls-cert",
            str(scratch / DASK_CERT),
            "--tls-key",
            str(scratch / DASK_KEY),
        ]
    return command


def wait_for_job_ad(
    path: Path,
    attribute: str = HOSTPORT_ATTR,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float = DEFAULT_POLL,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Re-read the job ad (HTCondor rewrites it) until ``attribute`` is defined; LauncherError after ``timeout``."""
    deadline = clock() + timeout
    while True:
        try:
            ad = parse_job_ad(Path(path).read_text(errors="replace"))
        except FileNotFoundError:
            ad = {}
        if lookup(ad, attribute) is not None:
            return ad
        if clock() >= deadline:
            raise LauncherError(
                f"{attribute} did not appear in the job ad {path} within {timeout:g} s: HTCondor did not report "
                f"the port Docker published for the container's Dask port {DASK_CONTAINER_PORT} "
                "(is the job a docker universe job with container_service_names = dask?)"
            )
        sleep(poll)


def openssl_subject_hash(cert: Path) -> str:
    """OpenSSL's subject hash of a certificate (the name of its link in a CA directory, without '.0')."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise LauncherError("openssl is not installed in the worker image: cannot build X509_CERT_DIR")
    result = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(cert)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise LauncherError(f"openssl cannot read {cert}: {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[0]


def prepare_scratch(scratch: Path) -> dict[str, str]:
    """Make the transferred secrets private and set up the CA directory; return the environment to add."""
    scratch = Path(scratch).absolute()
    env: dict[str, str] = {}
    for name in (DATA_TOKEN, DASK_KEY):
        if (scratch / name).is_file():
            os.chmod(scratch / name, 0o600)
    if (scratch / DATA_TOKEN).is_file():
        env["BEARER_TOKEN_FILE"] = str(scratch / DATA_TOKEN)
    site_ca = scratch / SITE_CA
    if site_ca.is_file():
        cert_dir = scratch / CERT_DIR
        cert_dir.mkdir(mode=0o755, exist_ok=True)
        shutil.copyfile(site_ca, cert_dir / f"{openssl_subject_hash(site_ca)}.0")
        env["X509_CERT_DIR"] = str(cert_dir)
        env["SSL_CERT_FILE"] = str(site_ca)
    return env


def _machine_address(environ: Mapping[str, str]) -> str | None:
    path = environ.get("_CONDOR_MACHINE_AD")
    if not path:
        return None
    try:
        ad = parse_job_ad(Path(path).read_text(errors="replace"))
    except OSError:
        return None
    value = lookup(ad, "StartdIpAddr") or lookup(ad, "MyAddress")
    return value if isinstance(value, str) else None


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float = DEFAULT_POLL,
) -> int:
    """Entry point of ``af-dask-worker``: execs dask-worker, or returns 1 with a message on stderr."""
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ if environ is None else environ)
    job_ad_path = environ.get("_CONDOR_JOB_AD")
    if not job_ad_path:
        if argv[:1] != ["-m"]:  # called by hand: af-dask-worker tls://... / af-dask-worker --help
            argv = ["-m", WORKER_MODULE, *argv]
        # Replacing this process is the point: dask-worker gets the signals HTCondor sends the job.
        os.execve(sys.executable, [sys.executable, *argv], environ)  # noqa: S606
    scratch = Path(environ.get("_CONDOR_SCRATCH_DIR") or os.getcwd())
    try:
        env = prepare_scratch(scratch)
        job_ad = wait_for_job_ad(Path(job_ad_path), HOSTPORT_ATTR, timeout, poll)
        if lookup(job_ad, "StartdIpAddr") is None and (address := _machine_address(environ)):
            job_ad["StartdIpAddr"] = address
        command = worker_command(argv, job_ad, scratch)
    except LauncherError as exc:
        print(f"af-dask-worker: {exc}", file=sys.stderr)
        return 1
    print("af-dask-worker: " + " ".join(command), file=sys.stderr, flush=True)
    os.execve(command[0], command, {**environ, **env})  # noqa: S606
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
