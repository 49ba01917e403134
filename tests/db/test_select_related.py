"""select_related(): the JOIN kinds it emits, and identical results on every backend.

Joins that select_related() adds only to read the related row are LEFT OUTER
JOINs even through a non-null key (the foreign key guarantees the match, and an
outer join keeps the queried table first in the plan); a join that a filter,
an ordering or a lock also goes through stays INNER.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Q, transaction
from covet.db.testing import assert_num_queries
from tests.db.models import Author, Comment, Post, Profile
from tests.db.test_compiler import DIALECTS, mysql_quotes, ops_for, sql

if TYPE_CHECKING:
    from covet.db.database import Database
    from covet.db.queryset import QuerySet

AUTHOR_COLS = '"T{n}"."id", "T{n}"."name", "T{n}"."email", "T{n}"."age"'
LEFT_AUTHOR = 'LEFT OUTER JOIN "author" AS "T1" ON "T1"."id" = "posts"."author_id"'
INNER_AUTHOR = 'INNER JOIN "author" AS "T1" ON "T1"."id" = "posts"."author_id"'


def joins(qs: QuerySet[Any], dialect: str = "sqlite") -> str:
    """Return the FROM ... part of the compiled SELECT, up to WHERE/ORDER BY/LIMIT/FOR."""
    text = sql(qs, dialect)[0]
    start = text.index(" FROM ")
    ends = [text.find(k, start) for k in (" WHERE ", " ORDER BY ", " LIMIT ", " FOR UPDATE")]
    return text[start + 1 : min([e for e in ends if e != -1], default=len(text))]


# -- compile-only ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_non_null_fk_fetch_is_left_outer_join(dialect):
    text, params = sql(
        Post.objects.select_related("author").filter(id__gt=5).order_by("id")[:20], dialect
    )
    ph = {"sqlite": "?", "postgres": "$1", "mysql": "%s"}[dialect]
    expected = (
        'SELECT "posts"."id", "posts"."title", "posts"."body", "posts"."author_id", '  # noqa: S608 - identifiers are quoted, values are bound
        '"posts"."editor_id", "posts"."published_at", "posts"."views", "posts"."rating", '
        f'{AUTHOR_COLS.format(n=1)} FROM "posts" {LEFT_AUTHOR} '
        f'WHERE "posts"."id" > {ph} ORDER BY "posts"."id" ASC LIMIT 20'
    )
    assert text == (mysql_quotes(expected) if dialect == "mysql" else expected)
    assert params == [5]


def test_nullable_fk_fetch_stays_left_outer_join():
    assert joins(Post.objects.select_related("editor")) == (
        'FROM "posts" LEFT OUTER JOIN "author" AS "T1" ON "T1"."id" = "posts"."editor_id"'
    )


def test_filter_through_fetched_join_makes_it_inner():
    qs = Post.objects.select_related("author").filter(author__name="Ann")
    assert joins(qs) == f'FROM "posts" {INNER_AUTHOR}'
    # One join, shared by the columns and the filter: the SQL without select_related().
    assert joins(Post.objects.filter(author__name="Ann")) == joins(qs)


@pytest.mark.parametrize(
    "qs",
    [
        pytest.param(lambda: Post.objects.select_related("author").order_by("author__name"),
                     id="order_by"),
        pytest.param(lambda: Post.objects.select_related("author").exclude(author__name="x"),
                     id="exclude"),
        pytest.param(lambda: Post.objects.select_related("author").filter(
                         Q(author__name="x") | Q(title="y")), id="or"),
        pytest.param(lambda: Post.objects.select_related("author").values("author__name"),
                     id="values"),
        pytest.param(lambda: Post.objects.select_related("author").select_for_update(),
                     id="select_for_update"),
    ],
)  # fmt: skip
def test_other_uses_of_the_join_keep_it_inner(qs):
    assert joins(qs()).startswith(f'FROM "posts" {INNER_AUTHOR}')


def test_chained_fetch_joins_are_left_and_a_filter_promotes_only_its_path():
    chain = Comment.objects.select_related("post__author")
    left_post = 'LEFT OUTER JOIN "posts" AS "T1" ON "T1"."id" = "comment"."post_id"'
    left_author = 'LEFT OUTER JOIN "author" AS "T2" ON "T2"."id" = "T1"."author_id"'
    inner_post = 'INNER JOIN "posts" AS "T1" ON "T1"."id" = "comment"."post_id"'
    inner_author = 'INNER JOIN "author" AS "T2" ON "T2"."id" = "T1"."author_id"'
    assert joins(chain) == f'FROM "comment" {left_post} {left_author}'
    assert joins(chain.filter(post__title="p1")) == f'FROM "comment" {inner_post} {left_author}'
    assert joins(chain.filter(post__author__name="Ann")) == (
        f'FROM "comment" {inner_post} {inner_author}'
    )


def test_nullable_step_keeps_the_rest_of_the_chain_outer_for_filters():
    qs = Post.objects.select_related("editor").filter(editor__name="Bob")
    assert joins(qs) == (
        'FROM "posts" LEFT OUTER JOIN "author" AS "T1" ON "T1"."id" = "posts"."editor_id"'
    )


def test_count_and_exists_ignore_select_related():
    ops, features = ops_for("postgres")
    from covet.db.compiler import SQLCompiler

    compiler = SQLCompiler(Post.objects.select_related("author").query, ops, features)
    assert compiler.count_sql() == 'SELECT COUNT(*) FROM "posts"'
    assert "JOIN" not in compiler.exists_sql()
    sliced = SQLCompiler(Post.objects.select_related("author")[:3].query, ops, features)
    assert "JOIN" not in sliced.count_sql()


# -- every backend -----------------------------------------------------------------------------


@pytest.fixture
async def blog(orm: Database) -> dict[str, Any]:
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    bob = await Author.objects.create(name="Bob", email="bob@example.com")
    cid = await Author.objects.create(name="Cid", email="cid@example.com")  # no posts
    await Profile.objects.create(author=ann, bio="hi")
    posts = {}
    for i, (author, editor) in enumerate(
        [(ann, bob), (ann, None), (bob, None), (bob, ann), (ann, None)], start=1
    ):
        posts[i] = await Post.objects.create(
            title=f"p{i}", author=author, editor=editor, views=i * 10
        )
    await Comment.objects.create(post=posts[1], text="c1")
    await Comment.objects.create(post=posts[3], text="c3")
    await Comment.objects.create(post=posts[4], text="c4")
    return {"ann": ann, "bob": bob, "cid": cid, "posts": posts}


async def test_non_null_fk_returns_every_row_with_its_author(blog):
    plain = await Post.objects.order_by("id")
    authors = {a.pk: a for a in await Author.objects.all()}
    async with assert_num_queries(1):
        joined = await Post.objects.select_related("author").order_by("id")
    assert [(p.pk, p.title, p.author_id) for p in joined] == [
        (p.pk, p.title, p.author_id) for p in plain
    ]
    assert [p.author for p in joined] == [authors[p.author_id] for p in plain]
    assert [p.author.name for p in joined] == ["Ann", "Ann", "Bob", "Bob", "Ann"]
    assert all(p.author.email == authors[p.author_id].email for p in joined)


async def test_sliced_range_as_the_benchmark_runs_it(blog):
    first = blog["posts"][1].pk
    got = await Post.objects.select_related("author").filter(id__gt=first).order_by("id")[:3]
    assert [(p.title, p.author.name) for p in got] == [("p2", "Ann"), ("p3", "Bob"), ("p4", "Bob")]
    query = Post.objects.select_related("author").filter(id__gt=first).order_by("id")[:3]
    assert await query.count() == 3
    assert await Post.objects.select_related("author", "editor").distinct().count() == 5


async def test_nullable_fk_keeps_rows_without_a_match(blog):
    got = await Post.objects.select_related("editor", "author").order_by("id")
    assert [p.editor.name if p.editor else None for p in got] == ["Bob", None, None, "Ann", None]
    assert [p.author.name for p in got] == ["Ann", "Ann", "Bob", "Bob", "Ann"]


async def test_chained_select_related(blog):
    async with assert_num_queries(1):
        got = await Comment.objects.select_related("post__author", "post__editor").order_by("id")
    assert [(c.text, c.post.title, c.post.author.name) for c in got] == [
        ("c1", "p1", "Ann"), ("c3", "p3", "Bob"), ("c4", "p4", "Bob"),
    ]  # fmt: skip
    assert [c.post.editor.name if c.post.editor else None for c in got] == ["Bob", None, "Ann"]


async def test_filter_on_related_table_excludes_rows_without_a_match(blog):
    by_author = Post.objects.select_related("author").filter(author__name="Bob").order_by("id")
    assert [(p.title, p.author.name) for p in await by_author] == [("p3", "Bob"), ("p4", "Bob")]
    by_editor = Post.objects.select_related("editor").filter(editor__name="Bob")
    assert [(p.title, p.editor and p.editor.name) for p in await by_editor] == [("p1", "Bob")]
    chained = Comment.objects.select_related("post__author").filter(post__author__name="Ann")
    assert [(c.text, c.post.author.name) for c in await chained] == [("c1", "Ann")]
    excluded = Post.objects.select_related("author").exclude(author__name="Ann").order_by("id")
    assert [p.title for p in await excluded] == ["p3", "p4"]
    assert await Post.objects.select_related("author").filter(author__name="Cid").count() == 0


async def test_order_by_related_field(blog):
    got = await Post.objects.select_related("author").order_by("-author__name", "views")
    assert [(p.author.name, p.title) for p in got] == [
        ("Bob", "p3"), ("Bob", "p4"), ("Ann", "p1"), ("Ann", "p2"), ("Ann", "p5"),
    ]  # fmt: skip
    by_editor = await Post.objects.select_related("editor").order_by("editor__name", "id")
    names = [p.editor.name if p.editor else None for p in by_editor]
    assert sorted(n for n in names if n) == ["Ann", "Bob"]
    assert names.count(None) == 3


async def test_select_related_with_select_for_update(blog):
    async with transaction():
        locked = (
            await Post.objects.select_related("author")
            .select_for_update()
            .filter(views__gte=30)
            .order_by("id")
        )
        assert [(p.title, p.author.name) for p in locked] == [
            ("p3", "Bob"), ("p4", "Bob"), ("p5", "Ann"),
        ]  # fmt: skip


def _described(obj: Any) -> Any:
    """Return an instance as plain data: its class, values, and state with related objects."""
    if obj is None:
        return None
    values = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    state = obj.__dict__.get("_state")
    if state is not None:
        cache = {name: _described(kid) for name, kid in state.cache.items()}
        state = (state.db, state.adding, cache)
    return (type(obj), values, state)


@pytest.mark.parametrize("alias", [None, "default"], ids=["default-db", "named"])
async def test_generated_builder_builds_as_the_general_one(orm, blog, alias):
    # Model rows are built by source written per shape; the general builder
    # (one make() per object) is the reference: same values, states and related objects.
    from covet.db import rows
    from covet.db.compiler import compile_select
    from covet.db.execution import run_fetch_all

    shapes: list[QuerySet[Any]] = [
        Post.objects.order_by("id"),  # plain rows take the same builder
        Post.objects.select_related("author").order_by("id"),
        Post.objects.select_related("editor", "author").order_by("id"),
        Comment.objects.select_related("post__author", "post__editor").order_by("id"),
        Comment.objects.select_related("post").order_by("id"),
    ]
    for qs in shapes:
        compiled = compile_select(qs.query, orm.ops, orm.features)
        fetched = await run_fetch_all(orm, compiled.sql, compiled.params)
        assert compiled.layout is not None
        generated = rows._model_builders(compiled.layout, alias)[1](fetched)
        general = rows._make_row_builder(rows.AS_MODEL, alias, compiled)
        assert [_described(o) for o in generated] == [_described(general(r)) for r in fetched]
    # The path queries take is the generated one.
    compiled = compile_select(shapes[3].query, orm.ops, orm.features)
    built = rows.row_builders(compiled, rows.AS_MODEL, alias)[1]
    assert built.__code__.co_filename == "<covet rows Comment>"
