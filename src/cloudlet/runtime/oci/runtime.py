"""RuncRuntime: the ``runc`` handler (see the package docstring for the design)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from .. import cgroups
from ..interface import (
    ContainerSpec,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    Handle,
    NotFound,
    Resources,
    RuntimeCapabilities,
    SandboxError,
    SandboxSpec,
)
from . import spec as ocispec
from .exec import RuncExecSession

T = TypeVar("T")

STOP_SIGNAL_ANNOTATION = "cloudlet.io/stop-signal"
_MSG_RE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _runc_message(text: str) -> str:
    """The human part of runc's logrus output (``msg="..."``), else the text."""
    found = _MSG_RE.findall(text)
    if found:
        return json.loads('"' + found[-1] + '"')
    return text.strip()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _proc_start_time(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if fields and fields[0] == "Z":
        return None  # a zombie has exited
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _alive(pid: int | None, start_time: int | None = None) -> bool:
    if not pid:
        return False
    st = _proc_start_time(pid)
    return st is not None and (start_time is None or st == start_time)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


# Host work of every RuncRuntime runs on its own small pool, so that slow
# steps (conmon waiting for ``runc create``, cgroup removal retries) never
# starve the loop's default executor that the rest of the server uses.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="cloudlet-runc")


async def _blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args))


_libc: ctypes.CDLL | None = None


def _libc_call(name: str, *args: Any) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _mount_tmpfs(target: Path, source: str, options: str) -> None:
    _libc_call(
        "mount", source.encode(), str(target).encode(), b"tmpfs", 0x2 | 0x4 | 0x8, options.encode()
    )


def _umount(target: Path) -> None:
    try:
        _libc_call("umount2", str(target).encode(), 2)  # MNT_DETACH
    except OSError as exc:
        if exc.errno not in (22, 2):  # EINVAL: not a mount point; ENOENT
            raise


def _mounts_under(prefix: Path) -> list[Path]:
    out = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return out
    pre = str(prefix).rstrip("/") + "/"
    for line in text.splitlines():
        point = line.split(" ")[4].replace("\\040", " ")
        if point.startswith(pre):
            out.append(Path(point))
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


def _spawn_conmon(argv: list[str], cwd: Path, limit: float) -> tuple[int, str, bytes]:
    """Run conmon and read its first sync-pipe message (blocking; call in a thread).

    conmon forks into the background and its first process exits at once; the
    daemon writes ``{"data": <pid>}`` (or ``-1`` and a message) to the pipe named
    by ``_OCI_SYNCPIPE`` once ``runc create`` is done. A plain ``subprocess``
    in a worker thread is used because event loops differ in ``pass_fds``
    support (uvloop does not keep the descriptor number).
    """
    read_fd, write_fd = os.pipe()
    try:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                cwd=str(cwd),
                env=dict(os.environ, _OCI_SYNCPIPE=str(write_fd)),
            )
        finally:
            os.close(write_fd)
        _, err = proc.communicate(timeout=limit)
        if proc.returncode:
            return proc.returncode, err.decode(errors="replace"), b""
        deadline = time.monotonic() + limit
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_fd], [], [], left)[0]:
                break
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            line += chunk
        return 0, "", line
    finally:
        os.close(read_fd)


class RuncRuntime:
    """OCI containers with runc, supervised by conmon. One instance per agent."""

    name = "runc"

    def __init__(
        self,
        state_dir: Path,
        instance: str,
        *,
        runc: str = "runc",
        conmon: str = "conmon",
        pause_binary: str = "/bin/busybox",
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.instance = _SAFE.sub("-", instance) or "default"
        self.prefix = f"cloudlet-{self.instance}"
        self.root = self.state_dir / "runc"
        self.sandboxes_dir = self.state_dir / "sandboxes"
        self.pause_rootfs = self.state_dir / "pause-rootfs"
        self._runc_name, self._conmon_name, self._pause_binary = runc, conmon, pause_binary
        self.runc = shutil.which(runc) or runc
        self.conmon = shutil.which(conmon) or conmon
        self.capabilities = RuntimeCapabilities()
        self._memsw = Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        self._locks: dict[str, asyncio.Lock] = {}
        self._topology_lock = asyncio.Lock()

    # helpers ----------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _exec(self, *argv: str, limit: float = 60.0) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SandboxError(f"{argv[0]} {argv[1:4]} timed out after {limit}s") from None
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def _runc(self, *args: str, limit: float = 60.0) -> tuple[int, str, str]:
        return await self._exec(self.runc, "--root", str(self.root), *args, limit=limit)

    def _sandbox_dir(self, sid: str) -> Path:
        if not sid.startswith(self.prefix + "-") or "/" in sid:
            raise NotFound(f"sandbox {sid!r} does not belong to this runtime instance")
        return self.sandboxes_dir / sid

    def _sandbox_meta(self, sid: str) -> dict[str, Any] | None:
        return _read_json(self._sandbox_dir(sid) / "sandbox.json")

    def _container_dir(self, handle: Handle) -> Path:
        sid = handle.data.get("sandbox") or ""
        if not handle.id.startswith(self.prefix + "-") or "/" in handle.id:
            raise NotFound(f"container {handle.id!r} does not belong to this runtime instance")
        return self._sandbox_dir(sid) / "containers" / handle.id

    def _cgroup_parent(self, spec: SandboxSpec) -> str:
        parent = spec.cgroup_parent.strip("/")
        if not parent:
            return f"{self.prefix}/pod{_SAFE.sub('-', spec.uid)}"
        if not (parent == self.prefix or parent.startswith(self.prefix + "/")):
            parent = f"{self.prefix}/{parent}"
        return parent

    def _ensure_pause_rootfs(self) -> None:
        root = self.pause_rootfs
        if (root / "bin" / "sh").exists():
            return
        tmp = self.state_dir / f"pause-rootfs.{uuid.uuid4().hex[:8]}"
        (tmp / "bin").mkdir(parents=True)
        for d in ("proc", "dev", "sys", "etc", "tmp"):
            (tmp / d).mkdir()
        shutil.copy2(self._pause_binary, tmp / "bin" / "busybox")
        for applet in ("sh", "sleep"):
            (tmp / "bin" / applet).symlink_to("busybox")
        try:
            os.rename(tmp, root)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race

    # conmon -----------------------------------------------------------------

    async def _conmon_create(
        self,
        cid: str,
        name: str,
        cdir: Path,
        log_path: Path,
        *,
        terminal: bool,
        stdin: bool,
        stdin_once: bool = False,
    ) -> int:
        """Start conmon, which runs ``runc create``; returns the container's pid."""
        argv = [
            self.conmon, "--api-version", "1",
            "-c", cid, "-u", cid, "-n", name,
            "-r", self.runc, "-b", str(cdir),
            "-p", str(cdir / "pidfile"), "-P", str(cdir / "conmon.pid"),
            "-l", f"k8s-file:{log_path}",
            "-0", str(cdir), "--socket-dir-path", str(cdir),
            "--runtime-arg", "--root", "--runtime-arg", str(self.root),
            "--log-level", "error",
        ]  # fmt: skip
        if terminal:
            argv.append("-t")
        if stdin:
            argv.append("-i")
            if not stdin_once:  # stdinOnce: stdin closes when the first attach ends
                argv.append("--leave-stdin-open")
        spawn = asyncio.ensure_future(_blocking(_spawn_conmon, argv, cdir, 120.0))
        try:
            code, err, line = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # let runc create finish, so the caller's cleanup finds (and
            # deletes) the container instead of racing with its creation
            with contextlib.suppress(Exception):
                await spawn
            raise
        if code:
            raise SandboxError(f"conmon failed: {err.strip()}", "CreateContainerError")
        try:
            msg = json.loads(line)
        except ValueError:
            raise SandboxError(
                "conmon exited without reporting the container pid", "CreateContainerError"
            ) from None
        pid = int(msg.get("data", -1))
        if pid <= 0:
            raise SandboxError(
                _runc_message(str(msg.get("message", "runc create failed"))), "CreateContainerError"
            )
        return pid

    async def _wait_conmon_gone(self, cdir: Path, cid: str, limit: float = 5.0) -> None:
        try:
            pid = int((cdir / "conmon.pid").read_text().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if not _alive(pid) or cid not in _cmdline(pid):
                return
            await asyncio.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            if cid in _cmdline(pid):
                os.kill(pid, signal.SIGKILL)

    # RuntimeHandler ------------------------------------------------------------

    async def start(self) -> None:
        tools = (
            (self.runc, self._runc_name),
            (self.conmon, self._conmon_name),
            (self._pause_binary, self._pause_binary),  # a static busybox for the pause rootfs
        )
        for tool, wanted in tools:
            if not os.access(tool, os.X_OK):
                raise SandboxError(f"{wanted}: not found or not executable", "RuntimeNotReady")
        if not await _blocking(Path("/sys/fs/cgroup/memory").is_dir):
            raise SandboxError(
                "cgroup v1 memory controller not mounted at /sys/fs/cgroup/memory",
                "RuntimeNotReady",
            )
        await _blocking(self._prepare_dirs)

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sandboxes_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_pause_rootfs()

    async def version(self) -> str:
        rc, out, _ = await self._exec(self.runc, "--version")
        match = re.search(r"runc version (\d+\.\d+\.\d+)", out)
        return f"runc://{match.group(1) if match else 'unknown'}"

    async def run_sandbox(self, spec: SandboxSpec) -> Handle:
        await _blocking(self._prepare_dirs)
        sid = f"{self.prefix}-p{uuid.uuid4().hex[:12]}"
        sdir = self.sandboxes_dir / sid
        parent = self._cgroup_parent(spec)
        handle = Handle(
            handler=self.name, id=sid, data={"pod_uid": spec.uid, "cgroup_parent": parent}
        )
        try:
            async with self._topology_lock:
                shm = await _blocking(self._prepare_sandbox_dir, sid, sdir, spec, parent)
            pdir = sdir / "pause"
            config = ocispec.pause_config(
                spec, rootfs=self.pause_rootfs, cgroups_path=f"/{parent}/{sid}", shm_path=shm
            )
            await _blocking(_write_json, pdir / "config.json", config)
            pid = await self._conmon_create(
                sid, "POD", pdir, pdir / "pause.log", terminal=False, stdin=False
            )
            rc, _, err = await self._runc("start", sid)
            if rc:
                raise SandboxError(_runc_message(err), "CreatePodSandboxError")
            meta = await _blocking(_read_json, sdir / "sandbox.json") or {}
            meta.update(pause_pid=pid, pause_start=_proc_start_time(pid), state="ready")
            await _blocking(_write_json, sdir / "sandbox.json", meta)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.remove_sandbox(handle)
            if isinstance(exc, SandboxError):
                raise SandboxError(
                    f"failed to create pod sandbox: {exc}", "CreatePodSandboxError"
                ) from exc
            raise
        handle.data["pause_pid"] = pid
        return handle

    def _prepare_sandbox_dir(
        self, sid: str, sdir: Path, spec: SandboxSpec, parent: str
    ) -> str | None:
        (sdir / "pause").mkdir(parents=True)
        (sdir / "containers").mkdir()
        raw = asdict(spec)
        raw["log_dir"] = str(spec.log_dir) if spec.log_dir else None
        meta = {
            "id": sid,
            "spec": raw,
            "cgroup_parent": parent,
            "created_at": time.time(),
            "state": "creating",
        }
        _write_json(sdir / "sandbox.json", meta)
        (sdir / "hostname").write_text((spec.hostname or spec.name) + "\n")
        res = spec.resources
        cgroups.ensure(
            parent,
            cgroups.Limits(
                memory_limit_bytes=res.memory_limit_bytes,
                cpu_shares=res.cpu_shares,
                cpu_quota_us=res.cpu_quota_us,
                cpu_period_us=res.cpu_period_us,
                pids_limit=res.pids_limit,
            ),
        )
        if spec.host_ipc:
            return "/dev/shm"
        shm = sdir / "shm"
        shm.mkdir()
        _mount_tmpfs(shm, f"{self.prefix}-shm", f"mode=1777,size={ocispec.SHM_SIZE}")
        return str(shm)

    def _spec_of(self, meta: dict[str, Any]) -> SandboxSpec:
        raw = dict(meta["spec"])
        raw["resources"] = Resources(**raw.get("resources") or {})
        raw["log_dir"] = Path(raw["log_dir"]) if raw.get("log_dir") else None
        return SandboxSpec(**raw)

    async def stop_sandbox(self, sandbox: Handle) -> None:
        try:
            sdir = self._sandbox_dir(sandbox.id)
        except NotFound:
            return
        if not sdir.exists():
            return
        for c in await self.list_containers(sandbox):
            await self.stop_container(c, 0)
        await self._runc("kill", sandbox.id, "KILL")
        await self._wait_exit_file(sdir / "pause", 10)
        await self._wait_conmon_gone(sdir / "pause", sandbox.id)
        meta = await _blocking(self._sandbox_meta, sandbox.id)
        if meta:
            meta["state"] = "notready"
            await _blocking(_write_json, sdir / "sandbox.json", meta)

    async def remove_sandbox(self, sandbox: Handle) -> None:
        try:
            sdir = self._sandbox_dir(sandbox.id)
        except NotFound:
            return
        async with self._lock(sandbox.id):
            if not sdir.exists():
                return
            meta = await _blocking(self._sandbox_meta, sandbox.id) or {}
            for c in await self.list_containers(sandbox):
                await self.remove_container(c)
            await self._runc("delete", "--force", sandbox.id)
            await self._wait_conmon_gone(sdir / "pause", sandbox.id)
            parent = meta.get("cgroup_parent") or sandbox.data.get("cgroup_parent")
            await _blocking(self._remove_sandbox_host_state, sandbox.id, sdir, parent)
            async with self._topology_lock:
                await _blocking(self._prune_cgroups, parent)
        self._locks.pop(sandbox.id, None)

    def _remove_sandbox_host_state(self, sid: str, sdir: Path, parent: str | None) -> None:
        if parent:
            cgroups.remove(f"{parent}/{sid}")
        for point in _mounts_under(sdir):
            _umount(point)
        shutil.rmtree(sdir, ignore_errors=True)

    def _prune_cgroups(self, parent: str | None) -> None:
        """Remove the pod cgroup unless another sandbox uses it, then its empty
        ancestors up to the instance's top cgroup. Called under
        ``_topology_lock`` so a concurrent ``run_sandbox`` is not undercut."""
        if not parent:
            return
        metas = []
        if self.sandboxes_dir.is_dir():
            metas = [_read_json(d / "sandbox.json") or {} for d in self.sandboxes_dir.iterdir()]
        if any(m.get("cgroup_parent") == parent for m in metas):
            return
        left = cgroups.remove(parent)
        if left:
            raise SandboxError(f"cgroups still busy: {left}")
        cgroups.prune_ancestors(parent + "/x", self.prefix)

    async def create_container(self, sandbox: Handle, spec: ContainerSpec) -> Handle:
        try:
            sdir = self._sandbox_dir(sandbox.id)
        except NotFound as exc:
            raise SandboxError(str(exc), "CreateContainerError") from None
        meta = await _blocking(self._sandbox_meta, sandbox.id)
        if meta is None:
            raise SandboxError(f"sandbox {sandbox.id} not found", "CreateContainerError")
        pause_pid = meta.get("pause_pid")
        if not _alive(pause_pid, meta.get("pause_start")):
            raise SandboxError(
                f"sandbox {sandbox.id} is not ready (pause container not running)",
                "CreateContainerError",
            )
        sspec = self._spec_of(meta)
        cid = f"{self.prefix}-c{uuid.uuid4().hex[:12]}"
        cdir = sdir / "containers" / cid
        handle = Handle(handler=self.name, id=cid, data={"sandbox": sandbox.id, "name": spec.name})
        parent = meta["cgroup_parent"]
        owned_log = spec.log_path is None and sspec.log_dir is None
        if spec.log_path is not None:
            log_path = Path(spec.log_path)
        elif sspec.log_dir is not None:
            log_path = Path(sspec.log_dir) / spec.name / f"{spec.attempt}.log"
        else:
            log_path = cdir / "container.log"
        stop_signal = (
            spec.stop_signal
            or spec.annotations.get(STOP_SIGNAL_ANNOTATION)
            or spec.labels.get(STOP_SIGNAL_ANNOTATION)
            or ""
        )
        try:
            config = ocispec.container_config(
                sspec,
                spec,
                pause_pid=pause_pid,
                cgroups_path=f"/{parent}/{cid}",
                shm_path=None if sspec.host_ipc else str(sdir / "shm"),
                hostname_file=str(sdir / "hostname"),
                memsw=self._memsw,
            )
            cmeta = {
                "id": cid,
                "sandbox": sandbox.id,
                "name": spec.name,
                "image": spec.image,
                "image_id": spec.image_id,
                "attempt": spec.attempt,
                "log_path": str(log_path),
                "owned_log": owned_log,
                "cgroup": f"{parent}/{cid}",
                "created_at": time.time(),
                "started_at": None,
                "stop_signal": stop_signal,
                "own_pid_ns": not sspec.host_pid and not sspec.share_process_namespace,
                "labels": spec.labels,
                "annotations": spec.annotations,
                "tty": spec.tty,
            }

            def prepare() -> None:
                cdir.mkdir(parents=True)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                _write_json(cdir / "config.json", config)
                _write_json(cdir / "meta.json", cmeta)

            prepared = asyncio.ensure_future(_blocking(prepare))
            try:
                await asyncio.shield(prepared)
            except asyncio.CancelledError:
                # the files appear whatever happens: let them, so the cleanup below finds them
                with contextlib.suppress(Exception):
                    await prepared
                raise
            pid = await self._conmon_create(
                cid,
                spec.name,
                cdir,
                log_path,
                terminal=spec.tty,
                stdin=spec.stdin,
                stdin_once=spec.stdin_once,
            )
            # the pid stays the same through runc start's exec: remember its start
            # time now, so a recycled pid is never mistaken for the container
            cmeta["pid"] = pid
            cmeta["pid_start"] = _proc_start_time(pid)
            await _blocking(_write_json, cdir / "meta.json", cmeta)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.remove_container(handle)
            raise
        return handle

    def _container_meta(self, handle: Handle) -> tuple[Path, dict[str, Any]]:
        cdir = self._container_dir(handle)
        meta = _read_json(cdir / "meta.json")
        if meta is None:
            raise NotFound(f"container {handle.id} not found")
        return cdir, meta

    async def start_container(self, container: Handle) -> None:
        cdir, meta = await _blocking(self._container_meta, container)
        rc, _, err = await self._runc("start", container.id)
        if rc:
            raise SandboxError(_runc_message(err), "RunContainerError")
        meta["started_at"] = time.time()
        await _blocking(_write_json, cdir / "meta.json", meta)

    async def _wait_exit_file(
        self, cdir: Path, limit: float, cid: str | None = None, meta: dict[str, Any] | None = None
    ) -> bool:
        """Wait for conmon's exit file; with ``cid``/``meta``, also stop waiting
        once both the process and its conmon are gone (no file will come)."""
        deadline = time.monotonic() + limit
        delay = 0.01
        while True:
            if _nonempty(cdir / "exit"):
                return True
            if (
                cid is not None
                and meta is not None
                and not _alive(meta.get("pid"), meta.get("pid_start"))
                and not self._conmon_alive(cdir, cid)
            ):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def stop_container(self, container: Handle, grace_seconds: float) -> None:
        try:
            cdir, meta = await _blocking(self._container_meta, container)
        except NotFound:
            return
        status = await self.container_status(container)
        if status.state == "exited":
            return
        if grace_seconds > 0:
            sig = meta.get("stop_signal") or "TERM"
            await self._runc("kill", container.id, sig.removeprefix("SIG"))
            if await self._wait_exit_file(cdir, grace_seconds, container.id, meta):
                return
        kill_args = ["kill"] if meta.get("own_pid_ns") else ["kill", "--all"]
        await self._runc(*kill_args, container.id, "KILL")
        if await self._wait_exit_file(cdir, 10, container.id, meta):
            return
        # conmon gone (killed by someone): make sure the process is.
        pid = meta.get("pid")
        if _alive(pid, meta.get("pid_start")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def wait_container(self, container: Handle) -> ContainerStatus:
        delay = 0.01
        while True:
            status = await self.container_status(container)
            if status.state == "exited":
                return status
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def container_status(self, container: Handle) -> ContainerStatus:
        return await _blocking(self._status, container)

    def _status(self, container: Handle) -> ContainerStatus:
        cdir, meta = self._container_meta(container)
        st = ContainerStatus(
            id=container.id,
            state="created",
            pid=meta.get("pid"),
            created_at=meta.get("created_at"),
            started_at=meta.get("started_at"),
        )
        exit_file = cdir / "exit"
        try:
            code_text: str | None = exit_file.read_text().strip()
            finished = exit_file.stat().st_mtime
        except OSError:
            code_text = None
            finished = None
        if code_text == "":  # conmon created the file but has not written the code yet
            code_text = None
        if code_text is None:
            if meta.get("started_at") is None:
                return st
            if _alive(meta.get("pid"), meta.get("pid_start")) or self._conmon_alive(
                cdir, container.id
            ):
                st.state = "running"
                return st
            st.state = "exited"
            st.exit_code = 255
            st.reason = "Error"
            st.message = (
                "container process ended and its monitor (conmon) is gone; exit code unknown"
            )
            if not meta.get("lost_at"):  # first noticed now: keep the time stable
                meta["lost_at"] = time.time()
                _write_json(cdir / "meta.json", meta)
            st.finished_at = meta["lost_at"]
            return st
        st.state = "exited"
        st.pid = None
        st.finished_at = finished
        try:
            st.exit_code = int(code_text)
        except ValueError:
            st.exit_code = 255
        if st.exit_code < 0:  # conmon: -1 when the exit status is unknown (timeout)
            st.exit_code = 255
        oom = cgroups.oom_kills(meta["cgroup"]) > 0 or (
            (cdir / "oom").exists() and st.exit_code == 137
        )
        if oom:
            st.reason = "OOMKilled"
        elif meta.get("started_at") is None:
            st.reason = "ContainerCannotRun" if st.exit_code else "Completed"
        else:
            st.reason = "Completed" if st.exit_code == 0 else "Error"
        return st

    def _conmon_alive(self, cdir: Path, cid: str) -> bool:
        try:
            pid = int((cdir / "conmon.pid").read_text().strip())
        except (OSError, ValueError):
            return False
        return _alive(pid) and cid in _cmdline(pid)

    async def container_stats(self, container: Handle) -> ContainerStats:
        _, meta = await _blocking(self._container_meta, container)
        use = await _blocking(cgroups.usage, meta["cgroup"])
        return ContainerStats(
            timestamp=time.time(),
            cpu_usage_ns=use.cpu_usage_ns,
            memory_usage_bytes=use.memory_usage_bytes,
            memory_working_set_bytes=use.memory_working_set_bytes,
            memory_rss_bytes=use.memory_rss_bytes,
            pids=use.pids,
        )

    async def remove_container(self, container: Handle) -> None:
        try:
            cdir = self._container_dir(container)
        except NotFound:
            return
        if not cdir.exists():
            return
        meta = await _blocking(_read_json, cdir / "meta.json") or {}
        await self._runc("delete", "--force", container.id)
        await self._wait_conmon_gone(cdir, container.id)

        def cleanup() -> None:
            if meta.get("cgroup"):
                cgroups.remove(meta["cgroup"])
            for point in _mounts_under(cdir):
                _umount(point)
            shutil.rmtree(cdir, ignore_errors=True)

        await _blocking(cleanup)

    async def exec_sync(
        self, container: Handle, argv: list[str], timeout_seconds: float
    ) -> ExecResult:
        cdir, _ = await _blocking(self._container_meta, container)
        pid_file = cdir / f"exec-{uuid.uuid4().hex[:8]}.pid"
        proc = await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.root), "exec", "--pid-file", str(pid_file), container.id, *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        communicate = asyncio.ensure_future(proc.communicate())
        timed_out = False
        try:
            out, err = await asyncio.wait_for(asyncio.shield(communicate), timeout_seconds)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            try:
                out, err = await asyncio.wait_for(communicate, 10)
            except TimeoutError:
                proc.kill()
                out, err = await communicate
        finally:
            with contextlib.suppress(OSError):
                pid_file.unlink()
        rc = proc.returncode if proc.returncode is not None else -1
        return ExecResult(
            exit_code=128 - rc if rc < 0 else rc, stdout=out, stderr=err, timed_out=timed_out
        )

    async def exec(
        self, container: Handle, argv: list[str], *, tty: bool, stdin: bool
    ) -> RuncExecSession:
        cdir, _ = await _blocking(self._container_meta, container)
        status = await self.container_status(container)
        if status.state != "running":
            raise SandboxError(f"container {container.id} is not running", "ContainerNotRunning")
        pid_file = cdir / f"exec-{uuid.uuid4().hex[:8]}.pid"
        cmd = [self.runc, "--root", str(self.root), "exec", "--pid-file", str(pid_file)]
        if tty:
            cmd += ["--tty", "--env", "TERM=xterm"]
        cmd += [container.id, *argv]
        return await RuncExecSession.spawn(cmd, pid_file, tty=tty, stdin=stdin)

    async def list_sandboxes(self) -> list[Handle]:
        def scan() -> list[Handle]:
            out = []
            if not self.sandboxes_dir.is_dir():
                return out
            for d in sorted(self.sandboxes_dir.iterdir()):
                meta = _read_json(d / "sandbox.json")
                if not meta or not d.name.startswith(self.prefix + "-"):
                    continue
                ready = _alive(meta.get("pause_pid"), meta.get("pause_start"))
                out.append(
                    Handle(
                        handler=self.name,
                        id=d.name,
                        data={
                            "pod_uid": meta.get("spec", {}).get("uid"),
                            "namespace": meta.get("spec", {}).get("namespace"),
                            "name": meta.get("spec", {}).get("name"),
                            "cgroup_parent": meta.get("cgroup_parent"),
                            "pause_pid": meta.get("pause_pid"),
                            "ready": ready,
                        },
                    )
                )
            return out

        return await _blocking(scan)

    async def list_containers(self, sandbox: Handle) -> list[Handle]:
        try:
            cdirs = self._sandbox_dir(sandbox.id) / "containers"
        except NotFound:
            return []

        def scan() -> list[Handle]:
            if not cdirs.is_dir():
                return []
            found = []
            for d in cdirs.iterdir():
                meta = _read_json(d / "meta.json")
                if meta:
                    found.append((meta.get("created_at") or 0, d.name, meta))
            return [
                Handle(
                    handler=self.name,
                    id=cid,
                    data={
                        "sandbox": sandbox.id,
                        "name": meta.get("name"),
                        "attempt": meta.get("attempt", 0),
                    },
                )
                for _, cid, meta in sorted(found)
            ]

        return await _blocking(scan)

    async def cleanup_all(self) -> None:
        for sb in await self.list_sandboxes():
            with contextlib.suppress(Exception):
                await self.remove_sandbox(sb)
        if self.root.is_dir():
            rc, out, _ = await self._runc("list", "--format", "json")
            entries = (json.loads(out or "null") or []) if rc == 0 else []
            for entry in entries:
                if str(entry.get("id", "")).startswith(self.prefix + "-"):
                    await self._runc("delete", "--force", entry["id"])
        await _blocking(self._cleanup_host)

    def _cleanup_host(self) -> None:
        marker = f"{self.prefix}-"
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            argv = _cmdline(int(entry.name))
            if argv and Path(argv[0]).name == "conmon" and any(a.startswith(marker) for a in argv):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
        # only what carries our container ids (other handlers may share the
        # instance's pod cgroups), then whatever is left empty
        cgroups.remove_named(self.prefix, marker)
        for point in _mounts_under(self.sandboxes_dir):
            _umount(point)
        shutil.rmtree(self.sandboxes_dir, ignore_errors=True)


def _nonempty(path: Path) -> bool:
    """A file conmon has finished writing (it creates the exit file, then writes the code)."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False
