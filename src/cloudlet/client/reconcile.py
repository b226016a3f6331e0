"""The reconcile loop runner: N workers draining a :class:`WorkQueue`.

A controller is a function ``async reconcile(key) -> Result | None``
(controller-runtime's ``Reconcile(request) -> Result``). It re-reads current
state for ``key``, writes only when desired and actual differ, treats "not
found" as done, and never sleeps. What the runner does with each outcome:

==============================  ==============================================
outcome                         runner action
==============================  ==============================================
returns ``None``/``Result()``   success: ``forget`` the key's backoff
``Result(requeue_after=s)``     success, and reconcile again after ``s`` seconds
``Result(requeue=True)``        re-add with backoff (no error logged)
raises :class:`Retry`           transient: re-add with per-key exponential
                                backoff (or after ``Retry.after`` seconds);
                                logged at INFO without traceback
raises :class:`Permanent`       will not succeed by retrying (bad input, …):
                                logged at WARNING, ``forget``, not re-queued —
                                the next event for the key re-triggers it
raises anything else            a bug or an unexpected API error: logged with
                                traceback and retried with backoff, as client-go
                                and controller-runtime do (an ``APIError``
                                is logged without traceback)
==============================  ==============================================

The queue guarantees one key is never reconciled by two workers at once.

Wiring events to keys (controller-runtime's ``Watches``/``Owns``):

* :meth:`Controller.watch` enqueues ``namespace/name`` of every object an
  informer adds, updates (including resyncs) or deletes — optionally only
  those a ``predicate`` accepts (an update passes if the old *or* the new
  object does, so "stopped matching" is seen too);
* :meth:`Controller.watch_owned` enqueues the key of the *controller owner*
  (the ownerReference with ``controller: true`` and the given kind) of every
  object an informer reports, so a reconciler notices when something it
  created drifts or disappears; with ``adopters=`` an orphan wakes every
  owner whose selector matches it (ReplicaSets adopting pods).

:class:`FactoryController` is the base of a controller whose informers come
from a :class:`~cloudlet.client.informer.SharedInformerFactory` — shared with
other controllers, or its own (started and shut down by :meth:`run`).

:meth:`Controller.run` waits until every watched informer has synced before
starting workers (a reconciler never decides on a half-filled cache); the
informers themselves are run by their owner (usually a
:class:`~cloudlet.client.informer.SharedInformerFactory`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cloudlet import metrics
from cloudlet.api.errors import APIError
from cloudlet.api.selectors import LabelSelector, label_selector_from_spec
from cloudlet.client.informer import Informer, Registration, SharedInformerFactory
from cloudlet.client.interface import Client, Obj, object_key
from cloudlet.client.workqueue import RateLimiter, ShutDown, WorkQueue

log = logging.getLogger("cloudlet.controller")

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Result:
    """What a successful reconcile asks for next."""

    requeue_after: float | None = None
    requeue: bool = False


class Retry(Exception):
    """A transient failure: reconcile the key again with backoff.

    ``after`` overrides the backoff delay (seconds).
    """

    def __init__(self, message: str = "", *, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class Permanent(Exception):
    """A failure retrying cannot fix: log it and drop the key until its next event."""


Reconciler = Callable[[K], Awaitable[Result | None]]


class Controller(Generic[K]):
    """Runs ``reconcile`` for keys added to :attr:`queue` with ``workers`` workers.

    ``await run()`` until cancelled or :meth:`stop` is called; :meth:`stop`
    lets workers finish the keys already queued, cancellation interrupts them.
    ``rate_limiter`` (for a queue the controller creates) defaults to
    :func:`~cloudlet.client.workqueue.default_rate_limiter`.
    """

    def __init__(
        self,
        name: str,
        reconcile: Reconciler[K],
        *,
        workers: int = 1,
        queue: WorkQueue[K] | None = None,
        rate_limiter: RateLimiter[K] | None = None,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = max(1, workers)
        self.queue: WorkQueue[K] = queue if queue is not None else WorkQueue(name, rate_limiter)
        self.reconciles = 0  # completed reconcile calls (any outcome), for tests and metrics
        self.sources: list[Informer] = []
        self._log = log.getChild(name)
        self._m_work = metrics.WORKQUEUE_WORK.labels(name)

    def enqueue(self, key: K) -> None:
        self.queue.add(key)

    # --- event sources -----------------------------------------------------------

    def _source(self, informer: Informer) -> None:
        if all(s is not informer for s in self.sources):
            self.sources.append(informer)

    def watch(
        self,
        informer: Informer,
        *,
        key: Callable[[Obj], Any] = object_key,
        predicate: Callable[[Obj], bool] | None = None,
    ) -> Registration:
        """Enqueue ``key(obj)`` for every add/update/delete ``informer`` reports
        (that ``predicate`` accepts); a key of ``None`` is skipped."""
        self._source(informer)

        def put(obj: Obj) -> None:
            k = key(obj)
            if k is not None:
                self.queue.add(k)

        def on_add(obj: Obj) -> None:
            if predicate is None or predicate(obj):
                put(obj)

        def on_update(old: Obj, new: Obj) -> None:
            if predicate is None or predicate(new) or predicate(old):
                put(new)

        return informer.add_handler(on_add, on_update, on_add)

    def watch_owned(
        self,
        informer: Informer,
        owner_kind: str,
        owner_group: str = "",
        *,
        adopters: Informer | None = None,
    ) -> Registration:
        """Enqueue ``namespace/owner-name`` for objects ``informer`` reports whose
        controller ownerReference is a ``owner_kind`` of API group ``owner_group``
        (any version; ``""`` is the core group).

        With ``adopters`` (the owners' informer), an object without a controller
        reference wakes every owner in its namespace whose ``spec.selector``
        matches its labels — the owners that may adopt it. An update wakes the
        owners of the old and of the new object (a changed owner or labels).
        """
        self._source(informer)

        def keys(obj: Obj) -> list[str]:
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace") or ""
            for ref in meta.get("ownerReferences") or ():
                if not (isinstance(ref, dict) and ref.get("controller") is True):
                    continue
                group = str(ref.get("apiVersion") or "").rpartition("/")[0]
                if ref.get("kind") == owner_kind and group == owner_group and ref.get("name"):
                    return [f"{ns}/{ref['name']}" if ns else str(ref["name"])]
                return []
            if adopters is None:
                return []
            labels = meta.get("labels") or {}
            found = []
            for owner in adopters.list(ns):
                sel = selector_of(owner)
                if sel is not None and not sel.empty and sel.matches(labels):
                    found.append(object_key(owner))
            return found

        def on_add(obj: Obj) -> None:
            for k in keys(obj):
                self.queue.add(k)

        def on_update(old: Obj, new: Obj) -> None:
            for k in dict.fromkeys([*keys(old), *keys(new)]):
                self.queue.add(k)

        return informer.add_handler(on_add, on_update, on_add)

    async def wait_for_sources(self) -> None:
        """Wait until every watched informer has synced (logged while waiting)."""
        pending = [s for s in self.sources if not s.has_synced]
        if not pending:
            return
        try:
            async with asyncio.timeout(10.0):
                await asyncio.gather(*(s.wait_synced() for s in pending))
                return
        except TimeoutError:
            self._log.warning("waiting for informers to sync", extra={"unsynced": [str(s.ref) for s in self.sources if not s.has_synced]})
        await asyncio.gather(*(s.wait_synced() for s in pending))

    # --- workers -----------------------------------------------------------------

    async def run(self) -> None:
        await self.wait_for_sources()
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Stop handing out keys; :meth:`run` returns once workers finish their current key."""
        self.queue.shutdown()

    async def process_one(self) -> bool:
        """Take one key, reconcile it, act on the outcome. False once shut down."""
        try:
            key = await self.queue.get()
        except ShutDown:
            return False
        try:
            await self._handle(key)
        finally:
            self.reconciles += 1
            self.queue.done(key)
        return True

    async def _worker(self) -> None:
        while await self.process_one():
            pass

    async def _handle(self, key: K) -> None:
        q = self.queue
        t0 = time.perf_counter()
        try:
            result = await self.reconcile(key)
        except Retry as e:
            self._log.info("retrying %s: %s", key, e, extra={"key": str(key), "requeues": q.num_requeues(key)})
            if e.after is not None:
                q.add_after(key, e.after)
            else:
                q.add_rate_limited(key)
        except Permanent as e:
            self._log.warning("giving up on %s: %s", key, e, extra={"key": str(key)})
            q.forget(key)
        except APIError as e:
            self._log.info("reconcile %s failed: %s %s", key, e.code, e.message, extra={"key": str(key)})
            q.add_rate_limited(key)
        except Exception:
            self._log.exception("reconcile %s failed", key, extra={"key": str(key)})
            q.add_rate_limited(key)
        else:
            if result is not None and result.requeue:
                q.add_rate_limited(key)
                return
            q.forget(key)
            if result is not None and result.requeue_after is not None:
                q.add_after(key, result.requeue_after)
        finally:
            self._m_work.observe(time.perf_counter() - t0)


def selector_of(obj: Obj) -> LabelSelector | None:
    """The parsed ``spec.selector``; ``None`` when absent or unparsable (selects nothing)."""
    spec = (obj.get("spec") or {}).get("selector")
    if spec is None:
        return None
    try:
        return label_selector_from_spec(spec)
    except Exception:  # invalid selectors were rejected by validation; be safe
        return None


class FactoryController:
    """A reconciler over informers of a :class:`SharedInformerFactory`.

    Pass ``factory`` to share informers with other controllers (its owner
    starts and stops it); without one the controller makes its own, started
    by :meth:`run` and shut down when :meth:`run` ends. Subclasses define
    ``async reconcile(key)`` and wire their informers to :attr:`controller`.
    """

    def __init__(
        self, client: Client, factory: SharedInformerFactory | None, name: str, *, workers: int = 5
    ) -> None:
        self.client = client
        self._own_factory = factory is None
        self.factory = factory if factory is not None else SharedInformerFactory(client)
        self.controller: Controller[str] = Controller(name, self.reconcile, workers=workers)

    async def reconcile(self, key: str) -> Result | None:
        raise NotImplementedError

    async def run(self) -> None:
        if self._own_factory:
            self.factory.start()
        try:
            await self.controller.run()
        finally:
            if self._own_factory:
                await self.factory.shutdown()
