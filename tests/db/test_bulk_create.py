"""bulk_create() on every backend: batches, validation before any write, keys, hooks."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import ValidationError
from covet.db.testing import assert_num_queries, capture_queries
from tests.db.models import Author, Color, Everything, Keyed, Post, Priority

if TYPE_CHECKING:
    from covet.db.database import Database

UTC = datetime.UTC


@pytest.fixture
async def ann(orm: Database) -> Author:
    return await Author.objects.create(name="Ann", email="ann@example.com")


async def test_batch_size_splits_into_statements_of_that_size(ann):
    posts = [Post(title=f"p{i}", author=ann, views=i) for i in range(5)]
    # Three INSERTs (2 + 2 + 1 rows; BEGIN/COMMIT are not counted): the last has its own shape.
    async with assert_num_queries(3):
        await Post.objects.bulk_create(posts, batch_size=2)
    rows = await Post.objects.order_by("views").values_list("title", "views", "author_id")
    assert rows == [(f"p{i}", i, ann.pk) for i in range(5)]
    assert all(p._state.adding is False for p in posts)


@pytest.mark.requires("can_return_rows_from_bulk_insert")
async def test_keys_are_set_in_every_batch(ann):
    posts = [Post(title=f"p{i}", author=ann, views=i) for i in range(7)]
    await Post.objects.bulk_create(posts, batch_size=3)
    assert all(isinstance(p.pk, int) for p in posts)
    assert len({p.pk for p in posts}) == 7
    by_pk = {p.pk: p.views for p in await Post.objects.all()}
    assert by_pk == {p.pk: p.views for p in posts}


async def test_values_are_cleaned_and_adapted_per_backend(ann):
    when = datetime.datetime(
        2024, 5, 1, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    posts = [
        Post(title="a", author_id=ann.pk, published_at=when, rating=Decimal("1.5")),
        Post(title="b", author=ann, views="7", rating=None),
    ]
    await Post.objects.bulk_create(posts, batch_size=1)
    # full_clean() stored the canonical values on the objects...
    stamped = posts[0].published_at
    assert stamped is not None
    assert stamped.tzinfo is UTC
    assert posts[1].views == 7
    # ...and the database holds them exactly (decimal and datetime go through the adapters).
    a = await Post.objects.get(title="a")
    b = await Post.objects.get(title="b")
    assert a.published_at == when
    assert a.rating == Decimal("1.50")
    assert (b.views, b.rating, b.author_id) == (7, None, ann.pk)


async def test_invalid_object_in_the_middle_writes_nothing(ann):
    posts = [Post(title=f"p{i}", author=ann) for i in range(6)]
    posts[3].title = "x" * 201
    posts[3].views = "many"  # type: ignore[assignment]
    with pytest.raises(ValidationError) as info:
        await Post.objects.bulk_create(posts, batch_size=2)
    # Every bad field of the first bad object is named, as full_clean() names them.
    assert set(info.value.error_dict) == {"title", "views"}
    assert "at most 200 characters" in info.value.error_dict["title"][0]
    assert await Post.objects.count() == 0


async def test_objects_with_and_without_keys_in_one_call(ann):
    posts = [Post(id=1000 + i, title=f"k{i}", author=ann) for i in range(3)]
    posts += [Post(title=f"n{i}", author=ann) for i in range(3)]
    await Post.objects.bulk_create(posts, batch_size=2)
    assert [p.pk for p in posts[:3]] == [1000, 1001, 1002]
    assert await Post.objects.count() == 6
    kept = await Post.objects.filter(pk__in=[1000, 1001, 1002]).order_by("id")
    assert [p.title for p in kept] == ["k0", "k1", "k2"]


async def test_a_model_full_clean_override_runs_for_every_object(ann, monkeypatch):
    seen: list[str] = []
    original = Post.full_clean

    def full_clean(self, *, exclude=()):
        seen.append(self.title)
        original(self, exclude=exclude)

    monkeypatch.setattr(Post, "full_clean", full_clean)
    await Post.objects.bulk_create([Post(title=t, author=ann, views="3") for t in "abc"])
    assert seen == ["a", "b", "c"]
    assert await Post.objects.filter(views=3).count() == 3


def _everything(i: int) -> Everything:
    return Everything(integer=i, char=f"c{i}", data={"i": i})


@pytest.mark.requires("max_cacheable_statement_size", "can_return_rows_from_bulk_insert")
async def test_long_inserts_split_into_equal_cacheable_statements(orm, monkeypatch):
    # The multi-row VALUES path (PostgreSQL takes it for a column type with no array form).
    monkeypatch.setattr(orm.features, "can_bulk_insert_arrays", False)
    limit = orm.features.max_cacheable_statement_size
    objs = [_everything(i) for i in range(1500)]
    async with capture_queries() as counter:
        await Everything.objects.bulk_create(objs)
    inserts = [sql for sql in counter.queries if sql.startswith("INSERT")]
    # Every statement stays short enough for the driver to keep it prepared, and the
    # rows are spread evenly: every statement but the last has the same shape.
    assert len(inserts) > 1
    assert all(len(sql) <= limit for sql in inserts)
    assert len(set(inserts[:-1])) == 1
    assert len({o.pk for o in objs}) == 1500
    assert await Everything.objects.count() == 1500


@pytest.mark.requires("max_cacheable_statement_size")
async def test_explicit_batch_size_is_kept_even_past_the_cacheable_length(orm, monkeypatch):
    monkeypatch.setattr(orm.features, "can_bulk_insert_arrays", False)
    async with assert_num_queries(1):
        await Everything.objects.bulk_create([_everything(i) for i in range(1500)], batch_size=1500)
    assert await Everything.objects.count() == 1500


# -- statement sizes, key order and every field type (issue 22) ---------------------------------


async def test_rows_per_statement_at_and_over_the_parameter_limit(orm):
    # Keyed binds two parameters a row (code, label). A multi-row VALUES carries at most
    # max_query_params // 2 rows: exactly that many is one statement, one more is two. An
    # array INSERT (one parameter per column) is one statement either way.
    per_statement = orm.features.max_query_params // 2
    arrays = orm.features.can_bulk_insert_arrays
    start = 0
    for extra, statements in ((0, 1), (1, 1 if arrays else 2)):
        n = per_statement + extra
        objs = [Keyed(code=f"k{start + i}", label=str(i)) for i in range(n)]
        async with capture_queries() as counter:
            await Keyed.objects.bulk_create(objs)
        inserts = [sql for sql in counter.queries if sql.startswith("INSERT")]
        assert len(inserts) == statements, (n, statements)
        start += n
    assert await Keyed.objects.count() == start
    assert await Keyed.objects.filter(code=f"k{start - 1}").values_list("label", flat=True) == [
        str(per_statement)
    ]


@pytest.mark.requires("can_bulk_insert_arrays")
async def test_array_inserts_split_at_batch_size(ann):
    for n, statements in ((6, 2), (7, 3)):
        posts = [Post(title=f"b{n}-{i}", author=ann, views=i) for i in range(n)]
        async with capture_queries() as counter:
            await Post.objects.bulk_create(posts, batch_size=3)
        inserts = [sql for sql in counter.queries if sql.startswith("INSERT")]
        assert len(inserts) == statements
        # The same short statement whatever the number of rows: one prepared statement.
        assert len(set(inserts)) == 1
        assert "unnest(" in inserts[0]
    assert await Post.objects.count() == 13


@pytest.mark.requires("can_return_rows_from_bulk_insert")
async def test_returned_keys_follow_the_order_of_the_objects(ann):
    titles = [f"t{(i * 7919) % 1000:03d}" for i in range(1000)]  # not in sorted order
    posts = [Post(title=t, author=ann, views=i) for i, t in enumerate(titles)]
    await Post.objects.bulk_create(posts)
    keys = [p.pk for p in posts]
    assert keys == sorted(keys)
    assert len(set(keys)) == 1000
    stored = dict(await Post.objects.values_list("id", "title"))
    assert all(stored[p.pk] == p.title for p in posts)


async def test_every_field_type_round_trips(orm: Database) -> None:
    import uuid

    moment = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    full = Everything(
        small=-7,
        integer=2_000_000_000,
        big=9_000_000_000_000_000_000,
        flt=0.1,
        dec=Decimal("12345678901234.123456"),
        flag=False,
        char="naïve 'q' \\ x",
        text="line\nnext; DROP TABLE x; --",
        day=datetime.date(1999, 12, 31),
        clock=datetime.time(13, 14, 15, 161718),
        moment=moment,
        uid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        data={"a": [1, 2, {"b": None}]},
        blob=b"\x00\xff'\\",
        color=Color.RED,
        priority=Priority.HIGH,
    )
    if orm.features.max_exact_decimal_digits is not None:
        full.dec = Decimal("1234567.123456")
    empty = Everything()
    await Everything.objects.bulk_create([full, empty])
    got = await Everything.objects.get(pk=full.pk)
    for field in Everything._meta.concrete_fields:
        if not field.primary_key:
            name = field.attname
            assert getattr(got, name) == getattr(full, name), name
    got_empty = await Everything.objects.get(pk=empty.pk)
    assert all(
        getattr(got_empty, f.attname) is None
        for f in Everything._meta.concrete_fields
        if not f.primary_key
    )


async def test_every_field_type_round_trips_through_values_too(orm, monkeypatch):
    # PostgreSQL again, through the multi-row VALUES fallback instead of the arrays.
    monkeypatch.setattr(orm.features, "can_bulk_insert_arrays", False)
    await test_every_field_type_round_trips(orm)


async def test_null_json_and_datetimes_in_one_batch(ann):
    when = datetime.datetime(2024, 5, 1, 12, 30, 0, 5, tzinfo=UTC)
    posts = [
        Post(
            title="a'b",
            body="x\\y",
            author=ann,
            published_at=when,
            views=-3,
            rating=Decimal("9.99"),
        ),
        Post(title="", author=ann, published_at=None, views=0, rating=None),
    ]
    await Post.objects.bulk_create(posts)
    rows = await Post.objects.order_by("id").values_list(
        "title", "body", "author_id", "published_at", "views", "rating"
    )
    assert rows == [
        ("a'b", "x\\y", ann.pk, when, -3, Decimal("9.99")),
        ("", "", ann.pk, None, 0, None),
    ]


async def test_statements_stay_below_the_packet_limit(orm, ann, monkeypatch):
    # A driver that writes the values into the statement (aiomysql) must keep each INSERT
    # below the server's max_allowed_packet; here a small limit on every backend's VALUES path.
    monkeypatch.setattr(orm.features, "can_bulk_insert_arrays", False)
    monkeypatch.setattr(orm.features, "max_statement_bytes", 20_000)
    posts = [Post(title=f"p{i:03d}", body="é'" * 300, author=ann, views=i) for i in range(100)]
    async with capture_queries() as counter:
        await Post.objects.bulk_create(posts)
    inserts = [sql for sql in counter.queries if sql.startswith("INSERT")]
    # Each row is charged at most 4 bytes a character: 600 characters, about 2.5 KB a row.
    assert 10 <= len(inserts) <= 25
    rows = await Post.objects.order_by("views").values_list("title", "body")
    assert rows == [(p.title, p.body) for p in posts]


async def test_mysql_reads_max_allowed_packet_at_connect(orm):
    if orm.vendor != "mysql":
        pytest.skip("only the MySQL driver writes the values into the statement")
    packet = await orm.fetch_val("SELECT @@max_allowed_packet")
    assert orm.features.max_statement_bytes == packet


async def test_the_error_is_the_first_bad_objects_as_full_clean_raises_it(ann):
    posts = [Post(title=f"p{i}", author=ann) for i in range(5)]
    posts[4].title = "y" * 201  # a later object, bad in another field
    posts[2].views = 2**31  # the first bad object: out of the 32-bit range
    posts[1].published_at = datetime.datetime(2024, 1, 1, 12)  # noqa: DTZ001
    with pytest.raises(ValidationError) as info:
        await Post.objects.bulk_create(posts)
    # posts[1]'s naive datetime comes first: its error alone, as posts[1].full_clean() says.
    assert set(info.value.error_dict) == {"published_at"}
    assert "naive" in info.value.error_dict["published_at"][0]
    posts[1].published_at = None
    with pytest.raises(ValidationError) as info:
        await Post.objects.bulk_create(posts)
    assert set(info.value.error_dict) == {"views"}
    assert await Post.objects.count() == 0


@pytest.mark.requires("can_return_rows_from_bulk_insert")
async def test_concurrent_bulk_creates_each_get_their_own_keys(orm, ann):
    import asyncio

    async def create(tag: str) -> list[Post]:
        posts = [Post(title=f"{tag}{i}", author=ann, views=i) for i in range(300)]
        await Post.objects.bulk_create(posts)
        return posts

    groups = await asyncio.gather(*(create(tag) for tag in "abcd"))
    stored = dict(await Post.objects.values_list("id", "title"))
    assert len(stored) == 1200
    assert all(stored[p.pk] == p.title for posts in groups for p in posts)


async def test_mysql_counts_keys_only_under_a_consecutive_lock_mode(orm):
    if orm.vendor != "mysql":
        pytest.skip("auto-increment lock modes are MySQL/MariaDB's")
    [(mode, step)] = await orm.fetch_all(
        "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment"
    )
    expected = int(step) if int(mode) in (0, 1) else None
    assert orm.features.bulk_insert_id_step == expected


def _cuts_by_measure(
    flat: list[Any], width: int, size: int, max_bytes: int, ops: Any
) -> list[tuple[int, int]]:
    # The per-row measure _packet_batches() stands for (one max_literal_bytes() per value).
    budget = max_bytes * 9 // 10 - 1024
    cuts: list[tuple[int, int]] = []
    start, used = 0, 0
    rows = len(flat) // width
    for row in range(rows):
        values = flat[row * width : (row + 1) * width]
        cost = 4 * width + 4 + sum(map(ops.max_literal_bytes, values))
        if row > start and (row - start >= size or used + cost > budget):
            cuts.append((start, row))
            start, used = row, 0
        used += cost
    if rows > start:
        cuts.append((start, rows))
    return cuts


@pytest.mark.parametrize("max_bytes", [4_000, 40_000, 16 * 1024 * 1024])
@pytest.mark.parametrize("with_bytes", [False, True])
def test_packet_cuts_are_those_of_the_per_value_measure(max_bytes, with_bytes):
    from covet.db.backends.base import BaseFeatures, BaseOperations
    from covet.db.bulkwork import _packet_batches

    ops = BaseOperations(BaseFeatures())
    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    rows = [
        ["t" * (i % 50), i, None, when, "é'" * (i % 9), b"\x00" * i if with_bytes else Decimal(i)]
        for i in range(300)
    ]
    flat = [v for row in rows for v in row]
    for size in (7, 100, 1000):
        expected = _cuts_by_measure(flat, 6, size, max_bytes, ops)
        assert _packet_batches(flat, 6, size, max_bytes, ops) == expected


async def test_columns_already_clean_are_kept_and_others_cleaned(ann):
    # Whole columns of canonical values are recognised at once; one odd value sends its
    # column through clean() value by value, as full_clean() would.
    offset_zero = datetime.timezone(datetime.timedelta(0))
    posts = [
        Post(
            title=f"p{i}",
            author=ann,
            views=i,
            published_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        )
        for i in range(5)
    ]
    posts[3].published_at = datetime.datetime(2026, 1, 1, tzinfo=offset_zero)
    posts[4].views = "7"  # type: ignore[assignment]  # a string, as a form would send
    await Post.objects.bulk_create(posts)
    assert posts[0].published_at is not None
    assert posts[3].published_at.tzinfo is datetime.UTC  # cleaned like full_clean() does
    assert posts[0].published_at.tzinfo is datetime.UTC
    assert posts[4].views == 7
    with pytest.raises(ValidationError, match="title"):
        await Post.objects.bulk_create([Post(title="x" * 201, author=ann)])
