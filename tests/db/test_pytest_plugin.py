"""covet.db.pytest_plugin in a throwaway project: a database per run, a rollback per test."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from covet.db.database import Database

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = {"postgres": "COVET_TEST_POSTGRES_URL", "mysql": "COVET_TEST_MYSQL_URL"}

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
"""

CONFTEST = """
pytest_plugins = ["covet.db.pytest_plugin"]
"""

TESTS = """
import asyncio

import pytest

from covet.db import Model, fields, transaction
from covet.db.exceptions import IntegrityError, TransactionManagementError


class Writer(Model):
    name = fields.CharField(max_length=50, unique=True)


class Book(Model):
    title = fields.CharField(max_length=50)
    writer = fields.ForeignKey(Writer, related_name="books", on_delete="CASCADE")


SEEN = {}


async def test_first_writes(db):
    SEEN["name"] = db.url.database if db.vendor == "mysql" else str(db.url)
    ann = await Writer.objects.create(name="Ann")
    await Book.objects.bulk_create([Book(title=f"b{i}", writer=ann) for i in range(3)])
    assert await Book.objects.count() == 3


async def test_second_sees_a_clean_database(db):
    assert await Writer.objects.count() == 0
    assert await Book.objects.count() == 0


async def test_savepoints_inside_the_test_transaction(db):
    await Writer.objects.create(name="Bo")
    with pytest.raises(IntegrityError):
        async with transaction():
            await Writer.objects.create(name="Bo")
    async with transaction():
        await Writer.objects.create(name="Cy")
    assert await Writer.objects.count() == 2


async def test_child_tasks_cannot_nest_while_the_test_does(db):
    async with transaction():
        async def child():
            async with transaction():
                pass

        with pytest.raises(TransactionManagementError):
            await asyncio.gather(child())


async def test_assert_num_queries_catches_n_plus_one(db, assert_num_queries):
    ann = await Writer.objects.create(name="Ann")
    for i in range(3):
        await Book.objects.create(title=f"n{i}", writer=ann)
    async with assert_num_queries(1):
        books = await Book.objects.select_related("writer")
        assert {b.writer.name for b in books} == {"Ann"}
    with pytest.raises(AssertionError, match="Expected 1 queries, but 4 ran"):
        async with assert_num_queries(1):
            for book in await Book.objects.all():
                await book.fetch_related("writer")


async def test_last_still_clean(db):
    assert await Writer.objects.count() == 0
"""


def _url(backend: str) -> str | None:
    if backend == "sqlite":
        return None
    url = os.environ.get(ENV_VARS[backend], "")
    if not url:
        if os.environ.get("COVET_TEST_REQUIRE_ALL", "") == "1":
            pytest.fail(f"{ENV_VARS[backend]} is not set (COVET_TEST_REQUIRE_ALL=1)")
        pytest.skip(f"{ENV_VARS[backend]} is not set")
    return url


async def _leftovers(database: Database) -> list[str]:
    if database.vendor == "postgres":
        sql = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'covet_test_%'"
    elif database.vendor == "mysql":
        sql = (
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME LIKE 'covet_test_%'"
        )
    else:
        return []
    return sorted(str(row[0]) for row in await database.fetch_all(sql))


async def test_fixture_set_isolates_each_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    url = _url(database.vendor)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # Load only the plugins the project uses (its conftest names covet's): importing
    # every installed one (hypothesis, schemathesis, faker, ...) took most of the run.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    if url is None:
        monkeypatch.delenv("COVET_TEST_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("COVET_TEST_DATABASE_URL", url)
    before = await _leftovers(database)
    pytester.makefile(".ini", pytest=INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_project=textwrap.dedent(TESTS))
    result = pytester.runpytest_subprocess(
        "-p", "pytest_asyncio.plugin", "-p", "no:cacheprovider", "-q"
    )
    result.assert_outcomes(passed=6)
    # The per-run schema / database is gone again.
    assert await _leftovers(database) == before
