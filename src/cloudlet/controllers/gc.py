"""The garbage collector: ownerReferences, cascading deletion, orphaning.

Kubernetes semantics (``pkg/controller/garbagecollector``), across every kind
that supports list/watch/delete (Events excepted) and across scopes (a
namespaced dependent may be owned by a cluster-scoped owner; an owner
reference resolves in the dependent's namespace when the owner kind is
namespaced):

* **Background** (the default): once an owner is gone, each dependent is
  re-examined. A dependent whose owners are *all* gone (or replaced: same
  name, other uid) is deleted — with ``Orphan``/``Foreground`` if it already
  carries that finalizer, else ``Background`` — so deletion cascades down the
  tree. A dependent that still has a live owner only loses the dangling
  references (and those to owners deleting in the foreground).
* **Foreground**: an owner with ``deletionTimestamp`` and the
  ``foregroundDeletion`` finalizer gets its dependents deleted first (a
  dependent that itself has dependents is deleted in the foreground too); the
  finalizer is removed — and the owner disappears — once no dependent with
  ``blockOwnerDeletion: true`` is left. Dependents without
  ``blockOwnerDeletion`` are deleted but not waited for.
* **Orphan**: an owner with ``deletionTimestamp`` and the ``orphan`` finalizer
  has its reference removed from every dependent; then the finalizer is
  removed and the owner goes.
* A cluster-scoped dependent referring to a namespaced owner is invalid and
  left alone (logged); an owner kind this API does not serve is retried with
  backoff (it may be a CRD not yet registered).

Design: one metadata-only :class:`Informer` per resource keeps an in-memory
graph — ``uid -> node`` and ``owner uid -> dependent uids`` — updated
incrementally from events, never by rescanning. Events only enqueue uids;
workers reconcile a uid level-triggered: re-read the object, look owners up
live (an absent owner is remembered: uids never come back), act, and let the
resulting events drive the next step. Writes use uid + resourceVersion
preconditions, so a decision made on stale state fails with 409 and is
retried. Workers start only after every informer has synced; new kinds
(CRDs) are picked up every ``resync_period`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudlet.api.errors import APIError
from cloudlet.client.informer import Informer
from cloudlet.client.interface import Client, Obj, ResourceRef
from cloudlet.client.reconcile import Controller, Retry
from cloudlet.resources.registry import Registry, ResourceType

log = logging.getLogger("cloudlet.controllers.gc")

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED = frozenset({"/events", "events.k8s.io/events"})  # Kubernetes' default ignored resources
_META_KEYS = ("name", "namespace", "uid", "resourceVersion", "ownerReferences", "finalizers", "deletionTimestamp")
_ABSENT_CACHE = 10_000
_UPDATE_ATTEMPTS = 5


def metadata_only(obj: Obj) -> Obj:
    """The informer transform: the few metadata fields the collector reads."""
    meta = obj.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in _META_KEYS if k in meta}}


def _blocking(ref: Obj) -> bool:
    return ref.get("blockOwnerDeletion") is True


@dataclass(slots=True)
class _Node:
    uid: str
    rt: ResourceType
    namespace: str
    name: str
    owners: list[Obj] = field(default_factory=list)
    being_deleted: bool = False
    deleting_dependents: bool = False  # being deleted with the foregroundDeletion finalizer
    orphaning: bool = False  # being deleted with the orphan finalizer

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef.of(self.rt)

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.rt.kind} {where} ({self.uid})"


class GarbageCollector:
    """Runs the collector over ``client`` for the kinds in ``registry``."""

    def __init__(
        self,
        client: Client,
        registry: Registry,
        *,
        workers: int = 4,
        resync_period: float = 30.0,
        ignored: frozenset[str] = IGNORED,
    ) -> None:
        self.client = client
        self.registry = registry
        self.resync_period = resync_period
        self.ignored = ignored
        self.nodes: dict[str, _Node] = {}
        self.dependents: dict[str, set[str]] = {}
        self._absent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.monitors: dict[str, Informer] = {}
        self.controller: Controller[str] = Controller("garbage-collector", self.reconcile, workers=workers)
        self._tg: asyncio.TaskGroup | None = None

    # --- monitors ----------------------------------------------------------------

    def monitored_types(self) -> dict[str, ResourceType]:
        chosen: dict[str, ResourceType] = {}
        for rt in self.registry.all():
            if rt.storage_key in self.ignored or not {"list", "watch", "delete"} <= set(rt.verbs):
                continue
            cur = chosen.get(rt.storage_key)
            if cur is None or (rt.preferred and not cur.preferred):
                chosen[rt.storage_key] = rt
        return chosen

    def sync_monitors(self) -> None:
        """Start informers for newly served kinds; stop those no longer served."""
        assert self._tg is not None
        wanted = self.monitored_types()
        for key, inf in list(self.monitors.items()):
            if key not in wanted:
                inf.stop()
                del self.monitors[key]
        for key, rt in wanted.items():
            if key in self.monitors:
                continue
            inf = Informer(self.client, ResourceRef.of(rt), transform=metadata_only)
            inf.add_handler(self._adder(rt), self._updater(rt), self._on_delete)
            self.monitors[key] = inf
            self._tg.create_task(inf.run(), name=f"gc-monitor-{rt.plural}.{rt.group}")

    @property
    def has_synced(self) -> bool:
        return all(inf.has_synced for inf in self.monitors.values())

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            self.sync_monitors()
            try:
                async with asyncio.timeout(self.resync_period):
                    await asyncio.gather(*(inf.wait_synced() for inf in self.monitors.values()))
            except TimeoutError:
                unsynced = [str(inf.ref) for inf in self.monitors.values() if not inf.has_synced]
                log.warning("starting before every resource synced", extra={"unsynced": unsynced})
            tg.create_task(self.controller.run(), name="gc-workers")
            while True:
                await asyncio.sleep(self.resync_period)
                self.sync_monitors()

    # --- graph maintenance (informer handlers: synchronous, enqueue only) ----------

    def _adder(self, rt: ResourceType) -> Callable[[Obj], None]:
        return lambda obj: self._observe(rt, obj)

    def _updater(self, rt: ResourceType) -> Callable[[Obj, Obj], None]:
        return lambda _old, new: self._observe(rt, new)

    def _enqueue(self, uid: str) -> None:
        self.controller.queue.add(uid)

    def _observe(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict) and o.get("uid")]
        node = self.nodes.get(uid)
        if node is None:
            node = self.nodes[uid] = _Node(uid, rt, meta.get("namespace") or "", meta.get("name", ""))
            old_owners: list[Obj] = []
        else:
            old_owners = node.owners
        node.owners = owners
        if owners or old_owners:
            self._rewire(uid, old_owners, owners)
        finalizers = meta.get("finalizers") or []
        node.being_deleted = bool(meta.get("deletionTimestamp"))
        foreground = node.being_deleted and FOREGROUND in finalizers
        if foreground and not node.deleting_dependents:
            for dep in self.dependents.get(uid, ()):
                self._enqueue(dep)
        node.deleting_dependents = foreground
        node.orphaning = node.being_deleted and ORPHAN in finalizers
        if foreground or node.orphaning:
            self._enqueue(uid)
        for o in owners:  # an owner we have not seen (or that is going away): check on it
            owner = self.nodes.get(o["uid"])
            if owner is None or owner.deleting_dependents:
                self._enqueue(uid)
                break

    def _rewire(self, uid: str, old: list[Obj], new: list[Obj]) -> None:
        """Update the dependents index for changed ownerReferences; wake owners a
        removed or unblocked reference was holding up."""
        old_by = {o["uid"]: o for o in old}
        new_by = {o["uid"]: o for o in new}
        for owner_uid in new_by.keys() - old_by.keys():
            self.dependents.setdefault(owner_uid, set()).add(uid)
        for owner_uid in old_by.keys() - new_by.keys():
            self._unlink(owner_uid, uid)
            if _blocking(old_by[owner_uid]) and owner_uid in self.nodes:
                self._enqueue(owner_uid)
        for owner_uid in old_by.keys() & new_by.keys():
            if _blocking(old_by[owner_uid]) and not _blocking(new_by[owner_uid]) and owner_uid in self.nodes:
                self._enqueue(owner_uid)

    def _unlink(self, owner_uid: str, uid: str) -> None:
        deps = self.dependents.get(owner_uid)
        if deps is not None:
            deps.discard(uid)
            if not deps:
                del self.dependents[owner_uid]

    def _on_delete(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        node = self.nodes.pop(uid, None) if uid else None
        if node is None:
            return
        self._remember_absent(node.uid, node.namespace)
        for o in node.owners:
            self._unlink(o["uid"], node.uid)
            owner = self.nodes.get(o["uid"])
            if owner is not None and owner.deleting_dependents:
                self._enqueue(owner.uid)
        for dep in self.dependents.get(node.uid, ()):
            self._enqueue(dep)

    def _remember_absent(self, uid: str, namespace: str) -> None:
        self._absent[(uid, namespace)] = None
        self._absent.move_to_end((uid, namespace))
        while len(self._absent) > _ABSENT_CACHE:
            self._absent.popitem(last=False)

    def _known_absent(self, uid: str, namespace: str) -> bool:
        return (uid, namespace) in self._absent or (uid, "") in self._absent

    # --- reconcile -------------------------------------------------------------------

    async def reconcile(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return  # gone: its delete event already queued its dependents
        if node.being_deleted and not node.deleting_dependents and not node.orphaning:
            return  # on its way out; its dependents are handled when it is gone
        latest = await self._get(node)
        if latest is None:
            return  # the informer's delete event will follow
        meta = latest["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp"):
            if ORPHAN in finalizers:
                await self._orphan_dependents(node)
                await self._remove_finalizer(node, ORPHAN)
            elif FOREGROUND in finalizers:
                await self._process_deleting_dependents(node)
            return
        owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict) and o.get("uid")]
        if not owners:
            return
        classified = await self._classify(node, owners)
        if classified is None:
            return
        solid, dangling, waiting = classified
        if solid:
            if dangling or waiting:
                drop = {o["uid"] for o in dangling + waiting}
                log.info("removing dangling owner references", extra={"object": str(node), "owners": sorted(drop)})
                await self._edit(node, lambda o: _drop_owner_refs(o, drop))
            return
        if waiting and self._has_live_dependents(uid):
            if any(self.nodes[d].deleting_dependents for d in self.dependents.get(uid, ()) if d in self.nodes):
                # a dependent also waits for *us*: unblock our references to avoid a deadlock cycle
                await self._edit(node, _unblock_owner_refs)
            await self._delete(node, latest, "Foreground")
            return
        policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
        log.info("deleting object whose owners are gone", extra={"object": str(node), "propagationPolicy": policy})
        await self._delete(node, latest, policy)

    def _has_live_dependents(self, uid: str) -> bool:
        return any(d in self.nodes for d in self.dependents.get(uid, ()))

    async def _classify(
        self, node: _Node, owners: list[Obj]
    ) -> tuple[list[Obj], list[Obj], list[Obj]] | None:
        """Split owner references into solid / dangling / waiting-for-dependents-deletion."""
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        for ref in owners:
            rt = self.registry.for_api_version(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
            if rt is None:
                raise Retry(f"owner {ref.get('kind')} {ref.get('apiVersion')} of {node} is not a served kind")
            if rt.namespaced and not node.namespace:
                log.warning("cluster-scoped object refers to a namespaced owner; ignoring it",
                            extra={"object": str(node), "owner": ref.get("name")})
                return None
            ns = node.namespace if rt.namespaced else ""
            if self._known_absent(ref["uid"], ns):
                dangling.append(ref)
                continue
            try:
                owner = await self.client.get(ResourceRef.of(rt), str(ref.get("name", "")), ns)
            except APIError as e:
                if e.code != 404:
                    raise
                owner = None
            ometa = (owner or {}).get("metadata") or {}
            if owner is None or ometa.get("uid") != ref["uid"]:
                self._remember_absent(ref["uid"], ns)
                dangling.append(ref)
            elif ometa.get("deletionTimestamp") and FOREGROUND in (ometa.get("finalizers") or []):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _process_deleting_dependents(self, node: _Node) -> None:
        blocking = [
            dep for d in self.dependents.get(node.uid, ())
            if (dep := self.nodes.get(d)) is not None
            and any(o["uid"] == node.uid and _blocking(o) for o in dep.owners)
        ]
        if not blocking:
            log.info("all blocking dependents gone; removing foregroundDeletion", extra={"object": str(node)})
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self._enqueue(dep.uid)

    async def _orphan_dependents(self, owner: _Node) -> None:
        failed: list[str] = []
        for d in list(self.dependents.get(owner.uid, ())):
            dep = self.nodes.get(d)
            if dep is None:
                continue
            try:
                await self._edit(dep, lambda o: _drop_owner_refs(o, {owner.uid}))
            except (APIError, Retry) as e:
                failed.append(f"{dep}: {e}")
        if failed:
            raise Retry(f"orphaning dependents of {owner} failed: {'; '.join(failed)}")

    # --- writes ----------------------------------------------------------------------

    async def _get(self, node: _Node) -> Obj | None:
        try:
            obj = await self.client.get(node.ref, node.name, node.namespace)
        except APIError as e:
            if e.code == 404:
                return None
            raise
        return obj if obj["metadata"].get("uid") == node.uid else None

    async def _edit(self, node: _Node, mutate: Callable[[Obj], bool]) -> None:
        """Read-modify-write with resourceVersion; ``mutate`` returns False for "no change"."""
        for _ in range(_UPDATE_ATTEMPTS):
            obj = await self._get(node)
            if obj is None or not mutate(obj):
                return
            try:
                await self.client.update(node.ref, obj)
                return
            except APIError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise Retry(f"updating {node}: too many conflicts")

    async def _remove_finalizer(self, node: _Node, finalizer: str) -> None:
        def mutate(obj: Obj) -> bool:
            fins = obj["metadata"].get("finalizers") or []
            if finalizer not in fins:
                return False
            obj["metadata"]["finalizers"] = [f for f in fins if f != finalizer]
            return True

        await self._edit(node, mutate)

    async def _delete(self, node: _Node, latest: Obj, policy: str) -> None:
        pre = {"uid": node.uid, "resourceVersion": latest["metadata"].get("resourceVersion")}
        try:
            await self.client.delete(node.ref, node.name, node.namespace, propagation_policy=policy, preconditions=pre)
        except APIError as e:
            if e.code == 404:
                return
            if e.code == 409:
                raise Retry(f"{node} changed while deciding to delete it") from e
            raise


def _drop_owner_refs(obj: Obj, uids: set[str]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    kept = [r for r in refs if not (isinstance(r, dict) and r.get("uid") in uids)]
    if len(kept) == len(refs):
        return False
    if kept:
        obj["metadata"]["ownerReferences"] = kept
    else:
        obj["metadata"].pop("ownerReferences", None)
    return True


def _unblock_owner_refs(obj: Obj) -> bool:
    changed = False
    for r in obj["metadata"].get("ownerReferences") or []:
        if isinstance(r, dict) and r.get("blockOwnerDeletion") is True:
            r["blockOwnerDeletion"] = False
            changed = True
    return changed
