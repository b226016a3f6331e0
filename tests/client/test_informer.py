"""Informer: list+watch cache, handlers, re-watch, relist after 410 Expired (in
process and over HTTP), indexes, resync, zero-copy sharing, mutation detection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloudlet.client.cache import LABEL_INDEX, NODE_INDEX, OWNER_INDEX, label_value
from cloudlet.client.informer import CacheMutationError, Informer
from cloudlet.client.local import LocalClient
from cloudlet.client.testing import CONFIGMAPS, NAMESPACES, PODS, eventually, local_api


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


# --- indexes, resync, sharing, mutation detection -----------------------------------


def pod(name: str, node: str = "", owner: str = "", **labels: str) -> dict:
    meta: dict = {"name": name, "namespace": "default", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"nodeName": node} if node else {}}


async def test_indexes_follow_events() -> None:
    async with local_api() as (_store, _api, client):
        await client.create(PODS, pod("a", node="n1", owner="u1", app="web"))
        inf = Informer(client, PODS, indexers={"app": lambda o: [o["metadata"]["labels"].get("app", "")]})
        task = asyncio.create_task(inf.run())
        await inf.wait_synced()
        assert inf.index_keys("app", "web") == ["default/a"]
        assert inf.index_keys(NODE_INDEX, "n1") == ["default/a"]  # built-in, created on first use
        await client.create(PODS, pod("b", node="n1", owner="u1", app="db"))
        await client.create(PODS, pod("c", node="n2", app="web"))
        await eventually(lambda: len(inf) == 3)
        assert inf.index_keys(NODE_INDEX, "n1") == ["default/a", "default/b"]
        assert [o["metadata"]["name"] for o in inf.by_index(OWNER_INDEX, "u1")] == ["a", "b"]
        assert inf.index_keys(LABEL_INDEX, label_value("app", "web")) == ["default/a", "default/c"]
        assert [o["metadata"]["name"] for o in inf.list("default", "app=web")] == ["a", "c"]
        await client.patch(PODS, "a", {"metadata": {"labels": {"app": "db"}, "ownerReferences": None}}, "merge", "default")
        await client.delete(PODS, "b", "default", grace_period_seconds=0)
        await eventually(lambda: inf.index_keys("app", "db") == ["default/a"] and len(inf) == 2)
        assert inf.index_keys(OWNER_INDEX, "u1") == [] and inf.index_keys(NODE_INDEX, "n1") == ["default/a"]
        assert inf.get_by_name("c", "default") is inf.get("default/c")
        inf.stop()
        await task


async def test_in_process_cache_shares_the_store_objects() -> None:
    async with local_api() as (store, api, client):
        await client.create(CONFIGMAPS, cm("a"))
        shared = Informer(client, CONFIGMAPS)
        copied = Informer(client, CONFIGMAPS, share_objects=False)
        tasks = [asyncio.create_task(shared.run()), asyncio.create_task(copied.run())]
        await asyncio.gather(shared.wait_synced(), copied.wait_synced())
        rt = api.registry.get("", "v1", "configmaps")
        assert shared.shares_objects and not copied.shares_objects
        assert shared.get("default/a") is store.get(api.key(rt, "default", "a"))  # no copy at all
        assert copied.get("default/a") == shared.get("default/a")
        assert copied.get("default/a") is not shared.get("default/a")
        await client.patch(CONFIGMAPS, "a", {"data": {"v": "2"}}, "merge", "default")
        await eventually(lambda: (shared.get("default/a") or {}).get("data") == {"v": "2"})
        assert shared.get("default/a") is store.get(api.key(rt, "default", "a"))
        await eventually(lambda: (copied.get("default/a") or {}).get("data") == {"v": "2"})
        # what the plain client hands out is still the caller's own
        got = await client.get(CONFIGMAPS, "a", "default")
        got["data"]["v"] = "mine"
        assert shared.get("default/a")["data"] == {"v": "2"}
        shared.check_mutations()
        for inf in (shared, copied):
            inf.stop()
        await asyncio.gather(*tasks)


async def test_mutation_detector_fails_loudly() -> None:
    async with local_api() as (_store, _api, client):
        await client.create(CONFIGMAPS, cm("a"))
        inf = Informer(client, CONFIGMAPS, share_objects=False)  # keep the store itself intact
        assert inf._detector is not None  # on for every test in tests/client (conftest)
        task = asyncio.create_task(inf.run())
        await inf.wait_synced()
        inf.check_mutations()
        inf.get("default/a")["data"]["oops"] = "1"  # what a handler must never do
        with pytest.raises(CacheMutationError):
            inf.check_mutations()
        await client.patch(CONFIGMAPS, "a", {"data": {"v": "2"}}, "merge", "default")
        with pytest.raises(CacheMutationError, match="default/a"):
            await asyncio.wait_for(task, 2)  # the informer stops on the next event for it
    off = Informer(client, CONFIGMAPS, detect_mutations=False)
    assert off._detector is None


async def test_resync_redelivers_updates_per_handler() -> None:
    async with local_api() as (_store, _api, client):
        await client.create(CONFIGMAPS, cm("a"))
        await client.create(CONFIGMAPS, cm("b"))
        inf = Informer(client, CONFIGMAPS, resync_period=0.05)
        resyncs: list[str] = []
        quiet: list[str] = []

        def on_update(old: dict, new: dict) -> None:
            if old is new:
                resyncs.append(new["metadata"]["name"])

        reg = inf.add_handler(on_update=on_update)
        inf.add_handler(on_update=lambda _o, n: quiet.append(n["metadata"]["name"]), resync_period=0)
        task = asyncio.create_task(inf.run())
        await inf.wait_synced()
        await eventually(lambda: len(resyncs) >= 6)
        assert resyncs[:4] == ["a", "b", "a", "b"]  # every cached object, in key order, each period
        assert quiet == [] and inf.resyncs >= 3
        inf.remove_handler(reg)
        n = len(resyncs)
        await asyncio.sleep(0.15)
        assert len(resyncs) == n and inf.handler_count == 1
        # a handler's own, faster period
        fast: list[str] = []
        inf.add_handler(on_update=lambda o, n_: fast.append(n_["metadata"]["name"]) if o is n_ else None, resync_period=0.01)
        await eventually(lambda: len(fast) >= 4)
        inf.stop()
        await task


async def test_stop_before_run_is_final() -> None:
    async with local_api() as (_store, _api, client):
        inf = Informer(client, CONFIGMAPS)
        task = asyncio.create_task(inf.run())
        inf.stop()  # the task has not started yet
        await asyncio.wait_for(task, 1)
        assert not inf.has_synced and not inf.running


async def test_relist_after_410_over_http(both_clients) -> None:
    server, _local, http = both_clients
    client = Gated(http)
    for n in ("keep", "gone"):
        await http.create(CONFIGMAPS, cm(n))
    inf = Informer(client, CONFIGMAPS, "default", watch_timeout=(0.02, 0.04))
    assert not inf.shares_objects
    rec = Recorder()
    inf.add_handler(rec.add, rec.update, rec.delete)
    task = asyncio.create_task(inf.run())
    await inf.wait_synced()
    client.gate.clear()
    calls = client.watch_calls
    await eventually(lambda: client.watch_calls > calls)  # HTTP watches last >= 1 s
    await http.delete(CONFIGMAPS, "gone", "default")
    await http.create(CONFIGMAPS, cm("new"))
    assert server.store is not None
    await server.store.compact(keep=0)
    rec.events.clear()
    client.gate.set()
    await eventually(lambda: inf.relists >= 1 and len(rec.events) >= 2)
    assert sorted(rec.events) == [("add", "new"), ("delete", "gone")]
    assert sorted(inf.keys()) == ["default/keep", "default/new"]
    inf.stop()
    await task


class Gated:
    """Wraps any client; its watches wait at ``gate`` (to make an informer miss events)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.watch_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def watch(self, *a: Any, **kw: Any) -> AsyncIterator[tuple[str, dict]]:
        self.watch_calls += 1
        await self.gate.wait()
        async for ev in self.inner.watch(*a, **kw):
            yield ev
