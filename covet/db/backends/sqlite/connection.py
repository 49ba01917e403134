"""SQLite's connections: the pooled one, and the shared one that queues statements in order.

SQLite allows one writer at a time, so covet queues writers on the backend's
writer lock (a :class:`~covet.db.backends.base.slots.FifoSlots` of one) instead
of letting them fail with "database is locked": write transactions take the
lock and start with ``BEGIN IMMEDIATE``, and a write outside a transaction
takes it for the statement.
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar

from covet.db.backends.base import BaseConnection, is_read_only_sql
from covet.db.backends.sqlite.session import SESSION_STATEMENTS, TRANSACTION_SQL
from covet.db.exceptions import InterfaceError, OperationalError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

    from covet.db.backends.sqlite import SQLiteBackend

__all__ = (
    "SHARED_QUEUE_LIMIT",
    "SHARED_STALL_SECONDS",
    "SQLiteConnection",
    "SharedSQLiteConnection",
)

T = TypeVar("T")


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
        """Take the writer lock, waiting for it (first come, first served) when busy."""
        if not self._take_writer():
            await self._wait_for_writer()

    def _take_writer(self) -> bool:
        """Take the writer lock now if that needs no wait; tell whether it did."""
        lock = self.backend.writer_lock
        if not lock.free:
            return False
        # Free: nobody queues for it (see FifoSlots), so take it without arming a timer.
        lock.free = 0
        self.holds_writer = True
        return True

    async def _wait_for_writer(self) -> None:
        if not await self.backend.writer_lock.wait(self.backend.timeout):
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
        if not self._take_writer():
            await self._wait_for_writer()
        try:
            result = await run()
        except Exception:
            self._release_writer()
            raise
        except BaseException:
            # Cancelled: the statement goes on running in the worker thread.
            self._interrupted_write()
            raise
        self._release_writer()
        return result

    def _interrupted_write(self) -> None:
        """Keep the writer lock of a cancelled write until the connection is closed.

        The pool discards an interrupted connection, which closes it (see the class doc).
        """

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        # Each aiosqlite call is a round trip to the connection's worker thread, which
        # costs more than the statement itself: use as few as the result needs.
        if is_read_only_sql(sql):
            # Run to its end in one round trip, so no cursor is left holding a read snapshot,
            # not even when the caller is cancelled. A query has no row count (sqlite3: -1).
            await self.raw.execute_fetchall(sql, params)
            return 0

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


#: How many statements may be in flight on the shared connection at once; more go to the pool.
SHARED_QUEUE_LIMIT = 128
#: Seconds the shared connection's thread may spend without finishing a statement before new
#: statements go to the pool instead: a long query must not hold up every other one.
SHARED_STALL_SECONDS = 0.02
# How many statement strings the shared connection remembers as fit for it.
_ACCEPTED_LIMIT = 2048


class SharedSQLiteConnection(SQLiteConnection):
    """The connection that statements outside a transaction share, queued on its one thread.

    aiosqlite runs each connection's calls one after another on a thread of its
    own. With a statement per pooled connection, a loaded server keeps several
    threads busy, each woken for one statement and then passing the GIL back
    and forth with the event loop, which costs more CPU than the statements do.
    Queued on one thread, statements run back to back and their results come
    back in batches. This connection is not in the pool and never waits to be
    checked out: the backend's
    :meth:`~covet.db.backends.sqlite.SQLiteBackend.checkout_now` hands it to a
    statement the ORM runs outside a transaction, and its ``checkin_now()``
    takes it back without a pool. It takes a statement only
    when every other on it would be unaffected:

    * each method it runs finishes its statement in one round trip
      (``execute_fetchall()``, or ``execute()`` of a write), so no cursor or
      read snapshot outlives a statement, even a cancelled one;
    * statements that leave session state (``PRAGMA x = y``, ``ATTACH``, a
      temporary table: see ``session.py``) go to the pool, whose connection
      is then closed, and so does transaction control sent as raw SQL;
    * transactions, streams (``iterate()``) and ``db.connection()`` blocks
      check out a pooled connection as before;
    * once :data:`SHARED_QUEUE_LIMIT` statements are in flight, or the thread
      has gone :data:`SHARED_STALL_SECONDS` without finishing one (a long
      query), new statements go to the pool, whose threads run in parallel
      (see :meth:`takes`);
    * a write takes the writer lock like any other, except that writes queued
      here share one hold on it (see :meth:`_take_writer`); when one is
      cancelled while running, the lock is freed once the thread has finished
      it.
    """

    statement_slots = SHARED_QUEUE_LIMIT

    def __init__(self, backend: SQLiteBackend, raw: Any) -> None:
        super().__init__(backend, raw)
        # Progress of a busy thread: the finished count last seen, and since when.
        self._finished_seen = 0
        self._busy_since = 0.0
        #: Writes sharing this connection's hold on the writer lock (see _take_writer()).
        self.writes = 0
        self._drains: set[asyncio.Future[Any]] = set()
        self._accepted: set[str] = set()

    @property
    def in_flight(self) -> int:
        """The statements running or queued on this connection."""
        return SHARED_QUEUE_LIMIT - self._lock.slot.free

    def takes(self, sql: str) -> bool:
        """Tell whether ``sql`` should run on this connection now rather than a pooled one.

        A statement is never checked out of here, so ``_run()`` never waits for a
        slot: a full queue sends it to the pool instead. So does a thread that
        has finished nothing for :data:`SHARED_STALL_SECONDS` since it was handed
        a statement while idle, or since it last finished one (a long query, or
        a write waiting for the writer lock while a transaction holds it).
        """
        free = self._lock.slot.free
        if free == SHARED_QUEUE_LIMIT:  # idle: its clock starts with this statement
            self._finished_seen = self.finished
            self._busy_since = monotonic()
        elif not free:
            return False
        elif self.finished != self._finished_seen:  # it finished one since: still moving
            self._finished_seen = self.finished
            self._busy_since = monotonic()
        elif monotonic() - self._busy_since > SHARED_STALL_SECONDS:
            return False
        if self.broken:
            return False  # lost (closed): the pool runs everything from now on
        return sql in self._accepted or self._accepts(sql)

    def _accepts(self, sql: str) -> bool:
        """Tell whether ``sql`` may ever run here, remembering the statements that may.

        Not transaction control (a raw ``BEGIN`` would take in every statement
        queued after it), nor a statement that leaves session state (see
        ``session.py``): those run on a pooled connection.
        """
        if TRANSACTION_SQL.search(sql) is not None or SESSION_STATEMENTS.changes_session(sql):
            return False
        accepted = self._accepted
        if len(accepted) >= _ACCEPTED_LIMIT:
            accepted.clear()
        accepted.add(sql)
        return True

    def _take_writer(self) -> bool:
        """Take the writer lock, or join this connection's hold on it when nobody waits.

        Writes queued on this one thread run one after another, so while it
        holds the lock further writes need not wait for each other: they join
        the hold, which ends when the last of them finishes. Once anyone else
        (a transaction) waits for the lock, new writes queue behind it instead,
        so a stream of writes here cannot starve it.
        """
        if self.holds_writer:
            if self.backend.writer_lock.waiters:
                return False
            self.writes += 1
            return True
        if super()._take_writer():
            self.writes = 1
            return True
        return False

    async def _wait_for_writer(self) -> None:
        await super()._wait_for_writer()
        # Handed the lock: this connection did not hold it (the lock has one slot).
        self.writes = 1

    def _release_writer(self) -> None:
        if self.holds_writer:
            self.writes -= 1
            if self.writes <= 0:
                self.writes = 0
                super()._release_writer()

    def _interrupted_write(self) -> None:
        """Free the writer lock once the thread has finished the cancelled write.

        Nobody discards this connection, so the lock cannot wait for a close. A
        no-op queued behind the write finishes after it on the same thread.
        """
        drain = asyncio.ensure_future(self.raw.execute_fetchall("SELECT 1"))
        self._drains.add(drain)
        drain.add_done_callback(self._drained)

    def _drained(self, drain: asyncio.Future[Any]) -> None:
        self._drains.discard(drain)
        if not drain.cancelled():
            drain.exception()  # retrieved: a closed connection fails it, and that is fine
        self._release_writer()
