"""The scheduler end to end over the in-process API: placement, messages, retries."""

from __future__ import annotations

from cloudlet.client.interface import ResourceRef
from cloudlet.client.testing import eventually

from .conftest import node, pod

PODS = ResourceRef("", "v1", "pods")
NODES = ResourceRef("", "v1", "nodes")
EVENTS = ResourceRef("", "v1", "events")
PCS = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses")
RCS = ResourceRef("node.k8s.io", "v1", "runtimeclasses")


async def node_of(client, name: str) -> str | None:
    return (await client.get(PODS, name, "default"))["spec"].get("nodeName")


async def bound(client, name: str) -> bool:
    return bool(await node_of(client, name))


async def scheduled_condition(client, name: str) -> dict | None:
    p = await client.get(PODS, name, "default")
    for c in (p.get("status") or {}).get("conditions") or ():
        if c["type"] == "PodScheduled":
            return c
    return None


async def unschedulable_message(client, name: str) -> str | None:
    c = await scheduled_condition(client, name)
    return c.get("message") if c and c["status"] == "False" else None


async def test_pod_is_bound_to_a_fitting_node(sched_env):
    client, s = sched_env
    await client.create(NODES, node("small", cpu="1"))
    await client.create(NODES, node("big", cpu="8"))
    await client.create(PODS, pod("p", cpu="2"))
    await eventually(lambda: bound(client, "p"))
    assert await node_of(client, "p") == "big"
    cond = await scheduled_condition(client, "p")
    assert cond and cond["status"] == "True"


async def test_pods_spread_by_least_allocated(sched_env):
    client, s = sched_env
    for n in ("a", "b"):
        await client.create(NODES, node(n, cpu="4"))
    for i in range(4):
        await client.create(PODS, pod(f"p{i}", cpu="1"))
    for i in range(4):
        await eventually(lambda i=i: bound(client, f"p{i}"))
    nodes = [await node_of(client, f"p{i}") for i in range(4)]
    assert sorted(nodes) == ["a", "a", "b", "b"]


async def test_other_scheduler_and_bound_pods_are_left_alone(sched_env):
    client, s = sched_env
    await client.create(NODES, node("a"))
    await client.create(PODS, pod("mine", schedulerName="my-scheduler"))
    await client.create(PODS, pod("fixed", nodeName="elsewhere"))
    await client.create(PODS, pod("p"))
    await eventually(lambda: bound(client, "p"))
    assert await node_of(client, "mine") is None
    assert await node_of(client, "fixed") == "elsewhere"


async def test_unschedulable_message_and_event(sched_env):
    client, s = sched_env
    await client.create(NODES, node("n1", cpu="1"))
    taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    await client.create(NODES, node("n2", cpu="8", taints=taint))
    await client.create(NODES, node("n3", cpu="8", taints=taint))
    await client.create(PODS, pod("p", cpu="2"))
    await eventually(lambda: unschedulable_message(client, "p"))
    msg = await unschedulable_message(client, "p")
    assert msg == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling.."  # sic: kube-scheduler appends " %v." to it
    )
    cond = await scheduled_condition(client, "p")
    assert cond["reason"] == "Unschedulable"

    async def has_event() -> bool:
        evs = (await client.list(EVENTS, "default"))["items"]
        return any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" and e["message"] == msg for e in evs)

    await eventually(has_event)


async def test_unschedulable_pod_is_retried_when_a_node_arrives(sched_env):
    client, s = sched_env
    await client.create(NODES, node("n1", cpu="1"))
    await client.create(PODS, pod("p", cpu="2"))
    await eventually(lambda: unschedulable_message(client, "p"))
    await client.create(NODES, node("n2", cpu="4"))
    await eventually(lambda: bound(client, "p"))
    assert await node_of(client, "p") == "n2"


async def test_unschedulable_pod_is_retried_when_a_pod_goes(sched_env):
    client, s = sched_env
    await client.create(NODES, node("n1", cpu="2"))
    await client.create(PODS, pod("first", cpu="2"))
    await eventually(lambda: bound(client, "first"))
    await client.create(PODS, pod("second", cpu="2"))
    await eventually(lambda: unschedulable_message(client, "second"))
    await client.delete(PODS, "first", "default", grace_period_seconds=0)
    await eventually(lambda: bound(client, "second"))


async def test_no_nodes_message(sched_env):
    client, s = sched_env
    await client.create(PODS, pod("p"))
    await eventually(lambda: unschedulable_message(client, "p"))
    assert await unschedulable_message(client, "p") == "no nodes available to schedule pods"


async def test_runtime_class_overhead_and_scheduling(sched_env):
    client, s = sched_env
    await client.create(RCS, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "vm"},
                              "handler": "microvm", "overhead": {"podFixed": {"cpu": "1"}},
                              "scheduling": {"nodeSelector": {"sandbox": "vm"}}})
    await client.create(NODES, node("plain", cpu="8"))
    await client.create(NODES, node("vmhost", cpu="2", labels={"sandbox": "vm"}))
    await eventually(lambda: s.runtime_classes.get("vm") is not None)
    await client.create(PODS, pod("a", cpu="1", runtimeClassName="vm"))
    await eventually(lambda: bound(client, "a"))
    assert await node_of(client, "a") == "vmhost"
    await client.create(PODS, pod("b", cpu="500m", runtimeClassName="vm"))
    await eventually(lambda: unschedulable_message(client, "b"))
    assert (await unschedulable_message(client, "b")).startswith(
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector.")


async def test_tainted_nodes_repel_and_attract(sched_env):
    client, s = sched_env
    await client.create(NODES, node("gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                                    labels={"accel": "gpu"}))
    await client.create(NODES, node("plain"))
    tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    await client.create(PODS, pod("gpu-job", tolerations=tol, nodeSelector={"accel": "gpu"}))
    for i in range(3):
        await client.create(PODS, pod(f"web{i}"))
    await eventually(lambda: bound(client, "gpu-job"))
    assert await node_of(client, "gpu-job") == "gpu"
    for i in range(3):
        await eventually(lambda i=i: bound(client, f"web{i}"))
        assert await node_of(client, f"web{i}") == "plain"


async def test_finished_pod_frees_its_node(sched_env):
    client, s = sched_env
    await client.create(NODES, node("n1", cpu="1"))
    await client.create(PODS, pod("job", cpu="1"))
    await eventually(lambda: bound(client, "job"))
    await client.create(PODS, pod("next", cpu="1"))
    await eventually(lambda: unschedulable_message(client, "next"))
    await client.patch(PODS, "job", {"status": {"phase": "Succeeded"}}, "merge", "default", "status")
    await eventually(lambda: bound(client, "next"))


async def test_gated_pod_waits(sched_env):
    client, s = sched_env
    await client.create(NODES, node("n1"))
    await client.create(PODS, pod("gated", schedulingGates=[{"name": "example.com/wait"}]))
    await client.create(PODS, pod("free"))
    await eventually(lambda: bound(client, "free"))
    assert await node_of(client, "gated") is None
