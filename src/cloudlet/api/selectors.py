"""Label and field selectors, parsed and matched the way kube-apiserver does.

Role: turn the ``labelSelector`` / ``fieldSelector`` query parameters and the
``metav1.LabelSelector`` objects found in specs (Deployment ``spec.selector``,
Service-like ``matchLabels`` …) into small immutable matchers, and report bad
input with kube-apiserver's own wording so users can search for it.

The parsers are line-by-line ports of ``k8s.io/apimachinery`` v0.32
(``pkg/labels/selector.go``, ``pkg/fields/selector.go``,
``pkg/apis/meta/v1/helpers.go``), including their quirks:

* label selectors: a byte lexer where whitespace separates tokens, ``in`` and
  ``notin`` are keywords except in value position, a NUL character ends the
  input, ``x in ()`` means "x is the empty string", values are sorted and
  de-duplicated, requirements are sorted by key, keys are validated as
  qualified names and values as label values, and every error is reported as
  Go formats it (``unable to parse requirement: <nil>: Invalid value: ...``);
* field selectors: no whitespace handling at all, ``\\,`` ``\\=`` ``\\\\``
  escapes in values, terms sorted as raw strings, ``==`` normalised to ``=``,
  a missing field compares as the empty string.

Contract: every parse error is a :class:`SelectorError`; nothing else escapes
the parsers for any input string. kube-apiserver turns these errors into a
``400 BadRequest`` ``Status`` with the message unchanged; :meth:`SelectorError.api_error`
does the same. Selectors are immutable and hashable; ``str()`` gives the
canonical form kube-apiserver would print (``selector.String()``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudlet.api.errors import APIError, bad_request

__all__ = [
    "DOES_NOT_EXIST",
    "DOUBLE_EQUALS",
    "EQUALS",
    "EXISTS",
    "FieldSelector",
    "GREATER_THAN",
    "IN",
    "LESS_THAN",
    "LabelSelector",
    "NOT_EQUALS",
    "NOT_IN",
    "Requirement",
    "SelectorError",
    "check_fields",
    "label_selector_from_spec",
    "parse_field_selector",
    "parse_label_selector",
    "selector_spec_to_string",
]

# selection.Operator values (k8s.io/apimachinery/pkg/selection).
DOES_NOT_EXIST = "!"
EQUALS = "="
DOUBLE_EQUALS = "=="
IN = "in"
NOT_EQUALS = "!="
NOT_IN = "notin"
EXISTS = "exists"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_UNARY_OPERATORS = (EXISTS, DOES_NOT_EXIST)

_META_FIELDS = ("metadata.name", "metadata.namespace")


class SelectorError(ValueError):
    """A selector could not be parsed or is not allowed.

    ``message`` is kube-apiserver's text; the HTTP answer is ``400 BadRequest``
    with that message (see :meth:`api_error`). ``resource`` is set by
    :func:`check_fields` for context (it is not part of the message, as in
    Kubernetes).
    """

    code = 400
    reason = "BadRequest"

    def __init__(self, message: str, *, resource: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource

    def api_error(self) -> APIError:
        """The ``Status`` error kube-apiserver answers with (400 BadRequest)."""
        return bad_request(self.message)


# --- Go formatting helpers -----------------------------------------------------


def _byte_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(s: str) -> str:
    """``strconv.Quote``: Go's ``%q`` for strings."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            if cp < 0x80:
                out.append(f"\\x{cp:02x}")
            elif 0xD800 <= cp <= 0xDFFF:  # not valid UTF-8: Go sees U+FFFD
                out.append("\\ufffd")
            elif cp <= 0xFFFF:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def _go_string_slice(values: list[str] | None) -> str:
    """Go's ``%#v`` for a ``[]string``."""
    if not values:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _aggregate(msgs: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message, or ``[a, b]`` de-duplicated."""
    seen: list[str] = []
    for m in msgs:
        if m not in seen:
            seen.append(m)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def _invalid(path: str, value: str, detail: str) -> str:
    return f"{path}: Invalid value: {value}: {detail}"


# --- name / value validation (k8s.io/apimachinery/pkg/util/validation) ---------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(_QNAME_FMT)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def _max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _full(rx: re.Pattern[str], s: str) -> bool:
    return rx.fullmatch(s) is not None


def qualified_name_errors(value: str) -> list[str]:
    """``validation.IsQualifiedName``: label/annotation keys (``[prefix/]name``)."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if _byte_len(prefix) > 253:
                errs.append("prefix part " + _max_len_error(253))
            if not _full(_DNS1123_SUBDOMAIN_RE, prefix):
                errs.append(
                    "prefix part "
                    + _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com")
                )
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _full(_QNAME_RE, name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """``validation.IsValidLabelValue``."""
    errs: list[str] = []
    if _byte_len(value) > 63:
        errs.append(_max_len_error(63))
    if not _full(_LABEL_VALUE_RE, value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


_INT_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(s: str) -> int | None:
    """``strconv.ParseInt(s, 10, 64)``; None when Go would fail."""
    if not _full(_INT_RE, s):
        return None
    n = int(s)
    if not -(2**63) <= n < 2**63:
        return None
    return n


# --- requirements and label selectors ------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``key``, an operator (``in``, ``notin``, ``=``, ``==``,
    ``!=``, ``exists``, ``!``, ``gt``, ``lt``) and its values (order as given)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        has = self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if op == EXISTS:
            return has
        if op == DOES_NOT_EXIST:
            return not has
        if op in (GREATER_THAN, LESS_THAN):
            if not has or len(self.values) != 1:
                return False
            have = _parse_int64(labels[self.key])
            want = _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        prefix = "!" if op == DOES_NOT_EXIST else ""
        if op in (EXISTS, DOES_NOT_EXIST):
            return prefix + self.key
        sym = {
            EQUALS: "=",
            DOUBLE_EQUALS: "==",
            NOT_EQUALS: "!=",
            IN: " in ",
            NOT_IN: " notin ",
            GREATER_THAN: ">",
            LESS_THAN: "<",
        }.get(op, "")
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            vals = f"({vals})"
        return f"{self.key}{sym}{vals}"


def _new_requirement(
    key: str, op: str, values: list[str] | None, *, go_nil_values: bool = False
) -> Requirement:
    """``labels.NewRequirement`` with a nil field path; raises with Go's aggregate text."""
    vals = list(values or [])
    errs: list[str] = []
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(_invalid("key", _go_quote(key), "; ".join(key_errs)))
    shown = _go_string_slice(vals if vals or not go_nil_values else None)
    if op in (IN, NOT_IN):
        if not vals:
            errs.append(
                _invalid("values", shown, "for 'in', 'notin' operators, values set can't be empty")
            )
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(
                _invalid("values", shown, "exact-match compatibility requires one single value")
            )
    elif op in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(
                _invalid("values", shown, "values set must be empty for exists and does not exist")
            )
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(
                _invalid("values", shown, "for 'Gt', 'Lt' operators, exactly one value is required")
            )
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(
                    _invalid(
                        f"values[{i}]",
                        _go_quote(v),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    else:
        supported = ", ".join(_go_quote(o) for o in _BINARY_OPERATORS + _UNARY_OPERATORS)
        errs.append(
            f"operator: Unsupported value: {_go_quote(op)}: supported values: {supported}"
        )
    for i, v in enumerate(vals):
        v_errs = label_value_errors(v)
        if v_errs:
            errs.append(_invalid(f"values[{i}][{key}]", _go_quote(v), "; ".join(v_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, op, tuple(vals))


@dataclass(frozen=True)
class LabelSelector:
    """An AND of label :class:`Requirement` values, sorted by key.

    ``LabelSelector()`` is the empty selector: it matches everything.
    ``LabelSelector.nothing()`` (what a ``None`` spec selector means) matches
    nothing. ``str()`` is kube's canonical form: ``a=b,c in (x,y),!d``.
    """

    requirements: tuple[Requirement, ...] = ()
    match_nothing: bool = field(default=False, repr=False)

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls((), True)

    @classmethod
    def from_requirements(cls, reqs: Iterable[Requirement]) -> LabelSelector:
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @classmethod
    def from_set(cls, labels: Mapping[str, str] | None) -> LabelSelector:
        """``labels.SelectorFromSet`` (unvalidated): ``k=v`` for each pair."""
        return cls.from_requirements(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches everything)."""
        return not self.requirements and not self.match_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.match_nothing:
            return False
        ls = labels or {}
        return all(r.matches(ls) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``=``, ``==`` or one-value ``in``), else None."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# Lexer tokens.
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_STRING2TOKEN = {
    ")": _CLOSE,
    ",": _COMMA,
    "!": _NOT,
    "==": _DEQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NEQ,
    "notin": _NOTIN,
    "(": _OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_END = "\x00"  # Go's Lexer.read returns 0 both at the end and for a NUL byte


def _lex(s: str) -> list[tuple[int, str]]:
    """Tokenise like ``labels.Lexer``; stops at the first end-of-string token."""
    pos = 0
    n = len(s)
    items: list[tuple[int, str]] = []

    def read() -> str:
        nonlocal pos
        if pos < n:
            pos += 1
            return s[pos - 1]
        return _END

    while True:
        ch = read()
        while ch in _WHITESPACE:
            ch = read()
        if ch == _END:
            items.append((_EOS, ""))
            return items
        pos -= 1
        if ch in _SPECIAL:
            buf = ""
            last: tuple[int, str] | None = None
            while True:
                c = read()
                if c == _END:
                    break
                if c in _SPECIAL:
                    buf += c
                    tok = _STRING2TOKEN.get(buf)
                    if tok is not None:
                        last = (tok, buf)
                    elif last is not None:
                        pos -= 1
                        break
                else:
                    pos -= 1
                    break
            items.append(last if last is not None else (_ERROR, f"error expected: keyword found '{buf}'"))
        else:
            buf = ""
            while True:
                c = read()
                if c == _END:
                    break
                if c in _SPECIAL or c in _WHITESPACE:
                    pos -= 1
                    break
                buf += c
            items.append((_STRING2TOKEN.get(buf, _ID), buf))


class _Parser:
    """``labels.Parser``: recursive descent over the scanned tokens."""

    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def _tok(self, i: int, values: bool) -> tuple[int, str]:
        if i >= len(self.items):  # Go would index out of range; never reached in practice
            raise SelectorError("found '', expected: identifier")
        tok, lit = self.items[i]
        if values and tok in (_IN, _NOTIN):
            tok = _ID
        return tok, lit

    def lookahead(self, values: bool) -> tuple[int, str]:
        return self._tok(self.pos, values)

    def consume(self, values: bool) -> tuple[int, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(True)
            if tok in (_ID, _NOT):
                try:
                    reqs.append(self.parse_requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e.message}") from None
                t, lit2 = self.consume(True)
                if t == _EOS:
                    return reqs
                if t == _COMMA:
                    t2, l2 = self.lookahead(True)
                    if t2 not in (_ID, _NOT):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, op = self.parse_key_and_infer_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, op, [])
        op = self.parse_operator()
        values = self.parse_values() if op in (IN, NOT_IN) else self.parse_exact_value()
        return _new_requirement(key, op, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume(True)
        if tok == _NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume(True)
        if tok != _ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        errs = qualified_name_errors(lit)
        if errs:
            raise SelectorError(_invalid("<nil>", _go_quote(lit), "; ".join(errs)))
        t, _ = self.lookahead(True)
        if t in (_EOS, _COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def parse_operator(self) -> str:
        tok, lit = self.consume(False)
        op = {
            _IN: IN,
            _EQ: EQUALS,
            _DEQ: DOUBLE_EQUALS,
            _GT: GREATER_THAN,
            _LT: LESS_THAN,
            _NOTIN: NOT_IN,
            _NEQ: NOT_EQUALS,
        }.get(tok)
        if op is None:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return op

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(True)
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(True)
        if tok in (_ID, _COMMA):
            s = self.parse_identifiers_list()
            if self.consume(True)[0] != _CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return s
        if tok == _CLOSE:
            self.consume(True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume(True)
            if tok == _ID:
                s.add(lit)
                tok2, lit2 = self.lookahead(True)
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return s
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not s:
                    s.add("")
                tok2, _ = self.lookahead(True)
                if tok2 == _CLOSE:
                    s.add("")
                    return s
                if tok2 == _COMMA:
                    self.consume(True)
                    s.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(True)
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume(True)
        if tok == _ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str) -> LabelSelector:
    """Parse a ``labelSelector`` string (``labels.Parse``); "" is the empty selector.

    Grammar: ``req[,req]*`` where ``req`` is ``key``, ``!key``, ``key=v``,
    ``key==v``, ``key!=v``, ``key in (v1,v2)``, ``key notin (v)``, ``key>N`` or
    ``key<N``. Raises :class:`SelectorError` with kube-apiserver's message.
    """
    return LabelSelector.from_requirements(_Parser(s).parse())


_SPEC_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_spec(spec: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: a ``{matchLabels, matchExpressions}`` dict.

    ``None`` matches nothing; ``{}`` (no labels, no expressions) matches
    everything. Operators are ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``;
    an unknown operator or a bad values list raises :class:`SelectorError`
    with Kubernetes' wording (``"Foo" is not a valid label selector operator``,
    ``values: Invalid value: []string(nil): for 'in', 'notin' operators,
    values set can't be empty``).
    """
    if spec is None:
        return LabelSelector.nothing()
    if not isinstance(spec, Mapping):
        raise SelectorError("label selector must be an object")
    match_labels = spec.get("matchLabels") or {}
    exprs = spec.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be an object of string values")
    if not isinstance(exprs, list):
        raise SelectorError("matchExpressions must be a list")
    if not match_labels and not exprs:
        return LabelSelector.everything()
    reqs: list[Requirement] = []
    for k in sorted(match_labels, key=str):
        v = match_labels[k]
        if not isinstance(k, str) or not isinstance(v, str):
            raise SelectorError("matchLabels must be an object of string values")
        reqs.append(_new_requirement(k, EQUALS, [v]))
    for expr in exprs:
        if not isinstance(expr, Mapping):
            raise SelectorError("matchExpressions items must be objects")
        key = expr.get("key", "")
        operator = expr.get("operator", "")
        values = expr.get("values") or []
        if not isinstance(key, str) or not isinstance(operator, str):
            raise SelectorError("matchExpressions key and operator must be strings")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError("matchExpressions values must be a list of strings")
        op = _SPEC_OPERATORS.get(operator)
        if op is None:
            raise SelectorError(f"{_go_quote(operator)} is not a valid label selector operator")
        reqs.append(_new_requirement(key, op, values, go_nil_values=True))
    return LabelSelector.from_requirements(reqs)


def selector_spec_to_string(spec: Mapping[str, Any] | None) -> str:
    """The string form Kubernetes publishes (e.g. ``status.selector`` of ``/scale``):
    ``app=web,tier in (a,b)``; "" for ``None`` and ``{}``."""
    return str(label_selector_from_spec(spec))


# --- field selectors -------------------------------------------------------------


def _escape_field_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(s: str) -> str:
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c in "\\,=":
                out.append(c)
            else:
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            in_slash = False
            continue
        if c == "\\":
            in_slash = True
        elif c in ",=":
            # Go prints the rune with %v: its code point.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    if not s:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


@dataclass(frozen=True)
class FieldSelector:
    """An AND of ``(field, op, value)`` terms, op ``=`` or ``!=`` (``==`` is stored as ``=``).

    Terms keep kube's order (sorted by their raw text). ``str()`` re-escapes
    values. A field missing from the object compares as ``""``.
    """

    requirements: tuple[tuple[str, str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for f, op, value in self.requirements:
            have = fields.get(f, "")
            if (have == value) != (op == EQUALS):
                return False
        return True

    def exact(self, field_name: str) -> str | None:
        """The value of the first ``field=value`` term on ``field_name``, for index lookups."""
        for f, op, value in self.requirements:
            if f == field_name and op == EQUALS:
                return value
        return None

    def fields(self) -> list[str]:
        return [f for f, _, _ in self.requirements]

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{_escape_field_value(v)}" for f, op, v in self.requirements)


def parse_field_selector(s: str) -> FieldSelector:
    """Parse a ``fieldSelector`` string (``fields.ParseSelector``); "" selects everything.

    Raises :class:`SelectorError` with kube's messages, e.g.
    ``invalid selector: 'a'; can't understand 'a'``.
    """
    reqs: list[tuple[str, str, str]] = []
    for part in sorted(_split_terms(s)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = _unescape_field_value(rhs)
        reqs.append((lhs, NOT_EQUALS if op == "!=" else EQUALS, value))
    return FieldSelector(tuple(reqs))


def check_fields(
    sel: FieldSelector,
    supported: Iterable[str],
    resource: str,
    *,
    meta_only_message: bool = False,
) -> None:
    """Reject field labels the resource cannot select on, like kube-apiserver's
    ``ConvertFieldLabel`` step (answered with ``400 BadRequest``).

    The message is ``field label not supported: <label>`` — the text of every
    core/v1 kind's conversion function and of custom resources. Kinds that
    register no conversion (e.g. ``apps/v1`` Deployment) fall back to
    ``runtime.DefaultMetaV1FieldSelectorConversion``; pass
    ``meta_only_message=True`` for its wording: ``"spec.x" is not a known
    field selector: only "metadata.name", "metadata.namespace"``. The first
    offending term in selector order is reported; ``resource`` is kept on the
    error for context.
    """
    allowed = set(supported)
    for f, _, _ in sel.requirements:
        if f in allowed:
            continue
        if meta_only_message:
            msg = (
                f"{_go_quote(f)} is not a known field selector: only "
                f"{_go_quote(_META_FIELDS[0])}, {_go_quote(_META_FIELDS[1])}"
            )
        else:
            msg = f"field label not supported: {f}"
        raise SelectorError(msg, resource=resource)
