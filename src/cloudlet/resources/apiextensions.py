"""apiextensions.k8s.io/v1 CustomResourceDefinition: defaults, validation, table.

The kind as kube-apiserver stores it (``crd``/``crds``, category
``api-extensions``, cluster-scoped, ``status`` subresource):

* defaults: ``names.singular`` (lower-cased kind), ``names.listKind``
  (``<Kind>List``), ``conversion.strategy: None``, ``status.storedVersions``;
* create/update: ``status`` is server-owned (reset on create, kept on update),
  the storage version is added to ``status.storedVersions``, and the
  ``customresourcecleanup.apiextensions.k8s.io`` finalizer is kept on the CRD
  so deleting it first deletes every custom object (see
  :mod:`cloudlet.controllers.crd`; Kubernetes adds it at deletion time);
* validation with Kubernetes' paths and wording: name ``<plural>.<group>``,
  group with a dot, names as DNS-1035 labels, scope, exactly one storage
  version, unique version names, a structural schema for every version
  (:mod:`cloudlet.resources.crd_structural`), subresources, printer columns,
  conversion (only ``None``: conversion webhooks are not supported here),
  immutable group/plural (and scope/kind once established), stored versions,
  the ``api-approved.kubernetes.io`` annotation for ``*.k8s.io`` groups;
* unknown fields (``fieldValidation``) from the Go types' field tables.

Serving the custom resources themselves is :mod:`cloudlet.resources.customresource`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from cloudlet.api import errors
from cloudlet.api.errors import FieldError, forbidden_field, invalid_value, not_supported, required
from cloudlet.api.jsonkinds import go_json_kind
from cloudlet.resources._util import index
from cloudlet.resources.crd_structural import validate_version_schema
from cloudlet.resources.registry import NAME_COLUMN, REGISTRY, Column, ResourceType
from cloudlet.resources.validation import (
    is_dns1035_label,
    is_dns1123_subdomain,
    name_is_dns_subdomain,
    validate_immutable,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = dict[str, Any]

GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
SCOPES = ("Cluster", "Namespaced")
COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")


# --- accessors shared with serving and the controller -----------------------------------


def _d(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def spec_of(crd: Obj) -> Obj:
    return _d(crd.get("spec"))


def versions(crd: Obj) -> list[Obj]:
    return [v for v in _l(spec_of(crd).get("versions")) if isinstance(v, dict)]


def storage_version(crd: Obj) -> str:
    for v in versions(crd):
        if v.get("storage") is True:
            return str(v.get("name") or "")
    return ""


def subresources_of(version: Obj) -> Obj:
    return _d(version.get("subresources"))


def status_enabled(version: Obj) -> bool:
    subs = subresources_of(version)
    return "status" in subs and subs["status"] is not None


def condition(crd: Obj, ctype: str) -> Obj | None:
    for c in _l(_d(crd.get("status")).get("conditions")):
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def condition_true(crd: Obj, ctype: str) -> bool:
    c = condition(crd, ctype)
    return c is not None and c.get("status") == "True"


# --- unknown fields (strict decoding into the Go types) ---------------------------------

S, B, INT, F, ANY, SCHEMA = "string", "bool", "int64", "float64", "any", "schema"
_NAMES = {"plural": S, "singular": S, "shortNames": [S], "kind": S, "listKind": S, "categories": [S]}
_COLUMN = {"name": S, "type": S, "format": S, "description": S, "priority": INT, "jsonPath": S}
_SUBRESOURCES = {"status": {}, "scale": {"specReplicasPath": S, "statusReplicasPath": S, "labelSelectorPath": S}}
_VERSION = {
    "name": S, "served": B, "storage": B, "deprecated": B, "deprecationWarning": S,
    "schema": {"openAPIV3Schema": SCHEMA}, "subresources": _SUBRESOURCES,
    "additionalPrinterColumns": [_COLUMN], "selectableFields": [{"jsonPath": S}],
}
_SERVICE = {"namespace": S, "name": S, "path": S, "port": INT}
_CONVERSION = {
    "strategy": S,
    "webhook": {"clientConfig": {"url": S, "service": _SERVICE, "caBundle": S}, "conversionReviewVersions": [S]},
}
_CONDITION = {"type": S, "status": S, "lastTransitionTime": S, "reason": S, "message": S, "observedGeneration": INT}
_META = {
    k: ANY for k in ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                     "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                     "annotations", "ownerReferences", "finalizers", "managedFields")
}
CRD_FIELDS: Obj = {
    "apiVersion": S, "kind": S, "metadata": _META,
    "spec": {"group": S, "names": _NAMES, "scope": S, "versions": [_VERSION], "conversion": _CONVERSION,
             "preserveUnknownFields": B},
    "status": {"conditions": [_CONDITION], "acceptedNames": _NAMES, "storedVersions": [S], "observedGeneration": INT},
}
_MAP = "map"
SCHEMA_FIELDS: Obj = {
    "id": S, "$schema": S, "$ref": S, "description": S, "type": S, "format": S, "title": S, "default": ANY,
    "maximum": F, "exclusiveMaximum": B, "minimum": F, "exclusiveMinimum": B, "maxLength": INT, "minLength": INT,
    "pattern": S, "maxItems": INT, "minItems": INT, "uniqueItems": B, "multipleOf": F, "enum": [ANY],
    "maxProperties": INT, "minProperties": INT, "required": [S], "items": "schema|array", "allOf": [SCHEMA],
    "oneOf": [SCHEMA], "anyOf": [SCHEMA], "not": SCHEMA, "properties": (_MAP, SCHEMA),
    "additionalProperties": "schema|bool", "patternProperties": (_MAP, SCHEMA), "dependencies": (_MAP, ANY),
    "additionalItems": "schema|bool", "definitions": (_MAP, SCHEMA), "externalDocs": {"description": S, "url": S},
    "example": ANY, "nullable": B, "x-kubernetes-preserve-unknown-fields": B, "x-kubernetes-embedded-resource": B,
    "x-kubernetes-int-or-string": B, "x-kubernetes-list-map-keys": [S], "x-kubernetes-list-type": S,
    "x-kubernetes-map-type": S,
    "x-kubernetes-validations": [{"rule": S, "message": S, "messageExpression": S, "reason": S, "fieldPath": S,
                                  "optionalOldSelf": B}],
}




def _go_type(t: Any) -> str:
    if isinstance(t, list):
        return "[]" + _go_type(t[0])
    if isinstance(t, tuple):
        return "map[string]" + _go_type(t[1])
    if isinstance(t, dict):
        return "struct"
    return {SCHEMA: "v1.JSONSchemaProps", ANY: "v1.JSON"}.get(t, t)


def _walk(v: Any, t: Any, path: str, unknown: list[str], bad: list[str]) -> None:
    if v is None or t == ANY:
        return
    if t == "schema|bool":
        if not isinstance(v, bool):
            _walk(v, SCHEMA, path, unknown, bad)
        return
    if t == "schema|array":
        if isinstance(v, list):
            for i, item in enumerate(v):
                _walk(item, SCHEMA, f"{path}[{i}]", unknown, bad)
        else:
            _walk(v, SCHEMA, path, unknown, bad)
        return
    ok = {
        S: isinstance(v, str), B: isinstance(v, bool),
        INT: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
        F: isinstance(v, int | float) and not isinstance(v, bool),
    }.get(t) if isinstance(t, str) and t != SCHEMA else None
    if ok is False:
        bad.append(f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type {_go_type(t)}")
        return
    if isinstance(t, list):
        if not isinstance(v, list):
            bad.append(f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type {_go_type(t)}")
            return
        for i, item in enumerate(v):
            _walk(item, t[0], f"{path}[{i}]", unknown, bad)
        return
    if isinstance(t, tuple):
        if not isinstance(v, dict):
            bad.append(f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type {_go_type(t)}")
            return
        for k, item in v.items():
            _walk(item, t[1], f"{path}[{k}]", unknown, bad)
        return
    fields = SCHEMA_FIELDS if t == SCHEMA else t
    if not isinstance(fields, dict):
        return
    if not isinstance(v, dict):
        bad.append(f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type {_go_type(t)}")
        return
    for k in list(v):
        here = f"{path}.{k}" if path else k
        if k not in fields:
            unknown.append(here)
            del v[k]
        else:
            _walk(v[k], fields[k], here, unknown, bad)


def prune_crd(obj: Obj) -> list[str]:
    """Drop fields the CustomResourceDefinition type does not have; return their paths.

    A value of the wrong JSON type is a decode error (400), as in Kubernetes.
    """
    unknown: list[str] = []
    bad: list[str] = []
    if isinstance(obj, dict):
        _walk(obj, CRD_FIELDS, "", unknown, bad)
    if bad:
        raise errors.bad_request(
            f'CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: {bad[0]}'
        )
    return unknown


# --- defaults and strategy -------------------------------------------------------------


def default_crd(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = names.get("kind")
        if not names.get("singular") and isinstance(kind, str):
            names["singular"] = kind.lower()
        if not names.get("listKind") and isinstance(kind, str) and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    service = _d(_d(_d(spec.get("conversion")).get("webhook")).get("clientConfig")).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443
    status = obj.get("status")
    if isinstance(status, dict) and not status.get("storedVersions"):
        stored = storage_version(obj)
        if stored:
            status["storedVersions"] = [stored]


def _add_stored_version(obj: Obj) -> None:
    stored = storage_version(obj)
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    have = status.get("storedVersions")
    if not isinstance(have, list):
        have = status["storedVersions"] = []
    if stored and stored not in have:
        have.append(stored)


def _ensure_finalizer(obj: Obj) -> None:
    meta = obj.setdefault("metadata", {})
    if meta.get("deletionTimestamp"):
        return
    fins = meta.get("finalizers")
    if not isinstance(fins, list):
        fins = meta["finalizers"] = []
    if CLEANUP_FINALIZER not in fins:
        fins.append(CLEANUP_FINALIZER)


def prepare_create(obj: Obj) -> None:
    obj["status"] = {}
    _add_stored_version(obj)
    _ensure_finalizer(obj)


def prepare_update(new: Obj, old: Obj) -> None:
    _add_stored_version(new)
    old_fins = _l(_d(old.get("metadata")).get("finalizers"))
    if CLEANUP_FINALIZER in old_fins:
        _ensure_finalizer(new)


# --- validation ------------------------------------------------------------------------


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def validate_names(names: Any, path: str) -> list[FieldError]:
    """``ValidateCustomResourceDefinitionNames`` (spec.names and status.acceptedNames)."""
    n = _d(names)
    errs: list[FieldError] = []
    for f in ("plural", "singular"):
        v = _str(n.get(f))
        if v and (msgs := is_dns1035_label(v)):
            errs.append(invalid_value(f"{path}.{f}", v, ",".join(msgs)))
    for f in ("kind", "listKind"):
        v = _str(n.get(f))
        if v and (msgs := is_dns1035_label(v.lower())):
            errs.append(invalid_value(f"{path}.{f}", v, "may have mixed case, but should otherwise match: " + ",".join(msgs)))
    for i, short in enumerate(_l(n.get("shortNames"))):
        if msgs := is_dns1035_label(_str(short)):
            errs.append(invalid_value(index(f"{path}.shortNames", i), short, ",".join(msgs)))
    if _str(n.get("kind")) and n.get("kind") == n.get("listKind"):
        errs.append(invalid_value(f"{path}.listKind", n.get("listKind"), "kind and listKind may not be the same"))
    for i, cat in enumerate(_l(n.get("categories"))):
        if msgs := is_dns1035_label(_str(cat)):
            errs.append(invalid_value(index(f"{path}.categories", i), cat, ",".join(msgs)))
    return errs


def _simple_json_path(s: str, path: str) -> list[FieldError]:
    if not s:
        return [invalid_value(path, s, "must not be empty")]
    if s[0] != ".":
        return [invalid_value(path, s, "must be a simple json path starting with .")]
    return []


def validate_subresources(subs: Any, path: str) -> list[FieldError]:
    scale = _d(subs).get("scale")
    if not isinstance(scale, dict):
        return []
    errs: list[FieldError] = []
    for f, prefixes, what in (
        ("specReplicasPath", (".spec.",), "should be a json path under .spec"),
        ("statusReplicasPath", (".status.",), "should be a json path under .status"),
    ):
        v = _str(scale.get(f))
        fpath = f"{path}.scale.{f}"
        if not v:
            errs.append(required(fpath))
        elif e := _simple_json_path(v, fpath):
            errs += e
        elif not v.startswith(prefixes):
            errs.append(invalid_value(fpath, v, what))
    sel = _str(scale.get("labelSelectorPath"))
    if sel:
        fpath = f"{path}.scale.labelSelectorPath"
        if e := _simple_json_path(sel, fpath):
            errs += e
        elif not sel.startswith((".spec.", ".status.")):
            errs.append(invalid_value(fpath, sel, "should be a json path under either .spec or .status"))
    return errs


def validate_column(col: Any, path: str) -> list[FieldError]:
    c = _d(col)
    errs: list[FieldError] = []
    if not _str(c.get("name")):
        errs.append(required(f"{path}.name"))
    t = _str(c.get("type"))
    if not t:
        errs.append(required(f"{path}.type", "must be one of " + ",".join(COLUMN_TYPES)))
    elif t not in COLUMN_TYPES:
        errs.append(invalid_value(f"{path}.type", t, "must be one of " + ",".join(COLUMN_TYPES)))
    fmt = _str(c.get("format"))
    if fmt and fmt not in COLUMN_FORMATS:
        errs.append(invalid_value(f"{path}.format", fmt, "must be one of " + ",".join(COLUMN_FORMATS)))
    jp = _str(c.get("jsonPath"))
    if not jp:
        errs.append(required(f"{path}.JSONPath"))
    else:
        errs += _simple_json_path(jp, f"{path}.JSONPath")
    return errs


def _deprecation_warning(version: Obj, path: str) -> list[FieldError]:
    warning = version.get("deprecationWarning")
    if warning is None:
        return []
    fpath = f"{path}.deprecationWarning"
    if version.get("deprecated") is not True:
        return [invalid_value(fpath, warning, "can only be set for deprecated versions")]
    text = _str(warning)
    errs: list[FieldError] = []
    if len(text.encode()) > 256:
        errs.append(invalid_value(fpath, text, "must be <= 256 characters long"))
    if not text:
        errs.append(invalid_value(fpath, text, "must not be an empty string"))
    for i, ch in enumerate(text):
        if not ch.isprintable():
            errs.append(invalid_value(fpath, text, f"must only contain printable UTF-8 characters; non-printable character found at index {i}"))
            break
    return errs


def _version_summary(vs: list[Obj]) -> list[Obj]:
    return [{"name": v.get("name"), "served": v.get("served"), "storage": v.get("storage")} for v in vs]


def _validate_conversion(conv: Any, path: str) -> list[FieldError]:
    if conv is None:
        return []
    c = _d(conv)
    strategy = _str(c.get("strategy"))
    if not strategy:
        return [required(f"{path}.strategy")]
    if strategy == "Webhook":
        return [not_supported(f"{path}.strategy", strategy, ["None"])]
    if strategy != "None":
        return [not_supported(f"{path}.strategy", strategy, ["None", "Webhook"])]
    errs: list[FieldError] = []
    if c.get("webhook") is not None:
        errs.append(forbidden_field(f"{path}.webhookClientConfig", "should not be set when strategy is not set to Webhook"))
    return errs


def validate_spec(spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    group = _str(spec.get("group"))
    if not group:
        errs.append(required("spec.group"))
    elif msgs := is_dns1123_subdomain(group):
        errs.append(invalid_value("spec.group", group, ",".join(msgs)))
    elif len(group.split(".")) < 2:
        errs.append(invalid_value("spec.group", group, "should be a domain with at least one dot"))
    scope = _str(spec.get("scope"))
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in SCOPES:
        errs.append(not_supported("spec.scope", scope, list(SCOPES)))
    vs = [v for v in _l(spec.get("versions")) if isinstance(v, dict)]
    for i, v in enumerate(vs):
        if not isinstance(_d(v.get("schema")).get("openAPIV3Schema"), dict):
            errs.append(required(f"spec.versions[{i}].schema.openAPIV3Schema"))
    storage_count, seen, unique = 0, set(), True
    for i, v in enumerate(vs):
        vpath = f"spec.versions[{i}]"
        if v.get("storage") is True:
            storage_count += 1
        name = _str(v.get("name"))
        if name in seen:
            unique = False
        seen.add(name)
        if msgs := is_dns1035_label(name):
            errs.append(invalid_value(f"{vpath}.name", name, ",".join(msgs)))
        errs += _deprecation_warning(v, vpath)
        schema = _d(v.get("schema")).get("openAPIV3Schema")
        if isinstance(schema, dict):
            errs += validate_version_schema(schema, f"{vpath}.schema.openAPIV3Schema", status_enabled(v))
        errs += validate_subresources(v.get("subresources"), f"{vpath}.subresources")
        for j, col in enumerate(_l(v.get("additionalPrinterColumns"))):
            errs += validate_column(col, f"{vpath}.additionalPrinterColumns[{j}]")
    if not vs:
        errs.append(invalid_value("spec.versions", [], "must have exactly one version marked as storage version"))
    else:
        if not unique:
            errs.append(invalid_value("spec.versions", _version_summary(vs), "must contain unique version names"))
        if storage_count != 1:
            errs.append(invalid_value("spec.versions", _version_summary(vs), "must have exactly one version marked as storage version"))
    names = _d(spec.get("names"))
    for f in ("plural", "singular", "kind", "listKind"):
        if not _str(names.get(f)):
            errs.append(required(f"spec.names.{f}"))
    errs += validate_names(names, "spec.names")
    errs += _validate_conversion(spec.get("conversion"), "spec.conversion")
    if spec.get("preserveUnknownFields") is True:
        errs.append(invalid_value("spec.preserveUnknownFields", True,
                                  "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"))
    return errs


def validate_stored_versions(stored: Any, vs: list[Obj]) -> list[FieldError]:
    path = "status.storedVersions"
    stored = [s for s in _l(stored) if isinstance(s, str)]
    if not stored:
        return [invalid_value(path, stored, "must have at least one stored version")]
    errs: list[FieldError] = []
    names = [_str(v.get("name")) for v in vs]
    for v in vs:
        if v.get("storage") is True and v.get("name") not in stored:
            errs.append(invalid_value(path, stored, "must have the storage version " + _str(v.get("name"))))
    for i, s in enumerate(stored):
        if s not in names:
            errs.append(invalid_value(
                f"{path}[{i}]", s,
                f"missing from spec.versions; {s} was previously a storage version, and must remain in spec.versions "
                f"until a storage migration ensures no data remains persisted in {s} and removes {s} from status.storedVersions",
            ))
    return errs


def _approval(obj: Obj, old: Obj | None) -> list[FieldError]:
    group = _str(spec_of(obj).get("group"))
    if not (group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))):
        return []

    def state(o: Obj) -> tuple[str, str]:
        value = _str(_d(_d(o.get("metadata")).get("annotations")).get(APPROVAL_ANNOTATION))
        if not value:
            return "missing", f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}", see https://github.com/kubernetes/enhancements/pull/1111'
        if value.startswith("unapproved"):
            return "bypassed", ""
        url = urlparse(value)
        if url.scheme and url.netloc:
            return "approved", ""
        return "invalid", (f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}" with either a URL or a '
                           'reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111')

    new_state, reason = state(obj)
    if old is not None and state(old)[0] == new_state:
        return []
    path = f"metadata.annotations[{APPROVAL_ANNOTATION}]"
    if new_state == "missing":
        return [required(path, reason)]
    if new_state == "invalid":
        value = _d(_d(obj.get("metadata")).get("annotations")).get(APPROVAL_ANNOTATION)
        return [invalid_value(path, value, reason)]
    return []


def validate_crd(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = spec_of(obj)
    meta = _d(obj.get("metadata"))
    required_name = f"{_str(_d(spec.get('names')).get('plural'))}.{_str(spec.get('group'))}"

    def name_check(name: str, prefix: bool) -> list[str]:
        msgs = name_is_dns_subdomain(name, prefix)
        if old is None and name != required_name:
            msgs = [*msgs, 'must be spec.names.plural+"."+spec.group']
        return msgs

    errs = validate_object_meta(meta, False, name_check=name_check, kube_finalizers=False)
    if old is not None:
        errs += validate_object_meta_update(meta, _d(old.get("metadata")))
    errs += validate_spec(spec)
    if old is not None:
        ospec = spec_of(old)
        if condition_true(old, "Established"):
            errs += validate_immutable(spec.get("scope"), ospec.get("scope"), "spec.scope")
            errs += validate_immutable(_d(spec.get("names")).get("kind"), _d(ospec.get("names")).get("kind"), "spec.names.kind")
        errs += validate_immutable(spec.get("group"), ospec.get("group"), "spec.group")
        errs += validate_immutable(_d(spec.get("names")).get("plural"), _d(ospec.get("names")).get("plural"), "spec.names.plural")
    status = _d(obj.get("status"))
    errs += validate_names(status.get("acceptedNames"), "status.acceptedNames")
    errs += validate_stored_versions(status.get("storedVersions"), versions(obj))
    errs += _approval(obj, old)
    return errs


# --- table -----------------------------------------------------------------------------

CRD_COLUMNS = [
    NAME_COLUMN,
    Column("Created At", "date", "", "CreationTimestamp is a timestamp representing the server time when this object was created."),
]


def crd_row(obj: Obj) -> list[Any]:
    meta = _d(obj.get("metadata"))
    return [meta.get("name", ""), meta.get("creationTimestamp") or ""]


CRDS = REGISTRY.add(ResourceType(
    group=GROUP, version="v1", kind="CustomResourceDefinition", plural="customresourcedefinitions",
    singular="customresourcedefinition", namespaced=False, short_names=("crd", "crds"),
    categories=("api-extensions",), subresources=("status",), has_status=True,
    default=default_crd, validate=validate_crd, columns=CRD_COLUMNS, table=crd_row,
    prepare_create=prepare_create, prepare_update=prepare_update, prune_unknown=prune_crd,
))
