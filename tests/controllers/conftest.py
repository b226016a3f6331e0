"""Shared fixtures: an in-memory API with the namespace controller and GC running."""

from __future__ import annotations

import asyncio

import pytest

from cloudlet.client.testing import eventually, local_api
from cloudlet.controllers.gc import GarbageCollector
from cloudlet.controllers.namespace import NamespaceController


@pytest.fixture
async def env():
    """(client, gc, namespace controller), both loops running and synced."""
    async with local_api(namespaces=("default", "other")) as (_store, api, client):
        gc = GarbageCollector(client, api.registry, workers=3)
        nsc = NamespaceController(client, api.registry, finalizer_estimate=0.1)
        tasks = [asyncio.create_task(gc.run()), asyncio.create_task(nsc.run())]
        await eventually(lambda: bool(gc.monitors) and gc.has_synced and nsc.informer.has_synced)
        yield client, gc, nsc
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
