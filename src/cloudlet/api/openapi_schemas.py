"""OpenAPI schemas of the built-in kinds and of custom resources.

Role: the *schema* half of ``/openapi/v2`` and ``/openapi/v3`` (the paths and
operations are :mod:`cloudlet.api.openapi`'s). Built-in definitions are
generated from the structural field tables the protobuf decoder uses
(:data:`cloudlet.api.protobuf_schema.MESSAGES`: every field's JSON name, type,
repeated/map/pointer and ``omitempty``) plus a few tables in the same syntax
here (meta.v1 ``ListMeta``/``Status``, the apiextensions.k8s.io/v1
CustomResourceDefinition), named as Kubernetes names them
(``io.k8s.api.core.v1.Pod``, ``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta``)
and linked with ``$ref``s. Custom resources contribute their served version's
``openAPIV3Schema`` (:func:`custom_resource_schema`).

What goes into a definition:

* ``type``/``format`` per field: strings, ``integer`` with ``int32``/``int64``,
  ``boolean``, ``string``/``byte`` for ``[]byte``; arrays and
  ``additionalProperties`` maps; Go embedded (``json:",inline"``) structs are
  merged into the parent; named slices (``ExtraValue``) become plain arrays.
* Custom-JSON types get Kubernetes' own definitions: ``Time``/``MicroTime``
  (string, ``date-time``), ``IntOrString`` (``int-or-string``; v3 ``oneOf``
  integer/string plus ``x-kubernetes-int-or-string``; v2 string), ``Quantity``
  (v3 ``oneOf`` string/number; v2 string), ``FieldsV1`` and ``RawExtension``
  (object; v3 adds ``x-kubernetes-preserve-unknown-fields``).
* ``required``: openapi-gen's rule — a field is required unless its JSON tag
  says ``omitempty`` or it is marked ``+optional`` (``+required`` wins over
  ``omitempty``). The table's ``?`` flag gives ``omitempty``; the exceptions
  are in :data:`~cloudlet.api.field_markers.FIELD_TAGS`.
* ``x-kubernetes-list-type`` / ``-list-map-keys`` / ``-map-type`` from the
  ``+listType``/``+listMapKey``/``+mapType``/``+structType`` markers of
  k8s.io/api and k8s.io/apimachinery v0.36.3 (the version of the field tables),
  kept as data in :mod:`cloudlet.api.field_markers` (shared with server-side apply).
* ``x-kubernetes-patch-strategy`` / ``-patch-merge-key`` from the strategic
  merge patch tables the server itself applies (:mod:`cloudlet.api.patch`), so
  a client computing a strategic merge patch from these schemas and the server
  agree on every list they merge.
* Top-level kinds carry ``apiVersion``/``kind`` properties, a short original
  description and ``x-kubernetes-group-version-kind`` (a list). Fields carry no
  descriptions: Kubernetes' field documentation is not reproduced here.

Definitions are built once per process on first use (:func:`builtin_definitions`,
about 400 definitions, some 60 ms) and shared between documents: treat them as read-only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from cloudlet.api import patch, protobuf
from cloudlet.api.field_markers import ATOMIC_STRUCTS, FIELD_TAGS
from cloudlet.api.field_markers import field_tags as _field_tags
from cloudlet.api.protobuf_schema import ANY_VERSION_KINDS, KINDS

__all__ = [
    "ATOMIC_STRUCTS",
    "FIELD_TAGS",
    "META",
    "builtin_definitions",
    "custom_resource_schema",
    "kind_definition_name",
    "message_definition_name",
]

Doc = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
GVK_EXT = "x-kubernetes-group-version-kind"
PRESERVE_EXT = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING_EXT = "x-kubernetes-int-or-string"
EMBEDDED_EXT = "x-kubernetes-embedded-resource"

# Short original descriptions of the top-level kinds (``kubectl explain <kind>``).
KIND_DESCRIPTIONS: dict[str, str] = {
    "core.v1.Binding": "Assigns a pod to a node; posted to a pod's binding subresource.",
    "core.v1.ConfigMap": "Non-secret configuration data as key-value pairs for pods to consume.",
    "core.v1.Endpoints": "The network addresses that back a service.",
    "core.v1.Event": "A report of something that happened to an object in the cluster.",
    "core.v1.LimitRange": "Default and maximum resource amounts for objects in a namespace.",
    "core.v1.Namespace": "A scope for names; most objects live in exactly one namespace.",
    "core.v1.Node": "A machine that runs pods.",
    "core.v1.PersistentVolume": "A piece of storage provisioned for the cluster.",
    "core.v1.PersistentVolumeClaim": "A request for storage by a user, bound to a persistent volume.",
    "core.v1.Pod": "One or more containers scheduled together onto a node, sharing network and storage.",
    "core.v1.PodTemplate": "A stored template from which pods can be created.",
    "core.v1.ReplicationController": "Keeps a number of pod replicas running (superseded by ReplicaSet).",
    "core.v1.ResourceQuota": "Limits on the total resources a namespace may consume.",
    "core.v1.Secret": "Sensitive data (passwords, tokens, keys) as key-value pairs.",
    "core.v1.Service": "A stable network name and address for a set of pods.",
    "core.v1.ServiceAccount": "An identity for processes that run in pods.",
    "apps.v1.ControllerRevision": "An immutable snapshot of a workload's template, kept for rollbacks.",
    "apps.v1.DaemonSet": "Runs one copy of a pod on every eligible node.",
    "apps.v1.Deployment": "Declarative, rolling updates for a replicated set of pods.",
    "apps.v1.ReplicaSet": "Keeps a number of identical pod replicas running.",
    "apps.v1.StatefulSet": "Runs pods with stable identities and per-pod storage.",
    "autoscaling.v1.HorizontalPodAutoscaler": "Scales a workload's replicas to meet a CPU utilization target.",
    "autoscaling.v1.Scale": "The replica count of a scalable resource (the scale subresource).",
    "autoscaling.v2.HorizontalPodAutoscaler": "Scales a workload's replicas from resource, pod, object or external metrics.",
    "batch.v1.CronJob": "Creates jobs on a repeating schedule.",
    "batch.v1.Job": "Runs pods until a number of them complete successfully.",
    "policy.v1.Eviction": "Asks to evict a pod, honouring disruption budgets; posted to the eviction subresource.",
    "policy.v1.PodDisruptionBudget": "Limits how many pods of a set may be voluntarily disrupted at once.",
    "scheduling.v1.PriorityClass": "Maps a priority class name to an integer scheduling priority.",
    "node.v1.RuntimeClass": "Selects the container runtime handler (and its scheduling constraints) for pods.",
    "coordination.v1.Lease": "A lightweight lock or heartbeat record.",
    "discovery.v1.EndpointSlice": "A subset of the network endpoints that back a service.",
    "events.v1.Event": "A report of something that happened to an object in the cluster.",
    "authentication.v1.SelfSubjectReview": "Reports the identity the server sees for the requester.",
    "authentication.v1.TokenRequest": "Requests a token for a service account.",
    "authentication.v1.TokenReview": "Asks the server to authenticate a token.",
    "authorization.v1.LocalSubjectAccessReview": "Checks whether a user may act within one namespace.",
    "authorization.v1.SelfSubjectAccessReview": "Checks whether the requester may perform an action.",
    "authorization.v1.SelfSubjectRulesReview": "Lists the actions the requester may perform in a namespace.",
    "authorization.v1.SubjectAccessReview": "Checks whether a user or group may perform an action.",
    "rbac.v1.ClusterRole": "A cluster-wide set of permissions.",
    "rbac.v1.ClusterRoleBinding": "Grants a cluster role's permissions to subjects cluster-wide.",
    "rbac.v1.Role": "A set of permissions within one namespace.",
    "rbac.v1.RoleBinding": "Grants a role's permissions to subjects within one namespace.",
    "networking.v1.Ingress": "HTTP routing from outside the cluster to services.",
    "networking.v1.IngressClass": "Names the controller that implements a class of ingresses.",
    "networking.v1.NetworkPolicy": "Allowed network traffic to and from a set of pods.",
    "storage.v1.StorageClass": "A class of storage and the provisioner that creates volumes of it.",
    "meta.v1.DeleteOptions": "Options for a delete request.",
    "apiextensions.v1.CustomResourceDefinition": "Adds a custom resource type (a new kind) to the API.",
    "meta.v1.Status": "The outcome of a call that returns no object, or the details of a failure.",
}

# Messages the protobuf tables do not carry but the documents need, in the same
# syntax (``package -> {Message: fields}``): meta.v1 list/status types, and the
# apiextensions.k8s.io/v1 CustomResourceDefinition (JSONSchemaProps is
# :func:`_json_schema_props`: its JSON names are not table identifiers).
_EXTRA_MESSAGES: dict[str, dict[str, str]] = {
    "meta.v1": {
        "ListMeta": "selfLink=1:str? resourceVersion=2:str? continue=3:str? remainingItemCount=4:*i64?",
        "Status": (
            "metadata=1:ListMeta? status=2:str? message=3:str? reason=4:str? "
            "details=5:*StatusDetails? code=6:i32?"
        ),
        "StatusDetails": (
            "name=1:str? group=2:str? kind=3:str? uid=6:str? causes=4:[]StatusCause? "
            "retryAfterSeconds=5:i32?"
        ),
        "StatusCause": "reason=1:str? message=2:str? field=3:str?",
    },
    "apiextensions.v1": {
        "CustomResourceDefinition": (
            "metadata=1:meta.v1.ObjectMeta? spec=2:CustomResourceDefinitionSpec "
            "status=3:CustomResourceDefinitionStatus?"
        ),
        "CustomResourceDefinitionSpec": (
            "group=1:str names=3:CustomResourceDefinitionNames scope=4:str "
            "versions=7:[]CustomResourceDefinitionVersion conversion=9:*CustomResourceConversion? "
            "preserveUnknownFields=10:bool?"
        ),
        "CustomResourceConversion": "strategy=1:str webhook=2:*WebhookConversion?",
        "WebhookConversion": "clientConfig=2:*WebhookClientConfig? conversionReviewVersions=3:[]str",
        "WebhookClientConfig": "url=3:*str? service=1:*ServiceReference? caBundle=2:bytes?",
        "ServiceReference": "namespace=1:str name=2:str path=3:*str? port=4:*i32?",
        "CustomResourceDefinitionVersion": (
            "name=1:str served=2:bool storage=3:bool deprecated=7:bool? deprecationWarning=8:*str? "
            "schema=4:*CustomResourceValidation? subresources=5:*CustomResourceSubresources? "
            "additionalPrinterColumns=6:[]CustomResourceColumnDefinition? "
            "selectableFields=9:[]SelectableField?"
        ),
        "SelectableField": "jsonPath=1:str",
        "CustomResourceColumnDefinition": (
            "name=1:str type=2:str format=3:str? description=4:str? priority=5:i32? jsonPath=6:str"
        ),
        "CustomResourceDefinitionNames": (
            "plural=1:str singular=2:str? shortNames=3:[]str? kind=4:str listKind=5:str? "
            "categories=6:[]str?"
        ),
        "CustomResourceDefinitionCondition": (
            "type=1:str status=2:str lastTransitionTime=3:meta.v1.Time? reason=4:str? "
            "message=5:str? observedGeneration=6:i64?"
        ),
        "CustomResourceDefinitionStatus": (
            "conditions=1:[]CustomResourceDefinitionCondition acceptedNames=2:CustomResourceDefinitionNames "
            "storedVersions=3:[]str observedGeneration=4:i64?"
        ),
        "CustomResourceValidation": "openAPIV3Schema=1:*JSONSchemaProps?",
        "CustomResourceSubresources": (
            "status=1:*CustomResourceSubresourceStatus? scale=2:*CustomResourceSubresourceScale?"
        ),
        "CustomResourceSubresourceStatus": "",
        "CustomResourceSubresourceScale": (
            "specReplicasPath=1:str statusReplicasPath=2:str labelSelectorPath=3:*str?"
        ),
        "ExternalDocumentation": "description=1:str? url=2:str?",
        "ValidationRule": (
            "rule=1:str message=2:str? messageExpression=3:str? reason=4:*str? fieldPath=5:str? "
            "optionalOldSelf=6:*bool?"
        ),
    },
}
_CRD_GVK = {"group": "apiextensions.k8s.io", "version": "v1", "kind": "CustomResourceDefinition"}
_EXTRA_KINDS: dict[str, list[dict[str, str]]] = {
    "meta.v1.Status": [{"group": "", "version": "v1", "kind": "Status"}],
    "apiextensions.v1.CustomResourceDefinition": [_CRD_GVK],
}
_APIEXTENSIONS = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"

_SPECIAL_NAMES = {
    "meta.v1.Time": f"{META}.Time",
    "meta.v1.MicroTime": f"{META}.MicroTime",
    "meta.v1.FieldsV1": f"{META}.FieldsV1",
    "intstr.IntOrString": "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "resource.Quantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "runtime.RawExtension": "io.k8s.apimachinery.pkg.runtime.RawExtension",
}


def _json_schema_props(v3: bool, prefix: str) -> Doc:
    """apiextensions.k8s.io/v1 ``JSONSchemaProps`` (the ``openAPIV3Schema`` of a CRD)."""

    def ref(name: str) -> Doc:
        return {"$ref": f"{prefix}{_APIEXTENSIONS}.{name}"}

    s, b = {"type": "string"}, {"type": "boolean"}
    i64, num = {"type": "integer", "format": "int64"}, {"type": "number", "format": "double"}
    strings = {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"}
    props_list = {"type": "array", "items": ref("JSONSchemaProps"), "x-kubernetes-list-type": "atomic"}
    props_map = {"type": "object", "additionalProperties": ref("JSONSchemaProps")}
    props: Doc = {
        "id": s, "$schema": s, "$ref": s, "description": s, "type": s, "format": s, "title": s,
        "default": ref("JSON"), "maximum": num, "exclusiveMaximum": b, "minimum": num,
        "exclusiveMinimum": b, "maxLength": i64, "minLength": i64, "pattern": s, "maxItems": i64,
        "minItems": i64, "uniqueItems": b, "multipleOf": num,
        "enum": {"type": "array", "items": ref("JSON"), "x-kubernetes-list-type": "atomic"},
        "maxProperties": i64, "minProperties": i64, "required": strings,
        "items": ref("JSONSchemaPropsOrArray"), "allOf": props_list, "oneOf": props_list,
        "anyOf": props_list, "not": ref("JSONSchemaProps"), "properties": props_map,
        "additionalProperties": ref("JSONSchemaPropsOrBool"), "patternProperties": props_map,
        "dependencies": {"type": "object", "additionalProperties": ref("JSONSchemaPropsOrStringArray")},
        "additionalItems": ref("JSONSchemaPropsOrBool"), "definitions": props_map,
        "externalDocs": ref("ExternalDocumentation"), "example": ref("JSON"), "nullable": b,
        "x-kubernetes-preserve-unknown-fields": b, "x-kubernetes-embedded-resource": b,
        "x-kubernetes-int-or-string": b, "x-kubernetes-list-map-keys": strings,
        "x-kubernetes-list-type": s, "x-kubernetes-map-type": s,
        "x-kubernetes-validations": {
            "type": "array",
            "items": ref("ValidationRule"),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["rule"],
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "rule",
        },
    }
    return {"type": "object", "properties": {k: dict(v) for k, v in props.items()}}


def _special_definitions(v3: bool) -> dict[str, Doc]:
    time = {"type": "string", "format": "date-time"}
    if v3:
        int_or_string: Doc = {
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
            INT_OR_STRING_EXT: True,
        }
        quantity: Doc = {"format": "quantity", "oneOf": [{"type": "string"}, {"type": "number"}]}
        opaque: Doc = {"type": "object", PRESERVE_EXT: True}
        opaque_any: Doc = {PRESERVE_EXT: True}
    else:
        int_or_string = {"type": "string", "format": "int-or-string"}
        quantity = {"type": "string", "format": "quantity"}
        opaque = {"type": "object"}
        opaque_any = {}
    return {
        _SPECIAL_NAMES["meta.v1.Time"]: dict(time),
        _SPECIAL_NAMES["meta.v1.MicroTime"]: dict(time),
        _SPECIAL_NAMES["meta.v1.FieldsV1"]: dict(opaque),
        _SPECIAL_NAMES["intstr.IntOrString"]: int_or_string,
        _SPECIAL_NAMES["resource.Quantity"]: quantity,
        _SPECIAL_NAMES["runtime.RawExtension"]: dict(opaque),
        # apiextensions JSON values: any JSON (a schema, a list of them, a bool, ...)
        **{f"{_APIEXTENSIONS}.{n}": dict(opaque_any) for n in (
            "JSON", "JSONSchemaPropsOrArray", "JSONSchemaPropsOrBool", "JSONSchemaPropsOrStringArray"
        )},
    }


_SCALARS: dict[str, Doc] = {
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "i32": {"type": "integer", "format": "int32"},
    "i64": {"type": "integer", "format": "int64"},
    "f64": {"type": "number", "format": "double"},
    "bytes": {"type": "string", "format": "byte"},
}


def message_definition_name(message: str) -> str:
    """``core.v1.PodSpec`` -> ``io.k8s.api.core.v1.PodSpec``; meta and the
    custom-JSON types map to their apimachinery packages."""
    special = _SPECIAL_NAMES.get(message)
    if special is not None:
        return special
    package, _, name = message.rpartition(".")
    if package == "meta.v1":
        return f"{META}.{name}"
    if package == "apiextensions.v1":
        return f"{_APIEXTENSIONS}.{name}"
    return f"io.k8s.api.{package}.{name}"


def kind_definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition of a built-in kind, or None when there is no field table for it."""
    message = KINDS.get((f"{group}/{version}" if group else version, kind))
    if message is None and kind in ANY_VERSION_KINDS:
        message = ANY_VERSION_KINDS[kind]
    if message is None and {"group": group, "version": version, "kind": kind} == _CRD_GVK:
        message = "apiextensions.v1.CustomResourceDefinition"
    return None if message is None else message_definition_name(message)


# --- tables ------------------------------------------------------------------------------


@cache
def _messages() -> dict[str, Any]:
    """Every message: the protobuf decoder's compiled tables plus :data:`_EXTRA_MESSAGES`."""
    out: dict[str, Any] = dict(protobuf.schema())
    for package, messages in _EXTRA_MESSAGES.items():
        for name, spec in messages.items():
            msg = protobuf.parse_message(package, name, spec)
            out[msg.name] = msg
    return out


def _fields(message: str) -> list[tuple[str, Any]]:
    """``(owner, field)`` in JSON order, embedded structs expanded (owner: the declaring message)."""
    msgs = _messages()
    msg = msgs[message]
    out: list[tuple[str, Any]] = []
    for f in msg.fields:
        if f.json == "" and not msg.wrapper:
            out.extend(_fields(f.type))
        else:
            out.append((message, f))
    return out




@cache
def _patch_tags() -> dict[tuple[str, str], tuple[str, str]]:
    """``(message, json) -> (patch strategy, merge key)`` from the server's SMP tables."""
    msgs = _messages()
    by_kind: dict[tuple[str, str], list[str]] = {}
    for (api_version, kind), message in KINDS.items():
        by_kind.setdefault((api_version.rpartition("/")[0], kind), []).append(message)
    out: dict[tuple[str, str], tuple[str, str]] = {}

    def walk(message: str, table: Mapping[str, Any], depth: int) -> None:
        msg = msgs.get(message)
        if msg is None or msg.wrapper or depth > 20:
            return
        fields = {f.json: (owner, f) for owner, f in _fields(message)}
        for name, pf in table.items():
            hit = fields.get(name)
            if hit is None:
                continue
            owner, f = hit
            strategy = ",".join(s for s in (pf.strategy, "retainKeys" if pf.retain_keys else "") if s)
            if strategy:
                out[(owner, name)] = (strategy, pf.key)
            if pf.schema and f.message:
                walk(f.type, pf.schema, depth + 1)

    for group_kind, table in patch._KINDS.items():
        for message in by_kind.get(group_kind, ()):
            walk(message, table, 0)
    return out


def _kind_gvks() -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {k: list(v) for k, v in _EXTRA_KINDS.items()}
    for (api_version, kind), message in sorted(KINDS.items()):
        group, _, version = api_version.rpartition("/")
        out.setdefault(message, []).append({"group": group, "version": version, "kind": kind})
    for kind, message in ANY_VERSION_KINDS.items():
        out.setdefault(message, []).append({"group": "", "version": "v1", "kind": kind})
    return out


# --- definitions -------------------------------------------------------------------------


def _ref(prefix: str, message: str) -> Doc:
    return {"$ref": prefix + message_definition_name(message)}


def _element(type_: str, is_message: bool, prefix: str) -> Doc:
    if not is_message:
        return dict(_SCALARS[type_])
    msg = _messages().get(type_)
    if msg is not None and msg.wrapper:  # Go named slice: the bare list
        inner = msg.fields[0]
        return {"type": "array", "items": _element(inner.type, inner.message, prefix)}
    return _ref(prefix, type_)


def _property(owner: str, f: Any, *, v3: bool, prefix: str) -> Doc:
    base = _element(f.type, f.message, prefix)
    if f.label == "[]":
        schema: Doc = {"type": "array", "items": base}
    elif f.label == "{}":
        schema = {"type": "object", "additionalProperties": base}
    else:
        schema = base
    ext: Doc = {}
    tags = _field_tags().get((owner, f.json), {})
    if "list" in tags:
        ext["x-kubernetes-list-type"] = tags["list"]
        if tags.get("keys"):
            ext["x-kubernetes-list-map-keys"] = list(tags["keys"])
    if "map" in tags:
        ext["x-kubernetes-map-type"] = tags["map"]
    if "struct" in tags:
        ext["x-kubernetes-map-type"] = tags["struct"]
    strategy = _patch_tags().get((owner, f.json))
    if strategy is not None:
        ext["x-kubernetes-patch-strategy"] = strategy[0]
        if strategy[1]:
            ext["x-kubernetes-patch-merge-key"] = strategy[1]
    if ext:
        if "$ref" in schema and v3:
            schema = {"allOf": [schema]}  # OpenAPI 3.0 ignores siblings of $ref
        schema.update(ext)
    return schema


def _required(owner: str, f: Any) -> bool:
    tags = _field_tags().get((owner, f.json), {})
    if "required" in tags:
        return bool(tags["required"])
    return not (f.omitempty or f.omitzero)


def _definition(message: str, gvks: list[dict[str, str]] | None, *, v3: bool, prefix: str) -> Doc:
    props: Doc = {}
    required: list[str] = []
    if gvks:
        props["apiVersion"] = {"type": "string"}
        props["kind"] = {"type": "string"}
    for owner, f in _fields(message):
        props[f.json] = _property(owner, f, v3=v3, prefix=prefix)
        if _required(owner, f):
            required.append(f.json)
    d: Doc = {}
    description = KIND_DESCRIPTIONS.get(message)
    if description:
        d["description"] = description
    d["type"] = "object"
    if props:
        d["properties"] = props
    if required:
        d["required"] = required
    if message in ATOMIC_STRUCTS:
        d["x-kubernetes-map-type"] = "atomic"
    if gvks:
        d[GVK_EXT] = [dict(g) for g in gvks]
    return d


@cache
def builtin_definitions(v3: bool) -> Mapping[str, Doc]:
    """Every built-in definition by Kubernetes name, for v3 (``#/components/schemas/``
    refs) or v2 (``#/definitions/``). Cached for the life of the process and
    shared: do not mutate the result or anything in it."""
    prefix = "#/components/schemas/" if v3 else "#/definitions/"
    gvks = _kind_gvks()
    out: dict[str, Doc] = _special_definitions(v3)
    for message, msg in _messages().items():
        if msg.wrapper:
            continue
        out[message_definition_name(message)] = _definition(message, gvks.get(message), v3=v3, prefix=prefix)
    out[f"{_APIEXTENSIONS}.JSONSchemaProps"] = _json_schema_props(v3, prefix)
    return dict(sorted(out.items()))


# --- custom resources --------------------------------------------------------------------


def _to_v2(s: Any) -> Any:
    """kube-apiextensions' ``ToStructuralOpenAPIV2``: drop what Swagger 2.0 (and
    kubectl's v2 validator) cannot take — ``allOf``/``oneOf``/``anyOf``/``not``,
    ``nullable`` (and the type it qualifies), ``properties``/``items`` under
    ``x-kubernetes-preserve-unknown-fields`` or an embedded resource, and the
    type of an ``x-kubernetes-int-or-string`` value."""
    if not isinstance(s, dict):
        return s
    out = {k: v for k, v in s.items() if k not in ("allOf", "oneOf", "anyOf", "not")}
    if out.pop("nullable", False):
        for k in ("type", "items", "properties"):
            out.pop(k, None)
    if out.get(PRESERVE_EXT) or out.get(EMBEDDED_EXT):
        out.pop("items", None)
        out.pop("properties", None)
    if out.get(INT_OR_STRING_EXT):
        out.pop("type", None)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _to_v2(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _to_v2(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _to_v2(out["additionalProperties"])
    return out


def custom_resource_schema(
    group: str, version: str, kind: str, schema: Mapping[str, Any] | None, *, v3: bool
) -> Doc:
    """The definition of a custom resource version from its ``openAPIV3Schema``.

    As kube-apiextensions publishes it: ``apiVersion``/``kind`` string
    properties, ``metadata`` a ``$ref`` to ObjectMeta (whatever the CRD said),
    ``x-kubernetes-group-version-kind``; the v2 form goes through
    :func:`_to_v2`. A root that preserves unknown fields has no v2
    ``properties`` at all (kubectl's v2 validator would otherwise reject every
    field it does not list). The input is not modified.
    """
    prefix = "#/components/schemas/" if v3 else "#/definitions/"
    s: Doc = copy.deepcopy(dict(schema or {}))
    if not v3:
        s = _to_v2(s)
    s.setdefault("type", "object")
    v2_open = not v3 and (s.get(PRESERVE_EXT) or not schema)
    if v2_open:
        s.pop("properties", None)
    else:
        props = dict(s.get("properties") or {})
        props["apiVersion"] = {"type": "string"}
        props["kind"] = {"type": "string"}
        meta_ref = {"$ref": prefix + f"{META}.ObjectMeta"}
        props["metadata"] = meta_ref
        s["properties"] = props
    if not v3:
        s.pop(PRESERVE_EXT, None)
    s[GVK_EXT] = [{"group": group, "version": version, "kind": kind}]
    return s
