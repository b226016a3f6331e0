"""policy/v1 PodDisruptionBudget: validation, registration, budget arithmetic.

A PodDisruptionBudget (``pdb``) limits how many of the pods its
``spec.selector`` picks may be voluntarily disrupted (evicted) at once. Kubernetes'
rules, as kube-apiserver applies them to policy/v1:

* ``minAvailable`` and ``maxUnavailable`` are mutually exclusive; each is a
  non-negative integer or a percentage no greater than ``100%``. Neither is
  defaulted in policy/v1 (a budget with neither allows no disruption).
* ``selector`` is a label selector: ``null`` selects no pods, ``{}`` selects
  every pod of the namespace (policy/v1 semantics).
* ``unhealthyPodEvictionPolicy`` is ``IfHealthyBudget`` or ``AlwaysAllow``
  (unset behaves as ``IfHealthyBudget``).
* The spec is mutable; ``metadata.generation`` moves with it. The status
  (``disruptionsAllowed``, ``currentHealthy``, ``desiredHealthy``,
  ``expectedPods`` — never negative — ``observedGeneration``,
  ``disruptedPods`` and the ``DisruptionAllowed`` condition) is written
  through ``/status`` by the disruption controller and by the eviction
  subresource.

The helpers at the bottom (:func:`scaled_value`, :func:`pdb_selects`,
:func:`set_disruption_allowed_condition`) are shared by the disruption
controller (:mod:`cloudlet.controllers.disruption`) and the eviction
subresource (:mod:`cloudlet.api.eviction`), so both read a budget the same way.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from cloudlet.api.errors import invalid_value, not_supported, required
from cloudlet.resources._schema import (
    INT,
    IS,
    LABEL_SELECTOR,
    OBJ,
    S,
    arr,
    kind_schema,
    mapof,
    with_types,
)
from cloudlet.resources._util import Errors, Obj, as_dict, as_list, child, index, is_int, unique
from cloudlet.resources.apps import validate_positive_int_or_percent
from cloudlet.resources.registry import REGISTRY, ResourceType
from cloudlet.resources.validation import (
    is_qualified_name,
    meta_of,
    name_is_dns_subdomain,
    selector_matches,
    validate_label_selector,
    validate_nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)

IF_HEALTHY_BUDGET = "IfHealthyBudget"
ALWAYS_ALLOW = "AlwaysAllow"
UNHEALTHY_POD_EVICTION_POLICIES = (ALWAYS_ALLOW, IF_HEALTHY_BUDGET)  # sorted, as Kubernetes lists them

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"

_CONDITION_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_CONDITION_STATUSES = ("False", "True", "Unknown")
_MAX_REASON = 1024
_MAX_MESSAGE = 32768

# --- validation --------------------------------------------------------------------------


def _not_more_than_100_percent(value: Any, path: str) -> Errors:
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit() and int(value[:-1]) > 100:
        return [invalid_value(path, value, "must not be greater than 100%")]
    return []


def validate_conditions(conditions: Any, path: str) -> Errors:
    """``metav1.Condition`` entries (apimachinery's ValidateConditions)."""
    errs: Errors = []
    for i, cond in enumerate(as_list(conditions)):
        p = index(path, i)
        cond = as_dict(cond)
        ctype = cond.get("type")
        if not ctype:
            errs.append(required(child(p, "type"), "must be set"))
        else:
            errs += [invalid_value(child(p, "type"), ctype, m) for m in is_qualified_name(str(ctype))]
        status = cond.get("status")
        if status not in _CONDITION_STATUSES:
            errs.append(not_supported(child(p, "status"), status, _CONDITION_STATUSES))
        errs += validate_nonnegative(cond.get("observedGeneration"), child(p, "observedGeneration"))
        if not cond.get("lastTransitionTime"):
            errs.append(required(child(p, "lastTransitionTime"), "must be set"))
        reason = cond.get("reason")
        if not reason:
            errs.append(required(child(p, "reason"), "must be set"))
        else:
            reason = str(reason)
            if not _CONDITION_REASON.match(reason):
                errs.append(invalid_value(child(p, "reason"), reason,
                                          "a condition reason must start with alphabetic character, optionally followed by "
                                          "a string of alphanumeric characters or '_,:', and must end with an alphanumeric "
                                          "character or '_' (regex used for validation is "
                                          "'[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')"))
            if len(reason) > _MAX_REASON:
                errs.append(invalid_value(child(p, "reason"), reason, f"may not be more than {_MAX_REASON} bytes"))
        message = cond.get("message")
        if isinstance(message, str) and len(message) > _MAX_MESSAGE:
            errs.append(invalid_value(child(p, "message"), message, f"may not be more than {_MAX_MESSAGE} bytes"))
    return errs


def validate_pdb_spec(spec: Obj, path: str = "spec") -> Errors:
    errs: Errors = []
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errs.append(invalid_value(path, spec, "minAvailable and maxUnavailable cannot be both set"))
    for name, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errs += validate_positive_int_or_percent(value, child(path, name))
            errs += _not_more_than_100_percent(value, child(path, name))
    errs += validate_label_selector(spec.get("selector"), child(path, "selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errs.append(not_supported(child(path, "unhealthyPodEvictionPolicy"), policy, UNHEALTHY_POD_EVICTION_POLICIES))
    return errs


def validate_pdb_status(status: Obj, path: str = "status") -> Errors:
    errs = validate_conditions(status.get("conditions"), child(path, "conditions"))
    for name in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods", "observedGeneration"):
        errs += validate_nonnegative(status.get(name), child(path, name))
    return errs


def validate_pdb(obj: Obj, old: Obj | None) -> Errors:
    meta = meta_of(obj)
    errs = validate_object_meta(meta, True, name_check=name_is_dns_subdomain)
    if old is not None:
        errs += validate_object_meta_update(meta, meta_of(old))
        errs += validate_pdb_status(as_dict(obj.get("status")))
    errs += validate_pdb_spec(as_dict(obj.get("spec")))
    return unique(errs)


SCHEMA = kind_schema(
    spec={"minAvailable": IS, "maxUnavailable": IS, "selector": LABEL_SELECTOR, "unhealthyPodEvictionPolicy": S},
    status={"observedGeneration": INT, "disruptedPods": mapof(S), "disruptionsAllowed": INT,
            "currentHealthy": INT, "desiredHealthy": INT, "expectedPods": INT, "conditions": arr(OBJ)},
)

PDBS = REGISTRY.add(ResourceType(
    group="policy", version="v1", kind="PodDisruptionBudget", plural="poddisruptionbudgets",
    singular="poddisruptionbudget", namespaced=True, short_names=("pdb",), subresources=("status",),
    validate=with_types(SCHEMA, validate_pdb),
))

# --- budget arithmetic shared by the controller and the eviction subresource -------------


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr's GetScaledValueFromIntOrPercent: an int as is, ``N%`` of ``total``
    rounded up (or down). Raises ValueError for anything else."""
    if is_int(value):
        return int(value)
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")


def pdb_selects(pdb: Obj, labels: Any) -> bool:
    """Whether ``pdb`` covers a pod with ``labels`` (null selector: none; ``{}``: all)."""
    return selector_matches(as_dict(pdb.get("spec")).get("selector"), labels)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(status: Obj, condition: Obj) -> None:
    """apimachinery's SetStatusCondition: replace the condition of the same type,
    moving ``lastTransitionTime`` only when ``status`` changes."""
    conds = [c for c in as_list(status.get("conditions")) if isinstance(c, dict)]
    for i, c in enumerate(conds):
        if c.get("type") == condition["type"]:
            merged = dict(c)
            if c.get("status") != condition["status"]:
                merged["lastTransitionTime"] = condition.get("lastTransitionTime") or now_rfc3339()
            for f in ("status", "reason", "message", "observedGeneration"):
                merged[f] = condition.get(f, "" if f in ("reason", "message") else 0)
            conds[i] = merged
            status["conditions"] = conds
            return
    conds.append({"lastTransitionTime": now_rfc3339(), "message": "", "observedGeneration": 0, **condition})
    status["conditions"] = conds


def set_disruption_allowed_condition(status: Obj) -> None:
    """``DisruptionAllowed``: True/SufficientPods when disruptions are allowed, else False/InsufficientPods."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    set_condition(status, {
        "type": DISRUPTION_ALLOWED, "status": "True" if allowed else "False",
        "reason": SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS, "message": "",
        "observedGeneration": int(status.get("observedGeneration") or 0),
    })


def conditions_up_to_date(pdb: Obj) -> bool:
    status = as_dict(pdb.get("status"))
    cond = next((c for c in as_list(status.get("conditions")) if isinstance(c, dict) and c.get("type") == DISRUPTION_ALLOWED), None)
    if cond is None or int(status.get("observedGeneration") or 0) != int(meta_of(pdb).get("generation") or 0):
        return False
    if int(status.get("disruptionsAllowed") or 0) > 0:
        return cond.get("status") == "True" and cond.get("reason") == SUFFICIENT_PODS
    return cond.get("status") == "False" and cond.get("reason") == INSUFFICIENT_PODS
