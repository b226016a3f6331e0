"""The control loops that run inside the API process.

:func:`control_loops` is what :class:`cloudlet.server.Server` schedules at
start-up: the namespace lifecycle controller, the garbage collector, the
CRD controller (names, Established, serving, cleanup) and the ReplicaSet
and Deployment controllers (sharing one informer factory; ``CLOUDLET_CONTROLLERS=*,-deployment``
switches those two off, see :func:`workload_controllers_enabled`), the Endpoints and
EndpointSlice controllers (``-endpoint``), all talking to the API
through one in-process
:class:`~cloudlet.client.local.LocalClient`. Each coroutine runs until
cancelled (server shutdown) and cleans up its informers and workers then.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

from cloudlet.api.objects import ObjectAPI
from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.local import LocalClient
from cloudlet.controllers.crd import CRDController
from cloudlet.controllers.deployment import DeploymentController
from cloudlet.controllers.endpoints import EndpointsController
from cloudlet.controllers.endpointslice import EndpointSliceController
from cloudlet.controllers.gc import GarbageCollector
from cloudlet.controllers.namespace import NamespaceController
from cloudlet.controllers.replicaset import ReplicaSetController


def control_loops(api: ObjectAPI) -> list[Coroutine[Any, Any, None]]:
    client = LocalClient(api)
    return [
        NamespaceController(client, api.registry).run(),
        GarbageCollector(client, api.registry).run(),
        CRDController(client, api.registry).run(),
    ] + ([_workloads(client)] if workload_controllers_enabled() else []) + (
        [_service_endpoints(client)] if controller_enabled("endpoint") else [])


def controller_enabled(name: str, env: str | None = None) -> bool:
    """kube-controller-manager's ``--controllers`` syntax in ``CLOUDLET_CONTROLLERS``:
    ``*`` all, ``name`` on, ``-name`` off (default ``*``)."""
    raw = os.environ.get("CLOUDLET_CONTROLLERS", "*") if env is None else env
    names = {n.strip() for n in raw.split(",") if n.strip()}
    return f"-{name}" not in names and ("*" in names or name in names)


def workload_controllers_enabled(env: str | None = None) -> bool:
    """Whether the ReplicaSet/Deployment controllers run (both, or neither):
    API-only tests (the fuzzers) switch them off with ``*,-deployment,-replicaset``
    so nothing but the test writes their objects — and the Service endpoint
    controllers with them (they write Endpoints and EndpointSlices)."""
    return controller_enabled("deployment", env) and controller_enabled("replicaset", env)


async def _service_endpoints(client: LocalClient) -> None:
    """The Endpoints and EndpointSlice (+ mirroring) controllers over one informer factory."""
    if not workload_controllers_enabled():
        return
    factory = SharedInformerFactory(client)
    endpoints = EndpointsController(client, factory)
    slices = EndpointSliceController(client, factory)
    factory.start()
    try:
        await asyncio.gather(endpoints.run(), slices.run())
    finally:
        await factory.shutdown()


async def _workloads(client: LocalClient) -> None:
    """The ReplicaSet and Deployment controllers over one shared informer factory."""
    factory = SharedInformerFactory(client)
    replicasets = ReplicaSetController(client, factory)
    deployments = DeploymentController(client, factory)
    factory.start()
    try:
        await asyncio.gather(replicasets.run(), deployments.run())
    finally:
        await factory.shutdown()
