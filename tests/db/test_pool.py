"""The pool: timeouts, waiting, dead-connection recovery and cancellation safety."""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import secrets
import threading

import pytest

from covet.db.exceptions import OperationalError, PoolTimeout
from covet.db.transactions import transaction
from tests.db.test_database import wait_for_threads_to_end

# How to find and drop our own server connections (SQLite has no server).
SERVER_ID_SQL = {"postgres": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
KILL_SQL = {"postgres": "SELECT pg_terminate_backend(:id)", "mysql": "KILL :id"}
COUNT_SQL = {
    "postgres": "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = :tag",
    "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = :tag",
}


async def test_pool_timeout_names_the_pool_size(make_database):
    db = await make_database(min_size=0, max_size=1, timeout=0.2)
    async with db.connection():
        with pytest.raises(PoolTimeout, match=r"max_size=1\).*Raise max_size") as info:
            async with db.connection():
                pass
    assert isinstance(info.value, TimeoutError)
    assert await db.fetch_val("SELECT 1") == 1


async def test_dry_pool_waits_then_succeeds(make_database):
    db = await make_database(min_size=0, max_size=1, timeout=5, pool_only=True)
    held = await db.backend.acquire()
    waiter = asyncio.create_task(db.fetch_val("SELECT 2"))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await db.backend.release(held)
    assert await asyncio.wait_for(waiter, 5) == 2
    assert db.pool_stats().size == 1


async def test_stats_count_the_callers_waiting_for_a_dry_pool(make_database):
    db = await make_database(min_size=0, max_size=1, timeout=5, pool_only=True)
    held = await db.backend.acquire()
    waiters = [asyncio.create_task(db.fetch_val("SELECT 3")) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert db.pool_stats().waiting == 3
    waiters[0].cancel()  # a caller that gave up no longer counts
    await asyncio.sleep(0.05)
    assert db.pool_stats().waiting == 2
    await db.backend.release(held)
    assert await asyncio.gather(*waiters[1:]) == [3, 3]
    assert db.pool_stats().waiting == 0


async def test_stale_connections_recover_after_server_side_kill(database, make_database, scratch):
    if database.vendor not in KILL_SQL:
        pytest.skip("SQLite has no server that could drop a connection")
    table = database.ops.quote_name(await scratch("stale", "id INTEGER"))
    db = await make_database(min_size=2, max_size=2)
    id_sql = SERVER_ID_SQL[db.vendor]
    async with db.connection() as a, db.connection() as b:
        ids = {await a.fetch_val(id_sql), await b.fetch_val(id_sql)}
    for server_id in ids:
        await database.execute(KILL_SQL[db.vendor], {"id": server_id})
    # Reads right after the kill: dead idle connections are detected and replaced.
    for _ in range(4):
        assert await db.fetch_val("SELECT 41 + 1") == 42
    async with db.connection() as a, db.connection() as b:
        new_ids = {await a.fetch_val(id_sql), await b.fetch_val(id_sql)}
    assert not new_ids & ids
    # A transaction whose BEGIN meets a dead connection starts on a fresh one.
    for server_id in new_ids:
        await database.execute(KILL_SQL[db.vendor], {"id": server_id})
    async with transaction(using=db.alias):
        assert await db.fetch_val("SELECT 5") == 5
    # A write on a connection that died is never silently re-sent: it either ran on a
    # checked connection or raised OperationalError; the next statement works either way.
    async with db.connection() as a:
        victim = await a.fetch_val(id_sql)
    await database.execute(KILL_SQL[db.vendor], {"id": victim})
    written = 1
    try:
        await db.execute(f"INSERT INTO {table} (id) VALUES (1)")  # noqa: S608
    except OperationalError:
        written = 0
    assert await db.fetch_val(f"SELECT COUNT(*) FROM {table}") == written  # noqa: S608


# MariaDB and MySQL count COM_PING among the session's admin commands.
ADMIN_COMMANDS_SQL = "SHOW SESSION STATUS LIKE 'Com_admin_commands'"


async def _admin_commands(db) -> tuple[int, int]:
    """Return (server connection id, admin commands so far) from one checkout."""
    async with db.connection() as conn:
        rows = await conn.fetch_all(ADMIN_COMMANDS_SQL)
        return int(await conn.fetch_val("SELECT CONNECTION_ID()")), int(rows[0][1])


async def test_mysql_ping_interval_skips_recently_used_connections(database, make_database):
    if database.vendor != "mysql":
        pytest.skip("ping_interval is a MySQL/MariaDB option")
    db = await make_database(min_size=1, max_size=1, ping_interval=0.5)
    first_id, before = await _admin_commands(db)
    for _ in range(5):
        assert await db.fetch_val("SELECT 1") == 1
    same_id, after = await _admin_commands(db)
    assert (same_id, after) == (first_id, before)
    await asyncio.sleep(0.6)
    same_id, after_idle = await _admin_commands(db)
    assert (same_id, after_idle) == (first_id, before + 1)


async def test_mysql_connection_killed_while_idle_past_ping_interval_is_replaced(
    database, make_database, scratch
):
    if database.vendor != "mysql":
        pytest.skip("ping_interval is a MySQL/MariaDB option")
    table = database.ops.quote_name(await scratch("pinged", "id INTEGER"))
    db = await make_database(min_size=1, max_size=1, ping_interval=0.2)
    victim = await db.fetch_val("SELECT CONNECTION_ID()")
    await database.execute("KILL :id", {"id": victim})
    await asyncio.sleep(0.3)
    # The checkout finds the connection dead (by its closed socket, before any ping) and
    # opens a new one: even a write, which is never re-sent, runs.
    assert await db.execute(f"INSERT INTO {table} (id) VALUES (1)") == 1  # noqa: S608
    assert await db.fetch_val(f"SELECT COUNT(*) FROM {table}") == 1  # noqa: S608
    assert await db.fetch_val("SELECT CONNECTION_ID()") != victim
    assert db.pool_stats().size == 1


async def _server_count(database, tag: str) -> int | None:
    sql = COUNT_SQL.get(database.vendor)
    if sql is None:
        return None
    return int(await database.fetch_val(sql, {"tag": tag}))


async def test_a_thousand_cancellations_leak_nothing(database, make_database, target, scratch):
    tag = f"covet_c_{secrets.token_hex(4)}"
    # PostgreSQL counts our pool by application_name; MySQL by the test database name.
    options = (
        {"server_settings": {"application_name": tag}} if database.vendor == "postgres" else {}
    )
    server_tag = tag if database.vendor == "postgres" else target.name
    table = await scratch("cancel", "id INTEGER, v VARCHAR(10)")
    threads_before = set(threading.enumerate())
    db = await make_database(min_size=1, max_size=4, timeout=10, **options)
    q = db.ops.quote_name(table)
    initial_size = db.pool_stats().size
    baseline = await _server_count(database, server_tag)

    async def work(i: int) -> None:
        kind = i % 4
        if kind == 0:
            async with transaction(using=db.alias):
                await db.execute(f"INSERT INTO {q} (id, v) VALUES (:i, 'x')", {"i": i})  # noqa: S608
                await db.fetch_val(f"SELECT COUNT(*) FROM {q}")  # noqa: S608
        elif kind == 1:
            await db.fetch_all(f"SELECT * FROM {q} WHERE id < :i", {"i": i})  # noqa: S608
        elif kind == 2:
            async for _row in db.iterate(f"SELECT id FROM {q}", chunk_size=2):  # noqa: S608
                await asyncio.sleep(0)
        else:
            async with db.connection() as conn:
                sql = f"UPDATE {q} SET v = 'y' WHERE id = {db.ops.placeholder(1)}"  # noqa: S608
                await conn.execute(sql, (i,))

    rng = random.Random(1234)
    cancelled = 0
    for start in range(0, 1000, 50):
        tasks = [asyncio.create_task(work(i)) for i in range(start, start + 50)]
        await asyncio.sleep(rng.random() * 0.004)
        for task in tasks:
            if rng.random() < 0.9:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled += sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert [r for r in results if isinstance(r, Exception)] == []
    assert cancelled > 500
    # Everything settles: the pool is within bounds, all idle, and usable.
    for _ in range(300):
        stats = db.pool_stats()
        if stats.idle == stats.size:
            break
        await asyncio.sleep(0.01)
    stats = db.pool_stats()
    assert stats.idle == stats.size <= stats.max_size
    assert await db.fetch_val("SELECT 1") == 1
    if baseline is not None:
        # The server sees exactly the connections the pool holds (nothing leaked).
        expected = baseline - initial_size + db.pool_stats().size
        count = await _server_count(database, server_tag)
        for _ in range(300):
            count = await _server_count(database, server_tag)
            if count == expected:
                break
            await asyncio.sleep(0.01)
        assert count == expected
    await db.disconnect()
    assert await wait_for_threads_to_end(threads_before) == set()


@pytest.mark.skipif(
    os.environ.get("COVET_TEST_ALLOW_SERVER_RESTART", "") != "1",
    reason="restarts the shared PostgreSQL server; set COVET_TEST_ALLOW_SERVER_RESTART=1",
)
async def test_pool_recovers_after_a_postgres_server_restart(database, make_database):
    if database.vendor != "postgres":
        pytest.skip("restarts the local PostgreSQL cluster only")
    versions = sorted(p.name for p in pathlib.Path("/etc/postgresql").iterdir())
    db = await make_database(min_size=2, max_size=2)
    async with db.connection() as a, db.connection() as b:
        pids = {
            await a.fetch_val("SELECT pg_backend_pid()"),
            await b.fetch_val("SELECT pg_backend_pid()"),
        }
    assert len(pids) == 2
    started = await db.fetch_val("SELECT pg_postmaster_start_time()")
    restart = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"
    )
    assert await restart.wait() == 0
    # No application restart: the pool's dead connections are replaced on checkout.
    for _ in range(4):
        assert await db.fetch_val("SELECT 41 + 1") == 42
    assert await db.fetch_val("SELECT pg_postmaster_start_time()") > started
    async with transaction(using=db.alias):
        assert await db.fetch_val("SELECT 5") == 5
    async with db.connection() as a, db.connection() as b:
        fresh = {
            await a.fetch_val("SELECT pg_backend_pid()"),
            await b.fetch_val("SELECT pg_backend_pid()"),
        }
    assert not fresh & pids
    assert db.pool_stats().size <= 2
