"""Custom managers and QuerySet classes on every backend: from_queryset, as_manager, chaining.

Type checkers see ``Model.objects`` as a plain ``Manager[Model]``: the methods a custom
QuerySet adds are found at runtime only (Django needs the django-stubs mypy plugin for
the same), hence the ``attr-defined`` ignores below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Model, fields
from covet.db.manager import Manager, ManagerDescriptor
from covet.db.queryset import QuerySet
from covet.db.schema import create_all, drop_all

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database


class ArticleQuerySet(QuerySet[Any]):
    def published(self) -> QuerySet[Any]:
        return self.filter(published=True)

    def titled(self, prefix: str) -> QuerySet[Any]:
        return self.filter(title__startswith=prefix)


class ArticleManager(Manager.from_queryset(ArticleQuerySet)):  # type: ignore[misc]
    def __init__(self, *, label: str = "articles") -> None:
        super().__init__()
        self.label = label

    async def publish_all(self) -> int:
        return int(await self.update(published=True))


class DraftManager(Manager[Any]):
    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().filter(published=False)


class Article(Model):
    title = fields.CharField(max_length=50)
    published = fields.BooleanField(default=False)

    objects = ArticleManager(label="all articles")
    drafts = DraftManager()
    qs_objects = ArticleQuerySet.as_manager()

    class Meta:
        table = "mgr_article"
        ordering = ("title",)


@pytest.fixture
async def tables(database: Database) -> AsyncIterator[Database]:
    await drop_all(database, [Article])
    await create_all(database, [Article])
    await Article.objects.bulk_create(
        [
            Article(title="alpha", published=True),
            Article(title="beta"),
            Article(title="alps", published=False),
        ]
    )
    yield database
    await drop_all(database, [Article])


def test_managers_are_bound_per_model_and_keep_their_attributes():
    assert isinstance(Article.__dict__["objects"], ManagerDescriptor)
    assert Article.objects.model is Article
    assert Article.objects.label == "all articles"
    assert isinstance(Article.objects, ArticleQuerySet)
    assert type(Article.objects.all()) is ArticleQuerySet
    chained = Article.qs_objects.filter(title="x").published()  # type: ignore[attr-defined]
    assert type(chained) is ArticleQuerySet
    with pytest.raises(TypeError):
        Manager.from_queryset(int)  # type: ignore[arg-type]


async def test_custom_queryset_methods_chain_both_ways(tables):
    assert [a.title for a in await Article.objects.published()] == ["alpha"]
    assert [a.title for a in await Article.objects.titled("al").published()] == ["alpha"]
    assert [a.title for a in await Article.objects.filter(published=False).titled("al")] == ["alps"]
    by_title = Article.qs_objects.titled("al").order_by("-title")  # type: ignore[attr-defined]
    assert [a.title for a in await by_title] == [
        "alps",
        "alpha",
    ]
    assert await Article.objects.titled("al").count() == 2
    assert (await Article.objects.published().get(title="alpha")).published


async def test_narrowing_manager_and_manager_methods(tables):
    assert [a.title for a in await Article.drafts.all()] == ["alps", "beta"]
    assert await Article.drafts.count() == 2
    assert (await Article.drafts.get(title="beta")).title == "beta"
    assert await Article.drafts.filter(title="alpha").exists() is False
    assert await Article.objects.publish_all() == 3
    assert await Article.drafts.count() == 0
