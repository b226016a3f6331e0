"""HorizontalPodAutoscaler: autoscaling/v2 (the storage version) and autoscaling/v1.

Both versions share the storage ``autoscaling/horizontalpodautoscalers``.
autoscaling/v1 only has ``targetCPUUtilizationPercentage``; everything else a
v2 object holds survives a trip through v1 in annotations, as Kubernetes does:
``autoscaling.alpha.kubernetes.io/metrics`` (other metric specs, v1 shape),
``.../current-metrics`` (metric statuses), ``.../conditions`` and ``.../behavior``.
A v1 object is validated by converting it to v2, so field paths in errors are
the v2 ones (``spec.metrics[0].resource.target.averageUtilization``), exactly as
in Kubernetes, which validates the internal (v2-shaped) object.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from cloudlet.api.errors import forbidden_field, invalid_value, not_supported, required
from cloudlet.resources._schema import INT, OBJ, S, arr, kind_schema, with_types
from cloudlet.resources._util import (
    Errors,
    Obj,
    as_dict,
    as_list,
    as_str,
    child,
    ensure_dict,
    index,
    is_int,
    unique,
)
from cloudlet.resources.quantity import parse_quantity
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.requirements import validate_container_resource_name
from cloudlet.resources.validation import (
    is_path_segment_name,
    meta_of,
    name_is_dns_subdomain,
    validate_dns1123_label,
    validate_nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)

STORAGE = "autoscaling/horizontalpodautoscalers"
METRIC_SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP_ANNOTATIONS = (METRIC_SPECS_ANNOTATION, METRIC_STATUSES_ANNOTATION, CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION)
DEFAULT_CPU_UTILIZATION = 80
METRIC_SOURCE_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600

# --- defaults -------------------------------------------------------------------------

_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Pods", "value": 4, "periodSeconds": 15},
    {"type": "Percent", "value": 100, "periodSeconds": 15},
]}
_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _cpu_metric(utilization: Any) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}}


def _scaling_rules(rules: Any, defaults: Obj) -> Obj:
    out = copy.deepcopy(defaults)
    for name, value in as_dict(rules).items():
        if value is not None:
            out[name] = value
    return out


def default_hpa_v2(obj: Obj) -> None:
    spec = ensure_dict(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if spec.get("metrics") in (None, []):
        spec["metrics"] = [_cpu_metric(DEFAULT_CPU_UTILIZATION)]
    if isinstance(spec.get("behavior"), dict):
        behavior = spec["behavior"]
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)


def default_hpa_v1(obj: Obj) -> None:
    spec = ensure_dict(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


# --- validation (v2 shape) -----------------------------------------------------------------


def _cross_version_ref(ref: Any, path: str) -> Errors:
    ref = as_dict(ref)
    errs: Errors = []
    for name in ("kind", "name"):
        value = as_str(ref.get(name))
        if not value:
            errs.append(required(child(path, name), ""))
        else:
            errs += [invalid_value(child(path, name), value, m) for m in is_path_segment_name(value)]
    return errs


def _positive(value: Any) -> bool:
    try:
        return parse_quantity(value) > 0
    except ValueError:
        return False


def _metric_target(target: Any, path: str) -> Errors:
    target = as_dict(target)
    errs: Errors = []
    kind = target.get("type")
    if not kind:
        errs.append(required(child(path, "type"), "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        errs.append(invalid_value(child(path, "type"), kind or "", "must be either Utilization, Value, or AverageValue"))
    for name in ("value", "averageValue"):
        if target.get(name) is not None and not _positive(target[name]):
            errs.append(invalid_value(child(path, name), target[name], "must be positive"))
    utilization = target.get("averageUtilization")
    if utilization is not None and (not is_int(utilization) or utilization < 1):
        errs.append(invalid_value(child(path, "averageUtilization"), utilization, "must be greater than 0"))
    return errs


def _metric_identifier(metric: Any, path: str) -> Errors:
    name = as_str(as_dict(metric).get("name"))
    if not name:
        return [required(child(path, "name"), "must specify a metric name")]
    return [invalid_value(child(path, "name"), name, m) for m in is_path_segment_name(name)]


def _metric_source(kind: str, src: Obj, path: str) -> Errors:
    target = as_dict(src.get("target"))
    tpath = child(path, "target")
    errs: Errors = []
    if kind in ("object", "external", "pods"):
        if kind == "object":
            errs += _cross_version_ref(src.get("describedObject"), child(path, "describedObject"))
        errs += _metric_identifier(src.get("metric"), child(path, "metric")) + _metric_target(target, tpath)
        if kind == "object" and target.get("value") is None and target.get("averageValue") is None:
            errs.append(required(child(tpath, "averageValue"), "must set either a target value or averageValue"))
        if kind == "external":
            if target.get("value") is None and target.get("averageValue") is None:
                errs.append(required(child(tpath, "averageValue"), "must set either a target value for metric or a per-pod target"))
            if target.get("value") is not None and target.get("averageValue") is not None:
                errs.append(forbidden_field(child(tpath, "value"), "may not set both a target value for metric and a per-pod target"))
        if kind == "pods" and target.get("averageValue") is None:
            errs.append(required(child(tpath, "averageValue"), "must specify a positive target averageValue"))
        return errs
    name = as_str(src.get("name"))
    if not name:
        errs.append(required(child(path, "name"), "must specify a resource name"))
    elif kind == "containerResource":
        errs += validate_container_resource_name(name, child(path, "name"))
    if kind == "containerResource":
        container = as_str(src.get("container"))
        if not container:
            errs.append(required(child(path, "container"), "must specify a container"))
        else:
            errs += validate_dns1123_label(container, child(path, "container"))
    errs += _metric_target(target, tpath)
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        errs.append(required(child(tpath, "averageUtilization"), "must set either a target raw value or a target utilization"))
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        errs.append(forbidden_field(child(tpath, "averageValue"), "may not set both a target raw value and a target utilization"))
    return errs


def _metric_spec(spec: Any, path: str) -> Errors:
    spec = as_dict(spec)
    errs: Errors = []
    kind = spec.get("type")
    if not kind:
        errs.append(required(child(path, "type"), "must specify a metric source type"))
    if kind not in METRIC_SOURCE_TYPES:
        errs.append(not_supported(child(path, "type"), kind or "", METRIC_SOURCE_TYPES))
    present = [f for f in ("object", "external", "pods", "resource", "containerResource") if spec.get(f) is not None]
    if present:
        errs += _metric_source(present[0], as_dict(spec[present[0]]), child(path, present[0]))
    expected = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external",
                "ContainerResource": "containerResource"}.get(as_str(kind))
    if expected is not None and spec.get(expected) is None:
        errs.append(required(child(path, expected), "must populate information for the given metric source"))
    if len(present) != 1:
        errs += [forbidden_field(child(path, f), "must populate the given metric source only") for f in present if f != expected]
    return errs


def _scaling_rules_errors(rules: Any, path: str) -> Errors:
    if rules is None:
        return []
    rules = as_dict(rules)
    errs: Errors = []
    window = rules.get("stabilizationWindowSeconds")
    if is_int(window) and window < 0:
        errs.append(invalid_value(child(path, "stabilizationWindowSeconds"), window, "must be greater than or equal to zero"))
    if is_int(window) and window > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.append(invalid_value(child(path, "stabilizationWindowSeconds"), window, f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in ("Disabled", "Max", "Min"):
        errs.append(not_supported(child(path, "selectPolicy"), select, ("Disabled", "Max", "Min")))
    policies = as_list(rules.get("policies"))
    if not policies:
        errs.append(required(child(path, "policies"), "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        p, policy = index(child(path, "policies"), i), as_dict(policy)
        if policy.get("type") not in ("Percent", "Pods"):
            errs.append(not_supported(child(p, "type"), policy.get("type") or "", ("Percent", "Pods")))
        for name in ("value", "periodSeconds"):
            value = policy.get(name)
            if not is_int(value) or value <= 0:
                errs.append(invalid_value(child(p, name), value if value is not None else 0, "must be greater than zero"))
        period = policy.get("periodSeconds")
        if is_int(period) and period > MAX_PERIOD_SECONDS:
            errs.append(invalid_value(child(p, "periodSeconds"), period, f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return errs


def validate_hpa_v2(obj: Obj, old: Obj | None) -> Errors:
    meta, spec = meta_of(obj), as_dict(obj.get("spec"))
    errs = validate_object_meta(meta, True, name_check=name_is_dns_subdomain)
    if old is not None:
        errs += validate_object_meta_update(meta, meta_of(old))
    min_replicas, max_replicas = spec.get("minReplicas"), spec.get("maxReplicas")
    lower = 0 if old is not None and as_dict(old.get("spec")).get("minReplicas") == 0 else 1
    if min_replicas is not None and (not is_int(min_replicas) or min_replicas < lower):
        errs.append(invalid_value("spec.minReplicas", min_replicas, f"must be greater than or equal to {lower}"))
    max_value = max_replicas if max_replicas is not None else 0
    if not is_int(max_value) or max_value < 1:
        errs.append(invalid_value("spec.maxReplicas", max_value, "must be greater than 0"))
    if is_int(min_replicas) and is_int(max_value) and max_value < min_replicas:
        errs.append(invalid_value("spec.maxReplicas", max_value, "must be greater than or equal to `minReplicas`"))
    errs += _cross_version_ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    metrics = as_list(spec.get("metrics"))
    for i, metric in enumerate(metrics):
        errs += _metric_spec(metric, index("spec.metrics", i))
    if min_replicas == 0 and not any(as_dict(m).get("type") in ("Object", "External") for m in metrics):
        errs.append(forbidden_field("spec.metrics", "must specify at least one Object or External metric to support scaling to zero replicas"))
    behavior = spec.get("behavior")
    if behavior is not None:
        errs += _scaling_rules_errors(as_dict(behavior).get("scaleUp"), "spec.behavior.scaleUp")
        errs += _scaling_rules_errors(as_dict(behavior).get("scaleDown"), "spec.behavior.scaleDown")
    if old is not None:
        status = as_dict(obj.get("status"))
        errs += validate_nonnegative(status.get("currentReplicas"), "status.currentReplicas")
        errs += validate_nonnegative(status.get("desiredReplicas"), "status.desiredReplicas")
    return unique(errs)


# --- conversion between autoscaling/v1 and autoscaling/v2 ------------------------------------


def _prune(d: Obj) -> Obj:
    return {k: v for k, v in d.items() if v is not None}


# One table per direction-independent mapping: (v1 field, v2 path, v1 value when v2 has none).
# Spec and status differ only in their value prefix ("target"/"current") and names.
_SPEC_FIELDS: dict[str, list[tuple[str, str, str | None]]] = {
    "object": [("target", "describedObject", None), ("metricName", "metric.name", None),
               ("selector", "metric.selector", None), ("targetValue", "target.value", "0"),
               ("averageValue", "target.averageValue", None)],
    "pods": [("metricName", "metric.name", None), ("selector", "metric.selector", None),
             ("targetAverageValue", "target.averageValue", "0")],
    "resource": [("name", "name", None), ("container", "container", None),
                 ("targetAverageUtilization", "target.averageUtilization", None),
                 ("targetAverageValue", "target.averageValue", None)],
    "external": [("metricName", "metric.name", None), ("metricSelector", "metric.selector", None),
                 ("targetValue", "target.value", None), ("targetAverageValue", "target.averageValue", None)],
}
_STATUS_FIELDS: dict[str, list[tuple[str, str, str | None]]] = {
    "object": [("target", "describedObject", None), ("metricName", "metric.name", None),
               ("selector", "metric.selector", None), ("currentValue", "current.value", "0"),
               ("averageValue", "current.averageValue", None)],
    "pods": [("metricName", "metric.name", None), ("selector", "metric.selector", None),
             ("currentAverageValue", "current.averageValue", "0")],
    "resource": [("name", "name", None), ("container", "container", None),
                 ("currentAverageUtilization", "current.averageUtilization", None),
                 ("currentAverageValue", "current.averageValue", "0")],
    "external": [("metricName", "metric.name", None), ("metricSelector", "metric.selector", None),
                 ("currentValue", "current.value", "0"), ("currentAverageValue", "current.averageValue", None)],
}
_SOURCES = ("object", "pods", "resource", "containerResource", "external")


def _v2_target_type(source: str, target: Obj) -> str:
    """The v2 ``target.type`` a v1 metric spec implies."""
    if source == "object":
        return "Value" if target.get("averageValue") is None else "AverageValue"
    if source in ("resource", "containerResource"):
        return "AverageValue" if target.get("averageUtilization") is None else "Utilization"
    if source == "external":
        return "AverageValue" if target.get("value") is None else "Value"
    return "AverageValue"


def _metric_v1_to_v2(m: Obj, table: dict[str, list[tuple[str, str, str | None]]], spec: bool) -> Obj:
    out: Obj = {"type": m.get("type")}
    for source in _SOURCES:
        if m.get(source) is None:
            continue
        src, dst = as_dict(m[source]), {}
        for v1, v2, _ in table["resource" if source == "containerResource" else source]:
            parent, _, leaf = v2.rpartition(".")
            node = dst.setdefault(parent, {}) if parent else dst
            if src.get(v1) is not None:
                node[leaf] = src[v1]
        if spec:
            dst["target"] = {"type": _v2_target_type(source, dst.get("target", {})), **dst.get("target", {})}
        out[source] = dst
    return _prune(out)


def _metric_v2_to_v1(m: Obj, table: dict[str, list[tuple[str, str, str | None]]]) -> Obj:
    out: Obj = {"type": m.get("type")}
    for source in _SOURCES:
        if m.get(source) is None:
            continue
        src, dst = as_dict(m[source]), {}
        for v1, v2, default in table["resource" if source == "containerResource" else source]:
            parent, _, leaf = v2.rpartition(".")
            node = as_dict(src.get(parent)) if parent else src
            value = node.get(leaf, default)
            if value is not None:
                dst[v1] = value
        out[source] = dst
    return _prune(out)


def _metric_spec_v1_to_v2(m: Obj) -> Obj:
    return _metric_v1_to_v2(m, _SPEC_FIELDS, spec=True)


def _metric_spec_v2_to_v1(m: Obj) -> Obj:
    return _metric_v2_to_v1(m, _SPEC_FIELDS)


def _metric_status_v1_to_v2(m: Obj) -> Obj:
    return _metric_v1_to_v2(m, _STATUS_FIELDS, spec=False)


def _metric_status_v2_to_v1(m: Obj) -> Obj:
    return _metric_v2_to_v1(m, _STATUS_FIELDS)


_BEHAVIOR_FIELDS = {"scaleUp": "ScaleUp", "scaleDown": "ScaleDown"}
_RULE_FIELDS = {"stabilizationWindowSeconds": "StabilizationWindowSeconds", "selectPolicy": "SelectPolicy",
                "policies": "Policies", "tolerance": "Tolerance"}
_POLICY_FIELDS = {"type": "Type", "value": "Value", "periodSeconds": "PeriodSeconds"}


def _behavior_to_annotation(behavior: Obj) -> str:
    """Kubernetes stores the internal struct, so keys are Go field names."""
    def rules(r: Any) -> Any:
        if not isinstance(r, dict):
            return None
        out = {go: r.get(js) for js, go in _RULE_FIELDS.items()}
        if isinstance(out["Policies"], list):
            out["Policies"] = [{go: as_dict(p).get(js) for js, go in _POLICY_FIELDS.items()} for p in out["Policies"]]
        return out
    return json.dumps({go: rules(behavior.get(js)) for js, go in _BEHAVIOR_FIELDS.items()}, separators=(",", ":"))


def _behavior_from_annotation(text: str) -> Obj | None:
    """Read the annotation back; Go's decoder matches field names case-insensitively."""
    data = json.loads(text)
    if not isinstance(data, dict):
        return None

    def pick(d: Obj, name: str) -> Any:
        return next((v for k, v in d.items() if k.lower() == name.lower()), None)

    out: Obj = {}
    for js in _BEHAVIOR_FIELDS:
        r = pick(data, js)
        if isinstance(r, dict):
            rules = _prune({name: pick(r, name) for name in _RULE_FIELDS})
            if isinstance(rules.get("policies"), list):
                rules["policies"] = [_prune({n: pick(as_dict(p), n) for n in _POLICY_FIELDS}) for p in rules["policies"]]
            out[js] = rules
    return out


def _json_list(annotations: Obj, name: str) -> list[Obj] | None:
    text = annotations.pop(name, None)
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return [as_dict(v) for v in value] if isinstance(value, list) else None


def hpa_v1_to_v2(obj: Obj) -> Obj:
    """autoscaling/v1 -> autoscaling/v2 (the storage version)."""
    meta = copy.deepcopy(as_dict(obj.get("metadata")))
    annotations = dict(as_dict(meta.get("annotations")))
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    other_metrics = _json_list(annotations, METRIC_SPECS_ANNOTATION)
    current_metrics = _json_list(annotations, METRIC_STATUSES_ANNOTATION)
    conditions = _json_list(annotations, CONDITIONS_ANNOTATION)
    behavior_text = annotations.pop(BEHAVIOR_ANNOTATION, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out_spec: Obj = _prune({"scaleTargetRef": copy.deepcopy(spec.get("scaleTargetRef")),
                            "minReplicas": spec.get("minReplicas"), "maxReplicas": spec.get("maxReplicas")})
    metrics = [_metric_spec_v1_to_v2(m) for m in other_metrics or []]
    if spec.get("targetCPUUtilizationPercentage") is not None:
        metrics.append(_cpu_metric(spec["targetCPUUtilizationPercentage"]))
    out_spec["metrics"] = metrics or [_cpu_metric(DEFAULT_CPU_UTILIZATION)]
    if isinstance(behavior_text, str):
        try:
            behavior = _behavior_from_annotation(behavior_text)
        except ValueError:
            behavior = None
        if behavior is not None:
            out_spec["behavior"] = behavior
    out: Obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta, "spec": out_spec}
    if "status" in obj or current_metrics or conditions:
        out_status = _prune({k: copy.deepcopy(status.get(k))
                             for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")})
        if current_metrics is not None:
            out_status["currentMetrics"] = [_metric_status_v1_to_v2(m) for m in current_metrics]
        elif status.get("currentCPUUtilizationPercentage") is not None:
            out_status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
        if conditions is not None:
            out_status["conditions"] = conditions
        out["status"] = out_status
    default_hpa_v2(out)
    return out


def hpa_v2_to_v1(obj: Obj) -> Obj:
    """autoscaling/v2 -> autoscaling/v1, keeping what v1 cannot express in annotations."""
    meta = copy.deepcopy(as_dict(obj.get("metadata")))
    annotations = {k: v for k, v in as_dict(meta.get("annotations")).items() if k not in ROUND_TRIP_ANNOTATIONS}
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    out_spec: Obj = _prune({"scaleTargetRef": copy.deepcopy(spec.get("scaleTargetRef")),
                            "minReplicas": spec.get("minReplicas"), "maxReplicas": spec.get("maxReplicas")})
    others: list[Obj] = []
    cpu_seen = False
    for metric in (as_dict(m) for m in as_list(spec.get("metrics"))):
        resource = as_dict(metric.get("resource"))
        is_cpu = metric.get("type") == "Resource" and resource.get("name") == "cpu"
        utilization = as_dict(resource.get("target")).get("averageUtilization")
        if is_cpu and not cpu_seen:
            cpu_seen = True
            if utilization is not None:
                out_spec["targetCPUUtilizationPercentage"] = utilization
        if is_cpu and utilization is not None:
            continue
        others.append(_metric_spec_v2_to_v1(metric))
    compact = (",", ":")
    if others:
        annotations[METRIC_SPECS_ANNOTATION] = json.dumps(others, separators=compact)
    current = [as_dict(m) for m in as_list(status.get("currentMetrics"))]
    if current:
        annotations[METRIC_STATUSES_ANNOTATION] = json.dumps([_metric_status_v2_to_v1(m) for m in current], separators=compact)
    if as_list(status.get("conditions")):
        annotations[CONDITIONS_ANNOTATION] = json.dumps(status["conditions"], separators=compact)
    if isinstance(spec.get("behavior"), dict):
        annotations[BEHAVIOR_ANNOTATION] = _behavior_to_annotation(spec["behavior"])
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out: Obj = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": meta, "spec": out_spec}
    if "status" in obj:
        out_status = _prune({k: copy.deepcopy(status.get(k))
                             for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")})
        for metric in current:
            resource = as_dict(metric.get("resource"))
            if metric.get("type") == "Resource" and resource.get("name") == "cpu":
                utilization = as_dict(resource.get("current")).get("averageUtilization")
                if utilization is not None:
                    out_status["currentCPUUtilizationPercentage"] = utilization
        out["status"] = out_status
    return out


def _as_v2(obj: Obj) -> Obj:
    return hpa_v1_to_v2(obj) if obj.get("apiVersion") == "autoscaling/v1" else obj


def validate_hpa_v1(obj: Obj, old: Obj | None) -> Errors:
    """Validate through the v2 shape, as Kubernetes validates the internal object."""
    return validate_hpa_v2(hpa_v1_to_v2(obj), _as_v2(old) if old is not None else None)


_TARGET_REF = {"kind": S, "name": S, "apiVersion": S}
_STATUS = {"observedGeneration": INT, "lastScaleTime": S, "currentReplicas": INT, "desiredReplicas": INT}
V2_SCHEMA = kind_schema(spec={"scaleTargetRef": _TARGET_REF, "minReplicas": INT, "maxReplicas": INT,
                              "metrics": arr({"type": S, "resource": OBJ, "pods": OBJ, "object": OBJ, "external": OBJ,
                                              "containerResource": OBJ}),
                              "behavior": {"scaleUp": OBJ, "scaleDown": OBJ}},
                        status={**_STATUS, "currentMetrics": arr(OBJ), "conditions": arr(OBJ)})
V1_SCHEMA = kind_schema(spec={"scaleTargetRef": _TARGET_REF, "minReplicas": INT, "maxReplicas": INT,
                              "targetCPUUtilizationPercentage": INT},
                        status={**_STATUS, "currentCPUUtilizationPercentage": INT})

HPA_V2 = REGISTRY.add(ResourceType(
    group="autoscaling", version="v2", kind="HorizontalPodAutoscaler", plural="horizontalpodautoscalers",
    singular="horizontalpodautoscaler", namespaced=True, short_names=("hpa",), categories=("all",),
    subresources=("status",), default=default_hpa_v2, validate=with_types(V2_SCHEMA, validate_hpa_v2), storage=STORAGE,
))
HPA_V1 = REGISTRY.add(ResourceType(
    group="autoscaling", version="v1", kind="HorizontalPodAutoscaler", plural="horizontalpodautoscalers",
    singular="horizontalpodautoscaler", namespaced=True, short_names=("hpa",), categories=("all",),
    subresources=("status",), default=default_hpa_v1, validate=with_types(V1_SCHEMA, validate_hpa_v1), storage=STORAGE,
    to_storage=hpa_v1_to_v2, from_storage=hpa_v2_to_v1, preferred=False,
))
