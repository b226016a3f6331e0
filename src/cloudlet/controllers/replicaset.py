"""The ReplicaSet controller: keep ``spec.replicas`` pods from ``spec.template``.

Kubernetes semantics (``pkg/controller/replicaset``):

* **Claiming.** A pod belongs to a ReplicaSet when its controller
  ownerReference names the ReplicaSet's uid. Orphans (no controller
  reference) whose labels match ``spec.selector`` are *adopted* (a controller
  reference with ``blockOwnerDeletion`` is patched on, after a live re-read
  confirms the ReplicaSet still exists and is not being deleted); owned pods
  whose labels stopped matching are *released* (the reference is removed).
  Terminal (``Succeeded``/``Failed``) and terminating pods do not count.
* **Managing replicas.** Too few pods: create the difference (at most
  ``burst`` per sync) from the template with ``generateName: <rs>-``, in
  slow-start batches of 1, 2, 4, … that stop at the first error; the error
  becomes a ``ReplicaFailure`` condition (reason ``FailedCreate``) and a
  ``FailedCreate`` event. Too many: delete the difference, preferring (as
  ``controller.ActivePodsWithRanks``) unscheduled over scheduled, Pending
  over Unknown over Running, not-ready over ready, lower
  ``controller.kubernetes.io/pod-deletion-cost``, pods doubled up on a node,
  shorter-ready, more restarts, newer.
* **Expectations.** After creating or deleting, a ReplicaSet is not managed
  again until the informer has seen those pods appear/disappear (or
  ``expectation_timeout`` passes), so a lagging cache never causes double
  creation — status is still written meanwhile.
* **Status.** ``replicas`` (active pods), ``fullyLabeledReplicas`` (pods
  carrying every template label), ``readyReplicas`` (Ready=True),
  ``availableReplicas`` (ready for at least ``minReadySeconds``, re-checked
  with ``Result(requeue_after=…)``), ``observedGeneration`` and the
  ``ReplicaFailure`` condition. Written through ``/status`` only when changed.

Pods are not run here: they stay ``Pending`` until a node (hollow or real)
reports them Running/Ready.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.events import NORMAL, WARNING, EventRecorder
from cloudlet.client.informer import Informer, SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef, split_key
from cloudlet.client.reconcile import FactoryController, Result, Retry, selector_of
from cloudlet.controllers.meta import controller_ref, now_rfc3339, parse_time, set_owner_references

log = logging.getLogger("cloudlet.controllers.replicaset")

PODS = ResourceRef("", "v1", "pods")
REPLICASETS = ResourceRef("apps", "v1", "replicasets")
BURST_REPLICAS = 500  # Kubernetes' --replicaset-burst default
SLOW_START_INITIAL_BATCH = 1
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


# --- small helpers shared with the deployment controller -------------------------------------








def owner_reference(owner: Obj, api_version: str, kind: str) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def labels_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def pod_is_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c
    return None


def pod_is_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def pod_available_in(pod: Obj, min_ready: int, now: float) -> float | None:
    """0 when ``pod`` is available now, seconds until it will be when ready but
    not for long enough yet, ``None`` when not ready."""
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    if min_ready <= 0:
        return 0.0
    since = parse_time(c.get("lastTransitionTime"))
    if since is None:
        return 0.0
    return max(0.0, since + min_ready - now)


def api_conflict(e: APIError) -> bool:
    return e.code in (404, 409)


# --- expectations --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Expectation:
    creates: set[str] = field(default_factory=set)  # pod names created, not yet seen
    deletes: dict[str, str] = field(default_factory=dict)  # name -> uid of pods deleted, still seen
    at: float = field(default_factory=time.monotonic)


class Expectations:
    """Per-ReplicaSet pods the cache has yet to reflect (client-go's ControllerExpectations).

    Checked against the pod informer's cache by name, so it costs one lookup
    per outstanding pod; gives up after ``timeout`` seconds (a lost event must
    not wedge a ReplicaSet forever)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._by_key: dict[str, _Expectation] = {}

    def expect(self, key: str, creates: set[str], deletes: dict[str, str]) -> None:
        if creates or deletes:
            self._by_key[key] = _Expectation(set(creates), dict(deletes))

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    def satisfied(self, key: str, pods: Informer, namespace: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        exp.creates = {n for n in exp.creates if pods.get(f"{namespace}/{n}") is None}
        still: dict[str, str] = {}
        for name, uid in exp.deletes.items():
            pod = pods.get(f"{namespace}/{name}")
            if pod is not None and pod["metadata"].get("uid") == uid and not pod["metadata"].get("deletionTimestamp"):
                still[name] = uid
        exp.deletes = still
        if (not exp.creates and not exp.deletes) or time.monotonic() - exp.at > self.timeout:
            del self._by_key[key]
            return True
        return False


# --- deletion ranking ---------------------------------------------------------------------------


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _restarts(pod: Obj) -> int:
    return max((int(s.get("restartCount") or 0) for s in (pod.get("status") or {}).get("containerStatuses") or ()), default=0)


def deletion_order(pods: list[Obj], related: list[Obj]) -> list[Obj]:
    """``pods`` sorted most-deletable first (``controller.ActivePodsWithRanks``);
    the rank of a pod is how many ``related`` active pods share its node."""
    per_node: dict[str, int] = {}
    for p in related:
        node = (p.get("spec") or {}).get("nodeName")
        if node:
            per_node[node] = per_node.get(node, 0) + 1

    def key(pod: Obj) -> tuple[Any, ...]:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        ready = pod_is_ready(pod)
        ready_since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime")) or 0.0 if ready else 0.0
        created = parse_time(pod["metadata"].get("creationTimestamp")) or 0.0
        return (
            1 if node else 0,                                    # unassigned first
            _PHASE_RANK.get((pod.get("status") or {}).get("phase") or "Pending", 0),
            1 if ready else 0,                                   # not ready first
            _deletion_cost(pod),                                 # lower cost first
            -per_node.get(node, 0) if node else 0,               # doubled-up first
            -ready_since,                                        # ready for less time first
            -_restarts(pod),                                     # more restarts first
            -created,                                            # newer first
            pod["metadata"].get("name", ""),
        )

    return sorted(pods, key=key)


def pod_from_template(owner: Obj, template: Obj, ref: Obj) -> Obj:
    """The pod a controller creates from ``template`` (``controller.GetPodFromTemplate``)."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{owner['metadata']['name']}-", "namespace": owner["metadata"].get("namespace", ""),
                 "labels": dict(tmeta.get("labels") or {}), "ownerReferences": [ref]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def set_condition(conditions: list[Obj], cond: Obj) -> list[Obj]:
    """Replace the condition of ``cond['type']`` (keeping lastTransitionTime when the status is unchanged)."""
    out = []
    for c in conditions:
        if c.get("type") == cond["type"]:
            if c.get("status") == cond["status"] and c.get("reason") == cond.get("reason") and c.get("message") == cond.get("message"):
                return conditions
            if c.get("status") == cond["status"] and c.get("lastTransitionTime"):
                cond = {**cond, "lastTransitionTime": c["lastTransitionTime"]}
            continue
        out.append(c)
    out.append(cond)
    return out


# --- the controller ---------------------------------------------------------------------------------


class ReplicaSetController(FactoryController):
    """Reconciles ReplicaSets (see the module docstring); ``await run()`` until cancelled."""

    api_version = "apps/v1"
    kind = "ReplicaSet"

    def __init__(
        self,
        client: Client,
        factory: SharedInformerFactory | None = None,
        *,
        workers: int = 5,
        burst: int = BURST_REPLICAS,
        expectation_timeout: float = 30.0,
    ) -> None:
        super().__init__(client, factory, "replicaset", workers=workers)
        self.replicasets = self.factory.informer(REPLICASETS)
        self.pods = self.factory.informer(PODS)
        self.burst = burst
        self.expectations = Expectations(expectation_timeout)
        self.recorder = EventRecorder(client, "replicaset-controller")
        self.controller.watch(self.replicasets)
        # a pod wakes its owner, or (orphan) every ReplicaSet that could adopt it
        self.controller.watch_owned(self.pods, self.kind, "apps", adopters=self.replicasets)

    # --- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        rs = self.replicasets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        needs_sync = self.expectations.satisfied(key, self.pods, namespace)
        pods = await self._claim(rs, namespace)
        active = [p for p in pods if pod_is_active(p)]
        manage_error: str | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            manage_error = await self._manage(rs, key, active)
        result = await self._update_status(rs, active, manage_error)
        if manage_error is not None:
            raise Retry(f"creating pods: {manage_error}")
        return result

    async def _claim(self, rs: Obj, namespace: str) -> list[Obj]:
        """Pods this ReplicaSet controls after adopting orphans and releasing strays."""
        uid = rs["metadata"]["uid"]
        sel = selector_of(rs)
        deleting = bool(rs["metadata"].get("deletionTimestamp"))
        claimed: list[Obj] = []
        fresh_checked = False
        for pod in self.pods.list(namespace):
            ref = controller_ref(pod)
            matches = sel is not None and not sel.empty and sel.matches(labels_of(pod))
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    claimed.append(pod)
                elif not deleting:
                    await set_owner_references(self.client, PODS, pod, [r for r in pod["metadata"].get("ownerReferences") or () if r.get("uid") != uid])
                continue
            if not matches or deleting or pod["metadata"].get("deletionTimestamp"):
                continue
            if not fresh_checked:  # RecheckDeletionTimestamp: adopt only for a live, undeleted owner
                try:
                    live = await self.client.get(REPLICASETS, rs["metadata"]["name"], namespace)
                except APIError as e:
                    if e.code == 404:
                        return claimed
                    raise
                if live["metadata"].get("uid") != uid or live["metadata"].get("deletionTimestamp"):
                    return claimed
                fresh_checked = True
            refs = [*(pod["metadata"].get("ownerReferences") or ()), owner_reference(rs, self.api_version, self.kind)]
            adopted = await set_owner_references(self.client, PODS, pod, refs)
            if adopted is not None:
                claimed.append(adopted)
        return claimed


    async def _manage(self, rs: Obj, key: str, active: list[Obj]) -> str | None:
        want = int((rs.get("spec") or {}).get("replicas") or 0)
        diff = len(active) - want
        if diff < 0:
            return await self._create(rs, key, min(-diff, self.burst))
        if diff > 0:
            victims = deletion_order(active, active)[: min(diff, self.burst)]
            self.expectations.expect(key, set(), {p["metadata"]["name"]: p["metadata"]["uid"] for p in victims})
            results = await asyncio.gather(*(self._delete(rs, p) for p in victims))
            errors = [r for r in results if r]
            if errors:
                raise Retry(errors[0])
        return None

    async def _create(self, rs: Obj, key: str, count: int) -> str | None:
        template = (rs.get("spec") or {}).get("template") or {}
        ref = owner_reference(rs, self.api_version, self.kind)
        created: set[str] = set()
        error: str | None = None
        batch = SLOW_START_INITIAL_BATCH
        remaining = count
        while remaining > 0 and error is None:
            size = min(batch, remaining)
            results = await asyncio.gather(
                *(self.client.create(PODS, pod_from_template(rs, template, ref)) for _ in range(size)),
                return_exceptions=True,
            )
            for r in results:
                if isinstance(r, BaseException):
                    if not isinstance(r, APIError):
                        raise r
                    if error is None:
                        error = r.message
                        self.recorder.emit(rs, WARNING, "FailedCreate", f"Error creating: {r.message}")
                else:
                    created.add(r["metadata"]["name"])
                    self.recorder.emit(rs, NORMAL, "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            remaining -= size
            batch *= 2
        self.expectations.expect(key, created, {})
        return error

    async def _delete(self, rs: Obj, pod: Obj) -> str | None:
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["name"], meta.get("namespace", ""), preconditions={"uid": meta["uid"]})
        except APIError as e:
            if e.code == 404:
                return None
            self.recorder.emit(rs, WARNING, "FailedDelete", f"Error deleting: {e.message}")
            return e.message
        self.recorder.emit(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")
        return None

    async def _update_status(self, rs: Obj, active: list[Obj], manage_error: str | None) -> Result | None:
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        now = time.time()
        ready = available = fully = 0
        wait: float | None = None
        for p in active:
            labels = labels_of(p)
            if all(labels.get(k) == v for k, v in tlabels.items()):
                fully += 1
            left = pod_available_in(p, min_ready, now)
            if left is None:
                continue
            ready += 1
            if left <= 0:
                available += 1
            else:
                wait = left if wait is None else min(wait, left)
        old = rs.get("status") or {}
        conditions = [c for c in old.get("conditions") or () if isinstance(c, dict)]
        if manage_error is not None:
            conditions = set_condition(conditions, {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": now_rfc3339(),
                                                    "reason": "FailedCreate", "message": manage_error})
        elif len(active) >= int(spec.get("replicas") or 0):
            conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
        status: Obj = {"replicas": len(active), "fullyLabeledReplicas": fully, "readyReplicas": ready,
                       "availableReplicas": available, "observedGeneration": rs["metadata"].get("generation", 1)}
        if conditions:
            status["conditions"] = conditions
        current = {k: old[k] for k in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
                                        "observedGeneration", "conditions") if k in old}
        if {k: v for k, v in status.items() if v != 0 or k == "replicas"} != {k: v for k, v in current.items() if v != 0 or k == "replicas"}:
            body = copy.deepcopy(rs)
            body["status"] = status
            try:
                await self.client.update(REPLICASETS, body, "status")
            except APIError as e:
                if api_conflict(e):
                    raise Retry("replicaset changed while writing status") from e
                raise
        if wait is not None:
            return Result(requeue_after=wait + 0.05)
        return None
