"""Services get Endpoints and EndpointSlices from ready pods: `cloudlet up --hollow-nodes 2`
and the real kubectl (hollow nodes report pods Running and Ready with a pod IP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("endpoints"), extra_args=["--hollow-nodes", "2"])
    proc.start()
    yield proc
    proc.stop()


def _json(c: CloudletProcess, *args: str) -> Any:
    return json.loads(c.kubectl(*args, "-o", "json").stdout)


def test_deployment_exposed_gets_endpoints_and_slices(cluster: CloudletProcess) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=8080")
    cluster.kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080")

    def three_addresses() -> Any:
        ep = _json(cluster, "get", "endpoints", "web")
        addrs = [a for s in ep.get("subsets") or () for a in s.get("addresses") or ()]
        return ep if len(addrs) == 3 else None

    ep = wait_until(three_addresses, timeout=30, what="3 ready addresses")
    pods = _json(cluster, "get", "pods", "-l", "app=web")["items"]
    assert sorted(a["ip"] for a in ep["subsets"][0]["addresses"]) == sorted(p["status"]["podIP"] for p in pods)
    assert ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]

    slices = _json(cluster, "get", "endpointslices", "-l", "kubernetes.io/service-name=web")["items"]
    assert len(slices) == 1 and len(slices[0]["endpoints"]) == 3
    assert all(e["conditions"]["ready"] for e in slices[0]["endpoints"])

    line = cluster.kubectl("get", "endpoints", "web", "--no-headers").stdout.split()
    assert line[0] == "web" and line[1].count(":8080") == 3

    # scale down: the endpoints follow
    cluster.kubectl("scale", "deployment", "web", "--replicas=1")
    wait_until(lambda: len([a for s in _json(cluster, "get", "endpoints", "web").get("subsets") or ()
                            for a in s.get("addresses") or ()]) == 1, timeout=30, what="1 address")
    wait_until(lambda: sum(len(s.get("endpoints") or []) for s in _json(
        cluster, "get", "endpointslices", "-l", "kubernetes.io/service-name=web")["items"]) == 1, timeout=30, what="1 endpoint")

    # deleting the Service removes both
    cluster.kubectl("delete", "service", "web")
    wait_until(lambda: cluster.kubectl("get", "endpoints", "web", check=False).returncode != 0, timeout=30, what="endpoints gone")
    wait_until(lambda: not _json(cluster, "get", "endpointslices", "-l", "kubernetes.io/service-name=web")["items"],
               timeout=30, what="slices gone")
