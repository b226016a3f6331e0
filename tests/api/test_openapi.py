"""Tests for cloudlet.api.openapi, openapi_schemas and openapi_routes: the shape
kubectl v1.32 relies on, the built-in schemas, caching and HTTP behaviour.

The checks mirror the Go code kubectl runs (cli-runtime's
``supportsQueryParamV3`` / ``supportsQueryParam``, kubectl's
``gvkSupportsPatchOpenAPIV3``), re-stated here in Python.
"""

from __future__ import annotations

import copy
import hashlib
import struct
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cloudlet.api import openapi_schemas
from cloudlet.api import patch as patch_module
from cloudlet.api.openapi import (
    definition_name,
    gv_key,
    openapi_v2,
    openapi_v2_protobuf,
    openapi_v3_group_version,
    openapi_v3_index,
    permissive_schema,
    serialize,
    spec_hash,
)
from cloudlet.api.openapi_routes import OpenAPIDocuments, add_routes
from cloudlet.api.openapi_schemas import (
    builtin_definitions,
    custom_resource_schema,
    kind_definition_name,
)
from cloudlet.api.patch import supports_strategic_merge
from cloudlet.api.protobuf_schema import KINDS
from cloudlet.resources.registry import REGISTRY, Registry, ResourceType

GVK = "x-kubernetes-group-version-kind"

RESOURCES: list[dict[str, Any]] = [
    {"group": "", "version": "v1", "kind": "Namespace", "plural": "namespaces", "namespaced": False,
     "subresources": ["status"]},
    {"group": "", "version": "v1", "kind": "ConfigMap", "plural": "configmaps", "namespaced": True,
     "subresources": []},
    {"group": "", "version": "v1", "kind": "Pod", "plural": "pods", "namespaced": True,
     "subresources": ["status", "binding", "eviction", "log"]},
    {"group": "apps", "version": "v1", "kind": "Deployment", "plural": "deployments", "namespaced": True,
     "subresources": ["status", "scale"]},
    {"group": "scheduling.k8s.io", "version": "v1", "kind": "PriorityClass", "plural": "priorityclasses",
     "namespaced": False, "subresources": []},
    {"group": "stable.example.com", "version": "v1", "kind": "CronTab", "plural": "crontabs",
     "namespaced": True, "subresources": ["status", "scale"]},
]


def _gvs() -> list[tuple[str, str]]:
    return sorted({(r["group"], r["version"]) for r in RESOURCES})


def _doc(group: str, version: str, **kw: Any) -> dict[str, Any]:
    return openapi_v3_group_version(group, version, RESOURCES, **kw)


# --- what kubectl computes, restated ---------------------------------------------------


def supports_field_validation_v3(doc: dict[str, Any], gvk: dict[str, str]) -> bool:
    """cli-runtime supportsQueryParamV3; raises where Go returns a non-'unsupported' error."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None:
            continue
        ext = op.get(GVK)
        if not isinstance(ext, dict) or ext != gvk:
            continue
        return any(
            p.get("name") == "fieldValidation" and p.get("in") == "query"
            for p in op.get("parameters", [])
        )
    raise LookupError(f"Path not found for GVK ({gvk}) in OpenAPI V3 doc")


def supports_field_validation_v2(doc: dict[str, Any], gvk: dict[str, str]) -> bool:
    """cli-runtime supportsQueryParam (v2)."""
    for item in doc["paths"].values():
        op = item.get("patch") or {}
        if op.get(GVK) != gvk:
            continue
        return any(
            p.get("name") == "fieldValidation" and p.get("in") == "query"
            for p in op.get("parameters", [])
        )
    raise LookupError("couldn't find GVK in openapi")


def v3_strategic_merge(doc: dict[str, Any], gvk: dict[str, str]) -> bool:
    """kubectl Patcher.gvkSupportsPatchOpenAPIV3."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op and op.get(GVK) == gvk:
            content = (op.get("requestBody") or {}).get("content") or {}
            return "application/strategic-merge-patch+json" in content
    return False


def _refs(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_refs(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_refs(v))
    return out


# --- index -----------------------------------------------------------------------------


def test_index_shape() -> None:
    idx = openapi_v3_index([("apps", "v1"), ("", "v1"), ("apps", "v1")])
    assert idx == {
        "paths": {
            "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1"},
            "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1"},
        }
    }


def test_index_with_hashes() -> None:
    body = serialize(_doc("", "v1"))
    h = spec_hash(body)
    idx = openapi_v3_index(_gvs(), {("", "v1"): h})
    assert idx["paths"]["api/v1"]["serverRelativeURL"] == f"/openapi/v3/api/v1?hash={h}"
    assert idx["paths"]["apis/apps/v1"]["serverRelativeURL"] == "/openapi/v3/apis/apps/v1"
    assert set(idx["paths"]) == {gv_key(g, v) for g, v in _gvs()}


def test_spec_hash_is_kube_etag() -> None:
    data = b'{"a":1}'
    assert spec_hash(data) == hashlib.sha512(data).hexdigest().upper()
    assert len(spec_hash(data)) == 128
    # serialize is deterministic, so the hash is stable across calls
    assert serialize(_doc("apps", "v1")) == serialize(_doc("apps", "v1"))


def test_gv_key() -> None:
    assert gv_key("", "v1") == "api/v1"
    assert gv_key("apps", "v1") == "apis/apps/v1"


# --- v3 group-version documents ---------------------------------------------------------


@pytest.mark.parametrize(("group", "version"), _gvs())
def test_every_kind_supports_field_validation_v3(group: str, version: str) -> None:
    doc = _doc(group, version)
    assert doc["openapi"].startswith("3.0")
    for r in RESOURCES:
        if (r["group"], r["version"]) != (group, version):
            continue
        gvk = {"group": group, "version": version, "kind": r["kind"]}
        assert supports_field_validation_v3(doc, gvk)
        # no strategic merge advertised: kubectl falls back to its Go types / merge patch
        assert not v3_strategic_merge(doc, gvk)


def test_paths_and_operations_namespaced() -> None:
    doc = _doc("apps", "v1")
    paths = doc["paths"]
    coll = paths["/apis/apps/v1/namespaces/{namespace}/deployments"]
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    every = paths["/apis/apps/v1/deployments"]
    assert set(coll) >= {"get", "post", "delete", "parameters"}
    assert set(item) >= {"get", "put", "patch", "delete", "parameters"}
    assert set(every) == {"get", "parameters"}
    assert coll["get"]["x-kubernetes-action"] == "list"
    assert coll["post"]["x-kubernetes-action"] == "post"
    assert coll["delete"]["x-kubernetes-action"] == "deletecollection"
    assert every["get"]["x-kubernetes-action"] == "list"
    for m in ("get", "put", "patch", "delete"):
        assert item[m]["x-kubernetes-action"] == m
        assert item[m][GVK] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    path_params = {p["name"]: p for p in item["parameters"]}
    assert path_params["name"]["in"] == "path" and path_params["name"]["required"] is True
    assert path_params["namespace"]["in"] == "path"
    # fieldValidation inline on POST/PUT/PATCH, not on reads/deletes
    for op in (coll["post"], item["put"], item["patch"]):
        names = {(p["name"], p["in"]) for p in op["parameters"]}
        assert ("fieldValidation", "query") in names
        assert ("fieldManager", "query") in names
        assert ("dryRun", "query") in names
    assert ("force", "query") in {(p["name"], p["in"]) for p in item["patch"]["parameters"]}
    for op in (item["get"], item["delete"], coll["get"]):
        assert "fieldValidation" not in {p["name"] for p in op.get("parameters", [])}
    list_params = {p["name"] for p in coll["get"]["parameters"]}
    assert {"labelSelector", "fieldSelector", "watch", "limit", "continue", "resourceVersion"} <= list_params
    patch_types = set(item["patch"]["requestBody"]["content"])
    assert patch_types == {
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    }
    assert item["patch"]["requestBody"]["required"] is True
    assert "200" in item["get"]["responses"]
    assert {"200", "201", "202"} <= set(coll["post"]["responses"])


def test_cluster_scoped_paths() -> None:
    doc = _doc("scheduling.k8s.io", "v1")
    paths = doc["paths"]
    assert "/apis/scheduling.k8s.io/v1/priorityclasses" in paths
    item = paths["/apis/scheduling.k8s.io/v1/priorityclasses/{name}"]
    assert "namespace" not in {p["name"] for p in item["parameters"]}
    assert not any("{namespace}" in p for p in paths)


def test_core_paths_and_other_groups_ignored() -> None:
    doc = _doc("", "v1")
    assert "/api/v1/namespaces/{namespace}/configmaps/{name}" in doc["paths"]
    assert "/api/v1/namespaces/{name}" in doc["paths"]
    assert "/api/v1/namespaces/{name}/status" in doc["paths"]
    assert not any("deployments" in p for p in doc["paths"])
    kinds = {
        e["kind"]
        for s in doc["components"]["schemas"].values()
        for e in s.get(GVK, [])
    }
    assert {"ConfigMap", "ConfigMapList", "Pod", "Namespace"} <= kinds
    assert "Deployment" not in kinds


def test_subresources() -> None:
    doc = _doc("apps", "v1")
    base = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    status = doc["paths"][base + "/status"]
    scale = doc["paths"][base + "/scale"]
    assert set(status) == {"get", "put", "patch", "parameters"}
    assert status["patch"][GVK] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert scale["patch"][GVK] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert supports_field_validation_v3(doc, {"group": "autoscaling", "version": "v1", "kind": "Scale"})
    scale_schema = doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"]
    assert scale_schema[GVK] == [{"group": "autoscaling", "version": "v1", "kind": "Scale"}]
    pods = _doc("", "v1")["paths"]
    binding = pods["/api/v1/namespaces/{namespace}/pods/{name}/binding"]
    assert set(binding) == {"post", "parameters"}
    assert binding["post"][GVK] == {"group": "", "version": "v1", "kind": "Binding"}
    eviction = pods["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]
    assert eviction["post"][GVK] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert set(pods["/api/v1/namespaces/{namespace}/pods/{name}/log"]) == {"get", "parameters"}


def test_permissive_schemas_v3() -> None:
    doc = _doc("apps", "v1")
    schemas = doc["components"]["schemas"]
    dep = schemas["io.k8s.api.apps.v1.Deployment"]
    assert dep["type"] == "object"
    assert dep["x-kubernetes-preserve-unknown-fields"] is True
    assert dep[GVK] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert set(dep["properties"]) == {"apiVersion", "kind", "metadata"}
    lst = schemas["io.k8s.api.apps.v1.DeploymentList"]
    assert lst[GVK] == [{"group": "apps", "version": "v1", "kind": "DeploymentList"}]
    assert lst["properties"]["items"]["items"] == {"$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"}


@pytest.mark.parametrize(("group", "version"), _gvs())
def test_v3_refs_resolve(group: str, version: str) -> None:
    doc = _doc(group, version)
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    orjson.dumps(doc)  # plain JSON


def test_verbs_limit_operations() -> None:
    res = [{"group": "", "version": "v1", "kind": "Event", "plural": "events", "namespaced": True,
            "subresources": [], "verbs": ["get", "list", "create"]}]
    doc = openapi_v3_group_version("", "v1", res)
    item = doc["paths"]["/api/v1/namespaces/{namespace}/events/{name}"]
    assert set(item) == {"get", "parameters"}
    coll = doc["paths"]["/api/v1/namespaces/{namespace}/events"]
    assert set(coll) == {"get", "post", "parameters"}


def test_given_schema_and_strategic_merge() -> None:
    real = {"type": "object", "properties": {"spec": {"type": "object"}}}
    res = [dict(RESOURCES[3], strategicMergePatch=True)]
    doc = openapi_v3_group_version("apps", "v1", res, {"Deployment": real})
    dep = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert dep["properties"] == {"spec": {"type": "object"}}
    assert dep[GVK] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert "x-kubernetes-preserve-unknown-fields" not in dep
    assert real == {"type": "object", "properties": {"spec": {"type": "object"}}}  # not mutated
    gvk = {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert v3_strategic_merge(doc, gvk)
    assert supports_field_validation_v3(doc, gvk)


def test_operation_ids_unique() -> None:
    for g, v in _gvs():
        ids = [
            op["operationId"]
            for item in _doc(g, v)["paths"].values()
            for k, op in item.items()
            if k != "parameters"
        ]
        assert len(ids) == len(set(ids)), ids
    ids = {op["operationId"] for op in _doc("apps", "v1")["paths"]["/apis/apps/v1/deployments"].values()
           if isinstance(op, dict)}
    assert "listAppsV1DeploymentForAllNamespaces" in ids


def test_definition_names() -> None:
    assert definition_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert definition_name("rbac.authorization.k8s.io", "v1", "Role") == "io.k8s.api.rbac.v1.Role"
    assert definition_name("stable.example.com", "v1", "CronTab") == "com.example.stable.v1.CronTab"
    assert definition_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition") == (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    )


def test_permissive_schema_forms() -> None:
    v3 = permissive_schema("apps", "v1", "Deployment")
    v2 = permissive_schema("apps", "v1", "Deployment", with_properties=False)
    assert "properties" in v3 and "properties" not in v2
    assert v2[GVK] == v3[GVK] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]


# --- v2 ----------------------------------------------------------------------------------


def test_v2_shape() -> None:
    doc = openapi_v2(RESOURCES)
    assert doc["swagger"] == "2.0"
    defs = doc["definitions"]
    for r in RESOURCES:
        gvk = {"group": r["group"], "version": r["version"], "kind": r["kind"]}
        assert supports_field_validation_v2(doc, gvk)
        d = defs[definition_name(r["group"], r["version"], r["kind"])]
        assert d[GVK] == [gvk]
        # no properties: kubectl's v2 validator accepts any field
        assert d["type"] == "object" and "properties" not in d
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert "application/strategic-merge-patch+json" not in patch["consumes"]
    assert "application/merge-patch+json" in patch["consumes"]
    body = [p for p in patch["parameters"] if p["in"] == "body"]
    assert body and body[0]["schema"] == {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}
    fv = [p for p in patch["parameters"] if p["name"] == "fieldValidation"][0]
    assert fv == {"name": "fieldValidation", "in": "query", "description": fv["description"],
                  "type": "string", "uniqueItems": True}
    for ref in _refs(doc):
        assert ref.removeprefix("#/definitions/") in defs, ref


def test_v2_given_schema() -> None:
    real = {"type": "object", "properties": {"data": {"type": "object"}}}
    doc = openapi_v2(RESOURCES, {("", "v1", "ConfigMap"): real})
    cm = doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]
    assert cm["properties"] == {"data": {"type": "object"}}
    assert cm[GVK] == [{"group": "", "version": "v1", "kind": "ConfigMap"}]


# --- v2 protobuf ---------------------------------------------------------------------------


def _decode(buf: bytes) -> dict[int, list[Any]]:
    """Minimal protobuf wire decoder: field number -> raw values."""
    out: dict[int, list[Any]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = n = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            val: Any = varint()
        elif wire == 1:
            val = struct.unpack("<d", buf[i : i + 8])[0]
            i += 8
        elif wire == 2:
            n = varint()
            val = buf[i : i + n]
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.setdefault(field, []).append(val)
    return out


def _named(entries: list[bytes]) -> dict[str, bytes]:
    res = {}
    for e in entries:
        d = _decode(e)
        res[d[1][0].decode()] = d.get(2, [b""])[0]
    return res


def _extensions(entries: list[bytes]) -> dict[str, Any]:
    return {k: yaml.safe_load(_decode(v)[2][0].decode()) for k, v in _named(entries).items()}


def test_v2_protobuf_decodes_like_gnostic() -> None:
    doc = openapi_v2(RESOURCES)
    pb = openapi_v2_protobuf(doc)
    top = _decode(pb)
    assert top[1] == [b"2.0"]  # swagger
    info = _decode(top[2][0])
    assert info[1] == [b"Kubernetes"]
    paths = _named(_decode(top[8][0])[2])  # Paths.path -> NamedPathItem
    assert set(paths) == set(doc["paths"])
    item = _decode(paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"])
    patch = _decode(item[8][0])  # PathItem.patch
    assert _extensions(patch[13]) == {
        "x-kubernetes-action": "patch",
        GVK: {"group": "apps", "version": "v1", "kind": "Deployment"},
    }
    assert b"application/merge-patch+json" in patch[7]  # consumes
    names = []
    for pi in patch[8]:  # ParametersItem -> Parameter
        param = _decode(_decode(pi)[1][0])
        if 2 in param:  # non-body -> query sub-schema (3)
            q = _decode(_decode(param[2][0])[3][0])
            assert q[2] == [b"query"]
            names.append(q[4][0].decode())
        else:  # body parameter
            body = _decode(param[1][0])
            assert body[3] == [b"body"]
            schema = _decode(body[5][0])
            assert schema[1] == [b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"]
    assert "fieldValidation" in names
    # path-level parameters: name/namespace are path sub-schemas (4)
    path_names = []
    for pi in item[9]:
        nb = _decode(_decode(_decode(pi)[1][0])[2][0])
        if 4 in nb:
            path_names.append(_decode(nb[4][0])[4][0].decode())
    assert set(path_names) == {"name", "namespace"}
    defs = _named(_decode(top[9][0])[1])
    dep = _decode(defs["io.k8s.api.apps.v1.Deployment"])
    assert _decode(dep[22][0])[1] == [b"object"]  # type
    assert _extensions(dep[31])[GVK] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    lst = _decode(defs["io.k8s.api.apps.v1.DeploymentList"])
    props = _named(_decode(lst[25][0])[1])
    items = _decode(props["items"])
    assert _decode(_decode(items[23][0])[1][0])[1] == [b"#/definitions/io.k8s.api.apps.v1.Deployment"]
    assert lst[19] == [b"items"]  # required


def test_v2_protobuf_schema_details() -> None:
    schema = {
        "type": "object",
        "description": "d",
        "required": ["a"],
        "properties": {
            "a": {"type": "integer", "format": "int32", "default": 0, "minimum": -1.5, "maxLength": 3},
            "b": {"type": "object", "additionalProperties": {"type": "string"}},
            "c": {"type": "object", "additionalProperties": False},
            "e": {"type": "string", "enum": ["x", "y"]},
        },
        "x-kubernetes-preserve-unknown-fields": True,
    }
    doc = {"swagger": "2.0", "info": {"title": "t", "version": "v"}, "paths": {}, "definitions": {"S": schema}}
    s = _decode(_named(_decode(_decode(openapi_v2_protobuf(doc))[9][0])[1])["S"])
    assert s[4] == [b"d"] and s[19] == [b"a"]
    props = _named(_decode(s[25][0])[1])
    a = _decode(props["a"])
    assert a[2] == [b"int32"]
    assert yaml.safe_load(_decode(a[5][0])[2][0].decode()) == 0
    assert a[9] == [-1.5] and a[11] == [3]
    b = _decode(props["b"])
    assert _decode(_decode(_decode(b[21][0])[1][0])[22][0])[1] == [b"string"]
    c = _decode(props["c"])
    assert _decode(c[21][0]) == {2: [0]}  # oneof boolean=false is still written
    e = _decode(props["e"])
    assert [yaml.safe_load(_decode(x)[2][0].decode()) for x in e[20]] == ["x", "y"]
    assert _extensions(s[31]) == {"x-kubernetes-preserve-unknown-fields": True}


# --- built-in schemas (openapi_schemas) ---------------------------------------------------

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"


def _prop_ref(prop: dict[str, Any]) -> str | None:
    """The definition a property points at: ``$ref`` or a single-element ``allOf``."""
    if "$ref" in prop:
        return prop["$ref"]
    all_of = prop.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return all_of[0].get("$ref")
    return None


@pytest.mark.parametrize("v3", [True, False])
def test_builtin_definitions_refs_resolve(v3: bool) -> None:
    defs = builtin_definitions(v3)
    prefix = V3_PREFIX if v3 else V2_PREFIX
    assert len(defs) > 300
    for ref in _refs(dict(defs)):
        assert ref.startswith(prefix), ref
        assert ref.removeprefix(prefix) in defs, ref
    orjson.dumps(dict(defs))  # plain JSON
    if not v3:  # Swagger 2.0 has no oneOf/anyOf/allOf-wrapped refs; $ref siblings are fine there
        todo: list[Any] = list(defs.values())
        while todo:
            node = todo.pop()
            assert not {"oneOf", "anyOf", "allOf"} & set(node), node
            todo.extend((node.get("properties") or {}).values())
            todo.extend(v for k, v in node.items() if k in ("items", "additionalProperties") and isinstance(v, dict))


def test_every_builtin_kind_has_gvk_and_kubernetes_name() -> None:
    kind_names = set()
    for api_version, kind in [*KINDS, ("apiextensions.k8s.io/v1", "CustomResourceDefinition")]:
        group, _, version = api_version.rpartition("/")
        name = definition_name(group, version, kind)
        assert kind_definition_name(group, version, kind) == name
        kind_names.add(name)
        for v3 in (True, False):
            d = builtin_definitions(v3)[name]
            assert {"group": group, "version": version, "kind": kind} in d[GVK]
            assert d["type"] == "object"
            assert d["properties"]["apiVersion"] == {"type": "string"}
            assert d["properties"]["kind"] == {"type": "string"}
            assert d["description"]
            assert "x-kubernetes-preserve-unknown-fields" not in d
    # nested types carry neither GVK nor descriptions (Kubernetes' prose is not copied)
    for name, d in builtin_definitions(True).items():
        if name not in kind_names and not name.endswith((".Status", ".DeleteOptions")):
            assert GVK not in d, name
            assert "description" not in d, name
        for prop in (d.get("properties") or {}).values():
            assert "description" not in prop


def test_object_meta_shape() -> None:
    for v3 in (True, False):
        prefix = V3_PREFIX if v3 else V2_PREFIX
        defs = builtin_definitions(v3)
        om = defs[f"{META}.ObjectMeta"]
        props = om["properties"]
        assert "required" not in om
        assert props["name"] == {"type": "string"}
        assert props["generation"] == {"type": "integer", "format": "int64"}
        assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
        assert props["annotations"] == props["labels"]
        assert _prop_ref(props["creationTimestamp"]) == prefix + f"{META}.Time"
        owners = props["ownerReferences"]
        assert owners["type"] == "array"
        assert owners["items"] == {"$ref": prefix + f"{META}.OwnerReference"}
        assert owners["x-kubernetes-list-type"] == "map"
        assert owners["x-kubernetes-list-map-keys"] == ["uid"]
        assert owners["x-kubernetes-patch-merge-key"] == "uid"
        assert owners["x-kubernetes-patch-strategy"] == "merge"
        assert props["finalizers"]["x-kubernetes-list-type"] == "set"
        assert props["finalizers"]["x-kubernetes-patch-strategy"] == "merge"
        assert props["managedFields"]["items"] == {"$ref": prefix + f"{META}.ManagedFieldsEntry"}
        assert set(props) >= {
            "name", "generateName", "namespace", "uid", "resourceVersion", "deletionTimestamp",
            "deletionGracePeriodSeconds", "selfLink",
        }
        owner = defs[f"{META}.OwnerReference"]
        assert owner["required"] == ["apiVersion", "kind", "name", "uid"]
        assert owner["x-kubernetes-map-type"] == "atomic"
        assert defs[f"{META}.Time"] == {"type": "string", "format": "date-time"}
        assert defs[f"{META}.ListMeta"]["properties"]["remainingItemCount"]["format"] == "int64"
        assert defs[f"{META}.Status"][GVK] == [{"group": "", "version": "v1", "kind": "Status"}]


def test_container_pod_and_deployment_fields() -> None:
    defs = builtin_definitions(True)
    c = defs["io.k8s.api.core.v1.Container"]
    assert c["required"] == ["name"]  # image is optional in Kubernetes (workload controllers default it)
    assert c["properties"]["image"] == {"type": "string"}
    assert c["properties"]["command"] == {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"}
    ports = c["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert c["properties"]["resources"] == {"$ref": V3_PREFIX + "io.k8s.api.core.v1.ResourceRequirements"}
    limits = defs["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits == {
        "type": "object",
        "additionalProperties": {"$ref": V3_PREFIX + "io.k8s.apimachinery.pkg.api.resource.Quantity"},
    }
    assert defs["io.k8s.api.core.v1.ContainerPort"]["required"] == ["containerPort"]
    pod_spec = defs["io.k8s.api.core.v1.PodSpec"]
    assert pod_spec["required"] == ["containers"]
    assert pod_spec["properties"]["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert pod_spec["properties"]["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    assert pod_spec["properties"]["nodeSelector"]["x-kubernetes-map-type"] == "atomic"
    assert "x-kubernetes-patch-strategy" not in pod_spec["properties"]["tolerations"]
    # Volume embeds VolumeSource (json:",inline"): its fields are the Volume's
    volume = defs["io.k8s.api.core.v1.Volume"]["properties"]
    assert {"name", "emptyDir", "configMap", "secret", "persistentVolumeClaim"} <= set(volume)
    spec = defs["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["required"] == ["selector", "template"]
    assert spec["properties"]["replicas"] == {"type": "integer", "format": "int32"}
    assert spec["properties"]["strategy"] == {
        "allOf": [{"$ref": V3_PREFIX + "io.k8s.api.apps.v1.DeploymentStrategy"}],
        "x-kubernetes-patch-strategy": "retainKeys",
    }
    v2_spec = builtin_definitions(False)["io.k8s.api.apps.v1.DeploymentSpec"]
    assert v2_spec["properties"]["strategy"] == {
        "$ref": V2_PREFIX + "io.k8s.api.apps.v1.DeploymentStrategy",
        "x-kubernetes-patch-strategy": "retainKeys",
    }
    rolling = defs["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]
    assert rolling["maxSurge"] == {"$ref": V3_PREFIX + "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
    secret = defs["io.k8s.api.core.v1.Secret"]["properties"]
    assert secret["data"]["additionalProperties"] == {"type": "string", "format": "byte"}
    # named slices (authentication ExtraValue) are plain arrays
    extra = defs["io.k8s.api.authentication.v1.UserInfo"]["properties"]["extra"]
    assert extra == {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}


def test_required_follows_openapi_gen() -> None:
    defs = builtin_definitions(True)
    # not omitempty -> required ...
    assert defs["io.k8s.api.core.v1.Event"]["required"] == ["metadata", "involvedObject"]
    assert defs["io.k8s.api.core.v1.ServicePort"]["required"] == ["port"]
    assert defs["io.k8s.api.apps.v1.ReplicaSetStatus"]["required"] == ["replicas"]
    # ... unless marked +optional; +required wins over omitempty
    assert "required" not in defs["io.k8s.api.core.v1.ContainerImage"]
    assert defs["io.k8s.api.events.v1.Event"]["required"] == ["eventTime"]
    assert "required" not in defs["io.k8s.api.scheduling.v1.PriorityClass"]
    assert defs["io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"]["required"] == ["spec"]


def test_custom_resource_definition_kind() -> None:
    crd_pkg = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"
    for v3 in (True, False):
        prefix = V3_PREFIX if v3 else V2_PREFIX
        defs = builtin_definitions(v3)
        crd = defs[f"{crd_pkg}.CustomResourceDefinition"]
        assert crd["required"] == ["spec"]
        spec = defs[f"{crd_pkg}.CustomResourceDefinitionSpec"]
        assert spec["required"] == ["group", "names", "scope", "versions"]
        version = defs[f"{crd_pkg}.CustomResourceDefinitionVersion"]
        assert version["required"] == ["name", "served", "storage"]
        assert _prop_ref(defs[f"{crd_pkg}.CustomResourceValidation"]["properties"]["openAPIV3Schema"]) == (
            prefix + f"{crd_pkg}.JSONSchemaProps"
        )
        props = defs[f"{crd_pkg}.JSONSchemaProps"]["properties"]
        assert props["properties"]["additionalProperties"] == {"$ref": prefix + f"{crd_pkg}.JSONSchemaProps"}
        assert {"$ref", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations", "nullable"} <= set(props)
        assert defs[f"{crd_pkg}.JSON"] == ({"x-kubernetes-preserve-unknown-fields": True} if v3 else {})
        assert "properties" not in defs[f"{crd_pkg}.CustomResourceSubresourceStatus"]
        status = defs[f"{crd_pkg}.CustomResourceDefinitionStatus"]
        assert "required" not in status
        assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_special_types() -> None:
    v3, v2 = builtin_definitions(True), builtin_definitions(False)
    ios = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    qty = "io.k8s.apimachinery.pkg.api.resource.Quantity"
    raw = "io.k8s.apimachinery.pkg.runtime.RawExtension"
    assert v3[ios]["format"] == "int-or-string"
    assert v3[ios]["x-kubernetes-int-or-string"] is True
    assert v3[ios]["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert v2[ios] == {"type": "string", "format": "int-or-string"}
    assert v3[qty]["oneOf"] == [{"type": "string"}, {"type": "number"}]
    assert v2[qty]["type"] == "string"
    assert v3[raw] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert v2[raw] == {"type": "object"}
    assert v3[f"{META}.MicroTime"] == {"type": "string", "format": "date-time"}
    assert v3[f"{META}.FieldsV1"]["type"] == "object"


def _walk_patch_tables() -> list[tuple[str, str, Any]]:
    """(definition, field, patch-table entry) for every field the server's SMP tables describe."""
    defs = builtin_definitions(True)
    out: list[tuple[str, str, Any]] = []

    def walk(def_name: str, table: Any, depth: int) -> None:
        d = defs[def_name]
        for name, entry in table.items():
            prop = d["properties"].get(name)
            if prop is None:  # alpha fields the protobuf tables do not carry
                continue
            out.append((def_name, name, entry))
            target = prop.get("items") or prop.get("additionalProperties") or prop
            ref = _prop_ref(target)
            if entry.schema and ref and depth < 20:
                walk(ref.removeprefix(V3_PREFIX), entry.schema, depth + 1)

    for (group, kind), table in patch_module._KINDS.items():
        for (api_version, k) in KINDS:
            if k == kind and api_version.rpartition("/")[0] == group:
                g, _, v = api_version.rpartition("/")
                walk(definition_name(g, v, k), table, 0)
    return out


def test_patch_metadata_matches_server_patch_tables() -> None:
    checked = 0
    defs = builtin_definitions(True)
    for def_name, field, entry in _walk_patch_tables():
        prop = defs[def_name]["properties"][field]
        strategy = ",".join(s for s in (entry.strategy, "retainKeys" if entry.retain_keys else "") if s)
        assert prop.get("x-kubernetes-patch-strategy", "") == strategy, (def_name, field)
        assert prop.get("x-kubernetes-patch-merge-key", "") == entry.key, (def_name, field)
        checked += 1
    assert checked > 40
    # a map list merged by key lists that key (PodStatus.hostIPs is merged by ip but
    # atomic for server-side apply, as upstream)
    for d in defs.values():
        for name, prop in (d.get("properties") or {}).items():
            key = prop.get("x-kubernetes-patch-merge-key")
            if key and prop.get("x-kubernetes-list-type") == "map":
                assert key in prop["x-kubernetes-list-map-keys"], name


def test_field_tags_table_is_well_formed() -> None:
    msgs = openapi_schemas._messages()
    for message, spec in openapi_schemas.FIELD_TAGS.items():
        assert message in msgs, message
        names = {f.json for f in msgs[message].fields}
        for token in spec.split():
            assert token.split(":", 1)[0] in names, (message, token)
    for message in openapi_schemas.ATOMIC_STRUCTS:
        assert message in msgs, message


# --- documents with the built-in pool ------------------------------------------------------


def _builtin_registry() -> Registry:
    import cloudlet.resources  # noqa: F401 - registers the built-in kinds

    reg = Registry()
    for rt in REGISTRY.all():
        reg.add(rt)
    return reg


CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "default": 1},
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                          "properties": {"a": {"type": "string"}}},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def _crontab(schema: dict[str, Any] | None = None, version: str = "v1") -> ResourceType:
    return ResourceType(
        group="stable.example.com", version=version, kind="CronTab", plural="crontabs", singular="crontab",
        namespaced=True, subresources=("status",), openapi_schema=schema or copy.deepcopy(CRONTAB_SCHEMA),
        strategic_merge=False,
    )


async def _v3_docs(docs: OpenAPIDocuments) -> dict[tuple[str, str], dict[str, Any]]:
    gen = docs.generation()
    out = {}
    for g, v in gen.group_versions:
        served = await docs.v3(g, v)
        assert served is not None
        out[(g, v)] = orjson.loads(served.body)
    return out


async def test_served_v3_documents_describe_every_builtin_kind_fully() -> None:
    reg = _builtin_registry()
    docs = OpenAPIDocuments(reg)
    v3 = await _v3_docs(docs)
    assert set(v3) == {(rt.group, rt.version) for rt in reg.all()}
    for (g, v), doc in v3.items():
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.removeprefix(V3_PREFIX) in schemas, ref
        for rt in reg.resources(g, v):
            gvk = {"group": g, "version": v, "kind": rt.kind}
            d = schemas[definition_name(g, v, rt.kind)]
            assert d[GVK] == [gvk]
            assert "x-kubernetes-preserve-unknown-fields" not in d  # a real schema, not permissive
            assert set(d["properties"]) > {"apiVersion", "kind", "metadata"}
            if "patch" in rt.verbs:  # read-only kinds (metrics.k8s.io) have no write paths
                assert supports_field_validation_v3(doc, gvk)
                assert v3_strategic_merge(doc, gvk) == supports_strategic_merge(g, rt.kind)
        # only what the paths reach: no definitions of other groups' unused kinds
        reachable = set()
        todo = [doc["paths"]]
        while todo:
            for ref in _refs(todo.pop()):
                name = ref.removeprefix(V3_PREFIX)
                if name not in reachable:
                    reachable.add(name)
                    todo.append(schemas[name])
        assert set(schemas) == reachable
    core = v3[("", "v1")]["components"]["schemas"]
    assert "io.k8s.api.apps.v1.Deployment" not in core
    apps = v3[("apps", "v1")]["components"]["schemas"]
    assert "io.k8s.api.core.v1.PodSpec" in apps and f"{META}.ObjectMeta" in apps
    assert apps[f"{META}.ObjectMeta"]["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert docs.build_seconds < 5


async def test_served_v2_document_and_protobuf() -> None:
    reg = _builtin_registry()
    reg.add(_crontab())
    docs = OpenAPIDocuments(reg)
    body, etag = await docs.v2(False)
    assert etag == spec_hash(body)
    doc = orjson.loads(body)
    defs = doc["definitions"]
    for ref in _refs(doc):
        assert ref.removeprefix(V2_PREFIX) in defs, ref
    for rt in reg.all():
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        assert gvk in defs[definition_name(rt.group, rt.version, rt.kind)][GVK]
        if "patch" in rt.verbs:  # read-only kinds (metrics.k8s.io) have no write paths
            assert supports_field_validation_v2(doc, gvk)
    pb, pb_etag = await docs.v2(True)
    assert pb_etag == etag  # kube-openapi: the JSON's ETag for both
    top = _decode(pb)
    pb_defs = _named(_decode(top[9][0])[1])
    assert set(pb_defs) == set(defs)
    dep = _decode(pb_defs["io.k8s.api.apps.v1.DeploymentSpec"])
    assert dep[19] == [b"selector", b"template"]  # required


def test_custom_resource_schema_v3_and_v2() -> None:
    original = copy.deepcopy(CRONTAB_SCHEMA)
    v3 = custom_resource_schema("stable.example.com", "v1", "CronTab", CRONTAB_SCHEMA, v3=True)
    assert CRONTAB_SCHEMA == original  # not mutated
    assert v3[GVK] == [{"group": "stable.example.com", "version": "v1", "kind": "CronTab"}]
    assert v3["properties"]["metadata"] == {"$ref": V3_PREFIX + f"{META}.ObjectMeta"}
    assert v3["properties"]["apiVersion"] == {"type": "string"}
    spec = v3["properties"]["spec"]
    assert spec == CRONTAB_SCHEMA["properties"]["spec"]  # v3 keeps the CRD's schema as written
    v2 = custom_resource_schema("stable.example.com", "v1", "CronTab", CRONTAB_SCHEMA, v3=False)
    assert v2["properties"]["metadata"] == {"$ref": V2_PREFIX + f"{META}.ObjectMeta"}
    s2 = v2["properties"]["spec"]["properties"]
    assert s2["port"] == {"x-kubernetes-int-or-string": True}  # no anyOf, no type
    assert s2["note"] == {}  # nullable: untyped
    assert s2["extra"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert s2["replicas"] == {"type": "integer", "minimum": 1, "default": 1}
    assert v2["properties"]["spec"]["required"] == ["cronSpec"]
    # a root that keeps unknown fields is open in v2 (kubectl's v2 validator ignores the extension)
    open_root = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    o2 = custom_resource_schema("stable.example.com", "v1", "CronTab", open_root, v3=False)
    assert "properties" not in o2 and "x-kubernetes-preserve-unknown-fields" not in o2
    o3 = custom_resource_schema("stable.example.com", "v1", "CronTab", open_root, v3=True)
    assert set(o3["properties"]) == {"apiVersion", "kind", "metadata"}


async def test_documents_follow_registry_changes() -> None:
    reg = _builtin_registry()
    docs = OpenAPIDocuments(reg)
    assert docs._gen is None  # nothing built before the first request
    index = orjson.loads((await docs.v3_index()).body)
    assert docs.generation() is docs.generation()  # cached while nothing changes
    assert "apis/stable.example.com/v1" not in index["paths"]
    crontab = _crontab()
    reg.add(crontab)
    index2 = orjson.loads((await docs.v3_index()).body)
    url = index2["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/stable.example.com/v1?hash=")
    # other group-versions keep their URLs (kubectl's cached copies stay valid)
    for key, item in index["paths"].items():
        assert index2["paths"][key] == item
    served = await docs.v3("stable.example.com", "v1")
    assert served is not None and url.endswith(served.etag)
    doc = orjson.loads(served.body)
    ct = doc["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert ct[GVK] == [{"group": "stable.example.com", "version": "v1", "kind": "CronTab"}]
    assert ct["properties"]["spec"]["required"] == ["cronSpec"]
    assert f"{META}.ObjectMeta" in doc["components"]["schemas"]
    gvk = {"group": "stable.example.com", "version": "v1", "kind": "CronTab"}
    assert supports_field_validation_v3(doc, gvk)
    assert not v3_strategic_merge(doc, gvk)  # custom resources: no strategic merge (415)
    v2_before = (await docs.v2(False))[1]
    # a new schema object (the CRD was updated) changes the hash
    new_schema = copy.deepcopy(CRONTAB_SCHEMA)
    new_schema["properties"]["spec"]["properties"]["size"] = {"type": "string"}
    crontab.openapi_schema = new_schema
    index3 = orjson.loads((await docs.v3_index()).body)
    assert index3["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"] != url
    assert index3["paths"]["api/v1"] == index["paths"]["api/v1"]
    assert (await docs.v2(False))[1] != v2_before
    reg.remove(crontab)
    index4 = orjson.loads((await docs.v3_index()).body)
    assert index4 == index
    assert await docs.v3("stable.example.com", "v1") is None


# --- HTTP behaviour -------------------------------------------------------------------------


async def test_routes_http_behaviour() -> None:
    reg = _builtin_registry()
    app = web.Application()
    add_routes(app, reg)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/openapi/v3")
        assert resp.status == 200
        body = await resp.read()
        assert resp.headers["ETag"] == f'"{spec_hash(body)}"'
        assert resp.headers["Content-Type"].startswith("application/json")
        index = orjson.loads(body)
        url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        current = url.split("hash=")[1]

        resp = await client.get(url, headers={"Accept": "application/json"})
        assert resp.status == 200
        gv_body = await resp.read()
        assert spec_hash(gv_body) == current
        assert resp.headers["ETag"] == f'"{current}"'
        assert resp.headers["Cache-Control"] == "public, immutable"
        assert resp.headers["Vary"] == "Accept"
        assert resp.headers["Expires"].endswith("GMT")

        resp = await client.get("/openapi/v3/apis/apps/v1")  # no hash: cacheable only by ETag
        assert resp.status == 200 and "Cache-Control" not in resp.headers
        resp = await client.get("/openapi/v3/apis/apps/v1", headers={"If-None-Match": f'"{current}"'})
        assert resp.status == 304 and not await resp.read()

        resp = await client.get("/openapi/v3/apis/apps/v1?hash=0BSOLETE", allow_redirects=False)
        assert resp.status == 301
        assert resp.headers["Location"] == url

        resp = await client.get("/openapi/v3/api/v1", headers={"Accept": "application/xml"})
        assert resp.status == 406
        resp = await client.get("/openapi/v3/apis/nope.example.com/v1")
        assert resp.status == 404

        resp = await client.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        pb_etag = resp.headers["ETag"]
        resp = await client.get("/openapi/v2")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/json")
        assert resp.headers["ETag"] == pb_etag == f'"{spec_hash(await resp.read())}"'
        resp = await client.get("/openapi/v2", headers={"If-None-Match": pb_etag})
        assert resp.status == 304
        resp = await client.get("/openapi/v2", headers={"Accept": "text/html"})
        assert resp.status == 406
        resp = await client.get("/openapi/v2", headers={"Accept": "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"})
        assert resp.headers["Content-Type"].endswith("+protobuf")
