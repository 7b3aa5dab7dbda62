"""Unit tests of the condor_pool_info module (library/condor_pool_info.py) and its helpers in
module_utils/af_condor.py: ad conversion and conditions on plain dicts, the waiting loop with a fake clock, and
the module in-process with a fake htcondor2 (no daemons, no network)."""

import enum
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from ansible.module_utils import af_condor as cu
from ansible.module_utils import basic

REPO = Path(__file__).resolve().parents[2]


def _load_module(name):
    spec = importlib.util.spec_from_file_location(f"library_{name}", REPO / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


condor_pool_info = _load_module("condor_pool_info")


class Value(enum.IntEnum):
    """Stands in for classad2.Value (UNDEFINED / ERROR are IntEnum members)."""

    Error = 1
    Undefined = 2


class FakeClassAd(dict):
    """dict with ClassAd's eval(): 'Expr' evaluates to 3, 'Broken' cannot be evaluated."""

    def eval(self, key):
        if key == "Broken":
            raise ValueError("cannot evaluate")
        if key == "Expr":
            return 3
        return self[key]


def pslot(machine, cpus=4, docker=True, **extra):
    return {
        "Name": f"slot1@{machine}",
        "Machine": machine,
        "SlotType": "Partitionable",
        "PartitionableSlot": True,
        "State": "Unclaimed",
        "Activity": "Idle",
        "Cpus": cpus,
        "Memory": 8192,
        "HasDocker": docker,
        **extra,
    }


POOL_ADS = {
    "collector": [{"Name": "My Pool - head.af", "Machine": "head.af"}],
    "negotiator": [{"Name": "head.af", "Machine": "head.af"}],
    "schedd": [{"Name": "submit1.af", "TotalRunningJobs": 2, "TotalIdleJobs": 5, "TotalHeldJobs": 0}],
    "startd": [
        pslot("exec1.af"),
        {
            **pslot("exec1.af", cpus=1),
            "Name": "slot1_1@exec1.af",
            "SlotType": "Dynamic",
            "State": "Claimed",
            "Activity": "Busy",
            "PartitionableSlot": None,
            "DynamicSlot": True,
            "AccountingGroup": "group_cms.alice",
        },
        pslot("exec2.af", cpus=8, docker=False),
    ],
    "master": [{"Name": "head.af"}, {"Name": "exec1.af"}, {"Name": "exec2.af"}, {"Name": "submit1.af"}],
    "accounting": [
        {
            "Name": "group_cms",
            "IsAccountingGroup": True,
            "ConfigQuota": 0.6,
            "SurplusPolicy": "byquota",
            "Priority": 500.0,
            "ResourcesUsed": 1,
        },
        {
            "Name": "alice@af.pool",
            "IsAccountingGroup": False,
            "EffectiveQuota": 0.0,
            "Priority": 0.5,
            "ResourcesUsed": 1,
        },
    ],
}


# --- Ad conversion ----------------------------------------------------------------------------------------


def test_plain_value():
    assert cu.plain_value(Value.Undefined) is None and cu.plain_value(Value.Error) is None
    assert cu.plain_value(True) is True and cu.plain_value(3) == 3 and cu.plain_value("x") == "x"
    assert cu.plain_value([1, Value.Undefined, (2,)]) == [1, None, [2]]
    assert cu.plain_value({"a": Value.Error}) == {"a": None}
    assert cu.plain_value(SimpleNamespace(a=1)) == "namespace(a=1)"


def test_ad_to_dict_evaluates_classad_expressions():
    ad = FakeClassAd(Name="slot1@x", Expr="1 + 2", Broken="weird()", Gone=Value.Undefined)
    assert cu.ad_to_dict(ad) == {"Name": "slot1@x", "Expr": 3, "Broken": "weird()", "Gone": None}
    assert cu.ad_to_dict({"Cpus": 4}) == {"Cpus": 4}


@pytest.mark.parametrize(
    ("ad", "kind"),
    [
        ({"SlotType": "Partitionable"}, "partitionable"),
        ({"SlotType": "Dynamic"}, "dynamic"),
        ({"SlotType": "Static"}, "static"),
        ({"PartitionableSlot": True}, "partitionable"),
        ({"DynamicSlot": True}, "dynamic"),
        ({}, "static"),
    ],
)
def test_slot_type(ad, kind):
    assert cu.slot_type(ad) == kind


def test_slot_facts():
    facts = cu.slot_facts(POOL_ADS["startd"][1])
    assert facts == {
        "name": "slot1_1@exec1.af",
        "machine": "exec1.af",
        "slot_type": "dynamic",
        "state": "Claimed",
        "activity": "Busy",
        "cpus": 1,
        "memory": 8192,
        "has_docker": True,
        "accounting_group": "group_cms.alice",
        "matches_constraint": True,
    }
    bare = cu.slot_facts({"Name": "slot1@y"}, matches=False)
    assert bare["has_docker"] is False and bare["accounting_group"] is None and bare["matches_constraint"] is False


def test_schedd_and_group_facts():
    assert cu.schedd_facts(POOL_ADS["schedd"][0]) == {
        "name": "submit1.af",
        "total_running_jobs": 2,
        "total_idle_jobs": 5,
        "total_held_jobs": 0,
    }
    assert cu.schedd_facts({"Name": "s"})["total_idle_jobs"] == 0
    group, user = (cu.group_facts(ad) for ad in POOL_ADS["accounting"])
    assert group == {
        "name": "group_cms",
        "is_group": True,
        "quota": 0.6,
        "surplus": "byquota",
        "priority": 500.0,
        "resources_used": 1,
    }
    assert user["is_group"] is False and user["quota"] == 0.0 and "surplus" not in user


def test_pool_facts():
    pool = cu.pool_facts("head.af:9618", POOL_ADS, matching_slots=["slot1@exec1.af", "slot1_1@exec1.af"])
    assert pool["collector"] == "head.af:9618"
    assert pool["daemons"] == {
        "collector": ["My Pool - head.af"],
        "negotiator": ["head.af"],
        "schedd": ["submit1.af"],
        "startd": ["exec1.af", "exec2.af"],
        "master": ["exec1.af", "exec2.af", "head.af", "submit1.af"],
    }
    assert [s["name"] for s in pool["slots"]] == ["slot1@exec1.af", "slot1@exec2.af", "slot1_1@exec1.af"]
    assert [s["matches_constraint"] for s in pool["slots"]] == [True, False, True]
    assert [g["name"] for g in pool["groups"]] == ["alice@af.pool", "group_cms"]
    assert pool["schedds"][0]["total_idle_jobs"] == 5
    empty = cu.pool_facts("c", {})
    assert empty["slots"] == [] and empty["daemons"]["negotiator"] == []
    json.dumps(pool)


# --- Conditions ----------------------------------------------------------------------------------------------


@pytest.fixture
def pool():
    return cu.pool_facts("head.af", POOL_ADS)


def test_conditions_met(pool):
    wait_for = {"slots": 3, "cpus": 13, "daemons": ["collector", "negotiator", "schedd", "startd", "master"],
                "schedds": 1, "startd_machines": 2}  # fmt: skip
    assert cu.unmet_conditions(pool, wait_for) == []
    assert cu.unmet_conditions(pool, None) == []
    assert cu.unmet_conditions(pool, {"slots": None, "daemons": None}) == []


def test_conditions_unmet(pool):
    wait_for = {"slots": 4, "cpus": 14, "schedds": 2, "startd_machines": 3, "daemons": ["negotiator", "schedd"]}
    assert cu.unmet_conditions(pool, wait_for) == [
        "wanted slots>=4, have 3",
        "wanted cpus>=14, have 13",
        "wanted startd_machines>=3, have 2",
        "wanted schedds>=2, have 1",
    ]
    no_negotiator = {**pool, "daemons": {**pool["daemons"], "negotiator": []}}
    assert cu.unmet_conditions(no_negotiator, {"daemons": ["collector", "negotiator", "collector"]}) == [
        "wanted daemons collector, negotiator, missing negotiator"
    ]


def test_conditions_count_only_matching_slots():
    pool = cu.pool_facts("c", POOL_ADS, matching_slots=["slot1@exec2.af"])
    constraint = "HasDocker =?= false"
    assert cu.unmet_conditions(pool, {"slots": 1, "cpus": 8, "startd_machines": 1}, constraint) == []
    assert cu.unmet_conditions(pool, {"slots": 2, "cpus": 9, "startd_machines": 2}, constraint) == [
        "wanted slots>=2 (HasDocker =?= false), have 1",
        "wanted cpus>=9 (HasDocker =?= false), have 8",
        "wanted startd_machines>=2 (HasDocker =?= false), have 1",
    ]


# --- Gathering through a query function -----------------------------------------------------------------------


# The constraints FakeCollector understands, as Python predicates.
CONSTRAINTS = {"HasDocker =?= true": lambda ad: ad.get("HasDocker") is True}


class FakeCollector:
    """query(ad_type, constraint, projection) over POOL_ADS; fails for the first `down` gathers;
    constraints are looked up in CONSTRAINTS."""

    def __init__(self, ads=None, down=0):
        self.ads = ads if ads is not None else POOL_ADS
        self.down = down
        self.calls = []

    def query(self, ad_type, constraint, projection):
        self.calls.append((ad_type, constraint, tuple(projection)))
        if self.down:
            raise RuntimeError("Failed to connect to collector head.af")
        ads = self.ads.get(ad_type, [])
        if constraint:
            ads = [ad for ad in ads if CONSTRAINTS[constraint](ad)]
        return [FakeClassAd({k: v for k, v in ad.items() if k in projection}) for ad in ads]

    def gather(self, constraint=None):
        def run():
            result = cu.gather_pool(self.query, "head.af", constraint)
            if self.down:
                self.down -= 1
            return result

        return run


def test_gather_pool_queries_every_ad_type_with_projections():
    collector = FakeCollector()
    pool, errors = cu.gather_pool(collector.query, "head.af", "HasDocker =?= true")
    assert errors == {}
    assert [c[0] for c in collector.calls] == [*cu.AD_TYPES, "startd"]
    assert all(c[2] == tuple(cu.PROJECTIONS[c[0]]) for c in collector.calls[:-1])
    assert collector.calls[-1] == ("startd", "HasDocker =?= true", ("Name",))
    assert [s["name"] for s in pool["slots"] if s["matches_constraint"]] == ["slot1@exec1.af", "slot1_1@exec1.af"]
    assert pool == cu.pool_facts("head.af", POOL_ADS, ["slot1@exec1.af", "slot1_1@exec1.af"])


def test_gather_pool_reports_failed_queries():
    collector = FakeCollector(down=1)
    pool, errors = cu.gather_pool(collector.query, "head.af", "HasDocker =?= true")
    # The first failure ends the round: the other queries would wait for the same collector.
    assert errors == {"collector": "RuntimeError: Failed to connect to collector head.af"}
    assert len(collector.calls) == 1
    assert pool["slots"] == [] and pool["daemons"]["collector"] == []


def test_gather_pool_reports_a_failed_constraint_query():
    class BadConstraint(FakeCollector):
        def query(self, ad_type, constraint, projection):
            if constraint:
                raise ValueError("Unable to parse constraint")
            return super().query(ad_type, constraint, projection)

    pool, errors = cu.gather_pool(BadConstraint().query, "head.af", "HasDocker =?=")
    assert errors == {"startd (slot_constraint)": "ValueError: Unable to parse constraint"}
    assert len(pool["slots"]) == 3 and not any(s["matches_constraint"] for s in pool["slots"])


# --- Waiting ------------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_succeeds_at_once_without_sleeping():
    clock = Clock()
    result = cu.wait_for_pool(FakeCollector().gather(), {"slots": 3}, clock=clock, sleep=clock.sleep)
    assert result["ready"] and result["waited"] == 0 and clock.sleeps == [] and result["unmet"] == []


def test_wait_treats_failing_queries_as_not_ready_then_succeeds():
    clock = Clock()
    collector = FakeCollector(down=3)
    result = cu.wait_for_pool(
        collector.gather(), {"daemons": ["negotiator"]}, timeout=30, poll_interval=2, clock=clock, sleep=clock.sleep
    )
    assert result["ready"] and result["errors"] == {}
    assert clock.sleeps == [2, 2, 2] and result["waited"] == 6


def test_wait_for_a_condition_that_becomes_true():
    clock = Clock()
    ads = {**POOL_ADS, "startd": []}

    def gather():
        if clock.now >= 1005:
            ads["startd"] = POOL_ADS["startd"]
        return cu.gather_pool(FakeCollector(ads).query, "head.af")

    result = cu.wait_for_pool(gather, {"startd_machines": 2}, timeout=60, clock=clock, sleep=clock.sleep)
    assert result["ready"] and result["waited"] == 5 and len(result["pool"]["slots"]) == 3


def test_wait_times_out_with_every_unmet_condition():
    clock = Clock()
    ads = {**POOL_ADS, "negotiator": []}
    wait_for = {"slots": 3, "daemons": ["negotiator"], "cpus": None}
    result = cu.wait_for_pool(
        FakeCollector(ads).gather("HasDocker =?= true"),
        wait_for,
        slot_constraint="HasDocker =?= true",
        timeout=120,
        poll_interval=1.0,
        clock=clock,
        sleep=clock.sleep,
    )
    assert not result["ready"] and result["waited"] == 120
    assert len(clock.sleeps) == 120 and sum(clock.sleeps) == 120
    assert result["pool"]["daemons"]["negotiator"] == [] and len(result["pool"]["slots"]) == 3
    assert cu.format_not_ready(result, 120, wait_for) == (
        "pool not ready after 120 s: wanted slots>=3 (HasDocker =?= true), have 2; "
        "wanted daemons negotiator, missing negotiator"
    )


def test_wait_times_out_reporting_query_errors():
    clock = Clock()
    wait_for = {"slots": 1}
    result = cu.wait_for_pool(
        FakeCollector(down=10**6).gather(), wait_for, timeout=5, poll_interval=2, clock=clock, sleep=clock.sleep
    )
    assert not result["ready"] and clock.sleeps == [2, 2, 1]
    message = cu.format_not_ready(result, 5, wait_for)
    assert message.startswith(
        "pool not ready after 5 s: wanted slots>=1, have 0; queries to the collector head.af failed ("
    )
    assert message.endswith("failed (collector: RuntimeError: Failed to connect to collector head.af)")


def test_without_conditions_a_failed_query_fails_at_once():
    clock = Clock()
    result = cu.wait_for_pool(FakeCollector(down=1).gather(), None, timeout=60, clock=clock, sleep=clock.sleep)
    assert not result["ready"] and clock.sleeps == []
    assert cu.format_not_ready(result, 60, None).startswith("cannot query the collector head.af: collector: ")
    ok = cu.wait_for_pool(FakeCollector().gather(), {}, clock=clock, sleep=clock.sleep)
    assert ok["ready"]


def test_timeout_zero_polls_once():
    clock = Clock()
    result = cu.wait_for_pool(FakeCollector().gather(), {"slots": 10}, timeout=0, clock=clock, sleep=clock.sleep)
    assert not result["ready"] and clock.sleeps == []


# --- The module in-process, with a fake htcondor2 ------------------------------------------------------------------


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(condor_pool_info.DOCUMENTATION)
    assert doc["module"] == "condor_pool_info"

    def options(docs):
        spec = {}
        for name, entry in docs.items():
            spec[name] = {k: entry[k] for k in ("type", "required", "default", "elements", "choices") if k in entry}
            if "suboptions" in entry:
                spec[name]["options"] = options(entry["suboptions"])
        return spec

    assert options(doc["options"]) == condor_pool_info.ARGUMENT_SPEC
    yaml.safe_load(condor_pool_info.EXAMPLES)
    yaml.safe_load(condor_pool_info.RETURN)


def fake_htcondor(collector, config=None):
    """A stand-in for the htcondor2 module over a FakeCollector."""
    seen = SimpleNamespace(pools=[], reloads=0)

    class Collector:
        def __init__(self, pool=None):
            seen.pools.append(pool)

        def query(self, ad_type, constraint=None, projection=None):
            return collector.query(ad_type.name.lower(), constraint, projection)

    def reload_config():
        seen.reloads += 1

    return SimpleNamespace(
        Collector=Collector,
        AdType=enum.Enum("AdType", "Startd Schedd Master Collector Negotiator Accounting"),
        param={"COLLECTOR_HOST": "head.af"} if config is None else config,
        reload_config=reload_config,
        seen=seen,
    )


def run_module(args, capsys, monkeypatch):
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        condor_pool_info.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_module_returns_the_pool(capsys, monkeypatch):
    htcondor = fake_htcondor(FakeCollector())
    monkeypatch.setitem(sys.modules, "htcondor2", htcondor)
    result = run_module(
        {"slot_constraint": "HasDocker =?= true", "wait_for": {"slots": 2, "daemons": ["negotiator"]}},
        capsys,
        monkeypatch,
    )
    assert not result.get("failed") and result["changed"] is False, result
    assert result["pool"]["collector"] == "head.af"
    assert result["pool"]["daemons"]["startd"] == ["exec1.af", "exec2.af"]
    assert result["pool"]["slots"][0]["has_docker"] is True and result["waited"] >= 0
    assert set(htcondor.seen.pools) == {None} and htcondor.seen.reloads == 0


def test_module_uses_the_given_collector_and_config(capsys, monkeypatch, tmp_path):
    htcondor = fake_htcondor(FakeCollector())
    monkeypatch.setitem(sys.modules, "htcondor2", htcondor)
    monkeypatch.setenv("CONDOR_CONFIG", "/etc/condor/condor_config")  # restored after the test
    config = tmp_path / "condor_config"
    result = run_module({"collector": "cm.af:9618", "condor_config": str(config)}, capsys, monkeypatch)
    assert not result.get("failed"), result
    assert result["pool"]["collector"] == "cm.af:9618" and set(htcondor.seen.pools) == {"cm.af:9618"}
    assert htcondor.seen.reloads == 1
    assert os.environ["CONDOR_CONFIG"] == str(config)


def test_module_times_out(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "htcondor2", fake_htcondor(FakeCollector({**POOL_ADS, "negotiator": []})))
    result = run_module(
        {"wait_for": {"daemons": ["negotiator"]}, "timeout": 0, "poll_interval": 0.01}, capsys, monkeypatch
    )
    assert (
        result["failed"] and result["msg"] == "pool not ready after 0 s: wanted daemons negotiator, missing negotiator"
    )
    assert result["pool"]["daemons"]["negotiator"] == [] and len(result["pool"]["slots"]) == 3


def test_module_fails_at_once_when_the_collector_is_down(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "htcondor2", fake_htcondor(FakeCollector(down=10**6), config={}))
    result = run_module({}, capsys, monkeypatch)
    assert result["failed"] and result["msg"].startswith(
        "cannot query the collector of the local HTCondor configuration: "
    )
    assert "RuntimeError: Failed to connect" in result["msg"] and result["errors"]


def test_module_without_bindings_names_the_interpreter(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "htcondor2", None)
    result = run_module({}, capsys, monkeypatch)
    assert result["failed"] and "htcondor2" in result["msg"] and sys.executable in result["msg"]


def test_module_rejects_an_unknown_daemon(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "htcondor2", fake_htcondor(FakeCollector()))
    result = run_module({"wait_for": {"daemons": ["shadow"]}}, capsys, monkeypatch)
    assert result["failed"] and "shadow" in result["msg"]


def test_not_ready_message_merges_identical_errors():
    result = {
        "pool": {"collector": "cm.af"},
        "unmet": ["wanted schedds>=1, have 0"],
        "errors": {"schedd": "Timeout", "collector": "Timeout", "startd (slot_constraint)": "Bad constraint"},
    }
    assert cu.format_not_ready(result, 10, {"schedds": 1}) == (
        "pool not ready after 10 s: wanted schedds>=1, have 0; "
        "queries to the collector cm.af failed (collector, schedd: Timeout; startd (slot_constraint): Bad constraint)"
    )
