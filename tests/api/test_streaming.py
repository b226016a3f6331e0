"""pods/log, pods/exec, pods/attach, pods/portforward at the HTTP level, and the SPDY framing.

The app is the real one (``build_app`` + ``streaming.install``) over an
in-memory store, driven by aiohttp's WebSocket client speaking the channel
protocols byte by byte (kubectl itself is exercised in
``tests/e2e/test_kubectl_streams.py``). Stand-in: :class:`Provider` replaces
the node agent (being written concurrently; its e2e tests go through runc):
exec runs local subprocesses, port-forward dials a local echo server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
from cloudlet.api import spdy, streaming
from cloudlet.api.app import build_app
from cloudlet.api.streaming import check_log_state, exit_status, get_pod_streams, set_pod_streams
from cloudlet.client.testing import local_api
from cloudlet.node.logs import format_record
from cloudlet.resources.pod import PODS
from cloudlet.resources.registry import REGISTRY

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Session:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def write_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[Literal[1, 2], bytes]]:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            yield 1, chunk

    async def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        return await self.proc.wait()

    async def kill(self) -> None:
        self.proc.kill()


class Provider:
    def __init__(self, log_dir: Path, echo_port: int) -> None:
        self.log_dir = log_dir
        self.echo_port = echo_port
        self.sessions: list[Session] = []

    async def log_file(self, namespace: str, pod: str, container: str | None, previous: bool) -> Path:
        return self.log_dir / f"{pod}-{container}.log"

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        return False

    async def exec(self, namespace: str, pod: str, container: str | None, argv: list[str], tty: bool,
                   stdin: bool) -> Session:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.sessions.append(Session(proc))
        return self.sessions[-1]

    async def port_forward(self, namespace: str, pod: str, port: int) -> tuple[asyncio.StreamReader,
                                                                                  asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.echo_port if port == 80 else 1)


async def _pod(api: Any, name: str, containers: list[str], node: str = "n1", phase: str = "Running",
               state: dict[str, Any] | None = None) -> None:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    await api.create(PODS, "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        pod["status"] = {"phase": phase, "containerStatuses": [
            {"name": c, "ready": True, "restartCount": 0, "image": "busybox", "imageID": "",
             "state": state or {"running": {"startedAt": "2026-01-01T00:00:00Z"}}} for c in containers]}
        return pod

    await api.guaranteed_update(PODS, "default", name, mutate, subresource="status")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Provider, Any]]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()

    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = echo_server.sockets[0].getsockname()[1]
    async with local_api(REGISTRY) as (_store, api, _client):
        app, handlers = build_app(api, REGISTRY, TOKEN)
        streaming.install(handlers)
        provider = Provider(tmp_path, port)
        set_pod_streams(app, provider)
        assert get_pod_streams(handlers) is provider
        await _pod(api, "web", ["app"])
        await _pod(api, "done", ["app"], phase="Succeeded",
                   state={"terminated": {"exitCode": 0, "containerID": "cri://x"}})
        await _pod(api, "pending", ["app"], node="")
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield client, provider, handlers
        finally:
            await client.close()
            echo_server.close()


async def test_log_route(env: tuple[TestClient[Any, Any], Provider, Any]) -> None:
    client, provider, _ = env
    (provider.log_dir / "web-app.log").write_bytes(
        format_record("stdout", b"a", 10**18) + format_record("stderr", b"b", 10**18 + 1))
    resp = await client.get("/api/v1/namespaces/default/pods/web/log?tailLines=1&timestamps=true", headers=AUTH)
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert await resp.text() == "2001-09-09T01:46:40.000000001Z b\n"
    resp = await client.get("/api/v1/namespaces/default/pods/pending/log", headers=AUTH)
    assert resp.status == 200 and await resp.text() == ""  # not scheduled: nothing (kube-apiserver)
    resp = await client.get("/api/v1/namespaces/default/pods/web/log?tailLines=-1&limitBytes=0", headers=AUTH)
    body = await resp.json()
    assert resp.status == 422 and body["message"] == (
        'PodLogOptions "web" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, '
        "limitBytes: Invalid value: 0: must be greater than 0]")
    resp = await client.get("/api/v1/namespaces/default/pods/web/log?sinceSeconds=5&sinceTime=2020-01-01T00:00:00Z",
                            headers=AUTH)
    assert resp.status == 422 and "at most one of `sinceTime` or `sinceSeconds` may be specified" in (
        await resp.json())["message"]
    resp = await client.get("/api/v1/namespaces/default/pods/web/log?follow=maybe", headers=AUTH)
    assert resp.status == 400


def test_kubelet_log_state_messages() -> None:
    def pod(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
        cs: dict[str, Any] = {"name": "c", "state": state}
        if last:
            cs["lastState"] = {"terminated": last}
        return {"metadata": {"name": "p"}, "status": {"containerStatuses": [cs]}}

    def msg(p: dict[str, Any], previous: bool = False) -> str:
        with pytest.raises(streaming.APIError) as e:
            check_log_state(p, "c", previous)
        assert e.value.code == 400
        return e.value.message

    assert msg(pod({"waiting": {"reason": "ErrImagePull"}})) == \
        'container "c" in pod "p" is waiting to start: image can\'t be pulled'
    assert msg(pod({"waiting": {"reason": "ImagePullBackOff"}})) == \
        'container "c" in pod "p" is waiting to start: trying and failing to pull image'
    assert msg(pod({"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 1})) == \
        'container "c" in pod "p" is terminated'
    assert msg(pod({"running": {}}), previous=True) == 'previous terminated container "c" in pod "p" not found'
    assert msg({"metadata": {"name": "p"}, "status": {}}) == \
        'container "c" in pod "p" is waiting to start: ContainerCreating'
    check_log_state(pod({"waiting": {"reason": "CrashLoopBackOff"}}, {"containerID": "cri://1"}), "c", False)
    check_log_state(pod({"running": {}}, {"containerID": "cri://1"}), "c", True)


async def _exec(client: TestClient[Any, Any], query: str, protocol: str,
                send: list[bytes]) -> tuple[bytes, dict[str, Any]]:
    ws = await client.ws_connect(f"/api/v1/namespaces/default/pods/web/exec?{query}", headers=AUTH,
                                 protocols=(protocol,))
    assert ws.protocol == protocol
    for m in send:
        await ws.send_bytes(m)
    out = b""
    status: dict[str, Any] = {}
    async for msg in ws:
        assert msg.type == WSMsgType.BINARY
        if msg.data[0] == 1:
            out += msg.data[1:]
        elif msg.data[0] == 3:
            status = json.loads(msg.data[1:])
    return out, status


async def test_exec_channels(env: tuple[TestClient[Any, Any], Provider, Any]) -> None:
    client, provider, _ = env
    q = "command=cat&stdin=true&stdout=true&stderr=true"
    out, status = await _exec(client, q, "v5.channel.k8s.io", [b"\x00hello ", b"\x00world", b"\xff\x00"])
    assert out == b"hello world" and status == {"metadata": {}, "status": "Success"}
    q = "command=sh&command=-c&command=exit%207&stdout=true"
    out, status = await _exec(client, q, "v4.channel.k8s.io", [])
    assert status["reason"] == "NonZeroExitCode" and status["status"] == "Failure"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]
    assert exit_status(7, ["x"])["message"].startswith("command terminated with non-zero exit code")


async def test_exec_client_gone_kills_the_command(env: tuple[TestClient[Any, Any], Provider, Any]) -> None:
    client, provider, _ = env
    ws = await client.ws_connect("/api/v1/namespaces/default/pods/web/exec?command=sleep&command=300&stdout=true",
                                 headers=AUTH, protocols=("v5.channel.k8s.io",))
    assert len(provider.sessions) == 1  # started before the upgrade answered
    await ws.close()
    assert await asyncio.wait_for(provider.sessions[-1].proc.wait(), 10) != 0


async def test_stream_errors(env: tuple[TestClient[Any, Any], Provider, Any]) -> None:
    client, _, handlers = env
    base = "/api/v1/namespaces/default/pods"

    async def err(path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        resp = await client.get(base + path, headers={**AUTH, **(headers or {})})
        body = await resp.json()
        assert body["kind"] == "Status"
        return resp.status, body["message"]

    ws = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    assert await err("/done/exec?command=ls&stdout=true", ws) == (
        400, "cannot exec into a container in a completed pod; current phase is Succeeded")
    assert await err("/pending/exec?command=ls&stdout=true", ws) == (400, "pod pending does not have a host assigned")
    assert await err("/web/exec?stdout=true", ws) == (400, "you must specify at least 1 command")
    assert (await err("/web/exec?command=ls&stdout=true",
                      {"Upgrade": "SPDY/3.1", "Connection": "Upgrade"}))[0] == 400
    assert (await err("/web/attach?stdout=true", ws))[0] == 400
    assert await err("/web/portforward?ports=0", ws) == (400, "port 0 must be > 0 and < 65536")
    assert await err("/nope/portforward?ports=80", ws) == (404, 'pods "nope" not found')
    set_pod_streams(handlers, None)
    status, message = await err("/web/exec?command=ls&stdout=true", ws)
    assert status == 503 and "no node agent" in message


async def test_port_forward_v4_channels(env: tuple[TestClient[Any, Any], Provider, Any]) -> None:
    client, _, _ = env
    ws = await client.ws_connect("/api/v1/namespaces/default/pods/web/portforward?ports=80,81", headers=AUTH,
                                 protocols=("v4.channel.k8s.io",))
    first = [(await ws.receive_bytes()) for _ in range(4)]
    assert first[:2] == [b"\x00\x50\x00", b"\x01\x50\x00"] and first[2:] == [b"\x02\x51\x00", b"\x03\x51\x00"]
    assert (await ws.receive_bytes()).startswith(b"\x03error forwarding port 81 to pod web")
    await ws.send_bytes(b"\x00ping")
    assert await ws.receive_bytes() == b"\x00ping"
    await ws.close()


async def test_port_forward_spdy_tunnel(env: tuple[TestClient[Any, Any], Provider, Any]) -> None:
    client, _, _ = env
    ws = await client.ws_connect("/api/v1/namespaces/default/pods/web/portforward", headers=AUTH,
                                 protocols=("SPDY/3.1+portforward.k8s.io",))
    assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
    w, r = spdy.FrameWriter(), spdy.FrameReader()
    frames: list[spdy.Frame] = []

    async def next_frame() -> spdy.Frame:
        while not frames:
            frames.extend(r.feed(await ws.receive_bytes()))
        return frames.pop(0)

    await ws.send_bytes(w.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"}))
    await ws.send_bytes(w.syn_stream(3, {"streamType": "data", "port": "80", "requestID": "0"}))
    await ws.send_bytes(w.ping(1))
    got = [await next_frame() for _ in range(3)]
    assert [(f.type, f.stream_id) for f in got] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3), (spdy.PING, 0)]
    big = bytes(range(256)) * 400
    data = w.data(3, big)
    for i in range(0, len(data), 1000):  # frames split across messages at arbitrary points
        await ws.send_bytes(data[i:i + 1000])
    echoed = b""
    while len(echoed) < len(big):
        f = await next_frame()
        assert f.type == 0 and f.stream_id == 3
        echoed += f.data
    assert echoed == big
    await ws.send_bytes(w.data(3, b"", fin=True))  # half-close: the echo server closes, so do we
    fins = {(f.stream_id, f.fin) for f in [await next_frame(), await next_frame()]}
    assert fins == {(3, True), (1, True)}
    await ws.send_bytes(w.goaway(0))
    await ws.close()


def test_spdy_dictionary_and_header_blocks() -> None:
    # the dictionary id kubectl's zlib streams carry (78 f9 e3 c6 a7 c2 ...)
    assert len(spdy.DICTIONARY) == 1423 and zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    w, r = spdy.FrameWriter(), spdy.FrameReader()
    raw = w.syn_stream(5, {"streamType": "data", "port": "8080"}) + w.syn_stream(7, {"Port": "1"})
    frames = r.feed(raw[:3]) + r.feed(raw[3:])
    assert frames[0].header("streamtype") == "data" and frames[0].stream_id == 5
    assert frames[1].header("port") == "1" and frames[1].stream_id == 7  # second block: same zlib context
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameReader().feed(b"\x80\x02\x00\x01\x00\x00\x00\x00")  # SPDY/2
