"""bulk_create() on every backend: batches, validation before any write, keys, hooks."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from covet.db import ValidationError
from covet.db.testing import assert_num_queries, capture_queries
from tests.db.models import Author, Post

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


@pytest.mark.requires("max_cacheable_statement_size", "can_return_rows_from_bulk_insert")
async def test_long_inserts_split_into_equal_cacheable_statements(orm, ann):
    limit = orm.features.max_cacheable_statement_size
    posts = [Post(title=f"p{i}", author=ann, views=i) for i in range(1500)]
    async with capture_queries() as counter:
        await Post.objects.bulk_create(posts)
    inserts = [sql for sql in counter.queries if sql.startswith("INSERT")]
    # Every statement stays short enough for the driver to keep it prepared, and the
    # rows are spread evenly, so every statement has the same shape.
    assert len(inserts) > 1
    assert all(len(sql) <= limit for sql in inserts)
    assert len(set(inserts)) == 1
    assert len({p.pk for p in posts}) == 1500
    assert await Post.objects.count() == 1500


@pytest.mark.requires("max_cacheable_statement_size")
async def test_explicit_batch_size_is_kept_even_past_the_cacheable_length(orm, ann):
    posts = [Post(title=f"p{i}", author=ann) for i in range(1500)]
    async with assert_num_queries(1):
        await Post.objects.bulk_create(posts, batch_size=1500)
    assert await Post.objects.count() == 1500
