#!/usr/bin/python
"""Ansible module: mint a WLCG/SciTokens bearer token (an ES256 JWT) and keep it fresh."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: scitoken
short_description: Mint a WLCG/SciTokens bearer token (ES256 JWT) and keep it fresh
description:
  - Mints a bearer token following the WLCG Common JWT Profile (compatible with SciTokens consumers such as
    XRootD and HTCondor) for O(subject), signed with an EC P-256 private key (algorithm C(ES256)), and writes
    it to O(dest) and/or returns it.
  - The token carries the claims C(iss) (O(issuer)), C(sub), C(aud), C(scope) (space-separated, omitted
    when O(scopes) is empty), C(wlcg.ver), C(iat) (O(backdate) seconds ago), C(nbf) (= C(iat)), C(exp)
    (C(iat) + O(lifetime)), C(jti)
    (a random UUID) and O(extra_claims); its header has C(alg=ES256), C(typ=JWT) and C(kid) (O(key_id)).
  - An existing token in O(dest) is kept (C(changed=false)) when its signature verifies with the public key
    of the given private key and its C(kid), C(iss), C(sub), C(aud) (as a set), C(scope) (as a set),
    C(wlcg.ver) and extra claims match the request, and at least O(renew_before) seconds remain before it
    expires. Otherwise a new token is minted and written atomically (a temporary file created with umask
    C(077) in the same directory, then renamed); a missing parent directory is created with mode C(0700).
    The owner, group and mode of O(dest) are enforced in both cases.
  - With O(queue_horizon), O(dest) holds a queue instead, one token a line, token k valid from C(iat) + k *
    O(queue_interval) for O(lifetime) seconds, enough tokens to cover O(queue_horizon) seconds. Consumers refuse
    a token before its C(nbf), so a node that holds the queue (root only) can install each token when its turn
    comes, without the signing key (the C(af-token-refresh) timer of role C(user_credentials) does). The queue is
    kept while every token verifies and matches the request, their times follow O(lifetime) and
    O(queue_interval), one is valid now, and the last expires in no less than O(renew_before) and no more than
    O(queue_horizon) seconds; otherwise a whole new queue is minted.
  - Runs wherever the private key is, typically on the controller (C(delegate_to) C(localhost)). To place
    the token on other hosts, use O(return_token) and a C(copy) task, both with C(no_log) set.
  - The token and the key never appear in messages, warnings or the diff (which lists claims only).
  - Needs the C(cryptography) Python package on the host that runs the module (python3-cryptography on
    Debian); no PyJWT or scitokens library. The logic lives in C(module_utils/af_jwt.py).
version_added: "0.1.0"
author:
  - coffea-casa-af developers
options:
  issuer:
    description:
      - The issuer (C(iss) claim), an https URL without query or fragment. Consumers fetch the public keys
        from C(<issuer>/.well-known/openid-configuration) (its C(jwks_uri)), so it must match exactly.
    type: str
    required: true
  subject:
    description:
      - The subject (C(sub) claim), for example a user name or a service identity.
    type: str
    required: true
  audience:
    description:
      - The audiences (C(aud) claim), a string when one is given and a list otherwise. Compared as a set.
      - For example C(https://xrootd.af.example.org:1094) or C(https://wlcg.cern.ch/jwt/v1/any).
    type: list
    elements: str
    required: true
  scopes:
    description:
      - WLCG scopes, serialized space-separated in the C(scope) claim (omitted when empty). Compared as a set;
        duplicates are dropped.
      - Either one of C(compute.read), C(compute.modify), C(compute.create), C(compute.cancel),
        C(storage.stage), C(wlcg.groups), C(openid), C(offline_access), or C(storage.read),
        C(storage.create), C(storage.modify), C(storage.stage) followed by C(:) and an absolute, normalized
        path without C(..) segments (for example C(storage.read:/store), C(storage.create:/store/user/alice)).
    type: list
    elements: str
    default: []
  lifetime:
    description:
      - Lifetime of a new token in seconds (C(exp) - C(iat)).
      - An existing token that outlives this lifetime (by more than 5 minutes) is re-minted.
    type: int
    default: 3600
  renew_before:
    description:
      - Re-mint the token when less than this many seconds remain before it expires.
      - Defaults to a quarter of O(lifetime). Must be less than O(lifetime).
      - For a queue (O(queue_horizon)), re-mint the queue when its last token expires in less than this many
        seconds; defaults to a quarter of O(queue_horizon), must be less than O(queue_horizon).
    type: int
  queue_horizon:
    description:
      - Keep a queue of tokens in O(dest) covering this many seconds from now, instead of one token.
      - 0 (the default) means one token. Otherwise at least O(lifetime); needs O(dest).
    type: int
    default: 0
  queue_interval:
    description:
      - Seconds between the C(nbf) of successive tokens of a queue. Defaults to half of O(lifetime).
      - At most O(lifetime) - O(backdate), so that successive tokens overlap by at least the clock skew allowed
        for and no moment is left uncovered.
    type: int
  backdate:
    description:
      - Seconds by which C(iat) and C(nbf) of a new token lie in the past. Consumers such as XRootD and HTCondor
        allow no clock skew on C(iat)/C(nbf), so a token minted with the signer's clock a second ahead of a
        consumer's would be refused at first; backdating absorbs that. C(exp) is C(iat) + O(lifetime).
      - At least 0 and less than O(lifetime).
    type: int
    default: 30
  key_file:
    description:
      - PEM file of the unencrypted EC P-256 (prime256v1) private key, read on the host that runs the module.
      - Exactly one of O(key_file) and O(key_content) is required.
    type: path
  key_content:
    description:
      - The PEM private key itself, instead of O(key_file); for example a vault-encrypted key given with
        C(lookup('file', ...)).
    type: str
  key_id:
    description:
      - The key id (C(kid) header), as published in the issuer's JWK Set.
    type: str
    required: true
  extra_claims:
    description:
      - Further claims added to the payload, for example C(wlcg.groups). They may not set C(iss), C(sub),
        C(aud), C(scope), C(wlcg.ver), C(iat), C(nbf), C(exp) or C(jti).
      - A kept token must carry exactly these extra claims.
    type: dict
    default: {}
  wlcg_version:
    description:
      - The C(wlcg.ver) claim.
    type: str
    default: "1.0"
  dest:
    description:
      - The file that holds the token (for example C(/etc/xrootd/tokens/alice.token)).
      - Without O(dest), a new token is minted on every run and only returned; O(return_token) must be true.
        C(changed) is then false, as nothing changes on the host.
    type: path
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
  return_token:
    description:
      - Return the token (the new or the kept one) as RV(token).
      - Set C(no_log) on the task when this is true; the module cannot hide a returned value itself.
    type: bool
    default: false
  force:
    description:
      - Mint a new token even if the existing one could be kept.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written. When O(dest) would be re-minted, RV(token) is not returned. Without O(dest) the
        token is minted and returned as usual (minting changes nothing on the host).
  diff_mode:
    support: full
    details: The diff lists the claims (kid, iss, sub, aud, scope, wlcg.ver, extra claims, iat, exp) of the old
      and the new token; never the token or its signature.
notes:
  - A queue's tokens share C(iat) (the moment they were signed); each has its own C(jti).
  - Publish the public key of the signing key (the issuer's JWK Set) separately; C(module_utils/af_jwt.py)
    has C(public_jwk) and C(jwks) for that.
  - A token signed by another key (for example after a key rotation) is re-minted, even when the C(kid) is
    the same.
seealso:
  - name: WLCG Common JWT Profiles
    description: The token profile (claims and scopes) this module follows.
    link: https://zenodo.org/records/3460258
  - name: HTCondor SciTokens authentication
    description: The pool accepts compute tokens (C(compute.*) scopes) minted by this module (role C(htcondor)).
    link: https://htcondor.readthedocs.io/en/latest/admin-manual/security.html
"""

EXAMPLES = r"""
- name: Token for the XRootD door's health checks, kept on the controller
  scitoken:
    issuer: https://af.example.org/tokens
    subject: xrootd-probe
    audience: [https://xrootd.af.example.org:1094]
    scopes: [storage.read:/store]
    key_file: "{{ inventory_dir }}/credentials/token-issuer.key"
    key_id: af-2026
    dest: "{{ inventory_dir }}/credentials/tokens/xrootd-probe"
    lifetime: 86400
    renew_before: 21600
  delegate_to: localhost
  run_once: true

- name: Token for a user, minted on the controller with a vaulted key
  scitoken:
    issuer: https://af.example.org/tokens
    subject: alice
    audience: [https://xrootd.af.example.org:1094, https://wlcg.cern.ch/jwt/v1/any]
    scopes:
      - storage.read:/store
      - storage.create:/store/user/alice
      - storage.modify:/store/user/alice
      - compute.read
      - compute.create
    extra_claims:
      wlcg.groups: [/af, /af/users]
    key_content: "{{ lookup('file', inventory_dir + '/credentials/token-issuer.key.vault') }}"
    key_id: af-2026
    dest: /var/lib/af/tokens/alice
    return_token: true
  delegate_to: localhost
  register: alice_token
  no_log: true

- name: Install the token on the submit node
  ansible.builtin.copy:
    content: "{{ alice_token.token }}\n"
    dest: /home/alice/.config/af/bt_u1000
    owner: alice
    mode: "0600"
  no_log: true

- name: A short-lived token, only returned
  scitoken:
    issuer: https://af.example.org/tokens
    subject: ci
    audience: [https://wlcg.cern.ch/jwt/v1/any]
    scopes: [compute.read]
    lifetime: 600
    key_file: /etc/af/token-issuer.key
    key_id: af-2026
    return_token: true
  register: ci_token
  no_log: true
"""

RETURN = r"""
changed:
  description: Whether a token was (or, in check mode, would be) written, or the attributes of O(dest) changed.
  returned: always
  type: bool
dest:
  description: The token file; null without O(dest).
  returned: always
  type: str
  sample: /var/lib/af/tokens/alice
claims:
  description:
    - The payload of the token after the task (no header, no signature). In check mode, when a token would be
      minted, the claims it would have (C(iat), C(exp) and C(jti) of this moment).
  returned: always
  type: dict
  sample:
    iss: https://af.example.org/tokens
    sub: alice
    aud: https://xrootd.af.example.org:1094
    scope: storage.read:/store storage.create:/store/user/alice
    wlcg.ver: "1.0"
    iat: 1767225600
    nbf: 1767225600
    exp: 1767229200
    jti: 0b7d35c6e3f24d4d8e9a6c4b8f1a2d3e
expires_at:
  description: Expiry of the token (C(exp)) as ISO 8601 UTC.
  returned: always
  type: str
  sample: "2026-01-01T01:00:00Z"
reminted_reason:
  description:
    - Why a token was (or, in check mode, would be) minted; empty when the existing token was kept.
    - One of C(missing), C(not a token), C(forced), C(algorithm differs), C(signature invalid (other key)),
      C(key id differs), C(issuer differs), C(subject differs), C(audience differs), C(scopes differ),
      C(wlcg.ver differs), C(extra claims differ), C(expiry missing), C(expired), C(expires soon),
      C(lifetime differs), C(not yet valid), or C(no dest) (without O(dest) a token is minted on every run).
  returned: always
  type: str
  sample: expires soon
token:
  description:
    - The token (a compact JWT). Not returned in check mode when O(dest) would be re-minted.
    - For a queue (O(queue_horizon)), the queue file's text (one token a line).
  returned: when O(return_token=true)
  type: str
queue_length:
  description: How many tokens the queue holds after the task (0 when O(queue_horizon) is 0).
  returned: always
  type: int
"""

import os  # noqa: E402
import time  # noqa: E402

# Ansible module convention: imports follow the documentation blocks.
from ansible.module_utils.af_jwt import (  # noqa: E402
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    JWTError,
    decode_unverified,
    iso_time,
    issuer_error,
    load_private_key,
    mint,
    new_claims,
    queue_claims,
    queue_state,
    queue_text,
    request_claims,
    split_queue,
    token_diff,
    token_state,
    validate_scopes,
)
from ansible.module_utils.af_secret_file import write_secret_file  # noqa: E402
from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

ARGUMENT_SPEC = {
    "issuer": {"type": "str", "required": True},
    "subject": {"type": "str", "required": True},
    "audience": {"type": "list", "elements": "str", "required": True},
    "scopes": {"type": "list", "elements": "str", "default": []},
    "lifetime": {"type": "int", "default": 3600},
    "renew_before": {"type": "int"},
    "key_file": {"type": "path"},
    "key_content": {"type": "str", "no_log": True},
    "key_id": {"type": "str", "required": True},
    "extra_claims": {"type": "dict", "default": {}},
    "wlcg_version": {"type": "str", "default": "1.0"},
    "dest": {"type": "path"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw", "default": "0600"},
    "return_token": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "queue_horizon": {"type": "int", "default": 0},
    "queue_interval": {"type": "int"},
    "backdate": {"type": "int", "default": 30},
}
MODULE_OPTIONS = {
    "mutually_exclusive": [["key_file", "key_content"]],
    "required_one_of": [["key_file", "key_content"]],
}


def check_params(module: AnsibleModule) -> list[str]:
    """Validation errors of the options that the argument spec cannot express ([] when all is well)."""
    params = module.params
    errors = []
    error = issuer_error(params["issuer"])
    if error:
        errors.append(error)
    for name in ("subject", "key_id", "wlcg_version"):
        if not params[name]:
            errors.append(f"{name} must not be empty")
    if not params["audience"] or not all(params["audience"]):
        errors.append("audience must list at least one audience, none of them empty")
    errors += validate_scopes(params["scopes"])
    horizon = params["queue_horizon"]
    if params["lifetime"] <= 0:
        errors.append("lifetime must be a positive number of seconds")
    elif not 0 <= params["backdate"] < params["lifetime"]:
        errors.append(
            f"backdate must be at least 0 and less than lifetime ({params['lifetime']}), got {params['backdate']}"
        )
    elif horizon:
        errors += queue_errors(params)
    elif not 0 <= params["renew_before"] < params["lifetime"]:
        errors.append(
            f"renew_before must be at least 0 and less than lifetime ({params['lifetime']}), "
            f"got {params['renew_before']}"
        )
    if params["dest"] is None and not params["return_token"]:
        errors.append("nothing to do: give dest, or set return_token (or both)")
    return errors


def queue_errors(params: dict) -> list[str]:
    """Validation errors of the queue options (lifetime is positive)."""
    errors = []
    lifetime, horizon, interval = params["lifetime"], params["queue_horizon"], params["queue_interval"]
    if horizon < lifetime:
        errors.append(f"queue_horizon must be 0 or at least lifetime ({lifetime}), got {horizon}")
    overlap_limit = lifetime - params["backdate"]
    if not 0 < interval <= overlap_limit:
        errors.append(
            f"queue_interval must be positive and at most lifetime - backdate ({overlap_limit}: successive tokens "
            f"must overlap by the clock skew allowed for), got {interval}"
        )
    if not 0 <= params["renew_before"] < horizon:
        errors.append(
            f"renew_before must be at least 0 and less than queue_horizon ({horizon}), got {params['renew_before']}"
        )
    if params["dest"] is None:
        errors.append("a queue (queue_horizon) needs dest")
    return errors


def read_key(module: AnsibleModule):
    """The private key from key_file or key_content (failing without showing any of it)."""
    params = module.params
    if params["key_content"] is not None:
        pem, what = params["key_content"], "key_content"
    else:
        what = f"key_file {params['key_file']}"
        try:
            with open(params["key_file"], "rb") as handle:
                pem = handle.read()
        except OSError as exc:
            module.fail_json(msg=f"cannot read {what}: {exc.strerror}", changed=False)
    try:
        return load_private_key(pem, what)
    except JWTError as exc:
        module.fail_json(msg=str(exc), changed=False)


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


def write_token(module: AnsibleModule, dest: str, token: str) -> None:
    """Write token to dest atomically, never readable by others (module_utils/af_secret_file.py)."""
    write_secret_file(module, dest, token, prefix=".scitoken.")


def run(module: AnsibleModule) -> dict:
    """The module's work; returns the result for exit_json."""
    params = module.params
    dest = params["dest"]
    result: dict = {"changed": False, "dest": dest, "claims": {}, "expires_at": None, "reminted_reason": ""}
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR), **result)
    if params["renew_before"] is None:
        params["renew_before"] = (params["queue_horizon"] or params["lifetime"]) // 4
    if params["queue_interval"] is None:
        params["queue_interval"] = max(min(params["lifetime"] // 2, params["lifetime"] - params["backdate"]), 1)
    result["queue_length"] = 0
    errors = check_params(module)
    if errors:
        module.fail_json(msg="; ".join(errors), **result)
    try:
        request = request_claims(
            issuer=params["issuer"],
            subject=params["subject"],
            audience=params["audience"],
            scopes=params["scopes"],
            wlcg_version=params["wlcg_version"],
            extra_claims=params["extra_claims"],
        )
    except JWTError as exc:
        module.fail_json(msg=str(exc), **result)
    key = read_key(module)
    kid, lifetime, now, backdate = params["key_id"], params["lifetime"], time.time(), params["backdate"]

    if dest is None:
        claims = new_claims(request, lifetime=lifetime, now=now, backdate=backdate)
        result.update(claims=claims, expires_at=iso_time(claims["exp"]), reminted_reason="no dest")
        result["token"] = mint(key, kid, claims)
        return result

    existing = read_existing(module, dest)
    if params["queue_horizon"]:
        return run_queue(module, result, request=request, key=key, existing=existing, now=now)
    _header, payload, reason = token_state(
        existing,
        key,
        kid=kid,
        request=request,
        lifetime=lifetime,
        renew_before=params["renew_before"],
        force=params["force"],
        now=now,
    )
    file_args = module.load_file_common_arguments(params, path=dest)
    if not reason:
        result.update(claims=payload, expires_at=iso_time(payload.get("exp")))
        result["changed"] = module.set_fs_attributes_if_different(file_args, False)
        if params["return_token"]:
            result["token"] = existing.strip()
        return result

    claims = new_claims(request, lifetime=lifetime, now=now, backdate=backdate)
    result.update(changed=True, claims=claims, expires_at=iso_time(claims["exp"]), reminted_reason=reason)
    if module._diff:
        result["diff"] = token_diff(dest, existing, {"alg": "ES256", "typ": "JWT", "kid": kid}, claims)
    if not module.check_mode:
        token = mint(key, kid, claims)
        write_token(module, dest, token)
        module.set_fs_attributes_if_different(file_args, True)
        if params["return_token"]:
            result["token"] = token
    return result


def run_queue(module: AnsibleModule, result: dict, *, request: dict, key, existing: str | None, now: float) -> dict:
    """run() for a queue of tokens in dest (queue_horizon)."""
    params = module.params
    dest, kid, lifetime = params["dest"], params["key_id"], params["lifetime"]
    times = {"lifetime": lifetime, "interval": params["queue_interval"], "horizon": params["queue_horizon"]}
    payloads, reason = queue_state(
        existing,
        key,
        kid=kid,
        request=request,
        renew_before=params["renew_before"],
        force=params["force"],
        now=now,
        **times,
    )
    file_args = module.load_file_common_arguments(params, path=dest)
    if not reason:
        result.update(claims=payloads[0], expires_at=iso_time(payloads[-1]["exp"]), queue_length=len(payloads))
        result["changed"] = module.set_fs_attributes_if_different(file_args, False)
        if params["return_token"]:
            result["token"] = "\n".join(split_queue(existing)) + "\n"
        return result

    new = queue_claims(request, now=now, backdate=params["backdate"], **times)
    header = {"alg": "ES256", "typ": "JWT", "kid": kid}
    result.update(
        changed=True, claims=new[0], expires_at=iso_time(new[-1]["exp"]), queue_length=len(new), reminted_reason=reason
    )
    if module._diff:
        old_header = None
        if payloads:
            old_header = {"kid": decode_unverified(split_queue(existing)[0])[0].get("kid")}
        result["diff"] = {
            "before": queue_text(old_header, payloads) if payloads else ("" if existing is None else "(replaced)\n"),
            "after": queue_text(header, new),
            "before_header": dest,
            "after_header": dest,
        }
    if not module.check_mode:
        text = "\n".join(mint(key, kid, claims) for claims in new)
        write_token(module, dest, text)  # one token a line, with a final newline
        module.set_fs_attributes_if_different(file_args, True)
        if params["return_token"]:
            result["token"] = text + "\n"
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, **MODULE_OPTIONS)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
