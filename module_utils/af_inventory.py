"""Inventory checks run on the controller before any host is touched (see roles/validate_inventory).

Pure Python: the standard library plus Ansible's ArgumentSpecValidator. Every check is a small function
that returns a sorted list of messages; each message names the variable, group or host and says how to
fix it. ``check_inventory`` runs them all and returns every problem, not only the first one.

Per-host findings that are identical on several hosts are merged into one message that lists the hosts
("all hosts" when every host has it, which usually means the value comes from group_vars/all).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

# Placeholders filled in when per-host findings are merged: WHERE becomes "host 'x'", "hosts 'x', 'y'"
# or "all hosts"; HAS becomes "has" or "have" to match.
WHERE = "{where}"
HAS = "{has}"

SITE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
IPV4_RE = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
PORT_RE = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?/(tcp|udp)$")
DNS_LABEL_MAX = 63
DNS_NAME_MAX = 253
PORT_MAX = 65535

# Type names under which a vault-encrypted value reaches Python code: ansible-core >= 2.19 uses
# EncryptedString (VaultExceptionMarker when it cannot be decrypted), older releases
# AnsibleVaultEncryptedUnicode. Decrypted values keep a VaultedValue tag (>= 2.19).
VAULT_TYPE_NAMES = frozenset({"EncryptedString", "AnsibleVaultEncryptedUnicode", "VaultExceptionMarker"})
VAULT_TAG_NAMES = frozenset({"VaultedValue"})
# How a vaulted value is represented in JSON (ansible-inventory --list, module arguments).
VAULT_MARKER = "__ansible_vault"

# Variables with a dedicated check; the generic "required" check leaves them alone.
DEDICATED_REQUIRED = frozenset({"af_site_name", "af_domain"})

DEFAULT_SETTINGS: dict = {
    # Check data from roles/af_defaults (af_node_roles, af_required_node_roles, af_node_role_conflicts).
    "node_roles": [],
    "required_node_roles": [],
    "node_role_conflicts": [],
    # Groups that must not hold more than one host: {group: reason}.
    "single_host_groups": {},
    # Roles whose required options must be set (non-empty) in the inventory.
    "required_roles": ["af_defaults"],
    # Variables that must have the same value on every host.
    "same_everywhere": ["af_groups", "af_service_accounts", "af_users"],
    "service_uid_range": [100, 999],
    "user_uid_range": [1000, 59999],
    "secret_suffixes": ["_password", "_secret", "_token", "_key"],
    # Secret-looking variables whose value is computed (e.g. a lookup), not a literal secret.
    "plaintext_allowed": [],
    # Role parameters that follow a shared fact of roles/af_defaults: {parameter: fact}.
    "shared_fact_copies": {},
    # Variables no role reads any more: {old name: what to do instead}.
    "renamed_vars": {},
}

ACCOUNT_LISTS = ("af_service_accounts", "af_users")


# --- Helpers -----------------------------------------------------------------------------------------


def quote_list(names: Iterable[str]) -> str:
    """'a', 'b', 'c'"""
    return ", ".join(f"'{n}'" for n in names)


def hosts_phrase(hosts: Iterable[str], all_hosts: Iterable[str]) -> str:
    """How merged messages name their hosts: "host 'a'", "hosts 'a', 'b'" or "all hosts"."""
    hosts = sorted(set(hosts))
    all_hosts = set(all_hosts)
    if len(hosts) > 1 and set(hosts) == all_hosts:
        return "all hosts"
    if len(hosts) == 1:
        return f"host '{hosts[0]}'"
    return f"hosts {quote_list(hosts)}"


def merge_host_findings(findings: Iterable[tuple[str, str]], all_hosts: Iterable[str]) -> list[str]:
    """Merge (host, message) pairs: one message per distinct text, naming every host that has it.

    A message may contain WHERE where the hosts belong; otherwise they are put in front of it.
    """
    by_text: dict[str, set[str]] = {}
    for host, text in findings:
        by_text.setdefault(text, set()).add(host)
    merged = []
    for text, hosts in by_text.items():
        where = hosts_phrase(hosts, all_hosts)
        template = text if WHERE in text else f"{WHERE}: {text}"
        merged.append(template.replace(WHERE, where).replace(HAS, "has" if len(hosts) == 1 else "have"))
    return sorted(merged)


def is_vaulted(value: object) -> bool:
    """True if value is (or came from) an ansible-vault encrypted string.

    Recognises the vault object types by name (EncryptedString, AnsibleVaultEncryptedUnicode and
    VaultExceptionMarker, wherever they are imported from), a decrypted value that still carries
    Ansible's VaultedValue tag, and the JSON form {"__ansible_vault": "<ciphertext>"}.
    """
    if isinstance(value, Mapping):
        return VAULT_MARKER in value
    if any(cls.__name__ in VAULT_TYPE_NAMES for cls in type(value).__mro__):
        return True
    tags = getattr(value, "_ansible_tags_mapping", None)
    if isinstance(tags, Mapping):
        return any(getattr(tag_type, "__name__", "") in VAULT_TAG_NAMES for tag_type in tags)
    return False


def host_groups(groups: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Invert Ansible's 'groups' (group -> hosts) into host -> groups, without 'all' and 'ungrouped'."""
    membership: dict[str, set[str]] = {}
    for group, hosts in groups.items():
        for host in hosts or []:
            membership.setdefault(host, set())
            if group not in ("all", "ungrouped"):
                membership[host].add(group)
    return membership


def roles_for_host(host_group_names: Iterable[str], role_hosts: Mapping[str, Iterable[str]]) -> list[str]:
    """Roles that run on a host: those mapped to 'all' or to one of the host's groups."""
    mine = set(host_group_names) | {"all"}
    return sorted(role for role, targets in role_hosts.items() if mine & set(targets or []))


def as_int(value: object) -> int | None:
    """An int from an int or a string of digits (as Ansible would convert it); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def canonical(value: object) -> str:
    """A stable text form of a value, to compare values between hosts."""
    return json.dumps(value, sort_keys=True, default=str)


def valid_dns_name(name: str) -> bool:
    """Lowercase DNS name: labels of letters, digits and '-' (not at either end) joined by dots."""
    if not name or len(name) > DNS_NAME_MAX:
        return False
    return all(len(label) <= DNS_LABEL_MAX and DNS_LABEL_RE.match(label) for label in name.split("."))


def normalize_settings(settings: Mapping | None) -> dict:
    merged = dict(DEFAULT_SETTINGS)
    merged.update({k: v for k, v in (settings or {}).items() if v is not None})
    return merged


# --- 1, 2: site identity -------------------------------------------------------------------------------


def check_site_name(value: object) -> list[str]:
    """af_site_name: set, non-empty, lowercase letters/digits/'-' (a DNS label)."""
    fix = "set af_site_name in the inventory's group_vars/all, e.g. af_site_name: my-t3"
    if value is None:
        return [f"af_site_name is not set: {fix} (lowercase letters, digits and '-')"]
    if not isinstance(value, str) or not value.strip():
        return [f"af_site_name is empty: {fix} (lowercase letters, digits and '-')"]
    if len(value) > DNS_LABEL_MAX or not SITE_NAME_RE.match(value):
        return [
            f"af_site_name '{value}' is not a valid site name: use only lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters (e.g. 'my-t3')"
        ]
    return []


def check_domain(value: object) -> list[str]:
    """af_domain: set, non-empty, a lowercase DNS domain."""
    fix = "set af_domain in the inventory's group_vars/all to the nodes' DNS domain, e.g. af_domain: t3.example.edu"
    if value is None:
        return [f"af_domain is not set: {fix}"]
    if not isinstance(value, str) or not value.strip():
        return [f"af_domain is empty: {fix}"]
    if not valid_dns_name(value):
        return [
            f"af_domain '{value}' is not a valid DNS domain: use lowercase labels of letters, digits and '-' "
            "(at most 63 characters each, no '-' at either end) separated by single dots, no trailing dot "
            "(e.g. t3.example.edu)"
        ]
    return []


# --- 3, 4, 5, 6, 7: groups and hosts -------------------------------------------------------------------


def check_required_groups(
    groups: Mapping[str, Iterable[str]], required: Iterable[str], single_host_groups: Mapping[str, str]
) -> list[str]:
    """Every group in af_required_node_roles has at least one host."""
    errors = []
    for group in sorted(set(required)):
        if not list(groups.get(group) or []):
            how_many = "exactly one host" if group in single_host_groups else "at least one host"
            errors.append(
                f"required node role '{group}' has no host (af_required_node_roles): "
                f"add {how_many} to group '{group}' in hosts.yml"
            )
    return errors


def check_single_host_groups(groups: Mapping[str, Iterable[str]], single_host_groups: Mapping[str, str]) -> list[str]:
    """Groups such as central_manager hold at most one host."""
    errors = []
    for group in sorted(single_host_groups):
        hosts = sorted(set(groups.get(group) or []))
        if len(hosts) > 1:
            errors.append(
                f"group '{group}' has {len(hosts)} hosts ({quote_list(hosts)}): keep exactly one host in group "
                f"'{group}' in hosts.yml; {single_host_groups[group]}"
            )
    return errors


def check_role_conflicts(host: str, groups_of_host: Iterable[str], conflicts: Iterable[Mapping]) -> list[str]:
    """A host is not in two node roles that af_node_role_conflicts forbids to share a host."""
    mine = set(groups_of_host)
    errors = []
    for conflict in conflicts:
        if not isinstance(conflict, Mapping):
            continue
        roles = [r for r in conflict.get("roles") or [] if isinstance(r, str)]
        if len(roles) > 1 and set(roles) <= mine:
            names = " and ".join(f"'{r}'" for r in roles)
            errors.append(
                f"host '{host}' is in groups {names}, which must not share a host "
                f"(af_node_role_conflicts): {conflict.get('reason', 'see af_node_role_conflicts')}; "
                f"move one of these roles to another host in hosts.yml"
            )
    return sorted(errors)


def check_node_role(host: str, groups_of_host: Iterable[str], node_roles: Iterable[str]) -> list[str]:
    """A host is in at least one group of af_node_roles."""
    node_roles = list(node_roles)
    if set(groups_of_host) & set(node_roles):
        return []
    return [
        f"host '{host}' has no node role: add it to one of the groups {', '.join(node_roles)} "
        "in hosts.yml (af_node_roles), or remove it from the inventory"
    ]


def check_hostname(host: str) -> list[str]:
    """The inventory hostname is a valid DNS name (it becomes the node's name and FQDN), not an address."""
    if IPV4_RE.match(host) or ":" in host:
        return [
            f"host '{host}' is an IP address: inventory host names become node names and FQDNs (certificates, "
            f"HTCondor, /etc/hosts); give the host a name in hosts.yml and put the address in its ansible_host "
            f"(e.g. t3-node01: {{ansible_host: {host}}})"
        ]
    if valid_dns_name(host):
        return []
    suggestion = re.sub(r"[^a-z0-9.-]+", "-", host.lower()).strip("-.")
    return [
        f"host '{host}' is not a valid DNS name: rename it in hosts.yml using only lowercase letters, digits, "
        f"'-' and '.' (no '_', no '-' at either end of a label), e.g. '{suggestion}'"
    ]


# --- 8, 9, 10, 11: accounts ---------------------------------------------------------------------------


def _entries(value: object) -> list[Mapping]:
    """The dict entries of an account/group list; anything else is left to the type check."""
    if not isinstance(value, list):
        return []
    return [e for e in value if isinstance(e, Mapping)]


def _accounts(service_accounts: object, users: object) -> list[tuple[str, Mapping]]:
    return [("af_service_accounts", e) for e in _entries(service_accounts)] + [("af_users", e) for e in _entries(users)]


def check_duplicate_uids(service_accounts: object, users: object) -> list[str]:
    """No UID is used twice among af_service_accounts + af_users."""
    seen: dict[int, tuple[str, str]] = {}
    errors = []
    for var, entry in _accounts(service_accounts, users):
        uid = as_int(entry.get("uid"))
        if uid is None:
            continue
        name = entry.get("name")
        if uid in seen:
            first_name, first_var = seen[uid]
            errors.append(
                f"UID {uid} is used by both '{first_name}' ({first_var}) and '{name}' ({var}): "
                "give each account its own UID (UIDs must be unique on every node)"
            )
        else:
            seen[uid] = (name, var)
    return sorted(errors)


def check_duplicate_account_names(service_accounts: object, users: object) -> list[str]:
    """No account name is defined twice among af_service_accounts + af_users."""
    seen: dict[str, str] = {}
    errors = []
    for var, entry in _accounts(service_accounts, users):
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            errors.append(
                f"account name '{name}' is defined twice (in {seen[name]} and {var}): keep one entry per account name"
            )
        else:
            seen[name] = var
    return sorted(errors)


def check_duplicate_groups(groups: object) -> list[str]:
    """No group name and no GID is defined twice in af_groups."""
    names: set[str] = set()
    gids: dict[int, str] = {}
    errors = []
    for entry in _entries(groups):
        name, gid = entry.get("name"), as_int(entry.get("gid"))
        if isinstance(name, str):
            if name in names:
                errors.append(f"group name '{name}' is defined twice in af_groups: keep one entry per group name")
            names.add(name)
        if gid is not None:
            if gid in gids and gids[gid] != name:
                errors.append(
                    f"GID {gid} is used by both groups '{gids[gid]}' and '{name}' in af_groups: "
                    "give each group its own GID"
                )
            gids.setdefault(gid, name)
    return sorted(errors)


def check_group_references(groups: object, service_accounts: object, users: object) -> list[str]:
    """Every account's primary group and supplementary groups are defined in af_groups."""
    known = {e.get("name") for e in _entries(groups)}
    errors = []
    for var, entry in _accounts(service_accounts, users):
        name = entry.get("name")
        primary = entry.get("group")
        if isinstance(primary, str) and primary not in known:
            errors.append(
                f"account '{name}' ({var}): primary group '{primary}' is not defined in af_groups: "
                f"add {{name: {primary}, gid: <free GID>}} to af_groups, or fix the group name"
            )
        supplementary = entry.get("groups")
        for group in supplementary if isinstance(supplementary, list) else []:
            if isinstance(group, str) and group not in known:
                errors.append(
                    f"account '{name}' ({var}): supplementary group '{group}' is not defined in af_groups: "
                    f"add {{name: {group}, gid: <free GID>}} to af_groups, or remove it from the account's groups"
                )
    return sorted(errors)


def check_uid_ranges(
    service_accounts: object, users: object, service_range: Iterable[int], user_range: Iterable[int]
) -> list[str]:
    """Service accounts use system UIDs, users use normal-user UIDs."""
    s_low, s_high = service_range
    u_low, u_high = user_range
    errors = []
    for entry in _entries(service_accounts):
        uid = as_int(entry.get("uid"))
        if uid is not None and not s_low <= uid <= s_high:
            errors.append(
                f"service account '{entry.get('name')}' (af_service_accounts) has UID {uid}, outside the system "
                f"range {s_low}-{s_high}: Debian's adduser --system refuses to create a system user with a UID "
                f"outside that range; pick a free UID in {s_low}-{s_high}"
            )
    for entry in _entries(users):
        uid = as_int(entry.get("uid"))
        if uid is not None and not u_low <= uid <= u_high:
            errors.append(
                f"user '{entry.get('name')}' (af_users) has UID {uid}, outside {u_low}-{u_high}: "
                f"pick a free UID in {u_low}-{u_high} (Debian's range for normal users)"
            )
    return sorted(errors)


def check_accounts(values: Mapping, settings: Mapping) -> list[str]:
    """All account checks on one set of af_groups / af_service_accounts / af_users."""
    groups = values.get("af_groups")
    service_accounts = values.get("af_service_accounts")
    users = values.get("af_users")
    return (
        check_duplicate_uids(service_accounts, users)
        + check_duplicate_account_names(service_accounts, users)
        + check_duplicate_groups(groups)
        + check_group_references(groups, service_accounts, users)
        + check_uid_ranges(service_accounts, users, settings["service_uid_range"], settings["user_uid_range"])
        + check_account_names(groups, service_accounts, users)
    )


# --- 12: types from the roles' argument specs ---------------------------------------------------------


def _option_spec(option: Mapping) -> dict:
    """An argument_specs option for one inventory value: 'required' only applies inside (sub-options)."""
    spec = dict(option)
    spec.pop("required", None)
    spec.pop("default", None)
    return spec


def check_types(name: str, value: object, option: Mapping, role: str) -> tuple[list[str], object]:
    """Validate one variable against its option in a role's argument spec.

    Returns (messages, value converted as the role's own validation would convert it). A string where
    another type is expected is refused rather than converted (see type_problems).
    """
    problems = type_problems(name, value, option)
    if problems:
        return [
            f"variable {problem} (argument spec of role '{role}': roles/{role}/meta/argument_specs.yml)"
            for problem in problems
        ], value
    result = ArgumentSpecValidator({name: _option_spec(option)}).validate({name: value})
    messages = []
    for error in result.errors:
        text = str(error.args[0] if error.args else error)
        if isinstance(error, UnsupportedError):
            text = f"unknown key {text}"
        messages.append(text)
    # The validator sometimes reports a problem twice (once bare, once with context): keep the longer one.
    messages = [m for m in messages if not any(m != other and m in other for other in messages)]
    if not messages:
        return [], result.validated_parameters.get(name, value)
    details = "; ".join(dict.fromkeys(messages))
    return [
        f"variable '{name}' does not match the argument spec of role '{role}': {details}; "
        f"fix the value in the inventory (see roles/{role}/meta/argument_specs.yml)"
    ], value


def check_required(values: Mapping, options: Mapping[str, Mapping], role: str) -> list[str]:
    """Options marked required in a role's argument spec are set and non-empty in the inventory."""
    errors = []
    for name in sorted(options):
        option = options[name] or {}
        if not option.get("required") or name in DEDICATED_REQUIRED:
            continue
        if name not in values or is_empty(values[name]):
            what = "is not set" if name not in values else "is empty"
            description = option.get("description") or ""
            if isinstance(description, list):
                description = " ".join(str(d) for d in description)
            hint = f" ({description.strip()})" if description else ""
            errors.append(
                f"{name} {what}, but role '{role}' requires it: set {name} in the inventory's group_vars/all{hint}"
            )
    return errors


# --- 13: identical everywhere -------------------------------------------------------------------------


def check_same_everywhere(hostvars: Mapping[str, Mapping], names: Iterable[str], all_hosts: Iterable[str]) -> list[str]:
    """Site-wide values (account and group lists, shared ports and URLs) are the same on every host."""
    all_hosts = sorted(all_hosts)
    errors = []
    for name in sorted(set(names)):
        variants: dict[str, list[str]] = {}
        for host in all_hosts:
            values = hostvars.get(host, {})
            key = canonical(values[name]) if name in values else "<not set>"
            variants.setdefault(key, []).append(host)
        if len(variants) < 2:
            continue
        ordered = sorted(variants.items(), key=lambda kv: (-len(kv[1]), kv[1]))
        described = "; ".join(
            f"{hosts_phrase(hosts, [])} {'has' if len(hosts) == 1 else 'have'} "
            f"{'it unset' if key == '<not set>' else ('one value' if i == 0 else 'another value')}"
            for i, (key, hosts) in enumerate(ordered)
        )
        why = (
            "accounts and groups must be identical on every node (same UIDs and GIDs everywhere)"
            if name in ("af_groups", *ACCOUNT_LISTS)
            else "it is a site-wide value that the services on different nodes must agree on"
        )
        errors.append(
            f"variable '{name}' is not the same on every host ({described}): {why}; define {name} once in the "
            "inventory's group_vars/all and remove the host_vars/group_vars override"
        )
    return errors


# --- 14: firewall ports -------------------------------------------------------------------------------


def port_problem(value: object) -> str | None:
    """Why a firewall port string is invalid, or None if it is fine ('22/tcp', '30000-32767/udp')."""
    match = PORT_RE.match(value) if isinstance(value, str) else None
    if not match:
        return "not in the form '<port>/tcp', '<port>/udp' or '<low>-<high>/tcp'"
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else low
    if not (1 <= low <= PORT_MAX and 1 <= high <= PORT_MAX):
        return "port out of range 1-65535"
    if low > high:
        return f"range {low}-{high} is reversed (low must be <= high)"
    return None


def _port_message(where: str, value: object, problem: str) -> str:
    return (
        f"{where} entry {value!r} is not a valid port ({problem}): use '<port>/tcp', '<port>/udp' or "
        "'<low>-<high>/tcp' with ports 1-65535 and low <= high, e.g. '9618/tcp' or '30000-32767/tcp'"
    )


def check_ports(values: Mapping) -> list[str]:
    """nftables_extra_ports (list of str) and nftables_role_ports (group -> list of str) hold valid ports."""
    errors = []
    if "nftables_extra_ports" in values:
        extra = values["nftables_extra_ports"]
        if not isinstance(extra, list):
            errors.append("nftables_extra_ports must be a list of port strings such as ['9618/tcp', '123/udp']")
        else:
            for port in extra:
                if problem := port_problem(port):
                    errors.append(_port_message("nftables_extra_ports", port, problem))
    if "nftables_role_ports" in values:
        role_ports = values["nftables_role_ports"]
        if not isinstance(role_ports, Mapping):
            errors.append(
                "nftables_role_ports must be a mapping of group name to a list of port strings, "
                "e.g. {submit: ['9618/tcp']}"
            )
        else:
            for group in sorted(role_ports, key=str):
                ports = role_ports[group]
                if not isinstance(ports, list):
                    errors.append(f"nftables_role_ports['{group}'] must be a list of port strings such as ['9618/tcp']")
                    continue
                for port in ports:
                    if problem := port_problem(port):
                        errors.append(_port_message(f"nftables_role_ports['{group}']", port, problem))
    return sorted(errors)


# --- 15: time source ----------------------------------------------------------------------------------


def check_time_source(values: Mapping) -> list[str]:
    """A host whose chrony_servers is set but empty needs chrony_pools or a positive chrony_local_stratum
    (the site's time master serves its own clock)."""
    servers = values.get("chrony_servers", "<not set>")
    if not (isinstance(servers, list) and not servers):
        return []
    if isinstance(values.get("chrony_pools"), list) and values["chrony_pools"]:
        return []
    stratum = as_int(values.get("chrony_local_stratum"))
    if stratum is not None and stratum > 0:
        return []
    return [
        f"{WHERE} {HAS} no time source: set chrony_servers (or chrony_local_stratum for the site's time master); "
        "chrony_servers is empty, chrony_pools is not set and chrony_local_stratum is not a positive integer"
    ]


# --- 16b: HTCondor accounting groups --------------------------------------------------------------------

GROUP_NAME_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _quota(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        quota = float(value)
    except ValueError:
        return None
    return quota if 0 < quota <= 1 else None


def check_accounting_groups(values: Mapping) -> list[str]:
    """htcondor_accounting_groups: named, unique, parents listed, dynamic quotas in (0, 1] whose siblings add
    up to at most 1; the default group and the dedicated groups of execute nodes are listed."""
    groups = values.get("htcondor_accounting_groups")
    if not isinstance(groups, list):
        return []
    errors: list[str] = []
    names: list[str] = []
    sums: dict[str, float] = {}
    for index, group in enumerate(groups):
        where = f"htcondor_accounting_groups[{index}]"
        if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
            errors.append(f"{where} needs a 'name' (for example {{name: group_af, quota: 0.8}})")
            continue
        name = group["name"]
        if not all(GROUP_NAME_PART.match(part) for part in name.split(".")):
            errors.append(
                f"{where}: group name '{name}' is not valid: use letters, digits, '_' and '-', with '.' between "
                "a parent group and its subgroup"
            )
            continue
        if name in names:
            errors.append(f"accounting group '{name}' is listed twice in htcondor_accounting_groups")
            continue
        names.append(name)
        quota = _quota(group.get("quota"))
        if quota is None:
            errors.append(
                f"accounting group '{name}': quota {group.get('quota')!r} is not a fraction of the pool: "
                "give a number above 0 and at most 1 (0.8 = 80 % of the parent's share)"
            )
            continue
        parent = name.rpartition(".")[0]
        sums[parent] = sums.get(parent, 0.0) + quota
    for name in names:
        parent = name.rpartition(".")[0]
        if parent and parent not in names:
            errors.append(f"accounting group '{name}' is a subgroup of '{parent}', which is not listed: add it")
    for parent, total in sorted(sums.items()):
        if total > 1 + 1e-9:
            members = [n for n in names if n.rpartition(".")[0] == parent]
            scope = f"subgroups of '{parent}'" if parent else "top-level accounting groups"
            errors.append(
                f"the quotas of the {scope} ({quote_list(members)}) add up to {total:g}, more than the whole "
                f"{'parent share' if parent else 'pool'}: make them add up to at most 1"
            )
    return errors + _check_group_references(values, names)


def _check_group_references(values: Mapping, names: list[str]) -> list[str]:
    """The default group and the dedicated groups of execute nodes must be defined groups."""
    errors: list[str] = []
    default = values.get("htcondor_default_accounting_group")
    if isinstance(default, str) and default and default not in names:
        errors.append(
            f"htcondor_default_accounting_group '{default}' is not in htcondor_accounting_groups: add it there "
            "or choose one of " + (quote_list(names) if names else "(none defined)")
        )
    dedicated = values.get("htcondor_execute_groups")
    if isinstance(dedicated, list):
        missing = [g for g in dedicated if g not in names]
        if missing:
            errors.append(
                f"htcondor_execute_groups names {quote_list(map(str, missing))}, not in htcondor_accounting_groups"
            )
    return errors


# --- 16c: bearer tokens ---------------------------------------------------------------------------------


def check_token_settings(values: Mapping) -> list[str]:
    """af_token_issuer_url must be an https URL (token libraries fetch its keys over TLS only); the
    storage's audience must not be empty."""
    errors = []
    issuer = values.get("af_token_issuer_url")
    if isinstance(issuer, str) and issuer.strip():
        if not re.match(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^?#\s]*)?$", issuer.strip()):
            errors.append(
                f"af_token_issuer_url '{issuer}' is not an https URL: token issuers are trusted over HTTPS only "
                "(e.g. https://issuer.example.edu or https://cms-auth.web.cern.ch/)"
            )
    elif "af_token_issuer_url" in values:
        errors.append(
            "af_token_issuer_url is empty: name the token issuer (the site's own issuer node's https URL, or an "
            "external issuer such as https://cms-auth.web.cern.ch/)"
        )
    audience = values.get("af_token_audience")
    if "af_token_audience" in values and not (isinstance(audience, str) and audience.strip()):
        errors.append(
            "af_token_audience is empty: set the audience your storage accepts in tokens (e.g. https://<your domain>); "
            "without it any token of the issuer would be accepted by every service"
        )
    return errors


def check_compute_token_settings(values: Mapping) -> list[str]:
    """The pool's audience differs from the storage's, and every extra identity-map entry of the pool
    (htcondor_scitokens_extra_map) names an https issuer, a subject and a facility user."""
    errors = []
    compute, storage = values.get("af_compute_token_audience"), values.get("af_token_audience")
    if isinstance(compute, str) and compute.strip() and compute.strip() == str(storage or "").strip():
        errors.append(
            f"af_compute_token_audience is the storage's audience ('{compute}'): give the HTCondor pool an audience "
            "of its own (e.g. https://<your domain>/htcondor), or the data tokens that travel with jobs would also "
            "act in the pool"
        )
    entries = values.get("htcondor_scitokens_extra_map")
    if not isinstance(entries, list):
        return errors
    users = {str(u.get("name")) for u in _entries(values.get("af_users"))}
    for index, entry in enumerate(entries):
        where = f"htcondor_scitokens_extra_map[{index}]"
        if not isinstance(entry, Mapping):
            errors.append(
                f"{where} is not a mapping: write {{issuer: https://..., subject: ..., user: <facility user>}}"
            )
            continue
        issuer, subject, user = (entry.get(key) for key in ("issuer", "subject", "user"))
        if not (isinstance(issuer, str) and HTTPS_URL_RE.match(issuer.strip())):
            errors.append(f"{where}.issuer {issuer!r} is not an https URL: name the issuer exactly as its tokens' iss")
        if not (isinstance(subject, str) and subject.strip()) or any(c in str(subject) for c in '"\n\r'):
            errors.append(f"{where}.subject {subject!r} must be the token's sub, non-empty, without quotes or newlines")
        if user not in users:
            errors.append(f"{where}.user {user!r} is not a facility user: use the name of one of af_users")
    return errors


# --- 16e: logging in (OpenID Connect) ------------------------------------------------------------------

HTTPS_URL_RE = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^?#\s]*)?$")


def check_oidc_settings(values: Mapping) -> list[str]:
    """af_oidc_issuer_url must be an https URL (the hub fetches its discovery document and keys over TLS);
    a site whose users log in elsewhere (af_oidc_mode: external) names the issuer, the hub's client id and the
    file of its client secret."""
    errors = []
    issuer = values.get("af_oidc_issuer_url")
    if isinstance(issuer, str) and issuer.strip() and not HTTPS_URL_RE.match(issuer.strip()):
        errors.append(
            f"af_oidc_issuer_url '{issuer}' is not an https URL: OIDC issuers are trusted over HTTPS only "
            "(e.g. https://cilogon.org or https://cms-auth.cern.ch/)"
        )
    if values.get("af_oidc_mode") != "external":
        return errors
    needed = {
        "af_oidc_issuer_url": "the issuer's https URL (e.g. https://cilogon.org or https://cms-auth.cern.ch/)",
        "af_oidc_client_id": "the client id the issuer registered for the hub",
        "af_oidc_client_secret_file": "a controller file with the client secret the issuer gave "
        "(encrypt it with 'ansible-vault encrypt')",
    }
    for name, what in needed.items():
        value = values.get(name)
        if not (isinstance(value, str) and value.strip()):
            errors.append(
                f"af_oidc_mode is external but {name} is not set: set it in group_vars/all to {what} "
                "(see roles/oidc_provider/README.md for CILogon and CMS IAM)"
            )
    return errors


# --- 16d: the site container registry -------------------------------------------------------------------


def check_registry_storage(registry_hosts: Iterable[str], shared: Mapping[str, object]) -> list[str]:
    """Several registry hosts serve one image store: each must declare registry_storage_shared: true."""
    hosts = sorted(set(registry_hosts))
    unshared = [host for host in hosts if shared.get(host) is not True]
    if len(hosts) < 2 or not unshared:
        return []
    return [
        f"group 'registry' has {len(hosts)} hosts ({quote_list(hosts)}) but registry_storage_shared is not true on "
        f"{quote_list(unshared)}: every registry host must serve the same images from one storage directory; put "
        "registry_storage_dir on a file system all registry hosts share and set registry_storage_shared: true in "
        "group_vars/registry.yml, or keep exactly one host in group 'registry' in hosts.yml"
    ]


# --- 16: secrets in plain text ------------------------------------------------------------------------


def check_plaintext_secrets(values: Mapping, suffixes: Iterable[str], allowed: Iterable[str] = ()) -> list[str]:
    """Variables named *_password, *_secret, *_token, *_key hold vault-encrypted values, not plain text."""
    suffixes = tuple(suffixes)
    allowed = set(allowed)
    errors = []
    for name in sorted(values):
        if not name.endswith(suffixes) or name in allowed:
            continue
        value = values[name]
        if is_vaulted(value) or not isinstance(value, str) or not value.strip():
            continue
        errors.append(
            f"variable '{name}' holds a plain-text secret: encrypt it with ansible-vault "
            f"('ansible-vault encrypt_string --name {name}') and put the resulting '{name}: !vault |' block in "
            "the inventory instead (or keep it in a file encrypted with 'ansible-vault encrypt')"
        )
    return errors


# --- 17: values a template would read differently (strings where another type is expected) -------

TYPE_WORDS = {"bool": "a boolean", "int": "an integer", "float": "a number", "list": "a list", "dict": "a mapping"}
TYPE_FIXES = {
    "bool": "write true or false without quotes (a quoted 'no' is text, and text that is not empty is true in a "
    "template)",
    "int": "write the number without quotes",
    "float": "write the number without quotes",
    "list": "write a YAML list (one '- item' line per entry, or [a, b]); a single string is read as a list of "
    "its characters",
    "dict": "write a YAML mapping (key: value lines)",
}


def entry_name(where: str, index: int, item: object) -> str:
    """How a list entry is named in a message: by its 'name' (or 'client_id') when it has one, else its index."""
    if isinstance(item, Mapping):
        for key in ("name", "client_id"):
            if isinstance(item.get(key), str):
                return f"{where}[{index}] ('{item[key]}')"
    return f"{where}[{index}]"


def type_problems(where: str, value: object, option: Mapping) -> list[str]:
    """Values whose type is not the one the argument spec names, without the conversions Ansible's validation
    makes: a string where a bool, number, list or mapping is expected, or a bool where a number is.

    The roles use the raw value, so a conversion made only for the check would judge another value than the
    one a template reads. Sub-options and list elements are checked too.
    """
    kind = option.get("type", "str")
    problems = []
    if kind in ("bool", "int", "float", "list", "dict") and isinstance(value, str):
        problems.append(f"'{where}' is the string {value!r}, not {TYPE_WORDS[kind]}: {TYPE_FIXES[kind]}")
    elif kind in ("int", "float") and isinstance(value, bool):
        problems.append(f"'{where}' is {value!r}, a boolean, not {TYPE_WORDS[kind]}: write a number")
    elif kind == "list" and isinstance(value, list):
        element = {"type": option.get("elements", "raw"), "options": option.get("options")}
        for index, item in enumerate(value):
            problems += type_problems(entry_name(where, index, item), item, element)
    elif kind == "dict" and isinstance(value, Mapping) and isinstance(option.get("options"), Mapping):
        for key, sub in option["options"].items():
            if key in value and isinstance(sub, Mapping):
                problems += type_problems(f"{where}.{key}", value[key], sub)
    return problems


# --- 18: ranges, sizes and absolute paths -------------------------------------------------------------

# Integer options by name: (pattern, lowest, highest, unit). The first matching pattern applies.
NUMBER_RANGES: tuple[tuple[re.Pattern, int, int, str], ...] = (
    (re.compile(r"_port$"), 1, PORT_MAX, "a TCP port"),
    (re.compile(r"_(valid|renew)_days$"), 1, 36500, "days"),
    (re.compile(r"_password_length$"), 16, 1024, "characters"),
    (re.compile(r"_cull_idle_timeout$"), 0, 31536000, "seconds (0 turns culling off)"),
    (re.compile(r"_(lifetime|interval|horizon|renew_before|refresh_period)$"), 60, 31536000, "seconds"),
    (re.compile(r"_(timeout|cull_every)$"), 1, 86400, "seconds"),
    (re.compile(r"^chrony_local_stratum$"), 0, 15, "a stratum; 0: this host serves no time of its own"),
    (re.compile(r"_(retries|delay)$"), 1, 3600, "a count"),
    (re.compile(r"_cache_valid_time$"), 0, 31536000, "seconds"),
)

# String options that hold paths although their spec type is str (login shells, exported namespaces).
ABSOLUTE_PATH_NAMES = frozenset(
    {
        "accounts_default_shell",
        "xrootd_export",
        "xrootd_token_base_path",
        "user_credentials_data_write_base",
        "user_credentials_data_read_paths",
        "xrootd_public_paths",
        "facility_summary_file",
    }
)
# Sub-options that hold absolute paths: (option, sub-option).
ABSOLUTE_PATH_SUBOPTIONS = frozenset({("af_users", "shell"), ("af_service_accounts", "home")})

SIZE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[kmgtKMGT]?$")
FRACTION_RE = re.compile(r"^0?\.[0-9]+$|^0\.[0-9]+$")


def check_number_ranges(values: Mapping, options: Mapping[str, Mapping]) -> list[str]:
    """Integer options within sane bounds: ports 1-65535, lifetimes and validities above zero, ..."""
    errors = []
    for name in sorted(set(values) & set(options)):
        if (options[name] or {}).get("type") != "int":
            continue
        number = values[name]
        if isinstance(number, bool) or not isinstance(number, int):
            continue
        for pattern, low, high, unit in NUMBER_RANGES:
            if pattern.search(name):
                if not low <= number <= high:
                    errors.append(f"{name} is {number}, outside {low}-{high} ({unit}): set it within that range")
                break
    return errors


def _path_problem(value: object) -> bool:
    return isinstance(value, str) and bool(value) and not value.startswith("/")


def check_absolute_paths(values: Mapping, options: Mapping[str, Mapping]) -> list[str]:
    """Paths on the nodes are absolute: a relative path would depend on the directory a service starts in."""
    errors = []

    def refuse(where: str, value: object) -> None:
        errors.append(f"{where} {value!r} is not an absolute path: write the full path, starting with '/'")

    for name in sorted(set(values) & set(options)):
        option, value = options[name] or {}, values[name]
        if option.get("type") == "path" or name in ABSOLUTE_PATH_NAMES:
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                if _path_problem(item):
                    refuse(f"{name}[{index}]" if isinstance(value, list) else name, item)
        elif option.get("type") == "list" and option.get("elements") == "path" and isinstance(value, list):
            for index, item in enumerate(value):
                if _path_problem(item):
                    refuse(f"{name}[{index}]", item)
        suboptions = option.get("options") if isinstance(option.get("options"), Mapping) else {}
        for index, item in enumerate(value if isinstance(value, list) else []):
            if not isinstance(item, Mapping):
                continue
            for key, sub in suboptions.items():
                is_path = isinstance(sub, Mapping) and sub.get("type") == "path"
                if (is_path or (name, key) in ABSOLUTE_PATH_SUBOPTIONS) and _path_problem(item.get(key)):
                    refuse(f"{entry_name(name, index, item)}.{key}", item.get(key))
    return errors


def check_cache_sizes(values: Mapping) -> list[str]:
    """An XCache's RAM and disk watermarks: sizes such as 1g, watermarks as fractions (low below high) or sizes."""
    errors = []
    ram = values.get("xrootd_cache_ram")
    if isinstance(ram, str) and not SIZE_RE.match(ram.strip()):
        errors.append(f"xrootd_cache_ram {ram!r} is not a size: write a number with k, m, g or t (e.g. 2g)")
    marks = {}
    for name in ("xrootd_cache_disk_low", "xrootd_cache_disk_high"):
        mark = values.get(name)
        if not isinstance(mark, str):
            continue
        text = mark.strip()
        if FRACTION_RE.match(text) and 0 < float(text) < 1:
            marks[name] = float(text)
        elif not (SIZE_RE.match(text) and text[-1].isalpha()):
            errors.append(
                f"{name} {mark!r} is neither a fraction of the disk between 0 and 1 (e.g. '0.90') nor a size "
                "(e.g. '500g'): write one of them"
            )
    if len(marks) == 2 and marks["xrootd_cache_disk_low"] >= marks["xrootd_cache_disk_high"]:
        errors.append(
            f"xrootd_cache_disk_low ({marks['xrootd_cache_disk_low']:g}) is not below xrootd_cache_disk_high "
            f"({marks['xrootd_cache_disk_high']:g}): the cache purges from the high watermark down to the low one; "
            "make low smaller than high"
        )
    return errors


# --- 19: names that a later step refuses or changes -------------------------------------------------------

# Debian's adduser NAME_REGEX (without the trailing '$' of machine accounts), at most 32 characters (useradd).
ACCOUNT_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]*$")
ACCOUNT_NAME_MAX = 32


def check_account_names(groups: object, service_accounts: object, users: object) -> list[str]:
    """Account and group names that useradd/groupadd accept and that the hub's login keeps as they are."""
    errors = []
    entries = [("af_groups", e) for e in _entries(groups)] + _accounts(service_accounts, users)
    for var, entry in entries:
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if name != name.lower() and ACCOUNT_NAME_RE.match(name.lower()):
            errors.append(
                f"{var} entry '{name}' has capital letters: Debian's useradd refuses them and the hub lowercases "
                f"the name a user logs in with; write '{name.lower()}'"
            )
        elif not ACCOUNT_NAME_RE.match(name) or len(name) > ACCOUNT_NAME_MAX:
            errors.append(
                f"{var} entry '{name}' is not a valid account name: use at most {ACCOUNT_NAME_MAX} lowercase "
                "letters, digits, '_' and '-', starting with a letter or '_' (useradd refuses others)"
            )
    return sorted(errors)


# --- 20: copies of shared facts and renamed variables ----------------------------------------------------


def check_shared_fact_copies(values: Mapping, copies: Mapping[str, str], renamed: Mapping[str, str]) -> list[str]:
    """A role parameter that follows a shared fact (roles/af_defaults) is not set on its own: every service
    that uses the fact must agree, so the site sets the fact. A variable that was renamed is refused with its
    new name (the roles no longer read it, so it would be ignored)."""
    errors = []
    for name in sorted(set(values) & set(copies)):
        fact = copies[name]
        errors.append(
            f"{name} is set in the inventory, but it follows the shared fact {fact} (roles/af_defaults), which other "
            f"services read too: remove {name} and set {fact} instead, so that they all agree"
        )
    for name in sorted(set(values) & set(renamed)):
        errors.append(f"{name} is no longer read by any role: {renamed[name]}")
    return errors


# --- 21: relations between values on one host ----------------------------------------------------------------

# Who listens where: (group, variable holding the port, service). HTCondor's 9618 is fixed.
SERVICE_PORTS: tuple[tuple[str, str, str], ...] = (
    ("issuer", "af_token_issuer_port", "the token issuer"),
    ("registry", "af_registry_pull_port", "the registry's pull endpoint"),
    ("registry", "af_registry_push_port", "the registry's push endpoint"),
    ("hub", "af_hub_port", "JupyterHub"),
    ("oidc_provider", "af_oidc_provider_port", "the OIDC provider"),
    ("storage", "af_xrootd_port", "XRootD"),
    ("storage", "af_xrootd_https_port", "XRootD's HTTPS endpoint"),
    ("package_cache", "af_package_cache_port", "the package cache"),
    ("all", "nftables_ssh_port", "SSH"),
)
HTCONDOR_GROUPS = ("central_manager", "submit", "execute")
HTCONDOR_PORT = 9618


def check_port_clashes(groups_of_host: Iterable[str], values: Mapping) -> list[str]:
    """Two services of one host on one port: the second would not start."""
    mine = {*groups_of_host, "all"}
    users: dict[int, list[str]] = {}
    for group, name, service in SERVICE_PORTS:
        port = as_int(values.get(name))
        if group in mine and port is not None:
            users.setdefault(port, []).append(f"{service} ({name})")
    if mine & set(HTCONDOR_GROUPS):
        users.setdefault(HTCONDOR_PORT, []).append("HTCondor (fixed port 9618)")
    return [
        f"{WHERE}: port {port} is used by both {' and '.join(services)}: one of them would not start; give one "
        "of them another port in the inventory"
        for port, services in sorted(users.items())
        if len(services) > 1
    ]


# (certificate authority's validity, validity of what it signs, renewal margin or None, what they are)
VALIDITY_PAIRS = (
    ("site_pki_ca_valid_days", "site_pki_host_valid_days", "site_pki_renew_days", "the site CA and host certificates"),
    (
        "user_credentials_tls_ca_valid_days",
        "user_credentials_tls_valid_days",
        None,
        "the Dask TLS CA and users' certificates",
    ),
)
# (longer, shorter, what goes wrong when the shorter one is not shorter)
LIFETIME_PAIRS = (
    (
        "xrootd_cache_token_lifetime",
        "xrootd_cache_token_renew_before",
        "every converge would re-mint the XCache's token",
    ),
    (
        "user_credentials_data_token_lifetime",
        "user_credentials_data_token_interval",
        "users' queued tokens would leave gaps in which none is valid",
    ),
    (
        "user_credentials_data_token_lifetime",
        "user_credentials_token_refresh_period",
        "a token could expire before the refresh timer installs the next one",
    ),
    (
        "user_credentials_data_token_horizon",
        "user_credentials_data_token_renew_before",
        "every converge would re-sign users' token queues",
    ),
)


def check_validities(values: Mapping) -> list[str]:
    """A CA outlives the certificates it signs; a renewal margin is shorter than the validity; a token is
    refreshed before it expires."""
    errors = []
    for ca_name, cert_name, renew_name, what in VALIDITY_PAIRS:
        ca, cert = as_int(values.get(ca_name)), as_int(values.get(cert_name))
        if ca is not None and cert is not None and ca <= cert:
            errors.append(
                f"{ca_name} ({ca}) is not longer than {cert_name} ({cert}) ({what}): a certificate would outlive the "
                "CA that signed it and stop being trusted early; make the CA's validity the longer one"
            )
        renew = as_int(values.get(renew_name)) if renew_name else None
        if renew is not None and cert is not None and renew >= cert:
            errors.append(
                f"{renew_name} ({renew}) is not shorter than {cert_name} ({cert}): every converge would renew "
                "the certificates; make the renewal margin shorter than the validity"
            )
    for long_name, short_name, consequence in LIFETIME_PAIRS:
        long, short = as_int(values.get(long_name)), as_int(values.get(short_name))
        if long is not None and short is not None and short >= long:
            errors.append(
                f"{short_name} ({short}) is not shorter than {long_name} ({long}): {consequence}; make "
                f"{short_name} shorter"
            )
    return errors


def expected_issuer_url(values: Mapping) -> str | None:
    """The URL the site's own token issuer serves (https://<issuer host>[:port]), or None if unknown."""
    fqdn, port = values.get("af_issuer_fqdn"), as_int(values.get("af_token_issuer_port"))
    if not (isinstance(fqdn, str) and fqdn and port):
        return None
    return f"https://{fqdn}" + ("" if port == 443 else f":{port}")


def check_issuer_agreement(values: Mapping, inventory_values: Mapping, issuer_hosts: Iterable[str]) -> list[str]:
    """Tokens carry what they are checked against: the site's own issuer (token_issuer_mode local) serves its
    keys at https://<issuer host>[:af_token_issuer_port], so af_token_issuer_url (the iss in every token and
    the issuer every service trusts) is exactly that URL; the storage accepts the facility's own audience."""
    errors = []
    url = inventory_values.get("af_token_issuer_url")
    expected = expected_issuer_url(values)
    local_issuer = list(issuer_hosts) and values.get("token_issuer_mode", "local") == "local"
    if local_issuer and isinstance(url, str) and expected and url.strip() != expected:
        errors.append(
            f"af_token_issuer_url '{url}' is not the URL the site's token issuer serves ('{expected}', from "
            "group 'issuer' and af_token_issuer_port): tokens would carry an issuer whose keys nobody serves "
            "(a trailing slash counts); remove af_token_issuer_url from the inventory, or set "
            "token_issuer_mode: external for an issuer outside the site"
        )
    audiences = inventory_values.get("xrootd_token_audiences")
    audience = values.get("af_token_audience")
    if isinstance(audiences, list) and isinstance(audience, str) and audience and audience not in audiences:
        errors.append(
            f"xrootd_token_audiences {audiences!r} does not contain af_token_audience ('{audience}'), the audience "
            "of the facility's own data tokens: the storage would refuse them; add it to the list"
        )
    return errors


def check_cache_origin(host: str, values: Mapping, groups: Mapping[str, Iterable[str]]) -> list[str]:
    """An XCache names its origin: a host of group 'storage' other than itself, or host:port outside
    the inventory."""
    if values.get("xrootd_mode") != "cache":
        return []
    origin = values.get("xrootd_cache_origin")
    if not (isinstance(origin, str) and origin.strip()):
        return [
            f"{WHERE} is an XCache (xrootd_mode: cache) without an origin: set xrootd_cache_origin in "
            "host_vars/<cache>.yml to the inventory name of the XRootD origin it reads from (or host:port outside "
            "the site)"
        ]
    storage = set(groups.get("storage") or [])
    hosts = set(groups.get("all") or [])
    if origin == host:
        return ["xrootd_cache_origin names the cache itself: name the XRootD origin it reads from"]
    if origin in hosts and origin not in storage:
        return [f"xrootd_cache_origin '{origin}' is not in group 'storage': name an XRootD origin of group 'storage'"]
    if origin not in hosts and not re.match(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$", origin):
        return [
            f"xrootd_cache_origin '{origin}' is neither a host of the inventory nor host:port: name "
            f"the origin's inventory host (one of {quote_list(sorted(storage))}) or write host:port for a remote one"
        ]
    return []


# --- 22: groups the site's shape needs ---------------------------------------------------------------------------


def check_needed_groups(groups: Mapping[str, Iterable[str]], site_values: Mapping) -> list[str]:
    """Groups a service needs once another group has hosts: a hub needs the registry (the notebook and worker
    images), the token issuer (users' data tokens are signed with its key) and, with af_oidc_mode local, the
    OIDC provider."""

    def has(group: str) -> bool:
        return bool(list(groups.get(group) or []))

    errors = []
    # A pool without a hub (HTCondor alone, as a role test converges it) needs no image of the facility.
    if has("hub") and not has("registry"):
        errors.append(
            "group 'hub' has hosts but group 'registry' has none: users' notebooks and their Dask workers run the "
            "facility's images, which the site registry builds and serves; add a host to group 'registry' in hosts.yml"
        )
    if has("hub") and not has("issuer"):
        errors.append(
            "group 'hub' has hosts but group 'issuer' has none: users' data and compute tokens are signed with the "
            "site token issuer's key and checked against its published keys; add a host to group 'issuer'"
        )
    if has("storage") and not has("issuer") and not site_values.get("af_token_issuer_url"):
        errors.append(
            "group 'storage' has hosts but there is no token issuer: XRootD accepts bearer tokens of one issuer; add a "
            "host to group 'issuer', or set af_token_issuer_url to the https URL of the site's external issuer"
        )
    if has("hub") and site_values.get("af_oidc_mode", "local") == "local" and not has("oidc_provider"):
        errors.append(
            "group 'hub' has hosts and af_oidc_mode is local, but group 'oidc_provider' has none: nobody could log in; "
            "add a host to group 'oidc_provider', or set af_oidc_mode: external with af_oidc_issuer_url, "
            "af_oidc_client_id and af_oidc_client_secret_file for the site's identity provider (CILogon, CMS IAM)"
        )
    return errors


# --- 23: the Kubernetes cluster's networks -----------------------------------------------------------------------

K8S_VERSION_RE = re.compile(r"^1\.[0-9]+\.[0-9]+$")
DOCKER_DEFAULT_BRIDGE = "172.17.0.0/16"
DOCKER_GROUPS = ("execute", "registry", "hub")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(value: object) -> Network | None:
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return None


def _loose_network(value: object) -> Network | None:
    """The network a CIDR with host bits set means (10.244.0.1/16 -> 10.244.0.0/16), for the fix."""
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return None


def docker_bridges(groups_of_host: Iterable[str], values: Mapping) -> list[tuple[str, str]]:
    """The networks a host's Docker engine uses: (network, where it comes from)."""
    if not set(groups_of_host) & set(DOCKER_GROUPS):
        return []
    options = values.get("docker_engine_daemon_options")
    options = options if isinstance(options, Mapping) else {}
    bridges = []
    bip = options.get("bip")
    if bip is None:
        bridges.append((DOCKER_DEFAULT_BRIDGE, "Docker's default bridge (no docker_engine_daemon_options.bip)"))
    elif (network := _loose_network(bip)) is not None:
        bridges.append((str(network), "docker_engine_daemon_options.bip"))
    for index, pool in enumerate(options.get("default-address-pools") or []):
        if isinstance(pool, Mapping) and isinstance(pool.get("base"), str):
            bridges.append((pool["base"], f"docker_engine_daemon_options.default-address-pools[{index}]"))
    return bridges


def _k8s_formats(values: Mapping) -> tuple[list[str], dict[str, Network]]:
    """Release, domain and the two cluster networks in their forms; returns the networks that parse."""
    errors = []
    version = values.get("af_k8s_version")
    if isinstance(version, str) and not K8S_VERSION_RE.match(version):
        errors.append(
            f"af_k8s_version {version!r} is not a Kubernetes release: write major.minor.patch without a v, e.g. 1.36.2"
        )
    domain = values.get("af_k8s_cluster_domain")
    if isinstance(domain, str) and not valid_dns_name(domain):
        errors.append(f"af_k8s_cluster_domain {domain!r} is not a DNS domain: e.g. cluster.local")
    named = {}
    for name in ("af_k8s_pod_cidr", "af_k8s_service_cidr"):
        value = values.get(name)
        if value is None:
            continue
        if (network := _network(value)) is not None:
            named[name] = network
            continue
        loose = _loose_network(value)
        hint = f" (the network is {loose})" if loose is not None else ""
        errors.append(f"{name} {value!r} is not a network in CIDR form{hint}: e.g. 10.244.0.0/16")
    size = as_int(values.get("af_k8s_node_pod_cidr_size"))
    pods = named.get("af_k8s_pod_cidr")
    if pods is not None and size is not None and not pods.prefixlen < size <= pods.max_prefixlen - 4:
        errors.append(
            f"af_k8s_node_pod_cidr_size {size} does not fit af_k8s_pod_cidr {pods}: each node's part must be smaller "
            f"than the pod network and hold some pods (a prefix between {pods.prefixlen + 1} and "
            f"{pods.max_prefixlen - 4})"
        )
    return errors, named


def _other_networks(values: Mapping, bridges: Mapping[str, Iterable[tuple[str, str]]]):
    """The site's networks and the nodes' Docker bridges: (errors, [(where, network)])."""
    errors, others = [], []
    sites = values.get("af_site_networks")
    for index, value in enumerate(sites if isinstance(sites, list) else []):
        if (network := _network(value)) is None:
            errors.append(f"af_site_networks[{index}] {value!r} is not a network in CIDR form: e.g. 192.0.2.0/24")
        else:
            others.append((f"af_site_networks[{index}] ({network})", network))
    for host in sorted(bridges):
        for value, where in bridges[host]:
            if (network := _network(value)) is not None:
                others.append((f"host '{host}' {where} ({network})", network))
    return errors, others


def check_k8s_settings(values: Mapping, bridges: Mapping[str, Iterable[tuple[str, str]]]) -> list[str]:
    """The release and networks of the cluster: formats, a pod network that holds the nodes' parts, and no
    overlap between the pod and service networks, the site's networks (af_site_networks) and the Docker
    bridges of the nodes (bridges: host -> (network, where it is set))."""
    errors, named = _k8s_formats(values)
    more, others = _other_networks(values, bridges)
    errors += more
    if len(named) == 2 and named["af_k8s_pod_cidr"].overlaps(named["af_k8s_service_cidr"]):
        errors.append(
            f"af_k8s_pod_cidr ({named['af_k8s_pod_cidr']}) and af_k8s_service_cidr ({named['af_k8s_service_cidr']}) "
            "overlap: pods and Services need networks of their own; choose non-overlapping ranges"
        )
    for name, network in named.items():
        for where, other in others:
            if network.version == other.version and network.overlaps(other):
                errors.append(
                    f"{name} ({network}) overlaps {where}: packets for one would be routed to the other; choose "
                    f"another range for {name} (or for the other network)"
                )
    return errors


def warn_needed_groups(groups: Mapping[str, Iterable[str]]) -> list[str]:
    """Shapes that can be intended but break site.yml: warned about loudly, not refused."""

    def has(group: str) -> bool:
        return bool(list(groups.get(group) or []))

    if has("execute") and not has("hub") and not has("registry"):
        return [
            "group 'execute' has hosts but group 'registry' has none: execute nodes pre-pull the Dask worker image "
            "from the site registry, so site.yml would stop at its images play; add a host to group 'registry' "
            "(leave it empty only for a pool converged without site.yml, as the htcondor molecule scenario does)"
        ]
    return []


# --- Values that cannot be evaluated -------------------------------------------------------------------


def check_evaluation_errors(host_errors: Mapping[str, str]) -> list[str]:
    """Variables whose template failed when the inventory was read (reported by the role, per host)."""
    return [
        f"variable '{name}' cannot be evaluated from the inventory ({host_errors[name]}): define what it "
        "refers to in the inventory (group_vars/host_vars; role defaults are not visible here) or set the "
        "value literally"
        for name in sorted(host_errors)
    ]


# --- Everything ---------------------------------------------------------------------------------------


def spec_entry_point(entry_points: Mapping | None) -> Mapping:
    """The entry point of a role's argument_specs the check judges: 'main', or 'inventory' for a role whose
    values only the check validates (af_defaults: Ansible would otherwise validate them at every role start)."""
    entry_points = entry_points or {}
    return entry_points.get("main") or entry_points.get("inventory") or {}


def _specs_options(spec: Mapping | None) -> dict:
    """Accept either the options mapping or a whole meta/argument_specs.yml document."""
    if not isinstance(spec, Mapping):
        return {}
    if "argument_specs" in spec:
        spec = spec_entry_point(spec.get("argument_specs"))
    if "options" in spec and isinstance(spec.get("options"), Mapping):
        spec = spec["options"]
    return {k: v for k, v in spec.items() if isinstance(v, Mapping)}


def _check_host_values(
    values: Mapping, roles: Iterable[str], specs: Mapping[str, Mapping], settings: Mapping, unevaluable: Iterable[str]
) -> tuple[list[str], dict, set[str]]:
    """Type and required checks for one host (unevaluable: set, but their value is unknown).

    Returns the messages, the values to use for the later checks (converted as the roles' own validation
    converts them; vaulted values and values that fail validation left out) and the names that failed.
    """
    messages: list[str] = []
    clean = {k: v for k, v in values.items() if not is_vaulted(v)}
    invalid: set[str] = set()
    for role in roles:
        options = specs.get(role, {})
        if role in settings["required_roles"]:
            messages += check_required({**dict.fromkeys(unevaluable, "?"), **values}, options, role)
        for name in sorted(set(options) & set(clean)):
            errors, converted = check_types(name, clean[name], options[name], role)
            messages += errors
            if errors:
                invalid.add(name)
                clean.pop(name, None)
            else:
                clean[name] = converted
        checked = {name: clean[name] for name in set(options) & set(clean)}
        messages += check_number_ranges(checked, options)
        messages += check_absolute_paths(checked, options)
    return messages, clean, invalid


def _check_host_settings(values: Mapping) -> list[str]:
    """The checks of one host's own values."""
    return (
        check_ports(values)
        + check_time_source(values)
        + check_accounting_groups(values)
        + check_token_settings(values)
        + check_compute_token_settings(values)
        + check_oidc_settings(values)
        + check_cache_sizes(values)
    )


def _check_host_relations(
    host: str, host_group_names: Iterable[str], effective: Mapping, inventory_values: Mapping, groups: Mapping
) -> list[str]:
    """The relations between one host's values (effective: the inventory's values over the roles' defaults)."""
    messages = check_port_clashes(host_group_names, effective)
    messages += check_validities(effective)
    messages += check_issuer_agreement(effective, inventory_values, groups.get("issuer") or [])
    if host in (groups.get("storage") or []):
        messages += check_cache_origin(host, effective, groups)
    return messages


def check_inventory(
    groups: Mapping[str, Iterable[str]],
    hostvars: Mapping[str, Mapping],
    argument_specs: Mapping[str, Mapping],
    role_hosts: Mapping[str, Iterable[str]],
    settings: Mapping | None = None,
    *,
    evaluation_errors: Mapping[str, Mapping[str, str]] | None = None,
    defaults: Mapping[str, Mapping] | None = None,
) -> list[str]:
    """Run every check; return all problems (stable order: by check, then alphabetically).

    groups: Ansible's 'groups' (group -> hosts). hostvars: host -> {variable: value} for the variables
    defined in the inventory (vaulted values may be {"__ansible_vault": ...}). argument_specs: role ->
    options of its 'main' entry point (or the whole argument_specs document). role_hosts: role -> groups
    it runs on ('all' = every host). settings: see DEFAULT_SETTINGS. evaluation_errors: host ->
    {variable: why its template failed}. defaults: host -> {variable: value} of role defaults the
    inventory does not override (the relations between values are judged on what the roles will use).
    """
    settings = normalize_settings(settings)
    evaluation_errors = evaluation_errors or {}
    defaults = defaults or {}
    specs = {role: _specs_options(spec) for role, spec in (argument_specs or {}).items()}
    membership = host_groups(groups)
    all_hosts = sorted(set(groups.get("all") or []) | set(membership) | set(hostvars))
    single = dict(settings["single_host_groups"] or {})

    errors: list[str] = []
    errors += check_required_groups(groups, settings["required_node_roles"], single)
    errors += check_single_host_groups(groups, single)
    for host in all_hosts:
        errors += check_hostname(host)
        errors += check_node_role(host, membership.get(host, set()), settings["node_roles"])
        errors += check_role_conflicts(host, membership.get(host, set()), settings["node_role_conflicts"])

    findings: list[tuple[str, str]] = []
    clean_hostvars: dict[str, dict] = {}
    bridges: dict[str, list[tuple[str, str]]] = {}
    site_values: dict[str, Mapping] = {}  # the first host's effective values, for the site-wide checks
    registry_hosts = sorted(set(groups.get("registry") or []))
    registry_shared: dict[str, object] = {}
    for host in all_hosts:
        unevaluable = dict(evaluation_errors.get(host) or {})
        values = {k: v for k, v in (hostvars.get(host) or {}).items() if k not in unevaluable}
        roles = roles_for_host(membership.get(host, set()), role_hosts)
        messages, clean, invalid = _check_host_values(values, roles, specs, settings, unevaluable)
        messages += check_evaluation_errors(unevaluable)
        # Values that cannot be evaluated, are vaulted or have the wrong type are not checked further.
        skip = set(unevaluable) | invalid | {k for k, v in values.items() if is_vaulted(v)}
        if "af_site_name" not in skip:
            messages += check_site_name(clean.get("af_site_name"))
        if "af_domain" not in skip:
            messages += check_domain(clean.get("af_domain"))
        messages += _check_host_settings(clean)
        messages += check_shared_fact_copies(values, settings["shared_fact_copies"], settings["renamed_vars"])
        # Relations are judged on what the roles will use: the inventory's values over the roles' defaults.
        effective = {**(defaults.get(host) or {}), **{k: v for k, v in clean.items() if k not in skip}}
        messages += _check_host_relations(host, membership.get(host, set()), effective, clean, groups)
        bridges[host] = docker_bridges(membership.get(host, set()), clean)
        site_values.setdefault("values", effective)
        if host in registry_hosts:
            registry_shared[host] = clean.get("registry_storage_shared", False)
        messages += check_plaintext_secrets(values, settings["secret_suffixes"], settings["plaintext_allowed"])
        findings += [(host, m) for m in messages]
        if not skip & {"af_groups", *ACCOUNT_LISTS}:
            clean_hostvars[host] = clean
    errors += merge_host_findings(findings, all_hosts)
    errors += check_registry_storage(registry_hosts, registry_shared)
    first = all_hosts[0] if all_hosts else None
    errors += check_needed_groups(groups, {**(defaults.get(first) or {}), **(hostvars.get(first) or {})})
    errors += check_k8s_settings(site_values.get("values") or {}, bridges)

    errors += check_same_everywhere(hostvars, settings["same_everywhere"], all_hosts)
    errors += _check_account_sets(clean_hostvars, all_hosts, settings)
    return list(dict.fromkeys(errors))


def _check_account_sets(clean_hostvars: Mapping[str, Mapping], all_hosts: list[str], settings: Mapping) -> list[str]:
    """Account checks once per distinct set of account/group lists (normally one set for all hosts).

    Hosts missing from clean_hostvars have account lists that could not be checked (already reported).
    """
    sets: dict[str, list[str]] = {}
    names = ("af_groups", *ACCOUNT_LISTS)
    for host in (h for h in all_hosts if h in clean_hostvars):
        key = canonical({n: clean_hostvars[host].get(n) for n in names})
        sets.setdefault(key, []).append(host)
    findings = []
    for hosts in sets.values():
        values = clean_hostvars[hosts[0]]
        for message in check_accounts(values, settings):
            findings += [(host, message) for host in hosts]
    if len(sets) == 1:
        return sorted({m for _, m in findings})
    return merge_host_findings(findings, all_hosts)


def format_errors(errors: list[str]) -> str:
    """The errors as the numbered list shown to the user."""
    count = len(errors)
    if count == 1:
        lines = ["The inventory has 1 problem; fix it and run again:"]
    else:
        lines = [f"The inventory has {count} problems; fix them and run again:"]
    lines += [f"{i}. {e}" for i, e in enumerate(errors, 1)]
    return "\n".join(lines)
