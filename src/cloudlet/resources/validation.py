"""Name, label and object-metadata validation, worded as apimachinery words it.

The ``is_*`` functions return a list of message strings (empty when valid),
exactly like ``k8s.io/apimachinery/pkg/util/validation``; the ``validate_*``
functions return :class:`FieldError` lists with Kubernetes field paths. Kind
modules call :func:`validate_object_meta` on every create and update, plus
:func:`validate_object_meta_update` on updates.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from cloudlet.api.errors import FieldError, forbidden_field, invalid_value, required
from cloudlet.resources._util import (
    Errors,
    Obj,
    as_dict,
    as_list,
    as_str,
    child,
    go_string_slice,
    index,
    is_int,
    str_map,
)

NameCheck = Callable[..., list[str]]

# --- message helpers (k8s.io/apimachinery/pkg/util/validation) ---------------


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``RegexError``: the message, examples, and the regex used."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{example}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
DNS1123_LABEL_US_FMT = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_US_FMT = DNS1123_LABEL_US_FMT + "(\\." + DNS1123_LABEL_US_FMT + ")*"
DNS1123_SUBDOMAIN_US_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' "
    "or '.', and must start and end with an alphanumeric character"
)
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
C_IDENTIFIER_ERR = (
    "a valid C identifier must start with alphabetic character or '_', followed by a string of "
    "alphanumeric characters or '_'"
)
ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
ENV_VAR_NAME_ERR = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit"
)
RELAXED_ENV_VAR_NAME_ERR = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_MAP_KEY_ERR = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
PERCENT_FMT = "[0-9]+%"
PERCENT_ERR = "a valid percent string must be a numeric string followed by an ending '%'"
HTTP_HEADER_FMT = "[-A-Za-z0-9]+"
HTTP_HEADER_ERR = "a valid HTTP header must consist of alphanumeric characters or '-'"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def _match(fmt: str, value: str) -> bool:
    # fullmatch: Go's "^...$" does not accept a trailing newline, Python's "$" would.
    return re.fullmatch(fmt, value) is not None


# --- string formats ----------------------------------------------------------


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _match(DNS1123_LABEL_FMT, value):
        if _match(DNS1123_SUBDOMAIN_FMT, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _match(DNS1123_SUBDOMAIN_FMT, value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_subdomain_with_underscore(value: str) -> list[str]:
    """The relaxed subdomain rule used for pod DNS search domains."""
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _match(DNS1123_SUBDOMAIN_US_FMT, value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_US_ERR, DNS1123_SUBDOMAIN_US_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _match(DNS1035_LABEL_FMT, value):
        errs.append(regex_error(DNS1035_LABEL_ERR, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key / qualified name: optional DNS-subdomain prefix, ``/``, a 63-char name."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif len(name) > LABEL_VALUE_MAX:
        errs.append("name part " + max_len_error(LABEL_VALUE_MAX))
    if not _match(QUALIFIED_NAME_FMT, name):
        errs.append(
            "name part "
            + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _match(LABEL_VALUE_FMT, value):
        errs.append(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_c_identifier(value: str) -> list[str]:
    if not _match(C_IDENTIFIER_FMT, value):
        return [regex_error(C_IDENTIFIER_ERR, C_IDENTIFIER_FMT, "my_name", "MY_NAME", "MyName")]
    return []


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_env_var_name(value: str) -> list[str]:
    """The classic (strict) environment variable name rule."""
    errs: list[str] = []
    if not _match(ENV_VAR_NAME_FMT, value):
        errs.append(
            regex_error(ENV_VAR_NAME_ERR, ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")
        )
    return errs + _chdir_prefix(value)


def is_relaxed_env_var_name(value: str) -> list[str]:
    """The rule Kubernetes applies since RelaxedEnvironmentVariableValidation went GA."""
    errs: list[str] = []
    if not value:
        errs.append("environment variable name " + empty_error())
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in value):
        errs.append(RELAXED_ENV_VAR_NAME_ERR)
    return errs


def is_config_map_key(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _match(CONFIG_MAP_KEY_FMT, value):
        errs.append(
            regex_error(CONFIG_MAP_KEY_ERR, CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name")
        )
    return errs + _chdir_prefix(value)


def is_valid_port_num(port: Any) -> list[str]:
    if is_int(port) and 1 <= port <= 65535:
        return []
    return [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errs: list[str] = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _match("[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(value: str) -> list[str]:
    if not _match(PERCENT_FMT, value):
        return [regex_error(PERCENT_ERR, PERCENT_FMT, "1%", "93%")]
    return []


def is_http_header_name(value: str) -> list[str]:
    if not _match(HTTP_HEADER_FMT, value):
        return [regex_error(HTTP_HEADER_ERR, HTTP_HEADER_FMT, "X-Header-Name")]
    return []


def is_path_segment_name(value: str, prefix: bool = False) -> list[str]:
    """``path.ValidatePathSegmentName``: the name must be usable as one URL path segment."""
    if not prefix and value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse like ``netutils.ParseIPSloppy`` (IPv4 octets may carry leading zeros)."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        try:
            return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
        except ValueError:
            return None
    return None


def is_valid_cidr(value: str) -> bool:
    if "/" not in value:
        return False
    ip, _, bits = value.partition("/")
    if parse_ip(ip) is None or not bits.isdigit():
        return False
    try:
        ipaddress.ip_network(f"{parse_ip(ip)}/{bits}", strict=False)
    except ValueError:
        return False
    return True


def validate_ip(value: Any, path: str) -> Errors:
    if isinstance(value, str) and parse_ip(value) is not None:
        return []
    return [invalid_value(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]


def validate_cidr(value: Any, path: str) -> Errors:
    if isinstance(value, str) and is_valid_cidr(value):
        return []
    return [invalid_value(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]


def validate_non_special_ip(value: str, path: str) -> Errors:
    """Endpoints may not point at unspecified, loopback or link-local addresses."""
    ip = parse_ip(value)
    if ip is None:
        return [invalid_value(path, value, "must be a valid IP address")]
    errs: Errors = []
    if ip.is_unspecified:
        errs.append(invalid_value(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid_value(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and not ip.is_multicast:
        errs.append(invalid_value(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    link_local_mcast = ipaddress.ip_network("224.0.0.0/24") if ip.version == 4 else ipaddress.ip_network("ff02::/16")
    if ip in link_local_mcast:
        errs.append(invalid_value(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return errs


# --- name functions for metadata.name (prefix=True for generateName) --------


def _mask_trailing_dash(name: str) -> str:
    # apimachinery's maskTrailingDash (which drops the character before the dash too).
    if name.endswith("-"):
        return name[:-2] + "a" if len(name) >= 2 else "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool = False) -> list[str]:
    return is_path_segment_name(name, prefix)


# --- FieldError builders -----------------------------------------------------


def validate_dns1123_label(value: str, path: str) -> Errors:
    return [invalid_value(path, value, msg) for msg in is_dns1123_label(value)]


def validate_dns1123_subdomain(value: str, path: str) -> Errors:
    return [invalid_value(path, value, msg) for msg in is_dns1123_subdomain(value)]


def validate_qualified_name(value: str, path: str) -> Errors:
    return [invalid_value(path, value, msg) for msg in is_qualified_name(value)]


def validate_nonnegative(value: Any, path: str) -> Errors:
    if value is None:
        return []
    if not is_int(value):
        return [invalid_value(path, value, "must be an integer")]
    return [invalid_value(path, value, IS_NEGATIVE)] if value < 0 else []


def validate_immutable(new: Any, old: Any, path: str) -> Errors:
    """``ValidateImmutableField``: ``Invalid value: <new>: field is immutable``."""
    return [] if new == old else [invalid_value(path, new, FIELD_IMMUTABLE)]


def validate_label_name(name: Any, path: str) -> Errors:
    return [invalid_value(path, name, msg) for msg in is_qualified_name(as_str(name))]


def validate_labels(labels: Any, path: str) -> Errors:
    """Keys are qualified names, values label values; errors point at the map itself."""
    if labels is not None and not isinstance(labels, dict):
        return [invalid_value(path, labels, "must be a map of string keys to string values")]
    errs: Errors = []
    for k, v in as_dict(labels).items():
        errs += validate_label_name(k, path)
        if not isinstance(v, str):
            errs.append(invalid_value(path, v, "label values must be strings"))
            continue
        errs += [invalid_value(path, v, msg) for msg in is_valid_label_value(v)]
    return errs


def validate_annotations(annotations: Any, path: str) -> Errors:
    """Keys are case-insensitive qualified names; total size is capped at 256 KiB."""
    if annotations is not None and not isinstance(annotations, dict):
        return [invalid_value(path, annotations, "must be a map of string keys to string values")]
    errs: Errors = []
    total = 0
    for k, v in as_dict(annotations).items():
        errs += [invalid_value(path, k, msg) for msg in is_qualified_name(str(k).lower())]
        if not isinstance(v, str):
            errs.append(invalid_value(path, v, "annotation values must be strings"))
            v = str(v)
        total += len(str(k).encode()) + len(v.encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(FieldError("TooLong", path, None, f"must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"))
    return errs


def validate_owner_references(refs: Any, path: str) -> Errors:
    errs: Errors = []
    first_controller = ""
    for ref in as_list(refs):
        ref = as_dict(ref)
        api_version, kind = as_str(ref.get("apiVersion")), as_str(ref.get("kind"))
        group, _, version = api_version.rpartition("/")
        if api_version.count("/") > 1:
            group, version = "", ""
        if not version:
            errs.append(invalid_value(child(path, "apiVersion"), api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid_value(child(path, "kind"), kind, "must not be empty"))
        if not as_str(ref.get("name")):
            errs.append(invalid_value(child(path, "name"), as_str(ref.get("name")), "must not be empty"))
        if not as_str(ref.get("uid")):
            errs.append(invalid_value(child(path, "uid"), as_str(ref.get("uid")), "must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            errs.append(invalid_value(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{as_str(ref.get('name'))}"
            if first_controller:
                errs.append(invalid_value(path, refs, 'Only one reference can have Controller set to true. Found "true" in references for '
                                          f"{first_controller} and {current}"))
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Any, path: str, kube_names: bool = True) -> Errors:
    """Qualified names; unprefixed ones must be Kubernetes' standard finalizers."""
    errs: Errors = []
    names = [as_str(f) for f in as_list(finalizers)]
    for name in names:
        errs += [invalid_value(path, name, msg) for msg in is_qualified_name(name)]
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(invalid_value(path, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    if kube_names:
        for i, name in enumerate(names):
            if "/" not in name and name not in STANDARD_FINALIZERS:
                errs.append(invalid_value(index(path, i), name, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def validate_object_meta(
    meta: Any,
    namespaced: bool,
    path: str = "metadata",
    name_check: NameCheck = name_is_dns_subdomain,
    kube_finalizers: bool = True,
) -> Errors:
    """``ValidateObjectMeta``: name (or generateName), namespace, labels, annotations, refs.

    ``name_check(name, prefix)`` returns messages for a bad name; ``prefix`` is True
    when checking ``generateName``. A missing name is accepted while a valid
    ``generateName`` is present (the server generates the name).
    """
    if not isinstance(meta, dict):
        return [required(child(path, "name"), "name or generateName is required")]
    errs: Errors = []
    name, generate_name = meta.get("name"), meta.get("generateName")
    gen_ok = False
    if generate_name not in (None, ""):
        if not isinstance(generate_name, str):
            errs.append(invalid_value(child(path, "generateName"), generate_name, "must be a string"))
        else:
            msgs = name_check(generate_name, True)
            errs += [invalid_value(child(path, "generateName"), generate_name, m) for m in msgs]
            gen_ok = not msgs
    if name in (None, ""):
        if not gen_ok:
            errs.append(required(child(path, "name"), "name or generateName is required"))
    elif not isinstance(name, str):
        errs.append(invalid_value(child(path, "name"), name, "must be a string"))
    else:
        errs += [invalid_value(child(path, "name"), name, m) for m in name_check(name, False)]
    namespace = meta.get("namespace")
    if namespaced:
        if namespace in (None, ""):
            errs.append(required(child(path, "namespace"), ""))
        else:
            ns = namespace if isinstance(namespace, str) else str(namespace)
            errs += [invalid_value(child(path, "namespace"), namespace, m) for m in name_is_dns_label(ns)]
    elif namespace not in (None, ""):
        errs.append(forbidden_field(child(path, "namespace"), "not allowed on this type"))
    errs += validate_nonnegative(meta.get("generation"), child(path, "generation"))
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences"))
    errs += validate_finalizers(meta.get("finalizers"), child(path, "finalizers"), kube_finalizers)
    return errs


def validate_object_meta_update(new: Any, old: Any, path: str = "metadata") -> Errors:
    """``ValidateObjectMetaUpdate``: identity fields are immutable; no new finalizers once deleting.

    Accepts the two metadata dicts (or whole objects, whose ``metadata`` is used).
    Empty ``uid``/``creationTimestamp`` in ``new`` are not errors: the server copies
    them from the stored object, as ``rest.BeforeUpdate`` does.
    """
    new_meta = as_dict(new.get("metadata")) if isinstance(new, dict) and "metadata" in new else as_dict(new)
    old_meta = as_dict(old.get("metadata")) if isinstance(old, dict) and "metadata" in old else as_dict(old)
    errs: Errors = []
    if old_meta.get("deletionTimestamp"):
        extra = sorted(set(map(as_str, as_list(new_meta.get("finalizers")))) - set(map(as_str, as_list(old_meta.get("finalizers")))))
        if extra:
            errs.append(forbidden_field(child(path, "finalizers"),
                                        "no new finalizers can be added if the object is being deleted, "
                                        f"found new finalizers {go_string_slice(extra)}"))
    for name in ("name", "namespace"):
        errs += validate_immutable(new_meta.get(name) or "", old_meta.get(name) or "", child(path, name))
    for name in ("uid", "creationTimestamp"):
        if new_meta.get(name):
            errs += validate_immutable(new_meta.get(name), old_meta.get(name), child(path, name))
    return errs


# --- label selectors -----------------------------------------------------------

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(spec: Any, path: str) -> Errors:
    """``metav1.LabelSelector``: matchLabels, matchExpressions (operator, key, values)."""
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [invalid_value(path, spec, "must be a label selector object")]
    errs = validate_labels(spec.get("matchLabels"), child(path, "matchLabels"))
    for i, expr in enumerate(as_list(spec.get("matchExpressions"))):
        p = index(child(path, "matchExpressions"), i)
        expr = as_dict(expr)
        op, values = expr.get("operator"), as_list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(child(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden_field(child(p, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid_value(child(p, "operator"), op if op is not None else "", "not a valid selector operator"))
        errs += validate_label_name(as_str(expr.get("key")), child(p, "key"))
        for j, value in enumerate(values):
            errs += [invalid_value(index(child(p, "values"), j), value, m) for m in is_valid_label_value(as_str(value))]
    return errs


def selector_is_empty(selector: Any) -> bool:
    sel = as_dict(selector)
    return not as_dict(sel.get("matchLabels")) and not as_list(sel.get("matchExpressions"))


def selector_matches(selector: Any, labels: Any) -> bool:
    """Does a ``metav1.LabelSelector`` select these labels? ``None`` selects nothing."""
    if not isinstance(selector, dict):
        return False
    have = str_map(labels)
    for k, v in str_map(selector.get("matchLabels")).items():
        if have.get(k) != v:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_dict(expr)
        k, op = as_str(expr.get("key")), expr.get("operator")
        values = [as_str(v) for v in as_list(expr.get("values"))]
        if op == "In" and (k not in have or have[k] not in values):
            return False
        if op == "NotIn" and k in have and have[k] in values:
            return False
        if op == "Exists" and k not in have:
            return False
        if op == "DoesNotExist" and k in have:
            return False
    return True


def meta_of(obj: Obj) -> Obj:
    return as_dict(obj.get("metadata"))
