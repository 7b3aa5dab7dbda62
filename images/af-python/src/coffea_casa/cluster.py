"""CoffeaCasaCluster: Dask workers as HTCondor Docker-universe jobs on the facility's pool.

The scheduler runs in the user's notebook. Each worker is one HTCondor job, submitted spooled to the
facility's schedd with the user's own compute token (SciTokens); the job runs the worker image, whose launcher
(``af-dask-worker``, :mod:`coffea_casa.worker_launcher`) sets up the transferred credentials and starts
``dask-worker`` with the address Docker published for it. Traffic between scheduler, workers and client
is TLS with the user's own certificate unless ``tls=False`` is asked for explicitly.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import dask
import dask_jobqueue  # noqa: F401 - loads dask-jobqueue's own config defaults first
import yaml
from dask_jobqueue.htcondor import HTCondorCluster, HTCondorJob, quote_environment
from distributed.security import Security

from . import credentials
from .settings import SiteSettings

# The container's Dask port (Docker publishes it on a free port of the execute node; HTCondor reports
# that port in the job ad as dask_HostPort), and the files transferred into the job's scratch directory
# under fixed names, where the launcher finds them. HTCondor's transfer_input_files keeps a file's
# basename, so the sources are first copied under these names into a private (0700) staging directory,
# refreshed before every submit.
from .worker_launcher import DASK_CA, DASK_CERT, DASK_CONTAINER_PORT, DASK_KEY, DASK_SERVICE, DATA_TOKEN, SITE_CA

logger = logging.getLogger(__name__)

CONFIG_NAME = "coffea-casa"
CONFIG_FILE = Path(__file__).with_name("jobqueue-coffea-casa.yaml")


def _load_config() -> None:
    with CONFIG_FILE.open() as f:
        dask.config.update_defaults(yaml.safe_load(f))


_load_config()


def classad_string(value: str) -> str:
    """A ClassAd string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stage_files(staging_dir: Path, input_files: Mapping[str, Path]) -> None:
    """Copy each source to ``staging_dir/<name>`` (0600), atomically, so concurrent submits never see half a file."""
    for name, source in input_files.items():
        fd, tmp = tempfile.mkstemp(dir=staging_dir, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as out, Path(source).open("rb") as src:
                shutil.copyfileobj(src, out)
            os.chmod(tmp, 0o600)
            os.replace(tmp, staging_dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class CoffeaCasaJob(HTCondorJob):
    """One Dask worker: an HTCondor Docker-universe job running the facility's worker image.

    The worker runs without a nanny. Behind Docker's port publishing a process can only be reached at
    the address HTCondor reports (node IP + dask_HostPort), and the launcher gives dask-worker exactly
    that as ``--contact-address``. distributed 2026.8.0 has no ``--nanny-contact-address``: a nanny
    would advertise its container-internal address, which the scheduler cannot reach. So ``--no-nanny``
    always, and one worker process per job.
    """

    config_name = CONFIG_NAME

    def __init__(
        self,
        scheduler: str | None = None,
        name: str | None = None,
        *,
        site: SiteSettings | None = None,
        user: str | None = None,
        input_files: Mapping[str, Path] | None = None,
        staging_dir: Path | None = None,
        nanny: bool = False,
        processes: int | None = None,
        security: Security | None = None,
        protocol: str | None = None,
        job_extra_directives: dict[str, Any] | None = None,
        submit_command_extra: list[str] | None = None,
        cancel_command_extra: list[str] | None = None,
        config_name: str | None = None,
        **base_class_kwargs: Any,
    ):
        if nanny:
            raise ValueError(
                "CoffeaCasaCluster workers run without a nanny: behind Docker's port publishing a nanny would "
                "advertise an address the scheduler cannot reach (distributed has no --nanny-contact-address)"
            )
        if processes not in (None, 1):
            raise ValueError(
                f"processes={processes!r}: a CoffeaCasaCluster job runs one worker process (one published port); "
                "ask for more jobs instead"
            )
        config_name = config_name or self.config_name
        site = site or SiteSettings.from_env()
        user = user or getpass.getuser()
        self.site = site
        self.input_files = dict(input_files or {})
        self.staging_dir = Path(staging_dir) if staging_dir else None

        def config(key: str, default: Any = None) -> Any:
            return dask.config.get(f"jobqueue.{config_name}.{key}", default)

        if job_extra_directives is None:
            job_extra_directives = config("job-extra-directives", {}) or {}
        if submit_command_extra is None:
            submit_command_extra = config("submit-command-extra", []) or []
        if cancel_command_extra is None:
            cancel_command_extra = config("cancel-command-extra", []) or []
        remote = ["-name", site.schedd_name, "-pool", site.collector_host]

        # `security` and `protocol` are deliberately not passed on: dask-jobqueue would put this
        # notebook's certificate paths on the worker's command line. The launcher uses the transferred
        # copies instead and takes the protocol from the scheduler address.
        super().__init__(
            scheduler=scheduler,
            name=name,
            config_name=config_name,
            nanny=False,
            processes=1,
            job_extra_directives={**self._directives(site, user, scheduler), **job_extra_directives},
            submit_command_extra=["-spool", *remote, *submit_command_extra],
            cancel_command_extra=[*remote, *cancel_command_extra],
            **base_class_kwargs,
        )

    def _directives(self, site: SiteSettings, user: str, scheduler: str | None) -> dict[str, Any]:
        staged = [str((self.staging_dir or Path(".")) / name) for name in self.input_files]
        directives: dict[str, Any] = {
            "universe": "docker",
            "docker_image": site.worker_image,
            "container_service_names": DASK_SERVICE,
            f"{DASK_SERVICE}_container_port": DASK_CONTAINER_PORT,
            # /bin/sh (dask-jobqueue's executable) is the image's own.
            "transfer_executable": "False",
            "should_transfer_files": "YES",
            "when_to_transfer_output": "ON_EXIT",
            "transfer_input_files": ", ".join(staged),
            "encrypt_input_files": ", ".join(staged),
            "transfer_output_files": '""',
            "+AccountingGroup": classad_string(f"{site.accounting_group}.{user}"),
            "+AcctGroup": classad_string(site.accounting_group),
            "+AcctGroupUser": classad_string(user),
            "+CoffeaCasaWorkerType": classad_string("dask"),
            "+DaskSchedulerAddress": classad_string(scheduler or ""),
            # condor_submit -spool otherwise keeps a completed job in the queue for 10 days.
            "+LeaveJobInQueue": "False",
        }
        if not staged:
            for key in ("transfer_input_files", "encrypt_input_files"):
                del directives[key]
        if site.xrootd_url:
            directives["environment"] = '"' + quote_environment({"AF_XROOTD_URL": site.xrootd_url}) + '"'
        return directives

    async def _submit_job(self, script_filename: str) -> str:
        # Fresh copies of the (possibly renewed) credentials; condor_submit -spool sends them to the
        # schedd's spool during the call.
        if self.staging_dir is not None and self.input_files:
            stage_files(self.staging_dir, self.input_files)
        return await super()._submit_job(script_filename)


class CoffeaCasaCluster(HTCondorCluster):
    """Dask workers as HTCondor jobs on the analysis facility, with the user's own credentials.

    Site settings come from the ``AF_*`` environment (:class:`coffea_casa.settings.SiteSettings`), the
    credentials from ``AF_CREDENTIALS_DIR`` (:mod:`coffea_casa.credentials`). Keyword arguments of
    ``HTCondorCluster`` (``cores``, ``memory``, ``disk``, ``job_extra_directives``, ``scheduler_options``,
    ...) override the defaults of the ``jobqueue.coffea-casa`` configuration.

    Parameters
    ----------
    tls : bool
        TLS with the user's Dask certificate (default). ``tls=False`` is plain, unencrypted TCP, for
        debugging only; it is never chosen on its own: missing TLS material is an error.
    worker_image, accounting_group : str
        Override ``AF_WORKER_IMAGE`` / ``AF_ACCOUNTING_GROUP``.
    settings : SiteSettings
        Use these instead of reading the environment.
    """

    job_cls = CoffeaCasaJob

    def __init__(
        self,
        *,
        tls: bool = True,
        worker_image: str | None = None,
        accounting_group: str | None = None,
        settings: SiteSettings | None = None,
        scheduler_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        for name in ("security", "protocol"):
            if name in kwargs:
                raise ValueError(
                    f"CoffeaCasaCluster sets {name} itself (TLS with your certificate from AF_CREDENTIALS_DIR); "
                    "pass tls=False for plain TCP"
                )
        if settings is None:
            environ = dict(os.environ)
            if worker_image:
                environ["AF_WORKER_IMAGE"] = worker_image
            settings = SiteSettings.from_env(environ)
        overrides = {"worker_image": worker_image, "accounting_group": accounting_group}
        settings = replace(settings, **{k: v for k, v in overrides.items() if v})
        self.settings = settings

        creds = credentials.discover(settings.credentials_dir)
        self.credentials = creds
        if creds.compute_token is None:
            raise credentials.CredentialError(
                f"no compute token {settings.credentials_dir / credentials.COMPUTE_TOKEN}: the hub puts your token for "
                "the HTCondor pool there (log out and in again, or set AF_CREDENTIALS_DIR)"
            )
        if creds.data_token is None:
            searched = ", ".join(str(p) for p in credentials.data_token_candidates(settings.credentials_dir))
            raise credentials.CredentialError(
                f"no data token found (looked at {searched}); $BEARER_TOKEN is not used: the workers get the "
                "token as a file"
            )
        if not settings.site_ca_file.is_file():
            raise credentials.CredentialError(
                f"site CA file {settings.site_ca_file} not found (set AF_SITE_CA_FILE to the site CA bundle)"
            )
        input_files: dict[str, Path] = {DATA_TOKEN: creds.data_token, SITE_CA: settings.site_ca_file}

        if tls:
            if creds.dask_tls is None:
                raise credentials.CredentialError(
                    f"no Dask TLS material in {settings.credentials_dir / 'dask'} (ca.pem, tls.crt, tls.key): "
                    "the hub issues it at login; CoffeaCasaCluster(tls=False) gives unencrypted TCP for debugging"
                )
            t = creds.dask_tls
            security = Security(
                tls_ca_file=str(t.ca_file),
                tls_client_cert=str(t.cert_file),
                tls_client_key=str(t.key_file),
                tls_scheduler_cert=str(t.cert_file),
                tls_scheduler_key=str(t.key_file),
                tls_worker_cert=str(t.cert_file),
                tls_worker_key=str(t.key_file),
                require_encryption=True,
            )
            protocol = "tls://"
            input_files.update({DASK_CA: t.ca_file, DASK_CERT: t.cert_file, DASK_KEY: t.key_file})
        else:
            warnings.warn(
                "CoffeaCasaCluster(tls=False): scheduler, workers and client talk plain, unencrypted TCP",
                UserWarning,
                stacklevel=2,
            )
            security = None
            protocol = "tcp://"

        # condor_submit / condor_rm run as subprocesses of this process: the user's own compute token
        # (SciTokens, over TLS checked against the site CA), strong security, the facility's pool.
        # setdefault: the user may override any of them.
        for key, value in {
            "_condor_SCITOKENS_FILE": str(creds.compute_token),
            "_condor_SEC_CLIENT_AUTHENTICATION_METHODS": "SCITOKENS",
            "_condor_AUTH_SSL_CLIENT_CAFILE": str(settings.site_ca_file),
            "_condor_SEC_CLIENT_ENCRYPTION": "REQUIRED",
            "_condor_SEC_CLIENT_INTEGRITY": "REQUIRED",
            "_condor_CONDOR_HOST": settings.collector_host,
        }.items():
            os.environ.setdefault(key, value)

        config_name = kwargs.get("config_name") or CONFIG_NAME
        options = {
            "host": settings.scheduler_host,
            "port": settings.scheduler_port,
            "dashboard_address": settings.dashboard_address,
            **(dask.config.get(f"jobqueue.{config_name}.scheduler-options", {}) or {}),
            **(scheduler_options or {}),
        }

        runtime = os.environ.get("XDG_RUNTIME_DIR")
        staging = Path(tempfile.mkdtemp(prefix="af-dask-", dir=runtime if runtime and Path(runtime).is_dir() else None))
        self.staging_dir = staging
        self._remove_staging = weakref.finalize(self, shutil.rmtree, staging, ignore_errors=True)
        try:
            super().__init__(
                security=security,
                protocol=protocol,
                scheduler_options=options,
                site=settings,
                input_files=input_files,
                staging_dir=staging,
                **kwargs,
            )
        except BaseException:
            self._remove_staging()
            raise

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            self._remove_staging()
