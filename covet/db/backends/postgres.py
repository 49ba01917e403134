"""PostgreSQL through asyncpg: features, operations, error map, backend over asyncpg's pool.

Pool defaults (see ``docs/orm/databases.md``): 2 to 10 connections, acquire
timeout ``timeout`` (10 s), ``command_timeout`` 30 s, idle connections closed
after ``max_inactive_connection_lifetime`` (300 s), JSON/JSONB decoded with
``covet._json``. A connection idle for ``pre_ping_after`` seconds (30) is
checked with ``SELECT 1`` before use; when any connection reports the server
went away, every idle connection is re-checked at its next checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import shlex
import time
from typing import TYPE_CHECKING, Any, ClassVar

from covet import _json
from covet.db.backends.base import (
    BaseBackend,
    BaseConnection,
    BaseCreation,
    BaseFeatures,
    BaseOperations,
    Converter,
    Option,
    PoolStats,
    aborted_transaction_error,
    connect_failure_reason,
    disconnect_error,
    login_refused_error,
    missing_database_error,
    server_address,
    statement_timeout_error,
    to_uuid,
    unreachable_error,
    url_with_option,
)
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
)
from covet.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping, Sequence

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
    # How many bound parameters per statement? (the protocol's Int16 count)
    max_query_params = 32767
    # How long may a statement be and still stay prepared? (asyncpg's default
    # max_cacheable_statement_size, 15 KiB: longer ones are prepared anew on every call)
    max_cacheable_statement_size = 15 * 1024
    # The oldest PostgreSQL covet supports.
    minimum_version = (12,)


def _datetime_from_pg(value: Any) -> Any:
    # timestamptz comes back aware (UTC); a "timestamp without time zone" column is naive UTC.
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value if value.tzinfo is datetime.UTC else value.astimezone(datetime.UTC)


class PostgresOperations(BaseOperations):
    """SQL fragments and value adaptation for PostgreSQL."""

    param_style = "numeric"
    sqlalchemy_dialect = "postgresql"
    telemetry_name = "postgresql"
    _isolation_levels: ClassVar[Mapping[str, str]] = {
        "read committed": "READ COMMITTED",
        "repeatable read": "REPEATABLE READ",
        "serializable": "SERIALIZABLE",
    }
    _converters: ClassVar[Mapping[str, Converter]] = {
        "uuid": to_uuid,  # asyncpg's own UUID subclass -> uuid.UUID
        "datetime": _datetime_from_pg,
    }
    # The SQL types of plain numbers in expressions (see cast_param()).
    _param_casts: ClassVar[Mapping[str, str]] = {
        "int": "BIGINT",
        "float": "DOUBLE PRECISION",
        "decimal": "NUMERIC",
    }

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

    def ilike_sql(self, lhs: str, rhs: str) -> str:
        """Render ``ILIKE`` (Unicode-aware under the database's ctype)."""
        return f"{lhs} ILIKE {rhs} ESCAPE {self.like_escape_sql}"

    def distinct_sql(self, fields: Sequence[str] = ()) -> str:
        """Render ``DISTINCT`` or ``DISTINCT ON (...)``."""
        if fields:
            return "DISTINCT ON (" + ", ".join(self.quote_name(f) for f in fields) + ")"
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
        (exc.TransactionRollbackError, OperationalError),  # serialization failure, deadlock
        (exc.QueryCanceledError, OperationalError),
        (exc.InsufficientResourcesError, OperationalError),
        # 57P01-57P05 (admin/crash shutdown, cannot connect now...): the server goes away.
        (exc.OperatorInterventionError, DatabaseUnavailableError),
        (exc.PostgresConnectionError, DatabaseUnavailableError),
        (exc.PostgresError, DatabaseError),
        (asyncpg.DataError, DataError),  # client-side: a parameter of the wrong type
        (asyncpg.InterfaceError, InterfaceError),
    )


_error_map_cached = functools.cache(_error_map)


class _FloorRetryFilter(logging.Filter):
    """Shorten asyncpg's "Failed to restore the pool connection floor" warning to one line.

    While the server is down, asyncpg's pool retries reopening its ``min_size``
    connections (after 1 s, 2 s, 4 s... up to 60 s) and logs a traceback at each
    attempt. The traceback says nothing the reason does not: the record keeps
    its level and logger and loses its ``exc_info``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and str(record.msg).startswith("Failed to restore the pool"):
            reason = connect_failure_reason(exc, 0) or str(exc) or type(exc).__name__
            record.msg = (
                "PostgreSQL pool: cannot reopen its min_size connections yet (%s); retrying"
            )
            record.args = (reason,)
            record.exc_info = None
            record.exc_text = None
        return True


_FLOOR_RETRY_FILTER = _FloorRetryFilter()


@functools.cache
def _connection_class() -> type[Any]:
    """Build the asyncpg Connection subclass that remembers idle time and generation."""
    import asyncpg

    class CovetPostgresConnection(asyncpg.Connection):  # type: ignore[misc]
        # asyncpg's pool proxies forward method calls, not attribute writes: use methods.
        covet_idle_since = 0.0
        covet_generation = 0

        def covet_touch(self, generation: int) -> None:
            self.covet_idle_since = time.monotonic()
            self.covet_generation = generation

        def covet_state(self) -> tuple[float, int]:
            return self.covet_idle_since, self.covet_generation

    return CovetPostgresConnection


def _status_count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 3" or "INSERT 0 5".
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


def _gone(message: str) -> bool:
    """Tell whether an asyncpg InterfaceError says the connection is no longer usable.

    "connection is closed": the socket is gone. "released back to the pool":
    the server ended the session and asyncpg detached the connection from its
    proxy on its own; either way nothing was sent.
    """
    return "connection is closed" in message or "released back to the pool" in message


def _terminate(raw: Any) -> None:
    """Close a connection at once, unless asyncpg already detached it (lost connection)."""
    import asyncpg

    # When the server closes a connection, asyncpg returns its holder to the pool and
    # detaches the proxy: any method call on it then raises InterfaceError.
    with contextlib.suppress(asyncpg.InterfaceError):
        raw.terminate()


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


class PostgresConnection(BaseConnection):
    """A connection checked out of the asyncpg pool."""

    backend: PostgresBackend

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        return _status_count(await self.raw.execute(sql, *params))

    async def _execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None:
        await self.raw.executemany(sql, seq_of_params)

    async def _insert(self, sql: str, params: Sequence[Any], returning: bool) -> Any:
        if returning:
            return await self.raw.fetchval(sql, *params)
        await self.raw.execute(sql, *params)
        return None

    async def _fetch_all(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = await self.raw.fetch(sql, *params)
        return rows

    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
        row: Sequence[Any] | None = await self.raw.fetchrow(sql, *params)
        return row

    async def _fetch_described(
        self, sql: str, params: Sequence[Any]
    ) -> tuple[Sequence[str], list[Sequence[Any]]]:
        rows = await self.raw.fetch(sql, *params)
        return (list(rows[0].keys()) if rows else []), rows

    async def _stream(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[tuple[Sequence[str], Sequence[Sequence[Any]]], None]:
        # asyncpg cursors live inside a transaction; outside one, open a private one.
        own = not self.in_transaction
        async with self._lock:
            if own:
                await self.raw.execute("BEGIN")
                self.in_transaction = True
        done = False
        try:
            async with self._lock:
                cursor = await self.raw.cursor(sql, *params)
            while True:
                async with self._lock:
                    rows = await cursor.fetch(chunk_size)
                if rows:
                    yield list(rows[0].keys()), rows
                if len(rows) < chunk_size:
                    break
            done = True
        finally:
            if own:
                await asyncio.shield(self._end_private(commit=done))

    async def _end_private(self, commit: bool) -> None:
        async with self._lock:
            try:
                if not self.dirty:
                    await self.raw.execute("COMMIT" if commit else "ROLLBACK")
            finally:
                self.in_transaction = False

    async def _begin(self, isolation: str | None) -> None:
        await self.raw.execute(f"BEGIN ISOLATION LEVEL {isolation}" if isolation else "BEGIN")

    async def ping(self) -> None:
        """Check the connection with ``SELECT 1``."""
        await self.raw.fetchval("SELECT 1")

    async def close(self) -> None:
        """Do nothing: asyncpg's pool owns its connections and closes them itself."""


# -- creation: alembic's engine, the migration lock, test databases --------------------------


class PostgresCreation(BaseCreation):
    """PostgreSQL's migration engine, advisory lock, and one schema per test run."""

    def migration_engine(self) -> Any:
        """Return an asyncpg engine whose connections get the app's DSN and server settings."""
        import urllib.parse

        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        backend = self.backend
        url, options = backend.url, backend.settings
        # Like the app's pool: driver keys (sslmode...) stay in the DSN, covet's options go.
        passthrough = {k: v for k, v in url.query.items() if k in backend.driver_query_keys}
        dsn = url.without_query().replace("postgresql+asyncpg://", "postgresql://", 1)
        dsn = dsn.replace("postgres://", "postgresql://", 1)
        if passthrough:
            dsn += "?" + urllib.parse.urlencode(passthrough)
        server_settings = dict(options.get("server_settings") or {})
        if options.get("search_path"):
            server_settings["search_path"] = options["search_path"]
        server_settings.setdefault("application_name", "covet-migrations")

        async def create() -> Any:
            import asyncpg

            return await asyncpg.connect(dsn, server_settings=server_settings)

        return create_async_engine(
            "postgresql+asyncpg://", poolclass=NullPool, async_creator=create
        )

    def _lock_key(self) -> int:
        # pg_advisory_lock takes a signed 64-bit key.
        return int.from_bytes(self.migration_lock_id()[:8], "big", signed=True)

    def acquire_migration_lock(self, connection: Any, timeout: float) -> bool:
        """Poll ``pg_try_advisory_lock`` (session level) until it succeeds or ``timeout`` passes."""
        from sqlalchemy import text

        deadline = time.monotonic() + timeout
        query = text("SELECT pg_try_advisory_lock(:key)")
        while not connection.execute(query, {"key": self._lock_key()}).scalar():
            # End the transaction the query began, so the next poll sees fresh state.
            connection.commit()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def release_migration_lock(self, connection: Any) -> None:
        """Release the advisory lock."""
        from sqlalchemy import text

        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key()})

    def test_database_url(self, url: str, name: str) -> str:
        """Return ``url`` with ``search_path`` set to the test run's schema."""
        return url_with_option(url, "search_path", name)

    def create_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Create a schema: cheaper than a database, and needs no CREATEDB privilege."""
        return (f"CREATE SCHEMA {self.backend.ops.quote_name(name)}",)

    def drop_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Drop the schema with everything in it."""
        return (f"DROP SCHEMA IF EXISTS {self.backend.ops.quote_name(name)} CASCADE",)


class PostgresBackend(BaseBackend):
    """PostgreSQL through asyncpg's pool, with pre-ping and whole-pool re-check."""

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
        self._pool: Any = None
        self._generation = 0

    async def connect(self) -> None:
        """Create the asyncpg pool and check out one connection."""
        try:
            import asyncpg
        except ImportError as exc:
            raise MissingDependencyError("asyncpg", extra="postgres") from exc
        settings = self.settings
        server_settings = dict(settings["server_settings"] or {})
        if settings["search_path"]:
            server_settings["search_path"] = settings["search_path"]
        server_settings.setdefault("application_name", "covet")
        dsn = self.url.render_as_string(hide_password=False)
        # asyncpg reads the driver keys (sslmode...) from the DSN query itself.
        covet_keys = set(self.url.query) - self.driver_query_keys
        if covet_keys:
            dsn = self.url.without_query()
            passthrough = {k: v for k, v in self.url.query.items() if k in self.driver_query_keys}
            if passthrough:
                import urllib.parse

                dsn += "?" + urllib.parse.urlencode(passthrough)
        # addFilter() adds a filter once, however many pools connect.
        logging.getLogger("asyncpg.pool").addFilter(_FLOOR_RETRY_FILTER)
        try:
            pool = await asyncpg.create_pool(
                dsn.replace("postgresql+asyncpg://", "postgresql://", 1),
                min_size=self.min_size,
                max_size=self.max_size,
                command_timeout=settings["command_timeout"],
                max_inactive_connection_lifetime=settings["max_inactive_connection_lifetime"],
                statement_cache_size=settings["statement_cache_size"],
                server_settings=server_settings,
                init=self._init_connection,
                reset=self._reset_connection,
                connection_class=_connection_class(),
                timeout=self.timeout,
            )
        except Exception as exc:
            raise self.translate_connect_error(exc) from exc
        try:
            # One checkout, so that connect() fails now on an unreachable server, even
            # when the pool opens no connection of its own (min_size=0).
            raw = await pool.acquire(timeout=self.timeout)
            await pool.release(raw)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, Exception):
                raise self.translate_connect_error(exc) from exc
            raise
        self._pool = pool

    @staticmethod
    async def _init_connection(raw: Any) -> None:
        for name in ("json", "jsonb"):
            await raw.set_type_codec(
                name, encoder=_encode_json, decoder=_json.loads, schema="pg_catalog", format="text"
            )

    @staticmethod
    async def _reset_connection(raw: Any) -> None:
        # asyncpg has already rolled back an open transaction; skip its RESET ALL round trip
        # (covet never changes session state after connect).
        return

    async def disconnect(self) -> None:
        """Close the pool, waiting up to ``timeout`` for connections in use."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await pool.close()
        except Exception:  # noqa: BLE001 - a timeout or a dead server: close the sockets anyway
            pool.terminate()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise InterfaceError(f"The database {self.url} is not connected. Call connect().")
        return self._pool

    async def _checkout(self) -> Any:
        pool = self._require_pool()
        pre_ping_after = self.settings["pre_ping_after"]
        # Each failed check discards one connection; bound the loop by the pool size.
        for _ in range(self.max_size + 1):
            try:
                raw = await pool.acquire(timeout=self.timeout)
            except TimeoutError:
                raise self.pool_timeout_error() from None
            except Exception as exc:
                # asyncpg opens a connection here when none is idle: a connect error.
                raise self.translate_connect_error(exc) from exc
            idle_since, generation = raw.covet_state()
            if generation == self._generation and (
                idle_since == 0.0 or time.monotonic() - idle_since < pre_ping_after
            ):
                return raw
            try:
                await raw.fetchval("SELECT 1")
            except asyncio.CancelledError:
                await pool.release(raw)
                raise
            except Exception:  # noqa: BLE001 - a failed ping just means "use another one"
                _terminate(raw)
                await pool.release(raw)
                continue
            return raw
        raise DatabaseUnavailableError(
            f"Could not get a working connection to {self.url}: every connection failed its "
            "check. Is the server up?"
        )

    async def acquire(self) -> PostgresConnection:
        """Check out a connection, pinging it first when it was idle long or expired."""
        return PostgresConnection(self, await self._checkout())

    async def release(self, conn: BaseConnection) -> None:
        """Return a connection; asyncpg's release is shielded and rolls back open transactions."""
        import asyncpg

        raw = conn.raw
        conn.in_transaction = False
        pool = self._pool
        if pool is None or conn.broken:
            _terminate(raw)
        else:
            # AttributeError: asyncpg detached the proxy when the server closed the
            # connection (its attributes then reach None), before covet heard of it.
            with contextlib.suppress(asyncpg.InterfaceError, AttributeError):
                raw.covet_touch(self._generation)
        if pool is None:
            return
        try:
            await pool.release(raw)
        except Exception:  # noqa: BLE001 - asyncpg terminates a connection it cannot reset
            return

    async def replace_raw(self, conn: BaseConnection) -> None:
        """Swap a dead connection for a freshly checked-out one."""
        old = conn.raw
        conn.broken = True
        _terminate(old)
        await self._require_pool().release(old)
        conn.raw = await self._checkout()
        conn.broken = False

    def stats(self) -> PoolStats:
        """Return the pool statistics."""
        pool = self._require_pool()
        # asyncpg counts no waiters publicly: its free connections sit in an asyncio
        # queue whose blocked getters are the callers waiting. Read only when asked
        # (metrics scrapes), so the checkout path pays nothing for it.
        getters = getattr(getattr(pool, "_queue", None), "_getters", ())
        waiting = sum(not getter.done() for getter in getters)
        return PoolStats(pool.get_size(), pool.get_idle_size(), pool.get_max_size(), waiting)

    def on_disconnect(self) -> None:
        """Have every idle connection pinged before its next use."""
        self._generation += 1

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
        if self.is_disconnect(exc):
            return disconnect_error(exc, self.display_name)
        if isinstance(exc, TimeoutError):
            return statement_timeout_error(self.display_name, self.settings["command_timeout"])
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
