"""PodSpec defaulting and validation, shared by Pods and pod templates.

Defaults follow ``pkg/apis/core/v1/defaults.go``: :func:`default_pod_spec`
applies to every PodSpec (pods and Deployment/ReplicaSet templates);
:func:`default_pod_only` adds what Kubernetes applies to Pod objects alone
(``enableServiceLinks``, requests defaulted from limits, host-network ports).
Validation follows ``ValidatePodSpec``; :func:`validate_pod_spec_update` holds
the rules for updating a running pod's spec.
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from typing import Any

from cloudlet.api.errors import duplicate, forbidden_field, invalid_value, not_supported, required
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
from cloudlet.resources.affinity import (
    validate_affinity,
    validate_tolerations,
    validate_topology_spread,
)
from cloudlet.resources.containers import (
    PodContext,
    default_container,
    validate_containers,
    validate_ephemeral_containers,
    validate_init_containers,
)
from cloudlet.resources.quantity import canonicalize_resource_list, parse_quantity
from cloudlet.resources.requirements import (
    validate_container_resource_name,
    validate_resource_quantity_value,
)
from cloudlet.resources.security import validate_id, validate_seccomp_profile
from cloudlet.resources.validation import (
    inclusive_range_error,
    is_dns1123_subdomain_with_underscore,
    name_is_dns_subdomain,
    parse_ip,
    validate_annotations,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_labels,
    validate_qualified_name,
)
from cloudlet.resources.volumes import default_volume, validate_volumes

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
MAX_INT32 = 2**31 - 1

# --- defaults -------------------------------------------------------------------------


def default_pod_spec(spec: Obj, is_pod: bool = False) -> None:
    """``SetDefaults_PodSpec`` and the defaults of everything a PodSpec contains."""
    set_default(spec, "dnsPolicy", "ClusterFirst")
    set_default(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    set_default(spec, "schedulerName", "default-scheduler")
    host_network = spec.get("hostNetwork") is True
    for name in ("containers", "initContainers", "ephemeralContainers"):
        for ctr in dicts(spec.get(name)):
            default_container(ctr, host_network=host_network, is_pod=is_pod and name != "ephemeralContainers")
    for volume in dicts(spec.get("volumes")):
        default_volume(volume)
    canonicalize_resource_list(spec.get("overhead"))
    resources = spec.get("resources")
    if isinstance(resources, dict):
        for name in ("limits", "requests"):
            canonicalize_resource_list(resources.get(name))


def default_pod_only(spec: Obj) -> None:
    """``SetDefaults_Pod``: applied to Pod objects, not to pod templates."""
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True


def default_pod_template(template: Obj) -> None:
    """Defaults for a ``PodTemplateSpec`` (metadata is left alone)."""
    default_pod_spec(ensure_dict(template, "spec"), is_pod=False)


# --- validation -----------------------------------------------------------------------


def _validate_dns_config(spec: Obj, path: str) -> Errors:
    config, policy = spec.get("dnsConfig"), spec.get("dnsPolicy")
    if policy == "None":
        if config is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(as_dict(config).get("nameservers")):
            return [required(child(path, "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if config is None:
        return []
    config = as_dict(config)
    errs: Errors = []
    nameservers = as_list(config.get("nameservers"))
    if len(nameservers) > 3:
        errs.append(invalid_value(child(path, "nameservers"), nameservers, "must not have more than 3 nameservers"))
    for i, ns in enumerate(nameservers):
        if not isinstance(ns, str) or parse_ip(ns) is None:
            errs.append(invalid_value(index(child(path, "nameservers"), i), ns,
                                      "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    searches = [as_str(s) for s in as_list(config.get("searches"))]
    if len(searches) > 32:
        errs.append(invalid_value(child(path, "searches"), searches, "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        errs.append(invalid_value(child(path, "searches"), searches,
                                  "must not have more than 2048 characters (including spaces) in the search list"))
    for i, search in enumerate(searches):
        if search != ".":
            search = search.removesuffix(".")
            errs += [invalid_value(index(child(path, "searches"), i), search, m)
                     for m in is_dns1123_subdomain_with_underscore(search)]
    for i, option in enumerate(as_list(config.get("options"))):
        if not as_dict(option).get("name"):
            errs.append(required(index(child(path, "options"), i), "must not be empty"))
    return errs


def _validate_pod_security_context(spec: Obj, path: str) -> Errors:
    sc = spec.get("securityContext")
    if sc is None:
        return []
    sc = as_dict(sc)
    errs = validate_id(sc.get("fsGroup"), child(path, "fsGroup"))
    errs += validate_id(sc.get("runAsUser"), child(path, "runAsUser"))
    errs += validate_id(sc.get("runAsGroup"), child(path, "runAsGroup"))
    for i, gid in enumerate(as_list(sc.get("supplementalGroups"))):
        errs += validate_id(gid, index(child(path, "supplementalGroups"), i))
    if sc.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        errs.append(invalid_value(child(path, "shareProcessNamespace"), True, "ShareProcessNamespace and HostPID cannot both be enabled"))
    names: set[str] = set()
    for i, sysctl in enumerate(as_list(sc.get("sysctls"))):
        p, name = index(child(path, "sysctls"), i), as_str(as_dict(sysctl).get("name"))
        if not name:
            errs.append(required(child(p, "name"), ""))
        elif len(name) > 253 or not _SYSCTL.fullmatch(name):
            errs.append(invalid_value(child(p, "name"), name, f"must have at most 253 characters and match regex {_SYSCTL.pattern}"))
        elif name in names:
            errs.append(duplicate(child(p, "name"), name))
        names.add(name)
    for key_, allowed in (("fsGroupChangePolicy", ("Always", "OnRootMismatch")),
                          ("supplementalGroupsPolicy", ("Merge", "Strict")),
                          ("seLinuxChangePolicy", ("MountOption", "Recursive"))):
        if sc.get(key_) is not None and sc[key_] not in allowed:
            errs.append(not_supported(child(path, key_), sc[key_], allowed))
    return errs + validate_seccomp_profile(sc.get("seccompProfile"), child(path, "seccompProfile"))


_SYSCTL = re.compile(r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")


def _validate_host_network_ports(spec: Obj, path: str, is_pod: bool) -> Errors:
    if spec.get("hostNetwork") is not True:
        return []
    errs: Errors = []
    for i, ctr in enumerate(dicts(spec.get("containers"))):
        for j, port in enumerate(dicts(ctr.get("ports"))):
            host, cport = port.get("hostPort") or 0, port.get("containerPort") or 0
            if (is_pod or host != 0) and host != cport:
                p = child(index(child(index(child(path, "containers"), i), "ports"), j), "hostPort")
                errs.append(invalid_value(p, host, "must match `containerPort` when `hostNetwork` is true"))
    return errs


def _validate_overhead(overhead: Any, path: str) -> Errors:
    errs: Errors = []
    for name, value in as_dict(overhead).items():
        p = f"{child(path, 'limits')}[{name}]"
        errs += validate_container_resource_name(name, p) + validate_resource_quantity_value(name, value, p)
    return errs


def validate_pod_spec(spec: Any, path: str = "spec", *, is_pod: bool = False) -> Errors:
    """``ValidatePodSpec``; ``is_pod`` adds the checks Kubernetes applies to Pods only."""
    if not isinstance(spec, dict):
        return [required(child(path, "containers"), "")] if spec is None else [invalid_value(path, spec, "must be an object")]
    errs: Errors = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds"), ""))
    elif not is_int(grace):
        errs.append(invalid_value(child(path, "terminationGracePeriodSeconds"), grace, "must be an integer"))
        grace = None
    host_users = as_dict(spec.get("securityContext")).get("hostUsers") is not False
    volumes, verrs = validate_volumes(spec.get("volumes"), child(path, "volumes"), is_pod=is_pod)
    errs += verrs
    claim_names = {as_str(as_dict(c).get("name")) for c in as_list(spec.get("resourceClaims")) if as_dict(c).get("name")}
    errs += _validate_resource_claims(spec.get("resourceClaims"), child(path, "resourceClaims"))
    ctx = PodContext(volumes=volumes, grace_period=grace, restart_policy=as_str(spec.get("restartPolicy")),
                     is_pod=is_pod, host_users=host_users, claim_names=claim_names)
    errs += validate_containers(spec.get("containers"), ctx, child(path, "containers"))
    errs += validate_init_containers(spec.get("initContainers"), spec.get("containers"), ctx, child(path, "initContainers"))
    errs += validate_ephemeral_containers(spec.get("ephemeralContainers"), spec, ctx, child(path, "ephemeralContainers"))
    errs += _validate_host_network_ports(spec, path, is_pod)
    errs += _enum(spec.get("restartPolicy"), RESTART_POLICIES, child(path, "restartPolicy"))
    errs += _enum(spec.get("dnsPolicy"), DNS_POLICIES, child(path, "dnsPolicy"))
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    errs += _validate_pod_security_context(spec, child(path, "securityContext"))
    for i, secret in enumerate(as_list(spec.get("imagePullSecrets"))):
        if not isinstance(secret, dict) or set(secret) - {"name"}:
            errs.append(invalid_value(index(child(path, "imagePullSecrets"), i), secret, "only name may be set"))
    errs += validate_affinity(spec.get("affinity"), child(path, "affinity"))
    errs += _validate_dns_config(spec, child(path, "dnsConfig"))
    for i, gate in enumerate(as_list(spec.get("readinessGates"))):
        errs += validate_qualified_name(as_str(as_dict(gate).get("conditionType")), child(index(child(path, "readinessGates"), i), "conditionType"))
    errs += _validate_scheduling_gates(spec.get("schedulingGates"), child(path, "schedulingGates"))
    errs += validate_topology_spread(spec.get("topologySpreadConstraints"), child(path, "topologySpreadConstraints"))
    if not host_users:
        for field_name in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field_name) is True:
                errs.append(forbidden_field(child(path, field_name), "when `pod.Spec.HostUsers` is false"))
    for field_name in ("serviceAccountName", "nodeName", "priorityClassName"):
        value = spec.get(field_name)
        if value:
            errs += [invalid_value(child(path, field_name), value, m) for m in name_is_dns_subdomain(as_str(value))]
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not is_int(deadline) or not 1 <= deadline <= MAX_INT32):
        errs.append(invalid_value(child(path, "activeDeadlineSeconds"), deadline, inclusive_range_error(1, MAX_INT32)))
    for field_name in ("hostname", "subdomain"):
        if spec.get(field_name):
            errs += validate_dns1123_label(as_str(spec[field_name]), child(path, field_name))
    errs += validate_tolerations(spec.get("tolerations"), child(path, "tolerations"))
    for i, alias in enumerate(as_list(spec.get("hostAliases"))):
        ap, alias = index(child(path, "hostAliases"), i), as_dict(alias)
        ip = alias.get("ip")
        if not isinstance(ip, str) or parse_ip(ip) is None:
            errs.append(invalid_value(child(ap, "ip"), ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        for j, hostname in enumerate(as_list(alias.get("hostnames"))):
            errs += validate_dns1123_subdomain(as_str(hostname), index(child(ap, "hostnames"), j))
    if spec.get("runtimeClassName") is not None:
        rc = spec["runtimeClassName"]
        errs += [invalid_value(child(path, "runtimeClassName"), rc, m) for m in name_is_dns_subdomain(as_str(rc))]
    if spec.get("preemptionPolicy") is not None:
        errs += _enum(spec["preemptionPolicy"], PREEMPTION_POLICIES, child(path, "preemptionPolicy"))
    priority = spec.get("priority")
    if priority is not None and (not is_int(priority) or not -(2**31) <= priority <= MAX_INT32):
        errs.append(invalid_value(child(path, "priority"), priority, "must be a 32-bit integer"))
    if spec.get("overhead") is not None:
        errs += _validate_overhead(spec["overhead"], child(path, "overhead"))
    os_ = spec.get("os")
    if os_ is not None:
        name = as_dict(os_).get("name")
        if not name:
            errs.append(required(child(child(path, "os"), "name"), "cannot be empty"))
        elif name not in ("linux", "windows"):
            errs.append(not_supported(child(path, "os"), name, ("linux", "windows")))
    return errs


def _enum(value: Any, allowed: tuple[str, ...], path: str) -> Errors:
    if value in (None, ""):
        return [required(path, "")]
    if value not in allowed:
        return [not_supported(path, value, allowed)]
    return []


def _validate_scheduling_gates(gates: Any, path: str) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for i, gate in enumerate(as_list(gates)):
        name = as_str(as_dict(gate).get("name"))
        errs += validate_qualified_name(name, index(path, i))
        if name in seen:
            errs.append(duplicate(index(path, i), name))
        seen.add(name)
    return errs


def _validate_resource_claims(claims: Any, path: str) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for i, claim in enumerate(as_list(claims)):
        p, claim = index(path, i), as_dict(claim)
        name = as_str(claim.get("name"))
        if not name:
            errs.append(required(child(p, "name"), ""))
        elif name in seen:
            errs.append(duplicate(child(p, "name"), name))
        else:
            errs += validate_dns1123_label(name, child(p, "name"))
            seen.add(name)
        sources = [k for k in ("resourceClaimName", "resourceClaimTemplateName") if claim.get(k) is not None]
        if len(sources) == 2:
            errs.append(invalid_value(p, claim, "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified"))
        elif not sources:
            errs.append(invalid_value(p, claim, "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`"))
        for k in sources:
            errs += [invalid_value(child(p, k), claim[k], m) for m in name_is_dns_subdomain(as_str(claim[k]))]
    return errs


def validate_pod_template(template: Any, path: str) -> Errors:
    """``ValidatePodTemplateSpec`` (labels/annotations, then the PodSpec)."""
    if template is None:
        return [required(path, "")]
    template = as_dict(template)
    meta = as_dict(template.get("metadata"))
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    spec = template.get("spec")
    errs += validate_pod_spec(spec, child(path, "spec"))
    if as_list(as_dict(spec).get("ephemeralContainers")):
        errs.append(forbidden_field(child(child(path, "spec"), "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
    return errs


# --- updates ------------------------------------------------------------------------------

UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            _diff(old.get(k), new.get(k), child(path, k), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, index(path, i), out)
    else:
        if old is not None:
            out.append(f"-\t{path}: {json.dumps(old, sort_keys=True)}")
        if new is not None:
            out.append(f"+\t{path}: {json.dumps(new, sort_keys=True)}")


def _tolerations_update(new: list[Any], old: list[Any], path: str) -> Errors:
    for old_tol in old:
        found = False
        for new_tol in new:
            a, b = dict(as_dict(old_tol)), dict(as_dict(new_tol))
            a.pop("tolerationSeconds", None)
            b.pop("tolerationSeconds", None)
            if a == b:
                found = True
                break
        if not found:
            return [forbidden_field(path, "existing toleration can not be modified except its tolerationSeconds")]
    return validate_tolerations(new, path)


def validate_pod_spec_update(new: Obj, old: Obj, path: str = "spec") -> Errors:
    """``ValidatePodUpdate``'s spec rules: only images, activeDeadlineSeconds, added
    tolerations and removed scheduling gates may change."""
    errs: Errors = []
    for name in ("containers", "initContainers"):
        new_c, old_c = as_list(new.get(name)), as_list(old.get(name))
        if len(new_c) != len(old_c):
            return errs + [forbidden_field(child(path, name), "pod updates may not add or remove containers")]
        for i, ctr in enumerate(new_c):
            image = as_dict(ctr).get("image")
            if not image:
                errs.append(required(child(index(child(path, name), i), "image"), ""))
            elif isinstance(image, str) and image != image.strip():
                errs.append(invalid_value(child(index(child(path, name), i), "image"), image, "must not have leading or trailing whitespace"))
    deadline, old_deadline = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    deadline_path = child(path, "activeDeadlineSeconds")
    if deadline is not None:
        if not is_int(deadline) or not 0 <= deadline <= MAX_INT32:
            return errs + [invalid_value(deadline_path, deadline, inclusive_range_error(0, MAX_INT32))]
        if is_int(old_deadline) and old_deadline < deadline:
            return errs + [invalid_value(deadline_path, deadline, "must be less than or equal to previous value")]
    elif old_deadline is not None:
        errs.append(invalid_value(deadline_path, None, "must not update from a positive integer to nil value"))
    errs += _tolerations_update(as_list(new.get("tolerations")), as_list(old.get("tolerations")), child(path, "tolerations"))
    old_gates = {as_str(as_dict(g).get("name")) for g in as_list(old.get("schedulingGates"))}
    for i, gate in enumerate(as_list(new.get("schedulingGates"))):
        name = as_str(as_dict(gate).get("name"))
        if name not in old_gates:
            errs.append(forbidden_field(child(index(child(path, "schedulingGates"), i), "name"),
                                        f"only deletion is allowed, but found new scheduling gate '{name}'"))
    if new == old:
        return errs
    munged = copy.deepcopy(new)
    for name in ("containers", "initContainers"):
        for ctr, old_ctr in zip(as_list(munged.get(name)), as_list(old.get(name)), strict=True):
            if isinstance(ctr, dict):
                ctr["image"] = as_dict(old_ctr).get("image")
    for name in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(name, None)
        if name in old:
            munged[name] = copy.deepcopy(old[name])
    old_grace = old.get("terminationGracePeriodSeconds")
    if is_int(old_grace) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if old.get("schedulingGates") and munged.get("nodeSelector") != old.get("nodeSelector"):
        old_sel, new_sel = as_dict(old.get("nodeSelector")), as_dict(munged.get("nodeSelector"))
        if any(new_sel.get(k) != v for k, v in old_sel.items()):
            errs.append(invalid_value(child(path, "nodeSelector"), new_sel,
                                      "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
        munged["nodeSelector"] = copy.deepcopy(old.get("nodeSelector"))
        if munged["nodeSelector"] is None:
            munged.pop("nodeSelector")
    if munged != old:
        lines: list[str] = []
        _diff(old, munged, path, lines)
        detail = "pod updates may not change fields other than " + ",".join(UPDATABLE_POD_SPEC_FIELDS)
        errs.append(forbidden_field(path, detail + "\n" + "\n".join(lines)))
    return errs


def pod_qos_class(spec: Obj) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort`` (``qos.GetPodQOS``, container level)."""
    requests: set[str] = set()
    limits: set[str] = set()
    guaranteed = True
    containers = list(dicts(spec.get("containers"))) + list(dicts(spec.get("initContainers")))
    for ctr in containers:
        res = as_dict(ctr.get("resources"))
        req = {k: _amount(v) for k, v in as_dict(res.get("requests")).items() if k in ("cpu", "memory")}
        lim = {k: _amount(v) for k, v in as_dict(res.get("limits")).items() if k in ("cpu", "memory")}
        requests |= {k for k, v in req.items() if v != 0}
        limits |= {k for k, v in lim.items() if v != 0}
        if set(lim) != {"cpu", "memory"} or any(k in lim and lim[k] != v for k, v in req.items()):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and limits == {"cpu", "memory"}:
        return "Guaranteed"
    return "Burstable"


def _amount(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except ValueError:
        return Decimal(0)
