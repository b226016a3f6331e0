"""Authentication, transport, and every request error as a Kubernetes Status."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.request

import pytest

from tests.e2e.harness import CloudletProcess

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def assert_status(body: object, code: int, reason: str) -> dict:
    assert isinstance(body, dict), body
    assert body.get("kind") == "Status", body
    assert body.get("apiVersion") == "v1"
    assert body.get("status") == "Failure"
    assert body.get("code") == code, body
    assert body.get("reason") == reason, body
    assert isinstance(body.get("message"), str) and body["message"]
    return body


def deployment(name: str, **extra_spec: object) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}},
                 **extra_spec},
    }


# --- authentication ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/namespaces", "/api", "/apis", "/apis/apps/v1", "/openapi/v3", CMS])
def test_no_token_is_401(cloudlet: CloudletProcess, path: str) -> None:
    code, body = cloudlet.request("GET", path, auth=False)
    assert code == 401
    st = assert_status(body, 401, "Unauthorized")
    assert st["message"] == "Unauthorized"


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic YWRtaW46YWRtaW4=", "Bearer", "bearer ", "Token abc"])
def test_wrong_token_is_401(cloudlet: CloudletProcess, header: str) -> None:
    code, body = cloudlet.request("GET", "/api/v1/namespaces", auth=False, headers={"Authorization": header})
    assert code == 401
    assert_status(body, 401, "Unauthorized")


def test_token_with_a_prefix_of_the_real_one_is_401(cloudlet: CloudletProcess) -> None:
    tok = cloudlet.token
    for bad in (tok[:-1], tok + "x", tok.upper() if tok.upper() != tok else tok.lower() + "Z"):
        code, _ = cloudlet.request("GET", "/api", auth=False, headers={"Authorization": f"Bearer {bad}"})
        assert code == 401


def test_writes_without_token_are_401_and_not_applied(cloudlet: CloudletProcess) -> None:
    code, body = cloudlet.request("POST", CMS, {"metadata": {"name": "sneaky"}}, auth=False)
    assert code == 401
    code, _ = cloudlet.request("GET", f"{CMS}/sneaky")
    assert code == 404


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz", "/version"])
def test_health_and_version_need_no_token(cloudlet: CloudletProcess, path: str) -> None:
    code, body = cloudlet.request("GET", path, auth=False)
    assert code == 200, body
    if path == "/version":
        assert body["major"] == "1" and body["gitVersion"].startswith("v1.")
    else:
        assert body == "ok"


def test_kubectl_with_bad_token(cloudlet: CloudletProcess, tmp_path) -> None:
    cfg = cloudlet.kubeconfig.read_text().replace(cloudlet.token, "not-the-token")
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(cfg)
    import os
    import subprocess

    p = subprocess.run(["kubectl", "get", "ns"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "KUBECONFIG": str(bad), "HOME": str(tmp_path)})
    assert p.returncode == 1
    assert "Unauthorized" in p.stderr or "must be logged in" in p.stderr, p.stderr


# --- transport -------------------------------------------------------------------


def test_plain_http_is_refused(cloudlet: CloudletProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", cloudlet.port, timeout=5)
    try:
        conn.request("GET", "/version")
        resp = conn.getresponse()
        # if anything came back, it must not be a served API response
        assert resp.status == 400, resp.status
        assert b"gitVersion" not in resp.read()
    except (http.client.HTTPException, ConnectionError, OSError):
        pass
    finally:
        conn.close()
    assert cloudlet.request("GET", "/readyz", auth=False)[0] == 200


def test_tls_verifies_with_the_ca_and_localhost_names(cloudlet: CloudletProcess) -> None:
    ctx = cloudlet.ssl_context()
    with socket.create_connection(("127.0.0.1", cloudlet.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")
    # an unrelated trust store must not accept the server's certificate
    plain = ssl.create_default_context()
    with pytest.raises(urllib.error.URLError) as ei:
        urllib.request.urlopen(cloudlet.url + "/version", context=plain, timeout=5)
    assert isinstance(ei.value.reason, ssl.SSLCertVerificationError)


# --- routing -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/api/v2", "/api/v1/foos", "/apis/nogroup/v1/foos",
                                  "/apis/apps/v9/deployments", "/api/v1/namespaces/default/foos/x",
                                  "/api/v1/namespaces/default/configmaps/x/status",  # configmaps have no status
                                  "/api/v1/nodes/n1/scale", "/api/v1/namespaces/default/namespaces"])
def test_unknown_path_is_404_status(cloudlet: CloudletProcess, path: str) -> None:
    code, body = cloudlet.request("GET", path)
    assert code == 404, (path, body)
    assert_status(body, 404, "NotFound")


@pytest.mark.parametrize("method,path", [
    ("PUT", CMS),                # update on a collection
    ("PATCH", CMS),              # patch on a collection
    ("POST", f"{CMS}/x"),        # create on a named object
    ("DELETE", "/api/v1/namespaces/default/pods/x/status"),
    ("POST", "/api/v1/namespaces/default/pods/x/status"),
])
def test_unsupported_method_is_405(cloudlet: CloudletProcess, method: str, path: str) -> None:
    code, body = cloudlet.request(method, path, {"metadata": {"name": "x"}})
    assert code == 405, (method, path, body)
    assert_status(body, 405, "MethodNotAllowed")


# --- bodies ----------------------------------------------------------------------------


def test_body_over_3mib_is_413(cloudlet: CloudletProcess) -> None:
    body = {"metadata": {"name": "huge"}, "data": {"a": "x" * (3 * 1024 * 1024)}}
    code, st = cloudlet.request("POST", CMS, body)
    assert code == 413
    assert_status(st, 413, "RequestEntityTooLarge")
    assert cloudlet.request("GET", f"{CMS}/huge")[0] == 404


def test_chunked_body_over_3mib_is_413(cloudlet: CloudletProcess) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", cloudlet.port, context=cloudlet.ssl_context(), timeout=30)
    chunk = b"x" * 65536

    def gen():
        yield b'{"metadata":{"name":"huge-chunked"},"data":{"a":"'
        for _ in range(3 * 1024 * 1024 // len(chunk) + 2):
            yield chunk
        yield b'"}}'

    try:
        conn.request("POST", CMS, body=gen(), encode_chunked=True,
                     headers={"Authorization": f"Bearer {cloudlet.token}", "Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        st = json.loads(resp.read())
        assert resp.status == 413
        assert_status(st, 413, "RequestEntityTooLarge")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close the connection after answering early
    finally:
        conn.close()
    assert cloudlet.request("GET", f"{CMS}/huge-chunked")[0] == 404
    assert cloudlet.request("GET", "/readyz", auth=False)[0] == 200


def test_just_under_the_limit_is_accepted_or_invalid(cloudlet: CloudletProcess) -> None:
    # 1 MiB of data is a valid ConfigMap (Kubernetes' ConfigMap limit is 1 MiB of data)
    body = {"metadata": {"name": "big-ok"}, "data": {"a": "x" * (1024 * 1024 - 10)}}
    code, st = cloudlet.request("POST", CMS, body)
    assert code == 201, st
    # over 1 MiB of data but under the request limit: 422 Invalid (too long), not a 413
    body = {"metadata": {"name": "big-bad"}, "data": {"a": "x" * (2 * 1024 * 1024)}}
    code, st = cloudlet.request("POST", CMS, body)
    assert code == 422, (code, st if code != 201 else "stored")
    assert_status(st, 422, "Invalid")


@pytest.mark.parametrize("raw,ctype", [
    (b"{bad json", "application/json"),
    (b'{"metadata": {"name": "x"}', "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b"[1, 2", "application/json"),
    (b"a: [b", "application/yaml"),
    (b"metadata:\n  name: x\n bad-indent: y\n", "application/yaml"),
    (b"--- {a: 1}\n--- {b: 2}\n", "application/yaml"),
    (b"", "application/json"),
    (b"   ", "application/json"),
    (b"null", "application/json"),
    (b"42", "application/json"),
    (b'"a string"', "application/json"),
    (b"[]", "application/json"),
    (b"!!python/object:os.system {}", "application/yaml"),
])
def test_malformed_body_is_400(cloudlet: CloudletProcess, raw: bytes, ctype: str) -> None:
    code, body = cloudlet.request("POST", CMS, raw=raw, content_type=ctype)
    assert code == 400, (raw, code, body)
    assert_status(body, 400, "BadRequest")


def test_yaml_body_accepted(cloudlet: CloudletProcess) -> None:
    raw = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\ndata: {when: '2024-01-01', num: '1', flag: 'on'}\n"
    code, body = cloudlet.request("POST", CMS, raw=raw, content_type="application/yaml")
    assert code == 201, body
    assert body["data"] == {"when": "2024-01-01", "num": "1", "flag": "on"}


def test_yaml_response_when_asked(cloudlet: CloudletProcess) -> None:
    import yaml

    code, text = cloudlet.request("GET", f"{CMS}/from-yaml", headers={"Accept": "application/yaml"})
    assert code == 200
    obj = yaml.safe_load(text)
    assert obj["kind"] == "ConfigMap"
    assert obj["data"] == {"when": "2024-01-01", "num": "1", "flag": "on"}  # strings stay strings
    assert isinstance(obj["metadata"]["creationTimestamp"], str)


def test_unsupported_content_type_is_415(cloudlet: CloudletProcess) -> None:
    code, body = cloudlet.request("POST", CMS, raw=b"{}", content_type="text/plain")
    assert code == 415
    assert_status(body, 415, "UnsupportedMediaType")
    cloudlet.request("POST", CMS, {"metadata": {"name": "patch-me"}})
    code, body = cloudlet.request("PATCH", f"{CMS}/patch-me", raw=b'{"data":{"a":"b"}}', content_type="application/json")
    assert code == 415, body
    assert_status(body, 415, "UnsupportedMediaType")


@pytest.mark.parametrize("body,fragment", [
    ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k1"}}, "does not match the expected kind (ConfigMap)"),
    ({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "k2"}}, "API version"),
    ({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "k3"}}, "kind"),
    ({"apiVersion": 5, "kind": "ConfigMap", "metadata": {"name": "k4"}}, "apiVersion"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "not-an-object"}, "metadata"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k5", "namespace": "other"}}, "namespace"),
])
def test_wrong_kind_or_shape_for_the_url_is_400(cloudlet: CloudletProcess, body: dict, fragment: str) -> None:
    code, st = cloudlet.request("POST", CMS, body)
    assert code == 400, (body, st)
    assert_status(st, 400, "BadRequest")
    assert fragment in st["message"], st["message"]
    name = body["metadata"].get("name") if isinstance(body["metadata"], dict) else None
    if name:
        assert cloudlet.request("GET", f"{CMS}/{name}")[0] == 404


def test_update_name_mismatch_is_400(cloudlet: CloudletProcess) -> None:
    cloudlet.request("POST", CMS, {"metadata": {"name": "named"}})
    code, st = cloudlet.request("PUT", f"{CMS}/named", {"metadata": {"name": "other"}})
    assert code == 400
    assert_status(st, 400, "BadRequest")


@pytest.mark.parametrize("method,query", [
    ("GET", "limit=abc"),
    ("GET", "labelSelector=a%20in%20b"),
    ("GET", "labelSelector=%3D%3Dx"),
    ("GET", "fieldSelector=a"),
    ("GET", "fieldSelector=spec.bogus%3Dx"),
    ("GET", "watch=1&resourceVersion=abc"),
    ("GET", "continue=%25%25%25"),
    ("POST", "dryRun=Bogus"),
    ("DELETE", "gracePeriodSeconds=x"),
    ("DELETE", "propagationPolicy=Sometimes"),
])
def test_bad_query_parameters_are_4xx(cloudlet: CloudletProcess, method: str, query: str) -> None:
    cloudlet.request("POST", CMS, {"metadata": {"name": "q-target"}})
    path = f"{CMS}/q-target?{query}" if method == "DELETE" else f"{CMS}?{query}"
    code, st = cloudlet.request(method, path, {"metadata": {"name": "q-new"}} if method == "POST" else None)
    assert code in (400, 422), (query, code, st)
    assert_status(st, code, "BadRequest" if code == 400 else "Invalid")
    assert cloudlet.request("GET", f"{CMS}/q-target")[0] == 200
    assert cloudlet.request("GET", f"{CMS}/q-new")[0] == 404


def test_unknown_field_validation_value_is_422(cloudlet: CloudletProcess) -> None:
    code, st = cloudlet.request("POST", f"{CMS}?fieldValidation=Bogus", {"metadata": {"name": "fv-bogus"}})
    assert code == 422
    assert_status(st, 422, "Invalid")
    assert 'Unsupported value: "Bogus"' in st["message"]
    assert cloudlet.request("GET", f"{CMS}/fv-bogus")[0] == 404


def test_strict_field_validation_rejects_unknown_fields(cloudlet: CloudletProcess) -> None:
    code, st = cloudlet.request("POST", f"{DEPLOYS}?fieldValidation=Strict", deployment("strict", foo=1))
    assert code == 400, st
    assert_status(st, 400, "BadRequest")
    assert 'strict decoding error: unknown field "spec.foo"' in st["message"]
    assert cloudlet.request("GET", f"{DEPLOYS}/strict")[0] == 404
    # kubectl apply asks for Strict validation by default
    doc = json.dumps(deployment("strict-kubectl", foo=1))
    p = cloudlet.kubectl("apply", "-f", "-", input=doc, check=False)
    assert p.returncode == 1
    assert 'unknown field "spec.foo"' in p.stderr


def test_unknown_fields_dropped_with_warning_by_default(cloudlet: CloudletProcess) -> None:
    code, headers, obj = cloudlet.request_ex("POST", DEPLOYS, deployment("lenient", foo=1))
    assert code == 201, obj
    assert "foo" not in obj["spec"]
    warning = headers.get("Warning") or ""
    assert warning.startswith("299 - "), warning
    assert 'unknown field \\"spec.foo\\"' in warning, warning
    code, stored = cloudlet.request("GET", f"{DEPLOYS}/lenient")
    assert "foo" not in stored["spec"]
    code, _, obj = cloudlet.request_ex("POST", f"{CMS}?fieldValidation=Ignore", {"metadata": {"name": "ign"}, "spec": {"x": 1}})
    assert code == 201 and "spec" not in obj


def test_errors_never_leak_500(cloudlet: CloudletProcess) -> None:
    assert "unhandled error" not in cloudlet.log()


# --- decoding: types and values Kubernetes rejects before validation ---------------------


def test_delete_options_preconditions_not_an_object_is_400(cloudlet: CloudletProcess) -> None:
    cloudlet.request("POST", CMS, {"metadata": {"name": "pre-str"}})
    code, st = cloudlet.request("DELETE", f"{CMS}/pre-str", {"preconditions": "x"})
    assert code == 400, st
    assert_status(st, 400, "BadRequest")
    assert cloudlet.request("GET", f"{CMS}/pre-str")[0] == 200


def test_unknown_field_with_control_character_still_answered(cloudlet: CloudletProcess) -> None:
    import http.client

    try:
        code, headers, obj = cloudlet.request_ex("POST", CMS, {"metadata": {"name": "ctl-field"}, "a\x1fb\nc": 1})
    except (http.client.HTTPException, ConnectionError) as e:
        pytest.fail(f"no response: {e!r}")
    assert code == 201, obj
    assert "a\x1fb\nc" not in obj
    warning = headers.get("Warning") or ""
    assert warning.startswith("299 - ") and "unknown field" in warning


def test_int32_overflow_rejected(cloudlet: CloudletProcess) -> None:
    d = deployment("huge-replicas")
    d["spec"]["replicas"] = 2**40
    code, st = cloudlet.request("POST", DEPLOYS, d)
    assert code in (400, 422), (code, st)
    assert cloudlet.request("GET", f"{DEPLOYS}/huge-replicas")[0] == 404


def test_malformed_timestamp_rejected(cloudlet: CloudletProcess) -> None:
    code, st = cloudlet.request("POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases",
                                {"metadata": {"name": "bad-time"}, "spec": {"renewTime": "not-a-time"}})
    assert code in (400, 422), (code, st)


@pytest.mark.parametrize("q", ["1e308", "9e999999999"])
def test_large_quantity_exponent(cloudlet: CloudletProcess, q: str) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"q-{len(q)}"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "resources": {"limits": {"cpu": q}}}]}}
    code, st = cloudlet.request("POST", "/api/v1/namespaces/default/pods", body)
    assert "decimal" not in json.dumps(st) and "<class" not in json.dumps(st), st
    if code != 201:  # Kubernetes accepts these; if refused, name the field
        assert code == 422, st
        assert st["details"]["causes"][0]["field"] == "spec.containers[0].resources.limits[cpu]"


def test_list_options_validated(cloudlet: CloudletProcess) -> None:
    code, st = cloudlet.request("GET", f"{CMS}?resourceVersionMatch=Bogus")
    assert code in (400, 422), (code, st)
    assert "resourceVersionMatch" in st["message"]
