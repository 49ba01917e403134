"""Date and time transforms as lookups (created__year__gte=2024) on every backend."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import F, FieldError, Q
from covet.db.compiler import compile_select
from tests.db.models import Everything, Post

if TYPE_CHECKING:
    from covet.db.database import Database

pytestmark = pytest.mark.usefixtures("orm")

UTC = datetime.UTC
# 2024-12-31 23:30 UTC is 2025-01-01 in Paris: every part below is taken in UTC.
ROWS: dict[str, tuple[datetime.datetime, datetime.date, datetime.time]] = {
    "a": (
        datetime.datetime(2023, 3, 5, 8, 15, 30, 500000, tzinfo=UTC),
        datetime.date(2023, 3, 5),
        datetime.time(8, 15, 30),
    ),
    "b": (
        datetime.datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
        datetime.date(2024, 1, 1),
        datetime.time(0, 0),
    ),
    "c": (
        datetime.datetime(2025, 1, 1, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
        datetime.date(2024, 12, 31),
        datetime.time(23, 30, 59, 999999),
    ),
    "d": (
        datetime.datetime(2024, 7, 14, 12, 45, 1, tzinfo=UTC),
        datetime.date(2024, 7, 14),
        datetime.time(12, 45, 1),
    ),
}


async def make() -> None:
    for name, (moment, day, clock) in ROWS.items():
        await Everything.objects.create(char=name, moment=moment, day=day, clock=clock)
    await Everything.objects.create(char="z")  # all NULL


async def names(*args: Any, **kwargs: Any) -> list[str]:
    rows = await Everything.objects.filter(*args, **kwargs).order_by("char")
    return [row.char or "" for row in rows]


async def test_year_on_datetime_and_date(database: Database) -> None:
    await make()
    assert await names(moment__year=2024) == ["b", "c", "d"]  # c is 2024-12-31 23:30 UTC
    assert await names(moment__year__gte=2024) == ["b", "c", "d"]
    assert await names(moment__year__gt=2023) == ["b", "c", "d"]
    assert await names(moment__year__lt=2024) == ["a"]
    assert await names(moment__year__lte=2023) == ["a"]
    assert await names(day__year=2024) == ["b", "c", "d"]
    assert await names(day__year__in=[2023, 2025]) == ["a"]
    assert await names(moment__year__range=(2023, 2023)) == ["a"]


async def test_year_is_a_range_on_the_column(database: Database) -> None:
    # The year compares the column with the year's bounds (an index serves it).
    compiled = compile_select(
        Everything.objects.filter(moment__year=2024).query, database.ops, database.features
    )
    assert "BETWEEN" in compiled.sql
    assert database.ops.quote_name("moment") in compiled.sql
    assert "year" not in compiled.sql.lower().replace('"moment"', "")


async def test_date_parts(database: Database) -> None:
    await make()
    assert await names(moment__month=1) == ["b"]
    assert await names(moment__month__in=[3, 7]) == ["a", "d"]
    assert await names(moment__day=31) == ["c"]
    assert await names(moment__quarter=3) == ["d"]
    assert await names(moment__quarter__lte=1) == ["a", "b"]
    # 2024-07-14 is a Sunday: week_day 1 (Sunday = 1), iso_week_day 7 (Monday = 1).
    assert await names(moment__week_day=1) == ["a", "d"]
    assert await names(moment__iso_week_day=7) == ["a", "d"]
    assert await names(day__week_day=3) == ["c"]  # 2024-12-31 is a Tuesday
    # ISO weeks: 2024-12-31 is in week 1 of 2025; 2024-01-01 in week 1 too.
    assert await names(moment__week=1) == ["b", "c"]
    assert await names(day__week=28) == ["d"]


async def test_time_parts(database: Database) -> None:
    await make()
    assert await names(moment__hour=23) == ["c"]
    assert await names(moment__hour__gte=8) == ["a", "c", "d"]
    assert await names(moment__minute=45) == ["d"]
    assert await names(moment__second=30) == ["a"]  # whole seconds
    assert await names(clock__hour=23) == ["c"]
    assert await names(clock__second=59) == ["c"]
    assert await names(clock__minute__range=(15, 45)) == ["a", "c", "d"]


async def test_date_and_time_of_a_datetime(database: Database) -> None:
    await make()
    assert await names(moment__date=datetime.date(2024, 12, 31)) == ["c"]
    assert await names(moment__date__gte=datetime.date(2024, 7, 14)) == ["c", "d"]
    assert await names(moment__date__in=[datetime.date(2023, 3, 5), datetime.date(2024, 1, 1)]) == [
        "a",
        "b",
    ]
    assert await names(moment__time=datetime.time(23, 30)) == ["c"]
    assert await names(moment__time__lt=datetime.time(8, 30)) == ["a", "b"]
    assert await names(moment__date=F("day")) == ["a", "b", "c", "d"]


async def test_exclude_and_null(database: Database) -> None:
    await make()
    rows = await Everything.objects.exclude(moment__year=2024).order_by("char")
    assert [r.char for r in rows] == ["a", "z"]  # NULL is not 2024, as with exclude(moment=...)
    rows = await Everything.objects.exclude(moment__month=1).order_by("char")
    assert [r.char for r in rows] == ["a", "c", "d", "z"]
    assert await names(moment__hour__isnull=True) == ["z"]
    assert await names(Q(moment__year=2023) | Q(moment__hour=23)) == ["a", "c"]


async def test_across_relations(database: Database) -> None:
    from tests.db.models import Author

    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    bob = await Author.objects.create(name="Bob", email="bob@example.com")
    await Post.objects.create(
        title="p1", author=ann, published_at=datetime.datetime(2024, 5, 1, tzinfo=UTC)
    )
    await Post.objects.create(
        title="p2", author=bob, published_at=datetime.datetime(2023, 5, 1, 22, tzinfo=UTC)
    )
    assert [a.name for a in await Author.objects.filter(posts__published_at__year=2024)] == ["Ann"]
    assert [a.name for a in await Author.objects.filter(posts__published_at__hour=22)] == ["Bob"]
    posts = await Post.objects.filter(author__name="Bob", published_at__month=5)
    assert [p.title for p in posts] == ["p2"]


async def test_errors_name_the_choices(database: Database) -> None:
    with pytest.raises(FieldError, match="one of: hour, minute, second"):
        await names(clock__year=2024)
    with pytest.raises(FieldError, match="year, quarter, month"):
        await names(day__hour=1)
    with pytest.raises(FieldError, match="after 'year'"):
        await names(moment__year__icontains="2")
    with pytest.raises(FieldError, match="out of range"):
        await names(moment__year=10000)
