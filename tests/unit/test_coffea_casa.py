"""Unit tests of the facility's Dask cluster package (images/af-python/src/coffea_casa).

Real objects throughout: certificates made with cryptography, a real local Dask scheduler (the
cluster's), condor_submit/condor_rm stand-ins on PATH that record what they were given, and real
dask-worker processes started through the launcher (outside HTCondor, and inside a faked HTCondor job
sandbox). No HTCondor pool, no Docker.
"""

import datetime
import ipaddress
import os
import shlex
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import pytest
from coffea_casa import CoffeaCasaCluster, SiteSettings, credentials, worker_launcher
from coffea_casa.cluster import stage_files
from coffea_casa.credentials import CredentialError
from coffea_casa.worker_launcher import LauncherError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from distributed import Client
from distributed.security import Security

REPO = Path(__file__).resolve().parents[2]
PACKAGE_SRC = REPO / "images" / "af-python" / "src"

SCHEDD = "submit1.af.test"
COLLECTOR = "cm1.af.test"
IMAGE = "registry.af.test:5000/af/dask-worker:0.1.0"
USER = "alice"

# A running docker-universe job's ad as HTCondor writes it to the sandbox (.job.ad), shortened.
JOB_AD = """\
AccountingGroup = "group_af.alice"
AcctGroupUser = "alice"
ClusterId = 42
ProcId = 0
CoffeaCasaWorkerType = "dask"
ContainerServiceNames = "dask"
dask_ContainerPort = 8786
dask_HostPort = {host_port}
DaskSchedulerAddress = "tls://10.0.0.5:40123"
DaskWorkerName = "htcondor--42.0--"
DockerImage = "registry.af.test:5000/af/dask-worker:0.1.0"
JobUniverse = 5
LeaveJobInQueue = false
RemoteHost = "slot1@exec1.af.test"
RequestMemory = floor(MY.DaskWorkerMemory / 1048576)
StartdIpAddr = "<{ip}:9618?addrs={ip}-9618&alias=exec1.af.test&noUDP&sock=startd_1234_abcd>"
TransferOutput = ""
WantDocker = true
"""


# --- certificates -------------------------------------------------------------------------------


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key, path):
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def make_ca(cn):
    """A self-signed CA: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(ca_cert, ca_key, cn):
    """A certificate for TLS client and server use, signed by the CA: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A user's Dask CA + certificate and a site CA, as files."""
    root = tmp_path_factory.mktemp("pki")
    dask_ca, dask_ca_key = make_ca("alice dask CA")
    leaf, leaf_key = make_leaf(dask_ca, dask_ca_key, USER)
    site_ca, _ = make_ca("AF test site CA")
    (root / "dask-ca.pem").write_bytes(_pem(dask_ca))
    (root / "dask-tls.crt").write_bytes(_pem(leaf))
    _write_key(leaf_key, root / "dask-tls.key")
    (root / "site-ca.pem").write_bytes(_pem(site_ca))
    return root


def make_credentials_dir(directory, pki, *, dask_tls=True):
    """The layout the hub leaves in AF_CREDENTIALS_DIR."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / "compute.token").write_text("eyJhbGciOiJFUzI1NiJ9.compute.token\n")
    (directory / "compute.token").chmod(0o600)
    (directory / "data.token").write_text("eyJhbGciOiJFUzI1NiJ9.data.token\n")
    (directory / "data.token").chmod(0o600)
    if dask_tls:
        (directory / "dask").mkdir(mode=0o700)
        for src, dst in (("dask-ca.pem", "ca.pem"), ("dask-tls.crt", "tls.crt"), ("dask-tls.key", "tls.key")):
            (directory / "dask" / dst).write_bytes((pki / src).read_bytes())
        (directory / "dask" / "tls.key").chmod(0o600)
    return directory


# --- environment ----------------------------------------------------------------------------------

_CLEARED = ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR", "_CONDOR_JOB_AD", "_CONDOR_SCRATCH_DIR")


@pytest.fixture
def environ():
    """os.environ restored after the test (the cluster sets _condor_* variables in it)."""
    saved = os.environ.copy()
    for key in list(os.environ):
        if key.startswith(("AF_", "_condor_")) or key in _CLEARED:
            del os.environ[key]
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def site(environ, tmp_path, pki):
    """A complete site environment for one user; returns the credentials directory."""
    creds = make_credentials_dir(tmp_path / "credentials", pki)
    environ.update(
        {
            "AF_COLLECTOR_HOST": COLLECTOR,
            "AF_SCHEDD_NAME": SCHEDD,
            "AF_WORKER_IMAGE": IMAGE,
            "AF_SCHEDULER_HOST": "127.0.0.1",
            "AF_CREDENTIALS_DIR": str(creds),
            "AF_SITE_CA_FILE": str(pki / "site-ca.pem"),
            "USER": USER,
            "LOGNAME": USER,
        }
    )
    return creds


# --- settings -------------------------------------------------------------------------------------

REQUIRED_ENV = {"AF_COLLECTOR_HOST": COLLECTOR, "AF_SCHEDD_NAME": SCHEDD, "AF_WORKER_IMAGE": IMAGE}


def test_settings_defaults():
    s = SiteSettings.from_env({**REQUIRED_ENV, "AF_SCHEDULER_HOST": "10.0.0.5"})
    assert (s.collector_host, s.schedd_name, s.worker_image) == (COLLECTOR, SCHEDD, IMAGE)
    assert s.accounting_group == "group_af"
    assert s.scheduler_host == "10.0.0.5"
    assert s.scheduler_port == 0
    assert s.dashboard_address == ":0"
    assert s.credentials_dir == Path("~/.af/credentials").expanduser()
    assert s.site_ca_file == Path("/etc/af/site-ca.pem")
    assert s.xrootd_url is None
    with pytest.raises(AttributeError):
        s.worker_image = "other"  # frozen


def test_settings_all_variables():
    s = SiteSettings.from_env(
        {
            **REQUIRED_ENV,
            "AF_ACCOUNTING_GROUP": "group_cms",
            "AF_SCHEDULER_HOST": "jupyter-alice.af.test",
            "AF_SCHEDULER_PORT": "8786",
            "AF_DASHBOARD_ADDRESS": ":8787",
            "AF_CREDENTIALS_DIR": "/run/af/alice",
            "AF_SITE_CA_FILE": "/etc/pki/af-ca.pem",
            "AF_XROOTD_URL": "root://storage1.af.test:1094",
        }
    )
    assert s.accounting_group == "group_cms"
    assert s.scheduler_host == "jupyter-alice.af.test"
    assert s.scheduler_port == 8786
    assert s.dashboard_address == ":8787"
    assert s.credentials_dir == Path("/run/af/alice")
    assert s.site_ca_file == Path("/etc/pki/af-ca.pem")
    assert s.xrootd_url == "root://storage1.af.test:1094"


def test_settings_default_scheduler_host_is_this_hosts_address():
    expected = socket.gethostbyname(socket.gethostname())
    assert SiteSettings.from_env(REQUIRED_ENV).scheduler_host == expected


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_settings_missing_required(missing):
    env = {k: v for k, v in REQUIRED_ENV.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        SiteSettings.from_env(env)
    with pytest.raises(ValueError, match=missing):
        SiteSettings.from_env({**env, missing: "  "})  # empty counts as unset


@pytest.mark.parametrize("port", ["http", "-1", "65536"])
def test_settings_bad_port(port):
    with pytest.raises(ValueError, match="AF_SCHEDULER_PORT"):
        SiteSettings.from_env({**REQUIRED_ENV, "AF_SCHEDULER_HOST": "h", "AF_SCHEDULER_PORT": port})


# --- credentials ------------------------------------------------------------------------------------


def _token(path, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("token\n")
    path.chmod(mode)
    return path


def test_data_token_discovery_order(tmp_path):
    uid = 3_999_000_000 + os.getpid() % 100_000  # nobody's: /tmp/bt_u<uid> is this test's own
    creds = tmp_path / "creds"
    explicit = _token(tmp_path / "explicit.token")
    in_creds = _token(creds / "data.token")
    runtime = _token(tmp_path / "run" / f"bt_u{uid}")
    tmp_token = Path(f"/tmp/bt_u{uid}")  # noqa: S108 - the WLCG location under test
    env = {"BEARER_TOKEN_FILE": str(explicit), "XDG_RUNTIME_DIR": str(tmp_path / "run"), "BEARER_TOKEN": "inline"}
    assert credentials.data_token_candidates(creds, env, uid) == [explicit, in_creds, runtime, tmp_token]
    try:
        _token(tmp_token)
        assert credentials.find_data_token(creds, env, uid) == explicit
        explicit.unlink()
        assert credentials.find_data_token(creds, env, uid) == in_creds
        in_creds.unlink()
        assert credentials.find_data_token(creds, env, uid) == runtime
        runtime.unlink()
        assert credentials.find_data_token(creds, env, uid) == tmp_token
        tmp_token.unlink()
        # $BEARER_TOKEN alone is not a file the workers can get
        assert credentials.find_data_token(creds, env, uid) is None
    finally:
        tmp_token.unlink(missing_ok=True)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_group_or_world_readable_token_refused(tmp_path, mode):
    _token(tmp_path / "data.token", mode)
    with pytest.raises(CredentialError, match="chmod 600"):
        credentials.find_data_token(tmp_path, {}, 12345)


def test_readable_compute_token_and_key_refused(tmp_path, pki):
    creds = make_credentials_dir(tmp_path / "c", pki)
    assert credentials.discover(creds, {}).compute_token == creds / "compute.token"
    (creds / "compute.token").chmod(0o644)
    with pytest.raises(CredentialError, match=r"compute\.token"):
        credentials.compute_token(creds)
    (creds / "dask" / "tls.key").chmod(0o640)
    with pytest.raises(CredentialError, match=r"tls\.key"):
        credentials.find_dask_tls(creds)


def test_dask_tls_discovery(tmp_path, pki):
    creds = make_credentials_dir(tmp_path / "c", pki)
    tls = credentials.find_dask_tls(creds)
    assert tls == credentials.DaskTLS(creds / "dask/ca.pem", creds / "dask/tls.crt", creds / "dask/tls.key")
    (creds / "dask" / "tls.crt").unlink()
    with pytest.raises(CredentialError, match="incomplete"):
        credentials.find_dask_tls(creds)
    assert credentials.find_dask_tls(tmp_path / "nothing") is None


# --- the cluster --------------------------------------------------------------------------------


def _header(script):
    """The submit description's `key = value` lines as a dict."""
    lines = [line for line in script.splitlines() if " = " in line]
    return dict(line.split(" = ", 1) for line in lines)


def test_job_script(site):
    with CoffeaCasaCluster() as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
        staging = cluster.staging_dir
    header = _header(script)
    assert address.startswith("tls://127.0.0.1:")
    assert script.startswith("#!/usr/bin/env condor_submit\n")
    assert header["universe"] == "docker"
    assert header["docker_image"] == IMAGE
    assert header["container_service_names"] == "dask"
    assert header["dask_container_port"] == "8786"
    assert header["should_transfer_files"] == "YES"
    assert header["when_to_transfer_output"] == "ON_EXIT"
    assert header["transfer_output_files"] == '""'
    staged = ", ".join(
        str(staging / n) for n in ("data.token", "site-ca.pem", "dask-ca.pem", "dask-tls.crt", "dask-tls.key")
    )
    assert header["transfer_input_files"] == staged
    assert header["encrypt_input_files"] == staged
    assert header["+AccountingGroup"] == f'"group_af.{USER}"'
    assert header["+AcctGroupUser"] == f'"{USER}"'
    assert header["+CoffeaCasaWorkerType"] == '"dask"'
    assert header["+DaskSchedulerAddress"] == f'"{address}"'
    assert header["+LeaveJobInQueue"] == "False"
    assert header["Executable"] == "/bin/sh"
    assert header["RequestCpus"] == "MY.DaskWorkerCores"
    assert header["MY.DaskWorkerCores"] == "1"
    assert header["MY.DaskWorkerMemory"] == str(2 * 2**30)
    assert header["MY.DaskWorkerDisk"] == str(2**30)
    # the worker command, unquoted from HTCondor's Arguments syntax
    arguments = header["Arguments"].strip('"')
    assert arguments.startswith("-c '") and arguments.endswith("'")
    command = shlex.split(arguments[4:-1])
    assert command[:4] == ["/opt/af/bin/af-dask-worker", "-m", "distributed.cli.dask_worker", address]
    assert "--no-nanny" in command and "--nanny" not in command
    assert command[command.index("--death-timeout") + 1] == "60"
    assert command[command.index("--lifetime") + 1] == "2h"
    assert command[command.index("--lifetime-stagger") + 1] == "5m"
    # no notebook-side paths on the worker's command line: the launcher uses the transferred files
    assert not any(arg.startswith("--tls") or arg == "--protocol" for arg in command)
    assert str(site) not in script
    assert not staging.exists()  # removed on close


def test_submit_and_cancel_commands_and_condor_environment(site, environ):
    environ["_condor_SEC_CLIENT_ENCRYPTION"] = "OPTIONAL"  # the user's own choice wins
    with CoffeaCasaCluster() as cluster:
        job = cluster._dummy_job
        assert job.submit_command == f"condor_submit -spool -name {SCHEDD} -pool {COLLECTOR}"
        assert job.cancel_command == f"condor_rm -name {SCHEDD} -pool {COLLECTOR}"
    assert environ["_condor_SCITOKENS_FILE"] == str(site / "compute.token")
    assert environ["_condor_SEC_CLIENT_AUTHENTICATION_METHODS"] == "SCITOKENS"
    assert environ["_condor_AUTH_SSL_CLIENT_CAFILE"] == environ["AF_SITE_CA_FILE"]
    assert environ["_condor_SEC_CLIENT_INTEGRITY"] == "REQUIRED"
    assert environ["_condor_SEC_CLIENT_ENCRYPTION"] == "OPTIONAL"
    assert environ["_condor_CONDOR_HOST"] == COLLECTOR


def test_tls_is_the_default_and_enforced(site):
    with CoffeaCasaCluster() as cluster:
        security = cluster.security
        assert security.require_encryption is True
        assert security.tls_ca_file == str(site / "dask" / "ca.pem")
        assert security.tls_scheduler_cert == security.tls_worker_cert == security.tls_client_cert
        assert security.tls_client_key == str(site / "dask" / "tls.key")
        assert cluster.scheduler_address.startswith("tls://")


def test_plain_tcp_only_when_asked(site, pki):
    with pytest.warns(UserWarning, match="unencrypted"), CoffeaCasaCluster(tls=False) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        header = _header(cluster.job_script())
    assert "dask-ca.pem" not in header["transfer_input_files"]
    assert header["transfer_input_files"].endswith("site-ca.pem")


def test_missing_tls_material_is_an_error(site, environ, tmp_path, pki):
    creds = make_credentials_dir(tmp_path / "no-dask", pki, dask_tls=False)
    environ["AF_CREDENTIALS_DIR"] = str(creds)
    with pytest.raises(CredentialError, match="tls=False"):
        CoffeaCasaCluster()
    with pytest.warns(UserWarning), CoffeaCasaCluster(tls=False) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")


def test_missing_settings_and_credentials(site, environ):
    del environ["AF_SCHEDD_NAME"]
    with pytest.raises(ValueError, match="AF_SCHEDD_NAME"):
        CoffeaCasaCluster()
    environ["AF_SCHEDD_NAME"] = SCHEDD
    (site / "compute.token").unlink()
    with pytest.raises(CredentialError, match=r"no compute token .*compute\.token"):
        CoffeaCasaCluster()
    _token(site / "compute.token")
    (site / "data.token").unlink()
    environ["BEARER_TOKEN"] = "inline"  # noqa: S105 - a test value
    with pytest.raises(CredentialError, match=r"no data token.*\$BEARER_TOKEN is not used"):
        CoffeaCasaCluster()
    _token(site / "data.token")
    environ["AF_SITE_CA_FILE"] = str(site / "missing-ca.pem")
    with pytest.raises(CredentialError, match="AF_SITE_CA_FILE"):
        CoffeaCasaCluster()


def test_keyword_arguments_override_defaults(site, environ):
    del environ["AF_WORKER_IMAGE"]
    with CoffeaCasaCluster(
        cores=4,
        memory="8GiB",
        disk="10GiB",
        worker_image="registry.af.test:5000/af/dask-worker:test",
        accounting_group="group_cms",
        job_extra_directives={"+CoffeaCasaWorkerType": '"dask-gpu"', "request_gpus": 1},
    ) as cluster:
        header = _header(cluster.job_script())
    assert header["docker_image"] == "registry.af.test:5000/af/dask-worker:test"
    assert header["+AccountingGroup"] == f'"group_cms.{USER}"'
    assert header["+CoffeaCasaWorkerType"] == '"dask-gpu"'
    assert header["request_gpus"] == "1"
    assert header["MY.DaskWorkerCores"] == "4"
    assert header["MY.DaskWorkerMemory"] == str(8 * 2**30)
    assert header["MY.DaskWorkerDisk"] == str(10 * 2**30)
    assert "--nthreads 4" in header["Arguments"]


def test_config_section_and_xrootd_environment(site, environ):
    environ["AF_XROOTD_URL"] = "root://storage1.af.test:1094"
    with dask.config.set({"jobqueue.coffea-casa.cores": 2}), CoffeaCasaCluster() as cluster:
        header = _header(cluster.job_script())
    assert header["MY.DaskWorkerCores"] == "2"
    assert header["environment"] == '"AF_XROOTD_URL=root://storage1.af.test:1094"'


@pytest.mark.parametrize(("kwargs", "match"), [({"nanny": True}, "nanny"), ({"processes": 2}, "processes")])
def test_nanny_and_processes_refused(site, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoffeaCasaCluster(**kwargs)


def test_stage_files(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir(mode=0o700)
    source = _token(tmp_path / "token-from-issuer", 0o600)
    stage_files(staging, {"data.token": source})
    assert (staging / "data.token").read_text() == "token\n"
    assert stat.S_IMODE((staging / "data.token").stat().st_mode) == 0o600
    source.write_text("renewed\n")
    stage_files(staging, {"data.token": source})
    assert (staging / "data.token").read_text() == "renewed\n"
    assert sorted(p.name for p in staging.iterdir()) == ["data.token"]


FAKE_CONDOR = """#!/bin/sh
# stand-in for {name}: records its arguments, environment and (for submit) the staged files
log={log}
echo "ARGS $*" >> "$log"
echo "TOKEN $_condor_SCITOKENS_FILE" >> "$log"
for f in "$@"; do case "$f" in *.sh) cat "$f" > {log}.submit;; esac; done
if [ {name} = condor_submit ]; then
  ls "$(dirname "$(grep '^transfer_input_files' {log}.submit | sed 's/.*= //; s/,.*//')")" > {log}.staged
  echo "Submitting job(s)."
  echo "1 job(s) submitted to cluster 42."
fi
"""


def test_scale_submits_spooled_job_and_close_removes_it(site, environ, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "condor.log"
    for name in ("condor_submit", "condor_rm"):
        (bin_dir / name).write_text(FAKE_CONDOR.format(name=name, log=log))
        (bin_dir / name).chmod(0o755)
    environ["PATH"] = f"{bin_dir}:{environ['PATH']}"
    with CoffeaCasaCluster() as cluster:
        staging = cluster.staging_dir
        cluster.scale(1)
        deadline = time.monotonic() + 10
        while not (tmp_path / "condor.log.staged").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stat.S_IMODE(staging.stat().st_mode) == 0o700
        assert stat.S_IMODE((staging / "dask-tls.key").stat().st_mode) == 0o600
        assert (staging / "dask-tls.key").read_bytes() == (site / "dask" / "tls.key").read_bytes()
        assert (staging / "data.token").read_bytes() == (site / "data.token").read_bytes()
        assert next(iter(cluster.workers.values())).job_id == "42.0"
    records = log.read_text().splitlines()
    assert records[0].startswith(f"ARGS -spool -name {SCHEDD} -pool {COLLECTOR} ")
    assert records[1] == f"TOKEN {site / 'compute.token'}"
    assert f"ARGS -name {SCHEDD} -pool {COLLECTOR} 42.0" in records
    assert (tmp_path / "condor.log.staged").read_text().split() == sorted(
        ["data.token", "site-ca.pem", "dask-ca.pem", "dask-tls.crt", "dask-tls.key"]
    )
    submitted = _header((tmp_path / "condor.log.submit").read_text())
    assert submitted["MY.DaskWorkerName"] == '"htcondor--$F(MY.JobId)--"'
    assert submitted["universe"] == "docker"
    assert not staging.exists()


# --- the launcher -------------------------------------------------------------------------------


def test_parse_job_ad():
    ad = worker_launcher.parse_job_ad(JOB_AD.format(host_port=32771, ip="172.20.0.2") + "Foo = undefined\n")
    assert ad["dask_HostPort"] == 32771
    assert ad["ClusterId"] == 42
    assert ad["AccountingGroup"] == "group_af.alice"
    assert ad["LeaveJobInQueue"] is False
    assert ad["WantDocker"] is True
    assert ad["TransferOutput"] == ""
    assert ad["Foo"] is None
    assert ad["RequestMemory"] == "floor(MY.DaskWorkerMemory / 1048576)"
    assert worker_launcher.lookup(ad, "DASK_HOSTPORT") == 32771
    assert worker_launcher.node_ip(ad["StartdIpAddr"]) == "172.20.0.2"
    assert worker_launcher.node_ip("<[fd00::2]:9618?addrs=[fd00::2]-9618>") == "[fd00::2]"
    assert worker_launcher.parse_classad_value('"a \\"quoted\\" word"') == 'a "quoted" word'
    assert worker_launcher.parse_classad_value("1.5") == 1.5
    with pytest.raises(LauncherError):
        worker_launcher.node_ip("exec1.af.test")


def test_worker_command_tls(tmp_path):
    ad = worker_launcher.parse_job_ad(JOB_AD.format(host_port=32771, ip="172.20.0.2"))
    argv = [
        "-m",
        "distributed.cli.dask_worker",
        "tls://10.0.0.5:40123",
        "--name",
        "dummy-name",
        "--nthreads",
        "1",
        "--nanny",
        "--tls-ca-file",
        "/home/alice/.af/credentials/dask/ca.pem",
        "--tls-cert=/home/alice/.af/credentials/dask/tls.crt",
        "--protocol",
        "tls://",
        "--lifetime",
        "2h",
    ]
    cmd = worker_launcher.worker_command(argv, ad, tmp_path, python="/opt/af/bin/python")
    assert cmd == [
        "/opt/af/bin/python",
        "-m",
        "distributed.cli.dask_worker",
        "tls://10.0.0.5:40123",
        "--name",
        "dummy-name",
        "--nthreads",
        "1",
        "--lifetime",
        "2h",
        "--no-nanny",
        "--listen-address",
        "tls://0.0.0.0:8786",
        "--contact-address",
        "tls://172.20.0.2:32771",
        "--tls-ca-file",
        str(tmp_path / "dask-ca.pem"),
        "--tls-cert",
        str(tmp_path / "dask-tls.crt"),
        "--tls-key",
        str(tmp_path / "dask-tls.key"),
    ]


def test_worker_command_plain_and_errors(tmp_path):
    ad = worker_launcher.parse_job_ad(JOB_AD.format(host_port='"32771"', ip="172.20.0.2"))
    cmd = worker_launcher.worker_command(
        ["-m", "distributed.cli.dask_worker", "tcp://10.0.0.5:1", "--no-nanny"], ad, tmp_path
    )
    assert cmd[0] == sys.executable
    assert cmd[4:] == [
        "--no-nanny",
        "--listen-address",
        "tcp://0.0.0.0:8786",
        "--contact-address",
        "tcp://172.20.0.2:32771",
    ]
    with pytest.raises(LauncherError, match="scheduler address"):
        worker_launcher.worker_command(["-m", "distributed.cli.dask_worker", "--name", "x"], ad, tmp_path)
    with pytest.raises(LauncherError, match="protocol"):
        worker_launcher.worker_command(["ucx://10.0.0.5:1"], ad, tmp_path)
    with pytest.raises(LauncherError, match="StartdIpAddr"):
        worker_launcher.worker_command(["tls://10.0.0.5:1"], {"dask_HostPort": 1}, tmp_path)
    with pytest.raises(LauncherError, match="dask_HostPort"):
        worker_launcher.worker_command(["tls://10.0.0.5:1"], {"StartdIpAddr": "<1.2.3.4:9618>"}, tmp_path)


def test_wait_for_job_ad_times_out(tmp_path):
    ad = tmp_path / ".job.ad"
    ad.write_text(JOB_AD.format(host_port="undefined", ip="172.20.0.2"))
    start = time.monotonic()
    with pytest.raises(LauncherError, match="dask_HostPort did not appear"):
        worker_launcher.wait_for_job_ad(ad, timeout=0.5, poll=0.05)
    assert 0.5 <= time.monotonic() - start < 3


def test_wait_for_job_ad_rereads_the_file(tmp_path):
    ad = tmp_path / ".job.ad"  # not there yet, then without the port, then with it: HTCondor rewrites it
    timer = threading.Timer(0.2, lambda: ad.write_text(JOB_AD.format(host_port="undefined", ip="172.20.0.2")))
    timer2 = threading.Timer(0.5, lambda: ad.write_text(JOB_AD.format(host_port=32768, ip="172.20.0.2")))
    timer.start()
    timer2.start()
    try:
        result = worker_launcher.wait_for_job_ad(ad, timeout=10, poll=0.05)
    finally:
        timer.cancel()
        timer2.cancel()
    assert result["dask_HostPort"] == 32768


def test_launcher_exits_1_when_the_port_never_appears(tmp_path, capsys):
    ad = tmp_path / ".job.ad"
    ad.write_text(JOB_AD.format(host_port="undefined", ip="172.20.0.2"))
    env = {"_CONDOR_JOB_AD": str(ad), "_CONDOR_SCRATCH_DIR": str(tmp_path)}
    argv = ["-m", "distributed.cli.dask_worker", "tls://10.0.0.5:40123"]
    assert worker_launcher.main(argv, env, timeout=0.3, poll=0.05) == 1
    assert "af-dask-worker: dask_HostPort did not appear" in capsys.readouterr().err


def test_launcher_outside_htcondor_is_dask_worker(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_")}
    env["PYTHONPATH"] = str(PACKAGE_SRC)
    # called by hand without '-m distributed.cli.dask_worker' (the end-to-end test covers the form with it)
    result = subprocess.run(
        [sys.executable, "-m", "coffea_casa.worker_launcher", "--version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "distributed.cli.dask_worker, version" in result.stdout


def test_prepare_scratch(tmp_path, pki):
    for name in ("data.token", "dask-tls.key"):
        _token(tmp_path / name, 0o644)  # as transferred, before the launcher fixes it
    (tmp_path / "site-ca.pem").write_bytes((pki / "site-ca.pem").read_bytes())
    env = worker_launcher.prepare_scratch(tmp_path)
    for name in ("data.token", "dask-tls.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pki / "site-ca.pem")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert env == {
        "BEARER_TOKEN_FILE": str(tmp_path / "data.token"),
        "X509_CERT_DIR": str(tmp_path / "certificates"),
        "SSL_CERT_FILE": str(tmp_path / "site-ca.pem"),
    }
    assert (tmp_path / "certificates" / f"{subject_hash}.0").read_bytes() == (pki / "site-ca.pem").read_bytes()


# --- end to end: TLS scheduler of the cluster, workers started by the launcher --------------------


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - the launcher's own listen address, checked here
        except OSError:
            return False
    return True


def _launch(argv, *, cwd, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_")}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra_env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "coffea_casa.worker_launcher", "-m", "distributed.cli.dask_worker", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_end_to_end_tls_workers_through_the_launcher(site, tmp_path, pki):
    def inspect_environment():  # defined here: cloudpickle ships it by value to the worker
        cert_dir = os.environ.get("X509_CERT_DIR")
        return {
            "BEARER_TOKEN_FILE": os.environ.get("BEARER_TOKEN_FILE"),
            "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE"),
            "cert_dir": sorted(os.listdir(cert_dir)) if cert_dir else None,
        }

    condor_mode = _port_free(worker_launcher.DASK_CONTAINER_PORT)
    with CoffeaCasaCluster() as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        dask_dir = site / "dask"
        processes = [
            # outside HTCondor: the arguments go to dask-worker unchanged
            _launch(
                [
                    *(address, "--name", "plain", "--nthreads", "1", "--no-nanny", "--death-timeout", "20"),
                    *("--tls-ca-file", str(dask_dir / "ca.pem"), "--tls-cert", str(dask_dir / "tls.crt")),
                    *("--tls-key", str(dask_dir / "tls.key")),
                ],
                cwd=tmp_path,
            )
        ]
        if condor_mode:
            # inside a (faked) HTCondor job: transferred files in the scratch dir, the port in the job ad
            scratch = tmp_path / "scratch"
            scratch.mkdir()
            for name in ("dask-ca.pem", "dask-tls.crt", "dask-tls.key", "site-ca.pem"):
                (scratch / name).write_bytes((pki / name).read_bytes())
            _token(scratch / "data.token", 0o644)
            (scratch / ".job.ad").write_text(
                JOB_AD.format(host_port=worker_launcher.DASK_CONTAINER_PORT, ip="127.0.0.1")
            )
            processes.append(
                _launch(
                    [
                        *(address, "--name", "condor", "--nthreads", "1", "--nanny", "--death-timeout", "20"),
                        *("--tls-ca-file", "/nonexistent/ca.pem", "--tls-cert", "/x.crt", "--tls-key", "/x.key"),
                    ],
                    cwd=scratch,
                    extra_env={"_CONDOR_JOB_AD": str(scratch / ".job.ad"), "_CONDOR_SCRATCH_DIR": str(scratch)},
                )
            )
        try:
            with Client(cluster, timeout=20) as client:
                client.wait_for_workers(len(processes), timeout=20)
                assert client.submit(lambda: 1 + 1).result(timeout=20) == 2
                workers = {w["name"]: addr for addr, w in client.scheduler_info()["workers"].items()}
                assert all(addr.startswith("tls://") for addr in workers.values())
                if condor_mode:
                    assert workers["condor"] == f"tls://127.0.0.1:{worker_launcher.DASK_CONTAINER_PORT}"
                    seen = client.run(inspect_environment, workers=[workers["condor"]])[workers["condor"]]
                    assert seen["BEARER_TOKEN_FILE"] == str(scratch / "data.token")
                    assert seen["SSL_CERT_FILE"] == str(scratch / "site-ca.pem")
                    assert len(seen["cert_dir"]) == 1 and seen["cert_dir"][0].endswith(".0")
                    assert stat.S_IMODE((scratch / "data.token").stat().st_mode) == 0o600
                    assert client.submit(lambda: 40 + 2, workers=[workers["condor"]]).result(timeout=20) == 42
            # without the user's certificate nobody gets in: not over plain TCP...
            with pytest.raises((OSError, TimeoutError)):
                Client(address.replace("tls://", "tcp://"), timeout=2)
            # ... nor with a certificate from another CA (the scheduler requires and checks client certificates)
            other_ca, other_ca_key = make_ca("intruder CA")
            other_cert, other_key = make_leaf(other_ca, other_ca_key, "mallory")
            (tmp_path / "other.crt").write_bytes(_pem(other_cert))
            _write_key(other_key, tmp_path / "other.key")
            intruder = Security(
                tls_ca_file=str(dask_dir / "ca.pem"),
                tls_client_cert=str(tmp_path / "other.crt"),
                tls_client_key=str(tmp_path / "other.key"),
                require_encryption=True,
            )
            with pytest.raises((OSError, TimeoutError)):
                Client(address, security=intruder, timeout=2)
        finally:
            for process in processes:
                process.terminate()
            outputs = [process.communicate(timeout=20)[0] for process in processes]
        if condor_mode:
            assert "af-dask-worker: " in outputs[1] and "--no-nanny" in outputs[1]
