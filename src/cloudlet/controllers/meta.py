"""Object-metadata helpers every controller uses: Kubernetes timestamps and controller references.

Timestamps are RFC 3339 in UTC with second precision (``metav1.Time``'s wire
form, ``2024-05-01T12:00:00Z``); :func:`parse_time` accepts any RFC 3339 text
and answers ``None`` for what is not one (controllers treat that as "unknown").
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from cloudlet.client.cache import controller_ref

__all__ = ["controller_ref", "now_rfc3339", "parse_time", "rfc3339"]


def rfc3339(ts: float | None = None) -> str:
    """``ts`` (unix seconds; default now) as a Kubernetes timestamp."""
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339()


def parse_time(value: Any) -> float | None:
    """Unix seconds of an RFC 3339 timestamp; ``None`` when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
