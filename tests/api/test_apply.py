"""Server-side apply and managedFields tracking through ObjectAPI (and the in-process client)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api.errors import APIError
from cloudlet.api.fieldmanager import LAST_APPLIED
from cloudlet.api.objects import ObjectAPI
from cloudlet.client.interface import ResourceRef
from cloudlet.client.local import LocalClient
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.store.backend import MemoryBackend
from cloudlet.store.store import Store

CM = REGISTRY.get("", "v1", "configmaps")
DEPLOY = REGISTRY.get("apps", "v1", "deployments")


@pytest.fixture
async def api():
    store = Store(MemoryBackend())
    await store.start()
    api = ObjectAPI(store)
    await api.create(REGISTRY.get("", "v1", "namespaces"), "", {"metadata": {"name": "default"}})
    yield api
    await store.stop()


def cm(name: str = "x", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{e['manager']}/{e['operation']}{'/' + e['subresource'] if e.get('subresource') else ''}": e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


async def apply(api: ObjectAPI, body: dict[str, Any], manager: str, *, rt: ResourceType = CM, force: bool = False,
                subresource: str = "", dry_run: bool = False) -> tuple[dict[str, Any], bool]:
    return await api.apply(rt, "default", body["metadata"]["name"], json.loads(json.dumps(body)), manager=manager,
                           force=force, subresource=subresource, dry_run=dry_run)


# --- tracking on every write ---------------------------------------------------------------


async def test_create_and_update_track_ownership(api: ObjectAPI) -> None:
    created = await api.create(CM, "default", cm(a="1", b="2"), manager="kubectl-create")
    assert managers(created) == {"kubectl-create/Update": {"f:data": {".": {}, "f:a": {}, "f:b": {}}}}
    entry = created["metadata"]["managedFields"][0]
    assert entry["apiVersion"] == "v1" and entry["fieldsType"] == "FieldsV1" and entry["time"].endswith("Z")
    # another manager changes a and adds c: it owns them, the creator keeps b (and data itself)
    body = {**created, "data": {"a": "9", "b": "2", "c": "3"}}
    updated = await api.update(CM, "default", "x", body, manager="kubectl-edit")
    assert managers(updated) == {
        "kubectl-create/Update": {"f:data": {".": {}, "f:b": {}}},
        "kubectl-edit/Update": {"f:data": {"f:a": {}, "f:c": {}}},
    }
    # removing the only field a manager owns drops the manager
    body = {**updated, "data": {"a": "9", "c": "3"}}
    updated = await api.update(CM, "default", "x", body, manager="kubectl-edit")
    assert set(managers(updated)) == {"kubectl-create/Update", "kubectl-edit/Update"}
    body = {**updated, "data": {"c": "3"}}
    body["metadata"] = {**updated["metadata"], "labels": {"l": "v"}}
    updated = await api.update(CM, "default", "x", body, manager="m3")
    assert managers(updated)["m3/Update"] == {"f:metadata": {"f:labels": {".": {}, "f:l": {}}}}
    assert "f:a" not in json.dumps(managers(updated))


async def test_noop_update_changes_nothing(api: ObjectAPI) -> None:
    created = await api.create(CM, "default", cm(a="1"), manager="one")
    same = await api.update(CM, "default", "x", dict(created), manager="two")
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert same["metadata"]["managedFields"] == created["metadata"]["managedFields"]


async def test_managed_fields_in_requests(api: ObjectAPI) -> None:
    created = await api.create(CM, "default", cm(a="1"), manager="one")
    # invalid entries are ignored: the stored ones stay
    bad = {**created, "metadata": {**created["metadata"], "managedFields": [{"manager": "x", "operation": "Bogus"}]}}
    kept = await api.update(CM, "default", "x", bad, manager="two")
    assert managers(kept) == managers(created)
    # a client's own (valid) entries replace the stored ones, in canonical form
    mine = [{"manager": "hand", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}, "x:future": {}}}}]
    edited = await api.update(CM, "default", "x", {**kept, "metadata": {**kept["metadata"], "managedFields": mine}}, manager="two")
    assert managers(edited) == {"hand/Update": {"f:data": {"f:a": {}}}}
    # an empty list resets tracking; further updates are not tracked until an apply
    reset = await api.update(CM, "default", "x", {**edited, "metadata": {**edited["metadata"], "managedFields": []}}, manager="two")
    assert "managedFields" not in reset["metadata"]
    more = await api.update(CM, "default", "x", {**reset, "data": {"a": "2"}}, manager="two")
    assert "managedFields" not in more["metadata"]
    # the first apply makes the fields that were there owned by before-first-apply
    applied, created_now = await apply(api, {**cm(), "data": {"z": "1"}}, "ssa")
    assert not created_now
    assert managers(applied) == {
        "ssa/Apply": {"f:data": {"f:z": {}}},
        "before-first-apply/Update": {"f:data": {".": {}, "f:a": {}}},
    }


async def test_status_writes_are_recorded_with_their_subresource(api: ObjectAPI) -> None:
    dep = {
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 7},
    }
    created = await api.create(DEPLOY, "default", dep, manager="creator")
    assert "f:status" not in json.dumps(managers(created))
    st = await api.update(DEPLOY, "default", "d", {**created, "status": {"replicas": 1}}, subresource="status", manager="ctrl")
    assert managers(st)["ctrl/Update/status"] == {"f:status": {"f:replicas": {}}}
    scaled = await api.update_scale(DEPLOY, "default", "d", lambda s: {**s, "spec": {"replicas": 4}}, manager="kubectl")
    assert scaled["spec"]["replicas"] == 4
    assert managers(api.get(DEPLOY, "default", "d"))["kubectl/Update/scale"] == {"f:spec": {"f:replicas": {}}}



async def test_update_managers_are_capped_at_ten(api: ObjectAPI) -> None:
    obj = await api.create(CM, "default", cm(), manager="m0")
    for i in range(12):
        obj = await api.guaranteed_update(CM, "default", "x", lambda o, i=i: {**o, "data": {**(o.get("data") or {}), f"k{i}": "v"}},
                                          manager=f"m{i + 1}")
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) == 10 and "ancient-changes" in names


# --- apply ----------------------------------------------------------------------------------


async def test_apply_creates_then_updates_and_removes_what_it_stopped_applying(api: ObjectAPI) -> None:
    obj, created = await apply(api, cm(a="1", b="2"), "kubectl")
    assert created and obj["data"] == {"a": "1", "b": "2"}
    assert managers(obj) == {"kubectl/Apply": {"f:data": {"f:a": {}, "f:b": {}}}}
    again, created = await apply(api, cm(a="1", b="2"), "kubectl")
    assert not created and again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    changed, _ = await apply(api, cm(a="1", b="3"), "kubectl")
    assert changed["data"] == {"a": "1", "b": "3"}
    smaller, _ = await apply(api, cm(a="1"), "kubectl")
    assert smaller["data"] == {"a": "1"}
    gone, _ = await apply(api, {**cm(), "data": None} | {"metadata": {"name": "x", "labels": {"l": "1"}}}, "kubectl")
    assert "data" not in gone and gone["metadata"]["labels"] == {"l": "1"}


async def test_apply_conflicts_force_and_shared_ownership(api: ObjectAPI) -> None:
    await api.create(CM, "default", cm(a="1"), manager="kubectl-client-side-apply")
    with pytest.raises(APIError) as e:
        await apply(api, cm(a="2"), "mgr")
    assert e.value.code == 409
    assert e.value.message == 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.a'
    assert e.value.details == {"causes": [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-client-side-apply" using v1', "field": ".data.a"}
    ]}
    # the same value is no conflict: both own it
    shared, _ = await apply(api, cm(a="1"), "mgr")
    assert "f:a" in json.dumps(managers(shared)["mgr/Apply"]) and "f:a" in json.dumps(managers(shared)["kubectl-client-side-apply/Update"])
    # force moves ownership
    forced, _ = await apply(api, cm(a="2"), "other", force=True)
    assert forced["data"] == {"a": "2"}
    assert set(managers(forced)) == {"other/Apply", "kubectl-client-side-apply/Update"}
    assert managers(forced)["kubectl-client-side-apply/Update"] == {"f:data": {}}  # still owns .data itself


async def test_applier_does_not_remove_fields_another_manager_owns(api: ObjectAPI) -> None:
    await apply(api, cm(a="1", b="2"), "a")
    await apply(api, cm(b="2"), "b")
    obj, _ = await apply(api, cm(a="1"), "a")
    assert obj["data"] == {"a": "1", "b": "2"}
    obj, _ = await apply(api, cm(), "b")
    assert obj["data"] == {"a": "1"}


async def test_apply_map_lists_are_co_owned_by_key(api: ObjectAPI) -> None:
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": "busybox", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
            ]}},
        },
    }
    obj, created = await apply(api, dep, "kubectl", rt=DEPLOY)
    assert created and obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    extra = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}}
    obj, _ = await apply(api, extra, "sidecar", rt=DEPLOY)
    env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    # kubectl re-applies its config: B stays (owned by sidecar); dropping A removes it
    obj, _ = await apply(api, dep, "kubectl", rt=DEPLOY)
    assert [e["name"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]] == ["A", "B"]
    del dep["spec"]["template"]["spec"]["containers"][0]["env"]
    obj, _ = await apply(api, dep, "kubectl", rt=DEPLOY)
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]
    # status in an apply to the main resource is ignored and not owned
    obj, _ = await apply(api, {**dep, "status": {"replicas": 9}}, "kubectl", rt=DEPLOY)
    assert obj["status"].get("replicas") != 9 and "f:status" not in json.dumps(managers(obj))


async def test_apply_to_status_subresource(api: ObjectAPI) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    with pytest.raises(APIError) as e:
        await apply(api, {**dep, "status": {"replicas": 1}}, "ctrl", rt=DEPLOY, subresource="status")
    assert e.value.code == 404
    await apply(api, dep, "kubectl", rt=DEPLOY)
    obj, _ = await apply(api, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"ignored": "y"}},
                               "spec": {"replicas": 50}, "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}},
                         "ctrl", rt=DEPLOY, subresource="status")
    assert obj["status"]["replicas"] == 1 and obj["spec"]["replicas"] != 50 and "labels" not in obj["metadata"]
    assert managers(obj)["ctrl/Apply/status"] == {
        "f:status": {"f:conditions": {'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}
    }


async def test_apply_validation_and_preconditions(api: ObjectAPI) -> None:
    async def fails(body: Any, code: int, text: str, **kw: Any) -> None:
        with pytest.raises(APIError) as e:
            await api.apply(CM, "default", "x", body, manager="m", **kw)
        assert e.value.code == code and text in e.value.message, e.value.message

    await fails({"kind": "ConfigMap", "metadata": {"name": "x"}}, 400, "Incorrect version specified in apply patch. Specified patch version: , expected: v1")
    await fails({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}, 400, "invalid object type: /v1, Kind=Secret")
    await fails({**cm(), "metadata": {"name": "x", "managedFields": []}}, 400, "metadata.managedFields must be nil")
    await fails(cm(name="y"), 400, "does not match the name on the URL")
    await fails({**cm(), "bogus": 1}, 400, "failed to create typed patch object (default/x; /v1, Kind=ConfigMap): .bogus: field not declared in schema")
    await fails({**cm(), "metadata": {"name": "x", "resourceVersion": "1"}}, 409, "the object has been modified")
    obj, _ = await apply(api, cm(a="1"), "m")
    await fails({**cm(a="2"), "metadata": {"name": "x", "resourceVersion": "999"}}, 409, "the object has been modified")
    ok, _ = await api.apply(CM, "default", "x", {**cm(a="2"), "metadata": {"name": "x", "resourceVersion": obj["metadata"]["resourceVersion"]}}, manager="m")
    assert ok["data"] == {"a": "2"}
    dry, created = await api.apply(CM, "default", "new", cm(name="new", a="1"), manager="m", dry_run=True)
    assert created and dry["data"] == {"a": "1"}
    with pytest.raises(APIError):
        api.get(CM, "default", "new")


async def test_kubectl_takes_over_client_side_apply_fields(api: ObjectAPI) -> None:
    last = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}, "data": {"a": "1"}})
    body = cm(a="1")
    body["metadata"]["annotations"] = {LAST_APPLIED: last}
    await api.create(CM, "default", body, manager="kubectl-client-side-apply")
    with pytest.raises(APIError):
        await apply(api, cm(a="2"), "someone-else")
    obj, _ = await apply(api, cm(a="2"), "kubectl")
    assert obj["data"] == {"a": "2"}
    assert json.loads(obj["metadata"]["annotations"][LAST_APPLIED])["data"] == {"a": "2"}
    assert "f:a" in json.dumps(managers(obj)["kubectl/Apply"])


async def test_custom_resource_apply_uses_its_schema(api: ObjectAPI) -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}},
        "plain": {"type": "array", "items": {"type": "string"}},
    }}}}
    crt = ResourceType(group="example.com", version="v1", kind="Widget", plural="widgets", singular="widget",
                       namespaced=True, openapi_schema=schema, strategic_merge=False)
    w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
         "spec": {"items": [{"name": "a", "v": 1}], "plain": ["x"]}}
    await apply(api, w, "one", rt=crt)
    obj, _ = await apply(api, {**w, "spec": {"items": [{"name": "b", "v": 2}], "plain": ["y"]}}, "two", rt=crt, force=True)
    assert obj["spec"]["items"] == [{"name": "a", "v": 1}, {"name": "b", "v": 2}]  # granular map-list
    assert obj["spec"]["plain"] == ["y"]  # atomic list: replaced, ownership moved
    assert "f:plain" not in json.dumps(managers(obj)["one/Apply"])


async def test_local_client_apply(api: ObjectAPI) -> None:
    client = LocalClient(api)
    ref = ResourceRef("", "v1", "configmaps")
    body = {**cm(a="1"), "metadata": {"name": "x", "namespace": "default"}}
    obj = await client.apply(ref, body, field_manager="ctrl")
    assert obj["data"] == {"a": "1"} and body["metadata"] == {"name": "x", "namespace": "default"}
    with pytest.raises(APIError) as e:
        await client.apply(ref, {**body, "data": {"a": "2"}}, field_manager="other")
    assert e.value.code == 409
    obj = await client.apply(ref, {**body, "data": {"a": "2"}}, field_manager="other", force=True)
    assert obj["data"] == {"a": "2"}
    with pytest.raises(APIError) as e:
        await client.apply(ref, body, field_manager="")
    assert e.value.code == 422
