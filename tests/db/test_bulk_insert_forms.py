"""The statement forms of a bulk INSERT: the same rows stored whichever form carries them.

PostgreSQL sends each column as one parameter: a JSON array when every value is
of a plain type (orjson writes it in one C call), else an array that asyncpg
encodes. MySQL/MariaDB write the values into the statement, a column at a time,
exactly as the driver's ``escape()`` writes each value. Both are checked here
against what the slower, value-by-value paths store.
"""

from __future__ import annotations

import datetime
import math
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import transaction
from covet.db.testing import capture_queries
from tests.db.models import Author, Color, Everything, Plain, Post, Priority

if TYPE_CHECKING:
    from covet.db.database import Database

UTC = datetime.UTC
TRICKY_TEXT = [
    "",
    "plain",
    'it\'s "quoted"',
    "back\\slash \\' \\\\",
    "line\nbreak\r\ttab \x1a sub",
    "naïve café ☕ 𝄞 \u2028",
    '{"json": [1, 2]}',
    "' OR 1=1; -- ",
]


def _plain_rows() -> list[Plain]:
    rows = [
        Plain(
            small=-32768,
            big=-(2**63),
            flt=0.1,
            flag=True,
            char=TRICKY_TEXT[i % len(TRICKY_TEXT)],
            text=TRICKY_TEXT[(i + 3) % len(TRICKY_TEXT)] * 3,
            day=datetime.date(1, 1, 1) if i == 0 else datetime.date(2024, 2, 29),
            moment=datetime.datetime(2024, 2, 29, 23, 59, 58, i * 1111 % 1_000_000, tzinfo=UTC),
            uid=uuid.UUID(int=i * 7919),
            data={"k": TRICKY_TEXT[i % len(TRICKY_TEXT)], "n": [i, 1.5, None, True]},
            color=Color.GREEN,
            priority=Priority.HIGH,
        )
        for i in range(20)
    ]
    rows[1].small, rows[1].big, rows[1].flt, rows[1].flag = 32767, 2**63 - 1, 1e-7, False
    rows[2].flt, rows[2].moment = 1.7976931348623157e308, datetime.datetime(1, 1, 1, tzinfo=UTC)
    rows[3].flt = -0.0
    rows[4].data = "just a string"
    rows[5].data = [None, "x"]
    rows.append(Plain())  # every column NULL
    return rows


async def _stored(objs: list[Plain]) -> list[tuple[Any, ...]]:
    names = [f.attname for f in Plain._meta.concrete_fields if not f.primary_key]
    got = {p.pk: p for p in await Plain.objects.filter(pk__in=[o.pk for o in objs])}
    return [tuple(getattr(got[o.pk], n) for n in names) for o in objs]


def _given(objs: list[Plain]) -> list[tuple[Any, ...]]:
    names = [f.attname for f in Plain._meta.concrete_fields if not f.primary_key]
    return [tuple(getattr(o, n) for n in names) for o in objs]


@pytest.mark.requires("can_bulk_insert_arrays")
async def test_plain_columns_travel_as_json_and_round_trip(orm: Database) -> None:
    objs = _plain_rows()
    async with capture_queries() as captured:
        await Plain.objects.bulk_create(objs)
    inserts = [sql for sql in captured.queries if sql.startswith("INSERT")]
    assert len(inserts) == 1
    assert "json_array_elements_text(" in inserts[0]
    assert await _stored(objs) == _given(objs)
    negative_zero = (await Plain.objects.get(pk=objs[3].pk)).flt
    assert negative_zero is not None
    assert math.copysign(1.0, negative_zero) == -1.0


@pytest.mark.requires("can_bulk_insert_arrays")
async def test_json_and_array_forms_store_the_same_rows(orm: Database, monkeypatch) -> None:
    as_json = _plain_rows()
    await Plain.objects.bulk_create(as_json)
    monkeypatch.setattr(type(orm.ops), "json_columns", lambda self, columns, types: None)
    as_arrays = _plain_rows()
    async with capture_queries() as captured:
        await Plain.objects.bulk_create(as_arrays)
    assert any("unnest(" in sql for sql in captured.queries)
    assert await _stored(as_json) == await _stored(as_arrays) == _given(as_arrays)


@pytest.mark.requires("can_bulk_insert_arrays")
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
async def test_non_finite_floats_go_as_arrays(orm: Database, value: float) -> None:
    # orjson writes NaN and the infinities as null: such a batch must not take the JSON form.
    objs = [Plain(flt=1.5), Plain(flt=value)]
    async with capture_queries() as captured:
        await Plain.objects.bulk_create(objs)
    assert not any("json_array_elements_text(" in sql for sql in captured.queries)
    stored = (await Plain.objects.get(pk=objs[1].pk)).flt
    assert stored is not None
    assert (math.isnan(stored) and math.isnan(value)) or stored == value


@pytest.mark.requires("can_bulk_insert_arrays")
async def test_a_column_without_a_json_form_sends_the_batch_as_arrays(orm: Database) -> None:
    objs = [Everything(dec=Decimal("1.50"), char="a'b", moment=datetime.datetime.now(UTC))]
    async with capture_queries() as captured:
        await Everything.objects.bulk_create(objs)
    assert any("unnest(" in sql for sql in captured.queries)
    got = await Everything.objects.get(pk=objs[0].pk)
    assert (got.dec, got.char, got.moment) == (Decimal("1.50"), "a'b", objs[0].moment)


@pytest.fixture
async def ann(orm: Database) -> Author:
    return await Author.objects.create(name="Ann", email="ann@example.com")


def _mysql_only(orm: Database) -> None:
    if orm.vendor != "mysql":
        pytest.skip("MySQL/MariaDB write values into the statement; the others bind them")


async def test_escape_columns_writes_what_escape_writes(orm: Database) -> None:
    _mysql_only(orm)
    # The MySQL adapter hands the driver naive UTC datetimes.
    naive = datetime.datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC).replace(tzinfo=None)
    columns: list[list[Any]] = [
        [0, -1, 2**63 - 1, -(2**63)],  # ints
        TRICKY_TEXT[:4],
        TRICKY_TEXT[4:],
        ["a", "b", "c", "d"],  # nothing to escape
        [naive, naive.replace(microsecond=5), naive.replace(year=1, day=28), naive],
        [1, None, "x", naive],  # mixed: value by value
        [True, False, None, 1],  # bools are not ints here
        [Decimal("1.50"), 1.5, b"\x00'\\", datetime.date(2024, 1, 1)],
        [datetime.datetime(2024, 1, 1, tzinfo=UTC)] * 4,  # aware: value by value
    ]
    async with orm.connection() as conn:
        raw = conn.raw
        assert raw.escape_columns(columns) == [[raw.escape(v) for v in c] for c in columns]


async def test_no_backslash_escapes_mode_is_honoured(orm: Database) -> None:
    # With NO_BACKSLASH_ESCAPES a backslash is an ordinary character: escaping as in the
    # default mode would end the literal early. The column path must notice the mode.
    _mysql_only(orm)
    objs = [Plain(char=t, text=t * 2) for t in TRICKY_TEXT]
    async with transaction(orm.alias):
        await orm.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
        await Plain.objects.bulk_create(objs)
        assert await _stored(objs) == _given(objs)
    assert await _stored(objs) == _given(objs)


def test_the_escape_table_matches_pymysql() -> None:
    pytest.importorskip("aiomysql")
    from pymysql.converters import escape_string

    from covet.db.backends.mysql.driver import _SPECIAL, _escape_text

    for code in range(0x800):
        char = chr(code)
        assert _escape_text(char) == escape_string(char), code
        assert (_SPECIAL.search(char) is not None) == (escape_string(char) != char), code


async def test_column_adapters_agree_with_value_adapters(orm: Database) -> None:
    # bulk_create() adapts a column of UTC datetimes in C loops where the backend offers it;
    # every column must come out as the value-by-value adapter writes it.
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2024, 2, 29, 23, 59, 58, 120, tzinfo=UTC)
    # Every width of each field: one- to four-digit years, microseconds either side of
    # the thousands, the last moment a datetime holds.
    widths: list[datetime.datetime | None] = [
        moment.replace(year=y, day=28, microsecond=us)
        for y in (1, 10, 999, 2024)
        for us in (1, 999, 1000, 123456)
    ]
    widths.append(datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    columns: list[list[datetime.datetime | None]] = [
        [moment, moment.replace(microsecond=0), moment.replace(year=1, day=28)],
        widths,
        [moment, None, moment.astimezone(plus_two)],
        [moment, datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(0)))],
    ]
    whole, one = orm.ops.get_column_adapter("datetime"), orm.ops.get_adapter("datetime")
    if whole is None:
        pytest.skip(f"{orm.vendor} adapts no datetime column at once")
    assert one is not None
    for column in columns:
        assert whole(list(column)) == [None if v is None else one(v) for v in column]


def _sqlite_only(orm: Database) -> None:
    if not orm.features.bulk_insert_counts_keys_back:
        pytest.skip(f"{orm.vendor} does not count a bulk INSERT's keys back from the last")


async def _check_keys(posts: list[Post]) -> None:
    stored = dict(await Post.objects.filter(views__gte=0).values_list("id", "title"))
    assert [stored[p.pk] for p in posts] == [p.title for p in posts]


async def test_keys_counted_back_without_returning(orm: Database, ann: Author) -> None:
    _sqlite_only(orm)
    posts = [Post(title=f"c{i}", author=ann, views=i) for i in range(100)]
    async with capture_queries() as captured:
        await Post.objects.bulk_create(posts)
    inserts = [sql for sql in captured.queries if sql.startswith("INSERT")]
    assert inserts
    assert not any("RETURNING" in sql for sql in inserts)
    await _check_keys(posts)


async def test_a_trigger_on_the_table_sends_keys_through_returning(
    orm: Database, ann: Author
) -> None:
    # The trigger's own INSERT takes a key between two of the statement's rows: counting
    # back from the last key would give the objects wrong keys.
    _sqlite_only(orm)
    table = Post._meta.table
    await orm.execute(
        f'CREATE TRIGGER covet_test_echo AFTER INSERT ON "{table.upper()}" WHEN NEW.views = 5 '  # noqa: S608
        f'BEGIN INSERT INTO "{table}" (title, body, author_id, views) '
        "VALUES ('echo', '', NEW.author_id, -1); END"
    )
    try:
        posts = [Post(title=f"t{i}", author=ann, views=i) for i in range(100)]
        async with capture_queries() as captured:
            await Post.objects.bulk_create(posts)
        assert any("RETURNING" in sql for sql in captured.queries if sql.startswith("INSERT"))
        await _check_keys(posts)
        assert await Post.objects.filter(title="echo").count() == 1
    finally:
        await orm.execute("DROP TRIGGER covet_test_echo")


async def test_keys_near_the_largest_rowid_go_through_returning(orm: Database, ann: Author) -> None:
    # Past the largest rowid SQLite picks free keys at random: they cannot be counted.
    _sqlite_only(orm)
    await Post.objects.create(id=2**63 - 50, title="high", author=ann, views=0)
    posts = [Post(title=f"h{i}", author=ann, views=i) for i in range(100)]
    async with capture_queries() as captured:
        await Post.objects.bulk_create(posts)
    assert any("RETURNING" in sql for sql in captured.queries if sql.startswith("INSERT"))
    await _check_keys(posts)
