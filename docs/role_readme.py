#!/usr/bin/env python3
"""Keep each role's README variable table in step with its meta/argument_specs.yml and defaults.

The prose above the marker line is hand-written and kept; everything below it is generated.
  python docs/role_readme.py          # rewrite the tables
  python docs/role_readme.py --check  # exit 1 if a README is out of date (run by the tests)
"""

import argparse
import sys
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[1] / "roles"
sys.path.insert(0, str(ROLES.parent / "module_utils"))
from af_inventory import spec_entry_point  # noqa: E402  (the project's module_utils, put on the path above)

MARKER = "<!-- Generated from meta/argument_specs.yml by docs/role_readme.py: edit those, not below. -->"


def _default(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    text = text.replace("|", "\\|")
    return f"`{text}`" if text else '`""`'


def render_table(role: Path) -> str:
    spec_file = role / "meta/argument_specs.yml"
    if not spec_file.exists():
        return ""
    entry_points = yaml.safe_load(spec_file.read_text())["argument_specs"]
    main = spec_entry_point(entry_points)
    defaults_file = role / "defaults/main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    defaults = defaults or {}
    lines = [MARKER, "", "## Variables", "", "| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name, option in main.get("options", {}).items():
        kind = option.get("type", "str")
        if kind == "list" and "elements" in option:
            kind = f"list of {option['elements']}"
        if option.get("required"):
            kind += " (required)"
        default = _default(defaults[name]) if name in defaults else "—"
        description = (
            " ".join(option.get("description", []))
            if isinstance(option.get("description"), list)
            else (option.get("description", ""))
        )
        lines.append(f"| `{name}` | {kind} | {default} | {description} |")
    return "\n".join(lines) + "\n"


def updated_readme(role: Path) -> str:
    readme = role / "README.md"
    current = readme.read_text() if readme.exists() else f"# Role `{role.name}`\n\n"
    prose = current.split(MARKER)[0].rstrip() + "\n\n"
    return prose + render_table(role)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report READMEs that are out of date")
    args = parser.parse_args()
    stale = []
    for role in sorted(path for path in ROLES.iterdir() if path.is_dir()):
        if not (role / "meta/argument_specs.yml").exists():
            continue
        wanted = updated_readme(role)
        readme = role / "README.md"
        if not readme.exists() or readme.read_text() != wanted:
            stale.append(role.name)
            if not args.check:
                readme.write_text(wanted)
    if args.check and stale:
        print("READMEs out of date (run: python docs/role_readme.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
