"""discovery.k8s.io/v1 EndpointSlice: the scalable successor of Endpoints."""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import FieldError, duplicate, invalid_value, not_supported, required
from cloudlet.resources._schema import (
    INT,
    OBJ,
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
    index,
    unique,
)
from cloudlet.resources.containers import PROTOCOLS
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.validation import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    meta_of,
    name_is_dns_subdomain,
    parse_ip,
    validate_dns1123_label,
    validate_immutable,
    validate_labels,
    validate_non_special_ip,
    validate_object_meta,
    validate_object_meta_update,
)

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ADDRESSES, MAX_PORTS, MAX_ENDPOINTS, MAX_TOPOLOGY_LABELS = 100, 100, 1000, 16


def default_endpoint_slice(obj: Obj) -> None:
    for port in dicts(obj.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def _too_many(path: str, actual: int, limit: int) -> FieldError:
    return FieldError("TooMany", path, actual, f"must have at most {limit} items")


def _validate_address(address: Any, address_type: Any, path: str) -> Errors:
    text = as_str(address)
    if address_type in ("IPv4", "IPv6"):
        ip = parse_ip(text)
        want = 4 if address_type == "IPv4" else 6
        if ip is None or ip.version != want:
            return [invalid_value(path, address, f"must be a valid {address_type} address")]
        return validate_non_special_ip(text, path)
    if address_type == "FQDN":
        if not text:
            return [required(path, "")]
        name = text.removesuffix(".")
        msgs = is_dns1123_subdomain(name)
        if msgs:
            return [invalid_value(path, name, ",".join(msgs))]
        if len(name.split(".")) < 2:
            return [invalid_value(path, name, "should be a domain with at least two segments separated by dots")]
        for label in name.split("."):
            label_msgs = is_dns1123_label(label)
            if label_msgs:
                return [invalid_value(path, label, ",".join(label_msgs))]
    return []


def _validate_endpoints(endpoints: list[Any], address_type: Any) -> Errors:
    if len(endpoints) > MAX_ENDPOINTS:
        return [_too_many("endpoints", len(endpoints), MAX_ENDPOINTS)]
    errs: Errors = []
    for i, endpoint in enumerate(endpoints):
        p, endpoint = index("endpoints", i), as_dict(endpoint)
        addresses = as_list(endpoint.get("addresses"))
        apath = child(p, "addresses")
        if not addresses:
            errs.append(required(apath, "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errs.append(_too_many(apath, len(addresses), MAX_ADDRESSES))
        for j, address in enumerate(addresses):
            errs += _validate_address(address, address_type, index(apath, j))
        topology = as_dict(endpoint.get("deprecatedTopology"))
        if len(topology) > MAX_TOPOLOGY_LABELS:
            errs.append(_too_many(child(p, "deprecatedTopology"), len(topology), MAX_TOPOLOGY_LABELS))
        errs += validate_labels(endpoint.get("deprecatedTopology"), child(p, "deprecatedTopology"))
        if endpoint.get("hostname") is not None:
            errs += validate_dns1123_label(as_str(endpoint["hostname"]), child(p, "hostname"))
        if endpoint.get("nodeName") is not None:
            node = as_str(endpoint["nodeName"])
            errs += [invalid_value(child(p, "nodeName"), node, m) for m in name_is_dns_subdomain(node)]
    return errs


def _validate_ports(ports: list[Any]) -> Errors:
    if len(ports) > MAX_PORTS:
        return [_too_many("ports", len(ports), MAX_PORTS)]
    errs: Errors = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p, port = index("ports", i), as_dict(port)
        name = as_str(port.get("name"))
        if name:
            errs += validate_dns1123_label(name, child(p, "name"))
        if name in names:
            errs.append(duplicate(child(p, "name"), name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            errs.append(required(child(p, "protocol"), ""))
        elif protocol not in PROTOCOLS:
            errs.append(not_supported(child(p, "protocol"), protocol, PROTOCOLS))
        if port.get("appProtocol") is not None:
            app = as_str(port["appProtocol"])
            errs += [invalid_value(child(p, "appProtocol"), app, m) for m in is_qualified_name(app)]
    return errs


def validate_endpoint_slice(obj: Obj, old: Obj | None) -> Errors:
    meta = meta_of(obj)
    errs = validate_object_meta(meta, True, name_check=name_is_dns_subdomain)
    address_type = obj.get("addressType")
    allowed = ADDRESS_TYPES + (("IP",) if old is not None else ())
    if address_type in (None, ""):
        errs.append(required("addressType", ""))
    elif address_type not in allowed:
        errs.append(not_supported("addressType", address_type, sorted(allowed)))
    errs += _validate_endpoints(as_list(obj.get("endpoints")), address_type)
    errs += _validate_ports(as_list(obj.get("ports")))
    if old is not None:
        errs += validate_object_meta_update(meta, meta_of(old))
        errs += validate_immutable(address_type, old.get("addressType"), "addressType")
    return unique(errs)


SCHEMA = kind_schema(addressType=S, endpoints=arr({
    "addresses": STRINGS, "hostname": S, "nodeName": S, "zone": S, "targetRef": OBJ, "deprecatedTopology": STRING_MAP,
    "conditions": {"ready": B, "serving": B, "terminating": B}, "hints": OBJ,
}), ports=arr({"name": S, "protocol": S, "port": INT, "appProtocol": S}))

ENDPOINT_SLICES = REGISTRY.add(ResourceType(
    group="discovery.k8s.io", version="v1", kind="EndpointSlice", plural="endpointslices",
    singular="endpointslice", namespaced=True, has_status=False,
    default=default_endpoint_slice, validate=with_types(SCHEMA, validate_endpoint_slice),
))
