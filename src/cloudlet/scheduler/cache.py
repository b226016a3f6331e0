"""The scheduler's view of the cluster: one :class:`NodeInfo` per node.

Fed by the node and pod informers, plus *assumed* pods: a pod the scheduler
has chosen a node for counts against that node at once, before its binding
is written and watched back, so the next cycle never double-books. When the
bound pod arrives from the watch it replaces the assumed copy; when binding
fails :meth:`forget` takes it back out. Terminated pods (Succeeded, Failed)
and pods whose node is unknown hold nothing. Nominated pods (preemptors
waiting for their victims to go) are kept per node so lower-or-equal
priority pods do not take the room made for them.
"""

from __future__ import annotations

from cloudlet.scheduler import resources as res
from cloudlet.scheduler.framework import NodeInfo, Obj
from cloudlet.scheduler.queue import pod_key


def _active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


class ClusterCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.pod_node: dict[str, str] = {}
        self.pods: dict[str, Obj] = {}  # bound or assumed pods, by key
        self.assumed: set[str] = set()
        self.nominated: dict[str, dict[str, tuple[Obj, int]]] = {}  # node -> key -> (pod, priority)

    # --- nodes ------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            ni = NodeInfo(node)
            self.nodes[name] = ni
            for key, n in self.pod_node.items():
                if n == name:
                    self._account(ni, self.pods[key], +1)
        ni.node = node
        ni.allocatable = res.node_allocatable(node)
        ni.generation += 1

    def remove_node(self, name: str) -> None:
        self.nodes.pop(name, None)

    # --- pods -------------------------------------------------------------------

    def _account(self, ni: NodeInfo, pod: Obj, sign: int) -> None:
        req = res.pod_requests(pod)
        for k, v in req.items():
            ni.requested[k] = ni.requested.get(k, 0) + sign * v
        for k, v in res.nonzero_requests(req).items():
            ni.nonzero[k] = ni.nonzero.get(k, 0) + sign * v
        key = pod_key(pod)
        if sign > 0:
            ni.pods[key] = pod
            ni.ports.update(res.host_ports(pod))
        else:
            ni.pods.pop(key, None)
            ni.ports = {p for q in ni.pods.values() for p in res.host_ports(q)}
        ni.generation += 1

    def set_pod(self, pod: Obj) -> None:
        """A pod from the informer (bound or not) or an assumed one."""
        key = pod_key(pod)
        node = (pod.get("spec") or {}).get("nodeName") or ""
        self.remove_pod(key)
        if not node or not _active(pod):
            return
        self.assumed.discard(key)
        self.pods[key] = pod
        self.pod_node[key] = node
        ni = self.nodes.get(node)
        if ni is not None:
            self._account(ni, pod, +1)

    def assume(self, pod: Obj, node: str) -> None:
        bound = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}}
        self.set_pod(bound)
        self.assumed.add(pod_key(pod))

    def forget(self, key: str) -> None:
        if key in self.assumed:
            self.remove_pod(key)

    def remove_pod(self, key: str) -> None:
        self.assumed.discard(key)
        node = self.pod_node.pop(key, None)
        pod = self.pods.pop(key, None)
        if node is not None and pod is not None and node in self.nodes:
            self._account(self.nodes[node], pod, -1)

    # --- nominations ------------------------------------------------------------

    def nominate(self, pod: Obj, node: str, priority: int) -> None:
        self.clear_nomination(pod_key(pod))
        self.nominated.setdefault(node, {})[pod_key(pod)] = (pod, priority)

    def nominated_node(self, key: str) -> str | None:
        for node, pods in self.nominated.items():
            if key in pods:
                return node
        return None

    def clear_nomination(self, key: str) -> None:
        for node in list(self.nominated):
            self.nominated[node].pop(key, None)
            if not self.nominated[node]:
                del self.nominated[node]
