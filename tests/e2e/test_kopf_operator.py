"""A real third-party operator framework against cloudlet: kopf, unchanged.

``tests/e2e/operators/widget.py`` is an ordinary kopf operator; it runs as a
subprocess through kopf's own CLI (``kopf run --standalone``), talking to
cloudlet through the kubeconfig with kopf's own aiohttp-based client. kubectl
then creates, updates and deletes a Widget and the test watches the
operator's effects: its ConfigMap, the Widget's status (patched through the
status subresource), and the finalizer kopf adds and removes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import CloudletProcess

pytest.importorskip("kopf")

OPERATOR = Path(__file__).with_name("operators") / "widget.py"
NS = "kopf-demo"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.demo.cloudlet.dev"},
    "spec": {
        "group": "demo.cloudlet.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "message": {"type": "string"}, "flaky": {"type": "boolean"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }},
        }],
    },
}


class Operator:
    """``kopf run`` as a subprocess, its output captured to a file."""

    def __init__(self, cloudlet: CloudletProcess, log_path: Path) -> None:
        self.log_path = log_path
        env = {**os.environ, "KUBECONFIG": str(cloudlet.kubeconfig), "HOME": str(cloudlet.data_dir)}
        with open(log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kopf", "run", "--standalone", "--verbose", f"--namespace={NS}", str(OPERATOR)],
                stdout=logf, stderr=subprocess.STDOUT, env=env,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def operator(cloudlet: CloudletProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    cloudlet.kubectl("apply", "-f", "-", input=yaml.safe_dump(CRD))
    cloudlet.kubectl("wait", "--for", "condition=established", "--timeout=10s", f"crd/{CRD['metadata']['name']}")
    cloudlet.kubectl("create", "namespace", NS)
    op = Operator(cloudlet, tmp_path_factory.mktemp("kopf") / "operator.log")
    yield op
    op.stop()


def eventually(op: Operator, cloudlet: CloudletProcess, cond: Any, what: str, timeout: float = 20.0) -> Any:
    """Poll ``cond()`` until truthy; on timeout fail with the operator's and cloudlet's logs."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        if op.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(
        f"{what}: not reached (last: {last!r}; operator exit code {op.proc.poll()})\n"
        f"--- operator log ---\n{op.log()[-20000:]}\n--- cloudlet log ---\n{cloudlet.log()[-5000:]}"
    )


def get(cloudlet: CloudletProcess, *args: str) -> Any:
    p = cloudlet.kubectl("get", "-n", NS, *args, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def test_kopf_operator_reacts_to_create_update_delete(cloudlet: CloudletProcess, operator: Operator) -> None:
    t0 = time.monotonic()
    widget = {"apiVersion": "demo.cloudlet.dev/v1", "kind": "Widget",
              "metadata": {"name": "w1", "namespace": NS}, "spec": {"message": "hello", "flaky": True}}
    cloudlet.kubectl("apply", "-f", "-", input=yaml.safe_dump(widget))

    # create: the first attempt fails on purpose; kopf keeps its progress in an
    # annotation on the widget and retries a second later.
    def progress() -> Any:
        ann = (get(cloudlet, "widget", "w1") or {}).get("metadata", {}).get("annotations", {})
        return ann.get("kopf.zalando.org/create_fn")

    state = json.loads(eventually(operator, cloudlet, progress, "kopf progress annotation"))
    assert state["retries"] == 1 and state["success"] is False and state["delayed"], state

    # then the ConfigMap appears, owned by the widget; the status is patched.
    cm = eventually(operator, cloudlet, lambda: get(cloudlet, "configmap", "w1-config"), "configmap created")
    assert cm["data"] == {"message": "hello"}
    w = get(cloudlet, "widget", "w1")
    assert [(o["kind"], o["name"], o["uid"]) for o in cm["metadata"]["ownerReferences"]] == [
        ("Widget", "w1", w["metadata"]["uid"])]

    def created_status() -> Any:
        w = get(cloudlet, "widget", "w1")
        st = (w or {}).get("status", {})
        return w if st.get("create_fn") and st.get("phase") == "Ready" else None

    w = eventually(operator, cloudlet, created_status, "status after create")
    assert w["status"]["create_fn"] == {"configmap": "w1-config", "message": "hello"}
    assert w["status"]["observedMessage"] == "hello"
    assert "kopf.zalando.org/KopfFinalizerMarker" in w["metadata"]["finalizers"]
    # kopf records the last handled state in an annotation once handling is done.
    eventually(operator, cloudlet,
               lambda: "kopf.zalando.org/last-handled-configuration" in
               (get(cloudlet, "widget", "w1") or {}).get("metadata", {}).get("annotations", {}),
               "last-handled-configuration annotation")

    # kopf.info() in the handler is posted (in the background) as a core v1 Event.
    def event() -> Any:
        items = (get(cloudlet, "events") or {}).get("items", [])
        return next((e for e in items if e.get("reason") == "ConfigMapCreated"), None)

    ev = eventually(operator, cloudlet, event, "ConfigMapCreated event")
    assert ev["type"] == "Normal" and ev["message"] == "created configmap w1-config"
    assert (ev["involvedObject"]["kind"], ev["involvedObject"]["name"], ev["involvedObject"]["uid"]) == (
        "Widget", "w1", w["metadata"]["uid"])

    # update: on.update runs for the changed field.
    cloudlet.kubectl("patch", "-n", NS, "widget", "w1", "--type=merge", "-p", '{"spec":{"message":"bye"}}')
    eventually(operator, cloudlet,
               lambda: (get(cloudlet, "configmap", "w1-config") or {}).get("data") == {"message": "bye"},
               "configmap updated")

    def updated_status() -> Any:
        st = (get(cloudlet, "widget", "w1") or {}).get("status", {})
        return st if st.get("update_fn") == {"message": "bye"} and st.get("observedMessage") == "bye" else None

    eventually(operator, cloudlet, updated_status, "status after update")

    # delete: kopf's finalizer runs on.delete, which removes the ConfigMap; then kopf
    # removes its finalizer and the widget goes away.
    cloudlet.kubectl("delete", "-n", NS, "widget", "w1", "--wait=false")
    eventually(operator, cloudlet, lambda: get(cloudlet, "widget", "w1") is None, "widget deleted")
    assert get(cloudlet, "configmap", "w1-config") is None, operator.log()
    log = operator.log()
    for line in ("Handler 'create_fn' failed temporarily", "Handler 'create_fn' succeeded",
                 "Handler 'update_fn' succeeded", "Handler 'delete_fn' succeeded"):
        assert line in log, f"{line!r} not in the operator log:\n{log}"

    assert operator.proc.poll() is None, operator.log()
    assert time.monotonic() - t0 < 60
    assert "Traceback" not in log, log
    assert operator.stop() == 0, operator.log()
