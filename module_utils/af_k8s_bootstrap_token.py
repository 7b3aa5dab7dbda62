"""Bootstrap tokens as the API stores them (Secrets of type bootstrap.kubernetes.io/token in kube-system):
the logic of the k8s_bootstrap_token module, on plain dicts, unit-tested without a cluster.

A token is "<id>.<secret>" (6 and 16 characters of [a-z0-9]); the Secret bootstrap-token-<id> holds both,
an expiration, the usages and the extra groups. kubeadm join authenticates with it. The module keeps one
token per description: an existing one is kept while more than min_ttl of it remains, a new one is made
otherwise, and state=absent deletes them all (the API's token cleaner removes expired Secrets itself).
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"  # noqa: S105 - a Secret type, not a secret
NAME_PREFIX = "bootstrap-token-"
ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH, SECRET_LENGTH = 6, 16
USAGES = ("authentication", "signing")
DEFAULT_GROUPS = ("system:bootstrappers:kubeadm:default-node-token",)


def new_token(choice=secrets.choice) -> tuple[str, str]:
    """A fresh (token id, token secret) from the system's CSPRNG."""
    return (
        "".join(choice(ALPHABET) for _ in range(ID_LENGTH)),
        "".join(choice(ALPHABET) for _ in range(SECRET_LENGTH)),
    )


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def secret_body(
    token_id: str, token_secret: str, *, description: str, expires: datetime | None, usages, groups
) -> dict:
    """The Secret to create for a token (stringData: the API encodes it)."""
    data = {"token-id": token_id, "token-secret": token_secret, "description": description}
    if expires is not None:
        data["expiration"] = rfc3339(expires)
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = "true"
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": NAME_PREFIX + token_id, "namespace": NAMESPACE},
        "type": SECRET_TYPE,
        "stringData": data,
    }


def _decoded(secret: Mapping) -> dict[str, str]:
    """A Secret's data, base64-decoded (as the API returns it), or its stringData."""
    if secret.get("stringData"):
        return dict(secret["stringData"])
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def token_view(secret: Mapping) -> dict:
    """What may be shown of a token Secret: everything but the secret half."""
    data = _decoded(secret)
    groups = [g for g in data.get("auth-extra-groups", "").split(",") if g]
    return {
        "token_id": data.get("token-id", ""),
        "description": data.get("description", ""),
        "expiration": data.get("expiration"),
        "usages": [u for u in USAGES if data.get(f"usage-bootstrap-{u}") == "true"],
        "groups": groups,
    }


def token_of(secret: Mapping) -> str:
    data = _decoded(secret)
    return f"{data['token-id']}.{data['token-secret']}"


def is_bootstrap_token(secret: Mapping) -> bool:
    return secret.get("type") == SECRET_TYPE and str((secret.get("metadata") or {}).get("name", "")).startswith(
        NAME_PREFIX
    )


def plan(
    views: Iterable[Mapping],
    *,
    state: str,
    description: str,
    usages: Iterable[str],
    groups: Iterable[str],
    min_ttl: int,
    now: datetime,
) -> dict:
    """What to do: {"keep": id or None, "create": bool, "delete": [ids]}.

    present: keep the matching token (same description, usages and groups) that lasts longest, if more than
    min_ttl seconds of it remain (or it never expires); otherwise create one. absent: delete every token with
    the description.
    """
    mine = [v for v in views if v.get("description") == description]
    if state == "absent":
        return {"keep": None, "create": False, "delete": sorted(v["token_id"] for v in mine)}
    wanted_usages, wanted_groups = sorted(usages), sorted(groups)

    def remaining(view: Mapping) -> float:
        expires = parse_rfc3339(view.get("expiration"))
        return float("inf") if expires is None else (expires - now).total_seconds()

    usable = [
        v
        for v in mine
        if sorted(v.get("usages") or []) == wanted_usages
        and sorted(v.get("groups") or []) == wanted_groups
        and remaining(v) > min_ttl
    ]
    if usable:
        best = max(usable, key=lambda v: (remaining(v), v["token_id"]))
        return {"keep": best["token_id"], "create": False, "delete": []}
    return {"keep": None, "create": True, "delete": []}


def expiry(now: datetime, ttl: int) -> datetime | None:
    """When a new token expires (ttl 0: never; refused by the module unless asked for)."""
    return None if ttl == 0 else now + timedelta(seconds=ttl)
