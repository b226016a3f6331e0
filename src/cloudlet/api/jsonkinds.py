"""How Kubernetes names the type of a decoded JSON value in its messages.

Three vocabularies reach users, and each error message must use the right one:

* :func:`go_json_kind` — Go's ``encoding/json`` ``UnmarshalTypeError``
  ("json: cannot unmarshal **array** into Go struct field ...");
* :func:`go_value_type` — ``%T`` of a value decoded into ``interface{}``
  ("... is of the type **map[string]interface {}**"); integers print as
  ``int64`` from unstructured objects and ``float64`` from plain JSON decoding;
* :func:`openapi_type` — OpenAPI schema type names ("**integer**", "**boolean**")
  used by CRD structural-schema validation.
"""

from __future__ import annotations

from typing import Any, Literal


def go_json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


_GO_TYPES = {
    "null": "<nil>",
    "bool": "bool",
    "string": "string",
    "array": "[]interface {}",
    "object": "map[string]interface {}",
}


def go_value_type(v: Any, integers: Literal["int64", "float64"] = "float64") -> str:
    kind = go_json_kind(v)
    if kind == "number":
        return integers if isinstance(v, int) else "float64"
    return _GO_TYPES[kind]


def openapi_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"
