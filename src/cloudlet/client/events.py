"""The event recorder: core/v1 Events about objects, as ``kubectl describe`` shows them.

:class:`EventRecorder` writes ``v1`` Events through any
:class:`~cloudlet.client.interface.Client`, the way client-go's recorder (its
``EventCorrelator`` and broadcaster) does:

* the Event lives in the involved object's namespace (``default`` for
  cluster-scoped objects) and is named ``<object name>.<hex unix nanos>``;
* ``involvedObject`` references the object (kind, apiVersion, namespace, name,
  uid, resourceVersion); ``source.component`` / ``reportingComponent`` name
  the controller, ``source.host`` / ``reportingInstance`` the host;
  ``firstTimestamp`` / ``lastTimestamp`` are when the event was recorded, not
  when it was written;
* **count aggregation**: identical events (same object, type, reason,
  message, source) are one Event: the first is created with ``count: 1`` and
  ``firstTimestamp == lastTimestamp``; repeats patch ``count``,
  ``lastTimestamp`` (and ``message``) on the same Event — re-created, keeping
  the count, if it was deleted meanwhile;
* **similar-event aggregation**: once ``similar_max`` (10) events with the
  same object, type and reason but *different* messages arrive within
  ``similar_interval`` (10 min), further ones are folded into one Event whose
  message is ``"(combined from similar events): <latest message>"``;
* **spam filter**: each source+object pair has a token bucket
  (``spam_burst`` 25, refilled one per ``1/spam_qps`` = 5 min); events beyond
  it are dropped (counted in ``dropped``, logged at DEBUG), so a hot loop
  cannot flood the API.

Writing (the broadcaster's part): correlation (aggregation and the spam
filter) happens when an event is recorded; the resulting write joins a FIFO
queue drained by up to ``workers`` (8) concurrent writers, so writes overlap
in the store's group commit instead of costing one commit each. The queue
is ordered by Event key (first come, first written); writes for one key never
run concurrently, and all the occurrences waiting for a key when its turn
comes go out as one create or ``count`` patch (the count still says how many
occurred; a repeat arriving during the write waits for the next turn).
Writers start on demand and exit when the queue is empty.

:meth:`EventRecorder.emit` records without awaiting. At most ``max_queued``
(1 000, client-go's ``maxQueuedEvents``) events wait at a time; an ``emit``
beyond that is dropped (the newest goes, before it touches the aggregation
or spam state), counted in ``queue_dropped`` and logged at WARNING at most once
per ``drop_log_interval`` (10 s) — a burst (a scheduler placing thousands of
pods a second) cannot pile up unbounded writes. :meth:`EventRecorder.event`
records and awaits the write (returning the stored Event); an awaiting caller
is its own back-pressure, so it is queued even past the bound.
:meth:`EventRecorder.flush` waits until every queued write is done, and
:meth:`EventRecorder.shutdown` discards the queue and stops the writers.

Recording is best effort: neither method raises (except cancellation);
failures are logged (``failed`` counts them) and the controller carries on.
An unsupported type (anything but ``Normal``/``Warning``) is logged and
dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.interface import Client, Obj, ResourceRef

log = logging.getLogger("cloudlet.events")

NORMAL = "Normal"
WARNING = "Warning"
EVENTS = ResourceRef("", "v1", "events")
COMBINED_PREFIX = "(combined from similar events): "
MAX_QUEUED_EVENTS = 1000  # client-go's maxQueuedEvents
WRITERS = 8
DROP_LOG_INTERVAL = 10.0

_stamp: tuple[int, str] = (0, "")


def _now() -> str:
    """RFC 3339 seconds, formatted once a second."""
    global _stamp
    sec = int(time.time())
    if _stamp[0] != sec:
        _stamp = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _stamp[1]


def object_reference(obj: Obj) -> Obj:
    """The ``ObjectReference`` of a Kubernetes object (for ``involvedObject``)."""
    meta = obj.get("metadata") or {}
    ref: Obj = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", "")}
    for src, dst in (("namespace", "namespace"), ("name", "name"), ("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if meta.get(src):
            ref[dst] = meta[src]
    return ref


@dataclass(slots=True)
class _Seen:
    namespace: str
    name: str
    count: int
    first: str


@dataclass(slots=True)
class _Similar:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float


@dataclass(slots=True)
class _Write:
    """One recorded event waiting to be written."""

    key: tuple[Any, ...]
    involved: Obj
    type_: str
    reason: str
    message: str
    annotations: dict[str, str] | None
    at: str  # when it was recorded
    future: asyncio.Future[Obj | None] | None = None


class EventRecorder:
    """Records Events for ``component`` (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        component: str,
        *,
        host: str = "",
        cache_size: int = 4096,
        similar_max: int = 10,
        similar_interval: float = 600.0,
        spam_burst: int = 25,
        spam_qps: float = 1 / 300,
        max_queued: int = MAX_QUEUED_EVENTS,
        workers: int = WRITERS,
        drop_log_interval: float = DROP_LOG_INTERVAL,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.cache_size = cache_size
        self.similar_max = similar_max
        self.similar_interval = similar_interval
        self.spam_burst = spam_burst
        self.spam_qps = spam_qps
        self.max_queued = max_queued
        self.workers = max(1, workers)
        self.drop_log_interval = drop_log_interval
        self.dropped = 0  # events the spam filter dropped
        self.queue_dropped = 0  # events dropped because max_queued events were waiting
        self.written = 0  # events recorded in the API (each occurrence, folded into a count or not)
        self.writes = 0  # API calls made (creates and count patches)
        self.failed = 0  # events whose write failed
        self._seen: OrderedDict[tuple[Any, ...], _Seen] = OrderedDict()
        self._similar: OrderedDict[tuple[Any, ...], _Similar] = OrderedDict()
        self._buckets: OrderedDict[tuple[Any, ...], _Bucket] = OrderedDict()
        self._queue: deque[tuple[Any, ...]] = deque()  # Event keys with writes waiting, FIFO
        self._waiting: dict[tuple[Any, ...], list[_Write]] = {}  # key -> its writes not taken yet
        self._active: set[tuple[Any, ...]] = set()  # keys a writer is writing now
        self._pending = 0  # accepted writes not finished (waiting or in flight)
        self._writers: set[asyncio.Task[None]] = set()
        self._idle: list[asyncio.Future[None]] = []
        self._last_ns = 0
        self._drop_logged = float("-inf")

    @property
    def pending(self) -> int:
        """Writes accepted and not finished yet."""
        return self._pending

    def emit(self, obj: Obj, type_: str, reason: str, message: str, *, annotations: dict[str, str] | None = None) -> None:
        """Record in the background (fire and forget); dropped when the queue is full."""
        if not self._supported(type_, reason):
            return
        if self._pending >= self.max_queued:
            self._drop_full(reason)
            return
        w = self._correlate(obj, type_, reason, message, annotations)
        if w is not None:
            self._submit(w)

    async def event(
        self, obj: Obj, type_: str, reason: str, message: str, *, annotations: dict[str, str] | None = None
    ) -> Obj | None:
        """Record one event about ``obj`` and wait for its write; returns the
        stored Event, or None when dropped (spam filter, bad type) or on
        failure. ``annotations`` go on a newly created Event (client-go's
        ``AnnotatedEventf``)."""
        if not self._supported(type_, reason):
            return None
        w = self._correlate(obj, type_, reason, message, annotations)
        if w is None:
            return None
        w.future = asyncio.get_running_loop().create_future()
        self._submit(w)
        return await w.future

    async def flush(self) -> None:
        """Wait until every accepted write is done (tests, shutdown), including
        those recorded while waiting."""
        while self._pending:
            fut = asyncio.get_running_loop().create_future()
            self._idle.append(fut)
            self._start_writers()
            await fut

    def shutdown(self) -> None:
        """Stop the writers and discard the queued writes (awaiting callers get
        None). Recording afterwards starts again."""
        discarded = [w for ws in self._waiting.values() for w in ws]
        self._queue.clear()
        self._waiting.clear()
        self._finish(discarded, None)
        for t in list(self._writers):
            t.cancel()  # the writes in flight end as not written
        if discarded:
            log.info("event recorder shut down: %d queued events discarded", len(discarded),
                     extra={"component": self.component})

    # --- correlation -------------------------------------------------------------

    def _supported(self, type_: str, reason: str) -> bool:
        if type_ in (NORMAL, WARNING):
            return True
        log.error("unsupported event type %r", type_, extra={"reason": reason})
        return False

    def _correlate(
        self, obj: Obj, type_: str, reason: str, message: str, annotations: dict[str, str] | None
    ) -> _Write | None:
        """Aggregate and spam-filter one event; the write to queue, or None if dropped."""
        involved = object_reference(obj)
        source = (
            self.component, self.host, involved.get("kind"), involved.get("apiVersion"),
            involved.get("namespace"), involved.get("name"), involved.get("uid"),
        )
        key, message = self._aggregate(source, type_, reason, message)
        if not self._allow(source):
            self.dropped += 1
            log.debug("event dropped by the spam filter", extra={"reason": reason, "object": involved.get("name")})
            return None
        return _Write(key, involved, type_, reason, message, annotations, _now())

    def _aggregate(self, source: tuple[Any, ...], type_: str, reason: str, message: str) -> tuple[tuple[Any, ...], str]:
        """The dedup key and message: exact, or the combined event once too many
        similar messages arrived (client-go's ``EventAggregator``)."""
        similar_key = (*source, type_, reason)
        now = time.monotonic()
        rec = self._similar.get(similar_key)
        if rec is None or now - rec.last > self.similar_interval:
            rec = self._similar[similar_key] = _Similar()
        self._similar.move_to_end(similar_key)
        while len(self._similar) > self.cache_size:
            self._similar.popitem(last=False)
        rec.last = now
        rec.messages.add(message)
        if len(rec.messages) < self.similar_max:
            return (*similar_key, message), message
        rec.messages.pop()  # do not grow past the threshold
        return (*similar_key, None), COMBINED_PREFIX + message

    def _allow(self, source: tuple[Any, ...]) -> bool:
        """The per source+object token bucket (client-go's ``EventSourceObjectSpamFilter``)."""
        now = time.monotonic()
        b = self._buckets.get(source)
        if b is None:
            b = self._buckets[source] = _Bucket(float(self.spam_burst), now)
        else:
            b.tokens = min(float(self.spam_burst), b.tokens + (now - b.last) * self.spam_qps)
            b.last = now
        self._buckets.move_to_end(source)
        while len(self._buckets) > self.cache_size:
            self._buckets.popitem(last=False)
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def _drop_full(self, reason: str) -> None:
        self.queue_dropped += 1
        now = time.monotonic()
        if now - self._drop_logged >= self.drop_log_interval:
            log.warning("event queue full (%d events waiting): dropping events, %d dropped so far",
                        self.max_queued, self.queue_dropped, extra={"component": self.component, "reason": reason})
            self._drop_logged = now

    # --- writing -----------------------------------------------------------------

    def _submit(self, w: _Write) -> None:
        self._pending += 1
        waiting = self._waiting.get(w.key)
        if waiting is not None:  # the key is queued already, or will be once its write is done
            waiting.append(w)
        else:
            self._waiting[w.key] = [w]
            if w.key not in self._active:
                self._queue.append(w.key)
        if w.key not in self._active:
            self._start_writers()

    def _start_writers(self) -> None:
        want = min(self.workers, len(self._queue))
        while len(self._writers) < want:
            task = asyncio.get_running_loop().create_task(self._writer())
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)

    async def _writer(self) -> None:
        """Drain the queue, one key at a time: all the writes waiting for a key
        go out as one; those arriving meanwhile wait for the next turn."""
        try:
            await self._drain()
        finally:
            # leave the set now, not in a done callback that runs later: a write
            # queued in between must see that no writer is left to take it
            self._writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _drain(self) -> None:
        while self._queue:
            key = self._queue.popleft()
            batch = self._waiting.pop(key, None)
            if not batch:
                continue
            self._active.add(key)
            try:
                await self._write(batch)
            finally:
                self._active.discard(key)
                if key in self._waiting:  # repeats arrived meanwhile: one more write, in turn
                    self._queue.append(key)

    async def _write(self, batch: list[_Write]) -> None:
        """Write ``batch`` (one key, in order) as one create or count patch."""
        result: Obj | None = None
        last = batch[-1]
        try:
            result = await self._record(batch)
            self.written += len(batch)
        except APIError as e:
            self.failed += len(batch)
            log.warning("could not record event: %s %s", e.code, e.message, extra={"reason": last.reason})
        except Exception:
            self.failed += len(batch)
            log.exception("could not record event", extra={"reason": last.reason})
        finally:
            self._finish(batch, result)

    def _finish(self, batch: list[_Write], result: Obj | None) -> None:
        for w in batch:
            if w.future is not None and not w.future.done():
                w.future.set_result(result)
        self._pending -= len(batch)
        if not self._pending:
            idle, self._idle = self._idle, []
            for fut in idle:
                if not fut.done():
                    fut.set_result(None)

    def _event_name(self, name: str) -> str:
        ns = time.time_ns()
        if ns <= self._last_ns:  # unique even when two writers stamp the same nanosecond
            ns = self._last_ns + 1
        self._last_ns = ns
        return f"{name}.{ns:x}"

    async def _record(self, batch: list[_Write]) -> Obj:
        first, last, n = batch[0], batch[-1], len(batch)
        key = first.key
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            seen.count += n
            self.writes += 1
            try:
                return await self.client.patch(
                    EVENTS, seen.name, {"count": seen.count, "lastTimestamp": last.at, "message": last.message},
                    "merge", seen.namespace,
                )
            except APIError as e:
                if e.code != 404:
                    seen.count -= n
                    raise
            # the Event was deleted (TTL, cleanup): create it again, keeping the count
        involved = first.involved
        namespace = involved.get("namespace") or "default"
        name = self._event_name(involved.get("name", ""))
        meta: Obj = {"name": name, "namespace": namespace}
        if first.annotations:
            meta["annotations"] = dict(first.annotations)
        count = seen.count if seen else n
        first_at = seen.first if seen else first.at
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": meta,
            "involvedObject": involved,
            "reason": first.reason,
            "message": last.message,
            "type": first.type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": first_at,
            "lastTimestamp": last.at,
            "count": count,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        self.writes += 1
        created = await self.client.create(EVENTS, body, namespace)
        self._seen[key] = _Seen(namespace, name, count, first_at)
        self._seen.move_to_end(key)
        while len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)
        return created
