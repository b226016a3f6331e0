"""Pod volume defaulting and validation (``spec.volumes``).

Each volume has a DNS-1123 label name, unique in the pod, and exactly one
source. A volume with no source defaults to ``emptyDir: {}``; secret, configMap,
downwardAPI and projected sources default ``defaultMode`` to 0644 (420).
"""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import duplicate, forbidden_field, invalid_value, not_supported, required
from cloudlet.resources._util import (
    Errors,
    Obj,
    as_dict,
    as_list,
    as_str,
    child,
    dicts,
    index,
    is_int,
    set_default,
)
from cloudlet.resources.containers import (
    PULL_POLICIES,
    VOLUME_FIELD_PATHS,
    default_pull_policy,
    validate_object_field_selector,
    validate_resource_field_selector,
)
from cloudlet.resources.quantity import parse_quantity
from cloudlet.resources.validation import validate_dns1123_label

# In the order Kubernetes checks them (the first one present wins, the rest are Forbidden).
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs",
    "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte",
    "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
DEFAULT_MODE = 0o644
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"

# Required string fields of the less common sources: source -> fields.
_REQUIRED_FIELDS = {
    "gitRepo": ("repository",),
    "gcePersistentDisk": ("pdName",),
    "awsElasticBlockStore": ("volumeID",),
    "iscsi": ("targetPortal", "iqn"),
    "glusterfs": ("endpoints", "path"),
    "rbd": ("monitors", "image"),
    "cinder": ("volumeID",),
    "cephfs": ("monitors",),
    "quobyte": ("registry", "volume"),
    "flexVolume": ("driver",),
    "azureFile": ("secretName", "shareName"),
    "vsphereVolume": ("volumePath",),
    "photonPersistentDisk": ("pdID",),
    "portworxVolume": ("volumeID",),
    "azureDisk": ("diskName", "diskURI"),
    "scaleIO": ("gateway", "system", "secretRef"),
    "csi": ("driver",),
}


# --- defaults -----------------------------------------------------------------------


def default_volume(volume: Obj) -> None:
    if not any(volume.get(s) is not None for s in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for name in ("secret", "configMap", "downwardAPI", "projected"):
        source = volume.get(name)
        if isinstance(source, dict) and source.get("defaultMode") is None:
            source["defaultMode"] = DEFAULT_MODE
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    for item in dicts(as_dict(volume.get("downwardAPI")).get("items")):
        if isinstance(item.get("fieldRef"), dict):
            set_default(item["fieldRef"], "apiVersion", "v1")
    for source in dicts(as_dict(volume.get("projected")).get("sources")):
        token = source.get("serviceAccountToken")
        if isinstance(token, dict) and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
        for item in dicts(as_dict(source.get("downwardAPI")).get("items")):
            if isinstance(item.get("fieldRef"), dict):
                set_default(item["fieldRef"], "apiVersion", "v1")
    image = volume.get("image")
    if isinstance(image, dict) and image.get("pullPolicy") in (None, ""):
        image["pullPolicy"] = default_pull_policy(image.get("reference"))
    _default_legacy_sources(volume)


def _default_legacy_sources(volume: Obj) -> None:
    for source, defaults in (
        ("iscsi", {"iscsiInterface": "default"}),
        ("rbd", {"pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"}),
        ("azureDisk", {"cachingMode": "ReadWrite", "fsType": "ext4", "readOnly": False, "kind": "Shared"}),
        ("scaleIO", {"storageMode": "ThinProvisioned", "fsType": "xfs"}),
    ):
        if isinstance(volume.get(source), dict):
            for name, value in defaults.items():
                if volume[source].get(name) is None:
                    volume[source][name] = value


# --- validation ---------------------------------------------------------------------


def _file_mode(mode: Any, path: str) -> Errors:
    if mode is None:
        return []
    if not is_int(mode) or not 0 <= mode <= 0o777:
        return [invalid_value(path, mode, FILE_MODE_ERROR)]
    return []


def _local_non_reserved_path(value: str, path: str) -> Errors:
    errs: Errors = []
    if value.startswith("/"):
        errs.append(invalid_value(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errs.append(invalid_value(path, value, "must not contain '..'"))
    elif value.startswith(".."):
        errs.append(invalid_value(path, value, "must not start with '..'"))
    return errs


def _key_to_path(item: Obj, path: str) -> Errors:
    errs: Errors = []
    if not item.get("key"):
        errs.append(required(child(path, "key"), ""))
    item_path = as_str(item.get("path"))
    if not item_path:
        errs.append(required(child(path, "path"), ""))
    errs += _local_non_reserved_path(item_path, child(path, "path"))
    return errs + _file_mode(item.get("mode"), child(path, "mode"))


def _items(source: Obj, path: str) -> Errors:
    errs: Errors = []
    for i, item in enumerate(as_list(source.get("items"))):
        errs += _key_to_path(as_dict(item), index(child(path, "items"), i))
    return errs


def _downward_file(item: Obj, path: str) -> Errors:
    errs: Errors = []
    item_path = as_str(item.get("path"))
    if not item_path:
        errs.append(required(child(path, "path"), ""))
    errs += _local_non_reserved_path(item_path, child(path, "path"))
    if isinstance(item.get("fieldRef"), dict):
        errs += validate_object_field_selector(item["fieldRef"], VOLUME_FIELD_PATHS, child(path, "fieldRef"))
        if item.get("resourceFieldRef") is not None:
            errs.append(invalid_value(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
    elif isinstance(item.get("resourceFieldRef"), dict):
        errs += validate_resource_field_selector(item["resourceFieldRef"], child(path, "resourceFieldRef"), True)
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    return errs + _file_mode(item.get("mode"), child(path, "mode"))


def _projected(source: Obj, path: str, allow_token_path: bool) -> Errors:
    errs = _file_mode(source.get("defaultMode"), child(path, "defaultMode"))
    paths: set[str] = set()

    def claim(p: str, owner: Any) -> None:
        if p in paths:
            errs.append(invalid_value(path, owner, "conflicting duplicate paths"))
        paths.add(p)

    for i, src in enumerate(as_list(source.get("sources"))):
        sp, src = index(child(path, "sources"), i), as_dict(src)
        count = 0
        for kind in ("secret", "configMap"):
            if isinstance(src.get(kind), dict):
                count += 1
                if not src[kind].get("name"):
                    errs.append(required(child(child(sp, kind), "name"), ""))
                for j, item in enumerate(as_list(src[kind].get("items"))):
                    item = as_dict(item)
                    errs += _key_to_path(item, index(child(child(sp, kind), "items"), j))
                    if item.get("path"):
                        claim(as_str(item["path"]), as_str(src[kind].get("name")))
        if isinstance(src.get("downwardAPI"), dict):
            count += 1
            for item in dicts(src["downwardAPI"].get("items")):
                errs += _downward_file(item, child(sp, "downwardAPI"))
                if item.get("path"):
                    claim(as_str(item["path"]), item["path"])
        if isinstance(src.get("serviceAccountToken"), dict):
            count += 1
            token, tp = src["serviceAccountToken"], child(sp, "serviceAccountToken")
            seconds = token.get("expirationSeconds")
            if is_int(seconds) and seconds < 600:
                errs.append(invalid_value(child(tp, "expirationSeconds"), seconds, "may not specify a duration less than 10 minutes"))
            if is_int(seconds) and seconds > 1 << 32:
                errs.append(invalid_value(child(tp, "expirationSeconds"), seconds, "may not specify a duration larger than 2^32 seconds"))
            if not token.get("path"):
                errs.append(required(child(path, "path"), ""))
            elif not allow_token_path:
                errs += _local_non_reserved_path(as_str(token["path"]), child(path, "path"))
        if isinstance(src.get("clusterTrustBundle"), dict):
            count += 1
            bundle, bp = src["clusterTrustBundle"], child(sp, "clusterTrustBundle")
            if bundle.get("name") is None and bundle.get("signerName") is None:
                errs.append(required(bp, "either name or signerName must be specified"))
            if not bundle.get("path"):
                errs.append(required(child(bp, "path"), ""))
            else:
                claim(as_str(bundle["path"]), bundle["path"])
        if count > 1:
            errs.append(forbidden_field(sp, "may not specify more than 1 volume type per source"))
    return errs


def _validate_source(name: str, source: Any, path: str, is_pod: bool) -> Errors:
    source = as_dict(source)
    errs: Errors = []
    if name == "emptyDir":
        limit = source.get("sizeLimit")
        if limit is not None:
            try:
                negative = parse_quantity(limit) < 0
            except ValueError:
                negative = True
            if negative:
                errs.append(forbidden_field(child(path, "sizeLimit"), "SizeLimit field must be a valid resource quantity"))
    elif name == "hostPath":
        host_path = as_str(source.get("path"))
        if not host_path:
            return [required(child(path, "path"), "")]
        if ".." in host_path.split("/"):
            errs.append(invalid_value(child(path, "path"), host_path, "must not contain '..'"))
        if source.get("type") is not None and source.get("type") not in HOST_PATH_TYPES:
            errs.append(not_supported(child(path, "type"), source["type"], HOST_PATH_TYPES))
    elif name == "secret":
        if not source.get("secretName"):
            errs.append(required(child(path, "secretName"), ""))
        errs += _file_mode(source.get("defaultMode"), child(path, "defaultMode")) + _items(source, path)
    elif name == "configMap":
        if not source.get("name"):
            errs.append(required(child(path, "name"), ""))
        errs += _file_mode(source.get("defaultMode"), child(path, "defaultMode")) + _items(source, path)
    elif name == "persistentVolumeClaim":
        if not source.get("claimName"):
            errs.append(required(child(path, "claimName"), ""))
    elif name == "nfs":
        if not source.get("server"):
            errs.append(required(child(path, "server"), ""))
        nfs_path = as_str(source.get("path"))
        if not nfs_path:
            errs.append(required(child(path, "path"), ""))
        if not nfs_path.startswith("/"):
            errs.append(invalid_value(child(path, "path"), nfs_path, "must be an absolute path"))
    elif name == "downwardAPI":
        errs += _file_mode(source.get("defaultMode"), child(path, "defaultMode"))
        for item in dicts(source.get("items")):
            errs += _downward_file(item, path)
    elif name == "projected":
        errs += _projected(source, path, allow_token_path=False)
    elif name == "ephemeral":
        if source.get("volumeClaimTemplate") is None:
            errs.append(required(child(path, "volumeClaimTemplate"), ""))
    elif name == "image":
        if is_pod and not source.get("reference"):
            errs.append(required(child(path, "reference"), ""))
        policy = source.get("pullPolicy")
        if policy in (None, ""):
            errs.append(required(child(path, "pullPolicy"), ""))
        elif policy not in PULL_POLICIES:
            errs.append(not_supported(child(path, "pullPolicy"), policy, PULL_POLICIES))
    else:
        for field_name in _REQUIRED_FIELDS.get(name, ()):
            if source.get(field_name) in (None, "", []):
                errs.append(required(child(path, field_name), ""))
    return errs


def validate_volumes(volumes: Any, path: str, is_pod: bool = False) -> tuple[dict[str, Obj], Errors]:
    """Validate ``spec.volumes``; return (valid volumes by name, errors)."""
    valid: dict[str, Obj] = {}
    errs: Errors = []
    names: set[str] = set()
    for i, volume in enumerate(as_list(volumes)):
        p, volume = index(path, i), as_dict(volume)
        name = volume.get("name")
        verrs: Errors = []
        count = 0
        for source in VOLUME_SOURCES:
            if volume.get(source) is None:
                continue
            if count > 0:
                verrs.append(forbidden_field(child(p, source), "may not specify more than 1 volume type"))
                continue
            count += 1
            verrs += _validate_source(source, volume[source], child(p, source), is_pod)
        if count == 0:
            verrs.append(required(p, "must specify a volume type"))
        if not name:
            verrs.append(required(child(p, "name"), ""))
        else:
            verrs += validate_dns1123_label(as_str(name) if isinstance(name, str) else str(name), child(p, "name"))
        if name in names:
            verrs.append(duplicate(child(p, "name"), name))
        if verrs:
            errs += verrs
        else:
            names.add(as_str(name))
            valid[as_str(name)] = volume
    return valid, errs
