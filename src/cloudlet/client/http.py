"""The HTTP client: :class:`~cloudlet.client.interface.Client` over Kubernetes REST.

:class:`HTTPClient` talks to any Kubernetes API server — cloudlet's own or a
real cluster's — with aiohttp: one keep-alive session, JSON bodies, streaming
watches (one JSON event per line). Build one from a kubeconfig with
:meth:`HTTPClient.from_kubeconfig` (server, CA, bearer token or token file,
client certificate, basic auth, ``insecure-skip-tls-verify``,
``tls-server-name``; exec/auth-provider plugins are not supported) and
``await close()`` it when done (or use ``async with``).

Errors are rebuilt as :class:`~cloudlet.api.errors.APIError` from the
``Status`` body the server sends; an ``ERROR`` watch event raises the same
way (410 ``Expired`` for a compacted resourceVersion). Transport failures are
``APIError(503, "ServiceUnavailable")``.

The client does not know resource scopes: a non-empty ``namespace`` always
produces a ``/namespaces/{ns}/`` path; pass ``""`` for cluster-scoped kinds.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import yaml

from cloudlet.api.errors import APIError
from cloudlet.client.interface import PATCH_TYPES, Obj, ResourceRef

_PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def error_from_status(code: int, body: Any, text: str = "") -> APIError:
    """Rebuild the :class:`APIError` a server's ``Status`` body describes."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        return APIError(
            int(body.get("code") or code),
            str(body.get("reason") or _REASONS.get(code, "Unknown")),
            str(body.get("message") or ""),
            body.get("details") or None,
        )
    return APIError(code, _REASONS.get(code, "Unknown"), text or f"the server responded with status {code}")


class KubeconfigError(ValueError):
    """The kubeconfig is missing, malformed, or names a context it does not define."""


def _named(entries: Any, name: str, what: str) -> Obj:
    for e in entries or []:
        if isinstance(e, dict) and e.get("name") == name:
            return e.get(what) or {}
    raise KubeconfigError(f"{what} {name!r} not found in kubeconfig")


def _resolve(path: str, base: Path) -> str:
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else base / p)


def _ssl_context(cluster: Obj, user: Obj, base: Path) -> ssl.SSLContext:
    if cluster.get("certificate-authority-data"):
        ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        ctx = ssl.create_default_context(cafile=_resolve(cluster["certificate-authority"], base))
    else:
        ctx = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert_data, key_data = user.get("client-certificate-data"), user.get("client-key-data")
    if cert_data and key_data:
        # ssl only loads key material from files: write it to a private temp dir, load, delete
        with tempfile.TemporaryDirectory(prefix="cloudlet-kubeconfig-") as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            for path, data in ((cert, cert_data), (key, key_data)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(base64.b64decode(data))
            ctx.load_cert_chain(str(cert), str(key))
    elif user.get("client-certificate") and user.get("client-key"):
        ctx.load_cert_chain(_resolve(user["client-certificate"], base), _resolve(user["client-key"], base))
    return ctx


class HTTPClient:
    """:class:`~cloudlet.client.interface.Client` for a Kubernetes API server.

    The aiohttp session is created lazily on first use (inside the running
    loop) and kept alive; ``request_timeout`` bounds every non-watch request.
    """

    def __init__(
        self,
        server: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        server_hostname: str | None = None,
        namespace: str = "default",
        request_timeout: float = 60.0,
    ) -> None:
        self.server = server.rstrip("/")
        self.namespace = namespace  # the kubeconfig context's default namespace (informational)
        self._ssl = ssl_context
        self._headers = {"Accept": "application/json", "User-Agent": "cloudlet-client"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif basic_auth:
            raw = f"{basic_auth[0]}:{basic_auth[1]}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        self._server_hostname = server_hostname
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], context: str | None = None) -> HTTPClient:
        """A client for ``context`` (default: ``current-context``) of a kubeconfig file."""
        p = Path(path)
        try:
            cfg = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise KubeconfigError(f"cannot read kubeconfig {p}: {e}") from e
        if not isinstance(cfg, dict):
            raise KubeconfigError(f"kubeconfig {p} is not a mapping")
        ctx_name = context or cfg.get("current-context")
        if not ctx_name:
            raise KubeconfigError("kubeconfig has no current-context and none was given")
        ctx = _named(cfg.get("contexts"), ctx_name, "context")
        cluster = _named(cfg.get("clusters"), ctx.get("cluster", ""), "cluster")
        user = _named(cfg.get("users"), ctx["user"], "user") if ctx.get("user") else {}
        server = cluster.get("server")
        if not server:
            raise KubeconfigError(f"cluster {ctx.get('cluster')!r} has no server")
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(_resolve(user["tokenFile"], p.parent)).read_text().strip()
        basic = (user["username"], user["password"]) if user.get("username") and user.get("password") else None
        ssl_ctx = _ssl_context(cluster, user, p.parent) if server.startswith("https") else None
        return cls(
            server,
            ssl_context=ssl_ctx,
            token=token,
            basic_auth=basic,
            server_hostname=cluster.get("tls-server-name"),
            namespace=ctx.get("namespace") or "default",
        )

    # --- plumbing ------------------------------------------------------------

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def path(self, ref: ResourceRef, namespace: str | None = None, name: str = "", subresource: str = "") -> str:
        base = f"/apis/{ref.group}/{ref.version}" if ref.group else f"/api/{ref.version}"
        if namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{ref.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        """One request; the decoded JSON answer, or :class:`APIError`."""
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with self._sess().request(
                method, self.server + path, params=params, data=data, headers=headers,
                timeout=self._timeout, server_hostname=self._server_hostname,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except aiohttp.ClientError as e:
            raise APIError(503, "ServiceUnavailable", f"cannot reach {self.server}: {e}") from e
        except TimeoutError as e:
            raise APIError(504, "Timeout", f"request to {self.server} timed out") from e
        try:
            decoded = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            decoded = None
        if status >= 400:
            raise error_from_status(status, decoded, raw[:500].decode(errors="replace"))
        if not isinstance(decoded, dict):
            raise APIError(500, "InternalError", f"unexpected non-object answer from {method} {path}")
        return decoded

    # --- Client --------------------------------------------------------------

    async def get(self, ref: ResourceRef, name: str, namespace: str = "", *, subresource: str = "") -> Obj:
        return await self.request("GET", self.path(ref, namespace, name, subresource))

    async def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
    ) -> Obj:
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit > 0:
            params["limit"] = str(limit)
        if continue_:
            params["continue"] = continue_
        return await self.request("GET", self.path(ref, namespace), params=params)

    async def create(self, ref: ResourceRef, obj: Obj, namespace: str = "") -> Obj:
        ns = namespace or (obj.get("metadata") or {}).get("namespace") or ""
        return await self.request("POST", self.path(ref, ns), body=obj)

    async def update(self, ref: ResourceRef, obj: Obj, subresource: str = "") -> Obj:
        meta = obj.get("metadata") or {}
        path = self.path(ref, meta.get("namespace") or "", meta.get("name") or "", subresource)
        return await self.request("PUT", path, body=obj)

    async def patch(
        self,
        ref: ResourceRef,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        namespace: str = "",
        subresource: str = "",
    ) -> Obj:
        if patch_type not in PATCH_TYPES:
            raise APIError(415, "UnsupportedMediaType", f"unsupported patch type {patch_type!r}")
        return await self.request(
            "PATCH", self.path(ref, namespace, name, subresource), body=patch,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
        )

    async def apply(
        self,
        ref: ResourceRef,
        obj: Obj,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str = "",
    ) -> Obj:
        meta = obj.get("metadata") or {}
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        path = self.path(ref, meta.get("namespace") or "", meta.get("name") or "", subresource)
        return await self.request(
            "PATCH", path, params=params, body=obj, content_type="application/apply-patch+yaml"
        )

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
        body = _delete_options(propagation_policy, grace_period_seconds, preconditions)
        return await self.request("DELETE", self.path(ref, namespace, name), body=body)

    async def delete_collection(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        propagation_policy: str | None = None,
    ) -> Obj:
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        body = _delete_options(propagation_policy, None, None)
        return await self.request("DELETE", self.path(ref, namespace), params=params, body=body)

    async def watch(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        allow_bookmarks: bool = False,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[tuple[str, Obj]]:
        params = {"watch": "1"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if timeout_seconds:
            params["timeoutSeconds"] = str(max(1, int(timeout_seconds)))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        url = self.server + self.path(ref, namespace)
        try:
            async with self._sess().get(
                url, params=params, timeout=timeout, server_hostname=self._server_hostname
            ) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        body = None
                    raise error_from_status(resp.status, body, raw[:500].decode(errors="replace"))
                buf = b""
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while (nl := buf.find(b"\n")) >= 0:
                        line, buf = buf[:nl], buf[nl + 1 :]
                        if line.strip():
                            yield _decode_event(line)
                if buf.strip():
                    yield _decode_event(buf)
        except aiohttp.ClientError as e:
            raise APIError(503, "ServiceUnavailable", f"watch on {self.server} failed: {e}") from e


def _decode_event(line: bytes) -> tuple[str, Obj]:
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise APIError(500, "InternalError", f"malformed watch event: {e}") from e
    type_, obj = ev.get("type"), ev.get("object")
    if type_ == "ERROR":
        raise error_from_status(int((obj or {}).get("code") or 500), obj)
    if not isinstance(type_, str) or not isinstance(obj, dict):
        raise APIError(500, "InternalError", "malformed watch event")
    return type_, obj


def _delete_options(policy: str | None, grace: int | None, preconditions: Obj | None) -> Obj:
    opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if policy is not None:
        opts["propagationPolicy"] = policy
    if grace is not None:
        opts["gracePeriodSeconds"] = grace
    if preconditions:
        opts["preconditions"] = dict(preconditions)
    return opts
