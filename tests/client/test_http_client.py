"""HTTPClient against an in-process cloudlet Server, through the kubeconfig it writes.

Also exercises the built-in control loops end to end (namespace deletion and
garbage collection run inside the server) and an Informer over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.http import HTTPClient, KubeconfigError
from cloudlet.client.informer import Informer
from cloudlet.client.interface import Client, ResourceRef
from cloudlet.client.testing import CONFIGMAPS, NAMESPACES, eventually
from cloudlet.server import Config, Server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(tmp_path):
    server = Server(Config(data_dir=tmp_path, port=free_port(), store="memory", min_history=0))
    await server.start()
    client = HTTPClient.from_kubeconfig(tmp_path / "kubeconfig.yaml")
    try:
        yield server, client
    finally:
        await client.close()
        await server.stop()


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}}


async def gone(client: Client, ref, name: str, ns: str = "") -> bool:
    try:
        await client.get(ref, name, ns)
    except APIError as e:
        return e.code == 404
    return False


async def test_crud_patch_and_errors(served) -> None:
    _server, client = served
    assert isinstance(client, Client) and client.namespace == "default"
    ns = await client.get(NAMESPACES, "default")
    assert ns["kind"] == "Namespace"
    created = await client.create(CONFIGMAPS, cm("a", app="web"))
    assert created["metadata"]["uid"]
    got = await client.get(CONFIGMAPS, "a", "default")
    got["data"]["k"] = "w"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"]["k"] == "w"
    with pytest.raises(APIError) as ei:
        await client.update(CONFIGMAPS, got)
    assert ei.value.code == 409 and ei.value.reason == "Conflict"
    assert "the object has been modified" in ei.value.message
    with pytest.raises(APIError) as ei:
        await client.create(CONFIGMAPS, cm("a"))
    assert ei.value.reason == "AlreadyExists" and ei.value.details and ei.value.details["name"] == "a"
    merged = await client.patch(CONFIGMAPS, "a", {"data": {"x": "1"}}, "merge", "default")
    jp = await client.patch(CONFIGMAPS, "a", [{"op": "remove", "path": "/data/x"}], "json", "default")
    sp = await client.patch(CONFIGMAPS, "a", {"data": {"y": "2"}}, "strategic", "default")
    assert merged["data"]["x"] == "1" and "x" not in jp["data"] and sp["data"] == {"k": "w", "y": "2"}
    await client.create(CONFIGMAPS, cm("b", app="db"))
    web = await client.list(CONFIGMAPS, "default", label_selector="app=web")
    assert [o["metadata"]["name"] for o in web["items"]] == ["a"] and web["metadata"]["resourceVersion"]
    page = await client.list(CONFIGMAPS, "default", limit=1)
    assert page["metadata"]["continue"]
    with pytest.raises(APIError) as ei:
        await client.list(CONFIGMAPS, "default", label_selector="a in (")
    assert ei.value.code == 400
    res = await client.delete(CONFIGMAPS, "a", "default")
    assert res["kind"] == "Status" and res["status"] == "Success"
    with pytest.raises(APIError) as ei:
        await client.get(CONFIGMAPS, "a", "default")
    assert ei.value.code == 404 and ei.value.message == 'configmaps "a" not found'
    out = await client.delete_collection(CONFIGMAPS, "default", label_selector="app=db")
    assert [o["metadata"]["name"] for o in out["items"]] == ["b"]


async def test_watch_stream_and_expiry(served) -> None:
    server, client = served
    start = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    stream = client.watch(CONFIGMAPS, "default", start)
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async for t, o in stream:
            seen.append((t, o["metadata"]["name"]))
            if len(seen) == 3:
                return

    task = asyncio.create_task(consume())
    await client.create(CONFIGMAPS, cm("w"))
    await client.patch(CONFIGMAPS, "w", {"data": {"a": "b"}}, "merge", "default")
    await client.delete(CONFIGMAPS, "w", "default")
    await asyncio.wait_for(task, 5)
    await stream.aclose()
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]

    await client.create(CONFIGMAPS, cm("x"))
    async with contextlib.aclosing(client.watch(CONFIGMAPS, "default")) as initial:
        async for t, o in initial:  # rv "" starts with the current state
            assert (t, o["metadata"]["name"]) == ("ADDED", "x")
            break

    assert server.store is not None
    await server.store.compact(keep=0)
    with pytest.raises(APIError) as ei:
        async with contextlib.aclosing(client.watch(CONFIGMAPS, "default", start)) as expired:
            async for _ in expired:
                pass
    assert ei.value.code == 410


async def test_informer_over_http(served) -> None:
    _server, client = served
    await client.create(CONFIGMAPS, cm("i1"))
    inf = Informer(client, CONFIGMAPS, "default")
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.wait_synced(), 5)
    assert "default/i1" in inf.keys()
    await client.create(CONFIGMAPS, cm("i2"))
    await eventually(lambda: inf.get("default/i2") is not None)
    inf.stop()
    await task


async def test_builtin_controllers_run_in_the_server(served) -> None:
    _server, client = served
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tmp"}})
    owner = await client.create(CONFIGMAPS, cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    dep = cm("dependent")
    dep["metadata"]["ownerReferences"] = [ref]
    await client.create(CONFIGMAPS, dep)
    await client.create(CONFIGMAPS, cm("inside", "tmp"))
    await client.delete(CONFIGMAPS, "owner", "default")
    await eventually(lambda: gone(client, CONFIGMAPS, "dependent", "default"), within=10)
    await client.delete(NAMESPACES, "tmp")
    await eventually(lambda: gone(client, NAMESPACES, "tmp"), within=10)


def test_kubeconfig_errors(tmp_path) -> None:
    with pytest.raises(KubeconfigError):
        HTTPClient.from_kubeconfig(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Config\ncurrent-context: nope\ncontexts: []\n")
    with pytest.raises(KubeconfigError):
        HTTPClient.from_kubeconfig(bad)


async def test_unreachable_server_is_503(tmp_path) -> None:
    client = HTTPClient(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(APIError) as ei:
            await client.get(NAMESPACES, "default")
        assert ei.value.code == 503
    finally:
        await client.close()


def _self_signed() -> tuple[bytes, bytes]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def test_kubeconfig_client_certs_token_file_and_contexts(tmp_path) -> None:
    import base64

    import yaml

    cert, key = _self_signed()
    (tmp_path / "token").write_text("s3cret\n")
    cfg = {
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://127.0.0.1:1", "certificate-authority-data": base64.b64encode(cert).decode()}},
            {"name": "c2", "cluster": {"server": "https://10.0.0.1:6443/", "insecure-skip-tls-verify": True}},
        ],
        "users": [
            {"name": "certs", "user": {"client-certificate-data": base64.b64encode(cert).decode(),
                                       "client-key-data": base64.b64encode(key).decode()}},
            {"name": "tok", "user": {"tokenFile": "token"}},
        ],
        "contexts": [
            {"name": "a", "context": {"cluster": "c1", "user": "certs", "namespace": "team"}},
            {"name": "b", "context": {"cluster": "c2", "user": "tok"}},
        ],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(cfg))
    a = HTTPClient.from_kubeconfig(path)
    assert a.server == "https://127.0.0.1:1" and a.namespace == "team" and "Authorization" not in a._headers
    b = HTTPClient.from_kubeconfig(path, context="b")
    assert b.server == "https://10.0.0.1:6443" and b._headers["Authorization"] == "Bearer s3cret"
    assert b._ssl is not None and b._ssl.verify_mode.name == "CERT_NONE"
    assert b.path(ResourceRef("apps", "v1", "deployments"), "ns", "d", "scale") == "/apis/apps/v1/namespaces/ns/deployments/d/scale"
    assert b.path(NAMESPACES, None, "x", "finalize") == "/api/v1/namespaces/x/finalize"
