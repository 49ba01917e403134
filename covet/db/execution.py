"""Where the ORM sends its SQL: one helper per kind of statement, each one logged.

Every statement the ORM runs (querysets, ``Model.save()``, ``create_all()``)
goes through these helpers, which is where
:func:`covet.db.testing.assert_num_queries` counts statements (``query_log``).
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.db.database import Database

__all__ = (
    "batches",
    "log_sql",
    "query_log",
    "run_execute",
    "run_execute_many",
    "run_fetch_all",
    "run_fetch_one",
    "run_insert",
)

#: When set to a list, every SQL statement the ORM sends is appended to it.
query_log: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "covet_query_log", default=None
)


def log_sql(sql: str) -> None:
    """Append ``sql`` to the current :data:`query_log`, if one is set."""
    log = query_log.get()
    if log is not None:
        log.append(sql)


async def run_fetch_all(db: Database, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """Run a SELECT and return all its rows."""
    log_sql(sql)
    async with db.connection() as conn:
        return await conn.fetch_all(sql, params)


async def run_fetch_one(db: Database, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
    """Run a SELECT and return its first row, or None."""
    log_sql(sql)
    async with db.connection() as conn:
        return await conn.fetch_one(sql, params)


async def run_execute(db: Database, sql: str, params: Sequence[Any]) -> int:
    """Run a statement and return the number of rows it affected."""
    log_sql(sql)
    async with db.connection() as conn:
        return await conn.execute(sql, params)


async def run_execute_many(db: Database, sql: str, seq: Sequence[Sequence[Any]]) -> None:
    """Run one statement once per parameter sequence of ``seq``."""
    log_sql(sql)
    async with db.connection() as conn:
        await conn.execute_many(sql, seq)


async def run_insert(db: Database, sql: str, params: Sequence[Any], returning: bool) -> Any:
    """Run an INSERT and return the new key (from RETURNING when ``returning``)."""
    log_sql(sql)
    async with db.connection() as conn:
        return await conn.insert(sql, params, returning)


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Split ``items`` into consecutive slices of at most ``size`` (for parameter limits)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
