"""OpenAPI documents: paths, operations and the glue kubectl relies on
(server-side field validation, strategic merge patch, ``kubectl explain``).

Role: build (not serve: see :mod:`cloudlet.api.openapi_routes`) the
``/openapi/v3`` index, the per-group-version ``/openapi/v3/api[s]/...``
documents and ``/openapi/v2``, from the served resources. Each resource is a
dict ``{group, version, kind, plural, namespaced, subresources}`` with optional
``verbs`` (default: all) and ``strategicMergePatch`` (default False, see below).
Schemas come from three places, in this order: ``schemas={kind: schema}``
(custom resources), a ``definitions`` pool of named definitions (the built-in
kinds, :mod:`cloudlet.api.openapi_schemas`; every pool definition a ``$ref``
reaches is included), and :func:`permissive_schema` for anything else.

What kubectl v1.32 does with these documents
--------------------------------------------
(Read in kubectl, cli-runtime and client-go v0.32.5; replayed with the 1.32.5
binary, ``/usr/lib/google-cloud-sdk/bin/kubectl.1.32``, against a logging
server built on this module.)

Field validation (``kubectl apply|create|replace|edit``; ``--validate``
defaults to ``strict``): ``Factory.Validator`` wraps the client-side schema in
a ``paramVerifyingSchema`` with ``NewFallbackQueryParamVerifier(V3, V2)`` for
the query parameter ``fieldValidation``. ``kubectl apply -f cm.yaml`` sends::

    GET /openapi/v3                       Accept: application/json, */*
    GET /openapi/v3/api/v1?hash=...       Accept: application/json
    GET /api, GET /apis                   (discovery, unless cached)
    GET /api/v1/namespaces/default/configmaps/cm1
    POST /api/v1/namespaces/default/configmaps?fieldManager=kubectl-client-side-apply&fieldValidation=Strict

and, when the object exists, ``GET /openapi/v2`` (protobuf, see below) and a
``PATCH ...?fieldManager=kubectl-client-side-apply&fieldValidation=Strict``.

1. V3 (``cli-runtime/pkg/resource/query_param_verifier_v3.go``): look up
   ``api/v1`` or ``apis/GROUP/VERSION`` in the index ``{"paths": {key:
   {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=..."}}}`` and fetch
   that URL (one starting with ``/openapi/v3`` is re-rooted under the
   kubeconfig server's path, its query kept; no ``hash`` is fine). In that
   document the first path item whose ``patch`` operation has an
   *operation-level* ``x-kubernetes-group-version-kind`` (a single ``{group,
   version, kind}`` object) equal to the object's GVK decides: a parameter
   ``{"name": "fieldValidation", "in": "query"}`` *inline in that operation's*
   ``parameters`` (path-level parameters and ``#/components/parameters`` refs
   are not looked at) means supported, otherwise unsupported. A GVK with no
   such path, a missing or failing document, is an *error*.
2. Group-version not in the index: a CRD (kubectl lists
   ``customresourcedefinitions.apiextensions.k8s.io``) is judged like
   ``Namespace`` in ``api/v1``; anything else is unsupported.
3. An error from V3 falls back to V2: ``GET /openapi/v2`` with
   ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and
   the same search. If that fails too (404, 406, JSON body), kubectl aborts:
   ``error validating data: failed to download openapi: ...``.
4. Supported: no client-side validation; kubectl sends ``fieldValidation=Strict``
   (``Warn``/``Ignore`` for ``--validate=warn|false``; ``Ignore`` is sent even
   when unsupported). Unsupported + ``strict``: kubectl validates client-side
   against the *v2 protobuf* models (``LookupResource(gvk)``; a GVK without a
   model is skipped, a download error aborts). ``kubectl apply -f`` of a
   ``kind: List`` document always takes this path (``v1/List`` is
   "unsupported" by definition), so it needs a protobuf ``/openapi/v2``:
   :func:`openapi_v2_protobuf`, answered with
   ``Content-Type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf``
   (``.v1.0``, not ``@v1.0``: Go's ``mime.ParseMediaType`` rejects the ``@``).
   ``kubectl patch`` sends no ``fieldValidation``: the server's default is Warn.

Client-side apply patches (``pkg/cmd/apply/patcher.go``): if the v3 ``patch``
operation for the GVK lists ``application/strategic-merge-patch+json`` in
``requestBody.content``, kubectl computes the strategic merge patch from the
v3 *schema* (``x-kubernetes-patch-merge-key`` and all); otherwise it asks
``/openapi/v2`` (errors ignored; SMP only if the v2 ``consumes`` lists it),
then falls back to its compiled-in Go types (built-in kinds: correct strategic
merge) or a JSON merge patch (anything else). Permissive schemas have no merge
keys, so strategic merge stays out of the patch content types unless a
resource sets ``strategicMergePatch: True`` (do that only with real schemas
whose ``x-kubernetes-patch-*`` metadata matches what the server applies; the
routes do it for built-in kinds with patch tables: kubectl 1.32's patches from
these schemas were checked byte-for-byte against its compiled-in types).

Schemas: ``components.schemas`` (v3) / ``definitions`` (v2) entries carry
``x-kubernetes-group-version-kind`` as a *list*; operations carry a single
object. ``kubectl explain`` (v3 by default, v2 with
``--output=plaintext-openapiv2``) finds the kind's schema by that list and
walks ``properties``/``items``/``additionalProperties`` through ``$ref`` and
single-element ``allOf``. kubectl's v2 validator (kube-openapi
``util/proto/validation``, used for client-side validation) rejects fields
missing from ``properties``, enforces ``required`` and ignores
``x-kubernetes-preserve-unknown-fields``, so the v2 permissive schema has no
``properties`` (a map of anything); the v3 one lists
``apiVersion``/``kind``/``metadata`` (for ``kubectl explain``) and sets
``x-kubernetes-preserve-unknown-fields: true``.

Caching: kube-apiserver's index URLs end in ``?hash=<SHA-512 of the JSON
bytes, upper-case hex>`` (:func:`spec_hash` of :func:`serialize`); the
document is served with ``ETag: "<hash>"``, ``Vary: Accept``,
``Cache-Control: public, immutable`` and a 301 to the current hash when an old
one is asked for. kubectl keeps an HTTP disk cache (``~/.kube/cache/http``),
so a hash must change whenever the bytes do; without ``hashes`` the index
URLs carry no query and kubectl revalidates.
"""

from __future__ import annotations

import copy
import hashlib
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

__all__ = [
    "definition_name",
    "gv_key",
    "openapi_v2",
    "openapi_v3_group_version",
    "openapi_v3_index",
    "openapi_v2_protobuf",
    "permissive_schema",
    "serialize",
    "spec_hash",
]

Doc = dict[str, Any]

GVK_EXT = "x-kubernetes-group-version-kind"
ACTION_EXT = "x-kubernetes-action"
PRESERVE_EXT = "x-kubernetes-preserve-unknown-fields"

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_SCALE = ("autoscaling", "v1", "Scale")
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_PRODUCES = ("application/json", "application/yaml")
_ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

# Subresources other than status/scale: (HTTP operations, kind of the body).
# The kind None means "the parent kind".
_SUBRESOURCES: dict[str, tuple[tuple[str, ...], tuple[str, str, str] | None]] = {
    "status": (("get", "put", "patch"), None),
    "scale": (("get", "put", "patch"), _SCALE),
    "ephemeralcontainers": (("get", "put", "patch"), None),
    "resize": (("get", "put", "patch"), None),
    "approval": (("get", "put", "patch"), None),
    "binding": (("post",), ("", "v1", "Binding")),
    "eviction": (("post",), ("policy", "v1", "Eviction")),
    "token": (("post",), ("authentication.k8s.io", "v1", "TokenRequest")),
    "log": (("get",), None),
}

# Short original descriptions of the query parameters (Kubernetes' own wording is
# not reproduced).
_DESCRIPTIONS = {
    "pretty": "Indent the JSON response when 'true'.",
    "dryRun": "'All' runs every stage of the request without persisting anything.",
    "fieldManager": "The name of the actor making the change, recorded in managedFields.",
    "fieldValidation": (
        "What to do with unknown or duplicate fields in the body: Ignore (drop them), "
        "Warn (drop them and say so in Warning headers; the default) or Strict (reject the request)."
    ),
    "force": "Apply requests only: take over fields other managers own.",
    "gracePeriodSeconds": "Seconds to wait before the object is deleted; 0 deletes at once.",
    "propagationPolicy": "How dependents are garbage-collected: Orphan, Background or Foreground.",
    "orphanDependents": "Deprecated; use propagationPolicy.",
    "labelSelector": "Only objects whose labels match this selector.",
    "fieldSelector": "Only objects whose fields match this selector.",
    "watch": "Stream changes (added, modified, deleted) instead of returning a list.",
    "allowWatchBookmarks": "Ask for BOOKMARK watch events.",
    "limit": "The most items to return in one page.",
    "continue": "The token from the previous page's metadata.continue.",
    "resourceVersion": "Which resource version the answer may be served from.",
    "resourceVersionMatch": "How resourceVersion applies to a list: Exact or NotOlderThan.",
    "sendInitialEvents": "With watch=true: start the stream with the current objects.",
    "timeoutSeconds": "End the list or watch call after this many seconds.",
}
_PARAM_TYPES = {
    "force": "boolean",
    "orphanDependents": "boolean",
    "watch": "boolean",
    "allowWatchBookmarks": "boolean",
    "sendInitialEvents": "boolean",
    "gracePeriodSeconds": "integer",
    "limit": "integer",
    "timeoutSeconds": "integer",
}
_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_OP_PARAMS: dict[str, tuple[str, ...]] = {
    "get": (),
    "list": _LIST_PARAMS,
    "post": ("dryRun", "fieldManager", "fieldValidation"),
    "put": ("dryRun", "fieldManager", "fieldValidation"),
    "patch": ("dryRun", "fieldManager", "fieldValidation", "force"),
    "delete": ("gracePeriodSeconds", "orphanDependents", "propagationPolicy", "dryRun"),
    "deletecollection": (
        "continue",
        "dryRun",
        "fieldSelector",
        "gracePeriodSeconds",
        "labelSelector",
        "limit",
        "orphanDependents",
        "propagationPolicy",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeoutSeconds",
    ),
}
_OP_ID_VERB = {
    "get": "read",
    "list": "list",
    "post": "create",
    "put": "replace",
    "patch": "patch",
    "delete": "delete",
    "deletecollection": "deleteCollection",
}
_OP_VERB_NEEDED = {
    "get": "get",
    "list": "list",
    "post": "create",
    "put": "update",
    "patch": "patch",
    "delete": "delete",
    "deletecollection": "deletecollection",
}
_HTTP_METHOD = {"deletecollection": "delete", "list": "get"}


# --- names ---------------------------------------------------------------------------


def gv_key(group: str, version: str) -> str:
    """The index key of a group-version: ``api/v1`` or ``apis/apps/v1``."""
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _api_root(group: str, version: str) -> str:
    return "/" + gv_key(group, version)


def definition_name(group: str, version: str, kind: str) -> str:
    """Kubernetes-style schema name: ``io.k8s.api.apps.v1.Deployment`` for
    built-in groups, reversed domain (``com.example.stable.v1.CronTab``) for
    the rest, like kube-apiserver names CRD schemas."""
    if group == "":
        return f"io.k8s.api.core.{version}.{kind}"
    if group == "apiextensions.k8s.io":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}"
    if group == "apiregistration.k8s.io":
        return f"io.k8s.kube-aggregator.pkg.apis.apiregistration.{version}.{kind}"
    if "." not in group:
        return f"io.k8s.api.{group}.{version}.{kind}"
    if group.endswith(".k8s.io"):
        return f"io.k8s.api.{group.split('.')[0]}.{version}.{kind}"
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def _op_prefix(group: str, version: str) -> str:
    """``CoreV1``, ``AppsV1``, ``RbacAuthorizationV1``, ``StableExampleComV1``."""
    if not group:
        parts = ["core"]
    else:
        g = group[: -len(".k8s.io")] if group.endswith(".k8s.io") else group
        parts = [p for p in g.replace("-", ".").split(".") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) + version[:1].upper() + version[1:]


def _tag(group: str, version: str) -> str:
    p = _op_prefix(group, version)[: -len(version)]
    return p[:1].lower() + p[1:] + "_" + version


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


# --- schemas -------------------------------------------------------------------------


def permissive_schema(
    group: str, version: str, kind: str, *, with_properties: bool = True
) -> Doc:
    """An object schema that accepts anything, tagged with its GVK.

    ``with_properties`` adds ``apiVersion``/``kind``/``metadata`` (v3); the v2
    form leaves ``properties`` out because kubectl's v2 validator rejects
    any field not listed there.
    """
    schema: Doc = {
        "description": f"{kind} ({group or 'core'}/{version}).",
        "type": "object",
        PRESERVE_EXT: True,
        GVK_EXT: [_gvk(group, version, kind)],
    }
    if with_properties:
        schema["properties"] = {
            "apiVersion": {
                "description": "The group/version of this object's schema.",
                "type": "string",
            },
            "kind": {
                "description": "The kind of this object.",
                "type": "string",
            },
            "metadata": {
                "description": "The object's metadata.",
                "allOf": [{"$ref": "#/components/schemas/" + f"{_META}.ObjectMeta"}],
                "default": {},
            },
        }
    return schema


def _list_schema(group: str, version: str, kind: str, item_ref: str, *, v3: bool) -> Doc:
    meta_ref = ("#/components/schemas/" if v3 else "#/definitions/") + f"{_META}.ListMeta"
    return {
        "description": f"{kind}List is a list of {kind}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"$ref": meta_ref} if not v3 else {"allOf": [{"$ref": meta_ref}], "default": {}},
            "items": {"type": "array", "items": {"$ref": item_ref}},
        },
        GVK_EXT: [_gvk(group, version, kind + "List")],
    }


def _meta_schemas(*, v3: bool) -> dict[str, Doc]:
    def obj(description: str, gvk_kind: str | None = None) -> Doc:
        s: Doc = {"description": description, "type": "object", PRESERVE_EXT: True}
        if gvk_kind:
            s[GVK_EXT] = [_gvk("", "v1", gvk_kind)]
        return s

    out = {
        f"{_META}.ObjectMeta": obj("Standard object metadata (permissive placeholder)."),
        f"{_META}.ListMeta": obj("Standard list metadata (permissive placeholder)."),
        f"{_META}.Status": obj("The outcome of a call that returns no object (permissive placeholder).", "Status"),
        f"{_META}.DeleteOptions": obj("Options for a delete request (permissive placeholder).", "DeleteOptions"),
        f"{_META}.Patch": {
            "description": "A PATCH request body, in the format its Content-Type names.",
            "type": "object",
        },
    }
    if not v3:
        for s in out.values():
            s.pop(PRESERVE_EXT, None)
    return out


def _with_gvk(schema: Mapping[str, Any], gvk: dict[str, str]) -> Doc:
    s = copy.deepcopy(dict(schema))
    listed = s.get(GVK_EXT)
    if not isinstance(listed, list):
        s[GVK_EXT] = [gvk]
    elif gvk not in listed:
        s[GVK_EXT] = [*listed, gvk]
    return s


# --- paths ---------------------------------------------------------------------------


def _param(name: str, where: str = "query", *, description: str = "", v3: bool) -> Doc:
    typ = _PARAM_TYPES.get(name, "string")
    desc = description or _DESCRIPTIONS.get(name, "")
    if v3:
        p: Doc = {
            "name": name,
            "in": where,
            "description": desc,
            "schema": {"type": typ, "uniqueItems": True},
        }
    else:
        p = {"name": name, "in": where, "description": desc, "type": typ, "uniqueItems": True}
    if where == "path":
        p["required"] = True
    return p


def _resource_fields(r: Mapping[str, Any]) -> tuple[str, str, str, str, bool, list[str], set[str], bool]:
    return (
        str(r["group"]),
        str(r["version"]),
        str(r["kind"]),
        str(r["plural"]),
        bool(r["namespaced"]),
        [str(s) for s in r.get("subresources") or ()],
        set(r.get("verbs") or _ALL_VERBS),
        bool(r.get("strategicMergePatch", False)),
    )


def _iter_refs(node: Any) -> Iterable[str]:
    """Every ``$ref`` string inside a JSON value."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "$ref" and isinstance(v, str):
                    yield v
                elif isinstance(v, dict | list):
                    stack.append(v)
        elif isinstance(n, list):
            stack.extend(v for v in n if isinstance(v, dict | list))


class _Builder:
    """Shared path/operation construction for the v2 and v3 documents."""

    def __init__(self, *, v3: bool, definitions: Mapping[str, Doc] | None = None) -> None:
        self.v3 = v3
        self.paths: dict[str, Doc] = {}
        self.pool: Mapping[str, Doc] = definitions or {}
        self.schemas: dict[str, Doc] = {
            name: self.pool.get(name, schema) for name, schema in _meta_schemas(v3=v3).items()
        }

    def ref(self, name: str) -> str:
        return ("#/components/schemas/" if self.v3 else "#/definitions/") + name

    def add_schema(self, group: str, version: str, kind: str, given: Mapping[str, Any] | None) -> str:
        name = definition_name(group, version, kind)
        if name not in self.schemas or given is not None:
            if given is not None:
                self.schemas[name] = _with_gvk(given, _gvk(group, version, kind))
            elif name in self.pool:
                self.schemas[name] = self.pool[name]
            else:
                self.schemas[name] = permissive_schema(group, version, kind, with_properties=self.v3)
        return name

    def close_schemas(self) -> None:
        """Add every pool definition the document's ``$ref``s reach (transitively)."""
        prefix = self.ref("")
        todo = [*self.schemas.values(), *self.paths.values()]
        while todo:
            for ref in _iter_refs(todo.pop()):
                name = ref.removeprefix(prefix)
                if name not in self.schemas and name in self.pool:
                    self.schemas[name] = self.pool[name]
                    todo.append(self.pool[name])
        # only what the paths reach: the shared meta definitions (and what they pull
        # in) go from a read-only group such as metrics.k8s.io (no DeleteOptions, Patch, Status)
        reached: set[str] = set()
        todo = list(self.paths.values())
        while todo:
            for ref in _iter_refs(todo.pop()):
                name = ref.removeprefix(prefix)
                if name not in reached and name in self.schemas:
                    reached.add(name)
                    todo.append(self.schemas[name])
        for name in [n for n in self.schemas if n not in reached]:
            del self.schemas[name]

    def operation(
        self,
        op: str,
        gvk: tuple[str, str, str],
        op_id: str,
        tag: str,
        body_ref: str | None,
        result_ref: str,
        *,
        strategic_merge: bool,
    ) -> Doc:
        method = _HTTP_METHOD.get(op, op)
        o: Doc = {
            "description": f"{_OP_ID_VERB[op]} {gvk[2]}",
            "operationId": op_id,
            "tags": [tag],
        }
        params = [_param(p, v3=self.v3) for p in _OP_PARAMS[op]]
        codes = {"get": ("200",), "list": ("200",), "post": ("200", "201", "202"),
                 "put": ("200", "201"), "patch": ("200", "201"),
                 "delete": ("200", "202"), "deletecollection": ("200",)}[op]
        if op in ("delete", "deletecollection"):
            result_ref = self.ref(f"{_META}.Status")
            body_ref = self.ref(f"{_META}.DeleteOptions")
        if op == "patch":
            body_ref = self.ref(f"{_META}.Patch")
            types = [t for t in _PATCH_TYPES if strategic_merge or "strategic" not in t]
        else:
            types = ["*/*"] if method in ("post", "put") else ["application/json"]
        names = {"200": "OK", "201": "Created", "202": "Accepted"}
        if self.v3:
            if params:
                o["parameters"] = params
            if body_ref is not None and method != "get":
                o["requestBody"] = {
                    "content": {t: {"schema": {"$ref": body_ref}} for t in types},
                    "required": method != "delete",
                }
            content = {t: {"schema": {"$ref": result_ref}} for t in _PRODUCES}
            o["responses"] = {c: {"description": names[c], "content": content} for c in codes}
            o["responses"]["401"] = {"description": "Unauthorized"}
        else:
            if body_ref is not None and method != "get":
                params.insert(0, {"name": "body", "in": "body", "required": method != "delete",
                                  "schema": {"$ref": body_ref}})
                o["consumes"] = types
            if params:
                o["parameters"] = params
            o["produces"] = list(_PRODUCES)
            o["schemes"] = ["https"]
            o["responses"] = {c: {"description": names[c], "schema": {"$ref": result_ref}} for c in codes}
            o["responses"]["401"] = {"description": "Unauthorized"}
        o[ACTION_EXT] = op
        o[GVK_EXT] = _gvk(*gvk)
        return o

    def add_path(self, path: str, path_params: list[Doc], ops: dict[str, Doc]) -> None:
        if not ops:
            return
        item: Doc = {"parameters": [*path_params, _param("pretty", v3=self.v3)]}
        for op, body in ops.items():
            item[_HTTP_METHOD.get(op, op)] = body
        self.paths[path] = item

    def add_resource(self, r: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]] | None) -> None:
        group, version, kind, plural, namespaced, subs, verbs, smp = _resource_fields(r)
        v3 = self.v3
        schema_name = self.add_schema(group, version, kind, (schemas or {}).get(kind))
        list_name = definition_name(group, version, kind + "List")
        if list_name not in self.schemas:
            given_list = (schemas or {}).get(kind + "List")
            self.schemas[list_name] = (
                _with_gvk(given_list, _gvk(group, version, kind + "List"))
                if given_list is not None
                else _list_schema(group, version, kind, self.ref(schema_name), v3=v3)
            )
        obj_ref, list_ref = self.ref(schema_name), self.ref(list_name)
        gvk = (group, version, kind)
        prefix = _op_prefix(group, version)
        tag = _tag(group, version)
        scope = "Namespaced" if namespaced else ""
        root = _api_root(group, version)
        base = f"{root}/namespaces/{{namespace}}/{plural}" if namespaced else f"{root}/{plural}"
        ns_param = (
            [_param("namespace", "path", description="the namespace of the object", v3=v3)]
            if namespaced
            else []
        )
        name_param = [_param("name", "path", description=f"name of the {kind}", v3=v3)]

        def allowed(op: str) -> bool:
            return _OP_VERB_NEEDED[op] in verbs

        def op_id(op: str, suffix: str = "", for_all: bool = False) -> str:
            if for_all:
                return f"{_OP_ID_VERB[op]}{prefix}{kind}ForAllNamespaces"
            return f"{_OP_ID_VERB[op]}{prefix}{scope}{kind}{suffix}"

        def build(op: str, body_gvk: tuple[str, str, str], body: str, result: str, suffix: str = "",
                  for_all: bool = False) -> Doc:
            return self.operation(op, body_gvk, op_id(op, suffix, for_all), tag, body, result,
                                  strategic_merge=smp)

        collection = {
            op: build(op, gvk, obj_ref, list_ref if op == "list" else obj_ref)
            for op in ("list", "post", "deletecollection")
            if allowed(op)
        }
        self.add_path(base, ns_param, collection)
        item = {op: build(op, gvk, obj_ref, obj_ref) for op in ("get", "put", "patch", "delete") if allowed(op)}
        self.add_path(f"{base}/{{name}}", name_param + ns_param, item)
        if namespaced and allowed("list"):
            self.add_path(f"{root}/{plural}", [], {"list": build("list", gvk, obj_ref, list_ref, for_all=True)})

        for sub in subs:
            ops, sub_kind = _SUBRESOURCES.get(sub, (("get", "put", "patch"), None))
            sub_gvk = sub_kind or gvk
            if sub_kind is None:
                sub_ref = obj_ref
            else:
                same_gv = sub_kind[:2] == (group, version)
                given = (schemas or {}).get(sub_kind[2]) if same_gv else None
                sub_ref = self.ref(self.add_schema(*sub_kind, given))
            suffix = "".join(p[:1].upper() + p[1:] for p in sub.split("-"))
            sub_ops = {}
            for op in ops:
                if op in ("get", "put", "patch") and not allowed(op):
                    continue
                sub_ops[op] = self.operation(
                    op, sub_gvk, op_id(op, suffix), tag, sub_ref, sub_ref, strategic_merge=smp
                )
            self.add_path(f"{base}/{{name}}/{sub}", name_param + ns_param, sub_ops)


# --- documents -----------------------------------------------------------------------


def openapi_v3_index(
    gvs: Iterable[tuple[str, str]], hashes: Mapping[tuple[str, str], str] | None = None
) -> Doc:
    """The ``/openapi/v3`` discovery document.

    ``{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=H"},
    "apis/apps/v1": {...}}}``; ``group == ""`` is the core group. The
    ``?hash=`` query is added for group-versions present in ``hashes`` (use
    :func:`spec_hash` of the exact bytes served for that group-version).
    """
    paths: dict[str, Doc] = {}
    for group, version in sorted(set(gvs)):
        key = gv_key(group, version)
        url = f"/openapi/v3/{key}"
        h = (hashes or {}).get((group, version))
        if h:
            url += f"?hash={h}"
        paths[key] = {"serverRelativeURL": url}
    return {"paths": paths}


def openapi_v3_group_version(
    group: str,
    version: str,
    resources: list[dict[str, Any]],
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    definitions: Mapping[str, Doc] | None = None,
    server_version: str = "unversioned",
) -> Doc:
    """The OpenAPI 3.0 document for one group-version (``/openapi/v3/apis/G/V``).

    For every resource: collection, item, all-namespaces list and subresource
    paths, each operation tagged with ``x-kubernetes-action`` and a single
    ``x-kubernetes-group-version-kind`` (subresources: ``/status`` the parent
    kind, ``/scale`` ``autoscaling/v1 Scale``); POST/PUT/PATCH carry the
    ``fieldValidation`` query parameter inline. ``schemas`` maps kind (or
    ``KindList``) to a full schema; a kind without one takes its definition
    from ``definitions`` (a pool of named v3 definitions, e.g.
    :func:`cloudlet.api.openapi_schemas.builtin_definitions`) or else gets
    :func:`permissive_schema`. Every pool definition a ``$ref`` reaches is
    included (and only those). Resources of other group-versions are ignored.
    """
    b = _Builder(v3=True, definitions=definitions)
    for r in resources:
        if (r["group"], r["version"]) == (group, version):
            b.add_resource(r, schemas)
    b.close_schemas()
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": dict(sorted(b.paths.items())),
        "components": {
            "schemas": dict(sorted(b.schemas.items())),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "name": "authorization",
                    "in": "header",
                    "description": "Bearer Token authentication",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


def openapi_v2(
    resources: list[dict[str, Any]],
    schemas: Mapping[tuple[str, str, str], Mapping[str, Any]] | None = None,
    *,
    definitions: Mapping[str, Doc] | None = None,
    server_version: str = "unversioned",
) -> Doc:
    """The Swagger 2.0 document (``/openapi/v2``) for all resources.

    Same paths and operations as v3 (``consumes`` on bodies, inline
    ``fieldValidation`` parameters). Permissive definitions have no
    ``properties`` so kubectl's v2 validator, if it ever runs, accepts any
    field. ``schemas`` is keyed by ``(group, version, kind)`` since this
    document spans all groups. ``definitions`` is a pool of v2 definitions as
    for :func:`openapi_v3_group_version`. kubectl asks for protobuf here; this
    is the JSON form.
    """
    b = _Builder(v3=False, definitions=definitions)
    by_gv: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for (g, v, k), s in (schemas or {}).items():
        by_gv.setdefault((g, v), {})[k] = s
    for r in resources:
        b.add_resource(r, by_gv.get((r["group"], r["version"])))
    b.close_schemas()
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": dict(sorted(b.paths.items())),
        "definitions": dict(sorted(b.schemas.items())),
        "securityDefinitions": {
            "BearerToken": {
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
                "description": "Bearer Token authentication",
            }
        },
        "security": [{"BearerToken": []}],
    }


def serialize(doc: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes of a document (what :func:`spec_hash` should hash)."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def spec_hash(data: bytes) -> str:
    """kube-openapi's ETag / ``?hash=``: SHA-512 of the served bytes, upper-case hex."""
    return hashlib.sha512(data).hexdigest().upper()


# --- /openapi/v2 as protobuf -----------------------------------------------------------
#
# kubectl only reads /openapi/v2 as protobuf (gnostic ``openapi_v2.Document``,
# github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto). This is a
# hand-written encoder for the subset of Swagger 2.0 these documents use.
# Field numbers are the .proto's; vendor extensions (``x-*``) and free-form
# values (``default``, ``example``, ``enum``) travel as ``Any{yaml}``, where
# JSON text is valid YAML.

Msg = bytearray


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field_no: int, wire: int) -> bytes:
    return _varint(field_no << 3 | wire)


def _put_bytes(m: Msg, field_no: int, data: bytes) -> None:
    m += _key(field_no, 2) + _varint(len(data)) + data


def _put_str(m: Msg, field_no: int, value: Any) -> None:
    if isinstance(value, str) and value:
        _put_bytes(m, field_no, value.encode("utf-8", "surrogatepass"))


def _put_strs(m: Msg, field_no: int, values: Any) -> None:
    for v in values or ():
        _put_bytes(m, field_no, str(v).encode("utf-8", "surrogatepass"))


def _put_bool(m: Msg, field_no: int, value: Any, *, always: bool = False) -> None:
    if value or (always and value is not None):
        m += _key(field_no, 0) + _varint(1 if value else 0)


def _put_int(m: Msg, field_no: int, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value:
        m += _key(field_no, 0) + _varint(value)


def _put_double(m: Msg, field_no: int, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value:
        m += _key(field_no, 1) + struct.pack("<d", float(value))


def _put_msg(m: Msg, field_no: int, sub: bytes | None) -> None:
    if sub is not None:
        _put_bytes(m, field_no, bytes(sub))


def _any(value: Any) -> bytes:
    m = Msg()
    _put_bytes(m, 2, orjson.dumps(value) + b"\n")  # Any.yaml
    return bytes(m)


def _named(name: str, value: bytes) -> bytes:
    m = Msg()
    _put_str(m, 1, name)
    _put_bytes(m, 2, value)
    return bytes(m)


def _put_ext(m: Msg, field_no: int, obj: Mapping[str, Any]) -> None:
    for k, v in obj.items():
        if k.startswith("x-"):
            _put_bytes(m, field_no, _named(k, _any(v)))


def _pb_schema(s: Mapping[str, Any]) -> bytes:
    m = Msg()
    _put_str(m, 1, s.get("$ref"))
    _put_str(m, 2, s.get("format"))
    _put_str(m, 3, s.get("title"))
    _put_str(m, 4, s.get("description"))
    if "default" in s:
        _put_msg(m, 5, _any(s["default"]))
    _put_double(m, 6, s.get("multipleOf"))
    _put_double(m, 7, s.get("maximum"))
    _put_bool(m, 8, s.get("exclusiveMaximum"))
    _put_double(m, 9, s.get("minimum"))
    _put_bool(m, 10, s.get("exclusiveMinimum"))
    _put_int(m, 11, s.get("maxLength"))
    _put_int(m, 12, s.get("minLength"))
    _put_str(m, 13, s.get("pattern"))
    _put_int(m, 14, s.get("maxItems"))
    _put_int(m, 15, s.get("minItems"))
    _put_bool(m, 16, s.get("uniqueItems"))
    _put_int(m, 17, s.get("maxProperties"))
    _put_int(m, 18, s.get("minProperties"))
    _put_strs(m, 19, s.get("required"))
    for e in s.get("enum") or ():
        _put_msg(m, 20, _any(e))
    ap = s.get("additionalProperties")
    if isinstance(ap, bool):
        sub = Msg()
        sub += _key(2, 0) + _varint(1 if ap else 0)
        _put_msg(m, 21, sub)
    elif isinstance(ap, Mapping):
        sub = Msg()
        _put_msg(sub, 1, _pb_schema(ap))
        _put_msg(m, 21, sub)
    t = s.get("type")
    if t:
        sub = Msg()
        _put_strs(sub, 1, [t] if isinstance(t, str) else t)
        _put_msg(m, 22, sub)
    items = s.get("items")
    if items:
        sub = Msg()
        for it in [items] if isinstance(items, Mapping) else items:
            _put_msg(sub, 1, _pb_schema(it))
        _put_msg(m, 23, sub)
    for a in s.get("allOf") or ():
        _put_msg(m, 24, _pb_schema(a))
    props = s.get("properties")
    if props:
        sub = Msg()
        for name, ps in props.items():
            _put_bytes(sub, 1, _named(name, _pb_schema(ps)))
        _put_msg(m, 25, sub)
    _put_str(m, 26, s.get("discriminator"))
    _put_bool(m, 27, s.get("readOnly"))
    if "example" in s:
        _put_msg(m, 30, _any(s["example"]))
    _put_ext(m, 31, s)
    return bytes(m)


def _pb_parameter(p: Mapping[str, Any]) -> bytes:
    """A ``Parameter`` message: body parameter or a non-body sub-schema."""
    param = Msg()
    where = p.get("in", "")
    if where == "body":
        body = Msg()
        _put_str(body, 1, p.get("description"))
        _put_str(body, 2, p.get("name"))
        _put_str(body, 3, where)
        _put_bool(body, 4, p.get("required"))
        _put_msg(body, 5, _pb_schema(p.get("schema") or {}))
        _put_ext(body, 6, p)
        _put_msg(param, 1, body)
        return bytes(param)
    sub = Msg()
    _put_bool(sub, 1, p.get("required"))
    _put_str(sub, 2, where)
    _put_str(sub, 3, p.get("description"))
    _put_str(sub, 4, p.get("name"))
    # QueryParameterSubSchema has allowEmptyValue at 5 and everything after it
    # shifted by one compared to the header/path/formData sub-schemas.
    off = 1 if where in ("query", "formData") else 0
    if off:
        _put_bool(sub, 5, p.get("allowEmptyValue"))
    _put_str(sub, 5 + off, p.get("type"))
    _put_str(sub, 6 + off, p.get("format"))
    _put_str(sub, 8 + off, p.get("collectionFormat"))
    if "default" in p:
        _put_msg(sub, 9 + off, _any(p["default"]))
    _put_bool(sub, 19 + off, p.get("uniqueItems"))
    for e in p.get("enum") or ():
        _put_msg(sub, 20 + off, _any(e))
    _put_ext(sub, 22 + off, p)
    which = {"header": 1, "formData": 2, "query": 3, "path": 4}.get(where, 3)
    non_body = Msg()
    _put_msg(non_body, which, sub)
    _put_msg(param, 2, non_body)
    return bytes(param)


def _pb_parameter_item(p: Mapping[str, Any]) -> bytes:
    """A ``ParametersItem``: a parameter or a ``$ref`` to a global one."""
    item = Msg()
    if "$ref" in p:
        ref = Msg()
        _put_str(ref, 1, p["$ref"])
        _put_str(ref, 2, p.get("description"))
        _put_msg(item, 2, ref)
    else:
        _put_msg(item, 1, _pb_parameter(p))
    return bytes(item)


def _pb_response(r: Mapping[str, Any]) -> bytes:
    value = Msg()
    if "$ref" in r:
        ref = Msg()
        _put_str(ref, 1, r["$ref"])
        _put_msg(value, 2, ref)
        return bytes(value)
    resp = Msg()
    _put_str(resp, 1, r.get("description"))
    if isinstance(r.get("schema"), Mapping):
        item = Msg()
        _put_msg(item, 1, _pb_schema(r["schema"]))
        _put_msg(resp, 2, item)
    _put_ext(resp, 5, r)
    _put_msg(value, 1, resp)
    return bytes(value)


def _pb_security(reqs: Any) -> list[bytes]:
    out = []
    for req in reqs or ():
        m = Msg()
        for name, scopes in req.items():
            arr = Msg()
            _put_strs(arr, 1, scopes)
            _put_bytes(m, 1, _named(name, bytes(arr)))
        out.append(bytes(m))
    return out


def _pb_operation(o: Mapping[str, Any]) -> bytes:
    m = Msg()
    _put_strs(m, 1, o.get("tags"))
    _put_str(m, 2, o.get("summary"))
    _put_str(m, 3, o.get("description"))
    _put_str(m, 5, o.get("operationId"))
    _put_strs(m, 6, o.get("produces"))
    _put_strs(m, 7, o.get("consumes"))
    for p in o.get("parameters") or ():
        _put_msg(m, 8, _pb_parameter_item(p))
    responses = Msg()
    for code, r in (o.get("responses") or {}).items():
        if str(code).startswith("x-"):
            continue
        _put_bytes(responses, 1, _named(str(code), _pb_response(r)))
    _put_msg(m, 9, responses)
    _put_strs(m, 10, o.get("schemes"))
    _put_bool(m, 11, o.get("deprecated"))
    for s in _pb_security(o.get("security")):
        _put_msg(m, 12, s)
    _put_ext(m, 13, o)
    return bytes(m)


def openapi_v2_protobuf(doc: Mapping[str, Any]) -> bytes:
    """Encode an :func:`openapi_v2` document as the protobuf kubectl asks for
    (``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``;
    answer with that Content-Type).

    Without it, ``kubectl apply -f`` of a ``kind: List`` file (and any other
    case where kubectl falls back to client-side validation) fails with
    ``failed to download openapi``.
    """
    m = Msg()
    _put_str(m, 1, doc.get("swagger", "2.0"))
    info = doc.get("info") or {}
    info_m = Msg()
    _put_str(info_m, 1, info.get("title"))
    _put_str(info_m, 2, info.get("version"))
    _put_str(info_m, 3, info.get("description"))
    _put_ext(info_m, 7, info)
    _put_msg(m, 2, info_m)
    _put_str(m, 3, doc.get("host"))
    _put_str(m, 4, doc.get("basePath"))
    _put_strs(m, 5, doc.get("schemes"))
    _put_strs(m, 6, doc.get("consumes"))
    _put_strs(m, 7, doc.get("produces"))
    paths = Msg()
    _put_ext(paths, 1, doc.get("paths") or {})
    for path, item in (doc.get("paths") or {}).items():
        if path.startswith("x-"):
            continue
        pi = Msg()
        _put_str(pi, 1, item.get("$ref"))
        for no, method in ((2, "get"), (3, "put"), (4, "post"), (5, "delete"), (6, "options"), (7, "head"), (8, "patch")):
            if isinstance(item.get(method), Mapping):
                _put_msg(pi, no, _pb_operation(item[method]))
        for p in item.get("parameters") or ():
            _put_msg(pi, 9, _pb_parameter_item(p))
        _put_ext(pi, 10, item)
        _put_bytes(paths, 2, _named(path, bytes(pi)))
    _put_msg(m, 8, paths)
    defs = Msg()
    for name, s in (doc.get("definitions") or {}).items():
        _put_bytes(defs, 1, _named(name, _pb_schema(s)))
    _put_msg(m, 9, defs)
    params = doc.get("parameters") or {}
    if params:
        pd = Msg()
        for name, p in params.items():
            _put_bytes(pd, 1, _named(name, _pb_parameter(p)))
        _put_msg(m, 10, pd)
    for s in _pb_security(doc.get("security")):
        _put_msg(m, 12, s)
    sec_defs = doc.get("securityDefinitions") or {}
    if sec_defs:
        sd = Msg()
        for name, d in sec_defs.items():
            if d.get("type") != "apiKey":
                continue
            api_key = Msg()
            _put_str(api_key, 1, d.get("type"))
            _put_str(api_key, 2, d.get("name"))
            _put_str(api_key, 3, d.get("in"))
            _put_str(api_key, 4, d.get("description"))
            item = Msg()
            _put_msg(item, 2, api_key)
            _put_bytes(sd, 1, _named(name, bytes(item)))
        _put_msg(m, 13, sd)
    _put_ext(m, 16, doc)
    return bytes(m)
