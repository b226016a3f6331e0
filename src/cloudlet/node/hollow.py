"""Hollow nodes: fake kubelets that heartbeat and "run" pods without running anything.

:class:`HollowNodes` is one manager for any number of hollow nodes (the KWOK
idea, built in) — cloudlet's stand-in for a node agent and its scale-testing
tool. It owns no per-node tasks or watches:

* **Which nodes.** Every Node annotated ``node.cloudlet.dev/hollow: "true"``
  (:data:`~cloudlet.node.objects.HOLLOW_ANNOTATION`) is adopted as soon as the
  node informer sees it — whoever created it: :meth:`HollowNodes.add` (what
  ``cloudlet up --hollow-nodes N`` calls), ``cloudlet node add --hollow``
  through the API from another process, or a previous run of the server
  (hollow nodes survive restarts of a SQLite-backed server). Deleting the
  Node, or removing the annotation, releases it.
* **Heartbeat.** Each adopted node's Lease ``kube-node-lease/<node>``
  (``holderIdentity`` the node, ``leaseDurationSeconds`` 40, owned by the
  Node so the garbage collector removes it with the node) gets a fresh
  ``renewTime`` every ``heartbeat_interval`` (10 s) — one scheduler loop
  renewing every due lease in a batch with bounded concurrency. When the
  node's ``Ready`` condition is not ``True`` (first registration without
  status, or the node lifecycle controller marked it ``Unknown``), the
  heartbeat also posts a Ready node status, as a kubelet does on recovery.
* **Pods.** One pod informer (indexed by ``spec.nodeName``) and a work queue:
  a pod bound to an adopted node is patched to ``Running`` with every
  condition ``True``, running+ready container statuses, a fake ``podIP``
  (10.128.0.0/10) and the node's ``hostIP`` — once; a pod being deleted
  gracefully (``deletionTimestamp``) is finished by deleting it with
  ``gracePeriodSeconds=0`` (uid precondition). Succeeded/Failed pods are left
  alone.
* **Failure.** :meth:`HollowNodes.stop` halts one node: no more lease
  renewals, status posts or pod updates (its pods stay as they were, exactly
  as with a dead kubelet) until :meth:`HollowNodes.resume`. From another
  process, annotate the Node ``node.cloudlet.dev/hollow-stopped: "true"``
  (``cloudlet node stop``); removing the annotation resumes it.

All writes go through a :class:`~cloudlet.client.interface.Client`, so the
manager works in-process (``LocalClient``) or against any API over HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterable

from cloudlet.api.errors import APIError
from cloudlet.client.informer import NODE_INDEX, Informer, SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef, split_key
from cloudlet.client.reconcile import Controller, Result
from cloudlet.node.objects import (
    LEASE_NAMESPACE,
    NODE_NAME_PREFIX,
    HollowSpec,
    host_ip,
    is_hollow,
    is_node_ready,
    is_pod_running_ready,
    is_stopped,
    lease_object,
    node_object,
    node_status,
    now_micro,
    now_rfc3339,
    running_pod_status,
)

log = logging.getLogger("cloudlet.hollow")

NODES = ResourceRef("", "v1", "nodes")
PODS = ResourceRef("", "v1", "pods")
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases")

_POD_NET = ipaddress.IPv4Network("10.128.0.0/10")


def next_node_names(existing: Iterable[str], count: int, prefix: str = NODE_NAME_PREFIX) -> list[str]:
    """``count`` names ``<prefix><i>`` not in ``existing``, lowest indices first."""
    taken = set(existing)
    out: list[str] = []
    i = 0
    while len(out) < count:
        name = f"{prefix}{i}"
        if name not in taken:
            out.append(name)
        i += 1
    return out


class HollowNodes:
    """The manager of every hollow node an API server knows; see the module docstring.

    Run it with :meth:`run` (until cancelled). :meth:`add`, :meth:`stop`,
    :meth:`resume` may be called while it runs.
    """

    def __init__(
        self,
        client: Client,
        *,
        spec: HollowSpec | None = None,
        heartbeat_interval: float = 10.0,
        lease_duration: int = 40,
        workers: int = 8,
        concurrency: int = 64,
    ) -> None:
        self.client = client
        self.spec = spec or HollowSpec()
        self.heartbeat_interval = heartbeat_interval
        self.lease_duration = lease_duration
        self.concurrency = concurrency
        self.factory = SharedInformerFactory(client)
        self.nodes: Informer = self.factory.informer(NODES)
        self.pods: Informer = self.factory.informer(PODS)
        self.pods.add_indexer(NODE_INDEX)
        self.controller: Controller[str] = Controller("hollow-node-pods", self.reconcile_pod, workers=workers)
        self.controller.watch(self.pods, predicate=self._on_active_node)
        self.nodes.add_handler(on_add=self._node_seen, on_update=lambda _old, new: self._node_seen(new),
                               on_delete=self._node_gone)
        self._active: set[str] = set()
        self._stopped: set[str] = set()
        self._stopped_by_annotation: set[str] = set()
        self._renewed: dict[str, float] = {}  # node -> monotonic time of its last successful renewal
        self._wake = asyncio.Event()
        self._ip_next = 1
        self.renewals = 0
        self.batch_window = 0.02  # seconds: nodes adopted this close together share one renewal batch

    # --- public surface --------------------------------------------------------

    @property
    def active(self) -> list[str]:
        """Names of the hollow nodes heartbeating now."""
        return sorted(self._active)

    async def add(self, count: int = 1, names: Iterable[str] | None = None,
                  labels: dict[str, str] | None = None) -> list[str]:
        """Register hollow nodes (``names``, or ``count`` fresh ``hollow-node-<i>``);
        existing nodes of those names are left as they are. Returns the names."""
        if names is None:
            listed = await self.client.list(NODES)
            names = next_node_names((n["metadata"]["name"] for n in listed.get("items") or ()), count)
        out = list(names)
        sem = asyncio.Semaphore(self.concurrency)

        async def create(name: str) -> None:
            async with sem:
                try:
                    await self.client.create(NODES, node_object(name, self.spec, labels))
                except APIError as e:
                    if e.code != 409:
                        raise

        await asyncio.gather(*(create(n) for n in out))
        return out

    def stop(self, name: str) -> None:
        """Halt node ``name``: its heartbeat and pod updates stop (a dead kubelet)."""
        self._stopped.add(name)
        self._active.discard(name)
        self._renewed.pop(name, None)

    def resume(self, name: str) -> None:
        """Undo :meth:`stop`: heartbeat again at once and catch up on its pods."""
        self._stopped.discard(name)
        node = self.nodes.get(name)
        if node is not None:
            self._node_seen(node)

    async def run(self) -> None:
        """Run informers, pod workers and the heartbeat loop until cancelled; while
        running, the hollow pods' simulated usage is served as metrics.k8s.io."""
        from cloudlet.node.hollow_metrics import HollowUsage
        from cloudlet.resources import metrics as metrics_api

        usage = HollowUsage(self)
        metrics_api.add_source(usage)
        self.factory.start()
        tasks = [asyncio.create_task(self.controller.run(), name="hollow-pods"),
                 asyncio.create_task(self._heartbeat_loop(), name="hollow-heartbeat")]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            metrics_api.remove_source(usage)
            await self.factory.shutdown()

    # --- nodes -----------------------------------------------------------------

    def _node_seen(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if not is_hollow(node):
            if name in self._active:  # the annotation was removed: release the node
                self._node_gone(node)
            return
        if is_stopped(node):
            if name not in self._stopped:
                self.stop(name)
                self._stopped_by_annotation.add(name)
            return
        if name in self._stopped_by_annotation:
            self._stopped_by_annotation.discard(name)
            self._stopped.discard(name)
        if name in self._stopped or name in self._active:
            return
        self._active.add(name)
        self._wake.set()
        for key in self.pods.index_keys(NODE_INDEX, name):
            self.controller.enqueue(key)

    def _node_gone(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self._stopped_by_annotation.discard(name)
        self._active.discard(name)
        self._renewed.pop(name, None)

    async def _heartbeat_loop(self) -> None:
        await self.nodes.wait_synced()
        sem = asyncio.Semaphore(self.concurrency)

        async def renew(name: str) -> None:
            async with sem:
                if name not in self._active:
                    return
                try:
                    await self.heartbeat(name)
                    self._renewed[name] = time.monotonic()
                except APIError as e:
                    log.warning("hollow node heartbeat failed", extra={"node": name, "error": e.message})
                except Exception:
                    log.exception("hollow node heartbeat failed", extra={"node": name})

        while True:
            self._wake.clear()
            now = time.monotonic()
            due = [n for n in self._active if now - self._renewed.get(n, float("-inf")) >= self.heartbeat_interval]
            if due:
                await asyncio.gather(*(renew(n) for n in due))
            now = time.monotonic()
            nexts = [t + self.heartbeat_interval - now for n, t in self._renewed.items() if n in self._active]
            wait = max(0.05, min(nexts)) if nexts else self.heartbeat_interval
            if any(n not in self._renewed for n in self._active):
                wait = min(wait, 1.0)  # a failed first heartbeat is retried soon
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
                    await asyncio.sleep(self.batch_window)  # gather a burst of new nodes into one batch

    async def heartbeat(self, name: str) -> None:
        """Renew node ``name``'s Lease (creating it if needed) and repost a Ready
        status if the node is not Ready."""
        node = self.nodes.get(name)
        if node is None:
            return
        now = now_micro()
        try:
            await self.client.patch(
                LEASES, name,
                {"spec": {"renewTime": now, "holderIdentity": name, "leaseDurationSeconds": self.lease_duration}},
                "merge", namespace=LEASE_NAMESPACE,
            )
        except APIError as e:
            if e.code != 404:
                raise
            lease = lease_object(name, self.lease_duration)
            lease["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                                     "uid": node["metadata"]["uid"]}]
            await self.client.create(LEASES, lease)
        self.renewals += 1
        if not is_node_ready(node):
            await self._post_ready(node)

    async def _post_ready(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        old = node.get("status") or {}
        fresh = node_status(name, self.spec, now_rfc3339())
        status: Obj = {"conditions": fresh["conditions"]}
        for f in ("capacity", "allocatable", "addresses", "nodeInfo"):
            if not old.get(f):
                status[f] = fresh[f]
        await self.client.patch(NODES, name, {"status": status}, "merge", subresource="status")

    # --- pods ------------------------------------------------------------------

    def _on_active_node(self, pod: Obj) -> bool:
        return ((pod.get("spec") or {}).get("nodeName") or "") in self._active

    def _pod_ip(self) -> str:
        ip = _POD_NET.network_address + self._ip_next
        self._ip_next = self._ip_next % (_POD_NET.num_addresses - 2) + 1
        return str(ip)

    def _host_ip(self, node_name: str) -> str:
        node = self.nodes.get(node_name)
        for a in ((node or {}).get("status") or {}).get("addresses") or ():
            if a.get("type") == "InternalIP":
                return str(a.get("address"))
        return host_ip(node_name)

    async def reconcile_pod(self, key: str) -> Result | None:
        pod = self.pods.get(key)
        if pod is None:
            return None
        namespace, name = split_key(key)
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        if node_name not in self._active:
            return None
        meta = pod["metadata"]
        try:
            if meta.get("deletionTimestamp"):
                await self.client.delete(PODS, name, namespace, grace_period_seconds=0,
                                         preconditions={"uid": meta["uid"]})
                return None
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") or is_pod_running_ready(pod):
                return None
            pod_ip = (pod.get("status") or {}).get("podIP") or self._pod_ip()
            status = running_pod_status(pod, self._host_ip(node_name), pod_ip)
            await self.client.patch(PODS, name, {"status": status}, "merge", namespace=namespace, subresource="status")
        except APIError as e:
            if e.code in (404, 409):  # gone, or replaced by a namesake meanwhile
                return None
            raise
        return None
