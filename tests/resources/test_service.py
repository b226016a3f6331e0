"""Service defaulting and validation."""

from __future__ import annotations

import copy
from typing import Any

from ._helpers import check, defaulted, kind

SERVICES = kind("", "v1", "services")


def svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": base}


def test_defaults() -> None:
    spec = defaulted(SERVICES, svc(ports=[{"port": 80}, {"name": "b", "port": 81, "targetPort": "http"}]))["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["ports"][1]["targetPort"] == "http"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "clusterIP" not in spec  # allocated by the API server, not here
    assert "externalTrafficPolicy" not in spec


def test_type_specific_defaults() -> None:
    lb = defaulted(SERVICES, svc(type="LoadBalancer"))["spec"]
    assert lb["externalTrafficPolicy"] == "Cluster"
    assert lb["allocateLoadBalancerNodePorts"] is True
    sticky = defaulted(SERVICES, svc(sessionAffinity="ClientIP"))["spec"]
    assert sticky["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    headless = defaulted(SERVICES, svc(clusterIP="None", selector=None))["spec"]
    assert headless["clusterIPs"] == ["None"]
    assert headless["ipFamilyPolicy"] == "RequireDualStack"
    external = defaulted(SERVICES, svc(type="ExternalName", externalName="db.example.com", ports=[]))["spec"]
    assert "ipFamilyPolicy" not in external and "ipFamilies" not in external


def test_valid_services() -> None:
    assert check(SERVICES, svc()) == []
    assert check(SERVICES, svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])) == []
    assert check(SERVICES, svc(clusterIP="None", ports=[])) == []
    assert check(SERVICES, svc(type="ExternalName", externalName="db.example.com.", ports=[])) == []


def test_name_is_dns1035_label() -> None:
    assert check(SERVICES, svc(name="1web")) == [
        'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric '
        "characters or '-', start with an alphabetic character, and end with an alphanumeric character "
        "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    ]


def test_ports() -> None:
    assert check(SERVICES, svc(ports=[])) == ["spec.ports: Required value"]
    ports = [{"port": 80}, {"name": "b", "port": 0, "protocol": "ICMP", "nodePort": 30000}, {"name": "b", "port": 80}]
    assert check(SERVICES, svc(ports=ports)) == [
        "spec.ports[0].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[2].name: Duplicate value: "b"',
        "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        'spec.ports[2]: Duplicate value: {"port":80,"protocol":"TCP"}',
    ]


def test_enums() -> None:
    assert check(SERVICES, svc(type="Internal", sessionAffinity="Sticky")) == [
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
        'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ]


def test_cluster_ip_rules() -> None:
    assert check(SERVICES, svc(clusterIP="10.96.0.300")) == [
        'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
    ]
    assert check(SERVICES, svc(type="NodePort", clusterIP="None")) == [
        "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
    ]


def test_cluster_ip_is_immutable() -> None:
    old = defaulted(SERVICES, svc(clusterIP="10.96.0.10"))
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    assert check(SERVICES, new, old) == [
        'spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set'
    ]
    same = copy.deepcopy(old)
    same["spec"]["ports"][0]["port"] = 8080
    same["spec"]["ports"][0]["targetPort"] = 8080
    assert check(SERVICES, same, old) == []


def test_fields() -> None:
    assert SERVICES.fields(defaulted(SERVICES, svc(clusterIP="10.96.0.10"))) == {
        "spec.clusterIP": "10.96.0.10", "spec.type": "ClusterIP",
    }
