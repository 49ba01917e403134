"""Lazy, immutable querysets and the instance persistence they share with models.

A :class:`QuerySet` describes a query; every method returns a new queryset
and nothing runs until it is awaited (a list) or iterated with ``async for``
(rows streamed from the server). Terminal methods such as ``get()``,
``count()`` and ``update()`` are coroutines.

All SQL that the ORM sends goes through the small ``_run_*`` helpers at the
top of this module, which is where :func:`covet.db.testing.assert_num_queries`
counts statements.
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
from collections import namedtuple
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, overload

from covet.db.compiler import (
    AggregateNode,
    CompiledSelect,
    ModelLayout,
    Node,
    Param,
    Query,
    SQLCompiler,
    check_identifier,
    compile_delete,
    compile_insert,
    compile_select,
    compile_update,
    resolve_path,
)
from covet.db.compiler.paths import _CACHE_LIMIT
from covet.db.compiler.query import PLAIN_VALUE_TYPES
from covet.db.database import get_database
from covet.db.exceptions import (
    DatabaseError,
    FieldError,
    IntegrityError,
    ObjectDoesNotExist,
    ProtectedError,
    ValidationError,
)
from covet.db.expressions import Aggregate, Expression, Q
from covet.db.fields import (
    CASCADE,
    PROTECT,
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    Field,
    FloatField,
    ForeignKey,
    IntegerField,
    TextField,
    TimeField,
    UUIDField,
)
from covet.db.models import Model, ModelState
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable, Sequence

    from covet.db.database import Database

    RowBuilder = Callable[[Sequence[Any]], Any]
    RowsBuilder = Callable[[Sequence[Sequence[Any]]], list[Any]]

__all__ = ("QuerySet", "delete_instance", "query_log", "refresh_instance", "save_instance")

T = TypeVar("T")
M = TypeVar("M", bound=Model)

#: When set to a list, every SQL statement the ORM sends is appended to it.
query_log: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "covet_query_log", default=None
)

_MODEL, _DICT, _TUPLE, _FLAT, _NAMED = "model", "dict", "tuple", "flat", "named"


def _log(sql: str) -> None:
    log = query_log.get()
    if log is not None:
        log.append(sql)


async def _run_fetch_all(db: Database, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    _log(sql)
    async with db.connection() as conn:
        return await conn.fetch_all(sql, params)


async def _run_fetch_one(db: Database, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
    _log(sql)
    async with db.connection() as conn:
        return await conn.fetch_one(sql, params)


async def _run_execute(db: Database, sql: str, params: Sequence[Any]) -> int:
    _log(sql)
    async with db.connection() as conn:
        return await conn.execute(sql, params)


async def _run_execute_many(db: Database, sql: str, seq: Sequence[Sequence[Any]]) -> None:
    _log(sql)
    async with db.connection() as conn:
        await conn.execute_many(sql, seq)


async def _run_insert(db: Database, sql: str, params: Sequence[Any], returning: bool) -> Any:
    _log(sql)
    async with db.connection() as conn:
        return await conn.insert(sql, params, returning)


# -- row building --------------------------------------------------------------------------------


def _instance_maker(layout: ModelLayout, alias: str | None) -> Callable[[list[Any]], Model]:
    model = layout.model
    attnames = layout.attnames
    start, end = layout.start, layout.end
    new = object.__new__
    kids = [
        (
            _instance_maker(child, alias),
            child.cache_name or "",
            child.start + child.attnames.index(child.model._meta.pk.attname),
        )
        for child in layout.children
    ]

    def make(vals: list[Any]) -> Model:
        d = dict(zip(attnames, vals[start:end] if start else vals, strict=False))
        if kids or alias is not None:
            # Without either, Model._state makes the same state on first use.
            state = ModelState(alias, False)
            d["_state"] = state
            for kid, name, pk_pos in kids:
                state.cache[name] = kid(vals) if vals[pk_pos] is not None else None
        obj = new(model)
        obj.__dict__ = d
        return obj

    return make


def _builders(qs: QuerySet[Any], compiled: CompiledSelect) -> tuple[RowBuilder, RowsBuilder]:
    """Return the (row, rows) to result functions, built once per query shape, mode and alias."""
    key = (qs._mode, qs._using)
    found = compiled.builders.get(key)
    if found is None:
        found = compiled.builders[key] = _make_builders(qs._mode, qs._using, compiled)
    return found


def _make_builders(
    mode: str, using: str | None, compiled: CompiledSelect
) -> tuple[RowBuilder, RowsBuilder]:
    layout = compiled.layout
    if (
        mode == _MODEL
        and layout is not None
        and not layout.children
        and not layout.start
        and not compiled.names
        and not compiled.converters
    ):
        return _plain_model_builders(layout, using)
    build = _make_row_builder(mode, using, compiled)
    return build, lambda rows: [build(row) for row in rows]


def _plain_model_builders(layout: ModelLayout, alias: str | None) -> tuple[RowBuilder, RowsBuilder]:
    """Build instances of one model (no joins, no annotations) in one loop over the rows.

    The row's values become the instance ``__dict__`` directly; converters run
    only on the columns that have one, and skip NULLs. Rows from the default
    database get no ``_state`` here: ``Model._state`` makes it on first use.
    """
    model = layout.model
    attnames = layout.attnames
    convs = tuple((attnames[i], conv) for i, conv in layout.converters)
    new = object.__new__
    state = ModelState

    def build_rows(rows: Sequence[Sequence[Any]]) -> list[Any]:
        out: list[Any] = []
        append = out.append
        for row in rows:
            # zip() stops at the model's columns (DISTINCT may append ORDER BY ones).
            d = dict(zip(attnames, row, strict=False))
            for name, conv in convs:
                value = d[name]
                if value is not None:
                    d[name] = conv(value)
            if alias is not None:
                d["_state"] = state(alias, False)
            obj = new(model)
            obj.__dict__ = d
            append(obj)
        return out

    def build_row(row: Sequence[Any]) -> Any:
        return build_rows((row,))[0]

    return build_row, build_rows


def _make_row_builder(
    mode: str, using: str | None, compiled: CompiledSelect
) -> Callable[[Sequence[Any]], Any]:
    convs: list[tuple[int, Callable[[Any], Any]]] = list(compiled.converters)
    names = compiled.names
    layout = compiled.layout
    if mode == _MODEL:
        assert layout is not None  # noqa: S101 - internal invariant

        def gather(lay: ModelLayout) -> None:
            convs.extend((lay.start + i, c) for i, c in lay.converters)
            for child in lay.children:
                gather(child)

        gather(layout)
    convs.sort(key=lambda item: item[0])

    def convert(row: Sequence[Any]) -> list[Any]:
        vals = list(row)
        for i, conv in convs:
            v = vals[i]
            if v is not None:
                vals[i] = conv(v)
        return vals

    if mode == _MODEL:
        assert layout is not None  # noqa: S101 - internal invariant
        make = _instance_maker(layout, using)
        if not names:
            return lambda row: make(convert(row))
        ann_start = compiled.names_start

        def build_annotated(row: Sequence[Any]) -> Model:
            vals = convert(row)
            obj = make(vals)
            obj.__dict__.update(zip(names, vals[ann_start : ann_start + len(names)], strict=True))
            return obj

        return build_annotated
    if mode == _DICT:
        return lambda row: dict(zip(names, convert(row), strict=False))
    if mode == _FLAT:
        return lambda row: convert(row)[0]
    if mode == _NAMED:
        row_type = namedtuple("Row", names)  # type: ignore[misc]
        return lambda row: row_type(*convert(row)[: len(names)])
    return lambda row: tuple(convert(row)[: len(names)])


# -- get() statements ---------------------------------------------------------------------------

#: ``get(**kwargs)`` statements: the compiled SELECT and the compared fields (in keyword
#: order), by (the database's ops, the base query's shape, the sorted keywords).
_get_statements: dict[tuple[Any, ...], tuple[CompiledSelect, tuple[Field[Any], ...]]] = {}


def _limited_for_get(qs: QuerySet[T]) -> QuerySet[T]:
    """Make ``qs`` (a fresh clone) fetch at most two rows, unordered, as get() needs."""
    query = qs._query
    if not query.is_sliced:
        query.order_by = ()
        query.high = 2
    return qs


def _get_statement_key(
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
        db = get_database(base._using)
    except ImproperlyConfigured:
        return None  # the general path reports it, after checking the filter
    keys = tuple(sorted(kwargs)) if len(kwargs) > 1 else tuple(kwargs)
    return (db.backend.ops, query.shape(), keys), db


def _remember_get_statement(key: tuple[Any, ...], db: Database, base: Query, query: Query) -> None:
    """Keep the statement of ``query`` (``base`` filtered by ``key``'s keywords) for get()."""
    fields = base.comparison_fields(key[2])
    if fields is None:
        return
    backend = db.backend
    if len(_get_statements) >= _CACHE_LIMIT:
        _get_statements.clear()
    _get_statements[key] = (compile_select(query, backend.ops, backend.features), fields)


# -- the queryset --------------------------------------------------------------------------------


class QuerySet(Generic[T]):
    """A lazy database query over ``model``; clone-on-write.

    Args:
        model: The model class queried.
        query: The query state (a fresh one by default).
        using: The database alias (the default database when None).
    """

    def __init__(
        self, model: type[Model], query: Query | None = None, *, using: str | None = None
    ) -> None:
        self.model = model
        self._query = query if query is not None else Query(model)
        self._using = using
        self._mode = _MODEL
        self._prefetch: tuple[str, ...] = ()
        self._result_cache: list[T] | None = None

    @property
    def query(self) -> Query:
        """Return the query state (treat as read-only)."""
        return self._query

    def _chain(self) -> QuerySet[Any]:
        new: QuerySet[Any] = object.__new__(QuerySet)
        new.model = self.model
        new._query = self._query.clone()  # a manager has its own _chain()
        new._using = self._using
        new._mode = self._mode
        new._prefetch = self._prefetch
        new._result_cache = None
        return new

    def _db(self) -> Database:
        return get_database(self._using)

    def _base(self) -> QuerySet[T]:
        """Return the queryset whose rows this one stands for, without copying it: itself.

        A manager returns its ``get_queryset()`` (see :class:`~covet.db.manager.Manager`).
        """
        return self

    def __repr__(self) -> str:
        return f"<QuerySet {self.model.__name__}>"

    # -- execution -----------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._fetch_all().__await__()

    async def _fetch_all(self) -> list[T]:
        if self._result_cache is not None:
            return list(self._result_cache)
        query = self.query
        if query.empty:
            return []
        db = get_database(self._using)
        backend = db.backend
        compiled = compile_select(query, backend.ops, backend.features)
        rows = await _run_fetch_all(db, compiled.sql, compiled.params)
        results: list[Any] = _builders(self, compiled)[1](rows)
        if self._prefetch and results and self._mode == _MODEL:
            from covet.db.related import prefetch_related_objects

            await prefetch_related_objects(results, *self._prefetch, using=self._using)
        return results

    def __aiter__(self) -> AsyncIterator[T]:
        return self.iterator()

    if not TYPE_CHECKING:
        # Runtime only: type checkers already refuse ``for x in qs`` (there is no __iter__)
        # and would accept it once one is declared. Without it Python would fall back to
        # __getitem__(0), (1), ... (each a coroutine, never an IndexError) and loop forever.
        def __iter__(self) -> NoReturn:
            raise TypeError(
                f"{self!r} cannot be iterated synchronously (for ... in / list()): it runs "
                "a query. Use 'await queryset' for a list, or 'async for obj in queryset' "
                "to stream the rows."
            )

    async def iterator(self, chunk_size: int = 500) -> AsyncIterator[T]:
        """Stream results, fetching ``chunk_size`` rows at a time (the connection is held).

        Raises:
            DatabaseError: ``prefetch_related()`` was used (it needs all rows first).
        """
        if self._prefetch:
            raise DatabaseError(
                "prefetch_related() cannot be combined with streaming (async for). Await the "
                "queryset to get a list, or call fetch_related() per object."
            )
        query = self.query
        if query.empty:
            return
        db = self._db()
        compiled = compile_select(query, db.ops, db.features)
        build = _builders(self, compiled)[0]
        _log(compiled.sql)
        async with db.connection() as conn:
            rows = conn.iterate(compiled.sql, compiled.params, chunk_size)
            async with contextlib.aclosing(rows):
                async for row in rows:
                    yield build(row)

    @overload
    def __getitem__(self, k: int) -> Coroutine[Any, Any, T]: ...
    @overload
    def __getitem__(self, k: slice) -> QuerySet[T]: ...
    def __getitem__(self, k: int | slice) -> QuerySet[T] | Coroutine[Any, Any, T]:
        """Slice to LIMIT/OFFSET (``qs[:10]``), or ``await qs[3]`` for one object.

        Raises:
            ValueError: A negative index or a step.
            IndexError: (when awaited) no row at that index.
        """
        if isinstance(k, slice):
            if k.step not in (None, 1):
                raise ValueError(f"Slice step {k.step!r} is not supported. Slice without a step.")
            start, stop = k.start or 0, k.stop
            if start < 0 or (stop is not None and stop < 0):
                raise ValueError(
                    f"Negative indexing is not supported ({k!r}). Reverse the ordering with "
                    "order_by('-field') and slice from the start."
                )
            clone = self._chain()
            q = clone.query
            low = q.low + start
            high = q.high if stop is None else q.low + stop
            if q.high is not None and high is not None:
                high = min(high, q.high)
            q.low, q.high = low, (max(high, low) if high is not None else None)
            return clone
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"QuerySet indices must be integers or slices, not {k!r}.")
        if k < 0:
            raise ValueError(f"Negative indexing is not supported ({k!r}). Use order_by('-field').")
        sliced = self[k : k + 1]

        async def one() -> T:
            rows = await sliced
            if not rows:
                raise IndexError(f"QuerySet index {k} out of range.")
            return rows[0]

        return one()

    # -- chainable -----------------------------------------------------------------------------

    def all(self) -> QuerySet[T]:
        """Return a copy of this queryset."""
        clone: QuerySet[T] = self._chain()
        clone._result_cache = self._result_cache
        return clone

    def none(self) -> QuerySet[T]:
        """Return a queryset that matches nothing and never queries."""
        clone: QuerySet[T] = self._chain()
        clone.query.empty = True
        return clone

    def using(self, alias: str | None) -> QuerySet[T]:
        """Run on the database with ``alias`` (e.g. ``"replica"``)."""
        clone: QuerySet[T] = self._chain()
        clone._using = alias
        return clone

    def filter(self, *args: Q, **kwargs: Any) -> QuerySet[T]:
        """Keep rows matching every lookup (``field__lookup=value``) and ``Q`` object.

        Raises:
            FieldError: Unknown field or lookup.
            ValidationError: A value that does not fit its field.
        """
        return self._filter(False, args, kwargs)

    def exclude(self, *args: Q, **kwargs: Any) -> QuerySet[T]:
        """Drop rows matching all of the lookups (``NOT (a AND b)``)."""
        return self._filter(True, args, kwargs)

    def _filter(self, negate: bool, args: tuple[Q, ...], kwargs: dict[str, Any]) -> QuerySet[T]:
        # Clone first and check the clone: a manager builds its base queryset for every
        # access to .query, so checking self.query would build it twice.
        clone: QuerySet[T] = self._chain()
        query = clone.query
        if query.is_sliced:
            raise TypeError("Cannot filter a queryset once it is sliced. Filter before slicing.")
        if args:
            q = Q(*args, **kwargs)
            node = query.resolve_q(~q if negate else q)
        elif kwargs:
            # filter(**kwargs) alone, the usual call: no Q tree to build and walk.
            node = query.resolve_kwargs(kwargs, negated=negate)
        else:
            return clone
        if not node.children:
            return clone
        if node.contains_aggregate:
            query.having = query.having.add(node)
        else:
            query.where = query.where.add(node)
        return clone

    def order_by(self, *fields: str) -> QuerySet[T]:
        """Order by fields (``"-field"`` descending, ``"author__name"``, ``"?"`` random).

        ``order_by()`` with no arguments removes any ordering, including ``Meta.ordering``.
        """
        query = self.query
        for term in fields:
            if not isinstance(term, str):
                raise FieldError(f"Invalid order_by term {term!r}. Use a field name string.")
            if term == "?":
                continue
            name = term[1:] if term.startswith("-") else term
            if name not in query.annotations:
                resolve_path(self.model, name.split("__"), allow_lookup=False)
        clone: QuerySet[T] = self._chain()
        clone.query.order_by = tuple(fields)
        return clone

    def reverse(self) -> QuerySet[T]:
        """Reverse the ordering (the primary key order when unordered)."""
        query = self.query
        terms = query.order_by if query.order_by is not None else self.model._meta.ordering
        terms = terms or ("pk",)
        flipped = tuple(t[1:] if t.startswith("-") else ("-" + t if t != "?" else t) for t in terms)
        clone: QuerySet[T] = self._chain()
        clone.query.order_by = flipped
        return clone

    def distinct(self) -> QuerySet[T]:
        """Remove duplicate rows (``SELECT DISTINCT``)."""
        clone: QuerySet[T] = self._chain()
        clone.query.distinct = True
        return clone

    def _check_concrete(self, names: Iterable[str], what: str) -> tuple[str, ...]:
        meta = self.model._meta
        out = []
        for name in names:
            field = meta.get_field(check_identifier(name, "field name"))
            if not field.concrete:
                raise FieldError(f"{what}() takes concrete fields; {name!r} is a relation manager.")
            out.append(field.name)
        return tuple(out)

    def only(self, *fields: str) -> QuerySet[T]:
        """Load only these fields (plus the primary key); others raise until refreshed."""
        clone: QuerySet[T] = self._chain()
        clone.query.only = self._check_concrete(fields, "only")
        return clone

    def defer(self, *fields: str) -> QuerySet[T]:
        """Do not load these fields; reading them raises until refreshed."""
        clone: QuerySet[T] = self._chain()
        clone.query.defer = tuple(
            dict.fromkeys(self.query.defer + self._check_concrete(fields, "defer"))
        )
        return clone

    def select_related(self, *fields: str) -> QuerySet[T]:
        """Load forward foreign keys in the same query with JOINs (``"author__profile"``).

        With no arguments, follow every forward foreign key of the model (one level).

        Raises:
            FieldError: A name is not a forward ForeignKey/OneToOneField chain.
        """
        if not fields:
            fields = tuple(
                f.name for f in self.model._meta.concrete_fields if isinstance(f, ForeignKey)
            )
        for path in fields:
            model = self.model
            for part in path.split("__"):
                field = model._meta.get_field(check_identifier(part, "relation name"))
                if not isinstance(field, ForeignKey) or part != field.name:
                    raise FieldError(
                        f"select_related({path!r}): {model.__name__}.{part} is not a forward "
                        "ForeignKey or OneToOneField. Use prefetch_related() for reverse and "
                        "many-to-many relations."
                    )
                model = field.related_model
        clone: QuerySet[T] = self._chain()
        clone.query.select_related = tuple(dict.fromkeys(self.query.select_related + fields))
        return clone

    def prefetch_related(self, *lookups: str) -> QuerySet[T]:
        """Load relations (reverse FK, many-to-many, FK) with one extra query each.

        Raises:
            FieldError: An unknown relation name.
        """
        from covet.db.related import check_prefetch_path

        for lookup in lookups:
            check_prefetch_path(self.model, lookup)
        clone: QuerySet[T] = self._chain()
        clone._prefetch = tuple(dict.fromkeys(self._prefetch + lookups))
        return clone

    def select_for_update(
        self, *, nowait: bool = False, skip_locked: bool = False, of: Sequence[str] = ()
    ) -> QuerySet[T]:
        """Lock the selected rows until the transaction ends (where the database supports it).

        On SQLite this is a no-op: a write transaction already locks the database.
        """
        clone: QuerySet[T] = self._chain()
        clone.query.for_update = (
            nowait,
            skip_locked,
            tuple(check_identifier(t, "table") for t in of),
        )
        return clone

    def annotate(self, **expressions: Expression) -> QuerySet[T]:
        """Add computed values (``F`` arithmetic, ``Count("posts")``...) as attributes/keys.

        Aggregates over relations GROUP BY the model; a filter() on an aggregate
        annotation becomes HAVING.

        Raises:
            FieldError: A bad alias (not an identifier, or clashing with a field).
        """
        clone: QuerySet[T] = self._chain()
        query = clone.query
        meta = self.model._meta
        for name, expr in expressions.items():
            check_identifier(name, "annotation alias")
            if name in meta.fields_map or name in meta.reverse or name == "pk":
                raise FieldError(
                    f"The annotation alias {name!r} clashes with a field of "
                    f"{self.model.__name__}. Choose another name."
                )
            if not isinstance(expr, Expression):
                raise FieldError(
                    f"annotate({name}=...) takes an expression such as F(), Value() or "
                    f"Count(), not {expr!r}."
                )
            query.annotations[name] = expr.resolve(query)
            if query.values_fields is not None:
                query.values_fields = (*query.values_fields, name)
                if expr.contains_aggregate:
                    query.group_by_values = True
        return clone

    def _values(self, fields: tuple[str, ...], expressions: dict[str, Expression]) -> QuerySet[Any]:
        clone = self.annotate(**expressions) if expressions else self._chain()
        query = clone.query
        if not fields and not expressions:
            fields = (
                *(f.attname for f in self.model._meta.concrete_fields),
                *query.annotations,
            )
        for name in fields:
            if name not in query.annotations:
                resolve_path(self.model, name.split("__"), allow_lookup=False)
        query.values_fields = tuple(dict.fromkeys((*fields, *expressions)))
        return clone

    def values(self, *fields: str, **expressions: Expression) -> QuerySet[dict[str, Any]]:
        """Return dicts of the named fields/paths/annotations instead of instances."""
        clone = self._values(fields, expressions)
        clone._mode = _DICT
        return clone

    def values_list(self, *fields: str, flat: bool = False, named: bool = False) -> QuerySet[Any]:
        """Return tuples (or single values with ``flat=True``, namedtuples with ``named=True``).

        Raises:
            TypeError: ``flat=True`` with more than one field, or ``flat`` with ``named``.
        """
        if flat and named:
            raise TypeError("values_list() takes flat=True or named=True, not both.")
        if flat and len(fields) != 1:
            raise TypeError(f"values_list(flat=True) takes exactly one field, got {fields!r}.")
        clone = self._values(fields, {})
        clone._mode = _FLAT if flat else _NAMED if named else _TUPLE
        return clone

    # -- terminal ------------------------------------------------------------------------------

    async def get(self, *args: Q, **kwargs: Any) -> T:
        """Return the single matching row.

        ``get(field=value, ...)`` with plain values (numbers, strings, dates...)
        reuses the statement of the first such call on the same base query: it
        binds the new values without building and compiling the query again.

        Raises:
            DoesNotExist: No row matches (``Model.DoesNotExist``).
            MultipleObjectsReturned: More than one row matches.
        """
        rows: list[T]
        if args or not kwargs:
            qs = self.filter(*args, **kwargs) if args else self._chain()
            rows = await _limited_for_get(qs)._fetch_all()
        else:
            base = self._base()
            found = _get_statement_key(base, kwargs)
            statement = None if found is None else _get_statements.get(found[0])
            if found is not None and statement is not None:
                (ops, _shape, keys), db = found
                compiled, fields = statement
                params: list[Any] = []
                where = base._query.where
                if where.children:
                    where.collect(ops, params)  # a custom manager's own filters
                for field, name in zip(fields, keys, strict=True):
                    # get_db_prep_value() runs get_prep_value() itself: once is enough.
                    params.append(field.get_db_prep_value(kwargs[name], ops))
                found_rows = await _run_fetch_all(db, compiled.sql, params)
                rows = _builders(base, compiled)[1](found_rows)
            else:
                qs = _limited_for_get(base._filter(False, (), kwargs))
                rows = await qs._fetch_all()
                if found is not None:
                    _remember_get_statement(found[0], found[1], base._query, qs._query)
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise self.model.DoesNotExist(
                f"{self.model.__name__} matching query does not exist "
                f"(filters: {_describe(args, kwargs)})."
            )
        raise self.model.MultipleObjectsReturned(
            f"get() returned more than one {self.model.__name__} (filters: "
            f"{_describe(args, kwargs)}). Filter on a unique field or use first()."
        )

    async def first(self) -> T | None:
        """Return the first row (by primary key when unordered), or None."""
        qs = self if self._ordered() else self.order_by("pk")
        rows: list[T] = await qs[:1]
        return rows[0] if rows else None

    async def last(self) -> T | None:
        """Return the last row (by primary key when unordered), or None."""
        rows: list[T] = await self.reverse()[:1]
        return rows[0] if rows else None

    def _ordered(self) -> bool:
        q = self.query
        return bool(q.order_by if q.order_by is not None else self.model._meta.ordering)

    async def exists(self) -> bool:
        """Return whether any row matches (``SELECT 1 ... LIMIT 1``)."""
        query = self.query
        if query.empty:
            return False
        if query.is_sliced or query.distinct:
            return bool(await self.count())
        db = self._db()
        c = SQLCompiler(query, db.ops, db.features)
        sql = c.exists_sql()
        return await _run_fetch_one(db, sql, c.params) is not None

    async def count(self) -> int:
        """Return the number of matching rows (``SELECT COUNT(*)``)."""
        if self._result_cache is not None:
            return len(self._result_cache)
        query = self.query
        if query.empty:
            return 0
        if query.values_fields is None and not query.annotations:
            query = query.clone()
            query.order_by = ()
        db = self._db()
        c = SQLCompiler(query, db.ops, db.features)
        sql = c.count_sql()
        row = await _run_fetch_one(db, sql, c.params)
        return int(row[0]) if row is not None else 0

    async def aggregate(self, *args: Aggregate, **kwargs: Aggregate) -> dict[str, Any]:
        """Compute aggregates over the matching rows: ``{"total": Decimal(...)}``.

        Positional aggregates are named ``<field>__<function>`` (``price__sum``).

        Raises:
            FieldError: A bad alias or a non-aggregate expression.
            DatabaseError: The queryset is sliced, distinct or annotated with aggregates.
        """
        named: dict[str, Aggregate] = {}
        for agg in args:
            source = getattr(agg.expression, "name", None)
            if not isinstance(source, str):
                raise FieldError(f"Positional aggregate {agg!r} needs a name: use name=...")
            named[f"{source.replace('*', 'all')}__{type(agg).__name__.lower()}"] = agg
        named.update(kwargs)
        query = self.query
        if (
            query.is_sliced
            or query.distinct
            or query.having.children
            or any(n.contains_aggregate for n in query.annotations.values())
        ):
            raise DatabaseError(
                "aggregate() on a sliced, distinct or aggregate-annotated queryset is not "
                "supported. Aggregate the unsliced queryset, or fetch values() and compute."
            )
        query = query.clone()
        nodes: dict[str, Node] = {}
        for name, agg in named.items():
            check_identifier(name, "aggregate alias")
            if not isinstance(agg, Aggregate):
                raise FieldError(f"aggregate({name}=...) takes Count/Sum/Avg/Min/Max, not {agg!r}.")
            nodes[name] = agg.resolve(query)
        if query.empty:
            return {name: (0 if isinstance(n, AggregateNode) and n.function == "COUNT" else None)
                    for name, n in nodes.items()}  # fmt: skip
        db = self._db()
        c = SQLCompiler(query, db.ops, db.features)
        sql = c.aggregate_sql(nodes)
        row = await _run_fetch_one(db, sql, c.params)
        out: dict[str, Any] = {}
        for i, (name, node) in enumerate(nodes.items()):
            value = row[i] if row is not None else None
            conv = node.converter(db.ops)
            out[name] = conv(value) if value is not None and conv is not None else value
            if value is None and isinstance(node, AggregateNode) and node.function == "COUNT":
                out[name] = 0
        return out

    async def explain(self, *, analyze: bool = False) -> str:
        """Return the database's plan for this query, one line per row."""
        db = self._db()
        compiled = compile_select(self.query, db.ops, db.features)
        sql = f"{db.ops.explain_prefix(analyze)} {compiled.sql}"
        rows = await _run_fetch_all(db, sql, compiled.params)
        return "\n".join(" ".join(str(v) for v in row) for row in rows)

    async def update(self, **kwargs: Any) -> int:
        """Set fields on every matching row in one UPDATE; values may be ``F`` expressions.

        Returns:
            The number of rows matched.

        Raises:
            FieldError: An unknown or non-concrete field, or a join in an expression.
            ValidationError: A value that does not fit its field.
        """
        if not kwargs:
            raise TypeError("update() needs at least one field=value.")
        query = self.query
        if query.is_sliced:
            raise TypeError("Cannot update a sliced queryset. Filter by primary key instead.")
        if query.empty:
            return 0
        meta = self.model._meta
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
        db = self._db()
        sql, params, joined = compile_update(query, values, db.ops, db.features)
        if not joined:
            return await _run_execute(db, sql, params)
        pks = await self._pks()
        total = 0
        for batch in _batches(pks, max(1, db.features.max_query_params - len(params))):
            total += (
                await QuerySet(self.model, using=self._using).filter(pk__in=batch).update(**kwargs)
            )
        return total

    async def _pks(self) -> list[Any]:
        pk_qs: QuerySet[Any] = self.values_list("pk", flat=True)
        pk_qs.query.order_by = ()
        return await pk_qs

    async def delete(self) -> int:
        """Delete every matching row; the database applies CASCADE/SET_NULL/RESTRICT.

        Returns:
            The number of rows deleted from this model's table.

        Raises:
            ProtectedError: A ``PROTECT`` foreign key references a matching row.
        """
        query = self.query
        if query.is_sliced:
            raise TypeError("Cannot delete a sliced queryset. Filter by primary key instead.")
        if query.empty:
            return 0
        pk_values: QuerySet[Any] = self.values_list("pk", flat=True)
        pk_values.query.order_by = ()
        await _check_protected(self.model, pk_values, self._using)
        db = self._db()
        base = query.clone()
        base.order_by = ()
        sql, params, joined = compile_delete(base, db.ops, db.features)
        if not joined:
            return await _run_execute(db, sql, params)
        total = 0
        for batch in _batches(await self._pks(), db.features.max_query_params):
            total += await QuerySet(self.model, using=self._using).filter(pk__in=batch).delete()
        return total

    async def create(self, **kwargs: Any) -> T:
        """Create, validate, insert and return an object."""
        obj = self.model(**kwargs)
        await obj.save(force_insert=True, using=self._using)
        return obj  # type: ignore[return-value]

    async def get_or_create(
        self, defaults: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[T, bool]:
        """Return ``(object, created)``, creating it from ``kwargs`` + ``defaults`` if missing.

        Race-safe when ``kwargs`` hit a unique constraint: the INSERT runs in a
        savepoint and, on IntegrityError, the row another task created is fetched.
        """
        from covet.db.transactions import transaction

        try:
            return await self.get(**kwargs), False
        except ObjectDoesNotExist:
            pass
        params = {k: v for k, v in kwargs.items() if "__" not in k}
        params.update(defaults or {})
        try:
            async with transaction(self._using):
                obj = await self.create(**params)
            return obj, True
        except IntegrityError:
            try:
                return await self.get(**kwargs), False
            except ObjectDoesNotExist:
                pass
            raise

    async def update_or_create(
        self, defaults: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[T, bool]:
        """Update the object matching ``kwargs`` with ``defaults``, or create it.

        Runs in a transaction and locks the row (``SELECT ... FOR UPDATE``) where supported.
        """
        from covet.db.transactions import transaction

        defaults = defaults or {}
        async with transaction(self._using):
            try:
                obj = await self.select_for_update().get(**kwargs)
            except ObjectDoesNotExist:
                obj, created = await self.get_or_create(defaults, **kwargs)
                if created:
                    return obj, True
            assert isinstance(obj, Model)  # noqa: S101 - internal invariant
            for name, value in defaults.items():
                setattr(obj, name, value)
            await obj.save(using=self._using)
            return obj, False

    async def bulk_create(self, objs: Iterable[T], *, batch_size: int | None = None) -> list[T]:
        """Validate and INSERT many objects in multi-row statements, in one transaction.

        Primary keys are set on the objects where the database can return them
        (``features.can_return_rows_from_bulk_insert``: PostgreSQL, SQLite >= 3.35);
        on MySQL/MariaDB they stay None (re-query by a natural key if needed).
        """
        from covet.db.transactions import transaction

        items = list(objs)
        if not items:
            return items
        model = self.model
        meta = model._meta
        db = self._db()
        ops, features = db.ops, db.features
        fks = [f for f in meta.concrete_fields if isinstance(f, ForeignKey)]
        # Model.full_clean() cleans every value in place, so the fast row builder may skip a
        # second to_python(); a model with its own full_clean() promises no such thing.
        cleaned = model.full_clean is Model.full_clean
        for obj in items:
            if not isinstance(obj, model):
                raise TypeError(f"bulk_create() got {obj!r}, not a {model.__name__}.")
            if fks:
                _sync_fk_ids(obj, fks)
            obj.full_clean()
        pk_attname = meta.pk.attname
        with_pk = [o for o in items if o.__dict__.get(pk_attname) is not None]
        without_pk = [o for o in items if o.__dict__.get(pk_attname) is None]
        async with transaction(self._using):
            for group, include_pk in ((with_pk, True), (without_pk, False)):
                if not group:
                    continue
                fields = [f for f in meta.concrete_fields if include_pk or not f.primary_key]
                returning = not include_pk and features.can_return_rows_from_bulk_insert
                size = batch_size or ops.bulk_batch_size(len(fields), len(group))
                size = max(1, min(size, features.max_query_params // max(1, len(fields))))
                limit = features.max_cacheable_statement_size
                if batch_size is None and limit is not None and len(group) > 1:
                    size = _cacheable_batch_size(model, fields, ops, returning, size, limit)
                    size = _even_batch_size(len(group), size)
                build = _insert_params_builder(fields, ops, cleaned=cleaned)
                conv = meta.pk.from_db_converter(ops) if returning else None
                for batch in _batches(group, size):
                    sql = compile_insert(model, fields, batch, ops, returning=returning)
                    params = build(batch)
                    if returning:
                        result = await _run_fetch_all(db, sql, params)
                        for o, r in zip(batch, result, strict=True):
                            o.__dict__[pk_attname] = conv(r[0]) if conv is not None else r[0]
                    else:
                        await _run_execute(db, sql, params)
        for o in items:
            o._state.adding = False  # type: ignore[attr-defined]
            o._state.db = self._using  # type: ignore[attr-defined]
        return items

    async def bulk_update(
        self, objs: Iterable[T], fields: Sequence[str], *, batch_size: int | None = None
    ) -> int:
        """Write ``fields`` of each object (one UPDATE per object, pipelined, in a transaction).

        Returns:
            The number of objects written.
        """
        from covet.db.transactions import transaction

        items = list(objs)
        if not fields:
            raise TypeError("bulk_update() needs the names of the fields to write.")
        meta = self.model._meta
        targets = [meta.get_field(check_identifier(n, "field name")) for n in fields]
        if any(f.primary_key or not f.concrete for f in targets):
            raise FieldError("bulk_update() cannot write primary keys or many-to-many fields.")
        if not items:
            return 0
        db = self._db()
        ops = db.ops
        q = ops.quote_name
        sets = ", ".join(f"{q(f.column)} = {ops.placeholder(i)}" for i, f in enumerate(targets, 1))
        sql = (
            f"UPDATE {q(meta.table)} SET {sets} WHERE {q(meta.pk.column)} = "  # noqa: S608 - identifiers are quoted, values are bound
            f"{ops.placeholder(len(targets) + 1)}"
        )
        seq = []
        for obj in items:
            if not isinstance(obj, self.model) or obj.pk is None:
                raise TypeError(
                    f"bulk_update() needs saved {self.model.__name__} objects: {obj!r}."
                )
            obj.full_clean(exclude=[f.name for f in meta.concrete_fields if f not in targets])
            row = [f.get_db_prep_value(f.pre_save(obj, False), ops) for f in targets]
            seq.append([*row, meta.pk.get_db_prep_value(obj.pk, ops)])
        async with transaction(self._using):
            for batch in _batches(seq, batch_size or 1000):
                await _run_execute_many(db, sql, batch)
        return len(items)

    async def in_bulk(
        self, id_list: Iterable[Any] | None = None, *, field_name: str = "pk"
    ) -> dict[Any, T]:
        """Return ``{value: object}`` for the objects whose ``field_name`` is in ``id_list``.

        Raises:
            FieldError: ``field_name`` is not the primary key or a unique field.
        """
        meta = self.model._meta
        field = meta.get_field(check_identifier(field_name, "field name"))
        if not field.unique:
            raise FieldError(f"in_bulk() field_name must be unique; {field_name!r} is not.")
        qs: QuerySet[T] = self
        if id_list is not None:
            values = list(dict.fromkeys(id_list))
            if not values:
                return {}
            qs = self.filter(**{f"{field.name}__in": values})
        objs = await qs
        return {obj.__dict__[field.attname]: obj for obj in objs}


def _describe(args: tuple[Q, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts) or "none"


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _cacheable_batch_size(
    model: type[Model],
    fields: Sequence[Field[Any]],
    ops: Any,
    returning: bool,
    size: int,
    limit: int,
) -> int:
    """Return at most ``size`` rows whose INSERT is at most ``limit`` characters long.

    A driver that keeps prepared statements only below a length (asyncpg) would
    otherwise prepare a large INSERT again on every call, which costs more
    client CPU than a second, cached statement. The average row width of the
    ``size``-row statement bounds the width of the rows of any shorter one
    (placeholder numbers only grow), so the estimate never overshoots.
    """
    full = len(compile_insert(model, fields, range(size), ops, returning=returning))
    if full <= limit or size == 1:
        return size
    one = len(compile_insert(model, fields, range(1), ops, returning=returning))
    per_row = (full - one) / (size - 1)
    return max(1, min(size, int((limit - one) // per_row) + 1))


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
) -> Callable[[Sequence[Model]], list[Any]]:
    """Return a function turning a batch of objects into the flat parameters of an INSERT.

    The per-field decisions (which fields bind their cleaned value as it is,
    which go through the backend's adapter, which need the full
    ``get_db_prep_value(pre_save(obj))``) are made once here, not per object.
    ``cleaned`` says every object has just been through ``Model.full_clean()``.
    """
    attnames = [f.attname for f in fields]
    # (position, field, adapter): fields whose value needs more than reading it.
    adapted: list[tuple[int, Field[Any], Callable[[Any], Any]]] = []
    generic: list[tuple[int, Field[Any]]] = []
    for i, field in enumerate(fields):
        if cleaned and _prepared_after_clean(field):
            adapter = ops.get_adapter(field.internal_type)
            if adapter is not None:
                adapted.append((i, field, adapter))
        else:
            generic.append((i, field))
    width = len(fields)
    read = operator.itemgetter(*attnames) if width > 1 else None

    def build(batch: Sequence[Model]) -> list[Any]:
        params: list[Any] = []
        extend = params.extend
        for obj in batch:
            values = obj.__dict__
            if read is not None:
                try:
                    row = list(read(values))
                except KeyError:  # a deferred field: pre_save() reads it as None
                    row = [values.get(a) for a in attnames]
            else:
                row = [values.get(a) for a in attnames]
            for i, field in generic:
                row[i] = field.get_db_prep_value(field.pre_save(obj, True), ops)
            for i, field, adapter in adapted:
                value = row[i]
                if value is not None:
                    try:
                        row[i] = adapter(value)
                    except ValueError as exc:
                        # As Field.get_db_prep_value(): name the field the adapter refused.
                        raise ValidationError({field.name or "value": [str(exc)]}) from None
            extend(row)
        return params

    return build


async def _check_protected(
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
            await _check_protected(fk.model, child_pks, using, seen | {fk})


# -- instance persistence ------------------------------------------------------------------------


def _sync_fk_ids(obj: Model, fks: Sequence[Field[Any]] | None = None) -> None:
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
    db = get_database(alias)
    ops, features = db.ops, db.features
    meta = obj._meta
    _sync_fk_ids(obj)
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
            count = await _run_execute(db, sql, [*values, meta.pk.get_db_prep_value(pk, ops)])
        else:
            count = 0
        if count or await QuerySet(type(obj), using=alias).filter(pk=pk).exists():
            obj._state.adding = False
            obj._state.db = alias
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
    new_pk = await _run_insert(db, sql, values, use_returning)
    if returning:
        conv = meta.pk.from_db_converter(ops)
        obj.pk = conv(new_pk) if conv is not None and new_pk is not None else new_pk
    obj._state.adding = False
    obj._state.db = alias


async def delete_instance(obj: Model, *, using: str | None) -> int:
    """Delete ``obj``'s row (the implementation of :meth:`Model.delete`)."""
    pk = obj.pk
    if pk is None:
        raise DatabaseError(
            f"Cannot delete an unsaved {type(obj).__name__} (its primary key is None)."
        )
    alias = using if using is not None else obj._state.db
    count = await QuerySet(type(obj), using=alias).filter(pk=pk).delete()
    obj.pk = None
    obj._state.adding = True
    return count


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
