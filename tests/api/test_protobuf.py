"""Tests for cloudlet.api.protobuf: decoding the protobuf bodies client-go sends.

The fixtures under ``fixtures/protobuf/`` are real request bodies captured
from kubectl v1.32 (``NAME.bin``) next to what ``kubectl ... --dry-run=client
-o json`` prints for the same command (``NAME.json``; ``kubectl create token``
has no dry run, so its JSON is written by hand from the Go types). When
kubectl is installed the same capture also runs live against a throwaway
loopback HTTP server. Regenerate the fixtures with
``.venv/bin/python tests/api/test_protobuf.py``.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudlet.api import protobuf_schema
from cloudlet.api.protobuf import (
    MAGIC,
    MAX_VALUES,
    PROTOBUF,
    ProtobufError,
    UnsupportedKindError,
    decode_protobuf,
    schema,
)

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
KUBECTL = shutil.which("kubectl")

# --- a minimal protobuf encoder for hand-built messages ----------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vint(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def ld(num: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def entry(num: int, key: str, value: bytes | str) -> bytes:
    return ld(num, ld(1, key) + ld(2, value))


def envelope(api_version: str, kind: str, raw: bytes, *, prefix: bytes = MAGIC) -> bytes:
    return prefix + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw)


def meta(name: str, **extra: bytes) -> bytes:
    return ld(1, ld(1, name) + b"".join(extra.values()))


# --- capturing kubectl's request bodies ----------------------------------------------

# group/version -> [(plural, kind, namespaced)]
_RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("namespaces", "Namespace", False),
        ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True),
        ("pods", "Pod", True),
        ("resourcequotas", "ResourceQuota", True),
    ],
    "apps/v1": [("deployments", "Deployment", True), ("replicasets", "ReplicaSet", True)],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "autoscaling/v1": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "scheduling.k8s.io/v1": [("priorityclasses", "PriorityClass", False)],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("clusterroles", "ClusterRole", False),
        ("rolebindings", "RoleBinding", True),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    "networking.k8s.io/v1": [("ingresses", "Ingress", True)],
}

_DEPLOYMENT_WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "uid": "0b9f6a55-4a5e-4f51-9a43-6c1a8e0f5d01",
    },
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
        },
    },
}


# Objects the capture server serves on GET (kubectl autoscale reads its target first).
_OBJECTS: dict[str, Any] = {"/apis/apps/v1/namespaces/default/deployments/web": _DEPLOYMENT_WEB}
# Subresources kubectl looks up in discovery: resource -> (subresource, group, version, kind).
_SUBRESOURCES = {
    "deployments": ("scale", "autoscaling", "v1", "Scale"),
    "replicasets": ("scale", "autoscaling", "v1", "Scale"),
    "serviceaccounts": ("token", "authentication.k8s.io", "v1", "TokenRequest"),
}


def _discovery(path: str) -> Any:
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"]}
    if path == "/apis":
        groups: dict[str, list[str]] = {}
        for gv in _RESOURCES:
            if "/" in gv:
                g, v = gv.split("/")
                groups.setdefault(g, []).append(v)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in groups.items()
            ],
        }
    gv = path.removeprefix("/api/").removeprefix("/apis/")
    if gv in _RESOURCES:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": [
                {
                    "name": plural,
                    "singularName": kind.lower(),
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                }
                for plural, kind, namespaced in _RESOURCES[gv]
            ]
            + [
                {
                    "name": f"{plural}/{sub[0]}",
                    "singularName": "",
                    "namespaced": True,
                    "group": sub[1],
                    "version": sub[2],
                    "kind": sub[3],
                    "verbs": ["create", "get", "patch", "update"],
                }
                for plural, _kind, _ns in _RESOURCES[gv]
                if (sub := _SUBRESOURCES.get(plural))
            ],
        }
    return None


@dataclass
class _Recorder:
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)
    reply: Any = None


class _Handler(BaseHTTPRequestHandler):
    server: _CaptureServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        doc = _discovery(path) or _OBJECTS.get(path)
        if doc is None:
            self._send(
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "code": 404,
                    "reason": "NotFound",
                },
            )
        else:
            self._send(200, doc)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        rec = self.server.recorder
        rec.posts.append((self.path, self.headers.get("Content-Type", ""), body))
        self._send(201, rec.reply)


class _CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.recorder = _Recorder()


@dataclass(frozen=True)
class Case:
    name: str
    command: str  # kubectl arguments, shell-quoted; @DATA is the inputs directory
    # For commands without --dry-run: the JSON the body must decode to (written
    # by hand from the Go types) and what the server answers.
    expected: dict[str, Any] | None = None
    reply: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        "configmap",
        "create configmap cm1 --from-literal=a=1 '--from-literal=b=two words'"
        " --from-file=bin=@DATA/blob.bin --from-file=@DATA/conf.txt",
    ),
    Case("configmap-env", "create configmap cm2 --from-env-file=@DATA/app.env"),
    Case(
        "secret-generic",
        "create secret generic s1 --from-literal=user=admin --from-literal=password=s3cr=t"
        " --from-file=@DATA/blob.bin",
    ),
    Case(
        "secret-generic-typed",
        "create secret generic s2 --type=example.com/x --from-literal=k=v --append-hash",
    ),
    Case("secret-tls", "create secret tls tls1 --cert=@DATA/tls.crt --key=@DATA/tls.key"),
    Case(
        "secret-docker-registry",
        "create secret docker-registry reg1 --docker-server=r.example.com --docker-username=u"
        " --docker-password=p --docker-email=u@example.com",
    ),
    Case("namespace", "create namespace ns1"),
    Case("serviceaccount", "create serviceaccount sa1"),
    Case("service-clusterip", "create service clusterip svc1 --tcp=80:8080"),
    Case(
        "service-clusterip-headless",
        "create service clusterip svc2 --clusterip=None --tcp=5678:8080 --tcp=53:dns",
    ),
    Case("service-nodeport", "create service nodeport svc3 --tcp=80:8080 --node-port=30080"),
    Case("service-loadbalancer", "create service loadbalancer svc4 --tcp=443:https"),
    Case("service-externalname", "create service externalname svc5 --external-name=db.example.com"),
    Case("deployment", "create deployment web --image=nginx --replicas=0 --port=8080"),
    Case(
        "deployment-multi",
        "create deployment multi --image=busybox --image=nginx:1.27 --replicas=3",
    ),
    Case("deployment-command", "create deployment cmd --image=busybox -- sleep 3600"),
    Case(
        "priorityclass",
        "create priorityclass high --value=1000000 --global-default=true"
        " --preemption-policy=Never '--description=important things'",
    ),
    Case("priorityclass-negative", "create priorityclass low --value=-5"),
    Case("autoscale", "autoscale deployment web --min=2 --max=5 --cpu-percent=80"),
    Case("autoscale-max-only", "autoscale deployment web --max=3 --name=web-hpa"),
    Case("job", "create job j1 --image=busybox -- echo hi"),
    Case(
        "cronjob",
        "create cronjob cj1 --image=busybox '--schedule=*/5 * * * *' --restart=OnFailure -- date",
    ),
    Case(
        "quota",
        "create quota q1 --hard=cpu=1500m,memory=2Gi,pods=10,services.nodeports=0"
        " --scopes=NotBestEffort",
    ),
    Case("pdb", "create poddisruptionbudget pdb1 --selector=app=web --min-available=50%"),
    Case("pdb-int", "create poddisruptionbudget pdb2 --selector=app=web --max-unavailable=1"),
    Case(
        "role",
        "create role r1 --verb=get,list --resource=pods,deployments.apps --resource-name=a",
    ),
    Case("clusterrole", "create clusterrole cr1 --verb=get --non-resource-url=/healthz"),
    Case(
        "rolebinding",
        "create rolebinding rb1 --role=r1 --user=alice --serviceaccount=default:sa1 --group=devs",
    ),
    Case("clusterrolebinding", "create clusterrolebinding crb1 --clusterrole=cr1 --user=bob"),
    Case(
        "token",
        "create token sa1 --audience=api --audience=vault --duration=1h"
        " --bound-object-kind=Pod --bound-object-name=p1 --bound-object-uid=7c1e3a52",
        expected={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {},
            "spec": {
                "audiences": ["api", "vault"],
                "expirationSeconds": 3600,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": "p1",
                    "uid": "7c1e3a52",
                },
            },
            "status": {"token": "", "expirationTimestamp": None},
        },
        reply={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": "sa1", "namespace": "default"},
            "spec": {"audiences": ["api"]},
            "status": {
                "token": "header.payload.sig",
                "expirationTimestamp": "2030-01-01T00:00:00Z",
            },
        },
    ),
    Case(
        "ingress",
        "create ingress ing1 --class=nginx '--rule=example.com/path*=svc1:8080,tls=my-cert'"
        " --default-backend=svc1:80 --annotation=a.example.com/x=y",
    ),
]


def _write_inputs(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / "blob.bin").write_bytes(bytes(range(256)) + b"\xff\xfe\x00")
    (data / "conf.txt").write_text("key: value\nunicode: \u00e9\u2713\n")
    (data / "app.env").write_text("# comment\nA=1\nB=hello world\nEMPTY=\n")
    if not (data / "tls.key").exists():
        if shutil.which("openssl") is None:
            pytest.skip("openssl not installed")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=cloudlet-test",
                "-keyout",
                str(data / "tls.key"),
                "-out",
                str(data / "tls.crt"),
            ],
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="module")
def capture_server() -> Iterator[_CaptureServer]:
    srv = _CaptureServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def capture(srv: _CaptureServer, case: Case, work: Path) -> tuple[str, bytes, dict[str, Any]]:
    """Run kubectl for ``case``: the dry-run JSON first, then the real request.

    Returns the request's content type, its body and the JSON it must decode to.
    """
    _write_inputs(work / "data")
    port = srv.server_address[1]
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "contexts": [
                    {"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    args = shlex.split(case.command.replace("@DATA", str(work / "data")))
    sep = args.index("--") if "--" in args else len(args)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "KUBECONFIG": str(kubeconfig),
    }
    base = [KUBECTL or "kubectl", "--cache-dir", str(work / "cache")]

    def run(extra: list[str]) -> str:
        p = subprocess.run(
            [*base, *args[:sep], *extra, *args[sep:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, f"kubectl {' '.join(args)} {extra}: {p.stderr}"
        return p.stdout

    if case.expected is not None:
        expected, srv.recorder.reply = case.expected, case.reply
    else:
        expected = json.loads(run(["--dry-run=client", "-o", "json"]))
        srv.recorder.reply = expected
    srv.recorder.posts.clear()
    run(["--validate=false"] if args[0] == "create" and args[1] != "token" else [])
    assert len(srv.recorder.posts) == 1, srv.recorder.posts
    _path, content_type, body = srv.recorder.posts[0]
    return content_type, body, expected


def comparable(expected: Any) -> Any:
    """What the decoder must produce for ``expected`` (kubectl v1.32's dry-run JSON).

    The newer field tables mark ``metadata.creationTimestamp`` omitzero, so the
    ``null`` that v1.32 prints is simply absent (the server sets it anyway).
    """
    if isinstance(expected, dict):
        return {
            k: comparable(v)
            for k, v in expected.items()
            if not (k == "creationTimestamp" and v is None)
        }
    if isinstance(expected, list):
        return [comparable(v) for v in expected]
    return expected


def _fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.bin"))


# --- real kubectl bodies ---------------------------------------------------------------


def test_fixtures_cover_the_required_commands() -> None:
    names = set(_fixture_names())
    for required in (
        "configmap",
        "secret-generic",
        "secret-tls",
        "secret-docker-registry",
        "namespace",
        "serviceaccount",
        "service-clusterip",
        "service-nodeport",
        "deployment",
        "priorityclass",
        "autoscale",
    ):
        assert required in names


@pytest.mark.parametrize("name", _fixture_names())
def test_fixture_decodes_to_dry_run_json(name: str) -> None:
    body = (FIXTURES / f"{name}.bin").read_bytes()
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    assert body.startswith(MAGIC)
    assert decode_protobuf(body) == comparable(expected)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.parametrize("case", CASES, ids=str)
def test_live_kubectl_body_decodes_to_dry_run_json(
    case: Case, capture_server: _CaptureServer, tmp_path: Path
) -> None:
    content_type, body, expected = capture(capture_server, case, tmp_path)
    assert content_type == PROTOBUF
    assert decode_protobuf(body) == comparable(expected)


def test_deployment_keeps_zero_replicas_and_empty_structs() -> None:
    obj = decode_protobuf((FIXTURES / "deployment.bin").read_bytes())
    assert obj["spec"]["replicas"] == 0  # *int32: zero is meaningful
    assert obj["spec"]["strategy"] == {}  # Go value struct: always marshalled
    assert obj["status"] == {}
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {}
    assert container["ports"] == [{"containerPort": 8080}]  # hostPort 0 etc. omitted


def test_secret_bytes_are_base64() -> None:
    obj = decode_protobuf((FIXTURES / "secret-generic.bin").read_bytes())
    assert base64.b64decode(obj["data"]["password"]) == b"s3cr=t"
    assert base64.b64decode(obj["data"]["blob.bin"]) == bytes(range(256)) + b"\xff\xfe\x00"


# --- hand-built messages: field semantics --------------------------------------------------


def test_configmap_maps_sorted_and_binary_data_base64() -> None:
    raw = (
        meta("cm", labels=entry(11, "z", "1") + entry(11, "a", "2"))
        + entry(2, "k", "v")
        + entry(3, "b", b"\x00\xff")
    )
    obj = decode_protobuf(envelope("v1", "ConfigMap", raw))
    assert obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "labels": {"a": "2", "z": "1"}},
        "data": {"k": "v"},
        "binaryData": {"b": "AP8="},
    }
    assert list(obj["metadata"]["labels"]) == ["a", "z"]


def test_go_zero_values_dropped_only_where_omitempty() -> None:
    # ServicePort: name (omitempty) "", protocol (omitempty) "", port (no omitempty) 0,
    # targetPort is a value IntOrString (always marshalled), nodePort (omitempty) 0.
    port = ld(1, "") + ld(2, "") + vint(3, 0) + vint(5, 0)
    obj = decode_protobuf(envelope("v1", "Service", meta("s") + ld(2, ld(1, port))))
    assert obj["spec"] == {"ports": [{"port": 0, "targetPort": 0}]}
    assert obj["status"] == {"loadBalancer": {}}


def test_pointer_scalars_keep_zero_values() -> None:
    spec = vint(1, 0) + vint(4, 0)  # replicas=0 (*int32), minReadySeconds=0 (int32, omitempty)
    obj = decode_protobuf(envelope("apps/v1", "ReplicaSet", meta("rs") + ld(2, spec)))
    assert obj["spec"] == {
        "replicas": 0,
        "selector": None,
        "template": {"metadata": {}, "spec": {"containers": None}},
    }


def test_non_omitempty_pointer_and_slice_absent_are_null() -> None:
    # OwnerReference: apiVersion/kind/name/uid have no omitempty; controller is *bool omitempty.
    owner = ld(5, "apps/v1") + ld(1, "ReplicaSet") + vint(6, 0)
    obj = decode_protobuf(envelope("v1", "Pod", meta("p", owner=ld(13, owner))))
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": "", "controller": False}
    ]
    assert obj["spec"]["containers"] is None


def test_negative_ints_use_ten_byte_varints() -> None:
    assert len(varint(-5)) == 10
    obj = decode_protobuf(
        envelope("scheduling.k8s.io/v1", "PriorityClass", meta("p") + vint(2, -5))
    )
    assert obj["value"] == -5
    big = decode_protobuf(envelope("v1", "Pod", meta("p", g=vint(7, -(2**62)))))
    assert big["metadata"]["generation"] == -(2**62)


def test_packed_repeated_ints_accepted() -> None:
    # PodSecurityContext.supplementalGroups (field 4, []int64), packed and unpacked.
    packed = ld(4, varint(1) + varint(2))
    psc = packed + vint(4, 3)
    obj = decode_protobuf(envelope("v1", "Pod", meta("p") + ld(2, ld(14, psc))))
    assert obj["spec"]["securityContext"]["supplementalGroups"] == [1, 2, 3]


def test_time_and_micro_time() -> None:
    ts = ld(8, vint(1, 1795990288) + vint(2, 123_456_789))
    obj = decode_protobuf(envelope("v1", "Namespace", meta("n", ts=ts)))
    assert obj["metadata"]["creationTimestamp"] == "2026-11-29T22:11:28Z"
    lease = ld(2, ld(3, vint(1, 0) + vint(2, 1_999)) + ld(4, b""))  # acquireTime, renewTime
    obj = decode_protobuf(envelope("coordination.k8s.io/v1", "Lease", meta("l") + lease))
    assert obj["spec"] == {"acquireTime": "1970-01-01T00:00:00.000001Z", "renewTime": None}
    zero = ld(8, vint(1, -62135596800))
    assert (
        "creationTimestamp"
        not in decode_protobuf(envelope("v1", "Namespace", meta("n", ts=zero)))["metadata"]
    )
    with pytest.raises(ProtobufError, match="out of range"):
        decode_protobuf(envelope("v1", "Namespace", meta("n", ts=ld(8, vint(1, 2**62)))))


def test_int_or_string_and_quantity() -> None:
    ports = ld(1, ld(1, "http") + vint(3, 80) + ld(4, vint(1, 1) + ld(3, "web"))) + ld(
        1, vint(3, 81) + ld(4, vint(2, 8081))
    )
    obj = decode_protobuf(envelope("v1", "Service", meta("s") + ld(2, ports)))
    assert [p["targetPort"] for p in obj["spec"]["ports"]] == ["web", 8081]
    hard = entry(1, "cpu", ld(1, "1500m")) + entry(1, "pods", b"")
    obj = decode_protobuf(envelope("v1", "ResourceQuota", meta("q") + ld(2, hard)))
    assert obj["spec"]["hard"] == {"cpu": "1500m", "pods": "0"}
    for bad in ("", "1.5x", "abc", "1e99999999999"):
        with pytest.raises(ProtobufError):
            decode_protobuf(
                envelope("v1", "ResourceQuota", meta("q") + ld(2, entry(1, "cpu", ld(1, bad))))
            )
    with pytest.raises(ProtobufError, match="IntOrString"):
        decode_protobuf(envelope("v1", "Service", meta("s") + ld(2, ld(1, ld(4, vint(1, 7))))))


def test_inline_structs_merge_into_parent() -> None:
    # Volume embeds VolumeSource; ConfigMapVolumeSource embeds LocalObjectReference.
    cm_vol = ld(1, ld(1, "cfg")) + vint(3, 0o644)
    volume = ld(1, "v") + ld(2, ld(19, cm_vol))
    probe = ld(1, ld(2, ld(1, "/healthz") + ld(2, vint(1, 0) + vint(2, 8080)))) + vint(2, 3)
    container = ld(1, "c") + ld(10, probe)
    obj = decode_protobuf(
        envelope("v1", "Pod", meta("p") + ld(2, ld(1, volume) + ld(2, container)))
    )
    assert obj["spec"]["volumes"] == [
        {"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o644}}
    ]
    assert obj["spec"]["containers"][0]["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": 8080},
        "initialDelaySeconds": 3,
    }


def test_managed_fields_and_raw_extension_hold_json() -> None:
    mf = ld(
        17, ld(1, "kubectl") + ld(2, "Apply") + ld(6, "FieldsV1") + ld(7, ld(1, b'{"f:data":{}}'))
    )
    obj = decode_protobuf(envelope("v1", "ConfigMap", meta("cm", mf=mf)))
    assert obj["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {}},
        }
    ]
    inner = envelope("v1", "ConfigMap", meta("nested"))
    rev = meta("r") + ld(2, ld(1, b'{"spec":{"x":1}}')) + vint(3, 2)
    assert decode_protobuf(envelope("apps/v1", "ControllerRevision", rev))["data"] == {
        "spec": {"x": 1}
    }
    rev = meta("r") + ld(2, ld(1, inner))
    assert decode_protobuf(envelope("apps/v1", "ControllerRevision", rev))["data"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "nested"},
    }
    with pytest.raises(ProtobufError, match="JSON"):
        decode_protobuf(
            envelope("apps/v1", "ControllerRevision", meta("r") + ld(2, ld(1, b"{nope")))
        )


def test_named_slice_wrapper_is_a_bare_list() -> None:
    extra = entry(5, "groups", ld(1, "a") + ld(1, "b")) + entry(5, "none", b"")
    obj = decode_protobuf(
        envelope("authorization.k8s.io/v1", "SubjectAccessReview", meta("x") + ld(2, extra))
    )
    assert obj["spec"]["extra"] == {"groups": ["a", "b"], "none": None}


def test_eviction_with_delete_options() -> None:
    # kubectl v1.32 drain happens to send its Eviction as JSON; client-go's typed
    # PolicyV1().Evictions() with a protobuf content type sends this.
    opts = vint(1, 0) + ld(2, ld(1, "uid-1")) + ld(4, "Foreground") + ld(5, "All")
    obj = decode_protobuf(
        envelope("policy/v1", "Eviction", meta("pod-1", ns=ld(3, "default")) + ld(2, opts))
    )
    assert obj == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "pod-1", "namespace": "default"},
        "deleteOptions": {
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "uid-1"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        },
    }
    # DeleteOptions is sent with the group version of the resource being deleted.
    assert decode_protobuf(envelope("apps/v1", "DeleteOptions", vint(3, 1))) == {
        "apiVersion": "apps/v1",
        "kind": "DeleteOptions",
        "orphanDependents": True,
    }


def test_token_request() -> None:
    spec = (
        ld(1, "api") + vint(4, 3600) + ld(3, ld(1, "Pod") + ld(2, "v1") + ld(3, "p") + ld(4, "u1"))
    )
    obj = decode_protobuf(
        envelope("authentication.k8s.io/v1", "TokenRequest", meta("sa") + ld(2, spec))
    )
    assert obj["spec"] == {
        "audiences": ["api"],
        "expirationSeconds": 3600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u1"},
    }
    assert obj["status"] == {"token": "", "expirationTimestamp": None}


def test_hpa_v2_metrics() -> None:
    target = ld(1, "Utilization") + vint(4, 80) + ld(2, ld(1, "500m"))
    metric = ld(1, "Resource") + ld(4, ld(1, "cpu") + ld(2, target))
    spec = (
        ld(1, ld(1, "Deployment") + ld(2, "web") + ld(3, "apps/v1"))
        + vint(2, 0)
        + vint(3, 5)
        + ld(4, metric)
    )
    obj = decode_protobuf(
        envelope("autoscaling/v2", "HorizontalPodAutoscaler", meta("h") + ld(2, spec))
    )
    assert obj["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
        "minReplicas": 0,
        "maxReplicas": 5,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "value": "500m", "averageUtilization": 80},
                },
            }
        ],
    }


def test_unknown_fields_and_groups_are_skipped() -> None:
    junk = (
        vint(99, 1)
        + ld(98, b"zz")
        + varint(97 << 3 | 5)
        + b"abcd"
        + varint(96 << 3 | 1)
        + b"12345678"
    )
    group = varint(95 << 3 | 3) + vint(1, 5) + varint(95 << 3 | 4)
    obj = decode_protobuf(envelope("v1", "Namespace", meta("n") + junk + group))
    assert obj == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "n"},
        "spec": {},
        "status": {},
    }


def test_repeated_embedded_message_merges() -> None:
    raw = meta("n") + ld(1, ld(3, "ns-a"))
    assert decode_protobuf(envelope("v1", "ConfigMap", raw))["metadata"] == {
        "name": "n",
        "namespace": "ns-a",
    }


def test_invalid_utf8_becomes_replacement_char() -> None:
    assert decode_protobuf(envelope("v1", "ConfigMap", meta("n") + entry(2, "k", b"\xffok")))[
        "data"
    ] == {"k": "\ufffdok"}


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty data"),
        (b"{}", "expected prefix"),
        (b"k8s\x01" + ld(1, b""), "expected prefix"),
        (MAGIC, "empty body"),
        (MAGIC + ld(1, ld(1, "v1")), "Kind"),
        (MAGIC + ld(1, ld(2, "Pod")), "apiVersion"),
        (MAGIC + b"\x0a\x05ab", "unexpected EOF"),
        (MAGIC + b"\xff" * 11, "overflow"),
        (MAGIC + varint(1 << 3 | 0) + varint(1), "wrong wireType"),
        (MAGIC + varint(0 << 3 | 2) + b"\x00", "illegal tag"),
        (MAGIC + varint(1 << 3 | 4), "end group"),
        (MAGIC + varint(1 << 3 | 7), "illegal wireType"),
        (envelope("v1", "Pod", vint(1, 5)), "wrong wireType"),
        (
            envelope("v1", "ConfigMap", entry(2, "k", b"") + varint(2 << 3 | 0) + varint(1)),
            "wrong wireType",
        ),
        (envelope("v1", "Pod", meta("p") + varint(99 << 3 | 3) + vint(1, 1)), "unexpected EOF"),
    ],
)
def test_malformed_bodies_raise_protobuf_error(body: bytes, match: str) -> None:
    with pytest.raises(ProtobufError, match=match):
        decode_protobuf(body)


def test_unknown_kind_is_unsupported_kind_error() -> None:
    with pytest.raises(UnsupportedKindError) as err:
        decode_protobuf(envelope("example.com/v1", "Widget", meta("w")))
    assert err.value.kind == "Widget" and err.value.api_version == "example.com/v1"
    assert isinstance(err.value, ProtobufError)


def test_nesting_is_bounded() -> None:
    body = envelope("v1", "ConfigMap", meta("x"))
    for _ in range(20):
        body = envelope("apps/v1", "ControllerRevision", meta("r") + ld(2, ld(1, body)))
    with pytest.raises(ProtobufError, match="nested"):
        decode_protobuf(body)


def test_value_budget_bounds_amplification() -> None:
    # 2 bytes per empty PersistentVolumeClaim template, each of which expands to
    # several Go zero-value structs: rejected instead of costing seconds and memory.
    body = envelope("apps/v1", "StatefulSet", meta("s") + ld(2, b"\x22\x00" * 400_000))
    with pytest.raises(ProtobufError, match="too large"):
        decode_protobuf(body)
    packed = envelope("v1", "Pod", meta("p") + ld(2, ld(14, ld(4, b"\x01" * (MAX_VALUES + 1)))))
    with pytest.raises(ProtobufError, match="too large"):
        decode_protobuf(packed)
    many = envelope(
        "v1", "ConfigMap", meta("cm") + b"".join(entry(2, f"k{i}", "v") for i in range(50_000))
    )
    assert len(decode_protobuf(many)["data"]) == 50_000


# --- the schema -----------------------------------------------------------------------------


def test_schema_references_resolve_and_every_kind_decodes_empty() -> None:
    messages = schema()
    assert len(messages) > 300
    for (api_version, kind), target in protobuf_schema.KINDS.items():
        assert target in messages
        obj = decode_protobuf(envelope(api_version, kind, b""))
        assert obj["apiVersion"] == api_version and obj["kind"] == kind


def test_required_kinds_are_covered() -> None:
    kinds = set(protobuf_schema.KINDS)
    for want in [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("v1", "Pod"),
        ("v1", "Node"),
        ("v1", "Endpoints"),
        ("v1", "Event"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("autoscaling/v1", "HorizontalPodAutoscaler"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("node.k8s.io/v1", "RuntimeClass"),
        ("coordination.k8s.io/v1", "Lease"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("policy/v1", "Eviction"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("authentication.k8s.io/v1", "TokenRequest"),
    ]:
        assert want in kinds


def test_pod_spec_table_is_complete() -> None:
    # Spot-check field numbers against core/v1 generated.proto.
    pod_spec = schema()["core.v1.PodSpec"].by_num
    assert pod_spec[2].json == "containers" and pod_spec[20].json == "initContainers"
    assert (
        pod_spec[34].json == "ephemeralContainers"
        and pod_spec[33].json == "topologySpreadConstraints"
    )
    assert pod_spec[39].json == "resourceClaims" and pod_spec[18].json == "affinity"
    container = schema()["core.v1.Container"].by_num
    assert container[22].json == "startupProbe" and container[19].json == "envFrom"


# --- fuzzing ---------------------------------------------------------------------------------


def _decode_or_error(body: bytes) -> None:
    try:
        decode_protobuf(body)
    except ProtobufError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_or_error(data)
    _decode_or_error(MAGIC + data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "v1/Pod",
            "apps/v1/Deployment",
            "v1/Secret",
            "autoscaling/v2/HorizontalPodAutoscaler",
            "v1/Service",
            "coordination.k8s.io/v1/Lease",
            "apps/v1/ControllerRevision",
        ]
    ),
    st.binary(max_size=200),
)
def test_fuzz_random_message_for_known_kinds(gvk: str, raw: bytes) -> None:
    api_version, _, kind = gvk.rpartition("/")
    _decode_or_error(envelope(api_version, kind, raw))


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_fuzz_mutated_fixtures(data: st.DataObject) -> None:
    names = _fixture_names()
    body = bytearray((FIXTURES / f"{data.draw(st.sampled_from(names))}.bin").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(body) - 1)))
        if op == "flip" and body:
            body[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and body:
            body[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=12))
        elif op == "delete" and body:
            del body[pos : pos + data.draw(st.integers(1, 12))]
        elif op == "truncate":
            del body[pos:]
    _decode_or_error(bytes(body))


_SPECIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "meta.v1.Time": ("int", "int"),
    "meta.v1.MicroTime": ("int", "int"),
    "intstr.IntOrString": ("int", "int", "str"),
    "resource.Quantity": ("quantity",),
    "runtime.RawExtension": ("json",),
    "meta.v1.FieldsV1": ("json",),
}
_INTS = st.one_of(
    st.integers(-3, 3), st.integers(-(2**63), 2**64 - 1), st.sampled_from([-62135596800, 2**31])
)


@st.composite
def schema_message(draw: st.DrawFn, name: str, depth: int = 0) -> bytes:
    """Random bytes shaped like message ``name``: mostly right wire types, some wrong."""
    out = b""
    special = _SPECIAL_FIELDS.get(name)
    if special is not None:
        for num, kind in enumerate(special, 1):
            if not draw(st.booleans()):
                continue
            if kind == "int":
                out += vint(num, draw(_INTS))
            elif kind == "quantity":
                out += ld(num, draw(st.text("0123456789.+-eEinumkKMGTP", max_size=8)))
            elif kind == "json":
                out += ld(num, draw(st.sampled_from([b"", b"{}", b'{"a":[1]}', b"nul", b"1"])))
            else:
                out += ld(num, draw(st.text(max_size=4)))
        return out
    msg = schema()[name]
    for _ in range(draw(st.integers(0, 5 if depth < 5 else 0))):
        f = draw(st.sampled_from(msg.fields))
        if draw(st.integers(0, 20)) == 0:  # a wrong wire type now and then
            out += vint(f.num, 1) if f.message or f.type in ("str", "bytes") else ld(f.num, b"x")
        elif f.label == "{}":
            value = (
                draw(schema_message(f.type, depth + 1))
                if f.message
                else draw(st.binary(max_size=6))
            )
            out += entry(f.num, draw(st.text(max_size=3)), value)
        elif f.message:
            out += ld(f.num, draw(schema_message(f.type, depth + 1)))
        elif f.type in ("str", "bytes"):
            out += ld(f.num, draw(st.binary(max_size=6)))
        elif f.label == "[]" and draw(st.booleans()):
            out += ld(f.num, b"".join(varint(v) for v in draw(st.lists(_INTS, max_size=3))))
        else:
            out += vint(f.num, draw(_INTS))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_schema_shaped_messages(data: st.DataObject) -> None:
    (api_version, kind), target = data.draw(st.sampled_from(sorted(protobuf_schema.KINDS.items())))
    _decode_or_error(envelope(api_version, kind, data.draw(schema_message(target))))


# --- fixture regeneration -------------------------------------------------------------------


def _regenerate() -> None:
    import tempfile

    if KUBECTL is None:
        sys.exit("kubectl is needed to capture fixtures")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    srv = _CaptureServer()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for case in CASES:
                content_type, body, expected = capture(srv, case, Path(tmp) / case.name)
                assert content_type == PROTOBUF, (case.name, content_type)
                (FIXTURES / f"{case.name}.bin").write_bytes(body)
                (FIXTURES / f"{case.name}.json").write_text(
                    json.dumps(expected, indent=2, sort_keys=True) + "\n"
                )
                print(f"{case.name}: {len(body)} bytes")
    finally:
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    _regenerate()
