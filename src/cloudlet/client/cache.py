"""The informer's local cache: objects by key, plus secondary indexes.

:class:`Cache` is client-go's ``cache.Indexer`` for one event loop: a dict of
``key -> object`` (keys as :func:`~cloudlet.client.interface.object_key`)
with any number of named indexes. An index is a function ``obj -> values``
(an iterable of strings); :meth:`Cache.by_index` answers "every object whose
index function returned ``value``" from a ``value -> keys`` map kept up to
date on every write, so lookups never scan the cache.

Built-in index functions (:data:`BUILTIN_INDEXERS`):

* :data:`NAMESPACE_INDEX` ``"namespace"`` — ``metadata.namespace`` (``""``
  for cluster-scoped objects). Always present.
* :data:`OWNER_INDEX` ``"owner"`` — the uid of the *controller*
  ownerReference (``controller: true``), as controller-runtime's
  ``EnqueueRequestForOwner`` and ``IsControlledBy`` use it.
* :data:`NODE_INDEX` ``"node"`` — ``spec.nodeName`` (pods bound to a node).
* :data:`LABEL_INDEX` ``"label"`` — one ``key=value`` per label
  (:func:`label_value` builds the lookup value).

Contracts:

* The built-in indexes other than ``namespace`` are created on first use
  (:meth:`Cache.by_index` with their name, or :meth:`Cache.add_indexer` with
  no function), from the current contents, then maintained incrementally;
  user-defined indexes must be added with :meth:`Cache.add_indexer` first.
  Adding an index to a full cache costs one pass over it.
* Index functions must be pure and must not mutate the object. One that
  raises is logged and the object is left out of that index.
* Index maintenance recomputes the index function on the *old* object when it
  is replaced or removed (as client-go does); that is only correct if cached
  objects are never mutated — the informer's contract.
* Lists (:meth:`Cache.list`, :meth:`Cache.by_index`) are ordered by key, so a
  reconciler sees the same order through any client.
* The cache does not copy: it holds and returns the objects it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cloudlet.api.selectors import SelectorError, parse_label_selector
from cloudlet.client.interface import Obj

log = logging.getLogger("cloudlet.informer")

IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"
OWNER_INDEX = "owner"
NODE_INDEX = "node"
LABEL_INDEX = "label"
SERVICE_INDEX = "service"


def index_by_namespace(obj: Obj) -> tuple[str, ...]:
    """``metadata.namespace`` (``""`` when cluster-scoped)."""
    return (str((obj.get("metadata") or {}).get("namespace") or ""),)


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def index_by_owner(obj: Obj) -> tuple[str, ...]:
    """The controller ownerReference's uid."""
    ref = controller_ref(obj)
    uid = ref.get("uid") if ref is not None else None
    return (uid,) if isinstance(uid, str) and uid else ()


def index_by_node(obj: Obj) -> tuple[str, ...]:
    """``spec.nodeName``, when set."""
    node = (obj.get("spec") or {}).get("nodeName")
    return (node,) if isinstance(node, str) and node else ()


def label_value(key: str, value: str) -> str:
    """The :data:`LABEL_INDEX` value for one label."""
    return f"{key}={value}"


def index_by_label(obj: Obj) -> tuple[str, ...]:
    """``key=value`` for every label."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return tuple(label_value(k, str(v)) for k, v in labels.items()) if isinstance(labels, dict) else ()


def index_by_service(obj: Obj) -> tuple[str, ...]:
    """``namespace/name`` of the Service an EndpointSlice belongs to
    (its ``kubernetes.io/service-name`` label)."""
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
    return (f"{meta.get('namespace') or ''}/{name}",) if isinstance(name, str) and name else ()


BUILTIN_INDEXERS: dict[str, IndexFunc] = {
    NAMESPACE_INDEX: index_by_namespace,
    OWNER_INDEX: index_by_owner,
    NODE_INDEX: index_by_node,
    LABEL_INDEX: index_by_label,
    SERVICE_INDEX: index_by_service,
}


class Cache:
    """Objects by key with named indexes (see the module docstring)."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexer(NAMESPACE_INDEX)
        for name, fn in (indexers or {}).items():
            self.add_indexer(name, fn)

    # --- reads -----------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def keys(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, Obj]]:
        return list(self._items.items())

    def list(self, namespace: str | None = None, label_selector: str = "") -> list[Obj]:
        """Every object (in ``namespace`` if given), optionally filtered by a
        kubectl-syntax label selector; ordered by key. A bad selector raises
        :class:`~cloudlet.api.errors.APIError` 400."""
        if namespace is not None:
            keys = sorted(self._indices[NAMESPACE_INDEX].get(namespace, ()))
        else:
            keys = sorted(self._items)
        objs = [self._items[k] for k in keys]
        if not label_selector:
            return objs
        try:
            sel = parse_label_selector(label_selector)
        except SelectorError as e:
            raise e.api_error() from e
        return [o for o in objs if sel.matches((o.get("metadata") or {}).get("labels") or {})]

    # --- indexes ---------------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc | None = None) -> None:
        """Add index ``name`` computed by ``fn`` (a built-in's when omitted) and
        build it from the current contents. Re-adding the same function is a
        no-op; another function under a taken name is a ``ValueError``."""
        if fn is None:
            fn = BUILTIN_INDEXERS.get(name)
            if fn is None:
                raise ValueError(f"no built-in index {name!r} (built-ins: {', '.join(BUILTIN_INDEXERS)})")
        cur = self._indexers.get(name)
        if cur is not None:
            if cur is fn:
                return
            raise ValueError(f"index {name!r} already exists with another function")
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        self._indices[name] = index
        for key, obj in self._items.items():
            for v in self._values(name, fn, obj):
                index.setdefault(v, set()).add(key)

    def has_index(self, name: str) -> bool:
        return name in self._indexers

    def indexers(self) -> list[str]:
        return list(self._indexers)

    def _index(self, name: str) -> dict[str, set[str]]:
        index = self._indices.get(name)
        if index is None:
            if name not in BUILTIN_INDEXERS:
                raise KeyError(f"no index {name!r}: add it with add_indexer first")
            self.add_indexer(name)
            index = self._indices[name]
        return index

    def index_keys(self, name: str, value: str) -> list[str]:
        """Keys of the objects whose index ``name`` includes ``value``, sorted."""
        return sorted(self._index(name).get(value, ()))

    def by_index(self, name: str, value: str) -> list[Obj]:
        """The objects whose index ``name`` includes ``value``, ordered by key."""
        return [self._items[k] for k in self.index_keys(name, value)]

    def index_values(self, name: str) -> list[str]:
        """Every value index ``name`` currently holds, sorted."""
        return sorted(self._index(name))

    def _values(self, name: str, fn: IndexFunc, obj: Obj) -> Iterable[str]:
        try:
            return fn(obj)
        except Exception:
            log.exception("index function failed", extra={"index": name})
            return ()

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for v in self._values(name, fn, obj):
                keys = index.get(v)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[v]

    def _reindex(self, key: str, old: Obj | None, new: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            new_vals = tuple(self._values(name, fn, new))
            if old is not None:
                old_vals = tuple(self._values(name, fn, old))
                if old_vals == new_vals:
                    continue
                for v in old_vals:
                    if v in new_vals:
                        continue
                    keys = index.get(v)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[v]
            for v in new_vals:
                index.setdefault(v, set()).add(key)

    # --- writes ----------------------------------------------------------------

    def put(self, key: str, obj: Obj) -> Obj | None:
        """Insert or replace; returns the previous object."""
        old = self._items.get(key)
        self._items[key] = obj
        self._reindex(key, old, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        """Remove; returns the removed object (None when absent)."""
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def replace(self, items: dict[str, Obj]) -> dict[str, Obj]:
        """Swap in new contents (a relist), rebuilding every index; returns the old contents."""
        old = self._items
        self._items = items
        for name, fn in self._indexers.items():
            index: dict[str, set[str]] = {}
            self._indices[name] = index
            for key, obj in items.items():
                for v in self._values(name, fn, obj):
                    index.setdefault(v, set()).add(key)
        return old

    def stats(self) -> dict[str, Any]:
        """Sizes, for metrics and debugging."""
        return {"objects": len(self._items), "indexes": {n: len(ix) for n, ix in self._indices.items()}}
