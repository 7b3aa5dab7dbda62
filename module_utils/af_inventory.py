"""Inventory checks run on the controller before any host is touched (see roles/validate_inventory).

Pure Python: the standard library plus Ansible's ArgumentSpecValidator. Every check is a small function
that returns a sorted list of messages; each message names the variable, group or host and says how to
fix it. ``check_inventory`` runs them all and returns every problem, not only the first one.

Per-host findings that are identical on several hosts are merged into one message that lists the hosts
("all hosts" when every host has it, which usually means the value comes from group_vars/all).
"""

from __future__ import annotations

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
}

# The registry ports' defaults (roles/af_defaults/defaults/main.yml; a unit test keeps them equal): the
# inventory check sees inventory values only, so a port left at its default is taken from here.
REGISTRY_DEFAULT_PORTS = {"af_registry_pull_port": 5000, "af_registry_push_port": 5001}

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
    """The inventory hostname is a valid DNS name (it becomes the node's name and FQDN)."""
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

    Returns (messages, value converted as the role's own validation would convert it).
    """
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
    """Account and group lists have the same value on every host (same UIDs/GIDs on every node)."""
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
        errors.append(
            f"variable '{name}' is not the same on every host ({described}): accounts and groups must be "
            f"identical on every node (same UIDs and GIDs everywhere); define {name} once in the inventory's "
            "group_vars/all and remove the host_vars/group_vars override"
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


def check_registry_ports(values: Mapping) -> list[str]:
    """A registry host's pull and push endpoints are separate servers: they need different ports."""
    pull, push = (as_int(values.get(name, default)) for name, default in REGISTRY_DEFAULT_PORTS.items())
    if pull is None or pull != push:
        return []
    return [
        f"af_registry_pull_port and af_registry_push_port are both {pull}: the anonymous, read-only pull endpoint and "
        "the authenticated push endpoint are separate servers and need ports of their own; set one of them to "
        f"another port (defaults {REGISTRY_DEFAULT_PORTS['af_registry_pull_port']} and "
        f"{REGISTRY_DEFAULT_PORTS['af_registry_push_port']})"
    ]


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


def _specs_options(spec: Mapping | None) -> dict:
    """Accept either the options mapping or a whole meta/argument_specs.yml document."""
    if not isinstance(spec, Mapping):
        return {}
    if "argument_specs" in spec:
        spec = (spec.get("argument_specs") or {}).get("main") or {}
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
    return messages, clean, invalid


def check_inventory(
    groups: Mapping[str, Iterable[str]],
    hostvars: Mapping[str, Mapping],
    argument_specs: Mapping[str, Mapping],
    role_hosts: Mapping[str, Iterable[str]],
    settings: Mapping | None = None,
    *,
    evaluation_errors: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Run every check; return all problems (stable order: by check, then alphabetically).

    groups: Ansible's 'groups' (group -> hosts). hostvars: host -> {variable: value} for the variables
    defined in the inventory (vaulted values may be {"__ansible_vault": ...}). argument_specs: role ->
    options of its 'main' entry point (or the whole argument_specs document). role_hosts: role -> groups
    it runs on ('all' = every host). settings: see DEFAULT_SETTINGS. evaluation_errors: host ->
    {variable: why its template failed}.
    """
    settings = normalize_settings(settings)
    evaluation_errors = evaluation_errors or {}
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
        messages += check_ports(clean)
        messages += check_time_source(clean)
        messages += check_accounting_groups(clean)
        messages += check_token_settings(clean)
        messages += check_compute_token_settings(clean)
        messages += check_oidc_settings(clean)
        if host in registry_hosts:
            messages += check_registry_ports(clean)
            registry_shared[host] = clean.get("registry_storage_shared", False)
        messages += check_plaintext_secrets(values, settings["secret_suffixes"], settings["plaintext_allowed"])
        findings += [(host, m) for m in messages]
        if not skip & {"af_groups", *ACCOUNT_LISTS}:
            clean_hostvars[host] = clean
    errors += merge_host_findings(findings, all_hosts)
    errors += check_registry_storage(registry_hosts, registry_shared)

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
