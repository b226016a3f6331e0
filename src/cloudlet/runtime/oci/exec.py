"""Interactive exec sessions on top of ``runc exec``.

``runc exec`` without ``--detach`` stays the parent of the new process,
forwards signals to it and exits with its status (128 + signal when it was
killed), so the session is just a child process of the agent:

* without a TTY, the process inherits runc's stdio: three asyncio pipes;
* with a TTY, runc needs a host-side terminal to copy to and from the
  container's pty: we open a pty pair, give runc the slave as its stdio and
  read/write the master. A resize sets the master's window size and sends
  SIGWINCH to runc, which copies the size onto the container's pty.

``--pid-file`` names the exec'd process on the host so that a timeout or
:meth:`RuncExecSession.kill` can SIGKILL it directly (killing runc itself
would leave the process running in the container).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class RuncExecSession:
    """One running ``runc exec``; implements the interface's ``ExecSession``."""

    def __init__(
        self, proc: asyncio.subprocess.Process, pid_file: Path, master_fd: int | None
    ) -> None:
        self._proc = proc
        self._pid_file = pid_file
        self._master = master_fd
        self._queue: asyncio.Queue[tuple[Literal[1, 2], bytes] | None] = asyncio.Queue()
        self._open_streams = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._done = asyncio.Event()
        loop = asyncio.get_running_loop()
        if master_fd is not None:
            os.set_blocking(master_fd, False)
            self._open_streams = 1
            loop.add_reader(master_fd, self._on_master_readable)
        else:
            for fd_no, stream in ((1, proc.stdout), (2, proc.stderr)):
                if stream is not None:
                    self._open_streams += 1
                    self._tasks.append(asyncio.create_task(self._pump(fd_no, stream)))  # type: ignore[arg-type]
        self._tasks.append(asyncio.create_task(self._reap()))

    @classmethod
    async def spawn(
        cls, cmd: list[str], pid_file: Path, *, tty: bool, stdin: bool
    ) -> RuncExecSession:
        if tty:
            master, slave = pty.openpty()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
                )
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            return cls(proc, pid_file, master)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc, pid_file, None)

    # output pumps ---------------------------------------------------------

    def _on_master_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every slave end is closed
            if exc.errno != errno.EIO:
                raise
            data = b""
        if data:
            self._queue.put_nowait((1, data))
            return
        asyncio.get_running_loop().remove_reader(self._master)
        self._stream_closed()

    async def _pump(self, fd_no: Literal[1, 2], stream: asyncio.StreamReader) -> None:
        try:
            while chunk := await stream.read(65536):
                self._queue.put_nowait((fd_no, chunk))
        finally:
            self._stream_closed()

    def _stream_closed(self) -> None:
        self._open_streams -= 1
        if self._open_streams == 0:
            self._queue.put_nowait(None)

    async def _reap(self) -> None:
        await self._proc.wait()
        if self._master is not None:
            # The container's pty may be gone before we drained the master:
            # give the reader a moment, then end the stream.
            for _ in range(50):
                if self._open_streams == 0:
                    break
                await asyncio.sleep(0.01)
            if self._open_streams > 0:
                asyncio.get_running_loop().remove_reader(self._master)
                with contextlib.suppress(OSError):
                    while data := os.read(self._master, 65536):
                        self._queue.put_nowait((1, data))
                self._stream_closed()
            os.close(self._master)
            self._master = None
        self._done.set()
        with contextlib.suppress(OSError):
            self._pid_file.unlink()

    # ExecSession ----------------------------------------------------------

    async def write_stdin(self, data: bytes) -> None:
        if self._master is not None:
            fd = self._master
            view = memoryview(data)
            while view:
                try:
                    n = os.write(fd, view)
                    view = view[n:]
                except BlockingIOError:
                    await asyncio.sleep(0.01)
            return
        if self._proc.stdin is None:
            return
        self._proc.stdin.write(data)
        with contextlib.suppress(ConnectionError):
            await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"\x04")  # ^D: end of input for the tty's reader
            return
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[Literal[1, 2], bytes]]:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # later callers end too
                return
            yield item

    async def resize(self, width: int, height: int) -> None:
        if self._master is None:
            return
        fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGWINCH)

    async def wait(self) -> int:
        rc = await self._proc.wait()
        await self._done.wait()
        return 128 - rc if rc < 0 else rc

    async def kill(self) -> None:
        pid = _read_pid(self._pid_file)
        if pid is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            if self._proc.returncode is None:
                self._proc.kill()
