"""PostgreSQL through asyncpg: features, operations, error map, backend over covet's pool.

Pool defaults (see ``docs/orm/databases.md``): 2 to 10 connections, acquire
timeout ``timeout`` (10 s), ``command_timeout`` 30 s, idle connections closed
after ``max_inactive_connection_lifetime`` (300 s), JSON/JSONB decoded with
``covet._json``. A connection idle for ``pre_ping_after`` seconds (30) is
checked with ``SELECT 1`` before use; when any connection reports the server
went away, every idle connection is re-checked at its next checkout.

covet keeps raw asyncpg connections in its own
:class:`~covet.db.backends.base.ConnectionPool`, as it does for MySQL and
SQLite, rather than in ``asyncpg.create_pool`` (issue 22). asyncpg's pool
costs more than the query on every checkout: ``acquire()`` goes through
``wait_for()`` and a timeout context, ``release()`` through ``shield()`` (a
task, hence an extra event-loop iteration) and re-arms an idle timer. covet's
checkout is a slot decrement and a look at the socket; release resets a
connection only when it needs it: an open transaction is rolled back
(``raw.is_in_transaction()`` also catches a ``BEGIN`` sent as raw SQL), a
connection interrupted mid-statement is discarded, and one whose session
state was changed (``SET``, ``LISTEN``, a temporary table, a session
advisory lock: see :mod:`covet.db.backends.postgres.session`) gets asyncpg's
reset query plus ``DISCARD TEMP`` before the next user sees it.
"""

from __future__ import annotations

import asyncio
import functools
import shlex
from typing import TYPE_CHECKING, Any, ClassVar

from covet import _json
from covet.db.backends.base import (
    BaseConnection,
    BaseFeatures,
    BaseOperations,
    ConnectionPool,
    Converter,
    Option,
    PooledBackend,
    aborted_transaction_error,
    connect_failure_reason,
    disconnect_error,
    login_refused_error,
    missing_database_error,
    released,
    server_address,
    statement_timeout_error,
    to_uuid,
    unreachable_error,
)
from covet.db.backends.postgres.arrays import (
    array_insert_sql,
    array_update_sql,
    json_columns,
    json_insert_sql,
)
from covet.db.backends.postgres.codecs import datetime_from_pg, decode_timestamp, encode_timestamp
from covet.db.backends.postgres.connection import PostgresConnection, direct_record_class
from covet.db.backends.postgres.creation import PostgresCreation
from covet.db.backends.postgres.functions import PostgresFunctionOperations
from covet.db.backends.postgres.lookups import PostgresLookups
from covet.db.backends.postgres.session import note_raw_transaction
from covet.db.exceptions import (
    DatabaseError,
    DatabaseUnavailableError,
    DataError,
    IntegrityError,
    InterfaceError,
    MissingSchemaObjectError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    TransactionManagementError,
    TransactionRollbackError,
)
from covet.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping, Sequence

    from covet.db.database import DatabaseURL

__all__ = (
    "PostgresBackend",
    "PostgresConnection",
    "PostgresCreation",
    "PostgresFeatures",
    "PostgresOperations",
)


class PostgresFeatures(BaseFeatures):
    """What PostgreSQL (12+) can do."""

    # Can text and JSON values hold the NUL character U+0000? (text and jsonb refuse it)
    supports_nul_in_text = False
    # Can INSERT/UPDATE/DELETE ... RETURNING hand back rows?
    supports_returning = True
    # Does a multi-row INSERT ... RETURNING return one row per inserted row?
    can_return_rows_from_bulk_insert = True
    # Do CREATE/ALTER/DROP roll back with the transaction?
    supports_transactional_ddl = True
    # Is SELECT ... FOR UPDATE meaningful?
    supports_select_for_update = True
    # Can SELECT ... FOR UPDATE skip locked rows? (9.5+)
    has_select_for_update_skip_locked = True
    # Can a transaction choose its isolation level?
    supports_isolation_levels = True
    # Does a failed statement abort the transaction? ("current transaction is aborted")
    transaction_aborts_on_error = True
    # Can a bulk INSERT take one array parameter per column? (INSERT ... SELECT FROM unnest)
    can_bulk_insert_arrays = True
    # Can bulk_update() join on unnest(...) arrays?
    can_bulk_update_arrays = True
    # How many bound parameters per statement? (the protocol's Int16 count)
    max_query_params = 32767
    # How long may a statement be and still stay prepared? (asyncpg's default
    # max_cacheable_statement_size, 15 KiB: longer ones are prepared anew on every call)
    max_cacheable_statement_size = 15 * 1024
    # Can SELECT DISTINCT ON (...) keep the first row of each group?
    can_distinct_on_fields = True
    # Has the database array columns? (ArrayField)
    supports_array_field = True
    # The oldest PostgreSQL covet supports.
    minimum_version = (12,)


class PostgresOperations(PostgresFunctionOperations, PostgresLookups, BaseOperations):
    """SQL fragments and value adaptation for PostgreSQL."""

    param_style = "numeric"
    sqlalchemy_dialect = "postgresql"
    telemetry_name = "postgresql"
    # datetime_from_pg() already yields aware UTC datetimes: DateTimeField reads with it
    # alone, one call per value instead of two (20 rows of filter_20: 20 calls fewer).
    datetime_converter_returns_utc: ClassVar[bool] = True
    _isolation_levels: ClassVar[Mapping[str, str]] = {
        "read committed": "READ COMMITTED",
        "repeatable read": "REPEATABLE READ",
        "serializable": "SERIALIZABLE",
    }
    _converters: ClassVar[Mapping[str, Converter]] = {
        "uuid": to_uuid,  # asyncpg's own UUID subclass -> uuid.UUID
        "datetime": datetime_from_pg,
    }
    # The SQL types of parameters that nothing else types (see cast_param()): plain
    # numbers in expressions, and the branches of a CASE, where PostgreSQL would read an
    # untyped $1 as text.
    _param_casts: ClassVar[Mapping[str, str]] = {
        "int": "BIGINT",
        "float": "DOUBLE PRECISION",
        "decimal": "NUMERIC",
        "str": "TEXT",
        "bool": "BOOLEAN",
        "date": "DATE",
        "time": "TIME",
        "datetime": "TIMESTAMPTZ",
        "uuid": "UUID",
        "bytes": "BYTEA",
    }

    # The array element type each value kind is sent as by array_insert_sql(). The
    # server converts to the column's own type with its assignment casts, which check as
    # INSERT ... VALUES does: bigint into an int4 column fails when out of range, text into
    # varchar(n) fails when too long (never truncated), numeric rounds to the column scale.
    # JSON travels as text (covet's codec is registered for json/jsonb, not their arrays,
    # and asyncpg would take a JSON list for a nested array) and is cast to jsonb, which
    # json columns accept too (jsonb -> json is an assignment cast).
    _array_types: ClassVar[Mapping[str, str]] = {
        "int": "bigint",
        "str": "text",
        "float": "double precision",
        "decimal": "numeric",
        "bool": "boolean",
        "date": "date",
        "time": "time",
        "datetime": "timestamptz",
        "uuid": "uuid",
        "bytes": "bytea",
        "json": "text",
    }
    _array_casts: ClassVar[Mapping[str, str]] = {"json": "jsonb"}
    _array_adapters: ClassVar[Mapping[str, Converter]] = {"json": lambda v: _encode_json(v)}

    def array_insert_sql(
        self, table_sql: str, columns_sql: Sequence[str], internal_types: Sequence[str]
    ) -> str | None:
        """Render ``INSERT INTO t (a, b) SELECT * FROM unnest($1::bigint[], $2::text[])``."""
        args = (table_sql, columns_sql, internal_types)
        return array_insert_sql(*args, self._array_types, self._array_casts)

    def json_insert_sql(
        self, table_sql: str, columns_sql: Sequence[str], internal_types: Sequence[str]
    ) -> str | None:
        """Render the INSERT taking each column as a JSON array (see ``arrays.json_columns``)."""
        args = (table_sql, columns_sql, internal_types)
        return json_insert_sql(*args, self._array_types, self._array_casts)

    def json_columns(self, columns: Sequence[list[Any]], types: Sequence[str]) -> list[str] | None:
        """Write each column as a JSON array for :meth:`json_insert_sql`, or None."""
        return json_columns(columns, types)

    def array_update_sql(
        self, table_sql: str, pk_sql: str, columns_sql: Sequence[str], internal_types: Sequence[str]
    ) -> str | None:
        """Render ``UPDATE t SET a = v.c1 FROM unnest($1::bigint[], ...) AS v(k, c1)``."""
        args = (table_sql, pk_sql, columns_sql, internal_types)
        return array_update_sql(*args, self._array_types, self._array_casts)

    def get_array_adapter(self, internal_type: str) -> Converter | None:
        """Return what turns a value into the element array_insert_sql() sends (None: as is)."""
        return self._array_adapters.get(internal_type)

    def placeholder(self, index: int) -> str:
        """Return ``$index`` (asyncpg's numbered style)."""
        return f"${index}"

    def cast_param(self, placeholder: str, internal_type: str) -> str:
        """Return ``CAST($n AS type)`` for a number that must keep its Python type.

        PostgreSQL infers an untyped parameter from the other operand: in
        ``int4_col * $1`` the parameter becomes an int4, and asyncpg then
        truncates ``Decimal("2.5")`` or ``2.5`` to 2 without an error.
        """
        sql_type = self._param_casts.get(internal_type)
        return placeholder if sql_type is None else f"CAST({placeholder} AS {sql_type})"

    def case_value(self, placeholder: str, internal_type: str) -> str:
        """Return ``CAST($n AS type)``: a bare parameter in ``THEN`` would be typed text."""
        # The wide type the array INSERT sends: assigning it checks range and length.
        sql_type = self._array_types.get(internal_type)
        sql_type = self._array_casts.get(internal_type, sql_type)
        return placeholder if sql_type is None else f"CAST({placeholder} AS {sql_type})"

    def ilike_sql(self, lhs: str, rhs: str) -> str:
        """Render ``ILIKE`` (Unicode-aware under the database's ctype)."""
        return f"{lhs} ILIKE {rhs} ESCAPE {self.like_escape_sql}"

    def distinct_sql(self, fields: Sequence[str] = ()) -> str:
        """Render ``DISTINCT`` or ``DISTINCT ON (...)``."""
        if fields:
            return "DISTINCT ON (" + ", ".join(fields) + ")"
        return "DISTINCT"

    def get_converter(self, internal_type: str) -> Converter | None:
        """Return the converter for ``internal_type`` (asyncpg decodes most types already)."""
        return self._converters.get(internal_type)


def _error_map() -> tuple[tuple[type[BaseException], type[DatabaseError]], ...]:
    import asyncpg

    exc = asyncpg.exceptions
    return (
        (exc.IntegrityConstraintViolationError, IntegrityError),
        (exc.DataError, DataError),
        (exc.InvalidTextRepresentationError, DataError),
        # 42P01 / 42703, before their base class SyntaxOrAccessError.
        (exc.UndefinedTableError, MissingSchemaObjectError),
        (exc.UndefinedColumnError, MissingSchemaObjectError),
        (exc.SyntaxOrAccessError, ProgrammingError),
        (exc.UndefinedFunctionError, ProgrammingError),
        (exc.InvalidTransactionStateError, TransactionManagementError),
        (exc.FeatureNotSupportedError, NotSupportedError),
        (exc.TransactionRollbackError, TransactionRollbackError),  # serialization failure, deadlock
        (exc.QueryCanceledError, OperationalError),
        (exc.LockNotAvailableError, OperationalError),  # 55P03: NOWAIT found a lock
        (exc.InsufficientResourcesError, OperationalError),
        # 57P01-57P05 (admin/crash shutdown, cannot connect now...): the server goes away.
        (exc.OperatorInterventionError, DatabaseUnavailableError),
        (exc.PostgresConnectionError, DatabaseUnavailableError),
        (exc.PostgresError, DatabaseError),
        (asyncpg.DataError, DataError),  # client-side: a parameter of the wrong type
        (asyncpg.InterfaceError, InterfaceError),
    )


_error_map_cached = functools.cache(_error_map)


def _is_nul_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` is PostgreSQL refusing U+0000 in text (22021) or jsonb (22P05)."""
    import asyncpg

    exceptions = asyncpg.exceptions
    message = str(exc)
    if isinstance(exc, exceptions.CharacterNotInRepertoireError):
        return "0x00" in message
    return isinstance(exc, exceptions.UntranslatableCharacterError) and "\\u0000" in message


def _gone(message: str) -> bool:
    """Tell whether an asyncpg InterfaceError says the connection is no longer usable."""
    return "connection is closed" in message


def _createdb_command(url: DatabaseURL) -> str:
    """Return the ``createdb`` command line that creates the URL's database."""
    args = ["createdb"]
    if url.host:
        args += ["-h", url.host, "-p", str(url.port or 5432)]
    elif url.port:
        args += ["-p", str(url.port)]
    if url.username:
        args += ["-U", url.username]
    args.append(url.database)
    return shlex.join(args)


def _encode_json(value: Any) -> str:
    return _json.dumps(value).decode()


class PostgresBackend(PooledBackend[PostgresConnection]):
    """PostgreSQL through asyncpg connections in covet's pool, with pre-ping and re-check."""

    vendor = "postgres"
    display_name = "PostgreSQL"
    features_class = PostgresFeatures
    operations_class = PostgresOperations
    creation_class = PostgresCreation
    default_min_size = 2
    default_max_size = 10
    options: ClassVar[Mapping[str, Option]] = {
        "command_timeout": Option(float, 30.0, "seconds one statement may run"),
        "max_inactive_connection_lifetime": Option(
            float, 300.0, "seconds before an idle connection is closed"
        ),
        "statement_cache_size": Option(int, 100, "prepared statements cached per connection"),
        "search_path": Option(str, None, "the schema search path, e.g. 'app,public'"),
        "pre_ping_after": Option(float, 30.0, "ping connections idle at least this long"),
        "server_settings": Option(dict, None, "extra server settings for every connection"),
    }
    driver_query_keys = frozenset(
        {
            "sslmode",
            "sslrootcert",
            "sslcert",
            "sslkey",
            "sslpassword",
            "application_name",
            "connect_timeout",
            "target_session_attrs",
            "passfile",
            "service",
        }
    )
    ops: PostgresOperations

    def __init__(self, url: Any, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._pool = None
        self._connect_kwargs: dict[str, Any] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        #: Run on every new connection and after a reset (covet's statement_timeout).
        self._session_sql = ""

    async def connect(self) -> None:
        """Open the pool's ``min_size`` connections and check one out once."""
        try:
            import asyncpg  # noqa: F401 - imported only to fail early when missing
        except ImportError as exc:
            raise MissingDependencyError("asyncpg", extra="postgres") from exc
        settings = self.settings
        server_settings = dict(settings["server_settings"] or {})
        if settings["search_path"]:
            server_settings["search_path"] = settings["search_path"]
        server_settings.setdefault("application_name", "covet")
        command_timeout = settings["command_timeout"]
        self._session_sql = ""
        if command_timeout and "statement_timeout" not in server_settings:
            # The server cancels a statement after command_timeout (QueryCanceledError,
            # translated to the timeout OperationalError). asyncpg's own command_timeout
            # would arm and cancel a timer around every statement, about 10 µs of CPU
            # each (issue 22); the watchdog below covers a server that stops answering.
            # A SET after connecting, not a startup parameter: PgBouncer refuses startup
            # parameters it does not track (ignore_startup_parameters).
            milliseconds = max(1, round(command_timeout * 1000))
            self._session_sql = f"SET statement_timeout = {milliseconds}"
        dsn = self.url.render_as_string(hide_password=False)
        # asyncpg reads the driver keys (sslmode...) from the DSN query itself.
        covet_keys = set(self.url.query) - self.driver_query_keys
        if covet_keys:
            dsn = self.url.without_query()
            passthrough = {k: v for k, v in self.url.query.items() if k in self.driver_query_keys}
            if passthrough:
                import urllib.parse

                dsn += "?" + urllib.parse.urlencode(passthrough)
        self._connect_kwargs = {
            "dsn": dsn.replace("postgresql+asyncpg://", "postgresql://", 1),
            "statement_cache_size": settings["statement_cache_size"],
            "server_settings": server_settings,
            "timeout": self.timeout,
        }
        lifetime = settings["max_inactive_connection_lifetime"]
        pool: ConnectionPool[PostgresConnection] = ConnectionPool(
            self._open,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            name=str(self.url),
            ping_after=settings["pre_ping_after"],
            # 0 keeps idle connections forever, as in asyncpg.
            idle_timeout=lifetime if lifetime and lifetime > 0 else None,
        )
        self._pool = pool
        try:
            await pool.open()
            # One checkout, so that connect() fails now on an unreachable server, even
            # when the pool opens no connection of its own (min_size=0).
            await pool.release(await pool.acquire())
        except BaseException as exc:
            await self.disconnect()
            if isinstance(exc, Exception) and not isinstance(exc, DatabaseError):
                raise self.translate_connect_error(exc) from exc
            raise
        if command_timeout:
            self._schedule_watch()

    def _watch_period(self) -> float:
        return max(float(self.settings["command_timeout"]) / 2, 0.05)

    def _schedule_watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self._watch_period(), self._watch)

    def _watch(self) -> None:
        """Close connections whose statement has gone unanswered far past ``command_timeout``.

        The server cancels a slow statement itself at ``command_timeout``
        (``statement_timeout``); this catches the server or network that stops
        answering altogether. Every ``command_timeout / 2`` it looks at each
        connection: one holding its op lock (a statement in flight) with the same
        statement count as at the previous scans is the same statement still
        running. After three such scans in a row (1.5 to 2 times
        ``command_timeout`` after the statement began) the connection is closed,
        which ends the waiting call with the timeout OperationalError. Costs
        nothing per statement beyond a counter increment.
        """
        pool = self._pool
        if pool is None:
            return
        for conn in pool.connections():
            if conn._lock.locked() and conn.statements == conn.watch_mark:
                conn.watch_strikes += 1
                if conn.watch_strikes >= 3 and not conn.timed_out:
                    conn.timed_out = True
                    # Never retried elsewhere: it may have run.
                    conn.fresh = False
                    conn.raw.terminate()
            else:
                conn.watch_mark = conn.statements
                conn.watch_strikes = 0
        self._schedule_watch()

    def watchdog_error(self) -> OperationalError:
        """Build the error of a statement the watchdog gave up on."""
        return OperationalError(
            f"A statement on {self.display_name} timed out (command_timeout="
            f"{self.settings['command_timeout']:g}s): the server did not answer, even to "
            "cancel it, and the connection was closed. Check the server and the network."
        )

    async def _open(self) -> PostgresConnection:
        """Open one connection and install covet's JSON and timestamp codecs on it."""
        import asyncpg

        try:
            raw = await asyncpg.connect(**self._connect_kwargs)
        except Exception as exc:
            # The pool opens connections at connect() and whenever a checkout finds none
            # idle: either way a refused connection is a covet error.
            raise self.translate_connect_error(exc) from exc
        try:
            for name in ("json", "jsonb"):
                await raw.set_type_codec(
                    name,
                    encoder=_encode_json,
                    decoder=_json.loads,
                    schema="pg_catalog",
                    format="text",
                )
            await raw.set_type_codec(
                "timestamp",
                encoder=encode_timestamp,
                decoder=decode_timestamp,
                schema="pg_catalog",
                format="tuple",
            )
            if self._session_sql:
                await raw.execute(self._session_sql)
        except BaseException as exc:
            raw.terminate()
            if isinstance(exc, Exception):
                raise self.translate_connect_error(exc) from exc
            raise
        return PostgresConnection(self, raw)

    async def disconnect(self) -> None:
        """Close the pool, waiting up to ``timeout`` for connections in use."""
        pool, self._pool = self._pool, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if pool is not None:
            await pool.close()

    # acquire() and release() hand back the pool's coroutine rather than awaiting it in
    # one of their own: one coroutine fewer on the path of every statement.

    def acquire(self) -> Coroutine[Any, Any, PostgresConnection]:
        """Check out a connection: closed sockets are skipped, long-idle ones pinged first."""
        return self._require_pool().acquire()

    def release(self, conn: BaseConnection) -> Coroutine[Any, Any, None]:
        """Return a connection; roll back, reset or discard it as needed (cancellation-safe)."""
        assert isinstance(conn, PostgresConnection)  # noqa: S101 - internal invariant
        pool = self._pool
        if pool is None:
            # Disconnected meanwhile: nothing to return it to.
            conn.raw.terminate()
            return released()
        note_raw_transaction(conn)
        return pool.release(conn)

    def checkin_now(self, conn: BaseConnection) -> bool:
        """Return ``conn`` to the pool when it needs no reset, after the raw ``BEGIN`` check."""
        pool = self._pool
        if pool is None:
            return False
        note_raw_transaction(conn)
        return pool.try_release(conn)  # type: ignore[arg-type]

    async def replace_raw(self, conn: BaseConnection) -> None:
        """Swap a dead connection's socket for a new one."""
        conn.raw.terminate()
        fresh = await self._open()
        conn.raw = fresh.raw
        assert isinstance(conn, PostgresConnection)  # noqa: S101 - internal invariant
        conn._record_class = direct_record_class(fresh.raw)
        conn.broken = False
        conn.session_changed = False

    def on_disconnect(self) -> None:
        """Have every idle connection pinged at its next checkout, whatever ``pre_ping_after``."""
        if self._pool is not None:
            self._pool.expire()

    def translate_connect_error(self, exc: BaseException) -> DatabaseError:
        """Classify a failure to open a connection: unreachable, no database, login refused."""
        import asyncpg

        if isinstance(exc, DatabaseError):
            return exc
        url = self.url
        address = server_address(url.host, url.port, 5432)
        exceptions = asyncpg.exceptions
        if isinstance(exc, exceptions.InvalidCatalogNameError):
            return missing_database_error(
                self.display_name, url.database, address, _createdb_command(url)
            )
        if isinstance(exc, exceptions.InvalidAuthorizationSpecificationError):
            # 28000 (unknown role, no pg_hba.conf entry) and 28P01 (wrong password).
            return login_refused_error(self.display_name, url.username, address, str(exc))
        if isinstance(exc, exceptions.CannotConnectNowError):
            # 57P03: the server is starting up, shutting down or in recovery.
            return unreachable_error(self.display_name, address, str(exc).rstrip("."))
        reason = connect_failure_reason(exc, self.timeout)
        if reason is not None:
            return unreachable_error(self.display_name, address, reason)
        return self.translate_error(exc)

    def translate_error(self, exc: BaseException) -> DatabaseError:
        """Map an asyncpg exception to the covet class."""
        import asyncpg

        message = str(exc)
        if isinstance(exc, asyncpg.exceptions.InFailedSQLTransactionError):
            return aborted_transaction_error(message.rstrip("."))
        if (
            isinstance(exc, asyncpg.exceptions.QueryCanceledError)
            and "statement timeout" in message
        ):
            # 57014 from the statement_timeout covet sets to command_timeout.
            exc = TimeoutError(message)
        if self.is_disconnect(exc):
            return disconnect_error(exc, self.display_name)
        if isinstance(exc, TimeoutError):
            return statement_timeout_error(self.display_name, self.settings["command_timeout"])
        if _is_nul_error(exc):
            # 22021 / 22P05: PostgreSQL's text and jsonb cannot hold U+0000, which SQLite
            # and MySQL store (issue 16's round-trip properties found the bare message).
            return DataError(
                f"PostgreSQL text and JSON cannot hold the NUL character '\\x00' "
                f"({message.splitlines()[0]}). "
                "Remove it from the value, or store the data in a BinaryField."
            )
        for driver_class, covet_class in _error_map_cached():
            if isinstance(exc, driver_class):
                return covet_class(message)
        if isinstance(exc, OSError):
            return DatabaseUnavailableError(
                f"Cannot reach {self.display_name} at {self.url}: {exc}"
            )
        return DatabaseError(f"{type(exc).__name__}: {message}")

    def is_disconnect(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` means the connection or the server is gone."""
        import asyncpg

        exceptions = asyncpg.exceptions
        if isinstance(
            exc,
            (
                exceptions.PostgresConnectionError,
                exceptions.AdminShutdownError,
                exceptions.CrashShutdownError,
                exceptions.CannotConnectNowError,
                ConnectionError,
            ),
        ):
            return True
        if isinstance(exc, exceptions.InternalClientError):
            # The protocol is stuck (e.g. still consuming the FATAL error the server sent to
            # an idle connection before closing it): the connection cannot be used again.
            return True
        return isinstance(exc, asyncpg.InterfaceError) and _gone(str(exc))

    def not_sent(self, exc: BaseException) -> bool:
        """Tell whether asyncpg refused to send because the connection was already closed."""
        import asyncpg

        message = str(exc)
        if isinstance(exc, asyncpg.exceptions.InternalClientError):
            # Raised by the protocol's state check, before anything is written.
            return message.startswith("cannot switch to state")
        return isinstance(exc, asyncpg.InterfaceError) and _gone(message)
