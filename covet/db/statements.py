"""The get() statement cache: ``get(field=value)`` compiles its SELECT once per shape.

:meth:`QuerySet.get() <covet.db.queryset.QuerySet.get>` with plain keyword
values looks its statement up here by (the database's operations, the base
query's shape, the keywords), then binds the new values without building and
compiling the query again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from covet.db.compiler import compile_select
from covet.db.compiler.paths import CACHE_LIMIT
from covet.db.compiler.query import PLAIN_VALUE_TYPES
from covet.db.database import get_database
from covet.db.routing import db_for_read, routers
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.compiler import CompiledSelect, Query
    from covet.db.database import Database
    from covet.db.fields import Field
    from covet.db.queryset import QuerySet

__all__ = ("get_statement_key", "get_statements", "limited_for_get", "remember_get_statement")

T = TypeVar("T")

#: ``get(**kwargs)`` statements: the compiled SELECT and the compared fields (in keyword
#: order), by (the database's ops, the base query's shape, the sorted keywords).
get_statements: dict[tuple[Any, ...], tuple[CompiledSelect, tuple[Field[Any], ...]]] = {}


def limited_for_get(qs: QuerySet[T]) -> QuerySet[T]:
    """Make ``qs`` (a fresh clone) fetch at most two rows, unordered, as get() needs."""
    query = qs._query
    if not query.is_sliced:
        query.order_by = ()
        query.high = 2
    return qs


def get_statement_key(
    base: QuerySet[Any], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], Database] | None:
    """Return the key of ``base.get(**kwargs)``'s reusable statement, and the database.

    None unless the SQL is sure to be the same for any values: every
    value is of :data:`PLAIN_VALUE_TYPES` and the base query binds parameters only
    in its WHERE clause (no annotations, no HAVING), is not sliced or empty, and
    prefetches nothing. (Whether each keyword is a plain comparison is checked
    when the statement is remembered.)
    """
    query = base._query
    if (
        base._prefetch
        or query.annotations
        or query.having.children
        or query.empty
        or query.low
        or query.high is not None
    ):
        return None
    for value in kwargs.values():
        if type(value) not in PLAIN_VALUE_TYPES:
            return None
    try:
        using = base._using
        if using is None and routers:
            using = db_for_read(base.model)
        db = get_database(using)
    except ImproperlyConfigured:
        return None  # the general path reports it, after checking the filter
    keys = tuple(sorted(kwargs)) if len(kwargs) > 1 else tuple(kwargs)
    return (db.backend.ops, query.shape(), keys), db


def remember_get_statement(key: tuple[Any, ...], db: Database, base: Query, query: Query) -> None:
    """Keep the statement of ``query`` (``base`` filtered by ``key``'s keywords) for get()."""
    fields = base.comparison_fields(key[2])
    if fields is None:
        return
    backend = db.backend
    if len(get_statements) >= CACHE_LIMIT:
        get_statements.clear()
    get_statements[key] = (compile_select(query, backend.ops, backend.features), fields)
