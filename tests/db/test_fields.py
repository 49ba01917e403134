"""Field round-trips and validation on every backend."""

from __future__ import annotations

import datetime
import decimal
import random
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from covet.db import Avg, DatabaseError, F, Max, Min, Model, Sum, ValidationError, fields
from covet.db.schema import create_all, drop_all
from tests.db.models import Color, Defaults, Everything, Priority

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database

PARIS = datetime.timezone(datetime.timedelta(hours=2))
D = decimal.Decimal


class Amounts(Model):
    """Decimal columns of several scales, for the exactness tests (a table of this module)."""

    whole = fields.DecimalField(max_digits=19, decimal_places=0, null=True)
    cents = fields.DecimalField(max_digits=15, decimal_places=2, null=True)
    micro = fields.DecimalField(max_digits=20, decimal_places=6, null=True)
    fine = fields.DecimalField(max_digits=30, decimal_places=12, null=True)
    wei = fields.DecimalField(max_digits=40, decimal_places=24, null=True)

    class Meta:
        table = "fields_amounts"


AMOUNT_FIELDS = ("whole", "cents", "micro", "fine", "wei")


@pytest_asyncio.fixture(loop_scope="session")
async def amounts(orm: Database) -> AsyncIterator[Database]:
    """Yield ``orm`` with an empty ``Amounts`` table, dropped afterwards."""
    await drop_all(orm, [Amounts])
    await create_all(orm, [Amounts])
    yield orm
    await drop_all(orm, [Amounts])


async def roundtrip(**values: Any) -> Everything:
    obj = await Everything.objects.create(**values)
    return await Everything.objects.get(pk=obj.pk)


async def test_strings_with_unicode_and_emoji(orm):
    text = "Zoë 🚀 — 中文 \"quotes\" 'single' \\ back"
    got = await roundtrip(char="héllo 🚀", text=text)
    assert got.char == "héllo 🚀"
    assert got.text == text


async def test_integers_at_their_limits(orm):
    got = await roundtrip(small=-(2**15), integer=2**31 - 1, big=2**62)
    assert (got.small, got.integer, got.big) == (-(2**15), 2**31 - 1, 2**62)
    got = await roundtrip(big=-(2**63))
    assert got.big == -(2**63)


async def test_float_bool_null(orm):
    got = await roundtrip(flt=0.1, flag=True)
    assert got.flt == pytest.approx(0.1) and got.flag is True
    got = await roundtrip(flag=False)
    assert got.flag is False and got.flt is None and got.char is None and got.data is None


async def test_decimal_quantized_to_decimal_places(orm):
    got = await roundtrip(dec=decimal.Decimal("12.5"))
    assert got.dec == decimal.Decimal("12.500000")
    assert str(got.dec) == "12.500000"
    got = await roundtrip(dec=decimal.Decimal("123456789.123456"))
    assert got.dec == decimal.Decimal("123456789.123456")


# 20 significant digits. SQLite would store the first as 12345678901234.5.
WIDE = (
    D("12345678901234.500001"),
    D("-99999999999999.999999"),
    D("99999999999999.999999"),
    D("10000000000000.000001"),
)


async def test_decimal_full_precision(orm, database: Database):
    """Every digit of a 20-digit decimal comes back, or the value is refused: never rounded."""
    limit = database.features.max_exact_decimal_digits
    if limit is None:
        for value in WIDE:
            got = await roundtrip(dec=value)
            assert got.dec == value and str(got.dec) == str(value)
            assert await Everything.objects.filter(dec=value).count() == 1
        return
    await assert_refused_on_every_write_and_lookup(limit)


async def assert_refused_on_every_write_and_lookup(limit: int) -> None:
    kept = await Everything.objects.create(dec=D("12345678901234.5"), char="kept")
    other = await Everything.objects.create(dec=D("-1.25"), char="other")

    def snapshot() -> Any:  # a fresh queryset each time: an awaited one caches its rows
        return Everything.objects.order_by("pk").values_list("pk", "dec", "char")

    before = await snapshot()
    wide = WIDE[0]

    def refused(info: pytest.ExceptionInfo[ValidationError]) -> None:
        assert list(info.value.error_dict) == ["dec"]
        message = info.value.error_dict["dec"][0]
        assert f"keeps {limit} significant digits" in message
        assert f"{wide!r} has 20 and would be stored as 12345678901234.5." in message
        assert "PostgreSQL or MySQL" in message

    with pytest.raises(ValidationError) as info:
        await Everything.objects.create(dec=wide)
    refused(info)
    with pytest.raises(ValidationError) as info:
        await Everything(dec=wide).save()
    refused(info)
    kept.dec = wide
    for options in ({}, {"update_fields": ["dec"]}, {"validate": False}):
        with pytest.raises(ValidationError) as info:
            await kept.save(**options)
        refused(info)
    with pytest.raises(ValidationError) as info:
        await Everything.objects.filter(pk=other.pk).update(dec=wide)
    refused(info)
    with pytest.raises(ValidationError) as info:
        # One row per INSERT: the first is written, then rolled back with the transaction.
        batch = [Everything(dec=D("1.5")), Everything(dec=wide)]
        await Everything.objects.bulk_create(batch, batch_size=1)
    refused(info)
    other.dec = D("2.5")
    with pytest.raises(ValidationError) as info:
        await Everything.objects.bulk_update([other, kept], ["dec"])
    refused(info)
    # A lookup would otherwise match the row SQLite rounds the value to.
    lookups: list[dict[str, Any]] = [
        {"dec": wide},
        {"dec__gte": wide},
        {"dec__in": [D("1"), wide]},
        {"dec__range": (D("0"), wide)},
    ]
    for lookup in lookups:
        with pytest.raises(ValidationError) as info:
            await Everything.objects.filter(**lookup).count()
        refused(info)
    assert await snapshot() == before


async def test_decimals_within_exact_digits_round_trip(amounts: Database):
    """Any decimal of at most 15 significant digits that fits its field comes back exactly.

    This is the promise behind ``features.max_exact_decimal_digits``: SQLite keeps such
    a value as a 64-bit integer or a double and must read it back unchanged, whatever the
    column's scale, on every backend.
    """
    rng = random.Random(20240601)
    table = {
        "whole": Amounts.whole,
        "cents": Amounts.cents,
        "micro": Amounts.micro,
        "fine": Amounts.fine,
        "wei": Amounts.wei,
    }
    # SQLite 3.40 parses these texts to a neighbouring double (``'797.219538'`` becomes
    # 797.2195380000001), which the field's decimal_places no longer hide.
    known = {
        "fine": [D("49443272.1855889"), D("2213725.0956458"), D("65618.4719548301")],
        "wei": [D("797.219538"), D("84709.3607806"), D("0.000003888024343832")],
    }
    columns: dict[str, list[decimal.Decimal]] = {}
    for name, field in table.items():
        places, digits = field.decimal_places, field.max_digits
        # The largest magnitude the field takes within 15 significant digits.
        n = min(digits, 15)
        top = D(10**n - 1).scaleb(digits - places - n)
        smallest = D(1).scaleb(-places)
        values = [D(0), smallest, -smallest, top, -top]
        if places:
            values += [D("0.1"), D("-0.1")]
        values += known.get(name, [])
        while len(values) < 200:
            n = rng.randint(1, 15)
            coefficient = rng.randrange(10 ** (n - 1), 10**n)
            # The last significant digit sits anywhere the field has room for all n digits.
            exponent = rng.randint(-places, digits - places - n)
            values.append(D(coefficient).scaleb(exponent) * rng.choice((1, -1)))
        columns[name] = values
    rows = [Amounts(**{name: values[i] for name, values in columns.items()}) for i in range(200)]
    await Amounts.objects.bulk_create(rows)
    got = await Amounts.objects.order_by("pk").values_list(*AMOUNT_FIELDS)
    for name, values in columns.items():
        back = [row[AMOUNT_FIELDS.index(name)] for row in got]
        wrong = [(v, b) for v, b in zip(values, back, strict=True) if b != v]
        assert not wrong, f"Amounts.{name} came back changed: {wrong[:5]}"
    for name, values in columns.items():
        for value in values[:12]:
            assert await Amounts.objects.filter(**{name: value}).exists(), (name, value)


async def test_integral_decimals_up_to_18_digits_round_trip(amounts: Database):
    values = [
        D(999_999_999_999_999_999),
        D(-999_999_999_999_999_999),
        D(123_456_789_012_345_678),
        D(2**63 - 1),
        D(-(2**63)),
        D(1),
        D(-1),
    ]
    # ``fine`` has room for 18 digits before its 12 decimal places.
    await Amounts.objects.bulk_create(
        [Amounts(whole=v, fine=v if v.adjusted() < 18 else None) for v in values]
    )
    got = await Amounts.objects.order_by("pk").values_list("whole", "fine")
    assert [row[0] for row in got] == values
    assert [row[1] for row in got] == [v if v.adjusted() < 18 else None for v in values]
    assert await Amounts.objects.filter(whole=D(2**63 - 1)).count() == 1
    assert await Amounts.objects.filter(whole__gt=D(10**18)).count() == 1


async def test_integral_decimal_beyond_64_bits_needs_exact_digits(amounts, database: Database):
    value = D(9_999_999_999_999_999_999)  # 19 significant digits, above 2**63
    limit = database.features.max_exact_decimal_digits
    if limit is None:
        await Amounts.objects.create(whole=value)
        assert await Amounts.objects.values_list("whole", flat=True) == [value]
        return
    with pytest.raises(ValidationError) as info:
        await Amounts.objects.create(whole=value)
    assert list(info.value.error_dict) == ["whole"]
    assert "has 19 and would be stored as 1e+19." in info.value.messages[0]
    assert await Amounts.objects.count() == 0


async def test_decimal_order_and_comparisons_stay_numeric(orm):
    values = [
        D("-12.5"),
        D("-1"),
        D("0"),
        D("0.000001"),
        D("0.1"),
        D("2"),
        D("10"),
        D("100.25"),
        D("12345678901234"),
        D("99999999999999.9"),
    ]
    shuffled = random.Random(7).sample(values, len(values))
    await Everything.objects.bulk_create([Everything(dec=v) for v in shuffled])
    ordered = Everything.objects.values_list("dec", flat=True)
    assert await ordered.order_by("dec") == values
    assert await ordered.order_by("-dec") == values[::-1]
    assert await ordered.filter(dec__gt=D("2")).order_by("dec") == values[6:]
    assert await ordered.filter(dec__gte=2).order_by("dec") == values[5:]
    assert await ordered.filter(dec__lt=D("0.1")).order_by("dec") == values[:4]
    assert await ordered.filter(dec__range=(D("-1"), D("10"))).order_by("dec") == values[1:7]
    assert await ordered.filter(dec__in=[D("0.1"), D("10"), D("7")]).order_by("dec") == [
        D("0.1"),
        D("10"),
    ]
    assert await ordered.filter(dec=D("0.000001")).count() == 1
    assert await Everything.objects.aggregate(lo=Min("dec"), hi=Max("dec")) == {
        "lo": D("-12.5"),
        "hi": D("99999999999999.9"),
    }


async def test_decimal_sum_and_avg_of_small_amounts(orm):
    # PostgreSQL and MySQL add decimals exactly. SQLite adds doubles (0.1 + 0.2 is
    # 0.30000000000000004 there); quantizing to decimal_places hides that for small sums.
    await Everything.objects.bulk_create(
        [Everything(dec=D(v)) for v in ("0.1", "0.2", "1234.000005", "-0.3")]
    )
    totals = await Everything.objects.aggregate(total=Sum("dec"), mean=Avg("dec"))
    assert totals == {"total": D("1234.000005"), "mean": D("308.500001")}
    assert str(totals["total"]) == "1234.000005"


async def test_decimal_without_a_field_is_checked_too(orm, database: Database):
    await Everything.objects.create(dec=D("10"))
    # ``F * value`` binds the value by its Python type: there is no field to adapt it.
    factor = D("1.00000000000000001")  # 18 significant digits
    matching = Everything.objects.filter(dec__lt=F("dec") * factor)
    limit = database.features.max_exact_decimal_digits
    if limit is None:
        assert await matching.count() == 1
        return
    with pytest.raises(ValidationError) as info:
        await matching.count()
    assert list(info.value.error_dict) == ["value"]
    assert f"keeps {limit} significant digits" in info.value.messages[0]
    with pytest.raises(ValidationError, match="between 1e-307 and 1e308"):
        await Everything.objects.filter(dec__lt=F("dec") * D("1E+400")).count()


async def test_aware_datetimes_come_back_in_utc(orm):
    moment = datetime.datetime(2024, 6, 1, 12, 30, 45, 123456, tzinfo=PARIS)
    got = await roundtrip(moment=moment)
    assert got.moment == moment
    assert got.moment.utcoffset() == datetime.timedelta(0)
    assert got.moment == datetime.datetime(2024, 6, 1, 10, 30, 45, 123456, tzinfo=datetime.UTC)
    assert (
        await Everything.objects.filter(moment__gt=moment - datetime.timedelta(seconds=1)).count()
        == 1
    )


async def test_naive_datetime_is_rejected(orm):
    with pytest.raises(ValidationError) as info:
        await Everything.objects.create(moment=datetime.datetime(2024, 1, 1))  # noqa: DTZ001 - a naive datetime on purpose
    assert "moment" in info.value.error_dict
    assert "naive" in info.value.messages[0]


async def test_date_time_uuid_json_bytes(orm):
    uid = uuid.uuid4()
    data = {"name": "Zoë 🚀", "list": [1, 2.5, None, True], "nested": {"a": {"b": []}}}
    blob = b"\x00\x01\xffbinary\x00"
    got = await roundtrip(
        day=datetime.date(2024, 2, 29),
        clock=datetime.time(23, 59, 58, 999999),
        uid=uid,
        data=data,
        blob=blob,
    )
    assert got.day == datetime.date(2024, 2, 29)
    assert got.clock == datetime.time(23, 59, 58, 999999)
    assert got.uid == uid and type(got.uid) is uuid.UUID
    assert got.data == data
    assert got.blob == blob and isinstance(got.blob, bytes)
    assert await Everything.objects.filter(uid=uid).count() == 1
    assert await Everything.objects.filter(uid=str(uid)).count() == 1


async def test_json_scalars(orm):
    for value in ["123", 123, "text", [], {"k": "v"}, True]:
        got = await roundtrip(data=value)
        assert got.data == value
        assert type(got.data) is type(value)


async def test_enums_by_value(orm):
    got = await roundtrip(color=Color.GREEN, priority=Priority.HIGH)
    assert got.color is Color.GREEN and got.priority is Priority.HIGH
    assert await Everything.objects.filter(color=Color.GREEN).count() == 1
    assert await Everything.objects.filter(color="green").count() == 1
    with pytest.raises(ValidationError, match="not a valid Color"):
        await Everything.objects.create(color="blue")


async def test_defaults_and_callable_defaults(orm):
    first = await Defaults.objects.create()
    second = await Defaults.objects.create()
    assert first.counter == 5 and first.labels == ["new"] and first.state == "draft"
    assert first.token != second.token
    fresh = await Defaults.objects.get(pk=first.pk)
    assert fresh.token == first.token and fresh.labels == ["new"]
    assert fresh.created.tzinfo is not None
    before = fresh.updated
    fresh.counter = 6
    await fresh.save()
    assert fresh.updated >= before
    assert fresh.created == first.created


async def test_choices_are_validated(orm):
    with pytest.raises(ValidationError, match="not a valid choice"):
        await Defaults.objects.create(state="gone")


async def test_overlong_char_is_never_truncated(orm):
    with pytest.raises(ValidationError, match="at most 20 characters"):
        await Everything.objects.create(char="x" * 21)
    obj = await Everything.objects.create(char="x" * 20)
    # Bypass covet's validation: the database refuses (strict mode) or keeps every
    # character (SQLite ignores VARCHAR lengths); it never truncates silently.
    obj.char = "y" * 21
    try:
        await obj.save(validate=False)
    except DatabaseError:
        expected = "x" * 20
    else:
        expected = "y" * 21
    assert (await Everything.objects.get(pk=obj.pk)).char == expected


async def test_integer_range_is_validated(orm):
    with pytest.raises(ValidationError, match="out of range"):
        await Everything.objects.create(small=2**15)
    with pytest.raises(ValidationError, match="integer"):
        await Everything.objects.create(integer="12x")


async def test_decimal_digits_are_validated(orm):
    with pytest.raises(ValidationError, match="decimal places"):
        await Everything.objects.create(dec=decimal.Decimal("1.1234567"))
    with pytest.raises(ValidationError, match="digits before"):
        await Everything.objects.create(dec=decimal.Decimal("123456789012345"))
