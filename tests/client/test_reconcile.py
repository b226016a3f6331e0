"""The Controller runner: outcomes of reconcile and what happens to the key."""

from __future__ import annotations

import asyncio
from collections import Counter

from cloudlet.api import errors
from cloudlet.client.informer import Informer
from cloudlet.client.reconcile import Controller, Permanent, Result, Retry
from cloudlet.client.testing import CONFIGMAPS, eventually, local_api
from cloudlet.client.workqueue import ExponentialBackoff, WorkQueue


def fast_queue() -> WorkQueue[str]:
    return WorkQueue("t", ExponentialBackoff(base=0.001, cap=0.01))


async def run_until(ctrl: Controller[str], cond, within: float = 2.0) -> None:
    task = asyncio.create_task(ctrl.run())
    try:
        await eventually(cond, within)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_retry_backs_off_then_success_forgets() -> None:
    calls: Counter[str] = Counter()

    async def reconcile(key: str) -> Result | None:
        calls[key] += 1
        if calls[key] < 4:
            raise Retry("not yet")
        return None

    ctrl = Controller("t", reconcile, queue=fast_queue())
    ctrl.enqueue("a")
    await run_until(ctrl, lambda: calls["a"] >= 4 and ctrl.reconciles >= 4)
    assert ctrl.queue.num_requeues("a") == 0  # forgotten after success


async def test_unexpected_errors_are_retried_permanent_is_not() -> None:
    calls: Counter[str] = Counter()

    async def reconcile(key: str) -> None:
        calls[key] += 1
        if key == "bug" and calls[key] < 3:
            raise RuntimeError("boom")
        if key == "api" and calls[key] < 3:
            raise errors.conflict("configmaps", "", "x")
        if key == "perm":
            raise Permanent("bad spec")

    ctrl = Controller("t", reconcile, queue=fast_queue(), workers=3)
    for k in ("bug", "api", "perm"):
        ctrl.enqueue(k)
    await run_until(ctrl, lambda: calls["bug"] >= 3 and calls["api"] >= 3)
    await asyncio.sleep(0.05)
    assert calls["perm"] == 1


async def test_requeue_after() -> None:
    calls: Counter[str] = Counter()

    async def reconcile(key: str) -> Result:
        calls[key] += 1
        return Result(requeue_after=0.01) if calls[key] < 3 else Result()

    ctrl = Controller("t", reconcile, queue=fast_queue())
    ctrl.enqueue("a")
    await run_until(ctrl, lambda: calls["a"] >= 3)
    await asyncio.sleep(0.05)
    assert calls["a"] == 3


async def test_one_key_never_reconciled_concurrently() -> None:
    running: set[str] = set()
    overlap = False
    done = 0

    async def reconcile(key: str) -> None:
        nonlocal overlap, done
        if key in running:
            overlap = True
        running.add(key)
        await asyncio.sleep(0.002)
        running.discard(key)
        done += 1

    ctrl = Controller("t", reconcile, workers=4, queue=fast_queue())

    async def producer() -> None:
        for _ in range(100):
            ctrl.enqueue("same")
            ctrl.enqueue("other")
            await asyncio.sleep(0.001)

    prod = asyncio.create_task(producer())
    await run_until(ctrl, lambda: prod.done() and done >= 10)
    assert not overlap


async def test_stop_returns_run() -> None:
    async def reconcile(key: str) -> None:
        return None

    ctrl = Controller("t", reconcile)
    task = asyncio.create_task(ctrl.run())
    ctrl.enqueue("a")
    await asyncio.sleep(0.01)
    ctrl.stop()
    await asyncio.wait_for(task, 1)
    assert ctrl.reconciles == 1


def cm(name: str, owner: dict | None = None, **labels: str) -> dict:
    meta: dict = {"name": name, "namespace": "default", "labels": labels}
    if owner is not None:
        m = owner["metadata"]
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": m["name"], "uid": m["uid"], "controller": True}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


async def test_watch_predicate_owned_and_waits_for_sync() -> None:
    async with local_api() as (_store, _api, client):
        src = await client.create(CONFIGMAPS, cm("src", app="yes"))
        await client.create(CONFIGMAPS, cm("plain"))
        inf = Informer(client, CONFIGMAPS)
        seen: list[tuple[str, int]] = []

        async def reconcile(key: str) -> None:
            assert inf.has_synced  # workers start only once the cache is filled
            seen.append((key, len(inf)))

        ctrl = Controller("t", reconcile, queue=fast_queue())
        ctrl.watch(inf, predicate=lambda o: (o["metadata"].get("labels") or {}).get("app") == "yes")
        ctrl.watch_owned(inf, "ConfigMap")
        run = asyncio.create_task(ctrl.run())
        await asyncio.sleep(0.05)
        assert seen == []  # the informer is not running yet
        inf_task = asyncio.create_task(inf.run())
        await eventually(lambda: seen == [("default/src", 2)])
        await client.create(CONFIGMAPS, cm("child", owner=src))  # owned: its owner's key
        await eventually(lambda: len(seen) == 2)
        await client.patch(CONFIGMAPS, "plain", {"data": {"x": "1"}}, "merge", "default")  # filtered out
        await client.patch(CONFIGMAPS, "src", {"metadata": {"labels": {"app": "no"}}}, "merge", "default")
        await eventually(lambda: len(seen) == 3)  # stopped matching: still seen
        await client.delete(CONFIGMAPS, "child", "default")
        await eventually(lambda: len(seen) == 4)
        await asyncio.sleep(0.05)
        assert [k for k, _ in seen] == ["default/src"] * 4
        ctrl.stop()
        await asyncio.wait_for(run, 1)
        inf.stop()
        await inf_task
