"""Service address allocation: cluster IPs and node ports.

kube-apiserver allocates ``spec.clusterIP(s)`` from the service CIDR and
``nodePort`` values from 30000-32767 when a Service is created, and refuses
addresses already taken. :func:`install` registers that as an
:class:`~cloudlet.api.objects.ObjectAPI` create hook. What is in use is read
from the store (committed Services) plus allocations not yet committed, so two
concurrent creates never get the same value.
"""

from __future__ import annotations

import ipaddress
import random
import time
from typing import Any

from cloudlet.api import errors
from cloudlet.api.objects import ObjectAPI

Obj = dict[str, Any]

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)
_PENDING_TTL = 30.0


class ServiceAllocator:
    def __init__(self, api: ObjectAPI, cidr: ipaddress.IPv4Network = SERVICE_CIDR) -> None:
        self.api = api
        self.cidr = cidr
        self._pending_ips: dict[str, float] = {}
        self._pending_ports: dict[int, float] = {}

    def _in_use(self) -> tuple[set[str], set[int]]:
        now = time.monotonic()
        for table in (self._pending_ips, self._pending_ports):
            for k in [k for k, t in table.items() if now - t > _PENDING_TTL]:
                del table[k]
        ips: set[str] = set(self._pending_ips)
        ports: set[int] = set(self._pending_ports)
        objs, _, _ = self.api.store.list("/services")
        for svc in objs:
            spec = svc.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    ips.add(ip)
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and isinstance(p.get("nodePort"), int):
                    ports.add(p["nodePort"])
        return ips, ports

    def __call__(self, svc: Obj) -> None:
        spec = svc.get("spec")
        if not isinstance(spec, dict):
            return
        stype = spec.get("type", "ClusterIP")
        used_ips, used_ports = self._in_use()
        name = (svc.get("metadata") or {}).get("name", "")
        if stype != "ExternalName" and spec.get("clusterIP") != "None":
            want = spec.get("clusterIP")
            if want:
                self._check_ip(name, want, used_ips)
                ip = want
            else:
                ip = self._random_ip(name, used_ips)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            self._pending_ips[ip] = time.monotonic()
        if stype in ("NodePort", "LoadBalancer"):
            for i, p in enumerate(spec.get("ports") or []):
                if not isinstance(p, dict):
                    continue
                port = p.get("nodePort")
                if port:
                    if port in used_ports:
                        raise errors.invalid("Service", "", name, [errors.invalid_value(
                            f"spec.ports[{i}].nodePort", port, "provided port is already allocated")])
                    if port not in NODE_PORTS:
                        raise errors.invalid("Service", "", name, [errors.invalid_value(
                            f"spec.ports[{i}].nodePort", port, f"provided port is not in the valid range. The range of valid ports is {NODE_PORTS.start}-{NODE_PORTS.stop - 1}")])
                else:
                    free = [n for n in NODE_PORTS if n not in used_ports]
                    if not free:
                        raise errors.APIError(422, "Invalid", "range is full")
                    port = random.choice(free)
                    p["nodePort"] = port
                used_ports.add(port)
                self._pending_ports[port] = time.monotonic()

    def _check_ip(self, name: str, want: Any, used: set[str]) -> None:
        try:
            addr = ipaddress.ip_address(want)
        except ValueError:
            return  # validation reports malformed addresses
        field = "spec.clusterIPs"
        if addr not in self.cidr or addr in (self.cidr.network_address, self.cidr.broadcast_address):
            raise errors.invalid("Service", "", name, [errors.invalid_value(
                field, [want], f"failed to allocate IP {want}: the provided IP ({want}) is not in the valid range. The range of valid IPs is {self.cidr}")])
        if want in used:
            raise errors.invalid("Service", "", name, [errors.invalid_value(
                field, [want], f"failed to allocate IP {want}: provided IP is already allocated")])

    def _random_ip(self, name: str, used: set[str]) -> str:
        base = int(self.cidr.network_address)
        size = self.cidr.num_addresses
        for _ in range(64):
            n = random.randrange(11, size - 1)  # .1 is the kubernetes service, .10 DNS
            ip = str(ipaddress.ip_address(base + n))
            if ip not in used:
                return ip
        for n in range(2, size - 1):
            ip = str(ipaddress.ip_address(base + n))
            if ip not in used:
                return ip
        raise errors.APIError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")


def install(api: ObjectAPI) -> ServiceAllocator:
    alloc = ServiceAllocator(api)
    api.create_hooks.setdefault("/services", []).append(alloc)
    return alloc
