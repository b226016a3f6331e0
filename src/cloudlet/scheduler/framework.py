"""The scheduling framework: extension-point Protocols, statuses, cycle state.

Each extension point is its own tiny Protocol (the kube-scheduler framework):

* :class:`PreFilterPlugin` — ``pre_filter(state, pod)`` once per cycle, to
  precompute what filters need into the :class:`CycleState`;
* :class:`FilterPlugin` — ``filter(state, pod, node) -> Status``: a verdict
  (``SUCCESS``, ``UNSCHEDULABLE`` — preemption might help —, or
  ``UNRESOLVABLE`` — it cannot) plus human reasons that feed the
  ``0/N nodes are available: ...`` message;
* :class:`ScorePlugin` — ``score(state, pod, node) -> int`` in
  ``0..MAX_NODE_SCORE`` (a plugin may return raw values and bring them into
  range with ``normalize``);
* :class:`NormalizeScorePlugin` — ``normalize(state, pod, scores)`` edits the
  per-node scores of one plugin in place, after all nodes were scored.

Every plugin has a ``name`` and declares ``events``: the cluster events
(:data:`NODE_ADD`, :data:`NODE_UPDATE`, :data:`POD_DELETE`, ...) that can make
a pod it rejected schedulable again; the queue only retries an unschedulable
pod on events some rejecting plugin declared. Plugins must not mutate the pod
or node dicts (they are shared informer objects).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Obj = dict[str, Any]

MAX_NODE_SCORE = 100

NODE_ADD = "Node/Add"
NODE_UPDATE = "Node/Update"
POD_DELETE = "AssignedPod/Delete"
POD_UPDATE = "AssignedPod/Update"
ALL_EVENTS = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE, POD_UPDATE})

SUCCESS = "Success"
UNSCHEDULABLE = "Unschedulable"
UNRESOLVABLE = "UnschedulableAndUnresolvable"


@dataclass(frozen=True, slots=True)
class Status:
    """A filter verdict: ``code`` and the reasons shown to users."""

    code: str = SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS


OK = Status()


def unschedulable(*reasons: str, resolvable: bool = True) -> Status:
    return Status(UNSCHEDULABLE if resolvable else UNRESOLVABLE, tuple(reasons))


@dataclass(slots=True)
class NodeInfo:
    """A node and what is placed on it: summed requests (``requested``; the
    scoring view ``nonzero`` counts pods without cpu/memory requests as
    100m/200Mi, as Kubernetes does), used host ports and the pods by key."""

    node: Obj
    allocatable: dict[str, int] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    nonzero: dict[str, int] = field(default_factory=dict)
    ports: set[tuple[str, str, int]] = field(default_factory=set)
    pods: dict[str, Obj] = field(default_factory=dict)
    generation: int = 0
    name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.name = str(self.node["metadata"]["name"])


@dataclass(slots=True)
class CycleState:
    """Per-cycle scratch space shared by the plugins for one pod."""

    data: dict[str, Any] = field(default_factory=dict)

    def read(self, key: str) -> Any:
        return self.data.get(key)

    def write(self, key: str, value: Any) -> None:
        self.data[key] = value

    def clone(self) -> CycleState:
        return CycleState(dict(self.data))


@runtime_checkable
class Plugin(Protocol):
    name: str
    events: frozenset[str]


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: Obj) -> Status: ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status: ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: Obj, node: NodeInfo) -> int: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    def normalize(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> None: ...


def default_normalize(scores: dict[str, int], reverse: bool = False) -> None:
    """Scale ``scores`` so the highest is ``MAX_NODE_SCORE``; ``reverse``
    flips them (fewest is best). Kubernetes' ``DefaultNormalizeScore``."""
    top = max(scores.values(), default=0)
    if top == 0:
        if reverse:
            for k in scores:
                scores[k] = MAX_NODE_SCORE
        return
    for k, v in scores.items():
        s = MAX_NODE_SCORE * v // top
        scores[k] = MAX_NODE_SCORE - s if reverse else s


def reasons_histogram(statuses: Iterable[Status]) -> dict[str, int]:
    hist: dict[str, int] = {}
    for st in statuses:
        for r in st.reasons:
            hist[r] = hist.get(r, 0) + 1
    return hist


def fit_message(num_nodes: int, statuses: Iterable[Status], post_filter: str = "") -> str:
    """Kubernetes' ``FitError`` text: ``0/3 nodes are available: 1 Insufficient
    cpu, 2 node(s) had untolerated taint {dedicated: gpu}.`` then the
    preemption message, reasons sorted as strings (as Go's ``sort.Strings``)."""
    if num_nodes == 0 and not post_filter:
        return "no nodes available to schedule pods"
    msg = f"0/{num_nodes} nodes are available:"
    parts = sorted(f"{n} {r}" for r, n in reasons_histogram(statuses).items())
    if parts:
        msg += " " + ", ".join(parts) + "."
    if post_filter:
        msg += " " + post_filter
    return msg
