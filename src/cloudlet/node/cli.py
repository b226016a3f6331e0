"""What ``cloudlet node add --hollow|stop|resume`` do, over HTTPS to a running server.

The CLI never talks to the server's hollow-node manager directly: it writes
Node objects through the API and the manager (see :mod:`cloudlet.node.hollow`)
reacts — adopting Nodes annotated ``node.cloudlet.dev/hollow: "true"`` and
halting those annotated ``node.cloudlet.dev/hollow-stopped: "true"``. So the
same commands work against any server that runs the manager, and nothing is
lost if the server restarts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cloudlet.api.errors import APIError
from cloudlet.client.http import HTTPClient
from cloudlet.node.hollow import NODES, next_node_names
from cloudlet.node.objects import STOPPED_ANNOTATION, HollowSpec, is_hollow, node_object


async def add_hollow_nodes(kubeconfig: Path, spec: HollowSpec, count: int, names: list[str] | None) -> list[str]:
    """Create hollow Node objects (``names``, or ``count`` fresh ``hollow-node-<i>``);
    409 AlreadyExists propagates. Returns the names created."""
    async with HTTPClient.from_kubeconfig(kubeconfig) as client:
        if not names:
            listed = await client.list(NODES)
            names = next_node_names((n["metadata"]["name"] for n in listed.get("items") or ()), count)
        sem = asyncio.Semaphore(16)

        async def create(name: str) -> None:
            async with sem:
                await client.create(NODES, node_object(name, spec))

        await asyncio.gather(*(create(n) for n in names))
        return list(names)


async def set_hollow_stopped(kubeconfig: Path, name: str, stopped: bool) -> None:
    """Annotate (or un-annotate) hollow node ``name`` as stopped."""
    async with HTTPClient.from_kubeconfig(kubeconfig) as client:
        node = await client.get(NODES, name)
        if not is_hollow(node):
            raise APIError(400, "BadRequest", f'node "{name}" is not a hollow node')
        value = "true" if stopped else None
        await client.patch(NODES, name, {"metadata": {"annotations": {STOPPED_ANNOTATION: value}}}, "merge")
