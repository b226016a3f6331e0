"""The Endpoints controller: a Service's selector and its pods' readiness -> ``v1/Endpoints``.

For every Service with a selector the controller keeps an Endpoints object of
the same name (kube-controller-manager's ``endpoint`` controller):

* a pod counts when it matches the selector, has an IP, is not terminal
  (``Succeeded``/``Failed``) and is not terminating — terminating and unready
  pods count too when the Service sets ``publishNotReadyAddresses``;
* a ready pod (condition ``Ready=True``, or any pod with
  ``publishNotReadyAddresses``) goes to ``addresses``, the others to
  ``notReadyAddresses``; each address carries ``nodeName``, a ``targetRef`` to the
  pod and ``hostname`` when the pod's ``spec.hostname`` and ``spec.subdomain``
  make it addressable through this (headless) Service;
* each Service port resolves per pod: a numeric ``targetPort`` as is, a named
  one to the container port of that name and protocol (pods without it are
  left out of that port); subsets are then repacked, one subset per distinct
  port set, addresses and ports sorted, as ``RepackSubsets`` does;
* labels are the Service's, plus ``service.kubernetes.io/headless`` for a
  headless Service; the ``endpoints.kubernetes.io/last-change-trigger-time``
  annotation moves when the content changes; more than 1000 addresses are
  truncated and annotated ``endpoints.kubernetes.io/over-capacity: truncated``.

Services without a selector are left alone: their Endpoints belong to the user
(and are mirrored to EndpointSlices by :mod:`cloudlet.controllers.endpointslice`).
Deleting a Service deletes its Endpoints. Writes happen only when the desired
Endpoints differ from the stored ones.

The pod and port rules here (:func:`pod_in_endpoints`, :func:`find_port`,
:func:`pod_ready`) are shared with the EndpointSlice controller.
"""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.informer import Informer, SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef, object_key, split_key
from cloudlet.client.reconcile import FactoryController, Result
from cloudlet.controllers.meta import now_rfc3339

SERVICES = ResourceRef("", "v1", "services")
PODS = ResourceRef("", "v1", "pods")
ENDPOINTS = ResourceRef("", "v1", "endpoints")

HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_ADDRESSES = 1000




def service_selector(svc: Obj) -> dict[str, str] | None:
    """The Service's selector; ``None`` (not managed) when absent or empty."""
    sel = (svc.get("spec") or {}).get("selector")
    return sel if isinstance(sel, dict) and sel else None


def selects(selector: dict[str, str], pod: Obj) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def pod_ip(pod: Obj) -> str:
    status = pod.get("status") or {}
    if status.get("podIP"):
        return str(status["podIP"])
    for entry in status.get("podIPs") or ():
        if isinstance(entry, dict) and entry.get("ip"):
            return str(entry["ip"])
    return ""


def pod_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """kube's ``ShouldPodBeInEndpoints``: not terminal, has an IP, and (unless
    ``include_terminating``) not being deleted."""
    if pod_terminal(pod) or not pod_ip(pod):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod port a Service port targets (``targetPort`` defaults to ``port``)."""
    target: Any = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def endpoint_port(svc_port: Obj, number: int) -> Obj:
    out: Obj = {"port": number, "protocol": svc_port.get("protocol") or "TCP"}
    if svc_port.get("name"):
        out["name"] = svc_port["name"]
    if svc_port.get("appProtocol"):
        out["appProtocol"] = svc_port["appProtocol"]
    return out


def target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta.get("uid", "")}


def pod_hostname(pod: Obj, svc: Obj) -> str:
    """The DNS hostname of a pod behind ``svc``: ``spec.hostname`` when
    ``spec.subdomain`` names this Service."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        return str(spec["hostname"])
    return ""


def _address(pod: Obj, svc: Obj) -> Obj:
    addr: Obj = {"ip": pod_ip(pod)}
    hostname = pod_hostname(pod, svc)
    if hostname:
        addr["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = target_ref(pod)
    return addr


def _port_key(p: Obj) -> tuple[str, int, str]:
    return (str(p.get("name", "")), int(p.get("port", 0)), str(p.get("protocol", "")))


def desired_subsets(svc: Obj, pods: list[Obj]) -> tuple[list[Obj], bool]:
    """The repacked subsets for ``svc`` and whether addresses were truncated."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
    # address -> (ready, frozenset of endpoint ports)
    groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[Obj]]] = {}
    for pod in pods:
        if not pod_in_endpoints(pod, publish):
            continue
        eps: list[Obj] = []
        for sp in ports:
            number = find_port(pod, sp)
            if number is not None:
                eps.append(endpoint_port(sp, number))
        if ports and not eps:
            continue  # no service port resolves on this pod
        key = tuple(sorted(_port_key(p) for p in eps))
        bucket = groups.setdefault(key, {"ports": eps, "ready": [], "notReady": []})
        ready = publish or pod_ready(pod)
        bucket["ready" if ready else "notReady"].append(_address(pod, svc))
    subsets: list[Obj] = []
    total = 0
    truncated = False
    for key in sorted(groups):
        bucket = groups[key]
        ready = sorted(bucket["ready"], key=lambda a: a["ip"])
        not_ready = sorted(bucket["notReady"], key=lambda a: a["ip"])
        room = MAX_ADDRESSES - total
        if len(ready) + len(not_ready) > room:
            truncated = True
            ready = ready[:room]
            not_ready = not_ready[: max(0, room - len(ready))]
        total += len(ready) + len(not_ready)
        if not ready and not not_ready:
            continue
        subset: Obj = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if bucket["ports"]:
            subset["ports"] = sorted(bucket["ports"], key=_port_key)
        subsets.append(subset)
    return subsets, truncated


class EndpointsController(FactoryController):
    """Keeps ``v1/Endpoints`` in step with Services and pods; ``await run()``."""

    def __init__(self, client: Client, factory: SharedInformerFactory | None = None, *, workers: int = 5) -> None:
        super().__init__(client, factory, "endpoints", workers=workers)
        self.services = self.factory.informer(SERVICES)
        self.pods = self.factory.informer(PODS)
        self.endpoints = self.factory.informer(ENDPOINTS)
        self.controller.watch(self.services)
        self.controller.watch(self.endpoints)  # drift or deletion by someone else
        watch_pods_for_services(self.controller, self.pods, self.services)

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        svc = self.services.get(key)
        if svc is None or svc["metadata"].get("deletionTimestamp"):
            current = self.endpoints.get(key)
            if svc is None and current is not None and service_selector_was_managed(current):
                try:
                    await self.client.delete(ENDPOINTS, name, namespace)
                except APIError as e:
                    if e.code != 404:
                        raise
            return None
        selector = service_selector(svc)
        if selector is None:
            return None  # the user's Endpoints
        pods = [p for p in self.pods.list(namespace) if selects(selector, p)]
        subsets, truncated = desired_subsets(svc, pods)
        labels = dict(svc["metadata"].get("labels") or {})
        if is_headless(svc):
            labels[HEADLESS_LABEL] = ""
        current = self.endpoints.get(key)
        if current is not None and (current.get("subsets") or []) == subsets and \
                (current["metadata"].get("labels") or {}) == labels and \
                ((current["metadata"].get("annotations") or {}).get(OVER_CAPACITY) == "truncated") == truncated:
            return None
        annotations = dict((current or {}).get("metadata", {}).get("annotations") or {})
        annotations[TRIGGER_TIME] = now_rfc3339()
        if truncated:
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
                     "subsets": subsets}
        try:
            if current is None:
                await self.client.create(ENDPOINTS, body, namespace)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                await self.client.update(ENDPOINTS, body)
        except APIError as e:
            if e.code in (404, 409):  # raced with another writer or the namespace; retry from fresh state
                return Result(requeue=True)
            raise
        return None


def service_selector_was_managed(endpoints: Obj) -> bool:
    """Endpoints this controller wrote carry the trigger-time annotation."""
    return TRIGGER_TIME in ((endpoints.get("metadata") or {}).get("annotations") or {})


def watch_pods_for_services(controller: Any, pods: Informer, services: Informer) -> None:
    """Enqueue every Service (key ``ns/name``) whose selector matched a pod
    before or after a change (kube's ``getPodServiceMemberships``)."""
    controller._source(pods)
    controller._source(services)

    def keys(pod: Obj) -> set[str]:
        ns = pod["metadata"].get("namespace", "")
        out = set()
        for svc in services.list(ns):
            sel = service_selector(svc)
            if sel is not None and selects(sel, pod):
                out.add(object_key(svc))
        return out

    def on_add(pod: Obj) -> None:
        for k in keys(pod):
            controller.enqueue(k)

    def on_update(old: Obj, new: Obj) -> None:
        for k in keys(old) | keys(new):
            controller.enqueue(k)

    pods.add_handler(on_add, on_update, on_add)
