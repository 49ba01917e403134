"""pytest fixtures for projects using the ORM: a test database per run, a rollback per test.

Enable them in the project's top ``conftest.py``::

    pytest_plugins = ["covet.db.pytest_plugin"]

Fixtures:

* ``covet_database_url`` (session): where the test database goes. The
  ``COVET_TEST_DATABASE_URL`` environment variable, else a SQLite file in a
  temporary directory. Override the fixture to choose otherwise.
* ``covet_models`` (session): the models whose tables are created, ``None``
  (the default) for every model imported when the database is set up.
  Override it to return a list, or override ``covet_setup_database`` to run
  migrations instead.
* ``covet_test_database`` (session): a fresh database for this run (a new
  SQLite file; a new schema ``covet_test_<random>`` on PostgreSQL; a new
  database of that name on MySQL), connected as the default database (alias
  ``"default"``), its tables created; dropped at the end of the run.
* ``db`` (function): the same :class:`~covet.db.database.Database`, with the
  test running inside a transaction that is rolled back when it ends, so each
  test starts from the same data.
* ``assert_num_queries``: :func:`covet.db.testing.assert_num_queries`, to
  catch N+1 queries (``async with assert_num_queries(2): ...``).

The fixtures run on pytest-asyncio's session event loop: set
``asyncio_default_fixture_loop_scope = "session"`` and
``asyncio_default_test_loop_scope = "session"`` in the pytest configuration.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from covet.db.database import Database
from covet.db.schema import create_all
from covet.db.testing import assert_num_queries as _assert_num_queries
from covet.db.testing import rollback_after

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from covet.db.models import Model

__all__ = (
    "assert_num_queries",
    "covet_database_url",
    "covet_models",
    "covet_setup_database",
    "covet_test_database",
    "db",
)

ENV_VAR = "COVET_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def covet_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL the per-run test database is created from.

    ``COVET_TEST_DATABASE_URL`` when set (its PostgreSQL database or MySQL
    server hosts the per-run schema or database), else a temporary SQLite file.
    """
    configured = os.environ.get(ENV_VAR, "")
    if configured:
        return configured
    return f"sqlite:///{tmp_path_factory.mktemp('covet_db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def covet_models() -> Sequence[type[Model]] | None:
    """Return the models to create tables for (``None``: every imported model)."""
    return None


@pytest.fixture(scope="session")
def covet_setup_database(
    covet_models: Sequence[type[Model]] | None,
) -> Callable[[Database], Any]:
    """Return the coroutine function that creates the schema of a fresh test database."""

    async def setup(database: Database) -> None:
        await create_all(database, covet_models)

    return setup


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def covet_test_database(
    covet_database_url: str, covet_setup_database: Callable[[Database], Any]
) -> AsyncIterator[Database]:
    """Create, connect and set up this run's test database; drop it at the end."""
    name = f"covet_test_{secrets.token_hex(6)}"
    url = covet_database_url
    admin: Database | None = None
    probe = Database(url, alias=f"covet_test_admin_{secrets.token_hex(4)}", min_size=0)
    creation = probe.backend.creation
    drop_sql: tuple[str, ...] = ()
    if creation.creates_test_database:
        admin = probe
        await admin.connect()
        # Built once connected: MySQL's collation comes from the server.
        for sql in creation.create_test_database_sql(name):
            await admin.execute(sql)
        drop_sql = creation.drop_test_database_sql(name)
        url = creation.test_database_url(url, name)
    if admin is not None:
        # Disconnected meanwhile, so that the test database becomes the default one.
        await admin.disconnect()
    try:
        database = Database(url)
        await database.connect()
        try:
            await covet_setup_database(database)
            yield database
        finally:
            await database.disconnect()
    finally:
        if admin is not None:
            await admin.connect()
            try:
                for sql in drop_sql:
                    await admin.execute(sql)
            finally:
                await admin.disconnect()


@pytest_asyncio.fixture(loop_scope="session")
async def db(covet_test_database: Database) -> AsyncIterator[Database]:
    """Yield the test database with the test inside a transaction rolled back at its end.

    ``transaction()`` blocks in the test become savepoints of that transaction;
    ``on_commit`` callbacks registered in the test therefore never run.
    """
    async with rollback_after(covet_test_database.alias):
        yield covet_test_database


@pytest.fixture
def assert_num_queries() -> Callable[..., Any]:
    """Return :func:`covet.db.testing.assert_num_queries`."""
    return _assert_num_queries
