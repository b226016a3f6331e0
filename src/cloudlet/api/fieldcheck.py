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

from typing import Any

from cloudlet.api import protobuf
from cloudlet.api.protobuf_schema import KINDS

_OPAQUE = set(protobuf._SPECIAL)  # custom-JSON types: values, not structs


def _field_map(msg_name: str) -> dict[str, Any]:
    schema = protobuf._schema()
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
    msg = KINDS.get((api_version, kind))
    if msg is None or not isinstance(obj, dict):
        return []
    out: list[str] = []
    _walk_message(obj, msg, "", out, top=True)
    return out


def _walk_message(value: dict[str, Any], msg_name: str, path: str, out: list[str], top: bool = False) -> None:
    fields = _fields_of(msg_name)
    for k in list(value):
        if top and k in ("apiVersion", "kind"):
            continue
        f = fields.get(k)
        if f is None:
            out.append(f"{path}{k}")
            del value[k]
            continue
        if not f.message or f.type in _OPAQUE:
            continue
        v = value[k]
        if f.label == "[]":
            if isinstance(v, list):
                for i, item in enumerate(v):
                    _walk_value(item, f.type, f"{path}{k}[{i}]", out)
        elif f.label == "{}":
            if isinstance(v, dict):
                for mk, item in v.items():
                    _walk_value(item, f.type, f"{path}{k}[{mk}]", out)
        else:
            _walk_value(v, f.type, f"{path}{k}", out)


def _walk_value(v: Any, msg_name: str, path: str, out: list[str]) -> None:
    if msg_name in _OPAQUE:
        return
    msg = protobuf._schema().get(msg_name)
    if msg is None:
        return
    if msg.wrapper:  # a Go named slice: the value is the bare list
        f = msg.fields[0]
        if isinstance(v, list) and f.message:
            for i, item in enumerate(v):
                _walk_value(item, f.type, f"{path}[{i}]", out)
        return
    if isinstance(v, dict):
        _walk_message(v, msg_name, path + ".", out)
