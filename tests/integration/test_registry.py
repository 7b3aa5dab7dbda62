"""The site container registry on a converged testbed (roles/registry, roles/docker_engine).

Anonymous, read-only pulls on af_registry; pushes on af_registry_push by the builder account only, with
the password generated on the controller; TLS verified against the site CA everywhere, no insecure
registries. Uses the session fixture ``facility`` (tests/integration/conftest.py). The test pushes a
probe image of its own (the facility's images may be there too; this does not rely on them).

The push password is never put into an assertion message: commands that carry it are not echoed.
"""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

import pytest
import yaml

REGISTRY_NODE = "services"
PULL_NODE = "exec1"
PUSH_USER = "af-builder"
PROBE = "test/probe:1"
SITE_CA = "/usr/local/share/ca-certificates/af-site-ca.crt"
# What the registry answers an anonymous upload (POST /v2/<name>/blobs/uploads/): the pull endpoint
# is read-only (405), the push endpoint asks for a login (401).
READ_ONLY = "405"
UNAUTHORIZED = "401"


def _group_hosts(inventory: Path, group: str) -> list[str]:
    """Hosts of a group in the inventory's hosts.yml, however deeply its groups nest."""
    pending = [yaml.safe_load((inventory / "hosts.yml").read_text())["all"]]
    while pending:
        body = pending.pop(0) or {}
        for name, child in (body.get("children") or {}).items():
            if name == group:
                return list((child or {}).get("hosts") or {})
            pending.append(child)
    return []


def _group_var(inventory: Path, group: str, name: str, default):
    path = inventory / "group_vars" / f"{group}.yml"
    values = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    return values.get(name, default)


class Registry:
    """Addresses as af_defaults derives them (af_registry, af_registry_push) and the push password."""

    def __init__(self, inventory: Path) -> None:
        host = _group_hosts(inventory, "registry")[0]
        domain = yaml.safe_load((inventory / "group_vars/all/site.yml").read_text())["af_domain"]
        self.host = host if "." in host else f"{host}.{domain}"
        self.pull = f"{self.host}:{_group_var(inventory, 'all/site', 'af_registry_pull_port', 5000)}"
        self.push = f"{self.host}:{_group_var(inventory, 'all/site', 'af_registry_push_port', 5001)}"
        self.password_file = inventory / "credentials" / "registry" / f"{PUSH_USER}.password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()


def _run(facility, node: str, command: str):
    return facility.exec(node, command)


def _shown(result) -> str:
    """A command's outcome for an assertion message (its output only, never the command)."""
    return f"rc={result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"


def _login(facility, node: str, address: str, password: str):
    """docker login with the password on stdin (from a 0600 file that is removed again)."""
    secret = f"/root/.registry-probe-{address.replace(':', '-')}"
    command = (
        f"umask 077; printf %s {shlex.quote(password)} > {secret}; "
        f"docker login {address} -u {PUSH_USER} --password-stdin < {secret}; rc=$?; rm -f {secret}; exit $rc"
    )
    return _run(facility, node, command)


def _upload_status(facility, node: str, address: str, credentials: str = "") -> str:
    """HTTP status of starting a blob upload (the first request of every push), verified with the site CA."""
    user = f"-u {shlex.quote(credentials)} " if credentials else ""
    result = _run(
        facility,
        node,
        f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {SITE_CA} {user}-X POST "
        f"https://{address}/v2/test/anonymous/blobs/uploads/",
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def registry(facility) -> Registry:
    return Registry(facility.inventory)


@pytest.fixture(scope="module")
def probe(facility, registry) -> str:
    """A tiny image built on the registry node (docker import of one file) and pushed by the builder."""
    image = f"{registry.push}/{PROBE}"
    build = _run(
        facility,
        REGISTRY_NODE,
        "set -e; dir=$(mktemp -d); echo 'registry probe' > $dir/probe.txt; "
        f"tar -C $dir -c . | docker import - {image} >/dev/null; rm -rf $dir",
    )
    assert build.returncode == 0, _shown(build)
    login = _login(facility, REGISTRY_NODE, registry.push, registry.password)
    assert login.returncode == 0, _shown(login)
    try:
        push = _run(facility, REGISTRY_NODE, f"docker push {image}")
        assert push.returncode == 0, _shown(push)
    finally:
        _run(facility, REGISTRY_NODE, f"docker logout {registry.push}")
    return PROBE


@pytest.mark.testbed
def test_both_endpoints_run_on_the_registry_node(facility):
    result = _run(facility, REGISTRY_NODE, "systemctl is-active docker-registry af-registry-push")
    assert result.stdout.split() == ["active", "active"], _shown(result)


@pytest.mark.testbed
def test_push_password_is_kept_on_the_controller_only_readable_by_its_owner(registry):
    assert registry.password_file.is_file()
    assert stat.S_IMODE(registry.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(registry.password_file.parent.stat().st_mode) == 0o700
    assert len(registry.password) >= 20  # generated, not a default password


@pytest.mark.testbed
def test_registry_files_on_the_node(facility):
    result = _run(
        facility,
        REGISTRY_NODE,
        "stat -c '%n %a %U:%G' /etc/docker/registry/af-push.htpasswd /etc/docker/registry/tls/host.key; "
        "grep -c '^af-builder:\\$2[aby]\\$' /etc/docker/registry/af-push.htpasswd",
    )
    assert result.returncode == 0, _shown(result)
    lines = result.stdout.splitlines()
    assert lines[0] == "/etc/docker/registry/af-push.htpasswd 640 root:docker-registry", lines
    assert lines[1] == "/etc/docker/registry/tls/host.key 400 docker-registry:docker-registry", lines
    assert lines[2] == "1", lines  # one bcrypt entry, for the builder


@pytest.mark.testbed
def test_builder_pushes_and_an_execute_node_pulls_anonymously_with_tls_verified(facility, registry, probe):
    # exec1 has no registry credential at all, and no insecure registry.
    config = _run(facility, PULL_NODE, "cat /root/.docker/config.json 2>/dev/null; cat /etc/docker/daemon.json")
    assert "auths" not in config.stdout or registry.host not in config.stdout, _shown(config)
    assert "insecure-registries" not in config.stdout, _shown(config)
    ca = _run(facility, PULL_NODE, f"cmp {SITE_CA} /etc/docker/certs.d/{registry.pull}/ca.crt")
    assert ca.returncode == 0, _shown(ca)
    _run(facility, PULL_NODE, f"docker image rm -f {registry.pull}/{probe}")
    pull = _run(facility, PULL_NODE, f"docker pull {registry.pull}/{probe}")
    assert pull.returncode == 0, _shown(pull)
    content = _run(
        facility,
        PULL_NODE,
        f"id=$(docker create {registry.pull}/{probe} /probe) && docker cp $id:/probe.txt - | tar -xO; "
        "docker rm $id >/dev/null",
    )
    assert content.stdout.strip() == "registry probe", _shown(content)


@pytest.mark.testbed
def test_anonymous_pushes_are_refused_on_both_endpoints(facility, registry, probe):
    assert _upload_status(facility, PULL_NODE, registry.pull) == READ_ONLY
    assert _upload_status(facility, PULL_NODE, registry.push) == UNAUTHORIZED
    pull = _run(facility, PULL_NODE, f"docker pull {registry.pull}/{probe}")
    assert pull.returncode == 0, _shown(pull)
    for address in (registry.pull, registry.push):
        target = f"{address}/test/anonymous:1"
        push = _run(facility, PULL_NODE, f"docker tag {registry.pull}/{probe} {target} && docker push {target}")
        assert push.returncode != 0, _shown(push)
        _run(facility, PULL_NODE, f"docker image rm {target}")
    # Nothing arrived under that name.
    gone = _run(facility, PULL_NODE, f"docker pull {registry.pull}/test/anonymous:1")
    assert gone.returncode != 0, _shown(gone)


@pytest.mark.testbed
def test_a_wrong_password_is_refused(facility, registry):
    wrong = "not-" + registry.password[::-1]
    login = _login(facility, REGISTRY_NODE, registry.push, wrong)
    assert login.returncode != 0, f"docker login with a wrong password succeeded (rc={login.returncode})"
    status = _upload_status(facility, REGISTRY_NODE, registry.push, f"{PUSH_USER}:{wrong}")
    assert status == UNAUTHORIZED, f"upload with a wrong password answered {status}"


@pytest.mark.testbed
def test_tls_is_verified_against_the_site_ca(facility, registry):
    # With only the public CAs (Debian's Mozilla bundle; an empty --capath keeps curl away from the node's
    # system store, which holds the site CA), the registry's certificate does not verify ...
    public = "mkdir -p /tmp/no-cas && cat /usr/share/ca-certificates/mozilla/*.crt > /tmp/public-cas.pem"
    only = "--capath /tmp/no-cas --cacert"
    for address in (registry.pull, registry.push):
        result = _run(facility, PULL_NODE, f"{public}; curl -sS {only} /tmp/public-cas.pem https://{address}/v2/")
        assert result.returncode == 60, _shown(result)  # curl: peer certificate cannot be verified
    # ... and with the site CA alone it does.
    ok = _run(
        facility, PULL_NODE, f"curl -sS -o /dev/null -w '%{{http_code}}' {only} {SITE_CA} https://{registry.pull}/v2/"
    )
    assert ok.stdout.strip() == "200", _shown(ok)
