"""The core/v1 Pod kind: defaults, validation, field selectors, registration."""

from __future__ import annotations

from cloudlet.api.errors import forbidden_field
from cloudlet.resources._schema import OBJ, POD_SPEC, S, arr, kind_schema, with_types
from cloudlet.resources._util import (
    Errors,
    Obj,
    as_dict,
    as_list,
    as_str,
    child,
    ensure_dict,
    index,
    unique,
)
from cloudlet.resources.podspec import (
    default_pod_only,
    default_pod_spec,
    pod_qos_class,
    validate_pod_spec,
    validate_pod_spec_update,
)
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.validation import (
    meta_of,
    name_is_dns_subdomain,
    validate_immutable,
    validate_object_meta,
    validate_object_meta_update,
)


def default_pod(obj: Obj) -> None:
    spec = ensure_dict(obj, "spec")
    default_pod_spec(spec, is_pod=True)
    default_pod_only(spec)
    status = obj.get("status")
    if not isinstance(status, dict) or not status.get("phase"):
        # The pod strategy's PrepareForCreate: a new pod is Pending with its QoS class.
        status = ensure_dict(obj, "status")
        status["phase"] = "Pending"
    if not status.get("qosClass"):
        status["qosClass"] = pod_qos_class(spec)


def validate_pod(obj: Obj, old: Obj | None) -> Errors:
    meta, spec = meta_of(obj), obj.get("spec")
    errs = validate_object_meta(meta, True, name_check=name_is_dns_subdomain)
    errs += validate_pod_spec(spec, "spec", is_pod=True)
    spec = as_dict(spec)
    if not as_str(spec.get("serviceAccountName")):
        for vi, volume in enumerate(as_list(spec.get("volumes"))):
            for si, source in enumerate(as_list(as_dict(as_dict(volume).get("projected")).get("sources"))):
                if as_dict(source).get("serviceAccountToken") is not None:
                    p = child(index(child(child(index("spec.volumes", vi), "projected"), "sources"), si), "serviceAccountToken")
                    errs.append(forbidden_field(p, "must not be specified when serviceAccountName is not set"))
    if old is None:
        if as_list(spec.get("ephemeralContainers")):
            errs.append(forbidden_field("spec.ephemeralContainers", "cannot be set on create"))
        if spec.get("nodeName") and as_list(spec.get("schedulingGates")):
            errs.append(forbidden_field("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    else:
        errs += validate_object_meta_update(meta, meta_of(old))
        errs += validate_pod_spec_update(spec, as_dict(old.get("spec")))
        old_qos = as_dict(old.get("status")).get("qosClass")
        new_qos = as_dict(obj.get("status")).get("qosClass")
        if old_qos and new_qos:
            errs += validate_immutable(new_qos, old_qos, "status.qosClass")
    return unique(errs)


def pod_fields(obj: Obj) -> dict[str, str]:
    """The field-selector values of ``pod.ToSelectableFields``."""
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    pod_ips = as_list(status.get("podIPs"))
    pod_ip = as_str(as_dict(pod_ips[0]).get("ip")) if pod_ips else as_str(status.get("podIP"))
    return {
        "spec.nodeName": as_str(spec.get("nodeName")),
        "spec.restartPolicy": as_str(spec.get("restartPolicy")),
        "spec.schedulerName": as_str(spec.get("schedulerName")),
        "spec.serviceAccountName": as_str(spec.get("serviceAccountName")),
        "spec.hostNetwork": "true" if spec.get("hostNetwork") is True else "false",
        "status.phase": as_str(status.get("phase")),
        "status.podIP": pod_ip,
        "status.nominatedNodeName": as_str(status.get("nominatedNodeName")),
    }


SCHEMA = kind_schema(spec=POD_SPEC, status={"phase": S, "podIP": S, "podIPs": arr({"ip": S}), "hostIP": S,
                                            "conditions": arr(OBJ), "containerStatuses": arr(OBJ), "qosClass": S})

DEFAULT_TOLERATION_SECONDS = 300
_NODE_PROBLEM_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def add_default_tolerations(pod: Obj) -> None:
    """What Kubernetes' DefaultTolerationSeconds admission does on create: pods tolerate
    the not-ready and unreachable NoExecute taints for 300 s unless they say otherwise."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return  # validation reports it
    for key in _NODE_PROBLEM_TAINTS:
        covered = any(
            isinstance(t, dict)
            and (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
            and t.get("effect") in (None, "", "NoExecute")
            for t in tolerations
        )
        if not covered:
            tolerations.append({
                "key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            })
    spec["tolerations"] = tolerations


PODS = REGISTRY.add(ResourceType(
    group="", version="v1", kind="Pod", plural="pods", singular="pod", namespaced=True,
    short_names=("po",), categories=("all",), subresources=("status", "binding", "eviction"),
    default=default_pod, validate=with_types(SCHEMA, validate_pod), fields=pod_fields,
    prepare_create=add_default_tolerations,
))
