"""Abstract base models and mixins on every backend: fields, Meta, managers, hooks."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from covet.db import Model, fields
from covet.db.manager import Manager, ManagerDescriptor
from covet.db.schema import build_metadata, create_all, drop_all
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database
    from covet.db.queryset import QuerySet


class TimestampMixin:
    """A plain mixin (not a model) lending a field and a method."""

    created_at = fields.DateTimeField(auto_now_add=True)

    def age(self, now: datetime.datetime) -> datetime.timedelta:
        created: datetime.datetime = self.created_at
        return now - created


class VisibleManager(Manager[Any]):
    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().filter(hidden=False)


class Content(TimestampMixin, Model):
    title = fields.CharField(max_length=50)
    hidden = fields.BooleanField(default=False)
    rank = fields.IntegerField(default=0)

    # ManagerDescriptor(...) is what ``objects = VisibleManager()`` becomes at runtime;
    # spelled out, it also satisfies type checkers (Model declares ``objects`` so).
    objects: ClassVar[ManagerDescriptor[VisibleManager]] = ManagerDescriptor(VisibleManager())
    everything: ClassVar[ManagerDescriptor[Manager[Any]]] = ManagerDescriptor(Manager())

    class Meta:
        abstract = True
        ordering: tuple[str, ...] = ("-rank", "title")
        indexes = (("rank", "title"),)

    def __str__(self) -> str:
        return self.title


class Page(Content):
    """Inherits fields, Meta (ordering, indexes) and managers."""

    body = fields.TextField(default="")

    class Meta:
        table = "inh_page"


class Note(Content):
    """Declares its own Meta extending the base's: keeps the ordering, adds a table."""

    class Meta(Content.Meta):
        table = "inh_note"
        ordering: tuple[str, ...] = ("title",)


class Snippet(Content):
    """Declares no Meta at all: inherits everything but the table name."""


MODELS = [Page, Note, Snippet]


@pytest.fixture
async def tables(database: Database) -> AsyncIterator[Database]:
    await drop_all(database, MODELS)
    await create_all(database, MODELS)
    yield database
    await drop_all(database, MODELS)


def test_fields_and_meta_are_inherited():
    assert [f.name for f in Page._meta.concrete_fields] == [
        "id",
        "created_at",
        "title",
        "hidden",
        "rank",
        "body",
    ]
    assert Page._meta.fields_map["title"] is not Note._meta.fields_map["title"]
    assert Page._meta.fields_map["title"].model is Page
    # An own plain Meta replaces the base's (as in Django) ...
    assert Page._meta.ordering == ()
    # ... one subclassing the base's Meta extends it, and no Meta at all inherits it.
    assert Note._meta.ordering == ("title",)
    assert Note._meta.indexes == (("rank", "title"),)
    assert not Note._meta.abstract
    assert Snippet._meta.ordering == ("-rank", "title")
    assert Snippet._meta.indexes == (("rank", "title"),)
    assert Snippet._meta.table == "snippet"
    indexed = {
        tuple(c.name for c in index.columns)
        for index in build_metadata([Snippet]).tables["snippet"].indexes
    }
    assert ("rank", "title") in indexed


def test_concrete_bases_are_refused():
    with pytest.raises(ImproperlyConfigured, match="Make the base abstract"):

        class Child(Page):  # pyright: ignore[reportUnusedClass]
            pass


async def test_inherited_managers_and_mixin_fields_work(tables):
    await Snippet.objects.bulk_create(
        [
            Snippet(title="b", rank=1),
            Snippet(title="a", rank=1),
            Snippet(title="top", rank=9),
            Snippet(title="secret", hidden=True, rank=5),
        ]
    )
    assert [str(s) for s in await Snippet.objects.all()] == ["top", "a", "b"]
    assert await Snippet.everything.count() == 4
    assert Snippet.objects.model is Snippet
    assert Note.objects.model is Note
    note = await Note.objects.create(title="n")
    assert note.created_at is not None
    fetched = await Note.objects.get(pk=note.pk)
    assert fetched.age(fetched.created_at) == datetime.timedelta(0)
    await Page.objects.create(title="p", body="text")
    assert [p.body for p in await Page.everything.all()] == ["text"]


async def test_a_shared_manager_template_remembers_get_per_model(tables):
    # Page, Note and Snippet each get a copy of the one Manager() template: the get()
    # statements each copy remembers (by keyword name) are its own model's.
    page = await Page.objects.create(title="p")
    note = await Note.objects.create(title="n")
    assert page.pk == note.pk
    for _ in range(3):
        assert isinstance(await Page.everything.get(pk=page.pk), Page)
        found = await Note.everything.get(pk=note.pk)
        assert isinstance(found, Note)
        assert found.title == "n"
        with pytest.raises(Snippet.DoesNotExist):
            await Snippet.everything.get(pk=page.pk)
    assert Page.everything._remembered_gets is not Note.everything._remembered_gets
