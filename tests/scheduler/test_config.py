"""Scheduler profiles from YAML: disabling, enabling, weights, user plugins."""

from __future__ import annotations

import pytest

from cloudlet.scheduler import build_profile, load_profile
from cloudlet.scheduler.framework import OK, CycleState, NodeInfo, Obj, Status, unschedulable


class OnlyEven:
    """A user filter: nodes whose name ends in an even digit."""

    name = "OnlyEven"
    events = frozenset({"Node/Add"})

    def filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        return OK if node.name[-1] in "02468" else unschedulable("node(s) are odd", resolvable=False)


def names(items) -> list[str]:
    return [p.name for p in items]


def test_default_profile():
    prof = build_profile()
    assert names(prof.filters) == ["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                                   "NodeResourcesFit"]
    assert [(p.name, w) for p, w in prof.scores] == [
        ("LeastAllocated", 1), ("BalancedAllocation", 1), ("NodeAffinity", 2), ("TaintToleration", 3)]
    assert prof.events_of("TaintToleration") == {"Node/Add", "Node/Update"}


def test_yaml_profile(tmp_path):
    f = tmp_path / "sched.yaml"
    f.write_text(
        "plugins:\n"
        "  filter:\n"
        "    disabled: [NodePorts]\n"
        f"    enabled: ['{__name__}:OnlyEven']\n"
        "  score:\n"
        "    disabled: ['*']\n"
        "    enabled:\n"
        "      - {name: LeastAllocated, weight: 5}\n"
    )
    prof = load_profile(f)
    assert "NodePorts" not in names(prof.filters)
    assert names(prof.filters)[-1] == "OnlyEven"
    assert [(p.name, w) for p, w in prof.scores] == [("LeastAllocated", 5)]


def test_unknown_plugin():
    with pytest.raises(ValueError, match="unknown scheduler plugin"):
        build_profile({"plugins": {"filter": {"enabled": ["Nope"]}}})


async def test_user_plugin_steers_scheduling(api_env):
    import asyncio

    from cloudlet.client.testing import eventually
    from cloudlet.scheduler import Scheduler

    from .conftest import node, pod
    from .test_scheduling import NODES, PODS

    _api, client = api_env
    prof = build_profile({"plugins": {"filter": {"enabled": [f"{__name__}:OnlyEven"]}}})
    s = Scheduler(client, profile=prof, initial_backoff=0.01, max_backoff=0.05)
    task = asyncio.create_task(s.run())
    try:
        await client.create(NODES, node("n1"))
        await client.create(NODES, node("n2"))
        for i in range(3):
            await client.create(PODS, pod(f"p{i}"))
        for i in range(3):
            await eventually(lambda i=i: _bound_to(client, f"p{i}", "n2"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _bound_to(client, name: str, node_name: str) -> bool:
    from .test_scheduling import PODS

    return (await client.get(PODS, name, "default"))["spec"].get("nodeName") == node_name
