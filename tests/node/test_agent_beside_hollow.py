"""The real node and hollow nodes in one `cloudlet up`: each runs the pods bound to it.

A pod pinned to the machine's node (nodeSelector on its hostname label) gets a
real runc container; a pod pinned to a hollow node is only "run" by the
hollow-node manager; the real agent never touches it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.harness import CloudletProcess, wait_until
from tests.e2e.test_pods import host_leftovers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root (runc, netns, cgroups)")


def _pinned(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1, "nodeSelector": {"kubernetes.io/hostname": node},
                     "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


def test_real_node_beside_hollow_nodes(tmp_path: Path) -> None:
    from cloudlet.network.cni import pick_free_cidr

    proc = CloudletProcess(tmp_path / "d", node=True,
                           extra_args=["--pod-cidr", pick_free_cidr(), "--node-name", "real-node", "--hollow-nodes", "2"])
    try:
        proc.start(timeout=60)

        def ready_nodes() -> list[str]:
            items = json.loads(proc.kubectl("get", "nodes", "-o", "json").stdout)["items"]
            ready = [n["metadata"]["name"] for n in items
                     if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or ())]
            return sorted(ready) if len(ready) == 3 else []

        assert wait_until(ready_nodes, timeout=30, interval=0.3, what="3 Ready nodes") == \
            ["hollow-node-0", "hollow-node-1", "real-node"]
        proc.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            _pinned("on-real", "real-node"), _pinned("on-hollow", "hollow-node-1")]}))

        def running(name: str) -> dict | None:
            st = json.loads(proc.kubectl("get", "pod", name, "-o", "json").stdout).get("status") or {}
            return st if st.get("phase") == "Running" else None

        real = wait_until(lambda: running("on-real"), timeout=60, interval=0.3, what="real pod running")
        hollow = wait_until(lambda: running("on-hollow"), timeout=60, interval=0.3, what="hollow pod running")
        assert real["containerStatuses"][0]["containerID"].startswith("runc://")
        assert hollow["containerStatuses"][0]["containerID"].startswith("hollow://")
        assert len(host_leftovers(proc.data_dir).get("netns", [])) == 1  # only the real pod has a namespace
    finally:
        proc.stop()
        proc.cleanup_node()
        assert host_leftovers(proc.data_dir, include_bridge=True) == {}
