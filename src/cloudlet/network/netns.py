"""Named network namespaces for pods: create, delete, list and enter them.

A pod's network namespace is a bind mount of an nsfs inode onto a file, so it
lives on without any process in it (the runtime later joins it by path:
``linux.namespaces[type=network].path``). cloudlet puts these files in
``/run/netns`` — the directory ``ip netns`` uses — named
``cloudlet-<instance>-<pod key>``, so ``ip netns list``/``ip netns exec`` show
and enter them and a leak is easy to spot. Only the location is shared with
``ip netns``; nothing here runs ``ip netns`` or relies on its other state.

How: :func:`create` starts a short-lived OS thread that calls
``unshare(CLONE_NEWNET)`` (a per-thread operation), bind-mounts
``/proc/self/task/<tid>/ns/net`` onto the file and exits; the thread's own
reference goes with it, the mount keeps the namespace. :func:`delete` lazily
unmounts and unlinks the file; the kernel destroys the namespace (and the pod
end of its veth pair, and with it the host end) once the last reference is
gone — asynchronously, so a leak check must poll.

Entering a namespace works the same way: :func:`run_in` runs a function in a
fresh thread after ``setns`` into the namespace; sockets keep the namespace they
were created in, so :func:`socket_in` / :func:`open_connection` give the event
loop a socket inside a pod (port-forward, probes) without a subprocess.
:func:`set_link_up` / :func:`link_is_up` bring an interface of a namespace up
(``SIOCSIFFLAGS``, as ``ip link set <if> up`` does) and read its state; the pod
network uses them for ``lo`` instead of spawning the CNI ``loopback`` plugin.

Every blocking step runs in a thread; the coroutines never block the loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = [
    "NETNS_DIR",
    "NetnsError",
    "create",
    "delete",
    "exists",
    "link_is_up",
    "list_dir",
    "open_connection",
    "run_in",
    "set_link_up",
    "socket_in",
]

NETNS_DIR = Path("/run/netns")

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MNT_DETACH = 2
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = 40  # sizeof(struct ifreq): 16 bytes of name, then a union (flags: a short)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

T = TypeVar("T")


class NetnsError(OSError):
    """A network namespace could not be created, entered or removed."""


def _oserror(what: str, path: Path | str) -> NetnsError:
    err = ctypes.get_errno()
    return NetnsError(err, f"{what} {path}: {os.strerror(err)}")


def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def exists(path: Path | str) -> bool:
    """True when ``path`` is a bind-mounted network namespace (an nsfs inode)."""
    try:
        return os.stat(path).st_dev == _nsfs_dev()
    except OSError:
        return False


def _in_fresh_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new OS thread that ends afterwards (namespace changes die with it)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="cloudlet-netns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _create_sync(path: Path) -> None:
    if exists(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def bind() -> None:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            raise _oserror("unshare(CLONE_NEWNET) for", path)
        src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if _libc.mount(src, os.fsencode(path), None, _MS_BIND, None) != 0:
            raise _oserror("bind-mount network namespace onto", path)

    try:
        _in_fresh_thread(bind)
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise


def _delete_sync(path: Path) -> None:
    # Several stacked mounts are possible after a crash mid-create; peel them all.
    for _ in range(16):
        if _libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err in (errno.EINVAL, errno.ENOENT):  # not a mount point / gone
                break
            raise _oserror("unmount network namespace", path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


async def create(path: Path | str) -> Path:
    """Create a new, empty network namespace bound at ``path``; idempotent.

    An existing namespace at ``path`` is kept (not replaced). The namespace
    holds only a loopback interface, which is down.
    """
    p = Path(path)
    await asyncio.to_thread(_create_sync, p)
    return p


async def delete(path: Path | str) -> None:
    """Unmount and remove the namespace file at ``path``; a missing one is fine."""
    await asyncio.to_thread(_delete_sync, Path(path))


def list_dir(directory: Path | str = NETNS_DIR, prefix: str = "") -> list[Path]:
    """Namespace files in ``directory`` whose name starts with ``prefix`` (sorted)."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    return [Path(directory, n) for n in names if n.startswith(prefix)]


def run_in(path: Path | str, fn: Callable[[], T]) -> T:
    """Call ``fn`` inside the network namespace at ``path`` (blocking; use a thread).

    ``fn`` runs in a fresh OS thread that joined the namespace with ``setns``
    and ends afterwards, so no pooled thread is ever left in a pod's network.
    """
    p = Path(path)

    def enter() -> T:
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise _oserror("setns into", p)
        finally:
            os.close(fd)
        return fn()

    if not exists(p):
        raise NetnsError(errno.ENOENT, f"no network namespace at {p}")
    return _in_fresh_thread(enter)


def _ifreq(name: str, flags: int = 0) -> bytes:
    raw = name.encode()
    if not 0 < len(raw) < 16:
        raise ValueError(f"invalid interface name {name!r}")
    return raw.ljust(16, b"\0") + flags.to_bytes(2, "little") + b"\0" * (_IFREQ - 18)


def _if_flags(sock: socket.socket, name: str) -> int:
    res = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, _ifreq(name))
    return int.from_bytes(res[16:18], "little")


def set_link_up(path: Path | str, name: str = "lo") -> None:
    """Set ``IFF_UP`` on interface ``name`` inside the namespace at ``path`` (blocking).

    Idempotent; the kernel gives ``lo`` its 127.0.0.1/8 and ::1 when it comes up.
    Raises ``OSError`` (e.g. ENODEV for a missing interface).
    """
    def up() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            flags = _if_flags(sock, name)
            if not flags & _IFF_UP:
                fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, _ifreq(name, flags | _IFF_UP))

    run_in(path, up)


def link_is_up(path: Path | str, name: str = "lo") -> bool:
    """Whether interface ``name`` in the namespace at ``path`` is up (blocking)."""
    def read() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            return bool(_if_flags(sock, name) & _IFF_UP)

    return run_in(path, read)


def socket_in(path: Path | str, family: int = socket.AF_INET,
              type: int = socket.SOCK_STREAM) -> socket.socket:  # noqa: A002
    """A new socket living in the network namespace at ``path`` (blocking call)."""
    return run_in(path, lambda: socket.socket(family, type))


async def open_connection(path: Path | str, host: str, port: int, *,
                          connect_timeout: float = 10.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TCP connection from inside the network namespace at ``path``.

    Used to reach a pod's own ``localhost`` (port-forward) or to connect as a
    pod would. Raises ``OSError`` (e.g. ``ConnectionRefusedError``) like
    :func:`asyncio.open_connection`, ``TimeoutError`` after ``connect_timeout``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = await asyncio.to_thread(socket_in, path, family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), connect_timeout)
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
