"""Unit tests of module_utils/af_inventory.py (every check on its own, then check_inventory on real data) and of
the collection logic of the af_inventory_check action plugin (roles/validate_inventory/action_plugins/)."""

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import af_inventory as inv
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import EncryptedString, VaultedValue, VaultLib, VaultSecret
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[2]
ALL_HOSTS = ["exec1", "exec2", "head"]


def _yaml(path: str):
    return yaml.safe_load((REPO / path).read_text())


@pytest.fixture(scope="module")
def af_defaults():
    return _yaml("roles/af_defaults/defaults/main.yml")


@pytest.fixture(scope="module")
def af_spec():
    return _yaml("roles/af_defaults/meta/argument_specs.yml")["argument_specs"]["inventory"]["options"]


@pytest.fixture(scope="module")
def site():
    """The local testbed's site variables (inventories/local/group_vars/all/site.yml)."""
    return _yaml("inventories/local/group_vars/all/site.yml")


@pytest.fixture(scope="module")
def ciphertext():
    return VaultLib([("default", VaultSecret(b"test-vault-password"))]).encrypt("hunter2").decode()


# --- helpers --------------------------------------------------------------------------------------


def test_hosts_phrase():
    assert inv.hosts_phrase(["a"], ["a", "b"]) == "host 'a'"
    assert inv.hosts_phrase(["b", "a"], ["a", "b", "c"]) == "hosts 'a', 'b'"
    assert inv.hosts_phrase(["b", "a"], ["a", "b"]) == "all hosts"


def test_merge_host_findings_names_every_host_once():
    findings = [
        ("exec2", "x is bad"),
        ("exec1", "x is bad"),
        ("head", "y is bad"),
        ("head", f"{inv.WHERE} {inv.HAS} z"),
    ]
    assert inv.merge_host_findings(findings, ALL_HOSTS) == [
        "host 'head' has z",
        "host 'head': y is bad",
        "hosts 'exec1', 'exec2': x is bad",
    ]
    assert inv.merge_host_findings([(h, f"{inv.WHERE} {inv.HAS} z") for h in ALL_HOSTS], ALL_HOSTS) == [
        "all hosts have z"
    ]


def test_host_groups_and_roles_for_host():
    groups = {"all": ["head", "exec1"], "ungrouped": [], "central_manager": ["head"], "execute": ["exec1"]}
    membership = inv.host_groups(groups)
    assert membership == {"head": {"central_manager"}, "exec1": {"execute"}}
    role_hosts = {"af_defaults": ["all"], "htcondor": ["central_manager", "submit"], "none": []}
    assert inv.roles_for_host(membership["head"], role_hosts) == ["af_defaults", "htcondor"]
    assert inv.roles_for_host(membership["exec1"], role_hosts) == ["af_defaults"]


def test_format_errors_numbers_the_list():
    assert inv.format_errors(["a"]) == "The inventory has 1 problem; fix it and run again:\n1. a"
    assert inv.format_errors(["a", "b"]).splitlines() == [
        "The inventory has 2 problems; fix them and run again:",
        "1. a",
        "2. b",
    ]


# --- 1, 2: site identity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["af-testbed", "t3", "a", "unl-t3-2"])
def test_site_name_valid(value):
    assert inv.check_site_name(value) == []


def test_site_name_missing_or_empty():
    assert inv.check_site_name(None) == [
        "af_site_name is not set: set af_site_name in the inventory's group_vars/all, e.g. af_site_name: my-t3 "
        "(lowercase letters, digits and '-')"
    ]
    assert inv.check_site_name("  ")[0].startswith("af_site_name is empty: set af_site_name")


@pytest.mark.parametrize("value", ["AF", "my_t3", "-t3", "t3-", "my.t3", "x" * 64])
def test_site_name_invalid(value):
    [message] = inv.check_site_name(value)
    assert f"af_site_name '{value}' is not a valid site name" in message
    assert "lowercase letters, digits and '-'" in message


@pytest.mark.parametrize("value", ["af.test", "t3.example.edu", "localdomain", "a-b.c-d.org"])
def test_domain_valid(value):
    assert inv.check_domain(value) == []


@pytest.mark.parametrize("value", ["af..test", "Example.org", "-a.org", "a_b.org", "a.org.", "a." + "x" * 64])
def test_domain_invalid(value):
    [message] = inv.check_domain(value)
    assert f"af_domain '{value}' is not a valid DNS domain" in message
    assert "e.g. t3.example.edu" in message


def test_domain_missing_or_empty():
    assert inv.check_domain(None)[0].startswith("af_domain is not set: set af_domain in the inventory's group_vars/all")
    assert inv.check_domain("")[0].startswith("af_domain is empty")


# --- 3 - 7: groups and hosts -------------------------------------------------------------------------------


def test_required_groups():
    single = {"central_manager": "no HA"}
    assert inv.check_required_groups({"central_manager": ["head"]}, ["central_manager"], single) == []
    assert inv.check_required_groups({"central_manager": []}, ["central_manager"], single) == [
        "required node role 'central_manager' has no host (af_required_node_roles): "
        "add exactly one host to group 'central_manager' in hosts.yml"
    ]
    [message] = inv.check_required_groups({}, ["storage"], single)
    assert "add at least one host to group 'storage' in hosts.yml" in message


def test_single_host_groups():
    single = {"central_manager": "these roles do not set up a highly-available central manager"}
    assert inv.check_single_host_groups({"central_manager": ["head"]}, single) == []
    assert inv.check_single_host_groups({"central_manager": ["head2", "head"]}, single) == [
        "group 'central_manager' has 2 hosts ('head', 'head2'): keep exactly one host in group 'central_manager' in "
        "hosts.yml; these roles do not set up a highly-available central manager"
    ]


def test_role_conflicts_print_the_reason(af_defaults):
    conflicts = af_defaults["af_node_role_conflicts"]
    assert inv.check_role_conflicts("services", {"issuer", "hub", "registry"}, conflicts) == []
    [message] = inv.check_role_conflicts("exec1", {"execute", "hub"}, conflicts)
    assert message.startswith("host 'exec1' is in groups 'execute' and 'hub', which must not share a host")
    assert "must not hold the hub's OIDC client secret" in message
    assert message.endswith("move one of these roles to another host in hosts.yml")
    assert len(inv.check_role_conflicts("x", {"execute", "hub", "issuer"}, conflicts)) == 2
    assert inv.check_role_conflicts("x", {"execute"}, ["garbage", {"roles": "execute"}]) == []


def test_node_role(af_defaults):
    roles = af_defaults["af_node_roles"]
    assert inv.check_node_role("head", {"central_manager"}, roles) == []
    [message] = inv.check_node_role("extra", {"site_a"}, roles)
    assert message.startswith("host 'extra' has no node role: add it to one of the groups central_manager, submit,")
    assert "in hosts.yml" in message


@pytest.mark.parametrize("host", ["head", "exec1", "node-01.t3.example.edu"])
def test_hostname_valid(host):
    assert inv.check_hostname(host) == []


def test_hostname_that_is_an_address_is_refused_with_ansible_host_as_the_fix():
    for host in ("10.0.0.1", "fd00::1"):
        (message,) = inv.check_hostname(host)
        assert f"host '{host}' is an IP address" in message
        assert f"put the address in its ansible_host (e.g. t3-node01: {{ansible_host: {host}}})" in message


@pytest.mark.parametrize(
    ("host", "suggestion"), [("exec_1", "exec-1"), ("Head", "head"), ("-x", "x"), ("a..b", "a..b"), ("a b", "a-b")]
)
def test_hostname_invalid(host, suggestion):
    [message] = inv.check_hostname(host)
    assert message.startswith(f"host '{host}' is not a valid DNS name: rename it in hosts.yml")
    assert message.endswith(f"e.g. '{suggestion}'")


# --- 8 - 11: accounts ------------------------------------------------------------------------------------


def test_accounts_of_the_testbed_are_fine(site):
    assert inv.check_accounts(site, inv.DEFAULT_SETTINGS) == []


def test_duplicate_uid_names_both_accounts(site):
    users = copy.deepcopy(site["af_users"])
    users[1]["uid"] = 2001
    assert inv.check_duplicate_uids(site["af_service_accounts"], users) == [
        "UID 2001 is used by both 'alice' (af_users) and 'bob' (af_users): give each account its own UID "
        "(UIDs must be unique on every node)"
    ]
    services = [{"name": "condor", "uid": "2002"}]
    [message] = inv.check_duplicate_uids(services, site["af_users"])
    assert "UID 2002 is used by both 'condor' (af_service_accounts) and 'bob' (af_users)" in message


def test_duplicate_account_name(site):
    users = [*site["af_users"], {"name": "condor", "uid": 2009, "group": "af-users"}]
    assert inv.check_duplicate_account_names(site["af_service_accounts"], users) == [
        "account name 'condor' is defined twice (in af_service_accounts and af_users): keep one entry per account name"
    ]


def test_duplicate_group_name_and_gid(site):
    groups = [*site["af_groups"], {"name": "condor", "gid": 980}, {"name": "extra", "gid": 2000}]
    assert inv.check_duplicate_groups(groups) == [
        "GID 2000 is used by both groups 'af-users' and 'extra' in af_groups: give each group its own GID",
        "group name 'condor' is defined twice in af_groups: keep one entry per group name",
    ]


def test_group_references(site):
    users = copy.deepcopy(site["af_users"])
    users[0]["group"] = "af-user"
    users[2]["groups"] = ["af-admins", "wheel"]
    assert inv.check_group_references(site["af_groups"], site["af_service_accounts"], users) == [
        "account 'alice' (af_users): primary group 'af-user' is not defined in af_groups: add "
        "{name: af-user, gid: <free GID>} to af_groups, or fix the group name",
        "account 'carol' (af_users): supplementary group 'wheel' is not defined in af_groups: add "
        "{name: wheel, gid: <free GID>} to af_groups, or remove it from the account's groups",
    ]


def test_uid_ranges(site):
    services = copy.deepcopy(site["af_service_accounts"])
    services[0]["uid"] = 1970
    users = copy.deepcopy(site["af_users"])
    users[0]["uid"] = 70000
    users[1]["uid"] = 999
    messages = inv.check_uid_ranges(services, users, [100, 999], [1000, 59999])
    assert messages == [
        "service account 'condor' (af_service_accounts) has UID 1970, outside the system range 100-999: Debian's "
        "adduser --system refuses to create a system user with a UID outside that range; pick a free UID in 100-999",
        "user 'alice' (af_users) has UID 70000, outside 1000-59999: pick a free UID in 1000-59999 "
        "(Debian's range for normal users)",
        "user 'bob' (af_users) has UID 999, outside 1000-59999: pick a free UID in 1000-59999 "
        "(Debian's range for normal users)",
    ]


def test_account_checks_ignore_malformed_entries():
    # Wrong shapes are the type check's business; the account checks must not crash on them.
    malformed = {"af_users": "alice", "af_groups": [1, None], "af_service_accounts": [{}]}
    assert inv.check_accounts(malformed, inv.DEFAULT_SETTINGS) == []


# --- 12: types -----------------------------------------------------------------------------------------


def test_types_accept_values_of_the_right_type(af_spec):
    users = [{"name": "a", "uid": 2001, "group": "g"}]
    messages, converted = inv.check_types("af_users", users, af_spec["af_users"], "af_defaults")
    assert messages == []
    assert converted[0]["uid"] == 2001
    assert inv.check_types("af_site_name", "x", af_spec["af_site_name"], "af_defaults") == ([], "x")
    assert inv.check_types("af_hub_port", 8443, af_spec["af_hub_port"], "af_defaults") == ([], 8443)


def test_types_users_as_string(af_spec):
    [message], _ = inv.check_types("af_users", "alice", af_spec["af_users"], "af_defaults")
    assert message.startswith("variable 'af_users' is the string 'alice', not a list: write a YAML list")
    assert "a single string is read as a list of its characters" in message
    assert message.endswith("(argument spec of role 'af_defaults': roles/af_defaults/meta/argument_specs.yml)")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("af_hub_port", "8443", "'af_hub_port' is the string '8443', not an integer: write the number without quotes"),
        ("af_hub_port", True, "'af_hub_port' is True, a boolean, not an integer: write a number"),
        ("af_oidc_scopes", "openid", "'af_oidc_scopes' is the string 'openid', not a list"),
        ("af_fqdn_overrides", "head=h.x", "'af_fqdn_overrides' is the string 'head=h.x', not a mapping"),
        # Inside a list: the entry is named by its index and its name.
        (
            "af_users",
            [{"name": "a", "uid": 2001, "group": "g"}, {"name": "bob", "uid": "2002", "group": "g"}],
            "'af_users[1] ('bob').uid' is the string '2002', not an integer",
        ),
        (
            "af_users",
            [{"name": "a", "uid": 2001, "group": "g", "groups": "wheel"}],
            "'af_users[0] ('a').groups' is the string 'wheel', not a list",
        ),
    ],
)
def test_types_refuse_a_string_where_the_role_reads_another_type(af_spec, name, value, expected):
    """Not converted: the roles use the raw value (a quoted 'no' is true in a template)."""
    [message], unchanged = inv.check_types(name, value, af_spec[name], "af_defaults")
    assert message.startswith(f"variable {expected}")
    assert unchanged is value


def test_types_refuse_a_quoted_boolean():
    [message], _ = inv.check_types("baseline_manage_etc_hosts", "no", {"type": "bool"}, "baseline")
    assert message == (
        "variable 'baseline_manage_etc_hosts' is the string 'no', not a boolean: write true or false without quotes "
        "(a quoted 'no' is text, and text that is not empty is true in a template) (argument spec of role "
        "'baseline': roles/baseline/meta/argument_specs.yml)"
    )


def test_types_account_without_uid_and_unknown_key(af_spec):
    [message], _ = inv.check_types(
        "af_users", [{"name": "a", "group": "g", "uidd": 1}], af_spec["af_users"], "af_defaults"
    )
    assert "missing required arguments: uid found in af_users" in message
    assert "unknown key af_users.uidd" in message


def test_required(af_spec):
    options = {**af_spec, "af_extra": {"type": "str", "required": True, "description": "Something."}}
    assert inv.check_required({"af_extra": "x"}, options, "af_defaults") == []
    # af_site_name and af_domain have their own, more specific checks.
    assert inv.check_required({}, options, "af_defaults") == [
        "af_extra is not set, but role 'af_defaults' requires it: set af_extra in the inventory's group_vars/all "
        "(Something.)"
    ]
    assert inv.check_required({"af_extra": ""}, options, "af_defaults")[0].startswith("af_extra is empty")


# --- 13: identical everywhere ---------------------------------------------------------------------------


def test_same_everywhere(site):
    same = {h: {"af_users": site["af_users"]} for h in ALL_HOSTS}
    assert inv.check_same_everywhere(same, ["af_users"], ALL_HOSTS) == []
    differs = copy.deepcopy(same)
    differs["exec1"]["af_users"] = site["af_users"][:1]
    assert inv.check_same_everywhere(differs, ["af_users"], ALL_HOSTS) == [
        "variable 'af_users' is not the same on every host (hosts 'exec2', 'head' have one value; host 'exec1' has "
        "another value): accounts and groups must be identical on every node (same UIDs and GIDs everywhere); define "
        "af_users once in the inventory's group_vars/all and remove the host_vars/group_vars override"
    ]
    del differs["exec1"]["af_users"]
    [message] = inv.check_same_everywhere(differs, ["af_users"], ALL_HOSTS)
    assert "host 'exec1' has it unset" in message


# --- 14: ports -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["22/tcp", "123/udp", "1/tcp", "65535/udp", "30000-32767/tcp", "9618-9618/tcp"])
def test_port_valid(port):
    assert inv.port_problem(port) is None


@pytest.mark.parametrize(
    ("port", "problem"),
    [
        ("22", "not in the form"),
        ("22/sctp", "not in the form"),
        (22, "not in the form"),
        ("0/tcp", "out of range"),
        ("70000/tcp", "out of range"),
        ("100000/tcp", "not in the form"),
        ("9620-9618/tcp", "reversed"),
        ("٢٢/tcp", "not in the form"),
    ],
)
def test_port_invalid(port, problem):
    assert problem in inv.port_problem(port)


def test_check_ports():
    assert inv.check_ports({"nftables_extra_ports": ["123/udp"], "nftables_role_ports": {"submit": ["9618/tcp"]}}) == []
    messages = inv.check_ports(
        {"nftables_extra_ports": ["70000/tcp"], "nftables_role_ports": {"submit": ["9620-9618/tcp"]}}
    )
    assert messages[0].startswith(
        "nftables_extra_ports entry '70000/tcp' is not a valid port (port out of range 1-65535)"
    )
    assert messages[1].startswith("nftables_role_ports['submit'] entry '9620-9618/tcp' is not a valid port")
    assert "with ports 1-65535 and low <= high" in messages[1]
    assert inv.check_ports({"nftables_extra_ports": "22/tcp"}) == [
        "nftables_extra_ports must be a list of port strings such as ['9618/tcp', '123/udp']"
    ]
    assert "must be a mapping" in inv.check_ports({"nftables_role_ports": ["22/tcp"]})[0]
    assert "must be a list" in inv.check_ports({"nftables_role_ports": {"submit": "22/tcp"}})[0]


# --- 15: time source -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"chrony_servers": ["head.af.test"]},
        {"chrony_servers": [], "chrony_local_stratum": 8},
        {"chrony_servers": [], "chrony_local_stratum": "10"},
        {"chrony_servers": [], "chrony_pools": ["2.debian.pool.ntp.org"]},
    ],
)
def test_time_source_ok(values):
    assert inv.check_time_source(values) == []


@pytest.mark.parametrize("stratum", [None, 0, -1, True, "eight"])
def test_no_time_source(stratum):
    values = {"chrony_servers": []} if stratum is None else {"chrony_servers": [], "chrony_local_stratum": stratum}
    [message] = inv.check_time_source(values)
    merged = inv.merge_host_findings([("head", message)], ALL_HOSTS)
    assert merged[0].startswith(
        "host 'head' has no time source: set chrony_servers (or chrony_local_stratum for the site's time master)"
    )


# --- 16: secrets -----------------------------------------------------------------------------------------


def test_is_vaulted_real_vault_values(ciphertext):
    from ansible.parsing.yaml.objects import AnsibleVaultEncryptedUnicode  # noqa: PLC0415 - legacy name, 2.19+

    assert inv.is_vaulted(EncryptedString(ciphertext=ciphertext))
    assert inv.is_vaulted(AnsibleVaultEncryptedUnicode(ciphertext))
    document = "x_password: !vault |\n" + "".join(f"  {line}\n" for line in ciphertext.splitlines())
    assert inv.is_vaulted(yaml.load(document, Loader=AnsibleLoader)["x_password"])  # noqa: S506 - Ansible's loader
    # A decrypted value still carries its VaultedValue tag.
    assert inv.is_vaulted(VaultedValue(ciphertext=ciphertext).tag("hunter2"))
    # What the role passes to the module for a vaulted value.
    assert inv.is_vaulted({"__ansible_vault": ciphertext})


def test_is_vaulted_refuses_plain_values(ciphertext):
    assert not inv.is_vaulted("hunter2")
    assert not inv.is_vaulted(ciphertext)  # ciphertext pasted without the !vault tag is just a string
    assert not inv.is_vaulted({"a": 1})
    assert not inv.is_vaulted(None)
    assert not inv.is_vaulted(yaml.load("x: plain", Loader=AnsibleLoader)["x"])  # noqa: S506 - Ansible's loader


def test_plaintext_secret_refused_vaulted_accepted(ciphertext):
    suffixes = inv.DEFAULT_SETTINGS["secret_suffixes"]
    values = {
        "hub_client_secret": "hunter2",
        "registry_password": EncryptedString(ciphertext=ciphertext),
        "issuer_key": {"__ansible_vault": ciphertext},
        "api_token": "",
        "site_pki_host_key_path": "/etc/ssl/private/host.key",
        "computed_key": "abc",
    }
    assert inv.check_plaintext_secrets(values, suffixes, ["computed_key"]) == [
        "variable 'hub_client_secret' holds a plain-text secret: encrypt it with ansible-vault ('ansible-vault "
        "encrypt_string --name hub_client_secret') and put the resulting 'hub_client_secret: !vault |' block in the "
        "inventory instead (or keep it in a file encrypted with 'ansible-vault encrypt')"
    ]
    assert "hunter2" not in inv.check_plaintext_secrets(values, suffixes)[0]


# --- evaluation errors ---------------------------------------------------------------------------------


def test_evaluation_errors():
    assert inv.check_evaluation_errors({"chrony_allow": "'x' is undefined"}) == [
        "variable 'chrony_allow' cannot be evaluated from the inventory ('x' is undefined): define what it refers to "
        "in the inventory (group_vars/host_vars; role defaults are not visible here) or set the value literally"
    ]


# --- check_inventory on the testbed's data ------------------------------------------------------------


@pytest.fixture
def testbed(site, af_defaults, af_spec):
    """check_inventory's arguments for (a cut-down) inventories/local."""
    groups = {
        "all": ["head", "submit", "exec1", "exec2", "services"],
        "ungrouped": [],
        "central_manager": ["head"],
        "submit": ["submit"],
        "execute": ["exec1", "exec2"],
        "issuer": ["services"],
        "hub": ["services"],
        "registry": ["services"],
        "oidc_provider": ["services"],
    }
    common = {**site, "chrony_servers": ["head.af.test"]}
    hostvars = {host: copy.deepcopy(common) for host in groups["all"]}
    hostvars["head"].update(chrony_servers=[], chrony_local_stratum=8, nftables_extra_ports=["123/udp"])
    return {
        "groups": groups,
        "hostvars": hostvars,
        "argument_specs": {"af_defaults": {"argument_specs": {"main": {"options": af_spec}}}},
        "role_hosts": {"af_defaults": ["all"], "chrony": ["all"], "htcondor": ["central_manager"]},
        "settings": {
            "node_roles": af_defaults["af_node_roles"],
            "required_node_roles": af_defaults["af_required_node_roles"],
            "node_role_conflicts": af_defaults["af_node_role_conflicts"],
            "single_host_groups": {"central_manager": "no HA"},
        },
    }


def test_check_inventory_accepts_the_testbed(testbed):
    assert inv.check_inventory(**testbed) == []


def test_check_inventory_reports_every_problem_in_a_stable_order(testbed):
    testbed["groups"]["central_manager"] = []
    testbed["groups"]["execute"].append("services")
    testbed["groups"]["all"].append("odd_host")
    testbed["hostvars"]["odd_host"] = copy.deepcopy(testbed["hostvars"]["submit"])
    for values in testbed["hostvars"].values():
        values["af_site_name"] = "Bad_Name"
        values["af_users"][1]["uid"] = 2001
    testbed["hostvars"]["exec1"]["af_groups"] = "oops"
    testbed["hostvars"]["exec2"].update({"hub_secret": "plain"})
    errors = inv.check_inventory(**testbed, evaluation_errors={"submit": {"chrony_allow": "'x' is undefined"}})
    expected_starts = [
        "required node role 'central_manager' has no host",
        "host 'head' has no node role",
        "host 'odd_host' is not a valid DNS name",
        "host 'odd_host' has no node role",
        "host 'services' is in groups 'execute' and 'hub'",
        "host 'services' is in groups 'execute' and 'issuer'",
        "host 'services' is in groups 'execute' and 'oidc_provider'",
        "host 'services' is in groups 'execute' and 'registry'",
        "all hosts: af_site_name 'Bad_Name' is not a valid site name",
        "host 'exec1': variable 'af_groups' is the string 'oops', not a list",
        "host 'exec2': variable 'hub_secret' holds a plain-text secret",
        "host 'submit': variable 'chrony_allow' cannot be evaluated",
        "variable 'af_groups' is not the same on every host (hosts 'exec2', 'head', 'odd_host', 'services', "
        "'submit' have one value; host 'exec1' has another value)",
        # exec1's af_groups has the wrong type: its account lists are not checked any further (no cascade).
        "UID 2001 is used by both 'alice' (af_users) and 'bob' (af_users)",
    ]
    assert [next((e for e in errors if e.startswith(s)), s) for s in expected_starts] == errors
    assert errors == inv.check_inventory(**testbed, evaluation_errors={"submit": {"chrony_allow": "'x' is undefined"}})


def test_check_inventory_vaulted_values_are_not_type_checked(testbed, ciphertext):
    testbed["hostvars"]["head"]["af_site_name"] = {"__ansible_vault": ciphertext}
    testbed["hostvars"]["head"]["ca_key"] = {"__ansible_vault": ciphertext}
    assert inv.check_inventory(**testbed) == []


def test_check_inventory_skips_roles_without_a_spec_and_hosts_outside_their_groups(testbed):
    testbed["argument_specs"]["htcondor"] = {"htcondor_port": {"type": "int"}}
    testbed["hostvars"]["exec1"]["htcondor_port"] = "not a number"  # htcondor does not run on exec1
    assert inv.check_inventory(**testbed) == []
    testbed["hostvars"]["head"]["htcondor_port"] = "not a number"
    [error] = inv.check_inventory(**testbed)
    assert error.startswith("host 'head': variable 'htcondor_port' is the string 'not a number', not an integer")
    assert "(argument spec of role 'htcondor'" in error


# --- the site container registry ----------------------------------------------------------------------


def test_registry_storage():
    assert inv.check_registry_storage(["reg1"], {}) == []
    assert inv.check_registry_storage(["reg1", "reg2"], {"reg1": True, "reg2": True}) == []
    [error] = inv.check_registry_storage(["reg2", "reg1"], {"reg1": True, "reg2": False})
    assert error.startswith(
        "group 'registry' has 2 hosts ('reg1', 'reg2') but registry_storage_shared is not true on 'reg2'"
    )


def test_check_inventory_registry(testbed):
    testbed["groups"]["registry"] = ["services"]
    testbed["role_hosts"]["registry"] = ["registry"]
    testbed["argument_specs"]["registry"] = _yaml("roles/registry/meta/argument_specs.yml")
    assert inv.check_inventory(**testbed) == []
    testbed["hostvars"]["services"]["af_registry_push_port"] = 5000
    testbed["groups"]["registry"].append("head")
    testbed["hostvars"]["head"]["registry_storage_shared"] = True
    defaults = {"services": {"af_registry_pull_port": 5000, "af_registry_push_port": 5001}}
    assert inv.check_inventory(**testbed, defaults=defaults) == [
        "host 'services': port 5000 is used by both the registry's pull endpoint (af_registry_pull_port) and the "
        "registry's push endpoint (af_registry_push_port): one of them would not start; give one of them another port "
        "in the inventory",
        "group 'registry' has 2 hosts ('head', 'services') but registry_storage_shared is not true on 'services': "
        "every registry host must serve the same images from one storage directory; put registry_storage_dir on a "
        "file system all registry hosts share and set registry_storage_shared: true in group_vars/registry.yml, or "
        "keep exactly one host in group 'registry' in hosts.yml",
    ]


def test_module_documentation_renders():
    result = subprocess.run(
        [Path(sys.executable).parent / "ansible-doc", "-M", str(REPO / "library"), "af_inventory_check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "af_inventory_check" in result.stdout
    assert "RETURN VALUES" in result.stdout


def test_check_inventory_unevaluable_value_is_reported_once(testbed):
    del testbed["hostvars"]["head"]["af_domain"]
    errors = inv.check_inventory(**testbed, evaluation_errors={"head": {"af_domain": "'dns_domain' is undefined"}})
    assert errors == [
        "host 'head': variable 'af_domain' cannot be evaluated from the inventory ('dns_domain' is undefined): define "
        "what it refers to in the inventory (group_vars/host_vars; role defaults are not visible here) or set the "
        "value literally"
    ]


# --- The action plugin's collection (roles/validate_inventory/action_plugins/af_inventory_check.py) ---------


@pytest.fixture(scope="module")
def action():
    """The action plugin file, imported as a plain module (its collection logic needs no running Ansible)."""
    path = REPO / "roles/validate_inventory/action_plugins/af_inventory_check.py"
    spec = importlib.util.spec_from_file_location("af_inventory_check_action", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _templar(variables):
    """How the action plugin evaluates a value: Ansible's templar with one host's variables."""
    return Templar(loader=DataLoader(), variables=variables).template


def test_action_takes_its_rules_from_the_projects_module_utils(action):
    # One owner for the check's rules: the plugin loads module_utils/af_inventory.py itself.
    assert action.af_inventory().__file__ == str(REPO / "module_utils/af_inventory.py")
    assert action.af_inventory().DEFAULT_SETTINGS == inv.DEFAULT_SETTINGS


def test_action_reads_the_argument_specs_of_roles_that_have_them(action, tmp_path):
    (tmp_path / "a/meta").mkdir(parents=True)
    (tmp_path / "a/meta/argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n      a_x: {type: int}\n"
    )
    (tmp_path / "b/meta").mkdir(parents=True)
    (tmp_path / "b/meta/main.yml").write_text("dependencies: []\n")
    (tmp_path / "c/meta").mkdir(parents=True)
    (tmp_path / "c/meta/argument_specs.yml").write_text("argument_specs:\n  other: {}\n")
    specs = action.read_argument_specs(str(tmp_path), ["c", "b", "a", "missing"], _yaml)
    assert specs == {"a": {"a_x": {"type": "int"}}, "c": {}}


def test_action_reads_the_real_specs(action, af_spec):
    specs = action.read_argument_specs(str(REPO / "roles"), ["af_defaults", "testbed_nodes_none"], _yaml)
    assert specs == {"af_defaults": af_spec}


def test_action_roles_on_host(action):
    role_hosts = {"af_defaults": ["all"], "htcondor": ["central_manager", "submit"], "none": [], "null": None}
    assert action.roles_on_host(["central_manager"], role_hosts) == ["af_defaults", "htcondor"]
    assert action.roles_on_host([], role_hosts) == ["af_defaults"]


def test_action_names_to_check(action):
    host_vars = {
        "af_site_name": "x",
        "chrony_servers": [],
        "hub_client_secret": "s",
        "ansible_ssh_host_key_ed25519_public_key": "fact",  # injected from a cached fact
        "db_password": "s",
        "ansible_facts": {"ssh_host_key_ed25519_public_key": "fact"},
        "unrelated": 1,
        "group_names": ["execute"],
    }
    specs = {"af_defaults": {"af_site_name": {}, "af_domain": {}}, "htcondor": {"htcondor_port": {}}}
    names = action.names_to_check(host_vars, ["af_defaults"], specs, ["chrony_servers", "chrony_pools"], ["_secret"])
    # Only what the host defines; af_domain and chrony_pools are not set; db_password has another suffix.
    assert names == ["af_site_name", "chrony_servers", "hub_client_secret"]
    assert "db_password" in action.names_to_check(host_vars, [], specs, [], ["_secret", "_password"])
    assert action.names_to_check(host_vars, [], specs, [], []) == []


def test_action_evaluate_vaulted_value_is_never_decrypted(action, ciphertext):
    def template(_value):
        raise AssertionError("a vaulted value must not be templated (that decrypts it)")

    assert action.evaluate(EncryptedString(ciphertext=ciphertext), template) == (action.VAULT_STAND_IN, None)
    # Decrypted elsewhere (the run has the vault password): still a vaulted value.
    tagged = VaultedValue(ciphertext=ciphertext).tag("hunter2")
    assert action.evaluate("{{ x }}", lambda _v: tagged) == (action.VAULT_STAND_IN, None)
    assert inv.is_vaulted(action.VAULT_STAND_IN)


def test_action_evaluate_reports_why_a_value_cannot_be_evaluated(action):
    evaluate = action.evaluate
    template = _templar({"a": "b", "n": 3})
    assert evaluate(trust_as_template("{{ a }}-{{ n }}"), template) == ("b-3", None)
    assert evaluate([trust_as_template("{{ n }}")], template) == ([3], None)
    assert evaluate(trust_as_template("{{ chrony_upstream }}"), template) == (None, "'chrony_upstream' is undefined")
    assert evaluate([trust_as_template("{{ chrony_upstream }}")], template) == (None, "'chrony_upstream' is undefined")


def test_action_evaluate_indirection_to_a_vaulted_value(action, ciphertext):
    # secret: "{{ vault_secret }}" without the vault password: the stand-in, as for the vaulted value itself.
    template = _templar({"vault_secret": EncryptedString(ciphertext=ciphertext)})
    assert action.evaluate(trust_as_template("{{ vault_secret }}"), template) == (action.VAULT_STAND_IN, None)
    # Inside a list it is decrypted like any value (the real run needs the password): reported here.
    value, why = action.evaluate([trust_as_template("{{ vault_secret }}")], template)
    assert value is None
    assert "undecryptable" in why


def test_action_collect(action, ciphertext):
    raw = {
        "head": {
            "group_names": ["central_manager"],
            "af_site_name": "af",
            "htcondor_port": trust_as_template("{{ base_port }}"),
            "base_port": 9618,
            "hub_client_secret": EncryptedString(ciphertext=ciphertext),
        },
        "exec1": {
            "group_names": ["execute"],
            "af_site_name": "af",
            "htcondor_port": 1,  # htcondor does not run on exec1: not collected
            "chrony_servers": [trust_as_template("{{ chrony_upstream }}")],
        },
    }
    seen = []

    def templar_for(host, host_vars):
        seen.append(host)
        return _templar(host_vars)

    values, errors = action.collect(
        hosts=["exec1", "ghost", "head"],  # ghost: not an inventory host (hostvars gives a marker, not vars)
        raw_vars=raw.get,
        templar_for=templar_for,
        specs={"af_defaults": {"af_site_name": {}}, "htcondor": {"htcondor_port": {}}},
        role_hosts={"af_defaults": ["all"], "htcondor": ["central_manager"]},
        extra_vars=["chrony_servers"],
        secret_suffixes=["_secret"],
    )
    assert seen == ["exec1", "head"]
    assert values == {
        "exec1": {"af_site_name": "af"},
        "ghost": {},
        "head": {"af_site_name": "af", "htcondor_port": 9618, "hub_client_secret": action.VAULT_STAND_IN},
    }
    assert errors == {"exec1": {"chrony_servers": "'chrony_upstream' is undefined"}}
    # What the module makes of it.
    problems = inv.check_inventory(
        groups={"all": ["exec1", "head"], "central_manager": ["head"], "execute": ["exec1"]},
        hostvars=values,
        argument_specs={},
        role_hosts={},
        evaluation_errors=errors,
    )
    assert any(
        p.startswith(
            "host 'exec1': variable 'chrony_servers' cannot be evaluated from the inventory ('chrony_upstream' is "
            "undefined)"
        )
        for p in problems
    ), problems


# --- HTCondor accounting groups ---------------------------------------------------------------------------


def test_accounting_groups_of_the_example_site_add_up():
    groups = [
        {"name": "cms", "quota": 0.9},
        {"name": "cms.other", "quota": 0.5},
        {"name": "cms.other.coffea", "quota": 1.0},
        {"name": "cms.production", "quota": 0.5},
        {"name": "opportunistic", "quota": 0.1},
    ]
    values = {"htcondor_accounting_groups": groups, "htcondor_default_accounting_group": "cms.other.coffea"}
    assert inv.check_accounting_groups(values) == []


def test_sibling_quotas_over_one_are_refused_per_parent():
    groups = [
        {"name": "cms", "quota": 1.0},
        {"name": "cms.a", "quota": 0.7},
        {"name": "cms.b", "quota": 0.4},
    ]
    errors = inv.check_accounting_groups({"htcondor_accounting_groups": groups})
    assert errors == [
        "the quotas of the subgroups of 'cms' ('cms.a', 'cms.b') add up to 1.1, more than the whole parent share: "
        "make them add up to at most 1"
    ]


def test_bad_group_entries_are_named():
    groups = [{"name": "a b", "quota": 0.1}, {"name": "g", "quota": 0}, {"name": "g", "quota": 0.2}, {"quota": 1}]
    values = {"htcondor_accounting_groups": groups, "htcondor_execute_groups": ["h"]}
    errors = inv.check_accounting_groups(values)
    assert any("group name 'a b' is not valid" in e for e in errors)
    assert any("accounting group 'g': quota 0 is not a fraction" in e for e in errors)
    assert any("htcondor_accounting_groups[3] needs a 'name'" in e for e in errors)
    assert any("htcondor_execute_groups names 'h'" in e for e in errors)


def test_compute_token_settings():
    users = [{"name": "alice", "uid": 2001}]
    good = {
        "af_users": users,
        "af_token_audience": "https://af.test",
        "af_compute_token_audience": "https://af.test/htcondor",
        "htcondor_scitokens_extra_map": [
            {"issuer": "https://cms-auth.web.cern.ch/", "subject": "0e1c-uuid", "user": "alice"}
        ],
    }
    assert inv.check_compute_token_settings(good) == []
    same = {**good, "af_compute_token_audience": "https://af.test"}
    assert inv.check_compute_token_settings(same)[0].startswith("af_compute_token_audience is the storage's audience")
    bad_entries = [
        "not-a-mapping",
        {"issuer": "https://iam.example", "subject": 'a" alice@af.test', "user": "alice"},
        {"issuer": "https://iam.example", "subject": "", "user": "bob"},
    ]
    errors = inv.check_compute_token_settings({**good, "htcondor_scitokens_extra_map": bad_entries})
    assert errors == [
        "htcondor_scitokens_extra_map[0] is not a mapping: "
        "write {issuer: https://..., subject: ..., user: <facility user>}",
        "htcondor_scitokens_extra_map[1].subject 'a\" alice@af.test' must be the token's sub, non-empty, "
        "without quotes or newlines",
        "htcondor_scitokens_extra_map[2].subject '' must be the token's sub, non-empty, without quotes or newlines",
        "htcondor_scitokens_extra_map[2].user 'bob' is not a facility user: use the name of one of af_users",
    ]
