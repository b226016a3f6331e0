"""Container defaulting and validation (regular, init and ephemeral containers).

Part of the PodSpec rules in :mod:`cloudlet.resources.podspec`: image pull
policy, termination message, ports, env, probes and lifecycle handlers,
resources, volume mounts and security context, with Kubernetes' messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cloudlet.api.errors import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid_value,
    not_supported,
    required,
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
)
from cloudlet.resources.quantity import (
    canonicalize_resource_list,
    quantity_string,
)
from cloudlet.resources.requirements import validate_resource_requirements
from cloudlet.resources.security import local_descending_path, validate_security_context
from cloudlet.resources.validation import (
    inclusive_range_error,
    is_config_map_key,
    is_http_header_name,
    is_relaxed_env_var_name,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns_subdomain,
    validate_dns1123_label,
    validate_nonnegative,
    validate_qualified_name,
)

PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")

# --- defaults ------------------------------------------------------------------

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def image_tag(image: str) -> str:
    """The tag a container image resolves to: ``latest`` when neither tag nor digest
    is given, ``""`` for a digest-only or unparseable reference (``ParseImageName``)."""
    m = _REFERENCE.fullmatch(image)
    if m is None:
        return ""
    if m.group("domain") and "/" not in image.split("@")[0]:
        return ""
    tag, digest = m.group("tag"), m.group("digest")
    if not tag and not digest:
        return "latest"
    return tag or ""


def default_pull_policy(image: Any) -> str:
    return "Always" if image_tag(as_str(image)) == "latest" else "IfNotPresent"


def default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for name, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if probe.get(name) in (None, 0):
            probe[name] = value
    default_handler(probe)


def default_handler(handler: Any) -> None:
    http = as_dict(handler).get("httpGet")
    if isinstance(http, dict):
        set_default(http, "path", "/")
        set_default(http, "scheme", "HTTP")


def default_env(container: Obj) -> None:
    for env in dicts(container.get("env")):
        ref = as_dict(env.get("valueFrom")).get("fieldRef")
        if isinstance(ref, dict):
            set_default(ref, "apiVersion", "v1")


def default_container(container: Obj, host_network: bool = False, is_pod: bool = False) -> None:
    """``SetDefaults_Container`` plus the declarative defaults of its sub-structs."""
    if container.get("imagePullPolicy") in (None, ""):
        container["imagePullPolicy"] = default_pull_policy(container.get("image"))
    set_default(container, "terminationMessagePath", "/dev/termination-log")
    set_default(container, "terminationMessagePolicy", "File")
    resources = ensure_dict(container, "resources")
    for name in ("limits", "requests"):
        canonicalize_resource_list(resources.get(name))
    if is_pod and isinstance(resources.get("limits"), dict):
        # SetDefaults_Pod: requests default to limits (pods only, not templates).
        requests = ensure_dict(resources, "requests")
        for name, value in resources["limits"].items():
            requests.setdefault(name, value)
    for port in dicts(container.get("ports")):
        set_default(port, "protocol", "TCP")
        if is_pod and host_network and port.get("hostPort") in (None, 0):
            port["hostPort"] = port.get("containerPort")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        default_probe(container.get(probe))
    lifecycle = as_dict(container.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        default_handler(lifecycle.get(hook))
    default_env(container)


# --- validation ------------------------------------------------------------------


@dataclass
class PodContext:
    """What container validation needs to know about the enclosing pod spec."""

    volumes: dict[str, Obj] = field(default_factory=dict)
    grace_period: int | None = 30
    restart_policy: str = "Always"
    is_pod: bool = False
    host_users: bool = True
    claim_names: set[str] = field(default_factory=set)


def validate_port_num_or_name(port: Any, path: str) -> Errors:
    """An IntOrString port: a number in 1..65535 or an IANA_SVC_NAME."""
    if is_int(port):
        return [invalid_value(path, port, m) for m in is_valid_port_num(port)]
    if isinstance(port, str):
        return [invalid_value(path, port, m) for m in is_valid_port_name(port)]
    return [invalid_value(path, port, inclusive_range_error(1, 65535))]


def validate_protocol(protocol: Any, path: str) -> Errors:
    if protocol in (None, ""):
        return [required(path, "")]
    if protocol not in PROTOCOLS:
        return [not_supported(path, protocol, PROTOCOLS)]
    return []


def validate_container_ports(ports: Any, path: str) -> Errors:
    errs: Errors = []
    names: set[str] = set()
    for i, port in enumerate(as_list(ports)):
        p, port = index(path, i), as_dict(port)
        name = port.get("name")
        if name:
            msgs = is_valid_port_name(as_str(name)) if isinstance(name, str) else ["must be a string"]
            if msgs:
                errs += [invalid_value(child(p, "name"), name, m) for m in msgs]
            elif name in names:
                errs.append(duplicate(child(p, "name"), name))
            else:
                names.add(name)
        cport = port.get("containerPort")
        if cport in (None, 0):
            errs.append(required(child(p, "containerPort"), ""))
        else:
            errs += [invalid_value(child(p, "containerPort"), cport, m) for m in is_valid_port_num(cport)]
        hport = port.get("hostPort")
        if hport not in (None, 0):
            errs += [invalid_value(child(p, "hostPort"), hport, m) for m in is_valid_port_num(hport)]
        errs += validate_protocol(port.get("protocol"), child(p, "protocol"))
    return errs


ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid")
RESOURCE_FIELD_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory",
                        "requests.cpu", "requests.ephemeral-storage", "requests.memory")


def validate_object_field_selector(ref: Obj, allowed: tuple[str, ...], path: str) -> Errors:
    if not ref.get("apiVersion"):
        return [required(child(path, "apiVersion"), "")]
    field_path = as_str(ref.get("fieldPath"))
    if not field_path:
        return [required(child(path, "fieldPath"), "")]
    m = re.fullmatch(r"(metadata\.(?:labels|annotations))\['(.*)'\]", field_path)
    if m:
        sub = m.group(2).lower() if m.group(1).endswith("annotations") else m.group(2)
        return validate_qualified_name(sub, path)
    if field_path not in allowed:
        return [not_supported(child(path, "fieldPath"), field_path, sorted(allowed))]
    return []


def validate_resource_field_selector(ref: Obj, path: str, volume: bool) -> Errors:
    errs: Errors = []
    resource = as_str(ref.get("resource"))
    if volume and not ref.get("containerName"):
        errs.append(required(child(path, "containerName"), ""))
    elif not resource:
        errs.append(required(child(path, "resource"), ""))
    elif resource not in RESOURCE_FIELD_PATHS and not resource.startswith(("requests.hugepages-", "limits.hugepages-")):
        errs.append(not_supported(child(path, "resource"), resource, RESOURCE_FIELD_PATHS))
    if ref.get("divisor") not in (None, "", 0, "0"):
        divisor = quantity_string(ref.get("divisor"))
        if resource in ("limits.cpu", "requests.cpu") and divisor not in ("1m", "1"):
            errs.append(invalid_value(child(path, "divisor"), resource,
                                      "only divisor's values 1m and 1 are supported with the cpu resource"))
        elif resource in ("limits.memory", "requests.memory") and divisor not in (
            "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"
        ):
            errs.append(invalid_value(child(path, "divisor"), resource,
                                      "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"))
    return errs


def _validate_key_selector(ref: Obj, path: str) -> Errors:
    name = as_str(ref.get("name"))
    errs = [invalid_value(child(path, "name"), name, m) for m in name_is_dns_subdomain(name)]
    k = as_str(ref.get("key"))
    if not k:
        errs.append(required(child(path, "key"), ""))
    else:
        errs += [invalid_value(child(path, "key"), k, m) for m in is_config_map_key(k)]
    return errs


def validate_env(env: Any, path: str) -> Errors:
    errs: Errors = []
    for i, var in enumerate(as_list(env)):
        p, var = index(path, i), as_dict(var)
        name = var.get("name")
        if not name:
            errs.append(required(child(p, "name"), ""))
        else:
            errs += [invalid_value(child(p, "name"), name, m) for m in is_relaxed_env_var_name(as_str(name))]
        value_from = var.get("valueFrom")
        if value_from is None:
            continue
        vp, value_from = child(p, "valueFrom"), as_dict(value_from)
        sources = 0
        if isinstance(value_from.get("fieldRef"), dict):
            sources += 1
            errs += validate_object_field_selector(value_from["fieldRef"], ENV_FIELD_PATHS, child(vp, "fieldRef"))
        if isinstance(value_from.get("resourceFieldRef"), dict):
            sources += 1
            errs += validate_resource_field_selector(value_from["resourceFieldRef"], child(vp, "resourceFieldRef"), False)
        for name_ in ("configMapKeyRef", "secretKeyRef"):
            if isinstance(value_from.get(name_), dict):
                sources += 1
                errs += _validate_key_selector(value_from[name_], child(vp, name_))
        if sources == 0:
            errs.append(invalid_value(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif var.get("value"):
            errs.append(invalid_value(vp, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errs.append(invalid_value(vp, "", "may not have more than one field specified at a time"))
    return errs


def validate_env_from(env_from: Any, path: str) -> Errors:
    errs: Errors = []
    for i, source in enumerate(as_list(env_from)):
        p, source = index(path, i), as_dict(source)
        prefix = source.get("prefix")
        if prefix:
            errs += [invalid_value(child(p, "prefix"), prefix, m) for m in is_relaxed_env_var_name(as_str(prefix))]
        count = 0
        for name in ("configMapRef", "secretRef"):
            if isinstance(source.get(name), dict):
                count += 1
                ref_name = as_str(source[name].get("name"))
                if not ref_name:
                    errs.append(required(child(child(p, name), "name"), ""))
                else:
                    errs += [invalid_value(child(child(p, name), "name"), ref_name, m)
                             for m in name_is_dns_subdomain(ref_name, True)]
        if count == 0:
            errs.append(invalid_value(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid_value(path, "", "may not have more than one field specified at a time"))
    return errs


def validate_volume_mounts(ctr: Obj, ctx: PodContext, path: str) -> Errors:
    errs: Errors = []
    mount_points: set[str] = set()
    devices = {as_str(d.get("name")): as_str(d.get("devicePath")) for d in dicts(ctr.get("volumeDevices"))}
    privileged = as_dict(ctr.get("securityContext")).get("privileged") is True
    for i, mount in enumerate(as_list(ctr.get("volumeMounts"))):
        p, mount = index(path, i), as_dict(mount)
        name, mount_path = as_str(mount.get("name")), as_str(mount.get("mountPath"))
        if not name:
            errs.append(required(child(p, "name"), ""))
        if name not in ctx.volumes:
            errs.append(FieldError("NotFound", child(p, "name"), name))
        if not mount_path:
            errs.append(required(child(p, "mountPath"), ""))
        if mount_path in mount_points:
            errs.append(invalid_value(child(p, "mountPath"), mount_path, "must be unique"))
        mount_points.add(mount_path)
        if name in devices:
            errs.append(invalid_value(child(p, "name"), name, "must not already exist in volumeDevices"))
        if mount_path in devices.values():
            errs.append(invalid_value(child(p, "mountPath"), mount_path, "must not already exist as a path in volumeDevices"))
        sub_path, sub_expr = as_str(mount.get("subPath")), as_str(mount.get("subPathExpr"))
        if "image" in as_dict(ctx.volumes.get(name)):
            if sub_path:
                errs.append(invalid_value(child(p, "subPath"), sub_path, "not allowed in image volume sources"))
            if sub_expr:
                errs.append(invalid_value(child(p, "subPathExpr"), sub_expr, "not allowed in image volume sources"))
        if sub_path:
            errs += local_descending_path(sub_path, child(path, "subPath"))
        if sub_expr:
            if sub_path:
                errs.append(invalid_value(child(p, "subPathExpr"), sub_expr, "subPathExpr and subPath are mutually exclusive"))
            errs += local_descending_path(sub_expr, child(path, "subPathExpr"))
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            prop_path = child(path, "mountPropagation")
            if propagation not in ("Bidirectional", "HostToContainer", "None"):
                errs.append(not_supported(prop_path, propagation, ("Bidirectional", "HostToContainer", "None")))
            if propagation == "Bidirectional" and not privileged:
                errs.append(forbidden_field(prop_path, "Bidirectional mount propagation is available only to privileged containers"))
        rro = mount.get("recursiveReadOnly")
        if rro is not None and rro != "Disabled":
            rro_path = child(path, "recursiveReadOnly")
            if rro in ("Enabled", "IfPossible"):
                if mount.get("readOnly") is not True:
                    errs.append(forbidden_field(rro_path, "may only be specified when readOnly is true"))
                if propagation not in (None, "None"):
                    errs.append(forbidden_field(rro_path, "may only be specified when mountPropagation is None or not specified"))
            else:
                errs.append(not_supported(rro_path, rro, ("Disabled", "Enabled", "IfPossible")))
    return errs


def validate_volume_devices(ctr: Obj, ctx: PodContext, path: str) -> Errors:
    errs: Errors = []
    mounts = {as_str(m.get("name")): as_str(m.get("mountPath")) for m in dicts(ctr.get("volumeMounts"))}
    names: set[str] = set()
    paths: set[str] = set()
    for i, dev in enumerate(as_list(ctr.get("volumeDevices"))):
        p, dev = index(path, i), as_dict(dev)
        name, dev_path = as_str(dev.get("name")), as_str(dev.get("devicePath"))
        source = ctx.volumes.get(name)
        if not name:
            errs.append(required(child(p, "name"), ""))
        if name in names:
            errs.append(invalid_value(child(p, "name"), name, "must be unique"))
        if source is not None and "persistentVolumeClaim" not in source and "ephemeral" not in source:
            errs.append(invalid_value(child(p, "name"), name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
        if source is None:
            errs.append(FieldError("NotFound", child(p, "name"), name))
        if not dev_path:
            errs.append(required(child(p, "devicePath"), ""))
        if dev_path in paths:
            errs.append(invalid_value(child(p, "devicePath"), dev_path, "must be unique"))
        if dev_path and ".." in dev_path.split("/"):
            errs.append(invalid_value(child(p, "devicePath"), dev_path, "can not contain backsteps ('..')"))
        else:
            paths.add(dev_path)
        if name in mounts:
            errs.append(invalid_value(child(p, "name"), name, "must not already exist in volumeMounts"))
        if dev_path in mounts.values():
            errs.append(invalid_value(child(p, "devicePath"), dev_path, "must not already exist as a path in volumeMounts"))
        if name:
            names.add(name)
    return errs


def validate_pull_policy(policy: Any, path: str) -> Errors:
    if policy in (None, ""):
        return [required(path, "")]
    if policy not in PULL_POLICIES:
        return [not_supported(path, policy, PULL_POLICIES)]
    return []


# --- probes and handlers -------------------------------------------------------------


def validate_handler(handler: Obj, grace: int | None, path: str, allow_sleep: bool, allow_grpc: bool) -> Errors:
    errs: Errors = []
    count = 0
    kinds = ["exec", "httpGet", "tcpSocket"] + (["grpc"] if allow_grpc else []) + (["sleep"] if allow_sleep else [])
    for kind in kinds:
        if kind not in handler or handler[kind] is None:
            continue
        p = child(path, kind)
        if count > 0:
            errs.append(forbidden_field(p, "may not specify more than 1 handler type"))
            continue
        count += 1
        action = as_dict(handler[kind])
        if kind == "exec" and not as_list(action.get("command")):
            errs.append(required(child(p, "command"), ""))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(required(child(p, "path"), ""))
            errs += validate_port_num_or_name(action.get("port"), child(p, "port"))
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.append(not_supported(child(p, "scheme"), action.get("scheme") or "", ("HTTP", "HTTPS")))
            for header in dicts(action.get("httpHeaders")):
                hname = as_str(header.get("name"))
                errs += [invalid_value(child(p, "httpHeaders"), hname, m) for m in is_http_header_name(hname)]
        elif kind == "tcpSocket":
            errs += validate_port_num_or_name(action.get("port"), child(p, "port"))
        elif kind == "grpc":
            errs += validate_port_num_or_name(action.get("port"), child(p, "port"))
        elif kind == "sleep" and grace is not None:
            seconds = action.get("seconds")
            if not is_int(seconds) or seconds < 0 or seconds > grace:
                errs.append(invalid_value(p, seconds, f"must be non-negative and less than terminationGracePeriodSeconds ({grace})"))
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def validate_probe(probe: Any, grace: int | None, path: str, kind: str) -> Errors:
    if probe is None:
        return []
    probe = as_dict(probe)
    errs = validate_handler(probe, grace, path, allow_sleep=False, allow_grpc=True)
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs += validate_nonnegative(probe.get(name), child(path, name))
    tgps = probe.get("terminationGracePeriodSeconds")
    if tgps is not None and (not is_int(tgps) or tgps <= 0):
        errs.append(invalid_value(child(path, "terminationGracePeriodSeconds"), tgps, "must be greater than 0"))
    if kind in ("liveness", "startup") and probe.get("successThreshold") not in (None, 1):
        errs.append(invalid_value(child(path, "successThreshold"), probe.get("successThreshold"), "must be 1"))
    if kind == "readiness" and tgps is not None:
        errs.append(invalid_value(child(path, "terminationGracePeriodSeconds"), tgps, "must not be set for readinessProbes"))
    return errs


def validate_lifecycle(lifecycle: Any, grace: int | None, path: str) -> Errors:
    errs: Errors = []
    for hook in ("postStart", "preStop"):
        handler = as_dict(lifecycle).get(hook)
        if handler is not None:
            errs += validate_handler(as_dict(handler), grace, child(path, hook), allow_sleep=True, allow_grpc=False)
    stop_signal = as_dict(lifecycle).get("stopSignal")
    if stop_signal is not None and not re.fullmatch(r"SIG[A-Z0-9+-]+", as_str(stop_signal)):
        errs.append(invalid_value(child(path, "stopSignal"), stop_signal, "must be a valid signal name"))
    return errs


def validate_resize_policy(policies: Any, path: str, restart_policy: str) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for i, policy in enumerate(as_list(policies)):
        policy = as_dict(policy)
        name, restart = policy.get("resourceName"), policy.get("restartPolicy")
        if name in seen:
            errs.append(duplicate(index(path, i), name))
        seen.add(as_str(name))
        if name in (None, ""):
            errs.append(required(path, ""))
        elif name not in ("cpu", "memory"):
            errs.append(not_supported(path, name, ("cpu", "memory")))
        if restart in (None, ""):
            errs.append(required(path, ""))
        elif restart not in ("NotRequired", "RestartContainer"):
            errs.append(not_supported(path, restart, ("NotRequired", "RestartContainer")))
        if restart_policy == "Never" and restart != "NotRequired":
            errs.append(invalid_value(path, restart, "must be 'NotRequired' when `restartPolicy` is 'Never'"))
    return errs


def validate_container_common(ctr: Obj, ctx: PodContext, path: str) -> Errors:
    """Rules shared by every container type (``validateContainerCommon``)."""
    errs: Errors = []
    name = ctr.get("name")
    if not name:
        errs.append(required(child(path, "name"), ""))
    else:
        errs += validate_dns1123_label(as_str(name) if isinstance(name, str) else str(name), child(path, "name"))
    if not ctr.get("image"):
        errs.append(required(child(path, "image"), ""))
    policy = ctr.get("terminationMessagePolicy")
    if policy in (None, ""):
        errs.append(required(child(path, "terminationMessagePolicy"), ""))
    elif policy not in TERMINATION_MESSAGE_POLICIES:
        errs.append(not_supported(child(path, "terminationMessagePolicy"), policy, TERMINATION_MESSAGE_POLICIES))
    errs += validate_container_ports(ctr.get("ports"), child(path, "ports"))
    errs += validate_env(ctr.get("env"), child(path, "env"))
    errs += validate_env_from(ctr.get("envFrom"), child(path, "envFrom"))
    errs += validate_volume_mounts(ctr, ctx, child(path, "volumeMounts"))
    errs += validate_volume_devices(ctr, ctx, child(path, "volumeDevices"))
    errs += validate_pull_policy(ctr.get("imagePullPolicy"), child(path, "imagePullPolicy"))
    errs += validate_resource_requirements(ctr.get("resources"), child(path, "resources"), ctx.claim_names)
    errs += validate_resize_policy(ctr.get("resizePolicy"), child(path, "resizePolicy"), ctx.restart_policy)
    errs += validate_security_context(ctr.get("securityContext"), child(path, "securityContext"), ctx.host_users)
    if ctx.is_pod and isinstance(ctr.get("image"), str) and ctr["image"] != ctr["image"].strip():
        errs.append(invalid_value(child(path, "image"), ctr["image"], "must not have leading or trailing whitespace"))
    return errs


def _host_port_conflicts(containers: list[Obj], path: str) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(as_list(ctr.get("ports"))):
            port = as_dict(port)
            host_port = port.get("hostPort")
            if host_port in (None, 0):
                continue
            text = f"{as_str(port.get('protocol'))}/{as_str(port.get('hostIP'))}/{host_port}"
            if text in seen:
                errs.append(duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"), text))
            seen.add(text)
    return errs


def validate_containers(containers: Any, ctx: PodContext, path: str) -> Errors:
    items = [as_dict(c) for c in as_list(containers)]
    if not items:
        return [required(path, "")]
    errs: Errors = []
    names: set[str] = set()
    for i, ctr in enumerate(items):
        p = index(path, i)
        errs += validate_container_common(ctr, ctx, p)
        name = ctr.get("name")
        if name in names:
            errs.append(duplicate(child(p, "name"), name))
        else:
            names.add(as_str(name))
        if ctr.get("lifecycle") is not None:
            errs += validate_lifecycle(ctr["lifecycle"], ctx.grace_period, child(p, "lifecycle"))
        errs += validate_probe(ctr.get("livenessProbe"), ctx.grace_period, child(p, "livenessProbe"), "liveness")
        errs += validate_probe(ctr.get("readinessProbe"), ctx.grace_period, child(p, "readinessProbe"), "readiness")
        errs += validate_probe(ctr.get("startupProbe"), ctx.grace_period, child(p, "startupProbe"), "startup")
        if ctr.get("restartPolicy") is not None:
            errs.append(forbidden_field(child(p, "restartPolicy"), "may not be set for non-init containers"))
    return errs + _host_port_conflicts(items, path)


def validate_init_containers(init: Any, regular: Any, ctx: PodContext, path: str) -> Errors:
    errs: Errors = []
    names = {as_str(as_dict(c).get("name")) for c in as_list(regular)}
    for i, ctr in enumerate(as_list(init)):
        p, ctr = index(path, i), as_dict(ctr)
        errs += validate_container_common(ctr, ctx, p)
        restart = ctr.get("restartPolicy")
        if restart is not None and restart != "Always":
            errs.append(not_supported(child(p, "restartPolicy"), restart, ("Always",)))
        name = ctr.get("name")
        if name in names:
            errs.append(duplicate(child(p, "name"), name))
        elif name:
            names.add(as_str(name))
        errs += _host_port_conflicts([ctr], path)
        if restart == "Always":
            if ctr.get("lifecycle") is not None:
                errs += validate_lifecycle(ctr["lifecycle"], ctx.grace_period, child(p, "lifecycle"))
            errs += validate_probe(ctr.get("livenessProbe"), ctx.grace_period, child(p, "livenessProbe"), "liveness")
            errs += validate_probe(ctr.get("readinessProbe"), ctx.grace_period, child(p, "readinessProbe"), "readiness")
            errs += validate_probe(ctr.get("startupProbe"), ctx.grace_period, child(p, "startupProbe"), "startup")
        else:
            for probe in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(probe) is not None:
                    errs.append(forbidden_field(child(p, probe), "may not be set for init containers without restartPolicy=Always"))
    return errs


EPHEMERAL_FORBIDDEN = ("ports", "resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resizePolicy", "restartPolicy")


def validate_ephemeral_containers(ephemeral: Any, spec: Obj, ctx: PodContext, path: str) -> Errors:
    errs: Errors = []
    others = {as_str(as_dict(c).get("name")) for c in as_list(spec.get("containers")) + as_list(spec.get("initContainers"))}
    names = set(others)
    for i, ctr in enumerate(as_list(ephemeral)):
        p, ctr = index(path, i), as_dict(ctr)
        errs += validate_container_common(ctr, PodContext(**{**ctx.__dict__, "is_pod": True}), p)
        name = as_str(ctr.get("name"))
        if name in names:
            errs.append(duplicate(child(p, "name"), name))
        names.add(name)
        target = ctr.get("targetContainerName")
        if target and target not in others:
            errs.append(FieldError("NotFound", child(p, "targetContainerName"), target))
        for name_ in EPHEMERAL_FORBIDDEN:
            if ctr.get(name_) not in (None, {}, []):
                errs.append(forbidden_field(child(p, name_), "cannot be set for an Ephemeral Container"))
        for j, mount in enumerate(dicts(ctr.get("volumeMounts"))):
            for sub in ("subPath", "subPathExpr"):
                if mount.get(sub):
                    errs.append(forbidden_field(child(index(child(p, "volumeMounts"), j), sub), "cannot be set for an Ephemeral Container"))
    return errs
