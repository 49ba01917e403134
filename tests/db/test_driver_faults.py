"""Every driver call on a connection the server killed raises covet's error, never the driver's.

Issue 23's audit: connect, checkout, ping and close are covered by
test_connect_errors.py; this covers the calls made on a checked-out connection
(execute, execute_many, fetches, streaming, BEGIN/COMMIT/ROLLBACK) when the
server ends the session under them. Inside a transaction nothing can be
retried, so each must raise a covet.db.DatabaseError subclass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet.db.exceptions import DatabaseError, DatabaseUnavailableError
from tests.db.test_pool import KILL_SQL, SERVER_ID_SQL

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def _drain(conn: Any) -> None:
    async for _ in conn.iterate("SELECT 1", ()):
        pass


def _execute_many(conn: Any) -> Any:
    # The placeholder style is the dialect's.
    placeholder = conn.backend.ops.placeholder(1)
    return conn.execute_many(f"SELECT {placeholder}", [[1], [2]])


OPERATIONS: dict[str, Callable[[Any], Awaitable[Any]]] = {
    "execute": lambda conn: conn.execute("SELECT 1"),
    "execute_many": _execute_many,
    "fetch_all": lambda conn: conn.fetch_all("SELECT 1", ()),
    "fetch_one": lambda conn: conn.fetch_one("SELECT 1", ()),
    "fetch_val": lambda conn: conn.fetch_val("SELECT 1"),
    "iterate": _drain,
    "savepoint": lambda conn: conn.savepoint("covet_fault"),
    "commit": lambda conn: conn.commit(),
}


def _assert_covet_error(exc: BaseException) -> None:
    assert isinstance(exc, DatabaseError), f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert type(exc).__module__.startswith("covet."), type(exc)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_call_on_a_killed_connection_in_a_transaction_is_a_covet_error(
    database, make_database, operation
):
    if database.vendor not in KILL_SQL:
        pytest.skip("SQLite has no server that could end the session")
    db = await make_database(min_size=0, max_size=2)
    call = OPERATIONS[operation]
    async with db.connection() as conn:
        await conn.begin()
        victim = await conn.fetch_val(SERVER_ID_SQL[db.vendor])
        await database.execute(KILL_SQL[db.vendor], {"id": victim})
        with pytest.raises(Exception) as info:
            await call(conn)
        _assert_covet_error(info.value)
        # A session the server ended is a temporary condition: the app answers 503.
        assert isinstance(info.value, DatabaseUnavailableError), repr(info.value)
        # ROLLBACK on the dead session: covet's error or nothing, never the driver's.
        try:
            await conn.rollback()
        except Exception as exc:  # noqa: BLE001 - checked below
            _assert_covet_error(exc)
    # The pool hands out a working connection afterwards.
    assert await db.fetch_val("SELECT 7") == 7


async def test_begin_on_a_killed_connection_is_a_covet_error_or_a_fresh_start(
    database, make_database
):
    if database.vendor not in KILL_SQL:
        pytest.skip("SQLite has no server that could end the session")
    db = await make_database(min_size=0, max_size=2)
    async with db.connection() as conn:
        victim = await conn.fetch_val(SERVER_ID_SQL[db.vendor])
        await database.execute(KILL_SQL[db.vendor], {"id": victim})
        try:
            await conn.begin()
            await conn.rollback()
        except Exception as exc:  # noqa: BLE001 - checked below
            _assert_covet_error(exc)
    assert await db.fetch_val("SELECT 8") == 8
