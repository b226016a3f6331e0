"""End to end: the OpenAPI documents as the real kubectl v1.32 uses them.

``kubectl explain`` through ``/openapi/v3`` (default) and ``/openapi/v2``
(``--output=plaintext-openapiv2``, gnostic protobuf), ``kubectl apply`` with
server-side field validation (v3 ``fieldValidation`` detection), client-side
validation against the v2 schemas (``kind: List`` files), strategic merge
patches computed from the v3 schemas, the index and its cache headers, and
custom resources (when CustomResourceDefinitions are served).
"""

from __future__ import annotations

import http.client
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import CloudletProcess, wait_until

GVK = "x-kubernetes-group-version-kind"


def explain(cloudlet: CloudletProcess, *args: str) -> str:
    return cloudlet.kubectl("explain", *args).stdout


def deployment(name: str, **spec_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1",
                            "ports": [{"containerPort": 80, "name": "http"}],
                            "env": [{"name": "E1", "value": "1"}, {"name": "E2", "value": "2"}],
                        },
                        {"name": "side", "image": "busybox:1"},
                    ]
                },
            },
            **spec_extra,
        },
    }


def raw_get(cloudlet: CloudletProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects."""
    conn = http.client.HTTPSConnection("127.0.0.1", cloudlet.port, context=cloudlet.ssl_context(), timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {cloudlet.token}", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k: v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --- kubectl explain ------------------------------------------------------------------


def test_explain_fields_v3(cloudlet: CloudletProcess) -> None:
    out = explain(cloudlet, "deployment.spec.strategy")
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "type\t<string>" in out
    assert "FIELD: replicas <integer>" in explain(cloudlet, "deployment.spec.replicas")
    assert "FIELD: image <string>" in explain(cloudlet, "pod.spec.containers.image")
    assert "FIELD: maxSurge <IntOrString>" in explain(cloudlet, "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert "FIELD: limits <map[string]Quantity>" in explain(cloudlet, "pod.spec.containers.resources.limits")
    assert "FIELD: creationTimestamp <string>" in explain(cloudlet, "pods.metadata.creationTimestamp")
    containers = explain(cloudlet, "pod.spec.containers")
    assert "FIELD: containers <[]Container>" in containers
    assert "name\t<string> -required-" in containers
    assert "image\t<string>\n" in containers  # optional, as in Kubernetes
    assert "ports\t<[]ContainerPort>" in containers
    kind = explain(cloudlet, "deployments")
    assert "Declarative, rolling updates" in kind  # the kind's own description
    for field in ("apiVersion\t<string>", "metadata\t<ObjectMeta>", "spec\t<DeploymentSpec>", "status\t<DeploymentStatus>"):
        assert field in kind
    # every served built-in kind explains with a real schema
    for resource in ("namespaces", "nodes", "configmaps", "secrets", "serviceaccounts", "endpoints", "events",
                     "services", "replicasets", "horizontalpodautoscalers", "priorityclasses", "leases",
                     "runtimeclasses", "endpointslices"):
        out = explain(cloudlet, resource)
        assert "FIELDS:" in out and "metadata\t<ObjectMeta>" in out, (resource, out)
    assert "FIELD: maxReplicas <integer>" in explain(cloudlet, "hpa.spec.maxReplicas", "--api-version=autoscaling/v1")
    p = cloudlet.kubectl("explain", "pod.spec.bogus", check=False)
    assert p.returncode != 0 and 'field "bogus" does not exist' in p.stderr


def test_explain_recursive(cloudlet: CloudletProcess) -> None:
    out = explain(cloudlet, "svc", "--recursive")
    assert "KIND:       Service" in out
    assert "  spec\t<ServiceSpec>\n" in out
    assert "    ports\t<[]ServicePort>\n" in out
    assert "      port\t<integer> -required-\n" in out
    assert "      targetPort\t<IntOrString>\n" in out
    assert "    sessionAffinityConfig\t<SessionAffinityConfig>\n      clientIP\t<ClientIPConfig>\n" in out
    assert "    ownerReferences\t<[]OwnerReference>\n" in out
    dep = explain(cloudlet, "deployment.spec", "--recursive")
    assert "containers\t<[]Container> -required-" in dep
    assert "        matchExpressions\t<[]LabelSelectorRequirement>" in dep


def test_explain_openapiv2(cloudlet: CloudletProcess) -> None:
    out = explain(cloudlet, "deployment.spec.strategy", "--output=plaintext-openapiv2")
    assert "VERSION:  apps/v1" in out
    assert "RESOURCE: strategy <Object>" in out
    assert "rollingUpdate\t<Object>" in out and "type\t<string>" in out
    out = explain(cloudlet, "pod.spec.containers", "--output=plaintext-openapiv2")
    assert "RESOURCE: containers <[]Object>" in out
    assert "name\t<string> -required-" in out
    assert "image\t<string>" in out
    out = explain(cloudlet, "deployment.spec.replicas", "--output=plaintext-openapiv2")
    assert "FIELD:    replicas <integer>" in out
    out = explain(cloudlet, "svc", "--recursive", "--output=plaintext-openapiv2")
    assert "ports\t<[]Object>" in out and "targetPort\t<string>" in out


# --- apply -------------------------------------------------------------------------------


def test_apply_uses_v3_strategic_merge(cloudlet: CloudletProcess) -> None:
    dep = deployment("smp")
    p = cloudlet.kubectl("apply", "-f", "-", input=json.dumps(dep))
    assert "deployment.apps/smp created" in p.stdout
    # drop a container, an env var and the rolling update: strategic merge with
    # $retainKeys (Deployment.spec.strategy) and merge keys, computed from the v3 schema
    spec = dep["spec"]
    spec["strategy"] = {"type": "Recreate"}
    spec["template"]["spec"]["containers"] = [
        {"name": "app", "image": "nginx:2", "ports": [{"containerPort": 80, "name": "http"}],
         "env": [{"name": "E2", "value": "3"}]},
    ]
    p = cloudlet.kubectl("apply", "-f", "-", "-v=8", input=json.dumps(dep))
    assert "deployment.apps/smp configured" in p.stdout
    assert "Content-Type: application/strategic-merge-patch+json" in p.stderr
    assert "GET https://127.0.0.1" in p.stderr and "/openapi/v2" not in p.stderr  # no compiled-in fallback
    assert "$retainKeys" in p.stderr
    live = json.loads(cloudlet.kubectl("get", "deploy", "smp", "-o", "json").stdout)
    assert live["spec"]["strategy"] == {"type": "Recreate"}
    (c,) = live["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "nginx:2" and c["env"] == [{"name": "E2", "value": "3"}]
    p = cloudlet.kubectl("apply", "-f", "-", input=json.dumps(dep))
    assert "deployment.apps/smp unchanged" in p.stdout


def test_apply_validate_strict_is_server_side(cloudlet: CloudletProcess) -> None:
    bad = deployment("strict-e2e", foo=1)
    p = cloudlet.kubectl("apply", "--validate=strict", "-f", "-", "-v=6", input=json.dumps(bad), check=False)
    assert p.returncode == 1
    assert "fieldValidation=Strict" in p.stderr  # detected from the v3 document: no client-side check
    assert 'unknown field "spec.foo"' in p.stderr
    assert cloudlet.request("GET", "/apis/apps/v1/namespaces/default/deployments/strict-e2e")[0] == 404
    p = cloudlet.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(bad))
    assert "created" in p.stdout
    live = json.loads(cloudlet.kubectl("get", "deploy", "strict-e2e", "-o", "json").stdout)
    assert "foo" not in live["spec"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict-cm"}, "data": {"a": "1"}, "bogus": 1}
    p = cloudlet.kubectl("create", "-f", "-", input=json.dumps(cm), check=False)
    assert p.returncode == 1 and 'unknown field "bogus"' in p.stderr


def test_list_files_validate_client_side_against_v2(cloudlet: CloudletProcess) -> None:
    items = [
        deployment("listed"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "listed"},
         "spec": {"selector": {"app": "listed"}, "ports": [{"port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed"}, "data": {"k": "v"}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "listed"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "listed"},
                  "maxReplicas": 3,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": 50}}}]}},
    ]
    items[0]["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "100m", "memory": 1048576}}
    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    p = cloudlet.kubectl("apply", "-f", "-", input=json.dumps(doc))
    assert "deployment.apps/listed created" in p.stdout
    assert "horizontalpodautoscaler.autoscaling/listed created" in p.stdout
    items[0]["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    p = cloudlet.kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert p.returncode == 1
    assert 'unknown field "bogus" in io.k8s.api.core.v1.Container' in p.stderr
    del items[0]["spec"]["template"]["spec"]["containers"][0]["bogus"]
    del items[0]["spec"]["selector"]
    p = cloudlet.kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert p.returncode == 1
    assert 'missing required field "selector" in io.k8s.api.apps.v1.DeploymentSpec' in p.stderr


# --- the documents ------------------------------------------------------------------------


def test_v3_index_lists_every_group_version(cloudlet: CloudletProcess) -> None:
    index = json.loads(cloudlet.kubectl("get", "--raw", "/openapi/v3").stdout)
    versions = cloudlet.kubectl("api-versions").stdout.split()
    expected = {"api/v1" if gv == "v1" else f"apis/{gv}" for gv in versions}
    assert set(index["paths"]) == expected
    for key, item in index["paths"].items():
        assert item["serverRelativeURL"].startswith(f"/openapi/v3/{key}?hash=")
    apps = json.loads(cloudlet.kubectl("get", "--raw", "/openapi/v3/apis/apps/v1").stdout)
    dep = apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert dep[GVK] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    v2 = json.loads(cloudlet.kubectl("get", "--raw", "/openapi/v2").stdout)
    assert v2["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.PodSpec" in v2["definitions"]


def test_cache_headers_and_stale_hash_redirect(cloudlet: CloudletProcess) -> None:
    code, headers, body = raw_get(cloudlet, "/openapi/v3")
    assert code == 200 and headers["ETag"].startswith('"')
    url = json.loads(body)["paths"]["api/v1"]["serverRelativeURL"]
    code, headers, body = raw_get(cloudlet, url, {"Accept": "application/json"})
    assert code == 200
    assert headers["Cache-Control"] == "public, immutable"
    etag = headers["ETag"]
    assert url.endswith("hash=" + etag.strip('"'))
    code, headers, _ = raw_get(cloudlet, "/openapi/v3/api/v1?hash=ABC")
    assert code == 301 and headers["Location"] == url
    code, _, body = raw_get(cloudlet, "/openapi/v3/api/v1", {"If-None-Match": etag})
    assert code == 304 and body == b""


def test_fresh_server_builds_documents_on_demand() -> None:
    """A fresh server answers /openapi/v3 (built on the first request, not at start;
    how fast it gets ready is measured by bench/api.py, not asserted here)."""
    with tempfile.TemporaryDirectory(prefix="cloudlet-openapi-") as d:
        proc = CloudletProcess(Path(d))
        try:
            proc.start()
            code, body = proc.request("GET", "/openapi/v3")
            assert code == 200 and "apis/apps/v1" in json.dumps(body)
        finally:
            proc.stop()


# --- custom resources -----------------------------------------------------------------------


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["cronSpec"],
                                "properties": {
                                    "cronSpec": {"type": "string"},
                                    "image": {"type": "string"},
                                    "replicas": {"type": "integer"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _crds_served(cloudlet: CloudletProcess) -> bool:
    p = cloudlet.kubectl("api-resources", "--api-group=apiextensions.k8s.io", "-o", "name", check=False)
    return "customresourcedefinitions" in p.stdout


def test_explain_custom_resource_and_index_follows_crd_changes(cloudlet: CloudletProcess) -> None:
    if not _crds_served(cloudlet):
        pytest.skip("CustomResourceDefinitions are not served yet")
    crd = json.loads(json.dumps(CRD))
    cloudlet.kubectl("apply", "-f", "-", input=json.dumps(crd))
    wait_until(lambda: cloudlet.kubectl("get", "crontabs", check=False).returncode == 0, what="crontabs served")
    before = json.loads(cloudlet.kubectl("get", "--raw", "/openapi/v3").stdout)["paths"]
    assert "apis/stable.example.com/v1" in before
    out = explain(cloudlet, "crontabs.spec")
    assert "KIND:       CronTab" in out
    assert "cronSpec\t<string> -required-" in out and "replicas\t<integer>" in out
    out = explain(cloudlet, "crontabs.spec", "--output=plaintext-openapiv2")
    assert "cronSpec\t<string> -required-" in out
    assert "metadata\t<ObjectMeta>" in explain(cloudlet, "crontabs")
    # a new field: the group-version's hash changes, kubectl's disk cache is bypassed
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["size"] = {"type": "string", "enum": ["small", "large"]}
    cloudlet.kubectl("apply", "-f", "-", input=json.dumps(crd))

    def updated() -> bool:
        paths = json.loads(cloudlet.kubectl("get", "--raw", "/openapi/v3").stdout)["paths"]
        return paths["apis/stable.example.com/v1"] != before["apis/stable.example.com/v1"]

    wait_until(updated, what="new hash for stable.example.com/v1")
    after = json.loads(cloudlet.kubectl("get", "--raw", "/openapi/v3").stdout)["paths"]
    assert after["apis/apps/v1"] == before["apis/apps/v1"]
    assert "size\t<string>" in explain(cloudlet, "crontabs.spec")
    # strict apply of a custom resource: fieldValidation detected from the v3 document
    ct = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c1"},
          "spec": {"cronSpec": "* * * * */5", "bogus": 1}}
    p = cloudlet.kubectl("apply", "-f", "-", "-v=6", input=json.dumps(ct), check=False)
    assert "fieldValidation=Strict" in p.stderr
    assert p.returncode == 1 and 'unknown field "spec.bogus"' in p.stderr
    cloudlet.kubectl("delete", "crd", "crontabs.stable.example.com")
    wait_until(
        lambda: "apis/stable.example.com/v1"
        not in json.loads(cloudlet.kubectl("get", "--raw", "/openapi/v3").stdout)["paths"],
        what="group-version gone from the index",
    )
