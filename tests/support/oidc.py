"""Log in at an OpenID Connect provider the way a browser does, for tests (authorization-code flow).

Written for the testbed's provider (glewlwyd, role oidc_provider), whose login page is a JavaScript
application: this module does what that page does. ``login`` follows the flow a physicist's browser
goes through when JupyterHub sends it to the provider:

1. GET the authorization endpoint: the provider redirects to its login page, which carries the URL to
   come back to (``callback_url``);
2. POST the credentials to the provider's login API (a session cookie comes back);
3. record the user's consent for the client's scopes (the page's "grant" step; once per user and client);
4. GET the callback URL (``g_continue``): the provider redirects to the client's redirect URI with a code;
5. exchange the code at the token endpoint with the client's secret (HTTP Basic), as the hub does.

It returns the token response plus the ID token's verified claims (signature checked against the
provider's JWKS, issuer, audience, expiry and nonce). A refused login raises ``LoginRefused``.
Only ``requests`` and ``cryptography`` are needed.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from requests.adapters import HTTPAdapter

TIMEOUT = 30
SCOPES = ("openid", "profile", "email")


class LoginRefused(Exception):
    """The provider refused the credentials (or the user's access)."""


class ResolvingAdapter(HTTPAdapter):
    """Send requests for some host names to fixed addresses, TLS still verified for the name.

    For a controller that is not on the testbed's DNS: session.mount("https://", ResolvingAdapter(
    {"services.af.test": "172.30.215.7"})). Cookies and redirects keep the real name.
    """

    def __init__(self, addresses: dict[str, str]):
        self.addresses = dict(addresses)
        super().__init__()

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        address = self.addresses.get(parts.hostname or "")
        if address is None:
            return super().send(request, **kwargs)
        routed = request.copy()
        routed.url = parts._replace(netloc=parts.netloc.replace(parts.hostname, address, 1)).geturl()
        routed.headers["Host"] = parts.netloc
        self.poolmanager.connection_pool_kw.update(server_hostname=parts.hostname, assert_hostname=parts.hostname)
        response = super().send(routed, **kwargs)
        response.url, response.request = request.url, request
        return response


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _int(data: str) -> int:
    return int.from_bytes(_b64(data), "big")


def discover(session: requests.Session, issuer: str) -> dict:
    """The provider's discovery document (``<issuer>/.well-known/openid-configuration``)."""
    response = session.get(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=TIMEOUT)
    response.raise_for_status()
    document = response.json()
    if document.get("issuer") != issuer:
        raise ValueError(f"discovery document names issuer {document.get('issuer')!r}, not {issuer!r}")
    return document


def verify_jwt(token: str, jwks: dict) -> dict:
    """The claims of a JWS signed with RS256/PS256/ES256 by one of the keys in jwks (raises if not)."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(_b64(header_b64))
    keys = [k for k in jwks.get("keys", []) if "kid" not in header or k.get("kid") == header["kid"]]
    if not keys:
        raise ValueError(f"no key {header.get('kid')!r} in the provider's JWKS")
    signed, signature, alg = f"{header_b64}.{payload_b64}".encode(), _b64(signature_b64), header.get("alg")
    key = keys[0]
    if alg in ("RS256", "PS256") and key.get("kty") == "RSA":
        public = rsa.RSAPublicNumbers(_int(key["e"]), _int(key["n"])).public_key()
        pad = (
            padding.PKCS1v15()
            if alg == "RS256"
            else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        )
        public.verify(signature, signed, pad, hashes.SHA256())
    elif alg == "ES256" and key.get("kty") == "EC":
        public = ec.EllipticCurvePublicNumbers(_int(key["x"]), _int(key["y"]), ec.SECP256R1()).public_key()
        half = len(signature) // 2
        der = encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))
        public.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    else:
        raise ValueError(f"unsupported signature algorithm {alg!r} for key type {key.get('kty')!r}")
    return json.loads(_b64(payload_b64))


def _location(response: requests.Response) -> str:
    if response.status_code not in (301, 302, 303, 307, 308):
        raise LoginRefused(
            f"expected a redirect from {response.url}, got HTTP {response.status_code}: {response.text[:300]}"
        )
    return requests.compat.urljoin(response.url, response.headers["Location"])


def authorize(session: requests.Session, issuer: str, authorization_url: str, username: str, password: str) -> str:
    """Steps 1-4 at the provider for an authorization request a client (the hub) made: log username in,
    consent to the client's scopes, and return the URL the provider sends the browser back to."""
    request = parse_qs(urlsplit(authorization_url).query)
    client_id, scope = request["client_id"][0], request.get("scope", [" ".join(SCOPES)])[0]
    login_page = _location(session.get(authorization_url, allow_redirects=False, timeout=TIMEOUT))
    page = session.get(login_page, timeout=TIMEOUT)  # the login form (a static page)
    page.raise_for_status()
    callback = parse_qs(urlsplit(login_page).query).get("callback_url", [None])[0]
    if callback is None:
        raise ValueError(f"the provider's login page names no callback_url: {login_page}")
    api = issuer.rsplit("/", 1)[0]  # https://host:port/api
    answer = session.post(f"{api}/auth/", json={"username": username, "password": password}, timeout=TIMEOUT)
    if answer.status_code != 200:
        raise LoginRefused(f"the provider refused {username}'s credentials (HTTP {answer.status_code})")
    grant = session.put(f"{api}/auth/grant/{client_id}", json={"scope": scope}, timeout=TIMEOUT)
    if grant.status_code != 200:
        raise LoginRefused(f"consent for {client_id} refused for {username} (HTTP {grant.status_code})")
    return _location(session.get(callback + "&g_continue", allow_redirects=False, timeout=TIMEOUT))


def login(  # noqa: PLR0917 - the positional signature the hub tests call
    session: requests.Session,
    issuer: str,
    client_id: str,
    redirect_uri: str,
    username: str,
    password: str,
    *,
    client_secret: str | None = None,
    scopes: tuple[str, ...] = SCOPES,
) -> dict:
    """Log username in at issuer for client_id; return the tokens and the ID token's verified claims.

    session: a requests.Session with ``verify`` set to the site CA (and ``trust_env = False``, or
    REQUESTS_CA_BUNDLE would override it); it keeps the provider's cookies.
    Without client_secret the flow stops after the redirect: the result holds only ``code`` and ``state``
    (what the hub would receive). Returns {"code", "state", "access_token", "id_token", "refresh_token",
    "claims" (ID token), "userinfo", "timings" (seconds per step)}.
    """
    timings: dict[str, float] = {}
    started = time.monotonic()
    config = discover(session, issuer)
    jwks = session.get(config["jwks_uri"], timeout=TIMEOUT).json()
    timings["discovery"] = time.monotonic() - started

    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "nonce": nonce,
    }
    step = time.monotonic()
    back = authorize(session, issuer, config["authorization_endpoint"] + "?" + urlencode(query), username, password)
    timings["login"] = time.monotonic() - step
    if not back.startswith(redirect_uri):
        raise LoginRefused(f"the provider sent {username} to {back}, not back to the client")
    params = parse_qs(urlsplit(back).query)
    if "error" in params or "code" not in params:
        raise LoginRefused(f"the provider answered the client with {params}")
    if params.get("state") != [state]:
        raise ValueError("the state the provider returned is not the one sent")
    result: dict = {"code": params["code"][0], "state": state, "timings": timings}
    if client_secret is None:
        return result

    step = time.monotonic()
    response = session.post(
        config["token_endpoint"],
        data={"grant_type": "authorization_code", "code": result["code"], "redirect_uri": redirect_uri},
        auth=(client_id, client_secret),
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    tokens = response.json()
    timings["token"] = time.monotonic() - step
    claims = verify_jwt(tokens["id_token"], jwks)
    audience = claims.get("aud")
    if claims.get("iss") != issuer or client_id not in (audience if isinstance(audience, list) else [audience]):
        raise ValueError(f"ID token for the wrong issuer or audience: {claims.get('iss')!r}, {audience!r}")
    if claims.get("nonce") != nonce or claims.get("exp", 0) < time.time():
        raise ValueError("ID token with the wrong nonce, or expired")
    userinfo = session.get(
        config["userinfo_endpoint"], headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=TIMEOUT
    )
    userinfo.raise_for_status()
    timings["total"] = time.monotonic() - started
    result.update(tokens, claims=claims, userinfo=userinfo.json())
    return result
