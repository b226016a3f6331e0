"""The built-in filter plugins (and the node-selector matching they share).

Reasons are Kubernetes' own strings so ``kubectl describe`` reads the same:
``Insufficient cpu``, ``Too many pods``, ``node(s) were unschedulable``,
``node(s) had untolerated taint {key: value}``, ``node(s) didn't match the
requested node name``, ``node(s) didn't match Pod's node affinity/selector``,
``node(s) didn't have free ports for the requested pod ports``. Unresolvable
verdicts (preemption cannot help) are used where evicting pods changes
nothing: everything except NodeResourcesFit and NodePorts.

The filters every pod runs (NodeUnschedulable, TaintToleration,
NodeResourcesFit) also have a batch form (``filter_nodes``: the rejected
positions of a list of nodes) that the scheduler calls once per chunk of
nodes (the others are called per node), and plugins with
nothing to check for a pod answer ``Skip`` from ``pre_filter`` (NodeName
without ``spec.nodeName``, NodeAffinity without selector or required
affinity, NodePorts without host ports), as kube-scheduler's do.
"""

from __future__ import annotations

import functools
from typing import Any

from cloudlet.scheduler import resources as res
from cloudlet.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    OK,
    POD_DELETE,
    POD_UPDATE,
    SKIPPED,
    CycleState,
    NodeInfo,
    Obj,
    Status,
    default_normalize,
    unschedulable,
)

REQUESTS = "NodeResourcesFit/requests"
FIT_CHECKS = "NodeResourcesFit/checks"
HOST_PORTS = "NodePorts/ports"
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


@functools.lru_cache(maxsize=256)
def _fit_status(reasons: tuple[str, ...]) -> Status:
    return unschedulable(*reasons)


class NodeResourcesFit:
    """Requests (cpu, memory, ephemeral-storage, pods, extended) fit what the
    node has left: ``allocatable - sum(requests of pods bound to it)``."""

    name = "NodeResourcesFit"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE, POD_UPDATE})

    def pre_filter(self, state: CycleState, pod: Obj) -> Status:
        rc = state.read(RUNTIME_CLASS)
        overhead = ((rc or {}).get("overhead") or {}).get("podFixed") if rc else None
        req = res.pod_requests(pod, overhead)
        state.write(REQUESTS, req)
        state.write(FIT_CHECKS, tuple((k, v) for k, v in req.items() if k != res.PODS and v))
        return OK

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        checks: tuple[tuple[str, int], ...] | None = state.read(FIT_CHECKS)
        if checks is None:
            req = state.read(REQUESTS) or res.pod_requests(pod)
            checks = tuple((k, v) for k, v in req.items() if k != res.PODS and v)
        alloc, used = node.allocatable, node.requested
        reasons: tuple[str, ...] = ()
        if len(node.pods) + 1 > alloc.get(res.PODS, 0):
            reasons = ("Too many pods",)
        for name, want in checks:
            if want > alloc.get(name, 0) - used.get(name, 0):
                reasons += (f"Insufficient {name}",)
        return _fit_status(reasons) if reasons else OK

    def filter_nodes(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> list[tuple[int, Status]]:
        checks: tuple[tuple[str, int], ...] | None = state.read(FIT_CHECKS)
        if checks is None:
            self.pre_filter(state, pod)
            checks = state.read(FIT_CHECKS)
        P = res.PODS
        # one comprehension per shape: pods asking for cpu and/or memory only (nearly all)
        # read the NodeInfo's plain attributes; the reasons are worked out for rejected nodes only
        want = dict(checks)
        if want.keys() <= {res.CPU, res.MEMORY}:
            c, m = want.get(res.CPU, 0), want.get(res.MEMORY, 0)  # only requested resources are checked
            if c and m:
                bad = [i for i, n in enumerate(nodes) if len(n.pods) >= n.alloc_pods
                       or c > n.alloc_cpu - n.req_cpu or m > n.alloc_mem - n.req_mem]
            elif c:
                bad = [i for i, n in enumerate(nodes) if len(n.pods) >= n.alloc_pods or c > n.alloc_cpu - n.req_cpu]
            elif m:
                bad = [i for i, n in enumerate(nodes) if len(n.pods) >= n.alloc_pods or m > n.alloc_mem - n.req_mem]
            else:
                bad = [i for i, n in enumerate(nodes) if len(n.pods) >= n.alloc_pods]
        elif len(checks) == 1:
            (r1, w1), = checks
            bad = [i for i, n in enumerate(nodes) if len(n.pods) >= n.allocatable.get(P, 0)
                   or w1 > n.allocatable.get(r1, 0) - n.requested.get(r1, 0)]
        elif len(checks) == 2:
            (r1, w1), (r2, w2) = checks
            bad = [i for i, n in enumerate(nodes) if len(n.pods) >= n.allocatable.get(P, 0)
                   or w1 > n.allocatable.get(r1, 0) - n.requested.get(r1, 0)
                   or w2 > n.allocatable.get(r2, 0) - n.requested.get(r2, 0)]
        else:
            bad = [i for i, n in enumerate(nodes) if len(n.pods) >= n.allocatable.get(P, 0)
                   or any(w > n.allocatable.get(r, 0) - n.requested.get(r, 0) for r, w in checks)]
        return [(i, self.filter(state, pod, nodes[i])) for i in bad]


class NodeUnschedulable:
    name = "NodeUnschedulable"
    events = NODE_EVENTS
    TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    REJECTED = unschedulable("node(s) were unschedulable", resolvable=False)

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        if not node.unschedulable:
            return OK
        if any(tolerates(t, self.TAINT) for t in pod_tolerations(pod, state)):
            return OK
        return self.REJECTED

    def filter_nodes(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> list[tuple[int, Status]]:
        bad = [i for i, n in enumerate(nodes) if n.unschedulable]
        if not bad or any(tolerates(t, self.TAINT) for t in pod_tolerations(pod, state)):
            return []
        return [(i, self.REJECTED) for i in bad]


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

    @staticmethod
    def _check(taints: tuple[Obj, ...], tols: list[Obj]) -> Status:
        for taint in taints:
            if not any(tolerates(t, taint) for t in tols):
                return unschedulable(
                    f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}",
                    resolvable=False,
                )
        return OK

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        if not node.hard_taints:
            return OK
        return self._check(node.hard_taints, pod_tolerations(pod, state))

    def filter_nodes(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> list[tuple[int, Status]]:
        tainted = [i for i, n in enumerate(nodes) if n.hard_taints]
        if not tainted:
            return []
        tols = pod_tolerations(pod, state)
        out = []
        for i in tainted:
            st = self._check(nodes[i].hard_taints, tols)
            if not st.ok:
                out.append((i, st))
        return out

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        # with no PreferNoSchedule taint on any feasible node every score is 0 and,
        # normalised, equal: leaving the plugin out changes no ranking
        return OK if any(n.soft_taints for n in nodes) else SKIPPED

    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int:
        if not node.soft_taints:
            return 0
        tols = [t for t in pod_tolerations(pod, state) if t.get("effect") in (None, "", "PreferNoSchedule")]
        return sum(1 for taint in node.soft_taints if not any(tolerates(t, taint) for t in tols))

    def normalize(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> None:
        default_normalize(scores, reverse=True)


class NodeName:
    name = "NodeName"
    events = frozenset({NODE_ADD})

    def pre_filter(self, state: CycleState, pod: Obj) -> Status:
        return OK if (pod.get("spec") or {}).get("nodeName") else SKIPPED

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

    def pre_filter(self, state: CycleState, pod: Obj) -> Status:
        spec = pod.get("spec") or {}
        rc = state.read(RUNTIME_CLASS)
        rc_selector = ((rc or {}).get("scheduling") or {}).get("nodeSelector") if rc else None
        if not spec.get("nodeSelector") and _required_terms(pod) is None and not rc_selector:
            return SKIPPED
        return OK

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        spec = pod.get("spec") or {}
        rc = state.read(RUNTIME_CLASS)
        if not spec.get("nodeSelector") and not spec.get("affinity") and not rc:
            return OK
        labels = node.labels
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

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        aff = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
        return OK if aff.get("preferredDuringSchedulingIgnoredDuringExecution") else SKIPPED

    def normalize(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> None:
        default_normalize(scores)


class NodePorts:
    name = "NodePorts"
    events = frozenset({NODE_ADD, POD_DELETE})

    def pre_filter(self, state: CycleState, pod: Obj) -> Status:
        ports = res.host_ports(pod)
        state.write(HOST_PORTS, ports)
        return OK if ports else SKIPPED

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        if not node.ports:
            return OK
        ports = state.read(HOST_PORTS)
        for ip, proto, port in ports if ports is not None else res.host_ports(pod):
            for uip, uproto, uport in node.ports:
                if uport == port and uproto == proto and (ip == uip or "0.0.0.0" in (ip, uip)):
                    return unschedulable("node(s) didn't have free ports for the requested pod ports")
        return OK
