"""Pod and container security context validation (ids, seccomp, AppArmor, ...)."""

from __future__ import annotations

from typing import Any

from cloudlet.api.errors import invalid_value, not_supported, required
from cloudlet.resources._util import Errors, as_dict, as_list, as_str, child, is_int
from cloudlet.resources.validation import inclusive_range_error

MAX_UINT32 = 4294967295


def local_descending_path(value: str, path: str) -> Errors:
    """A relative path without ``..`` elements (``validateLocalDescendingPath``)."""
    errs: Errors = []
    if value.startswith("/"):
        errs.append(invalid_value(path, value, "must be a relative path"))
    if ".." in value.replace("\\", "/").split("/"):
        errs.append(invalid_value(path, value, "must not contain '..'"))
    return errs


def validate_id(value: Any, path: str) -> Errors:
    if value is None:
        return []
    if not is_int(value) or not 0 <= value <= MAX_UINT32:
        return [invalid_value(path, value, inclusive_range_error(0, MAX_UINT32))]
    return []


def validate_seccomp_profile(profile: Any, path: str) -> Errors:
    if profile is None:
        return []
    profile = as_dict(profile)
    errs: Errors = []
    kind = profile.get("type")
    if kind in (None, ""):
        errs.append(required(child(path, "type"), "type is required when seccompProfile is set"))
    elif kind not in ("Localhost", "RuntimeDefault", "Unconfined"):
        errs.append(not_supported(child(path, "type"), kind, ("Localhost", "RuntimeDefault", "Unconfined")))
    localhost = profile.get("localhostProfile")
    if kind == "Localhost":
        if localhost is None:
            errs.append(required(child(path, "localhostProfile"), "must be set when seccomp type is Localhost"))
        else:
            errs += local_descending_path(as_str(localhost), child(path, "localhostProfile"))
    elif localhost is not None:
        errs.append(invalid_value(child(path, "localhostProfile"), profile, "can only be set when seccomp type is Localhost"))
    return errs


def validate_apparmor_profile(profile: Any, path: str) -> Errors:
    if profile is None:
        return []
    profile = as_dict(profile)
    kind, localhost = profile.get("type"), profile.get("localhostProfile")
    if kind == "Localhost":
        if localhost is None or not as_str(localhost).strip():
            return [required(child(path, "localhostProfile"), "must be set when AppArmor type is Localhost")]
        if as_str(localhost).strip() != localhost:
            return [invalid_value(child(path, "localhostProfile"), localhost, "must not be padded with whitespace")]
        return []
    if kind in ("RuntimeDefault", "Unconfined"):
        if localhost is not None:
            return [invalid_value(child(path, "localhostProfile"), localhost, "can only be set when AppArmor type is Localhost")]
        return []
    if kind in (None, ""):
        return [required(child(path, "type"), "type is required when appArmorProfile is set")]
    return [not_supported(child(path, "type"), kind, ("Localhost", "RuntimeDefault", "Unconfined"))]


def validate_security_context(sc: Any, path: str, host_users: bool) -> Errors:
    if sc is None:
        return []
    sc = as_dict(sc)
    errs = validate_id(sc.get("runAsUser"), child(path, "runAsUser"))
    errs += validate_id(sc.get("runAsGroup"), child(path, "runAsGroup"))
    proc_mount = sc.get("procMount")
    if proc_mount is not None:
        if proc_mount not in ("Default", "Unmasked"):
            errs.append(not_supported(child(path, "procMount"), proc_mount, ("Default", "Unmasked")))
        if host_users and proc_mount == "Unmasked":
            errs.append(invalid_value(child(path, "procMount"), proc_mount, "`hostUsers` must be false to use `Unmasked`"))
    errs += validate_seccomp_profile(sc.get("seccompProfile"), child(path, "seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            errs.append(invalid_value(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
        if "CAP_SYS_ADMIN" in as_list(as_dict(sc.get("capabilities")).get("add")):
            errs.append(invalid_value(path, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
    errs += validate_apparmor_profile(sc.get("appArmorProfile"), child(path, "appArmorProfile"))
    return errs
