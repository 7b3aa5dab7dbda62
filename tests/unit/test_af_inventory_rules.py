"""Unit tests of the inventory check's rules on values and on their relations (module_utils/af_inventory.py,
sections 17-22), of the table of shared-fact copies (roles/validate_inventory/defaults/main.yml), of the
role defaults the action plugin evaluates, and of the vars plugin that names a broken group_vars file."""

import importlib.util
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.module_utils import af_inventory as inv
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[2]


def _yaml(path: str):
    return yaml.safe_load((REPO / path).read_text())


def _import(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def validate_defaults():
    return _yaml("roles/validate_inventory/defaults/main.yml")


def _spec(role: str) -> dict:
    return inv.spec_entry_point(_yaml(f"roles/{role}/meta/argument_specs.yml")["argument_specs"])["options"]


# --- ranges -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "name", "value", "expected"),
    [
        ("af_defaults", "af_hub_port", 0, "af_hub_port is 0, outside 1-65535 (a TCP port)"),
        ("af_defaults", "af_xrootd_port", 70000, "af_xrootd_port is 70000, outside 1-65535 (a TCP port)"),
        ("site_pki", "site_pki_host_valid_days", 0, "site_pki_host_valid_days is 0, outside 1-36500 (days)"),
        ("site_pki", "site_pki_ca_valid_days", 100000, "site_pki_ca_valid_days is 100000, outside 1-36500 (days)"),
        (
            "user_credentials",
            "user_credentials_data_token_lifetime",
            -5,
            "user_credentials_data_token_lifetime is -5, outside 60-31536000 (seconds)",
        ),
        (
            "registry",
            "registry_push_password_length",
            8,
            "registry_push_password_length is 8, outside 16-1024 (characters)",
        ),
        (
            "chrony",
            "chrony_local_stratum",
            16,
            "chrony_local_stratum is 16, outside 0-15 (a stratum; 0: this host serves no time of its own)",
        ),
    ],
)
def test_numbers_out_of_range_are_refused(role, name, value, expected):
    assert inv.check_number_ranges({name: value}, _spec(role)) == [f"{expected}: set it within that range"]


def test_numbers_in_range_and_culling_off_are_fine():
    assert inv.check_number_ranges({"jupyterhub_cull_idle_timeout": 0}, _spec("jupyterhub")) == []
    assert inv.check_number_ranges({"af_hub_port": 8443, "af_token_issuer_port": 443}, _spec("af_defaults")) == []
    # Every default of every role is within its range.
    for spec_file in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parts[-3]
        defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        assert inv.check_number_ranges(defaults or {}, _spec(role)) == [], role


# --- paths --------------------------------------------------------------------------------------------------


def test_relative_paths_are_refused_with_the_entry_named():
    users = [{"name": "alice", "uid": 2001, "group": "g", "shell": "bash"}]
    assert inv.check_absolute_paths({"af_users": users}, _spec("af_defaults")) == [
        "af_users[0] ('alice').shell 'bash' is not an absolute path: write the full path, starting with '/'"
    ]
    assert inv.check_absolute_paths({"xrootd_localroot": "srv/xrootd", "xrootd_export": "store"}, _spec("xrootd")) == [
        "xrootd_export 'store' is not an absolute path: write the full path, starting with '/'",
        "xrootd_localroot 'srv/xrootd' is not an absolute path: write the full path, starting with '/'",
    ]
    assert inv.check_absolute_paths({"user_credentials_data_read_paths": ["/store", "mc"]}, _spec("user_credentials"))
    assert inv.check_absolute_paths({"accounts_default_shell": "/bin/bash"}, _spec("accounts")) == []


def test_the_roles_default_paths_are_absolute_where_they_are_literal():
    for spec_file in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parts[-3]
        defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        literal = {k: v for k, v in (defaults or {}).items() if "{{" not in str(v)}
        assert inv.check_absolute_paths(literal, _spec(role)) == [], role


# --- sizes --------------------------------------------------------------------------------------------------


def test_cache_sizes():
    assert inv.check_cache_sizes({"xrootd_cache_ram": "2g", "xrootd_cache_disk_low": "0.80"}) == []
    assert inv.check_cache_sizes({"xrootd_cache_disk_low": "500g", "xrootd_cache_disk_high": "800g"}) == []
    assert inv.check_cache_sizes({"xrootd_cache_ram": "lots"}) == [
        "xrootd_cache_ram 'lots' is not a size: write a number with k, m, g or t (e.g. 2g)"
    ]
    [error] = inv.check_cache_sizes({"xrootd_cache_disk_low": "0.95", "xrootd_cache_disk_high": "0.90"})
    assert error.startswith("xrootd_cache_disk_low (0.95) is not below xrootd_cache_disk_high (0.9)")
    [error] = inv.check_cache_sizes({"xrootd_cache_disk_high": "90%"})
    assert error.startswith("xrootd_cache_disk_high '90%' is neither a fraction of the disk between 0 and 1")


# --- names --------------------------------------------------------------------------------------------------


def test_account_names_that_useradd_refuses_or_the_login_lowercases():
    users = [
        {"name": "Alice", "uid": 2001, "group": "g"},
        {"name": "bob.smith", "uid": 2002, "group": "g"},
        {"name": "x" * 33, "uid": 2003, "group": "g"},
        {"name": "carol", "uid": 2004, "group": "g"},
    ]
    errors = inv.check_account_names([{"name": "g", "gid": 2000}], [], users)
    assert errors == sorted(
        [
            "af_users entry 'Alice' has capital letters: Debian's useradd refuses them and the hub lowercases the "
            "name a user logs in with; write 'alice'",
            "af_users entry 'bob.smith' is not a valid account name: use at most 32 lowercase letters, digits, '_' "
            "and '-', starting with a letter or '_' (useradd refuses others)",
            f"af_users entry '{'x' * 33}' is not a valid account name: use at most 32 lowercase letters, digits, '_' "
            "and '-', starting with a letter or '_' (useradd refuses others)",
        ]
    )


# --- shared facts -------------------------------------------------------------------------------------------


def test_every_listed_copy_follows_its_fact_in_the_role_defaults(validate_defaults):
    """The table is true: each parameter's default is exactly "{{ <fact> }}" (af_fqdn_overrides: the FQDN map)."""
    copies = validate_defaults["validate_inventory_shared_fact_copies"]
    fact_defaults = _yaml("roles/af_defaults/defaults/main.yml")
    defaults = {}
    for path in REPO.glob("roles/*/defaults/main.yml"):
        defaults.update(yaml.safe_load(path.read_text()) or {})
    for name, fact in copies.items():
        assert fact in fact_defaults, name
        followed = "af_host_fqdns" if fact == "af_fqdn_overrides" else fact
        assert defaults.get(name) == f"{{{{ {followed} }}}}", name


def test_every_role_parameter_that_copies_a_port_or_key_directory_is_listed(validate_defaults):
    """A new role parameter defaulting to a shared port, issuer, audience or key directory joins the table."""
    copies = validate_defaults["validate_inventory_shared_fact_copies"]
    shared = ("_port }}", "af_token_issuer_url }}", "_audience }}", "af_token_keys_dir }}", "af_host_fqdns }}")
    for path in REPO.glob("roles/*/defaults/main.yml"):
        if path.parts[-3] == "af_defaults":
            continue
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(value, str) and value.startswith("{{ af_") and value.endswith(shared):
                assert name in copies, f"{name} ({path.parts[-3]}) follows {value}: add it to the table"


def test_copies_and_renamed_variables_are_refused_with_what_to_set():
    errors = inv.check_shared_fact_copies(
        {"xrootd_port": 1095, "af_node_fqdn": "x.example", "af_site_name": "t3"},
        {"xrootd_port": "af_xrootd_port"},
        {"af_node_fqdn": "put it in af_fqdn_overrides"},
    )
    assert errors == [
        "xrootd_port is set in the inventory, but it follows the shared fact af_xrootd_port (roles/af_defaults), "
        "which other services read too: remove xrootd_port and set af_xrootd_port instead, so that they all agree",
        "af_node_fqdn is no longer read by any role: put it in af_fqdn_overrides",
    ]


# --- relations on one host ------------------------------------------------------------------------------------


PORTS = {
    "af_token_issuer_port": 443,
    "af_registry_pull_port": 5000,
    "af_registry_push_port": 5001,
    "af_hub_port": 8443,
    "af_oidc_provider_port": 4443,
    "af_xrootd_port": 1094,
    "af_xrootd_https_port": 8443,
    "nftables_ssh_port": 22,
}


def test_port_clashes_count_only_the_services_of_the_host():
    services = {"issuer", "registry", "hub", "oidc_provider"}
    assert inv.check_port_clashes(services, PORTS) == []
    assert inv.check_port_clashes({"storage"}, PORTS) == []
    [error] = inv.check_port_clashes(services | {"storage"}, PORTS)
    assert error == (
        f"{inv.WHERE}: port 8443 is used by both JupyterHub (af_hub_port) and XRootD's HTTPS endpoint "
        "(af_xrootd_https_port): one of them would not start; give one of them another port in the inventory"
    )
    [error] = inv.check_port_clashes({"storage"}, {**PORTS, "af_xrootd_https_port": 9618, "af_xrootd_port": 22})
    assert "port 22 is used by both XRootD (af_xrootd_port) and SSH (nftables_ssh_port)" in error
    [error] = inv.check_port_clashes({"execute"}, {"nftables_ssh_port": 9618})
    assert "port 9618 is used by both SSH (nftables_ssh_port) and HTCondor (fixed port 9618)" in error


def test_validities():
    assert inv.check_validities({"site_pki_ca_valid_days": 3650, "site_pki_host_valid_days": 397}) == []
    [error] = inv.check_validities({"site_pki_ca_valid_days": 365, "site_pki_host_valid_days": 397})
    assert error.startswith(
        "site_pki_ca_valid_days (365) is not longer than site_pki_host_valid_days (397) (the site CA and host "
        "certificates): a certificate would outlive the CA that signed it"
    )
    [error] = inv.check_validities({"site_pki_host_valid_days": 30, "site_pki_renew_days": 30})
    assert error.startswith("site_pki_renew_days (30) is not shorter than site_pki_host_valid_days (30)")
    [error] = inv.check_validities(
        {"user_credentials_data_token_lifetime": 3600, "user_credentials_data_token_interval": 7200}
    )
    assert error.startswith(
        "user_credentials_data_token_interval (7200) is not shorter than user_credentials_data_token_lifetime (3600): "
        "users' queued tokens would leave gaps in which none is valid"
    )


def test_issuer_url_must_be_what_the_sites_issuer_serves():
    values = {"af_issuer_fqdn": "svc.t3.example", "af_token_issuer_port": 443}
    ok = {"af_token_issuer_url": "https://svc.t3.example"}
    assert inv.check_issuer_agreement(values, ok, ["svc"]) == []
    slash = {"af_token_issuer_url": "https://svc.t3.example/"}
    [error] = inv.check_issuer_agreement(values, slash, ["svc"])
    assert error.startswith(
        "af_token_issuer_url 'https://svc.t3.example/' is not the URL the site's token issuer serves "
        "('https://svc.t3.example', from group 'issuer' and af_token_issuer_port)"
    )
    assert "(a trailing slash counts)" in error
    assert inv.check_issuer_agreement({**values, "af_token_issuer_port": 8444}, ok, ["svc"])  # port not in the URL
    # An external issuer is trusted as written.
    assert inv.check_issuer_agreement({**values, "token_issuer_mode": "external"}, slash, ["svc"]) == []
    assert inv.check_issuer_agreement({}, slash, []) == []


def test_storage_accepts_the_facilitys_own_audience():
    values = {"af_token_audience": "https://t3.example"}
    assert inv.check_issuer_agreement(values, {"xrootd_token_audiences": ["https://t3.example", "cms"]}, []) == []
    [error] = inv.check_issuer_agreement(values, {"xrootd_token_audiences": ["https://t3.example/"]}, [])
    assert error.startswith(
        "xrootd_token_audiences ['https://t3.example/'] does not contain af_token_audience ('https://t3.example')"
    )


GROUPS = {"all": ["origin", "cache", "exec1"], "storage": ["origin", "cache"], "execute": ["exec1"]}


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("origin", None),
        ("xrd.cern.ch:1094", None),
        ("", "{where} is an XCache (xrootd_mode: cache) without an origin"),
        ("cache", "xrootd_cache_origin names the cache itself"),
        ("exec1", "xrootd_cache_origin 'exec1' is not in group 'storage'"),
        (
            "orign",
            "xrootd_cache_origin 'orign' is neither a host of the inventory nor host:port: name the origin's "
            "inventory host (one of 'cache', 'origin')",
        ),
    ],
)
def test_cache_origin(origin, expected):
    errors = inv.check_cache_origin("cache", {"xrootd_mode": "cache", "xrootd_cache_origin": origin}, GROUPS)
    if expected is None:
        assert errors == []
    else:
        [error] = errors
        assert error.startswith(expected)
    assert inv.check_cache_origin("origin", {"xrootd_mode": "origin", "xrootd_cache_origin": ""}, GROUPS) == []


# --- groups a site's shape needs --------------------------------------------------------------------------------


def test_needed_groups():
    full = {"execute": ["e"], "hub": ["h"], "registry": ["r"], "issuer": ["i"], "oidc_provider": ["o"]}
    assert inv.check_needed_groups(full, {}) == []
    assert inv.check_needed_groups({**full, "oidc_provider": []}, {"af_oidc_mode": "external"}) == []
    [error] = inv.check_needed_groups({**full, "oidc_provider": []}, {"af_oidc_mode": "local"})
    assert error.startswith(
        "group 'hub' has hosts and af_oidc_mode is local, but group 'oidc_provider' has none: nobody could log in"
    )
    [error] = inv.check_needed_groups({**full, "registry": []}, {})
    assert error.startswith("group 'hub' has hosts but group 'registry' has none: users' notebooks and their Dask")
    assert inv.check_needed_groups({"central_manager": ["c"], "execute": ["e"]}, {}) == []  # a pool alone ...
    [warning] = inv.warn_needed_groups({"central_manager": ["c"], "execute": ["e"]})  # ... is warned about
    assert warning.startswith("group 'execute' has hosts but group 'registry' has none: execute nodes pre-pull")
    assert inv.warn_needed_groups(full) == []
    [error] = inv.check_needed_groups({**full, "issuer": []}, {})
    assert error.startswith("group 'hub' has hosts but group 'issuer' has none")
    assert inv.check_needed_groups({"central_manager": ["c"]}, {}) == []
    [error] = inv.check_needed_groups({"storage": ["s"]}, {"af_token_issuer_url": ""})
    assert error.startswith("group 'storage' has hosts but there is no token issuer")
    assert inv.check_needed_groups({"storage": ["s"]}, {"af_token_issuer_url": "https://cms-auth.cern.ch/"}) == []


# --- the role defaults the action plugin evaluates -----------------------------------------------------------------


def test_collect_defaults_evaluates_what_the_inventory_leaves_to_the_roles():
    action = _import("roles/validate_inventory/action_plugins/af_inventory_check.py", "af_inventory_check_action2")
    role_defaults = {
        "af_defaults": {
            "af_hub_port": 443,
            "af_hub_url": trust_as_template("https://{{ inventory_hostname }}:{{ af_hub_port }}"),
        },
        "site_pki": {"site_pki_host_valid_days": 397},
        "jupyterhub": {"af_hub_port": 9999},  # a role's own default wins over af_defaults'
    }
    raw = {
        "hub1": {"group_names": ["hub"], "inventory_hostname": "hub1", "af_hub_port": 8443},
        "exec1": {"group_names": ["execute"], "inventory_hostname": "exec1"},
    }
    result = action.collect_defaults(
        hosts=["hub1", "exec1", "ghost"],
        raw_vars=raw.get,
        templar_for=lambda _host, variables: Templar(loader=DataLoader(), variables=variables).template,
        role_defaults=role_defaults,
        role_hosts={"af_defaults": ["all"], "site_pki": ["all"], "jupyterhub": ["hub"]},
        names=["af_hub_port", "af_hub_url", "site_pki_host_valid_days"],
    )
    assert result == {
        # hub1 sets af_hub_port itself: only the others are evaluated, with its value.
        "hub1": {"af_hub_url": "https://hub1:8443", "site_pki_host_valid_days": 397},
        "exec1": {"af_hub_port": 443, "af_hub_url": "https://exec1:443", "site_pki_host_valid_days": 397},
    }


def test_read_role_defaults(tmp_path):
    action = _import("roles/validate_inventory/action_plugins/af_inventory_check.py", "af_inventory_check_action3")
    (tmp_path / "a" / "defaults").mkdir(parents=True)
    (tmp_path / "a" / "defaults" / "main.yml").write_text("a_port: 1\n")
    (tmp_path / "b").mkdir()
    assert action.read_role_defaults(str(tmp_path), ["a", "b"], lambda p: yaml.safe_load(Path(p).read_text())) == {
        "a": {"a_port": 1}
    }


# --- a group_vars file that does not parse ------------------------------------------------------------------------


def test_broken_group_vars_file_is_named_with_its_line(tmp_path):
    plugin = _import("plugins/vars/af_host_group_vars.py", "af_host_group_vars")
    broken = tmp_path / "execute.yml"
    broken.write_text("---\nok: 1\nbad: [unclosed\n")
    with pytest.raises(AnsibleParserError) as raised:
        plugin.VarsModule().load_found_files(DataLoader(), {}, [str(broken)])
    message = str(raised.value)
    assert message.startswith(f"{broken} line 4, column 1: YAML parsing failed")
    assert message.endswith("Fix the file (YAML) and run again.")
    fine = tmp_path / "fine.yml"
    fine.write_text("---\nok: 1\n")
    assert plugin.VarsModule().load_found_files(DataLoader(), {}, [str(fine)]) == {"ok": 1}


# --- the Kubernetes cluster's networks --------------------------------------------------------------------------------

K8S = {
    "af_k8s_version": "1.36.2",
    "af_k8s_pod_cidr": "10.244.0.0/16",
    "af_k8s_service_cidr": "10.96.0.0/12",
    "af_k8s_node_pod_cidr_size": 24,
    "af_k8s_cluster_domain": "cluster.local",
    "af_site_networks": ["172.30.213.0/24"],
}


def test_k8s_defaults_and_the_testbeds_networks_are_fine():
    bridges = {"exec1": inv.docker_bridges({"execute"}, {"docker_engine_daemon_options": {"bip": "10.213.0.1/24"}})}
    assert bridges == {"exec1": [("10.213.0.0/24", "docker_engine_daemon_options.bip")]}
    assert inv.check_k8s_settings(K8S, bridges) == []
    defaults = _yaml("roles/af_defaults/defaults/main.yml")
    assert inv.check_k8s_settings({k: defaults[k] for k in K8S if k != "af_site_networks"}, {}) == []


def test_k8s_networks_must_not_overlap():
    bridges = {"hub": inv.docker_bridges({"hub"}, {})}  # no bip: Docker's default bridge
    errors = inv.check_k8s_settings(
        {**K8S, "af_k8s_service_cidr": "172.16.0.0/12", "af_site_networks": ["10.244.7.0/24"]}, bridges
    )
    assert errors == [
        "af_k8s_pod_cidr (10.244.0.0/16) overlaps af_site_networks[0] (10.244.7.0/24): packets for one would be routed "
        "to the other; choose another range for af_k8s_pod_cidr (or for the other network)",
        "af_k8s_service_cidr (172.16.0.0/12) overlaps host 'hub' Docker's default bridge (no "
        "docker_engine_daemon_options.bip) (172.17.0.0/16): packets for one would be routed to the other; choose "
        "another range for af_k8s_service_cidr (or for the other network)",
    ]
    assert inv.docker_bridges({"storage"}, {}) == []  # no Docker engine there


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"af_k8s_version": "v1.36"}, "af_k8s_version 'v1.36' is not a Kubernetes release"),
        ({"af_k8s_cluster_domain": "Cluster_Local"}, "af_k8s_cluster_domain 'Cluster_Local' is not a DNS domain"),
        ({"af_k8s_pod_cidr": "10.244.0.0/33"}, "af_k8s_pod_cidr '10.244.0.0/33' is not a network in CIDR form:"),
        ({"af_k8s_node_pod_cidr_size": 16}, "af_k8s_node_pod_cidr_size 16 does not fit af_k8s_pod_cidr 10.244.0.0/16"),
        ({"af_site_networks": ["lan"]}, "af_site_networks[0] 'lan' is not a network in CIDR form"),
    ],
)
def test_k8s_formats(change, expected):
    [error] = inv.check_k8s_settings({**K8S, **change}, {})
    assert error.startswith(expected)
