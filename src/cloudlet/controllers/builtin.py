"""The control loops that run inside the API process.

:func:`control_loops` is what :class:`cloudlet.server.Server` schedules at
start-up: the namespace lifecycle controller, the garbage collector and the
CRD controller (names, Established, serving, cleanup), all talking to the API
through one in-process
:class:`~cloudlet.client.local.LocalClient`. Each coroutine runs until
cancelled (server shutdown) and cleans up its informers and workers then.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from cloudlet.api.objects import ObjectAPI
from cloudlet.client.local import LocalClient
from cloudlet.controllers.crd import CRDController
from cloudlet.controllers.gc import GarbageCollector
from cloudlet.controllers.namespace import NamespaceController


def control_loops(api: ObjectAPI) -> list[Coroutine[Any, Any, None]]:
    client = LocalClient(api)
    return [
        NamespaceController(client, api.registry).run(),
        GarbageCollector(client, api.registry).run(),
        CRDController(client, api.registry).run(),
    ]
