"""Lazy, immutable querysets.

A :class:`QuerySet` describes a query; every method returns a new queryset
and nothing runs until it is awaited (a list) or iterated with ``async for``
(rows streamed from the server). Terminal methods such as ``get()``,
``count()`` and ``update()`` are coroutines.

The SQL goes through :mod:`covet.db.execution`; rows become results in
:mod:`covet.db.rows`; ``get()`` reuses statements from
:mod:`covet.db.statements`; the writes shared with ``Model`` (save, delete,
bulk INSERT/UPDATE) are in :mod:`covet.db.persistence`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, overload

from covet.db.aggregation import aggregate
from covet.db.compiler import (
    Query,
    SQLCompiler,
    check_identifier,
    compile_select,
    resolve_path,
    value_node,
)
from covet.db.compiler.query import PLAIN_VALUE_TYPES
from covet.db.database import get_database, statement_epoch
from covet.db.exceptions import DatabaseError, FieldError
from covet.db.execution import (
    run_execute,
    run_fetch_all,
    run_fetch_one,
)
from covet.db.expressions import Aggregate, Expression, Q
from covet.db.routing import db_for_read, db_for_write, routers
from covet.db.rows import AS_DICT, AS_FLAT, AS_MODEL, AS_NAMED, AS_TUPLE, row_builders
from covet.db.signals import post_delete, pre_delete
from covet.db.statements import (
    Pending,
    RememberedGet,
    bind_statement,
    bind_update,
    count_statements,
    derive,
    filter_statements,
    first_statements,
    get_statement_key,
    get_statements,
    limited_for_get,
    not_one_error,
    remember_count,
    remember_derived,
    remember_first,
    remember_statement,
    update_statement_key,
    update_statements,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Generator, Iterable, Sequence

    from covet.db.database import Database
    from covet.db.manager import Manager
    from covet.db.models import Model

__all__ = ("QuerySet",)

T = TypeVar("T")


# -- the queryset --------------------------------------------------------------------------------


class QuerySet(Generic[T]):
    """A lazy database query over ``model``; clone-on-write.

    Args:
        model: The model class queried.
        query: The query state (a fresh one by default).
        using: The database alias (the default database when None).
    """

    #: A filter(**kwargs) answered from the statement cache has no _query, but (the compiled
    #: SELECT, its parameters, the database, the queryset filtered, the keywords): awaiting
    #: it runs the statement; anything else builds _query first (see __getattr__).
    _pending: Pending | None = None

    _queryset_class: type[QuerySet[Any]] | None = None  # a Manager's get_queryset() class
    #: A default manager's get(name=value) statements by keyword name (see Manager).
    _remembered_gets: dict[str, RememberedGet] | None = None

    def __init__(
        self, model: type[Model], query: Query | None = None, *, using: str | None = None
    ) -> None:
        self.model = model
        self._query = query if query is not None else Query(model)
        self._using = using
        self._mode = AS_MODEL
        self._prefetch: tuple[str, ...] = ()
        self._result_cache: list[T] | None = None

    @property
    def query(self) -> Query:
        """Return the query state (treat as read-only)."""
        return self._query

    if not TYPE_CHECKING:  # mypy would take every unknown attribute for Any

        def __getattr__(self, name: str) -> Any:
            # Only reached for attributes the instance lacks: the query of a cached
            # filter() (see _filter_cached()), built when something other than awaiting
            # the queryset needs it.
            pending = self._pending
            if name != "_query" or pending is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            self._pending = None
            built = pending[3]._filtered(False, (), pending[4])
            for call in pending[5]:  # the chained calls answered from remembered statements
                built = (
                    built.order_by(*call[1]) if call[0] == "order_by" else built[call[1] : call[2]]
                )
            query = self._query = built._query
            return query

    def _with_pending(self, cls: type[QuerySet[Any]], pending: Pending) -> QuerySet[Any]:
        """Return a queryset of ``cls``, otherwise like this one, that runs ``pending``."""
        new: QuerySet[Any] = object.__new__(cls)
        if cls is not QuerySet:  # a custom QuerySet keeps its own attributes, as _chain() does
            new.__dict__.update(self.__dict__)
            new.__dict__.pop("_query", None)  # built from _pending when needed (see __getattr__)
        new.model, new._using, new._mode = self.model, self._using, self._mode
        new._prefetch, new._result_cache, new._pending = self._prefetch, None, pending
        return new

    def _chain(self) -> QuerySet[Any]:
        cls = type(self)
        new: QuerySet[Any] = object.__new__(cls)
        if cls is not QuerySet:
            new.__dict__.update(self.__dict__)  # a custom QuerySet's own attributes
        new.model = self.model
        new._query = self._query.clone()  # a manager has its own _chain()
        new._using = self._using
        new._mode = self._mode
        new._prefetch = self._prefetch
        new._result_cache = None
        return new

    @classmethod
    def as_manager(cls) -> Manager[Any]:
        """Return a manager making querysets of this class (``MyQuerySet.as_manager()``)."""
        from covet.db.manager import Manager

        return Manager.from_queryset(cls)()

    def _db(self) -> Database:
        """Return the database writes go to (``using``, else the routers' choice)."""
        if self._using is None and routers:
            return get_database(db_for_write(self.model))
        return get_database(self._using)

    def _read_db(self) -> Database:
        """Return the database reads go to (``using``, else the routers' choice)."""
        if self._using is None and routers:
            return get_database(db_for_read(self.model))
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
        pending = self._pending
        if pending is not None:
            compiled, params, db = pending[0], pending[1], pending[2]
            rows = await run_fetch_all(db, compiled.sql, params)
            built: list[T] = row_builders(compiled, self._mode, self._using)[1](rows)
            return built
        query = self.query
        if query.empty:
            return []
        db = self._read_db()
        backend = db.backend
        compiled = compile_select(query, backend.ops, backend.features)
        rows = await run_fetch_all(db, compiled.sql, compiled.params)
        results: list[Any] = row_builders(compiled, self._mode, self._using)[1](rows)
        if self._prefetch and results and self._mode == AS_MODEL:
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
        db = self._read_db()
        compiled = compile_select(query, db.ops, db.features)
        build = row_builders(compiled, self._mode, self._using)[0]
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
            TypeError: An index or a bound that is not an ``int``.
            IndexError: (when awaited) no row at that index.
        """
        if isinstance(k, slice):
            if k.step not in (None, 1):
                raise ValueError(f"Slice step {k.step!r} is not supported. Slice without a step.")
            start, stop = k.start or 0, k.stop
            if type(start) is not int or (stop is not None and type(stop) is not int):
                raise TypeError(f"QuerySet slice bounds must be integers, not {k!r}.")
            if start < 0 or (stop is not None and stop < 0):
                raise ValueError(
                    f"Negative indexing is not supported ({k!r}). Reverse the ordering with "
                    "order_by('-field') and slice from the start."
                )
            pending, call = self._pending, ("slice", start, stop)
            derived = None if pending is None else derive(pending, call)
            if derived is not None:
                return self._with_pending(type(self), derived)
            clone = self._chain()
            clone.query.set_limits(start, stop)
            if pending is not None:
                remember_derived(pending, call, clone.query)
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

    def filter(self, *args: Q | Expression, **kwargs: Any) -> QuerySet[T]:
        """Keep rows matching every lookup (``field__lookup=value``), ``Q`` and condition.

        A condition is a boolean expression: ``filter(Exists(...))``, ``filter(~Exists(...))``.

        Raises:
            FieldError: Unknown field or lookup.
            ValidationError: A value that does not fit its field.
        """
        return self._filter(False, args, kwargs)

    def exclude(self, *args: Q | Expression, **kwargs: Any) -> QuerySet[T]:
        """Drop rows matching all of the lookups (``NOT (a AND b)``)."""
        return self._filter(True, args, kwargs)

    def _filter(
        self, negate: bool, args: tuple[Q | Expression, ...], kwargs: dict[str, Any]
    ) -> QuerySet[T]:
        if negate or args or not kwargs:
            return self._filtered(negate, args, kwargs)
        # filter(field=value, ...), the usual call: bind the values to the statement of
        # the first such call on the same base query, if there was one.
        base = self._base()
        found = get_statement_key(base, kwargs)
        statement = None if found is None else filter_statements.get(found[0])
        if found is None or statement is None:
            clone = self._filtered(negate, args, kwargs)
            if found is not None:
                remember_statement(filter_statements, *found, base._query, clone._query)
            return clone
        # A manager (the default one is its own base) answers with its queryset class.
        params = bind_statement(statement, found[0], base, kwargs)
        pending = (statement[0], params, found[1], base, kwargs, ())
        return base._with_pending(base._queryset_class or type(base), pending)

    def _filtered(
        self, negate: bool, args: tuple[Q | Expression, ...], kwargs: dict[str, Any]
    ) -> QuerySet[T]:
        """Return a clone with the condition added to its query (built and resolved)."""
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

    def order_by(self, *fields: str | Expression) -> QuerySet[T]:
        """Order by fields (``"-field"``, ``"author__name"``, ``"?"`` random) or expressions.

        Expressions: ``Lower("name")``, ``F("x").desc(nulls_last=True)``,
        ``Subquery(...).desc()``. ``order_by()`` with no arguments removes any
        ordering, including ``Meta.ordering``.
        """
        pending, call = self._pending, ("order_by", fields)
        if pending is not None:  # a remembered filter(): field names derive its statement
            for field in fields:
                if type(field) is not str:
                    pending = None
                    break
            derived = None if pending is None else derive(pending, call)
            if derived is not None:
                return self._with_pending(type(self), derived)
        # Resolved on the clone, as in _filter(): a manager builds its base queryset
        # for every access to .query.
        clone: QuerySet[T] = self._chain()
        clone.query.order_by = clone.query.resolve_ordering(fields)
        if pending is not None:
            remember_derived(pending, call, clone.query)
        return clone

    def reverse(self) -> QuerySet[T]:
        """Reverse the ordering (the primary key order when unordered)."""
        clone: QuerySet[T] = self._chain()
        clone.query.order_by = clone.query.reversed_ordering()
        return clone

    def distinct(self, *fields: str) -> QuerySet[T]:
        """Remove duplicate rows; with fields, keep one row per distinct fields (PostgreSQL).

        ``distinct("author")`` is ``DISTINCT ON``: order_by() must start with the
        fields, and other databases raise NotSupportedError when the query runs.
        """
        for name in fields:
            path = check_identifier(name, "field").split("__")
            resolve_path(self.model, path, allow_lookup=False)
        clone: QuerySet[T] = self._chain()
        clone.query.distinct = tuple(fields) or True
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
        clone: QuerySet[T] = self._chain()
        clone.query.add_select_related(fields)
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
        for name, expr in expressions.items():
            clone.query.add_annotation(name, expr)
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
                value_node(self.model, name)  # a field path or a JSON key path
        query.values_fields = tuple(dict.fromkeys((*fields, *expressions)))
        return clone

    def values(self, *fields: str, **expressions: Expression) -> QuerySet[dict[str, Any]]:
        """Return dicts of the named fields/paths/annotations instead of instances."""
        clone = self._values(fields, expressions)
        clone._mode = AS_DICT
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
        clone._mode = AS_FLAT if flat else AS_NAMED if named else AS_TUPLE
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
        rows: list[T] | None = None
        remembered = self._remembered_gets
        if remembered is not None and len(kwargs) == 1 and not args and not routers:
            # Post.objects.get(pk=1) on a default manager: its statement for this keyword,
            # remembered with its database (see RememberedGet), while still of this epoch.
            ((name, value),) = kwargs.items()
            entry = remembered.get(name)
            if entry is not None and entry.epoch == statement_epoch.value:
                if type(value) is int and entry.ints_as_is:
                    rows = entry.build_rows(await run_fetch_all(entry.db, entry.sql, [value]))
                elif type(value) in PLAIN_VALUE_TYPES:
                    # get_db_prep_value() runs get_prep_value() (the check filter() makes).
                    params = [entry.field.get_db_prep_value(value, entry.ops)]
                    rows = entry.build_rows(await run_fetch_all(entry.db, entry.sql, params))
        if rows is None and (args or not kwargs):
            qs = self.filter(*args, **kwargs) if args else self._chain()
            rows = await limited_for_get(qs)._fetch_all()
        elif rows is None:
            epoch = statement_epoch.value  # before the key is derived from the databases
            base = self._base()
            found = get_statement_key(base, kwargs)
            statement = None if found is None else get_statements.get(found[0])
            if found is not None and statement is not None:
                params = bind_statement(statement, found[0], base, kwargs)
                compiled, db = statement[0], found[1]
                build_rows = row_builders(compiled, base._mode, base._using)[1]
                if (
                    remembered is not None
                    and base is self
                    and len(kwargs) == 1
                    and not routers
                    and not base._query.where.children  # binds the keyword's value alone
                ):
                    remembered[next(iter(kwargs))] = RememberedGet(epoch, statement, db, build_rows)
                rows = build_rows(await run_fetch_all(db, compiled.sql, params))
            else:
                qs = limited_for_get(base._filtered(False, (), kwargs))
                rows = await qs._fetch_all()
                if found is not None:
                    remember_statement(get_statements, *found, base._query, qs._query)
        if len(rows) == 1:
            return rows[0]
        raise not_one_error(self.model, rows, args, kwargs)

    async def first(self) -> T | None:
        """Return the first row (by primary key when unordered), or None.

        After a remembered ``filter()`` (plain values), its ``LIMIT 1`` form is reused.
        """
        pending = self._pending
        found = None if pending is None else first_statements.get(id(pending[0]))
        if pending is not None and found is not None and found[0] is pending[0]:
            rows = await run_fetch_all(pending[2], found[1].sql, [*pending[1], *found[2]])
            built: list[T] = row_builders(found[1], self._mode, self._using)[1](rows)
            return built[0] if built else None
        limited = (self if self._ordered() else self.order_by("pk"))[:1]
        if pending is not None:
            remember_first(pending, limited)
        result: list[T] = await limited
        return result[0] if result else None

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
        db = self._read_db()
        c = SQLCompiler(query, db.ops, db.features)
        sql = c.exists_sql()
        return await run_fetch_one(db, sql, c.params) is not None

    async def count(self) -> int:
        """Return the number of matching rows (``SELECT COUNT(*)``)."""
        if self._result_cache is not None:
            return len(self._result_cache)
        pending = self._pending
        found = None if pending is None else count_statements.get(id(pending[0]))
        if pending is not None and found is not None and found[0] is pending[0]:
            row = await run_fetch_one(pending[2], found[1], pending[1])
            return int(row[0]) if row is not None else 0
        query = self.query
        if query.empty:
            return 0
        if query.values_fields is None and not query.annotations:
            query = query.clone()
            query.order_by = ()
        db = self._read_db()
        c = SQLCompiler(query, db.ops, db.features)
        sql = c.count_sql()
        if pending is not None:
            remember_count(pending, sql, c.params)
        row = await run_fetch_one(db, sql, c.params)
        return int(row[0]) if row is not None else 0

    async def aggregate(self, *args: Aggregate, **kwargs: Expression) -> dict[str, Any]:
        """Compute aggregates over the matching rows: ``{"total": Decimal(...)}``.

        Positional aggregates are named ``<field>__<function>`` (``price__sum``).
        See :func:`covet.db.aggregation.aggregate`.

        Raises:
            FieldError: A bad alias or a non-aggregate expression.
            DatabaseError: The queryset is sliced, distinct or annotated with aggregates.
        """
        return await aggregate(self, args, kwargs)

    async def explain(self, *, analyze: bool = False) -> str:
        """Return the database's plan for this query, one line per row."""
        db = self._read_db()
        compiled = compile_select(self.query, db.ops, db.features)
        sql = f"{db.ops.explain_prefix(analyze)} {compiled.sql}"
        rows = await run_fetch_all(db, sql, compiled.params)
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
        # filter(pk=1).update(views=2), the usual call: the UPDATE compiled for the first
        # such call, with the new values. Read _pending before self.query consumes it.
        pending, db = self._pending, self._db()
        key = None if pending is None else update_statement_key(db, pending, kwargs)
        statement = None if key is None else update_statements.get(key)
        if statement is not None and pending is not None:
            return await run_execute(db, statement[0], bind_update(statement, pending, kwargs))
        from covet.db.updates import update_rows

        return await update_rows(self, db, kwargs, key)

    async def delete(self) -> int:
        """Delete every matching row; the database applies CASCADE/SET_NULL/RESTRICT.

        Returns:
            The number of rows deleted from this model's table.

        Raises:
            ProtectedError: A ``PROTECT`` foreign key references a matching row.
        """
        from covet.db.deletion import delete_rows, delete_with_signals

        if pre_delete.receivers_connected or post_delete.receivers_connected:
            return await delete_with_signals(self)
        return await delete_rows(self)

    async def create(self, **kwargs: Any) -> T:
        """Create, validate, insert and return an object."""
        obj = self.model(**kwargs)
        await obj.save(force_insert=True, using=self._using)
        return obj  # type: ignore[return-value]

    async def get_or_create(
        self, defaults: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[T, bool]:
        """Return ``(object, created)``, creating it from ``kwargs`` + ``defaults`` if missing.

        Race-safe when ``kwargs`` hit a unique constraint: the constraint decides and
        the losers of a race get the winner's row (see :mod:`covet.db.upserts`).
        """
        from covet.db.upserts import get_or_create

        return await get_or_create(self, defaults, kwargs)

    async def update_or_create(
        self,
        defaults: dict[str, Any] | None = None,
        create_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[T, bool]:
        """Update the object matching ``kwargs`` with ``defaults``, or create it.

        A missing row is created from ``kwargs`` and ``create_defaults`` (``defaults``
        when None); losing that race to a concurrent task updates the winner's row.
        """
        from covet.db.upserts import update_or_create

        return await update_or_create(self, defaults, create_defaults, kwargs)

    async def bulk_create(
        self,
        objs: Iterable[T],
        *,
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        unique_fields: Sequence[str] = (),
        update_fields: Sequence[str] = (),
    ) -> list[T]:
        """Validate and INSERT many objects in multi-row statements, in one transaction.

        Keys are set where the database returns them (not with ``ignore_conflicts``).
        ``ignore_conflicts`` skips rows hitting a unique constraint (``unique_fields``
        if given); ``update_conflicts`` overwrites ``update_fields`` of the rows whose
        ``unique_fields`` (a unique field or ``unique_together`` set) exist.

        Raises:
            ValueError: Contradicting or incomplete conflict options.
            NotSupportedError: The database cannot limit the conflict to ``unique_fields``.
        """
        from covet.db.persistence import bulk_insert
        from covet.db.upserts import plan_conflicts

        plan = plan_conflicts(
            self.model,
            ignore_conflicts=ignore_conflicts,
            update_conflicts=update_conflicts,
            unique_fields=unique_fields,
            update_fields=update_fields,
        )
        return await bulk_insert(
            self.model, objs, using=self._using, batch_size=batch_size, conflicts=plan
        )

    async def bulk_update(
        self, objs: Iterable[T], fields: Sequence[str], *, batch_size: int | None = None
    ) -> int:
        """Write ``fields`` of each object: one ``UPDATE ... CASE`` per batch, in a transaction.

        Returns:
            The number of rows matched (an object listed twice counts once; its first
            occurrence is written).
        """
        from covet.db.persistence import bulk_write

        return await bulk_write(self.model, objs, fields, using=self._using, batch_size=batch_size)

    async def in_bulk(
        self, id_list: Iterable[Any] | None = None, *, field_name: str = "pk"
    ) -> dict[Any, T]:
        """Return ``{value: object}`` for the objects whose ``field_name`` is in ``id_list``.

        ``None`` maps every object, ``[]`` returns ``{}`` without a query.

        Raises:
            FieldError: ``field_name`` is not the primary key or a unique field.
            TypeError: The queryset is sliced.
        """
        from covet.db.upserts import in_bulk

        return await in_bulk(self, id_list, field_name)
