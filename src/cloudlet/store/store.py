"""The revisioned object store: cache, group commit, watch fan-out, compaction.

Keys are ``"<group>/<plural>/<namespace>/<name>"`` (empty group for the core
API, empty namespace for cluster-scoped objects); a *resource prefix* is
``"<group>/<plural>"``. Values are plain Kubernetes-shaped dicts whose
``metadata.resourceVersion`` the store sets to the write's revision.

Contracts:

* Revisions are global and strictly increasing; each write gets the next one.
* Reads (:meth:`Store.get`, :meth:`Store.list`) and watches see only
  committed writes, served from memory; nothing re-reads the backend.
* A write coroutine returns only after its row is durable. Writes that arrive
  while a commit is in flight are batched into the next commit (group commit),
  and are applied to the cache and delivered to watchers in revision order.
* Compare-and-swap happens in memory, synchronously on the event loop, against
  the newest (possibly not yet committed) state: ``expect`` is the revision the
  caller read, and a mismatch raises :class:`ConflictError`. This is safe
  because one process owns the backend (the SQLite backend holds a lock).
* Objects handed out are shared: callers must copy before mutating
  (:func:`copy_obj`). Equal parts of different objects may be one value
  (:meth:`Store.share_values`), so a mutation would reach other objects too.
* A watch from revision ``r`` yields every committed event with revision
  ``> r`` for its prefix. ``r`` below the compacted revision raises
  :class:`GoneError`. Slow watchers whose queue overflows are closed.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cloudlet import metrics
from cloudlet.store.backend import ADDED, DELETED, MODIFIED, Backend, Row

log = logging.getLogger("cloudlet.store")

Obj = dict[str, Any]


class StoreError(Exception):
    pass


class NotFoundError(StoreError):
    pass


class ExistsError(StoreError):
    pass


class ConflictError(StoreError):
    pass


class GoneError(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"too old resource version: {requested} ({compacted + 1})"
        )
        self.requested = requested
        self.compacted = compacted


def copy_obj(obj: Obj) -> Obj:
    """A deep copy of a JSON-shaped dict (orjson round trip: fast and exact)."""
    return orjson.loads(orjson.dumps(obj))


def resource_of(key: str) -> str:
    return key.rsplit("/", 2)[0]


def make_key(group: str, plural: str, namespace: str, name: str) -> str:
    return f"{group}/{plural}/{namespace}/{name}"


def obj_rev(obj: Obj | None) -> int:
    if obj is None:
        return 0
    return int(obj["metadata"]["resourceVersion"])


@dataclass(slots=True)
class Event:
    type: str
    key: str
    obj: Obj
    prev: Obj | None
    revision: int


@dataclass(slots=True)
class _Pending:
    event: Event
    future: asyncio.Future[Obj]


class Watcher:
    """An open watch: iterate it for :class:`Event` values; :meth:`close` ends it."""

    MAX_QUEUE = 100_000

    def __init__(self, store: Store, resource: str, namespace: str | None) -> None:
        self._store = store
        self.resource = resource
        self.namespace = namespace
        self._prefix = f"{resource}/{namespace}/" if namespace is not None else None
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False
        self.overflowed = False

    def wants(self, key: str) -> bool:
        return self._prefix is None or key.startswith(self._prefix)

    def _offer(self, ev: Event) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.MAX_QUEUE:
            self.overflowed = True
            self.close()
            return
        self.queue.put_nowait(ev)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
            self._store._unregister(self)

    async def next(self) -> Event | None:
        """Next event; ``None`` once closed."""
        ev = await self.queue.get()
        if ev is None:
            self.queue.put_nowait(None)  # stay closed for later callers
        return ev

    def next_nowait(self) -> Event | None:
        """The next queued event without waiting (``None`` once closed), as :meth:`next`.

        Raises :class:`asyncio.QueueEmpty` when nothing is queued.
        """
        ev = self.queue.get_nowait()
        if ev is None:
            self.queue.put_nowait(None)  # stay closed for later callers
        return ev

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            ev = await self.next()
            if ev is None:
                return
            yield ev


@dataclass
class _Resource:
    objs: dict[str, Obj] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # sorted
    watchers: set[Watcher] = field(default_factory=set)


class Store:
    def __init__(self, backend: Backend, *, min_history: int = 1000) -> None:
        self.backend = backend
        self.min_history = min_history
        self._res: dict[str, _Resource] = {}
        self._overlay: dict[str, Obj | None] = {}  # uncommitted latest state (None = deleted)
        self._overlay_rev: dict[str, int] = {}
        self._rev = 0  # last assigned revision
        self._committed = 0  # last committed revision
        self.compacted = 0
        self._history: list[Event] = []
        self._queue: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self.commits = 0  # number of durable commits (for metrics/benchmarks)
        self.share: Callable[[Obj], None] | None = None  # see share_values

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        rows, compacted = await asyncio.to_thread(self.backend.load)
        self._replay(rows, compacted)
        self._wake = asyncio.Event()
        self._committer = asyncio.create_task(self._commit_loop(), name="store-commit")

    def _replay(self, rows: list[Row], compacted: int) -> None:
        self.compacted = compacted
        rev = compacted
        for row in rows:
            obj = orjson.loads(row.value)
            res = self._resource(resource_of(row.key))
            prev = res.objs.get(row.key)
            if row.type == DELETED:
                self._remove(res, row.key)
            else:
                self._insert(res, row.key, obj)
            if row.revision > compacted:
                self._history.append(Event(row.type, row.key, obj, prev, row.revision))
            rev = max(rev, row.revision)
        self._rev = self._committed = rev

    async def stop(self) -> None:
        if self._committer is not None:
            pending = [p.future for p in self._queue]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
            self._committer = None
        for res in self._res.values():
            for w in list(res.watchers):
                w.close()
        await asyncio.to_thread(self.backend.close)

    # --- reads ---------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The newest committed revision."""
        return self._committed

    def _resource(self, name: str) -> _Resource:
        res = self._res.get(name)
        if res is None:
            res = self._res[name] = _Resource()
        return res

    def get(self, key: str) -> Obj | None:
        res = self._res.get(resource_of(key))
        return res.objs.get(key) if res else None

    def latest(self, key: str) -> Obj | None:
        """Newest state including writes not yet committed (for CAS decisions)."""
        if key in self._overlay:
            return self._overlay[key]
        return self.get(key)

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        after: str = "",
        limit: int = 0,
        at: int | None = None,
    ) -> tuple[list[Obj], str | None, int]:
        """Objects of ``resource`` (optionally one namespace), sorted by key.

        Returns ``(objects, last_key_if_more_remain, revision)``. ``after``
        continues after that key; ``limit`` 0 means all. ``at`` lists the state
        as of that (retained) revision, so the pages of one paged list form a
        consistent snapshot; the caller checks it is not compacted.
        """
        if at is not None and at < self._committed:
            return self._list_at(resource, namespace, after, limit, at)
        res = self._res.get(resource)
        if res is None:
            return [], None, self._committed
        keys = res.keys
        prefix = f"{resource}/{namespace}/" if namespace is not None else f"{resource}/"
        lo = bisect.bisect_left(keys, prefix)
        if after:
            lo = max(lo, bisect.bisect_right(keys, after))
        out: list[Obj] = []
        i = lo
        n = len(keys)
        while i < n:
            k = keys[i]
            if not k.startswith(prefix):
                break
            out.append(res.objs[k])
            i += 1
            if limit and len(out) >= limit:
                if i < n and keys[i].startswith(prefix):
                    return out, k, self._committed
                break
        return out, None, self._committed

    def _list_at(
        self, resource: str, namespace: str | None, after: str, limit: int, at: int
    ) -> tuple[list[Obj], str | None, int]:
        # state at `at` = current state, undone by the events after `at` (oldest first wins)
        before: dict[str, Obj | None] = {}
        revs = _RevView(self._history)
        for ev in self._history[bisect.bisect_right(revs, at) :]:
            if ev.key not in before and resource_of(ev.key) == resource:
                before[ev.key] = ev.prev if ev.type != ADDED else None
        res = self._res.get(resource)
        current = res.objs if res else {}
        prefix = f"{resource}/{namespace}/" if namespace is not None else f"{resource}/"
        keys = sorted(k for k in set(current) | set(before) if k.startswith(prefix) and k > after)
        out: list[Obj] = []
        for i, k in enumerate(keys):
            obj = before[k] if k in before else current.get(k)
            if obj is None:
                continue
            out.append(obj)
            if limit and len(out) >= limit:
                more = any((before[j] if j in before else current.get(j)) is not None for j in keys[i + 1 :])
                return out, (k if more else None), at
        return out, None, at

    def share_values(self, share: Callable[[Obj], None]) -> None:
        """Pass every object entering the cache through ``share``: from now on, and the cached ones now.

        ``share`` may replace nested values of an object by *equal* shared ones,
        in place (the top-level and ``metadata`` dicts of a stored object are the
        store's own), so that parts many objects have in common take memory once
        (:class:`cloudlet.api.managedfields.SharedManagedFields`). Readers see
        equal values either way.
        """
        self.share = share
        seen: set[int] = set()
        objs = [o for res in self._res.values() for o in res.objs.values()]
        objs += [o for ev in self._history for o in (ev.obj, ev.prev) if o is not None]
        objs += [o for o in self._overlay.values() if o is not None]
        for o in objs:
            if id(o) not in seen:
                seen.add(id(o))
                share(o)

    def object_counts(self) -> dict[str, int]:
        """Current object count per resource prefix (``group/plural``)."""
        return {name: len(res.keys) for name, res in self._res.items()}

    def objects(self, resource: str) -> list[Obj]:
        """Every current object of one resource prefix (shared, do not modify)."""
        res = self._res.get(resource)
        return list(res.objs.values()) if res is not None else []

    def count(self, resource: str, namespace: str | None = None) -> int:
        res = self._res.get(resource)
        if res is None:
            return 0
        if namespace is None:
            return len(res.keys)
        prefix = f"{resource}/{namespace}/"
        lo = bisect.bisect_left(res.keys, prefix)
        hi = bisect.bisect_left(res.keys, prefix[:-1] + "0")  # '0' sorts right after '/'
        return hi - lo

    def count_after(self, resource: str, namespace: str | None, after: str) -> int:
        """How many keys of the resource (namespace) sort after ``after``."""
        res = self._res.get(resource)
        if res is None:
            return 0
        prefix = f"{resource}/{namespace}/" if namespace is not None else f"{resource}/"
        hi = bisect.bisect_left(res.keys, prefix[:-1] + "0")
        lo = bisect.bisect_right(res.keys, after)
        return max(0, hi - lo)

    # --- writes --------------------------------------------------------------

    async def create(self, key: str, obj: Obj) -> Obj:
        if self.latest(key) is not None:
            raise ExistsError(key)
        return await self._write(ADDED, key, obj, None)

    async def update(self, key: str, obj: Obj, expect: int | None = None) -> Obj:
        cur = self.latest(key)
        if cur is None:
            raise NotFoundError(key)
        if expect is not None and obj_rev(cur) != expect:
            raise ConflictError(key)
        return await self._write(MODIFIED, key, obj, cur)

    async def delete(self, key: str, expect: int | None = None) -> Obj:
        cur = self.latest(key)
        if cur is None:
            raise NotFoundError(key)
        if expect is not None and obj_rev(cur) != expect:
            raise ConflictError(key)
        return await self._write(DELETED, key, cur, cur)

    def _write(self, type_: str, key: str, obj: Obj, prev: Obj | None) -> asyncio.Future[Obj]:
        """Assign the next revision, queue for commit; the future resolves when durable."""
        if self._failed is not None:
            raise StoreError(f"store is failed: {self._failed}")
        assert self._wake is not None, "store not started"
        self._rev += 1
        rev = self._rev
        meta = dict(obj.get("metadata") or {})
        meta["resourceVersion"] = str(rev)
        stored = {**obj, "metadata": meta}
        if self.share is not None:
            self.share(stored)
        self._overlay[key] = None if type_ == DELETED else stored
        self._overlay_rev[key] = rev
        fut: asyncio.Future[Obj] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(Event(type_, key, stored, prev, rev), fut))
        self._wake.set()
        return fut

    async def _commit_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                rows = [
                    Row(p.event.revision, p.event.key, p.event.type, orjson.dumps(p.event.obj))
                    for p in batch
                ]
                t0 = time.perf_counter()
                try:
                    await asyncio.to_thread(self.backend.append, rows)
                except Exception as e:  # disk full, I/O error: fail loudly, stop accepting
                    log.exception("store commit failed")
                    self._failed = e
                    for p in batch + self._queue:
                        if not p.future.done():
                            p.future.set_exception(StoreError(f"commit failed: {e}"))
                    self._queue = []
                    return
                self.commits += 1
                metrics.STORE_COMMIT.observe(time.perf_counter() - t0)
                metrics.STORE_BATCH.observe(len(rows))
                for p in batch:
                    self._apply(p.event)
                    if not p.future.done():
                        p.future.set_result(p.event.obj)

    def _apply(self, ev: Event) -> None:
        res = self._resource(resource_of(ev.key))
        if ev.type == DELETED:
            self._remove(res, ev.key)
        else:
            self._insert(res, ev.key, ev.obj)
        if self._overlay_rev.get(ev.key) == ev.revision:
            del self._overlay[ev.key]
            del self._overlay_rev[ev.key]
        self._committed = ev.revision
        self._history.append(ev)
        for w in list(res.watchers):
            if w.wants(ev.key):
                w._offer(ev)

    @staticmethod
    def _insert(res: _Resource, key: str, obj: Obj) -> None:
        if key not in res.objs:
            bisect.insort(res.keys, key)
        res.objs[key] = obj

    @staticmethod
    def _remove(res: _Resource, key: str) -> None:
        if res.objs.pop(key, None) is not None:
            i = bisect.bisect_left(res.keys, key)
            if i < len(res.keys) and res.keys[i] == key:
                del res.keys[i]

    # --- watch ---------------------------------------------------------------

    def watch(self, resource: str, namespace: str | None, from_rev: int) -> Watcher:
        """Open a watch delivering events with revision > ``from_rev``."""
        if from_rev < self.compacted:
            raise GoneError(from_rev, self.compacted)
        w = Watcher(self, resource, namespace)
        # replay retained history after from_rev (synchronously: no event can slip in)
        revs = _RevView(self._history)
        i = bisect.bisect_right(revs, from_rev)
        for ev in self._history[i:]:
            if resource_of(ev.key) == resource and w.wants(ev.key):
                w.queue.put_nowait(ev)
        self._resource(resource).watchers.add(w)
        return w

    def _unregister(self, w: Watcher) -> None:
        res = self._res.get(w.resource)
        if res is not None:
            res.watchers.discard(w)

    def watcher_count(self) -> int:
        return sum(len(r.watchers) for r in self._res.values())

    # --- compaction ----------------------------------------------------------

    async def compact(self, keep: int | None = None) -> int:
        """Drop history older than ``committed - keep`` revisions; returns the compacted revision."""
        keep = self.min_history if keep is None else keep
        target = self._committed - keep
        if target <= self.compacted:
            return self.compacted
        revs = _RevView(self._history)
        cut = bisect.bisect_right(revs, target)
        drop: list[int] = []
        for ev in self._history[:cut]:
            cur = self.get(ev.key)
            if ev.type == DELETED or cur is None or obj_rev(cur) != ev.revision:
                drop.append(ev.revision)
        await asyncio.to_thread(self.backend.compact, target, drop)
        # history may have grown meanwhile; it only grows at the end, so `cut` is still right
        del self._history[:cut]
        self.compacted = target
        log.info("compacted", extra={"revision": target, "dropped": len(drop)})
        return target


class _RevView:
    """A read-only sequence of the revisions of a history list, for bisect."""

    __slots__ = ("_h",)

    def __init__(self, h: list[Event]) -> None:
        self._h = h

    def __len__(self) -> int:
        return len(self._h)

    def __getitem__(self, i: int) -> int:
        return self._h[i].revision
