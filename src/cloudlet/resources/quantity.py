"""Kubernetes ``resource.Quantity``: parsing, canonical form and validation.

A quantity is a decimal number with an optional suffix: a binary SI suffix
(``Ki`` .. ``Ei``), a decimal SI suffix (``n u m k M G T P E``) or a decimal
exponent (``e3``, ``E-2``). :func:`parse_quantity` returns the exact value as a
:class:`decimal.Decimal` (rounded up to nano precision, as apimachinery does);
:func:`canonical_quantity` renders the form the API server writes back
(``1.5Gi`` -> ``1536Mi``, ``0.5`` -> ``500m``, ``1e3`` -> ``1e3``).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

from cloudlet.api.errors import FieldError, invalid_value

FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
NUMERIC_ERROR = "unable to parse numeric part of quantity"
SUFFIX_ERROR = "unable to parse quantity's suffix"

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_POWER = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}
_SUFFIX_CHARS = "eEinumkKMGTP"
_NANO = Decimal("1e-9")
_MAX_INT64 = Decimal(2**63 - 1)

_CTX = decimal.Context(prec=200, Emax=10**6, Emin=-(10**6))
_MAX_DIGITS = 180  # larger magnitudes cannot be held exactly; refused rather than rounded


def _split(text: str) -> tuple[bool, str, str]:
    """Split into (positive, numeric value, suffix) the way ``parseQuantityString`` does."""
    positive = True
    pos, end = 0, len(text)
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", ""
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    if pos >= end:
        return positive, text[:end], ""
    if text[pos] == ".":
        pos += 1
        while pos < end and text[pos].isdigit() and text[pos].isascii():
            pos += 1
        if pos >= end:
            return positive, text[:end], ""
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end:
        if not (text[pos].isdigit() and text[pos].isascii()):
            raise ValueError(FORMAT_ERROR)
        pos += 1
    return positive, value, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) for a suffix, or ValueError(SUFFIX_ERROR)."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        try:
            return 10, int(suffix[1:], 10), DECIMAL_EXPONENT
        except ValueError:
            pass
    raise ValueError(SUFFIX_ERROR)


def _text(value: str | int | float) -> str:
    if isinstance(value, bool):
        raise ValueError(FORMAT_ERROR)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(FORMAT_ERROR)
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(FORMAT_ERROR)


def parse_quantity_with_format(value: str | int | float) -> tuple[Decimal, str]:
    """Parse and also return the format the suffix implies (for canonical rendering)."""
    text = _text(value)
    if not text:
        raise ValueError(FORMAT_ERROR)
    if text == "0":
        return Decimal(0), DECIMAL_SI
    positive, number, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    unsigned = number.lstrip("+-")
    if unsigned in ("", ".") or unsigned.count(".") > 1:
        raise ValueError(NUMERIC_ERROR)
    try:
        amount = _CTX.abs(Decimal(unsigned))
        if base == 10:
            amount = _CTX.scaleb(amount, exponent)
        else:
            amount = _CTX.multiply(amount, Decimal(2**exponent))
        if amount != 0 and amount.adjusted() > _MAX_DIGITS:
            raise ValueError(FORMAT_ERROR)
        if amount != 0 and amount.adjusted() < _MAX_DIGITS // 2:
            # Round non-zero values up to the smallest representable value (1n).
            amount = amount.quantize(_NANO, rounding=decimal.ROUND_UP, context=_CTX)
    except decimal.DecimalException as exc:
        raise ValueError(NUMERIC_ERROR) from exc
    if fmt == BINARY_SI and amount > _MAX_INT64:
        amount = _MAX_INT64
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    if not positive:
        amount = -amount
    return _normalize(amount), fmt


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity; raises ValueError with apimachinery's message."""
    return parse_quantity_with_format(value)[0]


def _normalize(amount: Decimal) -> Decimal:
    if amount == 0:
        return Decimal(0)
    return amount.normalize(_CTX)


def _mantissa_exponent(amount: Decimal) -> tuple[int, int]:
    """amount == mantissa * 10**exponent, mantissa without trailing zeros."""
    sign, digits, exp = amount.normalize(_CTX).as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    assert isinstance(exp, int)
    return (-mantissa if sign else mantissa), exp


def format_quantity(amount: Decimal, fmt: str = DECIMAL_SI) -> str:
    """Render ``amount`` canonically in ``fmt`` (``Quantity.String()``)."""
    if amount == 0:
        return "0"
    if fmt == BINARY_SI:
        if -1024 < amount < 1024 or amount != amount.to_integral_value():
            fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        number, power = int(amount), 0
        while number % 1024 == 0 and power < 6:
            number //= 1024
            power += 1
        return f"{number}{_BINARY_BY_POWER[power]}"
    mantissa, exponent = _mantissa_exponent(amount)
    remainder = exponent % 3
    if remainder == 1:
        mantissa, exponent = mantissa * 10, exponent - 1
    elif remainder == 2:
        mantissa, exponent = mantissa * 100, exponent - 2
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    while exponent > 18:
        mantissa, exponent = mantissa * 1000, exponent - 3
    while exponent < -9:  # cannot happen after nano rounding; kept for safety
        mantissa, exponent = mantissa // 1000 or 1, exponent + 3
    return f"{mantissa}{_DECIMAL_BY_EXP[exponent]}"


def canonical_quantity(value: str | int | float, round_to_milli: bool = False) -> str:
    """The canonical string for a quantity (ValueError if it does not parse).

    ``round_to_milli`` rounds up to milli precision first, as the v1 defaulting of
    ``ResourceList`` values (container requests/limits, node capacity) does.
    """
    amount, fmt = parse_quantity_with_format(value)
    if round_to_milli and amount != 0 and amount.adjusted() < _MAX_DIGITS // 2:
        amount = _normalize(amount.quantize(Decimal("0.001"), rounding=decimal.ROUND_UP, context=_CTX))
    return format_quantity(amount, fmt)


def canonicalize_resource_list(resources: Any, round_to_milli: bool = True) -> None:
    """Rewrite every parseable value of a ``ResourceList`` dict into canonical form, in place."""
    if not isinstance(resources, dict):
        return
    for name, value in list(resources.items()):
        try:
            resources[name] = canonical_quantity(value, round_to_milli)
        except ValueError:
            pass  # left as is; validation reports it


def validate_resource_quantity(value: Any, path: str, *, allow_negative: bool = False) -> list[FieldError]:
    """``Invalid`` when ``value`` is not a quantity, or is negative (unless allowed)."""
    try:
        amount, fmt = parse_quantity_with_format(value)
    except ValueError as exc:
        return [invalid_value(path, value, str(exc))]
    if amount < 0 and not allow_negative:
        return [invalid_value(path, format_quantity(amount, fmt), "must be greater than or equal to 0")]
    return []


def quantity_string(value: Any) -> str:
    """Canonical string for messages; the raw value when it does not parse."""
    try:
        return canonical_quantity(value)
    except ValueError:
        return str(value)
