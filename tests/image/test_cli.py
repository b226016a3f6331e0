"""``cloudlet image ...`` through the real entry point, against a real docker-registry (and a running server)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloudlet.image.store import ImageStore
from tests.image import registry_fixture as fx
from tests.image.registry_fixture import env_without_docker_config, make_image

# fixtures from the shared registry module
_no_host_docker_config = fx._no_host_docker_config
basic_registry = fx.basic_registry

CLOUDLET = str(Path(sys.executable).with_name("cloudlet"))


def cli(tmp: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([CLOUDLET, "image", *args], capture_output=True, text=True, timeout=120,
                       env=env or env_without_docker_config(tmp))
    if check and p.returncode != 0:
        raise AssertionError(f"cloudlet image {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def test_push_rm_pull_tag_inspect_export_import(basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = basic_registry
    data = tmp_path / "data"
    dd = ("--data-dir", str(data))
    store = ImageStore(data / "images")
    try:
        asyncio.run(store.ensure_builtin())
    except ModuleNotFoundError as e:
        pytest.skip(f"built-in busybox not available: {e}")
    local = store.resolve("busybox:latest")
    store.close()
    ls = cli(tmp_path, "ls", *dd).stdout
    assert "busybox" in ls and "latest" in ls
    remote = f"{reg.host}/cloudlet/bb:1"
    denied = cli(tmp_path, "push", "busybox", remote, *dd, check=False)
    assert denied.returncode == 1 and "requires credentials" in denied.stderr
    # credentials from a docker config.json named by $DOCKER_CONFIG
    env = env_without_docker_config(tmp_path)
    env["DOCKER_CONFIG"] = str(tmp_path / "dockercfg")
    reg.docker_config(tmp_path / "dockercfg")
    pushed = cli(tmp_path, "push", "busybox", remote, "--chunk-size", "300000", *dd, env=env).stdout
    digest = pushed.split()[-1]
    assert digest.startswith("sha256:")
    assert "Untagged: busybox:latest" in cli(tmp_path, "rm", "busybox", *dd).stdout
    missing = cli(tmp_path, "rm", "busybox", *dd, check=False)
    assert missing.returncode == 1 and "no such image" in missing.stderr
    # pull back by tag (with --creds) and by digest
    assert cli(tmp_path, "pull", remote, "--creds", "alice:wonderland", *dd).stdout.split()[-1] == digest
    by_digest = f"{reg.host}/cloudlet/bb@{digest}"
    assert cli(tmp_path, "pull", by_digest, "-q", *dd, env=env).stdout.split()[-1] == digest
    cli(tmp_path, "tag", remote, "busybox:latest", *dd)
    listed = cli(tmp_path, "ls", "--digests", *dd).stdout
    assert f"{reg.host}/cloudlet/bb" in listed and digest in listed
    doc = json.loads(cli(tmp_path, "inspect", "busybox", *dd).stdout)
    assert doc["digest"] == digest == local
    assert "docker.io/library/busybox:latest" in doc["names"] and remote in doc["names"]
    assert doc["config"]["rootfs"]["diff_ids"]
    # export -> import into another data dir
    archive = tmp_path / "bb.tar"
    cli(tmp_path, "export", "busybox", "-o", str(archive), *dd)
    loaded = cli(tmp_path, "import", str(archive), "--data-dir", str(tmp_path / "other")).stdout
    assert "busybox" in loaded
    other = json.loads(cli(tmp_path, "inspect", "busybox", "--data-dir", str(tmp_path / "other")).stdout)
    assert other["id"] == doc["id"]
    # errors: bad name, unreachable Docker Hub (quick and clear)
    bad = cli(tmp_path, "pull", "Bad Name", *dd, check=False)
    assert bad.returncode == 2 and "invalid" in bad.stderr
    hub = cli(tmp_path, "pull", "busybox:1.36", "-q", *dd, check=False)
    assert hub.returncode == 1 and "registry-1.docker.io" in hub.stderr
    cli(tmp_path, "prune", *dd)
    assert set(cli(tmp_path, "ls", "-q", *dd).stdout.split()) == {doc["id"]}  # tagged images survive


def test_cli_while_server_runs(basic_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The CLI uses the store of a running `cloudlet up` (two processes on one store)."""
    from tests.e2e.harness import CloudletProcess

    reg = basic_registry
    src = ImageStore(tmp_path / "src" / "images")
    digest = make_image(src, "app:1", [200_000, 100_000], seed=41)
    src.close()
    proc = CloudletProcess(tmp_path / "data")
    proc.start()
    try:
        dd = ("--data-dir", str(proc.data_dir))
        creds = ("--creds", "alice:wonderland")
        remote = f"{reg.host}/cloudlet/live:1"
        cli(tmp_path, "push", "app:1", remote, "--data-dir", str(tmp_path / "src"), *creds)
        assert cli(tmp_path, "pull", remote, "-q", *dd, *creds).stdout.split()[-1] == digest
        assert f"{reg.host}/cloudlet/live" in cli(tmp_path, "ls", *dd).stdout
        assert proc.alive()
    finally:
        proc.stop()
