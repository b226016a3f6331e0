"""Informer: list+watch cache, handlers, re-watch, relist after 410 Expired."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloudlet.client.informer import Informer
from cloudlet.client.local import LocalClient
from cloudlet.client.testing import CONFIGMAPS, NAMESPACES, eventually, local_api


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {}}


class GatedClient(LocalClient):
    """A LocalClient whose watches can be held back, to make an informer miss events."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.gate = asyncio.Event()
        self.gate.set()
        self.watch_calls = 0

    async def watch(self, *a: Any, **kw: Any) -> AsyncIterator[tuple[str, dict]]:  # type: ignore[override]
        self.watch_calls += 1
        await self.gate.wait()
        async for ev in super().watch(*a, **kw):
            yield ev


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def add(self, o: dict) -> None:
        self.events.append(("add", o["metadata"]["name"]))

    def update(self, old: dict, new: dict) -> None:
        assert old["metadata"]["name"] == new["metadata"]["name"]
        self.events.append(("update", new["metadata"]["name"]))

    def delete(self, o: dict) -> None:
        self.events.append(("delete", o["metadata"]["name"]))


@pytest.fixture
async def env():
    async with local_api(namespaces=("default", "other"), min_history=0) as (store, api, _client):
        client = GatedClient(api, bookmark_interval=60.0)
        yield store, client


async def test_list_watch_cache_and_handlers(env) -> None:
    _store, client = env
    await client.create(CONFIGMAPS, cm("a"))
    await client.create(CONFIGMAPS, cm("b", "other"))
    inf = Informer(client, CONFIGMAPS, page_size=1)  # paged initial list
    rec = Recorder()
    inf.add_handler(rec.add, rec.update, rec.delete)
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.wait_synced(), 2)
    assert inf.has_synced and sorted(inf.keys()) == ["default/a", "other/b"]
    assert sorted(rec.events) == [("add", "a"), ("add", "b")]
    await client.create(CONFIGMAPS, cm("c"))
    await client.patch(CONFIGMAPS, "a", {"data": {"x": "1"}}, "merge", "default")
    await client.delete(CONFIGMAPS, "b", "other")
    await eventually(lambda: len(rec.events) == 5)
    assert rec.events[2:] == [("add", "c"), ("update", "a"), ("delete", "b")]
    assert inf.get("default/a")["data"] == {"x": "1"} and inf.get("other/b") is None
    late = Recorder()
    inf.add_handler(late.add)  # replays the cache
    assert sorted(late.events) == [("add", "a"), ("add", "c")]
    inf.stop()
    await asyncio.wait_for(task, 2)


async def test_scoped_informer(env) -> None:
    _store, client = env
    inf = Informer(client, CONFIGMAPS, "default", label_selector="app=web")
    task = asyncio.create_task(inf.run())
    await inf.wait_synced()
    await client.create(CONFIGMAPS, cm("web", app="web"))
    await client.create(CONFIGMAPS, cm("db", app="db"))
    await client.create(CONFIGMAPS, cm("web2", "other", app="web"))
    await eventually(lambda: inf.keys() == ["default/web"])
    await client.patch(CONFIGMAPS, "web", {"metadata": {"labels": {"app": "db"}}}, "merge", "default")
    await eventually(lambda: len(inf) == 0)
    inf.stop()
    await task


async def test_rewatch_after_timeout_keeps_cache(env) -> None:
    _store, client = env
    inf = Informer(client, CONFIGMAPS, watch_timeout=(0.02, 0.04))
    task = asyncio.create_task(inf.run())
    await inf.wait_synced()
    await asyncio.sleep(0.15)  # several watches end and are re-opened
    assert client.watch_calls >= 3 and inf.relists == 0
    await client.create(CONFIGMAPS, cm("after"))
    await eventually(lambda: inf.get("default/after") is not None)
    inf.stop()
    await task


async def test_relist_after_410(env) -> None:
    store, client = env
    for n in ("keep", "gone", "changed"):
        await client.create(CONFIGMAPS, cm(n))
    inf = Informer(client, CONFIGMAPS, watch_timeout=(0.02, 0.04))
    rec = Recorder()
    inf.add_handler(rec.add, rec.update, rec.delete)
    task = asyncio.create_task(inf.run())
    await inf.wait_synced()
    client.gate.clear()  # the next re-watch waits at the gate...
    calls = client.watch_calls
    await eventually(lambda: client.watch_calls > calls)
    # ... while the world moves on and history is compacted away
    await client.delete(CONFIGMAPS, "gone", "default")
    await client.patch(CONFIGMAPS, "changed", {"data": {"v": "2"}}, "merge", "default")
    await client.create(CONFIGMAPS, cm("new"))
    await client.create(NAMESPACES, {"metadata": {"name": "bump"}})
    await store.compact(keep=0)
    rec.events.clear()
    client.gate.set()
    await eventually(lambda: inf.relists >= 1 and len(rec.events) >= 3)
    assert sorted(inf.keys()) == ["default/changed", "default/keep", "default/new"]
    assert sorted(rec.events) == [("add", "new"), ("delete", "gone"), ("update", "changed")]
    assert inf.get("default/changed")["data"] == {"v": "2"}
    inf.stop()
    await task


async def test_bookmarks_keep_a_quiet_informer_fresh() -> None:
    async with local_api(min_history=0, bookmark_interval=0.02) as (store, _api, client):
        await client.create(CONFIGMAPS, cm("quiet"))
        inf = Informer(client, CONFIGMAPS, watch_timeout=(0.1, 0.2))
        task = asyncio.create_task(inf.run())
        await inf.wait_synced()
        await client.create(NAMESPACES, {"metadata": {"name": "bump"}})
        target = str(store.revision)
        await eventually(lambda: inf.resource_version == target)
        await store.compact(keep=0)
        await asyncio.sleep(0.3)  # watches re-open from the bookmarked version: no 410
        assert inf.relists == 0
        inf.stop()
        await task


async def test_transform_and_cancel() -> None:
    async with local_api() as (_store, _api, client):
        await client.create(CONFIGMAPS, cm("t"))
        inf = Informer(client, CONFIGMAPS, transform=lambda o: {"metadata": o["metadata"]})
        task = asyncio.create_task(inf.run())
        await inf.wait_synced()
        assert inf.get("default/t") == {"metadata": inf.get("default/t")["metadata"]}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
