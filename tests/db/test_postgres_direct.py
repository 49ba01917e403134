"""The PostgreSQL direct path (issue 22): prepared statements go straight to asyncpg's protocol.

Once asyncpg holds a statement in a connection's statement cache, covet sends it
with the protocol's ``bind_execute()`` instead of ``Connection.fetch()`` and
friends. These tests pin that the path is taken, that everything else still
takes asyncpg's public methods, and that the cases asyncpg's public path
handles around ``bind_execute()`` (a table altered under a cached statement,
a closed connection, no statement cache) behave the same with and without it.
"""

# ruff: noqa: S608 - table names come from the scratch fixture; values are bound parameters

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Database, DatabaseError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_PUBLIC = ("fetch", "fetchrow", "fetchval", "execute")


@pytest.fixture
def public_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count calls of asyncpg's public statement methods (they still run)."""
    import asyncpg

    calls: Counter[str] = Counter()
    for name in _PUBLIC:
        original = getattr(asyncpg.Connection, name)

        def counted(self: Any, *args: Any, _name: str = name, _f: Any = original, **kw: Any) -> Any:
            calls[_name] += 1
            return _f(self, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, name, counted)
    return calls


async def _one(database: Database, make_database: Any, **options: Any) -> Database:
    if database.vendor != "postgres":
        pytest.skip("the direct path belongs to the PostgreSQL backend")
    db: Database = await make_database(min_size=1, max_size=1, **options)
    return db


async def _dicts(db: Database, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    return [dict(row) for row in await db.fetch_all(sql, params)]


def _connection(db: Database) -> Any:
    [conn] = db.backend._pool.connections()  # type: ignore[attr-defined]
    return conn


async def test_a_prepared_statement_skips_asyncpg_public_methods(
    database: Database,
    make_database: Any,
    scratch: Callable[[str, str], Awaitable[str]],
    public_calls: Counter[str],
) -> None:
    db = await _one(database, make_database)
    table = await scratch("direct", "id SERIAL PRIMARY KEY, n INT NOT NULL")
    insert = f"INSERT INTO {table} (n) VALUES ($1) RETURNING id"
    update = f"UPDATE {table} SET n = $1 WHERE id = $2"
    select = f"SELECT n FROM {table} WHERE id = $1"
    async with db.connection() as conn:
        before = sum(public_calls.values())  # connecting ran a SET
        first = await conn.insert(insert, [1], True)
        assert await conn.execute(update, [2, first]) == 1
        assert await conn.fetch_all(select, [first]) == [(2,)]
        assert await conn.fetch_one(select, [first]) == (2,)
        queries = conn.raw._protocol.queries_count
        seen = sum(public_calls.values())
        # The first run of each SQL text (fetch_one's is fetch_all's): asyncpg prepares it.
        assert seen == before + 3

        second = await conn.insert(insert, [10], True)
        assert second == first + 1
        assert await conn.execute(update, [20, second]) == 1
        assert await conn.execute(update, [30, -1]) == 0
        assert await conn.fetch_all(select, [second]) == [(20,)]
        assert await conn.fetch_one(select, [second]) == (20,)
        assert await conn.fetch_one(select, [-1]) is None
        assert await conn.fetch_val(select, [second]) == 20
        assert [dict(r) for r in await conn.fetch_records(select, [second])] == [{"n": 20}]
        # Eight statements sent, none through asyncpg's public methods.
        assert conn.raw._protocol.queries_count == queries + 8
        assert sum(public_calls.values()) == seen
    assert await _dicts(db, f"SELECT n FROM {table} ORDER BY id") == [{"n": 2}, {"n": 20}]


async def test_statements_without_parameters_keep_the_simple_protocol(
    database: Database, make_database: Any, public_calls: Counter[str]
) -> None:
    db = await _one(database, make_database)
    before = public_calls["execute"]
    async with db.connection() as conn:
        for _ in range(2):  # several statements in one string: only the simple protocol
            assert await conn.execute("SELECT 1; SELECT 2", []) == 1
    assert public_calls["execute"] == before + 2


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "public"])
async def test_a_table_altered_under_a_cached_statement_is_prepared_again(
    database: Database,
    make_database: Any,
    scratch: Callable[[str, str], Awaitable[str]],
    direct: bool,
) -> None:
    db = await _one(database, make_database)
    table = await scratch("altered", "id INT PRIMARY KEY")
    await db.execute(f"INSERT INTO {table} (id) VALUES (1)")
    if not direct:
        _connection(db)._record_class = None
    select = f"SELECT * FROM {table} WHERE id = :id"
    assert await _dicts(db, select, {"id": 1}) == [{"id": 1}]
    assert await _dicts(db, select, {"id": 1}) == [{"id": 1}]
    await db.execute(f"ALTER TABLE {table} ADD COLUMN extra INT NOT NULL DEFAULT 7")
    # The server refuses the cached plan (its result type changed): dropped, prepared again.
    assert await _dicts(db, select, {"id": 1}) == [{"id": 1, "extra": 7}]

    # Inside a transaction the refusal aborts the transaction: it stands, as in asyncpg.
    await db.fetch_all(select, {"id": 1})
    with pytest.raises(DatabaseError, match="cached statement plan is invalid"):
        async with db.transaction():
            await db.execute(f"ALTER TABLE {table} ADD COLUMN more INT NOT NULL DEFAULT 8")
            await db.fetch_all(select, {"id": 1})
    # Rolled back, and the statement cache was dropped: the next run prepares again.
    assert await _dicts(db, select, {"id": 1}) == [{"id": 1, "extra": 7}]


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "public"])
async def test_a_closed_connection_raises_as_asyncpg_does(
    database: Database,
    make_database: Any,
    direct: bool,
) -> None:
    db = await _one(database, make_database)
    if not direct:
        _connection(db)._record_class = None
    select = "SELECT $1::int"
    with pytest.raises(DatabaseError) as raised:
        async with db.transaction(), db.connection() as conn:
            assert await conn.fetch_all(select, [1]) == [(1,)]
            assert await conn.fetch_all(select, [1]) == [(1,)]
            conn.raw.terminate()
            await conn.fetch_all(select, [1])
    assert "connection" in str(raised.value).lower()
    # The pool replaced the dead connection.
    assert await db.fetch_val("SELECT 41 + 1") == 42


async def test_no_statement_cache_means_asyncpg_public_methods(
    database: Database, make_database: Any, public_calls: Counter[str]
) -> None:
    db = await _one(database, make_database, statement_cache_size=0)
    async with db.connection() as conn:
        for _ in range(3):
            assert await conn.fetch_all("SELECT $1::int", [5]) == [(5,)]
    assert public_calls["fetch"] == 3


async def test_an_asyncpg_without_the_internals_takes_public_methods(
    database: Database, make_database: Any, public_calls: Counter[str]
) -> None:
    import asyncpg

    from covet.db.backends.postgres.connection import DIRECT_ASYNCPG, direct_record_class

    db = await _one(database, make_database)
    conn = _connection(db)
    assert direct_record_class(conn.raw) is not None, (
        f"asyncpg {asyncpg.__version__} is outside DIRECT_ASYNCPG {DIRECT_ASYNCPG}: read its "
        "protocol.pyx bind_execute() and connection.py _do_execute(), then widen the range"
    )

    class Stripped:
        """An asyncpg connection whose protocol lacks bind_execute()."""

        _protocol = object()

    assert direct_record_class(Stripped()) is None
    conn._record_class = None
    async with db.connection() as same:
        for _ in range(3):
            assert await same.fetch_one("SELECT $1::int", [5]) == (5,)
    assert public_calls["fetchrow"] == 3
