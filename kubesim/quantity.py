"""Kubernetes resource quantities (``100m``, ``128Mi``, ``1e3``) parsed exactly, as the API does.

The grammar is ``k8s.io/apimachinery/pkg/api/resource``'s: a signed decimal number followed by a
binary suffix (``Ki`` … ``Ei``), a decimal suffix (``n`` … ``E``) or a decimal exponent (``e3``).
kubesim keeps its own copy so that it depends on nothing of the project it tests.

>>> parse_quantity("100m")
Decimal('0.100')
>>> parse_quantity("1Gi") == 1024**3
True
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)

QUANTITY_HELP = (
    "a Kubernetes quantity: a number with an optional suffix, e.g. 100m, 0.5, 128Mi, 1Gi, 2G, 1e3"
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """Return the exact value of a Kubernetes quantity, or raise :class:`QuantityError`."""
    if isinstance(text, bool):
        raise QuantityError(f"{text!r} is not {QUANTITY_HELP}")
    if isinstance(text, int | float):
        return Decimal(str(text))
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(f"{text!r} is not {QUANTITY_HELP}")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as e:  # pragma: no cover - the regex admits only valid decimals
        raise QuantityError(f"{text!r} is not {QUANTITY_HELP}") from e
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Decimal(10) ** int(suffix[1:])
