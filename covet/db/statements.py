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
from covet.db.database import get_database, statement_epoch
from covet.db.exceptions import DatabaseError
from covet.db.fields import Field, ForeignKey, IntegerField
from covet.db.fields.relations import model_base
from covet.db.routing import db_for_read, routers
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.compiler import CompiledSelect, Query
    from covet.db.database import Database
    from covet.db.models import Model
    from covet.db.queryset import QuerySet
    from covet.db.rows import RowsBuilder

__all__ = (
    "RememberedGet",
    "StatementCache",
    "bind_statement",
    "bind_update",
    "count_statements",
    "derive",
    "derived_statements",
    "filter_statements",
    "first_statements",
    "get_statement_key",
    "get_statements",
    "limited_for_get",
    "not_one_error",
    "remember_count",
    "remember_derived",
    "remember_first",
    "remember_statement",
    "remember_update",
    "update_statement_key",
    "update_statements",
)

T = TypeVar("T")

#: A remembered statement: the compiled SELECT, the compared fields (in keyword order),
#: for each field whether it binds any ``int`` as it is (see _binds_ints_as_is()), and for
#: each such foreign key the model it points to (else None): a saved instance of exactly that
#: class then binds its ``int`` key as it is.
Statement = tuple[
    "CompiledSelect", tuple["Field[Any]", ...], tuple[bool, ...], tuple["type[Model] | None", ...]
]


class StatementCache(dict[tuple[Any, ...], Statement]):
    """A dict of statements whose ``clear()`` also makes the managers' remembered ones stale.

    A manager's :class:`RememberedGet` holds a statement of this cache; once the
    cache is cleared (at :data:`~covet.db.compiler.paths.CACHE_LIMIT`, or by a
    test), the next ``get()`` derives its key and finds or compiles it again.
    """

    def clear(self) -> None:
        """Remove every statement (and bump :data:`~covet.db.database.statement_epoch`)."""
        super().clear()
        statement_epoch.bump()


#: ``get(**kwargs)`` statements by (the database's ops, the base query's shape, the sorted
#: keywords).
get_statements = StatementCache()
#: ``filter(**kwargs)`` statements, by the same keys: the base query filtered by the
#: keywords, as awaiting the queryset runs it (no LIMIT, the base's own ordering).
filter_statements = StatementCache()


#: ``filter(**kwargs).first()`` statements, by ``id()`` of the remembered ``filter()``
#: statement they extend: (that statement, the SELECT with its ``ORDER BY ... LIMIT 1``,
#: the parameters the LIMIT adds after the filter's). The first item keeps the filter's
#: statement alive, so its ``id()`` is never another's while the entry exists.
first_statements: dict[int, tuple[CompiledSelect, CompiledSelect, tuple[Any, ...]]] = {}

#: ``filter(**kwargs).update(**values)`` statements (the UPDATE's SQL and the set fields) by
#: (the database's ops, the base query's shape, the sorted filter keywords, the set names).
update_statements: dict[tuple[Any, ...], tuple[str, tuple[Field[Any], ...]]] = {}

#: The pending filter of a queryset from a remembered ``filter()`` statement (see
#: ``QuerySet._filter()``): the SELECT, its parameters, the database, the base, the keywords,
#: and the calls chained after the filter that only changed the SQL (see :func:`derive`), which
#: building the query replays.
Pending = tuple[
    "CompiledSelect", list[Any], "Database", "QuerySet[Any]", dict[str, Any], tuple[Any, ...]
]

#: Statements derived from a remembered ``filter()`` statement (or from one derived from it)
#: by a call that changes only the SQL, not the parameters: ``order_by()`` with field names, or
#: a slice (LIMIT and OFFSET are written into the SQL). By (``id()`` of the statement derived
#: from, the call): the statement derived from (which keeps it alive, so its ``id()`` is never
#: another's while the entry exists) and the derived SELECT.
derived_statements: dict[tuple[int, tuple[Any, ...]], tuple[CompiledSelect, CompiledSelect]] = {}
#: ``count()``'s SQL for a remembered (or derived) statement, by its ``id()``, kept as above.
count_statements: dict[int, tuple[CompiledSelect, str]] = {}


def derive(pending: Pending, call: tuple[Any, ...]) -> Pending | None:
    """Return ``pending`` with ``call`` applied from the remembered statements, or None.

    ``call`` is ``("order_by", names)`` or ``("slice", start, stop)``; the
    result runs the derived SELECT with the same parameters.
    """
    found = derived_statements.get((id(pending[0]), call))
    if found is None or found[0] is not pending[0]:
        return None
    return (found[1], pending[1], pending[2], pending[3], pending[4], (*pending[5], call))


def remember_derived(pending: Pending, call: tuple[Any, ...], query: Query) -> None:
    """Keep the statement ``call`` made of ``pending``'s (``query``), for :func:`derive`.

    Kept only when its parameters are the pending filter's, as they are when
    ``call`` only orders or cuts the rows: then its SQL is the same whenever the
    filter's is, and the filter's parameters fit it.
    """
    db = pending[2]
    try:
        compiled = compile_select(query, db.backend.ops, db.backend.features)
    except (DatabaseError, ValueError, TypeError):
        return  # e.g. a feature the database lacks: raised by the general path, when run
    if compiled.params != pending[1]:
        return
    if len(derived_statements) >= CACHE_LIMIT:
        derived_statements.clear()
    derived_statements[(id(pending[0]), call)] = (pending[0], compiled)


def remember_count(pending: Pending, sql: str, params: list[Any]) -> None:
    """Keep ``count()``'s SQL for ``pending``'s statement, if its parameters are the filter's."""
    if params != pending[1]:
        return
    if len(count_statements) >= CACHE_LIMIT:
        count_statements.clear()
    count_statements[id(pending[0])] = (pending[0], sql)


def update_statement_key(
    db: Database, pending: Pending, values: dict[str, Any]
) -> tuple[Any, ...] | None:
    """Return the key of ``filter(...).update(**values)``'s UPDATE, or None if it varies.

    The filter is a remembered one (``pending``), whose WHERE renders the same for
    any values and binds the parameters ``pending`` holds; the UPDATE's SQL is then
    the same whenever the set values are plain too (:data:`PLAIN_VALUE_TYPES` or
    None: one placeholder each, no expression) and the filter's database is the
    one the UPDATE goes to (with routers, reads and writes may go to different ones).
    """
    if pending[2] is not db or pending[5]:
        return None  # a routed write, or an ordered or sliced filter: the general path
    for value in values.values():
        if value is not None and type(value) not in PLAIN_VALUE_TYPES:
            return None
    keywords = pending[4]
    keys = tuple(sorted(keywords)) if len(keywords) > 1 else tuple(keywords)
    return (db.backend.ops, pending[3]._query.shape(), keys, tuple(values))


def bind_update(
    statement: tuple[str, tuple[Field[Any], ...]], pending: Pending, values: dict[str, Any]
) -> list[Any]:
    """Return the parameters of a remembered UPDATE: the set values, then the filter's.

    Raises:
        ValidationError: A value does not fit its field (what ``update()`` raises).
    """
    ops = pending[2].backend.ops
    params = [
        field.get_db_prep_value(field.clean(value), ops)
        for field, value in zip(statement[1], values.values(), strict=True)
    ]
    params.extend(pending[1])
    return params


def remember_update(key: tuple[Any, ...], sql: str, fields: list[Field[Any]]) -> None:
    """Keep the UPDATE compiled for ``key`` (see :func:`update_statement_key`)."""
    if len(update_statements) >= CACHE_LIMIT:
        update_statements.clear()
    update_statements[key] = (sql, tuple(fields))


class RememberedGet:
    """A manager's ``get(name=value)`` statement, with what running it needs.

    ``Post.objects.get(pk=1)`` on a default manager looks this up by the keyword
    name alone (see ``QuerySet.get()``): no key is derived, hashed or looked up
    in :data:`get_statements`, no router consulted, no row builder looked up.
    Valid while :data:`~covet.db.database.statement_epoch` still has the value it
    had when this was made (no database connected or disconnected, no routers
    set, the statement cache not cleared since), and used only while no router
    is installed; any other call takes the general path.
    """

    __slots__ = ("build_rows", "db", "epoch", "field", "ints_as_is", "ops", "sql")

    def __init__(
        self, epoch: int, statement: Statement, db: Database, build_rows: RowsBuilder
    ) -> None:
        self.epoch = epoch
        self.sql = statement[0].sql
        self.field = statement[1][0]
        self.ints_as_is = statement[2][0]
        self.db = db
        self.ops = db.backend.ops
        self.build_rows = build_rows


def not_one_error(
    model: type[Model], rows: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Exception:
    """Return the error of a ``get()`` that found ``rows`` (none, or more than one)."""
    if not rows:
        return model.DoesNotExist(
            f"{model.__name__} matching query does not exist (filters: {_describe(args, kwargs)})."
        )
    return model.MultipleObjectsReturned(
        f"get() returned more than one {model.__name__} (filters: "
        f"{_describe(args, kwargs)}). Filter on a unique field or use first()."
    )


def _describe(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts) or "none"


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
    value is of :data:`PLAIN_VALUE_TYPES` or a saved model instance, and the base
    query binds parameters only in its WHERE clause (no annotations, no HAVING), is
    not sliced or empty, and prefetches nothing. (Whether each keyword is a plain
    comparison, and each instance compared with a relation, is checked when the
    statement is remembered.) With an instance among the values, the key ends with
    which keywords have one: ``author=user`` and ``author=1`` are two statements.
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
    instances = False
    for value in kwargs.values():
        if type(value) not in PLAIN_VALUE_TYPES:
            # filter(author=user): a relation compared with a saved instance binds its key.
            if not isinstance(value, model_base()) or value.pk is None:
                return None
            instances = True
    try:
        using = base._using
        if using is None and routers:
            using = db_for_read(base.model)
        db = get_database(using)
    except ImproperlyConfigured:
        return None  # the general path reports it, after checking the filter
    keys = tuple(sorted(kwargs)) if len(kwargs) > 1 else tuple(kwargs)
    if instances:
        kinds = tuple(type(kwargs[name]) not in PLAIN_VALUE_TYPES for name in keys)
        return (db.backend.ops, query.shape(), keys, kinds), db
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
    ops, fields, ints_as_is, targets = key[0], statement[1], statement[2], statement[3]
    params: list[Any] = []
    where = base._query.where
    if where.children:
        where.collect(ops, params)  # a custom manager's own filters
    for field, name, as_is, target in zip(fields, key[2], ints_as_is, targets, strict=True):
        value = kwargs[name]
        if as_is:
            # What get_db_prep_value() would return, without its calls: the int itself, or
            # the int key of a saved instance of the very model the key points to.
            if type(value) is int:
                params.append(value)
                continue
            if type(value) is target and type(pk := value.pk) is int:
                params.append(pk)
                continue
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
    A keyword given a model instance must compare a relation (``author=user``):
    binding it through the relation's ``get_db_prep_value()`` then checks and
    converts it as ``filter()`` does.
    """
    fields = base.comparison_fields(key[2])
    if fields is None:
        return
    if len(key) > 3 and not all(
        f.is_relation for f, one in zip(fields, key[3], strict=True) if one
    ):
        return  # an instance compared with a column of its own: filter() takes its pk there
    backend = db.backend
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    ops = backend.ops
    ints_as_is = tuple(_binds_ints_as_is(f, ops) for f in fields)
    targets = tuple(
        f.related_model if as_is and isinstance(f, ForeignKey) else None
        for f, as_is in zip(fields, ints_as_is, strict=True)
    )
    cache[key] = (compile_select(query, ops, backend.features), fields, ints_as_is, targets)


def remember_first(pending: Pending, limited: QuerySet[Any]) -> None:
    """Keep ``limited`` (the pending filter ordered and cut to one row) for ``first()``.

    ``limited``'s SQL is the same for any values, as the filter's is: it adds only
    the ordering and the LIMIT. Kept only when its parameters are the filter's
    followed by the LIMIT's, as they are when nothing else binds any.
    """
    statement, params, db = pending[0], pending[1], pending[2]
    backend = db.backend
    compiled = compile_select(limited.query, backend.ops, backend.features)
    count = len(params)
    if compiled.params[:count] != params:
        return
    if len(first_statements) >= CACHE_LIMIT:
        first_statements.clear()
    first_statements[id(statement)] = (statement, compiled, tuple(compiled.params[count:]))
