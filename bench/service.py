"""Service networking benchmark: ClusterIP vs pod IP, rule sync time, DNS queries/s.

In one run, on a real CNI pod network (a network namespace running a small TCP
server) and the real nftables service proxy and cluster DNS:

* request rate and p50/p99 latency of connect+request+response+close against
  the pod IP directly and through the ClusterIP (DNAT + masquerade), with the
  same concurrent client, in alternating 1 s rounds; the ratio is the median of
  the paired rounds (target > 0.9);
* rule sync time (render + ``nft -f``) for a Service with 100 endpoints, p50 of
  20 syncs, and for 100 Services with 10 endpoints each;
* cluster DNS queries/s (UDP, concurrent) for a Service name.

Writes bench/results/service.json. Needs root (netns, nftables).
Usage: python bench/service.py [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dnslib import DNSRecord  # noqa: E402

from cloudlet.client.informer import SharedInformerFactory  # noqa: E402
from cloudlet.client.testing import eventually, local_api  # noqa: E402
from cloudlet.controllers.endpoints import SERVICES  # noqa: E402
from cloudlet.controllers.endpointslice import ENDPOINT_SLICES  # noqa: E402
from cloudlet.network.cni import PodNetwork, pick_free_cidr  # noqa: E402
from cloudlet.network.dns import ClusterDNS  # noqa: E402
from cloudlet.network.proxy import ServiceProxy  # noqa: E402
from cloudlet.resources import REGISTRY  # noqa: E402

SERVER = """
import asyncio, sys
async def handle(r, w):
    await r.read(5); w.write(b"pong\\n"); await w.drain(); w.close()
async def main():
    s = await asyncio.start_server(handle, "0.0.0.0", 8080, backlog=1024)
    async with s: await s.serve_forever()
asyncio.run(main())
"""


async def load(host: str, port: int, seconds: float, concurrency: int) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                r, w = await asyncio.open_connection(host, port)
                w.write(b"ping\n")
                await w.drain()
                await r.readline()
                w.close()
                lat.append(time.perf_counter() - t0)
            except OSError:
                errors += 1
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {"requests_per_s": round(len(lat) / elapsed, 1), "errors": errors,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 3) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 3) if lat else None}


def slice_body(name: str, ips: list[str]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{name}-x", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


def service_body(name: str, ip: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


async def dns_qps(server: ClusterDNS, seconds: float, concurrency: int) -> float:
    port = await server.serve("127.0.0.1", 0)
    query = DNSRecord.question("web.default.svc.cluster.local").pack()
    loop = asyncio.get_running_loop()
    done = 0
    stop = time.perf_counter() + seconds

    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.fut: asyncio.Future[bytes] | None = None

        def datagram_received(self, data: bytes, addr: Any) -> None:
            if self.fut and not self.fut.done():
                self.fut.set_result(data)

    async def worker() -> None:
        nonlocal done
        transport, proto = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
        try:
            while time.perf_counter() < stop:
                proto.fut = loop.create_future()
                transport.sendto(query)
                try:
                    async with asyncio.timeout(1):
                        await proto.fut
                    done += 1
                except TimeoutError:
                    pass
        finally:
            transport.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = done / (time.perf_counter() - t0)
    await server.close()
    return round(rate, 1)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="cloudlet-bench-svc-"))
    instance = f"b{uuid.uuid4().hex[:8]}"
    pn = PodNetwork(tmp, instance, pick_free_cidr())
    await pn.start()
    server = None
    try:
        info = await pn.setup(str(uuid.uuid4()), "default", "server")
        server = subprocess.Popen(  # noqa: ASYNC220 - the long-lived server, killed at the end
            ["ip", "netns", "exec", Path(info.netns_path).name, sys.executable, "-c", SERVER])
        async with local_api(REGISTRY) as (_s, _a, client):
            factory = SharedInformerFactory(client)
            services, slices = factory.informer(SERVICES), factory.informer(ENDPOINT_SLICES)
            proxy = ServiceProxy(services, slices, instance=instance, bridge=pn.bridge, min_sync_interval=0.01)
            factory.start()
            await factory.informers[0].wait_synced()
            assert await proxy.start()
            task = asyncio.create_task(proxy.run())
            cluster_ip = "10.100.7.7"
            await client.create(SERVICES, service_body("web", cluster_ip))
            await client.create(ENDPOINT_SLICES, slice_body("web", [info.ip]))
            await eventually(lambda: cluster_ip in proxy.rendered, within=10)
            for _ in range(50):  # server up?
                try:
                    r, w = await asyncio.open_connection(info.ip, 8080)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            await load(info.ip, 8080, 1.0, args.concurrency)  # warm-up
            # alternate short rounds so both paths see the same machine load; medians per path
            rounds = max(1, int(args.seconds))
            directs, vias = [], []
            for _ in range(rounds):
                directs.append(await load(info.ip, 8080, 1.0, args.concurrency))
                vias.append(await load(cluster_ip, 80, 1.0, args.concurrency))
            direct = sorted(directs, key=lambda r: r["requests_per_s"])[len(directs) // 2]
            via = sorted(vias, key=lambda r: r["requests_per_s"])[len(vias) // 2]
            ratios = sorted(v["requests_per_s"] / d["requests_per_s"] for d, v in zip(directs, vias, strict=True) if d["requests_per_s"])
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

            # rule sync for a service with 100 endpoints, and for 100 services x 10 endpoints
            proxy2 = ServiceProxy(services, slices, instance=instance + "s", min_sync_interval=0.01)
            assert await proxy2.start()
            await client.create(SERVICES, service_body("big", "10.100.8.8"))
            await client.create(ENDPOINT_SLICES, slice_body("big", [f"10.250.{i // 250}.{i % 250 + 1}" for i in range(100)]))
            await eventually(lambda: len(slices.list()) == 2, within=10)
            times = []
            for _ in range(20):
                proxy2.rendered = ""
                await proxy2.sync()
                times.append(proxy2.last_sync_seconds)
            sync_100 = statistics.median(times)
            for s in range(100):
                await client.create(SERVICES, service_body(f"s{s}", f"10.101.{s}.1"))
                await client.create(ENDPOINT_SLICES, slice_body(f"s{s}", [f"10.251.{s}.{i + 1}" for i in range(10)]))
            await eventually(lambda: len(slices.list()) == 102, within=20)
            times = []
            for _ in range(5):
                proxy2.rendered = ""
                await proxy2.sync()
                times.append(proxy2.last_sync_seconds)
            sync_1000 = statistics.median(times)
            await proxy2.cleanup()

            dns = ClusterDNS(services, slices, upstream=[])
            qps = await dns_qps(dns, args.seconds, args.concurrency)
            await factory.shutdown()
    finally:
        if server is not None:
            server.kill()
            server.wait()
        await pn.cleanup_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "direct_pod_ip": direct, "cluster_ip": via,
        "cluster_ip_ratio": round(ratios[len(ratios) // 2], 3) if ratios else None,  # median of paired rounds
        "cluster_ip_ratio_rounds": [round(r, 3) for r in ratios],
        "rule_sync_ms_100_endpoints": round(sync_100 * 1000, 2),
        "rule_sync_ms_100_services_x_10_endpoints": round(sync_1000 * 1000, 2),
        "dns_queries_per_s": qps,
        "seconds": args.seconds, "concurrency": args.concurrency,
        "note": "connect+request+response+close per request, client and server on this 2-core machine",
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    result = asyncio.run(main(p.parse_args()))
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "service.json").write_text(json.dumps(result, indent=2) + "\n")
