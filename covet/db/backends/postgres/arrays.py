"""PostgreSQL's array form of bulk writes: one array parameter per column, joined by unnest()."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ("array_update_sql",)


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
