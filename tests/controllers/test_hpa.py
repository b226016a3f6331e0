"""The HPA replica calculator and rate limits: Kubernetes' rules on hand-made pods and samples.

The end-to-end path (scale subresource, metrics API, status, events) is in
tests/e2e/test_hpa.py; these pin the arithmetic kube's replica_calculator does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from cloudlet.client.testing import local_api
from cloudlet.controllers.hpa import HPAController, MetricError, _Sample, _ScaleEvent, _State
from cloudlet.resources import REGISTRY


def ts(seconds_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, *, ready: bool = True, started: float = 600, ready_since: float = 600, phase: str = "Running",
        cpu: str | None = "100m", deleting: bool = False) -> dict:
    meta = {"name": name, "namespace": "default"}
    if deleting:
        meta["deletionTimestamp"] = ts(0)
    resources = {"requests": {"cpu": cpu}} if cpu else {}
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "resources": resources}]},
            "status": {"phase": phase, "startTime": ts(started),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts(ready_since)}]}}


def samples(**usage: float) -> dict[str, _Sample]:
    return {name: _Sample(value, time.time(), 10.0) for name, value in usage.items()}


@pytest.fixture
async def hpa():
    async with local_api(REGISTRY) as (_s, _a, client):
        yield HPAController(client)


async def test_ratio_and_tolerance(hpa: HPAController) -> None:
    pods = [pod("a"), pod("b")]
    # 100m used of 100m requested each = 100% vs target 50% -> ceil(2.0 * 2) = 4
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.1, b=0.1), 2, 50)[:2] == (4, 100)
    # 54% vs 50%: within the 0.1 tolerance -> unchanged
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.054, b=0.054), 2, 50)[0] == 2
    # 10% vs 50% -> ceil(0.2 * 2) = 1
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.01, b=0.01), 2, 50)[0] == 1


async def test_missing_metrics_count_as_full_on_scale_down_and_zero_on_scale_up(hpa: HPAController) -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    # scale up: a,b at 200%, c missing -> counted 0%: ratio (2+2+0)/3/0.5 = 2.67 -> ceil(2.67*3) = 8
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.2, b=0.2), 3, 50)[0] == 8
    # scale down: a,b idle, c missing -> counted 100%: 33% vs 50% -> ceil(0.67*3) = 2
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.0, b=0.0), 3, 50)[0] == 2
    # a,b at 10%, c at 100%: 40% -> ceil(0.8*3) = 3: no change
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.01, b=0.01), 3, 50)[0] == 3
    # a,b at 40% (scale down) but with c at 100% it is 60% (scale up): direction flips -> no change
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.04, b=0.04), 3, 50)[0] == 3


async def test_unready_pods_are_left_out_and_count_zero_when_scaling_up(hpa: HPAController) -> None:
    pods = [pod("a"), pod("b", ready=False, started=20, ready_since=20)]
    # a at 200%, b unready (inside its initialisation period) -> counted 0: (2+0)/2 / 0.5 = 2 -> 4
    assert hpa._utilization_replicas("cpu", "", pods, samples(a=0.2, b=0.9), 2, 50)[0] == 4
    # a pod that turned Ready within one metrics window of its sample is still unready for cpu
    fresh = [pod("a"), pod("b", started=20, ready_since=2)]
    assert hpa._group_pods(fresh, samples(a=0.1, b=0.1), "cpu")[1] == {"b"}
    assert hpa._group_pods(fresh, samples(a=0.1, b=0.1), "memory")[1] == set()  # the rule is cpu's only


async def test_ignored_pods_and_missing_requests(hpa: HPAController) -> None:
    pods = [pod("a"), pod("gone", deleting=True), pod("failed", phase="Failed"), pod("p", phase="Pending")]
    ready, unready, missing, ignored = hpa._group_pods(pods, samples(a=0.1, gone=5.0, failed=5.0), "cpu")
    assert (ready, unready, missing, ignored) == (1, {"p"}, set(), {"gone", "failed"})
    with pytest.raises(MetricError, match="missing request for cpu in container c of Pod x"):
        hpa._utilization_replicas("cpu", "", [pod("x", cpu=None)], samples(x=0.1), 1, 50)


async def test_behavior_policies_limit_the_rate(hpa: HPAController) -> None:
    st = _State()
    now = time.time()
    up = {"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                               {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert hpa._up_limit(3, st, up, now) == 7  # max(3+4, 3*2)
    assert hpa._up_limit(10, st, up, now) == 20
    assert hpa._up_limit(10, st, {**up, "selectPolicy": "Min"}, now) == 14
    assert hpa._up_limit(10, st, {**up, "selectPolicy": "Disabled"}, now) == 10
    st.up.append(_ScaleEvent(5, now - 5))  # 5 added within the period: it started from 5
    assert hpa._up_limit(10, st, up, now) == 10  # max(5+4, 5*2)
    down = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60},
                                                 {"type": "Pods", "value": 1, "periodSeconds": 60}]}
    assert hpa._down_limit(10, _State(), down, now) == 5  # the larger change: min(5, 9)
    assert hpa._down_limit(10, _State(), {**down, "selectPolicy": "Min"}, now) == 9


async def test_stabilization_window_keeps_the_highest_recent_recommendation(hpa: HPAController) -> None:
    status: dict = {}
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}
    assert hpa._normalize_with_behavior("k", status, behavior, 4, 6, 1, 10) == 6
    assert hpa._normalize_with_behavior("k", status, behavior, 6, 2, 1, 10) == 6  # 6 was recommended within 60 s
    cond = {c["type"]: c for c in status["conditions"]}
    assert cond["AbleToScale"]["reason"] == "ScaleDownStabilized"
    assert hpa._normalize_with_behavior("k", status, behavior, 6, 20, 1, 10) == 10
    assert {c["type"]: c for c in status["conditions"]}["ScalingLimited"]["reason"] == "TooManyReplicas"
