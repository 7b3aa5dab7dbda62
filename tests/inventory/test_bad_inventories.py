"""End to end: playbooks/validate.yml refuses copies of inventories/local with one mistake each (63 kinds).

Every case copies inventories/local, makes ONE change and runs ansible-playbook; the run must fail with
that mistake's own message, which names the variable, group or host and the fix. There is one case per
kind of check; the variants of each check are covered by tests/unit/test_af_inventory.py. The play
targets all hosts but checks once, on the controller: no run may contact an inventory host (the hosts of
a copied inventory do not exist, so any contact would show as unreachable in the PLAY RECAP). A failed
check stops site.yml, also under --limit. The runs go in parallel threads (one ansible-playbook process
each) so the file stays fast without pytest-xdist.
"""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.support.testbed import make_inventory

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "inventories" / "local"
EXAMPLE_SITE = REPO / "inventories" / "example-site"
# The venv that runs pytest also holds ansible (works for /tmp/... and for /work/main/.venv).
VENV_BIN = Path(sys.executable).parent
WORKERS = 4
TIMEOUT = 300

PLAIN_SECRET = "hunter2-not-vaulted"  # noqa: S105 - a made-up value that must never be printed

SITE = "group_vars/all/site.yml"
HOSTS = "hosts.yml"
CENTRAL_MANAGER = "group_vars/central_manager.yml"
BASELINE = "group_vars/all/baseline.yml"
HTCONDOR = "group_vars/all/htcondor.yml"
REGISTRY = "group_vars/registry.yml"
HUB = "group_vars/hub.yml"
STORAGE = "group_vars/storage.yml"
XCACHE = "host_vars/xcache1.yml"
VALIDATE = "playbooks/validate.yml"
SITE_PLAYBOOK = "site.yml"


def iter_groups(data: dict):
    """Every (name, body) group of a YAML inventory, however deeply nested under children."""
    pending = list((data["all"].get("children") or {}).items())
    while pending:
        name, body = pending.pop(0)
        body = body if body is not None else {}
        yield name, body
        pending.extend((body.get("children") or {}).items())


def find_group(data: dict, name: str) -> dict:
    return next(body for group, body in iter_groups(data) if group == name)


def local_hosts() -> dict[str, set[str]]:
    """inventories/local's hosts and their groups (host names may change: tests must not hard-code them)."""
    membership: dict[str, set[str]] = {}
    for group, body in iter_groups(yaml.safe_load((LOCAL / HOSTS).read_text())):
        for host in body.get("hosts") or {}:
            membership.setdefault(host, set()).add(group)
    return membership


def quoted(hosts) -> str:
    return ", ".join(f"'{h}'" for h in sorted(hosts))


# The hosts outside central_manager: group_vars/all applies to them, central_manager.yml overrides it.
NOT_CENTRAL_MANAGER = sorted(h for h, groups in local_hosts().items() if "central_manager" not in groups)


# --- Editing a copied inventory ------------------------------------------------------------------


def edit(relpath: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A mutation: load <inventory>/<relpath> (YAML), apply change(data) in place, write it back."""

    def mutate(inventory: Path) -> None:
        path = inventory / relpath
        data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
        change(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))

    return mutate


def group_hosts(data: dict, group: str) -> dict:
    """The hosts mapping of a group in hosts.yml."""
    return find_group(data, group).setdefault("hosts", {}) or {}


def set_group_hosts(data: dict, group: str, hosts: list[str]) -> None:
    find_group(data, group)["hosts"] = dict.fromkeys(hosts)


def entry(data: dict, var: str, name: str) -> dict:
    """The entry called name in a list of dicts (af_users, af_groups, ...)."""
    return next(e for e in data[var] if e["name"] == name)


def rename_host(data: dict, old: str, new: str) -> None:
    for _, group in iter_groups(data):
        hosts = group.get("hosts") or {}
        if old in hosts:
            group["hosts"] = {new if h == old else h: v for h, v in hosts.items()}


def add_vaulted_secret(inventory: Path) -> None:
    """Vault-encrypted secrets: accepted, and never decrypted (the run gets no vault password).

    One directly, one through the usual indirection (x_key: "{{ vault_x_key }}").
    """
    ciphertext = VaultLib([("default", VaultSecret(b"not-the-real-one"))]).encrypt("s3cr3t").decode()
    block = "".join(f"  {line}\n" for line in ciphertext.splitlines())
    (inventory / "group_vars/all/secrets.yml").write_text(
        f"---\nhub_client_secret: !vault |\n{block}"
        f"vault_hub_crypt_key: !vault |\n{block}"
        'hub_crypt_key: "{{ vault_hub_crypt_key }}"\n'
    )


def add_hostvars_reference(inventory: Path) -> None:
    """A value that refers to another host's variables is evaluated as a play would (hostvars defined)."""
    edit(BASELINE, lambda d: d.update(chrony_servers=["{{ hostvars[groups['central_manager'][0]].af_node_name }}"]))(
        inventory
    )
    edit(CENTRAL_MANAGER, lambda d: d.update(af_node_name="head.af.test"))(inventory)


# --- The cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Path], None]
    expected: tuple[str, ...]
    args: tuple[str, ...] = ()  # extra ansible-playbook arguments


BAD = [
    Case(
        "site-name-invalid",
        edit(SITE, lambda d: d.update(af_site_name="AF_Testbed")),
        ("all hosts: af_site_name 'AF_Testbed' is not a valid site name: use only lowercase letters, digits and '-'",),
    ),
    Case(
        "domain-invalid",
        edit(SITE, lambda d: d.update(af_domain="af_test.")),
        ("all hosts: af_domain 'af_test.' is not a valid DNS domain: use lowercase labels",),
    ),
    Case(
        "no-central-manager",
        edit(HOSTS, lambda d: set_group_hosts(d, "central_manager", [])),
        (
            "required node role 'central_manager' has no host (af_required_node_roles): "
            "add exactly one host to group 'central_manager' in hosts.yml",
        ),
    ),
    Case(
        "two-central-managers",
        edit(HOSTS, lambda d: set_group_hosts(d, "central_manager", ["head", "exec1"])),
        (
            "group 'central_manager' has 2 hosts ('exec1', 'head'): keep exactly one host in group "
            "'central_manager' in hosts.yml; these roles do not set up a highly-available central manager",
        ),
    ),
    Case(
        "execute-and-hub-on-one-host",
        edit(HOSTS, lambda d: group_hosts(d, "hub").update(exec1=None)),
        (
            "host 'exec1' is in groups 'execute' and 'hub', which must not share a host (af_node_role_conflicts): "
            "execute nodes run user code and must not hold the hub's OIDC client secret and crypt key; "
            "move one of these roles to another host in hosts.yml",
        ),
    ),
    Case(
        "execute-and-submit-on-one-host",
        edit(HOSTS, lambda d: group_hosts(d, "submit").update(exec1=None)),
        (
            "host 'exec1' is in groups 'execute' and 'submit', which must not share a host (af_node_role_conflicts): "
            "execute nodes run user code and must not hold a submit node's certificate",
        ),
    ),
    Case(
        "host-without-node-role",
        edit(HOSTS, lambda d: d["all"].setdefault("hosts", {}).update(login=None)),
        ("host 'login' has no node role: add it to one of the groups central_manager, submit, execute,",),
    ),
    Case(
        "hostname-with-underscore",
        edit(HOSTS, lambda d: rename_host(d, "exec2", "exec_2")),
        ("host 'exec_2' is not a valid DNS name: rename it in hosts.yml", "e.g. 'exec-2'"),
    ),
    Case(
        "duplicate-uid",
        edit(SITE, lambda d: entry(d, "af_users", "bob").update(uid=2001)),
        ("UID 2001 is used by both 'alice' (af_users) and 'bob' (af_users): give each account its own UID",),
    ),
    Case(
        "duplicate-gid",
        edit(SITE, lambda d: entry(d, "af_groups", "af-admins").update(gid=2000)),
        ("GID 2000 is used by both groups 'af-users' and 'af-admins' in af_groups: give each group its own GID",),
    ),
    Case(
        "undefined-group",
        edit(SITE, lambda d: entry(d, "af_users", "carol").update(groups=["af-admins", "wheel"])),
        (
            "account 'carol' (af_users): supplementary group 'wheel' is not defined in af_groups: "
            "add {name: wheel, gid: <free GID>} to af_groups",
        ),
    ),
    Case(
        "service-uid-not-system",
        edit(SITE, lambda d: entry(d, "af_service_accounts", "condor").update(uid=1970)),
        (
            "service account 'condor' (af_service_accounts) has UID 1970, outside the system range 100-999: "
            "Debian's adduser --system refuses",
        ),
    ),
    Case(
        "account-without-uid",
        edit(SITE, lambda d: entry(d, "af_users", "bob").pop("uid")),
        (
            "all hosts: variable 'af_users' does not match the argument spec of role 'af_defaults': "
            "missing required arguments: uid found in af_users",
        ),
    ),
    Case(
        "host-vars-override-of-users",
        edit("host_vars/exec1.yml", lambda d: d.update(af_users=[{"name": "dave", "uid": 2001, "group": "af-users"}])),
        (
            "variable 'af_users' is not the same on every host (",
            "host 'exec1' has another value",
            "define af_users once in the inventory's group_vars/all and remove the host_vars/group_vars override",
        ),
    ),
    Case(
        "extra-port-out-of-range",
        edit(CENTRAL_MANAGER, lambda d: d.update(nftables_extra_ports=["123/udp", "70000/tcp"])),
        ("host 'head': nftables_extra_ports entry '70000/tcp' is not a valid port (port out of range 1-65535)",),
    ),
    Case(
        "time-master-without-stratum",
        edit(CENTRAL_MANAGER, lambda d: d.pop("chrony_local_stratum")),
        ("host 'head' has no time source: set chrony_servers (or chrony_local_stratum for the site's time master)",),
    ),
    Case(
        "plain-text-secret",
        edit(SITE, lambda d: d.update({"hub_client_secret": PLAIN_SECRET})),
        (
            "all hosts: variable 'hub_client_secret' holds a plain-text secret: encrypt it with ansible-vault "
            "('ansible-vault encrypt_string --name hub_client_secret')",
        ),
        # Verbose, so that an echo of the collected values (the result's 'invocation') would show.
        ("-vvv",),
    ),
    Case(
        "accounting-quotas-exceed-the-pool",
        edit(HTCONDOR, lambda d: entry(d, "htcondor_accounting_groups", "group_af").update(quota=0.9)),
        (
            "the quotas of the top-level accounting groups ('group_af', 'group_opportunistic') add up to 1.1, "
            "more than the whole pool: make them add up to at most 1",
        ),
    ),
    Case(
        "accounting-subgroup-without-parent",
        edit(HTCONDOR, lambda d: d["htcondor_accounting_groups"].append({"name": "cms.coffea", "quota": 0.5})),
        ("accounting group 'cms.coffea' is a subgroup of 'cms', which is not listed: add it",),
    ),
    Case(
        "default-accounting-group-undefined",
        edit(HTCONDOR, lambda d: d.update(htcondor_default_accounting_group="group_cms")),
        (
            "htcondor_default_accounting_group 'group_cms' is not in htcondor_accounting_groups: add it there or "
            "choose one of 'group_af', 'group_opportunistic'",
        ),
    ),
    Case(
        "token-issuer-not-https",
        edit(SITE, lambda d: d.update({"af_token_issuer_url": "http://services.af.test"})),
        (
            "af_token_issuer_url 'http://services.af.test' is not an https URL: "
            "token issuers are trusted over HTTPS only",
        ),
    ),
    Case(
        "compute-audience-is-the-storage-audience",
        edit(
            SITE,
            lambda d: d.update(
                {"af_token_audience": "https://af.test", "af_compute_token_audience": "https://af.test"}
            ),
        ),
        ("af_compute_token_audience is the storage's audience ('https://af.test'): give the HTCondor pool",),
    ),
    Case(
        "pool-identity-map-entry-for-no-facility-user",
        edit(
            SITE,
            lambda d: d.update(
                {"htcondor_scitokens_extra_map": [{"issuer": "http://iam.example", "subject": "x", "user": "eve"}]}
            ),
        ),
        (
            "htcondor_scitokens_extra_map[0].issuer 'http://iam.example' is not an https URL",
            "htcondor_scitokens_extra_map[0].user 'eve' is not a facility user",
        ),
    ),
    Case(
        "oidc-issuer-not-https",
        edit(SITE, lambda d: d.update({"af_oidc_issuer_url": "http://services.af.test:4443/api/oidc"})),
        (
            "af_oidc_issuer_url 'http://services.af.test:4443/api/oidc' is not an https URL: "
            "OIDC issuers are trusted over HTTPS only",
        ),
    ),
    Case(
        "oidc-external-without-client",
        edit(SITE, lambda d: d.update(af_oidc_mode="external", af_oidc_issuer_url="https://cilogon.org")),
        (
            "af_oidc_mode is external but af_oidc_client_id is not set: set it in group_vars/all",
            "af_oidc_mode is external but af_oidc_client_secret_file is not set",
        ),
    ),
    Case(
        "token-audience-missing",
        edit(SITE, lambda d: d.update(af_token_audience="")),
        ("af_token_audience is empty: set the audience your storage accepts in tokens",),
    ),
    Case(
        "registry-pull-and-push-on-one-port",
        edit(REGISTRY, lambda d: d.update(af_registry_push_port=5000)),
        (
            "host 'services': port 5000 is used by both the registry's pull endpoint (af_registry_pull_port) and the "
            "registry's push endpoint (af_registry_push_port): one of them would not start",
        ),
    ),
    Case(
        "package-cache-on-htcondors-port",
        edit(CENTRAL_MANAGER, lambda d: d.update(af_package_cache_port=9618)),
        (
            "host 'head': port 9618 is used by both the package cache (af_package_cache_port) and HTCondor "
            "(fixed port 9618): one of them would not start",
        ),
    ),
    Case(
        "two-registry-hosts-without-shared-storage",
        edit(HOSTS, lambda d: group_hosts(d, "registry").update(head=None)),
        (
            "group 'registry' has 2 hosts ('head', 'services') but registry_storage_shared is not true on "
            "'head', 'services': every registry host must serve the same images from one storage directory",
        ),
    ),
    # --- A string where the roles read another type (they use the raw value) ---
    Case(
        "quoted-boolean",
        edit(BASELINE, lambda d: d.update(baseline_manage_etc_hosts="no")),
        (
            "all hosts: variable 'baseline_manage_etc_hosts' is the string 'no', not a boolean: write true or false "
            "without quotes",
        ),
    ),
    Case(
        "quoted-port",
        edit(SITE, lambda d: d.update(af_hub_port="8443")),
        ("all hosts: variable 'af_hub_port' is the string '8443', not an integer: write the number without quotes",),
    ),
    Case(
        "one-string-for-a-list",
        edit(SITE, lambda d: d.update(af_oidc_allowed_groups="af-users")),
        ("all hosts: variable 'af_oidc_allowed_groups' is the string 'af-users', not a list",),
    ),
    Case(
        "one-string-for-a-users-groups",
        edit(SITE, lambda d: entry(d, "af_users", "carol").update(groups="af-admins")),
        ("all hosts: variable 'af_users[2] ('carol').groups' is the string 'af-admins', not a list",),
    ),
    Case(
        "string-for-a-mapping",
        edit(SITE, lambda d: d.update(af_fqdn_overrides="head=head.af.test")),
        ("all hosts: variable 'af_fqdn_overrides' is the string 'head=head.af.test', not a mapping",),
    ),
    # --- Ranges and sizes ---
    Case(
        "port-out-of-range",
        edit(SITE, lambda d: d.update(af_hub_port=70000)),
        ("all hosts: af_hub_port is 70000, outside 1-65535 (a TCP port): set it within that range",),
    ),
    Case(
        "token-lifetime-zero",
        edit(HUB, lambda d: d.update(user_credentials_data_token_lifetime=0)),
        ("host 'services': user_credentials_data_token_lifetime is 0, outside 60-31536000 (seconds)",),
    ),
    Case(
        "generated-password-too-short",
        edit(REGISTRY, lambda d: d.update(registry_push_password_length=8)),
        ("host 'services': registry_push_password_length is 8, outside 16-1024 (characters)",),
    ),
    Case(
        "cache-watermarks-reversed",
        edit(XCACHE, lambda d: d.update(xrootd_cache_disk_low="0.95", xrootd_cache_disk_high="0.90")),
        ("host 'xcache1': xrootd_cache_disk_low (0.95) is not below xrootd_cache_disk_high (0.9)",),
    ),
    # --- Paths ---
    Case(
        "relative-data-root",
        edit(STORAGE, lambda d: d.update(xrootd_localroot="srv/xrootd")),
        (
            "hosts 'storage1', 'xcache1': xrootd_localroot 'srv/xrootd' is not an absolute path: write the full "
            "path, starting with '/'",
        ),
    ),
    Case(
        "relative-login-shell",
        edit(SITE, lambda d: entry(d, "af_users", "alice").update({"shell": "bash"})),
        ("all hosts: af_users[0] ('alice').shell 'bash' is not an absolute path",),
    ),
    # --- Relations between values ---
    Case(
        "two-services-on-one-port",
        edit(SITE, lambda d: d.update(af_registry_pull_port=8443)),
        (
            "host 'services': port 8443 is used by both the registry's pull endpoint (af_registry_pull_port) and "
            "JupyterHub (af_hub_port): one of them would not start",
        ),
    ),
    Case(
        "ca-expires-before-host-certificates",
        edit(SITE, lambda d: d.update(site_pki_ca_valid_days=300)),
        (
            "all hosts: site_pki_ca_valid_days (300) is not longer than site_pki_host_valid_days (397) (the site CA "
            "and host certificates): a certificate would outlive the CA that signed it",
        ),
    ),
    Case(
        "dask-ca-expires-before-user-certificates",
        edit(HUB, lambda d: d.update(user_credentials_tls_ca_valid_days=100)),
        (
            "host 'services': user_credentials_tls_ca_valid_days (100) is not longer than "
            "user_credentials_tls_valid_days (397) (the Dask TLS CA and users' certificates)",
        ),
    ),
    Case(
        "token-refreshed-after-it-expires",
        edit(HUB, lambda d: d.update(user_credentials_data_token_interval=172800)),
        (
            "host 'services': user_credentials_data_token_interval (172800) is not shorter than "
            "user_credentials_data_token_lifetime (86400): users' queued tokens would leave gaps",
        ),
    ),
    Case(
        "issuer-url-with-a-trailing-slash",
        edit(SITE, lambda d: d.update({"af_token_issuer_url": "https://services.af.test/"})),
        (
            "all hosts: af_token_issuer_url 'https://services.af.test/' is not the URL the site's token issuer serves "
            "('https://services.af.test', from group 'issuer' and af_token_issuer_port)",
            "(a trailing slash counts)",
        ),
    ),
    Case(
        "storage-refuses-the-facilitys-audience",
        edit(STORAGE, lambda d: d.update(xrootd_token_audiences=["https://storage.af.test"])),
        (
            "hosts 'storage1', 'xcache1': xrootd_token_audiences ['https://storage.af.test'] does not contain "
            "af_token_audience ('https://af.test')",
        ),
    ),
    Case(
        "cache-without-origin",
        edit(XCACHE, lambda d: d.pop("xrootd_cache_origin")),
        ("host 'xcache1' is an XCache (xrootd_mode: cache) without an origin: set xrootd_cache_origin",),
    ),
    Case(
        "cache-origin-is-no-storage-host",
        edit(XCACHE, lambda d: d.update(xrootd_cache_origin="exec1")),
        ("host 'xcache1': xrootd_cache_origin 'exec1' is not in group 'storage'",),
    ),
    Case(
        "cache-origin-is-a-typo",
        edit(XCACHE, lambda d: d.update(xrootd_cache_origin="storage-1")),
        ("host 'xcache1': xrootd_cache_origin 'storage-1' is neither a host of the inventory nor host:port",),
    ),
    Case(
        "a-shared-port-differs-between-hosts",
        edit(HUB, lambda d: d.update(af_hub_port=9443)),
        (
            "variable 'af_hub_port' is not the same on every host (",
            "it is a site-wide value that the services on different nodes must agree on",
        ),
    ),
    # --- Groups the site's shape needs ---
    Case(
        "images-without-a-registry",
        edit(HOSTS, lambda d: set_group_hosts(d, "registry", [])),
        ("group 'hub' has hosts but group 'registry' has none: users' notebooks and their Dask workers run",),
    ),
    Case(
        "hub-with-local-login-but-no-provider",
        edit(HOSTS, lambda d: set_group_hosts(d, "oidc_provider", [])),
        ("group 'hub' has hosts and af_oidc_mode is local, but group 'oidc_provider' has none: nobody could log in",),
    ),
    Case(
        "hub-without-a-token-issuer",
        edit(HOSTS, lambda d: set_group_hosts(d, "issuer", [])),
        ("group 'hub' has hosts but group 'issuer' has none",),
    ),
    # --- Names ---
    Case(
        "user-name-with-capitals",
        edit(SITE, lambda d: entry(d, "af_users", "bob").update(name="Bob")),
        ("af_users entry 'Bob' has capital letters: Debian's useradd refuses them and the hub lowercases",),
    ),
    Case(
        "user-name-useradd-refuses",
        edit(SITE, lambda d: entry(d, "af_users", "bob").update(name="bob.smith")),
        ("af_users entry 'bob.smith' is not a valid account name",),
    ),
    Case(
        "host-named-by-its-address",
        edit(HOSTS, lambda d: rename_host(d, "exec2", "10.0.0.12")),
        ("host '10.0.0.12' is an IP address", "put the address in its ansible_host"),
    ),
    # --- Copies of shared facts, renamed variables ---
    Case(
        "service-port-set-on-the-role-alone",
        edit(REGISTRY, lambda d: d.update(registry_pull_port=5002)),
        (
            "host 'services': registry_pull_port is set in the inventory, but it follows the shared fact "
            "af_registry_pull_port (roles/af_defaults)",
        ),
    ),
    Case(
        "signing-key-directory-set-on-the-role-alone",
        edit(STORAGE, lambda d: d.update(xrootd_signing_keys_dir="/srv/keys")),
        ("xrootd_signing_keys_dir is set in the inventory, but it follows the shared fact af_token_keys_dir",),
    ),
    Case(
        "per-host-fqdn-the-old-way",
        edit("host_vars/exec1.yml", lambda d: d.update(af_node_fqdn="wn1.af.test")),
        ("host 'exec1': af_node_fqdn is no longer read by any role: per-host names go in one site-wide map",),
    ),
    # --- The Kubernetes cluster's networks and control plane ---
    Case(
        "pod-network-overlaps-a-docker-bridge",
        edit(SITE, lambda d: d.update(af_k8s_pod_cidr="10.213.0.0/16")),
        (
            "af_k8s_pod_cidr (10.213.0.0/16) overlaps host 'exec1' docker_engine_daemon_options.bip (10.213.0.0/24): "
            "packets for one would be routed to the other",
        ),
    ),
    Case(
        "service-network-overlaps-the-pod-network",
        edit(SITE, lambda d: d.update(af_k8s_service_cidr="10.244.128.0/20")),
        ("af_k8s_pod_cidr (10.244.0.0/16) and af_k8s_service_cidr (10.244.128.0/20) overlap",),
    ),
    Case(
        "pod-network-with-host-bits",
        edit(SITE, lambda d: d.update(af_k8s_pod_cidr="10.244.0.1/16")),
        ("af_k8s_pod_cidr '10.244.0.1/16' is not a network in CIDR form (the network is 10.244.0.0/16)",),
    ),
    Case(
        "two-kubernetes-control-planes",
        edit(
            HOSTS,
            lambda d: d["all"]["children"]["testbed"]["children"].update(
                k8s_control_plane={"hosts": {"k8s-cp1": None, "k8s-cp2": None}}
            ),
        ),
        (
            "group 'k8s_control_plane' has 2 hosts ('k8s-cp1', 'k8s-cp2'): keep exactly one host in group "
            "'k8s_control_plane' in hosts.yml; these roles set up one control-plane node",
        ),
    ),
    Case(
        "value-referring-to-an-undefined-variable",
        edit(BASELINE, lambda d: d.update(chrony_servers=["{{ chrony_upstream }}"])),
        (
            f"hosts {quoted(NOT_CENTRAL_MANAGER)}: variable 'chrony_servers' cannot be evaluated from the "
            "inventory ('chrony_upstream' is undefined)",
        ),
    ),
]


def make_variant(inventory: Path) -> None:
    """The shape the integration suite and the benchmarks use: five execute nodes, no XCache, its own testbed."""
    variant = make_inventory(inventory.parent, "variant", "172.30.250.0/24", execute_nodes=5, drop_hosts=("xcache1",))
    shutil.rmtree(inventory)
    variant.rename(inventory)


GOOD = {
    "vaulted-secret": add_vaulted_secret,
    "hostvars-reference": add_hostvars_reference,
    "local-variant": make_variant,
}


def replace_text(relpath: str, old: str, new: str) -> Callable[[Path], None]:
    """A mutation of the file's text (for mistakes that are not valid YAML)."""

    def mutate(inventory: Path) -> None:
        path = inventory / relpath
        text = path.read_text()
        assert old in text, f"{old!r} not in {relpath}"
        path.write_text(text.replace(old, new, 1))

    return mutate


def append_text(relpath: str, text: str) -> Callable[[Path], None]:
    def mutate(inventory: Path) -> None:
        path = inventory / relpath
        path.write_text(path.read_text() + text)

    return mutate


# Inventories that do not parse: Ansible itself stops (ansible.cfg's [inventory] unparsed_is_failed and
# any_unparsed_is_failed; plugins/vars/af_host_group_vars.py names a broken group_vars file), before the check.
UNPARSABLE = [
    Case(
        "tab-in-hosts-file",
        replace_text(HOSTS, "        submit:", "\tsubmit:"),
        ("Tabs are usually invalid in YAML", "hosts.yml:", "Completely failed to parse inventory source"),
    ),
    Case(
        "yaml-error-in-group-vars",
        append_text("group_vars/execute.yml", "docker_engine_users: [alice\n"),
        ("group_vars/execute.yml line ", ": YAML parsing failed", "Fix the file (YAML) and run again."),
    ),
]


@dataclass(frozen=True)
class Run:
    """One more ansible-playbook run on the copy that a case (or GOOD entry) made."""

    inventory: str
    playbook: str = VALIDATE
    args: tuple[str, ...] = ()


# A bad inventory under --limit, and site.yml (validate.yml, then the plays that touch the nodes).
RUNS = {
    "limit-exec1": Run("site-name-invalid", VALIDATE, ("--limit", "exec1")),
    "site": Run("site-name-invalid", SITE_PLAYBOOK),
    "site-limit-exec1": Run("site-name-invalid", SITE_PLAYBOOK, ("--limit", "exec1")),
}
SITE_NAME_MESSAGE = next(case for case in BAD if case.id == "site-name-invalid").expected


# --- Running ansible-playbook ---------------------------------------------------------------------------


def run_playbook(inventory: Path, playbook: str = VALIDATE, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), playbook, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every run's ansible-playbook result, by case or run id (all run once, in parallel)."""
    jobs: dict[str, tuple[Path, str, tuple[str, ...]]] = {
        "local": (LOCAL / HOSTS, VALIDATE, ()),
        "example-site": (EXAMPLE_SITE, VALIDATE, ()),
    }
    mutations = {case.id: case.mutate for case in BAD + UNPARSABLE} | GOOD
    args = {case.id: case.args for case in BAD}
    copies: dict[str, Path] = {}
    for case_id, mutate in mutations.items():
        inventory = tmp_path_factory.mktemp(case_id) / "inventory"
        shutil.copytree(LOCAL, inventory, ignore=shutil.ignore_patterns("credentials", "artifacts"))
        mutate(inventory)
        copies[case_id] = inventory / HOSTS
        jobs[case_id] = (copies[case_id], VALIDATE, args.get(case_id, ()))
    for run_id, run in RUNS.items():
        jobs[run_id] = (copies[run.inventory], run.playbook, run.args)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = dict(zip(jobs, pool.map(lambda job: run_playbook(*job), jobs.values()), strict=True))
    return results


def _output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


RECAP_RE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)",
    re.MULTILINE,
)


def recap(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """The PLAY RECAP: host -> {ok, changed, unreachable, failed}."""
    return {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
        for m in RECAP_RE.finditer(result.stdout)
    }


def assert_no_host_contacted(result: subprocess.CompletedProcess) -> None:
    """Only the check ran, on the controller: no other play, no task outside the check's roles."""
    output = _output(result)
    hosts = recap(result)
    assert hosts, output
    assert all(h["unreachable"] == 0 and h["changed"] == 0 for h in hosts.values()), output
    assert re.findall(r"^PLAY \[(.*)\]", result.stdout, re.MULTILINE) == ["Check the inventory"], output
    tasks = re.findall(r"^TASK \[(.*)\]", result.stdout, re.MULTILINE)
    assert tasks, output
    assert all(t.startswith(("validate_inventory : ", "af_defaults : ")) for t in tasks), output
    assert "Gathering Facts" not in output, output


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.id)
def test_bad_inventory_is_refused_with_its_message(case, runs):
    result = runs[case.id]
    output = _output(result)
    assert result.returncode != 0, output
    assert "The inventory has" in output, output  # stopped by the check, not by something else
    for text in case.expected:
        assert text in output, f"expected {text!r} in:\n{output}"
    assert_no_host_contacted(result)


@pytest.mark.parametrize("case", UNPARSABLE, ids=lambda case: case.id)
def test_inventory_that_does_not_parse_stops_the_run_naming_the_file(case, runs):
    """A tab in hosts.yml used to give exit code 0 and a site.yml that did nothing; a YAML error in group_vars
    named no file."""
    result = runs[case.id]
    output = _output(result)
    assert result.returncode != 0, output
    for text in case.expected:
        assert text in output, f"expected {text!r} in:\n{output}"
    assert set(re.findall(r"^PLAY \[(.*)\]", result.stdout, re.MULTILINE)) <= {"Check the inventory"}, output
    assert "Gathering Facts" not in output, output
    assert all(h["changed"] == 0 and h["unreachable"] == 0 for h in recap(result).values()), output


def test_collected_values_are_not_echoed(runs):
    """Even with -vvv: the action result carries no 'invocation' (it would hold every collected value)."""
    output = _output(runs["plain-text-secret"])
    # Really -vvv (a line only that verbosity prints, under Mitogen and stock Ansible alike).
    assert "inventory source with yaml plugin" in output, output
    assert PLAIN_SECRET not in output, output
    assert "module_args" not in output, output


@pytest.mark.parametrize("run_id", list(RUNS))
def test_bad_inventory_stops_the_playbook_without_contacting_a_host(run_id, runs):
    """--limit exec1 still checks the whole inventory; a failed check stops site.yml before any node play."""
    result = runs[run_id]
    output = _output(result)
    assert result.returncode != 0, output
    assert "The inventory has 1 problem" in output, output
    for text in SITE_NAME_MESSAGE:
        assert text in output, f"expected {text!r} in:\n{output}"
    assert_no_host_contacted(result)
    if "--limit" in RUNS[run_id].args:
        assert set(recap(result)) == {"exec1"}, output


def test_local_inventory_passes(runs):
    result = runs["local"]
    assert result.returncode == 0, _output(result)
    assert_no_host_contacted(result)


def test_vaulted_secret_is_accepted_without_the_vault_password(runs):
    result = runs["vaulted-secret"]
    assert result.returncode == 0, _output(result)


def test_local_variant_inventory_passes(runs):
    result = runs["local-variant"]
    assert result.returncode == 0, _output(result)
    assert_no_host_contacted(result)


def test_value_referring_to_another_hosts_variables_is_evaluated(runs):
    result = runs["hostvars-reference"]
    assert result.returncode == 0, _output(result)


def test_privilege_escalation_on_all_is_refused_before_the_controller_is_touched(tmp_path):
    """ansible_become on 'all' reaches the controller's implicit localhost: refused with the fix, no sudo run."""
    inventory = tmp_path / "inventory"
    shutil.copytree(LOCAL, inventory, ignore=shutil.ignore_patterns("credentials", "artifacts"))
    testbed = inventory / "group_vars/all/testbed.yml"
    testbed.write_text(testbed.read_text().replace("ansible_become: false", "ansible_become: true"))
    result = run_playbook(inventory / HOSTS)
    output = _output(result)
    assert result.returncode != 0, output
    assert "The inventory sets ansible_become for the controller too" in output, output
    assert "to a parent group of the site's nodes" in output, output
    assert "sudo" not in output, output  # stopped before anything tried to escalate
    assert_no_host_contacted(result)


def test_example_site_inventory_passes(runs):
    result = runs["example-site"]
    assert result.returncode == 0, _output(result)
    assert_no_host_contacted(result)
