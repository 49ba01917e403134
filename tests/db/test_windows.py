"""Window functions (Window, RowNumber, Rank, Lag...) on every backend."""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Avg, Count, F, FieldError, Sum
from covet.db.exceptions import NotSupportedError
from covet.db.functions import (
    CumeDist,
    DenseRank,
    FirstValue,
    Lag,
    LastValue,
    Lead,
    Lower,
    NthValue,
    Ntile,
    PercentRank,
    Rank,
    RowNumber,
    RowRange,
    ValueRange,
    Window,
)
from tests.db.models import Author, Post

if TYPE_CHECKING:
    from covet.db.database import Database


@pytest.fixture
async def scores(orm: Database) -> None:
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    bob = await Author.objects.create(name="Bob", email="bob@example.com")
    rows = [("a1", ann, 10), ("a2", ann, 30), ("a3", ann, 30), ("a4", ann, 5), ("b1", bob, 7),
            ("b2", bob, 2)]  # fmt: skip
    for title, author, views in rows:
        await Post.objects.create(title=title, author=author, views=views)


def _by_title(rows: list[dict[str, object]]) -> dict[str, tuple[object, ...]]:
    return {str(row.pop("title")): tuple(row.values()) for row in rows}


async def test_the_backends_support_windows(database):
    assert database.features.supports_over_clause


async def test_ranking_functions_over_partitions(scores):
    by_views: dict[str, Any] = {"partition_by": "author", "order_by": "-views"}
    rows = await Post.objects.annotate(
        rn=Window(RowNumber(), partition_by="author", order_by=["-views", "title"]),
        rank=Window(Rank(), **by_views),
        dense=Window(DenseRank(), **by_views),
        half=Window(Ntile(2), partition_by="author", order_by=["-views", "title"]),
    ).values("title", "rn", "rank", "dense", "half")
    assert _by_title(rows) == {
        "a2": (1, 1, 1, 1),
        "a3": (2, 1, 1, 1),
        "a1": (3, 3, 2, 2),
        "a4": (4, 4, 3, 2),
        "b1": (1, 1, 1, 1),
        "b2": (2, 2, 2, 2),
    }
    assert all(type(v) is int for row in rows for v in row.values())


async def test_relative_ranks_are_floats(scores):
    rows = (
        await Post.objects.filter(author__name="Ann")
        .annotate(
            pr=Window(PercentRank(), order_by="views"), cd=Window(CumeDist(), order_by="views")
        )
        .values("title", "pr", "cd")
    )
    assert _by_title(rows) == {
        "a4": (0.0, 0.25),
        "a1": (pytest.approx(1 / 3), 0.5),
        "a2": (pytest.approx(2 / 3), 1.0),
        "a3": (pytest.approx(2 / 3), 1.0),
    }


async def test_lag_and_lead(scores):
    rows = (
        await Post.objects.filter(author__name="Ann")
        .annotate(
            prev=Window(Lag("views"), order_by="title"),
            next2=Window(Lead("views", offset=2), order_by="title"),
            prev_title=Window(Lag("title"), order_by="title"),
        )
        .values("title", "prev", "next2", "prev_title")
    )
    assert _by_title(rows) == {
        "a1": (None, 30, None),
        "a2": (10, 5, "a1"),
        "a3": (30, None, "a2"),
        "a4": (30, None, "a3"),
    }


async def test_lag_default_is_bound_or_refused_with_the_backend_named(scores):
    qs = Post.objects.filter(author__name="Bob").annotate(
        prev=Window(Lag("views", default=-1), order_by="title")
    )
    try:
        rows = await qs.values("title", "prev")
    except NotSupportedError as exc:  # MariaDB's LAG has no default argument
        assert "MariaDB" in str(exc)
    else:
        assert _by_title(rows) == {"b1": (-1,), "b2": (7,)}


async def test_first_last_and_nth_value_with_frames(scores):
    whole = RowRange(start=None, end=None)
    rows = await Post.objects.annotate(
        first=Window(FirstValue("title"), partition_by="author", order_by="title"),
        last=Window(LastValue("title"), partition_by="author", order_by="title", frame=whole),
        second=Window(NthValue("views", 2), partition_by="author", order_by="title", frame=whole),
    ).values("title", "first", "last", "second")
    assert _by_title(rows) == {
        "a1": ("a1", "a4", 30),
        "a2": ("a1", "a4", 30),
        "a3": ("a1", "a4", 30),
        "a4": ("a1", "a4", 30),
        "b1": ("b1", "b2", 2),
        "b2": ("b1", "b2", 2),
    }


async def test_aggregates_over_windows(scores):
    rows = await Post.objects.annotate(
        running=Window(Sum("views"), partition_by="author", order_by="title"),
        total=Window(Sum("views"), partition_by="author"),
        n=Window(Count("id"), partition_by="author"),
        moving=Window(Sum("views"), order_by="title", frame=RowRange(start=-1, end=0)),
        avg=Window(Avg("views"), partition_by="author"),
    ).values("title", "running", "total", "n", "moving", "avg")
    by_title = _by_title(rows)
    assert {t: v[:4] for t, v in by_title.items()} == {
        "a1": (10, 75, 4, 10),
        "a2": (40, 75, 4, 40),
        "a3": (70, 75, 4, 60),
        "a4": (75, 75, 4, 35),
        "b1": (7, 9, 2, 12),
        "b2": (9, 9, 2, 9),
    }
    assert by_title["a1"][4] == pytest.approx(18.75)
    assert all(type(v[0]) is int for v in by_title.values())


async def test_value_range_frame(scores):
    rows = (
        await Post.objects.filter(author__name="Ann")
        .annotate(upto=Window(Count("id"), order_by="views", frame=ValueRange(start=None, end=0)))
        .values("title", "upto")
    )
    # Peers (equal views) share the frame's end.
    assert _by_title(rows) == {"a4": (1,), "a1": (2,), "a2": (4,), "a3": (4,)}


async def test_window_order_by_expressions_and_nulls(orm):
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    for title, rating in (("x", None), ("Y", decimal.Decimal("1.00")), ("z", None)):
        await Post.objects.create(title=title, author=ann, rating=rating)
    rows = await Post.objects.annotate(
        by_name=Window(RowNumber(), order_by=Lower("title").desc()),
        nulls_last=Window(RowNumber(), order_by=[F("rating").asc(nulls_last=True), "title"]),
    ).values("title", "by_name", "nulls_last")
    assert _by_title(rows) == {"z": (1, 3), "Y": (2, 1), "x": (3, 2)}


async def test_ordering_and_slicing_by_a_window_annotation(scores):
    qs = Post.objects.annotate(rn=Window(RowNumber(), order_by=["-views", "title"]))
    assert await qs.order_by("rn").values_list("title", flat=True)[:3] == ["a2", "a3", "a1"]
    assert await qs.count() == 6


async def test_filtering_on_a_window_is_refused(scores):
    qs = Post.objects.annotate(rn=Window(RowNumber(), order_by="-views"))
    with pytest.raises(FieldError, match="window annotation 'rn'"):
        qs.filter(rn=1)
    with pytest.raises(FieldError, match="window annotation"):
        qs.exclude(rn__gt=1)
    wrapped = Post.objects.annotate(rn=Window(RowNumber(), order_by="-views") + 1)
    with pytest.raises(FieldError, match="window annotation"):
        wrapped.filter(rn=2)


async def test_window_functions_need_a_window(orm):
    with pytest.raises(FieldError, match="inside Window"):
        Post.objects.annotate(rn=RowNumber())
    with pytest.raises(FieldError, match="window function or an aggregate"):
        Window(F("views"))
    with pytest.raises(FieldError, match="RowRange or ValueRange"):
        Window(RowNumber(), frame=(0, 1))  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="frame bound"):
        RowRange(start="1")  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="offset"):
        Lag("views", offset=-1)
    with pytest.raises(FieldError, match="num_buckets"):
        Ntile(0)
