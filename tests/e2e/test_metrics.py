"""`/metrics` of a real `cloudlet up`, scraped through kubectl and parsed with
prometheus_client's own text parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import CloudletProcess, wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("metrics"), extra_args=["--hollow-nodes", "1"])
    proc.start()
    yield proc
    proc.stop()


def scrape(c: CloudletProcess) -> dict[str, list]:
    text = c.kubectl("get", "--raw", "/metrics").stdout
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        out.setdefault(fam.name, []).extend(fam.samples)
    return out


def test_metrics_parse_and_count_requests(cluster: CloudletProcess) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    cluster.kubectl("get", "pods")
    cluster.kubectl("get", "pods")
    cluster.kubectl("get", "pod", "nope", check=False)
    fams = wait_until(lambda: (f := scrape(cluster)) and any(
        s.labels.get("deployment") == "web" and s.value == 2 for s in f.get("kube_deployment_status_replicas_available", [])) and f,
        timeout=30, what="2 available replicas in kube-state metrics")

    lists = [s for s in fams["apiserver_request"] if s.name == "apiserver_request_total"
             and s.labels["verb"] == "LIST" and s.labels["resource"] == "pods" and s.labels["code"] == "200"]
    assert lists and sum(s.value for s in lists) >= 2
    not_found = [s for s in fams["apiserver_request"] if s.name == "apiserver_request_total"
                 and s.labels["verb"] == "GET" and s.labels["resource"] == "pods" and s.labels["code"] == "404"]
    assert not_found and not_found[0].labels["scope"] == "resource"
    created = [s for s in fams["apiserver_request"] if s.labels.get("verb") == "POST" and s.labels["resource"] == "deployments"
               and s.labels["group"] == "apps" and s.labels["code"] == "201"]
    assert created
    buckets = [s for s in fams["apiserver_request_duration_seconds"] if s.name.endswith("_count") and s.labels["verb"] == "LIST"]
    assert buckets and all(s.value >= 1 for s in buckets)
    assert "apiserver_longrunning_requests" in fams

    storage = {s.labels["resource"]: s.value for s in fams["apiserver_storage_objects"]}
    assert storage["namespaces"] >= 4 and storage["deployments.apps"] == 1 and storage["pods"] == 2
    running = [s for s in fams["kube_pod_status_phase"] if s.labels["phase"] == "Running" and s.value == 1]
    assert len(running) == 2
    ready = [s for s in fams["kube_node_status_condition"] if s.labels["condition"] == "Ready" and s.labels["status"] == "true"]
    assert [s.value for s in ready] == [1.0]

    depth = {s.labels["name"] for s in fams["workqueue_depth"]}
    assert {"replicaset", "deployment"} <= depth
    adds = {s.labels["name"]: s.value for s in fams["workqueue_adds"] if s.name == "workqueue_adds_total"}
    assert adds["deployment"] >= 1 and adds["replicaset"] >= 1
    commits = [s for s in fams["cloudlet_store_commit_duration_seconds"] if s.name.endswith("_count")]
    assert commits and commits[0].value >= 1
    attempts = {s.labels["result"]: s.value for s in fams["scheduler_schedule_attempts"] if s.name.endswith("_total")}
    assert attempts.get("scheduled", 0) >= 2  # the two pods
    latency = [s for s in fams["scheduler_scheduling_attempt_duration_seconds"]
               if s.name.endswith("_count") and s.labels["result"] == "scheduled"]
    assert latency and latency[0].value >= 2
    pending = {s.labels["queue"]: s.value for s in fams["scheduler_pending_pods"]}
    assert set(pending) >= {"active", "backoff", "unschedulable"}


def test_metrics_need_a_token(cluster: CloudletProcess) -> None:
    status, _ = cluster.request("GET", "/metrics", auth=False)
    assert status == 401
