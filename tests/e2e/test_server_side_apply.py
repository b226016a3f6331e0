"""Server-side apply end to end: the real kubectl and the official Python client against `cloudlet up`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException

from tests.e2e.harness import CloudletProcess, wait_until

# API semantics: no workload controller writes these objects behind the test's back
CLOUDLET_CONTROLLERS = "*,-deployment,-replicaset"

APPLY = "application/apply-patch+yaml"


def cm_yaml(name: str, data: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {data}\n"


def get(cloudlet: CloudletProcess, *args: str) -> dict[str, Any]:
    return json.loads(cloudlet.kubectl("get", *args, "-o", "json", "--show-managed-fields").stdout)


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for e in obj["metadata"].get("managedFields") or obj["metadata"].get("managed_fields") or []:
        key = f"{e['manager']}/{e['operation']}" + (f"/{e['subresource']}" if e.get("subresource") else "")
        out[key] = e.get("fieldsV1") or e.get("fields_v1")
    return out


def test_kubectl_server_side_apply_lifecycle(cloudlet: CloudletProcess) -> None:
    k = cloudlet.kubectl
    out = k("apply", "--server-side", "-f", "-", input=cm_yaml("ssa", "{a: '1', b: '2'}")).stdout
    assert out.strip() == "configmap/ssa serverside-applied"
    first = get(cloudlet, "cm", "ssa")
    assert managers(first) == {"kubectl/Apply": {"f:data": {"f:a": {}, "f:b": {}}}}
    # unchanged: no write
    k("apply", "--server-side", "-f", "-", input=cm_yaml("ssa", "{a: '1', b: '2'}"))
    assert get(cloudlet, "cm", "ssa")["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    # a changed value
    k("apply", "--server-side", "-f", "-", input=cm_yaml("ssa", "{a: '1', b: '3'}"))
    assert get(cloudlet, "cm", "ssa")["data"] == {"a": "1", "b": "3"}
    # a field the manager stopped applying disappears
    k("apply", "--server-side", "-f", "-", input=cm_yaml("ssa", "{a: '1'}"))
    assert get(cloudlet, "cm", "ssa")["data"] == {"a": "1"}
    # managed fields are hidden unless asked for
    plain = yaml.safe_load(k("get", "cm", "ssa", "-o", "yaml").stdout)
    assert "managedFields" not in plain["metadata"]
    shown = yaml.safe_load(k("get", "cm", "ssa", "-o", "yaml", "--show-managed-fields").stdout)
    (entry,) = shown["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply" and entry["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_kubectl_conflicts_and_force(cloudlet: CloudletProcess) -> None:
    k = cloudlet.kubectl
    k("apply", "--server-side", "--field-manager=a", "-f", "-", input=cm_yaml("two", "{k: '1'}"))
    p = k("apply", "--server-side", "--field-manager=b", "-f", "-", input=cm_yaml("two", "{k: '2', j: '3'}"), check=False)
    assert p.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "a": .data.k' in p.stderr
    assert get(cloudlet, "cm", "two")["data"] == {"k": "1"}
    k("apply", "--server-side", "--field-manager=b", "--force-conflicts", "-f", "-", input=cm_yaml("two", "{k: '2', j: '3'}"))
    obj = get(cloudlet, "cm", "two")
    assert obj["data"] == {"k": "2", "j": "3"}
    assert managers(obj) == {"b/Apply": {"f:data": {"f:j": {}, "f:k": {}}}}  # a lost its only field


def test_client_side_apply_then_server_side(cloudlet: CloudletProcess) -> None:
    k = cloudlet.kubectl
    assert "configmap/mig created" in k("apply", "-f", "-", input=cm_yaml("mig", "{a: '1', b: '2'}")).stdout
    assert set(managers(get(cloudlet, "cm", "mig"))) == {"kubectl-client-side-apply/Update"}
    # a changed value would conflict with kubectl-client-side-apply; kubectl's own last-applied makes it fine
    k("apply", "--server-side", "-f", "-", input=cm_yaml("mig", "{a: '5', b: '2'}"))
    obj = get(cloudlet, "cm", "mig")
    assert obj["data"] == {"a": "5", "b": "2"}
    assert "kubectl-client-side-apply/Update" not in managers(obj)  # kubectl migrated its fields
    k("apply", "--server-side", "-f", "-", input=cm_yaml("mig", "{a: '5'}"))
    assert get(cloudlet, "cm", "mig")["data"] == {"a": "5"}


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        env: [{name: A, value: "1"}]
        ports: [{containerPort: 8080}]
"""

SIDECAR_ENV = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - name: web
        env: [{name: B, value: "2"}]
"""


def test_deployment_map_lists_second_manager_and_scale(cloudlet: CloudletProcess) -> None:
    k = cloudlet.kubectl
    assert "deployment.apps/web serverside-applied" in k("apply", "--server-side", "-f", "-", input=DEPLOYMENT).stdout
    k("apply", "--server-side", "--field-manager=envs", "-f", "-", input=SIDECAR_ENV)
    dep = get(cloudlet, "deploy", "web")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    ms = managers(dep)
    web = ms["kubectl/Apply"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert set(web["f:env"]) == {'k:{"name":"A"}'} and "f:image" in web
    assert 'k:{"containerPort":8080,"protocol":"TCP"}' in web["f:ports"]
    side = ms["envs/Apply"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert set(side["f:env"]) == {'k:{"name":"B"}'} and "f:name" in side  # the container itself is co-owned
    # re-applying the first config keeps the other manager's env var
    k("apply", "--server-side", "-f", "-", input=DEPLOYMENT)
    assert len(get(cloudlet, "deploy", "web")["spec"]["template"]["spec"]["containers"][0]["env"]) == 2
    # kubectl scale takes spec.replicas; applying another count now conflicts with it
    k("scale", "deploy", "web", "--replicas=3")
    ms = managers(get(cloudlet, "deploy", "web"))
    assert ms["kubectl/Update/scale"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in ms["kubectl/Apply"]["f:spec"]
    p = k("apply", "--server-side", "-f", "-", input=DEPLOYMENT, check=False)
    assert p.returncode != 0
    assert 'conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas' in p.stderr
    # leaving replicas out of the config leaves it with the scaler
    k("apply", "--server-side", "-f", "-", input=DEPLOYMENT.replace("  replicas: 2\n", ""))
    assert get(cloudlet, "deploy", "web")["spec"]["replicas"] == 3


def test_python_client_apply(cloudlet: CloudletProcess, core: Any) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py"}, "data": {"x": "1"}}
    obj = core.patch_namespaced_config_map("py", "default", body, field_manager="py-ctrl", _content_type=APPLY)
    assert obj.data == {"x": "1"}
    (entry,) = obj.metadata.managed_fields
    assert entry.manager == "py-ctrl" and entry.operation == "Apply" and entry.fields_v1 == {"f:data": {"f:x": {}}}
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("py", "default", {**body, "data": {"x": "2"}}, field_manager="other", _content_type=APPLY)
    assert e.value.status == 409
    status = json.loads(e.value.body)
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "py-ctrl"', "field": ".data.x"}]
    obj = core.patch_namespaced_config_map("py", "default", {**body, "data": {"x": "2"}}, field_manager="other",
                                           force=True, _content_type=APPLY)
    assert obj.data == {"x": "2"} and [m.manager for m in obj.metadata.managed_fields] == ["other"]
    # a plain update from the client is owned by its User-Agent prefix
    obj.data["y"] = "3"
    obj = core.replace_namespaced_config_map("py", "default", obj)
    assert {m.manager for m in obj.metadata.managed_fields} == {"other", "OpenAPI-Generator"}


def test_apply_over_http(cloudlet: CloudletProcess) -> None:
    path = "/api/v1/namespaces/default/configmaps/raw"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "raw"}, "data": {"a": "1"}}
    code, out = cloudlet.request("PATCH", path, body, content_type=APPLY)
    assert code == 422 and out["reason"] == "Invalid"
    assert out["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    code, out = cloudlet.request("PATCH", path + "?fieldManager=m&dryRun=All", body, content_type=APPLY)
    assert code == 201 and cloudlet.request("GET", path)[0] == 404
    code, out = cloudlet.request("PATCH", path + "?fieldManager=m", raw=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: raw}\ndata: {a: '1'}\n", content_type=APPLY)
    assert code == 201 and out["data"] == {"a": "1"}
    code, out = cloudlet.request("PATCH", path + "?fieldManager=m", body, content_type=APPLY)
    assert code == 200
    code, out = cloudlet.request("PATCH", path + "?fieldManager=m", {**body, "spec": {}}, content_type=APPLY)
    assert code == 400 and "field not declared in schema" in out["message"]
    code, out = cloudlet.request("PATCH", path + "?force=true", {"data": {"a": "2"}}, content_type="application/merge-patch+json")
    assert code == 422 and "force: Forbidden: may not be specified for non-apply patch" in out["message"]
    # fieldManager on other writes
    code, out = cloudlet.request("POST", "/api/v1/namespaces/default/configmaps?fieldManager=creator", {**body, "metadata": {"name": "raw2"}})
    assert code == 201 and [m["manager"] for m in out["metadata"]["managedFields"]] == ["creator"]
    code, out = cloudlet.request("POST", "/api/v1/namespaces/default/configmaps?fieldManager=" + "x" * 129, {**body, "metadata": {"name": "raw3"}})
    assert code == 422 and out["message"].startswith('CreateOptions.meta.k8s.io "" is invalid: fieldManager: Too long')


def test_apply_status_subresource(cloudlet: CloudletProcess) -> None:
    cloudlet.kubectl("apply", "--server-side", "-f", "-", input=DEPLOYMENT.replace("name: web", "name: st"))
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "st"},
              "status": {"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]}}
    code, out = cloudlet.request("PATCH", "/apis/apps/v1/namespaces/default/deployments/st/status?fieldManager=ctrl", status, content_type=APPLY)
    assert code == 200, out
    assert out["status"]["conditions"][0]["type"] == "Available"
    assert managers(out)["ctrl/Apply/status"]["f:status"]["f:conditions"] == {'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}}


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.ssa.example.com}
spec:
  group: ssa.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items: {type: object, required: [name], properties: {name: {type: string}, port: {type: integer}}}
              tags: {type: array, items: {type: string}}
"""


def widget(spec: str) -> str:
    return f"apiVersion: ssa.example.com/v1\nkind: Widget\nmetadata: {{name: w}}\nspec: {spec}\n"


def test_custom_resource_apply_follows_its_schema(cloudlet: CloudletProcess) -> None:
    k = cloudlet.kubectl
    k("apply", "--server-side", "-f", "-", input=WIDGET_CRD)
    wait_until(lambda: k("get", "widgets.ssa.example.com", check=False).returncode == 0, what="the CRD to be served")
    k("apply", "--server-side", "-f", "-", input=widget("{ports: [{name: a, port: 1}], tags: [x]}"))
    k("apply", "--server-side", "--field-manager=two", "-f", "-", input=widget("{ports: [{name: b, port: 2}]}"))
    assert get(cloudlet, "widgets.ssa.example.com", "w")["spec"]["ports"] == [{"name": "a", "port": 1}, {"name": "b", "port": 2}]
    # tags is an atomic list (no x-kubernetes-list-type): owned whole, so a different value conflicts
    p = k("apply", "--server-side", "--field-manager=two", "-f", "-", input=widget("{tags: [y]}"), check=False)
    assert p.returncode != 0 and 'conflict with "kubectl": .spec.tags' in p.stderr
    # kubectl stops applying port a: it goes; b stays with its owner
    k("apply", "--server-side", "-f", "-", input=widget("{tags: [x]}"))
    assert get(cloudlet, "widgets.ssa.example.com", "w")["spec"] == {"ports": [{"name": "b", "port": 2}], "tags": ["x"]}


def test_http_client_apply(cloudlet: CloudletProcess) -> None:
    from cloudlet.api.errors import APIError
    from cloudlet.client.http import HTTPClient
    from cloudlet.client.interface import ResourceRef

    ref = ResourceRef("", "v1", "configmaps")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hc", "namespace": "default"}, "data": {"a": "1"}}

    async def run() -> None:
        async with HTTPClient.from_kubeconfig(cloudlet.kubeconfig) as c:
            obj = await c.apply(ref, body, field_manager="ctrl")
            assert obj["data"] == {"a": "1"} and obj["metadata"]["managedFields"][0]["manager"] == "ctrl"
            with pytest.raises(APIError) as e:
                await c.apply(ref, {**body, "data": {"a": "2"}}, field_manager="other")
            assert e.value.code == 409 and e.value.reason == "Conflict"
            obj = await c.apply(ref, {**body, "data": {"a": "2"}}, field_manager="other", force=True)
            assert obj["data"] == {"a": "2"}

    asyncio.run(run())
