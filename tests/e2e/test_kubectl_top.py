"""`kubectl top` through metrics.k8s.io on hollow nodes (whose usage is declared
by pod annotations — no container runs here; the node agent's real cgroup
samples are served through the same API)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.harness import CloudletProcess, wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("top"), extra_args=["--hollow-nodes", "2"])
    proc.start()
    yield proc
    proc.stop()


def test_top_pods_and_nodes(cluster: CloudletProcess) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    wait_until(lambda: cluster.kubectl("get", "pods", "-l", "app=web", "--no-headers").stdout.count("Running") == 2,
               timeout=30, what="2 running pods")
    cluster.kubectl("annotate", "pods", "-l", "app=web", "hollow.cloudlet.dev/cpu-usage=250m",
                    "hollow.cloudlet.dev/memory-usage=64Mi")

    def rows() -> list[list[str]]:
        out = cluster.kubectl("top", "pods", "-l", "app=web", "--no-headers", check=False).stdout
        return [line.split() for line in out.splitlines() if line.strip()]

    got = wait_until(lambda: (r := rows()) and all(x[1:] == ["250m", "64Mi"] for x in r) and len(r) == 2 and r,
                     timeout=20, what="top pods shows the declared usage")
    assert {r[0] for r in got} == set(cluster.kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout.replace("pod/", "").split())

    nodes = [line.split() for line in cluster.kubectl("top", "nodes", "--no-headers").stdout.splitlines()]
    assert sorted(n[0] for n in nodes) == ["hollow-node-0", "hollow-node-1"]
    assert sum(int(n[1].rstrip("m")) for n in nodes) == 500  # the two pods' cpu, wherever they landed
    assert all(n[2].endswith("%") for n in nodes)

    raw = json.loads(cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").stdout)
    assert raw["kind"] == "PodMetricsList" and len(raw["items"]) == 2
    assert raw["items"][0]["containers"][0]["usage"]["cpu"] == "250000000n"

    missing = cluster.kubectl("top", "pod", "nope", check=False)
    assert missing.returncode != 0
    gone = cluster.request("DELETE", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/x")
    assert gone[0] == 405
