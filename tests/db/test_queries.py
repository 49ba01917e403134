"""QuerySet behaviour on every backend: lookups, Q/F, ordering, slicing, values, CRUD."""

from __future__ import annotations

import asyncio
import datetime
from typing import TYPE_CHECKING

import pytest

from covet.db import F, FieldError, MultipleObjectsReturned, ObjectDoesNotExist, Q, ValidationError
from covet.db.exceptions import NotSupportedError
from covet.db.testing import assert_num_queries, rollback_after
from tests.db.models import Author, Keyed, Post, Tag

if TYPE_CHECKING:
    from covet.db.database import Database

UTC = datetime.UTC


@pytest.fixture
async def data(orm: Database) -> dict[str, Author]:
    ann = await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    bob = await Author.objects.create(name="Bob", email="bob@example.com", age=None)
    eve = await Author.objects.create(name="Ève", email="eve@example.com", age=25)
    await Post.objects.create(title="Hello World", author=ann, views=10)
    await Post.objects.create(
        title="hello again",
        author=ann,
        views=5,
        published_at=datetime.datetime(2024, 1, 1, tzinfo=UTC),
    )
    await Post.objects.create(title="50% off_sale", author=bob, views=0)
    return {"ann": ann, "bob": bob, "eve": eve}


async def titles(qs) -> list[str]:
    return sorted(p.title for p in await qs)


async def test_create_and_get(data):
    post = await Post.objects.get(title="Hello World")
    assert post.author_id == data["ann"].pk
    assert post.views == 10
    assert post.body == ""
    assert post.published_at is None


async def test_exact_is_case_sensitive_and_iexact_is_not(data):
    assert await titles(Post.objects.filter(title="hello world")) == []
    assert await titles(Post.objects.filter(title__iexact="hello world")) == ["Hello World"]
    assert [a.name for a in await Author.objects.filter(name__iexact="ÈVE")] == ["Ève"]


async def test_contains_family(data):
    assert await titles(Post.objects.filter(title__contains="ello")) == [
        "Hello World",
        "hello again",
    ]
    assert await titles(Post.objects.filter(title__contains="Hello")) == ["Hello World"]
    assert await titles(Post.objects.filter(title__icontains="HELLO")) == [
        "Hello World",
        "hello again",
    ]
    assert await titles(Post.objects.filter(title__startswith="hello")) == ["hello again"]
    assert await titles(Post.objects.filter(title__istartswith="HELLO")) == [
        "Hello World",
        "hello again",
    ]
    assert await titles(Post.objects.filter(title__endswith="World")) == ["Hello World"]
    assert await titles(Post.objects.filter(title__iendswith="WORLD")) == ["Hello World"]


async def test_like_wildcards_are_escaped(data):
    assert await titles(Post.objects.filter(title__contains="%")) == ["50% off_sale"]
    assert await titles(Post.objects.filter(title__contains="_")) == ["50% off_sale"]
    assert await titles(Post.objects.filter(title__contains="0%_")) == []
    assert await titles(Post.objects.filter(title__startswith="5_")) == []


async def test_comparisons_in_range_isnull(data):
    assert await titles(Post.objects.filter(views__gt=5)) == ["Hello World"]
    assert await titles(Post.objects.filter(views__gte=5)) == ["Hello World", "hello again"]
    assert await titles(Post.objects.filter(views__lt=5)) == ["50% off_sale"]
    assert await titles(Post.objects.filter(views__lte=5)) == ["50% off_sale", "hello again"]
    assert await titles(Post.objects.filter(views__in=[0, 10])) == ["50% off_sale", "Hello World"]
    assert await titles(Post.objects.filter(views__in=[])) == []
    assert len(await Post.objects.exclude(views__in=[])) == 3
    assert await titles(Post.objects.filter(views__range=(1, 5))) == ["hello again"]
    assert await titles(Post.objects.filter(published_at__isnull=False)) == ["hello again"]
    assert len(await Post.objects.filter(published_at=None)) == 2
    assert await titles(Post.objects.exclude(published_at=None)) == ["hello again"]


async def test_exclude_keeps_null_rows(data):
    names = sorted(a.name for a in await Author.objects.exclude(age=30))
    assert names == ["Bob", "Ève"]
    names = sorted(a.name for a in await Author.objects.exclude(age__gt=26))
    assert names == ["Bob", "Ève"]


async def test_q_objects(data):
    qs = Post.objects.filter(Q(title="Hello World") | Q(views=0))
    assert await titles(qs) == ["50% off_sale", "Hello World"]
    qs = Post.objects.filter(~Q(views=0) & Q(title__icontains="hello"))
    assert await titles(qs) == ["Hello World", "hello again"]
    assert await Post.objects.filter(Q(title="a") | Q(title="b")).count() == 0


async def test_across_relations(data):
    assert await titles(Post.objects.filter(author__name="Ann")) == ["Hello World", "hello again"]
    assert await titles(Post.objects.filter(author__name__startswith="B")) == ["50% off_sale"]
    assert await titles(Post.objects.filter(author=data["bob"])) == ["50% off_sale"]
    assert await titles(Post.objects.filter(author__id=data["bob"].pk)) == ["50% off_sale"]
    assert await titles(Post.objects.filter(author__in=[data["bob"]])) == ["50% off_sale"]
    names = [a.name for a in await Author.objects.filter(posts__views__gte=5)]
    assert names == ["Ann"]  # no duplicates although Ann has two matching posts
    names = sorted(a.name for a in await Author.objects.exclude(posts__views__gte=5))
    assert names == ["Bob", "Ève"]
    names = sorted(a.name for a in await Author.objects.filter(posts__isnull=True))
    assert names == ["Ève"]
    names = sorted(a.name for a in await Author.objects.filter(posts__isnull=False))
    assert names == ["Ann", "Bob"]


async def test_subquery_in(data):
    authors = Author.objects.filter(name__in=["Bob", "Ève"])
    assert await titles(Post.objects.filter(author__in=authors)) == ["50% off_sale"]
    ids = Post.objects.filter(views__gt=1).values("author_id")
    assert [a.name for a in await Author.objects.filter(id__in=ids)] == ["Ann"]


async def test_f_expressions(data):
    await Post.objects.filter(views__gt=0).update(views=F("views") * 2 + 1)
    assert sorted(await Post.objects.values_list("views", flat=True)) == [0, 11, 21]
    await Post.objects.filter(author=data["bob"]).update(title=F("title") + "!")
    assert await titles(Post.objects.filter(author=data["bob"])) == ["50% off_sale!"]
    assert await Post.objects.filter(views__lt=F("views") + 1).count() == 3
    assert await Post.objects.filter(views__gt=F("views")).count() == 0
    assert await titles(Post.objects.exclude(views=F("views") - 0)) == []


async def test_ordering_and_slicing(data):
    ordered = await Post.objects.order_by("-views")
    assert [p.views for p in ordered] == [10, 5, 0]
    assert [p.views for p in await Post.objects.order_by("views")[1:]] == [5, 10]
    assert [p.views for p in await Post.objects.order_by("views")[:2]] == [0, 5]
    assert [p.views for p in await Post.objects.order_by("views")[1:2]] == [5]
    assert (await Post.objects.order_by("views")[2]).views == 10
    with pytest.raises(IndexError):
        await Post.objects.order_by("views")[7]
    with pytest.raises(ValueError, match="Negative indexing"):
        _ = Post.objects.all()[-1]
    by_author = await Post.objects.order_by("author__name", "-views")
    assert [p.title for p in by_author] == ["Hello World", "hello again", "50% off_sale"]
    assert len(await Post.objects.order_by("?")) == 3


async def test_first_last_exists_count(data):
    first = await Post.objects.order_by("views").first()
    last = await Post.objects.order_by("views").last()
    assert first is not None and first.views == 0
    assert last is not None and last.views == 10
    assert await Post.objects.filter(views=99).first() is None
    assert await Post.objects.filter(views=10).exists()
    assert not await Post.objects.filter(views=99).exists()
    assert await Post.objects.count() == 3
    assert await Post.objects.order_by("id")[1:].count() == 2
    assert await Post.objects.none().count() == 0
    assert await Post.objects.none() == []


async def test_values_and_values_list(data):
    rows = await Post.objects.order_by("views").values("title", "author__name")
    assert rows[0] == {"title": "50% off_sale", "author__name": "Bob"}
    tuples = await Post.objects.order_by("views").values_list("views", "author_id")
    assert tuples[0] == (0, data["bob"].pk)
    named = await Post.objects.order_by("views").values_list("views", named=True)
    assert named[2].views == 10
    every = await Author.objects.filter(name="Ann").values()
    assert every == [{"id": data["ann"].pk, "name": "Ann", "email": "ann@example.com", "age": 30}]
    distinct = await Post.objects.values_list("author_id", flat=True).distinct()
    assert sorted(distinct) == sorted([data["ann"].pk, data["bob"].pk])


async def test_only_and_defer(data):
    post = await Post.objects.only("title").get(title="Hello World")
    assert post.title == "Hello World"
    with pytest.raises(FieldError, match="deferred"):
        _ = post.body
    await post.refresh_from_db(fields=["body"])
    assert post.body == ""
    post = await Post.objects.defer("body").get(title="Hello World")
    assert post.views == 10
    with pytest.raises(FieldError, match="refresh_from_db"):
        _ = post.body


async def test_get_errors(data):
    with pytest.raises(Post.DoesNotExist, match="does not exist"):
        await Post.objects.get(title="nope")
    with pytest.raises(ObjectDoesNotExist):
        await Post.objects.get(title="nope")
    with pytest.raises(Post.MultipleObjectsReturned):
        await Post.objects.get(author=data["ann"])
    with pytest.raises(MultipleObjectsReturned):
        await Post.objects.get(author=data["ann"])
    assert not issubclass(Post.DoesNotExist, Author.DoesNotExist)


async def test_unknown_names_raise_field_error_listing_choices(data):
    with pytest.raises(FieldError, match=r"Choices are: .*title"):
        Post.objects.filter(titel="x")
    with pytest.raises(FieldError, match="Unsupported lookup 'foo'"):
        Post.objects.filter(title__foo="x")
    with pytest.raises(FieldError):
        Post.objects.order_by("nope")
    with pytest.raises(FieldError):
        Post.objects.values("nope")
    with pytest.raises(ValidationError):
        Post.objects.filter(views="many")


async def test_update_and_delete(data):
    assert await Post.objects.filter(author=data["ann"]).update(views=1) == 2
    assert await Post.objects.filter(views=1).count() == 2
    assert await Post.objects.filter(author__name="Bob").update(views=7) == 1
    assert await Post.objects.filter(author__name="Ann").delete() == 2
    assert await Post.objects.count() == 1


async def test_save_insert_update_refresh_delete(orm):
    author = Author(name="Zed", email="zed@example.com")
    assert author._state.adding
    await author.save()
    assert author.pk is not None
    author.name = "Zoe"
    await author.save()
    assert (await Author.objects.get(pk=author.pk)).name == "Zoe"
    await Author.objects.filter(pk=author.pk).update(age=41)
    await author.refresh_from_db()
    assert author.age == 41
    author.age = 42
    await author.save(update_fields=["age"])
    assert (await Author.objects.get(pk=author.pk)).age == 42
    same = await Author.objects.get(pk=author.pk)
    assert same == author and hash(same) == hash(author)
    await same.save()  # unchanged row: still an UPDATE, not a duplicate INSERT
    assert await Author.objects.count() == 1
    assert await author.delete() == 1
    assert author.pk is None
    assert await Author.objects.count() == 0


async def test_natural_primary_key(orm):
    await Keyed.objects.create(code="a1", label="one")
    row = await Keyed.objects.get(pk="a1")
    assert row.label == "one"
    row.label = "uno"
    await row.save()
    assert (await Keyed.objects.get(code="a1")).label == "uno"
    assert repr(row) == "<Keyed: code='a1'>"


async def test_get_or_create_and_update_or_create(orm):
    author, created = await Author.objects.get_or_create(
        email="g@example.com", defaults={"name": "G"}
    )
    assert created and author.name == "G"
    again, created = await Author.objects.get_or_create(
        email="g@example.com", defaults={"name": "X"}
    )
    assert not created and again == author
    updated, created = await Author.objects.update_or_create(
        email="g@example.com", defaults={"name": "H"}
    )
    assert not created and updated.name == "H"
    new, created = await Author.objects.update_or_create(
        email="n@example.com", defaults={"name": "N"}
    )
    assert created and new.name == "N"


async def test_get_or_create_is_race_safe(orm):
    results = await asyncio.gather(*(Tag.objects.get_or_create(name="race") for _ in range(5)))
    assert await Tag.objects.filter(name="race").count() == 1
    assert sum(created for _, created in results) == 1
    assert len({tag.pk for tag, _ in results}) == 1


async def test_bulk_create_update_in_bulk(orm, database):
    tags = await Tag.objects.bulk_create([Tag(name=f"t{i}") for i in range(25)], batch_size=10)
    assert await Tag.objects.count() == 25
    # Every backend here returns the keys (MariaDB through INSERT ... RETURNING); only
    # Oracle MySQL, which has no RETURNING, leaves them None.
    mysql_proper = database.vendor == "mysql" and not database.ops.is_mariadb
    assert database.features.can_return_rows_from_bulk_insert is not mysql_proper
    if database.features.can_return_rows_from_bulk_insert:
        assert all(t.pk is not None for t in tags)
        assert len({t.pk for t in tags}) == 25
        # Each object got its own row's key, not just some key.
        names = dict(await Tag.objects.values_list("id", "name"))
        assert {t.pk: t.name for t in tags} == names
    stored = await Tag.objects.order_by("id")
    for tag in stored:
        tag.name = tag.name.upper()
    assert await Tag.objects.bulk_update(stored, ["name"]) == 25
    assert await Tag.objects.filter(name="T3").exists()
    found = await Tag.objects.in_bulk([stored[0].pk, stored[1].pk])
    assert set(found) == {stored[0].pk, stored[1].pk}
    by_name = await Tag.objects.in_bulk(["T1", "T2"], field_name="name")
    assert by_name["T1"].name == "T1"
    with pytest.raises(FieldError, match="unique"):
        await Post.objects.in_bulk([1], field_name="title")


async def test_streaming_with_async_for(orm):
    await Tag.objects.bulk_create([Tag(name=f"s{i:03d}") for i in range(120)])
    seen = [tag.name async for tag in Tag.objects.order_by("name").iterator(chunk_size=50)]
    assert seen == [f"s{i:03d}" for i in range(120)]
    values = [row async for row in Tag.objects.order_by("name").values_list("name", flat=True)]
    assert values[:2] == ["s000", "s001"]


async def test_explain(data, database):
    plan = await Post.objects.filter(title="x").explain()
    assert isinstance(plan, str)
    # Every backend's plan names the table it reads.
    assert "posts" in plan
    if database.vendor == "sqlite":
        with pytest.raises(NotSupportedError, match="EXPLAIN ANALYZE"):
            await Post.objects.filter(views__gt=0).explain(analyze=True)
    else:
        analyzed = await Post.objects.filter(views__gt=0).explain(analyze=True)
        assert "posts" in analyzed
        if database.vendor == "postgres":
            assert "actual time" in analyzed
    # A plain EXPLAIN runs nothing: the rows are unchanged.
    assert await Post.objects.filter(title="x").count() == 0


async def test_querysets_are_immutable(data):
    base = Post.objects.filter(author=data["ann"])
    narrowed = base.filter(views__gt=5)
    assert await base.count() == 2
    assert await narrowed.count() == 1


async def test_select_for_update_runs_in_transaction(data):
    from covet.db import transaction

    async with transaction():
        locked = await Post.objects.select_for_update().filter(views=10)
        assert [p.title for p in locked] == ["Hello World"]


async def test_assert_num_queries(data):
    async with assert_num_queries(1):
        await Post.objects.filter(views=1)
    with pytest.raises(AssertionError, match="Expected 2 queries, but 1 ran"):
        async with assert_num_queries(2):
            await Post.objects.count()


async def test_rollback_after_discards_changes(orm):
    async with rollback_after():
        await Tag.objects.create(name="temporary")
        assert await Tag.objects.count() == 1
    assert await Tag.objects.count() == 0
