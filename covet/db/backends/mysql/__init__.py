"""MySQL and MariaDB through aiomysql: features, operations, error map, backend.

Every connection is opened with ``charset=utf8mb4``, autocommit on (covet
issues ``START TRANSACTION`` itself), ``local_infile`` off, the ``FOUND_ROWS``
flag (so an UPDATE reports matched rows like PostgreSQL and SQLite do), a
strict ``sql_mode`` and ``time_zone = '+00:00'``. Text columns use a binary
collation (detected at connect: MariaDB ``utf8mb4_nopad_bin``, MySQL 8
``utf8mb4_0900_bin``) so that ``=`` and ``LIKE`` are case-sensitive as on the
other backends. Connections are recycled after ``pool_recycle`` seconds, below
the server's ``wait_timeout``.

Checkout health: every checkout first looks at the socket, for free
(:meth:`MySQLConnection.is_usable`): a server that ends a connection (``KILL``,
a restart, ``wait_timeout``) closes it, and once the event loop has read that
close the connection is discarded and replaced without a round trip. A
``COM_PING`` round trip is then sent only when the connection has been idle
for ``ping_interval`` seconds (default 1: a connection used within the last
second cannot have hit an idle timeout), or after any connection of the pool
reported a lost server. ``ping_interval=0`` pings at every checkout, for
proxies that keep the client's socket open when the server side closes.

covet uses its own :class:`~covet.db.backends.base.ConnectionPool` rather than
``aiomysql.create_pool``: aiomysql's ``acquire()`` has no timeout, and wrapping
it in ``asyncio.wait_for`` on Python 3.11 can lose a connection when a
cancellation races the acquire.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import operator
import shlex
from typing import TYPE_CHECKING, Any, ClassVar

from covet.db.backends.base import (
    BaseConnection,
    BaseFeatures,
    BaseOperations,
    ColumnAdapter,
    ConnectionPool,
    Converter,
    Option,
    PooledBackend,
    connect_failure_reason,
    disconnect_error,
    json_from_db,
    json_to_db,
    login_refused_error,
    missing_database_error,
    released,
    server_address,
    statement_timeout_error,
    to_bool,
    to_bytes,
    to_decimal,
    to_uuid,
    unreachable_error,
    utc_datetimes,
)
from covet.db.backends.mysql.creation import MySQLCreation
from covet.db.backends.mysql.driver import InsertRows, cursor_classes, driver_connection_class
from covet.db.backends.mysql.functions import MySQLFunctionOperations
from covet.db.backends.mysql.lookups import MySQLLookups
from covet.db.backends.mysql.session import SESSION_STATEMENTS
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
    TransactionRollbackError,
)
from covet.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Coroutine, Mapping, Sequence

    from covet.db.database import DatabaseURL

__all__ = (
    "MySQLBackend",
    "MySQLConnection",
    "MySQLCreation",
    "MySQLFeatures",
    "MySQLOperations",
)

_DEFAULT_SQL_MODE = (
    "STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
)
# "No limit" for LIMIT ... OFFSET: MySQL has no OFFSET without LIMIT (documented idiom).
_NO_LIMIT = 18446744073709551615


class MySQLFeatures(BaseFeatures):
    """What MySQL 8 / MariaDB 10.5+ can do (refined at connect)."""

    # Can INSERT/UPDATE/DELETE ... RETURNING hand back rows? (MariaDB only for INSERT/DELETE)
    supports_returning = False
    # Can an aggregate take FILTER (WHERE ...)? (neither MySQL nor MariaDB: CASE WHEN inside)
    supports_aggregate_filter_clause = False
    # Does a multi-row INSERT ... RETURNING return one row per inserted row, in order?
    # (MariaDB >= 10.5: set at connect; MySQL has no RETURNING at all.)
    can_return_rows_from_bulk_insert = False
    # Can an upsert name its conflict columns? (no: ON DUPLICATE KEY UPDATE takes any key)
    supports_update_conflicts_with_target = False
    # Do CREATE/ALTER/DROP roll back with the transaction? (no: DDL commits implicitly)
    supports_transactional_ddl = False
    # Does the SQL depend on the server? (yes: MariaDB or MySQL, its binary collation)
    has_server_dependent_ops = True
    # Does a deadlock roll back the whole transaction? (InnoDB: yes, savepoints and all)
    rollback_error_ends_transaction = True
    # Can JSONField(index=True) be indexed? (no: JSON/LONGTEXT needs a prefix length)
    can_index_json_field = False
    # Is SELECT ... FOR UPDATE meaningful?
    supports_select_for_update = True
    # Can SELECT ... FOR UPDATE skip locked rows? (MySQL 8.0.1+; MariaDB 10.6+, set at connect)
    has_select_for_update_skip_locked = True
    # Can a transaction choose its isolation level?
    supports_isolation_levels = True
    # How many bound parameters per statement? (client-side interpolation: the packet size
    # is the real limit; 65535 matches the server-side prepared statement limit)
    max_query_params = 65535
    # The oldest MySQL covet supports (MariaDB: 10.5).
    minimum_version = (8, 0)


def _args(params: Sequence[Any]) -> Any:
    # aiomysql takes a tuple; InsertRows goes as it is, so the cursor escapes it by column.
    return params if type(params) is InsertRows else tuple(params)


_naive = operator.methodcaller("replace", tzinfo=None)


def _datetimes_to_db(column: list[Any]) -> list[Any]:
    # _datetime_to_db() of a whole column: UTC datetimes (what full_clean() leaves) in C loops.
    if utc_datetimes(column):
        return list(map(_naive, column))
    return [None if v is None else _datetime_to_db(v) for v in column]


def _datetime_to_db(value: Any) -> Any:
    # DATETIME(6) columns hold naive UTC (the session time_zone is '+00:00').
    if value is None:
        return value
    tz = value.tzinfo
    if tz is None:
        return value
    # full_clean() already made it UTC: skip the conversion (bulk_create() calls this per row).
    return (value if tz is datetime.UTC else value.astimezone(datetime.UTC)).replace(tzinfo=None)


def _datetime_from_db(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def _time_from_db(value: Any) -> Any:
    # pymysql returns TIME columns as timedelta (TIME can exceed 24h in MySQL).
    if value is None or isinstance(value, datetime.time):
        return value
    if isinstance(value, datetime.timedelta):
        micros = value // datetime.timedelta(microseconds=1)
        seconds, micro = divmod(micros, 1_000_000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return datetime.time(hour % 24, minute, second, micro)
    return datetime.time.fromisoformat(str(value))


def _uuid_to_db(value: Any) -> Any:
    return None if value is None else str(value)


class MySQLOperations(MySQLFunctionOperations, MySQLLookups, BaseOperations):
    """SQL fragments and value adaptation for MySQL and MariaDB.

    SQL handed to a MySQL connection always uses the ``format`` paramstyle:
    placeholders are ``%s`` and a literal percent sign is written ``%%``, even
    when there are no parameters (covet always passes a parameter tuple).
    """

    param_style = "format"
    sqlalchemy_dialect = "mysql"
    # OpenTelemetry names MariaDB apart ("mariadb"): set at connect.
    telemetry_name = "mysql"
    identifier_quote = "`"
    # Backslash escapes inside MySQL string literals, so the one-character escape is '\\'.
    like_escape_sql = "'\\\\'"
    text_collation: str | None = "utf8mb4_bin"
    integer_division_operator = "DIV"  # "/" of two integers is a DECIMAL (3.5000)
    truncate_to_integer_sql = "TRUNCATE({}, 0)"  # a CAST to SIGNED would round
    #: True when the server is MariaDB (set at connect).
    is_mariadb = False
    #: The server version (set at connect).
    server_version: tuple[int, ...] = ()
    _isolation_levels: ClassVar[Mapping[str, str]] = {
        "read committed": "READ COMMITTED",
        "repeatable read": "REPEATABLE READ",
        "serializable": "SERIALIZABLE",
    }
    _adapters: ClassVar[Mapping[str, Converter]] = {
        "datetime": _datetime_to_db,
        "uuid": _uuid_to_db,
        "json": json_to_db,
    }
    _converters: ClassVar[Mapping[str, Converter]] = {
        "bool": to_bool,
        "decimal": to_decimal,
        "time": _time_from_db,
        "datetime": _datetime_from_db,
        "uuid": to_uuid,
        "json": json_from_db,
        "bytes": to_bytes,
    }

    def placeholder(self, index: int) -> str:
        """Return ``%s`` (aiomysql's format style)."""
        return "%s"

    def concat(self, lhs_sql: str, rhs_sql: str) -> str:
        """Render ``CONCAT(lhs, rhs)`` (``||`` is logical OR in MySQL)."""
        return f"CONCAT({lhs_sql}, {rhs_sql})"

    def cast_to_text(self, sql: str) -> str:
        """Render ``CAST(x AS CHAR)`` (MySQL cannot CAST AS TEXT)."""
        return f"CAST({sql} AS CHAR)"

    def random_function(self) -> str:
        """Return ``RAND()``."""
        return "RAND()"

    def _offset_only(self, offset: int) -> str:
        return f"LIMIT {_NO_LIMIT} OFFSET {offset}"

    def upsert(self, conflict_columns: Sequence[str], update_columns: Sequence[str]) -> str:
        """Render ``ON DUPLICATE KEY UPDATE`` (MySQL picks the conflicting unique key itself).

        Raises:
            NotSupportedError: Neither conflict nor update columns were given.
        """
        if not update_columns:
            if not conflict_columns:
                raise NotSupportedError(
                    "An insert-or-ignore upsert on MySQL needs at least one conflict column. "
                    "Pass conflict_columns."
                )
            column = self.quote_name(conflict_columns[0])
            # A no-op assignment keeps the existing row (unlike INSERT IGNORE, which would
            # also swallow unrelated errors).
            return f"ON DUPLICATE KEY UPDATE {column} = {column}"
        sets = ", ".join(
            f"{self.quote_name(column)} = VALUES({self.quote_name(column)})"
            for column in update_columns
        )
        return f"ON DUPLICATE KEY UPDATE {sets}"

    def ignore_conflicts_sql(self, conflict_columns: Sequence[str], noop_column: str) -> str:
        """Render ``ON DUPLICATE KEY UPDATE c = c`` (any key: MySQL names no conflict target)."""
        # Not INSERT IGNORE: it also turns NOT NULL, truncation and foreign key errors
        # into warnings and writes a changed row; a no-op assignment skips duplicates only.
        column = self.quote_name(noop_column)
        return f"ON DUPLICATE KEY UPDATE {column} = {column}"

    def explain_prefix(self, analyze: bool = False) -> str:
        """Return ``EXPLAIN`` or the server's analyzing form (MariaDB ``ANALYZE``)."""
        if not analyze:
            return "EXPLAIN"
        return "ANALYZE" if self.is_mariadb else "EXPLAIN ANALYZE"

    def for_update_sql(
        self, *, nowait: bool = False, skip_locked: bool = False, of: Sequence[str] = ()
    ) -> str:
        """Render ``FOR UPDATE`` (MariaDB has no ``OF``).

        Raises:
            NotSupportedError: ``of`` was given on MariaDB.
        """
        if of and self.is_mariadb:
            raise NotSupportedError(
                "MariaDB does not support SELECT ... FOR UPDATE OF. Call "
                "select_for_update() without of=."
            )
        return super().for_update_sql(nowait=nowait, skip_locked=skip_locked, of=of)

    def insert_default_values(self, table_sql: str) -> str:
        """Render ``INSERT INTO t () VALUES ()`` (MySQL has no DEFAULT VALUES)."""
        return f"INSERT INTO {table_sql} () VALUES ()"

    def create_table_suffix(self) -> str:
        """Return the InnoDB/utf8mb4/binary-collation table options."""
        return f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={self.text_collation}"

    def bulk_insert_params(self, columns: list[list[Any]]) -> Sequence[Any]:
        """Return the rows as :class:`~covet.db.backends.mysql.driver.InsertRows` (by column)."""
        return InsertRows(super().bulk_insert_params(columns), columns)

    def get_adapter(self, internal_type: str) -> Converter | None:
        """Return the adapter for ``internal_type`` (datetime to naive UTC, uuid/json to text)."""
        return self._adapters.get(internal_type)

    def get_column_adapter(self, internal_type: str) -> ColumnAdapter | None:
        """Return the whole-column form of the datetime adapter (naive UTC in C loops)."""
        return _datetimes_to_db if internal_type == "datetime" else None

    def get_converter(self, internal_type: str) -> Converter | None:
        """Return the converter for ``internal_type`` back to the canonical Python value."""
        return self._converters.get(internal_type)


# Server error numbers -> covet classes, checked before the driver's class (pymysql files
# many server errors under InternalError/OperationalError).
_ERRNO_MAP: dict[int, type[DatabaseError]] = {
    1048: IntegrityError,  # column cannot be null
    1062: IntegrityError,  # duplicate entry
    1451: IntegrityError,  # row is referenced (FK)
    1452: IntegrityError,  # no referenced row (FK)
    1557: IntegrityError,  # FK duplicate
    1216: IntegrityError,
    1217: IntegrityError,
    3819: IntegrityError,  # check constraint (MySQL)
    4025: IntegrityError,  # check constraint (MariaDB)
    1364: IntegrityError,  # field has no default value
    1406: DataError,  # data too long
    1264: DataError,  # out of range
    1265: DataError,  # data truncated
    1292: DataError,  # incorrect value
    1366: DataError,  # incorrect integer/string value
    1367: DataError,
    1139: DataError,  # invalid regular expression (MariaDB; REGEXP's pattern is a value)
    1054: MissingSchemaObjectError,  # unknown column
    1064: ProgrammingError,  # syntax error
    1146: MissingSchemaObjectError,  # no such table
    1049: ProgrammingError,  # unknown database
    1050: ProgrammingError,  # table exists
    1091: ProgrammingError,  # can't drop
    1305: ProgrammingError,  # function does not exist
    1109: ProgrammingError,  # unknown table
    1060: ProgrammingError,  # duplicate column
    1061: ProgrammingError,  # duplicate key name
    1235: NotSupportedError,
    1213: TransactionRollbackError,  # deadlock: InnoDB rolled the whole transaction back
}
# A statement past command_timeout: MariaDB max_statement_time, MySQL max_execution_time.
_STATEMENT_TIMEOUT_ERRNOS = frozenset({1969, 3024})
# Errors of opening a connection (see translate_connect_error()).
_CR_CONN_HOST_ERROR = 2003  # client: cannot open the socket (refused, unknown host, timeout)
_ER_BAD_DB_ERROR = 1049  # Unknown database
# 1045 access denied (user or password), 1044 no access to this database, 1698 (MySQL)
# access denied through an auth plugin, 1130 this host may not connect.
_LOGIN_ERRNOS = frozenset({1044, 1045, 1130, 1698})
# Client/server errors that mean the connection is gone.
_DISCONNECT_ERRNOS = frozenset({2003, 2006, 2013, 2014, 2045, 2055, 1927, 4031, 1053})


def _create_database_command(url: DatabaseURL, backend: MySQLBackend) -> str:
    """Return the ``mysql`` command line that creates the URL's database."""
    args = ["mysql"]
    socket_path = backend.settings["unix_socket"]
    if socket_path:
        args += ["-S", socket_path]
    else:
        args += ["-h", url.host or "localhost", "-P", str(url.port or 3306)]
    args += ["-u", url.username or "root"]
    if url.password:
        args.append("-p")
    name = url.database
    # A name other than letters, digits, _ and $ needs backquotes inside the SQL.
    quoted = (
        name if name.replace("_", "").replace("$", "").isalnum() else backend.ops.quote_name(name)
    )
    args += ["-e", f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4"]
    return shlex.join(args)


def _driver_error_map() -> tuple[tuple[type[BaseException], type[DatabaseError]], ...]:
    import pymysql

    err = pymysql.err
    return (
        (err.IntegrityError, IntegrityError),
        (err.DataError, DataError),
        (err.ProgrammingError, ProgrammingError),
        (err.NotSupportedError, NotSupportedError),
        (err.OperationalError, OperationalError),
        (err.InterfaceError, InterfaceError),
        (err.DatabaseError, DatabaseError),
    )


class MySQLConnection(BaseConnection):
    """A pooled aiomysql connection."""

    backend: MySQLBackend

    def _note(self, sql: str) -> str:
        """Return ``sql``, noting whether it changes the session (see session.py)."""
        if sql not in SESSION_STATEMENTS.harmless and SESSION_STATEMENTS.changes_session(sql):
            self.session_changed = True
        return sql

    async def reset(self) -> None:
        """Roll back as the base class does; a changed session is closed, not reused."""
        await super().reset()
        if self.session_changed:
            self.broken = True  # the pool discards it; the next checkout opens a fresh one

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        async with self.raw.cursor() as cursor:
            await cursor.execute(self._note(sql), _args(params))
            count: int = cursor.rowcount
            return max(count, 0)

    async def _execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None:
        async with self.raw.cursor() as cursor:
            await cursor.executemany(self._note(sql), [tuple(p) for p in seq_of_params])

    async def _insert(self, sql: str, params: Sequence[Any], returning: bool) -> Any:
        async with self.raw.cursor() as cursor:
            await cursor.execute(self._note(sql), _args(params))
            if returning:
                row = await cursor.fetchone()
                return None if row is None else row[0]
            return cursor.lastrowid

    async def _fetch_all(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        async with self.raw.cursor() as cursor:
            await cursor.execute(self._note(sql), _args(params))
            return list(await cursor.fetchall())

    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
        async with self.raw.cursor() as cursor:
            await cursor.execute(self._note(sql), _args(params))
            row: Sequence[Any] | None = await cursor.fetchone()
            return row

    async def _fetch_described(
        self, sql: str, params: Sequence[Any]
    ) -> tuple[Sequence[str], list[Sequence[Any]]]:
        async with self.raw.cursor() as cursor:
            await cursor.execute(self._note(sql), _args(params))
            names = [column[0] for column in cursor.description or ()]
            return names, list(await cursor.fetchall())

    async def _stream(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[tuple[Sequence[str], Sequence[Sequence[Any]]], None]:
        # An unbuffered result occupies the connection until it is fully read, so the
        # lock is held for the whole iteration.
        async with self._lock:
            cursor = await self.raw.cursor(cursor_classes()[1])
            exhausted = False
            try:
                await cursor.execute(self._note(sql), _args(params))
                names = [column[0] for column in cursor.description or ()]
                while True:
                    rows = await cursor.fetchmany(chunk_size)
                    if not rows:
                        exhausted = True
                        break
                    yield names, rows
            finally:
                if exhausted or self.in_transaction:
                    # Reading the rest keeps the transaction's connection usable.
                    await asyncio.shield(cursor.close())
                else:
                    # Dropping the connection is cheaper than draining a large result.
                    self.broken = True

    async def _begin(self, isolation: str | None) -> None:
        async with self.raw.cursor() as cursor:
            if isolation:
                await cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
            await cursor.execute("START TRANSACTION")

    async def _commit(self) -> None:
        await self.raw.commit()

    async def _rollback(self) -> None:
        await self.raw.rollback()

    def is_usable(self) -> bool:
        """Tell whether the socket is still open, from what the event loop has already read.

        A server that ends a connection (``KILL``, a restart, ``wait_timeout``)
        closes the socket; once the event loop has processed the FIN or RST, the
        reader is at EOF or holds the error. aiomysql's own pool makes the same
        check (``Pool._fill_free_pool``). MySQL 8 sends an error packet before
        closing a timed-out connection, so ``at_eof()`` stays false while that
        packet sits unread; aiomysql's reader records the EOF in
        ``eof_received`` as well. A close the event loop has not seen yet (a FIN
        still in flight) passes, and the retry rule handles it.
        """
        raw = self.raw
        reader, writer = raw._reader, raw._writer
        if reader is None or writer is None:
            # aiomysql drops both after an error it treated as fatal.
            return False
        return not (
            reader.at_eof()
            or reader.exception() is not None
            or getattr(reader, "eof_received", False)
            or writer.transport.is_closing()
        )

    async def ping(self) -> None:
        """Ping the server without reconnecting (a failure discards the connection)."""
        await self.raw.ping(reconnect=False)

    async def close(self) -> None:
        """Close the socket."""
        if self.broken or self.dirty:
            self.raw.close()
            return
        try:
            await asyncio.wait_for(self.raw.ensure_closed(), 1.0)
        except Exception:  # noqa: BLE001 - QUIT is a courtesy; close the socket regardless
            self.raw.close()


class MySQLBackend(PooledBackend[MySQLConnection]):
    """MySQL/MariaDB through aiomysql connections in covet's pool."""

    vendor = "mysql"
    display_name = "MySQL"
    features_class = MySQLFeatures
    operations_class = MySQLOperations
    creation_class = MySQLCreation
    default_min_size = 2
    default_max_size = 10
    options: ClassVar[Mapping[str, Option]] = {
        "pool_recycle": Option(float, 3600.0, "seconds before a connection is replaced"),
        "connect_timeout": Option(float, 10.0, "seconds to wait for the server at connect"),
        "sql_mode": Option(str, _DEFAULT_SQL_MODE, "the session sql_mode"),
        "command_timeout": Option(float, 30.0, "seconds a statement may run (server-enforced)"),
        "unix_socket": Option(str, None, "path of the server's Unix socket"),
        "ping_interval": Option(
            float,
            1.0,
            "seconds idle after which a checkout pings, beyond its free socket check; "
            "0 pings at every checkout",
        ),
    }
    ops: MySQLOperations

    def __init__(self, url: Any, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        if not 0 <= (limit := self.settings["command_timeout"]) < math.inf:
            raise ValueError(f"Invalid command_timeout {limit!r} for {url}. Use seconds, or 0.")
        interval = self.settings["ping_interval"]
        if not math.isfinite(interval) or interval < 0:
            raise ValueError(
                f"Invalid ping_interval {interval!r} for {url}. Use 0 (ping at every "
                "checkout) or a positive number of idle seconds (the default is 1)."
            )
        self._pool = None

    async def connect(self) -> None:
        """Open the pool and detect the server flavour, version and binary collation."""
        try:
            import aiomysql  # noqa: F401 - imported only to fail early when missing
        except ImportError as exc:
            raise MissingDependencyError("aiomysql", extra="mysql") from exc
        self._pool = ConnectionPool(
            self._open,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            name=str(self.url),
            ping_after=self.settings["ping_interval"],
            recycle=self.settings["pool_recycle"],
        )
        try:
            await self._pool.open()
            conn = await self._pool.acquire()
            try:
                await self._detect(conn)
            finally:
                await self._pool.release(conn)
        except BaseException as exc:
            await self.disconnect()
            if isinstance(exc, Exception) and not isinstance(exc, DatabaseError):
                raise self.translate_error(exc) from exc
            raise

    async def _detect(self, conn: MySQLConnection) -> None:
        version_text = str(await conn.fetch_val("SELECT VERSION()", ()))
        ops, features = self.ops, self.features
        ops.is_mariadb = "mariadb" in version_text.lower()
        ops.telemetry_name = "mariadb" if ops.is_mariadb else "mysql"
        digits = version_text.split("-", 1)[0].split(".")
        ops.server_version = tuple(int(d) for d in digits if d.isdigit())
        rows = await conn.fetch_all(
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS "
            "WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')",
            (),
        )
        available = {row[0] for row in rows}
        # aiomysql writes the values into the statement: bulk_create() keeps each INSERT
        # below the server's packet limit.
        packet, lock_mode, step = (
            await conn.fetch_all(
                "SELECT @@max_allowed_packet, @@innodb_autoinc_lock_mode, "
                "@@auto_increment_increment",
                (),
            )
        )[0]
        features.max_statement_bytes = int(packet)
        # Lock modes 0 ("traditional") and 1 ("consecutive", MariaDB's default) give the rows of
        # one multi-row INSERT consecutive keys, auto_increment_increment apart; mode 2
        # ("interleaved", MySQL 8's default) may interleave concurrent statements' keys.
        features.bulk_insert_id_step = int(step) if int(lock_mode) in (0, 1) else None
        for name in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin"):
            if name in available:
                ops.text_collation = name
                break
        if ops.is_mariadb:
            features.minimum_version = (10, 5)
            # MariaDB 10.5+ has INSERT ... RETURNING (not UPDATE ... RETURNING, so
            # supports_returning stays off): bulk_create() reads the new keys from it.
            features.can_return_rows_from_bulk_insert = ops.server_version >= (10, 5)
            features.has_select_for_update_skip_locked = ops.server_version >= (10, 6)

    async def _open(self) -> MySQLConnection:
        from pymysql.constants import CLIENT

        settings = self.settings
        sql_mode = str(settings["sql_mode"]).replace("'", "")
        timeout = float(settings["command_timeout"])
        # The server interrupts a statement past command_timeout and the connection stays
        # usable. MariaDB's max_statement_time (every statement) is in a /*M! */ comment
        # only MariaDB runs; MySQL's max_execution_time (SELECT only) is set after connect.
        statement_limit = f" /*M!100101 , max_statement_time = {timeout:.6f} */" if timeout else ""
        raw = driver_connection_class()(
            host=self.url.host or "localhost",
            port=self.url.port or 3306,
            user=self.url.username or "root",
            password=self.url.password or "",
            db=self.url.database or None,
            unix_socket=settings["unix_socket"],
            charset="utf8mb4",
            autocommit=True,
            local_infile=False,
            client_flag=CLIENT.FOUND_ROWS,
            connect_timeout=settings["connect_timeout"],
            cursorclass=cursor_classes()[0],
            init_command=(
                f"SET SESSION sql_mode = '{sql_mode}', time_zone = '+00:00'{statement_limit}"
            ),
        )
        try:
            await raw._connect()
            if timeout and "mariadb" not in str(raw.get_server_info()).lower():
                async with raw.cursor() as cursor:
                    await cursor.execute(
                        f"SET SESSION max_execution_time = {math.ceil(timeout * 1000)}"
                    )
        except BaseException as exc:
            raw.close()
            # The pool calls _open() at connect and whenever a checkout needs a new
            # connection: either way a refused connection is a covet error (issue 23).
            if isinstance(exc, Exception):
                raise self.translate_connect_error(exc) from exc
            raise
        return MySQLConnection(self, raw)

    async def disconnect(self) -> None:
        """Close every connection."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # acquire() and release() hand back the pool's coroutine rather than awaiting it in
    # one of their own: one coroutine fewer on the path of every statement.

    def acquire(self) -> Coroutine[Any, Any, MySQLConnection]:
        """Check out a connection: closed sockets are skipped, long-idle ones pinged first."""
        return self._require_pool().acquire()

    def release(self, conn: BaseConnection) -> Coroutine[Any, Any, None]:
        """Return a connection to the pool (awaitable)."""
        assert isinstance(conn, MySQLConnection)  # noqa: S101 - internal invariant
        if self._pool is None:
            conn.raw.close()
            return released()
        return self._pool.release(conn)

    async def replace_raw(self, conn: BaseConnection) -> None:
        """Swap a dead connection's socket for a new one."""
        conn.raw.close()
        fresh = await self._open()
        conn.raw = fresh.raw
        conn.broken = False

    def on_disconnect(self) -> None:
        """Have every idle connection pinged at its next checkout, whatever ``ping_interval``."""
        if self._pool is not None:
            self._pool.expire()

    def translate_connect_error(self, exc: BaseException) -> DatabaseError:
        """Classify a failure to open a connection: unreachable, no database, login refused."""
        if isinstance(exc, DatabaseError):
            return exc
        url = self.url
        socket_path = self.settings["unix_socket"]
        if socket_path:
            address = f"the socket {socket_path!r}"
        else:
            address = server_address(url.host, url.port, 3306)
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        detail = str(exc.args[1]) if errno is not None and len(exc.args) > 1 else str(exc)
        if errno == _ER_BAD_DB_ERROR:
            return missing_database_error(
                self.display_name, url.database, address, _create_database_command(url, self)
            )
        if errno in _LOGIN_ERRNOS:
            return login_refused_error(self.display_name, url.username or "root", address, detail)
        if errno == _CR_CONN_HOST_ERROR:
            # aiomysql chains the socket error (refused, unknown host, timeout) as the cause.
            cause = exc.__cause__ or exc
            reason = connect_failure_reason(cause, self.settings["connect_timeout"])
            return unreachable_error(self.display_name, address, reason or detail)
        reason = connect_failure_reason(exc, self.settings["connect_timeout"])
        if reason is not None:
            return unreachable_error(self.display_name, address, reason)
        return self.translate_error(exc)

    def translate_error(self, exc: BaseException) -> DatabaseError:
        """Map a pymysql/aiomysql exception to the covet class."""
        if self.is_disconnect(exc):
            return disconnect_error(exc, self.display_name)
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        message = str(exc.args[1]) if errno is not None and len(exc.args) > 1 else str(exc)
        if errno in _STATEMENT_TIMEOUT_ERRNOS:
            return statement_timeout_error(self.display_name, self.settings["command_timeout"])
        if errno is not None and errno in _ERRNO_MAP:
            return _ERRNO_MAP[errno](message)
        for driver_class, covet_class in _driver_error_map():
            if isinstance(exc, driver_class):
                return covet_class(message)
        if isinstance(exc, OSError):
            return DatabaseUnavailableError(f"Cannot reach MySQL at {self.url}: {exc}")
        return DatabaseError(f"{type(exc).__name__}: {message}")

    def is_disconnect(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` means the connection or the server is gone."""
        import pymysql

        if isinstance(exc, (ConnectionError, asyncio.IncompleteReadError)):
            return True
        if isinstance(exc, pymysql.err.InterfaceError):
            return True
        if isinstance(exc, pymysql.err.OperationalError) and exc.args:
            return exc.args[0] in _DISCONNECT_ERRNOS
        return False

    def not_sent(self, exc: BaseException) -> bool:
        """Tell whether the driver refused to send because the socket was already closed."""
        import pymysql

        return isinstance(exc, pymysql.err.InterfaceError)
