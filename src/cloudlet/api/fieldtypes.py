"""Structural types for field management: what server-side apply merges how.

Server-side apply and ``managedFields`` need to know, for every place in an
object, whether it is a scalar, a struct (named fields), a map (arbitrary
keys), or a list, and how lists and maps merge (Kubernetes' structured merge
diff "atoms"):

* lists are ``atomic`` (replaced and owned whole), ``set`` (primitive items,
  owned one by one, path element ``v:<value>``) or ``map`` (items identified
  by key fields, path element ``k:{"name":"c"}``);
* maps and structs are granular (keys owned one by one) unless ``atomic``.

Sources, by kind:

* built-in kinds: the Go field tables of :mod:`cloudlet.api.protobuf_schema`
  (which field is a struct, map, list or scalar) joined with the list and
  struct markers of k8s.io/api (``+listType``, ``+listMapKey``,
  ``+structType=atomic``, ``+mapType=atomic``; a list without ``+listType``
  but with ``patchStrategy:"merge"`` is a map keyed by its ``patchMergeKey``,
  or a set without one), tabled in :mod:`cloudlet.api.field_markers`;
* custom resources: the version's ``openAPIV3Schema``
  (``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``,
  ``x-kubernetes-map-type``, ``x-kubernetes-preserve-unknown-fields``);
* anything else (and unknown fields): deduced from the value, as Kubernetes
  does for schemaless data: dicts are granular maps, lists are atomic.

``metadata`` is always ``ObjectMeta`` (labels and annotations granular,
``finalizers`` a set, ``ownerReferences`` a map keyed by ``uid``).

Contract: :class:`Atom` trees are immutable once built and shared between
requests; :func:`root_atom` caches per kind (per schema dict for custom
resources).
"""

from __future__ import annotations

from typing import Any

from cloudlet.api import protobuf
from cloudlet.api.field_markers import ATOMIC_STRUCTS, field_tags
from cloudlet.api.protobuf_schema import KINDS

SCALAR = 0
MAP = 1
LIST = 2
UNTYPED = 3  # deduced from the value


class Atom:
    """One node of a structural type.

    ``kind`` is SCALAR, MAP, LIST or UNTYPED. A MAP has ``fields`` (declared
    struct fields; empty for a plain map) and ``elem`` (the type of any other
    key; None means "deduced"). A LIST has ``elem``; ``keys`` names the key
    fields of a map-list (empty for a set); ``atomic`` applies to lists and
    maps. ``key_defaults`` fills absent key fields (``protocol: TCP``).
    """

    __slots__ = ("kind", "_fields", "_make_fields", "elem", "atomic", "keys", "key_defaults")

    def __init__(
        self,
        kind: int,
        *,
        fields: dict[str, Atom] | None = None,
        make_fields: Any = None,
        elem: Atom | None = None,
        atomic: bool = False,
        keys: tuple[str, ...] = (),
        key_defaults: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self._fields = fields
        self._make_fields = make_fields
        self.elem = elem
        self.atomic = atomic
        self.keys = keys
        self.key_defaults = key_defaults or {}

    @property
    def fields(self) -> dict[str, Atom]:
        f = self._fields
        if f is None:
            f = self._fields = self._make_fields() if self._make_fields is not None else {}
            self._make_fields = None
        return f

    def child(self, name: str) -> tuple[Atom, bool]:
        """The type of key ``name`` of a MAP and whether it is a declared field."""
        f = self.fields.get(name)
        if f is not None:
            return f, True
        return (self.elem or DEDUCED), False

    def __repr__(self) -> str:
        names = {SCALAR: "scalar", MAP: "map", LIST: "list", UNTYPED: "untyped"}
        extra = " atomic" if self.atomic else ""
        if self.kind == LIST and not self.atomic:
            extra = f" keys={list(self.keys)}" if self.keys else " set"
        return f"<Atom {names[self.kind]}{extra}>"


SCALAR_ATOM = Atom(SCALAR)
DEDUCED = Atom(UNTYPED)
DEDUCED_MAP = Atom(MAP, fields={}, elem=DEDUCED)
ATOMIC_LIST = Atom(LIST, elem=DEDUCED, atomic=True)


def deduce(atom: Atom, value: Any) -> Atom:
    """Resolve an UNTYPED atom against a value (dict: granular map; list: atomic)."""
    if atom.kind != UNTYPED:
        return atom
    if isinstance(value, dict):
        return DEDUCED_MAP
    if isinstance(value, list):
        return ATOMIC_LIST
    return SCALAR_ATOM


# --- built-in kinds -----------------------------------------------------------

_SCALAR_TYPES = frozenset(("str", "bool", "i32", "i64", "f64", "bytes"))
_OPAQUE_SCALARS = frozenset(("meta.v1.Time", "meta.v1.MicroTime", "intstr.IntOrString", "resource.Quantity"))
_KEY_DEFAULTS = {"protocol": "TCP"}  # the only key field with a default in the built-in schemas



def _marker(tags: dict[str, Any]) -> str | None:
    """A field's marker for the atoms: ``atomic``/``set``/``map:k1,k2`` (lists),
    ``atomic``/``granular`` (maps and structs)."""
    if "list" in tags:
        return "map:" + ",".join(tags["keys"]) if tags["list"] == "map" else str(tags["list"])
    return tags.get("map") or tags.get("struct")


# Markers of k8s.io/api struct fields by Go struct (the shared table,
# :mod:`cloudlet.api.field_markers`). A list field not listed is atomic.
_MARKERS: dict[str, dict[str, str]] = {}
for (_msg, _json), _tags in field_tags().items():
    _m = _marker(_tags)
    if _m is not None:
        _MARKERS.setdefault(_msg, {})[_json] = _m
del _msg, _json, _tags, _m
_MESSAGE_ATOMS: dict[str, Atom] = {}


def _type_atom(type_name: str) -> Atom:
    if type_name in _SCALAR_TYPES or type_name in _OPAQUE_SCALARS:
        return SCALAR_ATOM
    if type_name not in protobuf.schema():
        return DEDUCED  # FieldsV1, RawExtension: free-form JSON
    return message_atom(type_name)


def _list_atom(elem: Atom, marker: str | None) -> Atom:
    if not marker or marker == "atomic":
        return Atom(LIST, elem=elem, atomic=True)
    if marker == "set":
        return Atom(LIST, elem=elem)
    keys = tuple(marker.split(":", 1)[1].split(","))
    defaults = {k: v for k, v in _KEY_DEFAULTS.items() if k in keys}
    return Atom(LIST, elem=elem, keys=keys, key_defaults=defaults)


def _field_atom(msg_name: str, f: Any) -> Atom:
    marker = _MARKERS.get(msg_name, {}).get(f.json)
    elem = _type_atom(f.type)
    if f.label == "[]":
        return _list_atom(elem, marker)
    if f.label == "{}":
        return Atom(MAP, fields={}, elem=elem, atomic=marker == "atomic")
    if marker == "atomic" and elem.kind == MAP and not elem.atomic:
        return Atom(MAP, make_fields=lambda: elem.fields, elem=elem.elem, atomic=True)
    if marker == "granular" and elem.kind == MAP and elem.atomic:  # +structType=granular
        return Atom(MAP, make_fields=lambda: elem.fields, elem=elem.elem, atomic=False)
    return elem


def _message_fields(msg_name: str) -> dict[str, Atom]:
    msg = protobuf.schema()[msg_name]
    out: dict[str, Atom] = {}
    for f in msg.fields:
        if f.json == "":
            out.update(message_atom(f.type).fields)  # inline (embedded) struct
        else:
            out[f.json] = _field_atom(msg_name, f)
    return out


def message_atom(msg_name: str) -> Atom:
    """The atom of a Go struct from the protobuf field tables (cached)."""
    atom = _MESSAGE_ATOMS.get(msg_name)
    if atom is not None:
        return atom
    msg = protobuf.schema()[msg_name]
    if msg.wrapper:  # a Go named slice (ExtraValue []string)
        atom = Atom(LIST, elem=_type_atom(msg.fields[0].type), atomic=True)
    else:
        atom = Atom(
            MAP,
            make_fields=lambda: _message_fields(msg_name),
            elem=None,
            atomic=msg_name in ATOMIC_STRUCTS,
        )
    _MESSAGE_ATOMS[msg_name] = atom
    return atom


def object_meta_atom() -> Atom:
    return message_atom("meta.v1.ObjectMeta")


# --- custom resources -----------------------------------------------------------


def openapi_atom(schema: Any) -> Atom:
    """The atom of an OpenAPI v3 (structural) schema."""
    if not isinstance(schema, dict):
        return DEDUCED
    if schema.get("x-kubernetes-int-or-string"):
        return SCALAR_ATOM
    t = schema.get("type")
    props = schema.get("properties")
    addl = schema.get("additionalProperties")
    if t == "object" or isinstance(props, dict) or isinstance(addl, dict):
        fields: dict[str, Atom] = {}
        if isinstance(props, dict):
            fields = {k: openapi_atom(v) for k, v in props.items()}
        if schema.get("x-kubernetes-embedded-resource"):
            fields.setdefault("apiVersion", SCALAR_ATOM)
            fields.setdefault("kind", SCALAR_ATOM)
            fields["metadata"] = object_meta_atom()
        elem: Atom | None = None
        if isinstance(addl, dict):
            elem = openapi_atom(addl)
        elif not fields or addl is True or schema.get("x-kubernetes-preserve-unknown-fields"):
            elem = DEDUCED
        return Atom(MAP, fields=fields, elem=elem, atomic=schema.get("x-kubernetes-map-type") == "atomic")
    if t == "array":
        items = schema.get("items")
        elem = openapi_atom(items)
        lt = schema.get("x-kubernetes-list-type")
        if lt == "set":
            return Atom(LIST, elem=elem)
        if lt == "map":
            keys = tuple(k for k in schema.get("x-kubernetes-list-map-keys") or () if isinstance(k, str))
            if keys:
                iprops = (items or {}).get("properties") if isinstance(items, dict) else None
                defaults = {
                    k: iprops[k]["default"]
                    for k in keys
                    if isinstance(iprops, dict) and isinstance(iprops.get(k), dict) and "default" in iprops[k]
                }
                return Atom(LIST, elem=elem, keys=keys, key_defaults=defaults)
        return Atom(LIST, elem=elem, atomic=True)
    if t in ("string", "integer", "number", "boolean"):
        return SCALAR_ATOM
    return DEDUCED


def _with_standard_fields(atom: Atom) -> Atom:
    fields = dict(atom.fields) if atom.kind == MAP else {}
    fields["apiVersion"] = SCALAR_ATOM
    fields["kind"] = SCALAR_ATOM
    fields["metadata"] = object_meta_atom()
    elem = atom.elem if atom.kind == MAP else DEDUCED
    return Atom(MAP, fields=fields, elem=elem)


GENERIC_ROOT = Atom(
    MAP,
    make_fields=lambda: {"apiVersion": SCALAR_ATOM, "kind": SCALAR_ATOM, "metadata": object_meta_atom()},
    elem=DEDUCED,
)

_CR_ATOMS: dict[int, tuple[Any, Atom]] = {}


def root_atom(api_version: str, kind: str, openapi_schema: dict[str, Any] | None = None) -> Atom:
    """The atom of a whole object of this kind (see the module docstring)."""
    if openapi_schema is not None:
        hit = _CR_ATOMS.get(id(openapi_schema))
        if hit is not None and hit[0] is openapi_schema:
            return hit[1]
        atom = _with_standard_fields(openapi_atom(openapi_schema))
        if len(_CR_ATOMS) > 512:
            _CR_ATOMS.clear()
        _CR_ATOMS[id(openapi_schema)] = (openapi_schema, atom)
        return atom
    msg = KINDS.get((api_version, kind))
    if msg is not None:
        return message_atom(msg)
    return GENERIC_ROOT
