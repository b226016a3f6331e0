"""The scheduling queue: active heap, backoff, and the unschedulable set.

Contracts:

* :meth:`SchedulingQueue.pop` hands out the pending pod with the highest
  priority, then the earliest creation (then arrival); it waits when empty.
  A popped pod is *in flight* until :meth:`done`, :meth:`requeue_backoff`
  or :meth:`add_unschedulable` is called for it.
* Keys are unique: adding a key that is queued replaces its pod object and
  keeps its place; adding one that is in flight is remembered and re-queued
  when the flight ends with :meth:`done`.
* A pod that failed goes to *backoff* (``initial * 2**(attempts-1)``, capped
  at ``max_backoff``) and then back to the active heap.
* An unschedulable pod waits in the unschedulable set until a cluster event
  that one of the plugins which rejected it declared (:meth:`move_on_event`),
  or ``unschedulable_timeout`` seconds; then it goes through backoff again.
  An event may carry a *hint* (kube-scheduler's QueueingHint): a predicate
  on the waiting pod saying whether this event can make it schedulable
  (e.g. "it now fits on the node the deleted pod left"); pods the hint
  rejects stay where they are, so one victim's deletion retries the
  preemptor waiting for that room and not every pending pod.
  An event that arrives while the pod is in flight sends it to backoff
  instead (the move-request-cycle rule), so no event is lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudlet.scheduler.framework import Obj


@dataclass(slots=True)
class QueuedPod:
    pod: Obj
    attempts: int = 0
    rejected_by: frozenset[str] = frozenset()
    where: str = "active"  # active | backoff | unschedulable | flight
    seq: int = 0
    since: float = field(default_factory=time.monotonic)
    popped_cycle: int = 0
    dirty: bool = False  # updated while in flight


def pod_key(pod: Obj) -> str:
    m = pod["metadata"]
    return f"{m.get('namespace', '')}/{m['name']}"


class SchedulingQueue:
    def __init__(
        self,
        priority_of: Callable[[Obj], int],
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        unschedulable_timeout: float = 300.0,
        plugin_events: Callable[[str], frozenset[str]] | None = None,
    ) -> None:
        self.priority_of = priority_of
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self.plugin_events = plugin_events or (lambda name: frozenset())
        self.items: dict[str, QueuedPod] = {}
        self._heap: list[tuple[int, str, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._move_cycle = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._unschedulable: set[str] = set()  # keys waiting in the unschedulable set

    def __len__(self) -> int:
        return len(self.items)

    def where(self, key: str) -> str | None:
        qp = self.items.get(key)
        return qp.where if qp else None

    def _push_active(self, key: str, qp: QueuedPod) -> None:
        self._unschedulable.discard(key)
        qp.where = "active"
        qp.seq = next(self._seq)
        ts = str(qp.pod["metadata"].get("creationTimestamp") or "")
        heapq.heappush(self._heap, (-self.priority_of(qp.pod), ts, qp.seq, key))
        self._wake.set()

    def add(self, pod: Obj) -> None:
        """A new or updated pending pod."""
        key = pod_key(pod)
        qp = self.items.get(key)
        if qp is None:
            qp = QueuedPod(pod)
            self.items[key] = qp
            self._push_active(key, qp)
            return
        qp.pod = pod
        if qp.where == "flight":
            qp.dirty = True
        elif qp.where == "unschedulable":
            self._to_backoff(key, qp)
        elif qp.where == "active":
            self._push_active(key, qp)  # the old heap entry goes stale (priority may have changed)

    def update(self, pod: Obj, significant: bool) -> None:
        """An update of a queued pod: an unschedulable pod whose update is not
        ``significant`` (only its status or bookkeeping changed — e.g. the
        scheduler's own ``PodScheduled`` write) keeps waiting with the new
        object; anything else is :meth:`add`."""
        qp = self.items.get(pod_key(pod))
        if qp is not None and qp.where == "unschedulable" and not significant:
            qp.pod = pod
            return
        self.add(pod)

    def delete(self, key: str) -> None:
        self.items.pop(key, None)
        self._unschedulable.discard(key)
        t = self._timers.pop(key, None)
        if t is not None:
            t.cancel()

    async def pop(self) -> tuple[Obj, int]:
        """The next pod and its attempt number (1 = first)."""
        while True:
            while self._heap:
                _, _, seq, key = heapq.heappop(self._heap)
                qp = self.items.get(key)
                if qp is None or qp.where != "active" or qp.seq != seq:
                    continue
                qp.where = "flight"
                qp.attempts += 1
                qp.dirty = False
                qp.popped_cycle = self._move_cycle
                return qp.pod, qp.attempts
            self._wake.clear()
            await self._wake.wait()

    def done(self, key: str) -> None:
        """Scheduled (or no longer ours): forget it unless it changed meanwhile."""
        qp = self.items.get(key)
        if qp is None or qp.where != "flight":
            return
        if qp.dirty:
            qp.attempts = 0
            self._push_active(key, qp)
        else:
            del self.items[key]

    def backoff_for(self, attempts: int) -> float:
        return min(self.max_backoff, self.initial_backoff * 2 ** max(0, attempts - 1))

    def _to_backoff(self, key: str, qp: QueuedPod) -> None:
        self._unschedulable.discard(key)
        qp.where = "backoff"
        delay = self.backoff_for(qp.attempts) - (time.monotonic() - qp.since)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        if delay <= 0:
            self._push_active(key, qp)
            return
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._backoff_done, key)

    def _backoff_done(self, key: str) -> None:
        self._timers.pop(key, None)
        qp = self.items.get(key)
        if qp is not None and qp.where == "backoff":
            self._push_active(key, qp)

    def requeue_backoff(self, key: str) -> None:
        """An error (not a verdict): try again after backoff."""
        qp = self.items.get(key)
        if qp is None or qp.where != "flight":
            return
        qp.since = time.monotonic()
        self._to_backoff(key, qp)

    def add_unschedulable(self, key: str, rejected_by: frozenset[str]) -> None:
        qp = self.items.get(key)
        if qp is None or qp.where != "flight":
            return
        qp.since = time.monotonic()
        qp.rejected_by = rejected_by
        if qp.dirty or qp.popped_cycle != self._move_cycle:
            self._to_backoff(key, qp)
            return
        qp.where = "unschedulable"
        self._unschedulable.add(key)

    @property
    def unschedulable_keys(self) -> list[str]:
        return list(self._unschedulable)

    def move_on_event(self, event: str, hint: Callable[[str, Obj], bool] | None = None) -> int:
        """Retry unschedulable pods a rejecting plugin of which declared ``event``
        (and, given a ``hint``, for which ``hint(key, pod)`` holds)."""
        self._move_cycle += 1
        moved = 0
        now = time.monotonic()
        for key in list(self._unschedulable):
            qp = self.items.get(key)
            if qp is None or qp.where != "unschedulable":
                self._unschedulable.discard(key)
                continue
            if now - qp.since > self.unschedulable_timeout:
                self._to_backoff(key, qp)
                moved += 1
                continue
            if qp.rejected_by and not any(event in self.plugin_events(p) for p in qp.rejected_by):
                continue
            if hint is not None and not hint(key, qp.pod):
                continue
            self._to_backoff(key, qp)
            moved += 1
        return moved

    def flush_unschedulable(self) -> None:
        """Periodic: pods unschedulable for longer than the timeout are retried."""
        now = time.monotonic()
        for key in list(self._unschedulable):
            qp = self.items.get(key)
            if qp is None:
                self._unschedulable.discard(key)
            elif qp.where == "unschedulable" and now - qp.since > self.unschedulable_timeout:
                self._to_backoff(key, qp)

    def close(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
