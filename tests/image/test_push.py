"""Pushing from the ImageStore to a real docker-registry, and the round trip back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudlet.image.auth import Credential, Keychain
from cloudlet.image.pull import Puller
from cloudlet.image.push import LocalImageNotFound, push
from cloudlet.image.registry import OCI_INDEX, RegistryClient, Unauthorized
from cloudlet.image.store import ImageStore
from tests.image import registry_fixture as fx
from tests.image.registry_fixture import make_image, verify_all_blobs

# fixtures from the shared registry module
_no_host_docker_config = fx._no_host_docker_config
basic_registry = fx.basic_registry
registry = fx.registry
token_registry = fx.token_registry


async def _builtin_busybox(store: ImageStore) -> str:
    try:
        return await store.ensure_builtin()
    except ModuleNotFoundError as e:  # cloudlet.image.busybox not written yet
        pytest.skip(f"built-in busybox image not available: {e}")


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
async def test_busybox_round_trip(auth: str, basic_registry, token_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Push the built-in busybox, delete it locally, pull it back by tag and by digest."""
    reg = basic_registry if auth == "htpasswd" else token_registry
    kc = Keychain({reg.host: Credential("alice", "wonderland")})
    store = ImageStore(tmp_path / "images")
    await _builtin_busybox(store)
    local = store.resolve("busybox:latest")
    assert local is not None
    image_id = store.image_id("busybox:latest")
    remote = f"{reg.host}/cloudlet/busybox:1"
    async with RegistryClient(keychain=kc) as client:
        res = await push(store, client, "busybox:latest", remote)
        repo = client.repository(reg.host, "cloudlet/busybox")
        assert (await repo.get_manifest("1")).digest == res.digest
        # delete locally: untag and collect
        assert store.untag("busybox:latest")
        await store.gc()
        assert store.resolve("busybox:latest") is None
        assert not store.content.has(image_id)
        puller = Puller(store, client)
        by_tag = await puller.pull(remote)
        assert by_tag.digest == res.digest
        assert store.image_id(remote) == image_id
        store2 = ImageStore(tmp_path / "images2")
        by_digest = await Puller(store2, client).pull(f"{reg.host}/cloudlet/busybox@{res.digest}")
        assert by_digest.digest == res.digest
        assert store2.image_id(f"{reg.host}/cloudlet/busybox@{res.digest}") == image_id
        verify_all_blobs(store2)


async def test_push_skips_existing_blobs_chunked_and_mount(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ImageStore(tmp_path / "images")
    digest = make_image(store, "app:1", [70_000, 30_000], seed=11)
    async with RegistryClient(docker_config=False) as client:
        first = await push(store, client, "app:1", f"{registry.host}/cloudlet/app:1", chunk_size=16_384)
        assert first.digest == digest and len(first.skipped) == 0 and first.uploaded > 100_000
        second = await push(store, client, "app:1", f"{registry.host}/cloudlet/app:2")
        assert second.digest == digest and len(second.skipped) == 3 and second.uploaded == 0
        third = await push(store, client, "app:1", f"{registry.host}/cloudlet/app-copy:1",
                           mount_from="cloudlet/app")
        assert len(third.mounted) == 3 and third.uploaded == 0
        repo = client.repository(registry.host, "cloudlet/app-copy")
        assert (await repo.get_manifest("1")).digest == digest
        with pytest.raises(LocalImageNotFound, match="not found locally"):
            await push(store, client, "absent:1", f"{registry.host}/cloudlet/x:1")


async def test_push_index_then_pull_picks_amd64(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ImageStore(tmp_path / "images")
    amd = make_image(store, "multi:amd64", [20_000], seed=21)
    arm = make_image(store, "multi:arm64", [20_000], seed=22)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm,
         "size": store.content.size(arm), "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd,
         "size": store.content.size(amd), "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    idx = store.content.put_bytes(json.dumps(index).encode())
    store.tag("multi:latest", idx)
    remote = f"{registry.host}/cloudlet/multi:latest"
    async with RegistryClient(docker_config=False) as client:
        res = await push(store, client, "multi:latest", remote)
        assert res.digest == idx
        fresh = ImageStore(tmp_path / "fresh")
        pulled = await Puller(fresh, client).pull(remote)
    assert pulled.digest == idx and pulled.manifest_digest == amd
    assert fresh.manifest_for_platform(idx) == amd
    assert fresh.config(remote).labels == {"seed": "21"}
    assert not fresh.content.has(arm)


async def test_push_needs_credentials(basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ImageStore(tmp_path / "images")
    make_image(store, "app:1", [1000], seed=31)
    async with RegistryClient(docker_config=False) as client:
        with pytest.raises(Unauthorized, match="requires credentials"):
            await push(store, client, "app:1", f"{basic_registry.host}/cloudlet/app:1")
