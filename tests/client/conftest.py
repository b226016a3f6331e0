"""Client test fixtures: the cache mutation detector is on for every test here,
and ``served`` gives an in-process Server with both clients onto it."""

from __future__ import annotations

import socket

import pytest

from cloudlet.client.http import HTTPClient
from cloudlet.client.informer import MUTATION_DETECTOR_ENV
from cloudlet.client.local import LocalClient
from cloudlet.server import Config, Server


@pytest.fixture(autouse=True)
def _detect_cache_mutations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MUTATION_DETECTOR_ENV, "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def both_clients(tmp_path):
    """``(server, LocalClient, HTTPClient)``: one in-memory Server (with its
    namespace controller and garbage collector), reached in-process and over HTTPS."""
    server = Server(Config(data_dir=tmp_path, port=free_port(), store="memory", min_history=0))
    await server.start()
    assert server.api is not None
    local = LocalClient(server.api)
    http = HTTPClient.from_kubeconfig(tmp_path / "kubeconfig.yaml")
    try:
        yield server, local, http
    finally:
        await http.close()
        await server.stop()
