"""Writing rows: Model.save()/refresh_from_db() and the bulk INSERT/UPDATE.

``Model`` reaches :func:`save_instance` and :func:`refresh_instance` through lazy
imports (this module imports the queryset, which imports models);
``QuerySet.bulk_create()``/``bulk_update()`` live here too, their column-at-a-time
validation, parameters and keys in :mod:`covet.db.bulkwork`. Deleting is in
:mod:`covet.db.deletion`.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from covet.db.bulkwork import (
    _ARRAY_BATCH_ROWS,
    _CASE_BATCH_ROWS,
    _COUNT_BACK_MIN_ROWS,
    _bulk_full_clean,
    _cacheable_batch_size,
    _even_batch_size,
    _insert_params_builder,
    _instance_dict,
    _keys_count_back,
    _packet_batches,
    _related_cache,
    _returned_keys,
    _set_keys,
    _state_of,
    cleaned_row,
)
from covet.db.compiler import check_identifier, compile_insert
from covet.db.compiler.write import compile_array_insert
from covet.db.database import get_database
from covet.db.exceptions import DatabaseError, FieldError, ValidationError
from covet.db.execution import batches, run_execute, run_fetch_all, run_insert
from covet.db.fields import (
    Field,
    ForeignKey,
)
from covet.db.models import Model
from covet.db.queryset import QuerySet
from covet.db.routing import db_for_write, routers
from covet.db.signals import post_save, pre_save
from covet.db.upserts import check_conflicting_objects

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from covet.db.upserts import ConflictPlan

__all__ = (
    "bulk_insert",
    "bulk_write",
    "refresh_instance",
    "save_instance",
    "sync_fk_ids",
    "validate_unique_instance",
)


def sync_fk_ids(obj: Model, fks: Sequence[Field[Any]] | None = None) -> None:
    """Copy the keys of assigned related objects into empty ``<fk>_id`` values.

    ``fks`` is the model's ForeignKey fields when the caller has them at hand
    (``bulk_create()`` works them out once per call).
    """
    cache = obj._state.cache
    if fks is None:
        fks = [f for f in obj._meta.concrete_fields if isinstance(f, ForeignKey)]
    for field in fks:
        if obj.__dict__.get(field.attname) is None:
            related = cache.get(field.name)
            if related is not None and related.pk is not None:
                obj.__dict__[field.attname] = related.pk


def _clean_leaves_canonical(model: type[Model]) -> bool:
    """Tell whether ``full_clean()`` leaves every value canonical, ready to bind as it is.

    Not when the model overrides ``full_clean()`` or ``clean()``: its own code may
    assign values after the fields were cleaned (``self.count = "7"``), which
    ``get_db_prep_value()`` must still convert.
    """
    return model.full_clean is Model.full_clean and model.clean is Model.clean


async def save_instance(
    obj: Model,
    *,
    using: str | None,
    update_fields: Sequence[str] | None,
    force_insert: bool,
    validate: bool,
) -> None:
    """Insert or update ``obj`` (the implementation of :meth:`Model.save`)."""
    alias = using if using is not None else obj._state.db
    if alias is None and routers:
        alias = db_for_write(type(obj), instance=obj)
    db = get_database(alias)
    ops, features = db.ops, db.features
    meta = obj._meta
    if pre_save.receivers_connected:
        await pre_save.send(type(obj), instance=obj, using=db.alias, update_fields=update_fields)
    sync_fk_ids(obj)
    if update_fields is not None:
        names = {meta.get_field(check_identifier(n, "field name")).name for n in update_fields}
        fields = [f for f in meta.concrete_fields if f.name in names and not f.primary_key]
        if validate:
            obj.full_clean(exclude=[f.name for f in meta.concrete_fields if f.name not in names])
    else:
        fields = meta.concrete_fields
        if validate:
            obj.full_clean()
    pk = obj.pk
    adding = obj._state.adding
    if pk is not None and not force_insert and (not adding or update_fields is not None):
        targets = [f for f in fields if not f.primary_key]
        if targets:
            q = ops.quote_name
            values = [f.get_db_prep_value(f.pre_save(obj, False), ops) for f in targets]
            sets = ", ".join(
                f"{q(f.column)} = {ops.placeholder(i)}" for i, f in enumerate(targets, 1)
            )
            sql = (
                f"UPDATE {q(meta.table)} SET {sets} WHERE {q(meta.pk.column)} = "  # noqa: S608 - identifiers are quoted, values are bound
                f"{ops.placeholder(len(targets) + 1)}"
            )
            count = await run_execute(db, sql, [*values, meta.pk.get_db_prep_value(pk, ops)])
        else:
            count = 0
        if count or await QuerySet(type(obj), using=db.alias).filter(pk=pk).exists():
            obj._state.adding = False
            obj._state.db = alias
            if post_save.receivers_connected:
                await post_save.send(
                    type(obj), instance=obj, created=False, using=db.alias,
                    update_fields=update_fields,
                )  # fmt: skip
            return
        if update_fields is not None:
            raise DatabaseError(
                f"save(update_fields=...) found no {type(obj).__name__} row with pk={pk!r}. "
                "Save without update_fields to insert it."
            )
    if validate and update_fields is None and _clean_leaves_canonical(type(obj)):
        insert_fields, values = cleaned_row(obj, ops)  # full_clean() checked every field
    else:
        insert_fields = [f for f in meta.concrete_fields if not (f.auto_created and obj.pk is None)]
        values = [f.get_db_prep_value(f.pre_save(obj, True), ops) for f in insert_fields]
    returning = meta.pk.auto_created and obj.pk is None
    use_returning = returning and features.supports_returning
    sql = compile_insert(type(obj), insert_fields, [values], ops, returning=use_returning)
    new_pk = await run_insert(db, sql, values, use_returning)
    if returning:
        conv = meta.pk.from_db_converter(ops)
        obj.pk = conv(new_pk) if conv is not None and new_pk is not None else new_pk
    obj._state.adding = False
    obj._state.db = alias
    if post_save.receivers_connected:
        await post_save.send(
            type(obj), instance=obj, created=True, using=db.alias, update_fields=update_fields
        )


async def validate_unique_instance(obj: Model, *, exclude: set[str], using: str | None) -> None:
    """Query for rows that share ``obj``'s unique values (``Model.validate_unique()``)."""
    meta = obj._meta
    alias = using if using is not None else obj._state.db
    checks: list[tuple[str, tuple[Field[Any], ...]]] = [
        (f.name, (f,)) for f in meta.concrete_fields if f.unique and f.name not in exclude
    ]
    for names in meta.unique_together:
        if not exclude.intersection(names):
            checks.append(("__all__", tuple(meta.get_field(n) for n in names)))
    errors: dict[str, list[str]] = {}
    for key, group in checks:
        values = {f.attname: obj.__dict__.get(f.attname) for f in group}
        if any(v is None for v in values.values()):
            continue  # NULLs never collide (and an unsaved auto key is None)
        qs: QuerySet[Any] = QuerySet(type(obj), using=alias).filter(**values)
        if obj.pk is not None and not obj._state.adding:
            qs = qs.exclude(pk=obj.pk)
        if await qs.exists():
            label = " and ".join(f.name for f in group)
            errors.setdefault(key, []).append(
                f"{type(obj).__name__} with this {label} already exists."
            )
    if errors:
        raise ValidationError(errors)


async def refresh_instance(obj: Model, *, fields: Sequence[str] | None, using: str | None) -> None:
    """Reload ``obj``'s values (the implementation of :meth:`Model.refresh_from_db`)."""
    alias = using if using is not None else obj._state.db
    qs: QuerySet[Any] = QuerySet(type(obj), using=alias)
    if fields is not None:
        qs = qs.only(*fields)
    fresh = await qs.get(pk=obj.pk)
    meta = obj._meta
    for field in meta.concrete_fields:
        if field.attname in fresh.__dict__:
            obj.__dict__[field.attname] = fresh.__dict__[field.attname]
            if isinstance(field, ForeignKey):
                obj._state.cache.pop(field.name, None)
    obj._state.db = alias
    obj._state.adding = False


async def bulk_insert(
    model: type[Model],
    objs: Iterable[Any],
    *,
    using: str | None,
    batch_size: int | None,
    conflicts: ConflictPlan | None = None,
) -> list[Any]:
    """INSERT many objects in multi-row statements (the implementation of ``bulk_create()``).

    With ``conflicts`` the INSERT skips or overwrites the rows that hit the unique
    constraint (see :mod:`covet.db.upserts`). Keys are then read from RETURNING
    only when overwriting (every row reports its key, inserted or updated): a
    skipped row reports none, so skipping sets no keys on any backend.
    """
    from covet.db.transactions import transaction

    if batch_size is not None and (type(batch_size) is not int or batch_size < 1):
        raise ValueError(f"bulk_create(batch_size={batch_size!r}) takes a positive int or None.")
    items = list(objs)
    if not items:
        return items
    meta = model._meta
    if using is None and routers:
        using = db_for_write(model)
    db = get_database(using)
    ops, features = db.ops, db.features
    fks = [f for f in meta.concrete_fields if isinstance(f, ForeignKey)]
    # Model.full_clean() cleans every value in place, so the fast row builder may skip a
    # second to_python(); a model with its own full_clean() promises no such thing.
    cleaned = _clean_leaves_canonical(model)
    if set(map(type, items)) != {model}:  # the usual case, told in one C loop
        for obj in items:
            if not isinstance(obj, model):
                raise TypeError(f"bulk_create() got {obj!r}, not a {model.__name__}.")
    # Only an object given a related instance (author=...) has a key to copy.
    if fks and any(map(_related_cache, items)):
        for obj in items:
            if obj._state.cache:
                sync_fk_ids(obj, fks)
    if cleaned:
        _bulk_full_clean(model, items)
    else:
        for obj in items:
            obj.full_clean()
    conflict = ""
    if conflicts is not None:
        check_conflicting_objects(model, conflicts, items, features)
        conflict = conflicts.clause(model, ops)
    pk_attname = meta.pk.attname
    keys = list(map(operator.methodcaller("get", pk_attname), map(_instance_dict, items)))
    if keys.count(None) == len(keys):
        with_pk, without_pk = [], items
    else:
        with_pk = [o for o, k in zip(items, keys, strict=True) if k is not None]
        without_pk = [o for o, k in zip(items, keys, strict=True) if k is None]
    async with transaction(using):
        for group, include_pk in ((with_pk, True), (without_pk, False)):
            if not group:
                continue
            fields = [f for f in meta.concrete_fields if include_pk or not f.primary_key]
            # The keys of the new rows: counted from the first (MySQL/MariaDB, consecutive
            # auto-increment), else read from RETURNING where the database has it.
            # (Never counted past a conflict clause: a skipped or updated row takes no new key.)
            counted = not include_pk and meta.pk.auto_created and conflicts is None
            step = features.bulk_insert_id_step if counted else None
            # SQLite: counted back from each statement's last key, when nothing can take a
            # key between its rows (checked here, in the transaction that holds the lock).
            from_last = (
                counted
                and step is None
                and features.bulk_insert_counts_keys_back
                and len(group) >= _COUNT_BACK_MIN_ROWS
                and await _keys_count_back(db, model, len(group))
            )
            if from_last:
                step = 1
            if conflicts is not None:
                # An updated row reports its key, which may differ from the object's own.
                returning = conflicts.update and features.can_return_rows_from_bulk_insert
            else:
                returning = (
                    not include_pk and step is None and features.can_return_rows_from_bulk_insert
                )
            build = _insert_params_builder(fields, ops, cleaned=cleaned)
            conv = meta.pk.from_db_converter(ops) if returning else None
            array_sql = (
                compile_array_insert(model, fields, ops, returning=returning, conflict=conflict)
                if features.can_bulk_insert_arrays
                else None
            )
            if array_sql is not None:
                # One array per column: no parameter limit, one short prepared statement.
                # Where every value is plain, the columns travel as JSON (cheaper to encode).
                kinds = [f.internal_type for f in fields]
                json_sql = compile_array_insert(
                    model, fields, ops, returning=returning, conflict=conflict, form="json"
                )
                adapters = [ops.get_array_adapter(kind) for kind in kinds]
                for batch in batches(group, batch_size or _ARRAY_BATCH_ROWS):
                    columns = build(batch)
                    for i, adapt in enumerate(adapters):
                        if adapt is not None:
                            columns[i] = [None if v is None else adapt(v) for v in columns[i]]
                    sql: str = array_sql
                    params: Sequence[Any] = columns
                    if json_sql is not None:
                        encoded = ops.json_columns(columns, kinds)
                        if encoded is not None:
                            sql, params = json_sql, encoded
                    if returning:
                        result = await run_fetch_all(db, sql, params)
                        _set_keys(batch, pk_attname, _returned_keys(result, conv))
                    else:
                        await run_execute(db, sql, params)
                continue
            size = batch_size or ops.bulk_batch_size(len(fields), len(group))
            size = max(1, min(size, features.max_query_params // max(1, len(fields))))
            limit = features.max_cacheable_statement_size
            if batch_size is None and limit is not None and len(group) > 1:
                size = _cacheable_batch_size(model, fields, ops, returning, size, limit, conflict)
                size = _even_batch_size(len(group), size)
            prebuilt: list[list[Any]] | None
            flat: Sequence[Any] = ()
            if features.max_statement_bytes is not None and batch_size is None and fields:
                prebuilt = build(group)
                flat = ops.bulk_insert_params(prebuilt)
                cuts = _packet_batches(flat, len(fields), size, features.max_statement_bytes, ops)
            else:
                prebuilt = None
                cuts = [(i, min(i + size, len(group))) for i in range(0, len(group), size)]
            for start, end in cuts:
                batch = group[start:end]
                sql = compile_insert(
                    model, fields, batch, ops, returning=returning, conflict=conflict
                )
                if prebuilt is None:
                    params = ops.bulk_insert_params(build(batch))
                elif len(cuts) == 1:
                    params = flat
                else:
                    params = ops.bulk_insert_params([c[start:end] for c in prebuilt])
                if step is not None:
                    first = await run_insert(db, sql, params, False)
                    if from_last:
                        first -= (len(batch) - 1) * step
                    _set_keys(batch, pk_attname, range(first, first + len(batch) * step, step))
                elif returning:
                    result = await run_fetch_all(db, sql, params)
                    _set_keys(batch, pk_attname, _returned_keys(result, conv))
                else:
                    await run_execute(db, sql, params)
    for state in map(_state_of, items):
        state.adding = False
        state.db = using
    return items


async def bulk_write(
    model: type[Model],
    objs: Iterable[Any],
    fields: Sequence[str],
    *,
    using: str | None,
    batch_size: int | None,
) -> int:
    """UPDATE ``fields`` of many objects (the implementation of ``bulk_update()``).

    Every object is validated (``full_clean()`` of ``fields``) before anything is
    written, and an object listed twice is written once, with its first values.
    One statement per batch: an ``UPDATE ... FROM unnest(...)`` join where the
    database takes arrays (PostgreSQL), else ``UPDATE ... SET col = CASE pk WHEN
    ... END WHERE pk IN (...)``.

    Returns:
        The number of rows matched.
    """
    from covet.db.transactions import transaction

    if isinstance(fields, str):
        raise TypeError(f"bulk_update() takes a sequence of field names, not {fields!r}.")
    if batch_size is not None and (type(batch_size) is not int or batch_size < 1):
        raise ValueError(f"bulk_update(batch_size={batch_size!r}) takes a positive int or None.")
    items = list(objs)
    if not fields:
        raise TypeError("bulk_update() needs the names of the fields to write.")
    meta = model._meta
    targets = list(dict.fromkeys(meta.get_field(check_identifier(n, "field name")) for n in fields))
    if any(f.primary_key or not f.concrete for f in targets):
        raise FieldError("bulk_update() cannot write primary keys or many-to-many fields.")
    if not items:
        return 0
    if using is None and routers:
        using = db_for_write(model)
    db = get_database(using)
    ops, features = db.ops, db.features
    pk = meta.pk
    rows: dict[Any, list[Any]] = {}
    exclude = [f.name for f in meta.concrete_fields if f not in targets]
    pk_attname = pk.attname
    for obj in items:
        key = obj.__dict__.get(pk_attname) if isinstance(obj, model) else None
        if key is None:
            raise TypeError(f"bulk_update() needs saved {model.__name__} objects: {obj!r}.")
        obj.full_clean(exclude=exclude)
        key = pk.get_db_prep_value(obj.pk, ops)
        if key not in rows:
            rows[key] = [f.get_db_prep_value(f.pre_save(obj, False), ops) for f in targets]
    q = ops.quote_name
    array_sql = (
        ops.array_update_sql(
            q(meta.table),
            q(pk.column),
            [q(f.column) for f in targets],
            [pk.target_field.internal_type if isinstance(pk, ForeignKey) else pk.internal_type]
            + [f.internal_type for f in targets],
        )
        if features.can_bulk_update_arrays
        else None
    )
    total = 0
    async with transaction(using):
        if array_sql is not None:
            adapters = [ops.get_array_adapter(f.internal_type) for f in targets]
            for batch in batches(list(rows.items()), batch_size or _ARRAY_BATCH_ROWS):
                columns: list[list[Any]] = [[key for key, _values in batch]]
                for i, adapt in enumerate(adapters):
                    column = [values[i] for _key, values in batch]
                    if adapt is not None:
                        column = [None if v is None else adapt(v) for v in column]
                    columns.append(column)
                total += await run_execute(db, array_sql, columns)
        else:
            # Per row: a WHEN key and a THEN value per field, and the key once more in IN.
            per_row = 2 * len(targets) + 1
            size = max(1, min(batch_size or _CASE_BATCH_ROWS, features.max_query_params // per_row))
            for batch in batches(list(rows.items()), size):
                sql, params = _case_update(model, targets, batch, ops)
                total += await run_execute(db, sql, params)
    return total


def _case_update(
    model: type[Model],
    targets: Sequence[Field[Any]],
    batch: Sequence[tuple[Any, list[Any]]],
    ops: Any,
) -> tuple[str, list[Any]]:
    """Render ``UPDATE ... SET col = CASE pk WHEN k THEN v ... END ... WHERE pk IN (...)``."""
    q = ops.quote_name
    pk_sql = q(model._meta.pk.column)
    params: list[Any] = []
    n = 0
    sets = []
    for i, field in enumerate(targets):
        whens = []
        for key, values in batch:
            params += (key, values[i])
            when = ops.placeholder(n + 1)
            then = ops.case_value(ops.placeholder(n + 2), field.internal_type)
            whens.append(f"WHEN {when} THEN {then}")
            n += 2
        sets.append(f"{q(field.column)} = CASE {pk_sql} {' '.join(whens)} END")
    keys = []
    for key, _values in batch:
        n += 1
        params.append(key)
        keys.append(ops.placeholder(n))
    sql = (
        f"UPDATE {q(model._meta.table)} SET {', '.join(sets)} "  # noqa: S608 - identifiers are quoted, values are bound
        f"WHERE {pk_sql} IN ({', '.join(keys)})"
    )
    return sql, params
