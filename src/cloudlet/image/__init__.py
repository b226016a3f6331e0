"""OCI images: references, content store, manifests, layer unpacking, snapshots, archives.

The public entry point is :class:`cloudlet.image.store.ImageStore`; the
registry client and :mod:`cloudlet.image.service` build on it.
"""

from __future__ import annotations

from .content import ContentStore, DigestMismatch, NotFound, SizeMismatch
from .manifest import ManifestError, NoMatchingPlatform, Platform
from .reference import InvalidReference, Reference, normalize, parse
from .store import ImageConfig, ImageInfo, ImageNotFound, ImageStore, SnapshotInfo

__all__ = [
    "ContentStore",
    "DigestMismatch",
    "ImageConfig",
    "ImageInfo",
    "ImageNotFound",
    "ImageStore",
    "InvalidReference",
    "ManifestError",
    "NoMatchingPlatform",
    "NotFound",
    "Platform",
    "Reference",
    "SizeMismatch",
    "SnapshotInfo",
    "normalize",
    "parse",
]
