"""The server's hollow-node wiring: Config.hollow_nodes, Server.hollow, the CLI helpers over HTTPS."""

from __future__ import annotations

import socket

from cloudlet.client.local import LocalClient
from cloudlet.client.testing import eventually
from cloudlet.node.cli import add_hollow_nodes, set_hollow_stopped
from cloudlet.node.hollow import LEASES, NODES
from cloudlet.node.objects import HollowSpec, is_node_ready
from cloudlet.server import Config, Server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_server_registers_hollow_nodes_and_cli_adds_more(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = Config(data_dir=tmp_path, port=_free_port(), store="memory", hollow_nodes=2, hollow_node_cpu="8",
                 hollow_node_memory="16Gi", hollow_node_pods=30, node_monitor_grace_period=2.0)
    server = Server(cfg)
    await server.start()
    try:
        assert server.api is not None and server.hollow is not None
        client = LocalClient(server.api)
        listed = await client.list(NODES)
        assert sorted(n["metadata"]["name"] for n in listed["items"]) == ["hollow-node-0", "hollow-node-1"]
        node = listed["items"][0]
        assert node["status"]["capacity"] == {"cpu": "8", "memory": "16Gi", "pods": "30", "ephemeral-storage": "100Gi"}
        assert server.hollow.heartbeat_interval == 0.5  # a quarter of the grace period

        kubeconfig = tmp_path / "kubeconfig.yaml"
        added = await add_hollow_nodes(kubeconfig, HollowSpec(cpu="2"), 1, None)
        assert added == ["hollow-node-2"]
        await eventually(lambda: server.hollow.active == ["hollow-node-0", "hollow-node-1", "hollow-node-2"])
        assert (await client.get(NODES, "hollow-node-2"))["status"]["capacity"]["cpu"] == "2"



        async def leased() -> bool:
            leases = await client.list(LEASES, "kube-node-lease")
            return "hollow-node-2" in {x["metadata"]["name"] for x in leases["items"]}

        await eventually(leased)  # a node that never heartbeat is not judged by the lifecycle controller
        await set_hollow_stopped(kubeconfig, "hollow-node-2", True)
        await eventually(lambda: "hollow-node-2" not in server.hollow.active)

        async def unknown() -> bool:
            return not is_node_ready(await client.get(NODES, "hollow-node-2"))

        await eventually(unknown, within=6)
        assert is_node_ready(await client.get(NODES, "hollow-node-0"))
        await set_hollow_stopped(kubeconfig, "hollow-node-2", False)

        async def ready() -> bool:
            return is_node_ready(await client.get(NODES, "hollow-node-2"))

        await eventually(ready, within=3)
    finally:
        await server.stop()


async def test_restart_readopts_without_duplicates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    server = Server(Config(data_dir=tmp_path, port=port, hollow_nodes=2))
    await server.start()
    await server.stop()
    server = Server(Config(data_dir=tmp_path, port=port, hollow_nodes=3))
    await server.start()
    try:
        assert server.api is not None and server.hollow is not None
        listed = await LocalClient(server.api).list(NODES)
        assert sorted(n["metadata"]["name"] for n in listed["items"]) == ["hollow-node-0", "hollow-node-1", "hollow-node-2"]
        await eventually(lambda: len(server.hollow.active) == 3)
    finally:
        await server.stop()
