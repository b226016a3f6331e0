"""SharedInformerFactory: one list+watch per (resource, namespace, selectors, transform)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from cloudlet.client.informer import CacheMutationError, SharedInformerFactory
from cloudlet.client.testing import CONFIGMAPS, NAMESPACES, eventually, local_api


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {}}


class Counting:
    """Wraps a client and counts list pages and watches opened per resource."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lists: Counter[str] = Counter()
        self.watches: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, ref: Any, *a: Any, **kw: Any) -> dict:
        self.lists[ref.plural] += 1
        return await self.inner.list(ref, *a, **kw)

    def watch(self, ref: Any, *a: Any, **kw: Any) -> Any:
        self.watches[ref.plural] += 1
        return self.inner.watch(ref, *a, **kw)


async def test_controllers_share_one_list_and_watch() -> None:
    async with local_api(namespaces=("default", "other")) as (_store, _api, local):
        client = Counting(local)
        await local.create(CONFIGMAPS, cm("a"))
        factory = SharedInformerFactory(client)
        first = factory.informer(CONFIGMAPS)
        second = factory.informer(CONFIGMAPS)  # a second controller asks for the same thing
        assert first is second and first.shares_objects
        seen_by: dict[str, list[str]] = {"one": [], "two": []}
        first.add_handler(lambda o: seen_by["one"].append(o["metadata"]["name"]))
        second.add_handler(lambda o: seen_by["two"].append(o["metadata"]["name"]))
        # different scope or selector: a different informer
        scoped = factory.informer(CONFIGMAPS, "other")
        labelled = factory.informer(CONFIGMAPS, label_selector="app=web")
        assert len({id(first), id(scoped), id(labelled)}) == 3
        assert factory.informer(CONFIGMAPS, "") is first  # "" and None both mean all namespaces here
        factory.start()
        async with asyncio.timeout(2):
            await factory.wait_for_cache_sync()
        assert factory.has_synced
        await local.create(CONFIGMAPS, cm("b", "other", app="web"))
        await eventually(lambda: seen_by["one"] == ["a", "b"] and seen_by["two"] == ["a", "b"])
        await eventually(lambda: scoped.keys() == ["other/b"] and labelled.keys() == ["other/b"])
        assert client.watches["configmaps"] == 3 and client.lists["configmaps"] == 3  # not 4
        # requested after start: started at once; late handlers get the cache replayed
        ns_inf = factory.informer(NAMESPACES)
        async with asyncio.timeout(2):
            await ns_inf.wait_synced()
        replay: list[str] = []
        ns_inf.add_handler(lambda o: replay.append(o["metadata"]["name"]))
        assert replay == ["default", "other"]
        factory.check_mutations()
        await factory.shutdown()
        assert not any(inf.running for inf in factory.informers)
        with pytest.raises(RuntimeError):
            factory.informer(CONFIGMAPS)


async def test_factory_namespace_default_and_context_manager() -> None:
    async with local_api(namespaces=("default", "team")) as (_store, _api, client):
        await client.create(CONFIGMAPS, cm("mine", "team"))
        await client.create(CONFIGMAPS, cm("theirs", "default"))
        async with SharedInformerFactory(client, namespace="team", resync_period=30) as factory:
            inf = factory.informer(CONFIGMAPS)
            everywhere = factory.informer(CONFIGMAPS, "")
            cluster = factory.informer(NAMESPACES, "")  # cluster-scoped from a namespaced factory
            assert inf.namespace == "team" and everywhere.namespace is None
            assert inf.resync_period == 30
            async with asyncio.timeout(2):
                await factory.wait_for_cache_sync()
            assert inf.keys() == ["team/mine"] and len(everywhere) == 2 and len(cluster) == 2
        assert not inf.running


async def test_factory_reports_cache_mutation() -> None:
    async with local_api() as (_store, _api, client):
        await client.create(CONFIGMAPS, cm("a"))
        factory = SharedInformerFactory(client, share_objects=False)
        inf = factory.informer(CONFIGMAPS)

        def bad_handler(old: dict, new: dict) -> None:
            new["metadata"]["labels"]["touched"] = "yes"  # mutates the shared cache

        inf.add_handler(on_update=bad_handler)
        factory.start()
        await factory.wait_for_cache_sync()
        await client.patch(CONFIGMAPS, "a", {"data": {"v": "1"}}, "merge", "default")
        await client.patch(CONFIGMAPS, "a", {"data": {"v": "2"}}, "merge", "default")
        await eventually(lambda: not inf.running)
        with pytest.raises(CacheMutationError):
            factory.check_mutations()
        await factory.shutdown()
