"""The simpler core/v1 kinds: Namespace, Node, ConfigMap, Secret, ServiceAccount,
Endpoints and Event (Pod and Service live in :mod:`.pod` and :mod:`.service`)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cloudlet.api.errors import FieldError, duplicate, forbidden_field, invalid_value, required
from cloudlet.resources._schema import (
    ANY,
    INT,
    OBJ,
    RESOURCE_LIST,
    STRING_MAP,
    STRINGS,
    B,
    S,
    arr,
    kind_schema,
    with_types,
)
from cloudlet.resources._util import (
    Errors,
    Obj,
    as_dict,
    as_list,
    as_str,
    child,
    dicts,
    ensure_dict,
    index,
    key,
    set_default,
    unique,
)
from cloudlet.resources.affinity import validate_taints
from cloudlet.resources.containers import validate_protocol
from cloudlet.resources.quantity import canonicalize_resource_list
from cloudlet.resources.registry import ALL_VERBS, REGISTRY, ResourceType
from cloudlet.resources.requirements import validate_resource_quantity_value
from cloudlet.resources.validation import (
    is_config_map_key,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_num,
    meta_of,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_is_path_segment,
    parse_ip,
    validate_cidr,
    validate_dns1123_label,
    validate_finalizers,
    validate_immutable,
    validate_ip,
    validate_non_special_ip,
    validate_object_meta,
    validate_object_meta_update,
    validate_qualified_name,
)

MAX_SECRET_SIZE = 1024 * 1024


def _meta_errors(obj: Obj, old: Obj | None, namespaced: bool, name_check: Any = name_is_dns_subdomain) -> Errors:
    errs = validate_object_meta(meta_of(obj), namespaced, name_check=name_check)
    if old is not None:
        errs += validate_object_meta_update(meta_of(obj), meta_of(old))
    return errs


# --- Namespace ----------------------------------------------------------------------


def prepare_namespace_create(obj: Obj) -> None:
    """The namespace strategy adds the "kubernetes" finalizer on create only
    (the namespace controller removes it through /finalize)."""
    spec = ensure_dict(obj, "spec")
    finalizers = spec.get("finalizers")
    if finalizers is None:
        spec["finalizers"] = ["kubernetes"]
    elif isinstance(finalizers, list) and "kubernetes" not in finalizers:
        finalizers.append("kubernetes")


def prepare_namespace_update(new: Obj, old: Obj) -> None:
    """spec.finalizers change only through /finalize; the main resource keeps the old ones."""
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    spec = ensure_dict(new, "spec")
    if "finalizers" in old_spec:
        spec["finalizers"] = old_spec["finalizers"]
    else:
        spec.pop("finalizers", None)


def default_namespace(obj: Obj) -> None:
    meta = ensure_dict(obj, "metadata")
    if meta.get("name") and isinstance(meta.get("name"), str):
        ensure_dict(meta, "labels")["kubernetes.io/metadata.name"] = meta["name"]
    ensure_dict(obj, "spec")
    status = ensure_dict(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Terminating" if meta.get("deletionTimestamp") else "Active"


def validate_namespace(obj: Obj, old: Obj | None) -> Errors:
    errs = _meta_errors(obj, old, False, name_is_dns_label)
    for name in as_list(as_dict(obj.get("spec")).get("finalizers")):
        errs += validate_finalizers([name], "spec.finalizers", kube_names=False)
        if "/" not in as_str(name) and name not in ("kubernetes", "orphan", "foregroundDeletion"):
            errs.append(invalid_value("spec.finalizers", name,
                                      "name is neither a standard finalizer name nor is it fully qualified"))
    phase = as_dict(obj.get("status")).get("phase")
    if old is not None and phase:
        if not meta_of(obj).get("deletionTimestamp") and phase != "Active":
            errs.append(invalid_value("status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty"))
        elif meta_of(obj).get("deletionTimestamp") and phase != "Terminating":
            errs.append(invalid_value("status.Phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
    return unique(errs)


def namespace_fields(obj: Obj) -> dict[str, str]:
    return {"status.phase": as_str(as_dict(obj.get("status")).get("phase"))}


# --- Node -----------------------------------------------------------------------------


def default_node(obj: Obj) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    canonicalize_resource_list(status.get("capacity"))
    canonicalize_resource_list(status.get("allocatable"))
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def validate_node(obj: Obj, old: Obj | None) -> Errors:
    errs = _meta_errors(obj, old, False)
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    # Kubernetes reports taint errors under metadata.taints (its field path quirk).
    errs += validate_taints(spec.get("taints"), "metadata.taints")
    for section in ("capacity", "allocatable"):
        for name, value in as_dict(status.get(section)).items():
            errs += validate_resource_quantity_value(name, value, f"status.{section}.{name}")
    cidrs = as_list(spec.get("podCIDRs"))
    for i, cidr in enumerate(cidrs):
        errs += validate_cidr(cidr, index("spec.podCIDRs", i))
    if len(cidrs) > 1:
        families = {parse_ip(as_str(c).split("/")[0]).version for c in cidrs if parse_ip(as_str(c).split("/")[0])}  # type: ignore[union-attr]
        if len(families) != len(cidrs) or len(cidrs) > 2:
            errs.append(invalid_value("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"))
        seen: set[str] = set()
        for i, cidr in enumerate(cidrs):
            if cidr in seen:
                errs.append(duplicate(index("spec.podCIDRs", i), cidr))
            seen.add(as_str(cidr))
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        seen_addr: list[Any] = []
        for i, address in enumerate(as_list(status.get("addresses"))):
            if address in seen_addr:
                errs.append(duplicate(index("status.addresses", i), address))
            seen_addr.append(address)
        old_cidrs = as_list(old_spec.get("podCIDRs"))
        if old_cidrs and old_cidrs != cidrs:
            errs.append(forbidden_field("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
        if old_spec.get("providerID") and old_spec.get("providerID") != spec.get("providerID"):
            errs.append(forbidden_field("spec.providerID", 'node updates may not change providerID except from "" to valid'))
        if spec.get("externalID") != old_spec.get("externalID"):
            errs.append(forbidden_field("spec.externalID", "may not be updated"))
    return unique(errs)


def node_fields(obj: Obj) -> dict[str, str]:
    return {"spec.unschedulable": "true" if as_dict(obj.get("spec")).get("unschedulable") is True else "false"}


# --- ConfigMap ------------------------------------------------------------------------


def validate_config_map(obj: Obj, old: Obj | None) -> Errors:
    errs = _meta_errors(obj, old, True)
    data, binary = obj.get("data"), obj.get("binaryData")
    total = 0
    for name, value in as_dict(data).items():
        errs += [invalid_value(key("data", name), name, m) for m in is_config_map_key(name)]
        if name in as_dict(binary):
            errs.append(invalid_value(key("data", name), name, "duplicate of key present in binaryData"))
        if not isinstance(value, str):
            errs.append(invalid_value(key("data", name), value, "must be a string"))
        total += len(as_str(value).encode())
    for name, value in as_dict(binary).items():
        errs += [invalid_value(key("binaryData", name), name, m) for m in is_config_map_key(name)]
        decoded, err = _decode(value)
        if err:
            errs.append(invalid_value(key("binaryData", name), "<binary contents redacted>", err))
        total += len(decoded)
    if total > MAX_SECRET_SIZE:
        errs.append(FieldError("TooLong", "", None, f"must have at most {MAX_SECRET_SIZE} bytes"))
    if old is not None and old.get("immutable") is True:
        if obj.get("immutable") is not True:
            errs.append(forbidden_field("immutable", "field is immutable when `immutable` is set"))
        if (data or {}) != (old.get("data") or {}):
            errs.append(forbidden_field("data", "field is immutable when `immutable` is set"))
        if (binary or {}) != (old.get("binaryData") or {}):
            errs.append(forbidden_field("binaryData", "field is immutable when `immutable` is set"))
    return unique(errs)


# --- Secret -----------------------------------------------------------------------------

_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _decode(value: Any) -> tuple[bytes, str]:
    """Decode padded standard base64 as Go's ``encoding/json`` does for ``[]byte``;
    errors read like Go's (``illegal base64 data at input byte N``)."""
    if not isinstance(value, str):
        return b"", "must be a base64-encoded string"
    for i, c in enumerate(value):
        if c not in _B64_ALPHABET:
            return b"", f"illegal base64 data at input byte {i}"
    if len(value) % 4:
        return b"", f"illegal base64 data at input byte {len(value) - len(value) % 4}"
    try:
        return base64.b64decode(value, validate=True), ""
    except (binascii.Error, ValueError):
        return b"", f"illegal base64 data at input byte {value.find('=') if '=' in value else len(value)}"


def default_secret(obj: Obj) -> None:
    set_default(obj, "type", "Opaque")
    string_data = obj.get("stringData")
    if not isinstance(string_data, dict) or not all(isinstance(v, str) for v in string_data.values()):
        return  # left for validation to report
    if isinstance(obj.get("data"), dict | None):
        # Like the v1 -> internal conversion: stringData is merged into data, then dropped.
        del obj["stringData"]
        if string_data:
            data = ensure_dict(obj, "data")
            for name, value in string_data.items():
                data[name] = base64.b64encode(value.encode()).decode()


SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(obj: Obj, old: Obj | None) -> Errors:
    errs = _meta_errors(obj, old, True)
    data = as_dict(obj.get("data"))
    decoded: dict[str, bytes] = {}
    total = 0
    for name, value in data.items():
        errs += [invalid_value(key("data", name), name, m) for m in is_config_map_key(name)]
        raw, err = _decode(value)
        if err:
            errs.append(invalid_value(key("data", name), "<secret contents redacted>", err))
        decoded[name] = raw
        total += len(raw)
    if total > MAX_SECRET_SIZE:
        errs.append(FieldError("TooLong", "data", None, f"must have at most {MAX_SECRET_SIZE} bytes"))
    kind = obj.get("type")
    annotations = as_dict(meta_of(obj).get("annotations"))
    if kind == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]", ""))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required("data[username]", ""), required("data[password]", "")]
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        (name,) = SECRET_REQUIRED_KEYS[as_str(kind)]
        if name not in data:
            errs.append(required(key("data", name), ""))
        else:
            try:
                if not isinstance(json.loads(decoded[name] or b"null"), dict):
                    raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
            except ValueError as exc:
                errs.append(invalid_value(key("data", name), "<secret contents redacted>", str(exc)))
    elif kind == "kubernetes.io/ssh-auth":
        if not decoded.get("ssh-privatekey"):
            errs.append(required("data[ssh-privatekey]", ""))
    elif kind == "kubernetes.io/tls":
        errs += [required(key("data", n), "") for n in ("tls.crt", "tls.key") if n not in data]
    if old is not None:
        errs += validate_immutable(kind, old.get("type"), "type")
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.append(forbidden_field("immutable", "field is immutable when `immutable` is set"))
            if (obj.get("data") or {}) != (old.get("data") or {}):
                errs.append(forbidden_field("data", "field is immutable when `immutable` is set"))
    return unique(errs)


def secret_fields(obj: Obj) -> dict[str, str]:
    return {"type": as_str(obj.get("type"))}


# --- ServiceAccount -----------------------------------------------------------------------


def validate_service_account(obj: Obj, old: Obj | None) -> Errors:
    return unique(_meta_errors(obj, old, True))


# --- Endpoints ------------------------------------------------------------------------------


def default_endpoints(obj: Obj) -> None:
    for subset in dicts(obj.get("subsets")):
        for port in dicts(subset.get("ports")):
            set_default(port, "protocol", "TCP")


def _endpoint_address(address: Obj, path: str) -> Errors:
    ip = address.get("ip")
    errs = validate_ip(ip, child(path, "ip"))
    if address.get("hostname"):
        errs += validate_dns1123_label(as_str(address["hostname"]), child(path, "hostname"))
    node_name = address.get("nodeName")
    if node_name is not None:
        errs += [invalid_value(child(path, "nodeName"), node_name, m) for m in name_is_dns_subdomain(as_str(node_name))]
    if isinstance(ip, str):
        errs += validate_non_special_ip(ip, child(path, "ip"))
    return errs


def validate_endpoints(obj: Obj, old: Obj | None) -> Errors:
    errs = _meta_errors(obj, old, True)
    for i, subset in enumerate(as_list(obj.get("subsets"))):
        p, subset = index("subsets", i), as_dict(subset)
        addresses, not_ready = as_list(subset.get("addresses")), as_list(subset.get("notReadyAddresses"))
        if not addresses and not not_ready:
            errs.append(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for name, items in (("addresses", addresses), ("notReadyAddresses", not_ready)):
            for j, address in enumerate(items):
                errs += _endpoint_address(as_dict(address), index(child(p, name), j))
        ports = as_list(subset.get("ports"))
        for j, port in enumerate(ports):
            pp, port = index(child(p, "ports"), j), as_dict(port)
            if len(ports) > 1 and not port.get("name"):
                errs.append(required(child(pp, "name"), ""))
            elif port.get("name"):
                errs += validate_dns1123_label(as_str(port["name"]), child(pp, "name"))
            errs += [invalid_value(child(pp, "port"), port.get("port"), m) for m in is_valid_port_num(port.get("port"))]
            errs += validate_protocol(port.get("protocol"), child(pp, "protocol"))
            if port.get("appProtocol") is not None:
                errs += validate_qualified_name(as_str(port["appProtocol"]), child(pp, "appProtocol"))
    return unique(errs)


# --- Event ------------------------------------------------------------------------------------


def validate_event(obj: Obj, old: Obj | None) -> Errors:
    """core/v1 Events get the legacy checks only (strict ones are events.k8s.io's)."""
    errs = _meta_errors(obj, old, True, name_is_path_segment)
    namespace = as_str(meta_of(obj).get("namespace"))
    involved = as_dict(obj.get("involvedObject"))
    involved_ns = as_str(involved.get("namespace"))
    mismatch = invalid_value("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if not obj.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                errs.append(mismatch)
        elif namespace != involved_ns:
            errs.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(mismatch)
        controller = as_str(obj.get("reportingComponent"))
        if not controller:
            errs.append(required("reportingController", ""))
        errs += [invalid_value("reportingController", controller, m) for m in is_qualified_name(controller)]
        for name, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            value = as_str(obj.get(name))
            if not value:
                errs.append(required(name, ""))
            if len(value) > limit:
                errs.append(invalid_value(name, "", f"can have at most {limit} characters"))
        if len(as_str(obj.get("message"))) > 1024:
            errs.append(invalid_value("message", "", "can have at most 1024 characters"))
    errs += [invalid_value("namespace", namespace, m) for m in is_dns1123_subdomain(namespace)]
    return unique(errs)


def event_fields(obj: Obj) -> dict[str, str]:
    """``event.ToSelectableFields``: involvedObject.*, reason, reportingComponent, source, type."""
    involved = as_dict(obj.get("involvedObject"))
    out = {f"involvedObject.{name}": as_str(involved.get(name))
           for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    out["reason"] = as_str(obj.get("reason"))
    out["reportingComponent"] = as_str(obj.get("reportingComponent"))
    out["source"] = as_str(as_dict(obj.get("source")).get("component"))
    out["type"] = as_str(obj.get("type"))
    return out


# --- registration -------------------------------------------------------------------------------

_ADDRESS = {"ip": S, "hostname": S, "nodeName": S, "targetRef": OBJ}
SCHEMAS = {
    "namespaces": kind_schema(spec={"finalizers": STRINGS}, status={"phase": S, "conditions": arr(OBJ)}),
    "nodes": kind_schema(
        spec={"podCIDR": S, "podCIDRs": STRINGS, "providerID": S, "unschedulable": B, "externalID": S,
              "taints": arr({"key": S, "value": S, "effect": S, "timeAdded": S})},
        status={"capacity": RESOURCE_LIST, "allocatable": RESOURCE_LIST, "addresses": arr({"type": S, "address": S}),
                "conditions": arr(OBJ), "nodeInfo": OBJ, "images": arr(OBJ)},
    ),
    "configmaps": kind_schema(data=STRING_MAP, binaryData=STRING_MAP, immutable=B),
    "secrets": kind_schema(data=STRING_MAP, stringData=STRING_MAP, type=S, immutable=B),
    "serviceaccounts": kind_schema(secrets=arr(OBJ), imagePullSecrets=arr({"name": S}), automountServiceAccountToken=B),
    "endpoints": kind_schema(subsets=arr({"addresses": arr(_ADDRESS), "notReadyAddresses": arr(_ADDRESS),
                                          "ports": arr({"name": S, "port": INT, "protocol": S, "appProtocol": S})})),
    "events": kind_schema(involvedObject=OBJ, reason=S, message=S, type=S, count=INT, source={"component": S, "host": S},
                          firstTimestamp=S, lastTimestamp=S, eventTime=ANY, action=S, reportingComponent=S,
                          reportingInstance=S, related=OBJ, series=OBJ),
}

NAMESPACES = REGISTRY.add(ResourceType(
    group="", version="v1", kind="Namespace", plural="namespaces", singular="namespace", namespaced=False,
    short_names=("ns",), verbs=tuple(v for v in ALL_VERBS if v != "deletecollection"), subresources=("status",),
    default=default_namespace, prepare_create=prepare_namespace_create,
    prepare_update=prepare_namespace_update, validate=with_types(SCHEMAS["namespaces"], validate_namespace), fields=namespace_fields,
))
NODES = REGISTRY.add(ResourceType(
    group="", version="v1", kind="Node", plural="nodes", singular="node", namespaced=False,
    short_names=("no",), subresources=("status",),
    default=default_node, keep_status_on_create=True, validate=with_types(SCHEMAS["nodes"], validate_node), fields=node_fields,
))
CONFIG_MAPS = REGISTRY.add(ResourceType(
    group="", version="v1", kind="ConfigMap", plural="configmaps", singular="configmap", namespaced=True,
    short_names=("cm",), has_status=False, validate=with_types(SCHEMAS["configmaps"], validate_config_map),
))
SECRETS = REGISTRY.add(ResourceType(
    group="", version="v1", kind="Secret", plural="secrets", singular="secret", namespaced=True,
    has_status=False, default=default_secret, validate=with_types(SCHEMAS["secrets"], validate_secret), fields=secret_fields,
))
SERVICE_ACCOUNTS = REGISTRY.add(ResourceType(
    group="", version="v1", kind="ServiceAccount", plural="serviceaccounts", singular="serviceaccount",
    namespaced=True, short_names=("sa",), has_status=False, validate=with_types(SCHEMAS["serviceaccounts"], validate_service_account),
))
ENDPOINTS = REGISTRY.add(ResourceType(
    group="", version="v1", kind="Endpoints", plural="endpoints", singular="endpoints", namespaced=True,
    short_names=("ep",), has_status=False, default=default_endpoints, validate=with_types(SCHEMAS["endpoints"], validate_endpoints),
))
EVENTS = REGISTRY.add(ResourceType(
    group="", version="v1", kind="Event", plural="events", singular="event", namespaced=True,
    short_names=("ev",), has_status=False, validate=with_types(SCHEMAS["events"], validate_event), fields=event_fields,
))
