"""Endpoints and EndpointSlice controllers against a real in-memory API server.

Pods are written by the test (their status too): no node agent runs here, the
status is what a kubelet would report.
"""

from __future__ import annotations

import asyncio
import copy

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.testing import PODS, eventually, local_api
from cloudlet.controllers.endpoints import ENDPOINTS, SERVICES, EndpointsController, desired_subsets
from cloudlet.controllers.endpointslice import ENDPOINT_SLICES, EndpointSliceController
from cloudlet.resources import REGISTRY  # every built-in kind: services, endpoints, slices


@pytest.fixture
async def epenv():
    async with local_api(REGISTRY, namespaces=("default",)) as (_store, _api, client):
        factory = SharedInformerFactory(client)
        eps = EndpointsController(client, factory, workers=2)
        slices = EndpointSliceController(client, factory, workers=2, max_endpoints=3)
        factory.start()
        tasks = [asyncio.create_task(eps.run()), asyncio.create_task(slices.run())]
        await eventually(lambda: all(i.has_synced for i in factory.informers))
        yield client
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await factory.shutdown()


def service(name: str = "web", **spec) -> dict:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    body["spec"].update(spec)
    return body


async def make_pod(client, name: str, ip: str | None, ready: bool, labels: dict | None = None, port: int = 8080) -> dict:
    pod = await client.create(PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": port}]}]},
    })
    if ip is not None:
        pod = await set_status(client, pod, ip, ready)
    return pod


async def set_status(client, pod: dict, ip: str, ready: bool) -> dict:
    body = copy.deepcopy(pod)
    body["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                      "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return await client.update(PODS, body, "status")


async def get_ep(client, name: str = "web") -> dict | None:
    try:
        return await client.get(ENDPOINTS, name, "default")
    except APIError as e:
        if e.code == 404:
            return None
        raise


async def slices_of(client, name: str = "web") -> list[dict]:
    items = (await client.list(ENDPOINT_SLICES, "default", label_selector=f"kubernetes.io/service-name={name}"))["items"]
    return sorted(items, key=lambda s: s["metadata"]["name"])


async def test_ready_and_unready_pods_with_named_target_port(epenv) -> None:
    client = epenv
    await client.create(SERVICES, service())
    await make_pod(client, "a", "10.1.0.2", True)
    await make_pod(client, "b", "10.1.0.3", False)
    await make_pod(client, "c", None, False)  # no IP yet: left out
    await make_pod(client, "other", "10.1.0.9", True, labels={"app": "db"})

    async def settled() -> bool:
        ep = await get_ep(client)
        return bool(ep and ep.get("subsets") and ep["subsets"][0].get("notReadyAddresses"))

    await eventually(settled)
    ep = await get_ep(client)
    assert ep is not None
    (subset,) = ep["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["10.1.0.2"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.1.0.3"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["targetRef"]["name"] == "a" and subset["addresses"][0]["nodeName"] == "n1"
    assert ep["metadata"]["labels"] == {"team": "a"}

    async def slice_settled() -> bool:
        s = await slices_of(client)
        return len(s) == 1 and len(s[0]["endpoints"]) == 2

    await eventually(slice_settled)
    (sl,) = await slices_of(client)
    assert sl["addressType"] == "IPv4"
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert sl["metadata"]["ownerReferences"][0]["kind"] == "Service"
    conds = {e["addresses"][0]: e["conditions"] for e in sl["endpoints"]}
    assert conds == {"10.1.0.2": {"ready": True, "serving": True, "terminating": False},
                     "10.1.0.3": {"ready": False, "serving": False, "terminating": False}}
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


async def test_readiness_change_and_deletion_follow(epenv) -> None:
    client = epenv
    await client.create(SERVICES, service())
    pod = await make_pod(client, "a", "10.1.0.2", False)

    async def ready_count(n: int) -> bool:
        ep = await get_ep(client)
        return ep is not None and sum(len(s.get("addresses") or []) for s in ep.get("subsets") or []) == n

    await eventually(lambda: ready_count(0))
    await set_status(client, await client.get(PODS, "a", "default"), "10.1.0.2", True)
    await eventually(lambda: ready_count(1))
    await client.delete(PODS, pod["metadata"]["name"], "default", grace_period_seconds=0)

    async def empty() -> bool:
        ep = await get_ep(client)
        return ep is not None and not ep.get("subsets")

    await eventually(empty)
    await client.delete(SERVICES, "web", "default")

    async def gone() -> bool:
        return await get_ep(client) is None

    await eventually(gone)


async def test_publish_not_ready_and_slices_split_at_max(epenv) -> None:
    client = epenv
    await client.create(SERVICES, service(publishNotReadyAddresses=True, clusterIP="None"))
    for i in range(7):
        await make_pod(client, f"p{i}", f"10.1.0.{10 + i}", False)

    async def seven() -> bool:
        s = await slices_of(client)
        return sum(len(x["endpoints"]) for x in s) == 7

    await eventually(seven)
    s = await slices_of(client)
    assert [len(x["endpoints"]) for x in s] == [3, 3, 1]  # max_endpoints=3 in this fixture
    assert all(e["conditions"]["ready"] for x in s for e in x["endpoints"])
    assert all(x["metadata"]["labels"].get("service.kubernetes.io/headless") == "" for x in s)
    ep = await get_ep(client)
    assert ep is not None and len(ep["subsets"][0]["addresses"]) == 7
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


async def test_selectorless_service_is_mirrored(epenv) -> None:
    client = epenv
    svc = service()
    del svc["spec"]["selector"]
    svc["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 9000}]
    await client.create(SERVICES, svc)
    await client.create(ENDPOINTS, {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                                    "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
                                                 "ports": [{"name": "http", "port": 9000}]}]})

    async def mirrored() -> bool:
        s = await slices_of(client)
        return len(s) == 1 and len(s[0]["endpoints"]) == 2

    await eventually(mirrored)
    (sl,) = await slices_of(client)
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslicemirroring-controller.k8s.io"
    assert {e["addresses"][0]: e["conditions"]["ready"] for e in sl["endpoints"]} == {"192.0.2.10": True, "192.0.2.11": False}
    await asyncio.sleep(0.3)
    ep = await get_ep(client)
    assert ep is not None and ep["subsets"][0]["addresses"] == [{"ip": "192.0.2.10"}]  # the user's, untouched


def test_subsets_repack_by_port_set() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9090, "targetPort": 9090}])
    pods = []
    for i, named in enumerate([True, False, True]):
        ports = [{"name": "http", "containerPort": 8080}] if named else []
        pods.append({"metadata": {"name": f"p{i}", "namespace": "default", "uid": str(i)},
                     "spec": {"containers": [{"name": "c", "ports": ports}]},
                     "status": {"podIP": f"10.0.0.{i + 1}", "conditions": [{"type": "Ready", "status": "True"}]}})
    subsets, truncated = desired_subsets(svc, pods)
    assert not truncated
    by_ports = {tuple(p["name"] for p in s["ports"]): [a["ip"] for a in s["addresses"]] for s in subsets}
    assert by_ports == {("http", "metrics"): ["10.0.0.1", "10.0.0.3"], ("metrics",): ["10.0.0.2"]}
