"""Cluster DNS over real UDP/TCP sockets on loopback, fed by informers of a real
in-memory API with the EndpointSlice controller running.

The upstream resolver is a stand-in DNS server on loopback (this machine reaches
no outside resolver); it answers one name so forwarding can be observed.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.testing import PODS, eventually, local_api
from cloudlet.controllers.endpoints import SERVICES
from cloudlet.controllers.endpointslice import ENDPOINT_SLICES, EndpointSliceController
from cloudlet.network.dns import ClusterDNS
from cloudlet.resources import REGISTRY


class _Upstream(asyncio.DatagramProtocol):
    """Answers ``example.test`` with 192.0.2.1, everything else NXDOMAIN."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        req = DNSRecord.parse(data)
        reply = req.reply()
        if str(req.q.qname).rstrip(".") == "example.test":
            reply.add_answer(RR(req.q.qname, QTYPE.A, ttl=60, rdata=A("192.0.2.1")))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        self.transport.sendto(reply.pack(), addr)


@pytest.fixture
async def dns() -> AsyncIterator[tuple[Any, ClusterDNS, int]]:
    loop = asyncio.get_running_loop()
    up_transport, _ = await loop.create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
    up_port = up_transport.get_extra_info("sockname")[1]
    async with local_api(REGISTRY, namespaces=("default", "prod")) as (_store, _api, client):
        factory = SharedInformerFactory(client)
        slices = EndpointSliceController(client, factory, workers=2)
        server = ClusterDNS(factory.informer(SERVICES), factory.informer(ENDPOINT_SLICES),
                            upstream=["127.0.0.1"], upstream_port=up_port, upstream_timeout=1.0)
        factory.start()
        task = asyncio.create_task(slices.run())
        await eventually(lambda: all(i.has_synced for i in factory.informers))
        port = await server.serve("127.0.0.1", 0)
        yield client, server, port
        await server.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await factory.shutdown()
    up_transport.close()


async def query(port: int, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    raw = await asyncio.to_thread(q.send, "127.0.0.1", port, tcp, 3)
    return DNSRecord.parse(raw)


def answers(rec: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in rec.rr)


async def add_pod(client, name: str, ip: str, ready: bool = True, **spec: Any) -> None:
    pod = await client.create(PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": "db"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}], **spec},
    })
    body = copy.deepcopy(pod)
    body["status"] = {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    await client.update(PODS, body, "status")


async def test_cluster_ip_service_a_srv_ptr(dns) -> None:
    client, _server, port = dns
    await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "prod"},
                                   "spec": {"clusterIP": "10.96.0.50", "selector": {"app": "web"},
                                            "ports": [{"name": "http", "port": 80}]}})

    async def resolves() -> bool:
        return answers(await query(port, "web.prod.svc.cluster.local")) == ["10.96.0.50"]

    await eventually(resolves, within=10)
    srv = await query(port, "_http._tcp.web.prod.svc.cluster.local", "SRV")
    assert answers(srv) == ["0 100 80 web.prod.svc.cluster.local."]
    ptr = await query(port, "50.0.96.10.in-addr.arpa", "PTR")
    assert answers(ptr) == ["web.prod.svc.cluster.local."]
    tcp = await query(port, "web.prod.svc.cluster.local", tcp=True)
    assert answers(tcp) == ["10.96.0.50"]
    # exists, other type: NOERROR, no answer; unknown: NXDOMAIN with the SOA
    aaaa = await query(port, "web.prod.svc.cluster.local", "AAAA")
    assert aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr
    missing = await query(port, "nope.prod.svc.cluster.local")
    assert missing.header.rcode == RCODE.NXDOMAIN and missing.auth and missing.header.aa


async def test_headless_service_returns_ready_pod_ips_and_hostnames(dns) -> None:
    client, _server, port = dns
    await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
                                   "spec": {"clusterIP": "None", "selector": {"app": "db"},
                                            "ports": [{"name": "pg", "port": 5432}]}})
    await add_pod(client, "db-0", "10.88.0.10", hostname="db-0", subdomain="db")
    await add_pod(client, "db-1", "10.88.0.11")
    await add_pod(client, "db-2", "10.88.0.12", ready=False)

    async def two() -> bool:
        return answers(await query(port, "db.default.svc.cluster.local")) == ["10.88.0.10", "10.88.0.11"]

    await eventually(two, within=10)
    assert answers(await query(port, "db-0.db.default.svc.cluster.local")) == ["10.88.0.10"]
    assert answers(await query(port, "10-88-0-11.db.default.svc.cluster.local")) == ["10.88.0.11"]
    assert (await query(port, "10-88-0-12.db.default.svc.cluster.local")).header.rcode == RCODE.NXDOMAIN
    srv = answers(await query(port, "_pg._tcp.db.default.svc.cluster.local", "SRV"))
    assert srv == ["0 50 5432 10-88-0-11.db.default.svc.cluster.local.", "0 50 5432 db-0.db.default.svc.cluster.local."]


async def test_pod_names_external_name_and_forwarding(dns) -> None:
    client, server, port = dns
    assert answers(await query(port, "10-88-3-4.default.pod.cluster.local")) == ["10.88.3.4"]
    await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
                                   "spec": {"type": "ExternalName", "externalName": "example.test"}})

    async def cname() -> bool:
        return answers(await query(port, "ext.default.svc.cluster.local")) == ["example.test."]

    await eventually(cname, within=10)
    fwd = await query(port, "example.test")
    assert answers(fwd) == ["192.0.2.1"]  # only the upstream knows this name
    assert (await query(port, "unknown.test")).header.rcode == RCODE.NXDOMAIN
    server.upstream = ["127.0.0.1"]
    server.upstream_port = 9  # nobody answers there: SERVFAIL, quickly
    server.upstream_timeout = 0.3
    assert (await query(port, "example.test")).header.rcode == RCODE.SERVFAIL


async def test_garbage_is_ignored_and_server_keeps_serving(dns) -> None:
    _client, _server, port = dns
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port))
    transport.sendto(b"\x00\x01garbage")
    transport.close()
    assert answers(await query(port, "1-2-3-4.default.pod.cluster.local")) == ["1.2.3.4"]
