"""Deployment and ReplicaSet defaulting and validation."""

from __future__ import annotations

import copy
from typing import Any

from ._helpers import check, defaulted, kind

DEPLOYMENTS = kind("apps", "v1", "deployments")
REPLICA_SETS = kind("apps", "v1", "replicasets")


def workload(kind_: str = "Deployment", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": labels if labels is not None else {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}},
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": kind_, "metadata": {"name": "web", "namespace": "default"}, "spec": base}


def test_deployment_defaults() -> None:
    spec = defaulted(DEPLOYMENTS, workload())["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["terminationGracePeriodSeconds"] == 30
    assert pod_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "enableServiceLinks" not in pod_spec  # a Pod-only default
    recreate = defaulted(DEPLOYMENTS, workload(strategy={"type": "Recreate"}))["spec"]["strategy"]
    assert recreate == {"type": "Recreate"}


def test_replica_set_defaults() -> None:
    spec = defaulted(REPLICA_SETS, workload("ReplicaSet"))["spec"]
    assert spec["replicas"] == 1
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_valid() -> None:
    assert check(DEPLOYMENTS, workload()) == []
    assert check(REPLICA_SETS, workload("ReplicaSet")) == []


def test_selector_must_match_template_labels() -> None:
    msg = 'spec.template.metadata.labels: Invalid value: {"app":"api"}: `selector` does not match template `labels`'
    assert check(DEPLOYMENTS, workload(labels={"app": "api"})) == [msg]
    assert check(REPLICA_SETS, workload("ReplicaSet", labels={"app": "api"})) == [msg]


def test_selector_required_and_not_empty() -> None:
    assert check(DEPLOYMENTS, workload(selector=None)) == ["spec.selector: Required value"]
    assert check(DEPLOYMENTS, workload(selector={})) == ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]


def test_template_rules() -> None:
    bad = workload()
    bad["spec"]["template"]["spec"].update(restartPolicy="Never", activeDeadlineSeconds=5)
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert check(DEPLOYMENTS, bad) == [
        "spec.template.spec.containers[0].image: Required value",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in Deployment is not Supported",
    ]


def test_strategy_and_counts() -> None:
    obj = workload(replicas=-1, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}},
                   minReadySeconds=700)
    assert check(DEPLOYMENTS, obj) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
    ]
    assert check(DEPLOYMENTS, workload(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}})) == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%'
    ]
    assert check(DEPLOYMENTS, workload(strategy={"type": "Recreate", "rollingUpdate": {}})) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
    ]


def test_selector_is_immutable() -> None:
    for rt, kind_ in ((DEPLOYMENTS, "Deployment"), (REPLICA_SETS, "ReplicaSet")):
        old = defaulted(rt, workload(kind_))
        new = copy.deepcopy(old)
        new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "fe"}}
        new["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "fe"}
        assert check(rt, new, old) == [
            'spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"fe"}}: field is immutable'
        ]
        scaled = copy.deepcopy(old)
        scaled["spec"]["replicas"] = 5
        assert check(rt, scaled, old) == []


def test_scale_and_fields() -> None:
    for rt in (DEPLOYMENTS, REPLICA_SETS):
        assert rt.scale is not None
        assert (rt.scale.spec_replicas, rt.scale.status_replicas, rt.scale.label_selector) == (
            "spec.replicas", "status.replicas", "spec.selector")
    assert REPLICA_SETS.fields({"status": {"replicas": 3}}) == {"status.replicas": "3"}
    assert REPLICA_SETS.fields({}) == {"status.replicas": "0"}
