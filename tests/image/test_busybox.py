"""The built-in busybox image: contents, OCI documents, determinism, and a real shell run in its rootfs."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path

import orjson
import pytest

from cloudlet.image.busybox import BUSYBOX_BINARY, build_busybox
from cloudlet.image.manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
)
from cloudlet.image.store import ImageStore
from tests.image.conftest import add_image, sha, tar_layer

pytestmark = pytest.mark.skipif(not BUSYBOX_BINARY.is_file(), reason="Debian busybox-static not installed")


async def test_builtin_image_documents(store: ImageStore) -> None:
    digest = await store.ensure_builtin()
    assert store.resolve("busybox:latest") == store.resolve("docker.io/library/busybox:latest") == digest
    manifest = orjson.loads(store.content.get_bytes(digest))
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MEDIA_TYPE_OCI_MANIFEST
    assert manifest["config"]["mediaType"] == MEDIA_TYPE_OCI_CONFIG
    (layer_desc,) = manifest["layers"]
    assert layer_desc["mediaType"] == MEDIA_TYPE_OCI_LAYER_GZIP
    config = orjson.loads(store.content.get_bytes(manifest["config"]["digest"]))
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") and "/bin" in e for e in config["config"]["Env"])
    layer_tar = gzip.decompress(store.content.get_bytes(layer_desc["digest"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha(layer_tar)]}
    with tarfile.open(fileobj=io.BytesIO(layer_tar)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        names = [m.name for m in tar.getmembers()]
        passwd = tar.extractfile(members["etc/passwd"]).read().decode()  # type: ignore[union-attr]
        group = tar.extractfile(members["etc/group"]).read().decode()  # type: ignore[union-attr]
    assert names == sorted(names)
    assert members["bin/busybox"].isreg() and members["bin/busybox"].size == BUSYBOX_BINARY.stat().st_size
    applets = (await asyncio.to_thread(
        subprocess.run, [str(BUSYBOX_BINARY), "--list"], capture_output=True, check=True)).stdout.split()
    links = {n.rsplit("/", 1)[1] for n, m in members.items() if m.issym() and m.linkname == "/bin/busybox"}
    assert {a.decode() for a in applets} - {"busybox", "linuxrc"} <= links
    assert members["bin/sh"].issym()
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert "root:x:0:0:" in passwd and "nobody:x:65534:65534:" in passwd
    assert "root:x:0:" in group and "nobody:x:65534:" in group
    assert len({m.mtime for m in members.values()}) == 1
    assert store.config("busybox").cmd == ["sh"]


async def test_build_is_deterministic_and_keeps_existing_tag(tmp_path: Path, store: ImageStore) -> None:
    a, b = await asyncio.gather(asyncio.to_thread(build_busybox), asyncio.to_thread(build_busybox))
    assert a["manifest_digest"] == b["manifest_digest"] and a["layer"] == b["layer"]
    other = ImageStore(tmp_path / "other")
    try:
        assert await other.ensure_builtin() == a["manifest_digest"] == await store.ensure_builtin()
    finally:
        other.close()
    # a busybox:latest the user pulled or loaded is not replaced
    mine = add_image(store, [tar_layer([{"name": "mine", "data": "x"}])], name="busybox:latest")
    assert await store.ensure_builtin() == mine
    assert store.resolve("busybox") == mine


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot and overlay need root")
async def test_shell_runs_in_snapshot(store: ImageStore) -> None:
    digest = await store.ensure_builtin()
    rootfs = await store.create_snapshot("sh-test", digest)
    proc = await asyncio.create_subprocess_exec(
        "chroot", str(rootfs), "/bin/sh", "-c",
        "echo hello > /tmp/out && cat /tmp/out && id -u nobody && ls /bin/ls && wc -l < /etc/passwd",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PATH": "/bin:/usr/bin:/sbin:/usr/sbin"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert out.decode().split() == ["hello", "65534", "/bin/ls", "2"]
    # the write landed in the container's upper dir, not in the shared layer
    assert (rootfs.parent / "upper" / "tmp" / "out").read_text() == "hello\n"
    await store.remove_snapshot("sh-test")
