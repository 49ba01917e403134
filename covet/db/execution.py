"""Where the ORM sends its SQL: one helper per kind of statement.

Every statement the ORM runs (querysets, ``Model.save()``, ``create_all()``)
goes through these helpers; the connection that runs it records it for
:func:`covet.db.capture_queries` (and so for ``assert_num_queries``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.db.database import Database

__all__ = (
    "batches",
    "run_execute",
    "run_execute_many",
    "run_fetch_all",
    "run_fetch_one",
    "run_insert",
)


async def run_fetch_all(db: Database, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """Run a SELECT and return all its rows."""
    async with db.connection() as conn:
        return await conn.fetch_all(sql, params)


async def run_fetch_one(db: Database, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
    """Run a SELECT and return its first row, or None."""
    async with db.connection() as conn:
        return await conn.fetch_one(sql, params)


async def run_execute(db: Database, sql: str, params: Sequence[Any]) -> int:
    """Run a statement and return the number of rows it affected."""
    async with db.connection() as conn:
        return await conn.execute(sql, params)


async def run_execute_many(db: Database, sql: str, seq: Sequence[Sequence[Any]]) -> None:
    """Run one statement once per parameter sequence of ``seq``."""
    async with db.connection() as conn:
        await conn.execute_many(sql, seq)


async def run_insert(db: Database, sql: str, params: Sequence[Any], returning: bool) -> Any:
    """Run an INSERT and return the new key (from RETURNING when ``returning``)."""
    async with db.connection() as conn:
        return await conn.insert(sql, params, returning)


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Split ``items`` into consecutive slices of at most ``size`` (for parameter limits)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
