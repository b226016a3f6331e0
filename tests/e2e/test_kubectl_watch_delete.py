"""kubectl get -w, and deletion: propagation policies, finalizers, grace periods,
collections and namespaces."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator

import pytest

from tests.e2e.harness import CloudletProcess, KubectlStream, wait_until

# API semantics: no workload controller writes these objects behind the test's back
CLOUDLET_CONTROLLERS = "*,-deployment,-replicaset"


def get(kubectl, *args: str) -> dict | None:
    p = kubectl("get", *args, "-o", "json", check=False)
    if p.returncode != 0:
        assert "NotFound" in p.stderr, p.stderr
        return None
    return json.loads(p.stdout)


def apply(kubectl, doc: str, ns: str | None = None) -> None:
    args = ["apply", "-f", "-"] + (["-n", ns] if ns else [])
    kubectl(*args, input=textwrap.dedent(doc))


def cm(name: str, labels: dict[str, str] | None = None, finalizers: list[str] | None = None,
       owners: list[dict] | None = None, data: dict[str, str] | None = None) -> str:
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    if finalizers:
        meta["finalizers"] = finalizers
    if owners:
        meta["ownerReferences"] = owners
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}})


def owner_ref(obj: dict, block: bool = True) -> dict:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "blockOwnerDeletion": block}


@pytest.fixture
def stream(cloudlet: CloudletProcess) -> Iterator:
    opened: list[KubectlStream] = []

    def start(*args: str, merge_stderr: bool = False) -> KubectlStream:
        s = KubectlStream(cloudlet, *args, merge_stderr=merge_stderr)
        opened.append(s)
        return s

    yield start
    for s in opened:
        s.close()


def words(line: str) -> list[str]:
    return re.split(r"\s+", line.strip())


def test_get_watch_events(kubectl, stream) -> None:
    kubectl("apply", "-f", "-", input=cm("watch-sentinel"))
    w = stream("get", "cm", "-w", "--output-watch-events")
    w.wait_line(lambda line: words(line)[:2] == ["ADDED", "watch-sentinel"])  # initial list done: watching
    kubectl("apply", "-f", "-", input=cm("watched", data={"a": "1"}))
    assert words(w.wait_line(lambda line: "watched" in line))[:3] == ["ADDED", "watched", "1"]
    kubectl("patch", "cm", "watched", "-p", '{"data":{"b":"2"}}')
    assert words(w.wait_line(lambda line: "watched" in line))[:3] == ["MODIFIED", "watched", "2"]
    kubectl("delete", "cm", "watched")
    assert words(w.wait_line(lambda line: "watched" in line))[:2] == ["DELETED", "watched"]


def test_get_watch_label_selector_leaving(kubectl, stream) -> None:
    kubectl("apply", "-f", "-", input=cm("sel-a", labels={"grp": "a"}))
    w = stream("get", "cm", "-l", "grp=a", "-w", "--output-watch-events")
    w.wait_line(lambda line: words(line)[:2] == ["ADDED", "sel-a"])
    kubectl("apply", "-f", "-", input=cm("sel-b", labels={"grp": "b"}))  # never in the selection
    kubectl("apply", "-f", "-", input=cm("sel-c", labels={"grp": "b"}))
    kubectl("label", "cm", "sel-c", "grp=a", "--overwrite")  # enters the selection
    assert words(w.wait_line(lambda line: "sel-c" in line))[:2] == ["ADDED", "sel-c"]
    kubectl("label", "cm", "sel-a", "grp=b", "--overwrite")  # leaves the selection
    assert words(w.wait_line(lambda line: "sel-a" in line))[:2] == ["DELETED", "sel-a"]
    kubectl("delete", "cm", "sel-a")  # no longer selected: no event
    kubectl("delete", "cm", "sel-c")
    assert words(w.wait_line(lambda line: "sel-c" in line))[:2] == ["DELETED", "sel-c"]
    assert not any("sel-b" in line for line in w.lines), w.lines
    assert not any("sel-a" in line for line in w.lines), w.lines


def test_get_watch_json_output(kubectl, stream) -> None:
    w = stream("get", "cm", "-w", "-o", "json", "--output-watch-events", "--watch-only")
    # --watch-only prints nothing until a change: retry a change until the watch is seen to be open
    n = 0

    def seen() -> dict | None:
        nonlocal n
        n += 1
        kubectl("apply", "-f", "-", input=cm("json-watched", data={"n": str(n)}))
        try:
            return json.loads(w.wait_line(lambda line: "json-watched" in line, timeout=0.5))
        except AssertionError:
            return None

    ev = wait_until(seen, timeout=10)
    assert ev["type"] in ("ADDED", "MODIFIED")
    assert ev["object"]["kind"] == "ConfigMap" and ev["object"]["metadata"]["name"] == "json-watched"
    kubectl("delete", "cm", "json-watched")
    ev = json.loads(w.wait_line(lambda line: '"DELETED"' in line))
    assert ev["type"] == "DELETED" and ev["object"]["metadata"]["name"] == "json-watched"


def test_kubectl_wait_for_delete(kubectl, stream) -> None:
    kubectl("apply", "-f", "-", input=cm("wait-gone"))
    # -v=6 logs each request: once the watch is open, the deletion cannot be missed
    w = stream("wait", "--for=delete", "cm/wait-gone", "--timeout=20s", "-v=6", merge_stderr=True)
    w.wait_line(lambda line: "watch=true" in line and "200 OK" in line)
    kubectl("delete", "cm", "wait-gone")
    assert w.wait_line(lambda line: "condition met" in line, timeout=20) == "configmap/wait-gone condition met"


def test_kubectl_wait_for_jsonpath(kubectl, stream) -> None:
    kubectl("apply", "-f", "-", input=cm("wait-value", data={"phase": "a"}))
    w = stream("wait", "--for=jsonpath={.data.phase}=b", "cm/wait-value", "--timeout=20s", "-v=6", merge_stderr=True)
    w.wait_line(lambda line: "watch=true" in line and "200 OK" in line)
    kubectl("patch", "cm", "wait-value", "-p", '{"data":{"phase":"b"}}')
    assert w.wait_line(lambda line: "condition met" in line, timeout=20) == "configmap/wait-value condition met"


def _owner_with_dependents(kubectl, owner: str, n: int = 2) -> tuple[dict, list[str]]:
    kubectl("apply", "-f", "-", input=cm(owner))
    o = get(kubectl, "cm", owner)
    assert o is not None
    names = [f"{owner}-dep{i}" for i in range(n)]
    for d in names:
        kubectl("apply", "-f", "-", input=cm(d, owners=[owner_ref(o)]))
    return o, names


def test_delete_background_cascades(kubectl) -> None:
    _, deps = _owner_with_dependents(kubectl, "bg-owner")
    out = kubectl("delete", "cm", "bg-owner", "--cascade=background").stdout
    assert out.strip() == 'configmap "bg-owner" deleted'
    assert get(kubectl, "cm", "bg-owner") is None  # the owner goes at once
    wait_until(lambda: all(get(kubectl, "cm", d) is None for d in deps), what="dependents deleted")


def test_delete_foreground_cascades(kubectl) -> None:
    _, deps = _owner_with_dependents(kubectl, "fg-owner")
    # a finalizer on one dependent holds the whole foreground deletion
    kubectl("patch", "cm", deps[0], "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("delete", "cm", "fg-owner", "--cascade=foreground", "--wait=false")
    o = get(kubectl, "cm", "fg-owner")
    assert o is not None, "foreground: the owner stays until its blocking dependents are gone"
    assert o["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in o["metadata"]["finalizers"]
    wait_until(lambda: get(kubectl, "cm", deps[1]) is None, what="unblocked dependent deleted")
    d0 = wait_until(lambda: (x := get(kubectl, "cm", deps[0])) and x["metadata"].get("deletionTimestamp") and x,
                    what="held dependent marked for deletion")
    assert d0["metadata"]["finalizers"] == ["example.com/hold"]
    assert get(kubectl, "cm", "fg-owner") is not None
    kubectl("patch", "cm", deps[0], "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    wait_until(lambda: get(kubectl, "cm", deps[0]) is None and get(kubectl, "cm", "fg-owner") is None,
               what="dependent then owner gone")


def test_delete_orphan_keeps_dependents(kubectl) -> None:
    _, deps = _owner_with_dependents(kubectl, "or-owner")
    kubectl("delete", "cm", "or-owner", "--cascade=orphan")
    assert get(kubectl, "cm", "or-owner") is None
    for d in deps:
        obj = get(kubectl, "cm", d)
        assert obj is not None, "orphaned dependents stay"
        assert not obj["metadata"].get("ownerReferences"), obj["metadata"]
        assert not obj["metadata"].get("deletionTimestamp")


def _deployment_tree(kubectl, name: str) -> tuple[str, list[str]]:
    apply(kubectl, f"""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {name}}}
    spec:
      replicas: 1
      selector: {{matchLabels: {{app: {name}}}}}
      template:
        metadata: {{labels: {{app: {name}}}}}
        spec: {{containers: [{{name: c, image: busybox:1.36}}]}}
    """)
    d = get(kubectl, "deploy", name)
    assert d is not None
    rs_name = f"{name}-rs"
    rs = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "labels": {"app": name},
                     "ownerReferences": [{**owner_ref(d), "controller": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}},
    }
    kubectl("create", "-f", "-", input=json.dumps(rs))
    rs_obj = get(kubectl, "rs", rs_name)
    assert rs_obj is not None
    pods = [f"{name}-pod{i}" for i in range(2)]
    for p in pods:
        kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p, "labels": {"app": name}, "ownerReferences": [{**owner_ref(rs_obj), "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        }))
    return rs_name, pods


@pytest.mark.parametrize("cascade", ["background", "foreground"])
def test_delete_deployment_cascades_to_replicasets_and_pods(kubectl, cascade: str) -> None:
    name = f"tree-{cascade}"
    rs, pods = _deployment_tree(kubectl, name)
    kubectl("delete", "deploy", name, f"--cascade={cascade}", "--timeout=20s")
    assert get(kubectl, "deploy", name) is None
    wait_until(lambda: get(kubectl, "rs", rs) is None, what="replicaset deleted")
    wait_until(lambda: all(get(kubectl, "pod", p) is None for p in pods), what="pods deleted")


def test_delete_deployment_orphan(kubectl) -> None:
    rs, pods = _deployment_tree(kubectl, "tree-orphan")
    kubectl("delete", "deploy", "tree-orphan", "--cascade=orphan")
    assert get(kubectl, "deploy", "tree-orphan") is None
    r = get(kubectl, "rs", rs)
    assert r is not None and not r["metadata"].get("ownerReferences")
    for p in pods:
        pod = get(kubectl, "pod", p)
        assert pod is not None
        assert [o["kind"] for o in pod["metadata"]["ownerReferences"]] == ["ReplicaSet"], "only the deleted owner's refs go"


def test_finalizer_holds_object(kubectl) -> None:
    kubectl("apply", "-f", "-", input=cm("held", finalizers=["example.com/hold"]))
    out = kubectl("delete", "cm", "held", "--wait=false").stdout
    assert 'configmap "held" deleted' in out
    obj = get(kubectl, "cm", "held")
    assert obj is not None
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == ["example.com/hold"]
    # updates other than removing finalizers still work; new finalizers cannot be added
    kubectl("patch", "cm", "held", "--type=merge", "-p", '{"data":{"still":"here"}}')
    assert get(kubectl, "cm", "held")["data"]["still"] == "here"
    p = kubectl("patch", "cm", "held", "--type=merge", "-p",
                '{"metadata":{"finalizers":["example.com/hold","example.com/other"]}}', check=False)
    assert p.returncode == 1 and "no new finalizers can be added if the object is being deleted" in p.stderr, p.stderr
    # deleting again changes nothing
    kubectl("delete", "cm", "held", "--wait=false")
    assert get(kubectl, "cm", "held")["metadata"]["deletionTimestamp"] == obj["metadata"]["deletionTimestamp"]
    kubectl("patch", "cm", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    assert get(kubectl, "cm", "held") is None


def test_grace_period_on_bound_pod(kubectl) -> None:
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "graceful"},
        "spec": {"nodeName": "node-that-never-reports", "containers": [{"name": "c", "image": "busybox:1.36"}]},
    }))
    kubectl("delete", "pod", "graceful", "--grace-period=45", "--wait=false")
    pod = get(kubectl, "pod", "graceful")
    assert pod is not None, "a pod bound to a node waits for its kubelet"
    assert pod["metadata"]["deletionTimestamp"]
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 45
    kubectl("delete", "pod", "graceful", "--grace-period=10", "--wait=false")
    assert get(kubectl, "pod", "graceful")["metadata"]["deletionGracePeriodSeconds"] == 10, "grace may only shrink"
    out = kubectl("delete", "pod", "graceful", "--grace-period=0", "--force")
    assert 'pod "graceful" force deleted' in out.stdout
    assert get(kubectl, "pod", "graceful") is None


def test_unbound_pod_deleted_immediately(kubectl) -> None:
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unbound"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }))
    kubectl("delete", "pod", "unbound", "--grace-period=30", "--wait=false")
    assert get(kubectl, "pod", "unbound") is None


def test_delete_all_in_namespace(kubectl) -> None:
    kubectl("apply", "-f", "-", input='{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"del-all"}}')
    for i in range(4):
        kubectl("apply", "-n", "del-all", "-f", "-", input=cm(f"c{i}"))
    kubectl("apply", "-f", "-", input=cm("survivor-of-delete-all"))  # other namespace: untouched
    out = kubectl("delete", "cm", "--all", "-n", "del-all").stdout
    assert sorted(out.strip().splitlines()) == [f'configmap "c{i}" deleted' for i in range(4)]
    assert kubectl("get", "cm", "-n", "del-all", "-o", "name").stdout.strip() == ""
    assert get(kubectl, "cm", "survivor-of-delete-all") is not None


def test_delete_by_label_selector(kubectl) -> None:
    for i in range(3):
        kubectl("apply", "-f", "-", input=cm(f"sel-del-{i}", labels={"x": "y" if i < 2 else "z"}))
    out = kubectl("delete", "cm", "-l", "x=y").stdout
    assert sorted(out.strip().splitlines()) == ['configmap "sel-del-0" deleted', 'configmap "sel-del-1" deleted']
    assert get(kubectl, "cm", "sel-del-2") is not None
    assert get(kubectl, "cm", "sel-del-0") is None


def test_deletecollection_api(cloudlet: CloudletProcess, kubectl) -> None:
    for i in range(3):
        kubectl("apply", "-f", "-", input=cm(f"dc-{i}", labels={"dc": "yes"}))
    kubectl("apply", "-f", "-", input=cm("dc-keep", labels={"dc": "no"}))
    code, body = cloudlet.request("DELETE", "/api/v1/namespaces/default/configmaps?labelSelector=dc%3Dyes")
    assert code == 200, body
    assert body["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["dc-0", "dc-1", "dc-2"]
    assert kubectl("get", "cm", "-l", "dc", "-o", "name").stdout.split() == ["configmap/dc-keep"]


def test_delete_missing(kubectl) -> None:
    p = kubectl("delete", "cm", "never-there", check=False)
    assert p.returncode == 1 and 'configmaps "never-there" not found' in p.stderr
    p = kubectl("delete", "cm", "never-there", "--ignore-not-found")
    assert p.returncode == 0


def test_namespace_deletion_removes_content(kubectl) -> None:
    kubectl("apply", "-f", "-", input='{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"doomed"}}')
    for i in range(3):
        kubectl("apply", "-n", "doomed", "-f", "-", input=cm(f"c{i}"))
    apply(kubectl, """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: d}
    spec:
      selector: {matchLabels: {app: d}}
      template:
        metadata: {labels: {app: d}}
        spec: {containers: [{name: c, image: busybox:1.36}]}
    """, ns="doomed")
    kubectl("create", "-n", "doomed", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}))
    out = kubectl("delete", "ns", "doomed", "--timeout=30s").stdout
    assert out.strip() == 'namespace "doomed" deleted'
    assert get(kubectl, "ns", "doomed") is None
    assert kubectl("get", "cm,deploy,pods", "-n", "doomed", "-o", "name").stdout.strip() == ""


def test_create_in_missing_namespace(cloudlet: CloudletProcess, kubectl) -> None:
    p = kubectl("apply", "-n", "no-such-ns", "-f", "-", input=cm("orphan"), check=False)
    assert p.returncode == 1
    assert 'namespaces "no-such-ns" not found' in p.stderr, p.stderr
    code, body = cloudlet.request("POST", "/api/v1/namespaces/no-such-ns/configmaps",
                                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert code == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "no-such-ns" not found'
    assert body["details"] == {"name": "no-such-ns", "kind": "namespaces"}


def test_create_in_terminating_namespace_forbidden(cloudlet: CloudletProcess, kubectl) -> None:
    kubectl("apply", "-f", "-", input='{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ending"}}')
    kubectl("apply", "-n", "ending", "-f", "-", input=cm("holder", finalizers=["example.com/hold"]))
    kubectl("delete", "ns", "ending", "--wait=false")
    ns = get(kubectl, "ns", "ending")
    assert ns is not None and ns["status"]["phase"] == "Terminating"
    assert ns["metadata"]["deletionTimestamp"]
    wait_until(lambda: (get(kubectl, "cm", "holder", "-n", "ending") or {}).get("metadata", {}).get("deletionTimestamp"),
               what="content marked for deletion")
    p = kubectl("apply", "-n", "ending", "-f", "-", input=cm("late"), check=False)
    assert p.returncode == 1
    assert "Forbidden" in p.stderr
    assert "unable to create new content in namespace ending because it is being terminated" in p.stderr
    code, body = cloudlet.request("POST", "/api/v1/namespaces/ending/configmaps",
                                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
    assert code == 403 and body["reason"] == "Forbidden"
    # the namespace reports what it is waiting for
    conds = wait_until(lambda: {c["type"]: c for c in (get(kubectl, "ns", "ending") or {}).get("status", {}).get("conditions", [])}
                       .get("NamespaceFinalizersRemaining"), what="NamespaceFinalizersRemaining condition")
    assert conds["status"] == "True"
    assert "example.com/hold" in conds["message"]
    kubectl("patch", "-n", "ending", "cm", "holder", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_until(lambda: get(kubectl, "ns", "ending") is None, timeout=15, what="namespace gone")


def test_delete_dry_run_server_keeps_object(kubectl) -> None:
    kubectl("apply", "-f", "-", input=cm("dry-delete"))
    out = kubectl("delete", "cm", "dry-delete", "--dry-run=server").stdout
    assert 'configmap "dry-delete" deleted (server dry run)' in out
    assert get(kubectl, "cm", "dry-delete") is not None, "a server dry-run delete must not delete"


@pytest.fixture
def throwaway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    """A server of its own, for tests that may wreck it when the server is wrong."""
    proc = CloudletProcess(tmp_path_factory.mktemp("cloudlet-throwaway"))
    proc.start()
    yield proc
    proc.stop()


def test_system_namespaces_cannot_be_deleted(throwaway: CloudletProcess) -> None:
    for ns in ("default", "kube-system", "kube-public"):
        p = throwaway.kubectl("delete", "ns", ns, "--wait=false", check=False)
        assert p.returncode == 1, (ns, p.stdout)
        assert f'namespaces "{ns}" is forbidden: this namespace may not be deleted' in p.stderr, p.stderr
        assert get(throwaway.kubectl, "ns", ns)["status"]["phase"] == "Active"


def test_namespace_deletecollection_not_allowed(throwaway: CloudletProcess) -> None:
    code, body = throwaway.request("DELETE", "/api/v1/namespaces")
    assert code == 405, (code, str(body)[:300])
    assert body["reason"] == "MethodNotAllowed"
    names = throwaway.kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(names)
    assert not get(throwaway.kubectl, "ns", "kube-system")["metadata"].get("deletionTimestamp")
