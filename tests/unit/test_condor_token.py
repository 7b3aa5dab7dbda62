"""Unit tests of the condor_token module (library/condor_token.py) and its helpers in module_utils/af_condor.py.

The module runs in-process against a fake condor_token_create (a Python script written to tmp_path that prints
an unsigned-looking JWT built from its arguments); no HTCondor is needed.
"""

import base64
import importlib.util
import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from ansible.module_utils import af_condor as cu
from ansible.module_utils import basic

REPO = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000
DAY = 86400


def _load_module(name):
    spec = importlib.util.spec_from_file_location(f"library_{name}", REPO / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


condor_token = _load_module("condor_token")


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


SIGNATURE = b64(b"\x8f" * 32)
NOT_UTF8 = b64(b"\xff\xfe")


def make_token(signature=SIGNATURE, kid="POOL", **payload) -> str:
    payload = {"sub": "condor@af.pool", "iss": "af.pool", "iat": NOW - 60, "jti": "abc123", **payload}
    payload = {k: v for k, v in payload.items() if v is not None}
    return f"{b64({'alg': 'HS256', 'kid': kid, 'typ': 'JWT'})}.{b64(payload)}.{signature}"


# --- JWT parsing ---------------------------------------------------------------------------------------


def test_parse_jwt_reads_header_and_payload():
    header, payload = cu.parse_jwt(make_token(scope="condor:/READ condor:/WRITE", exp=NOW + 10) + "\n")
    assert header == {"alg": "HS256", "kid": "POOL", "typ": "JWT"}
    assert payload["sub"] == "condor@af.pool" and payload["exp"] == NOW + 10


def test_token_claims():
    claims = cu.claims_from_text(make_token(scope="condor:/READ condor:/ADVERTISE_STARTD", exp=NOW))
    assert claims == {
        "sub": "condor@af.pool",
        "iss": "af.pool",
        "kid": "POOL",
        "scope": ["condor:/READ", "condor:/ADVERTISE_STARTD"],
        "iat": NOW - 60,
        "exp": NOW,
        "jti": "abc123",
    }
    unrestricted = cu.claims_from_text(make_token())
    assert unrestricted["scope"] == [] and unrestricted["exp"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("abc.def", "3 parts"),
        ("a.b.c.d", "this text has 4"),
        (make_token() + "\n" + make_token(), "single token"),
        (make_token() + " trailing", "single token"),
        (make_token(signature=""), "no signature"),
        (f"{b64({'kid': 'POOL'})}.not*base64.{SIGNATURE}", "base64url"),
        (f"{b64({'kid': 'POOL'})}.{b64(b'not json')}.{SIGNATURE}", "payload is not JSON"),
        (f"{b64(b'[1, 2]')}.{b64({'sub': 'x'})}.{SIGNATURE}", "header is not a JSON object"),
        (f"{NOT_UTF8}.{b64({'sub': 'x'})}.{SIGNATURE}", "header is not JSON"),
    ],
)
def test_parse_jwt_rejects_malformed_text_without_echoing_it(text, message):
    with pytest.raises(cu.TokenError) as err:
        cu.parse_jwt(text)
    assert message in str(err.value)
    assert SIGNATURE not in str(err.value)
    for part in text.split("."):
        if len(part) > 8:
            assert part not in str(err.value)


def test_authz_scope_and_levels():
    assert cu.authz_scope(["READ", "condor:/WRITE", "READ"]) == ["condor:/READ", "condor:/WRITE"]
    assert cu.authz_levels(["READ", "condor:/WRITE", "READ"]) == ["READ", "WRITE"]
    assert cu.authz_scope([]) == []


# --- Renewal and reissue reasons ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "renew_before", "window"),
    [
        (None, DAY, DAY),
        (365 * DAY, DAY, DAY),
        (2 * DAY, DAY, DAY),
        (2 * DAY - 2, DAY, DAY - 1),
        (3600, DAY, 1800),
        (3600, 0, 0),
    ],
)
def test_renew_window(lifetime, renew_before, window):
    assert cu.renew_window(lifetime, renew_before) == window


WANT = {
    "identity": "condor@af.pool",
    "key_id": "POOL",
    "authz": ["READ", "ADVERTISE_STARTD"],
    "lifetime": 30 * DAY,
    "renew_before": DAY,
    "trust_domain": "af.pool",
}
GOOD = {
    "sub": "condor@af.pool",
    "iss": "af.pool",
    "kid": "POOL",
    "scope": ["condor:/ADVERTISE_STARTD", "condor:/READ"],
    "iat": NOW - DAY,
    "exp": NOW + 29 * DAY,
    "jti": "x",
}


def reason(claims=None, **want):
    return cu.reissue_reason({**GOOD, **(claims or {})}, **{**WANT, **want}, now=NOW)


def test_matching_token_is_kept():
    assert reason() is None
    # Scope order does not matter; without trust_domain the issuer is not checked.
    assert reason({"scope": ["condor:/READ", "condor:/ADVERTISE_STARTD"], "iss": "other"}, trust_domain=None) is None
    # No lifetime wanted and none in the token.
    assert reason({"exp": None}, lifetime=None) is None
    # Unrestricted token for an unrestricted request.
    assert reason({"scope": []}, authz=[]) is None


@pytest.mark.parametrize(
    ("claims", "want", "expected"),
    [
        ({"sub": "alice@af.pool"}, {}, "identity differs"),
        ({"sub": None}, {}, "identity differs"),
        ({"kid": "OTHER"}, {}, "key differs"),
        ({"iss": "old.pool"}, {}, "issuer differs"),
        ({"iss": None}, {}, "issuer differs"),
        ({"scope": ["condor:/READ"]}, {}, "scope differs"),
        ({"scope": []}, {}, "scope differs"),
        ({}, {"authz": []}, "scope differs"),
        ({}, {"authz": ["READ", "ADVERTISE_STARTD", "WRITE"]}, "scope differs"),
        ({}, {"lifetime": None}, "expiry unwanted"),
        ({"exp": None}, {}, "expiry missing"),
        ({"exp": "soon"}, {}, "expiry missing"),
        ({"exp": NOW - 1}, {}, "expired"),
        ({"exp": NOW}, {}, "expired"),
        ({"exp": NOW + DAY}, {}, "expires soon"),
        ({"exp": NOW + 3600}, {}, "expires soon"),
        ({"exp": NOW + 365 * DAY}, {}, "lifetime differs"),
    ],
)
def test_reissue_reasons(claims, want, expected):
    assert reason(claims, **want) == expected


def test_short_lifetime_uses_half_the_lifetime():
    # lifetime 2 h < 2 * renew_before: renewed only in its last hour.
    assert reason({"exp": NOW + 3601}, lifetime=7200) is None
    assert reason({"exp": NOW + 3600}, lifetime=7200) == "expires soon"
    assert reason({"exp": NOW + DAY + 1}) is None


def test_token_state():
    want = {**WANT, "authz": [], "lifetime": None}
    assert cu.token_state(None, want, now=NOW) == (None, "missing")
    assert cu.token_state("garbage", want, now=NOW) == (None, "not a token")
    claims, why = cu.token_state(make_token(), want, now=NOW)
    assert why == "" and claims["sub"] == "condor@af.pool"
    assert cu.token_state(make_token(), want, force=True, now=NOW)[1] == "forced"
    assert cu.token_state(make_token(sub="bob@af.pool"), want, now=NOW)[1] == "identity differs"


# --- Diff text -------------------------------------------------------------------------------------------


def test_claims_text():
    text = cu.claims_text(cu.claims_from_text(make_token(scope="condor:/READ condor:/WRITE", exp=1767225600)))
    assert text == (
        "sub: condor@af.pool\niss: af.pool\nkid: POOL\nscope: condor:/READ condor:/WRITE\nexp: 2026-01-01T00:00:00Z\n"
    )
    absent = cu.claims_text({"sub": "a@b", "iss": None, "kid": "POOL", "scope": [], "exp": None})
    assert "iss: absent\n" in absent and "scope: absent\n" in absent and "exp: absent\n" in absent
    assert cu.claims_text(None) == ""


def test_iso_time():
    assert cu.iso_time(0) == "1970-01-01T00:00:00Z"
    assert cu.iso_time(None) == "absent"
    assert cu.iso_time("tomorrow") == "tomorrow"


def test_diff_never_contains_the_token():
    token = make_token(scope="condor:/READ", exp=NOW + DAY)
    new = make_token(signature=b64(b"\x01" * 32), scope="condor:/READ condor:/WRITE", exp=NOW + 2 * DAY)
    diff = cu.token_diff("/etc/condor/tokens.d/t", token, cu.claims_from_text(new))
    text = json.dumps(diff)
    for secret in (token, new, SIGNATURE, b64(b"\x01" * 32), token.split(".")[1], "eyJ"):
        assert secret not in text
    assert diff["before"].startswith("sub: condor@af.pool\n") and "condor:/WRITE" in diff["after"]
    assert cu.token_diff("/t", None, cu.claims_from_text(new))["before"] == ""
    assert cu.token_diff("/t", "junk", None) == {
        "before": "(not a token)\n",
        "after": "",
        "before_header": "/t",
        "after_header": "/t",
    }


def test_expected_claims_and_argv():
    claims = cu.expected_claims(**WANT, now=NOW)
    assert claims["sub"] == "condor@af.pool" and claims["iss"] == "af.pool" and claims["exp"] == NOW + 30 * DAY
    assert cu.reissue_reason(claims, **WANT, now=NOW) is None
    argv = cu.token_create_argv("/usr/bin/condor_token_create", **{k: WANT[k] for k in ("identity", "key_id")},
                                authz=["READ", "condor:/WRITE"], lifetime=3600)  # fmt: skip
    assert argv == [
        "/usr/bin/condor_token_create", "-identity", "condor@af.pool", "-key", "POOL",
        "-authz", "READ", "-authz", "WRITE", "-lifetime", "3600",
    ]  # fmt: skip
    assert "-lifetime" not in cu.token_create_argv("x", identity="a@b", key_id="K", authz=[], lifetime=None)


# --- Documentation matches the argument spec --------------------------------------------------------------


def _doc_options(options):
    spec = {}
    for name, doc in options.items():
        entry = {k: doc[k] for k in ("type", "required", "default", "elements", "choices") if k in doc}
        if entry.get("required") is False:
            del entry["required"]
        if "suboptions" in doc:
            entry["options"] = _doc_options(doc["suboptions"])
        spec[name] = entry
    return spec


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(condor_token.DOCUMENTATION)
    assert doc["module"] == "condor_token"
    assert _doc_options(doc["options"]) == condor_token.ARGUMENT_SPEC
    yaml.safe_load(condor_token.EXAMPLES)
    yaml.safe_load(condor_token.RETURN)


# --- The module, end to end with a fake condor_token_create ------------------------------------------------

FAKE_TOOL = textwrap.dedent(
    """\
    #!{python}
    # Fake condor_token_create: prints an unsigned-looking JWT built from its arguments.
    import base64, json, os, sys, time, uuid

    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    args, identity, key, authz, lifetime = sys.argv[1:], None, "POOL", [], None
    while args:
        flag, value, args = args[0], args[1], args[2:]
        if flag == "-identity":
            identity = value
        elif flag == "-key":
            key = value
        elif flag == "-authz":
            authz.append(value)
        elif flag == "-lifetime":
            lifetime = int(value)
    with open(os.environ["FAKE_TOKEN_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    if os.environ.get("FAKE_TOKEN_FAIL"):
        print("eyJsecret.eyJsecret.c2lnbmF0dXJl")
        sys.stderr.write("Failed to open signing key\\n")
        sys.exit(1)
    if os.environ.get("FAKE_TOKEN_GARBAGE"):
        print("eyJsecret-but-not-a-jwt")
        sys.exit(0)
    now = int(time.time())
    payload = {{"iat": now, "iss": os.environ.get("FAKE_TRUST_DOMAIN", "af.pool"), "jti": uuid.uuid4().hex,
               "sub": os.environ.get("FAKE_TOKEN_SUB", identity)}}
    if authz:
        payload["scope"] = " ".join("condor:/" + a for a in authz)
    if lifetime is not None:
        payload["exp"] = now + lifetime
    signature = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    print(b64({{"alg": "HS256", "kid": key, "typ": "JWT"}}) + "." + b64(payload) + "." + signature)
    """
)


@pytest.fixture
def tool(tmp_path, monkeypatch):
    path = tmp_path / "bin" / "condor_token_create"
    path.parent.mkdir()
    path.write_text(FAKE_TOOL.format(python=sys.executable))
    path.chmod(0o755)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_TOKEN_LOG", str(log))
    return SimpleNamespace(path=path, calls=lambda: len(log.read_text().splitlines()) if log.exists() else 0)


def run_module(module, args, capsys, monkeypatch, *, check=False, diff=False):
    """Run module.main() in-process; returns (failed, result)."""
    all_args = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": all_args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (exited.value.code != 0) == bool(result.get("failed")), result
    return bool(result.get("failed")), result


@pytest.fixture
def token_module(tool, tmp_path, capsys, monkeypatch):
    dest = tmp_path / "tokens.d" / "condor@af.pool"

    def run(check=False, diff=False, **args):
        args = {"identity": "condor@af.pool", "dest": str(dest), "token_create_cmd": str(tool.path), **args}
        return run_module(condor_token, args, capsys, monkeypatch, check=check, diff=diff)

    run.dest = dest
    run.tool = tool
    return run


def test_module_issues_then_keeps_the_token(token_module):
    failed, first = token_module(authz=["READ", "ADVERTISE_STARTD"], lifetime=7200, trust_domain="af.pool")
    assert not failed and first["changed"] and first["reissued_reason"] == "missing"
    dest = token_module.dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    assert "token" not in first
    assert first["claims"]["sub"] == "condor@af.pool"
    assert sorted(first["claims"]["scope"]) == ["condor:/ADVERTISE_STARTD", "condor:/READ"]
    assert first["claims"]["exp"] - first["claims"]["iat"] == 7200
    content = dest.read_text()
    assert content.endswith("\n") and len(content.strip().split(".")) == 3
    assert content.strip().split(".")[2] not in json.dumps(first)
    assert not [p for p in dest.parent.iterdir() if p.name != dest.name], "temporary file left behind"

    failed, again = token_module(authz=["ADVERTISE_STARTD", "READ"], lifetime=7200, trust_domain="af.pool")
    assert not failed and not again["changed"] and again["reissued_reason"] == ""
    assert again["claims"] == first["claims"]
    assert dest.read_text() == content and token_module.tool.calls() == 1


def test_module_check_mode_does_not_write(token_module):
    failed, result = token_module(check=True, diff=True, authz=["READ"], lifetime=3600, trust_domain="af.pool")
    assert not failed and result["changed"] and result["reissued_reason"] == "missing"
    assert not token_module.dest.exists() and not token_module.dest.parent.exists()
    assert token_module.tool.calls() == 0
    assert result["claims"]["scope"] == ["condor:/READ"] and result["claims"]["iss"] == "af.pool"
    assert result["diff"]["before"] == "" and "scope: condor:/READ\n" in result["diff"]["after"]

    token_module(authz=["READ"])
    content = token_module.dest.read_text()
    failed, result = token_module(check=True, authz=["READ", "WRITE"])
    assert not failed and result["changed"] and result["reissued_reason"] == "scope differs"
    assert token_module.dest.read_text() == content and token_module.tool.calls() == 1


def test_module_changed_authz_reissues(token_module):
    token_module(authz=["READ"])
    old = token_module.dest.read_text()
    failed, result = token_module(diff=True, authz=["READ", "WRITE"])
    assert not failed and result["changed"] and result["reissued_reason"] == "scope differs"
    new = token_module.dest.read_text()
    assert new != old and sorted(cu.claims_from_text(new)["scope"]) == ["condor:/READ", "condor:/WRITE"]
    assert result["diff"]["before"] == cu.claims_text(cu.claims_from_text(old))
    assert result["diff"]["after"] == cu.claims_text(cu.claims_from_text(new))
    dumped = json.dumps(result)
    assert old.strip() not in dumped and new.strip() not in dumped and new.split(".")[2].strip() not in dumped


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        ({}, {"identity": "alice@af.pool"}, "identity differs"),
        ({}, {"key_id": "OTHER"}, "key differs"),
        ({}, {"trust_domain": "new.pool"}, "issuer differs"),
        ({}, {"lifetime": 3600}, "expiry missing"),
        ({"lifetime": 3600}, {}, "expiry unwanted"),
        ({"lifetime": 30 * DAY}, {"lifetime": 3600}, "lifetime differs"),
        ({}, {"force": True}, "forced"),
    ],
)
def test_module_reissue_reasons(token_module, monkeypatch, first, second, why):
    token_module(**first)
    if "trust_domain" in second:
        monkeypatch.setenv("FAKE_TRUST_DOMAIN", second["trust_domain"])
    failed, result = token_module(**second)
    assert not failed and result["changed"] and result["reissued_reason"] == why, result


def test_module_renews_a_token_that_expires_soon(token_module):
    # A token that expires in an hour, for a 30-day lifetime: renewed.
    token_module.dest.parent.mkdir(mode=0o700)
    token_module.dest.write_text(make_token(exp=int(time.time()) + 3600) + "\n")
    failed, result = token_module(lifetime=30 * DAY)
    assert not failed and result["changed"] and result["reissued_reason"] == "expires soon"
    assert cu.claims_from_text(token_module.dest.read_text())["exp"] > time.time() + 29 * DAY


def test_module_replaces_a_file_that_is_not_a_token(token_module):
    token_module.dest.parent.mkdir()
    token_module.dest.write_text("not a token\n")
    failed, result = token_module(diff=True)
    assert not failed and result["changed"] and result["reissued_reason"] == "not a token"
    assert result["diff"]["before"] == "(not a token)\n"


def test_module_fixes_mode_of_a_kept_token(token_module):
    token_module()
    token_module.dest.chmod(0o644)
    failed, result = token_module()
    assert not failed and result["changed"] and result["reissued_reason"] == ""
    assert stat.S_IMODE(token_module.dest.stat().st_mode) == 0o600 and token_module.tool.calls() == 1
    failed, result = token_module(mode="0640")
    assert result["changed"] and stat.S_IMODE(token_module.dest.stat().st_mode) == 0o640


def test_module_returns_the_token_only_when_asked(token_module):
    failed, first = token_module(return_token=True)
    content = token_module.dest.read_text().strip()
    assert not failed and first["token"] == content
    failed, kept = token_module(return_token=True)
    assert not kept["changed"] and kept["token"] == content
    failed, quiet = token_module()
    assert "token" not in quiet and content not in json.dumps(quiet)


def test_module_state_absent(token_module):
    token_module()
    failed, result = token_module(state="absent", check=True, diff=True)
    assert not failed and result["changed"] and token_module.dest.exists()
    assert result["diff"]["before"].startswith("sub: condor@af.pool\n") and result["diff"]["after"] == ""
    failed, result = token_module(state="absent")
    assert not failed and result["changed"] and not token_module.dest.exists()
    failed, result = token_module(state="absent")
    assert not failed and not result["changed"]


def test_module_failures_never_show_the_token(token_module, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN_FAIL", "1")
    failed, result = token_module()
    assert failed and "rc=1" in result["msg"] and "Failed to open signing key" in result["msg"]
    assert "eyJ" not in json.dumps(result)
    monkeypatch.delenv("FAKE_TOKEN_FAIL")

    monkeypatch.setenv("FAKE_TOKEN_GARBAGE", "1")
    failed, result = token_module()
    assert failed and "did not print one token" in result["msg"] and "eyJ" not in json.dumps(result)
    monkeypatch.delenv("FAKE_TOKEN_GARBAGE")

    # condor_token_create issued a token for another identity (e.g. it added a domain): fail, not flap.
    monkeypatch.setenv("FAKE_TOKEN_SUB", "condor@other")
    failed, result = token_module()
    assert failed and "identity differs" in result["msg"] and "eyJ" not in json.dumps(result)
    assert not token_module.dest.exists()


def test_module_rejects_bad_numbers_and_missing_tool(token_module, tmp_path):
    failed, result = token_module(lifetime=0)
    assert failed and "lifetime" in result["msg"]
    failed, result = token_module(renew_before=-1)
    assert failed and "renew_before" in result["msg"]
    failed, result = token_module(token_create_cmd=str(tmp_path / "missing" / "condor_token_create"))
    assert failed and "condor_token_create" in result["msg"]


def test_module_refuses_a_directory_as_dest(token_module):
    token_module.dest.mkdir(parents=True)
    failed, result = token_module()
    assert failed and "is a directory" in result["msg"]
    assert os.path.isdir(token_module.dest)
