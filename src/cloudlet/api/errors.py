"""Kubernetes `Status` errors.

Every failure the API returns is an :class:`APIError`, rendered as a
``meta.k8s.io/v1 Status`` with Kubernetes' reason, code and message wording, so
users can search for the text they see. Field-level validation problems are
:class:`FieldError` values collected by validators and turned into a 422
``Invalid`` status by :func:`invalid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


class APIError(Exception):
    """An error that maps one-to-one to a Kubernetes ``Status`` response."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        _details(name, group, resource),
    )


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(resource: str, group: str, name: str, why: str | None = None) -> APIError:
    why = why or (
        "the object has been modified; please apply your changes to the latest version and try again"
    )
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        _details(name, group, resource),
    )


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden(resource: str, group: str, name: str, why: str) -> APIError:
    subject = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    return APIError(
        403, "Forbidden", f"{subject} is forbidden: {why}", _details(name, group, resource)
    )


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> APIError:
    return APIError(406, "NotAcceptable", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got "{content_type}"')


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def too_large(message: str = "Request entity too large: limit is 3145728") -> APIError:
    return APIError(413, "RequestEntityTooLarge", message)


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> APIError:
    return APIError(504, "Timeout", message)


# --- field errors -----------------------------------------------------------

_REASONS = {
    "Required": "FieldValueRequired",
    "Invalid": "FieldValueInvalid",
    "NotSupported": "FieldValueNotSupported",
    "Duplicate": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden",
    "TooLong": "FieldValueTooLong",
    "TooMany": "FieldValueTooMany",
    "NotFound": "FieldValueNotFound",
}


def _fmt_value(v: Any) -> str:
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int | float):
        return str(v)
    return orjson.dumps(v).decode()


@dataclass
class FieldError:
    """One field problem, worded as Kubernetes' ``field.Error``.

    ``type`` is one of Required, Invalid, NotSupported, Duplicate, Forbidden,
    TooLong, TooMany, NotFound. ``field`` is the dotted path
    (``spec.containers[0].image``). ``supported`` lists the allowed values for
    NotSupported.
    """

    type: str
    field: str
    value: Any = None
    detail: str = ""
    supported: tuple[str, ...] = ()

    def body(self) -> str:
        t = self.type
        if t == "Required":
            s = "Required value"
        elif t == "Forbidden":
            s = "Forbidden"
        elif t == "NotSupported":
            s = f"Unsupported value: {_fmt_value(self.value)}"
            if self.supported:
                s += ": supported values: " + ", ".join(f'"{x}"' for x in self.supported)
        elif t == "Duplicate":
            s = f"Duplicate value: {_fmt_value(self.value)}"
        elif t == "TooLong":
            s = "Too long"
        elif t == "TooMany":
            s = "Too many"
        elif t == "NotFound":
            s = f"Not found: {_fmt_value(self.value)}"
        else:
            s = f"Invalid value: {_fmt_value(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, Any]:
        return {"reason": _REASONS.get(self.type, "FieldValueInvalid"), "message": self.body(), "field": self.field}


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("Required", field, None, detail)


def invalid_value(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("Invalid", field, value, detail)


def not_supported(field: str, value: Any, supported: list[str] | tuple[str, ...]) -> FieldError:
    return FieldError("NotSupported", field, value, "", tuple(supported))


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("Duplicate", field, value)


def forbidden_field(field: str, detail: str) -> FieldError:
    return FieldError("Forbidden", field, None, detail)


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> APIError:
    """422 Invalid, message ``Kind "name" is invalid: <errors>``."""
    if len(errors) == 1:
        agg = str(errors[0])
    else:
        agg = "[" + ", ".join(str(e) for e in errors) + "]"
    qkind = f"{kind}.{group}" if group else kind
    return APIError(
        422,
        "Invalid",
        f'{qkind} "{name}" is invalid: {agg}',
        {**_details(name, group, kind), "causes": [e.cause() for e in errors]},
    )
