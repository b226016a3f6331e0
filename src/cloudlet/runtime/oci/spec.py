"""OCI runtime spec (``config.json``) generation for the pause and app containers.

Pure functions from :class:`SandboxSpec` / :class:`ContainerSpec` to the OCI
runtime-spec 1.0 ``config.json`` dict that runc reads. The defaults follow
what CRI runtimes (containerd, CRI-O) give Kubernetes pods: the default
capability set, masked and read-only ``/proc`` paths, a private ``/dev``,
``/dev/pts``, ``/dev/mqueue``, a read-only ``/sys`` and cgroup tree, and the
RuntimeDefault seccomp profile from :mod:`.seccomp`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from ..interface import ContainerSpec, Mount, Resources, SandboxError, SandboxSpec, Security
from .seccomp import default_profile

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHM_SIZE = 64 * 1024 * 1024

# The capability set CRI runtimes grant by default.
DEFAULT_CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
]

# Linux capability names by number (capability.h), for "ALL" and privileged.
CAPABILITY_NAMES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]  # fmt: skip

MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def host_capabilities() -> list[str]:
    """Capabilities in this process's bounding set: what "all" can mean here."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return [n for i, n in enumerate(CAPABILITY_NAMES) if mask >> i & 1]
    except OSError:
        pass
    return list(CAPABILITY_NAMES)


def resolve_capabilities(sec: Security) -> list[str]:
    """The container's capability set: default +add -drop ("ALL" allowed in both)."""
    available = host_capabilities()
    if sec.privileged:
        return available
    norm = lambda names: [n.upper().removeprefix("CAP_") for n in names]  # noqa: E731
    add, drop = norm(sec.capabilities_add), norm(sec.capabilities_drop)
    caps = [] if "ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    if "ALL" in add:
        caps = [c for c in available if c not in drop or "ALL" in drop]
    for cap in add:
        if cap != "ALL" and cap not in caps:
            if cap not in CAPABILITY_NAMES:
                raise SandboxError(
                    f"unknown capability {cap!r}", reason="CreateContainerConfigError"
                )
            caps.append(cap)
    return [c for c in caps if c in available]


def _cap_list(caps: list[str]) -> list[str]:
    return ["CAP_" + c for c in caps]


def linux_resources(res: Resources, *, memsw: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if res.memory_limit_bytes:
        mem: dict[str, Any] = {"limit": res.memory_limit_bytes}
        if memsw:
            mem["swap"] = res.memory_limit_bytes  # no swap beyond the limit, as kubelet
        out["memory"] = mem
    cpu: dict[str, Any] = {}
    if res.cpu_shares:
        cpu["shares"] = max(2, res.cpu_shares)
    if res.cpu_quota_us:
        cpu["quota"] = res.cpu_quota_us
        cpu["period"] = res.cpu_period_us
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit:
        out["pids"] = {"limit": res.pids_limit}
    if res.hugepages:
        out["hugepageLimits"] = [{"pageSize": k, "limit": v} for k, v in res.hugepages.items()]
    return out


def _base_mounts(*, privileged: bool) -> list[dict[str, Any]]:
    ro = [] if privileged else ["ro"]
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", *ro],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", *ro],
        },
    ]


def _bind(dest: str, src: str, *, ro: bool, propagation: str = "private") -> dict[str, Any]:
    opts = ["rbind", propagation if propagation != "private" else "rprivate"]
    if ro:
        opts.append("ro")
    return {"destination": dest, "type": "bind", "source": src, "options": opts}


def user_mounts(mounts: list[Mount]) -> list[dict[str, Any]]:
    out = []
    for m in mounts:
        if m.type == "tmpfs":
            opts = ["nosuid", "nodev", "mode=1777"]
            if m.size_bytes:
                opts.append(f"size={m.size_bytes}")
            if m.read_only:
                opts.append("ro")
            out.append(
                {
                    "destination": m.container_path,
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": opts,
                }
            )
        else:
            if not m.host_path:
                raise SandboxError(
                    f"mount {m.container_path}: bind mount without host path",
                    "CreateContainerConfigError",
                )
            out.append(
                _bind(m.container_path, m.host_path, ro=m.read_only, propagation=m.propagation)
            )
    return out


def host_devices() -> list[dict[str, Any]]:
    """Every character/block device node of the host's /dev (privileged containers)."""
    devices = []
    for dirpath, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if d not in ("pts", "shm", "mqueue", "fd")]
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            if path in ("/dev/console", "/dev/ptmx", "/dev/tty"):
                continue
            devices.append(
                {
                    "path": path,
                    "type": kind,
                    "major": os.major(st.st_rdev),
                    "minor": os.minor(st.st_rdev),
                    "fileMode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid,
                    "gid": st.st_gid,
                }
            )
    return devices


def seccomp_for(sec: Security, caps: list[str]) -> dict[str, Any] | None:
    if sec.privileged or sec.seccomp == "Unconfined":
        return None
    if sec.seccomp == "Localhost":
        if not sec.seccomp_localhost_profile:
            raise SandboxError(
                "seccomp Localhost without a profile path", "CreateContainerConfigError"
            )
        try:
            return json.loads(Path(sec.seccomp_localhost_profile).read_text())
        except (OSError, ValueError) as exc:
            raise SandboxError(
                f"cannot load seccomp profile {sec.seccomp_localhost_profile!r}: {exc}",
                "CreateContainerConfigError",
            ) from exc
    return default_profile(caps)


def pause_config(
    sandbox: SandboxSpec,
    *,
    rootfs: Path,
    cgroups_path: str,
    shm_path: str | None,
) -> dict[str, Any]:
    """The sandbox's pause container: holds the pod's ipc, uts (and pid) namespaces."""
    namespaces: list[dict[str, Any]] = [{"type": "mount"}]
    if not sandbox.host_pid:
        namespaces.append({"type": "pid"})
    if not sandbox.host_ipc:
        namespaces.append({"type": "ipc"})
    if sandbox.netns_path:
        namespaces.append({"type": "network", "path": sandbox.netns_path})
        namespaces.append({"type": "uts"})
    mounts = _base_mounts(privileged=False)
    if shm_path:
        mounts.append(_bind("/dev/shm", shm_path, ro=False))
    sysctls = dict(sandbox.sysctls)
    if not sandbox.netns_path:
        sysctls = {k: v for k, v in sysctls.items() if not k.startswith("net.")}
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 65535, "gid": 65535},
            # ash as PID 1 waits for every child, so orphans of a shared pid
            # namespace are reaped; SIGTERM ends it.
            "args": [
                "/bin/sh",
                "-c",
                "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
            ],
            "env": [f"PATH={DEFAULT_PATH}"],
            "cwd": "/",
            "capabilities": {
                k: [] for k in ("bounding", "effective", "permitted", "inheritable", "ambient")
            },
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": default_profile([]),
            "sysctl": sysctls,
        },
        "annotations": {
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.pod.uid": sandbox.uid,
        },
    }
    if sandbox.netns_path:
        config["hostname"] = sandbox.hostname or sandbox.name
    return config


def container_config(
    sandbox: SandboxSpec,
    spec: ContainerSpec,
    *,
    pause_pid: int | None,
    cgroups_path: str,
    shm_path: str | None,
    hostname_file: str | None,
    memsw: bool,
) -> dict[str, Any]:
    """config.json of one app container of ``sandbox``."""
    sec = spec.security
    caps = resolve_capabilities(sec)
    namespaces: list[dict[str, Any]] = [{"type": "mount"}]

    def shared(kind: str, proc_name: str) -> dict[str, Any]:
        if pause_pid is None:
            raise SandboxError(
                "the sandbox's pause container is not running", "CreateContainerError"
            )
        return {"type": kind, "path": f"/proc/{pause_pid}/ns/{proc_name}"}

    if not sandbox.host_pid:
        namespaces.append(
            shared("pid", "pid") if sandbox.share_process_namespace else {"type": "pid"}
        )
    if not sandbox.host_ipc:
        namespaces.append(shared("ipc", "ipc"))
    if sandbox.netns_path:
        namespaces.append({"type": "network", "path": sandbox.netns_path})
        namespaces.append(shared("uts", "uts"))

    env = [f"{k}={v}" for k, v in spec.env]
    names = {k for k, _ in spec.env}
    if "PATH" not in names:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in names and sandbox.netns_path:
        env.append(f"HOSTNAME={sandbox.hostname or sandbox.name}")
    if spec.tty and "TERM" not in names:
        env.append("TERM=xterm")

    process: dict[str, Any] = {
        "terminal": spec.tty,
        "user": {"uid": sec.uid, "gid": sec.gid},
        "args": list(spec.args),
        "env": env,
        "cwd": spec.working_dir or "/",
        "capabilities": {
            "bounding": _cap_list(caps),
            "effective": _cap_list(caps),
            "permitted": _cap_list(caps),
            "inheritable": [],
            "ambient": [],
        },
        "noNewPrivileges": sec.no_new_privileges and not sec.privileged,
    }
    if sec.supplemental_gids:
        process["user"]["additionalGids"] = list(sec.supplemental_gids)
    if spec.tty:
        process["consoleSize"] = {"height": 24, "width": 80}

    mounts = _base_mounts(privileged=sec.privileged)
    user = user_mounts(spec.mounts)
    taken = {m["destination"].rstrip("/") for m in user}
    extra: list[dict[str, Any]] = []
    if shm_path and "/dev/shm" not in taken:
        extra.append(_bind("/dev/shm", shm_path, ro=False))
    for dest, src in (
        ("/etc/hosts", sandbox.etc_hosts),
        ("/etc/resolv.conf", sandbox.resolv_conf),
        ("/etc/hostname", hostname_file),
    ):
        if src and dest not in taken:
            extra.append(_bind(dest, src, ro=sec.read_only_rootfs))
    mounts += extra + user

    unmasked = sec.privileged or sec.proc_mount == "Unmasked"
    resources = linux_resources(spec.resources, memsw=memsw)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": resources,
        "maskedPaths": [] if unmasked else MASKED_PATHS,
        "readonlyPaths": [] if unmasked else READONLY_PATHS,
        "sysctl": dict(sec.sysctls),
    }
    if sec.privileged:
        resources["devices"] = [{"allow": True, "access": "rwm"}]
        linux["devices"] = host_devices()
    profile = seccomp_for(sec, caps)
    if profile is not None:
        linux["seccomp"] = profile
    # as CRI-O: Bidirectional (rshared) mounts need a shared rootfs, HostToContainer a slave one
    propagations = {m.propagation for m in spec.mounts}
    if "rshared" in propagations:
        linux["rootfsPropagation"] = "rshared"
    elif "rslave" in propagations:
        linux["rootfsPropagation"] = "rslave"

    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(spec.rootfs), "readonly": sec.read_only_rootfs},
        "mounts": mounts,
        "linux": linux,
        "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": spec.name,
            "io.kubernetes.pod.uid": sandbox.uid,
            **spec.annotations,
        },
    }
    return config
