"""Server-side table printers for the built-in kinds.

``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and
prints whatever ``columnDefinitions`` and row ``cells`` the server returns. The
kube-apiserver fills those from its built-in printers; this module reproduces
their column sets (names, types, formats, priorities) and their cell logic for
cloudlet's built-in kinds, so ``kubectl get pods`` / ``-o wide`` read exactly as
on a real cluster.

:data:`TABLES` maps ``"group/plural"`` (core group is ``""``, e.g. ``"/pods"``)
to ``(columns, row)``. ``row(obj, now=None)`` takes a plain Kubernetes-shaped
dict and returns one cell per column, in column order. Like the kube-apiserver,
every row carries the wide (priority 1) cells too; kubectl hides them unless
``-o wide``. Cells are ``str``, ``int`` or ``bool`` (for ``boolean`` columns).

Notes on fidelity:

* Column names keep Kubernetes' spelling (``Up-to-date``, ``Port(s)``);
  kubectl upper-cases them when printing.
* Events follow Kubernetes' event column set, where ``Name`` is the last
  column (priority 1) rather than the first.
* The printers see stored, defaulted objects. Where a field that Kubernetes
  always defaults is missing (pod phase, service type, port protocol,
  replicas, HPA ``minReplicas``/metrics), the Kubernetes default is assumed.
* ``now`` (Unix seconds) pins the clock for ages; ``None`` means the current
  time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from cloudlet.resources.registry import AGE_COLUMN, NAME_COLUMN, Column

Obj = dict[str, Any]
Row = Callable[..., list[Any]]

__all__ = ["TABLES", "age", "human_duration", "pod_row_conditions", "translate_timestamp"]

NONE = "<none>"
UNKNOWN = "<unknown>"
UNSET = "<unset>"

_NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
_NODE_ROLE_LABEL = "kubernetes.io/role"
_NODE_UNREACHABLE_REASON = "NodeLost"
_DEFAULT_CPU_UTILIZATION = 80


# --------------------------------------------------------------------------- time


def human_duration(seconds: float) -> str:
    """Format a duration the way Kubernetes' ``duration.HumanDuration`` does.

    Precision shrinks as the duration grows: ``45s``, ``3m20s``, ``10m``,
    ``3h5m``, ``10h``, ``5d3h``, ``30d``, ``2y30d``, ``9y``. Up to one second
    of negative skew reads as ``0s``; more than that is ``<invalid>``.
    """
    whole = int(seconds)  # truncates toward zero, like Go's int(d.Seconds())
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        secs = whole % 60
        return f"{minutes}m" if secs == 0 else f"{minutes}m{secs}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        mins = minutes % 60
        return f"{hours}h" if mins == 0 else f"{hours}h{mins}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d" if rem == 0 else f"{hours // 24}d{rem}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> float | None:
    """RFC 3339 timestamp (``2026-11-29T22:11:28Z``, optional fraction) -> Unix seconds."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def translate_timestamp(value: Any, now: float | None = None) -> str:
    """Elapsed time since an RFC 3339 timestamp, or ``<unknown>`` when unset."""
    stamp = _parse_time(value)
    if stamp is None:
        return UNKNOWN
    return human_duration((time.time() if now is None else now) - stamp)


def age(obj: Mapping[str, Any], now: float | None = None) -> str:
    """The ``Age`` cell: time since ``metadata.creationTimestamp``."""
    return translate_timestamp(_meta(obj).get("creationTimestamp"), now)


# ----------------------------------------------------------------------- helpers


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _meta(obj: Mapping[str, Any]) -> Obj:
    return _d(obj.get("metadata"))


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _quantity(value: Any) -> str:
    """A resource quantity as text (quantities are stored as strings already)."""
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, ``<none>`` when empty."""
    items = _d(labels)
    if not items:
        return NONE
    return ",".join(f"{k}={items[k]}" for k in sorted(items))


class _BadSelector(ValueError):
    pass


def _selector_string(selector: Any) -> str:
    """A LabelSelector rendered like ``labels.Selector.String()`` (``""`` for none).

    Raises :class:`_BadSelector` for expressions Kubernetes would reject.
    """
    sel = _d(selector)
    reqs: list[tuple[str, str]] = []
    for key, value in _d(sel.get("matchLabels")).items():
        reqs.append((str(key), f"{key}={value}"))
    for expr in _l(sel.get("matchExpressions")):
        expr = _d(expr)
        key = str(expr.get("key") or "")
        op = expr.get("operator")
        values = [str(v) for v in _l(expr.get("values"))]
        if op in ("In", "NotIn"):
            if not values:
                raise _BadSelector(key)
            word = "in" if op == "In" else "notin"
            reqs.append((key, f"{key} {word} ({','.join(sorted(values))})"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise _BadSelector(key)
            reqs.append((key, key if op == "Exists" else f"!{key}"))
        else:
            raise _BadSelector(key)
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _key, text in reqs)


def _format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` when empty, ``<error>`` when invalid."""
    try:
        text = _selector_string(selector)
    except _BadSelector:
        return "<error>"
    return text or NONE


def _container_cells(pod_spec: Any) -> tuple[str, str]:
    containers = [_d(c) for c in _l(_d(pod_spec).get("containers"))]
    names = ",".join(str(c.get("name") or "") for c in containers)
    images = ",".join(str(c.get("image") or "") for c in containers)
    return names, images


def _template_spec(obj: Mapping[str, Any]) -> Obj:
    return _d(_d(_d(obj.get("spec")).get("template")).get("spec"))


def _join_host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _list_with_more(items: list[str], more: bool, count: int, maximum: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - maximum} more..."
    return text or UNSET


def _col(name: str, description: str, type_: str = "string", priority: int = 0) -> Column:
    return Column(name, type_, "", description, priority)


def _wide(name: str, description: str, type_: str = "string") -> Column:
    return _col(name, description, type_, priority=1)


_CONTAINERS = _wide("Containers", "Container names in the pod template.")
_IMAGES = _wide("Images", "Container images in the pod template.")


# --------------------------------------------------------------------------- pods


def _is_restartable_init(container: Any) -> bool:
    return isinstance(container, dict) and container.get("restartPolicy") == "Always"


def _has_condition(conditions: Iterable[Any], type_: str) -> bool:
    return any(_d(c).get("type") == type_ and _d(c).get("status") == "True" for c in conditions)


def _terminated_reason(term: Obj, prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    signal = _int(term.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(term.get('exitCode'))}"


def _pod_row(obj: Obj, now: float | None = None) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    conditions = _l(status.get("conditions"))
    containers = _l(spec.get("containers"))
    init_specs = [_d(c) for c in _l(spec.get("initContainers"))]
    init_by_name = {c.get("name"): c for c in init_specs}

    restarts = 0
    sidecar_restarts = 0
    total = len(containers) + sum(1 for c in init_specs if _is_restartable_init(c))
    ready = 0
    last_restart: float | None = None
    last_sidecar_restart: float | None = None

    phase = str(status.get("phase") or "Pending")
    reason = str(status.get("reason") or phase)
    for cond in conditions:
        cond = _d(cond)
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def later(current: float | None, cstatus: Obj) -> float | None:
        last_term = _d(cstatus.get("lastState")).get("terminated")
        if last_term is None:
            return current
        finished = _parse_time(_d(last_term).get("finishedAt"))
        if finished is not None and (current is None or finished > current):
            return finished
        return current

    initializing = False
    for index, raw in enumerate(_l(status.get("initContainerStatuses"))):
        cstatus = _d(raw)
        state = _d(cstatus.get("state"))
        count = _int(cstatus.get("restartCount"))
        restarts += count
        last_restart = later(last_restart, cstatus)
        sidecar = _is_restartable_init(init_by_name.get(cstatus.get("name")))
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = later(last_sidecar_restart, cstatus)
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated is not None and _int(_d(terminated).get("exitCode")) == 0:
            continue
        if sidecar and cstatus.get("started") is True:
            if cstatus.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            reason = _terminated_reason(_d(terminated), "Init:")
        elif (
            waiting is not None
            and _d(waiting).get("reason")
            and _d(waiting).get("reason") != "PodInitializing"
        ):
            reason = f"Init:{_d(waiting)['reason']}"
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for raw in reversed(_l(status.get("containerStatuses"))):
            cstatus = _d(raw)
            state = _d(cstatus.get("state"))
            restarts += _int(cstatus.get("restartCount"))
            last_restart = later(last_restart, cstatus)
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if waiting is not None and _d(waiting).get("reason"):
                reason = str(_d(waiting)["reason"])
            elif terminated is not None:
                reason = _terminated_reason(_d(terminated))
            elif cstatus.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(conditions, "Ready") else "NotReady"

    deleting = bool(_meta(obj).get("deletionTimestamp"))
    if deleting and status.get("reason") == _NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        since = (time.time() if now is None else now) - last_restart
        restarts_cell = f"{restarts} ({human_duration(since)} ago)"

    pod_ips = _l(status.get("podIPs"))
    pod_ip = str(_d(pod_ips[0]).get("ip") or "") if pod_ips else str(status.get("podIP") or "")

    gates = _l(spec.get("readinessGates"))
    gates_cell = NONE
    if gates:
        true_count = 0
        for gate in gates:
            wanted = _d(gate).get("conditionType")
            for cond in conditions:
                if _d(cond).get("type") == wanted:
                    if _d(cond).get("status") == "True":
                        true_count += 1
                    break
        gates_cell = f"{true_count}/{len(gates)}"

    return [
        _name(obj),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        age(obj, now),
        pod_ip or NONE,
        str(spec.get("nodeName") or "") or NONE,
        str(status.get("nominatedNodeName") or "") or NONE,
        gates_cell,
    ]


def pod_row_conditions(obj: Mapping[str, Any]) -> list[dict[str, str]]:
    """The ``conditions`` Kubernetes attaches to a pod's table row (finished pods)."""
    phase = _d(obj.get("status")).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


POD_COLUMNS = [
    NAME_COLUMN,
    _col("Ready", "Ready containers out of all containers in the pod."),
    _col("Status", "Summary of the pod's phase and its containers' states."),
    _col("Restarts", "Container restarts in the pod, and how long ago the latest one was."),
    AGE_COLUMN,
    _wide("IP", "The pod's primary IP address."),
    _wide("Node", "The node the pod is bound to."),
    _wide("Nominated Node", "The node the scheduler nominated while preempting for the pod."),
    _wide("Readiness Gates", "Readiness gates whose condition is True, out of all gates."),
]


# -------------------------------------------------------------------------- nodes


def _node_row(obj: Obj, now: float | None = None) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    info = _d(status.get("nodeInfo"))
    by_type = {_d(c).get("type"): _d(c) for c in _l(status.get("conditions"))}
    states: list[str] = []
    ready = by_type.get("Ready")
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    else:
        states.append("Unknown")
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")

    roles: set[str] = set()
    for key, value in _d(_meta(obj).get("labels")).items():
        if key.startswith(_NODE_ROLE_PREFIX):
            role = key[len(_NODE_ROLE_PREFIX) :]
            if role:
                roles.add(role)
        elif key == _NODE_ROLE_LABEL and value:
            roles.add(str(value))

    def address(kind: str) -> str:
        for addr in _l(status.get("addresses")):
            if _d(addr).get("type") == kind:
                return str(_d(addr).get("address") or "")
        return NONE

    return [
        _name(obj),
        ",".join(states),
        ",".join(sorted(roles)) or NONE,
        age(obj, now),
        str(info.get("kubeletVersion") or ""),
        address("InternalIP"),
        address("ExternalIP"),
        str(info.get("osImage") or "") or UNKNOWN,
        str(info.get("kernelVersion") or "") or UNKNOWN,
        str(info.get("containerRuntimeVersion") or "") or UNKNOWN,
    ]


NODE_COLUMNS = [
    NAME_COLUMN,
    _col("Status", "Whether the node is Ready, and whether scheduling onto it is disabled."),
    _col("Roles", "Roles taken from the node's node-role labels."),
    AGE_COLUMN,
    _col("Version", "The kubelet version the node reports."),
    _wide("Internal-IP", "The node's first InternalIP address."),
    _wide("External-IP", "The node's first ExternalIP address."),
    _wide("OS-Image", "The operating system image the node reports."),
    _wide("Kernel-Version", "The kernel version the node reports."),
    _wide("Container-Runtime", "The container runtime and version the node reports."),
]


# --------------------------------------------------------------------- namespaces


def _namespace_row(obj: Obj, now: float | None = None) -> list[Any]:
    phase = _d(obj.get("status")).get("phase")
    if not phase:
        phase = "Terminating" if _meta(obj).get("deletionTimestamp") else "Active"
    return [_name(obj), str(phase), age(obj, now)]


NAMESPACE_COLUMNS = [
    NAME_COLUMN,
    _col("Status", "The namespace phase: Active or Terminating."),
    AGE_COLUMN,
]


# ----------------------------------------------------------------------- services


def _service_external_ip(spec: Obj, status: Obj) -> str:
    svc_type = spec.get("type") or "ClusterIP"
    external = [str(ip) for ip in _l(spec.get("externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if svc_type == "LoadBalancer":
        found: set[str] = set()
        for ing in _l(_d(status.get("loadBalancer")).get("ingress")):
            ing = _d(ing)
            if ing.get("ip"):
                found.add(str(ing["ip"]))
            elif ing.get("hostname"):
                found.add(str(ing["hostname"]))
        lb = sorted(found)
        if external:
            return ",".join(lb + external)
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return UNKNOWN


def _service_ports(ports: Any) -> str:
    pieces = []
    for port in _l(ports):
        port = _d(port)
        protocol = port.get("protocol") or "TCP"
        node_port = _int(port.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{_int(port.get('port'))}:{node_port}/{protocol}")
        else:
            pieces.append(f"{_int(port.get('port'))}/{protocol}")
    return ",".join(pieces)


def _service_row(obj: Obj, now: float | None = None) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    cluster_ips = _l(spec.get("clusterIPs"))
    if cluster_ips:
        cluster_ip = str(cluster_ips[0])
    else:
        cluster_ip = str(spec.get("clusterIP") or "") or NONE
    return [
        _name(obj),
        str(spec.get("type") or "ClusterIP"),
        cluster_ip,
        _service_external_ip(spec, status),
        _service_ports(spec.get("ports")) or NONE,
        age(obj, now),
        _format_labels(spec.get("selector")),
    ]


SERVICE_COLUMNS = [
    NAME_COLUMN,
    _col("Type", "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName."),
    _col("Cluster-IP", "The virtual IP assigned to the service inside the cluster."),
    _col("External-IP", "Addresses the service is reachable on from outside the cluster."),
    _col("Port(s)", "Service ports as port[:nodePort]/protocol."),
    AGE_COLUMN,
    _wide("Selector", "Labels selecting the pods behind the service."),
]


# ---------------------------------------------------------------------- endpoints


def _endpoints_row(obj: Obj, now: float | None = None) -> list[Any]:
    subsets = _l(obj.get("subsets"))
    if not subsets:
        cell = NONE
    else:
        shown: list[str] = []
        maximum, more, count = 3, False, 0
        for subset in subsets:
            subset = _d(subset)
            addresses = [str(_d(a).get("ip") or "") for a in _l(subset.get("addresses"))]
            ports = _l(subset.get("ports"))
            if not ports:
                count += len(addresses)
                for ip in addresses:
                    if len(shown) == maximum:
                        more = True
                        break
                    shown.append(ip)
                continue
            for port in ports:
                count += len(addresses)
                for ip in addresses:
                    if len(shown) == maximum:
                        more = True
                        break
                    shown.append(_join_host_port(ip, _int(_d(port).get("port"))))
        cell = ",".join(shown)
        if more:
            cell = f"{cell} + {count - maximum} more..."
    return [_name(obj), cell, age(obj, now)]


ENDPOINTS_COLUMNS = [
    NAME_COLUMN,
    _col("Endpoints", "Ready addresses and ports backing the service (first three)."),
    AGE_COLUMN,
]


def _endpointslice_row(obj: Obj, now: float | None = None) -> list[Any]:
    maximum = 3
    ports: list[str] = []
    more, count = False, 0
    for port in _l(obj.get("ports")):
        port = _d(port)
        if len(ports) < maximum:
            if port.get("port") is not None:
                ports.append(str(_int(port["port"])))
            elif port.get("name") is not None:
                ports.append(str(port["name"]))
            else:
                ports.append("*")
        elif len(ports) == maximum:
            more = True
        count += 1
    ports_cell = _list_with_more(ports, more, count, maximum)

    addresses: list[str] = []
    more, count = False, 0
    for endpoint in _l(obj.get("endpoints")):
        for address in _l(_d(endpoint).get("addresses")):
            if len(addresses) < maximum:
                addresses.append(str(address))
            elif len(addresses) == maximum:
                more = True
            count += 1
    endpoints_cell = _list_with_more(addresses, more, count, maximum)

    return [
        _name(obj),
        str(obj.get("addressType") or ""),
        ports_cell,
        endpoints_cell,
        age(obj, now),
    ]


ENDPOINTSLICE_COLUMNS = [
    NAME_COLUMN,
    _col("AddressType", "The address family of the slice: IPv4, IPv6 or FQDN."),
    _col("Ports", "Ports exposed by the slice (first three)."),
    _col("Endpoints", "Endpoint addresses in the slice (first three)."),
    AGE_COLUMN,
]


# ----------------------------------------------------- configmaps, secrets, SAs


def _configmap_row(obj: Obj, now: float | None = None) -> list[Any]:
    count = len(_d(obj.get("data"))) + len(_d(obj.get("binaryData")))
    return [_name(obj), count, age(obj, now)]


CONFIGMAP_COLUMNS = [
    NAME_COLUMN,
    _col("Data", "Number of keys in data and binaryData."),
    AGE_COLUMN,
]


def _secret_row(obj: Obj, now: float | None = None) -> list[Any]:
    return [_name(obj), str(obj.get("type") or ""), len(_d(obj.get("data"))), age(obj, now)]


SECRET_COLUMNS = [
    NAME_COLUMN,
    _col("Type", "The secret type, e.g. Opaque or kubernetes.io/tls."),
    _col("Data", "Number of keys in data."),
    AGE_COLUMN,
]


def _serviceaccount_row(obj: Obj, now: float | None = None) -> list[Any]:
    return [_name(obj), len(_l(obj.get("secrets"))), age(obj, now)]


SERVICEACCOUNT_COLUMNS = [
    NAME_COLUMN,
    _col("Secrets", "Number of secrets listed on the service account."),
    AGE_COLUMN,
]


# ------------------------------------------------------------------------- events


def _as_core_event(obj: Obj) -> Obj:
    """Map an events.k8s.io/v1 Event onto core/v1 Event fields (core Events pass through)."""
    api_version = str(obj.get("apiVersion") or "")
    is_new_api = api_version.startswith("events.k8s.io/") or (
        not api_version and "involvedObject" not in obj and ("regarding" in obj or "note" in obj)
    )
    if not is_new_api:
        return obj
    return {
        "metadata": obj.get("metadata"),
        "involvedObject": obj.get("regarding"),
        "reason": obj.get("reason"),
        "message": obj.get("note"),
        "source": obj.get("deprecatedSource"),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount"),
        "type": obj.get("type"),
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "reportingComponent": obj.get("reportingController"),
        "reportingInstance": obj.get("reportingInstance"),
    }


def _event_row(obj: Obj, now: float | None = None) -> list[Any]:
    """Core Events and events.k8s.io Events share one printer, as in Kubernetes."""
    obj = _as_core_event(obj)
    first = translate_timestamp(obj.get("firstTimestamp"), now)
    if _parse_time(obj.get("firstTimestamp")) is None:
        first = translate_timestamp(obj.get("eventTime"), now)
    last = translate_timestamp(obj.get("lastTimestamp"), now)
    if _parse_time(obj.get("lastTimestamp")) is None:
        last = first

    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = translate_timestamp(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events from the events.k8s.io API carry no count

    involved = _d(obj.get("involvedObject"))
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind

    source = _d(obj.get("source"))
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    source_cell = f"{component}, {instance}" if instance else str(component)

    return [
        last,
        str(obj.get("type") or ""),
        str(obj.get("reason") or ""),
        target,
        str(involved.get("fieldPath") or ""),
        source_cell,
        str(obj.get("message") or "").strip(),
        first,
        count,
        _name(obj),
    ]


EVENT_COLUMNS = [
    _col("Last Seen", "How long ago the event was last observed."),
    _col("Type", "Normal or Warning."),
    _col("Reason", "A short machine-readable reason for the event."),
    _col("Object", "The object the event is about, as kind/name."),
    _wide("Subobject", "The part of the object the event is about, e.g. a container."),
    _wide("Source", "The component (and host) that reported the event."),
    _col("Message", "A human-readable description of the event."),
    _wide("First Seen", "How long ago the event was first observed."),
    _wide("Count", "How many times the event has occurred."),
    dataclasses.replace(NAME_COLUMN, priority=1),
]


# -------------------------------------------------------------- apps workloads


def _deployment_row(obj: Obj, now: float | None = None) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    desired = _int(spec.get("replicas"), 1)
    names, images = _container_cells(_template_spec(obj))
    try:
        selector = _selector_string(spec.get("selector"))
    except _BadSelector:
        selector = "<invalid>"
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{desired}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        age(obj, now),
        names,
        images,
        selector,
    ]


DEPLOYMENT_COLUMNS = [
    NAME_COLUMN,
    _col("Ready", "Ready pods out of desired replicas."),
    _col("Up-to-date", "Pods running the latest pod template."),
    _col("Available", "Pods available to serve (ready for at least minReadySeconds)."),
    AGE_COLUMN,
    _CONTAINERS,
    _IMAGES,
    _wide("Selector", "Label selector for the deployment's pods."),
]


def _replicaset_row(obj: Obj, now: float | None = None) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    desired = _int(spec.get("replicas"), 1)
    names, images = _container_cells(_template_spec(obj))
    return [
        _name(obj),
        desired,
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        age(obj, now),
        names,
        images,
        _format_label_selector(spec.get("selector")),
    ]


REPLICASET_COLUMNS = [
    NAME_COLUMN,
    _col("Desired", "Replicas asked for in spec.", "integer"),
    _col("Current", "Replicas that currently exist.", "integer"),
    _col("Ready", "Replicas that are ready.", "integer"),
    AGE_COLUMN,
    _CONTAINERS,
    _IMAGES,
    _wide("Selector", "Label selector for the replica set's pods."),
]


# -------------------------------------------------------------------------- HPAs


def _hpa_metrics(obj: Obj) -> tuple[list[Obj], list[Obj]]:
    """Spec metrics and current metrics in autoscaling/v2 shape, for v1 or v2 objects."""
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    metrics = [_d(m) for m in _l(spec.get("metrics"))]
    current = [_d(m) for m in _l(status.get("currentMetrics"))]
    if metrics:
        return metrics, current
    # autoscaling/v1 (or no metrics at all): a CPU utilization target, 80% by default.
    target = spec.get("targetCPUUtilizationPercentage")
    if target is None:
        target = _DEFAULT_CPU_UTILIZATION
    metrics = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": target},
            },
        }
    ]
    if not current and status.get("currentCPUUtilizationPercentage") is not None:
        current = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]},
                },
            }
        ]
    return metrics, current


def _format_hpa_metrics(specs: list[Obj], statuses: list[Obj]) -> str:
    if not specs:
        return NONE
    shown: list[str] = []
    maximum = 2
    for i, metric in enumerate(specs):
        got = statuses[i] if i < len(statuses) else {}
        kind = metric.get("type")
        if kind in ("External", "Object"):
            field = "external" if kind == "External" else "object"
            target = _d(_d(metric.get(field)).get("target"))
            source = got.get(field)
            cur = _d(_d(source).get("current"))
            if target.get("averageValue") is not None:
                current = UNKNOWN
                if source is not None and cur.get("averageValue") is not None:
                    current = _quantity(cur["averageValue"])
                shown.append(f"{current}/{_quantity(target['averageValue'])} (avg)")
            else:
                current = _quantity(cur.get("value")) if source is not None else UNKNOWN
                shown.append(f"{current}/{_quantity(target.get('value'))}")
        elif kind == "Pods":
            target = _d(_d(metric.get("pods")).get("target"))
            source = got.get("pods")
            current = UNKNOWN
            if source is not None:
                current = _quantity(_d(_d(source).get("current")).get("averageValue"))
            shown.append(f"{current}/{_quantity(target.get('averageValue'))}")
        elif kind in ("Resource", "ContainerResource"):
            field = "resource" if kind == "Resource" else "containerResource"
            body = _d(metric.get(field))
            target = _d(body.get("target"))
            source = got.get(field)
            cur = _d(_d(source).get("current"))
            name = str(body.get("name") or "")
            if target.get("averageValue") is not None:
                current = _quantity(cur.get("averageValue")) if source is not None else UNKNOWN
                shown.append(f"{name}: {current}/{_quantity(target['averageValue'])}")
            else:
                current = UNKNOWN
                if source is not None and cur.get("averageUtilization") is not None:
                    current = f"{_int(cur['averageUtilization'])}%"
                goal = "<auto>"
                if target.get("averageUtilization") is not None:
                    goal = f"{_int(target['averageUtilization'])}%"
                shown.append(f"{name}: {current}/{goal}")
        else:
            shown.append("<unknown type>")
    if len(shown) > maximum:
        return f"{', '.join(shown[:maximum])} + {len(shown) - maximum} more..."
    return ", ".join(shown)


def _hpa_row(obj: Obj, now: float | None = None) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    ref = _d(spec.get("scaleTargetRef"))
    specs, statuses = _hpa_metrics(obj)
    min_replicas = spec.get("minReplicas")
    return [
        _name(obj),
        f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
        _format_hpa_metrics(specs, statuses),
        str(_int(min_replicas)) if min_replicas is not None else "1",
        _int(spec.get("maxReplicas")),
        _int(status.get("currentReplicas")),
        age(obj, now),
    ]


HPA_COLUMNS = [
    NAME_COLUMN,
    _col("Reference", "The scaled workload, as Kind/name."),
    _col("Targets", "Current versus target value of each metric."),
    _col("MinPods", "Lowest replica count the autoscaler may scale to."),
    _col("MaxPods", "Highest replica count the autoscaler may scale to."),
    _col("Replicas", "Replica count the autoscaler last observed."),
    AGE_COLUMN,
]


# ------------------------------------------------------ cluster-scoped classes


def _priorityclass_row(obj: Obj, now: float | None = None) -> list[Any]:
    return [
        _name(obj),
        _int(obj.get("value")),
        bool(obj.get("globalDefault")),
        age(obj, now),
        str(obj.get("preemptionPolicy") or ""),
    ]


PRIORITYCLASS_COLUMNS = [
    NAME_COLUMN,
    _col("Value", "The priority given to pods that use this class.", "integer"),
    _col("Global-Default", "Whether pods without a priorityClassName get this class.", "boolean"),
    AGE_COLUMN,
    _col("PreemptionPolicy", "Whether pods of this class may preempt lower-priority pods."),
]


def _runtimeclass_row(obj: Obj, now: float | None = None) -> list[Any]:
    return [_name(obj), str(obj.get("handler") or ""), age(obj, now)]


RUNTIMECLASS_COLUMNS = [
    NAME_COLUMN,
    _col("Handler", "The runtime handler that runs pods of this class."),
    AGE_COLUMN,
]


def _lease_row(obj: Obj, now: float | None = None) -> list[Any]:
    holder = _d(obj.get("spec")).get("holderIdentity")
    return [_name(obj), str(holder or ""), age(obj, now)]


LEASE_COLUMNS = [
    NAME_COLUMN,
    _col("Holder", "Identity of the lease's current holder."),
    AGE_COLUMN,
]


def _pdb_row(obj: Obj, now: float | None = None) -> list[Any]:
    spec = _d(obj.get("spec"))

    def intstr(value: Any) -> str:
        return "N/A" if value is None else str(value)

    return [_name(obj), intstr(spec.get("minAvailable")), intstr(spec.get("maxUnavailable")),
            _int(_d(obj.get("status")).get("disruptionsAllowed")), age(obj, now)]


PDB_COLUMNS = [
    NAME_COLUMN,
    _col("Min Available", "Pods of the set that must stay available (a count or a percentage)."),
    _col("Max Unavailable", "Pods of the set that may be unavailable (a count or a percentage)."),
    _col("Allowed Disruptions", "How many pods may be disrupted right now, as last computed.", "integer"),
    AGE_COLUMN,
]


# -------------------------------------------------------------------------- table

TABLES: dict[str, tuple[list[Column], Row]] = {
    "/pods": (POD_COLUMNS, _pod_row),
    "/nodes": (NODE_COLUMNS, _node_row),
    "/namespaces": (NAMESPACE_COLUMNS, _namespace_row),
    "/services": (SERVICE_COLUMNS, _service_row),
    "/endpoints": (ENDPOINTS_COLUMNS, _endpoints_row),
    "/configmaps": (CONFIGMAP_COLUMNS, _configmap_row),
    "/secrets": (SECRET_COLUMNS, _secret_row),
    "/events": (EVENT_COLUMNS, _event_row),
    "events.k8s.io/events": (EVENT_COLUMNS, _event_row),
    "/serviceaccounts": (SERVICEACCOUNT_COLUMNS, _serviceaccount_row),
    "apps/deployments": (DEPLOYMENT_COLUMNS, _deployment_row),
    "apps/replicasets": (REPLICASET_COLUMNS, _replicaset_row),
    "autoscaling/horizontalpodautoscalers": (HPA_COLUMNS, _hpa_row),
    "scheduling.k8s.io/priorityclasses": (PRIORITYCLASS_COLUMNS, _priorityclass_row),
    "node.k8s.io/runtimeclasses": (RUNTIMECLASS_COLUMNS, _runtimeclass_row),
    "coordination.k8s.io/leases": (LEASE_COLUMNS, _lease_row),
    "discovery.k8s.io/endpointslices": (ENDPOINTSLICE_COLUMNS, _endpointslice_row),
    "policy/poddisruptionbudgets": (PDB_COLUMNS, _pdb_row),
}
"""``"group/plural"`` -> (column definitions, row function) for each built-in kind."""
