"""The image store: blobs, a name -> digest table, unpacked layer chains, container snapshots, GC.

Layout under ``root`` (``<data-dir>/images``)::

    blobs/sha256/<hex>          content-addressed blobs (see content.py)
    ingest/                     temp files and per-digest ingest locks
    refs.db                     SQLite (WAL): name -> top-level manifest/index digest
    gc.lock                     flock: shared while content is written, exclusive for GC
    chains/<chain-hex>/diff     one unpacked layer (overlay whiteouts), meta.json beside it
    snapshots/<id>/             one container: rootfs (overlay mount or copy), upper, work

Two processes (the server and the ``cloudlet image`` CLI) may use one root at
once: the reference table is SQLite, blob writes are atomic renames, chain
unpacking is serialised per chain with an ``flock``, and GC takes
``gc.lock`` exclusively while every writer (ingest, tag, unpack, snapshot,
and any :meth:`ImageStore.lease` a pull holds from first blob to tag) holds
it shared. GC's exclusive section only marks, unlinks blobs and renames
doomed directories into ``trash/``; the slow removal happens afterwards.

Layers of an image unpack in parallel, each once, into its ChainID's
directory (shared by every image with the same lower stack). Snapshots are
overlay mounts whose source is ``cloudlet-<instance>-overlay`` (the instance
id is the node agent's: a hash of the data dir), lower = one directory per
layer (top first; no flattening, so creating a snapshot is a few mkdirs and
one ``mount(2)``), upper + work per container; when overlayfs is unavailable
(or ``snapshotter="copy"``) the layers are flattened into a private copy.

Image documents (manifests, indexes, configs) are immutable by digest and
cached in memory after their first verified read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import reference as _reference
from .content import ContentStore, FileLock, NotFound
from .manifest import (
    INDEX_TYPES,
    Index,
    Manifest,
    ManifestError,
    Platform,
    diff_ids,
    host_platform,
    parse_config,
    parse_document,
)

__all__ = ["ImageStore", "ImageInfo", "ImageConfig", "SnapshotInfo", "chain_ids", "ImageNotFound"]


class ImageNotFound(LookupError):
    """No image with that name or digest in the store (message like crictl's)."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no such image: {ref!r}")
        self.ref = ref


@dataclass(slots=True)
class ImageConfig:
    """The runtime-relevant part of an image config (``config`` object of the OCI image config)."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    volumes: list[str] = field(default_factory=list)
    architecture: str = ""
    os: str = ""
    created: str = ""
    diff_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ImageConfig:
        c = doc.get("config") or {}
        return cls(
            entrypoint=list(c.get("Entrypoint") or []),
            cmd=list(c.get("Cmd") or []),
            env=list(c.get("Env") or []),
            working_dir=str(c.get("WorkingDir") or ""),
            user=str(c.get("User") or ""),
            exposed_ports=sorted((c.get("ExposedPorts") or {}).keys()),
            labels=dict(c.get("Labels") or {}),
            stop_signal=str(c.get("StopSignal") or ""),
            volumes=sorted((c.get("Volumes") or {}).keys()),
            architecture=str(doc.get("architecture") or ""),
            os=str(doc.get("os") or ""),
            created=str(doc.get("created") or ""),
            diff_ids=list((doc.get("rootfs") or {}).get("diff_ids") or []),
        )


@dataclass(slots=True)
class ImageInfo:
    """One tagged image: ``name`` (canonical), top-level ``digest``, ``image_id`` (config digest)."""

    name: str
    digest: str
    image_id: str
    size: int
    created: str
    media_type: str = ""
    platform_digest: str = ""
    complete: bool = True

    @property
    def familiar(self) -> str:
        try:
            return _reference.parse(self.name).familiar
        except _reference.InvalidReference:
            return self.name


@dataclass(slots=True)
class SnapshotInfo:
    key: str
    image: str
    rootfs: Path
    kind: str
    mounted: bool
    created: float
    chains: list[str] = field(default_factory=list)


def chain_ids(diff_id_list: Iterable[str]) -> list[str]:
    """OCI ChainIDs: ``ChainID(L0) = DiffID(L0)``, ``ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))``."""
    out: list[str] = []
    for diff_id in diff_id_list:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


# Layers of one image unpacked at the same time.
UNPACK_CONCURRENCY = 4

# Registries refuse manifests over 4 MiB; configs are as small. Anything bigger is a layer.
MAX_DOCUMENT_SIZE = 4 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    updated REAL NOT NULL
);
"""


class ImageStore:
    """See the module docstring.

    ``snapshotter`` is ``"auto"`` (overlay if it mounts), ``"overlay"`` or
    ``"copy"``; ``instance`` names host resources (``cloudlet-<instance>-overlay``
    mounts) and defaults to the node agent's id for ``<data-dir>/images``.
    """

    def __init__(
        self,
        root: Path,
        *,
        snapshotter: str = "auto",
        platform: Platform | None = None,
        instance: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.gc_lock_path = self.root / "gc.lock"
        self.content = ContentStore(self.root, gc_lock=self.gc_lock_path)
        self.chains_dir = self.root / "chains"
        self.snapshots_dir = self.root / "snapshots"
        self.trash_dir = self.root / "trash"
        for d in (self.chains_dir, self.snapshots_dir, self.trash_dir):
            d.mkdir(exist_ok=True)
        self.platform = platform or host_platform()
        if snapshotter not in ("auto", "overlay", "copy"):
            raise ValueError(f"unknown snapshotter {snapshotter!r}")
        self._snapshotter = snapshotter
        self._overlay_ok: bool | None = None if snapshotter == "auto" else snapshotter == "overlay"
        if instance is None:
            # the node agent's instance id: a hash of the data dir (``root`` is ``<data-dir>/images``)
            base = self.root.resolve()
            base = base.parent if base.name == "images" else base
            instance = hashlib.sha256(str(base).encode()).hexdigest()[:8]
        self.instance_id = instance
        self.mount_source = f"cloudlet-{instance}-overlay"
        self._db_lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "refs.db", timeout=30.0, check_same_thread=False,
                                   isolation_level=None)
        with self._db_lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        self._docs: dict[str, Any] = {}
        self._key_locks: dict[str, asyncio.Lock] = {}

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    # -- locking -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[None]:
        """Hold off GC while a multi-step write (a pull: blobs, then manifest, then tag) runs."""
        lock = FileLock(self.gc_lock_path, shared=True)
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _key_lock(self, key: str) -> asyncio.Lock:
        lock = self._key_locks.get(key)
        if lock is None:
            lock = self._key_locks[key] = asyncio.Lock()
        return lock

    def _drop_key_lock(self, key: str) -> None:
        lock = self._key_locks.get(key)
        if lock is not None and not lock.locked() and not getattr(lock, "_waiters", None):
            del self._key_locks[key]

    # -- documents -----------------------------------------------------------------------

    def document(self, digest: str) -> Manifest | Index:
        """The parsed manifest or index stored under ``digest`` (cached; blobs are immutable)."""
        doc = self._docs.get(digest)
        if doc is None:
            if self.content.size(digest) > MAX_DOCUMENT_SIZE:
                doc = ManifestError(f"{digest} is too large for a manifest")
            else:
                try:
                    doc = parse_document(self.content.get_bytes(digest))
                except ManifestError as exc:
                    doc = exc
            self._docs[digest] = doc
        if isinstance(doc, ManifestError):
            raise ManifestError(str(doc))
        if not isinstance(doc, (Manifest, Index)):
            raise ManifestError(f"{digest} is not a manifest or index")
        return doc

    def config_document(self, digest: str) -> dict[str, Any]:
        """The decoded image config blob ``digest`` (a fresh dict; the verified bytes are cached)."""
        key = "config:" + digest
        data = self._docs.get(key)
        if data is None:
            if self.content.size(digest) > MAX_DOCUMENT_SIZE:
                raise ManifestError(f"{digest} is too large for an image config")
            data = self.content.get_bytes(digest)
            parse_config(data)
            self._docs[key] = data
        return parse_config(data)

    def _is_config(self, digest: str) -> bool:
        try:
            self.document(digest)
            return False
        except ManifestError:
            try:
                self.config_document(digest)
            except ManifestError:
                return False
            return True

    # -- references ----------------------------------------------------------------------

    def resolve(self, ref: str) -> str | None:
        """Top-level manifest/index digest for a name, ``name@digest``, a stored manifest digest,
        or an image ID (config digest; resolved through the tagged images). ``None`` if absent."""
        if _reference.is_digest(ref):
            if not self.content.has(ref):
                return None
            if self._is_config(ref):  # an image ID: the tagged image with that config
                for digest in sorted(set(self.refs().values())):
                    with contextlib.suppress(LookupError, ManifestError, ValueError):
                        if self.manifest(digest)[1].config.digest == ref:
                            return digest
                return None
            return ref
        parsed = _reference.parse(ref)
        if parsed.digest is not None:
            if self.content.has(parsed.digest):
                return parsed.digest
            return None
        with self._db_lock:
            row = self._db.execute("SELECT digest FROM refs WHERE name = ?", (parsed.name,)).fetchone()
        return row[0] if row else None

    def tag(self, ref: str, digest: str) -> None:
        """Point ``ref`` (normalised) at the manifest/index ``digest``, which must be stored."""
        name = _reference.parse(ref).name
        if not self.content.has(digest):
            raise NotFound(digest)
        with FileLock(self.gc_lock_path, shared=True), self._db_lock:
            self._db.execute(
                "INSERT INTO refs(name, digest, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET digest = excluded.digest, updated = excluded.updated",
                (name, digest, time.time()),
            )

    def untag(self, ref: str) -> bool:
        """Remove the name; False when it did not exist."""
        name = _reference.parse(ref).name
        with self._db_lock:
            cur = self._db.execute("DELETE FROM refs WHERE name = ?", (name,))
        return cur.rowcount > 0

    def refs(self) -> dict[str, str]:
        """Every name -> digest."""
        with self._db_lock:
            rows = self._db.execute("SELECT name, digest FROM refs ORDER BY name").fetchall()
        return {name: digest for name, digest in rows}

    def names_for(self, digest: str) -> list[str]:
        return [n for n, d in self.refs().items() if d == digest]

    def _resolve_or_raise(self, digest_or_ref: str) -> str:
        digest = self.resolve(digest_or_ref)
        if digest is None:
            raise ImageNotFound(digest_or_ref)
        return digest

    def manifest_for_platform(self, digest: str, platform: Platform | None = None) -> str:
        """Index -> the digest of its entry for this platform; manifest -> itself."""
        doc = self.document(digest)
        depth = 0
        while isinstance(doc, Index):
            digest = doc.select(platform or self.platform).digest
            depth += 1
            if depth > 4:
                raise ManifestError("index nesting too deep")
            if not self.content.has(digest):
                return digest
            doc = self.document(digest)
        return digest

    def manifest(self, digest_or_ref: str) -> tuple[str, Manifest]:
        """The platform manifest (digest, parsed) for a name or digest."""
        digest = self.manifest_for_platform(self._resolve_or_raise(digest_or_ref))
        if not self.content.has(digest):
            raise NotFound(digest)
        doc = self.document(digest)
        assert isinstance(doc, Manifest)
        return digest, doc

    def config(self, digest_or_ref: str) -> ImageConfig:
        """The image config for a name, manifest/index digest or image ID (config digest)."""
        if _reference.is_digest(digest_or_ref) and self.content.has(digest_or_ref) and self._is_config(
            digest_or_ref
        ):
            return ImageConfig.from_document(self.config_document(digest_or_ref))
        _, manifest = self.manifest(digest_or_ref)
        return ImageConfig.from_document(self.config_document(manifest.config.digest))

    def image_id(self, ref: str) -> str:
        """The config digest (what ``docker images`` / ``crictl images`` call the image ID)."""
        _, manifest = self.manifest(ref)
        return manifest.config.digest

    def images(self) -> list[ImageInfo]:
        """One entry per name, sorted by name; ``complete`` is False when content is missing."""
        out: list[ImageInfo] = []
        for name, digest in self.refs().items():
            info = ImageInfo(name=name, digest=digest, image_id="", size=0, created="")
            try:
                doc = self.document(digest)
                info.media_type = doc.media_type
                pdigest, manifest = self.manifest(digest)
                info.platform_digest = pdigest
                info.image_id = manifest.config.digest
                info.size = sum(d.size for d in [manifest.config, *manifest.layers])
                info.created = str(self.config_document(manifest.config.digest).get("created") or "")
                info.complete = all(self.content.has(d.digest) for d in [manifest.config, *manifest.layers])
            except (NotFound, ManifestError, LookupError):
                info.complete = False
            out.append(info)
        return out

    # -- unpacking -----------------------------------------------------------------------

    def layer_chain(self, digest_or_ref: str) -> list[tuple[str, str, Any]]:
        """``(chain_id, diff_id, layer descriptor)`` bottom to top for the platform manifest."""
        _, manifest = self.manifest(digest_or_ref)
        config = self.config_document(manifest.config.digest)
        ids = diff_ids(config)
        if len(ids) != len(manifest.layers):
            raise ManifestError(
                f"image config has {len(ids)} diff_ids but the manifest has {len(manifest.layers)} layers"
            )
        return list(zip(chain_ids(ids), ids, manifest.layers, strict=True))

    def chain_path(self, chain_id: str) -> Path:
        return self.chains_dir / chain_id.split(":", 1)[1]

    async def unpack(self, digest: str) -> Path:
        """Unpack every layer of the image once (idempotent); returns the top chain's directory."""
        from .unpack import NeedLowers, unpack_chain

        chain = self.layer_chain(digest)
        # layers unpack in parallel: the top one being there says nothing about the others
        if chain and all((self.chain_path(c) / "meta.json").exists() for c, _, _ in chain):
            return self.chain_path(chain[-1][0])
        async with self.lease():
            # Layers unpack into their own directories, so they go in parallel; a layer
            # hard-linking into a lower one is redone once the lower ones are there.
            sem = asyncio.Semaphore(UNPACK_CONCURRENCY)
            paths = [self.chain_path(cid) for cid, _, _ in chain]

            async def one(i: int, lowers: list[Path] | None) -> None:
                chain_id, diff_id, desc = chain[i]
                parent_path = paths[i - 1] if i else None
                async with sem:
                    await unpack_chain(self, paths[i], chain_id, diff_id, desc, parent_path, lowers)

            results = await asyncio.gather(*(one(i, None) for i in range(len(chain))), return_exceptions=True)
            for i, res in enumerate(results):
                if isinstance(res, NeedLowers):
                    await one(i, [p / "diff" for p in reversed(paths[:i])])
                elif isinstance(res, BaseException):
                    raise res
        parent = paths[-1] if chain else None
        if parent is None:
            parent = self.chains_dir / "empty"
            (parent / "diff").mkdir(parents=True, exist_ok=True)
        return parent

    # -- snapshots -----------------------------------------------------------------------

    async def create_snapshot(self, key: str, digest: str) -> Path:
        """A writable rootfs for container ``key`` from image ``digest`` (idempotent per key)."""
        from .snapshot import create_snapshot

        return await create_snapshot(self, key, digest)

    async def remove_snapshot(self, key: str) -> None:
        """Unmount and delete the snapshot; a missing key is fine."""
        from .snapshot import remove_snapshot

        await remove_snapshot(self, key)

    def list_snapshots(self) -> list[SnapshotInfo]:
        from .snapshot import list_snapshots

        return list_snapshots(self)

    def overlay_supported(self) -> bool:
        from .snapshot import probe_overlay

        if self._overlay_ok is None:
            self._overlay_ok = probe_overlay(self)
        return self._overlay_ok

    # -- GC and usage --------------------------------------------------------------------

    async def gc(self, active_snapshots: Iterable[str] | None = None) -> dict[str, Any]:
        """Remove blobs, chains and snapshots nothing references.

        Roots: every tagged name and every snapshot's image. Snapshots are
        kept unless ``active_snapshots`` is given, then snapshots whose key is
        not in it are removed. Returns counts and bytes freed.
        """
        return await _collect(self, None if active_snapshots is None else set(active_snapshots))

    def disk_usage(self) -> dict[str, Any]:
        return _disk_usage(self)

    # -- built-in image, archives ----------------------------------------------------------

    async def ensure_builtin(self) -> str:
        """Build (once) and tag the built-in busybox image; returns its manifest digest."""
        from .busybox import ensure_busybox

        return await ensure_busybox(self)

    async def import_archive(self, path: Path, name: str | None = None) -> list[tuple[str, str]]:
        """Load a ``docker save`` tarball or an OCI layout archive; returns ``(name, digest)`` tagged."""
        from .archive import import_archive

        return await import_archive(self, Path(path), name)

    async def export_archive(self, refs: list[str], path: Path, format: str = "docker") -> None:
        """Write ``refs`` as a ``docker save`` tarball (``format="docker"``) or OCI layout (``"oci"``)."""
        from .archive import export_archive

        await export_archive(self, refs, Path(path), format)

    # -- misc ----------------------------------------------------------------------------

    def _write_json(self, path: Path, doc: Any) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, path)

    def _remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def is_index(self, digest: str) -> bool:
        return self.document(digest).media_type in INDEX_TYPES


# -- garbage collection ------------------------------------------------------------------------


def _du(path: Path) -> int:
    """Apparent size of a tree (hard links counted once, mounts not entered)."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return 0
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if entry.is_dir(follow_symlinks=False):
                if st.st_dev == top.st_dev:
                    stack.append(entry.path)
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_size
    return total


def _mark_sweep(store: ImageStore, active: set[str] | None) -> tuple[dict[str, Any], list[Path]]:
    from .snapshot import _read_meta, unmount

    trash: list[Path] = []
    roots: set[str] = set(store.refs().values())
    keep_chains: set[str] = {"empty"}
    snapshots_removed = 0
    for sdir in list(store.snapshots_dir.iterdir()):
        meta = _read_meta(sdir)
        if meta is None or (active is not None and meta.get("key") not in active):
            unmount(sdir / "rootfs")
            if os.path.ismount(sdir / "rootfs"):
                continue
            dest = store.trash_dir / f"snap-{sdir.name}-{uuid.uuid4().hex[:6]}"
            os.rename(sdir, dest)
            trash.append(dest)
            snapshots_removed += 1
            continue
        if meta.get("image"):
            roots.add(str(meta["image"]))
        keep_chains.update(str(c) for c in meta.get("chains", []))

    keep: set[str] = set()
    pending = list(roots)
    while pending:
        digest = pending.pop()
        if digest in keep:
            continue
        keep.add(digest)
        if not store.content.has(digest):
            continue
        try:
            doc = store.document(digest)
        except (ManifestError, NotFound, ValueError):
            continue
        if isinstance(doc, Index):
            pending.extend(d.digest for d in doc.manifests)
            continue
        keep.add(doc.config.digest)
        keep.update(d.digest for d in doc.layers)
        try:
            ids = diff_ids(store.config_document(doc.config.digest))
        except (ManifestError, NotFound, ValueError):
            continue
        keep_chains.update(c.split(":", 1)[1] for c in chain_ids(ids))

    blobs_removed = 0
    bytes_freed = 0
    for digest, size in list(store.content.iter()):
        if digest not in keep and store.content.delete(digest):
            blobs_removed += 1
            bytes_freed += size

    chains_removed = 0
    for entry in list(store.chains_dir.iterdir()):
        name = entry.name
        if name.endswith(".lock"):
            if name[: -len(".lock")] not in keep_chains:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            continue
        if name in keep_chains:
            continue
        dest = store.trash_dir / f"chain-{name[:24]}-{uuid.uuid4().hex[:6]}"
        os.rename(entry, dest)
        trash.append(dest)
        if not name.startswith("."):
            chains_removed += 1

    # Under the exclusive lock no ingest or unpack runs: their leftovers are stale.
    store.content.clean_ingest(older_than=0.0)
    for entry in store.content.ingest_dir.iterdir():
        if entry.name.endswith(".lock"):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    for entry in store.root.iterdir():
        if entry.name.startswith(".probe-"):
            trash.append(entry)
    trash.extend(p for p in store.trash_dir.iterdir() if p not in trash)
    return (
        {
            "blobs_removed": blobs_removed,
            "chains_removed": chains_removed,
            "snapshots_removed": snapshots_removed,
            "bytes_freed": bytes_freed,
        },
        trash,
    )


async def _collect(store: ImageStore, active: set[str] | None) -> dict[str, Any]:
    from .snapshot import safe_rmtree

    start = time.perf_counter()
    lock = FileLock(store.gc_lock_path, shared=False)
    await lock.acquire()

    def locked() -> tuple[dict[str, Any], list[Path]]:
        # released by the worker, not the loop: a sync tag() blocking the loop on the
        # shared lock must not wait for the loop itself
        try:
            return _mark_sweep(store, active)
        finally:
            lock.release()

    result, trash = await asyncio.to_thread(locked)  # the thread always runs to its finally

    def empty_trash() -> int:
        freed = 0
        for path in trash:
            freed += _du(path)
            try:
                safe_rmtree(path)
            except OSError:
                continue
        return freed

    result["bytes_freed"] += await asyncio.to_thread(empty_trash)
    result["seconds"] = round(time.perf_counter() - start, 6)
    return result


def _disk_usage(store: ImageStore) -> dict[str, Any]:
    blobs = list(store.content.iter())
    blob_bytes = sum(size for _, size in blobs)
    chains = [p for p in store.chains_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    chain_bytes = sum(_du(p) for p in chains)
    snaps = store.list_snapshots()
    snap_bytes = 0
    for snap in snaps:
        sdir = snap.rootfs.parent
        snap_bytes += _du(sdir / "upper") if snap.kind == "overlay" else _du(sdir / "rootfs")
    refs = store.refs()
    return {
        "images": len(refs),
        "blobs": {"count": len(blobs), "bytes": blob_bytes},
        "chains": {"count": len([c for c in chains if c.name != "empty"]), "bytes": chain_bytes},
        "snapshots": {"count": len(snaps), "bytes": snap_bytes},
        "total_bytes": blob_bytes + chain_bytes + snap_bytes,
    }
