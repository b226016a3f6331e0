"""Is a CRD version's ``openAPIV3Schema`` acceptable? (checked when the CRD is written)

Kubernetes' rules for ``apiextensions.k8s.io/v1`` schemas, with its field paths
and wording (apiextensions-apiserver ``validation.go`` and
``pkg/apiserver/schema/{validation,complete}.go``):

* the OpenAPI subset: known ``type`` names, no ``$ref``/``id``/
  ``definitions``/``dependencies``/``patternProperties``/``additionalItems``,
  no ``uniqueItems``, ``additionalProperties`` xor ``properties``, no defaults
  in ``metadata``, list/map type extensions consistent;
* structural: a ``type`` at every specified node (unless
  ``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields``),
  ``items`` for arrays, an object root, ``metadata`` at the root limited to
  ``name``/``generateName``, value validations (``allOf``/``anyOf``/``oneOf``/
  ``not``) free of structural keywords and not introducing new properties;
* defaults that are pruned and valid against their own schema;
* with the status subresource, only value-free keywords at the root.
"""

from __future__ import annotations

import copy
from typing import Any

from cloudlet.api.errors import FieldError, forbidden_field, invalid_value, not_supported, required
from cloudlet.resources import crd_schema as cs
from cloudlet.resources import crd_values

Schema = dict[str, Any]

OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
# JSONSchemaProps fields allowed at the root when the status subresource is enabled, as JSON names
_ROOT_WITH_STATUS = frozenset({
    "description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "required",
    "items", "properties", "externalDocs", "example", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
})
_GO_ROOT_FIELDS = (
    "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength "
    "Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example "
    "XPreserveUnknownFields XValidations]"
)
_NESTED_FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("type", "must be empty to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)
# keys NewStructural does not keep: they never make metadata "specified"
_NOT_STRUCTURAL = frozenset({"type", "default", "example", "externalDocs", "$schema", "id"})

ROOT, ITEMS, FIELD = 0, 1, 2


def _d(v: Any) -> Schema | None:
    return v if isinstance(v, dict) else None


def _truthy(s: Schema, key: str) -> bool:
    v = s.get(key)
    return v not in (None, False, "", [], {}, 0)


def _key(path: str, k: str) -> str:
    return f"{path}[{k}]"


def validate_version_schema(schema: Any, path: str, status_enabled: bool) -> list[FieldError]:
    """All errors of ``schema`` found at ``path`` (``spec.versions[i].schema.openAPIV3Schema``)."""
    if not isinstance(schema, dict):
        return [invalid_value(path, schema, "must be an object")]
    errs: list[FieldError] = []
    if status_enabled:
        t = schema.get("type")
        if t not in (None, "") and t != "object":
            errs.append(invalid_value(f"{path}.type", t, 'only "object" is allowed as the type at the root of the schema if the status subresource is enabled'))
        elif any(k not in _ROOT_WITH_STATUS and _truthy(schema, k) for k in schema):
            errs.append(invalid_value(path, schema, f"only {_GO_ROOT_FIELDS} fields are allowed at the root of the schema if the status subresource is enabled"))
    if schema.get("nullable") is True:
        errs.append(forbidden_field(f"{path}.nullable", "nullable cannot be true at the root"))
    structural = sorted(_structural(schema, ROOT, path) + _completeness(schema, path), key=str)
    if structural:
        errs += structural
    else:
        errs += _defaults(schema, path, schema, inside_meta=False, embedded_root=True)
    errs += _standard(schema, path, root=True, inside_meta=False, defaults_reason="")
    return errs


# --- structural invariants -------------------------------------------------------------


def _structural(s: Schema, lvl: int, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    t = s.get("type") if isinstance(s.get("type"), str) else ""
    items = _d(s.get("items"))
    if t == "array" and items is None:
        errs.append(required(f"{path}.items", "must be specified"))
    if items is not None:
        errs += _structural(items, ITEMS, f"{path}.items")
    for k, sub in cs.properties(s).items():
        if isinstance(sub, dict):
            errs += _structural(sub, FIELD, _key(f"{path}.properties", k))
    if s.get("additionalProperties") is not None:
        if lvl == ROOT:
            errs.append(forbidden_field(f"{path}.additionalProperties", "must not be used at the root"))
        add = _d(s.get("additionalProperties"))
        if add is not None:
            errs += _structural(add, FIELD, f"{path}.additionalProperties")
    int_or_string = s.get(cs.INT_OR_STRING) is True
    preserve = s.get(cs.PRESERVE) is True
    embedded = s.get(cs.EMBEDDED) is True
    if int_or_string and preserve:
        errs.append(invalid_value(f"{path}.x-kubernetes-preserve-unknown-fields", True, "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        errs.append(invalid_value(f"{path}.x-kubernetes-embedded-resource", True, "must be false if x-kubernetes-int-or-string is true"))
    errs += _value_validation(s, lvl, path, skip_any_of=_int_or_string_any_of(s), skip_first_all_of_any_of=_int_or_string_all_of(s))
    if embedded and t != "object":
        if not t:
            errs.append(required(f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"))
        else:
            errs.append(invalid_value(f"{path}.type", t, "must be object if x-kubernetes-embedded-resource is true"))
    elif not t and not int_or_string and not preserve:
        where = {ROOT: "at the root", ITEMS: "for specified array items", FIELD: "for specified object fields"}[lvl]
        errs.append(required(f"{path}.type", f"must not be empty {where}"))
    if embedded and s.get("additionalProperties") is not None:
        errs.append(forbidden_field(f"{path}.additionalProperties", "must not be used if x-kubernetes-embedded-resource is set"))
    if lvl == ROOT and t and t != "object":
        errs.append(invalid_value(f"{path}.type", t, "must be object at the root"))
    check_meta = lvl == ROOT or embedded
    props = cs.properties(s)
    for name in ("kind", "apiVersion"):
        sub = _d(props.get(name))
        if sub is not None and check_meta and sub.get("type") != "string":
            errs.append(invalid_value(f"{_key(f'{path}.properties', name)}.type", sub.get("type") or "", "must be string"))
    meta = _d(props.get("metadata"))
    if meta is not None:
        mpath = _key(f"{path}.properties", "metadata")
        if check_meta and meta.get("type") != "object":
            errs.append(invalid_value(f"{mpath}.type", meta.get("type") or "", "must be object"))
        if lvl == ROOT and _metadata_specifies_more(meta):
            errs.append(forbidden_field(mpath, "must not specify anything other than name and generateName, but metadata is implicitly specified"))
    if embedded and not preserve and not props:
        errs.append(required(f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"))
    return errs


def _metadata_specifies_more(meta: Schema) -> bool:
    props = cs.properties(meta)
    for k, v in meta.items():
        if k in _NOT_STRUCTURAL or v in (None, False, "", [], {}):
            continue
        if k == "properties" and props and set(props) <= {"name", "generateName"}:
            continue
        return True
    return False


def _int_or_string_any_of(s: Schema) -> bool:
    return cs.int_or_string_pattern(s.get("anyOf"))


def _int_or_string_all_of(s: Schema) -> bool:
    all_of = s.get("allOf")
    return isinstance(all_of, list) and bool(all_of) and isinstance(all_of[0], dict) and cs.int_or_string_pattern(all_of[0].get("anyOf"))


def _value_validation(s: Schema, lvl: int, path: str, skip_any_of: bool = False, skip_first_all_of_any_of: bool = False) -> list[FieldError]:
    errs: list[FieldError] = []
    if not skip_any_of:
        for i, sub in enumerate(_list(s.get("anyOf"))):
            errs += _nested(sub, lvl, f"{path}.anyOf[{i}]")
    for i, sub in enumerate(_list(s.get("allOf"))):
        errs += _nested(sub, lvl, f"{path}.allOf[{i}]", skip_any_of=skip_first_all_of_any_of and i == 0)
    for i, sub in enumerate(_list(s.get("oneOf"))):
        errs += _nested(sub, lvl, f"{path}.oneOf[{i}]")
    if s.get("not") is not None:
        errs += _nested(s.get("not"), lvl, f"{path}.not")
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern and crd_values.compile_pattern(pattern) is None:
        errs.append(invalid_value(f"{path}.pattern", pattern, "must be a valid regular expression, but isn't: error parsing regexp"))
    return errs


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _nested(s: Any, lvl: int, path: str, skip_any_of: bool = False) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs = _value_validation(s, lvl, path, skip_any_of=skip_any_of)
    if isinstance(s.get("items"), dict):
        errs += _nested(s["items"], lvl, f"{path}.items")
    for k, sub in cs.properties(s).items():
        errs += _nested(sub, FIELD, _key(f"{path}.properties", k))
    for key, detail in _NESTED_FORBIDDEN:
        if key == "type" and skip_any_of:
            continue
        if _truthy(s, key) or (key == "default" and "default" in s):
            errs.append(forbidden_field(f"{path}.{key}", detail))
    if s.get("additionalProperties") is not None:
        errs.append(forbidden_field(f"{path}.additionalProperties", "must be undefined to be structural"))
    if "metadata" in cs.properties(s):
        errs.append(forbidden_field(_key(f"{path}.properties", "metadata"), "must not be specified in a nested context"))
    return errs


def _completeness(s: Schema, path: str) -> list[FieldError]:
    """Properties named in allOf/anyOf/oneOf/not must also be specified structurally."""
    errs: list[FieldError] = []

    def check(v: Any, node: Schema | None, spath: str, vpath: str) -> None:
        if not isinstance(v, dict):
            return
        if node is None:
            errs.append(required(spath, f"because it is defined in {vpath}"))
            return
        for comb in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(_list(v.get(comb))):
                check(sub, node, spath, f"{vpath}.{comb}[{i}]")
        if v.get("not") is not None:
            check(v.get("not"), node, spath, f"{vpath}.not")
        if isinstance(v.get("items"), dict):
            check(v["items"], cs.items_schema(node), f"{spath}.items", f"{vpath}.items")
        props = cs.properties(node)
        for k, sub in cs.properties(v).items():
            if k in props:
                check(sub, _d(props[k]), _key(f"{spath}.properties", k), _key(f"{vpath}.properties", k))
            else:
                errs.append(required(_key(f"{spath}.properties", k), f"because it is defined in {_key(f'{vpath}.properties', k)}"))

    def walk(node: Schema, npath: str) -> None:
        for comb in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(_list(node.get(comb))):
                check(sub, node, npath, f"{npath}.{comb}[{i}]")
        if node.get("not") is not None:
            check(node.get("not"), node, npath, f"{npath}.not")

    walk(s, path)
    return errs


# --- defaults ------------------------------------------------------------------------


def _defaults(s: Schema, path: str, root: Schema, inside_meta: bool, embedded_root: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    embedded = embedded_root or s.get(cs.EMBEDDED) is True
    if "default" in s and not inside_meta:
        value = s["default"]
        pruned = copy.deepcopy(value)
        cs.prune_value(pruned, s, resource_root=embedded)
        if not cs.json_equal(pruned, value):
            errs.append(invalid_value(f"{path}.default", value, "must not have unknown fields"))
        else:
            for e in crd_values.validate(value, s, ""):
                e.field = f"{path}.default" + (f".{e.field}" if e.field and not e.field.startswith("[") else e.field)
                errs.append(e)
    items = _d(s.get("items"))
    if items is not None:
        errs += _defaults(items, f"{path}.items", root, inside_meta, False)
    for k, sub in cs.properties(s).items():
        if isinstance(sub, dict):
            meta = inside_meta or (embedded and k in cs.META_FIELDS)
            errs += _defaults(sub, _key(f"{path}.properties", k), root, meta, False)
    return errs


# --- the OpenAPI subset Kubernetes accepts ----------------------------------------------


def _standard(s: Any, path: str, root: bool, inside_meta: bool, defaults_reason: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    t = s.get("type")
    if t not in (None, "") and t not in OPENAPI_TYPES:
        errs.append(not_supported(f"{path}.type", t, list(OPENAPI_TYPES)) if t != "null" else
                    forbidden_field(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    if "default" in s and defaults_reason:
        errs.append(forbidden_field(f"{path}.default", f"must not be set {defaults_reason}"))
    for key, what in (("id", "id"), ("additionalItems", "additionalItems"), ("patternProperties", "patternProperties"),
                      ("definitions", "definitions"), ("dependencies", "dependencies"), ("$ref", "$ref")):
        if _truthy(s, key) or (key == "$ref" and key in s):
            errs.append(forbidden_field(f"{path}.{key}", f"{what} is not supported"))
    if isinstance(s.get("items"), list):
        errs.append(forbidden_field(f"{path}.items", "items must be a schema object and not an array"))
    if inside_meta and s.get(cs.EMBEDDED) is True:
        errs.append(forbidden_field(f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta"))
    if s.get("uniqueItems") is True:
        errs.append(forbidden_field(f"{path}.uniqueItems", "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    add = s.get("additionalProperties")
    if add is not None:
        if cs.properties(s) and (add is False or isinstance(add, dict)):
            errs.append(forbidden_field(f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"))
        reason = "inside additionalProperties applying to object metadata" if inside_meta else defaults_reason
        errs += _standard(add, f"{path}.additionalProperties", False, inside_meta, reason)
    for k, sub in cs.properties(s).items():
        meta, reason = inside_meta, defaults_reason
        if (root or s.get(cs.EMBEDDED) is True) and k in cs.META_FIELDS:
            meta = True
            if root:
                reason = f"in top-level {k}"
        errs += _standard(sub, _key(f"{path}.properties", k), False, meta, reason)
    if s.get("not") is not None:
        errs += _standard(s.get("not"), f"{path}.not", False, inside_meta, defaults_reason)
    for comb in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(_list(s.get(comb))):
            errs += _standard(sub, f"{path}.{comb}[{i}]", False, inside_meta, defaults_reason)
    if isinstance(s.get("items"), dict):
        errs += _standard(s["items"], f"{path}.items", False, inside_meta, defaults_reason)
    if s.get(cs.PRESERVE) is False:
        errs.append(invalid_value(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"))
    errs += _list_map_types(s, path)
    for i, rule in enumerate(_list(s.get("x-kubernetes-validations"))):
        if not isinstance(rule, dict) or not str(rule.get("rule") or "").strip():
            errs.append(required(f"{path}.x-kubernetes-validations[{i}].rule", "rule is not specified"))
    return errs


def _list_map_types(s: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    t = s.get("type") or ""
    map_type, list_type, keys = s.get("x-kubernetes-map-type"), s.get("x-kubernetes-list-type"), s.get("x-kubernetes-list-map-keys")
    if map_type is not None:
        if t != "object":
            errs.append(required(f"{path}.type", "must be object if x-kubernetes-map-type is specified") if not t else
                        invalid_value(f"{path}.type", t, "must be object if x-kubernetes-map-type is specified"))
        if map_type not in ("atomic", "granular"):
            errs.append(not_supported(f"{path}.x-kubernetes-map-type", map_type, ["atomic", "granular"]))
    if list_type is not None:
        if t != "array":
            errs.append(required(f"{path}.type", "must be array if x-kubernetes-list-type is specified") if not t else
                        invalid_value(f"{path}.type", t, "must be array if x-kubernetes-list-type is specified"))
        if list_type not in ("atomic", "set", "map"):
            errs.append(not_supported(f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"]))
    if keys:
        if list_type is None:
            errs.append(required(f"{path}.x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys is non-empty"))
        elif list_type != "map":
            errs.append(invalid_value(f"{path}.x-kubernetes-list-type", list_type, "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        items = _d(s.get("items"))
        if not keys:
            errs.append(required(f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"))
        if items is None:
            errs.append(required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
        elif items.get("type") != "object":
            errs.append(invalid_value(f"{path}.items.type", items.get("type") or "", "must be object if parent array's x-kubernetes-list-type is map"))
        else:
            props = cs.properties(items)
            req = set(_list(items.get("required")))
            for k in _list(keys):
                sub = _d(props.get(k))
                if sub is None:
                    errs.append(invalid_value(f"{path}.x-kubernetes-list-map-keys", keys, "entries must all be names of item properties"))
                    continue
                kpath = _key(f"{path}.items.properties", k)
                if sub.get("type") in ("array", "object"):
                    errs.append(invalid_value(f"{kpath}.type", items.get("type"), "must be a scalar type if parent array's x-kubernetes-list-type is map"))
                if k not in req and "default" not in sub:
                    errs.append(required(f"{kpath}.default", "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"))
            if len(set(map(str, _list(keys)))) != len(_list(keys)):
                errs.append(invalid_value(f"{path}.x-kubernetes-list-map-keys", keys, "must not contain duplicate entries"))
    return errs
