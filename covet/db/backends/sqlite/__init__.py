"""SQLite through aiosqlite: features, operations, error map, backend with its own pool.

Each connection is an aiosqlite connection (one worker thread each) set up
with WAL, ``busy_timeout``, ``foreign_keys=ON``, ``synchronous=NORMAL`` (FULL
with ``durable=True``) and case-sensitive LIKE. SQLite allows one writer at a
time, so covet queues writers on an asyncio lock instead of letting them fail
with "database is locked": write transactions take the lock and start with
``BEGIN IMMEDIATE``, and a write outside a transaction takes it for the
statement. Readers run concurrently on other connections (WAL).

``sqlite:///:memory:`` becomes a private shared-cache in-memory database
(``file:covet_mem_<id>?mode=memory&cache=shared``) kept alive by an anchor
connection while the Database is connected, so every pooled connection sees
the same data. Shared cache locks whole tables, so its pool defaults to one
connection (``max_size=1``); raise it only for read-mostly workloads.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from covet.db.backends.base import (
    BaseConnection,
    BaseCreation,
    BaseFeatures,
    BaseOperations,
    ColumnAdapter,
    ConnectionPool,
    Converter,
    Option,
    PooledBackend,
    is_read_only_sql,
    json_from_db,
    json_to_db,
    to_bool,
    to_bytes,
    to_decimal,
    to_uuid,
)
from covet.db.backends.base.slots import FifoSlots
from covet.db.backends.sqlite.converters import (
    MAX_EXACT_DECIMAL_DIGITS,
    _date_from_db,
    _date_to_db,
    _datetime_from_db,
    _datetime_to_db,
    _datetimes_to_db,
    _decimal_to_db,
    _time_from_db,
    _time_to_db,
    _uuid_to_db,
)
from covet.db.backends.sqlite.functions import SQLiteFunctionOperations
from covet.db.backends.sqlite.lookups import SQLiteLookups, register_functions
from covet.db.backends.sqlite.session import SESSION_STATEMENTS
from covet.db.exceptions import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    MissingSchemaObjectError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from covet.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence

__all__ = (
    "SQLiteBackend",
    "SQLiteConnection",
    "SQLiteCreation",
    "SQLiteFeatures",
    "SQLiteOperations",
)

T = TypeVar("T")
_VERSION = sqlite3.sqlite_version_info
_memory_ids = itertools.count(1)


class SQLiteFeatures(BaseFeatures):
    """What SQLite (3.31+) can do."""

    # Can INSERT/UPDATE/DELETE ... RETURNING hand back rows? (3.35+)
    supports_returning = _VERSION >= (3, 35)
    # Does a multi-row INSERT ... RETURNING return one row per inserted row?
    can_return_rows_from_bulk_insert = _VERSION >= (3, 35)
    # A new row's rowid is one above the largest (an INSERT's rows consecutive, as nothing
    # else writes during the statement) until the largest possible one is taken.
    bulk_insert_counts_keys_back = True
    # Do CREATE/ALTER/DROP roll back with the transaction?
    supports_transactional_ddl = True
    # Can ALTER TABLE change or drop a column? (no: only ADD/RENAME; tables are rebuilt)
    can_alter_columns = False
    # Is SELECT ... FOR UPDATE meaningful? (no: writers are serialized anyway)
    supports_select_for_update = False
    # Can a transaction pick an isolation level? (always serializable; BEGIN modes instead)
    supports_isolation_levels = False
    # How many bound parameters per statement? (999 before 3.32)
    max_query_params = 32766 if _VERSION >= (3, 32) else 999
    # How many significant digits of a decimal are exact? (NUMERIC keeps a non-integer as a
    # 64-bit double, which holds 15 decimal digits: C's DBL_DIG)
    max_exact_decimal_digits: int = MAX_EXACT_DECIMAL_DIGITS
    # Are writes serialized per process? (yes: the backend's writer queue is a FifoSlots(1),
    # and other processes wait on the file lock for at most busy_timeout)
    serializes_writes_per_process = True
    # Can a SELECT use window functions (OVER)? (3.25+)
    supports_over_clause = _VERSION >= (3, 25)
    # The oldest SQLite covet supports.
    minimum_version = (3, 31)


class SQLiteOperations(SQLiteFunctionOperations, SQLiteLookups, BaseOperations):
    """SQL fragments and value adaptation for SQLite."""

    param_style = "qmark"
    sqlalchemy_dialect = "sqlite"
    telemetry_name = "sqlite"
    # CAST drops the fraction; without it a REAL lands as it is in an INTEGER column.
    truncate_to_integer_sql = "CAST({} AS INTEGER)"
    # The datetime converter always returns an aware datetime in UTC (DateTimeField
    # skips its own normalisation then).
    datetime_converter_returns_utc: ClassVar[bool] = True
    _isolation_levels: ClassVar[Mapping[str, str]] = {
        "immediate": "IMMEDIATE",
        "deferred": "DEFERRED",
        "exclusive": "EXCLUSIVE",
        # SQLite transactions are always serializable; an IMMEDIATE one is the natural fit.
        "serializable": "IMMEDIATE",
    }

    _adapters: ClassVar[Mapping[str, Converter]] = {
        # NUMERIC affinity turns numbers into INTEGER or REAL (a double), never exact text.
        "decimal": _decimal_to_db,
        "date": _date_to_db,
        "time": _time_to_db,
        "datetime": _datetime_to_db,
        "uuid": _uuid_to_db,
        "json": json_to_db,
    }
    _converters: ClassVar[Mapping[str, Converter]] = {
        "bool": to_bool,
        "decimal": to_decimal,
        "date": _date_from_db,
        "time": _time_from_db,
        "datetime": _datetime_from_db,
        "uuid": to_uuid,
        "json": json_from_db,
        "bytes": to_bytes,
    }

    def placeholder(self, index: int) -> str:
        """Return ``?`` (sqlite3's qmark style)."""
        return "?"

    def cast_param(self, placeholder: str, internal_type: str) -> str:
        """Return ``CAST(? AS REAL)`` for a plain ``Decimal`` in an expression, else ``?``.

        SQLite computes decimals as doubles, but the decimal adapter binds an
        integral ``Decimal`` as an integer (exact in comparisons), and integer
        operands make ``/`` an integer division: ``3 / Decimal("4")`` would be 0,
        not 0.75 as on PostgreSQL and MySQL. A double is exact up to the 15
        significant digits SQLite keeps (``max_exact_decimal_digits``).
        """
        return f"CAST({placeholder} AS REAL)" if internal_type == "decimal" else placeholder

    def _offset_only(self, offset: int) -> str:
        # SQLite needs a LIMIT before OFFSET; -1 means "no limit".
        return f"LIMIT -1 OFFSET {offset}"

    def explain_prefix(self, analyze: bool = False) -> str:
        """Return ``EXPLAIN QUERY PLAN`` (SQLite cannot EXPLAIN ANALYZE).

        Raises:
            NotSupportedError: ``analyze`` was requested.
        """
        if analyze:
            raise NotSupportedError("SQLite has no EXPLAIN ANALYZE. Call explain() without it.")
        return "EXPLAIN QUERY PLAN"

    def for_update_sql(
        self, *, nowait: bool = False, skip_locked: bool = False, of: Sequence[str] = ()
    ) -> str:
        """Return an empty string: SQLite locks the whole database for writers already."""
        return ""

    def get_adapter(self, internal_type: str) -> Converter | None:
        """Return the adapter for ``internal_type`` (exact int/float decimals, text dates)."""
        return self._adapters.get(internal_type)

    def bulk_key_check_sql(self, table_sql: str, pk_sql: str) -> str:
        """Render ``SELECT max(pk), EXISTS(<a trigger on the table>) FROM t`` (one row)."""
        return (
            f"SELECT max({pk_sql}), EXISTS(SELECT 1 FROM sqlite_master "
            f"WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE) FROM {table_sql}"
        )

    def get_column_adapter(self, internal_type: str) -> ColumnAdapter | None:
        """Return the whole-column form of the datetime adapter (text in C loops)."""
        return _datetimes_to_db if internal_type == "datetime" else None

    def get_converter(self, internal_type: str) -> Converter | None:
        """Return the converter for ``internal_type`` back to the canonical Python value."""
        return self._converters.get(internal_type)


_ERROR_MAP: tuple[tuple[type[BaseException], type[DatabaseError]], ...] = (
    (sqlite3.IntegrityError, IntegrityError),
    (sqlite3.DataError, DataError),
    (sqlite3.ProgrammingError, ProgrammingError),
    (sqlite3.NotSupportedError, NotSupportedError),
    (sqlite3.InterfaceError, InterfaceError),
    (sqlite3.OperationalError, OperationalError),
    (sqlite3.DatabaseError, DatabaseError),
)
# sqlite3 reports bad SQL as OperationalError; these messages are programming errors.
_PROGRAMMING_HINTS = (
    "syntax error",
    "no such table",
    "no such column",
    "no such function",
    "has no column",
    "already exists",
    "incomplete input",
    "unrecognized token",
)
# Of those, the ones naming a table or column the database lacks (the schema is behind).
_MISSING_SCHEMA_HINTS = ("no such table", "no such column", "has no column")


def _unopenable_file_error(path: Path, url: str, exc: BaseException) -> OperationalError:
    """Build the error for a database file SQLite cannot open, naming what is wrong."""
    directory = path.parent
    hint = "or fix the path in the database URL (DATABASE_URL)"
    if not directory.exists():
        return OperationalError(
            f"The directory {str(directory)!r} of the SQLite database {url!r} does not exist. "
            f"Create it (mkdir -p {shlex.quote(str(directory))}), {hint}."
        )
    if not directory.is_dir():
        return OperationalError(
            f"The SQLite database {url!r} cannot be created in {str(directory)!r}, which is a "
            "file, not a directory. Fix the path in the database URL (DATABASE_URL)."
        )
    if path.is_dir():
        return OperationalError(
            f"The SQLite database path {str(path)!r} of {url!r} is a directory. Name a file "
            f"inside it instead (e.g. {str(path / 'app.db')!r}), {hint}."
        )
    return OperationalError(
        f"Cannot open the SQLite database file {str(path)!r}: {str(exc).rstrip('.')}. Check "
        f"that this user may read and write the file and its directory, {hint}."
    )


def _unicode_lower(value: Any) -> Any:
    # SQLite's built-in lower() only folds ASCII; iexact/icontains must match "É" and "é".
    return value.lower() if isinstance(value, str) else value


def _unicode_upper(value: Any) -> Any:
    # The same for Upper(): "é" becomes "É" as on PostgreSQL and MySQL.
    return value.upper() if isinstance(value, str) else value


class SQLiteConnection(BaseConnection):
    """A pooled aiosqlite connection.

    Writes go through the backend's writer lock. When a write is interrupted
    by cancellation the statement keeps running in the worker thread, so the
    lock stays held until the (discarded) connection is closed: the lock then
    always covers every connection that may hold SQLite's write lock.
    """

    backend: SQLiteBackend

    def __init__(self, backend: SQLiteBackend, raw: Any) -> None:
        super().__init__(backend, raw)
        self.holds_writer = False

    async def _writer(self) -> None:
        lock = self.backend.writer_lock
        if lock.free:
            # Free: nobody queues for it (see FifoSlots), so take it without arming a timer.
            lock.free = 0
        elif not await lock.wait(self.backend.timeout):
            raise OperationalError(
                f"Waited {self.backend.timeout:g}s for the SQLite writer lock of "
                f"{self.backend.url}. Another transaction writes for too long; keep write "
                "transactions short or raise timeout."
            )
        self.holds_writer = True

    def _release_writer(self) -> None:
        if self.holds_writer:
            self.holds_writer = False
            self.backend.writer_lock.release()

    async def _write(self, sql: str, run: Callable[[], Awaitable[T]]) -> T:
        """Run ``run()``, under the writer lock when ``sql`` writes outside a transaction."""
        read_only = is_read_only_sql(sql)
        statements = SESSION_STATEMENTS
        if not read_only and sql not in statements.harmless and statements.changes_session(sql):
            self.session_changed = True  # reset() closes it (see session.py)
        if self.in_transaction or read_only:
            return await run()
        await self._writer()
        try:
            result = await run()
        except Exception:
            self._release_writer()
            raise
        # On cancellation (BaseException) the lock is kept until close(), see the class doc.
        self._release_writer()
        return result

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        # Each aiosqlite call is a round trip to the connection's worker thread, which
        # costs more than the statement itself: use as few as the result needs.
        if is_read_only_sql(sql):

            async def read() -> int:
                # A SELECT's cursor holds a read snapshot until closed: close it now.
                cursor = await self.raw.execute(sql, params)
                count: int = cursor.rowcount
                await cursor.close()
                return max(count, 0)

            return await self._write(sql, read)

        async def run() -> int:
            # sqlite3 runs INSERT/UPDATE/DELETE to completion in execute() and resets
            # the statement, so the cursor holds nothing and needs no closing round trip.
            cursor = await self.raw.execute(sql, params)
            count: int = cursor.rowcount
            return max(count, 0)

        return await self._write(sql, run)

    async def _execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None:
        async def run() -> None:
            await self.raw.executemany(sql, seq_of_params)

        await self._write(sql, run)

    async def _insert(self, sql: str, params: Sequence[Any], returning: bool) -> Any:
        async def run() -> Any:
            if returning:
                # One round trip: execute, read the RETURNING row, finish the statement.
                rows = list(await self.raw.execute_fetchall(sql, params))
                return rows[0][0] if rows else None
            cursor = await self.raw.execute(sql, params)
            return cursor.lastrowid

        return await self._write(sql, run)

    async def _query(self, sql: str, params: Sequence[Any]) -> tuple[Any, list[Any]]:
        async def run() -> tuple[Any, list[Any]]:
            cursor = await self.raw.execute(sql, params)
            rows = await cursor.fetchall()
            description = cursor.description
            await cursor.close()
            return description, list(rows)

        return await self._write(sql, run)

    def _fetch_all(self, sql: str, params: Sequence[Any]) -> Awaitable[list[Sequence[Any]]]:
        # execute_fetchall() reads every row in one round trip and returns sqlite3's
        # fetchall() list; the exhausted statement is reset, so no snapshot stays open.
        if self.in_transaction or is_read_only_sql(sql):
            # A read, or any statement in a transaction (which holds the writer lock
            # already): aiosqlite's awaitable handed back for _run() to await, without a
            # coroutine of this method's or _write()'s closure: the path of every ORM query.
            rows: Awaitable[list[Sequence[Any]]] = self.raw.execute_fetchall(sql, params)
            return rows
        return self._write(sql, lambda: self.raw.execute_fetchall(sql, params))

    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
        rows = await self._fetch_all(sql, params)
        return rows[0] if rows else None

    async def _fetch_described(
        self, sql: str, params: Sequence[Any]
    ) -> tuple[Sequence[str], list[Sequence[Any]]]:
        description, rows = await self._query(sql, params)
        return [column[0] for column in description or ()], rows

    async def _stream(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[tuple[Sequence[str], Sequence[Sequence[Any]]], None]:
        if not self.in_transaction and not is_read_only_sql(sql):
            # A writing statement is not streamed: run it under the writer lock at once.
            async with self._lock:
                names, rows = await self._fetch_described(sql, params)
            yield names, rows
            return
        async with self._lock:
            cursor = await self.raw.execute(sql, params)
        try:
            names = [column[0] for column in cursor.description or ()]
            while True:
                async with self._lock:
                    rows = await cursor.fetchmany(chunk_size)
                if not rows:
                    return
                yield names, rows
        finally:
            # Closing the cursor ends the read snapshot it holds (a snapshot left open would
            # make a later write on this connection fail with "database is locked").
            await asyncio.shield(cursor.close())

    async def _begin(self, isolation: str | None) -> None:
        mode = isolation or "IMMEDIATE"
        if mode != "DEFERRED":
            await self._writer()
        try:
            await self.raw.execute_fetchall(f"BEGIN {mode}")
        except Exception:
            self._release_writer()
            raise

    async def _end(self, statement: str) -> None:
        try:
            await self.raw.execute_fetchall(statement)
        except Exception:
            if not self.raw.in_transaction:
                self._release_writer()
            raise
        self._release_writer()

    async def _commit(self) -> None:
        await self._end("COMMIT")

    async def _rollback(self) -> None:
        await self._end("ROLLBACK")

    async def ping(self) -> None:
        """Check the connection (a trivial query)."""
        await self.raw.execute_fetchall("SELECT 1")

    async def reset(self) -> None:
        """Roll back an open transaction; refuse (so the pool discards) after an interruption.

        A statement interrupted by cancellation keeps running in the worker thread
        and may leave a cursor holding a read snapshot; only closing clears it.
        """
        if self.dirty:
            raise InterfaceError("The connection was interrupted mid-statement.")
        if self.raw.in_transaction:
            await self.raw.execute_fetchall("ROLLBACK")
        self.in_transaction = False
        self._release_writer()
        if self.session_changed:
            self.broken = True  # the pool discards it; the next checkout opens a fresh one

    async def close(self) -> None:
        """Roll back, close the connection and stop its worker thread, then free the writer lock.

        The explicit ROLLBACK matters: sqlite3 closes with ``sqlite3_close_v2()``,
        which keeps a connection that still has live statements (a cursor kept
        alive by a traceback, say) as a "zombie" holding its open transaction and
        its write lock until those statements are garbage collected.
        """
        try:
            # A statement interrupted by cancellation may still be running in the worker
            # thread; this round trip waits for it so that in_transaction is accurate.
            await self.raw.execute_fetchall("SELECT 1")
            if self.raw.in_transaction:
                await self.raw.execute_fetchall("ROLLBACK")
        except Exception:  # noqa: BLE001, S110 - best effort; close() below ends the transaction too
            pass
        try:
            await self.raw.close()
        except Exception:  # noqa: BLE001 - closing is best effort; the thread stops either way
            return
        finally:
            self._release_writer()


# -- creation: alembic's engine, the migration lock, test databases --------------------------


class SQLiteCreation(BaseCreation):
    """SQLite's migration engine and file lock; tests use the configured database as is."""

    # A file or ``:memory:`` URL is private to the run already (the plugin's URL is the test's).
    creates_test_database = False

    def migration_engine(self) -> Any:
        """Return an aiosqlite engine that opens ``BEGIN IMMEDIATE`` transactions around DDL."""
        from sqlalchemy import event
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        path = self.migration_lock_file() or ":memory:"
        engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            poolclass=NullPool,
            connect_args={"timeout": self.backend.settings.get("busy_timeout", 5000) / 1000},
        )

        # pysqlite would not BEGIN before DDL, so a failing revision could not be
        # rolled back; take over transaction control (SQLAlchemy's documented recipe).
        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def inspection_engine(self) -> Any | None:
        """Return a reads-only engine, or None for ``:memory:`` (no second connection sees it).

        Without the migration engine's ``BEGIN IMMEDIATE``, so inspecting the
        schema never takes SQLite's write lock.
        """
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        path = self.migration_lock_file()
        if path is None:
            return None
        return create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)

    def migration_lock_file(self) -> str | None:
        """Return the database file's absolute path (None for ``:memory:``, private anyway).

        SQLite has no session lock, so a run holds an exclusive lock on
        ``<database>.migrate.lock`` and its revisions run in ``BEGIN IMMEDIATE``.

        Raises:
            OperationalError: When the file's directory is missing (or is a file),
                with the same words as a connection would use.
        """
        database = self.backend.url.database
        if database == ":memory:":
            return None
        path = Path(database).resolve()
        if not path.parent.is_dir():
            raise _unopenable_file_error(
                path, str(self.backend.url), FileNotFoundError(str(path.parent))
            )
        return str(path)

    def acquire_migration_lock(self, connection: Any, timeout: float) -> bool:
        """Take nothing: the file lock of :meth:`migration_lock_file` is held already."""
        return True

    def release_migration_lock(self, connection: Any) -> None:
        """Release nothing (see :meth:`acquire_migration_lock`)."""


class SQLiteBackend(PooledBackend[SQLiteConnection]):
    """SQLite through aiosqlite, with covet's pool and single-writer queue."""

    vendor = "sqlite"
    display_name = "SQLite"
    features_class = SQLiteFeatures
    operations_class = SQLiteOperations
    creation_class = SQLiteCreation
    default_min_size = 1
    default_max_size = 5
    options: ClassVar[Mapping[str, Option]] = {
        "durable": Option(bool, False, "synchronous=FULL instead of NORMAL"),
        "busy_timeout": Option(int, 5000, "milliseconds SQLite waits on a locked database"),
        "journal_mode": Option(str, "wal", "the journal mode, e.g. wal or delete"),
    }
    url_form = (
        "{scheme}:///app.db (relative to the current directory), {scheme}:////abs/path/app.db "
        "(absolute) or {scheme}:///:memory:"
    )
    requires_database_name = False
    ops: SQLiteOperations

    def __init__(self, url: Any, **kwargs: Any) -> None:
        path = url.database
        if not path:
            raise ValueError(
                f"The SQLite URL {str(url)!r} names no file. Use "
                f"{self.url_form.format(scheme=url.scheme)}."
            )
        self.memory = path == ":memory:"
        if self.memory and kwargs.get("max_size") is None:
            kwargs["max_size"] = 1
        super().__init__(url, **kwargs)
        self.path = path
        self.writer_lock = FifoSlots(1)
        self._pool = None
        self._anchor: sqlite3.Connection | None = None
        self._target = path

    async def connect(self) -> None:
        """Open the pool (and, for ``:memory:``, the anchor keeping the database alive)."""
        try:
            import aiosqlite  # noqa: F401 - imported only to fail early when missing
        except ImportError as exc:  # pragma: no cover - aiosqlite is a core dependency
            raise MissingDependencyError("aiosqlite") from exc
        try:
            if self.memory:
                self._target = (
                    f"file:covet_mem_{next(_memory_ids)}_{id(self)}?mode=memory&cache=shared"
                )
                self._anchor = sqlite3.connect(self._target, uri=True, check_same_thread=False)
            else:
                # An idle anchor connection (no thread) keeps the WAL open while connected:
                # when the last connection closes SQLite checkpoints and deletes the WAL, and a
                # connection opening during that gets SQLITE_BUSY without waiting busy_timeout.
                self._anchor = sqlite3.connect(self._target, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self.translate_connect_error(exc) from exc
        self.writer_lock = FifoSlots(1)
        self._pool = ConnectionPool(
            self._open,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            name=str(self.url),
        )
        try:
            await self._pool.open()
        except Exception as exc:
            await self.disconnect()
            raise self.translate_connect_error(exc) from exc

    async def _open(self) -> SQLiteConnection:
        """Open and set up one connection; every failure is a covet error.

        The pool calls this at connect and whenever a checkout needs a new
        connection, so a file that became unreachable later (its directory
        removed, say) is reported the same way as at connect.
        """
        try:
            return await self._open_raw()
        except Exception as exc:
            raise self.translate_connect_error(exc) from exc

    async def _open_raw(self) -> SQLiteConnection:
        import aiosqlite

        # Every setup statement is fetched to the end (execute_fetchall): a PRAGMA that
        # returns a row and is left unfinished keeps a read snapshot open, and a later
        # BEGIN IMMEDIATE on this connection then fails at once with "database is locked".

        raw = await aiosqlite.connect(
            self._target, uri=self.memory, isolation_level=None, check_same_thread=False
        )
        try:
            settings = self.settings
            await raw.execute_fetchall(f"PRAGMA busy_timeout = {int(settings['busy_timeout'])}")
            if not self.memory:
                mode = str(settings["journal_mode"]).upper()
                if not mode.isalpha():
                    raise ValueError(f"Invalid journal_mode {mode!r}.")
                await raw.execute_fetchall(f"PRAGMA journal_mode = {mode}")
            await raw.execute_fetchall("PRAGMA foreign_keys = ON")
            await raw.execute_fetchall(
                f"PRAGMA synchronous = {'FULL' if settings['durable'] else 'NORMAL'}"
            )
            # exact/contains/startswith are case-sensitive on every backend.
            await raw.execute_fetchall("PRAGMA case_sensitive_like = ON")
            await raw.create_function("lower", 1, _unicode_lower, deterministic=True)
            await raw.create_function("upper", 1, _unicode_upper, deterministic=True)
            await register_functions(raw)
        except BaseException:
            await raw.close()
            raise
        return SQLiteConnection(self, raw)

    async def disconnect(self) -> None:
        """Close every connection (and their threads) and drop an in-memory database."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None

    # acquire() and release() hand back the pool's own coroutine rather than awaiting it in
    # one of their own: one coroutine fewer on the path of every statement.

    def acquire(self) -> Coroutine[Any, Any, SQLiteConnection]:
        """Check out a connection (awaitable)."""
        pool = self._pool
        if pool is None:
            return self._require_pool().acquire()  # raises the "not connected" error
        return pool.acquire()

    def release(self, conn: BaseConnection) -> Coroutine[Any, Any, None]:
        """Return a connection to the pool (awaitable)."""
        assert isinstance(conn, SQLiteConnection)  # noqa: S101 - internal invariant
        if self._pool is None:
            return conn.close()
        return self._pool.release(conn)

    async def replace_raw(self, conn: BaseConnection) -> None:
        """Reopen the file (a local file cannot go away like a server)."""
        fresh = await self._open()
        await conn.close()
        conn.raw = fresh.raw

    def translate_connect_error(self, exc: BaseException) -> DatabaseError:
        """Name the directory or file SQLite could not open; else :meth:`translate_error`."""
        if isinstance(exc, DatabaseError):
            return exc
        if (
            isinstance(exc, sqlite3.OperationalError)
            and "unable to open" in str(exc)
            and not self.memory
        ):
            return _unopenable_file_error(Path(self.path).resolve(), str(self.url), exc)
        return self.translate_error(exc)

    def translate_error(self, exc: BaseException) -> DatabaseError:
        """Map a sqlite3 exception to the covet class (bad SQL -> ProgrammingError)."""
        message = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and any(
            hint in message for hint in _PROGRAMMING_HINTS
        ):
            if any(hint in message for hint in _MISSING_SCHEMA_HINTS):
                return MissingSchemaObjectError(message)
            return ProgrammingError(message)
        for driver_class, covet_class in _ERROR_MAP:
            if isinstance(exc, driver_class):
                return covet_class(message)
        if isinstance(exc, ValueError):
            return InterfaceError(message)
        return DatabaseError(f"{type(exc).__name__}: {message}")

    def is_disconnect(self, exc: BaseException) -> bool:
        """Tell whether the connection itself is unusable (closed)."""
        return isinstance(exc, ValueError) and "closed" in str(exc).lower()
