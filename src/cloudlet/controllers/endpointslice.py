"""The EndpointSlice controllers: Services -> ``discovery.k8s.io/v1`` EndpointSlices.

Two reconcilers in one module, both keyed by Service ``namespace/name``:

* **endpointslice-controller.k8s.io** (a Service with a selector): every
  selected pod with an IP that is not terminal becomes an endpoint with
  ``conditions`` ``ready`` (Ready and not terminating), ``serving`` (Ready, even
  while terminating) and ``terminating`` (``deletionTimestamp`` set); with
  ``publishNotReadyAddresses`` every such endpoint is ready and serving. Each
  endpoint carries ``nodeName``, ``zone`` (the node's
  ``topology.kubernetes.io/zone`` label), ``targetRef`` and ``hostname``.
  Endpoints are grouped by address type and resolved port set, sorted, and cut
  into slices of at most ``max_endpoints`` (100, kube's
  ``--max-endpoints-per-slice`` default).
* **endpointslicemirroring-controller.k8s.io** (a Service without a selector):
  the user's ``v1/Endpoints`` of the same name are mirrored — ``addresses`` as
  ready endpoints, ``notReadyAddresses`` as not ready — unless the Endpoints
  carry ``endpointslice.kubernetes.io/skip-mirror: "true"``.

Slices are named ``<service>-<random>`` (``generateName``), labelled
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``
(plus the Service's labels and ``service.kubernetes.io/headless``), owned by
the Service (controller reference, so the garbage collector removes them with
it). Existing slices are reused in name order and written only when their
content changes; surplus slices are deleted.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.cache import SERVICE_INDEX, index_by_service
from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef, split_key
from cloudlet.client.reconcile import FactoryController, Result
from cloudlet.controllers.endpoints import (
    ENDPOINTS,
    HEADLESS_LABEL,
    PODS,
    SERVICES,
    TRIGGER_TIME,
    endpoint_port,
    find_port,
    is_headless,
    now_rfc3339,
    pod_hostname,
    pod_in_endpoints,
    pod_ip,
    pod_ready,
    selects,
    service_selector,
    target_ref,
    watch_pods_for_services,
)

ENDPOINT_SLICES = ResourceRef("discovery.k8s.io", "v1", "endpointslices")
NODES = ResourceRef("", "v1", "nodes")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MIRRORING_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS = 100
EXPECTATION_TIMEOUT = 5.0  # seconds to wait for the informer to show our own writes


def address_type(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "FQDN"


def _port_key(p: Obj) -> tuple[str, int, str]:
    return (str(p.get("name", "")), int(p.get("port", 0)), str(p.get("protocol", "")))


Group = tuple[str, tuple[tuple[str, int, str], ...]]  # (addressType, port keys)


def _add(groups: dict[Group, tuple[list[Obj], list[Obj]]], ip: str, ports: list[Obj], endpoint: Obj) -> None:
    key = (address_type(ip), tuple(sorted(_port_key(p) for p in ports)))
    entry = groups.setdefault(key, (sorted(ports, key=_port_key), []))
    entry[1].append(endpoint)


class EndpointSliceController(FactoryController):
    """Keeps EndpointSlices for Services (selector) and mirrors selector-less
    Services' Endpoints; ``await run()`` until cancelled."""

    def __init__(
        self,
        client: Client,
        factory: SharedInformerFactory | None = None,
        *,
        workers: int = 5,
        max_endpoints: int = MAX_ENDPOINTS,
    ) -> None:
        super().__init__(client, factory, "endpointslice", workers=workers)
        self.max_endpoints = max_endpoints
        self.services = self.factory.informer(SERVICES)
        self.pods = self.factory.informer(PODS)
        self.endpoints = self.factory.informer(ENDPOINTS)
        self.slices = self.factory.informer(ENDPOINT_SLICES)
        self.nodes = self.factory.informer(NODES)
        self.slices.add_indexer(SERVICE_INDEX)
        self.controller.watch(self.services)
        self.controller.watch(self.endpoints)  # mirroring
        self.controller.watch(self.slices, key=self._slice_service_key)
        watch_pods_for_services(self.controller, self.pods, self.services)
        self.controller._source(self.nodes)
        # slices this controller wrote that its informer has not shown yet (key -> names,
        # created or deleted, and when): reconciling before the cache caught up would
        # create duplicates (generateName) — kube's endpointSliceTracker.
        self._expect: dict[str, tuple[set[str], set[str], float]] = {}

    @staticmethod
    def _slice_service_key(obj: Obj) -> str | None:
        keys = index_by_service(obj)
        return keys[0] if keys else None

    # --- desired state ---------------------------------------------------------------------

    def _zone(self, node_name: str) -> str:
        node = self.nodes.get(node_name) if node_name else None
        return str(((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL, "")) if node else ""

    def _from_pods(self, svc: Obj, selector: dict[str, str]) -> dict[Group, tuple[list[Obj], list[Obj]]]:
        ns = svc["metadata"].get("namespace", "")
        spec = svc.get("spec") or {}
        publish = bool(spec.get("publishNotReadyAddresses"))
        svc_ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
        groups: dict[Group, tuple[list[Obj], list[Obj]]] = {}
        for pod in self.pods.list(ns):
            if not selects(selector, pod) or not pod_in_endpoints(pod, True):
                continue
            ports = []
            for sp in svc_ports:
                number = find_port(pod, sp)
                if number is not None:
                    ports.append(endpoint_port(sp, number))
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            serving = publish or pod_ready(pod)
            ip = pod_ip(pod)
            endpoint: Obj = {"addresses": [ip], "conditions": {
                "ready": publish or (serving and not terminating), "serving": serving, "terminating": terminating}}
            hostname = pod_hostname(pod, svc)
            if hostname:
                endpoint["hostname"] = hostname
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                endpoint["nodeName"] = node
                zone = self._zone(node)
                if zone:
                    endpoint["zone"] = zone
            endpoint["targetRef"] = target_ref(pod)
            _add(groups, ip, ports, endpoint)
        return groups

    def _from_endpoints(self, ep: Obj) -> dict[Group, tuple[list[Obj], list[Obj]]]:
        groups: dict[Group, tuple[list[Obj], list[Obj]]] = {}
        for subset in ep.get("subsets") or ():
            ports = [{k: v for k, v in p.items() if k in ("name", "port", "protocol", "appProtocol")}
                     for p in subset.get("ports") or () if isinstance(p, dict)]
            for field_, ready in (("addresses", True), ("notReadyAddresses", False)):
                for a in subset.get(field_) or ():
                    ip = str(a.get("ip", ""))
                    endpoint: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
                    for k in ("hostname", "nodeName", "targetRef"):
                        if a.get(k):
                            endpoint[k] = a[k]
                    _add(groups, ip, ports, endpoint)
        return groups

    def _desired(self, svc: Obj, groups: dict[Group, tuple[list[Obj], list[Obj]]], manager: str) -> list[Obj]:
        meta = svc["metadata"]
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
        labels[SERVICE_NAME_LABEL] = meta["name"]
        labels[MANAGED_BY_LABEL] = manager
        if is_headless(svc):
            labels[HEADLESS_LABEL] = ""
        out = []
        for (atype, _key), (ports, endpoints) in sorted(groups.items()):
            endpoints.sort(key=lambda e: e["addresses"][0])
            for i in range(0, max(1, len(endpoints)), self.max_endpoints):
                chunk = endpoints[i:i + self.max_endpoints]
                out.append({"addressType": atype, "endpoints": chunk, "ports": ports, "labels": labels})
        if not out:  # kube keeps one empty slice per Service ("placeholder")
            out.append({"addressType": "IPv4", "endpoints": [], "ports": [], "labels": labels})
        return out

    # --- reconcile -------------------------------------------------------------------------

    def _cache_is_stale(self, key: str) -> bool:
        pending = self._expect.get(key)
        if pending is None:
            return False
        created, deleted, since = pending
        names = {s["metadata"]["name"] for s in self.slices.by_index(SERVICE_INDEX, key)}
        if (created <= names and not (deleted & names)) or time.monotonic() - since > EXPECTATION_TIMEOUT:
            del self._expect[key]
            return False
        return True

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        if self._cache_is_stale(key):
            return Result(requeue_after=0.05)  # the informer event for our own write re-queues it too
        svc = self.services.get(key)
        existing = sorted(self.slices.by_index(SERVICE_INDEX, key), key=lambda s: s["metadata"]["name"])
        if svc is None or svc["metadata"].get("deletionTimestamp"):
            return None  # the garbage collector removes owned slices
        selector = service_selector(svc)
        if selector is not None:
            manager, groups = CONTROLLER_NAME, self._from_pods(svc, selector)
        else:
            ep = self.endpoints.get(key)
            mirror = ep is not None and ((ep["metadata"].get("labels") or {}).get(SKIP_MIRROR) != "true")
            manager, groups = MIRRORING_NAME, (self._from_endpoints(ep) if mirror and ep is not None else {})
            if not mirror:
                groups = {}
        mine = [s for s in existing if (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == manager]
        stale = [s for s in existing if s not in mine and
                 (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) in (CONTROLLER_NAME, MIRRORING_NAME)]
        desired = self._desired(svc, groups, manager)
        if selector is None and not groups:
            desired = []  # mirroring writes nothing without Endpoints
        created: set[str] = set()
        deleted: set[str] = set()
        try:
            for s in stale:
                await self._delete(s)
                deleted.add(s["metadata"]["name"])
            for i, want in enumerate(desired):
                if i < len(mine):
                    await self._update(mine[i], want)
                else:
                    created.add(await self._create(svc, want))
            for s in mine[len(desired):]:
                await self._delete(s)
                deleted.add(s["metadata"]["name"])
        except APIError as e:
            if e.code in (404, 409):
                return Result(requeue=True)
            raise
        finally:
            if created or deleted:
                self._expect[key] = (created, deleted, time.monotonic())
        return None

    async def _create(self, svc: Obj, want: dict[str, Any]) -> str:
        meta = svc["metadata"]
        body: Obj = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "generateName": f"{meta['name'][:57]}-", "namespace": meta.get("namespace", ""),
                "labels": want["labels"], "annotations": {TRIGGER_TIME: now_rfc3339()},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta["uid"],
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "addressType": want["addressType"], "endpoints": want["endpoints"], "ports": want["ports"],
        }
        made = await self.client.create(ENDPOINT_SLICES, body, meta.get("namespace", ""))
        return str(made["metadata"]["name"])

    async def _update(self, current: Obj, want: dict[str, Any]) -> None:
        if (current.get("addressType") == want["addressType"] and (current.get("endpoints") or []) == want["endpoints"]
                and (current.get("ports") or []) == want["ports"]
                and (current["metadata"].get("labels") or {}) == want["labels"]):
            return
        if current.get("addressType") != want["addressType"]:  # immutable: replace
            await self._delete(current)
            raise APIError(409, "Conflict", "addressType changed; slice replaced")
        body = {**current, "endpoints": want["endpoints"], "ports": want["ports"]}
        body["metadata"] = {**current["metadata"], "labels": want["labels"],
                            "annotations": {**(current["metadata"].get("annotations") or {}), TRIGGER_TIME: now_rfc3339()}}
        await self.client.update(ENDPOINT_SLICES, body)

    async def _delete(self, s: Obj) -> None:
        try:
            await self.client.delete(ENDPOINT_SLICES, s["metadata"]["name"], s["metadata"].get("namespace", ""))
        except APIError as e:
            if e.code != 404:
                raise
