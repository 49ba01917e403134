"""Writes where a unique constraint decides: conflict handling and get/update-or-create.

``bulk_create(ignore_conflicts=True)`` and ``bulk_create(update_conflicts=True,
unique_fields=..., update_fields=...)`` check their options here and get their
``ON CONFLICT`` / ``ON DUPLICATE KEY UPDATE`` clause from the dialect's
operations. ``get_or_create()`` and ``update_or_create()`` never decide from a
read that a row is missing: they try the INSERT and let the database's unique
constraint pick the one winner, so concurrent calls on separate connections
create one row and the losers read (and update) it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from covet.db.compiler.paths import check_identifier
from covet.db.exceptions import FieldError, IntegrityError, NotSupportedError, ObjectDoesNotExist
from covet.db.execution import batches
from covet.db.transactions import transaction

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from covet.db.backends.base import BaseFeatures
    from covet.db.fields import Field
    from covet.db.models import Model
    from covet.db.queryset import QuerySet

__all__ = (
    "ConflictPlan",
    "check_conflicting_objects",
    "get_or_create",
    "in_bulk",
    "plan_conflicts",
    "update_or_create",
)

T = TypeVar("T")

#: How often update_or_create() goes round "lock and update, else insert" when a
#: concurrent insert or delete keeps changing the answer.
_ATTEMPTS = 3


class ConflictPlan:
    """What ``bulk_create()`` does with rows that hit a unique constraint.

    Attributes:
        update: True to overwrite ``update_fields`` of the existing row, False to skip.
        unique: The fields whose unique constraint is the conflict target (may be
            empty when skipping: then any unique constraint).
        fields: The fields overwritten on a conflict (empty when skipping).
    """

    __slots__ = ("fields", "unique", "update")

    def __init__(
        self, *, update: bool, unique: Sequence[Field[Any]], fields: Sequence[Field[Any]]
    ) -> None:
        self.update = update
        self.unique = tuple(unique)
        self.fields = tuple(fields)

    def clause(self, model: type[Model], ops: Any) -> str:
        """Return the dialect's conflict clause, appended to the INSERT."""
        target = [f.column for f in self.unique]
        if self.update:
            return str(ops.upsert(target, [f.column for f in self.fields]))
        return str(ops.ignore_conflicts_sql(target, model._meta.pk.column))


def _unique_keys(model: type[Model]) -> list[frozenset[str]]:
    """Return the field-name sets of the model's unique constraints (pk first)."""
    meta = model._meta
    keys = [frozenset({f.name}) for f in meta.concrete_fields if f.primary_key or f.unique]
    for names in meta.unique_together:
        keys.append(frozenset(meta.get_field(n).name for n in names))
    return keys


def _describe_keys(keys: Iterable[frozenset[str]]) -> str:
    return ", ".join(repr(next(iter(k))) if len(k) == 1 else repr(tuple(sorted(k))) for k in keys)


def plan_conflicts(
    model: type[Model],
    *,
    ignore_conflicts: bool,
    update_conflicts: bool,
    unique_fields: Sequence[str],
    update_fields: Sequence[str],
) -> ConflictPlan | None:
    """Check ``bulk_create()``'s conflict options; return the plan, or None for a plain INSERT.

    Raises:
        ValueError: The options contradict each other, ``unique_fields`` is not a
            unique constraint, or ``update_fields`` names a primary key or a relation.
        FieldError: An unknown field name.
    """
    name = model.__name__
    if isinstance(unique_fields, str) or isinstance(update_fields, str):
        raise ValueError(
            "bulk_create() takes unique_fields and update_fields as sequences of field "
            f"names, not a string. Write unique_fields=({unique_fields!r},)."
        )
    if ignore_conflicts and update_conflicts:
        raise ValueError(
            "bulk_create() takes ignore_conflicts=True or update_conflicts=True, not both: "
            "skip the conflicting rows, or overwrite them."
        )
    if update_fields and not update_conflicts:
        raise ValueError(
            f"bulk_create(update_fields={tuple(update_fields)!r}) only applies with "
            "update_conflicts=True. Pass update_conflicts=True, or drop update_fields."
        )
    if not (ignore_conflicts or update_conflicts):
        if unique_fields:
            raise ValueError(
                f"bulk_create(unique_fields={tuple(unique_fields)!r}) only applies with "
                "ignore_conflicts=True or update_conflicts=True."
            )
        return None
    meta = model._meta
    unique: list[Field[Any]] = []
    for field_name in dict.fromkeys(unique_fields):
        field = meta.pk if field_name == "pk" else meta.get_field(field_name)
        if not field.concrete:
            raise ValueError(
                f"bulk_create(unique_fields=...) takes concrete fields; {name}.{field_name} "
                "is a many-to-many relation."
            )
        unique.append(field)
    keys = _unique_keys(model)
    if unique and frozenset(f.name for f in unique) not in keys:
        raise ValueError(
            f"bulk_create(unique_fields={tuple(unique_fields)!r}): {name} has no unique "
            "constraint on exactly these fields, so the database cannot report a conflict "
            f"on them. Use one of: {_describe_keys(keys)} (a unique=True field or a "
            "Meta.unique_together set)."
        )
    if not update_conflicts:
        return ConflictPlan(update=False, unique=unique, fields=())
    if not unique:
        raise ValueError(
            "bulk_create(update_conflicts=True) needs unique_fields: the unique field(s) "
            f"whose conflict turns the INSERT into an UPDATE, one of {_describe_keys(keys)}."
        )
    if not update_fields:
        raise ValueError(
            "bulk_create(update_conflicts=True) needs update_fields: the fields to "
            "overwrite in the rows that already exist."
        )
    fields: list[Field[Any]] = []
    for field_name in dict.fromkeys(update_fields):
        field = meta.pk if field_name == "pk" else meta.get_field(field_name)
        if field.primary_key or not field.concrete:
            raise ValueError(
                f"bulk_create(update_fields=...) takes concrete fields other than the primary "
                f"key; {name}.{field_name} is "
                f"{'the primary key' if field.primary_key else 'a many-to-many relation'}."
            )
        fields.append(field)
    return ConflictPlan(update=True, unique=unique, fields=fields)


def check_conflicting_objects(
    model: type[Model], plan: ConflictPlan, items: Sequence[Model], features: BaseFeatures
) -> None:
    """Refuse what would make the upsert differ between databases; run after cleaning.

    * Two objects with the same ``unique_fields`` values in ``update_conflicts``:
      PostgreSQL refuses to update one row twice in a statement, SQLite and MySQL
      would keep the last; covet refuses it everywhere.
    * Where the dialect cannot name the conflict target (MySQL/MariaDB), another
      unique key the rows could hit would also trigger the update or the skip.

    Raises:
        ValueError: Duplicate objects.
        NotSupportedError: The dialect cannot limit the conflict to ``unique_fields``.
    """
    name = model.__name__
    if plan.update:
        attnames = [f.attname for f in plan.unique]
        seen: set[tuple[Any, ...]] = set()
        for obj in items:
            key = tuple(obj.__dict__.get(a) for a in attnames)
            if None in key:
                continue  # NULLs never conflict
            if key in seen:
                shown = ", ".join(f"{f.name}={v!r}" for f, v in zip(plan.unique, key, strict=True))
                raise ValueError(
                    f"bulk_create(update_conflicts=True) got two {name} objects with {shown}: "
                    "one statement can write a row only once. Remove the duplicates."
                )
            seen.add(key)
    if not plan.unique or features.supports_update_conflicts_with_target:
        return
    meta = model._meta
    pk_given = any(obj.__dict__.get(meta.pk.attname) is not None for obj in items)
    target = frozenset(f.name for f in plan.unique)
    others = [
        k
        for k in _unique_keys(model)
        if k != target and (k != {meta.pk.name} or pk_given or not meta.pk.auto_created)
    ]
    if others:
        raise NotSupportedError(
            f"This database cannot limit bulk_create() conflicts to unique_fields="
            f"{tuple(sorted(target))!r}: its ON DUPLICATE KEY UPDATE also fires on {name}'s "
            f"other unique key(s) {_describe_keys(others)}. Leave the primary keys of new "
            "objects unset, or use get_or_create()/update_or_create() per object."
        )


def _resolve(values: dict[str, Any]) -> dict[str, Any]:
    """Call the callable values of ``defaults`` (as Django does), once each."""
    return {k: v() if callable(v) else v for k, v in values.items()}


def _create_params(kwargs: dict[str, Any], defaults: dict[str, Any] | None) -> dict[str, Any]:
    params = {k: v for k, v in kwargs.items() if "__" not in k}
    params.update(_resolve(defaults or {}))
    return params


def _update_fields(model: type[Model], updates: dict[str, Any]) -> list[str] | None:
    """Return what ``save(update_fields=...)`` writes for ``defaults``; None: every field.

    Only the fields in ``defaults``, plus those whose ``pre_save()`` sets a value
    (``auto_now``), so that a concurrent change of another column is not
    overwritten with a stale value. A key that is no concrete field (a property
    setter) saves the whole object, as Django does.
    """
    meta = model._meta
    names: set[str] = set()
    for key in updates:
        field = meta.fields_map.get(key)
        if field is None or not field.concrete or field.primary_key:
            return None
        names.add(field.name)
    names.update(f.name for f in meta.concrete_fields if getattr(f, "auto_now", False))
    return sorted(names)


async def _locked_get(qs: QuerySet[Any], kwargs: dict[str, Any]) -> Any:
    """Read the row with a locking read, in a transaction (a savepoint when nested).

    A locking read sees the latest committed row even where a plain read would
    not (MySQL's REPEATABLE READ snapshot taken by an earlier read of the same
    transaction), so the row a concurrent task just committed is found.
    """
    async with transaction(qs._using):
        return await qs.select_for_update().get(**kwargs)


async def get_or_create(
    qs: QuerySet[Any], defaults: dict[str, Any] | None, kwargs: dict[str, Any]
) -> tuple[Any, bool]:
    """Return ``(object, created)``: the implementation of ``QuerySet.get_or_create()``."""
    try:
        return await qs.get(**kwargs), False
    except ObjectDoesNotExist:
        pass
    params = _create_params(kwargs, defaults)
    try:
        # A savepoint inside an outer transaction: losing the race leaves it usable.
        async with transaction(qs._using):
            obj = await qs.create(**params)
    except IntegrityError:
        try:
            return await _locked_get(qs, kwargs), False
        except ObjectDoesNotExist:
            pass
        raise  # a constraint other than the one kwargs hit (NOT NULL, a foreign key...)
    return obj, True


async def update_or_create(
    qs: QuerySet[Any],
    defaults: dict[str, Any] | None,
    create_defaults: dict[str, Any] | None,
    kwargs: dict[str, Any],
) -> tuple[Any, bool]:
    """Return ``(object, created)``: the implementation of ``QuerySet.update_or_create()``.

    Each round locks the row and updates it in one transaction; when there is
    no row it tries the INSERT (in its own transaction or savepoint, so a
    failed one releases what it holds) and, on losing the race, goes round
    again to update the winner's row.
    """
    updates = defaults or {}
    update_fields = _update_fields(qs.model, updates)
    create = _create_params(kwargs, defaults if create_defaults is None else create_defaults)
    for attempt in range(_ATTEMPTS):
        async with transaction(qs._using):
            try:
                obj = await qs.select_for_update().get(**kwargs)
            except ObjectDoesNotExist:
                obj = None
            if obj is not None:
                if updates:
                    for key, value in _resolve(updates).items():
                        setattr(obj, key, value)
                    await obj.save(using=qs._using, update_fields=update_fields)
                return obj, False
        try:
            async with transaction(qs._using):
                obj = await qs.create(**create)
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
            continue  # another task created it: update that row
        return obj, True
    raise AssertionError("unreachable")  # pragma: no cover


async def in_bulk(qs: QuerySet[T], id_list: Iterable[Any] | None, field_name: str) -> dict[Any, T]:
    """Return ``{value: object}`` for the rows whose unique ``field_name`` is in ``id_list``.

    ``QuerySet.in_bulk()``: every row when ``id_list`` is None, in batches below the
    parameter limit otherwise.

    Raises:
        FieldError: ``field_name`` is not the primary key or a unique field.
        TypeError: The queryset is sliced.
    """
    field = qs.model._meta.get_field(check_identifier(field_name, "field name"))
    if not field.unique or not field.concrete:
        raise FieldError(
            f"in_bulk() field_name must be a unique field; {field_name!r} is not. Use "
            "the primary key or a field with unique=True."
        )
    if qs.query.is_sliced:
        raise TypeError("Cannot use in_bulk() on a sliced queryset. Filter by keys instead.")
    if id_list is None:
        objs: list[Any] = await qs
    else:
        values = list(dict.fromkeys(id_list))
        objs = []
        # Half the parameter limit: room for the queryset's own filters.
        for batch in batches(values, max(1, qs._db().features.max_query_params // 2)):
            objs += await qs.filter(**{f"{field.name}__in": batch})
    return {obj.__dict__[field.attname]: obj for obj in objs}
