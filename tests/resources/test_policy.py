"""policy/v1 PodDisruptionBudget: validation messages, budget arithmetic, table row."""

from __future__ import annotations

from typing import Any

import pytest

from cloudlet.resources.policy import PDBS, pdb_selects, scaled_value
from cloudlet.resources.tables import TABLES

from ._helpers import check


def pdb(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def test_valid_budgets() -> None:
    sel = {"matchLabels": {"app": "web"}}
    for spec in ({"minAvailable": 2, "selector": sel}, {"maxUnavailable": "25%", "selector": sel},
                 {"minAvailable": "100%", "selector": {}}, {}, {"maxUnavailable": 0, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
                 {"minAvailable": 1, "unhealthyPodEvictionPolicy": "IfHealthyBudget"}):
        assert check(PDBS, pdb(**spec)) == [], spec


@pytest.mark.parametrize(("spec", "message"), [
    ({"minAvailable": 1, "maxUnavailable": 1}, "spec: Invalid value: "),
    ({"minAvailable": -1}, "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"),
    ({"maxUnavailable": "101%"}, 'spec.maxUnavailable: Invalid value: "101%": must not be greater than 100%'),
    ({"minAvailable": "half"}, 'spec.minAvailable: Invalid value: "half": a valid percent string must be'),
    ({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"},
     'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget"'),
    ({"minAvailable": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     "spec.selector.matchExpressions[0].values: Required value"),
    ({"minAvailable": True}, "spec.minAvailable: Invalid value: true: must be of type integer or string"),
])
def test_invalid_budgets(spec: dict[str, Any], message: str) -> None:
    errs = check(PDBS, pdb(**spec))
    assert any(e.startswith(message) for e in errs), errs


def test_both_set_message_and_status_rules() -> None:
    errs = check(PDBS, pdb(minAvailable=1, maxUnavailable=1))
    assert errs[0].endswith("minAvailable and maxUnavailable cannot be both set")
    old = pdb(minAvailable=1)
    new = pdb(minAvailable=1)
    new["status"] = {"disruptionsAllowed": -1, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0,
                     "conditions": [{"type": "DisruptionAllowed", "status": "Maybe", "reason": "9bad"}]}
    errs = check(PDBS, new, old)
    assert "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0" in errs
    assert any(e.startswith('status.conditions[0].status: Unsupported value: "Maybe"') for e in errs)
    assert "status.conditions[0].lastTransitionTime: Required value: must be set" in errs
    assert any(e.startswith('status.conditions[0].reason: Invalid value: "9bad"') for e in errs)


def test_registration() -> None:
    assert (PDBS.api_version, PDBS.kind, PDBS.short_names, PDBS.subresources) == (
        "policy/v1", "PodDisruptionBudget", ("pdb",), ("status",))
    assert PDBS.namespaced and PDBS.has_status


def test_scaled_values_round_like_intstr() -> None:
    assert scaled_value(3, 10, True) == 3
    assert scaled_value("50%", 5, True) == 3
    assert scaled_value("50%", 5, False) == 2
    assert scaled_value("30%", 4, True) == 2
    assert scaled_value("0%", 7, True) == 0
    with pytest.raises(ValueError):
        scaled_value("x%", 4, True)


def test_selector_semantics() -> None:
    assert not pdb_selects(pdb(), {"app": "web"})  # no selector: nothing
    assert pdb_selects(pdb(selector={}), {"anything": "x"})  # {}: everything (policy/v1)
    assert pdb_selects(pdb(selector={"matchLabels": {"app": "web"}}), {"app": "web", "x": "y"})
    assert not pdb_selects(pdb(selector={"matchLabels": {"app": "web"}}), {"app": "db"})


def test_table_row() -> None:
    columns, row = TABLES["policy/poddisruptionbudgets"]
    assert [(c.name, c.type) for c in columns] == [("Name", "string"), ("Min Available", "string"),
                                                  ("Max Unavailable", "string"), ("Allowed Disruptions", "integer"),
                                                  ("Age", "string")]
    obj = pdb(minAvailable=3)
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"] = {"disruptionsAllowed": 1}
    assert row(obj, now=1767225600 + 90) == ["web", "3", "N/A", 1, "90s"]
    obj = pdb(maxUnavailable="25%")
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    assert row(obj, now=1767225600 + 7200) == ["web", "N/A", "25%", 0, "120m"]
