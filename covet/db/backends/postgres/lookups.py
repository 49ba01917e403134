"""PostgreSQL spellings of JSON, date/time, regex and array lookups.

JSONField columns are ``jsonb`` (see covet.db.schema), so key paths use ``#>``,
containment ``@>``/``<@`` (which a GIN index serves) and equality the jsonb
``=`` (objects equal regardless of key order). ``timestamptz`` parts are taken
``AT TIME ZONE 'UTC'``, whatever the session's TimeZone.
"""

from __future__ import annotations

from typing import Final

from covet.db.backends.base.lookups import JSONPath, LookupOperations

__all__ = ("PostgresLookups",)

_EXTRACT: Final = {
    "year": "YEAR",
    "quarter": "QUARTER",
    "month": "MONTH",
    "week": "WEEK",  # ISO 8601 week number
    "day": "DAY",
    "week_day": "DOW",  # 0 = Sunday: shifted to Django's 1 = Sunday below
    "iso_week_day": "ISODOW",  # 1 = Monday
    "hour": "HOUR",
    "minute": "MINUTE",
    "second": "SECOND",
}
_JSON_TYPES: Final = {"string": "string", "number": "number", "boolean": "boolean"}
_JSON_CASTS: Final = {"string": "", "number": "::numeric", "boolean": "::boolean"}


class PostgresLookups(LookupOperations):
    """JSON (jsonb), date/time, regex and array lookups for PostgreSQL."""

    def _json_at(self, lhs: str, path: JSONPath) -> str:
        if not path:
            return lhs
        steps = ", ".join(self.string_literal(str(step)) for step in path)
        return f"({lhs} #> ARRAY[{steps}]::text[])"

    def json_typed_sql(self, lhs: str, path: JSONPath, kind: str) -> str:
        """Render the value at ``path`` as text, numeric or boolean when of that JSON type."""
        at = self._json_at(lhs, path)
        return (
            f"(CASE WHEN jsonb_typeof({at}) = '{_JSON_TYPES[kind]}' "
            f"THEN ({at} #>> '{{}}'){_JSON_CASTS[kind]} END)"
        )

    def json_value_sql(self, lhs: str, path: JSONPath) -> str:
        """Render ``#>`` (jsonb, decoded by covet's codec)."""
        return self._json_at(lhs, path)

    def json_is_null_sql(self, lhs: str, path: JSONPath) -> str:
        """Render: the value at ``path`` is JSON null."""
        return f"jsonb_typeof({self._json_at(lhs, path)}) = 'null'"

    def json_has_path_sql(self, lhs: str, path: JSONPath) -> str:
        """Render: ``path`` exists (``#>`` gives SQL NULL only for a missing path)."""
        return f"{self._json_at(lhs, path)} IS NOT NULL"

    def json_equal_sql(self, lhs: str, path: JSONPath, rhs: str) -> str:
        """Render jsonb equality with the bound document."""
        return f"{self._json_at(lhs, path)} = CAST({rhs} AS jsonb)"

    def json_contains_sql(self, lhs: str, path: JSONPath, rhs: str, *, reverse: bool) -> str:
        """Render ``@>`` (contains) or ``<@`` (contained_by)."""
        op = "<@" if reverse else "@>"
        return f"{self._json_at(lhs, path)} {op} CAST({rhs} AS jsonb)"

    def datetime_extract_sql(self, part: str, lhs: str, internal_type: str) -> str:
        """Render ``EXTRACT(...)`` as an integer, in UTC for timestamptz."""
        source = f"({lhs} AT TIME ZONE 'UTC')" if internal_type == "datetime" else lhs
        sql = f"CAST(FLOOR(EXTRACT({_EXTRACT[part]} FROM {source})) AS integer)"
        return f"({sql} + 1)" if part == "week_day" else sql

    def datetime_cast_sql(self, target: str, lhs: str) -> str:
        """Render the UTC date or time of a timestamptz."""
        return f"CAST(({lhs} AT TIME ZONE 'UTC') AS {'date' if target == 'date' else 'time'})"

    def regex_sql(self, lhs: str, rhs: str, *, insensitive: bool) -> str:
        """Render POSIX ``~`` / ``~*``."""
        return f"{lhs} {'~*' if insensitive else '~'} {rhs}"

    def array_lookup_sql(self, lookup: str, lhs: str, rhs: str) -> str:
        """Render ``@>``, ``<@`` or ``&&`` (a GIN index serves all three)."""
        op = {"contains": "@>", "contained_by": "<@", "overlap": "&&"}[lookup]
        return f"{lhs} {op} {rhs}"

    def array_length_sql(self, lhs: str) -> str:
        """Render the element count (``cardinality`` is 0, not NULL, for ``{}``)."""
        return f"cardinality({lhs})"

    def array_index_sql(self, lhs: str, index: int) -> str:
        """Render a 0-based element (PostgreSQL arrays are 1-based)."""
        return f"{lhs}[{int(index) + 1}]"
