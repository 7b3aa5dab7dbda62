"""ansible.cfg's default strategy: Mitogen, loaded from the pinned package; when it cannot be loaded the
run stops before any host is contacted, with a message naming the switch to stock Ansible, and that
switch works."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = """\
- name: One task on a node nobody can reach
  hosts: node
  gather_facts: false
  tasks:
    - name: Touch the node
      ansible.builtin.ping:
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    # 192.0.2.0/24 is TEST-NET-1: never routed, so any attempt to reach it shows as UNREACHABLE.
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    node:\n      ansible_host: 192.0.2.1\n      ansible_ssh_timeout: 2\n"
    )
    broken = tmp_path / "broken" / "ansible_mitogen"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('simulated broken install')\n")
    return tmp_path


def run(project: Path, *inventory: str, **env: str) -> subprocess.CompletedProcess:
    """ansible-playbook play.yml in project with the repository's ansible.cfg (inventory: hosts.yml by default)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    environment.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **env)
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), *(inventory or ("-i", "hosts.yml")), "play.yml"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_broken_mitogen_stops_the_run_before_any_host_and_names_the_switch(project):
    broken = run(project, PYTHONPATH=str(project / "broken"))
    output = broken.stdout + broken.stderr
    assert broken.returncode != 0
    assert "Mitogen, this project's default strategy, cannot be loaded (simulated broken install)" in output
    assert "ANSIBLE_STRATEGY=linear" in output
    assert "TASK [Touch the node]" not in output and "UNREACHABLE" not in output


def test_the_switch_to_stock_ansible_runs_without_mitogen(project):
    stock = run(project, PYTHONPATH=str(project / "broken"), ANSIBLE_STRATEGY="linear")
    output = stock.stdout + stock.stderr
    # Stock Ansible gets as far as trying the node, which is all a node nobody can reach allows.
    assert "TASK [Touch the node]" in output and "UNREACHABLE" in output, output
    assert "cannot be loaded" not in output
    assert "Failed to connect to the host via ssh" in output  # stock Ansible's own SSH error


def test_the_default_run_goes_through_mitogen(project):
    default = run(project)
    output = default.stdout + default.stderr
    assert "TASK [Touch the node]" in output and "UNREACHABLE" in output, output
    # Mitogen's SSH transport reports the failure in its own words, not stock Ansible's.
    assert "EOF on stream" in output and "Failed to connect to the host via ssh" not in output, output


COLLECTION_TASKS = """\
- name: Three collection-module tasks on the controller
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Write setting 1
      community.general.ini_file:
        path: "{{ playbook_dir }}/settings.ini"
        section: node
        option: option1
        value: "1"
        mode: "0600"
    - name: Write setting 2
      community.general.ini_file:
        path: "{{ playbook_dir }}/settings.ini"
        section: node
        option: option2
        value: "2"
        mode: "0600"
    - name: Write setting 3
      community.general.ini_file:
        path: "{{ playbook_dir }}/settings.ini"
        section: node
        option: option3
        value: "3"
        mode: "0600"
"""
# Counts calls in the controller's processes only (Mitogen's node-side interpreters start with no stdio).
COUNT_LISTINGS = """\
import os
import sys

if os.path.basename(sys.argv[0]) == "ansible-playbook":
    import ansible.collections.list as listing

    _original = listing.list_collection_dirs

    def _counted(*args, **kwargs):
        with open(os.environ["AF_LISTINGS"], "a") as log:
            log.write(f"{os.getpid()}\\n")
        return _original(*args, **kwargs)

    listing.list_collection_dirs = _counted
"""


def test_installed_collections_are_listed_once_per_run_not_once_per_task(tmp_path):
    # Ansible forks one worker per task and host, and Mitogen's planner listed every installed collection
    # in each (a third of the controller's CPU in a no-op converge); the strategy shim lists them once.
    (tmp_path / "play.yml").write_text(COLLECTION_TASKS)
    (tmp_path / "site-hooks").mkdir()
    (tmp_path / "site-hooks/sitecustomize.py").write_text(COUNT_LISTINGS)
    listings = tmp_path / "listings.log"
    result = run(
        tmp_path, "-i", "localhost,", "-c", "local", PYTHONPATH=str(tmp_path / "site-hooks"), AF_LISTINGS=str(listings)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "option3 = 3" in (tmp_path / "settings.ini").read_text()  # the collection's module really ran
    assert len(listings.read_text().split()) == 1, "collections listed more than once in one run"
