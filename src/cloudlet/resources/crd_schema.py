"""Custom resources against their structural schema: pruning and defaulting.

What kube-apiserver does to every custom resource with the ``openAPIV3Schema``
of its version (apiextensions-apiserver ``pkg/apiserver/schema/{pruning,
defaulting,objectmeta}``), on plain dicts:

* :func:`coerce` — structural pruning: fields the schema does not specify are
  removed (their paths are returned: ``fieldValidation=Strict`` rejects them,
  ``Warn`` reports them), unless a node says
  ``x-kubernetes-preserve-unknown-fields``; ``apiVersion``/``kind``/``metadata``
  are always allowed at the root and in ``x-kubernetes-embedded-resource``
  nodes, where ``metadata`` keeps only ``ObjectMeta`` fields; ``null`` values
  of non-nullable fields without a default are dropped.
* :func:`apply_defaults` — ``default`` values for missing (or ``null``,
  non-nullable) fields of objects that exist, recursively;
  :func:`defaults_missing` tells whether it would change anything.

Also the schema accessors and JSON value helpers (Go's equality and printing)
shared with :mod:`cloudlet.resources.crd_values` (validation) and
:mod:`cloudlet.resources.crd_structural` (checks of the schema itself).
Schemas are the raw ``JSONSchemaProps`` dicts of a CRD; functions never raise
on odd input.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import orjson

Obj = dict[str, Any]
Schema = dict[str, Any]

PRESERVE = "x-kubernetes-preserve-unknown-fields"
EMBEDDED = "x-kubernetes-embedded-resource"
INT_OR_STRING = "x-kubernetes-int-or-string"
META_FIELDS = ("apiVersion", "kind", "metadata")
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})


# --- schema accessors ------------------------------------------------------------


def _d(value: Any) -> Schema | None:
    return value if isinstance(value, dict) else None


def properties(s: Schema | None) -> dict[str, Any]:
    p = s.get("properties") if s else None
    return p if isinstance(p, dict) else {}


def items_schema(s: Schema | None) -> Schema | None:
    return _d(s.get("items")) if s else None


def additional(s: Schema | None) -> tuple[bool, Schema | None]:
    """``(present, schema)`` of ``additionalProperties``: a bool gives ``(True, None)``."""
    if not s or "additionalProperties" not in s or s["additionalProperties"] is None:
        return False, None
    a = s["additionalProperties"]
    return True, a if isinstance(a, dict) else None


def field_schema(s: Schema | None, key: str) -> tuple[bool, Schema | None]:
    """The schema applying to ``key`` of an object: ``(known, schema)``."""
    props = properties(s)
    if key in props:
        return True, _d(props[key])
    present, sub = additional(s)
    return present, sub


def is_preserved(s: Schema | None) -> bool:
    return s is not None and s.get(PRESERVE) is True


def is_embedded(s: Schema | None) -> bool:
    return s is not None and s.get(EMBEDDED) is True


def is_nullable(s: Schema | None) -> bool:
    return s is not None and s.get("nullable") is True


# --- pruning ---------------------------------------------------------------------


class _Paths:
    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, path: str) -> None:
        self.found.append(path)


def coerce(obj: Obj, schema: Schema | None) -> list[str]:
    """Prune ``obj`` (a whole resource) against ``schema``; return unknown field paths, sorted."""
    paths = _Paths()
    root = dict(schema or {})
    root[EMBEDDED] = True
    _prune(obj, root, "", paths)
    _prune_nulls(obj, root)
    _coerce_meta(obj, root, "", paths)
    return sorted(paths.found)


def prune_value(x: Any, schema: Schema | None, resource_root: bool = False) -> list[str]:
    """Prune any value (e.g. a ``default``) against its schema; the unknown paths."""
    paths = _Paths()
    node = dict(schema or {}, **{EMBEDDED: True}) if resource_root else schema
    _prune(x, node, "", paths)
    if resource_root:
        _coerce_meta(x, node, "", paths)
    return sorted(paths.found)


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune(x: Any, s: Schema | None, path: str, paths: _Paths) -> None:
    if is_preserved(s):
        _skip_prune(x, s, path, paths)
        return
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                paths.add(join_path(path, k))
                del x[k]
            return
        embedded = is_embedded(s)
        props = properties(s)
        has_add, add_schema = additional(s)
        for k in list(x):
            if embedded and k in META_FIELDS:
                continue
            if k in props:
                _prune(x[k], _d(props[k]), join_path(path, k), paths)
            elif has_add:
                _prune(x[k], add_schema, join_path(path, k), paths)
            else:
                if k not in META_FIELDS or path:
                    paths.add(join_path(path, k))
                del x[k]
    elif isinstance(x, list):
        sub = items_schema(s) if s is not None else None
        for i, v in enumerate(x):
            _prune(v, sub, f"{path}[{i}]", paths)


def _skip_prune(x: Any, s: Schema | None, path: str, paths: _Paths) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        embedded = is_embedded(s)
        props = properties(s)
        has_add, add_schema = additional(s)
        for k, v in x.items():
            if embedded and k in META_FIELDS:
                continue
            if k in props:
                _prune(v, _d(props[k]), join_path(path, k), paths)
            elif has_add:
                _prune(v, add_schema, join_path(path, k), paths)
    elif isinstance(x, list):
        sub = items_schema(s)
        for i, v in enumerate(x):
            _skip_prune(v, sub, f"{path}[{i}]", paths)


def _prune_nulls(x: Any, s: Schema | None) -> None:
    """Drop ``null`` map values whose schema is non-nullable and has no default."""
    if isinstance(x, dict):
        for k in list(x):
            _known, sub = field_schema(s, k)
            v = x[k]
            if v is None and sub is not None and not is_nullable(sub) and "default" not in sub:
                del x[k]
            else:
                _prune_nulls(v, sub)
    elif isinstance(x, list):
        sub = items_schema(s)
        for v in x:
            _prune_nulls(v, sub)


def _coerce_meta(x: Any, s: Schema | None, path: str, paths: _Paths) -> None:
    """ObjectMeta of the root and of embedded resources keeps only ObjectMeta fields."""
    if s is None:
        return
    if isinstance(x, dict):
        if is_embedded(s) and isinstance(x.get("metadata"), dict):
            meta = x["metadata"]
            for k in [k for k in meta if k not in OBJECT_META_FIELDS]:
                paths.add(f"{join_path(path, 'metadata')}.{k}")
                del meta[k]
        props = properties(s)
        has_add, add_schema = additional(s)
        for k, v in x.items():
            if k in props:
                _coerce_meta(v, _d(props[k]), join_path(path, k), paths)
            elif has_add:
                _coerce_meta(v, add_schema, join_path(path, k), paths)
    elif isinstance(x, list):
        sub = items_schema(s)
        for i, v in enumerate(x):
            _coerce_meta(v, sub, f"{path}[{i}]", paths)


# --- defaulting ------------------------------------------------------------------


def apply_defaults(x: Any, s: Schema | None) -> None:
    """Kubernetes' structural defaulting, in place (idempotent)."""
    if s is None:
        return
    if isinstance(x, dict):
        props = properties(s)
        for k, sub in props.items():
            if not isinstance(sub, dict) or "default" not in sub:
                continue
            if k not in x or (x[k] is None and not is_nullable(sub)):
                x[k] = copy.deepcopy(sub["default"])
        has_add, add_schema = additional(s)
        for k in list(x):
            if k in props:
                apply_defaults(x[k], _d(props[k]))
            elif has_add and add_schema is not None:
                if x[k] is None and not is_nullable(add_schema) and "default" in add_schema:
                    x[k] = copy.deepcopy(add_schema["default"])
                apply_defaults(x[k], add_schema)
    elif isinstance(x, list):
        sub = items_schema(s)
        if sub is None:
            return
        for i in range(len(x)):
            if x[i] is None and not is_nullable(sub) and "default" in sub:
                x[i] = copy.deepcopy(sub["default"])
            apply_defaults(x[i], sub)


def defaults_missing(x: Any, s: Schema | None) -> bool:
    """Whether :func:`apply_defaults` would change ``x`` (without touching it)."""
    if s is None:
        return False
    if isinstance(x, dict):
        props = properties(s)
        for k, sub in props.items():
            if isinstance(sub, dict) and "default" in sub and (k not in x or (x[k] is None and not is_nullable(sub))):
                return True
        has_add, add_schema = additional(s)
        for k, v in x.items():
            sub = _d(props[k]) if k in props else (add_schema if has_add else None)
            if sub is not None and k not in props and v is None and not is_nullable(sub) and "default" in sub:
                return True
            if defaults_missing(v, sub):
                return True
    elif isinstance(x, list):
        sub = items_schema(s)
        if sub is not None:
            for v in x:
                if (v is None and not is_nullable(sub) and "default" in sub) or defaults_missing(v, sub):
                    return True
    return False


def has_defaults(s: Any) -> bool:
    """Whether any node of the schema carries a ``default``."""
    if not isinstance(s, dict):
        return False
    if "default" in s:
        return True
    subs: list[Any] = list(properties(s).values())
    subs.append(s.get("items"))
    subs.append(s.get("additionalProperties"))
    return any(has_defaults(x) for x in subs)


# --- JSON values --------------------------------------------------------------------




def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values (``true`` is not ``1``; ``1`` is ``1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def go_number(v: Any) -> str:
    """A number as Go's ``%v`` prints it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        text = repr(v)
        m = re.fullmatch(r"(-?[\d.]+)e([+-])(\d+)", text)
        if m:
            return f"{m.group(1)}e{m.group(2)}{int(m.group(3)):02d}"
        return text
    return str(v)


def printed_go(v: Any) -> str:
    """A JSON value as Go's ``%v`` prints it (``map[a:1]``, ``[x y]``, ``<nil>``)."""
    if v is None:
        return "<nil>"
    if isinstance(v, str):
        return v
    if isinstance(v, bool | int | float):
        return go_number(v)
    if isinstance(v, list):
        return "[" + " ".join(printed_go(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{printed_go(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def go_quote(s: str) -> str:
    return orjson.dumps(s).decode()


def int_or_string_pattern(any_of: Any) -> bool:
    return (
        isinstance(any_of, list)
        and len(any_of) == 2
        and any_of[0] == {"type": "integer"}
        and any_of[1] == {"type": "string"}
    )
