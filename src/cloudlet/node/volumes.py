"""Pod volumes on the host: materialised under ``<data-dir>/pods/<uid>/volumes``.

:class:`PodVolumes` sets up every volume of one pod the way the kubelet's
volume plugins do, and turns ``volumeMounts`` into runtime
:class:`~cloudlet.runtime.interface.Mount` s:

* ``emptyDir`` — a directory ``volumes/kubernetes.io~empty-dir/<name>``; with
  ``medium: Memory`` a tmpfs mounted there (``size`` = ``sizeLimit``, else the
  node's allocatable memory), source name ``cloudlet-<instance>`` so a leak is
  easy to spot, unmounted on teardown.
* ``configMap``, ``secret``, ``downwardAPI``, ``projected`` — files written by
  the kubelet's *atomic writer* (:func:`write_atomic`): the payload goes to a
  fresh ``..<timestamp>`` directory, the ``..data`` symlink is swapped to it
  with one ``rename``, and each top-level entry is a symlink through
  ``..data`` — so a container sees either the old or the new set of files,
  never a mix. :meth:`PodVolumes.refresh` rewrites them when the source
  objects change. ``items`` (key -> path, ``mode``), ``defaultMode`` and
  ``optional`` are honoured; a missing required object raises
  :class:`VolumeError` (``FailedMount``).
* ``hostPath`` — the host path itself, after the ``type`` check
  (``DirectoryOrCreate``, ``Directory``, ``FileOrCreate``, ``File``,
  ``Socket``, ``CharDevice``, ``BlockDevice``).
* ``subPath`` / ``subPathExpr`` (``$(VAR)`` over the container env) bind a
  path inside the volume (created as a directory when missing, must stay
  inside it); ``readOnly`` mounts read-only (configMap, secret, downwardAPI
  and projected volumes are always read-only).

Blocking file work runs in a thread; mount/umount are asyncio subprocesses.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudlet.node.envvars import ConfigError, expand, field_value, resource_field_value
from cloudlet.resources.quantity import parse_quantity
from cloudlet.runtime.interface import Mount

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]
Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)

DATA_DIR_NAME = "..data"
EMPTY_DIR = "kubernetes.io~empty-dir"
CONFIGMAP = "kubernetes.io~configmap"
SECRET = "kubernetes.io~secret"
DOWNWARD = "kubernetes.io~downward-api"
PROJECTED = "kubernetes.io~projected"
DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up (event ``FailedMount``)."""


@dataclass
class Volume:
    name: str
    kind: str
    path: Path
    read_only: bool = False  # always read-only (configMap, secret, ...)
    tmpfs: bool = False


# --- the atomic writer ---------------------------------------------------------------


def _current_payload(target: Path) -> Payload | None:
    data = target / DATA_DIR_NAME
    if not data.is_symlink():
        return None
    base = target / os.readlink(data)
    out: Payload = {}
    for root, _dirs, files in os.walk(base):
        for f in files:
            p = Path(root) / f
            rel = str(p.relative_to(base))
            out[rel] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def write_atomic(target: Path, payload: Payload) -> bool:
    """Make ``target`` show exactly ``payload``; returns False when it already did."""
    target.mkdir(parents=True, exist_ok=True)
    if _current_payload(target) == payload:
        return False
    ts = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.") + f"{os.getpid()}{os.urandom(4).hex()}"
    new_dir = target / ts
    new_dir.mkdir(mode=0o755)
    for rel, (content, mode) in payload.items():
        p = new_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        os.chmod(p, mode)
    old_link = target / DATA_DIR_NAME
    old = os.readlink(old_link) if old_link.is_symlink() else None
    tmp = target / "..data_tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(ts, tmp)
    os.rename(tmp, old_link)
    tops = {rel.split("/", 1)[0] for rel in payload}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"{DATA_DIR_NAME}/{top}", link)
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        if entry not in tops:
            p = target / entry
            if p.is_symlink() or p.is_file():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)
    if old and old != ts:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


# --- payloads ---------------------------------------------------------------------------


def _mode(item: Obj, default: int) -> int:
    m = item.get("mode")
    return int(m) if m is not None else default


def _keyed_payload(data: dict[str, bytes], items: list[Obj] | None, default_mode: int, kind: str,
                   ns: str, name: str, optional: bool) -> Payload:
    out: Payload = {}
    if items:
        for it in items:
            key = it.get("key", "")
            if key not in data:
                if optional:
                    continue
                raise VolumeError(f'configmap references non-existent config key: {key}' if kind == "configmap"
                                  else f'references non-existent secret key: {key}')
            out[_clean(it.get("path") or key)] = (data[key], _mode(it, default_mode))
    else:
        for key, value in data.items():
            out[key] = (value, default_mode)
    return out


def _clean(rel: str) -> str:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise VolumeError(f"invalid path {rel!r}")
    return "/".join(parts)


def configmap_data(cm: Obj) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return out


def secret_data(sec: Obj) -> dict[str, bytes]:
    out = {k: base64.b64decode(v) for k, v in (sec.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (sec.get("stringData") or {}).items()})
    return out


class PodVolumes:
    """Every volume of one pod; see the module docstring."""

    def __init__(
        self,
        pod_dir: Path,
        pod: Obj,
        *,
        instance: str,
        configmaps: Lookup,
        secrets: Lookup,
        allocatable: Obj,
    ) -> None:
        self.pod_dir = pod_dir
        self.pod = pod
        self.instance = instance
        self.configmaps = configmaps
        self.secrets = secrets
        self.allocatable = allocatable
        self.volumes: dict[str, Volume] = {}
        self.pod_ip = ""
        self.host_ip = ""

    @property
    def namespace(self) -> str:
        return (self.pod.get("metadata") or {}).get("namespace", "default")

    def referenced(self) -> set[tuple[str, str]]:
        """(kind, name) of every configmap/secret the volumes read."""
        out: set[tuple[str, str]] = set()
        for v in (self.pod.get("spec") or {}).get("volumes") or ():
            if v.get("configMap"):
                out.add(("configmap", v["configMap"].get("name", "")))
            if v.get("secret"):
                out.add(("secret", v["secret"].get("secretName", "")))
            for src in (v.get("projected") or {}).get("sources") or ():
                if src.get("configMap"):
                    out.add(("configmap", src["configMap"].get("name", "")))
                if src.get("secret"):
                    out.add(("secret", src["secret"].get("name", "")))
        return out

    # --- setup ---------------------------------------------------------------------

    async def setup(self) -> None:
        """Create every volume (idempotent); raises :class:`VolumeError`."""
        for v in (self.pod.get("spec") or {}).get("volumes") or ():
            name = v.get("name", "")
            if name in self.volumes and not self.volumes[name].read_only:
                continue
            await self._setup_one(v)

    async def refresh(self) -> bool:
        """Rewrite configMap/secret/downwardAPI/projected volumes; True when any changed."""
        changed = False
        for v in (self.pod.get("spec") or {}).get("volumes") or ():
            if any(k in v for k in ("configMap", "secret", "downwardAPI", "projected")):
                try:
                    changed |= await self._setup_one(v)
                except VolumeError:
                    continue
        return changed

    async def _setup_one(self, v: Obj) -> bool:
        name = v.get("name", "")
        vols = self.pod_dir / "volumes"
        if "emptyDir" in v:
            ed = v.get("emptyDir") or {}
            path = vols / EMPTY_DIR / name
            await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
            tmpfs = ed.get("medium") == "Memory"
            if tmpfs and not await _is_mountpoint(path):
                limit = ed.get("sizeLimit") or self.allocatable.get("memory")
                size = int(parse_quantity(limit)) if limit else 0
                opts = "mode=0777" + (f",size={size}" if size else "")
                await _run("mount", "-t", "tmpfs", "-o", opts, f"cloudlet-{self.instance}", str(path))
            else:
                await asyncio.to_thread(os.chmod, path, 0o777)
            self.volumes[name] = Volume(name, "emptyDir", path, tmpfs=tmpfs)
            return False
        if "hostPath" in v:
            hp = v.get("hostPath") or {}
            path = Path(hp.get("path", "/"))
            await asyncio.to_thread(_check_host_path, path, hp.get("type") or "")
            self.volumes[name] = Volume(name, "hostPath", path)
            return False
        for key, plugin in (("configMap", CONFIGMAP), ("secret", SECRET), ("downwardAPI", DOWNWARD),
                            ("projected", PROJECTED)):
            if key in v:
                payload = self._payload(key, v.get(key) or {})
                if payload is None:  # optional and missing: an empty volume
                    payload = {}
                path = vols / plugin / name
                changed = await asyncio.to_thread(write_atomic, path, payload)
                self.volumes[name] = Volume(name, key, path, read_only=True)
                return changed
        # unsupported volume kinds (persistentVolumeClaim, ephemeral, ...) come with storage
        raise VolumeError(f'volume "{name}" has an unsupported volume source')

    def _payload(self, kind: str, src: Obj) -> Payload | None:
        ns = self.namespace
        default_mode = int(src.get("defaultMode") if src.get("defaultMode") is not None else DEFAULT_MODE)
        if kind == "configMap":
            return self._configmap(src, default_mode)
        if kind == "secret":
            return self._secret(src, default_mode)
        if kind == "downwardAPI":
            return self._downward(src.get("items") or [], default_mode)
        out: Payload = {}
        for s in src.get("sources") or ():
            part: Payload | None = None
            if s.get("configMap") is not None:
                part = self._configmap(s["configMap"], default_mode)
            elif s.get("secret") is not None:
                sec = dict(s["secret"])
                sec["secretName"] = sec.get("name", "")
                part = self._secret(sec, default_mode)
            elif s.get("downwardAPI") is not None:
                part = self._downward((s["downwardAPI"] or {}).get("items") or [], default_mode)
            elif s.get("serviceAccountToken") is not None:
                part = None  # tokens arrive with service accounts (a later issue)
            out.update(part or {})
        del ns
        return out

    def _configmap(self, src: Obj, default_mode: int) -> Payload | None:
        name = src.get("name", "")
        cm = self.configmaps(self.namespace, name)
        if cm is None:
            if src.get("optional"):
                return None
            raise VolumeError(f'configmap "{name}" not found')
        return _keyed_payload(configmap_data(cm), src.get("items"), default_mode, "configmap",
                              self.namespace, name, bool(src.get("optional")))

    def _secret(self, src: Obj, default_mode: int) -> Payload | None:
        name = src.get("secretName", "")
        sec = self.secrets(self.namespace, name)
        if sec is None:
            if src.get("optional"):
                return None
            raise VolumeError(f'secret "{name}" not found')
        return _keyed_payload(secret_data(sec), src.get("items"), default_mode, "secret",
                              self.namespace, name, bool(src.get("optional")))

    def _downward(self, items: list[Obj], default_mode: int) -> Payload:
        out: Payload = {}
        for it in items:
            path = _clean(it.get("path", ""))
            try:
                if it.get("fieldRef"):
                    value = field_value(str(it["fieldRef"].get("fieldPath", "")), self.pod, self.pod_ip, self.host_ip)
                elif it.get("resourceFieldRef"):
                    ref = it["resourceFieldRef"]
                    target: Obj = {}
                    for c in (self.pod.get("spec") or {}).get("containers") or ():
                        if c.get("name") == ref.get("containerName"):
                            target = c
                    value = resource_field_value(ref, target, self.allocatable)
                else:
                    continue
            except ConfigError as e:
                raise VolumeError(str(e)) from e
            out[path] = (value.encode(), _mode(it, default_mode))
        return out

    # --- mounts --------------------------------------------------------------------

    def mounts_for(self, container: Obj, env: list[tuple[str, str]]) -> list[Mount]:
        """Runtime mounts for a container's ``volumeMounts`` (after :meth:`setup`)."""
        values = dict(env)
        out: list[Mount] = []
        for vm in container.get("volumeMounts") or ():
            vol = self.volumes.get(vm.get("name", ""))
            if vol is None:
                raise VolumeError(f'unable to find volume "{vm.get("name", "")}"')
            host = vol.path
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = expand(vm["subPathExpr"], values.get)
            if sub:
                rel = _clean(sub)
                host = vol.path / rel
                resolved = host.resolve() if host.exists() else host
                base = vol.path.resolve()
                if not str(resolved).startswith(str(base)):
                    raise VolumeError(f"subPath {sub!r} is outside the volume")
                if not host.exists() and not host.is_symlink():
                    host.mkdir(parents=True, exist_ok=True)
                    if vol.kind == "emptyDir":
                        os.chmod(host, 0o777)
            propagation = {"HostToContainer": "rslave", "Bidirectional": "rshared"}.get(
                vm.get("mountPropagation") or "", "private")
            out.append(Mount(container_path=vm.get("mountPath", ""), host_path=str(host),
                             read_only=bool(vm.get("readOnly")) or vol.read_only,
                             propagation=propagation))  # type: ignore[arg-type]
        return out

    # --- teardown ----------------------------------------------------------------------

    async def teardown(self) -> None:
        """Unmount tmpfs volumes and remove the pod's volume directories."""
        await teardown_pod_dir(self.pod_dir)


async def teardown_pod_dir(pod_dir: Path) -> None:
    """Unmount whatever is mounted below ``pod_dir`` and remove the tree."""
    for mp in await _mounts_below(pod_dir):
        await _run("umount", "-l", mp, check=False)
    await asyncio.to_thread(shutil.rmtree, pod_dir, True)


async def _mounts_below(root: Path) -> list[str]:
    def read() -> list[str]:
        prefix = str(root.resolve()) + "/"
        out = []
        try:
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    mp = line.split()[4].replace("\\040", " ")
                    if mp.startswith(prefix):
                        out.append(mp)
        except OSError:
            pass
        return sorted(out, key=len, reverse=True)

    return await asyncio.to_thread(read)


async def _is_mountpoint(path: Path) -> bool:
    return await asyncio.to_thread(os.path.ismount, path)


async def _run(*argv: str, check: bool = True) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise VolumeError(f"{' '.join(argv)}: {err.decode(errors='replace').strip()}")


def _check_host_path(path: Path, type_: str) -> None:
    """The hostPath ``type`` check (kubelet's messages)."""
    if type_ == "DirectoryOrCreate":
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        if not path.is_dir():
            raise VolumeError(f"hostPath type check failed: {path} is not a directory")
        return
    if type_ == "FileOrCreate":
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o644)
        if not path.is_file():
            raise VolumeError(f"hostPath type check failed: {path} is not a file")
        return
    checks = {
        "Directory": (stat.S_ISDIR, "a directory"),
        "File": (stat.S_ISREG, "a file"),
        "Socket": (stat.S_ISSOCK, "a socket file"),
        "CharDevice": (stat.S_ISCHR, "a character device"),
        "BlockDevice": (stat.S_ISBLK, "a block device"),
    }
    if type_ in checks:
        fn, what = checks[type_]
        try:
            mode = path.stat().st_mode
        except OSError as e:
            raise VolumeError(f"hostPath type check failed: {path} is not {what}") from e
        if not fn(mode):
            raise VolumeError(f"hostPath type check failed: {path} is not {what}")


# --- /etc files -------------------------------------------------------------------------


def hosts_file(pod: Obj, pod_ip: str, hostname: str) -> str:
    """The kubelet-managed /etc/hosts of a pod."""
    spec = pod.get("spec") or {}
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if pod_ip:
        sub = spec.get("subdomain")
        ns = (pod.get("metadata") or {}).get("namespace", "default")
        if sub:
            lines.append(f"{pod_ip}\t{hostname}.{sub}.{ns}.svc.cluster.local\t{hostname}")
        else:
            lines.append(f"{pod_ip}\t{hostname}")
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for a in aliases:
            lines.append(f"{a.get('ip', '')}\t" + "\t".join(a.get("hostnames") or ()))
    return "\n".join(lines) + "\n"


def write_etc_files(pod_dir: Path, pod: Obj, pod_ip: str, hostname: str, host_network: bool,
                    resolv_text: str | None = None) -> tuple[Path, Path, Path]:
    """Write etc-hosts, resolv.conf (``resolv_text``, else the host's) and hostname; returns their paths."""
    pod_dir.mkdir(parents=True, exist_ok=True)
    hosts = pod_dir / "etc-hosts"
    if host_network:
        try:
            text = Path("/etc/hosts").read_text()
        except OSError:
            text = hosts_file(pod, "", hostname)
    else:
        text = hosts_file(pod, pod_ip, hostname)
    hosts.write_text(text)
    resolv = pod_dir / "resolv.conf"
    if resolv_text is not None:
        resolv.write_text(resolv_text)
    else:
        try:
            resolv.write_text(Path("/etc/resolv.conf").read_text())
        except OSError:
            resolv.write_text("")
    host_name = pod_dir / "hostname"
    host_name.write_text(hostname + "\n")
    for p in (hosts, resolv, host_name):
        os.chmod(p, 0o644)
    return hosts, resolv, host_name
