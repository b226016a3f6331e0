"""The ``cloudlet`` command."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from cloudlet import __version__
from cloudlet.cli.image import image_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="cloudlet: a whole cloud-native platform on one machine.")
console = Console(stderr=True)


def _process_age() -> float | None:
    """Seconds since this process started (from /proc), so "ready in" includes startup."""
    try:
        import os

        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def _data_dir(d: Path | None) -> Path:
    from cloudlet.server import default_data_dir

    return (d or default_data_dir()).expanduser().resolve()


@app.command()
def up(
    data_dir: Path = typer.Option(None, "--data-dir", help="State, certificates and kubeconfig live here."),
    port: int = typer.Option(6443, "--port", help="HTTPS port of the API server."),
    bind: str = typer.Option("127.0.0.1", "--bind", help="Address to listen on."),
    compact_interval: float = typer.Option(300.0, "--compact-interval", help="Seconds between store compactions."),
    min_history: int = typer.Option(1000, "--min-history", help="Revisions of watch history kept by compaction."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    hollow_nodes: int = typer.Option(0, "--hollow-nodes", min=0, help="Register this many hollow (fake) nodes."),
    hollow_node_cpu: str = typer.Option("32", "--hollow-node-cpu", help="CPU capacity of each hollow node."),
    hollow_node_memory: str = typer.Option("256Gi", "--hollow-node-memory", help="Memory capacity of each hollow node."),
    hollow_node_pods: int = typer.Option(110, "--hollow-node-pods", min=1, help="Pod capacity of each hollow node."),
    node_monitor_grace_period: float = typer.Option(
        40.0, "--node-monitor-grace-period", help="Seconds without a lease renewal before a node goes Unknown."),
    hpa_sync_period: float = typer.Option(
        15.0, "--horizontal-pod-autoscaler-sync-period", help="Seconds between HorizontalPodAutoscaler syncs."),
    housekeeping_interval: float = typer.Option(
        10.0, "--housekeeping-interval", help="Seconds between the node's container stats samples (kubectl top, HPA)."),
    scheduler_config: Path = typer.Option(
        None, "--scheduler-config", help="YAML choosing the scheduler's filter/score plugins and weights."),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="Run the built-in pod scheduler."),
    node: bool = typer.Option(True, "--node/--no-node", help="Run this machine as a node (--no-node: control plane only)."),
    node_name: str = typer.Option("", "--node-name", help="Name of this machine's Node (default: the hostname)."),
    pod_cidr: str = typer.Option("10.88.0.0/16", "--pod-cidr", help="CIDR of the pod network on this machine."),
    system_reserved: str = typer.Option(
        "", "--system-reserved", help="Resources kept from pods, e.g. cpu=500m,memory=1Gi."),
) -> None:
    """Start cloudlet in the foreground (Ctrl-C or SIGTERM stops it cleanly)."""
    from cloudlet.server import Config, run_forever, setup_logging

    setup_logging(log_level)
    cfg = Config(
        data_dir=_data_dir(data_dir), port=port, bind=bind,
        compact_interval=compact_interval, min_history=min_history,
        hollow_nodes=hollow_nodes, hollow_node_cpu=hollow_node_cpu, hollow_node_memory=hollow_node_memory,
        hollow_node_pods=hollow_node_pods, node_monitor_grace_period=node_monitor_grace_period,
        hpa_sync_period=hpa_sync_period, housekeeping_interval=housekeeping_interval,
        scheduler_config=str(scheduler_config) if scheduler_config else None,
        scheduler=scheduler,
        node=node, node_name=node_name, pod_cidr=pod_cidr, system_reserved=system_reserved,
    )
    if node:
        from cloudlet.node.registration import parse_reserved

        try:
            parse_reserved(system_reserved)
        except ValueError as e:
            console.print(f"[red]error:[/] --system-reserved: {e}")
            raise typer.Exit(2) from e

    def ready(server: object) -> None:
        from cloudlet.server import Server

        assert isinstance(server, Server) and server.creds is not None
        age = _process_age()
        took = f"{age:.2f}s" if age is not None else f"{server.ready_seconds:.2f}s"
        console.print(f"[bold green]cloudlet is ready[/] in {took} at https://{bind}:{port}")
        print(f"export KUBECONFIG={server.creds.kubeconfig}", flush=True)

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(run_forever(cfg, ready))
    except OSError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    except RuntimeError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e


@app.command()
def kubeconfig(
    data_dir: Path = typer.Option(None, "--data-dir", help="The data directory given to `cloudlet up`."),
) -> None:
    """Print the path of the admin kubeconfig."""
    path = _data_dir(data_dir) / "kubeconfig.yaml"
    if not path.exists():
        console.print(f"[red]no kubeconfig at {path}[/]: run `cloudlet up` first")
        raise typer.Exit(1)
    print(path)


node_app = typer.Typer(no_args_is_help=True, help="Add, stop and resume nodes of a running cloudlet.")
app.add_typer(node_app, name="node")
app.add_typer(image_app, name="image")


def _kubeconfig(data_dir: Path | None, kubeconfig: Path | None) -> Path:
    path = kubeconfig or _data_dir(data_dir) / "kubeconfig.yaml"
    if not path.exists():
        console.print(f"[red]no kubeconfig at {path}[/]: run `cloudlet up` first or pass --kubeconfig")
        raise typer.Exit(1)
    return path


@node_app.command("add")
def node_add(
    hollow: bool = typer.Option(False, "--hollow", help="Add hollow nodes (the only kind for now)."),
    count: int = typer.Option(1, "--count", min=1, help="How many (named hollow-node-<i>, lowest free i)."),
    name: list[str] = typer.Option(None, "--name", help="Node name (repeatable); overrides --count."),
    cpu: str = typer.Option("32", "--cpu", help="CPU capacity."),
    memory: str = typer.Option("256Gi", "--memory", help="Memory capacity."),
    pods: int = typer.Option(110, "--pods", min=1, help="Pod capacity."),
    data_dir: Path = typer.Option(None, "--data-dir", help="The data directory given to `cloudlet up`."),
    kubeconfig: Path = typer.Option(None, "--kubeconfig", help="Kubeconfig of the server (default: the data dir's)."),
) -> None:
    """Register nodes with a running server. A hollow node is a Node annotated
    node.cloudlet.dev/hollow=true: the server adopts it, heartbeats its Lease
    and marks pods bound to it Running."""
    if not hollow:
        console.print("[red]error:[/] only hollow nodes can be added for now: pass --hollow")
        raise typer.Exit(2)
    from cloudlet.node.cli import add_hollow_nodes
    from cloudlet.node.objects import HollowSpec

    path = _kubeconfig(data_dir, kubeconfig)
    spec = HollowSpec(cpu=cpu, memory=memory, pods=pods)
    try:
        added = asyncio.run(add_hollow_nodes(path, spec, count, name or None))
    except Exception as e:  # an APIError or a transport failure: say it plainly
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    for n in added:
        print(f"node/{n} created")


@node_app.command("stop")
def node_stop(
    name: str = typer.Argument(..., help="The hollow node to halt (its heartbeat stops)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="The data directory given to `cloudlet up`."),
    kubeconfig: Path = typer.Option(None, "--kubeconfig", help="Kubeconfig of the server (default: the data dir's)."),
) -> None:
    """Halt a hollow node, as if its kubelet died (annotates it hollow-stopped)."""
    _set_stopped(name, True, data_dir, kubeconfig)


@node_app.command("resume")
def node_resume(
    name: str = typer.Argument(..., help="The hollow node to resume."),
    data_dir: Path = typer.Option(None, "--data-dir", help="The data directory given to `cloudlet up`."),
    kubeconfig: Path = typer.Option(None, "--kubeconfig", help="Kubeconfig of the server (default: the data dir's)."),
) -> None:
    """Resume a hollow node halted by `cloudlet node stop`."""
    _set_stopped(name, False, data_dir, kubeconfig)


def _set_stopped(name: str, stopped: bool, data_dir: Path | None, kubeconfig: Path | None) -> None:
    from cloudlet.node.cli import set_hollow_stopped

    path = _kubeconfig(data_dir, kubeconfig)
    try:
        asyncio.run(set_hollow_stopped(path, name, stopped))
    except Exception as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    print(f"node/{name} {'stopped' if stopped else 'resumed'}")


@app.command()
def version() -> None:
    """Print the cloudlet version."""
    print(__version__)


if __name__ == "__main__":
    app()
