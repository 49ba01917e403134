"""MySQL/MariaDB spellings of JSON, date/time and regex lookups.

MariaDB's JSON is LONGTEXT with a JSON_VALID check and MySQL's a binary JSON
type; the JSON_* functions below behave the same on both, except equality
(JSON_EQUALS on MariaDB, a JSON cast on MySQL). DATETIME(6) columns hold naive
UTC (the session time_zone is '+00:00'), so date parts are UTC parts.
The driver formats statements with ``%``, so a ``%`` in a literal is doubled.
"""

from __future__ import annotations

from typing import Final

from covet.db.backends.base.lookups import JSONPath, LookupOperations

__all__ = ("MySQLLookups",)

_EXTRACT: Final = {
    "year": "YEAR({})",
    "quarter": "QUARTER({})",
    "month": "MONTH({})",
    "week": "WEEK({}, 3)",  # mode 3: ISO 8601 weeks, starting on Monday
    "day": "DAYOFMONTH({})",
    "week_day": "DAYOFWEEK({})",  # 1 = Sunday
    "iso_week_day": "(WEEKDAY({}) + 1)",  # WEEKDAY: 0 = Monday
    "hour": "HOUR({})",
    "minute": "MINUTE({})",
    "second": "SECOND({})",
}
_JSON_TYPES: Final = {
    "string": "= 'STRING'",
    "number": "IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')",
    "boolean": "= 'BOOLEAN'",
}


class MySQLLookups(LookupOperations):
    """JSON, date/time and regex lookups for MySQL and MariaDB (no ArrayField)."""

    #: Set at connect: the JSON equality spelling differs.
    is_mariadb = False
    text_collation: str | None = "utf8mb4_bin"

    def string_literal(self, text: str) -> str:
        """Quote ``text`` for a ``format``-style statement (``%`` doubled)."""
        return "'" + text.replace("'", "''").replace("%", "%%") + "'"

    def _at(self, lhs: str, path: JSONPath) -> str:
        if not path:
            return lhs
        return f"JSON_EXTRACT({lhs}, {self.string_literal(self.json_path_text(path))})"

    def json_typed_sql(self, lhs: str, path: JSONPath, kind: str) -> str:
        """Render the value at ``path`` as text (binary collation), a double or 1/0."""
        at = self._at(lhs, path)
        if kind == "string":
            value = f"JSON_UNQUOTE({at})"
            if self.text_collation:
                value = f"CONVERT({value} USING utf8mb4) COLLATE {self.text_collation}"
        elif kind == "number":
            value = f"(JSON_UNQUOTE({at}) + 0e0)"
        else:
            value = f"(JSON_UNQUOTE({at}) = 'true')"
        return f"(CASE WHEN JSON_TYPE({at}) {_JSON_TYPES[kind]} THEN {value} END)"

    def json_value_sql(self, lhs: str, path: JSONPath) -> str:
        """Render JSON_EXTRACT() (JSON text)."""
        return self._at(lhs, path)

    def json_is_null_sql(self, lhs: str, path: JSONPath) -> str:
        """Render: the value at ``path`` is JSON null."""
        return f"JSON_TYPE({self._at(lhs, path)}) = 'NULL'"

    def json_has_path_sql(self, lhs: str, path: JSONPath) -> str:
        """Render JSON_CONTAINS_PATH()."""
        p = self.string_literal(self.json_path_text(path))
        return f"JSON_CONTAINS_PATH({lhs}, 'one', {p}) = 1"

    def json_equal_sql(self, lhs: str, path: JSONPath, rhs: str) -> str:
        """Render JSON_EQUALS() (MariaDB) or a comparison of JSON values (MySQL)."""
        at = self._at(lhs, path)
        if self.is_mariadb:
            return f"JSON_EQUALS({at}, {rhs}) = 1"
        return f"{at} = CAST({rhs} AS JSON)"

    def json_contains_sql(self, lhs: str, path: JSONPath, rhs: str, *, reverse: bool) -> str:
        """Render JSON_CONTAINS(target, candidate)."""
        at = self._at(lhs, path)
        return f"JSON_CONTAINS({rhs}, {at}) = 1" if reverse else f"JSON_CONTAINS({at}, {rhs}) = 1"

    def datetime_extract_sql(self, part: str, lhs: str, internal_type: str) -> str:
        """Render YEAR(), WEEK(..., 3), DAYOFWEEK() and friends."""
        return _EXTRACT[part].format(lhs)

    def datetime_cast_sql(self, target: str, lhs: str) -> str:
        """Render ``CAST(... AS DATE)`` or ``AS TIME(6)``."""
        return f"CAST({lhs} AS {'DATE' if target == 'date' else 'TIME(6)'})"

    def regex_sql(self, lhs: str, rhs: str, *, insensitive: bool) -> str:
        """Render ``REGEXP`` (PCRE on MariaDB, ICU on MySQL; both read ``(?i)``)."""
        if insensitive:
            return f"{lhs} REGEXP CONCAT('(?i)', {rhs})"
        return f"{lhs} REGEXP {rhs}"
