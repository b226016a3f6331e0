"""Clients for the Kubernetes API, and the machinery controllers build on.

* :mod:`~cloudlet.client.interface` — the :class:`Client` Protocol and
  :class:`ResourceRef`; one interface, two implementations:
  :class:`~cloudlet.client.local.LocalClient` (in-process) and
  :class:`~cloudlet.client.http.HTTPClient` (any API server, via kubeconfig).
* :mod:`~cloudlet.client.informer` — list+watch caches with event handlers.
* :mod:`~cloudlet.client.workqueue` — the deduplicating, rate-limited queue.
* :mod:`~cloudlet.client.reconcile` — the worker runner (``Result``, ``Retry``,
  ``Permanent``).
* :mod:`~cloudlet.client.events` — the core/v1 Event recorder.
"""

from __future__ import annotations

from cloudlet.client.events import EventRecorder
from cloudlet.client.http import HTTPClient
from cloudlet.client.informer import Informer
from cloudlet.client.interface import Client, ResourceRef, object_key, ref_for, split_key
from cloudlet.client.local import LocalClient
from cloudlet.client.reconcile import Controller, Permanent, Result, Retry
from cloudlet.client.workqueue import ExponentialBackoff, ShutDown, WorkQueue

__all__ = [
    "Client",
    "Controller",
    "EventRecorder",
    "ExponentialBackoff",
    "HTTPClient",
    "Informer",
    "LocalClient",
    "Permanent",
    "ResourceRef",
    "Result",
    "Retry",
    "ShutDown",
    "WorkQueue",
    "object_key",
    "ref_for",
    "split_key",
]
