"""HTCondor helpers for the condor_token and condor_pool_info modules (library/).

Pure Python (standard library only), so everything here is unit-testable without HTCondor:

- IDTOKENS: read the claims of a token (a JWT) without verifying its signature, decide whether a token
  must be re-issued (``reissue_reason``), the renewal window and the text shown in diff mode. Nothing here
  ever returns or formats the token itself or its signature.
- Pool facts: turn collector ads (ClassAds or plain dicts) into plain facts, gather them through an injected
  query function, evaluate the conditions of ``wait_for`` and wait for them.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

# --- IDTOKENS --------------------------------------------------------------------------------------------

# How an authorization level appears in a token's "scope" claim (condor_token_create -authz READ).
SCOPE_PREFIX = "condor:/"
# A token that outlives the wanted lifetime by more than this (seconds) was issued with a longer lifetime.
LIFETIME_SLACK = 300
# The claims returned (and shown in diff mode), in order; the signature is never part of them.
CLAIM_NAMES = ("sub", "iss", "kid", "scope", "iat", "exp", "jti")
_B64URL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


class TokenError(ValueError):
    """The text is not a single well-formed JWT. The message never contains any part of the token."""


def b64url_decode(segment: str) -> bytes:
    """Decode one base64url segment of a JWT (padding optional)."""
    if not segment or any(c not in _B64URL_CHARS for c in segment):
        raise TokenError("a token segment is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("a token segment is not base64url") from exc


def _json_object(segment: str, what: str) -> dict:
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenError(f"the token {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenError(f"the token {what} is not a JSON object")
    return value


def parse_jwt(text: str) -> tuple[dict, dict]:
    """(header, payload) of a JWT given as text (surrounding whitespace ignored); the signature is not checked.

    Raises TokenError if the text is not exactly one token of three base64url parts whose first two are
    JSON objects.
    """
    token = text.strip()
    if not token:
        raise TokenError("the file is empty")
    if any(c.isspace() for c in token):
        raise TokenError("the text is not a single token (it contains whitespace or several lines)")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError(f"a token has 3 parts separated by '.', this text has {len(parts)}")
    if not parts[2]:
        raise TokenError("the token has no signature")
    b64url_decode(parts[2])
    return _json_object(parts[0], "header"), _json_object(parts[1], "payload")


def scope_entries(payload: Mapping) -> list[str]:
    """The entries of the "scope" claim (space-separated), [] when absent."""
    scope = payload.get("scope")
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list):
        return [str(s) for s in scope]
    return []


def token_claims(header: Mapping, payload: Mapping) -> dict:
    """The claims of interest: sub, iss, kid (from the header), scope (list), iat, exp, jti; None when absent."""
    return {
        "sub": payload.get("sub"),
        "iss": payload.get("iss"),
        "kid": header.get("kid"),
        "scope": scope_entries(payload),
        "iat": payload.get("iat"),
        "exp": payload.get("exp"),
        "jti": payload.get("jti"),
    }


def claims_from_text(text: str) -> dict:
    """token_claims of a token given as text (raises TokenError)."""
    return token_claims(*parse_jwt(text))


def authz_scope(authz: Iterable[str]) -> list[str]:
    """The scope entries that condor_token_create writes for these -authz values ("READ" -> "condor:/READ")."""
    scopes = []
    for level in authz:
        entry = level if level.startswith(SCOPE_PREFIX) else SCOPE_PREFIX + level
        if entry not in scopes:
            scopes.append(entry)
    return scopes


def authz_levels(authz: Iterable[str]) -> list[str]:
    """The -authz values to pass to condor_token_create: without the "condor:/" prefix, no duplicates."""
    return [entry[len(SCOPE_PREFIX) :] for entry in authz_scope(authz)]


def renew_window(lifetime: int | None, renew_before: int) -> float:
    """Seconds before expiry from which a token is re-issued.

    renew_before, except for lifetimes shorter than 2 * renew_before: then half the lifetime, so that a
    freshly issued token is never due for renewal.
    """
    if lifetime is not None and lifetime < 2 * renew_before:
        return lifetime / 2
    return float(renew_before)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def reissue_reason(
    claims: Mapping,
    *,
    identity: str,
    key_id: str,
    authz: Iterable[str],
    lifetime: int | None,
    renew_before: int,
    trust_domain: str | None = None,
    now: float | None = None,
) -> str | None:
    """Why a token with these claims must be re-issued for the wanted ones, or None if it can be kept.

    Reasons, checked in this order: "identity differs", "key differs", "issuer differs" (only when
    trust_domain is given), "scope differs", and for the expiry: without a lifetime, "expiry unwanted" (the
    token expires); with one, "expiry missing" (the token never expires), "expired", "expires soon" (within
    renew_window) and "lifetime differs" (the token outlives the wanted lifetime, so it was issued with a
    longer one).
    """
    now = time.time() if now is None else now
    wanted = {"sub": identity, "kid": key_id}
    if trust_domain is not None:
        wanted["iss"] = trust_domain
    for claim, reason in (("sub", "identity differs"), ("kid", "key differs"), ("iss", "issuer differs")):
        if claim in wanted and claims.get(claim) != wanted[claim]:
            return reason
    if set(claims.get("scope") or []) != set(authz_scope(authz)):
        return "scope differs"
    return expiry_reason(claims.get("exp"), lifetime=lifetime, renew_before=renew_before, now=now)


def expiry_reason(exp: object, *, lifetime: int | None, renew_before: int, now: float) -> str | None:
    """The expiry part of reissue_reason."""
    if lifetime is None:
        return "expiry unwanted" if exp is not None else None
    expires = _number(exp)
    if expires is None:
        return "expiry missing"
    remaining = expires - now
    reason = None
    if remaining <= 0:
        reason = "expired"
    elif remaining <= renew_window(lifetime, renew_before):
        reason = "expires soon"
    elif remaining > lifetime + LIFETIME_SLACK:
        reason = "lifetime differs"
    return reason


def iso_time(timestamp: object) -> str:
    """A Unix time as ISO 8601 UTC text ("2026-01-31T12:00:00Z"); "absent" for None; other values as text."""
    number = _number(timestamp)
    if number is None:
        return "absent" if timestamp is None else str(timestamp)
    try:
        return datetime.fromtimestamp(number, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(timestamp)


def claims_text(claims: Mapping | None) -> str:
    """The diff text of a token: sub, iss, kid, scope and exp, one a line, "absent" when missing.

    Only claims: never the token, its signature or jti. None (no token) gives "".
    """
    if claims is None:
        return ""

    def shown(value: object) -> str:
        return "absent" if value is None or value == "" else str(value)

    scope = " ".join(claims.get("scope") or []) or "absent"
    return (
        f"sub: {shown(claims.get('sub'))}\n"
        f"iss: {shown(claims.get('iss'))}\n"
        f"kid: {shown(claims.get('kid'))}\n"
        f"scope: {scope}\n"
        f"exp: {iso_time(claims.get('exp'))}\n"
    )


def token_state(
    existing: str | None, want: Mapping, *, force: bool = False, now: float | None = None
) -> tuple[dict | None, str]:
    """(claims of the existing token or None, reason to issue a new one or "" to keep it).

    existing: the text of the token file, None if there is none. want: the reissue_reason keywords
    (identity, key_id, authz, lifetime, renew_before, trust_domain).
    """
    if existing is None:
        return None, "missing"
    try:
        claims = claims_from_text(existing)
    except TokenError:
        return None, "not a token"
    if force:
        return claims, "forced"
    return claims, reissue_reason(claims, **want, now=now) or ""


def token_diff(dest: str, existing: str | None, new_claims: Mapping | None) -> dict:
    """Ansible's diff of a token file: the claims before and after (claims_text), never the token.

    existing: the old file's text (None: no file; a file that is not a token shows as "(not a token)").
    new_claims: None when the file is removed.
    """
    if existing is None:
        before = ""
    else:
        try:
            before = claims_text(claims_from_text(existing))
        except TokenError:
            before = "(not a token)\n"
    after = claims_text(new_claims) if new_claims is not None else ""
    return {"before": before, "after": after, "before_header": dest, "after_header": dest}


def expected_claims(
    *,
    identity: str,
    key_id: str,
    authz: Iterable[str],
    lifetime: int | None,
    trust_domain: str | None = None,
    now: float,
    renew_before: int | None = None,  # unused: the same keywords as reissue_reason
) -> dict:
    """The claims a token issued now for this request should have (iss, iat, jti unknown unless given).

    Takes the same keywords as reissue_reason (renew_before is ignored)."""
    return {
        "sub": identity,
        "iss": trust_domain,
        "kid": key_id,
        "scope": authz_scope(authz),
        "iat": None,
        "exp": int(now + lifetime) if lifetime is not None else None,
        "jti": None,
    }


def token_create_argv(
    command: str, *, identity: str, key_id: str, authz: Iterable[str], lifetime: int | None
) -> list[str]:
    """The condor_token_create command line (the token is printed on stdout)."""
    argv = [command, "-identity", identity, "-key", key_id]
    for level in authz_levels(authz):
        argv += ["-authz", level]
    if lifetime is not None:
        argv += ["-lifetime", str(lifetime)]
    return argv


# --- Pool facts ----------------------------------------------------------------------------------------

DAEMONS = ("collector", "negotiator", "schedd", "startd", "master")
# The ad types gathered and their projections.
PROJECTIONS: dict[str, list[str]] = {
    "collector": ["Name", "Machine"],
    "negotiator": ["Name", "Machine"],
    "schedd": ["Name", "Machine", "TotalRunningJobs", "TotalIdleJobs", "TotalHeldJobs"],
    "startd": [
        "Name",
        "Machine",
        "SlotType",
        "PartitionableSlot",
        "DynamicSlot",
        "State",
        "Activity",
        "Cpus",
        "Memory",
        "HasDocker",
        "AccountingGroup",
    ],
    "master": ["Name", "Machine"],
    "accounting": [
        "Name",
        "IsAccountingGroup",
        "ConfigQuota",
        "EffectiveQuota",
        "SurplusPolicy",
        "Priority",
        "ResourcesUsed",
    ],
}
AD_TYPES = tuple(PROJECTIONS)
WAIT_KEYS = ("slots", "cpus", "daemons", "schedds", "startd_machines")

# query(ad_type, constraint, projection) -> ads; ad_type is one of AD_TYPES.
QueryFn = Callable[[str, str | None, list[str]], Iterable[Mapping]]


def plain_value(value: object) -> object:
    """A ClassAd value as plain JSON data: UNDEFINED/ERROR (classad2.Value) -> None, expressions -> text."""
    if value is None or isinstance(value, enum.Enum):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    return str(value)


def ad_to_dict(ad: Mapping) -> dict:
    """A ClassAd (or any mapping) as a plain dict; ClassAd expressions are evaluated where possible."""
    evaluate = getattr(ad, "eval", None)
    result = {}
    for key in ad:
        value = ad.get(key)
        if callable(evaluate):
            try:
                value = evaluate(key)
            except Exception:  # an expression that cannot be evaluated stays as its text
                value = ad.get(key)
        result[str(key)] = plain_value(value)
    return result


def _as_int(value: object) -> int:
    number = _number(value)
    return int(number) if number is not None else 0


def slot_type(ad: Mapping) -> str:
    """partitionable, dynamic or static: from SlotType, else PartitionableSlot / DynamicSlot."""
    kind = ad.get("SlotType")
    if isinstance(kind, str) and kind:
        return kind.lower()
    if ad.get("PartitionableSlot") is True:
        return "partitionable"
    if ad.get("DynamicSlot") is True:
        return "dynamic"
    return "static"


def slot_facts(ad: Mapping, matches: bool = True) -> dict:
    return {
        "name": ad.get("Name"),
        "machine": ad.get("Machine"),
        "slot_type": slot_type(ad),
        "state": ad.get("State"),
        "activity": ad.get("Activity"),
        "cpus": ad.get("Cpus"),
        "memory": ad.get("Memory"),
        "has_docker": ad.get("HasDocker") is True,
        "accounting_group": ad.get("AccountingGroup"),
        "matches_constraint": matches,
    }


def schedd_facts(ad: Mapping) -> dict:
    return {
        "name": ad.get("Name"),
        "total_running_jobs": _as_int(ad.get("TotalRunningJobs")),
        "total_idle_jobs": _as_int(ad.get("TotalIdleJobs")),
        "total_held_jobs": _as_int(ad.get("TotalHeldJobs")),
    }


def group_facts(ad: Mapping) -> dict:
    quota = ad.get("ConfigQuota")
    if quota is None:
        quota = ad.get("EffectiveQuota")
    facts = {
        "name": ad.get("Name"),
        "is_group": ad.get("IsAccountingGroup") is True,
        "quota": quota,
        "priority": ad.get("Priority"),
        "resources_used": ad.get("ResourcesUsed"),
    }
    if ad.get("SurplusPolicy") is not None:
        facts["surplus"] = ad.get("SurplusPolicy")
    return facts


def _names(ads: Iterable[Mapping], attribute: str = "Name") -> list[str]:
    return sorted({str(ad[attribute]) for ad in ads if ad.get(attribute) is not None})


def pool_facts(
    collector: str, ads: Mapping[str, Iterable[Mapping]], matching_slots: Iterable[str] | None = None
) -> dict:
    """The pool facts from plain ads by type (AD_TYPES; missing types count as no ads).

    matching_slots: names of the slots that match the slot constraint (None: every slot matches).
    """
    matching = None if matching_slots is None else set(matching_slots)
    startds = list(ads.get("startd") or [])
    slots = [slot_facts(ad, matching is None or ad.get("Name") in matching) for ad in startds]
    return {
        "collector": collector,
        "daemons": {
            "collector": _names(ads.get("collector") or []),
            "negotiator": _names(ads.get("negotiator") or []),
            "schedd": _names(ads.get("schedd") or []),
            "startd": _names(startds, "Machine"),
            "master": _names(ads.get("master") or []),
        },
        "slots": sorted(slots, key=lambda s: str(s["name"])),
        "schedds": sorted((schedd_facts(ad) for ad in ads.get("schedd") or []), key=lambda s: str(s["name"])),
        "groups": sorted((group_facts(ad) for ad in ads.get("accounting") or []), key=lambda g: str(g["name"])),
    }


def gather_pool(query: QueryFn, collector: str, slot_constraint: str | None = None) -> tuple[dict, dict[str, str]]:
    """Query every ad type and build pool_facts. Returns (pool, errors by ad type).

    The first query that fails ends the round (the others would wait for the same unreachable collector):
    the ad types not queried count as no ads. With slot_constraint, a last startd query finds the names of
    the slots that match it.
    """
    ads: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for ad_type in AD_TYPES:
        try:
            ads[ad_type] = [ad_to_dict(ad) for ad in query(ad_type, None, PROJECTIONS[ad_type])]
        except Exception as exc:  # the collector may not be up yet: reported, not raised
            errors[ad_type] = _error_text(exc)
            break
    matching = None
    if slot_constraint:
        matching = []
        if not errors:
            try:
                matching = [str(ad.get("Name")) for ad in query("startd", slot_constraint, ["Name"])]
            except Exception as exc:
                errors["startd (slot_constraint)"] = _error_text(exc)
    return pool_facts(collector, ads, matching), errors


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def unmet_conditions(pool: Mapping, wait_for: Mapping | None, slot_constraint: str | None = None) -> list[str]:
    """The wait_for conditions the pool facts do not meet, as text ([] when all are met or none is set)."""
    wait_for = {k: v for k, v in (wait_for or {}).items() if v is not None}
    matching = [s for s in pool.get("slots", []) if s.get("matches_constraint", True)]
    where = f" ({slot_constraint})" if slot_constraint else ""
    unmet = []
    if "slots" in wait_for and len(matching) < wait_for["slots"]:
        unmet.append(f"wanted slots>={wait_for['slots']}{where}, have {len(matching)}")
    if "cpus" in wait_for:
        cpus = sum(_as_int(s.get("cpus")) for s in matching)
        if cpus < wait_for["cpus"]:
            unmet.append(f"wanted cpus>={wait_for['cpus']}{where}, have {cpus}")
    if "startd_machines" in wait_for:
        machines = len({s.get("machine") for s in matching if s.get("machine") is not None})
        if machines < wait_for["startd_machines"]:
            unmet.append(f"wanted startd_machines>={wait_for['startd_machines']}{where}, have {machines}")
    if "schedds" in wait_for:
        schedds = len(pool.get("schedds", []))
        if schedds < wait_for["schedds"]:
            unmet.append(f"wanted schedds>={wait_for['schedds']}, have {schedds}")
    if wait_for.get("daemons"):
        wanted = list(dict.fromkeys(wait_for["daemons"]))
        missing = [d for d in wanted if not pool.get("daemons", {}).get(d)]
        if missing:
            unmet.append(f"wanted daemons {', '.join(wanted)}, missing {', '.join(missing)}")
    return unmet


def wait_for_pool(
    gather: Callable[[], tuple[dict, dict[str, str]]],
    wait_for: Mapping | None,
    *,
    slot_constraint: str | None = None,
    timeout: float = 120,
    poll_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Gather the pool facts until the wait_for conditions are met (and every query worked) or timeout passes.

    Without conditions, gathers once. Returns {"ready", "pool", "unmet", "errors", "waited"}; "ready" is
    False on timeout (or when a query failed and there are no conditions to wait for).
    """
    conditions = {k: v for k, v in (wait_for or {}).items() if v is not None}
    start = clock()
    while True:
        pool, errors = gather()
        unmet = unmet_conditions(pool, conditions, slot_constraint)
        waited = max(0.0, clock() - start)
        if not errors and not unmet:
            return {"ready": True, "pool": pool, "unmet": [], "errors": {}, "waited": round(waited, 3)}
        if not conditions or waited >= timeout:
            return {"ready": False, "pool": pool, "unmet": unmet, "errors": errors, "waited": round(waited, 3)}
        sleep(max(0.0, min(poll_interval, timeout - waited)))


def format_not_ready(result: Mapping, timeout: float, wait_for: Mapping | None) -> str:
    """The failure message of wait_for_pool's result."""
    by_text: dict[str, list[str]] = {}
    for kind, text in sorted(result["errors"].items()):
        by_text.setdefault(text, []).append(kind)
    errors = "; ".join(f"{', '.join(kinds)}: {text}" for text, kinds in by_text.items())
    address = result["pool"].get("collector")
    collector = f"the collector {address}" if address else "the collector of the local HTCondor configuration"
    if not any(v is not None for v in (wait_for or {}).values()):
        return f"cannot query {collector}: {errors}"
    parts = list(result["unmet"])
    if errors:
        parts.append(f"queries to {collector} failed ({errors})")
    return f"pool not ready after {timeout:g} s: {'; '.join(parts)}"
