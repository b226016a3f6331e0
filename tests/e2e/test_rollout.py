"""Deployments roll out end to end: a real `cloudlet up` and the real kubectl.

Nothing runs pods in this server (no hollow nodes here), so a background
thread in the test stands in for the node agent / hollow nodes: it marks every
pod Running and Ready through the API, as a kubelet would report them. With
that, `kubectl rollout status|history|undo|restart|pause|resume` must behave
as against Kubernetes. The last test drops the stand-in and runs the whole
chain — scheduler, hollow nodes (`--hollow-nodes 3`), graceful pod
termination — on a server of its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, wait_until


class _Seen:
    """The most non-terminating pods seen at once since :meth:`reset`."""

    def __init__(self) -> None:
        self.most = 0

    def reset(self) -> None:
        self.most = 0


SEEN = _Seen()


def _mark_ready_forever(c: CloudletProcess, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            code, out = c.request("GET", "/api/v1/namespaces/default/pods")
            live = [p for p in out.get("items", []) if not p["metadata"].get("deletionTimestamp")] if code == 200 else []
            SEEN.most = max(SEEN.most, len(live))
            for pod in out.get("items", []) if code == 200 else []:
                meta = pod["metadata"]
                conds = (pod.get("status") or {}).get("conditions") or []
                if meta.get("deletionTimestamp") or any(x["type"] == "Ready" and x["status"] == "True" for x in conds):
                    continue
                ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                patch = {"status": {"phase": "Running",
                                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts}]}}
                c.request("PATCH", f"/api/v1/namespaces/default/pods/{meta['name']}/status", patch,
                          content_type="application/strategic-merge-patch+json")
        except Exception:  # the server may be busy; try again next round
            pass
        stop.wait(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("rollout"))
    proc.start()
    stop = threading.Event()
    kubelet = threading.Thread(target=_mark_ready_forever, args=(proc, stop), daemon=True)
    kubelet.start()
    yield proc
    stop.set()
    kubelet.join(5)
    proc.stop()


def _replicasets(c: CloudletProcess) -> list[dict[str, Any]]:
    return json.loads(c.kubectl("get", "rs", "-l", "app=web", "-o", "json").stdout)["items"]


def _image(c: CloudletProcess) -> str:
    return c.kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout


def test_create_and_rollout_status(cluster: CloudletProcess) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=nginx:1.26", "--replicas=3")
    out = cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert 'deployment "web" successfully rolled out' in out
    d = json.loads(cluster.kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert d["status"]["availableReplicas"] == 3 and d["status"]["updatedReplicas"] == 3
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


def test_update_history_and_undo(cluster: CloudletProcess) -> None:
    SEEN.reset()
    cluster.kubectl("set", "image", "deployment/web", "nginx=nginx:1.27")
    cluster.kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=bump to 1.27", "--overwrite")
    assert "successfully rolled out" in cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert 0 < SEEN.most <= 4  # 3 replicas + maxSurge 25% (rounded up: 1), as sampled every 0.1 s
    history = cluster.kubectl("rollout", "history", "deployment/web").stdout
    assert "REVISION" in history and "bump to 1.27" in history
    revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
    assert revisions == ["1", "2"]
    detail = cluster.kubectl("rollout", "history", "deployment/web", "--revision=1").stdout
    assert "nginx:1.26" in detail

    cluster.kubectl("rollout", "undo", "deployment/web")
    assert "successfully rolled out" in cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert _image(cluster) == "nginx:1.26"
    history = cluster.kubectl("rollout", "history", "deployment/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
    assert len(_replicasets(cluster)) == 2


def test_restart_pause_resume(cluster: CloudletProcess) -> None:
    cluster.kubectl("rollout", "restart", "deployment/web")
    assert "successfully rolled out" in cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert len(_replicasets(cluster)) == 3

    cluster.kubectl("rollout", "pause", "deployment/web")
    cluster.kubectl("set", "image", "deployment/web", "nginx=nginx:1.28")

    def paused() -> bool:
        d = json.loads(cluster.kubectl("get", "deploy", "web", "-o", "json").stdout)
        prog = next((x for x in d["status"].get("conditions", []) if x["type"] == "Progressing"), {})
        return prog.get("reason") == "DeploymentPaused" and d["status"]["observedGeneration"] == d["metadata"]["generation"]

    wait_until(paused, timeout=20, what="Progressing=DeploymentPaused")
    assert len(_replicasets(cluster)) == 3  # no rollout while paused
    cluster.kubectl("rollout", "resume", "deployment/web")
    assert "successfully rolled out" in cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert _image(cluster) == "nginx:1.28"
    assert len(_replicasets(cluster)) == 4


def test_deleted_pod_is_replaced(cluster: CloudletProcess) -> None:
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 3
    cluster.kubectl("delete", "pod", live[0]["metadata"]["name"], "--wait=false")

    def healed() -> bool:
        items = json.loads(cluster.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        names = {p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")}
        return len(names) == 3 and live[0]["metadata"]["name"] not in names

    wait_until(healed, timeout=20, what="the deleted pod to be replaced")


def test_rollout_on_hollow_nodes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The whole chain with no stand-in: scheduler binds, hollow nodes run and finalize pods."""
    c = CloudletProcess(tmp_path_factory.mktemp("rollout-hollow"), extra_args=["--hollow-nodes", "3"])
    c.start()
    try:
        c.kubectl("create", "deployment", "app", "--image=nginx:1.26", "--replicas=5")
        assert "successfully rolled out" in c.kubectl("rollout", "status", "deployment/app", "--timeout=60s").stdout
        c.kubectl("set", "image", "deployment/app", "nginx=nginx:1.27")
        assert "successfully rolled out" in c.kubectl("rollout", "status", "deployment/app", "--timeout=60s").stdout

        def settled() -> list[dict[str, Any]] | None:
            pods = json.loads(c.kubectl("get", "pods", "-l", "app=app", "-o", "json").stdout)["items"]
            ok = len(pods) == 5 and all(p["status"].get("phase") == "Running" and p["spec"].get("nodeName", "").startswith("hollow-")
                                        and p["spec"]["containers"][0]["image"] == "nginx:1.27" for p in pods)
            return pods if ok else None

        wait_until(settled, timeout=30, what="5 new pods running on hollow nodes, old ones gone")
        c.kubectl("rollout", "undo", "deployment/app")
        assert "successfully rolled out" in c.kubectl("rollout", "status", "deployment/app", "--timeout=60s").stdout
        assert c.kubectl("get", "deploy", "app", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout == "nginx:1.26"
    finally:
        c.stop()
