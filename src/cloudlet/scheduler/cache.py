"""The scheduler's view of the cluster: one :class:`NodeInfo` per node.

Fed by the node and pod informers, plus *assumed* pods: a pod the scheduler
has chosen a node for counts against that node at once, before its binding
is written and watched back, so the next cycle never double-books. When the
bound pod arrives from the watch it replaces the assumed copy; when binding
fails :meth:`forget` takes it back out. Terminated pods (Succeeded, Failed)
and pods whose node is unknown hold nothing.

Per pod the cache keeps a :class:`PodInfo` (its effective requests, the
non-zero scoring requests and host ports, computed once): an update that does
not change the pod's resources (a status write, a label) just swaps the
object, so the thousands of status updates a busy cluster sends cost no
quantity parsing and no re-accounting.

Nominated pods (preemptors waiting for their victims to go; kube-scheduler's
*nominator*) are kept per node so lower-or-equal priority pods do not take the
room made for them; :attr:`ClusterCache.nominated_pods` maps each nominated
pod to its node.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudlet.scheduler import resources as res
from cloudlet.scheduler.framework import NodeInfo, Obj
from cloudlet.scheduler.queue import pod_key


def _active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _resource_fields(pod: Obj) -> tuple[object, object, object]:
    spec = pod.get("spec") or {}
    return spec.get("containers"), spec.get("initContainers"), spec.get("overhead")


@dataclass(slots=True)
class PodInfo:
    """A pod with what it takes from its node, computed once per spec."""

    pod: Obj
    node: str
    requests: dict[str, int]
    nonzero: dict[str, int]
    ports: list[tuple[str, str, int]]


def pod_info(pod: Obj, node: str = "") -> PodInfo:
    req = res.pod_requests(pod)
    return PodInfo(pod, node, req, res.nonzero_requests(req), res.host_ports(pod))


class ClusterCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.infos: dict[str, PodInfo] = {}  # bound or assumed pods, by key
        self.assumed: set[str] = set()
        self.nominated: dict[str, dict[str, tuple[Obj, int]]] = {}  # node -> key -> (pod, priority)
        self.nominated_pods: dict[str, str] = {}  # key -> node
        self._nominated_infos: dict[str, PodInfo] = {}
        self._node_list: list[NodeInfo] | None = None
        self._views: dict[str, tuple[int, tuple[str, ...], NodeInfo]] = {}

    @property
    def pods(self) -> dict[str, Obj]:
        """Bound or assumed pods by key (a fresh dict)."""
        return {k: i.pod for k, i in self.infos.items()}

    @property
    def pod_node(self) -> dict[str, str]:
        return {k: i.node for k, i in self.infos.items()}

    def node_list(self) -> list[NodeInfo]:
        """Every NodeInfo in a stable order (rebuilt only when nodes come or go)."""
        if self._node_list is None:
            self._node_list = list(self.nodes.values())
        return self._node_list

    # --- nodes ------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            ni = NodeInfo(node)
            self.nodes[name] = ni
            self._node_list = None
            for info in self.infos.values():
                if info.node == name:
                    self._add(ni, info)
        else:
            ni.set_node(node)
        ni.allocatable = res.node_allocatable(node)
        ni.sync()
        ni.generation += 1

    def remove_node(self, name: str) -> None:
        if self.nodes.pop(name, None) is not None:
            self._node_list = None
        self._views.pop(name, None)

    # --- pods -------------------------------------------------------------------

    def info_of(self, pod: Obj) -> PodInfo:
        """The cached :class:`PodInfo` when ``pod`` is the cached object, else a fresh one."""
        key = pod_key(pod)
        info = self.infos.get(key) or self._nominated_infos.get(key)
        if info is not None and info.pod is pod:
            return info
        return pod_info(pod)

    def view(self, ni: NodeInfo, key: str, priority: int) -> NodeInfo:
        """``ni`` plus the pods nominated to it with at least ``priority`` other
        than ``key`` (what a pod of that priority must leave room for).
        Views are cached until the node or its nominations change."""
        nominated = self.nominated.get(ni.name)
        if not nominated:
            return ni
        extra = tuple(k for k, (_p, prio) in nominated.items() if k != key and prio >= priority)
        if not extra:
            return ni
        cached = self._views.get(ni.name)
        if cached is not None and cached[0] == ni.generation and cached[1] == extra:
            return cached[2]
        view = ni.copy()
        for k in extra:
            self._add(view, self._nominated_infos.get(k) or pod_info(nominated[k][0]))
        self._views[ni.name] = (ni.generation, extra, view)
        return view

    @staticmethod
    def _add(ni: NodeInfo, info: PodInfo) -> None:
        req, nz = ni.requested, ni.nonzero
        for k, v in info.requests.items():
            req[k] = req.get(k, 0) + v
        for k, v in info.nonzero.items():
            nz[k] = nz.get(k, 0) + v
        ni.pods[pod_key(info.pod)] = info.pod
        if info.ports:
            ni.ports.update(info.ports)
        ni.sync()
        ni.generation += 1

    def _remove(self, ni: NodeInfo, info: PodInfo) -> None:
        req, nz = ni.requested, ni.nonzero
        for k, v in info.requests.items():
            req[k] = req.get(k, 0) - v
        for k, v in info.nonzero.items():
            nz[k] = nz.get(k, 0) - v
        ni.pods.pop(pod_key(info.pod), None)
        if info.ports:
            ni.ports = {p for q in ni.pods.values() for p in self.info_of(q).ports}
        ni.sync()
        ni.generation += 1

    def _account(self, ni: NodeInfo, pod: Obj, sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) ``pod`` on ``ni`` (a view or a copy)."""
        info = self.info_of(pod)
        if sign > 0:
            self._add(ni, info)
        else:
            self._remove(ni, info)

    def set_pod(self, pod: Obj) -> None:
        """A pod from the informer (bound or not) or an assumed one."""
        key = pod_key(pod)
        node = (pod.get("spec") or {}).get("nodeName") or ""
        old = self.infos.get(key)
        if not node or not _active(pod):
            self.remove_pod(key)
            return
        self.assumed.discard(key)
        if old is not None and old.node == node and _resource_fields(old.pod) == _resource_fields(pod):
            old.pod = pod  # same node, same resources: swap the object only
            ni = self.nodes.get(node)
            if ni is not None:
                ni.pods[key] = pod
                ni.generation += 1
            return
        self.remove_pod(key)
        info = pod_info(pod, node)
        self.infos[key] = info
        ni = self.nodes.get(node)
        if ni is not None:
            self._add(ni, info)

    def assume(self, pod: Obj, node: str) -> None:
        bound = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}}
        self.set_pod(bound)
        self.assumed.add(pod_key(pod))

    def forget(self, key: str) -> None:
        if key in self.assumed:
            self.remove_pod(key)

    def remove_pod(self, key: str) -> None:
        self.assumed.discard(key)
        info = self.infos.pop(key, None)
        if info is not None and info.node in self.nodes:
            self._remove(self.nodes[info.node], info)

    # --- nominations (the nominator) ---------------------------------------------

    def nominate(self, pod: Obj, node: str, priority: int) -> None:
        key = pod_key(pod)
        self.clear_nomination(key)
        self.nominated.setdefault(node, {})[key] = (pod, priority)
        self.nominated_pods[key] = node
        self._nominated_infos[key] = pod_info(pod)

    def nominated_node(self, key: str) -> str | None:
        return self.nominated_pods.get(key)

    def clear_nomination(self, key: str) -> None:
        node = self.nominated_pods.pop(key, None)
        if node is None:
            return
        self._nominated_infos.pop(key, None)
        self._views.pop(node, None)
        pods = self.nominated.get(node)
        if pods is not None:
            pods.pop(key, None)
            if not pods:
                del self.nominated[node]
