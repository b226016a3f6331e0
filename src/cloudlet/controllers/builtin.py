"""The control loops that run inside the API process.

:func:`control_loops` is what :class:`cloudlet.server.Server` schedules at
start-up, all talking to the API through one in-process
:class:`~cloudlet.client.local.LocalClient`: the namespace lifecycle
controller, the garbage collector, the CRD controller (names, Established,
serving, cleanup), the ReplicaSet, Deployment and disruption
(PodDisruptionBudget status) controllers sharing one informer factory, and the
node lifecycle controller (lease health, NoExecute taints and evictions).
Each coroutine runs until cancelled (server shutdown) and cleans up its
informers and workers then.

``CLOUDLET_CONTROLLERS`` takes kube-controller-manager's ``--controllers``
syntax (``*`` all; ``-name`` switches one off; names: ``deployment``,
``replicaset``, ``endpoint`` (Endpoints and EndpointSlices),
``horizontalpodautoscaling``, ``disruption``,
``nodelifecycle``). API-only tests (the
fuzzers) switch the workload controllers off so nothing but the test writes
their objects (:func:`workload_controllers_enabled`).
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
from cloudlet.controllers.disruption import DisruptionController
from cloudlet.controllers.endpoints import EndpointsController
from cloudlet.controllers.endpointslice import EndpointSliceController
from cloudlet.controllers.gc import GarbageCollector
from cloudlet.controllers.hpa import HPAController
from cloudlet.controllers.namespace import NamespaceController
from cloudlet.controllers.nodelifecycle import NodeLifecycleController
from cloudlet.controllers.replicaset import ReplicaSetController


def control_loops(
    api: ObjectAPI, *, node_monitor_grace_period: float = 40.0, hpa_sync_period: float = 15.0
) -> list[Coroutine[Any, Any, None]]:
    """The in-process controllers; ``node_monitor_grace_period`` (seconds) is the
    lease age after which the node lifecycle controller marks a node Unknown."""
    client = LocalClient(api)
    loops: list[Coroutine[Any, Any, None]] = [
        NamespaceController(client, api.registry).run(),
        GarbageCollector(client, api.registry).run(),
        CRDController(client, api.registry).run(),
    ]
    workloads, disruption = workload_controllers_enabled(), controller_enabled("disruption")
    if workloads or disruption:
        loops.append(_informer_controllers(client, workloads=workloads, disruption=disruption,
                                           hpa_sync_period=hpa_sync_period))
    if controller_enabled("nodelifecycle"):
        loops.append(NodeLifecycleController(client, grace_period=node_monitor_grace_period).run())
    return loops


def _names(env: str | None) -> set[str]:
    raw = os.environ.get("CLOUDLET_CONTROLLERS", "*") if env is None else env
    return {n.strip() for n in raw.split(",") if n.strip()}


def controller_enabled(name: str, env: str | None = None) -> bool:
    """Whether controller ``name`` runs under ``CLOUDLET_CONTROLLERS`` (default ``*``)."""
    names = _names(env)
    return f"-{name}" not in names and ("*" in names or name in names)


def workload_controllers_enabled(env: str | None = None) -> bool:
    """Whether the ReplicaSet/Deployment controllers run (both, or neither:
    ``-deployment`` or ``-replicaset`` switches the pair off)."""
    return controller_enabled("deployment", env) and controller_enabled("replicaset", env)


async def _informer_controllers(
    client: LocalClient, *, workloads: bool, disruption: bool, hpa_sync_period: float = 15.0
) -> None:
    """The ReplicaSet, Deployment and disruption controllers over one shared informer factory."""
    factory = SharedInformerFactory(client)
    runs: list[Coroutine[Any, Any, None]] = []
    if workloads:
        runs += [ReplicaSetController(client, factory).run(), DeploymentController(client, factory).run()]
        if controller_enabled("endpoint"):  # Endpoints + EndpointSlices (+ mirroring); off with the workloads
            runs += [EndpointsController(client, factory).run(), EndpointSliceController(client, factory).run()]
        if controller_enabled("horizontalpodautoscaling"):
            runs.append(HPAController(client, factory, sync_period=hpa_sync_period).run())
    if disruption:
        runs.append(DisruptionController(client, factory).run())
    factory.start()
    try:
        await asyncio.gather(*runs)
    finally:
        await factory.shutdown()
