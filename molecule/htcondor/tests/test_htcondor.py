"""The HTCondor pool as its users and its admin notice it: jobs run, as their owner, in their accounting
group, in Docker containers with published ports; and what must be refused is refused: forged IDTOKENs,
daemons without a site-CA certificate, bad compute tokens, one user acting on another's jobs."""

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import testinfra
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[3]
# The project's JWT codec signs test tokens exactly as the scitoken module does.
sys.path.append(str(REPO / "module_utils"))
import af_jwt as jwt  # noqa: E402

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DOMAIN = "af.test"
JOB_IMAGE = "af-node-base:trixie"
# The issuer runs on head (molecule.yml); its keys are with the scenario's inventory, as a site's are.
ISSUER = f"https://head.{DOMAIN}"
ISSUER_KEYS = Path(INVENTORY).parent / "credentials" / "token-issuer"
POOL_AUDIENCE = f"https://{DOMAIN}/htcondor"
STORAGE_AUDIENCE = f"https://{DOMAIN}"
COMPUTE_SCOPES = ("compute.read", "compute.create", "compute.modify", "compute.cancel")
# condor_ping's verdict lines, and the refusals it prints.
GRANTED = "Authorized:                  TRUE"


@pytest.fixture(scope="module")
def nodes():
    return {name: testinfra.get_host(f"docker://{name}") for name in ("head", "submit1", "exec1")}


def as_user(node, user, command, check=True):
    """Run a shell command as a facility user (a login shell, as a physicist would)."""
    result = node.run(f"runuser -l {user} -c {quote(command)}")
    if check:
        assert result.rc == 0, f"{command!r} as {user} failed:\n{result.stdout}\n{result.stderr}"
    return result


def quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def write_as(node, user, path, content):
    """Write a file owned by `user` (through docker exec: testinfra has no stdin)."""
    container = node.backend.name
    if user != "root":
        node.check_output(f"install -d -o {user} -g af-users -m 0700 {os.path.dirname(path)}")
    subprocess.run(
        ["docker", "exec", "-i", container, "sh", "-c", f"umask 077 && cat > {path} && chown {user}: {path}"],
        input=content.encode(),
        check=True,
    )


def submit(node, user, name, body, extra_args=""):
    """Submit a job described by `body` as `user` from `node`; return the cluster id."""
    directory = f"/home/{user}/jobs"
    write_as(node, user, f"{directory}/{name}.sub", textwrap.dedent(body))
    out = as_user(node, user, f"cd {directory} && condor_submit -terse {extra_args} {name}.sub").stdout
    return int(out.split()[0].split(".")[0])


def wait_for_job(node, cluster, status=4, timeout=90):
    """Wait until the job is in `status` (4 = completed, 2 = running); return its ad from queue or history."""
    deadline = time.monotonic() + timeout
    attributes = ""
    while time.monotonic() < deadline:
        found = []
        # A completed job is in the history, or still in the queue when it waits to be retrieved.
        for command in ("condor_q", "condor_history") if status == 4 else ("condor_q",):
            ads = node.run(f"{command} {cluster} -json")
            found = json.loads(ads.stdout) if ads.rc == 0 and ads.stdout.strip() else []
            if found:
                break
        if found:
            ad = found[0]
            if ad.get("JobStatus") == status:
                return ad
            attributes = {k: ad.get(k) for k in ("JobStatus", "HoldReason", "LastRejMatchReason")}
        time.sleep(0.5)
    queue = node.run(f"condor_q {cluster} -better-analyze").stdout
    pytest.fail(f"job {cluster} not in status {status} after {timeout} s ({attributes}):\n{queue}")


def run_module(host, module, args, check=False):
    """Run one of the project's modules on a scenario node through Ansible, as the roles do."""
    command = [
        "ansible", host, "-i", INVENTORY, "-m", module, "-a", json.dumps(args), "-o",
        "-M", str(REPO / "library"),
    ]  # fmt: skip
    if check:
        command.append("--check")
    env = {**os.environ, "ANSIBLE_MODULE_UTILS": str(REPO / "module_utils")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False).stdout
    status, _, payload = out.partition(" => ")
    return ("SUCCESS" in status or "CHANGED" in status), json.loads(payload)


def issuer_key() -> tuple[str, str]:
    """(PEM, kid) of the issuer's active signing key."""
    kid = (ISSUER_KEYS / "active-kid").read_text().strip()
    return (ISSUER_KEYS / f"{kid}.key").read_text(), kid


def compute_token(sub="alice", *, scopes=COMPUTE_SCOPES, audience=POOL_AUDIENCE, issuer=ISSUER, lifetime=600,
                  starts_in=-30, key=None):  # fmt: skip
    """A token signed on the controller as the facility does (or with `key`, a forger's (PEM, kid))."""
    pem, kid = key or issuer_key()
    now = int(time.time()) + starts_in
    claims = {"iss": issuer, "sub": sub, "aud": audience, "wlcg.ver": "1.0", "iat": now, "nbf": now,
              "exp": now + lifetime, "jti": uuid.uuid4().hex}  # fmt: skip
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.mint(pem, kid, claims)


def foreign_key() -> tuple[str, str]:
    """A key the issuer does not publish, with the issuer's own key id: a forger's best try."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    return pem, issuer_key()[1]


def give_token(node, user, token):
    """Put `token` where the user's HTCondor tools read it (SCITOKENS_FILE), replacing any earlier one."""
    write_as(node, user, f"/home/{user}/.af/compute.token", token)


def as_token_user(node, user, command, check=True):
    """Run an HTCondor tool as `user` with only their compute token (no FS, no certificate)."""
    settings = (f"export _condor_SCITOKENS_FILE=/home/{user}/.af/compute.token "
                "_condor_SEC_CLIENT_AUTHENTICATION_METHODS=SCITOKENS")  # fmt: skip
    return as_user(node, user, f"{settings}; {command}", check=check)


def ping(node, user, target, level, methods="SCITOKENS"):
    """condor_ping -verbose of `level` at `target` (condor_ping's -pool/-type/-name/-addr arguments)."""
    env = f"_condor_SEC_CLIENT_AUTHENTICATION_METHODS={methods} _condor_SCITOKENS_FILE=/home/{user}/.af/compute.token"
    command = f"{env} condor_ping -verbose {target} {level}"
    result = node.run(command) if user == "root" else as_user(node, user, command, check=False)
    return result.stdout + result.stderr


def forged_idtoken(alg: str, sub: str) -> str:
    """An IDTOKEN of the pool's trust domain with an empty signature: what HTCondor 23.9 accepts with IDTOKENS."""

    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': alg, 'kid': 'POOL'})}.{part({'iss': DOMAIN, 'sub': sub, 'iat': now, 'exp': now + 3600})}."


@pytest.fixture(scope="module")
def addresses(nodes):
    """Sinful strings of the collector and the schedd, so a refused client need not ask the collector."""
    schedd = nodes["head"].check_output("condor_status -schedd -af MyAddress")
    collector = nodes["head"].check_output("condor_status -collector -af MyAddress")
    return {"collector": f"-addr '{collector}'", "schedd": f"-addr '{schedd}'"}


@pytest.fixture(scope="module")
def job_image_on_exec1():
    """The job image in the execute node's engine (issue 5's registry replaces this side-load)."""
    saved = subprocess.run(["docker", "save", JOB_IMAGE], capture_output=True, check=True).stdout
    subprocess.run(["docker", "exec", "-i", "exec1", "docker", "load"], input=saved, capture_output=True, check=True)
    return JOB_IMAGE


def test_pool_has_every_daemon(nodes):
    ok, result = run_module(
        "head", "condor_pool_info", {"wait_for": {"slots": 1, "daemons": ["negotiator", "schedd"]}, "timeout": 60}
    )
    assert ok, result
    pool = result["pool"]
    # (Molecule's containers have short hostnames, the testbed's FQDNs.)
    assert [name.split(".")[0] for name in pool["daemons"]["schedd"]] == ["submit1"]
    assert [slot["machine"].split(".")[0] for slot in pool["slots"]] == ["exec1"]
    assert pool["slots"][0]["has_docker"] is True


def test_daemons_authenticate_with_their_certificates_encrypted(nodes):
    out = nodes["exec1"].check_output(f"condor_ping -type collector -name head.{DOMAIN} -verbose ADVERTISE_STARTD")
    assert "Authenticated using:         SSL" in out and f"condor@exec1.{DOMAIN}" in out and "AES" in out, out
    for node in nodes.values():
        key = node.file("/etc/af/tls/host.key")
        assert key.user == "root" and key.mode == 0o600
        # IDTOKENS is off everywhere, and no signing key or token of it is left.
        for knob in ("SEC_DEFAULT_AUTHENTICATION_METHODS", "SEC_CLIENT_AUTHENTICATION_METHODS"):
            assert "IDTOKENS" not in node.check_output(f"condor_config_val {knob}").upper()
        assert not node.file("/etc/condor/passwords.d/POOL").exists
        # Nor a CA of the collector's own making: the site CA is the only one.
        assert node.run("ls /etc/condor/*.pem").stdout.strip() == ""
        assert node.run("find /etc/condor/tokens.d /etc/condor/issued-tokens.d -type f").stdout.strip() == ""
    assert not (ISSUER_KEYS.parent / "htcondor" / "pool-signing.key").exists()


@pytest.mark.parametrize("alg", ["none", "ES256"])
@pytest.mark.parametrize("sub", [f"condor@head.{DOMAIN}", f"bob@{DOMAIN}"])
def test_a_forged_unsigned_idtoken_authenticates_nowhere(nodes, addresses, alg, sub):
    """Any user may write such a token; no daemon of the pool talks IDTOKENS any more."""
    exec1 = nodes["exec1"]
    exec1.run("rm -rf /home/alice/.condor")
    write_as(exec1, "alice", "/home/alice/.condor/tokens.d/forged", forged_idtoken(alg, sub))
    for target, level in ((addresses["collector"], "ADMINISTRATOR"), (addresses["schedd"], "WRITE")):
        out = ping(exec1, "alice", target, level, methods="IDTOKENS")
        assert GRANTED not in out and "AUTHENTICATE:1003" in out, out
    # Offered alongside her other methods, the forged token changes nothing either.
    out = ping(exec1, "alice", addresses["collector"], "ADMINISTRATOR", methods="FS,SSL,SCITOKENS,IDTOKENS")
    assert GRANTED not in out, out
    exec1.run("rm -rf /home/alice/.condor")


def test_an_execute_node_may_advertise_its_startd_and_nothing_more(nodes, addresses):
    """Its certificate is condor@exec1: a startd and a master, reads; not a schedd, a daemon or an admin."""
    exec1 = nodes["exec1"]
    for target in (addresses["collector"], addresses["schedd"]):
        assert GRANTED in ping(exec1, "root", target, "READ", methods="SSL")
    assert GRANTED in ping(exec1, "root", addresses["collector"], "ADVERTISE_STARTD", methods="SSL")
    for target, level in (
        (addresses["collector"], "ADVERTISE_SCHEDD"),
        (addresses["collector"], "DAEMON"),
        (addresses["collector"], "ADMINISTRATOR"),
        (addresses["schedd"], "DAEMON"),
        (addresses["schedd"], "ADMINISTRATOR"),
        (addresses["schedd"], "NEGOTIATOR"),
    ):
        out = ping(exec1, "root", target, level, methods="SSL")
        assert GRANTED not in out and f'DENIED" from server for user condor@exec1.{DOMAIN}' in out, (level, out)


def test_vanilla_job_runs_as_its_owner_in_the_facility_group(nodes):
    cluster = submit(
        nodes["submit1"],
        "alice",
        "whoami",
        """\
        executable = /usr/bin/id
        arguments = -un
        output = whoami.out
        error = whoami.err
        log = whoami.log
        request_memory = 64M
        queue
        """,
    )
    ad = wait_for_job(nodes["submit1"], cluster)
    assert nodes["submit1"].file("/home/alice/jobs/whoami.out").content_string.strip() == "alice"
    assert ad["AccountingGroup"] == "group_af.alice"
    assert ad["LastRemoteHost"].split("@")[1].split(".")[0] == "exec1"


def test_docker_job_runs_as_its_owner(nodes, job_image_on_exec1):
    cluster = submit(
        nodes["submit1"],
        "bob",
        "docker-id",
        f"""\
        universe = docker
        docker_image = {job_image_on_exec1}
        executable = /bin/sh
        transfer_executable = false
        arguments = "-c 'id -u; grep ^ID= /etc/os-release'"
        should_transfer_files = YES
        when_to_transfer_output = ON_EXIT
        output = docker-id.out
        error = docker-id.err
        log = docker-id.log
        request_memory = 128M
        queue
        """,
    )
    ad = wait_for_job(nodes["submit1"], cluster)
    assert nodes["submit1"].file("/home/bob/jobs/docker-id.out").content_string.split() == ["2002", "ID=debian"]
    assert ad["AccountingGroup"] == "group_af.bob"
    # The container is gone once the job is.
    assert nodes["exec1"].check_output("docker ps -aq") == ""


def test_docker_job_publishes_its_service_port_to_the_submit_node(nodes, job_image_on_exec1):
    cluster = submit(
        nodes["submit1"],
        "alice",
        "service",
        f"""\
        universe = docker
        docker_image = {job_image_on_exec1}
        executable = /bin/sh
        transfer_executable = false
        arguments = "-c 'cd /tmp && echo dask-ok > index.html && exec python3 -m http.server 8786'"
        container_service_names = dask
        dask_container_port = 8786
        should_transfer_files = YES
        when_to_transfer_output = ON_EXIT
        output = service.out
        error = service.err
        log = service.log
        request_memory = 128M
        queue
        """,
    )
    try:
        deadline = time.monotonic() + 60
        port = ""
        while time.monotonic() < deadline and not port.isdigit():
            port = nodes["submit1"].check_output(f"condor_q {cluster} -af dask_HostPort").strip()
            time.sleep(1)
        assert port.isdigit(), f"dask_HostPort never appeared: {port!r}"
        fetch = f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://exec1.{DOMAIN}:{port}/').read().decode())\""
        deadline = time.monotonic() + 20
        while (reply := nodes["submit1"].run(fetch)).rc != 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert reply.stdout.strip() == "dask-ok", reply.stderr
    finally:
        as_user(nodes["submit1"], "alice", f"condor_rm {cluster}")


def test_a_startd_without_the_site_ca_certificate_cannot_advertise(nodes):
    """No certificate, or one for the node's very name from a user's Dask CA: the ad is not listed."""
    exec1 = nodes["exec1"]
    # A user's Dask CA (as user_credentials makes one) signs a certificate for exec1's name.
    exec1.check_output(
        "cd /root && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout dask-ca.key "
        "-out dask-ca.pem -subj '/CN=Dask CA for alice' -days 2 && "
        f"openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout rogue.key -out rogue.csr "
        f"-subj '/CN=exec1.{DOMAIN}' && "
        "openssl x509 -req -in rogue.csr -CA dask-ca.pem -CAkey dask-ca.key -CAcreateserial -out rogue.crt -days 1"
    )
    name = f"rogue-{uuid.uuid4().hex[:6]}@exec1.{DOMAIN}"
    ad = f'MyType = "Machine"\nName = "{name}"\nMachine = "exec1.{DOMAIN}"\nStartdIpAddr = "<127.0.0.1:9618>"\n'
    write_as(exec1, "root", "/root/rogue.ad", ad)
    for certificate, key in (("/nonexistent", "/nonexistent"), ("/root/rogue.crt", "/root/rogue.key")):
        credentials = f"_condor_AUTH_SSL_CLIENT_CERTFILE={certificate} _condor_AUTH_SSL_CLIENT_KEYFILE={key}"
        refused = exec1.run(f"{credentials} condor_advertise UPDATE_STARTD_AD /root/rogue.ad")
        assert refused.rc != 0 or "fail" in (refused.stdout + refused.stderr).lower(), certificate
        pinged = exec1.run(f"{credentials} condor_ping -verbose -pool head.{DOMAIN} -type collector ADVERTISE_STARTD")
        assert GRANTED not in pinged.stdout + pinged.stderr, certificate
    time.sleep(2)
    listed = nodes["head"].check_output(f"condor_status -const 'Name == \"{name}\"' -af Name")
    assert listed == "", "a startd without the site CA's certificate was listed"
    # Control: the same advertisement with the node's certificate is accepted (the refusal is about credentials).
    exec1.check_output("condor_advertise UPDATE_STARTD_AD /root/rogue.ad")
    deadline = time.monotonic() + 10
    while not nodes["head"].check_output(f"condor_status -const 'Name == \"{name}\"' -af Name"):
        assert time.monotonic() < deadline, "the control advertisement never appeared"
        time.sleep(0.5)
    invalidate = f'MyType = "Query"\nTargetType = "Machine"\nRequirements = Name == "{name}"\n'
    write_as(exec1, "root", "/root/invalidate.ad", invalidate)
    exec1.run("condor_advertise INVALIDATE_STARTD_ADS /root/invalidate.ad")


def test_remote_submit_needs_the_users_compute_token(nodes):
    """From a node where alice is not local to the schedd: no token, no job; compute.read looks, her own
    compute token submits."""
    exec1 = nodes["exec1"]
    # No shared filesystem in the facility: remote submitters always transfer files.
    body = """\
        executable = /bin/hostname
        should_transfer_files = YES
        when_to_transfer_output = ON_EXIT
        output = remote.out
        error = remote.err
        log = remote.log
        request_memory = 64M
        queue
        """
    exec1.run("rm -rf /home/alice/.condor /home/alice/.af")
    write_as(exec1, "alice", "/home/alice/jobs/remote.sub", textwrap.dedent(body))
    schedd = nodes["head"].check_output("condor_status -schedd -af Name")
    remote = f"condor_submit -remote {schedd} -pool head.{DOMAIN} remote.sub"
    # Without a token alice is nobody to the pool: not even a query is answered (reads need
    # authentication too), so the submit fails.
    refused = as_user(exec1, "alice", f"cd jobs && {remote}", check=False)
    assert refused.rc != 0, refused.stdout
    query = as_user(exec1, "alice", f"condor_status -pool head.{DOMAIN} -schedd -debug", check=False)
    assert "AUTHENTICATE:1003" in query.stdout + query.stderr
    queued = nodes["submit1"].check_output("condor_q -allusers -af Owner Cmd")
    assert "/bin/hostname" not in queued

    # A token with compute.read lets alice look at the queue, not submit.
    give_token(exec1, "alice", compute_token(scopes=["compute.read"]))
    as_token_user(exec1, "alice", f"condor_q -name {schedd} -pool head.{DOMAIN} -allusers")
    read_only = as_token_user(exec1, "alice", f"cd jobs && {remote}", check=False)
    assert read_only.rc != 0, read_only.stdout

    # Her compute token: the spooled job runs as alice, and the schedd notes the token it came with.
    give_token(exec1, "alice", compute_token())
    out = as_token_user(exec1, "alice", f"cd jobs && {remote}").stdout
    cluster = int(out.split("submitted to cluster")[1].strip(" .\n"))
    ad = wait_for_job(nodes["submit1"], cluster)
    assert ad["Owner"] == "alice"
    assert (ad["AuthTokenIssuer"], ad["AuthTokenSubject"]) == (ISSUER, "alice")
    # Her output comes back over the (encrypted) spool transfer.
    as_token_user(exec1, "alice", f"cd jobs && condor_transfer_data -name {schedd} -pool head.{DOMAIN} {cluster}")
    assert exec1.file("/home/alice/jobs/remote.out").content_string.strip().startswith("exec1")
    as_token_user(exec1, "alice", f"condor_rm -name {schedd} -pool head.{DOMAIN} {cluster}")
    exec1.run("rm -rf /home/alice/.af")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: compute_token(key=foreign_key()), id="signed-by-a-key-the-issuer-does-not-publish"),
        pytest.param(lambda: compute_token(sub="bob", key=foreign_key()), id="another-user-signed-by-a-foreign-key"),
        pytest.param(lambda: compute_token(lifetime=60, starts_in=-120), id="expired"),
        pytest.param(lambda: compute_token(starts_in=300), id="not-yet-valid"),
        pytest.param(lambda: compute_token(audience=STORAGE_AUDIENCE), id="for-the-storage-audience"),
        pytest.param(lambda: compute_token(scopes=["storage.read:/store"]), id="a-data-token-without-compute-scopes"),
        pytest.param(lambda: compute_token(issuer=ISSUER + "/"), id="issuer-with-a-trailing-slash"),
        pytest.param(lambda: compute_token(sub="mallory"), id="a-subject-that-is-no-facility-user"),
    ],
)
def test_a_bad_compute_token_gets_nothing(nodes, addresses, token):
    exec1 = nodes["exec1"]
    give_token(exec1, "alice", token())
    for target, level in ((addresses["collector"], "READ"), (addresses["schedd"], "WRITE")):
        out = ping(exec1, "alice", target, level)
        assert GRANTED not in out, (level, out)
    exec1.run("rm -rf /home/alice/.af")


def test_users_cannot_touch_each_others_jobs(nodes):
    submit1, exec1 = nodes["submit1"], nodes["exec1"]
    cluster = submit(
        submit1,
        "bob",
        "long",
        """\
        executable = /bin/sleep
        arguments = 300
        log = long.log
        request_memory = 64M
        queue
        """,
    )
    schedd = f"-name {nodes['head'].check_output('condor_status -schedd -af Name')} -pool head.{DOMAIN}"
    try:
        # Locally (FS) and remotely with her own valid compute token, alice can neither remove nor edit it.
        give_token(exec1, "alice", compute_token())
        # The schedd shows her none of bob's jobs: condor_rm says "no jobs" (status 0 when the queue holds
        # none of hers, 1 otherwise), so what counts is that nothing is removed or set, and the job below.
        removals = [
            as_user(submit1, "alice", f"condor_rm {cluster}", check=False),
            as_token_user(exec1, "alice", f"condor_rm {schedd} {cluster}", check=False),
        ]
        edits = [
            as_user(submit1, "alice", f"condor_qedit {cluster} JobPrio 10", check=False),
            as_token_user(exec1, "alice", f"condor_qedit {schedd} {cluster} JobPrio 10", check=False),
        ]
        for attempt in removals:
            assert "marked for removal" not in attempt.stdout, attempt.stdout + attempt.stderr
        for attempt in edits:
            assert attempt.rc != 0 and "Set attribute" not in attempt.stdout, attempt.stdout + attempt.stderr
        ad = json.loads(submit1.check_output(f"condor_q {cluster} -json"))[0]
        assert ad["JobStatus"] in (1, 2) and ad.get("JobPrio", 0) != 10 and ad["Owner"] == "bob"
    finally:
        exec1.run("rm -rf /home/alice/.af")
        as_user(submit1, "bob", f"condor_rm {cluster}")
    assert submit1.check_output(f"condor_q {cluster} -af JobStatus") in ("", "3")


def test_a_scheduling_knob_reconfigures_without_restarting(nodes):
    """A site knob reaches every node through condor_reconfig: running daemons (and jobs) stay."""
    playbook = REPO / "playbooks" / "htcondor.yml"
    env = {**os.environ, "ANSIBLE_CONFIG": str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.cfg")}

    def converge(*extra):
        command = ["ansible-playbook", "-i", INVENTORY, str(playbook), *extra]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    master_pid = {name: node.check_output("systemctl show -p MainPID --value condor") for name, node in nodes.items()}
    applied = converge("-e", '{"htcondor_config_knobs": {"MAX_JOBS_PER_OWNER": 4242}}')
    assert applied.returncode == 0, applied.stdout[-3000:]
    handlers = {line for line in applied.stdout.splitlines() if line.startswith("RUNNING HANDLER")}
    assert handlers and all("Reconfigure HTCondor" in line for line in handlers), handlers
    for name, node in nodes.items():
        assert node.check_output("condor_config_val MAX_JOBS_PER_OWNER") == "4242"
        assert node.check_output("systemctl show -p MainPID --value condor") == master_pid[name]
    restored = converge()
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert nodes["head"].run("condor_config_val MAX_JOBS_PER_OWNER").stdout.strip() != "4242"
