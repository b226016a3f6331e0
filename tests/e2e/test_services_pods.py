"""Services, DNS, metrics and autoscaling on real pods: `cloudlet up` with its node agent.

A two-replica Deployment of busybox httpd behind a Service answers through the
ClusterIP, the NodePort (on 127.0.0.1) and its DNS name from inside another pod;
a pod that fails readiness gets no traffic; scaling changes the rules;
`kubectl top` shows a cpu-burning pod's usage; an HPA scales a cpu-burning
Deployment up, then back down when the load stops, without flapping.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, wait_until
from tests.e2e.test_pods import start_node, stop_and_check_clean

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root (runc, netns, cgroups, nftables)")

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /index.html, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: unready, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: client, image: busybox, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: busybox
        imagePullPolicy: IfNotPresent
        # burns a cpu while /tmp/burn exists (kubectl exec starts and stops the load)
        command: [sh, -c, "touch /tmp/burn; while true; do if [ -f /tmp/burn ]; then :; else sleep 1; fi; done"]
        resources: {requests: {cpu: 100m}}
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = start_node(tmp_path_factory.mktemp("svcnode"), "--housekeeping-interval", "2",
                      "--horizontal-pod-autoscaler-sync-period", "2")
    try:
        proc.kubectl("apply", "-f", "-", input=WEB)
        yield proc
    finally:
        stop_and_check_clean(proc)


def _json(c: CloudletProcess, *args: str) -> Any:
    return json.loads(c.kubectl(*args, "-o", "json").stdout)


def _web_pods(c: CloudletProcess) -> set[str]:
    return {p["metadata"]["name"] for p in _json(c, "get", "pods", "-l", "app=web")["items"] if p["metadata"]["name"] != "unready"}


def _ready_endpoints(c: CloudletProcess, n: int) -> Any:
    ep = _json(c, "get", "endpoints", "web")
    addrs = [a for s in ep.get("subsets") or () for a in s.get("addresses") or ()]
    return ep if len(addrs) == n else None


def _exec(c: CloudletProcess, pod: str, *cmd: str) -> str:
    return c.kubectl("exec", pod, "--", *cmd, timeout=30).stdout


def test_cluster_ip_node_port_and_dns_reach_only_ready_pods(node: CloudletProcess) -> None:
    ep = wait_until(lambda: _ready_endpoints(node, 2), timeout=90, what="2 ready endpoints")
    assert "unready" in json.dumps(ep.get("subsets")[0].get("notReadyAddresses") or [])
    wait_until(lambda: "Running" in node.kubectl("get", "pod", "client", "--no-headers").stdout, timeout=60, what="client")
    svc = _json(node, "get", "service", "web")
    cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    names = _web_pods(node)
    seen_ip = {_exec(node, "client", "wget", "-q", "-O-", f"http://{cluster_ip}/index.html").strip() for _ in range(12)}
    assert seen_ip == names  # both ready replicas, never the unready pod
    seen_dns = {_exec(node, "client", "wget", "-q", "-O-", "http://web.default.svc.cluster.local/index.html").strip()
                for _ in range(6)}
    assert seen_dns <= names and seen_dns
    short = _exec(node, "client", "wget", "-q", "-O-", "http://web/index.html").strip()  # search domains
    assert short in names
    resolv = _exec(node, "client", "cat", "/etc/resolv.conf")
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv and "ndots:5" in resolv
    env = _exec(node, "client", "env")
    assert f"WEB_SERVICE_HOST={cluster_ip}" in env and "WEB_SERVICE_PORT_HTTP=80" in env
    with urllib.request.urlopen(f"http://127.0.0.1:{node_port}/index.html", timeout=10) as r:
        assert r.read().decode().strip() in names


def test_scaling_updates_the_rules(node: CloudletProcess) -> None:
    wait_until(lambda: _ready_endpoints(node, 2), timeout=90, what="2 ready endpoints")
    node.kubectl("scale", "deployment", "web", "--replicas=3")
    wait_until(lambda: _ready_endpoints(node, 3), timeout=90, what="3 ready endpoints")
    svc = _json(node, "get", "service", "web")
    names = _web_pods(node)
    assert len(names) == 3
    seen = set()
    for _ in range(40):
        seen.add(_exec(node, "client", "wget", "-q", "-O-", f"http://{svc['spec']['clusterIP']}/index.html").strip())
        if seen == names:
            break
    assert seen == names
    node.kubectl("scale", "deployment", "web", "--replicas=2")
    wait_until(lambda: _ready_endpoints(node, 2), timeout=90, what="back to 2 endpoints")


def test_top_and_hpa_on_a_cpu_burner(node: CloudletProcess) -> None:
    def burner_pods() -> list[str]:
        return [p["metadata"]["name"] for p in _json(node, "get", "pods", "-l", "app=burner")["items"]
                if p.get("status", {}).get("phase") == "Running"]

    first = wait_until(lambda: burner_pods(), timeout=90, what="burner running")[0]

    def cpu_millis() -> int | None:
        out = node.kubectl("top", "pod", first, "--no-headers", check=False).stdout.split()
        return int(out[1].rstrip("m")) if len(out) >= 3 and out[1].endswith("m") else None

    busy = wait_until(lambda: (m := cpu_millis()) is not None and m > 300 and m, timeout=60, what="top shows the burn")
    assert busy <= 2100  # at most the machine's two cores
    nodes = node.kubectl("top", "nodes", "--no-headers").stdout.split()
    assert nodes[0] == "cloudlet-e2e-node" and nodes[2].endswith("%")
    scrape = node.kubectl("get", "--raw", "/metrics").stdout
    assert f'container_cpu_usage_seconds_total{{container="burn",namespace="default",pod="{first}"}}' in scrape
    assert "kubelet_pod_start_duration_seconds_count" in scrape

    node.kubectl("autoscale", "deployment", "burner", "--cpu-percent=50", "--min=1", "--max=3")
    wait_until(lambda: _json(node, "get", "deployment", "burner")["spec"]["replicas"] == 3, timeout=90, what="scale up to 3")
    node.kubectl("patch", "hpa.v2.autoscaling", "burner", "--type=merge", "-p",
                 json.dumps({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}}}))
    for pod in burner_pods():
        node.kubectl("exec", pod, "--", "rm", "-f", "/tmp/burn", check=False)
    seen: list[int] = []

    def down() -> bool:
        for pod in burner_pods():  # new replicas start burning too: stop them
            node.kubectl("exec", pod, "--", "rm", "-f", "/tmp/burn", check=False)
        seen.append(_json(node, "get", "deployment", "burner")["spec"]["replicas"])
        return seen[-1] == 1

    wait_until(down, timeout=120, interval=1, what="scale down to 1")
    assert all(a >= b for a, b in zip(seen, seen[1:], strict=False)), seen
