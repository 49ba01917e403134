"""How MySQL and MariaDB spell the functions of :mod:`covet.db.functions`.

DATETIME(6) columns hold naive UTC and the session ``time_zone`` is
``'+00:00'``, so the date functions already work in UTC. Statements go
through the driver's ``format`` paramstyle: a literal ``%`` is written
``%%`` (``DATE_FORMAT`` patterns).
"""

from __future__ import annotations

from typing import Final

from covet.db.backends.base.functions import FunctionOperations, arg_list

__all__ = ("MySQLFunctionOperations",)

_TRUNC_DATETIME: Final = {
    "year": "%%Y-01-01 00:00:00",
    "month": "%%Y-%%m-01 00:00:00",
    "day": "%%Y-%%m-%%d 00:00:00",
    "hour": "%%Y-%%m-%%d %%H:00:00",
    "minute": "%%Y-%%m-%%d %%H:%%i:00",
    "second": "%%Y-%%m-%%d %%H:%%i:%%s",
}
_TRUNC_DATE: Final = {"year": "%%Y-01-01", "month": "%%Y-%%m-01", "day": "%%Y-%%m-%%d"}
_WEEK: Final = "DATE_SUB(DATE({0}), INTERVAL WEEKDAY({0}) DAY)"
_QUARTER: Final = "(MAKEDATE(YEAR({0}), 1) + INTERVAL (QUARTER({0}) - 1) QUARTER)"
_EXTRACT: Final = {
    "year": "YEAR({0})",
    "month": "MONTH({0})",
    "day": "DAYOFMONTH({0})",
    "hour": "HOUR({0})",
    "minute": "MINUTE({0})",
    "second": "SECOND({0})",
    "week_day": "DAYOFWEEK({0})",  # 1 = Sunday, as Django's week_day
    "iso_week_day": "(WEEKDAY({0}) + 1)",
    "quarter": "QUARTER({0})",
    "week": "WEEK({0}, 3)",  # mode 3: ISO 8601 weeks, Monday first
    "iso_year": "FLOOR(YEARWEEK({0}, 3) / 100)",
}
_CASTS: Final = {"int": "SIGNED", "float": "DOUBLE", "date": "DATE", "datetime": "DATETIME(6)"}


class MySQLFunctionOperations(FunctionOperations):
    """MySQL's spelling: CHAR_LENGTH, CONCAT_WS, DATE_FORMAT, emulated NULLS FIRST/LAST."""

    #: True when the server is MariaDB (set at connect by MySQLOperations).
    is_mariadb = False

    def fn_length(self, arity: int) -> str:
        """Render CHAR_LENGTH (LENGTH counts bytes in MySQL)."""
        return "CHAR_LENGTH({0})"

    def fn_concat(self, arity: int) -> str:
        """Render CONCAT_WS('', ...), which skips NULLs (CONCAT would return NULL)."""
        return f"CONCAT_WS('', {arg_list(arity)})"

    def fn_now(self, arity: int) -> str:
        """Render the current time with microseconds (UTC: the session's time_zone)."""
        return "CURRENT_TIMESTAMP(6)"

    def fn_cast(
        self, arity: int, internal_type: str, size: tuple[int, ...], input_type: str | None
    ) -> str:
        """Render a cast with MySQL's cast types (SIGNED, CHAR, DECIMAL(m, d)...)."""
        if internal_type == "decimal":
            digits = f"({size[0]}, {size[1]})" if size else "(65, 30)"
            return f"CAST({{0}} AS DECIMAL{digits})"
        if internal_type == "str":
            return f"CAST({{0}} AS CHAR({size[0]}))" if size else "CAST({0} AS CHAR)"
        if internal_type == "bool":
            return "({0} <> 0)"
        sql_type = _CASTS.get(internal_type)
        if sql_type is None:
            self.unsupported(f"Cast to {internal_type!r}")
        return f"CAST({{0}} AS {sql_type})"

    def fn_collate(self, arity: int, name: str) -> str:
        """Render ``expr COLLATE name`` (a collation name is not a quotable identifier here)."""
        return f"{{0}} COLLATE {name}"

    def fn_trunc(self, arity: int, kind: str, input_type: str) -> str:
        """Render truncation with DATE_FORMAT/MAKEDATE, typed back as DATETIME(6) or DATE."""
        if kind == "date":
            return "DATE({0})"
        if kind == "week":
            sql = _WEEK if input_type != "date" else "DATE_SUB({0}, INTERVAL WEEKDAY({0}) DAY)"
        elif kind == "quarter":
            sql = _QUARTER
        elif input_type == "date":
            return f"CAST(DATE_FORMAT({{0}}, '{_TRUNC_DATE[kind]}') AS DATE)"
        else:
            return f"CAST(DATE_FORMAT({{0}}, '{_TRUNC_DATETIME[kind]}') AS DATETIME(6))"
        return sql if input_type == "date" else f"CAST({sql} AS DATETIME(6))"

    def fn_extract(self, arity: int, lookup: str, input_type: str) -> str:
        """Render extraction with MySQL's date functions."""
        return _EXTRACT[lookup]

    def fn_lag(self, arity: int, offset: int) -> str:
        """Render LAG; MariaDB has no default argument (MySQL 8 has)."""
        self._check_default(arity, "Lag")
        return super().fn_lag(arity, offset)

    def fn_lead(self, arity: int, offset: int) -> str:
        """Render LEAD; MariaDB has no default argument (MySQL 8 has)."""
        self._check_default(arity, "Lead")
        return super().fn_lead(arity, offset)

    def _check_default(self, arity: int, name: str) -> None:
        if arity > 1 and self.is_mariadb:
            # COALESCE(LAG(x), default) would also replace a NULL x on the previous row.
            self.unsupported(f"{name}(..., default=...) (MariaDB's {name.upper()} has no default)")

    def fn_order(self, arity: int, descending: bool, nulls: str | None) -> str:
        """Render an ORDER BY term; NULLS FIRST/LAST is emulated with ``expr IS NULL``.

        MySQL sorts NULL as the lowest value and has no NULLS FIRST/LAST, so
        a boolean key sorts the NULLs to the asked-for end first.
        """
        sql = "{0} DESC" if descending else "{0} ASC"
        if nulls == "last" and not descending:
            return "{0} IS NULL, " + sql
        if nulls == "first" and descending:
            return "{0} IS NOT NULL, " + sql
        return sql
