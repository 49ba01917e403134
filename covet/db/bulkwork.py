"""Column-at-a-time work of the bulk writes: validation, parameters, batch sizes, keys.

``bulk_create()`` (:func:`covet.db.persistence.bulk_insert`) validates, adapts
and binds a thousand objects a column at a time, in C loops where the values
are already canonical, and sets the new keys on the objects; ``bulk_update()``
shares the batch sizing. Kept apart from :mod:`covet.db.persistence`, which
holds the statements' order and transactions.
"""

from __future__ import annotations

import datetime
import operator
from typing import TYPE_CHECKING, Any, Final

from covet.db.backends.base import BaseOperations, utc_datetimes
from covet.db.compiler import compile_insert
from covet.db.exceptions import ValidationError
from covet.db.execution import run_fetch_one
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

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence


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
_instance_dict = operator.attrgetter("__dict__")
_related_cache = operator.attrgetter("_state.cache")
#: The largest rowid SQLite assigns in order; past it, new rows get random free keys.
_MAX_ROWID: Final = 2**63 - 1
#: Fewer new rows than this read their keys from RETURNING: an extra query would cost more.
_COUNT_BACK_MIN_ROWS: Final = 64
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
        return utc_datetimes(column)
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


#: ``Options.cache`` key of :func:`cleaned_row`'s plans (dropped with the cache).
_ROW_PLAN: Final = "covet.cleaned_row_plan"

#: Per insert field: (field, attname, adapter, whether it needs the full method chain).
_RowPlan = tuple[list[Field[Any]], list[tuple[Field[Any], str, Any, bool]]]


def cleaned_row(obj: Model, ops: Any) -> tuple[list[Field[Any]], list[Any]]:
    """Return the INSERT fields and values of ``obj``, just cleaned by ``full_clean()``.

    ``save()`` of a new object: what ``get_db_prep_value(pre_save(obj, True), ops)``
    returns per field, with the per-field decisions made once per model and
    database (see :func:`_prepared_after_clean`): a cleaned value is bound as it is
    or through the backend's adapter, without calling ``pre_save()``,
    ``get_prep_value()`` and ``to_python()`` again. Auto-created fields (the auto
    key) are left out while the key is None.

    Raises:
        ValidationError: The backend's adapter refused a value (as
            ``Field.get_db_prep_value()`` reports it).
    """
    values = obj.__dict__
    with_pk = obj.pk is not None
    meta = obj._meta
    key = (_ROW_PLAN, ops, with_pk)
    plan: _RowPlan | None = meta.cache.get(key)
    if plan is None:
        fields = [f for f in meta.concrete_fields if with_pk or not f.auto_created]
        steps = [
            (f, f.attname, ops.get_adapter(f.internal_type), False)
            if _prepared_after_clean(f)
            else (f, f.attname, None, True)
            for f in fields
        ]
        plan = meta.cache[key] = (fields, steps)
    row: list[Any] = []
    for field, attname, adapter, generic in plan[1]:
        if generic:
            row.append(field.get_db_prep_value(field.pre_save(obj, True), ops))
            continue
        value = values.get(attname)  # a deferred field: pre_save() reads it as None
        if value is not None and adapter is not None:
            try:
                value = adapter(value)
            except ValueError as exc:
                raise ValidationError({field.name or "value": [str(exc)]}) from None
        row.append(value)
    return plan[0], row


async def _keys_count_back(db: Any, model: type[Model], rows: int) -> bool:
    """Tell whether ``rows`` new rows of ``model``'s table take consecutive keys (SQLite).

    They do when no trigger is defined on the table (a trigger's own INSERT
    into it would take keys between the statement's rows) and the largest key
    leaves room for them (past the largest possible rowid SQLite picks keys at
    random). Asked inside ``bulk_create()``'s transaction, which holds SQLite's
    write lock, so neither can change before the INSERT.
    """
    q = db.ops.quote_name
    meta = model._meta
    sql = db.ops.bulk_key_check_sql(q(meta.table), q(meta.pk.column))
    row = await run_fetch_one(db, sql, [meta.table])
    if row is None or row[1]:
        return False
    largest = row[0] or 0
    return bool(largest <= _MAX_ROWID - rows)


def _returned_keys(rows: Iterable[Sequence[Any]], conv: Callable[[Any], Any] | None) -> Any:
    """Return the keys of RETURNING's rows (converted when the backend needs it)."""
    keys = map(_first, rows)
    return keys if conv is None else map(conv, keys)


def _set_keys(objs: Sequence[Model], attname: str, keys: Iterable[Any]) -> None:
    """Store each new key in its object, in order (zip() checks the counts agree)."""
    for values, key in zip(map(_instance_dict, objs), keys, strict=True):
        values[attname] = key
