"""coordination.k8s.io/v1 Lease, used for leader election and node heartbeats."""

from __future__ import annotations

from cloudlet.api.errors import forbidden_field, invalid_value, not_supported
from cloudlet.resources._schema import INT, S, kind_schema, with_types
from cloudlet.resources._util import Errors, Obj, as_dict, as_str, is_int, unique
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.validation import (
    is_qualified_name,
    meta_of,
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)

LEASE_STRATEGIES = ("OldestEmulationVersion",)


def validate_lease(obj: Obj, old: Obj | None) -> Errors:
    meta, spec = meta_of(obj), as_dict(obj.get("spec"))
    errs = validate_object_meta(meta, True, name_check=name_is_dns_subdomain, kube_finalizers=False)
    if old is not None:
        errs += validate_object_meta_update(meta, meta_of(old))
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not is_int(duration) or duration <= 0):
        errs.append(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not is_int(transitions) or transitions < 0):
        errs.append(invalid_value("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy is not None:
        text = as_str(strategy)
        if "/" not in text:
            if text not in LEASE_STRATEGIES:
                errs.append(not_supported("spec.strategy", strategy, LEASE_STRATEGIES))
        else:
            errs += [invalid_value("spec.strategy", strategy, m) for m in is_qualified_name(text)]
    if spec.get("preferredHolder") and not strategy:
        errs.append(forbidden_field("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return unique(errs)


SCHEMA = kind_schema(spec={"holderIdentity": S, "leaseDurationSeconds": INT, "acquireTime": S, "renewTime": S,
                           "leaseTransitions": INT, "strategy": S, "preferredHolder": S})

LEASES = REGISTRY.add(ResourceType(
    group="coordination.k8s.io", version="v1", kind="Lease", plural="leases", singular="lease",
    namespaced=True, has_status=False, validate=with_types(SCHEMA, validate_lease),
))
