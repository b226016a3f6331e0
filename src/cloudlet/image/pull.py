"""Pulling an image from a registry into the local :class:`ImageStore`.

Order of work for ``pull("busybox:1.36")``:

1. fetch the manifest by tag or digest, accepting OCI and Docker media types
   (index / manifest list first); store its exact bytes in the content store;
2. for an index, pick the ``linux/amd64`` manifest, fetch it by digest, store it;
3. fetch the config and every layer not already present, concurrently (at
   most ``concurrency`` at a time), each streamed into the content store's
   verified ``ingest`` (temp file, sha256 + size check, rename), so an
   interrupted or corrupted download never leaves a blob under its digest;
4. tag the name with the top-level digest.

Blobs are written before the manifest that names them is tagged, so a
reader never sees a tag whose blobs are missing. Concurrent pulls of the same
name with the same credentials in one process share one task, and concurrent
downloads of the same blob (two images sharing a base layer) with the same
credentials share one download; a waiter that is cancelled leaves the shared
work running for the others, and the work is cancelled only when nobody waits
for it any more.

"The same credentials" is :meth:`RegistryClient.credential_identity` of the
pull's keychain: a pull without a pod's pull secret never joins (and so never
succeeds through) a pull made with it, nor the other way round; each
authenticates on its own. Blobs already in the store are used by any pull
that resolved a manifest naming them (content is addressed by digest, as in
containerd).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from cloudlet.image import reference as refs
from cloudlet.image.auth import Keychain
from cloudlet.image.content import ContentError
from cloudlet.image.registry import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Manifest,
    RegistryClient,
    RegistryError,
    Repository,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_PLATFORM = ("linux", "amd64")


class Progress(Protocol):
    """What a pull reports (the CLI draws one bar per blob)."""

    def blob_started(self, digest: str, size: int | None, kind: str) -> None: ...
    def blob_advanced(self, digest: str, nbytes: int) -> None: ...
    def blob_finished(self, digest: str, cached: bool) -> None: ...


class NoProgress:
    def blob_started(self, digest: str, size: int | None, kind: str) -> None:
        pass

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        pass

    def blob_finished(self, digest: str, cached: bool) -> None:
        pass


class _Fanout:
    """One progress stream delivered to every caller waiting on a shared pull."""

    def __init__(self) -> None:
        self.sinks: list[Progress] = []

    def blob_started(self, digest: str, size: int | None, kind: str) -> None:
        for s in self.sinks:
            s.blob_started(digest, size, kind)

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        for s in self.sinks:
            s.blob_advanced(digest, nbytes)

    def blob_finished(self, digest: str, cached: bool) -> None:
        for s in self.sinks:
            s.blob_finished(digest, cached)


class SharedTasks:
    """Run one task per key; every caller for that key awaits the same result.

    Cancelling one waiter does not cancel the task; when the last waiter
    goes away before it finishes, the task is cancelled and awaited, so the
    cancelled caller resumes only after the work cleaned up after itself.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, list[Any]] = {}

    def running(self, key: Hashable) -> bool:
        return key in self._entries

    async def run(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
        entry = self._entries.get(key)
        if entry is None:
            task = asyncio.ensure_future(factory())
            entry = [task, 0]
            self._entries[key] = entry

            def _forget(_t: asyncio.Future[Any], k: Hashable = key, e: list[Any] = entry) -> None:
                if self._entries.get(k) is e:
                    del self._entries[k]

            task.add_done_callback(_forget)
        task = entry[0]
        entry[1] += 1
        try:
            return await asyncio.shield(task)
        finally:
            entry[1] -= 1
            if entry[1] == 0 and not task.done():
                if self._entries.get(key) is entry:
                    del self._entries[key]  # a newcomer starts afresh, not on a dying task
                task.cancel()
                # let it clean up (temp files, connections) before our caller goes on
                await asyncio.wait({task})


@dataclass
class PullResult:
    ref: str  # canonical name that was pulled (docker.io/library/busybox:latest)
    digest: str  # top-level digest (index or manifest) now tagged
    manifest_digest: str  # the linux/amd64 image manifest
    config_digest: str
    downloaded: int = 0  # bytes fetched from the registry by this pull
    blobs: list[str] = field(default_factory=list)


def select_platform(index: dict[str, Any], platform: tuple[str, str] = DEFAULT_PLATFORM) -> dict[str, Any]:
    """The descriptor in an index for ``platform`` (os, architecture)."""
    os_, arch = platform
    candidates = []
    for d in index.get("manifests") or []:
        p = d.get("platform") or {}
        if p.get("os") == os_ and p.get("architecture") == arch:
            candidates.append(d)
    if not candidates:
        have = sorted(
            {f"{(d.get('platform') or {}).get('os')}/{(d.get('platform') or {}).get('architecture')}"
             for d in index.get("manifests") or []}
        )
        raise RegistryError(f"no matching manifest for {os_}/{arch} in the manifest list entries (has {', '.join(have) or 'none'})")
    # prefer an entry without a variant, as amd64 normally has none
    candidates.sort(key=lambda d: bool((d.get("platform") or {}).get("variant")))
    return candidates[0]


class Puller:
    """Pulls images into one store; share one Puller per store in a process."""

    def __init__(self, store: Any, client: RegistryClient, concurrency: int = 4) -> None:
        self.store = store
        self.client = client
        self.concurrency = concurrency
        self._pulls = SharedTasks()
        self._blobs = SharedTasks()
        self._fanouts: dict[tuple[str, str], _Fanout] = {}  # (name, credential identity) -> fan-out

    async def pull(
        self,
        ref: str | refs.Reference,
        keychain: Keychain | None = None,
        progress: Progress | None = None,
        platform: tuple[str, str] = DEFAULT_PLATFORM,
    ) -> PullResult:
        """Pull ``ref`` (tag or digest) and tag it locally; raises RegistryError."""
        r = refs.parse(ref) if isinstance(ref, str) else ref
        key = (r.name, self.client.credential_identity(r.domain, keychain))
        fan = self._fanouts.get(key)
        if fan is None or not self._pulls.running(key):
            fan = self._fanouts[key] = _Fanout()
        sink = progress or NoProgress()
        fan.sinks.append(sink)
        try:
            return await self._pulls.run(key, lambda: self._pull(r, keychain, fan, platform))
        finally:
            fan.sinks.remove(sink)
            if not fan.sinks and self._fanouts.get(key) is fan:
                del self._fanouts[key]

    async def _pull(self, r: refs.Reference, keychain: Keychain | None, progress: Progress,
                    platform: tuple[str, str]) -> PullResult:
        repo = self.client.repository(r.domain, r.path, keychain)
        top = await repo.get_manifest(r.digest or r.tag or refs.DEFAULT_TAG)
        _check_manifest_type(top, r.name)
        downloaded = 0
        manifest = top
        if top.media_type in INDEX_TYPES:
            desc = select_platform(top.json(), platform)
            manifest = await repo.get_manifest(desc["digest"])
            _check_manifest_type(manifest, r.name)
            if manifest.media_type in INDEX_TYPES:
                raise RegistryError(f"{r.name}: the {platform[0]}/{platform[1]} entry is itself an index")
        doc = manifest.json()
        config = doc.get("config") or {}
        layers = doc.get("layers") or []
        if not config.get("digest"):
            raise RegistryError(f"{r.name}: manifest {manifest.digest} has no config")
        sem = asyncio.Semaphore(self.concurrency)
        descs = [dict(config, _kind="config")] + [dict(d, _kind="layer") for d in layers]

        async def one(d: dict[str, Any]) -> int:
            async with sem:
                return await self._blob(repo, d["digest"], d.get("size"), d["_kind"], progress)

        # the lease keeps the store's GC away from blobs that are not tagged yet
        async with self.store.lease():
            results = await asyncio.gather(*(one(d) for d in descs), return_exceptions=True)
            errors = [e for e in results if isinstance(e, BaseException)]
            if errors:
                for e in errors:
                    if isinstance(e, asyncio.CancelledError):
                        raise e
                raise errors[0]
            downloaded = sum(int(n) for n in results if isinstance(n, int))
            # manifests last: blobs first, then what names them, then the tag
            await self._put(manifest)
            if manifest is not top:
                await self._put(top)
            await asyncio.to_thread(self.store.tag, r.name, top.digest)
        log.info("pulled %s (%s), %d bytes downloaded", r.name, top.digest, downloaded)
        return PullResult(r.name, top.digest, manifest.digest, config["digest"], downloaded,
                          [d["digest"] for d in descs])

    async def _put(self, m: Manifest) -> None:
        content = self.store.content
        if not content.has(m.digest):
            await asyncio.to_thread(content.put_bytes, m.data, m.digest)

    async def _blob(self, repo: Repository, digest: str, size: int | None, kind: str, progress: Progress) -> int:
        content = self.store.content
        if content.has(digest):
            progress.blob_started(digest, size, kind)
            progress.blob_finished(digest, True)
            return 0
        key = (digest, self.client.credential_identity(repo.domain, repo.keychain))
        return await self._blobs.run(key, lambda: self._download(repo, digest, size, kind, progress))

    async def _download(self, repo: Repository, digest: str, size: int | None, kind: str,
                        progress: Progress) -> int:
        progress.blob_started(digest, size, kind)
        count = 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal count
            async for c in repo.blob_chunks(digest, size):
                count += len(c)
                progress.blob_advanced(digest, len(c))
                yield c

        try:
            got = await self.store.content.ingest(chunks(), digest, size)
        except RegistryError:
            raise
        except (ValueError, OSError, ContentError) as e:
            raise RegistryError(f"blob {repo.name}@{digest}: {e}") from e
        if got != digest:
            raise RegistryError(f"blob {repo.name}@{digest}: stored under {got}")
        progress.blob_finished(digest, False)
        return count


def _check_manifest_type(m: Manifest, name: str) -> None:
    if m.media_type not in MANIFEST_TYPES:
        raise RegistryError(
            f"{name}: unsupported manifest media type {m.media_type!r} "
            "(Docker schema 1 images are not supported; push it again with a current client)")


def manifest_descriptors(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(config descriptor, layer descriptors) of an image manifest's bytes."""
    doc = json.loads(data)
    return doc.get("config") or {}, list(doc.get("layers") or [])
