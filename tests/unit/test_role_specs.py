"""Every role documents exactly the variables it defines, so validation and docs cannot drift."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from af_inventory import spec_entry_point

ROLES = Path(__file__).resolve().parents[2] / "roles"
ROLE_DIRS = sorted(path for path in ROLES.iterdir() if (path / "defaults/main.yml").exists())


def _load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda path: path.name)
def test_defaults_and_argument_specs_name_the_same_variables(role):
    defaults = set(_load(role / "defaults/main.yml"))
    specs = spec_entry_point(_load(role / "meta/argument_specs.yml")["argument_specs"])["options"]
    assert defaults - set(specs) == set(), "defaults without an argument spec entry"
    assert set(specs) - defaults == set(), "argument spec entries without a default"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda path: path.name)
def test_role_variables_carry_the_role_prefix(role):
    prefix = "af_" if role.name == "af_defaults" else f"{role.name}_"
    # testbed roles share the testbed_ prefix (testbed_name, testbed_network_* are common to both).
    allowed = (prefix, "testbed_") if role.name.startswith("testbed") else (prefix,)
    for name in _load(role / "defaults/main.yml"):
        assert name.startswith(allowed), f"{role.name}: {name} should start with {allowed}"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda path: path.name)
def test_every_role_has_a_readme_naming_its_variables(role):
    readme = role / "README.md"
    assert readme.exists(), f"{role.name} has no README.md"
    text = readme.read_text()
    missing = [name for name in _load(role / "defaults/main.yml") if name not in text]
    assert not missing, f"{role.name}/README.md does not mention {missing}"


def test_role_readmes_are_generated_from_the_current_specs():
    script = ROLES.parent / "docs/role_readme.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
