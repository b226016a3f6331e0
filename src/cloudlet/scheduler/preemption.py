"""Preemption (Kubernetes' DefaultPreemption PostFilter), as a pure dry run.

For a pod no node accepts, :func:`find_victims` looks at the nodes whose
rejection was *resolvable* (``Unschedulable``: e.g. ``Insufficient cpu``),
starting at a random offset and stopping after ``max(100, 10% of nodes)``
candidates (kube-scheduler's ``minCandidateNodesAbsolute`` /
``minCandidateNodesPercentage``). On each it removes every lower-priority pod;
if the pod then passes all filters, it adds back ("reprieves") as many of
them as still allow it — first the pods whose eviction would violate a
PodDisruptionBudget, then the others, each group highest priority (then
earliest start) first. The victims are what could not be reprieved.

The candidate chosen is, as kube-scheduler's ``pickOneNodeForPreemption``:

1. the fewest PodDisruptionBudget violations;
2. the lowest highest-priority victim;
3. the lowest sum of victim priorities (each offset by 2^31, as Go does);
4. the fewest victims;
5. the latest start time of its earliest-started highest-priority victim;
6. else the first one found.

A pod's eviction *violates* a budget when the budget (same namespace,
non-empty selector matching the pod's labels, the pod not already in its
``status.disruptedPods``) has no ``status.disruptionsAllowed`` left, counting
the other victims of the same node that it also covers.

It only computes; the scheduler nominates the node, deletes the victims
(gracefully) and retries the pod when they are gone. Messages follow
Kubernetes: ``not eligible due to preemptionPolicy=Never.``,
``0/N nodes are available: 2 Preemption is not helpful for scheduling,
1 No preemption victims found for incoming pod.``
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cloudlet.resources.validation import selector_matches
from cloudlet.scheduler.framework import (
    UNRESOLVABLE,
    UNSCHEDULABLE,
    CycleState,
    NodeInfo,
    Obj,
    Status,
    fit_message,
)
from cloudlet.scheduler.queue import pod_key

MIN_CANDIDATES = 100  # Kubernetes' minCandidateNodesAbsolute
MIN_CANDIDATES_PERCENT = 10  # and minCandidateNodesPercentage: the dry run stops after this many
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL_STATUS = Status(UNRESOLVABLE, (NOT_HELPFUL,))
NO_VICTIMS_STATUS = Status(UNRESOLVABLE, (NO_VICTIMS,))


@dataclass
class Candidate:
    node: str
    victims: list[Obj]
    priorities: list[int]
    pdb_violations: int = 0
    start: str = field(default="")  # start time of the earliest-started highest-priority victim

    def rank(self) -> tuple[int, int, int, int]:
        """Smaller is better for rules 1-4 (rule 5 compares ``start``, larger is better)."""
        # kube-scheduler sums ``priority + MaxInt32 + 1`` per victim, so negative
        # priorities count and, at equal raw sums, more victims weigh more
        return (self.pdb_violations, max(self.priorities), sum(p + 2**31 for p in self.priorities), len(self.victims))


def eligible(pod: Obj, priority: int, nominated: NodeInfo | None,
             priority_of: Callable[[Obj], int]) -> str | None:
    """``None`` when ``pod`` may preempt, else Kubernetes' reason. A pod whose
    nominated node still has a terminating lower-priority pod waits for it."""
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return "not eligible due to preemptionPolicy=Never."
    if nominated is not None:
        for p in nominated.pods.values():
            if p["metadata"].get("deletionTimestamp") and priority_of(p) < priority:
                return "not eligible due to a terminating pod on the nominated node."
    return None


def start_time(pod: Obj) -> str:
    """``status.startTime``, else the creation time (RFC 3339 strings compare in time order)."""
    return str((pod.get("status") or {}).get("startTime") or pod["metadata"].get("creationTimestamp") or "")


def _selects(pdb: Obj, pod: Obj) -> bool:
    labels = pod["metadata"].get("labels")
    if not labels:
        return False  # a pod with no labels matches no budget
    sel = (pdb.get("spec") or {}).get("selector")
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return False  # for preemption a nil or empty selector matches nothing
    return selector_matches(sel, labels)


def split_by_pdb(pods: Sequence[Obj], pdbs: Sequence[Obj]) -> tuple[list[Obj], list[Obj]]:
    """``pods`` (in order) split into those whose eviction would violate a
    budget and the rest (kube-scheduler's ``filterPodsWithPDBViolation``)."""
    if not pdbs:
        return [], list(pods)
    allowed = [int((b.get("status") or {}).get("disruptionsAllowed") or 0) for b in pdbs]
    violating: list[Obj] = []
    fine: list[Obj] = []
    for p in pods:
        m = p["metadata"]
        hit = False
        for i, b in enumerate(pdbs):
            if b["metadata"].get("namespace") != m.get("namespace") or not _selects(b, p):
                continue
            if m["name"] in ((b.get("status") or {}).get("disruptedPods") or {}):
                continue  # the API already counted this one's disruption
            allowed[i] -= 1
            if allowed[i] < 0:
                hit = True
        (violating if hit else fine).append(p)
    return violating, fine


def _better(c: Candidate, best: Candidate | None) -> bool:
    if best is None:
        return True
    a, b = c.rank(), best.rank()
    if a != b:
        return a < b
    return c.start > best.start


def select_victims(
    pod: Obj,
    priority: int,
    state: CycleState,
    ni: NodeInfo,
    fits: Callable[[CycleState, Obj, NodeInfo], Status],
    priority_of: Callable[[Obj], int],
    account: Callable[[NodeInfo, Obj, int], None],
    pdbs: Sequence[Obj] = (),
) -> tuple[Candidate | None, Status]:
    """The victims on one node (kube-scheduler's ``SelectVictimsOnNode``), or
    ``None`` and why the node cannot help."""
    lower = [p for p in ni.pods.values()
             if priority_of(p) < priority and not p["metadata"].get("deletionTimestamp")]
    if not lower:
        return None, NO_VICTIMS_STATUS
    trial = ni.copy()
    for p in lower:
        account(trial, p, -1)
    verdict = fits(state, pod, trial)
    if not verdict.ok:
        return None, verdict
    lower.sort(key=lambda q: (-priority_of(q), start_time(q)))
    violating, fine = split_by_pdb(lower, pdbs)
    victims: list[Obj] = []
    violations = 0
    for group, counts in ((violating, True), (fine, False)):
        for p in group:
            account(trial, p, +1)
            if not fits(state, pod, trial).ok:
                account(trial, p, -1)
                victims.append(p)
                violations += counts
    if not victims:  # fits as it is: the cycle's view was stale, nothing to preempt here
        return None, NO_VICTIMS_STATUS
    victims.sort(key=lambda q: (-priority_of(q), start_time(q)))
    prios = [priority_of(v) for v in victims]
    top = prios[0]
    earliest = min(start_time(v) for v, pr in zip(victims, prios, strict=True) if pr == top)
    return Candidate(ni.name, victims, prios, violations, earliest), Status()


def find_victims(
    pod: Obj,
    priority: int,
    state: CycleState,
    nodes: dict[str, NodeInfo],
    statuses: dict[str, Status],
    fits: Callable[[CycleState, Obj, NodeInfo], Status],
    priority_of: Callable[[Obj], int],
    account: Callable[[NodeInfo, Obj, int], None],
    pdbs: Sequence[Obj] = (),
    view: Callable[[NodeInfo], NodeInfo] | None = None,
) -> tuple[Candidate | None, str]:
    """The best candidate, or ``None`` and the ``preemption: ...`` message.
    ``view`` turns a node into what the pod sees of it (the node plus the
    pods nominated to it that the pod must leave room for)."""
    results: dict[str, Status] = {}
    best: Candidate | None = None
    names = [n for n in nodes if (st := statuses.get(n)) is not None and st.code == UNSCHEDULABLE]
    offset = random.randrange(len(names)) if names else 0
    enough = max(MIN_CANDIDATES, len(nodes) * MIN_CANDIDATES_PERCENT // 100)
    found = 0
    for i in range(len(names)):
        if found >= enough:
            break
        name = names[(offset + i) % len(names)]
        ni = nodes[name] if view is None else view(nodes[name])
        cand, why = select_victims(pod, priority, state, ni, fits, priority_of, account, pdbs)
        if cand is None:
            results[name] = why
            continue
        found += 1
        if _better(cand, best):
            best = cand
    if best is not None:
        return best, ""
    # nodes never examined (their rejection was unresolvable) count as "not helpful"
    for name in nodes:
        results.setdefault(name, NOT_HELPFUL_STATUS)
    return None, "preemption: " + fit_message(len(nodes), results.values())


def victim_keys(c: Candidate) -> list[str]:
    return [pod_key(v) for v in c.victims]
