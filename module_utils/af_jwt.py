"""JSON Web Tokens (ES256) for the scitoken module (library/) and for code that publishes signing keys.

Only the ``cryptography`` package is needed (python3-cryptography on Debian); no PyJWT, no scitokens.

- Encoding: base64url without padding, compact JSON, ES256 signatures as the raw 64-byte ``r || s`` of JWS
  (RFC 7518, section 3.4), converted from and to the DER form ``cryptography`` uses.
- Keys: EC P-256 only. ``public_jwk`` and ``jwks`` give the public keys as a JWK Set (what an issuer
  publishes at its ``jwks_uri``).
- WLCG tokens: scope validation, the claims of a new token, the reason an existing token must be re-minted
  and the text shown in diff mode.

Nothing here ever puts a token, a signature or a key into a message, an exception or the diff text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from itertools import pairwise
from urllib.parse import urlsplit

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
except ImportError as _exc:  # reported by the module with missing_required_lib
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: ImportError | None = _exc
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

ALGORITHM = "ES256"
CURVE_NAME = "P-256"
# P-256 coordinates, scalars and the halves of a raw ES256 signature are 32 bytes.
COORDINATE_SIZE = 32
SIGNATURE_SIZE = 2 * COORDINATE_SIZE

# Scopes of the WLCG Common JWT Profile (v1.0) that take no path, and the storage scopes that need one.
BARE_SCOPES = frozenset(
    {
        "compute.read",
        "compute.modify",
        "compute.create",
        "compute.cancel",
        "storage.stage",
        "wlcg.groups",
        "openid",
        "offline_access",
    }
)
PATH_SCOPES = frozenset({"storage.read", "storage.create", "storage.modify", "storage.stage"})
# Claims the module sets itself; extra_claims may not set them.
RESERVED_CLAIMS = ("iss", "sub", "aud", "scope", "wlcg.ver", "iat", "nbf", "exp", "jti")
# Claims compared to the request when deciding whether to keep a token (times and jti are not).
IDENTITY_CLAIMS = ("iss", "sub", "aud", "scope", "wlcg.ver")
# A token whose nbf lies further in the future, or that outlives the wanted lifetime by more than this
# (seconds), was minted by a clock that is off or with a longer lifetime: it is re-minted.
CLOCK_SLACK = 300

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class JWTError(ValueError):
    """A malformed token or an unusable key. The message never contains any part of the token or key."""


def _require_cryptography() -> None:
    if not HAS_CRYPTOGRAPHY:
        raise JWTError("the cryptography Python package is required (python3-cryptography)")


# --- Encoding ----------------------------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    """Decode base64url with or without padding; raises JWTError (without echoing the text)."""
    if not isinstance(segment, str):
        raise JWTError("a token segment is not base64url")
    stripped = segment.rstrip("=")
    if not _B64URL.match(stripped) or len(stripped) % 4 == 1:
        raise JWTError("a token segment is not base64url")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JWTError("a token segment is not base64url") from exc


def _json_segment(data: Mapping) -> str:
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JWTError(f"the claims cannot be encoded as JSON: {exc}") from exc
    return b64url_encode(text.encode("utf-8"))


def _json_object(segment: str, what: str) -> dict:
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JWTError(f"the token {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise JWTError(f"the token {what} is not a JSON object")
    return value


def _split(token: str) -> list[str]:
    if not isinstance(token, str):
        raise JWTError("a token is text")
    token = token.strip()
    if not token:
        raise JWTError("the token is empty")
    if any(c.isspace() for c in token):
        raise JWTError("the text is not a single token (it contains whitespace or several lines)")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError(f"a token has 3 parts separated by '.', this text has {len(parts)}")
    if not parts[2]:
        raise JWTError("the token has no signature")
    return parts


def decode_unverified(token: str) -> tuple[dict, dict]:
    """(header, payload) of a compact JWT (surrounding whitespace ignored); the signature is NOT checked.

    Raises JWTError unless the text is one token of three base64url parts whose first two are JSON objects.
    """
    parts = _split(token)
    b64url_decode(parts[2])
    return _json_object(parts[0], "header"), _json_object(parts[1], "payload")


# --- Keys --------------------------------------------------------------------------------------------------


def _check_p256(key: object, what: str) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        kind = f"an EC {curve.name} key" if curve is not None else f"a {type(key).__name__}"
        raise JWTError(f"{what} is {kind}; an EC P-256 (secp256r1, prime256v1) key is required")


def load_private_key(pem: bytes | str, what: str = "the key") -> ec.EllipticCurvePrivateKey:
    """An unencrypted PEM EC P-256 private key (PKCS#8 or SEC1). what names the key in error messages."""
    _require_cryptography()
    data = pem.encode("utf-8") if isinstance(pem, str) else bytes(pem)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted, and no password given
        raise JWTError(f"{what} is encrypted; give an unencrypted key (decrypt it with Ansible Vault)") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise JWTError(f"{what} is not a PEM private key that can be loaded") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise JWTError(f"{what} is a {type(key).__name__.lstrip('_')}; an EC P-256 private key is required")
    _check_p256(key, what)
    return key


def load_public_key(key: object, what: str = "the key") -> ec.EllipticCurvePublicKey:
    """The EC P-256 public key of a key object (private or public) or of PEM text (private or public key)."""
    _require_cryptography()
    if isinstance(key, str | bytes | bytearray):
        data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if b"PRIVATE KEY-----" in data:
            return load_private_key(data, what).public_key()
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise JWTError(f"{what} is not a PEM public or private key that can be loaded") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise JWTError(f"{what} is a {type(key).__name__.lstrip('_')}; an EC P-256 key is required")
    _check_p256(key, what)
    return key


def public_jwk(private_or_public_key: object, kid: str) -> dict:
    """The public JWK (RFC 7517/7518) of an EC P-256 key: kty, crv, x, y, kid, alg ES256, use sig.

    The key is a cryptography key object (private or public) or PEM text of either. x and y are the
    32-byte big-endian coordinates, base64url without padding.
    """
    numbers = load_public_key(private_or_public_key).public_numbers()
    return {
        "kty": "EC",
        "crv": CURVE_NAME,
        "x": b64url_encode(numbers.x.to_bytes(COORDINATE_SIZE, "big")),
        "y": b64url_encode(numbers.y.to_bytes(COORDINATE_SIZE, "big")),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


def jwks(keys: Iterable[tuple[bytes | str, str]]) -> dict:
    """A JWK Set {"keys": [...]} of (PEM of a private or public key, kid) pairs, in the order given."""
    result = []
    seen: set[str] = set()
    for pem, kid in keys:
        if kid in seen:
            raise JWTError(f"kid {kid!r} is given for more than one key")
        seen.add(kid)
        result.append(public_jwk(pem, kid))
    return {"keys": result}


# --- Signing and verification --------------------------------------------------------------------------------


def mint(private_key_pem: bytes | str, kid: str, claims: Mapping) -> str:
    """A compact ES256 JWT with header {"alg": "ES256", "typ": "JWT", "kid": kid} and the claims as payload.

    private_key_pem may also be a loaded EC P-256 private key object.
    """
    if isinstance(private_key_pem, str | bytes | bytearray):
        key = load_private_key(private_key_pem)
    else:
        _require_cryptography()
        key = private_key_pem
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise JWTError("the signing key is not an EC private key")
        _check_p256(key, "the signing key")
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": kid}
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    der = key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(COORDINATE_SIZE, "big") + s.to_bytes(COORDINATE_SIZE, "big")
    return f"{signing_input}.{b64url_encode(raw)}"


def verify(token: str, public_key: object) -> bool:
    """True when token is an ES256 JWT whose signature verifies with public_key.

    public_key: a key object (public or private) or PEM text, as for load_public_key. A malformed token, another
    algorithm or a signature of the wrong size gives False; an unusable key raises JWTError.
    """
    key = load_public_key(public_key)
    try:
        parts = _split(token)
        header = _json_object(parts[0], "header")
        b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except JWTError:
        return False
    if header.get("alg") != ALGORITHM or len(signature) != SIGNATURE_SIZE:
        return False
    r = int.from_bytes(signature[:COORDINATE_SIZE], "big")
    s = int.from_bytes(signature[COORDINATE_SIZE:], "big")
    if r == 0 or s == 0:
        return False
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    try:
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- WLCG requests -----------------------------------------------------------------------------------------


def scope_error(scope: object) -> str | None:
    """Why scope is not a valid WLCG scope, or None if it is.

    Valid: one of BARE_SCOPES, or "<one of PATH_SCOPES>:<path>" with an absolute, normalized path (no empty,
    "." or ".." segments, no trailing "/" except for "/" itself).
    """
    if not isinstance(scope, str) or not scope:
        return f"scope {scope!r} is not a non-empty string"
    if any(c.isspace() or not c.isprintable() for c in scope):
        return f"scope {scope!r} contains whitespace or control characters (scopes are space-separated)"
    name, colon, path = scope.partition(":")
    error = None
    if colon and name in PATH_SCOPES:
        error = _path_error(path)
    elif colon and name in BARE_SCOPES:
        error = f"{name} takes no path"
    elif colon:
        error = f"{name!r} is unknown; the scopes with a path are {', '.join(sorted(PATH_SCOPES))}"
    elif name in PATH_SCOPES and name not in BARE_SCOPES:
        error = f"{name} needs a path ({name}:/some/path)"
    elif name not in BARE_SCOPES:
        error = (
            f"unknown scope; valid are {', '.join(sorted(BARE_SCOPES))} and "
            f"{', '.join(sorted(PATH_SCOPES))} followed by ':/path'"
        )
    return f"scope {scope!r}: {error}" if error else None


def _path_error(path: str) -> str | None:
    """Why path is not an absolute, normalized path for a storage scope, or None."""
    if not path.startswith("/"):
        return "the path must be absolute (start with '/')"
    segments = path.split("/")[1:]
    if ".." in segments:
        return "the path must not contain '..' segments"
    if path != "/" and ("" in segments or "." in segments):
        normalized = "/" + "/".join(s for s in segments if s not in ("", "."))
        return f"the path is not normalized (no '//', '/./' or trailing '/'; want {normalized})"
    return None


def validate_scopes(scopes: Iterable[object]) -> list[str]:
    """Error messages for the invalid scopes ([] when all are valid)."""
    return [error for error in (scope_error(s) for s in scopes) if error]


def issuer_error(issuer: object) -> str | None:
    """Why issuer is not an https URL usable as "iss" (no query or fragment), or None."""
    if not isinstance(issuer, str) or not issuer:
        return "issuer must be a non-empty https URL"
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.netloc:
        return f"issuer {issuer!r} must be an https URL (https://host[/path])"
    if parts.query or parts.fragment or any(c.isspace() for c in issuer):
        return f"issuer {issuer!r} must not contain a query, a fragment or whitespace"
    return None


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _plain_json(value: object) -> object:
    """value as it reads back from JSON (tuples become lists, ...); raises JWTError if it is not JSON."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise JWTError(f"the value cannot be encoded as JSON: {exc}") from exc


def request_claims(
    *,
    issuer: str,
    subject: str,
    audience: Iterable[str],
    scopes: Iterable[str] = (),
    wlcg_version: str = "1.0",
    extra_claims: Mapping | None = None,
) -> dict:
    """The claims that identify a token for this request, without times and jti.

    aud is a string for one audience and a list for several; scope is space-separated and omitted when there
    are no scopes (duplicates are dropped in both). Extra claims follow; they may not set RESERVED_CLAIMS.
    """
    extra = dict(extra_claims or {})
    reserved = sorted(set(extra) & set(RESERVED_CLAIMS))
    if reserved:
        raise JWTError(f"extra_claims must not set {', '.join(reserved)} (set by the module)")
    audiences = _unique(audience)
    claims: dict = {"iss": issuer, "sub": subject, "aud": audiences[0] if len(audiences) == 1 else audiences}
    scope_list = _unique(scopes)
    if scope_list:
        claims["scope"] = " ".join(scope_list)
    claims["wlcg.ver"] = wlcg_version
    for name, value in extra.items():
        try:
            claims[str(name)] = _plain_json(value)
        except JWTError as exc:
            raise JWTError(f"extra claim {name!r}: {exc}") from exc
    return claims


def new_claims(request: Mapping, *, lifetime: int, now: float, jti: str | None = None, backdate: int = 0) -> dict:
    """The payload of a token minted now: the request claims, iat, nbf (= iat), exp (iat + lifetime), jti.

    iat is backdate seconds before now: a consumer whose clock is behind the signer's by up to that much
    still accepts a brand-new token (XRootD and HTCondor allow no skew on iat/nbf).
    """
    iat = int(now) - int(backdate)
    claims = {name: request[name] for name in IDENTITY_CLAIMS if name in request}
    claims.update({"iat": iat, "nbf": iat, "exp": iat + int(lifetime), "jti": jti or uuid.uuid4().hex})
    claims.update({name: value for name, value in request.items() if name not in claims})
    return claims


# --- Keep or re-mint ---------------------------------------------------------------------------------------


def _as_set(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {str(v) for v in value}
    return set() if value is None else {str(value)}


def scope_set(payload: Mapping) -> set[str]:
    """The entries of the space-separated "scope" claim (a list is accepted too)."""
    scope = payload.get("scope")
    if isinstance(scope, str):
        return set(scope.split())
    return _as_set(scope)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def claims_reason(header: Mapping, payload: Mapping, *, kid: str, request: Mapping) -> str | None:
    """Why a (verified) token's header and claims do not match the request, or None.

    Reasons, in this order: "key id differs", "issuer differs", "subject differs", "audience differs" (aud as a
    set), "scopes differ" (scope as a set), "wlcg.ver differs", "extra claims differ" (the claims outside
    RESERVED_CLAIMS must be exactly the request's extra claims).
    """
    checks = (
        (header.get("kid") == kid, "key id differs"),
        (payload.get("iss") == request.get("iss"), "issuer differs"),
        (payload.get("sub") == request.get("sub"), "subject differs"),
        (_as_set(payload.get("aud")) == _as_set(request.get("aud")), "audience differs"),
        (scope_set(payload) == scope_set(request), "scopes differ"),
        (payload.get("wlcg.ver") == request.get("wlcg.ver"), "wlcg.ver differs"),
        (_extra(payload) == _extra(request), "extra claims differ"),
    )
    return next((reason for matches, reason in checks if not matches), None)


def _extra(claims: Mapping) -> dict:
    return {name: value for name, value in claims.items() if name not in RESERVED_CLAIMS}


def expiry_reason(payload: Mapping, *, lifetime: int, renew_before: int, now: float) -> str | None:
    """Why a token must be re-minted for its times, or None.

    "expiry missing" (no numeric exp), "expired" (exp <= now), "expires soon" (less than renew_before left),
    "lifetime differs" (it outlives the wanted lifetime by more than CLOCK_SLACK, so it was minted with a
    longer one), "not yet valid" (nbf more than CLOCK_SLACK in the future).
    """
    exp = _number(payload.get("exp"))
    if exp is None:
        return "expiry missing"
    remaining = exp - now
    if remaining <= 0:
        return "expired"
    if remaining < renew_before:
        return "expires soon"
    if remaining > lifetime + CLOCK_SLACK:
        return "lifetime differs"
    nbf = _number(payload.get("nbf"))
    if nbf is not None and nbf > now + CLOCK_SLACK:
        return "not yet valid"
    return None


def token_state(
    existing: str | None,
    public_key: object,
    *,
    kid: str,
    request: Mapping,
    lifetime: int,
    renew_before: int,
    force: bool = False,
    now: float | None = None,
) -> tuple[dict | None, dict | None, str]:
    """(header, payload, reason to re-mint or "" to keep) of the existing token text (None: no file).

    Reasons: "missing", "not a token" (header and payload None), "forced", "algorithm differs",
    "signature invalid (other key)", then claims_reason and expiry_reason.
    """
    now = time.time() if now is None else now
    if existing is None:
        return None, None, "missing"
    try:
        header, payload = decode_unverified(existing)
    except JWTError:
        return None, None, "not a token"
    if force:
        return header, payload, "forced"
    if header.get("alg") != ALGORITHM:
        return header, payload, "algorithm differs"
    if not verify(existing, public_key):
        return header, payload, "signature invalid (other key)"
    reason = claims_reason(header, payload, kid=kid, request=request) or expiry_reason(
        payload, lifetime=lifetime, renew_before=renew_before, now=now
    )
    return header, payload, reason or ""


# --- Queues of tokens valid one after the other ------------------------------------------------------------


def queue_length(*, lifetime: int, interval: int, horizon: int) -> int:
    """How many tokens, valid from now + k * interval for lifetime each, cover now .. now + horizon."""
    if horizon <= lifetime:
        return 1
    return 1 + -(-(horizon - lifetime) // interval)  # ceiling division


def queue_claims(
    request: Mapping, *, lifetime: int, interval: int, horizon: int, now: float, backdate: int = 0
) -> list[dict]:
    """The payloads of a queue minted now: token k has nbf = iat + k * interval and exp = nbf + lifetime.

    All have iat = now - backdate (when they were signed, minus the clock skew allowed for). Consumers refuse
    a token before its nbf, so a queued token that leaks early is of no use until its turn; each is meant to
    be installed when its turn comes. Successive windows overlap by lifetime - interval, which callers keep
    at least backdate, so a consumer whose clock is behind still accepts the previous token meanwhile.
    """
    iat = int(now) - int(backdate)
    payloads = []
    for index in range(queue_length(lifetime=lifetime, interval=interval, horizon=horizon)):
        claims = new_claims(request, lifetime=lifetime, now=iat + index * interval)
        claims["iat"] = iat
        payloads.append(claims)
    return payloads


def split_queue(text: str) -> list[str]:
    """The tokens of a queue file: one compact JWT a line; blank lines and # comments are skipped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def queue_state(
    existing: str | None,
    public_key: object,
    *,
    kid: str,
    request: Mapping,
    lifetime: int,
    interval: int,
    horizon: int,
    renew_before: int,
    force: bool = False,
    now: float | None = None,
) -> tuple[list[dict], str]:
    """(payloads, reason to re-mint or "" to keep) of an existing queue file's text (None: no file).

    A queue is kept when every token verifies and matches the request (token_state's reasons, "lifetime
    differs" when exp - nbf is not lifetime), the nbf's follow each other by interval ("interval differs"),
    a token is valid now ("not yet valid" / "expired"), the last one expires no earlier than renew_before
    from now ("expires soon") and no later than horizon from now ("horizon differs").
    """
    now = time.time() if now is None else now
    tokens = split_queue(existing) if existing is not None else []
    if not tokens or force:
        return [], "forced" if tokens else ("missing" if existing is None else "empty")
    payloads = []
    for token in tokens:
        _header, payload, reason = token_state(
            token, public_key, kid=kid, request=request, lifetime=lifetime, renew_before=0, now=now
        )
        # A queue holds expired and future tokens by design: only the other reasons count per token.
        if reason and reason not in ("expired", "not yet valid", "lifetime differs"):
            return [], reason
        nbf, exp = _number(payload.get("nbf")), _number(payload.get("exp"))
        if nbf is None or exp is None:
            return [], "expiry missing"
        payloads.append(payload)
    return payloads, _queue_times_reason(
        [(p["nbf"], p["exp"]) for p in payloads],
        lifetime=lifetime,
        interval=interval,
        horizon=horizon,
        renew_before=renew_before,
        now=now,
    )


def _queue_times_reason(
    windows: list, *, lifetime: int, interval: int, horizon: int, renew_before: int, now: float
) -> str:
    """queue_state's reasons that concern the (nbf, exp) windows of the tokens ("" when they suit)."""
    starts = [nbf for nbf, _exp in windows]
    last_exp = windows[-1][1]
    checks = (
        (all(abs(exp - nbf - lifetime) <= CLOCK_SLACK for nbf, exp in windows), "lifetime differs"),
        (
            all(abs(b - a - interval) <= CLOCK_SLACK for a, b in pairwise(starts)),
            "interval differs",
        ),
        (starts[0] <= now + CLOCK_SLACK, "not yet valid"),
        (last_exp > now, "expired"),
        (last_exp - now >= renew_before, "expires soon"),
        (last_exp - now <= horizon + CLOCK_SLACK, "horizon differs"),
    )
    return next((reason for suits, reason in checks if not suits), "")


def queue_text(header: Mapping | None, payloads: list[dict]) -> str:
    """The diff text of a queue: the first token's claims_text, then how many tokens and until when."""
    if not payloads:
        return ""
    until = iso_time(payloads[-1].get("exp"))
    return claims_text(header, payloads[0]) + f"tokens: {len(payloads)}, the last valid until {until}\n"


# --- Reporting ---------------------------------------------------------------------------------------------


def iso_time(timestamp: object) -> str | None:
    """A Unix time as ISO 8601 UTC ("2026-01-31T12:00:00Z"); None when it is not a number."""
    number = _number(timestamp)
    if number is None:
        return None
    try:
        return datetime.fromtimestamp(number, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def claims_text(header: Mapping | None, payload: Mapping | None) -> str:
    """The diff text of a token: kid, iss, sub, aud, scope, wlcg.ver, extra claims, iat, exp; one a line.

    Only the header's kid and claims: never the token or its signature (nor jti). None gives "".
    """
    if payload is None:
        return ""
    header = header or {}

    def shown(value: object) -> str:
        if value is None or value in ("", []):
            return "absent"
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    aud = payload.get("aud")
    lines = [
        f"kid: {shown(header.get('kid'))}",
        f"iss: {shown(payload.get('iss'))}",
        f"sub: {shown(payload.get('sub'))}",
        f"aud: {shown(' '.join(sorted(_as_set(aud))) if aud is not None else None)}",
        f"scope: {shown(' '.join(sorted(scope_set(payload))))}",
        f"wlcg.ver: {shown(payload.get('wlcg.ver'))}",
    ]
    lines += [f"{name}: {shown(payload[name])}" for name in sorted(payload) if name not in RESERVED_CLAIMS]
    for name in ("iat", "exp"):
        value = payload.get(name)
        lines.append(f"{name}: {iso_time(value) or shown(value)}")
    return "\n".join(lines) + "\n"


def token_diff(dest: str, existing: str | None, new_header: Mapping | None, new_payload: Mapping | None) -> dict:
    """Ansible's diff of a token file: claims_text before and after, never the token.

    existing: the old file's text (None: no file; text that is not a token shows as "(not a token)").
    """
    if existing is None:
        before = ""
    else:
        try:
            before = claims_text(*decode_unverified(existing))
        except JWTError:
            before = "(not a token)\n"
    return {
        "before": before,
        "after": claims_text(new_header, new_payload),
        "before_header": dest,
        "after_header": dest,
    }
