"""The pods/binding subresource, in process and over HTTP."""

from __future__ import annotations

import pytest

from cloudlet.api.binding import bind_pod
from cloudlet.api.errors import APIError
from cloudlet.client.interface import ResourceRef

from .conftest import pod

PODS = ResourceRef("", "v1", "pods")


def binding(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": node}}


async def test_bind_sets_node_and_condition(api_env):
    api, client = api_env
    await client.create(PODS, pod("p"))
    out = await bind_pod(api, "default", binding("p", "n1"))
    assert out["spec"]["nodeName"] == "n1"
    got = await client.get(PODS, "p", "default")
    assert got["spec"]["nodeName"] == "n1"
    conds = {c["type"]: c for c in got["status"]["conditions"]}
    assert conds["PodScheduled"]["status"] == "True"


async def test_bind_twice_conflicts(api_env):
    api, client = api_env
    await client.create(PODS, pod("p"))
    await bind_pod(api, "default", binding("p", "n1"))
    with pytest.raises(APIError) as e:
        await bind_pod(api, "default", binding("p", "n2"))
    assert e.value.code == 409
    assert 'pod p is already assigned to node "n1"' in str(e.value)


async def test_bind_missing_pod_is_404(api_env):
    api, _ = api_env
    with pytest.raises(APIError) as e:
        await bind_pod(api, "default", binding("nope", "n1"))
    assert e.value.code == 404


async def test_bind_needs_target(api_env):
    api, client = api_env
    await client.create(PODS, pod("p"))
    with pytest.raises(APIError) as e:
        await bind_pod(api, "default", {"metadata": {"name": "p"}, "target": {}})
    assert e.value.code == 400
