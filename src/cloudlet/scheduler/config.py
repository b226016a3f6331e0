"""Scheduler profiles: which plugins run, with which score weights.

The default profile is Kubernetes' own choice (filters NodeUnschedulable,
NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit; scores
LeastAllocated 1, BalancedAllocation 1, NodeAffinity 2, TaintToleration 3).
A config file (YAML) narrows or extends it::

    plugins:
      filter:
        disabled: [NodePorts]          # or "*" for all
        enabled: [my.module:MyFilter]  # built-in name or "module:Class"
      score:
        disabled: ["*"]
        enabled:
          - {name: LeastAllocated, weight: 2}

A ``module:Class`` plugin is instantiated with no arguments and must follow
the Protocols in :mod:`cloudlet.scheduler.framework`. Unknown names raise
:class:`ValueError` when the profile is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloudlet.scheduler.filters import (
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeResourcesFit,
    NodeUnschedulable,
    TaintToleration,
)
from cloudlet.scheduler.scores import BalancedAllocation, LeastAllocated

BUILTIN: dict[str, type] = {
    c.name: c  # type: ignore[attr-defined]
    for c in (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
              LeastAllocated, BalancedAllocation)
}
DEFAULT_FILTERS = ("NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit")
DEFAULT_SCORES = (("LeastAllocated", 1), ("BalancedAllocation", 1), ("NodeAffinity", 2), ("TaintToleration", 3))


@dataclass
class Profile:
    """Plugin instances per extension point; one instance per name is shared."""

    filters: list[Any] = field(default_factory=list)
    scores: list[tuple[Any, int]] = field(default_factory=list)

    @property
    def plugins(self) -> list[Any]:
        seen: dict[str, Any] = {}
        for p in [*self.filters, *(s for s, _ in self.scores)]:
            seen.setdefault(p.name, p)
        return list(seen.values())

    def events_of(self, name: str) -> frozenset[str]:
        for p in self.plugins:
            if p.name == name:
                return frozenset(p.events)
        return frozenset()

    def event_table(self) -> dict[str, frozenset[str]]:
        """``events_of`` for every plugin at once (what the queue consults per event)."""
        return {p.name: frozenset(p.events) for p in self.plugins}


def _resolve(name: str, cache: dict[str, Any]) -> Any:
    if name in cache:
        return cache[name]
    if name in BUILTIN:
        obj = BUILTIN[name]()
    elif ":" in name:
        mod, _, cls = name.partition(":")
        obj = getattr(importlib.import_module(mod), cls)()
    else:
        raise ValueError(f"unknown scheduler plugin {name!r}")
    cache[name] = obj
    cache[obj.name] = obj
    return obj


def _entries(section: Any, key: str) -> list[Any]:
    if not isinstance(section, dict):
        return []
    v = section.get(key) or []
    return v if isinstance(v, list) else [v]


def build_profile(config: dict[str, Any] | None = None) -> Profile:
    plugins = (config or {}).get("plugins") or {}
    cache: dict[str, Any] = {}
    fsec, ssec = plugins.get("filter") or {}, plugins.get("score") or {}
    fdis = {e if isinstance(e, str) else e.get("name") for e in _entries(fsec, "disabled")}
    sdis = {e if isinstance(e, str) else e.get("name") for e in _entries(ssec, "disabled")}
    filters = [] if "*" in fdis else [_resolve(n, cache) for n in DEFAULT_FILTERS if n not in fdis]
    for e in _entries(fsec, "enabled"):
        p = _resolve(e if isinstance(e, str) else e["name"], cache)
        if p not in filters:
            filters.append(p)
    scores = [] if "*" in sdis else [(_resolve(n, cache), w) for n, w in DEFAULT_SCORES if n not in sdis]
    for e in _entries(ssec, "enabled"):
        name, weight = (e, 1) if isinstance(e, str) else (e["name"], int(e.get("weight", 1)))
        p = _resolve(name, cache)
        scores = [(q, w) for q, w in scores if q is not p] + [(p, weight)]
    return Profile(filters, scores)


def load_profile(path: str | Path) -> Profile:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scheduler config must be a mapping")
    return build_profile(data)
