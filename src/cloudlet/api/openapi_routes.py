"""Routes serving the OpenAPI documents built by :mod:`cloudlet.api.openapi`.

``/openapi/v2`` (JSON or gnostic protobuf) and ``/openapi/v3`` (the index,
``/openapi/v3/api/v1``, ``/openapi/v3/apis/GROUP/VERSION``) describe what the
registry serves: built-in kinds with the full schemas of
:mod:`cloudlet.api.openapi_schemas`, custom resources with their
``ResourceType.openapi_schema``.

Caching. Nothing is built at startup. The first request builds what it needs
(in a worker thread, one build at a time) and the bytes are kept until the
registry changes: every request compares a cheap fingerprint of the registry
(each ResourceType's identity fields and the identity of its
``openapi_schema`` object) with the cached one. ``openapi_schema`` dicts must
therefore be replaced, never mutated in place, when a schema changes.

HTTP behaviour follows kube-openapi's handlers (``pkg/handler``,
``pkg/handler3``): ``ETag`` is the quoted upper-case hex SHA-512 of the JSON
bytes (v2 protobuf answers carry the JSON's ETag); ``If-None-Match`` gets a
304; group-version documents send ``Vary: Accept``; the index lists each
group-version as ``/openapi/v3/apis/G/V?hash=<etag>``; a request with a
``hash`` that is not current is answered 301 to the current URL, one with the
current hash gets ``Cache-Control: public, immutable`` and a one-year
``Expires`` (kubectl's disk cache then never asks again, and a changed CRD
changes the URL). Unacceptable ``Accept`` headers get 406.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import orjson
from aiohttp import web

from cloudlet.api import openapi, openapi_schemas
from cloudlet.api.patch import supports_strategic_merge
from cloudlet.resources.registry import Registry, ResourceType

__all__ = ["DOCUMENTS", "OpenAPIDocuments", "Served", "add_routes"]

_JSON = "application/json"
_V2_PB = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_V2_PB_DEPRECATED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class Served:
    """One serialized document: its bytes and ETag (hex SHA-512, no quotes)."""

    body: bytes
    etag: str


def _served(body: bytes) -> Served:
    return Served(body, openapi.spec_hash(body))


def _fingerprint(rts: list[ResourceType]) -> tuple[Any, ...]:
    return tuple(
        (
            rt.group,
            rt.version,
            rt.kind,
            rt.plural,
            rt.namespaced,
            tuple(rt.subresources),
            tuple(rt.verbs),
            id(rt.openapi_schema),
        )
        for rt in rts
    )


def _strategic_merge(rt: ResourceType) -> bool:
    """Advertise ``application/strategic-merge-patch+json`` (kubectl then computes
    client-side apply patches from the v3 schema) only where the server applies
    strategic merge patches and the schema carries the same patch metadata."""
    return (
        rt.openapi_schema is None
        and rt.strategic_merge
        and supports_strategic_merge(rt.group, rt.kind)
        and openapi_schemas.kind_definition_name(rt.group, rt.version, rt.kind) is not None
    )


@dataclass
class _Generation:
    """Everything built for one state of the registry (filled lazily)."""

    key: tuple[Any, ...]
    resources: list[dict[str, Any]]
    crd_schemas: dict[tuple[str, str, str], dict[str, Any]]
    keep_alive: list[Any]  # the openapi_schema objects whose ids are in ``key``
    server_version: str
    v3: dict[tuple[str, str], Served] = field(default_factory=dict)
    index: Served | None = None
    v2_json: Served | None = None
    v2_pb: bytes | None = None

    @property
    def group_versions(self) -> list[tuple[str, str]]:
        return sorted({(r["group"], r["version"]) for r in self.resources})

    # -- builders (run in a worker thread) --

    def build_v3(self, group: str, version: str) -> Served:
        got = self.v3.get((group, version))
        if got is None:
            schemas = {
                k: openapi_schemas.custom_resource_schema(g, v, k, s, v3=True)
                for (g, v, k), s in self.crd_schemas.items()
                if (g, v) == (group, version)
            }
            doc = openapi.openapi_v3_group_version(
                group,
                version,
                self.resources,
                schemas,
                definitions=openapi_schemas.builtin_definitions(True),
                server_version=self.server_version,
            )
            got = self.v3[(group, version)] = _served(openapi.serialize(doc))
        return got

    def build_index(self) -> Served:
        if self.index is None:
            hashes = {gv: self.build_v3(*gv).etag for gv in self.group_versions}
            self.index = _served(openapi.serialize(openapi.openapi_v3_index(self.group_versions, hashes)))
        return self.index

    def _v2_doc(self) -> dict[str, Any]:
        schemas = {
            (g, v, k): openapi_schemas.custom_resource_schema(g, v, k, s, v3=False)
            for (g, v, k), s in self.crd_schemas.items()
        }
        return openapi.openapi_v2(
            self.resources,
            schemas,
            definitions=openapi_schemas.builtin_definitions(False),
            server_version=self.server_version,
        )

    def build_v2(self, protobuf: bool) -> tuple[bytes, str]:
        if self.v2_json is None or (protobuf and self.v2_pb is None):
            doc = self._v2_doc()
            if self.v2_json is None:
                self.v2_json = _served(openapi.serialize(doc))
            if protobuf:
                self.v2_pb = openapi.openapi_v2_protobuf(doc)
        if protobuf:
            assert self.v2_pb is not None
            return self.v2_pb, self.v2_json.etag
        return self.v2_json.body, self.v2_json.etag


class OpenAPIDocuments:
    """The OpenAPI documents of one registry, built on demand and cached per
    registry state (see the module docstring). Safe to share across requests
    of one event loop."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._gen: _Generation | None = None
        self._lock = asyncio.Lock()
        self.build_seconds = 0.0  # total time spent building, for benchmarks and logs

    def generation(self) -> _Generation:
        """The cache entry for the registry as it is now (a new, empty one if it changed)."""
        rts = self.registry.all()
        key = _fingerprint(rts)
        gen = self._gen
        if gen is not None and gen.key == key:
            return gen
        resources: list[dict[str, Any]] = []
        crd: dict[tuple[str, str, str], dict[str, Any]] = {}
        for rt in rts:
            resources.append({
                "group": rt.group,
                "version": rt.version,
                "kind": rt.kind,
                "plural": rt.plural,
                "namespaced": rt.namespaced,
                "subresources": list(rt.subresources),
                "verbs": list(rt.verbs),
                "strategicMergePatch": _strategic_merge(rt),
            })
            if rt.openapi_schema is not None:
                # a private copy: the build runs in a worker thread
                crd[(rt.group, rt.version, rt.kind)] = orjson.loads(orjson.dumps(rt.openapi_schema))
        from cloudlet.api.app import version_info

        gen = self._gen = _Generation(
            key, resources, crd, [rt.openapi_schema for rt in rts], str(version_info()["gitVersion"])
        )
        return gen

    async def run(self, fn: Any, *args: Any) -> Any:
        """Run a builder off the event loop, one at a time."""
        async with self._lock:
            t0 = time.perf_counter()
            try:
                return await asyncio.to_thread(fn, *args)
            finally:
                self.build_seconds += time.perf_counter() - t0

    async def v3_index(self) -> Served:
        gen = self.generation()
        return gen.index or await self.run(gen.build_index)

    async def v3(self, group: str, version: str) -> Served | None:
        gen = self.generation()
        if (group, version) not in gen.group_versions:
            return None
        return gen.v3.get((group, version)) or await self.run(gen.build_v3, group, version)

    async def v2(self, protobuf: bool) -> tuple[bytes, str]:
        gen = self.generation()
        if gen.v2_json is not None and (not protobuf or gen.v2_pb is not None):
            return gen.build_v2(protobuf)
        result: tuple[bytes, str] = await self.run(gen.build_v2, protobuf)
        return result


# --- HTTP ----------------------------------------------------------------------------

#: Where :func:`add_routes` leaves the app's :class:`OpenAPIDocuments`.
DOCUMENTS = web.AppKey("openapi_documents", OpenAPIDocuments)


def _accept(header: str, offered: list[str]) -> str | None:
    """The offered media type the Accept header prefers (goautoneg's order: q, then
    specificity, then position), or None."""
    clauses: list[tuple[float, int, int, str]] = []
    for pos, part in enumerate((header or "*/*").split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        if not media:
            continue
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
        clauses.append((-q, -specificity, pos, media.lower()))
    for neg_q, _spec, _pos, media in sorted(clauses):
        if neg_q >= 0:
            continue
        mtype, _, msub = media.partition("/")
        for o in offered:
            otype, _, osub = o.partition("/")
            if mtype in ("*", otype) and msub in ("*", osub):
                return o
    return None


def _not_modified(request: web.Request, etag: str) -> bool:
    inm = request.headers.get("If-None-Match")
    if not inm:
        return False
    tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
    return "*" in tags or f'"{etag}"' in tags


def _respond(
    request: web.Request, body: bytes, etag: str, content_type: str, headers: dict[str, str] | None = None
) -> web.Response:
    h = {"ETag": f'"{etag}"', **(headers or {})}
    if _not_modified(request, etag):
        return web.Response(status=304, headers=h)
    h["Content-Type"] = content_type
    return web.Response(body=body, headers=h)


def add_routes(app: web.Application, registry: Registry) -> OpenAPIDocuments:
    docs = OpenAPIDocuments(registry)
    app[DOCUMENTS] = docs

    async def v2(request: web.Request) -> web.Response:
        media = _accept(request.headers.get("Accept", ""), [_JSON, _V2_PB_DEPRECATED, _V2_PB])
        if media is None:
            return web.Response(status=406, headers={"Vary": "Accept"})
        protobuf = media != _JSON
        body, etag = await docs.v2(protobuf)
        return _respond(request, body, etag, _V2_PB if protobuf else _JSON, {"Vary": "Accept"})

    async def v3_index(request: web.Request) -> web.Response:
        served = await docs.v3_index()
        return _respond(request, served.body, served.etag, _JSON)

    async def v3_group_version(request: web.Request, group: str, version: str) -> web.Response:
        headers = {"Vary": "Accept"}
        if _accept(request.headers.get("Accept", ""), [_JSON]) is None:
            return web.Response(status=406, headers=headers)
        served = await docs.v3(group, version)
        if served is None:
            raise web.HTTPNotFound()
        wanted = request.query.get("hash")
        if wanted:
            if wanted != served.etag:
                location = f"/openapi/v3/{openapi.gv_key(group, version)}?hash={served.etag}"
                return web.Response(status=301, headers={**headers, "Location": location, "ETag": f'"{served.etag}"'})
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = formatdate(time.time() + _YEAR, usegmt=True)
        return _respond(request, served.body, served.etag, _JSON, headers)

    async def v3_core(request: web.Request) -> web.Response:
        return await v3_group_version(request, "", request.match_info["version"])

    async def v3_group(request: web.Request) -> web.Response:
        return await v3_group_version(request, request.match_info["group"], request.match_info["version"])

    r = app.router
    r.add_get("/openapi/v2", v2)
    r.add_get("/openapi/v3", v3_index)
    r.add_get("/openapi/v3/api/{version}", v3_core)
    r.add_get("/openapi/v3/apis/{group}/{version}", v3_group)
    return docs
