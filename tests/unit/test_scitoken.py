"""Unit tests of the scitoken module (library/scitoken.py) and its helpers in module_utils/af_jwt.py.

Keys are generated with cryptography; the module runs in-process (and once through the ansible CLI on the
implicit localhost). No network.
"""

import base64
import importlib.util
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import af_jwt as jwt
from ansible.module_utils import basic
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NOW = 1_800_000_000
HOUR = 3600
ISSUER = "https://af.example.org/tokens"
AUD = "https://xrootd.af.example.org:1094"


def _load_module(name):
    spec = importlib.util.spec_from_file_location(f"library_{name}", REPO / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scitoken = _load_module("scitoken")


def new_key(curve=None):
    return ec.generate_private_key(curve or ec.SECP256R1())


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def key():
    return new_key()


@pytest.fixture(scope="module")
def other_key():
    return new_key()


def request(**overrides):
    args = {
        "issuer": ISSUER,
        "subject": "alice",
        "audience": [AUD],
        "scopes": ["storage.read:/store", "storage.create:/store/user/alice"],
        "wlcg_version": "1.0",
        "extra_claims": {"wlcg.groups": ["/af"]},
        **overrides,
    }
    return jwt.request_claims(**args)


# --- Encoding, signing, verification -------------------------------------------------------------------------


def test_mint_and_verify_roundtrip(key, other_key):
    claims = {"iss": ISSUER, "sub": "alice", "exp": NOW, "ünïcode": "✓"}
    token = jwt.mint(pem(key), "k1", claims)
    header, payload = jwt.decode_unverified(token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": "k1"}
    assert payload == claims
    assert all("=" not in part for part in token.split("."))
    assert jwt.verify(token, key.public_key())
    assert jwt.verify(token, key)  # the private key works too
    assert jwt.verify(token, public_pem(key)) and jwt.verify(token, pem(key).decode())
    assert not jwt.verify(token, other_key.public_key())
    # Minting with a key object and with PEM text gives tokens that verify alike.
    assert jwt.verify(jwt.mint(key, "k1", claims), public_pem(key))


def test_tampered_or_malformed_tokens_do_not_verify(key):
    token = jwt.mint(pem(key), "k1", {"sub": "alice"})
    head, body, sig = token.split(".")
    assert not jwt.verify(f"{head}.{b64({'sub': 'mallory'})}.{sig}", key)
    assert not jwt.verify(f"{b64({'alg': 'none', 'kid': 'k1'})}.{body}.{sig}", key)
    assert not jwt.verify(f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{body}.{sig}", key)
    assert not jwt.verify(f"{head}.{body}.{b64(unb64(sig)[:63])}", key)  # 63 bytes
    assert not jwt.verify(f"{head}.{body}.{b64(bytes(64))}", key)  # r = s = 0
    assert not jwt.verify(f"{head}.{body}.", key)
    assert not jwt.verify(f"{head}.ü.{sig}", key)
    assert not jwt.verify("not a token", key)
    assert jwt.verify(f"  {token}\n", key)


def test_signature_is_raw_r_s_and_verifies_with_cryptography_directly(key):
    token = jwt.mint(pem(key), "k1", {"sub": "alice", "iat": NOW})
    head, body, sig = token.split(".")
    raw = unb64(sig)
    assert len(raw) == 64
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    der = encode_dss_signature(r, s)
    key.public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(der, f"{head}.{b64({'sub': 'bob'})}".encode(), ec.ECDSA(hashes.SHA256()))


def _der_integer(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")  # a leading 0 byte keeps it positive
    return b"\x02" + bytes([len(body)]) + body


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_signature_verifies_with_openssl(key, tmp_path):
    """An independent check: OpenSSL's command line, with the DER signature built by hand."""
    token = jwt.mint(pem(key), "k1", {"sub": "alice"})
    head, body, sig = token.split(".")
    raw = unb64(sig)
    seq = _der_integer(int.from_bytes(raw[:32], "big")) + _der_integer(int.from_bytes(raw[32:], "big"))
    (tmp_path / "sig.der").write_bytes(b"\x30" + bytes([len(seq)]) + seq)
    (tmp_path / "input").write_bytes(f"{head}.{body}".encode())
    (tmp_path / "pub.pem").write_bytes(public_pem(key))
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "input"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stdout + result.stderr


def test_public_jwk_coordinates(key):
    jwk = jwt.public_jwk(key, "k1")
    numbers = key.public_key().public_numbers()
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["kid"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "k1", "ES256", "sig")
    for name, value in (("x", numbers.x), ("y", numbers.y)):
        assert "=" not in jwk[name] and len(jwk[name]) == 43
        assert unb64(jwk[name]) == value.to_bytes(32, "big")
    assert jwt.public_jwk(key.public_key(), "k1") == jwk == jwt.public_jwk(public_pem(key), "k1")
    assert "d" not in jwt.public_jwk(pem(key), "k1")


def test_public_jwk_keeps_leading_zero_bytes():
    # About 1 key in 256 has a coordinate below 2**248: its JWK member is still 32 bytes.
    for _ in range(2000):
        candidate = new_key()
        numbers = candidate.public_key().public_numbers()
        if numbers.x < 2**248 or numbers.y < 2**248:
            break
    else:  # pragma: no cover - vanishingly unlikely
        pytest.skip("no key with a short coordinate found")
    jwk = jwt.public_jwk(candidate, "k")
    assert len(unb64(jwk["x"])) == 32 and len(unb64(jwk["y"])) == 32


def test_jwks(key, other_key):
    keys = jwt.jwks([(pem(key), "k1"), (public_pem(other_key), "k2")])
    assert [k["kid"] for k in keys["keys"]] == ["k1", "k2"]
    assert keys["keys"][1] == jwt.public_jwk(other_key, "k2")
    assert jwt.jwks([]) == {"keys": []}
    with pytest.raises(jwt.JWTError, match="more than one key"):
        jwt.jwks([(pem(key), "k1"), (pem(other_key), "k1")])


def test_keys_must_be_p256(key):
    with pytest.raises(jwt.JWTError, match="secp384r1"):
        jwt.load_private_key(pem(new_key(ec.SECP384R1())))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(jwt.JWTError, match="EC P-256"):
        jwt.mint(pem(rsa_key), "k", {})
    with pytest.raises(jwt.JWTError, match="not a PEM private key"):
        jwt.load_private_key(b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(jwt.JWTError, match="encrypted") as err:
        jwt.load_private_key(encrypted, "key_file /k.pem")
    assert str(err.value).startswith("key_file /k.pem ") and "BEGIN" not in str(err.value)
    with pytest.raises(jwt.JWTError, match="public or private key"):
        jwt.public_jwk(b"garbage", "k")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a.b", "3 parts"),
        ("a.b.c.d", "this text has 4"),
        ("eyJhIjoxfQ.eyJhIjoxfQ.c2ln eyJhIjoxfQ", "single token"),
        ("eyJhIjoxfQ.eyJhIjoxfQ.", "no signature"),
        ("eyJhIjoxfQ.not*base64.c2lnbmF0dXJl", "base64url"),
        (f"{b64(b'[1]')}.eyJhIjoxfQ.c2lnbmF0dXJl", "header is not a JSON object"),
        (f"eyJhIjoxfQ.{b64(b'secretnotjson')}.c2lnbmF0dXJl", "payload is not JSON"),
    ],
)
def test_decode_unverified_rejects_malformed_text_without_echoing_it(text, message):
    with pytest.raises(jwt.JWTError) as err:
        jwt.decode_unverified(text)
    assert message in str(err.value)
    for part in text.split("."):
        if len(part) > 6:
            assert part not in str(err.value)


# --- Scopes, issuer, claims -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        "storage.read:/store",
        "storage.read:/",
        "storage.create:/store/user/alice",
        "storage.modify:/store/user/alice",
        "storage.stage:/store/tape",
        "storage.stage",
        "compute.read",
        "compute.modify",
        "compute.create",
        "compute.cancel",
        "wlcg.groups",
        "openid",
        "offline_access",
        "storage.read:/store/..hidden/x.root",
    ],
)
def test_valid_scopes(scope):
    assert jwt.scope_error(scope) is None


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("storage.read:store", "must be absolute"),
        ("storage.read:", "must be absolute"),
        ("storage.read:/store/../etc", "'..'"),
        ("storage.read:/..", "'..'"),
        ("storage.write:/x", "'storage.write' is unknown"),
        ("storage.read", "needs a path"),
        ("compute.read:/x", "takes no path"),
        ("compute.submit", "unknown scope"),
        ("storage.read:/store//user", "not normalized"),
        ("storage.read:/store/./user", "not normalized"),
        ("storage.read:/store/", "want /store)"),
        ("storage.read:/store user", "whitespace"),
        ("", "non-empty"),
    ],
)
def test_invalid_scopes(scope, message):
    error = jwt.scope_error(scope)
    assert error is not None and message in error, error
    assert error.startswith(f"scope {scope!r}")


def test_validate_scopes_lists_every_error():
    errors = jwt.validate_scopes(["compute.read", "storage.read:store", "storage.read:/store/../etc", "x"])
    assert len(errors) == 3


@pytest.mark.parametrize(
    ("issuer", "ok"),
    [
        (ISSUER, True),
        ("https://af.example.org", True),
        ("http://af.example.org", False),
        ("af.example.org", False),
        ("https://", False),
        ("https://af.example.org/?x=1", False),
        ("https://af.example.org/#x", False),
        ("", False),
    ],
)
def test_issuer_error(issuer, ok):
    assert (jwt.issuer_error(issuer) is None) == ok


def test_request_and_new_claims():
    req = request(audience=[AUD, AUD], scopes=["compute.read", "compute.read"])
    assert req == {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUD,
        "scope": "compute.read",
        "wlcg.ver": "1.0",
        "wlcg.groups": ["/af"],
    }
    assert request(audience=["a", "b"])["aud"] == ["a", "b"]
    assert "scope" not in request(scopes=[])
    claims = jwt.new_claims(req, lifetime=HOUR, now=NOW + 0.7, jti="abc")
    assert list(claims) == ["iss", "sub", "aud", "scope", "wlcg.ver", "iat", "nbf", "exp", "jti", "wlcg.groups"]
    assert (claims["iat"], claims["nbf"], claims["exp"], claims["jti"]) == (NOW, NOW, NOW + HOUR, "abc")
    jti = jwt.new_claims(req, lifetime=HOUR, now=NOW)["jti"]
    assert len(jti) == 32 and int(jti, 16) >= 0
    with pytest.raises(jwt.JWTError, match="must not set exp, sub"):
        request(extra_claims={"sub": "x", "exp": 1})
    with pytest.raises(jwt.JWTError, match="extra claim 'x'"):
        request(extra_claims={"x": object()})


# --- Keep or re-mint --------------------------------------------------------------------------------------------


def state(key, token, *, kid="k1", req=None, lifetime=HOUR, renew_before=900, force=False, now=NOW):
    return jwt.token_state(
        token,
        key.public_key(),
        kid=kid,
        request=req or request(),
        lifetime=lifetime,
        renew_before=renew_before,
        force=force,
        now=now,
    )[2]


def minted(key, *, kid="k1", lifetime=HOUR, now=NOW, **overrides):
    claims = jwt.new_claims(request(), lifetime=lifetime, now=now)
    claims.update(overrides)
    return jwt.mint(pem(key), kid, {k: v for k, v in claims.items() if v is not None})


def test_matching_token_is_kept(key):
    assert state(key, minted(key)) == ""
    # Audience and scopes are compared as sets; aud may be a list with one element.
    token = minted(key, aud=[AUD], scope="storage.create:/store/user/alice storage.read:/store")
    assert state(key, token) == ""
    assert state(key, minted(key, aud=["b", "a"]), req=request(audience=["a", "b"])) == ""
    # Exactly renew_before left: kept.
    assert state(key, minted(key), now=NOW + HOUR - 900) == ""


@pytest.mark.parametrize(
    ("token_args", "state_args", "reason"),
    [
        ({}, {"force": True}, "forced"),
        ({"kid": "k0"}, {}, "key id differs"),
        ({"iss": "https://old.example.org"}, {}, "issuer differs"),
        ({"sub": "bob"}, {}, "subject differs"),
        ({"aud": "https://other:1094"}, {}, "audience differs"),
        ({"aud": [AUD, "https://other:1094"]}, {}, "audience differs"),
        ({"aud": None}, {}, "audience differs"),
        ({"scope": "storage.read:/store"}, {}, "scopes differ"),
        ({"scope": None}, {}, "scopes differ"),
        ({}, {"req": request(scopes=["storage.read:/store"])}, "scopes differ"),
        ({"wlcg.ver": "0.9"}, {}, "wlcg.ver differs"),
        ({"wlcg.groups": ["/af", "/af/admins"]}, {}, "extra claims differ"),
        ({"wlcg.groups": None}, {}, "extra claims differ"),
        ({"extra": 1}, {}, "extra claims differ"),
        ({"exp": None}, {}, "expiry missing"),
        ({"exp": "tomorrow"}, {}, "expiry missing"),
        ({}, {"now": NOW + HOUR}, "expired"),
        ({}, {"now": NOW + HOUR + 1}, "expired"),
        ({}, {"now": NOW + HOUR - 899}, "expires soon"),
        ({"lifetime": 86400}, {}, "lifetime differs"),
        ({"nbf": NOW + 600}, {}, "not yet valid"),
    ],
)
def test_remint_reasons(key, token_args, state_args, reason):
    assert state(key, minted(key, **token_args), **state_args) == reason


def test_remint_reasons_for_files_that_are_not_our_tokens(key, other_key):
    assert state(key, None) == "missing"
    assert state(key, "garbage\n") == "not a token"
    assert state(key, "garbage", force=True) == "not a token"
    assert state(key, minted(other_key)) == "signature invalid (other key)"
    token = minted(key)
    head, body, sig = token.split(".")
    assert state(key, f"{head}.{b64(jwt.decode_unverified(token)[1] | {'sub': 'x'})}.{sig}") == (
        "signature invalid (other key)"
    )
    hs256 = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'})}.{body}.{sig}"
    assert state(key, hs256) == "algorithm differs"


def test_diff_text_never_contains_the_token(key):
    old = minted(key, scope="storage.read:/store")
    new_claims = jwt.new_claims(request(), lifetime=HOUR, now=NOW + 60, jti="f" * 32)
    diff = jwt.token_diff("/t", old, {"alg": "ES256", "kid": "k1"}, new_claims)
    assert diff["before"] == (
        f"kid: k1\niss: {ISSUER}\nsub: alice\naud: {AUD}\nscope: storage.read:/store\nwlcg.ver: 1.0\n"
        'wlcg.groups: ["/af"]\niat: 2027-01-15T08:00:00Z\nexp: 2027-01-15T09:00:00Z\n'
    )
    assert "scope: storage.create:/store/user/alice storage.read:/store\n" in diff["after"]
    text = json.dumps(diff)
    for secret in (old, *old.split("."), "eyJ", "f" * 32):
        assert secret not in text
    assert jwt.token_diff("/t", "junk", None, None)["before"] == "(not a token)\n"
    assert jwt.token_diff("/t", None, None, new_claims)["before"] == ""


def test_iso_time():
    assert jwt.iso_time(0) == "1970-01-01T00:00:00Z"
    assert jwt.iso_time(None) is None and jwt.iso_time("x") is None and jwt.iso_time(True) is None


# --- Documentation matches the argument spec ---------------------------------------------------------------------


def _doc_options(options):
    spec = {}
    for name, doc in options.items():
        entry = {k: doc[k] for k in ("type", "required", "default", "elements", "choices") if k in doc}
        if entry.get("required") is False:
            del entry["required"]
        spec[name] = entry
    return spec


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(scitoken.DOCUMENTATION)
    assert doc["module"] == "scitoken"
    spec = {name: {k: v for k, v in entry.items() if k != "no_log"} for name, entry in scitoken.ARGUMENT_SPEC.items()}
    assert _doc_options(doc["options"]) == spec
    assert scitoken.ARGUMENT_SPEC["key_content"]["no_log"] is True
    for example in yaml.safe_load(scitoken.EXAMPLES):
        if "scitoken" in example:
            assert set(example["scitoken"]) <= set(scitoken.ARGUMENT_SPEC), example["name"]
    yaml.safe_load(scitoken.RETURN)


# --- The module, end to end in-process ----------------------------------------------------------------------------


def run_module(args, capsys, monkeypatch, *, check=False, diff=False):
    """Run scitoken.main() in-process; returns (failed, result, everything the module printed)."""
    all_args = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": all_args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        scitoken.main()
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert (exited.value.code != 0) == bool(result.get("failed")), result
    return bool(result.get("failed")), result, captured.out + captured.err


@pytest.fixture
def key_file(tmp_path, key):
    path = tmp_path / "issuer.key"
    path.write_bytes(pem(key))
    path.chmod(0o600)
    return path


@pytest.fixture
def token_module(tmp_path, key_file, capsys, monkeypatch):
    dest = tmp_path / "tokens" / "alice"

    def run(check=False, diff=False, output=False, **args):
        args = {
            "issuer": ISSUER,
            "subject": "alice",
            "audience": [AUD],
            "scopes": ["storage.read:/store"],
            "key_file": str(key_file),
            "key_id": "k1",
            "dest": str(dest),
            **args,
        }
        args = {k: v for k, v in args.items() if v is not None}
        failed, result, printed = run_module(args, capsys, monkeypatch, check=check, diff=diff)
        return (failed, result, printed) if output else (failed, result)

    run.dest = dest
    return run


def file_token(path: Path) -> str:
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    return text.strip()


def test_module_mints_then_keeps_the_token(token_module, key):
    failed, first = token_module(extra_claims={"wlcg.groups": ["/af"]})
    assert not failed and first["changed"] and first["reminted_reason"] == "missing"
    dest = token_module.dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    assert not [p for p in dest.parent.iterdir() if p != dest], "temporary file left behind"
    token = file_token(dest)
    assert jwt.verify(token, key.public_key())
    header, payload = jwt.decode_unverified(token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": "k1"}
    assert payload == first["claims"]
    assert payload["scope"] == "storage.read:/store" and payload["aud"] == AUD and payload["wlcg.ver"] == "1.0"
    assert payload["exp"] - payload["iat"] == HOUR and payload["nbf"] == payload["iat"]
    assert first["expires_at"] == jwt.iso_time(payload["exp"])
    assert "token" not in first and token not in json.dumps(first)

    failed, again = token_module(extra_claims={"wlcg.groups": ["/af"]})
    assert not failed and not again["changed"] and again["reminted_reason"] == ""
    assert again["claims"] == first["claims"] and file_token(dest) == token


def test_new_tokens_are_backdated_for_clock_skew(token_module):
    """A consumer whose clock is behind the controller's accepts a token minted this very second."""
    before = int(time.time())
    failed, result = token_module()
    claims = result["claims"]
    assert not failed and claims["iat"] == claims["nbf"] <= before - 30
    assert claims["exp"] - claims["iat"] == HOUR
    failed, result = token_module(dest=None, return_token=True, backdate=0)
    assert result["claims"]["iat"] >= before
    failed, result = token_module(lifetime=60, queue_interval=30, queue_horizon=120, force=True)
    assert not failed
    windows = [jwt.decode_unverified(t)[1] for t in queue_tokens(token_module.dest)]
    assert windows[0]["nbf"] <= before - 30
    # Each token overlaps the next by at least the backdating.
    assert all(a["exp"] - b["nbf"] >= 30 for a, b in itertools.pairwise(windows))


def test_module_check_mode_does_not_write(token_module):
    failed, result = token_module(check=True, diff=True, return_token=True)
    assert not failed and result["changed"] and result["reminted_reason"] == "missing"
    assert not token_module.dest.parent.exists()
    assert "token" not in result
    assert result["claims"]["sub"] == "alice" and result["diff"]["before"] == ""
    assert "scope: storage.read:/store\n" in result["diff"]["after"]

    token_module()
    token = file_token(token_module.dest)
    failed, result = token_module(check=True, scopes=["storage.read:/store", "compute.read"])
    assert not failed and result["changed"] and result["reminted_reason"] == "scopes differ"
    assert file_token(token_module.dest) == token


def test_module_changed_scope_remints_with_diff(token_module):
    token_module()
    old = file_token(token_module.dest)
    failed, result = token_module(diff=True, scopes=["storage.read:/store", "storage.create:/store/user/alice"])
    assert not failed and result["changed"] and result["reminted_reason"] == "scopes differ"
    new = file_token(token_module.dest)
    assert new != old
    assert jwt.scope_set(jwt.decode_unverified(new)[1]) == {"storage.read:/store", "storage.create:/store/user/alice"}
    assert result["diff"]["before"] == jwt.claims_text(*jwt.decode_unverified(old))
    assert result["diff"]["after"] == jwt.claims_text(*jwt.decode_unverified(new))
    dumped = json.dumps(result)
    for secret in (old, new, *old.split("."), *new.split(".")):
        assert secret not in dumped


def test_module_other_key_remints(token_module, tmp_path, other_key, key):
    token_module()
    other = tmp_path / "other.key"
    other.write_bytes(pem(other_key))
    failed, result = token_module(key_file=str(other))
    assert not failed and result["changed"] and result["reminted_reason"] == "signature invalid (other key)"
    assert jwt.verify(file_token(token_module.dest), other_key) and not jwt.verify(file_token(token_module.dest), key)
    # key_content instead of key_file: same key, so the token is kept.
    failed, result = token_module(key_file=None, key_content=pem(other_key).decode())
    assert not failed and not result["changed"]


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        ({"key_id": "k2"}, "key id differs"),
        ({"issuer": "https://new.example.org"}, "issuer differs"),
        ({"subject": "bob"}, "subject differs"),
        ({"audience": [AUD, "https://wlcg.cern.ch/jwt/v1/any"]}, "audience differs"),
        ({"wlcg_version": "2.0"}, "wlcg.ver differs"),
        ({"extra_claims": {"wlcg.groups": ["/af"]}}, "extra claims differ"),
        ({"lifetime": 600}, "lifetime differs"),
        ({"force": True}, "forced"),
    ],
)
def test_module_remint_reasons(token_module, second, reason):
    token_module(lifetime=7200)
    args = {"lifetime": 7200, **second}
    failed, result = token_module(**args)
    assert not failed and result["changed"] and result["reminted_reason"] == reason, result


@pytest.mark.parametrize(("remaining", "reason"), [(1000, ""), (800, "expires soon"), (0, "expired")])
def test_module_renews_by_default_in_the_last_quarter_of_the_lifetime(token_module, key, remaining, reason):
    token_module.dest.parent.mkdir(mode=0o700)
    req = request(extra_claims={}, scopes=["storage.read:/store"])
    claims = jwt.new_claims(req, lifetime=HOUR, now=time.time() + remaining - HOUR)
    token_module.dest.write_text(jwt.mint(pem(key), "k1", claims) + "\n")
    token_module.dest.chmod(0o600)
    failed, result = token_module(check=True)
    assert not failed and result["changed"] == bool(reason) and result["reminted_reason"] == reason
    if not reason:
        failed, result = token_module(renew_before=remaining + 60)
        assert result["changed"] and result["reminted_reason"] == "expires soon"


def test_module_expired_token_and_junk_are_replaced(token_module, key):
    token_module.dest.parent.mkdir(mode=0o700)
    claims = jwt.new_claims(
        request(extra_claims={}, scopes=["storage.read:/store"]), lifetime=HOUR, now=time.time() - 2 * HOUR
    )
    token_module.dest.write_text(jwt.mint(pem(key), "k1", claims) + "\n")
    failed, result = token_module()
    assert not failed and result["changed"] and result["reminted_reason"] == "expired"
    token_module.dest.write_text("not a token\n")
    failed, result = token_module(diff=True)
    assert not failed and result["reminted_reason"] == "not a token" and result["diff"]["before"] == "(not a token)\n"


def test_module_fixes_mode_of_a_kept_token(token_module):
    token_module()
    token = file_token(token_module.dest)
    token_module.dest.chmod(0o644)
    failed, result = token_module()
    assert not failed and result["changed"] and result["reminted_reason"] == ""
    assert stat.S_IMODE(token_module.dest.stat().st_mode) == 0o600 and file_token(token_module.dest) == token
    failed, result = token_module(mode="0640")
    assert result["changed"] and stat.S_IMODE(token_module.dest.stat().st_mode) == 0o640


def test_module_return_token(token_module, key):
    failed, first = token_module(return_token=True)
    token = file_token(token_module.dest)
    assert not failed and first["token"] == token
    failed, kept = token_module(return_token=True)
    assert not kept["changed"] and kept["token"] == token
    failed, quiet = token_module()
    assert "token" not in quiet and token not in json.dumps(quiet)

    # Without dest: minted on every run, returned, nothing changes on the host (also in check mode).
    for check in (False, True):
        failed, result = token_module(dest=None, return_token=True, check=check)
        assert not failed and not result["changed"] and result["reminted_reason"] == "no dest"
        assert result["dest"] is None and jwt.verify(result["token"], key)
        assert jwt.decode_unverified(result["token"])[1] == result["claims"]
    failed, result = token_module(dest=None)
    assert failed and "nothing to do" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"issuer": "http://af.example.org"}, "https URL"),
        ({"scopes": ["storage.read:store"]}, "must be absolute"),
        ({"scopes": ["storage.read:/store/../etc"]}, "'..'"),
        ({"scopes": ["storage.write:/x"]}, "'storage.write' is unknown"),
        ({"audience": []}, "audience"),
        ({"lifetime": 0}, "lifetime must be a positive"),
        ({"renew_before": 3600}, "less than lifetime (3600)"),
        ({"renew_before": -1}, "renew_before"),
        ({"extra_claims": {"exp": 1}}, "must not set exp"),
        ({"key_file": "/nonexistent/key.pem"}, "cannot read key_file /nonexistent/key.pem"),
        ({"key_content": "not-a-key"}, "mutually exclusive"),
        ({"key_file": None}, "one of the following is required: key_file, key_content"),
    ],
)
def test_module_rejects_bad_options(token_module, args, message):
    failed, result = token_module(**args)
    assert failed and message in result["msg"], result["msg"]
    assert not token_module.dest.exists()


def test_module_failures_never_show_the_token_or_key(token_module, key, tmp_path):
    token_module()
    token = file_token(token_module.dest)
    secrets = [token, *token.split("."), pem(key).decode().splitlines()[1]]

    rsa_file = tmp_path / "rsa.key"
    rsa_file.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    # A truncated PKCS#8 P-256 key: looks like PEM, does not load.
    broken = "\n".join(
        ("-----BEGIN PRIVATE KEY-----", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg", "-----END PRIVATE KEY-----")
    )
    cases = [
        ({"key_file": str(rsa_file)}, "EC P-256"),
        ({"key_file": None, "key_content": broken}, "key_content is not a PEM private key"),
        ({"dest": str(tmp_path)}, "is a directory"),
        ({"scopes": ["storage.write:/x"]}, "unknown"),
    ]
    for args, message in cases:
        failed, result, printed = token_module(output=True, diff=True, return_token=True, **args)
        assert failed and message in result["msg"], result["msg"]
        for secret in [*secrets, broken.splitlines()[1]]:
            assert secret not in printed
    # The kept token is returned only in "token", and shown nowhere else.
    failed, result, printed = token_module(output=True, diff=True, return_token=True)
    assert printed.count(token) == 1 and "diff" not in result
    failed, result, printed = token_module(output=True, diff=True, force=True)
    assert "token" not in result and token not in printed and file_token(token_module.dest) not in printed


def test_module_key_file_is_not_changed(token_module, key_file):
    before = key_file.read_bytes(), stat.S_IMODE(key_file.stat().st_mode)
    token_module()
    assert (key_file.read_bytes(), stat.S_IMODE(key_file.stat().st_mode)) == before


# --- Through the ansible command line ---------------------------------------------------------------------------


def ansible_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_MODULE_UTILS=str(REPO / "module_utils"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
        ANSIBLE_NOCOLOR="true",
    )
    return env


def test_module_runs_through_ansible(tmp_path, key_file, key):
    dest = tmp_path / "cli" / "token"
    args = {
        "issuer": ISSUER,
        "subject": "ci",
        "audience": [AUD],
        "scopes": ["compute.read", "storage.read:/store"],
        "key_file": str(key_file),
        "key_id": "k1",
        "dest": str(dest),
        "extra_claims": {"wlcg.groups": ["/af"]},
    }
    argv = [BIN / "ansible", "localhost", "-M", str(REPO / "library"), "-m", "scitoken", "-a", json.dumps(args)]
    results = []
    for _ in range(2):
        proc = subprocess.run(
            argv, capture_output=True, text=True, check=False, cwd=tmp_path, env=ansible_env(tmp_path)
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results.append(json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"])
    first, second = results
    assert first["changed"] and first["reminted_reason"] == "missing"
    assert not second["changed"] and second["claims"] == first["claims"]
    token = file_token(dest)
    assert jwt.verify(token, key) and stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert jwt.decode_unverified(token)[1]["wlcg.groups"] == ["/af"]


def test_module_documentation_renders(tmp_path):
    env = {**ansible_env(tmp_path), "ANSIBLE_LIBRARY": str(REPO / "library")}
    proc = subprocess.run(
        [BIN / "ansible-doc", "-t", "module", "scitoken"], capture_output=True, text=True, check=False, env=env
    )
    assert proc.returncode == 0 and "ERROR" not in proc.stderr, proc.stderr
    assert "scitoken" in proc.stdout and "renew_before" in proc.stdout and "RETURN VALUES" in proc.stdout


# --- Queues of tokens (queue_horizon) -------------------------------------------------------------------------------

DAY = 24 * HOUR


def queue_tokens(path: Path) -> list[str]:
    text = path.read_text()
    assert text.endswith("\n") and not text.endswith("\n\n")
    return text.splitlines()


def test_queue_claims_overlap_and_cover_the_horizon():
    req = request()
    payloads = jwt.queue_claims(req, lifetime=DAY, interval=DAY // 2, horizon=7 * DAY, now=NOW)
    assert len(payloads) == 13 == jwt.queue_length(lifetime=DAY, interval=DAY // 2, horizon=7 * DAY)
    assert [p["nbf"] - NOW for p in payloads] == [k * DAY // 2 for k in range(13)]
    assert all(p["exp"] - p["nbf"] == DAY and p["iat"] == NOW for p in payloads)
    assert payloads[-1]["exp"] == NOW + 7 * DAY
    assert len({p["jti"] for p in payloads}) == 13
    assert jwt.queue_length(lifetime=DAY, interval=DAY, horizon=DAY) == 1
    assert jwt.queue_length(lifetime=60, interval=20, horizon=130) == 5  # the last one reaches past the horizon


def test_module_keeps_a_queue_until_it_runs_short(token_module, key, monkeypatch):
    args = {"lifetime": DAY, "queue_interval": DAY // 2, "queue_horizon": 7 * DAY, "renew_before": 2 * DAY}
    failed, first = token_module(return_token=True, **args)
    assert not failed and first["changed"] and first["reminted_reason"] == "missing"
    assert first["queue_length"] == 13
    tokens = queue_tokens(token_module.dest)
    assert first["token"] == "\n".join(tokens) + "\n"
    assert all(jwt.verify(token, key.public_key()) for token in tokens)
    assert stat.S_IMODE(token_module.dest.stat().st_mode) == 0o600

    failed, again = token_module(return_token=True, **args)
    assert not failed and not again["changed"] and again["token"] == first["token"]

    # Four days later the queue still covers three: kept. Six days later, one: signed afresh.
    started = time.time()
    monkeypatch.setattr(time, "time", lambda: started + 4 * DAY)
    assert not token_module(**args)[1]["changed"]
    monkeypatch.setattr(time, "time", lambda: started + 6 * DAY)
    failed, renewed = token_module(**args)
    assert renewed["changed"] and renewed["reminted_reason"] == "expires soon"
    assert queue_tokens(token_module.dest)[0] not in tokens


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"queue_interval": DAY // 4}, "interval differs"),
        ({"lifetime": 2 * DAY, "queue_interval": DAY}, "lifetime differs"),
        ({"queue_horizon": 3 * DAY, "renew_before": DAY}, "horizon differs"),
        ({"scopes": ["storage.read:/store/data"]}, "scopes differ"),
        ({"key_id": "k2"}, "key id differs"),
        ({"force": True}, "forced"),
    ],
)
def test_module_signs_a_new_queue_when_the_request_changes(token_module, change, reason):
    args = {"lifetime": DAY, "queue_interval": DAY // 2, "queue_horizon": 7 * DAY, "renew_before": 2 * DAY}
    token_module(**args)
    failed, result = token_module(**{**args, **change})
    assert not failed and result["changed"] and result["reminted_reason"] == reason


def test_module_queue_check_mode_and_diff_show_no_token(token_module):
    args = {"lifetime": 60, "queue_interval": 20, "queue_horizon": 120}
    failed, result, printed = token_module(check=True, diff=True, return_token=True, output=True, **args)
    assert not failed and result["changed"] and not token_module.dest.exists() and "token" not in result
    assert "tokens: 4, the last valid until" in result["diff"]["after"]
    failed, result, printed = token_module(diff=True, output=True, **args)
    tokens = queue_tokens(token_module.dest)
    assert len(tokens) == 4 and not any(token in printed for token in tokens)
    assert not any(part in printed for token in tokens for part in token.split(".")[1:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"lifetime": 60, "queue_horizon": 30}, "queue_horizon must be 0 or at least lifetime (60), got 30"),
        ({"lifetime": 60, "queue_horizon": 600, "queue_interval": 61}, "queue_interval must be positive and at most"),
        # Successive tokens must overlap by the backdating (30 s by default): 60 - 30 < 31.
        ({"lifetime": 60, "queue_horizon": 600, "queue_interval": 31}, "at most lifetime - backdate (30"),
        ({"lifetime": 60, "backdate": 60}, "backdate must be at least 0 and less than lifetime (60)"),
        ({"lifetime": 60, "queue_horizon": 600, "renew_before": 600}, "renew_before must be at least 0 and less"),
        ({"lifetime": 60, "queue_horizon": 600, "dest": None, "return_token": True}, "queue_horizon) needs dest"),
    ],
)
def test_module_refuses_a_queue_with_gaps_or_without_dest(token_module, args, message):
    failed, result = token_module(**args)
    assert failed and message in result["msg"]
