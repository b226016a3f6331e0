"""EventRecorder: core/v1 Event shape, aggregation of identical events, best effort."""

from __future__ import annotations

from cloudlet.client.events import COMBINED_PREFIX, EventRecorder
from cloudlet.client.testing import CONFIGMAPS, EVENTS, NODES, local_api


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
