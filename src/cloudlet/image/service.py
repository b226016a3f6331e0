"""What the node agent asks of images: make one present, then a rootfs from it.

:meth:`ImageService.ensure` is kubelet's image manager in small:

* the image name is parsed first; a bad one fails with ``InvalidImageName``
  and kubelet's message ``Failed to apply default image tag "X": couldn't
  parse image name "X": invalid reference format``;
* ``imagePullPolicy`` defaults from the name as Kubernetes' defaulting does:
  ``:latest`` or no tag -> ``Always``, anything else (a tag or a digest) ->
  ``IfNotPresent`` (:func:`default_pull_policy`);
* ``Never`` uses the local image or fails with ``ErrImageNeverPull``
  (``Container image "x" is not present with pull policy of Never``);
* ``IfNotPresent`` pulls only when the name does not resolve locally;
* ``Always`` pulls every time (a pull of unchanged content downloads only
  the manifest: blobs already stored are skipped);
* a failed pull raises ``ErrImagePull`` (``Failed to pull image "x": ...``)
  and starts a back-off for that image and those credentials: 10 s, doubling
  per failure, at most 300 s (kubelet's ``flowcontrol.Backoff`` with its
  image-pull settings; an entry idle for twice the maximum starts over).
  While it is backing off, ``ensure`` does not contact the registry and
  raises ``ImagePullBackOff`` (``Back-off pulling image "x"``). A successful
  pull clears the back-off. kubelet keys its back-off by pod and image; here
  the key is the image and the credential identity of the pull (see
  :meth:`ImageService.backoff_key`), so a pod without the secret failing
  never holds back a pod that has it;
* the registry refusing the credentials (or their absence) — ``401`` /
  ``403`` — reads as containerd puts it: ``Failed to pull image "x": pull
  access denied, repository does not exist or may require authorization:
  ...``. Each pull authenticates with only its own ``pull_secrets`` plus the
  node's credentials, so with ``Always`` a pod without a valid secret fails
  even when another pod pulled the image before (with ``IfNotPresent`` the
  local copy is used, as in Kubernetes).

The built-in image rule: ``busybox`` (``docker.io/library/busybox:latest``)
is built locally by the image store from Debian's static busybox so that
pods work on a machine without internet. Its default policy is ``Always``
(it is ``:latest``), and Docker Hub is normally unreachable here, so when a
pull of a built-in image fails because the registry cannot be reached
(:class:`~cloudlet.image.registry.Unreachable`: no DNS, refused, timeout) and
the image is present locally, the local copy is used, without back-off. Any
other failure (the registry answered "not found", "unauthorized"...) is
reported as usual, and for any other image unreachable means ``ErrImagePull``.
After one such failure the registry host is remembered as unreachable for
60 s, so pods using the built-in image do not each wait for it.

Pull credentials are the pod's ``imagePullSecrets`` (the Secret objects
themselves, as dicts), then ``registries.yaml``, then the docker config
(see :mod:`cloudlet.image.auth`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudlet.image import reference as refs
from cloudlet.image.auth import AuthError, Keychain, from_pull_secrets
from cloudlet.image.busybox import BUILTIN_REFS
from cloudlet.image.config import RegistryConfig, RegistryConfigError
from cloudlet.image.pull import Progress, Puller
from cloudlet.image.registry import RegistryClient, RegistryError, Unauthorized, Unreachable

log = logging.getLogger(__name__)

ALWAYS = "Always"
IF_NOT_PRESENT = "IfNotPresent"
NEVER = "Never"
PULL_POLICIES = (ALWAYS, IF_NOT_PRESENT, NEVER)

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE_NAME = "InvalidImageName"

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
UNREACHABLE_MEMORY = 60.0

# images the store builds locally (see cloudlet.image.busybox); kept offline-capable
BUILTIN_IMAGES = frozenset(refs.normalize(r) for r in BUILTIN_REFS)


class ImagePullError(Exception):
    """An image could not be made present; ``reason`` is the container's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class PulledImage:
    ref: str  # canonical name, docker.io/library/busybox:latest
    digest: str  # top-level manifest/index digest the name resolves to
    image_id: str  # config digest, "sha256:..."
    config: Any  # cloudlet.image.store.ImageConfig


def default_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or no tag (and no digest), else ``IfNotPresent``.

    Mirrors Kubernetes' defaulting of ``imagePullPolicy``. An unparsable name
    gets ``IfNotPresent`` (it fails later as ``InvalidImageName``).
    """
    try:
        r = refs.parse(image)
    except refs.InvalidReference:
        return IF_NOT_PRESENT
    if r.digest is not None:
        return IF_NOT_PRESENT
    if r.tag is None or r.tag == refs.DEFAULT_TAG:
        return ALWAYS
    return IF_NOT_PRESENT


class _Backoff:
    """kubelet's flowcontrol.Backoff: per key, initial delay doubling up to a maximum."""

    def __init__(self, initial: float, maximum: float, clock: Callable[[], float]) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (last update, delay)

    def next(self, key: str) -> float:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] > 2 * self.maximum:
            delay = self.initial
        else:
            delay = min(entry[1] * 2, self.maximum)
        self._entries[key] = (now, delay)
        return delay

    def in_backoff(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and self.clock() - entry[0] < entry[1]

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def delay(self, key: str) -> float | None:
        entry = self._entries.get(key)
        return entry[1] if entry else None


class ImageService:
    """Image side of the node agent: ``ensure`` an image, make and drop rootfs snapshots."""

    def __init__(
        self,
        store: Any,
        client: RegistryClient | None = None,
        *,
        registry_config: RegistryConfig | Path | None = None,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        if client is None:
            cfg = registry_config
            if isinstance(cfg, Path) or cfg is None:
                path = cfg if cfg is not None else _default_config_path(store)
                try:
                    cfg = RegistryConfig.load(path)
                except RegistryConfigError as e:
                    # the node keeps working (built-in image, loopback registries); say why mirrors don't
                    log.error("ignoring registry config: %s", e)
                    cfg = RegistryConfig(path=path)
            client = RegistryClient(cfg)
        self.client = client
        self.puller = Puller(store, client)
        self.clock = clock
        self.backoff = _Backoff(backoff_initial, backoff_max, clock)
        self._unreachable: dict[str, float] = {}  # registry domain -> until

    async def close(self) -> None:
        await self.client.close()

    def default_pull_policy(self, image: str) -> str:
        return default_pull_policy(image)

    def backoff_key(self, image: str, pull_secrets: list[dict[str, Any]] | None = None) -> str:
        """The back-off entry for pulls of ``image`` with ``pull_secrets``: name + credential identity."""
        try:
            r = refs.parse(image)
        except refs.InvalidReference:
            return image
        try:
            keychain = self._keychain(pull_secrets)
        except AuthError:
            return f"{r.name} invalid-pull-secrets"
        return self._backoff_key(r, keychain)

    def in_backoff(self, image: str, pull_secrets: list[dict[str, Any]] | None = None) -> bool:
        """Whether a pull of ``image`` with ``pull_secrets`` would be held back now."""
        return self.backoff.in_backoff(self.backoff_key(image, pull_secrets))

    def _keychain(self, pull_secrets: list[dict[str, Any]] | None) -> Keychain:
        return self.client.keychain.with_first(from_pull_secrets(pull_secrets))

    def _backoff_key(self, r: refs.Reference, keychain: Keychain) -> str:
        return f"{r.name} {self.client.credential_identity(r.domain, keychain)}"

    async def ensure(
        self,
        image: str,
        pull_policy: str | None = None,
        pull_secrets: list[dict[str, Any]] | None = None,
        progress: Progress | None = None,
    ) -> PulledImage:
        """Make ``image`` present per ``pull_policy``; raises :class:`ImagePullError`.

        ``pull_policy`` None means the default for the name. ``pull_secrets``
        are the Secret objects (dicts as the API returns them, with ``type``
        and base64 ``data``) that the pod's ``imagePullSecrets`` name; the
        caller resolves the names. Concurrent calls for one image share one
        pull.
        """
        try:
            r = refs.parse(image)
        except refs.InvalidReference as e:
            raise ImagePullError(
                INVALID_IMAGE_NAME,
                f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": {e}',
            ) from e
        policy = pull_policy or default_pull_policy(image)
        if policy not in PULL_POLICIES:
            raise ImagePullError(ERR_IMAGE_PULL, f'unsupported imagePullPolicy "{policy}" for image "{image}"')
        name = r.name
        local = await self._local(name)
        if policy == NEVER:
            if local is None:
                raise ImagePullError(
                    ERR_IMAGE_NEVER_PULL,
                    f'Container image "{image}" is not present with pull policy of Never')
            return local
        if policy == IF_NOT_PRESENT and local is not None:
            return local
        builtin = name in BUILTIN_IMAGES
        if builtin and local is not None and self._unreachable.get(r.domain, 0.0) > self.clock():
            return local
        try:
            keychain = self._keychain(pull_secrets)
        except AuthError as e:
            key = f"{name} invalid-pull-secrets"
            if self.backoff.in_backoff(key):
                raise ImagePullError(IMAGE_PULL_BACKOFF, f'Back-off pulling image "{image}"') from e
            self.backoff.next(key)
            raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": {e}') from e
        key = self._backoff_key(r, keychain)
        if self.backoff.in_backoff(key):
            raise ImagePullError(IMAGE_PULL_BACKOFF, f'Back-off pulling image "{image}"')
        try:
            await self.puller.pull(r, keychain, progress)
        except RegistryError as e:
            if isinstance(e, Unreachable):
                self._unreachable[r.domain] = self.clock() + UNREACHABLE_MEMORY
                if builtin and local is not None:
                    log.info("registry for %s unreachable (%s); using the built-in local image", name, e)
                    return local
            delay = self.backoff.next(key)
            log.info("pull of %s failed (back-off %.0fs): %s", name, delay, e)
            if isinstance(e, Unauthorized):
                raise ImagePullError(
                    ERR_IMAGE_PULL,
                    f'Failed to pull image "{image}": pull access denied, repository does not exist or '
                    f"may require authorization: {e}") from e
            raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": {e}') from e
        self.backoff.reset(key)
        self._unreachable.pop(r.domain, None)
        pulled = await self._local(name)
        if pulled is None:  # a concurrent `cloudlet image rm` between pull and read
            raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": removed while pulling')
        return pulled

    async def _local(self, name: str) -> PulledImage | None:
        def read() -> PulledImage | None:
            digest = self.store.resolve(name)
            if digest is None:
                return None
            try:
                return PulledImage(name, digest, self.store.image_id(name), self.store.config(name))
            except Exception as e:
                # the tag names content that is gone or broken: treat as absent, a pull heals it
                log.warning("local image %s is unusable: %s", name, e)
                return None

        return await asyncio.to_thread(read)

    async def snapshot(self, key: str, pulled: PulledImage) -> Path:
        """A writable rootfs for a container (``key`` names it, e.g. the container id)."""
        return await self.store.create_snapshot(key, pulled.digest)

    async def remove_snapshot(self, key: str) -> None:
        await self.store.remove_snapshot(key)


def _default_config_path(store: Any) -> Path | None:
    """``<data-dir>/registries.yaml``: the store's root is ``<data-dir>/images``."""
    root = getattr(store, "root", None)
    return Path(root).parent / "registries.yaml" if root is not None else None
