"""Credential sources, the WWW-Authenticate parser and registries.yaml endpoint rules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cloudlet.image.auth import (
    AuthError,
    Credential,
    Keychain,
    credential_identity,
    docker_config_path,
    from_pull_secrets,
    load_docker_config,
    normalize_host,
    parse_token_response,
    parse_www_authenticate,
)
from cloudlet.image.config import RegistryConfig, RegistryConfigError, is_loopback_host


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_docker_config_auth_forms(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": _b64("hub:pw:with:colons")},
        "registry.example:5000": {"username": "u", "password": "p"},
        "http://127.0.0.1:5000/v2/": {"auth": _b64("a:b")},
        "empty.example": {},
    }}))
    creds = load_docker_config(cfg)
    assert creds["docker.io"] == Credential("hub", "pw:with:colons")
    assert creds["registry.example:5000"] == Credential("u", "p")
    assert creds["127.0.0.1:5000"] == Credential("a", "b")
    assert "empty.example" not in creds
    assert load_docker_config(tmp_path / "missing.json") == {}


def test_docker_config_path_honours_env(tmp_path: Path) -> None:
    assert docker_config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert docker_config_path({"HOME": "/home/x"}) == Path("/home/x/.docker/config.json")


def test_docker_config_bad_auth(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"r.example": {"auth": _b64("no-colon")}}}))
    with pytest.raises(AuthError, match="user:password"):
        load_docker_config(cfg)
    cfg.write_text("{not json")
    with pytest.raises(AuthError, match="cannot read docker config"):
        load_docker_config(cfg)


def test_pull_secrets_both_types() -> None:
    dcj = {"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "a"},
           "data": {".dockerconfigjson": _b64(json.dumps({"auths": {"reg.example": {"auth": _b64("x:y")}}}))}}
    dcfg = {"type": "kubernetes.io/dockercfg", "metadata": {"name": "b"},
            "data": {".dockercfg": _b64(json.dumps({"https://other.example": {"username": "o", "password": "q"},
                                                     "reg.example": {"username": "late", "password": "z"}}))}}
    opaque = {"type": "Opaque", "data": {"x": _b64("y")}}
    creds = from_pull_secrets([opaque, dcj, dcfg])
    assert creds == {"reg.example": Credential("x", "y"), "other.example": Credential("o", "q")}
    bad = {"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "bad"},
           "data": {".dockerconfigjson": _b64("[1, 2")}}
    with pytest.raises(AuthError, match="bad"):
        from_pull_secrets([bad])


def test_keychain_order() -> None:
    k = Keychain({"docker.io": Credential("cfg", "1")}).with_first({"docker.io": Credential("secret", "2")})
    assert k.get("registry-1.docker.io") == Credential("secret", "2")
    assert k.get("index.docker.io") == Credential("secret", "2")
    assert k.get("quay.io") is None


def test_credential_identity() -> None:
    """Auth state is keyed by the whole credential: same user with another password is someone else."""
    a = Credential("alice", "wonderland")
    assert a.identity() == Credential("alice", "wonderland").identity()
    others = {Credential("alice", "other").identity(), Credential("bob", "wonderland").identity(),
              Credential("alice", "wonderland", "refresh").identity(), credential_identity(None)}
    assert a.identity() not in others and len(others) == 4
    assert "wonderland" not in a.identity() and credential_identity(None) == "anonymous"
    k = Keychain({"reg.example": a})
    assert k.identity("reg.example") == a.identity() and k.identity("other.example") == "anonymous"
    assert k.with_first({"reg.example": Credential("alice", "x")}).identity("reg.example") != a.identity()


def test_www_authenticate() -> None:
    ch = parse_www_authenticate(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:library/busybox:pull,push"')
    assert ch is not None and ch.scheme == "bearer"
    assert ch.params == {"realm": "https://auth.example/token", "service": "registry.example",
                         "scope": "repository:library/busybox:pull,push"}
    basic = parse_www_authenticate('Basic realm="cloudlet-test"')
    assert basic is not None and basic.scheme == "basic" and basic.params["realm"] == "cloudlet-test"
    assert parse_www_authenticate("") is None


def test_token_response() -> None:
    assert parse_token_response({"access_token": "abc", "expires_in": 300}).value == "abc"
    with pytest.raises(AuthError):
        parse_token_response({"expires_in": 3})


def test_registry_config_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "registries.yaml"
    path.write_text(
        "mirrors:\n"
        "  docker.io:\n"
        "    endpoint: ['http://127.0.0.1:5000/']\n"
        "configs:\n"
        "  registry.internal:5000:\n"
        "    insecure: true\n"
        "    auth: {username: alice, password: secret}\n"
        "  secure.example:\n"
        "    tls: {insecure_skip_verify: true}\n"
    )
    cfg = RegistryConfig.load(path)
    hub = cfg.endpoints("docker.io")
    assert [e.base for e in hub] == ["http://127.0.0.1:5000", "https://registry-1.docker.io"]
    assert hub[0].mirror and not hub[1].mirror
    assert [e.base for e in cfg.endpoints("registry.internal:5000")] == ["http://registry.internal:5000"]
    assert cfg.credentials() == {"registry.internal:5000": Credential("alice", "secret")}
    sec = cfg.endpoints("secure.example")[0]
    assert sec.base == "https://secure.example" and sec.ssl_context() is not True
    # loopback speaks plain HTTP without configuration, as with Docker
    default = RegistryConfig.load(tmp_path / "absent.yaml")
    assert default.endpoints("127.0.0.2:5000")[0].base == "http://127.0.0.2:5000"
    assert default.endpoints("localhost:5000")[0].base == "http://localhost:5000"
    assert default.endpoints("[::1]:5000")[0].base == "http://[::1]:5000"
    assert default.endpoints("quay.io")[0].base == "https://quay.io"
    assert is_loopback_host("127.255.0.1") and not is_loopback_host("128.0.0.1")
    assert normalize_host("HTTPS://Registry-1.Docker.io/v2/") == "docker.io"


def test_registry_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "registries.yaml"
    path.write_text("mirror: {}\n")
    with pytest.raises(RegistryConfigError, match="unknown keys"):
        RegistryConfig.load(path)
    path.write_text("mirrors:\n  docker.io:\n    endpoint: ['127.0.0.1:5000']\n")
    with pytest.raises(RegistryConfigError, match="http:// or https://"):
        RegistryConfig.load(path)
    path.write_text("mirrors: [\n")
    with pytest.raises(RegistryConfigError, match="invalid YAML"):
        RegistryConfig.load(path)
