"""HTCondor helpers for the condor_pool_info module (library/).

Pure Python (the standard library and af_wait, the project's bounded wait), so everything here is
unit-testable without HTCondor: turn collector
ads (ClassAds or plain dicts) into plain facts, gather them through an injected query function, evaluate
the conditions of ``wait_for`` and wait for them.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping

from ansible.module_utils.af_wait import wait_until

# --- Pool facts ----------------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


DAEMONS = ("collector", "negotiator", "schedd", "startd", "master")
# The ad types gathered and their projections.
PROJECTIONS: dict[str, list[str]] = {
    "collector": ["Name", "Machine"],
    "negotiator": ["Name", "Machine"],
    "schedd": ["Name", "Machine", "TotalRunningJobs", "TotalIdleJobs", "TotalHeldJobs"],
    "startd": [
        "Name",
        "Machine",
        "SlotType",
        "PartitionableSlot",
        "DynamicSlot",
        "State",
        "Activity",
        "Cpus",
        "Memory",
        "HasDocker",
        "AccountingGroup",
    ],
    "master": ["Name", "Machine"],
    "accounting": [
        "Name",
        "IsAccountingGroup",
        "ConfigQuota",
        "EffectiveQuota",
        "SurplusPolicy",
        "Priority",
        "ResourcesUsed",
    ],
}
AD_TYPES = tuple(PROJECTIONS)
WAIT_KEYS = ("slots", "cpus", "daemons", "schedds", "startd_machines")

# query(ad_type, constraint, projection) -> ads; ad_type is one of AD_TYPES.
QueryFn = Callable[[str, str | None, list[str]], Iterable[Mapping]]


def plain_value(value: object) -> object:
    """A ClassAd value as plain JSON data: UNDEFINED/ERROR (classad2.Value) -> None, expressions -> text."""
    if value is None or isinstance(value, enum.Enum):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    return str(value)


def ad_to_dict(ad: Mapping) -> dict:
    """A ClassAd (or any mapping) as a plain dict; ClassAd expressions are evaluated where possible."""
    evaluate = getattr(ad, "eval", None)
    result = {}
    for key in ad:
        value = ad.get(key)
        if callable(evaluate):
            try:
                value = evaluate(key)
            except Exception:  # an expression that cannot be evaluated stays as its text
                value = ad.get(key)
        result[str(key)] = plain_value(value)
    return result


def _as_int(value: object) -> int:
    number = _number(value)
    return int(number) if number is not None else 0


def slot_type(ad: Mapping) -> str:
    """partitionable, dynamic or static: from SlotType, else PartitionableSlot / DynamicSlot."""
    kind = ad.get("SlotType")
    if isinstance(kind, str) and kind:
        return kind.lower()
    if ad.get("PartitionableSlot") is True:
        return "partitionable"
    if ad.get("DynamicSlot") is True:
        return "dynamic"
    return "static"


def slot_facts(ad: Mapping, matches: bool = True) -> dict:
    return {
        "name": ad.get("Name"),
        "machine": ad.get("Machine"),
        "slot_type": slot_type(ad),
        "state": ad.get("State"),
        "activity": ad.get("Activity"),
        "cpus": ad.get("Cpus"),
        "memory": ad.get("Memory"),
        "has_docker": ad.get("HasDocker") is True,
        "accounting_group": ad.get("AccountingGroup"),
        "matches_constraint": matches,
    }


def schedd_facts(ad: Mapping) -> dict:
    return {
        "name": ad.get("Name"),
        "total_running_jobs": _as_int(ad.get("TotalRunningJobs")),
        "total_idle_jobs": _as_int(ad.get("TotalIdleJobs")),
        "total_held_jobs": _as_int(ad.get("TotalHeldJobs")),
    }


def group_facts(ad: Mapping) -> dict:
    quota = ad.get("ConfigQuota")
    if quota is None:
        quota = ad.get("EffectiveQuota")
    facts = {
        "name": ad.get("Name"),
        "is_group": ad.get("IsAccountingGroup") is True,
        "quota": quota,
        "priority": ad.get("Priority"),
        "resources_used": ad.get("ResourcesUsed"),
    }
    if ad.get("SurplusPolicy") is not None:
        facts["surplus"] = ad.get("SurplusPolicy")
    return facts


def _names(ads: Iterable[Mapping], attribute: str = "Name") -> list[str]:
    return sorted({str(ad[attribute]) for ad in ads if ad.get(attribute) is not None})


def pool_facts(
    collector: str, ads: Mapping[str, Iterable[Mapping]], matching_slots: Iterable[str] | None = None
) -> dict:
    """The pool facts from plain ads by type (AD_TYPES; missing types count as no ads).

    matching_slots: names of the slots that match the slot constraint (None: every slot matches).
    """
    matching = None if matching_slots is None else set(matching_slots)
    startds = list(ads.get("startd") or [])
    slots = [slot_facts(ad, matching is None or ad.get("Name") in matching) for ad in startds]
    return {
        "collector": collector,
        "daemons": {
            "collector": _names(ads.get("collector") or []),
            "negotiator": _names(ads.get("negotiator") or []),
            "schedd": _names(ads.get("schedd") or []),
            "startd": _names(startds, "Machine"),
            "master": _names(ads.get("master") or []),
        },
        "slots": sorted(slots, key=lambda s: str(s["name"])),
        "schedds": sorted((schedd_facts(ad) for ad in ads.get("schedd") or []), key=lambda s: str(s["name"])),
        "groups": sorted((group_facts(ad) for ad in ads.get("accounting") or []), key=lambda g: str(g["name"])),
    }


def gather_pool(query: QueryFn, collector: str, slot_constraint: str | None = None) -> tuple[dict, dict[str, str]]:
    """Query every ad type and build pool_facts. Returns (pool, errors by ad type).

    The first query that fails ends the round (the others would wait for the same unreachable collector):
    the ad types not queried count as no ads. With slot_constraint, a last startd query finds the names of
    the slots that match it.
    """
    ads: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for ad_type in AD_TYPES:
        try:
            ads[ad_type] = [ad_to_dict(ad) for ad in query(ad_type, None, PROJECTIONS[ad_type])]
        except Exception as exc:  # the collector may not be up yet: reported, not raised
            errors[ad_type] = _error_text(exc)
            break
    matching = None
    if slot_constraint:
        matching = []
        if not errors:
            try:
                matching = [str(ad.get("Name")) for ad in query("startd", slot_constraint, ["Name"])]
            except Exception as exc:
                errors["startd (slot_constraint)"] = _error_text(exc)
    return pool_facts(collector, ads, matching), errors


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def unmet_conditions(pool: Mapping, wait_for: Mapping | None, slot_constraint: str | None = None) -> list[str]:
    """The wait_for conditions the pool facts do not meet, as text ([] when all are met or none is set)."""
    wait_for = {k: v for k, v in (wait_for or {}).items() if v is not None}
    matching = [s for s in pool.get("slots", []) if s.get("matches_constraint", True)]
    where = f" ({slot_constraint})" if slot_constraint else ""
    unmet = []
    if "slots" in wait_for and len(matching) < wait_for["slots"]:
        unmet.append(f"wanted slots>={wait_for['slots']}{where}, have {len(matching)}")
    if "cpus" in wait_for:
        cpus = sum(_as_int(s.get("cpus")) for s in matching)
        if cpus < wait_for["cpus"]:
            unmet.append(f"wanted cpus>={wait_for['cpus']}{where}, have {cpus}")
    if "startd_machines" in wait_for:
        machines = len({s.get("machine") for s in matching if s.get("machine") is not None})
        if machines < wait_for["startd_machines"]:
            unmet.append(f"wanted startd_machines>={wait_for['startd_machines']}{where}, have {machines}")
    if "schedds" in wait_for:
        schedds = len(pool.get("schedds", []))
        if schedds < wait_for["schedds"]:
            unmet.append(f"wanted schedds>={wait_for['schedds']}, have {schedds}")
    if wait_for.get("daemons"):
        wanted = list(dict.fromkeys(wait_for["daemons"]))
        missing = [d for d in wanted if not pool.get("daemons", {}).get(d)]
        if missing:
            unmet.append(f"wanted daemons {', '.join(wanted)}, missing {', '.join(missing)}")
    return unmet


def wait_for_pool(
    gather: Callable[[], tuple[dict, dict[str, str]]],
    wait_for: Mapping | None,
    *,
    slot_constraint: str | None = None,
    timeout: float = 120,
    poll_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Gather the pool facts until the wait_for conditions are met (and every query worked) or timeout passes.

    Without conditions, gathers once. Returns {"ready", "pool", "unmet", "errors", "waited"}; "ready" is
    False on timeout (or when a query failed and there are no conditions to wait for).
    """
    result = wait_until(
        gather,
        lambda pool, conditions: unmet_conditions(pool, conditions, slot_constraint),
        wait_for,
        timeout=timeout,
        poll_interval=poll_interval,
        clock=clock,
        sleep=sleep,
    )
    result["pool"] = result.pop("facts")
    return result


def format_not_ready(result: Mapping, timeout: float, wait_for: Mapping | None) -> str:
    """The failure message of wait_for_pool's result."""
    by_text: dict[str, list[str]] = {}
    for kind, text in sorted(result["errors"].items()):
        by_text.setdefault(text, []).append(kind)
    errors = "; ".join(f"{', '.join(kinds)}: {text}" for text, kinds in by_text.items())
    address = result["pool"].get("collector")
    collector = f"the collector {address}" if address else "the collector of the local HTCondor configuration"
    if not any(v is not None for v in (wait_for or {}).values()):
        return f"cannot query {collector}: {errors}"
    parts = list(result["unmet"])
    if errors:
        parts.append(f"queries to {collector} failed ({errors})")
    return f"pool not ready after {timeout:g} s: {'; '.join(parts)}"
