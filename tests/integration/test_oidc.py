"""The testbed's OpenID Connect provider (role oidc_provider): discovery, the authorization-code flow
the hub will use (tests/support/oidc.py), users' groups, and refusals."""

from __future__ import annotations

import json

import pytest

from tests.support.oidc import LoginRefused, discover, login

pytestmark = pytest.mark.testbed

NODE = "services"
DOMAIN = "af.test"
PORT = 4443
ISSUER = f"https://{NODE}.{DOMAIN}:{PORT}/api/oidc"
CLIENT_ID = "jupyterhub"
REDIRECT_URI = f"https://{NODE}.{DOMAIN}:8443/hub/oauth_callback"  # the hub port on the testbed


@pytest.fixture(scope="module")
def provider(web):
    """A factory of sessions that reach the provider from the controller (site CA verified)."""
    return web


def secret(facility, name: str) -> str:
    return (facility.credentials / "oidc" / name).read_text().strip()


def sign_in(facility, provider, user: str, password: str | None = None) -> dict:
    return login(
        provider(),
        ISSUER,
        CLIENT_ID,
        REDIRECT_URI,
        user,
        password if password is not None else secret(facility, f"{user}.password"),
        client_secret=secret(facility, f"client-{CLIENT_ID}.secret"),
    )


def test_discovery_names_the_issuer_and_the_code_flow(provider):
    document = discover(provider(), ISSUER)
    assert document["issuer"] == ISSUER
    assert "code" in document["response_types_supported"]
    assert {"preferred_username", "groups"} <= set(document.get("claims_supported", []))
    assert document["authorization_endpoint"].startswith(ISSUER + "/")


def test_alice_logs_in_and_her_id_token_names_her_and_her_group(facility, provider):
    result = sign_in(facility, provider, "alice")
    claims = result["claims"]  # signature already verified against the provider's JWKS
    assert claims["preferred_username"] == "alice"
    assert claims["groups"] == ["af-users"]
    assert claims["aud"] == CLIENT_ID and claims["iss"] == ISSUER
    assert result["userinfo"]["groups"] == ["af-users"]
    assert result["timings"]["total"] < 10, result["timings"]


def test_carol_is_also_an_admin_and_mallory_is_only_a_visitor(facility, provider):
    assert sorted(sign_in(facility, provider, "carol")["claims"]["groups"]) == ["af-admins", "af-users"]
    assert sign_in(facility, provider, "mallory")["claims"]["groups"] == ["visitors"]


def test_a_wrong_password_is_refused(facility, provider):
    with pytest.raises(LoginRefused):
        sign_in(facility, provider, "alice", password="not-her-password")  # noqa: S106 - a wrong password


def test_a_wrong_client_secret_and_a_foreign_redirect_are_refused(facility, provider):
    document = discover(provider(), ISSUER)
    answer = provider().post(
        document["token_endpoint"],
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, "not-the-secret"),
    )
    assert answer.status_code in (400, 401, 403) and "unauthorized_client" in answer.text
    with pytest.raises(LoginRefused):
        login(provider(), ISSUER, CLIENT_ID, "https://evil.example/cb", "alice", secret(facility, "alice.password"))


def test_the_admin_api_is_not_served_over_https_and_glewlwyd_listens_on_loopback_only(facility, provider):
    assert provider().get(f"https://{NODE}.{DOMAIN}:{PORT}/api/user/").status_code == 403
    listening = facility.exec(NODE, "ss -Hltn 'sport = :4593'").stdout
    assert "127.0.0.1:4593" in listening and "0.0.0.0:4593" not in listening, listening


def test_secrets_stay_on_the_controller_owner_readable_only(facility):
    files = sorted((facility.credentials / "oidc").iterdir())
    names = {path.name for path in files}
    assert {"alice.password", "mallory.password", f"client-{CLIENT_ID}.secret", "signing.key"} <= names
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)
    config = facility.exec(NODE, "cat /etc/glewlwyd/glewlwyd.conf").stdout
    assert secret(facility, "admin.password") not in config
    if facility.first is not None:  # None when reusing a converged testbed (conftest.py)
        assert json.dumps(secret(facility, "alice.password")) not in facility.first.output
