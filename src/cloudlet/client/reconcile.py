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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cloudlet.api.errors import APIError
from cloudlet.client.workqueue import ShutDown, WorkQueue

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

    ``await run()`` until cancelled or :meth:`stop` is called; both shut the
    queue down and wait for in-flight reconciles to finish (or be cancelled).
    """

    def __init__(
        self,
        name: str,
        reconcile: Reconciler[K],
        *,
        workers: int = 1,
        queue: WorkQueue[K] | None = None,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = max(1, workers)
        self.queue: WorkQueue[K] = queue if queue is not None else WorkQueue(name)
        self.reconciles = 0  # completed reconcile calls (any outcome), for tests and metrics
        self._log = log.getChild(name)

    def enqueue(self, key: K) -> None:
        self.queue.add(key)

    async def run(self) -> None:
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
