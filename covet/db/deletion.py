"""Deleting rows: Model.delete(), QuerySet.delete(), the PROTECT check and delete signals.

``Model.delete()`` and ``QuerySet.delete()`` reach these through lazy imports
(this module imports the queryset, which imports models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.db.compiler import compile_delete
from covet.db.database import get_database
from covet.db.exceptions import DatabaseError, ProtectedError
from covet.db.execution import batches, run_execute
from covet.db.fields import CASCADE, PROTECT, ForeignKey
from covet.db.queryset import QuerySet
from covet.db.routing import db_for_write, routers
from covet.db.signals import post_delete, pre_delete
from covet.db.updates import primary_keys

if TYPE_CHECKING:
    from covet.db.models import Model

__all__ = ("check_protected", "delete_instance", "delete_rows", "delete_with_signals")


async def check_protected(
    model: type[Model],
    pk_values: QuerySet[Any],
    using: str | None,
    seen: frozenset[Any] = frozenset(),
) -> None:
    """Raise ProtectedError if a PROTECT key references rows (following CASCADE chains)."""
    for rel in model._meta.reverse.values():
        fk = rel.field
        if rel.many_to_many or not isinstance(fk, ForeignKey) or fk in seen:
            continue
        children: QuerySet[Any] = QuerySet(fk.model, using=using).filter(
            **{f"{fk.name}__in": pk_values}
        )
        if fk.on_delete == PROTECT:
            if await children.exists():
                raise ProtectedError(
                    f"Cannot delete {model.__name__} rows: {fk.model.__name__}.{fk.name} "
                    "references them with on_delete=PROTECT. Delete or reassign those "
                    f"{fk.model.__name__} rows first."
                )
        elif fk.on_delete == CASCADE and any(
            not r.many_to_many for r in fk.model._meta.reverse.values()
        ):
            child_pks: QuerySet[Any] = children.values_list("pk", flat=True)
            await check_protected(fk.model, child_pks, using, seen | {fk})


async def delete_instance(obj: Model, *, using: str | None) -> int:
    """Delete ``obj``'s row (the implementation of :meth:`Model.delete`)."""
    pk = obj.pk
    if pk is None:
        raise DatabaseError(
            f"Cannot delete an unsaved {type(obj).__name__} (its primary key is None)."
        )
    alias = using if using is not None else obj._state.db
    if alias is None and routers:
        alias = db_for_write(type(obj), instance=obj)
    if pre_delete.receivers_connected or post_delete.receivers_connected:
        db_alias = get_database(alias).alias
        await pre_delete.send(type(obj), instance=obj, using=db_alias)
        count = await delete_rows(QuerySet(type(obj), using=alias).filter(pk=pk))
        await post_delete.send(type(obj), instance=obj, using=db_alias)
    else:
        count = await delete_rows(QuerySet(type(obj), using=alias).filter(pk=pk))
    obj.pk = None
    obj._state.adding = True
    return count


async def delete_rows(qs: QuerySet[Any]) -> int:
    """Delete the rows of ``qs`` without loading them (``QuerySet.delete()``, no signals)."""
    query = qs.query
    if query.is_sliced:
        raise TypeError("Cannot delete a sliced queryset. Filter by primary key instead.")
    if query.empty:
        return 0
    pk_values: QuerySet[Any] = qs.values_list("pk", flat=True)
    pk_values.query.order_by = ()
    db = qs._db()
    await check_protected(qs.model, pk_values, db.alias)
    base = query.clone()
    base.order_by = ()
    sql, params, joined = compile_delete(base, db.ops, db.features)
    if not joined:
        return await run_execute(db, sql, params)
    total = 0
    for batch in batches(await primary_keys(qs, db.alias), db.features.max_query_params):
        total += await delete_rows(QuerySet(qs.model, using=db.alias).filter(pk__in=batch))
    return total


async def delete_with_signals(qs: QuerySet[Any]) -> int:
    """``QuerySet.delete()`` while delete receivers are connected: per-object signals.

    Loads the matching objects, sends ``pre_delete`` for each, deletes them in
    one statement and sends ``post_delete`` for each, all in one transaction
    (a receiver's exception rolls the delete back). Rows that the database
    deletes by ``ON DELETE CASCADE`` send no signals.
    """
    from covet.db.transactions import transaction

    model = qs.model
    if not (pre_delete.has_listeners(model) or post_delete.has_listeners(model)):
        return await delete_rows(qs)
    if qs.query.is_sliced:
        raise TypeError("Cannot delete a sliced queryset. Filter by primary key instead.")
    alias = qs._db().alias
    async with transaction(alias):
        # By key, so a values()/annotate() queryset still yields model instances.
        matching: QuerySet[Any] = qs.values_list("pk", flat=True)
        matching.query.order_by = ()
        objs: list[Any] = await QuerySet(model, using=alias).filter(pk__in=matching)
        for obj in objs:
            await pre_delete.send(model, instance=obj, using=alias)
        count = 0
        limit = get_database(alias).features.max_query_params
        for batch in batches([o.pk for o in objs], limit):
            count += await delete_rows(QuerySet(model, using=alias).filter(pk__in=batch))
        for obj in objs:
            await post_delete.send(model, instance=obj, using=alias)
    for obj in objs:
        obj._state.adding = True
    return count
