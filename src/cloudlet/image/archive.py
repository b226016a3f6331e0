"""Image archives: ``docker save`` tarballs and OCI image-layout archives, both directions.

Import recognises the format by its members: ``index.json`` (+ ``oci-layout``)
is an OCI image layout, ``manifest.json`` (+ ``repositories``) a ``docker
save`` tarball (a Docker 25+ archive carries both and is read as OCI, taking
names from either). Every blob is ingested through the content store, so
digests are verified. Names come from ``io.containerd.image.name`` or a full
reference in ``org.opencontainers.image.ref.name``; a bare tag there is
combined with the ``name`` argument; ``docker save`` archives name images by
``RepoTags``. A docker-save image becomes an OCI manifest over its
uncompressed layers, so its image ID (config digest) is unchanged.

Export writes either format for one or more references; ``docker`` format
layers are written uncompressed (``<diff-id>/layer.tar``) as ``docker save``
does, OCI layouts carry the stored blobs unchanged (the index when all its
platform manifests are present, else the platform manifest). Archives are
written to a temp file and renamed into place, with fixed mtimes.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from . import reference as _reference
from .content import split_digest
from .manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER_ZSTD,
    MEDIA_TYPE_OCI_MANIFEST,
    Index,
    Manifest,
    canonical_json,
    diff_ids,
    layer_compression,
    parse_config,
)
from .store import ImageNotFound

if TYPE_CHECKING:
    from .store import ImageStore

__all__ = ["ArchiveError", "import_archive", "export_archive"]

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive is not a docker-save tarball or OCI layout, or is inconsistent."""


# -- import ----------------------------------------------------------------------------------


def _clean(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


class _Reader:
    """Random access to the members of a (possibly compressed) tar file, by cleaned name."""

    def __init__(self, path: Path) -> None:
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115
        except (tarfile.TarError, OSError) as exc:
            raise ArchiveError(f"cannot read archive {path}: {exc}") from exc
        self.members = {_clean(m.name): m for m in self.tar.getmembers() if m.isreg()}

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(_clean(name))
        if member is None:
            raise ArchiveError(f"archive has no file {name!r}")
        f = self.tar.extractfile(member)
        assert f is not None
        return f

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        member = self.members.get(_clean(name))
        if member is None:
            raise ArchiveError(f"archive has no file {name!r}")
        if member.size > limit:
            raise ArchiveError(f"{name} is too large ({member.size} bytes)")
        return self.open(name).read()

    def size(self, name: str) -> int:
        return self.members[_clean(name)].size

    def close(self) -> None:
        self.tar.close()


async def _chunks(f: IO[bytes]) -> AsyncIterator[bytes]:
    while True:
        chunk = await asyncio.to_thread(f.read, _CHUNK)
        if not chunk:
            return
        yield chunk


async def _ingest_member(store: ImageStore, reader: _Reader, name: str, digest: str | None) -> str:
    f = await asyncio.to_thread(reader.open, name)
    return await store.content.ingest(_chunks(f), digest, reader.size(name))


def _names_from_annotations(annotations: dict[str, str], default_name: str | None) -> list[str]:
    names: list[str] = []
    full = annotations.get(ANNOTATION_CONTAINERD_NAME)
    ref_name = annotations.get(ANNOTATION_REF_NAME)
    for candidate in (full, ref_name):
        if not candidate:
            continue
        if "/" in candidate or ":" in candidate or "@" in candidate:
            try:
                names.append(_reference.parse(candidate).name)
            except _reference.InvalidReference:
                continue
        elif candidate is ref_name and default_name is not None:
            names.append(_reference.parse(default_name).with_tag(candidate).name)
    return list(dict.fromkeys(names))


async def import_archive(store: ImageStore, path: Path, name: str | None = None) -> list[tuple[str, str]]:
    """See :meth:`ImageStore.import_archive`; an image without any name is returned with ``""``."""
    if name is not None:
        _reference.parse(name)
    reader = await asyncio.to_thread(_Reader, path)
    try:
        async with store.lease():
            if reader.has("index.json"):
                return await _import_oci(store, reader, name)
            if reader.has("manifest.json"):
                return await _import_docker(store, reader, name)
            raise ArchiveError("not an image archive: neither index.json nor manifest.json found")
    finally:
        await asyncio.to_thread(reader.close)


async def _import_oci(store: ImageStore, reader: _Reader, name: str | None) -> list[tuple[str, str]]:
    index = orjson.loads(reader.read("index.json"))
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ArchiveError("index.json is not an OCI image index")
    for member in sorted(reader.members):
        parts = member.split("/")
        if len(parts) == 3 and parts[0] == "blobs":
            digest = f"{parts[1]}:{parts[2]}"
            try:
                split_digest(digest)
            except ValueError:
                continue
            await _ingest_member(store, reader, member, digest)
    docker_tags: dict[str, list[str]] = {}
    if reader.has("manifest.json"):
        for entry in orjson.loads(reader.read("manifest.json")) or []:
            config_path = _clean(str(entry.get("Config", "")))
            parts = config_path.split("/")
            if len(parts) == 3 and parts[0] == "blobs":
                docker_tags[f"{parts[1]}:{parts[2]}"] = list(entry.get("RepoTags") or [])
    out: list[tuple[str, str]] = []
    for raw in index["manifests"]:
        digest = str(raw.get("digest", ""))
        if not store.content.has(digest):
            raise ArchiveError(f"index.json refers to {digest}, which the archive does not contain")
        names = _names_from_annotations(dict(raw.get("annotations") or {}), name)
        try:
            _, manifest = store.manifest(digest)
            for tag in docker_tags.get(manifest.config.digest, []):
                names.append(_reference.parse(tag).name)
        except LookupError:
            pass
        if not names and name is not None:
            names.append(_reference.parse(name).name)
        names = list(dict.fromkeys(names))
        for n in names:
            await asyncio.to_thread(store.tag, n, digest)
            out.append((n, digest))
        if not names:
            out.append(("", digest))
    return out


async def _import_docker(store: ImageStore, reader: _Reader, name: str | None) -> list[tuple[str, str]]:
    entries = orjson.loads(reader.read("manifest.json"))
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json is not a list")
    out: list[tuple[str, str]] = []
    for entry in entries:
        config_bytes = reader.read(str(entry["Config"]))
        config_doc = parse_config(config_bytes)
        config_digest = await store.content.write_bytes(config_bytes)
        ids = diff_ids(config_doc)
        layer_paths = [str(p) for p in entry.get("Layers") or []]
        if len(layer_paths) != len(ids):
            raise ArchiveError(f"{entry['Config']}: {len(ids)} diff_ids but {len(layer_paths)} layers")
        layers: list[dict[str, Any]] = []
        for layer_path, diff_id in zip(layer_paths, ids, strict=True):
            head = await asyncio.to_thread(lambda p=layer_path: reader.open(p).read(4))
            if head[:2] == b"\x1f\x8b":
                media_type = MEDIA_TYPE_OCI_LAYER_GZIP
            elif head == b"\x28\xb5\x2f\xfd":
                media_type = MEDIA_TYPE_OCI_LAYER_ZSTD
            else:
                media_type = MEDIA_TYPE_OCI_LAYER
            expected = diff_id if media_type == MEDIA_TYPE_OCI_LAYER else None
            digest = await _ingest_member(store, reader, layer_path, expected)
            layers.append({"mediaType": media_type, "digest": digest, "size": reader.size(layer_path)})
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                "config": {"mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": layers,
            }
        )
        digest = await store.content.write_bytes(manifest)
        names = [_reference.parse(t).name for t in entry.get("RepoTags") or []]
        if not names and name is not None:
            names = [_reference.parse(name).name]
        for n in names:
            await asyncio.to_thread(store.tag, n, digest)
            out.append((n, digest))
        if not names:
            out.append(("", digest))
    return out


# -- export ----------------------------------------------------------------------------------


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, seen: set[str]) -> None:
    if name in seen:
        return
    seen.add(name)
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mode = 0o644
    info.mtime = 0
    with open(path, "rb") as f:
        tar.addfile(info, f)


def _export_oci(store: ImageStore, refs: list[str], tar: tarfile.TarFile) -> None:
    _add_bytes(tar, "oci-layout", orjson.dumps({"imageLayoutVersion": "1.0.0"}))
    blobs: list[str] = []
    manifests: list[dict[str, Any]] = []
    for ref in refs:
        top = store.resolve(ref)
        if top is None:
            raise ImageNotFound(ref)
        doc = store.document(top)
        entry_digest = top
        if isinstance(doc, Index):
            children = [d.digest for d in doc.manifests]
            if all(store.content.has(c) for c in children):
                blobs.append(top)
                for child in children:
                    blobs.extend(_manifest_blobs(store, child))
            else:
                entry_digest = store.manifest_for_platform(top)
                blobs.extend(_manifest_blobs(store, entry_digest))
        else:
            blobs.extend(_manifest_blobs(store, top))
        entry_doc = store.document(entry_digest)
        desc: dict[str, Any] = {
            "mediaType": entry_doc.media_type,
            "digest": entry_digest,
            "size": store.content.size(entry_digest),
        }
        annotations: dict[str, str] = {}
        parsed = _reference.parse(ref) if not _reference.is_digest(ref) else None
        if parsed is not None:
            annotations[ANNOTATION_CONTAINERD_NAME] = parsed.name
            if parsed.digest is None:
                annotations[ANNOTATION_REF_NAME] = parsed.tag or _reference.DEFAULT_TAG
        if annotations:
            desc["annotations"] = annotations
        manifests.append(desc)
    seen: set[str] = set()
    _add_dir(tar, "blobs", seen)
    _add_dir(tar, "blobs/sha256", seen)
    for digest in dict.fromkeys(blobs):
        algorithm, hex_part = split_digest(digest)
        _add_dir(tar, f"blobs/{algorithm}", seen)
        store.content.verify(digest)
        _add_file(tar, f"blobs/{algorithm}/{hex_part}", store.content.path(digest))
    index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": manifests}
    _add_bytes(tar, "index.json", canonical_json(index))


def _manifest_blobs(store: ImageStore, digest: str) -> list[str]:
    doc = store.document(digest)
    if not isinstance(doc, Manifest):
        raise ArchiveError(f"{digest} is not an image manifest")
    missing = [d.digest for d in [doc.config, *doc.layers] if not store.content.has(d.digest)]
    if missing:
        raise ArchiveError(f"image {digest} is incomplete: missing {', '.join(missing)}")
    return [digest, doc.config.digest, *(d.digest for d in doc.layers)]


def _export_docker(store: ImageStore, refs: list[str], tar: tarfile.TarFile, tmpdir: Path) -> None:
    entries: dict[str, dict[str, Any]] = {}
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    seen_dirs: set[str] = set()
    for ref in refs:
        top = store.resolve(ref)
        if top is None:
            raise ImageNotFound(ref)
        _, manifest = store.manifest(top)
        _manifest_blobs(store, store.manifest_for_platform(top))
        config_hex = split_digest(manifest.config.digest)[1]
        config_doc = store.config_document(manifest.config.digest)
        ids = diff_ids(config_doc)
        entry = entries.get(config_hex)
        if entry is None:
            layer_paths = []
            for desc, diff_id in zip(manifest.layers, ids, strict=True):
                diff_hex = split_digest(diff_id)[1]
                layer_name = f"{diff_hex}/layer.tar"
                layer_paths.append(layer_name)
                if layer_name in written:
                    continue
                written.add(layer_name)
                _add_dir(tar, diff_hex, seen_dirs)
                _add_bytes(tar, f"{diff_hex}/VERSION", b"1.0")
                _add_layer(store, tar, layer_name, desc.digest, desc.media_type, diff_id, tmpdir)
            config_name = f"{config_hex}.json"
            _add_bytes(tar, config_name, store.content.get_bytes(manifest.config.digest))
            entry = entries[config_hex] = {"Config": config_name, "RepoTags": [], "Layers": layer_paths}
        parsed = _reference.parse(ref) if not _reference.is_digest(ref) else None
        if parsed is not None and parsed.digest is None:
            tag = parsed.tag or _reference.DEFAULT_TAG
            entry["RepoTags"].append(f"{parsed.familiar_repository}:{tag}")
            if entry["Layers"]:
                # the top layer's directory, as ``docker save`` writes it
                repositories.setdefault(parsed.familiar_repository, {})[tag] = layer_paths_dir(entry)
    _add_bytes(tar, "manifest.json", orjson.dumps(list(entries.values())))
    _add_bytes(tar, "repositories", orjson.dumps(repositories))


def layer_paths_dir(entry: dict[str, Any]) -> str:
    return str(entry["Layers"][-1]).split("/", 1)[0]


def _add_layer(
    store: ImageStore, tar: tarfile.TarFile, name: str, digest: str, media_type: str, diff_id: str, tmpdir: Path
) -> None:
    compression = layer_compression(media_type)
    path = store.content.path(digest)
    if compression == "auto":
        with open(path, "rb") as f:
            head = f.read(4)
        compression = "gzip" if head[:2] == b"\x1f\x8b" else "zstd" if head == b"\x28\xb5\x2f\xfd" else "none"
    if compression == "none":
        store.content.verify(digest)
        _add_file(tar, name, path)
        return
    if compression == "zstd":
        from .unpack import _zstd

        if _zstd is None:
            raise ArchiveError("exporting zstd layers needs the 'zstandard' module")
    tmp = tmpdir / f"{uuid.uuid4().hex}.tar"
    h_in = hashlib.sha256()
    h_out = hashlib.sha256()
    with open(path, "rb") as raw, open(tmp, "wb") as out:
        class _Tee:
            def read(self, n: int = -1) -> bytes:
                data = raw.read(n)
                h_in.update(data)
                return data

        if compression == "gzip":
            src: Any = gzip.GzipFile(fileobj=_Tee(), mode="rb")  # type: ignore[arg-type]
        else:
            from .unpack import _zstd

            src = _zstd.ZstdDecompressor().stream_reader(_Tee(), read_across_frames=True)
        while chunk := src.read(_CHUNK):
            h_out.update(chunk)
            out.write(chunk)
        while raw.read(_CHUNK):
            pass
    if "sha256:" + h_in.hexdigest() != digest:
        tmp.unlink()
        raise ArchiveError(f"stored layer {digest} is corrupt")
    if "sha256:" + h_out.hexdigest() != diff_id:
        tmp.unlink()
        raise ArchiveError(f"layer {digest} does not match its diff_id {diff_id}")
    _add_file(tar, name, tmp)
    tmp.unlink()


def _export(store: ImageStore, refs: list[str], path: Path, format: str) -> None:
    if format not in ("docker", "oci"):
        raise ValueError(f"unknown archive format {format!r} (want 'docker' or 'oci')")
    if not refs:
        raise ValueError("no images to export")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    workdir = Path(tempfile.mkdtemp(prefix="export-", dir=store.content.ingest_dir))
    try:
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if format == "oci":
                _export_oci(store, refs, tar)
            else:
                _export_docker(store, refs, tar, workdir)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def export_archive(store: ImageStore, refs: list[str], path: Path, format: str = "docker") -> None:
    """See :meth:`ImageStore.export_archive`."""
    async with store.lease():
        await asyncio.to_thread(_export, store, list(refs), path, format)
