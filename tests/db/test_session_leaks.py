"""Raw SQL that changes the session does not leak to the next user of a pooled connection.

Each case runs a raw statement that changes a session setting on a pool of
one connection, then checks the setting as the next checkout sees it: the
defaults covet opened the connection with. PostgreSQL resets the connection
(``RESET ALL``...), MySQL/MariaDB and SQLite close and reopen it.
"""

from __future__ import annotations

from typing import Any

import pytest

from covet.db import Database, transaction

# vendor -> [(statement changing the session, query reading the setting back)]
CASES: dict[str, list[tuple[str, str]]] = {
    "postgres": [
        ("SET statement_timeout = 1234", "SHOW statement_timeout"),
        ("SET search_path TO pg_catalog", "SHOW search_path"),
        ("/* a comment first */ SET work_mem = '9MB'", "SHOW work_mem"),
        ("-- a line comment\nSET application_name = 'leak'", "SHOW application_name"),
        (
            "DO $$ BEGIN EXECUTE 'SET lock_timeout = 4321'; END $$",
            "SHOW lock_timeout",
        ),
        ("SELECT set_config('work_mem', '11MB', false)", "SHOW work_mem"),
    ],
    "mysql": [
        ("SET SESSION sql_mode = 'ANSI_QUOTES'", "SELECT @@sql_mode"),
        ("SET time_zone = '+05:00'", "SELECT @@time_zone"),
        ("SET @leak = 5", "SELECT @leak"),
        ("/* a comment first */ SET NAMES latin1", "SELECT @@character_set_client"),
        ("SELECT 7 INTO @leak", "SELECT @leak"),
    ],
    "sqlite": [
        ("/* a comment first */ PRAGMA recursive_triggers = ON", "PRAGMA recursive_triggers"),
        ("PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys"),
    ],
}


@pytest.fixture
async def single(make_database: Any) -> Database:
    db: Database = await make_database(min_size=1, max_size=1)
    return db


async def test_raw_session_changes_do_not_reach_the_next_user(database, single):
    for change, read in CASES[database.vendor]:
        before = await single.fetch_val(read)
        async with single.connection() as conn:
            await conn.execute(change)
            changed = await conn.fetch_val(read)
        assert changed != before, change  # the statement did change this session
        assert await single.fetch_val(read) == before, change


async def test_a_session_change_inside_a_transaction_is_undone_too(database, single):
    change, read = CASES[database.vendor][0]
    before = await single.fetch_val(read)
    async with transaction(single.alias):
        await single.execute(change)
        assert await single.fetch_val(read) != before
    assert await single.fetch_val(read) == before


async def test_plain_statements_keep_the_connection(database, single):
    async with single.connection() as first:
        await first.fetch_val("SELECT 1")
    async with single.connection() as second:
        await second.execute("SELECT 1")
    assert first is second
    assert not second.session_changed
