"""The official kubernetes Python client against a real cloudlet."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.e2e.harness import CloudletProcess

# API semantics: no workload controller writes these objects behind the test's back
CLOUDLET_CONTROLLERS = "*,-deployment,-replicaset"

NS = "default"


def cm(name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": {"k": "v"} if data is None else data}


def deployment(name: str, replicas: int = 2, **container: Any) -> dict:
    c = {"name": "web", "image": "busybox:1.36", **container}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c]}}},
    }


def pod(name: str, node: str = "", labels: dict[str, str] | None = None, containers: list[dict] | None = None) -> dict:
    spec: dict = {"containers": containers or [{"name": "c", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def status_of(e: ApiException) -> dict:
    return json.loads(e.body)


def ensure_ns(core, name: str) -> None:
    try:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiException as e:
        assert e.status == 409


# --- CRUD --------------------------------------------------------------------


def test_core_crud(core) -> None:
    created = core.create_namespaced_config_map(NS, cm("crud", data={"a": "1"}))
    assert created.metadata.name == "crud"
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    rv1 = int(created.metadata.resource_version)
    got = core.read_namespaced_config_map("crud", NS)
    assert got.data == {"a": "1"} and got.metadata.uid == created.metadata.uid
    got.data["b"] = "2"
    updated = core.replace_namespaced_config_map("crud", NS, got)
    assert updated.data == {"a": "1", "b": "2"}
    assert int(updated.metadata.resource_version) > rv1
    patched = core.patch_namespaced_config_map("crud", NS, {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    names = [i.metadata.name for i in core.list_namespaced_config_map(NS).items]
    assert "crud" in names
    st = core.delete_namespaced_config_map("crud", NS)  # typed `object` in the client: a dict
    assert st["kind"] == "Status" and st["status"] == "Success"
    assert st["details"]["name"] == "crud" and st["details"]["kind"] == "configmaps"
    assert st["details"]["uid"] == created.metadata.uid
    with pytest.raises(ApiException) as ei:
        core.read_namespaced_config_map("crud", NS)
    assert ei.value.status == 404


def test_apps_crud(apps) -> None:
    d = apps.create_namespaced_deployment(NS, deployment("apps-crud"))
    assert d.spec.replicas == 2
    assert d.spec.strategy.type == "RollingUpdate"  # defaulted
    assert d.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert d.spec.revision_history_limit == 10 and d.spec.progress_deadline_seconds == 600
    assert d.metadata.generation == 1
    d.spec.template.spec.containers[0].image = "busybox:1.37"
    d2 = apps.replace_namespaced_deployment("apps-crud", NS, d)
    assert d2.spec.template.spec.containers[0].image == "busybox:1.37"
    assert d2.metadata.generation == 2
    lst = apps.list_deployment_for_all_namespaces()
    assert "apps-crud" in [x.metadata.name for x in lst.items]
    apps.delete_namespaced_deployment("apps-crud", NS)
    with pytest.raises(ApiException) as ei:
        apps.read_namespaced_deployment("apps-crud", NS)
    assert ei.value.status == 404


def test_cluster_scoped_crud(core, k8s) -> None:
    sched = client.SchedulingV1Api(k8s)
    pc = sched.create_priority_class({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                      "metadata": {"name": "py-high"}, "value": 1000})
    assert pc.value == 1000 and pc.metadata.namespace is None
    assert pc.preemption_policy == "PreemptLowerPriority"
    with pytest.raises(ApiException) as ei:  # value is immutable
        sched.patch_priority_class("py-high", {"value": 5})
    assert ei.value.status == 422
    sched.delete_priority_class("py-high")
    ns = core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "py-ns"}})
    assert ns.status.phase == "Active"
    assert "kubernetes" in ns.spec.finalizers
    assert ns.metadata.labels.get("kubernetes.io/metadata.name") == "py-ns"


# --- selectors ---------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled(core) -> str:
    ns = "selectors"
    ensure_ns(core, ns)
    specs = {
        "s-prod-web": {"env": "prod", "tier": "web"},
        "s-prod-db": {"env": "prod", "tier": "db"},
        "s-stage-web": {"env": "staging", "tier": "web", "legacy": "true"},
        "s-dev": {"env": "dev"},
        "s-none": {},
    }
    for name, labels in specs.items():
        core.create_namespaced_config_map(ns, cm(name, labels))
    return ns


def _names(lst: Any) -> list[str]:
    return sorted(i.metadata.name for i in lst.items)


@pytest.mark.parametrize("selector,want", [
    ("env=prod", ["s-prod-db", "s-prod-web"]),
    ("env==prod,tier=web", ["s-prod-web"]),
    ("env!=prod", ["s-dev", "s-none", "s-stage-web"]),
    ("env in (prod,staging)", ["s-prod-db", "s-prod-web", "s-stage-web"]),
    ("env in (prod,staging),tier notin (db)", ["s-prod-web", "s-stage-web"]),
    ("tier", ["s-prod-db", "s-prod-web", "s-stage-web"]),
    ("!tier", ["s-dev", "s-none"]),
    ("!legacy,tier=web", ["s-prod-web"]),
    ("env notin (prod)", ["s-dev", "s-none", "s-stage-web"]),
])
def test_label_selectors(core, labelled: str, selector: str, want: list[str]) -> None:
    assert _names(core.list_namespaced_config_map(labelled, label_selector=selector)) == want


def test_bad_label_selector_is_400(core, labelled: str) -> None:
    with pytest.raises(ApiException) as ei:
        core.list_namespaced_config_map(labelled, label_selector="env in prod")
    assert ei.value.status == 400
    assert status_of(ei.value)["reason"] == "BadRequest"


def test_field_selectors(core, labelled: str) -> None:
    assert _names(core.list_namespaced_config_map(labelled, field_selector="metadata.name=s-dev")) == ["s-dev"]
    assert "s-dev" not in _names(core.list_namespaced_config_map(labelled, field_selector="metadata.name!=s-dev"))
    all_ns = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={labelled}")
    assert len(all_ns.items) == 5
    both = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={labelled},metadata.name=s-dev",
                                                   label_selector="env=dev")
    assert _names(both) == ["s-dev"]
    with pytest.raises(ApiException) as ei:
        core.list_namespaced_config_map(labelled, field_selector="data.k=v")
    assert ei.value.status == 400
    assert 'field label not supported: data.k' in status_of(ei.value)["message"]


def test_pod_field_selectors(core) -> None:
    ns = "podfields"
    ensure_ns(core, ns)
    core.create_namespaced_pod(ns, pod("on-n1", node="n1"))
    core.create_namespaced_pod(ns, pod("on-n2", node="n2"))
    core.create_namespaced_pod(ns, pod("pending"))
    running = core.read_namespaced_pod("on-n2", ns)
    core.patch_namespaced_pod_status("on-n2", ns, {"status": {"phase": "Running"}})
    assert running.status.phase == "Pending"
    assert _names(core.list_namespaced_pod(ns, field_selector="spec.nodeName=n1")) == ["on-n1"]
    assert _names(core.list_namespaced_pod(ns, field_selector="spec.nodeName=")) == ["pending"]
    assert _names(core.list_namespaced_pod(ns, field_selector="status.phase=Running")) == ["on-n2"]
    assert _names(core.list_namespaced_pod(ns, field_selector="status.phase!=Running")) == ["on-n1", "pending"]
    assert _names(core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName=n2,metadata.namespace={ns}")) == ["on-n2"]


# --- paging ------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(core) -> str:
    ns = "paging"
    ensure_ns(core, ns)
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: core.create_namespaced_config_map(ns, cm(f"page-{i:03d}", {"odd": str(i % 2)})), range(120)))
    return ns


def test_paging(core, many: str) -> None:
    seen: list[str] = []
    cont = None
    pages = []
    while True:
        page = core.list_namespaced_config_map(many, limit=50, _continue=cont)
        pages.append(page)
        seen += [i.metadata.name for i in page.items]
        cont = page.metadata._continue
        if not cont:
            break
    assert [len(p.items) for p in pages] == [50, 50, 20]
    assert pages[0].metadata.remaining_item_count == 70
    assert pages[-1].metadata.remaining_item_count is None
    assert len(seen) == len(set(seen)) == 120
    assert seen == sorted(f"page-{i:03d}" for i in range(120))
    assert len({p.metadata.resource_version for p in pages}) == 1, "every page is served at the first page's revision"


def test_paging_remaining_item_count_on_continued_pages(core, many: str) -> None:
    first = core.list_namespaced_config_map(many, limit=50)
    second = core.list_namespaced_config_map(many, limit=50, _continue=first.metadata._continue)
    assert second.metadata._continue
    assert second.metadata.remaining_item_count == 20


def test_paging_is_consistent_snapshot(core, many: str) -> None:
    first = core.list_namespaced_config_map(many, limit=10)
    core.create_namespaced_config_map(many, cm("page-zzz-late"))
    rest: list[str] = []
    cont = first.metadata._continue
    while cont:
        page = core.list_namespaced_config_map(many, limit=40, _continue=cont)
        rest += [i.metadata.name for i in page.items]
        cont = page.metadata._continue
    names = [i.metadata.name for i in first.items] + rest
    core.delete_namespaced_config_map("page-zzz-late", many)
    # Kubernetes serves every page at the first page's resourceVersion: a later create is not in it
    assert "page-zzz-late" not in names
    assert len(names) == 120


def test_paging_with_label_selector(core, many: str) -> None:
    seen: list[str] = []
    cont = None
    while True:
        page = core.list_namespaced_config_map(many, limit=25, _continue=cont, label_selector="odd=1")
        assert len(page.items) <= 25
        seen += [i.metadata.name for i in page.items]
        cont = page.metadata._continue
        if not cont:
            break
    assert len(seen) == len(set(seen)) == 60
    assert all(int(n[-3:]) % 2 == 1 for n in seen)


def test_bad_continue_token(core, many: str) -> None:
    with pytest.raises(ApiException) as ei:
        core.list_namespaced_config_map(many, limit=5, _continue="not-a-token")
    assert ei.value.status == 400


# --- watch -------------------------------------------------------------------


def test_watch_from_resource_version(core) -> None:
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, cm("watched", data={"a": "1"}))
    core.patch_namespaced_config_map("watched", NS, {"data": {"a": "2"}})
    core.create_namespaced_config_map(NS, cm("watched-other"))
    core.delete_namespaced_config_map("watched", NS)
    w = watch.Watch()
    events: list[tuple[str, str, dict]] = []
    for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=10):
        events.append((ev["type"], ev["object"].metadata.name, ev["object"].data))
        if ev["type"] == "DELETED":
            w.stop()
    assert events == [
        ("ADDED", "watched", {"a": "1"}),
        ("MODIFIED", "watched", {"a": "2"}),
        ("ADDED", "watched-other", {"k": "v"}),
        ("DELETED", "watched", {"a": "2"}),
    ]


def test_watch_live_events_and_resource_versions_increase(core) -> None:
    import threading

    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    got: list[tuple[str, str, int]] = []
    done = threading.Event()
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=10,
                           label_selector="live=yes"):
            got.append((ev["type"], ev["object"].metadata.name, int(ev["object"].metadata.resource_version)))
            if len(got) == 3:
                w.stop()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    core.create_namespaced_config_map(NS, cm("live-1", {"live": "yes"}))
    core.create_namespaced_config_map(NS, cm("live-no", {"live": "no"}))
    core.patch_namespaced_config_map("live-1", NS, {"metadata": {"labels": {"live": "no"}}})  # leaves the selection
    core.patch_namespaced_config_map("live-no", NS, {"metadata": {"labels": {"live": "yes"}}})  # enters it
    assert done.wait(10), got
    assert [(t, n) for t, n, _ in got] == [("ADDED", "live-1"), ("DELETED", "live-1"), ("ADDED", "live-no")]
    revs = [r for _, _, r in got]
    assert revs == sorted(revs) and len(set(revs)) == 3


def test_watch_bookmarks_with_initial_events(core) -> None:
    core.create_namespaced_config_map(NS, cm("bm-initial"))
    w = watch.Watch()
    types: list[str] = []
    added: list[str] = []
    bookmark = None
    for ev in w.stream(core.list_namespaced_config_map, NS, allow_watch_bookmarks=True, send_initial_events=True,
                       resource_version_match="NotOlderThan", resource_version="", timeout_seconds=10):
        types.append(ev["type"])
        if ev["type"] == "ADDED":
            added.append(ev["object"].metadata.name)
        if ev["type"] == "BOOKMARK":
            bookmark = ev["raw_object"]
            w.stop()
    assert bookmark is not None, types
    assert set(types[:-1]) == {"ADDED"} and "bm-initial" in added
    assert bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(core.read_namespaced_config_map("bm-initial", NS).metadata.resource_version)


def test_watch_periodic_bookmark(core) -> None:
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    w = watch.Watch()
    t0 = time.monotonic()
    bookmark = None
    for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, allow_watch_bookmarks=True,
                       timeout_seconds=15):
        if ev["type"] == "BOOKMARK":
            bookmark = ev["raw_object"]
            w.stop()
    assert bookmark is not None
    assert time.monotonic() - t0 < 14
    assert bookmark["kind"] == "ConfigMap"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(rv)


def test_watch_timeout_ends_stream(core) -> None:
    t0 = time.monotonic()
    list(watch.Watch().stream(core.list_namespaced_config_map, "kube-public", timeout_seconds=1))
    assert time.monotonic() - t0 < 5


# --- status and scale subresources --------------------------------------------


def test_status_subresource(apps) -> None:
    d = apps.create_namespaced_deployment(NS, deployment("st"))
    assert d.status is None or not d.status.replicas
    body = {"status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 1}}
    s = apps.patch_namespaced_deployment_status("st", NS, body)
    assert s.status.replicas == 2 and s.status.ready_replicas == 1
    assert s.metadata.generation == 1
    got = apps.read_namespaced_deployment_status("st", NS)
    assert got.status.replicas == 2
    # a spec change through /status is ignored
    got.spec.replicas = 7
    got.status.replicas = 3
    r = apps.replace_namespaced_deployment_status("st", NS, got)
    assert r.status.replicas == 3 and r.spec.replicas == 2
    # a status change through the main resource is ignored
    main = apps.read_namespaced_deployment("st", NS)
    main.status.replicas = 9
    main.spec.replicas = 4
    m = apps.replace_namespaced_deployment("st", NS, main)
    assert m.spec.replicas == 4 and m.status.replicas == 3
    m2 = apps.patch_namespaced_deployment("st", NS, {"status": {"replicas": 11}})
    assert m2.status.replicas == 3
    # status writes never bump generation; spec writes do
    assert m.metadata.generation == 2


def test_pod_status_subresource(core) -> None:
    core.create_namespaced_pod(NS, pod("stpod"))
    p = core.patch_namespaced_pod_status("stpod", NS, {"status": {"phase": "Running", "podIP": "10.0.0.9"}})
    assert p.status.phase == "Running" and p.status.pod_ip == "10.0.0.9"
    p2 = core.patch_namespaced_pod("stpod", NS, {"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}})
    assert p2.status.phase == "Running" and p2.metadata.labels == {"x": "y"}


def test_scale_subresource(apps) -> None:
    apps.create_namespaced_deployment(NS, deployment("sc", replicas=2))
    s = apps.read_namespaced_deployment_scale("sc", NS)
    assert s.kind == "Scale" and s.spec.replicas == 2
    assert s.status.selector == "app=sc"
    s2 = apps.patch_namespaced_deployment_scale("sc", NS, {"spec": {"replicas": 5}})
    assert s2.spec.replicas == 5
    assert apps.read_namespaced_deployment("sc", NS).spec.replicas == 5
    s2.spec.replicas = 1
    s3 = apps.replace_namespaced_deployment_scale("sc", NS, s2)
    assert s3.spec.replicas == 1
    # stale resourceVersion on a scale update: Conflict
    s2.spec.replicas = 3
    with pytest.raises(ApiException) as ei:
        apps.replace_namespaced_deployment_scale("sc", NS, s2)
    assert ei.value.status == 409
    with pytest.raises(ApiException) as ei:
        apps.patch_namespaced_deployment_scale("sc", NS, {"spec": {"replicas": -1}})
    assert ei.value.status == 422



def test_replicaset_scale_subresource(apps) -> None:
    rs = deployment("sc-rs", replicas=1)
    rs["kind"] = "ReplicaSet"
    apps.create_namespaced_replica_set(NS, rs)
    s = apps.read_namespaced_replica_set_scale("sc-rs", NS)
    assert s.spec.replicas == 1 and s.status.selector == "app=sc-rs"
    assert apps.patch_namespaced_replica_set_scale("sc-rs", NS, {"spec": {"replicas": 4}}).spec.replicas == 4
    assert apps.read_namespaced_replica_set("sc-rs", NS).spec.replicas == 4


def test_replicaset_typed_roundtrip(apps) -> None:
    rs = deployment("typed-rs", replicas=1)
    rs["kind"] = "ReplicaSet"
    created = apps.create_namespaced_replica_set(NS, rs)
    assert created.status.replicas == 0
    assert apps.read_namespaced_replica_set("typed-rs", NS).spec.replicas == 1


# --- errors ------------------------------------------------------------------


def test_conflict_on_stale_update(core) -> None:
    core.create_namespaced_config_map(NS, cm("conflict"))
    a = core.read_namespaced_config_map("conflict", NS)
    b = core.read_namespaced_config_map("conflict", NS)
    a.data = {"writer": "a"}
    core.replace_namespaced_config_map("conflict", NS, a)
    b.data = {"writer": "b"}
    with pytest.raises(ApiException) as ei:
        core.replace_namespaced_config_map("conflict", NS, b)
    assert ei.value.status == 409
    st = status_of(ei.value)
    assert st["reason"] == "Conflict"
    assert st["message"] == ('Operation cannot be fulfilled on configmaps "conflict": the object has been modified; '
                             "please apply your changes to the latest version and try again")
    assert core.read_namespaced_config_map("conflict", NS).data == {"writer": "a"}
    # a patch carrying a stale resourceVersion conflicts too
    with pytest.raises(ApiException) as ei:
        core.patch_namespaced_config_map("conflict", NS, {"metadata": {"resourceVersion": b.metadata.resource_version},
                                                          "data": {"x": "y"}})
    assert ei.value.status == 409


def test_update_with_stale_uid_conflicts(core) -> None:
    core.create_namespaced_config_map(NS, cm("recreated", data={"gen": "1"}))
    old = core.read_namespaced_config_map("recreated", NS)
    core.delete_namespaced_config_map("recreated", NS)
    core.create_namespaced_config_map(NS, cm("recreated", data={"gen": "2"}))
    old.metadata.resource_version = None  # an unconditional update, but of the object that is gone
    old.data = {"gen": "stale"}
    with pytest.raises(ApiException) as ei:
        core.replace_namespaced_config_map("recreated", NS, old)
    assert ei.value.status == 409
    assert "Precondition failed: UID in precondition" in status_of(ei.value)["message"]
    assert core.read_namespaced_config_map("recreated", NS).data == {"gen": "2"}


def test_already_exists(core) -> None:
    core.create_namespaced_config_map(NS, cm("dup"))
    with pytest.raises(ApiException) as ei:
        core.create_namespaced_config_map(NS, cm("dup"))
    assert ei.value.status == 409
    st = status_of(ei.value)
    assert st["reason"] == "AlreadyExists"
    assert st["message"] == 'configmaps "dup" already exists'
    assert st["details"] == {"name": "dup", "kind": "configmaps"}


def test_not_found(core, apps) -> None:
    with pytest.raises(ApiException) as ei:
        apps.read_namespaced_deployment("missing", NS)
    assert ei.value.status == 404
    st = status_of(ei.value)
    assert st["reason"] == "NotFound"
    assert st["message"] == 'deployments.apps "missing" not found'
    assert st["details"] == {"name": "missing", "group": "apps", "kind": "deployments"}
    with pytest.raises(ApiException) as ei:
        core.delete_namespaced_config_map("missing", NS)
    assert ei.value.status == 404
    with pytest.raises(ApiException) as ei:
        core.patch_namespaced_config_map("missing", NS, {"data": {}})
    assert ei.value.status == 404
    with pytest.raises(ApiException) as ei:
        core.replace_namespaced_config_map("missing", NS, cm("missing"))
    assert ei.value.status == 404


def _invalid(fn, *args) -> dict:
    with pytest.raises(ApiException) as ei:
        fn(*args)
    assert ei.value.status == 422, ei.value.body
    st = status_of(ei.value)
    assert st["reason"] == "Invalid" and st["status"] == "Failure" and st["code"] == 422
    return st


def _cause(st: dict, field: str) -> dict:
    causes = {c["field"]: c for c in st["details"]["causes"]}
    assert field in causes, st
    return causes[field]


def test_invalid_name(core) -> None:
    st = _invalid(core.create_namespaced_config_map, NS, cm("Bad_Name"))
    c = _cause(st, "metadata.name")
    assert c["reason"] == "FieldValueInvalid"
    assert 'Invalid value: "Bad_Name"' in c["message"]
    assert st["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    assert st["details"]["name"] == "Bad_Name" and st["details"]["kind"] == "ConfigMap"


def test_invalid_missing_image(apps) -> None:
    d = deployment("noimg")
    del d["spec"]["template"]["spec"]["containers"][0]["image"]
    st = _invalid(apps.create_namespaced_deployment, NS, d)
    c = _cause(st, "spec.template.spec.containers[0].image")
    assert c["reason"] == "FieldValueRequired" and c["message"] == "Required value"


def test_invalid_duplicate_container_names(core) -> None:
    st = _invalid(core.create_namespaced_pod, NS, pod("dupc", containers=[
        {"name": "same", "image": "busybox:1.36"}, {"name": "same", "image": "busybox:1.36"}]))
    c = _cause(st, "spec.containers[1].name")
    assert c["reason"] == "FieldValueDuplicate" and c["message"] == 'Duplicate value: "same"'


def test_invalid_quantity(core) -> None:
    st = _invalid(core.create_namespaced_pod, NS, pod("badq", containers=[
        {"name": "c", "image": "busybox:1.36", "resources": {"limits": {"cpu": "12xyz"}}}]))
    c = _cause(st, "spec.containers[0].resources.limits[cpu]")
    assert "quantities must match the regular expression" in c["message"]


def test_invalid_port(core) -> None:
    st = _invalid(core.create_namespaced_pod, NS, pod("badport", containers=[
        {"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 70000}]}]))
    c = _cause(st, "spec.containers[0].ports[0].containerPort")
    assert c["message"] == "Invalid value: 70000: must be between 1 and 65535, inclusive"


def test_invalid_multiple_causes(core) -> None:
    st = _invalid(core.create_namespaced_pod, NS, pod("multi", containers=[
        {"name": "c", "ports": [{"containerPort": 0}]}]))
    fields = {c["field"] for c in st["details"]["causes"]}
    assert {"spec.containers[0].image", "spec.containers[0].ports[0].containerPort"} <= fields


def test_invalid_objects_not_stored(core) -> None:
    for name in ("badq", "badport", "dupc", "multi"):
        with pytest.raises(ApiException) as ei:
            core.read_namespaced_pod(name, NS)
        assert ei.value.status == 404


def test_immutable_selector(apps) -> None:
    apps.create_namespaced_deployment(NS, deployment("immut"))
    body = deployment("immut")
    body["spec"]["selector"] = {"matchLabels": {"app": "immut", "extra": "x"}}
    body["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    st = _invalid(apps.patch_namespaced_deployment, "immut", NS, {"spec": {
        "selector": body["spec"]["selector"], "template": {"metadata": {"labels": body["spec"]["template"]["metadata"]["labels"]}}}})
    c = _cause(st, "spec.selector")
    assert "field is immutable" in c["message"]
    assert apps.read_namespaced_deployment("immut", NS).spec.selector.match_labels == {"app": "immut"}


def test_selector_must_match_template(apps) -> None:
    d = deployment("mismatch")
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    st = _invalid(apps.create_namespaced_deployment, NS, d)
    c = _cause(st, "spec.template.metadata.labels")
    assert "`selector` does not match template `labels`" in c["message"]


# --- server-set metadata -------------------------------------------------------


def test_generation_moves_only_on_spec_change(apps) -> None:
    d = apps.create_namespaced_deployment(NS, deployment("gen"))
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("gen", NS, {"metadata": {"labels": {"x": "1"}, "annotations": {"a": "b"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("gen", NS, {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2
    d = apps.patch_namespaced_deployment("gen", NS, {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2
    d = apps.patch_namespaced_deployment("gen", NS, {"metadata": {"generation": 40}})
    assert d.metadata.generation == 2
    rv = d.metadata.resource_version
    d = apps.patch_namespaced_deployment("gen", NS, {"metadata": {"labels": {"x": "1"}}})
    assert d.metadata.resource_version == rv, "a no-op patch writes nothing"


def test_server_sets_uid_and_creation_timestamp(core) -> None:
    body = cm("meta-set")
    body["metadata"].update({"uid": "00000000-0000-0000-0000-000000000000",
                             "creationTimestamp": "2001-01-01T00:00:00Z"})
    c = core.create_namespaced_config_map(NS, body)
    assert c.metadata.uid != "00000000-0000-0000-0000-000000000000"
    assert c.metadata.creation_timestamp.year >= 2024
    c2 = core.patch_namespaced_config_map("meta-set", NS, {"metadata": {"creationTimestamp": "2001-01-01T00:00:00Z"}})
    assert c2.metadata.creation_timestamp == c.metadata.creation_timestamp


def test_generate_name(core) -> None:
    body = cm("")
    body["metadata"] = {"generateName": "gen-"}
    a = core.create_namespaced_config_map(NS, body)
    b = core.create_namespaced_config_map(NS, body)
    assert a.metadata.name.startswith("gen-") and len(a.metadata.name) == len("gen-") + 5
    assert a.metadata.name != b.metadata.name


def test_dry_run(core) -> None:
    out = core.create_namespaced_config_map(NS, cm("dry"), dry_run="All")
    assert out.metadata.name == "dry"
    with pytest.raises(ApiException) as ei:
        core.read_namespaced_config_map("dry", NS)
    assert ei.value.status == 404


def test_delete_collection(core) -> None:
    ns = "delcol"
    ensure_ns(core, ns)
    for i in range(5):
        core.create_namespaced_config_map(ns, cm(f"dc-{i}", {"grp": "a" if i < 3 else "b"}))
    core.delete_collection_namespaced_config_map(ns, label_selector="grp=a")
    assert _names(core.list_namespaced_config_map(ns)) == ["dc-3", "dc-4"]
    core.delete_collection_namespaced_config_map(ns)
    assert _names(core.list_namespaced_config_map(ns)) == []


def test_delete_preconditions(core) -> None:
    c = core.create_namespaced_config_map(NS, cm("precond"))
    with pytest.raises(ApiException) as ei:
        core.delete_namespaced_config_map("precond", NS, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="wrong-uid")))
    assert ei.value.status == 409
    with pytest.raises(ApiException) as ei:
        core.delete_namespaced_config_map("precond", NS, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version="1")))
    assert ei.value.status == 409
    core.delete_namespaced_config_map("precond", NS, body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=c.metadata.uid)))


def test_concurrent_patches_all_land(core) -> None:
    core.create_namespaced_config_map(NS, cm("contended", data={}))
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: core.patch_namespaced_config_map("contended", NS, {"data": {f"k{i}": str(i)}}), range(40)))
    assert core.read_namespaced_config_map("contended", NS).data == {f"k{i}": str(i) for i in range(40)}


def test_discovery_via_client(k8s) -> None:
    groups = {g.name for g in client.ApisApi(k8s).get_api_versions().groups}
    assert {"apps", "autoscaling", "scheduling.k8s.io"} <= groups
    res = client.CoreV1Api(k8s).get_api_resources()
    pods = next(r for r in res.resources if r.name == "pods")
    assert pods.namespaced and "po" in pods.short_names and "watch" in pods.verbs
    assert any(r.name == "pods/status" for r in res.resources)
    v = client.VersionApi(k8s).get_code()
    assert v.major == "1"


def test_cloudlet_fixture_is_live(cloudlet: CloudletProcess) -> None:
    assert cloudlet.alive()
