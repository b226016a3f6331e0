"""Serving credentials: a private CA, a serving certificate, the admin token
and the kubeconfig that ties them together.

Generated once per data directory (with the ``cryptography`` package) and
reused on every restart, so kubeconfigs handed out stay valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Credentials:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    token: str
    kubeconfig: Path


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_ca(pki: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudlet-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(pki / "ca.key", _key_pem(key))
    _write(pki / "ca.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _sans(bind: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName("cloudlet")]
    ips = {"127.0.0.1", "::1"}
    if bind not in ("0.0.0.0", "::", ""):
        ips.add(bind)
    host = socket.gethostname()
    if host:
        names.append(x509.DNSName(host))
    for ip in sorted(ips):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            names.append(x509.DNSName(ip))
    return names


def _make_server_cert(pki: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, bind: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudlet-apiserver")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(_sans(bind)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki / "apiserver.key", _key_pem(key))
    _write(pki / "apiserver.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _cert_covers(path: Path, bind: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if bind in ("0.0.0.0", "::", "", "127.0.0.1", "localhost"):
            return True
        try:
            return ipaddress.ip_address(bind) in san.get_values_for_type(x509.IPAddress)
        except ValueError:
            return bind in san.get_values_for_type(x509.DNSName)
    except Exception:
        return False


def ensure_credentials(data_dir: Path, bind: str, port: int) -> Credentials:
    """Create (first start) or reuse the CA, serving cert, token and kubeconfig."""
    pki = data_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (pki / "ca.crt").exists() and (pki / "ca.key").exists():
        ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    else:
        ca, ca_key = _make_ca(pki)
    if not (pki / "apiserver.crt").exists() or not _cert_covers(pki / "apiserver.crt", bind):
        _make_server_cert(pki, ca, ca_key, bind)
    token_file = pki / "admin.token"
    if token_file.exists():
        token = token_file.read_text().strip()
    else:
        token = secrets.token_urlsafe(32)
        _write(token_file, token.encode())
    kubeconfig = data_dir / "kubeconfig.yaml"
    write_kubeconfig(kubeconfig, pki / "ca.crt", token, bind, port)
    return Credentials(pki / "ca.crt", pki / "apiserver.crt", pki / "apiserver.key", token, kubeconfig)


def server_url(bind: str, port: int) -> str:
    host = "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def write_kubeconfig(path: Path, ca_cert: Path, token: str, bind: str, port: int) -> None:
    import base64

    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "cloudlet",
                "cluster": {
                    "server": server_url(bind, port),
                    "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "cloudlet-admin", "user": {"token": token}}],
        "contexts": [{"name": "cloudlet", "context": {"cluster": "cloudlet", "user": "cloudlet-admin", "namespace": "default"}}],
        "current-context": "cloudlet",
        "preferences": {},
    }
    _write(path, yaml.safe_dump(cfg, sort_keys=False).encode())


def ssl_context(creds: Credentials) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(creds.server_cert), str(creds.server_key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
