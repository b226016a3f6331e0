"""The scheduler loop: pending pods in, bindings out.

:class:`Scheduler` watches pods, nodes, PriorityClasses, RuntimeClasses and
(when the API serves them) policy/v1 PodDisruptionBudgets through shared
informers and places every pod with ``spec.schedulerName ==
"default-scheduler"`` (the default), no ``spec.nodeName`` and no
``schedulingGates``, one at a time, in :class:`SchedulingQueue` order:

1. pre-filter (per-cycle precomputation into a :class:`CycleState`; a plugin
   with nothing to check for this pod answers ``Skip`` and its filter is not
   run; one that rejects the pod rejects it on every node);
2. a pod with a nominated node (a preemptor whose victims are gone) tries
   that node first and takes it if it fits, as kube-scheduler does;
3. filter nodes — starting where the previous cycle stopped (round robin),
   in chunks, each filter plugin called once per chunk (its batch form), and
   stopping once enough feasible nodes are found on big clusters
   (Kubernetes' ``percentageOfNodesToScore`` rule: all nodes up to 100, else
   ``max(100, n * max(5, 50 - n/125) / 100)``);
4. pre-score (plugins whose scores cannot change the ranking for this pod
   skip), score the feasible nodes (each plugin once per cycle; scores
   normalised, weighted and summed) and pick the best (ties at random);
5. *assume* the pod onto the node in the :class:`ClusterCache` and bind it
   asynchronously through the ``pods/binding`` subresource (in process via
   :func:`cloudlet.api.binding.bind_pod` over a ``LocalClient``, or
   ``POST .../binding`` over HTTP). A failed binding is forgotten and the pod
   retried with backoff.

The decision part of a cycle (steps 1-5, and the preemption dry run) never
suspends, so no cluster event can slip in between a pod's verdict and its
placement in the queue; API writes (binding, status, victim deletion)
run as background tasks. Events go to one
:class:`~cloudlet.client.events.EventRecorder`, which queues at most 1 000
writes (more are dropped, as client-go's event broadcaster does when its
queue is full; ``events_dropped`` counts them) and writes them with up to
``EVENT_WRITERS`` (16) concurrent writers.

A pod no node accepts may preempt (see :mod:`.preemption`): the chosen node
is recorded as nominated (in the cache's nominator and
``status.nominatedNodeName``), lower-priority pods nominated to the same node
lose their nomination, and the victims get a ``DisruptionTarget`` condition
(reason ``PreemptionByScheduler``) and are deleted gracefully. Otherwise the
pod gets ``PodScheduled=False``/``Unschedulable`` with Kubernetes' message
and a ``FailedScheduling`` Warning event. Either way it waits in the
unschedulable set for a cluster event that one of the rejecting plugins
declared *and* that can help it: each event carries a hint (the pod now
passes the filters on the node the event touched — the node a pod left, the
node added or updated), so a victim's deletion retries the preemptor whose
room it frees, not every pending pod.

Running: ``await Scheduler(client).run()`` until cancelled. Given a shared
``factory``, the caller starts and shuts it down; without one the scheduler
owns its own. Each cycle yields to the event loop once, so a long queue never
starves the API server it shares a process with.

Priority: ``spec.priority`` when set, else the value of the named
PriorityClass, else of the ``globalDefault`` class, else 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cloudlet import metrics
from cloudlet.api.errors import APIError
from cloudlet.client.events import EventRecorder
from cloudlet.client.informer import Informer, SharedInformerFactory
from cloudlet.client.interface import Client, ResourceRef
from cloudlet.scheduler import preemption
from cloudlet.scheduler.cache import ClusterCache
from cloudlet.scheduler.config import Profile, build_profile
from cloudlet.scheduler.filters import RUNTIME_CLASS
from cloudlet.scheduler.framework import (
    NO_NODES,
    NODE_ADD,
    NODE_UPDATE,
    POD_DELETE,
    POD_UPDATE,
    SUCCESS,
    CycleState,
    NodeInfo,
    Obj,
    Status,
    fit_message,
)
from cloudlet.scheduler.queue import SchedulingQueue, pod_key

log = logging.getLogger("cloudlet.scheduler")

SCHEDULER_NAME = "default-scheduler"
PODS = ResourceRef("", "v1", "pods")
NODES = ResourceRef("", "v1", "nodes")
PRIORITY_CLASSES = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses")
RUNTIME_CLASSES = ResourceRef("node.k8s.io", "v1", "runtimeclasses")
PDBS = ResourceRef("policy", "v1", "poddisruptionbudgets")

EVENT_WRITERS = 16
SKIPPED_FILTERS = "framework/skipped-filters"
PRE_FILTER_MSG = "framework/pre-filter-message"


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


_BOOKKEEPING = ("resourceVersion", "generation", "managedFields", "finalizers")


def pod_updated(old: Obj, new: Obj) -> bool:
    """kube-scheduler's ``isPodUpdated``: did anything but the status and the
    bookkeeping metadata change? (Only such updates retry an unschedulable pod.)"""
    if old.get("spec") != new.get("spec"):
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    keys = (set(om) | set(nm)).difference(_BOOKKEEPING)
    return any(om.get(k) != nm.get(k) for k in keys)


def num_feasible_to_find(n: int, percentage: int = 0) -> int:
    """kube-scheduler's ``numFeasibleNodesToFind`` (``percentage`` 0: adaptive)."""
    if n < 100 or percentage >= 100:
        return n
    pct = percentage or max(5, 50 - n // 125)
    return max(100, n * pct // 100)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scheduler:
    def __init__(
        self,
        client: Client,
        factory: SharedInformerFactory | None = None,
        profile: Profile | None = None,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        preemption: bool = True,
        scheduler_name: str = SCHEDULER_NAME,
        percentage_of_nodes_to_score: int = 0,
    ) -> None:
        self.client = client
        self.own_factory = factory is None
        self.factory = factory or SharedInformerFactory(client)
        self.profile = profile or build_profile()
        self.scheduler_name = scheduler_name
        self.preemption = preemption
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.pods: Informer = self.factory.informer(PODS)
        self.nodes: Informer = self.factory.informer(NODES)
        self.priority_classes: Informer = self.factory.informer(PRIORITY_CLASSES)
        self.runtime_classes: Informer = self.factory.informer(RUNTIME_CLASSES)
        self.pdbs: Informer | None = None  # started by run() when the API serves policy/v1 PDBs
        self.cache = ClusterCache()
        events = self.profile.event_table()
        self.queue = SchedulingQueue(
            self.priority_of, initial_backoff=initial_backoff, max_backoff=max_backoff,
            plugin_events=lambda name: events.get(name, frozenset()),
        )
        # a burst of scheduling writes an Event per pod; with the event loop busy
        # scheduling, each writer lands about one Event per store commit, so the
        # scheduler's recorder gets more writers than the default (bench/scheduler.py:
        # 8 drop ~30% of the Events at ~650 pods/s through the full server, 16 none)
        self.recorder = EventRecorder(client, scheduler_name, workers=EVENT_WRITERS)
        self._next_start = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._states: dict[str, tuple[Obj, CycleState]] = {}  # unschedulable pods' last cycle state
        self._default_priority: int | None = None
        self.scheduled = 0
        self._hooked = False
        self._filters = list(self.profile.filters)
        invalidate = self._priority_classes_changed
        self.priority_classes.add_handler(lambda _o: invalidate(), lambda _o, _n: invalidate(),
                                          lambda _o: invalidate())

    # --- priority ----------------------------------------------------------------

    def _priority_classes_changed(self) -> None:
        self._default_priority = None

    def priority_of(self, pod: Obj) -> int:
        spec = pod.get("spec") or {}
        p = spec.get("priority")
        if isinstance(p, int):
            return p
        name = spec.get("priorityClassName")
        if name:
            pc = self.priority_classes.get(name)
            return int(pc.get("value") or 0) if pc else 0
        if self._default_priority is None:
            self._default_priority = next(
                (int(pc.get("value") or 0) for pc in self.priority_classes.list() if pc.get("globalDefault")), 0)
        return self._default_priority

    # --- event handlers ----------------------------------------------------------

    def responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (
            (spec.get("schedulerName") or SCHEDULER_NAME) == self.scheduler_name
            and not spec.get("nodeName")
            and not spec.get("schedulingGates")
            and not pod["metadata"].get("deletionTimestamp")
            and not _terminal(pod)
        )

    def _forget_pending(self, key: str) -> None:
        self.queue.delete(key)
        self._states.pop(key, None)

    def _pod_add(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            key = pod_key(pod)
            self.cache.set_pod(pod)
            self.cache.clear_nomination(key)
            if key in self.queue.items:
                self._forget_pending(key)
        elif self.responsible(pod) and pod_key(pod) not in self.cache.assumed:
            self.queue.add(pod)

    def _pod_update(self, old: Obj, new: Obj) -> None:
        if old is new:
            return  # resync
        was_bound = bool((old.get("spec") or {}).get("nodeName"))
        if not was_bound and not (new.get("spec") or {}).get("nodeName") and self.responsible(new):
            if pod_key(new) not in self.cache.assumed:  # an assumed pod waits for its binding
                self.queue.update(new, pod_updated(old, new))
            return
        self._pod_add(new)
        if was_bound:
            if _terminal(new) and not _terminal(old):  # it let go of its node's resources
                self.queue.move_on_event(POD_UPDATE, self._fits_on(new["spec"]["nodeName"]))
        elif not self.responsible(new):
            self._forget_pending(pod_key(new))

    def _pod_delete(self, pod: Obj) -> None:
        key = pod_key(pod)
        self._forget_pending(key)
        self.cache.clear_nomination(key)
        info = self.cache.infos.get(key)
        if info is not None:
            self.cache.remove_pod(key)
            self.queue.move_on_event(POD_DELETE, self._fits_on(info.node))

    def _node_add(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move_on_event(NODE_ADD, self._fits_on(node["metadata"]["name"]))

    def _node_update(self, old: Obj, new: Obj) -> None:
        if old is new:
            return
        self.cache.set_node(new)
        self.queue.move_on_event(NODE_UPDATE, self._fits_on(new["metadata"]["name"]))

    def _node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node["metadata"]["name"])

    def _hook(self) -> None:
        if self._hooked:
            return
        self._hooked = True
        self.nodes.add_handler(self._node_add, self._node_update, self._node_delete)
        self.pods.add_handler(self._pod_add, self._pod_update, self._pod_delete)

    def _fits_on(self, node: str) -> Callable[[str, Obj], bool]:
        """The queueing hint for an event that touched ``node``: does the waiting
        pod now pass every filter there (counting pods nominated to it)?"""

        def hint(key: str, queued: Obj) -> bool:
            ni = self.cache.nodes.get(node)
            if ni is None:
                return False
            pod = self.pods.get(key) or queued
            saved = self._states.get(key)
            state = saved[1] if saved is not None and saved[0] is pod else None
            if state is None:
                state = self.new_state(pod)
                self._states[key] = (pod, state)
            if state.read(PRE_FILTER_MSG):
                return True  # rejected before any node was looked at: let it try again
            return self.run_filters(state, pod, self._node_view(ni, pod, self.priority_of(pod))).ok

        return hint

    # --- running -----------------------------------------------------------------

    async def _start_pdbs(self) -> None:
        """Watch PodDisruptionBudgets if the API serves policy/v1 (else: none)."""
        try:
            await self.client.list(PDBS, limit=1)
        except APIError as e:
            if e.code not in (404, 405):
                log.warning("cannot list poddisruptionbudgets; preemption ignores them", extra={"error": str(e)})
            return
        except Exception:
            log.warning("cannot list poddisruptionbudgets; preemption ignores them", exc_info=True)
            return
        self.pdbs = self.factory.informer(PDBS)  # starts at once: the factory is running
        await self.pdbs.wait_synced()

    async def run(self) -> None:
        """Schedule until cancelled."""
        if self.own_factory:
            self.factory.start()
        pending = metrics.add_collector(self._pending_metrics)
        try:
            await self.factory.wait_for_cache_sync()
            await self._start_pdbs()
            self._hook()
            flusher = asyncio.create_task(self._flush_loop())
            try:
                while True:
                    pod, attempt = await self.queue.pop()
                    t0 = time.perf_counter()
                    try:
                        result = await self.schedule_one(pod)
                    except Exception:
                        result = "error"
                        log.exception("scheduling cycle failed", extra={"pod": pod_key(pod)})
                        self.queue.requeue_backoff(pod_key(pod))
                    if result is not None:  # scheduler_schedule_attempts_total / ..._attempt_duration_seconds
                        metrics.SCHEDULE_ATTEMPTS.labels(result, self.scheduler_name).inc()
                        metrics.SCHEDULING_ATTEMPT_DURATION.labels(result, self.scheduler_name).observe(
                            time.perf_counter() - t0)
                    await asyncio.sleep(0)  # a cycle may not suspend: let the API and bindings run
            finally:
                flusher.cancel()
        finally:
            metrics.remove_collector(pending)
            self.queue.close()
            for t in list(self._tasks):
                t.cancel()
            self.recorder.shutdown()
            if self.own_factory:
                await self.factory.shutdown()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            self.queue.flush_unschedulable()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event in the background (the recorder drops it when its
        queue is full: a scheduler placing hundreds of pods a second must not
        pile up unbounded writes behind it)."""
        self.recorder.emit(obj, type_, reason, message)

    @property
    def events_dropped(self) -> int:
        """Events dropped because the recorder's queue was full."""
        return self.recorder.queue_dropped

    async def wait_idle(self) -> None:
        """Wait for the background writes started so far (bindings, status,
        evictions, Events)."""
        while self._tasks or self.recorder.pending:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await self.recorder.flush()

    # --- one cycle ---------------------------------------------------------------

    def _node_view(self, ni: NodeInfo, pod: Obj, priority: int) -> NodeInfo:
        """``ni`` plus pods nominated to it with at least ``priority`` (not ``pod``)."""
        return self.cache.view(ni, pod_key(pod), priority)

    def run_filters(self, state: CycleState, pod: Obj, ni: NodeInfo) -> Status:
        skipped = state.read(SKIPPED_FILTERS) or ()
        for pl in self._filters:
            if pl.name in skipped:
                continue
            st: Status = pl.filter(state, pod, ni)
            if st.code != SUCCESS:
                return Status(st.code, st.reasons, pl.name)
        return Status()

    def _preemption_fits(self, state: CycleState, pod: Obj, ni: NodeInfo) -> Status:
        rejected = state.read(PRE_FILTER_MSG)
        if rejected is not None:  # no node can take it, with or without victims
            return rejected[1]
        return self.run_filters(state, pod, ni)

    def new_state(self, pod: Obj) -> CycleState:
        """Run the pre-filters. The plugins that answered ``Skip`` are listed
        under ``SKIPPED_FILTERS``; a rejection is recorded under
        ``PRE_FILTER_MSG`` as ``(plugin, status)``."""
        state = CycleState()
        rc_name = (pod.get("spec") or {}).get("runtimeClassName")
        state.write(RUNTIME_CLASS, self.runtime_classes.get(rc_name) if rc_name else None)
        skipped: set[str] = set()
        for pl in self.profile.plugins:
            pre = getattr(pl, "pre_filter", None)
            if pre is None:
                continue
            st = pre(state, pod)
            if not isinstance(st, Status) or st.ok:
                continue
            if st.skipped:
                skipped.add(pl.name)
            elif state.read(PRE_FILTER_MSG) is None:
                state.write(PRE_FILTER_MSG, (pl.name, Status(st.code, st.reasons, pl.name)))
        state.write(SKIPPED_FILTERS, frozenset(skipped))
        return state

    def _filter_chunk(self, state: CycleState, pod: Obj, chunk: list[NodeInfo],
                      statuses: dict[str, Status]) -> list[NodeInfo]:
        """The nodes of ``chunk`` every filter accepts; rejections go to ``statuses``."""
        skipped = state.read(SKIPPED_FILTERS) or ()
        for pl in self._filters:
            if not chunk:
                break
            if pl.name in skipped:
                continue
            batch = getattr(pl, "filter_nodes", None)
            if batch is not None:
                rejected = batch(state, pod, chunk)
            else:
                rejected = [(i, st) for i, ni in enumerate(chunk) if not (st := pl.filter(state, pod, ni)).ok]
            if not rejected:
                continue
            drop = set()
            for i, st in rejected:
                drop.add(i)
                statuses[chunk[i].name] = Status(st.code, st.reasons, pl.name)
            chunk = [ni for i, ni in enumerate(chunk) if i not in drop]
        return chunk

    def find_nodes(self, state: CycleState, pod: Obj, priority: int) -> tuple[list[NodeInfo], dict[str, Status]]:
        nodes = self.cache.node_list()
        n = len(nodes)
        statuses: dict[str, Status] = {}
        if n == 0:
            return [], statuses
        want = num_feasible_to_find(n, self.percentage_of_nodes_to_score)
        start = self._next_start % n
        nominated = self.cache.nominated
        feasible: list[NodeInfo] = []
        pos = 0
        while pos < n and len(feasible) < want:
            take = min(want - len(feasible), n - pos)
            lo = (start + pos) % n  # the next `take` nodes in round-robin order, wrapping at the end
            chunk = nodes[lo:lo + take]
            if len(chunk) < take:
                chunk += nodes[:take - len(chunk)]
            pos += take
            if nominated:
                key = pod_key(pod)
                view = self.cache.view
                chunk = [view(ni, key, priority) if ni.name in nominated else ni for ni in chunk]
            feasible.extend(self._filter_chunk(state, pod, chunk, statuses))
        self._next_start = (start + pos) % n
        if nominated:  # score the nodes themselves, not the views with nominated pods
            feasible = [self.cache.nodes[ni.name] for ni in feasible]
        return feasible, statuses

    def pick(self, state: CycleState, pod: Obj, feasible: list[NodeInfo]) -> str:
        if len(feasible) == 1 or not self.profile.scores:
            return feasible[0].name
        total: list[int] | None = None
        for pl, weight in self.profile.scores:
            pre = getattr(pl, "pre_score", None)
            if pre is not None:
                st = pre(state, pod, feasible)
                if isinstance(st, Status) and st.skipped:
                    continue
            batch = getattr(pl, "score_nodes", None)
            vals = batch(state, pod, feasible) if batch is not None else [pl.score(state, pod, ni) for ni in feasible]
            norm = getattr(pl, "normalize", None)
            if norm is not None:
                scores = {ni.name: int(v) for ni, v in zip(feasible, vals, strict=True)}
                norm(state, pod, scores)
                vals = [scores[ni.name] for ni in feasible]
            if total is None:
                total = [int(b) * weight for b in vals] if weight != 1 else list(vals)
            elif weight == 1:
                total = [a + b for a, b in zip(total, vals, strict=True)]
            else:
                total = [a + int(b) * weight for a, b in zip(total, vals, strict=True)]
        if total is None:  # every score plugin skipped
            return feasible[random.randrange(len(feasible))].name
        top = max(total)
        best = [i for i, v in enumerate(total) if v == top]
        return feasible[best[0] if len(best) == 1 else random.choice(best)].name

    def _nominated_fit(self, state: CycleState, pod: Obj, key: str, priority: int) -> NodeInfo | None:
        """kube-scheduler's ``evaluateNominatedNode``: a pod with a nominated node
        takes it if it fits there now."""
        name = self.cache.nominated_node(key) or (pod.get("status") or {}).get("nominatedNodeName")
        ni = self.cache.nodes.get(name) if name else None
        if ni is None:
            return None
        return ni if self.run_filters(state, pod, self._node_view(ni, pod, priority)).ok else None

    def _pending_metrics(self) -> Any:
        """``scheduler_pending_pods{queue}`` read from the queue at scrape time."""
        fam = metrics.GaugeMetricFamily("scheduler_pending_pods", "Number of pending pods, by the queue type.", labels=["queue"])
        counts = {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
        for qp in list(self.queue.items.values()):
            if qp.where in counts:
                counts[qp.where] += 1
        for where, n in counts.items():
            fam.add_metric([where], n)
        yield fam

    async def schedule_one(self, queued: Obj) -> str | None:
        """One scheduling cycle; the attempt's result for the metrics (``scheduled``,
        ``unschedulable``) or ``None`` when the pod was not this scheduler's to try."""
        key = pod_key(queued)
        pod = self.pods.get(key) or queued
        if not self.responsible(pod) or key in self.cache.assumed:
            self.queue.done(key)
            return None
        if not self.cache.nodes:
            self._unschedulable(pod, None, NO_NODES, frozenset())
            return "unschedulable"
        priority = self.priority_of(pod)
        state = self.new_state(pod)
        rejected = state.read(PRE_FILTER_MSG)
        if rejected is not None:
            plugin, st = rejected
            statuses = dict.fromkeys(self.cache.nodes, st)
            self._failed(pod, priority, state, statuses, frozenset({plugin}), st.message)
            return "unschedulable"
        chosen = self._nominated_fit(state, pod, key, priority)
        if chosen is not None:
            feasible, statuses = [chosen], {}
        else:
            feasible, statuses = self.find_nodes(state, pod, priority)
        if feasible:
            node = self.pick(state, pod, feasible)
            self.cache.assume(pod, node)
            self.cache.clear_nomination(key)
            self._states.pop(key, None)
            self.queue.done(key)
            self._spawn(self._bind(pod, node))
            return "scheduled"
        rejectors = frozenset(st.plugin for st in statuses.values() if st.plugin)
        self._failed(pod, priority, state, statuses, rejectors or frozenset(p.name for p in self._filters))
        return "unschedulable"

    def _failed(self, pod: Obj, priority: int, state: CycleState, statuses: dict[str, Status],
                rejectors: frozenset[str], pre_filter_msg: str = "") -> None:
        """PostFilter (preemption), then the pod waits as unschedulable."""
        key = pod_key(pod)
        nominated = ""
        post = ""
        cand: preemption.Candidate | None = None
        if self.preemption:
            was = self.cache.nominated_node(key) or (pod.get("status") or {}).get("nominatedNodeName") or ""
            reason = preemption.eligible(pod, priority, self.cache.nodes.get(was), self.priority_of)
            if reason:
                post = "preemption: " + reason
                if "terminating" in reason:
                    nominated = was
                    self.cache.nominate(pod, was, priority)
            else:
                pdbs = self.pdbs.list() if self.pdbs is not None else []
                cand, post = preemption.find_victims(
                    pod, priority, state, self.cache.nodes, statuses,
                    self._preemption_fits, self.priority_of, self.cache._account, pdbs,
                    lambda ni: self.cache.view(ni, key, priority),
                )
                if cand is not None:
                    nominated = cand.node
                    self._clear_lower_nominations(cand.node, priority)
                    self.cache.nominate(pod, cand.node, priority)
                else:
                    self.cache.clear_nomination(key)
        msg = fit_message(len(self.cache.nodes), statuses.values(), post, pre_filter_msg)
        self._unschedulable(pod, state, msg, rejectors, nominated, cand)

    def _clear_lower_nominations(self, node: str, priority: int) -> None:
        """Pods of lower priority nominated to ``node`` lose the nomination (the
        preemptor takes the room); they are retried (kube-scheduler's
        ``getLowerPriorityNominatedPods``)."""
        for k, (p, prio) in list((self.cache.nominated.get(node) or {}).items()):
            if prio < priority:
                self.cache.clear_nomination(k)
                self._spawn(self._clear_nominated_node_name(p))
                qp = self.queue.items.get(k)
                if qp is not None and qp.where == "unschedulable":
                    self.queue.add(p)

    def _unschedulable(self, pod: Obj, state: CycleState | None, msg: str, rejectors: frozenset[str],
                       nominated: str = "", cand: preemption.Candidate | None = None) -> None:
        key = pod_key(pod)
        if state is not None:
            self._states[key] = (pod, state)
        self.queue.add_unschedulable(key, rejectors)
        self._spawn(self._report(pod, msg, nominated, cand))

    async def _report(self, pod: Obj, msg: str, nominated: str, cand: preemption.Candidate | None) -> None:
        if cand is not None:
            await self._evict(pod, cand)
        await self._set_unschedulable(pod, msg, nominated)
        self.event(pod, "Warning", "FailedScheduling", msg)

    async def _evict(self, pod: Obj, cand: preemption.Candidate) -> None:
        m = pod["metadata"]

        async def one(v: Obj) -> None:
            vm = v["metadata"]
            ns = vm.get("namespace", "")
            cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": f"{self.scheduler_name}: preempting to accommodate a higher priority pod",
                    "lastTransitionTime": _now()}
            try:
                await self.client.patch(PODS, vm["name"], {"status": {"conditions": [cond]}}, "strategic", ns, "status")
                await self.client.delete(PODS, vm["name"], ns, preconditions={"uid": vm.get("uid")})
            except APIError as e:
                if e.code not in (404, 409):
                    log.warning("preemption: deleting victim failed", extra={"pod": pod_key(v), "error": str(e)})
                return
            self.event(v, "Normal", "Preempted", f"Preempted by pod {m.get('uid', '')} on node {cand.node}")

        await asyncio.gather(*(one(v) for v in cand.victims))

    async def _clear_nominated_node_name(self, pod: Obj) -> None:
        m = pod["metadata"]
        if not (pod.get("status") or {}).get("nominatedNodeName"):
            cur = self.pods.get(pod_key(pod))
            if cur is None or not (cur.get("status") or {}).get("nominatedNodeName"):
                return
        try:
            await self.client.patch(PODS, m["name"], {"status": {"nominatedNodeName": None}}, "merge",
                                    m.get("namespace", ""), "status")
        except APIError as e:
            if e.code != 404:
                log.warning("cannot clear nominatedNodeName", extra={"pod": pod_key(pod), "error": str(e)})

    async def _set_unschedulable(self, pod: Obj, message: str, nominated: str) -> None:
        for c in (pod.get("status") or {}).get("conditions") or ():
            if (c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message") == message
                    and (pod.get("status") or {}).get("nominatedNodeName", "") == nominated):
                return
        cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                "lastProbeTime": None, "lastTransitionTime": _now()}
        status: dict[str, Any] = {"conditions": [cond]}
        if nominated or (pod.get("status") or {}).get("nominatedNodeName"):
            status["nominatedNodeName"] = nominated or None
        m = pod["metadata"]
        try:
            await self.client.patch(PODS, m["name"], {"status": status}, "strategic", m.get("namespace", ""), "status")
        except APIError as e:
            if e.code != 404:
                log.warning("cannot update pod status", extra={"pod": pod_key(pod), "error": str(e)})

    async def _bind(self, pod: Obj, node: str) -> None:
        m = pod["metadata"]
        key = pod_key(pod)
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": m["name"], "namespace": m.get("namespace", ""), "uid": m.get("uid")},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            await bind(self.client, m.get("namespace", ""), binding)
        except APIError as e:
            self.cache.forget(key)
            if e.code == 404:
                return
            log.info("binding failed", extra={"pod": key, "node": node, "error": str(e)})
            cur = self.pods.get(key)
            if cur is not None and self.responsible(cur):
                self.queue.add(cur)
            return
        except Exception:
            self.cache.forget(key)
            log.exception("binding failed", extra={"pod": key})
            cur = self.pods.get(key)
            if cur is not None and self.responsible(cur):
                self.queue.add(cur)
            return
        self.scheduled += 1
        self.event(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")



async def bind(client: Client, namespace: str, binding: Obj) -> None:
    """POST ``binding`` to the pod's ``binding`` subresource through ``client``."""
    api = getattr(client, "api", None)
    if api is not None:
        from cloudlet.api.binding import bind_pod

        await bind_pod(api, namespace, binding)
        return
    request = getattr(client, "request", None)
    if request is None:
        raise TypeError(f"{type(client).__name__} cannot bind pods")
    name = binding["metadata"]["name"]
    await request("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body=binding)
