"""Resource arithmetic for scheduling: requests, allocatable, host ports.

Quantities become integers: cpu in millicores, everything else in its base
unit rounded up (``ceil``). A pod's effective request per resource is
``max(sum of containers, max of initContainers)`` plus its RuntimeClass
``overhead.podFixed`` (Kubernetes' ``PodRequests``); ``pods`` counts 1.
Malformed quantities count as 0 (validation rejects them at the API).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from cloudlet.resources.quantity import parse_quantity

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL = "ephemeral-storage"
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def to_int(name: str, value: Any) -> int:
    try:
        q = parse_quantity(value)
    except Exception:
        return 0
    if name == CPU:
        q = q * 1000
    return int(math.ceil(q))


def resource_list(rl: Any) -> dict[str, int]:
    if not isinstance(rl, dict):
        return {}
    return {str(k): to_int(str(k), v) for k, v in rl.items()}


def _container_requests(c: Obj) -> dict[str, int]:
    res = c.get("resources") or {}
    req = resource_list(res.get("requests"))
    # a limit without a request means request = limit (API defaulting does this too)
    for k, v in resource_list(res.get("limits")).items():
        req.setdefault(k, v)
    return req


def pod_requests(pod: Obj, overhead: Obj | None = None) -> dict[str, int]:
    """Effective requests of ``pod`` (``overhead``: ``podFixed`` of its RuntimeClass)."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or ():
        for k, v in _container_requests(c).items():
            total[k] = total.get(k, 0) + v
    for c in spec.get("initContainers") or ():
        for k, v in _container_requests(c).items():
            if v > total.get(k, 0):
                total[k] = v
    podfixed = overhead if overhead is not None else spec.get("overhead")
    for k, v in resource_list(podfixed).items():
        total[k] = total.get(k, 0) + v
    total[PODS] = 1
    return total


def nonzero_requests(req: dict[str, int]) -> dict[str, int]:
    """Requests as scoring sees them: missing cpu/memory count as 100m/200Mi."""
    return {CPU: req.get(CPU) or DEFAULT_MILLI_CPU, MEMORY: req.get(MEMORY) or DEFAULT_MEMORY}


def host_ports(pod: Obj) -> list[tuple[str, str, int]]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            hp = p.get("hostPort")
            if hp:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
    return out


def node_allocatable(node: Obj) -> dict[str, int]:
    status = node.get("status") or {}
    return resource_list(status.get("allocatable") or status.get("capacity"))


OverheadLookup = Callable[[Obj], "Obj | None"]
