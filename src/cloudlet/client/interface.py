"""The one client interface every controller and add-on talks through.

:class:`Client` is a Protocol with two implementations: the in-process
:class:`~cloudlet.client.local.LocalClient` (calls
:class:`~cloudlet.api.objects.ObjectAPI` on the same event loop) and the
:class:`~cloudlet.client.http.HTTPClient` (any Kubernetes API server, ours or a
real cluster's, through a kubeconfig). Code written against :class:`Client`
must not care which one it holds.

Resources are addressed by :class:`ResourceRef` ``(group, version, plural)``,
exactly as in a REST path (``/apis/apps/v1/deployments``).

Contract shared by both implementations:

* Objects are plain Kubernetes-shaped dicts. Every dict a client returns (or
  yields from a watch) is the caller's own: it may be mutated freely. Dicts a
  caller passes in are never mutated by the client.
* Every failure is raised as :class:`cloudlet.api.errors.APIError` carrying the
  Kubernetes ``code``, ``reason`` and ``message`` (``404 NotFound``,
  ``409 Conflict``/``AlreadyExists``, ``410 Expired``, ``422 Invalid`` …). The
  HTTP client rebuilds it from the ``Status`` body; transport failures (server
  unreachable, connection reset) are ``503 ServiceUnavailable``.
* ``namespace`` is the request namespace: ``""`` addresses a cluster-scoped
  resource (or, for ``list``/``watch``, ``None``/``""`` means all namespaces).
  Asking for a namespace on a cluster-scoped resource is a 404, as over HTTP.
* Writes are linearisable per object: ``update`` with
  ``metadata.resourceVersion`` set is a compare-and-swap (``409 Conflict`` on
  mismatch); without it, it overwrites the latest state. ``patch`` is applied
  server-side to the latest state (retried internally on races) unless the
  patch itself carries ``metadata.resourceVersion``.
* ``watch`` yields ``(type, object)`` with type ``ADDED``, ``MODIFIED``,
  ``DELETED`` or ``BOOKMARK`` (only with ``allow_bookmarks``; the object then
  carries just ``metadata.resourceVersion``). Events arrive in
  resourceVersion order. With ``resource_version`` ``""`` or ``"0"`` the watch
  starts with one synthetic ``ADDED`` per existing object; otherwise it
  delivers every change after that version, or raises ``APIError`` 410
  (``Expired``) — on iteration, not on the call — when that history was
  compacted. A watch may end at any time (timeout, server shutdown, slow
  consumer): the caller re-watches from the last resourceVersion it saw and
  relists on 410. Closing the iterator (``aclose()``, or leaving an
  ``async with contextlib.aclosing(...)`` block) releases the server side.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from cloudlet.resources.registry import REGISTRY, Registry, ResourceType

Obj = dict[str, Any]

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"

PATCH_TYPES = ("merge", "json", "strategic")


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """A REST resource: ``group`` ("" for core), ``version``, ``plural``."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @classmethod
    def of(cls, rt: ResourceType) -> ResourceRef:
        """The ref that addresses a registered :class:`ResourceType`."""
        return cls(rt.group, rt.version, rt.plural)

    def __str__(self) -> str:
        return f"{self.plural}.{self.version}.{self.group}" if self.group else f"{self.plural}.{self.version}"


def guess_plural(kind: str) -> str:
    """Kubernetes' ``UnsafeGuessKindToResource``: ``Ingress`` -> ``ingresses``,
    ``NetworkPolicy`` -> ``networkpolicies``, ``Endpoints`` -> ``endpoints``."""
    low = kind.lower()
    if not low:
        return low
    if low.endswith("endpoints"):
        return low
    if low.endswith("s"):
        return low + "es"
    if low.endswith("y") and not re.search(r"[aeiou]y$", low):
        return low[:-1] + "ies"
    return low + "s"


def ref_for(api_version: str, kind: str, registry: Registry = REGISTRY) -> ResourceRef:
    """The ref for an ``apiVersion``/``kind`` pair (e.g. from an ownerReference).

    Uses the registry when the kind is served here, else guesses the plural the
    way Kubernetes does (for kinds only a remote cluster knows).
    """
    rt = registry.for_api_version(api_version, kind)
    if rt is not None:
        return ResourceRef.of(rt)
    group, _, version = api_version.rpartition("/")
    return ResourceRef(group, version, guess_plural(kind))


@runtime_checkable
class Client(Protocol):
    """Kubernetes API access; see the module docstring for the shared contract."""

    async def get(self, ref: ResourceRef, name: str, namespace: str = "", *, subresource: str = "") -> Obj:
        """The object (or its ``status``/``scale`` subresource). 404 when absent."""
        ...

    async def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
    ) -> Obj:
        """A ``<Kind>List`` dict: ``items`` plus ``metadata.resourceVersion`` and,
        when ``limit`` cut the result short, ``metadata.continue`` for the next
        page (410 when the token expired). Selectors use kubectl syntax."""
        ...

    async def create(self, ref: ResourceRef, obj: Obj, namespace: str = "") -> Obj:
        """Create ``obj`` (namespace from the argument or ``obj.metadata``);
        returns the stored object. 409 AlreadyExists, 422 Invalid, 403 when the
        namespace is terminating."""
        ...

    async def update(self, ref: ResourceRef, obj: Obj, subresource: str = "") -> Obj:
        """Replace the object named by ``obj.metadata`` (``subresource`` is
        ``""``, ``status``, ``scale`` or, for namespaces, ``finalize``)."""
        ...

    async def patch(
        self,
        ref: ResourceRef,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        namespace: str = "",
        subresource: str = "",
    ) -> Obj:
        """Apply a ``merge`` (RFC 7386), ``json`` (RFC 6902) or ``strategic``
        merge patch to the latest state; returns the stored result."""
        ...

    async def apply(
        self,
        ref: ResourceRef,
        obj: Obj,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str = "",
    ) -> Obj:
        """Server-side apply ``obj`` (an apply configuration: ``apiVersion``,
        ``kind``, ``metadata.name`` [and ``namespace``] plus exactly the fields
        ``field_manager`` wants to own); creates the object when absent.
        Fields this manager applied before and leaves out now are removed
        unless another manager owns them. ``409 Conflict`` when a field it
        changes is owned by another manager, unless ``force``."""
        ...

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
        """Delete per ``DeleteOptions``. Returns what the API answers: the
        object when it stays for now (finalizers, graceful deletion — it then
        carries ``metadata.deletionTimestamp``), or a ``Status`` with
        ``status: Success`` once it is gone (pods always return the object).
        ``preconditions`` is ``{"uid": ..., "resourceVersion": ...}`` (409 on
        mismatch)."""
        ...

    async def delete_collection(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        propagation_policy: str | None = None,
    ) -> Obj:
        """Delete every matching object; returns a ``<Kind>List`` of what was deleted."""
        ...

    def watch(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        allow_bookmarks: bool = False,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """Stream ``(type, object)`` change events; see the module docstring."""
        ...


def object_key(obj: Obj) -> str:
    """The cache key of an object: ``namespace/name``, or ``name`` when cluster-scoped."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def split_key(key: str) -> tuple[str, str]:
    """``(namespace, name)`` of an :func:`object_key` (namespace "" when cluster-scoped)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)
