"""Transactions on every backend: commit, rollback, savepoints, on_commit, sharing, isolation."""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING

import pytest

from covet.db.exceptions import IntegrityError, NotSupportedError, TransactionManagementError
from covet.db.transactions import on_commit, transaction

if TYPE_CHECKING:
    from covet.db.database import Database


@pytest.fixture
async def items(database, scratch):
    table = await scratch("items", "id INTEGER PRIMARY KEY, name VARCHAR(50) UNIQUE")
    return database.ops.quote_name(table)


async def _names(database: Database, table: str) -> list[str]:
    return [r["name"] for r in await database.fetch_all(f"SELECT name FROM {table} ORDER BY id")]  # noqa: S608


async def _add(database: Database, table: str, id_: int, name: str) -> None:
    sql = f"INSERT INTO {table} (id, name) VALUES (:id, :n)"  # noqa: S608
    await database.execute(sql, {"id": id_, "n": name})


async def test_commit_and_rollback(database, items):
    async with transaction() as tx:
        await _add(database, items, 1, "a")
        async with database.connection() as conn:
            assert conn is tx.connection
    with pytest.raises(RuntimeError, match="boom"):
        async with transaction():
            await _add(database, items, 2, "b")
            raise RuntimeError("boom")
    assert await _names(database, items) == ["a"]


async def test_nested_savepoints_roll_back_only_their_block(database, items):
    async with database.transaction():
        await _add(database, items, 1, "outer")
        with pytest.raises(KeyError):
            async with transaction():
                await _add(database, items, 2, "inner")
                async with transaction():
                    await _add(database, items, 3, "innermost")
                raise KeyError("x")
        async with transaction():
            await _add(database, items, 4, "kept")
            with pytest.raises(ValueError, match="deep"):
                async with transaction():
                    await _add(database, items, 5, "dropped")
                    raise ValueError("deep")
    assert await _names(database, items) == ["outer", "kept"]


async def test_usable_after_integrity_error_in_savepoint(database, items):
    async with transaction():
        await _add(database, items, 1, "dup")
        with pytest.raises(IntegrityError):
            async with transaction():
                await _add(database, items, 2, "dup")
        await _add(database, items, 3, "after")
    assert await _names(database, items) == ["dup", "after"]


@pytest.mark.requires("transaction_aborts_on_error")
async def test_failed_transaction_surfaces_as_transaction_management_error(database, items):
    # PostgreSQL aborts the whole transaction after an error outside a savepoint.
    with pytest.raises(TransactionManagementError, match="nested `async with transaction"):
        async with transaction():
            await _add(database, items, 1, "dup")
            with pytest.raises(IntegrityError):
                await _add(database, items, 2, "dup")
            await _add(database, items, 3, "after")
    assert await _names(database, items) == []


async def test_on_commit_semantics(database, items):
    calls: list[str] = []

    async def async_hook():
        calls.append("async")

    async with transaction():
        on_commit(lambda: calls.append("outer"))
        with pytest.raises(RuntimeError):
            async with transaction():
                transaction.on_commit(lambda: calls.append("rolled back savepoint"))
                raise RuntimeError
        async with transaction():
            on_commit(async_hook)
        assert calls == []
    assert calls == ["outer", "async"]
    calls.clear()
    with pytest.raises(LookupError):
        async with transaction():
            on_commit(lambda: calls.append("never"))
            raise LookupError
    assert calls == []
    with pytest.raises(TransactionManagementError, match="outside a transaction"):
        on_commit(lambda: None)


async def test_decorator_form(database, items):
    @transaction()
    async def add_two(fail: bool) -> int:
        await _add(database, items, 1, "x")
        await _add(database, items, 2, "y")
        if fail:
            raise ValueError("no")
        return 2

    with pytest.raises(ValueError, match="no"):
        await add_two(True)
    assert await _names(database, items) == []
    assert await add_two(False) == 2
    assert await _names(database, items) == ["x", "y"]


async def test_isolation_option(database):
    level = "serializable"
    async with transaction(isolation=level):
        assert await database.fetch_val("SELECT 1") == 1
    with pytest.raises(NotSupportedError, match="Unsupported transaction isolation level"):
        async with transaction(isolation="chaotic"):
            pass
    with pytest.raises(TransactionManagementError, match="outermost"):
        async with transaction(), transaction(isolation=level):
            pass


@pytest.mark.requires("supports_isolation_levels")
async def test_isolation_level_is_applied(database, items):
    await _add(database, items, 1, "before")
    async with transaction(isolation="repeatable read"):
        assert await _names(database, items) == ["before"]
        # A change committed by another connection meanwhile stays invisible to this snapshot.
        other = asyncio.create_task(
            database.execute(f"UPDATE {items} SET name = 'after' WHERE id = 1"),  # noqa: S608
            context=contextvars.Context(),
        )
        await other
        assert await _names(database, items) == ["before"]
    assert await _names(database, items) == ["after"]


async def test_gather_inside_a_transaction_shares_it_safely(database, items):
    async with transaction():
        await asyncio.gather(*(_add(database, items, i, f"n{i}") for i in range(20)))
        assert len(await _names(database, items)) == 20
        with pytest.raises(TransactionManagementError, match="shares an enclosing transaction"):

            async def nested() -> None:
                async with transaction():
                    pass

            await asyncio.gather(nested())
    assert len(await _names(database, items)) == 20
    with pytest.raises(RuntimeError):
        async with transaction():
            await asyncio.gather(*(_add(database, items, 100 + i, f"m{i}") for i in range(5)))
            raise RuntimeError
    assert len(await _names(database, items)) == 20


async def test_task_outliving_its_transaction_is_refused(database, items):
    started = asyncio.Event()
    release = asyncio.Event()

    async def late() -> None:
        started.set()
        await release.wait()
        await _add(database, items, 1, "late")

    async with transaction():
        task = asyncio.create_task(late())
        await started.wait()
    release.set()
    with pytest.raises(TransactionManagementError, match="already ended"):
        await task
    assert await _names(database, items) == []


async def test_concurrent_top_level_transactions_do_not_share(database, items):
    gate = asyncio.Event()
    connections = []

    async def worker(i: int, fail: bool) -> None:
        async with transaction() as tx:
            connections.append(tx.connection)
            await _add(database, items, i, f"w{i}")
            if fail:
                raise RuntimeError
            gate.set()

    results = await asyncio.gather(worker(1, False), worker(2, True), return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert connections[0] is not connections[1]
    assert await _names(database, items) == ["w1"]


async def test_savepoint_false_joins_and_dooms_the_outer(database, items):
    with pytest.raises(TransactionManagementError, match="rolled back because an inner block"):
        async with transaction():
            await _add(database, items, 1, "a")
            with pytest.raises(ValueError, match="inner"):
                async with transaction(savepoint=False):
                    raise ValueError("inner")
            with pytest.raises(TransactionManagementError, match="savepoint=False"):
                await _add(database, items, 2, "b")
    assert await _names(database, items) == []


async def test_cancelled_transaction_rolls_back_and_returns_the_connection(database, items):
    before = database.pool_stats()
    inside = asyncio.Event()

    async def work() -> None:
        async with transaction():
            await _add(database, items, 1, "x")
            inside.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert await _names(database, items) == []
    assert database.pool_stats().size <= before.max_size
    assert database.pool_stats().idle == database.pool_stats().size


async def test_concurrent_writers_queue_without_errors(make_database, scratch):
    # On SQLite this exercises the single-writer queue (BEGIN IMMEDIATE behind a lock).
    table = await scratch("w", "writer INTEGER, n INTEGER")
    db = await make_database(max_size=9)
    w_sql = db.ops.quote_name(table)
    insert = f"INSERT INTO {w_sql} (writer, n) VALUES (:w, :n)"  # noqa: S608
    # 8 x 1000 on SQLite (its writer queue is the point); fewer where the server handles it.
    per_writer = {"sqlite": 1000}.get(db.vendor, 150)

    async def writer(w: int) -> None:
        for n in range(per_writer):
            async with db.transaction():
                await db.execute(insert, {"w": w, "n": n})

    async def reader() -> int:
        seen = 0
        for _ in range(50):
            seen = await db.fetch_val(f"SELECT COUNT(*) FROM {w_sql}")  # noqa: S608
            await asyncio.sleep(0)
        return seen

    results = await asyncio.gather(*(writer(w) for w in range(8)), reader(), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await db.fetch_val(f"SELECT COUNT(*) FROM {w_sql}") == 8 * per_writer  # noqa: S608
    assert (
        await db.fetch_val(f"SELECT COUNT(DISTINCT writer * 10000 + n) FROM {w_sql}")  # noqa: S608
        == 8 * per_writer
    )
