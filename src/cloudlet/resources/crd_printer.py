"""Table output of custom resources: ``additionalPrinterColumns`` and their JSONPath.

Each column's ``jsonPath`` is the kubectl/client-go JSONPath dialect (the part
inside ``{...}``) — the subset CRDs use: ``.a.b``, ``['a.b']``, ``[0]``,
``[-1]``, ``[1:3]``, ``[*]``, ``..name`` and filters
``[?(@.type=="Ready")]`` (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, or a
bare ``@.path`` for existence). Missing keys give no value. Cells follow
kube-apiserver's table convertor: the first result, ``integer``/``number``/
``boolean`` as JSON values, ``date`` as an age (``5m``, ``<invalid>`` when not
a timestamp), ``string`` as kubectl prints it (scalars as text, objects and
lists as compact JSON); no value is ``null`` (kubectl shows ``<none>``).
A CRD version without columns gets ``Age`` from ``metadata.creationTimestamp``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cloudlet.resources.crd_schema import go_number, json_equal
from cloudlet.resources.registry import NAME_COLUMN, Column
from cloudlet.resources.tables import translate_timestamp

Obj = dict[str, Any]
_MISSING = object()

AGE = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients may not set "
    "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. "
    "Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
}


class JSONPathError(ValueError):
    pass


@dataclass(frozen=True)
class _Step:
    op: str  # field | recursive | index | slice | wildcard | filter
    arg: Any = None


_FILTER = re.compile(r"^\s*@((?:\.[^\s=!<>]+|\[[^\]]*\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")


def parse(path: str) -> list[_Step]:
    """Parse a JSONPath expression (without the surrounding braces)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[_Step] = []
    i = 0
    while i < len(text):
        c = text[i]
        if text.startswith("..", i):
            m = re.match(r"[A-Za-z0-9_\-/*]+", text[i + 2:])
            if not m:
                raise JSONPathError(f"unrecognized identifier in {path!r}")
            steps.append(_Step("recursive", m.group(0)))
            i += 2 + len(m.group(0))
        elif c == ".":
            m = re.match(r"[^.\[\]]*", text[i + 1:])
            name = m.group(0) if m else ""
            if name == "*":
                steps.append(_Step("wildcard"))
            elif name:
                steps.append(_Step("field", name))
            i += 1 + len(name)
        elif c == "[":
            end = _closing(text, i, path)
            steps.append(_bracket(text[i + 1:end].strip(), path))
            i = end + 1
        else:
            m = re.match(r"[A-Za-z0-9_\-/]+", text[i:])
            if not m:
                raise JSONPathError(f"unrecognized character in {path!r}: {c!r}")
            steps.append(_Step("field", m.group(0)))
            i += len(m.group(0))
    return steps


def _closing(text: str, start: int, path: str) -> int:
    depth, quote = 0, ""
    for j in range(start, len(text)):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError(f"unclosed array expect ] in {path!r}")


def _bracket(inner: str, path: str) -> _Step:
    if inner == "*":
        return _Step("wildcard")
    if inner[:1] in "'\"" and inner[-1:] == inner[:1] and len(inner) >= 2:
        return _Step("field", inner[1:-1])
    if inner.startswith("?(") and inner.endswith(")"):
        m = _FILTER.match(inner[2:-1])
        if not m:
            raise JSONPathError(f"unrecognized filter in {path!r}")
        lhs = parse(m.group(1) or "")
        rhs = _literal(m.group(3)) if m.group(2) else None
        return _Step("filter", (lhs, m.group(2), rhs))
    if re.fullmatch(r"-?\d+", inner):
        return _Step("index", int(inner))
    m = re.fullmatch(r"(-?\d*):(-?\d*)(?::(-?\d*))?", inner)
    if m:
        return _Step("slice", tuple(int(g) if g else None for g in m.groups()))
    raise JSONPathError(f"invalid array index {inner!r} in {path!r}")


def _literal(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] in "'\"" and t[-1] == t[0]:
        return t[1:-1]
    if t in ("true", "false"):
        return t == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def evaluate(steps: list[_Step], data: Any) -> list[Any]:
    """Every value ``steps`` select in ``data`` (missing keys select nothing)."""
    cur = [data]
    for step in steps:
        nxt: list[Any] = []
        for v in cur:
            nxt.extend(_apply(step, v))
        cur = nxt
    return cur


def _apply(step: _Step, v: Any) -> list[Any]:
    if step.op == "field":
        if isinstance(v, dict) and step.arg in v:
            return [v[step.arg]]
        return []
    if step.op == "wildcard":
        if isinstance(v, dict):
            return [v[k] for k in sorted(v)]
        return list(v) if isinstance(v, list) else []
    if step.op == "index":
        if isinstance(v, list) and -len(v) <= step.arg < len(v):
            return [v[step.arg]]
        return []
    if step.op == "slice":
        return list(v[slice(*step.arg)]) if isinstance(v, list) else []
    if step.op == "recursive":
        return _recursive(v, step.arg)
    if step.op == "filter":
        lhs, op, rhs = step.arg
        items = v if isinstance(v, list) else ([v[k] for k in sorted(v)] if isinstance(v, dict) else [])
        return [item for item in items if _matches(item, lhs, op, rhs)]
    return []


def _recursive(v: Any, name: str) -> list[Any]:
    out: list[Any] = []
    if isinstance(v, dict):
        if name == "*":
            out.extend(v[k] for k in sorted(v))
        elif name in v:
            out.append(v[name])
        for k in sorted(v):
            out.extend(_recursive(v[k], name))
    elif isinstance(v, list):
        for item in v:
            out.extend(_recursive(item, name))
    return out


def _matches(item: Any, lhs: list[_Step], op: str | None, rhs: Any) -> bool:
    found = evaluate(lhs, item)
    if op is None:
        return bool(found)
    for left in found:
        if op in ("==", "!="):
            if json_equal(left, rhs) == (op == "=="):
                return True
            continue
        if isinstance(left, bool) or isinstance(rhs, bool):
            continue
        if isinstance(left, int | float) and isinstance(rhs, int | float) or isinstance(left, str) and isinstance(rhs, str):
            if {"<": left < rhs, "<=": left <= rhs, ">": left > rhs, ">=": left >= rhs}[op]:
                return True
    return False


# --- cells -----------------------------------------------------------------------------


def printed(value: Any) -> str:
    """A value as kubectl's JSONPath printer writes it."""
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_number(value)
    if value is None:
        return "<nil>"
    return str(value)


def cell(col_type: str, value: Any) -> Any:
    """kube-apiserver's ``cellForJSONValue`` (``string`` columns are printed text)."""
    if value is None:
        return None
    if col_type == "string":
        return printed(value)
    if col_type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float):
            return int(value)
        return None
    if col_type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None
    if col_type == "boolean":
        return value if isinstance(value, bool) else None
    if col_type == "date":
        if isinstance(value, str):
            text = translate_timestamp(value)
            return "<invalid>" if text == "<unknown>" else text
        return None
    return None


@dataclass(frozen=True)
class Printer:
    """The columns and row function of one served CRD version."""

    columns: list[Column]
    row: Callable[[Obj], list[Any]]


def printer(column_defs: list[Obj] | None) -> Printer:
    """Build the table printer from a version's ``additionalPrinterColumns``."""
    defs = [c for c in (column_defs or []) if isinstance(c, dict)] or [AGE]
    columns = [NAME_COLUMN]
    paths: list[tuple[str, list[_Step] | None]] = []
    for c in defs:
        json_path = str(c.get("jsonPath") or "")
        desc = str(c.get("description") or f"Custom resource definition column (in JSONPath format): {json_path}")
        columns.append(Column(str(c.get("name") or ""), str(c.get("type") or "string"), str(c.get("format") or ""),
                              desc, int(c.get("priority") or 0)))
        try:
            paths.append((str(c.get("type") or "string"), parse(json_path)))
        except JSONPathError:
            paths.append((str(c.get("type") or "string"), None))

    def row(obj: Obj) -> list[Any]:
        cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
        for col_type, steps in paths:
            found = evaluate(steps, obj) if steps is not None else []
            cells.append(cell(col_type, found[0]) if found else None)
        return cells

    return Printer(columns, row)
