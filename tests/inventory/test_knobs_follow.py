"""A site changes a shared fact once, in its inventory, and every consumer follows.

af_defaults owns the hosts' names, the service ports, the token key directory and the URLs built
from them; every other role takes them as its own parameters. This test overrides each documented
knob on a copy of inventories/local and renders what the consumers would write (tests/inventory/
playbooks/consumers.yml: /etc/hosts, the firewall, HTCondor's identity map, XRootD's and the OIDC
provider's configuration, the hub's callback and the provider's registered redirect URI, image
names, session settings, key directories). No host is contacted: the roles' tasks are all skipped.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "inventories" / "local"
VENV_BIN = Path(sys.executable).parent
PLAYBOOK = "tests/inventory/playbooks/consumers.yml"

# The knobs (af_defaults' documented site settings) and their new values.
KNOBS = {
    "af_registry_pull_port": 5100,
    "af_registry_push_port": 5101,
    "af_oidc_provider_port": 4500,
    "af_xrootd_port": 1095,
    "af_xrootd_https_port": 8444,
    "af_hub_port": 8543,
    "af_token_issuer_port": 8442,
    "af_token_keys_dir": "/srv/af-site/token-keys",
}
# Hosts with unusual names (af_fqdn_overrides): the central manager, and the node of the issuer,
# registry, hub and provider.
RENAMED = {"head": "cm.pool.af.test", "services": "portal.af.test"}
# Each host's address for /etc/hosts (no facts: nothing is gathered).
ADDRESSES = {"head": "10.0.0.1", "submit1": "10.0.0.2", "services": "10.0.0.3"}


def _run(inventory: Path, out: Path) -> dict[str, dict]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN": "memory",  # no cached facts of a real testbed's nodes
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    out.mkdir()
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), PLAYBOOK, "-e", f"consumers_out={out}",
         "-e", "af_images_tag=knobs"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unreachable=1" not in result.stdout
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}


def _set(path: Path, values: dict) -> None:
    data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    data.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict]:
    """host -> what its consumers render, on a copy of inventories/local with every knob turned."""
    inventory = tmp_path_factory.mktemp("knobs") / "inventory"
    shutil.copytree(LOCAL, inventory, ignore=shutil.ignore_patterns("credentials", "artifacts"))
    _set(inventory / "group_vars/all/site.yml", {**KNOBS, "af_fqdn_overrides": RENAMED})
    for host, address in ADDRESSES.items():
        _set(inventory / "host_vars" / f"{host}.yml", {"baseline_host_address": address})
    return _run(inventory / "hosts.yml", tmp_path_factory.mktemp("knobs-out") / "out")


def _firewall_ports(ruleset: str) -> set[str]:
    return {line.split(" dport ")[1].split()[0] for line in ruleset.splitlines() if " dport " in line}


def test_a_hosts_own_name_reaches_every_host_and_service(rendered):
    for host, seen in rendered.items():
        assert "10.0.0.1 cm.pool.af.test head" in seen["etc_hosts"], host
        assert "10.0.0.3 portal.af.test services" in seen["etc_hosts"], host
        assert "services.af.test" not in json.dumps(seen), f"{host} still names services.af.test"
        assert "head.af.test" not in json.dumps(seen), f"{host} still names head.af.test"
    assert rendered["services"]["testbed_fqdn"] == "portal.af.test"
    assert rendered["services"]["node_fqdn"] == "portal.af.test"
    pool = rendered["exec1"]
    assert pool["htcondor_central_manager"] == "cm.pool.af.test"
    assert 'SSL "/CN=cm.pool.af.test" condor@cm.pool.af.test' in pool["htcondor_identity_map"]
    assert rendered["services"]["session_env"]["AF_COLLECTOR_HOST"] == "cm.pool.af.test"
    assert "server_name portal.af.test;" in rendered["services"]["oidc_provider_nginx"]


def test_the_registry_port_reaches_the_registry_the_firewall_and_every_image_name(rendered):
    services = rendered["services"]
    assert (services["registry_pull_port"], services["registry_push_port"]) == (5100, 5101)
    assert {"5100", "5101"} <= _firewall_ports(services["firewall"])
    assert not {"5000", "5001"} & _firewall_ports(services["firewall"])
    for host in ("exec1", "services"):
        assert rendered[host]["docker_engine_registries"] == ["portal.af.test:5100", "portal.af.test:5101"], host
        assert rendered[host]["worker_image"].startswith("portal.af.test:5100/af/worker:"), host
    assert services["session_env"]["AF_WORKER_IMAGE"].startswith("portal.af.test:5100/")


def test_the_oidc_port_reaches_the_provider_its_issuer_url_and_the_firewall(rendered):
    services = rendered["services"]
    assert "listen 4500 ssl;" in services["oidc_provider_nginx"]
    assert services["oidc_issuer_url"] == "https://portal.af.test:4500/api/oidc"
    assert services["oidc_provider_issuer"] == services["oidc_issuer_url"]
    assert "4500" in _firewall_ports(services["firewall"])
    assert "4443" not in _firewall_ports(services["firewall"])


def test_the_hub_port_reaches_its_callback_the_registered_redirect_uri_and_the_firewall(rendered):
    services = rendered["services"]
    assert services["hub_url"] == "https://portal.af.test:8543"
    assert services["hub_oauth_callback_url"] == "https://portal.af.test:8543/hub/oauth_callback"
    assert services["oidc_redirect_uris"] == [services["hub_oauth_callback_url"]]
    assert "8543" in _firewall_ports(services["firewall"])


def test_the_xrootd_ports_reach_the_servers_the_data_url_and_the_firewall(rendered):
    for host in ("storage1", "xcache1"):
        seen = rendered[host]
        assert "xrd.port 1095\n" in seen["xrootd_cfg"], host
        assert "xrd.protocol XrdHttp:8444 " in seen["xrootd_cfg"], host
        assert {"1095", "8444"} <= _firewall_ports(seen["firewall"]), host
        assert not {"1094", "8443"} & _firewall_ports(seen["firewall"]), host
    assert "pss.origin storage1.af.test:1095\n" in rendered["xcache1"]["xrootd_cfg"]
    assert rendered["services"]["session_env"]["AF_XROOTD_URL"] == "root://xcache1.af.test:1095"


def test_the_issuer_port_reaches_the_issuer_url_every_token_consumer_and_the_firewall(rendered):
    services = rendered["services"]
    issuer = "https://portal.af.test:8442"
    assert services["token_issuer_port"] == 8442
    assert services["token_issuer_url"] == issuer
    assert "8442" in _firewall_ports(services["firewall"])
    assert rendered["storage1"]["xrootd_token_issuer"] == issuer
    assert rendered["exec1"]["htcondor_scitokens_issuer"] == issuer


def test_the_token_key_directory_is_where_every_signer_looks(rendered):
    keys = KNOBS["af_token_keys_dir"]
    assert rendered["services"]["token_issuer_keys_dir"] == keys
    assert rendered["services"]["user_credentials_keys_dir"] == keys
    assert rendered["xcache1"]["xrootd_signing_keys_dir"] == keys
