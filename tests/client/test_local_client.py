"""LocalClient over Store(MemoryBackend) + ObjectAPI: CRUD, patch, subresources, watch."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.interface import Client, ResourceRef, ref_for
from cloudlet.client.local import LocalClient
from cloudlet.client.testing import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    local_api,
    minimal_registry,
)


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}}


@pytest.fixture
async def client():
    async with local_api(namespaces=("default", "other"), min_history=0, bookmark_interval=0.05) as (_s, _a, c):
        yield c


async def test_is_a_client(client: LocalClient) -> None:
    assert isinstance(client, Client)


async def test_crud_roundtrip(client: LocalClient) -> None:
    src = cm("a", app="web")
    created = await client.create(CONFIGMAPS, src)
    assert "uid" not in src["metadata"]  # input not mutated
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    created["data"]["k"] = "mutated"  # returned objects are the caller's own
    got = await client.get(CONFIGMAPS, "a", "default")
    assert got["data"] == {"k": "v"}
    got["data"]["k"] = "w"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"]["k"] == "w"
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    with pytest.raises(APIError) as ei:
        await client.update(CONFIGMAPS, got)  # stale resourceVersion
    assert ei.value.code == 409 and ei.value.reason == "Conflict"
    with pytest.raises(APIError) as ei:
        await client.create(CONFIGMAPS, cm("a"))
    assert ei.value.reason == "AlreadyExists"
    res = await client.delete(CONFIGMAPS, "a", "default")
    assert res["kind"] == "Status" and res["status"] == "Success"
    with pytest.raises(APIError) as ei:
        await client.get(CONFIGMAPS, "a", "default")
    assert ei.value.code == 404 and ei.value.message == 'configmaps "a" not found'


async def test_generate_name_and_namespace_from_argument(client: LocalClient) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}}
    created = await client.create(CONFIGMAPS, body, "other")
    assert created["metadata"]["name"].startswith("x-") and created["metadata"]["namespace"] == "other"


async def test_unknown_resource_and_bad_scope(client: LocalClient) -> None:
    with pytest.raises(APIError) as ei:
        await client.list(ResourceRef("nope", "v1", "things"))
    assert ei.value.code == 404
    with pytest.raises(APIError) as ei:
        await client.get(NAMESPACES, "default", "default")  # cluster-scoped kind with a namespace
    assert ei.value.code == 404


async def test_list_selectors_and_paging(client: LocalClient) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, cm(f"c{i}", app="web" if i % 2 == 0 else "db"))
    await client.create(CONFIGMAPS, cm("z", "other", app="web"))
    everything = await client.list(CONFIGMAPS)
    assert everything["kind"] == "ConfigMapList" and len(everything["items"]) == 6
    assert int(everything["metadata"]["resourceVersion"]) > 0
    web = await client.list(CONFIGMAPS, "default", label_selector="app=web")
    assert [o["metadata"]["name"] for o in web["items"]] == ["c0", "c2", "c4"]
    named = await client.list(CONFIGMAPS, "default", field_selector="metadata.name=c3")
    assert [o["metadata"]["name"] for o in named["items"]] == ["c3"]
    page1 = await client.list(CONFIGMAPS, "default", limit=2)
    assert len(page1["items"]) == 2 and page1["metadata"]["continue"]
    page2 = await client.list(CONFIGMAPS, "default", limit=10, continue_=page1["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in page2["items"]] == ["c2", "c3", "c4"]
    assert "continue" not in page2["metadata"]
    with pytest.raises(APIError) as ei:
        await client.list(CONFIGMAPS, label_selector="a in (")
    assert ei.value.code == 400
    with pytest.raises(APIError) as ei:
        await client.list(CONFIGMAPS, field_selector="spec.bogus=1")
    assert ei.value.code == 400 and "field label not supported" in ei.value.message


async def test_patch_types(client: LocalClient) -> None:
    await client.create(CONFIGMAPS, cm("p", app="web"))
    merged = await client.patch(CONFIGMAPS, "p", {"data": {"x": "1"}, "metadata": {"labels": {"app": None}}}, "merge", "default")
    assert merged["data"] == {"k": "v", "x": "1"} and "app" not in (merged["metadata"].get("labels") or {})
    jp = await client.patch(CONFIGMAPS, "p", [{"op": "replace", "path": "/data/k", "value": "j"}], "json", "default")
    assert jp["data"]["k"] == "j"
    sp = await client.patch(CONFIGMAPS, "p", {"data": {"y": "2"}}, "strategic", "default")
    assert sp["data"] == {"k": "j", "x": "1", "y": "2"}
    with pytest.raises(APIError) as ei:
        await client.patch(CONFIGMAPS, "p", [{"op": "test", "path": "/data/k", "value": "nope"}], "json", "default")
    assert 400 <= ei.value.code < 500
    with pytest.raises(APIError) as ei:
        await client.patch(CONFIGMAPS, "p", {"metadata": {"resourceVersion": "1"}}, "merge", "default")
    assert ei.value.code == 409
    with pytest.raises(APIError) as ei:
        await client.patch(CONFIGMAPS, "missing", {"data": {}}, "merge", "default")
    assert ei.value.code == 404


async def test_status_and_scale_subresources(client: LocalClient) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}}}
    created = await client.create(DEPLOYMENTS, dep)
    created["status"] = {"replicas": 1}
    created["spec"]["replicas"] = 9  # ignored by the status subresource
    st = await client.update(DEPLOYMENTS, created, subresource="status")
    assert st["status"] == {"replicas": 1} and st["spec"]["replicas"] == 1
    patched = await client.patch(DEPLOYMENTS, "d", {"status": {"readyReplicas": 1}}, "merge", "default", subresource="status")
    assert patched["status"] == {"replicas": 1, "readyReplicas": 1}
    scale = await client.get(DEPLOYMENTS, "d", "default", subresource="scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "app=d"
    scale["spec"]["replicas"] = 3
    await client.update(DEPLOYMENTS, scale, subresource="scale")
    await client.patch(DEPLOYMENTS, "d", {"spec": {"replicas": 4}}, "merge", "default", subresource="scale")
    assert (await client.get(DEPLOYMENTS, "d", "default"))["spec"]["replicas"] == 4
    with pytest.raises(APIError) as ei:
        await client.get(CONFIGMAPS, "x", "default", subresource="scale")
    assert ei.value.code == 404


async def test_delete_with_finalizer_preconditions_and_collection(client: LocalClient) -> None:
    obj = cm("f")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    created = await client.create(CONFIGMAPS, obj)
    with pytest.raises(APIError) as ei:
        await client.delete(CONFIGMAPS, "f", "default", preconditions={"uid": "wrong"})
    assert ei.value.code == 409
    res = await client.delete(CONFIGMAPS, "f", "default", preconditions={"uid": created["metadata"]["uid"]})
    assert res["metadata"]["deletionTimestamp"]  # stays until the finalizer goes
    res = await client.delete(CONFIGMAPS, "f", "default", propagation_policy="Foreground")
    assert "foregroundDeletion" in res["metadata"]["finalizers"]
    await client.patch(CONFIGMAPS, "f", {"metadata": {"finalizers": None}}, "merge", "default")
    with pytest.raises(APIError):
        await client.get(CONFIGMAPS, "f", "default")
    for i in range(3):
        await client.create(CONFIGMAPS, cm(f"d{i}", app="gone" if i < 2 else "keep"))
    out = await client.delete_collection(CONFIGMAPS, "default", label_selector="app=gone")
    assert sorted(o["metadata"]["name"] for o in out["items"]) == ["d0", "d1"]
    assert [o["metadata"]["name"] for o in (await client.list(CONFIGMAPS, "default"))["items"]] == ["d2"]


async def collect(stream, n: int, within: float = 2.0) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    async with asyncio.timeout(within):
        async for ev in stream:
            out.append(ev)
            if len(out) >= n:
                break
    return out


async def test_watch_initial_then_changes(client: LocalClient) -> None:
    await client.create(CONFIGMAPS, cm("w1"))
    stream = client.watch(CONFIGMAPS, "default")
    async with contextlib.aclosing(stream):
        first = await collect(stream, 1)
        assert first[0][0] == "ADDED" and first[0][1]["metadata"]["name"] == "w1"
        await client.create(CONFIGMAPS, cm("w2"))
        await client.patch(CONFIGMAPS, "w2", {"data": {"a": "b"}}, "merge", "default")
        await client.delete(CONFIGMAPS, "w2", "default")
        await client.create(CONFIGMAPS, cm("elsewhere", "other"))  # other namespace: not seen
        evs = await collect(stream, 3)
    assert [(t, o["metadata"]["name"]) for t, o in evs] == [("ADDED", "w2"), ("MODIFIED", "w2"), ("DELETED", "w2")]


async def test_watch_from_resource_version_with_selector(client: LocalClient) -> None:
    start = (await client.list(CONFIGMAPS))["metadata"]["resourceVersion"]
    await client.create(CONFIGMAPS, cm("s", app="web"))
    await client.patch(CONFIGMAPS, "s", {"metadata": {"labels": {"app": "db"}}}, "merge", "default")
    await client.patch(CONFIGMAPS, "s", {"metadata": {"labels": {"app": "web"}}}, "merge", "default")
    stream = client.watch(CONFIGMAPS, None, start, label_selector="app=web")
    async with contextlib.aclosing(stream):
        evs = await collect(stream, 3)
    # leaving the selector looks like a delete, coming back like an add
    assert [t for t, _ in evs] == ["ADDED", "DELETED", "ADDED"]


async def test_watch_bookmarks_and_timeout(client: LocalClient) -> None:
    created = await client.create(CONFIGMAPS, cm("b"))
    rv = created["metadata"]["resourceVersion"]
    await client.create(NAMESPACES, {"metadata": {"name": "bump"}})  # a write to another resource
    stream = client.watch(CONFIGMAPS, None, rv, allow_bookmarks=True)
    async with contextlib.aclosing(stream):
        t, obj = (await collect(stream, 1))[0]
    assert t == "BOOKMARK" and int(obj["metadata"]["resourceVersion"]) > int(rv)
    stream = client.watch(CONFIGMAPS, None, rv, timeout_seconds=0.05)
    async with asyncio.timeout(2):
        assert [ev async for ev in stream] == []  # ends by itself


async def test_watch_expired_raises_410(client: LocalClient) -> None:
    created = await client.create(CONFIGMAPS, cm("old"))
    for i in range(3):
        await client.create(CONFIGMAPS, cm(f"n{i}"))
    await client.api.store.compact(keep=0)
    stream = client.watch(CONFIGMAPS, "default", str(int(created["metadata"]["resourceVersion"]) - 1))
    with pytest.raises(APIError) as ei:
        await collect(stream, 1)
    assert ei.value.code == 410 and ei.value.reason == "Expired"


async def test_watch_closes_store_watcher(client: LocalClient) -> None:
    store = client.api.store
    before = store.watcher_count()
    stream = client.watch(PODS, "default", allow_bookmarks=True)
    task = asyncio.create_task(collect(stream, 100, within=5))
    await asyncio.sleep(0.02)
    assert store.watcher_count() == before + 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await stream.aclose()
    assert store.watcher_count() == before


def test_ref_for() -> None:
    reg = minimal_registry()
    assert ref_for("apps/v1", "Deployment", reg) == DEPLOYMENTS
    assert ref_for("v1", "ConfigMap", reg) == CONFIGMAPS
    assert ref_for("networking.k8s.io/v1", "Ingress", reg) == ResourceRef("networking.k8s.io", "v1", "ingresses")
    assert ref_for("networking.k8s.io/v1", "NetworkPolicy", reg).plural == "networkpolicies"
    assert ref_for("v1", "Endpoints", reg).plural == "endpoints"
