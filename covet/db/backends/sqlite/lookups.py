"""SQLite spellings of JSON, date/time and regex lookups, and the functions they call.

SQLite keeps JSON as text and dates as ISO 8601 text (naive UTC for
DateTimeField). Key paths use the JSON1 functions; what JSON1 lacks
(containment, order-insensitive equality, ISO weeks, regular expressions) is a
deterministic Python function registered on every connection by
:func:`register_functions`.
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from covet import _json
from covet.db.backends.base.lookups import JSONPath, LookupOperations
from covet.db.exceptions import DataError

if TYPE_CHECKING:
    import aiosqlite

__all__ = ("SQLiteLookups", "json_contains", "json_equal", "register_functions")

_JSON_TYPES: Final = {
    "string": "= 'text'",
    "number": "IN ('integer', 'real')",
    "boolean": "IN ('true', 'false')",
}
_MISSING: Final = object()


class SQLiteLookups(LookupOperations):
    """JSON1, date/time and regex lookups for SQLite (ArrayField is not supported)."""

    def _path(self, path: JSONPath) -> str:
        return self.string_literal(self.json_path_text(path))

    def _path_json(self, path: JSONPath) -> str:
        return self.string_literal(_json.dumps(list(path)).decode())

    def json_typed_sql(self, lhs: str, path: JSONPath, kind: str) -> str:
        """Render ``json_extract()`` guarded by ``json_type()``."""
        p = self._path(path)
        guard = f"json_type({lhs}, {p}) {_JSON_TYPES[kind]}"
        return f"(CASE WHEN {guard} THEN json_extract({lhs}, {p}) END)"

    def json_value_sql(self, lhs: str, path: JSONPath) -> str:
        """Render the value at ``path`` as JSON text.

        json_extract() gives SQL values for scalars (a string loses its quotes, true
        becomes 1), so each JSON type is turned back into its JSON text.
        """
        p = self._path(path)
        return (
            f"(CASE json_type({lhs}, {p}) WHEN 'text' THEN json_quote(json_extract({lhs}, {p})) "
            "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' "
            f"ELSE CAST(json_extract({lhs}, {p}) AS TEXT) END)"
        )

    def json_is_null_sql(self, lhs: str, path: JSONPath) -> str:
        """Render: the value at ``path`` is JSON null."""
        return f"json_type({lhs}, {self._path(path)}) = 'null'"

    def json_has_path_sql(self, lhs: str, path: JSONPath) -> str:
        """Render: ``path`` exists (``json_type()`` is NULL only for a missing path)."""
        return f"json_type({lhs}, {self._path(path)}) IS NOT NULL"

    def json_equal_sql(self, lhs: str, path: JSONPath, rhs: str) -> str:
        """Render covet_json_equal(), which compares parsed values."""
        return f"covet_json_equal({lhs}, {self._path_json(path)}, {rhs})"

    def json_contains_sql(self, lhs: str, path: JSONPath, rhs: str, *, reverse: bool) -> str:
        """Render covet_json_contains() (PostgreSQL's ``@>`` rules)."""
        return f"covet_json_contains({lhs}, {self._path_json(path)}, {rhs}, {int(reverse)})"

    def datetime_extract_sql(self, part: str, lhs: str, internal_type: str) -> str:
        """Render covet_extract() over the stored ISO text."""
        return f"covet_extract('{part}', {lhs})"

    def datetime_cast_sql(self, target: str, lhs: str) -> str:
        """Cut the date or time out of the stored ``YYYY-MM-DD HH:MM:SS.ffffff`` text.

        Those are the texts DateField and TimeField store, so they compare as text.
        """
        return f"substr({lhs}, 1, 10)" if target == "date" else f"substr({lhs}, 12)"

    def prepare_lookup_value(self, lookup: str, value: Any) -> Any:
        """Check a regex pattern here: SQLite reports a function's error without its text.

        Raises:
            DataError: The pattern is not a valid Python regular expression (PostgreSQL
                and MariaDB raise the same class for theirs).
        """
        if lookup in ("regex", "iregex"):
            try:
                _compile(str(value))
            except re.error as exc:
                raise DataError(f"Invalid regular expression {value!r}: {exc}.") from None
            return value
        return super().prepare_lookup_value(lookup, value)  # type: ignore[misc]

    def regex_sql(self, lhs: str, rhs: str, *, insensitive: bool) -> str:
        """Render ``REGEXP`` (Python's re, via the registered regexp())."""
        return f"{lhs} REGEXP ('(?i)' || {rhs})" if insensitive else f"{lhs} REGEXP {rhs}"


# -- functions registered on each connection -------------------------------------------------


def _walk(doc: Any, path: list[Any]) -> Any:
    for step in path:
        if isinstance(step, int) and isinstance(doc, list):
            if step >= len(doc):
                return _MISSING
            doc = doc[step]
        elif isinstance(step, str) and isinstance(doc, dict):
            if step not in doc:
                return _MISSING
            doc = doc[step]
        else:
            return _MISSING
    return doc


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but true is not 1 (Python's == says it is).
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _contains(a: Any, b: Any, top: bool) -> bool:
    # PostgreSQL's jsonb @>: objects by key, arrays by "every element of b is contained
    # in some element of a", and, at the top level only, an array contains a scalar.
    if isinstance(a, dict):
        return isinstance(b, dict) and all(
            k in a and _contains(a[k], v, False) for k, v in b.items()
        )
    if isinstance(a, list):
        if isinstance(b, list):
            return all(any(_contains(x, y, False) for x in a) for y in b)
        if top and not isinstance(b, dict):
            return any(_same(x, b) for x in a)
        return False
    return _same(a, b)


def _load(text: Any) -> Any:
    if text is None:
        return _MISSING
    try:
        return _json.loads(text)
    except ValueError:
        return _MISSING


def json_equal(doc: Any, path: str, rhs: Any) -> int | None:
    """Return 1 if the value at ``path`` (a JSON list of steps) equals ``rhs``, else 0."""
    value = _walk(_load(doc), _json.loads(path)) if doc is not None else _MISSING
    if value is _MISSING:
        return None
    return int(_same(value, _json.loads(rhs)))


def json_contains(doc: Any, path: str, rhs: Any, reverse: int) -> int | None:
    """Return 1 if the value at ``path`` contains ``rhs`` (or, ``reverse``, the opposite)."""
    value = _walk(_load(doc), _json.loads(path)) if doc is not None else _MISSING
    if value is _MISSING:
        return None
    other = _json.loads(rhs)
    return int(_contains(other, value, True) if reverse else _contains(value, other, True))


def _parse(text: str) -> datetime.date | datetime.time:
    if len(text) > 10 and text[10] in " T":
        return datetime.datetime.fromisoformat(text)
    if ":" in text:
        return datetime.time.fromisoformat(text)
    return datetime.date.fromisoformat(text)


def extract(part: str, text: Any) -> int | None:
    """Return the integer ``part`` of stored ISO date/time text (None for NULL)."""
    if text is None:
        return None
    value = _parse(str(text))
    if isinstance(value, datetime.date):
        if part == "year":
            return value.year
        if part == "quarter":
            return (value.month + 2) // 3
        if part == "month":
            return value.month
        if part == "week":
            return value.isocalendar()[1]
        if part == "day":
            return value.day
        if part == "week_day":
            return value.isoweekday() % 7 + 1
        if part == "iso_week_day":
            return value.isoweekday()
    if isinstance(value, datetime.datetime | datetime.time):
        if part == "hour":
            return value.hour
        if part == "minute":
            return value.minute
        if part == "second":
            return value.second
    return None


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def regexp(pattern: Any, value: Any) -> int | None:
    """Return 1 if ``pattern`` (Python ``re``) matches somewhere in ``value``."""
    if pattern is None or value is None:
        return None
    return int(_compile(str(pattern)).search(str(value)) is not None)


async def register_functions(raw: aiosqlite.Connection) -> None:
    """Register regexp(), covet_json_equal(), covet_json_contains() and covet_extract()."""
    await raw.create_function("regexp", 2, regexp, deterministic=True)
    await raw.create_function("covet_json_equal", 3, json_equal, deterministic=True)
    await raw.create_function("covet_json_contains", 4, json_contains, deterministic=True)
    await raw.create_function("covet_extract", 2, extract, deterministic=True)
