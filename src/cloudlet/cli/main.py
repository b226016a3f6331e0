"""The ``cloudlet`` command."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from cloudlet import __version__

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
) -> None:
    """Start cloudlet in the foreground (Ctrl-C or SIGTERM stops it cleanly)."""
    from cloudlet.server import Config, run_forever, setup_logging

    setup_logging(log_level)
    cfg = Config(
        data_dir=_data_dir(data_dir), port=port, bind=bind,
        compact_interval=compact_interval, min_history=min_history,
    )

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


@app.command()
def version() -> None:
    """Print the cloudlet version."""
    print(__version__)


if __name__ == "__main__":
    app()
