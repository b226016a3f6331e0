"""``GET /metrics``: the Prometheus scrape endpoint, and the API's own measurements.

* :func:`request_labels` turns a request into kube-apiserver's metric labels
  (``verb`` as ``CleanVerb`` gives it: ``GET``/``LIST``/``WATCH``/``POST``/
  ``PUT``/``PATCH``/``APPLY``/``DELETE``/``DELETECOLLECTION``; ``scope``
  ``cluster``/``namespace``/``resource``; ``resource`` and ``subresource`` from
  the path; ``component`` ``apiserver``);
* :func:`observe` records ``apiserver_request_total`` and
  ``apiserver_request_duration_seconds`` for it (watches count in
  ``apiserver_longrunning_requests`` while open and are not timed);
* :func:`state_collector` reads the store at scrape time:
  ``apiserver_storage_objects{resource}`` and a kube-state-metrics style
  subset — ``kube_pod_status_phase``, ``kube_deployment_spec_replicas``,
  ``kube_deployment_status_replicas_available``, ``kube_node_status_condition``;
* :func:`handle_metrics` serves :func:`cloudlet.metrics.exposition`
  (authenticated like every other path, as kube-apiserver's ``/metrics``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from cloudlet import metrics
from cloudlet.metrics import GaugeMetricFamily
from cloudlet.store.store import Store

_NAMESPACED_ROOTS = ("namespaces",)


def request_labels(request: web.Request) -> tuple[str, ...] | None:
    """(verb, group, version, resource, subresource, scope, component) of a resource
    request; ``None`` for non-resource paths (discovery, health, ...)."""
    path = request.path
    if path.startswith("/api/"):
        parts = path[5:].strip("/").split("/")
        group, version, rest = "", parts[0], parts[1:]
    elif path.startswith("/apis/"):
        parts = path[6:].strip("/").split("/")
        if len(parts) < 3:
            return None
        group, version, rest = parts[0], parts[1], parts[2:]
    else:
        return None
    if not rest:
        return None
    namespaced = rest[0] == "namespaces" and len(rest) >= 3
    if namespaced:
        resource, tail = rest[2], rest[3:]
    else:
        resource, tail = rest[0], rest[1:]
    name = tail[0] if tail else ""
    sub = tail[1] if len(tail) > 1 else ""
    if name:
        scope = "resource"
    elif namespaced:
        scope = "namespace"
    else:
        scope = "cluster"
    method = request.method
    if method == "GET":
        watch = request.query.get("watch", "") in ("1", "true", "True")
        verb = "WATCH" if watch else ("GET" if name else "LIST")
    elif method == "PATCH" and request.content_type == "application/apply-patch+yaml":
        verb = "APPLY"
    elif method == "DELETE" and not name:
        verb = "DELETECOLLECTION"
    else:
        verb = method
    return (verb, group, version, resource, sub, scope, "apiserver")


def observe(labels: tuple[str, ...], code: int, seconds: float) -> None:
    metrics.API_REQUESTS.labels(*labels, str(code)).inc()
    if labels[0] != "WATCH":
        metrics.API_LATENCY.labels(*labels).observe(seconds)


def state_collector(store: Store) -> metrics.Collect:
    """Scrape-time object counts and kube-state style series from ``store``."""

    def collect() -> Iterable[Any]:
        counts = GaugeMetricFamily("apiserver_storage_objects", "Number of stored objects at the time of last check split by kind.",
                                   labels=["resource"])
        for prefix, n in sorted(store.object_counts().items()):
            group, _, plural = prefix.rpartition("/")
            counts.add_metric([f"{plural}.{group}" if group else plural], n)
        yield counts

        phases = GaugeMetricFamily("kube_pod_status_phase", "The pods current phase.", labels=["namespace", "pod", "uid", "phase"])
        for pod in store.objects("/pods"):
            meta = pod["metadata"]
            current = (pod.get("status") or {}).get("phase") or "Pending"
            for phase in ("Pending", "Succeeded", "Failed", "Unknown", "Running"):
                phases.add_metric([meta.get("namespace", ""), meta["name"], meta.get("uid", ""), phase], 1.0 if phase == current else 0.0)
        yield phases

        spec = GaugeMetricFamily("kube_deployment_spec_replicas", "Number of desired pods for a deployment.", labels=["namespace", "deployment"])
        avail = GaugeMetricFamily("kube_deployment_status_replicas_available", "The number of available replicas per deployment.",
                                  labels=["namespace", "deployment"])
        for d in store.objects("apps/deployments"):
            key = [d["metadata"].get("namespace", ""), d["metadata"]["name"]]
            spec.add_metric(key, float((d.get("spec") or {}).get("replicas", 1) or 0))
            avail.add_metric(key, float((d.get("status") or {}).get("availableReplicas", 0) or 0))
        yield spec
        yield avail

        cond = GaugeMetricFamily("kube_node_status_condition", "The condition of a cluster node.", labels=["node", "condition", "status"])
        for node in store.objects("/nodes"):
            for c in (node.get("status") or {}).get("conditions") or ():
                for status in ("true", "false", "unknown"):
                    cond.add_metric([node["metadata"]["name"], str(c.get("type", "")), status],
                                    1.0 if str(c.get("status", "")).lower() == status else 0.0)
        yield cond

    return collect


async def handle_metrics(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = content_type
    return resp
