"""The project's Kubernetes modules (library/k8s_bootstrap_token.py, library/k8s_cluster_info.py): their logic on
API-shaped dicts (module_utils/af_k8s_bootstrap_token.py, af_k8s_cluster.py, af_wait.py), the client layer's error
text with the kubernetes client's own exception, and the rendered documentation."""

import base64
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansible.module_utils import af_k8s_bootstrap_token as bt
from ansible.module_utils import af_k8s_cluster as kc
from ansible.module_utils.af_k8s_client import error_text
from ansible.module_utils.af_wait import wait_until
from kubernetes.client import ApiClient, V1Secret
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


def stored(body: dict) -> dict:
    """A Secret as the API server returns it: stringData folded into base64 data, through the client's model."""
    data = {k: base64.b64encode(v.encode()).decode() for k, v in body["stringData"].items()}
    secret = V1Secret(api_version="v1", kind="Secret", metadata=body["metadata"], type=body["type"], data=data)
    return ApiClient().sanitize_for_serialization(secret)


# --- bootstrap tokens ----------------------------------------------------------------------------------------


def test_new_tokens_have_kubeadms_format_and_differ():
    tokens = {bt.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token_id, token_secret in tokens:
        assert len(token_id) == 6 and len(token_secret) == 16
        assert set(token_id + token_secret) <= set(bt.ALPHABET)


def test_secret_body_is_what_kubeadm_stores_and_reads_back_without_the_secret():
    body = bt.secret_body(
        "abc123",
        "0123456789abcdef",
        description="af nodes join",
        expires=NOW + timedelta(hours=24),
        usages=["authentication", "signing"],
        groups=["system:bootstrappers:kubeadm:default-node-token"],
    )
    assert body["metadata"] == {"name": "bootstrap-token-abc123", "namespace": "kube-system"}
    assert body["type"] == "bootstrap.kubernetes.io/token"
    assert body["stringData"] == {
        "token-id": "abc123",
        "token-secret": "0123456789abcdef",
        "description": "af nodes join",
        "expiration": "2026-12-06T12:00:00Z",
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
    }
    secret = stored(body)
    assert bt.is_bootstrap_token(secret)
    view = bt.token_view(secret)
    assert view == {
        "token_id": "abc123",
        "description": "af nodes join",
        "expiration": "2026-12-06T12:00:00Z",
        "usages": ["authentication", "signing"],
        "groups": ["system:bootstrappers:kubeadm:default-node-token"],
    }
    assert "0123456789abcdef" not in repr(view)
    assert bt.token_of(secret) == "abc123.0123456789abcdef"


def _view(token_id, hours_left, description="join", usages=("authentication", "signing"), groups=None):
    expires = None if hours_left is None else bt.rfc3339(NOW + timedelta(hours=hours_left))
    return {
        "token_id": token_id,
        "description": description,
        "expiration": expires,
        "usages": list(usages),
        "groups": list(groups if groups is not None else bt.DEFAULT_GROUPS),
    }


def _plan(views, state="present", min_ttl=3600):
    return bt.plan(
        views,
        state=state,
        description="join",
        usages=list(bt.USAGES),
        groups=list(bt.DEFAULT_GROUPS),
        min_ttl=min_ttl,
        now=NOW,
    )


def test_plan_keeps_the_longest_lasting_usable_token():
    views = [_view("aaaaaa", 5), _view("bbbbbb", 20), _view("cccccc", 30, description="other")]
    assert _plan(views) == {"keep": "bbbbbb", "create": False, "delete": []}


def test_plan_makes_a_new_token_when_too_little_remains_or_the_token_differs():
    assert _plan([_view("aaaaaa", 0.5)]) == {"keep": None, "create": True, "delete": []}
    assert _plan([_view("aaaaaa", -1)])["create"]  # expired, not yet cleaned up
    assert _plan([_view("aaaaaa", 20, usages=["signing"])])["create"]
    assert _plan([_view("aaaaaa", 20, groups=["system:bootstrappers:other"])])["create"]
    assert _plan([]) == {"keep": None, "create": True, "delete": []}
    assert _plan([_view("aaaaaa", None)])["keep"] == "aaaaaa"  # never expires


def test_plan_absent_deletes_every_token_of_the_description_only():
    views = [_view("bbbbbb", 5), _view("aaaaaa", 20), _view("cccccc", 30, description="other")]
    assert _plan(views, state="absent") == {"keep": None, "create": False, "delete": ["aaaaaa", "bbbbbb"]}


def test_a_secret_of_another_type_is_no_token():
    assert not bt.is_bootstrap_token({"type": "Opaque", "metadata": {"name": "bootstrap-token-abc123"}})
    assert not bt.is_bootstrap_token({"type": bt.SECRET_TYPE, "metadata": {"name": "other"}})


# --- cluster facts and conditions ------------------------------------------------------------------------------


def _node(name, ready=True, version="v1.36.2", roles=(), ip="172.30.200.20"):
    return {
        "metadata": {"name": name, "labels": {f"node-role.kubernetes.io/{r}": "" for r in roles}},
        "spec": {
            "podCIDR": "10.244.0.0/24",
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        }
        if roles
        else {"podCIDR": "10.244.1.0/24"},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True" if ready else "False"},
            ],
            "nodeInfo": {"kubeletVersion": version, "containerRuntimeVersion": "containerd://2.1.4"},
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "2", "memory": "24576Mi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "24476Mi", "pods": "110"},
        },
    }


def test_cluster_facts():
    facts = kc.cluster_facts(
        [_node("worker1", ready=False), _node("cp", roles=["control-plane"])], {"gitVersion": "v1.36.2"}
    )
    assert facts["server_version"] == "v1.36.2"
    assert (facts["node_count"], facts["ready_nodes"]) == (2, 1)
    cp, worker = facts["nodes"]
    assert cp == {
        "name": "cp",
        "ready": True,
        "roles": ["control-plane"],
        "kubelet_version": "v1.36.2",
        "container_runtime": "containerd://2.1.4",
        "internal_ip": "172.30.200.20",
        "pod_cidr": "10.244.0.0/24",
        "unschedulable": False,
        "taints": ["node-role.kubernetes.io/control-plane:NoSchedule"],
        "capacity": {"cpu": "2", "memory": "24576Mi", "pods": "110"},
        "allocatable": {"cpu": "2", "memory": "24476Mi", "pods": "110"},
    }
    assert worker["ready"] is False and worker["roles"] == []


def test_unmet_conditions_name_what_is_missing():
    facts = kc.cluster_facts([_node("cp"), _node("w1", ready=False, version="v1.35.4")], {})
    assert kc.unmet_conditions(facts, {"nodes": 2, "ready_nodes": 1}) == []
    assert kc.unmet_conditions(facts, {"nodes": 3, "ready_nodes": 2, "all_ready": True}) == [
        "wanted nodes>=3, have 2",
        "wanted ready_nodes>=2, have 1",
        "wanted every node Ready, not Ready: w1",
    ]
    assert kc.unmet_conditions(facts, {"node_names": ["w1", "w2"]}) == [
        "nodes not registered: w2",
        "nodes not Ready: w1",
    ]
    assert kc.unmet_conditions(facts, {"kubelet_version": "v1.36"}) == [
        "wanted kubelet v1.36 on every node, other: w1 (v1.35.4)"
    ]
    assert kc.unmet_conditions(facts, {"kubelet_version": "1.3"}) == [
        "wanted kubelet 1.3 on every node, other: cp (v1.36.2), w1 (v1.35.4)"  # 1.3 is not 1.36
    ]
    assert kc.unmet_conditions(kc.cluster_facts([], {}), {"all_ready": True}) == [
        "wanted every node Ready, not Ready: (no node)"
    ]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_until_the_node_is_ready_then_time_out_with_a_clear_message():
    clock = Clock()
    answers = iter([[_node("cp", ready=False)], [_node("cp", ready=False)], [_node("cp")]])

    def gather():
        return kc.cluster_facts(next(answers), {"gitVersion": "v1.36.2"}), {}

    result = wait_until(
        gather, kc.unmet_conditions, {"all_ready": True}, timeout=60, poll_interval=2, clock=clock, sleep=clock.sleep
    )
    assert result["ready"] and result["waited"] == 4.0

    clock = Clock()

    def never():
        return kc.cluster_facts([_node("cp", ready=False)], {}), {"version": "HTTP 503: unavailable"}

    result = wait_until(
        never, kc.unmet_conditions, {"all_ready": True}, timeout=10, poll_interval=3, clock=clock, sleep=clock.sleep
    )
    assert not result["ready"] and result["waited"] == 10.0
    assert kc.format_not_ready(result, 10, {"all_ready": True}) == (
        "cluster not ready after 10 s: wanted every node Ready, not Ready: cp; queries to the API server failed "
        "(version: HTTP 503: unavailable)"
    )


def test_error_text_of_the_clients_exception():
    error = ApiException(status=403, reason="Forbidden")
    error.body = '{"kind":"Status","message":"secrets is forbidden: User \\"x\\" cannot list"}'
    assert error_text(error) == 'HTTP 403: secrets is forbidden: User "x" cannot list'
    assert error_text(ApiException(status=500, reason="Internal")) == "HTTP 500: Internal"
    assert error_text(ConnectionRefusedError("refused")) == "ConnectionRefusedError: refused"


@pytest.mark.parametrize("module", ["k8s_bootstrap_token", "k8s_cluster_info"])
def test_module_documentation_renders(module):
    result = subprocess.run(
        [Path(sys.executable).parent / "ansible-doc", "-M", str(REPO / "library"), module],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "kubeconfig" in result.stdout  # the shared client options, from the doc fragment
