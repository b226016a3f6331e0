"""The core/v1 Service kind: defaults, validation, registration.

Defaulting covers ``SetDefaults_Service`` plus the parts of the service REST
strategy that do not allocate anything (``clusterIP``/``clusterIPs`` kept in
sync, ``ipFamilyPolicy`` and ``ipFamilies`` for a single-stack IPv4 cluster).
The cluster IP itself is allocated by the API server, not here.
"""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import duplicate, forbidden_field, invalid_value, not_supported, required
from cloudlet.resources._schema import (
    INT,
    IS,
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
    ensure_dict,
    index,
    is_int,
    set_default,
    unique,
)
from cloudlet.resources.containers import validate_port_num_or_name, validate_protocol
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.validation import (
    is_valid_port_num,
    meta_of,
    name_is_dns1035_label,
    parse_ip,
    validate_cidr,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_ip,
    validate_labels,
    validate_non_special_ip,
    validate_object_meta,
    validate_object_meta_update,
    validate_qualified_name,
)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
DEFAULT_CLIENT_IP_TIMEOUT = 10800
MAX_CLIENT_IP_TIMEOUT = 86400


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(as_list(spec.get("externalIPs"))))


def _headless(spec: Obj) -> bool:
    ips = as_list(spec.get("clusterIPs"))
    return len(ips) == 1 and ips[0] == "None"


def default_service(obj: Obj) -> None:
    spec = ensure_dict(obj, "spec")
    set_default(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = as_dict(as_dict(config).get("clientIP"))
        if (config is None or isinstance(config, dict)) and client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_TIMEOUT}}
    set_default(spec, "type", "ClusterIP")
    for port in dicts(spec.get("ports")):
        set_default(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec):
        set_default(spec, "externalTrafficPolicy", "Cluster")
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    _default_cluster_ips(spec)


def _default_cluster_ips(spec: Obj) -> None:
    cluster_ip, cluster_ips = spec.get("clusterIP"), spec.get("clusterIPs")
    if cluster_ip and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif cluster_ips and isinstance(cluster_ips, list) and not cluster_ip:
        spec["clusterIP"] = cluster_ips[0]
    if spec.get("type") == "ExternalName":
        return
    if spec.get("ipFamilyPolicy") is None:
        headless_no_selector = spec.get("clusterIP") == "None" and not as_dict(spec.get("selector"))
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_no_selector else "SingleStack"
    if not spec.get("ipFamilies"):
        ip = parse_ip(as_str(spec.get("clusterIP")))
        spec["ipFamilies"] = ["IPv6" if ip is not None and ip.version == 6 else "IPv4"]


def _validate_port(port: Obj, require_name: bool, names: set[str], path: str) -> Errors:
    errs: Errors = []
    name = port.get("name")
    if require_name and not name:
        errs.append(required(child(path, "name"), ""))
    elif name:
        errs += validate_dns1123_label(as_str(name), child(path, "name"))
        if name in names:
            errs.append(duplicate(child(path, "name"), name))
        names.add(as_str(name))
    errs += [invalid_value(child(path, "port"), port.get("port"), m) for m in is_valid_port_num(port.get("port"))]
    errs += validate_protocol(port.get("protocol"), child(path, "protocol"))
    errs += validate_port_num_or_name(port.get("targetPort"), child(path, "targetPort"))
    if port.get("appProtocol") is not None:
        errs += validate_qualified_name(as_str(port["appProtocol"]), child(path, "appProtocol"))
    node_port = port.get("nodePort")
    if node_port not in (None, 0):
        errs += [invalid_value(child(path, "nodePort"), node_port, m) for m in is_valid_port_num(node_port)]
    return errs


def _validate_cluster_ips(spec: Obj) -> Errors:
    if spec.get("type") == "ExternalName":
        return []
    errs: Errors = []
    ips_path = "spec.clusterIPs"
    cluster_ip, ips = spec.get("clusterIP"), as_list(spec.get("clusterIPs"))
    if cluster_ip:
        if not ips:
            errs.append(required(ips_path, ""))
        elif ips[0] != cluster_ip:
            errs.append(invalid_value(ips_path, ips, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid_value(ips_path, ips, "must be empty when `clusterIP` is not specified"))
    seen: set[Any] = set()
    for i, family in enumerate(as_list(spec.get("ipFamilies"))):
        if family not in IP_FAMILIES:
            errs.append(not_supported(index("spec.ipFamilies", i), family, IP_FAMILIES))
        if family in seen:
            errs.append(duplicate(index("spec.ipFamilies", i), family))
        seen.add(family if isinstance(family, str) else str(family))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))
    bad_ips = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad_ips = True
                errs.append(invalid_value(ips_path, ips, "'None' must be the first and only value"))
            continue
        ip_errs = validate_ip(ip, index(ips_path, i))
        bad_ips = bad_ips or bool(ip_errs)
        errs += ip_errs
    if len(ips) > 2:
        errs.append(invalid_value(ips_path, ips, "may only hold up to 2 values"))
    if bad_ips:
        return errs
    if len(ips) > 1 and len({parse_ip(ip).version for ip in ips if parse_ip(ip)}) != len(ips):  # type: ignore[union-attr]
        errs.append(invalid_value(ips_path, ips, "may specify no more than one IP for each IP family"))
    families = as_list(spec.get("ipFamilies"))
    if not _headless(spec):
        for i, ip in enumerate(ips[: len(families)]):
            parsed = parse_ip(ip)
            if families[i] == "IPv4" and parsed is not None and parsed.version == 6:
                errs.append(invalid_value(index(ips_path, i), ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and parsed is not None and parsed.version == 4:
                errs.append(invalid_value(index(ips_path, i), ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return errs


def _validate_spec(spec: Obj, annotations: dict[str, Any]) -> Errors:
    errs: Errors = []
    kind = spec.get("type")
    headless = _headless(spec)
    ports = [as_dict(p) for p in as_list(spec.get("ports"))]
    if not ports and not headless and kind != "ExternalName":
        errs.append(required("spec.ports", ""))
    if kind in ("LoadBalancer", "NodePort") and headless:
        errs.append(invalid_value("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    elif kind == "ExternalName":
        if as_list(spec.get("clusterIPs")):
            errs.append(forbidden_field("spec.clusterIPs", "may not be set for ExternalName services"))
        if as_list(spec.get("ipFamilies")):
            errs.append(forbidden_field("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden_field("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = as_str(spec.get("externalName")).removesuffix(".")
        errs += validate_dns1123_subdomain(cname, "spec.externalName") if cname else [required("spec.externalName", "")]
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _validate_port(port, len(ports) > 1, names, index("spec.ports", i))
    if spec.get("selector") is not None:
        errs += validate_labels(spec["selector"], "spec.selector")
    affinity = spec.get("sessionAffinity")
    if affinity in (None, ""):
        errs.append(required("spec.sessionAffinity", ""))
    elif affinity not in SESSION_AFFINITIES:
        errs.append(not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES))
    if affinity == "ClientIP":
        errs += _validate_client_ip_config(spec.get("sessionAffinityConfig"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden_field("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    errs += _validate_cluster_ips(spec)
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        ip_errs = validate_ip(ip, index("spec.externalIPs", i))
        errs += ip_errs or validate_non_special_ip(ip, index("spec.externalIPs", i))
    if kind in (None, ""):
        errs.append(required("spec.type", ""))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort") not in (None, 0):
                errs.append(forbidden_field(child(index("spec.ports", i), "nodePort"), "may not be used when `type` is 'ClusterIP'"))
    node_ports: set[tuple[Any, Any]] = set()
    port_keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if port.get("nodePort") not in (None, 0):
            node_key = (port.get("protocol"), port.get("nodePort"))
            if node_key in node_ports:
                errs.append(duplicate(child(index("spec.ports", i), "nodePort"), port.get("nodePort")))
            node_ports.add(node_key)
        port_key = (port.get("protocol"), port.get("port"))
        if port_key in port_keys:
            errs.append(duplicate(index("spec.ports", i), {"port": port.get("port"), "protocol": port.get("protocol")}))
        port_keys.add(port_key)
    ranges = as_list(spec.get("loadBalancerSourceRanges"))
    if ranges:
        if kind != "LoadBalancer":
            errs.append(forbidden_field("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
        for i, value in enumerate(ranges):
            errs += validate_cidr(as_str(value).strip(), index("spec.LoadBalancerSourceRanges", i))
    elif "service.beta.kubernetes.io/load-balancer-source-ranges" in annotations:
        ann_path = "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]"
        if kind != "LoadBalancer":
            errs.append(forbidden_field(ann_path, "may only be used when `type` is 'LoadBalancer'"))
        value = as_str(annotations["service.beta.kubernetes.io/load-balancer-source-ranges"]).strip()
        for cidr in value.split(",") if value else []:
            errs += validate_cidr(cidr.strip(), ann_path)
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errs.append(forbidden_field("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts", ""))
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        if kind == "LoadBalancer":
            errs += validate_qualified_name(as_str(lb_class), "spec.loadBalancerClass")
        else:
            errs.append(forbidden_field("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    return errs + _validate_traffic_policies(spec)


def _validate_client_ip_config(config: Any) -> Errors:
    path = "spec.sessionAffinityConfig"
    if config is None:
        return [required(path, "when session affinity type is ClientIP")]
    client_ip = as_dict(config).get("clientIP")
    if client_ip is None:
        return [required(child(path, "clientIP"), "when session affinity type is ClientIP")]
    timeout = as_dict(client_ip).get("timeoutSeconds")
    tpath = child(child(path, "clientIP"), "timeoutSeconds")
    if timeout is None:
        return [required(tpath, "when session affinity type is ClientIP")]
    if not is_int(timeout) or not 0 < timeout <= MAX_CLIENT_IP_TIMEOUT:
        return [invalid_value(tpath, timeout, f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}")]
    return []


def _validate_traffic_policies(spec: Obj) -> Errors:
    errs: Errors = []
    etp = spec.get("externalTrafficPolicy")
    if not _externally_accessible(spec):
        if etp:
            errs.append(invalid_value("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy", ""))
    elif etp not in TRAFFIC_POLICIES:
        errs.append(not_supported("spec.externalTrafficPolicy", etp, TRAFFIC_POLICIES))
    needs_health_check = spec.get("type") == "LoadBalancer" and etp == "Local"
    hc = spec.get("healthCheckNodePort")
    if not needs_health_check and hc not in (None, 0):
        errs.append(invalid_value("spec.healthCheckNodePort", hc,
                                  "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer"):
        errs.append(required("spec.internalTrafficPolicy", ""))
    if itp is not None and itp not in TRAFFIC_POLICIES:
        errs.append(not_supported("spec.internalTrafficPolicy", itp, TRAFFIC_POLICIES))
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution not in ("PreferClose", "PreferSameZone", "PreferSameNode"):
        errs.append(not_supported("spec.trafficDistribution", distribution, ("PreferClose", "PreferSameZone", "PreferSameNode")))
    return errs


def _validate_update(spec: Obj, old: Obj) -> Errors:
    """Cluster IPs and IP families may only be added or released, never changed."""
    if "ExternalName" in (spec.get("type"), old.get("type")):
        return []
    errs: Errors = []
    new_ips, old_ips = as_list(spec.get("clusterIPs")), as_list(old.get("clusterIPs"))
    if not new_ips and old_ips:
        return errs  # the server carries allocated IPs over (rest.patchAllocatedValues)
    if not (_headless(spec) and _headless(old)):
        if len(old_ips) == len(new_ips):
            for i, ip in enumerate(old_ips):
                if ip != new_ips[i]:
                    errs.append(invalid_value(index("spec.clusterIPs", i), new_ips, "may not change once set"))
        elif len(old_ips) > len(new_ips):
            if new_ips[0] != old_ips[0]:
                errs.append(invalid_value("spec.clusterIPs[0]", new_ips, "may not change once set"))
            if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
                errs.append(invalid_value("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                          "must be set to 'SingleStack' when releasing the secondary clusterIP"))
        elif old_ips and new_ips[0] != old_ips[0]:
            errs.append(invalid_value("spec.clusterIPs[0]", new_ips, "may not change once set"))
    new_fam, old_fam = as_list(spec.get("ipFamilies")), as_list(old.get("ipFamilies"))
    if _headless(spec) == _headless(old) and not _headless(spec) and new_fam:
        if len(new_fam) == len(old_fam) and new_fam != old_fam:
            errs.append(invalid_value("spec.ipFamilies[0]", new_fam, "may not change once set"))
        elif old_fam and new_fam[0] != old_fam[0]:
            errs.append(invalid_value("spec.ipFamilies[0]", new_ips, "may not change once set"))
    if spec.get("type") == "LoadBalancer" == old.get("type") and spec.get("loadBalancerClass") != old.get("loadBalancerClass"):
        errs.append(invalid_value("spec.loadBalancerClass", spec.get("loadBalancerClass"), "may not change once set"))
    if (old.get("type") == "LoadBalancer" and old.get("externalTrafficPolicy") == "Local"
            and spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
            and spec.get("healthCheckNodePort") not in (None, 0)
            and spec.get("healthCheckNodePort") != old.get("healthCheckNodePort")):
        errs.append(forbidden_field("spec.healthCheckNodePort", "field is immutable"))
    return errs


def _normalize_cluster_ips(spec: Obj, old: Obj) -> Obj:
    """The strategy's ``normalizeClusterIPs`` on update: a user who changed only
    ``clusterIP`` changed ``clusterIPs[0]`` too (checked on a copy)."""
    ips = as_list(spec.get("clusterIPs"))
    if spec.get("clusterIP") and spec.get("clusterIP") != old.get("clusterIP") and ips == as_list(old.get("clusterIPs")):
        return {**spec, "clusterIPs": [spec["clusterIP"], *ips[1:]]}
    return spec


def validate_service(obj: Obj, old: Obj | None) -> Errors:
    meta = meta_of(obj)
    spec = as_dict(obj.get("spec"))
    errs: Errors = []
    if old is not None:
        spec = _normalize_cluster_ips(spec, as_dict(old.get("spec")))
        errs += validate_object_meta_update(meta, meta_of(old))
        errs += _validate_update(spec, as_dict(old.get("spec")))
    errs += validate_object_meta(meta, True, name_check=name_is_dns1035_label)
    annotations = as_dict(meta.get("annotations"))
    hints, mode = annotations.get("service.kubernetes.io/topology-aware-hints"), annotations.get("service.kubernetes.io/topology-mode")
    if hints is not None and mode is not None and hints != mode:
        errs.append(invalid_value("metadata.annotations[service.kubernetes.io/topology-mode]", mode,
                                  "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified"))
    errs += _validate_spec(spec, annotations)
    return unique(errs)


def service_fields(obj: Obj) -> dict[str, str]:
    spec = as_dict(obj.get("spec"))
    return {"spec.clusterIP": as_str(spec.get("clusterIP")), "spec.type": as_str(spec.get("type"))}


SCHEMA = kind_schema(spec={
    "type": S, "ports": arr({"name": S, "protocol": S, "port": INT, "targetPort": IS, "nodePort": INT, "appProtocol": S}),
    "selector": STRING_MAP, "clusterIP": S, "clusterIPs": STRINGS, "externalIPs": STRINGS, "sessionAffinity": S,
    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": INT}}, "loadBalancerIP": S, "loadBalancerSourceRanges": STRINGS,
    "externalName": S, "externalTrafficPolicy": S, "healthCheckNodePort": INT, "publishNotReadyAddresses": B,
    "ipFamilies": STRINGS, "ipFamilyPolicy": S, "allocateLoadBalancerNodePorts": B, "loadBalancerClass": S,
    "internalTrafficPolicy": S, "trafficDistribution": S,
}, status={"loadBalancer": OBJ, "conditions": arr(OBJ)})

def keep_allocated_values(new: Obj, old: Obj) -> None:
    """An update that leaves out server-allocated values keeps them (the service
    strategy's patchAllocatedValues): clusterIP(s), node ports, health check port."""
    spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return
    if spec.get("type", "ClusterIP") != "ExternalName":
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            if spec.get("clusterIP") in (None, old_spec.get("clusterIP")):
                spec["clusterIPs"] = old_spec["clusterIPs"]
    if spec.get("type") in ("NodePort", "LoadBalancer") and isinstance(spec.get("ports"), list):
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for p in spec["ports"]:
            if isinstance(p, dict) and not p.get("nodePort"):
                prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                if prev and prev.get("nodePort"):
                    p["nodePort"] = prev["nodePort"]
    if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
        if spec.get("externalTrafficPolicy") in ("Local",):
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


SERVICES = REGISTRY.add(ResourceType(
    group="", version="v1", kind="Service", plural="services", singular="service", namespaced=True,
    short_names=("svc",), categories=("all",), subresources=("status",),
    default=default_service, prepare_update=keep_allocated_values, validate=with_types(SCHEMA, validate_service), fields=service_fields,
))
