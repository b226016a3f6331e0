"""Scheduler benchmark: scheduler_perf's "SchedulingBasic" shape, and preemption.

In one process: an in-memory store, the object API, a ``LocalClient`` and the
:class:`cloudlet.scheduler.Scheduler`. Nodes are plain Node objects with
allocatable resources (no heartbeat: nothing else runs).

* **basic** — N nodes (default 5 000; 32 cpu, 256Gi, 110 pods), P pods
  already placed (default 1 000, bound through the scheduler and not
  measured), then M pods (default 10 000) created by concurrent writers and
  measured: pods/s from the first create to the last bound, and per-pod
  latency from creation to the bound event (p50/p99), plus the RSS.
* **preemption** — 500 nodes of 4 cpu filled by 1 000 low-priority pods
  (2 cpu each), then 500 high-priority pods of 2 cpu: pods/s from the first
  high-priority create until every one is bound (victims are force-deleted
  as soon as they are marked, standing in for the kubelets).

Prints a summary and writes JSON to bench/results/scheduler.json.
Usage: python bench/scheduler.py [--nodes 5000] [--placed 1000] [--pods 10000] [--skip-preemption]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path
from typing import Any

import cloudlet.resources  # noqa: F401
from cloudlet.client.interface import ResourceRef
from cloudlet.client.testing import local_api
from cloudlet.resources.registry import REGISTRY
from cloudlet.scheduler import Scheduler

PODS = ResourceRef("", "v1", "pods")
NODES = ResourceRef("", "v1", "nodes")
PCS = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses")


def node(i: int, cpu: str, memory: str, pods: str) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"node-{i}", "labels": {"kubernetes.io/hostname": f"node-{i}"}},
            "status": {"capacity": alloc, "allocatable": alloc, "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str = "100m", memory: str = "100Mi", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "pause",
                                     "resources": {"requests": {"cpu": cpu, "memory": memory}}}], **spec}}


async def create_all(client: Any, objs: list[dict[str, Any]], ref: ResourceRef, writers: int = 16) -> None:
    it = iter(objs)

    async def w() -> None:
        for o in it:
            await client.create(ref, o)

    await asyncio.gather(*(w() for _ in range(writers)))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def basic(n_nodes: int, placed: int, n_pods: int) -> dict[str, Any]:
    async with local_api(REGISTRY, min_history=10_000) as (_s, _api, client):
        await create_all(client, [node(i, "32", "256Gi", "110") for i in range(n_nodes)], NODES)
        sched = Scheduler(client)
        created: dict[str, float] = {}
        bound_at: dict[str, float] = {}

        def on_update(old: dict, new: dict) -> None:
            name = new["metadata"]["name"]
            if new["spec"].get("nodeName") and not old["spec"].get("nodeName"):
                bound_at[name] = time.perf_counter()

        sched.pods.add_handler(on_update=on_update)
        task = asyncio.create_task(sched.run())
        await create_all(client, [pod(f"init-{i}") for i in range(placed)], PODS)
        while sum(1 for k in bound_at if k.startswith("init-")) < placed:  # noqa: ASYNC110 (bench polling)
            await asyncio.sleep(0.05)
        names = [f"p-{i}" for i in range(n_pods)]
        t0 = time.perf_counter()
        it = iter(names)

        async def w() -> None:
            for nm in it:
                created[nm] = time.perf_counter()
                await client.create(PODS, pod(nm))

        await asyncio.gather(*(w() for _ in range(16)))
        while sum(1 for k in names if k in bound_at) < n_pods:  # noqa: ASYNC110 (bench polling)
            await asyncio.sleep(0.05)
        t1 = max(bound_at[k] for k in names)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        lat = sorted(bound_at[k] - created[k] for k in names)
        return {"nodes": n_nodes, "placed": placed, "pods": n_pods,
                "pods_per_s": round(n_pods / (t1 - t0), 1),
                "latency_avg_ms": round(1000 * sum(lat) / len(lat), 2),
                "latency_p50_ms": round(1000 * lat[len(lat) // 2], 2),
                "latency_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2),
                "rss_mb": round(rss_mb(), 1)}


async def preempt(n_nodes: int = 500, low: int = 1000, high: int = 500) -> dict[str, Any]:
    async with local_api(REGISTRY, min_history=10_000) as (_s, _api, client):
        await create_all(client, [node(i, "4", "16Gi", "110") for i in range(n_nodes)], NODES)
        for name, value in (("low", 10), ("high", 1000)):
            await client.create(PCS, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                      "metadata": {"name": name}, "value": value})
        sched = Scheduler(client)
        bound: set[str] = set()
        victims: asyncio.Queue[str] = asyncio.Queue()

        def on_update(old: dict, new: dict) -> None:
            if new["spec"].get("nodeName") and not old["spec"].get("nodeName"):
                bound.add(new["metadata"]["name"])
            if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
                victims.put_nowait(new["metadata"]["name"])

        async def kubelet() -> None:
            while True:
                name = await victims.get()
                try:
                    await client.delete(PODS, name, "default", grace_period_seconds=0)
                except Exception:
                    pass

        sched.pods.add_handler(on_update=on_update)
        task = asyncio.create_task(sched.run())
        kl = asyncio.create_task(kubelet())
        await create_all(client, [pod(f"low-{i}", cpu="2", priorityClassName="low") for i in range(low)], PODS)
        while sum(1 for k in bound if k.startswith("low-")) < low:  # noqa: ASYNC110 (bench polling)
            await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        await create_all(client, [pod(f"high-{i}", cpu="2", priorityClassName="high") for i in range(high)], PODS)
        while sum(1 for k in bound if k.startswith("high-")) < high:  # noqa: ASYNC110 (bench polling)
            await asyncio.sleep(0.05)
        dt = time.perf_counter() - t0
        for t in (task, kl):
            t.cancel()
        await asyncio.gather(task, kl, return_exceptions=True)
        return {"nodes": n_nodes, "low": low, "high": high, "pods_per_s": round(high / dt, 1)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--placed", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--skip-preemption", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"basic": await basic(args.nodes, args.placed, args.pods)}
    print("basic", out["basic"], flush=True)
    if not args.skip_preemption:
        out["preemption"] = await preempt()
        print("preemption", out["preemption"], flush=True)
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    (res / "scheduler.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
