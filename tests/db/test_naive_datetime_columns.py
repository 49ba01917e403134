"""A DateTimeField over a column without a time zone reads and writes aware UTC datetimes.

covet creates time-zone-aware columns, but a model may map a table made
elsewhere (PostgreSQL ``timestamp``, MySQL ``DATETIME``, SQLite text). On
PostgreSQL covet's ``timestamp`` codec reads such values aware in UTC and writes
aware datetimes (asyncpg's own refuses them).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import pytest

from covet.db import Model, fields

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database

UTC = datetime.UTC
TABLE = "naive_stamp"


class NaiveStamp(Model):
    at = fields.DateTimeField(null=True)

    class Meta:
        table = TABLE


NAIVE_TYPE = {"sqlite": "TEXT", "postgres": "timestamp", "mysql": "DATETIME(6)"}
AUTO_KEY = {
    "sqlite": "id INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgres": "id BIGSERIAL PRIMARY KEY",
    "mysql": "id BIGINT AUTO_INCREMENT PRIMARY KEY",
}


@pytest.fixture
async def naive_table(database: Database) -> AsyncIterator[Database]:
    quoted = database.ops.quote_name(TABLE)
    await database.execute(
        f"CREATE TABLE {quoted} ({AUTO_KEY[database.vendor]}, "
        f"at {NAIVE_TYPE[database.vendor]} NULL) {database.ops.create_table_suffix()}"
    )
    try:
        yield database
    finally:
        await database.execute(f"DROP TABLE {quoted}")


async def test_naive_column_round_trips_aware_utc(naive_table):
    moment = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    elsewhere = datetime.datetime(
        2024, 5, 6, 9, 8, 9, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    first = await NaiveStamp.objects.create(at=moment)
    second = await NaiveStamp.objects.create(at=elsewhere)
    empty = await NaiveStamp.objects.create(at=None)
    rows = {s.pk: s.at for s in await NaiveStamp.objects.all()}
    assert rows == {first.pk: moment, second.pk: moment, empty.pk: None}
    assert all(v is None or v.tzinfo is UTC for v in rows.values())
    assert await NaiveStamp.objects.filter(at=moment).count() == 2
    assert await NaiveStamp.objects.filter(at__gt=moment).count() == 0
    assert await NaiveStamp.objects.values_list("at", flat=True).get(pk=first.pk) == moment


async def test_postgres_infinity_in_a_naive_column(naive_table):
    if naive_table.vendor != "postgres":
        pytest.skip("only PostgreSQL timestamps have infinity")
    quoted = naive_table.ops.quote_name(TABLE)
    await naive_table.execute(f"INSERT INTO {quoted} (at) VALUES ('infinity'), ('-infinity')")  # noqa: S608 - a quoted identifier, no values
    values = sorted(await NaiveStamp.objects.values_list("at", flat=True))
    assert values == [
        datetime.datetime.min.replace(tzinfo=UTC),
        datetime.datetime.max.replace(tzinfo=UTC),
    ]
