"""Writing rows: Model.save()/refresh_from_db() and the bulk INSERT/UPDATE.

``Model`` reaches :func:`save_instance` and :func:`refresh_instance` through lazy
imports (this module imports the queryset, which imports models);
``QuerySet.bulk_create()``/``bulk_update()`` live here too. Deleting is in
:mod:`covet.db.deletion`.
"""

from __future__ import annotations

import datetime
import operator
from typing import TYPE_CHECKING, Any, Final

from covet.db.backends.base import BaseOperations
from covet.db.compiler import check_identifier, compile_insert
from covet.db.compiler.write import compile_array_insert
from covet.db.database import get_database
from covet.db.exceptions import DatabaseError, FieldError, ValidationError
from covet.db.execution import batches, run_execute, run_fetch_all, run_insert
from covet.db.fields import (
    BigIntegerField,
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    Field,
    FloatField,
    ForeignKey,
    IntegerField,
    SmallIntegerField,
    TextField,
    TimeField,
    UUIDField,
)
from covet.db.models import _CLEAN_PLAN, Model, _checks_type_only, _clean_plan
from covet.db.queryset import QuerySet
from covet.db.routing import db_for_write, routers
from covet.db.signals import post_save, pre_save
from covet.db.upserts import check_conflicting_objects

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from covet.db.upserts import ConflictPlan

__all__ = (
    "bulk_insert",
    "bulk_write",
    "refresh_instance",
    "save_instance",
    "sync_fk_ids",
    "validate_unique_instance",
)


def _cacheable_batch_size(
    model: type[Model],
    fields: Sequence[Field[Any]],
    ops: Any,
    returning: bool,
    size: int,
    limit: int,
    conflict: str = "",
) -> int:
    """Return at most ``size`` rows whose INSERT is at most ``limit`` characters long.

    A driver that keeps prepared statements only below a length (asyncpg) would
    otherwise prepare a large INSERT again on every call, which costs more
    client CPU than a second, cached statement. The average row width of the
    ``size``-row statement bounds the width of the rows of any shorter one
    (placeholder numbers only grow), so the estimate never overshoots.
    """
    full = len(
        compile_insert(model, fields, range(size), ops, returning=returning, conflict=conflict)
    )
    if full <= limit or size == 1:
        return size
    one = len(compile_insert(model, fields, range(1), ops, returning=returning, conflict=conflict))
    per_row = (full - one) / (size - 1)
    return max(1, min(size, int((limit - one) // per_row) + 1))


_UTC = datetime.UTC
_MISSING: Any = object()


def _column_check(field: Field[Any]) -> tuple[str, Any] | None:
    """Return ``(kind, bound)`` when a column can be checked without calling ``clean()``.

    For the plain field classes whose ``clean()`` is ``to_python()`` then
    ``check_value()`` (no choices, no validators, nothing overridden), a value
    that is already canonical is recognised by its exact type and bound alone:
    ``str`` within ``max_length``, ``int`` within the range, an aware UTC
    ``datetime``. Anything else, None included, goes through ``clean()`` as
    ``full_clean()`` would send it.
    """
    target = field.target_field if isinstance(field, ForeignKey) else field
    if not _checks_type_only(field) or not _checks_type_only(target):
        return None
    cls = type(target)
    if (
        cls.to_python is CharField.to_python
        and cls.check_value is CharField.check_value
        and isinstance(target, CharField)
    ):
        return "str", target.max_length
    if cls.to_python is TextField.to_python and cls.check_value is Field.check_value:
        return "str", None
    if (
        cls.to_python is IntegerField.to_python
        and cls.check_value is IntegerField.check_value
        and isinstance(target, (IntegerField, BigIntegerField, SmallIntegerField))
    ):
        return "int", (target.min_value, target.max_value)
    if cls.to_python is DateTimeField.to_python and cls.check_value is Field.check_value:
        return "datetime", None
    return None


#: The key of the per-column :func:`_column_check` results in ``Options.cache``.
_COLUMN_CHECKS: Final = "covet.bulk_column_checks"
_tzinfo = operator.attrgetter("tzinfo")
_instance_dict = operator.attrgetter("__dict__")
_related_cache = operator.attrgetter("_state.cache")
_state_of = operator.attrgetter("_state")
_first = operator.itemgetter(0)


def _column_is_clean(column: list[Any], kind: str, bound: Any, filled_later: bool) -> bool:
    """Tell, in C loops over the whole column, that ``clean()`` would keep every value as it is.

    True when every value is of the column's canonical type (see
    :func:`_column_check`) within its bound, or when every value is None and
    filled in later (an auto key, ``auto_now``). False sends the column to the
    per-value loop, which finds the values to clean and the errors.
    """
    kinds = set(map(type, column))
    if len(kinds) != 1:
        return False
    of = kinds.pop()
    if of is type(None):
        return filled_later
    if kind == "str" and of is str:
        return bound is None or max(map(len, column)) <= bound
    if kind == "int" and of is int:
        low, high = bound
        return bool(low <= min(column) and max(column) <= high)
    if kind == "datetime" and of is datetime.datetime:
        # By identity, as the per-value check: an equal offset-zero zone is not UTC itself.
        return set(map(id, map(_tzinfo, column))) == {id(_UTC)}
    return False


def _bulk_full_clean(model: type[Model], items: list[Any]) -> None:
    """Run ``full_clean()`` on every object, column by column; raise like the first bad one.

    The same checks and the same cleaned values as calling ``obj.full_clean()`` on
    each object, a few times cheaper for a thousand objects: the values of the
    common field types that are already canonical (see :func:`_column_check`) are
    recognised in a loop over the column, without a call per value. When objects
    are invalid, the ValidationError is the one ``full_clean()`` raises for the
    first of them (every bad field of that object); nothing is written.
    """
    meta = model._meta
    plan = meta.cache.get(_CLEAN_PLAN)
    if plan is None:
        plan = meta.cache[_CLEAN_PLAN] = _clean_plan(meta)
    checks = meta.cache.get(_COLUMN_CHECKS)
    if checks is None:
        checks = meta.cache[_COLUMN_CHECKS] = [_column_check(f) for f in meta.concrete_fields]
    errors: dict[int, dict[str, list[str]]] = {}
    dicts = list(map(_instance_dict, items))
    for (name, attname, filled_later, clean), check in zip(plan, checks, strict=True):
        kind, bound = check if check is not None else ("", None)
        if kind or filled_later:
            try:
                column = list(map(operator.itemgetter(attname), dicts))
            except KeyError:  # a deferred field left out of some object
                column = [values.get(attname, _MISSING) for values in dicts]
            if _column_is_clean(column, kind, bound, filled_later):
                continue  # every value already canonical and valid (or left to the database)
        longest = bound if kind == "str" and bound is not None else -1
        low, high = bound if kind == "int" and bound is not None else (0, -1)
        for index, obj in enumerate(items):
            values = obj.__dict__
            value = values.get(attname, _MISSING)
            if value is _MISSING:
                continue
            of = type(value)
            if (
                (kind == "str" and of is str and (longest < 0 or len(value) <= longest))
                or (kind == "int" and of is int and low <= value <= high)
                or (kind == "datetime" and of is datetime.datetime and value.tzinfo is _UTC)
            ):
                continue  # already canonical and valid: what clean() would return
            if value is None and filled_later:
                continue  # filled in by the database (auto key) or by pre_save() (auto_now)
            try:
                values[attname] = clean(value)
            except ValidationError as exc:
                errors.setdefault(index, {}).setdefault(name, []).extend(exc.messages)
    if model.clean is not Model.clean:
        for index, obj in enumerate(items):
            try:
                obj.clean()
            except ValidationError as exc:
                for key, messages in exc.error_dict.items():
                    errors.setdefault(index, {}).setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors[min(errors)])


def _packet_batches(
    flat: Sequence[Any], width: int, size: int, max_bytes: int, ops: Any
) -> list[tuple[int, int]]:
    """Cut rows into ``(start, end)`` ranges of at most ``size`` rows and ``max_bytes`` bytes.

    For drivers that write the values into the statement (aiomysql): one
    statement must fit the server's packet (``max_allowed_packet``). Each row is
    charged an upper bound of its literals (``ops.max_literal_bytes()``) plus
    its share of the SQL, so no statement is ever refused; a single row larger
    than the packet still goes alone, and the server's error names the limit.
    """
    budget = max_bytes * 9 // 10 - 1024  # the INSERT INTO ... (columns) ... RETURNING text
    rows = len(flat) // width if width else 0
    own_measure = type(ops).max_literal_bytes is not BaseOperations.max_literal_bytes
    whole = None if own_measure else _whole_bound(flat)
    if whole is not None and whole + rows * (4 * width + 4) <= budget:
        # Everything fits one packet: cut by rows alone, as the loop below would.
        return [(i, min(i + size, rows)) for i in range(0, rows, size)]
    measure = ops.max_literal_bytes
    cuts: list[tuple[int, int]] = []
    start = used = 0
    for row in range(rows):
        cost = 4 * width + 4  # ", " between values, "(...)," around them
        for value in flat[row * width : (row + 1) * width]:
            cost += measure(value)
        if row > start and (row - start >= size or used + cost > budget):
            cuts.append((start, row))
            start, used = row, 0
        used += cost
    if rows > start:
        cuts.append((start, rows))
    return cuts


def _whole_bound(flat: Sequence[Any]) -> int | None:
    """Return a bound of all the literals of ``flat`` at least the sum of ``max_literal_bytes()``.

    Computed in a few passes of C loops rather than a method call per value:
    48 bytes per value (the bound of a number, date, time or UUID, and more than
    NULL's 4) plus 4 per character of the strings. None when a value is of a
    type whose bound is not that (bytes, a ``str`` subclass). Only for the
    operations whose ``max_literal_bytes()`` is :class:`BaseOperations`'s own.
    """
    kinds = set(map(type, flat))
    for kind in kinds:
        if kind is not str and issubclass(kind, (str, bytes, bytearray, memoryview)):
            return None
    chars = sum(map(len, [v for v in flat if type(v) is str])) if str in kinds else 0
    return 48 * len(flat) + 4 * chars


#: Rows per array INSERT when bulk_create() is given no batch_size: the arrays have no
#: parameter limit, but one protocol message is capped (1 GiB on PostgreSQL), and a
#: bounded statement keeps the memory of the encoded message bounded too.
_ARRAY_BATCH_ROWS: Final = 50_000


#: Rows per ``UPDATE ... CASE`` of bulk_update() when given no batch_size: the database
#: tries the WHENs of a CASE one by one, so a batch costs rows x rows comparisons. 200
#: was fastest for 1,000 rows on SQLite and MariaDB (100: 1.5-2x slower from the extra
#: statements, 1,000: 2-3x slower from the comparisons).
_CASE_BATCH_ROWS: Final = 200


def _even_batch_size(n: int, size: int) -> int:
    """Return the batch size that splits ``n`` rows into as few, equally long, batches.

    Equal batches share one statement shape (1,000 rows at most 600 each: two of
    500, not 600 + 400), so a statement cache holds one entry for them.
    """
    batches = -(-n // size)
    return -(-n // batches)


#: ``to_python()`` implementations that return a value they already produced unchanged:
#: after ``full_clean()`` stored their result, ``Field.get_prep_value()`` would only
#: repeat them.
_STABLE_TO_PYTHON: frozenset[Callable[..., Any]] = frozenset(
    {
        Field.to_python,
        IntegerField.to_python,
        FloatField.to_python,
        BooleanField.to_python,
        CharField.to_python,
        TextField.to_python,
        DateField.to_python,
        TimeField.to_python,
        DateTimeField.to_python,
        UUIDField.to_python,
        BinaryField.to_python,
    }
)


def _prepared_after_clean(field: Field[Any]) -> bool:
    """Return whether a cleaned value of ``field`` needs only the backend's adapter to bind.

    True when the field uses the base ``pre_save()``/``get_prep_value()``/
    ``get_db_prep_value()`` and a stable ``to_python()`` (a ForeignKey: its
    target key's), so ``get_db_prep_value(pre_save(obj))`` is ``adapter(value)``.
    """
    cls = type(field)
    # DateTimeField.pre_save() only differs from the base one when it stamps the time.
    plain_pre_save = cls.pre_save is Field.pre_save or (
        cls.pre_save is DateTimeField.pre_save
        and not getattr(field, "auto_now", False)
        and not getattr(field, "auto_now_add", False)
    )
    if not (
        plain_pre_save
        and cls.get_prep_value is Field.get_prep_value
        and cls.get_db_prep_value is Field.get_db_prep_value
    ):
        return False
    if isinstance(field, ForeignKey):
        target = field.target_field
        return (
            cls.to_python is ForeignKey.to_python
            and type(target).to_python in _STABLE_TO_PYTHON
            and (type(target).get_prep_value is Field.get_prep_value)
        )
    return cls.to_python in _STABLE_TO_PYTHON


def _insert_params_builder(
    fields: Sequence[Field[Any]], ops: Any, *, cleaned: bool
) -> Callable[[Sequence[Model]], list[list[Any]]]:
    """Return a function turning a batch of objects into an INSERT's values, column by column.

    The per-field decisions (which fields bind their cleaned value as it is,
    which go through the backend's adapter, which need the full
    ``get_db_prep_value(pre_save(obj))``) are made once here, not per object.
    ``cleaned`` says every object has just been through ``Model.full_clean()``.
    A column of values read as they are is one C loop over the objects'
    dicts; ``ops.bulk_insert_params()`` interleaves the columns into a
    multi-row ``VALUES``'s parameters, and the array forms send them as they are.
    """
    # Per field: (field, value adapter, column adapter, whether it needs the method chain).
    plan: list[tuple[Field[Any], Callable[[Any], Any] | None, Any, bool]] = []
    for field in fields:
        if cleaned and _prepared_after_clean(field):
            kind = field.internal_type
            whole = ops.get_column_adapter(kind)
            plan.append((field, None if whole else ops.get_adapter(kind), whole, False))
        else:
            plan.append((field, None, None, True))

    def build(batch: Sequence[Model]) -> list[list[Any]]:
        dicts = list(map(_instance_dict, batch))
        columns: list[list[Any]] = []
        for field, adapter, adapt_column, generic in plan:
            if generic:
                columns.append(
                    [field.get_db_prep_value(field.pre_save(o, True), ops) for o in batch]
                )
                continue
            attname = field.attname
            try:
                column = list(map(operator.itemgetter(attname), dicts))
            except KeyError:  # a deferred field: pre_save() reads it as None
                column = [values.get(attname) for values in dicts]
            if adapt_column is not None:
                column = adapt_column(column)
            elif adapter is not None:
                try:
                    column = [None if v is None else adapter(v) for v in column]
                except ValueError as exc:
                    # As Field.get_db_prep_value(): name the field the adapter refused.
                    raise ValidationError({field.name or "value": [str(exc)]}) from None
            columns.append(column)
        return columns

    return build


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
    cleaned = model.full_clean is Model.full_clean
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
            step = (
                features.bulk_insert_id_step
                if not include_pk and meta.pk.auto_created and conflicts is None
                else None
            )
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
                    encoded = None if json_sql is None else ops.json_columns(columns, kinds)
                    if encoded is not None and json_sql is not None:
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


def _returned_keys(rows: Iterable[Sequence[Any]], conv: Callable[[Any], Any] | None) -> Any:
    """Return the keys of RETURNING's rows (converted when the backend needs it)."""
    keys = map(_first, rows)
    return keys if conv is None else map(conv, keys)


def _set_keys(objs: Sequence[Model], attname: str, keys: Iterable[Any]) -> None:
    """Store each new key in its object, in order (zip() checks the counts agree)."""
    for values, key in zip(map(_instance_dict, objs), keys, strict=True):
        values[attname] = key


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
