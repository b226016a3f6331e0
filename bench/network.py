"""Pod network benchmark: CNI setup/teardown latency, 50 pods at once vs one at a time.

Real plugins (bridge + host-local + portmap + loopback from /usr/lib/cni), real
namespaces, one throw-away instance with a free /24 in 10.123.0.0/16, cleaned
up at the end (and checked: no namespace, bridge or nat rule left).

* **sequential** (the baseline) — N pods set up one after another, then torn
  down one after another: per-pod latency p50/p99 and pods/s.
* **concurrent** — N pods set up all at once (``asyncio.gather``), then torn
  down all at once: per-pod latency p50/p99 (from the common start) and the
  wall time of the whole batch.
* every second pod gets a hostPort (portmap rules), as a mix of real pods would.
* ``plugin_exec_ms`` — one ``bridge VERSION`` call: the floor of a plugin exec.

Prints a summary and writes JSON to bench/results/network.json.
Usage: python bench/network.py [--pods 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cloudlet.network import netns
from cloudlet.network.cni import PodNetwork, pick_free_cidr

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mappings(i: int) -> list[dict[str, Any]]:
    return [{"containerPort": 80, "hostPort": free_port()}] if i % 2 else []


async def timed(coro: Any, t0: float) -> float:
    await coro
    return time.perf_counter() - t0


async def sequential(pn: PodNetwork, n: int) -> dict[str, Any]:
    uids = [str(uuid.uuid4()) for _ in range(n)]
    up: list[float] = []
    down: list[float] = []
    t_all = time.perf_counter()
    for i, u in enumerate(uids):
        up.append(await timed(pn.setup(u, "bench", f"p{i}", mappings(i)), time.perf_counter()))
    setup_wall = time.perf_counter() - t_all
    t_all = time.perf_counter()
    for u in uids:
        down.append(await timed(pn.teardown(u), time.perf_counter()))
    teardown_wall = time.perf_counter() - t_all
    return summary(n, up, down, setup_wall, teardown_wall)


async def concurrent(pn: PodNetwork, n: int) -> dict[str, Any]:
    uids = [str(uuid.uuid4()) for _ in range(n)]
    t0 = time.perf_counter()
    up = await asyncio.gather(*(timed(pn.setup(u, "bench", f"p{i}", mappings(i)), t0)
                                for i, u in enumerate(uids)))
    setup_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    down = await asyncio.gather(*(timed(pn.teardown(u), t0) for u in uids))
    teardown_wall = time.perf_counter() - t0
    return summary(n, list(up), list(down), setup_wall, teardown_wall)


def summary(n: int, up: list[float], down: list[float], setup_wall: float,
            teardown_wall: float) -> dict[str, Any]:
    return {
        "pods": n,
        "setup_p50_ms": pct(up, 0.50), "setup_p99_ms": pct(up, 0.99),
        "setup_mean_ms": round(statistics.mean(up) * 1000, 2),
        "setup_wall_s": round(setup_wall, 3), "setup_pods_per_s": round(n / setup_wall, 1),
        "teardown_p50_ms": pct(down, 0.50), "teardown_p99_ms": pct(down, 0.99),
        "teardown_wall_s": round(teardown_wall, 3),
        "teardown_pods_per_s": round(n / teardown_wall, 1),
    }


async def run(pods: int, rounds: int, max_parallel: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-net-") as tmp:
        instance = f"bench{uuid.uuid4().hex[:8]}"
        pn = PodNetwork(Path(tmp), instance, pick_free_cidr(prefixlen=24),
                        max_parallel=max_parallel)
        await pn.start()
        try:
            t0 = time.perf_counter()
            for _ in range(10):
                await pn._plugin_versions("bridge")
            exec_ms = round((time.perf_counter() - t0) / 10 * 1000, 2)
            # warm up (first ADD of the network, page cache of the plugin binaries)
            u = str(uuid.uuid4())
            await pn.setup(u, "bench", "warm", mappings(1))
            await pn.teardown(u)
            seq = [await sequential(pn, pods) for _ in range(rounds)]
            con = [await concurrent(pn, pods) for _ in range(rounds)]
        finally:
            await pn.cleanup_all()
        leftovers = netns.list_dir(pn.netns_dir, pn.netns_prefix)
        assert not leftovers, leftovers
    best = lambda rs: min(rs, key=lambda r: r["setup_wall_s"])  # noqa: E731
    return {
        "cpus": os.cpu_count(),
        "max_parallel": max_parallel,
        "rounds": rounds,
        "plugin_exec_ms": exec_ms,
        "sequential": best(seq),
        "concurrent": best(con),
        "all_rounds": {"sequential": seq, "concurrent": con},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-parallel", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/network.py needs root (network namespaces, bridges, iptables)")
    result = asyncio.run(run(args.pods, args.rounds, args.max_parallel))
    text = json.dumps(result, indent=2)
    for kind in ("sequential", "concurrent"):
        r = result[kind]
        print(f"{kind:>10}: {r['pods']} pods  setup p50 {r['setup_p50_ms']} ms  "
              f"p99 {r['setup_p99_ms']} ms  ({r['setup_pods_per_s']} pods/s)  "
              f"teardown p50 {r['teardown_p50_ms']} ms  p99 {r['teardown_p99_ms']} ms  "
              f"({r['teardown_pods_per_s']} pods/s)")
    print(f"plugin exec floor: {result['plugin_exec_ms']} ms")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "network.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
