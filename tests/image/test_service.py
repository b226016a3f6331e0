"""ImageService.ensure: pull policies, kubelet's reasons and messages, back-off, pull secrets, offline busybox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloudlet.image.registry import RegistryClient
from cloudlet.image.service import (
    ERR_IMAGE_NEVER_PULL,
    ERR_IMAGE_PULL,
    IMAGE_PULL_BACKOFF,
    INVALID_IMAGE_NAME,
    ImagePullError,
    ImageService,
    default_pull_policy,
)
from cloudlet.image.store import ImageStore
from tests.image import registry_fixture as fx
from tests.image.registry_fixture import free_port, make_image

# fixtures from the shared registry module
_no_host_docker_config = fx._no_host_docker_config
basic_registry = fx.basic_registry
token_registry = fx.token_registry


class Clock:
    """Time for the back-off only (the pulls themselves are real)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_default_pull_policy() -> None:
    assert default_pull_policy("busybox") == "Always"
    assert default_pull_policy("busybox:latest") == "Always"
    assert default_pull_policy("localhost:5000/app") == "Always"
    assert default_pull_policy("busybox:1.36") == "IfNotPresent"
    assert default_pull_policy("busybox@sha256:" + "a" * 64) == "IfNotPresent"
    assert default_pull_policy("busybox:latest@sha256:" + "a" * 64) == "IfNotPresent"


async def test_invalid_name_and_never(tmp_path: Path) -> None:
    svc = ImageService(ImageStore(tmp_path / "images"))
    try:
        with pytest.raises(ImagePullError) as e:
            await svc.ensure("foo@@bar", "IfNotPresent", [])
        assert e.value.reason == INVALID_IMAGE_NAME
        assert e.value.message == ('Failed to apply default image tag "foo@@bar": couldn\'t parse image name '
                                   '"foo@@bar": invalid reference format')
        with pytest.raises(ImagePullError) as e:
            await svc.ensure("nginx:1.27", "Never", [])
        assert e.value.reason == ERR_IMAGE_NEVER_PULL
        assert e.value.message == 'Container image "nginx:1.27" is not present with pull policy of Never'
        digest = make_image(svc.store, "nginx:1.27", [1000], seed=1)
        got = await svc.ensure("nginx:1.27", "Never", [])
        assert got.digest == digest and got.ref == "docker.io/library/nginx:1.27"
        assert got.config.cmd == ["/bin/sh"]
        assert got.image_id == svc.store.image_id("nginx:1.27")
    finally:
        await svc.close()


async def test_pull_failure_backoff(tmp_path: Path) -> None:
    clock = Clock()
    store = ImageStore(tmp_path / "images")
    svc = ImageService(store, RegistryClient(docker_config=False, retries=0), clock=clock)
    image = f"127.0.0.1:{free_port()}/app:v1"  # nothing listens there
    try:
        # present locally + IfNotPresent: the registry is not contacted
        make_image(store, image, [1000], seed=2)
        assert (await svc.ensure(image, None, [])).ref == image
        with pytest.raises(ImagePullError) as e:
            await svc.ensure(image, "Always", [])
        assert e.value.reason == ERR_IMAGE_PULL
        assert e.value.message.startswith(f'Failed to pull image "{image}": ') and "unreachable" in e.value.message
        with pytest.raises(ImagePullError) as e:
            await svc.ensure(image, "Always", [])
        assert e.value.reason == IMAGE_PULL_BACKOFF
        assert e.value.message == f'Back-off pulling image "{image}"'
        key = svc.backoff_key(image)
        delays = [svc.backoff.delay(key)]
        for _ in range(7):
            clock.now += delays[-1] or 0
            with pytest.raises(ImagePullError) as e:
                await svc.ensure(image, "Always", [])
            assert e.value.reason == ERR_IMAGE_PULL
            delays.append(svc.backoff.delay(key))
        assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
        clock.now += 299
        with pytest.raises(ImagePullError) as e:
            await svc.ensure(image, "Always", [])
        assert e.value.reason == IMAGE_PULL_BACKOFF
    finally:
        await svc.close()


@pytest.mark.parametrize("kind", ["kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"])
async def test_image_pull_secrets(kind: str, basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = basic_registry
    src = ImageStore(tmp_path / "src")
    image = f"{reg.host}/cloudlet/secret-app:v1"
    digest = make_image(src, "x:1", [5000], seed=3)
    from cloudlet.image.auth import Credential, Keychain
    from cloudlet.image.push import push

    async with RegistryClient(keychain=Keychain({reg.host: Credential("alice", "wonderland")})) as c:
        await push(src, c, "x:1", image)
    store = ImageStore(tmp_path / "images")
    svc = ImageService(store, RegistryClient(docker_config=False))
    try:
        with pytest.raises(ImagePullError) as e:
            await svc.ensure(image, "IfNotPresent", [])
        assert e.value.reason == ERR_IMAGE_PULL and "requires credentials" in e.value.message
        # the back-off is for pulls without the secret; one with it goes ahead at once
        assert svc.in_backoff(image) and not svc.in_backoff(image, [reg.pull_secret(kind=kind)])
        got = await svc.ensure(image, "IfNotPresent", [reg.pull_secret(kind=kind)])
        assert got.digest == digest and store.resolve(image) == digest
    finally:
        await svc.close()


async def test_builtin_busybox_works_offline(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    try:
        await store.ensure_builtin()
    except ModuleNotFoundError as e:
        pytest.skip(f"built-in busybox not available: {e}")
    svc = ImageService(store, RegistryClient(docker_config=False))
    try:
        # Always (":latest"), docker.io unreachable here: the built-in local copy is used
        got = await asyncio.wait_for(svc.ensure("busybox", None, []), 60)
        assert got.ref == "docker.io/library/busybox:latest"
        assert got.digest == store.resolve("busybox:latest")
        assert (await svc.ensure("docker.io/library/busybox:latest", "Always", [])).digest == got.digest
        assert svc.backoff.delay(svc.backoff_key(got.ref)) is None
        # any other Docker Hub image fails with a clear error
        with pytest.raises(ImagePullError) as e:
            await asyncio.wait_for(svc.ensure("busybox:1.36", None, []), 60)
        assert e.value.reason == ERR_IMAGE_PULL and "registry-1.docker.io" in e.value.message
        rootfs = await svc.snapshot("cloudlet-test-c1", got)
        try:
            assert (rootfs / "bin" / "busybox").exists() or (rootfs / "bin" / "sh").exists()
        finally:
            await svc.remove_snapshot("cloudlet-test-c1")
        assert not rootfs.exists() or not any(rootfs.iterdir())
        assert store.mount_source not in await asyncio.to_thread(Path("/proc/self/mountinfo").read_text)
    finally:
        await svc.close()


async def test_docker_hub_name_through_mirror_in_registries_yaml(basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``<data-dir>/registries.yaml`` mirrors docker.io to a local registry (with credentials there)."""
    reg = basic_registry
    from cloudlet.image.auth import Credential, Keychain
    from cloudlet.image.push import push

    src = ImageStore(tmp_path / "src")
    digest = make_image(src, "x:1", [4000], seed=9)
    async with RegistryClient(keychain=Keychain({reg.host: Credential("alice", "wonderland")})) as c:
        await push(src, c, "x:1", f"{reg.host}/library/cloudlet-mirrored:2.0")
    data = tmp_path / "data"
    store = ImageStore(data / "images")
    (data / "registries.yaml").write_text(
        f"mirrors:\n  docker.io:\n    endpoint: ['{reg.url}']\n"
        f"configs:\n  '{reg.host}':\n    auth: {{username: alice, password: wonderland}}\n")
    svc = ImageService(store)  # reads <data-dir>/registries.yaml
    try:
        got = await svc.ensure("cloudlet-mirrored:2.0", None, [])
        assert got.ref == "docker.io/library/cloudlet-mirrored:2.0" and got.digest == digest
    finally:
        await svc.close()


async def _push_private(reg, tmp_path: Path, image: str, seed: int) -> str:  # type: ignore[no-untyped-def]
    from cloudlet.image.auth import Credential, Keychain
    from cloudlet.image.push import push

    src = ImageStore(tmp_path / f"src-{seed}")
    digest = make_image(src, "x:1", [6000], seed=seed)
    async with RegistryClient(keychain=Keychain({reg.host: Credential("alice", "wonderland")})) as c:
        await push(src, c, "x:1", image)
    return digest


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
async def test_pull_secret_of_one_pod_does_not_authorize_another(auth: str, basic_registry, token_registry,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    """Pod A pulls a private image with its imagePullSecret; pod B, without one (or with a wrong
    password), and imagePullPolicy Always, must get ErrImagePull from the registry's 401 — not
    A's authorisation. With IfNotPresent B uses the local copy, as in Kubernetes."""
    reg = basic_registry if auth == "htpasswd" else token_registry
    image = f"{reg.host}/private/app-{auth}:1.0"
    digest = await _push_private(reg, tmp_path, image, seed=11)
    secret = reg.pull_secret()
    wrong = reg.pull_secret(password="not-her-password")
    store = ImageStore(tmp_path / "images")
    svc = ImageService(store, RegistryClient(docker_config=False))
    try:
        got = await svc.ensure(image, "Always", [secret])
        assert got.digest == digest
        for secrets in ([], [wrong]):
            with pytest.raises(ImagePullError) as e:
                await svc.ensure(image, "Always", secrets)
            assert e.value.reason == ERR_IMAGE_PULL
            assert e.value.message.startswith(
                f'Failed to pull image "{image}": pull access denied, repository does not exist or may '
                "require authorization: "), e.value.message
            assert "401" in e.value.message or "requires credentials" in e.value.message or \
                "refused" in e.value.message, e.value.message
            # the next try without valid credentials backs off; the pod with the secret does not
            with pytest.raises(ImagePullError) as e:
                await svc.ensure(image, "Always", secrets)
            assert e.value.reason == IMAGE_PULL_BACKOFF
        assert (await svc.ensure(image, "Always", [secret])).digest == digest
        assert not svc.in_backoff(image, [secret]) and svc.in_backoff(image, [])
        # IfNotPresent: present on the node, so no pull and no credentials needed (Kubernetes' rule)
        assert (await svc.ensure(image, "IfNotPresent", [])).digest == digest
    finally:
        await svc.close()


async def test_concurrent_ensure_with_and_without_secret(basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two pods start at once, one with the secret and one without: they do not share the pull."""
    reg = basic_registry
    image = f"{reg.host}/private/concurrent:2.0"
    digest = await _push_private(reg, tmp_path, image, seed=12)
    svc = ImageService(ImageStore(tmp_path / "images"), RegistryClient(docker_config=False))
    try:
        with_secret, without = await asyncio.gather(
            svc.ensure(image, "Always", [reg.pull_secret()]), svc.ensure(image, "Always", []),
            return_exceptions=True)
        assert not isinstance(with_secret, BaseException) and with_secret.digest == digest, with_secret
        assert isinstance(without, ImagePullError) and without.reason == ERR_IMAGE_PULL, without
        assert "pull access denied" in without.message
    finally:
        await svc.close()
