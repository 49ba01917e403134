"""How SQLite spells the functions of :mod:`covet.db.functions`.

Datetimes are stored as fixed-width naive UTC text (``2026-01-02
03:04:05.000006``, see :mod:`covet.db.backends.sqlite.converters`), so
truncation keeps that exact width: a truncated value then compares equal to a
stored one and reads back through the same converter. Dates are ISO text.
"""

from __future__ import annotations

from typing import Final

from covet.db.backends.base.functions import FunctionOperations, arg_list

__all__ = ("SQLiteFunctionOperations",)

# strftime() formats of a truncated datetime, in the width DateTimeField stores.
_TRUNC_DATETIME: Final = {
    "year": "%Y-01-01 00:00:00.000000",
    "month": "%Y-%m-01 00:00:00.000000",
    "day": "%Y-%m-%d 00:00:00.000000",
    "hour": "%Y-%m-%d %H:00:00.000000",
    "minute": "%Y-%m-%d %H:%M:00.000000",
    "second": "%Y-%m-%d %H:%M:%S.000000",
}
_TRUNC_DATE: Final = {"year": "%Y-01-01", "month": "%Y-%m-01", "day": "%Y-%m-%d"}
# Modifiers moving a date back to the Monday of its ISO week (''weekday 1'' moves forward to
# the next Monday, or stays on one) and to the first day of its quarter.
_WEEK: Final = "'-6 days', 'weekday 1'"
_QUARTER: Final = (
    "'start of month', '-' || ((CAST(STRFTIME('%m', {0}) AS INTEGER) - 1) % 3) || ' months'"
)
# The Thursday of the ISO week: its year is the ISO year, its day of year gives the week.
_THURSDAY: Final = "DATE({0}, '-3 days', 'weekday 4')"
_EXTRACT: Final = {
    "year": "CAST(STRFTIME('%Y', {0}) AS INTEGER)",
    "month": "CAST(STRFTIME('%m', {0}) AS INTEGER)",
    "day": "CAST(STRFTIME('%d', {0}) AS INTEGER)",
    "hour": "CAST(STRFTIME('%H', {0}) AS INTEGER)",
    "minute": "CAST(STRFTIME('%M', {0}) AS INTEGER)",
    "second": "CAST(STRFTIME('%S', {0}) AS INTEGER)",
    # %w is 0 (Sunday) to 6; Django's week_day is 1 (Sunday) to 7.
    "week_day": "(CAST(STRFTIME('%w', {0}) AS INTEGER) + 1)",
    "iso_week_day": "((CAST(STRFTIME('%w', {0}) AS INTEGER) + 6) % 7 + 1)",
    "quarter": "((CAST(STRFTIME('%m', {0}) AS INTEGER) + 2) / 3)",
    # %W is not the ISO week (and %V only exists from 3.46).
    "week": f"((CAST(STRFTIME('%j', {_THURSDAY}) AS INTEGER) - 1) / 7 + 1)",
    "iso_year": f"CAST(STRFTIME('%Y', {_THURSDAY}) AS INTEGER)",
}
# The time-value the date functions read. SQLite keeps times to the millisecond, so the
# stored "... 23:59:59.999999" would round up to the next day: drop the fraction first.
_SOURCE: Final = {"datetime": "SUBSTR({0}, 1, 19)", "date": "{0}"}
# What DateTimeField stores: microseconds always written (%f is SS.SSS).
_NOW_TEXT: Final = "STRFTIME('%Y-%m-%d %H:%M:%f000', {0})"


class SQLiteFunctionOperations(FunctionOperations):
    """SQLite's spelling: MAX/MIN for GREATEST/LEAST, strftime() for dates."""

    def fn_greatest(self, arity: int) -> str:
        """Render the multi-argument MAX(), NULL when any argument is NULL."""
        return f"MAX({arg_list(arity)})"

    def fn_least(self, arity: int) -> str:
        """Render the multi-argument MIN(), NULL when any argument is NULL."""
        return f"MIN({arg_list(arity)})"

    def fn_round(self, arity: int, places: int, kind: str) -> str:
        """Render ROUND (which returns a REAL even for an integer: cast back)."""
        if kind == "int":
            return f"CAST(ROUND({{0}}, {places}) AS INTEGER)"
        return f"ROUND({{0}}, {places})"

    def fn_now(self, arity: int) -> str:
        """Render the current UTC time as the text DateTimeField stores."""
        return _NOW_TEXT.replace("{0}", "'now'")

    def fn_cast(
        self, arity: int, internal_type: str, size: tuple[int, ...], input_type: str | None
    ) -> str:
        """Render a cast; dates and datetimes are text in covet's stored format."""
        if internal_type == "date":
            return "DATE({0})"
        if internal_type == "datetime":
            return "{0}" if input_type == "datetime" else _NOW_TEXT
        if internal_type == "bool":
            return "(CAST({0} AS INTEGER) <> 0)"
        sql_type = {"int": "INTEGER", "float": "REAL", "decimal": "REAL", "str": "TEXT"}.get(
            internal_type
        )
        if sql_type is None:
            self.unsupported(f"Cast to {internal_type!r}")
        return f"CAST({{0}} AS {sql_type})"

    def fn_trunc(self, arity: int, kind: str, input_type: str) -> str:
        """Render truncation with strftime()/date() modifiers."""
        return self._trunc(kind, input_type).replace("{0}", _SOURCE[input_type])

    def fn_extract(self, arity: int, lookup: str, input_type: str) -> str:
        """Render extraction with strftime()."""
        return _EXTRACT[lookup].replace("{0}", _SOURCE[input_type])

    def _trunc(self, kind: str, input_type: str) -> str:
        if kind == "date":
            return "DATE({0})"
        fmt = "%Y-%m-%d" if input_type == "date" else "%Y-%m-%d 00:00:00.000000"
        if kind == "week":
            return f"STRFTIME('{fmt}', {{0}}, {_WEEK})"
        if kind == "quarter":
            return f"STRFTIME('{fmt}', {{0}}, {_QUARTER})"
        if input_type == "date":
            return f"STRFTIME('{_TRUNC_DATE[kind]}', {{0}})"
        return f"STRFTIME('{_TRUNC_DATETIME[kind]}', {{0}})"
