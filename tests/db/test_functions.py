"""Database functions (covet.db.functions) on every backend: same results everywhere."""

from __future__ import annotations

import datetime
import decimal
from typing import TYPE_CHECKING

import pytest

from covet.db import Count, F, FieldError, Max, Sum, Value, fields
from covet.db.exceptions import NotSupportedError
from covet.db.functions import (
    Abs,
    Cast,
    Coalesce,
    Collate,
    Concat,
    Extract,
    Func,
    Greatest,
    Least,
    Length,
    Lower,
    LTrim,
    Now,
    Replace,
    Round,
    RTrim,
    Substr,
    Trim,
    Trunc,
    TruncDate,
    TruncHour,
    TruncMonth,
    TruncWeek,
    TruncYear,
    Upper,
)
from tests.db.models import Author, Everything, Post

if TYPE_CHECKING:
    from covet.db.database import Database
    from covet.db.expressions import Expression

UTC = datetime.UTC

# Moments around the edges that differ between week/ISO rules: a Sunday, a Monday, New
# Year's Eve in ISO week 1 of the next year, a leap day, New Year's Day in week 53.
MOMENTS = [
    datetime.datetime(2024, 5, 12, 23, 59, 59, 999999, tzinfo=UTC),  # Sunday
    datetime.datetime(2024, 5, 13, 0, 0, 0, tzinfo=UTC),  # Monday
    datetime.datetime(2024, 12, 31, 13, 45, 30, 500000, tzinfo=UTC),  # ISO 2025-W01
    datetime.datetime(2024, 2, 29, 6, 7, 8, tzinfo=UTC),
    datetime.datetime(2021, 1, 1, 1, 2, 3, tzinfo=UTC),  # ISO 2020-W53, a Friday
]


@pytest.fixture
async def authors(orm: Database) -> None:
    await Author.objects.create(name="Émile", email="e@example.com", age=40)
    await Author.objects.create(name="  ann ", email="a@example.com", age=None)
    await Author.objects.create(name="Bob", email="b@example.com", age=25)


@pytest.fixture
async def moments(orm: Database) -> None:
    await Everything.objects.bulk_create(
        [Everything(moment=m, day=m.date(), integer=i) for i, m in enumerate(MOMENTS)]
    )
    await Everything.objects.create(integer=99)  # all NULL


async def _by_email(**annotations: Expression) -> dict[str, dict[str, object]]:
    rows = await Author.objects.annotate(**annotations).values("email", *annotations)
    return {row.pop("email"): row for row in rows}


async def test_text_functions(authors):
    rows = await _by_email(
        low=Lower("name"),
        up=Upper("name"),
        n=Length("name"),
        t=Trim("name"),
        lt=LTrim("name"),
        rt=RTrim("name"),
        sub=Substr("name", 2, 3),
        tail=Substr("name", 3),
    )
    # Unicode-aware case mapping and character (not byte) lengths on every backend.
    assert rows["e@example.com"] == {
        "low": "émile", "up": "ÉMILE", "n": 5, "t": "Émile", "lt": "Émile", "rt": "Émile",
        "sub": "mil", "tail": "ile",
    }  # fmt: skip
    assert rows["a@example.com"]["t"] == "ann"
    assert rows["a@example.com"]["lt"] == "ann "
    assert rows["a@example.com"]["rt"] == "  ann"


async def test_concat_treats_null_as_empty_and_binds_values(authors):
    rows = await _by_email(label=Concat("name", Value("|"), "age"))
    assert rows["b@example.com"]["label"] == "Bob|25"
    assert rows["a@example.com"]["label"] == "  ann |"
    # A % in a value stays a value, even where the driver formats %s placeholders.
    rows = await _by_email(label=Concat(Value("100%"), Value(" "), Value("sure")))
    assert rows["b@example.com"]["label"] == "100% sure"


async def test_replace_with_plain_strings(authors):
    rows = await _by_email(r=Replace("name", "mil", "%_"), gone=Replace("name", "o"))
    assert rows["e@example.com"]["r"] == "É%_e"
    assert rows["b@example.com"]["gone"] == "Bb"


async def test_coalesce_greatest_least_null_semantics(authors):
    rows = await _by_email(
        a=Coalesce("age", 0),
        g=Greatest("age", 30),
        least=Least("age", 30),
        n=Coalesce("age", Value(None), 7),
    )
    assert rows["a@example.com"] == {"a": 0, "g": None, "least": None, "n": 7}
    assert rows["b@example.com"] == {"a": 25, "g": 30, "least": 25, "n": 25}
    # Greatest is NULL when any argument is NULL: Coalesce the arguments to skip NULLs.
    rows = await _by_email(g=Greatest(Coalesce("age", 0), 30))
    assert rows["a@example.com"]["g"] == 30


async def test_coalesce_over_an_empty_aggregate_keeps_its_type(orm):
    total = await Post.objects.aggregate(total=Coalesce(Sum("views"), 0))
    assert total == {"total": 0}
    author = await Author.objects.create(name="A", email="a@example.com")
    await Post.objects.create(title="x", author=author, views=7)
    result = await Post.objects.aggregate(total=Coalesce(Sum("views"), 0))
    assert result == {"total": 7}
    assert type(result["total"]) is int


async def test_coalesce_filters_as_having_over_aggregates(orm):
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    await Author.objects.create(name="Bob", email="bob@example.com")
    await Post.objects.create(title="x", author=ann, views=3)
    rows = await Author.objects.annotate(v=Coalesce(Sum("posts__views"), 0)).filter(v__lt=1)
    assert [a.name for a in rows] == ["Bob"]


async def test_abs_and_round(orm):
    author = await Author.objects.create(name="A", email="a@example.com")
    await Post.objects.create(title="x", author=author, views=-7, rating=decimal.Decimal("2.45"))
    await Post.objects.create(title="y", author=author, views=7, rating=decimal.Decimal("-2.55"))
    rows = (
        await Post.objects.annotate(
            a=Abs("views"), r1=Round("rating", 1), r0=Round("rating"), ri=Round("views")
        )
        .order_by("title")
        .values_list("a", "r1", "r0", "ri")
    )
    # Halves round away from zero on every backend (decimals and integers).
    assert rows == [
        (7, decimal.Decimal("2.5"), decimal.Decimal("2"), -7),
        (7, decimal.Decimal("-2.6"), decimal.Decimal("-3"), 7),
    ]
    assert type(rows[0][3]) is int


async def test_round_of_a_float(orm):
    await Everything.objects.create(flt=3.14159)
    [value] = await Everything.objects.annotate(r=Round("flt", 2)).values_list("r", flat=True)
    assert value == pytest.approx(3.14)
    assert isinstance(value, float)


async def test_round_refuses_text_and_negative_places(orm):
    with pytest.raises(FieldError, match="Round"):
        Author.objects.annotate(r=Round("name"))
    with pytest.raises(FieldError, match="precision"):
        Round("views", -1)


async def test_now_is_an_aware_utc_datetime_usable_in_filters(orm):
    author = await Author.objects.create(name="A", email="a@example.com")
    past = datetime.datetime(2000, 1, 1, tzinfo=UTC)
    future = datetime.datetime.now(UTC) + datetime.timedelta(days=1)
    await Post.objects.create(title="old", author=author, published_at=past)
    await Post.objects.create(title="new", author=author, published_at=future)
    titles = await Post.objects.filter(published_at__lt=Now()).values_list("title", flat=True)
    assert titles == ["old"]
    [now] = await Post.objects.filter(title="old").annotate(n=Now()).values_list("n", flat=True)
    assert now.tzinfo is not None
    assert abs(now - datetime.datetime.now(UTC)) < datetime.timedelta(minutes=5)


async def test_cast(orm):
    moment = datetime.datetime(2024, 3, 9, 23, 30, tzinfo=UTC)
    amount = decimal.Decimal("1.5")
    await Everything.objects.create(integer=42, char="17", moment=moment, dec=amount)
    [row] = await Everything.objects.annotate(
        txt=Cast("integer", fields.CharField(max_length=10)),
        number=Cast("char", fields.IntegerField()),
        date=Cast("moment", fields.DateField()),
        amount=Cast("dec", fields.DecimalField(max_digits=6, decimal_places=2)),
        ratio=Cast("integer", fields.FloatField()),
    ).values("txt", "number", "date", "amount", "ratio")
    assert row == {
        "txt": "42",
        "number": 17,
        "date": datetime.date(2024, 3, 9),  # the UTC date, whatever the session's zone
        "amount": decimal.Decimal("1.50"),
        "ratio": 42.0,
    }
    with pytest.raises(FieldError, match="field instance"):
        Cast("integer", int)  # type: ignore[arg-type]


async def test_generic_func_and_name_validation(authors):
    rows = await _by_email(up=Func("name", function="UPPER"))
    assert rows["b@example.com"]["up"] == "BOB"
    for bad in ("UPPER(name); DROP TABLE x; --", "", "1ABS", "lower()"):
        with pytest.raises(FieldError, match="function name"):
            Func("name", function=bad)
    with pytest.raises(FieldError, match="at least 2"):
        Coalesce("name")


async def test_functions_are_bound_parameters_in_the_shape_cache(authors):
    # The same query shape with other values: each run gets its own parameters.
    for default in (1, 2, 3):
        rows = await _by_email(a=Coalesce("age", default))
        assert rows["a@example.com"]["a"] == default
    for prefix in ("x", "y"):
        qs = Author.objects.annotate(tag=Concat(Value(prefix), "email"))
        tags = await qs.order_by(Concat(Value(prefix), "name")).values_list("tag", flat=True)
        assert tags[0] == f"{prefix}a@example.com"


async def test_functions_in_update_and_as_filter_values(authors):
    await Author.objects.filter(age__isnull=False).update(
        name=Upper(Trim("name")), age=Coalesce("age", 0) + Length("name")
    )
    rows = await Author.objects.order_by("email").values_list("name", "age")
    assert rows == [("  ann ", None), ("BOB", 28), ("ÉMILE", 45)]
    assert await Author.objects.filter(name=Upper("name")).count() == 2
    assert await Author.objects.filter(age__gt=Length(Concat("name", "email"))).count() == 2


async def test_aggregates_over_functions(authors):
    result = await Author.objects.aggregate(
        chars=Sum(Length(Trim("name"))), oldest=Max(Coalesce("age", 0))
    )
    assert result == {"chars": 11, "oldest": 40}
    assert type(result["chars"]) is int


# -- dates -----------------------------------------------------------------------------------


def _monday(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


async def test_trunc_datetime_matches_python(moments):
    rows = (
        await Everything.objects.filter(integer__lt=99)
        .annotate(
            **{f"t_{k}": Trunc("moment", k) for k in ("year", "quarter", "month", "week", "day")},
            t_hour=Trunc("moment", "hour"),
            t_minute=Trunc("moment", "minute"),
            t_second=Trunc("moment", "second"),
            t_date=TruncDate("moment"),
        )
        .order_by("integer")
    )
    for row, m in zip(rows, MOMENTS, strict=True):
        quarter_month = 3 * ((m.month - 1) // 3) + 1
        monday = _monday(m.date())
        assert row.t_year == m.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        assert row.t_quarter == m.replace(month=quarter_month, day=1, hour=0, minute=0, second=0,
                                        microsecond=0)  # fmt: skip
        assert row.t_month == m.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        assert row.t_week == datetime.datetime.combine(monday, datetime.time(), UTC)
        assert row.t_day == m.replace(hour=0, minute=0, second=0, microsecond=0)
        assert row.t_hour == m.replace(minute=0, second=0, microsecond=0)
        assert row.t_minute == m.replace(second=0, microsecond=0)
        assert row.t_second == m.replace(microsecond=0)
        assert row.t_date == m.date()
        assert row.t_month.tzinfo is not None


async def test_trunc_date_field_gives_dates(moments):
    rows = (
        await Everything.objects.filter(integer__lt=99)
        .annotate(
            y=TruncYear("day"), m=TruncMonth("day"), w=TruncWeek("day"), q=Trunc("day", "quarter")
        )
        .order_by("integer")
        .values_list("y", "m", "w", "q")
    )
    expected = [
        (
            m.date().replace(month=1, day=1),
            m.date().replace(day=1),
            _monday(m.date()),
            m.date().replace(month=3 * ((m.month - 1) // 3) + 1, day=1),
        )
        for m in MOMENTS
    ]
    assert rows == expected


async def test_extract_matches_python(moments):
    lookups = ("year", "iso_year", "quarter", "month", "week", "day", "week_day",
               "iso_week_day", "hour", "minute", "second")  # fmt: skip
    rows = (
        await Everything.objects.annotate(**{f"x_{k}": Extract("moment", k) for k in lookups})
        .order_by("integer")
        .values(*[f"x_{k}" for k in lookups])
    )
    rows = [{k[2:]: v for k, v in row.items()} for row in rows]
    for row, m in zip(rows[:-1], MOMENTS, strict=True):
        iso = m.isocalendar()
        assert row == {
            "year": m.year, "iso_year": iso.year, "quarter": (m.month + 2) // 3,
            "month": m.month, "week": iso.week, "day": m.day,
            "week_day": m.isoweekday() % 7 + 1, "iso_week_day": iso.weekday,
            "hour": m.hour, "minute": m.minute, "second": m.second,
        }, m  # fmt: skip
    assert rows[-1] == dict.fromkeys(lookups)  # NULL in, NULL out
    days = await Everything.objects.annotate(d=Extract("day", "week_day")).order_by("integer")
    assert [e.d for e in days][:2] == [1, 2]  # Sunday, Monday


async def test_values_group_by_truncated_month(moments):
    rows = await (
        Everything.objects.filter(integer__lt=99)
        .values(month=TruncMonth("moment"))
        .annotate(n=Count("id"))
        .order_by("month")
    )
    assert rows == [
        {"month": datetime.datetime(2021, 1, 1, tzinfo=UTC), "n": 1},
        {"month": datetime.datetime(2024, 2, 1, tzinfo=UTC), "n": 1},
        {"month": datetime.datetime(2024, 5, 1, tzinfo=UTC), "n": 2},
        {"month": datetime.datetime(2024, 12, 1, tzinfo=UTC), "n": 1},
    ]
    # The same grouping through a year extraction, filtered afterwards (HAVING).
    rows = await (
        Everything.objects.filter(integer__lt=99)
        .values(year=Extract("moment", "year"))
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert rows == [{"year": 2024, "n": 4}]


async def test_filter_and_order_on_date_annotations(moments):
    may = datetime.datetime(2024, 5, 1, tzinfo=UTC)
    qs = Everything.objects.annotate(m=TruncMonth("moment"), h=TruncHour("moment"))
    assert await qs.filter(m=may).count() == 2
    assert await qs.filter(m__gt=may).count() == 1
    years = Everything.objects.annotate(y=Extract("moment", "year"))
    assert await years.filter(y=2024).count() == 4
    ordered = await qs.filter(integer__lt=99).order_by("-h").values_list("integer", flat=True)
    assert ordered == [2, 1, 0, 3, 4]


async def test_date_functions_refuse_bad_input():
    with pytest.raises(FieldError, match="Trunc kind"):
        Trunc("moment", "fortnight")
    with pytest.raises(FieldError, match="Extract lookup"):
        Extract("moment", "epoch")
    with pytest.raises(FieldError, match="DateField or DateTimeField"):
        Everything.objects.annotate(x=TruncMonth("char"))
    with pytest.raises(FieldError, match="truncate a DateField"):
        Everything.objects.annotate(x=TruncHour("day"))
    with pytest.raises(FieldError, match="no 'hour'"):
        Everything.objects.annotate(x=Extract("day", "hour"))


# -- ordering ----------------------------------------------------------------------------------


async def test_order_by_lower_is_case_insensitive(authors):
    names = await Author.objects.order_by(Lower(Trim("name"))).values_list("name", flat=True)
    assert names == ["  ann ", "Bob", "Émile"]
    names = await Author.objects.order_by(Lower("email").desc()).values_list("email", flat=True)
    assert names == ["e@example.com", "b@example.com", "a@example.com"]
    reverse = await Author.objects.order_by(Lower(Trim("name"))).reverse()
    assert [a.email for a in reverse] == ["e@example.com", "b@example.com", "a@example.com"]


async def test_nulls_first_and_last_on_every_backend(authors):
    def emails(rows: list[Author]) -> list[str]:
        return [a.email[0] for a in rows]

    assert emails(await Author.objects.order_by(F("age").asc(nulls_last=True))) == ["b", "e", "a"]
    assert emails(await Author.objects.order_by(F("age").asc(nulls_first=True))) == ["a", "b", "e"]
    assert emails(await Author.objects.order_by(F("age").desc(nulls_last=True))) == ["e", "b", "a"]
    assert emails(await Author.objects.order_by(F("age").desc(nulls_first=True))) == ["a", "e", "b"]
    # reverse() flips the NULLs too.
    flipped = Author.objects.order_by(F("age").asc(nulls_last=True)).reverse()
    assert emails(await flipped) == ["a", "e", "b"]
    with pytest.raises(FieldError, match="not both"):
        F("age").asc(nulls_first=True, nulls_last=True)


async def test_order_by_rejects_junk():
    with pytest.raises(FieldError, match="order_by term"):
        Author.objects.order_by(3)  # type: ignore[arg-type]
    with pytest.raises(FieldError):
        Author.objects.order_by(Lower("nope"))
    with pytest.raises(FieldError, match="annotate"):
        Author.objects.order_by(Count("posts").desc())


#: A case-insensitive collation per backend, as documented in docs/orm/functions.md.
CASELESS = {
    "sqlite": "NOCASE",
    "postgresql": "und-x-icu",
    "mysql": "utf8mb4_unicode_ci",
    "mariadb": "utf8mb4_unicode_ci",
}


async def test_collate_orders_under_another_collation(orm, database):
    for name in ("b", "a", "C"):
        await Author.objects.create(name=name, email=f"{name}@example.com")
    collation = CASELESS[database.ops.telemetry_name]
    names = await Author.objects.order_by(Collate("name", collation)).values_list("name", flat=True)
    assert names == ["a", "b", "C"]
    binary = await Author.objects.order_by("name").values_list("name", flat=True)
    assert binary == ["C", "a", "b"]  # the default text collation is binary everywhere
    for bad in ("x; DROP TABLE t", "", "a b"):
        with pytest.raises(FieldError, match="collation"):
            Collate("name", bad)


# -- distinct ----------------------------------------------------------------------------------


@pytest.fixture
async def posts(orm: Database) -> tuple[Author, Author]:
    ann = await Author.objects.create(name="Ann", email="ann@example.com")
    bob = await Author.objects.create(name="Bob", email="bob@example.com")
    for title, author, views in (("a1", ann, 5), ("a2", ann, 9), ("b1", bob, 1)):
        await Post.objects.create(title=title, author=author, views=views)
    return ann, bob


async def test_distinct_on_fields(posts, database):
    top = Post.objects.distinct("author").order_by("author", "-views")
    if database.features.can_distinct_on_fields:
        assert [p.title for p in await top] == ["a2", "b1"]
        assert await top.count() == 2
    else:
        with pytest.raises(NotSupportedError, match="distinct"):
            await top


async def test_distinct_on_checks_the_ordering(posts):
    with pytest.raises(FieldError, match="start with"):
        await Post.objects.distinct("author").order_by("-views", "author")
    with pytest.raises(FieldError):
        Post.objects.distinct("nope")


async def test_plain_distinct_still_works(posts):
    ids = await Post.objects.values_list("author", flat=True).distinct().order_by("author")
    assert len(ids) == 2
    names = await Author.objects.filter(posts__views__gt=0).distinct().order_by(Lower("name"))
    assert [a.name for a in names] == ["Ann", "Bob"]


# -- compiled SQL (no server): each dialect's spelling and the shape cache --------------------


def _compile(qs: object, dialect: str) -> tuple[str, list[object]]:
    from covet.db.backends.mysql import MySQLFeatures, MySQLOperations
    from covet.db.backends.postgres import PostgresFeatures, PostgresOperations
    from covet.db.backends.sqlite import SQLiteFeatures, SQLiteOperations
    from covet.db.compiler import compile_select

    ops_cls, features_cls = {
        "sqlite": (SQLiteOperations, SQLiteFeatures),
        "postgres": (PostgresOperations, PostgresFeatures),
        "mysql": (MySQLOperations, MySQLFeatures),
    }[dialect]
    features = features_cls()
    compiled = compile_select(qs.query, ops_cls(features), features)  # type: ignore[attr-defined]
    return compiled.sql, compiled.params


def test_dialects_spell_dates_in_utc_and_escape_percent():
    qs = Everything.objects.values(m=TruncMonth("moment"))
    assert (
        "DATE_TRUNC('month', (\"everything\".\"moment\" AT TIME ZONE 'UTC'))"
        in (_compile(qs, "postgres")[0])
    )
    # aiomysql formats the statement with %: literal percents are doubled.
    assert "DATE_FORMAT(`everything`.`moment`, '%%Y-%%m-01 00:00:00')" in _compile(qs, "mysql")[0]
    assert "STRFTIME('%Y-%m-01 00:00:00.000000', SUBSTR(" in _compile(qs, "sqlite")[0]


def test_repeated_arguments_bind_their_parameters_each_time():
    # MySQL emulates NULLS LAST by repeating the expression: its parameter is bound twice,
    # also when the SQL comes from the shape cache.
    for default in (5, 7):
        qs = Author.objects.order_by(Coalesce("age", default).asc(nulls_last=True))
        text, params = _compile(qs, "mysql")
        assert "COALESCE(`author`.`age`, %s) IS NULL, COALESCE(`author`.`age`, %s) ASC" in text
        assert params == [default, default]
        text, params = _compile(qs, "postgres")
        assert text.endswith('ORDER BY COALESCE("author"."age", CAST($1 AS BIGINT)) ASC NULLS LAST')
        assert params == [default]
    qs = Author.objects.annotate(g=Greatest("age", Value(3)))
    text, params = _compile(qs, "postgres")
    assert (
        'CASE WHEN "author"."age" IS NULL OR CAST($1 AS BIGINT) IS NULL THEN NULL ELSE '
        'GREATEST("author"."age", CAST($2 AS BIGINT)) END' in text
    )
    assert params == [3, 3]


def test_function_options_are_part_of_the_shape():
    year = _compile(Everything.objects.annotate(t=Trunc("moment", "year")), "sqlite")[0]
    month = _compile(Everything.objects.annotate(t=Trunc("moment", "month")), "sqlite")[0]
    assert year != month
    a = _compile(Author.objects.annotate(s=Substr("name", 1, 2)), "postgres")[0]
    b = _compile(Author.objects.annotate(s=Substr("name", 2, 2)), "postgres")[0]
    assert 'SUBSTR("author"."name", 1, 2)' in a
    assert 'SUBSTR("author"."name", 2, 2)' in b
