"""The ``pods/binding`` subresource: assign a pending pod to a node.

``POST /api/v1/namespaces/{ns}/pods/{name}/binding`` with a v1 ``Binding``
(``metadata.name`` = the pod, ``target: {kind: Node, name}``) sets the pod's
``spec.nodeName`` and its ``PodScheduled=True`` condition in one
compare-and-swap write through :meth:`ObjectAPI.update_with`, the system update
path below the pod update strategy (which forbids changing ``spec.nodeName``), as
kube-apiserver's ``BindingREST`` does.

Contract: 404 when the pod is absent; 409 Conflict ``pod X is already
assigned to node Y`` when it is bound (even to the same node); 400 when the
target is missing or not a Node, or the Binding names another pod; 409 when
``metadata.uid`` is given and does not match the pod (a namesake). On success
the answer is a ``Status`` Success with code 201. :func:`bind_pod` is the same
operation for in-process callers (the scheduler over a ``LocalClient``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cloudlet.api import errors
from cloudlet.api.handlers import ResourceHandlers, Target, respond
from cloudlet.api.objects import ObjectAPI
from cloudlet.store.store import Obj


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_pod_condition(pod: Obj, condition: Obj) -> None:
    """Set or replace ``condition`` (by type) in ``pod.status.conditions``;
    ``lastTransitionTime`` only moves when the status changes."""
    conds = pod.setdefault("status", {}).setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == condition["type"]:
            if c.get("status") == condition.get("status"):
                condition = {**condition, "lastTransitionTime": c.get("lastTransitionTime", condition.get("lastTransitionTime"))}
            conds[i] = condition
            return
    conds.append(condition)


async def bind_pod(api: ObjectAPI, namespace: str, binding: Any) -> Obj:
    """Apply ``binding`` to its pod; the updated pod, or :class:`APIError`."""
    from cloudlet.resources.pod import PODS

    if not isinstance(binding, dict):
        raise errors.bad_request("a Binding must be an object")
    meta = binding.get("metadata") or {}
    name = meta.get("name") or ""
    target = binding.get("target") or {}
    node = target.get("name") if isinstance(target, dict) else None
    if not name:
        raise errors.bad_request("Binding.metadata.name: Required value")
    if not node or not isinstance(node, str):
        raise errors.bad_request("Binding.target.name: Required value")
    if target.get("kind") not in (None, "", "Node"):
        raise errors.bad_request(f'Binding.target.kind: Unsupported value: "{target.get("kind")}": must be Node')
    uid = meta.get("uid")

    def mutate(pod: Obj) -> Obj:
        if uid and pod["metadata"].get("uid") != uid:
            raise errors.APIError(409, "Conflict", f"Operation cannot be fulfilled on pods/binding \"{name}\": uid mismatch")
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.APIError(409, "Conflict", f"pod {name} is being deleted, cannot be assigned to a host")
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.APIError(409, "Conflict", f"Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{current}\"")
        pod["spec"]["nodeName"] = node
        for k, v in (meta.get("annotations") or {}).items():
            pod["metadata"].setdefault("annotations", {})[k] = v
        set_pod_condition(pod, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                "lastTransitionTime": _now()})
        return pod

    # Like kube-apiserver's BindingREST this bypasses the pod update strategy
    # (which forbids changing spec.nodeName): binding is the one path allowed to
    # set it. ObjectAPI's system update path retries lost races.
    return await api.update_with(PODS, namespace, name, mutate)


async def handle_binding(api: ObjectAPI, t: Target, request: web.Request, body: Any) -> web.Response:
    if request.method != "POST":
        raise errors.method_not_allowed()
    if isinstance(body, dict):
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != t.name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({t.name})")
        body.setdefault("metadata", {})["name"] = t.name
    pod = await bind_pod(api, t.namespace, body)
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201,
              "details": {"name": pod["metadata"]["name"], "kind": "pods", "uid": pod["metadata"].get("uid", "")}}
    return respond(request, status, 201)


def install(handlers: ResourceHandlers) -> None:
    """Serve ``pods/binding`` through ``handlers``."""

    async def sub(t: Target, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise errors.method_not_allowed()
        body, _ = await handlers.body(request)
        return await handle_binding(handlers.api, t, request, body)

    handlers.subresource_handlers[("/pods", "binding")] = sub
