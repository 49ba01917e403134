"""Aggregates and annotations on every backend."""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING

import pytest

from covet.db import Avg, Count, DatabaseError, F, FieldError, Max, Min, Q, Sum, Value
from tests.db.models import Author, Post, Tag

if TYPE_CHECKING:
    from covet.db.database import Database


@pytest.fixture
async def stats(orm: Database) -> None:
    ann = await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    bob = await Author.objects.create(name="Bob", email="bob@example.com", age=40)
    await Author.objects.create(name="Cid", email="cid@example.com", age=None)
    red = await Tag.objects.create(name="red")
    p1 = await Post.objects.create(title="a", author=ann, views=10, rating=decimal.Decimal("4.50"))
    await Post.objects.create(title="b", author=ann, views=20, rating=decimal.Decimal("3.25"))
    await Post.objects.create(title="c", author=bob, views=5)
    await p1.tags.add(red)


async def test_aggregate_functions(stats):
    result = await Post.objects.aggregate(
        total=Sum("views"), avg=Avg("views"), low=Min("views"), high=Max("views"), n=Count("id")
    )
    # MySQL computes AVG of integers as DECIMAL with 4 places (div_precision_increment).
    assert result == {
        "total": 35,
        "avg": pytest.approx(35 / 3, rel=1e-4),
        "low": 5,
        "high": 20,
        "n": 3,
    }
    assert isinstance(result["total"], int)


async def test_decimal_aggregates(stats):
    result = await Post.objects.aggregate(total=Sum("rating"), avg=Avg("rating"), top=Max("rating"))
    assert result["total"] == decimal.Decimal("7.75")
    assert isinstance(result["total"], decimal.Decimal)
    assert result["avg"] == decimal.Decimal("3.88") or result["avg"] == decimal.Decimal("3.87")
    assert result["top"] == decimal.Decimal("4.50")


async def test_aggregate_on_empty_set(stats):
    result = await Post.objects.filter(views__gt=1000).aggregate(Sum("views"), Count("id"))
    assert result == {"views__sum": None, "id__count": 0}
    assert await Post.objects.none().aggregate(n=Count("id")) == {"n": 0}


async def test_count_over_reverse_fk_groups_by_model(stats):
    rows = await Author.objects.annotate(n=Count("posts")).order_by("name").values("name", "n")
    assert rows == [{"name": "Ann", "n": 2}, {"name": "Bob", "n": 1}, {"name": "Cid", "n": 0}]
    authors = await Author.objects.annotate(n=Count("posts"), top=Max("posts__views")).order_by(
        "name"
    )
    assert [(a.name, a.n, a.top) for a in authors] == [
        ("Ann", 2, 20),
        ("Bob", 1, 5),
        ("Cid", 0, None),
    ]


async def test_filter_on_annotation_is_having(stats):
    busy = await Author.objects.annotate(n=Count("posts")).filter(n__gte=2)
    assert [a.name for a in busy] == ["Ann"]
    none = (
        await Author.objects.annotate(n=Count("posts")).filter(n=0).values_list("name", flat=True)
    )
    assert none == ["Cid"]
    assert await Author.objects.annotate(n=Count("posts")).filter(n__gte=1).count() == 2


async def test_order_by_annotation(stats):
    names = (
        await Author.objects.annotate(n=Count("posts"))
        .order_by("-n", "name")
        .values_list("name", flat=True)
    )
    assert names == ["Ann", "Bob", "Cid"]


async def test_distinct_and_filtered_aggregates(stats):
    rows = (
        await Author.objects.annotate(
            big=Count("posts", filter=Q(posts__views__gte=10)),
            tags=Count("posts__tags", distinct=True),
        )
        .order_by("name")
        .values("name", "big", "tags")
    )
    assert rows == [
        {"name": "Ann", "big": 2, "tags": 1},
        {"name": "Bob", "big": 0, "tags": 0},
        {"name": "Cid", "big": 0, "tags": 0},
    ]


async def test_values_then_annotate_groups_by_values(stats):
    rows = (
        await Post.objects.values("author__name")
        .annotate(total=Sum("views"))
        .order_by("author__name")
    )
    assert rows == [{"author__name": "Ann", "total": 30}, {"author__name": "Bob", "total": 5}]


async def test_expression_annotations(stats):
    posts = await Post.objects.annotate(double=F("views") * 2, label=F("title") + Value("!"))
    posts.sort(key=lambda p: p.title)
    assert [(p.double, p.label) for p in posts] == [(20, "a!"), (40, "b!"), (10, "c!")]
    rows = await Post.objects.filter(views__gt=5).values(plus=F("views") + 1)
    assert sorted(r["plus"] for r in rows) == [11, 21]


async def test_aggregate_errors(stats):
    with pytest.raises(FieldError, match="clashes"):
        Author.objects.annotate(name=Count("posts"))
    with pytest.raises(FieldError):
        Author.objects.annotate(n=Count("nope"))
    with pytest.raises(DatabaseError, match="sliced"):
        await Post.objects.all()[:1].aggregate(n=Count("id"))
