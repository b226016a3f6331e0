"""HTTP handlers for resource requests (CRUD, list, watch, patch, subresources).

Paths follow Kubernetes exactly::

    /api/v1/{resource}[/{name}[/{sub}]]
    /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]]
    /apis/{group}/{version}/...            (same shapes)

The handlers parse the request, negotiate the output (JSON, YAML, Table,
PartialObjectMetadata) and delegate semantics to
:class:`~cloudlet.api.objects.ObjectAPI`. Extension points for subresources
that later components own (``binding``, ``eviction``, ``log``) are
:attr:`ResourceHandlers.subresource_handlers`.

Watch streams of one resource share the encoded frame of each event
(:attr:`ResourceHandlers.watch_frames`, as kube-apiserver's watch cache does),
and send the events already queued for a stream in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cloudlet.api import codec, errors
from cloudlet.api import table as tables
from cloudlet.api.errors import APIError
from cloudlet.api.fieldcheck import check_object
from cloudlet.api.managedfields import manager_name, validate_field_manager
from cloudlet.api.objects import ObjectAPI, apply_patch
from cloudlet.api.patch import merge_patch
from cloudlet.api.protobuf import PROTOBUF, ProtobufError, UnsupportedKindError, decode_protobuf
from cloudlet.api.selectors import (
    SelectorError,
    check_fields,
    parse_field_selector,
    parse_label_selector,
)
from cloudlet.resources.registry import Registry, ResourceType
from cloudlet.store.store import DELETED, Event, copy_obj

log = logging.getLogger("cloudlet.api")

Obj = dict[str, Any]
SubHandler = Callable[["Target", web.Request], Awaitable[web.StreamResponse]]

WATCH_DEFAULT_TIMEOUT = 1800.0
BOOKMARK_EVERY = 5.0
WATCH_WRITE_BATCH = 256 * 1024  # bytes of queued watch frames sent in one write


@dataclass
class Target:
    rt: ResourceType
    namespace: str  # "" = cluster-scoped or all namespaces
    name: str
    sub: str


@dataclass
class Output:
    kind: str  # json | yaml | table | partial
    include_object: str = "Metadata"


def negotiate(request: web.Request) -> Output:
    accept = request.headers.get("Accept", "") or "*/*"
    saw_ok = False
    for part in accept.split(","):
        bits = [b.strip() for b in part.split(";")]
        mt = bits[0].lower()
        params = dict(b.split("=", 1) for b in bits[1:] if "=" in b)
        as_ = params.get("as")
        if mt in ("application/json", "*/*", "application/*") or mt.startswith("application/yaml"):
            if as_ == "Table" and params.get("g") == "meta.k8s.io":
                inc = request.query.get("includeObject", "Metadata")
                return Output("table", inc)
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and params.get("g") == "meta.k8s.io":
                return Output("partial")
            if as_ is None:
                if mt == "application/yaml":
                    return Output("yaml")
                saw_ok = True
                return Output("json")
        if mt in ("application/vnd.kubernetes.protobuf",):
            continue
    if saw_ok:
        return Output("json")
    if "json" in accept or "*/*" in accept or "yaml" in accept:
        return Output("json")
    raise errors.not_acceptable(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )


def respond(request: web.Request, obj: Any, status: int = 200, out: Output | None = None) -> web.Response:
    if out is not None and out.kind == "yaml":
        return web.Response(body=codec.dumps_yaml(obj), status=status, content_type="application/yaml")
    if request.query.get("pretty") in ("true", "1"):
        return web.Response(body=codec.dumps_pretty(obj), status=status, content_type="application/json")
    return web.Response(body=codec.dumps(obj), status=status, content_type="application/json")


def _obj_revision(obj: Obj) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _short(patch: Any) -> str:
    text = codec.dumps(patch).decode(errors="replace")
    return text if len(text) <= 200 else text[:200] + "..."


def status_success(rt: ResourceType, obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    details: Obj = {"name": meta.get("name", ""), "kind": rt.plural, "uid": meta.get("uid", "")}
    if rt.group:
        details["group"] = rt.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _int_param(request: web.Request, name: str) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError as e:
        raise errors.bad_request(f'invalid value for {name}: "{v}": must be an integer') from e


def _bool_param(request: web.Request, name: str) -> bool:
    v = request.query.get(name, "")
    return v.lower() in ("1", "true", "yes")


def _dry_run(request: web.Request) -> bool:
    vals = request.query.getall("dryRun", [])
    for v in vals:
        if v != "All":
            raise errors.bad_request(f'Invalid dryRun parameter: unsupported dry run value "{v}"; supported values: "All"')
    return bool(vals)


def _field_validation(request: web.Request) -> str:
    v = request.query.get("fieldValidation", "")
    if v not in ("", "Ignore", "Warn", "Strict"):
        raise errors.invalid(
            "CreateOptions",
            "meta.k8s.io",
            "",
            [errors.not_supported("fieldValidation", v, ["", "Ignore", "Strict", "Warn"])],
        )
    return v or "Warn"


def _field_manager(request: web.Request, options_kind: str, *, apply: bool = False) -> str:
    """The managedFields manager of a write: ``fieldManager``, else the User-Agent prefix."""
    fm = request.query.get("fieldManager", "")
    errs: list[errors.FieldError] = []
    if apply and not fm:
        errs.append(errors.required("fieldManager", "is required for apply patch"))
    errs.extend(validate_field_manager(fm))
    if not apply and options_kind == "PatchOptions" and "force" in request.query:
        errs.insert(0, errors.forbidden_field("force", "may not be specified for non-apply patch"))
    if errs:
        raise errors.invalid(options_kind, "meta.k8s.io", "", errs)
    return manager_name(fm, request.headers.get("User-Agent"))


def _check(rt: ResourceType, obj: Obj) -> tuple[list[str], list[str]]:
    """Unknown fields (pruned) and Go decode errors for ``obj``."""
    if rt.prune_unknown is not None:
        return rt.prune_unknown(obj), []
    return check_object(obj, rt.api_version, rt.kind)


def _verb(method: str, named: bool, watching: bool) -> str:
    if method == "GET":
        return "get" if named else ("watch" if watching else "list")
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return method.lower()


def _list_options_invalid(err: errors.FieldError) -> APIError:
    return errors.invalid("ListOptions", "meta.k8s.io", "", [err])


def _list_revision(request: web.Request, *, watch: bool) -> int | None:
    """Validate resourceVersion / resourceVersionMatch; the revision to list at for Exact."""
    rv = request.query.get("resourceVersion", "")
    match = request.query.get("resourceVersionMatch", "")
    if match not in ("", "Exact", "NotOlderThan"):
        raise _list_options_invalid(errors.not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]))
    send_initial = request.query.get("sendInitialEvents")
    if send_initial is not None and watch:
        if match != "NotOlderThan":
            raise _list_options_invalid(errors.forbidden_field("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
    elif send_initial is not None:
        raise _list_options_invalid(errors.forbidden_field("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    elif match and not rv:
        raise _list_options_invalid(errors.forbidden_field("resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"))
    if rv:
        try:
            n = int(rv)
        except ValueError as e:
            raise errors.bad_request(f'invalid resource version "{rv}"') from e
        if n < 0:
            raise errors.bad_request(f'invalid resource version "{rv}"')
        if match == "Exact":
            if watch:
                raise _list_options_invalid(errors.forbidden_field("resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
            if n == 0:
                raise _list_options_invalid(errors.forbidden_field("resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
            return n
    return None


def add_warnings(request: web.Request, warnings: list[str]) -> None:
    """Queue ``Warning: 299`` response headers (sent by the app middleware)."""
    request.setdefault("warnings", []).extend(warnings)


class ResourceHandlers:
    def __init__(self, api: ObjectAPI, registry: Registry) -> None:
        self.api = api
        self.registry = registry
        self.subresource_handlers: dict[tuple[str, str], SubHandler] = {}
        self.shutting_down = asyncio.Event()
        self.watch_frames = codec.FrameCache()  # encoded watch events, shared by the streams
        self.watch_streams: dict[str, int] = {}  # open watch streams per storage prefix

    # --- routing -------------------------------------------------------------

    def target(self, group: str, version: str, tail: str) -> Target:
        parts = [p for p in tail.split("/") if p != ""] if tail else []
        if not parts:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        ns = ""
        if parts[0] == "namespaces" and len(parts) >= 3 and not (len(parts) == 3 and parts[2] in ("status", "finalize")):
            ns = parts[1]
            parts = parts[2:]
        plural = parts[0]
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        if ns and not rt.namespaced:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        name = parts[1] if len(parts) > 1 else ""
        sub = parts[2] if len(parts) > 2 else ""
        if len(parts) > 3:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        if sub and sub not in rt.subresources and (rt.key, sub) not in self.subresource_handlers and not (
            rt.storage_key == "/namespaces" and sub == "finalize"
        ):
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        return Target(rt, ns, name, sub)

    async def core(self, request: web.Request) -> web.StreamResponse:
        return await self.dispatch(request, "", request.match_info["version"], request.match_info.get("tail", ""))

    async def grouped(self, request: web.Request) -> web.StreamResponse:
        return await self.dispatch(
            request, request.match_info["group"], request.match_info["version"], request.match_info.get("tail", "")
        )

    async def dispatch(self, request: web.Request, group: str, version: str, tail: str) -> web.StreamResponse:
        t = self.target(group, version, tail)
        m = request.method
        custom = self.subresource_handlers.get((t.rt.key, t.sub)) if t.sub else None
        if custom is not None:
            return await custom(t, request)
        if not t.sub:
            verb = _verb(request.method, bool(t.name), _bool_param(request, "watch"))
            if verb not in t.rt.verbs:
                raise errors.method_not_allowed()
        if not t.name:
            if m == "GET":
                if _bool_param(request, "watch"):
                    return await self.watch(t, request)
                return await self.list(t, request)
            if m == "POST":
                return await self.create(t, request)
            if m == "DELETE":
                return await self.delete_collection(t, request)
            raise errors.method_not_allowed()
        if t.sub == "scale":
            return await self.scale(t, request)
        if m == "GET":
            return await self.get(t, request)
        if m == "PUT":
            return await self.update(t, request)
        if m == "PATCH":
            return await self.patch(t, request)
        if m == "DELETE" and not t.sub:
            return await self.delete(t, request)
        if m == "POST" and not t.sub:
            raise errors.method_not_allowed()
        raise errors.method_not_allowed()

    async def body(self, request: web.Request) -> tuple[Any, str]:
        if request.content_length is not None and request.content_length > codec.MAX_BODY:
            raise errors.too_large()
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as e:
            raise errors.too_large() from e
        ctype = request.headers.get("Content-Type", "")
        mt = codec.media_type(ctype)
        if mt == PROTOBUF:
            try:
                if len(raw) > 64 * 1024:
                    return await asyncio.to_thread(decode_protobuf, raw), mt
                return decode_protobuf(raw), mt
            except UnsupportedKindError as e:
                raise errors.unsupported_media_type(mt) from e
            except ProtobufError as e:
                raise errors.bad_request(f"failed to decode protobuf body: {e}") from e
        return codec.decode(raw, ctype), mt

    def check_fields(self, rt: ResourceType, obj: Any, mode: str, request: web.Request) -> None:
        """Apply ``fieldValidation`` to a create/update body: prune unknown fields, warn or reject."""
        if not isinstance(obj, dict):
            return
        unknown, bad = _check(rt, obj)
        if bad:
            raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {bad[0]}')
        if not unknown or mode == "Ignore":
            return
        if mode == "Strict":
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {listed}'
            )
        add_warnings(request, [f'unknown field "{u}"' for u in unknown])

    # --- reads ---------------------------------------------------------------

    async def get(self, t: Target, request: web.Request) -> web.StreamResponse:
        out = negotiate(request)
        obj = self.api.get(t.rt, t.namespace, t.name)
        return self._render_one(t.rt, obj, out, request)

    def _render_one(self, rt: ResourceType, obj: Obj, out: Output, request: web.Request, status: int = 200) -> web.Response:
        if out.kind == "table":
            return respond(request, tables.table(rt, [obj], resource_version=obj["metadata"].get("resourceVersion", ""), include_object=out.include_object), status)
        if out.kind == "partial":
            return respond(request, tables.partial_metadata(obj), status)
        return respond(request, obj, status, out)

    def _selectors(self, t: Target, request: web.Request) -> tuple[Any, Any]:
        try:
            ls = parse_label_selector(request.query.get("labelSelector", ""))
        except SelectorError as e:
            raise errors.bad_request(str(e)) from e
        try:
            fs = parse_field_selector(request.query.get("fieldSelector", ""))
            check_fields(fs, self.api.supported_fields(t.rt), t.rt.plural)
        except SelectorError as e:
            raise errors.bad_request(str(e)) from e
        return ls, fs

    async def list(self, t: Target, request: web.Request) -> web.StreamResponse:
        out = negotiate(request)
        ls, fs = self._selectors(t, request)
        limit = _int_param(request, "limit") or 0
        if limit < 0:
            limit = 0
        at = _list_revision(request, watch=False)
        res = self.api.list(
            t.rt, t.namespace or None, label_selector=ls, field_selector=fs, limit=limit,
            continue_=request.query.get("continue", ""), at=at,
        )
        rv = str(res.revision)
        if out.kind == "table":
            return respond(request, tables.table(t.rt, res.items, resource_version=rv, continue_=res.continue_, remaining=res.remaining, include_object=out.include_object))
        meta: Obj = {"resourceVersion": rv}
        if res.continue_:
            meta["continue"] = res.continue_
        if res.remaining is not None:
            meta["remainingItemCount"] = res.remaining
        if out.kind == "partial":
            return respond(request, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": [tables.partial_metadata(o) for o in res.items]})
        return respond(request, {"kind": t.rt.list_kind, "apiVersion": t.rt.api_version, "metadata": meta, "items": res.items}, out=out)

    # --- watch ---------------------------------------------------------------

    async def watch(self, t: Target, request: web.Request) -> web.StreamResponse:
        out = negotiate(request)
        ls, fs = self._selectors(t, request)
        rv_param = request.query.get("resourceVersion", "")
        _list_revision(request, watch=True)
        timeout = _int_param(request, "timeoutSeconds")
        bookmarks = _bool_param(request, "allowWatchBookmarks")
        send_initial = _bool_param(request, "sendInitialEvents")
        rt = t.rt
        api = self.api
        initial: list[Obj] = []
        if rv_param in ("", "0") or send_initial:
            # atomically: open the watch at the current revision and snapshot the state
            start = api.store.revision
            if rv_param not in ("", "0") and send_initial:
                try:
                    start = max(start, int(rv_param))
                except ValueError as e:
                    raise errors.bad_request(f"invalid resource version: {rv_param}") from e
            watcher = api.watch(rt, t.namespace or None, start)
            initial = api.list(rt, t.namespace or None, label_selector=ls, field_selector=fs).items
        else:
            try:
                start = int(rv_param)
            except ValueError as e:
                raise errors.bad_request(f"invalid resource version: {rv_param}") from e
            watcher = api.watch(rt, t.namespace or None, start)
        resp = web.StreamResponse(status=200)
        resp.content_type = "application/json"
        resp.headers["Transfer-Encoding"] = "chunked"
        frame = self._watch_encoder(rt, out)
        streams = self.watch_streams
        streams[rt.storage_key] = streams.get(rt.storage_key, 0) + 1

        def bookmark(rev: int, initial_end: bool = False) -> bytes:
            meta: Obj = {"resourceVersion": str(rev)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return codec.watch_frame("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta})

        try:
            await resp.prepare(request)
            chunks: list[bytes] = []
            size = 0
            for o in initial:  # already in rt's version (ObjectAPI.list converts)
                chunks.append(frame("ADDED", o, _obj_revision(o) if rt.source is None else None, False))
                size += len(chunks[-1])
                if size >= WATCH_WRITE_BATCH:
                    await resp.write(b"".join(chunks))
                    chunks, size = [], 0
            if chunks:
                await resp.write(b"".join(chunks))
            if send_initial and bookmarks:
                await resp.write(bookmark(start, initial_end=True))
            deadline = time.monotonic() + (timeout if timeout and timeout > 0 else WATCH_DEFAULT_TIMEOUT)
            next_bookmark = time.monotonic() + BOOKMARK_EVERY
            last_rev = start
            queue = watcher.queue
            closed = False
            while not closed and not self.shutting_down.is_set():
                now = time.monotonic()
                wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                if wait <= 0:
                    if now >= deadline:
                        break
                    await resp.write(bookmark(max(last_rev, api.store.revision if queue.empty() else last_rev)))
                    next_bookmark = now + BOOKMARK_EVERY
                    continue
                # One timer for every event until the next bookmark, deadline or liveness
                # check (not one per event). It can only fire while this task waits, and
                # a write cut short in its drain has already handed its bytes over.
                try:
                    async with asyncio.timeout(min(wait, 1.0)):
                        backlog = 0  # writes since this stream last waited
                        while not self.shutting_down.is_set():
                            if queue.empty():
                                backlog = 0
                                ev = await watcher.next()
                            else:
                                backlog += 1
                                if backlog % 16 == 0:
                                    await asyncio.sleep(0)  # a long backlog must not hog the loop
                                ev = watcher.next_nowait()
                            # the events already queued go out in one write (one TLS record, one syscall)
                            chunks, size = [], 0
                            while ev is not None:
                                last_rev = ev.revision
                                chunk = self._event_chunk(t, ev, ls, fs, frame)
                                if chunk:
                                    chunks.append(chunk)
                                    size += len(chunk)
                                if size >= WATCH_WRITE_BATCH or queue.empty():
                                    break
                                ev = watcher.next_nowait()
                            if chunks:
                                await resp.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
                            if ev is None:
                                closed = True
                                break
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if closed and watcher.overflowed:
                    await resp.write(codec.watch_frame("ERROR", errors.gone("watch closed: client too slow").status()))
        except ConnectionResetError:
            pass
        finally:
            watcher.close()
            if streams[rt.storage_key] > 1:
                streams[rt.storage_key] -= 1
            else:
                del streams[rt.storage_key]
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await resp.write_eof()
        return resp

    def _watch_encoder(self, rt: ResourceType, out: Output) -> Callable[[str, Obj, int | None, bool], bytes]:
        """``frame(type, obj, revision, convert)``: the wire frame of one event of this watch.

        The bytes depend only on the event (its revision), the type this watch
        sees it as, the conversion to ``rt``'s version and the output format, so
        watches that agree on all of them share one encoding through
        :attr:`watch_frames`. ``convert`` says ``obj`` is the stored object, to be
        converted to ``rt``'s version (only on a miss); ``revision`` ``None``
        means the object has no revision of the store's (never shared). While a
        resource has one watch stream only, nothing is shared or kept. Table
        cells can depend on the time (ages), so Table frames are shared only
        within one second; the first Table frame of a watch carries the column
        definitions and the later ones do not, as kube-apiserver sends them.
        """
        api = self.api
        cache = self.watch_frames
        fmt = "json" if out.kind == "yaml" else out.kind  # YAML watches stream JSON frames
        include = out.include_object if fmt == "table" else ""
        columns = fmt == "table"
        streams = self.watch_streams
        prefix = rt.storage_key

        def encode(type_: str, obj: Obj, convert: bool, with_columns: bool) -> bytes:
            if convert:
                obj = api.to_version(rt, obj)
            if fmt == "table":
                rv = obj["metadata"].get("resourceVersion", "")
                body: Any = tables.table(rt, [obj], resource_version=rv, include_object=include, with_columns=with_columns)
            elif fmt == "partial":
                body = tables.partial_metadata(obj)
            else:
                body = obj
            return codec.watch_frame(type_, body)

        def frame(type_: str, obj: Obj, revision: int | None, convert: bool) -> bytes:
            nonlocal columns
            with_columns = columns
            columns = False
            if revision is None or streams.get(prefix, 0) < 2:
                return encode(type_, obj, convert, with_columns)
            key = (revision, type_, convert, id(rt), fmt, include, with_columns, int(time.time()) if fmt == "table" else 0)
            data = cache.get(key, rt)
            if data is None:
                data = encode(type_, obj, convert, with_columns)
                cache.put(key, rt, data)
            return data

        return frame

    def _event_chunk(
        self, t: Target, ev: Event, ls: Any, fs: Any, frame: Callable[[str, Obj, int | None, bool], bytes]
    ) -> bytes | None:
        """The frame of ``ev`` as this watch sees it through its selectors, or ``None``."""
        rt = t.rt
        api = self.api
        if (ls is None or ls.empty) and (fs is None or fs.empty):
            return frame(ev.type, ev.obj, ev.revision, True)
        now_ok = ev.type != DELETED and api.matches(rt, ev.obj, ls, fs)
        was_ok = ev.prev is not None and api.matches(rt, ev.prev, ls, fs)
        if ev.type == DELETED:
            return frame(DELETED, ev.obj, ev.revision, True) if was_ok or api.matches(rt, ev.obj, ls, fs) else None
        if now_ok and was_ok:
            return frame("MODIFIED", ev.obj, ev.revision, True)
        if now_ok:
            return frame("ADDED", ev.obj, ev.revision, True)
        if was_ok:
            return frame(DELETED, ev.obj, ev.revision, True)
        return None

    # --- writes --------------------------------------------------------------

    async def create(self, t: Target, request: web.Request) -> web.StreamResponse:
        out = negotiate(request)
        dry = _dry_run(request)
        mode = _field_validation(request)
        manager = _field_manager(request, "CreateOptions")
        body, _mt = await self.body(request)
        self.check_fields(t.rt, body, mode, request)
        obj = await self.api.create(t.rt, t.namespace, body, dry_run=dry, manager=manager)
        return self._render_one(t.rt, obj, out, request, 201)

    async def update(self, t: Target, request: web.Request) -> web.StreamResponse:
        out = negotiate(request)
        dry = _dry_run(request)
        mode = _field_validation(request)
        manager = _field_manager(request, "UpdateOptions")
        body, _mt = await self.body(request)
        self.check_fields(t.rt, body, mode, request)
        if t.sub and t.sub not in ("status", "finalize"):
            raise errors.method_not_allowed()
        obj = await self.api.update(
            t.rt, t.namespace, t.name, body, subresource=t.sub, dry_run=dry, manager=manager
        )
        return self._render_one(t.rt, obj, out, request)

    def _patcher(
        self, t: Target, mt: str, patch: Any, mode: str = "Ignore", request: web.Request | None = None
    ) -> Callable[[Obj], Obj]:
        rt = t.rt

        def apply(cur: Obj) -> Obj:
            new = apply_patch(rt, t.name, mt, patch, cur)
            unknown, bad = _check(rt, new) if t.sub != "scale" else ([], [])
            if bad:
                raise errors.invalid("", "", "", [errors.invalid_value("patch", _short(patch), bad[0])])
            if unknown and mode == "Strict":
                listed = ", ".join(f'unknown field "{u}"' for u in unknown)
                raise errors.invalid(
                    "",
                    "",
                    "",
                    [errors.invalid_value("patch", _short(patch), f"strict decoding error: {listed}")],
                )
            if unknown and mode == "Warn" and request is not None:
                request["warnings"] = [f'unknown field "{u}"' for u in unknown]  # last attempt wins
            return new

        return apply

    async def patch(self, t: Target, request: web.Request) -> web.StreamResponse:
        out = negotiate(request)
        dry = _dry_run(request)
        mode = _field_validation(request)
        is_apply = codec.media_type(request.headers.get("Content-Type")) == codec.APPLY_PATCH
        manager = _field_manager(request, "PatchOptions", apply=is_apply)
        patch, mt = await self.body(request)
        if t.sub and t.sub != "status":
            raise errors.method_not_allowed()
        if mt == codec.APPLY_PATCH:
            obj, created = await self.api.apply(
                t.rt, t.namespace, t.name, patch, manager=manager, force=_bool_param(request, "force"),
                subresource=t.sub, dry_run=dry,
            )
            return self._render_one(t.rt, obj, out, request, 201 if created else 200)
        obj = await self.api.guaranteed_update(
            t.rt, t.namespace, t.name, self._patcher(t, mt, patch, mode, request), subresource=t.sub, dry_run=dry,
            manager=manager,
        )
        return self._render_one(t.rt, obj, out, request)

    async def scale(self, t: Target, request: web.Request) -> web.StreamResponse:
        rt = t.rt
        if rt.scale is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        dry = _dry_run(request)
        if request.method == "GET":
            return respond(request, self.api.scale_of(rt, self.api.get(rt, t.namespace, t.name)))
        if request.method == "PUT":
            manager = _field_manager(request, "UpdateOptions")
            body, _ = await self.body(request)

            def put(_cur: Obj) -> Obj:
                return copy_obj(body) if isinstance(body, dict) else body

            return respond(
                request, await self.api.update_scale(rt, t.namespace, t.name, put, dry_run=dry, manager=manager)
            )
        if request.method == "PATCH":
            manager = _field_manager(request, "PatchOptions")
            patch, mt = await self.body(request)
            scale_patcher = self._patcher(Target(rt, t.namespace, t.name, "scale"), mt, patch)

            def patched(cur: Obj) -> Obj:
                if mt == codec.STRATEGIC_PATCH:
                    return merge_patch(cur, patch)  # Scale has no merge keys
                return scale_patcher(cur)

            return respond(
                request, await self.api.update_scale(rt, t.namespace, t.name, patched, dry_run=dry, manager=manager)
            )
        raise errors.method_not_allowed()

    async def _delete_options(self, request: web.Request) -> Obj:
        opts: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                body = codec.decode(raw, request.headers.get("Content-Type"))
                if not isinstance(body, dict):
                    raise errors.bad_request("DeleteOptions must be a JSON object")
                opts.update(body)
        g = _int_param(request, "gracePeriodSeconds")
        if g is not None:
            opts["gracePeriodSeconds"] = g
        if "propagationPolicy" in request.query:
            opts["propagationPolicy"] = request.query["propagationPolicy"]
        if "orphanDependents" in request.query:
            opts["orphanDependents"] = _bool_param(request, "orphanDependents")
        return opts

    async def delete(self, t: Target, request: web.Request) -> web.StreamResponse:
        out = negotiate(request)
        dry = _dry_run(request)
        opts = await self._delete_options(request)
        dry = dry or bool(opts.get("dryRun"))
        obj, gone = await self.api.delete(t.rt, t.namespace, t.name, opts, dry_run=dry)
        if gone and t.rt.storage_key != "/pods":
            return respond(request, status_success(t.rt, obj))
        return self._render_one(t.rt, obj, out, request)

    async def delete_collection(self, t: Target, request: web.Request) -> web.StreamResponse:
        dry = _dry_run(request)
        ls, fs = self._selectors(t, request)
        opts = await self._delete_options(request)
        items = await self.api.delete_collection(
            t.rt, t.namespace or None, label_selector=ls, field_selector=fs, options=opts, dry_run=dry
        )
        return respond(request, {"kind": t.rt.list_kind, "apiVersion": t.rt.api_version, "metadata": {"resourceVersion": str(self.api.store.revision)}, "items": items})
