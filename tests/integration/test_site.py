"""site.yml against a throwaway copy of the local testbed, as a site admin runs it."""

import shutil
import subprocess

import pytest
import yaml

from tests.support.testbed import docker_exec, make_inventory, run_playbook


@pytest.fixture(scope="module")
def site(facility):
    """The shared facility testbed (conftest.py): dry-run on new nodes first, then converged once."""
    if facility.first is None:
        pytest.skip("reusing a converged testbed (AF_TEST_FACILITY_INVENTORY): no first converge to inspect")
    return facility.inventory, facility.first, facility.dry_run, facility.after_dry_run, facility


@pytest.mark.testbed
def test_a_dry_run_on_new_nodes_reports_the_work_and_does_none_of_it(site):
    _, _, dry_run, after, _ = site
    assert dry_run.rc == 0, dry_run.output[-5000:]
    assert all(changed > 0 for changed in dry_run.changed.values()), dry_run.changed
    # The dry run names the work: e.g. the facility user it would create on each node.
    assert "changed: [head] => (item=alice:2001)" in dry_run.output
    assert after == {"alice": 2, "tls_dir": 1, "ca": False}, after


@pytest.mark.testbed
def test_first_converge_succeeds_on_every_node(site):
    _, first, _, _, _ = site
    assert first.rc == 0, first.output[-5000:]
    nodes = {"head", "submit1", "exec1", "exec2", "storage1", "services"}
    assert nodes <= set(first.recap), first.recap
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in first.recap.values())
    # The run ends with what runs where: every node, its roles, its services up.
    summary = first.output[first.output.index("Facility af-testbed (af.test): 6 nodes") :]
    # One entry per node; the YAML callback wraps long entries onto continuation lines.
    entries: dict[str, str] = {}
    current = None
    for raw in summary.splitlines()[1:]:
        if not raw.startswith("    "):
            break
        if raw.startswith("    - "):
            current = raw.strip(" -'").split()[0]
            entries[current] = raw
        elif current:
            entries[current] += " " + raw.strip()
    for node in nodes:
        line = entries[node]
        assert "chrony:active" in line and "nftables:active" in line, line
        if node in ("head", "submit1", "exec1", "exec2"):
            assert "condor:active" in line, line
        if node in ("exec1", "exec2", "services"):
            assert "docker:active" in line, line
        if node == "head":
            assert "apt-cacher-ng:active" in line, line
        if node == "storage1":
            assert "xrootd@af:active" in line, line
        if node == "services":
            assert "nginx:active" in line, line


@pytest.mark.testbed
def test_second_converge_changes_nothing(site):
    inventory, *_ = site
    second = run_playbook("site.yml", inventory)
    assert second.rc == 0, second.output[-5000:]
    assert second.total_changed() == 0, {host: n for host, n in second.changed.items() if n}


@pytest.mark.testbed
def test_every_node_installs_its_packages_through_the_site_package_cache(facility):
    cache_url = "http://head.af.test:3142"
    for node in ("head", "submit1", "exec1", "exec2", "storage1", "services"):
        proxy = facility.exec(node, "apt-config dump Acquire::http::Proxy")
        assert f'Acquire::http::Proxy "{cache_url}";' in proxy.stdout, (node, proxy.stdout)
    # The four HTCondor nodes installed HTCondor (Debian's package `condor`) in the first converge: the
    # cache fetched it from the mirror once and served it to each of them.
    cached = facility.exec("head", "find /var/cache/apt-cacher-ng -name 'condor_*.deb' -size +1M")
    assert len(cached.stdout.split()) == 1, cached.stdout + cached.stderr
    address = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    clients = {
        node: subprocess.run(
            ["docker", "inspect", "-f", address, facility.container(node)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for node in ("head", "submit1", "exec1", "exec2")
    }
    # apt-cacher-ng's transfer log: time|I (in from the mirror) or O (out to a client)|bytes|client|file
    log = facility.exec("head", "cat /var/log/apt-cacher-ng/apt-cacher.log").stdout
    transfers = [fields for fields in (line.split("|") for line in log.splitlines()) if len(fields) == 5]
    condor = [(kind, client) for _, kind, _, client, path in transfers if "/condor_" in path]
    assert [kind for kind, _ in condor].count("I") == 1, condor
    assert {client for kind, client in condor if kind == "O"} >= set(clients.values()), (clients, condor)
    # Other HTTPS destinations are refused: the cache is no open proxy.
    tunnel = facility.exec("exec1", f"curl -sS -o /dev/null -x {cache_url} https://pypi.org/")
    assert tunnel.returncode != 0 and "CONNECT tunnel failed, response 403" in tunnel.stderr, tunnel.stderr


@pytest.mark.testbed
def test_a_dry_run_of_the_converged_site_previews_one_nodes_new_knob_and_nothing_else(site):
    """--check --diff on the whole converged site, with a new journald knob in exec1's host_vars.

    Every other node must report nothing to do (check mode predicts a converged site correctly),
    exec1 exactly the knob's file and its handler; then the knob is applied to exec1 alone and
    restarts only journald.
    """
    inventory, *_, facility = site
    journald = {
        "Storage": "persistent",
        "SystemMaxUse": "2G",
        "SystemKeepFree": "2G",
        "MaxRetentionSec": "1month",
        "RateLimitIntervalSec": "30s",
        "RateLimitBurst": 10000,
    }
    host_vars = inventory / "host_vars" / "exec1.yml"
    host_vars.parent.mkdir(exist_ok=True)
    container = facility.container("exec1")
    chrony_since = docker_exec(container, "systemctl show -p ActiveEnterTimestampMonotonic chrony").stdout
    try:
        host_vars.write_text(yaml.safe_dump({"baseline_journald": journald}))
        preview = run_playbook("site.yml", inventory, "--check", "--diff")
        assert preview.rc == 0, preview.output[-5000:]
        assert {host: n for host, n in preview.changed.items() if n and host != "exec1"} == {}, preview.changed
        changed = preview.changed_tasks("exec1")
        assert [name.split(" : ")[-1] for name in changed] == ["Limit the journal", "Restart journald"], changed
        assert "-SystemMaxUse=1G" in preview.output and "+SystemMaxUse=2G" in preview.output
        on_node = docker_exec(container, "cat /etc/systemd/journald.conf.d/60-af.conf").stdout
        assert "SystemMaxUse=1G" in on_node, "check mode must not change the node"

        applied = run_playbook("site.yml", inventory, "--limit", "exec1")
        assert applied.rc == 0, applied.output[-5000:]
        handlers = [line for line in applied.output.splitlines() if line.startswith("RUNNING HANDLER")]
        assert len(handlers) == 1 and "Restart journald" in handlers[0], handlers
        assert docker_exec(container, "systemctl show -p ActiveEnterTimestampMonotonic chrony").stdout == chrony_since
        assert "SystemMaxUse=2G" in docker_exec(container, "cat /etc/systemd/journald.conf.d/60-af.conf").stdout
    finally:
        host_vars.unlink(missing_ok=True)
        restored = run_playbook("playbooks/baseline.yml", inventory, "--limit", "exec1")
    assert restored.rc == 0 and restored.changed["exec1"] > 0, restored.output[-3000:]


def test_a_bad_inventory_stops_site_yml_before_any_node_is_touched(tmp_path):
    inventory = make_inventory(tmp_path, "afbad", "172.30.219.0/24")
    site_vars = inventory / "group_vars" / "all" / "site.yml"
    settings = yaml.safe_load(site_vars.read_text())
    settings["af_users"][1]["uid"] = settings["af_users"][0]["uid"]
    site_vars.write_text(yaml.safe_dump(settings, sort_keys=False))
    run = run_playbook("site.yml", inventory)
    assert run.rc != 0
    assert "uid" in run.output.lower() and settings["af_users"][1]["name"] in run.output
    # Only the check ran, on the controller: the nodes (which do not even exist) were never
    # contacted (any contact would be "unreachable"), no facts were gathered, no node task ran.
    assert all(counts["unreachable"] == 0 and counts["changed"] == 0 for counts in run.recap.values()), run.recap
    assert "Gathering Facts" not in run.output
    assert "TASK [baseline" not in run.output and "TASK [accounts" not in run.output
    shutil.rmtree(inventory)


@pytest.mark.testbed
def test_a_certificate_near_expiry_is_reissued_and_then_left_alone(site):
    inventory, *_, facility = site
    container = facility.container("exec1")
    serial = "openssl x509 -noout -serial -in /etc/af/tls/host.crt"
    before = docker_exec(container, serial).stdout
    # A renewal window longer than the certificate's lifetime makes the current one "near expiry".
    renew = run_playbook("site.yml", inventory, "--tags", "pki", "--limit", "exec1", "-e", "site_pki_renew_days=400")
    assert renew.rc == 0, renew.output[-5000:]
    after = docker_exec(container, serial).stdout
    assert after and after != before, "the certificate was not re-issued"
    verify = docker_exec(container, "openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt /etc/af/tls/host.crt")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    again = run_playbook("site.yml", inventory, "--tags", "pki", "--limit", "exec1")
    assert again.rc == 0 and again.changed["exec1"] == 0, again.output[-3000:]
