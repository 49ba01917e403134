"""Fixtures shared by the ORM tests (models and per-test clean tables).

``orm`` creates every table of :mod:`tests.db.models` once per backend (the
first time a test asks for it on that ``database``) and empties them before
each test, children first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest_asyncio

from covet.db.schema import build_metadata, create_all, drop_all

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.db.database import Database

_ready: set[int] = set()


@pytest_asyncio.fixture(loop_scope="session")
async def orm(database: Database) -> AsyncIterator[Database]:
    """Yield ``database`` with the test models' tables present and empty."""
    from tests.db.models import ALL_MODELS

    if id(database) not in _ready:
        await drop_all(database, ALL_MODELS)
        await create_all(database, ALL_MODELS)
        _ready.add(id(database))
    else:
        tables = build_metadata(ALL_MODELS).sorted_tables
        for table in reversed(tables):
            await database.execute(f"DELETE FROM {database.ops.quote_name(table.name)}")  # noqa: S608 - identifiers are quoted, values are bound
    yield database
