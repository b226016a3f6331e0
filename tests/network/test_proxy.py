"""The nftables service proxy on a real CNI pod network: two "pods" (network
namespaces with a tiny TCP server each), Services and EndpointSlices in a real
in-memory API, traffic through the ClusterIP from the host and from a pod, a
NodePort on 127.0.0.1, ClientIP affinity, rejection without endpoints, and the
table gone afterwards."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.testing import eventually, local_api
from cloudlet.controllers.endpoints import SERVICES
from cloudlet.controllers.endpointslice import ENDPOINT_SLICES
from cloudlet.network.cni import PodNetwork
from cloudlet.network.proxy import ServiceProxy
from cloudlet.resources import REGISTRY
from tests.network.conftest import NetworkFactory, new_uid, requires_host_network, sh

pytestmark = requires_host_network

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
"""

CLIENT = """
import socket, sys
out = []
for _ in range(int(sys.argv[3])):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); out.append(c.recv(64).decode() or "-"); c.close()
    except OSError as e:
        out.append(type(e).__name__)
print(" ".join(out))
"""


def netns_name(path: str) -> str:
    return Path(path).name


async def ask(host: str, port: int, n: int = 1, netns: str | None = None) -> list[str]:
    argv = [sys.executable, "-c", CLIENT, host, str(port), str(n)]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return (await sh(*argv)).split()


@pytest.fixture
async def setup(make_network: NetworkFactory) -> AsyncIterator[dict[str, Any]]:
    pn: PodNetwork = await make_network()
    servers: list[subprocess.Popen[bytes]] = []
    pods = []
    for name in ("a", "b"):
        info = await pn.setup(new_uid(), "default", name)
        servers.append(subprocess.Popen(  # noqa: ASYNC220 - a long-lived server, killed at teardown
            ["ip", "netns", "exec", netns_name(info.netns_path), sys.executable, "-c", SERVER, name]))
        pods.append((name, info))
    async with local_api(REGISTRY) as (_s, _a, client):
        factory = SharedInformerFactory(client)
        proxy = ServiceProxy(factory.informer(SERVICES), factory.informer(ENDPOINT_SLICES),
                             instance=pn.instance, bridge=pn.bridge, min_sync_interval=0.01)
        factory.start()
        assert await proxy.start()
        task = asyncio.create_task(proxy.run())
        try:
            yield {"client": client, "proxy": proxy, "pods": pods, "network": pn}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.shutdown()
            for s in servers:
                s.kill()
                s.wait()
    table = await sh("nft", "list", "tables")
    assert proxy.table not in table  # the proxy removed its table


async def add_service(client, name: str, cluster_ip: str, pods: list, **spec: Any) -> None:
    await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                                   "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 80, "targetPort": 8080, **spec.pop("port_extra", {})}],
                                            **spec}})
    await client.create(ENDPOINT_SLICES, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": f"{name}-x", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [info.ip], "conditions": {"ready": True}} for _n, info in pods]})


def random_cluster_ip() -> str:
    return f"10.{random.randint(96, 111)}.{random.randint(1, 254)}.{random.randint(1, 254)}"


async def test_cluster_ip_from_host_and_pod_balances_over_endpoints(setup) -> None:
    client, proxy, pods = setup["client"], setup["proxy"], setup["pods"]
    ip = random_cluster_ip()
    await add_service(client, "web", ip, pods)
    await eventually(lambda: ip in proxy.rendered, within=10)
    answers = await ask(ip, 80, 40)
    assert set(answers) == {"a", "b"}, answers  # both endpoints serve, from the host
    from_pod = await ask(ip, 80, 20, netns=netns_name(pods[0][1].netns_path))
    assert set(from_pod) <= {"a", "b"} and "a" in from_pod, from_pod  # incl. hairpin back to itself


async def test_nodeport_on_localhost_and_client_ip_affinity(setup) -> None:
    client, proxy, pods = setup["client"], setup["proxy"], setup["pods"]
    ip = random_cluster_ip()
    node_port = random.randint(30000, 32767)
    await add_service(client, "sticky", ip, pods, type="NodePort", sessionAffinity="ClientIP", port_extra={"nodePort": node_port})
    await eventually(lambda: f"tcp . {node_port}" in proxy.rendered, within=10)
    via_node_port = await ask("127.0.0.1", node_port, 10)
    assert len(set(via_node_port)) == 1 and via_node_port[0] in ("a", "b"), via_node_port
    sticky = await ask(ip, 80, 20)
    assert len(set(sticky)) == 1, sticky  # one client, one endpoint


async def test_no_endpoints_rejected_then_served_then_removed(setup) -> None:
    client, proxy, pods = setup["client"], setup["proxy"], setup["pods"]
    ip = random_cluster_ip()
    await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty", "namespace": "default"},
                                   "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    await eventually(lambda: ip in proxy.rendered, within=10)
    assert await ask(ip, 80) == ["ConnectionRefusedError"]  # rejected at once, not a timeout
    await client.create(ENDPOINT_SLICES, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "empty-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "empty"}},
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [pods[1][1].ip], "conditions": {"ready": True}},
                      {"addresses": [pods[0][1].ip], "conditions": {"ready": False}}]})
    await eventually(lambda: f"dnat to {pods[1][1].ip}:8080" in proxy.rendered, within=10)
    assert set(await ask(ip, 80, 10)) == {"b"}  # only the ready endpoint
    await client.delete(SERVICES, "empty", "default")
    await eventually(lambda: ip not in proxy.rendered, within=10)
    ruleset = await sh("nft", "list", "table", "ip", proxy.table)
    assert ip not in ruleset and "10.96.0.0/12" in ruleset
