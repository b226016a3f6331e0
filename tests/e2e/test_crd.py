"""CustomResourceDefinitions end to end: kubectl and the official dynamic client."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import yaml
from kubernetes import dynamic

from tests.e2e.harness import CloudletProcess, api_client, wait_until

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "size": {"type": "string", "enum": ["small", "large"]},
                "color": {"type": "string", "default": "blue"},
                "selector": {"type": "string"},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
                "conditions": {"type": "array", "items": {"type": "object", "properties": {
                    "type": {"type": "string"}, "status": {"type": "string"}}}},
            },
        },
    },
}
COLUMNS = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd(plural: str, kind: str, *, scope: str = "Namespaced", short: list[str] | None = None,
        categories: list[str] | None = None, versions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    names: dict[str, Any] = {"plural": plural, "singular": plural[:-1], "kind": kind}
    if short:
        names["shortNames"] = short
    if categories:
        names["categories"] = categories
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.example.com"},
        "spec": {
            "group": "example.com", "scope": scope, "names": names,
            "versions": versions or [version("v1", storage=True)],
        },
    }


def version(name: str, storage: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "served": True, "storage": storage,
        "schema": {"openAPIV3Schema": SCHEMA},
        "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                 "statusReplicasPath": ".status.replicas",
                                                 "labelSelectorPath": ".status.selector"}},
        "additionalPrinterColumns": COLUMNS,
        **extra,
    }


def obj(kind: str, name: str, api_version: str = "example.com/v1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": {"size": "small", **spec}}


def apply(cloudlet: CloudletProcess, doc: dict[str, Any], *args: str, check: bool = True) -> Any:
    return cloudlet.kubectl("apply", "-f", "-", *args, input=yaml.safe_dump(doc), check=check)


def install(cloudlet: CloudletProcess, doc: dict[str, Any]) -> None:
    out = apply(cloudlet, doc).stdout.strip()
    assert out == f"customresourcedefinition.apiextensions.k8s.io/{doc['metadata']['name']} created"
    cloudlet.kubectl("wait", "--for", "condition=established", "--timeout=10s", f"crd/{doc['metadata']['name']}")


def get(cloudlet: CloudletProcess, *args: str) -> Any:
    return json.loads(cloudlet.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def widgets(cloudlet: CloudletProcess) -> CloudletProcess:
    install(cloudlet, crd("widgets", "Widget", short=["wd"], categories=["all"]))
    return cloudlet


# --- the CRD itself -------------------------------------------------------------------


def test_crd_is_established_with_accepted_names(widgets: CloudletProcess) -> None:
    c = get(widgets, "crd", "widgets.example.com")
    assert c["status"]["acceptedNames"] == {"plural": "widgets", "singular": "widget", "shortNames": ["wd"],
                                            "kind": "Widget", "listKind": "WidgetList", "categories": ["all"]}
    conds = {x["type"]: (x["status"], x["reason"]) for x in c["status"]["conditions"]}
    assert conds["NamesAccepted"] == ("True", "NoConflicts")
    assert conds["Established"] == ("True", "InitialNamesAccepted")
    assert c["status"]["storedVersions"] == ["v1"]
    assert c["spec"]["conversion"] == {"strategy": "None"}
    out = widgets.kubectl("get", "crds").stdout.splitlines()
    assert out[0].split() == ["NAME", "CREATED", "AT"] and any(line.startswith("widgets.example.com ") for line in out)
    resources = widgets.kubectl("api-resources", "--api-group=example.com").stdout
    assert "widgets" in resources and "wd" in resources and "Widget" in resources


def test_invalid_crd_is_rejected(cloudlet: CloudletProcess) -> None:
    bad = crd("badthings", "BadThing")
    bad["spec"]["group"] = "example"
    bad["metadata"]["name"] = "badthings.example"
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {"type": "object", "properties": {"spec": {"properties": {}}}}
    p = apply(cloudlet, bad, check=False)
    assert p.returncode != 0
    assert 'spec.group: Invalid value: "example": should be a domain with at least one dot' in p.stderr
    assert "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields" in p.stderr
    webhook = crd("hooks", "Hook")
    webhook["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                                                                        "clientConfig": {"url": "https://x.example.com"}}}
    p = apply(cloudlet, webhook, check=False)
    assert 'spec.conversion.strategy: Unsupported value: "Webhook": supported values: "None"' in p.stderr
    typo = crd("typos", "Typo")
    typo["spec"]["versions"][0]["schema"]["openAPIv3Schema"] = {}
    p = apply(cloudlet, typo, check=False)
    assert 'strict decoding error: unknown field "spec.versions[0].schema.openAPIv3Schema"' in p.stderr


def test_name_conflict_is_not_accepted(widgets: CloudletProcess) -> None:
    doc = crd("gizmos", "Gizmo", short=["wd"])
    apply(widgets, doc)

    def condition() -> Any:
        c = get(widgets, "crd", "gizmos.example.com")
        return next((x for x in c.get("status", {}).get("conditions", []) if x["type"] == "NamesAccepted"), None)

    cond = wait_until(condition, what="NamesAccepted")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "ShortNamesConflict", '"wd" is already in use')
    widgets.kubectl("delete", "crd", "gizmos.example.com")


# --- custom objects with kubectl ------------------------------------------------------------


def test_get_by_plural_short_name_and_category(widgets: CloudletProcess) -> None:
    out = apply(widgets, obj("Widget", "listed", replicas=2)).stdout.strip()
    assert out == "widget.example.com/listed created"
    for name in ("widgets", "widget", "wd", "widgets.example.com", "widgets.v1.example.com"):
        lines = widgets.kubectl("get", name).stdout.splitlines()
        assert lines[0].split() == ["NAME", "REPLICAS", "SIZE", "READY", "AGE"], name
        assert any(line.split()[:3] == ["listed", "2", "small"] for line in lines[1:]), name
    everything = widgets.kubectl("get", "all").stdout
    assert "widget.example.com/listed" in everything


def test_apply_twice_is_unchanged(widgets: CloudletProcess) -> None:
    doc = obj("Widget", "twice", replicas=3)
    assert apply(widgets, doc).stdout.strip() == "widget.example.com/twice created"
    assert apply(widgets, doc).stdout.strip() == "widget.example.com/twice unchanged"
    doc["spec"]["size"] = "large"
    assert apply(widgets, doc).stdout.strip() == "widget.example.com/twice configured"
    assert get(widgets, "wd", "twice")["spec"]["size"] == "large"


def test_defaults_are_applied(widgets: CloudletProcess) -> None:
    apply(widgets, obj("Widget", "defaulted"))
    spec = get(widgets, "wd", "defaulted")["spec"]
    assert spec == {"size": "small", "replicas": 1, "color": "blue"}


def test_invalid_object_gets_422_with_causes(widgets: CloudletProcess) -> None:
    p = apply(widgets, obj("Widget", "bad", size="huge", replicas="three"), check=False)
    assert p.returncode != 0
    assert 'spec.size: Unsupported value: "huge": supported values: "small", "large"' in p.stderr
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"' in p.stderr
    body = obj("Widget", "bad2", replicas=-1)
    del body["spec"]["size"]
    code, status = widgets.request("POST", "/apis/example.com/v1/namespaces/default/widgets", body)
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith('Widget.example.com "bad2" is invalid: [')
    causes = {(c["field"], c["reason"], c["message"]) for c in status["details"]["causes"]}
    assert ("spec.size", "FieldValueRequired", "Required value") in causes
    assert ("spec.replicas", "FieldValueInvalid",
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0") in causes


def test_unknown_fields_strict_and_pruned(widgets: CloudletProcess) -> None:
    doc = obj("Widget", "unknown", foo="bar")
    p = apply(widgets, doc, check=False)
    assert p.returncode != 0
    assert ('Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.foo"'
            in p.stderr)
    assert apply(widgets, doc, "--validate=false").stdout.strip() == "widget.example.com/unknown created"
    assert "foo" not in get(widgets, "wd", "unknown")["spec"]
    code, hdrs, _out = widgets.request_ex("POST", "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Warn",
                                          obj("Widget", "warned", bar=1))
    assert code == 201 and "unknown field" in (hdrs.get("Warning") or "") and "spec.bar" in hdrs.get("Warning")


def test_printer_columns(widgets: CloudletProcess) -> None:
    apply(widgets, obj("Widget", "printed", replicas=4, color="red"))
    widgets.request("PATCH", "/apis/example.com/v1/namespaces/default/widgets/printed/status",
                    {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                    content_type="application/merge-patch+json")
    row = widgets.kubectl("get", "wd", "printed", "--no-headers").stdout.split()
    assert row[:4] == ["printed", "4", "small", "True"]
    wide = widgets.kubectl("get", "wd", "printed", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "REPLICAS", "SIZE", "READY", "COLOR", "AGE"]
    assert wide[1].split()[:5] == ["printed", "4", "small", "True", "red"]


def test_status_subresource(widgets: CloudletProcess) -> None:
    base = "/apis/example.com/v1/namespaces/default/widgets"
    code, created = widgets.request("POST", base, {**obj("Widget", "st"), "status": {"replicas": 7}})
    assert code == 201 and "status" not in created
    created["status"] = {"replicas": 5}
    created["spec"]["size"] = "large"
    code, updated = widgets.request("PUT", f"{base}/st", created)
    assert code == 200 and "status" not in updated and updated["spec"]["size"] == "large"
    assert updated["metadata"]["generation"] == 2
    updated["status"] = {"replicas": 5}
    updated["spec"]["size"] = "small"
    code, st = widgets.request("PUT", f"{base}/st/status", updated)
    assert code == 200 and st["status"] == {"replicas": 5} and st["spec"]["size"] == "large"
    assert st["metadata"]["generation"] == 2


def test_scale_subresource(widgets: CloudletProcess) -> None:
    apply(widgets, obj("Widget", "scaled", replicas=1))
    assert widgets.kubectl("scale", "wd", "scaled", "--replicas=5").stdout.strip() == "widget.example.com/scaled scaled"
    assert get(widgets, "wd", "scaled")["spec"]["replicas"] == 5
    widgets.request("PATCH", "/apis/example.com/v1/namespaces/default/widgets/scaled/status",
                    {"status": {"replicas": 3, "selector": "app=x"}}, content_type="application/merge-patch+json")
    code, scale = widgets.request("GET", "/apis/example.com/v1/namespaces/default/widgets/scaled/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 5} and scale["status"] == {"replicas": 3, "selector": "app=x"}


# --- the official dynamic client -------------------------------------------------------------


def test_dynamic_client_crud_watch_and_status(widgets: CloudletProcess) -> None:
    client = api_client(widgets)
    try:
        dyn = dynamic.DynamicClient(client)
        res = dyn.resources.get(api_version="example.com/v1", kind="Widget")
        events: list[tuple[str, str]] = []
        ready = threading.Event()

        def watch() -> None:
            stream = res.watch(namespace="default", timeout=8, field_selector="metadata.name=dyn")
            ready.set()
            for ev in stream:
                events.append((ev["type"], ev["object"].metadata.name))
                if ev["type"] == "DELETED":
                    break

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        ready.wait(5)
        time.sleep(0.3)
        made = res.create(body=obj("Widget", "dyn"), namespace="default")
        assert made.spec.replicas == 1 and made.spec.color == "blue"
        patched = res.status.patch(name="dyn", namespace="default", body={"status": {"replicas": 2}},
                                   content_type="application/merge-patch+json")
        assert patched.status.replicas == 2
        listed = res.get(namespace="default")
        assert "dyn" in [i.metadata.name for i in listed.items] and listed.kind == "WidgetList"
        res.delete(name="dyn", namespace="default")
        t.join(10)
        assert events == [("ADDED", "dyn"), ("MODIFIED", "dyn"), ("DELETED", "dyn")]
    finally:
        client.close()


# --- versions, scope, deletion ----------------------------------------------------------------


def test_two_versions_one_storage(cloudlet: CloudletProcess) -> None:
    beta_schema = json.loads(json.dumps(SCHEMA))
    beta_schema["properties"]["spec"]["properties"]["legacy"] = {"type": "string", "default": "old"}
    doc = crd("gadgets", "Gadget", versions=[version("v1", storage=True),
                                             version("v1beta1", schema={"openAPIV3Schema": beta_schema})])
    install(cloudlet, doc)
    apply(cloudlet, obj("Gadget", "g1", api_version="example.com/v1beta1", legacy="kept"))
    v1 = get(cloudlet, "gadgets.v1.example.com", "g1")
    beta = get(cloudlet, "gadgets.v1beta1.example.com", "g1")
    assert v1["apiVersion"] == "example.com/v1" and "legacy" not in v1["spec"]
    assert beta["apiVersion"] == "example.com/v1beta1" and beta["spec"]["legacy"] == "old"
    assert v1["metadata"]["uid"] == beta["metadata"]["uid"]
    code, groups = cloudlet.request("GET", "/apis/example.com")
    assert code == 200 and groups["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in groups["versions"]] == ["v1", "v1beta1"]
    assert get(cloudlet, "crd", "gadgets.example.com")["status"]["storedVersions"] == ["v1"]


def test_updating_the_crd_updates_what_is_served(cloudlet: CloudletProcess, tmp_path: Any) -> None:
    doc = crd("sprockets", "Sprocket")
    install(cloudlet, doc)
    apply(cloudlet, obj("Sprocket", "s1", replicas=2))
    p = cloudlet.kubectl("get", "sprockets.v2.example.com", "--cache-dir", str(tmp_path / "cache"), check=False)
    assert p.returncode != 0 and "doesn't have a resource type" in p.stderr
    v2_schema = json.loads(json.dumps(SCHEMA))
    v2_schema["properties"]["spec"]["properties"]["teeth"] = {"type": "integer", "default": 12}
    doc["spec"]["versions"] = [
        version("v1", additionalPrinterColumns=[{"name": "Size", "type": "string", "jsonPath": ".spec.size"}]),
        version("v2", storage=True, schema={"openAPIV3Schema": v2_schema}),
    ]
    assert apply(cloudlet, doc).stdout.strip() == "customresourcedefinition.apiextensions.k8s.io/sprockets.example.com configured"

    def served_v2() -> bool:
        return cloudlet.request("GET", "/apis/example.com/v2/namespaces/default/sprockets/s1")[0] == 200

    wait_until(served_v2, what="v2 served")
    assert get(cloudlet, "sprockets.v2.example.com", "s1")["spec"]["teeth"] == 12  # defaulted on read
    assert cloudlet.kubectl("get", "sprockets.v1.example.com").stdout.splitlines()[0].split() == ["NAME", "SIZE"]
    assert get(cloudlet, "crd", "sprockets.example.com")["status"]["storedVersions"] == ["v1", "v2"]


def test_cluster_scoped_crd(cloudlet: CloudletProcess) -> None:
    install(cloudlet, crd("clusterthings", "ClusterThing", scope="Cluster"))
    assert apply(cloudlet, obj("ClusterThing", "c1")).stdout.strip() == "clusterthing.example.com/c1 created"
    got = get(cloudlet, "clusterthings", "c1")
    assert "namespace" not in got["metadata"]
    code, _ = cloudlet.request("GET", "/apis/example.com/v1/namespaces/default/clusterthings/c1")
    assert code == 404
    code, _ = cloudlet.request("GET", "/apis/example.com/v1/clusterthings/c1")
    assert code == 200


def test_deleting_the_crd_removes_its_objects(cloudlet: CloudletProcess, tmp_path: Any) -> None:
    install(cloudlet, crd("doomeds", "Doomed", short=["dm"]))
    for n in ("d1", "d2"):
        apply(cloudlet, obj("Doomed", n))
    cloudlet.kubectl("create", "namespace", "doom-ns")
    apply(cloudlet, obj("Doomed", "d3"), "-n", "doom-ns")
    out = cloudlet.kubectl("delete", "crd", "doomeds.example.com", timeout=30).stdout.strip()
    assert out == 'customresourcedefinition.apiextensions.k8s.io "doomeds.example.com" deleted'
    code, _ = cloudlet.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/doomeds.example.com")
    assert code == 404
    p = cloudlet.kubectl("get", "doomeds", "--cache-dir", str(tmp_path / "cache"), check=False)
    assert p.returncode != 0 and 'the server doesn\'t have a resource type "doomeds"' in p.stderr
    # the objects went too: a new CRD of the same name starts empty
    install(cloudlet, crd("doomeds", "Doomed"))
    assert get(cloudlet, "doomeds", "-A")["items"] == []


def test_crds_are_served_after_a_restart(tmp_path: Any) -> None:
    proc = CloudletProcess(tmp_path / "restart")
    proc.start()
    try:
        install(proc, crd("persisted", "Persisted", short=["ps"]))
        apply(proc, obj("Persisted", "p1", replicas=2))
        proc.stop()
        proc.start()
        lines = proc.kubectl("get", "ps", "--cache-dir", str(tmp_path / "cache")).stdout.splitlines()
        assert lines[1].split()[:3] == ["p1", "2", "small"]
    finally:
        proc.stop()
