"""A client-go style work queue: deduplicating, per-key serialised, rate limited.

Event delivery (informers) only *adds keys*; workers ``get`` a key, reconcile
it, and call ``done``. Semantics, as client-go's ``workqueue``:

* **Dedup**: a key added several times before a worker takes it is processed
  once.
* **Serialised per key**: a key is never handed to two workers at once. A key
  added while it is being processed is remembered ("dirty") and queued again
  when the worker calls :meth:`WorkQueue.done` — so no change is ever lost.
* **FIFO** among distinct keys.
* **Delays**: :meth:`WorkQueue.add_after` adds the key once the delay passes;
  several pending delays for one key collapse to the earliest.
* **Rate limiting**: :meth:`WorkQueue.add_rate_limited` delays the key by
  what the rate limiter says. The default is client-go's
  ``DefaultControllerRateLimiter`` (:func:`default_rate_limiter`): the larger
  of a per-key exponential backoff (5 ms doubling up to 1000 s,
  :class:`ExponentialBackoff`) and an overall token bucket (10 retries/s,
  burst 100, :class:`BucketRateLimiter`), so one failing key backs off and a
  storm of failures cannot hammer the API. :meth:`WorkQueue.forget` resets
  the key's backoff (call it after a success).
* **Shutdown**: :meth:`WorkQueue.shutdown` drops pending delays, ignores new
  adds, and wakes every waiting ``get`` with :class:`ShutDown` once the queue
  is empty (keys already queued are still handed out).
  :meth:`WorkQueue.shutdown_with_drain` also waits until every key handed out
  has been marked :meth:`~WorkQueue.done`.
* **Metrics**: ``adds`` (accepted adds), ``retries`` (rate-limited adds),
  ``len()`` (depth), :meth:`WorkQueue.pending_delayed`.

Everything is single-event-loop: ``add``/``done``/``forget`` are plain
synchronous calls (safe from informer handlers); only ``get`` awaits.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from cloudlet import metrics

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class ShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and drained."""


class RateLimiter(Protocol[K_contra]):
    """How long to wait before retrying a key (client-go's ``RateLimiter``)."""

    def when(self, key: K_contra) -> float:
        """The delay for this retry of ``key`` (records the retry)."""
        ...

    def forget(self, key: K_contra) -> None:
        """``key`` succeeded: start its backoff over."""
        ...

    def num_requeues(self, key: K_contra) -> int:
        """How many retries of ``key`` since it was last forgotten."""
        ...


class ExponentialBackoff(Generic[K]):
    """Per-key exponential failure backoff (client-go's ``ItemExponentialFailureRateLimiter``).

    The n-th consecutive :meth:`when` for a key returns ``base * 2**n`` capped
    at ``cap``; :meth:`forget` starts the key over.
    """

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n > 64:  # 2**n overflows float range long after the cap is hit
            return self.cap
        return min(self.base * (2**n), self.cap)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter(Generic[K]):
    """An overall token bucket (client-go's ``BucketRateLimiter``): ``qps``
    retries per second across all keys, bursts of up to ``burst``. Each
    :meth:`when` reserves a token and returns how long until it is available."""

    def __init__(self, qps: float = 10.0, burst: int = 100) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()

    def when(self, key: K) -> float:
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: K) -> None:
        return None

    def num_requeues(self, key: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay of several limiters (client-go's ``MaxOfRateLimiter``)."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, key: K) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: K) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_rate_limiter() -> MaxOfRateLimiter[K]:
    """client-go's ``DefaultControllerRateLimiter``: per-key 5 ms..1000 s
    exponential backoff, and at most 10 retries/s overall (burst 100)."""
    return MaxOfRateLimiter(ExponentialBackoff(0.005, 1000.0), BucketRateLimiter(10.0, 100))


class WorkQueue(Generic[K]):
    """See the module docstring for the contract."""

    def __init__(self, name: str = "", rate_limiter: RateLimiter[K] | None = None) -> None:
        self.name = name
        self.rate_limiter: RateLimiter[K] = rate_limiter if rate_limiter is not None else default_rate_limiter()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._delayed: dict[K, asyncio.TimerHandle] = {}
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._shutting_down = False
        self.adds = 0
        self.retries = 0
        label = name or "unnamed"
        self._m_adds = metrics.WORKQUEUE_ADDS.labels(label)
        self._m_retries = metrics.WORKQUEUE_RETRIES.labels(label)
        metrics.track_queue(self)  # workqueue_depth is len(self)

    # --- adding --------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is already queued; if it is being processed,
        queue it again when the worker calls :meth:`done`."""
        if self._shutting_down or key in self._dirty:
            return
        self.adds += 1
        self._m_adds.inc()
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds (at once if ``delay <= 0``)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending.when() <= when:
                return
            pending.cancel()
        self._delayed[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` after its next backoff step."""
        if self._shutting_down:
            return
        self.retries += 1
        self._m_retries.inc()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (it does not remove the key from the queue)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    # --- processing ----------------------------------------------------------

    async def get(self) -> K:
        """The next key to process (waits for one); the caller must call
        :meth:`done` with it. Raises :class:`ShutDown` when shut down and empty."""
        while True:
            if self._queue:
                key = self._queue.popleft()
                self._processing.add(key)
                self._dirty.discard(key)
                return key
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake_one()  # we were woken but will not take the key: pass it on
                else:
                    try:
                        self._waiters.remove(fut)
                    except ValueError:
                        pass
                raise

    def done(self, key: K) -> None:
        """Mark ``key`` processed; re-queue it if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()
        if not self._processing and self._drain_waiters:
            for fut in self._drain_waiters:
                if not fut.done():
                    fut.set_result(None)
            self._drain_waiters.clear()

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # --- lifecycle -----------------------------------------------------------

    def shutdown(self) -> None:
        self._shutting_down = True
        for handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    async def shutdown_with_drain(self) -> None:
        """:meth:`shutdown`, then wait until no key is being processed."""
        self.shutdown()
        while self._processing:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys waiting to be handed out (not counting delayed or in-process keys)."""
        return len(self._queue)

    def pending_delayed(self) -> int:
        return len(self._delayed)

    def is_processing(self, key: K) -> bool:
        return key in self._processing
