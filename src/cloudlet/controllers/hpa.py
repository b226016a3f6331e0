"""The HorizontalPodAutoscaler controller (autoscaling/v2; v1 objects are converted by the API).

Every ``sync_period`` (15 s by default, kube-controller-manager's
``--horizontal-pod-autoscaler-sync-period``) each HPA is reconciled:

1. read the target's ``scale`` subresource (any kind serving one: Deployments,
   ReplicaSets, custom resources) — its ``status.selector`` picks the pods;
2. per metric, compute a replica count with Kubernetes' replica calculator:
   resource metrics (``cpu``/``memory``, ``Utilization`` of the pods' requests or
   ``AverageValue``; ``ContainerResource`` for one container) from
   ``metrics.k8s.io``; ratio = usage / target, no change within the tolerance
   (0.1); pods being deleted or Failed are ignored; for cpu, pods not yet Ready
   (or inside their 5 min initialisation period whose sample predates their
   readiness) are left out, and count as 0% when the ratio says scale up;
   pods without a metric count as 100% of their request on a scale down and as
   0% on a scale up; the result is dropped when those assumptions flip the
   direction. The largest count over all metrics wins.
3. normalise: without ``spec.behavior``, the highest recommendation of the last
   ``downscale_stabilization`` (5 min) and a scale-up limit of max(2 x current, 4);
   with ``behavior``, the stabilisation windows of ``scaleUp``/``scaleDown`` and
   their ``Pods``/``Percent`` policies over their periods, chosen by
   ``selectPolicy`` (``Max``, ``Min``, ``Disabled``); then ``minReplicas`` /
   ``maxReplicas``.
4. write the new size through the scale subresource (event ``SuccessfulRescale``,
   ``New size: 4; reason: cpu resource utilization (percentage of request) above target``),
   and the status: ``currentReplicas``, ``desiredReplicas``, ``currentMetrics``,
   ``lastScaleTime`` and the conditions ``AbleToScale``, ``ScalingActive`` and
   ``ScalingLimited`` with kube's reasons and messages.

A target scaled to 0 while ``minReplicas`` > 0 disables autoscaling
(``ScalingActive=False``, ``ScalingDisabled``). Pods, Object and External metrics
need a custom/external metrics API, which cloudlet does not serve: they make
``ScalingActive=False`` with ``FailedGetPodsMetric`` etc., as on a cluster
without an adapter. Recommendations and scale events live in memory, as in
kube-controller-manager.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.events import NORMAL, WARNING, EventRecorder
from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef, ref_for, split_key
from cloudlet.client.reconcile import FactoryController, Result
from cloudlet.controllers.meta import now_rfc3339, parse_time
from cloudlet.resources.quantity import parse_quantity

HPAS = ResourceRef("autoscaling", "v2", "horizontalpodautoscalers")
PODS = ResourceRef("", "v1", "pods")
POD_METRICS = ResourceRef("metrics.k8s.io", "v1beta1", "pods")

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0
INITIAL_READINESS_DELAY = 30.0


class MetricError(Exception):
    """A metric could not be computed: ``reason`` is the ScalingActive reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Sample:
    value: float  # cpu in cores, memory in bytes
    timestamp: float
    window: float


@dataclass
class _ScaleEvent:
    change: int
    at: float


@dataclass
class _State:
    recommendations: list[tuple[float, int]] = field(default_factory=list)  # (time, replicas)
    up: list[_ScaleEvent] = field(default_factory=list)
    down: list[_ScaleEvent] = field(default_factory=list)






def _seconds(window: Any) -> float:
    text = str(window or "0s")
    try:
        if text.endswith("ms"):
            return float(text[:-2]) / 1000
        if text.endswith("s"):
            return float(text[:-1])
    except ValueError:
        pass
    return 0.0


def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c
    return None


def _quantity(value: Any) -> float:
    try:
        return float(parse_quantity(value))
    except (ValueError, ArithmeticError):
        return 0.0


def _milli(value: float) -> str:
    """A quantity in milli-units as metrics and statuses print cpu (``"250m"``)."""
    return f"{round(value * 1000)}m"


def _status_quantity(resource: str, value: float) -> str:
    """cpu in millicores (``"250m"``), anything else as a plain integer, as kube prints them."""
    return _milli(value) if resource == "cpu" else str(int(value))


class HPAController(FactoryController):
    """Reconciles HorizontalPodAutoscalers; ``await run()`` until cancelled."""

    def __init__(
        self,
        client: Client,
        factory: SharedInformerFactory | None = None,
        *,
        sync_period: float = 15.0,
        tolerance: float = TOLERANCE,
        downscale_stabilization: float = 300.0,
        cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
        initial_readiness_delay: float = INITIAL_READINESS_DELAY,
        workers: int = 5,
    ) -> None:
        super().__init__(client, factory, "horizontalpodautoscaler", workers=workers)
        self.sync_period = sync_period
        self.tolerance = tolerance
        self.downscale_stabilization = downscale_stabilization
        self.cpu_initialization_period = cpu_initialization_period
        self.initial_readiness_delay = initial_readiness_delay
        self.hpas = self.factory.informer(HPAS)
        self.pods = self.factory.informer(PODS)
        self.controller.watch(self.hpas)
        self.controller._source(self.pods)
        self.recorder = EventRecorder(client, "horizontal-pod-autoscaler")
        self.state: dict[str, _State] = {}

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        cached = self.hpas.get(key)
        if cached is None:
            self.state.pop(key, None)
            return None
        hpa = copy.deepcopy(cached)
        await self._sync(key, hpa)
        return Result(requeue_after=self.sync_period)

    async def _sync(self, key: str, hpa: Obj) -> None:
        namespace, _ = split_key(key)
        spec, old_status = hpa.get("spec") or {}, copy.deepcopy(hpa.get("status") or {})
        status: Obj = hpa.setdefault("status", {})
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
        ref = spec.get("scaleTargetRef") or {}
        target_ref = ref_for(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
        try:
            scale = await self.client.get(target_ref, str(ref.get("name") or ""), namespace, subresource="scale")
        except APIError as e:
            msg = f"the HPA controller was unable to get the target's current scale: {e.message}"
            self.recorder.emit(hpa, WARNING, "FailedGetScale", msg)
            self._condition(status, "AbleToScale", "False", "FailedGetScale", msg)
            await self._write_status(hpa, old_status)
            return
        self._condition(status, "AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale")
        current = int((scale.get("status") or {}).get("replicas") or 0)
        spec_replicas = int((scale.get("spec") or {}).get("replicas") or 0)
        status["currentReplicas"] = current
        min_replicas = int(spec.get("minReplicas", 1) if spec.get("minReplicas") is not None else 1)
        max_replicas = int(spec.get("maxReplicas") or 0)
        desired = 0
        rescale_reason = ""
        rescale = True
        if spec_replicas == 0 and min_replicas != 0:
            rescale = False
            self._condition(status, "ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
            status.pop("currentMetrics", None)
        elif current > max_replicas:
            rescale_reason, desired = "Current number of replicas above Spec.MaxReplicas", max_replicas
        elif current < min_replicas:
            rescale_reason, desired = "Current number of replicas below Spec.MinReplicas", min_replicas
        else:
            selector = str((scale.get("status") or {}).get("selector") or "")
            try:
                proposal, metric_name, current_metrics = await self._replicas_for_metrics(
                    hpa, namespace, selector, current, spec.get("metrics") or [])
            except MetricError as e:
                self._condition(status, "ScalingActive", "False", e.reason, f"the HPA was unable to compute the replica count: {e}")
                self.recorder.emit(hpa, WARNING, e.reason, str(e))
                await self._write_status(hpa, old_status)
                return
            status["currentMetrics"] = current_metrics
            self._condition(status, "ScalingActive", "True", "ValidMetricFound",
                            f"the HPA was able to successfully calculate a replica count from {metric_name}")
            desired = proposal
            rescale_reason = f"{metric_name} above target"
            behavior = spec.get("behavior")
            if behavior:
                desired = self._normalize_with_behavior(key, status, behavior, current, desired, min_replicas, max_replicas)
            else:
                desired = self._normalize(key, status, current, desired, min_replicas, max_replicas)
            rescale = desired != current
        if rescale:
            try:
                body = copy.deepcopy(scale)
                body.setdefault("spec", {})["replicas"] = desired
                await self.client.update(target_ref, body, "scale")
            except APIError as e:
                self.recorder.emit(hpa, WARNING, "FailedRescale", f"New size: {desired}; reason: {rescale_reason}; error: {e.message}")
                self._condition(status, "AbleToScale", "False", "FailedUpdateScale", f"the HPA controller was unable to update the target scale: {e.message}")
                await self._write_status(hpa, old_status)
                return
            self._condition(status, "AbleToScale", "True", "SucceededRescale", f"the HPA controller was able to update the target scale to {desired}")
            self.recorder.emit(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            self._record_event(key, hpa, current, desired)
            status["lastScaleTime"] = now_rfc3339()
        else:
            desired = current if (spec_replicas == 0 and min_replicas != 0) else desired
        status["desiredReplicas"] = desired
        status["currentReplicas"] = current
        await self._write_status(hpa, old_status)

    # --- metrics -----------------------------------------------------------------------------

    async def _replicas_for_metrics(
        self, hpa: Obj, namespace: str, selector: str, current: int, specs: list[Obj]
    ) -> tuple[int, str, list[Obj]]:
        if not selector:
            raise MetricError("InvalidSelector", "selector is required")
        pods = [p for p in self.pods.list(namespace, label_selector=selector)]
        samples: dict[str, dict[str, dict[str, _Sample]]] = {}  # resource -> pod -> container -> sample
        metrics_list = await self.client.list(POD_METRICS, namespace, label_selector=selector)
        for pm in metrics_list.get("items") or ():
            ts = parse_time(pm.get("timestamp")) or time.time()
            window = _seconds(pm.get("window"))
            for c in pm.get("containers") or ():
                for res, q in (c.get("usage") or {}).items():
                    samples.setdefault(res, {}).setdefault(pm["metadata"]["name"], {})[c.get("name", "")] = _Sample(_quantity(q), ts, window)
        best, best_name = -1, ""
        statuses: list[Obj] = []
        errors: list[MetricError] = []
        for m in specs:
            kind = m.get("type")
            try:
                if kind in ("Resource", "ContainerResource"):
                    src = m.get("resource" if kind == "Resource" else "containerResource") or {}
                    replicas, name, st = self._resource_replicas(kind, src, pods, samples, current)
                else:
                    what = {"Pods": "FailedGetPodsMetric", "Object": "FailedGetObjectMetric",
                            "External": "FailedGetExternalMetric"}.get(str(kind), "InvalidMetricSourceType")
                    raise MetricError(what, f"unable to get metric {kind}: no custom or external metrics API is served")
            except MetricError as e:
                errors.append(e)
                continue
            statuses.append(st)
            if replicas > best:
                best, best_name = replicas, name
        if best < 0:
            raise errors[0] if errors else MetricError("FailedComputeMetricsReplicas", "no metrics")
        return best, best_name, statuses

    def _resource_replicas(
        self, kind: str, src: Obj, pods: list[Obj], samples: dict[str, dict[str, dict[str, _Sample]]], current: int
    ) -> tuple[int, str, Obj]:
        resource = str(src.get("name") or "")
        container = str(src.get("container") or "") if kind == "ContainerResource" else ""
        target = src.get("target") or {}
        per_pod: dict[str, _Sample] = {}
        for pod_name, containers in samples.get(resource, {}).items():
            chosen = [s for n, s in containers.items() if not container or n == container]
            if chosen:
                per_pod[pod_name] = _Sample(sum(s.value for s in chosen), chosen[0].timestamp, chosen[0].window)
        if not per_pod:
            reason = "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
            raise MetricError(reason, f"failed to get {resource} utilization: unable to get metrics for resource {resource}: no metrics returned from resource metrics API")
        name = f"{resource} resource" + (f" of container {container}" if container else "")
        if target.get("type") == "Utilization":
            goal = int(target.get("averageUtilization") or 0)
            replicas, utilization, raw = self._utilization_replicas(resource, container, pods, per_pod, current, goal)
            status = {"type": kind, ("resource" if kind == "Resource" else "containerResource"): {
                "name": resource, **({"container": container} if container else {}),
                "current": {"averageUtilization": utilization, "averageValue": _status_quantity(resource, raw)}}}
            return replicas, f"{name} utilization (percentage of request)", status
        goal_value = _quantity(target.get("averageValue"))
        replicas, usage = self._plain_replicas(resource, pods, per_pod, current, goal_value)
        status = {"type": kind, ("resource" if kind == "Resource" else "containerResource"): {
            "name": resource, **({"container": container} if container else {}),
            "current": {"averageValue": _status_quantity(resource, usage)}}}
        return replicas, name, status

    def _group_pods(self, pods: list[Obj], metrics: dict[str, _Sample], resource: str) -> tuple[int, set[str], set[str], set[str]]:
        """(ready count, unready, missing, ignored) — kube's ``groupPods``."""
        ready, unready, missing, ignored = 0, set(), set(), set()
        now = time.time()
        for pod in pods:
            name = pod["metadata"]["name"]
            phase = (pod.get("status") or {}).get("phase")
            if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
                ignored.add(name)
                continue
            if phase == "Pending":
                unready.add(name)
                continue
            sample = metrics.get(name)
            if sample is None:
                missing.add(name)
                continue
            if resource == "cpu":
                cond = _ready_condition(pod)
                start = parse_time((pod.get("status") or {}).get("startTime"))
                if cond is None or start is None:
                    is_unready = True
                else:
                    transition = parse_time(cond.get("lastTransitionTime")) or start
                    if start + self.cpu_initialization_period > now:
                        is_unready = cond.get("status") == "False" or sample.timestamp < transition + sample.window
                    else:
                        is_unready = cond.get("status") == "False" and start + self.initial_readiness_delay > transition
                if is_unready:
                    unready.add(name)
                    continue
            ready += 1
        return ready, unready, missing, ignored

    @staticmethod
    def _requests(pods: list[Obj], resource: str, container: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for pod in pods:
            total = 0.0
            for c in (pod.get("spec") or {}).get("containers") or ():
                if container and c.get("name") != container:
                    continue
                req = ((c.get("resources") or {}).get("requests") or {}).get(resource)
                if req is None:
                    raise MetricError("FailedGetResourceMetric", f"failed to get {resource} utilization: missing request for {resource} in container {c.get('name')} of Pod {pod['metadata']['name']}")
                total += _quantity(req)
            out[pod["metadata"]["name"]] = total
        return out

    @staticmethod
    def _utilization_ratio(metrics: dict[str, float], requests: dict[str, float], goal: int) -> tuple[float, int, float]:
        used = sum(v for p, v in metrics.items() if p in requests)
        requested = sum(requests[p] for p in metrics if p in requests)
        n = sum(1 for p in metrics if p in requests)
        if requested == 0:
            raise MetricError("FailedGetResourceMetric", "no metrics returned matched known pods")
        utilization = int(used * 100 / requested)
        return (used * 100 / requested) / goal if goal else 0.0, utilization, used / max(1, n)

    def _utilization_replicas(
        self, resource: str, container: str, pods: list[Obj], samples: dict[str, _Sample], current: int, goal: int
    ) -> tuple[int, int, float]:
        if not pods:
            raise MetricError("FailedGetResourceMetric", f"failed to get {resource} utilization: no pods returned by selector while calculating replica count")
        ready, unready, missing, ignored = self._group_pods(pods, samples, resource)
        metrics = {p: s.value for p, s in samples.items() if p not in ignored and p not in unready}
        requests = self._requests(pods, resource, container)
        metrics = {p: v for p, v in metrics.items() if p in requests}
        if not metrics:
            raise MetricError("FailedGetResourceMetric", f"failed to get {resource} utilization: did not receive metrics for targeted pods (pods might be unready)")
        ratio, utilization, raw = self._utilization_ratio(metrics, requests, goal)
        tolerance = self.tolerance
        up_with_unready = bool(unready) and ratio > 1.0
        if not up_with_unready and not missing:
            if abs(1.0 - ratio) <= tolerance:
                return current, utilization, raw
            return math.ceil(ratio * ready), utilization, raw
        if missing:
            if ratio < 1.0:
                fallback = max(100, goal)
                for p in missing:
                    metrics[p] = requests.get(p, 0.0) * fallback / 100
            elif ratio > 1.0:
                for p in missing:
                    metrics[p] = 0.0
        if up_with_unready:
            for p in unready:
                metrics[p] = 0.0
        new_ratio, _, _ = self._utilization_ratio(metrics, requests, goal)
        if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, utilization, raw
        new = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
            return current, utilization, raw
        return new, utilization, raw

    def _plain_replicas(self, resource: str, pods: list[Obj], samples: dict[str, _Sample], current: int, goal: float) -> tuple[int, float]:
        if not pods:
            raise MetricError("FailedGetResourceMetric", f"failed to get {resource} usage: no pods returned by selector while calculating replica count")
        ready, unready, missing, ignored = self._group_pods(pods, samples, resource)
        metrics = {p: s.value for p, s in samples.items() if p not in ignored and p not in unready}
        if not metrics:
            raise MetricError("FailedGetResourceMetric", f"failed to get {resource} usage: did not receive metrics for targeted pods (pods might be unready)")
        usage = sum(metrics.values()) / len(metrics)
        ratio = usage / goal if goal else 0.0
        up_with_unready = bool(unready) and ratio > 1.0
        if not up_with_unready and not missing:
            if abs(1.0 - ratio) <= self.tolerance:
                return current, usage
            return math.ceil(ratio * ready), usage
        if missing:
            for p in missing:
                metrics[p] = goal if ratio < 1.0 else 0.0
        if up_with_unready:
            for p in unready:
                metrics[p] = 0.0
        new_ratio = (sum(metrics.values()) / len(metrics)) / goal if goal else 0.0
        if abs(1.0 - new_ratio) <= self.tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, usage
        new = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
            return current, usage
        return new, usage

    # --- normalisation -------------------------------------------------------------------------

    def _normalize(self, key: str, status: Obj, current: int, desired: int, lo: int, hi: int) -> int:
        """No ``behavior``: downscale stabilisation, then the classic scale-up limit."""
        st = self.state.setdefault(key, _State())
        now = time.time()
        stabilized = desired
        cutoff = now - self.downscale_stabilization
        st.recommendations = [(t, r) for t, r in st.recommendations if t > cutoff]
        for _, r in st.recommendations:
            stabilized = max(stabilized, r)
        st.recommendations.append((now, desired))
        if stabilized != desired:
            self._condition(status, "AbleToScale", "True", "ScaleDownStabilized",
                            "recent recommendations were higher than current one, applying the highest recent recommendation")
        else:
            self._condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        up_limit = max(2 * current, 4)
        if stabilized > up_limit:
            limited, reason, msg = up_limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
        else:
            limited, reason, msg = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
        if limited > hi:
            limited, reason, msg = hi, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
        elif limited < lo:
            limited, reason, msg = lo, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
        self._condition(status, "ScalingLimited", "True" if limited != stabilized else "False", reason, msg)
        return limited

    def _normalize_with_behavior(self, key: str, status: Obj, behavior: Obj, current: int, desired: int, lo: int, hi: int) -> int:
        st = self.state.setdefault(key, _State())
        up, down = behavior.get("scaleUp") or {}, behavior.get("scaleDown") or {}
        up_window = float(up.get("stabilizationWindowSeconds") or 0)
        down_window = float(down["stabilizationWindowSeconds"]) if down.get("stabilizationWindowSeconds") is not None else self.downscale_stabilization
        now = time.time()
        if desired >= current:
            window, better = up_window, min
            reason, msg = "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
        else:
            window, better = down_window, max
            reason, msg = "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
        oldest = now - max(up_window, down_window)
        stabilized = desired
        for t, r in st.recommendations:
            if t > now - window:
                stabilized = better(stabilized, r)
        st.recommendations = [(t, r) for t, r in st.recommendations if t >= oldest]
        st.recommendations.append((now, desired))
        if stabilized != desired:
            self._condition(status, "AbleToScale", "True", reason, msg)
        else:
            self._condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        limited, lreason, lmsg = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
        if stabilized > current:
            limit = max(current, self._up_limit(current, st, up, now))
            if hi > limit:
                allowed, why, text = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
            else:
                allowed, why, text = hi, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
            if stabilized > allowed:
                limited, lreason, lmsg = allowed, why, text
        elif stabilized < current:
            limit = min(current, self._down_limit(current, st, down, now))
            if lo < limit:
                allowed, why, text = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
            else:
                allowed, why, text = lo, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
            if stabilized < allowed:
                limited, lreason, lmsg = allowed, why, text
        self._condition(status, "ScalingLimited", "True" if limited != stabilized else "False", lreason, lmsg)
        return limited

    @staticmethod
    def _changed(events: list[_ScaleEvent], period: float, now: float) -> int:
        return sum(e.change for e in events if e.at > now - period)

    def _rate_limit(self, current: int, st: _State, rules: Obj, now: float, *, up: bool) -> int:
        """The replica count ``rules``' policies allow from ``current`` in one direction
        (kube's calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors):
        each policy counts from the replicas at the start of its period; ``selectPolicy``
        Max takes the policy allowing the largest change, Min the smallest."""
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            return current
        results = []
        for p in rules.get("policies") or ():
            period = float(p.get("periodSeconds") or 0)
            start = current - self._changed(st.up, period, now) + self._changed(st.down, period, now)
            value = int(p.get("value") or 0)
            if p.get("type") == "Pods":
                results.append(start + value if up else start - value)
            else:
                results.append(math.ceil(start * (1 + value / 100)) if up else int(start * (1 - value / 100)))
        if not results:
            return current
        largest_change = max if up else min
        return largest_change(results) if select == "Max" else (min if up else max)(results)

    def _up_limit(self, current: int, st: _State, rules: Obj, now: float) -> int:
        return self._rate_limit(current, st, rules, now, up=True)

    def _down_limit(self, current: int, st: _State, rules: Obj, now: float) -> int:
        return self._rate_limit(current, st, rules, now, up=False)

    def _record_event(self, key: str, hpa: Obj, current: int, desired: int) -> None:
        st = self.state.setdefault(key, _State())
        behavior = (hpa.get("spec") or {}).get("behavior") or {}
        now = time.time()
        longest = max([float(p.get("periodSeconds") or 0) for r in ("scaleUp", "scaleDown")
                       for p in (behavior.get(r) or {}).get("policies") or ()] or [0.0])
        if desired > current:
            st.up.append(_ScaleEvent(desired - current, now))
        else:
            st.down.append(_ScaleEvent(current - desired, now))
        st.up = [e for e in st.up if e.at > now - longest]
        st.down = [e for e in st.down if e.at > now - longest]

    # --- status ----------------------------------------------------------------------------

    @staticmethod
    def _condition(status: Obj, type_: str, value: str, reason: str, message: str) -> None:
        conds = status.setdefault("conditions", [])
        for c in conds:
            if c.get("type") == type_:
                if c.get("status") != value:
                    c["lastTransitionTime"] = now_rfc3339()
                c.update(status=value, reason=reason, message=message)
                return
        conds.append({"type": type_, "status": value, "lastTransitionTime": now_rfc3339(), "reason": reason, "message": message})

    async def _write_status(self, hpa: Obj, old_status: Obj) -> None:
        status = hpa["status"]
        status["observedGeneration"] = hpa["metadata"].get("generation", 1)
        if status == old_status:
            return
        try:
            await self.client.update(HPAS, hpa, "status")
        except APIError as e:
            if e.code not in (404, 409):
                raise
