"""Watch streams share one encoding of each event (kube-apiserver's ``cachingObject``).

The app is the real one (``build_app``) over an in-memory store, served on
loopback by aiohttp's test server and read as raw bytes, so a test sees exactly
what a client gets on the wire. Streams that send the same frame for an event
must get it from :attr:`ResourceHandlers.watch_frames`; streams that differ in
anything that changes the bytes (event type through selectors, version
conversion, output format, a Table's column definitions) must not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api import handlers as handlers_module
from cloudlet.api.app import build_app
from cloudlet.api.codec import FrameCache
from cloudlet.api.handlers import ResourceHandlers
from cloudlet.client.testing import eventually, local_api
from cloudlet.resources.registry import REGISTRY

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
PARTIAL = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
CM = "/api/v1/namespaces/default/configmaps"
HPA_V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
HPA_V2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"

Env = tuple[TestClient[Any, Any], ResourceHandlers]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with local_api(REGISTRY) as (_store, api, _client):
        app, handlers = build_app(api, REGISTRY, TOKEN)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield client, handlers
        finally:
            await client.close()


class Stream:
    """One open watch, read frame by frame as raw bytes."""

    def __init__(self, resp: ClientResponse) -> None:
        self.resp = resp

    async def raw(self, within: float = 10.0) -> bytes:
        line = await asyncio.wait_for(self.resp.content.readline(), within)
        assert line.endswith(b"\n"), f"stream ended: {line!r}"
        return line

    async def event(self) -> dict[str, Any]:
        return json.loads(await self.raw())


async def rev(client: TestClient[Any, Any], path: str = CM) -> str:
    r = await client.get(path, headers=AUTH)
    assert r.status == 200
    return (await r.json())["metadata"]["resourceVersion"]


async def watch(client: TestClient[Any, Any], path: str, query: str, accept: str | None = None) -> Stream:
    headers = dict(AUTH)
    if accept:
        headers["Accept"] = accept
    r = await client.get(f"{path}?watch=1&{query}", headers=headers)
    assert r.status == 200, await r.text()
    return Stream(r)


async def write(client: TestClient[Any, Any], method: str, path: str, body: Any = None, ctype: str = "application/json") -> dict[str, Any]:
    r = await client.request(method, path, headers={**AUTH, "Content-Type": ctype}, data=json.dumps(body) if body is not None else None)
    assert r.status in (200, 201), await r.text()
    return await r.json()


def cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": {"k": name}}


async def watchers_registered(handlers: ResourceHandlers, prefix: str, n: int) -> None:
    await eventually(lambda: handlers.watch_streams.get(prefix, 0) >= n, within=10)


# --- the cache itself -------------------------------------------------------------------


def test_frame_cache_is_bounded_and_answers_only_its_owner() -> None:
    owner, other = object(), object()
    c = FrameCache(max_entries=3, max_bytes=10)
    c.put(1, owner, b"aa")
    assert c.get(1, owner) == b"aa"
    assert c.get(1, other) is None  # another conversion's frame is never handed out
    c.put(2, owner, b"bb")
    c.put(3, owner, b"cc")
    c.put(4, owner, b"dd")  # 4 entries > 3: the oldest goes
    assert c.get(1, owner) is None and c.get(4, owner) == b"dd" and len(c) == 3
    c.put(5, owner, b"eeeeeee")  # 2+2+2+7 bytes > 10: the oldest go until it fits
    assert c.get(2, owner) is None and c.get(3, owner) is None
    assert c.size == 9 and len(c) == 2
    c.put(6, owner, b"x" * 11)  # bigger than the whole budget: not kept, nothing evicted for it
    assert c.get(6, owner) is None and len(c) == 2
    c.put(5, owner, b"e")  # replacing a key accounts its old size
    assert c.size == 3 and c.get(5, owner) == b"e"
    assert (c.hits, c.misses) == (3, 5)


# --- over HTTP ---------------------------------------------------------------------------


async def test_watchers_of_one_resource_share_each_frame(env: Env) -> None:
    client, handlers = env
    start = await rev(client)
    streams = [await watch(client, CM, f"resourceVersion={start}") for _ in range(3)]
    await watchers_registered(handlers, "/configmaps", 3)
    created = [await write(client, "POST", CM, cm(f"c{i}")) for i in range(3)]
    got = [[await s.raw() for _ in created] for s in streams]
    assert got[0] == got[1] == got[2]
    events = [json.loads(line) for line in got[0]]
    assert [(e["type"], e["object"]) for e in events] == [("ADDED", o) for o in created]
    cache = handlers.watch_frames
    assert (cache.misses, cache.hits) == (3, 6)  # each event encoded once for three streams


async def test_a_single_watch_keeps_nothing(env: Env) -> None:
    client, handlers = env
    s = await watch(client, CM, f"resourceVersion={await rev(client)}")
    await watchers_registered(handlers, "/configmaps", 1)
    obj = await write(client, "POST", CM, cm("solo"))
    assert await s.event() == {"type": "ADDED", "object": obj}
    assert len(handlers.watch_frames) == 0 and handlers.watch_frames.misses == 0


async def test_selectors_keep_their_own_event_types(env: Env) -> None:
    client, handlers = env
    start = await rev(client)
    plain = await watch(client, CM, f"resourceVersion={start}")
    web = await watch(client, CM, f"resourceVersion={start}&labelSelector=app%3Dweb")
    also_web = await watch(client, CM, f"resourceVersion={start}&labelSelector=app%3Dweb")
    await watchers_registered(handlers, "/configmaps", 3)
    merge = "application/merge-patch+json"
    a = await write(client, "POST", CM, cm("a", {"app": "web"}))
    b = await write(client, "PATCH", f"{CM}/a", {"metadata": {"labels": {"app": "db"}}}, merge)  # leaves the selection
    c = await write(client, "POST", CM, cm("other", {"app": "db"}))  # never in it
    d = await write(client, "PATCH", f"{CM}/a", {"metadata": {"labels": {"app": "web"}}}, merge)  # comes back
    e = await write(client, "PATCH", f"{CM}/a", {"data": {"k": "v2"}}, merge)
    await write(client, "DELETE", f"{CM}/a")
    f = (await plain.event(), await plain.event(), await plain.event(), await plain.event(), await plain.event(), await plain.event())
    assert [x["type"] for x in f] == ["ADDED", "MODIFIED", "ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert [x["object"] for x in f[:5]] == [a, b, c, d, e]
    for s in (web, also_web):
        seen = [await s.event() for _ in range(5)]
        assert [(x["type"], x["object"]["metadata"]["resourceVersion"]) for x in seen] == [
            ("ADDED", a["metadata"]["resourceVersion"]),
            ("DELETED", b["metadata"]["resourceVersion"]),  # the object as it left the selection
            ("ADDED", d["metadata"]["resourceVersion"]),
            ("MODIFIED", e["metadata"]["resourceVersion"]),
            ("DELETED", f[5]["object"]["metadata"]["resourceVersion"]),
        ]
        assert seen[1]["object"] == b
    assert handlers.watch_frames.hits >= 5  # the two selector streams shared theirs


async def test_table_watch_sends_columns_once_per_stream(env: Env) -> None:
    client, handlers = env
    start = await rev(client)
    first = await watch(client, CM, f"resourceVersion={start}", TABLE)
    second_json = await watch(client, CM, f"resourceVersion={start}")
    await watchers_registered(handlers, "/configmaps", 2)
    one = await write(client, "POST", CM, cm("one"))
    two = await write(client, "POST", CM, cm("two"))
    t1, t2 = await first.event(), await first.event()
    assert t1["type"] == t2["type"] == "ADDED"
    assert t1["object"]["kind"] == "Table" and [c["name"] for c in t1["object"]["columnDefinitions"]][:1] == ["Name"]
    assert t2["object"]["columnDefinitions"] is None
    assert [r["cells"][0] for r in t1["object"]["rows"] + t2["object"]["rows"]] == ["one", "two"]
    assert t2["object"]["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert t2["object"]["metadata"]["resourceVersion"] == two["metadata"]["resourceVersion"]
    assert (await second_json.event())["object"] == one  # a JSON stream never gets a Table frame
    # a later Table stream whose first frame is the event the first stream got without columns
    late = await watch(client, CM, f"resourceVersion={one['metadata']['resourceVersion']}", TABLE)
    l2 = await late.event()
    assert l2["object"]["columnDefinitions"] == t1["object"]["columnDefinitions"]
    assert l2["object"]["rows"] == t2["object"]["rows"]
    three = await write(client, "POST", CM, cm("three"))
    t3, l3 = await first.event(), await late.event()
    assert t3 == l3 and t3["object"]["columnDefinitions"] is None
    assert t3["object"]["rows"][0]["cells"][0] == three["metadata"]["name"]


async def test_versions_and_formats_get_their_own_frames(env: Env) -> None:
    client, handlers = env
    start = await rev(client, HPA_V2)
    v1 = await watch(client, HPA_V1, f"resourceVersion={start}")
    v1_too = await watch(client, HPA_V1, f"resourceVersion={start}")
    v2 = await watch(client, HPA_V2, f"resourceVersion={start}")
    meta = await watch(client, HPA_V2, f"resourceVersion={start}", PARTIAL)
    await watchers_registered(handlers, "autoscaling/horizontalpodautoscalers", 4)
    body = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
        },
    }
    created = await write(client, "POST", HPA_V2, body)
    as_v1 = await (await client.get(f"{HPA_V1}/web", headers=AUTH)).json()
    e1, e1_too, e2, em = await v1.event(), await v1_too.event(), await v2.event(), await meta.event()
    assert e1 == e1_too == {"type": "ADDED", "object": as_v1}
    assert e1["object"]["apiVersion"] == "autoscaling/v1" and e1["object"]["spec"]["targetCPUUtilizationPercentage"] == 60
    assert e2 == {"type": "ADDED", "object": created}
    assert em["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": created["metadata"]}
    assert handlers.watch_frames.hits == 1  # only the two v1 streams agree on the bytes


async def test_initial_events_and_bookmarks_are_unchanged(env: Env) -> None:
    client, handlers = env
    objs = [await write(client, "POST", CM, cm(f"i{i}", {"app": "web" if i % 2 else "db"})) for i in range(4)]
    current = await rev(client)
    q = "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion="
    streams = [await watch(client, CM, q), await watch(client, CM, q)]
    selected = await watch(client, CM, q + "&labelSelector=app%3Dweb")
    legacy = await watch(client, CM, "resourceVersion=")  # "" : the state as ADDED, no bookmark
    for s in streams:
        initial = [await s.event() for _ in objs]
        assert initial == [{"type": "ADDED", "object": o} for o in objs]
        end = await s.event()
        assert end["type"] == "BOOKMARK"
        assert end["object"]["metadata"] == {"resourceVersion": current, "annotations": {"k8s.io/initial-events-end": "true"}}
        assert end["object"]["kind"] == "ConfigMap" and end["object"]["apiVersion"] == "v1"
    assert [await selected.event() for _ in range(2)] == [{"type": "ADDED", "object": o} for o in objs[1::2]]
    assert (await selected.event())["type"] == "BOOKMARK"
    assert [await legacy.event() for _ in objs] == [{"type": "ADDED", "object": o} for o in objs]
    assert handlers.watch_frames.hits >= len(objs)  # the later streams' initial frames
    await watchers_registered(handlers, "/configmaps", 4)
    live = await write(client, "POST", CM, cm("live", {"app": "web"}))
    for s in (*streams, selected, legacy):
        assert await s.event() == {"type": "ADDED", "object": live}


async def test_a_backlog_goes_out_complete_and_in_order(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _handlers = env
    monkeypatch.setattr(handlers_module, "WATCH_WRITE_BATCH", 2048)  # several writes of several frames
    start = await rev(client)
    created = [await write(client, "POST", CM, cm(f"b{i:03d}")) for i in range(150)]
    streams = [await watch(client, CM, f"resourceVersion={start}") for _ in range(2)]  # replays history
    for s in streams:
        got = [await s.event() for _ in created]
        assert got == [{"type": "ADDED", "object": o} for o in created]
    more = [await write(client, "POST", CM, cm(f"m{i:03d}")) for i in range(3)]
    for s in streams:
        assert [await s.event() for _ in more] == [{"type": "ADDED", "object": o} for o in more]


async def test_closed_streams_are_forgotten(env: Env) -> None:
    client, handlers = env
    s = await watch(client, CM, f"resourceVersion={await rev(client)}&timeoutSeconds=1")
    await watchers_registered(handlers, "/configmaps", 1)
    assert await asyncio.wait_for(s.resp.content.read(), 10) == b""  # ends at its timeout
    await eventually(lambda: not handlers.watch_streams, within=10)
