"""Deployment controller: ReplicaSets per template, rolling/recreate, revisions, pause, status.

A ReplicaSet controller runs beside the Deployment controller; pods are not run
by anything here, so a small task (:func:`kubelet`) stands in for the node agent
and marks new pods Running and Ready when ``ready`` is switched on.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.testing import DEPLOYMENTS, PODS, REPLICASETS, eventually, local_api
from cloudlet.controllers.deployment import (
    HASH_LABEL,
    REVISION,
    DeploymentController,
    fenceposts,
    scaled_value,
    template_hash,
)
from cloudlet.controllers.replicaset import ReplicaSetController


class Env:
    def __init__(self, client, factory) -> None:
        self.client = client
        self.factory = factory
        self.ready = True
        self.max_total = 0  # the most pods (not terminating) seen at once

    async def kubelet(self) -> None:
        while True:
            pods = (await self.client.list(PODS, "default"))["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            self.max_total = max(self.max_total, len(live))
            if self.ready:
                for p in live:
                    if (p.get("status") or {}).get("phase") != "Running":
                        body = copy.deepcopy(p)
                        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                        body["status"] = {"phase": "Running",
                                          "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts}]}
                        try:
                            await self.client.update(PODS, body, "status")
                        except Exception:
                            pass
            await asyncio.sleep(0.01)


@pytest.fixture
async def denv(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    monkeypatch.setenv("CLOUDLET_CACHE_MUTATION_DETECTOR", "1")
    async with local_api(namespaces=("default",)) as (_store, _api, client):
        factory = SharedInformerFactory(client)
        rsc = ReplicaSetController(client, factory, workers=2)
        dc = DeploymentController(client, factory, workers=2)
        factory.start()
        env = Env(client, factory)
        tasks = [asyncio.create_task(rsc.run()), asyncio.create_task(dc.run()), asyncio.create_task(env.kubelet())]
        await factory.wait_for_cache_sync()
        yield env
        factory.check_mutations()  # nothing wrote into the shared caches
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await factory.shutdown()


def deploy_body(name: str = "web", replicas: int = 3, image: str = "nginx:1", **spec) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}, **spec},
    }


async def get_d(env: Env, name: str = "web") -> dict:
    return await env.client.get(DEPLOYMENTS, name, "default")


async def rs_list(env: Env) -> list[dict]:
    return (await env.client.list(REPLICASETS, "default"))["items"]


def cond(d: dict, type_: str) -> dict:
    return next((c for c in (d.get("status") or {}).get("conditions") or () if c["type"] == type_), {})


async def rolled_out(env: Env, name: str = "web", replicas: int = 3) -> bool:
    d = await get_d(env, name)
    s = d.get("status") or {}
    return (s.get("observedGeneration") == d["metadata"]["generation"] and s.get("updatedReplicas") == replicas
            and s.get("replicas") == replicas and s.get("availableReplicas") == replicas
            and cond(d, "Progressing").get("reason") == "NewReplicaSetAvailable")


async def set_image(env: Env, image: str, name: str = "web") -> None:
    await env.client.patch(DEPLOYMENTS, name, {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}},
                           namespace="default")


async def test_creates_replicaset_with_hash_and_revision(denv: Env) -> None:
    d = await denv.client.create(DEPLOYMENTS, deploy_body())
    await eventually(lambda: rolled_out(denv), within=10)
    (rs,) = await rs_list(denv)
    h = rs["metadata"]["labels"][HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] == h
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    d = await get_d(denv)
    assert d["metadata"]["annotations"][REVISION] == "1"
    assert cond(d, "Available") == {**cond(d, "Available"), "status": "True", "reason": "MinimumReplicasAvailable",
                                    "message": "Deployment has minimum availability."}
    assert cond(d, "Progressing")["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
    assert d["status"]["readyReplicas"] == 3 and d["status"].get("unavailableReplicas", 0) == 0
    pods = (await denv.client.list(PODS, "default"))["items"]
    assert all(p["metadata"]["labels"][HASH_LABEL] == h for p in pods)


async def test_rolling_update_respects_surge_and_history(denv: Env) -> None:
    await denv.client.create(DEPLOYMENTS, deploy_body(replicas=4, revisionHistoryLimit=1))
    await eventually(lambda: rolled_out(denv, replicas=4), within=10)
    denv.max_total = 0
    await set_image(denv, "nginx:2")
    await eventually(lambda: rolled_out(denv, replicas=4), within=15)
    assert denv.max_total <= 5  # 4 + 25% surge (rounded up = 1)
    d = await get_d(denv)
    assert d["metadata"]["annotations"][REVISION] == "2"
    rss = sorted(await rs_list(denv), key=lambda r: r["metadata"]["annotations"][REVISION])
    assert [r["metadata"]["annotations"][REVISION] for r in rss] == ["1", "2"]
    assert rss[0]["spec"]["replicas"] == 0 and rss[1]["spec"]["replicas"] == 4
    # a third revision prunes the first (revisionHistoryLimit 1)
    await set_image(denv, "nginx:3")
    await eventually(lambda: rolled_out(denv, replicas=4), within=15)

    async def pruned() -> bool:
        return sorted(r["metadata"]["annotations"][REVISION] for r in await rs_list(denv)) == ["2", "3"]

    await eventually(pruned, within=5)


async def test_rollback_reuses_old_replicaset_with_new_revision(denv: Env) -> None:
    await denv.client.create(DEPLOYMENTS, deploy_body(replicas=2))
    await eventually(lambda: rolled_out(denv, replicas=2), within=10)
    first = (await rs_list(denv))[0]["metadata"]["name"]
    await set_image(denv, "nginx:2")
    await eventually(lambda: rolled_out(denv, replicas=2), within=10)
    await set_image(denv, "nginx:1")  # what `kubectl rollout undo` does: the old template back
    await eventually(lambda: rolled_out(denv, replicas=2), within=10)
    rss = {r["metadata"]["name"]: r for r in await rs_list(denv)}
    assert len(rss) == 2
    assert rss[first]["metadata"]["annotations"][REVISION] == "3" and rss[first]["spec"]["replicas"] == 2
    assert (await get_d(denv))["metadata"]["annotations"][REVISION] == "3"


async def test_recreate_scales_old_down_first(denv: Env) -> None:
    body = deploy_body(replicas=3)
    body["spec"]["strategy"] = {"type": "Recreate"}
    await denv.client.create(DEPLOYMENTS, body)
    await eventually(lambda: rolled_out(denv), within=10)
    denv.max_total = 0
    await set_image(denv, "nginx:2")
    await eventually(lambda: rolled_out(denv), within=10)
    assert denv.max_total <= 3


async def test_paused_then_resumed(denv: Env) -> None:
    await denv.client.create(DEPLOYMENTS, deploy_body(replicas=2))
    await eventually(lambda: rolled_out(denv, replicas=2), within=10)
    await denv.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, namespace="default")
    await set_image(denv, "nginx:2")

    async def paused() -> bool:
        d = await get_d(denv)
        c = cond(d, "Progressing")
        return c.get("reason") == "DeploymentPaused" and c.get("status") == "Unknown" and \
            d["status"]["observedGeneration"] == d["metadata"]["generation"]

    await eventually(paused)
    assert len(await rs_list(denv)) == 1
    # scaling while paused still works
    await denv.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}}, namespace="default")

    async def scaled() -> bool:
        return (await rs_list(denv))[0]["spec"]["replicas"] == 3

    await eventually(scaled)
    await denv.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, namespace="default")
    await eventually(lambda: rolled_out(denv, replicas=3), within=10)
    assert len(await rs_list(denv)) == 2


async def test_progress_deadline_exceeded(denv: Env) -> None:
    denv.ready = False
    await denv.client.create(DEPLOYMENTS, deploy_body(replicas=2, progressDeadlineSeconds=1))

    async def timed_out() -> bool:
        c = cond(await get_d(denv), "Progressing")
        return c.get("reason") == "ProgressDeadlineExceeded" and c.get("status") == "False"

    await eventually(timed_out, within=10)
    d = await get_d(denv)
    assert cond(d, "Available")["reason"] == "MinimumReplicasUnavailable"
    assert "has timed out progressing." in cond(d, "Progressing")["message"]
    assert d["status"]["unavailableReplicas"] == 2


async def test_scale_up_and_down(denv: Env) -> None:
    await denv.client.create(DEPLOYMENTS, deploy_body(replicas=1))
    await eventually(lambda: rolled_out(denv, replicas=1), within=10)
    await denv.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 5}}, namespace="default")
    await eventually(lambda: rolled_out(denv, replicas=5), within=10)
    await denv.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 2}}, namespace="default")
    await eventually(lambda: rolled_out(denv, replicas=2), within=10)
    (rs,) = await rs_list(denv)
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "2"


def test_rounding_and_hash() -> None:
    assert scaled_value("25%", 10, True) == 3 and scaled_value("25%", 10, False) == 2
    assert scaled_value(2, 10, False) == 2
    d = deploy_body(replicas=10)
    assert fenceposts(d) == (3, 2)
    d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": "1%"}
    assert fenceposts(d) == (0, 1)
    t = deploy_body()["spec"]["template"]
    assert template_hash(t) == template_hash(copy.deepcopy(t))
    assert template_hash(t) != template_hash(t, 1)
    assert set(template_hash(t)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_equal_ignore_hash_treats_null_metadata_as_absent() -> None:
    from cloudlet.controllers.deployment import equal_ignore_hash

    a = {"metadata": {"labels": {"app": "web", HASH_LABEL: "abc"}}, "spec": {"containers": [{"name": "c"}]}}
    b = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    assert equal_ignore_hash(a, b)
    b["spec"]["containers"][0]["image"] = "x"
    assert not equal_ignore_hash(a, b)


async def test_adopts_orphan_replicaset(denv: Env) -> None:
    body = deploy_body(replicas=2)
    template = copy.deepcopy(body["spec"]["template"])
    rs = await denv.client.create(REPLICASETS, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-orphan", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}})
    d = await denv.client.create(DEPLOYMENTS, body)
    await eventually(lambda: rolled_out(denv, replicas=2), within=10)
    got = await denv.client.get(REPLICASETS, "web-orphan", "default")
    assert got["metadata"]["uid"] == rs["metadata"]["uid"]
    assert got["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert len(await rs_list(denv)) == 1  # the adopted one has the same template: it is the new ReplicaSet


async def test_replica_failure_surfaces_on_deployment(denv: Env) -> None:
    client = denv.client
    real_create = client.create

    async def create(ref, obj, namespace=""):
        if ref == PODS:
            raise APIError(403, "Forbidden", 'pods "web-" is forbidden: exceeded quota: compute')
        return await real_create(ref, obj, namespace)

    client.create = create  # type: ignore[method-assign]
    await real_create(DEPLOYMENTS, deploy_body(replicas=1))

    async def surfaced() -> bool:
        c = cond(await get_d(denv), "ReplicaFailure")
        return c.get("reason") == "FailedCreate" and "exceeded quota" in c.get("message", "")

    await eventually(surfaced)
    client.create = real_create  # type: ignore[method-assign]
    await eventually(lambda: rolled_out(denv, replicas=1), within=10)
    assert not cond(await get_d(denv), "ReplicaFailure")


async def test_proportional_scaling_mid_rollout(denv: Env) -> None:
    """The Kubernetes docs' example: 10 replicas, maxSurge 3, maxUnavailable 2, a rollout stuck on
    an image whose pods never get ready, then scaled to 15: 3 of the 5 extra go to the old ReplicaSet."""
    body = deploy_body(replicas=10)
    body["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 3, "maxUnavailable": 2}
    await denv.client.create(DEPLOYMENTS, body)
    await eventually(lambda: rolled_out(denv, replicas=10), within=10)
    denv.ready = False
    await set_image(denv, "nginx:broken")

    async def sizes() -> list[int]:
        rss = sorted(await rs_list(denv), key=lambda r: r["metadata"]["annotations"][REVISION])
        return [r["spec"]["replicas"] for r in rss]

    async def stuck() -> bool:
        return await sizes() == [8, 5]

    await eventually(stuck, within=10)
    await denv.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 15}}, namespace="default")

    async def proportional() -> bool:
        return await sizes() == [11, 7]

    await eventually(proportional, within=10)
