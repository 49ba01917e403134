"""Database: URLs and options, connect/disconnect, the registry, value round trips."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import threading
import uuid
from typing import Any

import pytest

from covet.db.database import Database, DatabaseURL, get_database
from covet.db.exceptions import InterfaceError
from covet.exceptions import ImproperlyConfigured

# Column types per backend for the round-trip table (data, not branching logic).
COLUMN_TYPES = {
    "sqlite": {
        "int": "INTEGER",
        "float": "REAL",
        "decimal": "NUMERIC",
        "bool": "BOOLEAN",
        "str": "TEXT",
        "date": "TEXT",
        "time": "TEXT",
        "datetime": "TEXT",
        "uuid": "TEXT",
        "json": "TEXT",
        "bytes": "BLOB",
    },
    "postgres": {
        "int": "BIGINT",
        "float": "DOUBLE PRECISION",
        "decimal": "NUMERIC(40, 20)",
        "bool": "BOOLEAN",
        "str": "TEXT",
        "date": "DATE",
        "time": "TIME",
        "datetime": "TIMESTAMPTZ",
        "uuid": "UUID",
        "json": "JSONB",
        "bytes": "BYTEA",
    },
    "mysql": {
        "int": "BIGINT",
        "float": "DOUBLE",
        "decimal": "DECIMAL(40, 20)",
        "bool": "BOOLEAN",
        "str": "TEXT",
        "date": "DATE",
        "time": "TIME(6)",
        "datetime": "DATETIME(6)",
        "uuid": "CHAR(36)",
        "json": "JSON",
        "bytes": "LONGBLOB",
    },
}

SAMPLES: dict[str, list[Any]] = {
    "int": [0, -(2**63), 2**63 - 1],
    "float": [0.5, -1e300],
    "decimal": [
        decimal.Decimal("12345678901234567890.12345678901234567890"),
        decimal.Decimal("-0.1"),
    ],
    "bool": [True, False],
    "str": ["", "héllo wörld ✓ 😀", 'it\'s "quoted" \\ 50% _ :x'],
    "date": [datetime.date(1999, 12, 31), datetime.date(2024, 2, 29)],
    "time": [datetime.time(23, 59, 59, 999999), datetime.time(0, 0)],
    "datetime": [
        datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC),
        datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC),
    ],
    "uuid": [uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.uuid4()],
    "json": [{"a": [1, 2.5, None, True, {"b": "ü"}], "n": {"deep": [[[]]]}}, [1, "x"], "s", 3],
    "bytes": [b"\x00\x01\xff\x00", b""],
}


def test_url_parsing_and_masking():
    url = DatabaseURL("postgresql://ann:s%40cret@db.example.com:5433/app?max_size=3")
    assert (url.scheme, url.username, url.password) == ("postgresql", "ann", "s@cret")
    assert (url.host, url.port, url.database) == ("db.example.com", 5433, "app")
    assert url.query == {"max_size": "3"}
    assert str(url) == "postgresql://ann:***@db.example.com:5433/app?max_size=3"
    assert "cret" not in repr(url)
    assert DatabaseURL("sqlite:///rel/app.db").database == "rel/app.db"
    assert DatabaseURL("sqlite:////abs/app.db").database == "/abs/app.db"
    assert DatabaseURL("sqlite:///:memory:").database == ":memory:"


def test_options_from_url_and_kwargs_are_typed():
    db = Database(
        "postgresql://u@h/db?max_size=20&command_timeout=5&statement_cache_size=0&sslmode=disable"
    )
    assert db.backend.max_size == 20
    assert db.settings["command_timeout"] == 5.0
    assert db.settings["statement_cache_size"] == 0
    assert db.settings["max_inactive_connection_lifetime"] == 300.0
    db = Database("sqlite:///x.db", durable="yes", max_size=2, timeout=3)
    assert db.settings["durable"] is True
    assert db.backend.max_size == 2 and db.timeout == 3
    assert Database("sqlite:///:memory:").backend.max_size == 1
    assert Database("mysql://root@h/db", pool_recycle=60).settings["pool_recycle"] == 60.0
    assert Database("mysql://root@h/db").settings["ping_interval"] == 1.0
    assert Database("mysql://root@h/db?ping_interval=2.5").settings["ping_interval"] == 2.5
    assert Database("mysql://root@h/db", ping_interval=5).settings["ping_interval"] == 5.0


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("sqlite:///x.db", {"colour": "red"}, "Unknown database option\\(s\\) 'colour' for SQLite"),
        ("postgresql://h/db?cmd_timeout=1", {}, "Unknown database option\\(s\\) 'cmd_timeout'"),
        (
            "postgresql://h/db?max_size=ten",
            {},
            "Invalid value 'ten' for database option 'max_size'",
        ),
        ("sqlite:///x.db", {"durable": "maybe"}, "Invalid value 'maybe' for database option"),
        ("mysql://h/db", {"pool_recycle": "x"}, "Use a float"),
        ("mysql://h/db?ping_interval=soon", {}, "Invalid value 'soon' for database option"),
        ("mysql://h/db?ping_interval=-1", {}, "Invalid ping_interval -1.0 .*Use 0"),
        ("mysql://h/db", {"ping_interval": float("inf")}, "Invalid ping_interval inf"),
        ("mysql://u:pw@h/db", {"ping_interval": float("nan")}, "u:\\*\\*\\*@h/db"),
        ("mysql://h/db?command_timeout=-1", {}, "Invalid command_timeout -1.0 .*or 0"),
        ("mysql://h/db", {"command_timeout": float("inf")}, "Invalid command_timeout inf"),
        ("postgresql://h/db", {"ping_interval": 1}, "Unknown database option\\(s\\) 'ping_in"),
        ("sqlite:///x.db", {"max_size": True}, "Invalid value True"),
        ("oracle://h/db", {}, "Unknown database URL scheme 'oracle'"),
        ("not a url", {}, "Invalid database URL"),
        ("sqlite://", {}, "names no file"),
        ("postgresql://h:99999/db", {}, "Invalid port"),
        ("sqlite:///x.db", {"timeout": 0}, "Invalid timeout"),
        ("sqlite:///x.db", {"min_size": 3, "max_size": 0}, "Invalid pool size"),
        ("sqlite:///x.db", {"min_size": 3, "max_size": 2}, "Use 0 <= min_size <= max_size"),
        ("sqlite:///x.db?max_size=1&max_size=2", {}, "given twice"),
    ],
)
def test_bad_options_are_improperly_configured(url, options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        Database(url, **options)


async def test_registry_aliases_and_default(database, tmp_path):
    assert get_database() is database
    assert get_database(database.alias) is database
    replica = Database(f"sqlite:///{tmp_path / 'r.db'}", alias="replica")
    assert not replica.is_connected
    with pytest.raises(ImproperlyConfigured, match="No database with alias 'replica'"):
        get_database("replica")
    async with replica:
        assert get_database("replica") is replica
        assert get_database() is database
        clash = Database(f"sqlite:///{tmp_path / 'c.db'}", alias="replica")
        with pytest.raises(ImproperlyConfigured, match="already uses alias 'replica'"):
            await clash.connect()
    assert not replica.is_connected
    with pytest.raises(ImproperlyConfigured, match="No database with alias 'replica'"):
        get_database("replica")
    with pytest.raises(InterfaceError, match="is not connected"):
        await replica.fetch_val("SELECT 1")


async def test_connect_and_disconnect_are_idempotent(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'i.db'}", alias="idem")
    await db.connect()
    await db.connect()
    assert await db.fetch_val("SELECT 1") == 1
    await db.disconnect()
    await db.disconnect()
    assert "connected=False" in repr(db)


async def wait_for_threads_to_end(before: set[threading.Thread]) -> set[threading.Thread]:
    """Return the threads started since ``before`` still alive after up to 2 s."""
    extra = set(threading.enumerate()) - before
    for _ in range(200):
        extra = set(threading.enumerate()) - before
        if not extra:
            break
        await asyncio.sleep(0.01)
    return extra


async def test_sqlite_leaves_no_threads_behind(tmp_path):
    before = set(threading.enumerate())
    db = Database(f"sqlite:///{tmp_path / 't.db'}", alias="threads", max_size=3)
    async with db, db.connection(), db.connection(), db.connection():
        assert len(set(threading.enumerate()) - before) >= 3
    assert await wait_for_threads_to_end(before) == set()


async def test_sqlite_memory_is_shared_by_pool_connections_and_private_per_database():
    async with (
        Database("sqlite:///:memory:", alias="mem1", max_size=2) as one,
        Database("sqlite:///:memory:", alias="mem2") as two,
    ):
        async with one.connection() as a, one.connection() as b:
            assert a is not b
            await a.execute("CREATE TABLE shared (x INTEGER)")
            await a.execute("INSERT INTO shared VALUES (1)")
            assert await b.fetch_val("SELECT x FROM shared") == 1
        assert await one.fetch_val("SELECT COUNT(*) FROM shared") == 1
        assert await two.fetch_val("SELECT COUNT(*) FROM sqlite_master") == 0


async def test_adapters_and_converters_round_trip(database, scratch):
    types = COLUMN_TYPES[database.vendor]
    columns = ", ".join(f"c_{name} {sql_type}" for name, sql_type in types.items())
    table = await scratch("values", f"id INTEGER PRIMARY KEY, {columns}")
    q = database.ops.quote_name(table)
    names = list(types)
    ph = database.ops.placeholder
    insert = (
        f"INSERT INTO {q} (id, {', '.join('c_' + n for n in names)}) "  # noqa: S608
        f"VALUES ({', '.join(ph(i + 1) for i in range(len(names) + 1))})"
    )
    samples = dict(SAMPLES)
    limit = database.features.max_exact_decimal_digits
    if limit is not None:
        # Wider decimals are refused there, never rounded (tests/db/test_fields.py).
        samples["decimal"] = [d for d in SAMPLES["decimal"] if len(d.as_tuple().digits) <= limit]
    rows = max(len(v) for v in samples.values())
    expected = []
    async with database.connection() as conn:
        for i in range(rows):
            values = [samples[n][i % len(samples[n])] for n in names]
            expected.append(values)
            adapted = []
            for name, value in zip(names, values, strict=True):
                adapter = database.ops.get_adapter(name)
                adapted.append(value if adapter is None else adapter(value))
            await conn.execute(insert, (i, *adapted))
        await conn.execute(f"INSERT INTO {q} (id) VALUES ({ph(1)})", (rows,))  # noqa: S608
        got = await conn.fetch_all(
            f"SELECT {', '.join('c_' + n for n in names)} FROM {q} ORDER BY id"  # noqa: S608
        )
    converters = [database.ops.get_converter(name) for name in names]
    decoded = [
        [
            value if conv is None else conv(value)
            for conv, value in zip(converters, row, strict=True)
        ]
        for row in got
    ]
    assert decoded[:-1] == expected
    assert decoded[-1] == [None] * len(names)
    for row in decoded[:-1]:
        for name, value in zip(names, row, strict=True):
            sample_type = type(SAMPLES[name][0])
            if name != "json":
                assert type(value) is sample_type, (name, value)


def test_sqlite_datetime_text_reads_as_aware_utc_with_or_without_an_offset():
    convert = Database("sqlite:///x.db").backend.ops.get_converter("datetime")
    assert convert is not None
    utc = datetime.UTC
    naive_text = convert("2026-01-02 03:04:05.000006")
    assert naive_text == datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=utc)
    assert naive_text.tzinfo is utc
    offset_text = convert("2026-01-02T05:04:05+02:00")
    assert offset_text == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=utc)
    assert offset_text.tzinfo is utc
    assert convert("2026-01-02") == datetime.datetime(2026, 1, 2, tzinfo=utc)
    with pytest.raises(ValueError, match="Invalid isoformat"):
        convert("yesterday")
