"""Raw SQL with :name placeholders, Records and streaming, on every backend."""

from __future__ import annotations

import contextlib

import pytest

from covet.db.backends.base import Record
from covet.db.exceptions import IntegrityError, OperationalError, ProgrammingError


async def test_named_params_round_trip(database, scratch):
    table = await scratch("people", "id INTEGER PRIMARY KEY, name VARCHAR(50), note VARCHAR(50)")
    q = database.ops.quote_name(table)
    count = await database.execute(
        f"INSERT INTO {q} (id, name, note) VALUES (:id, :name, ':not_a_param')",  # noqa: S608
        {"id": 1, "name": "Ann"},
    )
    assert count == 1
    await database.execute_many(
        f"INSERT INTO {q} (id, name, note) VALUES (:id, :name, :note)",  # noqa: S608
        [{"id": 2, "name": "Bob", "note": "x"}, {"id": 3, "name": "Cy", "note": "100%"}],
    )
    row = await database.fetch_one(f"SELECT name, note FROM {q} WHERE id = :id", {"id": 1})  # noqa: S608
    assert row is not None
    assert (row["name"], row["note"]) == ("Ann", ":not_a_param")
    rows = await database.fetch_all(
        f"SELECT id FROM {q} WHERE name = :n OR name = :m OR name = :n ORDER BY id",  # noqa: S608
        {"n": "Ann", "m": "Cy"},
    )
    assert [r["id"] for r in rows] == [1, 3]
    assert await database.fetch_val(f"SELECT COUNT(*) FROM {q}") == 3  # noqa: S608
    assert await database.fetch_val(f"SELECT id FROM {q} WHERE id = :id", {"id": 99}) is None  # noqa: S608
    assert await database.fetch_one(f"SELECT id FROM {q} WHERE id = :id", {"id": 99}) is None  # noqa: S608
    update = f"UPDATE {q} SET note = :v WHERE id >= :lo"  # noqa: S608
    updated = await database.execute(update, {"v": "x", "lo": 2})
    # Matched rows, also on MySQL (FOUND_ROWS): row 2 already had note 'x'.
    assert updated == 2


async def test_percent_signs_and_colons_in_sql(database):
    row = await database.fetch_one(
        "SELECT '100%' AS p, 7 % 3 AS m, '10:30' AS t, :v AS v", {"v": "a%b"}
    )
    assert row is not None
    assert (row["p"], row["m"], row["t"], row["v"]) == ("100%", 1, "10:30", "a%b")


async def test_postgres_cast_is_not_a_placeholder(database):
    if database.ops.param_style != "numeric":
        pytest.skip("'::type' casts are PostgreSQL syntax")
    assert await database.fetch_val("SELECT '41'::int + :v", {"v": 1}) == 42
    assert await database.fetch_val("SELECT :v::text || 'b'", {"v": "a"}) == "ab"


async def test_record_access(database):
    row = await database.fetch_one("SELECT 1 AS a, 'two' AS b")
    assert isinstance(row, Record)
    assert row["a"] == 1 and row[1] == "two" and row[-1] == "two"
    assert dict(row) == {"a": 1, "b": "two"}
    assert row.keys() == ["a", "b"] and row.values() == [1, "two"]
    assert list(row) == [1, "two"] and len(row) == 2
    assert "a" in row and "z" not in row
    assert row.get("z", 5) == 5
    assert row == (1, "two")
    a, b = row
    assert (a, b) == (1, "two")
    assert repr(row) == "<Record a=1, b='two'>"
    with pytest.raises(KeyError, match=r"No column 'z' in this row\. Columns: a, b\."):
        row["z"]


async def test_parameter_errors(database):
    with pytest.raises(ProgrammingError, match="Missing value for the SQL parameter :x"):
        await database.fetch_val("SELECT :x")
    with pytest.raises(ProgrammingError, match="Unexpected SQL parameter"):
        await database.fetch_val("SELECT 1", {"x": 1})


async def test_error_translation(database, scratch):
    parent = await scratch("parent", "id INTEGER PRIMARY KEY")
    child = await scratch(
        "child",
        f"id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES "
        f"{database.ops.quote_name(parent)} (id), code VARCHAR(10) UNIQUE",
    )
    p, c = database.ops.quote_name(parent), database.ops.quote_name(child)
    await database.execute(f"INSERT INTO {p} (id) VALUES (1)")  # noqa: S608
    await database.execute(f"INSERT INTO {c} (id, parent_id, code) VALUES (1, 1, 'a')")  # noqa: S608
    with pytest.raises(IntegrityError):  # unique
        await database.execute(f"INSERT INTO {c} (id, parent_id, code) VALUES (2, 1, 'a')")  # noqa: S608
    with pytest.raises(IntegrityError):  # foreign key
        await database.execute(f"INSERT INTO {c} (id, parent_id, code) VALUES (3, 42, 'b')")  # noqa: S608
    with pytest.raises(IntegrityError):  # not null
        await database.execute(f"INSERT INTO {c} (id, parent_id, code) VALUES (4, NULL, 'c')")  # noqa: S608
    with pytest.raises(ProgrammingError):
        await database.execute("SELEKT nonsense")
    with pytest.raises(ProgrammingError):
        await database.fetch_all("SELECT * FROM covet_no_such_table")
    # The pool is healthy after errors.
    assert await database.fetch_val("SELECT 1") == 1


async def test_iterate_streams_in_chunks(database, scratch):
    table = await scratch("nums", "n INTEGER PRIMARY KEY")
    q = database.ops.quote_name(table)
    await database.execute_many(f"INSERT INTO {q} (n) VALUES (:n)", [{"n": i} for i in range(250)])  # noqa: S608
    seen = [
        row["n"]
        async for row in database.iterate(f"SELECT n FROM {q} ORDER BY n", chunk_size=64)  # noqa: S608
    ]
    assert seen == list(range(250))
    stats_before = database.pool_stats()
    async with contextlib.aclosing(
        database.iterate(f"SELECT n FROM {q} WHERE n >= :lo ORDER BY n", {"lo": 10}, chunk_size=7)  # noqa: S608
    ) as rows:
        async for row in rows:
            assert row[0] == 10
            break
    assert database.pool_stats().size <= stats_before.max_size
    assert await database.fetch_val(f"SELECT COUNT(*) FROM {q}") == 250  # noqa: S608


async def test_connection_iterate_and_insert(database, scratch):
    table = await scratch("ids", "id INTEGER PRIMARY KEY, v VARCHAR(10)")
    q = database.ops.quote_name(table)
    ph = database.ops.placeholder
    async with database.connection() as conn:
        await conn.execute(f"INSERT INTO {q} (id, v) VALUES ({ph(1)}, {ph(2)})", (7, "x"))  # noqa: S608
        await conn.execute_many(
            f"INSERT INTO {q} (id, v) VALUES ({ph(1)}, {ph(2)})",  # noqa: S608
            [(8, "y"), (9, "z")],
        )
        rows = [tuple(r) async for r in conn.iterate(f"SELECT id, v FROM {q} ORDER BY id", (), 2)]  # noqa: S608
        assert rows == [(7, "x"), (8, "y"), (9, "z")]
        assert tuple(await conn.fetch_one(f"SELECT v FROM {q} WHERE id = {ph(1)}", (8,))) == ("y",)  # noqa: S608
        assert await conn.fetch_val(f"SELECT COUNT(*) FROM {q}") == 3  # noqa: S608
        assert [tuple(r) for r in await conn.fetch_all(f"SELECT id FROM {q} ORDER BY id")] == [  # noqa: S608
            (7,),
            (8,),
            (9,),
        ]
        with pytest.raises(ValueError, match="chunk_size"):
            [r async for r in conn.iterate(f"SELECT id FROM {q}", (), 0)]  # noqa: S608


async def test_insert_returns_primary_key(database, scratch):
    auto = {
        "sqlite": "id INTEGER PRIMARY KEY AUTOINCREMENT",
        "postgres": "id SERIAL PRIMARY KEY",
        "mysql": "id INTEGER AUTO_INCREMENT PRIMARY KEY",
    }[database.vendor]
    table = await scratch("auto", f"{auto}, v VARCHAR(10)")
    q = database.ops.quote_name(table)
    sql = f"INSERT INTO {q} (v) VALUES ({database.ops.placeholder(1)})"  # noqa: S608
    async with database.connection() as conn:
        if database.features.supports_returning:
            first = await conn.insert(f"{sql} {database.ops.returning(['id'])}", ("a",), True)
        else:
            first = await conn.insert(sql, ("a",), False)
        second = await conn.insert(
            f"{sql} {database.ops.returning(['id'])}"
            if database.features.supports_returning
            else sql,
            ("b",),
            database.features.supports_returning,
        )
    assert (first, second) == (1, 2)


SLEEP = {"postgres": "SELECT pg_sleep(2)", "mysql": "SELECT SLEEP(2)"}


async def test_statement_timeout_is_an_operational_error(database, make_database):
    if "command_timeout" not in type(database.backend).options:
        pytest.skip(f"{database.vendor} has no command_timeout option")
    db = await make_database(command_timeout=0.2, min_size=1, max_size=1)
    with pytest.raises(OperationalError, match=r"timed out \(command_timeout=0\.2s\)"):
        await db.fetch_val(
            {"postgres": "SELECT pg_sleep(2)", "mysql": "SELECT SLEEP(2)"}[db.vendor]
        )
    assert await db.fetch_val("SELECT 1") == 1
