"""Where the ORM sends its SQL: one helper per kind of statement.

Every statement the ORM runs (querysets, ``Model.save()``, ``create_all()``)
goes through these helpers; the connection that runs it records it for
:func:`covet.db.capture_queries` (and so for ``assert_num_queries``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.db.backends.base import BaseConnection
    from covet.db.database import Database

__all__ = (
    "batches",
    "run_execute",
    "run_execute_many",
    "run_fetch_all",
    "run_fetch_one",
    "run_insert",
)


def _transaction_connection(db: Database) -> BaseConnection | None:
    """Return the connection of the transaction open on ``db`` in this context, or None.

    Raises:
        InterfaceError: ``db`` is not connected.
    """
    state = db._transaction_var.get()
    if state is not None:
        return state.connection_for_statement()
    if not db._connected:
        db._require_backend()  # raises the "not connected" error
    return None


# Each helper checks a connection out and back in itself (what ``async with
# db.connection()`` does, see Database.connection) rather than through the context
# manager: its __aenter__ coroutine and the helper's extra frame, which every
# resumption of the statement passes through, cost more than the statement's own
# Python work (~5,000 instructions per get() on PostgreSQL). A database with a
# ``fallback`` (a replica) still goes through the context manager, which holds the
# fallback rule.


async def run_fetch_all(db: Database, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """Run a SELECT and return all its rows."""
    conn = _transaction_connection(db)
    if conn is not None:
        return await conn.fetch_all(sql, params)
    if db.fallback is not None:
        async with db.connection() as conn:  # a replica: its primary stands in when it is down
            return await conn.fetch_all(sql, params)
    backend = db._backend
    conn = await backend.acquire()
    try:
        return await conn.fetch_all(sql, params)
    finally:
        await backend.release(conn)


async def run_fetch_one(db: Database, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
    """Run a SELECT and return its first row, or None."""
    conn = _transaction_connection(db)
    if conn is not None:
        return await conn.fetch_one(sql, params)
    if db.fallback is not None:
        async with db.connection() as conn:  # a replica: its primary stands in when it is down
            return await conn.fetch_one(sql, params)
    backend = db._backend
    conn = await backend.acquire()
    try:
        return await conn.fetch_one(sql, params)
    finally:
        await backend.release(conn)


async def run_execute(db: Database, sql: str, params: Sequence[Any]) -> int:
    """Run a statement and return the number of rows it affected."""
    conn = _transaction_connection(db)
    if conn is not None:
        return await conn.execute(sql, params)
    if db.fallback is not None:
        async with db.connection() as conn:  # a replica: its primary stands in when it is down
            return await conn.execute(sql, params)
    backend = db._backend
    conn = await backend.acquire()
    try:
        return await conn.execute(sql, params)
    finally:
        await backend.release(conn)


async def run_execute_many(db: Database, sql: str, seq: Sequence[Sequence[Any]]) -> None:
    """Run one statement once per parameter sequence of ``seq``."""
    async with db.connection() as conn:
        await conn.execute_many(sql, seq)


async def run_insert(db: Database, sql: str, params: Sequence[Any], returning: bool) -> Any:
    """Run an INSERT and return the new key (from RETURNING when ``returning``)."""
    conn = _transaction_connection(db)
    if conn is not None:
        return await conn.insert(sql, params, returning)
    if db.fallback is not None:
        async with db.connection() as conn:  # a replica: its primary stands in when it is down
            return await conn.insert(sql, params, returning)
    backend = db._backend
    conn = await backend.acquire()
    try:
        return await conn.insert(sql, params, returning)
    finally:
        await backend.release(conn)


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Split ``items`` into consecutive slices of at most ``size`` (for parameter limits)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
