"""One arithmetic semantics on every backend: integer division, and fractions into integers.

covet picks SQL's integer semantics and makes the three databases agree:

* ``int / int`` is integer division truncating toward zero (``7 / 2 == 3``,
  ``-7 / 2 == -3``), as PostgreSQL and SQLite do; MySQL's ``/`` would give
  ``3.5000``, so covet sends ``DIV`` there.
* A fractional result stored in an integer column by ``update()`` drops its
  fraction (truncates toward zero): ``F("n") * Decimal("1.5")`` with n = 7
  stores 10 everywhere, where PostgreSQL and MySQL would round to 11 and
  SQLite would store the REAL 10.5 in the INTEGER column.
"""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING

import pytest

from covet.db import F, Model, Value, fields
from covet.db.schema import create_all, drop_all

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database


class Numbers(Model):
    n = fields.IntegerField()
    d = fields.IntegerField(default=2)
    big = fields.BigIntegerField(default=0)
    price = fields.DecimalField(max_digits=10, decimal_places=2, default=decimal.Decimal("0"))
    ratio = fields.FloatField(default=0.0)

    class Meta:
        table = "numeric_semantics"


@pytest.fixture
async def rows(database: Database) -> AsyncIterator[list[Numbers]]:
    await drop_all(database, [Numbers])
    await create_all(database, [Numbers])
    made = await Numbers.objects.bulk_create(
        [
            Numbers(n=7, d=2, price=decimal.Decimal("2.50"), ratio=2.7),
            Numbers(n=-7, d=2, price=decimal.Decimal("-2.50"), ratio=-2.7),
        ]
    )
    yield made
    await drop_all(database, [Numbers])


async def test_integer_division_truncates_toward_zero(rows):
    results = (
        await Numbers.objects.order_by("-n")
        .annotate(q=F("n") / F("d"), p=F("n") / 2, v=Value(7) / F("d"))
        .values("q", "p", "v")
    )
    assert [(r["q"], r["p"], r["v"]) for r in results] == [(3, 3, 3), (-3, -3, 3)]
    assert all(type(r["q"]) is int for r in results)


async def test_decimal_and_float_division_keep_the_fraction(rows):
    results = (
        await Numbers.objects.order_by("-n")
        .annotate(q=F("n") / decimal.Decimal("2"), r=F("n") / 2.0)
        .values("q", "r")
    )
    assert [(r["q"], r["r"]) for r in results] == [
        (decimal.Decimal("3.5"), 3.5),
        (decimal.Decimal("-3.5"), -3.5),
    ]


async def test_fractional_results_into_integer_columns_truncate(rows):
    await Numbers.objects.update(n=F("n") * decimal.Decimal("1.5"))  # 10.5, -10.5
    await Numbers.objects.update(big=F("ratio"))  # 2.7, -2.7 (a float)
    await Numbers.objects.update(d=F("price") * 3)  # 7.50, -7.50 (a decimal column)
    got = sorted((o.n, o.big, o.d) for o in await Numbers.objects.all())
    assert got == [(-10, -2, -7), (10, 2, 7)]
    assert all(type(v) is int for row in got for v in row)
    # Integer arithmetic is untouched.
    await Numbers.objects.update(n=F("n") / 3 + 1)
    assert sorted(await Numbers.objects.values_list("n", flat=True)) == [-2, 4]
