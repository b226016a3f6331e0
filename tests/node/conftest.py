"""Fixtures: an in-memory API with the real kinds and a running HollowNodes manager."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.client.informer import MUTATION_DETECTOR_ENV
from cloudlet.client.testing import eventually, local_api
from cloudlet.node.hollow import HollowNodes
from cloudlet.resources.registry import REGISTRY


@pytest.fixture(autouse=True)
def _detect_cache_mutations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MUTATION_DETECTOR_ENV, "1")


def pod(name: str, node: str = "", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}
    if node:
        body["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": body}


@pytest.fixture
async def hollow() -> AsyncIterator[tuple[Any, HollowNodes]]:
    """(client, manager) — heartbeat every 0.2 s, lease duration 1 s."""
    async with local_api(REGISTRY, namespaces=("default", "kube-node-lease")) as (_store, _api, client):
        mgr = HollowNodes(client, heartbeat_interval=0.2, lease_duration=1)
        task = asyncio.create_task(mgr.run())
        await eventually(lambda: mgr.nodes.has_synced and mgr.pods.has_synced)
        yield client, mgr
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
