"""cloudlet.network.netns: real network namespaces bound under /run/netns."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudlet.network import netns
from tests.network.conftest import requires_host_network, sh

pytestmark = requires_host_network


def inode(path: Path | str) -> int:
    return os.stat(path).st_ino


@pytest.fixture
def ns_path() -> Iterator[Path]:
    p = netns.NETNS_DIR / f"cloudlet-ttest{uuid.uuid4().hex[:8]}-{uuid.uuid4()}"
    yield p
    subprocess.run(["umount", "-l", str(p)], capture_output=True)
    p.unlink(missing_ok=True)


async def test_create_is_a_real_empty_namespace_and_idempotent(ns_path: Path) -> None:
    assert not netns.exists(ns_path)
    await netns.create(ns_path)
    assert netns.exists(ns_path)
    first = inode(ns_path)
    await netns.create(ns_path)  # kept, not replaced
    assert inode(ns_path) == first
    assert first != inode("/proc/self/ns/net")  # not the host's namespace
    # `ip netns` sees and enters it; inside there is only a (down) loopback
    assert ns_path.name in await sh("ip", "netns", "list")
    links = (await sh("ip", "netns", "exec", ns_path.name, "ip", "-o", "link")).splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]


async def test_delete_is_idempotent(ns_path: Path) -> None:
    await netns.create(ns_path)
    await netns.delete(ns_path)
    assert not netns.exists(ns_path)
    assert ns_path.name not in os.listdir(ns_path.parent)
    await netns.delete(ns_path)
    assert ns_path.name not in await sh("ip", "netns", "list")


async def test_run_in_and_connections_stay_inside(ns_path: Path) -> None:
    await netns.create(ns_path)
    names = await asyncio.to_thread(
        netns.run_in, ns_path, lambda: sorted(n for _i, n in __import__("socket").if_nameindex()))
    assert names == ["lo"]
    # nothing listens on the namespace's loopback (it is down): the connect fails there,
    # proving the socket is not the host's
    with pytest.raises(OSError):
        await netns.open_connection(ns_path, "127.0.0.1", 9, connect_timeout=5)


async def test_entering_a_missing_namespace_fails_clearly(ns_path: Path) -> None:
    with pytest.raises(netns.NetnsError, match="no network namespace"):
        netns.run_in(ns_path, lambda: None)


async def test_set_link_up_brings_loopback_up_inside_only(ns_path: Path) -> None:
    await netns.create(ns_path)
    assert not await asyncio.to_thread(netns.link_is_up, ns_path, "lo")
    await asyncio.to_thread(netns.set_link_up, ns_path, "lo")
    await asyncio.to_thread(netns.set_link_up, ns_path, "lo")  # idempotent
    assert await asyncio.to_thread(netns.link_is_up, ns_path, "lo")
    # `ip` agrees, and the kernel gave lo its address
    out = await sh("ip", "netns", "exec", ns_path.name, "ip", "-o", "addr", "show", "dev", "lo")
    assert "127.0.0.1/8" in out
    with pytest.raises(OSError):
        await asyncio.to_thread(netns.set_link_up, ns_path, "nosuchif0")
