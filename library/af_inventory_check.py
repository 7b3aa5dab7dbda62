#!/usr/bin/python
"""Ansible module: check an analysis-facility inventory before any host is touched."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: af_inventory_check
short_description: Check an analysis-facility inventory before any host is touched
description:
  - Checks the inventory of a coffea-casa analysis facility (groups, hosts and the variables defined for
    every host) and fails with a numbered list of every problem found, each naming the variable, group or
    host and saying how to fix it.
  - Meant to run on the controller (C(localhost), C(run_once)) from the C(validate_inventory) role; it never
    connects to the inventory hosts.
  - The role carries an action plugin of the same name (C(roles/validate_inventory/action_plugins/)). When
    O(hostvars) is not given, the action plugin collects the values on the controller (for every inventory
    host, the variables named in the argument specs of the roles that run on it (O(roles_dir), O(role_hosts)),
    O(extra_vars) and the variables named like secrets (O(settings.secret_suffixes)), evaluated with that
    host's variables) and passes them to the module as O(hostvars), O(argument_specs) and
    O(evaluation_errors).
  - 'Vault-encrypted values are replaced by C({"__ansible_vault": ...}) without being decrypted; a value that
    cannot be evaluated is reported for its host. The collected values are not returned (no C(invocation))
    and not logged.'
  - Without the action plugin (for example a play that does not use the role), pass O(hostvars) explicitly.
  - "Checks: af_site_name and af_domain; required node roles have a host; at most one central manager;
    no host in two conflicting node roles; every host has a node role; hostnames are DNS names; account
    and group lists (unique UIDs, names and GIDs, groups defined, UID ranges, identical on every host);
    types against the roles' argument specs, with no string where a boolean, number, list or mapping is
    expected; ports, lifetimes and validities within range; absolute paths; account names that useradd
    accepts, in lowercase; host names that are not IP addresses; firewall port strings; a time source for
    every host; no two services of a host on one port; CAs that outlive their certificates and tokens
    refreshed before they expire; the token issuer URL the site's issuer serves; an XCache's origin; the
    groups a site's shape needs (registry, issuer, OIDC provider); several registry hosts declare a shared
    storage; the token and OIDC issuer URLs are https, and af_oidc_mode external names af_oidc_issuer_url,
    af_oidc_client_id and af_oidc_client_secret_file; no role parameter that copies a shared fact and no
    renamed variable; site-wide values the same on every host; no plain-text secrets."
  - The logic lives in C(module_utils/af_inventory.py); the role is documented in C(roles/validate_inventory/README.md).
version_added: "0.1.0"
author:
  - coffea-casa-af developers
options:
  groups:
    description:
      - Inventory groups and their hosts, as in Ansible's C(groups) magic variable.
      - Filled in by the action plugin (the inventory's C(groups)) when not given; required without it.
    type: dict
  hostvars:
    description:
      - For every host, the variables to check that are defined for it in the inventory
        (host -> {variable -> value}).
      - 'A vault-encrypted value may be given as C({"__ansible_vault": "..."}); it is then never type-checked
        and counts as encrypted for the plain-text secret check.'
      - When not given, the action plugin collects it (see the description); required without the action plugin.
    type: dict
  argument_specs:
    description:
      - Argument spec options of the C(main) entry point of every role that will run (role -> options), as
        read from C(roles/<role>/meta/argument_specs.yml). A whole argument_specs document is accepted too.
      - When O(hostvars) is not given and this is not either, the action plugin reads the files under O(roles_dir).
    type: dict
    default: {}
  roles_dir:
    description:
      - Directory holding the roles (C(<roles_dir>/<role>/meta/argument_specs.yml)); roles without the file are
        skipped.
      - Read by the action plugin when it collects the values (O(hostvars) not given); the module ignores it.
    type: path
  extra_vars:
    description:
      - Variables collected on every host even when no argument spec names them.
      - Read by the action plugin when it collects the values (O(hostvars) not given); the module ignores it.
    type: list
    elements: str
    default: []
  role_hosts:
    description:
      - Which inventory groups every role runs on (role -> list of groups; C(all) means every host).
    type: dict
    required: true
  settings:
    description:
      - The check data.
    type: dict
    default: {}
    suboptions:
      node_roles:
        description: Inventory groups that name node roles (C(af_node_roles)).
        type: list
        elements: str
      required_node_roles:
        description: Node roles that need at least one host (C(af_required_node_roles)).
        type: list
        elements: str
      node_role_conflicts:
        description: Node roles that must not share a host, with the reason (C(af_node_role_conflicts)).
        type: list
        elements: dict
      single_host_groups:
        description: Groups that may hold at most one host (group -> reason).
        type: dict
      required_roles:
        description: Roles whose required options must be set and non-empty in the inventory.
        type: list
        elements: str
      same_everywhere:
        description: Variables that must have the same value on every host.
        type: list
        elements: str
      service_uid_range:
        description: Lowest and highest UID of service accounts.
        type: list
        elements: int
      user_uid_range:
        description: Lowest and highest UID of users.
        type: list
        elements: int
      secret_suffixes:
        description: Variable name endings that mark a secret.
        type: list
        elements: str
      plaintext_allowed:
        description: Secret-looking variables whose value is computed (for example a lookup), not a literal secret.
        type: list
        elements: str
      shared_fact_copies:
        description:
          - Role parameters that follow a shared fact of roles/af_defaults (parameter -> fact); refused when set.
        type: dict
      renamed_vars:
        description: Variables no role reads any more (old name -> what to set instead); refused when set.
        type: dict
  defaults:
    description:
      - Values of role defaults that the inventory does not override (host -> {variable -> value}); the
        relations between values (ports of one host, validities, the issuer URL, an XCache's origin) are
        judged on the inventory's values over these.
      - The action plugin fills them in for O(effective_vars) from the defaults of the roles that run on each host.
    type: dict
    default: {}
  effective_vars:
    description:
      - Variables whose role default the action plugin evaluates for every host where the inventory does not set them.
    type: list
    elements: str
    default: []
  evaluation_errors:
    description:
      - Variables whose templates could not be evaluated when the inventory was read (host -> {variable -> error}).
      - The action plugin adds the ones it finds when it collects the values.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Never changes anything (C(changed) is always false).
"""

EXAMPLES = r"""
# From a role that carries the action plugin (roles/validate_inventory): the values are collected.
- name: Check the inventory
  af_inventory_check:
    role_hosts: {af_defaults: [all], chrony: [all]}
    roles_dir: "{{ role_path | dirname }}"
    extra_vars: [chrony_servers]
    settings:
      node_roles: "{{ af_node_roles }}"
      required_node_roles: "{{ af_required_node_roles }}"
      node_role_conflicts: "{{ af_node_role_conflicts }}"
  delegate_to: localhost
  run_once: true

# Standalone, with the values given explicitly.
- name: Check the inventory
  af_inventory_check:
    groups: "{{ groups }}"
    hostvars:
      head: {af_site_name: my-t3, af_domain: t3.example.edu}
    argument_specs: {}
    role_hosts: {af_defaults: [all]}
    settings:
      node_roles: "{{ af_node_roles }}"
      required_node_roles: "{{ af_required_node_roles }}"
      node_role_conflicts: "{{ af_node_role_conflicts }}"
      single_host_groups:
        central_manager: these roles do not set up a highly-available central manager
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
errors:
  description: Every problem found, in a stable order (by check, then alphabetically). Empty if the inventory is fine.
  returned: always
  type: list
  elements: str
  sample:
    - "required node role 'central_manager' has no host (af_required_node_roles): add exactly one host to group
      'central_manager' in hosts.yml"
msg:
  description: The problems as a numbered list (when there are any), or a short confirmation.
  returned: always
  type: str
  sample: "The inventory has 1 problem; fix it and run again:\n1. ..."
"""

# Ansible module convention: imports follow the documentation blocks.
from ansible.module_utils.af_inventory import check_inventory, format_errors, warn_needed_groups  # noqa: E402
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

SETTINGS_OPTIONS = {
    "node_roles": {"type": "list", "elements": "str"},
    "required_node_roles": {"type": "list", "elements": "str"},
    "node_role_conflicts": {"type": "list", "elements": "dict"},
    "single_host_groups": {"type": "dict"},
    "required_roles": {"type": "list", "elements": "str"},
    "same_everywhere": {"type": "list", "elements": "str"},
    "service_uid_range": {"type": "list", "elements": "int"},
    "user_uid_range": {"type": "list", "elements": "int"},
    "secret_suffixes": {"type": "list", "elements": "str"},
    "plaintext_allowed": {"type": "list", "elements": "str"},
    "shared_fact_copies": {"type": "dict"},
    "renamed_vars": {"type": "dict"},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "groups": {"type": "dict"},
            "hostvars": {"type": "dict"},
            "argument_specs": {"type": "dict", "default": {}},
            "role_hosts": {"type": "dict", "required": True},
            "settings": {"type": "dict", "default": {}, "options": SETTINGS_OPTIONS},
            "evaluation_errors": {"type": "dict", "default": {}},
            "defaults": {"type": "dict", "default": {}},
            # Read by the action plugin (roles/validate_inventory/action_plugins/) only.
            "roles_dir": {"type": "path"},
            "extra_vars": {"type": "list", "elements": "str", "default": []},
            "effective_vars": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    missing = [name for name in ("groups", "hostvars") if params[name] is None]
    if missing:
        module.fail_json(
            msg=f"missing required arguments: {', '.join(missing)} (the af_inventory_check action plugin of "
            "roles/validate_inventory fills them in from the inventory; without it, pass them explicitly)",
            changed=False,
        )
    errors = check_inventory(
        groups=params["groups"],
        hostvars=params["hostvars"],
        argument_specs=params["argument_specs"],
        role_hosts=params["role_hosts"],
        settings=params["settings"],
        evaluation_errors=params["evaluation_errors"],
        defaults=params["defaults"],
    )
    for warning in warn_needed_groups(params["groups"]):
        module.warn(warning)
    if errors:
        module.fail_json(msg=format_errors(errors), errors=errors, changed=False)
    hosts = len(params["hostvars"])
    module.exit_json(changed=False, errors=[], msg=f"The inventory is fine ({hosts} hosts checked).")


if __name__ == "__main__":
    main()
