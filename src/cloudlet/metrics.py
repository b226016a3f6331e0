"""The process's Prometheus metrics: one registry, Kubernetes' metric names.

Every component records into :data:`REGISTRY` through the families defined
here, named as their Kubernetes counterparts so existing dashboards and alerts
apply: ``apiserver_request_total`` / ``apiserver_request_duration_seconds``
(verb, group, version, resource, subresource, scope, component, code),
``apiserver_longrunning_requests`` (open watches), ``workqueue_*`` (client-go),
``scheduler_schedule_attempts_total`` / ``scheduler_scheduling_attempt_duration_seconds``
/ ``scheduler_pending_pods``, ``kubelet_pod_start_duration_seconds`` and
cAdvisor's ``container_cpu_usage_seconds_total`` /
``container_memory_working_set_bytes``; the store adds
``cloudlet_store_commit_duration_seconds`` and ``cloudlet_store_commit_batch_size``.

Families whose value is read at scrape time (object counts, queue depths,
container usage) come from collectors registered with :func:`add_collector`:
a callable returning ``prometheus_client`` metric families, called on every
scrape of ``/metrics`` (:func:`exposition`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

log = logging.getLogger("cloudlet.metrics")

REGISTRY = CollectorRegistry(auto_describe=False)

_REQUEST_LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "component")
_LATENCY_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)

API_REQUESTS = Counter(
    "apiserver_request", "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.",
    [*_REQUEST_LABELS, "code"], registry=REGISTRY)
API_LATENCY = Histogram(
    "apiserver_request_duration_seconds", "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.",
    _REQUEST_LABELS, buckets=_LATENCY_BUCKETS, registry=REGISTRY)
API_LONGRUNNING = Gauge(
    "apiserver_longrunning_requests", "Gauge of all active long-running apiserver requests (watches) broken out by verb, group, version, resource, scope and component.",
    _REQUEST_LABELS, registry=REGISTRY)

STORE_COMMIT = Histogram(
    "cloudlet_store_commit_duration_seconds", "Time to commit one group-commit batch to the storage backend (fsync included).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=REGISTRY)
STORE_BATCH = Histogram(
    "cloudlet_store_commit_batch_size", "Writes per group-commit batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=REGISTRY)

WORKQUEUE_ADDS = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"], registry=REGISTRY)
WORKQUEUE_RETRIES = Counter("workqueue_retries", "Total number of retries handled by workqueue", ["name"], registry=REGISTRY)
WORKQUEUE_WORK = Histogram(
    "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.", ["name"],
    buckets=(1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10), registry=REGISTRY)

SCHEDULE_ATTEMPTS = Counter(
    "scheduler_schedule_attempts", "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
    ["result", "profile"], registry=REGISTRY)
SCHEDULING_ATTEMPT_DURATION = Histogram(
    "scheduler_scheduling_attempt_duration_seconds", "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
    ["result", "profile"], buckets=tuple(0.001 * 2 ** i for i in range(15)), registry=REGISTRY)
SCHEDULER_PENDING = Gauge(
    "scheduler_pending_pods", "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods.",
    ["queue"], registry=REGISTRY)

POD_START = Histogram(
    "kubelet_pod_start_duration_seconds", "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600),
    registry=REGISTRY)

Collect = Callable[[], Iterable[Metric]]


class _Collectors:
    """Scrape-time collectors; one failing collector never breaks the scrape."""

    def __init__(self) -> None:
        self.fns: list[Collect] = []

    def collect(self) -> Iterable[Metric]:
        for fn in list(self.fns):
            try:
                yield from fn()
            except Exception:  # a bug in one collector: log, keep the rest of the page
                log.exception("metrics collector failed", extra={"collector": getattr(fn, "__qualname__", repr(fn))})


_collectors = _Collectors()
REGISTRY.register(_collectors)  # type: ignore[arg-type]


def add_collector(fn: Collect) -> Collect:
    """Call ``fn`` on every scrape; returns ``fn`` (for :func:`remove_collector`)."""
    _collectors.fns.append(fn)
    return fn


def remove_collector(fn: Collect) -> None:
    if fn in _collectors.fns:
        _collectors.fns.remove(fn)


# --- workqueues: depth read at scrape time ---------------------------------------------------

_queues: weakref.WeakSet[Any] = weakref.WeakSet()


def track_queue(queue: Any) -> None:
    """Report ``queue`` (anything with ``name`` and ``__len__``) as ``workqueue_depth``."""
    _queues.add(queue)


def _queue_depths() -> Iterable[Metric]:
    depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=["name"])
    by_name: dict[str, int] = {}
    for q in list(_queues):
        if q.name:
            by_name[q.name] = by_name.get(q.name, 0) + len(q)
    for name, n in sorted(by_name.items()):
        depth.add_metric([name], n)
    yield depth


add_collector(_queue_depths)


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The scrape body and its content type (text format, or OpenMetrics when asked)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(REGISTRY), content_type


__all__ = [
    "API_LATENCY", "API_LONGRUNNING", "API_REQUESTS", "POD_START", "REGISTRY", "SCHEDULER_PENDING",
    "SCHEDULE_ATTEMPTS", "SCHEDULING_ATTEMPT_DURATION", "STORE_BATCH", "STORE_COMMIT", "WORKQUEUE_ADDS",
    "WORKQUEUE_RETRIES", "WORKQUEUE_WORK", "CounterMetricFamily", "GaugeMetricFamily", "add_collector",
    "exposition", "remove_collector", "track_queue",
]
