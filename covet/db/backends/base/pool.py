"""The generic connection pool, for drivers without a pool we can trust."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from covet.db.backends.base.errors import pool_timeout_error
from covet.db.backends.base.slots import FifoSlots
from covet.db.exceptions import InterfaceError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from covet.db.backends.base.connection import BaseConnection

__all__ = ("ConnectionPool", "PoolStats", "released")


C = TypeVar("C", bound="BaseConnection")


async def released() -> None:
    """Do nothing: what a release hands back when there is nothing to give back.

    Backends return the pool's ``release()`` coroutine for the caller to await
    rather than awaiting it in one of their own (one coroutine fewer per
    statement); a connection with no pool to go back to (closed already, SQLite's
    shared connection, a transaction's connection leaving a ``db.connection()``
    block) still needs an awaitable.
    """


class PoolStats(NamedTuple):
    """A snapshot of a pool: open connections, idle ones, the maximum and callers queued."""

    size: int
    idle: int
    max_size: int
    #: Callers waiting for a connection (all are in use): a pool that runs dry.
    waiting: int = 0
    #: Statements in flight on SQLite's shared connection, outside the pool (0 elsewhere).
    shared_in_flight: int = 0


class ConnectionPool(Generic[C]):
    """A bounded LIFO pool with acquire timeout, checkout checks and cancellation safety.

    * ``acquire()`` waits up to ``timeout`` for a free slot, then raises
      :class:`PoolTimeout` naming the pool size.
    * Checkout takes the most recently returned idle connection and, in order:
      replaces it when older than ``recycle``; discards it when
      :meth:`~BaseConnection.is_usable` says the server closed it (a local check,
      no round trip); pings it when it has been idle at least ``ping_after``
      seconds (0: always) or the pool was expired since it was last checked.
      A connection that fails a check is discarded and the checkout moves on to
      the next one, opening a new connection when none is left.
    * :meth:`expire` marks every idle connection to be pinged at its next
      checkout (called when any connection reports the server went away).
    * With ``idle_timeout``, a timer closes connections left idle that long
      (beyond ``min_size``) every quarter of it: nothing on the checkout path.
    * Release resets a connection only when it needs it: a transaction left
      open, a statement interrupted (discarded), or session state changed
      (:attr:`~BaseConnection.session_changed`).
    * Opening a connection and returning one are shielded from cancellation, so
      a cancelled task never leaks a slot or a half-open connection.

    Args:
        opener: Open and set up one new connection.
        min_size: Connections opened by :meth:`open` and kept when idle.
        max_size: The most connections open at once.
        timeout: Seconds ``acquire()`` waits for a free connection.
        name: Shown in error messages, e.g. ``"sqlite:///app.db"``.
        ping_after: Ping connections idle at least this long (0: at every checkout);
            None pings only after :meth:`expire`.
        recycle: Replace connections older than this many seconds; None never.
        idle_timeout: Close connections idle this many seconds, keeping ``min_size``;
            None never.
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
        idle_timeout: float | None = None,
    ) -> None:
        self._opener = opener
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self.name = name
        self.ping_after = ping_after
        self.recycle = recycle
        self.idle_timeout = idle_timeout
        # Whether a checkout must read the clock (age or idle-time rules).
        self._timed = ping_after is not None or recycle is not None
        # Whether a returned connection must note when it went idle.
        self._stamp = ping_after is not None or idle_timeout is not None
        self._reaper: asyncio.TimerHandle | None = None
        self._slots = FifoSlots(max_size)
        self._idle: deque[C] = deque()
        self._open: set[C] = set()
        self._generation = 0
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drained = asyncio.Event()

    def stats(self) -> PoolStats:
        """Return the current size, idle count, maximum and number of waiting callers."""
        waiting = sum(not waiter.done() for waiter in self._slots.waiters)
        return PoolStats(len(self._open), len(self._idle), self.max_size, waiting)

    def connections(self) -> list[C]:
        """Return every open connection, idle or checked out (a snapshot)."""
        return list(self._open)

    async def open(self) -> None:
        """Open ``min_size`` connections up front (fail fast on bad credentials)."""
        for _ in range(self.min_size):
            conn = await self._open_one()
            self._idle.append(conn)
        if self.idle_timeout is not None:
            self._schedule_reap()

    def _schedule_reap(self) -> None:
        assert self.idle_timeout is not None  # noqa: S101 - only called with one
        period = max(self.idle_timeout / 4, 0.05)
        self._reaper = asyncio.get_running_loop().call_later(period, self._reap)

    def _reap(self) -> None:
        """Close the connections idle longer than ``idle_timeout``, keeping ``min_size`` open."""
        if self._closed or self.idle_timeout is None:
            return
        deadline = time.monotonic() - self.idle_timeout
        idle = self._idle
        # LIFO: the longest idle sit at the left end.
        while idle and len(self._open) > self.min_size and idle[0].idle_since < deadline:
            self._discard(idle.popleft())
        self._schedule_reap()

    def expire(self) -> None:
        """Mark every idle connection to be pinged before its next use."""
        self._generation += 1

    def try_acquire(self) -> C | None:
        """Check out the last returned connection when it is ready now, else return None.

        Ready means what :meth:`acquire` would hand out without waiting or I/O: a
        slot is free, and the most recently returned idle connection needs no ping
        (the pool was not expired since it was checked, it has not been idle past
        ``ping_after``), no replacing (``recycle``) and the driver saw no close. A
        None leaves the pool as it was; :meth:`acquire` then waits, pings or opens.
        The path of every statement outside a transaction: no coroutine, no timer.
        """
        idle = self._idle
        slots = self._slots
        if not (idle and slots.free) or self._closed:
            return None
        # A free slot proves nobody is queued (see FifoSlots): taking it jumps no queue.
        conn = idle[-1]
        if (
            conn.generation != self._generation
            or not conn.is_usable()
            or (self._timed and not self._within_limits(conn))
        ):
            return None
        idle.pop()
        slots.free -= 1
        conn.fresh = True
        return conn

    async def acquire(self) -> C:
        """Check out a connection, waiting up to ``timeout`` for a free one.

        Raises:
            PoolTimeout: No connection became free in time.
            InterfaceError: The pool is closed.
        """
        conn = self.try_acquire()
        if conn is not None:
            return conn
        if self._closed:
            raise InterfaceError(f"The connection pool of {self.name} is closed. Call connect().")
        slots = self._slots
        if slots.free:
            slots.free -= 1
        else:
            # Every connection is out: queue (first come, first served) under the timeout.
            if not await slots.wait(self.timeout):
                raise pool_timeout_error(self.name, self.timeout, self.max_size)
        try:
            return await self._checkout()
        except BaseException:
            slots.release()
            raise

    def _within_limits(self, conn: C) -> bool:
        """Tell whether ``conn`` needs neither a ping (idle long) nor replacing (old)."""
        now = time.monotonic()
        if self.ping_after is not None and now - conn.idle_since >= self.ping_after:
            return False
        return self.recycle is None or now - conn.created_at <= self.recycle

    async def _checkout(self) -> C:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if self.recycle is not None and now - conn.created_at > self.recycle:
                self._discard(conn)
                continue
            if not conn.is_usable():
                # The server closed it (KILL, restart, idle timeout) and the event loop has
                # already seen the socket close: replace it without a round trip. broken makes
                # close() drop the socket instead of sending a goodbye to a dead peer.
                conn.broken = True
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
                # A successful ping proves it survived the event that expired the pool.
                conn.generation = self._generation
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

    def try_release(self, conn: C) -> bool:
        """Return ``conn`` to the idle connections when that needs no I/O; tell whether it did.

        False (nothing done) when the connection needs a reset (a transaction left
        open, an interrupted statement, changed session state) or discarding, or the
        pool is closed: :meth:`release` then does it.
        """
        if (
            conn.broken
            or conn.dirty
            or conn.in_transaction
            or conn.session_changed
            or self._closed
            or conn not in self._open
        ):
            return False
        # _return(), inline: this runs once per statement outside transactions.
        if self._stamp:
            conn.idle_since = time.monotonic()
        self._idle.append(conn)
        slots = self._slots
        if slots.waiters:
            slots.release()
        else:
            slots.free += 1
        return True

    async def release(self, conn: C) -> None:
        """Return a connection; reset or discard it as needed. Safe under cancellation."""
        if conn.broken or self._closed or conn not in self._open:
            self._discard(conn)
            self._slots.release()
            return
        if conn.dirty or conn.in_transaction or conn.session_changed:
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
        if self._stamp:
            # Only the idle-time ping rule and the idle reaper read it; skip the clock otherwise.
            conn.idle_since = time.monotonic()
        conn.dirty = False
        self._idle.append(conn)
        slots = self._slots
        if slots.waiters:
            slots.release()
        else:
            slots.free += 1  # FifoSlots.release() when nobody waits, inline: every statement

    async def close(self) -> None:
        """Close idle connections, wait up to ``timeout`` for the rest, then close them too."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
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
