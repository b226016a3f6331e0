"""The service proxy: ClusterIP and NodePort services as nftables DNAT rules (kube-proxy's role).

:class:`ServiceProxy` watches Services and EndpointSlices and keeps one
nftables table, ``ip cloudlet_<instance>``, equal to what they describe. The
whole table is rendered from the informers' state (:meth:`ServiceProxy.render`)
and replaced in one ``nft -f`` transaction (delete + create), so a reader never
sees half a ruleset; changes are batched (``min_sync_interval``).

What the rules do:

* ``services`` (jumped to from ``prerouting`` and ``output`` at ``dstnat``): a
  verdict map ``clusterIP . protocol . port -> goto svc_<id>`` and, for
  addresses local to this host (``fib daddr type local``: the node's IPs and
  127.0.0.1), ``protocol . nodePort -> goto svc_<id>``;
* ``svc_<id>``: marks the connection for masquerading, then picks an endpoint
  with ``numgen random mod N`` (kube-proxy's equal weighting). With
  ``sessionAffinity: ClientIP`` a per-endpoint dynamic set of client addresses
  (timeout ``sessionAffinityConfig.clientIP.timeoutSeconds``, 10800 s by default)
  sends a returning client to the endpoint it had;
* ``ep_<id>``: ``dnat`` to ``podIP:targetPort`` (named ports resolved by the
  EndpointSlice controller);
* only ready endpoints get traffic; when none is ready, serving-but-terminating
  ones do (kube-proxy's fallback); a port without endpoints is rejected
  (ICMP port unreachable, so clients fail fast), as is any other address of the
  service CIDR (nothing to it leaves the machine);
* ``postrouting`` masquerades marked connections (replies from a pod on the
  same bridge come back through the host; hairpin traffic works; 127.0.0.1
  NodePort clients become the bridge address — ``route_localnet`` is set on the
  pod bridge for that).

Everything is in cloudlet's own table: nothing of anyone else's is touched, and
:meth:`ServiceProxy.cleanup` deletes the table. Where ``nft`` is unavailable the
proxy says so in the logs and serves nothing (no userspace fallback yet).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudlet.client.cache import SERVICE_INDEX
from cloudlet.client.informer import Informer

log = logging.getLogger("cloudlet.proxy")

MASQ_MARK = 0x4000
DEFAULT_AFFINITY_TIMEOUT = 10800


@dataclass
class _Endpoint:
    ip: str
    port: int


@dataclass
class _Port:
    id: str
    cluster_ips: list[str]
    protocol: str
    port: int
    node_port: int | None
    endpoints: list[_Endpoint] = field(default_factory=list)
    affinity_timeout: int | None = None


def table_name(instance: str) -> str:
    """``cloudlet_<instance>`` with characters nft identifiers allow."""
    return "cloudlet_" + re.sub(r"[^A-Za-z0-9_]", "_", instance)


def _set_route_localnet(bridge: str) -> None:
    sysctl = Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
    if sysctl.exists():
        sysctl.write_text("1\n")


def _id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:12]


class ServiceProxy:
    """Keeps nftables in step with Services and EndpointSlices; see the module docstring."""

    def __init__(
        self,
        services: Informer,
        slices: Informer,
        *,
        instance: str,
        service_cidr: str = "10.96.0.0/12",
        bridge: str | None = None,
        min_sync_interval: float = 0.05,
        nft: str | None = None,
    ) -> None:
        self.services = services
        self.slices = slices
        self.slices.add_indexer(SERVICE_INDEX)
        self.table = table_name(instance)
        self.service_cidr = str(ipaddress.ip_network(service_cidr))
        self.bridge = bridge
        self.min_sync_interval = min_sync_interval
        self.nft = nft or shutil.which("nft") or "/usr/sbin/nft"
        self.nft_present = Path(self.nft).exists()
        self.available = False
        self.syncs = 0
        self.last_sync_seconds = 0.0
        self.rendered = ""
        self._dirty = asyncio.Event()
        for inf in (services, slices):
            inf.add_handler(lambda _o: self._dirty.set(), lambda _o, _n: self._dirty.set(), lambda _o: self._dirty.set())

    # --- model -------------------------------------------------------------------------------

    def _ports(self) -> list[_Port]:
        out: list[_Port] = []
        for svc in self.services.list():
            meta, spec = svc["metadata"], svc.get("spec") or {}
            if spec.get("type") == "ExternalName":
                continue
            ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None"
                   and ipaddress.ip_address(ip).version == 4]
            node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
            if not ips and not node_ports:
                continue  # headless: DNS only
            key = f"{meta.get('namespace', '')}/{meta['name']}"
            slices = self.slices.by_index(SERVICE_INDEX, key)
            affinity = None
            if spec.get("sessionAffinity") == "ClientIP":
                affinity = int((((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds"))
                               or DEFAULT_AFFINITY_TIMEOUT)
            for sp in spec.get("ports") or ():
                protocol = str(sp.get("protocol") or "TCP").lower()
                if protocol not in ("tcp", "udp", "sctp"):
                    continue
                port = _Port(_id(key, sp.get("name", ""), protocol, sp.get("port")), ips, protocol, int(sp.get("port") or 0),
                             int(sp["nodePort"]) if node_ports and sp.get("nodePort") else None, affinity_timeout=affinity)
                ready, fallback = [], []
                for sl in slices:
                    if sl.get("addressType") != "IPv4":
                        continue
                    target = next((int(p.get("port")) for p in sl.get("ports") or ()
                                   if (p.get("name") or "") == (sp.get("name") or "")
                                   and str(p.get("protocol") or "TCP").lower() == protocol and p.get("port")), None)
                    if target is None:
                        continue
                    for ep in sl.get("endpoints") or ():
                        cond = ep.get("conditions") or {}
                        for ip in ep.get("addresses") or ():
                            if cond.get("ready", True):
                                ready.append(_Endpoint(ip, target))
                            elif cond.get("serving") and cond.get("terminating"):
                                fallback.append(_Endpoint(ip, target))
                port.endpoints = sorted(ready or fallback, key=lambda e: (e.ip, e.port))
                out.append(port)
        return sorted(out, key=lambda p: p.id)

    def render(self) -> str:
        """The complete ``nft -f`` script (delete and recreate the table)."""
        ports = self._ports()
        t = self.table
        lines = [f"table ip {t}", f"delete table ip {t}", f"table ip {t} {{"]
        cluster = [(ip, p) for p in ports for ip in p.cluster_ips]
        served = [(ip, p) for ip, p in cluster if p.endpoints]
        empty = [(ip, p) for ip, p in cluster if not p.endpoints]
        lines.append("  map service_ips { type ipv4_addr . inet_proto . inet_service : verdict;")
        if served:
            lines.append("    elements = { " + ", ".join(f"{ip} . {p.protocol} . {p.port} : goto svc_{p.id}" for ip, p in served) + " }")
        lines.append("  }")
        nodeports = [p for p in ports if p.node_port and p.endpoints]
        lines.append("  map service_nodeports { type inet_proto . inet_service : verdict;")
        if nodeports:
            lines.append("    elements = { " + ", ".join(f"{p.protocol} . {p.node_port} : goto svc_{p.id}" for p in nodeports) + " }")
        lines.append("  }")
        lines.append("  set no_endpoints { type ipv4_addr . inet_proto . inet_service;")
        if empty:
            lines.append("    elements = { " + ", ".join(f"{ip} . {p.protocol} . {p.port}" for ip, p in empty) + " }")
        lines.append("  }")
        lines.append("  set no_endpoint_nodeports { type inet_proto . inet_service;")
        dead = [p for p in ports if p.node_port and not p.endpoints]
        if dead:
            lines.append("    elements = { " + ", ".join(f"{p.protocol} . {p.node_port}" for p in dead) + " }")
        lines.append("  }")
        for p in ports:
            if p.affinity_timeout is None:
                continue
            for i, _ep in enumerate(p.endpoints):
                lines.append(f"  set aff_{p.id}_{i} {{ type ipv4_addr; flags dynamic,timeout; timeout {p.affinity_timeout}s; }}")
        lines += [
            "  chain services {",
            "    ip daddr . meta l4proto . th dport vmap @service_ips",
            "    fib daddr type local meta l4proto . th dport vmap @service_nodeports",
            "  }",
            "  chain nat_prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }",
            "  chain nat_output { type nat hook output priority -100; policy accept; jump services; }",
            f"  chain nat_postrouting {{ type nat hook postrouting priority srcnat; policy accept; "
            f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} meta mark set meta mark ^ {MASQ_MARK:#x} masquerade; }}",
            "  chain reject_unserved {",
            "    ip daddr . meta l4proto . th dport @no_endpoints reject",
            "    fib daddr type local meta l4proto . th dport @no_endpoint_nodeports reject",
            f"    ip daddr {self.service_cidr} reject",
            "  }",
            "  chain filter_output { type filter hook output priority -10; policy accept; jump reject_unserved; }",
            "  chain filter_forward { type filter hook forward priority -10; policy accept; jump reject_unserved; }",
            "  chain filter_input { type filter hook input priority -10; policy accept; jump reject_unserved; }",
        ]
        for p in ports:
            if not p.endpoints:
                continue
            body = [f"meta mark set meta mark | {MASQ_MARK:#x}"]
            if p.affinity_timeout is not None:
                body += [f"ip saddr @aff_{p.id}_{i} goto ep_{p.id}_{i}" for i in range(len(p.endpoints))]
            n = len(p.endpoints)
            if n == 1:
                body.append(f"goto ep_{p.id}_0")
            else:
                body.append(f"numgen random mod {n} vmap {{ " + ", ".join(f"{i} : goto ep_{p.id}_{i}" for i in range(n)) + " }")
            lines.append(f"  chain svc_{p.id} {{")
            lines += [f"    {b}" for b in body]
            lines.append("  }")
            for i, ep in enumerate(p.endpoints):
                lines.append(f"  chain ep_{p.id}_{i} {{")
                if p.affinity_timeout is not None:
                    lines.append(f"    update @aff_{p.id}_{i} {{ ip saddr }}")
                lines.append(f"    meta l4proto {p.protocol} dnat to {ep.ip}:{ep.port}")
                lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    # --- applying ----------------------------------------------------------------------------

    async def _nft(self, script: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.nft, "-f", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(script.encode())
        if proc.returncode != 0:
            raise RuntimeError(f"nft failed ({proc.returncode}): {err.decode().strip()}")

    async def start(self) -> bool:
        """Check nftables works here; set ``route_localnet`` on the pod bridge (NodePorts on
        127.0.0.1). False (and a warning) when nftables is unavailable."""
        if not self.nft_present:
            log.warning("nftables unavailable: services get no ClusterIP/NodePort rules (no userspace fallback)",
                        extra={"nft": self.nft})
            return False
        try:
            await self._nft(f"table ip {self.table}\n")
        except RuntimeError as e:
            log.warning("nftables unusable: services get no ClusterIP/NodePort rules (no userspace fallback)",
                        extra={"error": str(e)})
            return False
        if self.bridge:
            await asyncio.to_thread(_set_route_localnet, self.bridge)
        self.available = True
        return True

    async def sync(self) -> None:
        if not self.available:
            return
        t0 = time.perf_counter()
        script = self.render()
        if script != self.rendered:
            await self._nft(script)
            self.rendered = script
        self.syncs += 1
        self.last_sync_seconds = time.perf_counter() - t0

    async def run(self) -> None:
        """Sync whenever services or endpoints change, until cancelled; then remove the table."""
        if not self.available and not await self.start():
            return
        try:
            await asyncio.gather(self.services.wait_synced(), self.slices.wait_synced())
            while True:
                try:
                    await self.sync()
                except Exception:  # a bad render or nft refusing it: log, keep serving the last good rules
                    log.exception("service rule sync failed")
                await self._dirty.wait()
                self._dirty.clear()
                await asyncio.sleep(self.min_sync_interval)
        finally:
            await self.cleanup()

    async def cleanup(self) -> None:
        """Delete cloudlet's table (idempotent)."""
        if self.nft_present:
            try:
                await self._nft(f"table ip {self.table}\ndelete table ip {self.table}\n")
            except RuntimeError as e:
                log.warning("could not remove the service rules", extra={"error": str(e)})
        self.rendered = ""

    def describe(self) -> dict[str, Any]:
        return {"table": self.table, "syncs": self.syncs, "last_sync_seconds": self.last_sync_seconds}


async def remove_table(instance: str, nft: str | None = None) -> None:
    """Delete the service table of ``instance`` if it exists (cleanup after a crash)."""
    path = nft or shutil.which("nft") or "/usr/sbin/nft"
    table = table_name(instance)
    proc = await asyncio.create_subprocess_exec(
        path, "-f", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await proc.communicate(f"table ip {table}\ndelete table ip {table}\n".encode())
