"""The CRD controller: names, Established, serving, and cleanup on deletion.

One loop doing what kube-apiserver's apiextensions controllers do (naming,
establishing, finalizer), keyed by CRD name and level-triggered:

* **names** — the CRD's requested ``spec.names`` are checked against the
  accepted names of the other CRDs of its group and the built-in kinds there;
  free (or already accepted) names become ``status.acceptedNames`` and
  ``NamesAccepted`` is ``True`` (``NoConflicts``), else ``False`` with
  ``PluralConflict``/``SingularConflict``/``ShortNamesConflict``/
  ``KindConflict``/``ListKindConflict`` and ``"<name>" is already in use``;
  the other CRDs of the group are then reconciled again;
* **serving** — with names accepted, one type per served version is
  registered (:mod:`cloudlet.resources.customresource`) *before*
  ``Established`` turns ``True`` (``InitialNamesAccepted``), so a client
  that waited for the condition finds the resource in discovery; every later
  change (versions, schema, columns, subresources) re-registers them;
* **deletion** — a CRD being deleted gets ``Terminating`` (new objects are
  refused), all its objects are deleted (re-checked every ``recheck``
  seconds while some wait on their own finalizers), the types are
  unregistered and the ``customresourcecleanup.apiextensions.k8s.io``
  finalizer is removed, which lets the CRD go.

:func:`serve_stored_crds` registers every stored CRD's accepted names before
the server listens, so a restarted server serves custom resources at once.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import UTC, datetime
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.api.objects import ObjectAPI
from cloudlet.client.informer import Informer
from cloudlet.client.interface import Client, Obj, ResourceRef
from cloudlet.client.reconcile import Controller, Result, Retry
from cloudlet.resources.apiextensions import (
    CLEANUP_FINALIZER,
    CRDS,
    GROUP,
    condition,
    condition_true,
    spec_of,
)
from cloudlet.resources.customresource import accepted_names, serving_for
from cloudlet.resources.registry import Registry

log = logging.getLogger("cloudlet.controllers.crd")

CRD_REF = ResourceRef(GROUP, "v1", "customresourcedefinitions")
_NAME_FIELDS = ("plural", "singular", "shortNames", "kind", "listKind", "categories")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _d(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def _cond(ctype: str, status: str, reason: str, message: str) -> Obj:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def set_condition(crd: Obj, cond: Obj) -> bool:
    """Kubernetes' ``SetCRDCondition``; True when something changed."""
    status = crd.setdefault("status", {})
    conds = status.get("conditions")
    if not isinstance(conds, list):
        conds = status["conditions"] = []
    old = next((c for c in conds if isinstance(c, dict) and c.get("type") == cond["type"]), None)
    if old is None:
        conds.append({**cond, "lastTransitionTime": _now()})
        return True
    changed = any(old.get(k) != cond[k] for k in ("status", "reason", "message"))
    if old.get("status") != cond["status"] or not old.get("lastTransitionTime"):
        old["lastTransitionTime"] = _now()
        changed = True
    old.update(status=cond["status"], reason=cond["reason"], message=cond["message"])
    return changed


def _clean_names(names: Obj) -> Obj:
    """``CustomResourceDefinitionNames`` as Go encodes it (empty optional fields omitted)."""
    out: Obj = {}
    for f in _NAME_FIELDS:
        v = names.get(f)
        if v or f in ("plural", "kind"):
            out[f] = v if v is not None else ""
    return out


def serve_stored_crds(api: ObjectAPI) -> int:
    """Serve every stored CRD whose names were accepted; the number served."""
    rt = api.registry.get(GROUP, "v1", "customresourcedefinitions")
    if rt is None:
        return 0
    serving = serving_for(api.registry)
    count = 0
    for crd in api.list(rt, None).items:
        if condition_true(crd, "NamesAccepted") or condition_true(crd, "Established"):
            try:
                if serving.serve(crd):
                    count += 1
            except Exception:  # a CRD that cannot be served must not stop the server
                log.exception("cannot serve stored CRD", extra={"crd": crd["metadata"].get("name")})
    return count


class CRDController:
    """Runs the CRD loop over ``client`` (see the module docstring)."""

    def __init__(self, client: Client, registry: Registry, *, recheck: float = 1.0) -> None:
        self.client = client
        self.serving = serving_for(registry)
        self.recheck = recheck
        self.informer = Informer(client, CRD_REF)
        # one worker: name acceptance within a group must not race with itself
        self.controller: Controller[str] = Controller("crd", self.reconcile, workers=1)
        self._accepted: dict[str, Obj] = {}  # names we wrote, until the informer has them
        self.informer.add_handler(self._enqueue, lambda _old, new: self._enqueue(new), self._enqueue)

    def _enqueue(self, crd: Obj) -> None:
        name = _d(crd.get("metadata")).get("name")
        if name:
            self.controller.queue.add(name)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.informer.run(), name="crd-informer")
            await self.informer.wait_synced()
            tg.create_task(self.controller.run(), name="crd-workers")

    # --- reconcile -------------------------------------------------------------------

    async def reconcile(self, name: str) -> Result | None:
        try:
            crd = await self.client.get(CRD_REF, name)
        except APIError as e:
            if e.code != 404:
                raise
            self._accepted.pop(name, None)
            if self.serving.is_served(name):
                self.serving.unserve(name)
            self._requeue_group(name, None)
            return None
        if _d(crd.get("metadata")).get("deletionTimestamp"):
            return await self._finalize(crd)
        await self._establish(crd)
        return None

    def _requeue_group(self, name: str, group: str | None) -> None:
        group = group or name.partition(".")[2]
        for other in self.informer.list():
            oname = _d(other.get("metadata")).get("name")
            if oname != name and spec_of(other).get("group") == group:
                self.controller.queue.add(oname)

    # --- names -----------------------------------------------------------------------

    def _used_names(self, crd: Obj) -> tuple[set[str], set[str]]:
        name = crd["metadata"]["name"]
        group = spec_of(crd).get("group")
        resources, kinds = self.serving.builtin_names(str(group))
        for other in self.informer.list():
            oname = _d(other.get("metadata")).get("name")
            if oname == name or spec_of(other).get("group") != group:
                continue
            names = self._accepted.get(oname) or accepted_names(other)
            resources.update(str(x) for x in (names.get("plural"), names.get("singular"), *(names.get("shortNames") or ())) if x)
            kinds.update(str(x) for x in (names.get("kind"), names.get("listKind")) if x)
        return resources, kinds

    def accept_names(self, crd: Obj) -> tuple[Obj, Obj]:
        """``(acceptedNames, NamesAccepted condition)`` as the naming controller computes them."""
        resources, kinds = self._used_names(crd)
        requested = _d(spec_of(crd).get("names"))
        accepted = accepted_names(crd)
        new = dict(accepted)
        cond: Obj | None = None

        def fresh(req: Any, acc: Any, used: set[str]) -> str | None:
            if req == acc or req not in used:
                return None
            return f'"{req}" is already in use'

        for f, used, reason in (("plural", resources, "PluralConflict"), ("singular", resources, "SingularConflict")):
            if msg := fresh(requested.get(f), accepted.get(f), used):
                cond = _cond("NamesAccepted", "False", reason, msg)
            else:
                new[f] = requested.get(f)
        if list(requested.get("shortNames") or []) != list(accepted.get("shortNames") or []):
            have = set(accepted.get("shortNames") or [])
            msgs = [m for s in requested.get("shortNames") or [] if s not in have and (m := fresh(s, "", resources))]
            if msgs:
                cond = _cond("NamesAccepted", "False", "ShortNamesConflict", msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]")
            else:
                new["shortNames"] = requested.get("shortNames")
        for f, reason in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
            if msg := fresh(requested.get(f), accepted.get(f), kinds):
                cond = _cond("NamesAccepted", "False", reason, msg)
            else:
                new[f] = requested.get(f)
        new["categories"] = requested.get("categories")
        return _clean_names(new), cond or _cond("NamesAccepted", "True", "NoConflicts", "no conflicts found")

    async def _establish(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        names, names_cond = self.accept_names(crd)
        was_established = condition_true(crd, "Established")
        new = copy.deepcopy(crd)
        if names_cond["status"] == "True" or was_established:
            self.serving.serve(new, names)
        else:
            self.serving.unserve(name)
        new.setdefault("status", {})["acceptedNames"] = names
        changed = set_condition(new, names_cond)
        if not was_established:
            if names_cond["status"] == "True":
                est = _cond("Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
            else:
                est = condition(crd, "Established") or _cond("Established", "False", "NotAccepted", "not all names are accepted")
                est = {k: est.get(k, "") for k in ("type", "status", "reason", "message")}
            changed = set_condition(new, est) or changed
        names_changed = names != accepted_names(crd)
        if not changed and not names_changed:
            return
        try:
            await self.client.update(CRD_REF, new, subresource="status")
        except APIError as e:
            if e.code == 404:
                return
            if e.code == 409:
                raise Retry(f"CRD {name} changed while setting its status", after=0.05) from e
            raise
        self._accepted[name] = names
        if names_changed:
            self._requeue_group(name, str(spec_of(crd).get("group")))

    # --- deletion --------------------------------------------------------------------

    async def _finalize(self, crd: Obj) -> Result | None:
        name = crd["metadata"]["name"]
        if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return None
        if self.serving.is_served(name):
            self.serving.serve(crd)  # now refusing new objects
        cur = condition(crd, "Terminating")
        if cur is None or cur.get("reason") not in ("InstanceDeletionInProgress",):
            set_condition(crd, _cond("Terminating", "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress"))
            crd = await self._update_status(crd)
            if crd is None:
                return None
        if condition_true(crd, "Established"):
            left = await self._delete_instances(crd)
            if left:
                log.info("waiting for custom objects to go", extra={"crd": name, "remaining": left})
                return Result(requeue_after=self.recheck)
            final = _cond("Terminating", "False", "InstanceDeletionCompleted", "removed all instances")
        else:
            final = _cond("Terminating", "False", "NeverEstablished", "resource was never established")
        set_condition(crd, final)
        crd = await self._update_status(crd)
        if crd is None:
            return None
        self.serving.unserve(name)
        crd["metadata"]["finalizers"] = [f for f in crd["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER]
        try:
            await self.client.update(CRD_REF, crd)
        except APIError as e:
            if e.code == 404:
                return None
            if e.code == 409:
                raise Retry(f"CRD {name} changed while removing its finalizer", after=0.05) from e
            raise
        return None

    async def _update_status(self, crd: Obj) -> Obj | None:
        try:
            return await self.client.update(CRD_REF, crd, subresource="status")
        except APIError as e:
            if e.code == 404:
                return None
            if e.code == 409:
                raise Retry(f"CRD {crd['metadata']['name']} changed", after=0.05) from e
            raise

    async def _delete_instances(self, crd: Obj) -> int:
        """Delete every object of the CRD; how many are still there afterwards."""
        rts = self.serving.served.get(crd["metadata"]["name"]) or []
        if not rts:
            return 0
        rt = next((r for r in rts if r.preferred), rts[0])
        ref = ResourceRef.of(rt)
        try:
            await self.client.delete_collection(ref, None, propagation_policy="Background")
            return len((await self.client.list(ref, None)).get("items") or [])
        except APIError as e:
            if e.code == 404:
                return 0
            set_condition(crd, _cond("Terminating", "True", "InstanceDeletionFailed", f"could not issue all deletes: {e.message}"))
            await self._update_status(crd)
            raise


__all__ = ["CRDS", "CRD_REF", "CRDController", "serve_stored_crds", "set_condition"]
