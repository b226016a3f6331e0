"""``cloudlet image``: list, pull, push, import, export, remove, prune, inspect and tag images.

Works on the image store of a data directory (``--data-dir``, default as for
``cloudlet up``), directly — the server does not need to run, and may: the
store is safe for two processes at once. Registry settings come from
``<data-dir>/registries.yaml`` or ``--registry-config`` (format in
:mod:`cloudlet.image.config`), credentials from ``--creds``, that file, and
the docker ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgressBar
from rich.table import Table

T = TypeVar("T")

image_app = typer.Typer(no_args_is_help=True, help="Manage images in cloudlet's image store.")
err = Console(stderr=True)
# piped output (scripts, tests) gets whole names instead of ellipsised ones
out = Console() if sys.stdout.isatty() else Console(width=300)

DATA_DIR_HELP = "The data directory given to `cloudlet up`."
REGISTRY_CONFIG_HELP = "Registry mirrors / insecure registries YAML (default: <data-dir>/registries.yaml)."
CREDS_HELP = "Registry credentials USER:PASSWORD (else registries.yaml, then docker config.json)."


def _data_dir(d: Path | None) -> Path:
    from cloudlet.server import default_data_dir

    return (d or default_data_dir()).expanduser().resolve()


def _store(data_dir: Path | None) -> Any:
    from cloudlet.image.store import ImageStore

    return ImageStore(_data_dir(data_dir) / "images")


def _client(data_dir: Path | None, registry_config: Path | None, creds: str | None, image: str) -> Any:
    from cloudlet.image import reference as refs
    from cloudlet.image.auth import Credential
    from cloudlet.image.config import RegistryConfig, RegistryConfigError
    from cloudlet.image.registry import RegistryClient

    try:
        cfg = RegistryConfig.load(registry_config or _data_dir(data_dir) / "registries.yaml")
    except RegistryConfigError as e:
        _fail(str(e))
    client = RegistryClient(cfg)
    if creds:
        user, sep, password = creds.partition(":")
        if not sep:
            _fail("--creds must be USER:PASSWORD")
        host = refs.parse(image).domain
        client.keychain = client.keychain.with_first({host: Credential(user, password)})
    return client


def _fail(message: str, code: int = 1) -> Any:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _short(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n]


def _human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return f"{size:.1f}GB"


def _parse(image: str) -> Any:
    from cloudlet.image import reference as refs

    try:
        return refs.parse(image)
    except refs.InvalidReference as e:
        _fail(f'invalid image name "{image}": {e}', 2)


class _Bars:
    """Pull/push progress: one rich bar per blob."""

    def __init__(self, bar: RichProgressBar, verb: str) -> None:
        self.bar = bar
        self.verb = verb
        self.tasks: dict[str, TaskID] = {}

    def blob_started(self, digest: str, size: int | None, kind: str) -> None:
        if digest not in self.tasks:
            self.tasks[digest] = self.bar.add_task(f"{_short(digest)} {kind}", total=size)

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        if digest in self.tasks:
            self.bar.advance(self.tasks[digest], nbytes)

    def blob_finished(self, digest: str, cached: bool) -> None:
        task = self.tasks.get(digest)
        if task is None:
            return
        t = self.bar.tasks[task] if task < len(self.bar.tasks) else None
        total = t.total if t is not None else None
        desc = f"{_short(digest)} {'already exists' if cached else self.verb}"
        self.bar.update(task, description=desc, completed=total or 0, total=total or 0)


def _progress_bar() -> RichProgressBar:
    return RichProgressBar(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=False,
    )


@image_app.command("ls")
def ls(
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only image IDs."),
    digests: bool = typer.Option(False, "--digests", help="Show the manifest digest."),
    output: str = typer.Option("table", "--output", "-o", help="table or json."),
) -> None:
    """List images (name, tag, image ID, size)."""
    from cloudlet.image import reference as refs

    store = _store(data_dir)
    images = store.images()
    if output == "json":
        print(json.dumps([asdict(i) for i in images], indent=2))
        return
    if quiet:
        for i in images:
            print(i.image_id or i.digest)
        return
    table = Table(box=None, header_style="bold")
    for col in ("IMAGE", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "SIZE", "CREATED"):
        table.add_column(col, overflow="fold")
    for i in images:
        try:
            r = refs.parse(i.name)
            repo, tag = r.familiar_repository, r.tag or (("<none>") if r.digest else refs.DEFAULT_TAG)
        except refs.InvalidReference:
            repo, tag = i.name, ""
        row = [repo, tag]
        if digests:
            row.append(i.digest)
        row += [_short(i.image_id) if i.image_id else "<incomplete>", _human(i.size), i.created[:19]]
        table.add_row(*row)
    out.print(table)


@image_app.command("pull")
def pull(
    image: str = typer.Argument(..., help="Image name: busybox, host:5000/app:v1, name@sha256:..."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    registry_config: Path = typer.Option(None, "--registry-config", help=REGISTRY_CONFIG_HELP),
    creds: str = typer.Option(None, "--creds", help=CREDS_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Pull an image (linux/amd64) from its registry into the store."""
    from cloudlet.image.pull import Puller
    from cloudlet.image.registry import RegistryError

    r = _parse(image)
    store = _store(data_dir)

    async def go() -> Any:
        async with _client(data_dir, registry_config, creds, image) as client:
            puller = Puller(store, client)
            if quiet:
                return await puller.pull(r)
            with _progress_bar() as bar:
                return await puller.pull(r, progress=_Bars(bar, "pulled"))

    try:
        res = _run(go())
    except RegistryError as e:
        _fail(f"failed to pull {r.name}: {e}")
    print(f"{r.name}: {res.digest}")


@image_app.command("push")
def push(
    image: str = typer.Argument(..., help="Local image to push."),
    destination: str = typer.Argument(None, help="Name on the registry (default: the image's own name)."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    registry_config: Path = typer.Option(None, "--registry-config", help=REGISTRY_CONFIG_HELP),
    creds: str = typer.Option(None, "--creds", help=CREDS_HELP),
    chunk_size: int = typer.Option(0, "--chunk-size", min=0, help="Upload in chunks of this many bytes (0: monolithic)."),
    mount_from: str = typer.Option(None, "--mount-from", help="Try a cross-repository mount from this repository (same registry) first."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Push a local image to a registry: blobs, then the manifest by tag."""
    from cloudlet.image.push import push as do_push
    from cloudlet.image.registry import RegistryError

    src = _parse(image)
    dst = _parse(destination) if destination else src
    store = _store(data_dir)

    async def go() -> Any:
        async with _client(data_dir, registry_config, creds, dst.name) as client:
            kwargs: dict[str, Any] = {"chunk_size": chunk_size or None, "mount_from": mount_from}
            if quiet:
                return await do_push(store, client, src.name, dst.name, **kwargs)
            with _progress_bar() as bar:
                return await do_push(store, client, src.name, dst.name, progress=_Bars(bar, "pushed"), **kwargs)

    try:
        res = _run(go())
    except RegistryError as e:
        _fail(f"failed to push {dst.name}: {e}")
    print(f"{dst.name}: {res.digest}")


@image_app.command("tag")
def tag(
    source: str = typer.Argument(..., help="Existing local image."),
    target: str = typer.Argument(..., help="New name for it."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Give a local image another name."""
    src, dst = _parse(source), _parse(target)
    if dst.digest:
        _fail("the new name cannot contain a digest", 2)
    store = _store(data_dir)
    digest = store.resolve(src.name)
    if digest is None:
        _fail(f"image {src.familiar} not found")
    store.tag(dst.name, digest)
    print(f"{dst.name}: {digest}")


@image_app.command("rm")
def rm(
    images: list[str] = typer.Argument(..., help="Images to remove."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    no_prune: bool = typer.Option(False, "--no-prune", help="Only untag; leave unreferenced content."),
) -> None:
    """Untag images and delete content no other image or container uses."""
    store = _store(data_dir)
    missing = []
    for image in images:
        r = _parse(image)
        if store.untag(r.name):
            print(f"Untagged: {r.familiar}")
        else:
            missing.append(r.familiar)
    if not no_prune:
        res = _run(store.gc())
        freed = (res or {}).get("bytes_freed") or (res or {}).get("freed_bytes")
        if freed:
            print(f"Deleted {_human(freed)}")
    if missing:
        _fail(f"no such image: {', '.join(missing)}")


@image_app.command("prune")
def prune(
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Delete blobs, unpacked layers and snapshots that no image or container uses."""
    store = _store(data_dir)
    res = _run(store.gc()) or {}
    table = Table(box=None, header_style="bold")
    table.add_column("WHAT")
    table.add_column("REMOVED")
    for k, v in res.items():
        table.add_row(str(k), _human(v) if "bytes" in str(k) and isinstance(v, int) else str(v))
    out.print(table)


@image_app.command("inspect")
def inspect(
    image: str = typer.Argument(..., help="Image name or digest."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Print an image's names, digests, manifest and config as JSON."""
    from cloudlet.image import reference as refs

    store = _store(data_dir)
    digest = store.resolve(image if refs.is_digest(image) else _parse(image).name)
    if digest is None:
        _fail(f"image {image} not found")
    try:
        pdigest = store.manifest_for_platform(digest)
        manifest = json.loads(store.content.get_bytes(pdigest))
        config_digest = manifest["config"]["digest"]
        config = json.loads(store.content.get_bytes(config_digest))
    except Exception as e:  # missing or corrupt content: say which
        _fail(f"image {image} is incomplete: {e}")
    doc = {
        "names": store.names_for(digest),
        "digest": digest,
        "manifestDigest": pdigest,
        "id": config_digest,
        "size": sum(int(d.get("size", 0)) for d in [manifest["config"], *manifest.get("layers", [])]),
        "manifest": manifest,
        "config": config,
    }
    print(json.dumps(doc, indent=2, default=lambda o: asdict(o) if is_dataclass(o) else str(o)))


@image_app.command("import")
def import_(
    archive: Path = typer.Argument(..., exists=True, dir_okay=False, help="docker save tarball or OCI layout archive."),
    name: str = typer.Option(None, "--name", help="Tag the (single) image with this name."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Load images from a `docker save` tarball or an OCI layout archive."""
    if name:
        name = _parse(name).name
    store = _store(data_dir)
    try:
        loaded = _run(store.import_archive(archive, name))
    except (ValueError, OSError, LookupError) as e:
        _fail(f"cannot import {archive}: {e}")
    for n, d in loaded:
        print(f"Loaded image: {n} ({d})")


@image_app.command("export")
def export(
    images: list[str] = typer.Argument(..., help="Images to save."),
    output: Path = typer.Option(..., "--output", "-o", help="Archive to write."),
    fmt: str = typer.Option("docker", "--format", help="docker (docker load) or oci (OCI image layout)."),
    data_dir: Path = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Save images to a tar archive."""
    if fmt not in ("docker", "oci"):
        _fail("--format must be docker or oci", 2)
    store = _store(data_dir)
    names = []
    for image in images:
        r = _parse(image)
        if store.resolve(r.name) is None:
            _fail(f"image {r.familiar} not found")
        names.append(r.name)
    try:
        _run(store.export_archive(names, output, fmt))
    except (ValueError, OSError, LookupError) as e:
        _fail(f"cannot export: {e}")
    print(str(output))
