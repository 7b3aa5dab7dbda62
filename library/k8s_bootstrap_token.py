#!/usr/bin/python
"""Ansible module: keep a Kubernetes bootstrap token (kubeadm join) as a bootstrap-token Secret."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_bootstrap_token
short_description: Create, keep or expire a Kubernetes bootstrap token for kubeadm join
description:
  - Keeps one bootstrap token per O(description) as a Secret C(bootstrap-token-<id>) of type
    C(bootstrap.kubernetes.io/token) in C(kube-system), the way C(kubeadm token create) stores it.
  - With O(state=present), an existing token with the same description, usages and groups is kept while more
    than O(min_ttl) seconds of it remain; otherwise a new one is made from the system's CSPRNG (the old one
    expires on its own and the API's token cleaner deletes it).
  - With O(state=absent), every token with the description is deleted (expired at once).
  - The token (C(<id>.<secret>)) is returned only with O(return_token=true); run such a task with
    C(no_log) and pass the token on to C(kubeadm join) through a file readable by root only. The diff and
    every other return value show the token id, never its secret.
  - The logic lives in C(module_utils/af_k8s_bootstrap_token.py); the API access in C(module_utils/af_k8s_client.py).
  - Only for what C(kubernetes.core.k8s) does not do - generating, judging and expiring tokens; objects in
    general are C(kubernetes.core.k8s)'s job.
version_added: "0.2.0"
author:
  - coffea-casa-af developers
options:
  description:
    description: What the token is for; the module keeps one token per description.
    type: str
    required: true
  state:
    description: C(present) keeps a usable token, C(absent) deletes (expires) every token with the description.
    type: str
    choices: [present, absent]
    default: present
  ttl:
    description: Seconds a new token is valid. Join tokens are short-lived; kubeadm's default is a day.
    type: int
    default: 86400
  min_ttl:
    description:
      - An existing token is kept only while more than this many seconds of it remain.
      - Must be below O(ttl), or every run would make a new token.
    type: int
    default: 3600
  usages:
    description: What the token may be used for.
    type: list
    elements: str
    choices: [authentication, signing]
    default: [authentication, signing]
  groups:
    description: Extra groups the token authenticates as (C(system:bootstrappers:...)).
    type: list
    elements: str
    default: ["system:bootstrappers:kubeadm:default-node-token"]
  return_token:
    description: Return the token (C(<id>.<secret>)) as RV(token). Use C(no_log) on the task.
    type: bool
    default: false
extends_documentation_fragment:
  - af_k8s_auth
attributes:
  check_mode:
    support: full
    details: A token that would be made is not returned (it does not exist yet).
  diff_mode:
    support: full
    details: The token's id, description, expiration, usages and groups; never its secret.
notes:
  - The API server must run the token cleaner (kube-controller-manager's default) for expired Secrets to go.
"""
EXAMPLES = r"""
- name: A join token for new nodes (kept while more than an hour of it remains)
  k8s_bootstrap_token:
    description: af nodes join
    return_token: true
  register: join
  no_log: true

- name: No join token once every node has joined
  k8s_bootstrap_token:
    description: af nodes join
    state: absent
"""
RETURN = r"""
token_id:
  description: The id of the token kept or made (empty with O(state=absent), or in check mode when one would be made).
  returned: always
  type: str
  sample: 07401b
expiration:
  description: When that token expires (RFC 3339, UTC), or null if it never does.
  returned: always
  type: str
  sample: "2026-12-06T12:00:00Z"
removed:
  description: Ids of the tokens deleted (O(state=absent)).
  returned: always
  type: list
  elements: str
token:
  description: The token, C(<id>.<secret>). Secret.
  returned: when O(return_token=true), O(state=present) and not in check mode for a token that would be made
  type: str
"""
# Ansible module convention: imports follow the documentation blocks.
from datetime import UTC, datetime  # noqa: E402

from ansible.module_utils.af_k8s_bootstrap_token import (  # noqa: E402
    DEFAULT_GROUPS,
    NAME_PREFIX,
    NAMESPACE,
    SECRET_TYPE,
    USAGES,
    expiry,
    is_bootstrap_token,
    new_token,
    plan,
    secret_body,
    token_of,
    token_view,
)
from ansible.module_utils.af_k8s_client import AUTH_ARGUMENT_SPEC, Cluster, error_text  # noqa: E402
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "description": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "ttl": {"type": "int", "default": 86400},
    "min_ttl": {"type": "int", "default": 3600},
    "usages": {"type": "list", "elements": "str", "choices": list(USAGES), "default": list(USAGES)},
    "groups": {"type": "list", "elements": "str", "default": list(DEFAULT_GROUPS)},
    "return_token": {"type": "bool", "default": False},
    **AUTH_ARGUMENT_SPEC,
}


def list_tokens(module: AnsibleModule, cluster: Cluster) -> dict[str, dict]:
    """The bootstrap-token Secrets of kube-system, by token id."""
    try:
        listed = cluster.get(cluster.core.list_namespaced_secret, NAMESPACE, field_selector=f"type={SECRET_TYPE}")
    except Exception as exc:
        module.fail_json(msg=f"cannot list the bootstrap tokens: {error_text(exc)}", changed=False)
    return {token_view(s)["token_id"]: s for s in listed.get("items") or [] if is_bootstrap_token(s)}


def delete_tokens(module: AnsibleModule, cluster: Cluster, token_ids: list[str]) -> None:
    for token_id in token_ids:
        try:
            cluster.core.delete_namespaced_secret(NAME_PREFIX + token_id, NAMESPACE, _request_timeout=cluster.timeout)
        except Exception as exc:
            if not cluster.is_not_found(exc):  # gone already: the token cleaner was quicker
                module.fail_json(msg=f"cannot delete token {token_id}: {error_text(exc)}", changed=True)


def create_token(module: AnsibleModule, cluster: Cluster, now: datetime) -> tuple[dict, str]:
    """A new token's Secret (created unless in check mode) and the token."""
    params = module.params
    token_id, token_secret = new_token()
    body = secret_body(
        token_id,
        token_secret,
        description=params["description"],
        expires=expiry(now, params["ttl"]),
        usages=params["usages"],
        groups=params["groups"],
    )
    if not module.check_mode:
        try:
            cluster.core.create_namespaced_secret(NAMESPACE, body, _request_timeout=cluster.timeout)
        except Exception as exc:
            module.fail_json(msg=f"cannot create a bootstrap token: {error_text(exc)}", changed=False)
    return body, f"{token_id}.{token_secret}"


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["ttl"] <= 0 or not 0 <= params["min_ttl"] < params["ttl"]:
        module.fail_json(msg="ttl must be positive and min_ttl between 0 and ttl (exclusive)", changed=False)
    cluster = Cluster(params, module.fail_json)
    now = datetime.now(UTC)
    tokens = list_tokens(module, cluster)
    views = [token_view(s) for s in tokens.values()]
    todo = plan(
        views,
        state=params["state"],
        description=params["description"],
        usages=params["usages"],
        groups=params["groups"],
        min_ttl=params["min_ttl"],
        now=now,
    )
    before = [v for v in views if v["description"] == params["description"]]
    result = {"changed": False, "token_id": "", "expiration": None, "removed": todo["delete"]}
    after = before
    token = None
    if params["state"] == "absent":
        result["changed"] = bool(todo["delete"])
        if todo["delete"] and not module.check_mode:
            delete_tokens(module, cluster, todo["delete"])
        after = [v for v in before if v["token_id"] not in todo["delete"]]
    elif todo["keep"]:
        kept = tokens[todo["keep"]]
        result.update(token_id=todo["keep"], expiration=token_view(kept)["expiration"])
        token = token_of(kept)
    else:
        body, token = create_token(module, cluster, now)
        view = token_view(body)
        result["changed"] = True
        if module.check_mode:  # nothing was made: no id, no token to return
            view["token_id"], token = "(new)", None
        else:
            result.update(token_id=view["token_id"], expiration=view["expiration"])
        after = [*before, view]
    if params["return_token"] and token is not None:
        result["token"] = token
    if module._diff:
        result["diff"] = {"before": {"tokens": before}, "after": {"tokens": after}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
