"""Unit tests of af-token-refresh (role user_credentials), which installs each user's current data token
from the queue a converge placed on the node. Real files in a temporary directory; tokens are signed with
module_utils/af_jwt.py as on the controller.
"""

import importlib.machinery
import importlib.util
import stat
import sys
from pathlib import Path

import pytest
from ansible.module_utils import af_jwt as jwt
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "roles" / "user_credentials" / "files" / "af-token-refresh"


def _load():
    loader = importlib.machinery.SourceFileLoader("af_token_refresh", str(PROGRAM))
    spec = importlib.util.spec_from_loader("af_token_refresh", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


refresh = _load()
KEY = ec.generate_private_key(ec.SECP256R1())


def queue(user: str, *, lifetime: int, interval: int, horizon: int, now: float) -> list[str]:
    request = jwt.request_claims(issuer="https://af.test/tokens", subject=user, audience=["xrootd"])
    payloads = jwt.queue_claims(request, lifetime=lifetime, interval=interval, horizon=horizon, now=now)
    return [jwt.mint(KEY, "k1", claims) for claims in payloads]


@pytest.fixture
def node(tmp_path):
    """A node's queue directory and credentials directory, with alice's queue and directory."""
    queues, credentials = tmp_path / "queues", tmp_path / "credentials"
    queues.mkdir(mode=0o700)
    (credentials / "alice").mkdir(parents=True, mode=0o700)
    tokens = queue("alice", lifetime=100, interval=50, horizon=300, now=1000)
    (queues / "alice").write_text("\n".join(tokens) + "\n")

    def run(*users, now, check=False):
        return refresh.refresh(str(queues), str(credentials), list(users), now, check)

    return tokens, credentials / "alice", run


def test_the_current_token_is_the_newest_valid_one():
    tokens = queue("alice", lifetime=100, interval=50, horizon=300, now=1000)
    assert len(tokens) == 5  # windows 1000-1100, 1050-1150, ... 1200-1300
    assert refresh.current(tokens, 1000) == tokens[0]
    assert refresh.current(tokens, 1049) == tokens[0]
    assert refresh.current(tokens, 1050) == tokens[1]
    assert refresh.current(tokens, 1299) == tokens[4]
    assert refresh.current(tokens, 1300) is None
    assert refresh.current(tokens, 999) is None
    assert refresh.current(["garbage", "a.b.c"], 1000) is None


def test_it_installs_the_users_token_privately_then_leaves_it(node):
    tokens, directory, run = node
    lines, complete = run(now=1060)
    assert complete and lines[0].startswith("alice: installed ")
    token_file = directory / "data.token"
    assert token_file.read_text() == tokens[1] + "\n"
    info = token_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (directory.stat().st_uid, directory.stat().st_gid)
    assert sorted(p.name for p in directory.iterdir()) == ["data.token"], "temporary file left behind"
    assert run(now=1070) == (["alice: unchanged"], True)
    # Its turn over, the next token replaces it without a converge.
    assert run(now=1110)[0][0].startswith("alice: installed ")
    assert token_file.read_text() == tokens[2] + "\n"


def test_check_mode_changes_nothing(node):
    _tokens, directory, run = node
    assert run("alice", now=1060, check=True)[0][0].startswith("alice: installed ")
    assert not (directory / "data.token").exists()


def test_a_link_planted_as_data_token_is_replaced_not_followed(node, tmp_path):
    tokens, directory, run = node
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me\n")
    (directory / "data.token").symlink_to(elsewhere)
    run(now=1000)
    assert elsewhere.read_text() == "keep me\n"
    assert not (directory / "data.token").is_symlink()
    assert (directory / "data.token").read_text() == tokens[0] + "\n"


def test_an_exhausted_queue_is_reported_and_the_old_token_left(node, capsys, tmp_path):
    _tokens, directory, run = node
    run(now=1000)
    before = (directory / "data.token").read_text()
    assert run(now=5000) == (["alice: no valid token in the queue"], False)
    assert (directory / "data.token").read_text() == before
    queues = str(tmp_path / "queues")
    status = refresh.main(["--queue-dir", queues, "--credentials-dir", str(tmp_path / "credentials")])
    assert status == 1 and "alice: no valid token in the queue" in capsys.readouterr().out


def test_users_without_queue_or_directory_are_skipped(node, tmp_path):
    run = node[2]
    (tmp_path / "queues" / "bob").write_text("\n".join(queue("bob", lifetime=100, interval=50, horizon=100, now=1000)))
    lines, complete = run("alice", "bob", "carol", "Bad/Name", now=1000)
    assert complete
    assert lines[1:] == [
        f"bob: skipped (no {tmp_path / 'credentials' / 'bob'})",
        "carol: skipped (no queue)",
        "Bad/Name: skipped (not a user name)",
    ]
    assert not (tmp_path / "credentials" / "bob").exists()


def test_the_program_is_standalone():
    """Hub nodes run it with Debian's python3 alone: nothing outside the standard library."""
    imported = [line for line in PROGRAM.read_text().splitlines() if line.startswith(("import ", "from "))]
    modules = {line.split()[1].split(".")[0] for line in imported}
    assert modules and modules <= {"__future__", *sys.stdlib_module_names}


def test_a_second_kind_of_token_goes_to_its_own_file(node, tmp_path):
    """The compute queue is installed as compute.token beside data.token, which it never touches."""
    _tokens, directory, _run = node
    compute = tmp_path / "compute-queues"
    compute.mkdir(mode=0o700)
    compute_tokens = queue("alice", lifetime=100, interval=50, horizon=300, now=1000)
    (compute / "alice").write_text("\n".join(compute_tokens) + "\n")
    args = ["--queue-dir", str(compute), "--credentials-dir", str(tmp_path / "credentials")]
    assert refresh.refresh(str(compute), str(tmp_path / "credentials"), [], 1060, True, "compute.token")[1]
    assert not (directory / "compute.token").exists()
    lines, complete = refresh.refresh(str(compute), str(tmp_path / "credentials"), [], 1060, False, "compute.token")
    assert complete and lines[0].startswith("alice: installed ")
    assert (directory / "compute.token").read_text() == compute_tokens[1] + "\n"
    assert not (directory / "data.token").exists()
    with pytest.raises(SystemExit):
        refresh.main([*args, "--token-name", "../data.token"])
