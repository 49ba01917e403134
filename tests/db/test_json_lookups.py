"""JSONField key paths and containment on every backend (tests/db/models.Everything.data)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import FieldError, Q
from tests.db.models import Everything

if TYPE_CHECKING:
    from covet.db.database import Database

pytestmark = pytest.mark.usefixtures("orm")

DOCS: dict[str, Any] = {
    "ann": {"owner": {"name": "Ann", "age": 30}, "tags": ["a", "b"], "price": 12.5, "on": True},
    "bob": {"owner": {"name": "Bob", "age": 41}, "tags": ["b"], "price": 9, "on": False},
    "cid": {"owner": {"name": "cid", "age": None}, "tags": [], "price": "10", "gone": None},
    "dot": {"owner": None, "a'--": 1, "n": 1.0, "list": [1, 2], "obj": {"x": 1, "y": [2]}},
    "num": [1, "a", {"k": "v"}],
    "nul": None,
}


async def make() -> None:
    for name, doc in DOCS.items():
        await Everything.objects.create(char=name, data=doc)


async def names(*args: Any, **kwargs: Any) -> list[str]:
    rows = await Everything.objects.filter(*args, **kwargs).order_by("char")
    return [row.char or "" for row in rows]


async def excluded(**kwargs: Any) -> list[str]:
    rows = await Everything.objects.exclude(**kwargs).order_by("char")
    return [row.char or "" for row in rows]


async def test_key_path_exact(database: Database) -> None:
    await make()
    assert await names(data__owner__name="Ann") == ["ann"]
    assert await names(data__owner__name="ann") == []  # case-sensitive everywhere
    assert await names(data__owner__age=41) == ["bob"]
    assert await names(data__n=1) == ["dot"]  # 1.0 == 1 as JSON numbers
    assert await names(data__on=True) == ["ann"]
    assert await names(data__on=False) == ["bob"]


async def test_key_comparisons_are_typed(database: Database) -> None:
    await make()
    # "10" is a string: a number comparison never matches it, on any backend.
    assert await names(data__price__gt=9) == ["ann"]
    assert await names(data__price__gte=9) == ["ann", "bob"]
    assert await names(data__price__lt=12.5) == ["bob"]
    assert await names(data__price="10") == ["cid"]
    assert await names(data__price=10) == []
    assert await names(data__owner__age__in=[30, 41]) == ["ann", "bob"]
    assert await names(data__owner__age__range=(31, 50)) == ["bob"]
    assert await names(data__owner__name__in=["Bob", "cid"]) == ["bob", "cid"]
    assert await names(data__owner__name__gt="B") == ["bob", "cid"]
    assert await names(data__price__gt=Decimal("12.4")) == ["ann"]
    assert await names(data__price__lte=Decimal("9.0")) == ["bob"]


async def test_array_index(database: Database) -> None:
    await make()
    assert await names(data__tags__0="a") == ["ann"]
    assert await names(data__tags__1="b") == ["ann"]
    assert await names(data__tags__0="b") == ["bob"]
    assert await names(data__1="a") == ["num"]
    assert await names(data__2__k="v") == ["num"]


async def test_text_lookups_on_keys(database: Database) -> None:
    await make()
    assert await names(data__owner__name__iexact="ANN") == ["ann"]
    assert await names(data__owner__name__icontains="i") == ["cid"]
    assert await names(data__owner__name__startswith="B") == ["bob"]
    assert await names(data__owner__name__regex="^[AB]") == ["ann", "bob"]
    assert await names(data__owner__name__iregex="^c") == ["cid"]


async def test_null_versus_missing(database: Database) -> None:
    await make()
    # key=None: the key holds JSON null. isnull=True: the key is absent (or no document).
    assert await names(data__owner__age=None) == ["cid"]
    assert await names(data__gone=None) == ["cid"]
    assert await names(data__owner=None) == ["dot"]
    assert await names(data__gone__isnull=True) == ["ann", "bob", "dot", "nul", "num"]
    assert await names(data__gone__isnull=False) == ["cid"]
    assert await names(data__owner__age__isnull=False) == ["ann", "bob", "cid"]
    assert await names(data__isnull=True) == ["nul"]


async def test_exclude_keeps_rows_without_the_key(database: Database) -> None:
    await make()
    assert await excluded(data__owner__name="Ann") == ["bob", "cid", "dot", "nul", "num"]
    assert await excluded(data__price__gt=9) == ["bob", "cid", "dot", "nul", "num"]
    assert await excluded(data__has_key="tags") == ["dot", "nul", "num"]


async def test_equality_with_objects_and_arrays(database: Database) -> None:
    await make()
    assert await names(data__obj={"y": [2], "x": 1}) == ["dot"]  # key order does not matter
    assert await names(data__obj={"x": 1}) == []
    assert await names(data__list=[1, 2]) == ["dot"]
    assert await names(data__list=[2, 1]) == []
    assert await names(data__tags=[]) == ["cid"]


async def test_contains_and_contained_by(database: Database) -> None:
    await make()
    assert await names(data__contains={"owner": {"name": "Ann"}}) == ["ann"]
    assert await names(data__contains={"tags": ["b"]}) == ["ann", "bob"]
    assert await names(data__tags__contains=["a"]) == ["ann"]
    assert await names(data__tags__contains="b") == ["ann", "bob"]
    assert await names(data__contains=[1]) == ["num"]
    assert await names(data__obj__contains={"y": [2]}) == ["dot"]
    assert await names(data__tags__contained_by=["a", "b", "c"]) == ["ann", "bob", "cid"]
    assert await names(data__owner__contained_by={"name": "Bob", "age": 41, "x": 0}) == ["bob"]


async def test_has_key_family(database: Database) -> None:
    await make()
    assert await names(data__has_key="gone") == ["cid"]
    assert await names(data__has_key="a'--") == ["dot"]
    assert await names(data__has_keys=["tags", "on"]) == ["ann", "bob"]
    assert await names(data__has_any_keys=["gone", "list"]) == ["cid", "dot"]
    assert await names(data__owner__has_key="age") == ["ann", "bob", "cid"]
    assert await names(Q(data__has_key="on") | Q(data__has_key="n")) == ["ann", "bob", "dot"]


async def test_hostile_keys_are_data_or_refused(database: Database) -> None:
    await make()
    # A quote in a key is doubled in the SQL literal: it names the key, nothing more.
    assert await names(**{"data__a'--": 1}) == ["dot"]
    assert await names(**{"data__x') OR 1=1 --": 1}) == []
    assert await names(**{"data__50%": 1}) == []
    assert await names(**{"data__²": 1}) == []  # a key, not an index
    for key in ('$."x', "a\\b", 'a"b', "a\nb"):
        with pytest.raises(FieldError, match="Invalid JSON key"):
            await names(**{f"data__{key}": 1})
        with pytest.raises(FieldError, match="Invalid JSON key"):
            await names(data__has_key=key)
    assert await Everything.objects.count() == len(DOCS)


async def test_bad_values_are_refused(database: Database) -> None:
    with pytest.raises(FieldError, match="Use a str, a number or a bool"):
        await names(data__owner__age__gt=[1])
    with pytest.raises(FieldError, match="cannot take a bool"):
        await names(data__on__gt=True)
    with pytest.raises(FieldError, match="non-empty list of keys"):
        await names(data__has_keys="tags")
    with pytest.raises(FieldError, match="JSON value"):
        await names(data__contains=None)
    with pytest.raises(FieldError, match="one JSON type"):
        await names(data__price__in=[1, "1"])


async def test_compiled_sql_cache_tells_key_paths_apart(database: Database) -> None:
    await make()
    # Same keyword shape, other keys or other value types: never the same cached SQL.
    assert await names(data__owner__name="Bob") == ["bob"]
    assert await names(data__owner__age=41) == ["bob"]
    assert await names(data__owner__name="Ann") == ["ann"]
    assert await names(data__tags__0="a") == ["ann"]
    assert await names(data__tags__1="b") == ["ann"]
    assert await names(data__has_key="on") == ["ann", "bob"]
    assert await names(data__has_key="n") == ["dot"]
    assert await names(data__price="10") == ["cid"]
    assert await names(data__price=9) == ["bob"]


async def test_key_paths_in_values(database: Database) -> None:
    await make()
    rows = await Everything.objects.order_by("char").values(
        "char", "data__owner__name", "data__tags__0", "data__price", "data__on", "data__owner"
    )
    got = {row["char"]: row for row in rows}
    assert got["ann"]["data__owner__name"] == "Ann"
    assert got["ann"]["data__tags__0"] == "a"
    assert got["ann"]["data__price"] == 12.5
    assert got["ann"]["data__on"] is True
    assert got["ann"]["data__owner"] == {"name": "Ann", "age": 30}
    assert got["bob"]["data__price"] == 9
    assert got["cid"]["data__price"] == "10"
    assert got["cid"]["data__tags__0"] is None  # past the end of the array
    assert got["dot"]["data__owner"] is None  # JSON null
    assert got["nul"]["data__owner__name"] is None  # no document
    with pytest.raises(FieldError):
        await Everything.objects.values("data__owner__has_key")


def test_query_shapes_follow_keys_kinds_and_lookups() -> None:
    def shape(**kwargs: Any) -> Any:
        return Everything.objects.filter(**kwargs).query.shape()

    # The same keys and value type share one compiled statement, whatever the value...
    assert shape(data__owner__name="Ann") == shape(data__owner__name="Bob")
    assert shape(data__price__gt=1) == shape(data__price__gt=2)
    assert shape(data__contains={"a": 1}) == shape(data__contains=["b"])
    # ...while other keys, another JSON type or another key list never do.
    assert shape(data__owner__name="Ann") != shape(data__owner__nick="Ann")
    assert shape(data__tags__0="a") != shape(data__tags__1="a")
    assert shape(data__price="10") != shape(data__price=10)
    assert shape(data__has_key="a") != shape(data__has_key="b")
    assert shape(data__has_keys=["a", "b"]) != shape(data__has_keys=["a"])
    assert shape(data__owner=None) != shape(data__owner={"a": 1})


async def test_get_by_key_path(database: Database) -> None:
    await make()
    ann = await Everything.objects.get(data__owner__name="Ann")
    assert ann.char == "ann"
    assert await Everything.objects.filter(data__owner__age__gte=30).count() == 2


async def test_key_paths_in_conditions_of_expressions(database: Database) -> None:
    from covet.db import Case, Count, Exists, OuterRef, Value, When

    await make()
    rows = await (
        Everything.objects.annotate(
            who=Case(When(data__owner__name="Ann", then=Value("A")), default=Value("-"))
        )
        .order_by("char")
        .values("char", "who")
    )
    assert [r["who"] for r in rows] == ["A", "-", "-", "-", "-", "-"]
    got = await Everything.objects.aggregate(n=Count("id", filter=Q(data__has_key="tags")))
    assert got == {"n": 3}
    inner = Everything.objects.filter(pk=OuterRef("pk"), data__price__gt=9)
    assert await names(Exists(inner)) == ["ann"]
