"""PostgreSQL value codecs: the asyncpg codecs covet installs, and DateTimeField's converter."""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ("datetime_from_pg", "decode_timestamp", "encode_timestamp")

#: The zero of PostgreSQL's binary timestamps, naive and in UTC.
_PG_EPOCH_UTC = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_PG_EPOCH = _PG_EPOCH_UTC.replace(tzinfo=None)
_MICROSECOND = datetime.timedelta(microseconds=1)
#: The binary values of 'infinity' and '-infinity'.
_PG_INFINITY, _PG_NEG_INFINITY = 2**63 - 1, -(2**63)


def decode_timestamp(value: tuple[int]) -> datetime.datetime:
    """Read a ``timestamp without time zone`` as the aware UTC datetime covet stores.

    asyncpg's own codec returns it naive, and refuses aware datetimes as parameters, so
    a model over a table made elsewhere could not write its DateTimeField at all.
    """
    micros = value[0]
    if micros == _PG_INFINITY:
        return datetime.datetime.max.replace(tzinfo=datetime.UTC)
    if micros == _PG_NEG_INFINITY:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return _PG_EPOCH_UTC + datetime.timedelta(microseconds=micros)


def encode_timestamp(value: datetime.datetime) -> tuple[int]:
    """Write a datetime into ``timestamp without time zone``: aware ones as their UTC time."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return ((value - _PG_EPOCH) // _MICROSECOND,)


def datetime_from_pg(value: Any) -> Any:
    """Return a datetime read from PostgreSQL aware in UTC (DateTimeField's converter)."""
    # timestamptz comes back aware (UTC) except for 'infinity' and '-infinity' (what
    # asyncpg writes datetime.max and datetime.min as), which asyncpg reads naive.
    # timestamp without time zone arrives aware through codecs.decode_timestamp().
    if value is None:
        return None
    tz = value.tzinfo
    if tz is datetime.UTC:
        return value
    if tz is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)
