"""group_vars/ and host_vars/ as Ansible's host_group_vars loads them, with the file and line in a YAML error.

ansible-core's host_group_vars re-raises a parse error as plain text and drops its origin, so a YAML
mistake in group_vars stops the run with "YAML parsing failed: ..." and no file name. This subclass loads
the same files the same way and only adds the file and the line to that error. ansible.cfg enables it in
place of host_group_vars.
"""

from __future__ import annotations

DOCUMENTATION = """
    name: af_host_group_vars
    short_description: host_group_vars whose YAML errors name the file and the line
    requirements:
        - Enabled in configuration (vars_plugins_enabled)
    description:
        - Loads group_vars/ and host_vars/ exactly as ansible.builtin.host_group_vars does.
        - A file that does not parse stops the run with its path, line and column.
    options:
      stage:
        ini:
          - key: stage
            section: vars_af_host_group_vars
        env:
          - name: ANSIBLE_VARS_PLUGIN_STAGE
      _valid_extensions:
        default: [".yml", ".yaml", ".json"]
        description:
          - "Check all of these extensions when looking for 'variable' files."
        env:
          - name: ANSIBLE_YAML_FILENAME_EXT
        ini:
          - key: yaml_valid_extensions
            section: defaults
        type: list
        elements: string
    extends_documentation_fragment:
      - vars_plugin_staging
"""

from ansible.errors import AnsibleParserError  # noqa: E402 - Ansible plugin convention: imports follow DOCUMENTATION
from ansible.plugins.vars.host_group_vars import VarsModule as HostGroupVars  # noqa: E402


def where_it_failed(error: BaseException) -> str:
    """' line L, column C' from the YAML parser's mark somewhere in the error's causes, or ''."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        mark = getattr(current, "problem_mark", None) or getattr(current, "context_mark", None)
        if mark is not None:
            return f" line {mark.line + 1}, column {mark.column + 1}"
        current = current.__cause__ or current.__context__
    return ""


class VarsModule(HostGroupVars):
    def load_found_files(self, loader, data, found_files):
        for found in found_files:
            try:
                loader.load_from_file(found, cache="all", unsafe=True, trusted_as_template=True)
            except Exception as error:
                reason = " ".join(str(getattr(error, "message", error)).split())
                raise AnsibleParserError(
                    f"{found}{where_it_failed(error)}: {reason} Fix the file (YAML) and run again."
                ) from None
        # Parsed and cached: the parent combines them as usual.
        return super().load_found_files(loader, data, found_files)
