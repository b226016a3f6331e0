"""Informers: a list+watch cache of one resource, kept in step with the API.

:class:`Informer` lists the resource (paged), then watches from the list's
resourceVersion with bookmarks, applying every event to an in-memory cache
and calling the registered handlers. It never gives up:

* a watch that ends normally (server timeout, shutdown) is re-opened from the
  last resourceVersion seen — events and BOOKMARKs both advance it, so a quiet
  resource does not fall behind compaction;
* ``410 Expired`` (history compacted, or the watcher was dropped as too slow)
  triggers a fresh relist; the cache is reconciled against the new list and
  handlers see the difference (adds, updates, and deletes for objects that
  vanished meanwhile);
* any other failure backs off exponentially (0.5 s doubling to 30 s, with
  jitter, reset after a successful list) and relists.

Contracts:

* Keys are ``namespace/name`` (``name`` for cluster-scoped objects).
* Handlers are plain synchronous callables run on the informer's task, in
  event order: ``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``.
  They should only enqueue work (a :class:`~cloudlet.client.workqueue.WorkQueue`
  key). An exception in a handler is logged and does not stop the informer.
  A handler added after the informer synced is first called with
  ``on_add`` for every cached object.
* Cached objects are shared with every reader and handler: never mutate
  them; copy first. ``transform`` (e.g. keep only metadata) is applied to
  each object before it is cached.
* ``has_synced`` turns true once the first list has been applied; it stays
  true across relists.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from cloudlet.api.errors import APIError
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

AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]


@dataclass(slots=True)
class _Handlers:
    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None


def _rv_int(obj: Obj) -> int | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    try:
        return int(rv)
    except (TypeError, ValueError):
        return None


class Informer:
    """A list+watch cache of ``ref`` (optionally one namespace / selectors)."""

    def __init__(
        self,
        client: Client,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        transform: Callable[[Obj], Obj] | None = None,
        page_size: int = 500,
        watch_timeout: tuple[float, float] = (300.0, 600.0),
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.client = client
        self.ref = ref
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.transform = transform
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self.resource_version = ""
        self.relists = 0  # lists after the first one (tests, metrics)
        self._cache: dict[str, Obj] = {}
        self._handlers: list[_Handlers] = []
        self._synced = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    # --- cache ---------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self) -> list[Obj]:
        return list(self._cache.values())

    def keys(self) -> list[str]:
        return list(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # --- handlers ------------------------------------------------------------

    def add_handler(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        h = _Handlers(on_add, on_update, on_delete)
        self._handlers.append(h)
        if on_add is not None:
            for obj in list(self._cache.values()):
                self._call(on_add, obj)

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

    # --- lifecycle -----------------------------------------------------------

    async def run(self) -> None:
        """List and watch until :meth:`stop` (or cancellation)."""
        self._task = asyncio.current_task()
        self._stopped = False
        delay = self.backoff[0]
        try:
            while not self._stopped:
                try:
                    await self._list()
                    delay = self.backoff[0]
                    await self._watch_until_gone()
                except APIError as e:
                    if e.code == 410:
                        continue  # expired: relist at once
                    log.warning("list/watch %s failed: %s %s", self.ref, e.code, e.message)
                except Exception:
                    log.exception("list/watch %s failed", self.ref)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.backoff[1])
        except asyncio.CancelledError:
            if not self._stopped:
                raise
        finally:
            self._task = None

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    # --- list + watch --------------------------------------------------------

    async def _list(self) -> None:
        fresh: dict[str, Obj] = {}
        rv = ""
        cont = ""
        while True:
            page = await self.client.list(
                self.ref, self.namespace, self.label_selector, self.field_selector,
                limit=self.page_size, continue_=cont,
            )
            if not rv:
                # the first page's version: later pages may be newer, and the watch
                # replays from here (stale replays are skipped in _apply)
                rv = str((page.get("metadata") or {}).get("resourceVersion") or "")
            for item in page.get("items") or []:
                obj = self.transform(item) if self.transform else item
                fresh[object_key(obj)] = obj
            cont = (page.get("metadata") or {}).get("continue") or ""
            if not cont:
                break
        old = self._cache
        self._cache = fresh
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
                self.field_selector, allow_bookmarks=True, timeout_seconds=timeout,
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
        prev = self._cache.get(key)
        if prev is not None:
            new_rv, old_rv = _rv_int(obj), _rv_int(prev)
            if new_rv is not None and old_rv is not None and new_rv <= old_rv:
                if rv:
                    self.resource_version = str(rv)
                return  # replay of a change the (newer) list already showed us
        if type_ in (ADDED, MODIFIED):
            self._cache[key] = obj
            if prev is None:
                self._added(obj)
            else:
                self._updated(prev, obj)
        elif type_ == DELETED:
            if prev is not None:
                del self._cache[key]
                self._deleted(obj)
        if rv:
            self.resource_version = str(rv)
