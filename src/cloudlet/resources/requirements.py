"""Compute resource names and ``ResourceRequirements`` (requests/limits) validation."""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import FieldError, duplicate, forbidden_field, invalid_value, required
from cloudlet.resources._util import Errors, as_dict, as_list, as_str, child, index, key
from cloudlet.resources.quantity import parse_quantity, quantity_string, validate_resource_quantity
from cloudlet.resources.validation import is_qualified_name

STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
STANDARD_RESOURCES = STANDARD_CONTAINER_RESOURCES | frozenset({
    "requests.cpu", "requests.memory", "requests.ephemeral-storage", "limits.cpu", "limits.memory",
    "limits.ephemeral-storage", "pods", "services", "replicationcontrollers", "resourcequotas",
    "secrets", "persistentvolumeclaims", "configmaps", "storage", "requests.storage",
    "services.nodeports", "services.loadbalancers",
})
INTEGER_RESOURCES = frozenset({"pods", "resourcequotas", "services", "replicationcontrollers", "secrets",
                               "configmaps", "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"})


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_hugepage_resource(name: str) -> bool:
    return name.startswith("hugepages-")


def is_extended_resource(name: str) -> bool:
    if is_native_resource(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


def is_overcommit_allowed(name: str) -> bool:
    return is_native_resource(name) and not is_hugepage_resource(name)


def validate_container_resource_name(name: str, path: str) -> Errors:
    errs = [invalid_value(path, name, m) for m in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name:
        if name not in STANDARD_RESOURCES and not is_hugepage_resource(name) and not name.startswith("requests.hugepages-"):
            errs.append(invalid_value(path, name, "must be a standard resource type or fully qualified"))
        if name not in STANDARD_CONTAINER_RESOURCES and not is_hugepage_resource(name):
            errs.append(invalid_value(path, name, "must be a standard resource for containers"))
    elif not is_native_resource(name) and not is_extended_resource(name):
        errs.append(invalid_value(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_resource_quantity_value(name: str, value: Any, path: str) -> Errors:
    errs = validate_resource_quantity(value, path)
    if errs:
        return errs
    if name in INTEGER_RESOURCES or is_extended_resource(name):
        if parse_quantity(value) % 1 != 0:
            errs.append(invalid_value(path, quantity_string(value), "must be an integer"))
    return errs


def _hugepage_error(name: str, value: Any) -> str | None:
    size = name[len("hugepages-"):]
    try:
        page = parse_quantity(size)
        amount = parse_quantity(value)
    except ValueError:
        return None
    if page <= 0 or amount % page != 0:
        return f"{quantity_string(value)} is not positive integer multiple of {name}"
    return None


def validate_resource_requirements(resources: Any, path: str, claim_names: set[str] | None = None) -> Errors:
    """Names, quantities, requests <= limits (equal for non-overcommittable resources)."""
    errs: Errors = []
    resources = as_dict(resources)
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    limits, requests = as_dict(resources.get("limits")), as_dict(resources.get("requests"))
    cpu_or_mem = hugepages = False
    for name, value in limits.items():
        p = key(lim_path, name)
        errs += validate_container_resource_name(name, p)
        errs += validate_resource_quantity_value(name, value, p)
        if is_hugepage_resource(name):
            hugepages = True
            msg = _hugepage_error(name, value)
            if msg:
                errs.append(invalid_value(p, quantity_string(value), msg))
        cpu_or_mem = cpu_or_mem or name in ("cpu", "memory")
    for name, value in requests.items():
        p = key(req_path, name)
        errs += validate_container_resource_name(name, p)
        qerrs = validate_resource_quantity_value(name, value, p)
        errs += qerrs
        if name in limits and not qerrs:
            try:
                req, lim = parse_quantity(value), parse_quantity(limits[name])
            except ValueError:
                req = lim = None
            if req is not None and lim is not None:
                if req != lim and not is_overcommit_allowed(name):
                    errs.append(invalid_value(req_path, quantity_string(value), f"must be equal to {name} limit of {quantity_string(limits[name])}"))
                elif req > lim:
                    errs.append(invalid_value(req_path, quantity_string(value), f"must be less than or equal to {name} limit of {quantity_string(limits[name])}"))
        elif name not in limits and not is_overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        if is_hugepage_resource(name):
            hugepages = True
            msg = _hugepage_error(name, value)
            if msg:
                errs.append(invalid_value(p, quantity_string(value), msg))
        cpu_or_mem = cpu_or_mem or name in ("cpu", "memory")
    if hugepages and not cpu_or_mem:
        errs.append(forbidden_field(path, "HugePages require cpu or memory"))
    if claim_names is not None:
        seen: set[str] = set()
        for i, claim in enumerate(as_list(resources.get("claims"))):
            claim_name = as_str(as_dict(claim).get("name"))
            p = index(child(path, "claims"), i)
            if not claim_name:
                errs.append(required(p, ""))
                continue
            if claim_name in seen:
                errs.append(duplicate(p, claim_name))
            seen.add(claim_name)
            if claim_name not in claim_names:
                detail = "must be one of the names in pod.spec.resourceClaims"
                detail += ": " + ", ".join(sorted(claim_names)) if claim_names else " which is empty"
                errs.append(FieldError("NotFound", p, claim_name, detail))
    return errs
