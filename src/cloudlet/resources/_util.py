"""Small helpers shared by the kind modules: field paths, tolerant dict access.

Objects arrive as plain JSON-shaped dicts that have not been schema-checked, so
every accessor here tolerates the wrong type (a list where a map belongs, a
string where a number belongs) instead of raising: validators report bad input
as :class:`FieldError` values, they never crash with a 500.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from cloudlet.api.errors import FieldError

Obj = dict[str, Any]
Errors = list[FieldError]


def child(path: str, name: str) -> str:
    """``spec`` + ``containers`` -> ``spec.containers``."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    """``spec.containers`` + 0 -> ``spec.containers[0]``."""
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """``metadata.annotations`` + ``a`` -> ``metadata.annotations[a]`` (Go ``Path.Key``)."""
    return f"{path}[{k}]"


def as_dict(value: Any) -> Obj:
    """``value`` if it is a mapping, else an empty dict (never the caller's object)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def is_int(value: Any) -> bool:
    """True for JSON integers (``bool`` is not a number here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def str_map(value: Any) -> dict[str, str]:
    """A ``map[string]string`` view: non-string values are rendered, not dropped."""
    out: dict[str, str] = {}
    for k, v in as_dict(value).items():
        out[str(k)] = v if isinstance(v, str) else ("" if v is None else str(v))
    return out


def ensure_dict(parent: Obj, name: str) -> Obj:
    """``parent[name]`` as a dict, created when missing or null.

    A value of the wrong type is left in place (validation reports it) and a
    detached empty dict is returned, so defaulting never "repairs" bad input.
    """
    value = parent.get(name)
    if value is None:
        value = {}
        parent[name] = value
    return value if isinstance(value, dict) else {}


def set_default(parent: Obj, name: str, value: Any) -> None:
    """Set ``parent[name]`` when it is missing, ``None`` or ``""`` (Go zero value)."""
    if parent.get(name) in (None, ""):
        parent[name] = copy.deepcopy(value)


def dicts(value: Any) -> Iterable[Obj]:
    """The dict items of a list (skipping anything else); for defaulting loops."""
    return (item for item in as_list(value) if isinstance(item, dict))


def unique(errors: Iterable[FieldError]) -> Errors:
    """Drop repeated errors, keeping the first (``field.ErrorList.ToAggregate``)."""
    seen: set[str] = set()
    out: Errors = []
    for err in errors:
        text = str(err)
        if text not in seen:
            seen.add(text)
            out.append(err)
    return out


def type_check(value: Any, want: type | tuple[type, ...], path: str, what: str) -> Errors:
    """One ``Invalid`` error when ``value`` (if present) is not of JSON type ``what``."""
    if value is None or (isinstance(value, want) and not isinstance(value, bool)):
        return []
    return [FieldError("Invalid", path, value, f"must be {what}")]


def go_string_slice(items: Iterable[str]) -> str:
    """Go's ``%#v`` of a ``[]string`` (``[]string{"a", "b"}``), used in a few messages."""
    return "[]string{" + ", ".join(f'"{s}"' for s in items) + "}"


Validator = Callable[[Obj, "Obj | None"], Errors]
