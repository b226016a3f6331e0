"""Field ownership on every write: Kubernetes' field manager pipeline.

Two entry points, both pure functions over plain objects (no I/O):

:func:`track_update` runs on every create, update and (non-apply) patch,
after defaulting: the writing manager takes ownership (``operation:
Update``) of every field it added or changed, other managers lose those
fields and every removed field, managers left with nothing are dropped, and
the manager's timestamp moves only when it took something. The request's
``metadata.managedFields`` is honoured as Kubernetes honours it: ``[]`` (or
``[{}]``) resets tracking; a valid non-empty list replaces the stored one; a
missing or invalid one keeps the stored one; subresource writes always keep
the stored one. An existing object without managed fields is not tracked
until its first apply (then a ``before-first-apply`` manager owns what was
there). At most 10 ``Update`` managers are kept: the oldest merge into an
``ancient-changes`` manager per apiVersion.

:func:`apply` merges an applied configuration into the live object (server-
side apply): the manager owns exactly the fields of its configuration;
fields it applied before and no longer applies are removed from the object
unless another manager owns them; a changed field owned by another manager
is a conflict (409, :func:`cloudlet.api.managedfields.conflict_error`)
unless ``force``, which moves ownership. Applying an unchanged value owned
by someone else shares ownership. For the manager ``kubectl``, conflicts on
fields whose live value still equals the client-side
``last-applied-configuration`` annotation are forced (client-side to
server-side migration), and that annotation is kept in sync.

Both strip the object's identity fields from ownership (``apiVersion``,
``kind``, ``metadata.name``/``namespace``/``uid``/``resourceVersion``/…) and
apply the reset fields of the endpoint: the main resource of a kind with a
status subresource never owns ``status``; ``/status`` owns only ``status``.
Field sets are version-agnostic (cloudlet does not convert them between
API versions of a resource).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from cloudlet.api.fieldtypes import DEDUCED, LIST, SCALAR, UNTYPED, Atom, deduce, root_atom
from cloudlet.api.managedfields import (
    APPLY,
    UPDATE,
    FieldSet,
    Managed,
    ManagerEntry,
    Path,
    conflict_error,
    decode_managed,
    encode_managed,
    go_json,
    is_reset,
    manager_ident,
    pe_order,
)
from cloudlet.api.typedvalue import (
    Comparison,
    compare,
    ensure_named,
    field_set,
    index_items,
    merge,
    remove_items,
)
from cloudlet.resources.registry import ResourceType

Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10
_CURRENT = "\x00current-operation"

_STRIP: frozenset[Path] = frozenset(
    [("f:apiVersion",), ("f:kind",), ("f:metadata",)]
    + [
        ("f:metadata", "f:" + f)
        for f in (
            "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
            "generation", "managedFields", "resourceVersion",
        )
    ]
)


_clock: list[Any] = [0, ""]


def now_rfc3339() -> str:
    """RFC 3339 UTC, second precision (managedFields times, creationTimestamp).

    Formatted once a second: the writes of one second share one string.
    """
    sec = int(time.time())
    if sec != _clock[0]:
        _clock[1] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _clock[0] = sec
    return _clock[1]


_now = now_rfc3339


@dataclass(frozen=True, slots=True)
class Target:
    """What the field manager needs to know about the endpoint being written."""

    api_version: str
    subresource: str
    atom: Atom
    keep: Callable[[Path], bool] | None  # reset fields: paths this endpoint may own


def _keep_status(p: Path) -> bool:
    return p[0] == "f:status"


def _drop_status(p: Path) -> bool:
    return p[0] != "f:status"


def target(rt: ResourceType, subresource: str = "") -> Target:
    keep: Callable[[Path], bool] | None = None
    if subresource == "status":
        keep = _keep_status
    elif subresource == "" and rt.has_status:
        keep = _drop_status
    return Target(rt.api_version, subresource, root_atom(rt.api_version, rt.kind, rt.openapi_schema), keep)


class Conflicts(Exception):
    """Apply conflicts: ``{ident: (entry, paths)}``."""

    def __init__(self, conflicts: dict[str, tuple[ManagerEntry, FieldSet]]) -> None:
        super().__init__("apply conflicts")
        self.conflicts = conflicts

    def error(self) -> Exception:
        return conflict_error(self.conflicts)


# --- shared steps ----------------------------------------------------------------


def _without_managed(obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _decode_or_empty(entries: Any) -> Managed:
    try:
        return decode_managed(entries)
    except ValueError:
        return {}


def _filter(paths: FieldSet, keep: Callable[[Path], bool] | None) -> FieldSet:
    return paths if keep is None else {p for p in paths if keep(p)}


def _update_others(managed: Managed, cmp: Comparison, workflow: str, force: bool) -> None:
    """Other managers lose changed (forced) and removed fields (structured-merge-diff's update)."""
    changed = cmp.modified | cmp.added
    conflicts: dict[str, tuple[ManagerEntry, FieldSet]] = {}
    if changed:
        for ident, e in managed.items():
            if ident != workflow:
                hit = e.fields & changed
                if hit:
                    conflicts[ident] = (e, hit)
    if conflicts and not force:
        raise Conflicts(conflicts)
    if conflicts or cmp.removed:
        for ident, e in list(managed.items()):
            if ident == workflow:
                continue
            s = e.fields
            if ident in conflicts:
                s = s - conflicts[ident][1]
            if cmp.removed:
                s = s - cmp.removed
            managed[ident] = e.with_fields(s)
    for ident in [i for i, e in managed.items() if not e.fields]:
        del managed[ident]


def _cap(managed: Managed) -> None:
    updaters = [i for i, e in managed.items() if not e.applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda i: (managed[i].time or "", i))
    first_of: dict[str, str] = {}
    length = len(updaters)
    for ident in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        e = managed[ident]
        version = e.api_version
        if version not in first_of:
            first_of[version] = ident
            continue
        bucket = manager_ident(ANCIENT_CHANGES, UPDATE, version, "")
        if bucket not in managed:
            first = managed.pop(first_of[version])
            managed[bucket] = ManagerEntry(ANCIENT_CHANGES, UPDATE, version, first.fields, first.time)
        b = managed[bucket]
        managed[bucket] = ManagerEntry(ANCIENT_CHANGES, UPDATE, version, e.fields | b.fields, e.time)
        del managed[ident]
        length -= 1


def _take_update(t: Target, managed: Managed, cmp: Comparison, manager: str) -> None:
    """``manager`` (an Update) takes what changed; others lose it (Updater.Update + strip)."""
    cmp = cmp.filter(t.keep)
    if cmp.same():
        return
    _update_others(managed, cmp, _CURRENT, force=True)
    taken = (cmp.modified | cmp.added) - _STRIP
    if not taken:
        return
    ident = manager_ident(manager, UPDATE, t.api_version, t.subresource)
    prev = managed.get(ident)
    fields = taken | prev.fields if prev is not None else taken
    managed[ident] = ManagerEntry(manager, UPDATE, t.api_version, fields, _now(), t.subresource)


def _store(obj: Obj, managed: Managed, *, copy: bool = False) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    elif copy:  # the result of a merge may share this dict with its inputs
        meta = obj["metadata"] = dict(meta)
    if managed:
        meta["managedFields"] = encode_managed(managed)
    else:
        meta.pop("managedFields", None)


# --- Update ----------------------------------------------------------------------


def track_update(t: Target, old: Obj | None, new: Obj, manager: str) -> None:
    """Set ``new.metadata.managedFields`` for a write by ``manager`` (``old`` None: a create).

    Never fails: a value the structural type cannot follow keeps the stored
    managed fields (Kubernetes' UpdateNoErrors).
    """
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        return
    manager = manager or "unknown"
    has_req = "managedFields" in meta
    req = meta.pop("managedFields", None)
    live_entries = (old.get("metadata") or {}).get("managedFields") if old is not None else None
    if t.subresource:
        managed = _decode_or_empty(live_entries)
    elif has_req and is_reset(req):
        managed = {}
    elif req and req != live_entries:
        managed = _decode_or_empty(req)
        for e in managed.values():
            e.raw = None  # re-encode what a client wrote (canonical form, unknown elements dropped)
        if not managed:
            managed = _decode_or_empty(live_entries)
    else:
        managed = _decode_or_empty(live_entries)
    if not managed and old is not None:
        return  # not tracked until the first apply
    if not managed:
        _track_create(t, new, meta, manager)
        return
    try:
        cmp = compare(_without_managed(old), new, t.atom)
    except ValueError:
        if live_entries:
            meta["managedFields"] = live_entries
        return
    _take_update(t, managed, cmp, manager)
    _cap(managed)
    _store(new, managed)


def _track_create(t: Target, new: Obj, meta: Obj, manager: str) -> None:
    """The common create: the creator owns every field (FieldsV1 built in one walk)."""
    try:
        fields = _all_fields(new, t.atom, t.keep)
    except ValueError:
        return
    if not fields:
        return
    entry = ManagerEntry(manager, UPDATE, t.api_version, set(), _now(), t.subresource, fields)
    meta["managedFields"] = [entry.encode()]


def _all_fields(v: Any, atom: Atom, keep: Callable[[Path], bool] | None) -> dict[str, Any]:
    """FieldsV1 of ``compare(None, v)`` minus the stripped identity fields, in one pass."""
    out = _fields_of(v, atom)
    for pe in [pe for pe in out if keep is not None and not keep((pe,))]:
        del out[pe]
    for pe in ("f:apiVersion", "f:kind"):
        out.pop(pe, None)
    meta = out.get("f:metadata")
    if meta is not None:
        meta = {k: x for k, x in meta.items() if k != "." and ("f:metadata", k) not in _STRIP}
        if meta:
            out["f:metadata"] = meta
        else:
            del out["f:metadata"]
    return out


def _fields_of(v: Any, atom: Atom) -> dict[str, Any]:
    """FieldsV1 children of a value that is new as a whole (every node a member)."""
    if atom.kind == UNTYPED:
        atom = deduce(atom, v)
    if atom.kind == SCALAR or atom.atomic or not v:
        return {}
    out: dict[str, Any] = {}
    if atom.kind == LIST:
        if type(v) is not list:
            return out
        order, by_pe = index_items(v, atom, ())
        if len(order) > 1:
            order.sort(key=pe_order)
        elem = atom.elem or DEDUCED
        for pe in order:
            items = by_pe[pe]
            sub = _fields_of(items[0], elem) if len(items) == 1 else None
            out[pe] = {".": {}, **sub} if sub else {}
        return out
    if type(v) is not dict:
        return out
    fields = atom.fields
    elem = atom.elem or DEDUCED
    for key in sorted(v) if len(v) > 1 else v:
        val = v[key]
        if type(val) is dict or type(val) is list:
            sub = _fields_of(val, fields.get(key) or elem)
            out["f:" + key] = {".": {}, **sub} if sub else {}
        else:
            out["f:" + key] = {}
    return out


# --- Apply -----------------------------------------------------------------------


def _prune(merged: Obj, managed: Managed, last: FieldSet | None, atom: Atom) -> Obj:
    """Remove what the applier applied last time but not now, unless someone owns it."""
    if not last:
        return merged
    e_last = ensure_named(last, atom)
    pruned = remove_items(merged, e_last, atom)
    owned: FieldSet = set()
    for e in managed.values():
        owned |= e.fields
    merged_set = ensure_named(field_set(merged, atom), atom)
    pruned_set = ensure_named(field_set(pruned, atom), atom)
    pruned = remove_items(merged, merged_set - (pruned_set | ensure_named(owned, atom)), atom)
    pruned_set = ensure_named(field_set(pruned, atom), atom)
    return remove_items(merged, (merged_set - pruned_set) & e_last, atom)


def _apply_once(
    t: Target, live: Obj, managed: Managed, config: Obj, manager: str, force: bool
) -> tuple[Obj, Managed]:
    atom = t.atom
    managed = dict(managed)
    if not managed and live:
        _take_update(t, managed, compare(None, live, atom), BEFORE_FIRST_APPLY)
    ident = manager_ident(manager, APPLY, t.api_version, t.subresource)
    prev = managed.get(ident)
    applied = _filter(field_set(config, atom, strict=True), t.keep)
    merged = merge(live, config, atom)
    managed[ident] = ManagerEntry(manager, APPLY, t.api_version, applied, prev.time if prev else None, t.subresource)
    new = _prune(merged, managed, prev.fields if prev is not None else None, atom)
    cmp = compare(live, new, atom).filter(t.keep)
    _update_others(managed, cmp, ident, force)
    mine = managed.get(ident)
    if mine is not None:
        kept = mine.fields - _STRIP
        if kept:
            managed[ident] = ManagerEntry(manager, APPLY, t.api_version, kept, mine.time, t.subresource)
            if new != live:
                managed[ident].time = _now()
        else:
            del managed[ident]
    return new, managed


def _allowed_by_last_applied(t: Target, live: Obj) -> FieldSet:
    """Fields of the last-applied annotation whose live value still matches it."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(LAST_APPLIED)
    if not isinstance(raw, str) or not raw:
        return set()
    try:
        last = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return set()
    if not isinstance(last, dict) or last.get("apiVersion") != t.api_version:
        return set()
    fields = field_set(last, t.atom)
    cmp = compare(last, live, t.atom)
    return fields - cmp.modified - cmp.added - cmp.removed


def apply(t: Target, live: Obj | None, config: Obj, manager: str, force: bool) -> Obj:
    """The object after applying ``config`` (``live`` None: it does not exist yet).

    The result carries the new ``metadata.managedFields``. Raises
    :class:`Conflicts` (unless ``force``) and
    :class:`~cloudlet.api.typedvalue.SchemaError` for a configuration (or
    live object) the structural type cannot follow.
    """
    live_view = _without_managed(live) or {}
    stored = (live.get("metadata") or {}).get("managedFields") if live is not None else None
    managed = _decode_or_empty(stored)
    try:
        new, managed = _apply_once(t, live_view, managed, config, manager, force)
    except Conflicts as c:
        if manager != "kubectl" or force:
            raise
        allowed = _allowed_by_last_applied(t, live_view)
        rest = {i: (e, ps - allowed) for i, (e, ps) in c.conflicts.items() if ps - allowed}
        if rest:
            raise Conflicts(rest) from None
        new, managed = _apply_once(t, live_view, managed, config, manager, True)
    new = dict(new)
    if manager == "kubectl":
        _sync_last_applied(new, config)
    _store(new, managed, copy=True)
    return new


def _sync_last_applied(new: Obj, config: Obj) -> None:
    """Keep kubectl's client-side annotation in step with what it applies server-side."""
    meta = new.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or not annotations.get(LAST_APPLIED):
        return
    cfg_meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    cfg_ann = {k: v for k, v in (cfg_meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    cfg_meta = {**cfg_meta, "annotations": cfg_ann} if cfg_ann else {k: v for k, v in cfg_meta.items() if k != "annotations"}
    value = go_json({**config, "metadata": cfg_meta}, sort_keys=True) + "\n"
    new["metadata"] = {**meta, "annotations": {**annotations, LAST_APPLIED: value}}
