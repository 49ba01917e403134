"""ArrayField: lookups on PostgreSQL, a clear capability error elsewhere."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from covet.db import FieldError, Model, ValidationError, fields
from covet.db.exceptions import NotSupportedError
from covet.db.models import get_model, registered_models
from covet.db.schema import build_metadata, create_all, create_ddl, drop_all, expand_models
from covet.db.testing import isolated_models
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database

UTC = datetime.UTC


# Only PostgreSQL can create Shirt's table. Registered, it would make any later
# create_all() without a model list fail on SQLite and MySQL, in whichever test module
# runs after this one; isolated_models() keeps it out of the registry (see
# test_an_isolated_model_stays_out_of_create_all below).
with isolated_models():

    class Shirt(Model):
        name = fields.CharField(max_length=20)
        tags = fields.ArrayField(fields.CharField(max_length=10), size=4, index=True)
        sizes = fields.ArrayField(fields.IntegerField(), null=True)
        seen = fields.ArrayField(fields.DateTimeField(), null=True)

        class Meta:
            table = "test_array_shirt"


@pytest_asyncio.fixture(loop_scope="session")
async def shirts(database: Database) -> AsyncIterator[Database]:
    await drop_all(database, [Shirt])
    await create_all(database, [Shirt])
    when = datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)
    await Shirt.objects.create(name="a", tags=["red", "big"], sizes=[1, 2, 3], seen=[when])
    await Shirt.objects.create(name="b", tags=["blue"], sizes=[2], seen=[])
    await Shirt.objects.create(name="c", tags=[], sizes=None)
    yield database
    await drop_all(database, [Shirt])


async def names(**kwargs: Any) -> list[str]:
    return [s.name for s in await Shirt.objects.filter(**kwargs).order_by("name")]


@pytest.mark.requires("supports_array_field")
async def test_round_trip(shirts: Database) -> None:
    a = await Shirt.objects.get(name="a")
    assert a.tags == ["red", "big"]
    assert a.sizes == [1, 2, 3]
    assert a.seen == [datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)]
    assert (await Shirt.objects.get(name="c")).sizes is None
    await Shirt.objects.bulk_create(
        [Shirt(name="d", tags=["x"], sizes=[7]), Shirt(name="e", tags=[], sizes=None)]
    )
    assert [s.sizes for s in await Shirt.objects.filter(name__in=["d", "e"]).order_by("name")] == [
        [7],
        None,
    ]
    await Shirt.objects.filter(name="d").update(tags=["y", "z"])
    assert (await Shirt.objects.get(name="d")).tags == ["y", "z"]
    await Shirt.objects.filter(name__in=["d", "e"]).delete()


@pytest.mark.requires("supports_array_field")
async def test_containment_and_overlap(shirts: Database) -> None:
    assert await names(tags__contains=["red"]) == ["a"]
    assert await names(tags__contains=[]) == ["a", "b", "c"]
    assert await names(tags__contained_by=["red", "big", "blue"]) == ["a", "b", "c"]
    assert await names(tags__contained_by=["blue"]) == ["b", "c"]
    assert await names(tags__overlap=["blue", "big"]) == ["a", "b"]
    assert await names(sizes__overlap=[3, 9]) == ["a"]
    assert await names(tags=["blue"]) == ["b"]


@pytest.mark.requires("supports_array_field")
async def test_len_and_index(shirts: Database) -> None:
    assert await names(tags__len=0) == ["c"]
    assert await names(tags__len__gte=1) == ["a", "b"]
    assert await names(sizes__len__in=[1, 3]) == ["a", "b"]
    assert await names(tags__0="blue") == ["b"]
    assert await names(tags__1="big") == ["a"]
    assert await names(sizes__0__gt=1) == ["b"]
    rows = await Shirt.objects.exclude(tags__0="blue").order_by("name")
    assert [s.name for s in rows] == ["a", "c"]  # c has no element 0: not "blue"


@pytest.mark.requires("supports_array_field")
async def test_values_are_checked(shirts: Database) -> None:
    with pytest.raises(ValidationError):
        await Shirt.objects.create(name="d", tags=["a", "b", "c", "d", "e"])  # size=4
    with pytest.raises(ValidationError):
        await Shirt.objects.create(name="d", tags="red")
    with pytest.raises(FieldError, match="list of values"):
        await names(tags__contains="red")
    with pytest.raises(FieldError, match="Use an index"):
        await names(tags__first="red")


async def test_other_databases_refuse_it_clearly(database: Database) -> None:
    if database.features.supports_array_field:
        pytest.skip("this database has array columns")
    with pytest.raises(NotSupportedError, match=r"Shirt.tags is an ArrayField"):
        await create_all(database, [Shirt])
    with pytest.raises(NotSupportedError, match="only PostgreSQL supports"):
        await Shirt.objects.filter(tags=["x"])
    with pytest.raises(NotSupportedError, match="only PostgreSQL supports"):
        await Shirt.objects.create(name="x", tags=["a"])
    with pytest.raises(NotSupportedError, match="only PostgreSQL supports"):
        await Shirt.objects.bulk_create([Shirt(name="x", tags=["a"])])
    with pytest.raises(NotSupportedError, match="ArrayField"):
        await Shirt.objects.filter(tags__len=1)
    with pytest.raises(NotSupportedError, match="ArrayField"):
        await Shirt.objects.filter(tags__overlap=["x"])


def test_gin_index_and_column_type() -> None:
    import importlib

    dialect = importlib.import_module("sqlalchemy.dialects.postgresql").dialect()
    ddl = create_ddl(build_metadata([Shirt]), dialect, if_not_exists=False)
    assert "tags VARCHAR(10)[] NOT NULL" in ddl[0]
    assert "sizes INTEGER[]" in ddl[0]
    assert ddl[1] == "CREATE INDEX ix_test_array_shirt_tags ON test_array_shirt USING gin (tags)"


def test_bad_definitions() -> None:
    with pytest.raises(ImproperlyConfigured, match="scalar field instance"):
        fields.ArrayField(fields.CharField)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="JSONField"):
        fields.ArrayField(fields.JSONField())
    with pytest.raises(ImproperlyConfigured, match="positive int"):
        fields.ArrayField(fields.IntegerField(), size=0)


def test_model_schema_types_arrays_as_lists() -> None:
    pydantic = pytest.importorskip("pydantic")
    from covet.db.schemas import model_schema

    schema = model_schema(Shirt)
    ok = schema(id=1, name="a", tags=["red"], sizes=None, seen=None)
    assert ok.tags == ["red"]
    with pytest.raises(pydantic.ValidationError):
        schema(id=1, name="a", tags=["a", "b", "c", "d", "e"], sizes=None, seen=None)  # size=4
    with pytest.raises(pydantic.ValidationError):
        schema(id=1, name="a", tags=[{"x": 1}], sizes=None, seen=None)


def test_an_isolated_model_stays_out_of_create_all() -> None:
    # Shirt works when named (the fixture above creates it on every backend that can),
    # but create_all() with no model list, build_metadata() and get_model() do not see it.
    assert Shirt not in registered_models()
    assert Shirt not in expand_models(None)  # what create_all() with no list creates
    with pytest.raises(LookupError):
        get_model("Shirt")
    assert "test_array_shirt" in build_metadata([Shirt]).tables
