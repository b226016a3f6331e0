"""HorizontalPodAutoscaler v2 (storage) and v1, and the conversions between them."""

from __future__ import annotations

import copy
import json
from typing import Any

from cloudlet.resources.autoscaling import (
    BEHAVIOR_ANNOTATION,
    CONDITIONS_ANNOTATION,
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    hpa_v1_to_v2,
    hpa_v2_to_v1,
)

from ._helpers import check, defaulted, kind

V2 = kind("autoscaling", "v2", "horizontalpodautoscalers")
V1 = kind("autoscaling", "v1", "horizontalpodautoscalers")
TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def hpa(version: str = "v2", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"autoscaling/{version}", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": TARGET, "maxReplicas": 5, **spec}}


def test_shared_storage() -> None:
    assert V1.storage == V2.storage == "autoscaling/horizontalpodautoscalers"
    assert V1.storage_key == V2.storage_key == V2.key
    assert V1.to_storage is hpa_v1_to_v2 and V1.from_storage is hpa_v2_to_v1
    assert V2.preferred and not V1.preferred


def test_v2_defaults() -> None:
    spec = defaulted(V2, hpa())["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = defaulted(V2, hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}}))["spec"]["behavior"]
    assert behavior["scaleDown"] == {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                                     "stabilizationWindowSeconds": 60}
    assert behavior["scaleUp"]["policies"][0] == {"type": "Pods", "value": 4, "periodSeconds": 15}


def test_v2_validation() -> None:
    assert check(V2, hpa()) == []
    bad = hpa(minReplicas=3, maxReplicas=2, scaleTargetRef={"kind": "Deployment"},
              metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}},
                       {"type": "Pods"}])
    assert check(V2, bad) == [
        "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
        "spec.scaleTargetRef.name: Required value",
        "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        "spec.metrics[1].pods: Required value: must populate information for the given metric source",
    ]
    assert check(V2, hpa(maxReplicas=0, minReplicas=0)) == [
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.maxReplicas: Invalid value: 0: must be greater than 0",
        "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
    ]


def test_v1_defaults_and_validation_through_v2() -> None:
    obj = defaulted(V1, hpa("v1", targetCPUUtilizationPercentage=50))
    assert obj["spec"]["minReplicas"] == 1
    assert V1.validate(obj, None) == []
    # errors carry the v2 field paths, as Kubernetes validates the internal object
    assert check(V1, hpa("v1", targetCPUUtilizationPercentage=0)) == [
        "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
    ]


def test_v1_to_v2() -> None:
    v2 = hpa_v1_to_v2(defaulted(V1, hpa("v1", targetCPUUtilizationPercentage=50)))
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"] == {"scaleTargetRef": TARGET, "minReplicas": 1, "maxReplicas": 5, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}
    # no target at all: autoscaling/v1's implicit 80% CPU becomes explicit
    assert hpa_v1_to_v2(hpa("v1"))["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80


def test_v2_to_v1_keeps_the_rest_in_annotations() -> None:
    v2 = defaulted(V2, hpa(minReplicas=2, metrics=[
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
    ], behavior={"scaleUp": {"stabilizationWindowSeconds": 30}}))
    v2["status"] = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70, "averageValue": "200m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]}
    v1 = hpa_v2_to_v1(v2)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {"scaleTargetRef": TARGET, "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 70}
    annotations = v1["metadata"]["annotations"]
    assert json.loads(annotations[METRIC_SPECS_ANNOTATION]) == [
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}}]
    assert json.loads(annotations[METRIC_STATUSES_ANNOTATION]) == [
        {"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 70, "currentAverageValue": "200m"}}]
    assert json.loads(annotations[CONDITIONS_ANNOTATION])[0]["type"] == "AbleToScale"
    assert json.loads(annotations[BEHAVIOR_ANNOTATION])["ScaleUp"]["StabilizationWindowSeconds"] == 30
    # and back: the v2 object survives the round trip
    back = hpa_v1_to_v2(copy.deepcopy(v1))
    assert back["spec"]["metrics"] == [v2["spec"]["metrics"][1], v2["spec"]["metrics"][0]]  # v1 puts CPU last
    assert back["spec"]["behavior"] == v2["spec"]["behavior"]
    assert back["status"]["currentMetrics"] == v2["status"]["currentMetrics"]
    assert back["status"]["conditions"] == v2["status"]["conditions"]
    assert "annotations" not in back["metadata"]


def test_v1_update_validates_against_old_in_either_version() -> None:
    old_v1 = defaulted(V1, hpa("v1", targetCPUUtilizationPercentage=50))
    new_v1 = copy.deepcopy(old_v1)
    new_v1["spec"]["maxReplicas"] = 10
    assert V1.validate(new_v1, old_v1) == []
    assert V1.validate(new_v1, hpa_v1_to_v2(old_v1)) == []
