"""HTTP client for the OCI distribution API (``/v2/``): manifests, blobs, uploads.

One :class:`RegistryClient` holds one aiohttp session, the token cache and
the credential keychain; :meth:`RegistryClient.repository` gives a
:class:`Repository` bound to one ``registry host + path`` that knows its
endpoints (mirrors first, then the registry itself; see
:mod:`cloudlet.image.config`).

Behaviour worth knowing:

* Every request goes through :meth:`RegistryClient._send`: a ``401`` runs the
  auth handshake once (:mod:`cloudlet.image.auth`) and resends. Auth state is
  per credential: the ``Authorization`` remembered for an endpoint and scope,
  and cached bearer tokens, are keyed by the identity of the credential the
  request's keychain holds for that host (``anonymous`` when none), so a pull
  without a pod's pull secret never rides on what the secret obtained; the
  session keeps no cookies either. Connection
  failures, ``429`` and ``5xx`` are retried with exponential backoff
  (``backoff * 2**n``, ``retries`` times); name-resolution failures are not
  retried (they do not heal in a second) so an unreachable registry such as
  ``registry-1.docker.io`` without internet fails at once with
  :class:`Unreachable`.
* Connect timeout is short (``connect_timeout``, 5 s); a stalled read times
  out after ``read_timeout`` — a pull never hangs.
* :meth:`Repository.blob_chunks` streams a blob and, when the connection
  breaks mid-body, reconnects with ``Range: bytes=<received>-`` and carries
  on, so one dropped connection does not restart a 1 GB layer. The consumer
  (the content store's ``ingest``) still verifies the whole digest.
* Errors carry distribution's error ``code`` (``MANIFEST_UNKNOWN``,
  ``BLOB_UNKNOWN``, ``UNAUTHORIZED``, ``DENIED``...) and a message a user can
  act on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from cloudlet.image.auth import (
    AuthError,
    Challenge,
    Credential,
    Keychain,
    Token,
    credential_identity,
    load_docker_config,
    parse_token_response,
    parse_www_authenticate,
)
from cloudlet.image.config import Endpoint, RegistryConfig

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MAX_MANIFEST = 4 << 20
CHUNK = 1 << 20
USER_AGENT = "cloudlet/0.1 (distribution client)"


class RegistryError(Exception):
    """A registry answered with an error, or could not be talked to."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class NotFound(RegistryError):
    """The manifest, blob or repository does not exist (404 / *_UNKNOWN)."""


class Unauthorized(RegistryError):
    """The registry refused our credentials, or wants some we do not have."""


class Unreachable(RegistryError):
    """No connection could be made (DNS, refused, timeout)."""


@dataclass(frozen=True)
class Manifest:
    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.data)


def media_type_of(data: bytes, header: str = "") -> str:
    """A manifest's media type: its own ``mediaType`` field, else the header, else by shape."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise RegistryError(f"manifest is not JSON: {e}") from e
    mt = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(mt, str) and mt:
        return mt
    header = header.split(";", 1)[0].strip()
    if header in MANIFEST_TYPES:
        return header
    if isinstance(doc, dict) and "manifests" in doc:
        return OCI_INDEX
    return OCI_MANIFEST


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _error_from(resp: aiohttp.ClientResponse, what: str) -> RegistryError:
    code = ""
    detail = ""
    try:
        body = await resp.read()
        doc = json.loads(body) if body else {}
        errs = doc.get("errors") or []
        if errs:
            code = str(errs[0].get("code", ""))
            detail = str(errs[0].get("message", ""))
    except (ValueError, aiohttp.ClientError, AttributeError):
        pass
    msg = f"{what}: {resp.status} {resp.reason or ''}".rstrip()
    if detail:
        msg += f": {detail}"
    if resp.status == 404 or code.endswith("_UNKNOWN"):
        return NotFound(msg, resp.status, code)
    if resp.status in (401, 403):
        return Unauthorized(msg, resp.status, code)
    return RegistryError(msg, resp.status, code)


def _is_dns_error(e: BaseException) -> bool:
    return isinstance(e, aiohttp.ClientConnectorDNSError)


class RegistryClient:
    """Talks to registries; one per process (or per CLI command) is enough."""

    def __init__(
        self,
        config: RegistryConfig | None = None,
        keychain: Keychain | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        docker_config: bool = True,
    ) -> None:
        self.config = config or RegistryConfig()
        if keychain is None:
            sources = [self.config.credentials()]
            if docker_config:
                try:
                    sources.append(load_docker_config())
                except AuthError as e:
                    log.warning("ignoring docker config: %s", e)
            keychain = Keychain(*sources)
        self.keychain = keychain
        self.retries = retries
        self.backoff = backoff
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        # (realm, service, scopes, credential identity) -> token
        self._tokens: dict[tuple[str, str, str, str], Token] = {}
        # (endpoint base, scope, credential identity) -> the Authorization that worked last
        self._auth: dict[tuple[str, str, str], str] = {}
        self._token_locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                headers={"User-Agent": USER_AGENT},
                connector=aiohttp.TCPConnector(limit=32, limit_per_host=16),
                auto_decompress=False,
                # no session state between requests: auth is per request and per credential
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def credential_identity(self, domain: str, keychain: Keychain | None = None) -> str:
        """Who a pull from ``domain`` with ``keychain`` is, over all its endpoints (mirrors too).

        Two pulls with equal identities send exactly the same credentials
        everywhere; work may be shared between them, and only then.
        """
        keychain = keychain or self.keychain
        return ",".join(keychain.identity(ep.auth_host) for ep in self.config.endpoints(domain))

    def repository(self, domain: str, path: str, keychain: Keychain | None = None) -> Repository:
        """A handle on ``domain/path`` (``docker.io``, ``library/busybox``)."""
        return Repository(self, domain, path, self.config.endpoints(domain), keychain or self.keychain)

    # -- the one request path -------------------------------------------------

    async def _send(
        self,
        method: str,
        ep: Endpoint,
        url: str | URL,
        scope: str,
        keychain: Keychain,
        *,
        headers: dict[str, str] | None = None,
        body: Callable[[], Any] | None = None,
        retry: bool = True,
    ) -> aiohttp.ClientResponse:
        """Send one request with auth and retries; the caller releases the response.

        Only auth state earned with the credential ``keychain`` holds for the
        endpoint's host is reused; a request without credentials never
        carries another request's ``Authorization``.
        """
        key = (ep.base, scope, keychain.identity(ep.auth_host))
        authed_once = False
        attempt = 0
        while True:
            h = dict(headers or {})
            h.pop("Authorization", None)
            sent_auth = self._auth.get(key)
            if sent_auth is not None:
                h["Authorization"] = sent_auth
            try:
                resp = await self.session.request(
                    method, url, headers=h, data=body() if body else None,
                    ssl=ep.ssl_context(), allow_redirects=True,
                )
            except (TimeoutError, aiohttp.ClientConnectionError, OSError) as e:
                if _is_dns_error(e) or not retry or attempt >= self.retries:
                    raise Unreachable(f"{ep.base} is unreachable: {_describe(e)}") from e
                await self._sleep(attempt)
                attempt += 1
                continue
            if resp.status == 401 and not authed_once:
                challenge = parse_www_authenticate(resp.headers.get("WWW-Authenticate", ""))
                resp.release()
                authed_once = True
                # what we sent (if anything) was refused: forget it before asking again
                if sent_auth is not None and self._auth.get(key) == sent_auth:
                    del self._auth[key]
                self._auth[key] = await self._authorize(ep, challenge, scope, keychain,
                                                        refused=sent_auth)
                continue
            if retry and (resp.status == 429 or resp.status >= 500) and attempt < self.retries:
                resp.release()
                await self._sleep(attempt)
                attempt += 1
                continue
            return resp

    async def _sleep(self, attempt: int) -> None:
        await asyncio.sleep(min(self.backoff * (2**attempt), 10.0))

    async def _authorize(self, ep: Endpoint, ch: Challenge | None, scope: str, keychain: Keychain,
                         refused: str | None = None) -> str:
        cred = keychain.get(ep.auth_host)
        if ch is None:
            raise Unauthorized(f"{ep.base} answered 401 without a WWW-Authenticate challenge", 401)
        if ch.scheme == "basic":
            if cred is None:
                raise Unauthorized(
                    f"{ep.base} requires credentials (basic auth) and none are configured for "
                    f"{ep.auth_host}: add them to a docker config.json, registries.yaml or an imagePullSecret (CLI: --creds)",
                    401, "UNAUTHORIZED",
                )
            return cred.basic_header()
        if ch.scheme == "bearer":
            token = await self._token(ep, ch, scope, cred,
                                      refused=refused[7:] if refused and refused.startswith("Bearer ") else None)
            return "Bearer " + token
        raise Unauthorized(f"{ep.base}: unsupported auth scheme {ch.scheme!r}", 401)

    async def _token(self, ep: Endpoint, ch: Challenge, scope: str, cred: Credential | None,
                     refused: str | None = None) -> str:
        realm = ch.params.get("realm")
        if not realm:
            raise Unauthorized(f"{ep.base}: bearer challenge without a realm", 401)
        service = ch.params.get("service", "")
        # our own scope, not the challenge's: it names exactly the actions we need
        scopes = [s for s in scope.split(" ") if s] or [ch.params.get("scope", "")]
        who = cred.username if cred else ""
        # the whole credential, not just the user: a wrong password must not get the right one's token
        key = (realm, service, " ".join(scopes), credential_identity(cred))
        lock = self._token_locks.setdefault(key, asyncio.Lock())
        async with lock:
            tok = self._tokens.get(key)
            if tok and tok.fresh() and tok.value != refused:
                return tok.value
            self._tokens.pop(key, None)
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params += [("scope", s) for s in scopes if s]
            headers = {}
            if cred and cred.username:
                headers["Authorization"] = cred.basic_header()
                params.append(("account", cred.username))
            url = URL(realm).with_query(params)
            attempt = 0
            while True:
                try:
                    async with self.session.get(url, headers=headers) as resp:
                        if resp.status in (401, 403):
                            raise Unauthorized(
                                f"token server {realm} refused the credentials for "
                                f"{who or 'anonymous'}: {resp.status}", resp.status, "UNAUTHORIZED")
                        if resp.status >= 500 and attempt < self.retries:
                            raise aiohttp.ServerConnectionError(f"token server answered {resp.status}")
                        if resp.status != 200:
                            raise Unauthorized(f"token server {realm} answered {resp.status}", resp.status)
                        body = await resp.json(content_type=None)
                    break
                except (TimeoutError, aiohttp.ClientConnectionError) as e:
                    if _is_dns_error(e) or attempt >= self.retries:
                        raise Unreachable(f"token server {realm} is unreachable: {_describe(e)}") from e
                    await self._sleep(attempt)
                    attempt += 1
            try:
                tok = parse_token_response(body)
            except AuthError as e:
                raise Unauthorized(f"token server {realm}: {e}", 401) from e
            # drop expired tokens (one entry per credential would otherwise pile up)
            for k in [k for k, t in self._tokens.items() if not t.fresh()]:
                del self._tokens[k]
                old = self._token_locks.get(k)
                if old is not None and k != key and not old.locked():
                    del self._token_locks[k]
            self._tokens[key] = tok
            return tok.value


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__


class Repository:
    """One repository (``domain/path``) on its endpoints."""

    def __init__(self, client: RegistryClient, domain: str, path: str,
                 endpoints: list[Endpoint], keychain: Keychain) -> None:
        self.client = client
        self.domain = domain
        self.path = path
        self.endpoints = endpoints
        self.keychain = keychain
        self.endpoint = endpoints[-1]  # the one that last answered; the origin by default

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def _url(self, ep: Endpoint, tail: str) -> str:
        return f"{ep.base}/v2/{self.path}/{tail}"

    def _scope(self, push: bool = False) -> str:
        return f"repository:{self.path}:{'pull,push' if push else 'pull'}"

    # -- pull -------------------------------------------------------------------

    async def get_manifest(self, reference: str, accept: tuple[str, ...] = MANIFEST_TYPES) -> Manifest:
        """Fetch a manifest or index by tag or digest, trying mirrors first.

        By digest, the bytes are checked against it.
        """
        errors: list[RegistryError] = []
        for ep in self.endpoints:
            try:
                m = await self._get_manifest(ep, reference, accept)
            except RegistryError as e:
                if not ep.mirror:
                    raise
                log.info("mirror %s failed for %s:%s: %s", ep.base, self.name, reference, e)
                errors.append(e)
                continue
            self.endpoint = ep
            return m
        raise errors[-1]  # pragma: no cover - the origin always comes last

    async def _get_manifest(self, ep: Endpoint, reference: str, accept: tuple[str, ...]) -> Manifest:
        what = f"manifest {self.name}:{reference}" if not reference.startswith("sha256:") else \
            f"manifest {self.name}@{reference}"
        resp = await self.client._send(
            "GET", ep, self._url(ep, f"manifests/{reference}"), self._scope(), self.keychain,
            headers={"Accept": ", ".join(accept)},
        )
        try:
            if resp.status != 200:
                raise await _error_from(resp, f"{what} on {ep.base}")
            length = resp.content_length
            if length is not None and length > MAX_MANIFEST:
                raise RegistryError(f"{what} is {length} bytes, more than the {MAX_MANIFEST} allowed")
            data = await resp.content.read(MAX_MANIFEST + 1)
            if len(data) > MAX_MANIFEST:
                raise RegistryError(f"{what} is larger than the {MAX_MANIFEST} bytes allowed")
            ctype = resp.headers.get("Content-Type", "")
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            raise RegistryError(f"{what}: connection lost: {_describe(e)}") from e
        finally:
            resp.release()
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{what}: content has digest {digest}, not the one asked for")
        return Manifest(data, media_type_of(data, ctype), digest)

    async def blob_chunks(self, digest: str, size: int | None = None) -> AsyncIterator[bytes]:
        """Stream a blob, resuming with ``Range`` after a dropped connection."""
        ep = self.endpoint
        received = 0
        failures = 0
        url = self._url(ep, f"blobs/{digest}")
        while True:
            headers = {"Range": f"bytes={received}-"} if received else {}
            resp = await self.client._send("GET", ep, url, self._scope(), self.keychain, headers=headers)
            try:
                if resp.status not in (200, 206):
                    raise await _error_from(resp, f"blob {self.name}@{digest}")
                skip = received if (received and resp.status == 200) else 0
                async for chunk in resp.content.iter_chunked(CHUNK):
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]
                        skip = 0
                    received += len(chunk)
                    yield chunk
                if size is not None and received < size:
                    raise aiohttp.ClientPayloadError(f"blob ended after {received} of {size} bytes")
                return
            except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
                failures += 1
                if failures > self.client.retries:
                    raise RegistryError(
                        f"blob {self.name}@{digest}: connection lost after {received} bytes "
                        f"({failures} attempts): {_describe(e)}") from e
                log.info("blob %s: connection lost at %d bytes, resuming: %s", digest, received, e)
                await self.client._sleep(failures - 1)
            finally:
                resp.release()

    async def get_blob(self, digest: str) -> bytes:
        parts = [c async for c in self.blob_chunks(digest)]
        data = b"".join(parts)
        if sha256_digest(data) != digest:
            raise RegistryError(f"blob {self.name}@{digest}: content does not match its digest")
        return data

    # -- push -------------------------------------------------------------------

    @property
    def origin(self) -> Endpoint:
        return self.endpoints[-1]

    async def blob_exists(self, digest: str) -> bool:
        ep = self.origin
        resp = await self.client._send("HEAD", ep, self._url(ep, f"blobs/{digest}"),
                                       self._scope(push=True), self.keychain)
        try:
            if resp.status == 200:
                return True
            if resp.status == 404:
                return False
            raise await _error_from(resp, f"HEAD blob {self.name}@{digest}")
        finally:
            resp.release()

    async def mount_blob(self, digest: str, from_path: str) -> bool:
        """Cross-repository mount (same registry); False when the registry would not mount."""
        ep = self.origin
        url = URL(self._url(ep, "blobs/uploads/")).with_query({"mount": digest, "from": from_path})
        scope = f"{self._scope(push=True)} repository:{from_path}:pull"
        resp = await self.client._send("POST", ep, url, scope, self.keychain,
                                       headers={"Content-Length": "0"})
        try:
            if resp.status == 201:
                return True
            if resp.status == 202:  # an upload session was opened instead: drop it
                loc = resp.headers.get("Location")
                if loc:
                    await self._cancel_upload(ep, loc)
                return False
            raise await _error_from(resp, f"mount {digest} from {from_path} into {self.name}")
        finally:
            resp.release()

    async def _cancel_upload(self, ep: Endpoint, location: str) -> None:
        try:
            r = await self.client._send("DELETE", ep, self._abs(ep, location), self._scope(True),
                                        self.keychain, retry=False)
            r.release()
        except RegistryError:
            pass

    def _abs(self, ep: Endpoint, location: str) -> URL:
        loc = URL(location)
        return loc if loc.is_absolute() else URL(ep.base).join(loc)

    async def upload_blob(
        self,
        digest: str,
        size: int,
        open_chunks: Callable[[], AsyncIterator[bytes]],
        chunk_size: int | None = None,
    ) -> None:
        """Upload one blob: monolithic (POST then PUT with the body) or chunked (PATCH...PUT).

        ``open_chunks`` returns a fresh iterator over the blob's bytes each call.
        Chunked upload is used when ``chunk_size`` is given and smaller than the blob.
        """
        ep = self.origin
        scope = self._scope(push=True)
        resp = await self.client._send("POST", ep, self._url(ep, "blobs/uploads/"), scope, self.keychain,
                                       headers={"Content-Length": "0"})
        try:
            if resp.status != 202:
                raise await _error_from(resp, f"start upload of {digest} to {self.name}")
            location = resp.headers.get("Location", "")
        finally:
            resp.release()
        if not location:
            raise RegistryError(f"registry opened an upload for {self.name} without a Location")
        url = self._abs(ep, location)
        try:
            if chunk_size and size > chunk_size:
                url = await self._patch_chunks(ep, url, scope, open_chunks, chunk_size)
                body: Callable[[], Any] | None = None
                headers = {"Content-Length": "0"}
            else:
                body = open_chunks
                headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
            resp = await self.client._send("PUT", ep, url.extend_query(digest=digest), scope, self.keychain,
                                           headers=headers, body=body, retry=False)
            try:
                if resp.status not in (201, 204):
                    raise await _error_from(resp, f"upload of {digest} to {self.name}")
            finally:
                resp.release()
        except BaseException:
            await asyncio.shield(self._cancel_upload(ep, str(url)))
            raise

    async def _patch_chunks(self, ep: Endpoint, url: URL, scope: str,
                            open_chunks: Callable[[], AsyncIterator[bytes]], chunk_size: int) -> URL:
        offset = 0
        buf = bytearray()

        async def send(data: bytes) -> URL:
            nonlocal offset
            end = offset + len(data) - 1
            resp = await self.client._send(
                "PATCH", ep, url, scope, self.keychain, retry=False, body=lambda: data,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                         "Content-Range": f"{offset}-{end}"},
            )
            try:
                if resp.status != 202:
                    raise await _error_from(resp, f"chunk {offset}-{end} of upload to {self.name}")
                offset = end + 1
                return self._abs(ep, resp.headers.get("Location") or str(url))
            finally:
                resp.release()

        async for piece in open_chunks():
            buf += piece
            while len(buf) >= chunk_size:
                url = await send(bytes(buf[:chunk_size]))
                del buf[:chunk_size]
        if buf:
            url = await send(bytes(buf))
        return url

    async def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest or index under a tag or digest; returns its digest."""
        ep = self.origin
        resp = await self.client._send(
            "PUT", ep, self._url(ep, f"manifests/{reference}"), self._scope(push=True), self.keychain,
            headers={"Content-Type": media_type}, body=lambda: data,
        )
        try:
            if resp.status not in (200, 201):
                raise await _error_from(resp, f"put manifest {self.name}:{reference}")
            return resp.headers.get("Docker-Content-Digest") or sha256_digest(data)
        finally:
            resp.release()

    async def tags(self) -> list[str]:
        ep = self.endpoint
        resp = await self.client._send("GET", ep, self._url(ep, "tags/list"), self._scope(), self.keychain)
        try:
            if resp.status != 200:
                raise await _error_from(resp, f"tags of {self.name}")
            return list((await resp.json(content_type=None)).get("tags") or [])
        finally:
            resp.release()
