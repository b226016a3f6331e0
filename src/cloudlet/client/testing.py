"""Test harness for client and controller code: an in-memory API and minimal kinds.

:func:`minimal_registry` returns a private :class:`Registry` with just enough
kinds (namespaces, nodes, configmaps, pods, events, deployments, replicasets)
to exercise object semantics without the real kinds' validation, so client and
controller tests do not depend on every field rule. :func:`local_api` starts a
:class:`Store` on a :class:`MemoryBackend`, an :class:`ObjectAPI` over it and a
:class:`LocalClient`, creating the given namespaces first. :func:`eventually`
polls an async condition until it holds (controllers converge asynchronously).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from cloudlet.api.objects import ObjectAPI
from cloudlet.client.interface import Obj, ResourceRef
from cloudlet.client.local import LocalClient
from cloudlet.resources.registry import Registry, ResourceType, ScaleSpec
from cloudlet.store.backend import MemoryBackend
from cloudlet.store.store import Store

NAMESPACES = ResourceRef("", "v1", "namespaces")
NODES = ResourceRef("", "v1", "nodes")
CONFIGMAPS = ResourceRef("", "v1", "configmaps")
PODS = ResourceRef("", "v1", "pods")
EVENTS = ResourceRef("", "v1", "events")
DEPLOYMENTS = ResourceRef("apps", "v1", "deployments")
REPLICASETS = ResourceRef("apps", "v1", "replicasets")


def _default_namespace(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if "finalizers" not in spec:
        spec["finalizers"] = ["kubernetes"]
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Active")


def _pod_fields(obj: Obj) -> dict[str, str]:
    return {
        "spec.nodeName": (obj.get("spec") or {}).get("nodeName") or "",
        "status.phase": (obj.get("status") or {}).get("phase") or "",
    }


def minimal_registry() -> Registry:
    reg = Registry()
    reg.add(ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",),
                         subresources=("status",), default=_default_namespace))
    reg.add(ResourceType("", "v1", "Node", "nodes", "node", False, ("no",), subresources=("status",)))
    reg.add(ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",), has_status=False))
    reg.add(ResourceType("", "v1", "Pod", "pods", "pod", True, ("po",), subresources=("status",), fields=_pod_fields))
    reg.add(ResourceType("", "v1", "Event", "events", "event", True, ("ev",), has_status=False))
    scale = ScaleSpec(label_selector="spec.selector")
    reg.add(ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",),
                         subresources=("status", "scale"), scale=scale))
    reg.add(ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",),
                         subresources=("status", "scale"), scale=scale))
    return reg


@asynccontextmanager
async def local_api(
    registry: Registry | None = None,
    *,
    namespaces: Iterable[str] = ("default",),
    min_history: int = 1000,
    bookmark_interval: float = 5.0,
) -> AsyncIterator[tuple[Store, ObjectAPI, LocalClient]]:
    store = Store(MemoryBackend(), min_history=min_history)
    await store.start()
    api = ObjectAPI(store, registry if registry is not None else minimal_registry())
    client = LocalClient(api, bookmark_interval=bookmark_interval)
    try:
        for ns in namespaces:
            await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        yield store, api, client
    finally:
        await store.stop()


async def eventually(cond: Callable[[], bool | Awaitable[bool]], within: float = 5.0, interval: float = 0.005) -> None:
    """Wait until ``cond()`` (a bool or an awaitable of one) holds; ``TimeoutError``
    after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            ok = cond()
            if not isinstance(ok, bool):
                ok = await ok
            if ok:
                return
            await asyncio.sleep(interval)
