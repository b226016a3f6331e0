"""Garbage collection of ownerReferences: Background, Foreground, Orphan, across kinds and scopes."""

from __future__ import annotations

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.interface import ResourceRef
from cloudlet.client.testing import CONFIGMAPS, DEPLOYMENTS, NODES, PODS, REPLICASETS, eventually
from cloudlet.resources.registry import ResourceType

KINDS = {DEPLOYMENTS: ("apps/v1", "Deployment"), REPLICASETS: ("apps/v1", "ReplicaSet"),
         PODS: ("v1", "Pod"), CONFIGMAPS: ("v1", "ConfigMap"), NODES: ("v1", "Node")}


def owner_ref(owner: dict, *, block: bool | None = True, controller: bool = True) -> dict:
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": controller}
    if block is not None:
        ref["blockOwnerDeletion"] = block
    return ref


async def make(client, ref: ResourceRef, name: str, ns: str = "default", owners: list[dict] | None = None,
               finalizers: list[str] | None = None) -> dict:
    api_version, kind = KINDS[ref]
    meta: dict = {"name": name}
    if ns:
        meta["namespace"] = ns
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    return await client.create(ref, {"apiVersion": api_version, "kind": kind, "metadata": meta})


async def exists(client, ref: ResourceRef, name: str, ns: str = "default") -> bool:
    try:
        await client.get(ref, name, ns)
    except APIError as e:
        if e.code == 404:
            return False
        raise
    return True


async def absent(client, ref: ResourceRef, name: str, ns: str = "default") -> bool:
    return not await exists(client, ref, name, ns)


async def tree(client, prefix: str, *, pod_finalizers: list[str] | None = None) -> tuple[dict, dict, list[dict], dict]:
    """Deployment -> ReplicaSet -> 2 Pods, plus a ConfigMap owned by the Deployment (not blocking)."""
    dep = await make(client, DEPLOYMENTS, f"{prefix}-dep")
    rs = await make(client, REPLICASETS, f"{prefix}-rs", owners=[owner_ref(dep)])
    pods = [await make(client, PODS, f"{prefix}-pod{i}", owners=[owner_ref(rs)], finalizers=pod_finalizers) for i in range(2)]
    cm = await make(client, CONFIGMAPS, f"{prefix}-cm", owners=[owner_ref(dep, block=None, controller=False)])
    return dep, rs, pods, cm


async def test_background_cascades_across_kinds(env) -> None:
    client, _gc, _ = env
    _dep, _rs, pods, _cm = await tree(client, "bg")
    await client.delete(DEPLOYMENTS, "bg-dep", "default")  # default: Background
    assert await absent(client, DEPLOYMENTS, "bg-dep")  # the owner goes at once
    for ref, name in ((REPLICASETS, "bg-rs"), (CONFIGMAPS, "bg-cm"), *((PODS, p["metadata"]["name"]) for p in pods)):
        await eventually(lambda ref=ref, name=name: absent(client, ref, name))


async def test_surviving_owner_keeps_dependent_and_drops_dangling_ref(env) -> None:
    client, _gc, _ = env
    a = await make(client, DEPLOYMENTS, "owner-a")
    b = await make(client, DEPLOYMENTS, "owner-b")
    shared = await make(client, CONFIGMAPS, "shared", owners=[owner_ref(a), owner_ref(b, controller=False)])
    await client.delete(DEPLOYMENTS, "owner-a", "default")

    async def only_b() -> bool:
        refs = (await client.get(CONFIGMAPS, "shared", "default"))["metadata"].get("ownerReferences") or []
        return [r["uid"] for r in refs] == [b["metadata"]["uid"]]

    await eventually(only_b)
    got = await client.get(CONFIGMAPS, "shared", "default")
    assert got["metadata"]["uid"] == shared["metadata"]["uid"]
    await client.delete(DEPLOYMENTS, "owner-b", "default")
    await eventually(lambda: absent(client, CONFIGMAPS, "shared"))


async def test_cluster_scoped_owner_of_namespaced_dependents(env) -> None:
    client, _gc, _ = env
    node = await make(client, NODES, "n1", ns="")
    await make(client, CONFIGMAPS, "on-node", owners=[owner_ref(node)])
    await make(client, CONFIGMAPS, "on-node", ns="other", owners=[owner_ref(node)])
    await client.delete(NODES, "n1")
    await eventually(lambda: absent(client, CONFIGMAPS, "on-node", "default"))
    await eventually(lambda: absent(client, CONFIGMAPS, "on-node", "other"))


async def test_owner_that_never_existed_or_was_replaced(env) -> None:
    client, _gc, _ = env
    ghost = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost", "uid": "00000000-dead-beef-0000-000000000000"}
    await make(client, CONFIGMAPS, "orphaned-at-birth", owners=[ghost])
    await eventually(lambda: absent(client, CONFIGMAPS, "orphaned-at-birth"))

    old = await make(client, DEPLOYMENTS, "reborn")
    await client.delete(DEPLOYMENTS, "reborn", "default", propagation_policy="Orphan")
    await eventually(lambda: absent(client, DEPLOYMENTS, "reborn"))
    await make(client, DEPLOYMENTS, "reborn")  # same name, new uid
    await make(client, CONFIGMAPS, "stale-ref", owners=[owner_ref(old)])
    await eventually(lambda: absent(client, CONFIGMAPS, "stale-ref"))
    assert await exists(client, DEPLOYMENTS, "reborn")


async def test_foreground_waits_for_blocking_dependents(env) -> None:
    client, _gc, _ = env
    _dep, _rs, pods, _cm = await tree(client, "fg", pod_finalizers=["example.com/hold"])
    await client.delete(DEPLOYMENTS, "fg-dep", "default", propagation_policy="Foreground")

    async def pods_terminating() -> bool:
        got = [await client.get(PODS, p["metadata"]["name"], "default") for p in pods]
        return all(p["metadata"].get("deletionTimestamp") for p in got)

    await eventually(pods_terminating)
    await eventually(lambda: absent(client, CONFIGMAPS, "fg-cm"))  # non-blocking dependents go too
    dep = await client.get(DEPLOYMENTS, "fg-dep", "default")
    rs = await client.get(REPLICASETS, "fg-rs", "default")
    # the owner and the intermediate ReplicaSet wait (the RS is itself deleted in the foreground)
    assert dep["metadata"]["deletionTimestamp"] and dep["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert rs["metadata"]["deletionTimestamp"] and "foregroundDeletion" in rs["metadata"]["finalizers"]

    for p in pods:  # the pods' own finalizer is released: the whole chain completes
        await client.patch(PODS, p["metadata"]["name"], {"metadata": {"finalizers": None}}, "merge", "default")
    await eventually(lambda: absent(client, REPLICASETS, "fg-rs"))
    await eventually(lambda: absent(client, DEPLOYMENTS, "fg-dep"))


async def test_foreground_does_not_wait_for_non_blocking_dependents(env) -> None:
    client, _gc, _ = env
    dep = await make(client, DEPLOYMENTS, "nb-dep")
    await make(client, CONFIGMAPS, "nb-cm", owners=[owner_ref(dep, block=False)], finalizers=["example.com/hold"])
    await client.delete(DEPLOYMENTS, "nb-dep", "default", propagation_policy="Foreground")
    await eventually(lambda: absent(client, DEPLOYMENTS, "nb-dep"))
    cm = await client.get(CONFIGMAPS, "nb-cm", "default")
    assert cm["metadata"]["deletionTimestamp"]  # deleted, held only by its own finalizer
    await client.patch(CONFIGMAPS, "nb-cm", {"metadata": {"finalizers": None}}, "merge", "default")


async def test_foreground_dependent_with_another_live_owner_is_kept(env) -> None:
    client, _gc, _ = env
    a = await make(client, DEPLOYMENTS, "fa")
    b = await make(client, DEPLOYMENTS, "fb")
    await make(client, CONFIGMAPS, "kept", owners=[owner_ref(a), owner_ref(b, controller=False)])
    await client.delete(DEPLOYMENTS, "fa", "default", propagation_policy="Foreground")
    await eventually(lambda: absent(client, DEPLOYMENTS, "fa"))
    refs = (await client.get(CONFIGMAPS, "kept", "default"))["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == [b["metadata"]["uid"]]


async def test_orphan_removes_owner_references(env) -> None:
    client, _gc, _ = env
    dep, rs, pods, _cm = await tree(client, "or")
    await client.delete(DEPLOYMENTS, "or-dep", "default", propagation_policy="Orphan")
    await eventually(lambda: absent(client, DEPLOYMENTS, "or-dep"))
    got_rs = await client.get(REPLICASETS, "or-rs", "default")
    assert "ownerReferences" not in got_rs["metadata"] and got_rs["metadata"]["uid"] == rs["metadata"]["uid"]
    assert "ownerReferences" not in (await client.get(CONFIGMAPS, "or-cm", "default"))["metadata"]
    for p in pods:  # grandchildren keep their own owner
        got = await client.get(PODS, p["metadata"]["name"], "default")
        assert [r["uid"] for r in got["metadata"]["ownerReferences"]] == [rs["metadata"]["uid"]]
    assert dep["metadata"]["uid"] not in {n.uid for n in _gc.nodes.values()}


async def test_graph_index_tracks_owner_changes(env) -> None:
    client, gc, _ = env
    a = await make(client, DEPLOYMENTS, "idx-a")
    b = await make(client, DEPLOYMENTS, "idx-b")
    cm = await make(client, CONFIGMAPS, "idx-cm", owners=[owner_ref(a)])
    ua, ub, uc = a["metadata"]["uid"], b["metadata"]["uid"], cm["metadata"]["uid"]
    await eventually(lambda: uc in gc.dependents.get(ua, set()))
    cm["metadata"]["ownerReferences"] = [owner_ref(b)]
    await client.update(CONFIGMAPS, cm)
    await eventually(lambda: uc in gc.dependents.get(ub, set()) and ua not in gc.dependents)
    await client.delete(DEPLOYMENTS, "idx-a", "default")
    await eventually(lambda: ua not in gc.nodes)
    assert await exists(client, CONFIGMAPS, "idx-cm")  # its only owner is b now


@pytest.mark.parametrize("policy", ["Background", "Foreground"])
async def test_deep_chain(env, policy: str) -> None:
    client, _gc, _ = env
    prev = await make(client, DEPLOYMENTS, f"chain-{policy}-0")
    names = []
    for i in range(1, 6):
        prev = await make(client, CONFIGMAPS, f"chain-{policy}-{i}", owners=[owner_ref(prev)])
        names.append(prev["metadata"]["name"])
    await client.delete(DEPLOYMENTS, f"chain-{policy}-0", "default", propagation_policy=policy)
    for n in names:
        await eventually(lambda n=n: absent(client, CONFIGMAPS, n))
    await eventually(lambda: absent(client, DEPLOYMENTS, f"chain-{policy}-0"))


async def test_new_kinds_are_monitored_after_resync(env) -> None:
    client, gc, _ = env
    registry = client.registry
    widgets = registry.add(ResourceType("example.com", "v1", "Widget", "widgets", "widget", True, has_status=False))
    try:
        gc.sync_monitors()  # what the periodic resync does
        await eventually(lambda: gc.has_synced)
        ref = ResourceRef.of(widgets)
        dep = await make(client, DEPLOYMENTS, "crd-owner")
        await client.create(ref, {"apiVersion": "example.com/v1", "kind": "Widget",
                                  "metadata": {"name": "w", "namespace": "default", "ownerReferences": [owner_ref(dep)]}})
        await client.delete(DEPLOYMENTS, "crd-owner", "default")
        await eventually(lambda: absent(client, ref, "w"))
    finally:
        registry.remove(widgets)
        gc.sync_monitors()
    assert "example.com/widgets" not in gc.monitors


async def test_cluster_scoped_dependent_of_namespaced_owner_is_left_alone(env) -> None:
    client, gc, _ = env
    dep = await make(client, DEPLOYMENTS, "ns-owner")
    node = await make(client, NODES, "invalid-child", ns="", owners=[owner_ref(dep)])
    await client.delete(DEPLOYMENTS, "ns-owner", "default")
    await eventually(lambda: dep["metadata"]["uid"] not in gc.nodes)
    await eventually(lambda: len(gc.controller.queue) == 0 and not gc.controller.queue.is_processing(node["metadata"]["uid"]))
    assert await exists(client, NODES, "invalid-child", "")
