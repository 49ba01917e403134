"""A database outage is a temporary condition: DatabaseUnavailableError (issue 23).

Each backend's error translation classifies "the server cannot be reached now"
(connection refused or lost, server shutting down, pool exhausted) as
:class:`covet.db.DatabaseUnavailableError`, which the web layer answers with
503 and Retry-After. The PostgreSQL tests reproduce the failure of the issue
for real: the server sends its "terminating connection" notice to an idle
pooled connection whose socket a relay keeps open, so the client's protocol
is stuck consuming that error when the connection is next checked out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from covet.db import (
    Database,
    DatabaseUnavailableError,
    OperationalError,
    PoolTimeout,
    TransactionRollbackError,
)
from tests.db.conftest import ENV_VARS, _unavailable
from tests.db.relay import Relay

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.exceptions import DatabaseError


def test_unavailable_is_an_operational_error_declaring_503() -> None:
    assert issubclass(DatabaseUnavailableError, OperationalError)
    assert issubclass(PoolTimeout, DatabaseUnavailableError)
    assert issubclass(PoolTimeout, TimeoutError)
    assert DatabaseUnavailableError.status_code == 503
    assert DatabaseUnavailableError.retry_after == 2


async def test_exhausted_pool_is_unavailable(database, make_database) -> None:
    db = await make_database(min_size=1, max_size=1, timeout=0.05, pool_only=True)
    async with db.connection():
        with pytest.raises(DatabaseUnavailableError) as info:
            await db.fetch_val("SELECT 1")
    assert isinstance(info.value, PoolTimeout)
    assert await db.fetch_val("SELECT 1") == 1


# -- PostgreSQL: the server's "terminating connection" on an idle pooled connection ---------


@pytest.fixture
async def postgres() -> AsyncIterator[tuple[Database, Database]]:
    """Yield ``(admin, db)``: a direct Database and one of one connection through the relay."""
    url = os.environ.get(ENV_VARS["postgres"], "")
    if not url:
        _unavailable(f"{ENV_VARS['postgres']} is not set; postgres tests are skipped")
    parts = urllib.parse.urlsplit(url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432, hold_server_close=True)
    await relay.start()
    tag = secrets.token_hex(4)
    admin = Database(url, alias=f"outage_admin_{tag}")
    await admin.connect()
    netloc = f"{parts.username}@127.0.0.1:{relay.port}"
    relayed = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    db = Database(relayed, alias=f"outage_{tag}", min_size=1, max_size=1, timeout=5)
    await db.connect()
    await admin.execute(f"CREATE TABLE outage_{tag} (id serial PRIMARY KEY, v integer)")
    try:
        yield admin, db
    finally:
        # The relay first: a graceful close would wait for the server's close it holds back.
        await relay.stop()
        await db.disconnect()
        await admin.execute(f"DROP TABLE outage_{tag}")
        await admin.disconnect()


def _sql(db: Database) -> tuple[str, str]:
    """Return the INSERT (of ``:v``) and the row count statements for ``db``'s test table."""
    table = "outage_" + db.alias.rpartition("_")[2]
    insert = f"INSERT INTO {table} (v) VALUES (:v)"  # noqa: S608 - the test's own table
    count = f"SELECT count(*), max(v) FROM {table}"  # noqa: S608 - the test's own table
    return insert, count


async def _terminate_backend(admin: Database, pid: int) -> None:
    assert await admin.fetch_val("SELECT pg_terminate_backend(:pid)", {"pid": pid}) is True
    await asyncio.sleep(0.1)  # the FATAL notice reaches the idle client connection


async def test_first_write_on_a_terminated_connection_is_retried_on_a_new_one(
    postgres: tuple[Database, Database],
) -> None:
    admin, db = postgres
    insert, count = _sql(db)
    pid = await db.fetch_val("SELECT pg_backend_pid()")
    await _terminate_backend(admin, pid)
    # asyncpg refuses to send on the stuck protocol: nothing reached the server, so the
    # INSERT is sent once, on a new connection.
    assert await db.execute(insert, {"v": 1}) == 1
    assert await db.fetch_val("SELECT pg_backend_pid()") != pid
    assert [tuple(row) for row in await admin.fetch_all(count)] == [(1, 1)]


async def test_a_write_that_cannot_be_retried_is_unavailable_not_a_driver_error(
    postgres: tuple[Database, Database],
) -> None:
    import asyncpg

    admin, db = postgres
    insert, count = _sql(db)
    async with db.connection() as conn:
        pid = await conn.fetch_val("SELECT pg_backend_pid()")
        await _terminate_backend(admin, pid)
        # Not the connection's first statement: it is never sent again elsewhere.
        with pytest.raises(DatabaseUnavailableError) as info:
            await conn.execute(insert.replace(":v", "$1"), (2,))
    assert str(info.value).startswith("The connection to PostgreSQL was lost: cannot switch to")
    assert isinstance(info.value.__cause__, asyncpg.exceptions.InternalClientError)
    assert [tuple(row) for row in await admin.fetch_all(count)] == [(0, None)]
    # The broken connection was discarded: the pool serves the next request.
    assert await db.execute(insert, {"v": 3}) == 1
    assert [tuple(row) for row in await admin.fetch_all(count)] == [(1, 3)]


@pytest.mark.parametrize(
    ("driver_error", "covet_class"),
    [
        ("InternalClientError", DatabaseUnavailableError),
        ("AdminShutdownError", DatabaseUnavailableError),
        ("CrashShutdownError", DatabaseUnavailableError),
        ("CannotConnectNowError", DatabaseUnavailableError),
        ("ConnectionDoesNotExistError", DatabaseUnavailableError),
        ("QueryCanceledError", OperationalError),
        # An OperationalError to retry the transaction, not a 503.
        ("DeadlockDetectedError", TransactionRollbackError),
    ],
)
def test_postgres_translation_of_server_going_away(
    driver_error: str, covet_class: type[DatabaseError]
) -> None:
    pytest.importorskip("asyncpg")
    import asyncpg

    backend = Database("postgresql://u@127.0.0.1/app", alias=f"t_{secrets.token_hex(4)}").backend
    exc = getattr(asyncpg.exceptions, driver_error)("the server's words")
    assert type(backend.translate_error(exc)) is covet_class


@pytest.mark.parametrize(
    ("errno", "covet_class"),
    [
        (2006, DatabaseUnavailableError),  # server has gone away
        (2013, DatabaseUnavailableError),  # lost connection during query
        (1053, DatabaseUnavailableError),  # server shutdown in progress
        (1213, TransactionRollbackError),  # deadlock: retry the transaction, not a 503
    ],
)
def test_mysql_translation_of_server_going_away(
    errno: int, covet_class: type[DatabaseError]
) -> None:
    pytest.importorskip("pymysql")
    import pymysql

    backend = Database("mysql://root@127.0.0.1/app", alias=f"t_{secrets.token_hex(4)}").backend
    exc = pymysql.err.OperationalError(errno, "the server's words")
    assert type(backend.translate_error(exc)) is covet_class
