"""Pulling from a real docker-registry into a real ImageStore: by tag and digest, sharing, interruption."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cloudlet.image.auth import Credential, Keychain
from cloudlet.image.pull import Puller
from cloudlet.image.push import push
from cloudlet.image.registry import NotFound, RegistryClient, RegistryError, Unauthorized
from cloudlet.image.store import ImageStore
from tests.image import registry_fixture as fx
from tests.image.registry_fixture import (
    CuttingProxy,
    ingest_leftovers,
    make_image,
    verify_all_blobs,
)

# fixtures from the shared registry module
_no_host_docker_config = fx._no_host_docker_config
basic_registry = fx.basic_registry
registry = fx.registry


async def _published(registry, tmp_path: Path, name: str, sizes: list[int], seed: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Make an image in a scratch store and push it; returns (remote name, manifest digest)."""
    src = ImageStore(tmp_path / f"src-{seed}")
    digest = make_image(src, "scratch:1", sizes, seed=seed)
    remote = f"{registry.host}/{name}"
    async with RegistryClient(docker_config=False) as client:
        await push(src, client, "scratch:1", remote)
    src.close()
    return remote, digest


async def test_pull_by_tag_and_digest(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    remote, digest = await _published(registry, tmp_path, "cloudlet/pull:v1", [40_000, 90_000, 5_000], 1)
    store = ImageStore(tmp_path / "images")
    async with RegistryClient(docker_config=False) as client:
        puller = Puller(store, client)
        res = await puller.pull(remote)
        assert res.digest == digest and res.ref == remote
        assert store.resolve(remote) == digest
        manifest = json.loads(store.content.get_bytes(digest))
        assert res.config_digest == manifest["config"]["digest"] == store.image_id(remote)
        assert all(store.content.has(d["digest"]) for d in manifest["layers"])
        assert store.config(remote).labels == {"seed": "1"}
        assert res.downloaded == sum(d["size"] for d in manifest["layers"]) + manifest["config"]["size"]
        # pulling again fetches only the manifest
        again = await puller.pull(remote)
        assert again.digest == digest and again.downloaded == 0
        # by digest, into an empty store
        store2 = ImageStore(tmp_path / "images2")
        by_digest = f"{remote.rsplit(':', 1)[0]}@{digest}"
        res2 = await Puller(store2, client).pull(by_digest)
        assert res2.digest == digest and store2.resolve(by_digest) == digest
        assert verify_all_blobs(store2) == 2 + len(manifest["layers"])
        with pytest.raises(NotFound, match="MANIFEST_UNKNOWN|not found|unknown"):
            await puller.pull(f"{registry.host}/cloudlet/pull:missing")
        assert store.resolve(f"{registry.host}/cloudlet/pull:missing") is None


async def test_concurrent_pulls_share_one_download(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, digest = await _published(registry, tmp_path, "cloudlet/shared:v1", [300_000, 200_000], 2)
    proxy = await CuttingProxy(registry.port).start()
    try:
        store = ImageStore(tmp_path / "images")
        name = f"{proxy.host}/cloudlet/shared:v1"
        async with RegistryClient(docker_config=False) as client:
            puller = Puller(store, client)
            results = await asyncio.gather(*(puller.pull(name) for _ in range(5)))
        assert {r.digest for r in results} == {digest}
        # config + 2 layers, each fetched once for five concurrent pulls
        assert len(proxy.blob_gets) == 3, proxy.blob_gets
        assert len(set(proxy.blob_gets)) == 3
    finally:
        await proxy.stop()


async def test_interrupted_pull_leaves_store_consistent_and_retry_succeeds(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, digest = await _published(registry, tmp_path, "cloudlet/cut:v1", [2_000_000, 1_500_000], 3)
    proxy = await CuttingProxy(registry.port).start()
    try:
        store = ImageStore(tmp_path / "images")
        name = f"{proxy.host}/cloudlet/cut:v1"
        # every blob response is cut 100 kB in, and the client may not retry: the pull fails
        proxy.cut_after, proxy.cuts = 100_000, 1000
        async with RegistryClient(docker_config=False, retries=0) as client:
            with pytest.raises(RegistryError, match="connection lost"):
                await Puller(store, client).pull(name)
        assert proxy.cut_done >= 1
        assert store.resolve(name) is None
        assert ingest_leftovers(store) == []
        verify_all_blobs(store)  # whatever is stored (small config) is intact
        manifest_layers = [d for d, _ in store.content.iter()]
        assert all(store.content.size(d) < 1_000_000 for d in manifest_layers)
        # the next pull succeeds
        proxy.cut_after = None
        async with RegistryClient(docker_config=False, retries=0) as client:
            res = await Puller(store, client).pull(name)
        assert res.digest == digest and store.resolve(name) == digest
        assert verify_all_blobs(store) == 4
    finally:
        await proxy.stop()


async def test_dropped_connection_resumes_with_range(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, digest = await _published(registry, tmp_path, "cloudlet/resume:v1", [3_000_000], 4)
    proxy = await CuttingProxy(registry.port).start()
    try:
        store = ImageStore(tmp_path / "images")
        name = f"{proxy.host}/cloudlet/resume:v1"
        proxy.cut_after, proxy.cuts = 1_000_000, 2  # two cuts, then clean
        async with RegistryClient(docker_config=False, retries=3, backoff=0.01) as client:
            res = await Puller(store, client).pull(name)
        assert proxy.cut_done == 2
        assert res.digest == digest
        verify_all_blobs(store)
        # the layer was not fetched three times over: later requests asked for the rest
        assert res.downloaded < 3_000_000 * 1.2
    finally:
        await proxy.stop()


async def test_cancelled_pull_leaves_no_partial_blob(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, digest = await _published(registry, tmp_path, "cloudlet/cancel:v1", [4_000_000], 5)
    store = ImageStore(tmp_path / "images")
    name = f"{registry.host}/cloudlet/cancel:v1"
    started = asyncio.Event()

    class Watch:
        def blob_started(self, d: str, size: int | None, kind: str) -> None:
            pass

        def blob_advanced(self, d: str, n: int) -> None:
            started.set()

        def blob_finished(self, d: str, cached: bool) -> None:
            pass

    async with RegistryClient(docker_config=False) as client:
        task = asyncio.create_task(Puller(store, client).pull(name, progress=Watch()))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert store.resolve(name) is None
        assert ingest_leftovers(store) == []
        verify_all_blobs(store)
        res = await Puller(store, client).pull(name)
    assert res.digest == digest


async def test_pull_with_basic_auth_keychain(basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = basic_registry
    kc = Keychain({reg.host: Credential("alice", "wonderland")})
    src = ImageStore(tmp_path / "src")
    digest = make_image(src, "scratch:1", [10_000], seed=6)
    async with RegistryClient(keychain=kc) as client:
        await push(src, client, "scratch:1", f"{reg.host}/cloudlet/private:v1")
    store = ImageStore(tmp_path / "images")
    async with RegistryClient(docker_config=False) as anon:
        with pytest.raises(RegistryError, match="requires credentials"):
            await Puller(store, anon).pull(f"{reg.host}/cloudlet/private:v1")
    async with RegistryClient(docker_config=False) as client:
        res = await Puller(store, client).pull(f"{reg.host}/cloudlet/private:v1", keychain=kc)
    assert res.digest == digest


async def test_concurrent_pulls_share_only_with_the_same_credentials(basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Pulls of one name with and without credentials run side by side (the one without fails with
    401), never joined; pulls with equal credentials still share one download per blob."""
    reg = basic_registry
    kc = Keychain({reg.host: Credential("alice", "wonderland")})
    src = ImageStore(tmp_path / "src")
    digest = make_image(src, "scratch:1", [400_000, 300_000], seed=21)
    async with RegistryClient(keychain=kc) as client:
        await push(src, client, "scratch:1", f"{reg.host}/cloudlet/private-shared:v1")
    proxy = await CuttingProxy(reg.port).start()
    try:
        name = f"{proxy.host}/cloudlet/private-shared:v1"
        via_proxy = Keychain({proxy.host: Credential("alice", "wonderland")})
        store = ImageStore(tmp_path / "images")
        async with RegistryClient(docker_config=False) as client:
            puller = Puller(store, client)
            results = await asyncio.gather(
                puller.pull(name, keychain=via_proxy), puller.pull(name, keychain=via_proxy),
                puller.pull(name), puller.pull(name, keychain=Keychain()),
                puller.pull(name, keychain=Keychain({proxy.host: Credential("alice", "guess")})),
                return_exceptions=True)
            ok, ok2, anon, empty, wrong = results
            assert not isinstance(ok, BaseException) and not isinstance(ok2, BaseException), results
            assert ok.digest == ok2.digest == digest
            for failed in (anon, empty, wrong):
                assert isinstance(failed, Unauthorized) and failed.status == 401, results
            # config + 2 layers, each fetched once for the two pulls with credentials
            assert sorted(proxy.blob_gets) == sorted(set(proxy.blob_gets)) and len(proxy.blob_gets) == 3
            # once the image is here, a pull without credentials still asks the registry and fails
            with pytest.raises(Unauthorized):
                await puller.pull(name)
            assert (await puller.pull(name, keychain=via_proxy)).downloaded == 0
        assert store.resolve(name) == digest
    finally:
        await proxy.stop()
