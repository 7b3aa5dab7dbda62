#!/usr/bin/python
"""Ansible module: a Kubernetes cluster's nodes, readiness, versions and capacity, with a bounded wait."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_cluster_info
short_description: Kubernetes nodes, readiness, versions and capacity, and a bounded wait for a condition
description:
  - Returns the API server's version and, for every node, whether it is Ready, its roles, kubelet and
    container runtime versions, internal IP, pod CIDR, taints, capacity and allocatable resources.
  - With O(wait_for), asks again every O(poll_interval) seconds until every condition holds, and fails after
    O(timeout) seconds naming each condition that is not met (with the last facts). A failed request counts as
    not ready while waiting; without O(wait_for) it fails at once.
  - The logic lives in C(module_utils/af_k8s_cluster.py) (facts and conditions) and C(module_utils/af_wait.py)
    (the wait, shared with C(condor_pool_info)); the API access in C(module_utils/af_k8s_client.py).
  - What C(kubernetes.core.k8s_info) does not do - judging nodes and waiting for a cluster-wide condition.
version_added: "0.2.0"
author:
  - coffea-casa-af developers
options:
  wait_for:
    description: Conditions to wait for; all must hold.
    type: dict
    suboptions:
      nodes:
        description: At least this many nodes registered.
        type: int
      ready_nodes:
        description: At least this many nodes Ready.
        type: int
      all_ready:
        description: Every registered node Ready (and at least one node).
        type: bool
      node_names:
        description: These nodes registered and Ready.
        type: list
        elements: str
      kubelet_version:
        description: Every node's kubelet at this version or minor version (C(v1.36) or C(v1.36.2)).
        type: str
  timeout:
    description: Seconds to wait for O(wait_for) before failing.
    type: int
    default: 120
  poll_interval:
    description: Seconds between two queries while waiting.
    type: float
    default: 2
extends_documentation_fragment:
  - af_k8s_auth
attributes:
  check_mode:
    support: full
    details: Only reads; runs in check mode too.
  diff_mode:
    support: none
"""
EXAMPLES = r"""
- name: Wait until the new node is Ready
  k8s_cluster_info:
    wait_for:
      node_names: ["{{ af_node_fqdn }}"]
    timeout: 300
  delegate_to: "{{ groups['k8s_control_plane'][0] }}"

- name: Every node at the new minor version after an upgrade
  k8s_cluster_info:
    wait_for: {all_ready: true, kubelet_version: v1.37}
"""
RETURN = r"""
cluster:
  description: The API server's version, the nodes (sorted by name) and the counts.
  returned: always
  type: dict
  sample:
    server_version: v1.36.2
    node_count: 2
    ready_nodes: 2
    nodes:
      - name: k8s-cp.af.test
        ready: true
        roles: [control-plane]
        kubelet_version: v1.36.2
        container_runtime: containerd://2.1.4
        internal_ip: 172.30.200.20
        pod_cidr: 10.244.0.0/24
        unschedulable: false
        taints: ["node-role.kubernetes.io/control-plane:NoSchedule"]
        capacity: {cpu: "2", memory: 24576Mi, pods: "110"}
        allocatable: {cpu: "2", memory: 24476Mi, pods: "110"}
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
"""
# Ansible module convention: imports follow the documentation blocks.
from ansible.module_utils.af_k8s_client import AUTH_ARGUMENT_SPEC, Cluster, error_text  # noqa: E402
from ansible.module_utils.af_k8s_cluster import cluster_facts, format_not_ready, unmet_conditions  # noqa: E402
from ansible.module_utils.af_wait import wait_until  # noqa: E402
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "wait_for": {
        "type": "dict",
        "options": {
            "nodes": {"type": "int"},
            "ready_nodes": {"type": "int"},
            "all_ready": {"type": "bool"},
            "node_names": {"type": "list", "elements": "str"},
            "kubelet_version": {"type": "str"},
        },
    },
    "timeout": {"type": "int", "default": 120},
    "poll_interval": {"type": "float", "default": 2},
    **AUTH_ARGUMENT_SPEC,
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["timeout"] < 0 or params["poll_interval"] <= 0:
        module.fail_json(msg="timeout must not be negative and poll_interval must be positive", changed=False)
    cluster = Cluster(params, module.fail_json)

    def gather() -> tuple[dict, dict[str, str]]:
        errors, nodes, version = {}, [], None
        try:
            nodes = cluster.get(cluster.core.list_node).get("items") or []
        except Exception as exc:
            errors["nodes"] = error_text(exc)
        try:
            version = cluster.get(cluster.version.get_code)
        except Exception as exc:
            errors["version"] = error_text(exc)
        return cluster_facts(nodes, version), errors

    result = wait_until(
        gather, unmet_conditions, params["wait_for"], timeout=params["timeout"], poll_interval=params["poll_interval"]
    )
    if not result["ready"]:
        module.fail_json(
            msg=format_not_ready(result, params["timeout"], params["wait_for"]),
            cluster=result["facts"],
            waited=result["waited"],
            changed=False,
        )
    module.exit_json(changed=False, cluster=result["facts"], waited=result["waited"])


if __name__ == "__main__":
    main()
