"""WorkQueue semantics: dedup, per-key serialisation, delays, backoff, forget, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from cloudlet.client.testing import eventually
from cloudlet.client.workqueue import (
    BucketRateLimiter,
    ExponentialBackoff,
    MaxOfRateLimiter,
    ShutDown,
    WorkQueue,
    default_rate_limiter,
)


async def test_dedup_and_fifo() -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in ("a", "b", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_added_while_processing_is_requeued_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")  # arrives while "a" is being processed
    q.add("a")
    assert len(q) == 0  # not handed to anyone else meanwhile
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_never_processed_by_two_workers_at_once() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    overlaps = 0
    processed: list[int] = []

    async def worker() -> None:
        nonlocal overlaps
        while True:
            try:
                k = await q.get()
            except ShutDown:
                return
            if k in active:
                overlaps += 1
            active.add(k)
            await asyncio.sleep(0.001)
            if len(processed) < 200:
                q.add(k)  # re-add while processing: must wait for done()
            processed.append(k)
            active.discard(k)
            q.done(k)

    for k in range(3):
        q.add(k)
    workers = [asyncio.create_task(worker()) for _ in range(8)]
    await eventually(lambda: len(processed) >= 200)
    q.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == 0
    assert set(processed) == {0, 1, 2}


async def test_add_after_collapses_to_earliest() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0.2)
    q.add_after("a", 0.02)
    q.add_after("a", 0.5)
    assert q.pending_delayed() == 1
    assert len(q) == 0
    t0 = asyncio.get_running_loop().time()
    assert await q.get() == "a"
    assert asyncio.get_running_loop().time() - t0 < 0.15
    q.done("a")
    await asyncio.sleep(0.3)
    assert len(q) == 0  # the later delays were dropped


def test_exponential_backoff_and_forget() -> None:
    rl: ExponentialBackoff[str] = ExponentialBackoff()
    delays = [rl.when("k") for _ in range(5)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert rl.num_requeues("k") == 5
    assert rl.when("other") == pytest.approx(0.005)  # per key
    for _ in range(100):
        last = rl.when("k")
    assert last == 1000.0  # capped
    rl.forget("k")
    assert rl.num_requeues("k") == 0
    assert rl.when("k") == pytest.approx(0.005)


async def test_add_rate_limited_backs_off_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(rate_limiter=ExponentialBackoff(base=0.01, cap=1.0))
    loop = asyncio.get_running_loop()
    waits = []
    for _ in range(4):
        t0 = loop.time()
        q.add_rate_limited("k")
        assert await q.get() == "k"
        waits.append(loop.time() - t0)
        q.done("k")
    assert q.num_requeues("k") == 4
    assert waits[3] > waits[0] and waits[3] >= 0.07  # 0.01, 0.02, 0.04, 0.08
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_wakes_waiters_and_ignores_adds() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add_after("late", 10)
    q.shutdown()
    q.add("x")
    for g in getters:
        with pytest.raises(ShutDown):
            await g
    assert q.pending_delayed() == 0
    with pytest.raises(ShutDown):
        await q.get()


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    q: WorkQueue[str] = WorkQueue()
    g1 = asyncio.create_task(q.get())
    g2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("a")  # wakes g1 ...
    g1.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(g2, 1) == "a"


def test_bucket_limits_overall_retry_rate() -> None:
    rl: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=3)
    delays = [rl.when(f"k{i}") for i in range(6)]  # distinct keys: only the bucket counts
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:] == pytest.approx([0.1, 0.2, 0.3], abs=0.01)
    assert rl.num_requeues("k0") == 0
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=0)


def test_default_rate_limiter_is_max_of_backoff_and_bucket() -> None:
    rl = default_rate_limiter()
    assert isinstance(rl, MaxOfRateLimiter)
    assert rl.when("a") == pytest.approx(0.005) and rl.when("a") == pytest.approx(0.01)
    assert rl.num_requeues("a") == 2
    for i in range(200):  # a storm of failing keys runs into the 10/s bucket
        last = rl.when(f"storm-{i}")
    assert last > 5.0
    rl.forget("a")
    assert rl.num_requeues("a") == 0


async def test_shutdown_with_drain_waits_for_in_flight_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    key = await q.get()
    drained = asyncio.create_task(q.shutdown_with_drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    assert await q.get() == "b"  # queued keys are still handed out
    q.done(key)
    await asyncio.sleep(0.01)
    assert not drained.done()
    q.done("b")
    await asyncio.wait_for(drained, 1)
    with pytest.raises(ShutDown):
        await q.get()


async def test_counters() -> None:
    q: WorkQueue[str] = WorkQueue(rate_limiter=ExponentialBackoff(0.001, 0.001))
    q.add("a")
    q.add("a")  # deduplicated: not counted
    q.add_rate_limited("b")
    assert q.adds == 1 and q.retries == 1
    await eventually(lambda: len(q) == 2)
    assert q.adds == 2
