"""A deadlock inside nested transaction() blocks surfaces as itself, on every backend with locks.

Two transactions each lock one row inside a savepoint and then want the other's
row: the server picks one as the deadlock victim. The victim must see
:class:`TransactionRollbackError` (an ``OperationalError``, retryable), never an
error from covet's own cleanup (InnoDB rolls the whole transaction back and
drops its savepoints, so a ``ROLLBACK TO SAVEPOINT`` would fail with "SAVEPOINT
covet_sp_1 does not exist" and hide the deadlock), and the enclosing blocks must
know whether the transaction survived. SQLite has no row locks (one writer at a
time), so it cannot deadlock this way: the tests require ``supports_select_for_update``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from covet.db.exceptions import (
    OperationalError,
    TransactionManagementError,
    TransactionRollbackError,
)
from covet.db.transactions import transaction

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from covet.db.database import Database

pytestmark = pytest.mark.requires("supports_select_for_update")


@pytest.fixture
async def rows(database, scratch):
    table = database.ops.quote_name(await scratch("locks", "id INTEGER PRIMARY KEY, n INTEGER"))
    for id_ in (1, 2, 3, 4):
        await database.execute(f"INSERT INTO {table} (id, n) VALUES (:id, 0)", {"id": id_})  # noqa: S608
    return table


async def _values(database: Database, table: str) -> dict[int, int]:
    rows = await database.fetch_all(f"SELECT id, n FROM {table} ORDER BY id")  # noqa: S608
    return {r["id"]: r["n"] for r in rows}


async def _deadlock(
    database: Database,
    table: str,
    after_inner: Callable[[BaseException], Awaitable[None]] | None = None,
) -> list[BaseException | None]:
    """Run two transactions locking rows 1 and 2 in opposite orders; return their errors.

    Worker ``i`` writes row ``3 + i`` in its outer block first (so a lost outer
    transaction shows in the data), then, in a nested block, bumps its first row, waits until the
    other locked its own, and bumps the other's. ``after_inner`` (if given) runs
    in the outer block when the nested block raised, the error passed in.
    """
    locked = [asyncio.Event(), asyncio.Event()]
    update = f"UPDATE {table} SET n = n + :by WHERE id = :id"  # noqa: S608

    async def worker(me: int) -> None:
        first, second = (1, 2) if me == 0 else (2, 1)
        async with transaction():
            await database.execute(update, {"by": 1, "id": 3 + me})
            try:
                async with transaction():
                    await database.execute(update, {"by": 1, "id": first})
                    locked[me].set()
                    await locked[1 - me].wait()
                    await database.execute(update, {"by": 1, "id": second})
            except TransactionRollbackError as exc:
                if after_inner is None:
                    raise
                await after_inner(exc)

    results = await asyncio.wait_for(
        asyncio.gather(worker(0), worker(1), return_exceptions=True), 30
    )
    return list(results)


async def test_the_deadlock_victim_sees_the_deadlock_not_a_savepoint_error(database, rows):
    errors = await _deadlock(database, rows)
    victims = [e for e in errors if e is not None]
    assert len(victims) == 1, errors
    (victim,) = victims
    assert isinstance(victim, TransactionRollbackError)
    assert isinstance(victim, OperationalError)
    assert "eadlock" in str(victim)
    winner = errors.index(None)
    values = await _values(database, rows)
    # The winner's whole transaction committed; nothing of the victim's did.
    assert values == {1: 1, 2: 1, 3: int(winner == 0), 4: int(winner == 1)}
    # The connections went back to the pool usable.
    async with transaction():
        assert await _values(database, rows) == values


@pytest.mark.requires("rollback_error_ends_transaction")
async def test_after_innodb_rolled_back_the_transaction_the_outer_block_refuses_to_go_on(
    database, rows
):
    refused: list[BaseException] = []

    async def go_on(exc: BaseException) -> None:
        # The server already rolled back the outer block's write too: another statement
        # would silently run in a new transaction, so covet refuses it.
        with pytest.raises(TransactionManagementError, match="rolled this transaction back"):
            await database.execute(f"UPDATE {rows} SET n = 99 WHERE id = 3")  # noqa: S608
        refused.append(exc)

    errors = await _deadlock(database, rows, go_on)
    assert len(refused) == 1
    # Exiting the outer block normally must not report the lost work as committed.
    (outer_error,) = [e for e in errors if e is not None]
    assert isinstance(outer_error, TransactionManagementError)
    assert outer_error is not refused[0]
    winner = errors.index(None)
    assert await _values(database, rows) == {1: 1, 2: 1, 3: int(winner == 0), 4: int(winner == 1)}


async def test_where_only_the_savepoint_is_lost_the_outer_block_goes_on(database, rows):
    if database.features.rollback_error_ends_transaction:
        pytest.skip(f"{database.vendor} rolls the whole transaction back on a deadlock")
    recovered: list[BaseException] = []

    async def go_on(exc: BaseException) -> None:
        recovered.append(exc)

    errors = await _deadlock(database, rows, go_on)
    assert errors == [None, None]
    assert len(recovered) == 1
    # Both outer blocks committed their own row; only the winner's nested block bumped
    # rows 1 and 2.
    assert await _values(database, rows) == {1: 1, 2: 1, 3: 1, 4: 1}


@pytest.mark.requires("supports_isolation_levels")
async def test_a_serialization_failure_is_a_transaction_rollback_error(database, rows):
    # Write skew: each reads both rows, then writes its own. PostgreSQL's SERIALIZABLE
    # refuses one transaction (40001); MySQL's takes shared locks on the reads, so the
    # two writes deadlock (1213). Either way: TransactionRollbackError, retry the block.
    read = asyncio.Barrier(2)

    async def worker(me: int) -> None:
        async with transaction(isolation="serializable"):
            total = await database.fetch_val(f"SELECT SUM(n) FROM {rows} WHERE id < 3")  # noqa: S608
            await read.wait()
            await database.execute(
                f"UPDATE {rows} SET n = :n WHERE id = :id",  # noqa: S608
                {"n": int(total) + 1, "id": me + 1},
            )

    results = await asyncio.wait_for(
        asyncio.gather(worker(0), worker(1), return_exceptions=True), 30
    )
    failed = [r for r in results if r is not None]
    assert len(failed) == 1, results
    assert isinstance(failed[0], TransactionRollbackError)
    # The survivor's write alone was kept.
    values = await _values(database, rows)
    assert sorted([values[1], values[2]]) == [0, 1]
