"""PostgreSQL's array forms of bulk writes: one parameter per column, joined by unnest().

Each column travels either as an array (``$1::bigint[]``, encoded by asyncpg) or,
for a bulk INSERT whose values are all of a few plain types, as one JSON array
in a text parameter (``json_array_elements_text($1::text::json)``), encoded by
orjson. The JSON form exists for speed: asyncpg's array encoder tests every
element against ``collections.abc`` classes (six ``isinstance()`` calls through
Python's ``abc`` module per row of four columns), which made encoding 1,000
rows cost more client CPU than asyncpg's ``executemany()`` of the same rows;
orjson writes a column in one C call. The server turns each element's text into
the column's type with the same casts as the array form, so the rows stored are
the same.
"""

from __future__ import annotations

import datetime
import math
import uuid
from typing import TYPE_CHECKING, Any

from covet.db.backends.base.operations import utc_datetimes

try:
    import orjson
except ImportError:  # the ``fast`` extra is not installed: arrays only
    orjson = None  # type: ignore[assignment]

#: Whether the JSON form is available (orjson is importable).
HAVE_ORJSON: bool = orjson is not None

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ("array_insert_sql", "array_update_sql", "json_columns", "json_insert_sql")

_NONE = type(None)

#: The Python types each value kind may hold for the JSON form, where orjson writes the
#: text the server's input function reads back as the same value (and the array form
#: would send the same value in binary). ``json`` columns hold covet's JSON text by now.
#: Left out: Decimal and bytes (orjson cannot write them), time (its text drops a zero
#: microsecond the same way, but a tz-aware time is ambiguous), and whatever else a
#: custom field hands over; such a batch takes the array form.
_JSON_KINDS: dict[str, frozenset[type]] = {
    "int": frozenset({int, _NONE}),
    "str": frozenset({str, _NONE}),
    "json": frozenset({str, _NONE}),
    "bool": frozenset({bool, _NONE}),
    "float": frozenset({float, int, _NONE}),
    "date": frozenset({datetime.date, _NONE}),
    "datetime": frozenset({datetime.datetime, _NONE}),
    "uuid": frozenset({uuid.UUID, _NONE}),
}


def array_insert_sql(
    table_sql: str,
    columns_sql: Sequence[str],
    internal_types: Sequence[str],
    array_types: Mapping[str, str],
    casts: Mapping[str, str],
) -> str | None:
    """Render ``INSERT INTO t (a, b) SELECT * FROM unnest($1::bigint[], $2::text[])``.

    One statement of one parameter per column, whatever the row count: asyncpg
    encodes each array in one go, the statement stays prepared (it is short),
    and the server plans it once instead of parsing thousands of placeholders.
    ``unnest()`` yields the rows in array order, and ``RETURNING`` reports them
    in the order inserted, as for a multi-row ``VALUES``. None when a column's
    kind has no array form.
    """
    types = [array_types.get(t) for t in internal_types]
    if not columns_sql or any(t is None for t in types):
        return None
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    columns = ", ".join(columns_sql)
    if not any(t in casts for t in internal_types):
        return f"INSERT INTO {table_sql} ({columns}) SELECT * FROM unnest({arrays})"
    names = [f"c{i}" for i in range(1, len(types) + 1)]
    picks = ", ".join(
        f"{n}::{casts[t]}" if t in casts else n for n, t in zip(names, internal_types, strict=True)
    )
    return (
        f"INSERT INTO {table_sql} ({columns}) SELECT {picks} "
        f"FROM unnest({arrays}) AS u({', '.join(names)})"
    )


def json_insert_sql(
    table_sql: str,
    columns_sql: Sequence[str],
    internal_types: Sequence[str],
    array_types: Mapping[str, str],
    casts: Mapping[str, str],
) -> str | None:
    """Render ``INSERT INTO t (a, b) SELECT c1::bigint, c2::text FROM ROWS FROM (...)``.

    ``ROWS FROM (json_array_elements_text($1::text::json), ...)`` zips the
    columns' JSON arrays into rows in array order, as ``unnest()`` does for the
    array form; each element's text is cast to the array form's element type
    (then to jsonb for JSON columns), so range, length and format checks are
    the server's, as for ``INSERT ... VALUES``. None when orjson is not
    installed or a column's kind has no JSON form.
    """
    if not HAVE_ORJSON or not columns_sql or any(t not in _JSON_KINDS for t in internal_types):
        return None
    names = [f"c{i}" for i in range(1, len(internal_types) + 1)]
    picks = ", ".join(
        f"{n}::{array_types[t]}" + (f"::{casts[t]}" if t in casts else "")
        for n, t in zip(names, internal_types, strict=True)
    )
    sources = ", ".join(
        f"json_array_elements_text(${i}::text::json)" for i in range(1, len(names) + 1)
    )
    columns = ", ".join(columns_sql)
    return (
        f"INSERT INTO {table_sql} ({columns}) SELECT {picks} "
        f"FROM ROWS FROM ({sources}) AS u({', '.join(names)})"
    )


def json_columns(columns: Sequence[list[Any]], internal_types: Sequence[str]) -> list[str] | None:
    """Write each column as a JSON array for :func:`json_insert_sql`, or None.

    None (the caller sends arrays) unless every value is of its kind's plain
    types (:data:`_JSON_KINDS`), every float is finite (orjson writes NaN as
    null), every datetime is UTC by identity (what ``full_clean()`` leaves; its
    text then carries ``+00:00``), and orjson accepts every value (it refuses
    integers beyond 64 bits and lone surrogates, which the array form reports
    in its own words). Each test is a C loop over the column.
    """
    if not HAVE_ORJSON:
        return None
    out: list[str] = []
    dumps = orjson.dumps
    for column, kind in zip(columns, internal_types, strict=True):
        kinds = set(map(type, column))
        if not kinds <= _JSON_KINDS[kind]:
            return None
        if kind == "datetime" or (kind == "float" and float in kinds):
            values = [v for v in column if v is not None] if _NONE in kinds else column
            if kind == "float" and not all(map(math.isfinite, values)):
                return None
            if kind == "datetime" and values and not utc_datetimes(values):
                return None
        try:
            out.append(dumps(column).decode())
        except orjson.JSONEncodeError:
            return None
    return out


def array_update_sql(
    table_sql: str,
    pk_sql: str,
    columns_sql: Sequence[str],
    internal_types: Sequence[str],
    array_types: Mapping[str, str],
    casts: Mapping[str, str],
) -> str | None:
    """Render ``UPDATE t SET a = v.c1 FROM unnest($1::bigint[], $2::text[]) AS v(k, c1)``.

    ``$1`` holds the keys (``internal_types[0]`` is the key's type), then one array
    per column of ``columns_sql``; ``array_types`` gives each value kind's element
    type and ``casts`` the cast from it to the column (text to jsonb). The server
    joins on the key with a hash join, so the cost grows with the rows, not with
    rows times rows as a ``CASE`` of every key would. None when a type has no
    array form.
    """
    types = [array_types.get(t) for t in internal_types]
    if any(t is None for t in types):
        return None
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    names = ", ".join(f"c{i}" for i in range(1, len(types)))
    sets = ", ".join(
        f"{column} = v.c{i}" + (f"::{casts[t]}" if t in casts else "")
        for i, (column, t) in enumerate(zip(columns_sql, internal_types[1:], strict=True), 1)
    )
    return (
        f"UPDATE {table_sql} SET {sets} FROM unnest({arrays}) AS v(k, {names}) "
        f"WHERE {table_sql}.{pk_sql} = v.k"
    )
