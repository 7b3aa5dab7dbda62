"""playbooks/testbed.yml and testbed_down.yml on a throwaway testbed beside the developer's one.

The throwaway testbed is a copy of inventories/local named "tbtest<pid>" (network tbtest<pid>-net, a
free subnet, its own fact cache, two nodes: head and exec1), so it never touches the "af" demo testbed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.testbed import (
    ansible_env,
    docker_exec,
    free_subnet,
    inventory_hosts,
    make_inventory,
    run_playbook,
)

# Unique per run, like the facility testbed: concurrent runs on one engine never share nodes.
NAME = f"tbtest{os.getpid()}"
NETWORK = f"{NAME}-net"
DOMAIN = "af.test"

pytestmark = pytest.mark.testbed


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def containers_of_testbed() -> set[str]:
    listed = docker("ps", "-a", "--filter", f"label=af.testbed={NAME}", "--format", "{{.Names}}")
    assert listed.returncode == 0, listed.stderr
    return set(listed.stdout.split())


def network_exists() -> bool:
    return docker("network", "inspect", NETWORK).returncode == 0


def remove_leftovers() -> None:
    """Remove this testbed's labelled containers and volumes and its network with the docker CLI.

    For a clean start and as the last resort when testbed_down.yml itself fails.
    """
    for kind in ("container", "volume"):
        found = docker(kind, "ls", "-aq" if kind == "container" else "-q", "--filter", f"label=af.testbed={NAME}")
        for ident in found.stdout.split():
            docker(kind, "rm", "-f", ident)
    if network_exists():
        docker("network", "rm", NETWORK)


def fact_cache_dir(inventory: Path) -> Path:
    # The per-testbed fact cache that tests.support.testbed points ansible-playbook at.
    return inventory.parent / f"{inventory.name}.facts"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    """The throwaway inventory; the testbed is always removed at the end, whatever happened."""
    assert docker("info").returncode == 0, "the testbed needs a running Docker engine"
    # Start clean even if an interrupted earlier run left this testbed behind; before choosing a
    # subnet, as the old network's subnet is free again then.
    remove_leftovers()
    inventory = make_inventory(
        tmp_path_factory.mktemp("testbed"),
        NAME,
        free_subnet(),
        execute_nodes=1,
        # Two nodes show everything testbed.yml does; more only cost time.
        drop_hosts=("submit1", "storage1", "xcache1", "services"),
    )
    try:
        yield inventory
    finally:
        down = run_playbook("playbooks/testbed_down.yml", inventory)
        if down.rc != 0 or containers_of_testbed() or network_exists():
            remove_leftovers()
        assert down.rc == 0, down.output[-3000:]


@pytest.fixture(scope="module")
def testbed(inventory):
    up = run_playbook("playbooks/testbed.yml", inventory)
    assert up.rc == 0, up.output[-5000:]
    return up


def test_check_mode_on_a_missing_testbed_succeeds_and_creates_nothing(inventory):
    check = run_playbook("playbooks/testbed.yml", inventory, "--check")
    assert check.rc == 0, check.output[-5000:]
    assert check.recap["localhost"]["changed"] > 0, "check mode must report the nodes it would create"
    assert containers_of_testbed() == set()
    assert not network_exists()


@pytest.fixture(scope="module")
def hosts(inventory) -> list[str]:
    """The throwaway testbed's hosts, read from its inventory (names are the inventory's business)."""
    return inventory_hosts(inventory)


def test_one_systemd_container_per_host_with_its_name_and_labels(testbed, hosts):
    assert containers_of_testbed() == {f"{NAME}-{host}" for host in hosts}
    for host in hosts:
        container = f"{NAME}-{host}"
        state = docker_exec(container, "systemctl is-system-running").stdout.strip()
        assert state in {"running", "degraded"}, (container, state)
        assert docker_exec(container, "hostname").stdout.strip() == host
        assert docker_exec(container, "hostname -f").stdout.strip() == f"{host}.{DOMAIN}"
        labels = json.loads(docker("inspect", "-f", "{{json .Config.Labels}}", container).stdout)
        assert labels["af.testbed"] == NAME and labels["af.host"] == host, labels
        privileged = docker("inspect", "-f", "{{.HostConfig.Privileged}}", container).stdout.strip()
        assert privileged == "false"


def test_nodes_resolve_and_reach_each_other_by_short_name_and_fqdn(testbed, inventory, hosts):
    address_of = f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}'
    addresses = {host: docker("inspect", "-f", address_of, f"{NAME}-{host}").stdout.strip() for host in hosts}
    subnet = ipaddress.ip_network(
        yaml.safe_load((inventory / "group_vars/all/testbed.yml").read_text())["testbed_network_subnet"]
    )
    assert all(ipaddress.ip_address(address) in subnet for address in addresses.values()), addresses
    for host in hosts:
        if host == "head":
            continue
        for name in (host, f"{host}.{DOMAIN}"):
            resolved = docker_exec(f"{NAME}-head", f"getent hosts {name}")
            assert resolved.returncode == 0, (name, resolved.stderr)
            assert resolved.stdout.split()[0] == addresses[host], (name, resolved.stdout)
            ping = docker_exec(f"{NAME}-head", f"ping -c 1 -W 2 {name}")
            assert ping.returncode == 0, (name, ping.stdout, ping.stderr)


def test_every_node_has_its_own_machine_id(testbed, hosts):
    machine_ids = [docker_exec(f"{NAME}-{host}", "cat /etc/machine-id").stdout.strip() for host in hosts]
    assert all(re.fullmatch(r"[0-9a-f]{32}", machine_id) for machine_id in machine_ids), machine_ids
    assert len(set(machine_ids)) == len(hosts), machine_ids


def test_second_run_changes_nothing(testbed, inventory):
    second = run_playbook("playbooks/testbed.yml", inventory)
    assert second.rc == 0, second.output[-5000:]
    assert second.recap["localhost"]["changed"] == 0, second.output[-5000:]


def test_check_mode_on_a_running_testbed_changes_nothing(testbed, inventory):
    check = run_playbook("playbooks/testbed.yml", inventory, "--check")
    assert check.rc == 0, check.output[-5000:]
    assert check.recap["localhost"]["changed"] == 0, check.output[-5000:]


def cached_facts() -> str:
    """A stale fact-cache entry as ansible-core 2.19's jsonfile cache writes it. It must be well formed: the
    testbed inventory's constructed source reads cached facts, and an inventory source that does not parse
    stops the run (ansible.cfg: any_unparsed_is_failed)."""
    return json.dumps({"__payload__": json.dumps({"ansible_hostname": "stale"})})


def test_a_recreated_node_forgets_its_cached_facts_and_only_its_own(testbed, inventory):
    cache = fact_cache_dir(inventory)
    cache.mkdir(exist_ok=True)
    # ansible-core 2.19 names cache files s<schema>_<host>; older cores <host>.
    planted = {name: cache / name for name in ("s1_exec1", "exec1", "s1_head", "s1_exec10")}
    for name, path in planted.items():
        path.write_text(cached_facts() if name.startswith("s1_") else "{}")
    assert docker("rm", "-f", f"{NAME}-exec1").returncode == 0

    rerun = run_playbook("playbooks/testbed.yml", inventory)
    assert rerun.rc == 0, rerun.output[-5000:]
    assert f"{NAME}-exec1" in containers_of_testbed()
    state = docker_exec(f"{NAME}-exec1", "systemctl is-system-running").stdout.strip()
    assert state in {"running", "degraded"}
    assert not planted["s1_exec1"].exists() and not planted["exec1"].exists()
    assert planted["s1_head"].exists() and planted["s1_exec10"].exists(), "other hosts' facts must stay"


def test_down_removes_containers_network_and_cached_facts(testbed, inventory, hosts):
    cache = fact_cache_dir(inventory)
    cache.mkdir(exist_ok=True)
    planted = cache / f"s1_{hosts[-1]}"
    planted.write_text(cached_facts())

    down = run_playbook("playbooks/testbed_down.yml", inventory)
    assert down.rc == 0, down.output[-5000:]
    assert containers_of_testbed() == set()
    assert not network_exists()
    assert docker("volume", "ls", "-q", "--filter", f"label=af.testbed={NAME}").stdout.split() == []
    assert not planted.exists()
    assert docker("image", "inspect", "af-node-base:trixie").returncode == 0, "the image is kept"

    again = run_playbook("playbooks/testbed_down.yml", inventory)
    assert again.rc == 0, again.output[-5000:]
    assert again.recap["localhost"]["changed"] == 0, again.output[-5000:]


def test_ansible_env_points_at_this_testbeds_own_fact_cache(inventory):
    # Guards the assumption the fact-cache tests rely on.
    assert ansible_env(inventory)["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == str(fact_cache_dir(inventory))
