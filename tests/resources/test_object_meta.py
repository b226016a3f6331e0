"""validate_object_meta / validate_object_meta_update / labels / selectors."""

from __future__ import annotations

from cloudlet.resources.validation import (
    name_is_dns_label,
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

from ._helpers import messages


def test_name_required_unless_generate_name() -> None:
    assert messages(validate_object_meta({"namespace": "default"}, True)) == [
        "metadata.name: Required value: name or generateName is required"
    ]
    assert validate_object_meta({"generateName": "web-", "namespace": "default"}, True) == []


def test_namespace_rules() -> None:
    assert messages(validate_object_meta({"name": "a"}, True)) == ["metadata.namespace: Required value"]
    assert messages(validate_object_meta({"name": "a", "namespace": "x"}, False)) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]
    assert validate_object_meta({"name": "a", "namespace": "Bad_NS"}, True)[0].field == "metadata.namespace"


def test_name_check_per_kind() -> None:
    errs = validate_object_meta({"name": "a.b"}, False, name_check=name_is_dns_label)
    assert messages(errs) == ['metadata.name: Invalid value: "a.b": must not contain dots']


def test_labels_and_annotations() -> None:
    errs = validate_labels({"-bad": "ok", "good": "-bad"}, "metadata.labels")
    assert [e.value for e in errs] == ["-bad", "-bad"]
    assert all(e.field == "metadata.labels" for e in errs)
    big = {"a": "x" * (256 * 1024)}
    assert messages(validate_annotations(big, "metadata.annotations")) == [
        "metadata.annotations: Too long: must have at most 262144 bytes"
    ]
    assert validate_annotations({"Example.COM/Key": "v"}, "metadata.annotations") == []


def test_owner_references_and_finalizers() -> None:
    meta = {"name": "a", "ownerReferences": [{"apiVersion": "", "kind": "ReplicaSet", "name": "rs", "uid": ""}],
            "finalizers": ["kubernetes", "example.com/cleanup", "custom"]}
    assert messages(validate_object_meta(meta, False)) == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": must not be empty',
        'metadata.finalizers[2]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified',
    ]


def test_object_meta_update_immutables() -> None:
    old = {"name": "a", "namespace": "ns", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z"}
    new = {"name": "b", "namespace": "ns", "uid": "u2", "creationTimestamp": "2024-01-01T00:00:00Z"}
    assert messages(validate_object_meta_update(new, old)) == [
        'metadata.name: Invalid value: "b": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]
    # uid omitted by the client: the server carries it over, not an error
    assert validate_object_meta_update({"name": "a", "namespace": "ns"}, old) == []


def test_no_new_finalizers_while_deleting() -> None:
    old = {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x"]}
    new = {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x", "a.io/y"]}
    assert messages(validate_object_meta_update(new, old)) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, '
        'found new finalizers []string{"a.io/y"}'
    ]


def test_label_selector_validation_and_matching() -> None:
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}
    assert validate_label_selector(sel, "spec.selector") == []
    assert selector_matches(sel, {"app": "web", "tier": "fe"})
    assert not selector_matches(sel, {"app": "web"})
    assert selector_matches({}, {"x": "y"})
    assert not selector_matches(None, {"x": "y"})
    bad = {"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Exists", "values": ["x"]},
                                {"key": "c", "operator": "Foo"}]}
    assert messages(validate_label_selector(bad, "spec.selector")) == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Foo": not a valid selector operator',
    ]
