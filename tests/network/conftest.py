"""Fixtures for the pod network tests: real CNI plugins, real namespaces, leak checks.

Every test gets its own instance id and a random free /24 in 10.123.0.0/16 (so
tests of other helpers using the default 10.88.0.0/16 never collide with ours),
and after the test the fixture runs ``cleanup_all`` and asserts that nothing of
the instance is left on the host.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from cloudlet.network import netns
from cloudlet.network.cni import DEFAULT_PLUGIN_DIRS, REQUIRED_PLUGINS, PodNetwork, pick_free_cidr


def _plugins_present() -> bool:
    return all(any(Path(d, p).exists() for d in DEFAULT_PLUGIN_DIRS) for p in REQUIRED_PLUGINS)


def _host_network_missing() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, bridges, iptables)"
    if not _plugins_present():
        return "CNI plugins (containernetworking-plugins) not installed"
    if shutil.which("iptables") is None:
        return "iptables not installed (portmap needs it)"
    return ""


# test modules that touch the host's network put this in their ``pytestmark``
requires_host_network = pytest.mark.skipif(bool(_host_network_missing()),
                                           reason=_host_network_missing() or "ok")


async def sh(*argv: str, check: bool = True) -> str:
    """Run a command without blocking the loop; its stdout (stderr folded in on failure)."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} failed ({proc.returncode}): {err.decode()}")
    return out.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nat_rules_of(pn: PodNetwork) -> list[str]:
    out = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if f'name: \\"{pn.network_name}\\"' in line]


def dnat_chains_left(pn: PodNetwork, uids: Sequence[str]) -> list[str]:
    """portmap's per-pod chains (``CNI-DN-`` + sha512(network name + container id)[:21])
    of these pods that still exist in the nat table."""
    want = {"CNI-DN-" + hashlib.sha512((pn.network_name + u).encode()).hexdigest()[:21]
            for u in uids}
    out = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                         check=True).stdout
    return sorted(c for c in want if f":{c} " in out)


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def ipam_reservations(pn: PodNetwork) -> list[str]:
    d = pn.ipam_dir / pn.network_name
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir()
                  if p.name != "lock" and not p.name.startswith("last_reserved_ip"))


async def poll(cond: Callable[[], bool], within: float = 15.0, what: str = "") -> None:
    """Wait for ``cond`` (generous: the machine is shared and loaded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.05)


async def assert_no_leaks(pn: PodNetwork, host_veths: Sequence[str] = ()) -> None:
    assert netns.list_dir(pn.netns_dir, pn.netns_prefix) == []
    assert not link_exists(pn.bridge), f"bridge {pn.bridge} left behind"
    assert nat_rules_of(pn) == []
    assert not pn.ipam_dir.exists() or ipam_reservations(pn) == []
    assert not any(pn.results_dir.glob("*.json")) if pn.results_dir.exists() else True
    # a deleted namespace takes its veth pair with it, asynchronously
    await poll(lambda: not any(link_exists(v) for v in host_veths), what="veths to go")


NetworkFactory = Callable[..., Awaitable[PodNetwork]]


@pytest.fixture
async def make_network(tmp_path: Path) -> AsyncIterator[NetworkFactory]:
    """Factory of started PodNetworks (own instance id and CIDR); cleaned and leak-checked."""
    made: list[PodNetwork] = []

    async def make(cidr: str | None = None, start: bool = True, **kw: object) -> PodNetwork:
        instance = f"t{uuid.uuid4().hex[:10]}"
        pn = PodNetwork(tmp_path / instance, instance, cidr or pick_free_cidr(), **kw)  # type: ignore[arg-type]
        made.append(pn)
        if start:
            await pn.start()
        return pn

    yield make
    for pn in made:
        await pn.cleanup_all()
    for pn in made:
        await assert_no_leaks(pn)


@pytest.fixture
async def network(make_network: NetworkFactory) -> PodNetwork:
    return await make_network()


def new_uid() -> str:
    return str(uuid.uuid4())
