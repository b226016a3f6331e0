"""Garbage collection and disk usage: what is kept, what goes, and GC waiting for writers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import orjson
import pytest

from cloudlet.image.manifest import MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST
from cloudlet.image.store import ImageStore
from tests.image.conftest import add_image, mounts_of, tar_layer

SHARED = tar_layer([{"name": "shared", "data": os.urandom(5000)}])


def _chains(store: ImageStore) -> set[str]:
    return {p.name for p in store.chains_dir.iterdir() if p.is_dir() and p.name != "empty"}


async def test_gc_removes_only_unreferenced(store: ImageStore) -> None:
    a = add_image(store, [SHARED, tar_layer([{"name": "a", "data": "a"}])], name="example.com/a:1")
    b = add_image(store, [SHARED, tar_layer([{"name": "b", "data": "b"}])], name="example.com/b:1")
    await store.unpack(a)
    await store.unpack(b)
    stray = store.content.put_bytes(b"unreferenced")
    (store.content.ingest_dir / "dead.tmp").write_bytes(b"half a blob")
    usage = store.disk_usage()
    assert usage["images"] == 2 and usage["blobs"]["count"] == 8 and usage["chains"]["count"] == 3
    assert usage["total_bytes"] == usage["blobs"]["bytes"] + usage["chains"]["bytes"] + usage["snapshots"]["bytes"]

    result = await store.gc()
    assert result["blobs_removed"] == 1 and result["chains_removed"] == 0
    assert not store.content.has(stray)
    assert not (store.content.ingest_dir / "dead.tmp").exists()
    assert store.resolve("example.com/a:1") == a

    store.untag("example.com/b:1")
    result = await store.gc()
    # b's manifest, config and own layer go, the shared layer stays (a still uses it)
    assert result["blobs_removed"] == 3 and result["chains_removed"] == 1
    assert result["bytes_freed"] > 0
    assert not store.content.has(b)
    assert len(_chains(store)) == 2
    rootfs = await store.create_snapshot("still-a", a)
    assert (rootfs / "shared").exists() and (rootfs / "a").exists()
    await store.remove_snapshot("still-a")

    store.untag("example.com/a:1")
    await store.gc()
    after = store.disk_usage()
    assert after["blobs"]["count"] == 0 and after["chains"]["count"] == 0 and after["total_bytes"] == 0
    assert list(store.trash_dir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")
async def test_snapshots_keep_their_image_alive(store: ImageStore) -> None:
    d = add_image(store, [SHARED], name="example.com/run:1")
    rootfs = await store.create_snapshot("ctr", d)
    store.untag("example.com/run:1")
    result = await store.gc()
    assert result["snapshots_removed"] == 0 and result["chains_removed"] == 0 and result["blobs_removed"] == 0
    assert (rootfs / "shared").exists() and len(mounts_of(store.mount_source)) == 1
    (rootfs / "written").write_bytes(b"w" * 10000)
    usage = store.disk_usage()
    assert usage["snapshots"]["count"] == 1 and usage["snapshots"]["bytes"] == 10000  # the upper dir
    # the node agent says which containers exist: the rest are collected with their image
    result = await store.gc(active_snapshots=[])
    assert result["snapshots_removed"] == 1 and result["chains_removed"] == 1 and result["blobs_removed"] == 3
    assert mounts_of(store.mount_source) == [] and store.list_snapshots() == []


async def test_index_children_are_kept(store: ImageStore) -> None:
    amd = add_image(store, [tar_layer([{"name": "x", "data": "amd"}])], name=None)
    arm = add_image(store, [tar_layer([{"name": "x", "data": "arm"}])], name=None, architecture="arm64")
    index = orjson.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [
        {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": d, "size": store.content.size(d),
         "platform": {"os": "linux", "architecture": arch}} for d, arch in ((amd, "amd64"), (arm, "arm64"))
    ]})
    top = store.content.put_bytes(index)
    store.tag("example.com/multi:1", top)
    before = len(list(store.content.iter()))
    assert (await store.gc())["blobs_removed"] == 0
    assert len(list(store.content.iter())) == before == 7


_HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from cloudlet.image.store import ImageStore
    async def main():
        s = ImageStore(Path(sys.argv[1]))
        async with s.lease():
            print("leased", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            # a pull finishing: the blob is stored, then tagged, all under the lease
            d = s.content.put_bytes(b"pulled while gc waited")
            print(d, flush=True)
    asyncio.run(main())
    """
)


async def test_gc_waits_for_a_lease_in_another_process(store: ImageStore) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, str(store.root), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"leased"
    gc_task = asyncio.create_task(store.gc())
    await asyncio.sleep(0.3)
    assert not gc_task.done()  # blocked by the other process's lease
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    digest = (await asyncio.wait_for(proc.stdout.readline(), 30)).strip().decode()
    await asyncio.wait_for(gc_task, 30)
    assert await proc.wait() == 0
    # the blob was written before GC ran; nothing tags it, so that GC run removed it
    assert gc_task.result()["blobs_removed"] == 1 and not store.content.has(digest)


async def test_sync_tag_on_the_loop_during_gc_does_not_deadlock(store: ImageStore) -> None:
    d = add_image(store, [SHARED], name="example.com/t:1")
    gc_task = asyncio.create_task(store.gc())
    for i in range(200):  # some of these run while GC holds its exclusive lock
        store.tag(f"example.com/t:{i}", d)
        if i % 20 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(gc_task, 30)
    assert store.resolve("example.com/t:199") == d and store.content.has(d)
