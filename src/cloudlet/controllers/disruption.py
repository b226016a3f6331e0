"""The disruption controller: keep every PodDisruptionBudget's status current.

kube-controller-manager's ``disruption`` controller, keyed by
``namespace/name`` of a policy/v1 PodDisruptionBudget:

* **Pods.** The budget's pods are the pods of its namespace its
  ``spec.selector`` picks (``null``: none, ``{}``: all) — any phase, so
  ``expectedPods`` for an integer ``minAvailable`` counts them all.
* **Expected count and desired health.** ``maxUnavailable`` (count or
  percent) and a percentage ``minAvailable`` need the scale of the pods'
  controllers: each pod's controller ownerReference is resolved — a
  ReplicaSet owned by a Deployment counts as that Deployment (its
  ``spec.replicas``), a ReplicaSet as itself, any other owner through its
  ``scale`` subresource (uid must match) — and the distinct controllers'
  replicas are summed. Pods without a controller are left out (a
  ``UnmanagedPods`` warning event); a controller that cannot be found fails
  the sync. ``desiredHealthy`` is ``minAvailable`` (a percentage of the
  expected count rounded *up*) or ``expected - maxUnavailable`` (the
  percentage rounded up as well), never below 0; an integer
  ``minAvailable`` takes ``expectedPods`` = the number of selected pods.
* **Health.** ``currentHealthy`` counts Ready pods that are not terminating
  and not in ``status.disruptedPods`` — pods the eviction subresource let go
  within the last 2 minutes (``DeletionTimeout``). Entries for pods that went
  away or started terminating are dropped; entries older than the timeout
  are dropped with a ``NotDeleted`` warning on the pod; the budget is
  re-checked when the oldest live entry expires.
* **Status.** ``disruptionsAllowed = currentHealthy - desiredHealthy`` (0 when
  negative or when ``expectedPods`` is 0), ``observedGeneration``, and the
  ``DisruptionAllowed`` condition (``True``/``SufficientPods`` or
  ``False``/``InsufficientPods``) — written through ``/status`` only when
  something changed. A sync that fails for any reason but a write conflict
  sets ``disruptionsAllowed: 0`` and ``DisruptionAllowed=False`` with reason
  ``SyncFailed`` and the error as message (fail safe: no eviction is
  approved on stale numbers).

**Stale disruption targets.** A pod marked ``DisruptionTarget=True`` (by an
eviction or a preemption) that is still not terminating 2 minutes after the
condition was set was not disrupted after all: a second work queue, keyed by
pod, sets the condition back to ``False`` (through ``/status``) so the pod's
state does not lie.

Events: a pod change wakes every budget that selects the pod (before or
after the change); a change of a budget wakes it; a change of a ReplicaSet's
or Deployment's ``spec.replicas`` wakes the budgets of its namespace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.events import NORMAL, WARNING, EventRecorder
from cloudlet.client.informer import Informer, SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef, object_key, ref_for
from cloudlet.client.reconcile import Controller, FactoryController, Result, Retry
from cloudlet.controllers.meta import controller_ref, parse_time
from cloudlet.resources.policy import (
    DISRUPTION_ALLOWED,
    SYNC_FAILED,
    conditions_up_to_date,
    pdb_selects,
    scaled_value,
    set_condition,
    set_disruption_allowed_condition,
)

log = logging.getLogger("cloudlet.controllers.disruption")

PODS = ResourceRef("", "v1", "pods")
PDBS = ResourceRef("policy", "v1", "poddisruptionbudgets")
REPLICASETS = ResourceRef("apps", "v1", "replicasets")
DEPLOYMENTS = ResourceRef("apps", "v1", "deployments")
DELETION_TIMEOUT = 120.0  # seconds an approved eviction may take before the pod counts again
STALE_POD_DISRUPTION_TIMEOUT = 120.0  # seconds a DisruptionTarget pod may take to start terminating
DISRUPTION_TARGET = "DisruptionTarget"


class SyncError(Exception):
    """A budget whose numbers cannot be computed (reported through ``SyncFailed``)."""






def _is_ready(pod: Obj) -> bool:
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def _disruption_target(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == DISRUPTION_TARGET and c.get("status") == "True":
            return c
    return None


def _group(api_version: Any) -> str:
    return str(api_version or "").rpartition("/")[0]


class DisruptionController(FactoryController):
    """Reconciles PodDisruptionBudget status (see the module docstring); ``await run()`` until cancelled.

    ``clock`` (wall seconds) is injectable for tests of the disrupted-pod timeout.
    """

    def __init__(
        self,
        client: Client,
        factory: SharedInformerFactory | None = None,
        *,
        workers: int = 2,
        deletion_timeout: float = DELETION_TIMEOUT,
        stale_pod_timeout: float = STALE_POD_DISRUPTION_TIMEOUT,
        clock: Any = time.time,
    ) -> None:
        super().__init__(client, factory, "disruption", workers=workers)
        self.deletion_timeout = deletion_timeout
        self.stale_pod_timeout = stale_pod_timeout
        self.clock = clock
        self.stale_pods: Controller[str] = Controller("disruption-stale-pods", self.reconcile_stale_pod)
        self.pdbs: Informer = self.factory.informer(PDBS, "")
        self.pods: Informer = self.factory.informer(PODS, "")
        self.replicasets: Informer = self.factory.informer(REPLICASETS, "")
        self.deployments: Informer = self.factory.informer(DEPLOYMENTS, "")
        self.recorder = EventRecorder(client, "controllermanager")
        self.controller.watch(self.pdbs)
        self.controller.sources.extend([self.pods, self.replicasets, self.deployments])  # synced before work starts
        self.pods.add_handler(self._pod_event, self._pod_event, self._pod_event)
        self.stale_pods.watch(self.pods, predicate=lambda p: _disruption_target(p) is not None)
        for inf in (self.replicasets, self.deployments):
            inf.add_handler(None, self._scale_changed, None)

    async def run(self) -> None:
        if self._own_factory:
            self.factory.start()
        try:
            await asyncio.gather(self.controller.run(), self.stale_pods.run())
        finally:
            if self._own_factory:
                await self.factory.shutdown()

    # --- event handlers (enqueue only) -----------------------------------------------

    def _pod_event(self, *pods: Obj) -> None:
        seen: set[str] = set()
        for pod in pods:
            meta = pod.get("metadata") or {}
            for pdb in self.pdbs.list(meta.get("namespace") or ""):
                key = object_key(pdb)
                if key not in seen and pdb_selects(pdb, meta.get("labels") or {}):
                    seen.add(key)
                    self.controller.enqueue(key)

    def _scale_changed(self, old: Obj, new: Obj) -> None:
        if (old.get("spec") or {}).get("replicas") != (new.get("spec") or {}).get("replicas"):
            for pdb in self.pdbs.list((new.get("metadata") or {}).get("namespace") or ""):
                self.controller.enqueue(object_key(pdb))

    # --- reconcile -----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return None
        try:
            return await self._try_sync(pdb)
        except APIError as e:
            if e.code in (404, 409):
                raise Retry(f"poddisruptionbudget {key} changed while syncing") from e
            await self._fail_safe(pdb, e.message)
            return None
        except SyncError as e:
            await self._fail_safe(pdb, str(e))
            return None

    async def _try_sync(self, pdb: Obj) -> Result | None:
        meta = pdb["metadata"]
        namespace = meta.get("namespace") or ""
        pods = [p for p in self.pods.list(namespace) if pdb_selects(pdb, (p.get("metadata") or {}).get("labels") or {})]
        if not pods:
            self.recorder.emit(pdb, NORMAL, "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = await self._expected_count(pdb, pods)
        except SyncError as e:
            self.recorder.emit(pdb, WARNING, "CalculateExpectedPodCountFailed",
                               f"Failed to calculate the number of expected pods: {e}")
            raise
        if unmanaged:
            self.recorder.emit(pdb, WARNING, "UnmanagedPods",
                               "Pods selected by this PodDisruptionBudget were found to be unmanaged (no controller): "
                               f"{', '.join(sorted(unmanaged))}. Their budget cannot be computed from a scale; "
                               "set .spec.minAvailable to an integer to count them.")
        now = self.clock()
        disrupted, recheck = self._disrupted_pods(pdb, pods, now)
        healthy = self._count_healthy(pods, disrupted, now)
        await self._update_status(pdb, healthy, desired, expected, disrupted)
        if recheck is not None:
            return Result(requeue_after=max(0.05, recheck - now))
        return None

    async def _expected_count(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        """``(expectedPods, desiredHealthy, unmanaged pod names)`` (getExpectedPodCount)."""
        spec = pdb.get("spec") or {}
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        try:
            if max_unavailable is not None:
                expected, unmanaged = await self._expected_scale(pods)
                return expected, max(0, expected - scaled_value(max_unavailable, expected, True)), unmanaged
            if min_available is not None:
                if isinstance(min_available, int):
                    return len(pods), int(min_available), []
                expected, unmanaged = await self._expected_scale(pods)
                return expected, scaled_value(min_available, expected, True), unmanaged
        except ValueError as e:
            raise SyncError(str(e)) from e
        return 0, 0, []

    async def _expected_scale(self, pods: list[Obj]) -> tuple[int, list[str]]:
        """The summed replicas of the pods' distinct controllers (getExpectedScale)."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            meta = pod.get("metadata") or {}
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(str(meta.get("name") or ""))
                continue
            if ref.get("uid") in scales:
                continue
            found = await self._find_controller(ref, meta.get("namespace") or "")
            if found is None:
                raise SyncError(f'found no controllers for pod "{meta.get("name")}"')
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    async def _find_controller(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """``(uid, replicas)`` of the controller ``ref`` names, or None (the finders in turn)."""
        kind, group, name, uid = ref.get("kind"), _group(ref.get("apiVersion")), ref.get("name") or "", ref.get("uid")
        if kind == "ReplicaSet" and group == "apps":
            rs = self.replicasets.get(f"{namespace}/{name}")
            if rs is None or rs["metadata"].get("uid") != uid:
                return None
            owner = controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment" and _group(owner.get("apiVersion")) == "apps":
                dep = self.deployments.get(f"{namespace}/{owner.get('name')}")
                if dep is None or dep["metadata"].get("uid") != owner.get("uid"):
                    return None
                return dep["metadata"]["uid"], int((dep.get("spec") or {}).get("replicas") or 0)
            return rs["metadata"]["uid"], int((rs.get("spec") or {}).get("replicas") or 0)
        # any other controller: through its scale subresource
        target = ref_for(str(ref.get("apiVersion") or ""), str(kind or ""))
        try:
            scale = await self.client.get(target, name, namespace, subresource="scale")
        except APIError as e:
            if e.code == 404:
                if not await self._implements_scale(target, name, namespace):
                    raise SyncError(f"{target.plural}.{target.group} does not implement the scale subresource") from e
                return None
            raise SyncError(e.message) from e
        if (scale.get("metadata") or {}).get("uid") != uid:
            return None
        return str(uid), int((scale.get("spec") or {}).get("replicas") or 0)

    async def _implements_scale(self, target: ResourceRef, name: str, namespace: str) -> bool:
        """After a 404 on ``scale``: does the object itself exist (then the kind has no scale)?"""
        try:
            await self.client.get(target, name, namespace)
        except APIError:
            return True  # the controller is gone (or the kind unknown): simply not found
        return False

    def _disrupted_pods(self, pdb: Obj, pods: list[Obj], now: float) -> tuple[dict[str, str], float | None]:
        """The still-pending entries of ``status.disruptedPods`` and when the oldest expires."""
        recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
        result: dict[str, str] = {}
        recheck: float | None = None
        if not recorded:
            return result, None
        for pod in pods:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            stamp = recorded.get(meta.get("name"))
            if stamp is None:
                continue
            expires = (parse_time(stamp) or 0.0) + self.deletion_timeout
            if expires < now:
                self.recorder.emit(pod, WARNING, "NotDeleted",
                                   f"Pod was expected by PDB {pdb['metadata'].get('namespace')}/{pdb['metadata']['name']} "
                                   "to be deleted but it wasn't")
                continue
            recheck = expires if recheck is None else min(recheck, expires)
            result[meta["name"]] = stamp
        return result, recheck

    def _count_healthy(self, pods: list[Obj], disrupted: dict[str, str], now: float) -> int:
        healthy = 0
        for pod in pods:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            stamp = disrupted.get(meta.get("name"))
            if stamp is not None and (parse_time(stamp) or 0.0) + self.deletion_timeout > now:
                continue
            if _is_ready(pod):
                healthy += 1
        return healthy

    async def _update_status(self, pdb: Obj, healthy: int, desired: int, expected: int, disrupted: dict[str, str]) -> None:
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        generation = int(pdb["metadata"].get("generation") or 0)
        old = pdb.get("status") or {}
        if (int(old.get("currentHealthy") or 0) == healthy and int(old.get("desiredHealthy") or 0) == desired
                and int(old.get("expectedPods") or 0) == expected and int(old.get("disruptionsAllowed") or 0) == allowed
                and (old.get("disruptedPods") or {}) == disrupted
                and int(old.get("observedGeneration") or 0) == generation and conditions_up_to_date(pdb)):
            return
        status: Obj = {"observedGeneration": generation, "disruptionsAllowed": allowed, "currentHealthy": healthy,
                       "desiredHealthy": desired, "expectedPods": expected,
                       "conditions": [dict(c) for c in old.get("conditions") or () if isinstance(c, dict)]}
        if disrupted:
            status["disruptedPods"] = dict(disrupted)
        set_disruption_allowed_condition(status)
        await self._write_status(pdb, status)

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        """Sync failed: allow no disruption and say why (``SyncFailed``)."""
        log.info("poddisruptionbudget sync failed", extra={"pdb": object_key(pdb), "error": message})
        old = pdb.get("status") or {}
        status = {**old, "disruptionsAllowed": 0,
                  "conditions": [dict(c) for c in old.get("conditions") or () if isinstance(c, dict)]}
        set_condition(status, {"type": DISRUPTION_ALLOWED, "status": "False", "reason": SYNC_FAILED,
                               "message": message, "observedGeneration": int(old.get("observedGeneration") or 0)})
        if status != old:
            try:
                await self._write_status(pdb, status)
            except APIError as e:
                if e.code in (404, 409):
                    raise Retry("poddisruptionbudget changed while reporting a failed sync") from e
                raise

    async def reconcile_stale_pod(self, key: str) -> Result | None:
        """Set a stale ``DisruptionTarget=True`` back to False (syncStalePodDisruption)."""
        pod = self.pods.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        cond = _disruption_target(pod)
        if cond is None:
            return None
        now = self.clock()
        due = (parse_time(cond.get("lastTransitionTime")) or now) + self.stale_pod_timeout
        if due > now:
            return Result(requeue_after=due - now)
        body = {**pod, "metadata": dict(pod["metadata"]), "status": dict(pod.get("status") or {})}
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body["status"]["conditions"] = [
            {"type": DISRUPTION_TARGET, "status": "False", "lastProbeTime": None, "lastTransitionTime": stamp}
            if isinstance(c, dict) and c.get("type") == DISRUPTION_TARGET else c
            for c in body["status"].get("conditions") or ()
        ]
        try:
            await self.client.update(PODS, body, "status")
        except APIError as e:
            if e.code in (404, 409):
                raise Retry(f"pod {key} changed while clearing its DisruptionTarget condition") from e
            raise
        return None

    async def _write_status(self, pdb: Obj, status: Obj) -> None:
        body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": dict(pdb["metadata"]), "spec": pdb.get("spec") or {}, "status": status}
        await self.client.update(PDBS, body, "status")
