"""Image store benchmark: unpacking a ~100 MB multi-layer image, and snapshot creation.

* **unpack** — an image of N layers (default 8) of random-content files
  (default 100 MB uncompressed in total; half the layers gzip, half plain tar)
  is written into a fresh :class:`ImageStore` and unpacked cold with
  ``store.unpack``. Baseline, same run: GNU ``tar -x`` of the same layer blobs
  into one directory (no verification, no per-layer dirs).
* **snapshots** — 100 container snapshots from one image with the overlay
  snapshotter (mean / p50 / p99 ms per ``create_snapshot``, then per
  ``remove_snapshot``), for busybox and for the 100 MB image; the copy
  fallback for busybox (100) and the 100 MB image (a few). Baseline: the
  ``mount -t overlay`` command per snapshot (a process per mount).
* **pull** throughput against ``curl`` is the registry client's part:
  ``bench/images_pull.py`` -> ``bench/results/images_pull.json``.

Prints a summary and writes JSON to bench/results/images.json.
Usage: python bench/images.py [--mb 100] [--layers 8] [--snapshots 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from cloudlet.image.manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
)
from cloudlet.image.snapshot import unmount
from cloudlet.image.store import ImageStore


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layers(total_mb: int, layers: int, seed: int = 7) -> list[tuple[bytes, bytes, str]]:
    """``(uncompressed tar, blob, media type)`` per layer: random files in nested dirs."""
    rnd = random.Random(seed)
    per_layer = total_mb * (1 << 20) // layers
    out = []
    for li in range(layers):
        buf = io.BytesIO()
        written = 0
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            i = 0
            while written < per_layer:
                size = min(rnd.choice([512, 4096, 16384, 65536, 262144, 1 << 20]), per_layer - written)
                info = tarfile.TarInfo(f"layer{li}/d{i % 17}/s{i % 5}/file{i}")
                info.size = size
                info.mode = 0o644
                info.mtime = 1_700_000_000
                tar.addfile(info, io.BytesIO(rnd.randbytes(size)))
                written += size
                i += 1
            # a few links and an overwrite of a lower layer's file
            link = tarfile.TarInfo(f"layer{li}/link")
            link.type = tarfile.SYMTYPE
            link.linkname = "d0"
            tar.addfile(link)
        data = buf.getvalue()
        if li % 2 == 0:
            out.append((data, gzip.compress(data, compresslevel=1, mtime=0), MEDIA_TYPE_OCI_LAYER_GZIP))
        else:
            out.append((data, data, MEDIA_TYPE_OCI_LAYER))
    return out


def store_image(store: ImageStore, layers: list[tuple[bytes, bytes, str]], name: str) -> str:
    descs = []
    for _, blob, media_type in layers:
        store.content.put_bytes(blob)
        descs.append({"mediaType": media_type, "digest": _sha(blob), "size": len(blob)})
    config = orjson.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                           "rootfs": {"type": "layers", "diff_ids": [_sha(t) for t, _, _ in layers]}})
    store.content.put_bytes(config)
    manifest = orjson.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                             "config": {"mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": _sha(config),
                                        "size": len(config)}, "layers": descs})
    digest = store.content.put_bytes(manifest)
    store.tag(name, digest)
    return digest


def _stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(ms[len(ms) // 2], 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "max_ms": round(ms[-1], 3),
    }


async def bench_snapshots(store: ImageStore, digest: str, n: int, prefix: str) -> dict[str, Any]:
    await store.create_snapshot(f"{prefix}-warm", digest)  # unpack + overlay probe, not measured
    await store.remove_snapshot(f"{prefix}-warm")
    create, remove = [], []
    for i in range(n):
        t = time.perf_counter()
        await store.create_snapshot(f"{prefix}-{i}", digest)
        create.append(time.perf_counter() - t)
    for i in range(n):
        t = time.perf_counter()
        await store.remove_snapshot(f"{prefix}-{i}")
        remove.append(time.perf_counter() - t)
    return {"create": _stats(create), "remove": _stats(remove)}


def tar_baseline(store: ImageStore, layers: list[tuple[bytes, bytes, str]], dest: Path) -> float:
    dest.mkdir()
    t = time.perf_counter()
    for _, blob, media_type in layers:
        path = store.content.path(_sha(blob))
        flags = "-xzf" if media_type == MEDIA_TYPE_OCI_LAYER_GZIP else "-xf"
        subprocess.run(["tar", flags, str(path), "-C", str(dest)], check=True)
    elapsed = time.perf_counter() - t
    shutil.rmtree(dest)
    return elapsed


def mount_cli_baseline(store: ImageStore, digest: str, n: int, work: Path) -> dict[str, Any]:
    lowers = ":".join(str(store.chain_path(c) / "diff") for c, _, _ in reversed(store.layer_chain(digest)))
    samples = []
    for i in range(n):
        d = work / f"m{i}"
        for sub in ("u", "w", "r"):
            (d / sub).mkdir(parents=True)
        t = time.perf_counter()
        subprocess.run(["mount", "-t", "overlay", f"cloudlet-{store.instance_id}-bench", "-o",
                        f"lowerdir={lowers},upperdir={d / 'u'},workdir={d / 'w'}", str(d / "r")], check=True)
        samples.append(time.perf_counter() - t)
    for i in range(n):
        unmount(work / f"m{i}" / "r")
    shutil.rmtree(work)
    return _stats(samples)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--snapshots", type=int, default=100)
    args = ap.parse_args()
    out: dict[str, Any] = {"params": vars(args)}
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-images-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        layers = make_layers(args.mb, args.layers)
        gen = time.perf_counter() - t
        print(f"generated {len(layers)} layers in {gen:.1f}s")

        store = ImageStore(root / "images")
        digest = store_image(store, layers, "bench.local/big:1")
        t = time.perf_counter()
        await store.unpack(digest)
        unpack_s = time.perf_counter() - t
        uncompressed = sum(len(t_) for t_, _, _ in layers)
        compressed = sum(len(b) for _, b, _ in layers)
        # baseline: GNU tar extracting the same blobs, no verification
        tar_s = await asyncio.to_thread(tar_baseline, store, layers, root / "tar-x")
        out["unpack"] = {
            "layers": len(layers),
            "uncompressed_mb": round(uncompressed / (1 << 20), 1),
            "compressed_mb": round(compressed / (1 << 20), 1),
            "seconds": round(unpack_s, 3),
            "mb_per_s": round(uncompressed / (1 << 20) / unpack_s, 1),
            "baseline_gnu_tar_seconds": round(tar_s, 3),
        }
        print(f"unpack {out['unpack']['uncompressed_mb']} MB in {len(layers)} layers: {unpack_s:.2f}s "
              f"({out['unpack']['mb_per_s']} MB/s); GNU tar -x baseline {tar_s:.2f}s")

        busybox = await store.ensure_builtin()
        snaps: dict[str, Any] = {"overlay_supported": store.overlay_supported()}
        snaps["overlay_busybox"] = await bench_snapshots(store, busybox, args.snapshots, "bb")
        snaps["overlay_big"] = await bench_snapshots(store, digest, args.snapshots, "big")
        snaps["baseline_mount_command"] = await asyncio.to_thread(
            mount_cli_baseline, store, digest, min(args.snapshots, 50), root / "mnt")
        copy_store = ImageStore(root / "images", snapshotter="copy")
        snaps["copy_busybox"] = await bench_snapshots(copy_store, busybox, args.snapshots, "cbb")
        snaps["copy_big"] = await bench_snapshots(copy_store, digest, 3, "cbig")
        copy_store.close()
        out["snapshots"] = snaps
        for k, v in snaps.items():
            if isinstance(v, dict) and "create" in v:
                print(f"snapshot {k}: create mean {v['create']['mean_ms']} ms p99 {v['create']['p99_ms']} ms; "
                      f"remove mean {v['remove']['mean_ms']} ms")
        print(f"baseline mount(8) per overlay: mean {snaps['baseline_mount_command']['mean_ms']} ms")
        out["disk_usage"] = store.disk_usage()
        out["gc"] = await store.gc()

        store.close()
    out["machine"] = {"cpus": os.cpu_count(), "load1": os.getloadavg()[0]}
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    (res / "images.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
