"""The Deployment controller: ReplicaSets per template revision, rolled per strategy.

Kubernetes semantics (``pkg/controller/deployment``), so ``kubectl rollout
status|history|undo|restart|pause|resume`` work unchanged:

* **Claiming.** ReplicaSets with a controller reference to the Deployment's
  uid belong to it; orphans matching ``spec.selector`` are adopted, owned ones
  that stopped matching are released.
* **New ReplicaSet.** The ReplicaSet whose template equals the Deployment's
  (ignoring the ``pod-template-hash`` label; the oldest wins) is the new one;
  the rest are old. When none exists (and the Deployment is not paused) one is
  created: name ``<deployment>-<hash>``, the hash also added as
  ``pod-template-hash`` to its selector, labels and template labels.
  :func:`template_hash` is FNV-32a over the template's canonical JSON (sorted
  keys, compact) followed by ``status.collisionCount``, encoded with
  ``rand.SafeEncodeString`` as Kubernetes does — Kubernetes hashes a
  ``spew`` dump of the Go struct instead, so the hash values differ from a real
  cluster's but are stable and shaped alike. A name collision with a
  ReplicaSet of another template bumps ``status.collisionCount``.
* **Revisions.** ``deployment.kubernetes.io/revision`` on the new ReplicaSet is
  one more than the largest among the old ones; the Deployment carries the new
  ReplicaSet's revision. The Deployment's annotations (minus the controller's
  own and ``kubectl.kubernetes.io/last-applied-configuration``) are copied to
  the new ReplicaSet, so ``kubernetes.io/change-cause`` shows in ``rollout
  history``; ``desired-replicas``/``max-replicas`` annotations are kept on
  every ReplicaSet the controller scales. Old ReplicaSets scaled to zero beyond
  ``revisionHistoryLimit`` are deleted, oldest revision first, once the
  rollout is complete (or while paused).
* **RollingUpdate.** The new ReplicaSet grows while the sum of all
  ReplicaSets' ``spec.replicas`` stays ≤ ``replicas + maxSurge``; old ones
  shrink (unhealthy replicas first) while the available count stays ≥
  ``replicas - maxUnavailable``. Percentages round up for surge and down for
  unavailable; both zero means unavailable 1. **Recreate** scales every old
  ReplicaSet to zero, waits until none of their pods is left (terminating ones
  included, until their node confirms them gone), then scales the new one up.
* **Paused** Deployments and pure scaling events (``replicas`` changed, template
  not) only scale (proportionally across active ReplicaSets) and update
  status; no new ReplicaSet is created while paused.
* **Status.** ``replicas``/``updatedReplicas``/``readyReplicas``/
  ``availableReplicas`` summed from ReplicaSet status, ``unavailableReplicas``,
  ``observedGeneration``, ``collisionCount``, and the conditions
  ``Available`` (``MinimumReplicasAvailable``/``MinimumReplicasUnavailable``)
  and ``Progressing`` (``NewReplicaSetCreated``, ``FoundNewReplicaSet``,
  ``ReplicaSetUpdated``, ``NewReplicaSetAvailable``,
  ``ProgressDeadlineExceeded``, ``DeploymentPaused``, ``DeploymentResumed``)
  with Kubernetes' messages; a ``ReplicaFailure`` on a ReplicaSet is copied
  up. A progressing rollout is re-checked when its ``progressDeadlineSeconds``
  would pass.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from typing import Any

from cloudlet.api.errors import APIError
from cloudlet.client.events import NORMAL, EventRecorder
from cloudlet.client.informer import SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef, split_key
from cloudlet.client.reconcile import FactoryController, Result, Retry, selector_of
from cloudlet.controllers.meta import controller_ref, now_rfc3339, parse_time, set_owner_references
from cloudlet.controllers.replicaset import (
    PODS,
    REPLICASETS,
    labels_of,
    owner_reference,
)

log = logging.getLogger("cloudlet.controllers.deployment")

DEPLOYMENTS = ResourceRef("apps", "v1", "deployments")
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
_NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})

# condition reasons (pkg/controller/deployment/util)
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
FAILED_RS_CREATE = "ReplicaSetCreateError"

_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# --- pure helpers -------------------------------------------------------------------------------


def safe_encode(s: str) -> str:
    """``rand.SafeEncodeString``: map each byte onto consonants and digits (no vowels, no 0/1/3)."""
    return "".join(_SAFE_ALPHANUMS[b % len(_SAFE_ALPHANUMS)] for b in s.encode())


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of ``template`` (see the module docstring)."""
    h = 0x811C9DC5
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little", signed=False)
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return safe_encode(str(h))


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            return 0
        v = pct * total / 100
        return int(math.ceil(v) if round_up else math.floor(v))
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def replicas(obj: Obj | None) -> int:
    return int(((obj or {}).get("spec") or {}).get("replicas") or 0)


def status_int(obj: Obj | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def fenceposts(d: Obj) -> tuple[int, int]:
    """``(maxSurge, maxUnavailable)`` resolved against ``spec.replicas``."""
    rolling = (((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate")) or {}
    want = replicas(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), want, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), want, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas(d))


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def revision_of(obj: Obj | None) -> int:
    raw = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def template_without_hash(template: Obj | None) -> Obj:
    """``template`` without the ``pod-template-hash`` label and without null
    metadata fields (``creationTimestamp: null`` — what Go clients such as
    ``kubectl rollout undo`` send — equals an absent field, as in Go structs)."""
    t = copy.deepcopy(template or {})
    if isinstance(t.get("metadata"), dict):
        t["metadata"] = {k: v for k, v in t["metadata"].items() if v is not None}
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    if isinstance(t.get("metadata"), dict) and not t["metadata"]:
        t.pop("metadata")
    return t


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    return template_without_hash(a) == template_without_hash(b)


def _created(obj: Obj) -> tuple[float, str]:
    return (parse_time(obj["metadata"].get("creationTimestamp")) or 0.0, obj["metadata"].get("name", ""))


def get_condition(status: Obj, type_: str) -> Obj | None:
    for c in status.get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def new_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    return {"type": type_, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """``SetDeploymentCondition``: same status and reason is a no-op; the same
    status keeps its lastTransitionTime."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
    status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, type_: str) -> None:
    conds = [c for c in status.get("conditions") or () if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and deadline != 2147483647


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 1))


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}

    def g(s: Obj, f: str) -> int:
        return int(s.get(f) or 0)

    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: Obj, status: Obj, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + int(d["spec"]["progressDeadlineSeconds"]) < now


# --- the controller -------------------------------------------------------------------------------


class DeploymentController(FactoryController):
    """Reconciles Deployments (see the module docstring); ``await run()`` until cancelled."""

    def __init__(self, client: Client, factory: SharedInformerFactory | None = None, *, workers: int = 5) -> None:
        super().__init__(client, factory, "deployment", workers=workers)
        self.deployments = self.factory.informer(DEPLOYMENTS)
        self.replicasets = self.factory.informer(REPLICASETS)
        self.pods = self.factory.informer(PODS)
        self.recorder = EventRecorder(client, "deployment-controller")
        self.controller.watch(self.deployments)
        # a ReplicaSet wakes its Deployment, or (orphan) every Deployment that could adopt it
        self.controller.watch_owned(self.replicasets, "Deployment", "apps", adopters=self.deployments)
        self.controller._source(self.pods)
        self.pods.add_handler(None, None, self._pod_deleted)

    def _pod_deleted(self, pod: Obj) -> None:
        # Recreate waits for old pods to go: a vanished pod may unblock it
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(f"{pod['metadata'].get('namespace', '')}/{ref.get('name')}")
        ref = controller_ref(rs) if rs is not None else None
        if ref is not None and ref.get("kind") == "Deployment":
            self.controller.enqueue(f"{pod['metadata'].get('namespace', '')}/{ref.get('name')}")

    # --- reconcile -------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        d = copy.deepcopy(cached)
        sel = selector_of(d)
        if sel is None or sel.empty:
            self.recorder.emit(d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
            return None
        rs_list = await self._claim(d, split_key(key)[0])
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old = self._split(d, rs_list)
            return await self._sync_status(d, [*old, *([new_rs] if new_rs else [])], new_rs)
        await self._check_paused(d)
        if (d.get("spec") or {}).get("paused") or self._is_scaling_event(d, rs_list):
            return await self._sync(d, rs_list)
        if is_rolling(d):
            return await self._rollout_rolling(d, rs_list)
        return await self._rollout_recreate(d, rs_list)

    async def _claim(self, d: Obj, namespace: str) -> list[Obj]:
        uid = d["metadata"]["uid"]
        sel = selector_of(d)
        deleting = bool(d["metadata"].get("deletionTimestamp"))
        out: list[Obj] = []
        for rs in self.replicasets.list(namespace):
            ref = controller_ref(rs)
            matches = sel is not None and sel.matches(labels_of(rs))
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    out.append(rs)
                elif not deleting:
                    await set_owner_references(self.client, REPLICASETS, rs, [r for r in rs["metadata"].get("ownerReferences") or () if r.get("uid") != uid])
                continue
            if matches and not deleting and not rs["metadata"].get("deletionTimestamp"):
                refs = [*(rs["metadata"].get("ownerReferences") or ()), owner_reference(d, "apps/v1", "Deployment")]
                adopted = await set_owner_references(self.client, REPLICASETS, rs, refs)
                out.append(adopted)
        return out


    def _split(self, d: Obj, rs_list: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """``FindNewReplicaSet`` and ``FindOldReplicaSets``."""
        template = (d.get("spec") or {}).get("template")
        new_rs = None
        for rs in sorted(rs_list, key=_created):
            if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
                new_rs = rs
                break
        return new_rs, [rs for rs in rs_list if rs is not new_rs]

    # --- writes -------------------------------------------------------------------------------------

    async def _update_status(self, d: Obj) -> None:
        try:
            updated = await self.client.update(DEPLOYMENTS, d, "status")
        except APIError as e:
            if e.code in (404, 409):
                raise Retry("deployment changed while writing status") from e
            raise
        d["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]

    async def _set_deployment_revision(self, d: Obj, revision: int) -> None:
        annotations = d["metadata"].get("annotations") or {}
        if annotations.get(REVISION) == str(revision):
            return
        try:
            updated = await self.client.patch(DEPLOYMENTS, d["metadata"]["name"],
                                              {"metadata": {"annotations": {REVISION: str(revision)}}},
                                              namespace=d["metadata"].get("namespace", ""))
        except APIError as e:
            if e.code == 404:
                raise Retry("deployment vanished") from e
            raise
        d["metadata"]["annotations"] = updated["metadata"].get("annotations") or {}
        d["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]

    def _rs_annotations(self, d: Obj, rs_annotations: dict[str, str], revision: int | None, *, new: bool) -> dict[str, str]:
        """``SetNewReplicaSetAnnotations``: the Deployment's annotations, the revision,
        and — only for a ReplicaSet about to be created — the replica annotations
        (an existing one keeps the size it was last scaled for: proportional
        scaling reads it)."""
        out = dict(rs_annotations)
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in _NOT_COPIED:
                out[k] = v
        if revision is not None and revision_of({"metadata": {"annotations": out}}) < revision:
            out[REVISION] = str(revision)
        if new:
            out[DESIRED_REPLICAS] = str(replicas(d))
            out[MAX_REPLICAS] = str(replicas(d) + max_surge(d))
        return out

    async def _scale(self, d: Obj, rs: Obj, count: int) -> Obj:
        """``scaleReplicaSet``: set replicas and the replica annotations; event on a size change."""
        annotations = rs["metadata"].get("annotations") or {}
        want_ann = {DESIRED_REPLICAS: str(replicas(d)), MAX_REPLICAS: str(replicas(d) + max_surge(d))}
        old = replicas(rs)
        if old == count and all(annotations.get(k) == v for k, v in want_ann.items()):
            return rs
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = count
        body["metadata"]["annotations"] = {**annotations, **want_ann}
        try:
            updated = await self.client.update(REPLICASETS, body)
        except APIError as e:
            if e.code in (404, 409):
                raise Retry(f"replicaset {rs['metadata']['name']} changed while scaling") from e
            raise
        if old != count:
            verb = "up" if count > old else "down"
            self.recorder.emit(d, NORMAL, "ScalingReplicaSet",
                               f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {count}")
        return updated

    # --- new/old ReplicaSets and revisions --------------------------------------------------------------

    async def _all_rs(self, d: Obj, rs_list: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``."""
        new_rs, old = self._split(d, rs_list)
        revision = max((revision_of(rs) for rs in old), default=0) + 1
        if new_rs is not None:
            want = self._rs_annotations(d, new_rs["metadata"].get("annotations") or {}, revision, new=False)
            min_ready = (d.get("spec") or {}).get("minReadySeconds") or 0
            if want != (new_rs["metadata"].get("annotations") or {}) or (new_rs["spec"].get("minReadySeconds") or 0) != min_ready:
                body = copy.deepcopy(new_rs)
                body["metadata"]["annotations"] = want
                body["spec"]["minReadySeconds"] = min_ready
                try:
                    new_rs = await self.client.update(REPLICASETS, body)
                except APIError as e:
                    if e.code in (404, 409):
                        raise Retry("new replicaset changed while updating its annotations") from e
                    raise
            await self._set_deployment_revision(d, revision_of(new_rs))
            status = d.setdefault("status", {})
            if has_progress_deadline(d) and get_condition(status, "Progressing") is None:
                set_condition(status, new_condition("Progressing", "True", FOUND_NEW_RS,
                                                    f'Found new replica set "{new_rs["metadata"]["name"]}"'))
                await self._update_status(d)
            return new_rs, old
        if not create:
            return None, old
        return await self._create_new_rs(d, old, revision), old

    async def _create_new_rs(self, d: Obj, old: list[Obj], revision: int) -> Obj:
        spec = d["spec"]
        status = d.setdefault("status", {})
        collisions = status.get("collisionCount")
        h = template_hash(spec.get("template") or {}, collisions)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        name = f"{d['metadata']['name']}-{h}"
        all_rs = [*old]
        new_count = self._new_rs_replicas(d, all_rs, 0)
        body: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": d["metadata"].get("namespace", ""),
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [owner_reference(d, "apps/v1", "Deployment")],
                         "annotations": self._rs_annotations(d, {}, revision, new=True)},
            "spec": {"replicas": new_count, "minReadySeconds": spec.get("minReadySeconds") or 0,
                     "selector": selector, "template": template},
        }
        try:
            created = await self.client.create(REPLICASETS, body)
        except APIError as e:
            if e.code != 409:
                if has_progress_deadline(d):
                    set_condition(status, new_condition("Progressing", "False", FAILED_RS_CREATE,
                                                        f'Failed to create new replica set "{name}": {e.message}'))
                    await self._update_status(d)
                self.recorder.emit(d, "Warning", FAILED_RS_CREATE, f'Failed to create new replica set "{name}": {e.message}')
                raise
            try:
                existing = await self.client.get(REPLICASETS, name, d["metadata"].get("namespace", ""))
            except APIError as e2:
                raise Retry(f"replicaset {name} exists but cannot be read") from e2
            ref = controller_ref(existing)
            if ref is not None and ref.get("uid") == d["metadata"]["uid"] and equal_ignore_hash(
                    existing["spec"].get("template"), spec.get("template")):
                raise Retry(f"replicaset {name} exists; waiting for the cache") from e
            status["collisionCount"] = int(collisions or 0) + 1
            await self._update_status(d)
            raise Retry(f"hash collision on replicaset {name}") from e
        if new_count > 0:
            self.recorder.emit(d, NORMAL, "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {new_count}")
        await self._set_deployment_revision(d, revision)
        if has_progress_deadline(d):
            set_condition(status, new_condition("Progressing", "True", NEW_RS_CREATED, f'Created new replica set "{name}"'))
            await self._update_status(d)
        return created

    def _new_rs_replicas(self, d: Obj, all_rs: list[Obj], new_current: int) -> int:
        """``NewRSNewReplicas``."""
        want = replicas(d)
        if not is_rolling(d):
            return want
        current = sum(replicas(rs) for rs in all_rs)
        max_total = want + max_surge(d)
        if current >= max_total:
            return new_current
        return new_current + min(max_total - current, want - new_current)

    # --- sync (paused / scaling) -------------------------------------------------------------------------

    def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new_rs, old = self._split(d, rs_list)
        for rs in [*([new_rs] if new_rs else []), *old]:
            if replicas(rs) <= 0:
                continue
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is not None and desired != str(replicas(d)):
                return True
        return False

    async def _sync(self, d: Obj, rs_list: list[Obj]) -> Result | None:
        new_rs, old = await self._all_rs(d, rs_list, False)
        new_rs, old = await self._proportional_scale(d, new_rs, old)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old)
        return await self._sync_status(d, [*old, *([new_rs] if new_rs else [])], new_rs)

    async def _proportional_scale(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """``dc.scale``: one active ReplicaSet takes the whole size; a saturated new one
        clears the old; otherwise extra/missing replicas are spread proportionally.
        Returns ``(new_rs, old)`` as written."""
        done: dict[str, Obj] = {}
        await self._scale_to(d, new_rs, old, done)

        def fresh(rs: Obj) -> Obj:
            return done.get(rs["metadata"]["uid"], rs)

        return (fresh(new_rs) if new_rs else None), [fresh(rs) for rs in old]

    async def _scale_to(self, d: Obj, new_rs: Obj | None, old: list[Obj], done: dict[str, Obj]) -> None:
        async def scale(rs: Obj, n: int) -> None:
            done[rs["metadata"]["uid"]] = await self._scale(d, rs, n)

        want = replicas(d)
        everything = [*([new_rs] if new_rs else []), *old]
        active = [rs for rs in everything if replicas(rs) > 0]
        if not active:
            latest = new_rs or (sorted(old, key=_created)[-1] if old else None)
            if latest is not None:
                await scale(latest, want)
            return
        if len(active) == 1:
            await scale(active[0], want)
            return
        if (new_rs is not None and replicas(new_rs) == want and status_int(new_rs, "availableReplicas") == want
                and (new_rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS) == str(want)):  # IsSaturated
            for rs in old:
                if replicas(rs) > 0:
                    await scale(rs, 0)
            return
        if not is_rolling(d):
            return
        allowed = want + max_surge(d) if want > 0 else 0
        to_add = allowed - sum(replicas(rs) for rs in active)
        if to_add == 0:
            for rs in active:
                await scale(rs, replicas(rs))
            return
        if to_add > 0:  # ReplicaSetsBySizeNewer / ReplicaSetsBySizeOlder
            order = sorted(active, key=lambda r: (-replicas(r), -_created(r)[0], r["metadata"]["name"]))
        else:
            order = sorted(active, key=lambda r: (-replicas(r), _created(r)[0], r["metadata"]["name"]))
        sizes: dict[str, int] = {}
        added = 0
        for rs in order:
            share = self._proportion(d, rs, to_add, added)
            sizes[rs["metadata"]["uid"]] = replicas(rs) + share
            added += share
        first = order[0]["metadata"]["uid"]  # leftovers go to the largest
        sizes[first] = max(0, sizes[first] + to_add - added)
        for rs in order:
            await scale(rs, sizes[rs["metadata"]["uid"]])

    @staticmethod
    def _proportion(d: Obj, rs: Obj, to_add: int, added: int) -> int:
        """``GetProportion``: this ReplicaSet's share of ``to_add``, from its
        ``max-replicas`` annotation (the deployment size it was last scaled for)."""
        if replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        if replicas(d) == 0:
            fraction = -replicas(rs)
        else:
            try:
                annotated = int((rs["metadata"].get("annotations") or {})[MAX_REPLICAS])
            except (KeyError, ValueError):
                annotated = status_int(d, "replicas")
            target = replicas(rs) * (replicas(d) + max_surge(d)) / annotated if annotated else replicas(rs)
            fraction = int(math.floor(target + 0.5)) - replicas(rs)  # integer.RoundToInt32 (half away from zero; >= 0)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    async def _check_paused(self, d: Obj) -> None:
        if not has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == PAUSED
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_cond:
            set_condition(status, new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused"))
        elif not paused and paused_cond:
            set_condition(status, new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed"))
        else:
            return
        await self._update_status(d)

    # --- strategies ------------------------------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> Result | None:
        new_rs, old = await self._all_rs(d, rs_list, True)
        assert new_rs is not None
        all_rs = [*old, new_rs]
        want = replicas(d)
        if replicas(new_rs) != want:
            if replicas(new_rs) > want:
                new_rs = await self._scale(d, new_rs, want)
                return await self._sync_status(d, [*old, new_rs], new_rs, rollout=True)
            count = self._new_rs_replicas(d, all_rs, replicas(new_rs))
            if count != replicas(new_rs):
                new_rs = await self._scale(d, new_rs, count)
                return await self._sync_status(d, [*old, new_rs], new_rs, rollout=True)
        old, scaled = await self._reconcile_old(d, old, new_rs)
        if scaled:
            return await self._sync_status(d, [*old, new_rs], new_rs, rollout=True)
        if deployment_complete(d, self._calculate_status(d, [*old, new_rs], new_rs)):
            await self._cleanup(d, old)
        return await self._sync_status(d, [*old, new_rs], new_rs, rollout=True)

    async def _reconcile_old(self, d: Obj, old: list[Obj], new_rs: Obj) -> tuple[list[Obj], bool]:
        """``reconcileOldReplicaSets``: clean up unhealthy old replicas, then scale down within maxUnavailable."""
        if sum(replicas(rs) for rs in old) == 0:
            return old, False
        all_count = sum(replicas(rs) for rs in [*old, new_rs])
        min_available = replicas(d) - max_unavailable(d)
        new_unavailable = replicas(new_rs) - status_int(new_rs, "availableReplicas")
        max_down = all_count - min_available - new_unavailable
        if max_down <= 0:
            return old, False
        old = sorted(old, key=_created)
        total = 0
        for i, rs in enumerate(old):  # cleanupUnhealthyReplicas
            if total >= max_down:
                break
            if replicas(rs) == 0 or replicas(rs) == status_int(rs, "availableReplicas"):
                continue
            n = min(max_down - total, replicas(rs) - status_int(rs, "availableReplicas"))
            old[i] = await self._scale(d, rs, replicas(rs) - n)
            total += n
        # scaleDownOldReplicaSetsForRollingUpdate
        available = sum(status_int(rs, "availableReplicas") for rs in [*old, new_rs])
        scaled = 0
        if available > min_available:
            budget = available - min_available
            for i, rs in enumerate(old):
                if scaled >= budget:
                    break
                if replicas(rs) == 0:
                    continue
                n = min(replicas(rs), budget - scaled)
                old[i] = await self._scale(d, rs, replicas(rs) - n)
                scaled += n
        return old, total + scaled > 0

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> Result | None:
        new_rs, old = await self._all_rs(d, rs_list, False)
        scaled = False
        for i, rs in enumerate(old):
            if replicas(rs) > 0:
                old[i] = await self._scale(d, rs, 0)
                scaled = True
        if scaled:
            return await self._sync_status(d, [*old, *([new_rs] if new_rs else [])], new_rs, rollout=True)
        if self._old_pods_running(old):
            return await self._sync_status(d, [*old, *([new_rs] if new_rs else [])], new_rs, rollout=True)
        if new_rs is None:
            new_rs, old = await self._all_rs(d, rs_list, True)
            assert new_rs is not None
        if replicas(new_rs) != replicas(d):
            new_rs = await self._scale(d, new_rs, replicas(d))
        if deployment_complete(d, self._calculate_status(d, [*old, new_rs], new_rs)):
            await self._cleanup(d, old)
        return await self._sync_status(d, [*old, new_rs], new_rs, rollout=True)

    def _old_pods_running(self, old: list[Obj]) -> bool:
        if sum(status_int(rs, "replicas") for rs in old) > 0:
            return True
        uids = {rs["metadata"]["uid"] for rs in old}
        for uid in uids:
            for pod in self.pods.by_index("owner", uid):
                # as Kubernetes: a terminating pod still runs until its node confirms it gone
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        """``cleanupDeployment``: delete zero-sized old ReplicaSets beyond revisionHistoryLimit."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        alive.sort(key=lambda rs: (revision_of(rs), _created(rs)))
        for rs in alive[:diff]:
            if (status_int(rs, "replicas") != 0 or replicas(rs) != 0
                    or int(rs["metadata"].get("generation") or 1) > status_int(rs, "observedGeneration")):
                continue
            try:
                await self.client.delete(REPLICASETS, rs["metadata"]["name"], rs["metadata"].get("namespace", ""),
                                         preconditions={"uid": rs["metadata"]["uid"]})
            except APIError as e:
                if e.code not in (404, 409):
                    raise

    # --- status ---------------------------------------------------------------------------------------------

    def _calculate_status(self, d: Obj, all_rs: list[Obj], new_rs: Obj | None) -> Obj:
        available = sum(status_int(rs, "availableReplicas") for rs in all_rs)
        total = sum(replicas(rs) for rs in all_rs)
        old = d.get("status") or {}
        status: Obj = {
            "observedGeneration": int(d["metadata"].get("generation") or 1),
            "replicas": sum(status_int(rs, "replicas") for rs in all_rs),
            "updatedReplicas": status_int(new_rs, "replicas") if new_rs else 0,
            "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
        }
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = copy.deepcopy(old["conditions"])
        if available >= replicas(d) - max_unavailable(d):
            set_condition(status, new_condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability."))
        else:
            set_condition(status, new_condition("Available", "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability."))
        return status

    async def _sync_status(self, d: Obj, all_rs: list[Obj], new_rs: Obj | None, *, rollout: bool = False) -> Result | None:
        """``syncDeploymentStatus`` or, with ``rollout``, ``syncRolloutStatus`` (Progressing, failures, deadline)."""
        status = self._calculate_status(d, all_rs, new_rs)
        now = time.time()
        requeue: float | None = None
        if rollout:
            if not has_progress_deadline(d):
                remove_condition(status, "Progressing")
            cond = get_condition(status, "Progressing")
            complete = (status["replicas"] == status["updatedReplicas"] and cond is not None
                        and cond.get("reason") == NEW_RS_AVAILABLE)
            name = new_rs["metadata"]["name"] if new_rs else None
            if has_progress_deadline(d) and not complete:
                if deployment_complete(d, status):
                    msg = f'ReplicaSet "{name}" has successfully progressed.' if name else \
                        f'Deployment "{d["metadata"]["name"]}" has successfully progressed.'
                    set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg))
                elif deployment_progressing(d, status):
                    msg = f'ReplicaSet "{name}" is progressing.' if name else \
                        f'Deployment "{d["metadata"]["name"]}" is progressing.'
                    c = new_condition("Progressing", "True", RS_UPDATED, msg)
                    if cond is not None and cond.get("status") == "True":
                        c["lastTransitionTime"] = cond.get("lastTransitionTime", c["lastTransitionTime"])
                    remove_condition(status, "Progressing")
                    set_condition(status, c)
                elif deployment_timed_out(d, status, now):
                    msg = f'ReplicaSet "{name}" has timed out progressing.' if name else \
                        f'Deployment "{d["metadata"]["name"]}" has timed out progressing.'
                    set_condition(status, new_condition("Progressing", "False", TIMED_OUT, msg))
            failures = [c for rs in all_rs for c in (rs.get("status") or {}).get("conditions") or ()
                        if c.get("type") == "ReplicaFailure"]
            if failures:
                f = failures[0]
                set_condition(status, new_condition("ReplicaFailure", f.get("status", "True"), f.get("reason", ""), f.get("message", "")))
            else:
                remove_condition(status, "ReplicaFailure")
            cond = get_condition(status, "Progressing")
            if (has_progress_deadline(d) and cond is not None and cond.get("reason") not in (NEW_RS_AVAILABLE, TIMED_OUT)
                    and not deployment_complete(d, status)):
                since = parse_time(cond.get("lastUpdateTime")) or now
                requeue = max(0.5, since + int(d["spec"]["progressDeadlineSeconds"]) - now + 0.5)
        if status != (d.get("status") or {}):
            d["status"] = status
            await self._update_status(d)
        return Result(requeue_after=requeue) if requeue is not None else None
