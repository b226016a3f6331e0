"""Scheduler benchmark: scheduler_perf's "SchedulingBasic" shape, and preemption.

Two setups (``--mode``; ``both``, the default, runs each in its own
interpreter so each RSS figure is its own):

* **server** — the full cloudlet server (``cloudlet.server.Server``, what
  ``cloudlet up --hollow-nodes N`` runs: SQLite store, HTTPS listener,
  controllers, node lifecycle, the in-process scheduler) with N hollow nodes
  that heartbeat their Leases and mark bound pods Running. Pods are created
  through an in-process ``LocalClient`` on the server's API (no HTTP).
* **inprocess** — scheduler_perf's own setup: an in-memory store, the object
  API and the scheduler only; nodes are plain Node objects (no kubelets, no
  controllers), as kube-scheduler's scheduler_perf uses.

Workloads:

* **basic** — N nodes (default 5 000; 32 cpu, 256Gi, 110 pods), P pods
  already placed (default 1 000, not measured), then M pods (default 10 000)
  created by 16 concurrent writers and measured: pods/s from the first
  create to the last bound, and per-pod latency from creation to the bound
  event (avg/p50/p99), plus the process RSS (with every pod bound; the
  process holds the server, the scheduler and the bench) and the CPU time
  over the measured window (``pods_per_cpu_s``: pods per CPU-second of this
  process, which a busy shared machine disturbs far less than wall-clock
  pods/s) and how many Events the scheduler dropped because 1 000 were
  already queued (client-go's rule) and how many it wrote. The **baseline** is the
  same run on 200 nodes (filtering and scoring are then trivial): the cost of
  the API, store, watch and binding path alone, measured in the same run.
* **preemption** — 500 nodes of 4 cpu filled by 1 000 low-priority pods
  (2 cpu each), then 500 high-priority pods of 2 cpu: pods/s from the first
  high-priority create until every one is bound (each preempts one victim;
  the victims' graceful deletions are finished by the hollow nodes in server
  mode, by a stand-in kubelet loop in inprocess mode).

Kubernetes' scheduler_perf thresholds for SchedulingBasic 5000 nodes are
270-680 pods/s on its CI machines. This machine is shared: the load average
at start and end is recorded with the results.

Prints a summary and writes JSON to bench/results/scheduler.json.
Usage: python bench/scheduler.py [--mode server|inprocess|both] [--nodes 5000]
       [--placed 1000] [--pods 10000] [--skip-preemption] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cloudlet.resources  # noqa: F401
from cloudlet.client.informer import Informer
from cloudlet.client.interface import ResourceRef
from cloudlet.client.local import LocalClient
from cloudlet.client.testing import local_api
from cloudlet.resources.registry import REGISTRY
from cloudlet.scheduler import Scheduler

PODS = ResourceRef("", "v1", "pods")
NODES = ResourceRef("", "v1", "nodes")
PCS = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses")
EVENTS = ResourceRef("", "v1", "events")
K8S_THRESHOLD = {"SchedulingBasic/5000Nodes_10000Pods": "270-680 pods/s (scheduler_perf CI thresholds)"}


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
    """The process's resident set now (MiB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Env:
    """A running API + scheduler with ``n`` nodes of the given size."""

    client: LocalClient
    scheduler: Scheduler
    kind: str


@contextlib.asynccontextmanager
async def inprocess_env(n: int, cpu: str, memory: str, pods: str, *, kubelet: bool = False) -> AsyncIterator[Env]:
    async with local_api(REGISTRY, min_history=10_000) as (_s, _api, client):
        await create_all(client, [node(i, cpu, memory, pods) for i in range(n)], NODES)
        env = Env()
        env.client, env.kind = client, "inprocess"
        env.scheduler = Scheduler(client)
        task = asyncio.create_task(env.scheduler.run())
        helper = asyncio.create_task(_stand_in_kubelet(client)) if kubelet else None
        try:
            while len(env.scheduler.cache.nodes) < n:  # noqa: ASYNC110 (bench polling)
                await asyncio.sleep(0.05)
            yield env
        finally:
            for t in (task, helper):
                if t is not None:
                    t.cancel()
            await asyncio.gather(task, *([helper] if helper else []), return_exceptions=True)


async def _stand_in_kubelet(client: LocalClient) -> None:
    """Finish graceful deletions at once (what a kubelet does once containers stop)."""
    inf = Informer(client, PODS)
    gone: asyncio.Queue[str] = asyncio.Queue()

    def on_update(old: dict, new: dict) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            gone.put_nowait(new["metadata"]["name"])

    inf.add_handler(on_update=on_update)
    run = asyncio.create_task(inf.run())
    try:
        while True:
            name = await gone.get()
            with contextlib.suppress(Exception):
                await client.delete(PODS, name, "default", grace_period_seconds=0)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


@contextlib.asynccontextmanager
async def server_env(n: int, cpu: str, memory: str, pods: str, **_: Any) -> AsyncIterator[Env]:
    from cloudlet.server import Config, Server

    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-") as tmp:
        cfg = Config(data_dir=Path(tmp), port=free_port(), hollow_nodes=n, hollow_node_cpu=cpu,
                     hollow_node_memory=memory, hollow_node_pods=int(pods), min_history=10_000)
        srv = Server(cfg)
        await srv.start()
        try:
            assert srv.api is not None
            env = Env()
            env.client, env.kind = LocalClient(srv.api), "server"
            env.scheduler = srv.scheduler
            while len(env.scheduler.cache.nodes) < n:  # noqa: ASYNC110 (bench polling)
                await asyncio.sleep(0.1)
            yield env
        finally:
            await srv.stop()


def _bound_tracker(client: LocalClient) -> tuple[Informer, dict[str, float]]:
    bound_at: dict[str, float] = {}
    inf = Informer(client, PODS)

    def on_update(old: dict, new: dict) -> None:
        if new["spec"].get("nodeName") and not old["spec"].get("nodeName"):
            bound_at.setdefault(new["metadata"]["name"], time.perf_counter())

    def on_add(new: dict) -> None:
        if new["spec"].get("nodeName"):
            bound_at.setdefault(new["metadata"]["name"], time.perf_counter())

    inf.add_handler(on_add, on_update)
    return inf, bound_at


async def _wait_bound(bound_at: dict[str, float], names: list[str], within: float) -> None:
    async with asyncio.timeout(within):
        while sum(1 for k in names if k in bound_at) < len(names):  # noqa: ASYNC110 (bench polling)
            await asyncio.sleep(0.05)


async def basic(mode: str, n_nodes: int, placed: int, n_pods: int) -> dict[str, Any]:
    make = server_env if mode == "server" else inprocess_env
    t_setup = time.perf_counter()
    async with make(n_nodes, "32", "256Gi", "110") as env:
        setup_s = time.perf_counter() - t_setup
        client = env.client
        inf, bound_at = _bound_tracker(client)
        run = asyncio.create_task(inf.run())
        await inf.wait_synced()
        init = [f"init-{i}" for i in range(placed)]
        await create_all(client, [pod(nm) for nm in init], PODS)
        await _wait_bound(bound_at, init, 600)
        names = [f"p-{i}" for i in range(n_pods)]
        created: dict[str, float] = {}
        it = iter(names)
        cpu0 = time.process_time()
        t0 = time.perf_counter()

        async def w() -> None:
            for nm in it:
                created[nm] = time.perf_counter()
                await client.create(PODS, pod(nm))

        await asyncio.gather(*(w() for _ in range(16)))
        await _wait_bound(bound_at, names, 1800)
        t1 = max(bound_at[k] for k in names)
        cpu = time.process_time() - cpu0
        rss = rss_mb()  # with every pod bound, before teardown
        dropped = getattr(env.scheduler, "events_dropped", None)
        await env.scheduler.wait_idle()  # the Events still queued, then count what was stored
        written = sum(e.get("count", 1) for e in (await client.list(EVENTS))["items"]
                      if (e.get("source") or {}).get("component") == env.scheduler.scheduler_name)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        lat = sorted(bound_at[k] - created[k] for k in names)
        return {"mode": env.kind, "nodes": n_nodes, "placed": placed, "pods": n_pods,
                "pods_per_s": round(n_pods / (t1 - t0), 1),
                "latency_avg_ms": round(1000 * sum(lat) / len(lat), 2),
                "latency_p50_ms": round(1000 * lat[len(lat) // 2], 2),
                "latency_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2),
                "process_cpu_s": round(cpu, 2), "pods_per_cpu_s": round(n_pods / cpu, 1), "wall_s": round(t1 - t0, 2),
                "setup_s": round(setup_s, 1), "rss_mb": round(rss, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "events_dropped": dropped, "events_written": written}


async def preempt(mode: str, n_nodes: int = 500, low: int = 1000, high: int = 500) -> dict[str, Any]:
    make = server_env if mode == "server" else inprocess_env
    async with make(n_nodes, "4", "16Gi", "110", kubelet=True) as env:
        client = env.client
        for name, value in (("low", 10), ("high", 1000)):
            await client.create(PCS, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                      "metadata": {"name": name}, "value": value})
        inf, bound_at = _bound_tracker(client)
        run = asyncio.create_task(inf.run())
        await inf.wait_synced()
        lows = [f"low-{i}" for i in range(low)]
        await create_all(client, [pod(nm, cpu="2", priorityClassName="low") for nm in lows], PODS)
        await _wait_bound(bound_at, lows, 600)
        highs = [f"high-{i}" for i in range(high)]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await create_all(client, [pod(nm, cpu="2", priorityClassName="high") for nm in highs], PODS)
        await _wait_bound(bound_at, highs, 600)
        dt = max(bound_at[k] for k in highs) - t0
        cpu = time.process_time() - cpu0
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        return {"mode": env.kind, "nodes": n_nodes, "low": low, "high": high, "pods_per_s": round(high / dt, 1),
                "process_cpu_s": round(cpu, 2), "pods_per_cpu_s": round(high / cpu, 1), "wall_s": round(dt, 2)}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    res = {"basic": await basic(mode, args.nodes, args.placed, args.pods)}
    print(mode, "basic", res["basic"], flush=True)
    if not args.skip_baseline:
        res["baseline_200_nodes"] = await basic(mode, 200, args.placed, args.pods)
        print(mode, "baseline", res["baseline_200_nodes"], flush=True)
    if not args.skip_preemption:
        res["preemption"] = await preempt(mode)
        print(mode, "preemption", res["preemption"], flush=True)
    return res


async def in_child(mode: str, argv: list[str]) -> dict[str, Any]:
    """Run one mode in a fresh interpreter, so its RSS is its own."""
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-") as tmp:
        out = Path(tmp) / "result.json"
        proc = await asyncio.create_subprocess_exec(sys.executable, __file__, *argv, "--mode", mode, "--out", str(out))
        if await proc.wait() != 0:
            raise RuntimeError(f"the {mode} benchmark failed")
        return dict(json.loads(await asyncio.to_thread(out.read_text))[mode])


async def main(argv: list[str]) -> tuple[dict[str, Any], str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("server", "inprocess", "both"), default="both")
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--placed", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--skip-preemption", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scheduler.json"))
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)  # a bench prints figures, not the server's info logs
    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": load(), "kubernetes_reference": K8S_THRESHOLD}
    if args.mode == "both":
        rest = ["--nodes", str(args.nodes), "--placed", str(args.placed), "--pods", str(args.pods)]
        rest += ["--skip-preemption"] * args.skip_preemption + ["--skip-baseline"] * args.skip_baseline
        for mode in ("server", "inprocess"):
            out[mode] = await in_child(mode, rest)
    else:
        out[args.mode] = await run_mode(args.mode, args)
    out["load_after"] = load()
    return out, args.out


def write(out: dict[str, Any], where: str) -> None:
    path = Path(where)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    result, where = asyncio.run(main(sys.argv[1:]))
    write(result, where)
