"""The ``pods/eviction`` subresource: delete a pod only if its disruption budget allows.

``POST /api/v1/namespaces/{ns}/pods/{name}/eviction`` with a policy/v1 (or
policy/v1beta1) ``Eviction`` — ``metadata.name`` = the pod, optional
``deleteOptions`` — is what ``kubectl drain`` sends for every pod it moves.
kube-apiserver's ``EvictionREST`` semantics:

* A pod that is ``Pending``, ``Succeeded``, ``Failed`` or already terminating
  is deleted without looking at budgets (it is not serving; a terminal pod
  has disrupted already). Unless the caller pinned a ``resourceVersion``,
  a live pod's delete carries its current ``resourceVersion`` as a
  precondition so it cannot race a change of state; conflicts are retried.
* Otherwise the PodDisruptionBudgets of the namespace whose selector picks the
  pod are consulted. More than one: a ``500`` Status ``This pod has more than
  one PodDisruptionBudget, which the eviction subresource does not support.``
  None: the pod is deleted.
* One budget: an unready pod is deleted without spending the budget when the
  budget says ``unhealthyPodEvictionPolicy: AlwaysAllow``, or when the
  application is healthy enough already (``currentHealthy >= desiredHealthy > 0``,
  the ``IfHealthyBudget`` default); its delete is pinned to the pod's
  ``resourceVersion`` so a pod turning ready meanwhile gets a 429 instead.
  Every other eviction must win the budget: in one compare-and-swap write of
  the budget's status, ``disruptionsAllowed`` is decremented and the pod is
  recorded in ``status.disruptedPods`` (so the disruption controller does not
  count it as healthy before it is gone); lost races re-read and retry. A
  budget whose status is older than its spec (``observedGeneration <
  generation``) answers 429 ``... is still being processed by the server.``
  with ``Retry-After: 10``; one with ``disruptionsAllowed == 0`` answers 429
  TooManyRequests ``Cannot evict pod as it would violate the pod's disruption
  budget.`` with the cause ``DisruptionBudget``: ``The disruption budget <pdb>
  needs <desired> healthy pods and has <current> currently``.
* Before the delete the pod gets the condition ``DisruptionTarget=True``
  (reason ``EvictionByEvictionAPI``, message ``Eviction API: evicting``).
  The delete honours the Eviction's ``deleteOptions`` (grace period,
  preconditions, propagation) — graceful as any pod delete. ``dryRun`` (the
  query parameter or ``deleteOptions.dryRun``, which must agree) checks and
  reports without writing either object.

Success is a ``Status`` Success with code 201. :func:`evict_pod` is the same
operation for in-process callers. Writes go through
:meth:`~cloudlet.api.objects.ObjectAPI.update_with` (the system update path).
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from cloudlet.api import errors
from cloudlet.api.handlers import ResourceHandlers, Target, respond
from cloudlet.api.objects import ObjectAPI
from cloudlet.resources.pod import PODS
from cloudlet.resources.policy import (
    ALWAYS_ALLOW,
    DISRUPTION_BUDGET_CAUSE,
    PDBS,
    now_rfc3339,
    pdb_selects,
    set_disruption_allowed_condition,
)
from cloudlet.store.store import Obj

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
EVICTIONS_RETRY = 20  # Kubernetes' EvictionsRetry steps
MAX_DISRUPTED_POD_SIZE = 2000
TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_PDBS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."


def too_many_requests(cause: str, retry_after: int = 0) -> errors.APIError:
    details: Obj = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    headers: dict[str, str] = {}
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return errors.APIError(429, "TooManyRequests", TOO_MANY_REQUESTS, details, headers)


def _still_processing(pdb_name: str) -> errors.APIError:
    return too_many_requests(f"The disruption budget {pdb_name} is still being processed by the server.", 10)


def _is_ready(pod: Obj) -> bool:
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def can_ignore_pdb(pod: Obj) -> bool:
    """Pods that are not serving (Pending, terminal, terminating) are evicted without a budget."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def _enforce_resource_version(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _rv_unset(options: Obj) -> bool:
    return not (options.get("preconditions") or {}).get("resourceVersion")


def _with_rv(options: Obj, rv: str) -> Obj:
    out = copy.deepcopy(options)
    pre = out.get("preconditions") if isinstance(out.get("preconditions"), dict) else {}
    out["preconditions"] = {**pre, "resourceVersion": rv}
    return out


def _check_delete_options(options: Any) -> Obj:
    """The Eviction's ``deleteOptions`` must have DeleteOptions' Go types (else 400, a decode error)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise errors.bad_request("json: cannot unmarshal into Go struct field Eviction.deleteOptions of type v1.DeleteOptions")
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise errors.bad_request("json: cannot unmarshal into Go struct field DeleteOptions.gracePeriodSeconds of type int64")
    pre = options.get("preconditions")
    if pre is not None and not isinstance(pre, dict):
        raise errors.bad_request("json: cannot unmarshal into Go struct field DeleteOptions.preconditions of type v1.Preconditions")
    dry = options.get("dryRun")
    if dry is not None and (not isinstance(dry, list) or any(d != "All" for d in dry)):
        raise errors.bad_request('Invalid dryRun parameter: supported values: "All"')
    return dict(options)


def _propagate_dry_run(eviction: Obj, dry_run: list[str]) -> Obj:
    """The delete options of the request: the Eviction's, with the query's dryRun (they must agree)."""
    options = _check_delete_options(eviction.get("deleteOptions"))
    if not options.get("dryRun"):
        if dry_run:
            options["dryRun"] = list(dry_run)
        return options
    if dry_run and list(dry_run) != list(options["dryRun"]):
        raise errors.bad_request(f"Non-matching dry-run options in request and content: {dry_run} and {options['dryRun']}")
    return options


def _matching_pdbs(api: ObjectAPI, pod: Obj) -> list[Obj]:
    namespace = pod["metadata"].get("namespace", "")
    labels = pod["metadata"].get("labels") or {}
    return [p for p in api.list(PDBS, namespace).items if pdb_selects(p, labels)]


async def _check_and_decrement(api: ObjectAPI, namespace: str, pod_name: str, pdb_name: str, dry_run: bool) -> None:
    """Spend one disruption of ``pdb_name`` for ``pod_name`` (one CAS write of its status), or raise 429/403."""

    def spend(pdb: Obj) -> Obj:
        meta, status = pdb["metadata"], pdb.setdefault("status", {})
        if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
            raise _still_processing(pdb_name)
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise errors.forbidden("poddisruptionbudget", "policy", pdb_name, "pdb disruptions allowed is negative")
        disrupted = status.get("disruptedPods") or {}
        if len(disrupted) > MAX_DISRUPTED_POD_SIZE:
            raise errors.forbidden("poddisruptionbudget", "policy", pdb_name,
                                   "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
        if allowed == 0:
            raise too_many_requests(f"The disruption budget {pdb_name} needs {int(status.get('desiredHealthy') or 0)} "
                                    f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently")
        status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            set_disruption_allowed_condition(status)
        status["disruptedPods"] = {**disrupted, pod_name: now_rfc3339()}
        return pdb

    try:
        await api.update_with(PDBS, namespace, pdb_name, spend, dry_run=dry_run, retries=EVICTIONS_RETRY)
    except errors.APIError as e:
        if e.code == 409 and e.reason == "Conflict":
            raise errors.timeout(f"couldn't update PodDisruptionBudget \"{pdb_name}\" due to conflicts") from e
        raise


async def _add_condition_and_delete(api: ObjectAPI, namespace: str, name: str, options: Obj) -> None:
    """Mark the pod ``DisruptionTarget`` (checking the preconditions against the latest pod), then delete it."""
    dry_run = bool(options.get("dryRun"))
    if not dry_run:
        pre = options.get("preconditions") or {}

        def mark(pod: Obj) -> Obj:
            meta = pod["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise errors.conflict("pods", "", name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                                        f"UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise errors.conflict("pods", "", name, "Precondition failed: ResourceVersion in precondition: "
                                                        f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                                        f"{meta.get('resourceVersion')}")
            _set_disruption_target(pod)
            return pod

        updated = await api.update_with(PODS, namespace, name, mark, retries=1 if pre.get("resourceVersion") else 16)
        if pre.get("resourceVersion"):
            options = {**options, "preconditions": {**pre, "resourceVersion": updated["metadata"]["resourceVersion"]}}
    await api.delete(PODS, namespace, name, options, dry_run=dry_run)


def _set_disruption_target(pod: Obj) -> None:
    conds = pod.setdefault("status", {}).setdefault("conditions", [])
    cond = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_rfc3339(),
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}
    for i, c in enumerate(conds):
        if isinstance(c, dict) and c.get("type") == "DisruptionTarget":
            if c.get("status") == "True":
                cond["lastTransitionTime"] = c.get("lastTransitionTime") or cond["lastTransitionTime"]
            conds[i] = cond
            return
    conds.append(cond)


def _success() -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def evict_pod(api: ObjectAPI, namespace: str, name: str, eviction: Any, *, dry_run: list[str] | None = None) -> Obj:
    """Evict pod ``namespace/name`` as ``eviction`` asks. Returns the ``Status`` to answer
    (Success 201, or the 500 Failure for several budgets); raises :class:`APIError`
    for 400/404/409/429 outcomes."""
    if not isinstance(eviction, dict):
        raise errors.bad_request("not a Eviction object: expected a JSON object")
    api_version, kind = eviction.get("apiVersion"), eviction.get("kind")
    if kind not in (None, "", "Eviction") or api_version not in (None, "", *EVICTION_VERSIONS):
        raise errors.bad_request(f"not a Eviction object: {api_version or ''}, Kind={kind or ''}")
    meta = eviction.get("metadata") if isinstance(eviction.get("metadata"), dict) else {}
    if (meta.get("name") or "") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    original = _propagate_dry_run(eviction, dry_run or [])
    is_dry = bool(original.get("dryRun"))
    retry_conflicts = _rv_unset(original)

    pod: Obj = {}
    for attempt in range(EVICTIONS_RETRY):
        pod = api.get(PODS, namespace, name)
        if not can_ignore_pdb(pod):
            break
        options = original
        if _enforce_resource_version(pod) and _rv_unset(original):
            options = _with_rv(original, pod["metadata"]["resourceVersion"])
        try:
            await _add_condition_and_delete(api, namespace, name, options)
        except errors.APIError as e:
            if e.code == 409 and e.reason == "Conflict" and retry_conflicts and attempt < EVICTIONS_RETRY - 1:
                continue
            raise
        return _success()

    unhealthy_ok = False
    pdb_name = ""
    pdbs = _matching_pdbs(api, pod)
    if len(pdbs) > 1:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": MULTIPLE_PDBS, "code": 500}
    if pdbs:
        pdb = pdbs[0]
        pdb_name = pdb["metadata"]["name"]
        status = pdb.get("status") or {}
        if not _is_ready(pod):
            if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == ALWAYS_ALLOW:
                unhealthy_ok = True
            elif int(status.get("currentHealthy") or 0) >= int(status.get("desiredHealthy") or 0) > 0:
                unhealthy_ok = True
        if not unhealthy_ok:
            await _check_and_decrement(api, namespace, name, pdb_name, is_dry)

    options = _with_rv(original, pod["metadata"]["resourceVersion"]) if unhealthy_ok else original
    try:
        await _add_condition_and_delete(api, namespace, name, options)
    except errors.APIError as e:
        if e.code == 409 and e.reason == "Conflict" and unhealthy_ok and _rv_unset(original):
            # the pod changed (perhaps became ready) since the budget was read: let the client retry
            raise too_many_requests(f"The disruption budget {pdb_name} is still being processed by the server.", 10) from e
        raise
    return _success()


def _dry_run_param(request: web.Request) -> list[str]:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise errors.bad_request(f'Invalid dryRun parameter: unsupported dry run value "{v}"; supported values: "All"')
    return list(values)


def install(handlers: ResourceHandlers) -> None:
    """Serve ``pods/eviction`` through ``handlers``."""

    async def sub(t: Target, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise errors.method_not_allowed()
        dry_run = _dry_run_param(request)
        body, _ = await handlers.body(request)
        status = await evict_pod(handlers.api, t.namespace, t.name, body, dry_run=dry_run)
        return respond(request, status, int(status.get("code") or 201))

    handlers.subresource_handlers[("/pods", "eviction")] = sub
