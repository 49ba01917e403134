"""``QuerySet.update()`` past its remembered statements: one UPDATE, or one per batch of keys.

:meth:`QuerySet.update() <covet.db.queryset.QuerySet.update>` answers a
remembered ``filter(...).update(...)`` itself and reaches this module
through a lazy import otherwise (this module imports the queryset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.db.compiler import Param, check_identifier, compile_update
from covet.db.exceptions import FieldError
from covet.db.execution import batches, run_execute
from covet.db.expressions import Expression
from covet.db.queryset import QuerySet
from covet.db.statements import remember_update

if TYPE_CHECKING:
    from covet.db.compiler import Node
    from covet.db.database import Database
    from covet.db.fields import Field

__all__ = ("primary_keys", "update_rows")


async def update_rows(
    queryset: QuerySet[Any], db: Database, kwargs: dict[str, Any], key: tuple[Any, ...] | None
) -> int:
    """Run ``queryset.update(**kwargs)`` on ``db``; remember its UPDATE under ``key`` if given.

    A filter that joins other tables cannot be written as one UPDATE on every
    backend: the matching primary keys are read first, then updated in batches
    that fit the database's parameter limit.

    Returns:
        The number of rows matched.

    Raises:
        TypeError: The queryset is sliced.
        FieldError: An unknown or non-concrete field, or a join in an expression.
        ValidationError: A value that does not fit its field.
    """
    query = queryset.query
    if query.is_sliced:
        raise TypeError("Cannot update a sliced queryset. Filter by primary key instead.")
    if query.empty:
        return 0
    meta = queryset.model._meta
    values: list[tuple[Field[Any], Node]] = []
    for name, value in kwargs.items():
        field = meta.get_field(check_identifier(name, "field name"))
        if not field.concrete:
            raise FieldError(f"update() cannot set the many-to-many field {name!r}.")
        if isinstance(value, Expression):
            if value.contains_aggregate:
                raise FieldError(f"update({name}=...) cannot use an aggregate ({value!r}).")
            node = value.resolve(query, allow_joins=False)
        else:
            node = Param(field.clean(value), field)
        values.append((field, node))
    sql, params, joined = compile_update(query, values, db.ops, db.features)
    if not joined:
        if key is not None:
            remember_update(key, sql, [field for field, _ in values])
        return await run_execute(db, sql, params)
    pks = await primary_keys(queryset, db.alias)
    total = 0
    for batch in batches(pks, max(1, db.features.max_query_params - len(params))):
        batch_qs: QuerySet[Any] = QuerySet(queryset.model, using=queryset._using)
        total += await batch_qs.filter(pk__in=batch).update(**kwargs)
    return total


async def primary_keys(queryset: QuerySet[Any], alias: str) -> list[Any]:
    """Return the primary keys of the rows ``queryset`` matches, read from ``alias``, unordered."""
    pk_qs: QuerySet[Any] = queryset.values_list("pk", flat=True)
    pk_qs._using = alias
    pk_qs.query.order_by = ()
    return await pk_qs
