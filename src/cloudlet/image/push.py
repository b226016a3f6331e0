"""Pushing a local image from the :class:`ImageStore` to a registry.

Order, as the distribution spec wants it (a manifest may only name content
the registry already has):

1. every blob (config, layers) of every image manifest: ``HEAD`` to skip
   what the registry has; otherwise a cross-repository mount when
   ``mount_from`` names a repository on the same registry; otherwise an
   upload — monolithic (``POST`` + ``PUT`` with the body) or, with
   ``chunk_size``, chunked (``PATCH`` per chunk + closing ``PUT``);
   a failed upload is retried from the start;
2. each image manifest, by digest when it belongs to an index;
3. the top-level manifest (or index) by the destination tag.

A local index whose platform manifests are not all present (a pull keeps
only linux/amd64) is pushed as that single platform manifest under the tag,
as ``docker push`` of a single-platform pull does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudlet.image import reference as refs
from cloudlet.image.auth import Keychain
from cloudlet.image.pull import DEFAULT_PLATFORM, NoProgress, Progress, select_platform
from cloudlet.image.registry import (
    INDEX_TYPES,
    NotFound,
    RegistryClient,
    RegistryError,
    Repository,
    Unauthorized,
    media_type_of,
)

READ_CHUNK = 1 << 20


@dataclass
class PushResult:
    ref: str
    digest: str  # digest of what the tag now points at on the registry
    uploaded: int = 0  # bytes sent
    skipped: list[str] = field(default_factory=list)  # blobs the registry already had
    mounted: list[str] = field(default_factory=list)


class LocalImageNotFound(RegistryError):
    pass


def _file_chunks(path: Path, progress: Progress, digest: str) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(path.open, "rb")
        try:
            while True:
                b = await asyncio.to_thread(f.read, READ_CHUNK)
                if not b:
                    return
                progress.blob_advanced(digest, len(b))
                yield b
        finally:
            await asyncio.to_thread(f.close)

    return gen()


async def push(
    store: Any,
    client: RegistryClient,
    source: str,
    dest: str | None = None,
    *,
    keychain: Keychain | None = None,
    progress: Progress | None = None,
    chunk_size: int | None = None,
    mount_from: str | None = None,
    concurrency: int = 3,
) -> PushResult:
    """Push the local image ``source`` as ``dest`` (default: the same name)."""
    progress = progress or NoProgress()
    src = refs.parse(source)
    digest = await asyncio.to_thread(store.resolve, src.name)
    if digest is None and src.digest and store.content.has(src.digest):
        digest = src.digest
    if digest is None:
        raise LocalImageNotFound(f"image {src.familiar} not found locally")
    dst = refs.parse(dest) if dest else src
    repo = client.repository(dst.domain, dst.path, keychain)
    content = store.content
    top = await asyncio.to_thread(content.get_bytes, digest)
    top_type = media_type_of(top)
    result = PushResult(dst.name, digest)
    sem = asyncio.Semaphore(concurrency)

    async def push_manifest_blobs(data: bytes) -> None:
        doc = json.loads(data)
        descs = [doc.get("config") or {}] + list(doc.get("layers") or [])

        async def one(d: dict[str, Any]) -> None:
            async with sem:
                await _push_blob(repo, content, d, progress, chunk_size, mount_from, result)

        await asyncio.gather(*(one(d) for d in descs if d.get("digest")))

    tag = dst.tag or (None if dst.digest else refs.DEFAULT_TAG)
    if top_type in INDEX_TYPES:
        index = json.loads(top)
        children = index.get("manifests") or []
        if all(content.has(c["digest"]) for c in children):
            for c in children:
                data = await asyncio.to_thread(content.get_bytes, c["digest"])
                await push_manifest_blobs(data)
                await repo.put_manifest(c["digest"], data, c.get("mediaType") or media_type_of(data))
            result.digest = await repo.put_manifest(tag or digest, top, top_type)
            return result
        desc = select_platform(index, DEFAULT_PLATFORM)
        digest = desc["digest"]
        top = await asyncio.to_thread(content.get_bytes, digest)
        top_type = media_type_of(top)
    await push_manifest_blobs(top)
    result.digest = await repo.put_manifest(tag or digest, top, top_type)
    return result


async def _push_blob(repo: Repository, content: Any, desc: dict[str, Any], progress: Progress,
                     chunk_size: int | None, mount_from: str | None, result: PushResult) -> None:
    digest = desc["digest"]
    if not content.has(digest):
        raise LocalImageNotFound(f"blob {digest} is missing from the local store")
    size = int(desc.get("size") or content.size(digest))
    progress.blob_started(digest, size, "blob")
    if await repo.blob_exists(digest):
        result.skipped.append(digest)
        progress.blob_finished(digest, True)
        return
    if mount_from and await repo.mount_blob(digest, mount_from):
        result.mounted.append(digest)
        progress.blob_finished(digest, True)
        return
    path = Path(content.path(digest))
    attempt = 0
    while True:
        try:
            await repo.upload_blob(digest, size, lambda: _file_chunks(path, progress, digest), chunk_size)
            break
        except (Unauthorized, NotFound):
            raise
        except RegistryError:
            if attempt >= repo.client.retries:
                raise
            await repo.client._sleep(attempt)
            attempt += 1
    result.uploaded += size
    progress.blob_finished(digest, False)
