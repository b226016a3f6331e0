"""Content store: verified writes and reads, atomic ingest, shared concurrent ingests (in and across processes)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudlet.image.content import ContentStore, DigestMismatch, NotFound, SizeMismatch, digest_of
from tests.image.conftest import chunks_of


def _no_temp_files(cs: ContentStore) -> bool:
    return not [p for p in cs.ingest_dir.iterdir() if p.name.endswith(".tmp")]


def test_put_get_verify_delete(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    data = b"hello world"
    d = cs.put_bytes(data)
    assert d == digest_of(data) and cs.has(d) and cs.size(d) == len(data)
    assert cs.get_bytes(d) == data
    assert cs.put_bytes(data, d) == d  # idempotent
    assert list(cs.iter()) == [(d, len(data))]
    assert cs.path(d) == tmp_path / "blobs" / "sha256" / d.split(":")[1]
    with pytest.raises(DigestMismatch):
        cs.put_bytes(b"other", d)
    assert cs.get_bytes(d) == data
    assert cs.delete(d) and not cs.has(d) and not cs.delete(d)
    with pytest.raises(NotFound):
        cs.get_bytes(d)
    with pytest.raises(NotFound):
        cs.size(d)
    with pytest.raises(ValueError):
        cs.path("sha256:xyz")
    assert not cs.has("md5:abc")


def test_corrupt_blob_detected_on_read_and_removed(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(b"payload")
    path = cs.path(d)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(DigestMismatch):
        cs.get_bytes(d)
    assert not cs.has(d)  # a re-pull can heal it


async def test_ingest_stream_verified(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    data = os.urandom(3 << 20)
    d = await cs.ingest(chunks_of(data, 65536), digest_of(data), len(data))
    assert cs.get_bytes(d) == data
    read = b"".join([c async for c in cs.read_chunks(d)])
    assert read == data
    # without an expected digest the computed one is returned
    assert await cs.ingest(chunks_of(b"abc")) == digest_of(b"abc")
    assert _no_temp_files(cs)


async def test_ingest_mismatch_and_size_leave_nothing(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    data = b"x" * 1000
    wrong = digest_of(b"y" * 1000)
    with pytest.raises(DigestMismatch):
        await cs.ingest(chunks_of(data), wrong, len(data))
    with pytest.raises(SizeMismatch):
        await cs.ingest(chunks_of(data), digest_of(data), 10)
    with pytest.raises(SizeMismatch):
        await cs.ingest(chunks_of(data), digest_of(data), 2000)
    assert not cs.has(wrong) and not cs.has(digest_of(data))
    assert _no_temp_files(cs)


async def test_interrupted_and_cancelled_ingest_leave_no_blob(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    data = os.urandom(1 << 20)

    async def broken() -> AsyncIterator[bytes]:
        yield data[:1000]
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        await cs.ingest(broken(), digest_of(data), len(data))
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield data[:1000]
        started.set()
        await asyncio.sleep(3600)
        yield data[1000:]

    task = asyncio.create_task(cs.ingest(slow(), digest_of(data), len(data)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not cs.has(digest_of(data))
    assert _no_temp_files(cs)
    # and a clean retry works
    assert await cs.ingest(chunks_of(data, 4096), digest_of(data), len(data)) == digest_of(data)


async def test_concurrent_ingests_share_one_write(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    data = os.urandom(256 * 1024)
    d = digest_of(data)
    consumed: list[int] = []

    async def stream(i: int) -> AsyncIterator[bytes]:
        consumed.append(i)
        for off in range(0, len(data), 8192):
            await asyncio.sleep(0)
            yield data[off : off + 8192]

    results = await asyncio.gather(*(cs.ingest(stream(i), d, len(data)) for i in range(6)))
    assert results == [d] * 6
    assert len(consumed) == 1, f"{len(consumed)} streams were read, expected exactly one writer"
    assert cs.get_bytes(d) == data


_OTHER_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from cloudlet.image.content import ContentStore
    root, digest, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    data = bytes.fromhex(sys.stdin.readline().strip())
    async def stream():
        yield data[:10]
        print("started", flush=True)
        await asyncio.sleep(1.0)
        yield data[10:]
    async def main():
        print(await ContentStore(root).ingest(stream(), digest, size), flush=True)
    asyncio.run(main())
    """
)


async def test_concurrent_ingest_across_processes(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    data = os.urandom(4096)
    d = digest_of(data)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OTHER_PROCESS, str(tmp_path), d, str(len(data)),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(data.hex().encode() + b"\n")
    await proc.stdin.drain()
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"started"
    read = False

    async def ours() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield data

    # The other process holds the digest's ingest lock: we wait, then find the blob written.
    assert await asyncio.wait_for(cs.ingest(ours(), d, len(data)), 30) == d
    assert not read
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip().decode() == d
    assert await proc.wait() == 0
    assert cs.get_bytes(d) == data
