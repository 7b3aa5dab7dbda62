"""The inventory check looks wherever a role runs: its role -> groups map (roles/validate_inventory,
validate_inventory_role_hosts) is what site.yml's plays do, derived here from the playbooks.

A role with an argument spec that runs on a group the map does not name would have its variables
unchecked there; a role added to site.yml without a map entry would not be checked at all.
"""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _load(path: Path):
    return yaml.safe_load(path.read_text())


def _groups(pattern: str) -> set[str]:
    """The groups of a play's host pattern ('execute:registry:hub', 'hub[0]', 'all')."""
    return {re.sub(r"\[.*\]$", "", part.strip()) for part in re.split(r"[:,]", pattern) if part.strip()}


def _with_dependencies(role: str) -> list[str]:
    """A role and the roles its meta/main.yml pulls in (recursively)."""
    meta = REPO / "roles" / role / "meta" / "main.yml"
    roles = [role]
    for dependency in (_load(meta) or {}).get("dependencies") or [] if meta.exists() else []:
        name = dependency["role"] if isinstance(dependency, dict) else dependency
        roles += _with_dependencies(name)
    return roles


def _tasks_roles(tasks) -> list[str]:
    names = []
    for task in tasks or []:
        for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
            if key in task:
                names.append(task[key]["name"])
        names += _tasks_roles(task.get("block")) + _tasks_roles(task.get("rescue")) + _tasks_roles(task.get("always"))
    return names


def roles_of_site() -> dict[str, set[str]]:
    """role -> the groups site.yml runs it on, from every imported playbook's plays (meta dependencies too)."""
    where: dict[str, set[str]] = {}
    for item in _load(REPO / "site.yml"):
        playbook = REPO / item["ansible.builtin.import_playbook"]
        for play in _load(playbook):
            roles = [r["role"] if isinstance(r, dict) else r for r in play.get("roles") or []]
            roles += _tasks_roles(play.get("pre_tasks")) + _tasks_roles(play.get("tasks"))
            roles += _tasks_roles(play.get("post_tasks"))
            for role in roles:
                for name in _with_dependencies(role):
                    where.setdefault(name, set()).update(_groups(play["hosts"]))
    return where


def test_the_check_looks_wherever_a_role_with_an_argument_spec_runs():
    role_hosts = _load(REPO / "roles/validate_inventory/defaults/main.yml")["validate_inventory_role_hosts"]
    site = roles_of_site()
    assert {"jupyterhub", "user_credentials", "images", "facility_summary"} <= set(site)  # the parser sees them
    for role, groups in sorted(site.items()):
        if role == "validate_inventory" or not (REPO / "roles" / role / "meta" / "argument_specs.yml").exists():
            continue
        mapped = set(role_hosts.get(role) or [])
        expected = {"all"} if "all" in groups else groups
        assert mapped == expected, (
            f"role '{role}' runs on {sorted(groups)} in site.yml, but validate_inventory_role_hosts maps it to "
            f"{sorted(mapped)}: make roles/validate_inventory/defaults/main.yml say {sorted(expected)}"
        )


def test_the_map_names_no_role_that_site_yml_does_not_run():
    role_hosts = _load(REPO / "roles/validate_inventory/defaults/main.yml")["validate_inventory_role_hosts"]
    assert set(role_hosts) <= set(roles_of_site())
