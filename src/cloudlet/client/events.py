"""The event recorder: core/v1 Events about objects, as ``kubectl describe`` shows them.

:class:`EventRecorder` writes ``v1`` Events through any
:class:`~cloudlet.client.interface.Client`, the way client-go's recorder (and
its ``EventCorrelator``) does:

* the Event lives in the involved object's namespace (``default`` for
  cluster-scoped objects) and is named ``<object name>.<hex unix nanos>``;
* ``involvedObject`` references the object (kind, apiVersion, namespace, name,
  uid, resourceVersion); ``source.component`` / ``reportingComponent`` name
  the controller, ``source.host`` / ``reportingInstance`` the host;
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
  it are dropped (logged at DEBUG), so a hot loop cannot flood the API.

Recording is best effort: :meth:`EventRecorder.event` never raises (except
cancellation); failures are logged and the controller carries on. An
unsupported type (anything but ``Normal``/``Warning``) is logged and dropped.
:meth:`EventRecorder.emit` records in the background without awaiting
(:meth:`EventRecorder.flush` waits for those). Recording is serialised per
recorder, so counts never race.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.cache_size = cache_size
        self.similar_max = similar_max
        self.similar_interval = similar_interval
        self.spam_burst = spam_burst
        self.spam_qps = spam_qps
        self.dropped = 0  # events the spam filter dropped
        self._seen: OrderedDict[tuple[Any, ...], _Seen] = OrderedDict()
        self._similar: OrderedDict[tuple[Any, ...], _Similar] = OrderedDict()
        self._buckets: OrderedDict[tuple[Any, ...], _Bucket] = OrderedDict()
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[Obj | None]] = set()

    def emit(self, obj: Obj, type_: str, reason: str, message: str, *, annotations: dict[str, str] | None = None) -> None:
        """Record in the background (fire and forget)."""
        task = asyncio.get_running_loop().create_task(self.event(obj, type_, reason, message, annotations=annotations))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def event(
        self, obj: Obj, type_: str, reason: str, message: str, *, annotations: dict[str, str] | None = None
    ) -> Obj | None:
        """Record one event about ``obj``; returns the stored Event, or None when
        dropped (spam filter, bad type) or on failure. ``annotations`` go on a
        newly created Event (client-go's ``AnnotatedEventf``)."""
        if type_ not in (NORMAL, WARNING):
            log.error("unsupported event type %r", type_, extra={"reason": reason})
            return None
        involved = object_reference(obj)
        source = (
            self.component, self.host, involved.get("kind"), involved.get("apiVersion"),
            involved.get("namespace"), involved.get("name"), involved.get("uid"),
        )
        async with self._lock:
            key, message = self._aggregate(source, type_, reason, message)
            if not self._allow(source):
                self.dropped += 1
                log.debug("event dropped by the spam filter", extra={"reason": reason, "object": involved.get("name")})
                return None
            try:
                return await self._record(key, involved, type_, reason, message, annotations)
            except APIError as e:
                log.warning("could not record event: %s %s", e.code, e.message, extra={"reason": reason})
            except Exception:
                log.exception("could not record event", extra={"reason": reason})
            return None

    # --- correlation -------------------------------------------------------------

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

    async def _record(
        self,
        key: tuple[Any, ...],
        involved: Obj,
        type_: str,
        reason: str,
        message: str,
        annotations: dict[str, str] | None,
    ) -> Obj:
        now = _now()
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            seen.count += 1
            try:
                return await self.client.patch(
                    EVENTS, seen.name, {"count": seen.count, "lastTimestamp": now, "message": message},
                    "merge", seen.namespace,
                )
            except APIError as e:
                if e.code != 404:
                    seen.count -= 1
                    raise
            # the Event was deleted (TTL, cleanup): create it again, keeping the count
        namespace = involved.get("namespace") or "default"
        name = f"{involved.get('name', '')}.{time.time_ns():x}"
        meta: Obj = {"name": name, "namespace": namespace}
        if annotations:
            meta["annotations"] = dict(annotations)
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": meta,
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": seen.first if seen else now,
            "lastTimestamp": now,
            "count": seen.count if seen else 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        created = await self.client.create(EVENTS, body, namespace)
        self._seen[key] = _Seen(namespace, name, seen.count if seen else 1, seen.first if seen else now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)
        return created

    async def flush(self) -> None:
        """Wait for events recorded with :meth:`emit` (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
