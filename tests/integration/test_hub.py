"""JupyterHub on the facility testbed (role jupyterhub): a physicist's path from login to histogram,
and what one user cannot do to another.

The hub is driven the way a browser drives it (tests/support/hub.py): the hub sends the browser to
the OIDC provider, the user logs in there, the provider sends the browser back, the hub starts the
user's server in a container of the notebook image, and JupyterLab answers through the proxy. The
example notebooks then run unchanged inside alice's server (nbclient's ``jupyter execute``): Dask
workers start as HTCondor jobs and read through XRootD with her token.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from types import SimpleNamespace

import pytest

from tests.support.hub import hub_api, log_in, start_server, stop_server
from tests.support.oidc import LoginRefused
from tests.support.testbed import run_playbook

pytestmark = pytest.mark.testbed

NODE = "services"
HUB = f"https://{NODE}.af.test:8443"
ISSUER = f"https://{NODE}.af.test:4443/api/oidc"
EXAMPLES = ("zpeak-public-data", "zpeak-protected-data", "scaling")


def password(facility, user: str) -> str:
    return (facility.credentials / "oidc" / f"{user}.password").read_text().strip()


def in_server(facility, user: str, command: str, timeout: float = 900):
    """Run command in user's server container, as the container's user (theirs), in their home."""
    return facility.exec(NODE, f"docker exec jupyter-{user} bash -c {shlex.quote(command)}", timeout=timeout)


def as_node_user(facility, user: str, command: str):
    """Run command on the hub node itself as user (outside any container)."""
    return facility.exec(NODE, f"runuser -u {user} -- bash -c {shlex.quote(command)}")


@pytest.fixture(scope="module")
def alice(facility, web):
    """Alice logged in, her server started; stopped through the hub API at the end."""
    session = web()
    started = time.monotonic()
    log_in(session, HUB, ISSUER, "alice", password(facility, "alice"))
    logged_in = time.monotonic()
    page = start_server(session, HUB, "alice")
    served = time.monotonic()
    yield SimpleNamespace(session=session, page=page, login_s=logged_in - started, spawn_s=served - logged_in)
    stop_server(session, HUB, "alice")


@pytest.fixture(scope="module")
def carol(facility, web):
    session = web()
    log_in(session, HUB, ISSUER, "carol", password(facility, "carol"))
    return session


def test_alice_logs_in_at_the_provider_and_lands_in_jupyterlab(alice):
    assert "<title>JupyterLab</title>" in alice.page.text
    assert '"baseUrl": "/user/alice/"' in alice.page.text or "/user/alice/" in alice.page.text
    print(f"login {alice.login_s:.1f} s, spawn to JupyterLab {alice.spawn_s:.1f} s")


def test_alices_server_runs_as_alice_with_her_credentials_only(facility, alice):
    ids = facility.exec(NODE, "id -u alice; id -g alice").stdout.split()
    inspect = json.loads(facility.exec(NODE, "docker inspect jupyter-alice").stdout)[0]
    assert inspect["Config"]["User"] == f"{ids[0]}:{ids[1]}"
    assert inspect["HostConfig"]["NetworkMode"] == "host"
    credential_mounts = [m for m in inspect["Mounts"] if m["Source"].startswith("/var/lib/af/credentials")]
    assert [(m["Source"], m["Destination"], m["RW"]) for m in credential_mounts] == [
        ("/var/lib/af/credentials/alice", "/etc/af/credentials", False)
    ]
    inside = in_server(facility, "alice", "id -un; ls /etc/af/credentials; ls ~/examples; touch /etc/af/credentials/x")
    lines = inside.stdout.split()
    assert lines[0] == "alice"
    assert {"compute.token", "dask", "data.token"} <= set(lines)
    assert "condor" not in lines, "the IDTOKEN directory of earlier versions is still there"
    assert {f"{name}.ipynb" for name in EXAMPLES} <= set(lines)
    assert "Read-only file system" in inside.stderr


def test_a_provider_account_outside_the_allowed_groups_is_refused(facility, web, carol):
    with pytest.raises(LoginRefused, match="hub refused mallory"):
        log_in(web(), HUB, ISSUER, "mallory", password(facility, "mallory"))
    assert hub_api(carol, HUB, "GET", "/users/mallory").status_code == 404


def test_admin_group_members_administer_the_hub_and_others_do_not(alice, carol):
    names = {user["name"] for user in hub_api(carol, HUB, "GET", "/users").json()}
    assert {"alice", "carol"} <= names
    assert hub_api(alice.session, HUB, "GET", "/users").status_code == 403
    assert hub_api(alice.session, HUB, "GET", "/users/alice").json()["admin"] is False


def test_a_user_whose_credentials_are_missing_gets_no_server(facility, carol):
    away = facility.exec(NODE, "mv /var/lib/af/credentials/carol /var/lib/af/credentials/.carol-away")
    assert away.returncode == 0, away.stderr
    try:
        carol.get(f"{HUB}/hub/spawn/carol", timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            server = hub_api(carol, HUB, "GET", "/users/carol").json()["servers"].get("")
            if not server or not server.get("pending"):
                break
            time.sleep(1)
        assert not hub_api(carol, HUB, "GET", "/users/carol").json()["servers"]
        assert facility.exec(NODE, "docker ps -q --filter name=jupyter-carol").stdout.strip() == ""
        assert facility.exec(NODE, "test -e /var/lib/af/credentials/carol").returncode == 1
        log = facility.exec(NODE, "journalctl -u jupyterhub --since -2min --no-pager").stdout
        assert "no credentials at /var/lib/af/credentials/carol" in log
    finally:
        facility.exec(NODE, "mv /var/lib/af/credentials/.carol-away /var/lib/af/credentials/carol")


@pytest.fixture(scope="module")
def examples(facility, alice):
    """The example notebooks, run unchanged in alice's server; their results/*.json."""
    results = {}
    for name in EXAMPLES:
        run = in_server(facility, "alice", f"cd ~/examples && jupyter execute --inplace {name}.ipynb")
        assert run.returncode == 0, f"{name}: {run.stderr[-3000:]}"
        out = in_server(facility, "alice", f"cat ~/examples/results/{name}.json")
        assert out.returncode == 0, out.stderr
        results[name] = json.loads(out.stdout)
    return results


def test_the_public_data_notebook_finds_the_z_peak_without_a_token(examples):
    result = examples["zpeak-public-data"]
    assert result["events"] == 1_000_000
    assert 88 <= result["peak_gev"] <= 94


def test_the_protected_data_notebook_finds_the_same_peak_on_htcondor_workers(examples):
    public, protected = examples["zpeak-public-data"], examples["zpeak-protected-data"]
    assert (protected["events"], protected["pairs"]) == (public["events"], public["pairs"])
    assert protected["peak_gev"] == public["peak_gev"]


def test_the_scaling_notebook_measures_one_and_two_workers(examples):
    rows = examples["scaling"]
    assert [row["workers"] for row in rows] == [1, 2]
    assert all(row["events"] == 2_000_000 and row["events_per_s"] > 0 for row in rows)


def test_the_notebooks_left_no_job_in_the_queue_and_wrote_alices_files(facility, examples):
    assert facility.exec("submit1", "condor_q alice -af ClusterId").stdout.strip() == ""
    owner = in_server(facility, "alice", "stat -c %U ~/examples/results/zpeak-protected-data.png").stdout.strip()
    assert owner == "alice"


def test_alice_cannot_read_bobs_credentials_or_home(facility, alice):
    inside = in_server(facility, "alice", "ls /var/lib/af/credentials/bob /home/bob")
    assert inside.returncode != 0 and "No such file or directory" in inside.stderr
    on_node = as_node_user(facility, "alice", "cat /var/lib/af/credentials/bob/data.token; ls /home/bob")
    assert on_node.stderr.count("Permission denied") == 2, on_node.stderr


def test_alices_token_writes_her_storage_area_and_not_bobs(facility, alice):
    def copy_to(area: str):
        copy = f"echo from-alice > /tmp/note && xrdcp -f /tmp/note $AF_XROOTD_URL//store/user/{area}/note"
        return in_server(facility, "alice", copy)

    assert copy_to("alice").returncode == 0
    refused = copy_to("bob")
    assert refused.returncode != 0
    assert facility.exec("storage1", "test -e /srv/xrootd/store/user/bob/note").returncode == 1


def test_alice_cannot_remove_bobs_job(facility, alice):
    submit = (
        "printf 'executable=/bin/sleep\\narguments=600\\nuniverse=vanilla\\nqueue\\n' > /tmp/sleep.sub && "
        "condor_submit -spool -terse /tmp/sleep.sub"
    )
    bob = facility.exec(NODE, f"af-notebook bob bash -c {shlex.quote(submit)}")
    assert bob.returncode == 0, bob.stderr
    job = bob.stdout.strip().splitlines()[-1].split()[0].split(".")[0]  # "12.0 - 12.0"
    try:
        # With her own compute token the schedd shows her none of bob's jobs to remove, by id or by owner.
        for target in (job, "bob"):
            attempt = in_server(facility, "alice", f"condor_rm {target}")
            assert "marked for removal" not in attempt.stdout + attempt.stderr
        owner = facility.exec("submit1", f"condor_q {job} -af Owner").stdout.strip()
        assert owner == "bob", "bob's job must still be in the queue"
    finally:
        facility.exec(NODE, f"af-notebook bob condor_rm {job}")


def token_claims(facility, user: str, name: str = "data.token") -> dict:
    """The claims of a token that user's running server sees (unverified: what a client sends)."""
    text = in_server(facility, user, f"cat /etc/af/credentials/{name}").stdout.strip()
    body = text.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def converge_credentials(facility, **role_vars):
    """Converge role user_credentials on the hub node for alice alone, with these role variables."""
    extra = json.dumps({"user_credentials_users": ["alice"], **role_vars})
    return run_playbook("playbooks/user_credentials.yml", facility.inventory, "--limit", NODE, "-e", extra)


def test_alices_data_token_is_refreshed_in_her_running_server_without_a_converge(facility, alice):
    # Short windows so that the test sees turns come: a token every 20 s, each valid 60 s; the timer every 5 s.
    short = {
        "user_credentials_data_token_lifetime": 60,
        "user_credentials_data_token_interval": 20,
        "user_credentials_data_token_horizon": 240,
        "user_credentials_data_token_renew_before": 60,
        "user_credentials_token_refresh_period": 5,
    }
    try:
        converged = converge_credentials(facility, **short)
        assert converged.rc == 0, converged.output[-3000:]
        first = token_claims(facility, "alice")
        first_compute = token_claims(facility, "alice", "compute.token")
        assert first["exp"] - first["nbf"] == 60 == first_compute["exp"] - first_compute["nbf"]
        # From here on no converge runs: the node's timer installs the next token of the queue.
        deadline = time.monotonic() + 60
        while (current := token_claims(facility, "alice"))["jti"] == first["jti"] and time.monotonic() < deadline:
            time.sleep(2)
        assert current["jti"] != first["jti"], "the token was not refreshed within 60 s"
        assert current["nbf"] > first["nbf"] and current["exp"] > first["exp"]
        assert (current["sub"], current["scope"]) == (first["sub"], first["scope"])
        # The refreshed token is the one her session uses, and the storage accepts it.
        read = in_server(
            facility,
            "alice",
            "xrdcp -f $AF_XROOTD_URL//store/user/alice/refreshed /dev/null 2>&1;"
            "echo refreshed > /tmp/r && xrdcp -f /tmp/r $AF_XROOTD_URL//store/user/alice/refreshed",
        )
        assert read.returncode == 0, read.stdout + read.stderr
        log = facility.exec(NODE, "journalctl -u af-token-refresh --since -3min --no-pager").stdout
        assert f"alice: installed {current['jti']}" in log
        # Her compute token moved on too, and the pool takes the refreshed one.
        compute = token_claims(facility, "alice", "compute.token")
        assert compute["jti"] != first_compute["jti"] and compute["nbf"] > first_compute["nbf"]
        assert f"alice: installed {compute['jti']}" in log
        queried = in_server(facility, "alice", "condor_q -af ClusterId")
        assert queried.returncode == 0, queried.stdout + queried.stderr
    finally:
        restored = converge_credentials(facility)
        assert restored.rc == 0, restored.output[-3000:]
    restored_claims = token_claims(facility, "alice")
    assert restored_claims["exp"] - restored_claims["nbf"] == 86400
