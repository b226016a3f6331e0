"""The event recorder: core/v1 Events about objects, as ``kubectl describe`` shows them.

:class:`EventRecorder` writes ``v1`` Events through any
:class:`~cloudlet.client.interface.Client`, the way client-go's recorder does:

* the Event lives in the involved object's namespace (``default`` for
  cluster-scoped objects) and is named ``<object name>.<hex unix nanos>``;
* ``involvedObject`` references the object (kind, apiVersion, namespace, name,
  uid, resourceVersion); ``source.component`` / ``reportingComponent`` name
  the controller, ``source.host`` / ``reportingInstance`` the host;
* identical events (same object, type, reason, message, source) are
  aggregated: the first is created with ``count: 1`` and
  ``firstTimestamp == lastTimestamp``; repeats patch ``count`` and
  ``lastTimestamp`` on the same Event (re-created if it was deleted).

Recording is best effort: :meth:`EventRecorder.event` never raises (except
cancellation); failures are logged and the controller carries on. An
unsupported type (anything but ``Normal``/``Warning``) is logged and dropped.
:meth:`EventRecorder.emit` records in the background without awaiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.interface import Client, Obj, ResourceRef

log = logging.getLogger("cloudlet.events")

NORMAL = "Normal"
WARNING = "Warning"
EVENTS = ResourceRef("", "v1", "events")


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


class EventRecorder:
    """Records Events for ``component`` (see the module docstring)."""

    def __init__(self, client: Client, component: str, *, host: str = "", cache_size: int = 4096) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.cache_size = cache_size
        self._seen: OrderedDict[tuple[Any, ...], _Seen] = OrderedDict()
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[Obj | None]] = set()

    def emit(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record in the background (fire and forget)."""
        task = asyncio.get_running_loop().create_task(self.event(obj, type_, reason, message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def event(self, obj: Obj, type_: str, reason: str, message: str) -> Obj | None:
        """Record one event about ``obj``; returns the stored Event, or None on failure."""
        if type_ not in (NORMAL, WARNING):
            log.error("unsupported event type %r", type_, extra={"reason": reason})
            return None
        involved = object_reference(obj)
        key = (
            self.component, self.host, involved.get("kind"), involved.get("apiVersion"),
            involved.get("namespace"), involved.get("name"), involved.get("uid"), type_, reason, message,
        )
        async with self._lock:
            try:
                return await self._record(key, involved, type_, reason, message)
            except APIError as e:
                log.warning("could not record event: %s %s", e.code, e.message, extra={"reason": reason})
            except Exception:
                log.exception("could not record event", extra={"reason": reason})
            return None

    async def _record(self, key: tuple[Any, ...], involved: Obj, type_: str, reason: str, message: str) -> Obj:
        now = _now()
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            seen.count += 1
            try:
                return await self.client.patch(
                    EVENTS, seen.name, {"count": seen.count, "lastTimestamp": now}, "merge", seen.namespace
                )
            except APIError as e:
                if e.code != 404:
                    seen.count -= 1
                    raise
            # the Event was deleted (TTL, cleanup): create it again, keeping the count
        namespace = involved.get("namespace") or "default"
        name = f"{involved.get('name', '')}.{time.time_ns():x}"
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
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
