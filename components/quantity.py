"""Kubernetes resource quantities (`500m`, `1.5Gi`, `2`), read exactly (pure).

One grammar for every quantity in the stack file: model resources, project
quotas, claim sizes. Quotas and model resources are compared with each other,
so they are read into exact fractions of the base unit (cores, bytes) rather
than floats.
"""
from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any, Optional

_QUANTITY = re.compile(
    r"^(?P<number>\d+(\.\d*)?|\.\d+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# Suffixes of byte amounts, never of CPU: the binary ones, and from M up (`32G` is
# memory; a million cores is no cluster's). Kubernetes would take `cpu: 10Gi` as
# about 10.7 billion cores: a quota that limits nothing, a request nothing fits.
_BYTE_SUFFIXES = frozenset(_BINARY) | {"M", "G", "T", "P", "E"}


def parse_quantity(value: Any) -> Optional[Fraction]:
    """The value of a non-negative quantity in its base unit, or None if it is not one.

    A YAML number (`cpu: 4`) counts as the quantity it spells.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number = Fraction(match.group("number"))
    suffix = match.group("suffix") or ""
    if suffix in _BINARY:
        return number * 1024 ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * Fraction(10) ** _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def is_quantity(value: Any) -> bool:
    """A quantity as written in a stack file: text or a whole number (not a float,
    which YAML would have rounded)."""
    return isinstance(value, (str, int)) and not isinstance(value, bool) \
        and parse_quantity(value) is not None


def is_byte_amount(value: Any) -> bool:
    """A quantity written with a suffix of bytes (`10Gi`, `2G`): not a CPU amount."""
    match = _QUANTITY.match(str(value).strip()) if is_quantity(value) else None
    return bool(match) and match.group("suffix") in _BYTE_SUFFIXES


def smaller(a: str, b: str) -> str:
    """The smaller of two quantities, as written."""
    return a if parse_quantity(a) <= parse_quantity(b) else b


def times(value: str, factor: int) -> str:
    """A quantity multiplied by a whole number, in its own suffix (`8` -> `16`,
    `1.5Gi` -> `3Gi`, `500m` -> `1000m`)."""
    match = _QUANTITY.match(str(value).strip())
    if match is None or isinstance(factor, bool) or not isinstance(factor, int) or factor < 0:
        raise ValueError(f"cannot multiply {value!r} by {factor!r}")
    number = Decimal(match.group("number")) * factor
    digits = format(number, "f")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return digits + (match.group("suffix") or "")
