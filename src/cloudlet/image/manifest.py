"""OCI / Docker manifest, index and image-config documents: media types, parsing, platform choice.

Understands the OCI image manifest and index (image-spec v1.1) and Docker's
schema 2 manifest and manifest list. A document without ``mediaType`` (the
OCI spec allows that) is classified by shape: ``manifests`` means an index,
``config`` + ``layers`` a manifest. Docker schema 1 is refused.

Platform choice for an index follows containerd's default matcher: the host's
platform (``linux/amd64`` here; ``arm64`` defaults to variant ``v8``), entries
for ``unknown/unknown`` (attestation manifests) never match.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "MEDIA_TYPE_OCI_MANIFEST",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_LAYER",
    "MEDIA_TYPE_OCI_LAYER_GZIP",
    "MEDIA_TYPE_OCI_LAYER_ZSTD",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_LIST",
    "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER_GZIP",
    "MANIFEST_TYPES",
    "INDEX_TYPES",
    "ACCEPT_HEADER",
    "Descriptor",
    "Manifest",
    "Index",
    "Platform",
    "ManifestError",
    "NoMatchingPlatform",
    "parse_document",
    "host_platform",
    "layer_compression",
]

MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
MEDIA_TYPE_OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
MEDIA_TYPE_DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = frozenset({MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})
INDEX_TYPES = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_LIST})
CONFIG_TYPES = frozenset({MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_DOCKER_CONFIG})

# What a registry client should send as ``Accept`` when fetching a manifest.
ACCEPT_HEADER = ", ".join(
    [MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST]
)

_COMPRESSION = {
    MEDIA_TYPE_OCI_LAYER: "none",
    MEDIA_TYPE_OCI_LAYER_ND: "none",
    MEDIA_TYPE_DOCKER_LAYER: "none",
    MEDIA_TYPE_OCI_LAYER_GZIP: "gzip",
    MEDIA_TYPE_OCI_LAYER_ND_GZIP: "gzip",
    MEDIA_TYPE_DOCKER_LAYER_GZIP: "gzip",
    MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP: "gzip",
    MEDIA_TYPE_OCI_LAYER_ZSTD: "zstd",
    MEDIA_TYPE_OCI_LAYER_ND_ZSTD: "zstd",
}


class ManifestError(ValueError):
    """A manifest, index or config document is malformed or of an unsupported type."""


class NoMatchingPlatform(ManifestError):
    """No entry of an index matches the wanted platform (Docker's wording)."""

    def __init__(self, wanted: Platform) -> None:
        super().__init__(f"no matching manifest for {wanted} in the manifest list entries")
        self.wanted = wanted


def layer_compression(media_type: str) -> str:
    """``"none"``, ``"gzip"`` or ``"zstd"`` for a layer media type; ``"auto"`` if unknown (sniff)."""
    return _COMPRESSION.get(media_type, "auto")


@dataclass(frozen=True, slots=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Platform | None:
        if not data:
            return None
        return cls(
            os=str(data.get("os", "")),
            architecture=str(data.get("architecture", "")),
            variant=str(data.get("variant", "") or ""),
        )

    def normalized(self) -> Platform:
        arch, variant = self.architecture, self.variant
        arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                "armel": "arm", "i386": "386"}.get(arch, arch)
        if arch == "arm64" and variant in ("", "8"):
            variant = "v8"
        if arch == "amd64" and variant == "v1":
            variant = ""
        if arch == "arm" and variant == "":
            variant = "v7"
        return Platform(self.os.lower(), arch, variant)

    def matches(self, other: Platform) -> bool:
        a, b = self.normalized(), other.normalized()
        return a.os == b.os and a.architecture == b.architecture and a.variant == b.variant


def host_platform() -> Platform:
    """The platform this machine runs (``linux/amd64`` on the build machines)."""
    return Platform("linux", _platform.machine() or "amd64").normalized()


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any) -> Descriptor:
        if not isinstance(data, dict):
            raise ManifestError("descriptor is not an object")
        try:
            digest = str(data["digest"])
            size = int(data["size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"invalid descriptor: {exc}") from None
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=digest,
            size=size,
            platform=Platform.from_dict(data.get("platform")),
            annotations=dict(data.get("annotations") or {}),
            urls=list(data.get("urls") or []),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            p: dict[str, str] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                p["variant"] = self.platform.variant
            out["platform"] = p
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.urls:
            out["urls"] = list(self.urls)
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_index(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Index:
    media_type: str
    manifests: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_index(self) -> bool:
        return True

    def select(self, wanted: Platform | None = None) -> Descriptor:
        """The entry for ``wanted`` (default: the host platform); raises :class:`NoMatchingPlatform`."""
        wanted = wanted or host_platform()
        candidates = [
            d for d in self.manifests
            if (d.media_type in MANIFEST_TYPES or not d.media_type)
            and d.annotations.get("vnd.docker.reference.type") != "attestation-manifest"
            and not (d.platform and "unknown" in (d.platform.os, d.platform.architecture))
        ]
        for desc in candidates:
            if desc.platform is not None and desc.platform.matches(wanted):
                return desc
        # Variants are optional: accept an entry for the right os/arch without a variant.
        for desc in candidates:
            p = desc.platform
            if p is not None and not p.variant:
                n, w = p.normalized(), wanted.normalized()
                if n.os == w.os and n.architecture == w.architecture:
                    return desc
        raise NoMatchingPlatform(wanted)


def detect_media_type(doc: dict[str, Any], declared: str | None = None) -> str:
    """The media type of a manifest-like document (its own field, else the declared one, else shape)."""
    media_type = doc.get("mediaType") or declared or ""
    if media_type in (MEDIA_TYPE_DOCKER_SCHEMA1, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED) or (
        doc.get("schemaVersion") == 1
    ):
        raise ManifestError("Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported")
    if media_type in MANIFEST_TYPES or media_type in INDEX_TYPES:
        return media_type
    if "manifests" in doc:
        return MEDIA_TYPE_OCI_INDEX
    if "config" in doc and "layers" in doc:
        return MEDIA_TYPE_OCI_MANIFEST
    raise ManifestError(f"unsupported manifest media type {media_type!r}")


def parse_document(data: bytes | dict[str, Any], declared: str | None = None) -> Manifest | Index:
    """Parse manifest or index bytes (or an already-decoded dict)."""
    if isinstance(data, dict):
        doc = data
    else:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    media_type = detect_media_type(doc, declared)
    annotations = dict(doc.get("annotations") or {})
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("index has no manifests list")
        return Index(media_type, [Descriptor.from_dict(d) for d in entries], annotations, doc)
    if "config" not in doc or not isinstance(doc.get("layers"), list):
        raise ManifestError("manifest has no config or layers")
    return Manifest(
        media_type,
        Descriptor.from_dict(doc["config"]),
        [Descriptor.from_dict(d) for d in doc["layers"]],
        annotations,
        doc,
    )


def parse_config(data: bytes) -> dict[str, Any]:
    """Decode an image config blob (must be a JSON object)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"image config is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError("image config is not a JSON object")
    return doc


def diff_ids(config: dict[str, Any]) -> list[str]:
    rootfs = config.get("rootfs") or {}
    ids = rootfs.get("diff_ids")
    if not isinstance(ids, list):
        raise ManifestError("image config has no rootfs.diff_ids")
    return [str(d) for d in ids]


def canonical_json(doc: Any) -> bytes:
    """Stable JSON bytes for documents cloudlet writes (sorted keys, no spaces)."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
