"""Render INSERT, UPDATE and DELETE statements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from covet.db.compiler.numeric import truncates_into
from covet.db.compiler.select import SQLCompiler

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.db.compiler.nodes import Node
    from covet.db.compiler.query import Query
    from covet.db.fields import Field
    from covet.db.models import Model

__all__ = ("compile_array_insert", "compile_delete", "compile_insert", "compile_update")


# INSERT statements by (ops, model, columns, row count, returning): a bulk_create() of
# 1,000 rows renders thousands of placeholders, the same ones every time.
_INSERT_CACHE_LIMIT: Final = 256
_insert_cache: dict[tuple[Any, ...], str] = {}


def compile_insert(
    model: type[Model],
    fields: Sequence[Field[Any]],
    rows: Sequence[object],
    ops: Any,
    *,
    returning: bool,
    conflict: str = "",
) -> str:
    """Render a (multi-row) INSERT of one row per item of ``rows`` (only counted here).

    ``rows`` may hold the rows' values or the objects they come from; ``conflict``
    is an ``ON CONFLICT``/``ON DUPLICATE KEY`` clause from the dialect's operations.
    """
    key = (ops, model, tuple(f.column for f in fields), len(rows), returning, conflict)
    sql = _insert_cache.get(key)
    if sql is None:
        sql = _render_insert(model, fields, len(rows), ops, returning, conflict)
        if len(_insert_cache) >= _INSERT_CACHE_LIMIT:
            _insert_cache.clear()
        _insert_cache[key] = sql
    return sql


def compile_array_insert(
    model: type[Model],
    fields: Sequence[Field[Any]],
    ops: Any,
    *,
    returning: bool,
    conflict: str = "",
    form: str = "arrays",
) -> str | None:
    """Render the array INSERT of ``fields`` (one array parameter per column), or None.

    ``form="json"`` renders the variant taking each column as a JSON array
    (``ops.json_insert_sql()``). None when the dialect has no such form for one
    of the fields' types (see ``ops.array_insert_sql()``); the caller then uses
    :func:`compile_insert` (or, for JSON, the array form).
    """
    key = (ops, model, tuple(f.column for f in fields), form, returning, conflict)
    if key in _insert_cache:
        return _insert_cache[key] or None
    q = ops.quote_name
    render = ops.json_insert_sql if form == "json" else ops.array_insert_sql
    sql: str | None = render(
        q(model._meta.table), [q(f.column) for f in fields], [f.internal_type for f in fields]
    )
    if sql is not None and conflict:
        sql += f" {conflict}"
    if sql is not None and returning:
        sql += f" {ops.returning([model._meta.pk.column])}"
    if len(_insert_cache) >= _INSERT_CACHE_LIMIT:
        _insert_cache.clear()
    _insert_cache[key] = sql or ""
    return sql


def _render_insert(
    model: type[Model],
    fields: Sequence[Field[Any]],
    n_rows: int,
    ops: Any,
    returning: bool,
    conflict: str,
) -> str:
    q = ops.quote_name
    table = q(model._meta.table)
    counter = 0
    if not fields:
        sql = str(ops.insert_default_values(table))
    else:
        groups = []
        for _ in range(n_rows):
            phs = []
            for _f in fields:
                counter += 1
                phs.append(str(ops.placeholder(counter)))
            groups.append(f"({', '.join(phs)})")
        cols = ", ".join(q(f.column) for f in fields)
        sql = f"INSERT INTO {table} ({cols}) VALUES {', '.join(groups)}"
    if conflict:
        sql += f" {conflict}"
    if returning:
        sql += f" {ops.returning([model._meta.pk.column])}"
    return sql


def compile_update(
    query: Query, values: Sequence[tuple[Field[Any], Node]], ops: Any, features: Any
) -> tuple[str, list[Any], bool]:
    """Render ``UPDATE table SET ... WHERE ...``.

    Returns:
        The SQL, its parameters, and whether the WHERE needed joins (then the
        caller must select the primary keys first and update by key).
    """
    c = SQLCompiler(query, ops, features)
    sets = []
    for field, node in values:
        value = node.as_sql(c)
        if truncates_into(field, node.output_field):
            value = ops.truncate_to_integer_sql.format(value)  # the same on every backend
        sets.append(f"{c.quote(field.column)} = {value}")
    where = c.where_sql(query.where)
    sql = f"UPDATE {c.base} SET {', '.join(sets)}" + (f" WHERE {where}" if where else "")
    return sql, c.params, bool(c.join_sql)


def compile_delete(query: Query, ops: Any, features: Any) -> tuple[str, list[Any], bool]:
    """Render ``DELETE FROM table WHERE ...`` (see :func:`compile_update` for the flag)."""
    c = SQLCompiler(query, ops, features)
    where = c.where_sql(query.where)
    sql = f"DELETE FROM {c.base}" + (f" WHERE {where}" if where else "")
    return sql, c.params, bool(c.join_sql)
