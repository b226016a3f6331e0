"""API server benchmark: readiness, memory, write/read/list rates, watch latency.

Starts a real `cloudlet up` in a temp data dir on a free port and measures:

* time to ready (process start -> /readyz 200) and the server's own figure;
* idle RSS after start;
* creating N ConfigMaps over HTTPS with C concurrent keep-alive clients
  (creates/s, p50/p99 latency);
* GET rate, and paged LIST rate (limit=500), with the CPU time per page the
  server and this client spent (from /proc; robust on a shared machine, where
  wall-clock rates swing) and the bytes per page;
* in the same run, the paged LIST again after every object's managedFields
  were dropped (a merge patch setting ``metadata.managedFields: [{}]``), as the
  baseline for what managedFields cost a list;
* watch delivery delay with W watchers (create -> event seen, p50/p99), and
  the server CPU the watch phase used (per created event: W deliveries);
* in the same run, the raw SQLite durable insert rate on the same disk with the
  same durability (WAL, synchronous=FULL, one transaction per acknowledged
  write), and our create rate as a ratio of it.

Prints a table and writes JSON to bench/results/api.json (and a timestamped copy).
Usage: python bench/api.py [--objects 10000] [--clients 32] [--watchers 100]
       [--watch-format json|table] [--watch-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import CloudletProcess  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sqlite_baseline(dirpath: Path, n: int) -> dict[str, float]:
    """Raw durable inserts: WAL + synchronous=FULL, one transaction per write."""
    path = dirpath / "baseline.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, name TEXT NOT NULL, type INTEGER NOT NULL, value BLOB NOT NULL)")
    value = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x" * 12, "namespace": "bench"}, "data": {"k": "v" * 64}}).encode()
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        db.execute("BEGIN")
        db.execute("INSERT INTO log (id, name, type, value) VALUES (?, ?, 0, ?)", (i + 1, f"/configmaps/bench/c{i}", value))
        db.execute("COMMIT")
        lat.append(time.perf_counter() - s)
    total = time.perf_counter() - t0
    db.close()
    return {"inserts_per_s": n / total, "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}


class Bench:
    def __init__(self, proc: CloudletProcess) -> None:
        self.proc = proc
        cfg = yaml.safe_load(proc.kubeconfig.read_text())
        self.token = cfg["users"][0]["user"]["token"]
        self.ssl = ssl.create_default_context(cafile=str(proc.data_dir / "pki" / "ca.crt"))
        self.base = proc.url

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=1),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )

    async def create_namespace(self, name: str) -> None:
        async with self.session() as s:
            async with s.post(f"{self.base}/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}) as r:
                assert r.status in (201, 409), await r.text()

    async def creates(self, n: int, clients: int, ns: str) -> dict[str, Any]:
        lat: list[float] = []
        counter = iter(range(n))
        errors = 0

        async def worker() -> None:
            nonlocal errors
            async with self.session() as s:
                for i in counter:
                    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i:06d}", "namespace": ns, "labels": {"bench": "yes"}}, "data": {"k": "v" * 64}}
                    t = time.perf_counter()
                    async with s.post(f"{self.base}/api/v1/namespaces/{ns}/configmaps", json=body) as r:
                        await r.read()
                        if r.status != 201:
                            errors += 1
                    lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        total = time.perf_counter() - t0
        return {"n": n, "clients": clients, "seconds": total, "per_s": n / total, "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "errors": errors}

    async def gets(self, n: int, clients: int, ns: str, objects: int) -> dict[str, Any]:
        lat: list[float] = []
        counter = iter(range(n))

        async def worker() -> None:
            async with self.session() as s:
                for i in counter:
                    t = time.perf_counter()
                    async with s.get(f"{self.base}/api/v1/namespaces/{ns}/configmaps/c{i % objects:06d}") as r:
                        await r.read()
                        assert r.status == 200
                    lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        total = time.perf_counter() - t0
        return {"n": n, "per_s": n / total, "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}

    async def paged_lists(self, rounds: int, ns: str, limit: int = 500) -> dict[str, Any]:
        pages = 0
        items = 0
        nbytes = 0
        pid = self.proc.proc.pid  # type: ignore[union-attr]
        server0, client0 = cpu_s(pid), time.process_time()
        t0 = time.perf_counter()
        async with self.session() as s:
            for _ in range(rounds):
                cont = ""
                while True:
                    url = f"{self.base}/api/v1/namespaces/{ns}/configmaps?limit={limit}" + (f"&continue={cont}" if cont else "")
                    async with s.get(url) as r:
                        doc = await r.json()
                        nbytes += len(await r.read())
                    pages += 1
                    items += len(doc["items"])
                    cont = doc["metadata"].get("continue", "")
                    if not cont:
                        break
        total = time.perf_counter() - t0
        server_cpu, client_cpu = cpu_s(pid) - server0, time.process_time() - client0
        return {
            "pages": pages, "pages_per_s": pages / total, "items_per_s": items / total, "limit": limit,
            "bytes_per_page": nbytes / pages,
            "server_cpu_ms_per_page": server_cpu / pages * 1000, "client_cpu_ms_per_page": client_cpu / pages * 1000,
        }

    async def drop_managed_fields(self, n: int, clients: int, ns: str) -> dict[str, Any]:
        """Reset every object's managedFields (Kubernetes' ``[{}]``: afterwards untracked until an apply)."""
        counter = iter(range(n))
        errors = 0
        patch = {"metadata": {"managedFields": [{}]}}

        async def worker() -> None:
            nonlocal errors
            async with self.session() as s:
                for i in counter:
                    url = f"{self.base}/api/v1/namespaces/{ns}/configmaps/c{i:06d}"
                    async with s.patch(url, json=patch, headers={"Content-Type": "application/merge-patch+json"}) as r:
                        doc = await r.json()
                        if r.status != 200 or doc["metadata"].get("managedFields"):
                            errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return {"n": n, "seconds": time.perf_counter() - t0, "errors": errors}

    async def watch_latency(self, watchers: int, events: int, ns: str, fmt: str = "json") -> dict[str, Any]:
        sent: dict[str, float] = {}
        delays: list[float] = []
        ready = asyncio.Event()
        started = 0
        done = asyncio.Event()
        seen = 0

        async def watcher(s: aiohttp.ClientSession, rv: str) -> None:
            nonlocal started, seen
            url = f"{self.base}/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=120"
            headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"} if fmt == "table" else {}
            async with s.get(url, headers=headers) as r:
                started += 1
                if started == watchers:
                    ready.set()
                async for line in r.content:
                    now = time.perf_counter()
                    ev = json.loads(line)
                    obj = ev["object"]
                    name = obj["rows"][0]["object"]["metadata"]["name"] if fmt == "table" else obj["metadata"]["name"]
                    if ev["type"] == "ADDED" and name in sent:
                        delays.append(now - sent[name])
                        seen += 1
                        if seen == watchers * events:
                            done.set()
                            return

        sessions = [self.session() for _ in range(watchers)]
        async with sessions[0].get(f"{self.base}/api/v1/namespaces/{ns}/configmaps?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        tasks = [asyncio.create_task(watcher(s, rv)) for s in sessions]
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.5)
        pid = self.proc.proc.pid  # type: ignore[union-attr]
        server0 = cpu_s(pid)
        async with self.session() as s:
            for i in range(events):
                name = f"w{i:05d}"
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}}
                sent[name] = time.perf_counter()
                async with s.post(f"{self.base}/api/v1/namespaces/{ns}/configmaps", json=body) as r:
                    assert r.status == 201, await r.text()
                await asyncio.sleep(0.01)
        try:
            await asyncio.wait_for(done.wait(), 60)
        except TimeoutError:
            pass
        server_cpu = cpu_s(pid) - server0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in sessions:
            await s.close()
        return {
            "watchers": watchers, "events": events, "format": fmt, "delivered": len(delays),
            "p50_ms": pct(delays, 50) * 1000, "p99_ms": pct(delays, 99) * 1000,
            # creates + W deliveries each; the creates alone cost the same with 0 watchers
            "server_cpu_s": server_cpu, "server_cpu_ms_per_event": server_cpu / events * 1000,
        }


async def run(args: argparse.Namespace, proc: CloudletProcess) -> dict[str, Any]:
    b = Bench(proc)
    await b.create_namespace("bench")
    await b.create_namespace("watch")
    out: dict[str, Any] = {}
    if args.watch_only:
        out["watch"] = await b.watch_latency(args.watchers, args.watch_events, "watch", args.watch_format)
        return out
    out["create"] = await b.creates(args.objects, args.clients, "bench")
    out["rss_after_creates_mb"] = rss_mb(proc.proc.pid)  # type: ignore[union-attr]
    out["get"] = await b.gets(args.objects, args.clients, "bench", args.objects)
    out["list_paged"] = await b.paged_lists(args.list_rounds, "bench")
    out["watch"] = await b.watch_latency(args.watchers, args.watch_events, "watch", args.watch_format)
    out["drop_managed_fields"] = await b.drop_managed_fields(args.objects, args.clients, "bench")
    plain = out["list_paged_without_managed_fields"] = await b.paged_lists(args.list_rounds, "bench")
    lp = out["list_paged"]
    out["managed_fields_list_cost"] = {
        "pages_per_s_ratio": lp["pages_per_s"] / plain["pages_per_s"],
        "server_cpu_ratio": lp["server_cpu_ms_per_page"] / plain["server_cpu_ms_per_page"],
        "client_cpu_ratio": lp["client_cpu_ms_per_page"] / plain["client_cpu_ms_per_page"],
        "bytes_ratio": lp["bytes_per_page"] / plain["bytes_per_page"],
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--watch-events", type=int, default=200)
    ap.add_argument("--watch-format", choices=("json", "table"), default="json", help="what the watchers Accept")
    ap.add_argument("--watch-only", action="store_true", help="only the watch measure; prints JSON, saves nothing")
    ap.add_argument("--list-rounds", type=int, default=10, help="paged lists of the whole namespace per measure")
    ap.add_argument("--baseline-writes", type=int, default=2000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cloudlet-bench-", dir=os.environ.get("BENCH_DIR")))
    try:
        proc = CloudletProcess(tmp / "data")
        ready_s = proc.start()
        time.sleep(1.0)
        result: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "ready_s": ready_s,
            "idle_rss_mb": rss_mb(proc.proc.pid),  # type: ignore[union-attr]
        }
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        result.update(asyncio.run(run(args, proc)))
        if args.watch_only:
            proc.stop()
            print(json.dumps(result, indent=2))
            return
        proc.stop()
        # restart time with the 10k objects in the store
        proc2 = CloudletProcess(tmp / "data", port=proc.port)
        result["ready_with_objects_s"] = proc2.start()
        proc2.stop()
        base = sqlite_baseline(tmp, args.baseline_writes)
        result["sqlite_baseline"] = base
        result["create_vs_sqlite_ratio"] = result["create"]["per_s"] / base["inserts_per_s"]
        result["targets"] = {
            "ready_lt_1s": result["ready_s"] < 1.0,
            "idle_rss_lt_80mb": result["idle_rss_mb"] < 80,
            "creates_ge_2000_per_s": result["create"]["per_s"] >= 2000,
            "watch_p99_lt_50ms": result["watch"]["p99_ms"] < 50,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out_dir / "api.json").write_text(text)
    (out_dir / f"api-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(text)
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="cloudlet API benchmark")
        t.add_column("measure")
        t.add_column("value", justify="right")
        t.add_column("target")
        t.add_row("time to ready", f"{result['ready_s']*1000:.0f} ms", "< 1 s")
        t.add_row("ready with 10k objects", f"{result['ready_with_objects_s']*1000:.0f} ms", "")
        t.add_row("idle RSS", f"{result['idle_rss_mb']:.1f} MB", "< 80 MB")
        c = result["create"]
        t.add_row(f"creates ({c['clients']} clients)", f"{c['per_s']:.0f}/s p50 {c['p50_ms']:.1f} ms p99 {c['p99_ms']:.1f} ms", ">= 2000/s")
        t.add_row("raw SQLite durable inserts", f"{base['inserts_per_s']:.0f}/s", "")
        t.add_row("creates / raw SQLite", f"{result['create_vs_sqlite_ratio']:.2f}x", "")
        g = result["get"]
        t.add_row("gets", f"{g['per_s']:.0f}/s p99 {g['p99_ms']:.1f} ms", "")
        lp = result["list_paged"]
        t.add_row("paged list (500/page)", f"{lp['pages_per_s']:.1f} pages/s ({lp['items_per_s']:.0f} items/s)", "")
        t.add_row("  CPU per page", f"server {lp['server_cpu_ms_per_page']:.2f} ms, client {lp['client_cpu_ms_per_page']:.2f} ms, {lp['bytes_per_page'] / 1000:.0f} kB", "")
        pl = result["list_paged_without_managed_fields"]
        t.add_row("  same, managedFields dropped", f"{pl['pages_per_s']:.1f} pages/s; server {pl['server_cpu_ms_per_page']:.2f} ms, client {pl['client_cpu_ms_per_page']:.2f} ms, {pl['bytes_per_page'] / 1000:.0f} kB", "")
        w = result["watch"]
        t.add_row(f"watch delivery ({w['watchers']} watchers)", f"p50 {w['p50_ms']:.1f} ms p99 {w['p99_ms']:.1f} ms ({w['delivered']} events)", "p99 < 50 ms")
        t.add_row("  server CPU per event", f"{w['server_cpu_ms_per_event']:.2f} ms ({w['watchers']} deliveries)", "")
        t.add_row("RSS after creates", f"{result['rss_after_creates_mb']:.1f} MB", "")
        Console().print(t)
    except ImportError:
        print(text)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
