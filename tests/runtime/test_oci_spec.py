"""config.json generation and the RuntimeDefault seccomp profile (pure functions).

The end-to-end effect of each setting is checked against real runc in
test_runc.py; these pin the generated spec's shape where runc would not
complain about a mistake (a missing masked path, a capability too many).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudlet.runtime.interface import (
    ContainerSpec,
    Mount,
    Resources,
    SandboxError,
    SandboxSpec,
    Security,
)
from cloudlet.runtime.oci import seccomp
from cloudlet.runtime.oci.spec import (
    DEFAULT_CAPABILITIES,
    MASKED_PATHS,
    READONLY_PATHS,
    container_config,
    host_capabilities,
    pause_config,
    resolve_capabilities,
)


def sandbox(**kw) -> SandboxSpec:
    base = dict(uid="u", namespace="ns", name="web", hostname="web-0", netns_path="/run/netns/x")
    base.update(kw)
    return SandboxSpec(**base)


def config(sec: Security | None = None, sb: SandboxSpec | None = None, **kw):
    spec = ContainerSpec(name="c", args=["sh"], rootfs=Path("/r"), security=sec or Security(), **kw)
    return container_config(
        sb or sandbox(),
        spec,
        pause_pid=42,
        cgroups_path="/cloudlet-i/podu/c1",
        shm_path="/s/shm",
        hostname_file="/s/hostname",
        memsw=True,
    )


def test_default_capabilities_add_drop() -> None:
    assert resolve_capabilities(Security()) == [
        c for c in DEFAULT_CAPABILITIES if c in host_capabilities()
    ]
    caps = resolve_capabilities(
        Security(capabilities_drop=["CHOWN"], capabilities_add=["NET_ADMIN"])
    )
    assert "CHOWN" not in caps and "NET_ADMIN" in caps
    assert resolve_capabilities(
        Security(capabilities_drop=["ALL"], capabilities_add=["CAP_KILL"])
    ) == ["KILL"]
    assert resolve_capabilities(Security(privileged=True)) == host_capabilities()
    with pytest.raises(SandboxError):
        resolve_capabilities(Security(capabilities_add=["NOT_A_CAP"]))


def test_namespaces_join_the_pause_container() -> None:
    ns = {n["type"]: n.get("path") for n in config()["linux"]["namespaces"]}
    assert ns == {
        "mount": None,
        "pid": None,
        "ipc": "/proc/42/ns/ipc",
        "network": "/run/netns/x",
        "uts": "/proc/42/ns/uts",
    }
    shared = {
        n["type"]: n.get("path")
        for n in config(sb=sandbox(share_process_namespace=True))["linux"]["namespaces"]
    }
    assert shared["pid"] == "/proc/42/ns/pid"
    host = {
        n["type"]
        for n in config(sb=sandbox(netns_path=None, host_pid=True, host_ipc=True))["linux"][
            "namespaces"
        ]
    }
    assert host == {"mount"}


def test_security_fields() -> None:
    cfg = config(
        Security(
            uid=1000, gid=2000, supplemental_gids=[5], read_only_rootfs=True, no_new_privileges=True
        )
    )
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 2000, "additionalGids": [5]}
    assert cfg["root"]["readonly"] is True and cfg["process"]["noNewPrivileges"] is True
    assert (
        cfg["linux"]["maskedPaths"] == MASKED_PATHS
        and cfg["linux"]["readonlyPaths"] == READONLY_PATHS
    )
    sysfs = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert "ro" in sysfs["options"]
    assert cfg["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"

    priv = config(Security(privileged=True))
    assert priv["linux"]["maskedPaths"] == [] and "seccomp" not in priv["linux"]
    assert priv["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert any(d["path"] == "/dev/null" for d in priv["linux"]["devices"])
    assert config(Security(proc_mount="Unmasked"))["linux"]["maskedPaths"] == []
    assert "seccomp" not in config(Security(seccomp="Unconfined"))["linux"]


def test_resources_mounts_env() -> None:
    res = Resources(cpu_shares=102, cpu_quota_us=50_000, memory_limit_bytes=1 << 26, pids_limit=10)
    mounts = [
        Mount(container_path="/data", host_path="/h", read_only=True, propagation="rslave"),
        Mount(container_path="/t", type="tmpfs", size_bytes=4096),
    ]
    cfg = config(resources=res, mounts=mounts, env=[("A", "1")], tty=True)
    r = cfg["linux"]["resources"]
    assert r["memory"] == {"limit": 1 << 26, "swap": 1 << 26}
    assert r["cpu"] == {"shares": 102, "quota": 50_000, "period": 100_000}
    assert r["pids"] == {"limit": 10}
    by_dest = {m["destination"]: m for m in cfg["mounts"]}
    assert by_dest["/data"]["options"] == ["rbind", "rslave", "ro"]
    assert "size=4096" in by_dest["/t"]["options"]
    assert by_dest["/dev/shm"]["source"] == "/s/shm"
    assert by_dest["/etc/hostname"]["source"] == "/s/hostname"
    assert cfg["linux"]["rootfsPropagation"] == "rslave"
    env = cfg["process"]["env"]
    assert (
        env[0].startswith("PATH=")
        and "A=1" in env
        and "HOSTNAME=web-0" in env
        and "TERM=xterm" in env
    )
    assert cfg["process"]["terminal"] is True


def test_pause_config() -> None:
    cfg = pause_config(sandbox(), rootfs=Path("/p"), cgroups_path="/x/pod/p", shm_path="/s/shm")
    assert cfg["hostname"] == "web-0"
    assert cfg["root"] == {"path": "/p", "readonly": True}
    assert cfg["process"]["capabilities"]["bounding"] == []
    types = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert types == {"mount", "pid", "ipc", "network", "uts"}
    assert "hostname" not in pause_config(
        sandbox(netns_path=None), rootfs=Path("/p"), cgroups_path="/x", shm_path=None
    )


def _allowed(profile: dict) -> set[str]:
    return {
        n
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for n in rule["names"]
    }


def test_seccomp_profile_follows_capabilities() -> None:
    plain = seccomp.default_profile(DEFAULT_CAPABILITIES)
    assert plain["defaultAction"] == "SCMP_ACT_ERRNO" and plain["defaultErrnoRet"] == 1
    allowed = _allowed(plain)
    assert {"read", "write", "openat", "execve", "futex", "epoll_wait", "chroot"} <= allowed
    assert not {"mount", "unshare", "setns", "reboot", "init_module", "keyctl", "bpf"} & allowed
    clone = next(r for r in plain["syscalls"] if r["names"] == ["clone"])
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    assert any(r["names"] == ["clone3"] and r.get("errnoRet") == 38 for r in plain["syscalls"])

    admin = seccomp.default_profile([*DEFAULT_CAPABILITIES, "SYS_ADMIN"])
    assert {"mount", "unshare", "setns", "clone", "clone3"} <= _allowed(admin)
    assert not any(
        r["names"] == ["clone3"] and r["action"] != "SCMP_ACT_ALLOW" for r in admin["syscalls"]
    )
    assert "chroot" not in _allowed(seccomp.default_profile([]))
