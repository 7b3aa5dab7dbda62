"""What a site admin or a user notices after the node baseline, checked across the nodes.

The baseline has no scenario of its own: every scenario converges it first (with idempotence), and
this one's three nodes (central manager and token issuer, submit node, execute node) are the shape
these checks need, so they run here instead of on a fourth set of containers."""

import os
import stat
import time
from pathlib import Path

import pytest
import testinfra
import yaml

NODES = ("head", "submit1", "exec1")
REPO = Path(__file__).resolve().parents[3]
SITE = yaml.safe_load((REPO / "inventories/local/group_vars/all/site.yml").read_text())
CREDENTIALS = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / "credentials"


@pytest.fixture(scope="module")
def nodes():
    return {name: testinfra.get_host(f"docker://{name}") for name in NODES}


def test_accounts_have_the_same_ids_on_every_node(nodes):
    for account in SITE["af_users"] + SITE["af_service_accounts"]:
        entries = {name: node.check_output(f"getent passwd {account['name']}") for name, node in nodes.items()}
        assert len(set(entries.values())) == 1, entries
        assert entries["head"].split(":")[2] == str(account["uid"])
    for group in SITE["af_groups"]:
        gids = {name: node.check_output(f"getent group {group['name']}").split(":")[2] for name, node in nodes.items()}
        assert set(gids.values()) == {str(group["gid"])}, gids


def test_user_homes_are_private(nodes):
    for node in nodes.values():
        for user in SITE["af_users"]:
            home = node.file(f"/home/{user['name']}")
            assert home.is_directory and home.user == user["name"] and home.mode == 0o700


def test_nodes_follow_the_head_node_clock(nodes):
    head_address = nodes["head"].check_output("hostname -I").split()[0]
    deadline = time.monotonic() + 90
    while True:
        sources = {name: nodes[name].check_output("chronyc -n sources") for name in ("submit1", "exec1")}
        if all(f"^* {head_address}" in out for out in sources.values()):
            break
        assert time.monotonic() < deadline, f"nodes never selected the head node as time source: {sources}"
        time.sleep(2)
    assert "Stratum         : 8" in nodes["head"].check_output("chronyc tracking")


def test_every_node_lists_all_nodes_in_etc_hosts(nodes):
    for node in nodes.values():
        hosts = node.file("/etc/hosts").content_string
        for name in NODES:
            assert f" {name}.af.test {name}\n" in hosts


@pytest.fixture
def listener(nodes):
    """Start a TLS server with the node's site certificate on a port; stop it afterwards."""
    started = []

    def start(node_name, port):
        unit = f"af-test-listener-{port}"
        nodes[node_name].check_output(
            f"systemd-run --unit {unit} openssl s_server -quiet -www -accept {port} "
            "-cert /etc/af/tls/host.crt -key /etc/af/tls/host.key"
        )
        started.append((node_name, unit))
        deadline = time.monotonic() + 15
        while nodes[node_name].run(f"ss -Htln 'sport = :{port}' | grep -q LISTEN").rc != 0:
            assert time.monotonic() < deadline, f"listener on {node_name}:{port} never came up"
            time.sleep(0.3)

    yield start
    for node_name, unit in started:
        nodes[node_name].run(f"systemctl stop {unit}")


def test_tls_server_is_trusted_through_the_site_ca(nodes):
    # The token issuer's web server on head serves the node's site certificate on 443.
    page = "https://head.af.test/.well-known/openid-configuration"
    ok = nodes["exec1"].run(f"curl -sS --fail --max-time 10 -o /dev/null {page}")
    assert ok.rc == 0, ok.stderr
    # Same server, name it was not issued for: refused.
    address = nodes["head"].check_output("hostname -I").split()[0]
    wrong = nodes["exec1"].run(
        f"curl -sS --max-time 10 -o /dev/null --resolve wrong.af.test:443:{address} https://wrong.af.test/"
    )
    assert wrong.rc == 60 and "no alternative certificate subject name" in wrong.stderr, wrong.stderr
    # Trust comes from the site CA itself: with only that CA the chain verifies, with any other
    # trust anchor (here the client's own certificate) it does not.
    verify = (
        "openssl s_client -connect head.af.test:443 -servername head.af.test -verify_return_error "
        "-verify_hostname head.af.test -no-CApath -no-CAstore -CAfile {} </dev/null"
    )
    assert nodes["exec1"].run(verify.format("/usr/local/share/ca-certificates/af-site-ca.crt")).rc == 0
    untrusted = nodes["exec1"].run(verify.format("/etc/af/tls/host.crt"))
    assert untrusted.rc != 0 and "certificate verify failed" in untrusted.stdout + untrusted.stderr


def test_firewall_drops_ports_the_node_role_does_not_open(nodes, listener):
    # 8443 is a storage port, not an execute port: reachable locally, dropped from the network.
    listener("exec1", 8443)
    assert nodes["exec1"].run("curl -sk --max-time 5 -o /dev/null https://localhost:8443/").rc == 0
    blocked = nodes["head"].run("curl -sk --max-time 5 -o /dev/null https://exec1.af.test:8443/")
    assert blocked.rc == 28, f"expected a timeout (dropped), got rc={blocked.rc}: {blocked.stderr}"
    ruleset = nodes["exec1"].check_output("nft list table inet af_filter")
    assert "policy drop" in ruleset and "tcp dport 9618 accept" in ruleset


def test_firewall_keeps_docker_dns_working(nodes):
    # Docker's embedded DNS lives in the node's own nat table: the firewall must not flush it.
    for node in nodes.values():
        assert node.run("getent hosts deb.debian.org").rc == 0
        assert "127.0.0.11" in node.check_output("nft list table ip nat")


def test_private_keys_are_not_readable_by_others(nodes):
    for node in nodes.values():
        key = node.file("/etc/af/tls/host.key")
        assert key.user == "root" and key.mode == 0o600
        world_readable = node.check_output("find /etc/af -type f -perm -o+r").split()
        assert all(path.endswith((".crt", ".csr")) for path in world_readable), world_readable
    ca_dir = CREDENTIALS / "site-ca"
    assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600


def test_journal_and_kernel_settings_are_in_place(nodes):
    for node in nodes.values():
        journald = node.check_output("systemd-analyze cat-config systemd/journald.conf")
        assert "SystemMaxUse=1G" in journald
        assert node.service("systemd-journald").is_running
        assert "net.core.somaxconn = 4096" in node.file("/etc/sysctl.d/60-af.conf").content_string


def test_apt_uses_the_configured_mirror(nodes):
    for node in nodes.values():
        assert not node.file("/etc/apt/sources.list").exists
        sources = node.file("/etc/apt/sources.list.d/debian.sources").content_string
        assert "URIs: http://deb.debian.org/debian" in sources
