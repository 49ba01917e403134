"""Where the ORM sends its SQL: one helper per kind of statement.

Every statement the ORM runs (querysets, ``Model.save()``, ``create_all()``)
goes through these helpers; the connection that runs it records it for
:func:`covet.db.capture_queries` (and so for ``assert_num_queries``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence

    from covet.db.database import Database

__all__ = (
    "batches",
    "run_execute",
    "run_execute_many",
    "run_fetch_all",
    "run_fetch_one",
    "run_insert",
)


# The helpers are plain functions handing back the statement's coroutine, which the caller
# awaits at once: outside a transaction the pool's ready connection is checked out with a
# plain call (Backend.checkout_now(); on SQLite usually its shared connection, which needs
# no checkout) and the statement's own coroutine, the connection's
# _run(release=True), hands it back in its ``finally``. Every frame between the caller
# and the driver is passed through again at each resumption of the statement, and an
# ``async with db.connection()`` (its __aenter__, the pool's acquire() and release()
# coroutines, a helper coroutine around it all) cost more than the statement's own Python
# work (~5,000 instructions per get() on PostgreSQL). When no connection is ready (the pool
# is busy or must ping) the helper's coroutine awaits acquire() and release(). A database
# with a ``fallback`` (a replica) goes through db.connection(), which holds the fallback
# rule. The four helpers below repeat that choice on purpose: one shared function taking the
# method's name (getattr() and *args) measured 2,872 more instructions per PostgreSQL get()
# (101,554 -> 104,426, benchmarks/orm/hotpath.py --instructions).


def run_fetch_all(
    db: Database, sql: str, params: Sequence[Any]
) -> Coroutine[Any, Any, list[Sequence[Any]]]:
    """Run a SELECT and return all its rows (awaitable)."""
    state = db._transaction_var.get()
    if state is not None:
        return state.connection_for_statement().fetch_all(sql, params)
    if db._connected and db.fallback is None:
        conn = db._backend.checkout_now(sql)
        if conn is not None:
            return conn._run(conn._fetch_all, sql, params, release=True)
    return _checked_out(db, "fetch_all", sql, params)


def run_fetch_one(
    db: Database, sql: str, params: Sequence[Any]
) -> Coroutine[Any, Any, Sequence[Any] | None]:
    """Run a SELECT and return its first row, or None (awaitable)."""
    state = db._transaction_var.get()
    if state is not None:
        return state.connection_for_statement().fetch_one(sql, params)
    if db._connected and db.fallback is None:
        conn = db._backend.checkout_now(sql)
        if conn is not None:
            return conn._run(conn._fetch_one, sql, params, release=True)
    return _checked_out(db, "fetch_one", sql, params)


def run_execute(db: Database, sql: str, params: Sequence[Any]) -> Coroutine[Any, Any, int]:
    """Run a statement and return the number of rows it affected (awaitable)."""
    state = db._transaction_var.get()
    if state is not None:
        return state.connection_for_statement().execute(sql, params)
    if db._connected and db.fallback is None:
        conn = db._backend.checkout_now(sql)
        if conn is not None:
            return conn._run(conn._execute, sql, params, release=True)  # _execute() gives an int
    return _checked_out(db, "execute", sql, params)


async def run_execute_many(db: Database, sql: str, seq: Sequence[Sequence[Any]]) -> None:
    """Run one statement once per parameter sequence of ``seq``."""
    async with db.connection() as conn:
        await conn.execute_many(sql, seq)


def run_insert(
    db: Database, sql: str, params: Sequence[Any], returning: bool
) -> Coroutine[Any, Any, Any]:
    """Run an INSERT and return the new key, from RETURNING when ``returning`` (awaitable)."""
    state = db._transaction_var.get()
    if state is not None:
        return state.connection_for_statement().insert(sql, params, returning)
    if db._connected and db.fallback is None:
        conn = db._backend.checkout_now(sql)
        if conn is not None:
            return conn._run(conn._insert, sql, params, returning, release=True)
    return _checked_out(db, "insert", sql, params, returning)


async def _checked_out(db: Database, name: str, *args: Any) -> Any:
    """Check a connection out (waiting for one if need be), call its method ``name``, return it.

    Raises:
        InterfaceError: ``db`` is not connected.
    """
    if not db._connected:
        db._require_backend()  # raises the "not connected" error
    if db.fallback is not None:
        async with db.connection() as conn:  # a replica: its primary stands in when it is down
            return await getattr(conn, name)(*args)
    backend = db._backend
    conn = await backend.acquire()
    try:
        return await getattr(conn, name)(*args)
    finally:
        await backend.release(conn)


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Split ``items`` into consecutive slices of at most ``size`` (for parameter limits)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
