"""Serving custom resources: types built from CRDs, printer columns, the CRD controller."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.interface import ResourceRef
from cloudlet.client.testing import eventually, local_api, minimal_registry
from cloudlet.controllers.crd import CRD_REF, CRDController, serve_stored_crds
from cloudlet.resources.apiextensions import CRDS
from cloudlet.resources.crd_printer import evaluate, parse, printer
from cloudlet.resources.customresource import CustomResourceType, build_types, serving_for
from cloudlet.resources.registry import Registry

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": 1},
            "size": {"type": "string", "enum": ["small", "large"]},
            "color": {"type": "string", "default": "blue"},
        }},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}},
    },
}


def crd(name: str = "widgets", group: str = "example.com", kind: str = "Widget", **names: Any) -> dict[str, Any]:
    v1 = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": SCHEMA},
          "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                                   "labelSelectorPath": ".status.selector"}},
          "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                                       {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1}]}
    beta = copy.deepcopy(v1)
    beta.update(name="v1beta1", storage=False)
    beta["schema"] = {"openAPIV3Schema": copy.deepcopy(SCHEMA)}
    beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["legacy"] = {"type": "string", "default": "old"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{name}.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": name, "kind": kind, **names},
                 "versions": [v1, beta]},
    }


def names(c: dict[str, Any]) -> dict[str, Any]:
    n = dict(c["spec"]["names"])
    n.setdefault("singular", n["kind"].lower())
    n.setdefault("listKind", n["kind"] + "List")
    return n


# --- types built from a CRD ----------------------------------------------------------


def test_one_type_per_served_version_sharing_storage() -> None:
    c = crd(shortNames=["wd"], categories=["all"], listKind="WidgetCollection")
    c["spec"]["versions"].append({**c["spec"]["versions"][1], "name": "v0", "served": False})
    rts = build_types(c, names(c))
    assert [rt.version for rt in rts] == ["v1", "v1beta1"]
    v1, beta = rts
    assert isinstance(v1, CustomResourceType) and v1.list_kind == "WidgetCollection"
    assert v1.storage_key == beta.storage_key == "example.com/widgets"
    assert v1.short_names == ("wd",) and v1.categories == ("all",) and v1.namespaced
    assert v1.subresources == ("status", "scale") and v1.has_status
    assert v1.scale is not None and (v1.scale.spec_replicas, v1.scale.status_replicas, v1.scale.label_selector) == (
        "spec.replicas", "status.replicas", "status.selector")
    assert not v1.strategic_merge and v1.openapi_schema == SCHEMA
    assert v1.preferred and not beta.preferred
    assert [c.name for c in v1.columns] == ["Name", "Replicas", "Color"] and v1.columns[2].priority == 1


def test_conversion_rewrites_api_version_and_applies_the_version_schema() -> None:
    c = crd()
    v1, beta = build_types(c, names(c))
    obj = {"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"legacy": "x", "size": "small"}}
    assert beta.to_storage is not None and v1.from_storage is not None and beta.from_storage is not None
    stored = beta.to_storage(obj)
    assert stored["apiVersion"] == "example.com/v1" and "legacy" not in stored["spec"]  # pruned by the storage schema
    assert obj["apiVersion"] == "example.com/v1beta1"  # the input is not mutated
    read = beta.from_storage(stored)
    assert read["apiVersion"] == "example.com/v1beta1" and read["spec"]["legacy"] == "old"
    assert read["spec"]["color"] == "blue"  # defaults on read
    assert "color" not in stored["spec"]


def test_hooks_prune_default_validate() -> None:
    c = crd()
    rt = build_types(c, names(c))[0]
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "ns"},
           "spec": {"size": "huge", "nope": 1}}
    assert rt.prune_unknown is not None and rt.prune_unknown(obj) == ["spec.nope"]
    rt.default(obj)
    assert obj["spec"] == {"size": "huge", "replicas": 1, "color": "blue"}
    assert [str(e) for e in rt.validate(obj, None)] == ['spec.size: Unsupported value: "huge": supported values: "small", "large"']
    obj["spec"]["size"] = "small"
    obj["spec"]["replicas"] = -2
    assert [str(e) for e in rt.validate(obj, None)] == [".spec.replicas: Invalid value: -2: should be a non-negative integer"]


def test_printer_columns() -> None:
    p = printer([
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Count", "type": "integer", "jsonPath": ".spec.count"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.count"},
        {"name": "On", "type": "boolean", "jsonPath": ".spec.on"},
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
        {"name": "First", "type": "string", "jsonPath": ".spec.tags[0]"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "When", "type": "date", "jsonPath": ".spec.when"},
    ])
    obj = {"metadata": {"name": "w"}, "spec": {"count": 3, "on": True, "tags": ["a", "b"], "when": "not a time"},
           "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    assert p.row(obj) == ["w", "True", 3, 3.0, True, '["a","b"]', "a", None, "<invalid>"]
    assert [c.name for c in printer(None).columns] == ["Name", "Age"]


@pytest.mark.parametrize(
    ("path", "want"),
    [
        (".a.b", [1]),
        (".list[*].n", [1, 2, 3]),
        (".list[-1].n", [3]),
        (".list[0:2].n", [1, 2]),
        (".list[?(@.n > 1)].n", [2, 3]),
        (".list[?(@.tag)].n", [2]),
        ("..n", [1, 2, 3]),
        (".a['b']", [1]),
        ("{.a.b}", [1]),
        (".missing.x", []),
    ],
)
def test_jsonpath(path: str, want: list[Any]) -> None:
    data = {"a": {"b": 1}, "list": [{"n": 1}, {"n": 2, "tag": "t"}, {"n": 3}]}
    assert evaluate(parse(path), data) == want


# --- serving in a registry -------------------------------------------------------------


def test_serving_swaps_types_in_and_out() -> None:
    reg = Registry()
    serving = serving_for(reg)
    c = crd()
    serving.serve(c, names(c))
    assert reg.get("example.com", "v1", "widgets") is not None and reg.get("example.com", "v1beta1", "widgets") is not None
    c["spec"]["versions"][1]["served"] = False
    serving.serve(c, names(c))
    assert reg.get("example.com", "v1beta1", "widgets") is None and "example.com" in reg.groups()
    serving.unserve(c["metadata"]["name"])
    assert reg.get("example.com", "v1", "widgets") is None and "example.com" not in reg.groups()


def test_serving_never_shadows_builtin_kinds() -> None:
    reg = minimal_registry()
    c = crd(name="deployments", group="apps", kind="Deployment")
    served = serving_for(reg).serve(c, names(c))
    assert [rt.version for rt in served] == ["v1beta1"]  # only the version no built-in serves
    assert not isinstance(reg.get("apps", "v1", "deployments"), CustomResourceType)
    serving_for(reg).unserve("deployments.apps")
    assert reg.get("apps", "v1beta1", "deployments") is None and reg.get("apps", "v1", "deployments") is not None


# --- the controller ------------------------------------------------------------------------

WIDGETS = ResourceRef("example.com", "v1", "widgets")


@pytest.fixture
async def env() -> AsyncIterator[tuple[Any, Registry, CRDController]]:
    reg = minimal_registry()
    reg.add(CRDS)
    async with local_api(reg) as (_store, _api, client):
        ctl = CRDController(client, reg, recheck=0.05)
        task = asyncio.create_task(ctl.run())
        await eventually(lambda: ctl.informer.has_synced)
        yield client, reg, ctl
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def established(client: Any, name: str) -> dict[str, Any]:
    async def check() -> bool:
        c = await client.get(CRD_REF, name)
        return any(x["type"] == "Established" and x["status"] == "True" for x in c.get("status", {}).get("conditions", []))

    await eventually(check)
    return await client.get(CRD_REF, name)


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name, "namespace": "default"},
            "spec": {"size": "small", **spec}}


async def test_controller_accepts_names_and_serves(env: Any) -> None:
    client, reg, _ctl = env
    await client.create(CRD_REF, crd(shortNames=["wd"]))
    c = await established(client, "widgets.example.com")
    conds = {x["type"]: (x["status"], x["reason"], x["message"]) for x in c["status"]["conditions"]}
    assert conds == {"NamesAccepted": ("True", "NoConflicts", "no conflicts found"),
                     "Established": ("True", "InitialNamesAccepted", "the initial names have been accepted")}
    assert c["status"]["acceptedNames"] == {"plural": "widgets", "singular": "widget", "shortNames": ["wd"],
                                            "kind": "Widget", "listKind": "WidgetList"}
    assert c["status"]["storedVersions"] == ["v1"]
    w = await client.create(WIDGETS, {**widget("w1", junk=1), "status": {"replicas": 3}})
    assert w["spec"] == {"size": "small", "replicas": 1, "color": "blue"} and "status" not in w
    assert w["metadata"]["generation"] == 1
    scale = await client.get(WIDGETS, "w1", "default", subresource="scale")
    assert scale["spec"]["replicas"] == 1
    beta = await client.get(ResourceRef("example.com", "v1beta1", "widgets"), "w1", "default")
    assert beta["apiVersion"] == "example.com/v1beta1" and beta["spec"]["legacy"] == "old"
    with pytest.raises(APIError) as ei:
        await client.create(WIDGETS, widget("w2", size="huge"))
    assert ei.value.code == 422
    assert reg.get("example.com", "v1", "widgets") is not None


async def test_name_conflicts_are_reported(env: Any) -> None:
    client, reg, _ctl = env
    await client.create(CRD_REF, crd(shortNames=["wd"]))
    await established(client, "widgets.example.com")
    await client.create(CRD_REF, crd(name="gadgets", kind="Gadget", shortNames=["wd"]))
    await client.create(CRD_REF, crd(name="things", kind="Widget"))

    async def names_condition(name: str) -> dict[str, Any] | None:
        c = await client.get(CRD_REF, name)
        return next((x for x in c.get("status", {}).get("conditions", []) if x["type"] == "NamesAccepted"), None)

    await eventually(lambda: names_condition("gadgets.example.com"))
    await eventually(lambda: names_condition("things.example.com"))
    gad = await names_condition("gadgets.example.com")
    assert gad is not None and (gad["status"], gad["reason"], gad["message"]) == ("False", "ShortNamesConflict", '"wd" is already in use')
    things = await names_condition("things.example.com")
    assert things is not None and (things["status"], things["reason"]) == ("False", "ListKindConflict")
    assert reg.get("example.com", "v1", "gadgets") is None and reg.get("example.com", "v1", "things") is None
    c = await client.get(CRD_REF, "things.example.com")
    assert {x["type"]: x["status"] for x in c["status"]["conditions"]}["Established"] == "False"


async def test_deleting_the_crd_deletes_its_objects(env: Any) -> None:
    client, reg, _ctl = env
    await client.create(CRD_REF, crd())
    await established(client, "widgets.example.com")
    await client.create(WIDGETS, widget("a"))
    blocked = widget("b")
    blocked["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(WIDGETS, blocked)
    await client.delete(CRD_REF, "widgets.example.com")

    async def terminating() -> bool:
        c = await client.get(CRD_REF, "widgets.example.com")
        return any(x["type"] == "Terminating" and x["status"] == "True" for x in c["status"].get("conditions", []))

    await eventually(terminating)
    with pytest.raises(APIError) as ei:
        await client.create(WIDGETS, widget("c"))
    assert ei.value.code == 403 and "create not allowed while custom resource definition is terminating" in ei.value.message
    async def only_blocked_left() -> bool:
        return await _names(client) == ["b"]

    await eventually(only_blocked_left)
    await client.patch(WIDGETS, "b", {"metadata": {"finalizers": None}}, namespace="default")

    async def gone() -> bool:
        try:
            await client.get(CRD_REF, "widgets.example.com")
        except APIError as e:
            return e.code == 404
        return False

    await eventually(gone)
    assert reg.get("example.com", "v1", "widgets") is None


async def _names(client: Any) -> list[str]:
    try:
        items = (await client.list(WIDGETS, "default"))["items"]
    except APIError:
        return []
    return sorted(i["metadata"]["name"] for i in items)


async def test_stored_crds_are_served_at_startup() -> None:
    reg = minimal_registry()
    reg.add(CRDS)
    async with local_api(reg) as (_store, api, client):
        c = crd()
        await client.create(CRD_REF, c)
        created = await client.get(CRD_REF, "widgets.example.com")
        created["status"]["acceptedNames"] = names(c)
        created["status"]["conditions"] = [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                                            "message": "the initial names have been accepted"}]
        await client.update(CRD_REF, created, subresource="status")
        assert reg.get("example.com", "v1", "widgets") is None
        assert serve_stored_crds(api) == 1
        assert reg.get("example.com", "v1", "widgets") is not None
        serving_for(reg).unserve("widgets.example.com")


def test_reads_of_the_storage_version_get_new_defaults_without_copies() -> None:
    c = crd()
    v1 = build_types(c, names(c))[0]
    assert v1.from_storage is not None
    stored = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"replicas": 2, "color": "red"}}
    assert v1.from_storage(stored) is stored  # nothing to default: the stored dict itself
    del stored["spec"]["color"]
    read = v1.from_storage(stored)
    assert read is not stored and read["spec"]["color"] == "blue" and "color" not in stored["spec"]
