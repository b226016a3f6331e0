"""kubectl writes: apply (client-side, strategic merge), create/replace, generators,
label/annotate, the three patch types, scale and edit."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.e2e.harness import CloudletProcess

# API semantics: no workload controller writes these objects behind the test's back
CLOUDLET_CONTROLLERS = "*,-deployment,-replicaset"


def get(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def manifest(image: str = "busybox:1.36", port: int = 8080, env: str = '[{name: A, value: "1"}, {name: B, value: "2"}]',
             sidecar: bool = True, data: str = "{mode: fast, level: '1'}") -> str:
    side = "      - {name: side, image: busybox:1.36}\n" if sidecar else ""
    return (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata: {name: app, labels: {app: app}}\n"
        "spec:\n"
        "  replicas: 2\n"
        "  selector: {matchLabels: {app: app}}\n"
        "  template:\n"
        "    metadata: {labels: {app: app}}\n"
        "    spec:\n"
        "      containers:\n"
        f"      - name: web\n"
        f"        image: {image}\n"
        f"        ports: [{{containerPort: {port}}}]\n"
        f"        env: {env}\n"
        f"{side}"
        "---\n"
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata: {name: app}\n"
        "spec:\n"
        "  selector: {app: app}\n"
        f"  ports: [{{port: 80, targetPort: {port}}}]\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata: {name: app-config}\n"
        f"data: {data}\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Pod\n"
        "metadata: {name: app-pod, labels: {app: app-pod}}\n"
        "spec:\n"
        f"  containers: [{{name: c, image: {image}}}]\n"
    )


@pytest.fixture(scope="module")
def applied(cloudlet: CloudletProcess) -> CloudletProcess:
    out = cloudlet.kubectl("apply", "-f", "-", input=manifest()).stdout.splitlines()
    assert out == [
        "deployment.apps/app created",
        "service/app created",
        "configmap/app-config created",
        "pod/app-pod created",
    ]
    return cloudlet


def test_apply_created_objects_match(applied: CloudletProcess) -> None:
    k = applied.kubectl
    d = get(k, "deploy", "app")
    cs = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["web", "side"]
    assert cs[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert cs[0]["ports"][0]["containerPort"] == 8080
    last = json.loads(d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 2
    assert get(k, "cm", "app-config")["data"] == {"mode": "fast", "level": "1"}
    assert get(k, "svc", "app")["spec"]["ports"][0]["targetPort"] == 8080
    assert get(k, "pod", "app-pod")["spec"]["containers"][0]["image"] == "busybox:1.36"


def test_apply_again_unchanged(applied: CloudletProcess) -> None:
    k = applied.kubectl
    rvs = {n: get(k, *n.split("/"))["metadata"]["resourceVersion"] for n in ("deploy/app", "svc/app", "cm/app-config", "pod/app-pod")}
    out = k("apply", "-f", "-", input=manifest()).stdout.splitlines()
    assert out == [
        "deployment.apps/app unchanged",
        "service/app unchanged",
        "configmap/app-config unchanged",
        "pod/app-pod unchanged",
    ]
    for n, rv in rvs.items():
        assert get(k, *n.split("/"))["metadata"]["resourceVersion"] == rv, n


def test_apply_changes_configured(applied: CloudletProcess) -> None:
    k = applied.kubectl
    gen = get(k, "deploy", "app")["metadata"]["generation"]
    # someone changes a field out of band that the manifest never mentions: it must survive
    k("patch", "deploy", "app", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"web","workingDir":"/srv"}]}}}}')
    gen += 1
    new = manifest(image="busybox:1.37", port=9090, env='[{name: A, value: "10"}]', sidecar=False,
                   data="{mode: slow}")
    out = k("apply", "-f", "-", input=new).stdout.splitlines()
    assert out == [
        "deployment.apps/app configured",
        "service/app configured",
        "configmap/app-config configured",
        "pod/app-pod configured",
    ]
    d = get(k, "deploy", "app")
    cs = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["web"], "container removed from the manifest must go"
    assert cs[0]["image"] == "busybox:1.37"
    assert cs[0]["env"] == [{"name": "A", "value": "10"}], "env entry B removed from the manifest must go"
    assert [p["containerPort"] for p in cs[0]["ports"]] == [9090]
    assert cs[0].get("workingDir") == "/srv", "strategic merge keeps fields the manifest never owned"
    assert d["metadata"]["generation"] == gen + 1
    assert get(k, "cm", "app-config")["data"] == {"mode": "slow"}, "key removed from the manifest must go"
    assert [p["targetPort"] for p in get(k, "svc", "app")["spec"]["ports"]] == [9090]
    assert get(k, "pod", "app-pod")["spec"]["containers"][0]["image"] == "busybox:1.37"
    out = k("apply", "-f", "-", input=new).stdout
    assert out.count("unchanged") == 4, out


def test_apply_keeps_fields_set_by_others(applied: CloudletProcess) -> None:
    k = applied.kubectl
    k("label", "cm", "app-config", "owner=someone-else")
    k("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {mode: slower}\n")
    cm = get(k, "cm", "app-config")
    assert cm["data"] == {"mode": "slower"}
    assert cm["metadata"]["labels"] == {"owner": "someone-else"}


def test_apply_list(cloudlet: CloudletProcess) -> None:
    doc = textwrap.dedent("""\
    apiVersion: v1
    kind: List
    items:
    - apiVersion: v1
      kind: ConfigMap
      metadata: {name: listed-cm}
      data: {a: "1"}
    - apiVersion: v1
      kind: ServiceAccount
      metadata: {name: listed-sa}
    """)
    k = cloudlet.kubectl
    assert k("apply", "-f", "-", input=doc).stdout.splitlines() == ["configmap/listed-cm created", "serviceaccount/listed-sa created"]
    assert k("apply", "-f", "-", input=doc).stdout.splitlines() == ["configmap/listed-cm unchanged", "serviceaccount/listed-sa unchanged"]
    assert get(k, "cm", "listed-cm")["data"] == {"a": "1"}
    assert get(k, "sa", "listed-sa")["metadata"]["name"] == "listed-sa"


def test_apply_dry_run_server_writes_nothing(kubectl) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: b}\n"
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=doc).stdout
    assert "configmap/dry created (server dry run)" in out
    assert kubectl("get", "cm", "dry", check=False).returncode == 1


def test_create_and_replace_from_file(kubectl) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: made, labels: {x: '1'}}\ndata: {a: '1'}\n"
    assert kubectl("create", "-f", "-", input=doc).stdout.strip() == "configmap/made created"
    again = kubectl("create", "-f", "-", input=doc, check=False)
    assert again.returncode == 1
    assert 'configmaps "made" already exists' in again.stderr
    assert "AlreadyExists" in again.stderr
    rv = get(kubectl, "cm", "made")["metadata"]["resourceVersion"]
    out = kubectl("replace", "-f", "-", input=doc.replace("a: '1'", "b: '2'")).stdout
    assert out.strip() == "configmap/made replaced"
    cm = get(kubectl, "cm", "made")
    assert cm["data"] == {"b": "2"}
    assert int(cm["metadata"]["resourceVersion"]) > int(rv)
    # replace with a stale resourceVersion is a conflict
    stale = doc.replace("labels:", f"resourceVersion: '{rv}', labels:")
    p = kubectl("replace", "-f", "-", input=stale, check=False)
    assert p.returncode == 1 and "Conflict" in p.stderr and "the object has been modified" in p.stderr
    # replace of something missing is NotFound
    p = kubectl("replace", "-f", "-", input=doc.replace("made", "never-made"), check=False)
    assert p.returncode == 1 and 'configmaps "never-made" not found' in p.stderr


def test_apply_over_created_object(kubectl) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: was-created}\ndata: {k: v}\n"
    kubectl("create", "-f", "-", input=doc)
    p = kubectl("apply", "-f", "-", input=doc.replace("k: v", "k: w"))
    assert p.stdout.strip() == "configmap/was-created configured"
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in p.stderr
    cm = get(kubectl, "cm", "was-created")
    assert cm["data"] == {"k": "w"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in cm["metadata"]["annotations"]


def test_replace_force(kubectl) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: forced}\ndata: {k: v}\n"
    kubectl("create", "-f", "-", input=doc)
    uid = get(kubectl, "cm", "forced")["metadata"]["uid"]
    out = kubectl("replace", "--force", "-f", "-", input=doc.replace("k: v", "k: z")).stdout
    assert out.splitlines() == ['configmap "forced" deleted', "configmap/forced replaced"]
    cm = get(kubectl, "cm", "forced")
    assert cm["data"] == {"k": "z"} and cm["metadata"]["uid"] != uid


def test_create_configmap_generator(kubectl) -> None:
    out = kubectl("create", "configmap", "gen-cm", "--from-literal=a=1", "--from-literal=b=two").stdout
    assert out.strip() == "configmap/gen-cm created"
    assert get(kubectl, "cm", "gen-cm")["data"] == {"a": "1", "b": "two"}


def test_create_secret_generator(kubectl) -> None:
    kubectl("create", "secret", "generic", "gen-secret", "--from-literal=password=s3cr3t")
    s = get(kubectl, "secret", "gen-secret")
    assert s["type"] == "Opaque"
    assert s["data"] == {"password": "czNjcjN0"}


def test_create_namespace_generator(kubectl) -> None:
    assert kubectl("create", "namespace", "gen-ns").stdout.strip() == "namespace/gen-ns created"
    assert get(kubectl, "ns", "gen-ns")["status"]["phase"] == "Active"


def test_create_deployment_generator(kubectl) -> None:
    kubectl("create", "deployment", "gen-deploy", "--image=busybox:1.36", "--replicas=3", "--port=8080")
    d = get(kubectl, "deploy", "gen-deploy")
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["selector"] == {"matchLabels": {"app": "gen-deploy"}}
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "busybox:1.36" and c["ports"][0]["containerPort"] == 8080


def test_create_serviceaccount_generator(kubectl) -> None:
    assert kubectl("create", "serviceaccount", "gen-sa").stdout.strip() == "serviceaccount/gen-sa created"
    assert get(kubectl, "sa", "gen-sa")["metadata"]["name"] == "gen-sa"


def test_create_priorityclass_generator(kubectl) -> None:
    kubectl("create", "priorityclass", "gen-pc", "--value=1000", "--description=test")
    pc = get(kubectl, "pc", "gen-pc")
    assert pc["value"] == 1000 and pc["description"] == "test"
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"


def test_create_generator_dry_run_client_works(kubectl) -> None:
    """The generator's object itself is fine: piped through JSON it is accepted."""
    doc = kubectl("create", "configmap", "gen-json", "--from-literal=k=v", "--dry-run=client", "-o", "json").stdout
    kubectl("create", "-f", "-", input=doc)
    assert get(kubectl, "cm", "gen-json")["data"] == {"k": "v"}


def test_label(kubectl) -> None:
    kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lab}\n")
    assert kubectl("label", "cm", "lab", "color=red").stdout.strip() == "configmap/lab labeled"
    p = kubectl("label", "cm", "lab", "color=blue", check=False)
    assert p.returncode == 1 and "already has a value (red)" in p.stderr
    assert get(kubectl, "cm", "lab")["metadata"]["labels"] == {"color": "red"}
    kubectl("label", "cm", "lab", "color=blue", "--overwrite")
    assert get(kubectl, "cm", "lab")["metadata"]["labels"] == {"color": "blue"}
    assert kubectl("label", "cm", "lab", "color-").stdout.strip() == "configmap/lab unlabeled"
    assert not get(kubectl, "cm", "lab")["metadata"].get("labels")
    p = kubectl("label", "cm", "lab", "bad key!=x", check=False)
    assert p.returncode != 0
    p = kubectl("label", "cm", "lab", "ok=not valid value", check=False)
    assert p.returncode != 0
    # a server-side rejection of an invalid label value is 422 Invalid
    p = kubectl("patch", "cm", "lab", "--type=merge", "-p", '{"metadata":{"labels":{"k":"-bad-"}}}', check=False)
    assert p.returncode == 1 and "Invalid" in p.stderr and "metadata.labels" in p.stderr, p.stderr


def test_annotate(kubectl) -> None:
    kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ann}\n")
    assert kubectl("annotate", "cm", "ann", "note=hello world").stdout.strip() == "configmap/ann annotated"
    p = kubectl("annotate", "cm", "ann", "note=other", check=False)
    assert p.returncode == 1 and "already has a value" in p.stderr
    kubectl("annotate", "cm", "ann", "note=other", "--overwrite")
    anns = get(kubectl, "cm", "ann")["metadata"]["annotations"]
    assert anns["note"] == "other"
    kubectl("annotate", "cm", "ann", "note-")
    assert "note" not in (get(kubectl, "cm", "ann")["metadata"].get("annotations") or {})


def _deploy(kubectl, name: str, replicas: int = 2) -> None:
    kubectl("apply", "-f", "-", input=textwrap.dedent(f"""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {name}}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: {name}}}}}
      template:
        metadata: {{labels: {{app: {name}}}}}
        spec:
          containers:
          - {{name: a, image: busybox:1.36, env: [{{name: X, value: "1"}}]}}
          - {{name: b, image: busybox:1.36}}
    """))


def test_patch_strategic(kubectl) -> None:
    _deploy(kubectl, "sp")
    out = kubectl("patch", "deploy", "sp", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"busybox:1.37"}]}}}}')
    assert out.stdout.strip() == "deployment.apps/sp patched"
    cs = get(kubectl, "deploy", "sp")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == [("a", "busybox:1.36"), ("b", "busybox:1.37")]
    assert cs[0]["env"] == [{"name": "X", "value": "1"}]
    # $patch: delete removes one list element by merge key
    kubectl("patch", "deploy", "sp", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}}}')
    cs = get(kubectl, "deploy", "sp")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["b"]
    out = kubectl("patch", "deploy", "sp", "-p", '{"spec":{"replicas":2}}')
    assert out.stdout.strip() == "deployment.apps/sp patched (no change)"


def test_patch_merge(kubectl) -> None:
    _deploy(kubectl, "mp")
    kubectl("patch", "deploy", "mp", "--type=merge", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"busybox:1.37"}]}}}}')
    cs = get(kubectl, "deploy", "mp")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["only"], "a merge patch replaces lists"
    kubectl("patch", "deploy", "mp", "--type=merge", "-p", '{"metadata":{"labels":{"a":"1","b":"2"}}}')
    kubectl("patch", "deploy", "mp", "--type=merge", "-p", '{"metadata":{"labels":{"a":null}}}')
    assert get(kubectl, "deploy", "mp")["metadata"]["labels"] == {"b": "2"}


def test_patch_json(cloudlet: CloudletProcess, kubectl) -> None:
    _deploy(kubectl, "jp")
    kubectl("patch", "deploy", "jp", "--type=json", "-p",
            '[{"op":"replace","path":"/spec/replicas","value":5},'
            '{"op":"add","path":"/metadata/labels","value":{"x":"y"}},'
            '{"op":"remove","path":"/spec/template/spec/containers/1"}]')
    d = get(kubectl, "deploy", "jp")
    assert d["spec"]["replicas"] == 5
    assert d["metadata"]["labels"] == {"x": "y"}
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["a"]
    rv = d["metadata"]["resourceVersion"]
    # a failing `test` op: 422 from the server, nothing written
    p = kubectl("patch", "deploy", "jp", "--type=json", "-p", '[{"op":"test","path":"/spec/replicas","value":6},'
                '{"op":"replace","path":"/spec/replicas","value":7}]', check=False)
    assert p.returncode == 1
    assert "test failed" in p.stderr or "testing value" in p.stderr, p.stderr
    code, body = cloudlet.request(
        "PATCH", "/apis/apps/v1/namespaces/default/deployments/jp",
        raw=b'[{"op":"test","path":"/spec/replicas","value":6}]', content_type="application/json-patch+json",
    )
    assert 400 <= code < 500 and code == 422, (code, body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    # removing something absent is also a client error, never a 500
    code, body = cloudlet.request(
        "PATCH", "/apis/apps/v1/namespaces/default/deployments/jp",
        raw=b'[{"op":"remove","path":"/spec/nothing/here"}]', content_type="application/json-patch+json",
    )
    assert 400 <= code < 500, (code, body)
    d = get(kubectl, "deploy", "jp")
    assert d["spec"]["replicas"] == 5 and d["metadata"]["resourceVersion"] == rv


def test_patch_missing_object(kubectl) -> None:
    p = kubectl("patch", "cm", "nope", "-p", '{"data":{"a":"b"}}', check=False)
    assert p.returncode == 1 and 'configmaps "nope" not found' in p.stderr


def test_scale(kubectl) -> None:
    _deploy(kubectl, "sc", replicas=2)
    assert kubectl("scale", "deploy", "sc", "--replicas=4").stdout.strip() == "deployment.apps/sc scaled"
    assert get(kubectl, "deploy", "sc")["spec"]["replicas"] == 4
    p = kubectl("scale", "deploy", "sc", "--current-replicas=2", "--replicas=1", check=False)
    assert p.returncode == 1
    assert "Expected replicas to be 2, was 4" in p.stderr, p.stderr
    assert get(kubectl, "deploy", "sc")["spec"]["replicas"] == 4
    kubectl("scale", "deploy", "sc", "--current-replicas=4", "--replicas=0")
    assert get(kubectl, "deploy", "sc")["spec"]["replicas"] == 0
    kubectl("apply", "-f", "-", input=textwrap.dedent("""\
    apiVersion: apps/v1
    kind: ReplicaSet
    metadata: {name: sc-rs}
    spec:
      replicas: 1
      selector: {matchLabels: {app: sc-rs}}
      template:
        metadata: {labels: {app: sc-rs}}
        spec: {containers: [{name: c, image: busybox:1.36}]}
    """))
    kubectl("scale", "rs", "sc-rs", "--replicas=3")
    assert get(kubectl, "rs", "sc-rs")["spec"]["replicas"] == 3
    p = kubectl("scale", "cm", "lab", "--replicas=3", check=False)
    assert p.returncode != 0


def test_edit_with_editor_script(cloudlet: CloudletProcess) -> None:
    k = cloudlet.kubectl
    k("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: edited}\ndata: {mode: fast}\n")
    import os
    import subprocess

    env = {**os.environ, "KUBECONFIG": str(cloudlet.kubeconfig), "HOME": str(cloudlet.data_dir),
           "KUBE_EDITOR": "sed -i -e s/fast/slow/"}
    p = subprocess.run(["kubectl", "edit", "cm", "edited"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "configmap/edited edited"
    assert get(k, "cm", "edited")["data"] == {"mode": "slow"}
    env["KUBE_EDITOR"] = "true"  # no change
    p = subprocess.run(["kubectl", "edit", "cm", "edited"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and "Edit cancelled, no changes made." in (p.stdout + p.stderr)
