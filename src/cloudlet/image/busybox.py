"""The built-in ``busybox`` image, assembled from the host's Debian ``busybox-static``.

One gzip layer: ``/bin/busybox``, a symlink to it for every applet
(``busybox --list-full`` gives each applet's directory), ``/etc/passwd`` and
``/etc/group`` (root and nobody 65534), and the usual top-level directories
(``/tmp`` sticky and world-writable, ``/root`` private). The image config
carries ``Cmd ["sh"]``, a ``PATH`` and the host architecture. The build is
deterministic: sorted entries, fixed mtimes and owners, a gzip header without
name or time — the same busybox binary always gives the same digests.
It is tagged ``busybox:latest`` (= ``docker.io/library/busybox:latest``)
unless that name already points at an image in the store.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
    canonical_json,
    host_platform,
)

if TYPE_CHECKING:
    from .store import ImageStore

__all__ = ["BUSYBOX_BINARY", "BUILTIN_REFS", "build_busybox", "ensure_busybox", "BusyboxUnavailable"]

BUSYBOX_BINARY = Path("/bin/busybox")
BUILTIN_REFS = ("busybox:latest",)  # == docker.io/library/busybox:latest
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"
DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
    "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755,
}


class BusyboxUnavailable(RuntimeError):
    """``/bin/busybox`` (Debian ``busybox-static``) is not installed."""


def _applets(binary: Path) -> list[str]:
    out = subprocess.run([str(binary), "--list-full"], capture_output=True, check=False, timeout=30)
    paths = out.stdout.decode().split() if out.returncode == 0 else []
    if not paths:
        plain = subprocess.run([str(binary), "--list"], capture_output=True, check=True, timeout=30)
        paths = ["bin/" + name for name in plain.stdout.decode().split()]
    return sorted({p.strip("/") for p in paths if "/" in p.strip("/")} - {"bin/busybox"})


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_layer(binary: Path = BUSYBOX_BINARY) -> bytes:
    """The uncompressed layer tar (deterministic)."""
    if not binary.is_file():
        raise BusyboxUnavailable(f"{binary} not found: install Debian's busybox-static")
    data = binary.read_bytes()
    applets = _applets(binary)
    entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    dirs = dict(DIRS)
    for applet in applets:
        parent = applet.rsplit("/", 1)[0]
        while parent and parent not in dirs:
            dirs[parent] = 0o755
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    for d, mode in dirs.items():
        entries[d] = (_info(d, tarfile.DIRTYPE, mode), None)
    entries["bin/busybox"] = (_info("bin/busybox", tarfile.REGTYPE, 0o755), data)
    for applet in applets:
        info = _info(applet, tarfile.SYMTYPE, 0o777)
        info.linkname = "/bin/busybox"
        entries[applet] = (info, None)
    entries["etc/passwd"] = (_info("etc/passwd", tarfile.REGTYPE, 0o644), PASSWD)
    entries["etc/group"] = (_info("etc/group", tarfile.REGTYPE, 0o644), GROUP)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            info, content = entries[name]
            if content is not None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buf.getvalue()


def build_busybox(binary: Path = BUSYBOX_BINARY) -> dict[str, Any]:
    """Build the image documents (blocking): ``layer``, ``config``, ``manifest`` bytes and digests."""
    layer_tar = build_layer(binary)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    layer = gzip.compress(layer_tar, compresslevel=6, mtime=0)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    plat = host_platform()
    config_doc: dict[str, Any] = {
        "architecture": plat.architecture,
        "os": plat.os,
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created": CREATED, "created_by": "cloudlet: /bin/busybox from Debian busybox-static"}
        ],
    }
    if plat.variant:
        config_doc["variant"] = plat.variant
    config = canonical_json(config_doc)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "config": {
                "mediaType": MEDIA_TYPE_OCI_CONFIG,
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [{"mediaType": MEDIA_TYPE_OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}],
        }
    )
    return {
        "layer": layer,
        "layer_digest": layer_digest,
        "diff_id": diff_id,
        "config": config,
        "manifest": manifest,
        "manifest_digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
    }


async def ensure_busybox(store: ImageStore) -> str:
    """Tag the built-in image (building it on first use); returns the digest ``busybox:latest`` has."""
    for ref in BUILTIN_REFS:
        existing = store.resolve(ref)
        if existing is not None and store.content.has(existing):
            return existing
    built = await asyncio.to_thread(build_busybox)
    async with store.lease():
        await store.content.write_bytes(built["layer"], built["layer_digest"])
        await store.content.write_bytes(built["config"])
        digest = await store.content.write_bytes(built["manifest"], built["manifest_digest"])
        for ref in BUILTIN_REFS:
            await asyncio.to_thread(store.tag, ref, digest)
    return digest
