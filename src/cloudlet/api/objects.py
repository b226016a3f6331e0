"""Generic object semantics shared by every kind: the heart of the API.

:class:`ObjectAPI` turns create/get/list/update/patch/delete/watch requests
into store operations with Kubernetes semantics: server-set metadata (uid,
creationTimestamp, resourceVersion, generation), ``generateName``, namespace
existence and termination, the spec/status split of the ``status``
subresource, the ``scale`` subresource, optimistic concurrency, graceful
deletion, finalizers and propagation policies. The HTTP handlers and the
in-process client both call it, so the two paths cannot drift apart.

Every failure is raised as :class:`~cloudlet.api.errors.APIError`. Nothing is
written unless defaulting and validation pass (no half-written objects).
"""

from __future__ import annotations

import base64
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from cloudlet.api import errors
from cloudlet.api.errors import APIError
from cloudlet.api.fieldcheck import fill_status_zero_values
from cloudlet.api.fieldmanager import now_rfc3339 as _now_seconds
from cloudlet.api.fieldmanager import target as field_target
from cloudlet.api.fieldmanager import track_update
from cloudlet.api.managedfields import SharedManagedFields
from cloudlet.resources.registry import REGISTRY, Registry, ResourceType
from cloudlet.store.store import (
    ConflictError,
    ExistsError,
    GoneError,
    NotFoundError,
    Store,
    Watcher,
    copy_obj,
    make_key,
    obj_rev,
)

log = logging.getLogger("cloudlet.api")

Obj = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
NAMESPACE_FINALIZER = "kubernetes"
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_UPDATE_RETRIES = 5
# managedFields manager of in-process writes that do not name one
DEFAULT_MANAGER = "cloudlet"


def now_rfc3339() -> str:
    return _now_seconds()  # formatted once a second, one shared string


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _get_path(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def encode_continue(key: str, rev: int) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, int]:
    try:
        pad = "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(token + pad))
        key, rev = data["start"], int(data["rv"])
        if not isinstance(key, str):
            raise ValueError
        return key, rev
    except Exception as e:
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from e


JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_MEDIA_TYPES = {"json": JSON_PATCH, "merge": MERGE_PATCH, "strategic": STRATEGIC_PATCH}


def apply_patch(rt: ResourceType, name: str, media_type: str, patch: Any, cur: Obj) -> Obj:
    """Apply a JSON, merge or strategic merge patch to ``cur`` (a copy is returned).

    Shared by the HTTP handlers and the in-process client. A ``resourceVersion``
    in the patched result that differs from ``cur``'s is a precondition: 409.
    """
    from cloudlet.api.patch import (
        json_patch,
        merge_patch,
        strategic_merge_patch,
        supports_strategic_merge,
    )

    if media_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        new = json_patch(cur, patch)
    elif media_type == MERGE_PATCH:
        new = merge_patch(cur, patch)
    elif media_type == STRATEGIC_PATCH:
        if not rt.strategic_merge or not supports_strategic_merge(rt.group, rt.kind):
            raise APIError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, application/apply-patch+yaml",
            )
        if not isinstance(patch, dict):
            raise errors.bad_request("the body of a strategic merge patch must be a JSON object")
        new = strategic_merge_patch(cur, patch, rt.group, rt.kind)
    else:
        raise errors.unsupported_media_type(media_type)
    if not isinstance(new, dict):
        raise errors.bad_request("the patch did not produce an object")
    meta = new.get("metadata")
    want = meta.get("resourceVersion") if isinstance(meta, dict) else None
    if want and str(want) != (cur.get("metadata") or {}).get("resourceVersion"):
        raise errors.conflict(rt.plural, rt.group, name)
    return new


class ListResult:
    __slots__ = ("items", "revision", "continue_", "remaining")

    def __init__(self, items: list[Obj], revision: int, continue_: str, remaining: int | None) -> None:
        self.items = items
        self.revision = revision
        self.continue_ = continue_
        self.remaining = remaining


class ObjectAPI:
    """Kubernetes object semantics over a :class:`Store`."""

    def __init__(self, store: Store, registry: Registry = REGISTRY) -> None:
        self.store = store
        self.registry = registry
        # hooks run on create after validation, before the write (e.g. Service IP allocation)
        self.create_hooks: dict[str, list[Callable[[Obj], None]]] = {}
        self._fields_cache: dict[int, tuple[ResourceType, frozenset[str]]] = {}
        if store.share is None:  # stored objects share equal managedFields (memory)
            store.share_values(SharedManagedFields())

    # --- helpers -------------------------------------------------------------

    def key(self, rt: ResourceType, namespace: str, name: str) -> str:
        return make_key(rt.group, rt.storage_key.split("/", 1)[1], namespace if rt.namespaced else "", name)

    def resource_prefix(self, rt: ResourceType) -> str:
        return rt.storage_key

    def _to_storage(self, rt: ResourceType, obj: Obj) -> Obj:
        return rt.to_storage(obj) if rt.to_storage and rt.storage else obj

    def to_version(self, rt: ResourceType, obj: Obj) -> Obj:
        """Convert a stored object to ``rt``'s version."""
        if rt.storage and rt.from_storage:
            return rt.from_storage(obj)  # also defaults-on-read for custom resources
        return obj

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.latest(make_key("", "namespaces", "", namespace))
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            err = errors.forbidden(
                rt.plural,
                rt.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )
            err.details = {
                **(err.details or {}),
                "causes": [
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            }
            raise err

    def _invalid(self, rt: ResourceType, obj: Obj, errs: list[errors.FieldError]) -> APIError:
        name = (obj.get("metadata") or {}).get("name") or ""
        return errors.invalid(rt.kind, rt.group, name, errs)

    def _check_body(self, rt: ResourceType, body: Any, namespace: str) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the object provided is not a valid {rt.kind}: expected a JSON object")
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if api_version is not None and not isinstance(api_version, str):
            raise errors.bad_request("apiVersion must be a string")
        if kind is not None and not isinstance(kind, str):
            raise errors.bad_request("kind must be a string")
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        if api_version and api_version != rt.api_version:
            other = self.registry.for_api_version(api_version, rt.kind)
            if other is None or other.storage_key != rt.storage_key:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
                )
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        body["apiVersion"] = rt.api_version
        body["kind"] = rt.kind
        for f in ("name", "generateName", "namespace", "resourceVersion", "uid"):
            if f in meta and meta[f] is not None and not isinstance(meta[f], str):
                raise errors.bad_request(f"metadata.{f} must be a string")
        for f in ("labels", "annotations"):
            if f in meta and meta[f] is not None and not isinstance(meta[f], dict):
                raise errors.bad_request(f"metadata.{f} must be an object")
        if rt.namespaced:
            ns = meta.get("namespace")
            if ns and namespace and ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or ns or ""
        else:
            meta.pop("namespace", None)
        return body

    def _prepare(self, rt: ResourceType, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except APIError:
            raise
        except Exception as e:  # a malformed object: report it, never 500
            raise errors.bad_request(f"invalid {rt.kind}: {e}") from e

    def _default_validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        try:
            rt.default(obj)
        except APIError:
            raise
        except Exception as e:  # defaulting of a malformed object: report it, never 500
            raise errors.bad_request(f"invalid {rt.kind}: {e}") from e
        fill_status_zero_values(obj, rt.api_version, rt.kind)
        try:
            errs = rt.validate(obj, old)
        except APIError:
            raise
        except Exception as e:
            raise self._invalid(rt, obj, [errors.invalid_value("", None, f"malformed object: {e}")]) from e
        if errs:
            raise self._invalid(rt, obj, errs)

    # --- reads ---------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        if rt.source is not None:
            for o in rt.source(namespace if rt.namespaced else None):
                if o["metadata"]["name"] == name:
                    return o
            raise errors.not_found(rt.plural, rt.group, f"{namespace}/{name}" if rt.namespaced else name)
        obj = self.store.get(self.key(rt, namespace, name))
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return self.to_version(rt, obj)

    def field_set(self, rt: ResourceType, obj: Obj) -> dict[str, str]:
        meta = obj.get("metadata") or {}
        fields = {"metadata.name": meta.get("name", "")}
        if rt.namespaced:
            fields["metadata.namespace"] = meta.get("namespace", "")
        try:
            fields.update(rt.fields(obj))
        except Exception:
            pass
        return fields

    def supported_fields(self, rt: ResourceType) -> frozenset[str]:
        """Field-selector labels of ``rt`` (computed once per resource type, not per request)."""
        cached = self._fields_cache.get(id(rt))
        if cached is not None and cached[0] is rt:
            return cached[1]
        names = frozenset(self._probe_fields(rt))
        self._fields_cache[id(rt)] = (rt, names)
        return names

    @staticmethod
    def _probe_fields(rt: ResourceType) -> set[str]:
        probe: Obj = {"metadata": {"name": "", "namespace": ""}}
        names = {"metadata.name"}
        if rt.namespaced:
            names.add("metadata.namespace")
        try:
            names.update(rt.fields(probe).keys())
        except Exception:
            pass
        return names

    def _any_match_after(
        self, rt: ResourceType, prefix: str, ns: str | None, after: str, at: int | None,
        label_selector: Any, field_selector: Any,
    ) -> bool:
        """Whether an object after key ``after`` matches; scans in batches and
        stops at the first match (the next page starts there anyway)."""
        cursor: str | None = after
        while cursor is not None:
            objs, cursor, _ = self.store.list(prefix, ns, after=cursor, limit=256, at=at)
            if any(self._matches(rt, o, label_selector, field_selector) for o in objs):
                return True
        return False

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: Any = None,
        field_selector: Any = None,
        limit: int = 0,
        continue_: str = "",
        at: int | None = None,
    ) -> ListResult:
        """List, optionally as of revision ``at`` (``resourceVersionMatch=Exact``)."""
        ns = namespace if (rt.namespaced and namespace) else None
        if rt.source is not None:  # computed kinds: the current values, no paging
            found = [o for o in rt.source(ns) if self._matches(rt, o, label_selector, field_selector)]
            return ListResult(found, self.store.revision, "", None)
        after = ""
        at_rev: int | None = None
        if at is not None and not continue_:
            if at < self.store.compacted:
                raise errors.gone(f"too old resource version: {at} ({self.store.compacted + 1})")
            if at > self.store.revision:
                raise APIError(504, "Timeout", f"Too large resource version: {at}, current: {self.store.revision}",
                               {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
            at_rev = at if at < self.store.revision else None
        if continue_:
            after, at_rev = decode_continue(continue_)
            if at_rev < self.store.compacted or at_rev > self.store.revision:
                raise errors.gone(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter."
                )
        filtering = (label_selector is not None and not label_selector.empty) or (
            field_selector is not None and not field_selector.empty
        )
        # fast path for an exact metadata.name selector
        items: list[Obj] = []
        last: str | None = None
        rev = self.store.revision
        if field_selector is not None and (name := field_selector.exact("metadata.name")) is not None and ns is not None:
            o = self.store.get(self.key(rt, ns, name))
            cands = [o] if o is not None else []
            for o in cands:
                if self._matches(rt, o, label_selector, field_selector):
                    items.append(o)
            return ListResult([self.to_version(rt, o) for o in items], rev, "", None)
        prefix = self.resource_prefix(rt)
        if not filtering:
            objs, last, rev = self.store.list(prefix, ns, after=after, limit=limit, at=at_rev)
            items = objs
        else:
            batch = max(limit, 500) if limit else 0
            cursor = after
            while True:
                objs, more, rev = self.store.list(prefix, ns, after=cursor, limit=batch, at=at_rev)
                for o in objs:
                    if self._matches(rt, o, label_selector, field_selector):
                        items.append(o)
                        if limit and len(items) >= limit:
                            last = self.key(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                            break
                if (limit and len(items) >= limit) or more is None:
                    if not (limit and len(items) >= limit):
                        last = None
                    break
                cursor = more
            if last is not None and not self._any_match_after(rt, prefix, ns, last, at_rev, label_selector, field_selector):
                last = None  # keeps `continue` empty on the final page
        cont = encode_continue(last, rev) if last else ""
        remaining = None
        if last and not filtering:
            if at_rev is None or at_rev >= self.store.revision:
                remaining = self.store.count_after(prefix, ns, last)
            else:
                remaining = len(self.store.list(prefix, ns, after=last, at=at_rev)[0])
        if not (rt.storage and rt.from_storage):  # to_version is the identity: no per-item call
            return ListResult(items, rev, cont, remaining)
        return ListResult([self.to_version(rt, o) for o in items], rev, cont, remaining)

    def _matches(self, rt: ResourceType, obj: Obj, label_selector: Any, field_selector: Any) -> bool:
        if label_selector is not None and not label_selector.empty:
            if not label_selector.matches((obj.get("metadata") or {}).get("labels") or {}):
                return False
        if field_selector is not None and not field_selector.empty:
            if not field_selector.matches(self.field_set(rt, obj)):
                return False
        return True

    def matches(self, rt: ResourceType, obj: Obj, label_selector: Any, field_selector: Any) -> bool:
        return self._matches(rt, obj, label_selector, field_selector)

    def watch(self, rt: ResourceType, namespace: str | None, from_rev: int) -> Watcher:
        ns = namespace if (rt.namespaced and namespace) else None
        if from_rev > self.store.revision:
            raise APIError(
                504,
                "Timeout",
                f"Too large resource version: {from_rev}, current: {self.store.revision}",
                {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1},
            )
        try:
            return self.store.watch(self.resource_prefix(rt), ns, from_rev)
        except GoneError as e:
            raise errors.gone(f"too old resource version: {e.requested} ({e.compacted + 1})") from e

    # --- create --------------------------------------------------------------

    async def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str | None = DEFAULT_MANAGER,
    ) -> Obj:
        """Create ``body``. ``manager`` takes ownership of its fields (managedFields,
        operation Update); None means the body already carries its managedFields
        (server-side apply)."""
        obj = self._check_body(rt, body, namespace)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        name = meta.get("name") or ""
        if rt.namespaced:
            if not meta.get("namespace"):
                raise self._invalid(rt, obj, [errors.required("metadata.namespace")])
            self._check_namespace(rt, meta["namespace"], name)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        for f in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(f, None)
        if rt.has_status or rt.keep_generation:
            meta["generation"] = 1
        if rt.has_status:
            if not rt.keep_status_on_create:
                obj["status"] = {}
        elif not rt.keep_generation:
            meta.pop("generation", None)
        if rt.prepare_create is not None:
            self._prepare(rt, rt.prepare_create, obj)
        self._default_validate(rt, obj, None)
        if manager is not None:
            track_update(field_target(rt), None, obj, manager)
        for hook in self.create_hooks.get(rt.storage_key, []):
            hook(obj)
        if dry_run:
            if self.store.latest(self.key(rt, meta.get("namespace", ""), name)) is not None:
                raise errors.already_exists(rt.plural, rt.group, name)
            return obj
        try:
            stored = await self.store.create(
                self.key(rt, meta.get("namespace", ""), name), self._to_storage(rt, obj)
            )
        except ExistsError as e:
            raise errors.already_exists(rt.plural, rt.group, name) from e
        return self.to_version(rt, stored)

    # --- update --------------------------------------------------------------

    async def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str | None = DEFAULT_MANAGER,
    ) -> Obj:
        obj = self._check_body(rt, body, namespace)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        rv = meta.get("resourceVersion")
        expect: int | None = None
        if rv:
            try:
                expect = int(rv)
            except ValueError as e:
                raise self._invalid(
                    rt, obj, [errors.invalid_value("metadata.resourceVersion", rv, "must be specified for an update")]
                ) from e
        key = self.key(rt, namespace, name)
        cur = self.store.latest(key)
        if cur is None:
            raise errors.not_found(rt.plural, rt.group, name)
        uid = meta.get("uid")
        if uid and uid != cur["metadata"].get("uid"):
            raise errors.conflict(
                rt.plural, rt.group, name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {cur['metadata'].get('uid')}",
            )
        if expect is not None and obj_rev(cur) != expect:
            raise errors.conflict(rt.plural, rt.group, name)
        return await self._apply_update(
            rt, key, cur, obj, subresource=subresource, dry_run=dry_run, manager=manager
        )

    async def _apply_update(
        self,
        rt: ResourceType,
        key: str,
        cur_stored: Obj,
        new: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str | None = DEFAULT_MANAGER,
        track_as: str | None = None,
    ) -> Obj:
        """Merge server-owned fields from ``cur_stored`` into ``new`` and write it (CAS on cur).

        ``manager`` takes ownership of what the write changes (recorded with
        subresource ``track_as``, default ``subresource``); None keeps the
        managedFields ``new`` carries (server-side apply computed them).
        """
        applied_fields = (new.get("metadata") or {}).get("managedFields") if manager is None else None
        old = copy_obj(self.to_version(rt, cur_stored))
        meta = new.setdefault("metadata", {})
        ometa = old["metadata"]
        # server-owned metadata
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in ometa:
                meta[f] = ometa[f]
            else:
                meta.pop(f, None)
        if rt.namespaced:
            meta["namespace"] = ometa.get("namespace", "")
        meta.pop("selfLink", None)
        if subresource == "finalize":
            fin = (new.get("spec") or {}).get("finalizers")
            new = copy_obj(old)
            new.setdefault("spec", {})["finalizers"] = fin or []
        elif subresource == "status":
            # only status changes (plus metadata the status writer may carry is ignored)
            status = new.get("status")
            new = copy_obj(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif rt.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if rt.prepare_update is not None and subresource == "":
            self._prepare(rt, rt.prepare_update, new, old)
        if rt.has_status or rt.keep_generation:
            gen = int(ometa.get("generation") or 1)
            if _spec_part(new) != _spec_part(old):
                gen += 1
            meta = new["metadata"]
            meta["generation"] = gen
        else:
            new["metadata"].pop("generation", None)
        self._default_validate(rt, new, old)
        if manager is not None:
            track_update(field_target(rt, subresource if track_as is None else track_as), old, new, manager)
        elif applied_fields:
            new["metadata"]["managedFields"] = applied_fields
        else:
            new["metadata"].pop("managedFields", None)
        meta = new["metadata"]
        # deletion in progress and the last finalizer went away: the object goes now
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not _namespace_finalizers(rt, new)
            and not int(meta.get("deletionGracePeriodSeconds") or 0)
        ):
            if dry_run:
                return new
            try:
                gone = await self.store.delete(key, expect=obj_rev(cur_stored))
            except ConflictError as e:
                raise errors.conflict(rt.plural, rt.group, meta.get("name", "")) from e
            except NotFoundError as e:
                raise errors.not_found(rt.plural, rt.group, meta.get("name", "")) from e
            return self.to_version(rt, gone)
        meta["resourceVersion"] = str(obj_rev(cur_stored))
        if new == old:
            return old  # no-op: no write, resourceVersion unchanged
        if dry_run:
            return new
        try:
            stored = await self.store.update(key, self._to_storage(rt, new), expect=obj_rev(cur_stored))
        except ConflictError as e:
            raise errors.conflict(rt.plural, rt.group, meta.get("name", "")) from e
        except NotFoundError as e:
            raise errors.not_found(rt.plural, rt.group, meta.get("name", "")) from e
        return self.to_version(rt, stored)

    async def guaranteed_update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str | None = DEFAULT_MANAGER,
        track_as: str | None = None,
    ) -> Obj:
        """Read, ``mutate`` a copy, write; retried on internal conflicts (Kubernetes' GuaranteedUpdate).

        ``mutate`` may raise APIError (e.g. a patch that does not apply, or a
        precondition failure) which is passed through.
        """
        key = self.key(rt, namespace, name)
        for attempt in range(MAX_UPDATE_RETRIES):
            cur = self.store.latest(key)
            if cur is None:
                raise errors.not_found(rt.plural, rt.group, name)
            new = mutate(copy_obj(self.to_version(rt, cur)))
            new = self._check_body(rt, new, namespace)
            if new["metadata"].get("name") not in (None, name):
                raise errors.bad_request(
                    f"the name of the object ({new['metadata']['name']}) does not match the name on the URL ({name})"
                )
            new["metadata"]["name"] = name
            try:
                return await self._apply_update(
                    rt, key, cur, new, subresource=subresource, dry_run=dry_run, manager=manager, track_as=track_as
                )
            except APIError as e:
                if e.reason == "Conflict" and attempt < MAX_UPDATE_RETRIES - 1:
                    continue
                raise
        raise errors.conflict(rt.plural, rt.group, name)

    async def update_with(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        dry_run: bool = False,
        retries: int = 16,
    ) -> Obj:
        """The system update path: read the latest object, ``mutate`` a copy, compare-and-swap it.

        For server-internal writes that kube-apiserver makes below the user
        update strategy (``BindingREST`` setting ``spec.nodeName``, the eviction
        subresource's ``DisruptionTarget`` condition and budget decrement): no
        spec/status split, no ``prepare_update``, defaulting, validation or
        managedFields. The write still goes through storage conversion, gets the
        next ``resourceVersion`` and reaches watchers as MODIFIED.

        Contract: ``mutate`` gets a private copy of the current object in
        ``rt``'s version and returns the object to store (or ``None``: no
        change, the current object is returned without a write); it may raise
        :class:`APIError`, which is passed through unchanged (a refused
        precondition, a budget that allows nothing). Identity metadata (name,
        namespace, uid, creationTimestamp) is kept from the stored object. A lost
        race re-reads and calls ``mutate`` again, at most ``retries`` times, then
        409. 404 when the object is absent. ``dry_run`` returns what would be
        written without writing.
        """
        key = self.key(rt, namespace, name)
        for _ in range(max(1, retries)):
            cur = self.store.latest(key)
            if cur is None:
                raise errors.not_found(rt.plural, rt.group, name)
            current = self.to_version(rt, cur)
            new = mutate(copy_obj(current))
            if new is None or new == current:
                return current
            meta, ometa = new.setdefault("metadata", {}), current["metadata"]
            for f in ("name", "namespace", "uid", "creationTimestamp"):
                if f in ometa:
                    meta[f] = ometa[f]
            meta["resourceVersion"] = ometa.get("resourceVersion")
            if dry_run:
                return new
            try:
                stored = await self.store.update(key, self._to_storage(rt, new), expect=obj_rev(cur))
            except ConflictError:
                continue
            except NotFoundError as e:
                raise errors.not_found(rt.plural, rt.group, name) from e
            return self.to_version(rt, stored)
        raise errors.conflict(rt.plural, rt.group, name)

    async def apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        config: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str = "",
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Server-side apply ``config``; ``(object, created)``. See :mod:`cloudlet.api.apply`."""
        from cloudlet.api.apply import apply_object

        return await apply_object(
            self, rt, namespace, name, config, manager=manager, force=force, subresource=subresource, dry_run=dry_run
        )

    # --- scale subresource ---------------------------------------------------

    def scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        assert rt.scale is not None
        meta = obj["metadata"]
        sel = _get_path(obj, rt.scale.label_selector)
        if isinstance(sel, dict):
            from cloudlet.api.selectors import selector_spec_to_string

            try:
                sel = selector_spec_to_string(sel)
            except Exception:
                sel = ""
        status: Obj = {"replicas": int(_get_path(obj, rt.scale.status_replicas) or 0)}
        if sel:
            status["selector"] = sel
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
                "creationTimestamp": meta.get("creationTimestamp"),
            },
            "spec": {"replicas": int(_get_path(obj, rt.scale.spec_replicas) or 0)},
            "status": status,
        }

    async def update_scale(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        dry_run: bool = False,
        manager: str | None = DEFAULT_MANAGER,
    ) -> Obj:
        assert rt.scale is not None
        spec_path = rt.scale.spec_replicas

        def apply(obj: Obj) -> Obj:
            scale = mutate(self.scale_of(rt, obj))
            if not isinstance(scale, dict):
                raise errors.bad_request("the body must be an autoscaling/v1 Scale object")
            if scale.get("kind") not in (None, "Scale"):
                raise errors.bad_request(f"the kind in the data ({scale.get('kind')}) does not match the expected kind (Scale)")
            want_rv = (scale.get("metadata") or {}).get("resourceVersion")
            if want_rv and str(want_rv) != obj["metadata"].get("resourceVersion"):
                raise errors.conflict(rt.plural, rt.group, name)
            replicas = (scale.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    [errors.invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")],
                )
            _set_path(obj, spec_path, replicas)
            return obj

        updated = await self.guaranteed_update(
            rt, namespace, name, apply, dry_run=dry_run, manager=manager, track_as="scale"
        )
        return self.scale_of(rt, updated)

    # --- delete --------------------------------------------------------------

    async def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: Obj | None = None,
        *,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete per ``DeleteOptions``. Returns ``(object, gone_now)``.

        ``gone_now`` is False when the object stays with a deletionTimestamp
        (finalizers, graceful pod deletion, namespace termination).
        """
        options = _check_delete_options(options or {})
        if rt.storage_key == "/namespaces" and name in PROTECTED_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        key = self.key(rt, namespace, name)
        for _attempt in range(MAX_UPDATE_RETRIES):
            cur = self.store.latest(key)
            if cur is None:
                raise errors.not_found(rt.plural, rt.group, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != cur["metadata"].get("uid"):
                raise errors.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {cur['metadata'].get('uid')}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"].get("resourceVersion"):
                raise errors.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {cur['metadata'].get('resourceVersion')}",
                )
            policy = options.get("propagationPolicy")
            if options.get("orphanDependents") is True and not policy:
                policy = "Orphan"
            if options.get("orphanDependents") is False and not policy:
                policy = "Background"
            if policy not in (None, "Orphan", "Background", "Foreground"):
                raise errors.invalid(
                    "DeleteOptions",
                    "",
                    "",
                    [errors.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan"])],
                )
            grace = options.get("gracePeriodSeconds")
            if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
                raise errors.bad_request("gracePeriodSeconds must be an integer")
            obj = copy_obj(cur)
            meta = obj["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            # an explicit policy replaces the GC finalizers a previous request may have set
            if policy == "Orphan":
                finalizers = [f for f in finalizers if f != FOREGROUND_FINALIZER]
                if ORPHAN_FINALIZER not in finalizers:
                    finalizers.append(ORPHAN_FINALIZER)
            elif policy == "Foreground":
                finalizers = [f for f in finalizers if f != ORPHAN_FINALIZER]
                if FOREGROUND_FINALIZER not in finalizers:
                    finalizers.append(FOREGROUND_FINALIZER)
            elif policy == "Background":
                finalizers = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
            graceful = self._graceful_seconds(rt, obj, grace)
            ns_final = rt.storage_key == "/namespaces" and bool((obj.get("spec") or {}).get("finalizers"))
            if not finalizers and not graceful and not ns_final:
                if dry_run:
                    return self.to_version(rt, cur), True
                try:
                    gone = await self.store.delete(key, expect=obj_rev(cur))
                except ConflictError:
                    continue
                except NotFoundError as e:
                    raise errors.not_found(rt.plural, rt.group, name) from e
                return self.to_version(rt, gone), True
            # the object stays, marked for deletion
            changed = False
            if finalizers != list(meta.get("finalizers") or []):
                meta["finalizers"] = finalizers
                changed = True
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = graceful or 0
                changed = True
            elif graceful is not None and graceful < int(meta.get("deletionGracePeriodSeconds") or 0):
                meta["deletionGracePeriodSeconds"] = graceful  # a shorter grace period may be requested
                changed = True
            if ns_final and (obj.get("status") or {}).get("phase") != "Terminating":
                obj.setdefault("status", {})["phase"] = "Terminating"
                changed = True
            if not changed or dry_run:
                return self.to_version(rt, obj), False
            try:
                stored = await self.store.update(key, obj, expect=obj_rev(cur))
            except ConflictError:
                continue
            return self.to_version(rt, stored), False
        raise errors.conflict(rt.plural, rt.group, name)

    def _graceful_seconds(self, rt: ResourceType, obj: Obj, grace: int | None) -> int:
        """Seconds of graceful deletion (pods bound to a node only); 0 = delete now."""
        if rt.storage_key != "/pods":
            return 0
        spec = obj.get("spec") or {}
        if not spec.get("nodeName"):
            return 0  # never scheduled: nothing to stop
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if grace is None:
            grace = int(spec.get("terminationGracePeriodSeconds") or 30)
        return max(0, grace)

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: Any = None,
        field_selector: Any = None,
        options: Obj | None = None,
        dry_run: bool = False,
    ) -> list[Obj]:
        res = self.list(rt, namespace, label_selector=label_selector, field_selector=field_selector)
        out: list[Obj] = []
        for o in res.items:
            m = o["metadata"]
            try:
                obj, _ = await self.delete(rt, m.get("namespace", ""), m["name"], options, dry_run=dry_run)
                out.append(obj)
            except APIError as e:
                if e.code != 404:
                    raise
        return out


def _check_delete_options(options: Any) -> Obj:
    """DeleteOptions must have the Go types; anything else is a 400 (a decode error)."""
    if not isinstance(options, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    pre = options.get("preconditions")
    if pre is not None:
        if not isinstance(pre, dict):
            raise errors.bad_request("json: cannot unmarshal into Go struct field DeleteOptions.preconditions of type v1.Preconditions")
        for f in ("uid", "resourceVersion"):
            if pre.get(f) is not None and not isinstance(pre[f], str):
                raise errors.bad_request(f"json: cannot unmarshal into Go struct field Preconditions.preconditions.{f} of type string")
    for f in ("propagationPolicy", "kind", "apiVersion"):
        if options.get(f) is not None and not isinstance(options[f], str):
            raise errors.bad_request(f"json: cannot unmarshal into Go struct field DeleteOptions.{f} of type string")
    if options.get("orphanDependents") is not None and not isinstance(options["orphanDependents"], bool):
        raise errors.bad_request("json: cannot unmarshal into Go struct field DeleteOptions.orphanDependents of type bool")
    dry = options.get("dryRun")
    if dry is not None and (not isinstance(dry, list) or any(d != "All" for d in dry)):
        raise errors.bad_request('Invalid dryRun parameter: supported values: "All"')
    return options


def _namespace_finalizers(rt: ResourceType, obj: Obj) -> bool:
    return rt.storage_key == "/namespaces" and bool((obj.get("spec") or {}).get("finalizers"))
