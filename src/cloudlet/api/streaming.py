"""Streaming pod subresources: ``pods/log``, ``pods/exec``, ``pods/attach``, ``pods/portforward``.

The API server does not run containers; a :class:`PodStreams` provider (the
node agent, living in the same process) does. This module defines that
contract (shared contract 4) and serves the Kubernetes routes on top of it.

Where the provider lives: at most one per server, kept per
:class:`~cloudlet.api.handlers.ResourceHandlers` instance. Register it with
:func:`set_pod_streams` passing either the ``ResourceHandlers`` (``Server.handlers``)
or the aiohttp ``web.Application`` that serves them; :func:`get_pod_streams`
reads it back. Without a provider the routes answer Kubernetes-style errors.

Routes (registered by :func:`install` as ``pods`` subresources):

* ``GET pods/{name}/log`` — ``container``, ``follow``, ``previous``,
  ``sinceSeconds``, ``sinceTime``, ``timestamps``, ``tailLines``,
  ``limitBytes`` (``insecureSkipTLSVerifyBackend`` accepted and ignored). The
  API-server checks (container valid, pod scheduled, options valid) and the
  kubelet's container-state checks are done here from the stored pod; then
  :mod:`cloudlet.node.logs` streams the provider's CRI file as ``text/plain``.
* ``GET|POST pods/{name}/exec`` — ``command`` (repeated), ``container``,
  ``stdin``, ``stdout``, ``stderr``, ``tty``. WebSocket subprotocols
  ``v5.channel.k8s.io`` and ``v4.channel.k8s.io``: each binary message is a
  channel byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, 255 close in
  v5) plus data; the error channel carries the final v1 ``Status``
  (``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and an
  ``ExitCode`` cause). ``pods/{name}/attach`` is the same streaming, served
  when the provider also implements the optional :class:`PodAttach`
  (otherwise a 400 saying so).
* ``GET pods/{name}/portforward`` — WebSocket subprotocol
  ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.30+): SPDY/3.1 tunnelled in
  binary messages (:mod:`cloudlet.api.spdy`); per connection kubectl opens an
  ``error`` and a ``data`` stream carrying ``port`` and ``requestID``
  headers. Also ``v4.channel.k8s.io`` (the Python client): ``ports`` query,
  channels 2i (data) / 2i+1 (error), each opened by the port number
  (2 bytes, little endian).

Plain ``Upgrade: SPDY/3.1`` requests (kubectl's fallback when WebSockets
fail, ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``, older clients) are served
too: exec with one SPDY stream per channel (``X-Stream-Protocol-Version``
``v5``/``v4.channel.k8s.io``), port-forward as in the tunnel
(``portforward.k8s.io``). aiohttp only parses WebSocket upgrades, so the
connection is taken over after the ``101`` (:class:`_RawPipe`). Every client
error before an upgrade is a ``Status`` with kube-apiserver's or kubelet's
wording, so kubectl prints the same text as against a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aiohttp import WSMsgType, web

from cloudlet.api import discovery, errors, spdy
from cloudlet.api.errors import APIError, FieldError
from cloudlet.api.handlers import ResourceHandlers, Target
from cloudlet.node.logs import LogOptions, parse_time, read_log
from cloudlet.runtime.interface import ExecSession, SandboxError

log = logging.getLogger("cloudlet.api.streaming")


@runtime_checkable
class PodStreams(Protocol):
    """What the API server needs from the node agent to stream pod I/O.

    Contract:

    * :meth:`log_file` returns the container's CRI-format log file
      (``<RFC3339Nano> stdout|stderr F|P <line>``). For ``previous`` it is the
      last terminated instance's file. It raises
      :class:`cloudlet.api.errors.APIError` (400 ``BadRequest``) with kubelet's
      wording, e.g. ``a container name must be specified for pod web, choose
      one of: [a b]``, ``container "c" in pod "p" is waiting to start:
      ContainerCreating``, ``previous terminated container "c" in pod "p" not
      found``. ``container`` None means "the only container".
    * :meth:`container_running` is cheap and synchronous; ``kubectl logs -f``
      ends once it returns False and the file is drained.
    * :meth:`exec` starts ``argv`` in the container (a pty when ``tty``; a
      writable stdin only when ``stdin``) and returns the runtime
      interface's :class:`~cloudlet.runtime.interface.ExecSession`; errors are
      ``APIError`` (e.g. 400 ``container not found ("c")``) or the runtime's
      ``SandboxError``.
    * :meth:`port_forward` connects to ``port`` inside the pod's network
      namespace and returns the stream pair; the caller closes the writer.
      ``OSError`` when nothing listens.
    """

    async def log_file(self, namespace: str, pod: str, container: str | None, previous: bool) -> Path: ...

    def container_running(self, namespace: str, pod: str, container: str) -> bool: ...

    async def exec(
        self, namespace: str, pod: str, container: str | None, argv: list[str], tty: bool, stdin: bool
    ) -> ExecSession: ...

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...


@runtime_checkable
class PodAttach(Protocol):
    """Optional, for ``kubectl attach``: a provider that also has this method serves it.

    :meth:`attach` connects to the container's main process: the session's
    output is what the process writes from now on, ``write_stdin`` feeds its
    stdin (``stdin: true`` containers), ``wait`` returns when the process
    exits, and ``kill`` only detaches (it must not stop the container).
    """

    async def attach(self, namespace: str, pod: str, container: str, tty: bool, stdin: bool) -> ExecSession: ...


_PROVIDERS: weakref.WeakKeyDictionary[ResourceHandlers, PodStreams] = weakref.WeakKeyDictionary()


def _handlers_of(app_or_handlers: Any) -> ResourceHandlers:
    if isinstance(app_or_handlers, ResourceHandlers):
        return app_or_handlers
    if isinstance(app_or_handlers, web.Application):
        for route in app_or_handlers.router.routes():
            owner = getattr(route.handler, "__self__", None)
            if isinstance(owner, ResourceHandlers):
                return owner
    raise TypeError(f"no ResourceHandlers found in {app_or_handlers!r}")


def set_pod_streams(app_or_handlers: Any, provider: PodStreams | None) -> None:
    """Install (or with None remove) the server's one :class:`PodStreams` provider."""
    handlers = _handlers_of(app_or_handlers)
    if provider is None:
        _PROVIDERS.pop(handlers, None)
    else:
        _PROVIDERS[handlers] = provider


def get_pod_streams(app_or_handlers: Any) -> PodStreams | None:
    return _PROVIDERS.get(_handlers_of(app_or_handlers))


# --- helpers -------------------------------------------------------------------

STREAM_PROTOCOL_V5 = "v5.channel.k8s.io"
STREAM_PROTOCOL_V4 = "v4.channel.k8s.io"
PORT_FORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io"

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def _provider(handlers: ResourceHandlers, pod: dict[str, Any]) -> PodStreams:
    provider = _PROVIDERS.get(handlers)
    if provider is None:
        node = (pod.get("spec") or {}).get("nodeName", "")
        raise APIError(503, "ServiceUnavailable",
                       f'no node agent serves pod streams for node "{node}" (pod {pod["metadata"]["name"]})')
    return provider


def _query_bool(request: web.Request, name: str) -> bool:
    v = request.query.get(name, "")
    if v.lower() in ("", "0", "false", "f"):
        return False
    if v.lower() in ("1", "true", "t"):
        return True
    raise errors.bad_request(f'strconv.ParseBool: parsing "{v}": invalid syntax')


def _query_int(request: web.Request, name: str) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{v}": invalid syntax') from None


def _names(containers: Any) -> list[str]:
    return [c.get("name", "") for c in containers or () if isinstance(c, dict)]


def _has_container(pod: dict[str, Any], name: str) -> bool:
    spec = pod.get("spec") or {}
    return any(name in _names(spec.get(k)) for k in ("initContainers", "containers", "ephemeralContainers"))


def log_container(pod: dict[str, Any], container: str | None) -> str:
    """kube-apiserver's container choice for ``pods/log`` (400 when ambiguous or unknown)."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    if not container:
        containers = _names(spec.get("containers"))
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        every = [*_names(spec.get("initContainers")), *containers, *_names(spec.get("ephemeralContainers"))]
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(every)}]")
    if not _has_container(pod, container):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def stream_container(pod: dict[str, Any], container: str | None) -> str:
    """kube-apiserver's container choice for ``exec``/``attach``/``portforward``."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    if not container:
        containers = _names(spec.get("containers"))
        if len(containers) == 1:
            container = containers[0]
        elif not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        else:
            msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            inits = _names(spec.get("initContainers"))
            if inits:
                msg += f" or one of the init containers: [{' '.join(inits)}]"
            raise errors.bad_request(msg)
    elif not _has_container(pod, container):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    if not spec.get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    return container


def check_log_state(pod: dict[str, Any], container: str, previous: bool) -> None:
    """The kubelet's refusal to serve logs of a container in the wrong state (400).

    Judged from the stored status; a container without any status yet counts
    as ``waiting to start: ContainerCreating`` (what kubelet reports right
    after it admits a pod).
    """
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    cs = None
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for c in status.get(key) or ():
            if c.get("name") == container:
                cs = c
                break
        if cs is not None:
            break
    if cs is None:
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
    state = cs.get("state") or {}
    last = (cs.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return
    if "running" in state:
        return
    if "terminated" in state:
        if state["terminated"].get("containerID") or (last and last.get("containerID")):
            return
        raise errors.bad_request(f'container "{container}" in pod "{name}" is terminated')
    if last is not None:
        if not last.get("containerID"):
            raise errors.bad_request(f'container "{container}" in pod "{name}" is terminated')
        return
    waiting = state.get("waiting")
    if waiting is not None:
        reason = waiting.get("reason") or ""
        if reason == "ErrImagePull":
            why = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            why = "trying and failing to pull image"
        else:
            why = reason
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
    raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


def _log_options(request: web.Request, name: str) -> LogOptions:
    tail = _query_int(request, "tailLines")
    limit = _query_int(request, "limitBytes")
    since_s = _query_int(request, "sinceSeconds")
    since_t = request.query.get("sinceTime") or None
    errs: list[FieldError] = []
    if tail is not None and tail < 0:
        errs.append(errors.invalid_value("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        errs.append(errors.invalid_value("limitBytes", limit, "must be greater than 0"))
    if since_s is not None and since_t is not None:
        errs.append(errors.forbidden_field("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since_s is not None and since_s < 1:
        errs.append(errors.invalid_value("sinceSeconds", since_s, "must be greater than 0"))
    if errs:
        raise errors.invalid("PodLogOptions", "", name, errs)
    since_ns: int | None = None
    if since_s is not None:
        since_ns = time.time_ns() - since_s * 1_000_000_000
    elif since_t is not None:
        try:
            since_ns = parse_time(since_t) // 1_000_000_000 * 1_000_000_000  # metav1.Time: seconds
        except ValueError:
            raise errors.bad_request(
                f'parsing time "{since_t}" as "2006-01-02T15:04:05Z07:00": cannot parse') from None
    return LogOptions(tail_lines=tail, since_ns=since_ns, timestamps=_query_bool(request, "timestamps"),
                      limit_bytes=limit, follow=_query_bool(request, "follow"))


def _get_pod(handlers: ResourceHandlers, t: Target) -> dict[str, Any]:
    pod = handlers.api.get(t.rt, t.namespace, t.name)
    return pod


# --- pods/log ------------------------------------------------------------------


async def _serve_log(handlers: ResourceHandlers, t: Target, request: web.Request) -> web.StreamResponse:
    if request.method != "GET":
        raise errors.method_not_allowed()
    opts = _log_options(request, t.name)
    previous = _query_bool(request, "previous")
    pod = _get_pod(handlers, t)
    container = log_container(pod, request.query.get("container") or None)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    if not (pod.get("spec") or {}).get("nodeName"):
        # kube-apiserver: no host yet, no location: an empty answer
        resp.content_length = 0
        await resp.prepare(request)
        return resp
    check_log_state(pod, container, previous)
    provider = _provider(handlers, pod)
    path = await provider.log_file(t.namespace, t.name, container, previous)
    ns, name = t.namespace, t.name

    def running() -> bool:
        transport = request.transport
        if transport is None or transport.is_closing():  # the client is gone
            return False
        return not handlers.shutting_down.is_set() and provider.container_running(ns, name, container)

    chunks = read_log(path, opts, running if opts.follow else None)
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionResetError:
        pass
    finally:
        await chunks.aclose()
    return resp


# --- pods/exec -----------------------------------------------------------------


def _payload(msg: Any) -> bytes:
    """A channel message's bytes: binary frames, or text frames (the Python client sends str as text)."""
    if msg.type == WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type == WSMsgType.TEXT:
        return str(msg.data).encode()
    return b""


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _is_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "spdy/3.1" and _can_hijack(request)


def _stream_protocols(request: web.Request) -> list[str]:
    out: list[str] = []
    for v in request.headers.getall("X-Stream-Protocol-Version", []):
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def _spdy_refused() -> APIError:
    return errors.bad_request(
        "unable to upgrade connection: SPDY/3.1 streaming is not supported by this server; "
        "use a client that speaks WebSockets (kubectl 1.31 or newer)")


def exit_status(code: int, argv: list[str]) -> dict[str, Any]:
    """The v1 Status kubelet writes on the error channel when a command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {argv}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def _serve_exec(handlers: ResourceHandlers, t: Target, request: web.Request) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    argv = request.query.getall("command", [])
    tty = _query_bool(request, "tty")
    want_stdin = _query_bool(request, "stdin")
    want_stdout = _query_bool(request, "stdout")
    want_stderr = _query_bool(request, "stderr") and not tty
    if not argv:
        raise errors.bad_request("you must specify at least 1 command")
    if not (want_stdin or want_stdout or want_stderr):
        raise errors.bad_request("you must specify at least one of stdin, stdout, stderr")
    pod = _get_pod(handlers, t)
    container = stream_container(pod, request.query.get("container") or None)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}")
    provider = _provider(handlers, pod)
    ns, name = t.namespace, t.name
    return await _run_session(
        request, lambda: provider.exec(ns, name, container, list(argv), tty, want_stdin), list(argv),
        tty=tty, stdin=want_stdin, stdout=want_stdout, stderr=want_stderr)


async def _run_session(request: web.Request, start: Any, argv: list[str], *, tty: bool, stdin: bool, stdout: bool,
                       stderr: bool) -> web.StreamResponse:
    """Upgrade (WebSocket channels or SPDY streams) and pump an ExecSession started by ``start()``."""
    want_stdin, want_stdout, want_stderr = stdin, stdout, stderr
    spdy_protocol = ""
    if _is_spdy(request):
        spdy_protocol = next((p for p in (STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4) if p in _stream_protocols(request)),
                             "")
        if not spdy_protocol:
            raise errors.bad_request(
                "unable to upgrade: no supported stream protocol (want v5.channel.k8s.io or v4.channel.k8s.io)")
    elif not _is_websocket(request):
        raise _spdy_refused()
    try:
        session: ExecSession = await start()
    except SandboxError as e:
        raise errors.bad_request(f"unable to upgrade connection: {e}") from e
    if spdy_protocol:
        raw = _RawPipe(request)
        runner = _SpdyExec(raw, session, list(argv), tty=tty, stdin=want_stdin, stdout=want_stdout,
                           stderr=want_stderr)
        try:
            resp = await raw.upgrade(spdy_protocol)
            await runner.run()
        finally:
            if not runner.finished:
                await session.kill()
            raw.close()
        return resp
    ws = web.WebSocketResponse(protocols=(STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4), max_msg_size=0)
    try:
        await ws.prepare(request)
    except BaseException:
        await session.kill()
        raise
    v5 = ws.ws_protocol == STREAM_PROTOCOL_V5
    send_lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        async with send_lock:
            await ws.send_bytes(bytes([channel]) + data)

    async def pump_in() -> None:
        stdin_open = want_stdin
        async for msg in ws:
            raw = _payload(msg)
            if not raw:
                continue
            ch, data = raw[0], raw[1:]
            if ch == STDIN and stdin_open and data:
                await session.write_stdin(data)
            elif ch == RESIZE and tty:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    size = json.loads(data)
                    await session.resize(int(size["Width"]), int(size["Height"]))
            elif ch == CLOSE and v5 and data[:1] == bytes([STDIN]) and stdin_open:
                stdin_open = False
                await session.close_stdin()

    async def pump_out() -> None:
        async for ch, data in session.output():
            if (ch == STDOUT and want_stdout) or (ch == STDERR and (want_stderr or tty and want_stdout)):
                await send(STDOUT if tty else ch, data)
        code = await session.wait()
        await send(ERROR, json.dumps(exit_status(code, list(argv))).encode())

    reader = asyncio.create_task(pump_in())
    writer = asyncio.create_task(pump_out())
    try:
        await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        if not writer.done():
            # the client went away (or broke the protocol) first: stop the command
            await session.kill()
            with contextlib.suppress(asyncio.TimeoutError, ConnectionResetError, RuntimeError):
                await asyncio.wait_for(asyncio.shield(writer), 5)
    finally:
        if not writer.done():  # also when this handler is cancelled (the connection dropped)
            await session.kill()
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError, Exception):
                await task
        if not writer.cancelled() and writer.exception() is not None:
            log.debug("exec stream ended: %s", writer.exception())
        await ws.close()
    return ws


class _SpdyExec:
    """remotecommand over SPDY/3.1 (clients without WebSockets): one SPDY stream per channel.

    The client opens an ``error`` stream and, as requested, ``stdin``,
    ``stdout``, ``stderr`` and ``resize`` streams (header ``streamType``);
    each gets a SYN_REPLY. stdin's FIN closes the command's stdin; resize
    carries JSON ``{"Width", "Height"}`` objects back to back; the final
    Status goes on the error stream, then every stream is finished.
    """

    def __init__(self, pipe: _RawPipe, session: ExecSession, argv: list[str], *, tty: bool, stdin: bool,
                 stdout: bool, stderr: bool) -> None:
        self.pipe = pipe
        self.session = session
        self.argv = argv
        self.tty = tty
        self.expected = {"error"} | {n for n, on in (("stdin", stdin), ("stdout", stdout),
                                                    ("stderr", stderr), ("resize", tty)) if on}
        self.streams: dict[str, int] = {}
        self.reader = spdy.FrameReader()
        self.writer = spdy.FrameWriter()
        self.lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.resize_buf = b""
        self.finished = False  # the command ended and its status was sent

    async def send(self, data: bytes) -> None:
        async with self.lock:
            await self.pipe.write(data)

    async def run(self) -> None:
        reader = asyncio.create_task(self.read_loop())
        try:
            try:
                await asyncio.wait_for(self.ready.wait(), 30)
            except TimeoutError:
                return
            await self.pump_out()
        except (ConnectionResetError, spdy.ProtocolError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            with contextlib.suppress(Exception):
                await self.send(self.writer.goaway(max(self.streams.values(), default=0)))

    async def read_loop(self) -> None:
        by_id: dict[int, str] = {}
        while chunk := await self.pipe.read():
            for frame in self.reader.feed(chunk):
                if frame.type == spdy.SYN_STREAM:
                    kind = frame.header("streamtype") or ""
                    if kind not in self.expected or kind in self.streams:
                        await self.send(self.writer.rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
                        continue
                    self.streams[kind] = frame.stream_id
                    by_id[frame.stream_id] = kind
                    await self.send(self.writer.syn_reply(frame.stream_id))
                    if set(self.streams) == self.expected:
                        self.ready.set()
                elif frame.type == 0:
                    await self.on_data(by_id.get(frame.stream_id, ""), frame.data, frame.fin)
                elif frame.type == spdy.PING and frame.ping_id % 2 == 1:
                    await self.send(self.writer.ping(frame.ping_id))
                elif frame.type == spdy.GOAWAY:
                    return
        if not self.finished:
            await self.session.kill()  # the client went away

    async def on_data(self, kind: str, data: bytes, fin: bool) -> None:
        if kind == "stdin":
            if data:
                await self.session.write_stdin(data)
            if fin:
                await self.session.close_stdin()
        elif kind == "resize" and data:
            self.resize_buf += data
            decoder = json.JSONDecoder()
            text = self.resize_buf.decode(errors="replace")
            pos = 0
            while True:
                text_rest = text[pos:].lstrip()
                if not text_rest:
                    break
                try:
                    size, used = decoder.raw_decode(text_rest)
                except ValueError:
                    break
                pos = len(text) - len(text_rest) + used
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    await self.session.resize(int(size["Width"]), int(size["Height"]))
            self.resize_buf = text[pos:].encode()

    async def pump_out(self) -> None:
        async for ch, data in self.session.output():
            kind = "stdout" if ch == STDOUT or self.tty else "stderr"
            if kind in self.streams:
                await self.send(self.writer.data(self.streams[kind], data))
        code = await self.session.wait()
        for kind in ("stdout", "stderr"):
            if kind in self.streams:
                await self.send(self.writer.data(self.streams[kind], b"", fin=True))
        self.finished = True
        status = json.dumps(exit_status(code, self.argv)).encode()
        await self.send(self.writer.data(self.streams["error"], status, fin=True))


async def _serve_attach(handlers: ResourceHandlers, t: Target, request: web.Request) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    tty = _query_bool(request, "tty")
    want_stdin = _query_bool(request, "stdin")
    want_stdout = _query_bool(request, "stdout")
    want_stderr = _query_bool(request, "stderr") and not tty
    if not (want_stdin or want_stdout or want_stderr):
        raise errors.bad_request("you must specify at least one of stdin, stdout, stderr")
    pod = _get_pod(handlers, t)
    container = stream_container(pod, request.query.get("container") or None)
    provider = _provider(handlers, pod)
    if not isinstance(provider, PodAttach):
        raise errors.bad_request("unable to upgrade connection: attach is not supported by cloudlet's node agent; "
                                 "use kubectl exec or kubectl logs -f")
    ns, name = t.namespace, t.name
    return await _run_session(request, lambda: provider.attach(ns, name, container, tty, want_stdin), [],
                              tty=tty, stdin=want_stdin, stdout=want_stdout, stderr=want_stderr)


# --- pods/portforward ----------------------------------------------------------


class _Pair:
    """One forwarded connection: kubectl's error + data stream of one requestID."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.error_id = 0
        self.data_id = 0
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.backlog: list[bytes | None] = []  # client bytes before the pod connection is up


class _WsPipe:
    """A byte stream carried in binary WebSocket messages (the SPDY tunnel)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
                continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return b""

    async def write(self, data: bytes) -> None:
        if not self.ws.closed:
            await self.ws.send_bytes(data)


class _RawPipe:
    """The raw bytes of an HTTP connection after a ``101 Switching Protocols`` to SPDY/3.1.

    aiohttp parses only WebSocket upgrades itself; like its WebSocketResponse,
    this installs a payload parser on the request's protocol so that every
    later byte of the connection lands here.
    """

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    # the parser interface aiohttp's RequestHandler feeds
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")

    async def upgrade(self, protocol: str) -> web.StreamResponse:
        resp = web.StreamResponse(status=101, reason="Switching Protocols", headers={
            "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": protocol})
        await resp.prepare(self.request)
        self.request.protocol.set_parser(self)  # type: ignore[union-attr,arg-type]
        return resp

    async def read(self) -> bytes:
        return await self.queue.get()

    async def write(self, data: bytes) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection closed")
        transport.write(data)
        proto: Any = self.request.protocol
        if getattr(proto, "_paused", False):
            await proto._drain_helper()

    def close(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.close()


def _can_hijack(request: web.Request) -> bool:
    return hasattr(request.protocol, "set_parser") and hasattr(request.protocol, "_drain_helper")


class _SpdyTunnel:
    """The server end of port-forward's SPDY/3.1 session (over a WebSocket or a raw upgrade)."""

    def __init__(self, pipe: _WsPipe | _RawPipe, provider: PodStreams, namespace: str, pod: str, uid: str) -> None:
        self.pipe = pipe
        self.provider = provider
        self.namespace = namespace
        self.pod = pod
        self.uid = uid
        self.reader = spdy.FrameReader()
        self.writer = spdy.FrameWriter()
        self.lock = asyncio.Lock()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}
        self.last_stream = 0

    async def send(self, data: bytes) -> None:
        async with self.lock:
            await self.pipe.write(data)

    async def run(self) -> None:
        try:
            while chunk := await self.pipe.read():
                for frame in self.reader.feed(chunk):
                    if not await self.handle(frame):
                        return
        except spdy.ProtocolError as e:
            log.info("port-forward tunnel: %s", e)
            with contextlib.suppress(Exception):
                await self.send(self.writer.goaway(self.last_stream, 1))
        except ConnectionResetError:
            pass
        finally:
            for pair in self.pairs.values():
                if pair.task is not None:
                    pair.task.cancel()
                if pair.writer is not None:
                    pair.writer.close()

    async def handle(self, frame: spdy.Frame) -> bool:
        if frame.type == spdy.SYN_STREAM:
            await self.open_stream(frame)
        elif frame.type == 0:
            pair = self.by_stream.get(frame.stream_id)
            if pair is not None and frame.stream_id == pair.data_id:
                await self.to_pod(pair, frame.data, frame.fin)
        elif frame.type == spdy.RST_STREAM:
            pair = self.by_stream.get(frame.stream_id)
            if pair is not None and pair.task is not None and frame.stream_id == pair.data_id:
                pair.task.cancel()
        elif frame.type == spdy.PING:
            if frame.ping_id % 2 == 1:  # client-initiated: echo
                await self.send(self.writer.ping(frame.ping_id))
        elif frame.type == spdy.GOAWAY:
            return False
        return True

    async def open_stream(self, frame: spdy.Frame) -> None:
        sid = frame.stream_id
        self.last_stream = max(self.last_stream, sid)
        stype = frame.header("streamtype")
        port_s = frame.header("port") or ""
        request_id = frame.header("requestid") or str(sid)
        try:
            port = int(port_s)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await self.send(self.writer.rst_stream(sid, spdy.PROTOCOL_ERROR))
            return
        if stype not in ("error", "data"):
            await self.send(self.writer.rst_stream(sid, spdy.PROTOCOL_ERROR))
            return
        pair = self.pairs.setdefault(request_id, _Pair(port))
        self.by_stream[sid] = pair
        if stype == "error":
            pair.error_id = sid
        else:
            pair.data_id = sid
        await self.send(self.writer.syn_reply(sid))
        if pair.error_id and pair.data_id and pair.task is None:
            pair.task = asyncio.create_task(self.forward(request_id, pair))

    async def to_pod(self, pair: _Pair, data: bytes, fin: bool) -> None:
        if pair.writer is None:
            if data:
                pair.backlog.append(data)
            if fin:
                pair.backlog.append(None)
            return
        try:
            if data:
                pair.writer.write(data)
                await pair.writer.drain()
            if fin and pair.writer.can_write_eof():
                pair.writer.write_eof()
        except (ConnectionError, OSError):
            pass

    async def forward(self, request_id: str, pair: _Pair) -> None:
        try:
            try:
                reader, writer = await self.provider.port_forward(self.namespace, self.pod, pair.port)
            except (OSError, APIError, SandboxError) as e:
                why = e.message if isinstance(e, APIError) else str(e)
                msg = f"error forwarding port {pair.port} to pod {self.pod}, uid {self.uid}: {why}"
                await self.send(self.writer.data(pair.error_id, msg.encode()))
                return
            pair.writer = writer
            for item in pair.backlog:
                await self.to_pod(pair, item or b"", item is None)
            pair.backlog.clear()
            while True:
                chunk = await reader.read(spdy.MAX_DATA)
                if not chunk:
                    break
                await self.send(self.writer.data(pair.data_id, chunk))
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.send(self.writer.data(pair.data_id, b"", fin=True))
                await self.send(self.writer.data(pair.error_id, b"", fin=True))
            if pair.writer is not None:
                pair.writer.close()
            self.pairs.pop(request_id, None)
            self.by_stream.pop(pair.data_id, None)
            self.by_stream.pop(pair.error_id, None)


async def _channel_port_forward(ws: web.WebSocketResponse, provider: PodStreams, namespace: str, pod: str,
                                uid: str, ports: list[int]) -> None:
    """``v4.channel.k8s.io`` port-forward: one connection per port, channels 2i / 2i+1."""
    lock = asyncio.Lock()

    async def send(ch: int, data: bytes) -> None:
        async with lock:
            if not ws.closed:
                await ws.send_bytes(bytes([ch]) + data)

    writers: dict[int, asyncio.StreamWriter] = {}
    tasks: list[asyncio.Task[None]] = []

    async def pump(i: int, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(spdy.MAX_DATA):
                await send(2 * i, chunk)
        await ws.close()

    for i, port in enumerate(ports):
        await send(2 * i, port.to_bytes(2, "little"))
        await send(2 * i + 1, port.to_bytes(2, "little"))
        try:
            reader, writer = await provider.port_forward(namespace, pod, port)
        except (OSError, APIError, SandboxError) as e:
            why = e.message if isinstance(e, APIError) else str(e)
            await send(2 * i + 1, f"error forwarding port {port} to pod {pod}, uid {uid}: {why}".encode())
            continue
        writers[i] = writer
        tasks.append(asyncio.create_task(pump(i, reader)))
    try:
        async for msg in ws:
            raw = _payload(msg)
            if not raw:
                continue
            ch = raw[0]
            w = writers.get(ch // 2) if ch % 2 == 0 else None
            if w is not None and len(raw) > 1:
                w.write(raw[1:])
                with contextlib.suppress(ConnectionError, OSError):
                    await w.drain()
    finally:
        for task in tasks:
            task.cancel()
        for w in writers.values():
            w.close()


async def _serve_port_forward(handlers: ResourceHandlers, t: Target, request: web.Request) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    ports: list[int] = []
    for raw in request.query.getall("ports", []):
        for part in raw.split(","):
            try:
                port = int(part)
            except ValueError:
                raise errors.bad_request(f'unable to parse "{part}" as a port: invalid syntax') from None
            if not 0 < port < 65536:
                raise errors.bad_request(f"port {port} must be > 0 and < 65536")
            ports.append(port)
    pod = _get_pod(handlers, t)
    name = pod["metadata"]["name"]
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    provider = _provider(handlers, pod)
    uid = pod["metadata"].get("uid", "")
    if _is_spdy(request):
        if "portforward.k8s.io" not in _stream_protocols(request):
            raise errors.bad_request("unable to upgrade: no supported stream protocol (want portforward.k8s.io)")
        raw = _RawPipe(request)
        resp = await raw.upgrade("portforward.k8s.io")
        tunnel = _SpdyTunnel(raw, provider, t.namespace, t.name, uid)
        try:
            await tunnel.run()
        finally:
            raw.close()
        return resp
    if not _is_websocket(request):
        raise _spdy_refused()
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if PORT_FORWARD_TUNNEL in offered:
        ws = web.WebSocketResponse(protocols=(PORT_FORWARD_TUNNEL,), max_msg_size=0)
        await ws.prepare(request)
        await _SpdyTunnel(_WsPipe(ws), provider, t.namespace, t.name, uid).run()
        await ws.close()
        return ws
    if not ports:
        raise errors.bad_request("query parameter \"port\" is required")
    ws = web.WebSocketResponse(protocols=(STREAM_PROTOCOL_V4, "v4.portforward.k8s.io"), max_msg_size=0)
    await ws.prepare(request)
    await _channel_port_forward(ws, provider, t.namespace, t.name, uid, ports)
    await ws.close()
    return ws


# --- registration ---------------------------------------------------------------

_SUBRESOURCES = {  # handler, discovery kind and verbs (as kube-apiserver lists them)
    "log": (_serve_log, "Pod", ["get"]),
    "exec": (_serve_exec, "PodExecOptions", ["create", "get"]),
    "attach": (_serve_attach, "PodAttachOptions", ["create", "get"]),
    "portforward": (_serve_port_forward, "PodPortForwardOptions", ["create", "get"]),
}


def install(handlers: ResourceHandlers) -> None:
    """Serve ``pods/log``, ``pods/exec``, ``pods/attach`` and ``pods/portforward`` through ``handlers``."""
    for sub, (fn, kind, verbs) in _SUBRESOURCES.items():
        async def handler(t: Target, request: web.Request, fn: Any = fn) -> web.StreamResponse:
            return await fn(handlers, t, request)

        handlers.subresource_handlers[("/pods", sub)] = handler
        discovery.EXTRA_SUBRESOURCES[("", "pods", sub)] = (kind, verbs)
