"""Object-metadata helpers every controller uses: Kubernetes timestamps and controller references.

Timestamps are RFC 3339 in UTC with second precision (``metav1.Time``'s wire
form, ``2024-05-01T12:00:00Z``); :func:`parse_time` accepts any RFC 3339 text
and answers ``None`` for what is not one (controllers treat that as "unknown").
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.cache import controller_ref
from cloudlet.client.interface import Client, Obj, ResourceRef
from cloudlet.client.reconcile import Retry

__all__ = ["controller_ref", "now_rfc3339", "parse_time", "rfc3339", "set_owner_references"]


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


async def set_owner_references(client: Client, ref: ResourceRef, obj: Obj, refs: list[Obj]) -> Obj:
    """Replace ``obj``'s ownerReferences with ``refs`` only if it is still the object
    read (JSON patch ``test`` of uid and resourceVersion), as adoption and release
    must be (kube's ControllerRefManager). A changed or vanished object raises
    :class:`Retry`: the caller's next reconcile sees the fresh state."""
    meta = obj["metadata"]
    patch = [
        {"op": "test", "path": "/metadata/uid", "value": meta.get("uid")},
        {"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
        {"op": "replace" if "ownerReferences" in meta else "add", "path": "/metadata/ownerReferences", "value": refs},
    ]
    try:
        return await client.patch(ref, meta["name"], patch, "json", meta.get("namespace", ""))
    except APIError as e:
        if e.code in (404, 409, 422):
            raise Retry(f"{ref.plural} {meta.get('name')} changed while claiming it") from e
        raise
