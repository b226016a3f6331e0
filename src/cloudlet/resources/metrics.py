"""metrics.k8s.io/v1beta1 PodMetrics and NodeMetrics: read-only kinds computed on request.

Nothing is stored. The API serves ``get`` and ``list`` of these kinds from the
registered :class:`MetricsSource` s — the node agent (cgroup samples of real
containers) and the hollow nodes (simulated usage) — as metrics-server does,
so ``kubectl top pods|nodes`` and HorizontalPodAutoscalers work through either
client. Objects are shaped like metrics-server's: ``timestamp``, ``window`` and
``containers[].usage`` (PodMetrics) or ``usage`` (NodeMetrics), cpu in
nanocores (``"1520634n"``) and memory in kibibytes (``"12345Ki"``).

A source returns :class:`PodUsage` / :class:`NodeUsage` values; the metadata
(labels, creationTimestamp) comes with them so label selectors work.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cloudlet.resources._util import Obj
from cloudlet.resources.registry import REGISTRY, ResourceType

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
READ_VERBS = ("get", "list")


@dataclass
class ContainerUsage:
    name: str
    cpu_nanocores: int
    memory_bytes: int


@dataclass
class PodUsage:
    namespace: str
    name: str
    labels: dict[str, str]
    containers: list[ContainerUsage]
    timestamp: float  # unix seconds of the sample
    window: float = 10.0  # seconds the cpu rate was measured over


@dataclass
class NodeUsage:
    name: str
    labels: dict[str, str]
    cpu_nanocores: int
    memory_bytes: int
    timestamp: float
    window: float = 10.0


class MetricsSource(Protocol):
    def pod_usage(self, namespace: str | None) -> list[PodUsage]: ...

    def node_usage(self) -> list[NodeUsage]: ...


@dataclass
class _Sources:
    items: list[MetricsSource] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SOURCES = _Sources()


def add_source(source: MetricsSource) -> None:
    with _SOURCES.lock:
        _SOURCES.items.append(source)


def remove_source(source: MetricsSource) -> None:
    with _SOURCES.lock:
        if source in _SOURCES.items:
            _SOURCES.items.remove(source)


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def cpu_quantity(nanocores: int) -> str:
    return f"{max(0, int(nanocores))}n"


def memory_quantity(nbytes: int) -> str:
    return f"{max(0, int(nbytes)) // 1024}Ki"


def pod_metrics_object(u: PodUsage) -> Obj:
    return {
        "kind": "PodMetrics", "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": {"name": u.name, "namespace": u.namespace, "creationTimestamp": _time(u.timestamp), "labels": dict(u.labels)},
        "timestamp": _time(u.timestamp), "window": _window(u.window),
        "containers": [{"name": c.name, "usage": {"cpu": cpu_quantity(c.cpu_nanocores), "memory": memory_quantity(c.memory_bytes)}}
                       for c in u.containers],
    }


def node_metrics_object(u: NodeUsage) -> Obj:
    return {
        "kind": "NodeMetrics", "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": {"name": u.name, "creationTimestamp": _time(u.timestamp), "labels": dict(u.labels)},
        "timestamp": _time(u.timestamp), "window": _window(u.window),
        "usage": {"cpu": cpu_quantity(u.cpu_nanocores), "memory": memory_quantity(u.memory_bytes)},
    }


def _pods(namespace: str | None) -> list[Obj]:
    with _SOURCES.lock:
        sources = list(_SOURCES.items)
    out = [pod_metrics_object(u) for s in sources for u in s.pod_usage(namespace)
           if namespace is None or u.namespace == namespace]
    return sorted(out, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


def _nodes(_namespace: str | None) -> list[Obj]:
    with _SOURCES.lock:
        sources = list(_SOURCES.items)
    return sorted((node_metrics_object(u) for s in sources for u in s.node_usage()), key=lambda o: o["metadata"]["name"])


_USAGE = {"type": "object", "description": "The memory and CPU usage.",
          "additionalProperties": {"type": "string", "x-kubernetes-int-or-string": True}}
_CONTAINERS = {"type": "array", "description": "Metrics for all containers are collected within the same time window.",
               "items": {"type": "object", "required": ["name", "usage"], "properties": {
                   "name": {"type": "string", "description": "Container name corresponding to the one from pod.spec.containers."},
                   "usage": _USAGE}}}


def _schema(kind: str, extra: dict[str, object]) -> dict[str, object]:
    """A structural OpenAPI v3 schema of one metrics kind (``kubectl explain``)."""
    what = "pod" if kind == "PodMetrics" else "node"
    return {"type": "object", "description": f"{kind} sets resource usage metrics of a {what}.",
            "required": ["timestamp", "window"], "properties": {
                "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
                "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
                "metadata": {"type": "object", "description": "Standard object's metadata."},
                "timestamp": {"type": "string", "format": "date-time",
                              "description": "The following fields define time interval from which metrics were collected."},
                "window": {"type": "string", "description": "The length of the interval the usage was measured over."},
                **extra}}


POD_METRICS = REGISTRY.add(ResourceType(
    group=GROUP, version=VERSION, kind="PodMetrics", plural="pods", singular="", namespaced=True,
    verbs=READ_VERBS, has_status=False, source=_pods,
    openapi_schema=_schema("PodMetrics", {"containers": _CONTAINERS}),
))
NODE_METRICS = REGISTRY.add(ResourceType(
    group=GROUP, version=VERSION, kind="NodeMetrics", plural="nodes", singular="", namespaced=False,
    verbs=READ_VERBS, has_status=False, source=_nodes,
    openapi_schema=_schema("NodeMetrics", {"usage": _USAGE}),
))
