"""Static type pins for the ORM's public API (checked by mypy; nothing runs under pytest)."""

from __future__ import annotations

import datetime
import decimal
from typing import TYPE_CHECKING, Any, assert_type

from covet.db import Case, Count, Exists, F, Model, OuterRef, Q, Subquery, When, fields
from covet.db.manager import Manager
from covet.db.queryset import QuerySet

if TYPE_CHECKING:
    from covet.db.related import ManyRelatedManager, RelatedManager


class Writer(Model):
    name = fields.CharField(max_length=50)
    nickname = fields.CharField(max_length=50, null=True)
    age = fields.IntegerField(null=True)
    balance = fields.DecimalField(max_digits=10, decimal_places=2)
    joined = fields.DateTimeField(auto_now_add=True)

    # Reverse relations, declared for the type checker (covet installs them at runtime).
    articles: RelatedManager[Article]
    edited: RelatedManager[Article]


class Label(Model):
    name = fields.CharField(max_length=20)

    articles: ManyRelatedManager[Article]


class Article(Model):
    title = fields.CharField(max_length=100)
    writer = fields.ForeignKey(Writer, related_name="articles")
    editor = fields.ForeignKey(Writer, related_name="edited", null=True, on_delete="SET_NULL")
    labels = fields.ManyToManyField(Label, related_name="articles")


async def _pins(article: Article, writer: Writer) -> None:
    assert_type(Article.objects, Manager[Article])
    assert_type(Article.objects.filter(title="x"), QuerySet[Article])
    assert_type(
        Article.objects.filter(Q(title="x") | Q(title="y")).exclude(id=1), QuerySet[Article]
    )
    assert_type(await Article.objects.get(id=1), Article)
    assert_type(await Article.objects.filter(title="x"), list[Article])
    assert_type(await Article.objects.first(), Article | None)
    assert_type(await Article.objects.count(), int)
    assert_type(await Article.objects.exists(), bool)
    assert_type(await Article.objects.create(title="t", writer=writer), Article)
    assert_type(await Article.objects.get_or_create(title="t"), tuple[Article, bool])
    assert_type(await Article.objects.values("title"), list[dict[str, Any]])
    assert_type(await Article.objects.aggregate(n=Count("id")), dict[str, Any])
    assert_type(await Article.objects.filter(id=1).update(title=F("title") + "!"), int)
    assert_type(Article.objects.all()[:3], QuerySet[Article])
    has_article = Exists(Article.objects.filter(writer=OuterRef("pk")))
    assert_type(Writer.objects.filter(~has_article), QuerySet[Writer])
    latest = Subquery(Article.objects.filter(writer=OuterRef("pk")).values("title")[:1])
    assert_type(Writer.objects.annotate(latest=latest).order_by(latest.desc()), QuerySet[Writer])
    assert_type(Case(When(age__gte=18, then=True), default=False), Case)
    assert_type(writer.name, str)
    assert_type(writer.nickname, str | None)
    assert_type(writer.age, int | None)
    assert_type(writer.balance, decimal.Decimal)
    assert_type(writer.joined, datetime.datetime)
    assert_type(article.writer, Writer)
    assert_type(article.editor, Writer | None)
    assert_type(Writer.name, fields.CharField[str])
    assert_type(await writer.articles.create(title="t"), Article)
    assert_type(writer.articles.filter(title="t"), QuerySet[Article])
    assert_type(await writer.edited.all(), list[Article])
    assert_type(await writer.articles.get(id=1), Article)
    label = await Label.objects.create(name="x")
    assert_type(await label.articles.create(title="t", writer=writer), Article)
    assert_type(await label.articles.first(), Article | None)
    async for row in Article.objects.all():
        assert_type(row, Article)
    try:
        await Article.objects.get(id=1)
    except Article.DoesNotExist:
        pass
