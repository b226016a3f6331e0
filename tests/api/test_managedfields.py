"""Field sets, FieldsV1, managedFields entries and the structural walks behind them."""

from __future__ import annotations

import copy
import json

import pytest

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api import fieldmanager
from cloudlet.api.fieldtypes import LIST, MAP, openapi_atom, root_atom
from cloudlet.api.managedfields import (
    ManagerEntry,
    conflict_error,
    decode_fields,
    decode_managed,
    encode_fields,
    encode_managed,
    is_reset,
    key_pe,
    manager_from_user_agent,
    manager_name,
    path_string,
    validate_field_manager,
    value_pe,
)
from cloudlet.api.typedvalue import (
    SchemaError,
    compare,
    ensure_named,
    field_set,
    merge,
    remove_items,
)
from cloudlet.resources.registry import REGISTRY

DEPLOYMENT = root_atom("apps/v1", "Deployment")
CONFIGMAP = root_atom("v1", "ConfigMap")


def deployment(**spec_extra: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "busybox", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]}
                    ]
                },
            },
            **spec_extra,
        },
    }


# --- path elements and FieldsV1 ---------------------------------------------------


def test_path_elements_use_kubernetes_syntax() -> None:
    assert key_pe({"protocol": "TCP", "containerPort": 80}) == 'k:{"containerPort":80,"protocol":"TCP"}'
    assert value_pe("kubernetes") == 'v:"kubernetes"'
    assert key_pe({"name": "a<b"}) == 'k:{"name":"a\\u003cb"}'  # Go escapes HTML characters
    path = ("f:spec", "f:containers", key_pe({"name": "c"}), "f:ports", key_pe({"containerPort": 80, "protocol": "TCP"}))
    assert path_string(path) == '.spec.containers[name="c"].ports[containerPort=80,protocol="TCP"]'
    assert path_string(("f:metadata", "f:finalizers", value_pe("x"), )) == '.metadata.finalizers[="x"]'
    assert path_string(("f:data", "f:a")) == ".data.a"


def test_fields_v1_round_trip_with_dot_for_members_that_have_children() -> None:
    paths = {
        ("f:data",),
        ("f:data", "f:a"),
        ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:containers", key_pe({"name": "c"})),
        ("f:spec", "f:containers", key_pe({"name": "c"}), "f:image"),
        ("f:metadata", "f:finalizers", value_pe("b")),
        ("f:metadata", "f:finalizers", value_pe("a")),
    }
    raw = encode_fields(paths)
    assert raw == {
        "f:data": {".": {}, "f:a": {}},
        "f:metadata": {"f:finalizers": {'v:"a"': {}, 'v:"b"': {}}, "f:labels": {"f:app": {}}},
        "f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}}}},
    }
    assert decode_fields(raw) == paths
    assert decode_fields(json.loads(json.dumps(raw))) == paths


def test_fields_v1_orders_fields_keys_values_indexes() -> None:
    raw = encode_fields({("i:1",), ('v:"x"',), ('k:{"a":1}',), ("f:z",), ("f:a",), ('k:{"a":0}',)})
    assert list(raw) == ["f:a", "f:z", 'k:{"a":0}', 'k:{"a":1}', 'v:"x"', "i:1"]


def test_fields_v1_decoding_normalises_and_rejects() -> None:
    assert decode_fields({'k:{"b": 2, "a": 1}': {}}) == {('k:{"a":1,"b":2}',)}
    assert decode_fields({"x:unknown": {}, "f:a": {}}) == {("f:a",)}  # unknown element types are dropped
    with pytest.raises(ValueError):
        decode_fields({"f:a": 1})
    with pytest.raises(ValueError):
        decode_fields({"k:{not json": {}})
    with pytest.raises(ValueError):
        decode_fields({"nocolon": {}})
    with pytest.raises(ValueError):
        decode_fields([])


# --- managedFields entries --------------------------------------------------------------


def entry(manager: str, op: str = "Update", api_version: str = "v1", time: str | None = "2024-01-01T00:00:00Z", **kw: object) -> dict:
    out = {"manager": manager, "operation": op, "apiVersion": api_version, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}
    if time:
        out["time"] = time
    out.update(kw)
    return out


def test_managed_entries_decode_encode_and_sort_like_kubernetes() -> None:
    managed = decode_managed([
        entry("z", time="2024-01-01T00:00:00Z"),
        entry("b", time="2023-01-01T00:00:00Z"),
        entry("a", op="Apply", time="2025-01-01T00:00:00Z"),
        entry("s", subresource="status"),
    ])
    out = encode_managed(managed)
    assert [e["manager"] for e in out] == ["a", "b", "s", "z"]
    assert out[0] == entry("a", op="Apply", time="2025-01-01T00:00:00Z")
    assert out[2]["subresource"] == "status"


def test_managed_entry_identity_ignores_api_version_for_appliers() -> None:
    managed = decode_managed([entry("m", op="Apply", api_version="v1"), entry("m", op="Apply", api_version="v2")])
    assert len(managed) == 1
    managed = decode_managed([entry("m", api_version="v1"), entry("m", api_version="v2")])
    assert len(managed) == 2


@pytest.mark.parametrize(
    "bad",
    [
        [entry("m", op="Patch")],
        [entry("m", api_version="")],
        [{**entry("m"), "fieldsType": "FieldsV2"}],
        [{k: v for k, v in entry("m").items() if k != "fieldsType"}],
        [entry("m", fieldsV1={"f:a": 1})],
        ["nope"],
        {"not": "a list"},
    ],
)
def test_invalid_managed_entries_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        decode_managed(bad)


def test_reset_forms() -> None:
    assert is_reset([]) and is_reset([{}])
    assert not is_reset(None) and not is_reset([entry("m")])


def test_manager_names_from_user_agents() -> None:
    assert manager_from_user_agent("kubectl/v1.32.5 (linux/amd64) kubernetes/abc") == "kubectl"
    assert manager_from_user_agent("OpenAPI-Generator/31.0.0/python") == "OpenAPI-Generator"
    assert manager_from_user_agent("Go-http-client/2.0") == "Go-http-client"
    assert manager_from_user_agent("a\x00b\tc") == "abc"
    assert len(manager_from_user_agent("x" * 300)) == 128
    assert manager_name("mine", "kubectl/v1") == "mine"
    assert manager_name("", None) == ""
    assert validate_field_manager("ok") == []
    assert [e.type for e in validate_field_manager("x" * 129)] == ["TooLong"]
    assert "invalid character" in validate_field_manager("a\nb")[0].detail


def test_conflict_error_has_kubernetes_message_and_causes() -> None:
    e = ManagerEntry("kubectl-client-side-apply", "Update", "v1", set())
    err = conflict_error({e.ident(): (e, {("f:data", "f:a")})})
    assert err.code == 409 and err.reason == "Conflict"
    assert err.message == 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.a'
    assert err.details == {
        "causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-client-side-apply" using v1', "field": ".data.a"}]
    }
    a = ManagerEntry("a", "Apply", "v1", set())
    s = ManagerEntry("b", "Update", "v1", set(), subresource="status")
    err = conflict_error({a.ident(): (a, {("f:data", "f:x"), ("f:data", "f:y")}), s.ident(): (s, {("f:status",)})})
    assert err.message == (
        'Apply failed with 3 conflicts: conflicts with "a":\n- .data.x\n- .data.y\n'
        'conflicts with "b" with subresource "status" using v1:\n- .status'
    )


# --- structural types --------------------------------------------------------------------


def test_builtin_types_follow_kubernetes_markers() -> None:
    pod_spec = DEPLOYMENT.fields["spec"].fields["template"].fields["spec"]
    containers = pod_spec.fields["containers"]
    assert containers.kind == LIST and containers.keys == ("name",)
    ports = containers.elem.fields["ports"]
    assert ports.keys == ("containerPort", "protocol") and ports.key_defaults == {"protocol": "TCP"}
    assert containers.elem.fields["args"].atomic
    assert pod_spec.fields["tolerations"].atomic
    assert DEPLOYMENT.fields["spec"].fields["selector"].atomic  # LabelSelector is +structType=atomic
    meta = DEPLOYMENT.fields["metadata"]
    assert meta.fields["finalizers"].kind == LIST and not meta.fields["finalizers"].atomic and not meta.fields["finalizers"].keys
    assert meta.fields["ownerReferences"].keys == ("uid",)
    assert meta.fields["labels"].kind == MAP and not meta.fields["labels"].fields


def test_custom_resource_types_come_from_the_openapi_schema() -> None:
    atom = openapi_atom({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                        "items": {"type": "object", "properties": {"port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}},
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "sel": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
    })
    spec = atom.fields["spec"]
    assert spec.fields["ports"].keys == ("port", "protocol") and spec.fields["ports"].key_defaults == {"protocol": "TCP"}
    assert spec.fields["tags"].kind == LIST and not spec.fields["tags"].atomic and not spec.fields["tags"].keys
    assert spec.fields["args"].atomic and spec.fields["sel"].atomic
    cr = {"spec": {"ports": [{"port": 80}], "free": {"x": {"y": 1}}}}
    fs = field_set(cr, atom)
    assert ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:port") in fs
    assert ("f:spec", "f:free", "f:x") in fs  # deduced maps own their keys
    assert ("f:spec", "f:free", "f:x", "f:y") in fs


# --- walks --------------------------------------------------------------------------------


def test_field_set_counts_struct_fields_only_through_their_leaves() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {}}, "data": {"a": "1"}}
    assert field_set(cm, CONFIGMAP) == {
        ("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:labels"), ("f:data", "f:a"),
    }
    fs = field_set(deployment(), DEPLOYMENT)
    web = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')
    assert web in fs and (*web, "f:image") in fs
    assert ("f:spec", "f:selector") in fs and ("f:spec", "f:selector", "f:matchLabels") not in fs
    assert ("f:spec",) not in fs and ("f:spec", "f:template") not in fs


def test_field_set_refuses_duplicates_and_keyless_items_when_strict() -> None:
    dup = deployment()
    c = dup["spec"]["template"]["spec"]["containers"]
    c.append(dict(c[0]))
    field_set(dup, DEPLOYMENT)  # live objects may have duplicates
    with pytest.raises(SchemaError, match=r'duplicate entries for key \[name="web"\]'):
        field_set(dup, DEPLOYMENT, strict=True)
    keyless = deployment()
    keyless["spec"]["template"]["spec"]["containers"] = [{"image": "x"}]
    with pytest.raises(SchemaError, match="omits all key fields"):
        field_set(keyless, DEPLOYMENT)


def test_compare_reports_added_modified_removed() -> None:
    old = {"data": {"a": "1", "b": "2"}}
    new = {"data": {"a": "9", "c": "3"}, "binaryData": {}}
    c = compare(old, new, CONFIGMAP)
    assert c.modified == {("f:data", "f:a")}
    assert c.added == {("f:data", "f:c"), ("f:binaryData",)}
    assert c.removed == {("f:data", "f:b")}
    created = compare(None, {"data": {"a": "1"}}, CONFIGMAP)
    assert created.added == {("f:data",), ("f:data", "f:a")}
    assert compare(new, copy.deepcopy(new), CONFIGMAP).same()


def test_merge_keeps_live_order_and_merges_map_lists_by_key() -> None:
    live = deployment()
    live["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s"})
    cfg = {"spec": {"template": {"spec": {"containers": [
        {"name": "new", "image": "n"},
        {"name": "web", "image": "busybox:2", "env": [{"name": "B", "value": "2"}]},
    ]}}}}
    out = merge(live, cfg, DEPLOYMENT)
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["new", "web", "side"]
    assert cs[1]["image"] == "busybox:2" and [e["name"] for e in cs[1]["env"]] == ["A", "B"]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"  # inputs untouched
    # atomic values are replaced whole; a null deletes
    out = merge(live, {"spec": {"selector": {"matchLabels": {"x": "y"}}, "replicas": None}}, DEPLOYMENT)
    assert out["spec"]["selector"] == {"matchLabels": {"x": "y"}} and "replicas" not in out["spec"]


def test_remove_items_and_ensure_named() -> None:
    obj = deployment()
    web = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')
    out = remove_items(obj, {(*web, "f:env", 'k:{"name":"A"}'), ("f:metadata", "f:labels", "f:app")}, DEPLOYMENT)
    assert "env" not in out["spec"]["template"]["spec"]["containers"][0]  # emptied lists go
    assert "labels" not in out["metadata"]
    assert obj["metadata"]["labels"] == {"app": "web"}
    named = ensure_named({(*web, "f:image"), ("f:metadata", "f:labels", "f:app")}, DEPLOYMENT)
    assert ("f:spec",) in named and ("f:spec", "f:template", "f:spec", "f:containers") in named
    assert ("f:metadata", "f:labels") in named
    assert web not in named  # list items are not named fields


def test_fast_create_tracking_equals_the_general_comparison() -> None:
    rt = REGISTRY.get("apps", "v1", "deployments")
    t = fieldmanager.target(rt)
    obj = deployment()
    obj["metadata"]["annotations"] = {}
    obj["status"] = {"replicas": 1}
    tracked = copy.deepcopy(obj)
    fieldmanager.track_update(t, None, tracked, "m")
    (mf,) = tracked["metadata"]["managedFields"]
    c = compare(None, obj, t.atom).filter(t.keep)
    assert mf["fieldsV1"] == encode_fields((c.added | c.modified) - fieldmanager._STRIP)
    assert "f:status" not in mf["fieldsV1"]  # reset field of the main resource
    assert mf["manager"] == "m" and mf["operation"] == "Update" and mf["apiVersion"] == "apps/v1"


async def test_stored_objects_share_equal_managed_fields_and_stay_independent() -> None:
    """Equal managedFields of stored objects are one value in memory (also after a
    restart), reads are unchanged, and a write to one object leaves the others alone."""
    from cloudlet.api.objects import ObjectAPI
    from cloudlet.store.backend import MemoryBackend
    from cloudlet.store.store import Store, copy_obj

    backend = MemoryBackend()
    store = Store(backend)
    await store.start()
    api = ObjectAPI(store)
    ns, cm = REGISTRY.get("", "v1", "namespaces"), REGISTRY.get("", "v1", "configmaps")
    await api.create(ns, "", {"metadata": {"name": "default"}})
    for i in range(3):
        body = {"metadata": {"name": f"c{i}", "labels": {"a": "b"}}, "data": {"k": str(i)}}
        await api.create(cm, "default", body, manager="m")
    objs = [api.get(cm, "default", f"c{i}") for i in range(3)]
    trees = [o["metadata"]["managedFields"][0]["fieldsV1"] for o in objs]
    assert trees[0] is trees[1] is trees[2]
    assert trees[0] == {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}
    before = [copy_obj(o) for o in objs]
    await api.guaranteed_update(cm, "default", "c1", lambda o: {**o, "data": {"k": "1", "new": "x"}}, manager="m")
    c1 = api.get(cm, "default", "c1")
    assert "f:new" in c1["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]
    assert [api.get(cm, "default", f"c{i}") for i in (0, 2)] == [before[0], before[2]]
    await store.stop()

    replayed = Store(backend)
    await replayed.start()
    api2 = ObjectAPI(replayed)
    again = [api2.get(cm, "default", f"c{i}") for i in (0, 2)]
    assert again == [before[0], before[2]]
    assert again[0]["metadata"]["managedFields"][0]["fieldsV1"] is again[1]["metadata"]["managedFields"][0]["fieldsV1"]
    await replayed.stop()


def test_shared_managed_fields_only_replace_values_with_the_same_json() -> None:
    from cloudlet.api.managedfields import SharedManagedFields

    share = SharedManagedFields()

    def obj(**extra: object) -> dict:
        entry = {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:data": {}}, **extra}
        return {"metadata": {"managedFields": [entry]}}

    kept = [obj(x=v) for v in (1, 1.0, True, None, float("nan"))]
    for o in kept:
        share(o)
    del o
    values = [o["metadata"]["managedFields"][0]["x"] for o in kept]
    assert [type(v) for v in values] == [int, float, bool, type(None), float] and values[4] != values[4]
    trees = {id(o["metadata"]["managedFields"][0]["fieldsV1"]) for o in kept}
    assert len(trees) == 1  # the tree is shared even where the entries are not
    assert share.size() > 0
    kept.clear()
    share.sweep()
    assert share.size() == 0  # nothing refers to the shared values any more
