"""Hollow nodes end to end: `cloudlet up --hollow-nodes 3`, the real kubectl, `cloudlet node ...`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import CLOUDLET, CloudletProcess, wait_until

GRACE = "3"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("hollow"),
                           extra_args=["--hollow-nodes", "3", "--node-monitor-grace-period", GRACE])
    proc.start()
    yield proc
    proc.stop()


def _nodes(c: CloudletProcess) -> dict[str, Any]:
    out = json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)
    return {n["metadata"]["name"]: n for n in out["items"]}


def _ready(node: dict[str, Any]) -> str:
    return next((c["status"] for c in node["status"].get("conditions") or () if c["type"] == "Ready"), "")


def _cli(c: CloudletProcess, *args: str) -> str:
    p = subprocess.run([CLOUDLET, *args, "--data-dir", str(c.data_dir)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  nodeName: %(node)s
  tolerations: %(tolerations)s
  containers: [{name: web, image: nginx:1.27}]
"""


def _pod_line(c: CloudletProcess, name: str) -> list[str]:
    p = c.kubectl("get", "pod", name, "--no-headers", check=False)
    return p.stdout.split() if p.returncode == 0 else []


def test_three_ready_hollow_nodes(cluster: CloudletProcess) -> None:
    nodes = wait_until(lambda: (n := _nodes(cluster)) and len(n) == 3 and all(_ready(x) == "True" for x in n.values()) and n,
                       timeout=10, what="3 Ready nodes")
    assert sorted(nodes) == ["hollow-node-0", "hollow-node-1", "hollow-node-2"]
    for name, node in nodes.items():
        assert node["metadata"]["labels"]["type"] == "hollow"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert node["status"]["allocatable"] == {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    table = cluster.kubectl("get", "nodes", "-l", "type=hollow").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "STATUS"]
    assert [line.split()[1] for line in table[1:]] == ["Ready"] * 3
    leases = json.loads(cluster.kubectl("get", "leases", "-n", "kube-node-lease", "-o", "json").stdout)["items"]
    assert sorted(x["metadata"]["name"] for x in leases) == sorted(nodes)


def test_pod_bound_to_hollow_node_runs(cluster: CloudletProcess) -> None:
    cluster.kubectl("apply", "-f", "-", input=POD % {"name": "web", "node": "hollow-node-1", "tolerations": "[]"})
    line = wait_until(lambda: (x := _pod_line(cluster, "web")) and x[1:3] == ["1/1", "Running"] and x,
                      timeout=10, what="pod Running 1/1")
    assert line[0] == "web"
    wide = cluster.kubectl("get", "pod", "web", "-o", "wide", "--no-headers").stdout
    assert "hollow-node-1" in wide
    cluster.kubectl("delete", "pod", "web", "--wait=true", timeout=30)
    assert _pod_line(cluster, "web") == []


def test_cordon_uncordon(cluster: CloudletProcess) -> None:
    cluster.kubectl("cordon", "hollow-node-2")
    node = _nodes(cluster)["hollow-node-2"]
    assert node["spec"]["unschedulable"] is True
    status = cluster.kubectl("get", "node", "hollow-node-2", "--no-headers").stdout.split()[1]
    assert status == "Ready,SchedulingDisabled"
    cluster.kubectl("uncordon", "hollow-node-2")
    assert not _nodes(cluster)["hollow-node-2"]["spec"].get("unschedulable")


def test_node_add_stop_resume(cluster: CloudletProcess) -> None:
    out = _cli(cluster, "node", "add", "--hollow", "--count", "2")
    assert out.splitlines() == ["node/hollow-node-3 created", "node/hollow-node-4 created"]
    wait_until(lambda: all(_ready(n) == "True" for n in _nodes(cluster).values()) and len(_nodes(cluster)) == 5,
               timeout=10, what="5 Ready nodes")
    tol = '[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}]'
    cluster.kubectl("apply", "-f", "-", input=POD % {"name": "victim", "node": "hollow-node-3", "tolerations": tol})
    wait_until(lambda: _pod_line(cluster, "victim")[1:3] == ["1/1", "Running"], timeout=10, what="victim Running")

    wait_until(lambda: cluster.kubectl("get", "lease", "-n", "kube-node-lease", "hollow-node-3", check=False).returncode == 0,
               timeout=10, what="hollow-node-3 heartbeating")
    _cli(cluster, "node", "stop", "hollow-node-3")
    wait_until(lambda: _ready(_nodes(cluster)["hollow-node-3"]) == "Unknown", timeout=float(GRACE) + 10,
               what="hollow-node-3 Unknown")
    node = _nodes(cluster)["hollow-node-3"]
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}.items() <= node["spec"]["taints"][0].items()
    assert cluster.kubectl("get", "node", "hollow-node-3", "--no-headers").stdout.split()[1] == "NotReady"
    wait_until(lambda: _pod_line(cluster, "victim")[2:3] == ["Terminating"], timeout=10, what="victim evicted")

    _cli(cluster, "node", "resume", "hollow-node-3")
    wait_until(lambda: _ready(_nodes(cluster)["hollow-node-3"]) == "True", timeout=10, what="hollow-node-3 Ready")
    wait_until(lambda: not _nodes(cluster)["hollow-node-3"]["spec"].get("taints"), timeout=10, what="taints removed")
    wait_until(lambda: _pod_line(cluster, "victim") == [], timeout=10, what="victim deleted")


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: heal}
spec:
  replicas: 2
  selector: {matchLabels: {app: heal}}
  template:
    metadata: {labels: {app: heal}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [hollow-node-0, hollow-node-1]}]
      containers: [{name: web, image: nginx:1.27}]
      tolerations:  # leave an unreachable node after 1 s instead of the default 300 s
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}
"""


def _heal_pods(c: CloudletProcess) -> list[dict[str, Any]]:
    out = json.loads(c.kubectl("get", "pods", "-l", "app=heal", "-o", "json").stdout)
    return out["items"]


def _running_on(c: CloudletProcess) -> list[str]:
    return sorted(p["spec"].get("nodeName", "") for p in _heal_pods(c)
                  if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running")


def test_stopped_node_pods_are_evicted_and_rescheduled(cluster: CloudletProcess) -> None:
    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT)
    wait_until(lambda: len(_running_on(cluster)) == 2, timeout=20, what="2 heal pods Running")
    victim_node = _running_on(cluster)[0]
    other = "hollow-node-1" if victim_node == "hollow-node-0" else "hollow-node-0"
    doomed = {p["metadata"]["name"] for p in _heal_pods(cluster) if p["spec"]["nodeName"] == victim_node}
    _cli(cluster, "node", "stop", victim_node)
    # unreachable tolerated for 1 s: evicted shortly after the node is tainted, replaced on the other node
    wait_until(lambda: _running_on(cluster) == [other, other], timeout=float(GRACE) + 20, what="rescheduled")
    assert all(p["metadata"].get("deletionTimestamp") for p in _heal_pods(cluster) if p["metadata"]["name"] in doomed)
    _cli(cluster, "node", "resume", victim_node)
    wait_until(lambda: not {p["metadata"]["name"] for p in _heal_pods(cluster)} & doomed, timeout=15,
               what="evicted pods finished once the node is back")
    cluster.kubectl("delete", "deployment", "heal")
