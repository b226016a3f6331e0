"""resource.Quantity parsing and canonical form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cloudlet.resources.quantity import (
    FORMAT_ERROR,
    canonical_quantity,
    parse_quantity,
    validate_resource_quantity,
)

from ._helpers import messages


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("128Mi", Decimal(128 * 2**20)), ("1.5Gi", Decimal(1536 * 2**20)),
    ("1e3", Decimal(1000)), ("2k", Decimal(2000)), ("0.1", Decimal("0.1")), (3, Decimal(3)),
    (0.25, Decimal("0.25")), ("-1", Decimal(-1)), ("0.0000000001", Decimal("1e-9")), ("+.5", Decimal("0.5")),
])
def test_parse(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(("text", "canonical"), [
    ("500m", "500m"), ("1.5Gi", "1536Mi"), ("1Gi", "1Gi"), ("1.5", "1500m"), ("0.1", "100m"),
    ("1e3", "1e3"), ("2000", "2k"), ("1500", "1500"), ("1024", "1024"), ("1000m", "1"), ("1.5Ki", "1536"),
    (1, "1"), ("12e6", "12e6"), ("0", "0"),
])
def test_canonical(text: str | int, canonical: str) -> None:
    assert canonical_quantity(text) == canonical


def test_milli_rounding_for_resource_lists() -> None:
    assert canonical_quantity("1n", round_to_milli=True) == "1m"
    assert canonical_quantity("1.0001", round_to_milli=True) == "1001m"


@pytest.mark.parametrize(("text", "message"), [
    ("", FORMAT_ERROR), ("1.2.3", FORMAT_ERROR), (" 1", FORMAT_ERROR), ("abc", FORMAT_ERROR),
    ("1K", "unable to parse quantity's suffix"), ("1e", "unable to parse quantity's suffix"),
    (".", "unable to parse numeric part of quantity"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_quantity(text)
    assert str(exc.value) == message


def test_format_error_message_is_apimachinerys() -> None:
    assert FORMAT_ERROR == "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def test_validate_resource_quantity() -> None:
    assert validate_resource_quantity("1Gi", "x") == []
    assert messages(validate_resource_quantity("-1", "spec.x")) == [
        'spec.x: Invalid value: "-1": must be greater than or equal to 0'
    ]
    assert messages(validate_resource_quantity("1.2.3", "spec.x")) == [f'spec.x: Invalid value: "1.2.3": {FORMAT_ERROR}']
