"""Node lifecycle: lease-based health, NoExecute taints, and eviction of pods.

:class:`NodeLifecycleController` is Kubernetes' node lifecycle controller and
its NoExecute taint manager in one reconciler keyed by node name:

* **Health.** A node's kubelet (or hollow node) renews its Lease
  ``kube-node-lease/<node>``. The controller notes, on its own clock, when it
  last *saw* ``renewTime`` change (as Kubernetes' probe timestamps do, so
  clock skew does not matter). When that is older than ``grace_period``
  (40 s, ``--node-monitor-grace-period``), every node condition becomes
  ``Unknown`` — ``Ready`` with reason ``NodeStatusUnknown`` and message
  ``Kubelet stopped posting node status.`` — and the Ready condition of each
  pod on the node turns ``False``. A node that has no Lease (registered by
  hand, or by a component that does not heartbeat) is not judged: nothing
  would ever renew it. After a controller restart every lease gets a fresh
  grace period.
* **Taints.** ``Ready=Unknown`` ⇒ ``node.kubernetes.io/unreachable:NoExecute``;
  ``Ready=False`` ⇒ ``node.kubernetes.io/not-ready:NoExecute``; ``Ready=True``
  ⇒ neither (the kubelet posting Ready again after its lease resumes removes
  them). Taints carry ``timeAdded``; other taints are left untouched; writes
  are compare-and-swap updates (a lost race is retried).
* **Eviction.** For every ``NoExecute`` taint on a node (these two and any a
  user adds), each pod on the node that does not tolerate it is deleted
  (gracefully, uid precondition) at once; a pod whose matching tolerations
  all carry ``tolerationSeconds`` is deleted that many seconds (the smallest)
  after the taint's ``timeAdded``; a toleration without ``tolerationSeconds``
  keeps the pod forever. Each eviction records a ``TaintManagerEviction``
  event on the pod. Pods already terminating or finished are skipped.

The reconcile is level-triggered and idempotent: it re-reads node, lease and
pods from informer caches, writes only differences and asks to be requeued
at the next moment something is due (lease expiry, an eviction).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable

from cloudlet.api.errors import APIError
from cloudlet.client.events import NORMAL, EventRecorder
from cloudlet.client.informer import NODE_INDEX, Informer, SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef
from cloudlet.client.reconcile import Controller, Result, Retry
from cloudlet.controllers.meta import parse_time, rfc3339

NODES = ResourceRef("", "v1", "nodes")
PODS = ResourceRef("", "v1", "pods")
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases")
LEASE_NAMESPACE = "kube-node-lease"

TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
NO_EXECUTE = "NoExecute"
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."






def condition(obj: Obj, type_: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == type_:
            return c
    return None


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """``v1.Toleration.ToleratesTaint``: effect (empty matches all), key (empty
    with ``Exists`` matches all), then ``Equal`` (the default) compares values."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def toleration_deadline(pod: Obj, taint: Obj) -> float | None:
    """Seconds ``pod`` may stay once ``taint`` is added: 0 = not tolerated,
    ``None`` = forever, else the smallest ``tolerationSeconds`` that matches."""
    matching = [t for t in (pod.get("spec") or {}).get("tolerations") or () if tolerates(t, taint)]
    if not matching:
        return 0.0
    seconds = [t.get("tolerationSeconds") for t in matching]
    if any(s is None for s in seconds):
        return None
    return float(max(0, min(int(s) for s in seconds)))


def desired_taint_key(node: Obj) -> str | None:
    ready = condition(node, "Ready")
    status = ready.get("status") if ready else None
    if status == "Unknown":
        return TAINT_UNREACHABLE
    if status == "False":
        return TAINT_NOT_READY
    return None


class NodeLifecycleController:
    """See the module docstring. ``clock`` (wall seconds) is injectable for tests."""

    def __init__(
        self,
        client: Client,
        *,
        grace_period: float = 40.0,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.grace_period = grace_period
        self.clock = clock
        self.factory = SharedInformerFactory(client)
        self.nodes: Informer = self.factory.informer(NODES)
        self.leases: Informer = self.factory.informer(LEASES, LEASE_NAMESPACE)
        self.pods: Informer = self.factory.informer(PODS, "")
        self.pods.add_indexer(NODE_INDEX)
        self.recorder = EventRecorder(client, "node-controller")
        self.controller: Controller[str] = Controller("node-lifecycle", self.reconcile, workers=workers)
        self.controller.watch(self.nodes)
        self.leases.add_handler(on_add=self._lease_seen, on_update=lambda _o, n: self._lease_seen(n),
                                on_delete=lambda o: self._observed.pop(o["metadata"]["name"], None))
        self.pods.add_handler(on_add=self._pod_seen, on_update=lambda _o, n: self._pod_seen(n))
        self._observed: dict[str, tuple[str, float]] = {}  # node -> (renewTime, when we saw it change)
        self.evictions = 0

    async def run(self) -> None:
        self.factory.start()
        try:
            await self.controller.run()
        finally:
            with contextlib.suppress(Exception):
                await self.factory.shutdown()

    # --- event handlers (enqueue only) ---------------------------------------------

    def _lease_seen(self, lease: Obj) -> None:
        name = lease["metadata"]["name"]
        renew = str((lease.get("spec") or {}).get("renewTime") or "")
        prev = self._observed.get(name)
        if prev is None or prev[0] != renew:
            self._observed[name] = (renew, self.clock())
            if prev is None:
                self.controller.enqueue(name)  # start judging this node

    def _pod_seen(self, pod: Obj) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return
        node = self.nodes.get(node_name)
        if node is not None and any(t.get("effect") == NO_EXECUTE for t in (node.get("spec") or {}).get("taints") or ()):
            self.controller.enqueue(node_name)

    # --- reconcile --------------------------------------------------------------------

    async def reconcile(self, name: str) -> Result | None:
        node = self.nodes.get(name)
        if node is None:
            self._observed.pop(name, None)
            return None
        now = self.clock()
        due: list[float] = []
        observed = self._observed.get(name)
        if observed is not None:
            expires = observed[1] + self.grace_period
            if now >= expires:
                if await self._mark_unknown(node, now):
                    return None  # the node update brings us back
            else:
                due.append(expires - now)
        if await self._sync_taints(node, now):
            return None
        due += await self._evict(node, now)
        return Result(requeue_after=max(0.01, min(due))) if due else None

    async def _mark_unknown(self, node: Obj, now: float) -> bool:
        """Conditions to Unknown (and the node's pods NotReady); True if it wrote."""
        conds = (node.get("status") or {}).get("conditions") or ()
        ready = condition(node, "Ready")
        if ready is not None and ready.get("status") == "Unknown":
            return False
        stamp = rfc3339(now)
        new: list[Obj] = []
        for c in conds:
            c = dict(c)
            if c.get("status") != "Unknown":
                c.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE, lastTransitionTime=stamp)
            new.append(c)
        if ready is None:
            new.append({"type": "Ready", "status": "Unknown", "reason": UNKNOWN_REASON, "message": UNKNOWN_MESSAGE,
                        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp})
        name = node["metadata"]["name"]
        await self.client.patch(NODES, name, {"status": {"conditions": new}}, "merge", subresource="status")
        await self._mark_pods_not_ready(name, stamp)
        return True

    async def _mark_pods_not_ready(self, node_name: str, stamp: str) -> None:
        for pod in self.pods.by_index(NODE_INDEX, node_name):
            ready = condition(pod, "Ready")
            if ready is None or ready.get("status") != "True":
                continue
            conds = [dict(c, status="False", lastTransitionTime=stamp) if c.get("type") == "Ready" else c
                     for c in (pod.get("status") or {}).get("conditions") or ()]
            meta = pod["metadata"]
            with contextlib.suppress(APIError):
                await self.client.patch(PODS, meta["name"], {"status": {"conditions": conds}}, "merge",
                                        namespace=meta["namespace"], subresource="status")

    async def _sync_taints(self, node: Obj, now: float) -> bool:
        """Make the not-ready/unreachable NoExecute taints match Ready; True if it wrote."""
        want = desired_taint_key(node)
        taints = (node.get("spec") or {}).get("taints") or []
        ours = {TAINT_UNREACHABLE, TAINT_NOT_READY}
        keep = [t for t in taints if not (t.get("key") in ours and t.get("effect") == NO_EXECUTE and t.get("key") != want)]
        if want is not None and not any(t.get("key") == want and t.get("effect") == NO_EXECUTE for t in keep):
            keep.append({"key": want, "effect": NO_EXECUTE, "timeAdded": rfc3339(now)})
        if keep == taints:
            return False
        body = copy.deepcopy(node)
        body["spec"] = dict(body.get("spec") or {})
        if keep:
            body["spec"]["taints"] = keep
        else:
            body["spec"].pop("taints", None)
        try:
            await self.client.update(NODES, body)
        except APIError as e:
            if e.code == 409:
                raise Retry(f"node {node['metadata']['name']} changed meanwhile") from e
            if e.code == 404:
                return True
            raise
        return True

    async def _evict(self, node: Obj, now: float) -> list[float]:
        """Delete pods whose toleration of a NoExecute taint ran out; returns the
        delays until the next evictions are due."""
        taints = [t for t in (node.get("spec") or {}).get("taints") or () if t.get("effect") == NO_EXECUTE]
        if not taints:
            return []
        due: list[float] = []
        for pod in self.pods.by_index(NODE_INDEX, node["metadata"]["name"]):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            evict_at: float | None = None
            forever = True
            for taint in taints:
                seconds = toleration_deadline(pod, taint)
                if seconds is None:
                    continue
                forever = False
                added = parse_time(taint.get("timeAdded")) or now
                at = added + seconds
                evict_at = at if evict_at is None else min(evict_at, at)
            if forever or evict_at is None:
                continue
            if evict_at > now:
                due.append(evict_at - now)
                continue
            await self._delete(pod)
        return due

    async def _delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["name"], meta["namespace"], preconditions={"uid": meta["uid"]})
        except APIError as e:
            if e.code in (404, 409):
                return
            raise
        self.evictions += 1
        self.recorder.emit(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")
