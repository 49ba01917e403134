"""Upserts on every backend: bulk_create() conflicts, get/update_or_create races, bulk_update."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import FieldError, IntegrityError, ValidationError, transaction, upserts
from covet.db.exceptions import NotSupportedError
from covet.db.queryset import QuerySet
from covet.db.testing import assert_num_queries, capture_queries
from tests.db.models import Author, Color, Everything, Group, Keyed, Membership, Post, Priority, Tag

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database

UTC = datetime.UTC


# -- bulk_create(update_conflicts=True) ----------------------------------------------------------


async def test_update_conflicts_updates_existing_rows_and_inserts_new_ones(orm: Database):
    ann = await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    objs = [
        Author(name="Ann B.", email="ann@example.com", age=31),
        Author(name="Bob", email="bob@example.com", age=40),
    ]
    result = await Author.objects.bulk_create(
        objs, update_conflicts=True, unique_fields=["email"], update_fields=["name", "age"]
    )
    assert all(r is o for r, o in zip(result, objs, strict=True))
    rows = await Author.objects.order_by("email").values_list("name", "email", "age")
    assert rows == [("Ann B.", "ann@example.com", 31), ("Bob", "bob@example.com", 40)]
    if orm.features.can_return_rows_from_bulk_insert:
        # Every row reports its key: the existing row's for the updated object.
        assert objs[0].pk == ann.pk
        assert objs[1].pk == (await Author.objects.get(email="bob@example.com")).pk
    assert all(not o._state.adding for o in objs)


async def test_update_conflicts_writes_only_update_fields(orm):
    await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    await Author.objects.bulk_create(
        [Author(name="Changed", email="ann@example.com", age=99)],
        update_conflicts=True,
        unique_fields=["email"],
        update_fields=["age"],
    )
    assert await Author.objects.values_list("name", "age").get() == ("Ann", 99)


async def test_update_conflicts_in_several_batches(orm):
    for i in range(0, 10, 2):
        await Author.objects.create(name="old", email=f"a{i}@example.com")
    objs = [Author(name=f"new{i}", email=f"a{i}@example.com") for i in range(10)]
    await Author.objects.bulk_create(
        objs, batch_size=3, update_conflicts=True, unique_fields=["email"], update_fields=["name"]
    )
    rows = await Author.objects.order_by("name").values_list("name", flat=True)
    assert rows == sorted(f"new{i}" for i in range(10))


async def test_update_conflicts_on_a_unique_together_set(orm):
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    bob = await Author.objects.create(name="Bob", email="bob@example.com")
    group = await Group.objects.create(name="g")
    await Membership.objects.create(group=group, author=ann, role="member")
    await Membership.objects.bulk_create(
        [
            Membership(group=group, author=ann, role="owner"),
            Membership(group=group, author=bob, role="member"),
        ],
        update_conflicts=True,
        unique_fields=["group", "author"],
        update_fields=["role"],
    )
    rows = await Membership.objects.order_by("author_id").values_list("author_id", "role")
    assert rows == [(ann.pk, "owner"), (bob.pk, "member")]


async def test_update_conflicts_on_the_primary_key(orm):
    await Keyed.objects.create(code="a", label="old")
    await Keyed.objects.bulk_create(
        [Keyed(code="a", label="new"), Keyed(code="b", label="b")],
        update_conflicts=True,
        unique_fields=["pk"],
        update_fields=["label"],
    )
    assert await Keyed.objects.order_by("code").values_list("code", "label") == [
        ("a", "new"),
        ("b", "b"),
    ]


async def test_update_conflicts_refuses_duplicate_objects_before_writing(orm):
    objs = [Author(name="1", email="x@example.com"), Author(name="2", email="x@example.com")]
    with pytest.raises(ValueError, match=r"two Author objects with email='x@example.com'"):
        await Author.objects.bulk_create(
            objs, update_conflicts=True, unique_fields=["email"], update_fields=["name"]
        )
    assert await Author.objects.count() == 0


async def test_update_conflicts_with_other_unique_keys_are_refused_where_untargeted(orm):
    existing = await Author.objects.create(name="Ann", email="ann@example.com")
    # The object's explicit key collides with another row's key, its email with nothing:
    # ON CONFLICT (email) lets the key conflict fail; ON DUPLICATE KEY UPDATE would
    # silently update the row with that key, so MySQL/MariaDB refuse the call instead.
    clash = Author(id=existing.pk, name="Imposter", email="new@example.com")
    call = Author.objects.bulk_create(
        [clash], update_conflicts=True, unique_fields=["email"], update_fields=["name"]
    )
    expected = (
        IntegrityError if orm.features.supports_update_conflicts_with_target else NotSupportedError
    )
    with pytest.raises(expected):
        await call
    assert await Author.objects.values_list("name", "email").get() == ("Ann", "ann@example.com")


# -- bulk_create(ignore_conflicts=True) ----------------------------------------------------------


@pytest.mark.parametrize("unique_fields", [(), ("name",)])
async def test_ignore_conflicts_skips_rows_that_exist(orm, unique_fields):
    kept = await Tag.objects.create(name="a")
    objs = [Tag(name="a"), Tag(name="b"), Tag(name="b"), Tag(name="c")]
    await Tag.objects.bulk_create(objs, ignore_conflicts=True, unique_fields=unique_fields)
    assert await Tag.objects.order_by("name").values_list("name", flat=True) == ["a", "b", "c"]
    assert (await Tag.objects.get(name="a")).pk == kept.pk
    # A skipped row reports no key on PostgreSQL/SQLite: no keys are set on any backend.
    assert [o.pk for o in objs] == [None] * 4


async def test_ignore_conflicts_does_not_hide_other_errors(orm):
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    orphan = Post(title="orphan", author_id=ann.pk + 1000)
    # INSERT IGNORE would turn the foreign key error into a warning and drop the row.
    with pytest.raises(IntegrityError):
        await Post.objects.bulk_create(
            [Post(title="ok", author=ann), orphan], ignore_conflicts=True
        )
    assert await Post.objects.count() == 0


async def test_ignore_conflicts_on_a_named_target_still_fails_on_another(orm):
    await Author.objects.create(name="Ann", email="ann@example.com")
    existing = await Author.objects.get()
    clash = Author(id=existing.pk, name="Other", email="other@example.com")
    call = Author.objects.bulk_create([clash], ignore_conflicts=True, unique_fields=["email"])
    expected = (
        IntegrityError if orm.features.supports_update_conflicts_with_target else NotSupportedError
    )
    with pytest.raises(expected):
        await call


# -- option checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"ignore_conflicts": True, "update_conflicts": True}, ValueError, "not both"),
        ({"update_conflicts": True, "update_fields": ["name"]}, ValueError, "needs unique_fields"),
        ({"update_conflicts": True, "unique_fields": ["email"]}, ValueError, "needs update_fields"),
        ({"unique_fields": ["email"]}, ValueError, "only applies with"),
        ({"update_fields": ["name"]}, ValueError, "only applies with update_conflicts"),
        (
            {"update_conflicts": True, "unique_fields": ["name"], "update_fields": ["age"]},
            ValueError,
            r"no unique constraint on exactly these fields.*'email'",
        ),
        (
            {"update_conflicts": True, "unique_fields": ["email"], "update_fields": ["id"]},
            ValueError,
            "is the primary key",
        ),
        (
            {"update_conflicts": True, "unique_fields": "email", "update_fields": ["name"]},
            ValueError,
            "not a string",
        ),
        (
            {"update_conflicts": True, "unique_fields": ["mail"], "update_fields": ["name"]},
            FieldError,
            "has no field 'mail'",
        ),
        (
            {"update_conflicts": True, "unique_fields": ["email", "name"], "update_fields": []},
            ValueError,
            "no unique constraint",
        ),
    ],
)
async def test_conflict_options_are_checked_before_any_query(orm, options, error, message):
    async with assert_num_queries(0):
        with pytest.raises(error, match=message):
            await Author.objects.bulk_create([Author(name="a", email="a@example.com")], **options)


async def test_update_fields_cannot_name_a_many_to_many(orm):
    with pytest.raises(ValueError, match="many-to-many"):
        await Post.objects.bulk_create(
            [], update_conflicts=True, unique_fields=["id"], update_fields=["tags"]
        )


# -- get_or_create() / update_or_create() races ----------------------------------------------------

RACERS = 8


async def test_get_or_create_race_creates_exactly_one_row(orm, make_database, monkeypatch):
    db = await make_database(min_size=RACERS, max_size=RACERS)
    lost: list[object] = []
    locked_get = upserts._locked_get

    async def counting(qs, kwargs):
        lost.append(kwargs)
        return await locked_get(qs, kwargs)

    monkeypatch.setattr(upserts, "_locked_get", counting)
    # Every task's first read finishes (finding nothing) before any task inserts, so the
    # race happens on every run, however the event loop happens to schedule the tasks.
    barrier = asyncio.Barrier(RACERS)
    first_read_done: set[object] = set()
    real_get = QuerySet.get

    async def get_then_wait(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        try:
            return await real_get(self, *args, **kwargs)
        finally:
            if task not in first_read_done:
                first_read_done.add(task)
                await barrier.wait()

    monkeypatch.setattr(QuerySet, "get", get_then_wait)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(Tag.objects.using(db.alias).get_or_create(name="race") for _ in range(RACERS))
        ),
        60,
    )
    assert sum(created for _, created in results) == 1
    assert len({tag.pk for tag, _ in results}) == 1
    assert await Tag.objects.filter(name="race").count() == 1
    # The race really happened: the other tasks found no row, lost the INSERT, read the winner's.
    assert len(lost) == RACERS - 1


async def test_get_or_create_race_inside_outer_transactions(orm, make_database):
    db = await make_database(min_size=RACERS, max_size=RACERS)

    async def racer(i: int) -> tuple[Tag, bool]:
        async with transaction(db.alias):
            # A read first: on MySQL it fixes the transaction's REPEATABLE READ snapshot,
            # which must not hide the winner's row from the loser.
            await Tag.objects.using(db.alias).filter(name=f"other{i}").exists()
            found = await Tag.objects.using(db.alias).get_or_create(name="race")
            # The outer transaction is still usable after losing the race. (Another table:
            # on MySQL an insert next to the key the loser waits on could deadlock, which
            # InnoDB answers by rolling back a whole transaction; see docs/orm/bulk.md.)
            await Author.objects.using(db.alias).create(name="after", email=f"after{i}@x.org")
            return found

    results = await asyncio.gather(*(racer(i) for i in range(2)))
    assert sum(created for _, created in results) == 1
    assert len({tag.pk for tag, _ in results}) == 1
    assert await Tag.objects.filter(name="race").count() == 1
    assert await Author.objects.filter(name="after").count() == 2


async def test_update_or_create_race_creates_one_and_updates_it(orm, make_database, monkeypatch):
    db = await make_database(min_size=RACERS, max_size=RACERS)
    lost: list[object] = []
    create = QuerySet.create

    async def counting(self, **kwargs):
        try:
            return await create(self, **kwargs)
        except IntegrityError:
            lost.append(kwargs)
            raise

    monkeypatch.setattr(QuerySet, "create", counting)
    # Every task's locked read finishes (finding nothing, its transaction closed) before any
    # task opens the INSERT's transaction, its second, so the race happens on every run
    # whatever the event loop's schedule (and SQLite's writer lock is not held meanwhile).
    barrier = asyncio.Barrier(RACERS)
    opened: dict[object, int] = {}
    real_transaction = transaction  # what covet.db.upserts calls

    @contextlib.asynccontextmanager
    async def second_waits(*args: Any, **kwargs: Any) -> AsyncIterator[None]:
        task = asyncio.current_task()
        opened[task] = opened.get(task, 0) + 1
        if opened[task] == 2:
            await barrier.wait()
        async with real_transaction(*args, **kwargs):
            yield

    monkeypatch.setattr(upserts, "transaction", second_waits)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                Author.objects.using(db.alias).update_or_create(
                    email="race@example.com", defaults={"name": f"racer {i}", "age": i}
                )
                for i in range(RACERS)
            )
        ),
        60,
    )
    assert sum(created for _, created in results) == 1
    assert len({a.pk for a, _ in results}) == 1
    row = await Author.objects.get(email="race@example.com")
    # The last writer wins and its name and age arrive together.
    assert row.name == f"racer {row.age}"
    # The other tasks lost the INSERT and then updated the winner's row instead of failing.
    assert len(lost) == RACERS - 1


async def test_a_lost_insert_inside_a_transaction_rolls_back_only_its_savepoint(orm):
    await Author.objects.create(name="Ann", email="ann@example.com")
    async with transaction():
        with pytest.raises(IntegrityError):
            # No row named Zed, and creating one collides on the email: a real error.
            await Author.objects.get_or_create(name="Zed", defaults={"email": "ann@example.com"})
        await Author.objects.create(name="Bob", email="bob@example.com")
    assert await Author.objects.order_by("name").values_list("name", flat=True) == ["Ann", "Bob"]


async def test_update_or_create_create_defaults_and_callables(orm):
    obj, created = await Author.objects.update_or_create(
        email="a@example.com", defaults={"name": "updated"}, create_defaults={"name": "created"}
    )
    assert (created, obj.name) == (True, "created")
    obj, created = await Author.objects.update_or_create(
        email="a@example.com",
        defaults={"name": lambda: "called"},
        create_defaults={"name": "created"},
    )
    assert (created, obj.name) == (False, "called")
    assert (await Author.objects.get(email="a@example.com")).name == "called"
    tag, created = await Tag.objects.get_or_create(name="t", defaults={})
    assert created
    again, created = await Tag.objects.get_or_create(defaults={"name": lambda: "x"}, name="t")
    assert (again.pk, created) == (tag.pk, False)


async def test_update_or_create_writes_only_the_defaults(orm):
    ann = await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    with capture_queries() as queries:
        await Author.objects.update_or_create(email="ann@example.com", defaults={"name": "A"})
    updates = [q.sql for q in queries if q.sql.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1
    assert "age" not in updates[0]
    fresh = await Author.objects.get(pk=ann.pk)
    assert (fresh.name, fresh.age) == ("A", 30)


# -- bulk_update() ---------------------------------------------------------------------------------


@pytest.fixture
async def ann(orm: Database) -> Author:
    return await Author.objects.create(name="Ann", email="ann@example.com")


async def test_bulk_update_sends_one_statement_per_batch(ann):
    posts = await Post.objects.bulk_create([Post(title=f"p{i}", author=ann) for i in range(10)])
    posts = await Post.objects.order_by("id")
    for i, post in enumerate(posts):
        post.views = i * 10
        post.title = f"t{i}"
    async with assert_num_queries(1):
        assert await Post.objects.bulk_update(posts, ["views", "title"]) == 10
    async with assert_num_queries(4):
        assert await Post.objects.bulk_update(posts, ["views"], batch_size=3) == 10
    rows = await Post.objects.order_by("id").values_list("title", "views")
    assert rows == [(f"t{i}", i * 10) for i in range(10)]


async def test_bulk_update_first_duplicate_wins_and_counts_once(ann):
    post = await Post.objects.create(title="a", author=ann)
    first = await Post.objects.get(pk=post.pk)
    second = await Post.objects.get(pk=post.pk)
    first.views, second.views = 1, 2
    assert await Post.objects.bulk_update([first, second], ["views"]) == 1
    assert (await Post.objects.get(pk=post.pk)).views == 1


@pytest.mark.parametrize("arrays", [True, False], ids=["arrays", "case"])
async def test_bulk_update_every_field_type_and_nulls(orm, monkeypatch, arrays):
    if not arrays:
        # PostgreSQL joins on unnest() arrays; its CASE form (typed by casts) is the
        # fallback for types without an array form: run it on every type too.
        monkeypatch.setattr(orm.features, "can_bulk_update_arrays", False)
    rows = [Everything(), Everything()]
    await Everything.objects.bulk_create(rows)
    rows = await Everything.objects.order_by("id")
    full = {
        "small": -5,
        "integer": 2**31 - 1,
        "big": 2**62,
        "flt": 1.5,
        "dec": Decimal("12345.678901"),
        "flag": True,
        "char": "héllo",
        "text": "x" * 1000,
        "day": datetime.date(2024, 2, 29),
        "clock": datetime.time(23, 59, 58, 123000),
        "moment": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "uid": uuid.UUID(int=7),
        "data": {"a": [1, 2, {"b": None}]},
        "blob": b"\x00\xff",
        "color": Color.GREEN,
        "priority": Priority.HIGH,
    }
    for name, value in full.items():
        setattr(rows[0], name, value)
        setattr(rows[1], name, None)
    await Everything.objects.bulk_update(rows, list(full))
    first = await Everything.objects.get(pk=rows[0].pk)
    assert {name: getattr(first, name) for name in full} == full
    second = await Everything.objects.get(pk=rows[1].pk)
    assert all(getattr(second, name) is None for name in full)


async def test_bulk_update_checks_before_writing(ann):
    posts = await Post.objects.bulk_create([Post(title=f"p{i}", author=ann) for i in range(3)])
    posts = await Post.objects.order_by("id")
    posts[0].title = "fine"
    posts[2].title = "x" * 201
    with pytest.raises(ValidationError):
        await Post.objects.bulk_update(posts, ["title"])
    assert await Post.objects.filter(title="fine").count() == 0
    with pytest.raises(FieldError):
        await Post.objects.bulk_update(posts, ["id"])
    with pytest.raises(TypeError, match="saved Post"):
        await Post.objects.bulk_update([Post(title="new", author=ann)], ["title"])
    with pytest.raises(TypeError, match="not 'title'"):
        await Post.objects.bulk_update(posts, "title")
    async with assert_num_queries(0):
        assert await Post.objects.bulk_update([], ["title"]) == 0


# -- in_bulk() -------------------------------------------------------------------------------------


async def test_in_bulk_by_key_and_by_unique_field(orm):
    tags = [await Tag.objects.create(name=f"t{i}") for i in range(4)]
    found = await Tag.objects.in_bulk([tags[0].pk, tags[2].pk, tags[0].pk, -1])
    assert set(found) == {tags[0].pk, tags[2].pk}
    assert found[tags[2].pk].name == "t2"
    by_name = await Tag.objects.in_bulk(["t1", "t3", "nope"], field_name="name")
    assert {k: v.pk for k, v in by_name.items()} == {"t1": tags[1].pk, "t3": tags[3].pk}
    assert set(await Tag.objects.filter(name__in=["t0", "t1"]).in_bulk()) == {
        tags[0].pk,
        tags[1].pk,
    }
    async with assert_num_queries(0):
        assert await Tag.objects.in_bulk([]) == {}


async def test_in_bulk_refuses_non_unique_fields_and_slices(orm):
    with pytest.raises(FieldError, match="must be a unique field"):
        await Author.objects.in_bulk(["Ann"], field_name="name")
    with pytest.raises(TypeError, match="sliced"):
        await Tag.objects.all()[:2].in_bulk([1])


async def test_in_bulk_splits_long_lists_below_the_parameter_limit(orm, monkeypatch):
    tags = await Tag.objects.bulk_create([Tag(name=f"t{i}") for i in range(10)])
    names = [t.name for t in tags]
    monkeypatch.setattr(orm.features, "max_query_params", 8)  # batches of 4
    async with assert_num_queries(3):
        found = await Tag.objects.in_bulk(names, field_name="name")
    assert sorted(found) == sorted(names)
