"""Server-side apply requests (``application/apply-patch+yaml``).

:func:`apply_object` is what ``PATCH`` with the apply content type does, for
the HTTP handlers and the in-process client alike:

* the body is an apply configuration: a full or partial object with
  ``apiVersion`` and ``kind`` of the endpoint (400 ``Incorrect version
  specified in apply patch`` / ``invalid object type`` otherwise), no
  ``metadata.managedFields`` (400), a ``metadata.name`` matching the URL when
  present, and only fields the kind declares (400 ``failed to create typed
  patch object (...): .spec.foo: field not declared in schema``, whatever
  ``fieldValidation`` says, as in Kubernetes);
* ``manager`` (the ``fieldManager`` parameter) is required: callers check it
  (422 ``PatchOptions`` in HTTP);
* the configuration is merged into the live object with field ownership
  (:func:`cloudlet.api.fieldmanager.apply`): 409 on conflicts unless
  ``force``; fields the manager stopped applying go away unless owned by
  someone else;
* when the object does not exist it is created (``created`` True: 201);
  ``/status`` of a missing object is 404;
* ``metadata.resourceVersion`` in the configuration is a precondition (409);
* ``dry_run`` computes and validates everything but writes nothing.

Writes go through :class:`~cloudlet.api.objects.ObjectAPI` (defaulting,
validation, the status/spec split, optimistic concurrency) with the
managedFields computed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudlet.api import errors
from cloudlet.api.errors import APIError
from cloudlet.api.fieldcheck import check_object
from cloudlet.api.fieldmanager import Conflicts, Target, apply, target
from cloudlet.api.typedvalue import SchemaError
from cloudlet.resources.registry import ResourceType
from cloudlet.store.store import copy_obj

if TYPE_CHECKING:
    from cloudlet.api.objects import ObjectAPI

Obj = dict[str, Any]

_RETRIES = 5


def _gvk(rt: ResourceType) -> str:
    return f"{rt.group}/{rt.version}, Kind={rt.kind}"


def _typed_error(rt: ResourceType, namespace: str, name: str, detail: str) -> APIError:
    return errors.bad_request(f"failed to create typed patch object ({namespace}/{name}; {_gvk(rt)}): {detail}")


def check_config(rt: ResourceType, namespace: str, name: str, body: Any) -> Obj:
    """Validate an apply configuration (see the module docstring); returns it normalised."""
    if not isinstance(body, dict):
        raise errors.bad_request("error decoding YAML: the apply configuration must be an object")
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    if api_version != rt.api_version:
        raise errors.bad_request(
            "Incorrect version specified in apply patch. "
            f"Specified patch version: {api_version if isinstance(api_version, str) else ''}, expected: {rt.api_version}"
        )
    if kind != rt.kind:
        group, _, version = rt.api_version.rpartition("/")
        raise errors.bad_request(f"invalid object type: {group}/{version}, Kind={kind if isinstance(kind, str) else ''}")
    meta = body.get("metadata")
    if meta is None:
        meta = body["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    meta.pop("managedFields", None)
    cfg_name = meta.get("name")
    if cfg_name not in (None, "") and cfg_name != name:
        raise errors.bad_request(f"the name of the object ({cfg_name}) does not match the name on the URL ({name})")
    if rt.namespaced:
        ns = meta.get("namespace")
        if ns not in (None, "") and ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
    probe = copy_obj(body)
    if rt.prune_unknown is not None:
        unknown, bad = rt.prune_unknown(probe), []
    else:
        unknown, bad = check_object(probe, rt.api_version, rt.kind)
    if bad:
        raise _typed_error(rt, namespace, name, bad[0])
    if unknown:
        raise _typed_error(rt, namespace, name, f".{unknown[0]}: field not declared in schema")
    return body


def _precondition(rt: ResourceType, name: str, config: Obj, live: Obj | None) -> None:
    want = (config.get("metadata") or {}).get("resourceVersion")
    if want and (live is None or str(want) != (live.get("metadata") or {}).get("resourceVersion")):
        raise errors.conflict(rt.plural, rt.group, name)


def _merged(t: Target, rt: ResourceType, namespace: str, name: str, live: Obj | None, config: Obj, manager: str, force: bool) -> Obj:
    try:
        new = apply(t, live, copy_obj(config), manager or "unknown", force)
    except Conflicts as c:
        raise c.error() from None
    except SchemaError as e:
        raise _typed_error(rt, namespace, name, str(e)) from e
    meta = new.setdefault("metadata", {})
    meta["name"] = name
    if rt.namespaced:
        meta["namespace"] = namespace
    return new


async def apply_object(
    api: ObjectAPI,
    rt: ResourceType,
    namespace: str,
    name: str,
    body: Any,
    *,
    manager: str,
    force: bool = False,
    subresource: str = "",
    dry_run: bool = False,
) -> tuple[Obj, bool]:
    """Apply ``body`` to ``rt``/``namespace``/``name``; ``(object, created)``."""
    if subresource not in ("", "status"):
        raise errors.method_not_allowed()
    config = check_config(rt, namespace, name, body)
    t = target(rt, subresource)
    key = api.key(rt, namespace, name)
    for _attempt in range(_RETRIES):
        if api.store.latest(key) is None:
            if subresource:
                raise errors.not_found(rt.plural, rt.group, name)
            _precondition(rt, name, config, None)
            new = _merged(t, rt, namespace, name, None, config, manager, force)
            try:
                return await api.create(rt, namespace, new, dry_run=dry_run, manager=None), True
            except APIError as e:
                if e.reason == "AlreadyExists":
                    continue  # created meanwhile: apply to it
                raise

        def mutate(live: Obj) -> Obj:
            _precondition(rt, name, config, live)
            return _merged(t, rt, namespace, name, live, config, manager, force)

        try:
            obj = await api.guaranteed_update(
                rt, namespace, name, mutate, subresource=subresource, dry_run=dry_run, manager=None
            )
        except APIError as e:
            if e.code == 404 and not subresource:
                continue  # deleted meanwhile: create it
            raise
        return obj, False
    raise errors.conflict(rt.plural, rt.group, name)
