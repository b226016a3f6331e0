"""Structured-merge-diff operations on plain JSON objects, driven by :mod:`fieldtypes` atoms.

Four walks, each the Python counterpart of a structured-merge-diff operation
(Kubernetes' server-side apply engine), over dicts/lists/scalars:

* :func:`field_set` — the fields a value sets (``ToFieldSet``): leaves,
  atomic lists and maps, list items, and map keys that are not declared
  struct fields (a struct field only counts through its leaves, unless it
  is empty or null);
* :func:`compare` — what changed from ``lhs`` to ``rhs``
  (:class:`Comparison` of added, modified and removed paths; an atomic value
  or a scalar is one leaf, a granular container is also added/removed as a
  whole when it appears or disappears);
* :func:`merge` — ``rhs`` merged into ``lhs`` (``rhs`` wins on leaves;
  granular maps merge by key, map-lists by key and sets by value, in
  structured-merge-diff's item order; a ``null`` from ``rhs`` deletes);
* :func:`remove_items` — the value without the paths of a set (a member path
  removes its whole subtree; containers emptied by the removal disappear).

:func:`ensure_named` adds the struct fields on the way to each path
(``EnsureNamedFieldsAreMembers``). Inputs are never mutated; results may
share unchanged subtrees with the inputs. Items that cannot be identified
(a map-list item without any key field, a set item that is not a scalar, a
duplicate in an applied list) raise :class:`SchemaError`, whose message
names the path as Kubernetes does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudlet.api.fieldtypes import DEDUCED, LIST, MAP, SCALAR, UNTYPED, Atom, deduce
from cloudlet.api.managedfields import (
    FieldSet,
    Path,
    key_pe,
    path_string,
    pe_string,
    to_trie,
    value_pe,
)


class SchemaError(ValueError):
    """A value that does not fit its structural type."""


_ABSENT: Any = object()


def _resolve(atom: Atom, value: Any) -> Atom:
    return deduce(atom, value) if atom.kind == UNTYPED else atom


def item_pe(item: Any, atom: Atom, path: Path, index: int) -> str:
    """The path element of one item of the granular list ``atom``."""
    keys = atom.keys
    if keys:
        if not isinstance(item, dict):
            what = "a null element" if item is None else "non-map elements"
            raise SchemaError(f"{path_string(path)}: element {index}: associative list with keys may not have {what}")
        kv: dict[str, Any] = {}
        for k in keys:
            if k in item:
                kv[k] = item[k]
            elif k in atom.key_defaults:
                kv[k] = atom.key_defaults[k]
        if not kv:
            names = "[" + " ".join(f'"{k}"' for k in keys) + "]"
            raise SchemaError(
                f"{path_string(path)}: element {index}: associative list with keys has an element that omits "
                f"all key fields {names} (and doesn't have default values for any key fields)"
            )
        return key_pe(kv)
    if isinstance(item, dict):
        raise SchemaError(f"{path_string(path)}: element {index}: associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise SchemaError(f"{path_string(path)}: element {index}: not supported: associative list with lists as elements")
    if item is None:
        raise SchemaError(f"{path_string(path)}: element {index}: associative list without keys has an element that's an explicit null")
    return value_pe(item)


def index_items(items: list[Any], atom: Atom, path: Path) -> tuple[list[str], dict[str, list[Any]]]:
    """Path elements in order (first occurrence) and the items under each."""
    order: list[str] = []
    by_pe: dict[str, list[Any]] = {}
    for i, item in enumerate(items):
        pe = item_pe(item, atom, path, i)
        got = by_pe.get(pe)
        if got is None:
            by_pe[pe] = [item]
            order.append(pe)
        else:
            got.append(item)
    return order, by_pe


# --- ToFieldSet ------------------------------------------------------------------


def field_set(value: Any, atom: Atom, *, strict: bool = False) -> FieldSet:
    """The fields ``value`` sets; ``strict`` refuses duplicate list items (applied configurations)."""
    out: FieldSet = set()
    _fs(value, atom, (), out, strict)
    out.discard(())
    return out


def _fs(v: Any, atom: Atom, path: Path, out: FieldSet, strict: bool) -> None:
    if atom.kind == UNTYPED:
        atom = deduce(atom, v)
    kind = atom.kind
    if kind == SCALAR or atom.atomic:
        out.add(path)
        return
    if kind == LIST:
        if not isinstance(v, list):
            return
        order, by_pe = index_items(v, atom, path)
        elem = atom.elem or DEDUCED
        for pe in order:
            p = (*path, pe)
            items = by_pe[pe]
            if len(items) == 1:
                _fs(items[0], elem, p, out, strict)
            elif strict:
                raise SchemaError(f"{path_string(path)}: duplicate entries for key {pe_string(pe)}")
            out.add(p)
        return
    if not isinstance(v, dict):
        return
    fields = atom.fields
    elem = atom.elem or DEDUCED
    for key, val in v.items():
        p = (*path, "f:" + key)
        f = fields.get(key)
        _fs(val, f or elem, p, out, strict)
        if f is None or val is None or (type(val) is dict and not val):
            out.add(p)


# --- Compare ---------------------------------------------------------------------


@dataclass(slots=True)
class Comparison:
    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)

    def same(self) -> bool:
        return not (self.added or self.modified or self.removed)

    def filter(self, keep: Any) -> Comparison:
        if keep is None:
            return self
        return Comparison(
            {p for p in self.added if keep(p)},
            {p for p in self.modified if keep(p)},
            {p for p in self.removed if keep(p)},
        )


def compare(lhs: Any, rhs: Any, atom: Atom) -> Comparison:
    """What changed from ``lhs`` to ``rhs`` (pass ``None`` for an object that does not exist)."""
    c = Comparison()
    _cmp(_ABSENT if lhs is None else lhs, _ABSENT if rhs is None else rhs, atom, (), c)
    for s in (c.added, c.modified, c.removed):
        s.discard(())
    return c


def _leaf(lhs: Any, rhs: Any, path: Path, c: Comparison) -> None:
    if lhs is _ABSENT:
        c.added.add(path)
    elif rhs is _ABSENT:
        c.removed.add(path)
    elif lhs != rhs:
        c.modified.add(path)


def _cmp(lhs: Any, rhs: Any, atom: Atom, path: Path, c: Comparison) -> None:
    if lhs is not _ABSENT and rhs is not _ABSENT and type(lhs) is type(rhs) and lhs == rhs:
        return  # equal subtrees (checked in C) have nothing to report
    if atom.kind == UNTYPED:
        a_l = deduce(atom, None if lhs is _ABSENT else lhs)
        a_r = deduce(atom, None if rhs is _ABSENT else rhs)
        if lhs is not _ABSENT and rhs is not _ABSENT and a_l is not a_r:
            _leaf(lhs, rhs, path, c)  # the value changed shape: one modified leaf
            return
        atom = a_l if rhs is _ABSENT else a_r
    kind = atom.kind
    if kind == SCALAR or atom.atomic:
        _leaf(lhs, rhs, path, c)
        return
    if kind == LIST:
        ll = lhs if type(lhs) is list else None
        rl = rhs if type(rhs) is list else None
        if not ll and not rl:
            _leaf(lhs, rhs, path, c)
            return
        _cmp_list(ll or [], rl or [], atom, path, c)
    else:
        lm = lhs if type(lhs) is dict else None
        rm = rhs if type(rhs) is dict else None
        if not lm and not rm:
            _leaf(lhs, rhs, path, c)
            return
        fields = atom.fields
        elem = atom.elem or DEDUCED
        lm = lm or {}
        rm = rm or {}
        for k, lv in lm.items():
            _cmp(lv, rm.get(k, _ABSENT), fields.get(k) or elem, (*path, "f:" + k), c)
        for k, rv in rm.items():
            if k not in lm:
                _cmp(_ABSENT, rv, fields.get(k) or elem, (*path, "f:" + k), c)
    if lhs is _ABSENT:
        c.added.add(path)
    elif rhs is _ABSENT:
        c.removed.add(path)


def _cmp_list(lhs: list[Any], rhs: list[Any], atom: Atom, path: Path, c: Comparison) -> None:
    l_order, l_by = index_items(lhs, atom, path)
    r_order, r_by = index_items(rhs, atom, path)
    elem = atom.elem or DEDUCED
    for pe in l_order + [pe for pe in r_order if pe not in l_by]:
        ls = l_by.get(pe, ())
        rs = r_by.get(pe, ())
        p = (*path, pe)
        if len(ls) <= 1 and len(rs) <= 1:
            _cmp(ls[0] if ls else _ABSENT, rs[0] if rs else _ABSENT, elem, p, c)
        elif len(ls) >= 2 and len(rs) >= 2:
            if ls != rs:
                c.modified.add(p)
        elif len(ls) >= 2:
            if rs:
                _cmp(_ABSENT, rs[0], elem, p, c)
            c.removed.add(p)
        else:
            if ls:
                _cmp(ls[0], _ABSENT, elem, p, c)
            c.added.add(p)


# --- Merge -----------------------------------------------------------------------


def merge(lhs: Any, rhs: Any, atom: Atom) -> Any:
    """``rhs`` (an applied configuration) merged into ``lhs`` (the live object)."""
    return _merge(lhs, rhs, atom, ())


def _merge(lhs: Any, rhs: Any, atom: Atom, path: Path) -> Any:
    if rhs is _ABSENT:
        return lhs
    if lhs is _ABSENT:
        return rhs
    if atom.kind == UNTYPED:
        a_l = deduce(atom, lhs)
        atom = deduce(atom, rhs)
        if a_l is not atom:
            return rhs
    if atom.kind == SCALAR or atom.atomic:
        return rhs
    if atom.kind == LIST:
        if type(lhs) is not list or type(rhs) is not list or (not lhs and not rhs):
            return rhs
        return _merge_list(lhs, rhs, atom, path)
    if type(lhs) is not dict or type(rhs) is not dict or (not lhs and not rhs):
        return rhs
    fields = atom.fields
    elem = atom.elem or DEDUCED
    out: dict[str, Any] = {}
    for k, lv in lhs.items():
        if k in rhs:
            rv = rhs[k]
            if rv is None:
                continue  # an explicit null in the configuration deletes
            out[k] = _merge(lv, rv, fields.get(k) or elem, (*path, "f:" + k))
        else:
            out[k] = lv
    for k, rv in rhs.items():
        if k not in lhs and rv is not None:
            out[k] = rv
    return out


def _merge_list(lhs: list[Any], rhs: list[Any], atom: Atom, path: Path) -> list[Any]:
    """structured-merge-diff's list merge: live order, applied items merged in place."""
    r_pes = [item_pe(item, atom, path, i) for i, item in enumerate(rhs)]
    r_by: dict[str, Any] = {}
    for i, pe in enumerate(r_pes):
        if pe in r_by:
            raise SchemaError(f"{path_string(path)}: duplicate entries for key {pe_string(pe)}")
        r_by[pe] = rhs[i]
    l_pes = [item_pe(item, atom, path, i) for i, item in enumerate(lhs)]
    l_by: dict[str, Any] = {}
    for i, pe in enumerate(l_pes):
        l_by.setdefault(pe, lhs[i])
    elem = atom.elem or DEDUCED
    shared = [pe for pe in r_pes if pe in l_by]
    si = 0
    next_shared = shared[0] if shared else None
    done: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    n_l, n_r = len(l_pes), len(r_pes)

    def advance() -> None:
        nonlocal si, next_shared
        si += 1
        next_shared = shared[si] if si < len(shared) else None

    while li < n_l or ri < n_r:
        if li < n_l and ri < n_r:
            pe = l_pes[li]
            if pe == r_pes[ri]:
                done.add(pe)
                out.append(_merge(l_by[pe], r_by[pe], elem, (*path, pe)))
                li += 1
                ri += 1
                advance()
                continue
            if pe in r_by and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < n_l:
            pe = l_pes[li]
            if pe not in r_by:
                out.append(lhs[li])
                li += 1
                continue
            if pe in done:
                li += 1
        if ri < n_r:
            pe = r_pes[ri]
            done.add(pe)
            out.append(_merge(l_by.get(pe, _ABSENT), r_by[pe], elem, (*path, pe)))
            ri += 1
            if next_shared is not None and next_shared == pe:
                advance()
    return out


# --- RemoveItems -----------------------------------------------------------------


def remove_items(value: Any, paths: FieldSet, atom: Atom) -> Any:
    """``value`` without the members of ``paths`` (and everything below them)."""
    if not paths:
        return value
    out = _remove(value, to_trie(paths), atom, ())
    return {} if out is _ABSENT else out


def _remove(v: Any, trie: dict[str, Any], atom: Atom, path: Path) -> Any:
    atom = _resolve(atom, v)
    if atom.kind == SCALAR or atom.atomic:
        return v
    if atom.kind == LIST:
        if type(v) is not list or not v:
            return v
        elem = atom.elem or DEDUCED
        items: list[Any] = []
        for i, item in enumerate(v):
            try:
                pe = item_pe(item, atom, path, i)
            except SchemaError:
                items.append(item)
                continue
            sub = trie.get(pe)
            if sub is None:
                items.append(item)
            elif "." not in sub:
                got = _remove(item, sub, elem, (*path, pe))
                items.append({} if got is _ABSENT else got)
        return items if items else _ABSENT
    if type(v) is not dict or not v:
        return v
    fields = atom.fields
    elem = atom.elem or DEDUCED
    out: dict[str, Any] = {}
    for k, val in v.items():
        sub = trie.get("f:" + k)
        if sub is None:
            out[k] = val
        elif "." not in sub:
            got = _remove(val, sub, fields.get(k) or elem, (*path, "f:" + k))
            if got is not _ABSENT:
                out[k] = got
    return out if out else _ABSENT


# --- EnsureNamedFieldsAreMembers ------------------------------------------------------


def ensure_named(paths: FieldSet, atom: Atom) -> FieldSet:
    """``paths`` plus every declared struct field that is a proper prefix of one of them."""
    out = set(paths)
    seen: dict[Path, Atom] = {(): atom}
    for p in paths:
        if len(p) < 2:
            continue
        cur = atom
        for i in range(len(p) - 1):
            prefix = p[: i + 1]
            nxt = seen.get(prefix)
            if nxt is None:
                pe = p[i]
                if pe[0] == "f":
                    if cur.kind == MAP or cur.kind == UNTYPED:
                        nxt, declared = cur.child(pe[2:]) if cur.kind == MAP else (DEDUCED, False)
                        if declared:
                            out.add(prefix)
                    else:
                        nxt = DEDUCED
                else:
                    nxt = (cur.elem or DEDUCED) if cur.kind == LIST else DEDUCED
                seen[prefix] = nxt
            cur = nxt
    return out
