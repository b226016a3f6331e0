"""Scheduler fixtures: an in-memory API with the real kinds and a running scheduler."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.client.informer import MUTATION_DETECTOR_ENV
from cloudlet.client.testing import local_api
from cloudlet.resources.registry import REGISTRY
from cloudlet.scheduler import Scheduler

NODES = ("", "v1", "nodes")


@pytest.fixture(autouse=True)
def _detect_cache_mutations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MUTATION_DETECTOR_ENV, "1")


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", *, labels: dict[str, str] | None = None,
         taints: list[dict[str, Any]] | None = None, unschedulable: bool = False, extra: dict[str, str] | None = None) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi", **(extra or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"capacity": alloc, "allocatable": alloc,
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod(name: str, cpu: str | None = None, memory: str | None = None, **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [container], **spec}}


@pytest.fixture
async def api_env():
    """``(api, client)`` over the real registry, no scheduler running."""
    async with local_api(REGISTRY) as (_store, api, client):
        yield api, client


@pytest.fixture
async def sched_env(api_env):
    """``(client, scheduler)``: the scheduler running with short backoffs."""
    _api, client = api_env
    s = Scheduler(client, initial_backoff=0.01, max_backoff=0.05)
    task = asyncio.create_task(s.run())
    yield client, s
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
