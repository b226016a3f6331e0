"""Networking on the node: the CNI pod network, the service proxy and cluster DNS.

* ``netns``, ``cni`` — :class:`~cloudlet.network.cni.PodNetwork` gives each pod
  sandbox a network namespace wired by the standard CNI plugins;
* ``proxy`` — :class:`~cloudlet.network.proxy.ServiceProxy`, ClusterIP and
  NodePort services as nftables DNAT rules;
* ``dns`` — :class:`~cloudlet.network.dns.ClusterDNS` and pod ``resolv.conf``;
* ``serviceenv`` — the ``FOO_SERVICE_HOST`` style variables.
"""

from __future__ import annotations

from cloudlet.network.cni import CNIError, NetworkError, PodNetwork, PodNetworkInfo

__all__ = ["CNIError", "NetworkError", "PodNetwork", "PodNetworkInfo"]
