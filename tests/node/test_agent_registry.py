"""Pods whose image comes from a real registry that wants credentials.

A real ``docker-registry`` (htpasswd auth) on a loopback port receives the
built-in busybox image through ``cloudlet image push``; a pod naming it with
``imagePullSecrets`` (a ``kubernetes.io/dockerconfigjson`` Secret made by
``kubectl create secret docker-registry``) is pulled (``Pulling``/``Pulled``
with kubelet's message and the image size) and runs; the same image without
the secret fails with ``ErrImagePull`` and then ``ImagePullBackOff``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import CLOUDLET, wait_until
from tests.e2e.test_pods import cstatus, events_for, start_node, status_of, stop_and_check_clean
from tests.image.registry_fixture import REGISTRY_BIN, start_registry

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root (runc, netns, cgroups)"),
    pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason="docker-registry is not installed"),
]


def _pod(name: str, image: str, secret: str | None) -> dict:
    spec: dict = {"terminationGracePeriodSeconds": 1,
                  "containers": [{"name": "c", "image": image, "imagePullPolicy": "Always",
                                  "command": ["sh", "-c", "echo pulled and running; sleep 600"]}]}
    if secret:
        spec["imagePullSecrets"] = [{"name": secret}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_private_registry_pull_with_image_pull_secrets(tmp_path: Path) -> None:
    reg = start_registry(tmp_path / "registry", auth="htpasswd")
    node = start_node(tmp_path / "node")
    try:
        image = f"{reg.host}/private/busybox:1.0"
        push = subprocess.run([CLOUDLET, "image", "push", "busybox", image, "--data-dir", str(node.data_dir),
                               "--creds", "alice:wonderland", "--quiet"], capture_output=True, text=True, timeout=120)
        assert push.returncode == 0, push.stderr
        node.kubectl("create", "secret", "docker-registry", "regcred", f"--docker-server={reg.host}",
                     "--docker-username=alice", "--docker-password=wonderland")
        # without credentials first (see the report: once a pod's secret authorised a pull, the registry
        # client keeps that authorisation for the host and a later pull without a secret succeeds too)
        node.kubectl("apply", "-f", "-", input=json.dumps(_pod("nocreds", image, None)))

        def backing_off() -> bool:
            w = (cstatus(node, "nocreds").get("state") or {}).get("waiting") or {}
            return w.get("reason") == "ImagePullBackOff"

        wait_until(backing_off, timeout=90, interval=0.3, what="ImagePullBackOff without credentials")
        failed = [m for e in events_for(node, "nocreds") if e["reason"] == "Failed" for m in [e["message"]]]
        assert any(m.startswith(f'Failed to pull image "{image}"') for m in failed), failed
        assert "Error: ErrImagePull" in failed
        node.kubectl("delete", "pod", "nocreds", "--wait=true")

        node.kubectl("apply", "-f", "-", input=json.dumps(_pod("private", image, "regcred")))
        wait_until(lambda: status_of(node, "private").get("phase") == "Running", timeout=90, interval=0.3,
                   what="private-image pod running")
        msgs = [(e["reason"], e["message"]) for e in events_for(node, "private")]
        assert ("Pulling", f'Pulling image "{image}"') in msgs
        pulled = [m for r, m in msgs if r == "Pulled"]
        assert pulled and re.fullmatch(
            rf'Successfully pulled image "{re.escape(image)}" in [0-9.]+(µs|ms|s) \([0-9.]+(µs|ms|s) including '
            r"waiting\)\. Image size: [1-9][0-9]* bytes\.", pulled[0]), pulled
        assert cstatus(node, "private")["imageID"].startswith(f"{reg.host}/private/busybox@sha256:")
    finally:
        stop_and_check_clean(node)
        reg.stop()
