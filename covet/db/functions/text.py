"""Comparison, text and math functions: Coalesce, Lower, Concat, Round, Cast, Collate..."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Final

from covet.db.compiler.functions import int_converter
from covet.db.compiler.numeric import ExpressionDecimalField
from covet.db.exceptions import FieldError
from covet.db.fields import (
    CharField,
    DecimalField,
    Field,
)
from covet.db.functions.base import _DATETIME, _INT, _TEXT, Func, _int_option, _literal

if TYPE_CHECKING:
    from covet.db.compiler import Node
    from covet.db.compiler.nodes import Converter


__all__ = (
    "Abs",
    "Cast",
    "Coalesce",
    "Collate",
    "Concat",
    "Greatest",
    "LTrim",
    "Least",
    "Length",
    "Lower",
    "Now",
    "RTrim",
    "Replace",
    "Round",
    "Substr",
    "Trim",
    "Upper",
)

_COLLATION: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*\Z")

# -- comparison and text ---------------------------------------------------------------------


class Coalesce(Func):
    """The first non-NULL argument: ``Coalesce(Sum("views"), 0)``."""

    key = "coalesce"
    min_arity = 2


class Greatest(Func):
    """The largest argument; NULL if any argument is NULL (on every backend)."""

    key = "greatest"
    min_arity = 2


class Least(Func):
    """The smallest argument; NULL if any argument is NULL (on every backend)."""

    key = "least"
    min_arity = 2


class Lower(Func):
    """Lowercase text (Unicode-aware everywhere); ``order_by(Lower("name"))`` sorts caselessly."""

    key = "lower"
    arity = 1


class Upper(Func):
    """Uppercase text (Unicode-aware everywhere)."""

    key = "upper"
    arity = 1


class Length(Func):
    """The number of characters (not bytes) of text; NULL stays NULL."""

    key = "length"
    arity = 1

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return an integer field."""
        return _INT

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Read back an int."""
        return int_converter


class Concat(Func):
    """Concatenated text of the arguments; a NULL argument counts as ``""``.

    A plain string argument is text here (``Concat("name", " ", "email")``
    would name fields: write ``Concat("name", Value(" "), "email")``).
    """

    key = "concat"
    min_arity = 2

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return a text field."""
        return self.output_field or _TEXT

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Read back as text."""
        return None


class Substr(Func):
    """``length`` characters of text from the 1-based position ``pos`` (to the end if None)."""

    key = "substr"

    def __init__(self, expression: Any, pos: int, length: int | None = None) -> None:
        super().__init__(expression)
        self.pos = _int_option(pos, "Substr() pos", 1)
        self.length = None if length is None else _int_option(length, "Substr() length", 0)

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return position and length."""
        return (self.pos, self.length)


class Trim(Func):
    """Text without leading and trailing spaces."""

    key = "trim"
    arity = 1
    side: ClassVar[str] = ""

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return which side is trimmed."""
        return (self.side,)


class LTrim(Trim):
    """Text without leading spaces."""

    side = "L"


class RTrim(Trim):
    """Text without trailing spaces."""

    side = "R"


class Replace(Func):
    """Text with every ``text`` replaced by ``replacement`` (case-sensitive).

    ``text`` and ``replacement`` are plain strings (or expressions).
    """

    key = "replace"

    def __init__(self, expression: Any, text: Any, replacement: Any = "") -> None:
        super().__init__(expression, _literal(text), _literal(replacement))


class Abs(Func):
    """The absolute value of a number."""

    key = "abs"
    arity = 1


class Round(Func):
    """A number rounded to ``precision`` decimal places, halves away from zero.

    Integers and decimals round exactly alike everywhere; a float exactly
    halfway may round to even on MySQL/MariaDB (their float ROUND), so round
    a DecimalField where halves matter.
    """

    key = "round"

    def __init__(self, expression: Any, precision: int = 0) -> None:
        super().__init__(expression)
        self.precision = _int_option(precision, "Round() precision", 0)

    def _kind(self, args: tuple[Node, ...]) -> str:
        field = args[0].output_field
        kind: str = field.internal_type if field is not None else ""
        if kind not in ("int", "float", "decimal"):
            raise FieldError(f"Round() takes a number, not {field!r}. Round a numeric field.")
        return kind

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the precision and the input's numeric kind."""
        return (self.precision, self._kind(args))

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return the input's field, or an exact decimal of ``precision`` places."""
        if self._kind(args) == "decimal":
            return ExpressionDecimalField(self.precision)
        return args[0].output_field

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Read integers back as int (MySQL may return a DECIMAL)."""
        return int_converter if self._kind(args) == "int" else None


class Now(Func):
    """The current date and time (aware, UTC), per statement."""

    key = "now"
    arity = 0

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return a datetime field."""
        return _DATETIME


class Cast(Func):
    """An expression converted to the type of ``output_field``.

    Supported types: integer, float, decimal (with ``max_digits``), char/text,
    date, datetime and boolean fields; dates and datetimes convert in UTC.

    Args:
        expression: The value to convert.
        output_field: A field instance, e.g. ``fields.IntegerField()``.
    """

    key = "cast"

    def __init__(self, expression: Any, output_field: Field[Any]) -> None:
        if not isinstance(output_field, Field):
            raise FieldError(
                f"Cast() takes a field instance as output_field, not {output_field!r}."
            )
        super().__init__(expression, output_field=output_field)

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the target type, its size and the input's type."""
        field = self.output_field
        assert field is not None  # noqa: S101 - set by __init__
        size: tuple[int, ...] = ()
        if isinstance(field, DecimalField):
            size = (field.max_digits, field.decimal_places)
        elif isinstance(field, CharField):
            size = (field.max_length,)
        source = args[0].output_field
        return (field.internal_type, size, source.internal_type if source is not None else None)


class Collate(Func):
    """``expression COLLATE collation``: compare or sort text under another collation.

    Collation names differ by backend (SQLite ``NOCASE``; PostgreSQL ``"C"``
    or ICU ``"und-x-icu"``; MySQL ``utf8mb4_unicode_ci``); see the docs.
    """

    key = "collate"
    arity = 1

    def __init__(self, expression: Any, collation: str) -> None:
        if not _COLLATION.match(str(collation)):
            raise FieldError(
                f"Invalid collation name {collation!r}. Use letters, digits, '_', '-', '.', '@'."
            )
        super().__init__(expression)
        self.collation = collation

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the collation name."""
        return (self.collation,)
