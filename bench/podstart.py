"""Pod start benchmark: API create -> Running through the real node agent, vs bare runc.

One `cloudlet up` with its node agent (real runc + conmon, CNI pod network,
the built-in busybox image), a free /24 pod CIDR, cleaned up at the end.

* **one at a time** — N pods (``sleep 3600``), each created after the
  previous one is Running: latency from the create request to the watch
  event showing ``phase: Running``, p50/p99.
* **all at once** — N pods created together (parallel requests): the same
  latency per pod (from its own create), p50/p99, and the batch wall time.
* **baseline** (same run, same machine) — bare ``runc run --detach`` of the
  same busybox rootfs (an image-store snapshot) running ``sleep 3600``:
  one at a time and N at once; ``ratio`` = cloudlet p50 / runc p50.
* **memory** — RSS of the server process (API + controllers + node agent)
  with no pods and with ``--rss-pods`` (100) running, per pod delta.
* **leaks** — after deleting every pod, nothing of the instance may be left
  (network namespaces, veths, mounts, cgroups, runc containers, conmon).
* **trace** — where the time goes, per phase: the node agent logs each pod's
  start-up steps (``Observed pod startup duration`` with ``steps_ms``); the
  summary gives p50/p99 per step plus ``api_to_worker`` (create request to the
  agent's pod worker: API, scheduler, binding, informer) and
  ``started_to_watch`` (container started to the Running watch event: status
  patch, store, watch).

Prints a summary and writes JSON to bench/results/podstart.json.
Usage: python bench/podstart.py [--pods 50] [--rss-pods 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import CloudletProcess  # noqa: E402
from tests.e2e.test_pods import host_leftovers  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(values, 0.5), "p99_ms": pct(values, 0.99), "max_ms": round(max(values) * 1000, 1),
            "n": len(values)}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "podstart"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


class RunningWatch:
    """A pods watch in a thread: the monotonic time each pod was first seen Running."""

    def __init__(self, proc: CloudletProcess) -> None:
        self.proc = proc
        self.running: dict[str, float] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        req = urllib.request.Request(self.proc.url + "/api/v1/namespaces/default/pods?watch=1&labelSelector=bench%3Dpodstart")
        req.add_header("Authorization", f"Bearer {self.proc.token}")
        with urllib.request.urlopen(req, context=self.proc.ssl_context(), timeout=3600) as resp:
            for line in resp:
                ev = json.loads(line)
                obj = ev.get("object") or {}
                if (obj.get("status") or {}).get("phase") == "Running":
                    name = obj["metadata"]["name"]
                    with self.cond:
                        self.running.setdefault(name, time.monotonic())
                        self.cond.notify_all()

    def wait(self, names: list[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(n in self.running for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [n for n in names if n not in self.running]
                    raise TimeoutError(f"pods not Running: {missing[:5]}... ({len(missing)})")
                self.cond.wait(left)


CREATED_WALL: dict[str, float] = {}  # pod name -> wall clock of its create request


def create(proc: CloudletProcess, name: str) -> float:
    CREATED_WALL[name] = time.time()
    t0 = time.monotonic()
    code, body = proc.request("POST", "/api/v1/namespaces/default/pods", pod(name))
    if code != 201:
        raise RuntimeError(f"create {name}: {code} {body}")
    return t0


def delete_all(proc: CloudletProcess) -> None:
    proc.kubectl("delete", "pods", "-l", "bench=podstart", "--wait=true", "--timeout=300s", timeout=360)


def traces(proc: CloudletProcess) -> dict[str, dict[str, Any]]:
    """The agent's start-up trace lines by pod name."""
    out: dict[str, dict[str, Any]] = {}
    for line in proc.log().splitlines():
        if "Observed pod startup duration" not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        out[str(rec.get("pod", "")).split("/")[-1]] = rec
    return out


def trace_summary(proc: CloudletProcess, names: list[str], starts: dict[str, float],
                  running: dict[str, float]) -> dict[str, Any]:
    """p50/p99 per step (ms) over ``names``; see the module docstring."""
    found = traces(proc)
    steps: dict[str, list[float]] = {}
    for n in names:
        rec = found.get(n)
        if rec is None:
            continue
        for k, v in (rec.get("steps_ms") or {}).items():
            steps.setdefault(k, []).append(float(v) / 1000)
        worker_start = float(rec["worker_start"])
        steps.setdefault("api_to_worker", []).append(worker_start - CREATED_WALL[n])
        started_wall = worker_start + float(rec["total_ms"]) / 1000
        running_wall = CREATED_WALL[n] + (running[n] - starts[n])
        steps.setdefault("started_to_watch", []).append(running_wall - started_wall)
    return {k: {"p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99)} for k, v in steps.items()}


# --- baseline: bare runc -----------------------------------------------------------------


def runc_bundle(rootfs: Path, work: Path) -> Path:
    bundle = work / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    subprocess.run(["runc", "spec", "-b", str(bundle)], check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "3600"]
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(cfg))
    return bundle


def runc_run(root: Path, bundle: Path, cid: str) -> float:
    t0 = time.monotonic()
    subprocess.run(["runc", "--root", str(root), "run", "--detach", "-b", str(bundle), cid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def baseline(rootfs: Path, n: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cloudlet-bench-runc-"))
    root = work / "state"
    bundle = runc_bundle(rootfs, work)
    prefix = f"cloudlet-bench-{os.getpid()}"
    try:
        seq = []
        for i in range(n):
            seq.append(runc_run(root, bundle, f"{prefix}-s{i}"))
        with ThreadPoolExecutor(max_workers=n) as ex:
            t0 = time.monotonic()
            conc = list(ex.map(lambda i: runc_run(root, bundle, f"{prefix}-c{i}"), range(n)))
            wall = time.monotonic() - t0
    finally:
        out = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True).stdout
        for cid in out.split():
            subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return {"one_at_a_time": summary(seq), "all_at_once": {**summary(conc), "wall_s": round(wall, 2)}}


async def busybox_rootfs(data_dir: Path) -> tuple[Any, Path]:
    from cloudlet.image.store import ImageStore

    store = ImageStore(data_dir / "images")
    digest = store.resolve("docker.io/library/busybox:latest") or await store.ensure_builtin()
    path = await store.create_snapshot("bench-baseline", digest)
    return store, path


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--rss-pods", type=int, default=100)
    args = ap.parse_args()
    from cloudlet.network.cni import pick_free_cidr

    data = Path(tempfile.mkdtemp(prefix="cloudlet-bench-podstart-"))
    proc = CloudletProcess(data, node=True, extra_args=["--pod-cidr", pick_free_cidr(), "--node-name", "bench-node"])
    result: dict[str, Any] = {"pods": args.pods, "rss_pods": args.rss_pods}
    try:
        proc.start(timeout=60)
        assert proc.proc is not None
        watch = RunningWatch(proc)
        time.sleep(1.0)
        # warm up: the first pod builds nothing new but touches every path once
        t0 = create(proc, "warmup")
        watch.wait(["warmup"])
        result["first_pod_ms"] = round((watch.running["warmup"] - t0) * 1000, 1)
        rss0 = rss_kib(proc.proc.pid)

        seq = []
        seq_starts: dict[str, float] = {}
        for i in range(args.pods):
            name = f"seq-{i}"
            t0 = seq_starts[name] = create(proc, name)
            watch.wait([name])
            seq.append(watch.running[name] - t0)
        result["trace"] = {"one_at_a_time": trace_summary(proc, list(seq_starts), seq_starts, watch.running)}
        delete_all(proc)

        names = [f"batch-{i}" for i in range(args.pods)]
        starts: dict[str, float] = {}
        with ThreadPoolExecutor(max_workers=16) as ex:
            tb = time.monotonic()
            for name, t in zip(names, ex.map(lambda n: create(proc, n), names), strict=True):
                starts[name] = t
        watch.wait(names)
        batch = [watch.running[n] - starts[n] for n in names]
        batch_wall = max(watch.running[n] for n in names) - tb
        result["trace"]["all_at_once"] = trace_summary(proc, names, starts, watch.running)

        more = [f"rss-{i}" for i in range(max(0, args.rss_pods - args.pods))]
        with ThreadPoolExecutor(max_workers=16) as ex:
            list(ex.map(lambda n: create(proc, n), more))
        watch.wait(more)
        time.sleep(2.0)
        rss_full = rss_kib(proc.proc.pid)
        running_now = len(names) + len(more)
        delete_all(proc)
        time.sleep(1.0)
        leaks = host_leftovers(data)

        result["cloudlet"] = {"one_at_a_time": summary(seq),
                              "all_at_once": {**summary(batch), "wall_s": round(batch_wall, 2)}}
        result["memory"] = {"server_rss_mib_idle": round(rss0 / 1024, 1),
                            f"server_rss_mib_{running_now}_pods": round(rss_full / 1024, 1),
                            "per_pod_kib": round((rss_full - rss0) / max(1, running_now), 1)}
        result["leaks_after_delete"] = leaks
        proc.stop()

        async def base() -> dict[str, Any]:
            store, rootfs = await busybox_rootfs(data)
            try:
                return await asyncio.to_thread(baseline, rootfs, args.pods)
            finally:
                await store.remove_snapshot("bench-baseline")

        result["runc_baseline"] = asyncio.run(base())
        c, b = result["cloudlet"], result["runc_baseline"]
        result["ratio_p50"] = {
            "one_at_a_time": round(c["one_at_a_time"]["p50_ms"] / max(0.1, b["one_at_a_time"]["p50_ms"]), 1),
            "all_at_once": round(c["all_at_once"]["p50_ms"] / max(0.1, b["all_at_once"]["p50_ms"]), 1),
        }
    finally:
        proc.stop()
        proc.cleanup_node()
        result["leaks_after_cleanup"] = host_leftovers(data, include_bridge=True)
        shutil.rmtree(data, ignore_errors=True)
    out = ROOT / "bench" / "results" / "podstart.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
