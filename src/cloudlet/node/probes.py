"""Container probes: liveness, readiness and startup, as the kubelet's prober runs them.

:func:`run_probe` performs one check — ``exec`` (the runtime's
``exec_sync``), ``httpGet`` (HTTP/1.1 to the pod IP, ``httpHeaders``,
``scheme`` HTTP/HTTPS without verification, success on 200-399), ``tcpSocket``
(a connect) or ``grpc`` (``grpc.health.v1.Health/Check`` over cleartext
HTTP/2, see :func:`grpc_health_check`) — with ``timeoutSeconds``, and returns
``(ok, output)`` where the output on failure is the kubelet's message
(``HTTP probe failed with statuscode: 500``, ``dial tcp 10.88.0.5:80: connect:
connection refused``, ...).

:class:`ProbeWorker` is one probe of one container instance: it waits
``initialDelaySeconds`` after the container started, probes every
``periodSeconds`` and flips its result after ``successThreshold``
consecutive successes or ``failureThreshold`` consecutive failures. The
initial result is failure for readiness, success for liveness and unknown for
startup (the kubelet's defaults). Every failed attempt is reported through
``on_failure`` (the agent records an ``Unhealthy`` event) and each flip
through ``on_result``. A startup worker stops after its first success.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cloudlet.runtime.interface import ExecResult

Obj = dict[str, Any]
ExecFn = Callable[[list[str], float], Awaitable[ExecResult]]
USER_AGENT = "kube-probe/1.32"


@dataclass
class ProbeTarget:
    """Where a probe goes: the pod IP, the container's named ports, its exec."""

    pod_ip: str
    ports: dict[str, int] = field(default_factory=dict)
    exec_sync: ExecFn | None = None


def _port(value: Any, target: ProbeTarget) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    if text in target.ports:
        return target.ports[text]
    raise ValueError(f"unable to find port {text!r}")


def _dial_error(host: str, port: int, e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(e, OSError) and e.strerror:
        return f"dial tcp {host}:{port}: connect: {e.strerror.lower()}"
    return f"dial tcp {host}:{port}: {e}"


async def http_get(action: Obj, target: ProbeTarget, limit: float) -> tuple[bool, str, int]:
    """One HTTP GET (probe or lifecycle hook); returns (ok, message, status code)."""
    host = action.get("host") or target.pod_ip
    port = _port(action.get("port"), target)
    scheme = (action.get("scheme") or "HTTP").upper()
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme.lower()}://{host}:{port}{path}"
    headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
    for h in action.get("httpHeaders") or ():
        name = str(h.get("name", ""))
        for k in list(headers):
            if k.lower() == name.lower():
                del headers[k]
        headers[name] = str(h.get("value", ""))
    ctx: ssl.SSLContext | None = None
    if scheme == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(limit):
            try:
                reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
            except OSError as e:
                return False, f'Get "{url}": {_dial_error(host, port, e)}', 0
            try:
                req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
                writer.write(req.encode())
                await writer.drain()
                line = await reader.readline()
                parts = line.decode(errors="replace").split(" ", 2)
                if len(parts) < 2 or not parts[1][:3].isdigit():
                    return False, f'Get "{url}": malformed HTTP response {line[:40]!r}', 0
                code = int(parts[1][:3])
                body = b""
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(0.2):
                        while True:
                            h = await reader.readline()
                            if h in (b"\r\n", b"\n", b""):
                                break
                        body = await reader.read(10 * 1024)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)', 0
    if 200 <= code < 400:
        return True, body.decode(errors="replace"), code
    return False, f"HTTP probe failed with statuscode: {code}", code


async def tcp_check(action: Obj, target: ProbeTarget, limit: float) -> tuple[bool, str]:
    host = action.get("host") or target.pod_ip
    port = _port(action.get("port"), target)
    try:
        async with asyncio.timeout(limit):
            _r, w = await asyncio.open_connection(host, port)
        w.close()
        with contextlib.suppress(Exception):
            await w.wait_closed()
        return True, ""
    except (OSError, TimeoutError) as e:
        return False, _dial_error(host, port, e)


# --- gRPC health over cleartext HTTP/2 ---------------------------------------------------

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST, _SETTINGS, _PING, _GOAWAY = 0, 1, 3, 4, 6, 7
_END_STREAM, _END_HEADERS, _ACK = 0x1, 0x4, 0x1
_HEALTH = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _frame(type_: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream) + payload


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = bytearray([first | top])
    value -= top
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_literal(name: str, value: str) -> bytes:
    """A literal header field without indexing, new name, no Huffman coding."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


async def grpc_health_check(host: str, port: int, service: str, limit: float) -> tuple[bool, str]:
    """``grpc.health.v1.Health/Check`` — one unary call over HTTP/2 prior knowledge."""
    try:
        async with asyncio.timeout(limit):
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                return False, f'timeout: failed to connect service "{host}:{port}" within {limit:g}s'
            try:
                msg = b"\x0a" + _varint(len(service.encode())) + service.encode() if service else b""
                grpc = b"\x00" + struct.pack(">I", len(msg)) + msg
                headers = b"".join(_hpack_literal(k, v) for k, v in (
                    (":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
                    (":authority", f"{host}:{port}"), ("content-type", "application/grpc"),
                    ("te", "trailers"), ("user-agent", USER_AGENT)))
                writer.write(_PREFACE + _frame(_SETTINGS, 0, 0, b"") + _frame(_HEADERS, _END_HEADERS, 1, headers)
                             + _frame(_DATA, _END_STREAM, 1, grpc))
                await writer.drain()
                data = b""
                while True:
                    head = await reader.readexactly(9)
                    length = int.from_bytes(head[:3], "big")
                    type_, flags = head[3], head[4]
                    stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                    payload = await reader.readexactly(length)
                    if type_ == _SETTINGS and not flags & _ACK:
                        writer.write(_frame(_SETTINGS, _ACK, 0, b""))
                    elif type_ == _PING and not flags & _ACK:
                        writer.write(_frame(_PING, _ACK, 0, payload))
                    elif type_ == _GOAWAY or (type_ == _RST and stream == 1):
                        return False, "error: health rpc probe failed: connection closed by the server"
                    elif stream == 1 and type_ == _DATA:
                        data += payload
                    if stream == 1 and type_ in (_DATA, _HEADERS) and flags & _END_STREAM:
                        break
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except TimeoutError:
        return False, f"timeout: health rpc did not complete within {limit:g}s"
    except (OSError, asyncio.IncompleteReadError) as e:
        return False, f"error: health rpc probe failed: {e}"
    if len(data) < 5:
        return False, "error: health rpc probe failed: no HealthCheckResponse (the service may be unknown)"
    body = data[5:5 + int.from_bytes(data[1:5], "big")]
    status = 0
    if len(body) >= 2 and body[0] == 0x08:
        status = body[1]
    name = _HEALTH.get(status, str(status))
    if status == 1:
        return True, ""
    return False, f'service unhealthy (responded with "{name}")'


# --- one probe ---------------------------------------------------------------------------


async def run_probe(probe: Obj, target: ProbeTarget) -> tuple[bool, str]:
    """Run ``probe`` once; ``(ok, output)``."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if probe.get("exec") is not None:
            argv = list((probe["exec"] or {}).get("command") or [])
            if target.exec_sync is None:
                return False, "exec is not supported by this runtime"
            res = await target.exec_sync(argv, timeout)
            out = (res.stdout + res.stderr).decode(errors="replace")
            if res.timed_out:
                return False, f"command {argv!r} timed out"
            return res.exit_code == 0, out
        if probe.get("httpGet") is not None:
            ok, msg, _code = await http_get(probe["httpGet"], target, timeout)
            return ok, msg if not ok else ""
        if probe.get("tcpSocket") is not None:
            return await tcp_check(probe["tcpSocket"], target, timeout)
        if probe.get("grpc") is not None:
            g = probe["grpc"] or {}
            return await grpc_health_check(target.pod_ip, int(g.get("port") or 0), g.get("service") or "", timeout)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        return False, str(e)
    return False, "probe has no handler"


class ProbeWorker:
    """One probe of one container instance; see the module docstring."""

    def __init__(
        self,
        kind: str,  # "liveness", "readiness", "startup"
        probe: Obj,
        target: ProbeTarget,
        *,
        started_at: float,
        on_result: Callable[[str, bool, str], None],
        on_failure: Callable[[str, str], None],
        gate: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.target = target
        self.started_at = started_at
        self.on_result = on_result
        self.on_failure = on_failure
        self.gate = gate  # liveness/readiness wait for the startup probe
        self.result: bool | None = {"readiness": False, "liveness": True}.get(kind)
        self.successes = 0
        self.failures = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"probe-{self.kind}")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def run(self) -> None:
        p = self.probe
        period = float(p.get("periodSeconds") or 10)
        delay = float(p.get("initialDelaySeconds") or 0)
        success_threshold = int(p.get("successThreshold") or 1)
        failure_threshold = int(p.get("failureThreshold") or 3)
        wait = self.started_at + delay - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        while True:
            if self.gate():
                ok, out = await run_probe(p, self.target)
                if ok:
                    self.successes += 1
                    self.failures = 0
                    if self.result is not True and self.successes >= success_threshold:
                        self.result = True
                        self.on_result(self.kind, True, out)
                    if self.kind == "startup" and self.result:
                        return
                else:
                    self.failures += 1
                    self.successes = 0
                    self.on_failure(self.kind, out)
                    if self.result is not False and self.failures >= failure_threshold:
                        self.result = False
                        self.on_result(self.kind, False, out)
                        if self.kind in ("liveness", "startup"):
                            return  # the container is restarted; a new worker probes the new one
            await asyncio.sleep(period)
