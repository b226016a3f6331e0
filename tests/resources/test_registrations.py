"""Every built-in kind is registered with kube-apiserver's discovery names."""

from __future__ import annotations

import pytest

from cloudlet.resources.registry import ALL_VERBS, REGISTRY

from ._helpers import kind

# (group, version, plural): (kind, singular, namespaced, shortNames, categories, subresources, has_status)
EXPECTED = {
    ("", "v1", "namespaces"): ("Namespace", "namespace", False, ("ns",), (), ("status",), True),
    ("", "v1", "nodes"): ("Node", "node", False, ("no",), (), ("status",), True),
    ("", "v1", "pods"): ("Pod", "pod", True, ("po",), ("all",), ("status", "binding", "eviction"), True),
    ("", "v1", "services"): ("Service", "service", True, ("svc",), ("all",), ("status",), True),
    ("", "v1", "endpoints"): ("Endpoints", "endpoints", True, ("ep",), (), (), False),
    ("", "v1", "configmaps"): ("ConfigMap", "configmap", True, ("cm",), (), (), False),
    ("", "v1", "secrets"): ("Secret", "secret", True, (), (), (), False),
    ("", "v1", "events"): ("Event", "event", True, ("ev",), (), (), False),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", "serviceaccount", True, ("sa",), (), (), False),
    ("apps", "v1", "deployments"): ("Deployment", "deployment", True, ("deploy",), ("all",), ("status", "scale"), True),
    ("apps", "v1", "replicasets"): ("ReplicaSet", "replicaset", True, ("rs",), ("all",), ("status", "scale"), True),
    ("autoscaling", "v2", "horizontalpodautoscalers"): (
        "HorizontalPodAutoscaler", "horizontalpodautoscaler", True, ("hpa",), ("all",), ("status",), True),
    ("autoscaling", "v1", "horizontalpodautoscalers"): (
        "HorizontalPodAutoscaler", "horizontalpodautoscaler", True, ("hpa",), ("all",), ("status",), True),
    ("scheduling.k8s.io", "v1", "priorityclasses"): ("PriorityClass", "priorityclass", False, ("pc",), (), (), False),
    ("node.k8s.io", "v1", "runtimeclasses"): ("RuntimeClass", "runtimeclass", False, (), (), (), False),
    ("coordination.k8s.io", "v1", "leases"): ("Lease", "lease", True, (), (), (), False),
    ("discovery.k8s.io", "v1", "endpointslices"): ("EndpointSlice", "endpointslice", True, (), (), (), False),
    ("policy", "v1", "poddisruptionbudgets"): ("PodDisruptionBudget", "poddisruptionbudget", True, ("pdb",), (), ("status",), True),
}


@pytest.mark.parametrize("gvr", sorted(EXPECTED))
def test_registered(gvr: tuple[str, str, str]) -> None:
    rt = kind(*gvr)
    k, singular, namespaced, short, categories, subresources, has_status = EXPECTED[gvr]
    assert (rt.kind, rt.singular, rt.namespaced) == (k, singular, namespaced)
    assert rt.short_names == short
    assert rt.categories == categories
    assert rt.subresources == subresources
    assert rt.has_status is has_status


def test_nothing_unexpected_is_registered() -> None:
    ours = {(rt.group, rt.version, rt.plural) for rt in REGISTRY.all()}
    assert set(EXPECTED) <= ours


def test_verbs() -> None:
    for gvr in EXPECTED:
        rt = kind(*gvr)
        expected = tuple(v for v in ALL_VERBS if v != "deletecollection") if gvr[2] == "namespaces" else ALL_VERBS
        assert rt.verbs == expected, gvr


def test_category_all_is_exactly_kube_apiservers() -> None:
    in_all = {(rt.group, rt.plural) for rt in REGISTRY.all() if "all" in rt.categories}
    assert in_all == {("", "pods"), ("", "services"), ("apps", "deployments"), ("apps", "replicasets"),
                      ("autoscaling", "horizontalpodautoscalers")}


def test_group_versions_prefer_autoscaling_v2() -> None:
    assert REGISTRY.groups()["autoscaling"] == ["v2", "v1"]


def test_field_selector_hooks_return_strings() -> None:
    for rt in REGISTRY.all():
        fields = rt.fields({"metadata": {"name": "x", "namespace": "y"}})
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()), rt.plural


def test_hooks_survive_empty_and_malformed_objects() -> None:
    for rt in REGISTRY.all():
        for obj in ({}, {"metadata": []}, {"metadata": {"name": "x", "namespace": "y"}, "spec": "bad", "status": 3}):
            rt.default(obj)
            assert isinstance(rt.validate(obj, None), list)
            assert isinstance(rt.validate(obj, obj), list)
