"""Compile-only SQL assertions per dialect (no server needed) and the shape cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Count, F, Q
from covet.db.backends.mysql import MySQLFeatures, MySQLOperations
from covet.db.backends.postgres import PostgresFeatures, PostgresOperations
from covet.db.backends.sqlite import SQLiteFeatures, SQLiteOperations
from covet.db.compiler import Param, SQLCompiler, compile_insert, compile_select, compile_update
from tests.db.models import Author, Post, Tag

if TYPE_CHECKING:
    from covet.db.queryset import QuerySet

DIALECTS = {
    "sqlite": (SQLiteOperations, SQLiteFeatures),
    "postgres": (PostgresOperations, PostgresFeatures),
    "mysql": (MySQLOperations, MySQLFeatures),
}


def ops_for(name: str) -> tuple[Any, Any]:
    ops_cls, features_cls = DIALECTS[name]
    features = features_cls()
    return ops_cls(features), features


def sql(qs, dialect: str) -> tuple[str, list[Any]]:
    ops, features = ops_for(dialect)
    compiled = compile_select(qs.query, ops, features)
    return compiled.sql, compiled.params


POST_COLS = (
    '"posts"."id", "posts"."title", "posts"."body", "posts"."author_id", "posts"."editor_id", '
    '"posts"."published_at", "posts"."views", "posts"."rating"'
)


def mysql_quotes(text: str) -> str:
    return text.replace('"', "`")


@pytest.mark.parametrize(
    ("dialect", "placeholder"), [("sqlite", "?"), ("postgres", "$1"), ("mysql", "%s")]
)
def test_get_by_pk(dialect, placeholder):
    text, params = sql(Post.objects.filter(id=3), dialect)
    expected = f'SELECT {POST_COLS} FROM "posts" WHERE "posts"."id" = {placeholder}'  # noqa: S608 - identifiers are quoted, values are bound
    assert text == (mysql_quotes(expected) if dialect == "mysql" else expected)
    assert params == [3]


def test_filter_exclude_order_limit_per_dialect():
    qs = (
        Post.objects.filter(title__icontains="hi", author__name="x")
        .exclude(published_at=None)
        .order_by("-id")[:10]
    )
    tail = (
        ' FROM "posts" INNER JOIN "author" AS "T1" ON "T1"."id" = "posts"."author_id" WHERE '
        '(("T1"."name" = {p1} AND {ilike}) AND NOT ("posts"."published_at" IS NULL)) '
        'ORDER BY "posts"."id" DESC LIMIT 10'
    )
    text, params = sql(qs, "sqlite")
    assert text == f"SELECT {POST_COLS}" + tail.format(
        p1="?", ilike='LOWER("posts"."title") LIKE LOWER(?) ESCAPE \'\\\''
    )
    assert params == ["x", "%hi%"]
    text, params = sql(qs, "postgres")
    assert text == f"SELECT {POST_COLS}" + tail.format(
        p1="$1", ilike='"posts"."title" ILIKE $2 ESCAPE \'\\\''
    )
    text, params = sql(qs, "mysql")
    assert text == mysql_quotes(
        f"SELECT {POST_COLS}"
        + tail.format(p1="%s", ilike='LOWER("posts"."title") LIKE LOWER(%s) ESCAPE \'\\\\\'')
    )


def test_like_values_are_escaped_params():
    _, params = sql(Post.objects.filter(title__contains="50%_"), "postgres")
    assert params == ["%50\\%\\_%"]


def test_concat_comes_from_the_dialect():
    for dialect, expected in (
        ("sqlite", '"title" = ("posts"."title" || ?)'),
        ("postgres", '"title" = ("posts"."title" || $1)'),
        ("mysql", "`title` = CONCAT(`posts`.`title`, %s)"),
    ):
        ops, features = ops_for(dialect)
        qs = Post.objects.filter(id=1)
        field = Post._meta.get_field("title")
        node = (F("title") + "!").resolve(qs.query)
        text, params, joined = compile_update(qs.query, [(field, node)], ops, features)
        assert expected in text
        assert params == ["!", 1] and not joined


def test_reverse_fk_filter_is_a_subquery():
    text, params = sql(Author.objects.filter(posts__title="a"), "sqlite")
    assert 'WHERE "author"."id" IN (SELECT "U1"."author_id" FROM "posts" AS "U1" WHERE ' in text
    assert "DISTINCT" not in text and "JOIN" not in text
    assert params == ["a"]


def test_m2m_exclude_is_not_in_subquery():
    text, _ = sql(Post.objects.exclude(tags__name="x"), "postgres")
    assert (
        'NOT ("posts"."id" IN (SELECT "U1"."post_id" FROM "posts_tags" AS "U1" INNER JOIN' in text
    )
    assert '"U1"."post_id" IS NOT NULL' in text


def test_annotate_count_groups_by_model_and_having():
    qs = Author.objects.annotate(n=Count("posts")).filter(n__gt=1).values("name", "n")
    text, params = sql(qs, "postgres")
    assert text == (
        'SELECT "author"."name", COUNT("T1"."id") AS "n" FROM "author" LEFT OUTER JOIN "posts" '
        'AS "T1" ON "T1"."author_id" = "author"."id" GROUP BY "author"."id", "author"."name" '
        'HAVING COUNT("T1"."id") > $1'
    )
    assert params == [1]


def test_q_or_and_negation():
    text, params = sql(Post.objects.filter(Q(views=1) | ~Q(title="a")), "sqlite")
    assert text.endswith('WHERE ("posts"."views" = ? OR NOT ("posts"."title" = ?))')
    assert params == [1, "a"]


def test_insert_with_and_without_returning():
    ops, _ = ops_for("postgres")
    fields = [Tag._meta.get_field("name")]
    assert compile_insert(Tag, fields, [["a"], ["b"]], ops, returning=True) == (
        'INSERT INTO "tag" ("name") VALUES ($1), ($2) RETURNING "id"'
    )
    ops, _ = ops_for("mysql")
    assert compile_insert(Tag, fields, [["a"]], ops, returning=False) == (
        "INSERT INTO `tag` (`name`) VALUES (%s)"
    )


def test_same_shape_reuses_the_cached_sql_object():
    ops, features = ops_for("postgres")
    first = compile_select(Post.objects.filter(id=1, title="a").query, ops, features)
    second = compile_select(Post.objects.filter(id=2, title="b").query, ops, features)
    assert first.sql is second.sql
    assert second.params == [2, "b"]
    other = compile_select(Post.objects.filter(id__in=[1, 2]).query, ops, features)
    again = compile_select(Post.objects.filter(id__in=[3, 4]).query, ops, features)
    longer = compile_select(Post.objects.filter(id__in=[3, 4, 5]).query, ops, features)
    assert other.sql is again.sql and again.params == [3, 4]
    assert longer.sql != other.sql


def test_cached_params_follow_render_order():
    ops, features = ops_for("postgres")

    def qs(v: int) -> QuerySet[Author]:
        return (
            Author.objects.annotate(n=Count("posts", filter=Q(posts__views__gt=v)))
            .filter(name=f"n{v}")
            .filter(n__gte=v)
        )

    first = compile_select(qs(1).query, ops, features)
    second = compile_select(qs(2).query, ops, features)
    assert first.sql is second.sql
    # SELECT (the filtered aggregate), WHERE, then HAVING (the aggregate again, the bound).
    assert first.params == [1, "n1", 1, 1]
    assert second.params == [2, "n2", 2, 2]


def test_subquery_placeholders_are_numbered_in_order():
    inner = Post.objects.filter(title="t").values("author_id")
    text, params = sql(Author.objects.filter(name="a", id__in=inner), "postgres")
    assert '"S1_0"."title" = $1' in text and '"author"."name" = $2' in text
    assert params == ["t", "a"]


def test_value_param_is_adapted_by_python_type():
    ops, _ = ops_for("sqlite")
    import decimal

    assert Param(decimal.Decimal("1.50"), None).prepared(ops) == 1.5


def test_count_and_exists_sql():
    ops, features = ops_for("sqlite")
    c = SQLCompiler(Post.objects.filter(views=1).query, ops, features)
    assert c.count_sql() == 'SELECT COUNT(*) FROM "posts" WHERE "posts"."views" = ?'
    c = SQLCompiler(Post.objects.filter(views=1).query, ops, features)
    assert c.exists_sql() == 'SELECT 1 FROM "posts" WHERE "posts"."views" = ? LIMIT 1'
