"""The shortcuts on the ORM's hot paths behave exactly like the general path they skip.

* ``filter(**kwargs)`` resolves keywords without building a ``Q`` tree;
* ``get(field=value)`` and ``filter(field=value)`` reuse the statement of the
  first call with the same base query and keywords, binding the new values (a
  cached ``filter()`` builds its query only when something other than awaiting
  it needs one), and so does ``filter(field=value).first()``;
* instances loaded from the default database get their ``_state`` on first use.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Q, ValidationError, statements, transaction
from covet.db.compiler import compile_select
from covet.db.database import statement_epoch
from covet.db.manager import Manager
from covet.db.routing import set_routers
from covet.db.testing import capture_queries
from covet.exceptions import ImproperlyConfigured
from tests.db.models import Author, Post, Tag

if TYPE_CHECKING:
    from covet.db.database import Database
    from covet.db.queryset import QuerySet

UTC = datetime.UTC


@pytest.fixture
async def data(orm: Database) -> dict[str, Any]:
    ann = await Author.objects.create(name="Ann", email="ann@example.com", age=30)
    bob = await Author.objects.create(name="Bob", email="bob@example.com", age=41)
    first = await Post.objects.create(title="First", author=ann, views=10)
    second = await Post.objects.create(
        title="Second",
        author=bob,
        views=10,
        published_at=datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        rating=decimal.Decimal("4.50"),
    )
    same_title = await Post.objects.create(title="First", author=bob, views=3)
    return {"ann": ann, "bob": bob, "first": first, "second": second, "same": same_title}


@pytest.fixture(autouse=True)
def _no_remembered_statements() -> None:
    statements.get_statements.clear()
    statements.filter_statements.clear()
    statements.update_statements.clear()
    statements.first_statements.clear()
    statements.derived_statements.clear()
    statements.count_statements.clear()


def compiled(qs: QuerySet[Any], database: Database) -> tuple[str, list[Any]]:
    result = compile_select(qs.query, database.ops, database.features)
    return result.sql, result.params


# -- filter(**kwargs) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"title": "First"},
        {"title": "First", "views__gte": 3},
        {"views__in": [3, 10], "author__name": "Bob"},
        {"published_at": None, "title__icontains": "irs"},
        {"author": 1, "pk__lt": 100},
    ],
)
async def test_filter_kwargs_render_as_the_q_object(orm, kwargs):
    for method in ("filter", "exclude"):
        plain = getattr(Post.objects, method)(**kwargs)
        with_q = getattr(Post.objects, method)(Q(**kwargs))
        assert compiled(plain, orm) == compiled(with_q, orm)
        chained = getattr(Post.objects.filter(views__gt=0), method)(**kwargs)
        chained_q = getattr(Post.objects.filter(views__gt=0), method)(Q(**kwargs))
        assert compiled(chained, orm) == compiled(chained_q, orm)


async def test_filter_kwargs_check_values_at_call_time(orm):
    with pytest.raises(ValidationError):
        Post.objects.filter(views="many")
    with pytest.raises(ValidationError):
        Post.objects.exclude(pk="1 OR 1=1")


# -- filter(**kwargs) from the statement cache ---------------------------------------------------


async def test_repeated_filter_reuses_the_statement_with_new_values(data):
    ann, bob = data["ann"], data["bob"]
    async with capture_queries() as queries:
        by_ann = await Post.objects.filter(author_id=ann.pk)
        assert len(statements.filter_statements) == 1
        by_bob = await Post.objects.filter(author_id=bob.pk)
    assert [p.pk for p in by_ann] == [data["first"].pk]
    assert sorted(p.pk for p in by_bob) == sorted([data["second"].pk, data["same"].pk])
    assert queries.queries[0] == queries.queries[1]
    assert len(statements.filter_statements) == 1
    second = next(p for p in by_bob if p.pk == data["second"].pk)
    assert second.published_at == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.rating == decimal.Decimal("4.50")
    assert second._state.adding is False


async def test_cached_filter_keeps_the_keyword_order_irrelevant(data):
    for _ in range(2):
        one = await Post.objects.filter(title="First", views=3)
        other = await Post.objects.filter(views=10, title="First")
        assert [p.pk for p in one] == [data["same"].pk]
        assert [p.pk for p in other] == [data["first"].pk]
    assert len(statements.filter_statements) == 1


async def test_cached_filter_builds_its_query_when_chained(orm, data):
    await Post.objects.filter(title="First")  # remembered
    for _ in range(2):
        qs = Post.objects.filter(title="First")
        assert compiled(qs, orm) == compiled(Post.objects.filter(Q(title="First")), orm)
        assert await qs.count() == 2
        ordered = await qs.order_by("-views").values_list("views", flat=True)
        assert ordered == [10, 3]
        assert [p.pk for p in await qs.exclude(views=3)] == [data["first"].pk]
        assert [p.pk for p in await qs.order_by("views")[:1]] == [data["same"].pk]
        assert [p.pk async for p in qs.filter(author=data["bob"])] == [data["same"].pk]
        assert await qs.exists()
        inner = Post.objects.filter(title="Second").values("author_id")
        assert [a.pk for a in await Author.objects.filter(pk__in=inner)] == [data["bob"].pk]


async def test_cached_filter_checks_values_at_call_time(data):
    with pytest.raises(ValidationError) as general:
        Post.objects.filter(views="many")  # the general path: nothing is remembered
    assert len(statements.filter_statements) == 0
    await Post.objects.filter(views=3)
    assert len(statements.filter_statements) == 1
    with pytest.raises(ValidationError) as reused:
        Post.objects.filter(views="many")  # raised by filter(), before any await
    assert reused.value.error_dict == general.value.error_dict


async def test_cached_filter_binds_the_base_querysets_own_filters(data):
    ann, bob = data["ann"], data["bob"]
    manager = _ByAuthorManager(Post)
    manager.only_ann = True
    for _ in range(2):
        assert [p.pk for p in await ann.posts.filter(title="First")] == [data["first"].pk]
        assert [p.pk for p in await bob.posts.filter(title="First")] == [data["same"].pk]
        assert await ann.posts.filter(title="Second") == []
        assert [p.pk for p in await manager.filter(views=10)] == [data["first"].pk]
        popular = Post.objects.filter(views__gte=10)
        assert [p.pk for p in await popular.filter(title="First")] == [data["first"].pk]
        values = await Post.objects.values("title").filter(pk=data["second"].pk)
        assert values == [{"title": "Second"}]


async def test_filter_with_other_values_takes_the_general_path(data):
    for _ in range(2):
        assert len(await Post.objects.filter(published_at=None)) == 2
        assert len(await Post.objects.filter(views__in=[3])) == 1
        assert len(await Post.objects.filter(title__startswith="F")) == 2
        assert len(await Post.objects.exclude(title="First")) == 1
        assert len(await Post.objects.prefetch_related("tags").filter(title="Second")) == 1
    assert len(statements.filter_statements) == 0


async def test_filter_by_a_related_instance_reuses_the_statement(orm, data):
    ann, bob = data["ann"], data["bob"]
    async with capture_queries() as queries:
        for _ in range(2):
            by_ann = await Post.objects.filter(author=ann)
            by_bob = await Post.objects.filter(author=bob, views=10)
            assert [p.pk for p in by_ann] == [data["first"].pk]
            assert [p.pk for p in by_bob] == [data["second"].pk]
            assert _pk(await Post.objects.filter(author=bob).first()) == data["second"].pk
            assert (await Post.objects.get(author=bob, views=3)).pk == data["same"].pk
    assert len(statements.filter_statements) == 2
    assert len(statements.get_statements) == 1
    assert len(statements.first_statements) == 1
    general_sql, _ = compiled(Post.objects.filter(Q(author=ann)), orm)
    sql = [query.sql for query in queries]
    assert sql[0] == sql[4] == general_sql
    assert [list(q.params) for q in queries][:1] == [[ann.pk]]
    # A key value and an instance are two statements with the same rows.
    assert [p.pk for p in await Post.objects.filter(author=ann.pk)] == [data["first"].pk]


async def test_filter_by_an_instance_checks_it_as_the_general_path(data):
    ann = data["ann"]
    await Post.objects.filter(author=ann)
    await Post.objects.filter(author=ann)  # remembered
    assert len(statements.filter_statements) == 1
    for wrong in (data["first"], Author(name="Unsaved", email="u@example.com", age=1)):
        errors = []
        for _ in range(2):
            with pytest.raises(ValidationError) as info:
                Post.objects.filter(author=wrong)
            errors.append(info.value.error_dict)
        assert errors[0] == errors[1]


async def test_an_instance_compared_with_a_key_column_is_not_remembered(data):
    # filter(pk=post) compares the post's own key: the general path takes post.pk.
    for _ in range(2):
        assert [p.pk for p in await Post.objects.filter(pk=data["second"])] == [data["second"].pk]
        assert _pk(await Post.objects.filter(id=data["first"]).first()) == data["first"].pk
    assert len(statements.filter_statements) == 0


# -- filter(**kwargs).first() from the statement cache ------------------------------------------


def _pk(post: Post | None) -> Any:
    assert post is not None
    return post.pk


async def test_repeated_filter_first_reuses_its_statement_with_new_values(orm, data):
    ann, bob = data["ann"], data["bob"]
    missing = ann.pk + bob.pk + 100
    async with capture_queries() as queries:
        for _ in range(2):
            # By primary key when unordered: the lower pk of Bob's two posts.
            assert _pk(await Post.objects.filter(author_id=bob.pk).first()) == data["second"].pk
            assert _pk(await Post.objects.filter(author_id=ann.pk).first()) == data["first"].pk
            assert await Post.objects.filter(author_id=missing).first() is None
    assert len(statements.first_statements) == 1
    # Every call ran the statement the general path builds, with its own value.
    general_sql, general_params = compiled(
        Post.objects.filter(Q(author_id=bob.pk)).order_by("pk")[:1], orm
    )
    assert {query.sql for query in queries} == {general_sql}
    assert [list(query.params) for query in queries] == [
        [pk, *general_params[1:]] for pk in (bob.pk, ann.pk, missing) * 2
    ]


async def test_filter_first_from_the_cache_answers_as_the_general_path(data):
    bob = data["bob"]
    for _ in range(3):
        cached = await Post.objects.filter(author_id=bob.pk, views=3).first()
        general = await Post.objects.filter(Q(author_id=bob.pk, views=3)).first()
        assert cached is not None and general is not None
        assert (
            (cached.pk, cached.title) == (general.pk, general.title) == (data["same"].pk, "First")
        )
        assert cached._state.adding is False
        # An ordered base keeps its ordering.
        fewest = await Post.objects.order_by("views").filter(title="First").first()
        most = await Post.objects.order_by("-views").filter(title="First").first()
        assert (_pk(fewest), _pk(most)) == (data["same"].pk, data["first"].pk)
        values = await Post.objects.values("title").filter(author_id=bob.pk).first()
        assert values == {"title": "Second"}
    # One each: the keyword pair, the two orderings, values() by author.
    assert len(statements.first_statements) == 4


async def test_filter_first_checks_values_at_call_time(data):
    for _ in range(2):  # the filter's statement is remembered by the first call
        await Post.objects.filter(views=3).first()
    assert len(statements.first_statements) == 1
    with pytest.raises(ValidationError):
        await Post.objects.filter(views="many").first()


async def test_filter_first_is_relearned_after_the_statement_cache_is_cleared(data):
    assert _pk(await Post.objects.filter(views=10).first()) == data["first"].pk
    statements.filter_statements.clear()
    assert _pk(await Post.objects.filter(views=3).first()) == data["same"].pk
    assert _pk(await Post.objects.filter(views=10).first()) == data["first"].pk


# -- filter(**kwargs) chained with order_by(), a slice and count() ------------------------------


def _listed(qs: QuerySet[Any]) -> QuerySet[Any]:
    return qs.order_by("-views", "title")[:1]


async def test_chained_filter_reuses_derived_statements_with_new_values(orm, data):
    ann, bob = data["ann"], data["bob"]
    async with capture_queries() as queries:
        for _ in range(3):
            for author in (bob, ann):
                rows = await _listed(Post.objects.filter(author=author))
                general = await _listed(Post.objects.filter(Q(author=author)))
                assert [p.pk for p in rows] == [p.pk for p in general]
                assert all(p._state.adding is False for p in rows)
                ordered = Post.objects.filter(author=author).order_by("-views", "title")
                assert await ordered.count() == await Post.objects.filter(Q(author=author)).count()
    # The filter, its ordering and its slice; count() of the ordered filter.
    assert len(statements.filter_statements) == 1
    assert len(statements.derived_statements) == 2
    assert len(statements.count_statements) == 1
    # Each statement run was the general path's, with the same parameters.
    expected = [compiled(_listed(Post.objects.filter(Q(author=a))), orm) for a in (ann, bob)]
    ran = {(q.sql, tuple(q.params)) for q in queries}
    assert {(sql, tuple(params)) for sql, params in expected} <= ran
    counts = [q for q in queries if "COUNT" in q.sql.upper()]
    assert len({q.sql for q in counts}) == 1
    assert sorted({tuple(q.params) for q in counts}) == sorted({(ann.pk,), (bob.pk,)})


async def test_chained_filter_builds_its_query_when_anything_else_needs_it(orm, data):
    bob = data["bob"]
    for _ in range(2):
        chained = Post.objects.filter(author=bob).order_by("views")[:1]
        general = Post.objects.filter(Q(author=bob)).order_by("views")[:1]
        # .query replays the chain: the same SQL and parameters as the general path.
        assert compiled(chained, orm) == compiled(general, orm)
        assert [p.pk for p in await chained] == [data["same"].pk]
        # Calls the remembered statements do not cover go through the built query.
        titled = Post.objects.filter(author=bob).order_by("views").filter(title="Second")
        assert [p.pk for p in await titled] == [data["second"].pk]
        values = Post.objects.filter(author=bob).order_by("-views").values_list("title", flat=True)
        assert await values == ["Second", "First"]
        assert await Post.objects.filter(author=bob).order_by("views")[1:].count() == 1
        assert await Post.objects.filter(author=bob).order_by("views").exists()


async def test_chained_filter_checks_its_calls_as_the_general_path(data):
    from covet.db import FieldError

    for _ in range(2):
        await Post.objects.filter(views=3).order_by("title")
    for _ in range(2):
        with pytest.raises(FieldError):
            Post.objects.filter(views=3).order_by("nonexistent")
        with pytest.raises(ValueError, match="Negative"):
            Post.objects.filter(views=3).order_by("title")[-1:]
        with pytest.raises(ValidationError):
            Post.objects.filter(views="many").order_by("title")
        # A float equals an int in a key (1.0 == 1) but is no slice bound, whatever is cached.
        await Post.objects.filter(views=3).order_by("title")[0:1]
        for qs in (Post.objects.filter(views=3).order_by("title"), Post.objects.all()):
            with pytest.raises(TypeError, match="integers"):
                qs[0:1.0]
            with pytest.raises(TypeError, match="integers"):
                qs[True:]
    assert len(statements.derived_statements) == 2


async def test_chained_filter_update_and_first_keep_their_meaning(data):
    first, same = data["first"], data["same"]
    for _ in range(2):
        # first() of an ordered filter follows the ordering, not the primary key.
        top = await Post.objects.filter(title="First").order_by("views").first()
        assert _pk(top) == same.pk
        with pytest.raises(TypeError, match="sliced"):
            await Post.objects.filter(title="First").order_by("views")[:1].update(views=1)
    # An ordered filter's update() is the filter's, through the general path.
    assert await Post.objects.filter(pk=first.pk).order_by("views").update(views=7) == 1
    assert await Post.objects.filter(pk=first.pk).order_by("views").update(views=8) == 1
    assert (await Post.objects.get(pk=first.pk)).views == 8


async def test_chained_statements_are_relearned_after_the_cache_is_cleared(data):
    bob = data["bob"]
    for clear in (statements.filter_statements.clear, statements.derived_statements.clear):
        for _ in range(2):
            rows = await Post.objects.filter(author=bob).order_by("views")[:1]
            assert [p.pk for p in rows] == [data["same"].pk]
            assert await Post.objects.filter(author=bob).order_by("views").count() == 2
        clear()
    statements.count_statements.clear()
    assert await Post.objects.filter(author=bob).order_by("views").count() == 2


# -- filter(**kwargs).update(**values) from the statement cache -----------------------------------


async def _views(data: dict[str, Any]) -> dict[str, Any]:
    rows = dict(await Post.objects.values_list("id", "views"))
    return {name: rows[data[name].pk] for name in ("first", "second", "same")}


async def test_repeated_update_reuses_the_statement_with_new_values(data):
    first, same = data["first"], data["same"]
    async with capture_queries() as queries:
        # The first call remembers the filter, the second its UPDATE, the third reuses it.
        assert await Post.objects.filter(pk=first.pk).update(views=11) == 1
        assert statements.update_statements == {}
        assert await Post.objects.filter(pk=same.pk).update(views=12) == 1
        assert len(statements.update_statements) == 1
        assert await Post.objects.filter(pk=-1).update(views=13) == 0
        assert await Post.objects.filter(pk=first.pk).update(views=14) == 1
    assert len(set(queries.queries)) == 1
    assert len(statements.update_statements) == 1
    assert await _views(data) == {"first": 14, "second": 10, "same": 12}


async def test_cached_update_binds_the_filter_and_set_values_in_order(data):
    for views, rating in ((6, "9.75"), (7, "1.25"), (8, None)):  # the third from the cache
        # Two filter keywords, in either order, and two set values (one None).
        changed = await Post.objects.filter(views__gte=3, title="First").update(
            views=views, rating=None if rating is None else decimal.Decimal(rating)
        )
        assert changed == 2
        rows = await Post.objects.filter(title="First").values_list("views", "rating")
        expected = None if rating is None else decimal.Decimal(rating)
        assert sorted(rows) == [(views, expected), (views, expected)]
    assert len(statements.update_statements) == 1


async def test_cached_update_checks_values_as_the_general_path(data):
    first = data["first"]
    await Post.objects.filter(pk=first.pk).update(views=4)
    await Post.objects.filter(pk=first.pk).update(views=5)
    assert len(statements.update_statements) == 1
    with pytest.raises(ValidationError):
        await Post.objects.filter(pk=first.pk).update(views="many")
    with pytest.raises(ValidationError):
        await Post.objects.filter(pk=first.pk).update(views=None)  # not null
    assert (await _views(data))["first"] == 5


async def test_update_with_expressions_or_objects_is_not_remembered(data):
    from covet.db import F

    first, bob = data["first"], data["bob"]
    for _ in range(2):
        assert await Post.objects.filter(pk=first.pk).update(views=F("views") + 1) == 1
        assert await Post.objects.filter(pk=first.pk).update(author=bob) == 1
    assert statements.update_statements == {}
    assert (await _views(data))["first"] == 12
    assert (await Post.objects.get(pk=first.pk)).author_id == bob.pk


# -- get(**kwargs) ----------------------------------------------------------------------------


async def test_repeated_get_reuses_the_statement_with_new_values(data):
    async with capture_queries() as queries:
        first = await Post.objects.get(pk=data["first"].pk)
        assert len(statements.get_statements) == 1
        second = await Post.objects.get(pk=data["second"].pk)
    assert (first.title, second.title) == ("First", "Second")
    assert second.published_at == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.rating == decimal.Decimal("4.50")
    assert queries.queries[0] == queries.queries[1]
    assert len(statements.get_statements) == 1


async def test_reused_get_raises_the_same_errors(data):
    with pytest.raises(ValidationError) as general:
        await Post.objects.get(views="many")  # the general path: nothing is remembered
    assert len(statements.get_statements) == 0
    for _ in range(2):  # the general path, then the remembered statements
        with pytest.raises(Post.DoesNotExist, match="does not exist"):
            await Post.objects.get(pk=data["first"].pk + 1000)
        with pytest.raises(Post.MultipleObjectsReturned):
            await Post.objects.get(title="First")
        assert (await Post.objects.get(views=3)).pk == data["same"].pk
    assert len(statements.get_statements) == 3
    with pytest.raises(ValidationError) as reused:
        await Post.objects.get(views="many")
    assert reused.value.error_dict == general.value.error_dict == {"views": reused.value.messages}


async def test_get_binds_the_base_querysets_own_filters(data):
    ann, bob = data["ann"], data["bob"]
    for _ in range(2):
        assert (await ann.posts.get(title="First")).pk == data["first"].pk
        assert (await bob.posts.get(title="First")).pk == data["same"].pk
        with pytest.raises(Post.DoesNotExist):
            await ann.posts.get(title="Second")
        popular = Post.objects.filter(views__gte=10)
        assert (await popular.get(title="First")).pk == data["first"].pk
        with pytest.raises(Post.DoesNotExist):
            await Post.objects.filter(views__gte=11).get(title="First")


async def test_get_through_a_many_to_many_manager_binds_its_instance(data):
    red = await Tag.objects.create(name="red")
    blue = await Tag.objects.create(name="blue")
    await data["first"].tags.add(red, blue)
    await data["second"].tags.add(blue)
    for _ in range(2):
        assert (await data["first"].tags.get(name="red")).pk == red.pk
        assert (await data["second"].tags.get(name="blue")).pk == blue.pk
        with pytest.raises(Tag.DoesNotExist):
            await data["second"].tags.get(name="red")
        assert (await blue.posts.get(title="Second")).pk == data["second"].pk


async def test_get_on_a_values_queryset_returns_dicts_again(data):
    for _ in range(2):
        row = await Post.objects.values("title", "views").get(pk=data["second"].pk)
        assert row == {"title": "Second", "views": 10}
        pair = await Post.objects.values_list("title", flat=True).get(pk=data["first"].pk)
        assert pair == "First"


async def test_get_with_other_values_takes_the_general_path(data):
    for _ in range(2):
        found = await Post.objects.get(title="Second", published_at__isnull=False)
        assert found.pk == data["second"].pk
        found = await Post.objects.get(title="First", id=data["same"])
        assert found.pk == data["same"].pk
        assert (await Post.objects.get(views__in=[3])).pk == data["same"].pk
        assert (await Post.objects.get(Q(title="Second"))).pk == data["second"].pk
    # isnull is not a comparison, a model instance compared with a key column (not a
    # relation) or a list is not a plain value, Q is no keyword: none of these is kept.
    assert len(statements.get_statements) == 0


async def test_get_on_a_sliced_queryset_still_refuses(data):
    for _ in range(2):
        with pytest.raises(TypeError, match="sliced"):
            await Post.objects.all()[:1].get(pk=data["first"].pk)


class _ByAuthorManager(Manager[Post]):
    """A manager whose base query depends on a switch read at each call."""

    only_ann = False

    def get_queryset(self) -> QuerySet[Post]:
        qs = super().get_queryset()
        return qs.filter(author__name="Ann") if self.only_ann else qs


async def test_a_custom_managers_base_query_is_part_of_the_key(data):
    manager = _ByAuthorManager(Post)
    assert (await manager.get(pk=data["same"].pk)).title == "First"
    manager.only_ann = True
    with pytest.raises(Post.DoesNotExist):
        await manager.get(pk=data["same"].pk)
    assert (await manager.get(pk=data["first"].pk)).author_id == data["ann"].pk
    manager.only_ann = False
    assert (await manager.get(pk=data["same"].pk)).author_id == data["bob"].pk
    assert len(statements.get_statements) == 2


async def test_get_on_another_database_alias(data, make_database):
    replica = await make_database(alias="replica_hot")
    for _ in range(2):
        post = await Post.objects.using("replica_hot").get(pk=data["first"].pk)
        assert post._state.db == "replica_hot"
        assert post._state.adding is False
    assert replica.is_connected


# -- a default manager's get() remembered by keyword ------------------------------------------


async def test_a_default_manager_remembers_get_by_keyword_and_logs_it(data):
    first, second = data["first"], data["second"]
    async with capture_queries() as queries:
        for post in (first, second, first, second):
            assert (await Post.objects.get(pk=post.pk)).title == post.title
    remembered = Post.objects._remembered_gets
    assert remembered is not None
    assert remembered["pk"].epoch == statement_epoch.value  # (other keywords: earlier tests')
    assert len(queries) == 4  # the query log sees the remembered path too
    assert len(set(queries.queries)) == 1
    assert [q.params for q in queries][2:] == [[first.pk], [second.pk]]
    loaded = await Post.objects.get(pk=second.pk)
    assert loaded.published_at == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert loaded._state.db is None
    assert loaded._state.adding is False
    # The errors and messages of the general path.
    with pytest.raises(
        Post.DoesNotExist, match=r"^Post matching query does not exist \(filters: pk=0\)\.$"
    ):
        await Post.objects.get(pk=0)
    assert (await Post.objects.get(pk=str(first.pk))).title == "First"  # converted
    for bad in (True, 1.5, "x"):
        with pytest.raises(ValidationError):
            await Post.objects.get(pk=bad)
    for _ in range(3):
        with pytest.raises(Post.MultipleObjectsReturned, match="more than one Post"):
            await Post.objects.get(title="First")
    assert remembered["title"].epoch == statement_epoch.value


async def test_remembered_get_is_stale_after_the_statement_cache_is_cleared(data):
    for _ in range(2):
        await Post.objects.get(pk=data["first"].pk)
    remembered = Post.objects._remembered_gets
    assert remembered is not None
    entry = remembered["pk"]
    statements.get_statements.clear()
    assert entry.epoch != statement_epoch.value
    assert (await Post.objects.get(pk=data["second"].pk)).title == "Second"
    assert len(statements.get_statements) == 1  # derived and remembered again
    assert (await Post.objects.get(pk=data["first"].pk)).title == "First"
    assert remembered["pk"] is not entry
    assert remembered["pk"].epoch == statement_epoch.value


async def test_remembered_get_follows_routers_set_later(orm, data, make_database):
    await make_database(alias="replica_routed")
    pk = data["first"].pk

    async def served_by() -> list[str]:
        async with capture_queries() as queries:
            for _ in range(3):
                assert (await Post.objects.get(pk=pk)).title == "First"
        return [q.database for q in queries]

    assert await served_by() == [orm.alias] * 3
    epoch = statement_epoch.value

    class ToReplica:
        def db_for_read(self, model: type[Any], **hints: Any) -> str:
            return "replica_routed"

    set_routers([ToReplica()])
    try:
        assert statement_epoch.value != epoch
        assert await served_by() == ["replica_routed"] * 3
    finally:
        set_routers([])
    assert await served_by() == [orm.alias] * 3


async def test_remembered_get_is_stale_once_its_database_disconnects(orm, data):
    for _ in range(2):
        await Post.objects.get(pk=data["first"].pk)
    await orm.disconnect()
    try:
        with pytest.raises(ImproperlyConfigured, match="No database is connected"):
            await Post.objects.get(pk=data["first"].pk)
    finally:
        await orm.connect()
    for _ in range(2):  # the reconnected database, through its new pool
        assert (await Post.objects.get(pk=data["first"].pk)).title == "First"


async def test_remembered_get_runs_on_the_transactions_connection(orm, data):
    for _ in range(2):
        await Post.objects.get(pk=data["first"].pk)
    async with transaction():
        post = await Post.objects.create(title="Inside", author=data["ann"])
        assert (await Post.objects.get(pk=post.pk)).title == "Inside"  # not yet committed
        async with capture_queries() as queries:
            await Post.objects.get(pk=post.pk)
        assert len(queries) == 1
    stats = orm.pool_stats()
    assert stats.idle == stats.size  # every connection is back in the pool


async def test_remembered_get_waits_for_a_busy_pool(orm, data, make_database):
    small = await make_database(alias="small_pool", max_size=1, min_size=1, pool_only=True)
    posts = Post.objects.using("small_pool")
    for _ in range(2):
        await posts.get(pk=data["first"].pk)
    async with small.connection():  # the only connection is out: get() must wait for it
        waiting = asyncio.ensure_future(posts.get(pk=data["second"].pk))
        await asyncio.sleep(0.05)
        assert not waiting.done()
    assert (await waiting).title == "Second"
    assert small.pool_stats().idle == 1


# -- instances loaded without a state ---------------------------------------------------------


async def test_loaded_instances_have_the_state_of_a_saved_row(data):
    post = await Post.objects.get(pk=data["first"].pk)
    assert post._state.db is None
    assert post._state.adding is False
    assert post._state.cache == {}
    assert post._state is post._state  # made once, then kept
    post.views = 11
    await post.save()  # an UPDATE: a new row would fail on the primary key
    assert (await Post.objects.get(pk=post.pk)).views == 11
    assert await Post.objects.count() == 3


async def test_loaded_instances_keep_related_objects(data):
    posts = await Post.objects.select_related("author").filter(author=data["ann"])
    assert [p.author.name for p in posts] == ["Ann"]
    assert posts[0].author._state.adding is False
    fresh = Post(title="Third", author=data["ann"])
    assert fresh._state.adding is True


# -- plain-model rows become instances through a builder written per query shape ----------------


async def test_plain_rows_hold_every_column_converted_and_nothing_else(data):
    posts = {p.title + str(p.views): p for p in await Post.objects.filter(views__gte=0)}
    second = posts["Second10"]
    assert second.published_at == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.published_at.tzinfo == UTC  # the DateTimeField converter ran
    assert second.rating == decimal.Decimal("4.50")
    assert posts["First10"].published_at is None  # NULL skips the converter
    assert posts["First10"].rating is None
    columns = {f.attname for f in Post._meta.concrete_fields}
    for post in posts.values():
        assert set(post.__dict__) == columns
    values = await Post.objects.filter(views__gte=0).values(*sorted(columns))
    assert sorted(values, key=lambda v: v["id"]) == sorted(
        (p.__dict__ for p in posts.values()), key=lambda v: v["id"]
    )


async def test_plain_rows_ignore_columns_appended_for_distinct_ordering(data):
    posts = await Post.objects.filter(views__gte=0).order_by("author__name", "pk").distinct()
    assert [p.title for p in posts] == ["First", "Second", "First"]
    columns = {f.attname for f in Post._meta.concrete_fields}
    assert all(set(p.__dict__) == columns for p in posts)


async def test_plain_rows_of_a_deferred_queryset_hold_the_loaded_columns(data):
    post = await Post.objects.only("title").get(pk=data["second"].pk)
    assert post.__dict__.keys() == {"id", "title"}
    assert post.title == "Second"


async def test_plain_rows_from_another_alias_carry_their_state(data, make_database):
    await make_database(alias="replica_rows")
    posts = await Post.objects.using("replica_rows").filter(views=10).order_by("pk")
    assert [p.title for p in posts] == ["First", "Second"]
    assert {p._state.db for p in posts} == {"replica_rows"}
    assert posts[0]._state is not posts[1]._state
    assert posts[1].published_at == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


# -- integer keys bound as they are ---------------------------------------------------------------


async def test_remembered_integer_keys_bind_ints_as_they_are_and_check_the_rest(data):
    ann = data["ann"]
    for pk in (data["first"].pk, str(data["first"].pk)):  # an int as is, a str converted
        assert (await Post.objects.get(pk=pk)).title == "First"
        assert [p.title for p in await Post.objects.filter(author_id=ann.pk)] == ["First"]
    assert [p.title for p in await Post.objects.filter(author_id=str(ann.pk))] == ["First"]
    statement = next(iter(statements.get_statements.values()))
    assert statement[2] == (True,)  # the primary key binds an int as it is
    for bad in (True, 1.5, "x"):  # what get_db_prep_value() refuses, refused alike
        with pytest.raises(ValidationError):
            await Post.objects.get(pk=bad)
        with pytest.raises(ValidationError):
            await Post.objects.filter(author_id=bad)
    assert await Post.objects.filter(views=10).count() == 2


def test_only_plain_integer_fields_bind_ints_as_they_are(orm):
    from covet.db.statements import _binds_ints_as_is

    ops = orm.ops
    assert _binds_ints_as_is(Post._meta.pk, ops)
    assert _binds_ints_as_is(Post._meta.get_field("author"), ops)
    assert _binds_ints_as_is(Post._meta.get_field("views"), ops)
    assert not _binds_ints_as_is(Post._meta.get_field("title"), ops)
    assert not _binds_ints_as_is(Post._meta.get_field("rating"), ops)
    assert not _binds_ints_as_is(Post._meta.get_field("published_at"), ops)
