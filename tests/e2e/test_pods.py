"""Real pods on a real node: `cloudlet up` with its node agent, runc, CNI and kubectl.

One `cloudlet up` (node agent on, its own pod CIDR) serves the module. Most
workloads are applied together at the start (so their waits overlap) and
each test then checks one behaviour: echo + ``kubectl logs``, crash loops
(``CrashLoopBackOff``, growing ``restartCount``), OOM kills, liveness
restarts, readiness gating, emptyDir/configMap/secret volumes (a configMap
update reaching the running container), two containers sharing localhost,
pod-to-pod traffic, a Deployment whose pods are real processes, ``kubectl
exec``/``port-forward``, and a leak check after creating and deleting 20
pods. The module's teardown stops the server, removes what the agent left
(pods keep running across agent restarts by design) and asserts nothing of
the instance is left on the host.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root (runc, netns, cgroups)")

NODE = "cloudlet-e2e-node"


# --- host state of one instance ---------------------------------------------------------


def instance_of(data_dir: Path) -> str:
    from cloudlet.node.agent import instance_id

    return instance_id(data_dir)


def host_leftovers(data_dir: Path, *, include_bridge: bool = False) -> dict[str, list[str]]:
    """Everything of the instance still on the host: netns, veths on its bridge,
    mounts under the data dir, pod cgroups, runc containers, conmon processes."""
    from cloudlet.network.cni import bridge_name

    inst = instance_of(data_dir)
    prefix = f"cloudlet-{inst}"
    out: dict[str, list[str]] = {}
    try:
        out["netns"] = sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix + "-"))
    except FileNotFoundError:
        out["netns"] = []
    bridge = bridge_name(inst)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    out["veth"] = [ln.split(":")[1].strip() for ln in links.splitlines() if f"master {bridge} " in ln]
    if include_bridge:
        out["bridge"] = [bridge] if re.search(rf"\d+: {bridge}[:@]", links) else []
    root = str(data_dir.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        out["mounts"] = [ln.split()[4] for ln in f if ln.split()[4].startswith(root)]
    cg: list[str] = []
    for hier in Path("/sys/fs/cgroup").iterdir():
        base = hier / prefix
        if base.is_dir():
            cg += [str(p) for p in base.rglob("pod*") if p.is_dir()]
    out["cgroups"] = cg
    runc_root = data_dir / "runtime" / "runc"
    if runc_root.is_dir():
        r = subprocess.run(["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True)
        out["runc"] = [x for x in r.stdout.split() if x]
    else:
        out["runc"] = []
    procs = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"conmon") and any(a.startswith(prefix.encode() + b"-") for a in argv):
            procs.append(pid)
    out["conmon"] = procs
    return {k: v for k, v in out.items() if v}


def pod_cgroup_pids(uid: str) -> list[int]:
    """Host pids whose cgroup names the pod (``.../pod<uid>/...``)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if f"pod{uid}" in text:
            pids.append(int(pid))
    return pids


def start_node(data_dir: Path, *extra: str) -> CloudletProcess:
    from cloudlet.network.cni import pick_free_cidr

    proc = CloudletProcess(data_dir, node=True,
                           extra_args=["--pod-cidr", pick_free_cidr(), "--node-name", NODE,
                                       "--system-reserved", "cpu=100m,memory=128Mi", *extra])
    proc.start(timeout=60)
    return proc


def stop_and_check_clean(proc: CloudletProcess) -> None:
    proc.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=true", "--timeout=90s",
                 check=False, timeout=120)
    proc.stop()
    proc.cleanup_node()
    left = host_leftovers(proc.data_dir, include_bridge=True)
    assert left == {}, f"left on the host: {left}"


# --- fixtures --------------------------------------------------------------------------------


def _pod(name: str, script: str, *, restart: str = "Always", labels: dict[str, str] | None = None,
         **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"suite": "pods"}},
        "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                 "command": ["sh", "-c", script], **container}]},
    }


WORKLOADS: list[dict[str, Any]] = [
    _pod("badimage", "true", image="127.0.0.1:9/missing/image:1"),
    {**_pod("hostnet", "echo on the host network", restart="Never"),
     "spec": {**_pod("hostnet", "echo on the host network", restart="Never")["spec"], "hostNetwork": True}},
    {**_pod("deadline", "sleep 600"), "spec": {**_pod("deadline", "sleep 600")["spec"], "activeDeadlineSeconds": 2}},
    _pod("nonroot", "true", securityContext={"runAsNonRoot": True}),
    _pod("limits", "sleep 600", resources={"requests": {"cpu": "250m", "memory": "32Mi"},
                                           "limits": {"cpu": "500m", "memory": "64Mi"}}),
    {**_pod("norc", "true"), "spec": {**_pod("norc", "true")["spec"], "runtimeClassName": "nope"}},
    _pod("echo", "echo hello from $HOSTNAME; echo line two >&2", restart="Never"),
    _pod("crash", "echo crashing; exit 3"),
    _pod("etc", "cat /etc/hosts; echo; hostname", restart="Never"),
    _pod("startup", "sleep 3; touch /tmp/up; sleep 600",
         startupProbe={"exec": {"command": ["test", "-f", "/tmp/up"]}, "periodSeconds": 1, "failureThreshold": 30},
         livenessProbe={"exec": {"command": ["test", "-f", "/tmp/up"]}, "periodSeconds": 1, "failureThreshold": 1}),
    _pod("oom", "dd if=/dev/zero of=/dev/null bs=200M count=1", restart="Never",
         resources={"limits": {"memory": "32Mi"}}),
    _pod("liveness", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 600",
         livenessProbe={"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}),
    _pod("readiness", "sleep 4; touch /tmp/ready; sleep 600",
         readinessProbe={"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}),
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"color": "blue"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}},
    {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "volumes"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "cfg", "configMap": {"name": "settings"}},
                        {"name": "sec", "secret": {"secretName": "creds"}},
                        {"name": "scratch", "emptyDir": {}},
                        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}],
            "initContainers": [{"name": "init", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                "command": ["sh", "-c", "echo from-init > /scratch/init.txt"],
                                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
            "containers": [{
                "name": "main", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}}],
                "command": ["sh", "-c", "echo env=$COLOR ip=$POD_IP; cat /scratch/init.txt; echo x > /mem/f; "
                                        "df -k /mem | tail -1; cat /sec/password; echo; "
                                        "touch /ro/x 2>/dev/null && echo ro=writable || echo ro=readonly; "
                                        "echo via-subpath > /sub/f; cat /scratch/deep/dir/f; "
                                        "while true; do echo color=$(cat /cfg/color); sleep 0.5; done"],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"},
                                 {"name": "scratch", "mountPath": "/scratch"}, {"name": "mem", "mountPath": "/mem"},
                                 {"name": "scratch", "mountPath": "/ro", "readOnly": True},
                                 {"name": "scratch", "mountPath": "/sub", "subPath": "deep/dir"}],
            }],
        },
    },
    {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sidecars"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "server", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", "mkdir -p /www && echo shared-localhost > /www/index.html && "
                                         "exec httpd -f -p 8080 -h /www"],
                 "ports": [{"containerPort": 8080, "name": "http"}],
                 "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1}},
                {"name": "client", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", "while true; do wget -q -O- http://127.0.0.1:8080/index.html; sleep 0.5; done"]},
            ],
        },
    },
]


LEAK_PODS = [_pod(f"leak-{i}", "sleep 3600", labels={"leak": "yes"}) for i in range(20)]


def _hooks_pod(marker_dir: str) -> dict[str, Any]:
    p = _pod("hooks", "trap 'echo got TERM; exit 0' TERM; until [ -f /tmp/started ]; do sleep 0.1; done; cat /tmp/started; "
             "while true; do sleep 0.2; done",
             lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo post-start-ran > /tmp/started"]}},
                        "preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop-ran > /marker/prestop"]}}},
             volumeMounts=[{"name": "marker", "mountPath": "/marker"}])
    p["spec"]["terminationGracePeriodSeconds"] = 20
    p["spec"]["volumes"] = [{"name": "marker", "hostPath": {"path": marker_dir, "type": "DirectoryOrCreate"}}]
    return p


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = start_node(tmp_path_factory.mktemp("node"))
    try:
        wait_until(lambda: _ready(proc), timeout=30, interval=0.2, what="node Ready")
        items = [*WORKLOADS, _hooks_pod(str(proc.data_dir / "marker")), *LEAK_PODS]
        proc.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        yield proc
    finally:
        stop_and_check_clean(proc)


def _ready(proc: CloudletProcess) -> bool:
    r = proc.kubectl("get", "node", NODE, "-o", "json", check=False)
    if r.returncode != 0:
        return False
    conds = {c["type"]: c for c in json.loads(r.stdout)["status"]["conditions"]}
    return conds["Ready"]["status"] == "True"


def get(proc: CloudletProcess, kind: str, name: str, ns: str = "default") -> dict[str, Any]:
    return json.loads(proc.kubectl("get", kind, name, "-n", ns, "-o", "json").stdout)


def status_of(proc: CloudletProcess, pod: str) -> dict[str, Any]:
    return get(proc, "pod", pod).get("status") or {}


def cstatus(proc: CloudletProcess, pod: str, container: str | None = None) -> dict[str, Any]:
    for cs in status_of(proc, pod).get("containerStatuses") or ():
        if container is None or cs["name"] == container:
            return cs
    return {}


def events_for(proc: CloudletProcess, pod: str) -> list[dict[str, Any]]:
    out = proc.kubectl("get", "events", "--field-selector", f"involvedObject.name={pod}", "-o", "json")
    return json.loads(out.stdout)["items"]


def logs(proc: CloudletProcess, *args: str) -> str:
    r = proc.kubectl("logs", *args, check=False)
    return r.stdout if r.returncode == 0 else ""


# --- tests -------------------------------------------------------------------------------------


def test_node_registered_with_host_facts(node: CloudletProcess) -> None:
    n = get(node, "node", NODE, "")
    st = n["status"]
    assert int(st["capacity"]["cpu"]) == len(os.sched_getaffinity(0))
    assert st["capacity"]["pods"] == "110"
    cap_milli = int(st["capacity"]["cpu"]) * 1000
    assert st["allocatable"]["cpu"] == f"{cap_milli - 100}m"
    mem_ki = int(st["capacity"]["memory"].removesuffix("Ki"))
    assert st["allocatable"]["memory"] == f"{mem_ki - 128 * 1024}Ki"
    assert n["spec"]["podCIDR"].endswith("/24") and n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]]
    addrs = {a["type"]: a["address"] for a in st["addresses"]}
    assert addrs["Hostname"] == NODE and re.fullmatch(r"\d+\.\d+\.\d+\.1", addrs["InternalIP"])
    info = st["nodeInfo"]
    assert info["containerRuntimeVersion"] == "runc://1.1.5" and info["operatingSystem"] == "linux"
    assert info["kernelVersion"] == os.uname().release and info["architecture"] == "amd64"
    conds = {c["type"]: c for c in st["conditions"]}
    assert (conds["Ready"]["reason"], conds["Ready"]["message"]) == ("KubeletReady", "kubelet is posting ready status")
    assert {conds[t]["status"] for t in ("MemoryPressure", "DiskPressure", "PIDPressure")} == {"False"}
    lease = get(node, "lease", NODE, "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == NODE
    rc = get(node, "runtimeclass", "runc", "")
    assert rc["handler"] == "runc"


def test_echo_pod_completes_with_logs_and_events(node: CloudletProcess) -> None:
    wait_until(lambda: status_of(node, "echo").get("phase") == "Succeeded", timeout=60, interval=0.3,
               what="echo Succeeded")
    st = status_of(node, "echo")
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert st["containerStatuses"][0]["containerID"].startswith("runc://")
    assert st["containerStatuses"][0]["imageID"].startswith("docker.io/library/busybox@sha256:")
    assert st["qosClass"] == "BestEffort" and st["hostIP"] and st["podIP"] and st["startTime"]
    assert "hello from echo\nline two\n" == logs(node, "echo")
    reasons = {e["reason"]: e["message"] for e in events_for(node, "echo")}
    assert reasons["Created"] == "Created container echo" and reasons["Started"] == "Started container echo"
    assert reasons["Pulled"] in ('Container image "busybox" already present on machine',) or \
        reasons["Pulled"].startswith('Successfully pulled image "busybox"')
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"].get("reason") == "PodCompleted"


def test_oom_killed(node: CloudletProcess) -> None:
    wait_until(lambda: status_of(node, "oom").get("phase") == "Failed", timeout=60, interval=0.3, what="oom Failed")
    term = cstatus(node, "oom")["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137


def test_liveness_failure_restarts(node: CloudletProcess) -> None:
    wait_until(lambda: cstatus(node, "liveness").get("restartCount", 0) >= 1, timeout=60, interval=0.3,
               what="liveness restart")
    events = events_for(node, "liveness")
    unhealthy = [e for e in events if e["reason"] == "Unhealthy"]
    assert unhealthy and unhealthy[0]["message"].startswith("Liveness probe failed: ")
    assert any(e["reason"] == "Killing" and e["message"] == "Container liveness failed liveness probe, will be restarted"
               for e in events)


def test_ready_only_after_readiness_passes(node: CloudletProcess) -> None:
    def ready() -> bool:
        return bool(cstatus(node, "readiness").get("ready"))

    st = status_of(node, "readiness")
    started = cstatus(node, "readiness")
    if started.get("state", {}).get("running"):
        # started under 4 s ago means the file cannot exist yet: not ready
        conds = {c["type"]: c for c in st["conditions"]}
        age = time.time() - _ts(started["state"]["running"]["startedAt"])
        if age < 3:
            assert conds["Ready"]["status"] == "False" and not started["ready"]
    wait_until(ready, timeout=60, interval=0.3, what="readiness")
    cs = cstatus(node, "readiness")
    conds = {c["type"]: c for c in status_of(node, "readiness")["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["ContainersReady"]["status"] == "True"
    ready_at = _ts(conds["Ready"]["lastTransitionTime"])
    assert ready_at - _ts(cs["state"]["running"]["startedAt"]) >= 3  # the script sleeps 4 s first
    assert cs["restartCount"] == 0


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timestamp()


def test_volumes_env_and_configmap_update(node: CloudletProcess) -> None:
    out = wait_until(lambda: "color=blue" in (o := logs(node, "volumes", "-c", "main")) and o, timeout=60,
                     interval=0.3, what="volumes pod output")
    ip = status_of(node, "volumes")["podIP"]
    assert f"env=blue ip={ip}\n" in out and "from-init\n" in out and "hunter2\n" in out
    assert "ro=readonly\n" in out and "via-subpath\n" in out
    assert re.search(r"\s8192\s", out), out  # the memory emptyDir is a tmpfs of sizeLimit 8Mi
    inits = status_of(node, "volumes")["initContainerStatuses"]
    assert inits[0]["state"]["terminated"]["reason"] == "Completed"
    node.kubectl("patch", "configmap", "settings", "--type=merge", "-p", '{"data":{"color":"green"}}')
    wait_until(lambda: "color=green" in logs(node, "volumes", "-c", "main", "--tail=3"), timeout=30, interval=0.3,
               what="configMap update visible in the container")


def test_two_containers_share_localhost(node: CloudletProcess) -> None:
    wait_until(lambda: "shared-localhost" in logs(node, "sidecars", "-c", "client"), timeout=60, interval=0.3,
               what="client reaching the server over localhost")
    wait_until(lambda: all(c["ready"] for c in status_of(node, "sidecars").get("containerStatuses") or [{}]),
               timeout=30, interval=0.3, what="both containers ready")


def test_pod_reaches_another_pods_ip(node: CloudletProcess) -> None:
    wait_until(lambda: status_of(node, "sidecars").get("podIP"), timeout=60, interval=0.3, what="server IP")
    ip = status_of(node, "sidecars")["podIP"]
    node.kubectl("apply", "-f", "-", input=json.dumps(
        _pod("caller", f"wget -q -O- http://{ip}:8080/index.html", restart="Never")))
    wait_until(lambda: status_of(node, "caller").get("phase") in ("Succeeded", "Failed"), timeout=60, interval=0.3,
               what="caller done")
    assert status_of(node, "caller")["phase"] == "Succeeded"
    assert logs(node, "caller") == "shared-localhost\n"


def test_exec_and_port_forward(node: CloudletProcess) -> None:
    wait_until(lambda: cstatus(node, "sidecars", "server").get("ready"), timeout=60, interval=0.3, what="server ready")
    r = node.kubectl("exec", "sidecars", "-c", "client", "--", "sh", "-c", "echo $((6*7)); cat /www/index.html; exit 0",
                     check=False)
    assert r.returncode == 0 and r.stdout.startswith("42\n"), r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    env = {**os.environ, "KUBECONFIG": str(node.kubeconfig), "HOME": str(node.data_dir)}
    pf = subprocess.Popen(["kubectl", "port-forward", "pod/sidecars", f"{local}:8080"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def fetch() -> str:
            try:
                with socket.create_connection(("127.0.0.1", local), timeout=2) as c:
                    c.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                    data = b""
                    while chunk := c.recv(4096):
                        data += chunk
                    return data.decode(errors="replace")
            except OSError:
                return ""

        body = wait_until(lambda: "shared-localhost" in (t := fetch()) and t, timeout=30, interval=0.3,
                          what="port-forwarded response")
        assert body.startswith("HTTP/1.") and "shared-localhost" in body
    finally:
        pf.terminate()
        pf.wait(5)


def test_deployment_pods_are_real_processes(node: CloudletProcess) -> None:
    template = _pod("sleeper", "sleep 3600", labels={"app": "sleepers"})
    node.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sleepers"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "sleepers"}},
                 "template": {"metadata": {"labels": {"app": "sleepers"}}, "spec": template["spec"]}}}))

    def running() -> list[dict[str, Any]] | None:
        pods = json.loads(node.kubectl("get", "pods", "-l", "app=sleepers", "-o", "json").stdout)["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") == "Running"]
        return live if len(live) == 2 and len(pods) == 2 else None

    pods = wait_until(running, timeout=90, interval=0.5, what="2 running sleepers")
    for p in pods:
        pids = pod_cgroup_pids(p["metadata"]["uid"])
        cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids]
        assert b"sleep\x003600\x00" in cmdlines, cmdlines
    node.kubectl("delete", "deployment", "sleepers")


def test_image_pull_failure(node: CloudletProcess) -> None:
    def backing_off() -> bool:
        w = (cstatus(node, "badimage").get("state") or {}).get("waiting") or {}
        return w.get("reason") == "ImagePullBackOff"

    wait_until(backing_off, timeout=60, interval=0.3, what="ImagePullBackOff")
    msgs = [(e["reason"], e["message"]) for e in events_for(node, "badimage")]
    assert ("Pulling", 'Pulling image "127.0.0.1:9/missing/image:1"') in msgs
    assert any(r == "Failed" and m.startswith('Failed to pull image "127.0.0.1:9/missing/image:1"') for r, m in msgs)
    assert ("Failed", "Error: ErrImagePull") in msgs
    assert any(r == "BackOff" and m == 'Back-off pulling image "127.0.0.1:9/missing/image:1"' for r, m in msgs)
    assert status_of(node, "badimage")["phase"] == "Pending"


def test_run_as_non_root_refused(node: CloudletProcess) -> None:
    def refused() -> dict[str, Any] | None:
        w = (cstatus(node, "nonroot").get("state") or {}).get("waiting") or {}
        return w if w.get("reason") == "CreateContainerConfigError" else None

    w = wait_until(refused, timeout=60, interval=0.3, what="CreateContainerConfigError")
    assert w["message"] == "container has runAsNonRoot and image will run as root"
    assert any(e["reason"] == "Failed" and e["message"] == f"Error: {w['message']}" for e in events_for(node, "nonroot"))


def test_unknown_runtime_class(node: CloudletProcess) -> None:
    def failed() -> list[dict[str, Any]]:
        return [e for e in events_for(node, "norc") if e["reason"] == "FailedCreatePodSandBox"]

    ev = wait_until(failed, timeout=60, interval=0.3, what="FailedCreatePodSandBox")
    assert 'RuntimeClass "nope" not found' in ev[0]["message"]


def test_hooks_and_graceful_termination(node: CloudletProcess) -> None:
    try:
        wait_until(lambda: "post-start-ran" in logs(node, "hooks"), timeout=60, interval=0.3, what="postStart output")
    except AssertionError as e:
        raise AssertionError(f"{e}\nstatus: {status_of(node, 'hooks')}\nevents: "
                             f"{[(x['reason'], x['message']) for x in events_for(node, 'hooks')]}") from None
    t0 = time.monotonic()
    node.kubectl("delete", "pod", "hooks", "--wait=true", "--timeout=60s", timeout=90)
    took = time.monotonic() - t0
    assert (node.data_dir / "marker" / "prestop").read_text() == "pre-stop-ran\n"
    assert took < 15, f"the container handles SIGTERM; deletion took {took:.1f}s of a 20 s grace period"
    assert any(e["reason"] == "Killing" and e["message"] == "Stopping container hooks" for e in events_for(node, "hooks"))


def test_status_written_only_when_changed(node: CloudletProcess) -> None:
    wait_until(lambda: cstatus(node, "readiness").get("ready"), timeout=60, interval=0.3, what="readiness ready")
    rv = get(node, "pod", "readiness")["metadata"]["resourceVersion"]
    time.sleep(3)  # three readiness probes run meanwhile; nothing they report is new
    assert get(node, "pod", "readiness")["metadata"]["resourceVersion"] == rv


def test_active_deadline_exceeded(node: CloudletProcess) -> None:
    wait_until(lambda: status_of(node, "deadline").get("phase") == "Failed", timeout=60, interval=0.3,
               what="deadline pod Failed")
    st = status_of(node, "deadline")
    assert st["reason"] == "DeadlineExceeded"
    assert st["message"] == "Pod was active on the node longer than the specified deadline"
    assert "terminated" in st["containerStatuses"][0]["state"]


def test_crash_loop_back_off(node: CloudletProcess) -> None:
    def looping() -> dict[str, Any] | None:
        cs = cstatus(node, "crash")
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if cs.get("restartCount", 0) >= 2 and waiting.get("reason") == "CrashLoopBackOff":
            return cs
        return None

    cs = wait_until(looping, timeout=60, interval=0.3, what="crash loop with 2 restarts")
    uid = get(node, "pod", "crash")["metadata"]["uid"]
    msg = cs["state"]["waiting"]["message"]
    assert re.fullmatch(rf"back-off (\d+s|\d+m\d+s) restarting failed container=crash pod=crash_default\({uid}\)", msg), msg
    last = cs["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    assert status_of(node, "crash")["phase"] == "Running"
    backoffs = [e for e in events_for(node, "crash") if e["reason"] == "BackOff"]
    assert backoffs[0]["message"] == f"Back-off restarting failed container crash in pod crash_default({uid})"
    assert logs(node, "crash", "--previous") == "crashing\n"


def test_no_leaks_after_20_pods(node: CloudletProcess) -> None:
    # the 20 pods were created with the module's other workloads (their starts overlap)
    def all_running() -> bool:
        pods = json.loads(node.kubectl("get", "pods", "-l", "leak=yes", "-o", "json").stdout)["items"]
        return len(pods) == 20 and all((p.get("status") or {}).get("phase") == "Running" for p in pods)

    wait_until(all_running, timeout=180, interval=1.0, what="20 leak pods running")
    uids = [p["metadata"]["uid"] for p in json.loads(node.kubectl("get", "pods", "-l", "leak=yes", "-o", "json").stdout)["items"]]
    before = host_leftovers(node.data_dir)
    assert len(before.get("netns", [])) >= 20 and len(before.get("veth", [])) >= 20
    node.kubectl("delete", "pods", "-l", "leak=yes", "--wait=true", "--timeout=120s", timeout=150)
    # only the pods of the other tests may remain
    def clean() -> bool:
        left = host_leftovers(node.data_dir)
        mine = [x for v in left.values() for x in v if any(u in x for u in uids)]
        pod_dirs = [u for u in uids if (node.data_dir / "pods" / u).exists()]
        return not mine and not pod_dirs and not any(pod_cgroup_pids(u) for u in uids)

    wait_until(clean, timeout=30, interval=0.5, what="leak pods gone from the host")
    after = host_leftovers(node.data_dir)
    assert len(after.get("netns", [])) <= len(before["netns"]) - 20
    assert len(after.get("veth", [])) <= len(before["veth"]) - 20
    assert len(after.get("conmon", [])) <= len(before.get("conmon", [])) - 20


def test_logs_follow_ends_with_the_container(node: CloudletProcess) -> None:
    node.kubectl("apply", "-f", "-", input=json.dumps(
        _pod("follow", "for i in 1 2 3; do echo line $i; sleep 1; done", restart="Never")))
    wait_until(lambda: status_of(node, "follow").get("phase") in ("Running", "Succeeded"), timeout=60, interval=0.1,
               what="follow pod started")
    r = node.kubectl("logs", "-f", "follow", timeout=60)
    assert r.stdout == "line 1\nline 2\nline 3\n"
    wait_until(lambda: status_of(node, "follow").get("phase") == "Succeeded", timeout=30, interval=0.2,
               what="follow pod done")


def test_host_network_pod(node: CloudletProcess) -> None:
    wait_until(lambda: status_of(node, "hostnet").get("phase") == "Succeeded", timeout=60, interval=0.3,
               what="hostNetwork pod done")
    st = status_of(node, "hostnet")
    assert st["podIP"] == st["hostIP"] and logs(node, "hostnet") == "on the host network\n"


def _cgroup_values(uid: str, controller: str, name: str) -> list[str]:
    out = []
    for d in Path(f"/sys/fs/cgroup/{controller}").rglob(f"*{uid}*"):
        f = d / name
        if f.is_file():
            out.append(f.read_text().strip())
    return out


def test_resources_reach_the_cgroups(node: CloudletProcess) -> None:
    wait_until(lambda: status_of(node, "limits").get("phase") == "Running", timeout=60, interval=0.3,
               what="limits pod running")
    pod = get(node, "pod", "limits")
    assert pod["status"]["qosClass"] == "Burstable"
    uid = pod["metadata"]["uid"]
    assert "50000" in _cgroup_values(uid, "cpu", "cpu.cfs_quota_us")
    assert "256" in _cgroup_values(uid, "cpu", "cpu.shares")
    assert str(64 * 1024 * 1024) in _cgroup_values(uid, "memory", "memory.limit_in_bytes")


def test_etc_hosts_and_hostname(node: CloudletProcess) -> None:
    wait_until(lambda: status_of(node, "etc").get("phase") == "Succeeded", timeout=60, interval=0.3, what="etc done")
    out = logs(node, "etc")
    ip = status_of(node, "etc")["podIP"]
    assert out.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert f"{ip}\tetc\n" in out and out.endswith("\netc\n")


def test_startup_probe_holds_back_liveness(node: CloudletProcess) -> None:
    def started() -> dict[str, Any] | None:
        cs = cstatus(node, "startup")
        return cs if cs.get("started") and cs.get("ready") else None

    cs = wait_until(started, timeout=60, interval=0.3, what="startup probe passed")
    # the liveness probe (which fails until /tmp/up exists) did not run before the startup probe passed
    assert cs["restartCount"] == 0
    assert not [e for e in events_for(node, "startup") if e["reason"] == "Killing"]


def test_startup_trace_is_logged_once_per_pod(node: CloudletProcess) -> None:
    """The agent logs where a pod's start-up time went (what bench/podstart.py --trace reads)."""
    wait_until(lambda: cstatus(node, "sidecars", "server").get("state", {}).get("running"), timeout=60,
               interval=0.3, what="sidecars running")

    def traced() -> list[dict[str, Any]]:
        return [json.loads(line) for line in node.log().splitlines()
                if "Observed pod startup duration" in line and '"default/sidecars"' in line]

    (rec,) = wait_until(traced, timeout=30, interval=0.3, what="start-up trace of sidecars")
    steps = rec["steps_ms"]
    assert {"create", "start", "image", "rootfs"} <= set(steps)
    assert "network_and_sandbox" in steps or {"network", "sandbox"} <= set(steps)
    assert all(v >= 0 for v in steps.values())
    assert rec["total_ms"] >= sum(steps.values()) - 1
    assert rec["uid"] == get(node, "pod", "sidecars")["metadata"]["uid"]
