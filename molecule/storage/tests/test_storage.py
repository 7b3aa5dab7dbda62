"""Tokens and data as a physicist and a site admin notice them: the right token reads and writes where its
scopes say, every other token (or none) is refused, over root:// and https://, directly and through the
cache; the issuer can rotate keys and go down without stopping reads."""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import testinfra
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[3]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
KEYS = Path(INVENTORY).parent / "credentials" / "token-issuer"
NETWORK = "af-mol-storage"
DOMAIN = "af.test"
ISSUER = f"https://services.{DOMAIN}"
AUDIENCE = f"https://{DOMAIN}"
ORIGIN = f"storage1.{DOMAIN}"
CACHE = f"xcache1.{DOMAIN}"
SAMPLE = "/store/samples/nano_dy.root"
SAMPLES = REPO / "tests" / "samples"

_spec = importlib.util.spec_from_file_location("af_jwt", REPO / "module_utils" / "af_jwt.py")
af_jwt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(af_jwt)


@pytest.fixture(scope="module")
def nodes():
    return {name: testinfra.get_host(f"docker://{name}") for name in ("services", "storage1", "xcache1")}


def active_key():
    kid = (KEYS / "active-kid").read_text().strip()
    return kid, (KEYS / f"{kid}.key").read_bytes()


def token(
    subject="alice", scopes=("storage.read:/store",), *, audience=AUDIENCE, issuer=ISSUER, lifetime=600, key=None
):
    """A token as the site issuer would mint it (or, with other arguments, as it must not be accepted)."""
    kid, pem = key or active_key()
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "scope": " ".join(scopes),
        "wlcg.ver": "1.0",
        "iat": now,
        "nbf": now - 60 if lifetime > 0 else now - 7200,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return af_jwt.mint(pem, kid, claims)


def other_key():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


def put_token(node, text):
    """Write a token 0600 on a client node (ztn skips token files readable by others)."""
    path = f"/root/tok-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "exec", "-i", node.backend.name, "sh", "-c", f"umask 077 && cat > {path}"],
        input=text.encode(),
        check=True,
    )
    return path


def xrd_read(client, server, path, tok=None):
    """xrdcp root://server//path to stdout with a bearer token file; returns (ok, data-or-error)."""
    env = "X509_CERT_DIR=/etc/grid-security/certificates"
    if tok is not None:
        env += f" BEARER_TOKEN_FILE={put_token(client, tok)}"
    result = client.run(f"{env} xrdcp -f -s root://{server}/{path} /root/read.out && sha256sum /root/read.out")
    return result.rc == 0, (result.stdout.split()[0] if result.rc == 0 else result.stderr)


def xrd_write(client, server, path, tok=None, content="hello"):
    env = "X509_CERT_DIR=/etc/grid-security/certificates"
    if tok is not None:
        env += f" BEARER_TOKEN_FILE={put_token(client, tok)}"
    client.run(f"printf %s {content} > /root/write.in")
    result = client.run(f"{env} xrdcp -f -s /root/write.in root://{server}/{path}")
    return result.rc == 0


def https(client, method, server, path, tok=None, *, data=None):
    """curl over https with the bearer token header; returns the HTTP status code."""
    header = f"-H 'Authorization: Bearer {tok}'" if tok is not None else ""
    body = f"--data-binary '{data}'" if data is not None else ""
    out = client.check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' -X {method} {header} {body} https://{server}:8443{path}"
    )
    return int(out)


def sample_sha256():
    return hashlib.sha256((SAMPLES / "nano_dy.root").read_bytes()).hexdigest()


# --- The issuer ---------------------------------------------------------------------------------------


def test_issuer_publishes_discovery_and_keys_over_verified_https(nodes):
    client = nodes["storage1"]
    discovery = json.loads(client.check_output(f"curl -sf {ISSUER}/.well-known/openid-configuration"))
    assert discovery["issuer"] == ISSUER and discovery["jwks_uri"] == f"{ISSUER}/jwks.json"
    keys = json.loads(client.check_output(f"curl -sf {ISSUER}/jwks.json"))["keys"]
    kid, pem = active_key()
    assert af_jwt.public_jwk(pem, kid) in keys
    assert all("d" not in key for key in keys), "a private key component is published"
    # The signing keys never leave the controller.
    assert nodes["services"].run("grep -rl 'PRIVATE KEY' /var/www /etc/nginx").stdout.strip() == ""


# --- Reads and writes over root:// and https:// -------------------------------------------------------------


def test_valid_read_token_reads_over_both_protocols(nodes):
    client = nodes["xcache1"]
    ok, digest = xrd_read(client, ORIGIN, SAMPLE, token())
    assert ok and digest == sample_sha256(), digest
    assert https(client, "GET", ORIGIN, SAMPLE, token()) == 200


BAD_READS = {
    "no token": lambda: None,
    "expired": lambda: token(lifetime=-3600),
    "wrong audience": lambda: token(audience="https://elsewhere.example"),
    "unknown issuer": lambda: token(issuer="https://rogue.af.test", key=("rogue-1", other_key())),
    "unpublished key, known kid": lambda: token(key=(active_key()[0], other_key())),
    "unpublished kid": lambda: token(key=("not-published", other_key())),
    "scope elsewhere": lambda: token(scopes=("storage.read:/store/user/bob",)),
}


@pytest.mark.parametrize("case", BAD_READS)
def test_reads_are_refused(nodes, case):
    client = nodes["xcache1"]
    tok = BAD_READS[case]()
    ok, _ = xrd_read(client, ORIGIN, SAMPLE, tok)
    assert not ok, f"root:// read with {case} succeeded"
    assert https(client, "GET", ORIGIN, SAMPLE, tok) in (401, 403), f"https:// read with {case} succeeded"


def test_users_write_only_their_own_area(nodes):
    client = nodes["xcache1"]
    own_area = ("storage.create:/store/user/alice", "storage.modify:/store/user/alice")
    alice = token("alice", ("storage.read:/store", *own_area))
    name = uuid.uuid4().hex[:8]
    assert xrd_write(client, ORIGIN, f"/store/user/alice/{name}.txt", alice)
    assert https(client, "PUT", ORIGIN, f"/store/user/alice/{name}-https.txt", alice, data="hi") in (200, 201)
    stored = nodes["storage1"].file(f"/srv/xrootd/store/user/alice/{name}.txt")
    assert stored.exists and stored.user == "xrootd"
    # Outside her area, through '..', with a read-only token: refused.
    assert not xrd_write(client, ORIGIN, f"/store/user/bob/{name}.txt", alice)
    assert https(client, "PUT", ORIGIN, f"/store/user/bob/{name}.txt", alice, data="x") in (401, 403)
    assert not xrd_write(client, ORIGIN, f"/store/user/alice/../bob/{name}-dots.txt", alice)
    assert https(client, "PUT", ORIGIN, f"/store/user/alice/../bob/{name}-dots.txt", alice, data="x") in (400, 401, 403)
    reader = token("alice", ("storage.read:/store",))
    assert not xrd_write(client, ORIGIN, f"/store/user/alice/{name}-ro.txt", reader)
    assert https(client, "PUT", ORIGIN, f"/store/user/alice/{name}-ro.txt", reader, data="x") in (401, 403)
    assert not nodes["storage1"].file(f"/srv/xrootd/store/user/bob/{name}.txt").exists
    assert not nodes["storage1"].file(f"/srv/xrootd/store/user/bob/{name}-dots.txt").exists


# --- The cache ------------------------------------------------------------------------------------------------


def test_cache_serves_token_holders_and_reads_the_origin_with_its_own_token(nodes):
    client = nodes["storage1"]
    ok, digest = xrd_read(client, CACHE, SAMPLE, token())
    assert ok and digest == sample_sha256(), digest
    assert not xrd_read(client, CACHE, SAMPLE, None)[0]
    assert https(client, "GET", CACHE, SAMPLE, None) in (401, 403)
    cached = nodes["xcache1"].run("find /srv/xrootd -name nano_dy.root").stdout
    assert "nano_dy.root" in cached
    # The cache's token may only read.
    assert nodes["xcache1"].file("/etc/xrootd/cache.token").mode == 0o600


# --- uproot as a physicist's client ----------------------------------------------------------------------------


def test_uproot_reads_nanoaod_through_root_with_a_token_like_a_local_read(nodes, tmp_path):
    """A client on the site network (a container with this repository's Python environment)."""
    token_file = tmp_path / "token"
    token_file.write_text(token())
    token_file.chmod(0o600)
    ca = Path(INVENTORY).parent / "credentials" / "site-ca" / "ca.crt"
    ca_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca)], capture_output=True, text=True, check=True
    ).stdout.strip()
    script = f"""
import os, shutil, uproot, awkward
os.makedirs('/tmp/certs', exist_ok=True)
shutil.copy('{ca}', '/tmp/certs/{ca_hash}.0')
shutil.copy('{token_file}', '/tmp/token'); os.chmod('/tmp/token', 0o600)
os.environ.update(X509_CERT_DIR='/tmp/certs', BEARER_TOKEN_FILE='/tmp/token')
branches = ['Muon_pt', 'Muon_eta', 'Muon_phi']
remote = uproot.open('root://{ORIGIN}/{SAMPLE}')['Events'].arrays(branches)  # uproot's root:// default: fsspec-xrootd
local = uproot.open('{SAMPLES / "nano_dy.root"}')['Events'].arrays(branches)
assert all(awkward.array_equal(remote[b], local[b]) for b in branches)
print('same', len(remote))
"""
    prefix, base = Path(sys.prefix), Path(sys.base_prefix)
    command = ["docker", "run", "--rm", "--network", NETWORK]
    for path in {prefix, base, REPO, tmp_path, ca.parent}:
        command += ["-v", f"{path}:{path}:ro"]
    command += ["af-node-base:trixie", str(prefix / "bin" / "python"), "-c", script]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith("same 40"), result.stdout + result.stderr


# --- Operations: issuer down, key rotation -------------------------------------------------------------------


def test_reads_continue_while_the_issuer_is_down(nodes):
    client = nodes["xcache1"]
    assert xrd_read(client, ORIGIN, SAMPLE, token())[0]  # keys cached
    nodes["services"].check_output("systemctl stop nginx")
    try:
        assert xrd_read(client, ORIGIN, SAMPLE, token())[0]
        assert https(client, "GET", ORIGIN, SAMPLE, token()) == 200
    finally:
        nodes["services"].check_output("systemctl start nginx")


def run_playbook(playbook, *args):
    env = {**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    command = ["ansible-playbook", "-i", INVENTORY, str(REPO / "playbooks" / playbook), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result


def test_key_rotation_keeps_valid_tokens_and_retiring_revokes_them(nodes):
    client = nodes["xcache1"]
    old_kid, _ = active_key()
    old_token = token()
    run_playbook("rotate_token_key.yml")
    new_kid, _ = active_key()
    assert new_kid != old_kid
    assert xrd_read(client, ORIGIN, SAMPLE, old_token)[0], "a still-valid token of the old key stopped working"
    assert xrd_read(client, ORIGIN, SAMPLE, token())[0], "a token of the new key does not work"
    run_playbook("rotate_token_key.yml", "-e", f"retire_key_id={old_kid}")
    assert not xrd_read(client, ORIGIN, SAMPLE, old_token)[0], "a token of a retired key still works"
    assert xrd_read(client, ORIGIN, SAMPLE, token())[0]
