"""HorizontalPodAutoscaler end to end on hollow nodes: `kubectl autoscale`, usage
declared through pod annotations (served as metrics.k8s.io — no container burns
cpu here; the node-agent tests drive the same controller with real cgroup samples),
scale up, then down with a short stabilisation window, `kubectl get hpa`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, wait_until

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: nginx
        resources: {requests: {cpu: 100m, memory: 64Mi}}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("hpa"),
                           extra_args=["--hollow-nodes", "2", "--horizontal-pod-autoscaler-sync-period", "1"])
    proc.start()
    yield proc
    proc.stop()


def _hpa(c: CloudletProcess) -> dict[str, Any]:
    return json.loads(c.kubectl("get", "hpa.v2.autoscaling", "web", "-o", "json").stdout)


def _replicas(c: CloudletProcess) -> int:
    return int(json.loads(c.kubectl("get", "deployment", "web", "-o", "json").stdout)["spec"]["replicas"])


def _cond(hpa: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((x for x in hpa.get("status", {}).get("conditions") or () if x["type"] == type_), {})


def test_scale_up_on_load_then_down(cluster: CloudletProcess) -> None:
    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT)
    wait_until(lambda: cluster.kubectl("get", "pods", "-l", "app=web", "--no-headers").stdout.count("Running") == 2,
               timeout=30, what="2 running pods")
    cluster.kubectl("autoscale", "deployment", "web", "--cpu-percent=50", "--min=2", "--max=5")
    # ready pods must be past one metrics window since turning Ready (kube's cpu initialisation rule)
    hpa = wait_until(lambda: (h := _hpa(cluster)) and _cond(h, "ScalingActive").get("status") == "True" and h,
                     timeout=40, what="ScalingActive")
    assert _cond(hpa, "ScalingActive")["reason"] == "ValidMetricFound"
    current = hpa["status"]["currentMetrics"][0]["resource"]["current"]
    assert current["averageUtilization"] == 1 and current["averageValue"] == "1m"  # hollow default: 1m of 100m
    assert _replicas(cluster) == 2  # idle, but at the minimum

    # load: 100m used of 100m requested = 200% of the 50% target -> ceil(2 * 2) = 4
    cluster.kubectl("annotate", "pods", "-l", "app=web", "hollow.cloudlet.dev/cpu-usage=100m", "--overwrite")
    wait_until(lambda: _replicas(cluster) == 4, timeout=40, what="scaled up to 4")
    hpa = _hpa(cluster)
    assert hpa["status"]["desiredReplicas"] == 4 and hpa["status"].get("lastScaleTime")
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=SuccessfulRescale",
                             "-o", "json").stdout
    messages = [e["message"] for e in json.loads(events)["items"]]
    assert "New size: 4; reason: cpu resource utilization (percentage of request) above target" in messages

    row = wait_until(lambda: (r := cluster.kubectl("get", "hpa", "web", "--no-headers").stdout.split()) and r[-2] == "4" and r,
                     timeout=20, what="REPLICAS 4 in kubectl get hpa")
    assert row[:2] == ["web", "Deployment/web"] and row[-4:-1] == ["2", "5", "4"], row  # MINPODS MAXPODS REPLICAS
    assert row[2] == "cpu:" and row[3].endswith("/50%"), row

    # load gone, short scale-down window: back to the minimum, no flapping on the way
    cluster.kubectl("patch", "hpa.v2.autoscaling", "web", "--type=merge", "-p",
                    json.dumps({"spec": {"minReplicas": 1, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 3}}}}))
    cluster.kubectl("annotate", "pods", "-l", "app=web", "hollow.cloudlet.dev/cpu-usage=1m", "--overwrite")
    seen: list[int] = []

    def settled() -> bool:
        seen.append(_replicas(cluster))
        return seen[-1] == 1

    wait_until(settled, timeout=60, interval=0.3, what="scaled down to 1")
    assert all(a >= b for a, b in zip(seen, seen[1:], strict=False)), seen  # never went back up
    assert _cond(_hpa(cluster), "ScalingLimited")["reason"] in ("TooFewReplicas", "DesiredWithinRange")


def test_unknown_target_reports_failed_get_scale(cluster: CloudletProcess) -> None:
    cluster.kubectl("autoscale", "deployment", "ghost", "--cpu-percent=50", "--max=3", check=False)
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: ghost}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: ghost}
  maxReplicas: 3
""")
    hpa = wait_until(lambda: (h := json.loads(cluster.kubectl("get", "hpa.v2.autoscaling", "ghost", "-o", "json").stdout))
                     and _cond(h, "AbleToScale").get("reason") == "FailedGetScale" and h, timeout=20, what="FailedGetScale")
    assert _cond(hpa, "AbleToScale")["status"] == "False"
