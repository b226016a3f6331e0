"""Container snapshots: an overlay mount per container over the image's unpacked layers.

``snapshots/<id>/`` (``id`` = a hash of the snapshot key) holds ``meta.json``
(key, image, chains, kind), ``upper/`` + ``work/`` and ``rootfs/``, the mount
point. The overlay's lower dirs are the layer directories top first, the mount
source is ``cloudlet-<instance>-overlay`` so ``/proc/self/mountinfo`` shows whose it
is. The mount is made with one ``mount(2)`` call through ctypes (no helper
process), falling back to the new mount API (``fsopen`` + ``lowerdir+``) when
the option string would not fit in a page. Without overlayfs (or not root, or
``snapshotter="copy"``) the layers are flattened into ``rootfs/`` instead:
whiteouts remove, opaque directories clear what lies below, hard links within
a layer are kept.

Removal unmounts (lazily if busy) and deletes the directory, never crossing
into a mount that is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .unpack import OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX

if TYPE_CHECKING:
    from .store import ImageStore, SnapshotInfo

__all__ = [
    "create_snapshot",
    "remove_snapshot",
    "list_snapshots",
    "probe_overlay",
    "flatten",
    "mount_overlay",
    "unmount",
    "snapshot_dir",
]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long

MNT_DETACH = 2
_PAGE = os.sysconf("SC_PAGE_SIZE")
# x86_64 / aarch64 share these (the new mount API was added with unified numbers).
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_AT_FDCWD = -100


def _check(ret: int, what: str, path: str = "") -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def mount_overlay(source: str, target: Path, lowers: list[Path], upper: Path | None, work: Path | None) -> None:
    """Mount an overlay at ``target`` (blocking). ``lowers`` top first; no upper = read-only."""
    for p in [*lowers, upper, work]:
        if p is not None and any(c in str(p) for c in ",:\\"):
            raise OSError(errno.EINVAL, f"path not usable in overlay options: {p}")
    opts = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None and work is not None:
        opts += f",upperdir={upper},workdir={work}"
    if len(opts) < _PAGE - 1:
        _check(
            _libc.mount(source.encode(), str(target).encode(), b"overlay", 0, opts.encode()),
            "mount overlay", str(target),
        )
        return
    _mount_overlay_fsapi(source, target, lowers, upper, work)


def _mount_overlay_fsapi(
    source: str, target: Path, lowers: list[Path], upper: Path | None, work: Path | None
) -> None:
    fs = _check(_libc.syscall(_SYS_FSOPEN, b"overlay", 1), "fsopen overlay")
    try:
        def cfg(key: str, value: str) -> None:
            _check(
                _libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_SET_STRING, key.encode(), value.encode(), 0),
                f"fsconfig {key}", value,
            )

        cfg("source", source)
        for lower in lowers:
            cfg("lowerdir+", str(lower))
        if upper is not None and work is not None:
            cfg("upperdir", str(upper))
            cfg("workdir", str(work))
        _check(_libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0), "fsconfig create")
        mnt = _check(_libc.syscall(_SYS_FSMOUNT, fs, 1, 0), "fsmount")
        try:
            _check(
                _libc.syscall(_SYS_MOVE_MOUNT, mnt, b"", _AT_FDCWD, str(target).encode(), _MOVE_MOUNT_F_EMPTY_PATH),
                "move_mount", str(target),
            )
        finally:
            os.close(mnt)
    finally:
        os.close(fs)


def unmount(target: Path) -> None:
    """Unmount ``target`` if it is a mount point (lazily when busy)."""
    while os.path.ismount(target):
        if _libc.umount2(str(target).encode(), 0) == 0:
            continue
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        if err == errno.EBUSY:
            _check(_libc.umount2(str(target).encode(), MNT_DETACH), "umount", str(target))
            continue
        raise OSError(err, f"umount: {os.strerror(err)}", str(target))


def snapshot_dir(store: ImageStore, key: str) -> Path:
    return store.snapshots_dir / hashlib.sha256(key.encode()).hexdigest()[:24]


def probe_overlay(store: ImageStore) -> bool:
    """True when an overlay mount works here (root and overlayfs present)."""
    if os.geteuid() != 0:
        return False
    probe = store.root / f".probe-{uuid.uuid4().hex[:8]}"
    try:
        for sub in ("l", "u", "w", "m"):
            (probe / sub).mkdir(parents=True)
        mount_overlay(store.mount_source, probe / "m", [probe / "l"], probe / "u", probe / "w")
        unmount(probe / "m")
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            unmount(probe / "m")
        safe_rmtree(probe)


def safe_rmtree(path: Path) -> None:
    """``rm -rf`` that refuses to enter another file system (a leftover mount)."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        os.unlink(path)
        return
    _check_no_mounts(str(path), top.st_dev)
    _rmtree_dev(str(path), top.st_dev)
    os.rmdir(path)


def _check_no_mounts(path: str, dev: int) -> None:
    stack = [path]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if entry.stat(follow_symlinks=False).st_dev != dev or os.path.ismount(entry.path):
                        raise OSError(errno.EBUSY, "refusing to remove a mounted directory", entry.path)
                    stack.append(entry.path)


def _rmtree_dev(path: str, dev: int) -> None:
    with os.scandir(path) as it:
        entries = list(it)
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            if st.st_dev != dev or os.path.ismount(entry.path):
                raise OSError(errno.EBUSY, "refusing to remove a mounted directory", entry.path)
            _rmtree_dev(entry.path, dev)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


# -- flattening (copy snapshotter) -----------------------------------------------------------


def flatten(layers: list[tuple[Path, str]], dest: Path, privileged: bool | None = None) -> None:
    """Merge layer dirs (bottom first, each with its whiteout format) into ``dest`` (blocking)."""
    if privileged is None:
        privileged = os.geteuid() == 0
    dest.mkdir(parents=True, exist_ok=True)
    for layer, fmt in layers:
        links: dict[tuple[int, int], str] = {}
        _merge_dir(str(layer), str(dest), fmt, privileged, links)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str, fmt: str) -> bool:
    if fmt == "overlay":
        try:
            return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
        except OSError:
            return False
    return os.path.lexists(os.path.join(path, OPAQUE_MARKER))


def _remove_any(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_meta(src_st: os.stat_result, dst: str, privileged: bool, is_link: bool) -> None:
    if privileged:
        with contextlib.suppress(OSError):
            os.lchown(dst, src_st.st_uid, src_st.st_gid)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(src_st.st_mode))
    with contextlib.suppress(OSError):
        os.utime(dst, ns=(src_st.st_atime_ns, src_st.st_mtime_ns), follow_symlinks=False)


def _merge_dir(src: str, dst: str, fmt: str, privileged: bool, links: dict[tuple[int, int], str]) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = entry.name
        target = os.path.join(dst, name)
        st = entry.stat(follow_symlinks=False)
        if fmt == "oci" and name.startswith(WHITEOUT_PREFIX):
            if name != OPAQUE_MARKER and not name.startswith(WHITEOUT_PREFIX * 2):
                _remove_any(os.path.join(dst, name[len(WHITEOUT_PREFIX):]))
            continue
        if fmt == "overlay" and _is_whiteout(st):
            _remove_any(target)
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                dst_st = os.lstat(target)
            except FileNotFoundError:
                dst_st = None
            if dst_st is not None and not stat.S_ISDIR(dst_st.st_mode):
                os.unlink(target)
                dst_st = None
            if dst_st is not None and _is_opaque(entry.path, fmt):
                shutil.rmtree(target)
                dst_st = None
            if dst_st is None:
                os.mkdir(target, 0o700)
            _merge_dir(entry.path, target, fmt, privileged, links)
            _copy_meta(st, target, privileged, is_link=False)
            continue
        _remove_any(target)
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], target)
                continue
            shutil.copyfile(entry.path, target, follow_symlinks=False)
            _copy_meta(st, target, privileged, is_link=False)
            if st.st_nlink > 1:
                links[key] = target
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.path), target)
            _copy_meta(st, target, privileged, is_link=True)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(target, 0o600)
            _copy_meta(st, target, privileged, is_link=False)
        elif (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and privileged:
            os.mknod(target, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
            _copy_meta(st, target, privileged, is_link=False)


# -- snapshot lifecycle ----------------------------------------------------------------------


def _read_meta(sdir: Path) -> dict[str, Any] | None:
    try:
        return orjson.loads((sdir / "meta.json").read_bytes())  # type: ignore[no-any-return]
    except (FileNotFoundError, orjson.JSONDecodeError, NotADirectoryError):
        return None


def _chain_format(store: ImageStore, chain_dir: Path) -> str:
    cache_key = "chainfmt:" + chain_dir.name
    fmt = store._docs.get(cache_key)
    if fmt is None:
        meta = orjson.loads((chain_dir / "meta.json").read_bytes())
        fmt = store._docs[cache_key] = str(meta.get("whiteouts", "oci"))
    return str(fmt)


def _create(
    store: ImageStore, sdir: Path, key: str, image: str, chains: list[Path], formats: list[str], kind: str
) -> Path:
    rootfs = sdir / "rootfs"
    meta = {
        "key": key,
        "image": image,
        "chains": [c.name for c in chains],
        "kind": kind,
        "created": time.time(),
    }
    if kind == "overlay":
        with contextlib.suppress(FileExistsError):
            os.mkdir(sdir)
        for sub in ("upper", "work", "rootfs"):
            with contextlib.suppress(FileExistsError):
                os.mkdir(sdir / sub)
        lowers = [c / "diff" for c in reversed(chains)] or [store.chains_dir / "empty" / "diff"]
        if not os.path.ismount(rootfs):
            mount_overlay(store.mount_source, rootfs, lowers, sdir / "upper", sdir / "work")
    else:
        sdir.mkdir(parents=True, exist_ok=True)
        tmp = sdir / f".rootfs-{uuid.uuid4().hex[:8]}"
        try:
            flatten([(c / "diff", f) for c, f in zip(chains, formats, strict=True)], tmp)
            if rootfs.exists():
                safe_rmtree(rootfs)
            os.rename(tmp, rootfs)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    tmp_meta = sdir / ".meta.json.tmp"
    tmp_meta.write_bytes(orjson.dumps(meta))
    os.replace(tmp_meta, sdir / "meta.json")
    return rootfs


async def create_snapshot(store: ImageStore, key: str, digest: str) -> Path:
    """See :meth:`ImageStore.create_snapshot`."""
    async with store._key_lock("snapshot:" + key):
        sdir = snapshot_dir(store, key)
        meta = _read_meta(sdir)
        if meta is not None and meta.get("key") == key:
            return await asyncio.to_thread(_reuse, store, sdir, meta)
        top = store._resolve_or_raise(digest)
        manifest_digest = store.manifest_for_platform(top)
        overlay = store._overlay_ok
        if overlay is None:  # the probe mounts and unmounts: never leave it half-way on a cancel
            probe = asyncio.ensure_future(asyncio.to_thread(store.overlay_supported))
            try:
                overlay = await asyncio.shield(probe)
            except BaseException:
                with contextlib.suppress(BaseException):
                    await probe
                raise
        created = False
        try:
            async with store.lease():  # GC must not take the layers between unpack and mount
                await store.unpack(manifest_digest)
                chains = [store.chain_path(cid) for cid, _, _ in store.layer_chain(manifest_digest)]
                formats = [_chain_format(store, c) for c in chains]
                kind = "overlay" if overlay and all(f == "overlay" for f in formats) else "copy"
                work = asyncio.ensure_future(
                    asyncio.to_thread(_create, store, sdir, key, manifest_digest, chains, formats, kind)
                )
                try:
                    rootfs = await asyncio.shield(work)
                    created = True
                except BaseException:
                    # cancelled or failed: let the worker finish first, so that no mount
                    # appears after the cleanup, then leave nothing behind
                    with contextlib.suppress(BaseException):
                        await work
                    await asyncio.to_thread(_destroy, sdir)
                    raise
            return rootfs
        except BaseException:
            if created:  # cancelled while releasing the lease: the caller never gets the rootfs
                await asyncio.to_thread(_destroy, sdir)
            raise


def _reuse(store: ImageStore, sdir: Path, meta: dict[str, Any]) -> Path:
    rootfs = sdir / "rootfs"
    if meta.get("kind") == "overlay" and not os.path.ismount(rootfs):
        # e.g. after a host reboot: the directories are there, the mount is not
        chains = [store.chains_dir / c for c in meta.get("chains", [])]
        lowers = [c / "diff" for c in reversed(chains)] or [store.chains_dir / "empty" / "diff"]
        mount_overlay(store.mount_source, rootfs, lowers, sdir / "upper", sdir / "work")
    return rootfs


def _destroy(sdir: Path) -> None:
    unmount(sdir / "rootfs")
    safe_rmtree(sdir)


async def remove_snapshot(store: ImageStore, key: str) -> None:
    """See :meth:`ImageStore.remove_snapshot`."""
    async with store._key_lock("snapshot:" + key):
        sdir = snapshot_dir(store, key)
        await asyncio.to_thread(_destroy, sdir)
    store._drop_key_lock("snapshot:" + key)


def list_snapshots(store: ImageStore) -> list[SnapshotInfo]:
    from .store import SnapshotInfo

    out: list[SnapshotInfo] = []
    for sdir in sorted(store.snapshots_dir.iterdir()):
        meta = _read_meta(sdir)
        if meta is None:
            continue
        rootfs = sdir / "rootfs"
        out.append(
            SnapshotInfo(
                key=str(meta["key"]),
                image=str(meta.get("image", "")),
                rootfs=rootfs,
                kind=str(meta.get("kind", "")),
                mounted=os.path.ismount(rootfs),
                created=float(meta.get("created", 0.0)),
                chains=list(meta.get("chains", [])),
            )
        )
    return out
