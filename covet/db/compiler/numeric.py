"""The numeric type of plain values and of arithmetic, as SQL computes it.

A plain number in an expression (``F("quantity") * Decimal("2.5")``,
``Value(1.5)``) has no field to type it, so its Python type does: ``int`` is a
64-bit integer, ``float`` a double and ``Decimal`` an exact numeric. SQLite and
MySQL type a parameter by the value bound, but PostgreSQL infers it from the
other operand: in ``int4_col * $1`` the parameter becomes an int4 and asyncpg
truncates 2.5 to 2. The backend's ``ops.cast_param()`` adds a cast where the
database needs one. The type is part of the query shape, so SQL cached for an
``int`` value is never reused for a ``Decimal``.

Arithmetic promotes as SQL does, int < decimal < float: ``int * Decimal`` is a
decimal, and anything with a float is a float. A decimal result is read back as
a ``Decimal``. When every operand's scale is known (a column's
``decimal_places``, 0 for an integer), the result is quantized to the scale
exact arithmetic gives: the larger scale for ``+``/``-``, the sum for ``*``.
That removes the binary noise of SQLite's doubles and leaves exact results
alone. The scale of a ``Decimal`` value is not part of the query shape, and
division has no fixed scale, so those results come back unquantized.

Integer results are the same on every backend: ``int / int`` is integer division
truncating toward zero (MySQL's ``DIV``; its ``/`` would return a decimal), and
a decimal or float result stored in an integer column by ``update()`` drops its
fraction, toward zero (``ops.truncate_to_integer_sql``), where PostgreSQL and
MySQL would round and SQLite would store the REAL as it is.
"""

from __future__ import annotations

import decimal
import functools
from typing import Any, Final

from covet.db.fields import (
    BigIntegerField,
    DecimalField,
    Field,
    FloatField,
    IntegerField,
    SmallIntegerField,
    parse_decimal,
)

__all__ = (
    "ExpressionDecimalField",
    "arithmetic_field",
    "is_integer",
    "numeric_field",
    "numeric_value",
    "truncates_into",
)

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

#: The numeric kinds by promotion rank, lowest first (``int * Decimal`` is a decimal).
_RANK: Final = {"int": 0, "decimal": 1, "float": 2}

#: Quantizes a result read back without rounding it to a precision: only its scale changes.
_WIDE: Final = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


class ExpressionDecimalField(Field[decimal.Decimal]):
    """The output type of a decimal expression, which no column's precision bounds.

    Unlike :class:`~covet.db.fields.DecimalField`, it has no ``max_digits``: the
    product of two columns may have more digits than either.

    Args:
        scale: Decimal places of the exact result, or None when unknown (then
            values are read back as the database computed them).
    """

    internal_type = "decimal"
    finishes = True

    def __init__(self, scale: int | None) -> None:
        super().__init__(null=True)
        self.scale = scale
        self._quantum = None if scale is None else decimal.Decimal(1).scaleb(-scale)

    def to_python(self, value: Any) -> decimal.Decimal:
        """Return ``value`` as a ``Decimal`` (to compare an annotation), or raise ``ValueError``."""
        return parse_decimal(value)

    def from_db_value(self, value: Any) -> decimal.Decimal:
        """Return a result read back as a ``Decimal``, quantized to ``scale`` when known."""
        # SQLite computes with doubles and integers; str() is their shortest exact repr.
        result = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
        if self._quantum is None or not result.is_finite():
            return result
        return result.quantize(self._quantum, context=_WIDE)

    def __repr__(self) -> str:
        return f"<ExpressionDecimalField: scale={self.scale!r}>"


_INT_FIELD: Final = BigIntegerField(null=True)
_FLOAT_FIELD: Final = FloatField(null=True)


@functools.cache
def _decimal_field(scale: int | None) -> ExpressionDecimalField:
    # Scales are small integers (sums of decimal_places), so the cache stays small.
    return ExpressionDecimalField(scale)


def numeric_field(kind: str) -> Field[Any]:
    """Return the output field of a plain value of numeric ``kind`` (see :func:`numeric_value`).

    An ``int`` has scale 0; a ``Decimal`` value's scale is left unknown because
    it is not part of the query shape.
    """
    if kind == "int":
        return _INT_FIELD
    if kind == "float":
        return _FLOAT_FIELD
    return _decimal_field(None)


def numeric_value(value: Any) -> tuple[str, Any] | None:
    """Return ``(kind, value to bind)`` for a plain number, or None for anything else.

    ``kind`` is ``"int"``, ``"float"`` or ``"decimal"``. A ``bool`` is not a
    number here. An ``int`` beyond 64 bits is bound as an exact ``Decimal``:
    no database has a wider integer type.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return "int", value
        return "decimal", decimal.Decimal(value)
    if isinstance(value, float):
        return "float", value
    if isinstance(value, decimal.Decimal):
        return "decimal", value
    return None


#: ``_kind()`` by field class: ``update()`` asks for every value it sets.
_KINDS: dict[type, str | None] = {}


def _kind(field: Field[Any] | None) -> str | None:
    """Return the numeric kind of values of ``field``, or None if they are not numbers."""
    cls = type(field)
    try:
        return _KINDS[cls]
    except KeyError:
        kind = _KINDS[cls] = _kind_of(field)
        return kind


def _kind_of(field: Field[Any] | None) -> str | None:
    if isinstance(field, DecimalField | ExpressionDecimalField):
        return "decimal"
    if isinstance(field, FloatField):
        return "float"
    if isinstance(field, IntegerField | BigIntegerField | SmallIntegerField):
        return "int"
    return None


def is_integer(field: Field[Any] | None) -> bool:
    """Return whether the values of ``field`` are integers (an integer field or result)."""
    return _kind(field) == "int"


def truncates_into(target: Field[Any], value: Field[Any] | None) -> bool:
    """Return whether a ``value`` result stored in ``target`` must drop a fraction.

    True for a decimal or float result going into an integer column.
    """
    kinds = _KINDS
    cls = type(value)
    kind = kinds[cls] if cls in kinds else _kind(value)
    if kind != "decimal" and kind != "float":
        return False
    return _kind(target) == "int"


def _scale(field: Field[Any]) -> int | None:
    """Return the decimal places of every value of numeric ``field``, or None if they vary."""
    if isinstance(field, DecimalField):
        return field.decimal_places
    if isinstance(field, ExpressionDecimalField):
        return field.scale
    return 0 if _kind(field) == "int" else None


def arithmetic_field(lhs: Field[Any] | None, op: str, rhs: Field[Any] | None) -> Field[Any] | None:
    """Return the output field of ``lhs <op> rhs`` when both sides are numbers, else None.

    The result has the higher-ranked kind (int < decimal < float). An integer or
    float result keeps the field of the side that has that kind (``F("views") * 2``
    stays an ``IntegerField``); a decimal result is an
    :class:`ExpressionDecimalField` with the scale of exact arithmetic.
    """
    left, right = _kind(lhs), _kind(rhs)
    if lhs is None or rhs is None or left is None or right is None:
        return None
    kind = left if _RANK[left] >= _RANK[right] else right
    if kind != "decimal":
        return lhs if left == kind else rhs
    lscale, rscale = _scale(lhs), _scale(rhs)
    scale = None
    if lscale is not None and rscale is not None:
        if op in ("+", "-"):
            scale = max(lscale, rscale)
        elif op == "*":
            scale = lscale + rscale
    return _decimal_field(scale)
