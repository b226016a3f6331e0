"""Priority resolution, queue order through the API, and preemption."""

from __future__ import annotations

from cloudlet.client.testing import eventually

from .conftest import node, pod
from .test_scheduling import EVENTS, NODES, PCS, PODS, bound, node_of, unschedulable_message


def pc(name: str, value: int, *, default: bool = False, policy: str | None = None) -> dict:
    obj = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}
    if default:
        obj["globalDefault"] = True
    if policy:
        obj["preemptionPolicy"] = policy
    return obj


async def test_priority_from_class_and_global_default(sched_env):
    client, s = sched_env
    await client.create(PCS, pc("high", 1000))
    await client.create(PCS, pc("base", 7, default=True))
    await eventually(lambda: s.priority_classes.get("base") is not None and s.priority_classes.get("high") is not None)
    assert s.priority_of(pod("a", priorityClassName="high")) == 1000
    assert s.priority_of(pod("b")) == 7
    assert s.priority_of(pod("c", priority=3)) == 3
    assert s.priority_of(pod("d", priorityClassName="missing")) == 0


async def wait_deleting(client, name: str) -> None:
    async def deleting() -> bool:
        try:
            p = await client.get(PODS, name, "default")
        except Exception:
            return True
        return bool(p["metadata"].get("deletionTimestamp"))

    await eventually(deleting)


async def finish_delete(client, name: str) -> None:
    """What a kubelet does once the victim's containers stopped."""
    try:
        await client.delete(PODS, name, "default", grace_period_seconds=0)
    except Exception:
        pass


async def test_high_priority_preempts_lowest(sched_env):
    client, s = sched_env
    await client.create(PCS, pc("low", 10))
    await client.create(PCS, pc("mid", 20))
    await client.create(PCS, pc("high", 1000))
    await client.create(NODES, node("n1", cpu="2"))
    await client.create(PODS, pod("low", cpu="1", priorityClassName="low"))
    await client.create(PODS, pod("mid", cpu="1", priorityClassName="mid"))
    await eventually(lambda: bound(client, "low"))
    await eventually(lambda: bound(client, "mid"))
    await client.create(PODS, pod("vip", cpu="1", priorityClassName="high"))
    await wait_deleting(client, "low")

    async def nominated() -> bool:
        p = await client.get(PODS, "vip", "default")
        return (p.get("status") or {}).get("nominatedNodeName") == "n1" or bool(p["spec"].get("nodeName"))

    await eventually(nominated)
    assert not (await client.get(PODS, "mid", "default"))["metadata"].get("deletionTimestamp")
    # while the victim terminates the preemptor keeps its nomination and waits
    # a node it cannot use does not retry it (the queueing hint says no) ...
    await client.create(NODES, node("tiny", cpu="100m"))
    await eventually(lambda: s.cache.nodes.get("tiny") is not None)
    assert s.queue.where("default/vip") == "unschedulable"
    # ... the periodic flush does: it waits for its terminating victim
    s.queue.unschedulable_timeout = 0
    s.queue.flush_unschedulable()
    await eventually(lambda: _message_has(client, "vip", "terminating pod on the nominated node"))
    vip = await client.get(PODS, "vip", "default")
    assert vip["status"]["nominatedNodeName"] == "n1"
    await finish_delete(client, "low")
    await eventually(lambda: bound(client, "vip"))
    assert await node_of(client, "vip") == "n1"

    async def preempted_event() -> bool:
        evs = (await client.list(EVENTS, "default"))["items"]
        return any(e["reason"] == "Preempted" and e["involvedObject"]["name"] == "low" for e in evs)

    await eventually(preempted_event)


async def test_nominated_room_is_not_taken_by_lower_priority(sched_env):
    client, s = sched_env
    await client.create(PCS, pc("low", 10))
    await client.create(PCS, pc("high", 1000))
    await client.create(NODES, node("n1", cpu="2"))
    await client.create(PODS, pod("low", cpu="2", priorityClassName="low"))
    await eventually(lambda: bound(client, "low"))
    await client.create(PODS, pod("vip", cpu="2", priorityClassName="high"))
    await wait_deleting(client, "low")
    await finish_delete(client, "low")
    await client.create(PODS, pod("sneaky", cpu="2", priorityClassName="low"))
    await eventually(lambda: bound(client, "vip"))
    assert await node_of(client, "sneaky") is None


async def test_preemption_policy_never(sched_env):
    client, s = sched_env
    await client.create(PCS, pc("low", 10))
    await client.create(NODES, node("n1", cpu="1"))
    await client.create(PODS, pod("low", cpu="1", priorityClassName="low"))
    await eventually(lambda: bound(client, "low"))
    await client.create(PODS, pod("polite", cpu="1", priority=1000, preemptionPolicy="Never"))
    await eventually(lambda: unschedulable_message(client, "polite"))
    assert await unschedulable_message(client, "polite") == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.."
    )
    assert not (await client.get(PODS, "low", "default"))["metadata"].get("deletionTimestamp")


async def test_equal_priority_does_not_preempt(sched_env):
    client, s = sched_env
    await client.create(NODES, node("n1", cpu="1"))
    await client.create(PODS, pod("a", cpu="1"))
    await eventually(lambda: bound(client, "a"))
    await client.create(PODS, pod("b", cpu="1"))
    await eventually(lambda: unschedulable_message(client, "b"))
    assert await unschedulable_message(client, "b") == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
    )




async def _message_has(client, name: str, text: str) -> bool:
    return text in (await unschedulable_message(client, name) or "")
