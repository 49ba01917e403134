"""Model declaration, instances and validation (mostly no database needed)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, cast
from unittest.mock import ANY

import pytest

from covet.db import Model, ObjectDoesNotExist, ValidationError, fields
from covet.db.models import get_model, snake_case
from covet.exceptions import ImproperlyConfigured
from tests.db.models import Author, Defaults, Everything, Post, Tag

if TYPE_CHECKING:
    from covet.db.database import Database


class TimeStamped(Model):
    created = fields.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class BlogEntry(TimeStamped):
    headline = fields.CharField(max_length=10)

    class Meta:
        ordering = ("-headline",)


class Titled(Model):
    title = fields.CharField(max_length=20)

    def __str__(self) -> str:
        return self.title


def test_table_names_and_automatic_primary_key():
    assert snake_case("BlogEntry") == "blog_entry"
    assert snake_case("HTTPRequestLog") == "http_request_log"
    assert BlogEntry._meta.table == "blog_entry"
    assert Post._meta.table == "posts"
    assert BlogEntry._meta.pk.name == "id"
    assert [f.name for f in BlogEntry._meta.concrete_fields] == ["id", "created", "headline"]
    assert BlogEntry._meta.ordering == ("-headline",)
    assert not hasattr(TimeStamped, "objects") or TimeStamped._meta.abstract


def test_registry_resolves_string_references():
    assert get_model("tests.db.models.Tag") is Tag
    assert get_model("Tag").__name__ == "Tag"  # the latest model of that name
    assert cast(Any, Post._meta.get_field("tags")).related_model is Tag
    with pytest.raises(LookupError, match="No model named"):
        get_model("Nope")


def test_each_model_has_its_own_exceptions():
    assert issubclass(Author.DoesNotExist, ObjectDoesNotExist)
    assert Author.DoesNotExist is not Post.DoesNotExist
    assert Author.DoesNotExist.__qualname__ == "Author.DoesNotExist"


def test_unknown_kwargs_are_rejected_by_name():
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['colour', 'x'\]"):
        Author(name="a", colour="red", x=1)
    with pytest.raises(TypeError, match="many-to-many"):
        Post(title="t", tags=[])


def test_defaults_fk_id_and_repr():
    post = Post(title="t", author_id=3)
    assert post.views == 0 and post.body == "" and post.published_at is None
    assert post.author_id == 3
    assert repr(post) == "<Post: id=None>"
    assert repr(Titled(title="hello", id=4)) == "<Titled: hello>"


def test_a_related_object_given_to_the_constructor_is_readable_at_once():
    ann = Author(name="Ann", email="ann@example.com", id=5)
    post = Post(title="t", author=ann)
    assert post.author_id == 5
    assert post.author is ann  # no RelationNotLoaded before saving
    assert Post(title="t", author=None).author is None


def test_column_keywords_and_other_keywords_build_the_same_instance():
    # Only column attributes: Model.__init__'s fast path; with pk= (or author=): the general one.
    fast = Post(title="t", author_id=7)
    general = Post(title="t", author_id=7, pk=None)
    assert fast.__dict__.keys() == general.__dict__.keys()
    assert next(iter(fast.__dict__)) == "_state"
    assert {k: v for k, v in fast.__dict__.items() if k != "_state"} == {
        k: v for k, v in general.__dict__.items() if k != "_state"
    }
    assert fast._state.adding is True and fast._state.db is None
    assert fast._state is not Post(title="u")._state
    assert Post(pk=5, title="t").__dict__ == {**Post(id=5, title="t").__dict__, "_state": ANY}
    assert Post(views=None).views is None  # a given None is kept, not replaced by the default


def test_callable_defaults_run_per_instance():
    one, two = Defaults(), Defaults(counter=1)
    assert one.labels == ["new"] and one.labels is not two.labels
    assert one.token != two.token
    assert (one.counter, two.counter, one.state) == (5, 1, "draft")
    assert one.created is None  # auto_now_add fills it in pre_save(), not __init__


def test_equality_and_hash():
    a1, a2, b = Author(id=1, name="a"), Author(id=1, name="other"), Author(id=2)
    assert a1 == a2 and a1 != b and hash(a1) == hash(a2)
    assert Author(id=1) != Tag(id=1)
    assert Author() != Author()
    with pytest.raises(TypeError, match="unhashable"):
        hash(Author())


def test_full_clean_reports_every_bad_field():
    entry = Everything(char="x" * 50, small=10**6, dec="abc", flag="yes")
    with pytest.raises(ValidationError) as info:
        entry.full_clean()
    errors = info.value.error_dict
    assert set(errors) == {"char", "small", "dec", "flag"}
    assert "at most 20 characters" in errors["char"][0]
    post = Post(title=None)
    with pytest.raises(ValidationError) as info:
        post.full_clean()
    assert "cannot be null" in info.value.error_dict["title"][0]
    assert "author" in info.value.error_dict


def test_validators_run():
    def no_spaces(value: str) -> None:
        if " " in value:
            raise ValueError("No spaces allowed.")

    class Slugged(Model):
        slug = fields.CharField(max_length=20, validators=[no_spaces])

    with pytest.raises(ValidationError, match="No spaces allowed"):
        Slugged(slug="a b").full_clean()
    Slugged(slug="ab").full_clean()


def test_clean_normalises_values():
    entry = Everything(
        moment=datetime.datetime(
            2024, 1, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
        dec="1.5",
    )
    entry.full_clean()
    assert entry.moment is not None
    assert entry.moment.tzinfo is datetime.UTC and entry.moment.hour == 0
    assert str(entry.dec) == "1.5"


def test_bad_declarations_fail_clearly():
    with pytest.raises(ImproperlyConfigured, match="Unknown Meta option"):
        type("Bad1", (Model,), {"__module__": __name__, "Meta": type("Meta", (), {"tabel": "x"})})
    with pytest.raises(ImproperlyConfigured, match="concrete model"):
        type("Bad2", (Author,), {"__module__": __name__})
    with pytest.raises(ImproperlyConfigured, match="SET_NULL needs null=True"):
        fields.ForeignKey(Author, on_delete="SET_NULL")
    with pytest.raises(ImproperlyConfigured, match="Invalid on_delete"):
        fields.ForeignKey(Author, on_delete="EXPLODE")
    with pytest.raises(ImproperlyConfigured, match="max_digits"):
        fields.DecimalField(max_digits=2, decimal_places=3)
    with pytest.raises(ImproperlyConfigured, match="Invalid db_column"):
        fields.CharField(max_length=3, db_column="a b")


def test_manager_is_class_only():
    assert repr(Author.objects) == "<Manager for Author>"
    with pytest.raises(AttributeError, match="not accessible"):
        _ = Author().objects


async def test_save_validates_before_sending(orm: Database):
    with pytest.raises(ValidationError):
        await Author(name="x" * 101, email="e@example.com").save()
    assert await Author.objects.count() == 0
    author = Author(name="ok", email="e@example.com")
    await author.save()
    defaults = await Defaults.objects.create()
    assert defaults.created is not None
