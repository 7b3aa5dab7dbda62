"""The user's own credentials, as the hub (or Ansible) leaves them in ``AF_CREDENTIALS_DIR``.

Layout (files 0600, owned by the user)::

    <dir>/compute.token    bearer token for the facility's HTCondor pool (SCITOKENS_FILE of condor_submit/condor_rm);
                           it stays in the session: jobs never get it
    <dir>/data.token       bearer token for the facility's storage (WLCG token); jobs get a copy
    <dir>/dask/ca.pem      CA of the user's Dask TLS certificates (its key is never here)
    <dir>/dask/tls.crt     the user's Dask certificate (scheduler, workers and client all use it)
    <dir>/dask/tls.key     its key

The data token is found in WLCG bearer-token discovery order, files only: ``$BEARER_TOKEN`` (a token in
the environment) cannot be shipped to the workers by HTCondor's file transfer and is not used.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class CredentialError(ValueError):
    """A credential is missing, incomplete or not private."""


def check_private(path: Path) -> Path:
    """Return ``path`` if group and others have no access to it; raise CredentialError otherwise."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CredentialError(
            f"{path} is readable or writable by group or others (mode {mode:04o}): it is a secret. "
            f"Run 'chmod 600 {path}' (and get a new one if others could read it)."
        )
    return path


COMPUTE_TOKEN = "compute.token"  # noqa: S105 - a file name


def compute_token(credentials_dir: Path) -> Path | None:
    """The user's compute token for the HTCondor pool (checked private), or None when there is none."""
    path = Path(credentials_dir) / COMPUTE_TOKEN
    return check_private(path) if path.is_file() else None


def data_token_candidates(
    credentials_dir: Path, environ: Mapping[str, str] = os.environ, uid: int | None = None
) -> list[Path]:
    """Where the data token is looked for, in order (WLCG bearer token discovery, files only)."""
    uid = os.getuid() if uid is None else uid
    candidates = []
    if environ.get("BEARER_TOKEN_FILE"):
        candidates.append(Path(environ["BEARER_TOKEN_FILE"]))
    candidates.append(Path(credentials_dir) / "data.token")
    if environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(environ["XDG_RUNTIME_DIR"]) / f"bt_u{uid}")
    candidates.append(Path(f"/tmp/bt_u{uid}"))  # noqa: S108 - the WLCG discovery location, read only
    return candidates


def find_data_token(
    credentials_dir: Path, environ: Mapping[str, str] = os.environ, uid: int | None = None
) -> Path | None:
    """The first existing data token file in discovery order (checked private), or None."""
    for candidate in data_token_candidates(credentials_dir, environ, uid):
        if candidate.is_file():
            return check_private(candidate)
    return None


@dataclass(frozen=True)
class DaskTLS:
    """The user's Dask TLS material."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def find_dask_tls(credentials_dir: Path) -> DaskTLS | None:
    """The user's Dask TLS files, None when there are none; an incomplete set or a non-private key is an error."""
    directory = Path(credentials_dir) / "dask"
    tls = DaskTLS(directory / "ca.pem", directory / "tls.crt", directory / "tls.key")
    present = [p for p in (tls.ca_file, tls.cert_file, tls.key_file) if p.is_file()]
    if not present:
        return None
    missing = [str(p) for p in (tls.ca_file, tls.cert_file, tls.key_file) if not p.is_file()]
    if missing:
        raise CredentialError(
            f"incomplete Dask TLS material in {directory}: missing {', '.join(missing)} "
            "(the hub issues ca.pem, tls.crt and tls.key together; log out and in again to get a new set)"
        )
    check_private(tls.key_file)
    return tls


@dataclass(frozen=True)
class Credentials:
    """Everything found for one user; None where a credential is absent."""

    compute_token: Path | None
    data_token: Path | None
    dask_tls: DaskTLS | None


def discover(credentials_dir: Path, environ: Mapping[str, str] = os.environ, uid: int | None = None) -> Credentials:
    """Find the user's credentials under ``credentials_dir`` (and the data token in discovery order)."""
    return Credentials(
        compute_token=compute_token(credentials_dir),
        data_token=find_data_token(credentials_dir, environ, uid),
        dask_tls=find_dask_tls(credentials_dir),
    )
