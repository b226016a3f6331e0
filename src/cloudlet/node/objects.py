"""Shapes of what a hollow node posts: its Node object, its Lease, a running pod's status.

Pure functions over plain dicts (Kubernetes JSON shape), shared by the
in-server :class:`~cloudlet.node.hollow.HollowNodes` manager and the
``cloudlet node add --hollow`` command, so both register identical nodes.

A hollow node is any Node carrying the annotation :data:`HOLLOW_ANNOTATION`
(``node.cloudlet.dev/hollow: "true"``); the label ``type=hollow`` is for
humans and selectors (``kubectl get nodes -l type=hollow``). Annotating a
hollow node ``node.cloudlet.dev/hollow-stopped: "true"`` (:data:`STOPPED_ANNOTATION`,
what ``cloudlet node stop`` does) halts it from outside the server process;
removing the annotation resumes it.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

HOLLOW_ANNOTATION = "node.cloudlet.dev/hollow"
STOPPED_ANNOTATION = "node.cloudlet.dev/hollow-stopped"  # "true": the manager halts this node
HOLLOW_LABEL = ("type", "hollow")
LEASE_NAMESPACE = "kube-node-lease"
NODE_NAME_PREFIX = "hollow-node-"
KUBELET_VERSION = "v1.30.0-hollow"

_HOST_NET = ipaddress.IPv4Network("10.250.0.0/16")


@dataclass(frozen=True, slots=True)
class HollowSpec:
    """Capacity a hollow node reports (Kubernetes quantity strings)."""

    cpu: str = "32"
    memory: str = "256Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """``MicroTime`` as Leases carry it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_hollow(node: Obj) -> bool:
    ann = (node.get("metadata") or {}).get("annotations") or {}
    return ann.get(HOLLOW_ANNOTATION) == "true"


def is_stopped(node: Obj) -> bool:
    ann = (node.get("metadata") or {}).get("annotations") or {}
    return ann.get(STOPPED_ANNOTATION) == "true"


def host_ip(name: str) -> str:
    """A stable fake InternalIP for node ``name`` (10.250.0.0/16, hashed)."""
    offset = zlib.crc32(name.encode()) % (_HOST_NET.num_addresses - 2) + 1
    return str(_HOST_NET.network_address + offset)


def node_ready_conditions(now: str) -> list[Obj]:
    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {"type": type_, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": now,
                "reason": reason, "message": message}

    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def node_status(name: str, spec: HollowSpec, now: str | None = None) -> Obj:
    now = now or now_rfc3339()
    resources = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.pods),
                 "ephemeral-storage": spec.ephemeral_storage}
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": node_ready_conditions(now),
        "addresses": [{"type": "InternalIP", "address": host_ip(name)}, {"type": "Hostname", "address": name}],
        "nodeInfo": {
            "machineID": f"hollow-{zlib.crc32(name.encode()):08x}", "systemUUID": "", "bootID": "",
            "kernelVersion": "hollow", "osImage": "cloudlet hollow node", "containerRuntimeVersion": "hollow://0.1",
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux", "architecture": "amd64",
        },
    }


def node_object(name: str, spec: HollowSpec, labels: dict[str, str] | None = None) -> Obj:
    """The Node a hollow node registers with (status included)."""
    all_labels = {
        HOLLOW_LABEL[0]: HOLLOW_LABEL[1],
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    all_labels.update(labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels, "annotations": {HOLLOW_ANNOTATION: "true"}},
        "spec": {},
        "status": node_status(name, spec),
    }


def lease_object(name: str, duration: int) -> Obj:
    now = now_micro()
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": duration, "renewTime": now, "acquireTime": now},
    }


def is_node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def is_pod_running_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def running_pod_status(pod: Obj, host: str, pod_ip: str, now: str | None = None) -> Obj:
    """The status a kubelet would post once every container of ``pod`` runs and is ready."""
    now = now or now_rfc3339()
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    uid = (pod.get("metadata") or {}).get("uid", "")

    def cond(type_: str) -> Obj:
        return {"type": type_, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}

    def container(ctr: Obj, state: Obj, ready: bool) -> Obj:
        image = ctr.get("image", "")
        return {
            "name": ctr.get("name", ""), "image": image, "imageID": f"hollow://{image}",
            "containerID": f"hollow://{uid}/{ctr.get('name', '')}", "ready": ready, "started": ready,
            "restartCount": 0, "state": state, "lastState": {},
        }

    out: Obj = {
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                       cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": host,
        "hostIPs": [{"ip": host}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": old.get("startTime") or now,
        "containerStatuses": [container(c, {"running": {"startedAt": now}}, True)
                              for c in spec.get("containers") or ()],
    }
    inits = spec.get("initContainers") or ()
    if inits:
        done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
        out["initContainerStatuses"] = [container(c, done, False) for c in inits]
    if old.get("qosClass"):
        out["qosClass"] = old["qosClass"]
    return out
