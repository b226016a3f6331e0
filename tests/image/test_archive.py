"""Archives: docker-save tarballs and OCI layouts, round trips in both directions, names, corrupt input."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import orjson
import pytest

from cloudlet.image.archive import ArchiveError
from cloudlet.image.content import DigestMismatch
from cloudlet.image.store import ImageNotFound, ImageStore
from tests.image.conftest import add_image, sha, tar_layer, tree

L1 = tar_layer([{"name": "etc/os", "data": "one"}, {"name": "bin/x", "data": "x", "mode": 0o755}])
L2 = tar_layer([{"name": "etc/.wh.os", "data": ""}, {"name": "app", "data": "app"}])


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}  # type: ignore[union-attr]


def _tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _leftovers(directory: Path, name: str) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name in (name, f".{name}") or p.name.startswith(f".{name}.")]


async def _rootfs(store: ImageStore, ref: str, key: str) -> dict:
    rootfs = await store.create_snapshot(key, ref)
    try:
        return tree(rootfs)
    finally:
        await store.remove_snapshot(key)


async def test_docker_save_round_trip(store: ImageStore, tmp_path: Path) -> None:
    digest = add_image(store, [L1, L2], name="example.com/app:v1")
    store.tag("myorg/app:latest", digest)
    out = tmp_path / "save.tar"
    await store.export_archive(["example.com/app:v1", "myorg/app"], out, "docker")
    files = _members(out)
    (entry,) = orjson.loads(files["manifest.json"])
    assert entry["RepoTags"] == ["example.com/app:v1", "myorg/app:latest"]
    assert entry["Config"] == store.image_id("example.com/app:v1").split(":")[1] + ".json"
    # layers are written uncompressed, named by diff_id, as docker save does
    assert [sha(files[p]) for p in entry["Layers"]] == [sha(L1), sha(L2)]
    repos = orjson.loads(files["repositories"])
    assert repos == {"example.com/app": {"v1": sha(L2)[7:]}, "myorg/app": {"latest": sha(L2)[7:]}}

    fresh = ImageStore(tmp_path / "fresh")
    try:
        loaded = await fresh.import_archive(out)
        names = sorted(n for n, _ in loaded)
        assert names == ["docker.io/myorg/app:latest", "example.com/app:v1"]
        assert fresh.image_id("myorg/app") == store.image_id("example.com/app:v1")
        assert await _rootfs(fresh, "example.com/app:v1", "a") == await _rootfs(store, "example.com/app:v1", "b")
        assert fresh.config("example.com/app:v1").cmd == ["sh"]
    finally:
        fresh.close()


async def test_oci_layout_round_trip(store: ImageStore, tmp_path: Path) -> None:
    digest = add_image(store, [L1, L2], name="example.com/app:v1")
    out = tmp_path / "oci.tar"
    await store.export_archive(["example.com/app:v1"], out, "oci")
    files = _members(out)
    assert orjson.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = orjson.loads(files["index.json"])
    (desc,) = index["manifests"]
    assert desc["digest"] == digest
    assert desc["annotations"] == {"io.containerd.image.name": "example.com/app:v1",
                                   "org.opencontainers.image.ref.name": "v1"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    fresh = ImageStore(tmp_path / "fresh")
    try:
        assert await fresh.import_archive(out) == [("example.com/app:v1", digest)]
        assert await _rootfs(fresh, digest, "a") == await _rootfs(store, digest, "b")
        # and back out again: byte-identical blobs, same index
        again = tmp_path / "again.tar"
        await fresh.export_archive(["example.com/app:v1"], again, "oci")
        assert _members(again) == files
    finally:
        fresh.close()


async def test_oci_ref_name_tag_and_default_name(store: ImageStore, tmp_path: Path) -> None:
    digest = add_image(store, [L1], name=None)
    blobs = {f"blobs/sha256/{d.split(':')[1]}": store.content.get_bytes(d)
             for d in [digest, store.document(digest).config.digest]}  # type: ignore[union-attr]
    layer_desc = store.document(digest).layers[0]  # type: ignore[union-attr]
    blobs[f"blobs/sha256/{layer_desc.digest.split(':')[1]}"] = store.content.path(layer_desc.digest).read_bytes()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
        "size": store.content.size(digest), "annotations": {"org.opencontainers.image.ref.name": "2.0"}}]}
    path = tmp_path / "layout.tar"
    _tar(path, {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": orjson.dumps(index), **blobs})
    fresh = ImageStore(tmp_path / "fresh")
    try:
        # a bare tag needs a repository from the caller
        assert await fresh.import_archive(path) == [("", digest)]
        assert await fresh.import_archive(path, name="example.com/tool") == [("example.com/tool:2.0", digest)]
    finally:
        fresh.close()


async def test_import_hand_made_docker_save_with_gzip_layer(tmp_path: Path, store: ImageStore) -> None:
    config = orjson.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/app"]},
                           "rootfs": {"type": "layers", "diff_ids": [sha(L1), sha(L2)]}})
    files = {
        "manifest.json": orjson.dumps([{"Config": "cfg.json", "RepoTags": ["busybox:hand"],
                                        "Layers": ["l1/layer.tar", "l2/layer.tar.gz"]}]),
        "repositories": b"{}",
        "cfg.json": config,
        "l1/layer.tar": L1,
        "l2/layer.tar.gz": gzip.compress(L2),
    }
    path = tmp_path / "hand.tar"
    _tar(path, files)
    ((name, digest),) = await store.import_archive(path)
    assert name == "docker.io/library/busybox:hand"
    assert store.image_id("busybox:hand") == sha(config)
    t = await _rootfs(store, digest, "k")
    assert "app" in t and "etc/os" not in t and "bin/x" in t


async def test_corrupt_and_unknown_archives(store: ImageStore, tmp_path: Path) -> None:
    digest = add_image(store, [L1], name="example.com/app:v1")
    out = tmp_path / "oci.tar"
    await store.export_archive(["example.com/app:v1"], out, "oci")
    files = _members(out)
    layer_name = next(n for n, d in files.items() if d == store.content.path(
        store.document(digest).layers[0].digest).read_bytes())  # type: ignore[union-attr]
    files[layer_name] = gzip.compress(b"not the layer")
    bad = tmp_path / "bad.tar"
    _tar(bad, files)
    fresh = ImageStore(tmp_path / "fresh")
    try:
        with pytest.raises(DigestMismatch):
            await fresh.import_archive(bad)
        assert fresh.refs() == {}
        junk = tmp_path / "junk.tar"
        _tar(junk, {"hello.txt": b"hi"})
        with pytest.raises(ArchiveError):
            await fresh.import_archive(junk)
        (tmp_path / "notatar").write_bytes(b"\0garbage" * 100)
        with pytest.raises(ArchiveError):
            await fresh.import_archive(tmp_path / "notatar")
        with pytest.raises(ImageNotFound):
            await fresh.export_archive(["example.com/none:1"], tmp_path / "x.tar", "docker")
        assert not _leftovers(tmp_path, "x.tar")
    finally:
        fresh.close()


async def test_docker25_hybrid_archive_names_from_manifest_json(store: ImageStore, tmp_path: Path) -> None:
    digest = add_image(store, [L1], name="example.com/app:v1")
    out = tmp_path / "oci.tar"
    await store.export_archive(["example.com/app:v1"], out, "oci")
    files = _members(out)
    index = orjson.loads(files["index.json"])
    del index["manifests"][0]["annotations"]
    files["index.json"] = orjson.dumps(index)
    config = store.image_id("example.com/app:v1").split(":")[1]
    layer = store.document(digest).layers[0].digest.split(":")[1]  # type: ignore[union-attr]
    files["manifest.json"] = orjson.dumps([{"Config": f"blobs/sha256/{config}", "RepoTags": ["app:hybrid"],
                                            "Layers": [f"blobs/sha256/{layer}"]}])
    hybrid = tmp_path / "hybrid.tar"
    _tar(hybrid, files)
    fresh = ImageStore(tmp_path / "fresh")
    try:
        assert await fresh.import_archive(hybrid) == [("docker.io/library/app:hybrid", digest)]
    finally:
        fresh.close()
