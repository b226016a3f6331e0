"""Registry credentials and the distribution auth handshake.

Where credentials come from, in the order they are consulted for a registry
host:

1. ``imagePullSecrets`` given with one pull (Kubernetes Secrets of type
   ``kubernetes.io/dockerconfigjson`` — key ``.dockerconfigjson`` holding
   ``{"auths": {...}}`` — or the legacy ``kubernetes.io/dockercfg`` — key
   ``.dockercfg`` holding the ``auths`` map itself);
2. the ``auth`` section of cloudlet's ``registries.yaml`` (see
   :mod:`cloudlet.image.config`);
3. a docker ``config.json``: ``$DOCKER_CONFIG/config.json`` when
   ``DOCKER_CONFIG`` is set, else ``~/.docker/config.json``.

Each ``auths`` entry is keyed by a host (``registry.example:5000``) or a URL
(``https://index.docker.io/v1/``) and holds ``auth`` (base64 of
``user:password``) or ``username`` + ``password``; ``identitytoken`` is used
as an OAuth2 refresh token when present. Docker Hub's many spellings all
mean ``docker.io``.

The handshake (distribution's token authentication): a request answered
``401`` carries ``WWW-Authenticate``. ``Basic`` means resend with basic
credentials. ``Bearer realm=...,service=...,scope=...`` means fetch a token
from ``realm`` (``GET ?service=&scope=``, with basic credentials when we have
some, anonymously otherwise), then resend with ``Authorization: Bearer``.
Tokens are cached per (realm, service, scope, credential identity) until
shortly before they expire.

Credentials never leak from one pull to another: every piece of auth state
the registry client keeps (tokens, the ``Authorization`` it last sent to a
host) is keyed by :func:`credential_identity` of the credential that earned
it, so a pull made without a pod's secret never reuses what the secret
obtained — as in Kubernetes, where each pull uses only the pod's own
``imagePullSecrets`` plus the node's credentials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


class AuthError(Exception):
    """Credentials are missing, malformed or were refused."""


@dataclass(frozen=True)
class Credential:
    """Basic credentials, or an identity (refresh) token, for one registry host."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def identity(self) -> str:
        """A stable fingerprint of the whole credential (user, password, token), safe to log or key by.

        Two credentials with the same user but another password differ, so a
        wrong password never rides on a token the right one earned.
        """
        h = hashlib.sha256()
        for part in (self.username, self.password, self.identity_token):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()[:32]


ANONYMOUS = "anonymous"


def credential_identity(cred: Credential | None) -> str:
    """:meth:`Credential.identity`, or ``"anonymous"`` for no credential."""
    return cred.identity() if cred is not None else ANONYMOUS


def normalize_host(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://h:5000/x`` -> ``h:5000``."""
    host = key.strip()
    host = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", host)
    host = host.split("/", 1)[0].lower()
    if host in _HUB_ALIASES:
        return DOCKER_HUB
    return host


def _entry_credential(host: str, entry: Any) -> Credential:
    if not isinstance(entry, dict):
        raise AuthError(f"credentials for {host!r} must be a mapping")
    user = entry.get("username") or ""
    password = entry.get("password") or ""
    auth = entry.get("auth") or ""
    if auth:
        try:
            decoded = base64.b64decode(auth, validate=False).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise AuthError(f"credentials for {host!r}: 'auth' is not base64 of user:password") from e
        if ":" not in decoded:
            raise AuthError(f"credentials for {host!r}: 'auth' is not base64 of user:password")
        user, password = decoded.split(":", 1)
    return Credential(str(user), str(password), str(entry.get("identitytoken") or ""))


def parse_auths(auths: Any, source: str = "") -> dict[str, Credential]:
    """An ``auths`` map (host or URL -> entry) -> {normalized host: Credential}."""
    if auths is None:
        return {}
    if not isinstance(auths, dict):
        raise AuthError(f"{source or 'auths'}: 'auths' must be a mapping")
    out: dict[str, Credential] = {}
    for key, entry in auths.items():
        cred = _entry_credential(str(key), entry)
        if cred.username or cred.password or cred.identity_token:
            out[normalize_host(str(key))] = cred
    return out


def docker_config_path(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]).expanduser() / "config.json"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".docker" / "config.json"


def load_docker_config(path: Path | None = None) -> dict[str, Credential]:
    """Credentials from a docker ``config.json`` (missing file -> none)."""
    path = path or docker_config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise AuthError(f"cannot read docker config {path}: {e}") from e
    if not isinstance(data, dict):
        raise AuthError(f"docker config {path} is not a JSON object")
    return parse_auths(data.get("auths"), str(path))


def _secret_field(secret: dict[str, Any], key: str) -> str | None:
    data = secret.get("data") or {}
    if key in data:
        try:
            return base64.b64decode(data[key]).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError) as e:
            name = (secret.get("metadata") or {}).get("name", "")
            raise AuthError(f"secret {name!r}: {key} is not valid base64") from e
    string_data = secret.get("stringData") or {}
    if key in string_data:
        return str(string_data[key])
    return None


def from_pull_secrets(secrets: list[dict[str, Any]] | None) -> dict[str, Credential]:
    """Credentials from ``imagePullSecrets`` Secret objects.

    Each item is a whole Secret (``type`` + base64 ``data``). Secrets of other
    types are ignored, like kubelet does. Earlier secrets win for a host.
    """
    out: dict[str, Credential] = {}
    for secret in secrets or []:
        if not isinstance(secret, dict):
            continue
        if "type" not in secret and "data" not in secret and "name" in secret:
            # a LocalObjectReference ({"name": ...}) instead of the Secret it names
            log.warning("imagePullSecrets entry %r is a reference, not a Secret: ignored", secret["name"])
            continue
        stype = secret.get("type", "")
        name = (secret.get("metadata") or {}).get("name", "")
        try:
            if stype == "kubernetes.io/dockerconfigjson":
                raw = _secret_field(secret, ".dockerconfigjson")
                if raw is None:
                    continue
                auths = parse_auths(json.loads(raw).get("auths"), f"secret {name}")
            elif stype == "kubernetes.io/dockercfg":
                raw = _secret_field(secret, ".dockercfg")
                if raw is None:
                    continue
                auths = parse_auths(json.loads(raw), f"secret {name}")
            else:
                continue
        except (ValueError, AttributeError) as e:
            raise AuthError(f"secret {name!r} holds no valid docker config: {e}") from e
        for host, cred in auths.items():
            out.setdefault(host, cred)
    return out


class Keychain:
    """Looks up the credential for a registry host across ordered sources."""

    def __init__(self, *sources: dict[str, Credential]) -> None:
        self.sources = [s for s in sources if s]

    def get(self, host: str) -> Credential | None:
        host = normalize_host(host)
        for source in self.sources:
            if host in source:
                return source[host]
        return None

    def identity(self, host: str) -> str:
        """Who this keychain is for ``host``: :func:`credential_identity` of its credential."""
        return credential_identity(self.get(host))

    def with_first(self, source: dict[str, Credential]) -> Keychain:
        """A keychain that consults ``source`` before this one's sources."""
        return Keychain(source, *self.sources)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer" (lower case)
    params: dict[str, str]


_PARAM = re.compile(r'\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_www_authenticate(header: str) -> Challenge | None:
    """``Bearer realm="https://a/token",service="reg",scope="repository:x:pull"`` -> Challenge."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return Challenge(scheme.lower(), params)


@dataclass
class Token:
    value: str
    expires_at: float

    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at


def parse_token_response(body: dict[str, Any]) -> Token:
    """A token endpoint's JSON -> Token (``token`` or ``access_token``; default life 60 s)."""
    value = body.get("token") or body.get("access_token")
    if not value or not isinstance(value, str):
        raise AuthError("token endpoint answered without a token")
    try:
        life = float(body.get("expires_in") or 60)
    except (TypeError, ValueError):
        life = 60.0
    # refresh a little early; never cache a token for less than a few seconds
    return Token(value, time.monotonic() + max(5.0, life - 10.0))
