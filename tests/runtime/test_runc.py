"""RuncRuntime against real runc 1.1 + conmon: the shared suite plus OCI specifics.

Root filesystems are busybox trees built here from the host's static
/bin/busybox; network namespaces come from ``ip netns add cloudlet-test-...``
(the CNI pod network is exercised elsewhere). Skipped without root, runc,
conmon or a static busybox.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudlet.runtime import cgroups
from cloudlet.runtime.interface import (
    ContainerSpec,
    Handle,
    Mount,
    Resources,
    SandboxSpec,
    Security,
)
from cloudlet.runtime.oci import RuncRuntime

from .harness import Kit, RuntimeSuite, poll, read_log

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runc needs root"),
    pytest.mark.skipif(
        not (shutil.which("runc") and shutil.which("conmon") and Path("/bin/busybox").exists()),
        reason="runc, conmon and /bin/busybox are required",
    ),
    pytest.mark.timeout(240),
]

_APPLETS: list[str] = []


def build_busybox_rootfs(root: Path) -> Path:
    """A minimal root filesystem: static busybox plus one symlink per applet."""
    if not _APPLETS:
        out = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
        _APPLETS.extend(a for a in out.stdout.split() if a and a != "busybox")
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in _APPLETS:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    for d in ("proc", "sys", "dev", "etc", "tmp", "root"):
        (root / d).mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\n")
    return root


class RuncEnv:
    """State dir, netns and rootfs factory of one test; also the leak check."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.instance = f"t{uuid.uuid4().hex[:8]}"
        self.state = tmp / "state"
        self.logs = tmp / "logs"
        self.netns = f"cloudlet-test-{self.instance}"
        self.template = build_busybox_rootfs(tmp / "rootfs-template")
        self.n = 0

    def make_runtime(self) -> RuncRuntime:
        return RuncRuntime(self.state, self.instance)

    def sandbox_spec(self, name: str, **kw) -> SandboxSpec:
        uid = uuid.uuid4().hex
        defaults = dict(
            uid=uid,
            namespace="default",
            name=name,
            hostname=name,
            netns_path=f"/run/netns/{self.netns}",
            cgroup_parent=f"cloudlet-{self.instance}/pod{uid}",
            log_dir=self.logs / uid,
        )
        defaults.update(kw)
        return SandboxSpec(**defaults)

    def rootfs(self) -> Path:
        self.n += 1
        dest = self.tmp / f"rootfs-{self.n}"
        shutil.copytree(self.template, dest, symlinks=True)
        return dest

    def container_spec(self, name: str, args: list[str], **kw) -> ContainerSpec:
        defaults = dict(
            name=name,
            args=args,
            rootfs=self.rootfs(),
            log_path=self.logs / f"{name}-{uuid.uuid4().hex[:6]}.log",
        )
        defaults.update(kw)
        return ContainerSpec(**defaults)

    async def leaks(self) -> list[str]:
        return await asyncio.to_thread(self._leaks)

    def _leaks(self) -> list[str]:
        prefix = f"cloudlet-{self.instance}"
        found = cgroups.exists_anywhere(prefix)
        mountinfo = Path("/proc/self/mountinfo").read_text()
        found += [ln for ln in mountinfo.splitlines() if str(self.state) in ln or prefix in ln]
        root = self.state / "runc"
        if root.exists():
            out = subprocess.run(
                ["runc", "--root", str(root), "list", "--format", "json"],
                capture_output=True,
                text=True,
            ).stdout
            found += [e["id"] for e in json.loads(out or "null") or []]
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if prefix in cmd:
                    found.append(f"process {pid}: {cmd!r}")
        sandboxes = self.state / "sandboxes"
        if sandboxes.exists():
            found += [str(p) for p in sandboxes.iterdir()]
        return found


@pytest.fixture
def env(tmp_path: Path):
    e = RuncEnv(tmp_path)
    subprocess.run(["ip", "netns", "add", e.netns], check=True)
    yield e
    subprocess.run(["ip", "netns", "delete", e.netns], check=False)


class TestRuncSuite(RuntimeSuite):
    @pytest.fixture
    async def kit(self, env: RuncEnv) -> AsyncIterator[Kit]:
        yield Kit(
            make_runtime=env.make_runtime,
            sandbox_spec=env.sandbox_spec,
            container_spec=env.container_spec,
            leaks=env.leaks,
        )


@pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy" fixture')
class TestRuncSuiteUvloop(TestRuncSuite):
    """The same suite on uvloop, the loop ``cloudlet up`` installs (its subprocess
    support differs from asyncio's, e.g. ``pass_fds``)."""

    @pytest.fixture(scope="class")
    @classmethod
    def event_loop_policy(cls):
        uvloop = pytest.importorskip("uvloop")
        return uvloop.EventLoopPolicy()

    async def test_runs_on_uvloop(self) -> None:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")


# --- runc specifics ---------------------------------------------------------


@pytest.fixture
async def rt(env: RuncEnv) -> AsyncIterator[RuncRuntime]:
    runtime = env.make_runtime()
    await runtime.start()
    yield runtime
    await runtime.cleanup_all()
    assert await env.leaks() == []


async def run_to_exit(
    rt: RuncRuntime, env: RuncEnv, script: str, sandbox: Handle | None = None, **kw
) -> tuple[int, str, str]:
    """Run ``sh -c script`` to completion: (exit code, reason, stdout+stderr text)."""
    sb = sandbox or await rt.run_sandbox(env.sandbox_spec(f"p{uuid.uuid4().hex[:6]}"))
    spec = env.container_spec("c", ["sh", "-c", script], **kw)
    c = await rt.create_container(sb, spec)
    await rt.start_container(c)
    st = await asyncio.wait_for(rt.wait_container(c), 60)
    assert spec.log_path is not None
    await asyncio.sleep(0)  # conmon has synced the log before writing the exit file
    text = "\n".join(msg for _, msg in read_log(spec.log_path))
    if sandbox is None:
        await rt.remove_sandbox(sb)
    assert st.exit_code is not None
    return st.exit_code, st.reason, text


async def test_oom_kill_is_reported_as_oomkilled(rt: RuncRuntime, env: RuncEnv) -> None:
    code, reason, _ = await run_to_exit(
        rt,
        env,
        "exec tail /dev/zero",  # buffers an endless line: grows until the OOM killer strikes
        resources=Resources(memory_limit_bytes=24 * 1024 * 1024),
    )
    assert (code, reason) == (137, "OOMKilled")


async def test_read_only_rootfs(rt: RuncRuntime, env: RuncEnv) -> None:
    script = (
        "touch /tmp/x 2>&1 && echo root-writable; touch /dev/shm/x && echo shm-writable; exit 0"
    )
    code, _, text = await run_to_exit(rt, env, script, security=Security(read_only_rootfs=True))
    assert "Read-only file system" in text and "root-writable" not in text
    assert "shm-writable" in text
    _, _, text = await run_to_exit(rt, env, script)
    assert "root-writable" in text


async def test_dropped_capability(rt: RuncRuntime, env: RuncEnv) -> None:
    script = "touch /tmp/f; chown 1000:1000 /tmp/f && echo chowned"
    code, _, text = await run_to_exit(
        rt, env, script, security=Security(capabilities_drop=["CHOWN"])
    )
    assert code != 0 and "Operation not permitted" in text
    code, _, text = await run_to_exit(rt, env, script)
    assert code == 0 and "chowned" in text
    # ALL dropped, one added back
    code, _, text = await run_to_exit(
        rt,
        env,
        "grep CapEff /proc/self/status",
        security=Security(capabilities_drop=["ALL"], capabilities_add=["CHOWN"]),
    )
    assert text.split()[-1] == "0000000000000001"


async def test_run_as_user(rt: RuncRuntime, env: RuncEnv) -> None:
    code, _, text = await run_to_exit(
        rt,
        env,
        "id -u; id -g; id -G",
        security=Security(uid=1000, gid=1000, supplemental_gids=[4242]),
    )
    assert code == 0
    uid, gid, groups = text.splitlines()
    assert (uid, gid) == ("1000", "1000")
    assert "4242" in groups.split()


async def test_cannot_see_host_processes(rt: RuncRuntime, env: RuncEnv) -> None:
    code, _, text = await run_to_exit(rt, env, "ps -o pid,comm; exit 0")
    rows = [line.split() for line in text.splitlines()[1:]]
    # only the shell (pid 1) and ps itself: no conmon, runc, python or host init
    assert code == 0 and sorted(comm for _, comm in rows) == ["ps", "sh"], rows
    assert ["1", "sh"] in rows


async def test_seccomp_runtime_default_blocks_unshare(rt: RuncRuntime, env: RuncEnv) -> None:
    # unshare(CLONE_NEWUSER) needs no capability: only seccomp stands in the way.
    script = "ip link show lo >/dev/null && echo socket-ok; unshare -U true && echo unshared"
    code, _, text = await run_to_exit(rt, env, script)
    assert code != 0 and "Operation not permitted" in text and "unshared" not in text
    assert "socket-ok" in text  # everyday syscalls (netlink socket) stay allowed
    code, _, text = await run_to_exit(rt, env, script, security=Security(seccomp="Unconfined"))
    assert code == 0 and "unshared" in text


async def test_seccomp_localhost_profile(rt: RuncRuntime, env: RuncEnv) -> None:
    profile = env.tmp / "deny-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
                ],
            }
        )
    )
    sec = Security(seccomp="Localhost", seccomp_localhost_profile=str(profile))
    code, _, text = await run_to_exit(rt, env, "mkdir /tmp/d", security=sec)
    assert code != 0 and "Permission denied" in text


async def test_masked_and_readonly_proc_paths(rt: RuncRuntime, env: RuncEnv) -> None:
    # /proc/timer_list has content on the host; masked it reads as /dev/null
    script = "wc -c < /proc/timer_list; echo 1 > /proc/sys/vm/drop_caches || echo sys-ro; exit 0"
    _, _, text = await run_to_exit(rt, env, script)
    assert text.splitlines()[0].strip() == "0" and "sys-ro" in text
    _, _, text = await run_to_exit(rt, env, script, security=Security(proc_mount="Unmasked"))
    assert int(text.splitlines()[0].strip()) > 0


def _status_line(key: str) -> str:
    return next(
        ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith(key)
    )


async def test_privileged_has_all_capabilities_and_devices(rt: RuncRuntime, env: RuncEnv) -> None:
    host = _status_line("CapBnd")
    script = "grep CapEff /proc/self/status; ls /dev | tr '\\n' ' '"
    _, _, text = await run_to_exit(rt, env, script, security=Security(privileged=True))
    assert text.splitlines()[0].split()[-1] == host.split()[-1]
    assert "loop0" in text.split() or len(text.split()) > 20


async def test_pod_shares_netns_ipc_uts_and_shm(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(env.sandbox_spec("shared"))
    ns_script = "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname"
    a = env.container_spec(
        "a", ["sh", "-c", f"{ns_script}; echo from-a > /dev/shm/note; exec sleep 1000"]
    )
    ca = await rt.create_container(sb, a)
    await rt.start_container(ca)
    assert a.log_path is not None

    async def a_ready() -> bool:
        return (
            len(read_log(a.log_path)) >= 4
            and (await rt.exec_sync(ca, ["test", "-f", "/dev/shm/note"], 30)).exit_code == 0
        )

    await poll(a_ready, what="container a")
    code, _, text_b = await run_to_exit(rt, env, f"{ns_script}; cat /dev/shm/note", sandbox=sb)
    lines_a = [m for _, m in read_log(a.log_path)][:4]
    lines_b = text_b.splitlines()
    netns_inode = os.stat(f"/run/netns/{env.netns}").st_ino
    assert lines_a[0] == lines_b[0] == f"net:[{netns_inode}]"
    assert lines_a[1] == lines_b[1] != os.readlink("/proc/self/ns/ipc")
    assert lines_a[2] == lines_b[2] != os.readlink("/proc/self/ns/uts")
    assert lines_a[3] == lines_b[3] == "shared"
    assert lines_b[4] == "from-a"
    await rt.remove_sandbox(sb)


async def test_mounts_and_etc_files(rt: RuncRuntime, env: RuncEnv) -> None:
    data = env.tmp / "vol"
    data.mkdir()
    (data / "f.txt").write_text("from-host")
    hosts = env.tmp / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.5 web\n")
    resolv = env.tmp / "resolv.conf"
    resolv.write_text("nameserver 10.96.0.10\n")
    sb = await rt.run_sandbox(
        env.sandbox_spec("mnt", etc_hosts=str(hosts), resolv_conf=str(resolv))
    )
    mounts = [
        Mount(container_path="/data", host_path=str(data), read_only=True),
        Mount(container_path="/scratch", type="tmpfs", size_bytes=1024 * 1024),
    ]
    script = (
        "cat /data/f.txt; echo; touch /data/x 2>/dev/null || echo data-ro; cat /etc/hostname; grep web /etc/hosts; "
        "cat /etc/resolv.conf; df -k /scratch | tail -1 | awk '{print $2}'"
    )
    code, _, text = await run_to_exit(rt, env, script, sandbox=sb, mounts=mounts)
    lines = text.splitlines()
    assert lines[0] == "from-host" and "data-ro" in text
    assert "mnt" in lines and "10.0.0.5 web" in lines and "nameserver 10.96.0.10" in lines
    assert lines[-1] == "1024"
    await rt.remove_sandbox(sb)


async def test_resource_limits_in_cgroups(rt: RuncRuntime, env: RuncEnv) -> None:
    spec = env.sandbox_spec(
        "res", resources=Resources(memory_limit_bytes=256 * 1024 * 1024, pids_limit=500)
    )
    sb = await rt.run_sandbox(spec)
    res = Resources(
        cpu_shares=512, cpu_quota_us=50_000, memory_limit_bytes=64 * 1024 * 1024, pids_limit=64
    )
    c = await rt.create_container(sb, env.container_spec("c", ["sleep", "1000"], resources=res))
    await rt.start_container(c)
    pod = spec.cgroup_parent
    ctr = f"{pod}/{c.id}"
    read = lambda ctl, rel, f: cgroups.controller_path(ctl, rel).joinpath(f).read_text().strip()  # noqa: E731
    assert read("memory", ctr, "memory.limit_in_bytes") == str(64 * 1024 * 1024)
    assert read("cpu", ctr, "cpu.shares") == "512"
    assert read("cpu", ctr, "cpu.cfs_quota_us") == "50000"
    assert read("pids", ctr, "pids.max") == "64"
    assert read("memory", pod, "memory.limit_in_bytes") == str(256 * 1024 * 1024)
    assert read("pids", pod, "pids.max") == "500"
    await rt.remove_sandbox(sb)
    assert cgroups.exists_anywhere(pod) == []


async def test_create_error_is_reported(rt: RuncRuntime, env: RuncEnv) -> None:
    from cloudlet.runtime.interface import SandboxError

    sb = await rt.run_sandbox(env.sandbox_spec("bad"))
    with pytest.raises(SandboxError) as info:
        await rt.create_container(sb, env.container_spec("c", ["/no/such/binary"]))
    assert info.value.reason == "CreateContainerError"
    assert "/no/such/binary" in str(info.value)
    assert await rt.list_containers(sb) == []
    await rt.remove_sandbox(sb)


async def test_no_leaks_after_20_sandboxes(rt: RuncRuntime, env: RuncEnv) -> None:
    async def one(i: int) -> None:
        sb = await rt.run_sandbox(env.sandbox_spec(f"leak{i}"))
        c = await rt.create_container(
            sb, env.container_spec("c", ["sh", "-c", "echo hi; sleep 1000"])
        )
        await rt.start_container(c)
        await rt.stop_container(c, 0)
        await rt.remove_sandbox(sb)

    for batch in range(4):
        await asyncio.gather(*(one(batch * 5 + i) for i in range(5)))
    assert await env.leaks() == []


_AGENT_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from cloudlet.runtime.interface import ContainerSpec, SandboxSpec
from cloudlet.runtime.oci import RuncRuntime

async def main():
    state, inst, netns, rootfs, log = sys.argv[1:6]
    rt = RuncRuntime(Path(state), inst)
    await rt.start()
    sb = await rt.run_sandbox(SandboxSpec(uid="agent-exit", namespace="default", name="survivor",
        hostname="survivor", netns_path=netns, cgroup_parent=f"cloudlet-{inst}/podagent-exit"))
    c = await rt.create_container(sb, ContainerSpec(name="app", rootfs=Path(rootfs), log_path=Path(log),
        args=["sh", "-c", "while :; do echo tick; sleep 0.2; done"]))
    await rt.start_container(c)
    print(json.dumps({"sandbox": sb.to_json(), "container": c.to_json()}))

asyncio.run(main())
"""


async def test_containers_survive_the_agent_process(rt: RuncRuntime, env: RuncEnv) -> None:
    """A separate process (the "agent") starts a pod and exits; this one recovers it."""
    log = env.logs / "survivor.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _AGENT_SCRIPT, str(env.state), env.instance,
        f"/run/netns/{env.netns}", str(env.rootfs()), str(log),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    handles = json.loads(out)
    c = Handle.from_json(handles["container"])

    async def ticking() -> bool:
        return sum(1 for _, m in read_log(log) if m == "tick") >= 3

    await poll(ticking, what="log output after the agent exited")
    [sb] = await rt.list_sandboxes()
    assert sb.id == handles["sandbox"]["id"] and sb.data["ready"] is True
    assert [h.id for h in await rt.list_containers(sb)] == [c.id]
    assert (await rt.container_status(c)).state == "running"
    await rt.stop_container(c, 0.5)
    st = await rt.container_status(c)
    assert (st.state, st.exit_code) == ("exited", 137)  # sh as pid 1 ignores SIGTERM
    await rt.remove_sandbox(sb)


async def test_tty_container_logs(rt: RuncRuntime, env: RuncEnv) -> None:
    code, _, text = await run_to_exit(rt, env, "tty; echo on-tty", tty=True)
    assert code == 0
    lines = [line.rstrip("\r") for line in text.splitlines()]
    assert lines[0].startswith("/dev/pts/") and "on-tty" in lines


@pytest.mark.parametrize("how", ["field", "annotation"])
async def test_stop_signal(rt: RuncRuntime, env: RuncEnv, how: str) -> None:
    """The image's StopSignal (ContainerSpec.stop_signal), or the annotation, replaces SIGTERM."""
    from cloudlet.runtime.oci import STOP_SIGNAL_ANNOTATION

    sb = await rt.run_sandbox(env.sandbox_spec("sig"))
    spec = env.container_spec(
        "c",
        ["sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.1; done"],
        **({"stop_signal": "SIGUSR1"} if how == "field" else {"annotations": {STOP_SIGNAL_ANNOTATION: "SIGUSR1"}}),
    )
    c = await rt.create_container(sb, spec)
    await rt.start_container(c)
    assert spec.log_path is not None

    async def ready() -> bool:
        return ("stdout", "ready") in read_log(spec.log_path)

    await poll(ready, what="ready")
    await rt.stop_container(c, 30)
    assert (await rt.container_status(c)).exit_code == 0
    assert ("stdout", "got-usr1") in read_log(spec.log_path)
    await rt.remove_sandbox(sb)


async def test_share_process_namespace(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(env.sandbox_spec("sharepid", share_process_namespace=True))
    code, _, text = await run_to_exit(rt, env, "ps -o pid,user,args; exit 0", sandbox=sb)
    rows = [line.split(None, 2) for line in text.splitlines()[1:]]
    # pid 1 is the sandbox's pause process, not this container's shell
    assert rows[0][0] == "1" and "while" in rows[0][2] and rows[0][1] != "root", rows
    await rt.remove_sandbox(sb)


async def test_host_network(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(env.sandbox_spec("hostnet", netns_path=None))
    code, _, text = await run_to_exit(rt, env, "readlink /proc/self/ns/net; hostname", sandbox=sb)
    lines = text.splitlines()
    assert lines[0] == os.readlink("/proc/self/ns/net")
    assert lines[1] == os.uname().nodename
    await rt.remove_sandbox(sb)


async def test_exec_errors(rt: RuncRuntime, env: RuncEnv) -> None:
    from cloudlet.runtime.interface import NotFound, SandboxError

    sb = await rt.run_sandbox(env.sandbox_spec("execerr"))
    ghost = Handle(
        handler="runc", id=f"cloudlet-{env.instance}-cdeadbeef0000", data={"sandbox": sb.id}
    )
    with pytest.raises(NotFound):
        await rt.exec(ghost, ["true"], tty=False, stdin=False)
    with pytest.raises(NotFound):
        await rt.container_status(ghost)
    c = await rt.create_container(sb, env.container_spec("c", ["true"]))
    await rt.start_container(c)
    await asyncio.wait_for(rt.wait_container(c), 60)
    with pytest.raises(SandboxError):
        await rt.exec(c, ["true"], tty=False, stdin=False)
    res = await rt.exec_sync(c, ["true"], 10)
    assert res.exit_code != 0 and res.stderr
    await rt.remove_sandbox(sb)


async def test_sandbox_error_cleans_up(rt: RuncRuntime, env: RuncEnv) -> None:
    from cloudlet.runtime.interface import SandboxError

    with pytest.raises(SandboxError) as info:
        await rt.run_sandbox(
            env.sandbox_spec("nonet", netns_path="/run/netns/cloudlet-test-missing")
        )
    assert info.value.reason == "CreatePodSandboxError"
    assert await rt.list_sandboxes() == []
    assert await env.leaks() == []


async def test_stdin_stays_open(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(env.sandbox_spec("stdin"))
    argv = ["sh", "-c", "cat; echo eof"]
    with_stdin = await rt.create_container(sb, env.container_spec("a", argv, stdin=True))
    without = await rt.create_container(sb, env.container_spec("b", argv))
    await rt.start_container(with_stdin)
    await rt.start_container(without)
    # the control sees EOF on /dev/null at once; the other keeps an open pipe
    assert (await asyncio.wait_for(rt.wait_container(without), 60)).exit_code == 0
    assert (await rt.container_status(with_stdin)).state == "running"
    await rt.remove_sandbox(sb)


async def test_sysctls(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(
        env.sandbox_spec("sysctl", sysctls={"net.ipv4.ip_unprivileged_port_start": "80"})
    )
    code, _, text = await run_to_exit(
        rt,
        env,
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced",
        sandbox=sb,
        security=Security(sysctls={"kernel.shm_rmid_forced": "1"}),
    )
    assert code == 0 and text.split() == ["80", "1"]
    await rt.remove_sandbox(sb)


async def test_partial_line_is_tagged_p(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(env.sandbox_spec("partial"))
    spec = env.container_spec("c", ["sh", "-c", "echo full; printf no-newline"])
    c = await rt.create_container(sb, spec)
    await rt.start_container(c)
    await asyncio.wait_for(rt.wait_container(c), 60)
    assert spec.log_path is not None
    tags = [line.split(" ", 3)[2:] for line in spec.log_path.read_text().splitlines()]
    assert tags == [["F", "full"], ["P", "no-newline"]]
    await rt.remove_sandbox(sb)


async def test_pause_reaps_orphans_in_shared_pid_namespace(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(env.sandbox_spec("reaper", share_process_namespace=True))
    c = await rt.create_container(
        sb, env.container_spec("c", ["sh", "-c", "(sleep 0.2 &); exec sleep 1000"])
    )
    await rt.start_container(c)

    async def no_zombies() -> bool:
        res = await rt.exec_sync(c, ["ps", "-o", "stat,comm"], 30)
        rows = [r.split() for r in res.stdout.decode().splitlines()[1:]]
        sleeps = [r for r in rows if r[-1] == "sleep"]
        # pause's own "sleep 3600" and the container's "sleep 1000"; a zombie
        # (stat Z) of the orphan would keep a third row forever
        return (
            res.exit_code == 0 and len(sleeps) == 2 and not any(r[0].startswith("Z") for r in rows)
        )

    # the orphaned sleep was adopted by the pause process (pid 1) and reaped
    await poll(no_zombies, what="orphan reaped")
    await rt.remove_sandbox(sb)


async def test_status_when_conmon_is_killed(rt: RuncRuntime, env: RuncEnv) -> None:
    sb = await rt.run_sandbox(env.sandbox_spec("lost"))
    c = await rt.create_container(sb, env.container_spec("c", ["sleep", "1000"]))
    await rt.start_container(c)
    conmon_pid = int(
        (env.state / "sandboxes" / sb.id / "containers" / c.id / "conmon.pid").read_text()
    )
    os.kill(conmon_pid, 9)
    # the process outlives its monitor and is still reported running
    assert (await rt.container_status(c)).state == "running"
    await asyncio.wait_for(rt.stop_container(c, 0), 8)  # does not wait for an exit file forever
    st = await rt.container_status(c)
    assert (st.state, st.exit_code, st.reason) == (
        "exited",
        255,
        "Error",
    ) and "conmon" in st.message
    assert (await rt.container_status(c)).finished_at == st.finished_at
    await rt.remove_sandbox(sb)


async def test_cancelled_create_leaves_nothing(rt: RuncRuntime, env: RuncEnv) -> None:
    """Cancelling create_container while conmon runs ``runc create`` leaves no container."""
    sb = await rt.run_sandbox(env.sandbox_spec("cancel"))

    async def conmon_started() -> bool:
        lines = await asyncio.to_thread(_cmdlines)
        return any(
            "conmon" in p.split("\0")[0] and f"cloudlet-{env.instance}-c" in p for p in lines
        )

    cancelled = False
    for _ in range(40):  # the create may win the race (often, on an idle machine); then try again
        task = asyncio.create_task(
            rt.create_container(sb, env.container_spec("c", ["sleep", "1000"]))
        )
        await poll(conmon_started, what="conmon running for the new container")
        if task.cancel():
            with pytest.raises(asyncio.CancelledError):
                await task
            cancelled = True
            break
        await rt.remove_container(await task)
    assert cancelled
    assert await rt.list_containers(sb) == []
    proc = await asyncio.create_subprocess_exec(
        "runc", "--root", str(env.state / "runc"), "list", "-q", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out.decode().split() == [sb.id]
    await rt.remove_sandbox(sb)


def _cmdlines() -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                pass
    return out
