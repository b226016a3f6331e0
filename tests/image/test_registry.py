"""The distribution API client against a real docker-registry: blobs, manifests, auth, errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudlet.image.auth import Credential, Keychain
from cloudlet.image.config import RegistryConfig
from cloudlet.image.registry import (
    OCI_MANIFEST,
    NotFound,
    RegistryClient,
    RegistryError,
    Unauthorized,
    Unreachable,
)
from tests.image import registry_fixture as fx
from tests.image.registry_fixture import CuttingProxy, free_port

# fixtures from the shared registry module
_no_host_docker_config = fx._no_host_docker_config
basic_registry = fx.basic_registry
registry = fx.registry
token_registry = fx.token_registry


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _chunks(data: bytes, n: int = 7000):  # type: ignore[no-untyped-def]
    def open_() -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(0, len(data), n):
                yield data[i:i + n]
        return gen()
    return open_


async def _push_tiny_image(repo, layer: bytes, tag: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                            "diff_ids": [_digest(layer)]}}).encode()
    for blob in (layer, config):
        await repo.upload_blob(_digest(blob), len(blob), _chunks(blob))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _digest(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": _digest(layer), "size": len(layer)}]}).encode()
    digest = await repo.put_manifest(tag, manifest, OCI_MANIFEST)
    return digest, _digest(config)


async def test_blob_upload_monolithic_chunked_and_mount(registry) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(50_000)
    other = os.urandom(30_000)
    async with RegistryClient(docker_config=False) as client:
        repo = client.repository(registry.host, "cloudlet/blobs")
        assert not await repo.blob_exists(_digest(data))
        await repo.upload_blob(_digest(data), len(data), _chunks(data))
        assert await repo.blob_exists(_digest(data))
        assert await repo.get_blob(_digest(data)) == data
        # chunked: PATCH per 16 kB, then PUT
        await repo.upload_blob(_digest(other), len(other), _chunks(other), chunk_size=16_000)
        assert await repo.get_blob(_digest(other)) == other
        # a wrong digest is refused by the registry and nothing is stored
        with pytest.raises(Exception, match="DIGEST_INVALID|digest"):
            await repo.upload_blob(_digest(b"not it"), len(data), _chunks(data))
        assert not await repo.blob_exists(_digest(b"not it"))
        # cross-repository mount
        dest = client.repository(registry.host, "cloudlet/mounted")
        assert await dest.mount_blob(_digest(data), "cloudlet/blobs")
        assert await dest.blob_exists(_digest(data))
        assert not await dest.mount_blob(_digest(b"unknown"), "cloudlet/blobs")


async def test_manifest_by_tag_and_digest_and_not_found(registry) -> None:  # type: ignore[no-untyped-def]
    async with RegistryClient(docker_config=False) as client:
        repo = client.repository(registry.host, "cloudlet/tiny")
        digest, _ = await _push_tiny_image(repo, os.urandom(1000), "v1")
        by_tag = await repo.get_manifest("v1")
        by_digest = await repo.get_manifest(digest)
        assert by_tag.digest == by_digest.digest == digest
        assert by_tag.media_type == OCI_MANIFEST
        assert await repo.tags() == ["v1"]
        with pytest.raises(NotFound) as e:
            await repo.get_manifest("nope")
        assert e.value.code == "MANIFEST_UNKNOWN" and e.value.status == 404
        with pytest.raises(NotFound):
            await client.repository(registry.host, "cloudlet/absent").get_manifest("latest")


async def test_unreachable_fails_quickly_without_retrying_dns() -> None:
    async with RegistryClient(docker_config=False, retries=3, backoff=0.05) as client:
        # docker.io maps to registry-1.docker.io, which this machine cannot reach
        hub = client.repository("docker.io", "library/busybox")
        assert hub.endpoints[-1].base == "https://registry-1.docker.io"
        with pytest.raises(Unreachable, match="registry-1.docker.io"):
            await asyncio.wait_for(hub.get_manifest("latest"), 30)
        closed = client.repository(f"127.0.0.1:{free_port()}", "x")
        with pytest.raises(Unreachable, match="unreachable"):
            await asyncio.wait_for(closed.get_manifest("latest"), 30)


async def test_basic_auth(basic_registry) -> None:  # type: ignore[no-untyped-def]
    reg = basic_registry
    async with RegistryClient(docker_config=False) as anon:
        with pytest.raises(Unauthorized, match="requires credentials"):
            await anon.repository(reg.host, "cloudlet/x").get_manifest("latest")
    bad = Keychain({reg.host: Credential("alice", "wrong")})
    async with RegistryClient(keychain=bad) as client:
        with pytest.raises(Unauthorized) as e:
            await client.repository(reg.host, "cloudlet/x").get_manifest("latest")
        assert e.value.status == 401
    good = Keychain({reg.host: Credential("alice", "wonderland")})
    async with RegistryClient(keychain=good) as client:
        repo = client.repository(reg.host, "cloudlet/basic")
        digest, _ = await _push_tiny_image(repo, os.urandom(500), "v1")
        assert (await repo.get_manifest("v1")).digest == digest


async def test_docker_config_credentials(basic_registry, tmp_path: Path,  # type: ignore[no-untyped-def]
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    reg = basic_registry
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    reg.docker_config(tmp_path / "dc")
    async with RegistryClient() as client:  # reads $DOCKER_CONFIG/config.json
        repo = client.repository(reg.host, "cloudlet/dockercfg")
        digest, _ = await _push_tiny_image(repo, os.urandom(300), "v1")
        assert (await repo.get_manifest(digest)).digest == digest


async def test_bearer_token_auth(token_registry) -> None:  # type: ignore[no-untyped-def]
    reg = token_registry
    async with RegistryClient(docker_config=False) as anon:
        with pytest.raises(Unauthorized):
            await anon.repository(reg.host, "cloudlet/tok").get_manifest("latest")
    good = Keychain({reg.host: Credential("alice", "wonderland")})
    async with RegistryClient(keychain=good) as client:
        repo = client.repository(reg.host, "cloudlet/tok")
        digest, config = await _push_tiny_image(repo, os.urandom(800), "v1")
        assert (await repo.get_manifest("v1")).digest == digest
        # a cross-repository mount needs a token for two scopes at once
        other = client.repository(reg.host, "cloudlet/tok2")
        assert await other.mount_blob(config, "cloudlet/tok")
        assert await other.blob_exists(config)
    asked = [r for r in reg.token.requests if r.get("account") == "alice"]
    assert any("repository:cloudlet/tok:pull,push" in r["scopes"] for r in asked)
    assert any(r["scopes"] == ["repository:cloudlet/tok2:pull,push", "repository:cloudlet/tok:pull"] for r in asked)
    assert all(r["service"] == [reg.token.service] for r in asked)
    async with RegistryClient(keychain=Keychain({reg.host: Credential("alice", "nope")})) as client:
        with pytest.raises(Unauthorized, match="refused"):
            await client.repository(reg.host, "cloudlet/tok").get_manifest("v1")


async def test_mirror_serves_a_registry_name(registry) -> None:  # type: ignore[no-untyped-def]
    cfg = RegistryConfig.from_dict({"mirrors": {"registry.cloudlet.invalid": {
        "endpoint": [f"http://127.0.0.1:{free_port()}", registry.url]}}})
    async with RegistryClient(cfg, docker_config=False, retries=0) as client:
        upstream = client.repository(registry.host, "cloudlet/mirrored")
        digest, _ = await _push_tiny_image(upstream, os.urandom(700), "v1")
        repo = client.repository("registry.cloudlet.invalid", "cloudlet/mirrored")
        m = await repo.get_manifest("v1")  # first mirror is down, second serves it
        assert m.digest == digest
        assert repo.endpoint.base == registry.url


async def test_retries_server_errors_with_backoff(registry) -> None:  # type: ignore[no-untyped-def]
    async with RegistryClient(docker_config=False) as client:
        digest, _ = await _push_tiny_image(client.repository(registry.host, "cloudlet/flaky"), os.urandom(100), "v1")
    proxy = await CuttingProxy(registry.port).start()
    try:
        proxy.fail_next = 2
        async with RegistryClient(docker_config=False, retries=3, backoff=0.01) as client:
            assert (await client.repository(proxy.host, "cloudlet/flaky").get_manifest("v1")).digest == digest
        assert proxy.failed == 2
        proxy.fail_next = 1
        async with RegistryClient(docker_config=False, retries=0) as client:
            with pytest.raises(RegistryError) as e:
                await client.repository(proxy.host, "cloudlet/flaky").get_manifest("v1")
        assert e.value.status == 503
    finally:
        await proxy.stop()


@pytest.mark.parametrize("auth", ["basic", "token"])
async def test_auth_state_is_kept_per_credential(auth: str, basic_registry, token_registry) -> None:  # type: ignore[no-untyped-def]
    """One client, one host: what alice's credentials obtained (the Authorization sent, a bearer
    token) is never sent for a request made with no credentials or with a wrong password."""
    reg = basic_registry if auth == "basic" else token_registry
    path = f"cloudlet/percred-{auth}"
    alice = Keychain({reg.host: Credential("alice", "wonderland")})
    async with RegistryClient(keychain=alice) as pusher:
        digest, _ = await _push_tiny_image(pusher.repository(reg.host, path), os.urandom(400), "v1")
    async with RegistryClient(docker_config=False) as client:
        assert (await client.repository(reg.host, path, alice).get_manifest("v1")).digest == digest
        if reg.token is not None:
            granted = len(reg.token.requests)
        for keychain in (Keychain(), Keychain({reg.host: Credential("alice", "not-her-password")})):
            with pytest.raises(Unauthorized) as e:
                await client.repository(reg.host, path, keychain).get_manifest("v1")
            assert e.value.status == 401
            with pytest.raises(Unauthorized):
                await client.repository(reg.host, path, keychain).blob_exists(digest)
        if reg.token is not None:
            # each of them went to the token server itself (anonymous, then refused)
            later = reg.token.requests[granted:]
            assert any(r.get("account") == "" for r in later), later
            assert any(r.get("denied") and r["account"] == "alice" for r in later), later
        # alice still gets in, on the same client, with what she obtained before or anew
        assert (await client.repository(reg.host, path, alice).get_manifest(digest)).digest == digest
        with pytest.raises(Unauthorized):
            await client.repository(reg.host, path, Keychain()).get_manifest(digest)
