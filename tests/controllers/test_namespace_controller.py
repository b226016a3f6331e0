"""Namespace deletion: content goes first (every namespaced kind), then the namespace."""

from __future__ import annotations

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.testing import CONFIGMAPS, DEPLOYMENTS, EVENTS, NAMESPACES, PODS, eventually
from cloudlet.controllers.namespace import CONDITION_TYPES


def obj(kind: str, api_version: str, name: str, ns: str, **extra: object) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": ns}, **extra}


async def gone(client, ref, name: str, ns: str = "") -> bool:
    try:
        await client.get(ref, name, ns)
    except APIError as e:
        return e.code == 404
    return False


async def test_namespace_deletion_removes_content_then_namespace(env) -> None:
    client, _gc, _nsc = env
    await client.create(NAMESPACES, {"metadata": {"name": "doomed"}})
    for i in range(3):
        await client.create(CONFIGMAPS, obj("ConfigMap", "v1", f"c{i}", "doomed"))
    await client.create(DEPLOYMENTS, obj("Deployment", "apps/v1", "d", "doomed", spec={"replicas": 1}))
    await client.create(PODS, obj("Pod", "v1", "p", "doomed", spec={"containers": []}))
    await client.create(EVENTS, obj("Event", "v1", "e", "doomed"))
    await client.create(CONFIGMAPS, obj("ConfigMap", "v1", "survivor", "default"))

    res = await client.delete(NAMESPACES, "doomed")
    assert res["metadata"]["deletionTimestamp"] and res["status"]["phase"] == "Terminating"
    await eventually(lambda: gone(client, NAMESPACES, "doomed"))
    for ref in (CONFIGMAPS, DEPLOYMENTS, PODS, EVENTS):
        assert (await client.list(ref, "doomed"))["items"] == []
    assert (await client.get(CONFIGMAPS, "survivor", "default"))["metadata"]["name"] == "survivor"


async def test_waits_for_finalizers_and_reports_conditions(env) -> None:
    client, _gc, _nsc = env
    await client.create(NAMESPACES, {"metadata": {"name": "held"}})
    held = obj("ConfigMap", "v1", "held", "held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(CONFIGMAPS, held)
    await client.create(CONFIGMAPS, obj("ConfigMap", "v1", "plain", "held"))
    await client.delete(NAMESPACES, "held")

    async def reported() -> bool:
        ns = await client.get(NAMESPACES, "held")
        conds = {c["type"]: c for c in ns["status"].get("conditions") or []}
        return conds.get("NamespaceContentRemaining", {}).get("status") == "True"

    await eventually(reported)
    ns = await client.get(NAMESPACES, "held")
    conds = {c["type"]: c for c in ns["status"]["conditions"]}
    assert set(conds) == set(CONDITION_TYPES)
    assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert conds["NamespaceContentRemaining"]["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
    assert conds["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    )
    assert conds["NamespaceDeletionContentFailure"] == {
        **conds["NamespaceDeletionContentFailure"], "status": "False", "reason": "ContentDeleted",
    }
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert await gone(client, CONFIGMAPS, "plain", "held")
    with pytest.raises(APIError) as ei:
        await client.create(CONFIGMAPS, obj("ConfigMap", "v1", "new", "held"))
    assert ei.value.code == 403 and "being terminated" in ei.value.message

    await client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, "merge", "held")
    await eventually(lambda: gone(client, NAMESPACES, "held"))


async def test_other_finalizers_keep_the_namespace(env) -> None:
    client, _gc, _nsc = env
    await client.create(NAMESPACES, {"metadata": {"name": "extra"}, "spec": {"finalizers": ["kubernetes", "example.com/x"]}})
    await client.create(CONFIGMAPS, obj("ConfigMap", "v1", "c", "extra"))
    await client.delete(NAMESPACES, "extra")

    async def ours_removed() -> bool:
        return (await client.get(NAMESPACES, "extra"))["spec"]["finalizers"] == ["example.com/x"]

    await eventually(ours_removed)
    assert await gone(client, CONFIGMAPS, "c", "extra")
    ns = await client.get(NAMESPACES, "extra")
    ns["spec"]["finalizers"] = []
    await client.update(NAMESPACES, ns, subresource="finalize")
    await eventually(lambda: gone(client, NAMESPACES, "extra"))


async def test_namespace_without_finalizers_is_removed(env) -> None:
    client, _gc, _nsc = env
    await client.create(NAMESPACES, {"metadata": {"name": "bare"}, "spec": {"finalizers": []}})
    await client.delete(NAMESPACES, "bare")
    await eventually(lambda: gone(client, NAMESPACES, "bare"))
