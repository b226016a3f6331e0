"""Shared fixtures for the image tests: a real on-disk ImageStore, layer/image builders, mount checks.

``store`` is an :class:`ImageStore` under ``tmp_path`` (real overlay mounts
when running as root); on teardown every snapshot is removed and the test
fails if any mount of this store's instance is left in ``/proc/self/mountinfo``.
``tar_layer`` builds layer tars from a compact spec, ``add_image`` writes
blobs + config + manifest into a store and tags it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloudlet.image.manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
)
from cloudlet.image.store import ImageStore

Entry = dict[str, Any]


def mounts_of(source: str) -> list[str]:
    """Lines of /proc/self/mountinfo whose mount source is ``source``."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" - ", 1)
            if len(fields) == 2 and fields[1].split()[1:2] == [source]:
                out.append(line.strip())
    return out


def tar_layer(entries: list[Entry]) -> bytes:
    """A layer tar. Each entry: ``name`` plus one of ``data`` (file), ``dir``, ``symlink``,
    ``hardlink``, ``chr``/``blk`` (major, minor), ``fifo``; optional ``mode``, ``uid``, ``gid``,
    ``mtime``, ``xattrs``.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.mtime = e.get("mtime", 1_700_000_000)
            info.uid = e.get("uid", 0)
            info.gid = e.get("gid", 0)
            data = None
            if "data" in e:
                data = e["data"] if isinstance(e["data"], bytes) else e["data"].encode()
                info.size = len(data)
                info.mode = e.get("mode", 0o644)
            elif e.get("dir"):
                info.type = tarfile.DIRTYPE
                info.mode = e.get("mode", 0o755)
            elif "symlink" in e:
                info.type = tarfile.SYMTYPE
                info.linkname = e["symlink"]
                info.mode = 0o777
            elif "hardlink" in e:
                info.type = tarfile.LNKTYPE
                info.linkname = e["hardlink"]
                info.mode = e.get("mode", 0o644)
            elif "chr" in e or "blk" in e:
                info.type = tarfile.CHRTYPE if "chr" in e else tarfile.BLKTYPE
                info.devmajor, info.devminor = e.get("chr") or e.get("blk")
                info.mode = e.get("mode", 0o666)
            elif e.get("fifo"):
                info.type = tarfile.FIFOTYPE
                info.mode = e.get("mode", 0o644)
            if e.get("xattrs"):
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e["xattrs"].items()}
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def add_image(
    store: ImageStore,
    layers: list[bytes],
    name: str | None = "example.com/test/img:v1",
    compress: bool = True,
    config: dict[str, Any] | None = None,
    architecture: str = "amd64",
) -> str:
    """Store an OCI image made of the given uncompressed layer tars; returns the manifest digest."""
    descs = []
    for layer in layers:
        blob = gzip.compress(layer, mtime=0) if compress else layer
        store.content.put_bytes(blob)
        descs.append({
            "mediaType": MEDIA_TYPE_OCI_LAYER_GZIP if compress else MEDIA_TYPE_OCI_LAYER,
            "digest": sha(blob),
            "size": len(blob),
        })
    config_doc = {
        "architecture": architecture,
        "os": "linux",
        "config": config or {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
    }
    config_bytes = orjson.dumps(config_doc)
    store.content.put_bytes(config_bytes)
    manifest = orjson.dumps({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": sha(config_bytes), "size": len(config_bytes)},
        "layers": descs,
    })
    digest = store.content.put_bytes(manifest)
    if name is not None:
        store.tag(name, digest)
    return digest


async def chunks_of(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def tree(root: Path) -> dict[str, tuple[str, Any]]:
    """A comparable description of a directory tree (type, content/target, mode)."""
    out: dict[str, tuple[str, Any]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            out[rel] = ("link", str(path.readlink()))
        elif path.is_dir():
            out[rel] = ("dir", oct(st.st_mode & 0o7777))
        elif path.is_file():
            out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest()[:12], oct(st.st_mode & 0o7777))
        else:
            out[rel] = ("other", oct(st.st_mode))
    return out


def _teardown(store: ImageStore) -> None:
    from cloudlet.image.snapshot import _destroy

    for snap in store.list_snapshots():
        _destroy(snap.rootfs.parent)
    left = mounts_of(store.mount_source)
    store.close()
    assert not left, f"leaked mounts: {left}"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = ImageStore(tmp_path / "images")
    yield s
    _teardown(s)


@pytest.fixture
def copy_store(tmp_path: Path) -> Any:
    s = ImageStore(tmp_path / "images-copy", snapshotter="copy")
    yield s
    _teardown(s)
