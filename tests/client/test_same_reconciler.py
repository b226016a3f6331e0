"""The worked example of docs/controllers.md (docs/examples/mirror.py), run through
the in-process LocalClient and the HTTPClient against one real Server in the same
test: both must reach exactly the same state. Also keeps the guide's code in sync
with the example."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.interface import Client
from cloudlet.client.testing import CONFIGMAPS, EVENTS, NAMESPACES, eventually

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "mirror.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cloudlet_docs_mirror_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def cm(name: str, ns: str, data: dict[str, str], **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": data}


async def snapshot(client: Client, ns: str) -> dict[str, Any]:
    """The namespace's ConfigMaps and Events, without what differs between any two
    runs (uids, versions, timestamps, the namespace name)."""
    cms = {}
    for o in (await client.list(CONFIGMAPS, ns))["items"]:
        meta = o["metadata"]
        if meta["name"] == "kube-root-ca.crt":
            continue
        cms[meta["name"]] = {
            "data": o.get("data"),
            "labels": meta.get("labels"),
            "annotations": meta.get("annotations"),
            "owners": [(r["kind"], r["name"], r.get("controller")) for r in meta.get("ownerReferences") or []],
        }
    events = sorted(
        (e["involvedObject"]["name"], e["type"], e["reason"], e["message"], e["count"], e["source"]["component"])
        for e in (await client.list(EVENTS, ns))["items"]
    )
    return {"configmaps": cms, "events": events}


async def scenario(client: Client, ns: str, mirror: ModuleType) -> dict[str, Any]:
    enabled = {mirror.ENABLED: "true"}

    async def exists(name: str) -> bool:
        try:
            await client.get(CONFIGMAPS, name, ns)
        except APIError as e:
            assert e.code == 404
            return False
        return True

    async def mirror_data(name: str) -> dict | None:
        try:
            return (await client.get(CONFIGMAPS, name, ns)).get("data")
        except APIError:
            return None

    async def annotation(name: str) -> str | None:
        return ((await client.get(CONFIGMAPS, name, ns))["metadata"].get("annotations") or {}).get(mirror.MIRROR)

    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    await client.create(CONFIGMAPS, cm("a", ns, {"x": "1"}, **enabled))
    await client.create(CONFIGMAPS, cm("plain", ns, {"p": "1"}))
    await client.create(CONFIGMAPS, cm("c-mirror", ns, {"mine": "yes"}))  # squatting the mirror's name
    controller = asyncio.create_task(mirror.run(client, ns))
    try:
        await client.create(CONFIGMAPS, cm("b", ns, {"y": "2"}, **enabled))
        await client.create(CONFIGMAPS, cm("c", ns, {"z": "3"}, **enabled))
        await eventually(lambda: mirror_data("a-mirror"), within=10)
        await eventually(lambda: mirror_data("b-mirror"), within=10)
        assert await mirror_data("a-mirror") == {"x": "1"}
        await eventually(lambda: annotation("b"))
        assert await annotation("a") == "a-mirror"
        # the source changes: the mirror follows
        await client.patch(CONFIGMAPS, "a", {"data": {"x": "2", "w": "0"}}, "merge", ns)
        await eventually(lambda: _eq(mirror_data("a-mirror"), {"x": "2", "w": "0"}))
        # someone edits or deletes the mirror: repaired through its owner
        await client.patch(CONFIGMAPS, "a-mirror", {"data": {"x": "tampered"}}, "merge", ns)
        await eventually(lambda: _eq(mirror_data("a-mirror"), {"x": "2", "w": "0"}))
        await client.delete(CONFIGMAPS, "b-mirror", ns)
        await eventually(lambda: exists("b-mirror"))
        # the label goes: so do the mirror and the annotation
        await client.patch(CONFIGMAPS, "b", {"metadata": {"labels": {mirror.ENABLED: None}}}, "merge", ns)
        await eventually(lambda: _not(exists("b-mirror")))
        await eventually(lambda: _eq(annotation("b"), None))
        # the source goes: the server's garbage collector removes the mirror
        await client.create(CONFIGMAPS, cm("d", ns, {"d": "4"}, **enabled))
        await eventually(lambda: exists("d-mirror"))
        await client.delete(CONFIGMAPS, "d", ns)
        await eventually(lambda: _not(exists("d-mirror")), within=10)
        await eventually(lambda: _has_event(client, ns, "c", "MirrorConflict"))
        await asyncio.sleep(0.2)  # nothing else should happen
    finally:
        controller.cancel()
        await asyncio.gather(controller, return_exceptions=True)
    return await snapshot(client, ns)


async def _eq(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def _not(value: Any) -> bool:
    return not await value


async def _has_event(client: Client, ns: str, name: str, reason: str) -> bool:
    return any(e["involvedObject"]["name"] == name and e["reason"] == reason
               for e in (await client.list(EVENTS, ns))["items"])


async def test_same_reconciler_same_result_in_process_and_over_http(both_clients) -> None:
    _server, local, http = both_clients
    mirror = load_example()
    via_local, via_http = await asyncio.gather(
        scenario(local, "via-local", mirror),
        scenario(http, "via-http", mirror),
    )
    assert via_local == via_http
    owner = [("ConfigMap", "a", True)]
    assert via_local["configmaps"] == {
        "a": {"data": {"x": "2", "w": "0"}, "labels": {mirror.ENABLED: "true"},
              "annotations": {mirror.MIRROR: "a-mirror"}, "owners": []},
        "a-mirror": {"data": {"x": "2", "w": "0"}, "labels": {mirror.MIRROR_OF: "a"}, "annotations": None, "owners": owner},
        "b": {"data": {"y": "2"}, "labels": {}, "annotations": {}, "owners": []},
        "c": {"data": {"z": "3"}, "labels": {mirror.ENABLED: "true"}, "annotations": None, "owners": []},
        "c-mirror": {"data": {"mine": "yes"}, "labels": {}, "annotations": None, "owners": []},
        "plain": {"data": {"p": "1"}, "labels": {}, "annotations": None, "owners": []},
    }
    events = [e[:5] for e in via_local["events"]]
    assert events == [
        ("a", "Normal", "Created", "Created mirror a-mirror", 1),
        ("a", "Normal", "Updated", "Updated mirror a-mirror", 2),
        ("b", "Normal", "Created", "Created mirror b-mirror", 2),
        ("c", "Warning", "MirrorConflict", "c-mirror exists and is not ours", 1),
        ("d", "Normal", "Created", "Created mirror d-mirror", 1),
    ]


def test_guide_code_is_the_example() -> None:
    """Every Python block in docs/controllers.md is a verbatim excerpt of
    docs/examples/mirror.py, so the guide cannot drift from the tested code."""
    guide = (DOCS / "controllers.md").read_text()
    example = EXAMPLE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.S)
    assert blocks, "the guide shows the example"
    for block in blocks:
        assert block in example, f"not in docs/examples/mirror.py:\n{block}"
