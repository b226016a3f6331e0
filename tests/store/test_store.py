"""Store semantics on both backends: revisions, CAS, watch, compaction, reload."""

from __future__ import annotations

import asyncio

import pytest

from cloudlet.store.backend import MemoryBackend
from cloudlet.store.sqlite import SQLiteBackend, StoreLockedError
from cloudlet.store.store import ConflictError, ExistsError, GoneError, NotFoundError, Store


def cm(name: str, data: str = "x") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": {"k": data}}


@pytest.fixture(params=["memory", "sqlite"])
def backend(request, tmp_path):
    if request.param == "memory":
        return MemoryBackend()
    return SQLiteBackend(str(tmp_path / "db.sqlite"))


async def test_revisions_cas_and_list(backend) -> None:
    s = Store(backend)
    await s.start()
    a = await s.create("/configmaps/default/a", cm("a"))
    b = await s.create("/configmaps/default/b", cm("b"))
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    with pytest.raises(ExistsError):
        await s.create("/configmaps/default/a", cm("a"))
    with pytest.raises(ConflictError):
        await s.update("/configmaps/default/a", cm("a", "y"), expect=999)
    a2 = await s.update("/configmaps/default/a", cm("a", "y"), expect=int(a["metadata"]["resourceVersion"]))
    assert s.get("/configmaps/default/a") == a2
    objs, more, rev = s.list("/configmaps", "default")
    assert [o["metadata"]["name"] for o in objs] == ["a", "b"] and more is None and rev == s.revision
    page, last, _ = s.list("/configmaps", limit=1)
    assert len(page) == 1 and last == "/configmaps/default/a"
    rest, last2, _ = s.list("/configmaps", after=last, limit=1)
    assert [o["metadata"]["name"] for o in rest] == ["b"] and last2 is None
    await s.delete("/configmaps/default/b")
    with pytest.raises(NotFoundError):
        await s.delete("/configmaps/default/b")
    await s.stop()


async def test_concurrent_writes_share_commits(backend) -> None:
    s = Store(backend)
    await s.start()
    await asyncio.gather(*(s.create(f"/configmaps/default/c{i}", cm(f"c{i}")) for i in range(200)))
    assert s.count("/configmaps", "default") == 200
    assert s.commits < 200  # group commit: batches, not one commit per write
    await s.stop()


async def test_watch_replay_live_and_gone(backend) -> None:
    s = Store(backend, min_history=0)
    await s.start()
    a = await s.create("/configmaps/default/a", cm("a"))
    start = int(a["metadata"]["resourceVersion"])
    await s.update("/configmaps/default/a", cm("a", "2"))
    w = s.watch("/configmaps", "default", start - 1)
    assert (await w.next()).type == "ADDED"
    assert (await w.next()).type == "MODIFIED"
    await s.create("/configmaps/other/z", cm("z"))  # other namespace: filtered out
    await s.delete("/configmaps/default/a")
    ev = await w.next()
    assert ev.type == "DELETED" and ev.obj["metadata"]["name"] == "a"
    w.close()
    assert await w.next() is None
    await s.compact()
    with pytest.raises(GoneError):
        s.watch("/configmaps", None, start)
    await s.stop()


async def test_reload_after_restart_keeps_state_and_revision(tmp_path) -> None:
    path = str(tmp_path / "db.sqlite")
    s = Store(SQLiteBackend(path), min_history=1)
    await s.start()
    for i in range(5):
        await s.create(f"/configmaps/default/c{i}", cm(f"c{i}"))
    await s.delete("/configmaps/default/c0")
    await s.update("/configmaps/default/c1", cm("c1", "new"))
    await s.compact()
    rev = s.revision
    with pytest.raises(StoreLockedError):
        SQLiteBackend(path)
    await s.stop()
    s2 = Store(SQLiteBackend(path))
    await s2.start()
    assert s2.revision == rev
    assert s2.get("/configmaps/default/c0") is None
    assert s2.get("/configmaps/default/c1")["data"]["k"] == "new"
    assert s2.count("/configmaps") == 4
    nxt = await s2.create("/configmaps/default/n", cm("n"))
    assert int(nxt["metadata"]["resourceVersion"]) == rev + 1
    await s2.stop()


async def test_list_at_revision_is_a_consistent_snapshot(backend) -> None:
    s = Store(backend)
    await s.start()
    for i in range(6):
        await s.create(f"/configmaps/default/c{i}", cm(f"c{i}"))
    page1, last, rev = s.list("/configmaps", "default", limit=2)
    # the world changes between pages
    await s.delete("/configmaps/default/c3")
    await s.update("/configmaps/default/c4", cm("c4", "changed"))
    await s.create("/configmaps/default/c5a", cm("c5a"))
    rest, more, rev2 = s.list("/configmaps", "default", after=last, at=rev)
    assert rev2 == rev and more is None
    assert [o["metadata"]["name"] for o in page1 + rest] == [f"c{i}" for i in range(6)]
    assert rest[2]["data"]["k"] == "x"  # c4 as it was at `rev`
    page, more, _ = s.list("/configmaps", "default", after=last, at=rev, limit=2)
    assert [o["metadata"]["name"] for o in page] == ["c2", "c3"] and more == "/configmaps/default/c3"
    await s.stop()
