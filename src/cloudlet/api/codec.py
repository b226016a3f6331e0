"""Request body decoding and response encoding.

Bodies are JSON or YAML (``kubectl`` sends JSON; users may send YAML). The
server never trusts a body: size is capped at 3 MiB (kube-apiserver's limit),
and every decoding failure becomes a 400 ``Status`` naming what was wrong.

Watch streams are newline-delimited JSON ``{"type", "object"}`` frames
(:func:`watch_frame`); :class:`FrameCache` lets every watcher that sends the
same frame for an event share one encoding of it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import orjson
import yaml

from cloudlet.api import errors

MAX_BODY = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_DECODABLE = {JSON, YAML, "text/yaml", "application/x-yaml", JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH}


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader without timestamp/date magic: values stay JSON types."""


# a private copy: the resolver table is shared with every other PyYAML loader and dumper
_SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(body: bytes, content_type: str | None) -> Any:
    """Decode a request body by its Content-Type (JSON when unspecified)."""
    if len(body) > MAX_BODY:
        raise errors.too_large()
    mt = media_type(content_type) or JSON
    if mt not in _DECODABLE:
        raise errors.unsupported_media_type(mt)
    if not body.strip():
        raise errors.bad_request("the body of the request was empty")
    is_yaml = mt in (YAML, "text/yaml", "application/x-yaml", APPLY_PATCH)
    if not is_yaml or body.lstrip()[:1] in (b"{", b"["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            if not is_yaml:
                raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from e
    try:
        docs = _load_yaml(body)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error converting YAML to JSON: {_one_line(str(e))}") from e
    except (RecursionError, ValueError) as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from e
    docs = [d for d in docs if d is not None] or docs  # tolerate empty documents around the object
    if len(docs) != 1:
        raise errors.bad_request("the body must contain exactly one YAML document")
    try:
        # round trip to prove the value is JSON-representable (no sets, binary, non-string keys)
        return orjson.loads(orjson.dumps(docs[0]))
    except (TypeError, orjson.JSONEncodeError) as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from e


MAX_YAML_NODES = 1_000_000  # after alias expansion


def _load_yaml(body: bytes) -> list[Any]:
    """Load YAML documents, refusing alias bombs before anything is expanded."""
    loader = _SafeLoader(body)
    try:
        nodes = []
        while loader.check_node():
            nodes.append(loader.get_node())
        for node in nodes:
            if _expanded_size(node, {}) > MAX_YAML_NODES:
                raise errors.bad_request("error converting YAML to JSON: yaml: document contains excessive aliasing")
        return [loader.construct_document(node) for node in nodes]
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes the document has once aliases are expanded (shared nodes counted each time)."""
    got = memo.get(id(node))
    if got is not None:
        return got
    memo[id(node)] = MAX_YAML_NODES + 1  # a cycle expands forever
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, memo)
            if total > MAX_YAML_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, memo) + _expanded_size(v, memo)
            if total > MAX_YAML_NODES:
                break
    memo[id(node)] = total
    return total


def _one_line(s: str) -> str:
    return " ".join(s.split())


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def dumps_pretty(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n"


def dumps_yaml(obj: Any) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False).encode()


def watch_frame(type_: str, obj: Any) -> bytes:
    """One watch event as sent on the wire: ``{"type":..,"object":..}`` and a newline."""
    return orjson.dumps({"type": type_, "object": obj}, option=orjson.OPT_APPEND_NEWLINE)


class FrameCache:
    """Encoded watch frames, shared by every watch stream that sends the same bytes.

    kube-apiserver's watch cache hands each event to its watchers wrapped in a
    ``cachingObject`` that serialises the object once per encoding and reuses
    the bytes for every watcher asking for that encoding. This is the same for
    our streams: the caller's key names one event revision in one output (event
    type as this watcher sees it, resource version/kind conversion, format and
    whatever else changes the bytes), and :meth:`get` answers the frame another
    stream already encoded.

    Bounded: once more than ``max_entries`` frames or ``max_bytes`` bytes are
    held, the oldest go first. Revisions arrive in order and watchers of one
    event read it at about the same time, so the oldest entry is also the one
    least likely to be asked for again; a stream that misses just encodes the
    frame itself. Each entry also holds its ``owner`` (the resource type whose
    conversion produced it) and answers only for that same object, so a key
    built from ``id(owner)`` can never name another owner's frame.
    """

    __slots__ = ("max_entries", "max_bytes", "size", "hits", "misses", "_frames")

    def __init__(self, max_entries: int = 2048, max_bytes: int = 4 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # bytes held
        self.hits = 0
        self.misses = 0
        self._frames: OrderedDict[Hashable, tuple[object, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frames)

    def get(self, key: Hashable, owner: object) -> bytes | None:
        """The frame stored under ``key`` by ``owner``; ``None`` (a miss) otherwise."""
        got = self._frames.get(key)
        if got is not None and got[0] is owner:
            self.hits += 1
            return got[1]
        self.misses += 1
        return None

    def put(self, key: Hashable, owner: object, frame: bytes) -> None:
        """Remember ``frame``; evict the oldest frames beyond the bounds."""
        frames = self._frames
        old = frames.pop(key, None)
        if old is not None:
            self.size -= len(old[1])
        if len(frame) > self.max_bytes:
            return
        frames[key] = (owner, frame)
        self.size += len(frame)
        while len(frames) > self.max_entries or self.size > self.max_bytes:
            self.size -= len(frames.popitem(last=False)[1][1])

    def clear(self) -> None:
        self._frames.clear()
        self.size = 0
