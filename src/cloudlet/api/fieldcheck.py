"""Unknown-field detection for built-in kinds (``fieldValidation``).

Kubernetes decodes requests into typed structs, so a field the type does not
have is either dropped (``Ignore``), dropped with a ``Warning`` header
(``Warn``, the server default) or rejected (``Strict``, what kubectl asks
for). cloudlet keeps objects as dicts, so it walks the object against the
structural schema of the kind — the same field tables the protobuf decoder
uses (:mod:`cloudlet.api.protobuf_schema`) — and prunes what is unknown.

Paths are reported as Kubernetes does: ``spec.template.spec.containers[0].foo``.
Kinds without a table (custom resources) are left alone here.
"""

from __future__ import annotations

import re
from typing import Any

from cloudlet.api import protobuf
from cloudlet.api.jsonkinds import go_json_kind
from cloudlet.api.protobuf_schema import KINDS

_OPAQUE = set(protobuf.OPAQUE_TYPES)  # custom-JSON types: values, not structs


def _field_map(msg_name: str) -> dict[str, Any]:
    schema = protobuf.schema()
    msg = schema[msg_name]
    out: dict[str, Any] = {}
    for f in msg.fields:
        if f.json == "" and not msg.wrapper:
            out.update(_field_map(f.type))  # inline struct: its fields belong to the parent
        else:
            out[f.json] = f
    return out


_MAPS: dict[str, dict[str, Any]] = {}


def _fields_of(msg_name: str) -> dict[str, Any]:
    fm = _MAPS.get(msg_name)
    if fm is None:
        fm = _MAPS[msg_name] = _field_map(msg_name)
    return fm


def has_schema(api_version: str, kind: str) -> bool:
    return (api_version, kind) in KINDS


def prune_unknown(obj: dict[str, Any], api_version: str, kind: str) -> list[str]:
    """Remove fields the kind does not define; return their paths (empty if none)."""
    return check_object(obj, api_version, kind)[0]


def check_object(obj: dict[str, Any], api_version: str, kind: str) -> tuple[list[str], list[str]]:
    """Prune unknown fields and find values Go's JSON decoding would refuse.

    Returns ``(unknown_field_paths, decode_errors)``; a decode error (a string
    where a number belongs, an int32 out of range, a malformed timestamp) is a
    400 in Kubernetes whatever ``fieldValidation`` says.
    """
    msg = KINDS.get((api_version, kind))
    if msg is None or not isinstance(obj, dict):
        return [], []
    out: list[str] = []
    bad: list[str] = []
    _walk_message(obj, msg, "", out, bad, top=True)
    return out, bad


_INT_RANGE = {"i32": (-(2**31), 2**31 - 1), "i64": (-(2**63), 2**63 - 1)}
_GO_TYPE = {"str": "string", "bool": "bool", "i32": "int32", "i64": "int64", "f64": "float64", "bytes": "[]byte"}


def _go_name(t: str) -> str:
    return _GO_TYPE.get(t) or "v1." + t.rsplit(".", 1)[-1]




def _scalar_error(v: Any, typ: str, path: str) -> str | None:
    if v is None:
        return None
    go = _GO_TYPE.get(typ, typ)
    if typ in ("str", "bytes"):
        ok = isinstance(v, str)
    elif typ == "bool":
        ok = isinstance(v, bool)
    elif typ in _INT_RANGE:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        ok = isinstance(v, int) and not isinstance(v, bool)
        if ok:
            lo, hi = _INT_RANGE[typ]
            if not lo <= v <= hi:
                return f"json: cannot unmarshal number {v} into Go struct field {path} of type {go}"
    elif typ == "f64":
        ok = isinstance(v, int | float) and not isinstance(v, bool)
    else:
        return None
    if ok:
        return None
    return f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type {go}"


def _special_error(v: Any, typ: str, path: str) -> str | None:
    if v is None:
        return None
    if typ in ("meta.v1.Time", "meta.v1.MicroTime"):
        if not isinstance(v, str):
            return f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type string"
        if v and not _RFC3339.fullmatch(v):
            return f'parsing time "{v}" as "2006-01-02T15:04:05Z07:00": cannot parse "{v}" as "2006"'
    elif typ == "intstr.IntOrString":
        if not (isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))):
            return f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type intstr.IntOrString"
    elif typ == "resource.Quantity":
        if not (isinstance(v, str) or (isinstance(v, int | float) and not isinstance(v, bool))):
            return f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({path})"
    return None


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _walk_message(
    value: dict[str, Any], msg_name: str, path: str, out: list[str], bad: list[str], top: bool = False
) -> None:
    fields = _fields_of(msg_name)
    for k in list(value):
        if top and k in ("apiVersion", "kind"):
            continue
        f = fields.get(k)
        if f is None:
            out.append(f"{path}{k}")
            del value[k]
            continue
        v = value[k]
        here = f"{path}{k}"
        if v is None:
            continue
        if f.label == "[]":
            if not isinstance(v, list):
                if not (f.type == "bytes" and isinstance(v, str)):
                    bad.append(f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {here} of type []{_go_name(f.type)}")
                continue
            for i, item in enumerate(v):
                _walk_value(item, f, f"{here}[{i}]", out, bad)
        elif f.label == "{}":
            if not isinstance(v, dict):
                bad.append(f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {here} of type map[string]{_go_name(f.type)}")
                continue
            for mk, item in v.items():
                _walk_value(item, f, f"{here}[{mk}]", out, bad)
        else:
            _walk_value(v, f, here, out, bad)


def _walk_value(v: Any, f: Any, path: str, out: list[str], bad: list[str]) -> None:
    if not f.message:
        err = _scalar_error(v, f.type, path)
        if err:
            bad.append(err)
        return
    if f.type in _OPAQUE:
        err = _special_error(v, f.type, path)
        if err:
            bad.append(err)
        return
    msg = protobuf.schema().get(f.type)
    if msg is None or v is None:
        return
    if msg.wrapper:  # a Go named slice: the value is the bare list
        inner = msg.fields[0]
        if isinstance(v, list):
            for i, item in enumerate(v):
                _walk_value(item, inner, f"{path}[{i}]", out, bad)
        return
    if isinstance(v, dict):
        _walk_message(v, f.type, path + ".", out, bad)
    else:
        bad.append(f"json: cannot unmarshal {go_json_kind(v)} into Go struct field {path} of type {_go_name(f.type)}")


_ZERO = {"str": "", "bool": False, "i32": 0, "i64": 0, "f64": 0}


def fill_status_zero_values(obj: dict[str, Any], api_version: str, kind: str) -> None:
    """Give ``status`` the zero values Go's JSON encoding always writes.

    Scalar status fields without ``omitempty`` (``ReplicaSetStatus.replicas``,
    HPA ``status.desiredReplicas``) are present on a real cluster even when
    zero, and typed clients (the official Python client) treat them as
    required. Only messages already present are filled.
    """
    msg = KINDS.get((api_version, kind))
    status = obj.get("status") if isinstance(obj, dict) else None
    if msg is None or not isinstance(status, dict):
        return
    f = _fields_of(msg).get("status")
    if f is None or not f.message or f.type in _OPAQUE:
        return
    _fill(status, f.type)


def _fill(value: dict[str, Any], msg_name: str) -> None:
    for name, f in _fields_of(msg_name).items():
        if not f.message:
            if f.label == "" and not f.omitempty and not f.omitzero and name not in value and f.type in _ZERO:
                value[name] = _ZERO[f.type]
            continue
        v = value.get(name)
        if f.type in _OPAQUE or v is None:
            continue
        if f.label == "[]" and isinstance(v, list):
            for item in v:
                if isinstance(item, dict) and not protobuf.schema()[f.type].wrapper:
                    _fill(item, f.type)
        elif f.label in ("", "*") and isinstance(v, dict) and not protobuf.schema()[f.type].wrapper:
            _fill(v, f.type)
