"""Date and time functions: Trunc and Extract (computed in UTC) and their shortcuts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from covet.db.compiler.functions import int_converter
from covet.db.exceptions import FieldError
from covet.db.functions.base import _DATE, _DATETIME, _INT, Func

if TYPE_CHECKING:
    from covet.db.compiler import Node
    from covet.db.compiler.nodes import Converter
    from covet.db.fields import Field


__all__ = (
    "Extract",
    "ExtractDay",
    "ExtractHour",
    "ExtractIsoWeekDay",
    "ExtractIsoYear",
    "ExtractMinute",
    "ExtractMonth",
    "ExtractQuarter",
    "ExtractSecond",
    "ExtractWeek",
    "ExtractWeekDay",
    "ExtractYear",
    "Trunc",
    "TruncDate",
    "TruncDay",
    "TruncHour",
    "TruncMinute",
    "TruncMonth",
    "TruncQuarter",
    "TruncSecond",
    "TruncWeek",
    "TruncYear",
)

_TRUNC_KINDS: Final = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")
_EXTRACT_LOOKUPS: Final = (
    "year", "iso_year", "quarter", "month", "week", "day", "week_day", "iso_week_day",
    "hour", "minute", "second",
)  # fmt: skip
_TIME_PARTS: Final = frozenset({"hour", "minute", "second"})

# -- date and time ---------------------------------------------------------------------------


def _temporal_type(node: Node, what: str) -> str:
    field = node.output_field
    kind: str = field.internal_type if field is not None else ""
    if kind not in ("date", "datetime"):
        raise FieldError(f"{what} takes a DateField or DateTimeField, not {field!r}.")
    return kind


class Trunc(Func):
    """A date or datetime truncated to ``kind``: year, quarter, month, week, day, hour...

    A DateTimeField truncates in UTC to an aware datetime; a DateField to a
    date. ``week`` starts on Monday (ISO 8601). ``values(month=TruncMonth(
    "created")).annotate(n=Count("id"))`` counts rows per month.

    Args:
        expression: A DateField/DateTimeField name or expression.
        kind: One of year, quarter, month, week, day, hour, minute, second, date.
    """

    key = "trunc"
    kind: str = ""

    def __init__(self, expression: Any, kind: str | None = None) -> None:
        super().__init__(expression)
        kind = kind if kind is not None else self.kind
        if kind not in (*_TRUNC_KINDS, "date"):
            raise FieldError(
                f"Unsupported Trunc kind {kind!r}. Use one of: {', '.join(_TRUNC_KINDS)}, date."
            )
        self.kind = kind

    def _input(self, args: tuple[Node, ...]) -> str:
        input_type = _temporal_type(args[0], f"Trunc({self.kind!r})")
        if input_type == "date" and self.kind in _TIME_PARTS:
            raise FieldError(f"Cannot truncate a DateField to {self.kind!r}. Use a DateTimeField.")
        return input_type

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the kind and the input's type."""
        return (self.kind, self._input(args))

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return a date field for dates and ``date``, else a datetime field."""
        return _DATE if self.kind == "date" or self._input(args) == "date" else _DATETIME

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Read back by the output field."""
        return None


class TruncYear(Trunc):
    """Truncate to the first instant of the year."""

    kind = "year"


class TruncQuarter(Trunc):
    """Truncate to the first instant of the quarter."""

    kind = "quarter"


class TruncMonth(Trunc):
    """Truncate to the first instant of the month."""

    kind = "month"


class TruncWeek(Trunc):
    """Truncate to Monday 00:00 of the ISO week."""

    kind = "week"


class TruncDay(Trunc):
    """Truncate to midnight (UTC)."""

    kind = "day"


class TruncHour(Trunc):
    """Truncate to the hour."""

    kind = "hour"


class TruncMinute(Trunc):
    """Truncate to the minute."""

    kind = "minute"


class TruncSecond(Trunc):
    """Truncate to the second."""

    kind = "second"


class TruncDate(Trunc):
    """The date (UTC) of a datetime, as a ``datetime.date``."""

    kind = "date"


class Extract(Func):
    """An integer part of a date or datetime (UTC): year, month, day, week_day, hour...

    ``week_day`` is 1 (Sunday) to 7, ``iso_week_day`` 1 (Monday) to 7, and
    ``week``/``iso_year`` follow ISO 8601, as in Django.

    Args:
        expression: A DateField/DateTimeField name or expression.
        lookup_name: The part to extract.
    """

    key = "extract"
    lookup_name: str = ""

    def __init__(self, expression: Any, lookup_name: str | None = None) -> None:
        super().__init__(expression)
        name = lookup_name if lookup_name is not None else self.lookup_name
        if name not in _EXTRACT_LOOKUPS:
            raise FieldError(
                f"Unsupported Extract lookup {name!r}. Use one of: {', '.join(_EXTRACT_LOOKUPS)}."
            )
        self.lookup_name = name

    def options(self, args: tuple[Node, ...]) -> tuple[Any, ...]:
        """Return the part and the input's type."""
        input_type = _temporal_type(args[0], f"Extract({self.lookup_name!r})")
        if input_type == "date" and self.lookup_name in _TIME_PARTS:
            raise FieldError(f"A DateField has no {self.lookup_name!r}. Use a DateTimeField.")
        return (self.lookup_name, input_type)

    def output(self, args: tuple[Node, ...]) -> Field[Any] | None:
        """Return an integer field."""
        return _INT

    def converter(self, args: tuple[Node, ...]) -> Converter | Node | None:
        """Read back an int."""
        return int_converter


class ExtractYear(Extract):
    """The year."""

    lookup_name = "year"


class ExtractIsoYear(Extract):
    """The ISO 8601 week-numbering year."""

    lookup_name = "iso_year"


class ExtractQuarter(Extract):
    """The quarter, 1 to 4."""

    lookup_name = "quarter"


class ExtractMonth(Extract):
    """The month, 1 to 12."""

    lookup_name = "month"


class ExtractWeek(Extract):
    """The ISO 8601 week number, 1 to 53."""

    lookup_name = "week"


class ExtractDay(Extract):
    """The day of the month."""

    lookup_name = "day"


class ExtractWeekDay(Extract):
    """The day of the week, 1 (Sunday) to 7 (Saturday)."""

    lookup_name = "week_day"


class ExtractIsoWeekDay(Extract):
    """The ISO day of the week, 1 (Monday) to 7 (Sunday)."""

    lookup_name = "iso_week_day"


class ExtractHour(Extract):
    """The hour (UTC)."""

    lookup_name = "hour"


class ExtractMinute(Extract):
    """The minute."""

    lookup_name = "minute"


class ExtractSecond(Extract):
    """The whole second (fractions dropped)."""

    lookup_name = "second"
