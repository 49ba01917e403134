"""How SQLite stores the values it has no type for: dates, times, decimals, UUIDs.

SQLite keeps text, integers, doubles and blobs. Dates and times are stored as
ISO 8601 text (which sorts correctly), UUIDs as 32 hex digits,
and decimals as the nearest double when that is exact (15 significant
digits), else refused: SQLite's NUMERIC affinity would round them silently.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from covet.db.backends.base.operations import utc_datetimes

__all__ = ("MAX_EXACT_DECIMAL_DIGITS",)

#: Significant digits a double holds exactly: what SQLite can store of a decimal.
MAX_EXACT_DECIMAL_DIGITS = 15


_UTC = datetime.UTC


def _datetime_to_db(value: Any) -> Any:
    # Fixed-width text (always with microseconds) so that text order is time order.
    # isoformat() rather than strftime(): half the cost (bulk_create() calls this per row),
    # and years below 1000 keep four digits ("0999-..."), so the width stays fixed.
    if value is None or isinstance(value, str):
        return value
    tz = value.tzinfo
    if tz is _UTC:
        # "2026-01-02 03:04:05.000006+00:00" cut before its offset: one call, no new datetime.
        return value.isoformat(" ", "microseconds")[:26]
    if tz is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


#: "00" to "99" and "000" to "999": the two- and three-digit fields of datetime text.
_D2 = tuple(f"{i:02d}" for i in range(100))
_D3 = tuple(f"{i:03d}" for i in range(1000))


def _datetimes_to_db(column: list[Any]) -> list[Any]:
    # _datetime_to_db() of a whole column: UTC datetimes (what full_clean() leaves) at once.
    if utc_datetimes(column):
        # What isoformat(" ", "microseconds")[:26] writes for a UTC datetime, pieced together
        # from precomputed digits: 0.6 of "%04d-%02d-...%06d" formatting, itself 0.8 of
        # isoformat() (which asks the zone its offset); bulk_create() does this per row.
        d2, d3 = _D2, _D3
        return [
            f"{v.year:04d}-{d2[v.month]}-{d2[v.day]} {d2[v.hour]}:{d2[v.minute]}:"
            f"{d2[v.second]}.{d3[v.microsecond // 1000]}{d3[v.microsecond % 1000]}"
            for v in column
        ]
    return [None if v is None else _datetime_to_db(v) for v in column]


_fromisoformat = datetime.datetime.fromisoformat


def _datetime_from_db(value: Any) -> Any:
    if type(value) is str and len(value) == 26 and value[19] == ".":
        # covet's own naive UTC text ("2026-01-02 03:04:05.000006"), tested first as it is
        # what every row of a DateTimeField column holds: parsing it with the offset spelled
        # out gives an aware UTC datetime several times faster than
        # parse-then-replace(tzinfo=). Text that already has an offset fails here.
        try:
            return _fromisoformat(value + "+00:00")
        except ValueError:
            pass
    if value is None:
        return None
    if isinstance(value, str):
        value = _fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def _time_to_db(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return value.strftime("%H:%M:%S.%f")


def _time_from_db(value: Any) -> Any:
    return (
        value
        if value is None or isinstance(value, datetime.time)
        else (datetime.time.fromisoformat(value))
    )


def _date_to_db(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else value.isoformat()


def _date_from_db(value: Any) -> Any:
    return (
        value
        if value is None or isinstance(value, datetime.date)
        else (datetime.date.fromisoformat(value))
    )


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Rounding a decimal to this context changes it exactly when it has more significant
# digits than SQLite keeps; the exponent range is unbounded so that nothing else rounds.
_EXACT_DIGITS = decimal.Context(
    prec=MAX_EXACT_DECIMAL_DIGITS, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN
)
# Counting the significant digits of a refused value must not round it either.
_ALL_DIGITS = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _decimal_to_db(value: Any) -> Any:
    """Bind a Decimal so that SQLite keeps it exactly, or refuse it.

    A ``NUMERIC(p, s)`` column stores every number as a 64-bit integer or a
    double, whatever ``p`` says. An integral value within 64 bits is bound as an
    ``int`` (exact). Any other value is bound as the nearest double, computed by
    Python: with at most ``max_exact_decimal_digits`` (15) significant digits and
    a magnitude where doubles are normal numbers, it reads back as the same
    decimal. Text is not bound because SQLite's own text-to-double conversion is
    not always correctly rounded (3.40 stores ``'-21.306003574'`` as
    ``-21.306003574000002``). A longer value would be rounded by the database, so
    it is refused instead.

    Raises:
        ValueError: ``value`` has more significant digits than SQLite keeps, or a
            magnitude a double cannot hold; :meth:`Field.get_db_prep_value` turns it
            into a ValidationError naming the field.
    """
    if value is None:
        return None
    exponent = value.adjusted()
    # to_integral_value() neither rounds to the context's precision nor sets its flags.
    if value == value.to_integral_value() and (exponent <= 18 or not value):
        whole = int(value)
        if _INT64_MIN <= whole <= _INT64_MAX:
            return whole
    if -307 <= exponent <= 307 and _EXACT_DIGITS.plus(value) == value:
        return float(value)
    raise ValueError(_inexact_decimal_message(value))


def _inexact_decimal_message(value: decimal.Decimal) -> str:
    """Say why SQLite cannot keep ``value``, what it would store, and what to do."""
    limit = MAX_EXACT_DECIMAL_DIGITS
    stored = float(value)
    shown: float | int = int(stored) if stored.is_integer() and abs(stored) < 2**63 else stored
    if not -307 <= value.adjusted() <= 307:
        return (
            f"SQLite stores a decimal that is not a 64-bit integer as a double, between 1e-307 "
            f"and 1e308 in magnitude; {value!r} would be stored as {shown}. Use PostgreSQL or "
            "MySQL for such values."
        )
    digits = len(value.normalize(_ALL_DIGITS).as_tuple().digits)
    return (
        f"SQLite keeps {limit} significant digits of a decimal; {value!r} has {digits} and "
        f"would be stored as {shown}. Keep values within {limit} significant digits on "
        "SQLite, or use PostgreSQL or MySQL for exact larger amounts."
    )


def _uuid_to_db(value: Any) -> Any:
    return None if value is None else str(value)
