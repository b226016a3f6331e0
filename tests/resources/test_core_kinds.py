"""Namespace, Node, ConfigMap, Secret, ServiceAccount, Endpoints and Event."""

from __future__ import annotations

import base64
import copy
from typing import Any

from ._helpers import check, defaulted, kind

NAMESPACES = kind("", "v1", "namespaces")
NODES = kind("", "v1", "nodes")
CONFIG_MAPS = kind("", "v1", "configmaps")
SECRETS = kind("", "v1", "secrets")
SERVICE_ACCOUNTS = kind("", "v1", "serviceaccounts")
ENDPOINTS = kind("", "v1", "endpoints")
EVENTS = kind("", "v1", "events")


def meta(name: str = "x", namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **extra}
    if namespace is not None:
        out["namespace"] = namespace
    return out


# --- Namespace -------------------------------------------------------------------


def test_namespace_defaults() -> None:
    obj = {"metadata": meta("team-a", None), "status": {}}
    NAMESPACES.prepare_create(obj)
    ns = defaulted(NAMESPACES, obj)
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


def test_namespace_finalizer_not_re_added_on_update() -> None:
    stored = {"metadata": meta("team-a", None, resourceVersion="5"), "spec": {}, "status": {"phase": "Active"}}
    assert defaulted(NAMESPACES, stored)["spec"] == {}


def test_namespace_spec_finalizers_only_change_through_finalize() -> None:
    old = {"metadata": meta("team-a", None), "spec": {"finalizers": ["kubernetes"]}}
    new = {"metadata": meta("team-a", None), "spec": {"finalizers": []}}
    NAMESPACES.prepare_update(new, old)
    assert new["spec"] == {"finalizers": ["kubernetes"]}


def test_namespace_validation() -> None:
    assert check(NAMESPACES, {"metadata": meta("team.a", None)}) == [
        'metadata.name: Invalid value: "team.a": must not contain dots'
    ]
    assert check(NAMESPACES, {"metadata": meta("a", None), "spec": {"finalizers": ["custom"]}}) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'
    ]
    assert NAMESPACES.fields(defaulted(NAMESPACES, {"metadata": meta("a", None)})) == {"status.phase": "Active"}


# --- Node ------------------------------------------------------------------------------


def test_node_defaults_and_validation() -> None:
    node = defaulted(NODES, {"metadata": meta("node-1", None), "status": {"capacity": {"cpu": 4, "memory": "8Gi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}
    assert NODES.validate(node, None) == []
    bad = {"metadata": meta("node-1", None), "spec": {"taints": [{"key": "k", "effect": "Never"}, {"key": "k", "effect": "Never"}],
                                                      "podCIDRs": ["10.0.0.0/33"]}}
    assert check(NODES, bad) == [
        'metadata.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        'metadata.taints[1].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        'metadata.taints[1]: Duplicate value: {"key":"k","effect":"Never"}: taints must be unique by key and effect pair',
        'spec.podCIDRs[0]: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ]


def test_node_update_and_fields() -> None:
    old = defaulted(NODES, {"metadata": meta("n", None), "spec": {"podCIDRs": ["10.0.0.0/24"], "providerID": "p1"}})
    new = copy.deepcopy(old)
    new["spec"].update(podCIDRs=["10.0.1.0/24"], providerID="p2", unschedulable=True)
    assert [str(e) for e in NODES.validate(new, old)] == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
        'spec.providerID: Forbidden: node updates may not change providerID except from "" to valid',
    ]
    assert NODES.fields(new) == {"spec.unschedulable": "true"}


# --- ConfigMap / Secret -------------------------------------------------------------------


def test_config_map() -> None:
    assert check(CONFIG_MAPS, {"metadata": meta(), "data": {"a.conf": "x"}}) == []
    assert check(CONFIG_MAPS, {"metadata": meta(), "data": {"a/b": "x"}, "binaryData": {"a/b": "eA=="}})[:2] == [
        'data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric characters, \'-\', \'_\' or '
        "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        'data[a/b]: Invalid value: "a/b": duplicate of key present in binaryData',
    ]


def test_config_map_immutable() -> None:
    old = {"metadata": meta(), "data": {"a": "1"}, "immutable": True}
    new = {"metadata": meta(), "data": {"a": "2"}}
    assert check(CONFIG_MAPS, new, old) == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


def test_secret_defaults_merge_string_data() -> None:
    secret = defaulted(SECRETS, {"metadata": meta(), "data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}})
    assert secret["type"] == "Opaque"
    assert "stringData" not in secret
    assert secret["data"] == {"a": base64.b64encode(b"y").decode(), "b": base64.b64encode(b"hello").decode()}


def test_secret_validation() -> None:
    assert check(SECRETS, {"metadata": meta(), "data": {"k": "not base64!"}}) == [
        'data[k]: Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3'
    ]
    assert check(SECRETS, {"metadata": meta(), "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}) == [
        "data[tls.key]: Required value"
    ]
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    assert check(SECRETS, {"metadata": meta(), "data": {"big": big}}) == ["data: Too long: must have at most 1048576 bytes"]


def test_secret_update_rules() -> None:
    old = defaulted(SECRETS, {"metadata": meta(), "data": {"a": "eA=="}, "immutable": True})
    new = {"metadata": meta(), "type": "kubernetes.io/basic-auth", "data": {"a": "eQ=="}, "immutable": True}
    assert check(SECRETS, new, old) == [
        'data[username]: Required value',
        'data[password]: Required value',
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable',
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    assert SECRETS.fields(old) == {"type": "Opaque"}


# --- ServiceAccount / Endpoints / Event -------------------------------------------------------


def test_service_account() -> None:
    assert check(SERVICE_ACCOUNTS, {"metadata": meta("default")}) == []
    assert check(SERVICE_ACCOUNTS, {"metadata": meta("Bad")})[0].startswith('metadata.name: Invalid value: "Bad"')


def test_endpoints() -> None:
    ep = defaulted(ENDPOINTS, {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.1.0.5"}], "ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert ENDPOINTS.validate(ep, None) == []
    bad = {"metadata": meta("web"), "subsets": [{}, {"addresses": [{"ip": "127.0.0.1"}, {"ip": "nope"}],
                                                     "ports": [{"port": 80}, {"port": 81}]}]}
    assert check(ENDPOINTS, bad) == [
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
        'subsets[1].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
        'subsets[1].addresses[1].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
        'subsets[1].addresses[1].ip: Invalid value: "nope": must be a valid IP address',
        "subsets[1].ports[0].name: Required value",
        "subsets[1].ports[1].name: Required value",
    ]


def event(**fields: Any) -> dict[str, Any]:
    return {"metadata": meta("web.17a"), "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default",
                                                            "uid": "u1", "apiVersion": "v1", "fieldPath": "spec.containers{c}"},
            "reason": "Started", "message": "Started container c", "type": "Normal", "source": {"component": "kubelet"},
            "reportingComponent": "kubelet", **fields}


def test_event_validation() -> None:
    assert check(EVENTS, event()) == []
    mismatch = event(involvedObject={"kind": "Pod", "name": "web", "namespace": "other"})
    assert check(EVENTS, mismatch) == ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    assert check(EVENTS, event(metadata=meta("a/b"))) == ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def test_event_fields() -> None:
    assert EVENTS.fields(event()) == {
        "involvedObject.kind": "Pod", "involvedObject.namespace": "default", "involvedObject.name": "web",
        "involvedObject.uid": "u1", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "",
        "involvedObject.fieldPath": "spec.containers{c}", "reason": "Started", "reportingComponent": "kubelet",
        "source": "kubelet", "type": "Normal",
    }
