"""SQLite's shared connection: statements outside a transaction queued on one thread.

What it must keep from the pool it stands in for: every statement's result,
transactions isolated on their own connection, session state that never
leaks, the writer lock, and a way around it when a long query holds its
thread. Each test opens its own database file.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Database
from covet.db.backends.sqlite import (
    SHARED_QUEUE_LIMIT,
    SHARED_STALL_SECONDS,
    SharedSQLiteConnection,
    SQLiteBackend,
)
from covet.db.exceptions import DatabaseError, IntegrityError
from covet.db.execution import run_execute, run_fetch_all, run_fetch_one, run_insert

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'shared.db'}", alias="sqlite_shared", max_size=3)
    await database.connect()
    await database.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    shared = _shared(database)
    # A slow function on the shared connection only, to hold its thread.
    await shared.raw.create_function("covet_sleep", 1, _sleep)
    try:
        yield database
    finally:
        await database.disconnect()


def _backend(db: Database) -> SQLiteBackend:
    backend = db.backend
    assert isinstance(backend, SQLiteBackend)
    return backend


def _shared(db: Database) -> SharedSQLiteConnection:
    shared = _backend(db).shared
    assert shared is not None
    return shared


def _in_use(db: Database) -> int:
    stats = db.pool_stats()
    return stats.size - stats.idle


async def test_statements_outside_a_transaction_run_on_the_shared_connection(db: Database):
    shared = _shared(db)
    assert db.backend.checkout_now("SELECT 1") is shared
    key = await run_insert(db, "INSERT INTO item (name) VALUES (?)", ("a",), False)
    assert await run_fetch_one(db, "SELECT name FROM item WHERE id = ?", (key,)) == ("a",)
    assert await run_execute(db, "UPDATE item SET name = ? WHERE id = ?", ("b", key)) == 1
    assert await run_execute(db, "SELECT name FROM item", ()) == 0  # a query has no row count
    assert await run_fetch_all(db, "SELECT name FROM item", ()) == [("b",)]
    assert db.pool_stats().size == 1  # only min_size: the pool was never needed
    assert shared.in_flight == 0


async def test_concurrent_statements_queue_on_its_thread_in_order(db: Database):
    seen: list[int] = []

    async def watch() -> None:
        for _ in range(20):
            seen.append(db.pool_stats().shared_in_flight)
            await asyncio.sleep(0)

    reads = [run_fetch_one(db, f"SELECT {n}", ()) for n in range(50)]
    results, _ = await asyncio.gather(asyncio.gather(*reads), watch())
    assert [row[0] for row in results] == list(range(50))
    assert max(seen) > 1  # more than one statement in flight at once, on one connection
    assert db.pool_stats().size == 1
    assert db.pool_stats().shared_in_flight == 0


async def test_transactions_keep_their_own_pooled_connection(db: Database):
    async with db.transaction():
        await run_execute(db, "INSERT INTO item (name) VALUES (?)", ("inside",))
        assert _in_use(db) == 1
        outside = contextvars.Context()  # another task: not in the transaction

        async def read() -> list[Sequence[Any]]:
            return await run_fetch_all(db, "SELECT name FROM item", ())

        # The shared connection reads the last committed state, as any other connection.
        assert await asyncio.create_task(read(), context=outside) == []
        assert await run_fetch_all(db, "SELECT name FROM item", ()) == [("inside",)]
    assert await run_fetch_all(db, "SELECT name FROM item", ()) == [("inside",)]
    assert _in_use(db) == 0


async def test_session_statements_go_to_the_pool_and_never_reach_the_shared_one(db: Database):
    shared = _shared(db)
    conn = db.backend.checkout_now("PRAGMA foreign_keys = OFF")
    assert conn is not None
    assert conn is not shared
    await db.backend.release(conn)
    await run_execute(db, "PRAGMA foreign_keys = OFF", ())
    # The pool closed the connection that ran it; the shared one still enforces keys.
    assert await run_fetch_one(db, "PRAGMA foreign_keys", ()) == (1,)
    assert db.pool_stats().size == 0


async def test_a_long_statement_sends_new_ones_to_the_pool(db: Database):
    slow = asyncio.create_task(run_fetch_one(db, "SELECT covet_sleep(0.5)", ()))
    await asyncio.sleep(SHARED_STALL_SECONDS + 0.1)
    # The shared thread has finished nothing for longer than SHARED_STALL_SECONDS.
    started = time.monotonic()
    assert await run_fetch_one(db, "SELECT 7", ()) == (7,)
    assert time.monotonic() - started < 0.3  # did not queue behind the slow query
    assert not slow.done()
    assert await slow == (0.5,)
    # Once the thread finishes it takes statements again.
    assert db.backend.checkout_now("SELECT 1") is _shared(db)


async def test_a_full_queue_sends_new_statements_to_the_pool(db: Database):
    shared = _shared(db)
    slots = shared._lock.slot
    taken, slots.free = slots.free, 0  # as if SHARED_QUEUE_LIMIT statements were in flight
    try:
        assert shared.in_flight == SHARED_QUEUE_LIMIT
        conn = db.backend.checkout_now("SELECT 1")
        assert conn is not None
        assert conn is not shared
        await db.backend.release(conn)
        assert await run_fetch_one(db, "SELECT 8", ()) == (8,)
    finally:
        slots.free = taken


async def test_writes_take_the_writer_lock_and_errors_reach_the_caller(db: Database):
    lock = _backend(db).writer_lock
    shared = _shared(db)
    holds: list[tuple[int, int]] = []

    async def watch() -> None:
        for _ in range(20):
            holds.append((shared.writes, len(lock.waiters)))
            await asyncio.sleep(0)

    writes = (run_execute(db, "INSERT INTO item (name) VALUES (?)", (f"n{n}",)) for n in range(20))
    await asyncio.gather(*writes, watch())
    # Queued on one thread, the writes shared one hold on the lock instead of each waiting.
    assert max(count for count, _ in holds) > 1
    assert all(waiting == 0 for _, waiting in holds)
    assert lock.free == 1
    assert shared.writes == 0
    with pytest.raises(IntegrityError):
        await run_execute(db, "INSERT INTO item (name) VALUES (?)", ("n1",))
    assert lock.free == 1
    assert await run_fetch_one(db, "SELECT COUNT(*) FROM item", ()) == (20,)


async def test_a_cancelled_write_frees_the_writer_lock_once_its_thread_is_done(db: Database):
    lock = _backend(db).writer_lock
    write = asyncio.create_task(
        run_execute(db, "INSERT INTO item (name) VALUES (covet_sleep(0.3))", ())
    )
    await asyncio.sleep(0.1)
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    assert lock.free == 0  # the INSERT still runs on the thread: it still holds SQLite's lock
    # The next write waits for it rather than failing with "database is locked".
    await run_execute(db, "INSERT INTO item (name) VALUES (?)", ("after",))
    assert await run_fetch_all(db, "SELECT name FROM item ORDER BY id", ()) == [
        ("0.3",),
        ("after",),
    ]
    assert lock.free == 1


async def test_shared_connection_can_be_turned_off(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'off.db'}?shared_connection=false", alias="shared_off")
    await db.connect()
    try:
        assert _backend(db).shared is None
        conn = db.backend.checkout_now("SELECT 1")
        assert conn is not None
        await db.backend.release(conn)
        assert await run_fetch_one(db, "SELECT 9", ()) == (9,)
        assert db.pool_stats().shared_in_flight == 0
    finally:
        await db.disconnect()


async def test_an_in_memory_database_has_no_shared_connection():
    db = Database("sqlite:///:memory:", alias="shared_memory")
    await db.connect()
    try:
        assert _backend(db).shared is None
        assert await run_fetch_one(db, "SELECT 10", ()) == (10,)
    finally:
        await db.disconnect()


async def test_a_lost_shared_connection_leaves_statements_to_the_pool(db: Database):
    shared = _shared(db)
    assert await run_fetch_one(db, "SELECT 1", ()) == (1,)
    await shared.raw.close()
    with pytest.raises(DatabaseError, match=r"closed|no active connection"):
        await run_fetch_one(db, "SELECT 2", ())
    assert shared.broken
    assert await run_fetch_one(db, "SELECT 3", ()) == (3,)  # on the pool from now on


async def test_a_waiting_transaction_is_served_before_later_shared_writes(db: Database):
    lock = _backend(db).writer_lock
    shared = _shared(db)
    insert = "INSERT INTO item (name) VALUES (?)"
    slow = asyncio.create_task(
        run_execute(db, "INSERT INTO item (name) VALUES (covet_sleep(0.2))", ())
    )
    await asyncio.sleep(0.005)
    joined = asyncio.create_task(run_execute(db, insert, ("joined",)))
    await asyncio.sleep(0.005)
    assert shared.writes == 2  # joined the hold: queued on the thread, not on the lock

    async def in_transaction() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name) VALUES ('transaction')")

    txn = asyncio.create_task(in_transaction(), context=contextvars.Context())
    await asyncio.sleep(0.005)
    assert len(lock.waiters) == 1  # the transaction's BEGIN IMMEDIATE
    # A write on the shared connection now queues behind the transaction, not in the hold.
    later = asyncio.create_task(shared.execute(insert, ("later",)))
    await asyncio.gather(slow, joined, txn, later)
    names = await run_fetch_all(db, "SELECT name FROM item ORDER BY id", ())
    assert [name for (name,) in names] == ["0.2", "joined", "transaction", "later"]
    assert lock.free == 1
    assert shared.writes == 0


async def test_raw_execute_and_fetch_val_share_it_and_fetch_all_takes_the_pool(db: Database):
    shared = _shared(db)
    finished = shared.finished
    assert await db.execute("INSERT INTO item (name) VALUES (:name)", {"name": "raw"}) == 1
    assert await db.fetch_val("SELECT name FROM item") == "raw"
    assert shared.finished == finished + 2
    # Records need the column names: three round trips, so a pooled connection.
    assert [dict(row) for row in await db.fetch_all("SELECT name FROM item")] == [{"name": "raw"}]
    assert shared.finished == finished + 2


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "begin immediate",
        "/* a comment */ SAVEPOINT s1",
        "RELEASE s1",
        "ROLLBACK",
        "COMMIT",
        "END TRANSACTION",
        "PRAGMA foreign_keys = OFF",
        "ATTACH DATABASE 'other.db' AS other",
        "CREATE TEMP TABLE scratch (x INTEGER)",
    ],
)
async def test_transaction_control_and_session_statements_never_reach_it(db: Database, sql: str):
    assert not _shared(db).takes(sql)
    assert _shared(db).takes("SELECT 1")


async def test_a_raw_begin_leaves_the_shared_connection_outside_any_transaction(db: Database):
    # Sent as raw SQL outside transaction(), it runs on a pooled connection, which the
    # pool rolls back on release; statements on the shared connection stay autocommit.
    await db.execute("BEGIN")
    await db.execute("INSERT INTO item (name) VALUES ('autocommit')")
    assert not _shared(db).raw.in_transaction
    assert await run_fetch_all(db, "SELECT name FROM item", ()) == [("autocommit",)]
