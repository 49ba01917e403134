"""regex/iregex lookups and the case rules of the i* lookups, the same on every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from covet.db import F, FieldError, ValidationError
from covet.db.exceptions import DataError
from tests.db.models import Author

if TYPE_CHECKING:
    from covet.db.database import Database

pytestmark = pytest.mark.usefixtures("orm")


async def make() -> None:
    for name in ("Ann", "anna", "Bob", "Ève", "b.o.b"):
        await Author.objects.create(name=name, email=f"{name}@example.com")


async def names(**kwargs: Any) -> list[str]:
    return sorted(a.name for a in await Author.objects.filter(**kwargs))


async def test_regex_is_case_sensitive(database: Database) -> None:
    await make()
    assert await names(name__regex="^A") == ["Ann"]
    assert await names(name__regex="n{2}") == ["Ann", "anna"]
    assert await names(name__regex=r"^b\.o") == ["b.o.b"]
    assert await names(name__regex="^[A-Z][a-z]+$") == ["Ann", "Bob"]


async def test_iregex_ignores_case(database: Database) -> None:
    await make()
    assert await names(name__iregex="^a") == ["Ann", "anna"]
    assert await names(name__iregex="^B") == ["Bob", "b.o.b"]
    assert await names(name__iregex="^ève$") == ["Ève"]  # beyond ASCII too


async def test_regex_negated_and_combined(database: Database) -> None:
    await make()
    rows = await Author.objects.exclude(name__regex="^[Aa]").order_by("name")
    assert sorted(a.name for a in rows) == ["Bob", "b.o.b", "Ève"]
    assert await names(name__regex="o", email__iregex="^B") == ["Bob", "b.o.b"]


async def test_insensitive_lookups_agree(database: Database) -> None:
    await make()
    assert await names(name__iexact="ÈVE") == ["Ève"]
    assert await names(name__icontains="NN") == ["Ann", "anna"]
    assert await names(name__istartswith="b") == ["Bob", "b.o.b"]
    assert await names(name__iendswith="B") == ["Bob", "b.o.b"]
    assert await names(name__exact="ann") == []


async def test_regex_takes_a_string(database: Database) -> None:
    with pytest.raises(ValidationError, match="not a string"):
        await names(name__regex=1)
    with pytest.raises(FieldError, match="cannot take an expression"):
        await names(name__regex=F("email"))


async def test_invalid_pattern_is_a_data_error(database: Database) -> None:
    await make()
    with pytest.raises(DataError, match=r"(?i)regular expression|regex"):
        await names(name__regex="?")
    with pytest.raises(DataError):
        await names(name__iregex="(unclosed")
    assert await Author.objects.count() == 5  # the connection is still usable
