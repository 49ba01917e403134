"""One pooled asyncpg connection, and the direct path for statements it has prepared before.

asyncpg's ``Connection.fetch()`` reaches its protocol's ``bind_execute()``
through four coroutines (``fetch``, ``_execute``, ``__execute``,
``_do_execute``), a statement-cache coroutine, a lambda and a context
manager: about 19,000 instructions per statement on CPython 3.11, a quarter
of what the driver spends on a ``get()`` by primary key (issue 22, measured
with ``benchmarks/orm/hotpath.py --instructions``). Once asyncpg has prepared a
statement and holds it in the connection's own statement cache, covet hands
the statement to ``bind_execute()`` itself; everything else takes asyncpg's
public methods: a statement's first run (prepare and type introspection), a
long statement asyncpg does not cache, ``statement_cache_size=0``
(PgBouncer), a closed connection, a query logger added to the raw
connection, and an asyncpg whose internals differ from the ones checked in
:func:`direct_record_class`.

What asyncpg's public path does around ``bind_execute()``, and where the
direct path does it:

- the closed-connection check: ``protocol.is_connected()`` before sending, so
  a closed connection raises asyncpg's own error from the public path;
- the statement cache's LRU order and lifetime: ``_stmt_cache.get()``, as
  asyncpg calls it;
- the one re-prepare after ``InvalidCachedStatementError`` (a table altered
  under a cached statement) outside a transaction, and the schema reload
  after ``OutdatedSchemaCacheError``: :meth:`PostgresConnection._recover`,
  reached from ``_run()``'s error path;
- ``command_timeout``: covet leaves asyncpg's at None (the server's
  ``statement_timeout`` and the backend's watchdog bound a statement), so
  both paths pass no timeout;
- "another operation is in progress": the protocol checks it itself, and
  covet's statement lock serializes a connection's statements.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from covet.db.backends.base import BaseConnection
from covet.db.backends.postgres.session import RESET_SQL, changes_session

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

    from covet.db.backends.postgres import PostgresBackend
    from covet.db.exceptions import DatabaseError

__all__ = ("DIRECT_ASYNCPG", "PostgresConnection", "direct_record_class")


#: The asyncpg releases whose internals the direct path was checked against (from the
#: first up to, not including, the second): the positional signature of the protocol's
#: bind_execute(), the statement cache's keys, and what Connection._do_execute() does
#: around it. Any other release takes asyncpg's public methods; widen this after reading
#: the new release's protocol.pyx and connection.py (tests/db/test_postgres_direct.py
#: fails on a release outside it, as a reminder).
DIRECT_ASYNCPG = ((0, 29), (0, 33))


@functools.cache
def _checked_release() -> bool:
    import asyncpg

    try:
        version = tuple(int(part) for part in asyncpg.__version__.split(".")[:2])
    except ValueError:  # a development version such as "0.33.0.dev0" still parses; others not
        return False
    return DIRECT_ASYNCPG[0] <= version < DIRECT_ASYNCPG[1]


def direct_record_class(raw: Any) -> Any:
    """Return the record class of ``raw``'s statement-cache keys, or None for no direct path.

    None when the installed asyncpg is outside :data:`DIRECT_ASYNCPG` or ``raw``
    lacks one of the internals the direct path uses (``_stmt_cache.get``,
    ``_protocol.bind_execute``/``is_connected``/``get_record_class``,
    ``_query_loggers``): such a connection always takes asyncpg's public
    methods.
    """
    if not _checked_release():
        return None
    try:
        protocol = raw._protocol
        record_class = protocol.get_record_class()
        callable_ = all(
            callable(f) for f in (raw._stmt_cache.get, protocol.bind_execute, protocol.is_connected)
        )
        raw._query_loggers  # noqa: B018 - an attribute the direct path reads
    except AttributeError:
        return None
    return record_class if callable_ else None


def _status_count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 3" or "INSERT 0 5".
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class PostgresConnection(BaseConnection):
    """One asyncpg connection in covet's pool."""

    backend: PostgresBackend

    def __init__(self, backend: PostgresBackend, raw: Any) -> None:
        super().__init__(backend, raw)
        #: Statements started, read by the backend's watchdog (see PostgresBackend._watch).
        self.statements = 0
        #: The watchdog's last sighting: the statement count, and how many scans in a row
        #: found that same statement still running.
        self.watch_mark = -1
        self.watch_strikes = 0
        #: Set by the watchdog when it gave up on a statement and closed the connection.
        self.timed_out = False
        #: The record class in asyncpg's statement-cache keys; None: no direct path.
        self._record_class = direct_record_class(raw)

    def _prepared(self, sql: str) -> Any:
        """Return asyncpg's cached statement for ``sql`` when the direct path may run it, or None.

        Promotes it in asyncpg's LRU cache, as asyncpg's own lookup does.
        """
        record_class = self._record_class
        if record_class is None:
            return None
        raw = self.raw
        statement = raw._stmt_cache.get((sql, record_class, False))
        if statement is None or raw._query_loggers:
            return None
        protocol = raw._protocol
        if protocol is None or not protocol.is_connected():
            return None  # closed: asyncpg's public method raises its own error
        return statement

    def _note_session(self, sql: str) -> None:
        self.statements += 1
        # One cached lookup per statement (see changes_session()).
        change = changes_session(sql)
        if change:
            self.session_changed = True
            if change == 2:
                # Closed on release rather than reset (see session.py); still usable now.
                self.broken = True

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        self._note_session(sql)
        if params:
            statement = self._prepared(sql)
            if statement is not None:
                result = await self.raw._protocol.bind_execute(statement, params, "", 0, True, None)
                return _status_count(result[1].decode())
        # Without parameters asyncpg sends the simple query protocol (several statements).
        return _status_count(await self.raw.execute(sql, *params))

    async def _execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None:
        self._note_session(sql)
        await self.raw.executemany(sql, seq_of_params)

    async def _insert(self, sql: str, params: Sequence[Any], returning: bool) -> Any:
        self.statements += 1
        raw = self.raw
        statement = self._prepared(sql) if params else None
        if statement is not None:
            rows = await raw._protocol.bind_execute(statement, params, "", 1, False, None)
            return rows[0][0] if returning and rows else None
        if returning:
            return await raw.fetchval(sql, *params)
        await raw.execute(sql, *params)
        return None

    # A plain function handing back the protocol's (or asyncpg's) coroutine: one frame
    # fewer per query.

    def _fetch_all(self, sql: str, params: Sequence[Any]) -> Awaitable[list[Sequence[Any]]]:
        self._note_session(sql)
        statement = self._prepared(sql)
        rows: Awaitable[list[Sequence[Any]]]
        if statement is not None:
            rows = self.raw._protocol.bind_execute(statement, params, "", 0, False, None)
        else:
            rows = self.raw.fetch(sql, *params)
        return rows

    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
        self._note_session(sql)
        statement = self._prepared(sql)
        if statement is None:
            row: Sequence[Any] | None = await self.raw.fetchrow(sql, *params)
            return row
        rows = await self.raw._protocol.bind_execute(statement, params, "", 1, False, None)
        return rows[0] if rows else None

    async def _fetch_described(
        self, sql: str, params: Sequence[Any]
    ) -> tuple[Sequence[str], list[Sequence[Any]]]:
        self._note_session(sql)
        statement = self._prepared(sql)
        if statement is None:
            rows = await self.raw.fetch(sql, *params)
        else:
            rows = await self.raw._protocol.bind_execute(statement, params, "", 0, False, None)
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
                self.statements += 1
                cursor = await self.raw.cursor(sql, *params)
            while True:
                async with self._lock:
                    self.statements += 1
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
        self.statements += 1
        await self.raw.execute(f"BEGIN ISOLATION LEVEL {isolation}" if isolation else "BEGIN")

    def is_usable(self) -> bool:
        """Tell whether asyncpg still has the socket open (no I/O).

        A server that ends a connection (``pg_terminate_backend``, a restart, an
        idle timeout) closes the socket; once the event loop has seen it, asyncpg
        marks the connection closed and the checkout replaces it without a round
        trip. A close not seen yet passes, and the retry rule of
        :meth:`~BaseConnection._run` handles it.
        """
        return not self.raw.is_closed()

    async def ping(self) -> None:
        """Check the connection with ``SELECT 1`` (bounded by the pool's ``timeout``)."""
        # Outside the op lock, so out of the watchdog's sight: its own client-side timer
        # (a ping is rare: after pre_ping_after seconds idle, or a lost server).
        await self.raw.fetchval("SELECT 1", timeout=self.backend.timeout)

    async def reset(self) -> None:
        """Roll back, then undo session state when a statement changed it."""
        await super().reset()
        if self.session_changed:
            # RESET ALL also undid covet's own statement_timeout: set it again.
            sql = (
                RESET_SQL + "; " + self.backend._session_sql
                if self.backend._session_sql
                else RESET_SQL
            )
            await self.raw.execute(sql, timeout=self.backend.timeout)
            self.session_changed = False

    async def _recover(
        self, exc: Exception, method: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> bool:
        """Also re-run, once, a statement whose cached prepared form the server refused.

        What asyncpg's public methods do for the statements the direct path sends
        (see the module): after ``InvalidCachedStatementError`` (a table or type
        altered since the statement was prepared) the connection's statement
        cache is dropped, and outside a transaction the statement runs again
        (prepared anew); after ``OutdatedSchemaCacheError`` asyncpg's type cache
        is reloaded and the error stands.
        """
        import asyncpg

        if isinstance(exc, asyncpg.exceptions.InvalidCachedStatementError):
            raw = self.raw
            raw._drop_global_statement_cache()
            return not (self.in_transaction or raw.is_in_transaction())
        if isinstance(exc, asyncpg.exceptions.OutdatedSchemaCacheError):
            await self.raw.reload_schema_state()
            return False
        return await super()._recover(exc, method, args)

    def _fail(self, exc: Exception) -> DatabaseError:
        if self.timed_out:
            # The watchdog closed the connection under this statement: say so, rather
            # than "connection lost", and leave the rest of the pool alone.
            self.broken = True
            return self.backend.watchdog_error()
        return super()._fail(exc)

    async def close(self) -> None:
        """Close the connection: politely when it is healthy, at once otherwise."""
        raw = self.raw
        if self.broken or self.dirty or raw.is_closed():
            raw.terminate()
            return
        try:
            await raw.close(timeout=1.0)
        except Exception:  # noqa: BLE001 - Terminate is a courtesy; drop the socket regardless
            raw.terminate()
