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
        docs = list(yaml.load_all(body, Loader=_SafeLoader))
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error converting YAML to JSON: {_one_line(str(e))}") from e
    except (RecursionError, ValueError) as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from e
    if len(docs) != 1:
        raise errors.bad_request("the body must contain exactly one YAML document")
    try:
        # round trip to prove the value is JSON-representable (no sets, binary, non-string keys)
        return orjson.loads(orjson.dumps(docs[0]))
    except (TypeError, orjson.JSONEncodeError) as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from e


def _one_line(s: str) -> str:
    return " ".join(s.split())


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def dumps_yaml(obj: Any) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False).encode()
