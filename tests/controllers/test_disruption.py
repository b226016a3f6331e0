"""DisruptionController: PodDisruptionBudget status from pods, controllers' scale and evictions.

The real kinds over an in-memory API; the test plays the other parties
(ReplicaSet/Deployment objects with their pods and ownerReferences, the
kubelet's Ready condition) so every number the controller derives is known.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api.eviction import evict_pod
from cloudlet.client.interface import ResourceRef
from cloudlet.client.testing import eventually, local_api
from cloudlet.controllers.builtin import controller_enabled, workload_controllers_enabled
from cloudlet.controllers.disruption import DisruptionController
from cloudlet.resources.registry import REGISTRY

PODS = ResourceRef("", "v1", "pods")
PDBS = ResourceRef("policy", "v1", "poddisruptionbudgets")
REPLICASETS = ResourceRef("apps", "v1", "replicasets")
DEPLOYMENTS = ResourceRef("apps", "v1", "deployments")

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest.fixture
async def env() -> AsyncIterator[tuple[Any, Any, DisruptionController]]:
    async with local_api(REGISTRY) as (_store, api, client):
        dc = DisruptionController(client, deletion_timeout=1.0, stale_pod_timeout=1.0)
        task = asyncio.create_task(dc.run())
        await eventually(lambda: all(s.has_synced for s in dc.controller.sources + dc.stale_pods.sources))
        yield api, client, dc
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def workload(client: Any, kind: str, name: str, replicas: int) -> dict[str, Any]:
    ref = DEPLOYMENTS if kind == "Deployment" else REPLICASETS
    return await client.create(ref, {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "default"},
                                     "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})


def owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True}


async def rs_of(client: Any, dep: dict[str, Any], replicas: int) -> dict[str, Any]:
    rs = await workload(client, "ReplicaSet", f"{dep['metadata']['name']}-abc", replicas)
    rs["metadata"]["ownerReferences"] = [owner(dep)]
    return await client.update(REPLICASETS, rs)


async def pod(client: Any, name: str, *, ready: bool = True, controller: dict[str, Any] | None = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": labels or {"app": "web"}}
    if controller is not None:
        meta["ownerReferences"] = [owner(controller)]
    created = await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": TEMPLATE["spec"]})
    return await set_ready(client, created, ready)


async def set_ready(client: Any, p: dict[str, Any], ready: bool) -> dict[str, Any]:
    p = await client.get(PODS, p["metadata"]["name"], "default")
    p["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    return await client.update(PODS, p, "status")


async def pdb(client: Any, name: str = "web", **spec: Any) -> dict[str, Any]:
    spec.setdefault("selector", {"matchLabels": {"app": "web"}})
    return await client.create(PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                      "metadata": {"name": name, "namespace": "default"}, "spec": spec})


async def status_becomes(client: Any, want: dict[str, Any], name: str = "web", within: float = 5.0) -> dict[str, Any]:
    got: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal got
        got = await client.get(PDBS, name, "default")
        status = got.get("status") or {}
        return all(status.get(k) == v for k, v in want.items())

    try:
        await eventually(check, within=within)
    except TimeoutError:
        raise AssertionError(f"status {got.get('status')} never reached {want}") from None
    return got


def allowed_condition(obj: dict[str, Any]) -> tuple[str, str, str]:
    c = next(c for c in obj["status"]["conditions"] if c["type"] == "DisruptionAllowed")
    return c["status"], c["reason"], c.get("message", "")


async def test_integer_min_available_counts_selected_pods(env):
    _api, client, _dc = env
    rs = await workload(client, "ReplicaSet", "web", 4)
    pods = [await pod(client, f"p{i}", controller=rs) for i in range(4)]
    await pod(client, "stranger", labels={"app": "other"})
    created = await pdb(client, minAvailable=3)
    got = await status_becomes(client, {"currentHealthy": 4, "desiredHealthy": 3, "expectedPods": 4,
                                        "disruptionsAllowed": 1, "observedGeneration": 1})
    assert got["metadata"]["generation"] == created["metadata"]["generation"] == 1
    assert allowed_condition(got) == ("True", "SufficientPods", "")
    await set_ready(client, pods[0], False)
    got = await status_becomes(client, {"currentHealthy": 3, "disruptionsAllowed": 0})
    assert allowed_condition(got) == ("False", "InsufficientPods", "")
    # the spec is mutable: a new generation is observed
    got["spec"]["minAvailable"] = 1
    updated = await client.update(PDBS, got)
    assert updated["metadata"]["generation"] == 2
    got = await status_becomes(client, {"observedGeneration": 2, "desiredHealthy": 1, "disruptionsAllowed": 2})
    assert allowed_condition(got)[0] == "True"


async def test_percent_min_available_uses_the_deployment_scale_rounding_up(env):
    _api, client, _dc = env
    dep = await workload(client, "Deployment", "web", 5)
    rs = await rs_of(client, dep, 5)
    for i in range(3):  # fewer pods than the scale: expected still comes from the Deployment
        await pod(client, f"p{i}", controller=rs)
    await pdb(client, minAvailable="50%")
    await status_becomes(client, {"expectedPods": 5, "desiredHealthy": 3, "currentHealthy": 3, "disruptionsAllowed": 0})
    await client.update(DEPLOYMENTS, await _fresh(client, DEPLOYMENTS, dep, replicas=2))  # scaling alone re-syncs
    await status_becomes(client, {"expectedPods": 2, "desiredHealthy": 1, "disruptionsAllowed": 2})


async def _fresh(client: Any, ref: ResourceRef, obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    cur = await client.get(ref, obj["metadata"]["name"], "default")
    cur["spec"].update(spec)
    return cur


async def test_max_unavailable_percent_and_int_with_replicaset_scale(env):
    _api, client, _dc = env
    rs = await workload(client, "ReplicaSet", "web", 4)
    for i in range(4):
        await pod(client, f"p{i}", controller=rs)
    await pod(client, "bare")  # unmanaged: counted healthy, not expected
    await pdb(client, maxUnavailable="30%")  # ceil(1.2) = 2 may be unavailable of 4
    await status_becomes(client, {"expectedPods": 4, "desiredHealthy": 2, "currentHealthy": 5, "disruptionsAllowed": 3})
    cur = await client.get(PDBS, "web", "default")
    cur["spec"]["maxUnavailable"] = 1
    await client.update(PDBS, cur)
    await status_becomes(client, {"expectedPods": 4, "desiredHealthy": 3, "disruptionsAllowed": 2, "observedGeneration": 2})


async def test_other_controllers_through_the_scale_subresource(env):
    _api, client, _dc = env
    dep = await workload(client, "Deployment", "direct", 6)  # a pod controlled by a Deployment itself
    await pod(client, "p0", controller=dep)
    await pdb(client, maxUnavailable=1)
    await status_becomes(client, {"expectedPods": 6, "desiredHealthy": 5, "currentHealthy": 1, "disruptionsAllowed": 0})


async def test_missing_controller_fails_safe(env):
    _api, client, _dc = env
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "ghost", "uid": "0000"}}
    for i in range(3):
        await pod(client, f"p{i}", controller=ghost)
    await pdb(client, maxUnavailable="50%")
    got = await status_becomes(client, {"disruptionsAllowed": 0})
    await eventually(lambda: _synced_failed(client), within=5)
    got = await client.get(PDBS, "web", "default")
    assert allowed_condition(got) == ("False", "SyncFailed", 'found no controllers for pod "p0"')
    # an integer minAvailable needs no controller: the sync succeeds again
    got["spec"] = {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
    await client.update(PDBS, got)
    got = await status_becomes(client, {"disruptionsAllowed": 2, "expectedPods": 3, "observedGeneration": 2})
    assert allowed_condition(got) == ("True", "SufficientPods", "")


async def _synced_failed(client: Any) -> bool:
    got = await client.get(PDBS, "web", "default")
    return any(c["reason"] == "SyncFailed" for c in (got.get("status") or {}).get("conditions") or ())


async def test_no_pods_allows_nothing(env):
    _api, client, _dc = env
    got = await pdb(client, minAvailable=0)
    got = await status_becomes(client, {"expectedPods": 0, "currentHealthy": 0, "disruptionsAllowed": 0, "observedGeneration": 1})
    assert allowed_condition(got) == ("False", "InsufficientPods", "")


async def test_evicted_pods_do_not_count_until_timeout(env):
    api, client, dc = env
    rs = await workload(client, "ReplicaSet", "web", 3)
    pods = [await pod(client, f"p{i}", controller=rs) for i in range(3)]
    await pdb(client, minAvailable=1)
    await status_becomes(client, {"currentHealthy": 3, "disruptionsAllowed": 2})
    # an approved eviction whose pod has not started terminating (the pod stays): not healthy for a while
    got = await client.get(PDBS, "web", "default")
    got["status"]["disruptedPods"] = {"p0": _now_iso()}
    got["status"]["disruptionsAllowed"] = 1
    await client.update(PDBS, got, "status")
    await set_ready(client, pods[1], True)  # any pod event re-syncs
    got = await status_becomes(client, {"currentHealthy": 2, "disruptionsAllowed": 1})
    assert set(got["status"]["disruptedPods"]) == {"p0"}
    # after the deletion timeout (1 s here) the entry goes and the pod counts again
    got = await status_becomes(client, {"currentHealthy": 3, "disruptionsAllowed": 2}, within=10)
    assert not got["status"].get("disruptedPods")
    # through the eviction subresource: recorded, then dropped once the pod terminates
    await evict_pod(api, "default", "p2", {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p2"}})
    got = await client.get(PDBS, "web", "default")
    assert "p2" in (got["status"].get("disruptedPods") or {}) or got["status"]["currentHealthy"] == 2
    # p2 (never bound) is gone at once: the entry is dropped, two healthy pods remain
    got = await status_becomes(client, {"currentHealthy": 2, "disruptionsAllowed": 1, "disruptedPods": None})
    assert dc.controller.reconciles > 0


async def test_stale_disruption_target_is_cleared(env):
    api, client, _dc = env
    p = await pod(client, "p")
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                      "message": "Eviction API: evicting", "lastTransitionTime": _now_iso()})
    await client.update(PODS, p, "status")

    async def cleared() -> bool:
        cur = await client.get(PODS, "p", "default")
        cond = next(c for c in cur["status"]["conditions"] if c["type"] == "DisruptionTarget")
        return cond["status"] == "False"

    await eventually(cleared, within=10)  # not terminating 1 s (the test's timeout) after it was marked
    cur = await client.get(PODS, "p", "default")
    assert next(c for c in cur["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_controller_switches() -> None:
    assert controller_enabled("disruption", "*") and controller_enabled("nodelifecycle", "*")
    assert not controller_enabled("disruption", "*,-disruption")
    assert controller_enabled("disruption", "disruption") and not controller_enabled("nodelifecycle", "disruption")
    assert not workload_controllers_enabled("*,-deployment") and workload_controllers_enabled("*,-disruption")
    assert workload_controllers_enabled("deployment,replicaset") and not workload_controllers_enabled("deployment")
