"""PATCH bodies applied to stored objects: JSON patch, JSON merge patch, strategic merge patch.

The API server's PATCH handler picks one of these by Content-Type
(``application/json-patch+json``, ``application/merge-patch+json``,
``application/strategic-merge-patch+json``) and applies it to the stored
object before defaulting, validation and the compare-and-swap write. All three
are pure functions over plain JSON values (dicts, lists, str, int, float,
bool, None): no I/O, and the inputs are never mutated (each works on a deep
copy, so a failed patch can never leave a half-written object behind).

Contracts:

* :func:`json_patch` is RFC 6902 as kube-apiserver applies it (it uses
  evanphx/json-patch v4): ops run in order and the patch is all-or-nothing.
  Where Kubernetes departs from the RFC, cloudlet follows Kubernetes so
  scripts written against a real cluster behave the same here: ``replace`` of
  a missing *object member* adds it (its parent must exist); negative array
  indices count from the end; an omitted ``value`` means ``null``; ``test``
  treats an absent member as ``null`` (so ``{"op": "test", "path": ...,
  "value": null}`` asserts absence); the
  root ``""`` may be tested or replaced (by an object or array) but not
  added, removed, moved or copied. At most 10000 operations; ``copy`` may add
  at most 3 MiB in total.
* :func:`merge_patch` is RFC 7386 (a non-object patch replaces the whole
  target, so a caller patching an object must check the result is one). Like
  Kubernetes, a value added where the target had no object also loses null
  members of objects nested inside arrays.
* :func:`strategic_merge_patch` is Kubernetes' strategic merge patch as
  kube-apiserver applies it to built-in kinds (``$patch``, ``$retainKeys``,
  ``$setElementOrder/<list>``, ``$deleteFromPrimitiveList/<list>``, null
  deletes), driven by a table of the real Go struct tags (``patchStrategy`` /
  ``patchMergeKey``). Lists without a merge strategy are replaced whole. For a
  (group, kind) without a table every list is atomic but directives still
  work. Values the patch adds outright are stored without directive keys and
  without nulls, as a round trip through the typed Go struct would leave them.
  Item order matches kube-apiserver's, including where server-only items land
  when an apply adds and deletes items around them. Where Kubernetes is
  erratic cloudlet picks one behaviour: a list and its
  ``$deleteFromPrimitiveList`` in one patch merge first, then delete (Go's map
  order makes it vary); ``$patch: replace`` on a map the object lacks keeps
  the map (Kubernetes silently drops it); an empty list under
  ``$setElementOrder`` is fine (Kubernetes answers 500).

Every failure is a :class:`PatchError` (a Kubernetes ``Status`` error); no
other exception type escapes, whatever the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import orjson

from cloudlet.api.errors import APIError
from cloudlet.api.jsonkinds import go_json_kind, go_value_type

__all__ = [
    "MAX_JSON_PATCH_COPY_BYTES",
    "MAX_JSON_PATCH_OPERATIONS",
    "PatchError",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
    "supports_strategic_merge",
]

#: kube-apiserver's ``maxJSONPatchOperations``.
MAX_JSON_PATCH_OPERATIONS: Final = 10000
#: kube-apiserver's default ``JSONPatchMaxCopyBytes`` (3 MiB).
MAX_JSON_PATCH_COPY_BYTES: Final = 3 * 1024 * 1024

_INVALID_MESSAGE: Final = "the server rejected our request due to an error in our request"
_MAX_MESSAGE: Final = 2000


# --- errors -------------------------------------------------------------------


class PatchError(APIError):
    """A patch that cannot be applied, with the status kube-apiserver returns for it.

    ``code``/``reason``/``message`` are what goes into the ``Status``:

    * **400 BadRequest** - the patch document is malformed: a JSON patch that is
      not a list of objects, a merge/strategic patch body that is not an
      object, a value that is not JSON, or a strategic-merge directive of the
      wrong shape (``$retainKeys`` not a list, a ``$setElementOrder`` list that
      does not match its patch list, a list item without its merge key, an
      unknown ``$patch`` value...). Kubernetes answers 400 for the
      ``mergepatch.ErrBadPatchFormat*`` family and 500 for the rest of these;
      cloudlet never answers 500, so all of them are 400 here.
    * **422 Invalid** - a well-formed JSON patch that does not apply to this
      object (missing path, failed ``test``, unknown ``op``, bad array index,
      copy size limit) and a strategic patch containing a list of lists. This
      is what kube-apiserver returns today
      (``NewGenericServerResponse(422, ...)``): the message is the fixed
      "the server rejected our request due to an error in our request" and
      the specific reason rides in ``details.causes[0].message`` (``cause``),
      which is what ``kubectl`` prints after "The request is invalid".
    * **413 RequestEntityTooLarge** - more than 10000 JSON patch operations.
    """

    def __init__(self, code: int, reason: str, message: str, cause: str = "") -> None:
        message = _truncate(message)
        cause = _truncate(cause)
        details: dict[str, Any] | None = None
        if cause:
            details = {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]}
        super().__init__(code, reason, message, details)
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.message}: {self.cause}" if self.cause else self.message


def _truncate(s: str) -> str:
    return s if len(s) <= _MAX_MESSAGE else s[: _MAX_MESSAGE - 3] + "..."


def _bad_request(message: str) -> PatchError:
    return PatchError(400, "BadRequest", message)


def _unprocessable(cause: str) -> PatchError:
    return PatchError(422, "Invalid", _INVALID_MESSAGE, cause)


# --- JSON helpers -------------------------------------------------------------


_UNFORESEEN: Final = (RecursionError, TypeError, ValueError, KeyError, IndexError, AttributeError)


@contextmanager
def _never_500(what: str) -> Iterator[None]:
    """Safety net: input this code did not foresee is still a bad request, never a 500.

    The original exception is kept as ``__cause__`` (tests assert it never fires).
    """
    try:
        yield
    except PatchError:
        raise
    except _UNFORESEEN as exc:
        raise _bad_request(f"unable to apply {what}: {exc!r}") from exc


def _deep_copy(value: Any, what: str) -> Any:
    """Deep copy via orjson; also proves ``value`` is JSON (and at most 255 deep)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (orjson.JSONEncodeError, orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise _bad_request(f"{what} is not a valid JSON document: {exc}") from None




def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 == 1.0, object key order is irrelevant."""
    ka, kb = go_json_kind(a), go_json_kind(b)
    if ka != kb:
        return False
    if ka == "object":
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if ka == "array":
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _hkey(v: Any) -> tuple[Any, ...]:
    """A hashable identity for a JSON value, consistent with :func:`_json_equal` for scalars."""
    kind = go_json_kind(v)
    if kind in ("object", "array"):
        return (kind, orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return (kind, v)


def _go_fmt(v: Any) -> str:
    """Render a JSON value roughly like Go's ``%v`` does, for familiar error text."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    if isinstance(v, list):
        return "[" + " ".join(_go_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_fmt(v[k])}" for k in sorted(v)) + "]"
    return str(v)


# --- RFC 6902 JSON patch --------------------------------------------------------

_INDEX_RE: Final = re.compile(r"[-+]?[0-9]{1,18}")
_MISSING: Final = object()


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations) to ``doc``; return the new document.

    ``doc`` is not modified. A ``null`` patch is an empty patch (as in
    Kubernetes). Raises :class:`PatchError`: 400 for a patch that is not a list
    of objects, 413 for more than :data:`MAX_JSON_PATCH_OPERATIONS` operations,
    422 for an operation that does not apply.
    """
    if ops is None:
        ops = []
    if not isinstance(ops, list):
        raise _bad_request(
            f"json: cannot unmarshal {go_json_kind(ops)} into Go value of type jsonpatch.Patch"
        )
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise _bad_request(
                f"json: cannot unmarshal {go_json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            413,
            "RequestEntityTooLarge",
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(ops)}",
        )
    ops = _deep_copy(ops, "patch")
    patcher = _JSONPatcher(_deep_copy(doc, "object"))
    with _never_500("JSON patch"):
        for op in ops:
            patcher.apply(op or {})
    result = patcher.root
    return result


def _decode_pointer(path: str) -> list[str] | None:
    """Split a JSON pointer into unescaped tokens; ``None`` if it is not a pointer."""
    if not path.startswith("/"):
        return None
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _array_index(token: str, length: int) -> int | None:
    """Index for reading/replacing/removing; negative counts from the end (as Kubernetes)."""
    if not _INDEX_RE.fullmatch(token):
        return None
    i = int(token)
    if i < 0:
        i += length
    return i if 0 <= i < length else None


class _JSONPatcher:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.copied = 0

    # navigation

    def _parent(self, tokens: list[str]) -> Any:
        """The container holding the last token, or _MISSING."""
        node = self.root
        for tok in tokens[:-1]:
            if isinstance(node, dict):
                if tok not in node:
                    return _MISSING
                node = node[tok]
            elif isinstance(node, list):
                i = _array_index(tok, len(node))
                if i is None:
                    return _MISSING
                node = node[i]
            else:
                return _MISSING
        return node if isinstance(node, dict | list) else _MISSING

    def _get(self, path: str, *, root_ok: bool = False) -> Any:
        """The value at ``path`` or _MISSING ("" is the root only when ``root_ok``)."""
        if path == "":
            return self.root if root_ok else _MISSING
        tokens = _decode_pointer(path)
        if tokens is None:
            return _MISSING
        parent = self._parent(tokens)
        key = tokens[-1]
        if isinstance(parent, dict):
            return parent.get(key, _MISSING)
        if isinstance(parent, list):
            i = _array_index(key, len(parent))
            return _MISSING if i is None else parent[i]
        return _MISSING

    # operations

    def apply(self, op: dict[str, Any]) -> None:
        kind = op.get("op")
        if not isinstance(kind, str):
            kind = "unknown"
        handler = {
            "add": self._add,
            "remove": self._remove,
            "replace": self._replace,
            "move": self._move,
            "copy": self._copy,
            "test": self._test,
        }.get(kind)
        if handler is None:
            raise _unprocessable(f"Unexpected kind: {kind}")
        path = op.get("path")
        if not isinstance(path, str):
            raise _unprocessable(f"{kind} operation failed to decode path: missing value")
        handler(op, path)

    @staticmethod
    def _value(op: dict[str, Any]) -> Any:
        # Kubernetes reads an omitted "value" as null rather than rejecting the op.
        return op.get("value")

    @staticmethod
    def _from(op: dict[str, Any], kind: str) -> str:
        src = op.get("from")
        if not isinstance(src, str):
            raise _unprocessable(f"{kind} operation failed to decode from: missing value")
        return src

    def _insert(self, path: str, value: Any, what: str) -> None:
        """RFC 6902 "add" semantics; ``what`` prefixes error messages.

        As in Kubernetes, the root itself ("") is not a valid target.
        """
        tokens = _decode_pointer(path)
        parent = _MISSING if tokens is None else self._parent(tokens)
        if parent is _MISSING or tokens is None:
            raise _unprocessable(
                f'{what} operation does not apply: doc is missing path: "{path}": missing value'
            )
        key = tokens[-1]
        if isinstance(parent, dict):
            parent[key] = value
            return
        if key == "-":
            parent.append(value)
            return
        if not _INDEX_RE.fullmatch(key):
            raise _unprocessable(
                f"error in {what} for path: '{path}': value was not a proper array index: '{key}'"
            )
        i = int(key)
        size = len(parent) + 1
        if i < 0:
            i += size
        if not 0 <= i < size:
            raise _unprocessable(
                f"error in {what} for path: '{path}': Unable to access invalid index: {key}: "
                "invalid index referenced"
            )
        parent.insert(i, value)

    def _delete(self, path: str, what: str) -> Any:
        """Remove and return the value at ``path``."""
        tokens = None if path == "" else _decode_pointer(path)
        parent = _MISSING if tokens is None else self._parent(tokens)
        if parent is _MISSING or tokens is None:
            raise _unprocessable(
                f'{what} operation does not apply: doc is missing path: "{path}": missing value'
            )
        key = tokens[-1]
        if isinstance(parent, dict):
            if key not in parent:
                raise _unprocessable(
                    f"error in {what} for path: '{path}': Unable to remove nonexistent key: "
                    f"{key}: missing value"
                )
            return parent.pop(key)
        i = _array_index(key, len(parent))
        if i is None:
            raise _unprocessable(
                f"error in {what} for path: '{path}': Unable to access invalid index: {key}: "
                "invalid index referenced"
            )
        return parent.pop(i)

    def _add(self, op: dict[str, Any], path: str) -> None:
        self._insert(path, self._value(op), "add")

    def _remove(self, op: dict[str, Any], path: str) -> None:
        self._delete(path, "remove")

    def _replace(self, op: dict[str, Any], path: str) -> None:
        value = self._value(op)
        if path == "":
            if not isinstance(value, dict | list):
                raise _unprocessable("replace operation value must be object or array")
            self.root = value
            return
        tokens = _decode_pointer(path)
        parent = _MISSING if tokens is None else self._parent(tokens)
        if parent is _MISSING or tokens is None:
            raise _unprocessable(
                f"replace operation does not apply: doc is missing path: {path}: missing value"
            )
        key = tokens[-1]
        if isinstance(parent, dict):
            # Kubernetes (evanphx/json-patch v4) lets replace create a missing member.
            parent[key] = value
            return
        i = _array_index(key, len(parent))
        if i is None:
            raise _unprocessable(
                f"replace operation does not apply: doc is missing key: {path}: missing value"
            )
        parent[i] = value

    def _move(self, op: dict[str, Any], path: str) -> None:
        src = self._from(op, "move")
        if self._get(src) is _MISSING:
            raise _unprocessable(
                f"move operation does not apply: doc is missing from path: {src}: missing value"
            )
        if src == path:
            return
        value = self._delete(src, "move")
        try:
            self._insert(path, value, "move")
        except PatchError as exc:
            if "doc is missing path" in exc.cause:
                raise _unprocessable(
                    f"move operation does not apply: doc is missing destination path: {path}: "
                    "missing value"
                ) from None
            raise

    def _copy(self, op: dict[str, Any], path: str) -> None:
        src = self._from(op, "copy")
        value = self._get(src)
        if value is _MISSING:
            raise _unprocessable(
                f"copy operation does not apply: doc is missing from path: {src}: missing value"
            )
        raw = orjson.dumps(value)
        self.copied += len(raw)
        if self.copied > MAX_JSON_PATCH_COPY_BYTES:
            raise _unprocessable(
                "Unable to complete the copy, the accumulated size increase of copy is "
                f"{self.copied}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
            )
        try:
            self._insert(path, orjson.loads(raw), "copy")
        except PatchError as exc:
            if "doc is missing path" in exc.cause:
                raise _unprocessable(
                    f"copy operation does not apply: doc is missing destination path: {path}: "
                    "missing value"
                ) from None
            raise

    def _test(self, op: dict[str, Any], path: str) -> None:
        # As in Kubernetes, an absent member tests equal to null (and so does
        # an omitted "value"), so {"op": "test", "value": null} asserts absence.
        expected = self._value(op)
        if path != "":
            tokens = _decode_pointer(path)
            if tokens is None or self._parent(tokens) is _MISSING:
                raise _unprocessable(
                    f"test operation does not apply: is missing path: {path}: missing value"
                )
        actual = self._get(path, root_ok=True)
        if actual is _MISSING:
            tokens = _decode_pointer(path) or []
            if isinstance(self._parent(tokens), dict):
                actual = None
        if actual is _MISSING or not _json_equal(actual, expected):
            raise _unprocessable(f"testing value {path} failed: test failed")


# --- RFC 7386 JSON merge patch --------------------------------------------------


def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch to ``doc``; return the new document.

    An object patch merges key by key (``null`` deletes, nested objects
    recurse); any other patch replaces the target outright, at every level
    including the top. ``doc`` and ``patch`` are not modified. Raises
    :class:`PatchError` (400) only when an input is not JSON.
    """
    target, patch = _deep_copy(doc, "object"), _deep_copy(patch, "patch")
    with _never_500("merge patch"):
        result = _merge_rfc7386(target, patch)
    return result


def _merge_rfc7386(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        return _prune_nulls(patch)
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif target.get(key) is None:
            target[key] = _prune_nulls(value)
        else:
            target[key] = _merge_rfc7386(target[key], value)
    return target


def _prune_nulls(value: Any) -> Any:
    """Drop null members of objects, at any depth (inside arrays too, as Kubernetes does)."""
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# --- strategic merge patch: schema ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """Patch metadata of one struct field, as its Go struct tags declare it.

    ``strategy`` is ``"merge"`` (lists merged by ``key``, or as a set of
    primitives when ``key`` is empty), ``"replace"`` (a map replaced whole) or
    ``""`` (lists atomic, maps merged). ``schema`` describes the nested struct
    (for a list: its elements). ``retain_keys`` mirrors ``retainKeys`` in the
    tag; it only tells clients to send ``$retainKeys``, which the server honours
    wherever it appears.
    """

    strategy: str = ""
    key: str = ""
    schema: _Schema | None = None
    retain_keys: bool = False


_Schema: TypeAlias = Mapping[str, _Field]


def _merge_by(key: str = "", schema: _Schema | None = None, *, retain_keys: bool = False) -> _Field:
    return _Field("merge", key, schema, retain_keys)


def _struct(schema: _Schema, *, retain_keys: bool = False) -> _Field:
    return _Field("", "", schema, retain_keys)


# k8s.io/apimachinery/pkg/apis/meta/v1 ObjectMeta
_OBJECT_META: Final[_Schema] = {
    "finalizers": _merge_by(),
    "ownerReferences": _merge_by("uid"),
}
_META: Final = _struct(_OBJECT_META)
_CONDITIONS: Final = _merge_by("type")

# k8s.io/api/core/v1 Container and EphemeralContainerCommon (identical tags)
_CONTAINER: Final[_Schema] = {
    "ports": _merge_by("containerPort"),
    "env": _merge_by("name"),
    "volumeMounts": _merge_by("mountPath"),
    "volumeDevices": _merge_by("devicePath"),
}

_VOLUME: Final[_Schema] = {
    "ephemeral": _struct({"volumeClaimTemplate": _struct({"metadata": _META})}),
}

_POD_SPEC: Final[_Schema] = {
    "volumes": _merge_by("name", _VOLUME, retain_keys=True),
    "initContainers": _merge_by("name", _CONTAINER),
    "containers": _merge_by("name", _CONTAINER),
    "ephemeralContainers": _merge_by("name", _CONTAINER),
    "imagePullSecrets": _merge_by("name"),
    "hostAliases": _merge_by("ip"),
    "topologySpreadConstraints": _merge_by("topologyKey"),
    "schedulingGates": _merge_by("name"),
    "resourceClaims": _merge_by("name", retain_keys=True),
    "evictionResponders": _merge_by("name"),  # alpha (EvictionRequestAPI)
    # tolerations, readinessGates, affinity, dnsConfig...: no tags, atomic lists
}

_POD_STATUS: Final[_Schema] = {
    "conditions": _CONDITIONS,
    "hostIPs": _merge_by("ip"),
    "podIPs": _merge_by("ip"),
    "resourceClaimStatuses": _merge_by("name", retain_keys=True),
    "nodeAllocatableResourceClaimStatuses": _merge_by(
        "resourceClaimName", {"mapping": _merge_by("name"), "overhead": _merge_by("name")}
    ),
    # containerStatuses / initContainerStatuses / ephemeralContainerStatuses: atomic
}

_POD_TEMPLATE_SPEC: Final = _struct({"metadata": _META, "spec": _struct(_POD_SPEC)})
_ONLY_META: Final[_Schema] = {"metadata": _META}
_WITH_STATUS_CONDITIONS: Final[_Schema] = {
    "metadata": _META,
    "status": _struct({"conditions": _CONDITIONS}),
}


def _workload(*, strategy_retain_keys: bool = False) -> _Schema:
    spec: dict[str, _Field] = {"template": _POD_TEMPLATE_SPEC}
    if strategy_retain_keys:
        spec["strategy"] = _struct({}, retain_keys=True)
    return {
        "metadata": _META,
        "spec": _struct(spec),
        "status": _struct({"conditions": _CONDITIONS}),
    }


_KINDS: Final[dict[tuple[str, str], _Schema]] = {
    ("", "Pod"): {
        "metadata": _META,
        "spec": _struct(_POD_SPEC),
        "status": _struct(_POD_STATUS),
    },
    ("", "PodTemplate"): {"metadata": _META, "template": _POD_TEMPLATE_SPEC},
    ("", "ReplicationController"): _workload(),
    ("", "Node"): {
        "metadata": _META,
        "spec": _struct({"podCIDRs": _merge_by()}),  # taints: atomic
        "status": _struct({"conditions": _CONDITIONS, "addresses": _merge_by("type")}),
    },
    ("", "Service"): {
        "metadata": _META,
        "spec": _struct({"ports": _merge_by("port")}),
        "status": _struct({"conditions": _CONDITIONS}),
    },
    ("", "Endpoints"): _ONLY_META,
    ("", "ConfigMap"): _ONLY_META,
    ("", "Secret"): _ONLY_META,
    ("", "Event"): _ONLY_META,
    ("", "Namespace"): _WITH_STATUS_CONDITIONS,  # spec.finalizers: atomic
    ("", "ServiceAccount"): {"metadata": _META, "secrets": _merge_by("name")},
    ("apps", "Deployment"): _workload(strategy_retain_keys=True),
    ("apps", "ReplicaSet"): _workload(),
    ("apps", "StatefulSet"): _workload(),
    ("apps", "DaemonSet"): _workload(),
    # autoscaling/v2 carries status.conditions; v1 has no such field, so one table serves both.
    ("autoscaling", "HorizontalPodAutoscaler"): _WITH_STATUS_CONDITIONS,
    ("scheduling.k8s.io", "PriorityClass"): _ONLY_META,
    ("node.k8s.io", "RuntimeClass"): _ONLY_META,
    ("coordination.k8s.io", "Lease"): _ONLY_META,
    ("discovery.k8s.io", "EndpointSlice"): _ONLY_META,
    ("events.k8s.io", "Event"): _ONLY_META,
}


def supports_strategic_merge(group: str, kind: str) -> bool:
    """Whether cloudlet has strategic-merge metadata for this kind.

    kube-apiserver refuses strategic merge patches for custom resources (415);
    the PATCH handler can use this to do the same. :func:`strategic_merge_patch`
    itself accepts any kind.
    """
    return (group, kind) in _KINDS


# --- strategic merge patch: algorithm ---------------------------------------------

_DIRECTIVE: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_ORDER_PREFIX: Final = "$setElementOrder"
_DELETE_PREFIX: Final = "$deleteFromPrimitiveList"

_ERR_PRIMITIVE_LIST: Final = "invalid patch format of primitive list"
_ERR_RETAIN_KEYS: Final = "invalid patch format of retainKeys"
_ERR_ORDER_LIST: Final = "invalid patch format of setElementOrder list"


def strategic_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any], group: str, kind: str
) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to ``doc`` (an object of ``group``/``kind``).

    ``group`` is the API group (``""`` for core), ``kind`` the kind name; the
    version does not matter. Neither input is modified. A ``null`` patch is an
    empty patch. Raises :class:`PatchError` (400, or 422 for lists of lists)
    for a malformed patch.
    """
    if patch is None:
        patch = {}
    if not isinstance(patch, dict):
        raise _bad_request(
            f"json: cannot unmarshal {go_json_kind(patch)} into Go value of type "
            "map[string]interface {}"
        )
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _bad_request("invalid JSON document")
    original = _deep_copy(doc, "object")
    patch_copy = _deep_copy(patch, "patch")
    with _never_500("strategic merge patch"):
        result = _merge_map(original, patch_copy, _KINDS.get((group, kind)))
    return result


def _field(schema: _Schema | None, key: str) -> _Field | None:
    return schema.get(key) if schema is not None else None


def _extract_key(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise _bad_request(error)
    return rest


def _is_directive_key(key: str) -> bool:
    return (
        key in (_DIRECTIVE, _RETAIN_KEYS)
        or key.startswith(_ORDER_PREFIX + "/")
        or key.startswith(_DELETE_PREFIX + "/")
    )


def _clean(value: Any, *, list_item: bool = False) -> tuple[Any, bool]:
    """A value the patch adds outright, minus directives and null members.

    Returns ``(value, keep)``. A map carrying ``$patch`` is dropped when it is
    a list item (a ``$patch: delete`` entry or a list-level marker) or a
    ``$patch: delete``; ``$patch: replace`` keeps the rest of the map.
    """
    if isinstance(value, dict):
        if _DIRECTIVE in value and (list_item or value[_DIRECTIVE] != "replace"):
            return None, False
        return _clean_members(value), True
    if isinstance(value, list):
        return _clean_list(value), True
    return value, True


def _clean_members(value: dict[str, Any]) -> dict[str, Any]:
    """A map's members minus directive keys and nulls, each cleaned."""
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is None or _is_directive_key(k):
            continue
        cv, keep = _clean(v)
        if keep:
            out[k] = cv
    return out


def _clean_list(items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        cv, keep = _clean(item, list_item=True)
        if keep:
            out.append(cv)
    return out


def _set_clean(original: dict[str, Any], key: str, value: Any) -> None:
    cv, keep = _clean(value)
    if keep:
        original[key] = cv
    else:
        original.pop(key, None)


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], schema: _Schema | None
) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            return _clean_members(patch)
        if directive == "delete":
            return {}
        raise _bad_request(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(patch)}")

    _apply_retain_keys(original, patch)
    _apply_element_order(original, patch, schema)

    for raw_key, patch_value in list(patch.items()):
        key = raw_key
        delete_list = raw_key.startswith(_DELETE_PREFIX)
        if delete_list:
            key = _extract_key(raw_key, _DELETE_PREFIX, _ERR_PRIMITIVE_LIST)
            if patch_value is not None and not isinstance(patch_value, list):
                raise _bad_request(_ERR_PRIMITIVE_LIST)

        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original:
            if not delete_list:
                _set_clean(original, key, patch_value)
            continue

        current = original[key]
        meta = _field(schema, key)
        if isinstance(current, dict) and isinstance(patch_value, dict):
            if meta is not None and meta.strategy == "replace":
                _set_clean(original, key, patch_value)
            else:
                original[key] = _merge_map(current, patch_value, meta.schema if meta else None)
        elif isinstance(current, list) and isinstance(patch_value, list):
            if delete_list or (meta is not None and meta.strategy == "merge"):
                original[key] = _merge_list(current, patch_value, meta, delete_list)[0]
            else:
                original[key] = _clean_list(patch_value)
        elif not delete_list:
            _set_clean(original, key, patch_value)
    return original


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys``: drop every key of ``original`` not listed; the patch may set only listed keys."""
    if _RETAIN_KEYS not in patch:
        return
    listed = patch.pop(_RETAIN_KEYS)
    if not isinstance(listed, list):
        raise _bad_request(_ERR_RETAIN_KEYS)
    keep = {k for k in listed if isinstance(k, str)}
    for k, v in patch.items():
        if v is None or k.startswith(_DELETE_PREFIX) or k.startswith(_ORDER_PREFIX):
            continue
        if k not in keep:
            raise _bad_request(_ERR_RETAIN_KEYS)
    for k in list(original):
        if k not in keep:
            del original[k]


def _apply_element_order(
    original: dict[str, Any], patch: dict[str, Any], schema: _Schema | None
) -> None:
    """``$setElementOrder/<list>``: merge that list now and order it as the directive says.

    Precedence: the directive's order, then the patch list's, then the live
    list's (server-only items keep their place relative to their neighbours).
    """
    for directive_key in [k for k in patch if k.startswith(_ORDER_PREFIX)]:
        order = patch.pop(directive_key)
        key = _extract_key(directive_key, _ORDER_PREFIX, _ERR_ORDER_LIST)
        if not isinstance(order, list):
            raise _bad_request(_ERR_ORDER_LIST)
        live = original.get(key)
        live_list = live if isinstance(live, list) else None
        patch_list = patch.get(key, _MISSING)
        if patch_list is None:
            continue  # "<list>: null" deletes the list in the main loop
        if patch_list is not _MISSING and not isinstance(patch_list, list):
            raise _bad_request(_ERR_ORDER_LIST)

        meta = _field(schema, key)
        merge_key = meta.key if meta else ""
        in_patch = patch_list if isinstance(patch_list, list) else None
        _validate_element_order(in_patch or [], order, merge_key)
        server_order: list[Any] = live_list or []

        if live_list is not None and in_patch is None:
            merged = live_list
        elif live_list is None and in_patch is not None:
            merged = _clean_list(in_patch)
        elif live_list is not None and in_patch is not None:
            if meta is not None and meta.strategy == "merge":
                merged, server_order = _merge_list(live_list, in_patch, meta, False)
            else:
                merged = _clean_list(in_patch)
        else:
            continue

        elem_kind = _element_kind(live_list or [], in_patch or [])
        if elem_kind is not None:
            ordered, server_only = _partition(merged, order, merge_key, elem_kind)
            merged = _normalize_order(
                ordered, server_only, order, server_order, merge_key, elem_kind
            )
        original[key] = merged
        patch.pop(key, None)


def _validate_element_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """Every non-delete patch item must appear in ``order``, in the same relative order."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        for item in patch_list:
            _require_map(item)
        items = [i for i in patch_list if i.get(_DIRECTIVE) != "delete"]
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        item = items[pi]
        if isinstance(item, dict) and _DIRECTIVE in item:
            pi += 1
            continue
        if _merge_key_equal(item, order[oi], merge_key):
            pi += 1
        oi += 1
    if pi < len(items) and oi >= len(order):
        raise _bad_request(
            f"The order in patch list:\n{_go_fmt(patch_list)}\n doesn't match "
            f"{_ORDER_PREFIX} list:\n{_go_fmt(order)}\n"
        )


def _require_map(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad_request(f"expected a map[string]interface {{}}, but received a {go_value_type(item)}")
    return item


def _require_merge_key(item: Any, merge_key: str) -> Any:
    m = _require_map(item)
    if merge_key not in m:
        raise _bad_request(f"map: {_go_fmt(m)} does not contain declared merge key: {merge_key}")
    return m[merge_key]




def _merge_key_equal(a: Any, b: Any, merge_key: str) -> bool:
    if not merge_key:
        return _json_equal(a, b)
    return _json_equal(_require_merge_key(a, merge_key), _require_merge_key(b, merge_key))


def _element_kind(*lists: list[Any]) -> str | None:
    """The one JSON kind of all elements (None if there are none)."""
    kind: str | None = None
    for lst in lists:
        for item in lst:
            k = go_json_kind(item)
            if kind is None:
                if k == "array":
                    raise _unprocessable("lists of lists are not supported")
                kind = k
            elif k != kind:
                raise _bad_request(f"list element types are not identical: {_go_fmt(list(lists))}")
    return kind


def _identity(item: Any, merge_key: str, elem_kind: str) -> tuple[Any, ...]:
    """What list items are matched on: the merge key's value for maps, else the item itself."""
    if elem_kind == "object" and merge_key:
        return _hkey(item.get(merge_key) if isinstance(item, dict) else None)
    return _hkey(item)


def _positions(items: Iterable[Any], merge_key: str, elem_kind: str) -> dict[tuple[Any, ...], int]:
    pos: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(items):
        pos.setdefault(_identity(item, merge_key, elem_kind), i)
    return pos


def _partition(
    items: list[Any], by: list[Any], merge_key: str, elem_kind: str
) -> tuple[list[Any], list[Any]]:
    """Split ``items`` into those present in ``by`` and the rest (server-only)."""
    if merge_key and elem_kind == "object":
        wanted = {_hkey(_require_merge_key(b, merge_key)) for b in by if isinstance(b, dict)}
        present, rest = [], []
        for item in items:
            ident = _hkey(_require_merge_key(item, merge_key))
            (present if ident in wanted else rest).append(item)
        return present, rest
    wanted = {_hkey(b) for b in by}
    present, rest = [], []
    for item in items:
        (present if _hkey(item) in wanted else rest).append(item)
    return present, rest


def _sort_by_order(items: list[Any], order: list[Any], merge_key: str, elem_kind: str) -> list[Any]:
    if elem_kind == "object" and merge_key:
        for item in (*items, *order):
            _require_merge_key(item, merge_key)
        deleted = [i for i in items if i.get(_DIRECTIVE) == "delete"]
        items = [i for i in items if i.get(_DIRECTIVE) != "delete"]
    else:
        deleted = []
    pos = _positions(order, merge_key, elem_kind)
    missing = len(order)
    items = sorted(items, key=lambda i: pos.get(_identity(i, merge_key, elem_kind), missing))
    return items + deleted


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    elem_kind: str,
) -> list[Any]:
    """Interleave patch items (in patch order) with server-only items (in live order)."""
    right = _sort_by_order(patch_items, patch_order, merge_key, elem_kind)
    left = _sort_by_order(server_only, server_order, merge_key, elem_kind)
    pos = _positions(server_order, merge_key, elem_kind)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = pos.get(_identity(left[i], merge_key, elem_kind))
            ri = pos.get(_identity(right[j], merge_key, elem_kind))
            if li is not None and ri is not None and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _merge_list(
    original: list[Any], patch: list[Any], meta: _Field | None, delete_list: bool
) -> tuple[list[Any], list[Any]]:
    """Merge a list with merge strategy (or apply a ``$deleteFromPrimitiveList`` list).

    Returns the merged list and the "server order" view used when a
    ``$setElementOrder`` directive then orders it: kube-apiserver deletes and
    appends items in place in the live list's backing array, so its view is
    the live list with deleted items shifted out and new items written into
    the freed slots. Reproducing that keeps item order identical to Kubernetes
    when an apply deletes and adds items next to server-only ones.
    """
    if not original and not patch:
        return original, original
    elem_kind = _element_kind(original, patch)
    assert elem_kind is not None
    merge_key = meta.key if meta else ""
    view = original
    if elem_kind != "object":
        if delete_list:
            doomed = {_hkey(p) for p in patch}
            return [o for o in original if _hkey(o) not in doomed], view
        merged, seen = [], set()
        for item in (*original, *patch):
            h = _hkey(item)
            if h not in seen:
                seen.add(h)
                merged.append(item)
    else:
        if not merge_key:
            raise _bad_request("cannot merge lists without merge key")
        view = list(original)
        original, patch, length = _apply_list_directives(original, patch, merge_key, view)
        merged = _merge_list_items(
            original, patch, merge_key, meta.schema if meta else None, view, length
        )
    present, server_only = _partition(merged, patch, merge_key, elem_kind)
    return _normalize_order(present, server_only, patch, original, merge_key, elem_kind), view


def _apply_list_directives(
    original: list[Any], patch: list[Any], merge_key: str, view: list[Any]
) -> tuple[list[Any], list[Any], int]:
    """Handle ``$patch`` items: delete by merge key, or replace the whole list.

    Deletions are mirrored into ``view`` as Go's in-place slice deletes do;
    returns the remaining live items, the plain patch items and the view's length.
    """
    plain: list[Any] = []
    replace = False
    length = len(view)
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            doomed = _hkey(_require_merge_key(item, merge_key))

            def matches(o: dict[str, Any], doomed: tuple[Any, ...] = doomed) -> bool:
                return merge_key in o and _hkey(o[merge_key]) == doomed

            original = [o for o in original if not matches(o)]
            while True:
                at = next((i for i in range(length) if matches(view[i])), None)
                if at is None:
                    break
                view[at : length - 1] = view[at + 1 : length]
                length -= 1
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_request(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(item)}")
    if replace:
        return _clean_list(plain), [], length
    return original, plain, length


def _merge_list_items(
    original: list[Any],
    patch: list[Any],
    merge_key: str,
    schema: _Schema | None,
    view: list[Any],
    length: int,
) -> list[Any]:
    result = list(original)
    pos: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(result):
        if merge_key in item:
            pos.setdefault(_hkey(item[merge_key]), i)
    for item in patch:
        ident = _hkey(_require_merge_key(item, merge_key))
        at = pos.get(ident)
        if at is not None:
            result[at] = _merge_map(result[at], item, schema)
        else:
            cleaned, _ = _clean(item)
            pos[ident] = len(result)
            result.append(cleaned)
            if length < len(view):
                view[length] = cleaned
            length += 1
    return result
