"""Docker-link style service environment variables, as the kubelet injects them.

For every Service of the pod's namespace that has a cluster IP (not headless,
not ExternalName) — and, as Kubernetes does, the ``kubernetes`` Service of the
``default`` namespace for every pod — a container gets, with ``NAME`` the
Service name upper-cased and ``-`` as ``_``:

* ``NAME_SERVICE_HOST=<clusterIP>``, ``NAME_SERVICE_PORT=<first port>``;
* ``NAME_SERVICE_PORT_<PORTNAME>=<port>`` for each named port;
* ``NAME_PORT=<proto>://<ip>:<first port>`` and, per port,
  ``NAME_PORT_<port>_<PROTO>=<proto>://<ip>:<port>`` with ``_PROTO``, ``_PORT``
  and ``_ADDR`` variants.

Only the ``kubernetes`` Service is added when ``enableServiceLinks`` is false.
The variables come before the container's own ``env`` (which may override them
and refer to them with ``$(VAR)``).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _name(service: str) -> str:
    return service.upper().replace("-", "_")


def _links(svc: Obj) -> dict[str, str]:
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP")
    if not ip or ip == "None" or spec.get("type") == "ExternalName":
        return {}
    ports = [p for p in spec.get("ports") or () if isinstance(p, dict) and p.get("port")]
    if not ports:
        return {}
    name = _name(svc["metadata"]["name"])
    first = ports[0]
    out = {f"{name}_SERVICE_HOST": ip, f"{name}_SERVICE_PORT": str(first["port"])}
    for p in ports:
        if p.get("name"):
            out[f"{name}_SERVICE_PORT_{_name(p['name'])}"] = str(p["port"])
    proto = str(first.get("protocol") or "TCP").lower()
    out[f"{name}_PORT"] = f"{proto}://{ip}:{first['port']}"
    for p in ports:
        proto = str(p.get("protocol") or "TCP")
        prefix = f"{name}_PORT_{p['port']}_{proto.upper()}"
        out[prefix] = f"{proto.lower()}://{ip}:{p['port']}"
        out[f"{prefix}_PROTO"] = proto.lower()
        out[f"{prefix}_PORT"] = str(p["port"])
        out[f"{prefix}_ADDR"] = ip
    return out


def service_env(services: list[Obj], namespace: str, enable_service_links: bool = True) -> dict[str, str]:
    """The variables for a pod of ``namespace`` given every Service the node knows."""
    out: dict[str, str] = {}
    mine = sorted((s for s in services if (s.get("metadata") or {}).get("namespace") == namespace),
                  key=lambda s: s["metadata"]["name"])
    master = [s for s in services if (s.get("metadata") or {}).get("namespace") == "default"
              and s["metadata"].get("name") == "kubernetes"]
    for svc in master:
        out.update(_links(svc))
    if enable_service_links:
        for svc in mine:
            if namespace == "default" and svc["metadata"]["name"] == "kubernetes":
                continue
            out.update(_links(svc))
    return out
