"""Assembles one cloudlet process: store, API server, controllers.

:class:`Server` owns the lifecycle: credentials, the store (SQLite in the
data directory), bootstrap objects (default namespaces, built-in priority
classes), the HTTPS listener, periodic compaction and the control loops that
live in the API process. ``cloudlet up`` runs one in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from cloudlet.api import allocators
from cloudlet.api.app import build_app
from cloudlet.api.errors import APIError
from cloudlet.api.handlers import ResourceHandlers
from cloudlet.api.objects import ObjectAPI
from cloudlet.api.tls import Credentials, ensure_credentials, ssl_context
from cloudlet.resources.registry import REGISTRY, Registry
from cloudlet.store.backend import Backend, MemoryBackend
from cloudlet.store.sqlite import SQLiteBackend
from cloudlet.store.store import Store

log = logging.getLogger("cloudlet.server")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/cloudlet")
    return Path.home() / ".local" / "share" / "cloudlet"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and any ``extra`` fields."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in self._skip and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


@dataclass
class Config:
    data_dir: Path = field(default_factory=default_data_dir)
    port: int = 6443
    bind: str = "127.0.0.1"
    store: str = "sqlite"  # sqlite | memory
    compact_interval: float = 300.0
    min_history: int = 1000
    scheduler: bool = True  # run the default scheduler in-process
    scheduler_config: str | None = None  # YAML plugin selection, see cloudlet.scheduler.config
    hollow_nodes: int = 0  # hollow nodes to register at start (hollow-node-0..N-1)
    hollow_node_cpu: str = "32"
    hollow_node_memory: str = "256Gi"
    hollow_node_pods: int = 110
    hollow_heartbeat_interval: float = 10.0  # seconds between Lease renewals
    node_monitor_grace_period: float = 40.0  # lease age after which a node goes Unknown
    hpa_sync_period: float = 15.0  # seconds between HorizontalPodAutoscaler syncs
    housekeeping_interval: float = 10.0  # seconds between the node agent's container stats samples
    node: bool = False  # run the node agent (this machine as a real node); `cloudlet up` turns it on
    node_name: str = ""  # default: the hostname
    pod_cidr: str = "10.88.0.0/16"  # the pod network's CIDR (its first address is the host's bridge IP)
    system_reserved: str = ""  # "cpu=500m,memory=1Gi": subtracted from capacity for allocatable


class Server:
    def __init__(self, config: Config, registry: Registry = REGISTRY) -> None:
        import cloudlet.resources  # noqa: F401  (registers the built-in kinds)
        import cloudlet.resources.apiextensions  # noqa: F401  (CustomResourceDefinition)

        self.config = config
        self.registry = registry
        self.store: Store | None = None
        self.api: ObjectAPI | None = None
        self.handlers: ResourceHandlers | None = None
        self.creds: Credentials | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.ready_seconds = 0.0
        self.scheduler: Any = None  # cloudlet.scheduler.Scheduler once started
        self.hollow: Any = None  # cloudlet.node.hollow.HollowNodes once started
        self.agent: Any = None  # cloudlet.node.agent.NodeAgent once started (config.node)

    async def start(self) -> float:
        """Start serving; returns seconds from call to ready."""
        t0 = time.perf_counter()
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        backend: Backend
        if cfg.store == "memory":
            backend = MemoryBackend()
        else:
            # the store lock first: a second server on this data dir must fail before touching it
            backend = await asyncio.to_thread(SQLiteBackend, str(cfg.data_dir / "state.db"))
        try:
            self.creds = await asyncio.to_thread(ensure_credentials, cfg.data_dir, cfg.bind, cfg.port)
        except BaseException:
            backend.close()
            raise
        self.store = Store(backend, min_history=cfg.min_history)
        await self.store.start()
        self.api = ObjectAPI(self.store, self.registry)
        allocators.install(self.api)
        await self._bootstrap()
        self._serve_custom_resources()
        app, self.handlers = build_app(self.api, self.registry, self.creds.token)
        from cloudlet.api import binding, eviction

        binding.install(self.handlers)
        eviction.install(self.handlers)  # pods/eviction (kubectl drain), honouring PodDisruptionBudgets
        from cloudlet.api import streaming

        streaming.install(self.handlers)  # pods/log|exec|attach|portforward; the node agent sets the provider
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.bind, cfg.port, ssl_context=ssl_context(self.creds), backlog=1024)
        await site.start()
        self._tasks.append(asyncio.create_task(self._compactor(), name="compactor"))
        self._start_controllers()
        self._start_scheduler()
        await self._start_nodes()
        await self._start_agent()
        self.ready_seconds = time.perf_counter() - t0
        log.info("ready", extra={"url": f"https://{cfg.bind}:{cfg.port}", "seconds": round(self.ready_seconds, 3)})
        return self.ready_seconds

    def _start_controllers(self) -> None:
        """Control loops that run inside the API process (namespace lifecycle, GC)."""
        from cloudlet.controllers import builtin

        assert self.api is not None
        for coro in builtin.control_loops(self.api, node_monitor_grace_period=self.config.node_monitor_grace_period,
                                           hpa_sync_period=self.config.hpa_sync_period):
            self._tasks.append(asyncio.create_task(coro))

    async def _start_nodes(self) -> None:
        """The hollow-node manager (adopts every node annotated hollow, see
        :mod:`cloudlet.node.hollow`) and ``--hollow-nodes`` worth of new nodes
        (the node lifecycle controller is one of :func:`builtin.control_loops`)."""
        from cloudlet.client.local import LocalClient
        from cloudlet.node.hollow import NODES, HollowNodes
        from cloudlet.node.objects import HollowSpec, is_hollow

        assert self.api is not None
        cfg = self.config
        client = LocalClient(self.api)
        spec = HollowSpec(cpu=cfg.hollow_node_cpu, memory=cfg.hollow_node_memory, pods=cfg.hollow_node_pods)
        heartbeat = min(cfg.hollow_heartbeat_interval, cfg.node_monitor_grace_period / 4)  # never flap
        self.hollow = HollowNodes(client, spec=spec, heartbeat_interval=heartbeat,
                                  lease_duration=max(1, round(cfg.node_monitor_grace_period)))
        self._tasks.append(asyncio.create_task(self.hollow.run(), name="hollow-nodes"))
        if cfg.hollow_nodes > 0:
            existing = await client.list(NODES)
            missing = cfg.hollow_nodes - sum(1 for n in existing.get("items") or () if is_hollow(n))
            if missing > 0:
                await self.hollow.add(missing)

    async def _start_agent(self) -> None:
        """The node agent (:mod:`cloudlet.node.agent`) registering this machine as a
        node and serving pod logs/exec/port-forward. Without it, whatever a
        previous run with a node left on the host is removed."""
        from cloudlet.node.agent import NodeAgent, cleanup_node

        cfg = self.config
        if not cfg.node:
            if (cfg.data_dir / "pods").is_dir():
                await cleanup_node(cfg.data_dir)
            return
        from cloudlet.api import streaming
        from cloudlet.client.local import LocalClient
        from cloudlet.node.registration import default_node_name, parse_reserved

        assert self.api is not None and self.handlers is not None
        self.agent = NodeAgent(
            LocalClient(self.api), data_dir=cfg.data_dir, node_name=cfg.node_name or default_node_name(),
            pod_cidr=cfg.pod_cidr, reserved=parse_reserved(cfg.system_reserved),
            heartbeat_interval=min(cfg.hollow_heartbeat_interval, cfg.node_monitor_grace_period / 4),
            lease_duration=max(1, round(cfg.node_monitor_grace_period)),
            housekeeping_interval=cfg.housekeeping_interval)
        await self.agent.start()
        streaming.set_pod_streams(self.handlers, self.agent)

    def _start_scheduler(self) -> None:
        """The default scheduler (:mod:`cloudlet.scheduler`), binding through ``pods/binding``."""
        if not self.config.scheduler:
            return
        from cloudlet.client.local import LocalClient
        from cloudlet.scheduler import Scheduler, build_profile, load_profile

        assert self.api is not None
        cfg = self.config
        profile = load_profile(cfg.scheduler_config) if cfg.scheduler_config else build_profile()
        self.scheduler = Scheduler(LocalClient(self.api), profile=profile)
        self._tasks.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))

    def _serve_custom_resources(self) -> None:
        """Serve every stored CRD again before the listener opens (restarts)."""
        assert self.api is not None
        from cloudlet.controllers.crd import serve_stored_crds

        served = serve_stored_crds(self.api)
        if served:
            log.info("serving custom resources", extra={"crds": served})

    async def _bootstrap(self) -> None:
        assert self.api is not None
        api = self.api
        ns_rt = self.registry.get("", "v1", "namespaces")
        assert ns_rt is not None
        for ns in DEFAULT_NAMESPACES:
            if api.store.get(api.key(ns_rt, "", ns)) is None:
                await api.create(ns_rt, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        pc_rt = self.registry.get("scheduling.k8s.io", "v1", "priorityclasses")
        if pc_rt is not None:
            from cloudlet.resources.scheduling import BUILTIN_PRIORITY_CLASSES

            for pc in BUILTIN_PRIORITY_CLASSES:
                name = pc["metadata"]["name"]
                if api.store.get(api.key(pc_rt, "", name)) is None:
                    try:
                        await api.create(pc_rt, "", json.loads(json.dumps(pc)))
                    except APIError as e:
                        log.error("bootstrap failed", extra={"object": name, "error": e.message})
        rc_rt = self.registry.get("node.k8s.io", "v1", "runtimeclasses")
        if rc_rt is not None and api.store.get(api.key(rc_rt, "", "runc")) is None:  # the default handler
            await api.create(rc_rt, "", {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                         "metadata": {"name": "runc"}, "handler": "runc"})

    async def _compactor(self) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(self.config.compact_interval)
            try:
                await self.store.compact()
            except Exception:
                log.exception("compaction failed")

    async def stop(self) -> None:
        if self.handlers is not None:
            self.handlers.shutting_down.set()
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.store is not None:
            await self.store.stop()
            self.store = None
        log.info("stopped")


async def run_forever(config: Config, on_ready: Any = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down cleanly."""
    import signal

    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    if on_ready is not None:
        on_ready(server)
    await stop.wait()
    await server.stop()
