"""Layer unpacking: apply one OCI layer tar into its own chain directory, safely.

Each layer is unpacked once into ``chains/<chain-hex>/diff`` holding only that
layer's changes; the snapshotter stacks the chain directories as overlay lower
dirs (or flattens them for the copy fallback). OCI whiteouts become overlay's
own format when running as root: ``.wh.<name>`` -> a 0/0 character device
``<name>``, ``.wh..wh..opq`` -> ``trusted.overlay.opaque=y`` on the directory.
Without root the OCI marker files are kept as they are (``whiteouts: "oci"``
in the chain's meta.json) and only the copy snapshotter can use the chain.

Safety: entry and hard-link names are cleaned (leading ``/`` and ``./``
dropped) and refused when they climb out with ``..``; every parent directory
an entry is written into must be a real directory of this layer (never a
symlink, so an entry can never be written through ``link -> /etc``); the final
path is always replaced, never opened through. Hard links must name a file
inside the image (this layer, or a lower one, which is then copied up).
Device nodes are created only as root, ownership only as root. The
compressed stream must hash to the layer digest and the uncompressed one to
its diff_id, or the unpack fails and nothing is kept.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gzip
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from .content import FileLock, NotFound
from .manifest import Descriptor, layer_compression

if TYPE_CHECKING:
    from .store import ImageStore

__all__ = ["LayerError", "UnsafeEntry", "apply_layer", "unpack_chain", "WHITEOUT_PREFIX", "OPAQUE_MARKER"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_COPY_CHUNK = 1 << 20

try:  # optional
    import zstandard as _zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None


# Unpacking has its own threads so a big image does not starve other to_thread users.
_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="cloudlet-unpack")


class LayerError(Exception):
    """The layer cannot be applied (bad compression, digest, diff_id, or tar)."""


class NeedLowers(LayerError):
    """A hard link points below this layer and the lower layers were not given (retry with them)."""


class UnsafeEntry(LayerError):
    """A tar entry tries to leave the layer root (``..``, through a symlink, hard link outside)."""


class _HashingReader:
    """File-like wrapper that hashes everything read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def _decompressor(raw: IO[bytes], compression: str) -> IO[bytes]:
    if compression == "auto":
        peek = raw.read(4)  # type: ignore[union-attr]
        raw = _Prefixed(peek, raw)
        if peek[:2] == b"\x1f\x8b":
            compression = "gzip"
        elif peek == b"\x28\xb5\x2f\xfd":
            compression = "zstd"
        else:
            compression = "none"
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
    if compression == "zstd":
        if _zstd is None:
            raise LayerError("zstd-compressed layers need the 'zstandard' module, which is not installed")
        return _zstd.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[no-any-return]
    return raw


class _Prefixed:
    def __init__(self, prefix: bytes, raw: IO[bytes] | Any) -> None:
        self.prefix = prefix
        self.raw = raw

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            if n < 0:
                out = self.prefix + self.raw.read()
                self.prefix = b""
                return bytes(out)
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            if len(out) < n:
                out += self.raw.read(n - len(out))
            return bytes(out)
        return bytes(self.raw.read(n))

    def readable(self) -> bool:
        return True


def clean_name(name: str) -> str:
    """Entry name relative to the layer root; raises :class:`UnsafeEntry` if it climbs out."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeEntry(f"tar entry {name!r} escapes the layer root")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


class _Applier:
    def __init__(self, dest: Path, lowers: list[Path] | None, whiteouts: str, privileged: bool) -> None:
        self.dest = dest
        self.lowers = lowers
        self.whiteouts = whiteouts
        self.privileged = privileged
        self.known_dirs: set[str] = {""}
        self.dir_meta: dict[str, tarfile.TarInfo] = {}
        self.skipped_devices = 0
        self.entries = 0

    # -- paths ---------------------------------------------------------------------

    def _abs(self, rel: str) -> str:
        return os.path.join(self.dest, rel) if rel else str(self.dest)

    def _ensure_dir(self, rel: str) -> None:
        if rel in self.known_dirs:
            return
        parent = posixpath.dirname(rel)
        self._ensure_dir(parent)
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
        else:
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafeEntry(
                    f"path {rel!r} is a {'symlink' if stat.S_ISLNK(st.st_mode) else 'non-directory'}"
                    " in this layer; refusing to write beneath it"
                )
        self.known_dirs.add(rel)

    def _remove(self, rel: str) -> None:
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            prefix = rel + "/"
            self.known_dirs = {d for d in self.known_dirs if d != rel and not d.startswith(prefix)}
            self.dir_meta = {d: m for d, m in self.dir_meta.items() if d != rel and not d.startswith(prefix)}
        else:
            os.unlink(path)

    # -- entries -------------------------------------------------------------------

    def apply(self, tar: tarfile.TarFile) -> None:
        while (member := tar.next()) is not None:
            tar.members.clear()  # streaming: do not keep every header of a big layer in memory
            self.entries += 1
            rel = clean_name(member.name)
            if rel == "":
                continue  # the root directory itself
            parent, base = posixpath.split(rel)
            if base.startswith(WHITEOUT_PREFIX):
                self._ensure_dir(parent)
                if base == OPAQUE_MARKER:
                    self._opaque(parent)
                elif base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                    continue  # other aufs metadata (.wh..wh.plnk, ...) is not content
                else:
                    victim = base[len(WHITEOUT_PREFIX):]
                    if victim in ("", ".", ".."):
                        raise UnsafeEntry(f"invalid whiteout {member.name!r}")
                    self._whiteout(posixpath.join(parent, victim))
                continue
            self._ensure_dir(parent)
            self._entry(tar, member, rel)
        # Directory modes and times last: adding children changes mtimes and a
        # read-only directory would block its own children.
        for rel in sorted(self.dir_meta, key=lambda r: r.count("/"), reverse=True):
            self._set_meta(self._abs(rel), self.dir_meta[rel], is_link=False)

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo, rel: str) -> None:
        path = self._abs(rel)
        if member.isdir():
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                self._remove(rel)
                st = None
            if st is None:
                os.mkdir(path, 0o755)
            self.known_dirs.add(rel)
            self.dir_meta[rel] = member
            self._xattrs(path, member)
            return
        if member.ischr() or member.isblk():
            if not self.privileged:
                self.skipped_devices += 1
                return
            self._remove(rel)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor))
            self._set_meta(path, member, is_link=False)
            return
        self._remove(rel)
        if member.isreg():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                src = tar.extractfile(member)
                if src is not None:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
            self._set_meta(path, member, is_link=False)
            self._xattrs(path, member)
        elif member.issym():
            os.symlink(member.linkname, path)
            self._set_meta(path, member, is_link=True)
        elif member.islnk():
            self._hardlink(member, rel)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
            self._set_meta(path, member, is_link=False)
        # anything else (GNU volume headers, ...) carries no content

    def _hardlink(self, member: tarfile.TarInfo, rel: str) -> None:
        target_rel = clean_name(member.linkname)
        if target_rel == "" or target_rel == rel:
            raise UnsafeEntry(f"invalid hard link {member.name!r} -> {member.linkname!r}")
        tparent = posixpath.dirname(target_rel)
        path = self._abs(rel)
        if self._real_parents(self.dest, tparent):
            src = self._abs(target_rel)
            try:
                st = os.lstat(src)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                os.link(src, path, follow_symlinks=False)
                return
        # Not in this layer: copy the file up from the topmost lower layer that has it.
        if self.lowers is None:
            raise NeedLowers(member.name)
        for lower in self.lowers:
            if not self._real_parents(lower, tparent):
                continue
            src = os.path.join(lower, target_rel)
            try:
                st = os.lstat(src)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, path, follow_symlinks=False)
                if self.privileged:
                    os.lchown(path, st.st_uid, st.st_gid)
                os.chmod(path, stat.S_IMODE(st.st_mode))
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
                return
            break
        raise UnsafeEntry(f"hard link {member.name!r} -> {member.linkname!r}: target not in the image")

    @staticmethod
    def _real_parents(root: Path, rel_dir: str) -> bool:
        path = str(root)
        for part in [p for p in rel_dir.split("/") if p]:
            path = os.path.join(path, part)
            try:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    return False
            except FileNotFoundError:
                return False
        return True

    def _set_meta(self, path: str, member: tarfile.TarInfo, is_link: bool) -> None:
        if self.privileged:
            with contextlib.suppress(OSError):
                os.lchown(path, member.uid, member.gid)
        if not is_link:
            os.chmod(path, member.mode & 0o7777)
        mtime_ns = int(member.mtime * 1_000_000_000)
        with contextlib.suppress(OSError):
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)

    def _xattrs(self, path: str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if not self.privileged and not name.startswith("user."):
                continue
            if name.startswith("trusted.overlay."):
                continue  # never let a layer forge overlay metadata
            with contextlib.suppress(OSError):
                os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)

    def _whiteout(self, rel: str) -> None:
        self._remove(rel)
        if self.whiteouts == "overlay":
            os.mknod(self._abs(rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))
        else:
            parent, base = posixpath.split(rel)
            open(self._abs(posixpath.join(parent, WHITEOUT_PREFIX + base)), "wb").close()  # noqa: SIM115

    def _opaque(self, rel: str) -> None:
        path = self._abs(rel)
        if self.whiteouts == "overlay":
            os.setxattr(path, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
        else:
            open(os.path.join(path, OPAQUE_MARKER), "wb").close()  # noqa: SIM115


def apply_layer(
    blob: Path,
    media_type: str,
    dest: Path,
    layer_digest: str | None,
    diff_id: str | None,
    lowers: list[Path] | None = None,
    whiteouts: str = "overlay",
    privileged: bool | None = None,
) -> dict[str, Any]:
    """Apply the layer blob into the empty directory ``dest`` (blocking); returns stats.

    ``lowers`` are the lower layers' directories, top first (only used to
    resolve hard links to files below); ``None`` means they are not unpacked
    yet, and a hard link into them raises :class:`NeedLowers`. Raises :class:`LayerError` /
    :class:`UnsafeEntry`; ``dest`` is then in an undefined state (callers
    unpack into a temp directory).
    """
    if privileged is None:
        privileged = os.geteuid() == 0
    start = time.perf_counter()
    with open(blob, "rb") as raw_file:
        compressed = _HashingReader(raw_file)
        stream = _decompressor(compressed, layer_compression(media_type))  # type: ignore[arg-type]
        uncompressed = _HashingReader(stream)
        applier = _Applier(dest, lowers, whiteouts, privileged)
        try:
            with tarfile.open(fileobj=uncompressed, mode="r|", errorlevel=2) as tar:  # type: ignore[call-overload]
                applier.apply(tar)
            uncompressed.drain()
            compressed.drain()
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise LayerError(f"invalid layer {layer_digest or blob}: {exc}") from exc
    if layer_digest is not None and compressed.digest != layer_digest:
        raise LayerError(f"layer digest mismatch: expected {layer_digest}, got {compressed.digest}")
    if diff_id is not None and uncompressed.digest != diff_id:
        raise LayerError(f"layer {layer_digest} diff_id mismatch: expected {diff_id}, got {uncompressed.digest}")
    return {
        "entries": applier.entries,
        "skipped_devices": applier.skipped_devices,
        "uncompressed_size": uncompressed.count,
        "seconds": time.perf_counter() - start,
    }


async def unpack_chain(
    store: ImageStore,
    path: Path,
    chain_id: str,
    diff_id: str,
    desc: Descriptor,
    parent: Path | None,
    lowers: list[Path] | None,
) -> None:
    """Unpack one layer into ``path`` (= ``chains/<chain-hex>``) unless it is there already.

    ``lowers=None`` lets layers of one image unpack in parallel; see :class:`NeedLowers`.
    """
    if (path / "meta.json").exists():
        return
    async with store._key_lock("chain:" + path.name):
        if (path / "meta.json").exists():
            return
        async with FileLock(path.with_name(path.name + ".lock")):
            if (path / "meta.json").exists():
                return
            if not store.content.has(desc.digest):
                raise NotFound(desc.digest)
            await asyncio.get_running_loop().run_in_executor(
                _EXECUTOR, _unpack_to, store, path, chain_id, diff_id, desc, parent, lowers
            )


def _unpack_to(
    store: ImageStore,
    path: Path,
    chain_id: str,
    diff_id: str,
    desc: Descriptor,
    parent: Path | None,
    lowers: list[Path] | None,
) -> None:
    privileged = os.geteuid() == 0
    whiteouts = "overlay" if privileged else "oci"
    tmp = path.with_name(f".tmp-{path.name[:16]}-{uuid.uuid4().hex[:8]}")
    (tmp / "diff").mkdir(parents=True)
    try:
        stats = apply_layer(
            store.content.path(desc.digest), desc.media_type, tmp / "diff", desc.digest, diff_id,
            lowers, whiteouts, privileged,
        )
        meta = {
            "chain_id": chain_id,
            "diff_id": diff_id,
            "layer": desc.digest,
            "media_type": desc.media_type,
            "parent": parent.name if parent is not None else "",
            "whiteouts": whiteouts,
            "entries": stats["entries"],
            "size": stats["uncompressed_size"],
            "created": time.time(),
        }
        (tmp / "meta.json").write_bytes(orjson.dumps(meta))
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / "meta.json").exists():
                raise
            # another writer finished first (its lock outlived a cancelled waiter): keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
