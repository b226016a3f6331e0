"""Simulated resource usage of hollow nodes, served as metrics.k8s.io.

Hollow nodes run nothing, so their pods' usage is declared: each container of
a Running pod on an active hollow node uses what the pod's annotations say —
``hollow.cloudlet.dev/cpu-usage`` (a cpu quantity, default ``1m``) and
``hollow.cloudlet.dev/memory-usage`` (default ``1Mi``) — and a node uses the
sum of its pods. ``kubectl annotate pods -l app=web hollow.cloudlet.dev/cpu-usage=400m``
therefore drives ``kubectl top`` and HorizontalPodAutoscalers on a hollow
cluster (KWOK's simulated metrics, built in). Stopped nodes report nothing,
like a dead kubelet.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cloudlet.resources.metrics import ContainerUsage, NodeUsage, PodUsage
from cloudlet.resources.quantity import parse_quantity

if TYPE_CHECKING:
    from cloudlet.node.hollow import HollowNodes

CPU_ANNOTATION = "hollow.cloudlet.dev/cpu-usage"
MEMORY_ANNOTATION = "hollow.cloudlet.dev/memory-usage"


def _quantity(annotations: dict[str, str], key: str, default: str) -> float:
    try:
        return float(parse_quantity(annotations.get(key, default)))
    except (ValueError, ArithmeticError):
        return float(parse_quantity(default))


class HollowUsage:
    """A :class:`~cloudlet.resources.metrics.MetricsSource` over one :class:`HollowNodes`."""

    def __init__(self, hollow: HollowNodes) -> None:
        self.hollow = hollow

    def _running(self, namespace: str | None) -> list[PodUsage]:
        now = time.time()
        out = []
        active = set(self.hollow.active)
        for pod in self.hollow.pods.list(namespace):
            if (pod.get("spec") or {}).get("nodeName") not in active:
                continue
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            meta = pod["metadata"]
            ann = meta.get("annotations") or {}
            cpu = int(_quantity(ann, CPU_ANNOTATION, "1m") * 1e9)
            mem = int(_quantity(ann, MEMORY_ANNOTATION, "1Mi"))
            containers = [ContainerUsage(c.get("name", ""), cpu, mem) for c in (pod.get("spec") or {}).get("containers") or ()]
            out.append(PodUsage(meta.get("namespace", ""), meta["name"], dict(meta.get("labels") or {}), containers, now))
        return out

    def pod_usage(self, namespace: str | None) -> list[PodUsage]:
        return self._running(namespace)

    def node_usage(self) -> list[NodeUsage]:
        now = time.time()
        totals: dict[str, list[int]] = {name: [0, 0] for name in self.hollow.active}
        pods = {(p.namespace, p.name): p for p in self._running(None)}
        for pod in self.hollow.pods.list():
            key = (pod["metadata"].get("namespace", ""), pod["metadata"]["name"])
            node = (pod.get("spec") or {}).get("nodeName")
            if key in pods and node in totals:
                totals[node][0] += sum(c.cpu_nanocores for c in pods[key].containers)
                totals[node][1] += sum(c.memory_bytes for c in pods[key].containers)
        out = []
        for name, (cpu, mem) in sorted(totals.items()):
            node = self.hollow.nodes.get(name) or {}
            out.append(NodeUsage(name, dict((node.get("metadata") or {}).get("labels") or {}), cpu, mem, now))
        return out
