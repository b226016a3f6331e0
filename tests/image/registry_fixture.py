"""A real registry for image tests: Debian's ``docker-registry`` (CNCF distribution 2.8).

* :func:`start_registry` runs ``docker-registry serve <config>`` on a free
  loopback port with a temp storage dir, anonymous, with htpasswd basic auth
  (bcrypt lines made with the C library's ``crypt``), or with token auth
  against :class:`TokenServer`;
* :class:`TokenServer` is a tiny token issuer (a thread with
  ``http.server``): it checks basic credentials and signs ES256 JWTs whose
  ``x5c`` header carries a self-signed certificate that the registry trusts
  via ``rootcertbundle`` — the registry verifies real tokens, nothing is
  faked on its side;
* :class:`CuttingProxy` is a TCP proxy in front of the registry that counts
  blob GETs and can cut a connection after N bytes of a blob response (to
  test interrupted pulls);
* :func:`make_image` writes a small OCI image with random layers straight
  into an :class:`ImageStore` (for pushes without depending on Docker Hub).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import random
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for an htpasswd line (distribution accepts only bcrypt)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # stdlib until 3.13; libxcrypt does bcrypt

        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    assert h and h.startswith("$2"), "libcrypt cannot make bcrypt hashes"
    return h


# -- token server -----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues distribution bearer tokens (ES256 JWT with an x5c chain) for known users.

    Anonymous requests get a token with no access, so the registry refuses
    them; ``grants`` records every (account, scope) asked for.
    """

    def __init__(self, workdir: Path, users: dict[str, str], service: str = "cloudlet-test-registry",
                 issuer: str = "cloudlet-test-issuer") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users = users
        self.service = service
        self.issuer = issuer
        self.requests: list[dict[str, Any]] = []
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudlet test token signer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = workdir / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._der = self.cert.public_bytes(serialization.Encoding.DER)
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(url.query)
                account = ""
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(user) != pw:
                        self.send_response(401)
                        self.end_headers()
                        server.requests.append({"account": user, "denied": True})
                        return
                    account = user
                scopes = q.get("scope", [])
                server.requests.append({"account": account, "scopes": scopes, "service": q.get("service")})
                access = []
                if account:
                    for s in scopes:
                        typ, _, rest = s.partition(":")
                        rname, _, actions = rest.rpartition(":")
                        access.append({"type": typ, "name": rname, "actions": actions.split(",")})
                body = json.dumps({"token": server.sign(account, access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sign(self, subject: str, access: list[dict[str, Any]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self._der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- the registry process -----------------------------------------------------------------------


@dataclass
class Registry:
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    users: dict[str, str] = field(default_factory=dict)
    token: TokenServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.token is not None:
            self.token.stop()

    def docker_config(self, path: Path, user: str | None = None) -> Path:
        """Write a docker config.json with this registry's credentials (``auth`` base64 form)."""
        user = user or next(iter(self.users))
        auth = base64.b64encode(f"{user}:{self.users[user]}".encode()).decode()
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
        return path / "config.json"

    def pull_secret(self, user: str | None = None, kind: str = "kubernetes.io/dockerconfigjson",
                    password: str | None = None) -> dict[str, Any]:
        """A Secret object (as the API returns it) holding this registry's credentials.

        ``password`` overrides the user's real one (a secret the registry refuses).
        """
        user = user or next(iter(self.users))
        entry = {"username": user, "password": self.users[user] if password is None else password}
        if kind == "kubernetes.io/dockerconfigjson":
            key, doc = ".dockerconfigjson", {"auths": {self.host: entry}}
        else:
            key, doc = ".dockercfg", {f"http://{self.host}": entry}
        return {"apiVersion": "v1", "kind": "Secret", "type": kind,
                "metadata": {"name": "regcred", "namespace": "default"},
                "data": {key: base64.b64encode(json.dumps(doc).encode()).decode()}}


def start_registry(workdir: Path, *, auth: str | None = None, users: dict[str, str] | None = None,
                   timeout: float = 30.0) -> Registry:
    """Start a registry; ``auth`` is None, ``"htpasswd"`` or ``"token"``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    users = dict(users or ({"alice": "wonderland"} if auth else {}))
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }
    token = None
    if auth == "htpasswd":
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in users.items()))
        cfg["auth"] = {"htpasswd": {"realm": "cloudlet-test", "path": str(htpasswd)}}
    elif auth == "token":
        token = TokenServer(workdir, users)
        cfg["auth"] = {"token": {"realm": token.realm, "service": token.service, "issuer": token.issuer,
                                 "rootcertbundle": str(token.cert_path)}}
    elif auth is not None:
        raise ValueError(auth)
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(cfg))  # JSON is YAML
    log_path = workdir / "registry.log"
    logf = open(log_path, "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config_path)], stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    logf.close()
    reg = Registry(workdir, port, proc, log_path, users, token)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            reg.stop()
            raise RuntimeError(f"docker-registry exited: {reg.log()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{reg.url}/v2/", timeout=2):
                break
        except urllib.error.HTTPError as e:
            if e.code == 401:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            reg.stop()
            raise RuntimeError(f"docker-registry did not answer in {timeout}s: {reg.log()[-2000:]}")
        time.sleep(0.05)
    return reg


# -- a proxy that counts and cuts --------------------------------------------------------------


class CuttingProxy:
    """TCP proxy to ``target_port``; counts blob GETs and can cut blob responses.

    When ``cut_after`` is set, the next ``cuts`` blob responses are cut (both
    sockets closed) once that many response bytes went through. ``fail_next``
    answers that many new connections with ``503`` (a registry having a bad
    moment).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_after: int | None = None
        self.cuts = 0
        self.cut_done = 0
        self._armed = 0  # responses picked for a cut (decided on the request, done on the response)
        self.fail_next = 0  # answer this many requests with 503 (then close) before forwarding
        self.failed = 0
        self.blob_gets: list[str] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            with contextlib.suppress(ConnectionError):
                await cr.read(65536)
                cw.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await cw.drain()
            cw.close()
            self._tasks.discard(task)
            return
        sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
        state = {"armed": False, "sent": 0}

        async def up() -> None:
            while data := await cr.read(65536):
                if data.startswith(b"GET ") and b"/blobs/sha256:" in data.split(b"\r\n", 1)[0]:
                    self.blob_gets.append(data.split(b" ", 2)[1].decode())
                    if self.cut_after is not None and (state["armed"] or self._armed < self.cuts):
                        if not state["armed"]:  # one reservation per connection until it is cut or ends
                            self._armed += 1
                        state["armed"], state["sent"] = True, 0
                sw.write(data)
                await sw.drain()
            sw.close()

        async def down() -> None:
            while data := await sr.read(65536):
                if state["armed"]:
                    assert self.cut_after is not None
                    room = self.cut_after - state["sent"]
                    if len(data) >= room:
                        cw.write(data[:room])
                        await cw.drain()
                        self.cut_done += 1
                        raise ConnectionAbortedError("cut")
                    state["sent"] += len(data)
                cw.write(data)
                await cw.drain()
            if state["armed"]:  # ended before the cut point (a small blob): free its reservation
                self._armed -= 1
            cw.close()

        try:
            await asyncio.gather(up(), down())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for w in (cw, sw):
                with contextlib.suppress(Exception):
                    w.transport.abort()
            self._tasks.discard(task)


# -- images for tests ---------------------------------------------------------------------------


def _layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(store: Any, name: str, layer_sizes: list[int], seed: int = 0, compress: bool = True) -> str:
    """Write an OCI image with one random file per layer into ``store`` and tag it ``name``."""
    rng = random.Random(seed)
    layers = []
    diff_ids = []
    for i, size in enumerate(layer_sizes):
        raw = _layer_tar({f"data/layer{i}.bin": rng.randbytes(size), f"etc/cloudlet-layer-{i}": b"%d\n" % i})
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw
        digest = store.content.put_bytes(blob)
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        layers.append({"mediaType": media, "digest": digest, "size": len(blob)})
    config = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "Labels": {"seed": str(seed)}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cdata = json.dumps(config, sort_keys=True).encode()
    cdigest = store.content.put_bytes(cdata)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest,
                           "size": len(cdata)},
                "layers": layers}
    mdigest = store.content.put_bytes(json.dumps(manifest, sort_keys=True).encode())
    store.tag(name, mdigest)
    return mdigest


def env_without_docker_config(tmp: Path) -> dict[str, str]:
    """Environment for CLI subprocesses that ignores the host's docker config."""
    env = dict(os.environ)
    env["DOCKER_CONFIG"] = str(tmp / "no-docker-config")
    return env


# -- pytest fixtures (import them into a test module to use them) ---------------------------------



@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    reg = start_registry(tmp_path_factory.mktemp("cloudlet-registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    reg = start_registry(tmp_path_factory.mktemp("cloudlet-registry-basic"), auth="htpasswd")
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    reg = start_registry(tmp_path_factory.mktemp("cloudlet-registry-token"), auth="token")
    yield reg
    reg.stop()


@pytest.fixture(autouse=True)
def _no_host_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the machine's ~/.docker/config.json."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def ingest_leftovers(store: Any) -> list[str]:
    """Temp files an ingest left behind (there must be none after a failed pull)."""
    return [p.name for p in (store.root / "ingest").iterdir() if p.name.endswith(".tmp")]


def verify_all_blobs(store: Any) -> int:
    """Re-hash every stored blob (raises on corruption); returns how many."""
    n = 0
    for digest, _size in store.content.iter():
        store.content.verify(digest)
        n += 1
    return n
