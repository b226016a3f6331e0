"""Validation of the scheduling parts of a PodSpec: tolerations, taints, affinity,
topology spread constraints. Also used by Node (taints) and RuntimeClass
(scheduling.tolerations).
"""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid_value,
    not_supported,
    required,
)
from cloudlet.resources._util import Errors, as_dict, as_list, as_str, child, index, is_int
from cloudlet.resources.validation import (
    is_valid_label_value,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_label_name,
    validate_label_selector,
)

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_taint_effect(effect: Any, allow_empty: bool, path: str) -> Errors:
    if not allow_empty and effect in (None, ""):
        return [required(path, "")]
    if effect not in TAINT_EFFECTS:
        return [not_supported(path, effect, TAINT_EFFECTS)]
    return []


def validate_tolerations(tolerations: Any, path: str) -> Errors:
    errs: Errors = []
    for i, tol in enumerate(as_list(tolerations)):
        p, tol = index(path, i), as_dict(tol)
        k, op = as_str(tol.get("key")), tol.get("operator") or ""
        value, effect = tol.get("value") or "", tol.get("effect") or ""
        if k:
            errs += validate_label_name(k, child(p, "key"))
        if not k and op != "Exists":
            errs.append(invalid_value(child(p, "operator"), op,
                                      'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid_value(child(p, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = is_valid_label_value(as_str(value))
            if msgs:
                errs.append(invalid_value(child(p, "operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(invalid_value(child(p, "operator"), value, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(p, "operator"), op, ("Equal", "Exists")))
        if effect:
            errs += validate_taint_effect(effect, True, child(p, "effect"))
    return errs


def validate_taints(taints: Any, path: str) -> Errors:
    """Node taints: key is a label name, value a label value, effect required, (key, effect) unique."""
    errs: Errors = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(as_list(taints)):
        p, taint = index(path, i), as_dict(taint)
        k, value, effect = as_str(taint.get("key")), as_str(taint.get("value")), taint.get("effect")
        errs += validate_label_name(k, child(p, "key"))
        msgs = is_valid_label_value(value)
        if msgs:
            errs.append(invalid_value(child(p, "value"), value, ";".join(msgs)))
        errs += validate_taint_effect(effect, False, child(p, "effect"))
        if (k, as_str(effect)) in seen:
            errs.append(FieldError("Duplicate", p, taint, "taints must be unique by key and effect pair"))
            continue
        seen.add((k, as_str(effect)))
    return errs


def _node_selector_requirement(req: Any, path: str, check_values: bool) -> Errors:
    req = as_dict(req)
    errs: Errors = []
    op, values = req.get("operator"), as_list(req.get("values"))
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden_field(child(path, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(required(child(path, "values"), "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(invalid_value(child(path, "operator"), op if op is not None else "", "not a valid selector operator"))
    errs += validate_label_name(as_str(req.get("key")), child(path, "key"))
    if check_values:
        for j, value in enumerate(values):
            errs += [invalid_value(index(child(path, "values"), j), value, m) for m in is_valid_label_value(as_str(value))]
    return errs


def _node_field_requirement(req: Any, path: str) -> Errors:
    req = as_dict(req)
    errs: Errors = []
    values = as_list(req.get("values"))
    if req.get("operator") in ("In", "NotIn"):
        if len(values) != 1:
            errs.append(required(child(path, "values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
    else:
        errs.append(invalid_value(child(path, "operator"), req.get("operator") or "", "not a valid selector operator"))
    if req.get("key") != "metadata.name":
        errs.append(invalid_value(child(path, "key"), req.get("key") or "", "not a valid field selector key"))
    else:
        for j, value in enumerate(values):
            errs += [invalid_value(index(child(path, "values"), j), value, m) for m in name_is_dns_subdomain(as_str(value))]
    return errs


def validate_node_selector_term(term: Any, path: str, check_values: bool) -> Errors:
    term = as_dict(term)
    errs: Errors = []
    for j, req in enumerate(as_list(term.get("matchExpressions"))):
        errs += _node_selector_requirement(req, index(child(path, "matchExpressions"), j), check_values)
    for j, req in enumerate(as_list(term.get("matchFields"))):
        errs += _node_field_requirement(req, index(child(path, "matchFields"), j))
    return errs


def validate_node_selector(selector: Any, path: str) -> Errors:
    terms = as_list(as_dict(selector).get("nodeSelectorTerms"))
    tpath = child(path, "nodeSelectorTerms")
    if not terms:
        return [required(tpath, "must have at least one node selector term")]
    errs: Errors = []
    for i, term in enumerate(terms):
        errs += validate_node_selector_term(term, index(tpath, i), True)
    return errs


def _weight(value: Any, path: str) -> Errors:
    if not is_int(value) or not 1 <= value <= 100:
        return [invalid_value(path, value, "must be in the range 1-100")]
    return []


def _pod_affinity_term(term: Any, path: str) -> Errors:
    term = as_dict(term)
    errs = validate_label_selector(term.get("labelSelector"), child(path, "labelSelector"))
    errs += validate_label_selector(term.get("namespaceSelector"), child(path, "namespaceSelector"))
    for ns in as_list(term.get("namespaces")):
        errs += [invalid_value(child(path, "namespace"), ns, m) for m in name_is_dns_label(as_str(ns))]
    for name in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = as_list(term.get(name))
        if keys and term.get("labelSelector") is None:
            errs.append(forbidden_field(child(path, name), "must not be specified when labelSelector is not set"))
            continue
        for i, k in enumerate(keys):
            errs += validate_label_name(as_str(k), index(child(path, name), i))
    topology_key = as_str(term.get("topologyKey"))
    if not topology_key:
        errs.append(required(child(path, "topologyKey"), "can not be empty"))
    return errs + validate_label_name(topology_key, child(path, "topologyKey"))


def _pod_affinity(affinity: Any, path: str) -> Errors:
    affinity = as_dict(affinity)
    errs: Errors = []
    req_path = child(path, "requiredDuringSchedulingIgnoredDuringExecution")
    for i, term in enumerate(as_list(affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))):
        errs += _pod_affinity_term(term, index(req_path, i))
    pref_path = child(path, "preferredDuringSchedulingIgnoredDuringExecution")
    for i, weighted in enumerate(as_list(affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        weighted = as_dict(weighted)
        errs += _weight(weighted.get("weight"), child(index(pref_path, i), "weight"))
        errs += _pod_affinity_term(weighted.get("podAffinityTerm"), child(index(pref_path, i), "podAffinityTerm"))
    return errs


def validate_affinity(affinity: Any, path: str) -> Errors:
    if affinity is None:
        return []
    affinity = as_dict(affinity)
    errs: Errors = []
    node = affinity.get("nodeAffinity")
    if node is not None:
        node, npath = as_dict(node), child(path, "nodeAffinity")
        if node.get("requiredDuringSchedulingIgnoredDuringExecution") is not None:
            errs += validate_node_selector(node["requiredDuringSchedulingIgnoredDuringExecution"],
                                           child(npath, "requiredDuringSchedulingIgnoredDuringExecution"))
        pref = child(npath, "preferredDuringSchedulingIgnoredDuringExecution")
        for i, term in enumerate(as_list(node.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            term = as_dict(term)
            errs += _weight(term.get("weight"), child(index(pref, i), "weight"))
            errs += validate_node_selector_term(term.get("preference"), child(index(pref, i), "preference"), False)
    for name in ("podAffinity", "podAntiAffinity"):
        if affinity.get(name) is not None:
            errs += _pod_affinity(affinity[name], child(path, name))
    return errs


def validate_topology_spread(constraints: Any, path: str) -> Errors:
    errs: Errors = []
    items = [as_dict(c) for c in as_list(constraints)]
    for i, c in enumerate(items):
        p = index(path, i)
        skew = c.get("maxSkew")
        if not is_int(skew) or skew <= 0:
            errs.append(invalid_value(child(p, "maxSkew"), skew, "must be greater than zero"))
        if not c.get("topologyKey"):
            errs.append(required(child(p, "topologyKey"), "can not be empty"))
        action = c.get("whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(child(p, "whenUnsatisfiable"), action or "", ("DoNotSchedule", "ScheduleAnyway")))
        for later in items[i + 1:]:
            if (later.get("topologyKey"), later.get("whenUnsatisfiable")) == (c.get("topologyKey"), action):
                errs.append(duplicate(child(p, "{topologyKey, whenUnsatisfiable}"), f"{{{as_str(c.get('topologyKey'))}, {as_str(action)}}}"))
                break
        min_domains = c.get("minDomains")
        if min_domains is not None:
            if not is_int(min_domains) or min_domains <= 0:
                errs.append(invalid_value(child(p, "minDomains"), min_domains, "must be greater than zero"))
            if action != "DoNotSchedule":
                errs.append(invalid_value(child(p, "minDomains"), min_domains,
                                          f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {as_str(action)}"))
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            if c.get(policy) is not None and c[policy] not in ("Honor", "Ignore"):
                errs.append(not_supported(child(p, policy), c[policy], ("Honor", "Ignore")))
        keys = as_list(c.get("matchLabelKeys"))
        if keys and c.get("labelSelector") is None:
            errs.append(forbidden_field(child(p, "matchLabelKeys"), "must not be specified when labelSelector is not set"))
        for j, k in enumerate(keys):
            errs += validate_label_name(as_str(k), index(child(p, "matchLabelKeys"), j))
        errs += validate_label_selector(c.get("labelSelector"), child(p, "labelSelector"))
    return errs
