"""ObjectAPI semantics that sit between the HTTP layer and the store."""

from __future__ import annotations

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api.errors import APIError
from cloudlet.api.objects import ObjectAPI
from cloudlet.resources.registry import REGISTRY
from cloudlet.store.backend import MemoryBackend
from cloudlet.store.store import Store


@pytest.fixture
async def api():
    store = Store(MemoryBackend())
    await store.start()
    api = ObjectAPI(store)
    await api.create(REGISTRY.get("", "v1", "namespaces"), "", {"metadata": {"name": "default"}})
    yield api
    await store.stop()


def rt(plural: str, group: str = "", version: str = "v1"):
    return REGISTRY.get(group, version, plural)


async def test_update_without_cluster_ip_keeps_the_allocated_one(api: ObjectAPI) -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}}
    await api.create(rt("services"), "default", svc)
    updated = await api.update(rt("services"), "default", "s", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 81}]}})
    assert updated["spec"]["clusterIP"] == "10.96.0.10"
    assert updated["spec"]["ports"][0]["port"] == 81


async def test_node_keeps_status_on_create_but_pod_does_not(api: ObjectAPI) -> None:
    node = await api.create(rt("nodes"), "", {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2"}}})
    assert node["status"]["capacity"] == {"cpu": "2"}
    pod = await api.create(
        rt("pods"), "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Running"}},
    )
    assert pod["status"]["phase"] == "Pending"


async def test_generation_moves_only_on_spec_change_and_noop_writes_nothing(api: ObjectAPI) -> None:
    dep = {
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }
    d = await api.create(rt("deployments", "apps"), "default", dep)
    assert d["metadata"]["generation"] == 1
    d2 = await api.guaranteed_update(rt("deployments", "apps"), "default", "d", lambda o: {**o, "metadata": {**o["metadata"], "labels": {"x": "y"}}})
    assert d2["metadata"]["generation"] == 1
    d3 = await api.guaranteed_update(rt("deployments", "apps"), "default", "d", lambda o: {**o, "spec": {**o["spec"], "replicas": 5}})
    assert d3["metadata"]["generation"] == 2
    same = await api.update(rt("deployments", "apps"), "default", "d", d3)
    assert same["metadata"]["resourceVersion"] == d3["metadata"]["resourceVersion"]


async def test_namespace_deletion_marks_terminating_and_blocks_creates(api: ObjectAPI) -> None:
    ns_rt = rt("namespaces")
    await api.create(ns_rt, "", {"metadata": {"name": "team"}})
    ns, gone = await api.delete(ns_rt, "", "team")
    assert not gone and ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    with pytest.raises(APIError) as e:
        await api.create(rt("configmaps"), "team", {"metadata": {"name": "c"}})
    assert e.value.code == 403 and "being terminated" in e.value.message
    # the main resource cannot drop the finalizer; /finalize can, and then the namespace goes
    kept = await api.update(ns_rt, "", "team", {**ns, "spec": {"finalizers": []}})
    assert kept["spec"]["finalizers"] == ["kubernetes"]
    await api.update(ns_rt, "", "team", {**ns, "spec": {"finalizers": []}}, subresource="finalize")
    with pytest.raises(APIError) as e:
        api.get(ns_rt, "", "team")
    assert e.value.code == 404


async def test_create_in_missing_namespace_is_not_found(api: ObjectAPI) -> None:
    with pytest.raises(APIError) as e:
        await api.create(rt("configmaps"), "nope", {"metadata": {"name": "c"}})
    assert e.value.code == 404 and e.value.message == 'namespaces "nope" not found'


async def test_pods_get_default_not_ready_and_unreachable_tolerations(api: ObjectAPI) -> None:
    pod = await api.create(
        rt("pods"), "default",
        {"metadata": {"name": "t"}, "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                             "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                                              "effect": "NoExecute", "tolerationSeconds": 5}]}},
    )
    tol = {t["key"]: t.get("tolerationSeconds") for t in pod["spec"]["tolerations"]}
    assert tol == {"node.kubernetes.io/unreachable": 5, "node.kubernetes.io/not-ready": 300}
