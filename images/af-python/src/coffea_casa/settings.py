"""Site settings, read from the environment at run time (the hub sets them per site; nothing is baked in)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Variable -> one-line meaning, used in error messages and the README.
REQUIRED = {
    "AF_COLLECTOR_HOST": "the HTCondor central manager (collector) host[:port]",
    "AF_SCHEDD_NAME": "the name of the schedd the Dask workers are submitted to (the submit node's FQDN)",
    "AF_WORKER_IMAGE": "the Dask worker container image (registry/name:tag)",
}

DEFAULT_ACCOUNTING_GROUP = "group_af"
DEFAULT_DASHBOARD_ADDRESS = ":0"
DEFAULT_CREDENTIALS_DIR = "~/.af/credentials"
DEFAULT_SITE_CA_FILE = "/etc/af/site-ca.pem"
MAX_PORT = 65535


def _get(environ: Mapping[str, str], name: str) -> str | None:
    """An environment value, with an empty string counting as unset."""
    value = environ.get(name, "").strip()
    return value or None


def _required(environ: Mapping[str, str], name: str) -> str:
    value = _get(environ, name)
    if value is None:
        raise ValueError(
            f"{name} is not set: it must name {REQUIRED[name]}. The hub sets it for every user session; "
            f"outside the hub, export {name}=... before creating the cluster."
        )
    return value


def _default_scheduler_host() -> str:
    name = socket.gethostname()
    try:
        return socket.gethostbyname(name)
    except OSError as exc:
        raise ValueError(
            f"AF_SCHEDULER_HOST is not set and this host's name {name!r} does not resolve to an address "
            f"({exc}); set AF_SCHEDULER_HOST to the address the Dask workers can reach this notebook at."
        ) from exc


def _port(environ: Mapping[str, str]) -> int:
    raw = _get(environ, "AF_SCHEDULER_PORT")
    if raw is None:
        return 0
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise ValueError(f"AF_SCHEDULER_PORT={raw!r} is not a port number (0-{MAX_PORT}; 0 picks a free port)")
    return port


@dataclass(frozen=True)
class SiteSettings:
    """Where the facility's services are, for one user session.

    Build it with :meth:`from_env`; every field has the environment variable named in its comment.
    """

    collector_host: str  # AF_COLLECTOR_HOST (required)
    schedd_name: str  # AF_SCHEDD_NAME (required)
    worker_image: str  # AF_WORKER_IMAGE (required)
    accounting_group: str = DEFAULT_ACCOUNTING_GROUP  # AF_ACCOUNTING_GROUP; a job's group is <group>.<user>
    scheduler_host: str = "127.0.0.1"  # AF_SCHEDULER_HOST: the address workers dial back to
    scheduler_port: int = 0  # AF_SCHEDULER_PORT: 0 = a free port, so several users on one host don't collide
    dashboard_address: str = DEFAULT_DASHBOARD_ADDRESS  # AF_DASHBOARD_ADDRESS
    # AF_CREDENTIALS_DIR: the user's HTCondor token, data token and Dask TLS files (coffea_casa.credentials)
    credentials_dir: Path = field(default_factory=lambda: Path(DEFAULT_CREDENTIALS_DIR).expanduser())
    site_ca_file: Path = Path(DEFAULT_SITE_CA_FILE)  # AF_SITE_CA_FILE: the site CA (XRootD, token issuer)
    xrootd_url: str | None = None  # AF_XROOTD_URL, e.g. root://storage1.af.test:1094 (optional)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SiteSettings:
        """Read the settings from ``environ``; a missing required variable raises ValueError naming it."""
        collector = _required(environ, "AF_COLLECTOR_HOST")
        schedd = _required(environ, "AF_SCHEDD_NAME")
        image = _required(environ, "AF_WORKER_IMAGE")
        return cls(
            collector_host=collector,
            schedd_name=schedd,
            worker_image=image,
            accounting_group=_get(environ, "AF_ACCOUNTING_GROUP") or DEFAULT_ACCOUNTING_GROUP,
            scheduler_host=_get(environ, "AF_SCHEDULER_HOST") or _default_scheduler_host(),
            scheduler_port=_port(environ),
            dashboard_address=_get(environ, "AF_DASHBOARD_ADDRESS") or DEFAULT_DASHBOARD_ADDRESS,
            credentials_dir=Path(_get(environ, "AF_CREDENTIALS_DIR") or DEFAULT_CREDENTIALS_DIR).expanduser(),
            site_ca_file=Path(_get(environ, "AF_SITE_CA_FILE") or DEFAULT_SITE_CA_FILE).expanduser(),
            xrootd_url=_get(environ, "AF_XROOTD_URL"),
        )
