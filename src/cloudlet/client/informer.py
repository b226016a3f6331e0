"""Informers: list+watch caches of one resource, kept in step with the API.

:class:`Informer` lists the resource (paged), then watches from the list's
resourceVersion with bookmarks, applying every event to an indexed
:class:`~cloudlet.client.cache.Cache` and calling the registered handlers.
:class:`SharedInformerFactory` hands out one informer per
``(resource, namespace, selectors, transform)`` so every controller in a
process shares one list+watch and one cache (client-go's
``SharedInformerFactory``).

An informer never gives up:

* a watch that ends normally (server timeout, shutdown) is re-opened from the
  last resourceVersion seen — events and BOOKMARKs both advance it, so a quiet
  resource does not fall behind compaction;
* ``410 Expired``/``Gone`` on the watch (history compacted, or the watcher
  was dropped as too slow) triggers an immediate relist (a 410 on the list
  itself — an expired continue token — relists after the backoff below);
  the cache is reconciled against the new list and handlers see the
  difference (adds, updates, and deletes for objects that vanished meanwhile —
  ``on_delete`` then gets the last state the cache knew);
* any other failure backs off exponentially (0.5 s doubling to 30 s, with
  jitter, reset after a successful list) and relists.

Contracts:

* Keys are ``namespace/name`` (``name`` for cluster-scoped objects).
* Handlers are plain synchronous callables run on the informer's task, in
  event order: ``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``.
  They should only enqueue work (a :class:`~cloudlet.client.workqueue.WorkQueue`
  key). An exception in a handler is logged and does not stop the informer.
  A handler added after objects were cached is first called with ``on_add``
  for every cached object (in key order), so late handlers miss nothing.
* **Resync**: every ``resync_period`` seconds (per handler; the informer's
  default when the handler names none; 0 = never) the handler's ``on_update``
  is called with ``(obj, obj)`` for every cached object — a level-triggered
  safety net for controllers whose world can drift outside the API.
* **Cached objects are read-only and shared** with every reader and handler:
  never mutate them; copy first (``copy.deepcopy`` or
  :func:`cloudlet.store.store.copy_obj`). Over the in-process
  :class:`~cloudlet.client.local.LocalClient` (``share_objects=True``, the
  default) the cache holds *the store's own dicts* — no copy, no JSON round
  trip, and close to zero memory per object beyond the store's — so a
  mutation would corrupt the API's state, not just this cache. Set
  ``CLOUDLET_CACHE_MUTATION_DETECTOR=1`` (or ``detect_mutations=True``) to
  snapshot every cached object and fail loudly — the informer task raises
  :class:`CacheMutationError` — when one changes behind the cache's back
  (client-go's ``KUBE_CACHE_MUTATION_DETECTOR``); tests run with it on.
* ``transform`` (e.g. keep only metadata) is applied to each object before it
  is cached; it must return a new dict rather than edit its argument.
* Lookups: :meth:`Informer.get` by key, :meth:`Informer.list` (by namespace
  and label selector), :meth:`Informer.by_index` over the built-in indexes
  (``namespace``, ``owner``, ``node``, ``label``) and any added with
  :meth:`Informer.add_indexer` — see :mod:`cloudlet.client.cache`.
* ``has_synced`` turns true once the first list has been applied; it stays
  true across relists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cloudlet.api.errors import APIError
from cloudlet.client.cache import (
    LABEL_INDEX,
    NAMESPACE_INDEX,
    NODE_INDEX,
    OWNER_INDEX,
    Cache,
    IndexFunc,
    label_value,
)
from cloudlet.client.interface import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    Client,
    Obj,
    ResourceRef,
    object_key,
)

log = logging.getLogger("cloudlet.informer")

__all__ = [
    "LABEL_INDEX",
    "NAMESPACE_INDEX",
    "NODE_INDEX",
    "OWNER_INDEX",
    "CacheMutationError",
    "Informer",
    "Registration",
    "SharedInformerFactory",
    "label_value",
]

AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]
Transform = Callable[[Obj], Obj]

MUTATION_DETECTOR_ENV = "CLOUDLET_CACHE_MUTATION_DETECTOR"


class CacheMutationError(RuntimeError):
    """A cached (shared, read-only) object was mutated in place."""


@dataclass(eq=False, slots=True)
class Registration:
    """A handler registered with :meth:`Informer.add_handler` (pass it to
    :meth:`Informer.remove_handler` to unregister)."""

    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None
    resync_period: float = 0.0
    next_resync: float = 0.0


def _rv_int(obj: Obj) -> int | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    try:
        return int(rv)
    except (TypeError, ValueError):
        return None


def _detector_default() -> bool:
    return os.environ.get(MUTATION_DETECTOR_ENV, "").lower() in ("1", "true", "yes", "on")


class _MutationDetector:
    """Keeps a serialised snapshot of every cached object; compares on the way out."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self._snap: dict[str, tuple[Obj, bytes]] = {}

    def track(self, key: str, obj: Obj) -> None:
        self._snap[key] = (obj, orjson.dumps(obj))

    def release(self, key: str) -> None:
        entry = self._snap.pop(key, None)
        if entry is not None and orjson.dumps(entry[0]) != entry[1]:
            self._fail([key])

    def reset(self, items: dict[str, Obj]) -> None:
        self.check()
        self._snap = {k: (o, orjson.dumps(o)) for k, o in items.items()}

    def check(self) -> None:
        bad = [k for k, (o, raw) in self._snap.items() if orjson.dumps(o) != raw]
        if bad:
            self._fail(bad)

    def _fail(self, keys: list[str]) -> None:
        msg = f"cached {self.resource} objects were mutated in place: {', '.join(sorted(keys)[:10])}"
        log.error(msg)
        raise CacheMutationError(msg)


class Informer:
    """A list+watch cache of ``ref`` (optionally one namespace / selectors).

    ``namespace`` ``None`` or ``""`` watches all namespaces (and is what a
    cluster-scoped resource needs).
    """

    def __init__(
        self,
        client: Client,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        transform: Transform | None = None,
        resync_period: float = 0.0,
        indexers: dict[str, IndexFunc] | None = None,
        share_objects: bool = True,
        detect_mutations: bool | None = None,
        page_size: int = 500,
        watch_timeout: tuple[float, float] = (300.0, 600.0),
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.client = client
        self.ref = ref
        self.namespace = namespace or None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.transform = transform
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        # the in-process client can hand out the store's own (read-only) dicts
        self.shares_objects = share_objects and bool(getattr(client, "shared_reads", False))
        self._read_kw: dict[str, Any] = {"copy": False} if self.shares_objects else {}
        detect = _detector_default() if detect_mutations is None else detect_mutations
        self._detector = _MutationDetector(str(ref)) if detect else None
        self.resource_version = ""
        self.relists = 0  # lists after the first one (tests, metrics)
        self.resyncs = 0  # resync passes delivered (tests, metrics)
        self.cache = Cache(indexers)
        self._handlers: tuple[Registration, ...] = ()
        self._synced = asyncio.Event()
        self._resync_changed = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        where = f" namespace={self.namespace}" if self.namespace else ""
        sel = f" labels={self.label_selector!r}" if self.label_selector else ""
        sel += f" fields={self.field_selector!r}" if self.field_selector else ""
        return f"<Informer {self.ref}{where}{sel} objects={len(self.cache)}>"

    # --- cache -----------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        """The cached object for ``namespace/name`` (or ``name``); read-only."""
        return self.cache.get(key)

    def get_by_name(self, name: str, namespace: str = "") -> Obj | None:
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None, label_selector: str = "") -> list[Obj]:
        """Cached objects (in ``namespace``; matching ``label_selector``), by key."""
        return self.cache.list(namespace, label_selector)

    def keys(self) -> list[str]:
        return self.cache.keys()

    def __len__(self) -> int:
        return len(self.cache)

    def add_indexer(self, name: str, fn: IndexFunc | None = None) -> None:
        """Add an index (see :meth:`cloudlet.client.cache.Cache.add_indexer`)."""
        self.cache.add_indexer(name, fn)

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Cached objects whose index ``name`` includes ``value``, by key."""
        return self.cache.by_index(name, value)

    def index_keys(self, name: str, value: str) -> list[str]:
        return self.cache.index_keys(name, value)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def check_mutations(self) -> None:
        """Raise :class:`CacheMutationError` if a cached object was mutated
        (only with the mutation detector on; a no-op otherwise)."""
        if self._detector is not None:
            self._detector.check()

    # --- handlers --------------------------------------------------------------

    def add_handler(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
        *,
        resync_period: float | None = None,
    ) -> Registration:
        """Register handlers; ``on_add`` is called at once for every cached object."""
        period = self.resync_period if resync_period is None else resync_period
        reg = Registration(on_add, on_update, on_delete, max(0.0, period))
        if reg.resync_period > 0:
            reg.next_resync = time.monotonic() + reg.resync_period
        self._handlers = (*self._handlers, reg)
        self._resync_changed.set()
        if on_add is not None:
            for key in sorted(self.cache):
                obj = self.cache.get(key)
                if obj is not None:
                    self._call(on_add, obj)
        return reg

    def remove_handler(self, reg: Registration) -> None:
        self._handlers = tuple(h for h in self._handlers if h is not reg)
        self._resync_changed.set()

    @property
    def handler_count(self) -> int:
        return len(self._handlers)

    def _call(self, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("informer handler failed", extra={"resource": str(self.ref)})

    def _added(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _updated(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _deleted(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    # --- lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    async def run(self) -> None:
        """List and watch until :meth:`stop` (or cancellation)."""
        if self._task is not None:
            raise RuntimeError(f"informer for {self.ref} is already running")
        if self._stopped:
            return  # stopped before it ran: stop() is final
        self._task = asyncio.current_task()
        resync = asyncio.create_task(self._resync_loop(), name=f"informer-resync-{self.ref}")
        delay = self.backoff[0]
        try:
            while not self._stopped:
                listed = False
                try:
                    await self._list()
                    listed = True
                    delay = self.backoff[0]
                    await self._watch_until_gone()
                except CacheMutationError:
                    raise
                except APIError as e:
                    if e.code == 410 and listed:
                        log.info("relisting %s: %s", self.ref, e.message)
                        continue  # the watch expired: relist at once
                    log.warning("list/watch %s failed: %s %s", self.ref, e.code, e.message)
                except Exception:
                    log.exception("list/watch %s failed", self.ref)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.backoff[1])
        except asyncio.CancelledError:
            if not self._stopped:
                raise
        finally:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync
            self._task = None

    def stop(self) -> None:
        """Stop for good (also when called before :meth:`run` started)."""
        self._stopped = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    # --- resync ----------------------------------------------------------------

    async def _resync_loop(self) -> None:
        while True:
            due = [h.next_resync for h in self._handlers if h.resync_period > 0]
            self._resync_changed.clear()
            wait = (min(due) - time.monotonic()) if due else None
            if wait is None or wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._resync_changed.wait()
                continue
            self._resync(time.monotonic())

    def _resync(self, now: float) -> None:
        """Deliver ``on_update(obj, obj)`` for every cached object to each due handler."""
        due = [h for h in self._handlers if h.resync_period > 0 and h.next_resync <= now]
        if not due:
            return
        objs = [self.cache.get(k) for k in sorted(self.cache)] if self.has_synced else []
        for h in due:
            h.next_resync = now + h.resync_period
            if h.on_update is None:
                continue
            for obj in objs:
                if obj is not None:
                    self._call(h.on_update, obj, obj)
        self.resyncs += 1

    # --- list + watch ----------------------------------------------------------

    async def _list(self) -> None:
        fresh: dict[str, Obj] = {}
        rv = ""
        cont = ""
        transform = self.transform
        while True:
            page = await self.client.list(
                self.ref, self.namespace, self.label_selector, self.field_selector,
                limit=self.page_size, continue_=cont, **self._read_kw,
            )
            if not rv:
                # the first page's version: later pages may be newer, and the watch
                # replays from here (stale replays are skipped in _apply)
                rv = str((page.get("metadata") or {}).get("resourceVersion") or "")
            for item in page.get("items") or ():
                obj = transform(item) if transform else item
                fresh[object_key(obj)] = obj
            cont = (page.get("metadata") or {}).get("continue") or ""
            if not cont:
                break
        if self._detector is not None:
            self._detector.reset(fresh)
        old = self.cache.replace(fresh)
        if self._synced.is_set():
            self.relists += 1
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._added(obj)
            elif (prev.get("metadata") or {}).get("resourceVersion") != (obj.get("metadata") or {}).get("resourceVersion"):
                self._updated(prev, obj)
        for key, prev in old.items():
            if key not in fresh:
                self._deleted(prev)
        self.resource_version = rv
        self._synced.set()

    async def _watch_until_gone(self) -> None:
        """Watch (re-opening after normal ends) until an error, e.g. 410, is raised."""
        while not self._stopped:
            timeout = random.uniform(*self.watch_timeout)
            stream = self.client.watch(
                self.ref, self.namespace, self.resource_version, self.label_selector,
                self.field_selector, allow_bookmarks=True, timeout_seconds=timeout, **self._read_kw,
            )
            try:
                async for type_, obj in stream:
                    self._apply(type_, obj)
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()  # release the server-side watch now, not at GC

    def _apply(self, type_: str, raw: Obj) -> None:
        rv = (raw.get("metadata") or {}).get("resourceVersion")
        if type_ == BOOKMARK:
            if rv:
                self.resource_version = str(rv)
            return
        obj = self.transform(raw) if self.transform else raw
        key = object_key(obj)
        cache = self.cache
        prev = cache.get(key)
        if prev is not None:
            new_rv, old_rv = _rv_int(obj), _rv_int(prev)
            if new_rv is not None and old_rv is not None and new_rv <= old_rv:
                if rv:
                    self.resource_version = str(rv)
                return  # replay of a change the (newer) list already showed us
        detector = self._detector
        if type_ in (ADDED, MODIFIED):
            if detector is not None:
                detector.release(key)
                detector.track(key, obj)
            cache.put(key, obj)
            if prev is None:
                self._added(obj)
            else:
                self._updated(prev, obj)
        elif type_ == DELETED:
            if prev is not None:
                if detector is not None:
                    detector.release(key)
                cache.remove(key)
                self._deleted(obj)
        if rv:
            self.resource_version = str(rv)


@dataclass(slots=True)
class _Entry:
    informer: Informer
    task: asyncio.Task[None] | None = None
    failures: list[BaseException] = field(default_factory=list)


class SharedInformerFactory:
    """One :class:`Informer` per ``(resource, namespace, selectors, transform)``
    for every controller built on ``client``.

    * :meth:`informer` returns the shared instance (creating it on first
      request). ``namespace=None`` means the factory's ``namespace`` (default:
      all namespaces); pass ``""`` for all namespaces or a cluster-scoped
      resource from a namespaced factory. Informers with different
      ``transform`` functions are different informers.
    * :meth:`start` starts every informer not yet running, as tasks on the
      running loop; informers requested after :meth:`start` start at once.
    * :meth:`wait_for_cache_sync` waits until every informer has listed
      (wrap it in ``asyncio.timeout`` to bound the wait).
    * :meth:`shutdown` stops them all and waits for their tasks; the factory
      cannot be used afterwards. ``async with factory:`` does start/shutdown.

    ``resync_period`` and the keyword ``informer_options`` (``page_size``,
    ``watch_timeout``, ``backoff``, ``share_objects``, ``detect_mutations``)
    apply to every informer the factory creates.
    """

    def __init__(
        self,
        client: Client,
        *,
        namespace: str | None = None,
        resync_period: float = 0.0,
        **informer_options: Any,
    ) -> None:
        self.client = client
        self.namespace = namespace or None
        self.resync_period = resync_period
        self.informer_options = informer_options
        self._entries: dict[tuple[Hashable, ...], _Entry] = {}
        self._started = False
        self._shut_down = False

    def informer(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        transform: Transform | None = None,
    ) -> Informer:
        if self._shut_down:
            raise RuntimeError("the informer factory is shut down")
        ns = (self.namespace if namespace is None else namespace) or None
        key = (ref, ns, label_selector, field_selector, transform)
        entry = self._entries.get(key)
        if entry is None:
            inf = Informer(
                self.client, ref, ns, label_selector, field_selector,
                transform=transform, resync_period=self.resync_period, **self.informer_options,
            )
            entry = self._entries[key] = _Entry(inf)
            if self._started:
                self._start(entry)
        return entry.informer

    @property
    def informers(self) -> list[Informer]:
        return [e.informer for e in self._entries.values()]

    def start(self) -> None:
        """Start every informer that is not running (needs a running loop)."""
        if self._shut_down:
            raise RuntimeError("the informer factory is shut down")
        self._started = True
        for entry in self._entries.values():
            if entry.task is None:
                self._start(entry)

    def _start(self, entry: _Entry) -> None:
        task = asyncio.get_running_loop().create_task(entry.informer.run(), name=f"informer-{entry.informer.ref}")
        entry.task = task

        def done(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                entry.failures.append(exc)
                log.error("informer %s stopped: %r", entry.informer.ref, exc)

        task.add_done_callback(done)

    @property
    def has_synced(self) -> bool:
        return all(e.informer.has_synced for e in self._entries.values())

    async def wait_for_cache_sync(self) -> None:
        """Wait until every informer has synced (bound it with ``asyncio.timeout``)."""
        for entry in list(self._entries.values()):
            await entry.informer.wait_synced()

    def check_mutations(self) -> None:
        """Raise the first :class:`CacheMutationError` any informer hit or finds now."""
        for entry in self._entries.values():
            for exc in entry.failures:
                if isinstance(exc, CacheMutationError):
                    raise exc
            entry.informer.check_mutations()

    async def shutdown(self) -> None:
        """Stop every informer and wait for it."""
        self._shut_down = True
        tasks = []
        for entry in self._entries.values():
            entry.informer.stop()
            if entry.task is not None:
                tasks.append(entry.task)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> SharedInformerFactory:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
