"""Custom resource values against their ``openAPIV3Schema``: validation, ratcheting.

kube-openapi's schema validator as kube-apiserver runs it on custom resources,
with its messages turned into field errors the way Kubernetes does
(``spec.replicas: Invalid value: "string": spec.replicas in body must be of
type integer: "string"``, ``spec.size: Unsupported value: "huge": supported
values: "small", "large"``, ``spec.name: Required value``): types (integer vs
number, ``nullable``, ``x-kubernetes-int-or-string``), ``enum``, ``pattern``
(Go RE2 syntax through Python's ``re``), bounds, lengths, item and property
counts, ``uniqueItems``, the cheap ``format``s, ``allOf``/``anyOf``/``oneOf``/
``not``, ``additionalProperties``, ``x-kubernetes-list-type`` set/map
uniqueness, and the apiVersion/kind/metadata of embedded resources.

:func:`ratchet` drops errors about values an update left unchanged
(Kubernetes' CRD validation ratcheting). ``x-kubernetes-validations`` (CEL)
rules are not evaluated.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from cloudlet.api.errors import FieldError, duplicate, invalid_value, not_supported, required
from cloudlet.api.jsonkinds import openapi_type
from cloudlet.resources._util import child
from cloudlet.resources.crd_schema import (
    INT_OR_STRING,
    Obj,
    Schema,
    additional,
    go_number,
    go_quote,
    int_or_string_pattern,
    is_embedded,
    is_nullable,
    items_schema,
    join_path,
    json_equal,
    properties,
)
from cloudlet.resources.validation import name_is_path_segment, validate_object_meta

# formats kube-apiserver validates (others are dropped before validation)
STRING_FORMATS = frozenset({
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4",
    "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password",
    "date", "duration", "datetime",
})


@dataclass
class SchemaFieldError(FieldError):
    """A :class:`FieldError` for the two shapes ``cloudlet.api.errors`` does not
    word: ``TypeInvalid`` (reason ``FieldValueTypeInvalid``, body "Invalid
    value") and ``TooMany`` carrying the actual count."""

    def body(self) -> str:
        if self.type == "TypeInvalid":
            return FieldError("Invalid", self.field, self.value, self.detail).body()
        if self.type == "TooMany" and self.value is not None:
            return f"Too many: {self.value}: {self.detail}"
        return super().body()

    def cause(self) -> dict[str, Any]:
        out = super().cause()
        if self.type == "TypeInvalid":
            out["reason"] = "FieldValueTypeInvalid"
        return out


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return SchemaFieldError("TypeInvalid", path, value, detail)


def too_many(path: str, actual: int, limit: int) -> FieldError:
    return SchemaFieldError("TooMany", path, actual, f"must have at most {limit} item{'' if limit == 1 else 's'}")


def too_long(path: str, limit: int) -> FieldError:
    return FieldError("TooLong", path, None, f"may not be more than {limit} byte{'' if limit == 1 else 's'}")


def _types(s: Schema) -> list[str]:
    if s.get(INT_OR_STRING) is True:
        return ["integer", "string"]
    t = s.get("type")
    return [t] if isinstance(t, str) and t else []


def _format(s: Schema) -> str:
    """The format kube-apiserver keeps for validation (unknown ones are dropped)."""
    fmt = s.get("format")
    if not isinstance(fmt, str) or not fmt:
        return ""
    types = _types(s)
    t = types[0] if len(types) == 1 else ""
    if t in ("", "string"):
        return fmt if fmt.replace("-", "") in STRING_FORMATS else ""
    if t == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if t == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


_NOT_RE2 = re.compile(r"\(\?[=!>]|\(\?<[=!]|\\[1-9]|[*+?}][+]")


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """A Go RE2 pattern as a Python regex (``None`` if Python cannot compile it)."""
    if _NOT_RE2.search(pattern):
        return None  # lookaround, backreferences, atomic groups: RE2 refuses them
    text = re.sub(r"\\z", r"\\Z", pattern)
    text = re.sub(r"\(\?<(?![=!])", "(?P<", text)
    try:
        return re.compile(text)
    except re.error:
        return None


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$|^\d+\s*(ns|us|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)$")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_UUID = {
    "uuid": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid3": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid4": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
    "uuid5": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
}


def format_ok(fmt: str, value: str) -> bool:
    """Whether ``value`` is a valid ``fmt`` string (the cheap formats; others pass)."""
    name = fmt.replace("-", "")
    try:
        if name == "datetime":
            if not _DATE_TIME.match(value):
                return False
            datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
            return True
        if name == "date":
            if not _DATE.match(value):
                return False
            datetime.strptime(value, "%Y-%m-%d")
            return True
        if name in _UUID:
            return bool(_UUID[name].match(value)) and bool(uuid.UUID(value.replace("-", "")))
        if name == "ipv4":
            return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
        if name == "ipv6":
            return isinstance(ipaddress.ip_address(value), ipaddress.IPv6Address)
        if name == "cidr":
            ipaddress.ip_network(value, strict=False)
            return "/" in value
        if name == "hostname":
            return len(value) <= 255 and bool(_HOSTNAME.match(value))
        if name == "mac":
            return bool(_MAC.match(value))
        if name == "email":
            return bool(_EMAIL.match(value))
        if name == "byte":
            base64.b64decode(value, validate=True)
            return True
        if name == "duration":
            return bool(_DURATION.match(value))
        if name == "hexcolor":
            return bool(_HEXCOLOR.match(value))
    except ValueError:
        return False
    return True


def _count(n: Any) -> int | None:
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def _num(n: Any) -> float | int | None:
    return n if isinstance(n, int | float) and not isinstance(n, bool) else None


class _Validator:
    """kube-openapi's SchemaValidator over one value (path as Kubernetes spells it)."""

    def __init__(self) -> None:
        self.errs: list[FieldError] = []

    def run(self, data: Any, s: Schema | None, path: str) -> None:
        if not isinstance(s, dict):
            return
        types = _types(s)
        fmt = _format(s)
        if data is None:
            if types and not is_nullable(s):
                self._type_error(path, ",".join(types), "null")
            self._enum(data, s, path)
            return
        kind = openapi_type(data)
        if types or fmt:
            self._type(data, kind, types, fmt, path)
        self._combinators(data, s, path)
        if kind == "string":
            self._string(data, s, path)
            if fmt and fmt not in ("int32", "int64", "float", "double") and not format_ok(fmt, data):
                self.errs.append(type_invalid(path, data, f"{path} in body must be of type {fmt}: {go_quote(data)}"))
        elif kind in ("integer", "number"):
            self._number(data, s, types, fmt, path)
        elif kind == "array":
            self._array(data, s, path)
        self._enum(data, s, path)
        if kind == "object":
            self._object(data, s, path)

    # -- per-kind checks

    def _type_error(self, path: str, want: str, got: str) -> None:
        self.errs.append(type_invalid(path, got, f"{path} in body must be of type {want}: {go_quote(got)}"))

    def _type(self, data: Any, kind: str, types: list[str], fmt: str, path: str) -> None:
        data_fmt = {"integer": "int64", "number": "float64"}.get(kind, "")
        float_int = kind == "number" and math.isfinite(data) and float(data).is_integer() and "integer" in types
        int_float = kind == "integer" and "number" in types
        if kind not in ("string", "array") and fmt and not (kind in types or data_fmt == fmt or float_int or int_float):
            self._type_error(path, fmt, data_fmt)
            return
        if not ("number" in types or "integer" in types) and fmt and kind in ("string", "array"):
            return
        if not (kind in types or float_int or int_float):
            self._type_error(path, ",".join(types), kind)

    def _combinators(self, data: Any, s: Schema, path: str) -> None:
        any_of = s.get("anyOf")
        if isinstance(any_of, list) and any_of and not int_or_string_pattern(any_of):
            failures = [self._sub(data, sub, path) for sub in any_of]
            if all(failures):
                self.errs.append(invalid_value(path, "", f"{go_quote(path)} must validate at least one schema (anyOf)"))
                self.errs.extend(min(failures, key=len))
        one_of = s.get("oneOf")
        if isinstance(one_of, list) and one_of:
            failures = [self._sub(data, sub, path) for sub in one_of]
            ok = sum(1 for f in failures if not f)
            if ok != 1:
                why = "Found none valid" if ok == 0 else f"Found {ok} valid alternatives"
                self.errs.append(invalid_value(path, "", f"{go_quote(path)} must validate one and only one schema (oneOf). {why}"))
                if ok == 0:
                    self.errs.extend(min(failures, key=len))
        all_of = s.get("allOf")
        if isinstance(all_of, list) and all_of:
            bad = 0
            for i, sub in enumerate(all_of):
                if i == 0 and isinstance(sub, dict) and int_or_string_pattern(sub.get("anyOf")):
                    sub = {k: v for k, v in sub.items() if k != "anyOf"}
                errs = self._sub(data, sub, path)
                if errs:
                    bad += 1
                    self.errs.extend(errs)
            if bad:
                extra = ". None validated" if bad == len(all_of) else ""
                self.errs.append(invalid_value(path, "", f"{go_quote(path)} must validate all the schemas (allOf){extra}"))
        not_ = s.get("not")
        if isinstance(not_, dict) and not self._sub(data, not_, path):
            self.errs.append(invalid_value(path, "", f"{go_quote(path)} must not validate the schema (not)"))

    def _sub(self, data: Any, s: Any, path: str) -> list[FieldError]:
        v = _Validator()
        v.run(data, s, path)
        return v.errs

    def _string(self, data: str, s: Schema, path: str) -> None:
        max_len, min_len = _count(s.get("maxLength")), _count(s.get("minLength"))
        if max_len is not None and len(data) > max_len:
            self.errs.append(too_long(path, max_len))
            return
        if min_len is not None and len(data) < min_len:
            self.errs.append(invalid_value(path, data, f"{path} in body should be at least {min_len} chars long"))
            return
        pattern = s.get("pattern")
        if isinstance(pattern, str) and pattern:
            rx = compile_pattern(pattern)
            if rx is not None and not rx.search(data):
                self.errs.append(invalid_value(path, data, f"{path} in body should match '{pattern}'"))

    def _number(self, data: int | float, s: Schema, types: list[str], fmt: str, path: str) -> None:
        if (fmt == "int32" and not -(2**31) <= data < 2**31) or (fmt == "int64" and not -(2**63) <= data < 2**63):
            self.errs.append(invalid_value(path, data, f"Checked value must be of type integer with format {fmt} in {path}"))
        multiple = _num(s.get("multipleOf"))
        if multiple:
            q = data / multiple
            if not math.isfinite(q) or abs(q - round(q)) > 1e-9 * max(1.0, abs(q)):
                self.errs.append(invalid_value(path, data, f"{path} in body should be a multiple of {go_number(multiple)}"))
        minimum, maximum = _num(s.get("minimum")), _num(s.get("maximum"))
        if maximum is not None:
            exclusive = s.get("exclusiveMaximum") is True
            if data > maximum or (exclusive and data == maximum):
                word = "less than" if exclusive else "less than or equal to"
                self.errs.append(invalid_value(path, data, f"{path} in body should be {word} {go_number(maximum)}"))
        if minimum is not None:
            exclusive = s.get("exclusiveMinimum") is True
            if data < minimum or (exclusive and data == minimum):
                word = "greater than" if exclusive else "greater than or equal to"
                self.errs.append(invalid_value(path, data, f"{path} in body should be {word} {go_number(minimum)}"))

    def _array(self, data: list[Any], s: Schema, path: str) -> None:
        sub = items_schema(s)
        if sub is not None:
            for i, v in enumerate(data):
                self.run(v, sub, f"{path}[{i}]")
        min_items, max_items = _count(s.get("minItems")), _count(s.get("maxItems"))
        if min_items is not None and len(data) < min_items:
            self.errs.append(invalid_value(path, len(data), f"{path} in body should have at least {min_items} items"))
        if max_items is not None and len(data) > max_items:
            self.errs.append(too_many(path, len(data), max_items))
        if s.get("uniqueItems") is True and _has_duplicates(data):
            self.errs.append(invalid_value(path, "", f"{path} in body shouldn't contain duplicates"))
        self._list_type(data, s, path)

    def _list_type(self, data: list[Any], s: Schema, path: str) -> None:
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set":
            for i, v in enumerate(data):
                if any(json_equal(v, w) for w in data[:i]):
                    self.errs.append(duplicate(f"{path}[{i}]", v))
        elif list_type == "map":
            keys = [k for k in s.get("x-kubernetes-list-map-keys") or [] if isinstance(k, str)]
            seen: list[dict[str, Any]] = []
            for i, v in enumerate(data):
                if not isinstance(v, dict):
                    continue
                ident = {k: v.get(k) for k in keys if k in v}
                if any(json_equal(ident, w) for w in seen):
                    self.errs.append(duplicate(f"{path}[{i}]", ident))
                seen.append(ident)

    def _enum(self, data: Any, s: Schema, path: str) -> None:
        enum = s.get("enum")
        if not isinstance(enum, list) or not enum:
            return
        if any(json_equal(data, e) for e in enum):
            return
        shown = [e if isinstance(e, str) else orjson.dumps(e).decode() for e in enum]
        self.errs.append(not_supported(path, data, shown))

    def _object(self, data: dict[str, Any], s: Schema, path: str) -> None:
        n = len(data)
        min_props, max_props = _count(s.get("minProperties")), _count(s.get("maxProperties"))
        if min_props is not None and n < min_props:
            self.errs.append(invalid_value(path, n, f"{path} in body should have at least {min_props} properties"))
        if max_props is not None and n > max_props:
            self.errs.append(too_many(path, n, max_props))
        props = properties(s)
        has_add, add_schema = additional(s)
        if has_add and add_schema is None and s.get("additionalProperties") is False:
            for k in data:
                if k not in props:
                    self.errs.append(invalid_value(path, k, f"{join_path(path, k)} in body is a forbidden property"))
        elif add_schema is not None:
            for k, v in data.items():
                if k not in props:
                    self.run(v, add_schema, f"{path}.{k}" if path else k)
        for k, sub in props.items():
            if k in data:
                self.run(data[k], _dict(sub), join_path(path, k))
        for k in s.get("required") or []:
            if isinstance(k, str) and k not in data:
                self.errs.append(required(join_path(path, k)))


def _has_duplicates(values: list[Any]) -> bool:
    return any(json_equal(v, w) for i, v in enumerate(values) for w in values[:i])


def validate(obj: Any, schema: Schema | None, path: str = "") -> list[FieldError]:
    """The schema errors of ``obj`` (a whole resource when ``path`` is "")."""
    v = _Validator()
    v.run(obj, schema, path)
    return v.errs


# --- ratcheting ---------------------------------------------------------------------


def _segments(path: str) -> list[str | int]:
    out: list[str | int] = []
    for piece in path.split(".") if path else []:
        name, _, rest = piece.partition("[")
        if name:
            out.append(name)
        for idx in ("[" + rest).split("[")[1:] if rest else []:
            inner = idx.rstrip("]")
            out.append(int(inner) if inner.lstrip("-").isdigit() else inner)
    return out


def _lookup(obj: Any, segs: list[str | int]) -> tuple[bool, Any]:
    cur = obj
    for seg in segs:
        if isinstance(seg, str) and isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
        else:
            return False, None
    return True, cur


def ratchet(errs: list[FieldError], new: Any, old: Any) -> list[FieldError]:
    """Drop errors about values an update did not change (CRD validation ratcheting).

    An error is kept unless the value it is about — the object holding a missing
    required field, or the whole list for an error inside a list — is equal in
    the old and the new object.
    """
    kept: list[FieldError] = []
    for e in errs:
        segs = _segments(e.field)
        if e.type == "Required" and segs:
            segs = segs[:-1]
        cut: list[str | int] = []
        for seg in segs:
            if isinstance(seg, int):
                break
            cut.append(seg)
        found_new, value_new = _lookup(new, cut)
        found_old, value_old = _lookup(old, cut)
        if cut and found_new and found_old and json_equal(value_new, value_old):
            continue
        kept.append(e)
    return kept


# --- embedded resources --------------------------------------------------------------


def validate_embedded(obj: Any, schema: Schema | None, path: str = "") -> list[FieldError]:
    """apiVersion/kind/metadata of ``x-kubernetes-embedded-resource`` values."""
    errs: list[FieldError] = []
    _embedded_walk(obj, schema, path, errs, root=True)
    return errs


def _embedded_walk(x: Any, s: Schema | None, path: str, errs: list[FieldError], root: bool = False) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        if is_embedded(s) and not root:
            errs.extend(_check_embedded(x, path))
        props = properties(s)
        has_add, add_schema = additional(s)
        for k, v in x.items():
            if k in props:
                _embedded_walk(v, _dict(props[k]), join_path(path, k), errs)
            elif has_add:
                _embedded_walk(v, add_schema, f"{path}[{k}]", errs)
    elif isinstance(x, list):
        sub = items_schema(s)
        for i, v in enumerate(x):
            _embedded_walk(v, sub, f"{path}[{i}]", errs)


def _check_embedded(x: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for f in ("apiVersion", "kind"):
        if f not in x:
            errs.append(required(child(path, f)))
        elif not isinstance(x[f], str):
            errs.append(invalid_value(child(path, f), x[f], "must be a string"))
        elif not x[f]:
            errs.append(invalid_value(child(path, f), x[f], "must not be empty"))
    meta = x.get("metadata")
    if isinstance(meta, dict):
        meta = {**meta, "name": meta.get("name") or "fakename"}
        errs += validate_object_meta(meta, bool(meta.get("namespace")), child(path, "metadata"), name_is_path_segment, kube_finalizers=False)
    elif meta is not None:
        errs.append(invalid_value(child(path, "metadata"), meta, "must be an object"))
    return errs


def _dict(v: Any) -> Schema | None:
    return v if isinstance(v, dict) else None
