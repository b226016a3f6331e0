"""Event recorder benchmark: core/v1 Events written through a LocalClient.

Each case runs an :class:`~cloudlet.client.events.EventRecorder` on a fresh
API (an in-memory store, and an SQLite store with ``synchronous=FULL`` as
``cloudlet up`` runs it, where every commit is an fsync) and reports:

* **sustained** — ``--producers`` tasks each awaiting ``event()`` for
  distinct objects until ``--events`` are recorded: events/s (every event is
  a create);
* **hot** — the same producers on 10 objects repeating one event each (a
  crash-looping pod's ``BackOff``): events/s and how many API writes the
  recorder needed (repeats waiting behind a write fold into one ``count``
  patch);
* **burst** — ``--events`` ``emit()`` calls for distinct objects at once,
  then ``flush()``: how many were written and dropped (the queue holds 1 000,
  client-go's ``maxQueuedEvents``) and the time to drain.

Writer counts (``--workers``, default ``1,4,8``): ``1`` is the baseline, a
single serial writer, which is how the recorder wrote before it had a writer
pool (measured in the same run); ``default`` builds the recorder with its
own defaults (so the script also runs against an older recorder).

Prints a table and writes JSON to bench/results/events.json.
Usage: python bench/events.py [--events 5000] [--producers 64] [--workers 1,4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cloudlet.resources  # noqa: F401
from cloudlet.api.objects import ObjectAPI
from cloudlet.client.events import EventRecorder
from cloudlet.client.interface import ResourceRef
from cloudlet.client.local import LocalClient
from cloudlet.client.testing import local_api
from cloudlet.resources.registry import REGISTRY
from cloudlet.store.sqlite import SQLiteBackend
from cloudlet.store.store import Store

EVENTS = ResourceRef("", "v1", "events")
NAMESPACES = ResourceRef("", "v1", "namespaces")


def involved(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i}", "namespace": "default", "uid": f"uid-{i}", "resourceVersion": "1"}}


@contextlib.asynccontextmanager
async def api(kind: str) -> AsyncIterator[LocalClient]:
    if kind == "memory":
        async with local_api(REGISTRY, min_history=100_000) as (_s, _a, client):
            yield client
        return
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-events-") as tmp:
        backend = await asyncio.to_thread(SQLiteBackend, os.path.join(tmp, "state.db"))
        store = Store(backend, min_history=100_000)
        await store.start()
        try:
            client = LocalClient(ObjectAPI(store, REGISTRY))
            await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
            yield client
        finally:
            await store.stop()  # closes the backend


def recorder(client: LocalClient, workers: str) -> EventRecorder:
    if workers == "default":
        return EventRecorder(client, "bench", spam_burst=10**9)
    return EventRecorder(client, "bench", spam_burst=10**9, workers=int(workers))  # type: ignore[call-arg]


async def stored(client: LocalClient) -> tuple[int, int]:
    """(Event objects, sum of their counts) in the namespace."""
    items = (await client.list(EVENTS, "default"))["items"]
    return len(items), sum(int(e.get("count") or 1) for e in items)


async def sustained(kind: str, workers: str, n: int, producers: int, hot: bool) -> dict[str, Any]:
    async with api(kind) as client:
        rec = recorder(client, workers)
        it = iter(range(n))

        async def produce() -> None:
            for i in it:
                if hot:
                    await rec.event(involved(i % 10), "Warning", "BackOff", "Back-off restarting failed container")
                else:
                    await rec.event(involved(i), "Normal", "Scheduled", f"Successfully assigned default/pod-{i}")

        t0 = time.perf_counter()
        await asyncio.gather(*(produce() for _ in range(producers)))
        await rec.flush()
        wall = time.perf_counter() - t0
        objects, occurrences = await stored(client)
        return {"case": "hot" if hot else "sustained", "store": kind, "workers": workers, "events": n,
                "events_per_s": round(n / wall, 1), "wall_s": round(wall, 3), "event_objects": objects,
                "occurrences_stored": occurrences, "api_writes": getattr(rec, "writes", None)}


async def burst(kind: str, workers: str, n: int) -> dict[str, Any]:
    async with api(kind) as client:
        rec = recorder(client, workers)
        t0 = time.perf_counter()
        for i in range(n):
            rec.emit(involved(i), "Normal", "Scheduled", f"Successfully assigned default/pod-{i}")
        t_emit = time.perf_counter() - t0
        await rec.flush()
        wall = time.perf_counter() - t0
        objects, _ = await stored(client)
        return {"case": "burst", "store": kind, "workers": workers, "events": n, "written": objects,
                "dropped": getattr(rec, "queue_dropped", 0), "emit_ms": round(1000 * t_emit, 1),
                "drain_s": round(wall, 3), "written_per_s": round(objects / wall, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    load0 = os.getloadavg()
    rows: list[dict[str, Any]] = []
    for kind in args.stores.split(","):
        for workers in args.workers.split(","):
            for row in (await sustained(kind, workers, args.events, args.producers, hot=False),
                        await sustained(kind, workers, args.events, args.producers, hot=True),
                        await burst(kind, workers, args.events)):
                print(row, flush=True)
                rows.append(row)
    return {"benchmark": "events", "events": args.events, "producers": args.producers,
            "loadavg_start": load0, "loadavg_end": os.getloadavg(), "results": rows}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--producers", type=int, default=64)
    ap.add_argument("--workers", default="1,4,8")
    ap.add_argument("--stores", default="memory,sqlite")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "events.json"))
    cli = ap.parse_args(sys.argv[1:])
    out = asyncio.run(main(cli))
    Path(cli.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cli.out).write_text(json.dumps(out, indent=2) + "\n")
