"""PriorityClass, RuntimeClass, Lease and EndpointSlice."""

from __future__ import annotations

import copy
from typing import Any

from cloudlet.resources.scheduling import BUILTIN_PRIORITY_CLASSES

from ._helpers import check, defaulted, kind

PRIORITY_CLASSES = kind("scheduling.k8s.io", "v1", "priorityclasses")
RUNTIME_CLASSES = kind("node.k8s.io", "v1", "runtimeclasses")
LEASES = kind("coordination.k8s.io", "v1", "leases")
ENDPOINT_SLICES = kind("discovery.k8s.io", "v1", "endpointslices")


# --- PriorityClass ---------------------------------------------------------------------


def pc(name: str = "high", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": 1000, **fields}


def test_builtin_priority_classes() -> None:
    by_name = {p["metadata"]["name"]: p for p in BUILTIN_PRIORITY_CLASSES}
    assert by_name["system-cluster-critical"]["value"] == 2000000000
    assert by_name["system-node-critical"]["value"] == 2000001000
    for builtin in BUILTIN_PRIORITY_CLASSES:
        assert check(PRIORITY_CLASSES, copy.deepcopy(builtin)) == []


def test_priority_class_defaults_and_validation() -> None:
    assert defaulted(PRIORITY_CLASSES, pc())["preemptionPolicy"] == "PreemptLowerPriority"
    assert check(PRIORITY_CLASSES, pc(value=2000000000)) == [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
    ]
    assert check(PRIORITY_CLASSES, pc("system-high")) == [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
        "error: system-high is not a known system priority class"
    ]
    assert check(PRIORITY_CLASSES, pc(preemptionPolicy="Always")) == [
        'preemptionPolicy: Unsupported value: "Always": supported values: "PreemptLowerPriority", "Never"'
    ]


def test_priority_class_value_is_immutable() -> None:
    old = defaulted(PRIORITY_CLASSES, pc())
    assert check(PRIORITY_CLASSES, pc(value=5, globalDefault=True), old) == [
        "value: Forbidden: may not be changed in an update."
    ]


# --- RuntimeClass -------------------------------------------------------------------------


def rc(handler: Any = "runc", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "microvm"}, "handler": handler, **fields}


def test_runtime_class() -> None:
    assert check(RUNTIME_CLASSES, rc("kata-qemu", overhead={"podFixed": {"memory": "120Mi", "cpu": "250m"}})) == []
    assert check(RUNTIME_CLASSES, rc("Kata.QEMU")) == [
        'handler: Invalid value: "Kata.QEMU": a lowercase RFC 1123 label must consist of lower case alphanumeric '
        "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
        "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    ]
    assert check(RUNTIME_CLASSES, rc(overhead={"podFixed": {"memory": "-1"}}))[0] == (
        'overhead.limits[memory]: Invalid value: "-1": must be greater than or equal to 0'
    )
    assert check(RUNTIME_CLASSES, rc("wasmtime"), rc("runc")) == ['handler: Invalid value: "wasmtime": field is immutable']


# --- Lease --------------------------------------------------------------------------------


def lease(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "node-1", "namespace": "kube-node-lease"}, "spec": spec}


def test_lease() -> None:
    assert check(LEASES, lease(holderIdentity="node-1", leaseDurationSeconds=40, renewTime="2024-01-01T00:00:00.000000Z")) == []
    assert check(LEASES, lease(leaseDurationSeconds=0, leaseTransitions=-1, preferredHolder="x")) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
        "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
    ]
    assert check(LEASES, lease(leaseDurationSeconds="40")) == [
        'spec.leaseDurationSeconds: Invalid value: "40": must be of type integer'
    ]


# --- EndpointSlice --------------------------------------------------------------------------


def slice_(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "default"}, **fields}


def test_endpoint_slice_defaults_and_validation() -> None:
    ok = defaulted(ENDPOINT_SLICES, slice_(addressType="IPv4", endpoints=[{"addresses": ["10.1.0.5"]}], ports=[{"port": 80}]))
    assert ok["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    assert ENDPOINT_SLICES.validate(ok, None) == []
    assert check(ENDPOINT_SLICES, slice_()) == ["addressType: Required value"]
    assert check(ENDPOINT_SLICES, slice_(addressType="IP")) == [
        'addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'
    ]
    bad = slice_(addressType="IPv4", endpoints=[{"addresses": []}, {"addresses": ["fd00::1", "127.0.0.1"]}])
    assert check(ENDPOINT_SLICES, bad) == [
        "endpoints[0].addresses: Required value: must contain at least 1 address",
        'endpoints[1].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address',
        'endpoints[1].addresses[1]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    ]


def test_endpoint_slice_address_type_is_immutable() -> None:
    old = defaulted(ENDPOINT_SLICES, slice_(addressType="IPv4"))
    assert check(ENDPOINT_SLICES, slice_(addressType="IPv6"), old) == ['addressType: Invalid value: "IPv6": field is immutable']
