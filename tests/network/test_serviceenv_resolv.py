"""Service link environment variables and per-dnsPolicy resolv.conf (pure functions, kubelet's rules)."""

from __future__ import annotations

from cloudlet.network.dns import resolv_conf
from cloudlet.network.serviceenv import service_env


def svc(name: str, ns: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": list(ports)}}


def test_service_env_links() -> None:
    services = [
        svc("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443}),
        svc("redis-primary", "app", "10.96.0.20", {"name": "redis", "port": 6379, "protocol": "TCP"}, {"port": 9121}),
        svc("headless", "app", "None", {"port": 80}),
        svc("elsewhere", "other", "10.96.0.30", {"port": 80}),
    ]
    env = service_env(services, "app")
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.96.0.20"
    assert env["REDIS_PRIMARY_SERVICE_PORT"] == "6379"
    assert env["REDIS_PRIMARY_SERVICE_PORT_REDIS"] == "6379"
    assert env["REDIS_PRIMARY_PORT"] == "tcp://10.96.0.20:6379"
    assert env["REDIS_PRIMARY_PORT_9121_TCP_ADDR"] == "10.96.0.20"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert not any(k.startswith(("HEADLESS_", "ELSEWHERE_")) for k in env)
    off = service_env(services, "app", enable_service_links=False)
    assert "REDIS_PRIMARY_SERVICE_HOST" not in off and off["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


HOST = "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"


def test_resolv_conf_per_dns_policy() -> None:
    pod = {"metadata": {"namespace": "prod"}, "spec": {}}
    assert resolv_conf(pod, cluster_dns="10.88.0.1", host_resolv=HOST) == (
        "nameserver 10.88.0.1\nsearch prod.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n")
    default = {"metadata": {"namespace": "prod"}, "spec": {"dnsPolicy": "Default"}}
    assert resolv_conf(default, cluster_dns="10.88.0.1", host_resolv=HOST) == HOST
    host_net = {"metadata": {"namespace": "prod"}, "spec": {"hostNetwork": True}}
    assert resolv_conf(host_net, cluster_dns="10.88.0.1", host_resolv=HOST).startswith("nameserver 192.0.2.53")
    with_host = {"metadata": {"namespace": "prod"}, "spec": {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}}
    assert resolv_conf(with_host, cluster_dns="10.88.0.1", host_resolv=HOST).startswith("nameserver 10.88.0.1")
    none = {"metadata": {"namespace": "prod"}, "spec": {"dnsPolicy": "None", "dnsConfig": {
        "nameservers": ["1.2.3.4"], "searches": ["a.b"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}}
    assert resolv_conf(none, cluster_dns="10.88.0.1", host_resolv=HOST) == "nameserver 1.2.3.4\nsearch a.b\noptions ndots:2 edns0\n"
    merged = {"metadata": {"namespace": "prod"}, "spec": {"dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}}}
    assert resolv_conf(merged, cluster_dns="10.88.0.1").endswith("options ndots:1\n")
