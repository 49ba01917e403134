"""Statement caches: ``get(field=value)`` and ``filter(field=value)`` compile once per shape.

:meth:`QuerySet.get() <covet.db.queryset.QuerySet.get>` and
:meth:`QuerySet.filter() <covet.db.queryset.QuerySet.filter>` with plain keyword
values look their statement up here by (the database's operations, the base
query's shape, the keywords), then bind the new values without building and
compiling the query again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from covet.db.compiler import compile_select
from covet.db.compiler.paths import CACHE_LIMIT
from covet.db.compiler.query import PLAIN_VALUE_TYPES
from covet.db.database import get_database
from covet.db.fields import Field, ForeignKey, IntegerField
from covet.db.routing import db_for_read, routers
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.compiler import CompiledSelect, Query
    from covet.db.database import Database
    from covet.db.queryset import QuerySet

__all__ = (
    "bind_statement",
    "filter_statements",
    "get_statement_key",
    "get_statements",
    "limited_for_get",
    "remember_statement",
)

T = TypeVar("T")

#: A remembered statement: the compiled SELECT, the compared fields (in keyword order),
#: and for each field whether it binds any ``int`` as it is (see _binds_ints_as_is()).
Statement = tuple["CompiledSelect", tuple["Field[Any]", ...], tuple[bool, ...]]

#: ``get(**kwargs)`` statements by (the database's ops, the base query's shape, the sorted
#: keywords).
get_statements: dict[tuple[Any, ...], Statement] = {}
#: ``filter(**kwargs)`` statements, by the same keys: the base query filtered by the
#: keywords, as awaiting the queryset runs it (no LIMIT, the base's own ordering).
filter_statements: dict[tuple[Any, ...], Statement] = {}


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
    """Return the key of ``base.get(**kwargs)``'s (or ``filter()``'s) statement, and the database.

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


def bind_statement(
    statement: Statement,
    key: tuple[Any, ...],
    base: QuerySet[Any],
    kwargs: dict[str, Any],
) -> list[Any]:
    """Return the parameters of a remembered statement for ``base`` and these keyword values.

    Raises:
        ValidationError: A value does not fit its field (the error filter() raises).
    """
    ops, fields, ints_as_is = key[0], statement[1], statement[2]
    params: list[Any] = []
    where = base._query.where
    if where.children:
        where.collect(ops, params)  # a custom manager's own filters
    for field, name, as_is in zip(fields, key[2], ints_as_is, strict=True):
        value = kwargs[name]
        if as_is and type(value) is int:
            params.append(value)  # what get_db_prep_value() would return, without its calls
        else:
            # get_db_prep_value() runs get_prep_value() (the check filter() makes) itself.
            params.append(field.get_db_prep_value(value, ops))
    return params


def _binds_ints_as_is(field: Field[Any], ops: Any) -> bool:
    """Tell whether ``field.get_db_prep_value(v, ops)`` is ``v`` itself for every ``int`` ``v``.

    True for the integer fields (and keys to them) that keep the base
    ``get_prep_value()``/``get_db_prep_value()`` and ``to_python()``, where the
    database has no adapter for their type: the primary key and foreign key
    lookups of ``get(pk=...)`` and ``filter(author_id=...)``.
    """
    cls = type(field)
    if not (
        cls.get_prep_value is Field.get_prep_value
        and cls.get_db_prep_value is Field.get_db_prep_value
    ):
        return False
    target = field
    if isinstance(field, ForeignKey):
        if cls.to_python is not ForeignKey.to_python:
            return False
        target = field.target_field
    return (
        type(target).to_python is IntegerField.to_python
        and ops.get_adapter(field.internal_type) is None
    )


def remember_statement(
    cache: dict[tuple[Any, ...], Statement],
    key: tuple[Any, ...],
    db: Database,
    base: Query,
    query: Query,
) -> None:
    """Keep in ``cache`` the statement of ``query`` (``base`` filtered by ``key``'s keywords).

    Nothing is kept unless every keyword is a plain comparison (see
    ``Query.comparison_fields()``): only then is the SQL the same for any values.
    """
    fields = base.comparison_fields(key[2])
    if fields is None:
        return
    backend = db.backend
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    ops = backend.ops
    ints_as_is = tuple(_binds_ints_as_is(f, ops) for f in fields)
    cache[key] = (compile_select(query, ops, backend.features), fields, ints_as_is)
