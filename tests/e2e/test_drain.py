"""`kubectl drain` end to end: real `cloudlet up --hollow-nodes 3`, the real kubectl, PodDisruptionBudgets.

The hollow nodes stand in for kubelets (they mark bound pods Running/Ready
and finish graceful deletions); everything else is the real thing: kubectl
cordons, lists, evicts through ``pods/eviction`` (found in discovery) and
waits; the ReplicaSet controller replaces evicted pods, the scheduler puts
them on the remaining nodes, the disruption controller keeps the budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, wait_until

BUDGET_429 = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("drain"), extra_args=["--hollow-nodes", "3"])
    proc.start()
    yield proc
    proc.stop()


def _json(c: CloudletProcess, *args: str) -> Any:
    return json.loads(c.kubectl(*args, "-o", "json").stdout)


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(x["type"] == "Ready" and x["status"] == "True" for x in (pod.get("status") or {}).get("conditions") or ())


def _web_pods(c: CloudletProcess) -> list[dict[str, Any]]:
    return _json(c, "get", "pods", "-l", "app=web")["items"]


def _pods_by_node(c: CloudletProcess) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in _web_pods(c):
        if _ready(p):
            out.setdefault(p["spec"]["nodeName"], []).append(p["metadata"]["name"])
    return out


def _pdb_status(c: CloudletProcess, name: str) -> dict[str, Any]:
    return _json(c, "get", "pdb", name).get("status") or {}


class ReadyWatch:
    """``kubectl get pods -l app=web --watch`` in the background; records the fewest
    Ready (not terminating) web pods at any point of the event stream."""

    FORMAT = ('jsonpath={.type}|{.object.metadata.name}|{.object.metadata.deletionTimestamp}|'
              '{.object.status.conditions[?(@.type=="Ready")].status}{"\\n"}')

    def __init__(self, c: CloudletProcess) -> None:
        env = {**os.environ, "KUBECONFIG": str(c.kubeconfig), "HOME": str(c.data_dir)}
        self.p = subprocess.Popen(["kubectl", "get", "pods", "-l", "app=web", "--watch", "--output-watch-events",
                                   "-o", self.FORMAT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.ready: dict[str, bool] = {}
        self.minimum: int | None = None
        self.deleted: list[str] = []
        self.events = 0
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            kind, name, deleting, ready = (line.rstrip("\n").split("|") + ["", "", "", ""])[:4]
            if not name:
                continue
            self.events += 1
            if kind == "DELETED":
                self.ready.pop(name, None)
                self.deleted.append(name)
            else:
                self.ready[name] = ready == "True" and not deleting
            if self.events >= 4:  # the initial ADDED events of the 4 pods are in
                count = sum(self.ready.values())
                self.minimum = count if self.minimum is None else min(self.minimum, count)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._thread.join(5)


def test_drain_respects_min_available(cluster: CloudletProcess) -> None:
    c = cluster
    wait_until(lambda: len(_json(c, "get", "nodes")["items"]) == 3, timeout=20, what="3 hollow nodes")
    c.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=4")
    c.kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=3")
    wait_until(lambda: sum(len(v) for v in _pods_by_node(c).values()) == 4, timeout=30, what="4 ready web pods")
    status = wait_until(lambda: (s := _pdb_status(c, "web")).get("disruptionsAllowed") == 1 and s, timeout=20,
                        what="budget allowing 1 disruption")
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"]) == (4, 3, 4)

    table = c.kubectl("get", "pdb").stdout.splitlines()
    assert table[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert table[1].split()[:4] == ["web", "3", "N/A", "1"]

    by_node = _pods_by_node(c)
    node = max(by_node, key=lambda n: len(by_node[n]))  # 4 pods on 3 nodes: this one has at least 2
    victims = set(by_node[node])
    assert len(victims) >= 2

    watch = ReadyWatch(c)
    try:
        wait_until(lambda: watch.minimum is not None, timeout=20, what="the watch to list the 4 pods")
        p = c.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=150s",
                      check=False, timeout=180)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out
        assert f"node/{node} cordoned" in out and f"node/{node} drained" in out
        for name in victims:
            assert f"pod/{name} evicted" in out, out
        wait_until(lambda: sum(len(v) for k, v in _pods_by_node(c).items() if k != node) == 4, timeout=30,
                   what="4 ready web pods on the other nodes")
        wait_until(lambda: victims <= set(watch.deleted), timeout=10, what="the watch to see every evicted pod go")
    finally:
        watch.stop()
    # each eviction leaves exactly 3 ready until the replacement is up; never fewer
    assert watch.minimum == 3, f"fewest ready pods seen: {watch.minimum}: {watch.lines}"
    n = _json(c, "get", "node", node)
    assert n["spec"].get("unschedulable") is True
    left = _json(c, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}")["items"]
    assert left == []
    c.kubectl("uncordon", node)


def test_zero_budget_blocks_drain_and_two_budgets_refuse(cluster: CloudletProcess) -> None:
    c = cluster
    c.kubectl("delete", "pdb", "web", "--ignore-not-found")
    c.kubectl("create", "pdb", "zero", "--selector=app=web", "--max-unavailable=0")
    status = wait_until(lambda: (s := _pdb_status(c, "zero")).get("expectedPods") == 4 and s, timeout=20,
                        what="budget zero synced")
    assert (status["disruptionsAllowed"], status["desiredHealthy"]) == (0, 4)
    by_node = wait_until(lambda: (b := _pods_by_node(c)) and sum(len(v) for v in b.values()) == 4 and b, timeout=30,
                         what="4 ready web pods")
    node = max(by_node, key=lambda n: len(by_node[n]))

    p = c.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=7s", check=False, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert BUDGET_429 in out and "global timeout reached: 7s" in out, out
    assert sorted(_pods_by_node(c).get(node, [])) == sorted(by_node[node])  # nothing was evicted
    assert _json(c, "get", "node", node)["spec"].get("unschedulable") is True

    # the raw answer: 429 with the DisruptionBudget cause
    name = by_node[node][0]
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    code, answer = c.request("POST", f"/api/v1/namespaces/default/pods/{name}/eviction", body)
    assert code == 429 and answer["reason"] == "TooManyRequests" and answer["message"] == BUDGET_429
    assert answer["details"]["causes"] == [{"reason": "DisruptionBudget",
                                            "message": "The disruption budget zero needs 4 healthy pods and has 4 currently"}]

    # two budgets over the same pods: a 500 that kubectl reports without retrying
    c.kubectl("create", "pdb", "also", "--selector=app=web", "--min-available=1")
    p = c.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s", check=False, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." in out, out
    c.kubectl("uncordon", node)
