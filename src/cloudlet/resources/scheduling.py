"""scheduling.k8s.io/v1 PriorityClass and the two built-in system classes."""

from __future__ import annotations

from cloudlet.api.errors import forbidden_field, invalid_value, not_supported, required
from cloudlet.resources._schema import INT, B, S, kind_schema, with_types
from cloudlet.resources._util import Errors, Obj, as_str, is_int, unique
from cloudlet.resources.podspec import PREEMPTION_POLICIES
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.validation import (
    meta_of,
    name_is_dns_subdomain,
    validate_immutable,
    validate_object_meta,
    validate_object_meta_update,
)

SYSTEM_PRIORITY_CLASS_PREFIX = "system-"
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY


def _builtin(name: str, value: int, description: str) -> Obj:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "description": description,
        "preemptionPolicy": "PreemptLowerPriority",
    }


BUILTIN_PRIORITY_CLASSES: tuple[Obj, ...] = (
    _builtin("system-node-critical", SYSTEM_CRITICAL_PRIORITY + 1000,
             "Used for system critical pods that must not be moved from their current node."),
    _builtin("system-cluster-critical", SYSTEM_CRITICAL_PRIORITY,
             "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
)
"""Created by the API server on first start, as kube-apiserver does (deep-copy before use)."""


def _known_system_class_error(name: str, value: object, global_default: bool) -> str | None:
    for builtin in BUILTIN_PRIORITY_CLASSES:
        if builtin["metadata"]["name"] == name:
            if builtin["value"] != value:
                return f"value of {name} PriorityClass must be {builtin['value']}"
            if global_default:
                return f"globalDefault of {name} PriorityClass must be false"
            return None
    return f"{name} is not a known system priority class"


def default_priority_class(obj: Obj) -> None:
    if not obj.get("preemptionPolicy"):
        obj["preemptionPolicy"] = "PreemptLowerPriority"


def validate_priority_class(obj: Obj, old: Obj | None) -> Errors:
    meta = meta_of(obj)
    errs = validate_object_meta(meta, False, name_check=name_is_dns_subdomain)
    name, value = as_str(meta.get("name")), obj.get("value", 0)
    if not is_int(value) or not -(2**31) <= value < 2**31:
        errs.append(invalid_value("value", value, "must be a 32-bit integer"))
    if name.startswith(SYSTEM_PRIORITY_CLASS_PREFIX):
        problem = _known_system_class_error(name, value, obj.get("globalDefault") is True)
        if problem:
            errs.append(forbidden_field("metadata.name", "priority class names with 'system-' prefix are reserved "
                                        f"for system use only. error: {problem}"))
    elif is_int(value) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        errs.append(forbidden_field("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"))
    policy = obj.get("preemptionPolicy")
    if policy is not None:
        if policy == "":
            errs.append(required("preemptionPolicy", ""))
        elif policy not in PREEMPTION_POLICIES:
            errs.append(not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
    if old is not None:
        errs += validate_object_meta_update(meta, meta_of(old))
        if value != old.get("value", 0):
            errs.append(forbidden_field("value", "may not be changed in an update."))
        errs += validate_immutable(obj.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy")
    return unique(errs)


SCHEMA = kind_schema(value=INT, globalDefault=B, description=S, preemptionPolicy=S)

PRIORITY_CLASSES = REGISTRY.add(ResourceType(
    group="scheduling.k8s.io", version="v1", kind="PriorityClass", plural="priorityclasses",
    singular="priorityclass", namespaced=False, short_names=("pc",), has_status=False,
    default=default_priority_class, validate=with_types(SCHEMA, validate_priority_class),
))
