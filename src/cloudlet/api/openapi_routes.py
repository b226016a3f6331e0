"""Routes serving the OpenAPI documents built by :mod:`cloudlet.api.openapi`.

``/openapi/v2`` and ``/openapi/v3`` (+ ``/openapi/v3/api/v1``,
``/openapi/v3/apis/GROUP/VERSION``) are generated from the live registry on
each request, so they always describe what is served.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudlet.api import openapi
from cloudlet.resources.registry import Registry


def _resources(registry: Registry, group: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
    out = []
    for rt in registry.all():
        if group is not None and (rt.group != group or rt.version != version):
            continue
        out.append({
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
            "plural": rt.plural,
            "namespaced": rt.namespaced,
            "subresources": list(rt.subresources),
        })
    return out


def add_routes(app: web.Application, registry: Registry) -> None:
    async def v2(request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        doc = openapi.openapi_v2(_resources(registry))
        if "protobuf" in accept and "json" not in accept.split("protobuf", 1)[0]:
            return web.Response(
                body=openapi.openapi_v2_protobuf(doc),
                headers={"Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"},
            )
        return web.json_response(doc)

    async def v3_index(_request: web.Request) -> web.Response:
        gvs = sorted({(rt.group, rt.version) for rt in registry.all()})
        return web.json_response(openapi.openapi_v3_index(gvs))

    async def v3_core(request: web.Request) -> web.Response:
        version = request.match_info["version"]
        res = _resources(registry, "", version)
        if not res:
            raise web.HTTPNotFound()
        return web.json_response(openapi.openapi_v3_group_version("", version, res))

    async def v3_group(request: web.Request) -> web.Response:
        g, v = request.match_info["group"], request.match_info["version"]
        res = _resources(registry, g, v)
        if not res:
            raise web.HTTPNotFound()
        return web.json_response(openapi.openapi_v3_group_version(g, v, res))

    r = app.router
    r.add_get("/openapi/v2", v2)
    r.add_get("/openapi/v3", v3_index)
    r.add_get("/openapi/v3/api/{version}", v3_core)
    r.add_get("/openapi/v3/apis/{group}/{version}", v3_group)
