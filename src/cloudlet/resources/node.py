"""node.k8s.io/v1 RuntimeClass: which sandbox handler a pod runs under."""

from __future__ import annotations

from cloudlet.api.errors import invalid_value
from cloudlet.resources._schema import (
    OBJ,
    RESOURCE_LIST,
    STRING_MAP,
    S,
    arr,
    kind_schema,
    with_types,
)
from cloudlet.resources._util import Errors, Obj, as_dict, as_str, unique
from cloudlet.resources.affinity import validate_tolerations
from cloudlet.resources.quantity import canonicalize_resource_list
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.requirements import validate_resource_requirements
from cloudlet.resources.validation import (
    meta_of,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_immutable,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)


def default_runtime_class(obj: Obj) -> None:
    overhead = obj.get("overhead")
    if isinstance(overhead, dict):
        canonicalize_resource_list(overhead.get("podFixed"))


def validate_runtime_class(obj: Obj, old: Obj | None) -> Errors:
    meta = meta_of(obj)
    errs = validate_object_meta(meta, False, name_check=name_is_dns_subdomain, kube_finalizers=False)
    handler = obj.get("handler")
    errs += [invalid_value("handler", handler, m) for m in name_is_dns_label(as_str(handler))]
    overhead = obj.get("overhead")
    if overhead is not None:
        errs += validate_resource_requirements({"limits": as_dict(overhead).get("podFixed")}, "overhead")
    scheduling = obj.get("scheduling")
    if scheduling is not None:
        scheduling = as_dict(scheduling)
        if scheduling.get("nodeSelector") is not None:
            errs += validate_labels(scheduling["nodeSelector"], "scheduling.nodeSelector")
        errs += validate_tolerations(scheduling.get("tolerations"), "scheduling.tolerations")
    if old is not None:
        errs += validate_object_meta_update(meta, meta_of(old))
        errs += validate_immutable(handler, old.get("handler"), "handler")
    return unique(errs)


SCHEMA = kind_schema(handler=S, overhead={"podFixed": RESOURCE_LIST}, scheduling={"nodeSelector": STRING_MAP, "tolerations": arr(OBJ)})

RUNTIME_CLASSES = REGISTRY.add(ResourceType(
    group="node.k8s.io", version="v1", kind="RuntimeClass", plural="runtimeclasses", singular="runtimeclass",
    namespaced=False, has_status=False, default=default_runtime_class, validate=with_types(SCHEMA, validate_runtime_class),
))
