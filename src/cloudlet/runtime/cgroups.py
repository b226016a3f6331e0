"""cgroup v1 (hybrid) helpers shared by the sandbox handlers.

This machine mounts one cgroup v1 hierarchy per controller under
``/sys/fs/cgroup/<controller>`` plus a named ``systemd`` hierarchy and an empty
cgroup2 mount at ``/sys/fs/cgroup/unified`` ("hybrid"). runc creates a
container's cgroup in *every* one of them, so removal walks all of them.

A cgroup is named by a path relative to each hierarchy's root, e.g.
``cloudlet-<instance>/pod<uid>/<container id>``. Everything here is plain
blocking file I/O on cgroupfs (tiny writes); async callers wrap the
multi-step ones in :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """Mount points of every cgroup (v1 and v2) hierarchy, from mountinfo."""
    found: list[Path] = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        parts = line.split(" - ", 1)
        if len(parts) != 2:
            continue
        fstype = parts[1].split(" ", 1)[0]
        if fstype in ("cgroup", "cgroup2"):
            mount_point = Path(parts[0].split(" ")[4].replace("\\040", " "))
            if mount_point not in found:
                found.append(mount_point)
    return found


def controller_path(controller: str, rel: str) -> Path:
    """The directory of cgroup ``rel`` in the v1 hierarchy of ``controller``."""
    return CGROUP_ROOT / controller / rel.strip("/")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


@dataclass
class Limits:
    """Limits written into a (pod-level) cgroup directly."""

    memory_limit_bytes: int | None = None
    cpu_shares: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int = 100_000
    pids_limit: int | None = None


def ensure(rel: str, limits: Limits | None = None) -> None:
    """Create cgroup ``rel`` in the memory, cpu, cpuacct and pids hierarchies and
    apply ``limits``. Other controllers are created by runc for the containers
    below it (runc fills cpuset.cpus/mems of new parents itself).
    """
    for controller in ("memory", "cpu", "cpuacct", "pids"):
        base = CGROUP_ROOT / controller
        if base.is_dir():
            (base / rel.strip("/")).mkdir(parents=True, exist_ok=True)
    if limits is None:
        return
    if limits.memory_limit_bytes:
        _write(
            controller_path("memory", rel) / "memory.limit_in_bytes", str(limits.memory_limit_bytes)
        )
    if limits.cpu_shares:
        _write(controller_path("cpu", rel) / "cpu.shares", str(limits.cpu_shares))
    if limits.cpu_quota_us:
        _write(controller_path("cpu", rel) / "cpu.cfs_period_us", str(limits.cpu_period_us))
        _write(controller_path("cpu", rel) / "cpu.cfs_quota_us", str(limits.cpu_quota_us))
    if limits.pids_limit:
        pids = controller_path("pids", rel) / "pids.max"
        if pids.parent.is_dir():
            _write(pids, str(limits.pids_limit))


def pids_in(rel: str) -> set[int]:
    """Every process in cgroup ``rel`` or below it, across all hierarchies."""
    pids: set[int] = set()
    for root in hierarchies():
        top = root / rel.strip("/")
        if not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    text = Path(dirpath, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(p) for p in text.split())
    return pids


def remove(rel: str, *, kill: bool = True, timeout: float = 5.0) -> list[str]:
    """Remove cgroup ``rel`` and everything below it in every hierarchy.

    With ``kill``, processes still inside are SIGKILLed first. Returns the
    directories that could not be removed (empty on success). Blocking.
    """
    rel = rel.strip("/")
    if not rel:
        raise ValueError("refusing to remove the root cgroup")
    deadline = time.monotonic() + timeout
    left: list[str] = []
    while True:
        if kill:
            for pid in pids_in(rel):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        left = []
        for root in hierarchies():
            top = root / rel
            if not top.is_dir():
                continue
            dirs = [Path(d) for d, _s, _f in os.walk(top)]
            for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                        left.append(str(d))
                    else:
                        raise
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def remove_named(top: str, name_prefix: str) -> list[str]:
    """Remove (killing what runs inside) every cgroup below ``top`` whose own
    name starts with ``name_prefix``, in every hierarchy; then prune the empty
    directories left between them and ``top`` (``top`` included). Returns the
    directories that could not be removed. Blocking."""
    names: set[str] = set()
    for root in hierarchies():
        base = root / top.strip("/")
        if not base.is_dir():
            continue
        for dirpath, dirs, _files in os.walk(base):
            for d in dirs:
                if d.startswith(name_prefix):
                    names.add(str((Path(dirpath) / d).relative_to(root)))
    left: list[str] = []
    for rel in sorted(names, key=len, reverse=True):
        left += remove(rel)
    prune(top)
    return left


def prune(top: str) -> None:
    """Remove every *empty* cgroup directory at or below ``top``, bottom-up, in
    every hierarchy (a cgroup with processes or children stays). Blocking."""
    for root in hierarchies():
        base = root / top.strip("/")
        if not base.is_dir():
            continue
        dirs = [Path(d) for d, _s, _f in os.walk(base)]
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()


def prune_ancestors(rel: str, stop_at: str) -> None:
    """rmdir the empty parents of ``rel`` up to and including ``stop_at``."""
    rel, stop_at = rel.strip("/"), stop_at.strip("/")
    chain = []
    path = Path(rel).parent
    while str(path) not in (".", "") and (
        str(path) == stop_at or str(path).startswith(stop_at + "/")
    ):
        chain.append(str(path))
        path = path.parent
    for root in hierarchies():
        for ancestor in chain:
            try:
                (root / ancestor).rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                break


def exists_anywhere(rel: str) -> list[str]:
    """The hierarchies in which cgroup ``rel`` exists (for leak checks)."""
    return [
        str(root / rel.strip("/")) for root in hierarchies() if (root / rel.strip("/")).is_dir()
    ]


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_kv(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


@dataclass
class Usage:
    cpu_usage_ns: int = 0
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0
    memory_rss_bytes: int = 0
    pids: int = 0


def usage(rel: str) -> Usage:
    """CPU, memory and pid usage of cgroup ``rel`` from the v1 files."""
    mem = controller_path("memory", rel)
    usage_bytes = _read_int(mem / "memory.usage_in_bytes")
    stat = _read_kv(mem / "memory.stat")
    inactive = stat.get("total_inactive_file", 0)
    working = max(0, usage_bytes - inactive)
    return Usage(
        cpu_usage_ns=_read_int(controller_path("cpuacct", rel) / "cpuacct.usage"),
        memory_usage_bytes=usage_bytes,
        memory_working_set_bytes=working,
        memory_rss_bytes=stat.get("total_rss", 0),
        pids=_read_int(controller_path("pids", rel) / "pids.current"),
    )


def oom_kills(rel: str) -> int:
    """The ``oom_kill`` counter of cgroup ``rel``'s memory controller (0 if gone)."""
    return _read_kv(controller_path("memory", rel) / "memory.oom_control").get("oom_kill", 0)
