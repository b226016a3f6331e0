"""The namespace controller: empties a terminating namespace, then finalizes it.

A namespace being deleted carries ``metadata.deletionTimestamp`` and phase
``Terminating`` (ObjectAPI sets both) and keeps ``kubernetes`` in
``spec.finalizers`` until this controller is done. For each such namespace
the controller, like Kubernetes' ``pkg/controller/namespace``:

1. deletes every namespaced kind in the registry that supports ``delete``
   (``deletecollection`` where supported, else list and delete one by one),
   with ``propagationPolicy: Background``;
2. lists each kind again; what remains is reported in the namespace's status
   conditions (``NamespaceContentRemaining`` "Some resources are remaining:
   pods. has 2 resource instances", ``NamespaceFinalizersRemaining``,
   ``NamespaceDeletionContentFailure`` …, ``False`` with the "ok" reasons when
   all is well) and the namespace is reconciled again later: after half the
   longest pod termination grace period plus one second, or after
   ``finalizer_estimate`` (Kubernetes uses 15 s; here, on one machine, 2 s)
   when only objects with finalizers remain;
3. once nothing remains, removes ``kubernetes`` from ``spec.finalizers``
   through the ``finalize`` subresource; ObjectAPI then deletes the namespace
   (unless other finalizers remain — their owners finish the job).

Errors (a kind that cannot be deleted, unexpected leftovers) are retried with
backoff. Reconciles are keyed by namespace name and level-triggered: the
controller re-reads the namespace and the content every time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.informer import Informer
from cloudlet.client.interface import Client, Obj, ResourceRef
from cloudlet.client.reconcile import Controller, Result, Retry
from cloudlet.resources.registry import Registry, ResourceType

log = logging.getLogger("cloudlet.controllers.namespace")

NAMESPACES = ResourceRef("", "v1", "namespaces")
FINALIZER = "kubernetes"

CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
_OK: dict[str, tuple[str, str]] = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(ts: str) -> datetime | None:
    try:
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


@dataclass
class _Remaining:
    """What one kind left behind after a deletion pass."""

    estimate: float = 0.0
    count: int = 0
    finalizers: Counter[str] = field(default_factory=Counter)


def deletable_namespaced(registry: Registry) -> list[ResourceType]:
    """One served version per namespaced resource that supports list and delete."""
    chosen: dict[str, ResourceType] = {}
    for rt in registry.all():
        if not rt.namespaced or "delete" not in rt.verbs or "list" not in rt.verbs:
            continue
        cur = chosen.get(rt.storage_key)
        if cur is None or (rt.preferred and not cur.preferred):
            chosen[rt.storage_key] = rt
    return sorted(chosen.values(), key=lambda rt: (rt.group, rt.plural))


class NamespaceController:
    """Runs the namespace lifecycle loop over ``client`` (see module docstring)."""

    def __init__(
        self,
        client: Client,
        registry: Registry,
        *,
        workers: int = 2,
        finalizer_estimate: float = 2.0,
        deletion_delay: float = 0.0,
    ) -> None:
        self.client = client
        self.registry = registry
        self.finalizer_estimate = finalizer_estimate
        # Kubernetes waits 5 s for HA API servers to observe the deletion; one store needs no wait
        self.deletion_delay = deletion_delay
        self.informer = Informer(client, NAMESPACES)
        self.controller: Controller[str] = Controller("namespace", self.reconcile, workers=workers)
        self.informer.add_handler(self._enqueue, lambda _old, new: self._enqueue(new))

    def _enqueue(self, ns: Obj) -> None:
        meta = ns.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            self.controller.queue.add_after(meta.get("name", ""), self.deletion_delay)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.informer.run(), name="namespace-informer")
            await self.informer.wait_synced()
            tg.create_task(self.controller.run(), name="namespace-workers")

    # --- reconcile -------------------------------------------------------------

    async def reconcile(self, name: str) -> Result | None:
        try:
            ns = await self.client.get(NAMESPACES, name)
        except APIError as e:
            if e.code == 404:
                return None
            raise
        if not ns["metadata"].get("deletionTimestamp"):
            return None
        ns = await self._ensure_terminating(ns)
        spec_finalizers = (ns.get("spec") or {}).get("finalizers") or []
        if not spec_finalizers:
            if not ns["metadata"].get("finalizers"):
                # Kubernetes' API removes a finalized namespace itself; ObjectAPI only
                # does so on a write, so an empty finalize completes the deletion
                await self._finalize(ns)
            return None
        if FINALIZER not in spec_finalizers:
            return None  # only other parties' finalizers are left
        estimate = await self._delete_all_content(ns)
        if estimate > 0:
            return Result(requeue_after=estimate / 2 + 1)
        await self._finalize(ns)
        return None

    async def _ensure_terminating(self, ns: Obj) -> Obj:
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return ns
        ns.setdefault("status", {})["phase"] = "Terminating"
        return await self.client.update(NAMESPACES, ns, subresource="status")

    async def _finalize(self, ns: Obj) -> None:
        name = ns["metadata"]["name"]
        for _ in range(5):
            spec = ns.setdefault("spec", {})
            spec["finalizers"] = sorted({f for f in spec.get("finalizers") or [] if f != FINALIZER})
            try:
                await self.client.update(NAMESPACES, ns, subresource="finalize")
                return
            except APIError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
            try:
                fresh = await self.client.get(NAMESPACES, name)
            except APIError as e:
                if e.code == 404:
                    return
                raise
            if fresh["metadata"].get("uid") != ns["metadata"].get("uid"):
                return  # a new namespace of the same name: not ours to finalize
            ns = fresh
        raise Retry(f"finalizing namespace {name}: too many conflicts")

    # --- content ---------------------------------------------------------------

    async def _delete_all_content(self, ns: Obj) -> float:
        name = ns["metadata"]["name"]
        deleted_at = _parse_time(ns["metadata"].get("deletionTimestamp", ""))
        errs: list[str] = []
        estimate = 0.0
        remaining: dict[str, int] = {}
        finalizers: Counter[str] = Counter()
        for rt in deletable_namespaced(self.registry):
            try:
                left = await self._delete_kind(rt, name, deleted_at)
            except APIError as e:
                errs.append(e.message)
                continue
            except _Unexpected as e:
                errs.append(str(e))
                left = e.left
            estimate = max(estimate, left.estimate)
            if left.count:
                remaining[f"{rt.plural}.{rt.group}"] = left.count
                finalizers.update(left.finalizers)
        await self._update_conditions(ns, remaining, finalizers, errs)
        if errs:
            raise Retry(f"deleting content of namespace {name}: {'; '.join(sorted(errs))}")
        return estimate

    async def _delete_kind(self, rt: ResourceType, namespace: str, deleted_at: datetime | None) -> _Remaining:
        ref = ResourceRef.of(rt)
        estimate = await self._estimate_grace(rt, ref, namespace, deleted_at)
        done = False
        if "deletecollection" in rt.verbs:
            try:
                await self.client.delete_collection(ref, namespace, propagation_policy="Background")
                done = True
            except APIError as e:
                if e.code not in (404, 405):
                    raise
        if not done:
            for item in (await self.client.list(ref, namespace)).get("items") or []:
                try:
                    await self.client.delete(ref, item["metadata"]["name"], namespace, propagation_policy="Background")
                except APIError as e:
                    if e.code not in (404, 405):
                        raise
        items = (await self.client.list(ref, namespace)).get("items") or []
        if not items:
            return _Remaining()
        fins: Counter[str] = Counter()
        for item in items:
            fins.update((item.get("metadata") or {}).get("finalizers") or [])
        if estimate:
            return _Remaining(estimate, len(items), fins)
        if fins:
            return _Remaining(self.finalizer_estimate, len(items), fins)
        raise _Unexpected(
            f"unexpected items still remain in namespace: {namespace} for gvr: {rt.group}/{rt.version}, Resource={rt.plural}",
            _Remaining(0.0, len(items), fins),
        )

    async def _estimate_grace(
        self, rt: ResourceType, ref: ResourceRef, namespace: str, deleted_at: datetime | None
    ) -> float:
        """Longest termination grace period of non-terminal pods, if not yet elapsed."""
        if rt.storage_key != "/pods":
            return 0.0
        estimate = 0.0
        for pod in (await self.client.list(ref, namespace)).get("items") or []:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            if isinstance(grace, int | float) and grace > estimate:
                estimate = float(grace)
        if deleted_at is not None and (datetime.now(UTC) - deleted_at).total_seconds() >= estimate:
            return 0.0
        return estimate

    async def _update_conditions(
        self, ns: Obj, remaining: dict[str, int], finalizers: Counter[str], errs: list[str]
    ) -> None:
        now = _now()
        new: dict[str, Obj] = {}
        if remaining:
            parts = sorted(f"{r} has {n} resource instances" for r, n in remaining.items())
            new["NamespaceContentRemaining"] = _cond(
                "NamespaceContentRemaining", "True", "SomeResourcesRemain",
                "Some resources are remaining: " + ", ".join(parts), now,
            )
        if finalizers:
            parts = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items())
            new["NamespaceFinalizersRemaining"] = _cond(
                "NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: " + ", ".join(parts), now,
            )
        if errs:
            new["NamespaceDeletionContentFailure"] = _cond(
                "NamespaceDeletionContentFailure", "True", "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(errs)} remaining: {', '.join(sorted(errs))}", now,
            )
        status = ns.setdefault("status", {})
        conditions: list[Obj] = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        changed = False
        for ctype in CONDITION_TYPES:
            want = new.get(ctype) or _cond(ctype, "False", *_OK[ctype], now)
            old = next((c for c in conditions if c.get("type") == ctype), None)
            if old is None:
                conditions.append(want)
                changed = True
            elif any(old.get(k) != want[k] for k in ("status", "reason", "message")):
                if old.get("status") != want["status"]:
                    old["lastTransitionTime"] = now
                old.update(status=want["status"], reason=want["reason"], message=want["message"])
                changed = True
        if not changed:
            return
        status["conditions"] = conditions
        try:
            updated = await self.client.update(NAMESPACES, ns, subresource="status")
        except APIError as e:  # informational only: the next pass writes it again
            log.info("could not update namespace conditions: %s", e.message, extra={"namespace": ns["metadata"]["name"]})
            return
        ns["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]


class _Unexpected(Exception):
    def __init__(self, message: str, left: _Remaining) -> None:
        super().__init__(message)
        self.left = left


def _cond(ctype: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {"type": ctype, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}
