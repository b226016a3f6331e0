"""Field sets and the ``metadata.managedFields`` wire format.

A *field set* is a Python ``set`` of paths; a path is a tuple of path
elements, each a string in Kubernetes' FieldsV1 key syntax:

* ``f:<name>`` a field of a struct or a key of a map;
* ``k:{"name":"c"}`` an item of a map-list, by its key fields (JSON, keys sorted);
* ``v:"x"`` an item of a set (JSON value);
* ``i:0`` an index (atomic lists never need one; accepted when decoding).

The set semantics are those of structured-merge-diff: a path is a *member*
or not, independently of its prefixes (owning ``.spec.replicas`` says
nothing about ``.spec``).

FieldsV1 (:func:`encode_fields` / :func:`decode_fields`) is the trie of the
set as a JSON object: every member is a key whose value is ``{}``; a member
that also has members below it carries ``".": {}`` among its children. Keys
are ordered as Kubernetes orders them (fields, then keys, values, indexes).

:class:`ManagerEntry` is one ``managedFields`` item. Entries are identified
as Kubernetes identifies them (:meth:`ManagerEntry.ident`): manager,
operation, subresource and, for ``Update`` only, apiVersion. Decoding rejects
what Kubernetes rejects (unknown operation, empty apiVersion, a fieldsType
other than ``FieldsV1``, a malformed set) with ``ValueError``; encoding sorts
as Kubernetes sorts (Apply before Update, then time, manager, apiVersion,
subresource).

Also here: manager names from ``fieldManager`` or the User-Agent
(:func:`manager_name`), their validation, the conflict error of an apply
(:func:`conflict_error`, Kubernetes' message and causes), and
:class:`SharedManagedFields`, which lets stored objects share equal
``managedFields`` values (most objects of a kind carry the same field sets).
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from cloudlet.api import errors
from cloudlet.api.errors import APIError

Path = tuple[str, ...]
FieldSet = set[Path]

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
FIELD_MANAGER_MAX_LENGTH = 128


# --- path elements -------------------------------------------------------------


def go_json(value: Any, *, sort_keys: bool = False) -> str:
    """JSON as Go's encoding/json writes it (HTML-safe escapes, compact)."""
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
    if "<" in raw or ">" in raw or "&" in raw or "\u2028" in raw or "\u2029" in raw:
        raw = (
            raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        )
    return raw


def field_pe(name: str) -> str:
    return "f:" + name


def key_pe(keys: dict[str, Any]) -> str:
    return "k:" + go_json(keys, sort_keys=True)


def value_pe(value: Any) -> str:
    return "v:" + go_json(value)


def _canonical_pe(pe: str) -> str:
    """Normalise a decoded path element (JSON spacing and key order); ValueError if malformed."""
    if len(pe) < 2 or pe[1] != ":":
        raise ValueError(f"missing colon: {pe}")
    t = pe[0]
    if t == "f":
        return pe
    if t == "k":
        try:
            keys = orjson.loads(pe[2:])
        except orjson.JSONDecodeError as e:
            raise ValueError(f"parsing key as path element: {e}") from e
        if not isinstance(keys, dict):
            raise ValueError(f"parsing key as path element: {pe} is not a key")
        return key_pe(keys)
    if t == "v":
        try:
            return value_pe(orjson.loads(pe[2:]))
        except orjson.JSONDecodeError as e:
            raise ValueError(f"parsing key as path element: {e}") from e
    if t == "i":
        try:
            return "i:" + str(int(pe[2:]))
        except ValueError as e:
            raise ValueError(f"parsing key as path element: {e}") from e
    raise LookupError(pe)  # unknown element type: dropped, as Kubernetes does


def _value_order(v: Any) -> tuple[Any, ...]:
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, int | float):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, tuple(_value_order(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple((k, _value_order(x)) for k, x in sorted(v.items())))
    return (5,)


def pe_order(pe: str) -> tuple[Any, ...]:
    """Sort key matching structured-merge-diff's PathElement order."""
    t = pe[0]
    if t == "f":
        return (0, pe[2:])
    if t == "k":
        keys = orjson.loads(pe[2:])
        return (1, tuple((k, _value_order(v)) for k, v in sorted(keys.items())))
    if t == "v":
        return (2, _value_order(orjson.loads(pe[2:])))
    return (3, int(pe[2:]))


def _go_string(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return orjson.dumps(v).decode()  # Go's %q for printable strings
    if isinstance(v, list):
        return "[" + ",".join(_go_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "".join(f"{k}={_go_string(x)}" for k, x in v.items())
    return str(v)


def pe_string(pe: str) -> str:
    """A path element as Kubernetes prints it: ``.name``, ``[name="c"]``, ``[="x"]``, ``[0]``."""
    t, body = pe[0], pe[2:]
    if t == "f":
        return "." + body
    if t == "k":
        keys = orjson.loads(body)
        return "[" + ",".join(f"{k}={_go_string(keys[k])}" for k in sorted(keys)) + "]"
    if t == "v":
        return "[=" + _go_string(orjson.loads(body)) + "]"
    return "[" + body + "]"


def path_string(path: Path) -> str:
    """A path as Kubernetes prints it in conflicts: ``.spec.containers[name="c"].image``."""
    return "".join(pe_string(pe) for pe in path)


# --- FieldsV1 ------------------------------------------------------------------


def to_trie(paths: Iterable[Path]) -> dict[str, Any]:
    """The set as nested dicts; ``"."`` marks a member."""
    root: dict[str, Any] = {}
    for p in paths:
        node = root
        for pe in p:
            nxt = node.get(pe)
            if nxt is None:
                nxt = node[pe] = {}
            node = nxt
        node["."] = True
    return root


def _emit(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = [k for k in node if k != "."]
    if len(keys) > 1:
        keys.sort(key=pe_order)
    for k in keys:
        child = node[k]
        if len(child) == 1 and "." in child:
            out[k] = {}
        else:
            sub = _emit(child)
            out[k] = {".": {}, **sub} if "." in child else sub
    return out


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 JSON object of a field set."""
    return _emit(to_trie(paths))


def decode_fields(raw: Any) -> FieldSet:
    """The field set of a FieldsV1 object; ValueError when malformed."""
    if not isinstance(raw, dict):
        raise ValueError("fieldsV1 must be a JSON object")
    out: FieldSet = set()
    _decode(raw, (), out)
    return out


def _decode(node: dict[str, Any], prefix: Path, out: FieldSet) -> None:
    for k, child in node.items():
        if k == ".":
            continue
        try:
            pe = _canonical_pe(k)
        except LookupError:
            continue
        if not isinstance(child, dict):
            raise ValueError(f"fieldsV1: the value of {k!r} must be an object")
        path = (*prefix, pe)
        if not child or "." in child:
            out.add(path)
        if child:
            _decode(child, path, out)


# --- managedFields entries ---------------------------------------------------------


@dataclass(slots=True)
class ManagerEntry:
    """One ``metadata.managedFields`` item, with its fields decoded."""

    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""
    raw: dict[str, Any] | None = field(default=None, repr=False)  # the FieldsV1 it was decoded from

    @property
    def applied(self) -> bool:
        return self.operation == APPLY

    def ident(self) -> str:
        """Kubernetes' manager identifier (apiVersion only for Update)."""
        return manager_ident(self.manager, self.operation, self.api_version, self.subresource)

    def with_fields(self, fields: FieldSet) -> ManagerEntry:
        if fields == self.fields:
            return self
        return ManagerEntry(self.manager, self.operation, self.api_version, fields, self.time, self.subresource)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = FIELDS_V1
        out["fieldsV1"] = self.raw if self.raw is not None else encode_fields(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def manager_ident(manager: str, operation: str, api_version: str, subresource: str) -> str:
    ident: dict[str, str] = {"manager": manager, "operation": operation}
    if operation != APPLY and api_version:
        ident["apiVersion"] = api_version
    if subresource:
        ident["subresource"] = subresource
    return go_json(ident)


Managed = dict[str, ManagerEntry]  # by ManagerEntry.ident()


def is_reset(entries: Any) -> bool:
    """``[]`` or ``[{}]``: the client asks to drop all managed fields."""
    if isinstance(entries, list):
        return not entries or (len(entries) == 1 and entries[0] == {})
    return False


def decode_managed(entries: Any) -> Managed:
    """Decode ``metadata.managedFields``; ValueError on anything Kubernetes refuses."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    out: Managed = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ValueError(f"managedFields[{i}] must be an object")
        op = e.get("operation")
        if op not in (APPLY, UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = e.get("apiVersion")
        if not isinstance(api_version, str) or not api_version:
            raise ValueError("apiVersion must not be empty")
        ft = e.get("fieldsType")
        if ft != FIELDS_V1:
            raise ValueError(
                f"missing fieldsType in managed fields entry {i}" if not ft
                else f"invalid fieldsType {ft!r} in managed fields entry {i}"
            )
        manager = e.get("manager") or ""
        sub = e.get("subresource") or ""
        t = e.get("time")
        if not isinstance(manager, str) or not isinstance(sub, str) or (t is not None and not isinstance(t, str)):
            raise ValueError(f"managedFields[{i}] has a field of the wrong type")
        raw = e.get("fieldsV1")
        fields = decode_fields(raw if raw is not None else {})
        entry = ManagerEntry(manager, op, api_version, fields, t or None, sub, raw if isinstance(raw, dict) else None)
        out[entry.ident()] = entry
    return out


def _time_seconds(t: str | None) -> str:
    return t or ""  # RFC 3339 UTC with second precision sorts as text


def encode_managed(managed: Managed) -> list[dict[str, Any]]:
    """``metadata.managedFields`` for the entries, sorted as Kubernetes sorts them."""
    entries = sorted(
        managed.values(),
        key=lambda e: (e.operation, _time_seconds(e.time), e.manager, e.api_version, e.subresource),
    )
    return [e.encode() for e in entries]


# --- manager names ---------------------------------------------------------------


def _printable(ch: str) -> bool:
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


@lru_cache(maxsize=256)
def manager_from_user_agent(user_agent: str) -> str:
    """Kubernetes' default manager: the User-Agent up to the first ``/``, printable
    characters only, at most 128 bytes (``kubectl/v1.32.5 (linux)`` -> ``kubectl``)."""
    prefix = user_agent.split("/", 1)[0]
    out: list[str] = []
    size = 0
    for ch in prefix:
        if not _printable(ch):
            continue
        n = len(ch.encode())
        if size + n > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += n
    return "".join(out)


def manager_name(field_manager: str | None, user_agent: str | None) -> str:
    return field_manager or manager_from_user_agent(user_agent or "")


def validate_field_manager(name: str) -> list[errors.FieldError]:
    errs: list[errors.FieldError] = []
    if len(name) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(errors.FieldError("TooLong", "fieldManager", None, f"may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"))
    for i, ch in enumerate(name):
        if not _printable(ch):
            errs.append(errors.invalid_value("fieldManager", name, f"invalid character U+{ord(ch):04X} (at position {i})"))
    return errs


# --- conflicts -------------------------------------------------------------------


def print_manager(entry: ManagerEntry) -> str:
    s = orjson.dumps(entry.manager).decode()
    if entry.subresource:
        s += f' with subresource "{entry.subresource}"'
    if entry.operation == UPDATE:
        s += f" using {entry.api_version}"
    return s


def conflict_error(conflicts: dict[str, tuple[ManagerEntry, FieldSet]]) -> APIError:
    """409 for apply conflicts: ``{ident: (entry, conflicting paths)}``."""
    flat: list[tuple[str, ManagerEntry, Path]] = []
    for ident in sorted(conflicts):
        entry, paths = conflicts[ident]
        for p in sorted(paths, key=lambda p: tuple(pe_order(pe) for pe in p)):
            flat.append((ident, entry, p))
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {print_manager(e)}", "field": path_string(p)}
        for _i, e, p in flat
    ]
    if len(flat) == 1:
        _i, e, p = flat[0]
        message = f"Apply failed with 1 conflict: conflict with {print_manager(e)}: {path_string(p)}"
    else:
        lines: list[str] = []
        for ident in sorted(conflicts):
            entry, _paths = conflicts[ident]
            lines.append(f"conflicts with {print_manager(entry)}:")
            lines.extend(f"- {path_string(p)}" for i, _e, p in flat if i == ident)
        message = f"Apply failed with {len(flat)} conflicts: " + "\n".join(lines)
    return APIError(409, "Conflict", message, {"causes": causes})


# --- sharing between stored objects ---------------------------------------------------


class SharedManagedFields:
    """Makes stored objects share equal ``metadata.managedFields`` values.

    Objects of one kind written the same way carry the same field sets (every
    ConfigMap created by one client has the same ``fieldsV1`` tree), and those
    written in the same second by the same manager carry equal entries. Kept
    per object, the trees were most of the memory ``managedFields`` adds (about
    1.6 kB of 2.8 kB per small ConfigMap). Calling the instance on a stored
    object replaces its ``managedFields`` list, each entry and each entry's
    ``fieldsV1`` tree by an equal value seen before (three levels, so entries
    differing only in ``time`` still share their tree).

    Contract: values are shared only when they are equal as Python values *and*
    serialise to the same JSON bytes (orjson, same key order), so no reader can
    tell the difference. Sharing relies on the store's rule that stored objects
    are never mutated (callers copy first, :func:`cloudlet.store.store.copy_obj`);
    :func:`cloudlet.api.fieldmanager.track_update` already reuses a stored tree
    for the next revision of the same object. The tables are keyed by the hash
    of the JSON bytes (a value that is never shared costs a table slot, not a
    second copy of its JSON); a hash collision just leaves a value unshared.
    They forget values no object refers to any more: when they have doubled
    since the last sweep, values whose only reference is the table are dropped
    (CPython reference counts; an over-count only keeps a value longer). Not
    thread-safe: call it from the event loop, as the store does.
    """

    MIN_SWEEP = 1024

    def __init__(self) -> None:
        self._lists: dict[int, list[Any]] = {}
        self._entries: dict[int, dict[str, Any]] = {}
        self._trees: dict[int, dict[str, Any]] = {}
        self._sweep_at = self.MIN_SWEEP

    def __call__(self, obj: dict[str, Any]) -> None:
        """Share ``obj``'s managedFields, in place (``obj['metadata']`` must be the caller's own dict)."""
        meta = obj.get("metadata")
        if type(meta) is not dict:
            return
        entries = meta.get("managedFields")
        if type(entries) is not list or not entries:
            return
        shared = self.share(entries)
        if shared is not entries:
            meta["managedFields"] = shared

    def share(self, entries: list[Any]) -> list[Any]:
        """The shared list equal to ``entries`` (a list equal to it the first time)."""
        raw = _json(entries)
        if raw is None:
            return entries
        h = hash(raw)
        hit = self._lists.get(h)
        if hit is not None and _same(hit, entries, raw):
            return hit
        out: list[Any] = []
        for e in entries:
            if type(e) is dict:
                tree = e.get("fieldsV1")
                if type(tree) is dict and tree:
                    shared_tree = _intern(self._trees, tree)
                    if shared_tree is not tree:
                        e = {**e, "fieldsV1": shared_tree}  # same key order: the key exists
                e = _intern(self._entries, e)
            out.append(e)
        if hit is None:
            self._lists[h] = out
            if self.size() >= self._sweep_at:
                self.sweep()
        return out

    def sweep(self) -> None:
        """Drop shared values nothing else refers to (outer levels first: they hold the inner)."""
        for table in (self._lists, self._entries, self._trees):
            for k in list(table):
                if sys.getrefcount(table[k]) <= 2:  # the table's reference and the argument's
                    del table[k]
        self._sweep_at = max(self.MIN_SWEEP, 2 * self.size())

    def size(self) -> int:
        """Values held (lists + entries + trees)."""
        return len(self._lists) + len(self._entries) + len(self._trees)


def _json(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _same(hit: Any, value: Any, raw: bytes) -> bool:
    """``hit`` may stand for ``value``: the same object, or equal with the same JSON bytes."""
    return hit is value or (hit == value and orjson.dumps(hit) == raw)


def _intern(table: dict[int, Any], value: Any) -> Any:
    raw = _json(value)
    if raw is None:
        return value
    h = hash(raw)
    hit = table.get(h)
    if hit is None:
        table[h] = value
        return value
    return hit if _same(hit, value, raw) else value
