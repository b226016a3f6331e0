"""Image reference parsing and normalisation (distribution/reference grammar, Docker's messages)."""

from __future__ import annotations

import pytest

from cloudlet.image.reference import InvalidReference, normalize, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("ref", "domain", "path", "tag", "digest", "name", "familiar"),
    [
        ("busybox", "docker.io", "library/busybox", None, None, "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", None,
         "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", None, None,
         "docker.io/library/busybox:latest", "busybox:latest"),
        ("myorg/app:v1", "docker.io", "myorg/app", "v1", None, "docker.io/myorg/app:v1", "myorg/app:v1"),
        ("localhost/app", "localhost", "app", None, None, "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:c", "localhost:5000", "a/b", "c", None, "localhost:5000/a/b:c", "localhost:5000/a/b:c"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000", "x", None, None, "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
        ("[::1]:5000/x:y", "[::1]:5000", "x", "y", None, "[::1]:5000/x:y", "[::1]:5000/x:y"),
        (f"quay.io/a/b@{D}", "quay.io", "a/b", None, D, f"quay.io/a/b@{D}", f"quay.io/a/b@{D}"),
        (f"busybox:1@{D}", "docker.io", "library/busybox", "1", D, f"docker.io/library/busybox:1@{D}",
         f"busybox:1@{D}"),
        ("Registry.Example.com/a_b/c-d__e.f", "Registry.Example.com", "a_b/c-d__e.f", None, None,
         "Registry.Example.com/a_b/c-d__e.f:latest", "Registry.Example.com/a_b/c-d__e.f:latest"),
    ],
)
def test_parse_and_normalize(ref: str, domain: str, path: str, tag: str | None, digest: str | None,
                             name: str, familiar: str) -> None:
    r = parse(ref)
    assert (r.domain, r.path, r.tag, r.digest) == (domain, path, tag, digest)
    assert r.repository == f"{domain}/{path}"
    assert r.name == name == normalize(ref)
    assert r.familiar == familiar
    # normalising is idempotent
    assert normalize(r.name) == r.name
    assert parse(r.familiar).name == r.name


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "invalid reference format"),
        ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
        ("myorg/App:v1", "invalid reference format: repository name (myorg/App) must be lowercase"),
        ("a::b", "invalid reference format"),
        ("busybox:", "invalid reference format"),
        ("a/", "invalid reference format"),
        ("-a", "invalid reference format"),
        ("a b", "invalid reference format"),
        (" busybox", "invalid reference format"),
        ("busybox:" + "x" * 129, "invalid reference format"),
        ("busybox@sha256:abc", "invalid digest format"),
        ("busybox@sha256:" + "A" * 64, "invalid checksum digest format"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
    ],
)
def test_invalid_references(ref: str, message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(ref)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_with_tag_and_digest() -> None:
    r = parse("busybox:1")
    assert r.with_tag("2").name == "docker.io/library/busybox:2"
    assert r.with_digest(D).name == f"docker.io/library/busybox@{D}"
    with pytest.raises(InvalidReference):
        r.with_tag("bad tag")
    assert parse("docker.io/myorg/deep/repo").familiar == "myorg/deep/repo:latest"
    assert parse("docker.io/library/a/b").familiar == "library/a/b:latest"
