"""Resource usage of the node's real containers (the cAdvisor / kubelet summary role).

:class:`StatsSampler` asks the runtime for every running container's
:class:`~cloudlet.runtime.interface.ContainerStats` each ``interval`` seconds
(10 s, metrics-server's resolution) and keeps the last two samples, so that

* cpu is a rate — cumulative cpu time over the window between the two samples,
  in nanocores — and memory the working set, as metrics-server reports them;
* it is a :class:`~cloudlet.resources.metrics.MetricsSource`: PodMetrics per
  running pod, NodeMetrics for this node (the sum of its pods plus the host's
  own usage from ``/proc/stat`` and ``/proc/meminfo``), so ``kubectl top`` and
  HorizontalPodAutoscalers see real numbers;
* it feeds Prometheus with cAdvisor's names: ``container_cpu_usage_seconds_total``
  and ``container_memory_working_set_bytes`` (labels ``namespace``, ``pod``,
  ``container``).

The sampler only reads; containers that vanish between samples are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudlet import metrics
from cloudlet.resources import metrics as metrics_api
from cloudlet.resources.metrics import ContainerUsage, NodeUsage, PodUsage

if TYPE_CHECKING:
    from cloudlet.node.agent import NodeAgent

log = logging.getLogger("cloudlet.node.stats")


@dataclass
class _Point:
    at: float
    cpu_ns: int
    working_set: int


@dataclass
class _Series:
    namespace: str
    pod: str
    container: str
    labels: dict[str, str]
    last: _Point
    prev: _Point | None = None

    def cpu_nanocores(self) -> tuple[int, float]:
        if self.prev is None or self.last.at <= self.prev.at:
            return 0, 0.0
        window = self.last.at - self.prev.at
        return int(max(0, self.last.cpu_ns - self.prev.cpu_ns) / window), window


def _host_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(int(x) for i, x in enumerate(fields[:8]) if i not in (3, 4))  # minus idle, iowait
    return int(busy * 1e9 / ticks)


def _host_memory() -> int:
    info: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            info[k] = int(v.split()[0]) * 1024
    return info.get("MemTotal", 0) - info.get("MemAvailable", 0)


class StatsSampler:
    """Samples the agent's running containers; see the module docstring."""

    def __init__(self, agent: NodeAgent, interval: float = 10.0) -> None:
        self.agent = agent
        self.interval = interval
        self.series: dict[tuple[str, str, str], _Series] = {}
        self.node_prev: _Point | None = None
        self.node_last: _Point | None = None
        self._collector = metrics.add_collector(self._prometheus)

    async def sample(self) -> None:
        seen: set[tuple[str, str, str]] = set()
        for worker in list(self.agent.workers.values()):
            runtime = worker.runtime
            if runtime is None:
                continue
            labels = dict((worker.pod.get("metadata") or {}).get("labels") or {})
            for rec in list(worker.apps.values()):
                if not rec.running or rec.handle is None:
                    continue
                try:
                    st = await runtime.container_stats(rec.handle)
                except Exception:  # gone between listing and sampling
                    continue
                key = (worker.namespace, worker.name, rec.name)
                seen.add(key)
                point = _Point(st.timestamp or time.time(), int(st.cpu_usage_ns), int(st.memory_working_set_bytes))
                old = self.series.get(key)
                if old is None:
                    self.series[key] = _Series(worker.namespace, worker.name, rec.name, labels, point)
                else:
                    old.prev, old.last, old.labels = old.last, point, labels
        for key in [k for k in self.series if k not in seen]:
            del self.series[key]
        with contextlib.suppress(OSError, ValueError):
            cpu, mem = await asyncio.to_thread(lambda: (_host_cpu_ns(), _host_memory()))
            self.node_prev, self.node_last = self.node_last, _Point(time.time(), cpu, mem)

    async def run(self) -> None:
        metrics_api.add_source(self)
        try:
            while True:
                try:
                    await self.sample()
                except Exception:  # never let sampling take the agent down
                    log.exception("stats sampling failed")
                await asyncio.sleep(self.interval)
        finally:
            metrics_api.remove_source(self)
            metrics.remove_collector(self._collector)

    # --- metrics.k8s.io ------------------------------------------------------------------

    def pod_usage(self, namespace: str | None) -> list[PodUsage]:
        pods: dict[tuple[str, str], PodUsage] = {}
        for s in self.series.values():
            if namespace is not None and s.namespace != namespace:
                continue
            cpu, window = s.cpu_nanocores()
            if not window:
                continue  # one sample is not a rate yet (metrics-server also waits)
            pu = pods.setdefault((s.namespace, s.pod), PodUsage(s.namespace, s.pod, s.labels, [], s.last.at, window))
            pu.containers.append(ContainerUsage(s.container, cpu, s.last.working_set))
        return list(pods.values())

    def node_usage(self) -> list[NodeUsage]:
        if self.node_prev is None or self.node_last is None or self.node_last.at <= self.node_prev.at:
            return []
        window = self.node_last.at - self.node_prev.at
        cpu = int(max(0, self.node_last.cpu_ns - self.node_prev.cpu_ns) / window)
        node = None
        reg = self.agent.registration
        if reg is not None:
            node = getattr(reg, "node", None)
        labels = dict(((node or {}).get("metadata") or {}).get("labels") or {})
        return [NodeUsage(self.agent.node_name, labels, cpu, self.node_last.working_set, self.node_last.at, window)]

    # --- Prometheus ----------------------------------------------------------------------

    def _prometheus(self) -> Iterable[Any]:
        cpu = metrics.CounterMetricFamily("container_cpu_usage_seconds", "Cumulative cpu time consumed in seconds.",
                                          labels=["namespace", "pod", "container"])
        mem = metrics.GaugeMetricFamily("container_memory_working_set_bytes", "Current working set in bytes.",
                                        labels=["namespace", "pod", "container"])
        for s in self.series.values():
            cpu.add_metric([s.namespace, s.pod, s.container], s.last.cpu_ns / 1e9)
            mem.add_metric([s.namespace, s.pod, s.container], float(s.last.working_set))
        yield cpu
        yield mem
