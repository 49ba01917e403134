"""Model life-cycle signals and hooks on every backend: save, delete, QuerySet.delete()."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Model, ValidationError, fields
from covet.db.schema import create_all, drop_all
from covet.db.signals import Signal, post_delete, post_save, pre_delete, pre_save, receiver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from covet.db.database import Database


class SigAuthor(Model):
    name = fields.CharField(max_length=50)
    email = fields.CharField(max_length=100, unique=True, null=True)

    class Meta:
        table = "sig_author"
        unique_together = (("name", "email"),)

    def clean(self) -> None:
        if self.name == "nobody":
            raise ValidationError("Nobody cannot be an author.")
        if self.email is not None and "@" not in self.email:
            raise ValidationError({"email": ["An email needs an @."]})


class SigOther(Model):
    title = fields.CharField(max_length=50)

    class Meta:
        table = "sig_other"


class SigCounted(Model):
    label = fields.CharField(max_length=50)
    letters = fields.IntegerField(null=True)

    class Meta:
        table = "sig_counted"

    def clean(self) -> None:
        # Assigns after the fields were cleaned: a str the INSERT must still convert.
        self.__dict__["letters"] = str(len(self.label))


MODELS = [SigAuthor, SigOther, SigCounted]


@pytest.fixture
async def tables(database: Database) -> AsyncIterator[Database]:
    await drop_all(database, MODELS)
    await create_all(database, MODELS)
    yield database
    await drop_all(database, MODELS)


@pytest.fixture
def log() -> Iterator[list[tuple[Any, ...]]]:
    """Connect recording receivers to the four signals for SigAuthor; disconnect after."""
    events: list[tuple[Any, ...]] = []

    def on_pre_save(sender: Any, instance: Any, **kwargs: Any) -> None:
        events.append(("pre_save", sender, instance.pk, kwargs["update_fields"]))

    async def on_post_save(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        events.append(("post_save", sender, instance.pk, created))

    def on_pre_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
        events.append(("pre_delete", sender, instance.pk))

    async def on_post_delete(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
        events.append(("post_delete", sender, instance.pk, using))

    pre_save.connect(on_pre_save, sender=SigAuthor)
    post_save.connect(on_post_save, sender=SigAuthor)
    pre_delete.connect(on_pre_delete, sender=SigAuthor)
    post_delete.connect(on_post_delete, sender=SigAuthor)
    yield events
    assert pre_save.disconnect(on_pre_save, sender=SigAuthor)
    assert post_save.disconnect(on_post_save, sender=SigAuthor)
    assert pre_delete.disconnect(on_pre_delete, sender=SigAuthor)
    assert post_delete.disconnect(on_post_delete, sender=SigAuthor)
    assert not post_save.has_listeners(SigAuthor)


async def test_save_and_delete_send_in_order(tables, log):
    author = await SigAuthor.objects.create(name="Ann")
    pk = author.pk
    author.name = "Anne"
    await author.save(update_fields=["name"])
    await author.delete()
    assert log == [
        ("pre_save", SigAuthor, None, None),
        ("post_save", SigAuthor, pk, True),
        ("pre_save", SigAuthor, pk, ["name"]),
        ("post_save", SigAuthor, pk, False),
        ("pre_delete", SigAuthor, pk),
        ("post_delete", SigAuthor, pk, tables.alias),
    ]
    assert author.pk is None


async def test_sender_filters_and_bulk_operations_send_nothing(tables, log):
    await SigOther.objects.create(title="x")  # another model: not ours
    await SigAuthor.objects.bulk_create([SigAuthor(name="a"), SigAuthor(name="b")])
    assert await SigAuthor.objects.filter(name="a").update(name="c") == 1
    assert log == []


async def test_queryset_delete_sends_per_object(tables, log):
    a, b, c = [await SigAuthor.objects.create(name=n) for n in "abc"]
    log.clear()
    assert await SigAuthor.objects.filter(name__in=["a", "b"]).delete() == 2
    assert sorted(e[:3] for e in log) == sorted(
        [
            ("post_delete", SigAuthor, a.pk),
            ("post_delete", SigAuthor, b.pk),
            ("pre_delete", SigAuthor, a.pk),
            ("pre_delete", SigAuthor, b.pk),
        ]
    )
    assert [x.pk for x in await SigAuthor.objects.all()] == [c.pk]
    log.clear()
    assert await SigAuthor.objects.filter(pk=c.pk).values("name").delete() == 1
    assert [e[:3] for e in log] == [
        ("pre_delete", SigAuthor, c.pk),
        ("post_delete", SigAuthor, c.pk),
    ]
    assert await SigAuthor.objects.filter(name="nobody").delete() == 0


async def test_receiver_error_rolls_back_queryset_delete(tables):
    await SigAuthor.objects.create(name="keep")

    def refuse(sender: Any, instance: Any, **kwargs: Any) -> None:
        raise PermissionError(f"{instance.name} is protected")

    pre_delete.connect(refuse, sender=SigAuthor)
    try:
        with pytest.raises(PermissionError, match="keep is protected"):
            await SigAuthor.objects.all().delete()
    finally:
        pre_delete.disconnect(refuse, sender=SigAuthor)
    assert await SigAuthor.objects.count() == 1


async def test_pre_save_changes_are_validated_and_saved(tables):
    @receiver(pre_save, sender=SigAuthor, weak=False)
    def shout(sender: Any, instance: Any, **kwargs: Any) -> None:
        instance.name = instance.name.upper()

    try:
        author = await SigAuthor.objects.create(name="ann")
        assert (await SigAuthor.objects.get(pk=author.pk)).name == "ANN"
    finally:
        pre_save.disconnect(shout, sender=SigAuthor)
    other = await SigAuthor.objects.create(name="bob")
    assert other.name == "bob"


def test_weak_receivers_go_away_and_strong_ones_stay():
    signal = Signal("test")

    def make() -> Any:
        def handler(sender: Any, **kwargs: Any) -> None:
            pass

        return handler

    signal.connect(make())
    gc.collect()
    assert not signal.has_listeners()
    kept = make()
    signal.connect(kept, weak=False)
    signal.connect(kept, weak=False)  # twice: still one receiver
    assert len(signal._live(None)) == 1
    signal.connect(make(), dispatch_uid="x", weak=False)
    signal.connect(make(), dispatch_uid="x", weak=False)
    assert len(signal._live(None)) == 2
    assert signal.disconnect(dispatch_uid="x")
    assert signal.disconnect(kept)
    assert not signal.disconnect(kept)
    assert not signal.receivers_connected


def test_receiver_must_take_kwargs():
    with pytest.raises(TypeError, match=r"must accept \*\*kwargs"):
        post_save.connect(lambda sender: None)


async def test_clean_hook_and_validate_unique(tables):
    with pytest.raises(ValidationError) as info:
        await SigAuthor.objects.create(name="nobody", email="nope")
    assert info.value.error_dict == {"__all__": ["Nobody cannot be an author."]}
    with pytest.raises(ValidationError) as info:
        SigAuthor(name="x", email="nope").full_clean()
    assert info.value.error_dict == {"email": ["An email needs an @."]}
    with pytest.raises(ValidationError, match="Nobody"):
        await SigAuthor.objects.bulk_create([SigAuthor(name="ok"), SigAuthor(name="nobody")])
    assert await SigAuthor.objects.count() == 0

    ann = await SigAuthor.objects.create(name="Ann", email="ann@example.com")
    await ann.validate_unique()  # its own row is no duplicate
    twin = SigAuthor(name="Ann", email="ann@example.com")
    with pytest.raises(ValidationError) as info:
        await twin.validate_unique()
    assert info.value.error_dict == {
        "email": ["SigAuthor with this email already exists."],
        "__all__": ["SigAuthor with this name and email already exists."],
    }
    with pytest.raises(ValidationError) as info:
        await twin.validate_unique(exclude=["name"])  # and so the (name, email) pair
    assert list(info.value.error_dict) == ["email"]
    await SigAuthor(name="Ann", email=None).validate_unique()  # NULLs never collide


async def test_values_a_clean_method_assigns_are_converted_before_binding(tables):
    # save() and bulk_create() bind full_clean()'s values as they are only when no clean()
    # of the model's own could have assigned others (PostgreSQL refuses "5" for an integer).
    one = await SigCounted.objects.create(label="hello")
    assert one.__dict__["letters"] == "5"
    await SigCounted.objects.bulk_create([SigCounted(label="abc"), SigCounted(label="")])
    stored = await SigCounted.objects.order_by("id").values_list("label", "letters")
    assert stored == [("hello", 5), ("abc", 3), ("", 0)]
