"""apps/v1 Deployment and ReplicaSet: defaults, validation, scale, registration."""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import forbidden_field, invalid_value, not_supported, required
from cloudlet.resources._schema import (
    INT,
    IS,
    LABEL_SELECTOR,
    OBJ,
    POD_TEMPLATE,
    B,
    S,
    arr,
    kind_schema,
    with_types,
)
from cloudlet.resources._util import Errors, Obj, as_dict, ensure_dict, is_int, unique
from cloudlet.resources.podspec import default_pod_template, validate_pod_template
from cloudlet.resources.registry import REGISTRY, ResourceType, ScaleSpec
from cloudlet.resources.validation import (
    IS_NEGATIVE,
    is_valid_percent,
    meta_of,
    name_is_dns_subdomain,
    selector_is_empty,
    selector_matches,
    validate_immutable,
    validate_label_selector,
    validate_nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)

SCALE = ScaleSpec(spec_replicas="spec.replicas", status_replicas="status.replicas", label_selector="spec.selector")

# --- defaults -------------------------------------------------------------------------


def default_replica_set(obj: Obj) -> None:
    spec = ensure_dict(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(ensure_dict(spec, "template"))


def default_deployment(obj: Obj) -> None:
    spec = ensure_dict(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = ensure_dict(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = ensure_dict(strategy, "rollingUpdate")
        for name in ("maxUnavailable", "maxSurge"):
            if rolling.get(name) is None:
                rolling[name] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(ensure_dict(spec, "template"))


# --- validation --------------------------------------------------------------------------


def _percent(value: Any) -> int | None:
    if isinstance(value, str) and not is_valid_percent(value):
        return int(value[:-1])
    return None


def _int_or_percent(value: Any) -> int:
    percent = _percent(value)
    if percent is not None:
        return percent
    return value if is_int(value) else 0


def validate_positive_int_or_percent(value: Any, path: str) -> Errors:
    if isinstance(value, str):
        return [invalid_value(path, value, m) for m in is_valid_percent(value)]
    if is_int(value):
        return [invalid_value(path, value, IS_NEGATIVE)] if value < 0 else []
    return [invalid_value(path, value, "must be an integer or percentage (e.g '5%')")]


def _not_more_than_100_percent(value: Any, path: str) -> Errors:
    percent = _percent(value)
    if percent is not None and percent > 100:
        return [invalid_value(path, value, "must not be greater than 100%")]
    return []


def _validate_strategy(strategy: Any, path: str) -> Errors:
    strategy = as_dict(strategy)
    kind = strategy.get("type")
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            return [forbidden_field(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        rpath = f"{path}.rollingUpdate"
        if rolling is None:
            return [required(rpath, "this should be defaulted and never be nil")]
        rolling = as_dict(rolling)
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs = validate_positive_int_or_percent(unavailable, f"{rpath}.maxUnavailable")
        errs += validate_positive_int_or_percent(surge, f"{rpath}.maxSurge")
        if _int_or_percent(unavailable) == 0 and _int_or_percent(surge) == 0:
            errs.append(invalid_value(f"{rpath}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0"))
        return errs + _not_more_than_100_percent(unavailable, f"{rpath}.maxUnavailable")
    return [not_supported(path, strategy, ("Recreate", "RollingUpdate"))]


def _validate_selector_and_template(spec: Obj, kind: str) -> Errors:
    errs: Errors = []
    selector = spec.get("selector")
    if selector is None:
        errs.append(required("spec.selector", ""))
    else:
        sel_errs = validate_label_selector(selector, "spec.selector")
        errs += sel_errs
        if selector_is_empty(selector):
            # ReplicaSet reuses the Deployment wording, as Kubernetes does.
            errs.append(invalid_value("spec.selector", selector, "empty selector is invalid for deployment"))
    template = spec.get("template")
    if template is None:
        return errs + [required("spec.template", "")]
    template = as_dict(template)
    labels = as_dict(template.get("metadata")).get("labels")
    if selector is not None and not selector_is_empty(selector) and not selector_matches(selector, labels):
        errs.append(invalid_value("spec.template.metadata.labels", labels or {}, "`selector` does not match template `labels`"))
    errs += validate_pod_template(template, "spec.template")
    pod_spec = as_dict(template.get("spec"))
    if pod_spec.get("restartPolicy") not in (None, "", "Always"):
        errs.append(not_supported("spec.template.spec.restartPolicy", pod_spec["restartPolicy"], ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden_field("spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _validate_workload(obj: Obj, old: Obj | None, kind: str) -> Errors:
    meta, spec = meta_of(obj), as_dict(obj.get("spec"))
    errs: Errors = []
    if old is not None:
        errs += validate_object_meta_update(meta, meta_of(old))
    errs += validate_object_meta(meta, True, name_check=name_is_dns_subdomain)
    errs += validate_nonnegative(spec.get("replicas"), "spec.replicas")
    if kind == "ReplicaSet":
        errs += validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += _validate_selector_and_template(spec, kind)
    if old is not None:
        old_selector = as_dict(old.get("spec")).get("selector")
        errs += validate_immutable(spec.get("selector"), old_selector, "spec.selector")
    return errs


def validate_replica_set(obj: Obj, old: Obj | None) -> Errors:
    errs = _validate_workload(obj, old, "ReplicaSet")
    if old is not None:
        errs += _validate_status(as_dict(obj.get("status")), ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"))
    return unique(errs)


def validate_deployment(obj: Obj, old: Obj | None) -> Errors:
    spec = as_dict(obj.get("spec"))
    errs = _validate_workload(obj, old, "Deployment")
    errs += _validate_strategy(spec.get("strategy"), "spec.strategy")
    errs += validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += validate_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errs += validate_nonnegative(deadline, "spec.progressDeadlineSeconds")
        min_ready = spec.get("minReadySeconds") if is_int(spec.get("minReadySeconds")) else 0
        if is_int(deadline) and deadline <= min_ready:
            errs.append(invalid_value("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    if old is not None:
        errs += _validate_status(as_dict(obj.get("status")), ("updatedReplicas", "readyReplicas", "availableReplicas"))
    return unique(errs)


def _validate_status(status: Obj, counted: tuple[str, ...]) -> Errors:
    """Replica counters are non-negative and never exceed ``status.replicas``."""
    errs: Errors = []
    for name in ("replicas", "observedGeneration", "unavailableReplicas", "collisionCount", *counted):
        errs += validate_nonnegative(status.get(name), f"status.{name}")
    replicas = status.get("replicas") if is_int(status.get("replicas")) else 0
    for name in counted:
        value = status.get(name)
        if is_int(value) and value > replicas:
            errs.append(invalid_value(f"status.{name}", value, "cannot be greater than status.replicas"))
    ready, available = status.get("readyReplicas"), status.get("availableReplicas")
    if is_int(available) and available > (ready if is_int(ready) else 0):
        errs.append(invalid_value("status.availableReplicas", available, "cannot be greater than readyReplicas"))
    return errs


def replica_set_fields(obj: Obj) -> dict[str, str]:
    replicas = as_dict(obj.get("status")).get("replicas")
    return {"status.replicas": str(replicas) if is_int(replicas) else "0"}


_STATUS = {name: INT for name in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                 "unavailableReplicas", "fullyLabeledReplicas", "observedGeneration", "collisionCount")}
DEPLOYMENT_SCHEMA = kind_schema(spec={
    "replicas": INT, "selector": LABEL_SELECTOR, "template": POD_TEMPLATE, "minReadySeconds": INT,
    "revisionHistoryLimit": INT, "progressDeadlineSeconds": INT, "paused": B,
    "strategy": {"type": S, "rollingUpdate": {"maxUnavailable": IS, "maxSurge": IS}},
}, status={**_STATUS, "conditions": arr(OBJ)})
REPLICA_SET_SCHEMA = kind_schema(spec={
    "replicas": INT, "selector": LABEL_SELECTOR, "template": POD_TEMPLATE, "minReadySeconds": INT,
}, status={**_STATUS, "conditions": arr(OBJ)})

DEPLOYMENTS = REGISTRY.add(ResourceType(
    group="apps", version="v1", kind="Deployment", plural="deployments", singular="deployment",
    namespaced=True, short_names=("deploy",), categories=("all",), subresources=("status", "scale"),
    default=default_deployment, validate=with_types(DEPLOYMENT_SCHEMA, validate_deployment), scale=SCALE,
))
REPLICA_SETS = REGISTRY.add(ResourceType(
    group="apps", version="v1", kind="ReplicaSet", plural="replicasets", singular="replicaset",
    namespaced=True, short_names=("rs",), categories=("all",), subresources=("status", "scale"),
    default=default_replica_set, validate=with_types(REPLICA_SET_SCHEMA, validate_replica_set), fields=replica_set_fields, scale=SCALE,
))
