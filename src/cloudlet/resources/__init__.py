"""Built-in kinds: importing this package registers every one in :data:`REGISTRY`.

Each kind module defines defaulting and validation (Kubernetes' rules and
messages) and adds its :class:`~cloudlet.resources.registry.ResourceType`s.
Modules are imported in kube-apiserver's discovery order (core, then groups).
Table printing lives in ``tables.py``, imported separately by the API.
"""

from __future__ import annotations

import importlib

from cloudlet.resources.registry import REGISTRY

KIND_MODULES = ("core", "pod", "service", "apps", "autoscaling", "policy", "scheduling", "coordination", "node", "discovery", "apiextensions", "metrics")

for _module in KIND_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["KIND_MODULES", "REGISTRY"]
