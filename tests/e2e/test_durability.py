"""Crash safety and lifecycle of the process: kill -9, restart, locking, SIGTERM."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import CLOUDLET, CloudletProcess, api_client, free_port, wait_until

NS = "default"
CMS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture(scope="module")
def cloudlet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("cloudlet-durable"))
    proc.start()
    yield proc
    proc.stop()


def restart(proc: CloudletProcess) -> None:
    """Start again on the same data dir and port."""
    proc.start()


class Writer(threading.Thread):
    """Creates configmaps and bumps its own counter until the server goes away."""

    def __init__(self, proc: CloudletProcess, idx: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.proc, self.idx, self.stop = proc, idx, stop
        self.acked: dict[str, dict] = {}  # name -> {data, rv}
        self.counter_acked = 0  # last acknowledged counter value
        self.counter_tried = 0  # last value sent
        self.deleted: list[str] = []
        self.deleting: str | None = None
        self.errors = 0

    def run(self) -> None:
        p = self.proc
        counter = f"counter-{self.idx}"
        try:
            code, _ = p.request("POST", CMS, {"metadata": {"name": counter}, "data": {"n": "0"}}, timeout=10)
            if code != 201:
                return
            i = 0
            while not self.stop.is_set():
                name = f"w{self.idx}-{i}"
                data = {"writer": str(self.idx), "seq": str(i), "payload": "x" * (i % 50)}
                code, body = p.request("POST", CMS, {"metadata": {"name": name}, "data": data}, timeout=10)
                if code != 201:
                    self.errors += 1
                    return
                self.acked[name] = {"data": data, "rv": int(body["metadata"]["resourceVersion"])}
                self.counter_tried = i + 1
                code, _ = p.request("PATCH", f"{CMS}/{counter}", raw=json.dumps({"data": {"n": str(i + 1)}}).encode(),
                                    content_type="application/merge-patch+json", timeout=10)
                if code != 200:
                    self.errors += 1
                    return
                self.counter_acked = i + 1
                if i % 5 == 4:  # delete an earlier object now and then
                    victim = f"w{self.idx}-{i - 2}"
                    self.deleting = victim  # until acknowledged, either outcome is fine
                    self.acked.pop(victim)
                    code, _ = p.request("DELETE", f"{CMS}/{victim}", timeout=10)
                    if code != 200:
                        self.errors += 1
                        return
                    self.deleting = None
                    self.deleted.append(victim)
                i += 1
        except Exception:
            return  # the server was killed mid-request: that write's outcome is unknown


def test_acknowledged_writes_survive_kill9(cloudlet: CloudletProcess) -> None:
    stop = threading.Event()
    writers = [Writer(cloudlet, i, stop) for i in range(6)]
    for w in writers:
        w.start()
    wait_until(lambda: sum(len(w.acked) for w in writers) >= 150, timeout=30, what="150 acknowledged creates")
    cloudlet.kill9()  # in the middle of the writes
    stop.set()
    for w in writers:
        w.join(15)
        assert not w.is_alive()
    assert [w.errors for w in writers] == [0] * len(writers), "every write before the kill succeeded"
    acked = {n: v for w in writers for n, v in w.acked.items()}
    max_rv = max(v["rv"] for v in acked.values())
    restart(cloudlet)
    code, lst = cloudlet.request("GET", CMS)
    assert code == 200
    live = {o["metadata"]["name"]: o for o in lst["items"]}
    missing = [n for n in acked if n not in live]
    assert not missing, f"{len(missing)} acknowledged objects lost: {missing[:10]}"
    for name, v in acked.items():
        assert live[name]["data"] == v["data"], name
        assert int(live[name]["metadata"]["resourceVersion"]) >= v["rv"]
    for w in writers:
        for d in w.deleted:
            assert d not in live, f"acknowledged delete of {d} undone"
        n = int(live[f"counter-{w.idx}"]["data"]["n"])
        assert w.counter_acked <= n <= w.counter_tried, (w.idx, w.counter_acked, n, w.counter_tried)
    # revisions keep increasing after the restart
    assert int(lst["metadata"]["resourceVersion"]) >= max_rv
    code, obj = cloudlet.request("POST", CMS, {"metadata": {"name": "after-restart"}})
    assert code == 201
    assert int(obj["metadata"]["resourceVersion"]) > int(lst["metadata"]["resourceVersion"])


def test_watch_after_restart_resumes_from_old_revision(cloudlet: CloudletProcess) -> None:
    code, lst = cloudlet.request("GET", CMS)
    rv = lst["metadata"]["resourceVersion"]
    cloudlet.request("POST", CMS, {"metadata": {"name": "before-kill"}})
    cloudlet.kill9()
    restart(cloudlet)
    cloudlet.request("POST", CMS, {"metadata": {"name": "after-kill"}})
    code, text = cloudlet.request("GET", f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=1", timeout=10)
    assert code == 200
    events = [json.loads(line) for line in text.strip().splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "before-kill"), ("ADDED", "after-kill")]


def test_restart_reuses_credentials(cloudlet: CloudletProcess) -> None:
    kubeconfig = cloudlet.kubeconfig.read_bytes()
    ca = (cloudlet.data_dir / "pki" / "ca.crt").read_bytes()
    token = cloudlet.token
    ctx = cloudlet.ssl_context()
    assert cloudlet.stop() == 0
    restart(cloudlet)
    assert cloudlet.kubeconfig.read_bytes() == kubeconfig
    assert (cloudlet.data_dir / "pki" / "ca.crt").read_bytes() == ca
    assert cloudlet.token == token
    # a client configured before the restart keeps working, with the old CA and token
    cloudlet._ctx = ctx
    assert cloudlet.request("GET", "/api/v1/namespaces/default")[0] == 200
    from kubernetes import client

    assert client.CoreV1Api(api_client(cloudlet)).read_namespace("default").status.phase == "Active"
    assert "namespace/default" in cloudlet.kubectl("get", "ns", "-o", "name").stdout


def _second_server(cloudlet: CloudletProcess) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = subprocess.run([CLOUDLET, "up", "--data-dir", str(cloudlet.data_dir), "--port", str(free_port())],
                       capture_output=True, text=True, timeout=30)
    return p, time.monotonic() - t0


def test_second_server_on_same_data_dir_fails_fast(cloudlet: CloudletProcess) -> None:
    kubeconfig = cloudlet.kubeconfig.read_bytes()
    try:
        p, took = _second_server(cloudlet)
        assert took < 10
        assert p.returncode != 0
        out = " ".join((p.stdout + p.stderr).split())  # the console wraps long lines
        assert "in use by another cloudlet process" in out, out
        assert "Traceback" not in out
        assert cloudlet.alive()
        assert cloudlet.request("GET", "/api/v1/namespaces/default")[0] == 200
    finally:
        cloudlet.kubeconfig.write_bytes(kubeconfig)  # see the next test


def test_second_server_leaves_running_servers_files_alone(cloudlet: CloudletProcess) -> None:
    kubeconfig = cloudlet.kubeconfig.read_bytes()
    certs = {p.name: p.read_bytes() for p in (cloudlet.data_dir / "pki").iterdir()}
    try:
        p, _ = _second_server(cloudlet)
        assert p.returncode != 0
        assert cloudlet.kubeconfig.read_bytes() == kubeconfig, "the kubeconfig must keep pointing at the live server"
        assert {p.name: p.read_bytes() for p in (cloudlet.data_dir / "pki").iterdir()} == certs
        assert cloudlet.kubectl("get", "ns", "default", "-o", "name").stdout.strip() == "namespace/default"
    finally:
        cloudlet.kubeconfig.write_bytes(kubeconfig)  # keep the module's server usable for the next tests


def test_port_in_use_fails_with_clear_error(cloudlet: CloudletProcess, tmp_path: Path) -> None:
    p = subprocess.run([CLOUDLET, "up", "--data-dir", str(tmp_path / "other"), "--port", str(cloudlet.port)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "error" in out.lower() and "Traceback" not in out, out
    assert cloudlet.alive()


def test_sigterm_shuts_down_cleanly(cloudlet: CloudletProcess) -> None:
    code, _ = cloudlet.request("POST", CMS, {"metadata": {"name": "before-sigterm"}, "data": {"a": "1"}})
    assert code == 201
    before = len(cloudlet.log())
    t0 = time.monotonic()
    assert cloudlet.stop() == 0
    assert time.monotonic() - t0 < 10
    tail = cloudlet.log()[before:]
    msgs = [json.loads(line).get("msg") for line in tail.splitlines() if line.startswith("{")]
    assert "stopped" in msgs, tail
    assert "Traceback" not in tail
    restart(cloudlet)
    code, obj = cloudlet.request("GET", f"{CMS}/before-sigterm")
    assert code == 200 and obj["data"] == {"a": "1"}


def test_sigterm_with_open_watch(cloudlet: CloudletProcess) -> None:
    """An open watch does not hold up shutdown."""
    from tests.e2e.harness import KubectlStream

    s = KubectlStream(cloudlet, "get", "cm", "-w")
    try:
        s.wait_line(lambda line: "before-sigterm" in line)
        t0 = time.monotonic()
        assert cloudlet.stop() == 0
        assert time.monotonic() - t0 < 10
    finally:
        s.close()
    restart(cloudlet)
