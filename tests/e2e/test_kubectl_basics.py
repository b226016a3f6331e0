"""The real kubectl against a real cloudlet: discovery, get/describe and output formats."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.e2e.harness import CloudletProcess

# API semantics: no workload controller writes these objects behind the test's back
CLOUDLET_CONTROLLERS = "*,-deployment,-replicaset"

OBJECTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web, tier: frontend}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports: [{containerPort: 8080}]
        env: [{name: MODE, value: fast}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-rs, labels: {app: web-rs}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web-rs}}
  template:
    metadata: {labels: {app: web-rs}}
    spec:
      containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo, tier: backend}}
spec:
  containers: [{name: main, image: busybox:1.36, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: web}}
data: {mode: fast, level: "3"}
"""


@pytest.fixture(scope="module", autouse=True)
def objects(cloudlet: CloudletProcess) -> None:
    out = cloudlet.kubectl("apply", "-f", "-", input=OBJECTS).stdout
    assert "deployment.apps/web created" in out


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_version_shows_server(kubectl) -> None:
    out = kubectl("version").stdout
    m = re.search(r"Server Version: v1\.(\d+)\.\d+", out)
    assert m, out
    assert int(m.group(1)) >= 28
    info = json.loads(kubectl("version", "-o", "json").stdout)
    assert info["serverVersion"]["major"] == "1"
    assert info["serverVersion"]["gitVersion"].startswith("v1.")


def test_api_resources_short_names(kubectl) -> None:
    out = kubectl("api-resources").stdout
    table = {r[0]: r for r in rows(out)[1:] if "metrics.k8s.io/v1beta1" not in r}  # its pods/nodes come second
    want = {
        "pods": "po", "deployments": "deploy", "replicasets": "rs", "services": "svc",
        "configmaps": "cm", "namespaces": "ns", "nodes": "no", "horizontalpodautoscalers": "hpa",
        "priorityclasses": "pc", "events": "ev", "serviceaccounts": "sa", "endpoints": "ep",
    }
    for plural, short in want.items():
        assert plural in table, f"{plural} missing from api-resources:\n{out}"
        assert short in table[plural][1].split(","), table[plural]
    assert table["namespaces"][-2] == "false"  # NAMESPACED
    assert table["pods"][-2] == "true"
    assert table["deployments"][2] == "apps/v1"


def test_api_resources_all_category(kubectl) -> None:
    names = set(kubectl("api-resources", "--categories=all", "-o", "name").stdout.split())
    for r in ("pods", "services", "deployments.apps", "replicasets.apps"):
        assert r in names, names
    assert "configmaps" not in names
    assert "secrets" not in names


def test_get_all_lists_workloads(kubectl) -> None:
    out = kubectl("get", "all").stdout
    for name in ("pod/solo", "service/web", "deployment.apps/web", "replicaset.apps/web-rs"):
        assert name in out, out
    assert "configmap" not in out


def test_short_names_resolve(kubectl) -> None:
    for short, name in (("po", "pod/solo"), ("deploy", "deployment.apps/web"), ("rs", "replicaset.apps/web-rs"),
                        ("svc", "service/web"), ("cm", "configmap/settings"), ("ns", "namespace/default")):
        assert name in kubectl("get", short, "-o", "name").stdout.split()


def test_default_namespaces_active(kubectl) -> None:
    got = {r[0]: r[1] for r in rows(kubectl("get", "ns").stdout)[1:]}
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert got.get(ns) == "Active", got
    assert rows(kubectl("get", "ns").stdout)[0] == ["NAME", "STATUS", "AGE"]


def test_builtin_priority_classes(kubectl) -> None:
    got = {r[0]: r for r in rows(kubectl("get", "pc").stdout)[1:]}
    assert got["system-cluster-critical"][1] == "2000000000"
    assert got["system-node-critical"][1] == "2000001000"
    pc = json.loads(kubectl("get", "priorityclass", "system-node-critical", "-o", "json").stdout)
    assert pc["value"] == 2000001000
    assert pc["apiVersion"] == "scheduling.k8s.io/v1"


def test_get_pods_table(kubectl) -> None:
    r = rows(kubectl("get", "pods").stdout)
    assert r[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    solo = next(x for x in r[1:] if x[0] == "solo")
    assert solo[1] == "0/1"
    assert solo[2] == "Pending"
    assert solo[3] == "0"


def test_get_pods_wide(kubectl) -> None:
    r = rows(kubectl("get", "pods", "-o", "wide").stdout)
    assert r[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    solo = next(x for x in r[1:] if x[0] == "solo")
    assert solo[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_get_deploy_wide(kubectl) -> None:
    r = rows(kubectl("get", "deploy", "web", "-o", "wide").stdout)
    assert r[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert r[1][0] == "web"
    assert r[1][1] == "0/2"
    assert r[1][5:] == ["web", "busybox:1.36", "app=web"]


def test_get_svc_and_cm_tables(kubectl) -> None:
    svc = rows(kubectl("get", "svc", "web").stdout)
    assert svc[0][:6] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1][1] == "ClusterIP"
    assert svc[1][4] == "80/TCP"
    cm = rows(kubectl("get", "cm", "settings").stdout)
    assert cm[0] == ["NAME", "DATA", "AGE"]
    assert cm[1][:2] == ["settings", "2"]


def test_output_json(kubectl) -> None:
    pod = json.loads(kubectl("get", "pod", "solo", "-o", "json").stdout)
    assert pod["kind"] == "Pod" and pod["apiVersion"] == "v1"
    assert pod["metadata"]["name"] == "solo"
    assert pod["metadata"]["namespace"] == "default"
    assert pod["spec"]["containers"][0]["command"] == ["sleep", "3600"]
    assert pod["status"]["phase"] == "Pending"
    lst = json.loads(kubectl("get", "pods", "-o", "json").stdout)
    assert lst["kind"] == "List"
    assert "solo" in [p["metadata"]["name"] for p in lst["items"]]


def test_output_yaml(kubectl) -> None:
    d = yaml.safe_load(kubectl("get", "deploy", "web", "-o", "yaml").stdout)
    assert d["kind"] == "Deployment"
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "fast"}]
    assert d["metadata"]["labels"] == {"app": "web", "tier": "frontend"}


def test_output_name(kubectl) -> None:
    assert kubectl("get", "pod", "solo", "-o", "name").stdout.strip() == "pod/solo"
    names = kubectl("get", "deploy,svc", "-o", "name").stdout.split()
    assert "deployment.apps/web" in names and "service/web" in names


def test_output_jsonpath(kubectl) -> None:
    out = kubectl("get", "pod", "solo", "-o", "jsonpath={.metadata.name}:{.status.phase}:{.spec.containers[0].image}").stdout
    assert out == "solo:Pending:busybox:1.36"
    out = kubectl("get", "cm", "settings", "-o", "jsonpath={.data.mode}").stdout
    assert out == "fast"
    out = kubectl("get", "ns", "-o", "jsonpath={range .items[*]}{.metadata.name} {end}").stdout.split()
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(out)


def test_output_custom_columns(kubectl) -> None:
    out = kubectl("get", "pods", "-o", "custom-columns=N:.metadata.name,P:.status.phase", "--no-headers").stdout
    assert ["solo", "Pending"] in rows(out)


def test_describe_pod(kubectl) -> None:
    out = kubectl("describe", "pod", "solo").stdout
    assert re.search(r"^Name:\s+solo$", out, re.M), out
    assert re.search(r"^Namespace:\s+default$", out, re.M)
    assert re.search(r"^Status:\s+Pending$", out, re.M)
    assert re.search(r"^Labels:\s+app=solo$", out, re.M)
    assert re.search(r"^\s+Image:\s+busybox:1\.36$", out, re.M)
    assert re.search(r"^QoS Class:\s+BestEffort$", out, re.M)


def test_describe_deployment(kubectl) -> None:
    out = kubectl("describe", "deployment", "web").stdout
    assert re.search(r"^Name:\s+web$", out, re.M), out
    assert re.search(r"^Selector:\s+app=web$", out, re.M)
    assert re.search(r"^Replicas:\s+2 desired", out, re.M)
    assert re.search(r"^StrategyType:\s+RollingUpdate$", out, re.M)
    assert re.search(r"^\s+MODE:\s+fast$", out, re.M)
    assert re.search(r"^\s+Port:\s+8080/TCP$", out, re.M)


def test_show_labels(kubectl) -> None:
    r = rows(kubectl("get", "pods", "--show-labels").stdout)
    assert r[0][-1] == "LABELS"
    solo = next(x for x in r[1:] if x[0] == "solo")
    assert set(solo[-1].split(",")) == {"app=solo", "tier=backend"}


def test_label_columns(kubectl) -> None:
    r = rows(kubectl("get", "deploy", "-L", "tier", "-L", "missing").stdout)
    assert r[0][-2:] == ["TIER", "MISSING"]
    web = next(x for x in r[1:] if x[0] == "web")
    assert web[-1] == "frontend"  # a missing label renders as an empty cell


def test_label_selector(kubectl) -> None:
    assert kubectl("get", "pods", "-l", "tier=backend", "-o", "name").stdout.split() == ["pod/solo"]
    assert kubectl("get", "pods", "-l", "tier in (x,y)", "-o", "name").stdout.strip() == ""
    assert "pod/solo" in kubectl("get", "pods", "-l", "!missing", "-o", "name").stdout
    assert kubectl("get", "cm", "-l", "app=web", "-o", "name").stdout.split() == ["configmap/settings"]


def test_field_selector(kubectl) -> None:
    assert kubectl("get", "pods", "--field-selector", "status.phase=Pending", "-o", "name").stdout.split() == ["pod/solo"]
    assert kubectl("get", "pods", "--field-selector", "status.phase=Running", "-o", "name").stdout.strip() == ""
    bad = kubectl("get", "pods", "--field-selector", "spec.bogus=x", check=False)
    assert bad.returncode != 0
    assert "field label not supported" in bad.stderr.lower() or "not a known field selector" in bad.stderr, bad.stderr


def test_all_namespaces(kubectl) -> None:
    kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata: {name: other-ns}\n")
    kubectl("apply", "-n", "other-ns", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: far}\ndata: {a: b}\n")
    r = rows(kubectl("get", "cm", "-A").stdout)
    assert r[0][:2] == ["NAMESPACE", "NAME"]
    pairs = {(x[0], x[1]) for x in r[1:]}
    assert ("other-ns", "far") in pairs and ("default", "settings") in pairs
    assert "far" not in kubectl("get", "cm", "-o", "name").stdout
    assert kubectl("get", "cm", "-n", "other-ns", "-o", "name").stdout.split() == ["configmap/far"]


def test_not_found_message(kubectl) -> None:
    p = kubectl("get", "pod", "nope", check=False)
    assert p.returncode == 1
    assert 'Error from server (NotFound): pods "nope" not found' in p.stderr
    p = kubectl("get", "deploy", "nope", check=False)
    assert 'deployments.apps "nope" not found' in p.stderr
    p = kubectl("get", "cm", "-n", "no-such-ns", check=False)
    assert p.returncode == 0 and "No resources found in no-such-ns namespace." in p.stderr


def test_get_multiple_kinds_and_sort(kubectl) -> None:
    for n in ("b-cm", "a-cm", "c-cm"):
        kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\n")
    names = kubectl("get", "cm", "-o", "name").stdout.split()
    mine = [n for n in names if n.endswith("-cm")]
    assert mine == ["configmap/a-cm", "configmap/b-cm", "configmap/c-cm"]  # sorted by name
    out = kubectl("get", "cm", "--sort-by=.metadata.name", "-o", "name").stdout.split()
    assert out == sorted(out)


def test_service_gets_cluster_ip(kubectl) -> None:
    import ipaddress

    ip = kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
    ipaddress.ip_address(ip)  # raises for "" / "None"
    ips = json.loads(kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIPs}").stdout or "[]")
    assert ips == [ip]
    assert rows(kubectl("get", "svc", "web").stdout)[1][2] == ip
