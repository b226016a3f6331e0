"""The scheduler loop: pending pods in, bindings out.

:class:`Scheduler` watches pods, nodes, PriorityClasses and RuntimeClasses
through shared informers and places every pod with
``spec.schedulerName == "default-scheduler"`` (the default), no
``spec.nodeName`` and no ``schedulingGates``, one at a time, in :class:`SchedulingQueue` order:

1. pre-filter (per-cycle precomputation into a :class:`CycleState`);
2. filter nodes — starting where the previous cycle stopped, and stopping
   once enough feasible nodes are found on big clusters (Kubernetes'
   ``percentageOfNodesToScore`` rule: all nodes up to 100, else
   ``max(100, n * max(5, 50 - n/125) / 100)``);
3. score the feasible nodes (plugin scores normalised, then weighted and
   summed) and pick the best (ties at random);
4. *assume* the pod onto the node in the :class:`ClusterCache` and bind it
   asynchronously through the ``pods/binding`` subresource (in process via
   :func:`cloudlet.api.binding.bind_pod` over a ``LocalClient``, or
   ``POST .../binding`` over HTTP). A failed binding is forgotten and the pod
   retried with backoff.

A pod no node accepts may preempt (see :mod:`.preemption`): the chosen node
is written to ``status.nominatedNodeName`` and the victims are deleted
gracefully; the pod is retried when they go. Otherwise it gets
``PodScheduled=False``/``Unschedulable`` with Kubernetes' message and a
``FailedScheduling`` Warning event, and waits in the unschedulable set for a
cluster event one of the rejecting plugins declared.

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
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.events import EventRecorder
from cloudlet.client.informer import Informer, SharedInformerFactory
from cloudlet.client.interface import Client, ResourceRef
from cloudlet.scheduler import preemption
from cloudlet.scheduler.cache import ClusterCache
from cloudlet.scheduler.config import Profile, build_profile
from cloudlet.scheduler.filters import RUNTIME_CLASS
from cloudlet.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    POD_DELETE,
    POD_UPDATE,
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


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def num_feasible_to_find(n: int) -> int:
    if n < 100:
        return n
    pct = max(5, 50 - n // 125)
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
    ) -> None:
        self.client = client
        self.own_factory = factory is None
        self.factory = factory or SharedInformerFactory(client)
        self.profile = profile or build_profile()
        self.scheduler_name = scheduler_name
        self.preemption = preemption
        self.pods: Informer = self.factory.informer(PODS)
        self.nodes: Informer = self.factory.informer(NODES)
        self.priority_classes: Informer = self.factory.informer(PRIORITY_CLASSES)
        self.runtime_classes: Informer = self.factory.informer(RUNTIME_CLASSES)
        self.cache = ClusterCache()
        self.queue = SchedulingQueue(
            self.priority_of, initial_backoff=initial_backoff, max_backoff=max_backoff,
            plugin_events=self.profile.events_of,
        )
        self.recorder = EventRecorder(client, scheduler_name)
        self._next_start = 0
        self._binds: set[asyncio.Task[None]] = set()
        self.scheduled = 0
        self._hooked = False

    # --- priority ----------------------------------------------------------------

    def priority_of(self, pod: Obj) -> int:
        spec = pod.get("spec") or {}
        p = spec.get("priority")
        if isinstance(p, int):
            return p
        name = spec.get("priorityClassName")
        if name:
            pc = self.priority_classes.get(name)
            return int(pc.get("value") or 0) if pc else 0
        for pc in self.priority_classes.list():
            if pc.get("globalDefault"):
                return int(pc.get("value") or 0)
        return 0

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

    def _pod_add(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.cache.set_pod(pod)
            self.cache.clear_nomination(pod_key(pod))
            self.queue.delete(pod_key(pod))
        elif self.responsible(pod):
            self.queue.add(pod)

    def _pod_update(self, old: Obj, new: Obj) -> None:
        if old is new:
            return  # resync
        was_bound = bool((old.get("spec") or {}).get("nodeName"))
        self._pod_add(new)
        if was_bound:
            if _terminal(new) and not _terminal(old):  # it let go of its node's resources
                self.queue.move_on_event(POD_UPDATE)
        elif not self.responsible(new):
            self.queue.delete(pod_key(new))

    def _pod_delete(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        self.cache.clear_nomination(key)
        if key in self.cache.pods:
            self.cache.remove_pod(key)
            self.queue.move_on_event(POD_DELETE)

    def _node_add(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move_on_event(NODE_ADD)

    def _node_update(self, old: Obj, new: Obj) -> None:
        if old is new:
            return
        self.cache.set_node(new)
        self.queue.move_on_event(NODE_UPDATE)

    def _node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node["metadata"]["name"])

    def _hook(self) -> None:
        if self._hooked:
            return
        self._hooked = True
        self.nodes.add_handler(self._node_add, self._node_update, self._node_delete)
        self.pods.add_handler(self._pod_add, self._pod_update, self._pod_delete)

    # --- running -----------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled."""
        if self.own_factory:
            self.factory.start()
        try:
            await self.factory.wait_for_cache_sync()
            self._hook()
            flusher = asyncio.create_task(self._flush_loop())
            try:
                while True:
                    pod, attempt = await self.queue.pop()
                    try:
                        await self.schedule_one(pod)
                    except Exception:
                        log.exception("scheduling cycle failed", extra={"pod": pod_key(pod)})
                        self.queue.requeue_backoff(pod_key(pod))
                    await asyncio.sleep(0)  # a cycle may not suspend: let the API and bindings run
            finally:
                flusher.cancel()
        finally:
            self.queue.close()
            for t in list(self._binds):
                t.cancel()
            if self.own_factory:
                await self.factory.shutdown()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            self.queue.flush_unschedulable()

    # --- one cycle ---------------------------------------------------------------

    def _node_view(self, ni: NodeInfo, pod: Obj, priority: int) -> NodeInfo:
        """``ni`` plus pods nominated to it with at least ``priority`` (not ``pod``)."""
        nominated = self.cache.nominated.get(ni.name)
        if not nominated:
            return ni
        key = pod_key(pod)
        extra = [p for k, (p, prio) in nominated.items() if k != key and prio >= priority]
        if not extra:
            return ni
        view = NodeInfo(ni.node, dict(ni.allocatable), dict(ni.requested), dict(ni.nonzero), set(ni.ports), dict(ni.pods))
        for p in extra:
            self.cache._account(view, p, +1)
        return view

    def run_filters(self, state: CycleState, pod: Obj, ni: NodeInfo) -> Status:
        for pl in self.profile.filters:
            st: Status = pl.filter(state, pod, ni)
            if not st.ok:
                return Status(st.code, st.reasons, pl.name)
        return Status()

    def new_state(self, pod: Obj) -> CycleState:
        state = CycleState()
        rc_name = (pod.get("spec") or {}).get("runtimeClassName")
        state.write(RUNTIME_CLASS, self.runtime_classes.get(rc_name) if rc_name else None)
        for pl in self.profile.plugins:
            pre = getattr(pl, "pre_filter", None)
            if pre is not None:
                pre(state, pod)
        return state

    def find_nodes(self, state: CycleState, pod: Obj, priority: int) -> tuple[list[NodeInfo], dict[str, Status]]:
        names = list(self.cache.nodes)
        n = len(names)
        want = num_feasible_to_find(n)
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        start = self._next_start % n if n else 0
        checked = 0
        for i in range(n):
            ni = self.cache.nodes[names[(start + i) % n]]
            checked += 1
            st = self.run_filters(state, pod, self._node_view(ni, pod, priority))
            if st.ok:
                feasible.append(ni)
                if len(feasible) >= want:
                    break
            else:
                statuses[ni.name] = st
        self._next_start = start + checked
        return feasible, statuses

    def pick(self, state: CycleState, pod: Obj, feasible: list[NodeInfo]) -> str:
        if len(feasible) == 1 or not self.profile.scores:
            return feasible[0].name
        total = {ni.name: 0 for ni in feasible}
        for pl, weight in self.profile.scores:
            scores = {ni.name: int(pl.score(state, pod, ni)) for ni in feasible}
            norm = getattr(pl, "normalize", None)
            if norm is not None:
                norm(state, pod, scores)
            for k, v in scores.items():
                total[k] += v * weight
        top = max(total.values())
        return random.choice([k for k, v in total.items() if v == top])

    async def schedule_one(self, queued: Obj) -> None:
        key = pod_key(queued)
        pod = self.pods.get(key) or queued
        if not self.responsible(pod):
            self.queue.done(key)
            return
        priority = self.priority_of(pod)
        state = self.new_state(pod)
        feasible, statuses = self.find_nodes(state, pod, priority)
        if feasible:
            node = self.pick(state, pod, feasible)
            self.cache.assume(pod, node)
            self.cache.clear_nomination(key)
            self.queue.done(key)
            task = asyncio.create_task(self._bind(pod, node))
            self._binds.add(task)
            task.add_done_callback(self._binds.discard)
            return
        await self._unschedulable(pod, priority, state, statuses)

    async def _unschedulable(self, pod: Obj, priority: int, state: CycleState, statuses: dict[str, Status]) -> None:
        key = pod_key(pod)
        nominated = ""
        post = ""
        if self.preemption and self.cache.nodes:
            was = self.cache.nominated_node(key) or (pod.get("status") or {}).get("nominatedNodeName") or ""
            post = preemption.eligible(pod, priority, self.cache.nodes.get(was), self.priority_of) or ""
            if post:
                post = "preemption: " + post
                if "terminating" in post:
                    nominated = was
                    self.cache.nominate(pod, was, priority)
            else:
                cand, post = preemption.find_victims(
                    pod, priority, state,
                    {n: self._node_view(ni, pod, priority) for n, ni in self.cache.nodes.items()}, statuses,
                    lambda s, p, ni: self.run_filters(s, p, ni), self.priority_of, self.cache._account,
                )
                if cand is not None:
                    nominated = cand.node
                    self.cache.nominate(pod, cand.node, priority)
                    await self._evict(pod, cand)
        msg = fit_message(len(self.cache.nodes), statuses.values(), post)
        rejected = frozenset(st.plugin for st in statuses.values() if st.plugin)
        self.queue.add_unschedulable(key, rejected or frozenset(p.name for p in self.profile.filters))
        await self._set_unschedulable(pod, msg, nominated)
        self.recorder.emit(pod, "Warning", "FailedScheduling", msg)

    async def _evict(self, pod: Obj, cand: preemption.Candidate) -> None:
        m = pod["metadata"]
        for v in cand.victims:
            vm = v["metadata"]
            try:
                await self.client.delete(PODS, vm["name"], vm.get("namespace", ""), preconditions={"uid": vm.get("uid")})
            except APIError as e:
                if e.code not in (404, 409):
                    log.warning("preemption: deleting victim failed", extra={"pod": pod_key(v), "error": str(e)})
                continue
            self.recorder.emit(v, "Normal", "Preempted",
                               f"Preempted by pod {m.get('uid', '')} on node {cand.node}")

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
        self.recorder.emit(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")


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
