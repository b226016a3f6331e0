"""Tests for cloudlet.api.openapi: the shape kubectl v1.32 relies on.

The checks mirror the Go code kubectl runs (cli-runtime's
``supportsQueryParamV3`` / ``supportsQueryParam``, kubectl's
``gvkSupportsPatchOpenAPIV3``), re-stated here in Python.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import orjson
import pytest
import yaml

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
