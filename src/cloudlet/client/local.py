"""The in-process client: :class:`~cloudlet.client.interface.Client` over ObjectAPI.

:class:`LocalClient` is the fast path for controllers that live in the API
process: no HTTP, no JSON, same event loop. It reproduces what the HTTP
handlers add on top of :class:`~cloudlet.api.objects.ObjectAPI` (selector
parsing, patch application, subresource routing, watch filtering, bookmarks)
so a controller sees the same behaviour through either client.

Objects returned or yielded are deep copies (the store shares its dicts), and
objects passed in are copied before ObjectAPI touches them. The one exception
is opt-in: ``list(..., copy=False)`` and ``watch(..., copy=False)`` hand out
the store's own dicts, which are immutable by the store's contract and must
be treated as read-only (:attr:`LocalClient.shared_reads` advertises this; the
informer uses it to cache objects without a copy or a JSON round trip).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from cloudlet.api import errors
from cloudlet.api.errors import APIError
from cloudlet.api.objects import MERGE_PATCH, PATCH_MEDIA_TYPES, ObjectAPI, apply_patch
from cloudlet.api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    check_fields,
    parse_field_selector,
    parse_label_selector,
)
from cloudlet.client.interface import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    PATCH_TYPES,
    Obj,
    ResourceRef,
)
from cloudlet.resources.registry import ResourceType
from cloudlet.store.store import Event, Watcher, copy_obj

WATCH_DEFAULT_TIMEOUT = 1800.0


def _not_served() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource")


class LocalClient:
    """:class:`~cloudlet.client.interface.Client` calling ObjectAPI directly.

    ``bookmark_interval`` is how often an idle watch with ``allow_bookmarks``
    yields a BOOKMARK carrying the store's current revision.
    """

    #: ``list`` and ``watch`` accept ``copy=False`` (shared, read-only objects)
    shared_reads = True

    def __init__(self, api: ObjectAPI, *, bookmark_interval: float = 5.0) -> None:
        self.api = api
        self.registry = api.registry
        self.bookmark_interval = bookmark_interval

    # --- helpers -------------------------------------------------------------

    def resource_type(self, ref: ResourceRef) -> ResourceType:
        rt = self.registry.get(ref.group, ref.version, ref.plural)
        if rt is None:
            raise _not_served()
        return rt

    def _scope(self, rt: ResourceType, namespace: str | None) -> str:
        if namespace and not rt.namespaced:
            raise _not_served()
        return namespace or ""

    def _check_sub(self, rt: ResourceType, subresource: str) -> None:
        if not subresource:
            return
        if subresource in rt.subresources:
            return
        if subresource == "finalize" and rt.storage_key == "/namespaces":
            return
        raise _not_served()

    def _selectors(self, rt: ResourceType, label_selector: str, field_selector: str) -> tuple[LabelSelector, FieldSelector]:
        try:
            ls = parse_label_selector(label_selector or "")
            fs = parse_field_selector(field_selector or "")
            check_fields(fs, self.api.supported_fields(rt), rt.plural)
        except SelectorError as e:
            raise e.api_error() from e
        return ls, fs

    # --- reads ---------------------------------------------------------------

    async def get(self, ref: ResourceRef, name: str, namespace: str = "", *, subresource: str = "") -> Obj:
        rt = self.resource_type(ref)
        ns = self._scope(rt, namespace)
        self._check_sub(rt, subresource)
        obj = self.api.get(rt, ns, name)
        if subresource == "scale":
            if rt.scale is None:
                raise _not_served()
            return self.api.scale_of(rt, obj)
        return copy_obj(obj)

    async def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        *,
        copy: bool = True,
    ) -> Obj:
        rt = self.resource_type(ref)
        ns = self._scope(rt, namespace)
        ls, fs = self._selectors(rt, label_selector, field_selector)
        await asyncio.sleep(0)  # reads never suspend otherwise: let paged listers share the loop
        res = self.api.list(
            rt, ns or None, label_selector=ls, field_selector=fs, limit=max(limit, 0), continue_=continue_
        )
        meta: Obj = {"resourceVersion": str(res.revision)}
        if res.continue_:
            meta["continue"] = res.continue_
        if res.remaining is not None:
            meta["remainingItemCount"] = res.remaining
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [copy_obj(o) for o in res.items] if copy else list(res.items),
        }

    # --- writes --------------------------------------------------------------

    async def create(self, ref: ResourceRef, obj: Obj, namespace: str = "") -> Obj:
        rt = self.resource_type(ref)
        body = copy_obj(obj)
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        ns = namespace or (meta.get("namespace") or "" if rt.namespaced else "")
        self._scope(rt, namespace)
        return copy_obj(await self.api.create(rt, ns, body))

    async def update(self, ref: ResourceRef, obj: Obj, subresource: str = "") -> Obj:
        rt = self.resource_type(ref)
        self._check_sub(rt, subresource)
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        ns = (meta.get("namespace") or "") if rt.namespaced else ""
        if not name:
            raise errors.bad_request("name is required for an update")
        if subresource == "scale":
            if rt.scale is None:
                raise _not_served()
            body = copy_obj(obj)
            return await self.api.update_scale(rt, ns, name, lambda _cur: body)
        return copy_obj(await self.api.update(rt, ns, name, copy_obj(obj), subresource=subresource))

    async def patch(
        self,
        ref: ResourceRef,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        namespace: str = "",
        subresource: str = "",
    ) -> Obj:
        rt = self.resource_type(ref)
        ns = self._scope(rt, namespace)
        self._check_sub(rt, subresource)
        if patch_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(patch_type)
        # the patch functions never mutate their inputs, so ``patch`` needs no copy
        if subresource == "scale":
            if rt.scale is None:
                raise _not_served()
            scale_type = "merge" if patch_type == "strategic" else patch_type  # Scale has no merge keys
            return await self.api.update_scale(rt, ns, name, _patcher(rt, name, scale_type, patch))
        if subresource not in ("", "status"):
            raise errors.method_not_allowed()
        apply = _patcher(rt, name, patch_type, patch)
        return copy_obj(await self.api.guaranteed_update(rt, ns, name, apply, subresource=subresource))

    async def apply(
        self,
        ref: ResourceRef,
        obj: Obj,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str = "",
    ) -> Obj:
        rt = self.resource_type(ref)
        self._check_sub(rt, subresource)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        name = meta.get("name") or ""
        ns = self._scope(rt, (meta.get("namespace") or "") if rt.namespaced else "")
        if not name:
            raise errors.bad_request("name is required for an apply")
        if not field_manager:
            raise errors.invalid(
                "PatchOptions", "meta.k8s.io", "", [errors.required("fieldManager", "is required for apply patch")]
            )
        result, _created = await self.api.apply(
            rt, ns, name, copy_obj(obj), manager=field_manager, force=force, subresource=subresource
        )
        return copy_obj(result)

    async def delete(
        self,
        ref: ResourceRef,
        name: str,
        namespace: str = "",
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Obj | None = None,
    ) -> Obj:
        rt = self.resource_type(ref)
        ns = self._scope(rt, namespace)
        obj, gone = await self.api.delete(
            rt, ns, name, _delete_options(propagation_policy, grace_period_seconds, preconditions)
        )
        if gone and rt.storage_key != "/pods":
            return _status_success(rt, obj)
        return copy_obj(obj)

    async def delete_collection(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        propagation_policy: str | None = None,
    ) -> Obj:
        rt = self.resource_type(ref)
        ns = self._scope(rt, namespace)
        ls, fs = self._selectors(rt, label_selector, field_selector)
        items = await self.api.delete_collection(
            rt, ns or None, label_selector=ls, field_selector=fs,
            options=_delete_options(propagation_policy, None, None),
        )
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.api.store.revision)},
            "items": [copy_obj(o) for o in items],
        }

    # --- watch ---------------------------------------------------------------

    async def watch(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        allow_bookmarks: bool = False,
        timeout_seconds: float | None = None,
        *,
        copy: bool = True,
    ) -> AsyncIterator[tuple[str, Obj]]:
        rt = self.resource_type(ref)
        ns = self._scope(rt, namespace) or None
        ls, fs = self._selectors(rt, label_selector, field_selector)
        api = self.api
        initial: list[Obj] = []
        if resource_version in ("", "0"):
            start = api.store.revision
            watcher = api.watch(rt, ns, start)  # opened before the snapshot: nothing slips between
        else:
            try:
                start = int(resource_version)
            except ValueError as e:
                raise errors.bad_request(f"invalid resource version: {resource_version}") from e
            watcher = api.watch(rt, ns, start)
        try:
            if resource_version in ("", "0"):
                initial = api.list(rt, ns, label_selector=ls, field_selector=fs).items
            for o in initial:
                yield ADDED, copy_obj(o) if copy else o
            async for item in self._stream(rt, watcher, ls, fs, start, allow_bookmarks, timeout_seconds, copy):
                yield item
        finally:
            watcher.close()

    async def _stream(
        self,
        rt: ResourceType,
        watcher: Watcher,
        ls: LabelSelector,
        fs: FieldSelector,
        start: int,
        bookmarks: bool,
        timeout_seconds: float | None,
        copy: bool = True,
    ) -> AsyncIterator[tuple[str, Obj]]:
        api = self.api
        now = time.monotonic()
        deadline = now + (timeout_seconds if timeout_seconds and timeout_seconds > 0 else WATCH_DEFAULT_TIMEOUT)
        next_bookmark = now + self.bookmark_interval
        last_rev = start
        burst = 0
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if bookmarks and now >= next_bookmark:
                rev = api.store.revision if watcher.queue.empty() else last_rev
                last_rev = max(last_rev, rev)
                yield BOOKMARK, {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(last_rev)}}
                next_bookmark = time.monotonic() + self.bookmark_interval
                continue
            queue = watcher.queue
            if not queue.empty():  # a backlog: no timer needed (the common case under load)
                burst += 1
                if burst % 512 == 0:
                    await asyncio.sleep(0)  # a long backlog must not hog the loop
                ev = queue.get_nowait()
                if ev is None:
                    queue.put_nowait(None)  # closed: stay closed, as Watcher.next does
            else:
                wait = (min(deadline, next_bookmark) if bookmarks else deadline) - now
                try:
                    async with asyncio.timeout(wait):
                        ev = await watcher.next()
                except TimeoutError:
                    continue
            if ev is None:
                if watcher.overflowed:
                    raise errors.gone("watch closed: client too slow")
                return
            last_rev = ev.revision
            out = _filter_event(api, rt, ev, ls, fs, copy_obj if copy else _same)
            if out is not None:
                yield out


# --- module helpers ----------------------------------------------------------


def _delete_options(policy: str | None, grace: int | None, preconditions: Obj | None) -> Obj:
    opts: Obj = {}
    if policy is not None:
        opts["propagationPolicy"] = policy
    if grace is not None:
        opts["gracePeriodSeconds"] = grace
    if preconditions:
        opts["preconditions"] = dict(preconditions)
    return opts


def _status_success(rt: ResourceType, obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    details: Obj = {"name": meta.get("name", ""), "kind": rt.plural, "uid": meta.get("uid", "")}
    if rt.group:
        details["group"] = rt.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _same(obj: Obj) -> Obj:
    return obj


def _filter_event(
    api: ObjectAPI,
    rt: ResourceType,
    ev: Event,
    ls: LabelSelector,
    fs: FieldSelector,
    copy: Callable[[Obj], Obj] = copy_obj,
) -> tuple[str, Obj] | None:
    """The event as a selector-filtered watcher sees it (same rules as the HTTP watch)."""
    obj = api.to_version(rt, ev.obj)
    if ls.empty and fs.empty:
        return ev.type, copy(obj)
    if ev.type == DELETED:
        was = ev.prev is not None and api.matches(rt, ev.prev, ls, fs)
        return (DELETED, copy(obj)) if was or api.matches(rt, ev.obj, ls, fs) else None
    now_ok = api.matches(rt, ev.obj, ls, fs)
    was_ok = ev.prev is not None and api.matches(rt, ev.prev, ls, fs)
    if now_ok:
        return (MODIFIED if was_ok else ADDED), copy(obj)
    if was_ok:
        return DELETED, copy(obj)
    return None


def _patcher(rt: ResourceType, name: str, patch_type: str, patch: Any) -> Callable[[Obj], Obj]:
    media_type = PATCH_MEDIA_TYPES.get(patch_type, MERGE_PATCH)

    def apply(cur: Obj) -> Obj:
        return apply_patch(rt, name, media_type, patch, cur)

    return apply
