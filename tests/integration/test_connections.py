"""A production node's connection path, SSH as an admin account with sudo, under Mitogen and stock Ansible.

The testbeds reach their nodes with Docker's connection; a site reaches its nodes over SSH with sudo
(inventories/example-site). One container from the node image runs sshd with an `ansible` account that
may sudo, as a site's node would, and tests/integration/playbooks/ssh_sudo.yml runs against it under
each strategy: a `--check --diff` dry run that does nothing, a run that does its work and its handler,
a second run that changes nothing. The secret it writes never appears in the output.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.testbed import run_playbook

NAME = f"afssh{os.getpid()}"
IMAGE = "af-node-base:trixie"
PLAYBOOK = "tests/integration/playbooks/ssh_sudo.yml"
# Mitogen is what ansible.cfg selects: its run sets no strategy, so it proves the default too.
STRATEGIES = {"mitogen": {}, "stock": {"ANSIBLE_STRATEGY": "linear"}}
SETUP = """set -e
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
  openssh-server sudo python3-cryptography >/dev/null
useradd --create-home --shell /bin/bash ansible
install -d -m 0700 -o ansible -g ansible /home/ansible/.ssh
install -m 0600 -o ansible -g ansible /dev/stdin /home/ansible/.ssh/authorized_keys
echo 'ansible ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ansible
mkdir -p /run/sshd
/usr/sbin/sshd
"""


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def ssh_node(tmp_path_factory):
    """An SSH-only node (no Docker connection used by Ansible), its inventory and extra vars."""
    workdir = tmp_path_factory.mktemp("ssh")
    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    docker("rm", "-f", NAME)
    started = docker("run", "-d", "--name", NAME, "--label", f"af.testbed={NAME}", IMAGE, "sleep", "infinity")
    assert started.returncode == 0, started.stderr
    try:
        setup = docker("exec", "-i", NAME, "bash", "-c", SETUP, stdin=(workdir / "id_ed25519.pub").read_text())
        assert setup.returncode == 0, setup.stdout + setup.stderr
        address = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", NAME).stdout.strip()
        # The node's host key is known, as a site's nodes are: host key checking stays on.
        host_key = docker("exec", NAME, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(" ".join([address, *host_key]) + "\n")
        inventory = workdir / "hosts.yml"
        host = {
            "ansible_host": address,
            "ansible_user": "ansible",
            "ansible_become": True,
            "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts}",
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"node": host}}}))
        signing_key = ec.generate_private_key(ec.SECP256R1())
        extra = workdir / "vars.yml"
        secret = secrets.token_urlsafe(24)
        extra.write_text(
            yaml.safe_dump(
                {
                    "ssh_sudo_secret": secret,
                    "ssh_sudo_key": signing_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode(),
                    "ssh_sudo_controller_file": str(inventory),
                }
            )
        )
        yield inventory, extra, secret
    finally:
        docker("rm", "-f", NAME)


def node(command: str) -> subprocess.CompletedProcess:
    return docker("exec", NAME, "bash", "-c", command)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_ssh_with_sudo_dry_run_converge_and_rerun(ssh_node, strategy):
    inventory, extra, secret = ssh_node
    marker = f"/srv/af-{strategy}"

    def run(*args: str):
        result = run_playbook(
            PLAYBOOK,
            inventory,
            "-e",
            f"@{extra}",
            "-e",
            f"ssh_sudo_strategy={strategy}",
            *args,
            **STRATEGIES[strategy],
        )
        assert result.rc == 0, result.output[-4000:]
        assert secret not in result.output, "a no_log value reached the output"
        return result

    how = "a Mitogen interpreter" if strategy == "mitogen" else "a new interpreter per task"

    dry = run("--check", "--diff")
    assert dry.changed["node"] > 0, "the dry run reported no work on a new node"
    assert node(f"test -e {marker}").returncode == 1, "the dry run changed the node"

    first = run()
    assert f"modules run by {how}" in first.output
    assert first.changed_tasks("node") == [
        "Make the marker directory",
        "Write a secret file (its content never logged)",
        "Sign a token on the node with the project's module",
        "Record that the handler ran",
    ]
    files = node(f"stat -c '%n %U %a' {marker}/secret {marker}/token {marker}/handler-ran").stdout.split("\n")
    assert files[:3] == [f"{marker}/{name} root 600" for name in ("secret", "token", "handler-ran")]
    assert node(f"cat {marker}/secret").stdout.strip() == secret
    payload = node(f"cat {marker}/token").stdout.strip().split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "alice" and claims["scope"] == "storage.read:/store"

    again = run()
    assert again.changed == {"node": 0}, again.changed_tasks("node")
