"""Image pull throughput from a local registry, against plain ``curl`` of the same blobs.

Setup, in one run: Debian's ``docker-registry`` (distribution 2.8) on a free
loopback port with a temp storage dir; a multi-layer image of random
(incompressible) data, ~100 MB by default, written into a scratch image
store and pushed there.

Measured, each ``--runs`` times, alternating:

* ``cloudlet`` — :class:`cloudlet.image.pull.Puller` into a fresh
  ``ImageStore``: manifest, config and layers concurrently, each streamed
  through the content store's verified ingest (sha256 while writing, fsync,
  rename), then the tag. Wall time from the call to its return.
* ``curl`` — one ``curl`` process fetching the same blob URLs one after the
  other into files (no hashing, no fsync): the plain download baseline.
* ``curl --parallel`` — the same with curl's parallel transfers.
* ``curl_sha256sum_fsync`` — plain curl, then ``sha256sum`` of the files and
  an fsync of each: the same work cloudlet does, done one step after the
  other (informative; the headline ratio is against plain curl).

MB/s is total blob bytes (10^6) over the best run's wall time; the ratio is
cloudlet's MB/s over each baseline's. The machine is shared (2 cores), so
the best of several runs is reported next to the median.

Prints a table and writes JSON to bench/results/images_pull.json.
Usage: python bench/images_pull.py [--mb 100] [--layers 6] [--runs 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloudlet.image.pull import Puller  # noqa: E402
from cloudlet.image.push import push  # noqa: E402
from cloudlet.image.registry import RegistryClient  # noqa: E402
from cloudlet.image.store import ImageStore  # noqa: E402
from tests.image.registry_fixture import make_image, start_registry  # noqa: E402


def layer_sizes(total_mb: int, layers: int) -> list[int]:
    """Unequal layers (like real images: a big base, smaller ones on top) summing to ~total_mb."""
    weights = [2 ** (layers - i) for i in range(layers)]
    total = total_mb * 1_000_000
    return [max(1, total * w // sum(weights)) for w in weights]


async def pull_once(registry_host: str, work: Path, concurrency: int) -> tuple[float, int]:
    root = work / "pull-store"
    shutil.rmtree(root, ignore_errors=True)
    store = ImageStore(root)
    try:
        async with RegistryClient(docker_config=False) as client:
            t0 = time.perf_counter()
            res = await Puller(store, client, concurrency=concurrency).pull(f"{registry_host}/bench/big:1")
            took = time.perf_counter() - t0
        return took, res.downloaded
    finally:
        store.close()
        shutil.rmtree(root, ignore_errors=True)


def curl_once(urls: list[str], work: Path, parallel: bool, verify: bool = False) -> float:
    """curl the blobs into files; with ``verify`` also sha256sum them and fsync each file."""
    out = work / "curl"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    args = ["curl", "-sS", "--no-progress-meter", "--fail"]
    if parallel:
        args += ["--parallel", "--parallel-max", "8"]
    files = [out / f"blob{i}" for i in range(len(urls))]
    for u, f in zip(urls, files, strict=True):
        args += [u, "-o", str(f)]
    t0 = time.perf_counter()
    subprocess.run(args, check=True)
    if verify:
        subprocess.run(["sha256sum", *map(str, files)], check=True, stdout=subprocess.DEVNULL)
        for f in files:
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    took = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return took


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudlet-bench-pull-"))
    reg = start_registry(work / "registry")
    try:
        src = ImageStore(work / "src")
        sizes = layer_sizes(args.mb, args.layers)
        digest = await asyncio.to_thread(make_image, src, "big:1", sizes, 7, False)
        async with RegistryClient(docker_config=False) as client:
            t0 = time.perf_counter()
            pushed = await push(src, client, "big:1", f"{reg.host}/bench/big:1")
            push_s = time.perf_counter() - t0
        manifest = json.loads(src.content.get_bytes(digest))
        blobs = [manifest["config"], *manifest["layers"]]
        total = sum(int(b["size"]) for b in blobs)
        urls = [f"{reg.url}/v2/bench/big/blobs/{b['digest']}" for b in blobs]
        src.close()

        times: dict[str, list[float]] = {"cloudlet": [], "curl": [], "curl_parallel": [],
                                         "curl_sha256sum_fsync": []}
        for _ in range(args.runs):
            took, downloaded = await pull_once(reg.host, work, args.concurrency)
            assert downloaded == total, (downloaded, total)
            times["cloudlet"].append(took)
            times["curl"].append(await asyncio.to_thread(curl_once, urls, work, False))
            times["curl_parallel"].append(await asyncio.to_thread(curl_once, urls, work, True))
            times["curl_sha256sum_fsync"].append(await asyncio.to_thread(curl_once, urls, work, False, True))
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)

    mb = total / 1e6

    def rate(ts: list[float]) -> dict[str, float]:
        return {"best_s": min(ts), "median_s": statistics.median(ts),
                "mb_per_s": mb / min(ts), "median_mb_per_s": mb / statistics.median(ts)}

    results = {name: rate(ts) for name, ts in times.items()}
    result = {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "loop": "asyncio"},
        "image": {"bytes": total, "layers": len(manifest["layers"]), "layer_sizes": sizes,
                  "compressed": False},
        "params": {"runs": args.runs, "concurrency": args.concurrency},
        "push_s": push_s, "push_mb_per_s": mb / push_s, "push_uploaded": pushed.uploaded,
        "results": results,
        "ratio_vs_curl": results["cloudlet"]["mb_per_s"] / results["curl"]["mb_per_s"],
        "ratio_vs_curl_parallel": results["cloudlet"]["mb_per_s"] / results["curl_parallel"]["mb_per_s"],
        "ratio_vs_curl_sha256sum_fsync":
            results["cloudlet"]["mb_per_s"] / results["curl_sha256sum_fsync"]["mb_per_s"],
        "note": "cloudlet hashes (sha256) and fsyncs every blob; curl only writes files",
    }
    print(f"image: {mb:.1f} MB in {len(manifest['layers'])} layers; push {mb / push_s:.0f} MB/s")
    print(f"{'method':<22}{'best s':>9}{'MB/s':>9}{'median MB/s':>13}")
    for name, r in results.items():
        print(f"{name:<22}{r['best_s']:>9.3f}{r['mb_per_s']:>9.0f}{r['median_mb_per_s']:>13.0f}")
    print(f"ratio cloudlet/curl: {result['ratio_vs_curl']:.2f}  "
          f"cloudlet/curl --parallel: {result['ratio_vs_curl_parallel']:.2f}  "
          f"cloudlet/(curl+sha256sum+fsync): {result['ratio_vs_curl_sha256sum_fsync']:.2f}")
    out = ROOT / "bench" / "results" / "images_pull.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
