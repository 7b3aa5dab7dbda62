#!/usr/bin/python
"""Ansible module: ensure an HTCondor IDTOKEN exists for an identity."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: condor_token
short_description: Ensure an HTCondor IDTOKEN exists for an identity
description:
  - Ensures that O(dest) holds an HTCondor IDTOKENS token (a JWT) for O(identity), signed with the pool
    signing key O(key_id), limited to O(authz) and valid for O(lifetime).
  - Runs on the host that holds the signing key (the central manager) and issues tokens with
    C(condor_token_create) (the HTCondor Python bindings have no token API). Copy the token to other hosts
    with O(return_token) and a C(copy) task, both with C(no_log) set.
  - An existing token is kept (C(changed=false)) when it is a well-formed JWT whose subject, key id, scope,
    issuer (when O(trust_domain) is given) and expiry match the request. Its header and payload are read
    without checking the signature; the token itself is never logged, shown in a diff or put in a message.
  - Otherwise the token is (re-)issued and written atomically (a temporary file with mode C(0600) in the
    same directory, then renamed). A missing parent directory is created with mode C(0700).
  - The logic lives in C(module_utils/af_condor.py).
version_added: "0.1.0"
author:
  - coffea-casa-af developers
options:
  identity:
    description:
      - The identity the token authenticates as (the C(sub) claim), for example C(condor@af.pool) or
        C(alice@af.pool). Give the full C(user@domain).
    type: str
    required: true
  dest:
    description:
      - The token file (for example C(/etc/condor/tokens.d/condor@af.pool)).
    type: path
    required: true
  key_id:
    description:
      - Name of the signing key in C(SEC_PASSWORD_DIRECTORY) (C(condor_token_create -key); the C(kid) of the
        token header).
    type: str
    default: POOL
  authz:
    description:
      - Authorization levels the token is limited to (C(condor_token_create -authz)), for example C(READ),
        C(WRITE), C(ADVERTISE_STARTD), C(ADVERTISE_SCHEDD), C(ADVERTISE_MASTER).
      - In the token they form the C(scope) claim (C(condor:/READ condor:/WRITE)); the order does not matter.
      - Empty means unrestricted (no C(scope) claim).
    type: list
    elements: str
    default: []
  lifetime:
    description:
      - Lifetime of a new token in seconds (C(condor_token_create -lifetime)).
      - When omitted the token never expires (no C(exp) claim); an existing token that expires is then re-issued.
      - An existing token that outlives this lifetime (by more than 5 minutes) is re-issued too.
    type: int
  renew_before:
    description:
      - Re-issue a token that expires within this many seconds.
      - For lifetimes shorter than twice this value, half the lifetime is used instead, so that a new token
        is never due at once.
      - Ignored without O(lifetime).
    type: int
    default: 86400
  trust_domain:
    description:
      - When given, the issuer (C(iss) claim) of an existing token must equal it (the pool's
        C(TRUST_DOMAIN)); otherwise the token is re-issued. When omitted the issuer is not checked.
    type: str
  owner:
    description: Owner of O(dest) (name or UID).
    type: str
  group:
    description: Group of O(dest) (name or GID).
    type: str
  mode:
    description:
      - Permissions of O(dest), as for the C(file) module; quote octal numbers (C("0600")).
    type: raw
    default: "0600"
  state:
    description:
      - V(present) ensures a matching token; V(absent) removes O(dest).
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Issue a new token even if the existing one matches.
    type: bool
    default: false
  return_token:
    description:
      - Return the token (the new one, or the kept one) as RV(token).
      - Set C(no_log) on the task when this is true.
    type: bool
    default: false
  token_create_cmd:
    description:
      - The C(condor_token_create) program (a name looked up in C(PATH) and the sbin directories, or a path).
      - Only looked up when a token is issued.
    type: path
    default: condor_token_create
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff lists the claims (sub, iss, kid, scope, exp) of the old and new token, never the token.
notes:
  - The signature of an existing token is not verified; a token signed with an old key that has the same
    name is not detected. Use O(force) after replacing a signing key.
  - HTCondor token files may hold several tokens; this module manages files that hold exactly one. A file
    holding anything else is replaced.
seealso:
  - name: condor_token_create
    description: The HTCondor manual page of condor_token_create.
    link: https://htcondor.readthedocs.io/en/latest/man-pages/condor_token_create.html
"""

EXAMPLES = r"""
- name: Token for the execute nodes' daemons
  condor_token:
    identity: condor@af.pool
    dest: /etc/condor/tokens.d/condor@af.pool
    authz: [READ, ADVERTISE_STARTD, ADVERTISE_MASTER]
    trust_domain: af.pool
    owner: root
    mode: "0600"

- name: Token for a user, renewed a week before it expires
  condor_token:
    identity: alice@af.pool
    dest: /var/lib/af/tokens/alice
    authz: [READ, WRITE]
    lifetime: 7776000
    renew_before: 604800
    return_token: true
  register: alice_token
  no_log: true

- name: Remove a token
  condor_token:
    identity: bob@af.pool
    dest: /var/lib/af/tokens/bob
    state: absent
"""

RETURN = r"""
dest:
  description: The token file.
  returned: always
  type: str
  sample: /etc/condor/tokens.d/condor@af.pool
identity:
  description: The identity asked for.
  returned: always
  type: str
  sample: condor@af.pool
claims:
  description:
    - Claims of the token in O(dest) after the task (no signature). In check mode, when a token would be
      issued, the claims it is expected to have (C(iss), C(iat) and C(jti) unknown unless O(trust_domain) is
      given). Empty with O(state=absent).
  returned: always
  type: dict
  contains:
    sub:
      description: Subject (the identity).
      type: str
    iss:
      description: Issuer (the pool's trust domain).
      type: str
    kid:
      description: Signing key name.
      type: str
    scope:
      description: Scope entries (C(condor:/READ), ...); empty when unrestricted.
      type: list
      elements: str
    iat:
      description: Issued-at time (Unix seconds).
      type: int
    exp:
      description: Expiry time (Unix seconds); null when the token never expires.
      type: int
    jti:
      description: Token id.
      type: str
  sample:
    sub: condor@af.pool
    iss: af.pool
    kid: POOL
    scope: [condor:/READ, condor:/ADVERTISE_STARTD]
    iat: 1767225600
    exp: null
    jti: 0b7d35c6e3f24d4d8e9a6c4b8f1a2d3e
reissued_reason:
  description:
    - Why a token was (or, in check mode, would be) issued; empty when the existing token was kept or with
      O(state=absent).
    - One of C(missing), C(not a token), C(forced), C(identity differs), C(key differs), C(issuer differs),
      C(scope differs), C(expiry unwanted), C(expiry missing), C(expired), C(expires soon),
      C(lifetime differs).
  returned: always
  type: str
  sample: expires soon
token:
  description: The token (a JWT). Not returned in check mode when a new token would be issued.
  returned: when O(return_token=true) and O(state=present)
  type: str
"""

import os  # noqa: E402
import time  # noqa: E402

# Ansible module convention: imports follow the documentation blocks.
from ansible.module_utils.af_condor import (  # noqa: E402
    TokenError,
    claims_from_text,
    expected_claims,
    reissue_reason,
    token_create_argv,
    token_diff,
    token_state,
)
from ansible.module_utils.af_secret_file import write_secret_file  # noqa: E402
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "identity": {"type": "str", "required": True},
    "dest": {"type": "path", "required": True},
    "key_id": {"type": "str", "default": "POOL"},
    "authz": {"type": "list", "elements": "str", "default": []},
    "lifetime": {"type": "int"},
    "renew_before": {"type": "int", "default": 86400},
    "trust_domain": {"type": "str"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw", "default": "0600"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "force": {"type": "bool", "default": False},
    "return_token": {"type": "bool", "default": False},
    "token_create_cmd": {"type": "path", "default": "condor_token_create"},
}


def read_existing(module: AnsibleModule, dest: str) -> str | None:
    """The text of dest, or None if it does not exist."""
    if os.path.isdir(dest):
        module.fail_json(msg=f"dest {dest} is a directory", changed=False)
    try:
        with open(dest, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        module.fail_json(msg=f"cannot read {dest}: {exc.strerror}", changed=False)


def issue_token(module: AnsibleModule, want: dict) -> str:
    """Run condor_token_create and return the token it printed (validated against the request)."""
    params = module.params
    command = module.get_bin_path(params["token_create_cmd"], required=True)
    argv = token_create_argv(
        command, identity=want["identity"], key_id=want["key_id"], authz=want["authz"], lifetime=want["lifetime"]
    )
    rc, out, err = module.run_command(argv)
    if rc != 0:
        # stderr only: stdout may hold a token.
        module.fail_json(msg=f"{' '.join(argv)} failed (rc={rc}): {err.strip()}", rc=rc, changed=False)
    token = out.strip()
    try:
        claims = claims_from_text(token)
    except TokenError as exc:
        module.fail_json(msg=f"{argv[0]} did not print one token on stdout: {exc}", changed=False)
    reason = reissue_reason(claims, **want, now=time.time())
    if reason:
        module.fail_json(
            msg=f"the token printed by {argv[0]} does not match the request ({reason}): it has "
            + ", ".join(f"{name}={claims[name]}" for name in ("sub", "kid", "iss", "scope", "exp")),
            changed=False,
        )
    return token


def write_token(module: AnsibleModule, dest: str, token: str) -> None:
    """Write token to dest atomically, never readable by others (module_utils/af_secret_file.py)."""
    write_secret_file(module, dest, token, prefix=".condor_token.")


def remove_token(module: AnsibleModule, result: dict, existing: str | None) -> dict:
    """state=absent: remove dest if it exists."""
    dest = result["dest"]
    if existing is None:
        return result
    result["changed"] = True
    if module._diff:
        result["diff"] = token_diff(dest, existing, None)
    if not module.check_mode:
        try:
            os.unlink(dest)
        except OSError as exc:
            module.fail_json(msg=f"cannot remove {dest}: {exc.strerror}", **result)
    return result


def ensure_token(module: AnsibleModule, result: dict, existing: str | None) -> dict:
    """state=present: keep the existing token if it matches, otherwise issue a new one."""
    params = module.params
    dest = result["dest"]
    want = {name: params[name] for name in ("identity", "key_id", "authz", "lifetime", "renew_before", "trust_domain")}
    now = time.time()
    old_claims, reason = token_state(existing, want, force=params["force"], now=now)
    file_args = module.load_file_common_arguments(params, path=dest)
    if not reason:
        result["claims"] = old_claims
        result["changed"] = module.set_fs_attributes_if_different(file_args, False)
        if params["return_token"]:
            result["token"] = existing.strip()
        return result

    result["changed"] = True
    result["reissued_reason"] = reason
    if module.check_mode:
        new_claims = expected_claims(**want, now=now)
    else:
        token = issue_token(module, want)
        write_token(module, dest, token)
        module.set_fs_attributes_if_different(file_args, True)
        new_claims = claims_from_text(token)
        if params["return_token"]:
            result["token"] = token
    result["claims"] = new_claims
    if module._diff:
        result["diff"] = token_diff(dest, existing, new_claims)
    return result


def run(module: AnsibleModule) -> dict:
    """The module's work; returns the result for exit_json."""
    params = module.params
    result: dict = {
        "changed": False,
        "dest": params["dest"],
        "identity": params["identity"],
        "claims": {},
        "reissued_reason": "",
    }
    if params["lifetime"] is not None and params["lifetime"] <= 0:
        module.fail_json(msg="lifetime must be a positive number of seconds", **result)
    if params["renew_before"] < 0:
        module.fail_json(msg="renew_before must not be negative", **result)
    existing = read_existing(module, params["dest"])
    if params["state"] == "absent":
        return remove_token(module, result, existing)
    return ensure_token(module, result, existing)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
