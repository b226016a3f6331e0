"""Layer unpacking: file types, metadata, whiteouts, verification, and hostile archives refused."""

from __future__ import annotations

import asyncio
import gzip
import os
import stat
from pathlib import Path

import orjson
import pytest

from cloudlet.image.manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_MANIFEST,
)
from cloudlet.image.store import ImageStore
from cloudlet.image.unpack import LayerError, UnsafeEntry, apply_layer
from tests.image.conftest import add_image, sha, tar_layer

ROOT = os.geteuid() == 0


def _exists(path: Path) -> bool:
    return path.exists()


def _diff(store: ImageStore, digest: str) -> list[Path]:
    return [store.chain_path(cid) / "diff" for cid, _, _ in store.layer_chain(digest)]


async def test_unpack_file_types_and_metadata(store: ImageStore) -> None:
    layer = tar_layer([
        {"name": "./", "dir": True},
        {"name": "etc/", "dir": True, "mode": 0o750, "mtime": 1_600_000_000},
        {"name": "etc/conf", "data": "hello", "mode": 0o640, "uid": 1000, "gid": 2000},
        {"name": "bin/tool", "data": "#!/bin/sh\n", "mode": 0o4755},
        {"name": "bin/alias", "hardlink": "bin/tool"},
        {"name": "/abs/file", "data": "absolute names stay inside"},
        {"name": "lib", "symlink": "/usr/lib"},
        {"name": "rel", "symlink": "../../../../etc/passwd"},
        {"name": "dev/null", "chr": (1, 3)},
        {"name": "run/fifo", "fifo": True},
        {"name": "x/attr", "data": "x", "xattrs": {"user.note": "kept"}},
        {"name": "pw", "symlink": "/etc/passwd"},
        {"name": "pw-hard", "hardlink": "pw"},
    ])
    digest = add_image(store, [layer])
    chain = await store.unpack(digest)
    assert (chain / "meta.json").exists()
    d = chain / "diff"
    assert (d / "etc/conf").read_text() == "hello"
    st = (d / "etc/conf").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if ROOT:
        assert (st.st_uid, st.st_gid) == (1000, 2000)
    assert stat.S_IMODE((d / "etc").stat().st_mode) == 0o750
    assert int((d / "etc").stat().st_mtime) == 1_600_000_000  # directory times set after children
    assert stat.S_IMODE((d / "bin/tool").stat().st_mode) == 0o4755
    assert (d / "bin/alias").stat().st_ino == (d / "bin/tool").stat().st_ino
    assert (d / "abs/file").read_text() == "absolute names stay inside"
    assert os.readlink(d / "lib") == "/usr/lib"  # symlinks are stored verbatim, never followed
    assert os.readlink(d / "rel") == "../../../../etc/passwd"
    assert stat.S_ISFIFO((d / "run/fifo").lstat().st_mode)
    if ROOT:
        dev = (d / "dev/null").lstat()
        assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
    assert os.getxattr(d / "x/attr", "user.note") == b"kept"
    # a hard link to a symlink links the symlink itself, never what it points at
    assert os.readlink(d / "pw-hard") == "/etc/passwd"
    assert (d / "pw-hard").lstat().st_ino == (d / "pw").lstat().st_ino
    # idempotent: a second unpack returns the same chain without re-extracting
    mtime = (chain / "meta.json").stat().st_mtime_ns
    assert await store.unpack(digest) == chain
    assert (chain / "meta.json").stat().st_mtime_ns == mtime


def test_devices_skipped_when_unprivileged(tmp_path: Path) -> None:
    layer = tar_layer([{"name": "dev/null", "chr": (1, 3)}, {"name": "dev/sda", "blk": (8, 0)},
                       {"name": "f", "data": "x", "uid": 1234}])
    blob = tmp_path / "layer.tar"
    blob.write_bytes(layer)
    dest = tmp_path / "out"
    dest.mkdir()
    stats = apply_layer(blob, "application/vnd.oci.image.layer.v1.tar", dest, sha(layer), sha(layer),
                        whiteouts="oci", privileged=False)
    assert stats["skipped_devices"] == 2
    assert not (dest / "dev/null").exists() and not (dest / "dev/sda").exists()
    assert (dest / "f").read_text() == "x"


async def test_whiteouts_become_overlay_format(store: ImageStore) -> None:
    lower = tar_layer([
        {"name": "a/b", "data": "b"}, {"name": "a/c", "data": "c"},
        {"name": "d/x", "data": "x"}, {"name": "d/sub/y", "data": "y"},
    ])
    upper = tar_layer([
        {"name": "a/.wh.b", "data": ""},
        {"name": "d/.wh..wh..opq", "data": ""},
        {"name": "d/new", "data": "new"},
        {"name": ".wh..wh.plnk/123", "data": ""},
    ])
    digest = add_image(store, [lower, upper])
    await store.unpack(digest)
    _, top = _diff(store, digest)
    if not ROOT:
        pytest.skip("overlay whiteouts need root")
    wh = (top / "a/b").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(top / "d", "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    assert not (top / "a/.wh.b").exists() and not (top / "d/.wh..wh..opq").exists()
    assert (top / "d/new").read_text() == "new"


async def test_hardlink_to_lower_layer_is_copied_up(store: ImageStore) -> None:
    lower = tar_layer([{"name": "usr/bin/python3.11", "data": "interp", "mode": 0o755}])
    upper = tar_layer([{"name": "usr/bin/python3", "hardlink": "usr/bin/python3.11"}])
    digest = add_image(store, [lower, upper])
    await store.unpack(digest)
    _, top = _diff(store, digest)
    assert (top / "usr/bin/python3").read_text() == "interp"
    assert stat.S_IMODE((top / "usr/bin/python3").stat().st_mode) == 0o755


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "../evil", "data": "x"}], "escapes the layer root"),
        ([{"name": "a/../../evil", "data": "x"}], "escapes the layer root"),
        ([{"name": "link", "symlink": "{outside}"}, {"name": "link/pwned", "data": "x"}], "symlink"),
        ([{"name": "up", "symlink": "../../../../../../.."}, {"name": "up/tmp/pwned", "data": "x"}], "symlink"),
        ([{"name": "link", "symlink": "{outside}"}, {"name": "link/.wh.victim", "data": ""}], "symlink"),
        ([{"name": "hl", "hardlink": "../../../../etc/passwd"}], "escapes the layer root"),
        ([{"name": "hl", "hardlink": "/etc/passwd"}], "target not in the image"),
        ([{"name": "sl", "symlink": "{outside}/victim"}, {"name": "hl", "hardlink": "sl/../x"}],
         "target not in the image"),
        ([{"name": "f", "data": "x"}, {"name": "f/under", "data": "y"}], "non-directory"),
        ([{"name": "d/keep", "data": "x"}, {"name": "d/.wh..", "data": ""}], "invalid whiteout"),
        ([{"name": ".wh.", "data": ""}], "invalid whiteout"),
    ],
)
async def test_hostile_layers_are_refused(store: ImageStore, tmp_path: Path, entries: list[dict], message: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    for e in entries:
        for k in ("symlink",):
            if k in e:
                e[k] = e[k].replace("{outside}", str(outside))
    digest = add_image(store, [tar_layer(entries)])
    with pytest.raises(UnsafeEntry, match=message):
        await store.unpack(digest)
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "untouched"
    assert not _exists(tmp_path / "evil") and not _exists(Path("/tmp/pwned"))
    # nothing half-unpacked is left behind
    assert [p.name for p in store.chains_dir.iterdir() if not p.name.endswith(".lock")] == []


async def test_layer_digest_and_diff_id_verified(store: ImageStore) -> None:
    layer = tar_layer([{"name": "f", "data": "content"}])
    digest = add_image(store, [layer])
    (cid, diff_id, desc), = store.layer_chain(digest)
    # corrupt the stored layer blob: the unpack notices while reading
    blob = store.content.path(desc.digest)
    os.chmod(blob, 0o644)
    good = blob.read_bytes()
    blob.write_bytes(gzip.compress(tar_layer([{"name": "f", "data": "tampered"}]), mtime=0))
    with pytest.raises(LayerError, match="digest mismatch"):
        await store.unpack(digest)
    assert not store.chain_path(cid).exists()
    blob.write_bytes(good)
    # a config whose diff_id does not match the layer is refused too
    bad = add_image(store, [layer], name=None, compress=False)
    cfg_digest = store.document(bad).config.digest  # type: ignore[union-attr]
    doc = store.config_document(cfg_digest)
    doc["rootfs"]["diff_ids"] = [sha(b"other")]
    cfg = store.content.put_bytes(orjson.dumps(doc))
    man = store.content.put_bytes(orjson.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": cfg, "size": store.content.size(cfg)},
        "layers": [{"mediaType": MEDIA_TYPE_OCI_LAYER, "digest": sha(layer), "size": len(layer)}],
    }))
    with pytest.raises(LayerError, match="diff_id mismatch"):
        await store.unpack(man)
    assert await store.unpack(digest)


async def test_uncompressed_and_sniffed_layers(store: ImageStore, tmp_path: Path) -> None:
    layer = tar_layer([{"name": "plain", "data": "p"}])
    digest = add_image(store, [layer], compress=False)
    chain = await store.unpack(digest)
    assert (chain / "diff/plain").read_text() == "p"
    # unknown media type: compression is sniffed from the magic bytes
    blob = tmp_path / "l.gz"
    blob.write_bytes(gzip.compress(layer))
    out = tmp_path / "o"
    out.mkdir()
    apply_layer(blob, "application/octet-stream", out, None, sha(layer))
    assert (out / "plain").read_text() == "p"
    blob.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(LayerError, match="zstandard"):
            apply_layer(blob, "application/vnd.oci.image.layer.v1.tar+zstd", tmp_path / "z", None, None)


async def test_concurrent_unpacks_share_chains(store: ImageStore) -> None:
    base = tar_layer([{"name": "base/f" + str(i), "data": os.urandom(2000)} for i in range(50)])
    a = add_image(store, [base, tar_layer([{"name": "a", "data": "a"}])], name="example.com/a:1")
    b = add_image(store, [base, tar_layer([{"name": "b", "data": "b"}])], name="example.com/b:1")
    results = await asyncio.gather(*(store.unpack(x) for x in [a, b, a, b, a]))
    assert results[0] == results[2] == results[4] and results[1] == results[3]
    chains = sorted(p.name for p in store.chains_dir.iterdir() if p.is_dir())
    assert len(chains) == 3  # shared base + one per image
    assert not [p for p in store.chains_dir.iterdir() if p.name.startswith(".tmp-")]


def test_unprivileged_whiteouts_kept_as_markers_and_flattened(tmp_path: Path) -> None:
    from cloudlet.image.snapshot import flatten

    lower = tar_layer([{"name": "a/b", "data": "b"}, {"name": "a/c", "data": "c"}, {"name": "d/x", "data": "x"}])
    upper = tar_layer([{"name": "a/.wh.b", "data": ""}, {"name": "d/.wh..wh..opq", "data": ""},
                       {"name": "d/y", "data": "y"}])
    dirs = []
    for i, layer in enumerate((lower, upper)):
        blob = tmp_path / f"l{i}"
        blob.write_bytes(layer)
        dest = tmp_path / f"d{i}"
        dest.mkdir()
        apply_layer(blob, "application/vnd.oci.image.layer.v1.tar", dest, None, sha(layer),
                    whiteouts="oci", privileged=False)
        dirs.append(dest)
    assert (dirs[1] / "a/.wh.b").exists() and (dirs[1] / "d/.wh..wh..opq").exists()
    out = tmp_path / "rootfs"
    flatten([(dirs[0], "oci"), (dirs[1], "oci")], out, privileged=False)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["a", "a/c", "d", "d/y"]


_UNPACKER = """
import asyncio, sys
from pathlib import Path
from cloudlet.image.store import ImageStore
async def main():
    s = ImageStore(Path(sys.argv[1]))
    print(await s.unpack(sys.argv[2]), flush=True)
asyncio.run(main())
"""


async def test_unpack_shared_across_processes(store: ImageStore) -> None:
    import subprocess
    import sys

    layers = [tar_layer([{"name": f"l{i}/f{j}", "data": os.urandom(20000)} for j in range(40)]) for i in range(3)]
    digest = add_image(store, layers)
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", _UNPACKER, str(store.root), digest,
                                                  stdout=subprocess.PIPE) for _ in range(2)]
    ours = await store.unpack(digest)
    outs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert {o[0].decode().strip() for o in outs} == {str(ours)}
    metas = [store.chain_path(c) / "meta.json" for c, _, _ in store.layer_chain(digest)]
    assert all(m.exists() for m in metas)
    assert sorted(p.name for p in store.chains_dir.iterdir() if p.is_dir()) == sorted(m.parent.name for m in metas)
