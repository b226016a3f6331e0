"""The sandbox runtime interface: what the node agent asks of every isolation kind.

One small async interface, the same for an OCI container (runc), a microVM
(QEMU) or a WebAssembly module (wasmtime) — the CRI / Nomad task-driver idea.
A pod picks its handler with ``runtimeClassName`` (RuntimeClass ``handler``);
the agent looks the handler up by :attr:`RuntimeHandler.name`.

Division of labour (the contract):

* The **node agent** decides *what* runs: it resolves argv (command/args over
  the image's Entrypoint/Cmd), env (valueFrom, service env vars), the user,
  volumes (it materialises emptyDir/configMap/secret/... on the host and passes
  them as :class:`Mount` s), the pod network (it creates the network namespace
  through ``network/`` and passes its path), the root filesystem (a snapshot from
  ``image/``) and the restart policy. It never touches a handler's internals.
* The **handler** decides *how* it runs: namespaces, cgroups, the process
  supervisor, log capture into :attr:`ContainerSpec.log_path` in the CRI log
  format (``<RFC3339Nano> stdout|stderr F|P <line>``), exit codes and OOM
  detection, exec.

Rules every handler keeps:

* Every method is idempotent where that makes sense: stopping a stopped
  container, removing a removed sandbox or container is a no-op, not an error.
  :class:`NotFound` is raised only by :meth:`RuntimeHandler.container_status` and
  :meth:`RuntimeHandler.exec` for a handle the handler has never heard of.
* Blocking work (subprocesses, file I/O of any size) never blocks the loop.
* Handles are plain JSON-serialisable data (:meth:`Handle.to_json`) carrying a
  ``version``; the agent persists them, and after a restart of ``cloudlet up``
  :meth:`RuntimeHandler.list_sandboxes` / :meth:`RuntimeHandler.list_containers`
  find what is still running from the host's own state (runc's state dir, pid
  files, cgroups), so nothing is duplicated or orphaned.
* Everything a handler creates on the host (cgroups, mounts, processes, files)
  carries the ``cloudlet`` prefix plus the instance id it was given, and is gone
  after :meth:`RuntimeHandler.remove_sandbox`. :meth:`RuntimeHandler.cleanup_all`
  removes everything of one instance (used by tests and ``--no-node`` restarts).
* Optional features are advertised in :class:`RuntimeCapabilities`; a method
  for an unsupported feature raises :class:`Unsupported`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

HANDLE_VERSION = 1


class SandboxError(Exception):
    """Base of the errors a handler raises; ``reason`` is a Kubernetes-style word."""

    reason = "RunContainerError"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class NotFound(SandboxError):
    reason = "NotFound"


class Unsupported(SandboxError):
    reason = "Unsupported"


@dataclass
class Handle:
    """Opaque, versioned reference to a sandbox or container.

    ``data`` belongs to the handler; the agent only stores and returns it.
    """

    handler: str
    id: str
    version: int = HANDLE_VERSION
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Handle:
        return cls(
            handler=raw["handler"],
            id=raw["id"],
            version=int(raw.get("version", HANDLE_VERSION)),
            data=dict(raw.get("data") or {}),
        )


@dataclass
class Mount:
    """A host path (file or directory) or a tmpfs shown inside the container."""

    container_path: str
    host_path: str | None = None  # None with type "tmpfs"
    read_only: bool = False
    type: Literal["bind", "tmpfs"] = "bind"
    size_bytes: int | None = None  # tmpfs only
    propagation: Literal["private", "rslave", "rshared"] = "private"


@dataclass
class Resources:
    """Linux resources of one container (already converted from Kubernetes units)."""

    cpu_shares: int | None = None  # from requests.cpu (milli * 1024 / 1000, min 2)
    cpu_quota_us: int | None = None  # from limits.cpu (milli * period / 1000)
    cpu_period_us: int = 100_000
    memory_limit_bytes: int | None = None  # limits.memory
    pids_limit: int | None = None
    hugepages: dict[str, int] = field(default_factory=dict)


@dataclass
class Security:
    """The container's securityContext, merged with the pod's, resolved."""

    uid: int = 0
    gid: int = 0
    supplemental_gids: list[int] = field(default_factory=list)
    privileged: bool = False
    read_only_rootfs: bool = False
    capabilities_add: list[str] = field(default_factory=list)  # "NET_ADMIN" (no CAP_ prefix)
    capabilities_drop: list[str] = field(default_factory=list)  # may contain "ALL"
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    seccomp: Literal["RuntimeDefault", "Unconfined", "Localhost"] = "RuntimeDefault"
    seccomp_localhost_profile: str | None = None  # path, with seccomp "Localhost"
    proc_mount: Literal["Default", "Unmasked"] = "Default"
    sysctls: dict[str, str] = field(default_factory=dict)


@dataclass
class SandboxSpec:
    """A pod's sandbox: the shared namespaces and the pod-level cgroup."""

    uid: str
    namespace: str
    name: str
    hostname: str
    netns_path: str | None  # None: the host network (hostNetwork: true)
    host_ipc: bool = False
    host_pid: bool = False
    share_process_namespace: bool = False
    cgroup_parent: str = ""  # e.g. "cloudlet-<instance>/pod<uid>", under each hierarchy
    resources: Resources = field(default_factory=Resources)  # pod-level limits (sum/overhead)
    sysctls: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None  # where container log files of this pod go
    # Files the agent renders and every container of the pod sees:
    # /etc/hosts, /etc/resolv.conf, /etc/hostname (host paths).
    etc_hosts: str | None = None
    resolv_conf: str | None = None


@dataclass
class ContainerSpec:
    """One container of a sandbox, fully resolved by the agent."""

    name: str
    args: list[str]  # argv[0] included
    rootfs: Path  # a prepared snapshot (read-write unless security.read_only_rootfs)
    image: str = ""  # for status only
    image_id: str = ""  # for status only
    env: list[tuple[str, str]] = field(default_factory=list)
    working_dir: str = "/"
    mounts: list[Mount] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    security: Security = field(default_factory=Security)
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    log_path: Path | None = None  # CRI-format log file the handler appends to
    stop_signal: str = ""  # the image's StopSignal ("SIGQUIT", "15"); empty: SIGTERM
    attempt: int = 0  # restart count, part of the log file name
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


ContainerState = Literal["created", "running", "exited", "unknown"]


@dataclass
class ContainerStatus:
    id: str
    state: ContainerState
    pid: int | None = None
    exit_code: int | None = None
    # "OOMKilled", "Error", "Completed" (exit 0), "ContainerCannotRun", ...
    reason: str = ""
    message: str = ""
    created_at: float | None = None  # unix seconds
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class ContainerStats:
    timestamp: float
    cpu_usage_ns: int = 0  # cumulative
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0  # usage - inactive_file, as cAdvisor
    memory_rss_bytes: int = 0
    pids: int = 0


@dataclass
class RuntimeCapabilities:
    exec: bool = True
    tty: bool = True
    stats: bool = True
    port_forward: bool = True  # the agent enters the netns itself; handler needs none
    host_network: bool = True
    oom_detection: bool = True
    recovery: bool = True  # list_* find running sandboxes after an agent restart


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False


class ExecSession(Protocol):
    """An interactive exec: the streaming API of ``kubectl exec`` sits on top."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def output(self) -> AsyncIterator[tuple[Literal[1, 2], bytes]]:
        """Yields (1, stdout bytes) / (2, stderr bytes) until the process ends."""
        ...

    async def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int:
        """The exit code (128 + signal for a signalled process)."""
        ...

    async def kill(self) -> None: ...


@runtime_checkable
class RuntimeHandler(Protocol):
    """One isolation kind. See the module docstring for the contract."""

    name: str  # the RuntimeClass handler, e.g. "runc", "microvm", "wasm"
    capabilities: RuntimeCapabilities

    async def start(self) -> None:
        """Check the host can run this kind (binaries present, ...); raise if not."""
        ...

    async def version(self) -> str:
        """For nodeInfo.containerRuntimeVersion, e.g. ``runc://1.1.5``."""
        ...

    async def run_sandbox(self, spec: SandboxSpec) -> Handle: ...

    async def stop_sandbox(self, sandbox: Handle) -> None:
        """Kill everything left in the sandbox (containers were stopped first)."""
        ...

    async def remove_sandbox(self, sandbox: Handle) -> None:
        """Remove every host resource of the sandbox. Idempotent."""
        ...

    async def create_container(
        self, sandbox: Handle, spec: ContainerSpec
    ) -> Handle: ...

    async def start_container(self, container: Handle) -> None: ...

    async def stop_container(self, container: Handle, grace_seconds: float) -> None:
        """SIGTERM (or the image's StopSignal), wait ``grace_seconds``, then SIGKILL.

        Returns when the process has exited. Idempotent.
        """
        ...

    async def wait_container(self, container: Handle) -> ContainerStatus:
        """Returns once the container has exited (its final status)."""
        ...

    async def container_status(self, container: Handle) -> ContainerStatus: ...

    async def container_stats(self, container: Handle) -> ContainerStats: ...

    async def remove_container(self, container: Handle) -> None:
        """Delete an exited (or killed) container's state. Idempotent."""
        ...

    async def exec_sync(
        self, container: Handle, argv: list[str], timeout_seconds: float
    ) -> ExecResult:
        """Run argv inside the container and collect its output (exec probes)."""
        ...

    async def exec(
        self, container: Handle, argv: list[str], *, tty: bool, stdin: bool
    ) -> ExecSession: ...

    async def list_sandboxes(self) -> list[Handle]:
        """Sandboxes of this instance still present on the host."""
        ...

    async def list_containers(self, sandbox: Handle) -> list[Handle]: ...

    async def cleanup_all(self) -> None:
        """Remove every sandbox and container of this instance from the host."""
        ...
