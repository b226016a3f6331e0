"""Filter and score plugins, unit by unit, and the fit message format."""

from __future__ import annotations

import pytest

from cloudlet.scheduler import resources as res
from cloudlet.scheduler.cache import ClusterCache
from cloudlet.scheduler.filters import (
    RUNTIME_CLASS,
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeResourcesFit,
    NodeUnschedulable,
    TaintToleration,
)
from cloudlet.scheduler.framework import (
    UNRESOLVABLE,
    UNSCHEDULABLE,
    CycleState,
    Status,
    fit_message,
)
from cloudlet.scheduler.scores import BalancedAllocation, LeastAllocated

from .conftest import node, pod


def info(n: dict, *pods: dict):
    c = ClusterCache()
    c.set_node(n)
    for p in pods:
        c.assume(p, n["metadata"]["name"])
    return c.nodes[n["metadata"]["name"]]


def run(plugin, p: dict, ni, rc: dict | None = None) -> Status:
    state = CycleState()
    state.write(RUNTIME_CLASS, rc)
    if hasattr(plugin, "pre_filter"):
        plugin.pre_filter(state, p)
    return plugin.filter(state, p, ni)


def test_requests_sum_containers_max_init_plus_overhead():
    p = pod("p", cpu="500m", memory="1Gi")
    p["spec"]["containers"].append({"name": "d", "image": "x", "resources": {"requests": {"cpu": "250m"}}})
    p["spec"]["initContainers"] = [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}}]
    req = res.pod_requests(p, {"cpu": "100m", "memory": "1Mi"})
    assert req["cpu"] == 1100
    assert req["memory"] == 1024**3 + 1024**2
    assert req["pods"] == 1


def test_resources_fit_counts_bound_pods():
    ni = info(node("n", cpu="2", memory="4Gi"), pod("a", cpu="1500m"))
    assert run(NodeResourcesFit(), pod("p", cpu="500m"), ni).ok
    st = run(NodeResourcesFit(), pod("p", cpu="600m", memory="5Gi"), ni)
    assert st.code == UNSCHEDULABLE and st.reasons == ("Insufficient cpu", "Insufficient memory")


def test_resources_fit_pods_and_extended_and_overhead():
    ni = info(node("n", pods="1", extra={"example.com/gpu": "1"}), pod("a"))
    assert run(NodeResourcesFit(), pod("p"), ni).reasons == ("Too many pods",)
    ni = info(node("n", extra={"example.com/gpu": "1"}))
    gpu = pod("g")
    gpu["spec"]["containers"][0]["resources"] = {"limits": {"example.com/gpu": "2"}}
    assert run(NodeResourcesFit(), gpu, ni).reasons == ("Insufficient example.com/gpu",)
    rc = {"overhead": {"podFixed": {"cpu": "1"}}}
    ni = info(node("n", cpu="2"))
    assert run(NodeResourcesFit(), pod("p", cpu="1"), ni, rc).ok
    assert not run(NodeResourcesFit(), pod("p", cpu="1500m"), ni, rc).ok


def test_node_unschedulable():
    ni = info(node("n", unschedulable=True))
    st = run(NodeUnschedulable(), pod("p"), ni)
    assert st.code == UNRESOLVABLE and st.reasons == ("node(s) were unschedulable",)
    tol = pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}])
    assert run(NodeUnschedulable(), tol, ni).ok


@pytest.mark.parametrize(
    ("tolerations", "ok"),
    [
        ([], False),
        ([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}], True),
        ([{"key": "dedicated", "value": "gpu"}], True),
        ([{"key": "dedicated", "value": "cpu"}], False),
        ([{"key": "dedicated", "operator": "Exists"}], True),
        ([{"operator": "Exists"}], True),
        ([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}], False),
    ],
)
def test_taint_toleration_filter(tolerations, ok):
    ni = info(node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    st = run(TaintToleration(), pod("p", tolerations=tolerations), ni)
    assert st.ok is ok
    if not ok:
        assert st.reasons == ("node(s) had untolerated taint {dedicated: gpu}",)


def test_taint_noexecute_and_prefer():
    ni = info(node("n", taints=[{"key": "k", "effect": "NoExecute"}, {"key": "soft", "effect": "PreferNoSchedule"}]))
    assert run(TaintToleration(), pod("p"), ni).reasons == ("node(s) had untolerated taint {k: }",)
    ok = pod("p", tolerations=[{"key": "k", "operator": "Exists"}])
    assert run(TaintToleration(), ok, ni).ok
    tt = TaintToleration()
    clean = info(node("m"))
    scores = {"n": tt.score(CycleState(), ok, ni), "m": tt.score(CycleState(), ok, clean)}
    tt.normalize(CycleState(), ok, scores)
    assert scores == {"n": 0, "m": 100}


def test_runtime_class_tolerations_and_selector():
    ni = info(node("n", labels={"sandbox": "vm"}, taints=[{"key": "vm", "effect": "NoSchedule"}]))
    rc = {"scheduling": {"nodeSelector": {"sandbox": "vm"}, "tolerations": [{"key": "vm", "operator": "Exists"}]}}
    assert run(TaintToleration(), pod("p"), ni, rc).ok
    other = info(node("m"))
    assert not run(NodeAffinity(), pod("p"), other, rc).ok


def test_node_name():
    ni = info(node("n"))
    assert run(NodeName(), pod("p", nodeName="n"), ni).ok
    assert run(NodeName(), pod("p", nodeName="x"), ni).reasons == ("node(s) didn't match the requested node name",)


def _affinity(*exprs: dict, fields: list[dict] | None = None) -> dict:
    term: dict = {"matchExpressions": list(exprs)}
    if fields:
        term["matchFields"] = fields
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "In", "values": ["c"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),
        ({"key": "zone", "operator": "Exists"}, True),
        ({"key": "zone", "operator": "DoesNotExist"}, False),
        ({"key": "cores", "operator": "Gt", "values": ["8"]}, True),
        ({"key": "cores", "operator": "Lt", "values": ["8"]}, False),
        ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),
    ],
)
def test_required_node_affinity(expr, ok):
    ni = info(node("n", labels={"zone": "a", "cores": "16"}))
    st = run(NodeAffinity(), pod("p", affinity=_affinity(expr)), ni)
    assert st.ok is ok
    if not ok:
        assert st.reasons == ("node(s) didn't match Pod's node affinity/selector",)


def test_node_selector_and_match_fields():
    ni = info(node("n", labels={"disk": "ssd"}))
    assert run(NodeAffinity(), pod("p", nodeSelector={"disk": "ssd"}), ni).ok
    assert not run(NodeAffinity(), pod("p", nodeSelector={"disk": "hdd"}), ni).ok
    fields = [{"key": "metadata.name", "operator": "In", "values": ["n"]}]
    assert run(NodeAffinity(), pod("p", affinity=_affinity(fields=fields)), ni).ok
    fields = [{"key": "metadata.name", "operator": "In", "values": ["m"]}]
    assert not run(NodeAffinity(), pod("p", affinity=_affinity(fields=fields)), ni).ok


def test_preferred_node_affinity_score():
    aff = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
    ]}}
    p = pod("p", affinity=aff)
    na = NodeAffinity()
    nodes = {"x": info(node("x", labels={"zone": "a"})), "y": info(node("y", labels={"zone": "a", "disk": "s"})),
             "z": info(node("z"))}
    scores = {k: na.score(CycleState(), p, v) for k, v in nodes.items()}
    assert scores == {"x": 10, "y": 40, "z": 0}
    na.normalize(CycleState(), p, scores)
    assert scores == {"x": 25, "y": 100, "z": 0}


def test_node_ports():
    ports = [{"containerPort": 80, "hostPort": 8080}]
    ni = info(node("n"), pod("a", ports=list(ports)))
    st = run(NodePorts(), pod("p", ports=list(ports)), ni)
    assert st.reasons == ("node(s) didn't have free ports for the requested pod ports",)
    assert run(NodePorts(), pod("p", ports=[{"containerPort": 80, "hostPort": 8081}]), ni).ok
    assert run(NodePorts(), pod("p", ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]), ni).ok


def test_least_allocated_and_balanced():
    empty = info(node("e", cpu="4", memory="4Gi"))
    busy = info(node("b", cpu="4", memory="4Gi"), pod("a", cpu="3", memory="1Gi"))
    p = pod("p", cpu="1", memory="1Gi")
    la, ba = LeastAllocated(), BalancedAllocation()
    assert la.score(CycleState(), p, empty) > la.score(CycleState(), p, busy)
    assert la.score(CycleState(), p, empty) == 75
    assert ba.score(CycleState(), p, empty) == 100
    assert ba.score(CycleState(), p, busy) < 100


def test_fit_message_sorts_like_go():
    sts = [Status(UNSCHEDULABLE, ("Insufficient cpu",))] * 10 + [Status(UNSCHEDULABLE, ("Too many pods",))] * 2
    # Go's sort.Strings on "<count> <reason>": "10 ..." sorts before "2 ..."
    assert fit_message(12, sts) == "0/12 nodes are available: 10 Insufficient cpu, 2 Too many pods."


def test_fit_message_matches_kube_scheduler_fit_error():
    """FitError.Error(): each part is appended with SeparatorFormat " %v.", so a
    PostFilter message that ends in "." ends in ".." (as kubectl describe shows
    on real clusters); a PreFilter rejection replaces the per-node reasons."""
    cpu = [Status(UNSCHEDULABLE, ("Insufficient cpu",))] * 3
    inner = fit_message(3, [Status(UNRESOLVABLE, ("No preemption victims found for incoming pod",))] * 3)
    assert fit_message(3, cpu, "preemption: " + inner) == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.."
    )
    assert fit_message(1, cpu[:1], "preemption: not eligible due to preemptionPolicy=Never.") == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.."
    )
    pre = 'persistentvolumeclaim "data" not found'
    assert fit_message(2, cpu, "", pre) == '0/2 nodes are available: persistentvolumeclaim "data" not found.'
    mixed = [Status(UNRESOLVABLE, ("node(s) had untolerated taint {dedicated: gpu}",))] * 2 + cpu[:1]
    assert fit_message(3, mixed) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}."
    )
