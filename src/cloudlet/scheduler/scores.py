"""The built-in score plugins that are not also filters.

* :class:`LeastAllocated` — favours nodes with the most free cpu and memory:
  ``mean over resources of (allocatable - requested) * 100 / allocatable``
  where ``requested`` includes the incoming pod (non-zero defaults for pods
  without requests, as Kubernetes scores).
* :class:`BalancedAllocation` — favours nodes whose cpu and memory
  fractions stay close: ``(1 - std(fractions)) * 100``.

Preferred node affinity and PreferNoSchedule taints are scored by the
``NodeAffinity`` and ``TaintToleration`` plugins in :mod:`.filters`.
"""

from __future__ import annotations

from cloudlet.scheduler import resources as res
from cloudlet.scheduler.filters import REQUESTS
from cloudlet.scheduler.framework import (
    MAX_NODE_SCORE,
    NODE_ADD,
    NODE_UPDATE,
    POD_DELETE,
    CycleState,
    NodeInfo,
    Obj,
)

_RESOURCES = (res.CPU, res.MEMORY)
NONZERO = "scores/nonzero-requests"


def _fractions(state: CycleState, pod: Obj, node: NodeInfo) -> list[tuple[int, int]]:
    req = state.read(NONZERO)
    if req is None:
        req = res.nonzero_requests(state.read(REQUESTS) or res.pod_requests(pod))
        state.write(NONZERO, req)
    out = []
    for r in _RESOURCES:
        out.append((node.nonzero.get(r, 0) + req[r], node.allocatable.get(r, 0)))
    return out


class LeastAllocated:
    name = "LeastAllocated"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE})

    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int:
        total = 0
        for used, alloc in _fractions(state, pod, node):
            if alloc > 0 and used <= alloc:
                total += (alloc - used) * MAX_NODE_SCORE // alloc
        return total // len(_RESOURCES)


class BalancedAllocation:
    name = "BalancedAllocation"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE})

    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int:
        fr = [min(1.0, used / alloc) if alloc > 0 else 1.0 for used, alloc in _fractions(state, pod, node)]
        mean = sum(fr) / len(fr)
        std = (sum((f - mean) ** 2 for f in fr) / len(fr)) ** 0.5
        return int((1 - std) * MAX_NODE_SCORE)
