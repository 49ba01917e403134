"""Streaming a queryset (``async for``) fetches from the server in chunks, not all at once.

Memory itself is measured in ``benchmarks/orm/streaming.py`` (1,000,000 rows);
here the mechanism is checked, deterministically: the rows come through the
driver's incremental fetch call (server-side cursor on PostgreSQL, unbuffered
``SSCursor`` on MySQL/MariaDB, ``fetchmany()`` on SQLite), one call per chunk,
and the first object is handed out after the first chunk only.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest

from tests.db.models import Tag

pytest_plugins = ["tests.db.orm_fixtures"]

ROWS = 20_000
CHUNK = 700

#: The driver call that reads one chunk of an incremental result, per backend. A
#: buffered cursor (aiomysql's plain Cursor, asyncpg's fetch()) never calls these.
DRIVER_FETCH = {
    "sqlite": ("aiosqlite", "Cursor", "fetchmany"),
    "postgres": ("asyncpg.cursor", "Cursor", "fetch"),
    "mysql": ("aiomysql", "SSCursor", "fetchmany"),
}


@pytest.fixture
def fetches(database, monkeypatch) -> list[int]:
    """Record the number of rows of each incremental driver fetch on this backend."""
    module, cls_name, method = DRIVER_FETCH[database.vendor]
    cls: Any = getattr(importlib.import_module(module), cls_name)
    original = getattr(cls, method)
    sizes: list[int] = []

    async def counting(self, *args, **kwargs):
        rows = await original(self, *args, **kwargs)
        sizes.append(len(rows))
        return rows

    monkeypatch.setattr(cls, method, counting)
    return sizes


@pytest.fixture
async def many_tags(orm) -> int:
    for start in range(0, ROWS, 5000):
        await Tag.objects.bulk_create(
            [Tag(name=f"t{i:06d}") for i in range(start, min(start + 5000, ROWS))]
        )
    return ROWS


@pytest.mark.parametrize("how", ["iterator", "async_for"])
async def test_streaming_fetches_in_chunks(many_tags, fetches, how):
    chunk = CHUNK if how == "iterator" else 500  # async for uses iterator()'s default
    qs = Tag.objects.order_by("name")
    stream = qs.iterator(chunk_size=chunk) if how == "iterator" else qs
    count = 0
    fetched_at_first: int | None = None
    async for tag in stream:
        if fetched_at_first is None:
            fetched_at_first = len(fetches)
            assert tag.name == "t000000"
        count += 1
    assert count == ROWS
    # The first object came after one round trip, not after the whole result.
    assert fetched_at_first == 1
    full = [size for size in fetches if size]
    assert len(full) == math.ceil(ROWS / chunk)
    assert max(full) == chunk


async def test_breaking_out_early_leaves_the_connection_usable(many_tags, fetches):
    async for tag in Tag.objects.order_by("name").iterator(chunk_size=CHUNK):
        assert tag.name == "t000000"
        break
    assert len(fetches) == 1
    assert await Tag.objects.count() == ROWS
