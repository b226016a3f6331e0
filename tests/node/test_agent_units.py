"""The node agent's pure parts: argv/env resolution, back-off, atomic volume
writes, pod phase/status, node capacity, and probes against real local servers.

The gRPC health probe is checked against a minimal HTTP/2 responder written
here (no gRPC server library is installed on this machine); everything else
talks to real sockets, files and processes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from pathlib import Path

import pytest
from aiohttp import web

from cloudlet.node.backoff import Backoff, format_duration
from cloudlet.node.envvars import (
    ConfigError,
    container_resources,
    container_security,
    expand,
    make_args,
    resolve_env,
)
from cloudlet.node.podstatus import ContainerRecord, pod_phase, pod_status
from cloudlet.node.probes import ProbeTarget, ProbeWorker, grpc_health_check, run_probe
from cloudlet.node.registration import allocatable, host_capacity, node_conditions, parse_reserved
from cloudlet.node.volumes import PodVolumes, VolumeError, hosts_file, write_atomic
from cloudlet.runtime.interface import ContainerStatus, ExecResult, Handle


def _pod(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "ns1", "uid": "u-1", "labels": {"app": "x"},
                         "annotations": {"a": "b"}},
            "spec": {"nodeName": "vm", "serviceAccountName": "default",
                     "containers": [{"name": "c", "image": "busybox"}], **spec}}


# --- argv and env -------------------------------------------------------------------


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "1", "B": "two"}.get
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("a$$b", env) == "a$b"
    assert expand("$(A", env) == "$(A"
    assert expand("$A", env) == "$A"


def test_args_precedence() -> None:
    ep, cmd = ["/entry"], ["default-arg"]
    assert make_args({}, ep, cmd, []) == ["/entry", "default-arg"]
    assert make_args({"args": ["x"]}, ep, cmd, []) == ["/entry", "x"]
    assert make_args({"command": ["/bin/sh"]}, ep, cmd, []) == ["/bin/sh"]
    assert make_args({"command": ["echo"], "args": ["$(GREETING)", "$(NOPE)"]}, ep, cmd,
                     [("GREETING", "hi")]) == ["echo", "hi", "$(NOPE)"]


def test_env_resolution_order_and_sources() -> None:
    cms = {("ns1", "cfg"): {"data": {"color": "blue", "size": "L"}}}
    secs = {("ns1", "sec"): {"data": {"pw": base64.b64encode(b"s3cret").decode()}}}
    c = {
        "name": "c",
        "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}],
        "env": [
            {"name": "FIRST", "value": "one"},
            {"name": "SECOND", "value": "$(FIRST)-two"},
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "CPUM", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
        ],
    }
    pod = _pod(containers=[c])
    env = dict(resolve_env(pod, c, image_env=["PATH=/bin", "FIRST=image"], configmaps=lambda n, m: cms.get((n, m)),
                           secrets=lambda n, m: secs.get((n, m)), pod_ip="10.1.0.5", host_ip="10.1.0.1",
                           allocatable={"cpu": "2", "memory": "1Gi"}))
    assert env["PATH"] == "/bin"
    assert env["FIRST"] == "one" and env["SECOND"] == "one-two"
    assert env["CM_color"] == "blue" and env["CM_size"] == "L"
    assert env["COLOR"] == "blue" and env["PW"] == "s3cret" and "OPT" not in env
    assert (env["POD"], env["NS"], env["UID"], env["APP"]) == ("web", "ns1", "u-1", "x")
    assert (env["IP"], env["HOST"], env["NODE"], env["SA"]) == ("10.1.0.5", "10.1.0.1", "vm", "default")
    assert (env["MEM"], env["CPU"], env["CPUM"]) == ("64", "1", "250")


def test_env_missing_required_sources_is_a_config_error() -> None:
    c = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]}
    with pytest.raises(ConfigError, match='configmap "gone" not found'):
        resolve_env(_pod(), c, image_env=[], configmaps=lambda n, m: None, secrets=lambda n, m: None,
                    pod_ip="", host_ip="", allocatable={})
    c = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    with pytest.raises(ConfigError, match="couldn't find key k in Secret ns1/s"):
        resolve_env(_pod(), c, image_env=[], configmaps=lambda n, m: None, secrets=lambda n, m: {"data": {}},
                    pod_ip="", host_ip="", allocatable={})


def test_resources_conversion() -> None:
    r = container_resources({"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "128Mi"}}})
    assert (r.cpu_shares, r.cpu_quota_us, r.memory_limit_bytes) == (512, 100_000, 128 * 1024 * 1024)
    assert container_resources({}).cpu_shares == 2


def test_run_as_non_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    pod = _pod(securityContext={"runAsNonRoot": True})
    with pytest.raises(ConfigError, match="container has runAsNonRoot and image will run as root"):
        container_security(pod, {"name": "c"}, "", tmp_path)
    sec = container_security(pod, {"name": "c"}, "app", tmp_path)
    assert (sec.uid, sec.gid) == (1000, 1000)
    sec = container_security(pod, {"name": "c", "securityContext": {"runAsUser": 7, "capabilities": {"add": ["CAP_NET_ADMIN"]}}},
                             "", tmp_path)
    assert sec.uid == 7 and sec.capabilities_add == ["NET_ADMIN"]
    with pytest.raises(ConfigError, match="non-numeric user"):
        container_security(pod, {"name": "c"}, "ghost", tmp_path)


# --- back-off -----------------------------------------------------------------------------


def test_crash_backoff_doubles_caps_and_resets() -> None:
    now = [1000.0]
    b = Backoff(clock=lambda: now[0])
    assert not b.in_backoff_since("k", 1000.0)
    assert b.next("k", 1000.0) == 10
    assert b.in_backoff_since("k", 1000.0)
    now[0] = 1011.0
    assert not b.in_backoff_since("k", 1000.0)
    delays = [b.next("k", 1011.0 + i) for i in range(8)]
    assert delays == [20, 40, 80, 160, 300, 300, 300, 300]
    # ran for more than 10 minutes since the last update: back to 10 s
    assert b.next("k", 1011.0 + 8 + 601) == 10
    assert [format_duration(s) for s in (10, 160, 300)] == ["10s", "2m40s", "5m0s"]


# --- volumes --------------------------------------------------------------------------------


def test_atomic_writer_swaps_data_symlink(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert os.readlink(target / "..data").startswith("..")
    assert (target / "a").read_text() == "1" and os.readlink(target / "a") == "..data/a"
    assert (target / "dir" / "b").read_text() == "2"
    assert oct((target / "dir" / "b").stat().st_mode & 0o777) == "0o600"
    first = os.readlink(target / "..data")
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})  # unchanged
    assert write_atomic(target, {"a": (b"new", 0o644)})
    assert (target / "a").read_text() == "new"
    assert not (target / "dir").exists() and not (target / first).exists()
    assert sorted(p for p in os.listdir(target) if not p.startswith("..")) == ["a"]


async def test_pod_volumes_configmap_secret_downward_and_subpath(tmp_path: Path) -> None:
    cm = {"data": {"k1": "v1", "k2": "v2"}}
    sec = {"data": {"pw": base64.b64encode(b"hunter2").decode()}}
    pod = _pod(volumes=[
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "k1", "path": "sub/one"}]}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
        {"name": "opt", "secret": {"secretName": "missing", "optional": True}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                  {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "host", "hostPath": {"path": str(tmp_path / "made"), "type": "DirectoryOrCreate"}},
    ])
    vols = PodVolumes(tmp_path / "pod", pod, instance="t", configmaps=lambda n, m: cm if m == "cfg" else None,
                      secrets=lambda n, m: sec if m == "sec" else None, allocatable={"memory": "1Gi"})
    await vols.setup()
    base = tmp_path / "pod" / "volumes"
    assert (base / "kubernetes.io~configmap" / "cfg" / "sub" / "one").read_text() == "v1"
    pw = base / "kubernetes.io~secret" / "sec" / "pw"
    assert pw.read_bytes() == b"hunter2" and (pw.stat().st_mode & 0o777) == 0o400
    assert (base / "kubernetes.io~downward-api" / "info" / "labels").read_text() == 'app="x"'
    assert (tmp_path / "made").is_dir()
    mounts = vols.mounts_for({"volumeMounts": [{"name": "scratch", "mountPath": "/data", "subPath": "a/b"},
                                               {"name": "cfg", "mountPath": "/cfg"}]}, [])
    assert mounts[0].host_path.endswith("empty-dir/scratch/a/b")
    assert await asyncio.to_thread(os.path.isdir, mounts[0].host_path)
    assert mounts[1].read_only
    with pytest.raises(VolumeError):
        vols.mounts_for({"volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": "../../etc"}]}, [])
    cm["data"]["k1"] = "changed"
    assert await vols.refresh()
    assert (base / "kubernetes.io~configmap" / "cfg" / "sub" / "one").read_text() == "changed"
    bad = PodVolumes(tmp_path / "pod2", _pod(volumes=[{"name": "h", "hostPath": {"path": str(tmp_path / "nope"), "type": "File"}}]),
                     instance="t", configmaps=lambda n, m: None, secrets=lambda n, m: None, allocatable={})
    with pytest.raises(VolumeError, match="is not a file"):
        await bad.setup()
    missing = PodVolumes(tmp_path / "pod3", _pod(volumes=[{"name": "c", "configMap": {"name": "gone"}}]),
                         instance="t", configmaps=lambda n, m: None, secrets=lambda n, m: None, allocatable={})
    with pytest.raises(VolumeError, match='configmap "gone" not found'):
        await missing.setup()


def test_hosts_file() -> None:
    text = hosts_file(_pod(hostAliases=[{"ip": "1.2.3.4", "hostnames": ["foo", "bar"]}]), "10.0.0.9", "web")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.0.0.9\tweb\n" in text and "1.2.3.4\tfoo\tbar" in text


# --- status -------------------------------------------------------------------------------


def _rec(name: str, state: str, code: int | None = None, *, init: bool = False, ready: bool = True) -> ContainerRecord:
    r = ContainerRecord(name, init=init, handle=Handle("runc", f"id-{name}"),
                        status=ContainerStatus(id=f"id-{name}", state=state, exit_code=code,  # type: ignore[arg-type]
                                               started_at=1.0, finished_at=2.0 if state == "exited" else None))
    r.ready = ready
    r.started = True
    return r


def test_pod_phase_and_conditions() -> None:
    pod = _pod(restartPolicy="Never", containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "x"}])
    st = pod_status(pod, [], [_rec("a", "exited", 0), _rec("b", "exited", 1)], sandbox_ready=False,
                    pod_ips=["10.0.0.2"], host_ip="10.0.0.1")
    assert st["phase"] == "Failed"
    assert st["containerStatuses"][1]["state"]["terminated"]["reason"] == "Error"
    assert st["containerStatuses"][0]["containerID"] == "runc://id-a"
    st = pod_status(pod, [], [_rec("a", "running"), _rec("b", "running", ready=False)], sandbox_ready=True,
                    pod_ips=["10.0.0.2"], host_ip="10.0.0.1")
    conds = {c["type"]: c for c in st["conditions"]}
    assert st["phase"] == "Running" and conds["Ready"]["status"] == "False"
    assert conds["Ready"]["message"] == "containers with unready status: [b]"
    assert conds["PodReadyToStartContainers"]["status"] == "True" and st["podIP"] == "10.0.0.2"
    waiting = _rec("a", "exited", 2)
    waiting.waiting_reason = "CrashLoopBackOff"
    always = _pod(containers=[{"name": "a", "image": "x"}])
    st = pod_status(always, [], [waiting], sandbox_ready=True, pod_ips=[], host_ip="h")
    cs = st["containerStatuses"][0]
    assert st["phase"] == "Running" and cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 2
    inits = [_rec("i", "running", init=True)]
    st = pod_status(_pod(initContainers=[{"name": "i", "image": "x"}]), inits, [ContainerRecord("c")],
                    sandbox_ready=True, pod_ips=[], host_ip="h")
    conds = {c["type"]: c for c in st["conditions"]}
    assert st["phase"] == "Pending" and conds["Initialized"]["reason"] == "ContainersNotInitialized"
    assert pod_phase(_pod(restartPolicy="OnFailure"), [], [{"state": {"terminated": {"exitCode": 0}}}]) == "Succeeded"


# --- node -------------------------------------------------------------------------------------


def test_capacity_reserve_and_conditions(tmp_path: Path) -> None:
    cap = host_capacity(tmp_path)
    assert int(cap["cpu"]) >= 1 and cap["pods"] == "110" and cap["memory"].endswith("Ki")
    reserved = parse_reserved("cpu=500m,memory=1Gi")
    alloc = allocatable({"cpu": "2", "memory": "4Gi", "pods": "110"}, reserved)
    assert alloc == {"cpu": "1500m", "memory": f"{3 * 1024 * 1024}Ki", "pods": "110"}
    with pytest.raises(ValueError):
        parse_reserved("gpu=1")
    conds = node_conditions({"memory": False, "disk": True, "pid": False}, True, "", "now", [])
    by = {c["type"]: c for c in conds}
    assert by["Ready"]["reason"] == "KubeletReady" and by["Ready"]["message"] == "kubelet is posting ready status"
    assert by["DiskPressure"]["status"] == "True" and by["DiskPressure"]["reason"] == "KubeletHasDiskPressure"
    assert by["MemoryPressure"]["reason"] == "KubeletHasSufficientMemory"


# --- probes -------------------------------------------------------------------------------------


@pytest.fixture
async def http_server():  # type: ignore[no-untyped-def]
    seen: list[dict[str, str]] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="fine")

    async def bad(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/bad", bad)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, seen
    await runner.cleanup()


async def test_http_tcp_exec_probes(http_server) -> None:  # type: ignore[no-untyped-def]
    port, seen = http_server
    target = ProbeTarget("127.0.0.1", ports={"web": port})
    ok, _ = await run_probe({"httpGet": {"path": "/ok", "port": "web",
                                         "httpHeaders": [{"name": "X-Probe", "value": "1"}]}}, target)
    assert ok and seen[-1]["X-Probe"] == "1" and seen[-1]["User-Agent"].startswith("kube-probe/")
    ok, msg = await run_probe({"httpGet": {"path": "/bad", "port": port}}, target)
    assert not ok and msg == "HTTP probe failed with statuscode: 503"
    assert (await run_probe({"tcpSocket": {"port": port}}, target))[0]
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    ok, msg = await run_probe({"tcpSocket": {"port": closed}}, target)
    assert not ok and msg == f"dial tcp 127.0.0.1:{closed}: connect: connection refused"

    async def exec_sync(argv: list[str], limit: float) -> ExecResult:
        p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await p.communicate()
        return ExecResult(p.returncode or 0, out, err)

    target.exec_sync = exec_sync
    assert await run_probe({"exec": {"command": ["true"]}}, target) == (True, "")
    ok, msg = await run_probe({"exec": {"command": ["sh", "-c", "echo broken; exit 1"]}}, target)
    assert not ok and msg.strip() == "broken"


async def test_lifecycle_hooks(http_server) -> None:  # type: ignore[no-untyped-def]
    from cloudlet.node.hooks import describe, run_hook

    port, seen = http_server

    async def exec_sync(argv: list[str], limit: float) -> ExecResult:
        return ExecResult(0 if argv == ["ok"] else 2, b"", b"boom")

    target = ProbeTarget("127.0.0.1", exec_sync=exec_sync)
    assert await run_hook({"exec": {"command": ["ok"]}}, target, 5) is None
    assert await run_hook({"exec": {"command": ["bad"]}}, target, 5) == "command 'bad' exited with 2: boom"
    assert await run_hook({"httpGet": {"path": "/ok", "port": port}}, target, 5) is None
    assert seen
    assert await run_hook({"httpGet": {"path": "/bad", "port": port}}, target, 5) == \
        "HTTP probe failed with statuscode: 503"
    assert await run_hook({"sleep": {"seconds": 0}}, target, 5) is None
    assert describe({"exec": {"command": ["a", "b"]}}) == "Exec lifecycle hook ([a b])"


async def test_probe_worker_thresholds() -> None:
    results: list[tuple[str, bool]] = []
    failures: list[str] = []
    outcomes = iter([False, False, True, True, False, False, False])

    async def exec_sync(argv: list[str], limit: float) -> ExecResult:
        return ExecResult(0 if next(outcomes, False) else 1, b"", b"nope")

    import time

    w = ProbeWorker("readiness", {"exec": {"command": ["x"]}, "periodSeconds": 0.01, "successThreshold": 2,
                                  "failureThreshold": 3}, ProbeTarget("127.0.0.1", exec_sync=exec_sync),
                    started_at=time.time(), on_result=lambda k, ok, _o: results.append((k, ok)),
                    on_failure=lambda k, o: failures.append(o))
    w.start()
    for _ in range(200):
        if len(results) >= 2:
            break
        await asyncio.sleep(0.01)
    w.stop()
    assert results[:2] == [("readiness", True), ("readiness", False)]
    assert failures and failures[0] == "nope"


async def _h2_health_server(status: int) -> tuple[asyncio.AbstractServer, int]:
    """A stand-in gRPC server: reads the client's frames and answers one HealthCheckResponse."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(24)
        end = False
        while not end:
            head = await reader.readexactly(9)
            length = int.from_bytes(head[:3], "big")
            await reader.readexactly(length)
            end = head[3] == 0 and bool(head[4] & 1)

        def frame(t: int, flags: int, stream: int, payload: bytes) -> bytes:
            return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", stream) + payload

        body = bytes([0x08, status])
        writer.write(frame(4, 0, 0, b"") + frame(1, 4, 1, b"\x88")  # :status 200 (indexed)
                     + frame(0, 0, 1, b"\x00" + struct.pack(">I", len(body)) + body)
                     + frame(1, 5, 1, b"\x00\x0bgrpc-status\x010"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_grpc_health_probe() -> None:
    server, port = await _h2_health_server(1)
    async with server:
        assert await grpc_health_check("127.0.0.1", port, "", 2) == (True, "")
    server, port = await _h2_health_server(2)
    async with server:
        ok, msg = await grpc_health_check("127.0.0.1", port, "svc", 2)
        assert not ok and msg == 'service unhealthy (responded with "NOT_SERVING")'
