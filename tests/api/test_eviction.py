"""The pods/eviction subresource and ObjectAPI's system update path.

In process (the real kinds over an in-memory store) the budget status is
written by the test in place of the disruption controller, so each eviction
rule is checked on exactly the numbers it reads; the controller computing
those numbers is covered in ``tests/controllers/test_disruption.py`` and both
together, with the real kubectl, in ``tests/e2e/test_drain.py``. The last
tests go over HTTPS to a real :class:`~cloudlet.server.Server`.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api.binding import bind_pod
from cloudlet.api.errors import APIError
from cloudlet.api.eviction import MULTIPLE_PDBS, TOO_MANY_REQUESTS, evict_pod
from cloudlet.client.http import HTTPClient
from cloudlet.client.interface import ResourceRef
from cloudlet.client.testing import local_api
from cloudlet.resources.autoscaling import HPA_V1, HPA_V2
from cloudlet.resources.pod import PODS as POD_RT
from cloudlet.resources.policy import PDBS as PDB_RT
from cloudlet.resources.registry import REGISTRY
from cloudlet.server import Config, Server

PODS = ResourceRef("", "v1", "pods")
PDBS = ResourceRef("policy", "v1", "poddisruptionbudgets")
HPAS_V1 = ResourceRef("autoscaling", "v1", "horizontalpodautoscalers")


@pytest.fixture
async def env():
    async with local_api(REGISTRY) as (_store, api, client):
        yield api, client


def eviction(name: str, api_version: str = "policy/v1", **delete_options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": api_version, "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return body


async def make_pod(api: Any, client: Any, name: str, *, labels: dict[str, str] | None = None, phase: str = "Running",
                   ready: bool = True, node: str | None = "n1") -> dict[str, Any]:
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "web"}},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    if node:
        await bind_pod(api, "default", {"metadata": {"name": name}, "target": {"kind": "Node", "name": node}})
    pod = await client.get(PODS, name, "default")
    conds = [c for c in pod["status"].get("conditions") or () if c["type"] != "Ready"]
    conds.append({"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2026-01-01T00:00:00Z"})
    pod["status"].update(phase=phase, conditions=conds)
    return await client.update(PODS, pod, "status")


async def make_pdb(api: Any, client: Any, name: str = "web", *, allowed: int, healthy: int = 3, desired: int = 2,
                   selector: dict[str, Any] | None = None, stale: bool = False, **spec: Any) -> dict[str, Any]:
    """A budget whose status says ``allowed`` disruptions (as the controller would have written)."""
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": selector if selector is not None else {"matchLabels": {"app": "web"}}, **spec}}
    if "minAvailable" not in spec and "maxUnavailable" not in spec:
        body["spec"]["minAvailable"] = desired
    created = await client.create(PDBS, body)
    created["status"] = {"observedGeneration": 0 if stale else created["metadata"]["generation"],
                         "disruptionsAllowed": allowed, "currentHealthy": healthy, "desiredHealthy": desired,
                         "expectedPods": healthy}
    return await client.update(PDBS, created, "status")


async def gone_or_terminating(client: Any, name: str) -> bool:
    try:
        pod = await client.get(PODS, name, "default")
    except APIError as e:
        return e.code == 404
    return bool(pod["metadata"].get("deletionTimestamp"))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_), None)


# --- budgets ----------------------------------------------------------------------------------


async def test_no_budget_evicts_gracefully_with_disruption_target(env):
    api, client = env
    await make_pod(api, client, "p")
    status = await evict_pod(api, "default", "p", eviction("p"))
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    pod = await client.get(PODS, "p", "default")
    assert pod["metadata"]["deletionTimestamp"]  # bound and running: a graceful delete (30 s default)
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30
    target = condition(pod, "DisruptionTarget")
    assert target is not None
    assert (target["status"], target["reason"], target["message"]) == ("True", "EvictionByEvictionAPI", "Eviction API: evicting")


async def test_budget_is_spent_then_refused_with_429(env):
    api, client = env
    for name in ("a", "b", "c"):
        await make_pod(api, client, name)
    await make_pdb(api, client, allowed=1, healthy=3, desired=2)
    await evict_pod(api, "default", "a", eviction("a"))
    pdb = await client.get(PDBS, "web", "default")
    assert pdb["status"]["disruptionsAllowed"] == 0
    assert set(pdb["status"]["disruptedPods"]) == {"a"}
    cond = condition(pdb, "DisruptionAllowed")
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "InsufficientPods")
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "b", eviction("b"))
    assert (e.value.code, e.value.reason, e.value.message) == (429, "TooManyRequests", TOO_MANY_REQUESTS)
    assert e.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert e.value.details == {"causes": [{"reason": "DisruptionBudget",
                                           "message": "The disruption budget web needs 2 healthy pods and has 3 currently"}]}
    assert "Retry-After" not in e.value.headers
    assert not await gone_or_terminating(client, "b")


async def test_concurrent_evictions_spend_the_budget_once(env):
    api, client = env
    names = [f"p{i}" for i in range(6)]
    for name in names:
        await make_pod(api, client, name)
    await make_pdb(api, client, allowed=2, healthy=6, desired=4)
    results = await asyncio.gather(*(evict_pod(api, "default", n, eviction(n)) for n in names), return_exceptions=True)
    ok = [n for n, r in zip(names, results, strict=True) if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, APIError)]
    assert len(ok) == 2 and len(refused) == 4
    assert all(r.code == 429 for r in refused)
    pdb = await client.get(PDBS, "web", "default")
    assert pdb["status"]["disruptionsAllowed"] == 0
    assert sorted(pdb["status"]["disruptedPods"]) == sorted(ok)


async def test_stale_budget_asks_to_retry_later(env):
    api, client = env
    await make_pod(api, client, "p")
    await make_pdb(api, client, allowed=5, stale=True)
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "p", eviction("p"))
    assert e.value.code == 429
    assert e.value.details["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget web is still being processed by the server."}]
    assert e.value.details["retryAfterSeconds"] == 10
    assert e.value.headers["Retry-After"] == "10"


async def test_two_budgets_are_a_500(env):
    api, client = env
    await make_pod(api, client, "p", labels={"app": "web", "tier": "front"})
    await make_pdb(api, client, "web", allowed=5)
    await make_pdb(api, client, "front", allowed=5, selector={"matchLabels": {"tier": "front"}})
    status = await evict_pod(api, "default", "p", eviction("p"))
    assert status["code"] == 500 and status["status"] == "Failure"
    assert status["message"] == MULTIPLE_PDBS
    assert not await gone_or_terminating(client, "p")


async def test_selector_semantics_null_none_empty_all(env):
    api, client = env
    await make_pod(api, client, "p", labels={"other": "x"})
    await make_pdb(api, client, "everything", allowed=0, selector={})
    with pytest.raises(APIError) as e:  # {} selects every pod of the namespace (policy/v1)
        await evict_pod(api, "default", "p", eviction("p"))
    assert e.value.code == 429
    await client.delete(PDBS, "everything", "default")
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "nothing", "namespace": "default"},
            "spec": {"maxUnavailable": 0}}
    await client.create(PDBS, body)  # no selector: selects no pod
    await evict_pod(api, "default", "p", eviction("p"))
    assert await gone_or_terminating(client, "p")


async def test_pending_and_terminal_pods_are_evicted_without_budget(env):
    api, client = env
    await make_pod(api, client, "pending", phase="Pending", ready=False, node=None)
    await make_pod(api, client, "done", phase="Succeeded", ready=False)
    await make_pod(api, client, "failed", phase="Failed", ready=False)
    await make_pdb(api, client, allowed=0)
    for name in ("pending", "done", "failed"):
        await evict_pod(api, "default", name, eviction(name))
        assert await gone_or_terminating(client, name), name
    pdb = await client.get(PDBS, "web", "default")
    assert not pdb["status"].get("disruptedPods")


async def test_unready_pod_and_unhealthy_pod_eviction_policy(env):
    api, client = env
    for name in ("sick1", "sick2", "sick3"):
        await make_pod(api, client, name, ready=False)
    # IfHealthyBudget (default): the application is healthy enough, the unready pod goes without spending the budget
    await make_pdb(api, client, allowed=0, healthy=2, desired=2)
    await evict_pod(api, "default", "sick1", eviction("sick1"))
    assert await gone_or_terminating(client, "sick1")
    pdb = await client.get(PDBS, "web", "default")
    assert pdb["status"]["disruptionsAllowed"] == 0 and not pdb["status"].get("disruptedPods")
    # not healthy enough: the budget decides (and has nothing to give)
    pdb["status"]["currentHealthy"] = 1
    await client.update(PDBS, pdb, "status")
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "sick2", eviction("sick2"))
    assert e.value.code == 429
    # AlwaysAllow: unready pods always go
    pdb = await client.get(PDBS, "web", "default")
    pdb["spec"]["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    pdb = await client.update(PDBS, pdb)
    pdb["status"]["observedGeneration"] = pdb["metadata"]["generation"]
    await client.update(PDBS, pdb, "status")
    await evict_pod(api, "default", "sick2", eviction("sick2"))
    assert await gone_or_terminating(client, "sick2")


# --- delete options -----------------------------------------------------------------------------


async def test_dry_run_writes_nothing(env):
    api, client = env
    await make_pod(api, client, "p")
    before = await make_pdb(api, client, allowed=1)
    for kwargs, body in (({"dry_run": ["All"]}, eviction("p")), ({}, eviction("p", dryRun=["All"]))):
        status = await evict_pod(api, "default", "p", body, **kwargs)
        assert status["status"] == "Success"
    pod = await client.get(PODS, "p", "default")
    assert not pod["metadata"].get("deletionTimestamp") and condition(pod, "DisruptionTarget") is None
    after = await client.get(PDBS, "web", "default")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "p", eviction("p", dryRun=["All"]), dry_run=["Other"])
    assert e.value.code == 400


async def test_delete_options_grace_period_and_preconditions(env):
    api, client = env
    pod = await make_pod(api, client, "now")
    await evict_pod(api, "default", "now", eviction("now", gracePeriodSeconds=0))
    with pytest.raises(APIError) as e:
        await client.get(PODS, "now", "default")
    assert e.value.code == 404
    await make_pod(api, client, "p")
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "p", eviction("p", preconditions={"uid": pod["metadata"]["uid"]}))
    assert e.value.code == 409 and "Precondition failed: UID in precondition" in e.value.message
    assert not await gone_or_terminating(client, "p")
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "p", eviction("p", gracePeriodSeconds="soon"))
    assert e.value.code == 400


async def test_bad_requests(env):
    api, client = env
    await make_pod(api, client, "p")
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "p", eviction("q"))
    assert (e.value.code, e.value.message) == (400, "name in URL does not match name in Eviction object")
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "ghost", eviction("ghost"))
    assert (e.value.code, e.value.message) == (404, 'pods "ghost" not found')
    with pytest.raises(APIError) as e:
        await evict_pod(api, "default", "p", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    assert e.value.code == 400
    await evict_pod(api, "default", "p", eviction("p", api_version="policy/v1beta1"))  # v1beta1 still accepted
    assert await gone_or_terminating(client, "p")


# --- ObjectAPI.update_with ------------------------------------------------------------------------


async def test_update_with_is_a_watched_cas_write_through_storage_conversion(env):
    api, client = env
    await make_pod(api, client, "p")
    watcher = api.watch(POD_RT, "default", api.store.revision)
    before = api.get(POD_RT, "default", "p")

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        pod["spec"]["nodeName"] = "elsewhere"  # the pod update strategy would refuse this
        pod["metadata"]["uid"] = "forged"  # identity stays the stored one
        return pod

    after = await api.update_with(POD_RT, "default", "p", mutate)
    assert after["spec"]["nodeName"] == "elsewhere"
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    event = await asyncio.wait_for(watcher.next(), 5)
    assert event is not None
    assert event.type == "MODIFIED" and event.obj["spec"]["nodeName"] == "elsewhere"
    watcher.close()
    # no change: no write
    same = await api.update_with(POD_RT, "default", "p", lambda pod: None)
    assert same["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
    # an autoscaling/v1 write lands in the autoscaling/v2 storage version
    hpa = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "default"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                    "targetCPUUtilizationPercentage": 50}}
    await client.create(HPAS_V1, hpa)

    def retarget(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["targetCPUUtilizationPercentage"] = 70
        return obj

    await api.update_with(HPA_V1, "default", "h", retarget)
    v2 = api.get(HPA_V2, "default", "h")
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    with pytest.raises(APIError) as e:
        await api.update_with(PDB_RT, "default", "ghost", lambda o: o)
    assert e.value.code == 404


# --- over HTTPS ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_eviction_over_https(tmp_path):
    server = Server(Config(data_dir=tmp_path, port=free_port(), store="memory", scheduler=False))
    await server.start()
    http = HTTPClient.from_kubeconfig(tmp_path / "kubeconfig.yaml")
    try:
        assert server.api is not None
        api = server.api
        resources = (await http.request("GET", "/api/v1"))["resources"]
        entry = next(r for r in resources if r["name"] == "pods/eviction")
        assert (entry["group"], entry["version"], entry["kind"], entry["verbs"]) == ("policy", "v1", "Eviction", ["create"])
        await make_pod(api, http, "a")
        await make_pod(api, http, "b")
        path = "/api/v1/namespaces/default/pods/{}/eviction"
        out = await http.request("POST", path.format("a"), body=eviction("a"))
        assert (out["status"], out["code"]) == ("Success", 201)
        body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "zero", "namespace": "default"},
                "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}}}
        await http.create(PDBS, body)

        async def refused() -> APIError:
            try:
                await http.request("POST", path.format("b"), body=eviction("b"))
            except APIError as e:
                return e
            raise AssertionError("eviction was not refused")

        err = await refused()  # the disruption controller has not spoken yet, or says 0 allowed: 429 either way
        assert err.code == 429 and err.message == TOO_MANY_REQUESTS
        with pytest.raises(APIError) as e:
            await http.request("GET", path.format("b"))
        assert e.value.code == 405
    finally:
        await http.close()
        await server.stop()
