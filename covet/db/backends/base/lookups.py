"""Dialect SQL for transforms and lookups beyond plain comparisons.

JSON key paths, date/time parts and regular expressions have no ANSI
spelling, so :class:`LookupOperations` (mixed into every dialect's
operations) raises :class:`NotSupportedError` naming the method, and each
dialect overrides what it can do.

A JSON path is a tuple of keys (``str``) and array indexes (``int``). Keys are
checked by :func:`check_json_key` and written into the SQL as string literals
(doubled quotes); they come from filter keywords, so the SQL of a key path is
part of the query's shape, and the compiled-SQL cache keys on them.
"""

from __future__ import annotations

from typing import Final

from covet.db.exceptions import FieldError, NotSupportedError

__all__ = (
    "DATE_PARTS",
    "JSON_KINDS",
    "TIME_PARTS",
    "JSONPath",
    "LookupOperations",
    "check_json_key",
)

#: A path into a JSON document: object keys and array indexes.
JSONPath = tuple[str | int, ...]

#: The JSON types a key transform can be compared as (see json_typed_sql()).
JSON_KINDS: Final = ("string", "number", "boolean")
#: The parts of a date (DateField, DateTimeField) a lookup can extract.
DATE_PARTS: Final = ("year", "quarter", "month", "week", "day", "week_day", "iso_week_day")
#: The parts of a time of day (TimeField, DateTimeField) a lookup can extract.
TIME_PARTS: Final = ("hour", "minute", "second")

# Characters refused in JSON keys: the quote and backslash have no portable escape in
# SQLite's and MySQL's path syntax, and control characters are never meant.
_BAD_KEY_CHARS: Final = frozenset('"\\') | frozenset(chr(c) for c in range(32)) | {"\x7f"}


def check_json_key(key: object) -> str | int:
    """Return a JSON path step, or raise FieldError for one no backend can spell safely.

    Args:
        key: An object key (``str``) or an array index (non-negative ``int``).

    Raises:
        FieldError: The key is empty, holds a double quote, a backslash or a control
            character, or the index is negative.
    """
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise FieldError(f"Invalid JSON key {key!r}. Use a string key or an integer index.")
    if isinstance(key, int):
        if key < 0:
            raise FieldError(f"Invalid JSON array index {key!r}. Use an index >= 0.")
        return key
    if not key or any(ch in _BAD_KEY_CHARS for ch in key):
        raise FieldError(
            f"Invalid JSON key {key!r}. Keys must be non-empty and cannot hold double "
            "quotes, backslashes or control characters."
        )
    return key


class LookupOperations:
    """Transforms and lookups each dialect spells its own way (default: not supported)."""

    def _unsupported(self, method: str, what: str) -> NotSupportedError:
        return NotSupportedError(
            f"This database does not support {what} ({type(self).__name__}.{method}() "
            "is not implemented)."
        )

    def string_literal(self, text: str) -> str:
        """Return ``text`` as an SQL string literal (for checked keys only, never values)."""
        return "'" + text.replace("'", "''") + "'"

    def json_path_text(self, path: JSONPath) -> str:
        """Return a SQL/JSON path such as ``$."owner"."tags"[0]`` (SQLite, MySQL syntax)."""
        out = ["$"]
        for step in path:
            out.append(f"[{step}]" if isinstance(step, int) else f'."{step}"')
        return "".join(out)

    # -- JSON -----------------------------------------------------------------------------

    def json_typed_sql(self, lhs: str, path: JSONPath, kind: str) -> str:
        """Render the value at ``path`` as an SQL value when its JSON type is ``kind``.

        Args:
            lhs: SQL of the JSON column.
            path: The key path (non-empty).
            kind: ``"string"`` (text), ``"number"`` (numeric) or ``"boolean"``.

        Returns:
            SQL that is NULL when the key is missing or holds another JSON type, so a
            comparison with a number never matches a string ``"10"``.
        """
        raise self._unsupported("json_typed_sql", "JSON key lookups")

    def json_value_sql(self, lhs: str, path: JSONPath) -> str:
        """Render the value at ``path`` as a JSON document (for ``values("data__key")``).

        The result reads back through the JSON column converter; NULL when missing.
        """
        raise self._unsupported("json_value_sql", "JSON key transforms in values()")

    def json_is_null_sql(self, lhs: str, path: JSONPath) -> str:
        """Render a condition: the value at ``path`` is JSON ``null`` (not missing)."""
        raise self._unsupported("json_is_null_sql", "JSON key lookups")

    def json_has_path_sql(self, lhs: str, path: JSONPath) -> str:
        """Render a condition: ``path`` exists in the document (its value may be null)."""
        raise self._unsupported("json_has_path_sql", "JSON key lookups")

    def json_equal_sql(self, lhs: str, path: JSONPath, rhs: str) -> str:
        """Render a condition: the value at ``path`` (``()``: the document) equals ``rhs``.

        ``rhs`` is a placeholder bound to ``get_adapter("json")`` of an object or array;
        objects compare regardless of key order.
        """
        raise self._unsupported("json_equal_sql", "JSON equality")

    def json_contains_sql(self, lhs: str, path: JSONPath, rhs: str, *, reverse: bool) -> str:
        """Render JSON containment of the value at ``path`` and the document ``rhs``.

        Args:
            lhs: SQL of the JSON column.
            path: The key path, ``()`` for the whole document.
            rhs: A placeholder bound to ``get_adapter("json")`` of the value.
            reverse: False: the stored value contains ``rhs`` (``contains``); True: it is
                contained by ``rhs`` (``contained_by``).

        Returns:
            The condition, with PostgreSQL's ``@>`` semantics on every backend.
        """
        raise self._unsupported("json_contains_sql", "JSON containment")

    # -- dates and times ------------------------------------------------------------------

    def datetime_extract_sql(self, part: str, lhs: str, internal_type: str) -> str:
        """Render the integer ``part`` of a date, time or datetime column.

        Args:
            part: One of :data:`DATE_PARTS` or :data:`TIME_PARTS`. ``week_day`` is
                1 (Sunday) to 7, ``iso_week_day`` 1 (Monday) to 7, ``week`` the ISO 8601
                week number, ``second`` whole seconds.
            lhs: SQL of the column.
            internal_type: ``"date"``, ``"time"`` or ``"datetime"`` (stored in UTC: parts
                are taken in UTC).
        """
        raise self._unsupported("datetime_extract_sql", "date and time extraction")

    def datetime_cast_sql(self, target: str, lhs: str) -> str:
        """Render the UTC date (``target="date"``) or time of day of a datetime column.

        The result compares with a bound value of a DateField/TimeField.
        """
        raise self._unsupported("datetime_cast_sql", "the __date and __time lookups")

    # -- regular expressions --------------------------------------------------------------

    def regex_sql(self, lhs: str, rhs: str, *, insensitive: bool) -> str:
        """Render a regular expression search of ``rhs`` (a pattern placeholder) in ``lhs``."""
        raise self._unsupported("regex_sql", "regular expression lookups")

    # -- arrays ---------------------------------------------------------------------------

    def array_lookup_sql(self, lookup: str, lhs: str, rhs: str) -> str:
        """Render an array lookup: ``contains``, ``contained_by`` or ``overlap``."""
        raise self._unsupported("array_lookup_sql", "ArrayField")

    def array_length_sql(self, lhs: str) -> str:
        """Render the number of elements of an array column (0 for an empty array)."""
        raise self._unsupported("array_length_sql", "ArrayField")

    def array_index_sql(self, lhs: str, index: int) -> str:
        """Render the element at 0-based ``index`` of an array column (NULL past the end)."""
        raise self._unsupported("array_index_sql", "ArrayField")
