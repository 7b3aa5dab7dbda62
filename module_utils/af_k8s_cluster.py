"""Cluster facts and the conditions of k8s_cluster_info's wait_for, on plain dicts shaped like the API's JSON
(the logic of the module, unit-tested without a cluster; the bounded wait is af_wait's)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ROLE_LABEL = "node-role.kubernetes.io/"


def _condition(node: Mapping, kind: str) -> str | None:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("status")
    return None


def node_facts(node: Mapping) -> dict:
    """What the facility needs to know of one node."""
    metadata, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    info = status.get("nodeInfo") or {}
    labels = metadata.get("labels") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    ready = _condition(node, "Ready") == "True"
    return {
        "name": metadata.get("name", ""),
        "ready": ready,
        "roles": sorted(k[len(ROLE_LABEL) :] for k in labels if k.startswith(ROLE_LABEL)),
        "kubelet_version": info.get("kubeletVersion", ""),
        "container_runtime": info.get("containerRuntimeVersion", ""),
        "internal_ip": addresses.get("InternalIP", ""),
        "pod_cidr": spec.get("podCIDR", ""),
        "unschedulable": bool(spec.get("unschedulable", False)),
        "taints": [f"{t.get('key')}:{t.get('effect')}" for t in spec.get("taints") or []],
        "capacity": dict(status.get("capacity") or {}),
        "allocatable": dict(status.get("allocatable") or {}),
    }


def cluster_facts(nodes: Iterable[Mapping], version: Mapping | None) -> dict:
    """The cluster as the module returns it: server version, nodes and counts."""
    facts = [node_facts(n) for n in nodes]
    facts.sort(key=lambda n: n["name"])
    return {
        "server_version": (version or {}).get("gitVersion", ""),
        "nodes": facts,
        "node_count": len(facts),
        "ready_nodes": sum(1 for n in facts if n["ready"]),
    }


def unmet_conditions(facts: Mapping, wait_for: Mapping | None) -> list[str]:
    """The wait_for conditions the facts do not meet, as text ([] when all are met or none is set)."""
    wait_for = {k: v for k, v in (wait_for or {}).items() if v is not None}
    nodes = facts.get("nodes") or []
    by_name = {n["name"]: n for n in nodes}
    unmet = []
    if "nodes" in wait_for and len(nodes) < wait_for["nodes"]:
        unmet.append(f"wanted nodes>={wait_for['nodes']}, have {len(nodes)}")
    ready = [n["name"] for n in nodes if n["ready"]]
    if "ready_nodes" in wait_for and len(ready) < wait_for["ready_nodes"]:
        unmet.append(f"wanted ready_nodes>={wait_for['ready_nodes']}, have {len(ready)}")
    if wait_for.get("all_ready"):
        not_ready = sorted(n["name"] for n in nodes if not n["ready"])
        if not_ready or not nodes:
            unmet.append(f"wanted every node Ready, not Ready: {', '.join(not_ready) or '(no node)'}")
    if wait_for.get("node_names"):
        missing = [name for name in wait_for["node_names"] if name not in by_name]
        not_ready = [name for name in wait_for["node_names"] if name in by_name and not by_name[name]["ready"]]
        if missing:
            unmet.append(f"nodes not registered: {', '.join(missing)}")
        if not_ready:
            unmet.append(f"nodes not Ready: {', '.join(not_ready)}")
    if wait_for.get("kubelet_version"):
        prefix = wait_for["kubelet_version"]
        other = sorted(f"{n['name']} ({n['kubelet_version']})" for n in nodes if not _version_matches(n, prefix))
        if other:
            unmet.append(f"wanted kubelet {prefix} on every node, other: {', '.join(other)}")
    return unmet


def _version_matches(node: Mapping, prefix: str) -> bool:
    version = node.get("kubelet_version", "")
    prefix = prefix if prefix.startswith("v") else f"v{prefix}"
    return version == prefix or version.startswith(prefix + ".") or version.startswith(prefix + "-")


def format_not_ready(result: Mapping, timeout: float, wait_for: Mapping | None) -> str:
    """The failure message of a wait that ended without the conditions (or with failed queries)."""
    errors = "; ".join(f"{what}: {text}" for what, text in sorted(result["errors"].items()))
    if not any(v is not None for v in (wait_for or {}).values()):
        return f"cannot query the API server: {errors}"
    parts = list(result["unmet"])
    if errors:
        parts.append(f"queries to the API server failed ({errors})")
    return f"cluster not ready after {timeout:g} s: {'; '.join(parts)}"
