"""Discovery documents: /api, /api/v1, /apis, /apis/GROUP[/VERSION].

What ``kubectl api-resources``, short names (``po``, ``deploy``) and
``kubectl get all`` (the ``all`` category) are built from. Generated from the
live :class:`~cloudlet.resources.registry.Registry`, so CRDs added later appear
without restarts.
"""

from __future__ import annotations

from typing import Any

from cloudlet.resources.registry import Registry, ResourceType

_GROUP_ORDER = [
    "",
    "apps",
    "events.k8s.io",
    "autoscaling",
    "batch",
    "policy",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "scheduling.k8s.io",
    "apiextensions.k8s.io",
]


def _version_key(v: str) -> tuple[int, int, int]:
    # Kubernetes version priority: GA > beta > alpha, then by number
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (-1, 0, 0)
    major = int(m.group(1))
    stage = {"alpha": 0, "beta": 1, None: 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, major, minor)


def sorted_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=_version_key, reverse=True)


# Subresources served by handlers outside the registry (e.g. pods/log from
# cloudlet.api.streaming): (group, plural, sub) -> (kind, verbs).
EXTRA_SUBRESOURCES: dict[tuple[str, str, str], tuple[str, list[str]]] = {}


def _resource_entries(rt: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    main["storageVersionHash"] = _hash(rt)
    out = [main]
    for sub in rt.subresources:
        if sub == "scale":
            out.append({
                "name": f"{rt.plural}/scale",
                "singularName": "",
                "namespaced": rt.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            })
        elif sub == "status":
            out.append({
                "name": f"{rt.plural}/status",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            })
        elif sub == "eviction":  # kubectl drain looks for group/version/kind here to pick the Eviction version
            out.append({
                "name": f"{rt.plural}/eviction",
                "singularName": "",
                "namespaced": rt.namespaced,
                "group": "policy",
                "version": "v1",
                "kind": "Eviction",
                "verbs": ["create"],
            })
        else:
            out.append({
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": "Binding" if sub == "binding" else rt.kind,
                "verbs": ["create"] if sub == "binding" else ["get"],
            })
    for (group, plural, sub), (kind, verbs) in EXTRA_SUBRESOURCES.items():  # pods/log, pods/exec, ...
        if group == rt.group and plural == rt.plural and sub not in rt.subresources:
            out.append({"name": f"{plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                        "kind": kind, "verbs": list(verbs)})
    return out


def _hash(rt: ResourceType) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(f"{rt.storage_key}/{rt.version}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for rt in sorted(registry.resources(group, version), key=lambda r: r.plural):
        resources.extend(_resource_entries(rt))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def core_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def _group_doc(registry: Registry, group: str) -> dict[str, Any]:
    versions = sorted_versions(registry.groups().get(group, []))
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0] if entries else {},
    }


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [g for g in registry.groups() if g]
    order = {g: i for i, g in enumerate(_GROUP_ORDER)}
    groups.sort(key=lambda g: (order.get(g, len(order)), g))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_doc(registry, g) for g in groups]}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    if name not in registry.groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(registry, name)}
