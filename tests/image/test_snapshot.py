"""Snapshots: real overlay mounts per container (and the copy fallback), isolation, cleanup, no leaks."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from cloudlet.image.snapshot import _libc, safe_rmtree, snapshot_dir
from cloudlet.image.store import ImageStore
from tests.image.conftest import add_image, mounts_of, tar_layer, tree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")

LOWER = tar_layer([
    {"name": "a/b", "data": "b"}, {"name": "a/c", "data": "c"},
    {"name": "d/x", "data": "x"}, {"name": "d/sub/y", "data": "y"},
    {"name": "keep", "data": "lower"}, {"name": "gone-dir/f", "data": "f"},
    {"name": "h1", "data": "linked", "mode": 0o600}, {"name": "h2", "hardlink": "h1"},
])
UPPER = tar_layer([
    {"name": "a/.wh.b", "data": ""},
    {"name": "d/.wh..wh..opq", "data": ""},
    {"name": "d/new", "data": "new"},
    {"name": "keep", "data": "upper"},
    {"name": ".wh.gone-dir", "data": ""},
    {"name": "sl", "symlink": "keep"},
])
EXPECTED = {"a", "a/c", "d", "d/new", "keep", "h1", "h2", "sl"}


def _visible(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _read(path: Path) -> str:
    return path.read_text()


async def test_overlay_snapshot_lifecycle(store: ImageStore) -> None:
    digest = add_image(store, [LOWER, UPPER])
    rootfs = await store.create_snapshot("ctr-1", digest)
    assert store.overlay_supported()
    (line,) = mounts_of(store.mount_source)
    assert " overlay " in line and str(rootfs) in line
    assert store.mount_source.startswith("cloudlet-")
    assert _visible(rootfs) == EXPECTED
    assert await asyncio.to_thread(_read, rootfs / "keep") == "upper"
    # writes go to this container's upper dir only
    (rootfs / "keep").write_text("changed")
    (rootfs / "a/c").unlink()
    other = await store.create_snapshot("ctr-2", digest)
    assert _read(other / "keep") == "upper" and (other / "a/c").exists()
    for chain in store.chains_dir.iterdir():
        if chain.is_dir():
            assert "changed" not in [p.read_text() for p in (chain / "diff").rglob("keep")]
    # idempotent per key
    assert await store.create_snapshot("ctr-1", digest) == rootfs
    assert _read(rootfs / "keep") == "changed"
    snaps = {s.key: s for s in store.list_snapshots()}
    assert set(snaps) == {"ctr-1", "ctr-2"} and snaps["ctr-1"].kind == "overlay" and snaps["ctr-1"].mounted
    assert len(mounts_of(store.mount_source)) == 2
    await store.remove_snapshot("ctr-1")
    await store.remove_snapshot("ctr-1")  # idempotent
    assert not snapshot_dir(store, "ctr-1").exists()
    assert len(mounts_of(store.mount_source)) == 1
    await store.remove_snapshot("ctr-2")
    assert mounts_of(store.mount_source) == []
    assert store.list_snapshots() == []


async def test_snapshot_remounted_after_mount_loss(store: ImageStore) -> None:
    digest = add_image(store, [LOWER])
    rootfs = await store.create_snapshot("k", digest)
    (rootfs / "written").write_text("survives")
    assert _libc.umount2(str(rootfs).encode(), 0) == 0  # what a host reboot does
    assert mounts_of(store.mount_source) == []
    again = await store.create_snapshot("k", digest)
    assert again == rootfs and _read(rootfs / "written") == "survives"
    assert len(mounts_of(store.mount_source)) == 1
    await store.remove_snapshot("k")


async def test_copy_fallback_matches_overlay_view(store: ImageStore, copy_store: ImageStore) -> None:
    d1 = add_image(store, [LOWER, UPPER])
    d2 = add_image(copy_store, [LOWER, UPPER])
    over = await store.create_snapshot("x", d1)
    copy = await copy_store.create_snapshot("x", d2)
    assert not copy_store.overlay_supported()
    assert mounts_of(copy_store.mount_source) == []
    assert tree(copy) == tree(over)
    assert (copy / "h1").stat().st_ino == (copy / "h2").stat().st_ino  # hard links kept
    assert stat.S_IMODE((copy / "h1").stat().st_mode) == 0o600
    (copy / "keep").write_text("private")
    second = await copy_store.create_snapshot("y", d2)
    assert _read(second / "keep") == "upper"
    assert [s.kind for s in copy_store.list_snapshots()] == ["copy", "copy"]
    await copy_store.remove_snapshot("x")
    await copy_store.remove_snapshot("y")
    assert list(copy_store.snapshots_dir.iterdir()) == []


async def test_many_layers_use_new_mount_api(store: ImageStore) -> None:
    layers = [tar_layer([{"name": f"l{i:02d}/f", "data": str(i)}, {"name": "top", "data": str(i)}]) for i in range(45)]
    digest = add_image(store, layers)
    chain = store.layer_chain(digest)
    option_len = sum(len(str(store.chain_path(c) / "diff")) + 1 for c, _, _ in chain)
    assert option_len > os.sysconf("SC_PAGE_SIZE")  # too long for mount(2)'s data page
    rootfs = await store.create_snapshot("deep", digest)
    assert _read(rootfs / "top") == "44" and _read(rootfs / "l00/f") == "0"
    assert len(mounts_of(store.mount_source)) == 1
    await store.remove_snapshot("deep")


async def test_snapshot_of_unknown_image_fails_cleanly(store: ImageStore) -> None:
    with pytest.raises(LookupError):
        await store.create_snapshot("nope", "example.com/none:1")
    assert list(store.snapshots_dir.iterdir()) == []


async def test_concurrent_snapshots(store: ImageStore) -> None:
    digest = add_image(store, [LOWER, UPPER])
    roots = await asyncio.gather(*(store.create_snapshot(f"c{i}", digest) for i in range(20)))
    assert len(set(roots)) == 20
    assert len(mounts_of(store.mount_source)) == 20
    await asyncio.gather(*(store.remove_snapshot(f"c{i}") for i in range(20)))
    assert mounts_of(store.mount_source) == []


def test_safe_rmtree_refuses_mounts(store: ImageStore, tmp_path: Path) -> None:
    from cloudlet.image.snapshot import mount_overlay, unmount

    base = tmp_path / "m"
    for sub in ("l", "u", "w", "mnt"):
        (base / sub).mkdir(parents=True)
    (base / "l" / "precious").write_text("keep me")
    mount_overlay(store.mount_source, base / "mnt", [base / "l"], base / "u", base / "w")
    try:
        with pytest.raises(OSError):
            safe_rmtree(base)
        assert (base / "l" / "precious").read_text() == "keep me"
    finally:
        unmount(base / "mnt")
    safe_rmtree(base)
    assert not base.exists()


async def test_cancelled_creates_leave_nothing(store: ImageStore) -> None:
    digest = add_image(store, [LOWER, UPPER])
    await store.unpack(digest)
    for yields in range(12):
        task = asyncio.create_task(store.create_snapshot(f"c{yields}", digest))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            assert not snapshot_dir(store, f"c{yields}").exists()
        else:
            await store.remove_snapshot(f"c{yields}")  # finished before the cancel landed
    assert mounts_of(store.mount_source) == []
    assert list(store.snapshots_dir.iterdir()) == []
