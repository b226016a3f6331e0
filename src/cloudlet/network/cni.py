"""The pod network: one CNI bridge network per cloudlet instance, driven like libcni.

:class:`PodNetwork` wires each pod sandbox into a network namespace with the
standard CNI plugins (Debian's ``containernetworking-plugins`` in
``/usr/lib/cni``), invoked exactly as the CNI spec says: the plugin binary gets
``CNI_COMMAND``/``CNI_CONTAINERID``/``CNI_NETNS``/``CNI_IFNAME``/``CNI_ARGS``/
``CNI_PATH`` in its environment and the network configuration on stdin, and
answers a result (ADD) or an error object on stdout. The chain, in order:

* ``bridge`` — a Linux bridge ``cl-<instance hash>`` holding the first address
  of the pod CIDR (``isGateway``; this is :attr:`PodNetwork.host_ip`), one veth
  per pod, ``hairpinMode`` so a pod reaches itself through a hostPort,
  ``ipMasq: false`` (pods get no NAT to the outside: cloudlet only addresses
  loopback and its own pod network). Its IPAM is ``host-local`` with one range
  (the pod CIDR), a default route via the bridge (so service IPs routed by a
  proxy later work), and its ``dataDir`` under ``state_dir`` — never
  ``/var/lib/cni`` — so two instances never share reservations.
* ``portmap`` with ``capabilities: {portMappings: true}``: hostPorts get their
  DNAT through the ``portMappings`` runtime config (Kubernetes' ``hostPort`` /
  ``containerPort`` / ``protocol`` / ``hostIP``); with ``snat`` on (its default)
  the plugin sets ``route_localnet`` on our bridge so ``127.0.0.1:<hostPort>``
  works. Its per-pod chain ``CNI-DN-<hash>`` goes on DEL. A pod without
  hostPorts runs its chain without ``portmap`` (with no mappings its ADD only
  passes the result through): the chain a pod ran is kept in its cache entry,
  so DEL and CHECK run exactly that chain.
* ``loopback`` — brings ``lo`` up inside the pod. cloudlet does what the
  plugin does in-process (``SIOCSIFFLAGS`` in the namespace, see
  :func:`cloudlet.network.netns.set_link_up`; ADD passes the previous result
  through unchanged, CHECK verifies ``lo`` is up, DEL has nothing to do because
  the namespace goes right after), which saves a process spawn per pod; the
  entry stays in the configuration so the chain reads as libcni's would.

The protocol version is ``1.0.0`` when every plugin supports it (Debian 12's
1.1.1 plugins do), else ``0.4.0``.

Host state and naming (all tied to the instance id, so two instances with
different CIDRs coexist and cleanup never touches strangers):

* network name ``cloudlet-<instance>``: host-local's reservation dir and
  portmap's rule comments (``dnat name: "cloudlet-<instance>" id: ...``);
* bridge ``cl-<10 hex of sha256(instance)>`` (Linux allows 15 characters),
  created by :meth:`PodNetwork.start` with the gateway address so the host IP
  is known and the first concurrent ADDs never race to create it, and with a
  fixed MAC (a bridge otherwise takes its lowest port's MAC, which changes as
  pods come and go and makes CNI CHECK fail); ``start`` refuses a pod CIDR that
  overlaps a route on any other interface (:func:`pick_free_cidr` finds a free
  one, for tests and side-by-side instances);
* one namespace per pod: ``/run/netns/cloudlet-<instance>-<pod key>``, where
  the pod key is the pod UID when it is a UUID, else a UUID derived from it
  (see :mod:`cloudlet.network.netns`); the CNI container id is the pod key;
* under ``state_dir``: ``net.d/cloudlet.conflist`` (the config), ``ipam/``
  (host-local), ``results/<pod key>.json`` — libcni's result cache: the exact
  config, runtime config, CNI_ARGS and result of each pod's ADD, written before
  the namespace exists and completed after ADD, so DEL/CHECK after a restart
  use what ADD used, and nothing is orphaned by a crash in between.

Host-wide side effects, stated plainly: the bridge plugin turns on
``net.ipv4.ip_forward`` whenever ``isGateway`` is set (it cannot be told not
to; forwarding is also what a hostPort reached from another pod, and a
ClusterIP proxy later, need) and leaves it on. portmap's top-level chains
(``CNI-HOSTPORT-DNAT``/``-SETMARK``/``-MASQ`` in the ``nat`` table and the
jumps to them) are shared by every portmap user on the host; portmap never
deletes them. :meth:`PodNetwork.cleanup_all` removes them when they are empty
and no per-pod chain is left, under a host-wide lock (an ``flock`` on the
portmap binary) that cloudlet's own hostPort ADDs also take.

``hostNetwork: true`` pods get no namespace at all: the node agent simply does
not call :meth:`PodNetwork.setup` for them.

Concurrency: ADD/DEL of different pods run in parallel (plugins lock their own
state: host-local its dataDir, iptables its xtables lock), capped by
``max_parallel``; operations on one pod are serialised.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import random
import re
import shlex
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudlet.network import netns

__all__ = [
    "CNIError",
    "DEFAULT_PLUGIN_DIRS",
    "DEFAULT_POD_CIDR",
    "NetworkError",
    "PodNetwork",
    "PodNetworkInfo",
    "bridge_name",
    "pick_free_cidr",
]

log = logging.getLogger(__name__)

DEFAULT_POD_CIDR = "10.88.0.0/16"
DEFAULT_PLUGIN_DIRS: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")
SUPPORTED_VERSIONS = ("1.0.0", "0.4.0")  # newest first; both have CHECK and prevResult on DEL
REQUIRED_PLUGINS = ("bridge", "host-local", "portmap")
BUILTIN_PLUGINS = ("loopback",)  # run in-process, see the module docstring
IFNAME = "eth0"
RECORD_VERSION = 1
PLUGIN_TIMEOUT = 60.0
_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KEY_NAMESPACE = uuid.UUID("5b7c0c3e-6c1e-4c57-9d59-0d0c1c0e7e01")  # pod UID -> pod key
_SHARED_PORTMAP_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")


class NetworkError(Exception):
    """The pod network could not be set up, checked or torn down."""


class CNIError(NetworkError):
    """A CNI plugin answered an error (the spec's error object, or a bare failure).

    ``code`` is the CNI error code (e.g. 7 invalid network config, 11 try again
    later, 999 plugin-specific; 0 when the plugin printed no error object).
    """

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "",
                 pod: str = "") -> None:
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details
        self.pod = pod
        where = f" for pod {pod}" if pod else ""
        text = f"CNI plugin {plugin} {command}{where} failed (code {code}): {msg}"
        if details:
            text += f" ({details})"
        super().__init__(text)


@dataclass
class PodNetworkInfo:
    """What a pod got: its namespace path, addresses (bare IPs), gateway and interface."""

    netns_path: str
    ips: list[str] = field(default_factory=list)
    ip: str = ""
    gateway: str = ""
    interface: str = IFNAME
    host_interface: str = ""  # the host end of the pod's veth pair (for stats)


def bridge_name(instance: str) -> str:
    """The bridge of an instance: ``cl-`` + 10 hex digits of its sha256 (13 chars)."""
    return "cl-" + hashlib.sha256(instance.encode()).hexdigest()[:10]


def _routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """IPv4 routes of the main table as (network, device), via ``/proc/net/route``."""
    out: list[tuple[ipaddress.IPv4Network, str]] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 8:
            continue
        dev, dst, mask = parts[0], parts[1], parts[7]
        dst_ip = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(dst), "little"))
        mask_ip = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(mask), "little"))
        if int(mask_ip) == 0:
            continue  # default route
        out.append((ipaddress.IPv4Network(f"{dst_ip}/{mask_ip}", strict=False), dev))
    return out


def pick_free_cidr(within: str = "10.123.0.0/16", prefixlen: int = 24,
                   rng: random.Random | None = None) -> str:
    """A random ``/prefixlen`` inside ``within`` that no host route overlaps.

    For tests and for ``cloudlet up`` instances that must not collide with a
    running one. Raises :class:`NetworkError` when every candidate is taken.
    """
    net = ipaddress.ip_network(within)
    subnets = list(net.subnets(new_prefix=prefixlen))
    (rng or random.SystemRandom()).shuffle(subnets)
    taken = [n for n, _dev in _routes()]
    for cand in subnets:
        if not any(cand.overlaps(t) for t in taken):
            return str(cand)
    raise NetworkError(f"no free /{prefixlen} left in {within}")


def _pod_key(pod_uid: str) -> str:
    uid = pod_uid.strip().lower()
    if _UUID_RE.match(uid):
        return uid
    return str(uuid.uuid5(_KEY_NAMESPACE, pod_uid))


def _normalize_port_mappings(port_mappings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kubernetes ContainerPorts (or CNI portMappings) -> CNI ``portMappings`` entries.

    Entries without a hostPort are not mappings and are dropped, as the kubelet does.
    """
    out: list[dict[str, Any]] = []
    for pm in port_mappings:
        host_port = int(pm.get("hostPort") or 0)
        if host_port <= 0:
            continue
        container_port = int(pm.get("containerPort") or 0)
        if not 0 < container_port < 65536 or host_port >= 65536:
            raise NetworkError(f"invalid port mapping {pm!r}")
        protocol = str(pm.get("protocol") or "TCP").lower()
        if protocol not in ("tcp", "udp", "sctp"):
            raise NetworkError(f"invalid port mapping protocol {pm.get('protocol')!r}")
        entry: dict[str, Any] = {"hostPort": host_port, "containerPort": container_port,
                                 "protocol": protocol}
        if pm.get("hostIP"):
            entry["hostIP"] = str(pm["hostIP"])
        out.append(entry)
    return out


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("ignoring unreadable CNI cache file %s", path)
        return None


async def _run(*argv: str, check: bool = True, input: bytes | None = None) -> tuple[int, str, str]:  # noqa: A002
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": _PATH_ENV, "LC_ALL": "C"})
    out, err = await proc.communicate(input)
    rc = proc.returncode or 0
    if check and rc != 0:
        raise NetworkError(f"{shlex.join(argv)} failed ({rc}): {err.decode(errors='replace').strip()}")
    return rc, out.decode(errors="replace"), err.decode(errors="replace")


@contextlib.asynccontextmanager
async def _flock(path: Path, exclusive: bool) -> AsyncIterator[None]:
    """A host-wide advisory lock on an existing file, polled so waiting never ties up a
    thread. cloudlet locks the portmap binary itself: every instance finds the same
    file and nothing has to be created (or left behind) for the lock."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


class PodNetwork:
    """The CNI pod network of one cloudlet instance (contract 3).

    Lifecycle: ``await start()`` once (checks the plugins, creates the bridge,
    writes the conflist), then ``setup``/``teardown`` per pod, any number at
    once. ``setup`` is idempotent per pod UID (a second call returns the first
    result; a half-done earlier attempt is torn down and redone); ``teardown``
    is idempotent and works from the on-disk cache after a restart, even on a
    new object and even if ``start`` was not called. ``cleanup_all`` removes
    everything of the instance from the host.
    """

    def __init__(self, state_dir: Path, instance: str, pod_cidr: str = DEFAULT_POD_CIDR,
                 bridge: str | None = None, *, plugin_dirs: Sequence[str] = DEFAULT_PLUGIN_DIRS,
                 netns_dir: Path = netns.NETNS_DIR, max_parallel: int = 16) -> None:
        if not instance:
            raise ValueError("instance must not be empty")
        self.state_dir = Path(state_dir)
        self.instance = _NAME_RE.sub("-", instance)
        try:
            self.pod_cidr = ipaddress.IPv4Network(pod_cidr, strict=True)
        except ValueError as e:
            raise ValueError(f"invalid pod CIDR {pod_cidr!r}: {e}") from None
        if self.pod_cidr.prefixlen > 30:
            raise ValueError(f"pod CIDR {pod_cidr} is too small (at most /30)")
        self.bridge = bridge or bridge_name(self.instance)
        if not 0 < len(self.bridge) <= 15 or _NAME_RE.search(self.bridge):
            raise ValueError(f"invalid bridge name {self.bridge!r} (at most 15 characters)")
        self.network_name = f"cloudlet-{self.instance}"
        self.plugin_dirs = tuple(plugin_dirs)
        self.netns_dir = Path(netns_dir)
        self.netns_prefix = f"cloudlet-{self.instance}-"
        self.cni_version = SUPPORTED_VERSIONS[0]
        self.conflist_path = self.state_dir / "net.d" / "cloudlet.conflist"
        self.ipam_dir = self.state_dir / "ipam"
        self.results_dir = self.state_dir / "results"
        self._gateway = next(self.pod_cidr.hosts())
        self._sem = asyncio.Semaphore(max_parallel)
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._started = False

    # ------------------------------------------------------------------ config

    @property
    def host_ip(self) -> str:
        """The bridge address: how pods reach the host (and their default gateway)."""
        return str(self._gateway)

    def conflist(self) -> dict[str, Any]:
        """The network configuration list this instance uses for new pods."""
        return {
            "cniVersion": self.cni_version,
            "name": self.network_name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.ipam_dir),
                        "ranges": [[{"subnet": str(self.pod_cidr), "gateway": self.host_ip}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
                {"type": "loopback"},
            ],
        }

    def pod_conflist(self, mappings: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The chain one pod runs: :meth:`conflist` without ``portmap`` when the pod has
        no port mappings (portmap would only pass the result through)."""
        conf = self.conflist()
        if not mappings:
            conf["plugins"] = [p for p in conf["plugins"] if p["type"] != "portmap"]
        return conf

    def netns_path(self, pod_uid: str) -> str:
        """Where the pod's network namespace is (or would be) bound."""
        return str(self.netns_dir / f"{self.netns_prefix}{_pod_key(pod_uid)}")

    def _record_path(self, key: str) -> Path:
        return self.results_dir / f"{key}.json"

    @contextlib.asynccontextmanager
    async def _portmap_lock(self, exclusive: bool) -> AsyncIterator[None]:
        binary = self._find_plugin("portmap")
        if binary is None:  # no portmap here: nothing of ours can race on its chains
            yield
            return
        async with _flock(binary.resolve(), exclusive):
            yield

    def _find_plugin(self, name: str) -> Path | None:
        for d in self.plugin_dirs:
            p = Path(d, name)
            if p.is_file() and os.access(p, os.X_OK):
                return p
        return None

    # ------------------------------------------------------------------ start

    async def start(self) -> None:
        """Check the plugins and their protocol versions, create the bridge, write the conflist.

        Raises :class:`NetworkError` if a plugin or ``iptables`` is missing,
        no common protocol version exists, or the pod CIDR overlaps a route on
        another interface (another instance or network already uses it).
        """
        missing = [p for p in REQUIRED_PLUGINS if self._find_plugin(p) is None]
        if missing:
            raise NetworkError(f"CNI plugins not found in {':'.join(self.plugin_dirs)}: "
                               f"{', '.join(missing)} (install containernetworking-plugins)")
        if shutil.which("iptables", path=_PATH_ENV) is None:
            raise NetworkError("iptables not found: the portmap plugin needs it for hostPort")
        versions = await asyncio.gather(*(self._plugin_versions(p) for p in REQUIRED_PLUGINS))
        common = [v for v in SUPPORTED_VERSIONS if all(v in vs for vs in versions)]
        if not common:
            raise NetworkError(f"the CNI plugins share no protocol version with cloudlet "
                               f"(need one of {', '.join(SUPPORTED_VERSIONS)})")
        self.cni_version = common[0]
        for net, dev in await asyncio.to_thread(_routes):
            if dev != self.bridge and net.overlaps(self.pod_cidr):
                raise NetworkError(f"pod CIDR {self.pod_cidr} overlaps route {net} on {dev}; "
                                   f"pick another pod CIDR")
        await self._ensure_bridge()
        for d in (self.conflist_path.parent, self.ipam_dir, self.results_dir):
            d.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_write_json_atomic, self.conflist_path, self.conflist())
        self._started = True

    async def _plugin_versions(self, plugin: str) -> list[str]:
        res = await self._exec(plugin, "VERSION", {"cniVersion": SUPPORTED_VERSIONS[0]},
                               container_id="", netns_path="", cni_args="")
        return list((res or {}).get("supportedVersions") or [])

    def _bridge_mac(self) -> str:
        digest = hashlib.sha256(f"cloudlet-bridge/{self.bridge}".encode()).digest()
        return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))  # locally administered

    async def _ensure_bridge(self) -> None:
        rc, out, _ = await _run("ip", "-j", "addr", "show", "dev", self.bridge, check=False)
        want = f"{self.host_ip}/{self.pod_cidr.prefixlen}"
        if rc != 0:
            rc, _, err = await _run("ip", "link", "add", "name", self.bridge, "type", "bridge",
                                    check=False)
            if rc != 0 and "File exists" not in err:
                raise NetworkError(f"cannot create bridge {self.bridge}: {err.strip()}")
            have: list[str] = []
        else:
            info = json.loads(out or "[]")
            have = [f"{a['local']}/{a['prefixlen']}" for i in info for a in i.get("addr_info", [])
                    if a.get("family") == "inet"]
        # A bridge without a MAC of its own takes its lowest port's, so it would change
        # as pods come and go (and CNI CHECK compares it); give it a fixed one.
        await _run("ip", "link", "set", "dev", self.bridge, "address", self._bridge_mac())
        if have and have != [want]:
            await _run("ip", "-4", "addr", "flush", "dev", self.bridge)  # CIDR changed
        if have != [want]:
            await _run("ip", "addr", "replace", want, "dev", self.bridge)
        await _run("ip", "link", "set", "dev", self.bridge, "up")

    # ------------------------------------------------------------------ plugins

    async def _exec(self, plugin: str, command: str, conf: dict[str, Any], *, container_id: str,
                    netns_path: str, cni_args: str, pod: str = "") -> dict[str, Any] | None:
        """Run one plugin once, the way the CNI spec says; parse its answer."""
        binary = self._find_plugin(plugin)
        if binary is None:
            raise CNIError(plugin, command, 0, f"plugin {plugin} not found in "
                           f"{':'.join(self.plugin_dirs)}", pod=pod)
        env = {
            "PATH": _PATH_ENV,
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns_path,
            "CNI_IFNAME": IFNAME,
            "CNI_ARGS": cni_args,
            "CNI_PATH": ":".join(self.plugin_dirs),
        }
        data = json.dumps(conf).encode()
        # The config goes through a pipe filled and closed before the plugin starts (configs
        # are far below the pipe buffer), so a plugin that never reads stdin (VERSION) cannot
        # make the write fail with EPIPE.
        rfd, wfd = os.pipe()
        try:
            if len(data) > 60000:
                raise NetworkError(f"network configuration too large ({len(data)} bytes)")
            os.write(wfd, data)
            os.close(wfd)
            wfd = -1
            proc = await asyncio.create_subprocess_exec(
                str(binary), stdin=rfd, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env)
        finally:
            os.close(rfd)
            if wfd >= 0:
                os.close(wfd)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), PLUGIN_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CNIError(plugin, command, 0, f"timed out after {PLUGIN_TIMEOUT:.0f}s",
                           pod=pod) from None
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            code, msg, details = 0, "", ""
            try:
                obj = json.loads(out)
                code = int(obj.get("code") or 0)
                msg = str(obj.get("msg") or "")
                details = str(obj.get("details") or "")
            except (ValueError, AttributeError):
                pass
            if not msg:
                msg = (err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
                       or f"exit status {proc.returncode}")
            raise CNIError(plugin, command, code, msg, details, pod=pod)
        if not out.strip():
            return None
        try:
            result = json.loads(out)
        except ValueError:
            raise CNIError(plugin, command, 0, f"unparseable output: {out[:200]!r}",
                           pod=pod) from None
        return result if isinstance(result, dict) else None

    @staticmethod
    def _plugin_conf(conflist: dict[str, Any], plugin: dict[str, Any],
                     runtime_config: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
        """One plugin's stdin, built the way libcni does for a list."""
        conf = dict(plugin)
        conf["name"] = conflist["name"]
        conf["cniVersion"] = conflist["cniVersion"]
        caps = plugin.get("capabilities") or {}
        rc = {k: v for k, v in runtime_config.items() if caps.get(k)}
        if rc:
            conf["runtimeConfig"] = rc
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    async def _builtin(self, plugin: str, command: str, conf: dict[str, Any], *,
                       netns_path: str, pod: str) -> dict[str, Any] | None:
        """The in-process ``loopback`` plugin (see the module docstring)."""
        try:
            if command == "ADD":
                await asyncio.to_thread(netns.set_link_up, netns_path, "lo")
                prev = conf.get("prevResult")
                if prev is not None:
                    return prev
                return {"cniVersion": conf.get("cniVersion", self.cni_version),
                        "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": netns_path}],
                        "ips": [{"interface": 0, "address": "127.0.0.1/8"},
                                {"interface": 0, "address": "::1/128"}],
                        "dns": {}}
            if command == "CHECK":
                if not await asyncio.to_thread(netns.link_is_up, netns_path, "lo"):
                    raise CNIError(plugin, command, 999, "loopback interface is down", pod=pod)
            return None  # DEL: the namespace is removed right after
        except OSError as e:
            raise CNIError(plugin, command, 999, f"{e.strerror or e}", pod=pod) from e

    async def _run_plugin(self, plugin: str, command: str, conf: dict[str, Any], *, container_id: str,
                          netns_path: str, cni_args: str, pod: str) -> dict[str, Any] | None:
        if plugin in BUILTIN_PLUGINS:
            return await self._builtin(plugin, command, conf, netns_path=netns_path, pod=pod)
        return await self._exec(plugin, command, conf, container_id=container_id,
                                netns_path=netns_path, cni_args=cni_args, pod=pod)

    async def _add_chain(self, rec: dict[str, Any]) -> dict[str, Any]:
        conflist = rec["config"]
        prev: dict[str, Any] | None = None
        for plugin in conflist["plugins"]:
            conf = self._plugin_conf(conflist, plugin, rec["runtimeConfig"], prev)
            res = await self._run_plugin(plugin["type"], "ADD", conf, container_id=rec["containerID"],
                                         netns_path=rec["netns"], cni_args=rec["cniArgs"],
                                         pod=rec["pod"])
            if res is None:
                raise CNIError(plugin["type"], "ADD", 0, "no result on stdout", pod=rec["pod"])
            prev = res
        assert prev is not None
        return prev

    async def _del_chain(self, rec: dict[str, Any], netns_path: str) -> None:
        conflist = rec["config"]
        for plugin in reversed(conflist["plugins"]):
            conf = self._plugin_conf(conflist, plugin, rec.get("runtimeConfig") or {},
                                     rec.get("result"))
            await self._run_plugin(plugin["type"], "DEL", conf, container_id=rec["containerID"],
                                   netns_path=netns_path, cni_args=rec.get("cniArgs", ""),
                                   pod=rec.get("pod", ""))

    async def _check_chain(self, rec: dict[str, Any]) -> None:
        conflist = rec["config"]
        result = rec["result"]
        for plugin in conflist["plugins"]:
            conf = self._plugin_conf(conflist, plugin, rec["runtimeConfig"], result)
            try:
                await self._run_plugin(plugin["type"], "CHECK", conf, container_id=rec["containerID"],
                                       netns_path=rec["netns"], cni_args=rec["cniArgs"], pod=rec["pod"])
            except CNIError as e:
                # portmap 1.1.1 CHECK looks for ip6tables rules even for an IPv4-only pod
                # (containernetworking/plugins#819); verify the IPv4 side ourselves.
                v6 = any(":" in ip.get("address", "") for ip in result.get("ips", []))
                if plugin["type"] == "portmap" and "ipv6" in e.msg and not v6:
                    await self._check_portmap_v4(rec)
                    continue
                raise

    async def _check_portmap_v4(self, rec: dict[str, Any]) -> None:
        if not rec["runtimeConfig"].get("portMappings"):
            return
        _, out, _ = await _run("iptables-save", "-t", "nat")
        marker = f'id: \\"{rec["containerID"]}\\"'
        if not any(self._rule_is_ours(line) and marker in line for line in out.splitlines()):
            raise CNIError("portmap", "CHECK", 999, f"hostPort rules of container "
                           f"{rec['containerID']} are missing from the nat table", pod=rec["pod"])

    # ------------------------------------------------------------------ per pod

    @contextlib.asynccontextmanager
    async def _pod_lock(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:
                del self._lock_users[key]
                del self._locks[key]

    def _info(self, rec: dict[str, Any]) -> PodNetworkInfo:
        result = rec["result"]
        ips = [str(ipaddress.ip_interface(i["address"]).ip) for i in result.get("ips", [])]
        gateways = [i.get("gateway") for i in result.get("ips", []) if i.get("gateway")]
        host_if = next((i.get("name", "") for i in result.get("interfaces", [])
                        if not i.get("sandbox") and i.get("name") != self.bridge), "")
        return PodNetworkInfo(netns_path=rec["netns"], ips=ips, ip=ips[0] if ips else "",
                              gateway=gateways[0] if gateways else self.host_ip, interface=IFNAME,
                              host_interface=host_if)

    async def setup(self, pod_uid: str, namespace: str, name: str,
                    port_mappings: Sequence[dict[str, Any]] = (), *,
                    netns_ready: Callable[[], None] | None = None) -> PodNetworkInfo:
        """Give the pod a network namespace on the pod network; idempotent per UID.

        ``port_mappings`` are the pod's container ports (Kubernetes
        ``containerPort``/``hostPort``/``protocol``/``hostIP``); those with a
        ``hostPort`` become portmap DNAT rules. A repeated call for a pod that is
        set up returns the cached result unchanged (its mappings stay those of the
        first call); a half-done earlier attempt (a crash between the cache entry
        and the end of ADD) is torn down and redone. On failure everything done so
        far is undone (CNI DEL, namespace removed) and :class:`CNIError` /
        :class:`NetworkError` is raised.

        ``netns_ready`` is called once the pod's (new) namespace exists at
        :meth:`netns_path`, before the plugins run: a sandbox may join it
        meanwhile. It is not called when the pod was set up already.
        """
        if not self._started:
            raise NetworkError("PodNetwork.start() has not been called")
        key = _pod_key(pod_uid)
        mappings = _normalize_port_mappings(port_mappings)
        path = self.netns_path(pod_uid)
        async with self._pod_lock(key), self._sem:
            rec = await asyncio.to_thread(_read_json, self._record_path(key))
            if rec and rec.get("result") and netns.exists(rec["netns"]):
                return self._info(rec)
            if rec is not None or netns.exists(path):
                await self._teardown_locked(key, pod_uid, rec)
            rec = {
                "version": RECORD_VERSION,
                "podUID": pod_uid,
                "pod": f"{namespace}/{name}",
                "containerID": key,
                "ifName": IFNAME,
                "netns": path,
                "config": self.pod_conflist(mappings),
                "runtimeConfig": {"portMappings": mappings},
                "cniArgs": (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
                            f"K8S_POD_INFRA_CONTAINER_ID={key};K8S_POD_UID={pod_uid}"),
                "result": None,
                "created": time.time(),
            }
            await asyncio.to_thread(_write_json_atomic, self._record_path(key), rec)
            try:
                await netns.create(path)
                if netns_ready is not None:
                    netns_ready()
                if mappings:
                    async with self._portmap_lock(exclusive=False):
                        result = await self._add_chain(rec)
                else:
                    result = await self._add_chain(rec)
                rec["result"] = result
                await asyncio.to_thread(_write_json_atomic, self._record_path(key), rec)
            except BaseException as e:
                try:
                    await self._teardown_locked(key, pod_uid, rec)
                except Exception as e2:  # noqa: BLE001 - the first error matters more
                    log.warning("rollback of failed network setup for %s: %s", rec["pod"], e2)
                if isinstance(e, OSError):
                    raise NetworkError(f"network setup for pod {rec['pod']} failed: {e}") from e
                raise
            return self._info(rec)

    async def check(self, pod_uid: str) -> None:
        """CNI CHECK of the pod's network (plugins verify what ADD configured).

        Raises :class:`NetworkError` if the pod has no network here, or
        :class:`CNIError` from the plugin that found a difference.
        """
        key = _pod_key(pod_uid)
        async with self._pod_lock(key), self._sem:
            rec = await asyncio.to_thread(_read_json, self._record_path(key))
            if not rec or not rec.get("result"):
                raise NetworkError(f"pod {pod_uid} has no network set up")
            if not netns.exists(rec["netns"]):
                raise NetworkError(f"network namespace {rec['netns']} of pod {rec['pod']} is gone")
            await self._check_chain(rec)

    async def teardown(self, pod_uid: str) -> None:
        """CNI DEL (with the cached config and result) and remove the namespace; idempotent."""
        key = _pod_key(pod_uid)
        async with self._pod_lock(key), self._sem:
            rec = await asyncio.to_thread(_read_json, self._record_path(key))
            await self._teardown_locked(key, pod_uid, rec)

    async def _teardown_locked(self, key: str, pod_uid: str, rec: dict[str, Any] | None) -> None:
        path = rec["netns"] if rec else self.netns_path(pod_uid)
        have_ns = netns.exists(path)
        if rec is None and not have_ns:
            return
        if rec is None:  # a namespace without a cache entry: DEL with today's config
            rec = {"containerID": key, "config": self.conflist(), "runtimeConfig": {},
                   "cniArgs": "", "result": None, "pod": pod_uid}
        await self._del_chain(rec, path if have_ns else "")
        await netns.delete(path)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self._record_path(key))

    async def list_pods(self) -> list[str]:
        """UIDs of the pods that have a namespace or a cache entry here (for recovery)."""
        def scan() -> list[str]:
            uids: set[str] = set()
            keys: set[str] = set()
            if self.results_dir.is_dir():
                for p in self.results_dir.glob("*.json"):
                    rec = _read_json(p)
                    if rec and rec.get("podUID"):
                        uids.add(rec["podUID"])
                        keys.add(p.stem)
            for p in self._own_netns():
                k = p.name[len(self.netns_prefix):]
                if k not in keys:
                    uids.add(k)  # an orphan: its key is the pod UID (a UUID) or unknowable
            return sorted(uids)
        return await asyncio.to_thread(scan)

    def _own_netns(self) -> list[Path]:
        """This instance's namespace files (prefix plus a UUID, so no other instance's)."""
        return [p for p in netns.list_dir(self.netns_dir, self.netns_prefix)
                if _UUID_RE.match(p.name[len(self.netns_prefix):])]

    # ------------------------------------------------------------------ cleanup

    def _rule_is_ours(self, line: str) -> bool:
        return f'name: \\"{self.network_name}\\"' in line

    async def cleanup_all(self) -> None:
        """Remove every namespace, veth, the bridge, iptables rules and IPAM state of the instance.

        Each pod is torn down properly first (CNI DEL); whatever is left
        (a plugin failed, the cache was lost) is then removed directly.
        Raises :class:`NetworkError` listing what could not be removed.
        """
        problems: list[str] = []
        for uid in await self.list_pods():
            try:
                await self.teardown(uid)
            except Exception as e:  # noqa: BLE001 - carry on; forced removal follows
                log.warning("teardown of %s during cleanup: %s", uid, e)
        for p in self._own_netns():
            try:
                await netns.delete(p)
            except OSError as e:
                problems.append(str(e))
        try:
            await self._remove_iptables()
        except NetworkError as e:
            problems.append(str(e))
        rc, out, _ = await _run("ip", "-j", "link", "show", "master", self.bridge, check=False)
        if rc == 0:
            for link in json.loads(out or "[]"):
                rc2, _, err = await _run("ip", "link", "del", link["ifname"], check=False)
                if rc2 != 0 and "Cannot find device" not in err:
                    problems.append(f"veth {link['ifname']}: {err.strip()}")
        rc, _, err = await _run("ip", "link", "del", self.bridge, check=False)
        if rc != 0 and "Cannot find device" not in err:
            problems.append(f"bridge {self.bridge}: {err.strip()}")
        for d in (self.ipam_dir, self.results_dir, self.conflist_path.parent):
            await asyncio.to_thread(shutil.rmtree, d, True)
        self._started = False
        if problems:
            raise NetworkError("cleanup of pod network " + self.network_name + " left: "
                               + "; ".join(problems))

    async def _remove_iptables(self) -> None:
        """Drop portmap rules and per-pod chains that name this network; then the shared
        top-level chains if nobody uses them any more."""
        async with self._portmap_lock(exclusive=True):
            _, out, _ = await _run("iptables-save", "-t", "nat")
            chains: set[str] = set()
            for line in out.splitlines():
                if line.startswith("-A ") and self._rule_is_ours(line):
                    args = shlex.split(line)
                    if "-j" in args:
                        target = args[args.index("-j") + 1]
                        if target.startswith("CNI-DN-"):
                            chains.add(target)
                    await _run("iptables", "-w", "-t", "nat", "-D", *args[1:], check=False)
            for chain in sorted(chains):
                await _run("iptables", "-w", "-t", "nat", "-F", chain, check=False)
                await _run("iptables", "-w", "-t", "nat", "-X", chain, check=False)
            await self._remove_shared_portmap_chains()

    async def _remove_shared_portmap_chains(self) -> None:
        _, out, _ = await _run("iptables-save", "-t", "nat")
        lines = out.splitlines()
        if any(line.startswith(":CNI-DN-") for line in lines):
            return
        if any(line.startswith("-A CNI-HOSTPORT-DNAT ") for line in lines):
            return
        if not any(line.startswith(f":{c} ") for line in lines for c in _SHARED_PORTMAP_CHAINS):
            return
        # The jumps portmap installs into the built-in chains, then the chains themselves.
        for line in lines:
            if not line.startswith("-A "):
                continue
            args = shlex.split(line)
            if args[1] in ("PREROUTING", "OUTPUT", "POSTROUTING") and "-j" in args \
                    and args[args.index("-j") + 1] in _SHARED_PORTMAP_CHAINS:
                await _run("iptables", "-w", "-t", "nat", "-D", *args[1:], check=False)
        for chain in _SHARED_PORTMAP_CHAINS:
            await _run("iptables", "-w", "-t", "nat", "-F", chain, check=False)
        for chain in _SHARED_PORTMAP_CHAINS:
            rc, _, err = await _run("iptables", "-w", "-t", "nat", "-X", chain, check=False)
            if rc != 0 and "No chain" not in err and "does not exist" not in err:
                log.debug("portmap chain %s stays: %s", chain, err.strip())
