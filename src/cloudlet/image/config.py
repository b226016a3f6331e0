"""Registry endpoints: mirrors, plain-HTTP registries and TLS settings.

cloudlet reads one small YAML file, ``<data-dir>/registries.yaml``: the
node agent's :class:`~cloudlet.image.service.ImageService` reads it at start,
``cloudlet image pull/push`` on every run (or the file given with their
``--registry-config``). A missing file means "no mirrors, defaults
everywhere". Its shape (deliberately that of k3s' file of the same name, so
people can reuse theirs)::

    mirrors:
      docker.io:                      # a registry host as written in image names
        endpoint:                     # tried in order, then the registry itself
          - "http://127.0.0.1:5000"   # scheme decides HTTP or HTTPS
    configs:
      "registry.internal:5000":
        insecure: true                # plain HTTP for this host (docker's
                                      # "insecure-registries")
        tls:
          ca_file: /etc/ssl/my-ca.pem # extra CA for HTTPS
          insecure_skip_verify: false # accept any certificate
        auth:                         # credentials (see cloudlet.image.auth)
          username: alice
          password: secret            # or  auth: <base64 of user:password>

Rules, as Docker applies them:

* ``docker.io`` (Docker Hub) is served by ``https://registry-1.docker.io``.
* ``localhost``, ``::1`` and every address in ``127.0.0.0/8`` (with any port)
  speak plain HTTP without configuration.
* Any other host speaks HTTPS unless ``configs.<host>.insecure`` is true.
* A mirror endpoint is tried first; when it fails (unreachable, 5xx, not
  found) the next one, and the registry itself last.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloudlet.image.auth import Credential, normalize_host, parse_auths

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"


class RegistryConfigError(ValueError):
    """registries.yaml is malformed."""


@dataclass(frozen=True)
class Endpoint:
    """One place to talk the distribution API to: ``base`` is ``scheme://host[:port]``."""

    base: str
    host: str  # the registry host named in the image reference
    mirror: bool = False
    ca_file: str | None = None
    skip_verify: bool = False

    @property
    def plain_http(self) -> bool:
        return self.base.startswith("http://")

    @property
    def auth_host(self) -> str:
        """The host whose credentials apply: the endpoint's own host."""
        return normalize_host(self.base)

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.plain_http:
            return False
        if self.skip_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if self.ca_file:
            return ssl.create_default_context(cafile=self.ca_file)
        return True


@dataclass
class HostConfig:
    insecure: bool = False
    ca_file: str | None = None
    skip_verify: bool = False
    credential: Credential | None = None


@dataclass
class RegistryConfig:
    mirrors: dict[str, list[str]] = field(default_factory=dict)
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None) -> RegistryConfig:
        """Read ``path``; a missing file gives the defaults."""
        if path is None:
            return cls()
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls(path=path)
        except OSError as e:
            raise RegistryConfigError(f"cannot read {path}: {e}") from e
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise RegistryConfigError(f"{path}: invalid YAML: {e}") from e
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> RegistryConfig:
        where = str(path) if path else "registry config"
        if not isinstance(data, dict):
            raise RegistryConfigError(f"{where}: must be a mapping with 'mirrors' and/or 'configs'")
        unknown = set(data) - {"mirrors", "configs"}
        if unknown:
            raise RegistryConfigError(f"{where}: unknown keys {sorted(unknown)} (expected mirrors, configs)")
        cfg = cls(path=path)
        for host, m in (data.get("mirrors") or {}).items():
            if not isinstance(m, dict):
                raise RegistryConfigError(f"{where}: mirrors.{host} must be a mapping with 'endpoint'")
            eps = m.get("endpoint") or []
            if isinstance(eps, str):
                eps = [eps]
            if not isinstance(eps, list) or not all(isinstance(e, str) for e in eps):
                raise RegistryConfigError(f"{where}: mirrors.{host}.endpoint must be a list of URLs")
            for e in eps:
                if not e.startswith(("http://", "https://")):
                    raise RegistryConfigError(f"{where}: mirror endpoint {e!r} must start with http:// or https://")
            cfg.mirrors[normalize_host(str(host))] = [e.rstrip("/") for e in eps]
        for host, c in (data.get("configs") or {}).items():
            if not isinstance(c, dict):
                raise RegistryConfigError(f"{where}: configs.{host} must be a mapping")
            tls = c.get("tls") or {}
            hc = HostConfig(
                insecure=bool(c.get("insecure", False)),
                ca_file=tls.get("ca_file"),
                skip_verify=bool(tls.get("insecure_skip_verify", False)),
            )
            if c.get("auth"):
                creds = parse_auths({str(host): c["auth"]}, where)
                hc.credential = next(iter(creds.values()), None)
            cfg.hosts[normalize_host(str(host))] = hc
        return cfg

    def credentials(self) -> dict[str, Credential]:
        return {h: c.credential for h, c in self.hosts.items() if c.credential}

    def _host_config(self, host: str) -> HostConfig:
        return self.hosts.get(normalize_host(host)) or HostConfig()

    def endpoints(self, registry_host: str) -> list[Endpoint]:
        """Endpoints to try for a registry host (as written in an image name), in order."""
        host = normalize_host(registry_host)
        out: list[Endpoint] = []
        for url in self.mirrors.get(host, []):
            hc = self._host_config(normalize_host(url))
            out.append(Endpoint(url, host, mirror=True, ca_file=hc.ca_file, skip_verify=hc.skip_verify))
        hc = self._host_config(host)
        if host == "docker.io":
            base = DOCKER_HUB_ENDPOINT
        elif hc.insecure or is_loopback_host(host):
            base = f"http://{host}"
        else:
            base = f"https://{host}"
        out.append(Endpoint(base, host, ca_file=hc.ca_file, skip_verify=hc.skip_verify))
        return out


def split_host_port(host: str) -> str:
    """``[::1]:5000`` -> ``::1``; ``127.0.0.1:5000`` -> ``127.0.0.1``; ``a.b`` -> ``a.b``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback_host(host: str) -> bool:
    """localhost, ::1 and 127.0.0.0/8 — the registries Docker talks plain HTTP to by default."""
    name = split_host_port(host).lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
