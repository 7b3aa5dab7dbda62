#!/usr/bin/python
"""Ansible module: read-only facts about an HTCondor pool, optionally waiting until it is ready."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: condor_pool_info
short_description: Facts about an HTCondor pool, optionally waiting until it is ready
description:
  - Queries an HTCondor collector with the Python bindings (C(htcondor2)) and returns the daemons, execute
    slots, schedds and accounting groups of the pool as RV(pool).
  - With O(wait_for), queries again every O(poll_interval) seconds until every condition holds, and fails
    after O(timeout) seconds naming each condition that is not met (with the last facts). A query that fails
    (for example because the collector is not up yet) counts as a condition not met while waiting.
  - Without O(wait_for), fails at once if a query fails.
  - Needs the HTCondor Python bindings C(htcondor2) for the Python interpreter that runs the module (on Debian
    they come with the C(condor) package).
  - The logic lives in C(module_utils/af_condor.py).
version_added: "0.1.0"
author:
  - coffea-casa-af developers
options:
  collector:
    description:
      - The collector to query, as C(host) or C(host:port).
      - Default is C(COLLECTOR_HOST) of the local HTCondor configuration.
    type: str
  condor_config:
    description:
      - The HTCondor configuration file to read (sets C(CONDOR_CONFIG) before the bindings are loaded).
    type: path
  slot_constraint:
    description:
      - ClassAd constraint selecting the slots that count for the O(wait_for.slots), O(wait_for.cpus) and
        O(wait_for.startd_machines) conditions, for example C(HasDocker =?= true). Evaluated by the collector.
      - Every slot is still returned in RV(pool.slots), with RV(pool.slots[].matches_constraint).
    type: str
  wait_for:
    description:
      - Conditions to wait for; all given ones must hold. Without this option the pool is queried once.
    type: dict
    suboptions:
      slots:
        description: At least this many slot ads (startd ads) that match O(slot_constraint).
        type: int
      cpus:
        description: The C(Cpus) of the slots that match O(slot_constraint) add up to at least this.
        type: int
      daemons:
        description: At least one ad of each of these daemons.
        type: list
        elements: str
        choices: [collector, negotiator, schedd, startd, master]
      schedds:
        description: At least this many schedd ads.
        type: int
      startd_machines:
        description: Slots that match O(slot_constraint) on at least this many distinct machines (C(Machine)).
        type: int
  timeout:
    description: Seconds to wait for O(wait_for) before failing.
    type: int
    default: 120
  poll_interval:
    description: Seconds between two queries while waiting.
    type: float
    default: 1.0
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Never changes anything (C(changed) is always false); runs in check mode too.
requirements:
  - HTCondor Python bindings (C(htcondor2), HTCondor 23.9 or later) on the managed host.
"""

EXAMPLES = r"""
- name: Wait for the negotiator, the schedds and every execute node
  condor_pool_info:
    wait_for:
      daemons: [collector, negotiator]
      schedds: "{{ groups['submit'] | length }}"
      startd_machines: "{{ groups['execute'] | length }}"
    timeout: 180

- name: Wait for 8 cores on Docker-capable slots
  condor_pool_info:
    slot_constraint: HasDocker =?= true
    wait_for:
      cpus: 8
  register: pool

- name: Show the accounting groups
  ansible.builtin.debug:
    msg: "{{ pool.pool.groups | selectattr('is_group') | map(attribute='name') }}"
"""

RETURN = r"""
pool:
  description: The pool facts (when waiting timed out, the last ones gathered).
  returned: always
  type: dict
  contains:
    collector:
      description: The collector queried (O(collector) or the configured C(COLLECTOR_HOST)).
      type: str
    daemons:
      description:
        - Names of the daemons that advertise to the collector, by daemon (C(collector), C(negotiator),
          C(schedd), C(master)); for C(startd) the distinct machines that have slots.
      type: dict
      sample: {collector: [head.af.example], negotiator: [head.af.example], schedd: [submit1.af.example],
               startd: [exec1.af.example], master: [exec1.af.example, head.af.example, submit1.af.example]}
    slots:
      description: Every slot ad, sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: Slot name (C(Name)).
          type: str
        machine:
          description: Machine (C(Machine)).
          type: str
        slot_type:
          description: C(partitionable), C(dynamic) or C(static) (from C(SlotType)).
          type: str
        state:
          description: C(State), for example C(Unclaimed).
          type: str
        activity:
          description: C(Activity), for example C(Idle).
          type: str
        cpus:
          description: C(Cpus).
          type: int
        memory:
          description: C(Memory) in MiB.
          type: int
        has_docker:
          description: Whether C(HasDocker) is true.
          type: bool
        accounting_group:
          description: C(AccountingGroup), or null.
          type: str
        matches_constraint:
          description: Whether the slot matches O(slot_constraint) (always true without it).
          type: bool
    schedds:
      description: Every schedd, sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: Schedd name.
          type: str
        total_running_jobs:
          description: C(TotalRunningJobs).
          type: int
        total_idle_jobs:
          description: C(TotalIdleJobs).
          type: int
        total_held_jobs:
          description: C(TotalHeldJobs).
          type: int
    groups:
      description: The negotiator's accounting ads (groups and submitters), sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: Group or submitter name.
          type: str
        is_group:
          description: C(IsAccountingGroup).
          type: bool
        quota:
          description: C(ConfigQuota), else C(EffectiveQuota), or null.
          type: float
        surplus:
          description: C(SurplusPolicy); only when the ad has it.
          type: str
        priority:
          description: C(Priority).
          type: float
        resources_used:
          description: C(ResourcesUsed).
          type: float
waited:
  description: Seconds spent gathering (and waiting).
  returned: always
  type: float
  sample: 3.52
errors:
  description: The queries that failed, by ad type (when the module fails because of them).
  returned: failure
  type: dict
"""

import importlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# Ansible module convention: imports follow the documentation blocks.
from ansible.module_utils.af_condor import (  # noqa: E402
    DAEMONS,
    format_not_ready,
    gather_pool,
    plain_value,
    wait_for_pool,
)
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "collector": {"type": "str"},
    "condor_config": {"type": "path"},
    "slot_constraint": {"type": "str"},
    "wait_for": {
        "type": "dict",
        "options": {
            "slots": {"type": "int"},
            "cpus": {"type": "int"},
            "daemons": {"type": "list", "elements": "str", "choices": list(DAEMONS)},
            "schedds": {"type": "int"},
            "startd_machines": {"type": "int"},
        },
    },
    "timeout": {"type": "int", "default": 120},
    "poll_interval": {"type": "float", "default": 1.0},
}


def load_htcondor(module: AnsibleModule, condor_config: str | None):
    """Import htcondor2 (after setting CONDOR_CONFIG when asked); fail clearly if it is not there."""
    if condor_config:
        os.environ["CONDOR_CONFIG"] = condor_config
    try:
        htcondor = importlib.import_module("htcondor2")
    except ImportError as exc:
        module.fail_json(
            msg=f"the HTCondor Python bindings (htcondor2) cannot be imported by {sys.executable}: {exc}. "
            "Install HTCondor (Debian: the condor package) on this host, or point ansible_python_interpreter "
            "at a Python that has the bindings.",
            changed=False,
        )
    if condor_config and hasattr(htcondor, "reload_config"):
        htcondor.reload_config()
    return htcondor


def make_query(htcondor, collector: str | None):
    """query(ad_type, constraint, projection) against the collector, for af_condor.gather_pool."""

    def query(ad_type: str, constraint: str | None, projection: list[str]):
        client = htcondor.Collector(collector) if collector else htcondor.Collector()
        kind = getattr(htcondor.AdType, ad_type.capitalize())
        return client.query(kind, constraint=constraint, projection=projection)

    return query


def configured_collector(htcondor) -> str:
    try:
        return str(plain_value(htcondor.param.get("COLLECTOR_HOST")) or "")
    except Exception:  # a broken configuration shows up in the queries
        return ""


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["timeout"] < 0 or params["poll_interval"] <= 0:
        module.fail_json(msg="timeout must not be negative and poll_interval must be positive", changed=False)
    htcondor = load_htcondor(module, params["condor_config"])
    collector = params["collector"] or configured_collector(htcondor)
    query = make_query(htcondor, params["collector"])
    result = wait_for_pool(
        lambda: gather_pool(query, collector, params["slot_constraint"]),
        params["wait_for"],
        slot_constraint=params["slot_constraint"],
        timeout=params["timeout"],
        poll_interval=params["poll_interval"],
    )
    if not result["ready"]:
        module.fail_json(
            msg=format_not_ready(result, params["timeout"], params["wait_for"]),
            pool=result["pool"],
            waited=result["waited"],
            errors=result["errors"],
            changed=False,
        )
    module.exit_json(changed=False, pool=result["pool"], waited=result["waited"])


if __name__ == "__main__":
    main()
