"""HPA reaction benchmark: load start -> scale-up decision -> new pods Ready, on real pods.

One `cloudlet up` with its node agent (runc, CNI, the built-in busybox) runs a
Deployment whose container burns a cpu while ``/tmp/burn`` exists (cpu request
100m), with a HorizontalPodAutoscaler (50 %, min 1, max 3). For each setting
of the two intervals that bound the reaction — the node's stats sampling
(``--housekeeping-interval``, metrics-server's resolution) and the HPA sync
period (``--horizontal-pod-autoscaler-sync-period``) — it measures:

* ``decision_s``: from ``kubectl exec ... touch /tmp/burn`` (load start) to the
  Deployment's ``spec.replicas`` going up (the HPA's scale-up write);
* ``ready_s``: from load start to the new replicas being Ready
  (``status.readyReplicas`` = the new ``spec.replicas``).

Kubernetes' defaults (10 s kubelet/metrics-server resolution, 15 s sync) are one
of the settings, so the figure compares with what a cluster gives out of the box.
Writes bench/results/hpa.json. Needs root.
Usage: python bench/hpa.py [--settings 10:15,2:2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.e2e.harness import CloudletProcess, wait_until  # noqa: E402

BURNER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: busybox
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "while true; do if [ -f /tmp/burn ]; then :; else sleep 0.2; fi; done"]
        resources: {requests: {cpu: 100m}}
        readinessProbe: {exec: {command: ["true"]}, periodSeconds: 1}
"""


def deployment(proc: CloudletProcess) -> dict[str, Any]:
    return json.loads(proc.kubectl("get", "deployment", "burner", "-o", "json").stdout)


def run_setting(housekeeping: float, sync: float) -> dict[str, Any]:
    from cloudlet.network.cni import pick_free_cidr

    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-hpa-") as d:
        proc = CloudletProcess(Path(d), node=True, extra_args=[
            "--pod-cidr", pick_free_cidr(), "--housekeeping-interval", str(housekeeping),
            "--horizontal-pod-autoscaler-sync-period", str(sync)])
        proc.start(timeout=60)
        try:
            proc.kubectl("apply", "-f", "-", input=BURNER)
            wait_until(lambda: deployment(proc).get("status", {}).get("readyReplicas") == 1, timeout=60, what="1 ready")
            proc.kubectl("autoscale", "deployment", "burner", "--cpu-percent=50", "--min=1", "--max=3")
            # let the HPA see an idle pod first (ScalingActive), as in a running cluster
            wait_until(lambda: '"ScalingActive"' in proc.kubectl("get", "hpa.v2.autoscaling", "burner", "-o", "json").stdout
                       and json.loads(proc.kubectl("get", "hpa.v2.autoscaling", "burner", "-o", "json").stdout)
                       .get("status", {}).get("currentMetrics"), timeout=120, interval=0.5, what="HPA active")
            pod = json.loads(proc.kubectl("get", "pods", "-l", "app=burner", "-o", "json").stdout)["items"][0]["metadata"]["name"]
            t0 = time.perf_counter()
            proc.kubectl("exec", pod, "--", "touch", "/tmp/burn")
            wait_until(lambda: deployment(proc)["spec"]["replicas"] > 1, timeout=180, interval=0.1, what="scale-up decision")
            decision = time.perf_counter() - t0
            target = deployment(proc)["spec"]["replicas"]
            wait_until(lambda: deployment(proc).get("status", {}).get("readyReplicas", 0) >= target, timeout=180,
                       interval=0.1, what="new pods ready")
            ready = time.perf_counter() - t0
            proc.kubectl("delete", "pods", "--all", "--grace-period=1", "--wait=true", check=False, timeout=120)
            proc.kubectl("delete", "deployment", "burner", "--wait=true", check=False, timeout=120)
        finally:
            proc.stop()
            proc.cleanup_node()
    return {"housekeeping_interval_s": housekeeping, "hpa_sync_period_s": sync, "decision_s": round(decision, 2),
            "ready_s": round(ready, 2), "scaled_to": target}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--settings", default="10:15,2:2", help="housekeeping:sync pairs, comma separated")
    args = p.parse_args()
    results = []
    for pair in args.settings.split(","):
        hk, sync = (float(x) for x in pair.split(":"))
        r = run_setting(hk, sync)
        print(json.dumps(r))
        results.append(r)
    out = {"runs": results, "note": "decision = load start -> Deployment spec.replicas raised; ready = -> new replicas Ready. "
                                    "The first setting is Kubernetes' defaults (10 s resolution, 15 s sync)."}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "hpa.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
