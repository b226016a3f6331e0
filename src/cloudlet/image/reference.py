"""Image references: parse and normalise names like ``busybox``, ``host:5000/a/b:tag@sha256:...``.

Follows the grammar of the distribution project's reference package (the one
Docker, containerd and the kubelet use): an optional domain (a first component
holding a ``.`` or ``:`` or equal to ``localhost``), slash-separated lowercase
path components, an optional ``:tag`` and an optional ``@algorithm:hex``
digest. Docker Hub names are normalised: no domain means ``docker.io``, a
single path component on Docker Hub gets the ``library/`` prefix, and
``index.docker.io`` is ``docker.io``.

``parse`` keeps ``tag`` as ``None`` when the user wrote none (callers such as
the pull-policy default need to know); ``Reference.name`` and ``normalize``
apply the default ``latest`` tag when neither a tag nor a digest is present
(the ``TagNameOnly`` rule). ``familiar`` is the short form users type
(``busybox:latest``, ``myorg/app:v1``, ``localhost:5000/app:v1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "InvalidReference",
    "Reference",
    "parse",
    "normalize",
    "is_digest",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_RE = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_ANCHORED_ID = re.compile(r"[a-f0-9]{64}")

# Lengths of the hex part for the algorithms the OCI image spec registers.
_DIGEST_HEX_LEN = {"sha256": 64, "sha512": 128}


class InvalidReference(ValueError):
    """The string is not a valid image reference; the message follows Docker's wording."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed, normalised image reference."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path`` — the repository name, without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def name(self) -> str:
        """Canonical string: ``docker.io/library/busybox:latest`` (default tag applied)."""
        return self.repository + self._suffix()

    @property
    def familiar(self) -> str:
        """Short form: ``busybox:latest``, ``myorg/app:v1``, ``quay.io/x/y@sha256:...``."""
        return self.familiar_repository + self._suffix()

    @property
    def familiar_repository(self) -> str:
        """The repository in short form (``busybox``, ``myorg/app``, ``quay.io/x/y``)."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in self.path[len(OFFICIAL_REPO_PREFIX):]:
                return self.path[len(OFFICIAL_REPO_PREFIX):]
            return self.path
        return self.repository

    def with_tag(self, tag: str) -> Reference:
        """The same repository with ``tag`` and no digest."""
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference("invalid tag format")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (tag dropped)."""
        _check_digest(digest)
        return Reference(self.domain, self.path, None, digest)

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        if not out:
            out = ":" + DEFAULT_TAG
        return out

    def __str__(self) -> str:
        return self.name


def is_digest(value: str) -> bool:
    """True for a well-formed ``algorithm:hex`` digest (sha256/sha512 lengths checked)."""
    try:
        _check_digest(value)
    except InvalidReference:
        return False
    return True


def _check_digest(digest: str) -> None:
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidReference("invalid digest format")
    algorithm, hex_part = digest.split(":", 1)
    expected = _DIGEST_HEX_LEN.get(algorithm)
    if expected is not None and (len(hex_part) != expected or hex_part != hex_part.lower()):
        raise InvalidReference("invalid checksum digest format")


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1 or (
        not any(c in name[:i] for c in ".:") and name[:i] != "localhost" and name[:i].lower() == name[:i]
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = name[:i], name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(ref: str) -> Reference:
    """Parse and normalise ``ref``; raises :class:`InvalidReference`.

    A bare 64-hex string is refused (Docker reads it as an image ID, not a
    name): "cannot specify 64-byte hexadecimal strings".
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidReference("invalid reference format")
    if ref != ref.strip():
        raise InvalidReference("invalid reference format")
    if _ANCHORED_ID.fullmatch(ref):
        raise InvalidReference(
            f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings"
        )
    rest = ref
    digest: str | None = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if "@" in digest:
            raise InvalidReference("invalid reference format")
        _check_digest(digest)
    tag: str | None = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference("invalid reference format")
    if not rest:
        raise InvalidReference("invalid reference format")
    if len(rest) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    domain, path = _split_domain(rest)
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReference("invalid reference format")
    if path.lower() != path and _PATH_RE.fullmatch(path.lower()):
        raise InvalidReference(
            f"invalid reference format: repository name ({path}) must be lowercase"
        )
    if not _PATH_RE.fullmatch(path):
        raise InvalidReference("invalid reference format")
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def normalize(ref: str) -> str:
    """Canonical name of ``ref`` (``busybox`` -> ``docker.io/library/busybox:latest``)."""
    return parse(ref).name
