"""The built-in filter plugins (and the node-selector matching they share).

Reasons are Kubernetes' own strings so ``kubectl describe`` reads the same:
``Insufficient cpu``, ``Too many pods``, ``node(s) were unschedulable``,
``node(s) had untolerated taint {key: value}``, ``node(s) didn't match the
requested node name``, ``node(s) didn't match Pod's node affinity/selector``,
``node(s) didn't have free ports for the requested pod ports``. Unresolvable
verdicts (preemption cannot help) are used where evicting pods changes
nothing: everything except NodeResourcesFit and NodePorts.
"""

from __future__ import annotations

from typing import Any

from cloudlet.scheduler import resources as res
from cloudlet.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    OK,
    POD_DELETE,
    POD_UPDATE,
    CycleState,
    NodeInfo,
    Obj,
    Status,
    unschedulable,
)

REQUESTS = "NodeResourcesFit/requests"
RUNTIME_CLASS = "runtimeClass"
NODE_EVENTS = frozenset({NODE_ADD, NODE_UPDATE})


# --- node selector matching -------------------------------------------------------


def _as_int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def match_expression(expr: Obj, values: dict[str, str]) -> bool:
    key = expr.get("key", "")
    op = expr.get("operator", "")
    want = expr.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in want
    if op == "NotIn":
        return not present or values[key] not in want
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(want) != 1:
            return False
        have, bound = _as_int(values[key]), _as_int(want[0])
        if have is None or bound is None:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def match_term(term: Obj, node: Obj) -> bool:
    """One NodeSelectorTerm: all expressions and fields hold (an empty term matches nothing)."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    if not all(match_expression(e, labels) for e in exprs):
        return False
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return all(match_expression(f, node_fields) for f in fields)


def match_node_selector_terms(terms: list[Obj], node: Obj) -> bool:
    return any(match_term(t, node) for t in terms)


def _required_terms(pod: Obj) -> list[Obj] | None:
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not req:
        return None
    return list(req.get("nodeSelectorTerms") or [])


# --- plugins -------------------------------------------------------------------------


class NodeResourcesFit:
    """Requests (cpu, memory, ephemeral-storage, pods, extended) fit what the
    node has left: ``allocatable - sum(requests of pods bound to it)``."""

    name = "NodeResourcesFit"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE, POD_UPDATE})

    def pre_filter(self, state: CycleState, pod: Obj) -> Status:
        rc = state.read(RUNTIME_CLASS)
        overhead = ((rc or {}).get("overhead") or {}).get("podFixed") if rc else None
        state.write(REQUESTS, res.pod_requests(pod, overhead))
        return OK

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        req: dict[str, int] = state.read(REQUESTS) or res.pod_requests(pod)
        reasons = []
        alloc = node.allocatable
        if len(node.pods) + 1 > alloc.get(res.PODS, 0):
            reasons.append("Too many pods")
        for name, want in req.items():
            if name == res.PODS or want == 0:
                continue
            if want > alloc.get(name, 0) - node.requested.get(name, 0):
                reasons.append(f"Insufficient {name}")
        return unschedulable(*reasons) if reasons else OK


class NodeUnschedulable:
    name = "NodeUnschedulable"
    events = NODE_EVENTS

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        if not (node.node.get("spec") or {}).get("unschedulable"):
            return OK
        taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        if any(tolerates(t, taint) for t in pod_tolerations(pod, state)):
            return OK
        return unschedulable("node(s) were unschedulable", resolvable=False)


def tolerates(tol: Obj, taint: Obj) -> bool:
    """Kubernetes' ``Toleration.ToleratesTaint``."""
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    if tol.get("key") and tol.get("key") != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (tol.get("value") or "") == (taint.get("value") or "")
    return False


def pod_tolerations(pod: Obj, state: CycleState | None = None) -> list[Obj]:
    tols = list((pod.get("spec") or {}).get("tolerations") or [])
    rc = state.read(RUNTIME_CLASS) if state is not None else None
    if rc:
        tols += ((rc.get("scheduling") or {}).get("tolerations") or [])
    return tols


class TaintToleration:
    """Filter: every NoSchedule/NoExecute taint is tolerated. Score: fewer
    untolerated PreferNoSchedule taints is better (normalised, reversed)."""

    name = "TaintToleration"
    events = NODE_EVENTS

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        taints = (node.node.get("spec") or {}).get("taints")
        if not taints:
            return OK
        tols = pod_tolerations(pod, state)
        for taint in taints:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            if not any(tolerates(t, taint) for t in tols):
                return unschedulable(
                    f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}",
                    resolvable=False,
                )
        return OK

    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int:
        if not (node.node.get("spec") or {}).get("taints"):
            return 0
        tols = [t for t in pod_tolerations(pod, state) if t.get("effect") in (None, "", "PreferNoSchedule")]
        return sum(
            1 for taint in (node.node.get("spec") or {}).get("taints") or ()
            if taint.get("effect") == "PreferNoSchedule" and not any(tolerates(t, taint) for t in tols)
        )

    def normalize(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> None:
        from cloudlet.scheduler.framework import default_normalize

        default_normalize(scores, reverse=True)


class NodeName:
    name = "NodeName"
    events = frozenset({NODE_ADD})

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        want = (pod.get("spec") or {}).get("nodeName")
        if want and want != node.name:
            return unschedulable("node(s) didn't match the requested node name", resolvable=False)
        return OK


AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"


class NodeAffinity:
    """Filter: ``nodeSelector`` and required node affinity (and the
    RuntimeClass's ``scheduling.nodeSelector``). Score: summed weights of the
    matching preferred terms, normalised."""

    name = "NodeAffinity"
    events = NODE_EVENTS

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        spec = pod.get("spec") or {}
        rc = state.read(RUNTIME_CLASS)
        if not spec.get("nodeSelector") and not spec.get("affinity") and not rc:
            return OK
        labels = node.node["metadata"].get("labels") or {}
        selectors = [spec.get("nodeSelector") or {}]
        if rc:
            selectors.append((rc.get("scheduling") or {}).get("nodeSelector") or {})
        for sel in selectors:
            if any(labels.get(k) != v for k, v in sel.items()):
                return unschedulable(AFFINITY_REASON, resolvable=False)
        terms = _required_terms(pod)
        if terms is not None and not match_node_selector_terms(terms, node.node):
            return unschedulable(AFFINITY_REASON, resolvable=False)
        return OK

    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int:
        aff = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
        total = 0
        for pref in aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
            w = int(pref.get("weight") or 0)
            if w and match_term(pref.get("preference") or {}, node.node):
                total += w
        return total

    def normalize(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> None:
        from cloudlet.scheduler.framework import default_normalize

        default_normalize(scores)


class NodePorts:
    name = "NodePorts"
    events = frozenset({NODE_ADD, POD_DELETE})

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        if not node.ports:
            return OK
        for ip, proto, port in res.host_ports(pod):
            for uip, uproto, uport in node.ports:
                if uport == port and uproto == proto and (ip == uip or "0.0.0.0" in (ip, uip)):
                    return unschedulable("node(s) didn't have free ports for the requested pod ports")
        return OK
