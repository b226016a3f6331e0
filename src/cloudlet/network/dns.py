"""Cluster DNS: Kubernetes' DNS-based service discovery, served from informers.

What it answers (the Kubernetes DNS specification, as CoreDNS's ``kubernetes``
plugin does), for the cluster domain (``cluster.local`` by default):

* ``<svc>.<ns>.svc.<domain>`` — ``A`` (``AAAA``) of the ClusterIP; for a
  headless Service the IPs of its ready endpoints (all endpoints with
  ``publishNotReadyAddresses``); ``CNAME`` to ``spec.externalName`` for an
  ExternalName Service;
* ``<hostname>.<svc>.<ns>.svc.<domain>`` — a headless Service's endpoint with a
  hostname (the pod's ``spec.hostname`` + ``spec.subdomain``) or, without one,
  the dashed IP (``10-88-0-5``);
* ``_<port>._<proto>.<svc>.<ns>.svc.<domain>`` — ``SRV`` for named ports
  (target the Service name, or each endpoint's name for a headless Service);
* ``<a-b-c-d>.<ns>.pod.<domain>`` — ``A`` of the dashed address (CoreDNS's
  ``pods insecure``);
* ``PTR`` for ClusterIPs and headless endpoint IPs;
* other names in the cluster domain: ``NXDOMAIN`` with the zone's ``SOA``
  (``NOERROR`` with no answers when the name exists with another type);
* every other name is forwarded to the upstream servers (the host's
  ``/etc/resolv.conf`` by default) over UDP, then TCP when truncated;
  ``SERVFAIL`` if none answers.

Records carry TTL 5 (CoreDNS's default). Services come from a Service
informer and endpoints from an EndpointSlice informer; answers therefore follow
the API within a watch event. UDP and TCP are served on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnslib import AAAA, CNAME, PTR, QTYPE, RCODE, RR, SOA, SRV, A, DNSLabel, DNSRecord

from cloudlet.client.cache import SERVICE_INDEX
from cloudlet.client.informer import Informer

log = logging.getLogger("cloudlet.dns")

TTL = 5


@dataclass
class _Endpoint:
    ip: str
    hostname: str
    ready: bool


@dataclass
class _Answer:
    rcode: int = RCODE.NOERROR
    records: list[RR] = field(default_factory=list)
    authoritative: bool = True


def upstream_from_resolv_conf(path: str = "/etc/resolv.conf") -> list[str]:
    servers = []
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append(parts[1])
    return servers


def _labels(name: DNSLabel) -> list[str]:
    return [(x.decode() if isinstance(x, bytes) else str(x)).lower() for x in name.label]


def _is_reverse(name: DNSLabel) -> bool:
    return _labels(name)[-2:] in (["in-addr", "arpa"], ["ip6", "arpa"])


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


class ClusterDNS:
    """Resolves cluster names from ``services`` and ``slices`` informers; see the module docstring."""

    def __init__(
        self,
        services: Informer,
        slices: Informer,
        *,
        domain: str = "cluster.local",
        upstream: Iterable[str] | None = None,
        upstream_port: int = 53,
        upstream_timeout: float = 2.0,
    ) -> None:
        self.services = services
        self.slices = slices
        self.domain = domain.strip(".").lower()
        self.zone = DNSLabel(self.domain)
        self.upstream = list(upstream) if upstream is not None else upstream_from_resolv_conf()
        self.upstream_port = upstream_port
        self.upstream_timeout = upstream_timeout
        self.queries = 0
        self.slices.add_indexer(SERVICE_INDEX)
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: list[Any] = []
        self._servers: list[asyncio.base_events.Server] = []

    # --- data ------------------------------------------------------------------------------

    def _endpoints(self, svc: dict[str, Any]) -> list[_Endpoint]:
        meta = svc["metadata"]
        publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        out: list[_Endpoint] = []
        seen: set[str] = set()
        for sl in self.slices.by_index(SERVICE_INDEX, f"{meta.get('namespace', '')}/{meta['name']}"):
            for ep in sl.get("endpoints") or ():
                cond = ep.get("conditions") or {}
                ready = cond.get("ready") is not False
                for ip in ep.get("addresses") or ():
                    if ip in seen:
                        continue
                    seen.add(ip)
                    out.append(_Endpoint(ip, str(ep.get("hostname") or ""), ready or publish))
        return sorted(out, key=lambda e: e.ip)

    def _service(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.services.get(f"{ns}/{name}")

    # --- resolution ------------------------------------------------------------------------

    def _soa(self) -> RR:
        return RR(self.zone, QTYPE.SOA, ttl=TTL, rdata=SOA(
            f"ns.dns.{self.domain}", f"hostmaster.{self.domain}", (1, 7200, 1800, 86400, TTL)))

    def in_zone(self, qname: DNSLabel) -> bool:
        return qname.matchSuffix(self.zone)

    def resolve(self, qname: DNSLabel, qtype: int) -> _Answer:
        """The answer for one question in the cluster zone (or a PTR name)."""
        labels = _labels(qname)
        if _is_reverse(qname):
            return self._ptr(qname, labels)
        rel = labels[: len(labels) - len(self.zone.label)]
        exists, records = self._lookup(qname, rel, qtype)
        if records:
            return _Answer(records=records)
        if exists:
            return _Answer(records=[])
        return _Answer(rcode=RCODE.NXDOMAIN)

    def _lookup(self, qname: DNSLabel, rel: list[str], qtype: int) -> tuple[bool, list[RR]]:
        if not rel:
            return True, ([self._soa()] if qtype in (QTYPE.SOA, QTYPE.ANY) else [])
        if rel == ["svc"] or (len(rel) == 2 and rel[1] == "svc"):
            return True, []  # <ns>.svc.<zone> is an empty non-terminal
        if len(rel) == 3 and rel[2] == "pod":
            return self._pod(qname, rel[0], qtype)
        if len(rel) == 3 and rel[2] == "svc":
            return self._service_records(qname, rel[1], rel[0], qtype)
        if len(rel) == 4 and rel[3] == "svc":
            return self._endpoint_records(qname, rel[2], rel[1], rel[0], qtype)
        if len(rel) == 5 and rel[4] == "svc" and rel[0].startswith("_") and rel[1].startswith("_"):
            return self._srv(qname, rel[3], rel[2], rel[0][1:], rel[1][1:], qtype)
        return False, []

    def _addr_rr(self, qname: DNSLabel, ip: str, qtype: int) -> list[RR]:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return []
        if addr.version == 4 and qtype in (QTYPE.A, QTYPE.ANY):
            return [RR(qname, QTYPE.A, ttl=TTL, rdata=A(ip))]
        if addr.version == 6 and qtype in (QTYPE.AAAA, QTYPE.ANY):
            return [RR(qname, QTYPE.AAAA, ttl=TTL, rdata=AAAA(ip))]
        return []

    def _pod(self, qname: DNSLabel, name: str, qtype: int) -> tuple[bool, list[RR]]:
        ip = name.replace("-", ".")
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            try:
                ip = str(ipaddress.IPv6Address(name.replace("-", ":")))
            except ValueError:
                return False, []
        return True, self._addr_rr(qname, ip, qtype)

    def _service_records(self, qname: DNSLabel, ns: str, name: str, qtype: int) -> tuple[bool, list[RR]]:
        svc = self._service(ns, name)
        if svc is None:
            return False, []
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" and spec.get("externalName"):
            return True, [RR(qname, QTYPE.CNAME, ttl=TTL, rdata=CNAME(spec["externalName"] + "."))]
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            ips = [ip for ip in (spec.get("clusterIPs") or [spec["clusterIP"]]) if ip != "None"]
        else:
            ips = [e.ip for e in self._endpoints(svc) if e.ready]
        out: list[RR] = []
        for ip in ips:
            out += self._addr_rr(qname, ip, qtype)
        return True, out

    def _endpoint_records(self, qname: DNSLabel, ns: str, svc_name: str, host: str, qtype: int) -> tuple[bool, list[RR]]:
        svc = self._service(ns, svc_name)
        if svc is None:
            return False, []
        out: list[RR] = []
        found = False
        for e in self._endpoints(svc):
            if e.ready and (e.hostname == host or dashed(e.ip) == host):
                found = True
                out += self._addr_rr(qname, e.ip, qtype)
        return found, out

    def _srv(self, qname: DNSLabel, ns: str, svc_name: str, port_name: str, proto: str, qtype: int) -> tuple[bool, list[RR]]:
        svc = self._service(ns, svc_name)
        if svc is None:
            return False, []
        spec = svc.get("spec") or {}
        ports = [p for p in spec.get("ports") or () if p.get("name") == port_name
                 and (p.get("protocol") or "TCP").lower() == proto]
        if not ports:
            return False, []
        if qtype not in (QTYPE.SRV, QTYPE.ANY):
            return True, []
        base = f"{svc_name}.{ns}.svc.{self.domain}."
        out: list[RR] = []
        headless = spec.get("clusterIP") in (None, "", "None")
        for p in ports:
            if not headless:
                out.append(RR(qname, QTYPE.SRV, ttl=TTL, rdata=SRV(0, 100, int(p["port"]), base)))
                continue
            ready = [e for e in self._endpoints(svc) if e.ready]
            weight = max(1, 100 // max(1, len(ready)))  # spread evenly, as CoreDNS does
            for e in ready:
                target = f"{e.hostname or dashed(e.ip)}.{base}"
                out.append(RR(qname, QTYPE.SRV, ttl=TTL, rdata=SRV(0, weight, int(p["port"]), target)))
        return True, out

    def _ptr(self, qname: DNSLabel, labels: list[str]) -> _Answer:
        try:
            if labels[-2] == "in-addr":
                ip = ".".join(reversed(labels[:-2]))
                ipaddress.IPv4Address(ip)
            else:
                nibbles = "".join(reversed(labels[:-2]))
                ip = str(ipaddress.IPv6Address(":".join(nibbles[i:i + 4] for i in range(0, 32, 4))))
        except (ValueError, IndexError):
            return _Answer(rcode=RCODE.NXDOMAIN, authoritative=False)
        for svc in self.services.list():
            meta, spec = svc["metadata"], svc.get("spec") or {}
            name = f"{meta['name']}.{meta.get('namespace', '')}.svc.{self.domain}."
            if ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]):
                return _Answer(records=[RR(qname, QTYPE.PTR, ttl=TTL, rdata=PTR(name))])
            if spec.get("clusterIP") == "None":
                for e in self._endpoints(svc):
                    if e.ip == ip and e.ready:
                        return _Answer(records=[RR(qname, QTYPE.PTR, ttl=TTL, rdata=PTR(f"{e.hostname or dashed(ip)}.{name}"))])
        return _Answer(rcode=RCODE.NXDOMAIN, authoritative=False)

    # --- the wire --------------------------------------------------------------------------

    async def handle(self, data: bytes) -> bytes | None:
        """Answer one DNS message (bytes in, bytes out; ``None`` for garbage)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        self.queries += 1
        reply = request.reply()
        reply.header.ra = 1
        if not request.questions:
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        q = request.questions[0]
        ans = self.resolve(q.qname, q.qtype) if self.in_zone(q.qname) or _is_reverse(q.qname) else None
        if ans is not None and (ans.authoritative or ans.records):  # a reverse name we don't know: forward
            reply.header.aa = int(ans.authoritative)
            reply.header.rcode = ans.rcode
            for rr in ans.records:
                reply.add_answer(rr)
            if ans.rcode == RCODE.NXDOMAIN or not ans.records:
                reply.add_auth(self._soa())
            return reply.pack()
        forwarded = await self._forward(data)
        if forwarded is not None:
            return forwarded
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()

    async def _forward(self, data: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        for server in self.upstream:
            fut: asyncio.Future[bytes] = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda f=fut: _OneReply(f), remote_addr=(server, self.upstream_port))
            except OSError:
                continue
            try:
                transport.sendto(data)
                async with asyncio.timeout(self.upstream_timeout):
                    got = await fut
                if DNSRecord.parse(got).header.tc:
                    got = await self._forward_tcp(server, data) or got
                return got
            except Exception:  # noqa: BLE001 - timeout, refusal or garbage: try the next upstream
                continue
            finally:
                transport.close()
        return None

    async def _forward_tcp(self, server: str, data: bytes) -> bytes | None:
        try:
            async with asyncio.timeout(self.upstream_timeout):
                reader, writer = await asyncio.open_connection(server, self.upstream_port)
                writer.write(struct.pack("!H", len(data)) + data)
                await writer.drain()
                n = struct.unpack("!H", await reader.readexactly(2))[0]
                got = await reader.readexactly(n)
                writer.close()
                return got
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            return None

    async def serve(self, host: str, port: int) -> int:
        """Listen on UDP and TCP ``host:port`` (0: pick one, the same for both); returns the port."""
        loop = asyncio.get_running_loop()
        dns = self

        class _UDP(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                async def answer() -> None:
                    out = await dns.handle(data)
                    if out is not None:
                        if len(out) > 512:  # classic UDP limit: truncate, the client retries over TCP
                            rec = DNSRecord.parse(out)
                            rec.rr = []
                            rec.header.tc = 1
                            out = rec.pack()
                        self.transport.sendto(out, addr)

                task = loop.create_task(answer())
                dns._tasks.add(task)
                task.add_done_callback(dns._tasks.discard)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                    out = await dns.handle(await reader.readexactly(n))
                    if out is None:
                        break
                    writer.write(struct.pack("!H", len(out)) + out)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(tcp, host, port)
        bound = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(_UDP, local_addr=(host, bound))
        self._servers.append(server)
        self._transports.append(transport)
        log.info("cluster DNS serving", extra={"address": f"{host}:{bound}", "domain": self.domain})
        return int(bound)

    async def close(self) -> None:
        for t in self._transports:
            t.close()
        for s in self._servers:
            s.close()
            await s.wait_closed()
        self._transports.clear()
        self._servers.clear()


class _OneReply(asyncio.DatagramProtocol):
    """Resolves ``fut`` with the first datagram (or error) an upstream sends back."""

    def __init__(self, fut: asyncio.Future[bytes]) -> None:
        self.fut = fut

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


def resolv_conf(pod: dict[str, Any], *, cluster_dns: str | None, domain: str = "cluster.local",
                host_resolv: str = "") -> str:
    """``/etc/resolv.conf`` for ``pod`` per its ``dnsPolicy`` and ``dnsConfig``, as the kubelet writes it.

    ``ClusterFirst`` (the default; for ``hostNetwork`` pods only with
    ``ClusterFirstWithHostNet``): the cluster DNS server, search
    ``<ns>.svc.<domain> svc.<domain> <domain>`` then the host's search domains,
    ``options ndots:5``. ``Default``: the host's file. ``None``: only ``dnsConfig``.
    ``dnsConfig`` then adds nameservers (at most 3 in all), searches (duplicates
    dropped, at most 32) and options (same name: the pod's wins).
    """
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_ns, host_search, host_opts = [], [], []
    for line in host_resolv.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            host_ns.append(parts[1])
        elif parts and parts[0] in ("search", "domain"):
            host_search = parts[1:]
        elif parts and parts[0] == "options":
            host_opts += parts[1:]
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    if policy == "ClusterFirst" and cluster_dns:
        servers = [cluster_dns]
        search = [f"{ns}.svc.{domain}", f"svc.{domain}", domain, *host_search]
        options: list[str] = ["ndots:5"]
    elif policy == "None":
        servers, search, options = [], [], []
    else:  # Default (or ClusterFirst without a cluster DNS: kubelet falls back to the host's)
        servers, search, options = list(host_ns), list(host_search), list(host_opts)
    config = spec.get("dnsConfig") or {}
    servers += [s for s in config.get("nameservers") or () if s not in servers]
    search += [s for s in config.get("searches") or () if s not in search]
    named = {o.split(":")[0]: o for o in options}
    for opt in config.get("options") or ():
        name = str(opt.get("name") or "")
        if name:
            named[name] = f"{name}:{opt['value']}" if opt.get("value") not in (None, "") else name
    lines = [f"nameserver {s}" for s in servers[:3]]
    if search:
        lines.append("search " + " ".join(dict.fromkeys(search[:32])))
    if named:
        lines.append("options " + " ".join(named.values()))
    return "\n".join(lines) + "\n"
