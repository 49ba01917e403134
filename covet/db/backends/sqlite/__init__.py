"""SQLite through aiosqlite: features, operations, error map, backend with its own pool.

Each connection is an aiosqlite connection (one worker thread each) set up
with WAL, ``busy_timeout``, ``foreign_keys=ON``, ``synchronous=NORMAL`` (FULL
with ``durable=True``) and case-sensitive LIKE. SQLite allows one writer at a
time, so covet queues writers instead of letting them fail with "database is
locked" (see :mod:`covet.db.backends.sqlite.connection`). Readers run
concurrently on other connections (WAL).

The ORM's statements outside a transaction run on one shared connection,
queued in order on its thread (:class:`SharedSQLiteConnection`): on a loaded
server that costs far less CPU than a pooled connection and thread per
statement. Transactions, streams and ``db.connection()`` blocks use the pool,
which also takes the statements the shared connection refuses (a long query
holds it, or too many are queued). ``shared_connection=false`` turns it off.

``sqlite:///:memory:`` becomes a private shared-cache in-memory database
(``file:covet_mem_<id>?mode=memory&cache=shared``) kept alive by an anchor
connection while the Database is connected, so every pooled connection sees
the same data. Shared cache locks whole tables, so its pool defaults to one
connection (``max_size=1``) and it has no shared connection; raise
``max_size`` only for read-mostly workloads.
"""

from __future__ import annotations

import itertools
import shlex
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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
    PoolStats,
    json_from_db,
    json_to_db,
    released,
    to_bool,
    to_bytes,
    to_decimal,
    to_uuid,
)
from covet.db.backends.base.slots import FifoSlots
from covet.db.backends.sqlite.connection import (
    SHARED_QUEUE_LIMIT,
    SHARED_STALL_SECONDS,
    SharedSQLiteConnection,
    SQLiteConnection,
)
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
    from collections.abc import Coroutine, Mapping, Sequence

__all__ = (
    "SHARED_QUEUE_LIMIT",
    "SHARED_STALL_SECONDS",
    "SQLiteBackend",
    "SQLiteConnection",
    "SQLiteCreation",
    "SQLiteFeatures",
    "SQLiteOperations",
    "SharedSQLiteConnection",
)

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
        "shared_connection": Option(
            bool, True, "run statements outside a transaction on one shared connection"
        ),
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
        #: The connection statements outside a transaction share (None: off, or ``:memory:``).
        self.shared: SharedSQLiteConnection | None = None
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
            if not self.memory and self.settings["shared_connection"]:
                # In-memory databases have none: shared cache locks whole tables.
                self.shared = SharedSQLiteConnection(self, await self._open_raw())
        except Exception as exc:
            await self.disconnect()
            raise self.translate_connect_error(exc) from exc

    async def _open(self) -> SQLiteConnection:
        """Open and set up one pooled connection; every failure is a covet error.

        The pool calls this at connect and whenever a checkout needs a new
        connection, so a file that became unreachable later (its directory
        removed, say) is reported the same way as at connect.
        """
        try:
            return SQLiteConnection(self, await self._open_raw())
        except Exception as exc:
            raise self.translate_connect_error(exc) from exc

    async def _open_raw(self) -> Any:
        """Open an aiosqlite connection and set it up (pragmas, functions)."""
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
        return raw

    async def disconnect(self) -> None:
        """Close every connection (and their threads) and drop an in-memory database."""
        pool, self._pool = self._pool, None
        shared, self.shared = self.shared, None
        if pool is not None:
            await pool.close()
        if shared is not None:
            await shared.close()  # after the statements queued on it
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

    def checkout_now(self, sql: str) -> SQLiteConnection | None:
        """Return the shared connection when it takes ``sql``, else the pool's ready one or None.

        See :class:`SharedSQLiteConnection` for what it takes and why.
        """
        shared = self.shared
        if shared is not None and shared.takes(sql):
            return shared
        return super().checkout_now(sql)

    def checkin_now(self, conn: BaseConnection) -> bool:
        """Take ``conn`` back: the shared connection at once, a pooled one as the pool does."""
        return conn is self.shared or super().checkin_now(conn)

    def stats(self) -> PoolStats:
        """Return the pool statistics, with the statements in flight on the shared connection."""
        stats = self._require_pool().stats()
        shared = self.shared
        return stats if shared is None else stats._replace(shared_in_flight=shared.in_flight)

    def release(self, conn: BaseConnection) -> Coroutine[Any, Any, None]:
        """Return a connection to the pool (awaitable)."""
        assert isinstance(conn, SQLiteConnection)  # noqa: S101 - internal invariant
        if conn is self.shared:
            return released()  # not from the pool: nothing to give back
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
