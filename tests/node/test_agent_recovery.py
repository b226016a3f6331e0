"""Node agent restarts: running pods are adopted, not duplicated or orphaned.

A real `cloudlet up` with its node agent runs a pod; the server is stopped
(SIGTERM) and later killed (SIGKILL) and started again on the same data dir:
the pod keeps its container (same containerID, same host process, restart
count 0) and no second sandbox appears. Started under another node name, the
agent removes the sandbox of the pod no longer bound to it; started with
``--no-node``, everything the node agent created is removed from the host.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.e2e.harness import CloudletProcess, wait_until
from tests.e2e.test_pods import NODE, host_leftovers, pod_cgroup_pids

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root (runc, netns, cgroups)")


def _status(proc: CloudletProcess, name: str) -> dict:
    r = proc.kubectl("get", "pod", name, "-o", "json")
    return json.loads(r.stdout).get("status") or {}


def _running(proc: CloudletProcess, name: str) -> dict | None:
    st = _status(proc, name)
    cs = (st.get("containerStatuses") or [{}])[0]
    return cs if st.get("phase") == "Running" and "running" in (cs.get("state") or {}) else None


def test_restart_adopts_running_pods_and_cleans_up(tmp_path: Path) -> None:
    from cloudlet.network.cni import pick_free_cidr

    cidr = pick_free_cidr()
    args = ["--pod-cidr", cidr, "--node-name", NODE]
    proc = CloudletProcess(tmp_path / "d", node=True, extra_args=args)
    try:
        proc.start(timeout=60)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "keep"},
               "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                        "command": ["sleep", "3600"]}]}}
        proc.kubectl("apply", "-f", "-", input=json.dumps(pod))
        cs = wait_until(lambda: _running(proc, "keep"), timeout=60, interval=0.3, what="pod running")
        uid = json.loads(proc.kubectl("get", "pod", "keep", "-o", "json").stdout)["metadata"]["uid"]
        pids = sorted(pod_cgroup_pids(uid))
        assert pids
        before = host_leftovers(proc.data_dir)
        for restart in ("stop", "kill9"):
            if restart == "stop":
                proc.stop()
            else:
                proc.kill9()
            assert sorted(pod_cgroup_pids(uid)) == pids  # the pod outlives its agent
            proc.start(timeout=60)
            # the node is Ready again and the pod keeps its container
            time.sleep(1.0)
            again = wait_until(lambda: _running(proc, "keep"), timeout=30, interval=0.3, what="pod still running")
            assert again["containerID"] == cs["containerID"] and again["restartCount"] == 0
            assert sorted(pod_cgroup_pids(uid)) == pids
            now = host_leftovers(proc.data_dir)
            assert {k: len(v) for k, v in now.items()} == {k: len(v) for k, v in before.items()}, (before, now)
        # a pod no longer bound here: its sandbox goes
        proc.stop()
        proc.extra_args = ["--pod-cidr", cidr, "--node-name", "another-node"]
        proc.start(timeout=60)
        wait_until(lambda: not pod_cgroup_pids(uid) and not (proc.data_dir / "pods" / uid).exists(),
                   timeout=30, interval=0.3, what="unbound pod removed from the host")
        left = host_leftovers(proc.data_dir)
        assert not left.get("netns") and not left.get("veth") and not left.get("conmon"), left
        # --no-node: nothing of the node agent stays on the host
        proc.stop()
        proc.extra_args = ["--pod-cidr", cidr]
        proc.node = False
        proc.start(timeout=60)
        proc.stop()
        assert host_leftovers(proc.data_dir, include_bridge=True) == {}
    finally:
        proc.stop()
        proc.cleanup_node()
        assert host_leftovers(proc.data_dir, include_bridge=True) == {}
