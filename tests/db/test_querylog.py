"""capture_queries(): every statement a connection runs, with parameters and durations."""

from __future__ import annotations

import asyncio

import pytest

from covet.db import (
    CapturedQuery,
    MissingSchemaObjectError,
    QueryLog,
    capture_queries,
    querylog,
    transaction,
)
from covet.db.exceptions import ProgrammingError
from covet.db.querylog import current_log, observe_queries, observe_query_durations


async def test_raw_sql_is_recorded_with_params_and_duration(database, scratch):
    table = await scratch("ql_people", "id INTEGER PRIMARY KEY, name VARCHAR(50)")
    q = database.ops.quote_name(table)
    async with capture_queries() as queries:
        await database.execute(
            f"INSERT INTO {q} (id, name) VALUES (:id, :name)",  # noqa: S608
            {"id": 1, "name": "Ann"},
        )
        await database.fetch_all(f"SELECT name FROM {q} WHERE id = :id", {"id": 1})  # noqa: S608
        await database.execute_many(
            f"INSERT INTO {q} (id, name) VALUES (:id, :name)",  # noqa: S608
            [{"id": 2, "name": "Bob"}, {"id": 3, "name": "Cy"}],
        )
    assert queries.count == len(queries) == 3
    insert, select, many = list(queries)
    assert isinstance(insert, CapturedQuery)
    assert insert.sql.startswith("INSERT INTO") and list(insert.params) == [1, "Ann"]
    assert select.sql.startswith("SELECT name") and list(select.params) == [1]
    assert many.many and [list(p) for p in many.params] == [[2, "Bob"], [3, "Cy"]]
    assert all(query.duration >= 0 and not query.failed for query in queries)
    assert queries.queries == [insert.sql, select.sql, many.sql]


async def test_streamed_query_is_recorded_once(database, scratch):
    table = await scratch("ql_stream", "id INTEGER PRIMARY KEY")
    q = database.ops.quote_name(table)
    await database.execute_many(f"INSERT INTO {q} (id) VALUES (:id)", [{"id": i} for i in range(5)])  # noqa: S608
    async with capture_queries() as queries:
        seen = [row["id"] async for row in database.iterate(f"SELECT id FROM {q}", chunk_size=2)]  # noqa: S608
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert queries.count == 1
    assert queries.queries == [f"SELECT id FROM {q}"]  # noqa: S608


async def test_transaction_control_is_left_out_unless_asked(database, scratch):
    table = await scratch("ql_tx", "id INTEGER PRIMARY KEY")
    q = database.ops.quote_name(table)
    async with (
        capture_queries() as counted,
        capture_queries(transactions=True) as everything,
        transaction(),
    ):
        await database.execute(f"INSERT INTO {q} (id) VALUES (1)")  # noqa: S608
        async with transaction():  # a savepoint
            await database.execute(f"INSERT INTO {q} (id) VALUES (2)")  # noqa: S608
    assert counted.count == 2
    assert all(sql.startswith("INSERT") for sql in counted.queries)
    kinds = [query.transaction for query in everything]
    assert everything.count == 6, everything.queries
    assert kinds == [True, False, True, False, True, True]
    assert everything.queries[0] == "BEGIN"
    assert everything.queries[-1] == "COMMIT"


async def test_failed_statement_is_recorded_and_schema_error_recognised(database):
    async with capture_queries() as queries:
        with pytest.raises(MissingSchemaObjectError) as missing_table:
            await database.fetch_all("SELECT id FROM covet_no_such_table_ql")
    assert isinstance(missing_table.value, ProgrammingError)
    assert queries.count == 1
    assert next(iter(queries)).failed


async def test_missing_column_is_recognised(database, scratch):
    table = await scratch("ql_cols", "id INTEGER PRIMARY KEY")
    q = database.ops.quote_name(table)
    with pytest.raises(MissingSchemaObjectError):
        await database.fetch_all(f"SELECT nope FROM {q}")  # noqa: S608
    with pytest.raises(MissingSchemaObjectError):
        await database.execute(f"INSERT INTO {q} (id, nope) VALUES (1, 2)")  # noqa: S608
    # A syntax error is a programming error, but not a missing table or column.
    with pytest.raises(ProgrammingError) as syntax:
        await database.fetch_all(f"SELEC id FROM {q}")
    assert not isinstance(syntax.value, MissingSchemaObjectError)


async def test_nested_and_child_tasks_are_seen_by_outer_logs(database):
    async with capture_queries() as outer:
        await database.fetch_val("SELECT 1")
        with capture_queries() as inner:
            await asyncio.gather(database.fetch_val("SELECT 2"), database.fetch_val("SELECT 3"))
        await database.fetch_val("SELECT 4")
    assert inner.count == 2
    assert outer.count == 4
    # Nothing is recorded once the block is left.
    await database.fetch_val("SELECT 5")
    assert outer.count == 4


async def test_limit_keeps_the_latest_and_counts_all(database):
    async with capture_queries(limit=2) as queries:
        for i in range(5):
            await database.fetch_val(f"SELECT {i}")
    assert queries.count == 5
    assert queries.queries == ["SELECT 3", "SELECT 4"]


def test_log_rejects_bad_limit_and_reuse():
    with pytest.raises(ValueError, match="Invalid query log limit 0"):
        QueryLog(limit=0)
    log = capture_queries()
    with log, pytest.raises(RuntimeError, match="already recording"), log:
        pass
    # Leaving restores the outer state: nothing is recording.
    assert current_log.get() is None


def test_recorded_queries_are_the_dataclass_built_another_way():
    # record() builds CapturedQuery through its slot descriptors (cheaper than the frozen
    # dataclass's __init__): the same fields, in the same order, giving an equal object.
    import dataclasses

    from covet.db import querylog

    assert tuple(field.name for field in dataclasses.fields(CapturedQuery)) == (
        querylog._CAPTURED_FIELDS
    )
    values = ("SELECT 1", (1, "a"), 0.25, True, False, True, "replica")
    built = querylog._captured(*values)
    assert type(built) is CapturedQuery
    assert built == CapturedQuery(*values)
    assert hash(built) == hash(CapturedQuery(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.sql = "DELETE FROM t"  # type: ignore[misc]


async def test_duration_observers_get_each_statement_but_transaction_control(
    database, scratch, monkeypatch
):
    table = await scratch("ql_timed", "id INTEGER PRIMARY KEY")
    q = database.ops.quote_name(table)
    timed: list[tuple[str, float, bool]] = []
    seen: list[CapturedQuery] = []
    # With timers alone, no CapturedQuery is built: building one here fails the test.
    monkeypatch.setattr(querylog, "_captured", _no_captured_query)
    stop = observe_query_durations(lambda *args: timed.append(args))
    try:
        async with transaction():
            await database.execute(f"INSERT INTO {q} (id) VALUES (1)")  # noqa: S608
            async with transaction():  # a savepoint, and its release
                await database.fetch_val(f"SELECT COUNT(*) FROM {q}")  # noqa: S608
        with pytest.raises(ProgrammingError):
            await database.execute(f"INSERT INTO {q} (no_such_column) VALUES (1)")  # noqa: S608
        assert [(alias, failed) for alias, _, failed in timed] == [
            (database.alias, False),
            (database.alias, False),
            (database.alias, True),
        ]
        assert all(type(seconds) is float and seconds >= 0 for _, seconds, _ in timed)

        # Beside a callback (which gets every statement), and inside a capture block.
        monkeypatch.undo()
        stop_callback = observe_queries(seen.append)
        async with capture_queries() as captured, transaction():
            await database.fetch_val(f"SELECT COUNT(*) FROM {q}")  # noqa: S608
        stop_callback()
        assert captured.count == 1
        assert len(timed) == 4
        assert [query.transaction for query in seen] == [True, False, True]
    finally:
        stop()
    await database.fetch_val("SELECT 1")
    assert len(timed) == 4  # removed
    assert querylog.observers.log is None  # nothing observes: statements record nothing


def _no_captured_query(*args: object) -> CapturedQuery:
    raise AssertionError("a CapturedQuery was built for timers alone")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", False),
        ('INSERT INTO "t" VALUES (1)', False),
        ("BEGIN", True),
        ("  begin transaction", True),
        ("\nSAVEPOINT s1", True),
        ("release savepoint s1", True),
        ("ROLLBACK TO SAVEPOINT s1", True),
        ("COMMIT", True),
        ("START TRANSACTION", True),
        ("select 'BEGIN'", False),
        ("", False),
    ],
)
def test_transaction_control_is_told_by_its_first_keyword(sql: str, expected: bool) -> None:
    assert querylog.is_transaction_control(sql) is expected
    assert querylog.is_transaction_control(sql) is expected  # the remembered answer


def test_only_short_statements_are_remembered() -> None:
    long_sql = "SELECT " + "1, " * 2_000 + "1"
    assert querylog.is_transaction_control(long_sql) is False
    assert long_sql not in querylog._TRANSACTION_SQL
    assert querylog.is_transaction_control("SELECT 2") is False
    assert "SELECT 2" in querylog._TRANSACTION_SQL


def test_a_full_answer_cache_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(querylog, "_TRANSACTION_SQL", {})
    monkeypatch.setattr(querylog, "_TRANSACTION_SQL_SIZE", 3)
    for n in range(3):
        querylog.is_transaction_control(f"SELECT {n}")
    assert querylog.is_transaction_control("BEGIN") is True
    assert querylog._TRANSACTION_SQL == {"BEGIN": True}
