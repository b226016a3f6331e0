"""Preemption: candidate ordering (PodDisruptionBudgets first), and retrying
the preemptor — only it — once its victims are gone.

The unit tests run :func:`preemption.find_victims` on NodeInfos built by the
real cache. The end-to-end tests use the in-process API with the real kinds
and a running scheduler; no disruption controller runs there, so the tests
write each PodDisruptionBudget's ``status`` themselves (what that controller
would compute), and finish victims' graceful deletions as a kubelet would.
"""

from __future__ import annotations

from cloudlet.client.interface import ResourceRef
from cloudlet.client.testing import eventually
from cloudlet.scheduler import preemption
from cloudlet.scheduler.cache import ClusterCache
from cloudlet.scheduler.filters import NodeResourcesFit
from cloudlet.scheduler.framework import UNSCHEDULABLE, CycleState, Status

from .conftest import node, pod
from .test_priority_preemption import finish_delete, pc, wait_deleting
from .test_scheduling import NODES, PCS, PODS, bound, node_of

PDBS = ResourceRef("policy", "v1", "poddisruptionbudgets")


def placed(name: str, node_name: str, priority: int, cpu: str = "1", labels: dict | None = None,
           start: str = "2024-01-01T00:00:00Z") -> dict:
    p = pod(name, cpu=cpu, priority=priority, nodeName=node_name)
    p["metadata"]["labels"] = labels or {}
    p["status"] = {"phase": "Running", "startTime": start}
    return p


def budget(name: str, labels: dict, allowed: int, namespace: str = "default", disrupted: dict | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}},
            "status": {"disruptionsAllowed": allowed, "disruptedPods": disrupted or {}}}


def run_preemption(nodes: dict[str, list[dict]], incoming: dict, pdbs: list[dict] | None = None):
    cache = ClusterCache()
    for name, pods in nodes.items():
        cache.set_node(node(name, cpu="2"))
        for p in pods:
            cache.set_pod(p)
    fit = NodeResourcesFit()
    state = CycleState()
    fit.pre_filter(state, incoming)
    statuses = {n: Status(UNSCHEDULABLE, ("Insufficient cpu",), fit.name) for n in nodes}
    cand, msg = preemption.find_victims(
        incoming, incoming["spec"]["priority"], state, cache.nodes, statuses,
        lambda s, p, ni: fit.filter(s, p, ni), lambda p: p["spec"]["priority"], cache._account, pdbs or [])
    return cand, msg


def test_split_by_pdb_follows_kube_scheduler():
    a = placed("a", "n", 1, labels={"app": "db"})
    b = placed("b", "n", 1, labels={"app": "db"})
    c = placed("c", "n", 1, labels={"app": "web"})
    bare = placed("bare", "n", 1)
    # one disruption allowed: the first covered pod uses it, the second violates
    assert preemption.split_by_pdb([a, b, c], [budget("db", {"app": "db"}, 1)]) == ([b], [a, c])
    # a pod already in disruptedPods was counted by the API: it never violates nor uses the budget
    assert preemption.split_by_pdb([a, b], [budget("db", {"app": "db"}, 1, disrupted={"a": "t"})]) == ([], [a, b])
    # other namespaces, empty selectors and unlabeled pods match nothing
    other_ns = budget("db", {"app": "db"}, 0, namespace="other")
    empty = {"metadata": {"name": "all", "namespace": "default"}, "spec": {"selector": {}},
             "status": {"disruptionsAllowed": 0}}
    assert preemption.split_by_pdb([a, bare], [other_ns, empty]) == ([], [a, bare])


def test_candidate_with_fewer_pdb_violations_wins_over_lower_priority_victims():
    guarded = placed("guarded", "n1", 1, cpu="2", labels={"app": "db"})
    plain = placed("plain", "n2", 50, cpu="2")
    vip = pod("vip", cpu="1", priority=1000)
    cand, _ = run_preemption({"n1": [guarded], "n2": [plain]}, vip)
    assert cand is not None and cand.node == "n1"  # without budgets: the lowest-priority victim
    cand, _ = run_preemption({"n1": [guarded], "n2": [plain]}, vip, [budget("db", {"app": "db"}, 0)])
    assert cand is not None and cand.node == "n2" and cand.pdb_violations == 0
    cand, _ = run_preemption({"n1": [guarded], "n2": [plain]}, vip, [budget("db", {"app": "db"}, 1)])
    assert cand is not None and cand.node == "n1" and cand.pdb_violations == 0


def test_candidate_ordering_rules():
    vip = pod("vip", cpu="2", priority=1000)
    # 2: the lowest highest-priority victim
    cand, _ = run_preemption({"a": [placed("a1", "a", 5, cpu="2")], "b": [placed("b1", "b", 3, cpu="2")]}, vip)
    assert cand.node == "b"
    # 3: then the lowest priority sum
    cand, _ = run_preemption({"a": [placed("a1", "a", 5), placed("a2", "a", 4)],
                              "b": [placed("b1", "b", 5), placed("b2", "b", 1)]}, vip)
    assert cand.node == "b" and sorted(cand.priorities) == [1, 5]
    # 3 with Go's offset: each victim adds 2^31, so fewer victims wins even with a higher raw sum
    cand, _ = run_preemption({"a": [placed("a1", "a", 5, cpu="1500m"), placed("a2", "a", 0, cpu="500m")],
                              "b": [placed("b1", "b", 5, cpu="2")]}, vip)
    assert cand.node == "b"
    # 5: all else equal, the node whose earliest highest-priority victim started last
    cand, _ = run_preemption({"a": [placed("a1", "a", 5, cpu="2", start="2024-01-01T00:00:00Z")],
                              "b": [placed("b1", "b", 5, cpu="2", start="2024-06-01T00:00:00Z")]}, vip)
    assert cand.node == "b"


def test_reprieve_keeps_the_highest_priority_pods():
    pods = [placed("p1", "n", 1), placed("p9", "n", 9)]
    cand, _ = run_preemption({"n": pods}, pod("vip", cpu="1", priority=1000))
    assert [v["metadata"]["name"] for v in cand.victims] == ["p1"]


def test_no_candidate_message():
    cand, msg = run_preemption({"n": [placed("top", "n", 2000, cpu="2")]}, pod("vip", cpu="1", priority=1000))
    assert cand is None
    assert msg == "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."


async def _status(client, name: str, allowed: int) -> None:
    await client.patch(PDBS, name, {"status": {"disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1,
                                               "expectedPods": 1, "observedGeneration": 1}},
                       "merge", "default", "status")


async def test_preemption_spares_pods_covered_by_a_budget(sched_env):
    client, s = sched_env
    await client.create(PCS, pc("high", 1000))
    await client.create(NODES, node("n1", cpu="1"))
    await client.create(NODES, node("n2", cpu="1"))
    await client.create(PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                               "metadata": {"name": "db", "namespace": "default"},
                               "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    await _status(client, "db", 0)
    guarded = pod("guarded", cpu="1", priority=1, nodeName="n1")
    guarded["metadata"]["labels"] = {"app": "db"}
    await client.create(PODS, guarded)
    await client.create(PODS, pod("plain", cpu="1", priority=50, nodeName="n2"))
    await eventually(lambda: s.pdbs is not None
                     and ((s.pdbs.get("default/db") or {}).get("status") or {}).get("expectedPods") == 1)
    await eventually(lambda: len(s.cache.infos) == 2)
    await client.create(PODS, pod("vip", cpu="1", priorityClassName="high"))
    await wait_deleting(client, "plain")
    assert not (await client.get(PODS, "guarded", "default"))["metadata"].get("deletionTimestamp")
    victim = await client.get(PODS, "plain", "default")
    conds = {c["type"]: c for c in victim["status"].get("conditions") or ()}
    assert conds["DisruptionTarget"]["reason"] == "PreemptionByScheduler"
    await finish_delete(client, "plain")
    await eventually(lambda: bound(client, "vip"))
    assert await node_of(client, "vip") == "n2"


async def test_victim_deletion_retries_only_the_preemptor_it_frees(sched_env):
    client, s = sched_env
    await client.create(PCS, pc("high", 1000))
    for n in ("n1", "n2"):
        await client.create(NODES, node(n, cpu="1"))
        await client.create(PODS, pod(f"low-{n}", cpu="1", priority=1, nodeName=n))
    await eventually(lambda: len(s.cache.infos) == 2 and len(s.cache.nodes) == 2)
    for h in ("h1", "h2"):
        await client.create(PODS, pod(h, cpu="1", priorityClassName="high"))
    await wait_deleting(client, "low-n1")
    await wait_deleting(client, "low-n2")
    await eventually(lambda: len(s.cache.nominated_pods) == 2
                     and all(s.queue.where(f"default/{h}") == "unschedulable" for h in ("h1", "h2")))
    first = s.cache.nominated_pods["default/h1"]
    other, waiting = ("default/h2", "n2" if first == "n1" else "n1")
    attempts = s.queue.items[other].attempts
    await finish_delete(client, f"low-{first}")
    await eventually(lambda: bound(client, "h1"))
    assert await node_of(client, "h1") == first
    assert s.queue.where(other) == "unschedulable" and s.queue.items[other].attempts == attempts
    await finish_delete(client, f"low-{waiting}")
    await eventually(lambda: bound(client, "h2"))
    assert await node_of(client, "h2") == waiting
