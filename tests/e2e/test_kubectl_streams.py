"""The real kubectl 1.32 against cloudlet's streaming pod subresources.

``kubectl logs`` (every flag), ``kubectl logs -f``, ``kubectl exec`` (with and
without stdin, with a terminal), ``kubectl cp``, ``kubectl attach`` and
``kubectl port-forward`` — over WebSockets and over the SPDY fallback — run against a
real cloudlet :class:`~cloudlet.server.Server` (HTTPS, auth, discovery, the
scheduler and one hollow node that marks pods Running).

Stand-in: the :class:`StandInStreams` provider below replaces the node agent,
which is being written concurrently (its own e2e tests will go through runc).
It lives in the server's process (so the server runs in a thread of the test
process): exec runs ``argv`` as a local subprocess (a pty for ``-t``), logs are
CRI-format files the test writes, and port-forward connects to a local TCP
echo server. Everything between kubectl and that provider — routes, checks,
error texts, the WebSocket channel protocol, SPDY over WebSocket, the CRI log
reader — is the real code.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from cloudlet.api import errors
from cloudlet.api.streaming import PodStreams, set_pod_streams
from cloudlet.node.logs import format_record, format_time
from tests.e2e.harness import free_port, wait_until

# --- the stand-in provider --------------------------------------------------------


class LocalExec:
    """An ExecSession over a local subprocess (pipes, or a pty with ``tty``)."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None) -> None:
        self.proc = proc
        self.master = master
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.open = 0
        loop = asyncio.get_running_loop()
        if master is not None:
            self.open = 1
            loop.add_reader(master, self._pty_readable)
        else:
            for ch, stream in ((1, proc.stdout), (2, proc.stderr)):
                if stream is not None:
                    self.open += 1
                    loop.create_task(self._pump(ch, stream))

    def _pty_readable(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if data:
            self.queue.put_nowait((1, data))
        else:
            asyncio.get_running_loop().remove_reader(self.master)
            self.queue.put_nowait(None)

    async def _pump(self, ch: int, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            await self.queue.put((ch, chunk))
        await self.queue.put(None)

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            os.write(self.master, data)
        elif self.proc.stdin is not None:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            os.write(self.master, b"\x04")
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[Literal[1, 2], bytes]]:
        while self.open:
            item = await self.queue.get()
            if item is None:
                self.open -= 1
                continue
            yield item  # type: ignore[misc]

    async def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self.proc.wait()
        if self.master is not None:
            os.close(self.master)
            self.master = None
        return code if code >= 0 else 128 - code

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class StandInStreams:
    """PodStreams stand-in (see the module docstring)."""

    def __init__(self, log_dir: Path, ports: dict[int, int]) -> None:
        self.log_dir = log_dir
        self.ports = ports  # pod port -> local port
        self.stopped: set[tuple[str, str, str]] = set()
        self.execs: list[tuple[list[str], LocalExec]] = []

    def path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path:
        return self.log_dir / f"{namespace}_{pod}_{container}{'.prev' if previous else ''}.log"

    async def log_file(self, namespace: str, pod: str, container: str | None, previous: bool) -> Path:
        assert container, "the route resolves the container"
        p = self.path(namespace, pod, container, previous)
        if not p.exists():
            if previous:
                raise errors.bad_request(f'previous terminated container "{container}" in pod "{pod}" not found')
            p.write_bytes(format_record("stdout", f"hello from {pod}".encode()))
        return p

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        return (namespace, pod, container) not in self.stopped

    async def exec(self, namespace: str, pod: str, container: str | None, argv: list[str], tty: bool,
                   stdin: bool) -> LocalExec:
        if tty:
            master, slave = pty.openpty()
            proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                        start_new_session=True)
            os.close(slave)
            session = LocalExec(proc, master)
        else:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            session = LocalExec(proc, None)
        self.execs.append((argv, session))
        return session

    async def attach(self, namespace: str, pod: str, container: str, tty: bool, stdin: bool) -> LocalExec:
        """Optional PodAttach: a stand-in "main process" that greets and then echoes stdin."""
        return await self.exec(namespace, pod, container, ["sh", "-c", f"echo attached to {container}; cat"],
                               tty, stdin)

    async def port_forward(self, namespace: str, pod: str, port: int) -> tuple[asyncio.StreamReader,
                                                                                  asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.ports.get(port, 1))


# --- an in-process server plus a local echo server ----------------------------------


class InProcessCloudlet:
    """cloudlet's Server on its own event loop thread, with the stand-in installed."""

    def __init__(self, data_dir: Path, provider: PodStreams) -> None:
        from cloudlet.server import Config, Server

        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = Server(Config(data_dir=data_dir, port=free_port(), store="memory", hollow_nodes=1))
        self.call(self.server.start(), 60)
        set_pod_streams(self.server.handlers, provider)
        self.echo_port = free_port()
        self.call(self._echo_start(), 10)

    async def _echo_start(self) -> None:
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
            w.close()

        self.echo = await asyncio.start_server(echo, "127.0.0.1", self.echo_port)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def down() -> None:
            self.echo.close()
            await self.server.stop()

        self.call(down(), 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.data_dir), **(extra or {})}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, env=self.env(env),
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def raw_get(self, path: str) -> tuple[int, Any]:
        import ssl
        import urllib.error
        import urllib.request

        import yaml

        token = yaml.safe_load(self.kubeconfig.read_text())["users"][0]["user"]["token"]
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        req = urllib.request.Request(f"https://127.0.0.1:{self.server.config.port}{path}")
        req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


PODS = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: app, image: busybox, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  containers: [{name: a, image: busybox}, {name: b, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: tail}
spec:
  containers: [{name: app, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: ghost}
spec:
  nodeName: no-such-node
  containers: [{name: app, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: front}
spec:
  replicas: 1
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      containers: [{name: main, image: busybox}]
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessCloudlet, StandInStreams]]:
    logs = tmp_path_factory.mktemp("podlogs")
    provider = StandInStreams(logs, {})
    c = InProcessCloudlet(tmp_path_factory.mktemp("cloudlet"), provider)
    provider.ports[8080] = c.echo_port
    c.kubectl("apply", "-f", "-", input=PODS)

    def running() -> bool:
        out = c.kubectl("get", "pods", "-o", "json").stdout
        pods = {p["metadata"]["name"]: p for p in json.loads(out)["items"]}
        want = ["web", "two", "tail"]
        front = [n for n in pods if n.startswith("front-")]
        return bool(front) and all((pods.get(n, {}).get("status") or {}).get("phase") == "Running"
                                   for n in [*want, *front])

    wait_until(running, timeout=60, what="pods Running on the hollow node")
    try:
        yield c, provider
    finally:
        c.stop()


# kubectl 1.32 speaks WebSockets (v5 channels; SPDY tunnelled for port-forward) and falls back to
# plain SPDY/3.1 upgrades, which these feature gates force (and older clients only speak)
TRANSPORTS = {
    "websocket": {},
    "spdy": {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"},
}
transports = pytest.mark.parametrize("transport", list(TRANSPORTS))

T0 = (int(time.time()) - 7200) * 1_000_000_000  # two hours ago, whole second


def _write(provider: StandInStreams, pod: str, container: str, records: list[bytes], previous: bool = False) -> None:
    provider.path("default", pod, container, previous).write_bytes(b"".join(records))


def test_logs_flags(env: tuple[InProcessCloudlet, StandInStreams]) -> None:
    c, provider = env
    now = time.time_ns()
    _write(provider, "web", "app", [
        format_record("stdout", b"old one", T0 + 120_000_000),
        format_record("stderr", b"old two", T0 + 1_000_000_000),
        format_record("stdout", b"recent ", now - 5_000_000_000, partial=True),
        format_record("stdout", b"joined", now - 5_000_000_000),
        format_record("stdout", b"last", now - 4_000_000_000),
    ])
    assert c.kubectl("logs", "web").stdout == "old one\nold two\nrecent joined\nlast\n"
    assert c.kubectl("logs", "web", "--tail=2").stdout == "recent joined\nlast\n"
    assert c.kubectl("logs", "web", "--tail=0").stdout == ""
    assert c.kubectl("logs", "web", "--since=1m").stdout == "recent joined\nlast\n"
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 // 1_000_000_000 + 1))
    assert c.kubectl("logs", "web", f"--since-time={since}").stdout == "old two\nrecent joined\nlast\n"
    assert c.kubectl("logs", "web", "--limit-bytes=10").stdout == "old one\nol"
    stamped = c.kubectl("logs", "web", "--timestamps", "--tail=3").stdout.splitlines()
    assert stamped[0] == f"{format_time(T0 + 1_000_000_000)} old two"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z recent joined", stamped[1]), stamped
    assert format_time(T0 + 120_000_000).endswith(".12Z")  # RFC3339Nano drops trailing zeros
    assert c.kubectl("logs", "web", "-c", "app", "--tail=1").stdout == "last\n"
    assert c.kubectl("logs", "pod/web", "--tail=1", "--timestamps=false").stdout == "last\n"


def test_logs_errors_and_containers(env: tuple[InProcessCloudlet, StandInStreams]) -> None:
    c, provider = env
    _write(provider, "two", "b", [format_record("stdout", b"from b")])
    assert c.kubectl("logs", "two", "-c", "b").stdout == "from b\n"
    # kubectl picks the first container itself and says so
    p = c.kubectl("logs", "two")
    assert p.stdout == "hello from two\n" and 'Defaulted container "a" out of: a, b' in p.stderr
    # the server's own answer when no container is named
    code, body = c.raw_get("/api/v1/namespaces/default/pods/two/log")
    assert code == 400 and body["message"] == "a container name must be specified for pod two, choose one of: [a b]"
    p = c.kubectl("logs", "two", "-c", "nope", check=False)
    assert p.returncode == 1 and "container nope is not valid for pod two" in p.stderr
    p = c.kubectl("logs", "ghost", check=False)
    assert p.returncode == 1
    assert 'Error from server (BadRequest): container "app" in pod "ghost" is waiting to start: ContainerCreating' \
        in p.stderr
    p = c.kubectl("logs", "web", "--previous", check=False)
    assert p.returncode == 1 and 'previous terminated container "app" in pod "web" not found' in p.stderr
    code, body = c.raw_get("/api/v1/namespaces/default/pods/web/log?sinceSeconds=0")
    assert code == 422 and body["reason"] == "Invalid"
    assert body["message"] == 'PodLogOptions "web" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0'
    code, body = c.raw_get("/api/v1/namespaces/default/pods/nope/log")
    assert code == 404 and body["message"] == 'pods "nope" not found'
    # kubectl logs deploy/front: kubectl resolves a pod of the deployment
    p = c.kubectl("logs", "deploy/front")
    assert re.fullmatch(r"hello from front-[a-z0-9]+-[a-z0-9]+\n", p.stdout), p.stdout
    assert c.kubectl("logs", "-l", "app=front").stdout == p.stdout
    # kubectl keeps the requests in a Go map: the containers come in either order
    assert sorted(c.kubectl("logs", "two", "--all-containers").stdout.splitlines()) == ["from b", "hello from two"]


def test_logs_previous(env: tuple[InProcessCloudlet, StandInStreams]) -> None:
    c, provider = env
    _write(provider, "tail", "app", [format_record("stdout", b"previous run")], previous=True)
    pod = json.loads(c.kubectl("get", "pod", "tail", "-o", "json").stdout)
    cs = pod["status"]["containerStatuses"][0]
    cs["restartCount"] = 1
    cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "containerID": "cri://previous",
                                      "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}}
    c.kubectl("patch", "pod", "tail", "--subresource=status", "--type=merge", "-p",
              json.dumps({"status": {"containerStatuses": [cs]}}))
    assert c.kubectl("logs", "tail", "--previous").stdout == "previous run\n"
    assert c.kubectl("logs", "tail", "-p", "--timestamps").stdout.endswith(" previous run\n")


def test_logs_follow(env: tuple[InProcessCloudlet, StandInStreams]) -> None:
    c, provider = env
    path = provider.path("default", "web", "app")
    path.write_bytes(format_record("stdout", b"first"))
    proc = subprocess.Popen(["kubectl", "logs", "-f", "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=c.env())
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        assert _read_until(fd, b"first\n") == b"first\n"
        with path.open("ab") as f:
            f.write(format_record("stderr", b"written later"))
        assert _read_until(fd, b"written later\n") == b"written later\n"
        assert proc.poll() is None
        with path.open("ab") as f:
            f.write(format_record("stdout", b"just before the end"))
        provider.stopped.add(("default", "web", "app"))
        assert proc.wait(30) == 0
        assert os.read(fd, 1000) == b"just before the end\n"
    finally:
        provider.stopped.discard(("default", "web", "app"))
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@transports
def test_exec_exit_code_and_streams(env: tuple[InProcessCloudlet, StandInStreams], transport: str) -> None:
    c, _ = env
    e = TRANSPORTS[transport]
    p = c.kubectl("exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False, env=e)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n"
    assert "err\n" in p.stderr and "command terminated with exit code 3" in p.stderr
    p = c.kubectl("exec", "web", "-c", "app", "--", "echo", "fine", env=e)
    assert p.stdout == "fine\n" and p.stderr == ""
    p = c.kubectl("exec", "two", "-c", "zzz", "--", "true", check=False, env=e)
    assert p.returncode == 1 and "container zzz is not valid for pod two" in p.stderr


@transports
def test_exec_stdin(env: tuple[InProcessCloudlet, StandInStreams], transport: str) -> None:
    c, _ = env
    p = c.kubectl("exec", "-i", "web", "--", "cat", input="hi\nthere\n", env=TRANSPORTS[transport])
    assert p.stdout == "hi\nthere\n"
    payload = "x" * 300_000 + "\n"
    p = c.kubectl("exec", "-i", "web", "--", "wc", "-c", input=payload, env=TRANSPORTS[transport])
    assert p.stdout.strip() == str(len(payload))


@transports
def test_exec_interrupted_stops_the_command(env: tuple[InProcessCloudlet, StandInStreams], transport: str) -> None:
    c, provider = env
    argv = ["sleep", f"300.{len(provider.execs)}"]
    proc = subprocess.Popen(["kubectl", "exec", "web", "--", *argv], env=c.env(TRANSPORTS[transport]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        session = wait_until(lambda: next((s for a, s in provider.execs if a == argv), None),
                             timeout=30, what="the exec to start")
        proc.terminate()
        proc.wait(30)
        wait_until(lambda: session.proc.returncode is not None, timeout=30, what="the command to be killed")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@transports
def test_kubectl_cp_both_ways(env: tuple[InProcessCloudlet, StandInStreams], tmp_path: Path, transport: str) -> None:
    """``kubectl cp`` is tar over exec: stdin in (with the v5 close), stdout out."""
    c, _ = env
    e = TRANSPORTS[transport]
    src = tmp_path / "src.txt"
    src.write_bytes(bytes(range(256)) * 1000)
    remote = tmp_path / "in-pod"
    remote.mkdir()
    c.kubectl("cp", str(src), f"web:{remote}/copied.txt", env=e)
    assert (remote / "copied.txt").read_bytes() == src.read_bytes()
    back = tmp_path / "back.txt"
    c.kubectl("cp", f"web:{remote}/copied.txt", str(back), env=e)
    assert back.read_bytes() == src.read_bytes()


@transports
def test_attach(env: tuple[InProcessCloudlet, StandInStreams], transport: str) -> None:
    c, _ = env
    p = c.kubectl("attach", "-i", "web", input="typed in\n", env=TRANSPORTS[transport])
    assert p.stdout.endswith("attached to app\ntyped in\n"), (p.stdout, p.stderr)


def _read_until(fd: int, pattern: bytes, timeout: float = 30) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while pattern not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {pattern!r} in {buf!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"EOF before {pattern!r} in {buf!r}")
            buf += chunk
    return buf


@transports
def test_exec_tty(env: tuple[InProcessCloudlet, StandInStreams], transport: str) -> None:
    c, _ = env
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    script = 'test -t 0 && echo is-a-tty; echo ready; read line; stty size; echo "got:$line"; exit 4'
    proc = subprocess.Popen(["kubectl", "exec", "-it", "web", "--", "sh", "-c", script],
                            stdin=slave, stdout=slave, stderr=slave, env=c.env(TRANSPORTS[transport]),
                            start_new_session=True)
    os.close(slave)
    try:
        out = _read_until(master, b"ready")
        assert b"is-a-tty" in out
        os.write(master, b"hello\r")
        out += _read_until(master, b"got:hello")
        assert b"33 111" in out  # the terminal size kubectl sent on the resize channel
        assert proc.wait(30) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)


@transports
def test_port_forward(env: tuple[InProcessCloudlet, StandInStreams], transport: str) -> None:
    c, _ = env
    proc = subprocess.Popen(["kubectl", "port-forward", "pod/web", ":8080", "9999"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=c.env(TRANSPORTS[transport]))
    try:
        assert proc.stdout is not None
        ports: dict[int, int] = {}
        while len(ports) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
            if m:
                ports[int(m.group(2))] = int(m.group(1))
        for i in range(3):  # several connections through the one tunnel
            with socket.create_connection(("127.0.0.1", ports[8080]), timeout=30) as s:
                msg = f"ping {i} ".encode() * 5000
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(65536)
                    assert chunk, got[-50:]
                    got += chunk
                assert got == msg
        # nothing listens on 9999 in the pod: the connection closes, kubectl reports the error
        with socket.create_connection(("127.0.0.1", ports[9999]), timeout=30) as s:
            s.settimeout(30)
            assert s.recv(100) == b""
        # (whether kubectl then keeps running is kubectl's choice; it varies with timing)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "error forwarding port 9999 to pod web" in err, err


def test_discovery_lists_pod_subresources(env: tuple[InProcessCloudlet, StandInStreams]) -> None:
    c, _ = env
    code, body = c.raw_get("/api/v1")
    names = {r["name"]: r for r in json.loads(body)["resources"]}
    assert names["pods/log"]["verbs"] == ["get"]
    assert names["pods/exec"]["verbs"] == ["create", "get"]
    assert names["pods/portforward"]["kind"] == "PodPortForwardOptions"


def test_official_python_client_exec_and_port_forward(env: tuple[InProcessCloudlet, StandInStreams]) -> None:
    """The ``kubernetes`` client's websocket exec (v5 channels) and port-forward (v4 channels)."""
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream

    c, _ = env
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(c.kubeconfig), client_configuration=cfg)
    with client.ApiClient(configuration=cfg) as api:
        core = client.CoreV1Api(api)
        resp = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                      command=["sh", "-c", "cat; echo oops >&2; exit 5"], stdin=True, stdout=True, stderr=True,
                      tty=False, _preload_content=False)
        resp.write_stdin("from python\n")
        resp.close_channel(0)  # v5: end of stdin
        resp.run_forever(timeout=30)
        assert resp.read_stdout() == "from python\n"
        assert resp.read_stderr() == "oops\n"
        assert resp.returncode == 5
        resp.close()
        pf = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
        sock = pf.socket(8080)
        sock.settimeout(30)
        sock.sendall(b"round trip")
        got = b""
        while len(got) < 10:
            got += sock.recv(100)
        assert got == b"round trip"
        assert pf.error(8080) is None
        sock.close()
        pf.close()
