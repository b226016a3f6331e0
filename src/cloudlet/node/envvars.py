"""What a container process gets: argv, environment, resources and security.

Pure functions over the pod (plain dicts) and the image config, the way the
kubelet resolves a container before handing it to the runtime:

* :func:`make_args` — ``command``/``args`` over the image's
  ``Entrypoint``/``Cmd`` with Kubernetes' precedence (a ``command`` replaces
  both; ``args`` alone replace ``Cmd``), then ``$(VAR)`` expansion.
* :func:`resolve_env` — the image's ``Env``, then ``envFrom`` (in order, with
  ``prefix``), then ``env`` (``value`` with ``$(VAR)`` expansion over what came
  before, ``valueFrom`` ``configMapKeyRef``/``secretKeyRef`` (``optional``),
  ``fieldRef`` and ``resourceFieldRef``). A missing required object or key
  raises :class:`ConfigError` — the container waits with
  ``CreateContainerConfigError``.
* :func:`expand` — Kubernetes' ``$(VAR)`` syntax: a defined name is replaced,
  an undefined one left as written, ``$$`` is a literal ``$``.
* :func:`container_resources` — requests/limits to cgroup values.
* :func:`container_security` — the pod's and the container's securityContext
  merged, the image ``User`` resolved, and ``runAsNonRoot`` verified.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cloudlet.resources.quantity import parse_quantity
from cloudlet.runtime.interface import Resources, Security

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]  # (namespace, name) -> object or None

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """The container cannot be configured yet (``CreateContainerConfigError``)."""

    reason = "CreateContainerConfigError"


# --- $(VAR) expansion ---------------------------------------------------------------


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (``third_party/forked/golang/expansion``)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":  # escaped: "$$" -> "$"
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:  # unterminated: written as is
                out.append(text[i:])
                break
            name = text[i + 2:end]
            value = lookup(name) if name else None
            out.append(value if value is not None else f"$({name})")
            i = end + 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


def make_args(container: Obj, entrypoint: list[str], cmd: list[str], env: list[tuple[str, str]]) -> list[str]:
    """argv from ``command``/``args`` and the image's Entrypoint/Cmd, expanded."""
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    values = dict(env)
    lookup = values.get
    command = [expand(c, lookup) for c in command]
    args = [expand(a, lookup) for a in args]
    if command:
        return command + args
    if args:
        return list(entrypoint) + args
    return list(entrypoint) + list(cmd)


# --- env ------------------------------------------------------------------------------


def _cpu_milli(v: Any) -> int:
    return int(math.ceil(parse_quantity(v) * 1000))


def resource_field_value(ref: Obj, container: Obj, allocatable: Obj) -> str:
    """``resourceFieldRef``: a request or limit (the node's allocatable when a
    limit is unset), divided by ``divisor`` and rounded up."""
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    res = (container.get("resources") or {}).get(kind) or {}
    value = res.get(name)
    if value is None:
        if kind == "limits":
            value = allocatable.get(name, "0")
        elif name == "cpu":
            value = "0"
        else:
            value = "0"
    divisor = ref.get("divisor") or "1"
    amount = parse_quantity(value)
    div = parse_quantity(divisor)
    if div == 0:
        div = Decimal(1)
    out = math.ceil(amount / div)
    if name == "cpu" and kind == "requests" and out == 0 and amount == 0:
        return "0"
    if name == "cpu" and out < 1 and amount > 0:
        out = 1
    return str(out)


def field_value(path: str, pod: Obj, pod_ip: str, host_ip: str) -> str:
    """``fieldRef`` (downward API) for env vars and downwardAPI volumes."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = _LABEL_REF.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path == "metadata.labels":
        return _format_map(meta.get("labels") or {})
    if path == "metadata.annotations":
        return _format_map(meta.get("annotations") or {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    raise ConfigError(f"unsupported fieldRef path {path!r}")


def _format_map(m: Obj) -> str:
    """The downward API's ``key="value"`` lines, sorted by key."""
    return "\n".join(f"{k}={_quote(str(v))}" for k, v in sorted(m.items()))


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _secret_value(secret: Obj, key: str) -> str | None:
    data = secret.get("data") or {}
    if key in data:
        return base64.b64decode(data[key]).decode(errors="replace")
    string_data = secret.get("stringData") or {}
    if key in string_data:
        return str(string_data[key])
    return None


def _secret_items(secret: Obj) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
    out.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return out


def resolve_env(
    pod: Obj,
    container: Obj,
    *,
    image_env: list[str],
    configmaps: Lookup,
    secrets: Lookup,
    pod_ip: str,
    host_ip: str,
    allocatable: Obj,
    hostname: str = "",
    service_env: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The container's environment, image entries first (later ones win)."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out: dict[str, str] = {}
    if hostname:
        out["HOSTNAME"] = hostname
    for entry in image_env:
        k, _, v = entry.partition("=")
        out[k] = v
    out.setdefault("PATH", DEFAULT_PATH)
    # service links first, then what the pod spec defines (expansion sees only these)
    mine: dict[str, str] = dict(service_env or {})
    for src in container.get("envFrom") or ():
        prefix = src.get("prefix") or ""
        if "configMapRef" in src:
            ref = src["configMapRef"] or {}
            cm = configmaps(ns, ref.get("name", ""))
            if cm is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'configmap "{ref.get("name", "")}" not found')
            items = {k: str(v) for k, v in (cm.get("data") or {}).items()}
        elif "secretRef" in src:
            ref = src["secretRef"] or {}
            sec = secrets(ns, ref.get("name", ""))
            if sec is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'secret "{ref.get("name", "")}" not found')
            items = _secret_items(sec)
        else:
            continue
        for k, v in items.items():
            mine[prefix + k] = v
    for ev in container.get("env") or ():
        name = ev.get("name", "")
        if "valueFrom" not in ev or ev.get("valueFrom") is None:
            mine[name] = expand(str(ev.get("value") or ""), mine.get)
            continue
        vf = ev["valueFrom"] or {}
        value: str | None
        if "configMapKeyRef" in vf:
            ref = vf["configMapKeyRef"] or {}
            cm = configmaps(ns, ref.get("name", ""))
            if cm is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'configmap "{ref.get("name", "")}" not found')
            value = (cm.get("data") or {}).get(ref.get("key", ""))
            if value is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"couldn't find key {ref.get('key', '')} in ConfigMap {ns}/{ref.get('name', '')}")
        elif "secretKeyRef" in vf:
            ref = vf["secretKeyRef"] or {}
            sec = secrets(ns, ref.get("name", ""))
            if sec is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'secret "{ref.get("name", "")}" not found')
            value = _secret_value(sec, ref.get("key", ""))
            if value is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"couldn't find key {ref.get('key', '')} in Secret {ns}/{ref.get('name', '')}")
        elif "fieldRef" in vf:
            value = field_value(str((vf["fieldRef"] or {}).get("fieldPath", "")), pod, pod_ip, host_ip)
        elif "resourceFieldRef" in vf:
            ref = dict(vf["resourceFieldRef"] or {})
            target = container
            if ref.get("containerName"):
                for c in (pod.get("spec") or {}).get("containers") or ():
                    if c.get("name") == ref["containerName"]:
                        target = c
            value = resource_field_value(ref, target, allocatable)
        else:
            value = ""
        mine[name] = value
    out.update(mine)
    return list(out.items())


# --- resources ------------------------------------------------------------------------


def container_resources(container: Obj, period_us: int = 100_000) -> Resources:
    """requests.cpu -> shares (milli*1024/1000, min 2), limits.cpu -> quota,
    limits.memory -> memory limit (the kubelet's conversion)."""
    res = container.get("resources") or {}
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    out = Resources(cpu_period_us=period_us)
    cpu_req = requests.get("cpu", limits.get("cpu"))
    if cpu_req is not None:
        out.cpu_shares = max(2, _cpu_milli(cpu_req) * 1024 // 1000)
    else:
        out.cpu_shares = 2
    if limits.get("cpu") is not None:
        out.cpu_quota_us = max(1000, _cpu_milli(limits["cpu"]) * period_us // 1000)
    if limits.get("memory") is not None:
        out.memory_limit_bytes = int(math.ceil(parse_quantity(limits["memory"])))
    return out


def pod_resources(pod: Obj) -> Resources:
    """The pod-level cgroup: summed requests; limits only when every container has one."""
    spec = pod.get("spec") or {}
    ctrs = list(spec.get("containers") or ())
    shares = 0
    quota: int | None = 0
    mem: int | None = 0
    for c in ctrs:
        r = container_resources(c)
        shares += r.cpu_shares or 0
        quota = None if quota is None or r.cpu_quota_us is None else quota + r.cpu_quota_us
        mem = None if mem is None or r.memory_limit_bytes is None else mem + r.memory_limit_bytes
    for c in spec.get("initContainers") or ():  # an init container runs alone: the max counts
        r = container_resources(c)
        if mem is not None and r.memory_limit_bytes is not None:
            mem = max(mem, r.memory_limit_bytes)
        if quota is not None and r.cpu_quota_us is not None:
            quota = max(quota, r.cpu_quota_us)
    return Resources(cpu_shares=max(2, shares), cpu_quota_us=quota or None, memory_limit_bytes=mem or None)


# --- security ---------------------------------------------------------------------------


def _lookup_user(rootfs: Path | None, name: str) -> tuple[int, int] | None:
    if rootfs is None:
        return None
    try:
        text = (rootfs / "etc" / "passwd").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[0] == name:
            try:
                return int(parts[2]), int(parts[3])
            except ValueError:
                return None
    return None


def _lookup_group(rootfs: Path | None, name: str) -> int | None:
    if rootfs is None:
        return None
    try:
        text = (rootfs / "etc" / "group").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] == name:
            try:
                return int(parts[2])
            except ValueError:
                return None
    return None


def image_user(user: str, rootfs: Path | None) -> tuple[int | None, int | None, str]:
    """The image's ``User`` (``uid``, ``uid:gid``, ``name``, ``name:group``) as
    (uid, gid, text); uid None when a name cannot be resolved."""
    if not user:
        return 0, 0, ""
    u, _, g = user.partition(":")
    uid: int | None
    gid: int | None = None
    if u.isdigit():
        uid = int(u)
    else:
        found = _lookup_user(rootfs, u)
        uid, gid = (found if found else (None, None))
    if g:
        gid = int(g) if g.isdigit() else _lookup_group(rootfs, g)
    if gid is None and uid is not None:
        gid = 0
    return uid, gid, u


def container_security(pod: Obj, container: Obj, user: str, rootfs: Path | None) -> Security:
    """The merged securityContext; raises :class:`ConfigError` for a
    ``runAsNonRoot`` container that would run as root."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        v = csc.get(key)
        return psc.get(key) if v is None else v

    img_uid, img_gid, img_name = image_user(user, rootfs)
    run_as_user = pick("runAsUser")
    run_as_group = pick("runAsGroup")
    uid = int(run_as_user) if run_as_user is not None else img_uid
    gid = int(run_as_group) if run_as_group is not None else img_gid
    if pick("runAsNonRoot"):
        if uid is None:
            raise ConfigError(f"container has runAsNonRoot and image has non-numeric user ({img_name}), "
                              "cannot verify user is non-root")
        if uid == 0:
            raise ConfigError("container has runAsNonRoot and image will run as root")
    if uid is None:
        raise ConfigError(f"unable to find user {img_name}: no matching entries in passwd file")
    sec = Security(uid=uid, gid=gid if gid is not None else 0)
    sec.supplemental_gids = [int(g) for g in psc.get("supplementalGroups") or ()]
    if psc.get("fsGroup") is not None:
        sec.supplemental_gids.append(int(psc["fsGroup"]))
    sec.privileged = bool(csc.get("privileged"))
    sec.read_only_rootfs = bool(csc.get("readOnlyRootFilesystem"))
    caps = csc.get("capabilities") or {}
    sec.capabilities_add = [str(c).upper().removeprefix("CAP_") for c in caps.get("add") or ()]
    sec.capabilities_drop = [str(c).upper().removeprefix("CAP_") for c in caps.get("drop") or ()]
    if csc.get("allowPrivilegeEscalation") is False:
        sec.no_new_privileges = True
    seccomp = pick("seccompProfile") or {}
    if seccomp.get("type") in ("RuntimeDefault", "Unconfined", "Localhost"):
        sec.seccomp = seccomp["type"]
        if seccomp["type"] == "Localhost":
            sec.seccomp_localhost_profile = seccomp.get("localhostProfile")
    else:
        sec.seccomp = "Unconfined" if not seccomp else "RuntimeDefault"
    if csc.get("procMount") == "Unmasked":
        sec.proc_mount = "Unmasked"
    sec.sysctls = {s.get("name", ""): str(s.get("value", "")) for s in psc.get("sysctls") or ()}
    return sec
