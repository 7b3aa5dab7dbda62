"""The HTCondor pool as its users and its admin notice it: jobs run, as their owner, in their accounting
group, in Docker containers with published ports; and what must be refused is refused."""

import json
import os
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[3]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DOMAIN = "af.test"
JOB_IMAGE = "af-node-base:trixie"


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


def user_token(nodes, user, target, authz=()):
    """Mint `user` an IDTOKEN with condor_token on the central manager and put it in their tokens.d on
    `target` (where remote submitters keep it)."""
    name = f"test-{user}-{uuid.uuid4().hex[:6]}"
    ok, result = run_module(
        "head",
        "condor_token",
        {"identity": f"{user}@{DOMAIN}", "dest": f"/root/test-tokens/{name}", "authz": list(authz),
         "lifetime": 3600, "return_token": True},
    )  # fmt: skip
    assert ok and result["changed"], result
    token = result["token"]
    target.run(f"rm -rf /home/{user}/.condor/tokens.d")
    target.check_output(f"install -d -o {user} -g af-users -m 0700 /home/{user}/.condor")
    write_as(target, user, f"/home/{user}/.condor/tokens.d/{name}", token)


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


def test_daemons_authenticate_with_their_own_tokens_encrypted(nodes):
    out = nodes["exec1"].check_output(f"condor_ping -type collector -name head.{DOMAIN} -verbose ADVERTISE_STARTD")
    assert "IDTOKENS" in out and f"condor@exec1.{DOMAIN}" in out and "AES" in out, out
    # The pool key is where tokens are validated (collector, schedd), never on an execute node.
    for name in ("head", "submit1"):
        key = nodes[name].file("/etc/condor/passwords.d/POOL")
        assert key.user == "root" and key.mode == 0o600
    assert not nodes["exec1"].file("/etc/condor/passwords.d/POOL").exists
    token = nodes["exec1"].file("/etc/condor/tokens.d/af-daemon.token")
    assert token.user == "root" and token.mode == 0o600


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


def test_startd_without_a_token_is_refused_by_the_collector(nodes):
    exec1 = nodes["exec1"]
    name = f"rogue-{uuid.uuid4().hex[:6]}@exec1.{DOMAIN}"
    ad = f'MyType = "Machine"\nName = "{name}"\nMachine = "exec1.{DOMAIN}"\nStartdIpAddr = "<127.0.0.1:9618>"\n'
    write_as(exec1, "root", "/root/rogue.ad", ad)
    no_credentials = "_CONDOR_SEC_TOKEN_DIRECTORY=/nonexistent _CONDOR_SEC_PASSWORD_DIRECTORY=/nonexistent"
    refused = exec1.run(f"{no_credentials} condor_advertise UPDATE_STARTD_AD /root/rogue.ad")
    time.sleep(2)
    listed = nodes["head"].check_output(f"condor_status -const 'Name == \"{name}\"' -af Name")
    assert listed == "", "a startd without credentials was listed"
    assert refused.rc != 0 or "fail" in (refused.stdout + refused.stderr).lower()
    # Control: the same advertisement with the node's token is accepted (the refusal is about credentials).
    exec1.check_output("condor_advertise UPDATE_STARTD_AD /root/rogue.ad")
    deadline = time.monotonic() + 10
    while not nodes["head"].check_output(f"condor_status -const 'Name == \"{name}\"' -af Name"):
        assert time.monotonic() < deadline, "the control advertisement never appeared"
        time.sleep(0.5)
    invalidate = f'MyType = "Query"\nTargetType = "Machine"\nRequirements = Name == "{name}"\n'
    write_as(exec1, "root", "/root/invalidate.ad", invalidate)
    exec1.run("condor_advertise INVALIDATE_STARTD_ADS /root/invalidate.ad")


def test_remote_submit_needs_the_users_token(nodes):
    """From a node where alice is not local to the schedd: no token, no job; her own token, a job."""
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
    exec1.run("rm -rf /home/alice/.condor")
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

    # A token limited to READ lets alice look at the queue, not submit.
    user_token(nodes, "alice", exec1, authz=["READ"])
    as_user(exec1, "alice", f"condor_q -name {schedd} -pool head.{DOMAIN} -allusers")
    read_only = as_user(exec1, "alice", f"cd jobs && {remote}", check=False)
    assert read_only.rc != 0, read_only.stdout

    # Her unrestricted token: the spooled job runs as alice.
    user_token(nodes, "alice", exec1)
    out = as_user(exec1, "alice", f"cd jobs && {remote}").stdout
    cluster = int(out.split("submitted to cluster")[1].strip(" .\n"))
    ad = wait_for_job(nodes["submit1"], cluster)
    assert ad["Owner"] == "alice"
    # Her output comes back over the (encrypted) spool transfer.
    as_user(exec1, "alice", f"cd jobs && condor_transfer_data -name {schedd} -pool head.{DOMAIN} {cluster}")
    assert exec1.file("/home/alice/jobs/remote.out").content_string.strip().startswith("exec1")
    as_user(exec1, "alice", f"condor_rm -name {schedd} -pool head.{DOMAIN} {cluster}")
    exec1.run("rm -rf /home/alice/.condor")


def test_users_cannot_touch_each_others_jobs(nodes):
    submit1 = nodes["submit1"]
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
    try:
        removed = as_user(submit1, "alice", f"condor_rm {cluster}", check=False)
        edited = as_user(submit1, "alice", f"condor_qedit {cluster} JobPrio 10", check=False)
        assert removed.rc != 0, f"alice removed bob's job: {removed.stdout} {removed.stderr}"
        assert edited.rc != 0, f"alice edited bob's job: {edited.stdout} {edited.stderr}"
        ad = json.loads(submit1.check_output(f"condor_q {cluster} -json"))[0]
        assert ad["JobStatus"] in (1, 2) and ad.get("JobPrio", 0) != 10
    finally:
        as_user(submit1, "bob", f"condor_rm {cluster}")
    assert submit1.check_output(f"condor_q {cluster} -af JobStatus") in ("", "3")


def test_condor_token_keeps_a_valid_token(nodes):
    dest = f"/root/test-tokens/carol-{uuid.uuid4().hex[:6]}"
    args = {"identity": f"carol@{DOMAIN}", "dest": dest, "lifetime": 7200}
    ok, first = run_module("head", "condor_token", args)
    assert ok and first["changed"], first
    ok, again = run_module("head", "condor_token", args)
    assert ok and not again["changed"], again
    ok, narrower = run_module("head", "condor_token", {**args, "authz": ["READ"]}, check=True)
    assert ok and narrower["changed"], narrower
    assert "token" not in again and "eyJ" not in json.dumps(again)
    token = nodes["head"].file(dest)
    assert token.mode == 0o600 and token.user == "root"


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
