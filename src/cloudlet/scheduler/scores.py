"""The built-in score plugins that are not also filters.

* :class:`LeastAllocated` — favours nodes with the most free cpu and memory:
  ``mean over resources of (allocatable - requested) * 100 / allocatable``
  where ``requested`` includes the incoming pod (non-zero defaults for pods
  without requests, as Kubernetes scores; 0 for a resource the node does not
  have or that would be over-committed).
* :class:`BalancedAllocation` — favours nodes whose cpu and memory
  fractions stay close: ``(1 - std(fractions)) * 100`` over the resources
  the node has, fractions capped at 1, using the pods' actual requests (no
  non-zero defaults), as kube-scheduler's ``NodeResourcesBalancedAllocation``.
  Best-effort pods (no cpu or memory request) skip it (``pre_score``), as
  kube-scheduler does, so they are not all piled onto one node.

Both have a batch form (``score_nodes``) that the scheduler calls once per
cycle. Preferred node affinity and PreferNoSchedule taints are scored by the
``NodeAffinity`` and ``TaintToleration`` plugins in :mod:`.filters`.
"""

from __future__ import annotations

from cloudlet.scheduler import resources as res
from cloudlet.scheduler.filters import REQUESTS
from cloudlet.scheduler.framework import (
    MAX_NODE_SCORE,
    NODE_ADD,
    NODE_UPDATE,
    OK,
    POD_DELETE,
    SKIPPED,
    CycleState,
    NodeInfo,
    Obj,
    Status,
)

CPU, MEMORY = res.CPU, res.MEMORY


def _requests(state: CycleState, pod: Obj) -> dict[str, int]:
    req = state.read(REQUESTS)
    if req is None:
        req = res.pod_requests(pod)
        state.write(REQUESTS, req)
    return req


def _least(used: int, alloc: int) -> int:
    if alloc <= 0 or used > alloc:
        return 0
    return (alloc - used) * MAX_NODE_SCORE // alloc


class LeastAllocated:
    name = "LeastAllocated"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE})

    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int:
        nz = res.nonzero_requests(_requests(state, pod))
        al, used = node.allocatable, node.nonzero
        return (_least(used.get(CPU, 0) + nz[CPU], al.get(CPU, 0))
                + _least(used.get(MEMORY, 0) + nz[MEMORY], al.get(MEMORY, 0))) // 2

    def score_nodes(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> list[int]:
        nz = res.nonzero_requests(_requests(state, pod))
        c, m, top = nz[CPU], nz[MEMORY], MAX_NODE_SCORE
        # one comprehension (no call per node): _least(cpu) + _least(memory), halved
        return [(((ac - uc) * top // ac if 0 < (ac := n.alloc_cpu) and (uc := n.nz_cpu + c) <= ac else 0)
                 + ((am - um) * top // am if 0 < (am := n.alloc_mem) and (um := n.nz_mem + m) <= am else 0)) // 2
                for n in nodes]


def _balanced(fc: float | None, fm: float | None) -> int:
    if fc is None or fm is None:  # fewer than two resources on the node: std is 0
        return MAX_NODE_SCORE
    return int((1 - abs(fc - fm) / 2) * MAX_NODE_SCORE)


class BalancedAllocation:
    name = "BalancedAllocation"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE})

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        req = _requests(state, pod)
        return OK if req.get(CPU) or req.get(MEMORY) else SKIPPED

    @staticmethod
    def _fraction(used: int, alloc: int) -> float | None:
        if alloc <= 0:
            return None
        return min(1.0, used / alloc)

    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int:
        req = _requests(state, pod)
        al, used = node.allocatable, node.requested
        return _balanced(self._fraction(used.get(CPU, 0) + req.get(CPU, 0), al.get(CPU, 0)),
                         self._fraction(used.get(MEMORY, 0) + req.get(MEMORY, 0), al.get(MEMORY, 0)))

    def score_nodes(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> list[int]:
        req = _requests(state, pod)
        c, m, top = req.get(CPU, 0), req.get(MEMORY, 0), MAX_NODE_SCORE
        # (1 - |min(1, fcpu) - min(1, fmem)| / 2) * 100 per node with both resources, in one comprehension
        return [int((1 - (d if (d := (fc if (fc := (n.req_cpu + c) / ac) < 1.0 else 1.0)
                                 - (fm if (fm := (n.req_mem + m) / am) < 1.0 else 1.0)) >= 0 else -d) / 2) * top)
                if (ac := n.alloc_cpu) > 0 and (am := n.alloc_mem) > 0 else top
                for n in nodes]
