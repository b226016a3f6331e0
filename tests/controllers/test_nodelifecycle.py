"""NodeLifecycleController: lease expiry, NoExecute taints, tolerationSeconds eviction, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api.errors import APIError
from cloudlet.client.informer import MUTATION_DETECTOR_ENV
from cloudlet.client.testing import eventually, local_api
from cloudlet.controllers.nodelifecycle import (
    NODES,
    PODS,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    NodeLifecycleController,
    tolerates,
    toleration_deadline,
)
from cloudlet.node.hollow import HollowNodes
from cloudlet.resources.registry import REGISTRY

GRACE = 0.6


@pytest.fixture(autouse=True)
def _detect_cache_mutations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MUTATION_DETECTOR_ENV, "1")


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Any, HollowNodes, NodeLifecycleController]]:
    async with local_api(REGISTRY, namespaces=("default", "kube-node-lease")) as (_store, _api, client):
        hollow = HollowNodes(client, heartbeat_interval=0.1, lease_duration=1)
        nlc = NodeLifecycleController(client, grace_period=GRACE)
        tasks = [asyncio.create_task(hollow.run()), asyncio.create_task(nlc.run())]
        await eventually(lambda: hollow.nodes.has_synced and nlc.nodes.has_synced and nlc.pods.has_synced)
        yield client, hollow, nlc
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _pod(name: str, node: str, tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def _get(client: Any, ref: Any, name: str, ns: str = "") -> dict[str, Any] | None:
    try:
        return await client.get(ref, name, ns)
    except APIError as e:
        if e.code == 404:
            return None
        raise


async def _ready(client: Any, node: str) -> str | None:
    n = await client.get(NODES, node)
    for c in n["status"].get("conditions") or ():
        if c["type"] == "Ready":
            return c["status"]
    return None


async def _taints(client: Any, node: str) -> set[str]:
    n = await client.get(NODES, node)
    return {t["key"] for t in (n.get("spec") or {}).get("taints") or () if t["effect"] == "NoExecute"}


async def _terminating(client: Any, name: str) -> bool:
    p = await _get(client, PODS, name, "default")
    return p is None or bool(p["metadata"].get("deletionTimestamp"))


async def _running(client: Any, name: str) -> bool:
    p = await _get(client, PODS, name, "default")
    return p is not None and p["status"].get("phase") == "Running"


def test_tolerates() -> None:
    taint = {"key": TAINT_UNREACHABLE, "effect": "NoExecute"}
    assert tolerates({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert tolerates({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"})
    assert not tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoExecute"})
    pod = {"spec": {"tolerations": [{"operator": "Exists", "tolerationSeconds": 30},
                                    {"key": TAINT_UNREACHABLE, "operator": "Exists", "tolerationSeconds": 5}]}}
    assert toleration_deadline(pod, taint) == 5
    assert toleration_deadline({"spec": {}}, taint) == 0
    assert toleration_deadline({"spec": {"tolerations": [{"operator": "Exists"}]}}, taint) is None


async def test_stopped_node_goes_unknown_tainted_and_pods_evicted(cluster: Any) -> None:
    client, hollow, nlc = cluster
    await hollow.add(names=["h0", "h1"])
    tol = [{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]
    await client.create(PODS, _pod("brief", "h0", tol))
    # tolerationSeconds 0 opts out of the 300 s default and is evicted at once
    zero = [{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}]
    await client.create(PODS, _pod("intolerant", "h0", zero))
    await client.create(PODS, _pod("forever", "h0", [{"operator": "Exists"}]))
    await client.create(PODS, _pod("other", "h1", []))
    for name in ("brief", "intolerant", "forever", "other"):
        await eventually(lambda n=name: _running(client, n), within=3)
    await asyncio.sleep(GRACE * 1.5)
    assert await _ready(client, "h0") == "True" and not await _taints(client, "h0")

    hollow.stop("h0")
    await eventually(lambda: _ready_is(client, "h0", "Unknown"), within=GRACE + 3)
    node = await client.get(NODES, "h0")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
    assert all(c["status"] == "Unknown" for c in node["status"]["conditions"])
    await eventually(lambda: _has_taint(client, "h0", TAINT_UNREACHABLE), within=3)
    node = await client.get(NODES, "h0")
    taint = next(t for t in node["spec"]["taints"] if t["key"] == TAINT_UNREACHABLE)
    assert taint["effect"] == "NoExecute" and taint["timeAdded"]
    await eventually(lambda: _terminating(client, "intolerant"), within=3)
    brief = await client.get(PODS, "brief", "default")
    assert not brief["metadata"].get("deletionTimestamp")
    assert next(c for c in brief["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"
    await eventually(lambda: _terminating(client, "brief"), within=5)
    assert not await _terminating(client, "forever")
    assert await _ready(client, "h1") == "True" and not await _taints(client, "h1")
    assert not await _terminating(client, "other")
    await eventually(lambda: nlc.evictions >= 2, within=3)  # counted after the delete call returns

    # the kubelet comes back: Ready again, taints gone, terminating pods finished
    hollow.resume("h0")
    await eventually(lambda: _ready_is(client, "h0", "True"), within=3)
    await eventually(lambda: _no_taints(client, "h0"), within=3)
    await eventually(lambda: _gone(client, "intolerant"), within=3)
    await eventually(lambda: _gone(client, "brief"), within=3)
    assert await _running(client, "forever")


async def _ready_is(client: Any, node: str, status: str) -> bool:
    return await _ready(client, node) == status


async def _has_taint(client: Any, node: str, key: str) -> bool:
    return key in await _taints(client, node)


async def _no_taints(client: Any, node: str) -> bool:
    return not await _taints(client, node)


async def _gone(client: Any, name: str) -> bool:
    return await _get(client, PODS, name, "default") is None


async def test_node_without_lease_is_not_judged_but_not_ready_is_tainted(cluster: Any) -> None:
    client, _hollow, _nlc = cluster
    now = "2026-01-01T00:00:00Z"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "manual"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": now, "lastTransitionTime": now}]}}
    await client.create(NODES, node)
    await asyncio.sleep(GRACE * 2)
    assert await _ready(client, "manual") == "True"
    assert not await _taints(client, "manual")
    cur = await client.get(NODES, "manual")
    conds = [dict(c, status="False", reason="KubeletNotReady") for c in cur["status"]["conditions"]]
    await client.patch(NODES, "manual", {"status": {"conditions": conds}}, "merge", subresource="status")
    await eventually(lambda: _has_taint(client, "manual", TAINT_NOT_READY), within=3)
    got = await client.get(NODES, "manual")
    t = next(t for t in got["spec"]["taints"] if t["key"] == TAINT_NOT_READY)
    assert t["effect"] == "NoExecute" and t["timeAdded"]
    # user taints survive; Ready again removes only ours
    got["spec"]["taints"].append({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})
    await client.update(NODES, got)
    cur = await client.get(NODES, "manual")
    conds = [dict(c, status="True", reason="KubeletReady") for c in cur["status"]["conditions"]]
    await client.patch(NODES, "manual", {"status": {"conditions": conds}}, "merge", subresource="status")
    await eventually(lambda: _no_taints(client, "manual"), within=3)
    final = await client.get(NODES, "manual")
    assert [t["key"] for t in final["spec"]["taints"]] == ["dedicated"]


async def test_user_noexecute_taint_evicts_intolerant_pods(cluster: Any) -> None:
    client, hollow, _nlc = cluster
    await hollow.add(names=["h0"])
    await client.create(PODS, _pod("plain", "h0", []))
    await client.create(PODS, _pod("tolerant", "h0", [{"key": "maint", "operator": "Exists", "effect": "NoExecute"}]))
    await eventually(lambda: _running(client, "plain"), within=3)
    await eventually(lambda: _running(client, "tolerant"), within=3)
    node = await client.get(NODES, "h0")
    node["spec"]["taints"] = [{"key": "maint", "effect": "NoExecute"}]
    await client.update(NODES, node)
    await eventually(lambda: _gone(client, "plain"), within=3)  # hollow node finishes the graceful delete
    assert await _running(client, "tolerant")

