"""EventRecorder: core/v1 Event shape, aggregation of identical events, best
effort; the bounded write queue and its concurrent writers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cloudlet.client.events import COMBINED_PREFIX, EventRecorder
from cloudlet.client.testing import CONFIGMAPS, EVENTS, NODES, local_api


def cm(name: str) -> dict[str, Any]:
    """An involved object (it need not exist; its namespace must)."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}"}}


async def test_event_shape_and_aggregation() -> None:
    async with local_api() as (_s, _a, client):
        obj = await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}})
        rec = EventRecorder(client, "test-controller", host="node-1")
        ev = await rec.event(obj, "Normal", "Synced", "all good")
        assert ev is not None
        assert ev["metadata"]["namespace"] == "default" and ev["metadata"]["name"].startswith("c.")
        assert ev["involvedObject"] == {
            "kind": "ConfigMap", "apiVersion": "v1", "namespace": "default", "name": "c",
            "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
        }
        assert ev["reason"] == "Synced" and ev["message"] == "all good" and ev["type"] == "Normal"
        assert ev["source"] == {"component": "test-controller", "host": "node-1"}
        assert ev["reportingComponent"] == "test-controller" and ev["reportingInstance"] == "node-1"
        assert ev["count"] == 1 and ev["firstTimestamp"] == ev["lastTimestamp"]

        again = await rec.event(obj, "Normal", "Synced", "all good")
        third = await rec.event(obj, "Normal", "Synced", "all good")
        assert again["metadata"]["name"] == ev["metadata"]["name"] and third["count"] == 3
        other = await rec.event(obj, "Warning", "Failed", "boom")
        assert other["metadata"]["name"] != ev["metadata"]["name"] and other["count"] == 1
        assert len((await client.list(EVENTS, "default"))["items"]) == 2

        # the aggregated Event was deleted: it comes back with the running count
        await client.delete(EVENTS, ev["metadata"]["name"], "default")
        fourth = await rec.event(obj, "Normal", "Synced", "all good")
        assert fourth["count"] == 4 and fourth["firstTimestamp"] == ev["firstTimestamp"]


async def test_cluster_scoped_objects_and_failures_are_tolerated() -> None:
    async with local_api() as (_s, _a, client):
        node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        rec = EventRecorder(client, "kubelet")
        ev = await rec.event(node, "Normal", "Starting", "Starting kubelet.")
        assert ev["metadata"]["namespace"] == "default" and "namespace" not in ev["involvedObject"]
        assert await rec.event(node, "Bogus", "X", "y") is None  # unsupported type: dropped
        ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "g", "namespace": "missing"}}
        assert await rec.event(ghost, "Normal", "X", "y") is None  # namespace absent: logged, no raise
        assert rec.failed == 1
        rec.emit(node, "Warning", "Later", "in the background")
        await rec.flush()
        reasons = sorted(e["reason"] for e in (await client.list(EVENTS, "default"))["items"])
        assert reasons == ["Later", "Starting"]


async def test_similar_events_are_combined_and_spam_is_dropped() -> None:
    async with local_api() as (_s, _a, client):
        obj = await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}})
        rec = EventRecorder(client, "ctrl", spam_burst=14)
        for i in range(12):  # 12 different messages, one reason
            await rec.event(obj, "Warning", "SyncFailed", f"attempt {i} failed")
        events = (await client.list(EVENTS, "default"))["items"]
        combined = [e for e in events if e["message"].startswith(COMBINED_PREFIX)]
        assert len(events) == 10 and len(combined) == 1  # 9 distinct, then one combined event
        assert combined[0]["count"] == 3 and combined[0]["message"] == COMBINED_PREFIX + "attempt 11 failed"
        # the per-object spam filter: 14 tokens, 12 spent; then events are dropped
        assert await rec.event(obj, "Normal", "A", "a") is not None
        assert await rec.event(obj, "Normal", "A", "a") is not None
        assert await rec.event(obj, "Normal", "A", "a") is None and rec.dropped == 1
        other = await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "namespace": "default"}})
        ev = await rec.event(other, "Normal", "A", "a", annotations={"example.com/trace": "t1"})
        assert ev is not None and ev["metadata"]["annotations"] == {"example.com/trace": "t1"}


async def test_queue_is_bounded_drops_newest_and_logs_once(caplog) -> None:
    async with local_api() as (_s, _a, client):
        rec = EventRecorder(client, "ctrl", max_queued=3)
        with caplog.at_level(logging.WARNING, logger="cloudlet.events"):
            for i in range(5):
                rec.emit(cm(f"o{i}"), "Normal", "Synced", "ok")
        assert rec.queue_dropped == 2 and rec.pending == 3
        assert [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()] == [
            "event queue full (3 events waiting): dropping events, 1 dropped so far"]  # once per interval, not per drop
        await rec.flush()
        assert rec.pending == 0 and rec.written == 3
        stored = sorted(e["involvedObject"]["name"] for e in (await client.list(EVENTS, "default"))["items"])
        assert stored == ["o0", "o1", "o2"]  # the newest were dropped
        rec.emit(cm("o9"), "Normal", "Synced", "ok")  # drained: accepted again
        await rec.flush()
        assert rec.written == 4 and rec.queue_dropped == 2


async def test_queue_drops_do_not_spend_spam_tokens() -> None:
    async with local_api() as (_s, _a, client):
        rec = EventRecorder(client, "ctrl", max_queued=2, spam_burst=3)
        obj = cm("c")
        for reason in ("A", "B", "C", "D"):
            rec.emit(obj, "Normal", reason, "x")
        assert rec.queue_dropped == 2 and rec.dropped == 0
        await rec.flush()
        assert await rec.event(obj, "Normal", "E", "x") is not None  # the third token
        assert await rec.event(obj, "Normal", "F", "x") is None and rec.dropped == 1


class _Observed:
    """The real LocalClient, wrapped only to observe how many writes are in
    flight at once; every call reaches the real API."""

    def __init__(self, client: Any) -> None:
        self.client, self.now, self.peak, self.calls = client, 0, 0, 0

    async def _call(self, method: str, *args: Any) -> Any:
        self.now += 1
        self.calls += 1
        self.peak = max(self.peak, self.now)
        try:
            return await getattr(self.client, method)(*args)
        finally:
            self.now -= 1

    async def create(self, *args: Any) -> Any:
        return await self._call("create", *args)

    async def patch(self, *args: Any) -> Any:
        return await self._call("patch", *args)


async def test_writers_overlap_and_repeats_fold_into_one_count() -> None:
    async with local_api() as (_s, _a, client):
        observed = _Observed(client)
        rec = EventRecorder(observed, "ctrl", workers=4, spam_burst=100)  # type: ignore[arg-type]
        hot = cm("hot")
        for i in range(40):
            rec.emit(cm(f"o{i}"), "Normal", "Scheduled", f"assigned o{i}")
            rec.emit(hot, "Warning", "BackOff", "Back-off restarting failed container")
        await rec.flush()
        assert 2 <= observed.peak <= 4  # writes overlap, at most `workers` at once
        events = (await client.list(EVENTS, "default"))["items"]
        assert len(events) == 41 and rec.written == 80 and rec.failed == 0
        (backoff,) = [e for e in events if e["reason"] == "BackOff"]
        assert backoff["count"] == 40 and backoff["involvedObject"]["name"] == "hot"
        assert observed.calls == rec.writes < 80  # repeats waiting behind a write were folded

        # awaited concurrently: every caller gets the Event that carries its occurrence
        got = await asyncio.gather(*(rec.event(hot, "Warning", "BackOff", "Back-off restarting failed container")
                                     for _ in range(10)))
        assert all(g is not None and g["metadata"]["name"] == backoff["metadata"]["name"] for g in got)
        assert max(g["count"] for g in got if g) == 50


async def test_flush_waits_for_events_recorded_meanwhile_and_shutdown_discards() -> None:
    async with local_api() as (_s, _a, client):
        rec = EventRecorder(client, "ctrl")
        rec.emit(cm("a"), "Normal", "First", "x")
        flushing = asyncio.create_task(rec.flush())
        await asyncio.sleep(0)
        rec.emit(cm("b"), "Normal", "Second", "x")
        await flushing
        assert rec.pending == 0 and rec.written == 2

        for i in range(20):
            rec.emit(cm(f"d{i}"), "Normal", "Discarded", "x")
        waiter = asyncio.create_task(rec.event(cm("e"), "Normal", "Discarded", "x"))
        await asyncio.sleep(0)
        rec.shutdown()
        assert await asyncio.wait_for(waiter, 30) is None
        await asyncio.wait_for(rec.flush(), 30)
        assert rec.pending == 0 and rec.written == 2
        rec.emit(cm("f"), "Normal", "After", "x")  # recording starts again
        await rec.flush()
        assert rec.written == 3
        reasons = [e["reason"] for e in (await client.list(EVENTS, "default"))["items"]]
        # only writes already in flight (one per writer) may have landed
        assert "After" in reasons and reasons.count("Discarded") <= rec.workers
