"""Content-addressed blob store: ``<root>/blobs/<algorithm>/<hex>``, verified on write and read.

Writes go to a temporary file under ``<root>/ingest/``, are hashed while they
are written, fsynced, checked against the expected digest and size, and only
then renamed into place (and the directory fsynced) — so an interrupted or
corrupt ingest never leaves a blob under its digest. Concurrent ingests of
the same digest share one write: inside one process through an asyncio lock
per digest, across processes (server + ``cloudlet image`` CLI) through an
``flock`` on ``<root>/ingest/<algorithm>-<hex>.lock``; whoever comes second
finds the blob present and returns without reading its stream.

Reads through :meth:`ContentStore.get_bytes` and
:meth:`ContentStore.read_chunks` re-hash the data; a blob whose content no
longer matches its name is removed (so a re-pull can heal it) and
:class:`DigestMismatch` is raised.

:class:`FileLock` (shared/exclusive ``flock`` that waits by polling, never by
parking a worker thread) is also used by the image store for its GC lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "ContentError",
    "ContentStore",
    "DigestMismatch",
    "FileLock",
    "NotFound",
    "SizeMismatch",
    "digest_of",
    "split_digest",
]

_ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
_WRITE_BUFFER = 1 << 20
READ_CHUNK = 1 << 20


class ContentError(Exception):
    """Base class for content store errors."""


class NotFound(ContentError, LookupError):
    """No blob with that digest."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"content digest {digest}: not found")
        self.digest = digest


class DigestMismatch(ContentError):
    """The data does not hash to the digest it was written or stored under."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(ContentError):
    """The data is not as long as the descriptor said."""

    def __init__(self, digest: str, expected: int, actual: int) -> None:
        super().__init__(f"size mismatch for {digest}: expected {expected} bytes, got {actual}")
        self.expected = expected
        self.actual = actual


def split_digest(digest: str) -> tuple[str, str]:
    """``"sha256:ab.."`` -> ``("sha256", "ab..")``; raises ``ValueError`` when malformed."""
    if not isinstance(digest, str) or ":" not in digest:
        raise ValueError(f"invalid digest {digest!r}")
    algorithm, hex_part = digest.split(":", 1)
    length = _ALGORITHMS.get(algorithm)
    if length is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    if len(hex_part) != length or not _HEX.fullmatch(hex_part):
        raise ValueError(f"invalid digest {digest!r}")
    return algorithm, hex_part


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The ``algorithm:hex`` digest of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileLock:
    """One ``flock`` on ``path`` (own open file description, so it also excludes within a process).

    ``await acquire()`` polls with ``LOCK_NB`` and sleeps between tries so no
    thread is parked; ``acquire_sync`` blocks (for short sync sections).
    """

    def __init__(self, path: Path, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    def _try(self) -> bool:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    async def acquire(self) -> None:
        """Wait for the lock (wrap in ``asyncio.timeout`` to bound the wait)."""
        delay = 0.002
        try:
            while not self._try():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        except BaseException:
            self.release()
            raise

    def acquire_sync(self) -> None:
        if self._try():
            return
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)

    def try_acquire(self) -> bool:
        ok = self._try()
        if not ok:
            self.release()
        return ok

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    async def __aenter__(self) -> FileLock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def __enter__(self) -> FileLock:
        self.acquire_sync()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Writer:
    """A temp file being hashed while written (used from worker threads)."""

    def __init__(self, ingest_dir: Path, algorithm: str) -> None:
        self.tmp = ingest_dir / f"{uuid.uuid4().hex}.tmp"
        self.file: BinaryIO = open(self.tmp, "xb")  # noqa: SIM115
        self.hash = hashlib.new(algorithm)
        self.algorithm = algorithm
        self.size = 0

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.file.write(data)
        self.size += len(data)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


class ContentStore:
    """Blobs under ``<root>/blobs``; see the module docstring for the guarantees."""

    def __init__(self, root: Path, gc_lock: Path | None = None) -> None:
        self.root = Path(root)
        self.gc_lock = gc_lock
        self.blobs_dir = self.root / "blobs"
        self.ingest_dir = self.root / "ingest"
        for algorithm in _ALGORITHMS:
            (self.blobs_dir / algorithm).mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    # -- lookups -------------------------------------------------------------------------

    def path(self, digest: str) -> Path:
        """Where the blob lives (whether or not it exists); ``ValueError`` for a bad digest."""
        algorithm, hex_part = split_digest(digest)
        return self.blobs_dir / algorithm / hex_part

    def has(self, digest: str) -> bool:
        try:
            return self.path(digest).is_file()
        except ValueError:
            return False

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(digest) from None

    def iter(self) -> Iterator[tuple[str, int]]:
        """Every stored blob as ``(digest, size)``."""
        for algorithm in _ALGORITHMS:
            directory = self.blobs_dir / algorithm
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not _HEX.fullmatch(entry.name) or len(entry.name) != _ALGORITHMS[algorithm]:
                    continue
                try:
                    yield f"{algorithm}:{entry.name}", entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue

    # -- reads ---------------------------------------------------------------------------

    def get_bytes(self, digest: str) -> bytes:
        """The blob's bytes, verified against its digest."""
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(digest) from None
        algorithm = digest.split(":", 1)[0]
        actual = digest_of(data, algorithm)
        if actual != digest:
            self._quarantine(path)
            raise DigestMismatch(digest, actual)
        return data

    def open(self, digest: str) -> BinaryIO:
        """An unverified read handle (callers that stream must hash themselves; see ``verify``)."""
        try:
            return open(self.path(digest), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise NotFound(digest) from None

    def verify(self, digest: str) -> None:
        """Re-hash the stored blob (blocking); raises :class:`DigestMismatch` and removes it if bad."""
        algorithm = digest.split(":", 1)[0]
        h = hashlib.new(algorithm)
        with self.open(digest) as f:
            while chunk := f.read(READ_CHUNK):
                h.update(chunk)
        actual = f"{algorithm}:{h.hexdigest()}"
        if actual != digest:
            self._quarantine(self.path(digest))
            raise DigestMismatch(digest, actual)

    async def read_chunks(self, digest: str, chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
        """Stream the blob; raises :class:`DigestMismatch` after the last chunk if it is corrupt."""
        f = self.open(digest)
        algorithm = digest.split(":", 1)[0]
        h = hashlib.new(algorithm)
        try:
            while True:
                chunk = await asyncio.to_thread(f.read, chunk_size)
                if not chunk:
                    break
                h.update(chunk)
                yield chunk
        finally:
            f.close()
        actual = f"{algorithm}:{h.hexdigest()}"
        if actual != digest:
            self._quarantine(self.path(digest))
            raise DigestMismatch(digest, actual)

    def _quarantine(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)

    # -- writes --------------------------------------------------------------------------

    def put_bytes(self, data: bytes, expected_digest: str | None = None) -> str:
        """Store small ``data`` (manifests, configs) synchronously; returns its digest."""
        algorithm = split_digest(expected_digest)[0] if expected_digest else "sha256"
        digest = digest_of(data, algorithm)
        if expected_digest is not None and digest != expected_digest:
            raise DigestMismatch(expected_digest, digest)
        if self.has(digest):
            return digest
        with contextlib.ExitStack() as stack:
            if self.gc_lock is not None:
                stack.enter_context(FileLock(self.gc_lock, shared=True))
            writer = _Writer(self.ingest_dir, algorithm)
            try:
                writer.write(data)
                self._commit(writer, digest, len(data))
            except BaseException:
                writer.abort()
                raise
        return digest

    async def write_bytes(self, data: bytes, expected_digest: str | None = None) -> str:
        """:meth:`put_bytes` off the event loop."""
        return await asyncio.to_thread(self.put_bytes, data, expected_digest)

    async def ingest(
        self,
        chunks: AsyncIterator[bytes],
        expected_digest: str | None = None,
        expected_size: int | None = None,
    ) -> str:
        """Write a stream; returns its digest. Shares the write with other ingests of the same digest.

        Raises :class:`DigestMismatch` / :class:`SizeMismatch` (nothing is
        stored then). When the blob is already present (or another writer
        stores it while this one waits) ``chunks`` is not consumed.
        """
        async with contextlib.AsyncExitStack() as stack:
            if self.gc_lock is not None:
                await stack.enter_async_context(FileLock(self.gc_lock, shared=True))
            return await self._ingest(chunks, expected_digest, expected_size)

    async def _ingest(
        self, chunks: AsyncIterator[bytes], expected_digest: str | None, expected_size: int | None
    ) -> str:
        if expected_digest is None:
            return await self._write(chunks, None, expected_size)
        split_digest(expected_digest)
        if self._present(expected_digest, expected_size):
            return expected_digest
        lock, count = self._locks.get(expected_digest, (asyncio.Lock(), 0))
        self._locks[expected_digest] = (lock, count + 1)
        try:
            async with lock:
                if self._present(expected_digest, expected_size):
                    return expected_digest
                algorithm, hex_part = split_digest(expected_digest)
                async with FileLock(self.ingest_dir / f"{algorithm}-{hex_part}.lock"):
                    if self._present(expected_digest, expected_size):
                        return expected_digest
                    return await self._write(chunks, expected_digest, expected_size)
        finally:
            lock, count = self._locks[expected_digest]
            if count <= 1:
                del self._locks[expected_digest]
            else:
                self._locks[expected_digest] = (lock, count - 1)

    def _present(self, digest: str, expected_size: int | None) -> bool:
        try:
            st = self.path(digest).stat()
        except FileNotFoundError:
            return False
        if expected_size is not None and st.st_size != expected_size:
            raise SizeMismatch(digest, expected_size, st.st_size)
        return True

    async def _write(
        self, chunks: AsyncIterator[bytes], expected_digest: str | None, expected_size: int | None
    ) -> str:
        algorithm = split_digest(expected_digest)[0] if expected_digest else "sha256"
        writer = await asyncio.to_thread(_Writer, self.ingest_dir, algorithm)
        buffer: list[bytes] = []
        buffered = 0
        received = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                received += len(chunk)
                if expected_size is not None and received > expected_size:
                    raise SizeMismatch(expected_digest or "blob", expected_size, received)
                buffer.append(chunk)
                buffered += len(chunk)
                if buffered >= _WRITE_BUFFER:
                    data = b"".join(buffer)
                    buffer.clear()
                    buffered = 0
                    await asyncio.to_thread(writer.write, data)
            if buffer:
                await asyncio.to_thread(writer.write, b"".join(buffer))
            digest = f"{algorithm}:{writer.hash.hexdigest()}"
            if expected_size is not None and writer.size != expected_size:
                raise SizeMismatch(expected_digest or digest, expected_size, writer.size)
            if expected_digest is not None and digest != expected_digest:
                raise DigestMismatch(expected_digest, digest)
            await asyncio.to_thread(self._commit, writer, digest, writer.size)
        except BaseException:
            writer.abort()
            raise
        return digest

    def _commit(self, writer: _Writer, digest: str, size: int) -> None:
        writer.file.flush()
        os.fsync(writer.file.fileno())
        writer.file.close()
        final = self.path(digest)
        os.chmod(writer.tmp, 0o444)
        os.replace(writer.tmp, final)
        _fsync_dir(final.parent)

    def delete(self, digest: str) -> bool:
        """Remove a blob; False when it was not there."""
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    def clean_ingest(self, older_than: float = 3600.0) -> int:
        """Remove temp files of abandoned ingests (not the lock files); returns how many."""
        removed = 0
        now = time.time()
        for entry in os.scandir(self.ingest_dir):
            if not entry.name.endswith(".tmp"):
                continue
            try:
                if now - entry.stat().st_mtime >= older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
