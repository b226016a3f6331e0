"""Per-key exponential backoff, as the kubelet uses for crash loops and image pulls.

:class:`Backoff` mirrors client-go's ``flowcontrol.Backoff``: the first
:meth:`Backoff.next` for a key sets a delay of ``initial`` (10 s); each further
one doubles it up to ``maximum`` (5 min). When the event that calls
:meth:`Backoff.next` comes more than ``2 * maximum`` (10 min) after the
previous update — the container ran that long — the entry is reset to
``initial``. :meth:`Backoff.in_backoff_since` answers the kubelet's question
"did this container finish less than the current delay ago?".

Times are unix seconds (``finishedAt`` of the container), so a restart of
the agent keeps working from the container statuses it recovers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

CRASH_INITIAL = 10.0
CRASH_MAX = 300.0


@dataclass(slots=True)
class _Entry:
    delay: float
    last_update: float


class Backoff:
    """Exponential backoff per key; see the module docstring."""

    def __init__(self, initial: float = CRASH_INITIAL, maximum: float = CRASH_MAX,
                 clock: Callable[[], float] = time.time) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def _expired(self, event_time: float, entry: _Entry) -> bool:
        return event_time - entry.last_update > 2 * self.maximum

    def next(self, key: str, event_time: float | None = None) -> float:
        """Advance ``key``'s delay (first: ``initial``; then doubled, capped) and
        return it. ``event_time`` (default now) is when the triggering event happened."""
        t = self.clock() if event_time is None else event_time
        entry = self._entries.get(key)
        if entry is None or self._expired(t, entry):
            entry = self._entries[key] = _Entry(self.initial, t)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = t
        return entry.delay

    def get(self, key: str) -> float:
        """The current delay of ``key`` (0 when it has none)."""
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        """True when less than the current delay has passed since ``event_time``."""
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            return False
        return self.clock() - event_time < entry.delay

    def remaining(self, key: str, event_time: float) -> float:
        """Seconds until ``event_time + delay`` (0 when not backing off)."""
        if not self.in_backoff_since(key, event_time):
            return 0.0
        return max(0.0, event_time + self._entries[key].delay - self.clock())

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop every key starting with ``prefix`` (a pod's containers when it goes)."""
        for k in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[k]

    def gc(self) -> None:
        """Drop entries not updated for ``2 * maximum``."""
        now = self.clock()
        for k in [k for k, e in self._entries.items() if self._expired(now, e)]:
            del self._entries[k]


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for whole seconds: ``10s``, ``2m40s``, ``5m0s``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"
