"""ReplicaSet controller: replicas, slow start, ownership, adoption/release, status, deletion order."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.testing import PODS, REPLICASETS, eventually, local_api
from cloudlet.controllers.replicaset import ReplicaSetController, deletion_order


def rs_body(name: str = "web", replicas: int = 3, labels: dict[str, str] | None = None, min_ready: int = 0) -> dict:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }


@pytest.fixture
async def rsenv(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLOUDLET_CACHE_MUTATION_DETECTOR", "1")
    async with local_api(namespaces=("default",)) as (_store, _api, client):
        ctl = ReplicaSetController(client, workers=2)
        task = asyncio.create_task(ctl.run())
        await eventually(lambda: ctl.replicasets.has_synced and ctl.pods.has_synced)
        yield client, ctl
        ctl.factory.check_mutations()  # nothing wrote into the shared caches
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def pods_of(client, selector: str = "app=web") -> list[dict]:
    return (await client.list(PODS, "default", label_selector=selector))["items"]


async def mark_ready(client, pod: dict, since: datetime | None = None) -> None:
    ts = (since or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = copy.deepcopy(pod)
    body["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts}]}
    await client.update(PODS, body, "status")


async def rs_status(client, name: str = "web") -> dict:
    return (await client.get(REPLICASETS, name, "default")).get("status") or {}


async def test_creates_pods_with_owner_refs_and_status(rsenv) -> None:
    client, _ = rsenv
    rs = await client.create(REPLICASETS, rs_body(replicas=3))

    async def three() -> bool:
        return len(await pods_of(client)) == 3

    await eventually(three)
    for p in await pods_of(client):
        assert p["metadata"]["name"].startswith("web-")
        (ref,) = p["metadata"]["ownerReferences"]
        assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
                       "controller": True, "blockOwnerDeletion": True}
        assert p["spec"]["containers"][0]["image"] == "nginx"

    async def counted() -> bool:
        s = await rs_status(client)
        return s.get("replicas") == 3 and s.get("fullyLabeledReplicas") == 3 and s.get("observedGeneration") == 1

    await eventually(counted)
    assert (await rs_status(client)).get("readyReplicas", 0) == 0
    for p in await pods_of(client):
        await mark_ready(client, p)

    async def ready() -> bool:
        s = await rs_status(client)
        return s.get("readyReplicas") == 3 and s.get("availableReplicas") == 3

    await eventually(ready)


async def test_heals_deleted_pod_and_scales_down(rsenv) -> None:
    client, _ = rsenv
    await client.create(REPLICASETS, rs_body(replicas=2))

    async def count(n: int) -> bool:
        return len([p for p in await pods_of(client) if not p["metadata"].get("deletionTimestamp")]) == n

    await eventually(lambda: count(2))
    victim = (await pods_of(client))[0]
    await client.delete(PODS, victim["metadata"]["name"], "default", grace_period_seconds=0)
    await eventually(lambda: count(2))
    assert victim["metadata"]["name"] not in {p["metadata"]["name"] for p in await pods_of(client)}
    # scale down: the ready pod survives (not-ready pods go first)
    pods = await pods_of(client)
    await mark_ready(client, pods[1])
    await client.patch(REPLICASETS, "web", {"spec": {"replicas": 1}}, namespace="default")
    await eventually(lambda: count(1))
    left = [p for p in await pods_of(client) if not p["metadata"].get("deletionTimestamp")]
    assert left[0]["metadata"]["name"] == pods[1]["metadata"]["name"]


async def test_slow_start_large_scale(rsenv) -> None:
    client, _ = rsenv
    await client.create(REPLICASETS, rs_body(replicas=20))

    async def twenty() -> bool:
        return len(await pods_of(client)) == 20

    await eventually(twenty)
    await asyncio.sleep(0.2)
    assert len(await pods_of(client)) == 20  # expectations: no double creation


async def test_adopts_orphans_and_releases_mismatched(rsenv) -> None:
    client, _ = rsenv
    orphan = await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                        "metadata": {"name": "stray", "namespace": "default", "labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "x"}]}})
    rs = await client.create(REPLICASETS, rs_body(replicas=2))

    async def adopted() -> bool:
        p = await client.get(PODS, "stray", "default")
        refs = p["metadata"].get("ownerReferences") or []
        return bool(refs) and refs[0]["uid"] == rs["metadata"]["uid"]

    await eventually(adopted)
    assert orphan["metadata"]["uid"]

    async def two() -> bool:
        return len(await pods_of(client)) == 2

    await eventually(two)
    # relabel: released and replaced
    await client.patch(PODS, "stray", {"metadata": {"labels": {"app": "other"}}}, namespace="default")

    async def released() -> bool:
        p = await client.get(PODS, "stray", "default")
        return not p["metadata"].get("ownerReferences") and len(await pods_of(client)) == 2

    await eventually(released)


async def test_min_ready_seconds(rsenv) -> None:
    client, _ = rsenv
    await client.create(REPLICASETS, rs_body(replicas=1, min_ready=1))

    async def one() -> bool:
        return len(await pods_of(client)) == 1

    await eventually(one)
    await mark_ready(client, (await pods_of(client))[0], datetime.now(UTC) - timedelta(seconds=0))

    async def ready_not_available() -> bool:
        s = await rs_status(client)
        return s.get("readyReplicas") == 1

    await eventually(ready_not_available)
    assert (await rs_status(client)).get("availableReplicas", 0) == 0

    async def available() -> bool:
        return (await rs_status(client)).get("availableReplicas") == 1

    await eventually(available, within=4)


async def test_replica_failure_condition(rsenv) -> None:
    client, ctl = rsenv
    real_create = client.create
    fail = {"on": True}

    async def create(ref, obj, namespace=""):
        if ref == PODS and fail["on"]:
            raise APIError(403, "Forbidden", 'pods "web-" is forbidden: exceeded quota: compute')
        return await real_create(ref, obj, namespace)

    ctl.client = client
    client.create = create  # type: ignore[method-assign]
    await real_create(REPLICASETS, rs_body(replicas=2))

    async def failed() -> bool:
        conds = (await rs_status(client)).get("conditions") or []
        return any(c["type"] == "ReplicaFailure" and c["reason"] == "FailedCreate" and "exceeded quota" in c["message"]
                   for c in conds)

    await eventually(failed)
    fail["on"] = False

    async def healed() -> bool:
        s = await rs_status(client)
        return s.get("replicas") == 2 and not s.get("conditions")

    await eventually(healed, within=10)


def _pod(name: str, node: str = "", phase: str = "Pending", ready: bool = False, created: str = "2024-01-01T00:00:00Z") -> dict:
    status: dict = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": created}]
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node} if node else {}, "status": status}


def test_deletion_order() -> None:
    pods = [
        _pod("ready-old", "n1", "Running", True, "2024-01-01T00:00:00Z"),
        _pod("ready-new", "n1", "Running", True, "2024-01-02T00:00:00Z"),
        _pod("running-notready", "n2", "Running"),
        _pod("pending-bound", "n2"),
        _pod("unbound"),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods, pods)]
    assert order == ["unbound", "pending-bound", "running-notready", "ready-new", "ready-old"]
