"""The connection layer's own primitives: pool slots and the per-connection statement lock.

Both have an uncontended fast path that skips the queue (a counter or a flag
test); these tests pin what the slow path still guarantees: first come, first
served, no slot or lock lost to a waiter cancelled or timed out at any point,
and a clear error instead of a deadlock when a task re-enters its own lock.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars

import pytest

from covet.db.backends.base.connection import _OpLock
from covet.db.backends.base.slots import FifoSlots
from covet.db.exceptions import DatabaseError, InterfaceError, OperationalError, PoolTimeout
from covet.db.execution import run_fetch_all

# -- FifoSlots----------------------------------------------------------------------------------


async def test_slots_serve_waiters_in_arrival_order():
    slots = FifoSlots(1)
    slots.free -= 1
    order: list[int] = []

    async def take(i: int) -> None:
        await slots.wait()
        order.append(i)
        slots.release()

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(take(i)))
        await asyncio.sleep(0)
    slots.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert (slots.free, len(slots.waiters)) == (1, 0)


async def test_slots_release_hands_over_so_no_newcomer_jumps_the_queue():
    slots = FifoSlots(1)
    slots.free -= 1
    waiter = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    slots.release()
    # The slot went to the queued waiter, not back to the free count a newcomer would take.
    assert slots.free == 0
    await waiter
    slots.release()
    assert slots.free == 1


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_slot_handed_to_a_cancelled_waiter_passes_to_the_next(timeout):
    slots = FifoSlots(1)
    slots.free -= 1
    first = asyncio.create_task(slots.wait(timeout))
    second = asyncio.create_task(slots.wait(timeout))
    await asyncio.sleep(0)
    slots.release()  # handed to ``first``...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
    slots.release()
    assert (slots.free, len(slots.waiters)) == (1, 0)


async def test_cancelled_waiter_leaves_the_queue():
    slots = FifoSlots(1)
    slots.free -= 1
    waiter = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(slots.waiters) == 0
    slots.release()
    assert slots.free == 1


async def test_a_wait_that_runs_out_of_time_takes_no_slot_and_leaves_the_queue():
    slots = FifoSlots(1)
    slots.free -= 1
    late = asyncio.create_task(slots.wait(0.05))
    patient = asyncio.create_task(slots.wait(5))
    assert await late is False
    assert list(slots.waiters) == [waiter for waiter in slots.waiters if not waiter.done()]
    slots.release()  # skips the expired waiter: the slot goes to the next in line
    assert await patient is True
    slots.release()
    assert (slots.free, len(slots.waiters)) == (1, 0)


async def test_a_slot_handed_before_the_time_runs_out_is_kept():
    slots = FifoSlots(1)
    slots.free -= 1
    waiter = asyncio.create_task(slots.wait(0.05))
    await asyncio.sleep(0)
    slots.release()
    await asyncio.sleep(0.1)  # the timer would have fired by now: it was cancelled
    assert await waiter is True
    assert (slots.free, len(slots.waiters)) == (0, 0)
    slots.release()
    assert slots.free == 1


# -- the pool ----------------------------------------------------------------------------------


async def test_pool_waiters_get_connections_first_come_first_served(make_database):
    db = await make_database(min_size=0, max_size=1, timeout=5)
    held = await db.backend.acquire()
    order: list[int] = []

    async def use(i: int) -> None:
        async with db.connection() as conn:
            order.append(i)
            await conn.fetch_val("SELECT 1")

    tasks = []
    for i in range(4):
        tasks.append(asyncio.create_task(use(i)))
        await asyncio.sleep(0.01)
    await db.backend.release(held)
    late = asyncio.create_task(use(4))  # arrives after the release: queues behind the rest
    await asyncio.wait_for(asyncio.gather(*tasks, late), 5)
    assert order == [0, 1, 2, 3, 4]


async def test_timed_out_and_cancelled_waiters_leak_no_slot(make_database):
    db = await make_database(min_size=0, max_size=2, timeout=0.2)
    first, second = await db.backend.acquire(), await db.backend.acquire()
    with pytest.raises(PoolTimeout):
        await db.backend.acquire()
    cancelled = asyncio.create_task(db.fetch_val("SELECT 1"))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    # A release handing its slot to a waiter that is cancelled before it runs.
    handed = asyncio.create_task(db.fetch_val("SELECT 1"))
    await asyncio.sleep(0.05)
    await db.backend.release(first)
    handed.cancel()
    await asyncio.gather(cancelled, handed, return_exceptions=True)
    await db.backend.release(second)
    # Both slots are free again: two connections at once, without waiting.
    a, b = await db.backend.acquire(), await db.backend.acquire()
    await db.backend.release(a)
    await db.backend.release(b)
    assert db.pool_stats().max_size == 2


async def test_a_connection_checked_out_for_one_statement_always_goes_back(make_database):
    # The statement helpers check the pool's ready connection out with a plain call and the
    # statement's own coroutine returns it: after a result, an error, or a cancellation.
    db = await make_database(min_size=1, max_size=1, timeout=1, pool_only=True)
    assert (await run_fetch_all(db, "SELECT 1", ()))[0][0] == 1
    assert db.pool_stats().idle == 1
    with pytest.raises(DatabaseError):
        await run_fetch_all(db, "SELECT * FROM covet_no_such_table", ())
    assert db.pool_stats().idle == 1
    conn = db.backend.checkout_now("SELECT 1")
    assert conn is not None
    assert db.backend.checkout_now("SELECT 1") is None  # the only connection is out
    assert conn._lock.try_take()
    # Cancelled while waiting for the statement lock, before the statement ran.
    waiting = asyncio.ensure_future(conn._run(conn._fetch_all, "SELECT 1", (), release=True))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    conn._lock.release()
    assert db.pool_stats().idle == 1  # back: the next statement does not time out
    assert (await run_fetch_all(db, "SELECT 2", ()))[0][0] == 2


# -- _OpLock -----------------------------------------------------------------------------------


async def test_op_lock_serves_waiters_in_arrival_order_and_passes_on_cancelled_turns():
    lock = _OpLock()
    assert lock.try_take()
    order: list[int] = []

    async def turn(i: int) -> None:
        await lock.wait()
        order.append(i)
        lock.release()

    tasks = []
    for i in range(4):
        tasks.append(asyncio.create_task(turn(i)))
        await asyncio.sleep(0)
    lock.release()  # handed to task 0...
    tasks[0].cancel()  # ...cancelled before it runs: task 1 must get the lock
    await asyncio.wait_for(asyncio.gather(*tasks[1:]), 1)
    assert order == [1, 2, 3]
    assert not lock.locked()
    assert not lock.waiters


async def test_statement_from_the_task_holding_the_lock_fails_instead_of_deadlocking(database):
    async with database.connection() as conn:
        async with conn._lock:
            # asyncio.timeout(), not wait_for(): the statement must run in this very task.
            with pytest.raises(InterfaceError, match="still streaming a result to the same task"):
                async with asyncio.timeout(5):
                    await conn.fetch_val("SELECT 1")
        assert await conn.fetch_val("SELECT 1") == 1


async def test_tasks_sharing_a_transaction_take_turns_in_order(database):
    order: list[int] = []

    async def step(i: int) -> None:
        async with database.connection() as conn:
            assert await conn.fetch_val(f"SELECT {i}") == i
            order.append(i)

    async with database.transaction():
        tasks = [asyncio.create_task(step(i)) for i in range(10)]
        await asyncio.gather(*tasks)
        async with database.connection() as conn:
            assert not conn._lock.locked()
    assert order == list(range(10))


# -- SQLite's writer lock ----------------------------------------------------------------------


async def test_sqlite_writers_queue_and_a_long_wait_is_a_clear_error(database, make_database):
    if database.vendor != "sqlite":
        pytest.skip("the per-process writer lock is SQLite's")
    db = await make_database(timeout=0.2, max_size=3)
    await db.execute("CREATE TABLE IF NOT EXISTS writer_queue (id INTEGER PRIMARY KEY)")
    try:
        async with db.transaction():
            await db.execute("INSERT INTO writer_queue (id) VALUES (1)")  # holds the lock

            async def write_outside() -> None:
                await db.execute("INSERT INTO writer_queue (id) VALUES (2)")

            # Another task's write (outside this transaction: a fresh context) queues for
            # the lock and gives up after the timeout.
            with pytest.raises(OperationalError, match="writer lock"):
                await asyncio.create_task(write_outside(), context=contextvars.Context())
            assert db.backend.writer_lock.waiters == collections.deque()
        # Committed: the lock is free again, and queued writers each get it in turn.
        await asyncio.gather(
            *(db.execute(f"INSERT INTO writer_queue (id) VALUES ({n})") for n in range(3, 9))  # noqa: S608
        )
        assert await db.fetch_val("SELECT COUNT(*) FROM writer_queue") == 7
        assert db.backend.writer_lock.free == 1
    finally:
        await db.execute("DROP TABLE writer_queue")
