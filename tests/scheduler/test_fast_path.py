"""The scheduler's fast paths agree with the plain ones.

Batch filters and scores (one call per plugin per cycle) against the
per-node methods, pre-filter/pre-score ``Skip``, the adaptive
``percentageOfNodesToScore`` with its round-robin start, the cache's
per-pod bookkeeping and the queueing rules that keep status-only updates
from retrying a pod. Plugins run on ``NodeInfo`` objects built by the real
:class:`ClusterCache` from node and pod dicts (no API needed for these units).
"""

from __future__ import annotations

import random

import pytest

from cloudlet.scheduler import build_profile
from cloudlet.scheduler.cache import ClusterCache
from cloudlet.scheduler.filters import RUNTIME_CLASS
from cloudlet.scheduler.framework import SKIP, CycleState, Status
from cloudlet.scheduler.queue import SchedulingQueue
from cloudlet.scheduler.scheduler import Scheduler, num_feasible_to_find, pod_updated

from .conftest import node, pod


def random_cluster(rng: random.Random, n: int) -> ClusterCache:
    cache = ClusterCache()
    for i in range(n):
        taints = []
        if rng.random() < 0.2:
            taints.append({"key": "dedicated", "value": rng.choice(["gpu", "db"]), "effect": "NoSchedule"})
        if rng.random() < 0.2:
            taints.append({"key": "soft", "effect": "PreferNoSchedule"})
        cache.set_node(node(f"n{i}", cpu=str(rng.choice([1, 2, 4, 8])), memory=rng.choice(["1Gi", "4Gi", "16Gi"]),
                            pods=str(rng.choice([2, 5, 110])), labels={"zone": rng.choice("abc")}, taints=taints,
                            unschedulable=rng.random() < 0.1))
    for j in range(n * 2):
        p = pod(f"bound{j}", cpu=rng.choice(["100m", "500m", "1"]), memory=rng.choice(["64Mi", "512Mi", "1Gi"]))
        if rng.random() < 0.1:
            p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
        cache.set_pod({**p, "spec": {**p["spec"], "nodeName": f"n{rng.randrange(n)}"}})
    return cache


def pending(rng: random.Random, i: int) -> dict:
    spec: dict = {}
    if rng.random() < 0.3:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    if rng.random() < 0.3:
        spec["nodeSelector"] = {"zone": rng.choice("abc")}
    if rng.random() < 0.3:
        spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}}
    if rng.random() < 0.2:
        spec["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    cpu = rng.choice([None, "250m", "1", "3"])
    return pod(f"p{i}", cpu=cpu, memory=rng.choice([None, "256Mi", "2Gi"]) if cpu else None, **spec)


def fresh_state(p: dict) -> CycleState:
    state = CycleState()
    state.write(RUNTIME_CLASS, None)
    return state


def test_batch_methods_agree_with_per_node_methods():
    rng = random.Random(7)
    cache = random_cluster(rng, 60)
    nodes = cache.node_list()
    profile = build_profile()
    checked: set[str] = set()
    for i in range(40):
        p = pending(rng, i)
        for pl in profile.filters:
            state = fresh_state(p)
            if hasattr(pl, "pre_filter"):
                pl.pre_filter(state, p)
            per_node = [(k, st) for k, ni in enumerate(nodes) if not (st := pl.filter(state, p, ni)).ok]
            if hasattr(pl, "filter_nodes"):
                assert pl.filter_nodes(state, p, nodes) == per_node, (pl.name, p["spec"])
                checked.add(pl.name)
        for pl, _w in profile.scores:
            state = fresh_state(p)
            for f in profile.filters:
                if hasattr(f, "pre_filter"):
                    f.pre_filter(state, p)
            if hasattr(pl, "score_nodes"):
                assert pl.score_nodes(state, p, nodes) == [pl.score(state, p, ni) for ni in nodes], pl.name
                checked.add(pl.name)
    assert checked == {"NodeUnschedulable", "TaintToleration", "NodeResourcesFit", "LeastAllocated",
                       "BalancedAllocation"}


def test_pre_filter_skips_plugins_with_nothing_to_check():
    profile = build_profile()
    plain = pod("plain", cpu="1")
    state = fresh_state(plain)
    skipped = {pl.name for pl in profile.filters
               if hasattr(pl, "pre_filter") and (pl.pre_filter(state, plain) or Status()).code == SKIP}
    assert skipped == {"NodeName", "NodeAffinity", "NodePorts"}
    picky = pod("picky", cpu="1", nodeSelector={"zone": "a"}, ports=[{"containerPort": 1, "hostPort": 9}])
    state = fresh_state(picky)
    skipped = {pl.name for pl in profile.filters
               if hasattr(pl, "pre_filter") and (pl.pre_filter(state, picky) or Status()).code == SKIP}
    assert skipped == {"NodeName"}


@pytest.mark.parametrize(("n", "want"), [(50, 50), (99, 99), (100, 100), (500, 230), (1000, 420),
                                         (5000, 500), (6000, 300), (20000, 1000)])
def test_num_feasible_nodes_to_find(n, want):
    # kube-scheduler: all below 100 nodes, else max(100, n * max(5, 50 - n/125) / 100)
    assert num_feasible_to_find(n) == want


def test_fixed_percentage_of_nodes_to_score():
    assert num_feasible_to_find(5000, 20) == 1000
    assert num_feasible_to_find(5000, 1) == 100  # never fewer than 100
    assert num_feasible_to_find(5000, 100) == 5000


def test_find_nodes_stops_early_and_round_robins(api_env):
    _api, client = api_env
    s = Scheduler(client)
    for i in range(300):
        s.cache.set_node(node(f"n{i:03}", cpu="4"))
    p = pod("p", cpu="1")
    state = s.new_state(p)
    first, _ = s.find_nodes(state, p, 0)
    assert len(first) == num_feasible_to_find(300) == 144
    second, _ = s.find_nodes(state, p, 0)
    assert {n.name for n in first}.isdisjoint({n.name for n in second})
    assert second[0].name == "n144"  # the next cycle starts where this one stopped
    third, _ = s.find_nodes(state, p, 0)  # wraps around the end of the node list
    assert [n.name for n in third[:13]] == [f"n{i:03}" for i in (*range(288, 300), 0)] and len(third) == 144


def test_find_nodes_reports_every_rejection(api_env):
    _api, client = api_env
    s = Scheduler(client)
    for i in range(150):
        s.cache.set_node(node(f"n{i:03}", cpu="1" if i % 3 else "8",
                              taints=[{"key": "k", "effect": "NoSchedule"}] if i % 5 == 0 else None))
    p = pod("p", cpu="2")
    feasible, statuses = s.find_nodes(s.new_state(p), p, 0)
    assert len(feasible) + len(statuses) == 150
    assert all(n.name not in statuses for n in feasible)
    assert {st.plugin for st in statuses.values()} == {"TaintToleration", "NodeResourcesFit"}


def test_node_info_follows_node_updates():
    cache = ClusterCache()
    cache.set_node(node("n"))
    ni = cache.nodes["n"]
    assert not ni.hard_taints and not ni.unschedulable
    cache.set_node(node("n", taints=[{"key": "a", "effect": "NoExecute"}, {"key": "b", "effect": "PreferNoSchedule"}],
                        unschedulable=True, labels={"x": "y"}))
    assert cache.nodes["n"] is ni
    assert [t["key"] for t in ni.hard_taints] == ["a"] and [t["key"] for t in ni.soft_taints] == ["b"]
    assert ni.unschedulable and ni.labels["x"] == "y"


def test_cache_status_update_keeps_accounting_and_spec_change_redoes_it():
    cache = ClusterCache()
    cache.set_node(node("n", cpu="4"))
    p = {**pod("a", cpu="1"), "spec": {**pod("a", cpu="1")["spec"], "nodeName": "n"}}
    cache.set_pod(p)
    ni = cache.nodes["n"]
    assert ni.requested["cpu"] == 1000
    running = {**p, "status": {"phase": "Running"}}
    cache.set_pod(running)
    assert ni.requested["cpu"] == 1000 and ni.pods["default/a"] is running
    bigger = {**p, "spec": {**p["spec"], "containers": [{"name": "c", "image": "x",
                                                          "resources": {"requests": {"cpu": "3"}}}]}}
    cache.set_pod(bigger)
    assert ni.requested["cpu"] == 3000
    cache.set_pod({**bigger, "status": {"phase": "Succeeded"}})
    assert ni.requested["cpu"] == 0 and not ni.pods


def test_nominated_view_is_cached_until_something_changes():
    cache = ClusterCache()
    cache.set_node(node("n", cpu="4"))
    ni = cache.nodes["n"]
    vip = pod("vip", cpu="2")
    cache.nominate(vip, "n", 100)
    v1 = cache.view(ni, "default/other", 50)
    assert v1 is not ni and v1.requested["cpu"] == 2000 and ni.requested.get("cpu", 0) == 0
    assert cache.view(ni, "default/other", 50) is v1
    assert cache.view(ni, "default/other", 200) is ni  # a higher-priority pod need not leave the room
    assert cache.view(ni, "default/vip", 50) is ni  # nor the nominated pod itself
    cache.set_pod({**pod("b", cpu="1"), "spec": {**pod("b", cpu="1")["spec"], "nodeName": "n"}})
    v2 = cache.view(ni, "default/other", 50)
    assert v2 is not v1 and v2.requested["cpu"] == 3000
    cache.clear_nomination("default/vip")
    assert cache.view(ni, "default/other", 50) is ni


def test_status_only_updates_do_not_count_as_pod_updates():
    p = pod("p", cpu="1")
    p["metadata"].update(resourceVersion="1", uid="u")
    status = {**p, "metadata": {**p["metadata"], "resourceVersion": "2"},
              "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}}
    assert not pod_updated(p, status)
    labelled = {**p, "metadata": {**p["metadata"], "labels": {"a": "b"}}}
    assert pod_updated(p, labelled)
    resized = {**p, "spec": {**p["spec"], "priority": 5}}
    assert pod_updated(p, resized)


async def test_queue_update_keeps_unschedulable_pod_waiting_on_status_change():
    q = SchedulingQueue(lambda _p: 0)
    p = pod("p")
    q.add(p)
    got, _ = await q.pop()
    q.add_unschedulable("default/p", frozenset({"NodeResourcesFit"}))
    newer = {**p, "status": {"phase": "Pending"}}
    q.update(newer, significant=False)
    assert q.where("default/p") == "unschedulable" and q.items["default/p"].pod is newer
    q.update(newer, significant=True)
    assert q.where("default/p") in ("backoff", "active")
    q.close()


async def test_event_hint_decides_which_waiting_pods_move():
    q = SchedulingQueue(lambda _p: 0, initial_backoff=0.0, plugin_events=lambda _n: frozenset({"AssignedPod/Delete"}))
    for name in ("a", "b"):
        q.add(pod(name))
        await q.pop()
        q.add_unschedulable(f"default/{name}", frozenset({"NodeResourcesFit"}))
    assert q.move_on_event("AssignedPod/Delete", lambda key, _pod: key == "default/a") == 1
    assert q.where("default/a") == "active" and q.where("default/b") == "unschedulable"
    assert q.move_on_event("Node/Add") == 0  # not an event NodeResourcesFit declared here
    q.close()


async def test_events_beyond_the_queue_limit_are_dropped(api_env):
    from cloudlet.client.interface import ResourceRef

    _api, client = api_env
    s = Scheduler(client)
    s.recorder.max_queued = 3
    p = pod("p")
    p["metadata"]["uid"] = "u1"
    for i in range(5):
        s.event(p, "Normal", "Scheduled", f"message {i}")
    assert s.events_dropped == 2
    await s.wait_idle()
    events = (await client.list(ResourceRef("", "v1", "events"), "default"))["items"]
    assert sorted(e["message"] for e in events) == ["message 0", "message 1", "message 2"]
    s.event(p, "Normal", "Scheduled", "after")  # the queue drained: recorded again
    await s.wait_idle()
    assert s.events_dropped == 2
