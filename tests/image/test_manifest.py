"""Manifests, indexes and configs: parsing, platform choice, the reference table (also across processes)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from cloudlet.image.manifest import (
    MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    Index,
    Manifest,
    ManifestError,
    NoMatchingPlatform,
    Platform,
    parse_document,
)
from cloudlet.image.store import ImageNotFound, ImageStore
from tests.image.conftest import add_image, sha, tar_layer

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def _index(media_type: str | None, entries: list[tuple[str, dict[str, str] | None]]) -> dict:
    doc: dict = {"schemaVersion": 2, "manifests": [
        {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": d, "size": 10, **({"platform": p} if p else {})}
        for d, p in entries
    ]}
    if media_type:
        doc["mediaType"] = media_type
    return doc


def test_parse_documents() -> None:
    m = parse_document(orjson.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": D1, "size": 5},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": D2, "size": 7}],
    }))
    assert isinstance(m, Manifest) and m.media_type == MEDIA_TYPE_DOCKER_MANIFEST
    assert m.config.digest == D1 and [(x.digest, x.size) for x in m.layers] == [(D2, 7)]
    # no mediaType: classified by shape
    bare = parse_document(orjson.dumps({"schemaVersion": 2, "config": m.raw["config"], "layers": []}))
    assert isinstance(bare, Manifest) and bare.media_type == MEDIA_TYPE_OCI_MANIFEST
    idx = parse_document(orjson.dumps(_index(None, [(D1, {"os": "linux", "architecture": "amd64"})])))
    assert isinstance(idx, Index) and idx.media_type == MEDIA_TYPE_OCI_INDEX
    lst = parse_document(orjson.dumps(_index(MEDIA_TYPE_DOCKER_LIST, [(D1, None)])))
    assert isinstance(lst, Index) and lst.media_type == MEDIA_TYPE_DOCKER_LIST
    with pytest.raises(ManifestError, match="schema 1"):
        parse_document(orjson.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}))
    with pytest.raises(ManifestError):
        parse_document(b"not json")
    with pytest.raises(ManifestError):
        parse_document(orjson.dumps({"schemaVersion": 2, "config": {"digest": D1}, "layers": []}))


def test_platform_selection() -> None:
    idx = parse_document(orjson.dumps(_index(MEDIA_TYPE_OCI_INDEX, [
        (D3, {"os": "unknown", "architecture": "unknown"}),
        (D1, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        (D2, {"os": "linux", "architecture": "amd64"}),
    ])))
    assert isinstance(idx, Index)
    assert idx.select(Platform("linux", "amd64")).digest == D2
    assert idx.select(Platform("linux", "aarch64")).digest == D1  # arm64 defaults to v8
    assert idx.select(Platform("linux", "x86_64")).digest == D2
    with pytest.raises(NoMatchingPlatform) as info:
        idx.select(Platform("linux", "s390x"))
    assert str(info.value) == "no matching manifest for linux/s390x in the manifest list entries"
    with pytest.raises(NoMatchingPlatform):
        idx.select(Platform("unknown", "unknown", "x"))


def test_store_index_resolution_config_and_images(store: ImageStore) -> None:
    amd = add_image(store, [tar_layer([{"name": "a", "data": "amd"}])], name=None,
                    config={"Entrypoint": ["/app"], "Cmd": ["--flag"], "Env": ["A=1"], "WorkingDir": "/w",
                            "User": "1000:1000", "ExposedPorts": {"80/tcp": {}}, "Labels": {"k": "v"},
                            "StopSignal": "SIGQUIT"})
    arm = add_image(store, [tar_layer([{"name": "a", "data": "arm"}])], name=None, architecture="arm64")
    index = orjson.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [
        {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": arm, "size": store.content.size(arm),
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": amd, "size": store.content.size(amd),
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]})
    top = store.content.put_bytes(index)
    store.tag("example.com/multi:1", top)
    assert store.resolve("example.com/multi:1") == top
    assert store.resolve(f"example.com/multi@{top}") == top
    assert store.resolve(top) == top
    assert store.resolve("example.com/multi:2") is None
    assert store.manifest_for_platform(top) == amd
    assert store.manifest_for_platform(amd) == amd
    cfg = store.config("example.com/multi:1")
    assert (cfg.entrypoint, cfg.cmd, cfg.env, cfg.working_dir, cfg.user) == (["/app"], ["--flag"], ["A=1"], "/w", "1000:1000")
    assert (cfg.exposed_ports, cfg.labels, cfg.stop_signal, cfg.architecture) == (["80/tcp"], {"k": "v"}, "SIGQUIT", "amd64")
    image_id = store.image_id("example.com/multi:1")
    assert image_id == parse_document(store.content.get_bytes(amd)).config.digest  # type: ignore[union-attr]
    assert store.config(image_id).cmd == ["--flag"]  # lookup by image ID
    (info,) = store.images()
    assert (info.name, info.digest, info.image_id, info.platform_digest, info.complete) == (
        "example.com/multi:1", top, image_id, amd, True)
    assert info.size > 0 and info.familiar == "example.com/multi:1"
    with pytest.raises(ImageNotFound):
        store.config("example.com/nothing:1")
    with pytest.raises(ManifestError):
        store.manifest_for_platform(top, Platform("linux", "riscv64"))


def test_tag_untag_and_normalisation(store: ImageStore) -> None:
    d = add_image(store, [tar_layer([{"name": "f", "data": "x"}])], name="busybox")
    assert store.resolve("docker.io/library/busybox:latest") == d
    assert store.resolve("index.docker.io/library/busybox") == d
    assert store.refs() == {"docker.io/library/busybox:latest": d}
    assert store.untag("busybox:latest") and not store.untag("busybox:latest")
    assert store.resolve("busybox") is None
    with pytest.raises(LookupError):
        store.tag("busybox", sha(b"absent"))


_TAGGER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cloudlet.image.store import ImageStore
    s = ImageStore(Path(sys.argv[1]))
    for i in range(50):
        s.tag(f"example.com/other:{i}", sys.argv[2])
    print(s.resolve("example.com/mine:0"))
    """
)


async def test_reference_table_shared_between_processes(store: ImageStore) -> None:
    d = add_image(store, [tar_layer([{"name": "f", "data": "x"}])], name="example.com/mine:0")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _TAGGER, str(store.root), d, stdout=subprocess.PIPE)
    # tag concurrently from this process while the other one writes
    for i in range(50):
        await asyncio.to_thread(store.tag, f"example.com/mine:{i}", d)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and out.decode().strip() == d
    refs = store.refs()
    assert len(refs) == 100 and set(refs.values()) == {d}
    other = ImageStore(Path(store.root))
    try:
        assert other.resolve("example.com/other:49") == d
    finally:
        other.close()


async def test_docker_schema2_manifest_list_and_image_id_lookup(store: ImageStore) -> None:
    import gzip

    layer = tar_layer([{"name": "hello", "data": "docker"}])
    blob = gzip.compress(layer)
    store.content.put_bytes(blob)
    config = orjson.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                           "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}})
    cfg = store.content.put_bytes(config)
    manifest = store.content.put_bytes(orjson.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cfg,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": sha(blob),
                    "size": len(blob)}],
    }))
    lst = store.content.put_bytes(orjson.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_DOCKER_LIST,
        "manifests": [{"mediaType": MEDIA_TYPE_DOCKER_MANIFEST, "digest": manifest,
                       "size": store.content.size(manifest), "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    store.tag("hello-world", lst)
    assert store.manifest_for_platform(lst) == manifest
    assert store.image_id("hello-world") == cfg
    assert store.resolve(cfg) == lst  # an image ID resolves through the tagged images
    assert store.resolve(sha(blob)) == sha(blob) and store.is_index(lst)
    chain = await store.unpack("hello-world")
    assert (chain / "diff" / "hello").read_text() == "docker"
    assert store.config(cfg).cmd == ["/hello"]
