"""Expression ordering where the subquery and the function features meet.

One ORDER BY representation (``covet.db.functions.OrderBy``, resolved into an
``OrderByNode``) serves ``Subquery(...).desc()``, ``Case`` and NULLS FIRST/LAST;
these tests pin the combinations: under DISTINCT, after reverse(), with an
``OuterRef`` inside, and from the compiled-SQL cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Case, F, FieldError, OuterRef, Subquery, When
from covet.db.backends.mysql import MySQLFeatures, MySQLOperations
from covet.db.backends.sqlite import SQLiteFeatures, SQLiteOperations
from covet.db.compiler import compile_select
from tests.db.models import Author, Comment, Post

if TYPE_CHECKING:
    from covet.db.database import Database
    from covet.db.queryset import QuerySet


@pytest.fixture
async def blog(orm: Database) -> None:
    ann = await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    bob = await Author.objects.create(name="Bob", email="bob@example.com", age=40)
    await Author.objects.create(name="Cid", email="cid@example.com")
    first = await Post.objects.create(title="first", author=ann, views=10)
    await Post.objects.create(title="second", author=ann, views=50)
    third = await Post.objects.create(title="third", author=bob, views=5)
    await Comment.objects.create(post=first, text="early")
    await Comment.objects.create(post=first, text="late")
    await Comment.objects.create(post=third, text="Bob")


def latest_comment() -> Subquery:
    return Subquery(Comment.objects.filter(post=OuterRef("pk")).order_by("-id").values("text")[:1])


def names_by_age_from(minimum: int, *, nulls: str) -> QuerySet[Any]:
    """Author names, DISTINCT, by their age when at least ``minimum`` (else NULL)."""
    age = Case(When(age__gte=minimum, then=F("age")))
    term = age.asc(nulls_last=True) if nulls == "last" else age.desc(nulls_first=True)
    qs = Author.objects.filter(email__endswith="@example.com").values_list("name", flat=True)
    return qs.distinct().order_by(term, "name")


async def test_subquery_ordering_with_nulls_last_and_reverse(blog):
    qs = Post.objects.order_by(latest_comment().desc(nulls_last=True), "id")
    assert [p.title for p in await qs] == ["first", "third", "second"]
    # reverse() flips the direction and moves the NULLs to the other end.
    assert [p.title for p in await qs.reverse()] == ["second", "third", "first"]


async def test_distinct_orders_by_an_expression_with_nulls_on_every_backend(blog):
    # Twice each: the second run reuses the cached SQL and only collects parameters.
    for _ in range(2):
        assert await names_by_age_from(30, nulls="last") == ["Ann", "Bob", "Cid"]
        assert await names_by_age_from(35, nulls="last") == ["Bob", "Ann", "Cid"]
        assert await names_by_age_from(30, nulls="first") == ["Cid", "Bob", "Ann"]
        assert await names_by_age_from(35, nulls="first") == ["Ann", "Cid", "Bob"]


def test_distinct_expression_parameters_come_in_sql_order():
    # With qmark placeholders the selected ORDER BY expression's parameter (35) is
    # bound before the WHERE's; MySQL's emulated NULLS LAST refers to an alias, since
    # "2 IS NULL" would be a constant and not the second column.
    query = names_by_age_from(35, nulls="last").query
    sqlite = SQLiteFeatures()
    result = compile_select(query, SQLiteOperations(sqlite), sqlite)
    assert result.params[0] == 35
    assert result.sql.index("?") < result.sql.index("WHERE")
    mysql = MySQLFeatures()
    result = compile_select(query, MySQLOperations(mysql), mysql)
    assert "ORDER BY `__order2` IS NULL, `__order2` ASC" in result.sql


def test_ordering_direction_and_nulls_are_part_of_the_cache_key():
    base = Author.objects.values_list("name", flat=True)
    shapes = {
        base.order_by(F("age").asc()).query.shape(),
        base.order_by(F("age").desc()).query.shape(),
        base.order_by(F("age").asc(nulls_last=True)).query.shape(),
        base.order_by(F("age").asc(nulls_first=True)).query.shape(),
    }
    assert len(shapes) == 4
    # The same structure with another value is the same shape (one cached SQL).
    one = base.order_by(Case(When(age__gte=1, then=F("age"))).desc()).query.shape()
    two = base.order_by(Case(When(age__gte=2, then=F("age"))).desc()).query.shape()
    assert one == two


def test_outer_ref_in_the_inner_ordering_is_checked():
    inner = Comment.objects.order_by(OuterRef("nope").desc()).values("text")[:1]
    with pytest.raises(FieldError, match=r"OuterRef\('nope'\) does not name a field of Post"):
        Post.objects.annotate(x=Subquery(inner))
