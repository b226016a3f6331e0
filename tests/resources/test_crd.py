"""The CustomResourceDefinition kind: defaults, validation, strict fields, table."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cloudlet.api.errors import APIError
from cloudlet.resources.apiextensions import CLEANUP_FINALIZER, CRDS, prune_crd

from ._helpers import check, defaulted


def crd(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
        }],
    }
    base.update(spec)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "spec": base, "status": {"storedVersions": ["v1"]}}


def version(name: str, storage: bool = False, **extra: Any) -> dict[str, Any]:
    v = copy.deepcopy(crd()["spec"]["versions"][0])
    v.update(name=name, storage=storage, **extra)
    return v


def test_registered_like_kube_apiserver() -> None:
    assert (CRDS.group, CRDS.version, CRDS.plural, CRDS.namespaced) == ("apiextensions.k8s.io", "v1", "customresourcedefinitions", False)
    assert CRDS.short_names == ("crd", "crds") and CRDS.categories == ("api-extensions",)
    assert CRDS.subresources == ("status",) and CRDS.has_status


def test_defaults() -> None:
    out = defaulted(CRDS, crd())
    names = out["spec"]["names"]
    assert names["singular"] == "widget" and names["listKind"] == "WidgetList"
    assert out["spec"]["conversion"] == {"strategy": "None"}


def test_valid_crd() -> None:
    assert check(CRDS, crd()) == []


def test_create_resets_status_and_adds_finalizer() -> None:
    obj = crd()
    obj["status"] = {"acceptedNames": {"plural": "x", "kind": "X"}, "conditions": [{"type": "Established"}]}
    CRDS.prepare_create(obj)
    assert obj["status"] == {"storedVersions": ["v1"]}
    assert obj["metadata"]["finalizers"] == [CLEANUP_FINALIZER]


def test_update_adds_new_storage_version_to_stored_versions() -> None:
    old = crd()
    CRDS.prepare_create(old)
    new = crd(versions=[version("v1"), version("v2", storage=True)])
    new["status"] = copy.deepcopy(old["status"])
    CRDS.prepare_update(new, old)
    assert new["status"]["storedVersions"] == ["v1", "v2"]
    assert CLEANUP_FINALIZER in new["metadata"]["finalizers"]
    assert check(CRDS, new, old) == []


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({"group": "example"}, 'spec.group: Invalid value: "example": should be a domain with at least one dot'),
        ({"group": ""}, "spec.group: Required value"),
        ({"scope": "Global"}, 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'),
        ({"names": {"plural": "Widgets", "kind": "Widget"}}, "spec.names.plural: Invalid value: \"Widgets\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
        ({"names": {"plural": "widgets", "kind": "Widget", "listKind": "Widget"}}, 'spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same'),
        ({"names": {"plural": "widgets"}}, "spec.names.kind: Required value"),
        ({"conversion": {"strategy": "Webhook"}}, 'spec.conversion.strategy: Unsupported value: "Webhook": supported values: "None"'),
        ({"preserveUnknownFields": True}, "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"),
    ],
)
def test_spec_errors(spec: dict[str, Any], want: str) -> None:
    assert want in check(CRDS, crd(**spec))


def test_name_must_be_plural_dot_group() -> None:
    obj = crd()
    obj["metadata"]["name"] = "gadgets.example.com"
    assert check(CRDS, obj) == ['metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group']


def test_versions_rules() -> None:
    two_storage = crd(versions=[version("v1", storage=True), version("v2", storage=True)])
    assert any("must have exactly one version marked as storage version" in m for m in check(CRDS, two_storage))
    dup = crd(versions=[version("v1", storage=True), version("v1")])
    assert any("must contain unique version names" in m for m in check(CRDS, dup))
    no_schema = crd(versions=[{"name": "v1", "served": True, "storage": True}])
    assert check(CRDS, no_schema) == ["spec.versions[0].schema.openAPIV3Schema: Required value"]
    bad_name = crd(versions=[version("V1", storage=True)])
    assert any(m.startswith('spec.versions[0].name: Invalid value: "V1"') for m in check(CRDS, bad_name))
    assert any("must have the storage version" in m for m in check(CRDS, crd(versions=[version("v2", storage=True)])))


def test_subresources_and_columns() -> None:
    v = version("v1", storage=True,
                subresources={"status": {}, "scale": {"specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.x"}},
                additionalPrinterColumns=[{"name": "A", "type": "int", "jsonPath": ".spec.a"}, {"name": "", "type": "string", "jsonPath": "spec"}])
    msgs = check(CRDS, crd(versions=[v]))
    assert msgs == [
        'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with .',
        'spec.versions[0].subresources.scale.statusReplicasPath: Invalid value: ".spec.x": should be a json path under .status',
        'spec.versions[0].additionalPrinterColumns[0].type: Invalid value: "int": must be one of boolean,date,integer,number,string',
        "spec.versions[0].additionalPrinterColumns[1].name: Required value",
        'spec.versions[0].additionalPrinterColumns[1].JSONPath: Invalid value: "spec": must be a simple json path starting with .',
    ]


def test_schema_errors_reach_crd_validation() -> None:
    v = version("v1", storage=True, schema={"openAPIV3Schema": {"type": "object", "properties": {"spec": {"properties": {}}}}})
    assert check(CRDS, crd(versions=[v])) == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
    ]


def test_immutable_fields_once_established() -> None:
    old = crd()
    old["status"]["conditions"] = [{"type": "Established", "status": "True"}]
    new = crd(scope="Cluster", group="other.com")
    new["metadata"]["name"] = "widgets.example.com"
    msgs = check(CRDS, new, old)
    assert 'spec.scope: Invalid value: "Cluster": field is immutable' in msgs
    assert 'spec.group: Invalid value: "other.com": field is immutable' in msgs


def test_protected_groups_need_approval() -> None:
    obj = crd(group="widgets.k8s.io")
    obj["metadata"]["name"] = "widgets.widgets.k8s.io"
    assert check(CRDS, obj) == [
        'metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation '
        '"api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
    ]
    obj["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    assert check(CRDS, obj) == []


def test_strict_decoding_finds_unknown_fields() -> None:
    obj = crd()
    obj["spec"]["versions"][0]["schema"]["openAPIv3Schema"] = {}
    obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["typo"] = 1
    obj["spec"]["bogus"] = True
    assert prune_crd(obj) == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].typo",
        "spec.versions[0].schema.openAPIv3Schema",
        "spec.bogus",
    ]
    assert prune_crd(obj) == []


def test_strict_decoding_type_errors_are_400() -> None:
    obj = crd()
    obj["spec"]["versions"][0]["served"] = "yes"
    with pytest.raises(APIError) as ei:
        prune_crd(obj)
    assert ei.value.code == 400
    assert "json: cannot unmarshal string into Go struct field spec.versions[0].served of type bool" in ei.value.message


def test_table_row() -> None:
    obj = crd()
    obj["metadata"]["creationTimestamp"] = "2024-01-02T03:04:05Z"
    assert [c.name for c in CRDS.columns] == ["Name", "Created At"]
    assert CRDS.table is not None and CRDS.table(obj) == ["widgets.example.com", "2024-01-02T03:04:05Z"]
