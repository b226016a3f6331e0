"""Structural schemas of custom resources: pruning, defaulting, value validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cloudlet.resources import crd_schema as cs
from cloudlet.resources import crd_values as cv
from cloudlet.resources.crd_structural import validate_version_schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                "size": {"type": "string", "enum": ["small", "large"]},
                "name": {"type": "string", "minLength": 3, "maxLength": 8, "pattern": "^[a-z]+$"},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                "port": {"x-kubernetes-int-or-string": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "minItems": 1},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "when": {"type": "string", "format": "date-time"},
                "count32": {"type": "integer", "format": "int32"},
                "maybe": {"type": "string", "nullable": True},
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {"mode": {"type": "string", "default": "fast"}, "on": {"type": "boolean"}},
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port"],
                    "items": {"type": "object", "required": ["port"], "properties": {"port": {"type": "integer"}}},
                },
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
            "spec": {"size": "small", **spec}}


def errors(o: dict[str, Any]) -> list[str]:
    return [str(e) for e in cv.validate(o, SCHEMA)]


# --- pruning ----------------------------------------------------------------------------


def test_prune_removes_unknown_fields_and_reports_paths() -> None:
    o = obj(foo=1, tags=["a"], nested={"mode": "x", "bogus": True})
    o["extra"] = {"a": 1}
    o["metadata"]["weird"] = "x"
    assert cs.coerce(o, SCHEMA) == ["extra", "metadata.weird", "spec.foo", "spec.nested.bogus"]
    assert "extra" not in o and "foo" not in o["spec"] and o["spec"]["nested"] == {"mode": "x"}
    assert o["metadata"] == {"name": "w", "namespace": "default"}
    assert o["apiVersion"] == "example.com/v1" and o["kind"] == "Widget"


def test_prune_keeps_preserved_maps_and_embedded_resources() -> None:
    tmpl = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1}, "spec": {"anything": [1]}}
    o = obj(raw={"x": {"y": [1, {"z": 2}]}}, labels={"a": "b"}, template=tmpl)
    assert cs.coerce(o, SCHEMA) == ["spec.template.metadata.junk"]
    assert o["spec"]["raw"] == {"x": {"y": [1, {"z": 2}]}}
    assert o["spec"]["labels"] == {"a": "b"}
    assert o["spec"]["template"]["metadata"] == {"name": "p"}
    assert o["spec"]["template"]["spec"] == {"anything": [1]}


def test_prune_inside_arrays_and_null_removal() -> None:
    o = obj(ports=[{"port": 80, "name": "http"}], name=None, maybe=None)
    assert cs.coerce(o, SCHEMA) == ["spec.ports[0].name"]
    assert o["spec"]["ports"] == [{"port": 80}]
    assert "name" not in o["spec"]  # non-nullable null without default: dropped
    assert o["spec"]["maybe"] is None  # nullable: kept


def test_root_preserve_unknown_fields_keeps_everything() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    o = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n"}, "spec": {"x": 1}, "other": [1]}
    assert cs.coerce(o, schema) == []
    assert o["spec"] == {"x": 1} and o["other"] == [1]


# --- defaulting -------------------------------------------------------------------------


def test_defaults_fill_missing_and_null_fields_recursively() -> None:
    o = obj()
    cs.apply_defaults(o, SCHEMA)
    assert o["spec"]["replicas"] == 1
    assert o["spec"]["nested"] == {"mode": "fast"}  # the default {} is itself defaulted
    o2 = obj(replicas=None, nested={"on": True})
    cs.apply_defaults(o2, SCHEMA)
    assert o2["spec"]["replicas"] == 1 and o2["spec"]["nested"] == {"on": True, "mode": "fast"}
    o3 = obj(replicas=4)
    cs.apply_defaults(o3, SCHEMA)
    assert o3["spec"]["replicas"] == 4


def test_defaults_do_not_create_missing_parents() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}}}
    o: dict[str, Any] = {"metadata": {"name": "n"}}
    cs.apply_defaults(o, schema)
    assert "spec" not in o
    cs.apply_defaults(o2 := {"spec": {}}, schema)
    assert o2 == {"spec": {"a": "x"}}


def test_defaults_are_copies() -> None:
    schema = {"type": "object", "properties": {"m": {"type": "object", "default": {"k": ["v"]}, "x-kubernetes-preserve-unknown-fields": True}}}
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    cs.apply_defaults(a, schema)
    cs.apply_defaults(b, schema)
    a["m"]["k"].append("w")
    assert b["m"] == {"k": ["v"]} and schema["properties"]["m"]["default"] == {"k": ["v"]}


# --- validation -------------------------------------------------------------------------


def test_valid_object_has_no_errors() -> None:
    o = obj(replicas=3, name="abc", ratio=0.5, port="http", labels={"a": "b"}, tags=["x"],
            when="2024-01-02T03:04:05Z", count32=7, maybe=None, ports=[{"port": 1}, {"port": 2}])
    assert errors(o) == []
    assert errors(obj(port=8080, ratio=2, replicas=2.0)) == []  # whole floats are integers


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({"replicas": "three"},
         'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'),
        ({"replicas": 1.5}, 'spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number"'),
        ({"replicas": True}, 'spec.replicas: Invalid value: "boolean": spec.replicas in body must be of type integer: "boolean"'),
        ({"size": "huge"}, 'spec.size: Unsupported value: "huge": supported values: "small", "large"'),
        ({"replicas": -1}, "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
        ({"replicas": 11}, "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
        ({"ratio": 0}, "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"),
        ({"name": "ab"}, 'spec.name: Invalid value: "ab": spec.name in body should be at least 3 chars long'),
        ({"name": "abcdefghij"}, "spec.name: Too long: may not be more than 8 bytes"),
        ({"name": "ABC"}, "spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"),
        ({"tags": []}, "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"),
        ({"tags": ["a", "b", "c"]}, "spec.tags: Too many: 3: must have at most 2 items"),
        ({"tags": ["a", 1]}, 'spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"'),
        ({"labels": {"a": 1}}, 'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"'),
        ({"port": 1.5}, 'spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number"'),
        ({"when": "yesterday"}, 'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"'),
        ({"count32": 2**40}, f"spec.count32: Invalid value: {2**40}: Checked value must be of type integer with format int32 in spec.count32"),
        ({"nested": "x"}, 'spec.nested: Invalid value: "string": spec.nested in body must be of type object: "string"'),
        ({"ports": [{"port": 1}, {"port": 1}]}, 'spec.ports[1]: Duplicate value: {"port":1}'),
        ({"ports": [{}]}, "spec.ports[0].port: Required value"),
    ],
)
def test_value_errors_are_worded_like_kubernetes(spec: dict[str, Any], want: str) -> None:
    assert errors(obj(**spec)) == [want]


def test_required_and_null() -> None:
    o = obj()
    del o["spec"]["size"]
    assert errors(o) == ["spec.size: Required value"]
    assert errors(obj(tags=[None])) == ['spec.tags[0]: Invalid value: "null": spec.tags[0] in body must be of type string: "null"']


def test_causes_carry_kubernetes_reasons() -> None:
    causes = [e.cause() for e in cv.validate(obj(replicas="x", size="huge", tags=[]), SCHEMA)]
    assert [c["reason"] for c in causes] == ["FieldValueTypeInvalid", "FieldValueNotSupported", "FieldValueInvalid"]
    assert causes[0]["field"] == "spec.replicas"


def test_embedded_resources_need_apiversion_and_kind() -> None:
    o = obj(template={"metadata": {"name": "Bad_Name"}})
    msgs = [str(e) for e in cv.validate_embedded(o, SCHEMA)]
    assert "spec.template.apiVersion: Required value" in msgs
    assert "spec.template.kind: Required value" in msgs
    assert any(m.startswith("spec.template.metadata.name: Invalid value") for m in msgs) is False  # path segment names allow it
    assert cv.validate_embedded(obj(template={"apiVersion": "v1", "kind": "Pod"}), SCHEMA) == []


def test_additional_properties_false_and_combinators() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    assert [str(e) for e in cv.validate({"a": 1, "b": 2}, schema, "spec")] == [
        'spec: Invalid value: "b": spec.b in body is a forbidden property'
    ]
    one_of = {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    assert cv.validate({"a": 1}, one_of, "x") == []
    msgs = [str(e) for e in cv.validate({"a": 1, "b": 2}, one_of, "x")]
    assert msgs == ['x: Invalid value: "": "x" must validate one and only one schema (oneOf). Found 2 valid alternatives']


def test_json_equal_distinguishes_bools_from_numbers() -> None:
    assert cs.json_equal(1, 1.0) and not cs.json_equal(True, 1) and cs.json_equal({"a": [1]}, {"a": [1.0]})
    enum = {"type": "integer", "enum": [1, 2]}
    assert cv.validate(2, enum, "n") == []
    assert [str(e) for e in cv.validate(3, enum, "n")] == ['n: Unsupported value: 3: supported values: "1", "2"']


# --- CRD-time schema checks -------------------------------------------------------------

P = "spec.versions[0].schema.openAPIV3Schema"


def structural(schema: dict[str, Any], status: bool = False) -> list[str]:
    return [str(e) for e in validate_version_schema(schema, P, status)]


def test_good_schema_is_accepted() -> None:
    assert structural(SCHEMA) == []
    assert structural(SCHEMA, status=True) == []


@pytest.mark.parametrize(
    ("schema", "want"),
    [
        ({"properties": {"spec": {"type": "object"}}}, f"{P}.type: Required value: must not be empty at the root"),
        ({"type": "string"}, f'{P}.type: Invalid value: "string": must be object at the root'),
        ({"type": "object", "properties": {"spec": {}}}, f"{P}.properties[spec].type: Required value: must not be empty for specified object fields"),
        ({"type": "object", "properties": {"a": {"type": "array"}}}, f"{P}.properties[a].items: Required value: must be specified"),
        ({"type": "object", "properties": {"a": {"type": "array", "items": {}}}}, f"{P}.properties[a].items.type: Required value: must not be empty for specified array items"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, f"{P}.additionalProperties: Forbidden: must not be used at the root"),
        ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}},
         f"{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"),
        ({"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-embedded-resource": True}}},
         f"{P}.properties[a].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"),
        ({"type": "object", "properties": {"a": {"type": "strin"}}},
         f'{P}.properties[a].type: Unsupported value: "strin": supported values: "array", "boolean", "integer", "number", "object", "string"'),
        ({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": {"type": "string"}}}},
         f"{P}.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"),
        ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}},
         f"{P}.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"),
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, f"{P}.properties[a].$ref: Forbidden: $ref is not supported"),
        ({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-preserve-unknown-fields": False}}},
         f"{P}.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"),
        ({"type": "object", "properties": {"a": {"type": "integer", "default": "x"}}},
         f'{P}.properties[a].default: Invalid value: "string":  in body must be of type integer: "string"'),
        ({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}, "default": {"c": 1}}}},
         f'{P}.properties[a].default: Invalid value: {{"c":1}}: must not have unknown fields'),
        ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "default": "x"}}}}},
         f"{P}.properties[metadata].properties[name].default: Forbidden: must not be set in top-level metadata"),
        ({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "string"}]}}},
         f"{P}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{"required": ["x"], "properties": {"x": {"minimum": 1}}}]},
         f"{P}.properties[x]: Required value: because it is defined in {P}.anyOf[0].properties[x]"),
    ],
)
def test_schema_errors(schema: dict[str, Any], want: str) -> None:
    assert want in structural(schema)


def test_status_subresource_limits_the_root() -> None:
    schema = {"type": "object", "properties": {}, "minProperties": 1}
    assert structural(schema) == []
    [msg] = structural(schema, status=True)
    assert msg.endswith("fields are allowed at the root of the schema if the status subresource is enabled")


def test_int_or_string_patterns_are_structural() -> None:
    schema = {"type": "object", "properties": {
        "a": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "b": {"x-kubernetes-int-or-string": True, "pattern": "^[0-9]+$"},
    }}
    assert structural(schema) == []
    assert cv.validate({"a": 1, "b": "12"}, schema, "") == []


def test_schema_checks_do_not_mutate_the_schema() -> None:
    schema = copy.deepcopy(SCHEMA)
    structural(schema, status=True)
    cv.validate(obj(), schema)
    assert schema == SCHEMA


# --- ratcheting and read-time defaults --------------------------------------------------


def test_ratcheting_ignores_errors_in_unchanged_values() -> None:
    old = obj(replicas=50, tags=["a", "b", "c"])  # valid under an older schema
    del old["spec"]["size"]
    new = copy.deepcopy(old)
    new["status"] = {"ready": True}
    assert len(cv.validate(new, SCHEMA)) == 3
    assert cv.ratchet(cv.validate(new, SCHEMA), new, old) == []
    new["spec"]["replicas"] = 60
    assert [str(e) for e in cv.ratchet(cv.validate(new, SCHEMA), new, old)] == [
        "spec.replicas: Invalid value: 60: spec.replicas in body should be less than or equal to 10",
        "spec.size: Required value",  # spec changed: its missing required field counts again
    ]


def test_defaults_missing_matches_apply_defaults() -> None:
    o = obj(replicas=2, nested={"mode": "x"})
    assert not cs.defaults_missing(o, SCHEMA)
    del o["spec"]["nested"]["mode"]
    assert cs.defaults_missing(o, SCHEMA)
    cs.apply_defaults(o, SCHEMA)
    assert not cs.defaults_missing(o, SCHEMA)
