"""HollowNodes: registration, lease heartbeats, pods marked Running, deletion, stop/resume."""

from __future__ import annotations

import asyncio
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.testing import eventually
from cloudlet.node.hollow import LEASES, NODES, PODS, HollowNodes, next_node_names
from cloudlet.node.objects import (
    HOLLOW_ANNOTATION,
    STOPPED_ANNOTATION,
    HollowSpec,
    is_node_ready,
    node_object,
)
from tests.node.conftest import pod


async def _get(client: Any, ref: Any, name: str, ns: str = "") -> dict[str, Any] | None:
    try:
        return await client.get(ref, name, ns)
    except APIError as e:
        if e.code == 404:
            return None
        raise


def test_next_node_names() -> None:
    assert next_node_names(["hollow-node-0", "hollow-node-2"], 3) == ["hollow-node-1", "hollow-node-3", "hollow-node-4"]


def test_node_object_shape() -> None:
    node = node_object("n1", HollowSpec(cpu="4", memory="8Gi", pods=20))
    labels = node["metadata"]["labels"]
    assert labels["type"] == "hollow" and labels["kubernetes.io/hostname"] == "n1"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    st = node["status"]
    assert st["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "20", "ephemeral-storage": "100Gi"}
    assert st["allocatable"] == st["capacity"]
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert all(conds[t]["status"] == "False" for t in ("MemoryPressure", "DiskPressure", "PIDPressure"))
    assert {a["type"] for a in st["addresses"]} == {"InternalIP", "Hostname"}
    assert st["nodeInfo"]["operatingSystem"] == "linux"


async def test_add_registers_ready_nodes_with_leases(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    names = await mgr.add(3)
    assert names == ["hollow-node-0", "hollow-node-1", "hollow-node-2"]
    await eventually(lambda: mgr.active == names)
    for n in names:
        node = await client.get(NODES, n)
        assert is_node_ready(node)
        assert node["status"]["allocatable"]["pods"] == "110"
    await eventually(lambda: _leases(client, names))
    lease = await client.get(LEASES, "hollow-node-0", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == "hollow-node-0"
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = lease["spec"]["renewTime"]

    async def renewed() -> bool:
        cur = await client.get(LEASES, "hollow-node-0", "kube-node-lease")
        return cur["spec"]["renewTime"] != first

    await eventually(renewed, within=3)
    # adding again picks fresh names
    assert await mgr.add(1) == ["hollow-node-3"]


async def _leases(client: Any, names: list[str]) -> bool:
    got = await client.list(LEASES, "kube-node-lease")
    return sorted(i["metadata"]["name"] for i in got["items"]) == names


async def test_adopts_annotated_node_created_elsewhere(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    bare = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "external", "labels": {"type": "hollow"}, "annotations": {HOLLOW_ANNOTATION: "true"}}}
    await client.create(NODES, bare)
    plain = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "real"}}
    await client.create(NODES, plain)

    async def ready() -> bool:
        return is_node_ready(await client.get(NODES, "external"))

    await eventually(ready, within=3)
    node = await client.get(NODES, "external")
    assert node["status"]["capacity"]["cpu"] == "32"
    assert mgr.active == ["external"]
    assert await _get(client, LEASES, "real", "kube-node-lease") is None


async def test_pods_on_hollow_nodes_run(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    await mgr.add(names=["h0"])
    await client.create(PODS, pod("before", "h0", initContainers=[{"name": "init", "image": "busybox"}]))
    await client.create(PODS, pod("elsewhere", "not-hollow"))
    await client.create(PODS, pod("pending"))

    async def running(name: str) -> bool:
        p = await client.get(PODS, name, "default")
        return p["status"].get("phase") == "Running"

    await eventually(lambda: running("before"), within=3)
    p = await client.get(PODS, "before", "default")
    st = p["status"]
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert all(conds[t] == "True" for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled"))
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and "running" in cs["state"]
    assert st["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert st["podIP"].startswith("10.") and st["hostIP"] and st["startTime"]
    assert st["qosClass"] == "BestEffort"
    await asyncio.sleep(0.3)
    assert (await client.get(PODS, "elsewhere", "default"))["status"]["phase"] == "Pending"
    assert (await client.get(PODS, "pending", "default"))["status"]["phase"] == "Pending"
    await client.create(PODS, pod("after", "h0"))
    await eventually(lambda: running("after"), within=3)
    ips = {(await client.get(PODS, n, "default"))["status"]["podIP"] for n in ("before", "after")}
    assert len(ips) == 2


async def test_graceful_delete_is_finished(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    await mgr.add(names=["h0"])
    await client.create(PODS, pod("p", "h0"))
    await eventually(lambda: _phase(client, "p", "Running"), within=3)
    out = await client.delete(PODS, "p", "default")
    assert out["metadata"].get("deletionTimestamp")
    await eventually(lambda: _gone(client, "p"), within=3)


async def _phase(client: Any, name: str, phase: str) -> bool:
    p = await _get(client, PODS, name, "default")
    return p is not None and p["status"].get("phase") == phase


async def _gone(client: Any, name: str) -> bool:
    return await _get(client, PODS, name, "default") is None


async def test_stop_halts_heartbeat_and_pods_resume_restarts(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    await mgr.add(names=["h0", "h1"])
    await eventually(lambda: _leases(client, ["h0", "h1"]), within=3)
    mgr.stop("h0")
    assert mgr.active == ["h1"]
    before = (await client.get(LEASES, "h0", "kube-node-lease"))["spec"]["renewTime"]
    await client.create(PODS, pod("p", "h0"))
    await asyncio.sleep(0.6)
    assert (await client.get(LEASES, "h0", "kube-node-lease"))["spec"]["renewTime"] == before
    assert (await client.get(PODS, "p", "default"))["status"]["phase"] == "Pending"
    mgr.resume("h0")
    await eventually(lambda: _phase(client, "p", "Running"), within=3)


    async def renewed() -> bool:
        return (await client.get(LEASES, "h0", "kube-node-lease"))["spec"]["renewTime"] != before

    await eventually(renewed, within=3)


async def test_not_ready_node_is_reposted_ready(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    await mgr.add(names=["h0"])
    await eventually(lambda: _leases(client, ["h0"]), within=3)
    node = await client.get(NODES, "h0")
    conds = [dict(c, status="Unknown") if c["type"] == "Ready" else c for c in node["status"]["conditions"]]
    await client.patch(NODES, "h0", {"status": {"conditions": conds}}, "merge", subresource="status")

    async def ready() -> bool:
        return is_node_ready(await client.get(NODES, "h0"))

    await eventually(ready, within=3)


async def test_deleted_node_is_forgotten(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    await mgr.add(names=["h0"])
    await eventually(lambda: mgr.active == ["h0"])
    await client.delete(NODES, "h0")
    await eventually(lambda: mgr.active == [])


async def test_stop_annotation_halts_and_resumes(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    await mgr.add(names=["h0"])
    await eventually(lambda: mgr.active == ["h0"])
    await client.patch(NODES, "h0", {"metadata": {"annotations": {STOPPED_ANNOTATION: "true"}}}, "merge")
    await eventually(lambda: mgr.active == [])
    await client.patch(NODES, "h0", {"metadata": {"annotations": {STOPPED_ANNOTATION: None}}}, "merge")
    await eventually(lambda: mgr.active == ["h0"])


async def test_removing_annotation_releases_node(hollow: tuple[Any, HollowNodes]) -> None:
    client, mgr = hollow
    await mgr.add(names=["h0"])
    await eventually(lambda: mgr.active == ["h0"])
    await client.patch(NODES, "h0", {"metadata": {"annotations": {HOLLOW_ANNOTATION: None}}}, "merge")
    await eventually(lambda: mgr.active == [])
