"""The scheduling framework: extension-point Protocols, statuses, cycle state.

Each extension point is its own tiny Protocol (the kube-scheduler framework):

* :class:`PreFilterPlugin` — ``pre_filter(state, pod) -> Status`` once per
  cycle, to precompute what filters need into the :class:`CycleState`. It may
  answer :data:`SKIP` (its filter has nothing to check for this pod and is not
  run) or reject the pod for every node (``Unschedulable``: its reasons become
  the ``0/N nodes are available: <reasons>.`` text, as kube-scheduler's
  ``PreFilterMsg``);
* :class:`FilterPlugin` — ``filter(state, pod, node) -> Status``: a verdict
  (``SUCCESS``, ``UNSCHEDULABLE`` — preemption might help —, or
  ``UNRESOLVABLE`` — it cannot) plus human reasons that feed the
  ``0/N nodes are available: ...`` message;
* :class:`ScorePlugin` — ``score(state, pod, node) -> int`` in
  ``0..MAX_NODE_SCORE`` (a plugin may return raw values and bring them into
  range with ``normalize``);
* :class:`PreScorePlugin` — ``pre_score(state, pod, nodes) -> Status`` once
  per cycle with the feasible nodes; :data:`SKIP` leaves the plugin out of
  this cycle's scoring (a plugin may only skip when its scores would not
  change the ranking, e.g. no preferred terms);
* :class:`NormalizeScorePlugin` — ``normalize(state, pod, scores)`` edits the
  per-node scores of one plugin in place, after all nodes were scored.

Batch forms (optional, for speed: one Python call per plugin per cycle rather
than one per node): :class:`BatchFilterPlugin` ``filter_nodes(state, pod,
nodes) -> [(index, Status), ...]`` lists only the *rejected* positions, and
:class:`BatchScorePlugin` ``score_nodes(state, pod, nodes) -> [int, ...]``
scores them all in order. Both must agree with the per-node methods, which
every plugin keeps (preemption and tests call them).

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
SKIP = "Skip"


@dataclass(frozen=True, slots=True)
class Status:
    """A filter verdict: ``code`` and the reasons shown to users."""

    code: str = SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS

    @property
    def skipped(self) -> bool:
        return self.code == SKIP

    @property
    def message(self) -> str:
        """The reasons joined as kube-scheduler's ``Status.Message()``."""
        return ", ".join(self.reasons)


OK = Status()
SKIPPED = Status(SKIP)


def unschedulable(*reasons: str, resolvable: bool = True) -> Status:
    return Status(UNSCHEDULABLE if resolvable else UNRESOLVABLE, tuple(reasons))


@dataclass(slots=True)
class NodeInfo:
    """A node and what is placed on it: summed requests (``requested``; the
    scoring view ``nonzero`` counts pods without cpu/memory requests as
    100m/200Mi, as Kubernetes does), used host ports and the pods by key.

    Derived from the Node object once per node update (so plugins need not
    walk the dict per cycle): ``labels``, ``unschedulable``, ``hard_taints``
    (``NoSchedule``/``NoExecute``) and ``soft_taints`` (``PreferNoSchedule``).
    The cpu/memory/pods figures the hot plugins read are also kept as plain
    attributes (``alloc_cpu``, ``req_cpu``, ``nz_cpu``, ... — Kubernetes'
    NodeInfo does the same with its ``Resource`` struct); whoever changes the
    dicts calls :meth:`sync` (the cache does)."""

    node: Obj
    allocatable: dict[str, int] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    nonzero: dict[str, int] = field(default_factory=dict)
    ports: set[tuple[str, str, int]] = field(default_factory=set)
    pods: dict[str, Obj] = field(default_factory=dict)
    generation: int = 0
    name: str = field(init=False, default="")
    labels: dict[str, str] = field(init=False, default_factory=dict)
    unschedulable: bool = field(init=False, default=False)
    hard_taints: tuple[Obj, ...] = field(init=False, default=())
    soft_taints: tuple[Obj, ...] = field(init=False, default=())
    alloc_cpu: int = field(init=False, default=0)
    alloc_mem: int = field(init=False, default=0)
    alloc_pods: int = field(init=False, default=0)
    req_cpu: int = field(init=False, default=0)
    req_mem: int = field(init=False, default=0)
    nz_cpu: int = field(init=False, default=0)
    nz_mem: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.set_node(self.node)
        self.sync()

    def sync(self) -> None:
        """Refresh the scalar copies of ``allocatable``, ``requested`` and ``nonzero``."""
        a, r, z = self.allocatable, self.requested, self.nonzero
        self.alloc_cpu, self.alloc_mem, self.alloc_pods = a.get("cpu", 0), a.get("memory", 0), a.get("pods", 0)
        self.req_cpu, self.req_mem = r.get("cpu", 0), r.get("memory", 0)
        self.nz_cpu, self.nz_mem = z.get("cpu", 0), z.get("memory", 0)

    def set_node(self, node: Obj) -> None:
        """Point at ``node`` and refresh what is derived from it."""
        self.node = node
        meta = node["metadata"]
        self.name = str(meta["name"])
        self.labels = meta.get("labels") or {}
        spec = node.get("spec") or {}
        self.unschedulable = bool(spec.get("unschedulable"))
        taints = spec.get("taints") or ()
        self.hard_taints = tuple(t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute"))
        self.soft_taints = tuple(t for t in taints if t.get("effect") == "PreferNoSchedule")

    def copy(self) -> NodeInfo:
        """A copy whose aggregates can be changed without touching this one."""
        c = NodeInfo.__new__(NodeInfo)  # no __post_init__: the derived fields are shared as they are
        c.node, c.name, c.labels, c.unschedulable = self.node, self.name, self.labels, self.unschedulable
        c.hard_taints, c.soft_taints, c.generation = self.hard_taints, self.soft_taints, self.generation
        c.allocatable, c.requested, c.nonzero = dict(self.allocatable), dict(self.requested), dict(self.nonzero)
        c.ports, c.pods = set(self.ports), dict(self.pods)
        c.alloc_cpu, c.alloc_mem, c.alloc_pods = self.alloc_cpu, self.alloc_mem, self.alloc_pods
        c.req_cpu, c.req_mem, c.nz_cpu, c.nz_mem = self.req_cpu, self.req_mem, self.nz_cpu, self.nz_mem
        return c


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
class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    def normalize(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> None: ...


@runtime_checkable
class BatchFilterPlugin(Plugin, Protocol):
    def filter_nodes(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> list[tuple[int, Status]]: ...


@runtime_checkable
class BatchScorePlugin(Plugin, Protocol):
    def score_nodes(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> list[int]: ...


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


NO_NODES = "no nodes available to schedule pods"


def fit_message(num_nodes: int, statuses: Iterable[Status], post_filter: str = "", pre_filter: str = "") -> str:
    """Kubernetes' ``FitError.Error()`` text.

    ``0/N nodes are available:`` then, each as ``" %v."`` (kube-scheduler's
    ``SeparatorFormat``): the PreFilter rejection message if a PreFilter plugin
    rejected the pod, else the per-node reasons counted and sorted as strings
    (Go's ``sort.Strings``), e.g. ``1 Insufficient cpu, 2 node(s) had
    untolerated taint {dedicated: gpu}``; then the PostFilter (preemption)
    message. A PostFilter message that itself ends in ``.`` thus ends in
    ``..``, exactly as kube-scheduler prints it::

        0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are
        available: 1 No preemption victims found for incoming pod..
    """
    msg = f"0/{num_nodes} nodes are available:"
    if pre_filter:
        msg += f" {pre_filter}."
    else:
        parts = sorted(f"{n} {r}" for r, n in reasons_histogram(statuses).items())
        if parts:
            msg += " " + ", ".join(parts) + "."
    if post_filter:
        msg += f" {post_filter}."
    return msg
