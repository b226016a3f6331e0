"""Registering this machine as a Node and keeping it alive (status + Lease).

* :func:`host_capacity` reads the host: ``cpu`` (online CPUs), ``memory``
  (``MemTotal``), ``ephemeral-storage`` (size of the data dir's filesystem),
  ``pods`` (110) and ``hugepages-*`` (0).
* :func:`parse_reserved` reads ``--system-reserved cpu=500m,memory=1Gi``;
  :func:`allocatable` is capacity minus that reserve (never negative).
* :func:`node_conditions` are the kubelet's four conditions with its reasons
  and messages; the pressure ones are computed from the host
  (``MemAvailable`` < 100Mi, less than 10% free on the data dir's filesystem,
  or less than 10% of ``pid_max`` free).
* :class:`NodeRegistration` creates (or adopts and updates) the Node
  ``<hostname>`` with labels, addresses (``InternalIP`` = the pod network's
  host IP or 127.0.0.1, ``Hostname``), ``nodeInfo`` and status, then renews
  the Lease ``kube-node-lease/<node>`` every ``heartbeat_interval`` and posts
  the status when a condition changes or at least every
  ``status_report_interval`` (the kubelet's nodeStatusReportFrequency).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.interface import Client, ResourceRef
from cloudlet.resources.quantity import format_quantity, parse_quantity

log = logging.getLogger("cloudlet.node")

Obj = dict[str, Any]
NODES = ResourceRef("", "v1", "nodes")
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases")
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.0-cloudlet"
MAX_PODS = 110


def default_node_name() -> str:
    return socket.gethostname().split(".")[0].lower() or "localhost"


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    out[k] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    except OSError:
        pass
    return out


def host_capacity(data_dir: Path) -> dict[str, str]:
    """The host's capacity, Kubernetes quantity strings."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = os.cpu_count() or 1
    mem = _meminfo().get("MemTotal", 0)
    try:
        st = os.statvfs(data_dir)
        disk = st.f_blocks * st.f_frsize
    except OSError:
        disk = 0
    return {
        "cpu": str(cpus),
        "memory": f"{mem // 1024}Ki",
        "ephemeral-storage": f"{disk // 1024}Ki",
        "pods": str(MAX_PODS),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }


def parse_reserved(text: str) -> dict[str, str]:
    """``cpu=500m,memory=1Gi`` -> ``{"cpu": "500m", "memory": "1Gi"}`` (validated)."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        k, sep, v = part.partition("=")
        if not sep or k.strip() not in ("cpu", "memory", "ephemeral-storage", "pid"):
            raise ValueError(f"invalid reserved resource {part!r}: want cpu=..,memory=..,ephemeral-storage=..")
        parse_quantity(v.strip())
        out[k.strip()] = v.strip()
    return out


def allocatable(capacity: dict[str, str], reserved: dict[str, str]) -> dict[str, str]:
    out = dict(capacity)
    for k, v in reserved.items():
        if k not in capacity:
            continue
        left = max(Decimal(0), parse_quantity(capacity[k]) - parse_quantity(v))
        if k == "cpu":
            milli = int(left * 1000)
            out[k] = str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
        elif k in ("memory", "ephemeral-storage"):
            out[k] = f"{int(left) // 1024}Ki" if int(left) % 1024 == 0 else str(int(left))
        else:
            out[k] = format_quantity(left)
    return out


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _machine_id() -> str:
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            return Path(p).read_text().strip()
    return ""


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def node_info(runtime_version: str) -> Obj:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "machineID": _machine_id(),
        "systemUUID": _machine_id(),
        "bootID": _boot_id(),
        "kernelVersion": platform.release(),
        "osImage": _os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": arch,
    }


def pressure(data_dir: Path) -> dict[str, bool]:
    """Which of memory/disk/pid pressure holds now (kubelet's default eviction thresholds)."""
    mi = _meminfo()
    mem = mi.get("MemAvailable", 1 << 62) < 100 * 1024 * 1024
    try:
        st = os.statvfs(data_dir)
        disk = st.f_bavail < st.f_blocks * 0.10
    except OSError:
        disk = False
    pid = False
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        procs = sum(1 for d in os.listdir("/proc") if d.isdigit())
        pid = procs > pid_max * 0.9
    except (OSError, ValueError):
        pass
    return {"memory": mem, "disk": disk, "pid": pid}


_CONDITIONS = {
    "MemoryPressure": (("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
                       ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")),
    "DiskPressure": (("KubeletHasDiskPressure", "kubelet has disk pressure"),
                     ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")),
    "PIDPressure": (("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
                    ("KubeletHasSufficientPID", "kubelet has sufficient PID available")),
}


def node_conditions(press: dict[str, bool], ready: bool, not_ready_message: str, now: str, old: list[Obj]) -> list[Obj]:
    prev = {c.get("type"): c for c in old or ()}

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        p = prev.get(type_)
        ltt = p.get("lastTransitionTime") if p and p.get("status") == status and p.get("lastTransitionTime") else now
        return {"type": type_, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": ltt,
                "reason": reason, "message": message}

    out = []
    for (type_, (yes, no)), flag in zip(_CONDITIONS.items(), (press["memory"], press["disk"], press["pid"]), strict=True):
        reason, msg = yes if flag else no
        out.append(cond(type_, "True" if flag else "False", reason, msg))
    if ready:
        out.append(cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    else:
        out.append(cond("Ready", "False", "KubeletNotReady", not_ready_message))
    return out


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_micro() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeRegistration:
    """Registers the node and keeps its status and Lease fresh; see the module docstring."""

    def __init__(
        self,
        client: Client,
        name: str,
        *,
        data_dir: Path,
        internal_ip: str,
        runtime_version: str,
        reserved: dict[str, str] | None = None,
        heartbeat_interval: float = 10.0,
        lease_duration: int = 40,
        status_report_interval: float = 60.0,
        pod_cidr: str = "",
    ) -> None:
        self.client = client
        self.name = name
        self.data_dir = data_dir
        self.internal_ip = internal_ip
        self.runtime_version = runtime_version
        self.reserved = reserved or {}
        self.heartbeat_interval = heartbeat_interval
        self.lease_duration = lease_duration
        self.status_report_interval = status_report_interval
        self.pod_cidr = pod_cidr
        self.capacity = host_capacity(data_dir)
        self.allocatable = allocatable(self.capacity, self.reserved)
        self.ready = True
        self.not_ready_message = ""
        self.uid = ""
        self.node: Obj | None = None  # the Node as last written or read
        self._last_status = 0.0
        self._last_flags: tuple[bool, ...] = ()

    def labels(self) -> dict[str, str]:
        arch = node_info("")["architecture"]
        return {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
        }

    def status(self, old: Obj | None = None) -> Obj:
        press = pressure(self.data_dir)
        self._last_flags = (press["memory"], press["disk"], press["pid"], self.ready)
        return {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.allocatable),
            "conditions": node_conditions(press, self.ready, self.not_ready_message, _now(),
                                          ((old or {}).get("status") or {}).get("conditions") or []),
            "addresses": [{"type": "InternalIP", "address": self.internal_ip},
                          {"type": "Hostname", "address": self.name}],
            "nodeInfo": node_info(self.runtime_version),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        }

    async def register(self) -> Obj:
        """Create the Node, or update an existing one (labels, status); returns it."""
        spec: Obj = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]} if self.pod_cidr else {}
        body: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.name, "labels": self.labels()}, "spec": spec}
        try:
            node = await self.client.create(NODES, {**body, "status": await asyncio.to_thread(self.status)})
        except APIError as e:
            if e.code != 409:
                raise
            cur = await self.client.get(NODES, self.name)
            await self.client.patch(NODES, self.name, {"metadata": {"labels": self.labels()}}, "merge")
            node = await self.client.patch(NODES, self.name, {"status": await asyncio.to_thread(self.status, cur)},
                                           "merge", subresource="status")
        self.uid = node["metadata"]["uid"]
        self.node = node
        self._last_status = time.monotonic()
        log.info("node registered", extra={"node": self.name, "capacity": self.capacity,
                                           "allocatable": self.allocatable})
        return node

    async def post_status(self) -> None:
        cur = await self.client.get(NODES, self.name)
        self.uid = cur["metadata"]["uid"]
        status = await asyncio.to_thread(self.status, cur)
        self.node = await self.client.patch(NODES, self.name, {"status": status}, "merge", subresource="status")
        self._last_status = time.monotonic()

    async def renew_lease(self) -> None:
        now = _now_micro()
        try:
            await self.client.patch(
                LEASES, self.name,
                {"spec": {"renewTime": now, "holderIdentity": self.name,
                          "leaseDurationSeconds": self.lease_duration}},
                "merge", namespace=LEASE_NAMESPACE,
            )
        except APIError as e:
            if e.code != 404:
                raise
            lease: Obj = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                                  "uid": self.uid}] if self.uid else []},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.lease_duration,
                         "renewTime": now, "acquireTime": now},
            }
            await self.client.create(LEASES, lease)

    async def run(self) -> None:
        """Heartbeat until cancelled (the node is registered first if needed)."""
        while True:
            try:
                if not self.uid:
                    await self.register()
                await self.renew_lease()
                press = await asyncio.to_thread(pressure, self.data_dir)
                flags = (press["memory"], press["disk"], press["pid"], self.ready)
                node = self.node = await self.client.get(NODES, self.name)
                ready_now = any(c.get("type") == "Ready" and c.get("status") == "True"
                                for c in (node.get("status") or {}).get("conditions") or ())
                if (flags != self._last_flags or ready_now != self.ready
                        or time.monotonic() - self._last_status >= self.status_report_interval):
                    await self.post_status()
            except asyncio.CancelledError:
                raise
            except APIError as e:
                if e.code == 404:
                    self.uid = ""  # the Node was deleted: register again
                log.warning("node heartbeat failed", extra={"node": self.name, "error": e.message})
            except Exception:
                log.exception("node heartbeat failed", extra={"node": self.name})
            await asyncio.sleep(self.heartbeat_interval)
