"""Serving custom resources: one :class:`ResourceType` per served CRD version.

:class:`Serving` keeps, per :class:`Registry`, the types registered for each
CRD (by CRD name). :meth:`Serving.serve` (re)builds them from the CRD and the
names it was granted (``status.acceptedNames``) and swaps them into the
registry — the API routes, discovery and the generic object semantics pick
them up at once; :meth:`Serving.unserve` removes them.

Every version of a CRD shares one storage key (``group/plural``); objects are
stored in the storage version. Conversion is Kubernetes' ``None`` strategy:
only ``apiVersion`` changes, then the target version's schema prunes and
defaults (on writes with the storage schema, on reads with the read version's
schema). Each type's hooks implement the custom resource strategy:

* ``prune_unknown`` / ``default``: structural pruning (unknown field paths
  reported for ``fieldValidation``), then ``default`` values;
* ``validate``: ObjectMeta, the version's ``openAPIV3Schema`` (on updates
  with ratcheting: errors about unchanged values are dropped), embedded
  resources, and the replica paths of the ``scale`` subresource;
* ``prepare_create``: ``status`` is dropped when the status subresource is
  enabled; creating is forbidden while the CRD is terminating;
* ``table``/``columns``: ``additionalPrinterColumns``;
* ``strategic_merge=False`` (JSON and merge patch only), ``openapi_schema``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from cloudlet.api import errors
from cloudlet.api.errors import FieldError, invalid_value
from cloudlet.api.jsonkinds import go_value_type
from cloudlet.resources import crd_schema, crd_values
from cloudlet.resources.apiextensions import (
    condition_true,
    spec_of,
    status_enabled,
    storage_version,
    subresources_of,
    versions,
)
from cloudlet.resources.crd_printer import printer
from cloudlet.resources.registry import Registry, ResourceType, ScaleSpec
from cloudlet.resources.validation import (
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)
from cloudlet.store.store import copy_obj

Obj = dict[str, Any]
MAX_INT32 = 2**31 - 1


@dataclass(eq=False)
class CustomResourceType(ResourceType):
    """A served CRD version: a :class:`ResourceType` that knows its CRD and listKind."""

    crd_name: str = ""
    list_kind_name: str = ""

    @property
    def list_kind(self) -> str:
        return self.list_kind_name or self.kind + "List"


def _d(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}




def _nested(obj: Obj, dotted: str) -> tuple[bool, Any]:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


class _Hooks:
    """The strategy of one served version (see the module docstring)."""

    def __init__(self, crd: Obj, version: Obj, storage_schema: Obj | None, terminating: bool) -> None:
        spec = spec_of(crd)
        self.group = str(spec.get("group") or "")
        self.plural = str(_d(spec.get("names")).get("plural") or "")
        self.api_version = f"{self.group}/{version.get('name')}"
        self.storage_api_version = f"{self.group}/{storage_version(crd)}"
        self.schema = _d(_d(version.get("schema")).get("openAPIV3Schema")) or None
        self.storage_schema = storage_schema
        self.namespaced = spec.get("scope") == "Namespaced"
        self.has_status = status_enabled(version)
        scale = _d(subresources_of(version).get("scale"))
        self.scale_paths: tuple[str, str, str] | None = None
        if scale:
            self.scale_paths = (
                str(scale.get("specReplicasPath") or ""),
                str(scale.get("statusReplicasPath") or ""),
                str(scale.get("labelSelectorPath") or ""),
            )
        self.terminating = terminating

    def scale_spec(self) -> ScaleSpec | None:
        if self.scale_paths is None:
            return None
        spec_path, status_path, selector = (p.lstrip(".") for p in self.scale_paths)
        return ScaleSpec(spec_replicas=spec_path, status_replicas=status_path, label_selector=selector)

    # --- hooks

    def prune_unknown(self, obj: Obj) -> list[str]:
        return crd_schema.coerce(obj, self.schema)

    def default(self, obj: Obj) -> None:
        crd_schema.coerce(obj, self.schema)
        crd_schema.apply_defaults(obj, self.schema)

    def prepare_create(self, obj: Obj) -> None:
        if self.terminating:
            name = _d(obj.get("metadata")).get("name") or ""
            raise errors.forbidden(self.plural, self.group, name,
                                   "create not allowed while custom resource definition is terminating")
        if self.has_status:
            obj.pop("status", None)

    def validate(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        meta = _d(obj.get("metadata"))
        errs = validate_object_meta(meta, self.namespaced, name_check=name_is_dns_subdomain, kube_finalizers=False)
        if old is not None:
            errs += validate_object_meta_update(meta, _d(old.get("metadata")))
        schema_errs = crd_values.validate(obj, self.schema)
        if old is not None:
            schema_errs = crd_values.ratchet(schema_errs, obj, old)
        errs += schema_errs
        errs += self._scale_errors(obj)
        errs += crd_values.validate_embedded(obj, self.schema)
        return errs

    def _scale_errors(self, obj: Obj) -> list[FieldError]:
        if self.scale_paths is None:
            return []
        errs: list[FieldError] = []
        for path in self.scale_paths[:2]:
            if not path:
                continue
            found, value = _nested(obj, path.lstrip("."))
            if not found:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                errs.append(invalid_value(path, 0, f"{path} accessor error: {crd_schema.printed_go(value)} is of the type {go_value_type(value, 'int64')}, expected int64"))
            elif value < 0:
                errs.append(invalid_value(path, value, "should be a non-negative integer"))
            elif value > MAX_INT32:
                errs.append(invalid_value(path, value, f"should be less than or equal to {MAX_INT32}"))
        selector = self.scale_paths[2]
        if selector:
            found, value = _nested(obj, selector.lstrip("."))
            if found and not isinstance(value, str):
                errs.append(invalid_value(selector, "", f"{selector} accessor error: {crd_schema.printed_go(value)} is of the type {go_value_type(value, 'int64')}, expected string"))
        return errs

    def to_storage(self, obj: Obj) -> Obj:
        if obj.get("apiVersion") == self.storage_api_version and self.schema is self.storage_schema:
            return obj
        out = copy_obj(obj)
        out["apiVersion"] = self.storage_api_version
        crd_schema.coerce(out, self.storage_schema)
        return out

    def from_storage(self, obj: Obj) -> Obj:
        """The stored object as this version (never mutated: the store shares it)."""
        if obj.get("apiVersion") == self.api_version and not crd_schema.defaults_missing(obj, self.schema):
            return obj
        out = copy_obj(obj)
        out["apiVersion"] = self.api_version
        crd_schema.coerce(out, self.schema)
        crd_schema.apply_defaults(out, self.schema)
        return out


def accepted_names(crd: Obj) -> Obj:
    return _d(_d(crd.get("status")).get("acceptedNames"))


def terminating(crd: Obj) -> bool:
    return bool(_d(crd.get("metadata")).get("deletionTimestamp")) or condition_true(crd, "Terminating")


def build_types(crd: Obj, names: Obj) -> list[ResourceType]:
    """The types serving ``crd``'s served versions under ``names``."""
    spec = spec_of(crd)
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")
    kind = str(names.get("kind") or "")
    if not group or not plural or not kind:
        return []
    crd_name = str(_d(crd.get("metadata")).get("name") or "")
    stored = storage_version(crd)
    storage_schema = next(
        (_d(_d(v.get("schema")).get("openAPIV3Schema")) or None for v in versions(crd) if v.get("name") == stored), None
    )
    ending = terminating(crd)
    out: list[ResourceType] = []
    for v in versions(crd):
        if v.get("served") is not True or not v.get("name"):
            continue
        hooks = _Hooks(crd, v, storage_schema, ending)
        if v.get("name") == stored:
            hooks.storage_schema = hooks.schema
        subs = tuple(s for s in ("status", "scale") if (s == "status" and hooks.has_status) or (s == "scale" and hooks.scale_paths))
        table = printer(v.get("additionalPrinterColumns"))
        out.append(CustomResourceType(
            group=group, version=str(v["name"]), kind=kind, plural=plural,
            singular=str(names.get("singular") or kind.lower()), namespaced=hooks.namespaced,
            short_names=tuple(str(s) for s in names.get("shortNames") or ()),
            categories=tuple(str(c) for c in names.get("categories") or ()),
            subresources=subs, has_status=hooks.has_status,
            default=hooks.default, validate=hooks.validate, columns=table.columns, table=table.row,
            scale=hooks.scale_spec(), storage=f"{group}/{plural}",
            to_storage=hooks.to_storage, from_storage=hooks.from_storage,
            preferred=v.get("name") == stored, prepare_create=hooks.prepare_create,
            prune_unknown=hooks.prune_unknown, openapi_schema=hooks.schema, strategic_merge=False,
            keep_generation=True,
            crd_name=crd_name, list_kind_name=str(names.get("listKind") or ""),
        ))
    return out


class Serving:
    """The custom resource types registered in one registry, by CRD name."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.served: dict[str, list[ResourceType]] = {}

    def serve(self, crd: Obj, names: Obj | None = None) -> list[ResourceType]:
        """Register (or refresh) the types of ``crd`` under ``names`` (default: its accepted names)."""
        name = str(_d(crd.get("metadata")).get("name") or "")
        new = [rt for rt in build_types(crd, accepted_names(crd) if names is None else names) if self._free(rt, name)]
        old = self.served.get(name, [])
        previous = {(rt.group, rt.version, rt.plural, rt.kind): rt for rt in old}
        for rt in new:  # an unchanged schema keeps its identity (the OpenAPI cache keys on it)
            before = previous.get((rt.group, rt.version, rt.plural, rt.kind))
            if before is not None and before.openapi_schema == rt.openapi_schema:
                rt.openapi_schema = before.openapi_schema
        keep = set(previous) & {(rt.group, rt.version, rt.plural, rt.kind) for rt in new}
        for rt in old:
            if (rt.group, rt.version, rt.plural, rt.kind) not in keep:
                self._remove(rt)
        for rt in new:
            self.registry.add(rt)
        if new:
            self.served[name] = new
        else:
            self.served.pop(name, None)
        return new

    def unserve(self, name: str) -> None:
        for rt in self.served.pop(name, []):
            self._remove(rt)

    def _free(self, rt: ResourceType, crd_name: str) -> bool:
        """Never shadow a built-in kind or another CRD's type."""
        cur = self.registry.get(rt.group, rt.version, rt.plural)
        return cur is None or (isinstance(cur, CustomResourceType) and cur.crd_name == crd_name)

    def _remove(self, rt: ResourceType) -> None:
        if self.registry.get(rt.group, rt.version, rt.plural) is rt:
            self.registry.remove(rt)

    def is_served(self, name: str) -> bool:
        return name in self.served

    def builtin_names(self, group: str) -> tuple[set[str], set[str]]:
        """Resource names and kinds in ``group`` not served for a CRD (built-in kinds)."""
        resources: set[str] = set()
        kinds: set[str] = set()
        for rt in self.registry.all():
            if rt.group != group or isinstance(rt, CustomResourceType):
                continue
            resources.update((rt.plural, rt.singular, *rt.short_names))
            kinds.update((rt.kind, rt.list_kind))
        return resources, kinds


_SERVING: weakref.WeakKeyDictionary[Registry, Serving] = weakref.WeakKeyDictionary()


def serving_for(registry: Registry) -> Serving:
    """The one :class:`Serving` of ``registry``."""
    found = _SERVING.get(registry)
    if found is None:
        found = _SERVING[registry] = Serving(registry)
    return found
