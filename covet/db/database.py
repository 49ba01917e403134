"""``Database``: one configured database, its connection pool and raw SQL helpers.

>>> db = Database("sqlite:///app.db", max_size=4)   # doctest: +SKIP
>>> await db.connect()                              # doctest: +SKIP

The first database connected becomes the default that the ORM and
:func:`covet.db.transaction` use; others are reached by alias with
:func:`get_database`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.parse
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from covet.db.backends import get_backend_class, url_form
from covet.db.backends.base import (
    BaseBackend,
    BaseConnection,
    BaseFeatures,
    BaseOperations,
    Option,
    PoolStats,
    Record,
    released,
)
from covet.db.exceptions import DatabaseUnavailableError, InterfaceError
from covet.db.execution import run_execute, run_fetch_one
from covet.db.params import bind_named
from covet.db.transactions import Transaction, TransactionState
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Coroutine, Mapping, Sequence
    from types import TracebackType

__all__ = (
    "Database",
    "DatabaseURL",
    "Record",
    "StatementEpoch",
    "connected_databases",
    "get_database",
    "statement_epoch",
)

_COMMON_OPTIONS: dict[str, Option] = {
    "min_size": Option(int, None, "connections kept open"),
    "max_size": Option(int, None, "the most connections open at once"),
    "timeout": Option(float, 10.0, "seconds to wait for a free connection"),
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

logger = logging.getLogger("covet.db")

_registry: dict[str, Database] = {}
_default: list[Database] = []


class StatementEpoch:
    """A counter bumped whenever a statement remembered with its database may have gone stale.

    A manager remembers the ``get(name=value)`` statement with the database it
    runs on (see :class:`covet.db.statements.RememberedGet`), so that a call
    skips deriving the statement's key. That holds while the default database,
    the routers and the statement cache are unchanged: :meth:`Database.connect`,
    :meth:`Database.disconnect`, ``set_routers()`` and clearing the statement
    cache bump this counter, and a remembered statement of another epoch is not used.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        """Make every statement remembered so far stale."""
        self.value += 1


#: The one :class:`StatementEpoch` of the process.
statement_epoch = StatementEpoch()


class DatabaseURL:
    """A parsed database URL whose ``str()`` and ``repr()`` hide the password.

    Args:
        url: ``scheme://user:password@host:port/database?option=value``.
    """

    def __init__(self, url: str) -> None:
        if "://" not in url:
            raise ImproperlyConfigured(
                f"Invalid database URL {url!r}. Use e.g. 'sqlite:///app.db', "
                "'postgresql://user@host/db' or 'mysql://user@host/db'."
            )
        self._url = url
        parts = urllib.parse.urlsplit(url)
        self.scheme = parts.scheme.lower()
        self.username = urllib.parse.unquote(parts.username) if parts.username else None
        self.password = urllib.parse.unquote(parts.password) if parts.password else None
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            # urlsplit() refuses a port that is not a number from 0 to 65535; 0 cannot be a
            # server's port either.
            raw_port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
            raise ImproperlyConfigured(
                f"Invalid port {raw_port!r} in the database URL {str(self)!r}. Use "
                f"{url_form(self.scheme)}, with PORT a number from 1 to 65535."
            )
        self.port = port
        self.host = parts.hostname
        self.path = parts.path
        self.query: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if key in self.query:
                raise ImproperlyConfigured(
                    f"Database URL option {key!r} is given twice in {self!s}. Give it once."
                )
            self.query[key] = value

    @property
    def database(self) -> str:
        """Return the database name (or, for SQLite, the file path or ``:memory:``)."""
        path = self.path
        if self.scheme.startswith("sqlite"):
            # sqlite:///rel.db -> "rel.db"; sqlite:////abs.db -> "/abs.db".
            return path[1:] if path.startswith("/") else path
        return urllib.parse.unquote(path.lstrip("/"))

    def render_as_string(self, *, hide_password: bool = True) -> str:
        """Return the URL, with the password replaced by ``***`` unless told otherwise."""
        if hide_password and self.password is not None:
            parts = urllib.parse.urlsplit(self._url)
            userinfo, _, hostinfo = parts.netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))
        return self._url

    def without_query(self) -> str:
        """Return the full URL (with password) minus its query string, for the driver."""
        parts = urllib.parse.urlsplit(self._url)
        return urllib.parse.urlunsplit(parts._replace(query=""))

    def __str__(self) -> str:
        return self.render_as_string()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.render_as_string()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatabaseURL) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)


def _parse_option(name: str, spec: Option, value: Any, url: DatabaseURL) -> Any:
    """Convert an option value (a string from the URL, or a Python value) to its type."""
    expected = spec.type
    if isinstance(value, str) and expected is not str:
        text = value.strip().lower()
        try:
            if expected is bool:
                if text in _TRUE:
                    return True
                if text in _FALSE:
                    return False
                raise ValueError(text)
            return expected(text)
        except ValueError:
            raise ImproperlyConfigured(
                f"Invalid value {value!r} for database option {name!r} ({spec.help}) in "
                f"{url}. Use a {expected.__name__}."
            ) from None
    if value is None and spec.default is None:
        return None
    ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ImproperlyConfigured(
            f"Invalid value {value!r} for database option {name!r} ({spec.help}). "
            f"Use a {expected.__name__}."
        )
    return value


class _ConnectionContext:
    """The async context manager behind :meth:`Database.connection` (kept lean: hot path).

    Every ORM statement outside a transaction goes through one of these, so it
    does as little as it can: one attribute set in ``__init__``, and an
    ``__aexit__`` that hands back the pool's release coroutine (or a no-op one)
    for ``async with`` to await, rather than awaiting it in a coroutine of its own.
    """

    __slots__ = ("_conn", "_db")

    def __init__(self, db: Database) -> None:
        self._db = db

    async def __aenter__(self) -> BaseConnection:
        db = self._db
        state = db._transaction_var.get()
        if state is not None:
            # The transaction's connection: not ours to return (_conn None says so).
            self._conn = None
            return state.connection_for_statement()
        if not db._connected:
            db._require_backend()  # raises the "not connected" error
        try:
            self._conn = conn = await db._backend.acquire()
        except DatabaseUnavailableError as exc:
            if db.fallback is None:
                raise
            return await self._fall_back(exc)
        return conn

    async def _fall_back(self, exc: DatabaseUnavailableError) -> BaseConnection:
        """Run on ``db.fallback`` instead of the unreachable ``db`` (a replica)."""
        db = self._db
        db.unavailable_until = time.monotonic() + db.fallback_cooldown
        logger.warning(
            "Database %r is unavailable (%s); using %r for %.0f s.",
            db.alias,
            exc,
            db.fallback,
            db.fallback_cooldown,
        )
        self._db = other = get_database(db.fallback)
        state = other._transaction_var.get()
        if state is not None:
            self._conn = None
            return state.connection_for_statement()
        if not other._connected:
            other._require_backend()
        self._conn = conn = await other._backend.acquire()
        return conn

    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        conn = self._conn
        if conn is None:
            return released()  # the transaction's connection: not ours to return
        self._conn = None
        # Returned even if the database was disconnected meanwhile: the backend closes
        # a connection that has no pool to go back to.
        return self._db._backend.release(conn)


class Database:
    """A database: URL, connection pool, raw SQL and transactions.

    The URL picks the backend (``sqlite:///rel.db``, ``sqlite:////abs.db``,
    ``sqlite:///:memory:``, ``postgresql://``, ``mysql://``/``mariadb://``).
    Options may be keyword arguments or URL query parameters
    (``?max_size=20&command_timeout=5``); see ``docs/orm/databases.md``.

    Args:
        url: The database URL.
        alias: The name :func:`get_database` finds this database by.
        min_size: Connections kept open (backend default when None).
        max_size: The most connections open at once (backend default when None).
        timeout: Seconds to wait for a free connection before :class:`PoolTimeout`.
        fallback: For a read replica: the alias of the database (the primary) whose
            connection a statement uses when this one is unreachable
            (:class:`DatabaseUnavailableError`, pool exhaustion included). Routers
            then skip this database for ``fallback_cooldown`` (5) seconds.
        **options: Backend options such as ``command_timeout`` or ``search_path``.

    Raises:
        ImproperlyConfigured: Unknown scheme, unknown option or bad option value.
    """

    def __init__(
        self,
        url: str,
        *,
        alias: str = "default",
        min_size: int | None = None,
        max_size: int | None = None,
        timeout: float = 10.0,
        fallback: str | None = None,
        **options: Any,
    ) -> None:
        self.url = DatabaseURL(url)
        self.alias = alias
        #: The alias whose connections stand in while this database is unreachable.
        self.fallback = fallback
        #: Seconds a database with a fallback is skipped by routers after failing.
        self.fallback_cooldown = 5.0
        #: ``time.monotonic()`` until which routers skip this database (after a failure).
        self.unavailable_until = 0.0
        backend_class = get_backend_class(self.url.scheme, url=str(self.url))
        specs = {**_COMMON_OPTIONS, **backend_class.options}
        given: dict[str, Any] = {}
        for key, value in self.url.query.items():
            if key in backend_class.driver_query_keys:
                continue
            given[key] = value
        explicit: dict[str, Any] = {"min_size": min_size, "max_size": max_size}
        if timeout != 10.0:
            explicit["timeout"] = timeout
        for key, value in {**explicit, **options}.items():
            if value is not None or key in options:
                given[key] = value
        unknown = sorted(set(given) - set(specs))
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown database option(s) {', '.join(map(repr, unknown))} for "
                f"{backend_class.display_name}. Valid options: {', '.join(sorted(specs))}."
            )
        parsed = {key: spec.default for key, spec in specs.items()}
        for key, value in given.items():
            parsed[key] = _parse_option(key, specs[key], value, self.url)
        if parsed["timeout"] is None or parsed["timeout"] <= 0:
            raise ImproperlyConfigured(
                f"Invalid timeout {parsed['timeout']!r}. Use a positive number of seconds."
            )
        min_s, max_s, time_s = parsed.pop("min_size"), parsed.pop("max_size"), parsed.pop("timeout")
        try:
            self._backend: BaseBackend = backend_class(
                self.url, min_size=min_s, max_size=max_s, timeout=time_s, options=parsed
            )
        except ValueError as exc:
            if isinstance(exc, ImproperlyConfigured):
                raise
            raise ImproperlyConfigured(str(exc)) from None
        self._backend.alias = alias
        self.timeout: float = time_s
        self._connected = False
        self._transaction_var: ContextVar[TransactionState | None] = ContextVar(
            f"covet_transaction_{alias}_{id(self)}", default=None
        )

    # -- description ---------------------------------------------------------------------

    @property
    def vendor(self) -> str:
        """Return ``"sqlite"``, ``"postgres"`` or ``"mysql"`` (for display; ask features)."""
        return self._backend.vendor

    @property
    def features(self) -> BaseFeatures:
        """Return the backend's capability flags (refined at connect from the server version)."""
        return self._backend.features

    @property
    def ops(self) -> BaseOperations:
        """Return the backend's SQL operations (quoting, placeholders, lookups, adapters)."""
        return self._backend.ops

    @property
    def backend(self) -> BaseBackend:
        """Return the backend object (pool and driver glue)."""
        return self._backend

    @property
    def is_connected(self) -> bool:
        """Tell whether :meth:`connect` has run (and :meth:`disconnect` has not)."""
        return self._connected

    @property
    def settings(self) -> Mapping[str, Any]:
        """Return the parsed backend options."""
        return self._backend.settings

    def pool_stats(self) -> PoolStats:
        """Return the pool's current size, idle count and maximum."""
        return self._require_backend().stats()

    def __repr__(self) -> str:
        return f"<Database {self.alias!r} {self.url} connected={self._connected}>"

    # -- lifecycle -----------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the pool and register this database under its alias.

        Raises:
            ImproperlyConfigured: Another connected database uses the same alias.
            OperationalError: The server cannot be reached.
        """
        if self._connected:
            return
        existing = _registry.get(self.alias)
        if existing is not None and existing is not self:
            raise ImproperlyConfigured(
                f"Another connected database already uses alias {self.alias!r} "
                f"({existing.url}). Give this one a different alias= or disconnect the other."
            )
        await self._backend.connect()
        self._connected = True
        _registry[self.alias] = self
        if not _default:
            _default.append(self)
        statement_epoch.bump()

    async def disconnect(self) -> None:
        """Close every connection and unregister; the next connected database may be default."""
        if not self._connected:
            return
        self._connected = False
        if _registry.get(self.alias) is self:
            del _registry[self.alias]
        if _default and _default[0] is self:
            _default.clear()
            if _registry:
                _default.append(next(iter(_registry.values())))
        statement_epoch.bump()
        await self._backend.disconnect()

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    def _require_backend(self) -> BaseBackend:
        if not self._connected:
            raise InterfaceError(
                f"Database {self.alias!r} ({self.url}) is not connected. "
                "Call `await db.connect()` (or use `async with Database(...) as db`) first."
            )
        return self._backend

    # -- connections and transactions ----------------------------------------------------

    def connection(self) -> _ConnectionContext:
        """Return an async context manager yielding a :class:`BaseConnection`.

        Inside :func:`covet.db.transaction` for this database it yields the
        transaction's connection; otherwise one checked out of the pool and
        returned when the block exits.
        """
        return _ConnectionContext(self)

    def in_transaction(self) -> bool:
        """Tell whether the current task is inside a :func:`transaction` on this database."""
        return self._transaction_var.get() is not None

    def transaction(self, *, isolation: str | None = None, savepoint: bool = True) -> Transaction:
        """Return a transaction on this database (see :func:`covet.db.transaction`)."""
        return Transaction(self, isolation=isolation, savepoint=savepoint)

    # -- raw SQL -----------------------------------------------------------------------

    def _bind(self, sql: str, params: Mapping[str, Any] | None) -> tuple[str, tuple[Any, ...]]:
        return bind_named(sql, params, self._backend.ops.param_style)

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run one statement with ``:name`` placeholders; return the affected row count.

        Raises:
            ProgrammingError: Invalid SQL, or missing/extra parameters.
            IntegrityError: A constraint failed.
        """
        query, args = self._bind(sql, params)
        return await run_execute(self, query, args)

    async def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement once per mapping of ``:name`` values."""
        if not params:
            return
        rows = [self._bind(sql, item)[1] for item in params]
        query = self._bind(sql, params[0])[0]
        async with self.connection() as conn:
            await conn.execute_many(query, rows)

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Record]:
        """Run a query and return every row as a :class:`Record`."""
        query, args = self._bind(sql, params)
        async with self.connection() as conn:
            return await conn.fetch_records(query, args)

    async def fetch_one(self, sql: str, params: Mapping[str, Any] | None = None) -> Record | None:
        """Run a query and return its first row, or None."""
        query, args = self._bind(sql, params)
        async with self.connection() as conn:
            rows = await conn.fetch_records(query, args)
        return rows[0] if rows else None

    async def fetch_val(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """Run a query and return the first column of its first row (None without rows)."""
        query, args = self._bind(sql, params)
        row = await run_fetch_one(self, query, args)
        return None if row is None else row[0]

    async def iterate(
        self, sql: str, params: Mapping[str, Any] | None = None, *, chunk_size: int = 500
    ) -> AsyncGenerator[Record, None]:
        """Stream the rows of a query as :class:`Record` objects.

        Uses a server-side cursor where the backend has one, so memory stays
        bounded by ``chunk_size``. The connection is held until the loop ends.
        """
        query, args = self._bind(sql, params)
        async with (
            self.connection() as conn,
            contextlib.aclosing(conn.iterate_records(query, args, chunk_size)) as rows,
        ):
            async for row in rows:
                yield row


def get_database(alias: str | None = None) -> Database:
    """Return the connected database with ``alias``, or the default one.

    The default is the first database connected (and still connected).

    Raises:
        ImproperlyConfigured: No such database is connected.
    """
    if alias is None:
        if _default:
            return _default[0]
        raise ImproperlyConfigured(
            "No database is connected. Connect one first with `await Database(url).connect()` "
            "(e.g. in an app on_startup hook); the first one connected becomes the default."
        )
    db = _registry.get(alias)
    if db is None:
        known = ", ".join(map(repr, _registry)) or "none"
        raise ImproperlyConfigured(
            f"No database with alias {alias!r} is connected (connected: {known}). "
            f"Call `await Database(url, alias={alias!r}).connect()` first."
        )
    return db


def connected_databases() -> tuple[Database, ...]:
    """Return the databases connected in this process, in the order they connected."""
    return tuple(_registry.values())
