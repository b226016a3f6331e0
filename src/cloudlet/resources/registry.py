"""The registry of served kinds.

A :class:`ResourceType` describes one group/version/resource the API serves:
its names for discovery, its scope, its subresources, and the per-kind hooks
the generic API handlers call (defaulting, validation, table rows, field
selectors, scale). Kinds register themselves in :data:`REGISTRY` when the
``cloudlet.resources`` package is imported.

Hook contracts (all hooks work on plain Kubernetes-shaped dicts):

* ``default(obj)`` mutates ``obj`` in place, filling Kubernetes defaults. It is
  called on create and on every update, before validation, and must be
  idempotent. ``prepare_create(obj)`` / ``prepare_update(new, old)`` run
  before it, for what differs between create and update.
* ``validate(obj, old)`` returns a list of :class:`FieldError`; ``old`` is
  ``None`` on create and the stored object on update (to check immutable
  fields). Generic metadata checks (name syntax, labels, annotations) are done
  by :func:`cloudlet.resources.validation.validate_object_meta`, which each
  kind's validator is expected to call.
* ``table(obj)`` returns the cells for one table row, matching ``columns``.
* ``fields(obj)`` returns the field-selector values this kind supports beyond
  ``metadata.name`` / ``metadata.namespace`` (e.g. ``spec.nodeName``).
* ``to_storage`` / ``from_storage`` convert between this version and the
  storage version when several versions share one storage (``storage`` names
  the storage ``ResourceType`` key ``group/resource``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cloudlet.api.errors import FieldError

Obj = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Column:
    """A table column definition (``meta.k8s.io/v1 TableColumnDefinition``).

    ``priority`` 0 columns show in ``kubectl get``; priority 1 only with ``-o wide``.
    """

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class ScaleSpec:
    """Where the ``scale`` subresource reads and writes replica counts (dotted paths)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str = "status.selector"  # a string selector path, or "spec.selector" (LabelSelector)


def _no_default(obj: Obj) -> None:
    return None


def _no_validate(obj: Obj, old: Obj | None) -> list[FieldError]:
    return []


def _no_fields(obj: Obj) -> dict[str, str]:
    return {}


NAME_COLUMN = Column("Name", "string", "name", "Name must be unique within a namespace.")
AGE_COLUMN = Column("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.")


@dataclass
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status", "scale", later "binding", "eviction", "log"
    has_status: bool = True  # spec/status split: main resource ignores status, /status ignores the rest
    default: Callable[[Obj], None] = _no_default
    validate: Callable[[Obj, Obj | None], list[FieldError]] = _no_validate
    columns: list[Column] = field(default_factory=lambda: [NAME_COLUMN, AGE_COLUMN])
    table: Callable[[Obj], list[Any]] | None = None  # None: Name + Age
    fields: Callable[[Obj], dict[str, str]] = _no_fields
    scale: ScaleSpec | None = None
    storage: str | None = None  # "group/resource" of the storage version; None = self
    to_storage: Callable[[Obj], Obj] | None = None
    from_storage: Callable[[Obj], Obj] | None = None
    preferred: bool = True  # the preferred version of its group (discovery)
    # fields that bump metadata.generation when changed; None = everything but metadata/status
    generation_fields: tuple[str, ...] | None = None
    # Kubernetes' strategy PrepareForCreate / PrepareForUpdate: run before default/validate.
    # prepare_create(obj) on create; prepare_update(new, old) on every update of the main
    # resource (e.g. keep allocated values the client left out).
    prepare_create: Callable[[Obj], None] | None = None
    prepare_update: Callable[[Obj, Obj], None] | None = None
    keep_status_on_create: bool = False  # e.g. Node: the kubelet registers with its status
    # Kinds without built-in field tables (custom resources) bring their own structural
    # checks: prune_unknown(obj) removes fields the schema does not allow and returns
    # their paths (fieldValidation=Strict/Warn report them); None = no check.
    prune_unknown: Callable[[Obj], list[str]] | None = None
    # The OpenAPI v3 schema of the kind (custom resources: the version's openAPIV3Schema),
    # served under /openapi; None = built-in tables or a permissive schema.
    openapi_schema: dict[str, Any] | None = None
    strategic_merge: bool = True  # custom resources: no strategic merge patch (415)
    keep_generation: bool = False  # metadata.generation even without a status subresource (CRs)
    # Read-only kinds computed on request (metrics.k8s.io): source(namespace or None) returns
    # the current objects; get/list are served from it and nothing is stored.
    source: Callable[[str | None], list[Obj]] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def key(self) -> str:
        """``group/resource``: the identity shared by every version of a resource."""
        return f"{self.group}/{self.plural}"

    @property
    def storage_key(self) -> str:
        return self.storage or self.key


class Registry:
    """All served resource types, indexed for routing and discovery."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceType] = {}
        self._group_versions: dict[str, list[str]] = {}

    def add(self, rt: ResourceType) -> ResourceType:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self._by_gvk[(rt.group, rt.version, rt.kind)] = rt
        versions = self._group_versions.setdefault(rt.group, [])
        if rt.version not in versions:
            versions.append(rt.version)
        return rt

    def remove(self, rt: ResourceType) -> None:
        self._by_gvr.pop((rt.group, rt.version, rt.plural), None)
        self._by_gvk.pop((rt.group, rt.version, rt.kind), None)
        if not any(g == rt.group and v == rt.version for (g, v, _r) in self._by_gvr):
            versions = self._group_versions.get(rt.group, [])
            if rt.version in versions:
                versions.remove(rt.version)
            if not versions:
                self._group_versions.pop(rt.group, None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_gvk.get((group, version, kind))

    def for_api_version(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def groups(self) -> dict[str, list[str]]:
        """group -> versions, preferred version first."""
        return {g: list(v) for g, v in self._group_versions.items()}

    def resources(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _r), rt in self._by_gvr.items() if g == group and v == version]

    def all(self) -> list[ResourceType]:
        return list(self._by_gvr.values())

    def versions_of(self, storage_key: str) -> list[ResourceType]:
        return [rt for rt in self._by_gvr.values() if rt.storage_key == storage_key]


REGISTRY = Registry()
