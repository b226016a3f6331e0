"""Shared helpers for the resources tests (imported relatively by the test modules)."""

from __future__ import annotations

import copy
from typing import Any

import cloudlet.resources  # noqa: F401  (registers every kind)
from cloudlet.resources.registry import REGISTRY, ResourceType


def messages(errors: list[Any]) -> list[str]:
    """The errors as Kubernetes prints them: ``field: Type: detail``."""
    return [str(e) for e in errors]


def kind(group: str, version: str, plural: str) -> ResourceType:
    rt = REGISTRY.get(group, version, plural)
    assert rt is not None, (group, version, plural)
    return rt


def defaulted(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    rt.default(out)
    return out


def check(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Default a copy of ``obj`` then validate it; return the messages."""
    return messages(rt.validate(defaulted(rt, obj), old))
