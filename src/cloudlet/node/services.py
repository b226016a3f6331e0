"""Service plumbing of the node: the service proxy and cluster DNS for its pods.

:class:`NodeServices` runs, over one informer factory of Services and
EndpointSlices, the nftables :class:`~cloudlet.network.proxy.ServiceProxy` and
the :class:`~cloudlet.network.dns.ClusterDNS` server listening on the pod
bridge's address (port 53, UDP and TCP) — the address pods reach the host on,
so it is their ``nameserver``. It also hands the pod workers what they need
from it: :meth:`resolv_conf` (per ``dnsPolicy``) and :meth:`service_env`.

When the DNS port cannot be bound the node logs it and pods fall back to the
host's resolvers (``ClusterFirst`` then behaves as ``Default``), as a kubelet
without ``--cluster-dns`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.interface import Client, ResourceRef
from cloudlet.network.dns import ClusterDNS, resolv_conf
from cloudlet.network.proxy import ServiceProxy
from cloudlet.network.serviceenv import service_env

log = logging.getLogger("cloudlet.node.services")

SERVICES = ResourceRef("", "v1", "services")
ENDPOINT_SLICES = ResourceRef("discovery.k8s.io", "v1", "endpointslices")


class NodeServices:
    def __init__(
        self,
        client: Client,
        *,
        instance: str,
        bridge: str | None,
        dns_address: str | None,
        dns_port: int = 53,
        domain: str = "cluster.local",
        service_cidr: str = "10.96.0.0/12",
    ) -> None:
        self.factory = SharedInformerFactory(client)
        self.services = self.factory.informer(SERVICES)
        self.slices = self.factory.informer(ENDPOINT_SLICES)
        self.proxy = ServiceProxy(self.services, self.slices, instance=instance, bridge=bridge, service_cidr=service_cidr)
        self.dns = ClusterDNS(self.services, self.slices, domain=domain)
        self.domain = domain
        self.dns_address = dns_address
        self.dns_port = dns_port
        self.cluster_dns: str | None = None  # set once the server listens
        self.host_resolv = ""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with contextlib.suppress(OSError):
            self.host_resolv = await asyncio.to_thread(Path("/etc/resolv.conf").read_text)
        self.factory.start()
        await self.proxy.start()
        self._task = asyncio.create_task(self.proxy.run(), name="service-proxy")
        if self.dns_address:
            try:
                await self.dns.serve(self.dns_address, self.dns_port)
                self.cluster_dns = self.dns_address
            except OSError as e:
                log.warning("cluster DNS could not listen; pods use the host's resolvers",
                            extra={"address": f"{self.dns_address}:{self.dns_port}", "error": str(e)})
        await asyncio.gather(self.services.wait_synced(), self.slices.wait_synced())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.dns.close()
        await self.factory.shutdown()

    def resolv_conf(self, pod: dict[str, Any]) -> str:
        return resolv_conf(pod, cluster_dns=self.cluster_dns, domain=self.domain, host_resolv=self.host_resolv)

    def service_env(self, pod: dict[str, Any]) -> dict[str, str]:
        spec = pod.get("spec") or {}
        ns = (pod.get("metadata") or {}).get("namespace") or "default"
        return service_env(self.services.list(), ns, spec.get("enableServiceLinks", True) is not False)
