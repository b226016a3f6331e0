"""A real `cloudlet up` process on a free port, and the tools to drive it.

Shared by the end-to-end tests: start/stop/kill the server process, run the
real `kubectl` against it, and talk HTTPS to it directly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CLOUDLET = str(Path(sys.executable).with_name("cloudlet"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class CloudletProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    memory_limit: int | None = None  # bytes of address space (RLIMIT_AS) for the server process
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the server process
    node: bool = False  # run the node agent (real pods); off by default: `--no-node` is passed
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _ctx: ssl.SSLContext | None = field(default=None, repr=False)
    _token: str | None = field(default=None, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> float:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "cloudlet.log"
        self._ctx = self._token = None
        logf = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        t0 = time.monotonic()
        limit = self.memory_limit

        def cap() -> None:
            if limit is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self.proc = subprocess.Popen(
            [CLOUDLET, "up", "--data-dir", str(self.data_dir), "--port", str(self.port), *self.extra_args,
             *([] if self.node or "--node" in self.extra_args else ["--no-node"])],
            stdout=logf,
            stderr=logf,
            preexec_fn=cap if limit is not None else None,
            env={**os.environ, **self.env} if self.env else None,
        )
        logf.close()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cloudlet exited with {self.proc.returncode}:\n{self.log()}")
            if self.kubeconfig.exists():
                try:
                    if self.request("GET", "/readyz", auth=False)[0] == 200:
                        return time.monotonic() - t0
                except (OSError, urllib.error.URLError, ssl.SSLError):
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"cloudlet not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def cleanup_node(self) -> None:
        """Remove every host resource the node agent of this data dir left (stop first)."""
        import asyncio

        from cloudlet.node.agent import cleanup_node

        asyncio.run(cleanup_node(self.data_dir))

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- clients -------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return yaml.safe_load(self.kubeconfig.read_text())

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.config()["users"][0]["user"]["token"]
        return self._token

    def ssl_context(self) -> ssl.SSLContext:
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        return self._ctx

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        code, _headers, out = self.request_ex(
            method, path, body, auth=auth, content_type=content_type, headers=headers, raw=raw, timeout=timeout
        )
        return code, out

    def request_ex(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any, Any]:
        """Like :meth:`request`, also returning the response headers."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as resp:
                text = resp.read()
                code = resp.status
                hdrs = resp.headers
        except urllib.error.HTTPError as e:
            text = e.read()
            code = e.code
            hdrs = e.headers
        try:
            return code, hdrs, json.loads(text)
        except ValueError:
            return code, hdrs, text.decode(errors="replace")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.data_dir)}
        p = subprocess.run(
            ["kubectl", *args], input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p


# --- helpers shared by the e2e modules ------------------------------------------


def wait_until(cond: Any, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``cond()`` until it returns a truthy value; return that value or fail."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def api_client(proc: CloudletProcess) -> Any:
    """An official ``kubernetes`` ApiClient configured from the process' kubeconfig."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(proc.kubeconfig), client_configuration=cfg)
    return client.ApiClient(configuration=cfg)


class KubectlStream:
    """A background ``kubectl`` (e.g. ``get -w``) whose stdout lines are collected."""

    def __init__(self, proc: CloudletProcess, *args: str, merge_stderr: bool = False) -> None:
        import queue
        import threading

        env = {**os.environ, "KUBECONFIG": str(proc.kubeconfig), "HOME": str(proc.data_dir)}
        self.p = subprocess.Popen(
            ["kubectl", *args], stdout=subprocess.PIPE, text=True, env=env,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.p.stdout is not None
            for line in self.p.stdout:
                self._q.put(line.rstrip("\n"))
            self._q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_line(self, pred: Any, timeout: float = 10.0) -> str:
        """Wait for (and return) the first new line matching ``pred``; earlier lines are kept."""
        import queue

        for line in self.lines:
            if pred(line):
                self.lines.remove(line)
                return line
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self._q.put(None)
                break
            if pred(line):
                return line
            self.lines.append(line)
        err = self.p.stderr.read() if self.p.poll() is not None and self.p.stderr else ""
        raise AssertionError(f"no matching line within {timeout}s; seen: {self.lines!r} {err}")

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
