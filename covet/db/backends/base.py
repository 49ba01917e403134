"""What every database backend provides: features, operations, connections, pool.

A dialect module (``sqlite``, ``postgres``, ``mysql``) subclasses the four
classes below. ``BaseFeatures`` and ``BaseOperations`` hold ANSI defaults and
are pure data/string functions that never touch a server, so the SQL compiler
and the compile-only tests use them without a connection. ``BaseConnection``
is the thin, hot-path wrapper the ORM runs statements on; ``BaseBackend`` owns
the pool. :class:`ConnectionPool` is the pool used by the backends whose
driver has no pool we can trust with timeouts and cancellation (SQLite and
MySQL); PostgreSQL uses asyncpg's own pool.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import decimal
import functools
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, TypeVar

from covet.db.exceptions import (
    DatabaseError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    PoolTimeout,
    TransactionManagementError,
)

if TYPE_CHECKING:
    from covet.db.database import DatabaseURL
    from covet.db.params import ParamStyle

__all__ = (
    "LIKE_LOOKUPS",
    "LOOKUPS",
    "BaseBackend",
    "BaseConnection",
    "BaseFeatures",
    "BaseOperations",
    "ConnectionPool",
    "Converter",
    "Option",
    "PoolStats",
    "Record",
    "aborted_transaction_error",
    "disconnect_error",
    "is_read_only_sql",
    "make_index",
    "pool_timeout_error",
    "to_bool",
    "to_bytes",
    "to_decimal",
    "to_uuid",
)

Converter = Callable[[Any], Any]
C = TypeVar("C", bound="BaseConnection")

#: The comparison lookups :meth:`BaseOperations.lookup_sql` renders.
LOOKUPS = (
    "exact",
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "gt",
    "gte",
    "lt",
    "lte",
)
#: The lookups that compile to ``LIKE`` and need :meth:`BaseOperations.prepare_lookup_value`.
LIKE_LOOKUPS = frozenset(
    {"contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"}
)
_READ_PREFIXES = ("SELECT", "VALUES", "SHOW", "EXPLAIN", "DESCRIBE", "TABLE")


@functools.lru_cache(maxsize=2048)
def is_read_only_sql(sql: str) -> bool:
    """Tell whether ``sql`` is a plain read by its first keyword (``SELECT``, ``SHOW``...).

    ``WITH`` is treated as a write because a CTE may wrap ``INSERT``/``UPDATE``;
    the answer errs on the side of "write".
    """
    head = sql.lstrip(" \t\r\n(").split(None, 1)
    return bool(head) and head[0].upper() in _READ_PREFIXES


class Record:
    """A result row with access by column name and by position.

    ``row["name"]``, ``row[0]``, ``dict(row)``, ``row.keys()``, ``len(row)``
    and tuple unpacking (iteration yields the values, like a tuple) all work.
    ``"name" in row`` tests for a column name.
    """

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise KeyError(
                    f"No column {key!r} in this row. Columns: {', '.join(self._index)}."
                ) from None
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of column ``key``, or ``default`` when there is no such column."""
        position = self._index.get(key)
        return default if position is None else self._values[position]

    def keys(self) -> list[str]:
        """Return the column names, in order."""
        return list(self._index)

    def values(self) -> list[Any]:
        """Return the values, in column order."""
        return list(self._values)

    def items(self) -> list[tuple[str, Any]]:
        """Return ``(column, value)`` pairs, in column order."""
        return list(zip(self._index, self._values, strict=True))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self.items() == other.items()
        if isinstance(other, tuple):
            return tuple(self._values) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # rows are compared by value, like tuples with names

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={value!r}" for key, value in self.items())
        return f"<Record {inner}>"


def make_index(names: Sequence[str]) -> dict[str, int]:
    """Map column names to positions; the first of duplicated names wins, like SQL clients do."""
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    return index


@dataclass(frozen=True, slots=True)
class Option:
    """Describe one backend option: its type, default and meaning.

    Options come from ``Database(url, **options)`` or the URL query string;
    strings from the URL are parsed into ``type``.
    """

    type: type
    default: Any
    help: str


class PoolStats(NamedTuple):
    """A snapshot of a pool: open connections, idle ones and the maximum."""

    size: int
    idle: int
    max_size: int


class BaseFeatures:
    """Capabilities of a database; the compiler asks these instead of vendor names."""

    # Can INSERT/UPDATE/DELETE ... RETURNING hand back rows?
    supports_returning: bool = True
    # Does a multi-row INSERT ... RETURNING return one row per inserted row?
    can_return_rows_from_bulk_insert: bool = True
    # Are SAVEPOINT / ROLLBACK TO SAVEPOINT available (nested transaction())?
    supports_savepoints: bool = True
    # Do CREATE/ALTER/DROP run inside a transaction and roll back with it?
    supports_transactional_ddl: bool = False
    # Can a result be streamed from the server instead of buffered client-side?
    supports_server_side_cursors: bool = False
    # Is SELECT ... FOR UPDATE meaningful?
    supports_select_for_update: bool = False
    # Can a transaction choose READ COMMITTED / REPEATABLE READ / SERIALIZABLE?
    supports_isolation_levels: bool = False
    # Is there a native UUID column type?
    has_native_uuid: bool = False
    # Is there a native JSON column type with JSON operators?
    has_native_json: bool = False
    # Is there a native BOOLEAN type (rather than 0/1 integers)?
    has_native_bool: bool = False
    # Is there a case-insensitive ILIKE operator?
    supports_ilike: bool = False
    # Does UNIQUE accept NULLS [NOT] DISTINCT?
    supports_nulls_distinct: bool = False
    # Does a failed statement abort the whole transaction until it is rolled back?
    transaction_aborts_on_error: bool = False
    # How many bound parameters may one statement carry?
    max_query_params: int = 999
    # The oldest server version covet supports, as a tuple.
    minimum_version: tuple[int, ...] = ()


class BaseOperations:
    """Dialect SQL fragments and value adaptation, with ANSI defaults.

    Every method returns SQL text and never interpolates values: values
    travel as parameters in the dialect's placeholder style.

    Args:
        features: The feature flags of the same backend.
    """

    #: The driver's DB-API paramstyle, used to translate raw ``:name`` SQL.
    param_style: ClassVar[ParamStyle] = "qmark"
    #: The quote character around identifiers.
    identifier_quote: ClassVar[str] = '"'
    #: The escape character used in LIKE patterns and how it is written in SQL.
    like_escape_sql: ClassVar[str] = "'\\'"
    #: The binary (case- and accent-sensitive) collation text columns use, if any.
    text_collation: str | None = None

    _isolation_levels: ClassVar[Mapping[str, str]] = {}

    def __init__(self, features: BaseFeatures) -> None:
        self.features = features
        self._quoted: dict[str, str] = {}

    # -- identifiers and placeholders ------------------------------------------------------

    def quote_name(self, name: str) -> str:
        """Quote an identifier, doubling any quote character inside it.

        Args:
            name: A table, column, index or savepoint name.

        Returns:
            The quoted identifier, e.g. ``"my ""odd"" name"``.
        """
        quoted = self._quoted.get(name)
        if quoted is None:
            q = self.identifier_quote
            quoted = q + name.replace(q, q + q) + q
            self._quoted[name] = quoted
        return quoted

    def placeholder(self, index: int) -> str:
        """Return the placeholder for the 1-based parameter ``index``."""
        return "?"

    # -- expressions -----------------------------------------------------------------------

    def concat(self, lhs_sql: str, rhs_sql: str) -> str:
        """Return SQL concatenating two string expressions."""
        return f"({lhs_sql} || {rhs_sql})"

    def cast_to_text(self, sql: str) -> str:
        """Return SQL casting an expression to text."""
        return f"CAST({sql} AS TEXT)"

    def random_function(self) -> str:
        """Return the SQL for a random number (``ORDER BY ?`` shuffles)."""
        return "RANDOM()"

    def lookup_sql(self, lookup: str, lhs: str, rhs: str) -> str:
        """Render a comparison lookup.

        ``exact``/``contains``/``startswith``/``endswith`` are case-sensitive and
        the ``i*`` variants case-insensitive on every backend. The LIKE family
        expects ``rhs`` bound to :meth:`prepare_lookup_value` of the value.

        Args:
            lookup: One of :data:`LOOKUPS`.
            lhs: SQL of the left side, usually a quoted column.
            rhs: SQL of the right side, usually a placeholder.

        Returns:
            The SQL condition.

        Raises:
            NotSupportedError: ``lookup`` is not one of :data:`LOOKUPS`.
        """
        if lookup == "exact":
            return f"{lhs} = {rhs}"
        if lookup == "gt":
            return f"{lhs} > {rhs}"
        if lookup == "gte":
            return f"{lhs} >= {rhs}"
        if lookup == "lt":
            return f"{lhs} < {rhs}"
        if lookup == "lte":
            return f"{lhs} <= {rhs}"
        if lookup == "iexact":
            return f"LOWER({lhs}) = LOWER({rhs})"
        if lookup in LIKE_LOOKUPS:
            if lookup[0] == "i":
                return self.ilike_sql(lhs, rhs)
            return f"{lhs} LIKE {rhs} ESCAPE {self.like_escape_sql}"
        raise NotSupportedError(
            f"Unsupported lookup {lookup!r}. Use one of: {', '.join(LOOKUPS)}, in, isnull, range."
        )

    def ilike_sql(self, lhs: str, rhs: str) -> str:
        """Render a case-insensitive LIKE (the pattern comes from prepare_lookup_value)."""
        return f"LOWER({lhs}) LIKE LOWER({rhs}) ESCAPE {self.like_escape_sql}"

    def prepare_lookup_value(self, lookup: str, value: Any) -> Any:
        """Turn a lookup value into the parameter the lookup SQL expects.

        For the LIKE family, escape the wildcard characters ``%`` and ``_`` and
        the escape character itself, then add the wildcards the lookup needs;
        other lookups get ``value`` unchanged.
        """
        if lookup not in LIKE_LOOKUPS:
            return value
        text = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if lookup.endswith("contains"):
            return f"%{text}%"
        if lookup.endswith("startswith"):
            return f"{text}%"
        return f"%{text}"

    def in_sql(self, lhs: str, placeholders: Sequence[str]) -> str:
        """Render ``lhs IN (...)``; an empty list is a condition that is never true."""
        if not placeholders:
            return "1 = 0"
        return f"{lhs} IN ({', '.join(placeholders)})"

    def isnull_sql(self, lhs: str, is_null: bool) -> str:
        """Render ``IS NULL`` or ``IS NOT NULL``."""
        return f"{lhs} IS NULL" if is_null else f"{lhs} IS NOT NULL"

    def range_sql(self, lhs: str, lo: str, hi: str) -> str:
        """Render an inclusive range, ``lhs BETWEEN lo AND hi``."""
        return f"{lhs} BETWEEN {lo} AND {hi}"

    # -- clauses ----------------------------------------------------------------------------

    def limit_offset(self, limit: int | None, offset: int | None) -> str:
        """Render LIMIT/OFFSET (empty when both are None).

        Raises:
            ValueError: ``limit`` or ``offset`` is negative or not an int.
        """
        for label, value in (("limit", limit), ("offset", offset)):
            # Values are inlined into the SQL, so anything but a plain int is refused.
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"Invalid {label} {value!r}. Use a non-negative integer or None.")
        if limit is None and not offset:
            return ""
        if limit is None:
            return self._offset_only(offset or 0)
        if offset:
            return f"LIMIT {limit} OFFSET {offset}"
        return f"LIMIT {limit}"

    def _offset_only(self, offset: int) -> str:
        return f"OFFSET {offset}"

    def returning(self, columns: Sequence[str]) -> str:
        """Render ``RETURNING col, ...`` for unquoted column names.

        Raises:
            NotSupportedError: The database has no RETURNING.
        """
        features = self.features
        if not (features.supports_returning or features.can_return_rows_from_bulk_insert):
            raise NotSupportedError(
                "This database does not support RETURNING. Check "
                "features.supports_returning before asking for it."
            )
        return "RETURNING " + ", ".join(self.quote_name(column) for column in columns)

    def upsert(self, conflict_columns: Sequence[str], update_columns: Sequence[str]) -> str:
        """Render the clause that turns ``INSERT INTO t (...) VALUES (...)`` into an upsert.

        Args:
            conflict_columns: The unique columns whose conflict triggers the update.
            update_columns: Columns to overwrite with the inserted values; empty means
                "keep the existing row" (insert-or-ignore).

        Returns:
            ``ON CONFLICT (...) DO UPDATE SET col = EXCLUDED.col`` or ``... DO NOTHING``.
        """
        target = ", ".join(self.quote_name(column) for column in conflict_columns)
        conflict = f"ON CONFLICT ({target})" if target else "ON CONFLICT"
        if not update_columns:
            return f"{conflict} DO NOTHING"
        sets = ", ".join(
            f"{self.quote_name(column)} = EXCLUDED.{self.quote_name(column)}"
            for column in update_columns
        )
        return f"{conflict} DO UPDATE SET {sets}"

    def explain_prefix(self, analyze: bool = False) -> str:
        """Return the prefix that turns a query into its plan."""
        return "EXPLAIN ANALYZE" if analyze else "EXPLAIN"

    def for_update_sql(
        self, *, nowait: bool = False, skip_locked: bool = False, of: Sequence[str] = ()
    ) -> str:
        """Render ``FOR UPDATE [OF ...] [NOWAIT | SKIP LOCKED]``.

        Raises:
            NotSupportedError: ``nowait`` and ``skip_locked`` were both asked for.
        """
        if nowait and skip_locked:
            raise NotSupportedError(
                "select_for_update() got both nowait=True and skip_locked=True. Choose one."
            )
        sql = "FOR UPDATE"
        if of:
            sql += " OF " + ", ".join(self.quote_name(name) for name in of)
        if nowait:
            sql += " NOWAIT"
        elif skip_locked:
            sql += " SKIP LOCKED"
        return sql

    def distinct_sql(self, fields: Sequence[str] = ()) -> str:
        """Render DISTINCT; ``fields`` (DISTINCT ON) only where the dialect has it.

        Raises:
            NotSupportedError: ``fields`` were given and the dialect has no DISTINCT ON.
        """
        if fields:
            raise NotSupportedError(
                f"DISTINCT ON fields {list(fields)!r} are only supported on PostgreSQL. "
                "Use distinct() without fields."
            )
        return "DISTINCT"

    def bulk_batch_size(self, n_fields: int, n_objs: int) -> int:
        """Return how many rows one multi-row INSERT may carry within the parameter limit."""
        per_row = max(n_fields, 1)
        return max(1, min(n_objs, self.features.max_query_params // per_row))

    def insert_default_values(self, table_sql: str) -> str:
        """Render an INSERT of a row made only of column defaults."""
        return f"INSERT INTO {table_sql} DEFAULT VALUES"

    def create_table_suffix(self) -> str:
        """Return what goes after ``CREATE TABLE t (...)`` (engine, charset, collation)."""
        return ""

    # -- transactions -----------------------------------------------------------------------

    def savepoint_sql(self, name: str) -> str:
        """Render the statement creating savepoint ``name``."""
        return f"SAVEPOINT {self.quote_name(name)}"

    def release_savepoint_sql(self, name: str) -> str:
        """Render the statement releasing savepoint ``name``."""
        return f"RELEASE SAVEPOINT {self.quote_name(name)}"

    def rollback_to_savepoint_sql(self, name: str) -> str:
        """Render the statement rolling back to savepoint ``name``."""
        return f"ROLLBACK TO SAVEPOINT {self.quote_name(name)}"

    def normalize_isolation(self, level: str | None) -> str | None:
        """Validate a transaction isolation level and return its canonical spelling.

        Raises:
            NotSupportedError: The backend does not offer ``level``.
        """
        if level is None:
            return None
        key = " ".join(level.lower().replace("_", " ").split())
        canonical = self._isolation_levels.get(key)
        if canonical is None:
            choices = ", ".join(repr(name) for name in self._isolation_levels) or "none"
            raise NotSupportedError(
                f"Unsupported transaction isolation level {level!r} for this database. "
                f"Use one of: {choices}."
            )
        return canonical

    # -- values -----------------------------------------------------------------------------

    def get_adapter(self, internal_type: str) -> Converter | None:
        """Return the function turning a canonical Python value into a driver value.

        ``None`` means the driver takes the value as it is (the fast path).
        """
        return None

    def get_converter(self, internal_type: str) -> Converter | None:
        """Return the function turning a driver value back into the canonical value.

        ``None`` means the driver already returns the canonical value.
        """
        return None


# -- shared value helpers ------------------------------------------------------------------


def to_decimal(value: Any) -> Any:
    """Convert an int/float/str from the driver into a Decimal (None stays None)."""
    if value is None or type(value) is decimal.Decimal:
        return value
    return decimal.Decimal(str(value))


def to_bool(value: Any) -> Any:
    """Convert 0/1 into False/True (None stays None)."""
    return None if value is None else bool(value)


def to_uuid(value: Any) -> Any:
    """Convert a str, bytes or UUID subclass into a plain :class:`uuid.UUID`."""
    if value is None or type(value) is uuid.UUID:
        return value
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=value.int)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return uuid.UUID(bytes=raw) if len(raw) == 16 else uuid.UUID(raw.decode("ascii"))
    return uuid.UUID(str(value))


def to_bytes(value: Any) -> Any:
    """Convert memoryview/bytearray into bytes (None stays None)."""
    if value is None or type(value) is bytes:
        return value
    return bytes(value)


# -- connections ---------------------------------------------------------------------------


class _OpLock:
    """Serialize statements on one connection and refuse re-entrant use from the same task.

    Two tasks sharing a transaction (``asyncio.gather`` inside ``transaction()``)
    take turns instead of tripping the driver's "another operation is in
    progress". The same task re-entering (a statement inside an unfinished
    unbuffered iteration) would deadlock, so it gets a clear error instead.
    """

    __slots__ = ("_lock", "_owner")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if self._owner is not None and self._owner is task:
            raise InterfaceError(
                "A statement was run on a connection that is still streaming a result to the "
                "same task. Finish (or break out of) the iterate() loop first, or fetch_all() "
                "the rows you need before running other statements."
            )
        await self._lock.acquire()
        self._owner = task

    async def __aexit__(self, *exc_info: object) -> None:
        self._owner = None
        self._lock.release()

    def locked(self) -> bool:
        """Tell whether a statement is running."""
        return self._lock.locked()


class BaseConnection(abc.ABC):
    """One pooled database connection, as the ORM and raw SQL use it.

    Parameters are positional, already in the dialect's placeholder style
    (``ops.placeholder(i)``). Every driver error is translated into a
    :mod:`covet.db.exceptions` class by the backend's ``translate_error()``.
    Statements on one connection are serialized (see :class:`_OpLock`).
    """

    def __init__(self, backend: BaseBackend, raw: Any) -> None:
        self.backend = backend
        self.raw = raw
        self.in_transaction = False
        #: True until the first statement; only then may a dead connection be swapped.
        self.fresh = True
        #: The connection is unusable (lost, or its protocol state is unknown): discard it.
        self.broken = False
        #: A statement was interrupted (cancelled): reset before reuse.
        self.dirty = False
        self.created_at = time.monotonic()
        self.idle_since = self.created_at
        self.generation = 0
        self._lock = _OpLock()

    # -- the hot path ------------------------------------------------------------------------

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement and return the number of rows it affected (0 when n/a)."""
        return int(await self._run(self._execute, sql, params))

    async def execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter sequence."""
        await self._run(self._execute_many, sql, seq_of_params)

    async def insert(self, sql: str, params: Sequence[Any], returning: bool) -> Any:
        """Run an INSERT and return the new primary key.

        Args:
            sql: The INSERT, with a RETURNING clause appended when ``returning``.
            params: Positional parameters.
            returning: Read the key from the RETURNING row instead of lastrowid.
        """
        return await self._run(self._insert, sql, params, returning)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Run a query and return every row, each indexable by position."""
        rows: list[Sequence[Any]] = await self._run(self._fetch_all, sql, params)
        return rows

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        """Run a query and return its first row, or None."""
        row: Sequence[Any] | None = await self._run(self._fetch_one, sql, params)
        return row

    async def fetch_val(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a query and return the first column of its first row (None without rows)."""
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def fetch_records(self, sql: str, params: Sequence[Any] = ()) -> list[Record]:
        """Run a query and return :class:`Record` rows (access by column name)."""
        names, rows = await self._run(self._fetch_described, sql, params)
        index = make_index(names)
        return [Record(index, row) for row in rows]

    async def iterate(
        self, sql: str, params: Sequence[Any] = (), chunk_size: int = 500
    ) -> AsyncGenerator[Sequence[Any], None]:
        """Stream the rows of a query, ``chunk_size`` at a time from the server.

        Break out of the loop early with :func:`contextlib.aclosing` around the
        iterator to free the server cursor at once rather than at garbage collection.
        """
        # aclosing(): an early exit must close the server cursor now, not at garbage
        # collection, or the connection would go back to the pool with a result still open.
        async with contextlib.aclosing(self._stream_guarded(sql, params, chunk_size)) as chunks:
            async for _names, chunk in chunks:
                for row in chunk:
                    yield row

    async def iterate_records(
        self, sql: str, params: Sequence[Any] = (), chunk_size: int = 500
    ) -> AsyncGenerator[Record, None]:
        """Stream a query like :meth:`iterate`, as :class:`Record` rows."""
        index: dict[str, int] | None = None
        async with contextlib.aclosing(self._stream_guarded(sql, params, chunk_size)) as chunks:
            async for names, chunk in chunks:
                if index is None:
                    index = make_index(names)
                for row in chunk:
                    yield Record(index, row)

    # -- transaction primitives (used by covet.db.transactions) -------------------------------

    async def begin(self, isolation: str | None = None) -> None:
        """Start a transaction (``isolation`` is already normalized by the ops)."""
        await self._run(self._begin, isolation)
        self.in_transaction = True

    async def commit(self) -> None:
        """Commit the current transaction."""
        try:
            await self._run(self._commit)
        finally:
            self.in_transaction = False

    async def rollback(self) -> None:
        """Roll back the current transaction."""
        try:
            await self._run(self._rollback)
        finally:
            self.in_transaction = False

    async def savepoint(self, name: str) -> None:
        """Create savepoint ``name``."""
        await self._run(self._execute, self.backend.ops.savepoint_sql(name), ())

    async def release_savepoint(self, name: str) -> None:
        """Release savepoint ``name``."""
        await self._run(self._execute, self.backend.ops.release_savepoint_sql(name), ())

    async def rollback_to_savepoint(self, name: str) -> None:
        """Roll back to savepoint ``name``."""
        await self._run(self._execute, self.backend.ops.rollback_to_savepoint_sql(name), ())

    # -- machinery ----------------------------------------------------------------------------

    async def _run(self, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async with self._lock:
            try:
                return await method(*args)
            except Exception as exc:
                if self.fresh and await self._recover(exc, method, args):
                    try:
                        return await method(*args)
                    except Exception as exc2:
                        raise self._fail(exc2) from exc2
                raise self._fail(exc) from exc
            except BaseException:
                # Cancelled mid-statement: the protocol state is unknown until reset.
                self.dirty = True
                raise
            finally:
                self.fresh = False

    def _fail(self, exc: Exception) -> DatabaseError:
        if isinstance(exc, DatabaseError):
            return exc
        if self.backend.is_disconnect(exc):
            self.broken = True
            self.backend.on_disconnect()
        return self.backend.translate_error(exc)

    async def _recover(
        self, exc: Exception, method: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> bool:
        """Swap a dead, freshly checked-out connection for a new one, if retrying is safe.

        Retried: the first statement on a connection just taken from the pool,
        outside a transaction, that failed because the connection was dead, when
        either the driver proves the statement was never sent or the statement
        is a read (``SELECT``/``SHOW``/``EXPLAIN``/``VALUES``) or the ``BEGIN`` of a
        transaction. Writes are never re-sent: a lost connection cannot tell
        whether they committed.
        """
        if self.in_transaction or not self.backend.is_disconnect(exc):
            return False
        sql = args[0] if args and isinstance(args[0], str) else ""
        safe = getattr(method, "__name__", "") == "_begin" or is_read_only_sql(sql)
        if not (safe or self.backend.not_sent(exc)):
            return False
        self.backend.on_disconnect()
        try:
            await self.backend.replace_raw(self)
        except Exception:  # noqa: BLE001 - the original error is the one worth reporting
            return False
        return True

    async def _stream_guarded(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[tuple[Sequence[str], Sequence[Sequence[Any]]], None]:
        if chunk_size < 1:
            raise ValueError(f"Invalid chunk_size {chunk_size!r}. Use a positive integer.")
        self.fresh = False
        try:
            async with contextlib.aclosing(self._stream(sql, params, chunk_size)) as stream:
                async for item in stream:
                    yield item
        except DatabaseError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc
        except GeneratorExit:
            # The consumer stopped early (aclose()): no statement was interrupted.
            raise
        except BaseException:
            self.dirty = True
            raise

    # -- what each backend implements ---------------------------------------------------------

    @abc.abstractmethod
    async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    @abc.abstractmethod
    async def _execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    async def _insert(self, sql: str, params: Sequence[Any], returning: bool) -> Any: ...

    @abc.abstractmethod
    async def _fetch_all(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]: ...

    @abc.abstractmethod
    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None: ...

    @abc.abstractmethod
    async def _fetch_described(
        self, sql: str, params: Sequence[Any]
    ) -> tuple[Sequence[str], list[Sequence[Any]]]: ...

    @abc.abstractmethod
    def _stream(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[tuple[Sequence[str], Sequence[Sequence[Any]]], None]:
        """Yield ``(column_names, rows)`` chunks, taking the op lock per server round trip."""

    @abc.abstractmethod
    async def _begin(self, isolation: str | None) -> None: ...

    async def _commit(self) -> None:
        await self._execute("COMMIT", ())

    async def _rollback(self) -> None:
        await self._execute("ROLLBACK", ())

    async def ping(self) -> None:
        """Check that the server still answers (raise when it does not)."""
        await self._execute("SELECT 1", ())

    async def reset(self) -> None:
        """Bring a connection back to a clean, out-of-transaction state before reuse."""
        if self.dirty:
            raise InterfaceError("The connection was interrupted mid-statement.")
        if self.in_transaction:
            await self._rollback()
            self.in_transaction = False

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the underlying driver connection (never raises)."""


# -- the generic pool ----------------------------------------------------------------------


class ConnectionPool(Generic[C]):
    """A bounded LIFO pool with acquire timeout, checkout checks and cancellation safety.

    * ``acquire()`` waits up to ``timeout`` for a free slot, then raises
      :class:`PoolTimeout` naming the pool size.
    * A connection idle longer than ``ping_after`` seconds (0: always) is pinged
      at checkout; one older than ``recycle`` is replaced; a failed ping discards
      it and the checkout moves on to another connection.
    * :meth:`expire` marks every idle connection to be pinged at its next
      checkout (called when any connection reports the server went away).
    * Opening a connection and returning one are shielded from cancellation, so
      a cancelled task never leaks a slot or a half-open connection.

    Args:
        opener: Open and set up one new connection.
        min_size: Connections opened by :meth:`open` and kept when idle.
        max_size: The most connections open at once.
        timeout: Seconds ``acquire()`` waits for a free connection.
        name: Shown in error messages, e.g. ``"sqlite:///app.db"``.
        ping_after: Ping connections idle at least this long; None never pings.
        recycle: Replace connections older than this many seconds; None never.
    """

    def __init__(
        self,
        opener: Callable[[], Awaitable[C]],
        *,
        min_size: int,
        max_size: int,
        timeout: float,
        name: str,
        ping_after: float | None = None,
        recycle: float | None = None,
    ) -> None:
        self._opener = opener
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self.name = name
        self.ping_after = ping_after
        self.recycle = recycle
        self._slots = asyncio.Semaphore(max_size)
        self._idle: deque[C] = deque()
        self._open: set[C] = set()
        self._generation = 0
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drained = asyncio.Event()

    def stats(self) -> PoolStats:
        """Return the current size, idle count and maximum."""
        return PoolStats(len(self._open), len(self._idle), self.max_size)

    async def open(self) -> None:
        """Open ``min_size`` connections up front (fail fast on bad credentials)."""
        for _ in range(self.min_size):
            conn = await self._open_one()
            self._idle.append(conn)

    def expire(self) -> None:
        """Mark every idle connection to be pinged before its next use."""
        self._generation += 1

    async def acquire(self) -> C:
        """Check out a connection, waiting up to ``timeout`` for a free one.

        Raises:
            PoolTimeout: No connection became free in time.
            InterfaceError: The pool is closed.
        """
        if self._closed:
            raise InterfaceError(f"The connection pool of {self.name} is closed. Call connect().")
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await slots.acquire()
            except TimeoutError:
                raise pool_timeout_error(self.name, self.timeout, self.max_size) from None
        else:
            # A free slot: acquire() cannot block, so skip arming the timeout.
            await slots.acquire()
        try:
            return await self._checkout()
        except BaseException:
            self._slots.release()
            raise

    async def _checkout(self) -> C:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if self.recycle is not None and now - conn.created_at > self.recycle:
                self._discard(conn)
                continue
            idle_for = now - conn.idle_since
            must_ping = conn.generation != self._generation or (
                self.ping_after is not None and idle_for >= self.ping_after
            )
            if must_ping:
                try:
                    await conn.ping()
                except asyncio.CancelledError:
                    self._discard(conn)
                    raise
                except Exception:  # noqa: BLE001 - any failure means "do not use it"
                    self._discard(conn)
                    continue
            conn.fresh = True
            return conn
        return await self._open_one()

    async def _open_one(self) -> C:
        task = asyncio.ensure_future(self._opener())
        try:
            conn = await asyncio.shield(task)
        except asyncio.CancelledError:
            # The open goes on in the background; close what it produces.
            task.add_done_callback(self._close_orphan)
            raise
        conn.generation = self._generation
        self._open.add(conn)
        return conn

    def _close_orphan(self, task: asyncio.Future[C]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._spawn(task.result().close())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _discard(self, conn: C) -> None:
        self._open.discard(conn)
        self._spawn(conn.close())
        if self._closed and not self._open:
            self._drained.set()

    async def release(self, conn: C) -> None:
        """Return a connection; reset or discard it as needed. Safe under cancellation."""
        if conn.broken or self._closed or conn not in self._open:
            self._discard(conn)
            self._slots.release()
            return
        if conn.dirty or conn.in_transaction:
            task = asyncio.ensure_future(self._reset_and_return(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            await asyncio.shield(task)
            return
        self._return(conn)

    async def _reset_and_return(self, conn: C) -> None:
        try:
            await conn.reset()
        except Exception:  # noqa: BLE001 - an unresettable connection is simply dropped
            conn.broken = True
        if conn.broken:
            self._discard(conn)
            self._slots.release()
        else:
            self._return(conn)

    def _return(self, conn: C) -> None:
        conn.idle_since = time.monotonic()
        conn.dirty = False
        self._idle.append(conn)
        self._slots.release()

    async def close(self) -> None:
        """Close idle connections, wait up to ``timeout`` for the rest, then close them too."""
        self._closed = True
        while self._idle:
            self._discard(self._idle.pop())
        if self._open:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await self._drained.wait()
        for conn in list(self._open):
            self._discard(conn)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


# -- the backend ---------------------------------------------------------------------------


class BaseBackend(abc.ABC):
    """A database server: its features, operations, pool and error translation.

    Args:
        url: The parsed database URL.
        min_size: Connections kept open (None: the backend default).
        max_size: The most connections open at once (None: the backend default).
        timeout: Seconds to wait for a free connection.
        options: Backend options, already parsed and validated.
    """

    vendor: ClassVar[str]
    display_name: ClassVar[str]
    features_class: ClassVar[type[BaseFeatures]] = BaseFeatures
    operations_class: ClassVar[type[BaseOperations]] = BaseOperations
    default_min_size: ClassVar[int] = 1
    default_max_size: ClassVar[int] = 10
    #: Options accepted by this backend beyond min_size/max_size/timeout.
    options: ClassVar[Mapping[str, Option]] = {}
    #: URL query keys handed to the driver untouched (e.g. PostgreSQL's sslmode).
    driver_query_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        url: DatabaseURL,
        *,
        min_size: int | None,
        max_size: int | None,
        timeout: float,
        options: Mapping[str, Any],
    ) -> None:
        self.url = url
        self.max_size = self.default_max_size if max_size is None else max_size
        # The default min_size shrinks to a small max_size; an explicit one must fit.
        self.min_size = min(self.default_min_size, self.max_size) if min_size is None else min_size
        if self.max_size < 1 or not 0 <= self.min_size <= self.max_size:
            raise ValueError(
                f"Invalid pool size min_size={min_size!r}, max_size={max_size!r}. "
                "Use 0 <= min_size <= max_size and max_size >= 1."
            )
        self.timeout = timeout
        self.settings = dict(options)
        self.features = self.features_class()
        self.ops = self.operations_class(self.features)

    @abc.abstractmethod
    async def connect(self) -> None:
        """Import the driver, open the pool and detect the server's capabilities."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close every connection."""

    @abc.abstractmethod
    async def acquire(self) -> BaseConnection:
        """Check out a connection from the pool."""

    @abc.abstractmethod
    async def release(self, conn: BaseConnection) -> None:
        """Return a connection to the pool (safe under cancellation)."""

    @abc.abstractmethod
    async def replace_raw(self, conn: BaseConnection) -> None:
        """Swap the dead driver connection inside ``conn`` for a new one."""

    @abc.abstractmethod
    def stats(self) -> PoolStats:
        """Return the pool's size, idle count and maximum."""

    @abc.abstractmethod
    def translate_error(self, exc: BaseException) -> DatabaseError:
        """Map a driver exception to the covet exception class."""

    @abc.abstractmethod
    def is_disconnect(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` means the connection (or server) is gone."""

    def not_sent(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` proves the statement never reached the server."""
        return False

    def on_disconnect(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """React to a lost connection: have every idle connection re-checked before use."""

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Translate driver exceptions raised in the block into covet exceptions."""
        try:
            yield
        except DatabaseError:
            raise
        except Exception as exc:
            raise self.translate_error(exc) from exc

    def pool_timeout_error(self) -> PoolTimeout:
        """Build the PoolTimeout raised when no connection became free in time."""
        return pool_timeout_error(str(self.url), self.timeout, self.max_size)


def pool_timeout_error(name: str, timeout: float, max_size: int) -> PoolTimeout:
    """Build the error for a checkout that waited ``timeout`` seconds in vain."""
    return PoolTimeout(
        f"No connection to {name} became free within {timeout:g}s: all {max_size} "
        f"connections of the pool (max_size={max_size}) are in use. Raise max_size or "
        "timeout, or look for connections held too long (a leaked connection() block or a "
        "long transaction)."
    )


def disconnect_error(exc: BaseException, display_name: str) -> OperationalError:
    """Build the OperationalError for a lost connection."""
    return OperationalError(f"The connection to {display_name} was lost: {exc}")


def aborted_transaction_error(message: str) -> TransactionManagementError:
    """Build the error for a statement run inside a transaction that already failed."""
    return TransactionManagementError(
        f"{message}. A statement failed earlier in this transaction, so the database "
        "ignores everything until it is rolled back. Wrap the statement that may fail in "
        "a nested `async with transaction():` block (a savepoint) and catch the error "
        "outside that block."
    )
