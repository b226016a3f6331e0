"""The node agent: cloudlet's kubelet for the machine it runs on.

:class:`NodeAgent` runs inside ``cloudlet up`` (unless ``--no-node``) and

* starts the pieces it drives — the image store and
  :class:`~cloudlet.image.service.ImageService` (``<data-dir>/images``), the
  ``runc`` :class:`~cloudlet.runtime.oci.RuncRuntime`
  (``<data-dir>/runtime``) and the CNI
  :class:`~cloudlet.network.cni.PodNetwork` (``<data-dir>/network``), all
  named with this data dir's instance id (:func:`instance_id`);
* registers the Node and keeps its status and Lease fresh
  (:mod:`cloudlet.node.registration`); a pod network that cannot start makes
  the node ``Ready=False`` (``KubeletNotReady``) rather than failing ``up``;
* watches the pods bound to it (informer with ``fieldSelector
  spec.nodeName=<node>``) plus ConfigMaps, Secrets and RuntimeClasses, and
  runs one :class:`~cloudlet.node.pods.PodWorker` per pod uid; at most
  :data:`MAX_PARALLEL_STARTS` workers start pods at once (network, sandbox,
  containers: a burst of process spawns on a small machine only thrashes),
  the others wait their turn in arrival order;
* on start, **recovers** what a previous run left on the host: a pod still
  bound here adopts its sandbox and containers from
  ``<data-dir>/pods/<uid>/state.json`` (checked against the runtime's
  ``list_sandboxes``); sandboxes, networks and pod directories of pods no
  longer bound here are removed;
* takes, when ``services`` is set (before pods start), each pod's
  ``/etc/resolv.conf`` (``services.resolv_conf(pod)``) and service-link
  environment (``services.service_env(pod)``) from it; otherwise pods get the
  host's resolv.conf and no service links;
* is the server's :class:`~cloudlet.api.streaming.PodStreams` provider
  (``kubectl logs``/``exec``/``port-forward``): logs are the CRI files the
  runtime writes under ``<data-dir>/pods/<uid>/logs/<container>/<n>.log``,
  exec goes through the runtime, port-forward connects from the host to the
  pod IP through the pod network (127.0.0.1 for ``hostNetwork`` pods).

Stopping the agent stops its tasks but leaves pods running (a kubelet
restart must not restart containers); :func:`cleanup_node` removes every
host resource of a data dir's instance (tests, ``--no-node`` restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from cloudlet.api import errors
from cloudlet.client.events import EventRecorder
from cloudlet.client.informer import Informer, SharedInformerFactory
from cloudlet.client.interface import Client, Obj, ResourceRef
from cloudlet.node.backoff import Backoff
from cloudlet.node.pods import STATE_FILE, PodWorker
from cloudlet.node.registration import NodeRegistration
from cloudlet.node.volumes import teardown_pod_dir
from cloudlet.runtime.interface import ExecSession, RuntimeHandler, SandboxError

log = logging.getLogger("cloudlet.node")

PODS = ResourceRef("", "v1", "pods")
CONFIGMAPS = ResourceRef("", "v1", "configmaps")
SECRETS = ResourceRef("", "v1", "secrets")
RUNTIME_CLASSES = ResourceRef("node.k8s.io", "v1", "runtimeclasses")
DEFAULT_HANDLER = "runc"
# Pods being started at once (see the module docstring): four per core (much of a start is
# waiting on short-lived processes, so a few per core keep the CPUs busy), at least four.
MAX_PARALLEL_STARTS = max(4, 4 * (os.cpu_count() or 1))


def instance_id(data_dir: Path) -> str:
    """A short, stable id of a data dir: every host resource of it carries ``cloudlet-<id>``."""
    return hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:8]


class NodeAgent:
    """The kubelet of this machine; see the module docstring."""

    def __init__(
        self,
        client: Client,
        *,
        data_dir: Path,
        node_name: str,
        pod_cidr: str = "10.88.0.0/16",
        reserved: dict[str, str] | None = None,
        heartbeat_interval: float = 10.0,
        lease_duration: int = 40,
        runtimes: dict[str, RuntimeHandler] | None = None,
        network: Any = None,
        images: Any = None,
        housekeeping_interval: float = 10.0,
        service_plumbing: bool = True,
    ) -> None:
        self.client = client
        self.data_dir = Path(data_dir).resolve()
        self.node_name = node_name
        self.pod_cidr = pod_cidr
        self.reserved = reserved or {}
        self.heartbeat_interval = heartbeat_interval
        self.lease_duration = lease_duration
        self.instance = instance_id(self.data_dir)
        self.pods_dir = self.data_dir / "pods"
        self.runtimes: dict[str, RuntimeHandler] = dict(runtimes or {})
        self.network: Any = network
        self.images: Any = images
        self.image_store: Any = None
        self.host_ip = "127.0.0.1"
        self.allocatable: dict[str, str] = {}
        self.recorder = EventRecorder(client, "kubelet", host=node_name)
        self.crash_backoff = Backoff()
        self.start_slots = asyncio.Semaphore(MAX_PARALLEL_STARTS)
        self.factory = SharedInformerFactory(client)
        self.pods: Informer = self.factory.informer(PODS, field_selector=f"spec.nodeName={node_name}")
        self.configmaps: Informer = self.factory.informer(CONFIGMAPS)
        self.secrets: Informer = self.factory.informer(SECRETS)
        self.runtime_classes: Informer = self.factory.informer(RUNTIME_CLASSES)
        self.workers: dict[str, PodWorker] = {}  # uid -> worker
        self.by_key: dict[str, PodWorker] = {}  # namespace/name -> worker
        self.registration: NodeRegistration | None = None
        # optional: the node's service plumbing (cloudlet.node.services.NodeServices or alike):
        # resolv_conf(pod) -> str for /etc/resolv.conf, service_env(pod) -> dict of service links
        self.services: Any = None
        self.service_plumbing = service_plumbing  # run NodeServices when the pod network is up
        self.housekeeping_interval = housekeeping_interval  # seconds between container stats samples
        self.stats: Any = None  # cloudlet.node.stats.StatsSampler once started
        self.network_error = ""
        self._tasks: list[asyncio.Task[Any]] = []
        self._recovered: dict[str, Obj] = {}  # uid -> state.json of pods to adopt
        self._ready = asyncio.Event()

    # --- start / stop ------------------------------------------------------------------

    async def start(self) -> None:
        """Bring up images, runtime and network, register the node, start watching."""
        await asyncio.to_thread(self.pods_dir.mkdir, parents=True, exist_ok=True)
        if self.images is None:
            from cloudlet.image.service import ImageService
            from cloudlet.image.store import ImageStore

            self.image_store = ImageStore(self.data_dir / "images")
            self.images = ImageService(self.image_store)
            try:
                await self.image_store.ensure_builtin()
            except Exception:
                log.exception("could not build the built-in busybox image")
        else:
            self.image_store = getattr(self.images, "store", None)
        if DEFAULT_HANDLER not in self.runtimes:
            from cloudlet.runtime.oci import RuncRuntime

            self.runtimes[DEFAULT_HANDLER] = RuncRuntime(self.data_dir / "runtime", self.instance)
        for rt in self.runtimes.values():
            await rt.start()
        if self.network is None:
            from cloudlet.network.cni import PodNetwork

            self.network = PodNetwork(self.data_dir / "network", self.instance, pod_cidr=self.pod_cidr)
        try:
            await self.network.start()
            self.host_ip = self.network.host_ip or "127.0.0.1"
        except Exception as e:
            log.exception("pod network failed to start")
            self.network_error = str(e)
            self.network = None
        version = await self.runtimes[DEFAULT_HANDLER].version()
        self.registration = NodeRegistration(
            self.client, self.node_name, data_dir=self.data_dir, internal_ip=self.host_ip,
            runtime_version=version, reserved=self.reserved, heartbeat_interval=self.heartbeat_interval,
            lease_duration=self.lease_duration, pod_cidr=self.pod_cidr if self.network is not None else "")
        if self.network_error:
            self.registration.ready = False
            self.registration.not_ready_message = (
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                f"message:Network plugin returns error: {self.network_error}")
        self.allocatable = self.registration.allocatable
        await self.registration.register()
        await self.registration.renew_lease()
        self._tasks.append(asyncio.create_task(self.registration.run(), name="node-heartbeat"))
        await self._start_services()
        self.pods.add_handler(on_add=self._pod_seen, on_update=lambda _o, n: self._pod_seen(n),
                              on_delete=self._pod_gone)
        self.configmaps.add_handler(on_update=lambda _o, n: self._source_changed("configmap", n),
                                    on_add=lambda n: self._source_changed("configmap", n))
        self.secrets.add_handler(on_update=lambda _o, n: self._source_changed("secret", n),
                                 on_add=lambda n: self._source_changed("secret", n))
        self.factory.start()
        self._tasks.append(asyncio.create_task(self._after_sync(), name="node-recover"))

    async def _start_services(self) -> None:
        """The node's service proxy and cluster DNS (on the pod bridge address), and the
        stats sampler behind metrics.k8s.io and the cAdvisor metrics."""
        from cloudlet.node.stats import StatsSampler

        if self.services is None and self.network is not None and self.service_plumbing:
            from cloudlet.node.services import NodeServices

            services = NodeServices(self.client, instance=self.instance, bridge=getattr(self.network, "bridge", None),
                                    dns_address=self.host_ip)
            try:
                await services.start()
                self.services = services
            except Exception:
                log.exception("service proxy / cluster DNS failed to start; pods use the host's resolvers")
                with contextlib.suppress(Exception):
                    await services.stop()
        self.stats = StatsSampler(self, interval=self.housekeeping_interval)
        self._tasks.append(asyncio.create_task(self.stats.run(), name="node-stats"))

    async def _after_sync(self) -> None:
        await asyncio.gather(self.pods.wait_synced(), self.configmaps.wait_synced(), self.secrets.wait_synced(),
                             self.runtime_classes.wait_synced())
        try:
            await self.recover()
        except Exception:
            log.exception("recovery failed")
        self._ready.set()
        for pod in self.pods.list():
            self._pod_seen(pod)

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self) -> None:
        """Stop watching and working; pods stay running on the host."""
        for w in list(self.workers.values()):
            if w.task is not None:
                w.task.cancel()
            for p in list(w.probes.values()):
                p.stop()
            for t in w.waiters.values():
                t.cancel()
        for w in list(self.workers.values()):
            if w.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w.task
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self.recorder.flush()
        await self.factory.shutdown()
        if self.images is not None and hasattr(self.images, "close"):
            with contextlib.suppress(Exception):
                await self.images.close()
        if self.services is not None and hasattr(self.services, "stop"):
            with contextlib.suppress(Exception):
                await self.services.stop()
            self.services = None

    # --- recovery ------------------------------------------------------------------------

    async def recover(self) -> None:
        """Adopt what is still ours, remove what is not (see the module docstring)."""
        bound = {p["metadata"]["uid"] for p in self.pods.list()}

        def read_states() -> dict[str, Obj]:
            out: dict[str, Obj] = {}
            if not self.pods_dir.is_dir():
                return out
            for d in self.pods_dir.iterdir():
                try:
                    out[d.name] = json.loads((d / STATE_FILE).read_text())
                except (OSError, ValueError):
                    out[d.name] = {}
            return out

        states = await asyncio.to_thread(read_states)
        live_sandboxes: dict[str, list[Any]] = {}
        for rt in self.runtimes.values():
            try:
                for h in await rt.list_sandboxes():
                    live_sandboxes.setdefault(str(h.data.get("pod_uid") or ""), []).append((rt, h))
            except SandboxError:
                log.exception("list_sandboxes failed")
        for uid, state in states.items():
            if uid in bound and state.get("sandbox"):
                known = {h.id for _rt, h in live_sandboxes.get(uid, [])}
                if state["sandbox"].get("id") in known:
                    self._recovered[uid] = state
                    continue
            if uid in bound:
                # bound but nothing usable survived: start from scratch, keep nothing stale
                await self._remove_host_state(uid, live_sandboxes.get(uid, []))
                continue
            log.info("removing pod no longer bound here", extra={"uid": uid})
            await self._remove_host_state(uid, live_sandboxes.get(uid, []))
        for uid, pairs in live_sandboxes.items():
            if uid in states:
                continue
            for rt, h in pairs:  # sandboxes without any state of ours: orphans
                await _remove_sandbox(rt, h)
        if self.network is not None:
            with contextlib.suppress(Exception):
                for uid in await self.network.list_pods():
                    if uid not in bound or uid not in self._recovered:
                        await self.network.teardown(uid)

    async def _remove_host_state(self, uid: str, pairs: list[Any]) -> None:
        for rt, h in pairs:
            await _remove_sandbox(rt, h)
        state: Obj = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(await asyncio.to_thread((self.pods_dir / uid / STATE_FILE).read_text))
        if self.images is not None:
            for group in ("inits", "apps"):
                for raw in (state.get(group) or {}).values():
                    if raw.get("snapshot"):
                        with contextlib.suppress(Exception):
                            await self.images.remove_snapshot(raw["snapshot"])
        if self.network is not None:
            with contextlib.suppress(Exception):
                await self.network.teardown(uid)
        await teardown_pod_dir(self.pods_dir / uid)

    # --- pods ------------------------------------------------------------------------------

    def _pod_seen(self, pod: Obj) -> None:
        if not self._ready.is_set():
            return
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        if (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return
        w = self.workers.get(uid)
        if w is not None:
            w.update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        state = self._recovered.pop(uid, None)
        if phase in ("Succeeded", "Failed") and state is None and not meta.get("deletionTimestamp"):
            return  # finished before this agent started: nothing left to run
        w = PodWorker(self, pod)
        self.workers[uid] = w
        self.by_key[w.key] = w
        if state is not None:
            async def adopt_then_run() -> None:
                try:
                    await w.adopt(state)
                except Exception:
                    log.exception("adopting pod failed", extra={"pod": w.key})
                await w.run()

            w.task = asyncio.get_running_loop().create_task(adopt_then_run(), name=f"pod-{w.key}")
        else:
            w.start()

    def _pod_gone(self, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        w = self.workers.get(uid)
        if w is not None:
            w.deleted()

    def worker_done(self, w: PodWorker) -> None:
        if self.workers.get(w.uid) is w:
            del self.workers[w.uid]
        if self.by_key.get(w.key) is w:
            del self.by_key[w.key]
        # the pod may have come back under the same uid (an update raced the delete)
        pod = self.pods.get(w.key)
        if pod is not None and pod["metadata"].get("uid") != w.uid:
            self._pod_seen(pod)

    def _source_changed(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        for w in list(self.workers.values()):
            if w.namespace != ns or w.volumes is None:
                continue
            if (kind, name) in w.volumes.referenced():
                asyncio.get_running_loop().create_task(_refresh(w))
            elif any(r.waiting_reason == "CreateContainerConfigError" for r in w.apps.values()):
                w.wake.set()

    # --- lookups the workers use -----------------------------------------------------------

    def configmap(self, namespace: str, name: str) -> Obj | None:
        return self.configmaps.get(f"{namespace}/{name}")

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get(f"{namespace}/{name}")

    def runtime_for(self, pod: Obj) -> RuntimeHandler:
        rc_name = (pod.get("spec") or {}).get("runtimeClassName")
        handler = DEFAULT_HANDLER
        if rc_name:
            rc = self.runtime_classes.get(rc_name)
            if rc is None:
                raise SandboxError(f'RuntimeClass "{rc_name}" not found', "RuntimeClassNotFound")
            handler = rc.get("handler") or ""
        rt = self.runtimes.get(handler)
        if rt is None:
            raise SandboxError(f'RuntimeHandler "{handler}" not supported')
        return rt

    def image_name(self, image: str) -> str:
        from cloudlet.image import reference as refs

        try:
            return refs.normalize(image)
        except Exception:
            return image

    def image_present(self, image: str) -> bool:
        store = self.image_store
        if store is None:
            return False
        try:
            return store.resolve(self.image_name(image)) is not None
        except Exception:
            return False

    def image_size(self, pulled: Any) -> int:
        store = self.image_store
        try:
            _digest, manifest = store.manifest(pulled.digest)
            return int(sum(d.size for d in [manifest.config, *manifest.layers]))
        except Exception:
            return 0

    # --- PodStreams (contract 4) -----------------------------------------------------------

    def _worker(self, namespace: str, pod: str) -> PodWorker:
        w = self.by_key.get(f"{namespace}/{pod}")
        if w is None:
            raise errors.bad_request(f'pod "{pod}" is not running on node "{self.node_name}"')
        return w

    async def log_file(self, namespace: str, pod: str, container: str | None, previous: bool) -> Path:
        w = self._worker(namespace, pod)
        if container is None:
            names = list(w.apps)
            if len(names) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {pod}, choose one of: [{' '.join(names)}]")
            container = names[0]
        rec = w.record(container)
        if rec is None:
            raise errors.bad_request(f"container {container} is not valid for pod {pod}")
        if previous:
            if rec.prev_log_path and await asyncio.to_thread(os.path.exists, rec.prev_log_path):
                return Path(rec.prev_log_path)
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{pod}" not found')
        if not rec.log_path or (rec.handle is None and not await asyncio.to_thread(os.path.exists, rec.log_path)):
            reason = rec.waiting_reason or "ContainerCreating"
            raise errors.bad_request(f'container "{container}" in pod "{pod}" is waiting to start: {reason}')
        return Path(rec.log_path)

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        w = self.by_key.get(f"{namespace}/{pod}")
        if w is None:
            return False
        rec = w.record(container)
        return rec is not None and rec.running

    async def exec(self, namespace: str, pod: str, container: str | None, argv: list[str], tty: bool,
                   stdin: bool) -> ExecSession:
        w = self._worker(namespace, pod)
        name = container or next(iter(w.apps), "")
        rec = w.record(name)
        if rec is None or not rec.running or rec.handle is None or w.runtime is None:
            raise errors.bad_request(f'container not found ("{name}")')
        return await w.runtime.exec(rec.handle, argv, tty=tty, stdin=stdin)

    async def port_forward(self, namespace: str, pod: str, port: int) -> tuple[asyncio.StreamReader,
                                                                               asyncio.StreamWriter]:
        w = self._worker(namespace, pod)
        if w.host_network or not w.pod_ips:
            host = "127.0.0.1"
        else:
            host = w.pod_ips[0]
        return await asyncio.open_connection(host, port)


async def _refresh(w: PodWorker) -> None:
    try:
        if w.volumes is not None:
            await w.volumes.refresh()
    except Exception:
        log.exception("volume refresh failed", extra={"pod": w.key})


async def _remove_sandbox(rt: RuntimeHandler, h: Any) -> None:
    for c in await _safe(rt.list_containers(h)) or []:
        await _safe(rt.stop_container(c, 0))
        await _safe(rt.remove_container(c))
    await _safe(rt.stop_sandbox(h))
    await _safe(rt.remove_sandbox(h))


async def _safe(coro: Any) -> Any:
    try:
        return await coro
    except Exception:
        log.exception("cleanup step failed")
        return None


async def cleanup_node(data_dir: Path) -> None:
    """Remove every host resource the node agent of ``data_dir`` created (containers,
    sandboxes, cgroups, mounts, pod network, snapshots, pod dirs)."""
    data_dir = await asyncio.to_thread(Path(data_dir).resolve)
    inst = instance_id(data_dir)
    from cloudlet.runtime.oci import RuncRuntime

    rt = RuncRuntime(data_dir / "runtime", inst)
    with contextlib.suppress(Exception):
        await rt.cleanup_all()
    try:
        from cloudlet.network.cni import PodNetwork

        net = PodNetwork(data_dir / "network", inst)
        await net.cleanup_all()
    except Exception:
        log.exception("pod network cleanup failed")
    with contextlib.suppress(Exception):  # the service rules of a run that was killed
        from cloudlet.network.proxy import remove_table

        await remove_table(inst)
    pods = data_dir / "pods"
    if pods.is_dir():
        for d in list(pods.iterdir()):
            await teardown_pod_dir(d)
    with contextlib.suppress(Exception):
        from cloudlet.image.store import ImageStore

        store = ImageStore(data_dir / "images")
        for snap in store.list_snapshots():
            await store.remove_snapshot(snap.key)
    await asyncio.to_thread(shutil.rmtree, pods, True)
