"""Binding over HTTPS and the scheduler over an HTTP client (any Kubernetes API)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.http import HTTPClient
from cloudlet.client.testing import eventually
from cloudlet.scheduler import Scheduler
from cloudlet.server import Config, Server

from .conftest import node, pod
from .test_scheduling import NODES, PODS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(tmp_path):
    server = Server(Config(data_dir=tmp_path, port=free_port(), store="memory", scheduler=False))
    await server.start()
    http = HTTPClient.from_kubeconfig(tmp_path / "kubeconfig.yaml")
    try:
        yield server, http
    finally:
        await http.close()
        await server.stop()


def binding(name: str, node_name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}


async def test_binding_subresource_over_http(served):
    _server, http = served
    await http.create(PODS, pod("p"))
    path = "/api/v1/namespaces/default/pods/{}/binding"
    out = await http.request("POST", path.format("p"), body=binding("p", "n1"))
    assert out["status"] == "Success"
    assert (await http.get(PODS, "p", "default"))["spec"]["nodeName"] == "n1"
    with pytest.raises(APIError) as e:
        await http.request("POST", path.format("p"), body=binding("p", "n2"))
    assert e.value.code == 409
    assert 'pod p is already assigned to node "n1"' in e.value.message
    with pytest.raises(APIError) as e:
        await http.request("POST", path.format("ghost"), body=binding("ghost", "n1"))
    assert e.value.code == 404


async def test_discovery_lists_pods_binding(served):
    _server, http = served
    res = await http.request("GET", "/api/v1")
    by_name = {r["name"]: r for r in res["resources"]}
    assert by_name["pods/binding"]["verbs"] == ["create"]


async def test_scheduler_over_http_client(served):
    _server, http = served
    s = Scheduler(http, initial_backoff=0.01, max_backoff=0.05)
    task = asyncio.create_task(s.run())
    try:
        await http.create(NODES, node("n1"))
        await http.create(PODS, pod("p", cpu="1"))

        async def bound() -> bool:
            return (await http.get(PODS, "p", "default"))["spec"].get("nodeName") == "n1"

        await eventually(bound, within=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_server_runs_the_scheduler(tmp_path):
    server = Server(Config(data_dir=tmp_path, port=free_port(), store="memory"))
    await server.start()
    http = HTTPClient.from_kubeconfig(tmp_path / "kubeconfig.yaml")
    try:
        await http.create(NODES, node("n1"))
        await http.create(PODS, pod("p"))

        async def bound() -> bool:
            return (await http.get(PODS, "p", "default"))["spec"].get("nodeName") == "n1"

        await eventually(bound, within=10)
    finally:
        await http.close()
        await server.stop()
