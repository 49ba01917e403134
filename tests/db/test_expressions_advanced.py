"""Subquery, OuterRef, Exists, Case/When and conditional aggregates on every backend."""

from __future__ import annotations

import datetime
import decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import (
    Avg,
    Case,
    Count,
    Exists,
    F,
    FieldError,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    fields,
)
from covet.db.backends.mysql import MySQLFeatures, MySQLOperations
from covet.db.backends.postgres import PostgresFeatures, PostgresOperations
from covet.db.backends.sqlite import SQLiteFeatures, SQLiteOperations
from covet.db.compiler import compile_select
from tests.db.models import Author, Comment, Post

if TYPE_CHECKING:
    from covet.db.database import Database
    from covet.db.queryset import QuerySet

DIALECTS = {
    "sqlite": (SQLiteOperations, SQLiteFeatures),
    "postgres": (PostgresOperations, PostgresFeatures),
    "mysql": (MySQLOperations, MySQLFeatures),
}


def compiled(qs: QuerySet[Any], dialect: str = "postgres") -> tuple[str, list[Any]]:
    ops_cls, features_cls = DIALECTS[dialect]
    features = features_cls()
    result = compile_select(qs.query, ops_cls(features), features)
    return result.sql, result.params


@pytest.fixture
async def blog(orm: Database) -> dict[str, Any]:
    ann = await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    bob = await Author.objects.create(name="Bob", email="bob@example.com", age=40)
    cid = await Author.objects.create(name="Cid", email="cid@example.com")
    first = await Post.objects.create(
        title="first", author=ann, views=10, rating=decimal.Decimal("4.50")
    )
    second = await Post.objects.create(
        title="second", author=ann, views=50, rating=decimal.Decimal("3.25")
    )
    third = await Post.objects.create(title="third", author=bob, views=5)
    await Comment.objects.create(post=first, text="early")
    await Comment.objects.create(post=first, text="late")
    await Comment.objects.create(post=third, text="Bob")
    return {"ann": ann, "bob": bob, "cid": cid, "posts": (first, second, third)}


def latest_comment() -> Subquery:
    return Subquery(Comment.objects.filter(post=OuterRef("pk")).order_by("-id").values("text")[:1])


# -- Subquery and OuterRef -----------------------------------------------------------------------


async def test_correlated_subquery_annotates_latest_comment(blog):
    rows = (
        await Post.objects.annotate(latest=latest_comment())
        .order_by("id")
        .values("title", "latest")
    )
    assert rows == [
        {"title": "first", "latest": "late"},
        {"title": "second", "latest": None},
        {"title": "third", "latest": "Bob"},
    ]


async def test_subquery_annotation_on_instances_keeps_its_type(blog):
    newest_view = Subquery(
        Post.objects.filter(author=OuterRef("pk")).order_by("-views").values("views")[:1]
    )
    authors = await Author.objects.annotate(top=newest_view).order_by("id")
    assert [(a.name, a.top) for a in authors] == [("Ann", 50), ("Bob", 5), ("Cid", None)]
    assert isinstance(authors[0].top, int)


async def test_subquery_over_the_same_table_in_filter(blog):
    # Each author's most viewed post: the inner "posts" needs its own alias.
    best = Post.objects.filter(author=OuterRef("author")).order_by("-views").values("pk")[:1]
    titles = (
        await Post.objects.filter(pk=Subquery(best)).order_by("id").values_list("title", flat=True)
    )
    assert titles == ["second", "third"]


async def test_subquery_in_order_by_and_reverse(blog):
    count = Subquery(
        Comment.objects.filter(post=OuterRef("pk")).values("post").annotate(n=Count("id"))
        .values("n")
    )  # fmt: skip
    qs = Post.objects.order_by(count.desc(), "id")
    assert [p.title for p in await qs] == ["first", "third", "second"]
    assert [p.title for p in await qs.reverse()] == ["second", "third", "first"]


async def test_subquery_in_lookup_and_queryset_in(blog):
    commented = Comment.objects.values("post")
    by_subquery = await Post.objects.filter(id__in=Subquery(commented)).order_by("id")
    by_queryset = await Post.objects.filter(id__in=commented).order_by("id")
    assert [p.title for p in by_subquery] == [p.title for p in by_queryset] == ["first", "third"]


async def test_subquery_in_update(blog):
    await Post.objects.update(title=Subquery(
        Author.objects.filter(pk=OuterRef("author")).values("name")
    ))  # fmt: skip
    assert await Post.objects.order_by("id").values_list("title", flat=True) == [
        "Ann",
        "Ann",
        "Bob",
    ]


async def test_nested_outer_ref_reaches_two_levels_out(blog):
    # Authors with a post that has a comment whose text is the author's name.
    named = Comment.objects.filter(post=OuterRef("pk"), text=OuterRef(OuterRef("name")))
    posts = Post.objects.filter(Exists(named), author=OuterRef("pk"))
    names = await Author.objects.filter(Exists(posts)).values_list("name", flat=True)
    assert names == ["Bob"]


async def test_outer_ref_through_a_forward_foreign_key(blog):
    same_author_name = Comment.objects.filter(post=OuterRef("pk"), text=OuterRef("author__name"))
    titles = await Post.objects.filter(Exists(same_author_name)).values_list("title", flat=True)
    assert titles == ["third"]


def test_subquery_must_select_one_column():
    with pytest.raises(FieldError, match=r"exactly one column.*values\('field'\)"):
        Post.objects.annotate(x=Subquery(Comment.objects.filter(post=OuterRef("pk"))))
    with pytest.raises(FieldError, match="exactly one column"):
        Post.objects.annotate(x=Subquery(Comment.objects.values("id", "text")))


def test_subquery_takes_a_queryset():
    with pytest.raises(FieldError, match="takes a queryset"):
        Subquery(["a"])
    with pytest.raises(FieldError, match="takes a queryset"):
        Exists("Comment")


def test_outer_ref_names_are_checked_when_the_subquery_is_used():
    bad = Subquery(Comment.objects.filter(post=OuterRef("nope")).values("text"))
    with pytest.raises(FieldError, match=r"OuterRef\('nope'\) does not name a field of Post"):
        Post.objects.annotate(x=bad)
    many = Exists(Comment.objects.filter(text=OuterRef("tags__name")))
    with pytest.raises(FieldError, match="multi-valued relation of Post"):
        Post.objects.filter(many)
    with pytest.raises(FieldError, match="takes a field name"):
        OuterRef("")


async def test_outer_ref_across_a_relation_is_refused_in_update(blog):
    joined = Subquery(Comment.objects.filter(text=OuterRef("author__name")).values("text")[:1])
    with pytest.raises(FieldError, match="not allowed here"):
        await Post.objects.update(title=joined)


async def test_outer_ref_outside_a_subquery_fails_clearly(blog):
    with pytest.raises(FieldError, match="outside a subquery"):
        await Comment.objects.filter(post=OuterRef("pk"))


# -- Exists --------------------------------------------------------------------------------------


async def test_exists_in_filter_and_negated(blog):
    has_comment = Exists(Comment.objects.filter(post=OuterRef("pk")))
    with_comments = await Post.objects.filter(has_comment).order_by("id")
    without = await Post.objects.filter(~has_comment).order_by("id")
    excluded = await Post.objects.exclude(has_comment).order_by("id")
    assert [p.title for p in with_comments] == ["first", "third"]
    assert [p.title for p in without] == [p.title for p in excluded] == ["second"]


async def test_exists_combines_with_q(blog):
    has_comment = Exists(Comment.objects.filter(post=OuterRef("pk")))
    titles = await Post.objects.filter(Q(has_comment) & Q(views__gt=6) | Q(title="second"))\
        .order_by("id").values_list("title", flat=True)  # fmt: skip
    assert titles == ["first", "second"]


async def test_exists_annotation_is_a_python_bool(blog):
    has_comment = Exists(Comment.objects.filter(post=OuterRef("pk")))
    rows = await Post.objects.annotate(has=has_comment).order_by("id").values_list("title", "has")
    assert rows == [("first", True), ("second", False), ("third", True)]
    assert all(type(has) is bool for _title, has in rows)
    only = await Post.objects.annotate(has=has_comment).filter(has=False)
    assert [p.title for p in only] == ["second"]


async def test_exists_in_delete_and_over_an_empty_queryset(blog):
    has_comment = Exists(Comment.objects.filter(post=OuterRef("pk")))
    none = Exists(Comment.objects.none())
    assert await Post.objects.filter(none).count() == 0
    assert await Post.objects.filter(~none).count() == 3
    assert await Post.objects.filter(id__in=Comment.objects.none().values("post")).count() == 0
    assert await Post.objects.filter(~has_comment).delete() == 1
    assert await Post.objects.order_by("id").values_list("title", flat=True) == ["first", "third"]


def test_a_non_boolean_expression_is_not_a_condition():
    with pytest.raises(FieldError, match="is not a condition"):
        Post.objects.filter(F("views"))


# -- Case / When ---------------------------------------------------------------------------------


def popularity() -> Case:
    return Case(
        When(views__gte=50, then=Value("hot")),
        When(Q(views__gte=10) | Q(title="third"), then="warm"),
        default=Value("cold"),
    )


async def test_case_annotation(blog):
    rows = await Post.objects.annotate(p=popularity()).order_by("id").values_list("title", "p")
    assert rows == [("first", "warm"), ("second", "hot"), ("third", "warm")]


async def test_case_typed_results(blog):
    rank = Case(When(views__gte=50, then=1), When(views__gte=10, then=2), default=3)
    bonus = Case(
        When(rating__isnull=False, then=F("rating") * 2),
        default=Value(decimal.Decimal("0.5")),
        output_field=fields.DecimalField(max_digits=8, decimal_places=2),
    )
    flag = Case(When(views__gt=5, then=True), default=False)
    when = Case(
        When(views__gt=20, then=Value(datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC))),
        output_field=fields.DateTimeField(null=True),
    )
    posts = await Post.objects.annotate(rank=rank, bonus=bonus, flag=flag, when=when).order_by("id")
    assert [(p.rank, p.bonus, p.flag, p.when) for p in posts] == [
        (2, decimal.Decimal("9.00"), True, None),
        (1, decimal.Decimal("6.50"), True, datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)),
        (3, decimal.Decimal("0.50"), False, None),
    ]
    assert type(posts[0].rank) is int
    assert type(posts[0].flag) is bool
    assert isinstance(posts[0].bonus, decimal.Decimal)


async def test_case_branches_take_exists_subqueries_and_typed_values(blog):
    has_comment = Exists(Comment.objects.filter(post=OuterRef("pk")))
    label = Case(
        When(has_comment, then=latest_comment()),
        default=Value("silent", output_field=fields.CharField(max_length=10)),
    )
    rows = await Post.objects.annotate(label=label).order_by("id").values_list("label", flat=True)
    assert rows == ["late", "silent", "Bob"]
    typed = Value(True, output_field=fields.BooleanField())
    flags = await Post.objects.annotate(on=typed).values_list("on", flat=True)
    assert flags == [True, True, True]


async def test_case_in_filter_as_value_and_as_condition(blog):
    by_value = await Post.objects.filter(title=Case(
        When(views__gte=50, then=Value("second")), default=Value("first")
    )).order_by("id")  # fmt: skip
    assert [p.title for p in by_value] == ["first", "second"]
    condition = Case(When(views__gte=10, then=True), default=False)
    by_condition = await Post.objects.filter(condition).order_by("id")
    assert [p.title for p in by_condition] == ["first", "second"]
    annotated = await Post.objects.annotate(p=popularity()).filter(p="warm").order_by("id")
    assert [p.title for p in annotated] == ["first", "third"]


async def test_case_in_order_by(blog):
    qs = Post.objects.order_by(popularity().desc(), "-id")  # warm > hot > cold, text order
    assert [p.title for p in await qs] == ["third", "first", "second"]


async def test_order_by_expression_with_distinct(blog):
    def query(views: int) -> QuerySet[Any]:
        first = Case(When(views__lte=views, then=0), default=1)
        return (
            Post.objects.filter(title__in=["first", "second", "third"])
            .annotate(p=popularity())
            .distinct()
            .order_by(first, "-p", "id")
        )

    # Twice each: the second compile reuses the cached SQL and only collects parameters.
    for _ in range(2):
        assert [p.title for p in await query(5)] == ["third", "first", "second"]
        assert [p.title for p in await query(10)] == ["first", "third", "second"]
    pairs = await Post.objects.annotate(p=popularity()).values_list("p", flat=True).distinct()\
        .order_by(F("p").desc())  # fmt: skip
    assert pairs == ["warm", "hot"]


async def test_case_in_update(blog):
    changed = await Post.objects.update(
        views=Case(When(views__lt=10, then=F("views") + 100), default=F("views")),
        body=Case(When(title="first", then=Value("lead")), default=Value("")),
    )
    assert changed == 3
    rows = await Post.objects.order_by("id").values_list("views", "body")
    assert rows == [(10, "lead"), (50, ""), (105, "")]


async def test_case_with_aggregate_condition(blog):
    size = Case(When(n__gte=2, then=Value("many")), default=Value("few"))
    rows = (
        await Post.objects.annotate(n=Count("comments"))
        .annotate(size=size)
        .order_by("id")
        .values_list("title", "size")
    )
    assert rows == [("first", "many"), ("second", "few"), ("third", "few")]


def test_case_errors():
    with pytest.raises(TypeError, match="at least one When"):
        Case()
    with pytest.raises(TypeError, match="takes When"):
        Case(Q(views=1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a condition"):
        When(then=1)
    with pytest.raises(FieldError, match=r"mixes types \(int, str\)"):
        Post.objects.annotate(x=Case(When(views=1, then=F("views")), default=Value("a")))
    with pytest.raises(FieldError, match="Cannot infer the type"):
        Post.objects.annotate(x=Case(When(views=1, then=None)))
    with pytest.raises(FieldError, match=r"Post has no field 'nope'"):
        Post.objects.annotate(x=Case(When(nope=1, then=1)))


async def test_case_in_update_with_a_reverse_relation_condition(blog):
    # comments__text compiles to "id IN (SELECT post_id ...)": no join in the UPDATE.
    await Post.objects.update(
        views=Case(When(comments__text="late", then=Value(0)), default=F("views"))
    )
    assert await Post.objects.order_by("id").values_list("views", flat=True) == [0, 50, 5]


def test_correlated_subquery_sql_per_dialect():
    qs = Post.objects.annotate(latest=latest_comment()).values("latest")
    assert compiled(qs, "postgres") == (
        'SELECT (SELECT "S1_0"."text" FROM "comment" AS "S1_0" WHERE "S1_0"."post_id" = '
        '"posts"."id" ORDER BY "S1_0"."id" DESC LIMIT 1) AS "latest" FROM "posts"',
        [],
    )
    assert compiled(qs.filter(Exists(Comment.objects.filter(text="x"))), "mysql") == (
        "SELECT (SELECT `S1_0`.`text` FROM `comment` AS `S1_0` WHERE `S1_0`.`post_id` = "
        "`posts`.`id` ORDER BY `S1_0`.`id` DESC LIMIT 1) AS `latest` FROM `posts` WHERE "
        "EXISTS(SELECT `S2_0`.`id` FROM `comment` AS `S2_0` WHERE `S2_0`.`text` = %s)",
        ["x"],
    )


async def test_case_in_update_refuses_relations(blog):
    with pytest.raises(FieldError, match="update\\(\\) writes one table"):
        await Post.objects.update(views=Case(When(author__name="Ann", then=0), default=F("views")))


# -- conditional aggregates ----------------------------------------------------------------------


async def test_conditional_aggregates_in_aggregate(blog):
    busy = Q(views__gte=10)
    result = await Post.objects.aggregate(
        n=Count("id", filter=busy),
        everything=Count("*", filter=busy),
        total=Sum("views", filter=busy),
        avg=Avg("views", filter=busy),
        low=Min("views", filter=busy),
        high=Max("views", filter=~busy),
        none=Sum("views", filter=Q(views__gt=1000)),
    )
    assert result == {
        "n": 2,
        "everything": 2,
        "total": 60,
        "avg": pytest.approx(30.0),
        "low": 10,
        "high": 5,
        "none": None,
    }
    assert type(result["total"]) is int


async def test_conditional_aggregates_over_a_relation(blog):
    rows = (
        await Author.objects.annotate(
            busy=Count("posts", filter=Q(posts__views__gte=10)),
            quiet_views=Sum("posts__views", filter=Q(posts__views__lt=10)),
        )
        .order_by("id")
        .values_list("name", "busy", "quiet_views")
    )
    assert rows == [("Ann", 2, None), ("Bob", 0, 5), ("Cid", 0, None)]
    distinct = (
        await Author.objects.annotate(
            n=Count("posts__comments__text", distinct=True, filter=Q(posts__views__gte=10))
        )
        .order_by("id")
        .values_list("n", flat=True)
    )
    assert distinct == [2, 0, 0]


async def test_conditional_aggregate_parameters_keep_their_order(blog):
    # The summed expression and the filter both bind values: FILTER (WHERE ...) puts the
    # expression's first, CASE WHEN the condition's; each backend must match its own SQL.
    result = await Post.objects.aggregate(
        total=Sum(F("views") * 3, filter=Q(title__startswith="s") | Q(views=5))
    )
    assert result == {"total": 165}


async def test_conditional_aggregate_with_exists_filter(blog):
    has_comment = Exists(Comment.objects.filter(post=OuterRef("pk")))
    result = await Post.objects.aggregate(n=Count("id", filter=has_comment))
    assert result == {"n": 2}


def test_conditional_aggregate_sql_per_dialect():
    qs = Post.objects.annotate(n=Count("comments", filter=Q(comments__text="x"))).values("n")
    assert 'COUNT("T1"."id") FILTER (WHERE "T1"."text" = $1)' in compiled(qs, "postgres")[0]
    assert 'COUNT("T1"."id") FILTER (WHERE "T1"."text" = ?)' in compiled(qs, "sqlite")[0]
    assert "COUNT(CASE WHEN `T1`.`text` = %s THEN `T1`.`id` END)" in compiled(qs, "mysql")[0]
    with pytest.raises(FieldError, match="takes a Q"):
        Count("id", filter={"views": 1})  # type: ignore[arg-type]


# -- values are bound, SQL is cached by shape ----------------------------------------------------


async def test_values_in_expressions_are_bound(blog):
    evil = "x' OR '1'='1"
    qs = Post.objects.annotate(p=Case(When(title=evil, then=Value(evil)), default=Value("ok")))
    qs = qs.filter(Exists(Comment.objects.filter(post=OuterRef("pk"), text=evil)))
    for dialect in DIALECTS:
        text, params = compiled(qs, dialect)
        assert evil not in text
        assert params.count(evil) == 3
    assert await qs == []


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_same_shape_shares_sql_and_rebinds_values(dialect):
    def build(views: int, text: str, label: str) -> QuerySet[Any]:
        return (
            Post.objects.annotate(
                latest=Subquery(
                    Comment.objects.filter(post=OuterRef("pk"), text=text).values("text")[:1]
                ),
                label=Case(When(views__gt=views, then=Value(label)), default=Value("-")),
                n=Count("comments", filter=Q(comments__text=text)),
            )
            .filter(Exists(Comment.objects.filter(post=OuterRef("pk"), text__startswith=text)))
            .order_by(Case(When(views=views, then=0), default=1).asc())
        )

    first_sql, first_params = compiled(build(1, "a", "big"), dialect)
    second_sql, second_params = compiled(build(2, "b", "huge"), dialect)
    assert first_sql == second_sql
    assert first_params != second_params
    assert "huge" in second_params and 2 in second_params
    # A fresh compile (no cache) of the second query binds exactly the same parameters.
    from covet.db.compiler import SQLCompiler

    ops_cls, features_cls = DIALECTS[dialect]
    features = features_cls()
    c = SQLCompiler(build(2, "b", "huge").query, ops_cls(features), features)
    assert (c.select_sql(), c.params) == (second_sql, second_params)


def test_different_structure_gets_different_sql():
    has = Exists(Comment.objects.filter(post=OuterRef("pk")))
    variants = [
        Post.objects.filter(has),
        Post.objects.filter(~has),
        Post.objects.filter(Exists(Comment.objects.filter(post=OuterRef("author")))),
        Post.objects.annotate(x=Case(When(views=1, then=Value(1)), default=Value(2))),
        Post.objects.annotate(x=Case(When(views=1, then=Value(1.5)), default=Value(2.5))),
        Post.objects.annotate(
            x=Case(
                When(views=1, then=1),
                output_field=fields.DecimalField(max_digits=5, decimal_places=1),
            )
        ),
        Post.objects.annotate(
            x=Case(
                When(views=1, then=1),
                output_field=fields.DecimalField(max_digits=5, decimal_places=3),
            )
        ),
        Post.objects.annotate(n=Count("comments", filter=Q(comments__text="a"))),
        Post.objects.annotate(n=Count("comments", filter=~Q(comments__text="a"))),
        Post.objects.order_by(F("views").desc()),
        Post.objects.order_by(F("views").asc()),
    ]
    for dialect in DIALECTS:
        keys = [v.query.shape() for v in variants]
        assert len(set(keys)) == len(keys), dialect
        sqls = [compiled(v, dialect)[0] for v in variants[:4]]
        assert len(set(sqls)) == len(sqls)


def test_equal_output_fields_share_the_cache_entry():
    def build() -> QuerySet[Any]:
        return Post.objects.annotate(
            x=Case(
                When(views=1, then=1),
                output_field=fields.DecimalField(max_digits=5, decimal_places=1),
            )
        )

    assert build().query.shape() == build().query.shape()
