"""Request body decoding and response encoding.

Bodies are JSON or YAML (``kubectl`` sends JSON; users may send YAML). The
server never trusts a body: size is capped at 3 MiB (kube-apiserver's limit),
and every decoding failure becomes a 400 ``Status`` naming what was wrong.
"""

from __future__ import annotations

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
