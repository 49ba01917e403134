"""order_by() on JSON key paths: typed values, the same order on every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet.db import FieldError, Model, fields
from covet.db.schema import create_all, drop_all
from covet.db.testing import isolated_models
from tests.db.models import Everything

if TYPE_CHECKING:
    from covet.db.database import Database

pytestmark = pytest.mark.usefixtures("orm")

# Numbers order numerically (9 < 12.5 < 100: as text "100" would come first), then
# strings, then booleans, then the rest (JSON null, no such key, SQL NULL, an object).
PRICES: dict[str, Any] = {
    "a": {"price": 12.5, "owner": {"name": "Cy"}},
    "b": {"price": 9, "owner": {"name": "Al"}},
    "c": {"price": 100, "owner": {"name": "Bo"}},
    "d": {"price": "10"},
    "e": {"price": "9"},
    "f": {"price": True},
    "g": {"price": False},
    "h": {"price": None},
    "i": {"other": 1},
    "j": None,
    "k": {"price": {"x": 1}},
}
with isolated_models():

    class Priced(Model):
        data = fields.JSONField(null=True)

        class Meta:
            table = "test_json_priced"
            ordering = ("-data__price", "id")


TYPED = ["b", "a", "c", "d", "e", "g", "f"]
REST = ["h", "i", "j", "k"]


async def make() -> None:
    await Everything.objects.bulk_create([Everything(char=k, data=v) for k, v in PRICES.items()])


async def chars(*ordering: Any, reverse: bool = False) -> list[str]:
    qs = Everything.objects.order_by(*ordering)
    if reverse:
        qs = qs.reverse()
    return [row.char or "" for row in await qs]


async def test_ascending_orders_by_type_then_value(database: Database) -> None:
    await make()
    assert await chars("data__price", "char") == TYPED + REST


async def test_descending_is_the_exact_reverse(database: Database) -> None:
    await make()
    assert await chars("-data__price", "char") == REST + TYPED[::-1]
    assert await chars("data__price", "char", reverse=True) == REST[::-1] + TYPED[::-1]


async def test_nested_key_path_and_values(database: Database) -> None:
    await make()
    ordered = await chars("-data__owner__name", "char")
    # Those without an owner name first (descending), by char; then Cy, Bo, Al.
    assert ordered[-3:] == ["a", "c", "b"]
    rows = await (
        Everything.objects.filter(data__has_key="owner")
        .order_by("data__owner__name")
        .values("char", "data__owner__name")
    )
    assert rows == [
        {"char": "b", "data__owner__name": "Al"},
        {"char": "c", "data__owner__name": "Bo"},
        {"char": "a", "data__owner__name": "Cy"},
    ]


async def test_key_path_ordering_with_slicing_and_first(database: Database) -> None:
    await make()
    assert [r.char for r in await Everything.objects.order_by("data__price")[:3]] == TYPED[:3]
    first = await Everything.objects.order_by("-data__price", "char").first()
    assert first is not None
    assert first.char == "h"


async def test_unknown_names_still_fail(database: Database) -> None:
    with pytest.raises(FieldError):
        Everything.objects.order_by("nope")
    with pytest.raises(FieldError):
        Everything.objects.order_by("char__price")  # not a JSONField


async def test_meta_ordering_takes_key_paths(database: Database) -> None:
    await drop_all(database, [Priced])
    await create_all(database, [Priced])
    try:
        for doc in ({"price": 2}, {"price": 10}, None, {"price": "x"}):
            await Priced.objects.create(data=doc)
        assert [p.data for p in await Priced.objects.all()] == [
            None,
            {"price": "x"},
            {"price": 10},
            {"price": 2},
        ]
        last = await Priced.objects.last()
        assert last is not None
        assert last.data == {"price": 2}
    finally:
        await drop_all(database, [Priced])
