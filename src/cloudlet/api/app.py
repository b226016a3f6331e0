"""The aiohttp application: middleware (auth, errors, logging) and routes.

Everything not a resource request lives here: health (``/livez``,
``/readyz``, ``/healthz``), ``/version``, discovery and OpenAPI. Every error
leaves as a Kubernetes ``Status``; an unexpected exception is logged and
answered with a 500 ``Status`` (a bug, never a normal outcome) so the server
keeps serving.
"""

from __future__ import annotations

import hmac
import logging
import platform
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cloudlet import __version__, metrics
from cloudlet.api import codec, discovery, errors, prometheus
from cloudlet.api.errors import APIError
from cloudlet.api.handlers import ResourceHandlers
from cloudlet.api.objects import ObjectAPI
from cloudlet.resources.registry import Registry

log = logging.getLogger("cloudlet.api")
access_log = logging.getLogger("cloudlet.api.access")

KUBE_COMPAT = ("1", "32")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(err: APIError) -> web.Response:
    resp = web.Response(body=codec.dumps(err.status()), status=err.code, content_type="application/json")
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp


def warning_header(text: str) -> str:
    """``299 - "text"`` with quotes and backslashes escaped and no control or non-ASCII bytes."""
    safe = "".join(ch if 32 <= ord(ch) < 127 else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return '299 - "' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'


def version_info() -> dict[str, Any]:
    return {
        "major": KUBE_COMPAT[0],
        "minor": KUBE_COMPAT[1],
        "gitVersion": f"v{KUBE_COMPAT[0]}.{KUBE_COMPAT[1]}.0+cloudlet-{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-11-29T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{'amd64' if platform.machine() == 'x86_64' else platform.machine()}",
    }


def build_app(api: ObjectAPI, registry: Registry, token: str) -> tuple[web.Application, ResourceHandlers]:
    handlers = ResourceHandlers(api, registry)
    public = {"/livez", "/readyz", "/healthz", "/version"}
    token_b = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        t0 = time.perf_counter()
        status = 500
        labels = prometheus.request_labels(request)
        if labels is not None and labels[0] == "WATCH":
            metrics.API_LONGRUNNING.labels(*labels).inc()
        try:
            if request.path not in public:
                auth = request.headers.get("Authorization", "")
                scheme, _, cred = auth.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(cred.strip().encode(), token_b):
                    raise errors.unauthorized()
            resp = await handler(request)
            status = resp.status
            warnings = request.get("warnings")
            if warnings and not resp.prepared:
                for w in dict.fromkeys(warnings):
                    resp.headers.add("Warning", warning_header(w))
            return resp
        except APIError as e:
            status = e.code
            return error_response(e)
        except web.HTTPRequestEntityTooLarge:
            status = 413
            return error_response(errors.too_large())
        except web.HTTPException as e:
            status = e.status
            if e.status == 404:
                return error_response(APIError(404, "NotFound", "the server could not find the requested resource"))
            if e.status == 405:
                return error_response(errors.method_not_allowed())
            return error_response(APIError(e.status, e.reason or "BadRequest", e.text or e.reason or ""))
        except Exception as e:  # a bug: log it, answer 500, keep serving
            log.exception("unhandled error", extra={"path": request.path, "method": request.method})
            return error_response(errors.internal(type(e).__name__))
        finally:
            if labels is not None:
                if labels[0] == "WATCH":
                    metrics.API_LONGRUNNING.labels(*labels).dec()
                prometheus.observe(labels, status, time.perf_counter() - t0)
            if access_log.isEnabledFor(logging.DEBUG):
                access_log.debug(
                    "request",
                    extra={
                        "verb": request.method,
                        "path": request.path_qs,
                        "status": status,
                        "ms": round((time.perf_counter() - t0) * 1000, 2),
                    },
                )

    app = web.Application(middlewares=[middleware], client_max_size=codec.MAX_BODY + 1)

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def version(_request: web.Request) -> web.Response:
        return web.json_response(version_info())

    async def api_versions(_request: web.Request) -> web.Response:
        return web.json_response(discovery.core_versions())

    async def core_v1(request: web.Request) -> web.Response:
        if request.match_info["version"] not in registry.groups().get("", []):
            raise web.HTTPNotFound()
        return web.json_response(discovery.resource_list(registry, "", request.match_info["version"]))

    async def apis(_request: web.Request) -> web.Response:
        return web.json_response(discovery.group_list(registry))

    async def api_group(request: web.Request) -> web.Response:
        doc = discovery.group(registry, request.match_info["group"])
        if doc is None:
            raise web.HTTPNotFound()
        return web.json_response(doc)

    async def group_version(request: web.Request) -> web.Response:
        g, v = request.match_info["group"], request.match_info["version"]
        if v not in registry.groups().get(g, []):
            raise web.HTTPNotFound()
        return web.json_response(discovery.resource_list(registry, g, v))

    from cloudlet.api import openapi_routes

    r = app.router
    for p in ("/livez", "/readyz", "/healthz"):
        r.add_get(p, ok)
    r.add_get("/metrics", prometheus.handle_metrics)
    collector = prometheus.state_collector(api.store)

    async def register_collector(_app: web.Application) -> None:
        metrics.add_collector(collector)

    async def unregister_collector(_app: web.Application) -> None:
        metrics.remove_collector(collector)

    app.on_startup.append(register_collector)
    app.on_cleanup.append(unregister_collector)
    r.add_get("/version", version)
    r.add_get("/version/", version)
    r.add_get("/api", api_versions)
    r.add_get("/api/", api_versions)
    r.add_get("/api/{version}", core_v1)
    r.add_get("/api/{version}/", core_v1)
    r.add_get("/apis", apis)
    r.add_get("/apis/", apis)
    r.add_get("/apis/{group}", api_group)
    r.add_get("/apis/{group}/", api_group)
    r.add_get("/apis/{group}/{version}", group_version)
    r.add_get("/apis/{group}/{version}/", group_version)
    openapi_routes.add_routes(app, registry)
    r.add_route("*", "/api/{version}/{tail:.+}", handlers.core)
    r.add_route("*", "/apis/{group}/{version}/{tail:.+}", handlers.grouped)
    return app, handlers
