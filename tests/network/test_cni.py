"""cloudlet.network.cni.PodNetwork with the real CNI plugins (bridge, host-local, portmap, loopback).

Everything is real: namespaces, veths, the bridge, host-local reservations and
portmap's iptables rules; traffic is real TCP (and ICMP from a busybox process)
between namespaces. The conftest fixture checks that each test leaves nothing
of its instance on the host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shlex
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cloudlet.network import netns
from cloudlet.network.cni import CNIError, NetworkError, PodNetwork, pick_free_cidr
from tests.network.conftest import (
    NetworkFactory,
    assert_no_leaks,
    dnat_chains_left,
    free_port,
    ipam_reservations,
    link_exists,
    nat_rules_of,
    new_uid,
    poll,
    requires_host_network,
    sh,
)

pytestmark = requires_host_network


@asynccontextmanager
async def echo_server_in(netns_path: str, port: int) -> AsyncIterator[None]:
    """A TCP server inside a pod's namespace answering ``<pod-ip-seen-peer> <line>``."""
    sock = await asyncio.to_thread(netns.socket_in, netns_path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(16)
    sock.setblocking(False)

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        line = await r.readline()
        w.write(f"{w.get_extra_info('peername')[0]} {line.decode()}".encode())
        await w.drain()
        w.close()

    server = await asyncio.start_server(handle, sock=sock)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def ask(reader_writer: tuple[asyncio.StreamReader, asyncio.StreamWriter], text: str) -> str:
    r, w = reader_writer
    w.write(text.encode() + b"\n")
    await w.drain()
    answer = await asyncio.wait_for(r.readline(), 10)
    w.close()
    return answer.decode().strip()


async def test_pods_get_ips_and_reach_each_other_and_the_host(network: PodNetwork) -> None:
    a, b = new_uid(), new_uid()
    ia, ib = await asyncio.gather(network.setup(a, "default", "a"), network.setup(b, "default", "b"))
    cidr = network.pod_cidr
    assert ia.ip != ib.ip
    for info in (ia, ib):
        assert ipaddress.ip_address(info.ip) in cidr and info.ips == [info.ip]
        assert info.gateway == network.host_ip == str(next(cidr.hosts()))
        assert info.interface == "eth0" and link_exists(info.host_interface)
        assert Path(info.netns_path).name.startswith(f"cloudlet-{network.instance}-")
    port = free_port()
    async with echo_server_in(ia.netns_path, port):
        # pod b -> pod a (over the bridge); a sees b's own address: no NAT between pods
        got = await ask(await netns.open_connection(ib.netns_path, ia.ip, port), "from-b")
        assert got == f"{ib.ip} from-b"
        # host -> pod a; a sees the bridge address
        got = await ask(await asyncio.wait_for(asyncio.open_connection(ia.ip, port), 10), "host")
        assert got == f"{network.host_ip} host"
    # pod -> host: a server on the host's bridge address
    host_port = free_port()

    async def host_handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(f"{w.get_extra_info('peername')[0]} {(await r.readline()).decode()}".encode())
        await w.drain()
        w.close()

    server = await asyncio.start_server(host_handle, network.host_ip, host_port)
    async with server:
        got = await ask(await netns.open_connection(ia.netns_path, network.host_ip, host_port), "x")
        assert got == f"{ia.ip} x"
    # a real process in the namespace (entered the `ip netns` way): ICMP to the other pod
    ping = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", Path(ib.netns_path).name, "busybox", "ping", "-c", "1", "-W", "5",
        ia.ip, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await ping.communicate()
    assert ping.returncode == 0, out.decode()
    veths = [ia.host_interface, ib.host_interface]
    await asyncio.gather(network.teardown(a), network.teardown(b))
    assert ipam_reservations(network) == []
    await poll(lambda: not any(link_exists(v) for v in veths), what="veths to go")


SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
print("ready", flush=True)
while True:
    c, peer = s.accept(); c.sendall(("hello from " + sys.argv[2] + "\\n").encode()); c.close()
"""


async def read_hello(host: str, port: int, netns_path: str | None = None) -> str:
    if netns_path:
        r, w = await netns.open_connection(netns_path, host, port)
    else:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    try:
        return (await asyncio.wait_for(r.readline(), 10)).decode().strip()
    finally:
        w.close()


async def test_host_port_through_portmap(network: PodNetwork) -> None:
    """hostPort answers on 127.0.0.1 (portmap's SNAT + route_localnet on our bridge), on the
    bridge address, from another pod and from the pod itself (hairpin)."""
    web, client = new_uid(), new_uid()
    host_port = free_port()
    info = await network.setup(web, "default", "web", [
        {"name": "http", "containerPort": 8080, "hostPort": host_port, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090},  # no hostPort: no mapping
    ])
    other = await network.setup(client, "default", "client")
    rules = nat_rules_of(network)
    assert rules and all(f"--dports {host_port}" in r for r in rules)
    assert not any("9090" in r for r in rules)
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", Path(info.netns_path).name, sys.executable, "-c", SERVER, "8080",
        "web", stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        assert await read_hello("127.0.0.1", host_port) == "hello from web"
        assert await read_hello(network.host_ip, host_port) == "hello from web"
        assert await read_hello(network.host_ip, host_port, other.netns_path) == "hello from web"
        assert await read_hello(network.host_ip, host_port, info.netns_path) == "hello from web"
        await network.check(web)
    finally:
        proc.kill()
        await proc.wait()
    assert len(dnat_chains_left(network, [web])) == 1
    # CHECK notices a missing hostPort rule (the IPv4 side is verified by cloudlet itself:
    # portmap 1.1.1's own CHECK wrongly insists on ip6tables rules)
    (rule,) = nat_rules_of(network)
    await sh("iptables", "-w", "-t", "nat", "-D", *shlex.split(rule)[1:])
    with pytest.raises(CNIError) as e:
        await network.check(web)
    assert e.value.plugin == "portmap" and e.value.command == "CHECK"
    await network.teardown(web)
    assert nat_rules_of(network) == [] and dnat_chains_left(network, [web]) == []
    with pytest.raises(OSError):
        await read_hello("127.0.0.1", host_port)
    await network.teardown(client)


async def test_setup_and_teardown_are_idempotent(network: PodNetwork) -> None:
    uid = new_uid()
    first = await network.setup(uid, "ns1", "p")
    again = await network.setup(uid, "ns1", "p")
    assert again == first
    assert len(ipam_reservations(network)) == 1
    concurrent = await asyncio.gather(*(network.setup(uid, "ns1", "p") for _ in range(5)))
    assert all(c == first for c in concurrent)
    assert await network.list_pods() == [uid]
    await asyncio.gather(network.teardown(uid), network.teardown(uid))
    await network.teardown(uid)
    assert await network.list_pods() == []
    assert not netns.exists(first.netns_path)
    assert ipam_reservations(network) == []
    await network.teardown(new_uid())  # never seen: fine


async def test_non_uuid_pod_uids_are_mapped_to_stable_keys(network: PodNetwork) -> None:
    info = await network.setup("static-pod/etc/x", "kube-system", "x")
    assert Path(info.netns_path).name.startswith(network.netns_prefix)
    assert await network.list_pods() == ["static-pod/etc/x"]
    await network.teardown("static-pod/etc/x")
    assert not netns.exists(info.netns_path)


async def test_a_new_object_tears_down_what_the_previous_one_set_up(
        make_network: NetworkFactory, tmp_path: Path) -> None:
    first = await make_network()
    uid = new_uid()
    host_port = free_port()
    info = await first.setup(uid, "default", "web",
                             [{"containerPort": 80, "hostPort": host_port}])
    assert nat_rules_of(first)
    # "restart": a new object on the same state dir, not even started
    second = PodNetwork(first.state_dir, first.instance, str(first.pod_cidr))
    assert await second.list_pods() == [uid]
    await second.teardown(uid)
    assert not netns.exists(info.netns_path)
    assert nat_rules_of(first) == [] and dnat_chains_left(first, [uid]) == []
    assert ipam_reservations(first) == []
    await second.teardown(uid)
    await poll(lambda: not link_exists(info.host_interface), what="veth to go")


async def test_a_half_done_setup_is_redone_without_leaking(network: PodNetwork) -> None:
    uid = new_uid()
    await network.setup(uid, "default", "p")
    # as if the process died after ADD ran but before its result reached the cache
    (record,) = network.results_dir.glob("*.json")
    rec = json.loads(record.read_text())
    rec["result"] = None
    record.write_text(json.dumps(rec))
    again = PodNetwork(network.state_dir, network.instance, str(network.pod_cidr))
    await again.start()
    assert await again.list_pods() == [uid]
    info = await again.setup(uid, "default", "p")
    assert netns.exists(info.netns_path) and ipaddress.ip_address(info.ip) in network.pod_cidr
    assert len(ipam_reservations(network)) == 1  # the first address was released by DEL
    await again.teardown(uid)
    assert ipam_reservations(network) == []


async def test_cleanup_all_removes_an_orphaned_namespace_without_cache(network: PodNetwork) -> None:
    uid = new_uid()
    info = await network.setup(uid, "default", "p", [{"containerPort": 80, "hostPort": free_port()}])
    # lose the cache (as if the state dir were damaged): cleanup must still find everything
    for p in network.results_dir.glob("*.json"):
        p.unlink()
    assert await network.list_pods() == [uid]  # found by its namespace name
    await network.cleanup_all()
    await assert_no_leaks(network, [info.host_interface])
    assert dnat_chains_left(network, [uid]) == []


async def test_check_reports_a_broken_pod(network: PodNetwork) -> None:
    uid = new_uid()
    info = await network.setup(uid, "default", "p")
    await network.check(uid)
    # other pods coming and going do not disturb it (the bridge keeps its MAC)
    other = new_uid()
    await network.setup(other, "default", "other")
    await network.check(uid)
    await network.teardown(other)
    await network.check(uid)
    await sh("ip", "netns", "exec", Path(info.netns_path).name, "ip", "link", "del", "eth0")
    with pytest.raises(CNIError) as e:
        await network.check(uid)
    assert e.value.plugin == "bridge" and e.value.command == "CHECK" and "eth0" in str(e.value)
    await network.teardown(uid)  # DEL copes with the missing interface
    assert ipam_reservations(network) == []
    with pytest.raises(NetworkError, match="no network set up"):
        await network.check(uid)


async def test_failed_setup_rolls_back_and_says_why(make_network: NetworkFactory) -> None:
    cidr = pick_free_cidr(prefixlen=30)  # room for the gateway and one pod
    network = await make_network(cidr)
    first = await network.setup(new_uid(), "default", "first")
    uid = new_uid()
    with pytest.raises(CNIError) as e:
        await network.setup(uid, "default", "second")
    assert e.value.plugin == "bridge" and e.value.command == "ADD"
    assert "no IP addresses available" in str(e.value) and "default/second" in str(e.value)
    assert not netns.exists(network.netns_path(uid))
    assert await network.list_pods() != [] and uid not in await network.list_pods()
    assert netns.exists(first.netns_path)


async def test_setup_requires_start_and_start_checks_plugins(
        make_network: NetworkFactory, tmp_path: Path) -> None:
    network = await make_network(start=False)
    with pytest.raises(NetworkError, match="start"):
        await network.setup(new_uid(), "default", "p")
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    bad = PodNetwork(tmp_path / "bad", "bad", pick_free_cidr(), plugin_dirs=[str(empty)])
    with pytest.raises(NetworkError, match="CNI plugins not found.*bridge"):
        await bad.start()
    await bad.cleanup_all()


async def test_conflist_is_what_the_plugins_get(network: PodNetwork) -> None:
    conf = json.loads(network.conflist_path.read_text())
    assert conf["cniVersion"] == "1.0.0" and conf["name"] == f"cloudlet-{network.instance}"
    bridge, portmap, loopback = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == network.bridge
    assert len(network.bridge) <= 15 and network.bridge.startswith("cl-")
    assert bridge["isGateway"] is True and bridge["ipMasq"] is False and bridge["hairpinMode"]
    assert bridge["ipam"]["type"] == "host-local"
    assert Path(bridge["ipam"]["dataDir"]).is_relative_to(network.state_dir)
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    assert loopback == {"type": "loopback"}
    # the bridge carries the gateway address from start() on
    out = await sh("ip", "-j", "addr", "show", "dev", network.bridge)
    addrs = [a["local"] for a in json.loads(out)[0]["addr_info"] if a["family"] == "inet"]
    assert addrs == [network.host_ip]


async def test_two_instances_coexist(make_network: NetworkFactory) -> None:
    one, two = await make_network(), await make_network()
    assert one.bridge != two.bridge and not one.pod_cidr.overlaps(two.pod_cidr)
    u1, u2 = new_uid(), new_uid()
    i1, i2 = await asyncio.gather(one.setup(u1, "default", "p"), two.setup(u2, "default", "p"))
    assert ipaddress.ip_address(i1.ip) in one.pod_cidr
    assert ipaddress.ip_address(i2.ip) in two.pod_cidr
    assert await one.list_pods() == [u1] and await two.list_pods() == [u2]
    # a third instance may not take a CIDR that is in use
    with pytest.raises(NetworkError, match="overlaps"):
        await make_network(str(one.pod_cidr))
    await one.cleanup_all()
    await assert_no_leaks(one, [i1.host_interface])
    # the other instance is untouched and still works
    assert netns.exists(i2.netns_path) and await two.list_pods() == [u2]
    port = free_port()
    async with echo_server_in(i2.netns_path, port):
        got = await ask(await asyncio.wait_for(asyncio.open_connection(i2.ip, port), 10), "still")
        assert got == f"{two.host_ip} still"


async def test_no_leaks_after_30_setups_and_teardowns(network: PodNetwork) -> None:
    veths: list[str] = []
    all_uids: list[str] = []
    for round_ in range(3):
        uids = [new_uid() for _ in range(10)]
        all_uids += uids
        ports = [free_port() if i % 2 else 0 for i in range(10)]
        infos = await asyncio.gather(*(
            network.setup(u, "default", f"p{round_}-{i}",
                          [{"containerPort": 80, "hostPort": ports[i]}])
            for i, u in enumerate(uids)))
        assert len({i.ip for i in infos}) == 10
        assert len(nat_rules_of(network)) == 5
        veths += [i.host_interface for i in infos]
        await asyncio.gather(*(network.teardown(u) for u in uids))
        assert await network.list_pods() == []
    assert ipam_reservations(network) == []
    assert nat_rules_of(network) == [] and dnat_chains_left(network, all_uids) == []
    assert netns.list_dir(network.netns_dir, network.netns_prefix) == []
    await poll(lambda: not any(link_exists(v) for v in veths), what="veths to go")
    # only the bridge is left until cleanup_all, which the fixture runs and checks
    out = await sh("ip", "-j", "link", "show", "master", network.bridge)
    assert json.loads(out or "[]") == []


async def test_chain_per_pod_skips_portmap_without_host_ports(network: PodNetwork) -> None:
    """A pod without hostPorts runs bridge + loopback (no portmap spawn); its cache entry
    records that chain, so DEL runs the same one. ``lo`` is up either way (the loopback
    step runs in-process) and the result is the bridge's, as the real loopback plugin
    passes a previous result through."""
    plain, mapped = new_uid(), new_uid()
    info = await network.setup(plain, "default", "plain", [{"containerPort": 80}])
    other = await network.setup(mapped, "default", "mapped", [{"containerPort": 80, "hostPort": free_port()}])
    records = {json.loads(p.read_text())["podUID"]: json.loads(p.read_text())
               for p in network.results_dir.glob("*.json")}
    assert [p["type"] for p in records[plain]["config"]["plugins"]] == ["bridge", "loopback"]
    assert [p["type"] for p in records[mapped]["config"]["plugins"]] == ["bridge", "portmap", "loopback"]
    for i in (info, other):
        assert await asyncio.to_thread(netns.link_is_up, i.netns_path, "lo")
        out = await sh("ip", "netns", "exec", Path(i.netns_path).name, "ip", "-o", "addr", "show", "dev", "lo")
        assert "127.0.0.1/8" in out
    assert [i["name"] for i in records[plain]["result"]["interfaces"]][-1] == "eth0"
    await network.check(plain)
    # CHECK notices a loopback that went down
    await sh("ip", "netns", "exec", Path(info.netns_path).name, "ip", "link", "set", "lo", "down")
    with pytest.raises(CNIError) as e:
        await network.check(plain)
    assert e.value.plugin == "loopback"
    assert len(nat_rules_of(network)) == 1  # only the mapped pod's
    await network.teardown(plain)
    await network.teardown(mapped)
    assert nat_rules_of(network) == [] and dnat_chains_left(network, [mapped]) == []
    assert ipam_reservations(network) == []


async def test_netns_ready_is_called_before_the_plugins_run(network: PodNetwork) -> None:
    """The node agent starts the sandbox in the namespace while ADD still runs: the
    callback comes once the namespace exists and before eth0 is there; not again for a
    pod that is set up already."""
    uid = new_uid()
    seen: list[list[str]] = []
    path = network.netns_path(uid)

    def ready() -> None:
        assert netns.exists(path)
        seen.append(sorted(n for _i, n in netns.run_in(path, socket.if_nameindex)))

    info = await network.setup(uid, "default", "p", netns_ready=ready)
    assert seen == [["lo"]] and info.netns_path == path
    await network.setup(uid, "default", "p", netns_ready=ready)
    assert len(seen) == 1
    await network.teardown(uid)
