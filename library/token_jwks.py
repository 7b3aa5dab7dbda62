#!/usr/bin/python
"""Ansible module: the public JWK Set of a token issuer's signing keys."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: token_jwks
short_description: Public JWK Set (JWKS) of a token issuer's EC P-256 signing keys
description:
  - Returns the JSON Web Key Set (C({"keys": [...]})) that a token issuer publishes at its C(jwks_uri):
    for every given key its public part as an EC P-256 JWK (C(kty), C(crv), C(x), C(y), C(kid), C(alg=ES256),
    C(use=sig)), in the order given.
  - The private keys are module options marked C(no_log); only public values are returned. Pass their PEM
    with C(lookup('file')) so that vault-encrypted key files work.
  - Read-only (never changed); supports check mode. The logic lives in C(module_utils/af_jwt.py).
version_added: "0.1.0"
author:
  - coffea-casa-af developers
options:
  keys:
    description: Signing keys to publish.
    type: list
    elements: dict
    required: true
    suboptions:
      kid:
        description: Key id (the C(kid) of the JWT header of tokens signed with this key).
        type: str
        required: true
      pem:
        description: PEM of the private (or public) key.
        type: str
        required: true
        no_log: true
requirements:
  - cryptography
"""

EXAMPLES = r"""
- name: Work out the JWKS of the issuer's keys
  token_jwks:
    keys:
      - kid: key-1
        pem: "{{ lookup('ansible.builtin.file', 'credentials/token-issuer/key-1.key') }}"
  delegate_to: localhost
  register: issuer_jwks
"""

RETURN = r"""
jwks:
  description: The JWK Set (public keys only).
  returned: always
  type: dict
  sample:
    keys:
      - {"kty": "EC", "crv": "P-256", "x": "...", "y": "...", "kid": "key-1", "alg": "ES256", "use": "sig"}
"""

from ansible.module_utils.af_jwt import JWTError, jwks  # noqa: E402
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "keys": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "no_log": False,
        "options": {"kid": {"type": "str", "required": True}, "pem": {"type": "str", "required": True, "no_log": True}},
    }
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = jwks((key["pem"], key["kid"]) for key in module.params["keys"])
    except JWTError as error:
        module.fail_json(msg=f"cannot publish the signing keys: {error}")
    module.exit_json(changed=False, jwks=result)


if __name__ == "__main__":
    main()
