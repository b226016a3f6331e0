"""The scheduling queue: order, backoff, the unschedulable set and events."""

from __future__ import annotations

import asyncio

from cloudlet.scheduler.framework import NODE_ADD, NODE_UPDATE, POD_DELETE
from cloudlet.scheduler.queue import SchedulingQueue


def p(name: str, prio: int = 0, ts: str = "2024-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": ts}, "spec": {"priority": prio}}


def queue(**kw) -> SchedulingQueue:
    events = {"Fit": frozenset({NODE_ADD, POD_DELETE}), "Taint": frozenset({NODE_UPDATE})}
    return SchedulingQueue(lambda pod: pod["spec"]["priority"], plugin_events=lambda n: events.get(n, frozenset()), **kw)


async def test_priority_then_creation_order():
    q = queue()
    q.add(p("late", 0, "2024-01-02T00:00:00Z"))
    q.add(p("early", 0, "2024-01-01T00:00:00Z"))
    q.add(p("high", 100, "2024-01-03T00:00:00Z"))
    names = [(await q.pop())[0]["metadata"]["name"] for _ in range(3)]
    assert names == ["high", "early", "late"]


async def test_pop_waits_and_update_keeps_one_entry():
    q = queue()
    getter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.add(p("a"))
    q.add(p("a", 5))
    pod, attempt = await asyncio.wait_for(getter, 1)
    assert pod["metadata"]["name"] == "a" and attempt == 1
    assert len(q) == 1 and q.where("ns/a") == "flight"
    q.done("ns/a")
    assert len(q) == 0


async def test_unschedulable_moves_only_on_declared_events():
    q = queue(initial_backoff=0.01)
    q.add(p("a"))
    await q.pop()
    q.add_unschedulable("ns/a", frozenset({"Taint"}))
    assert q.where("ns/a") == "unschedulable"
    assert q.move_on_event(POD_DELETE) == 0
    assert q.move_on_event(NODE_UPDATE) == 1
    pod, attempt = await asyncio.wait_for(q.pop(), 1)
    assert attempt == 2


async def test_event_during_flight_sends_to_backoff():
    q = queue(initial_backoff=0.01)
    q.add(p("a"))
    await q.pop()
    q.move_on_event(NODE_ADD)
    q.add_unschedulable("ns/a", frozenset({"Taint"}))
    assert q.where("ns/a") == "backoff"
    await asyncio.wait_for(q.pop(), 1)


async def test_backoff_grows_and_caps():
    q = queue(initial_backoff=1.0, max_backoff=10.0)
    assert [q.backoff_for(n) for n in (1, 2, 3, 4, 5, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


async def test_update_while_in_flight_requeues_after_done():
    q = queue()
    q.add(p("a"))
    await q.pop()
    q.add(p("a", 1))
    q.done("ns/a")
    assert q.where("ns/a") == "active"
    q.delete("ns/a")
    assert len(q) == 0
