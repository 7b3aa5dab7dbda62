"""Action plugin for the af_inventory_check module: collect the inventory's values on the controller.

The module (library/af_inventory_check.py, logic in module_utils/af_inventory.py) checks values it is
given. This plugin, which Ansible runs on the controller in place of the module, gathers those values:

1. reads the argument specs (<roles_dir>/<role>/meta/argument_specs.yml, the entry point that
   module_utils/af_inventory.spec_entry_point names) of the roles in role_hosts; a role without the
   file is skipped;
2. works out, for every inventory host, the variables to check: the spec options of the roles that run
   on the host (role_hosts: its groups or 'all'), extra_vars, and every variable whose name ends with a
   secret suffix (settings.secret_suffixes), facts excepted; only variables defined for the host count,
   and not those given on the command line (-e: the admin's choice for one run, not the inventory's);
3. evaluates each value with the host's own variables (as hostvars[host][name] would); a value that
   cannot be evaluated becomes an evaluation error naming the reason; a vault-encrypted value is
   replaced by a stand-in without being decrypted;
4. evaluates, for every host, the role defaults named in effective_vars that the inventory does not set
   (the defaults of the roles that run on the host, af_defaults first), so that the module judges the
   relations between values on what the roles will use;
5. runs the module with the collected values and returns its result.

With 'hostvars' given explicitly nothing is collected: the arguments go to the module as they are.
The collected values may be secrets: the module runs without logging on the controller
(ansible_no_target_syslog) and its 'invocation' (which would echo its arguments) is dropped.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from types import ModuleType

from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import VaultHelper, VaultLib
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import module_utils_loader
from ansible.utils.vars import load_extra_vars

MODULE = "af_inventory_check"
SPEC_FILES = ("argument_specs.yml", "argument_specs.yaml")
# Stands in for a vault-encrypted value, which is never decrypted here (module_utils/af_inventory.py
# recognises the "__ansible_vault" key).
VAULT_STAND_IN = {"__ansible_vault": "not decrypted by the inventory check"}
# Exception types (by name, wherever they live) raised when a vaulted value cannot be decrypted.
UNDECRYPTABLE_ERRORS = frozenset({"UndecryptableVaultError", "AnsibleVaultError"})

ARGUMENT_SPEC = {
    "groups": {"type": "dict"},
    "hostvars": {"type": "dict"},
    "argument_specs": {"type": "dict"},
    "role_hosts": {"type": "dict", "required": True},
    "settings": {"type": "dict", "default": {}},
    "evaluation_errors": {"type": "dict", "default": {}},
    "roles_dir": {"type": "path"},
    "extra_vars": {"type": "list", "elements": "str", "default": []},
    "effective_vars": {"type": "list", "elements": "str", "default": []},
}
DEFAULTS_FILES = ("main.yml", "main.yaml")


# --- Collection logic (plain Python, unit-tested without running Ansible) ---------------------------


@cache
def af_inventory() -> ModuleType:
    """module_utils/af_inventory.py, the owner of the check's rules (which spec entry point it reads, its
    default settings). Ansible imports a project's module_utils only into modules it ships to a host, not
    into controller plugins, so this plugin loads the file from the configured module_utils path."""
    path = module_utils_loader.find_plugin("af_inventory")
    if path is None:
        raise AnsibleActionFail(
            "module_utils/af_inventory.py is not on Ansible's module_utils path: run from the repository "
            "root, whose ansible.cfg sets module_utils = module_utils (or set ANSIBLE_MODULE_UTILS)"
        )
    spec = importlib.util.spec_from_file_location("af_inventory_for_the_action_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_argument_specs(roles_dir: str, roles: Iterable[str], load: Callable[[str], object]) -> dict[str, dict]:
    """Options of each role's meta/argument_specs.yml, from the entry point the check reads (role -> options).

    Roles without the file are left out; load(path) parses one YAML file.
    """
    specs = {}
    for role in sorted(roles):
        path = next(
            (p for p in (os.path.join(roles_dir, role, "meta", f) for f in SPEC_FILES) if os.path.isfile(p)),
            None,
        )
        if path is None:
            continue
        doc = load(path)
        entry_points = (doc.get("argument_specs") if isinstance(doc, Mapping) else None) or {}
        options = af_inventory().spec_entry_point(entry_points).get("options") or {}
        specs[role] = dict(options)
    return specs


def roles_on_host(group_names: Iterable[str], role_hosts: Mapping[str, Iterable[str]]) -> list[str]:
    """Roles that run on a host: those mapped to 'all' or to one of the host's groups."""
    mine = {*group_names, "all"}
    return sorted(role for role, targets in role_hosts.items() if mine & set(targets or []))


def names_to_check(
    host_vars: Mapping,
    roles: Iterable[str],
    specs: Mapping[str, Mapping],
    extra_vars: Iterable[str],
    secret_suffixes: Iterable[str],
) -> list[str]:
    """The variables to check on one host, among those defined for it (sorted).

    The spec options of its roles, extra_vars, and every variable named like a secret, except facts
    (ansible_<fact> injected from ansible_facts, e.g. a cached ansible_ssh_host_key_*).
    """
    suffixes = tuple(secret_suffixes)
    facts = host_vars.get("ansible_facts")
    facts = facts if isinstance(facts, Mapping) else {}
    names = set(extra_vars)
    for role in roles:
        names.update(specs.get(role) or {})
    for name in host_vars:
        if suffixes and name.endswith(suffixes) and not (name.startswith("ansible_") and name[8:] in facts):
            names.add(name)
    return sorted(name for name in names if name in host_vars)


def is_vault_encrypted(value: object) -> bool:
    """The 'ansible.builtin.vault_encrypted' test: an encrypted string, or a value decrypted from one."""
    ciphertext = VaultHelper.get_ciphertext(value, with_tags=False)
    return bool(ciphertext) and VaultLib.is_encrypted(ciphertext)


def _undecryptable(error: BaseException) -> bool:
    """True if error (or what caused it) is a vaulted value that could not be decrypted."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in UNDECRYPTABLE_ERRORS for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


def error_reason(error: BaseException) -> str:
    """Why a value could not be evaluated, on one line (e.g. "'chrony_upstream' is undefined")."""
    return " ".join(str(error).split()) or type(error).__name__


def evaluate(value: object, template: Callable[[object], object]) -> tuple[object, str | None]:
    """(value to check, None), or (None, reason) when it cannot be evaluated.

    A vault-encrypted value becomes VAULT_STAND_IN without being decrypted. A string that only refers
    to vaulted values (secret: "{{ vault_secret }}") does too: decrypted (the run has the vault
    password) or not. A vaulted value inside a list or dict is decrypted like any other value.
    """
    if is_vault_encrypted(value):
        return dict(VAULT_STAND_IN), None
    try:
        result = template(value)
    except Exception as error:  # any failure is reported for this host and variable
        if isinstance(value, str) and _undecryptable(error):
            return dict(VAULT_STAND_IN), None
        return None, error_reason(error)
    if is_vault_encrypted(result):
        return dict(VAULT_STAND_IN), None
    return result, None


def collect(
    *,
    hosts: Iterable[str],
    raw_vars: Callable[[str], Mapping],
    templar_for: Callable[[str, Mapping], Callable[[object], object]],
    specs: Mapping[str, Mapping],
    role_hosts: Mapping[str, Iterable[str]],
    extra_vars: Iterable[str],
    secret_suffixes: Iterable[str],
    command_line: Iterable[str] = (),
) -> tuple[dict[str, dict], dict[str, dict[str, str]]]:
    """The values to check (host -> {variable: value}) and the evaluation errors (host -> {variable: why}).

    raw_vars(host): the host's variables, not templated. templar_for(host, raw): a function that
    evaluates one value with that host's variables. command_line: names given with -e, not checked.
    """
    command_line = set(command_line)
    extra_vars = list(extra_vars)
    secret_suffixes = list(secret_suffixes)
    values: dict[str, dict] = {}
    errors: dict[str, dict[str, str]] = {}
    for host in hosts:
        host_vars = raw_vars(host)
        values[host] = {}
        if not isinstance(host_vars, Mapping):  # not an inventory host (groups given explicitly)
            continue
        roles = roles_on_host(host_vars.get("group_names") or [], role_hosts)
        template = templar_for(host, host_vars)
        for name in names_to_check(host_vars, roles, specs, extra_vars, secret_suffixes):
            if name in command_line:
                continue
            value, why = evaluate(host_vars[name], template)
            if why is None:
                values[host][name] = value
            else:
                errors.setdefault(host, {})[name] = why
    return values, errors


def read_role_defaults(roles_dir: str, roles: Iterable[str], load: Callable[[str], object]) -> dict[str, dict]:
    """Each role's defaults/main.yml (role -> variables, not templated); roles without one are left out."""
    defaults = {}
    for role in sorted(roles):
        path = next(
            (p for p in (os.path.join(roles_dir, role, "defaults", f) for f in DEFAULTS_FILES) if os.path.isfile(p)),
            None,
        )
        doc = load(path) if path else None
        if isinstance(doc, Mapping):
            defaults[role] = dict(doc)
    return defaults


def collect_defaults(
    *,
    hosts: Iterable[str],
    raw_vars: Callable[[str], Mapping],
    templar_for: Callable[[str, Mapping], Callable[[object], object]],
    role_defaults: Mapping[str, Mapping],
    role_hosts: Mapping[str, Iterable[str]],
    names: Iterable[str],
) -> dict[str, dict]:
    """The role defaults (among names) that the inventory does not set, evaluated per host: host -> {name: value}.

    Only the defaults of the roles that run on the host count (af_defaults first, so that a role's own
    default wins, as in a play). A default that cannot be evaluated here (it needs facts, say) is left out.
    """
    names = list(names)
    result: dict[str, dict] = {}
    for host in hosts:
        host_vars = raw_vars(host)
        if not isinstance(host_vars, Mapping):
            continue
        roles = roles_on_host(host_vars.get("group_names") or [], role_hosts)
        merged: dict = {}
        for role in sorted(roles, key=lambda r: (r != "af_defaults", r)):
            merged.update(role_defaults.get(role) or {})
        wanted = [name for name in names if name in merged and name not in host_vars]
        if not wanted:
            continue
        template = templar_for(host, {**merged, **host_vars})
        values = {}
        for name in wanted:
            value, why = evaluate(merged[name], template)
            if why is None and value != VAULT_STAND_IN:
                values[name] = value
        result[host] = values
    return result


CONTROLLER_BECOME = (
    "The inventory sets ansible_become for the controller too: Ansible's implicit localhost, where the "
    "inventory check, the site's secrets and its signing run, inherits every variable set on 'all'. Move "
    "ansible_become (and ansible_user) from 'all' (hosts.yml 'all: vars:' or group_vars/all) to a parent "
    "group of the site's nodes, as inventories/example-site/hosts.yml does with 'site_nodes'."
)


# --- The action plugin ---------------------------------------------------------------------------------


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        if self._play_context.become:
            # This task runs on the controller (the implicit localhost), which inherits the inventory's
            # "all" vars: privilege escalation meant for the nodes would run sudo here (Mitogen does
            # even as root, where stock Ansible skips it), and so would every task delegated to it.
            raise AnsibleActionFail(CONTROLLER_BECOME)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        groups = args["groups"]
        if groups is None:
            groups = {group: list(hosts) for group, hosts in task_vars["groups"].items()}
        module_args = {
            "groups": groups,
            "role_hosts": args["role_hosts"],
            "settings": args["settings"],
            "evaluation_errors": args["evaluation_errors"],
            "argument_specs": args["argument_specs"],
            "hostvars": args["hostvars"],
            "defaults": {},
        }
        if args["hostvars"] is None:
            self._collect(args, module_args, groups, task_vars)
        if module_args["argument_specs"] is None:
            module_args["argument_specs"] = {}

        # The values may be secrets: the module must not log its arguments (syslog/journal) ...
        module_vars = {**task_vars, "ansible_no_target_syslog": True}
        result.update(self._execute_module(module_name=MODULE, module_args=module_args, task_vars=module_vars))
        # ... nor return them: 'invocation' would echo every collected value (shown with -vvv, kept by register).
        result.pop("invocation", None)
        return result

    def _collect(self, args: dict, module_args: dict, groups: Mapping, task_vars: Mapping) -> None:
        """Fill in module_args' hostvars, evaluation_errors and (unless given) argument_specs."""
        specs = args["argument_specs"]
        if specs is None:
            if not args["roles_dir"]:
                raise AnsibleActionFail("set roles_dir (or argument_specs) to collect the inventory's values")
            specs = read_argument_specs(args["roles_dir"], args["role_hosts"], self._loader.load_from_file)
        module_args["argument_specs"] = specs

        hostvars = task_vars["hostvars"]

        def templar_for(_host: str, host_vars: Mapping) -> Callable[[object], object]:
            # The host's variables as a task on that host sees them (hostvars included), so a value is
            # evaluated the way hostvars[host][name] evaluates it.
            return self._templar.copy_with_new_env(available_variables={**host_vars, "hostvars": hostvars}).template

        suffixes = (args["settings"] or {}).get("secret_suffixes")
        values, errors = collect(
            hosts=groups.get("all") or [],
            raw_vars=hostvars.raw_get,
            templar_for=templar_for,
            specs=specs,
            role_hosts=args["role_hosts"],
            extra_vars=args["extra_vars"],
            secret_suffixes=af_inventory().DEFAULT_SETTINGS["secret_suffixes"] if suffixes is None else suffixes,
            command_line=load_extra_vars(self._loader),
        )
        module_args["hostvars"] = values
        merged = {host: dict(given or {}) for host, given in module_args["evaluation_errors"].items()}
        for host, host_errors in errors.items():
            merged.setdefault(host, {}).update(host_errors)
        module_args["evaluation_errors"] = merged

        if args["effective_vars"] and args["roles_dir"]:
            load = self._loader.load_from_file
            role_defaults = read_role_defaults(
                args["roles_dir"], args["role_hosts"], lambda path: load(path, trusted_as_template=True)
            )
            module_args["defaults"] = collect_defaults(
                hosts=groups.get("all") or [],
                raw_vars=hostvars.raw_get,
                templar_for=templar_for,
                role_defaults=role_defaults,
                role_hosts=args["role_hosts"],
                names=args["effective_vars"],
            )
