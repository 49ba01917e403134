"""How PostgreSQL spells the functions of :mod:`covet.db.functions`.

DateTimeField columns are ``timestamptz``, and a connection's ``TimeZone``
is whatever the server or role sets. Truncation and extraction therefore work
on ``col AT TIME ZONE 'UTC'`` (the naive UTC time, as the value is stored and
as SQLite and MySQL see it), and a truncated datetime is turned back into a
``timestamptz`` of that UTC instant, so it compares with aware values.
"""

from __future__ import annotations

from typing import Final

from covet.db.backends.base.functions import FunctionOperations, arg_list

__all__ = ("PostgresFunctionOperations",)

_UTC: Final = "({0} AT TIME ZONE 'UTC')"
_FIELDS: Final = {
    "year": "YEAR",
    "month": "MONTH",
    "day": "DAY",
    "hour": "HOUR",
    "minute": "MINUTE",
    "second": "SECOND",
    "week": "WEEK",
    "quarter": "QUARTER",
    "week_day": "DOW",
    "iso_week_day": "ISODOW",
    "iso_year": "ISOYEAR",
}
_CASTS: Final = {
    "int": "BIGINT",
    "float": "DOUBLE PRECISION",
    "bool": "BOOLEAN",
    "time": "TIME",
}


class PostgresFunctionOperations(FunctionOperations):
    """PostgreSQL's spelling: DATE_TRUNC/EXTRACT in UTC, typed CONCAT."""

    def fn_greatest(self, arity: int) -> str:
        """Render GREATEST, NULL when any argument is NULL (PostgreSQL's ignores NULLs)."""
        test = " OR ".join(f"{{{i}}} IS NULL" for i in range(arity))
        return f"CASE WHEN {test} THEN NULL ELSE GREATEST({arg_list(arity)}) END"

    def fn_least(self, arity: int) -> str:
        """Render LEAST, NULL when any argument is NULL."""
        test = " OR ".join(f"{{{i}}} IS NULL" for i in range(arity))
        return f"CASE WHEN {test} THEN NULL ELSE LEAST({arg_list(arity)}) END"

    def fn_concat(self, arity: int) -> str:
        """Render CONCAT (skips NULLs) of text casts, so that parameters have a type."""
        return "CONCAT(" + ", ".join(f"CAST({{{i}}} AS TEXT)" for i in range(arity)) + ")"

    def fn_round(self, arity: int, places: int, kind: str) -> str:
        """Render ROUND over NUMERIC (half away from zero), cast back to the input's kind."""
        sql = f"ROUND(CAST({{0}} AS NUMERIC), {places})"
        back = {"int": "BIGINT", "float": "DOUBLE PRECISION"}.get(kind)
        return f"CAST({sql} AS {back})" if back else sql

    def fn_now(self, arity: int) -> str:
        """Render the statement's start time (CURRENT_TIMESTAMP is the transaction's)."""
        return "STATEMENT_TIMESTAMP()"

    def fn_cast(
        self, arity: int, internal_type: str, size: tuple[int, ...], input_type: str | None
    ) -> str:
        """Render a cast; dates and datetimes convert in UTC, not the session's zone."""
        if internal_type == "date":
            return f"CAST({_UTC} AS DATE)" if input_type == "datetime" else "CAST({0} AS DATE)"
        if internal_type == "datetime":
            if input_type == "datetime":
                return "{0}"
            return "(CAST({0} AS TIMESTAMP) AT TIME ZONE 'UTC')"
        if internal_type == "decimal":
            return (
                f"CAST({{0}} AS NUMERIC({size[0]}, {size[1]}))" if size else "CAST({0} AS NUMERIC)"
            )
        if internal_type == "str":
            return f"CAST({{0}} AS VARCHAR({size[0]}))" if size else "CAST({0} AS TEXT)"
        sql_type = _CASTS.get(internal_type)
        if sql_type is None:
            self.unsupported(f"Cast to {internal_type!r}")
        return f"CAST({{0}} AS {sql_type})"

    def fn_trunc(self, arity: int, kind: str, input_type: str) -> str:
        """Render DATE_TRUNC in UTC (a date is truncated as a timestamp, then cast back)."""
        if input_type == "date":
            return f"CAST(DATE_TRUNC('{kind}', CAST({{0}} AS TIMESTAMP)) AS DATE)"
        if kind == "date":
            return f"CAST({_UTC} AS DATE)"
        return f"(DATE_TRUNC('{kind}', {_UTC}) AT TIME ZONE 'UTC')"

    def fn_extract(self, arity: int, lookup: str, input_type: str) -> str:
        """Render EXTRACT as an integer (seconds floored, week_day 1 = Sunday)."""
        source = "{0}" if input_type == "date" else _UTC
        sql = f"EXTRACT({_FIELDS[lookup]} FROM {source})"
        if lookup == "second":
            sql = f"FLOOR({sql})"
        elif lookup == "week_day":
            sql = f"({sql} + 1)"
        return f"CAST({sql} AS INTEGER)"
