"""Preemption (Kubernetes' DefaultPreemption PostFilter), as a pure dry run.

For a pod no node accepts, :func:`find_victims` looks at every node whose
rejection was *resolvable* (``Unschedulable``: e.g. ``Insufficient cpu``),
removes every pod of lower priority, and if the pod then passes all filters,
adds back ("reprieves") as many of those pods as still allow it — highest
priority first. The candidate node is the one whose victims have the lowest
highest-priority, then the lowest priority sum, then the fewest victims.

It only computes; the scheduler nominates the node, deletes the victims
(gracefully) and retries the pod when they are gone. Messages follow
Kubernetes: ``not eligible due to preemptionPolicy=Never.``,
``0/N nodes are available: 2 Preemption is not helpful for scheduling,
1 No preemption victims found for incoming pod.``
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from cloudlet.scheduler.framework import (
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


@dataclass
class Candidate:
    node: str
    victims: list[Obj]
    priorities: list[int]


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


def _without(ni: NodeInfo, remove: list[Obj], account: Callable[[NodeInfo, Obj, int], None]) -> NodeInfo:
    out = NodeInfo(ni.node, dict(ni.allocatable), dict(ni.requested), dict(ni.nonzero), set(ni.ports), dict(ni.pods))
    for p in remove:
        account(out, p, -1)
    return out


def find_victims(
    pod: Obj,
    priority: int,
    state: CycleState,
    nodes: dict[str, NodeInfo],
    statuses: dict[str, Status],
    fits: Callable[[CycleState, Obj, NodeInfo], Status],
    priority_of: Callable[[Obj], int],
    account: Callable[[NodeInfo, Obj, int], None],
) -> tuple[Candidate | None, str]:
    """The best candidate, or ``None`` and the ``preemption: ...`` message."""
    results: dict[str, Status] = {}
    best: Candidate | None = None
    best_key: tuple[int, int, int] | None = None
    names = list(nodes)
    offset = random.randrange(len(names)) if names else 0
    enough = max(MIN_CANDIDATES, len(names) * MIN_CANDIDATES_PERCENT // 100)
    found = 0
    for i in range(len(names)):
        name = names[(offset + i) % len(names)]
        ni = nodes[name]
        if found >= enough:
            break
        st = statuses.get(name)
        if st is None or st.code != UNSCHEDULABLE:
            results[name] = Status(reasons=(NOT_HELPFUL,))
            continue
        lower = [p for p in ni.pods.values() if priority_of(p) < priority and not p["metadata"].get("deletionTimestamp")]
        if not lower:
            results[name] = Status(reasons=(NO_VICTIMS,))
            continue
        trial = _without(ni, lower, account)
        verdict = fits(state, pod, trial)
        if not verdict.ok:
            results[name] = verdict
            continue
        victims: list[Obj] = []
        for p in sorted(lower, key=lambda q: (-priority_of(q), str(q["metadata"].get("creationTimestamp") or ""))):
            account(trial, p, +1)
            if not fits(state, pod, trial).ok:
                account(trial, p, -1)
                victims.append(p)
        if not victims:  # fits as it is: the cycle's view was stale, nothing to preempt here
            results[name] = Status(reasons=(NO_VICTIMS,))
            continue
        prios = [priority_of(v) for v in victims]
        key = (max(prios), sum(prios), len(victims))
        found += 1
        if best_key is None or key < best_key:
            best, best_key = Candidate(name, victims, prios), key
    if best is not None:
        return best, ""
    return None, "preemption: " + fit_message(len(nodes), results.values())


def victim_keys(c: Candidate) -> list[str]:
    return [pod_key(v) for v in c.victims]


