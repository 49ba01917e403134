"""Transactions: ``async with transaction():``, ``@transaction()``, savepoints, on_commit.

The outermost block checks a connection out of the pool, runs ``BEGIN`` and
binds the connection to a context variable of its database, so every ORM call
and raw query inside uses it. A nested block creates a uniquely named
``SAVEPOINT``; an exception rolls back exactly that block and propagates.

Sharing between tasks: tasks created inside a transaction inherit the context
(asyncio copies it), so their statements run *in the same transaction*. Those
statements are serialized on the one connection (never a driver "another
operation is in progress" error, never a silently separate transaction). What
a child task may not do is open its own ``transaction()`` block while it shares
its parent's transaction: savepoints from interleaved tasks cannot nest
properly, so that raises :class:`TransactionManagementError`. A task still
running after its transaction ended gets the same error on its next statement.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from covet.db.exceptions import TransactionManagementError

if TYPE_CHECKING:
    from contextvars import Token
    from types import TracebackType

    from covet.db.backends.base import BaseConnection
    from covet.db.database import Database

__all__ = ("Transaction", "TransactionState", "on_commit", "transaction")

P = ParamSpec("P")
R = TypeVar("R")
OnCommitCallback = Callable[[], Any]

logger = logging.getLogger("covet.db")


class TransactionState:
    """The live state of one outermost transaction, shared by its nested blocks.

    Args:
        db: The database the transaction runs on.
        connection: The connection bound to it.
        owner: The task that opened it.
    """

    __slots__ = (
        "_counter",
        "adoptable",
        "callbacks",
        "closed",
        "connection",
        "db",
        "failed",
        "owner",
        "savepoints",
    )

    def __init__(self, db: Database, connection: BaseConnection, owner: asyncio.Task[Any] | None):
        self.db = db
        self.connection = connection
        self.owner = owner
        self.savepoints: list[str] = []
        self.callbacks: list[tuple[int, OnCommitCallback]] = []
        self.failed = False
        self.closed = False
        # A test's rolled-back wrapper transaction (covet.db.testing.rollback_after):
        # it is opened by a fixture's task, so while no nested block is open any
        # one task (the test's) may open savepoints in it, and owns it until they close.
        self.adoptable = False
        self._counter = 0

    def next_savepoint_name(self) -> str:
        """Return a savepoint name unique within this transaction."""
        self._counter += 1
        return f"covet_sp_{self._counter}"

    def connection_for_statement(self) -> BaseConnection:
        """Return the connection for the next statement, refusing a finished or failed one.

        Raises:
            TransactionManagementError: The transaction ended or must be rolled back.
        """
        if self.closed:
            raise TransactionManagementError(
                "This transaction has already ended (committed or rolled back). A task "
                "started inside `async with transaction():` outlived the block: await it "
                "inside the block, or start it outside the transaction."
            )
        if self.connection.transaction_lost:
            raise _lost_transaction_error()
        if self.failed:
            raise TransactionManagementError(
                "An inner `transaction(savepoint=False)` block of this transaction failed, "
                "so the transaction can only be rolled back. Let the error propagate, or use "
                "savepoint=True for the inner block to be able to continue."
            )
        return self.connection


class Transaction:
    """One ``transaction()`` block: an async context manager and a decorator.

    Args:
        using: A :class:`Database`, an alias, or None for the default database.
        isolation: The isolation level of an outermost transaction
            (``"read committed"``, ``"repeatable read"``, ``"serializable"``;
            SQLite: ``"immediate"``, ``"deferred"``, ``"exclusive"``).
        savepoint: When nested, create a savepoint (True) or join the enclosing
            transaction (False: a failure then dooms the whole transaction).
    """

    def __init__(
        self,
        using: Database | str | None = None,
        *,
        isolation: str | None = None,
        savepoint: bool = True,
    ) -> None:
        self.using = using
        self.isolation = isolation
        self.savepoint = savepoint
        self._state: TransactionState | None = None
        self._token: Token[TransactionState | None] | None = None
        self._kind = ""
        self._name = ""
        self._db: Database | None = None
        self._adopted = False

    @property
    def connection(self) -> BaseConnection:
        """Return the connection of the running transaction.

        Raises:
            TransactionManagementError: The block is not running.
        """
        if self._state is None:
            raise TransactionManagementError(
                "This transaction is not active. Use it as `async with transaction() as tx:`."
            )
        return self._state.connection

    def _database(self) -> Database:
        from covet.db.database import Database, get_database

        if isinstance(self.using, Database):
            return self.using
        return get_database(self.using)

    async def __aenter__(self) -> Transaction:
        if self._state is not None:
            raise TransactionManagementError(
                "This transaction() object is already in use. Create a new one per block."
            )
        db = self._database()
        self._db = db
        var = db._transaction_var
        state = var.get()
        task = asyncio.current_task()
        if state is not None and state.closed:
            state = None
        if state is None:
            isolation = db.ops.normalize_isolation(self.isolation)
            backend = db._require_backend()
            conn = await backend.acquire()
            try:
                await conn.begin(isolation)
            except BaseException:
                await backend.release(conn)
                raise
            state = TransactionState(db, conn, task)
            self._token = var.set(state)
            self._kind = "outer"
            self._state = state
            return self
        adopting = state.owner is None and state.adoptable
        if state.owner is not task and not adopting:
            raise TransactionManagementError(
                "transaction() was entered in a task that shares an enclosing transaction "
                "opened by another task. Savepoints of concurrent tasks cannot nest. Open the "
                "transaction inside each task instead (start the tasks outside the outer block), "
                "or run the work without a nested transaction()."
            )
        if self.isolation is not None:
            raise TransactionManagementError(
                f"isolation={self.isolation!r} was given to a nested transaction(). The level "
                "can only be set on the outermost transaction() block."
            )
        state.connection_for_statement()
        self._state = state
        if not self.savepoint:
            self._kind = "join"
            return self
        name = state.next_savepoint_name()
        await state.connection.savepoint(name)
        state.savepoints.append(name)
        self._kind = "savepoint"
        self._name = name
        if adopting:
            state.owner = task
            self._adopted = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state = self._state
        assert state is not None  # noqa: S101 - __aexit__ only runs after __aenter__
        self._state = None
        if self._kind == "join":
            if exc_type is not None:
                state.failed = True
        elif self._kind == "savepoint":
            try:
                await self._exit_savepoint(state, exc_type is None)
            finally:
                if self._adopted:
                    self._adopted = False
                    state.owner = None
        else:
            await self._exit_outer(state, exc_type is None)

    async def _exit_savepoint(self, state: TransactionState, success: bool) -> None:
        level = len(state.savepoints)
        if state.savepoints[-1:] != [self._name]:
            raise TransactionManagementError(
                f"Savepoint {self._name!r} is not the innermost one; transaction() blocks "
                "must be exited in the reverse order they were entered."
            )
        conn = state.connection
        if conn.transaction_lost:
            # The server already rolled everything back (an InnoDB deadlock victim), so the
            # savepoint is gone: ROLLBACK TO it would fail and hide the real error, which
            # propagates as is. The enclosing blocks see the transaction as failed.
            state.savepoints.pop()
            state.callbacks = [(lvl, cb) for lvl, cb in state.callbacks if lvl < level]
            state.failed = True
            if success:
                raise _lost_transaction_error()
            return
        if success:
            state.savepoints.pop()
            await conn.release_savepoint(self._name)
            # Callbacks of a released savepoint now belong to the enclosing level.
            state.callbacks = [(min(lvl, level - 1), cb) for lvl, cb in state.callbacks]
            return
        state.savepoints.pop()
        state.callbacks = [(lvl, cb) for lvl, cb in state.callbacks if lvl < level]
        if conn.dirty or conn.broken:
            # Interrupted mid-statement: the connection's state is unknown, so the whole
            # transaction is rolled back when the outermost block exits.
            state.failed = True
            return

        async def undo() -> None:
            try:
                await conn.rollback_to_savepoint(self._name)
                await conn.release_savepoint(self._name)
            except Exception:
                state.failed = True
                raise

        task = asyncio.ensure_future(undo())
        await asyncio.shield(task)

    async def _exit_outer(self, state: TransactionState, success: bool) -> None:
        assert self._db is not None  # noqa: S101 - set by __aenter__
        var = self._db._transaction_var
        try:
            if self._token is not None:
                var.reset(self._token)
        except ValueError:
            # Exited in another context (e.g. an async generator finalizer).
            var.set(None)
        self._token = None
        # A transaction the server rolled back must not "commit": COMMIT would succeed on
        # the fresh implicit transaction and report the lost work as saved.
        lost = state.connection.transaction_lost
        commit = success and not state.failed and not lost
        task = asyncio.ensure_future(_finish(state, commit))
        task.add_done_callback(_retrieve)
        await asyncio.shield(task)
        if success and (state.failed or lost):
            if lost:
                raise _lost_transaction_error()
            raise TransactionManagementError(
                "The transaction was rolled back because an inner block failed "
                "(a savepoint=False block, or an interrupted statement)."
            )

    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...

    def __call__(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function so that each call runs in its own transaction block."""
        using, isolation, savepoint = self.using, self.isolation, self.savepoint

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            async with Transaction(using, isolation=isolation, savepoint=savepoint):
                return await func(*args, **kwargs)

        return wrapper


def _lost_transaction_error() -> TransactionManagementError:
    """Build the error for a statement or a block exit after the server ended the transaction."""
    return TransactionManagementError(
        "The database rolled this transaction back to resolve a deadlock (the "
        "TransactionRollbackError raised inside it), savepoints included, so nothing in it "
        "was saved and no statement can run in it any more. Let the error propagate out of "
        "the outermost `async with transaction():` block and retry the whole block."
    )


def _retrieve(task: asyncio.Future[None]) -> None:
    """Log the error of a finishing task nobody awaited (its caller was cancelled)."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("Finishing a transaction failed", exc_info=task.exception())


async def _finish(state: TransactionState, commit: bool) -> None:
    """Commit or roll back, return the connection, then run on_commit callbacks.

    Runs as its own shielded task so a cancelled caller still leaves the
    connection clean and back in the pool.
    """
    conn = state.connection
    backend = state.db.backend
    try:
        if commit:
            try:
                await conn.commit()
            except BaseException:
                if not (conn.dirty or conn.broken):
                    try:
                        await conn.rollback()
                    except Exception:  # noqa: BLE001 - the commit error is the one to report
                        conn.broken = True
                raise
        elif not (conn.dirty or conn.broken):
            try:
                await conn.rollback()
            except Exception:  # noqa: BLE001 - a failed rollback means a dead connection
                conn.broken = True
    finally:
        state.closed = True
        await backend.release(conn)
    if commit:
        callbacks, state.callbacks = state.callbacks, []
        for _level, callback in callbacks:
            result = callback()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result


class _TransactionFactory:
    """The ``transaction`` object: call it for a block, or use ``transaction.on_commit``."""

    def __call__(
        self,
        using: str | None = None,
        *,
        isolation: str | None = None,
        savepoint: bool = True,
    ) -> Transaction:
        """Return a transaction block on the database ``using`` (default: the default one).

        Use it as ``async with transaction():`` or as ``@transaction()``. Nested
        blocks create savepoints; an exception rolls back exactly its block and
        propagates.

        Args:
            using: The alias of the database; None for the default database.
            isolation: The isolation level (outermost block only).
            savepoint: Create a savepoint when nested (see :class:`Transaction`).
        """
        return Transaction(using, isolation=isolation, savepoint=savepoint)

    @staticmethod
    def on_commit(callback: OnCommitCallback, using: str | None = None) -> None:
        """Run ``callback`` (sync, or async) after the outermost transaction commits.

        See :func:`on_commit`.
        """
        on_commit(callback, using)


def on_commit(callback: OnCommitCallback, using: str | None = None) -> None:
    """Run ``callback`` after the outermost transaction of ``using`` commits.

    Never runs after a rollback; a callback registered inside a savepoint that
    is rolled back is discarded. Callbacks run in registration order, after the
    connection went back to the pool; an exception from one propagates from the
    ``transaction()`` block (the data is already committed) and skips the rest.

    Raises:
        TransactionManagementError: No transaction is active on that database.
    """
    from covet.db.database import get_database

    db = get_database(using)
    state = db._transaction_var.get()
    if state is None or state.closed:
        raise TransactionManagementError(
            "transaction.on_commit() was called outside a transaction. Call it inside "
            "`async with transaction():`, or run the callback directly."
        )
    state.callbacks.append((len(state.savepoints), callback))


transaction = _TransactionFactory()
