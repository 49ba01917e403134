"""Plain numbers in expressions keep their Python type; big decimal filter values work.

PostgreSQL infers an untyped parameter from the other operand (``int4 * $1``
makes ``$1`` an int4, and asyncpg truncates 2.5 to 2), so every exact result
below failed there before numbers were cast by their Python type. MySQL and
SQLite type a parameter by the value bound and must give the same answers.
"""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Avg, Count, F, Sum, ValidationError, Value
from covet.db.backends.mysql import MySQLFeatures, MySQLOperations
from covet.db.backends.postgres import PostgresFeatures, PostgresOperations
from covet.db.backends.sqlite import SQLiteFeatures, SQLiteOperations
from covet.db.compiler import compile_select, compile_update
from tests.db.models import Author, Everything, Post

if TYPE_CHECKING:
    from covet.db.database import Database
    from covet.db.queryset import QuerySet

D = decimal.Decimal


@pytest.fixture
async def three(orm: Database) -> Everything:
    """One row: integer 3, dec 1.5, flt 0.5 (every value exact in binary too)."""
    return await Everything.objects.create(integer=3, dec=D("1.5"), flt=0.5, big=0)


async def one(qs: QuerySet[Any]) -> Any:
    [value] = await qs
    return value


def annotated(expression: Any) -> QuerySet[Any]:
    return Everything.objects.annotate(x=expression).values_list("x", flat=True)


# -- update() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "expression", "expected"),
    [
        ("dec", F("integer") * D("2.5"), D("7.500000")),
        ("dec", D("2.5") * F("integer"), D("7.500000")),
        ("dec", F("integer") / D("4"), D("0.750000")),
        ("dec", (F("integer") + 1) * D("0.25") - D("0.5"), D("0.500000")),
        ("dec", F("dec") * D("0.5"), D("0.750000")),
        ("dec", F("dec") + 1, D("2.500000")),
        ("flt", F("integer") * 2.5, 7.5),
        ("flt", 2.5 * F("integer"), 7.5),
        ("flt", F("integer") / 4.0, 0.75),
        ("flt", F("dec") * 0.5, 0.75),
        ("integer", F("integer") + 2, 5),
        ("integer", 10 - F("integer"), 7),
        # 3 * 2**40 overflows a 32-bit parameter: the value is a BIGINT.
        ("big", F("integer") * 2**40, 3 * 2**40),
        ("big", 2**40 * F("integer"), 3 * 2**40),
    ],
)
async def test_update_with_a_number_keeps_its_type(three, column, expression, expected):
    assert await Everything.objects.update(**{column: expression}) == 1
    got = getattr(await Everything.objects.get(pk=three.pk), column)
    assert got == expected
    assert type(got) is type(expected)


async def test_update_with_a_decimal_more_precise_than_a_double(three, database: Database):
    update = Everything.objects.update(dec=F("integer") * D("0.10000000000000001"))
    limit = database.features.max_exact_decimal_digits
    if limit is not None:
        # SQLite computes with doubles: the value is refused, never rounded silently.
        with pytest.raises(ValidationError) as info:
            await update
        assert list(info.value.error_dict) == ["value"]
        assert f"keeps {limit} significant digits" in info.value.messages[0]
        return
    await update
    assert (await Everything.objects.get(pk=three.pk)).dec == D("0.300000")


# -- annotate() ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (F("integer") * D("2.5"), D("7.5")),
        (D("2.5") * F("integer"), D("7.5")),
        (F("integer") + D("2.5"), D("5.5")),
        (D("10") - F("integer"), D("7")),
        (F("integer") * D("2.5") + 1, D("8.5")),
        (Value(D("2.5")), D("2.5")),
        (F("integer") * 2.5, 7.5),
        (2.5 * F("integer"), 7.5),
        (1 - F("integer") * 0.5, -0.5),
        (F("dec") * 0.5, 0.75),
        (Value(2.5), 2.5),
        (F("integer") * 2, 6),
        (2 * F("integer"), 6),
        (Value(7), 7),
    ],
)
async def test_annotation_follows_numeric_promotion(three, expression, expected):
    got = await one(annotated(expression))
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        # The scale exact decimal arithmetic gives: SQLite's doubles read back the same.
        (F("dec") * 2, "3.000000"),
        (F("dec") - F("dec"), "0.000000"),
        (F("dec") * F("dec"), "2.250000000000"),
        (F("integer") * F("dec"), "4.500000"),
    ],
)
async def test_decimal_columns_keep_the_scale_of_exact_arithmetic(three, expression, text):
    got = await one(annotated(expression))
    assert type(got) is D
    assert str(got) == text


async def test_annotated_value_on_model_instances(three):
    obj = await Everything.objects.annotate(x=F("integer") * D("2.5"), y=F("integer") * 2.5).get()
    assert (obj.x, obj.y) == (D("7.5"), 7.5)
    assert (type(obj.x), type(obj.y)) == (D, float)


async def test_aggregates_of_decimal_expressions_are_decimals(three):
    await Everything.objects.create(integer=5)
    totals = await Everything.objects.aggregate(
        total=Sum(F("integer") * D("2.5")), mean=Avg(F("integer") * D("2.5"))
    )
    assert totals == {"total": D("20"), "mean": D("10")}
    assert (type(totals["total"]), type(totals["mean"])) == (D, D)


# -- filter() ------------------------------------------------------------------------------


async def test_filter_against_arithmetic_with_numbers(three):
    objects = Everything.objects
    # 3 < 3 * 1.2 (PostgreSQL compared 3 < 3 * 1 before).
    assert await objects.filter(integer__lt=F("integer") * D("1.2")).count() == 1
    assert await objects.filter(integer__lt=D("1.2") * F("integer")).count() == 1
    assert await objects.filter(integer__lt=F("integer") * 1.2).count() == 1
    assert await objects.filter(integer__gt=F("integer") * 0.9).count() == 1
    assert await objects.filter(integer__gte=F("integer") * D("1.01")).count() == 0
    assert await objects.filter(integer=F("integer") * D("1.0")).count() == 1
    assert await objects.filter(integer__lt=F("integer") + D("0.5")).count() == 1
    assert await objects.filter(dec__gt=F("integer") * D("0.4")).count() == 1
    assert await objects.filter(dec=F("integer") * D("0.5")).count() == 1
    assert await objects.exclude(flt__lt=F("integer") * 0.25 - 0.25).count() == 1
    assert await objects.filter(integer__lt=Value(3.5)).count() == 1


async def test_filter_on_an_annotation_with_numbers(three):
    qs = Everything.objects.annotate(x=F("integer") * D("2.5"))
    assert await qs.filter(x=D("7.5")).count() == 1
    assert await qs.filter(x__gt=D("7.4"), x__lt=7.6).count() == 1
    assert await qs.filter(x__gt=7).count() == 1
    assert await qs.filter(x__gt=F("integer") * D("2.4")).count() == 1


async def test_count_annotation_compared_with_a_fraction(orm):
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    await Author.objects.create(name="Bob", email="bob@example.com")
    await Post.objects.create(title="a", author=ann)
    counted = Author.objects.annotate(n=Count("posts"))
    assert await counted.filter(n__lt=1.5).count() == 2
    assert await counted.filter(n__gt=D("0.5")).values_list("name", flat=True) == ["Ann"]
    assert await counted.filter(n__lt=1).values_list("name", flat=True) == ["Bob"]


# -- the compiled-SQL cache ----------------------------------------------------------------


async def test_cached_shape_is_never_reused_for_another_number_type(three):
    # One query shape, values of each type in turn: a cached SQL string typed for an int
    # (CAST($1 AS BIGINT) on PostgreSQL) would truncate the Decimal.
    for factor, expected in [(2, 6), (D("2.5"), D("7.5")), (2.5, 7.5), (2, 6), (D("2"), D("6"))]:
        got = await one(annotated(F("integer") * factor))
        assert (got, type(got)) == (expected, type(expected))
    for factor, count in [(1, 0), (D("1.5"), 1), (1, 0), (1.5, 1)]:
        assert await Everything.objects.filter(integer__lt=F("integer") * factor).count() == count


DIALECTS = {
    "sqlite": (SQLiteOperations, SQLiteFeatures),
    "postgres": (PostgresOperations, PostgresFeatures),
    "mysql": (MySQLOperations, MySQLFeatures),
}


def compiled(dialect: str, qs: QuerySet[Any]) -> tuple[str, list[Any]]:
    ops_cls, features_cls = DIALECTS[dialect]
    features = features_cls()
    result = compile_select(qs.query, ops_cls(features), features)
    return result.sql, result.params


@pytest.mark.parametrize(
    ("factor", "cast"),
    [(2, "BIGINT"), (2.5, "DOUBLE PRECISION"), (D("2.5"), "NUMERIC"), (2**70, "NUMERIC")],
)
def test_postgres_casts_numbers_by_python_type(factor, cast):
    sql, params = compiled("postgres", annotated(F("integer") * factor))
    assert f'("everything"."integer" * CAST($1 AS {cast})) AS "x"' in sql
    # An int beyond 64 bits is an exact Decimal (no database has a wider integer).
    assert params == [D(factor) if factor == 2**70 else factor]
    sql, _ = compiled("postgres", Everything.objects.filter(integer__lt=factor * F("integer")))
    assert f'"everything"."integer" < (CAST($1 AS {cast}) * "everything"."integer")' in sql


def test_mysql_binds_numbers_as_they_are():
    # aiomysql writes 2, 2.5e0 and 2.5: an integer, a DOUBLE and a DECIMAL literal.
    for factor in (2, 2.5, D("2.5")):
        sql, params = compiled("mysql", annotated(F("integer") * factor))
        assert "(`everything`.`integer` * %s) AS `x`" in sql
        assert params == [factor]


def test_sqlite_binds_numbers_as_they_are_but_decimals_as_doubles():
    for factor in (2, 2.5):
        sql, params = compiled("sqlite", annotated(F("integer") * factor))
        assert '("everything"."integer" * ?) AS "x"' in sql
        assert params == [factor]
    # The decimal adapter binds an integral Decimal as an integer: the cast keeps "/" a
    # real division (3 / 4 is 0 between integers).
    sql, params = compiled("sqlite", annotated(F("integer") / D("4")))
    assert '("everything"."integer" / CAST(? AS REAL)) AS "x"' in sql
    assert params == [4]


def test_shape_depends_on_the_number_type_only():
    shapes = {
        type(factor): annotated(F("integer") * factor).query.shape()
        for factor in (2, 2.5, D("2.5"))
    }
    assert len(set(shapes.values())) == 3
    assert annotated(F("integer") * 3).query.shape() == shapes[int]
    assert annotated(F("integer") * D("7.25")).query.shape() == shapes[D]


def test_a_number_added_to_text_still_takes_the_column_type():
    features = PostgresFeatures()
    ops = PostgresOperations(features)
    qs = Post.objects.filter(id=1)
    title = Post._meta.get_field("title")
    node = (F("title") + "!").resolve(qs.query)
    sql, params, _ = compile_update(qs.query, [(title, node)], ops, features)
    assert '"title" = ("posts"."title" || $1)' in sql and params == ["!", 1]
    # A number beside a text column is checked as that column's value, not cast to BIGINT.
    node = (F("title") + 1).resolve(qs.query)
    with pytest.raises(ValidationError, match="not a string") as info:
        compile_update(qs.query, [(title, node)], ops, features)
    assert list(info.value.error_dict) == ["title"]


# -- decimal filter values beyond the column's range -----------------------------------------


@pytest.fixture
async def decimals(orm: Database) -> list[D]:
    """Rows across DecimalField(max_digits=20, decimal_places=6), within SQLite's 15 digits."""
    values = [D("-12345678901234.5"), D("0.000001"), D("99999999999999.9")]
    await Everything.objects.bulk_create([Everything(dec=v) for v in values])
    return values


@pytest.mark.parametrize(
    "huge", [D("1e20"), D("1e14"), D("123456789012345678901.5"), D("1e400"), D("1e999999999")]
)
async def test_filter_with_a_decimal_beyond_the_column(decimals, huge):
    dec = Everything.objects.order_by("dec").values_list("dec", flat=True)
    low = huge.copy_negate()  # -huge would overflow the default context for 1e999999999
    assert await dec.filter(dec__lt=huge) == decimals
    assert await dec.filter(dec__lte=huge) == decimals
    assert await dec.filter(dec__gt=low) == decimals
    assert await dec.filter(dec__gte=low) == decimals
    assert await dec.filter(dec__gt=huge) == []
    assert await dec.filter(dec__lt=low) == []
    assert await dec.filter(dec=huge) == []
    assert await dec.exclude(dec=huge) == decimals
    assert await dec.filter(dec__in=[huge, D("0.000001"), low]) == [D("0.000001")]
    assert await dec.filter(dec__range=(low, huge)) == decimals
    assert await dec.filter(dec__range=(D("0"), huge)) == decimals[1:]


async def test_filter_at_the_edge_of_the_column_range(decimals):
    dec = Everything.objects.order_by("dec").values_list("dec", flat=True)
    # The largest value the column holds is compared as it is, the next power of ten as
    # the bound every larger value becomes.
    assert await dec.filter(dec=D("99999999999999.9")) == decimals[2:]
    assert await dec.filter(dec__gte=D("99999999999999.9")) == decimals[2:]
    assert await dec.filter(dec__lt=D("99999999999999.9")) == decimals[:2]
    assert await dec.filter(dec__lt=D("1e14")) == decimals
    assert await dec.filter(dec__gt=D("-1e14")) == decimals
    assert await dec.filter(dec__gte=D("1e14")) == []


@pytest.mark.parametrize("huge", [D("1e20"), D("-1e30"), D("1e400"), D("1e999999999")])
async def test_writing_a_decimal_beyond_the_column_names_the_field(orm, huge):
    with pytest.raises(ValidationError) as info:
        await Everything.objects.create(dec=huge)
    assert list(info.value.error_dict) == ["dec"]
    assert "more than 14 digits before the decimal point" in info.value.messages[0]
    obj = await Everything.objects.create(dec=D("1"))
    obj.dec = huge
    with pytest.raises(ValidationError, match="digits before the decimal point") as info:
        await obj.save()
    assert list(info.value.error_dict) == ["dec"]
    with pytest.raises(ValidationError) as info:
        await Everything.objects.update(dec=huge)
    assert list(info.value.error_dict) == ["dec"]
    with pytest.raises(ValidationError) as info:
        await Everything.objects.bulk_create([Everything(dec=huge)])
    assert list(info.value.error_dict) == ["dec"]
    assert await Everything.objects.values_list("dec", flat=True) == [D("1.000000")]
    # Unvalidated writes too: the comparison bound must never be stored in place of the value.
    with pytest.raises(ValidationError, match="digits before the decimal point"):
        await obj.save(validate=False)
    assert await Everything.objects.values_list("dec", flat=True) == [D("1.000000")]
