"""The pooled connection the ORM and raw SQL run statements on."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from time import perf_counter
from typing import TYPE_CHECKING, Any

from covet.db.backends.base.records import Record, is_read_only_sql, make_index
from covet.db.backends.base.slots import FifoSlots
from covet.db.exceptions import DatabaseError, InterfaceError, TransactionRollbackError
from covet.db.querylog import current_log, observers, record

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence

    from covet.db.backends.base.backend import BaseBackend

__all__ = ("BaseConnection",)


class _OpLock:
    """Serialize statements on one connection and refuse re-entrant use from the same task.

    Two tasks sharing a transaction (``asyncio.gather`` inside ``transaction()``)
    take turns, first come first served, instead of tripping the driver's
    "another operation is in progress". The same task re-entering (a statement
    inside an unfinished unbuffered iteration) would deadlock, so it gets a
    clear error instead.

    Not an ``asyncio.Lock``: every statement takes this lock, and the uncontended
    case should cost a counter test. It is one :class:`FifoSlots` slot (taken
    inline when free, which jumps no queue; SQLite's shared connection has more,
    its driver queueing the statements in order), plus one rule:

    * Only holders that give control back to their task's caller while holding
      the lock (a stream yielding rows, via ``async with``) record themselves as
      :attr:`owner`. :meth:`BaseConnection._run` takes the slot inline and
      records nobody: while its statement runs, its task is suspended in the
      driver call and cannot start another statement, so it can never be the
      task that re-enters. The current task is thus looked up only when the
      lock is contended.
    """

    __slots__ = ("owner", "slot")

    def __init__(self, slots: int = 1) -> None:
        self.slot = FifoSlots(slots)
        #: The task streaming a result while holding the lock, when there is one.
        self.owner: asyncio.Task[Any] | None = None

    @property
    def waiters(self) -> deque[asyncio.Future[bool]]:
        """The turns queued for the lock."""
        return self.slot.waiters

    def try_take(self) -> bool:
        """Take the lock when it is free (then nobody waits for it); False when it is busy."""
        slot = self.slot
        if not slot.free:
            return False
        slot.free = 0
        return True

    async def wait(self) -> asyncio.Task[Any] | None:
        """Queue for the busy lock and return the current task once it is this task's turn.

        Raises:
            InterfaceError: The current task holds the lock itself (it would wait forever).
        """
        task = asyncio.current_task()
        if self.owner is not None and self.owner is task:
            raise InterfaceError(
                "A statement was run on a connection that is still streaming a result to the "
                "same task. Finish (or break out of) the iterate() loop first, or fetch_all() "
                "the rows you need before running other statements."
            )
        await self.slot.wait()
        return task

    def release(self) -> None:
        """Hand the lock to the first waiter still waiting, or free it."""
        self.owner = None
        self.slot.release()

    async def __aenter__(self) -> None:
        if self.try_take():
            self.owner = asyncio.current_task()
        else:
            self.owner = await self.wait()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def locked(self) -> bool:
        """Tell whether a statement is running."""
        return not self.slot.free


class BaseConnection(abc.ABC):
    """One pooled database connection, as the ORM and raw SQL use it.

    Parameters are positional, already in the dialect's placeholder style
    (``ops.placeholder(i)``). Every driver error is translated into a
    :mod:`covet.db.exceptions` class by the backend's ``translate_error()``.
    Statements on one connection are serialized (see :class:`_OpLock`).
    """

    #: How many statements may run on the connection at once: one, unless the driver queues
    #: them in order itself (SQLite's shared connection, on aiosqlite's thread).
    statement_slots: int = 1

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
        #: A statement changed session state another user must not inherit (``SET``, a
        #: temporary table, ``LISTEN``...): the pool resets the connection on release.
        self.session_changed = False
        #: The server rolled the open transaction back on its own (an InnoDB deadlock victim):
        #: its savepoints are gone and the next statement would start a new transaction.
        self.transaction_lost = False
        self.created_at = time.monotonic()
        self.idle_since = self.created_at
        self.generation = 0
        #: Statements finished on it (SQLite's shared connection watches its progress).
        self.finished = 0
        self._lock = _OpLock(self.statement_slots)

    # -- the hot path ------------------------------------------------------------------------

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement and return the number of rows it affected (0 when n/a)."""
        return int(await self._run(self._execute, sql, params))

    async def execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter sequence."""
        await self._run(self._execute_many, sql, seq_of_params)

    # insert(), fetch_all() and fetch_one() are plain functions handing back _run()'s
    # coroutine for the caller to await, not coroutines awaiting it: one coroutine fewer
    # on the path of every ORM query.

    def insert(self, sql: str, params: Sequence[Any], returning: bool) -> Coroutine[Any, Any, Any]:
        """Run an INSERT and return the new primary key (awaitable).

        Args:
            sql: The INSERT, with a RETURNING clause appended when ``returning``.
            params: Positional parameters.
            returning: Read the key from the RETURNING row instead of lastrowid.
        """
        return self._run(self._insert, sql, params, returning)

    def fetch_all(
        self, sql: str, params: Sequence[Any] = ()
    ) -> Coroutine[Any, Any, list[Sequence[Any]]]:
        """Run a query and return every row, each indexable by position (awaitable)."""
        return self._run(self._fetch_all, sql, params)

    def fetch_one(
        self, sql: str, params: Sequence[Any] = ()
    ) -> Coroutine[Any, Any, Sequence[Any] | None]:
        """Run a query and return its first row, or None (awaitable)."""
        return self._run(self._fetch_one, sql, params)

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
        self.transaction_lost = False

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
            self.transaction_lost = False

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

    async def _run(
        self,
        method: Callable[..., Awaitable[Any]],
        *args: Any,
        release: bool = False,
    ) -> Any:
        """Run ``method(*args)`` under the statement lock, translating errors.

        With ``release`` (a connection checked out for this one statement, see
        :mod:`covet.db.execution`) the connection goes back to its pool at the end,
        as the ``finally`` of an ``async with db.connection()`` would return it,
        without that context manager's coroutine around this one.

        While a query log is open (:func:`~covet.db.querylog.capture_queries`,
        or observers such as metrics) the statement is recorded in it here,
        inline: a coroutine of its own around this one would cost each
        statement more than recording it does.
        """
        # Every statement passes here: when nothing records queries, recording costs
        # this one context variable lookup and the two tests of log below.
        log = current_log.get(observers.log)
        started = perf_counter() if log is not None else 0.0
        lock = self._lock
        slot = lock.slot
        # The slot is taken and given back inline rather than ``async with``, which would
        # add two coroutines and a current-task lookup to every statement (see _OpLock).
        if slot.free:
            slot.free -= 1
        else:
            try:
                await lock.wait()
            except BaseException:
                # Cancelled before the statement ran (rare: a connection fresh from the pool
                # has a free lock): a connection checked out for it still goes back.
                if release:
                    await self.backend.release(self)
                raise
        failed = True
        try:
            result = await method(*args)
            failed = False
            return result
        except Exception as exc:
            if await self._recover(exc, method, args):
                try:
                    result = await method(*args)
                    failed = False
                    return result
                except Exception as exc2:
                    raise self._fail(exc2) from exc2
            raise self._fail(exc) from exc
        except BaseException:
            # Cancelled mid-statement: the protocol state is unknown until reset.
            self.dirty = True
            raise
        finally:
            if log is not None:
                record(log, method, args, started, failed, self.backend.alias)
            self.fresh = False
            self.finished += 1
            # No owner to clear: a lock taken here never records one. FifoSlots.release()
            # only when someone waits: otherwise it is this one increment.
            if slot.waiters:
                slot.release()
            else:
                slot.free += 1
            if release:
                backend = self.backend
                if not backend.checkin_now(self):
                    await backend.release(self)

    def _fail(self, exc: Exception) -> DatabaseError:
        if isinstance(exc, DatabaseError):
            return exc
        if self.backend.is_disconnect(exc):
            self.broken = True
            self.backend.on_disconnect()
        error = self.backend.translate_error(exc)
        if (
            self.in_transaction
            and isinstance(error, TransactionRollbackError)
            and self.backend.features.rollback_error_ends_transaction
        ):
            self.transaction_lost = True
        return error

    async def _recover(
        self, exc: Exception, method: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> bool:
        """Tell whether the failed statement is run once more, after making that safe.

        Retried here: the first statement on a connection just taken from the
        pool (``fresh``), outside a transaction, that failed because the
        connection was dead, when either the driver proves the statement was never
        sent or the statement is a read (``SELECT``/``SHOW``/``EXPLAIN``/``VALUES``)
        or the ``BEGIN`` of a transaction; the dead connection is swapped for a
        new one first. Writes are never re-sent: a lost connection cannot tell
        whether they committed. A backend may retry other errors (PostgreSQL: a
        cached statement the server no longer accepts).
        """
        if not self.fresh or self.in_transaction or not self.backend.is_disconnect(exc):
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
        log = current_log.get(observers.log)
        started = perf_counter()
        failed = True
        try:
            async with contextlib.aclosing(self._stream(sql, params, chunk_size)) as stream:
                async for item in stream:
                    yield item
            failed = False
        except DatabaseError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc
        except GeneratorExit:
            # The consumer stopped early (aclose()): no statement was interrupted.
            failed = False
            raise
        except BaseException:
            self.dirty = True
            raise
        finally:
            if log is not None:
                # Recorded once, when the stream ends: its duration covers every round trip.
                record(log, self._stream, (sql, params), started, failed, self.backend.alias)

    # -- what each backend implements ---------------------------------------------------------

    @abc.abstractmethod
    async def _execute(self, sql: str, params: Sequence[Any]) -> int: ...

    @abc.abstractmethod
    async def _execute_many(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    async def _insert(self, sql: str, params: Sequence[Any], returning: bool) -> Any: ...

    # _fetch_all() and _fetch_one() may be plain functions returning the driver's awaitable
    # (one coroutine fewer per query): _run() awaits what they return.

    @abc.abstractmethod
    def _fetch_all(self, sql: str, params: Sequence[Any]) -> Awaitable[list[Sequence[Any]]]: ...

    @abc.abstractmethod
    def _fetch_one(self, sql: str, params: Sequence[Any]) -> Awaitable[Sequence[Any] | None]: ...

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

    def is_usable(self) -> bool:
        """Tell, without any I/O, whether the connection may be handed out.

        The pool calls this at every checkout, before deciding whether to
        :meth:`ping`, so it must be free: it may only look at state the driver
        already holds. The default trusts the connection; a backend whose
        driver can see that the server closed the socket (``KILL``, a restart,
        an idle timeout) overrides it, so such a connection is replaced without
        a round trip.
        """
        return True

    async def ping(self) -> None:
        """Check that the server still answers (raise when it does not)."""
        await self._execute("SELECT 1", ())

    async def reset(self) -> None:
        """Bring a connection back to a clean, out-of-transaction state before reuse.

        A backend that tracks :attr:`session_changed` extends this to undo the
        session state too (and clears the flag).
        """
        if self.dirty:
            raise InterfaceError("The connection was interrupted mid-statement.")
        if self.in_transaction:
            await self._rollback()
            self.in_transaction = False

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the underlying driver connection (never raises)."""
