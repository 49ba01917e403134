"""covet's pool over raw asyncpg connections (issue 22): what release resets, and the watchdog.

The PostgreSQL backend keeps asyncpg connections in covet's own pool rather
than ``asyncpg.create_pool``. Release no longer sends a reset query every
time, so these tests pin what it must still undo before the next user: session
settings, temporary tables, ``LISTEN``, session advisory locks, a ``BEGIN``
sent as raw SQL, a ``PREPARE``. Each runs on a pool of one connection, so the
next checkout is the same server session unless it was replaced.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Database, OperationalError
from tests.db.conftest import ENV_VARS, _unavailable
from tests.db.relay import Relay

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _require_postgres(database: Database) -> None:
    if database.vendor != "postgres":
        pytest.skip("covet's asyncpg pool belongs to the PostgreSQL backend")


async def _one(make_database: Any) -> Database:
    db: Database = await make_database(min_size=1, max_size=1)
    return db


async def _pid(db: Database) -> int:
    return int(await db.fetch_val("SELECT pg_backend_pid()"))


async def test_plain_statements_reuse_the_session_without_a_reset(database, make_database):
    _require_postgres(database)
    db = await _one(make_database)
    pid = await _pid(db)
    for _ in range(3):
        assert await db.fetch_val("SELECT 1") == 1
    assert await _pid(db) == pid
    [conn] = db.backend._pool.connections()  # type: ignore[attr-defined]
    assert not conn.session_changed


async def test_session_settings_do_not_leak_to_the_next_user(database, make_database):
    _require_postgres(database)
    db = await _one(make_database)
    schema = await db.fetch_val("SHOW search_path")
    timeout = await db.fetch_val("SHOW statement_timeout")
    assert timeout == "30s"  # covet's command_timeout, set on the connection
    pid = await _pid(db)
    async with db.connection() as conn:
        await conn.execute("SET search_path TO public")
        await conn.execute("SET statement_timeout = '1234ms'")
        await conn.fetch_all("SELECT set_config('application_name', 'leaked', false)")
        assert await conn.fetch_val("SHOW search_path") == "public"
    # The same session (no reconnect), back to the settings it was opened with.
    assert await _pid(db) == pid
    assert await db.fetch_val("SHOW search_path") == schema
    assert await db.fetch_val("SHOW statement_timeout") == timeout
    assert await db.fetch_val("SHOW application_name") != "leaked"


async def test_set_local_needs_no_reset(database, make_database):
    _require_postgres(database)
    db = await _one(make_database)
    async with db.connection() as conn:
        await conn.begin()
        await conn.execute("SET LOCAL statement_timeout = '1234ms'")
        await conn.commit()
        assert not conn.session_changed


async def test_temp_tables_listen_and_advisory_locks_are_undone(database, make_database):
    _require_postgres(database)
    db = await _one(make_database)
    key = secrets.randbits(31)
    async with db.connection() as conn:
        await conn.execute("CREATE TEMP TABLE covet_scratch_tmp (id int)")
        await conn.execute("LISTEN covet_pool_test")
        await conn.fetch_all(f"SELECT pg_advisory_lock({key})")
    assert await db.fetch_val("SELECT to_regclass('pg_temp.covet_scratch_tmp')") is None
    assert await db.fetch_all("SELECT pg_listening_channels()") == []
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    assert await db.fetch_val(held) == 0


async def test_a_begin_sent_as_raw_sql_is_rolled_back_on_release(database, make_database, scratch):
    _require_postgres(database)
    table = database.ops.quote_name(await scratch("rawtx", "id INTEGER"))
    db = await _one(make_database)
    pid = await _pid(db)
    async with db.connection() as conn:
        await conn.execute("BEGIN")
        await conn.execute(f"INSERT INTO {table} (id) VALUES (1)")  # noqa: S608
    # Rolled back, on the same session, which is no longer in a transaction.
    assert await db.fetch_val(f"SELECT count(*) FROM {table}") == 0  # noqa: S608
    assert await _pid(db) == pid
    async with db.connection() as conn:
        assert not conn.raw.is_in_transaction()


async def test_a_connection_that_ran_prepare_is_replaced(database, make_database):
    _require_postgres(database)
    db = await _one(make_database)
    pid = await _pid(db)
    async with db.connection() as conn:
        await conn.execute("PREPARE covet_pool_stmt AS SELECT 1")
        assert await conn.fetch_val("EXECUTE covet_pool_stmt") == 1
    assert await _pid(db) != pid
    # The new session does not know the statement: it can be prepared again.
    async with db.connection() as conn:
        await conn.execute("PREPARE covet_pool_stmt AS SELECT 2")
        assert await conn.fetch_val("EXECUTE covet_pool_stmt") == 2


async def test_idle_connections_are_closed_after_their_lifetime(database, make_database):
    _require_postgres(database)
    db = await make_database(min_size=0, max_size=3, max_inactive_connection_lifetime=0.2)
    async with db.connection(), db.connection(), db.connection():
        pass
    assert db.pool_stats().size == 3
    for _ in range(100):
        if db.pool_stats().size == 0:
            break
        await asyncio.sleep(0.02)
    assert db.pool_stats().size == 0
    assert await db.fetch_val("SELECT 1") == 1


async def test_command_timeout_is_enforced_by_the_server(database, make_database):
    _require_postgres(database)
    db = await make_database(min_size=1, max_size=1, command_timeout=0.2)
    assert await db.fetch_val("SHOW statement_timeout") == "200ms"
    pid = await _pid(db)
    with pytest.raises(OperationalError, match=r"timed out \(command_timeout=0\.2s\)"):
        await db.fetch_val("SELECT pg_sleep(2)")
    # A cancelled statement leaves the connection usable: the same session goes on.
    assert await _pid(db) == pid


# -- a server that stops answering: the watchdog ---------------------------------------------


@pytest.fixture
async def relayed() -> AsyncIterator[tuple[Relay, Database]]:
    """Yield a relay and a Database of one connection through it (command_timeout 0.2 s)."""
    url = os.environ.get(ENV_VARS["postgres"], "")
    if not url:
        _unavailable(f"{ENV_VARS['postgres']} is not set; postgres tests are skipped")
    parts = urllib.parse.urlsplit(url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    await relay.start()
    netloc = f"{parts.username}@127.0.0.1:{relay.port}"
    through = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    db = Database(
        through,
        alias=f"frozen_{secrets.token_hex(4)}",
        min_size=1,
        max_size=1,
        timeout=5,
        command_timeout=0.2,
    )
    await db.connect()
    try:
        yield relay, db
    finally:
        await relay.stop()
        await db.disconnect()


async def test_watchdog_closes_a_connection_whose_server_stopped_answering(
    relayed: tuple[Relay, Database],
) -> None:
    relay, db = relayed
    pid = await _pid(db)
    relay.frozen = True
    started = time.monotonic()
    with pytest.raises(OperationalError, match=r"timed out \(command_timeout=0\.2s\): the server"):
        await db.fetch_val("SELECT 1")
    elapsed = time.monotonic() - started
    # Three scans every command_timeout / 2 after the statement was first seen.
    assert 0.25 <= elapsed < 2.0
    relay.frozen = False
    # The dead connection was discarded, not returned: the pool opens a new one.
    assert await _pid(db) != pid
    assert db.pool_stats().size == 1
