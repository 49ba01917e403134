"""The shortcuts on the ORM's hot paths behave exactly like the general path they skip.

* ``filter(**kwargs)`` resolves keywords without building a ``Q`` tree;
* ``get(field=value)`` reuses the statement of the first call with the same
  base query and keywords, binding the new values;
* instances loaded from the default database get their ``_state`` on first use.
"""

from __future__ import annotations

import datetime
import decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Q, ValidationError, statements
from covet.db.compiler import compile_select
from covet.db.manager import Manager
from covet.db.testing import capture_queries
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
        found = await Post.objects.get(title="First", author=data["bob"])
        assert found.pk == data["same"].pk
        assert (await Post.objects.get(views__in=[3])).pk == data["same"].pk
        assert (await Post.objects.get(Q(title="Second"))).pk == data["second"].pk
    # isnull is not a comparison, a model instance or a list is not a plain value, Q is no
    # keyword: none of these statements is kept.
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
