"""Clients for the Kubernetes API, and the machinery controllers build on.

* :mod:`~cloudlet.client.interface` — the :class:`Client` Protocol and
  :class:`ResourceRef`; one interface, two implementations:
  :class:`~cloudlet.client.local.LocalClient` (in-process) and
  :class:`~cloudlet.client.http.HTTPClient` (any API server, via kubeconfig).
* :mod:`~cloudlet.client.informer` — list+watch caches with event handlers,
  resync, and :class:`SharedInformerFactory` to share them between
  controllers; :mod:`~cloudlet.client.cache` — the indexed cache behind them.
* :mod:`~cloudlet.client.workqueue` — the deduplicating, rate-limited queue.
* :mod:`~cloudlet.client.reconcile` — the worker runner (``Result``, ``Retry``,
  ``Permanent``).
* :mod:`~cloudlet.client.events` — the core/v1 Event recorder.
"""

from __future__ import annotations

from cloudlet.client.cache import (
    LABEL_INDEX,
    NAMESPACE_INDEX,
    NODE_INDEX,
    OWNER_INDEX,
    Cache,
    label_value,
)
from cloudlet.client.events import EventRecorder
from cloudlet.client.http import HTTPClient
from cloudlet.client.informer import CacheMutationError, Informer, SharedInformerFactory
from cloudlet.client.interface import Client, ResourceRef, object_key, ref_for, split_key
from cloudlet.client.local import LocalClient
from cloudlet.client.reconcile import Controller, Permanent, Result, Retry
from cloudlet.client.workqueue import (
    BucketRateLimiter,
    ExponentialBackoff,
    MaxOfRateLimiter,
    ShutDown,
    WorkQueue,
    default_rate_limiter,
)

__all__ = [
    "LABEL_INDEX",
    "NAMESPACE_INDEX",
    "NODE_INDEX",
    "OWNER_INDEX",
    "BucketRateLimiter",
    "Cache",
    "CacheMutationError",
    "Client",
    "Controller",
    "EventRecorder",
    "ExponentialBackoff",
    "HTTPClient",
    "Informer",
    "LocalClient",
    "MaxOfRateLimiter",
    "Permanent",
    "ResourceRef",
    "Result",
    "Retry",
    "SharedInformerFactory",
    "ShutDown",
    "WorkQueue",
    "default_rate_limiter",
    "label_value",
    "object_key",
    "ref_for",
    "split_key",
]
