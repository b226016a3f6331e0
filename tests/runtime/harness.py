"""The shared runtime test harness: behaviour every sandbox handler must show.

A handler's test module subclasses :class:`RuntimeSuite` (the class name must
start with ``Test`` for pytest to collect it) and provides one fixture,
``kit``, returning a :class:`Kit` that knows how to build the handler and its
specs::

    class TestRuncSuite(RuntimeSuite):
        @pytest.fixture
        async def kit(self, tmp_path):
            ...
            yield Kit(make_runtime=..., sandbox_spec=..., container_spec=..., leaks=...)

Everything runs for real on the host: the suite starts sandboxes and
containers, reads the CRI log files, stops with a grace period, runs exec
probes and interactive execs, reads stats, recovers state with a *fresh*
handler instance over the same state dir, and checks that removing a sandbox
leaves nothing behind (through the kit's ``leaks``). Programs are shell
snippets; a kit whose sandbox has no POSIX shell maps them in ``shell``.
All waits poll with generous limits; no assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cloudlet.runtime.interface import (
    ContainerSpec,
    Handle,
    NotFound,
    RuntimeHandler,
    SandboxSpec,
)

CRI_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)) (?P<stream>stdout|stderr) (?P<tag>[FP]) (?P<msg>.*)$"
)


@dataclass
class Kit:
    """What the suite needs to know about one handler."""

    make_runtime: Callable[[], RuntimeHandler]  # a fresh instance on the same state
    sandbox_spec: Callable[[str], SandboxSpec]  # a new pod (unique uid) named ...
    # name, argv -> a runnable container of this kind, with ``log_path`` set
    container_spec: Callable[[str, list[str]], ContainerSpec]
    leaks: Callable[[], Awaitable[list[str]]]  # host state of the instance left behind
    shell: Callable[[str], list[str]] = field(default=lambda script: ["sh", "-c", script])


async def poll(check: Callable[[], Awaitable[bool]], limit: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what or check}")
        await asyncio.sleep(0.05)


def read_log(path: Path) -> list[tuple[str, str]]:
    """(stream, message) of each CRI log line; asserts the format."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        m = CRI_LINE.match(line)
        assert m, f"not a CRI log line: {line!r}"
        out.append((m["stream"], m["msg"]))
    return out


class RuntimeSuite:
    """The behaviour every :class:`RuntimeHandler` must show. Needs ``kit``."""

    @pytest.fixture
    async def rt(self, kit: Kit):
        runtime = kit.make_runtime()
        await runtime.start()
        yield runtime
        await runtime.cleanup_all()

    async def _run(
        self, rt: RuntimeHandler, kit: Kit, script: str, name: str = "app"
    ) -> tuple[Handle, Handle, ContainerSpec]:
        sb = await rt.run_sandbox(kit.sandbox_spec(f"pod-{uuid.uuid4().hex[:6]}"))
        spec = kit.container_spec(name, kit.shell(script))
        c = await rt.create_container(sb, spec)
        await rt.start_container(c)
        return sb, c, spec

    async def _wait(self, rt: RuntimeHandler, c: Handle, limit: float = 60.0):
        return await asyncio.wait_for(rt.wait_container(c), limit)

    async def test_identity(self, rt: RuntimeHandler) -> None:
        assert isinstance(rt, RuntimeHandler)
        assert rt.name
        assert "://" in await rt.version()

    async def test_echo_to_log_and_completed(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, spec = await self._run(rt, kit, "echo hello world; echo oops >&2")
        st = await self._wait(rt, c)
        assert (st.state, st.exit_code, st.reason) == ("exited", 0, "Completed")
        assert st.started_at and st.finished_at and st.finished_at >= st.started_at - 1
        assert spec.log_path is not None
        await poll(lambda: _logged(spec.log_path, ("stderr", "oops")), what="log lines")
        lines = read_log(spec.log_path)
        assert ("stdout", "hello world") in lines
        assert ("stderr", "oops") in lines
        await rt.remove_sandbox(sb)

    async def test_exit_code_and_error_reason(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, _ = await self._run(rt, kit, "exit 7")
        st = await self._wait(rt, c)
        assert (st.state, st.exit_code, st.reason) == ("exited", 7, "Error")
        # status stays readable until the container is removed
        again = await rt.container_status(c)
        assert again.exit_code == 7
        await rt.remove_container(c)
        with pytest.raises(NotFound):
            await rt.container_status(c)
        await rt.remove_container(c)  # idempotent
        await rt.remove_sandbox(sb)

    async def test_stop_honours_sigterm_within_grace(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, spec = await self._run(
            rt, kit, "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
        )
        assert spec.log_path is not None
        await poll(lambda: _logged(spec.log_path, ("stdout", "ready")), what="ready")
        assert (await rt.container_status(c)).state == "running"
        await rt.stop_container(c, 30)
        st = await rt.container_status(c)
        assert (st.state, st.exit_code) == ("exited", 0)
        await poll(lambda: _logged(spec.log_path, ("stdout", "got-term")), what="got-term")
        await rt.stop_container(c, 30)  # idempotent
        await rt.remove_sandbox(sb)

    async def test_stop_kills_after_grace(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, spec = await self._run(
            rt, kit, "trap '' TERM; echo ready; while :; do sleep 0.1; done"
        )
        assert spec.log_path is not None
        await poll(lambda: _logged(spec.log_path, ("stdout", "ready")), what="ready")
        t0 = time.monotonic()
        await rt.stop_container(c, 0.5)
        assert time.monotonic() - t0 >= 0.5
        st = await rt.container_status(c)
        assert (st.state, st.exit_code) == ("exited", 137)
        await rt.remove_sandbox(sb)

    async def test_exec_sync(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, _ = await self._run(rt, kit, "echo ok > /tmp/marker; exec sleep 1000")
        await poll(
            lambda: _exec_ok(rt, c, kit.shell("test -f /tmp/marker")), what="container running"
        )
        res = await rt.exec_sync(c, kit.shell("cat /tmp/marker; echo err >&2; exit 4"), 30)
        assert (res.exit_code, res.stdout, res.stderr, res.timed_out) == (
            4,
            b"ok\n",
            b"err\n",
            False,
        )
        t0 = time.monotonic()
        res = await rt.exec_sync(c, kit.shell("sleep 30"), 0.5)
        assert res.timed_out and time.monotonic() - t0 < 20
        assert (await rt.container_status(c)).state == "running"
        await rt.stop_container(c, 0)
        await rt.remove_sandbox(sb)

    async def test_exec_interactive_pipes(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, _ = await self._run(rt, kit, "exec sleep 1000")
        await poll(lambda: _state(rt, c, "running"), what="running")
        session = await rt.exec(c, kit.shell("cat; echo done >&2; exit 3"), tty=False, stdin=True)
        await session.write_stdin(b"line one\n")
        await session.close_stdin()
        out: dict[int, bytes] = {1: b"", 2: b""}
        async for fd, data in session.output():
            out[fd] += data
        assert await asyncio.wait_for(session.wait(), 30) == 3
        assert out == {1: b"line one\n", 2: b"done\n"}
        await rt.remove_sandbox(sb)

    async def test_exec_interactive_tty(self, rt: RuntimeHandler, kit: Kit) -> None:
        if not rt.capabilities.tty:
            pytest.skip("handler has no tty support")
        sb, c, _ = await self._run(rt, kit, "exec sleep 1000")
        await poll(lambda: _state(rt, c, "running"), what="running")
        session = await rt.exec(
            c, kit.shell("sleep 0.3; stty size; read x; echo got-$x; exit 5"), tty=True, stdin=True
        )
        await session.resize(100, 30)
        await session.write_stdin(b"abc\n")
        out = b""
        async for fd, data in session.output():
            assert fd == 1
            out += data
        assert await asyncio.wait_for(session.wait(), 30) == 5
        assert b"30 100" in out and b"got-abc" in out
        await rt.remove_sandbox(sb)

    async def test_stats(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, _ = await self._run(
            rt, kit, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000"
        )
        await poll(lambda: _cpu_used(rt, c), what="cpu usage")
        stats = await rt.container_stats(c)
        assert stats.memory_usage_bytes > 0
        assert 0 < stats.memory_working_set_bytes <= stats.memory_usage_bytes
        assert stats.pids >= 1
        assert stats.timestamp > 0
        await rt.remove_sandbox(sb)

    async def test_recovery_with_fresh_instance(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, spec = await self._run(rt, kit, "echo up; exec sleep 1000")
        done = kit.container_spec("done", kit.shell("exit 2"))
        c2 = await rt.create_container(sb, done)
        await rt.start_container(c2)
        await self._wait(rt, c2)
        await poll(lambda: _state(rt, c, "running"), what="running")

        fresh = kit.make_runtime()  # as after an agent restart: no memory, only host state
        await fresh.start()
        found = {h.id: h for h in await fresh.list_sandboxes()}
        assert sb.id in found
        containers = {h.id: h for h in await fresh.list_containers(found[sb.id])}
        assert set(containers) == {c.id, c2.id}
        st = await fresh.container_status(containers[c.id])
        assert st.state == "running"
        assert (await fresh.container_status(containers[c2.id])).exit_code == 2
        # handles round-trip through JSON as the agent persists them
        persisted = Handle.from_json(c.to_json())
        assert (await fresh.exec_sync(persisted, kit.shell("echo again"), 30)).stdout == b"again\n"
        await fresh.stop_container(persisted, 0)
        assert (await fresh.container_status(persisted)).state == "exited"
        await fresh.remove_sandbox(found[sb.id])
        assert await fresh.list_sandboxes() == []
        assert await kit.leaks() == []

    async def test_remove_sandbox_leaves_nothing(self, rt: RuntimeHandler, kit: Kit) -> None:
        sb, c, _ = await self._run(rt, kit, "exec sleep 1000")
        await poll(lambda: _state(rt, c, "running"), what="running")
        created = await rt.create_container(sb, kit.container_spec("never", kit.shell("true")))
        assert (await rt.container_status(created)).state == "created"
        await rt.stop_sandbox(sb)
        assert (await rt.container_status(c)).state == "exited"
        await rt.remove_sandbox(sb)
        assert await kit.leaks() == []
        await rt.remove_sandbox(sb)  # idempotent
        assert await rt.list_sandboxes() == []
        with pytest.raises(NotFound):
            await rt.container_status(c)

    async def test_unknown_handles(self, rt: RuntimeHandler) -> None:
        ghost = Handle(handler=rt.name, id=f"cloudlet-unknown-{uuid.uuid4().hex[:8]}")
        await rt.stop_sandbox(ghost)  # no-ops, not errors
        await rt.remove_sandbox(ghost)
        assert await rt.list_containers(ghost) == []
        await rt.stop_container(ghost, 0)
        await rt.remove_container(ghost)
        with pytest.raises(NotFound):
            await rt.container_status(ghost)
        with pytest.raises(NotFound):
            await rt.exec(ghost, ["true"], tty=False, stdin=False)

    async def test_cleanup_all(self, rt: RuntimeHandler, kit: Kit) -> None:
        for _ in range(2):
            await self._run(rt, kit, "exec sleep 1000")
        assert len(await rt.list_sandboxes()) == 2
        await rt.cleanup_all()
        assert await rt.list_sandboxes() == []
        assert await kit.leaks() == []


async def _logged(path: Path | None, item: tuple[str, str]) -> bool:
    assert path is not None
    return item in read_log(path)


async def _state(rt: RuntimeHandler, c: Handle, state: str) -> bool:
    return (await rt.container_status(c)).state == state


async def _exec_ok(rt: RuntimeHandler, c: Handle, argv: list[str]) -> bool:
    return (await rt.exec_sync(c, argv, 30)).exit_code == 0


async def _cpu_used(rt: RuntimeHandler, c: Handle) -> bool:
    return (await rt.container_stats(c)).cpu_usage_ns > 0
