"""Informer benchmark: cache memory per 10 000 objects, and event throughput.

Measures, in one run, the informer fed three ways:

* ``local-shared`` — in process (LocalClient), caching the store's own
  read-only dicts (the default for in-process informers);
* ``local-copy`` — in process with ``share_objects=False`` (a private deep
  copy of every object, as any client that owns its objects would hold);
* ``http`` — HTTPClient over HTTPS to the same kind of server.

**Memory**: each figure comes from a fresh child process that starts an
in-memory ``cloudlet.server.Server``, creates N ConfigMaps (labels, ~100
bytes of data), then syncs one informer over them. Reported per 10 000
cached objects: Python memory the informer still holds after sync
(tracemalloc, allocations made while syncing and still live) and RSS growth
(from a second child without tracemalloc, whose bookkeeping would inflate
RSS). For reference, the tracemalloc growth of the API store itself while
the objects were created is reported too (the whole server's growth: the
store's objects and history, the in-memory backend's rows, and the built-in
controllers' metadata caches). In the ``http`` child the server
shares the process, so its RSS figure also includes the server's transient
buffers for serving the list.

**Throughput**: in this process, one in-memory Server; for each client, an
informer on its own namespace, then N ConfigMaps created in-process by C
concurrent writers. Events/s is N over the time from the first create call
to the last ``on_add``; latency is create call -> handler. A baseline run
with no informer shows the create rate the writers alone reach. With the
HTTP client the server runs on the same event loop, so its cost of encoding
the watch stream is included, as it would be for an in-process server.
Those rates are bounded by how fast the writers create; **catch-up** measures
the informer alone: its watch is held back while N objects are created, then
released, and events/s is N over the time from release to the last
``on_add`` (the watch replays them from the server's history at full speed).

Prints a table and writes JSON to bench/results/informer.json.
Usage: python bench/informer.py [--objects 10000] [--events 10000] [--writers 32]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cloudlet.client.http import HTTPClient  # noqa: E402
from cloudlet.client.informer import Informer  # noqa: E402
from cloudlet.client.interface import Client, ResourceRef  # noqa: E402
from cloudlet.client.local import LocalClient  # noqa: E402
from cloudlet.server import Config, Server  # noqa: E402

CONFIGMAPS = ResourceRef("", "v1", "configmaps")
NAMESPACES = ResourceRef("", "v1", "namespaces")
MODES = ("local-shared", "local-copy", "http")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))]


def configmap(name: str, ns: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench", "shard": str(i % 16)}},
        "data": {"config": "x" * 100, "index": str(i)},
    }


async def create_many(client: Client, ns: str, n: int, writers: int, prefix: str = "c",
                      sent: dict[str, float] | None = None) -> float:
    """Create ``n`` ConfigMaps with ``writers`` concurrent writers; returns seconds."""
    names = iter(range(n))

    async def writer() -> None:
        for i in names:
            name = f"{prefix}{i:06d}"
            if sent is not None:
                sent[name] = time.perf_counter()
            await client.create(CONFIGMAPS, configmap(name, ns, i))

    t0 = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return time.perf_counter() - t0


async def start_server(tmp: Path) -> Server:
    server = Server(Config(data_dir=tmp, port=free_port(), store="memory", min_history=1000))
    await server.start()
    return server


# --- memory (child process) ------------------------------------------------------------


async def memory_child(mode: str, objects: int, trace: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-inf-") as tmp:
        server = await start_server(Path(tmp))
        assert server.api is not None
        local = LocalClient(server.api)
        http = HTTPClient.from_kubeconfig(Path(tmp) / "kubeconfig.yaml") if mode == "http" else None
        try:
            await local.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
            if trace:
                gc.collect()
                tracemalloc.start()
                store0 = tracemalloc.get_traced_memory()[0]
            await create_many(local, "bench", objects, 64)
            await asyncio.sleep(0.2)  # let the built-in controllers' informers settle
            client: Client = http if http is not None else local
            if http is not None:  # open the connection before measuring
                await http.get(NAMESPACES, "bench")
            gc.collect()
            out: dict[str, Any] = {"mode": mode, "objects": objects}
            if trace:
                out["store_traced_bytes"] = tracemalloc.get_traced_memory()[0] - store0
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
            rss0 = rss_bytes()
            inf = Informer(client, CONFIGMAPS, "bench", share_objects=(mode != "local-copy"), detect_mutations=False)
            task = asyncio.create_task(inf.run())
            t0 = time.perf_counter()
            await inf.wait_synced()
            out["sync_s"] = time.perf_counter() - t0
            assert len(inf) == objects, len(inf)
            await asyncio.sleep(0.1)
            gc.collect()
            if trace:
                cur, peak = tracemalloc.get_traced_memory()
                out["informer_traced_bytes"] = cur - before
                out["informer_traced_peak_bytes"] = peak - before
                tracemalloc.stop()
            else:
                out["informer_rss_bytes"] = rss_bytes() - rss0
            inf.stop()
            await task
            if http is not None:
                await asyncio.sleep(1.5)  # let the server notice the closed watch before it stops
            return out
        finally:
            if http is not None:
                await http.close()
            await server.stop()


def run_child(mode: str, objects: int, trace: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child-memory", mode, "--objects", str(objects)]
    if trace:
        cmd.append("--trace")
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"memory child {mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def memory(objects: int) -> dict[str, Any]:
    per = 10_000 / objects
    out: dict[str, Any] = {}
    for mode in MODES:
        traced = run_child(mode, objects, trace=True)
        rss = run_child(mode, objects, trace=False)
        out[mode] = {
            "objects": objects,
            "sync_s": rss["sync_s"],
            "traced_bytes_per_10k": traced["informer_traced_bytes"] * per,
            "traced_peak_bytes_per_10k": traced["informer_traced_peak_bytes"] * per,
            "rss_bytes_per_10k": rss["informer_rss_bytes"] * per,
            "store_traced_bytes_per_10k": traced["store_traced_bytes"] * per,
        }
    return out


# --- throughput (this process) --------------------------------------------------------


class Held:
    """Wraps a client; its watches wait for ``gate`` before they open."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def watch(self, *a: Any, **kw: Any) -> Any:
        await self.gate.wait()
        async for ev in self.inner.watch(*a, **kw):
            yield ev


async def catch_up(client: Client, writer: Client, ns: str, events: int, writers: int) -> dict[str, Any]:
    held = Held(client)
    handled = 0
    done = asyncio.Event()

    def on_add(_obj: dict[str, Any]) -> None:
        nonlocal handled
        handled += 1
        if handled >= events:
            done.set()

    inf = Informer(held, CONFIGMAPS, ns, detect_mutations=False)
    inf.add_handler(on_add)
    task = asyncio.create_task(inf.run())
    await inf.wait_synced()
    await create_many(writer, ns, events, writers)
    gc.collect()
    t0 = time.perf_counter()
    held.gate.set()
    async with asyncio.timeout(300):
        await done.wait()
    secs = time.perf_counter() - t0
    inf.stop()
    await task
    return {"events_per_s": events / secs, "seconds": secs}



async def throughput(events: int, writers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-inf-") as tmp:
        server = await start_server(Path(tmp))
        assert server.api is not None
        local = LocalClient(server.api)
        http = HTTPClient.from_kubeconfig(Path(tmp) / "kubeconfig.yaml")
        out: dict[str, Any] = {"events": events, "writers": writers}
        try:
            for ns in ("tp-warmup", "tp-baseline", "tp-local", "tp-http", "cu-local", "cu-http"):
                await local.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            await create_many(local, "tp-warmup", min(events, 2000), writers)
            secs = await create_many(local, "tp-baseline", events, writers)
            out["baseline_creates_per_s"] = events / secs
            for mode, client in (("local", local), ("http", http)):
                sent: dict[str, float] = {}
                handled: dict[str, float] = {}
                done = asyncio.Event()
                inf = Informer(client, CONFIGMAPS, f"tp-{mode}", detect_mutations=False)

                def on_add(obj: dict[str, Any], handled: dict[str, float] = handled, done: asyncio.Event = done) -> None:
                    handled[obj["metadata"]["name"]] = time.perf_counter()
                    if len(handled) >= events:
                        done.set()

                inf.add_handler(on_add)
                task = asyncio.create_task(inf.run())
                await inf.wait_synced()
                await asyncio.sleep(0.2)
                gc.collect()
                t0 = time.perf_counter()
                await create_many(local, f"tp-{mode}", events, writers, sent=sent)
                async with asyncio.timeout(300):
                    await done.wait()
                total = max(handled.values()) - t0
                lat = [handled[n] - sent[n] for n in sent]
                out[mode] = {
                    "events_per_s": events / total,
                    "seconds": total,
                    "p50_ms": pct(lat, 50) * 1000,
                    "p99_ms": pct(lat, 99) * 1000,
                }
                inf.stop()
                await task
            for mode, client in (("local", local), ("http", http)):
                out[mode]["catch_up"] = await catch_up(client, local, f"cu-{mode}", events, writers)
            await asyncio.sleep(1.5)  # let the server notice the closed watch before it stops
        finally:
            await http.close()
            await server.stop()
        return out


# --- main ------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=10_000, help="objects cached for the memory figures")
    ap.add_argument("--events", type=int, default=10_000, help="creates for the throughput figures")
    ap.add_argument("--writers", type=int, default=32)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--child-memory", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child_memory:
        print(json.dumps(asyncio.run(memory_child(args.child_memory, args.objects, args.trace))))
        return

    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    result["memory"] = memory(args.objects)
    try:
        import uvloop

        uvloop.install()
        result["machine"]["loop"] = "uvloop"
    except ImportError:
        result["machine"]["loop"] = "asyncio"
    result["throughput"] = asyncio.run(throughput(args.events, args.writers))

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out_dir / "informer.json").write_text(text)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(text)
        return
    mib = 1024 * 1024
    t = Table(title=f"cloudlet informer benchmark ({args.objects} objects, {args.events} events)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("note")
    for mode, m in result["memory"].items():
        t.add_row(
            f"memory per 10k cached: {mode}",
            f"{m['traced_bytes_per_10k'] / mib:.1f} MiB traced, {m['rss_bytes_per_10k'] / mib:.1f} MiB RSS",
            f"sync {m['sync_s'] * 1000:.0f} ms; peak {m['traced_peak_bytes_per_10k'] / mib:.1f} MiB",
        )
    store = result["memory"]["local-shared"]["store_traced_bytes_per_10k"]
    t.add_row("server growth creating 10k", f"{store / mib:.1f} MiB traced", "store, history, built-in caches")
    tp = result["throughput"]
    t.add_row("creates/s, no informer", f"{tp['baseline_creates_per_s']:.0f}/s", f"{tp['writers']} in-process writers")
    for mode in ("local", "http"):
        r = tp[mode]
        t.add_row(
            f"informer events/s: {mode}",
            f"{r['events_per_s']:.0f}/s",
            f"create -> handler p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms",
        )
    for mode in ("local", "http"):
        r = tp[mode]["catch_up"]
        t.add_row(f"informer catch-up events/s: {mode}", f"{r['events_per_s']:.0f}/s", "watch replay, no writers")
    Console().print(t)


if __name__ == "__main__":
    main()
