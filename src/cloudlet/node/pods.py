"""One pod worker per pod: the kubelet's ``syncPod`` loop for a pod bound here.

:class:`PodWorker` owns everything of one pod (by uid) on this machine and
drives it towards the pod spec, one step at a time, on its own asyncio task:

1. volumes (:mod:`cloudlet.node.volumes`; ``FailedMount`` events while a
   source is missing), the pod network (``PodNetwork.setup`` unless
   ``hostNetwork``), the sandbox (the :class:`RuntimeHandler` named by the
   pod's RuntimeClass ``handler``, ``runc`` by default);
2. init containers one after another, each to a successful exit;
3. the app containers: image (``Pulling``/``Pulled``/``Failed``/``BackOff``
   events, waiting reasons ``ErrImagePull``/``ImagePullBackOff``), argv/env
   (:mod:`cloudlet.node.envvars`), rootfs snapshot, create + start
   (``Created``/``Started``), ``postStart`` hook, probes
   (:mod:`cloudlet.node.probes`);
4. exited containers restart per ``restartPolicy`` with the crash-loop
   back-off (:mod:`cloudlet.node.backoff`: ``CrashLoopBackOff``, ``BackOff``
   events); a failed liveness/startup probe kills the container first
   (``Killing``); with ``Never``/``OnFailure`` the pod ends ``Succeeded`` or
   ``Failed`` (then its sandbox and network go; logs stay until deletion);
5. after each step the status (:mod:`cloudlet.node.podstatus`) is patched
   through ``pods/status`` — only when it changed.

Wake-ups come from the pod informer (:meth:`PodWorker.update`), container
exits (one waiter task per running container), probe results and back-off
timers. Deletion (``deletionTimestamp``, or the object vanished) runs the
graceful termination — ``preStop`` hooks, SIGTERM, the grace period, SIGKILL
— removes every host resource of the pod (containers, snapshots, sandbox,
network, volumes, ``<data-dir>/pods/<uid>``) and then deletes the pod object
with grace 0 (uid precondition), as the kubelet does.

The worker's runtime handles are persisted in ``<data-dir>/pods/<uid>/state.json``
so that after a restart of ``cloudlet up`` the agent adopts the running
sandbox and containers (:meth:`PodWorker.adopt`) instead of starting them again.

Start-up trace: the first time all app containers of a pod run, the worker logs
``Observed pod startup duration`` (the kubelet's message) at info level with
``worker_start`` (wall clock) and ``steps_ms`` — the time spent in each step of
the way (volumes, network, sandbox, image, rootfs, create, start, ...) since
the worker was created; ``bench/podstart.py --trace`` aggregates these.
Volumes and the pod network are set up concurrently (they are independent),
and so are the CNI ADD and the sandbox once the pod's network namespace exists
(unless the pod sets ``net.*`` sysctls, which may name the pod's interface):
``/etc/hosts`` shows the pod IP, so the etc files are written after ADD, before
any container is created (handlers read them only at container creation). When
ADD fails, the sandbox started meanwhile is removed again, as if it had never
been tried.
Until its app containers first run, a worker's sync holds one of the agent's
``start_slots`` (a cap on pods starting at once; released while an image is
pulled or a ``postStart`` hook runs, which are waits rather than work).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudlet import metrics
from cloudlet.api.errors import APIError
from cloudlet.client.events import NORMAL, WARNING
from cloudlet.client.interface import ResourceRef
from cloudlet.node import hooks
from cloudlet.node.backoff import format_duration
from cloudlet.node.envvars import (
    ConfigError,
    container_resources,
    container_security,
    make_args,
    pod_resources,
    resolve_env,
)
from cloudlet.node.podstatus import ContainerRecord, Terminated, pod_status
from cloudlet.node.probes import ProbeTarget, ProbeWorker
from cloudlet.node.volumes import PodVolumes, VolumeError, teardown_pod_dir, write_etc_files
from cloudlet.runtime.interface import (
    ContainerSpec,
    ExecResult,
    Handle,
    NotFound,
    RuntimeHandler,
    SandboxError,
    SandboxSpec,
)

if TYPE_CHECKING:
    from cloudlet.node.agent import NodeAgent

log = logging.getLogger("cloudlet.node.pods")

Obj = dict[str, Any]
PODS = ResourceRef("", "v1", "pods")
MIN_GRACE = 2.0  # the kubelet's minimumGracePeriodInSeconds
STATE_FILE = "state.json"


def pod_full_name(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


class PodWorker:
    """Drives one pod; see the module docstring."""

    def __init__(self, agent: NodeAgent, pod: Obj) -> None:
        meta = pod["metadata"]
        self.agent = agent
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta.get("namespace", "default")
        self.name: str = meta["name"]
        self.dir: Path = agent.pods_dir / self.uid
        self.gone = False
        self.wake = asyncio.Event()
        self.runtime: RuntimeHandler | None = None
        self.sandbox: Handle | None = None
        self.sandbox_ready = False
        self.pod_ips: list[str] = []
        self.netns: str | None = None
        self.network_up = False
        self.volumes: PodVolumes | None = None
        spec = pod.get("spec") or {}
        self.inits = {c["name"]: ContainerRecord(c["name"], init=True) for c in spec.get("initContainers") or ()}
        self.apps = {c["name"]: ContainerRecord(c["name"]) for c in spec.get("containers") or ()}
        self.probes: dict[tuple[str, str], ProbeWorker] = {}
        self.kill_requests: dict[str, str] = {}  # container -> why (liveness, startup, ...)
        self.terminal = ""  # "Succeeded"/"Failed" once decided
        self.reason = ""  # pod-level status.reason/message (DeadlineExceeded)
        self.message = ""
        self.start_wall = time.time()
        self.last_posted: Obj | None = None
        self.task: asyncio.Task[None] | None = None
        self.waiters: dict[str, asyncio.Task[None]] = {}
        self._events: set[tuple[str, str, str]] = set()
        self._trace: dict[str, float] | None = {}  # step -> ms, until the pod first runs
        self._trace_t0 = self._trace_last = time.monotonic()
        self.starting = True  # until the app containers first run (holds a start slot per sync)
        self._slot_held = False

    # --- wiring ----------------------------------------------------------------------

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def host_network(self) -> bool:
        return bool((self.pod.get("spec") or {}).get("hostNetwork"))

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake.set()

    def deleted(self) -> None:
        self.gone = True
        self.wake.set()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"pod-{self.key}")

    def event(self, type_: str, reason: str, message: str) -> None:
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": dict(self.pod.get("metadata") or {})}
        self.agent.recorder.emit(obj, type_, reason, message)

    def event_once(self, type_: str, reason: str, message: str) -> None:
        """An event recorded once per distinct (type, reason, message) per pod worker."""
        k = (type_, reason, message)
        if k not in self._events:
            self._events.add(k)
            self.event(type_, reason, message)

    def mark(self, step: str) -> None:
        """Charge the time since the previous mark to ``step`` (start-up trace)."""
        if self._trace is None:
            return
        now = time.monotonic()
        self._trace[step] = round(self._trace.get(step, 0.0) + (now - self._trace_last) * 1000, 1)
        self._trace_last = now

    def _trace_done(self) -> None:
        """All app containers run for the first time: log the start-up trace once."""
        if self._trace is None or not self.apps or not all(r.running for r in self.apps.values()):
            return
        self.starting = False
        steps, self._trace = self._trace, None
        total = time.monotonic() - self._trace_t0
        metrics.POD_START.observe(total)  # kubelet_pod_start_duration_seconds
        log.info("Observed pod startup duration",
                 extra={"pod": self.key, "uid": self.uid, "worker_start": round(self.start_wall, 4),
                        "total_ms": round(total * 1000, 1), "steps_ms": steps})

    @contextlib.asynccontextmanager
    async def _start_slot(self) -> AsyncIterator[None]:
        """Hold one of the agent's start slots while the pod is being started."""
        sem: asyncio.Semaphore | None = getattr(self.agent, "start_slots", None)
        if sem is None or not self.starting or self._slot_held:
            yield
            return
        await sem.acquire()
        self._slot_held = True
        try:
            yield
        finally:
            if self._slot_held:
                self._slot_held = False
                sem.release()

    @contextlib.asynccontextmanager
    async def _slot_released(self) -> AsyncIterator[None]:
        """Give the start slot back while waiting (image pull, postStart hook)."""
        sem: asyncio.Semaphore | None = getattr(self.agent, "start_slots", None)
        if sem is None or not self._slot_held:
            yield
            return
        self._slot_held = False
        sem.release()
        try:
            yield
        finally:
            await sem.acquire()
            self._slot_held = True

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        delay_on_error = 0.5
        try:
            while True:
                self.wake.clear()
                try:
                    if self.gone or (self.pod.get("metadata") or {}).get("deletionTimestamp"):
                        await self.terminate()
                        return
                    wait = await self.sync()
                    await self.post_status()
                    delay_on_error = 0.5
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.exception("pod sync failed", extra={"pod": self.key, "error": str(e)})
                    wait = delay_on_error
                    delay_on_error = min(delay_on_error * 2, 10.0)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self.wake.wait()
        finally:
            self.agent.worker_done(self)

    async def sync(self) -> float | None:
        """One pass of the kubelet's syncPod; returns seconds until a timed wake-up."""
        if self.terminal:
            return None
        async with self._start_slot():
            return await self._sync()

    async def _sync(self) -> float | None:
        pod = self.pod
        # volumes
        if self.volumes is None:
            self.volumes = PodVolumes(self.dir, pod, instance=self.agent.instance,
                                      configmaps=self.agent.configmap, secrets=self.agent.secret,
                                      allocatable=self.agent.allocatable)
        self.volumes.pod = pod
        self.volumes.host_ip = self.agent.host_ip
        self.volumes.pod_ip = self.pod_ips[0] if self.pod_ips else ""
        # the pod network does not depend on the volumes: set it up meanwhile
        network: asyncio.Task[bool] | None = None
        netns_ready = asyncio.Event()
        if self.sandbox is None and not self.network_up and not self.host_network \
                and self.agent.network is not None:
            network = asyncio.get_running_loop().create_task(self._ensure_network(netns_ready))
        try:
            await self.volumes.setup()
        except VolumeError as e:
            if network is not None:
                await network  # idempotent and already under way: let it finish
            self.event(WARNING, "FailedMount", str(e))
            return 2.0
        except BaseException:
            if network is not None:
                with contextlib.suppress(Exception):
                    await network
            raise
        self.mark("volumes")
        # runtime + network + sandbox
        if self.sandbox is None:
            try:
                self.runtime = self.agent.runtime_for(pod)
            except SandboxError as e:
                if network is not None:
                    await network
                self.event(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
                return 5.0
            if network is not None and self._sandbox_may_overlap():
                ready = asyncio.get_running_loop().create_task(netns_ready.wait())
                try:
                    await asyncio.wait({network, ready}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    ready.cancel()
                if netns_ready.is_set() and not network.done():
                    return await self._network_and_sandbox(network)
            if not await (network if network is not None else self._ensure_network()):
                return 2.0
            self.mark("network")
            try:
                await self._run_sandbox()
            except SandboxError as e:
                self.event(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
                return 2.0
            self.mark("sandbox")
            self.volumes.pod_ip = self.pod_ips[0] if self.pod_ips else ""
            await self.volumes.refresh()  # downward API files that show the pod IP
            self.mark("volumes_refresh")
        return await self._sync_containers()

    async def _sync_containers(self) -> float | None:
        spec = self.pod.get("spec") or {}
        wait: list[float] = []
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            left = self.start_wall + float(deadline) - time.time()
            if left <= 0:
                self.reason = "DeadlineExceeded"
                self.message = "Pod was active on the node longer than the specified deadline"
                self.event(NORMAL, "DeadlineExceeded", self.message)
                for rec in list(self.inits.values()) + list(self.apps.values()):
                    if rec.running:
                        self.event(NORMAL, "Killing", f"Stopping container {rec.name}")
                        await self._stop_container(rec, self._container_spec(rec.name), self._grace({}, None))
                await self._finish("Failed")
                return None
            wait.append(left)
        # init containers, in order
        policy = spec.get("restartPolicy") or "Always"
        for c in spec.get("initContainers") or ():
            rec = self.inits[c["name"]]
            term = rec.terminated()
            if term is not None and term.exit_code == 0 and not rec.waiting_reason:
                continue
            if rec.running:
                return min(wait) if wait else None
            if rec.exited and term is not None:
                if policy == "Never":
                    await self._finish("Failed")
                    return min(wait) if wait else None
                w = await self._restart(c, rec)
                return w
            await self._start_container(c, rec)
            return min([*wait, 1.0]) if not rec.running else (min(wait) if wait else None)
        # app containers
        for c in spec.get("containers") or ():
            rec = self.apps[c["name"]]
            why = self.kill_requests.pop(c["name"], None)
            if rec.running and (why or (rec.image and c.get("image") != rec.image)):
                grace = self._grace(c, why)
                if not why:
                    self.event(NORMAL, "Killing", f"Container {c['name']} definition changed, will be restarted")
                await self._stop_container(rec, c, grace, run_pre_stop=why is None)
            if rec.handle is None:
                w = await self._start_container(c, rec)
                if w:
                    wait.append(w)
                self._trace_done()
                continue
            if rec.exited:
                term = rec.terminated()
                code = term.exit_code if term else 0
                if policy == "Always" or (policy == "OnFailure" and code != 0):
                    w = await self._restart(c, rec)
                    if w:
                        wait.append(w)
        # terminal?
        if policy != "Always" and self.apps and all(
                r.exited and not r.waiting_reason for r in self.apps.values()):
            codes = [(r.terminated() or Terminated(0, "", "", None, None, "")).exit_code for r in self.apps.values()]
            if policy == "Never" or all(code == 0 for code in codes):
                await self._finish("Succeeded" if all(code == 0 for code in codes) else "Failed")
                return None
        return min(wait) if wait else None

    # --- network and sandbox ---------------------------------------------------------------

    def _sandbox_may_overlap(self) -> bool:
        """Whether the sandbox may start while CNI ADD still runs (see the module docstring)."""
        sysctls = ((self.pod.get("spec") or {}).get("securityContext") or {}).get("sysctls") or ()
        return not any(str(s.get("name", "")).startswith("net.") for s in sysctls)

    async def _network_and_sandbox(self, network: asyncio.Task[bool]) -> float | None:
        """The sandbox joins the pod's (existing) namespace while ADD finishes; then the
        etc files with the pod IP; then on to the containers."""
        assert self.agent.network is not None and self.volumes is not None
        netns_path = self.agent.network.netns_path(self.uid)
        sandbox = asyncio.get_running_loop().create_task(self._run_sandbox(netns_path, save=False))
        try:
            ok = await network
        except BaseException:
            with contextlib.suppress(BaseException):
                await sandbox
            raise
        sandbox_error: SandboxError | None = None
        try:
            await sandbox
        except SandboxError as e:
            sandbox_error = e
        if not ok:  # ADD failed (its event is out): undo the sandbox, try both again later
            await self._remove_sandbox()
            return 2.0
        self.mark("network_and_sandbox")
        if sandbox_error is not None:
            self.event(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {sandbox_error}")
            return 2.0
        await self._write_etc_files()
        await self.save_state()
        self.mark("etc_files")
        self.volumes.pod_ip = self.pod_ips[0] if self.pod_ips else ""
        await self.volumes.refresh()  # downward API files that show the pod IP
        self.mark("volumes_refresh")
        return await self._sync_containers()

    async def _remove_sandbox(self) -> None:
        if self.runtime is None or self.sandbox is None:
            return
        with contextlib.suppress(SandboxError):
            await self.runtime.stop_sandbox(self.sandbox)
        with contextlib.suppress(SandboxError):
            await self.runtime.remove_sandbox(self.sandbox)
        self.sandbox = None
        self.sandbox_ready = False

    async def _ensure_network(self, netns_ready: asyncio.Event | None = None) -> bool:
        if self.host_network:
            self.pod_ips = [self.agent.host_ip]
            self.netns = None
            return True
        if self.network_up:
            return True
        net = self.agent.network
        if net is None:
            self.event(WARNING, "NetworkNotReady", "network is not ready: container runtime network not ready")
            return False
        ports = []
        for c in (self.pod.get("spec") or {}).get("containers") or ():
            for p in c.get("ports") or ():
                if p.get("hostPort"):
                    ports.append({"hostPort": p["hostPort"], "containerPort": p.get("containerPort"),
                                  "protocol": (p.get("protocol") or "TCP").lower(),
                                  "hostIP": p.get("hostIP") or ""})
        try:
            info = await net.setup(self.uid, self.namespace, self.name, ports,
                                   netns_ready=netns_ready.set if netns_ready is not None else None)
        except Exception as e:
            self.event(WARNING, "FailedCreatePodSandBox",
                       f"Failed to create pod sandbox: failed to set up pod network: {e}")
            return False
        self.network_up = True
        self.netns = info.netns_path
        self.pod_ips = list(info.ips) or [info.ip]
        return True

    def hostname(self) -> str:
        spec = self.pod.get("spec") or {}
        if self.host_network:
            return self.agent.node_name
        return (spec.get("hostname") or self.name)[:63].rstrip("-.")

    async def _write_etc_files(self) -> tuple[Path, Path]:
        """/etc/hosts (with the pod IP), resolv.conf and hostname of the pod; their paths."""
        services = self.agent.services
        resolv_text = services.resolv_conf(self.pod) if services is not None else None
        hosts, resolv, _hn = await asyncio.to_thread(
            write_etc_files, self.dir, self.pod, self.pod_ips[0] if self.pod_ips else "", self.hostname(),
            self.host_network, resolv_text)
        return hosts, resolv

    async def _run_sandbox(self, netns_path: str | None = None, *, save: bool = True) -> None:
        """Start the sandbox; with ``netns_path`` (the overlapped start) before the pod network
        is complete: the etc files are then written by the caller, and the state saved."""
        assert self.runtime is not None
        pod = self.pod
        spec = pod.get("spec") or {}
        meta = pod.get("metadata") or {}
        if netns_path is None:
            hosts, resolv = await self._write_etc_files()
            netns_path = self.netns
        else:
            hosts, resolv = self.dir / "etc-hosts", self.dir / "resolv.conf"  # write_etc_files' names
        logs = self.dir / "logs"
        await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
        sysctls = {s.get("name", ""): str(s.get("value", ""))
                   for s in (spec.get("securityContext") or {}).get("sysctls") or ()}
        sb = SandboxSpec(
            uid=self.uid, namespace=self.namespace, name=self.name, hostname=self.hostname(),
            netns_path=netns_path, host_ipc=bool(spec.get("hostIPC")), host_pid=bool(spec.get("hostPID")),
            share_process_namespace=bool(spec.get("shareProcessNamespace")),
            cgroup_parent=f"cloudlet-{self.agent.instance}/pod{self.uid}",
            resources=pod_resources(pod), sysctls=sysctls,
            labels=dict(meta.get("labels") or {}), annotations=dict(meta.get("annotations") or {}),
            log_dir=logs, etc_hosts=str(hosts), resolv_conf=str(resolv),
        )
        self.sandbox = await self.runtime.run_sandbox(sb)
        self.sandbox_ready = True
        if save:
            await self.save_state()

    # --- containers -----------------------------------------------------------------------

    def _container_spec(self, name: str) -> Obj | None:
        spec = self.pod.get("spec") or {}
        for c in list(spec.get("initContainers") or ()) + list(spec.get("containers") or ()):
            if c.get("name") == name:
                return c
        return None

    def _grace(self, c: Obj, why: str | None) -> float:
        spec = self.pod.get("spec") or {}
        grace = spec.get("terminationGracePeriodSeconds")
        if why in ("liveness", "startup"):
            probe = c.get(f"{why}Probe") or {}
            if probe.get("terminationGracePeriodSeconds") is not None:
                grace = probe["terminationGracePeriodSeconds"]
        return float(30 if grace is None else grace)

    async def _ensure_image(self, c: Obj, rec: ContainerRecord) -> Any:
        from cloudlet.image.service import ImagePullError, default_pull_policy

        image = c.get("image", "")
        policy = c.get("imagePullPolicy") or default_pull_policy(image)
        images = self.agent.images
        local = await asyncio.to_thread(self.agent.image_present, image)
        will_pull = policy == "Always" or (policy == "IfNotPresent" and not local)
        secrets = []
        for ref in (self.pod.get("spec") or {}).get("imagePullSecrets") or ():
            s = self.agent.secret(self.namespace, ref.get("name", ""))
            if s is not None:
                secrets.append(s)
        t0 = time.monotonic()
        if will_pull and not images.in_backoff(image, secrets):
            self.event(NORMAL, "Pulling", f'Pulling image "{image}"')
        try:
            if will_pull:
                async with self._slot_released():
                    pulled = await images.ensure(image, policy, secrets)
            else:
                pulled = await images.ensure(image, policy, secrets)
        except ImagePullError as e:
            rec.waiting_reason = e.reason
            rec.waiting_message = e.message
            if e.reason == "ImagePullBackOff":
                self.event(NORMAL, "BackOff", f'Back-off pulling image "{image}"')
                self.event(WARNING, "Failed", f"Error: {e.reason}")
            else:
                self.event(WARNING, "Failed", e.message)
                self.event(WARNING, "Failed", f"Error: {e.reason}")
            return None
        took = time.monotonic() - t0
        if will_pull:
            size = await asyncio.to_thread(self.agent.image_size, pulled)
            self.event(NORMAL, "Pulled", f'Successfully pulled image "{image}" in {_go_ms(took)} '
                                         f"({_go_ms(took)} including waiting). Image size: {size} bytes.")
        else:
            self.event(NORMAL, "Pulled", f'Container image "{image}" already present on machine')
        return pulled

    async def _start_container(self, c: Obj, rec: ContainerRecord) -> float | None:
        """Create and start container ``c``; on failure leave a waiting reason and
        return when to try again."""
        assert self.runtime is not None and self.sandbox is not None
        name = c["name"]
        if rec.waiting_reason not in ("ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError",
                                      "CreateContainerError", "RunContainerError"):
            rec.waiting_reason = "ContainerCreating" if not rec.init else "PodInitializing"
            rec.waiting_message = ""
        self.mark("containers_wait")
        pulled = await self._ensure_image(c, rec)
        self.mark("image")
        if pulled is None:
            return 2.0
        rec.image = c.get("image", "")
        from cloudlet.image import reference as refs

        try:
            rec.image_id = f"{refs.parse(pulled.ref).repository}@{pulled.digest}"
        except Exception:
            rec.image_id = pulled.image_id
        cfg = pulled.config
        pod_ip = self.pod_ips[0] if self.pod_ips else ""
        try:
            env = resolve_env(self.pod, c, image_env=list(cfg.env), configmaps=self.agent.configmap,
                              secrets=self.agent.secret, pod_ip=pod_ip, host_ip=self.agent.host_ip,
                              allocatable=self.agent.allocatable,
                              service_env=self.agent.services.service_env(self.pod)
                              if self.agent.services is not None else None)
            args = make_args(c, list(cfg.entrypoint), list(cfg.cmd), env)
            if not args:
                raise ConfigError("no command specified")
        except ConfigError as e:
            return self._config_error(rec, str(e))
        key = f"{self.uid}-{name}-{rec.attempt}"
        try:
            rootfs = await self.agent.images.snapshot(key, pulled)
        except Exception as e:
            rec.waiting_reason, rec.waiting_message = "CreateContainerError", f"failed to prepare rootfs: {e}"
            self.event(WARNING, "Failed", f"Error: {rec.waiting_message}")
            return 5.0
        rec.snapshot = key
        self.mark("rootfs")
        try:
            sec = await asyncio.to_thread(container_security, self.pod, c, cfg.user, rootfs)
            assert self.volumes is not None
            mounts = await asyncio.to_thread(self.volumes.mounts_for, c, env)
        except (ConfigError, VolumeError) as e:
            await self.agent.images.remove_snapshot(key)
            rec.snapshot = ""
            return self._config_error(rec, str(e))
        log_path = self.dir / "logs" / name / f"{rec.attempt}.log"
        await asyncio.to_thread(log_path.parent.mkdir, parents=True, exist_ok=True)
        cspec = ContainerSpec(
            name=name, args=args, rootfs=rootfs, image=rec.image, image_id=rec.image_id, env=env,
            working_dir=c.get("workingDir") or cfg.working_dir or "/", mounts=mounts,
            resources=container_resources(c), security=sec, tty=bool(c.get("tty")),
            stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), log_path=log_path,
            attempt=rec.attempt,
            labels={"io.kubernetes.container.name": name, "io.kubernetes.pod.uid": self.uid},
            annotations={"io.kubernetes.container.restartCount": str(rec.restart_count)},
        )
        self.mark("container_config")
        try:
            handle = await self.runtime.create_container(self.sandbox, cspec)
        except SandboxError as e:
            await self.agent.images.remove_snapshot(key)
            rec.snapshot = ""
            rec.waiting_reason, rec.waiting_message = "CreateContainerError", str(e)
            self.event(WARNING, "Failed", f"Error: {e}")
            return 5.0
        rec.handle = handle
        rec.log_path = str(log_path)
        self.mark("create")
        self.event(NORMAL, "Created", f"Created container {name}")
        try:
            await self.runtime.start_container(handle)
        except SandboxError as e:
            rec.waiting_reason, rec.waiting_message = "", ""
            self.event(WARNING, "Failed", f"Error: failed to start container \"{name}\": {e}")
            with contextlib.suppress(SandboxError):
                rec.status = await self.runtime.container_status(handle)
            if rec.status is None or rec.status.state != "exited":
                with contextlib.suppress(SandboxError):
                    await self.runtime.stop_container(handle, 0)
                    rec.status = await self.runtime.container_status(handle)
            await self.save_state()
            return 1.0
        rec.waiting_reason, rec.waiting_message = "", ""
        self.mark("start")
        rec.status = await self.runtime.container_status(handle)
        if rec.status.started_at is None:
            rec.status.started_at = time.time()
        self.event(NORMAL, "Started", f"Started container {name}")
        rec.ready = c.get("readinessProbe") is None
        rec.started = c.get("startupProbe") is None
        self._watch(rec)
        self._start_probes(c, rec)
        await self.save_state()
        self.mark("status_and_state")
        post = (c.get("lifecycle") or {}).get("postStart")
        if post and rec.running:
            async with self._slot_released():
                err = await hooks.run_hook(post, self._target(c, rec), self._grace(c, None))
            if err is not None:
                self.event(WARNING, "FailedPostStartHook",
                           f"{hooks.describe(post)} for Container \"{name}\" in Pod \"{pod_full_name(self.pod)}\" "
                           f"failed - error: {err}, message: \"\"")
                self.event(NORMAL, "Killing", "FailedPostStartHook")
                await self._stop_container(rec, c, self._grace(c, None), run_pre_stop=False)
        return None

    def _config_error(self, rec: ContainerRecord, message: str) -> float:
        rec.waiting_reason, rec.waiting_message = "CreateContainerConfigError", message
        self.event(WARNING, "Failed", f"Error: {message}")
        return 2.0

    def _watch(self, rec: ContainerRecord) -> None:
        """A waiter task that records the container's exit and wakes the worker."""
        handle = rec.handle
        assert handle is not None and self.runtime is not None
        runtime = self.runtime
        old = self.waiters.pop(rec.name, None)
        if old is not None:
            old.cancel()

        async def wait() -> None:
            try:
                st = await runtime.wait_container(handle)
            except asyncio.CancelledError:
                raise
            except NotFound:
                return  # removed meanwhile (a restart replaced it)
            except SandboxError as e:
                log.warning("wait failed", extra={"pod": self.key, "container": rec.name, "error": str(e)})
                return
            if rec.handle is handle:
                rec.status = st
                self._stop_probes(rec.name)
                self.wake.set()

        self.waiters[rec.name] = asyncio.get_running_loop().create_task(wait(), name=f"wait-{self.key}-{rec.name}")

    async def _restart(self, c: Obj, rec: ContainerRecord) -> float | None:
        """Restart an exited container, honouring the crash-loop back-off."""
        assert rec.status is not None
        key = f"{self.uid}/{rec.name}"
        finished = rec.status.finished_at or time.time()
        backoff = self.agent.crash_backoff
        if backoff.in_backoff_since(key, finished):
            delay = backoff.get(key)
            msg = (f"back-off {format_duration(delay)} restarting failed container={rec.name} "
                   f"pod={pod_full_name(self.pod)}")
            if rec.waiting_reason != "CrashLoopBackOff" or rec.waiting_message != msg:
                self.event(WARNING, "BackOff",
                           f"Back-off restarting failed container {rec.name} in pod {pod_full_name(self.pod)}")
            rec.waiting_reason, rec.waiting_message = "CrashLoopBackOff", msg
            return max(0.05, backoff.remaining(key, finished))
        backoff.next(key, finished)
        await self._discard_for_restart(rec)
        return await self._start_container(c, rec)

    async def _discard_for_restart(self, rec: ContainerRecord) -> None:
        """Keep the exited instance as ``lastState`` (and its log for ``--previous``),
        remove the one before, and prepare the next attempt."""
        assert self.runtime is not None
        rec.last_terminated = rec.terminated()
        waiter = self.waiters.pop(rec.name, None)
        if waiter is not None:
            waiter.cancel()
        if rec.handle is not None:
            with contextlib.suppress(SandboxError):
                await self.runtime.remove_container(rec.handle)
        if rec.snapshot:
            with contextlib.suppress(Exception):
                await self.agent.images.remove_snapshot(rec.snapshot)
        old_prev = rec.prev_log_path
        rec.prev_log_path = rec.log_path
        if old_prev and old_prev != rec.prev_log_path:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(Path(old_prev).unlink)
        rec.handle = None
        rec.status = None
        rec.snapshot = ""
        rec.restart_count += 1
        rec.attempt += 1
        rec.waiting_reason, rec.waiting_message = "", ""

    async def _stop_container(self, rec: ContainerRecord, c: Obj | None, grace: float, *,
                              run_pre_stop: bool = True) -> None:
        """preStop (within the grace period), then SIGTERM/SIGKILL via the runtime."""
        if rec.handle is None or self.runtime is None:
            return
        self._stop_probes(rec.name)
        t0 = time.monotonic()
        pre = ((c or {}).get("lifecycle") or {}).get("preStop")
        if run_pre_stop and pre and rec.running:
            try:
                async with asyncio.timeout(max(grace, 0.1)):
                    err = await hooks.run_hook(pre, self._target(c or {}, rec), max(grace, 0.1))
            except TimeoutError:
                err = f"PreStopHook timed out after {grace:g}s"
            if err is not None:
                self.event(WARNING, "FailedPreStopHook",
                           f"{hooks.describe(pre)} for Container \"{rec.name}\" in Pod "
                           f"\"{pod_full_name(self.pod)}\" failed - error: {err}, message: \"\"")
        left = max(MIN_GRACE, grace - (time.monotonic() - t0))
        with contextlib.suppress(SandboxError):
            await self.runtime.stop_container(rec.handle, left)
        with contextlib.suppress(SandboxError):
            rec.status = await self.runtime.container_status(rec.handle)

    # --- probes ----------------------------------------------------------------------------

    def _target(self, c: Obj, rec: ContainerRecord) -> ProbeTarget:
        ports = {p["name"]: int(p["containerPort"]) for p in c.get("ports") or () if p.get("name")}
        runtime, handle = self.runtime, rec.handle

        async def exec_sync(argv: list[str], limit: float) -> ExecResult:
            assert runtime is not None and handle is not None
            return await runtime.exec_sync(handle, argv, limit)

        ip = self.pod_ips[0] if self.pod_ips else "127.0.0.1"
        if self.host_network:
            ip = "127.0.0.1" if self.agent.host_ip in ("", "127.0.0.1") else self.agent.host_ip
        return ProbeTarget(pod_ip=ip, ports=ports, exec_sync=exec_sync)

    def _start_probes(self, c: Obj, rec: ContainerRecord) -> None:
        self._stop_probes(rec.name)
        if rec.init or rec.status is None:
            return
        target = self._target(c, rec)
        started_at = rec.status.started_at or time.time()
        name = rec.name
        title = {"liveness": "Liveness", "readiness": "Readiness", "startup": "Startup"}

        def on_failure(kind: str, output: str) -> None:
            if rec.running:
                self.event(WARNING, "Unhealthy", f"{title[kind]} probe failed: {output}")

        def on_result(kind: str, ok: bool, _output: str) -> None:
            if kind == "readiness":
                rec.ready = ok
            elif kind == "startup" and ok:
                rec.started = True
            elif not ok and rec.running:
                self.event(NORMAL, "Killing", f"Container {name} failed {kind} probe, will be restarted")
                self.kill_requests[name] = kind
            self.wake.set()

        for kind in ("startup", "liveness", "readiness"):
            probe = c.get(f"{kind}Probe")
            if not probe:
                continue
            gate = (lambda: True) if kind == "startup" else (lambda: rec.started)
            w = ProbeWorker(kind, probe, target, started_at=started_at, on_result=on_result,
                            on_failure=on_failure, gate=gate)
            self.probes[(name, kind)] = w
            w.start()

    def _stop_probes(self, name: str) -> None:
        for k in [k for k in self.probes if k[0] == name]:
            self.probes.pop(k).stop()

    # --- terminal pods and termination -----------------------------------------------------

    async def _finish(self, phase: str) -> None:
        """The pod is done (Never/OnFailure): stop the sandbox and release the network."""
        self.terminal = phase
        for rec in list(self.inits.values()) + list(self.apps.values()):
            if rec.running:
                await self._stop_container(rec, self._container_spec(rec.name), MIN_GRACE, run_pre_stop=False)
        if self.runtime is not None and self.sandbox is not None:
            with contextlib.suppress(SandboxError):
                await self.runtime.stop_sandbox(self.sandbox)
        self.sandbox_ready = False
        if self.network_up and self.agent.network is not None:
            with contextlib.suppress(Exception):
                await self.agent.network.teardown(self.uid)
            self.network_up = False
        await self.save_state()

    async def terminate(self) -> None:
        """Graceful termination, cleanup, then the final delete (see the module docstring)."""
        meta = self.pod.get("metadata") or {}
        spec = self.pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None and not self.gone:
            grace = spec.get("terminationGracePeriodSeconds")
        grace = float(30 if grace is None and not self.gone else grace or 0)  # force-deleted: the minimum
        running = [(rec, self._container_spec(rec.name)) for rec in list(self.inits.values()) + list(self.apps.values())
                   if rec.running]
        for rec, _c in running:
            self.event(NORMAL, "Killing", f"Stopping container {rec.name}")
        await asyncio.gather(*(self._stop_container(rec, c, grace) for rec, c in running), return_exceptions=True)
        if not self.gone:
            with contextlib.suppress(Exception):
                await self.post_status()
        await self.cleanup()
        if not self.gone:
            try:
                await self.agent.client.delete(PODS, self.name, self.namespace, grace_period_seconds=0,
                                               preconditions={"uid": self.uid})
            except APIError as e:
                if e.code not in (404, 409):
                    log.warning("final pod delete failed", extra={"pod": self.key, "error": e.message})

    async def cleanup(self) -> None:
        """Remove every host resource of the pod. Idempotent."""
        for name in list(self.probes):
            self.probes.pop(name).stop()
        for t in self.waiters.values():
            t.cancel()
        self.waiters.clear()
        runtime = self.runtime
        if runtime is not None:
            for rec in list(self.inits.values()) + list(self.apps.values()):
                if rec.handle is not None:
                    with contextlib.suppress(SandboxError):
                        await runtime.stop_container(rec.handle, 0)
                    with contextlib.suppress(SandboxError):
                        await runtime.remove_container(rec.handle)
            if self.sandbox is not None:
                with contextlib.suppress(SandboxError):
                    await runtime.stop_sandbox(self.sandbox)
                with contextlib.suppress(SandboxError):
                    await runtime.remove_sandbox(self.sandbox)
        snaps = {rec.snapshot for rec in list(self.inits.values()) + list(self.apps.values()) if rec.snapshot}
        store = self.agent.image_store
        if store is not None:  # also any a stopped agent created but never recorded
            with contextlib.suppress(Exception):
                listed = await asyncio.to_thread(store.list_snapshots)
                snaps |= {sn.key for sn in listed if sn.key.startswith(f"{self.uid}-")}
        for key in snaps:
            with contextlib.suppress(Exception):
                await self.agent.images.remove_snapshot(key)
        if self.agent.network is not None and not self.host_network:
            with contextlib.suppress(Exception):
                await self.agent.network.teardown(self.uid)
        self.agent.crash_backoff.forget_prefix(f"{self.uid}/")
        await teardown_pod_dir(self.dir)

    # --- status ----------------------------------------------------------------------------

    def compute_status(self) -> Obj:
        spec = self.pod.get("spec") or {}
        inits = [self.inits[c["name"]] for c in spec.get("initContainers") or () if c["name"] in self.inits]
        apps = [self.apps[c["name"]] for c in spec.get("containers") or () if c["name"] in self.apps]
        for rec in apps:
            if rec.handle is None and not rec.waiting_reason:
                pending_init = any(not (r.terminated() and r.terminated().exit_code == 0)  # type: ignore[union-attr]
                                   for r in inits)
                rec.waiting_reason = "PodInitializing" if pending_init else "ContainerCreating"
        return pod_status(self.pod, inits, apps, sandbox_ready=self.sandbox_ready, pod_ips=self.pod_ips,
                          host_ip=self.agent.host_ip, terminal=self.terminal, reason=self.reason,
                          message=self.message)

    async def post_status(self) -> None:
        new = self.compute_status()
        cur = self.pod.get("status") or {}
        if self.last_posted is not None and _same(self.last_posted, new):
            return
        if _same(cur, new):
            self.last_posted = new
            return
        try:
            await self.agent.client.patch(PODS, self.name, {"status": new}, "merge", namespace=self.namespace,
                                          subresource="status")
            self.last_posted = new
        except APIError as e:
            if e.code == 404:
                self.gone = True
                self.wake.set()
                return
            raise

    # --- persistence and recovery ----------------------------------------------------------

    def state(self) -> Obj:
        def rec_json(r: ContainerRecord) -> Obj:
            return {"handle": r.handle.to_json() if r.handle else None, "restartCount": r.restart_count,
                    "attempt": r.attempt, "image": r.image, "imageID": r.image_id, "snapshot": r.snapshot,
                    "logPath": r.log_path, "prevLogPath": r.prev_log_path,
                    "lastTerminated": r.last_terminated.__dict__ if r.last_terminated else None}

        return {
            "uid": self.uid, "namespace": self.namespace, "name": self.name,
            "handler": self.runtime.name if self.runtime else "",
            "sandbox": self.sandbox.to_json() if self.sandbox else None,
            "podIPs": self.pod_ips, "netns": self.netns, "networkUp": self.network_up,
            "terminal": self.terminal, "reason": self.reason, "message": self.message,
            "startWall": self.start_wall,
            "inits": {n: rec_json(r) for n, r in self.inits.items()},
            "apps": {n: rec_json(r) for n, r in self.apps.items()},
        }

    async def save_state(self) -> None:
        data = json.dumps(self.state())
        path = self.dir / STATE_FILE

        def write() -> None:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(data)
            tmp.replace(path)

        await asyncio.to_thread(write)

    async def adopt(self, state: Obj) -> None:
        """Take over what a previous agent left running for this pod."""
        runtime = self.agent.runtimes.get(state.get("handler") or "")
        if runtime is None or not state.get("sandbox"):
            return
        self.runtime = runtime
        self.sandbox = Handle.from_json(state["sandbox"])
        self.sandbox_ready = not state.get("terminal")
        self.pod_ips = list(state.get("podIPs") or [])
        self.netns = state.get("netns")
        self.network_up = bool(state.get("networkUp"))
        self.starting = False
        self._trace = None
        self.terminal = state.get("terminal") or ""
        self.reason = state.get("reason") or ""
        self.message = state.get("message") or ""
        self.start_wall = float(state.get("startWall") or self.start_wall)
        for group, recs in (("inits", self.inits), ("apps", self.apps)):
            for name, raw in (state.get(group) or {}).items():
                rec = recs.get(name)
                if rec is None:
                    continue
                rec.restart_count = int(raw.get("restartCount") or 0)
                rec.attempt = int(raw.get("attempt") or 0)
                rec.image = raw.get("image") or ""
                rec.image_id = raw.get("imageID") or ""
                rec.snapshot = raw.get("snapshot") or ""
                rec.log_path = raw.get("logPath") or ""
                rec.prev_log_path = raw.get("prevLogPath") or ""
                if raw.get("lastTerminated"):
                    rec.last_terminated = Terminated(**raw["lastTerminated"])
                if raw.get("handle"):
                    handle = Handle.from_json(raw["handle"])
                    try:
                        rec.status = await runtime.container_status(handle)
                    except NotFound:
                        continue
                    except SandboxError:
                        continue
                    rec.handle = handle
                    c = self._container_spec(name) or {}
                    if rec.running:
                        rec.started = c.get("startupProbe") is None
                        rec.ready = c.get("readinessProbe") is None
                        self._watch(rec)
                        self._start_probes(c, rec)
        # containers the previous agent created but never recorded (stopped mid-start): remove
        known = {r.handle.id for r in list(self.inits.values()) + list(self.apps.values()) if r.handle}
        with contextlib.suppress(SandboxError):
            for h in await runtime.list_containers(self.sandbox):
                if h.id not in known:
                    with contextlib.suppress(SandboxError):
                        await runtime.stop_container(h, 0)
                        await runtime.remove_container(h)
        self.volumes = PodVolumes(self.dir, self.pod, instance=self.agent.instance,
                                  configmaps=self.agent.configmap, secrets=self.agent.secret,
                                  allocatable=self.agent.allocatable)
        log.info("adopted pod", extra={"pod": self.key, "uid": self.uid})

    # --- what the streams need ----------------------------------------------------------

    def record(self, name: str) -> ContainerRecord | None:
        return self.apps.get(name) or self.inits.get(name)


def _same(old: Obj, new: Obj) -> bool:
    return all(old.get(k) == v for k, v in new.items())


def _go_ms(seconds: float) -> str:
    """Go's Duration string as the kubelet prints pull times: ``12ms``, ``1.5s``."""
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.0f}ms" if ms >= 1 else f"{seconds * 1e6:.0f}µs"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
