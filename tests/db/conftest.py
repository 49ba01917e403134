"""The ``database`` fixture: one suite, every backend.

SQLite always runs (a temp file). PostgreSQL and MySQL run when
``COVET_TEST_POSTGRES_URL`` / ``COVET_TEST_MYSQL_URL`` are set, each in a
throw-away schema (PostgreSQL, through the ``search_path`` option) or database
(MySQL) named ``covet_t_<random>`` and dropped at the end of the session.
Unset or unreachable servers skip, or fail under ``COVET_TEST_REQUIRE_ALL=1``.

The fixture is package-scoped (one instance per backend for all of ``tests/db``,
on the session event loop), so the databases are disconnected before tests
outside ``tests/db`` run: documentation examples connect their own default
database and must not find ours still registered.

``@pytest.mark.requires("supports_returning")`` skips a test on a backend whose
``database.features`` lacks the flag.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from covet.db.database import Database
from covet.db.exceptions import DatabaseError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

BACKENDS = ("sqlite", "postgres", "mysql")
ENV_VARS = {"postgres": "COVET_TEST_POSTGRES_URL", "mysql": "COVET_TEST_MYSQL_URL"}


@dataclass
class Target:
    """Where the current backend's test database lives, to open more pools on it."""

    backend: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    admin_url: str = ""


TARGETS: dict[str, Target] = {}


def _require_all() -> bool:
    return os.environ.get("COVET_TEST_REQUIRE_ALL", "") == "1"


def _unavailable(message: str) -> None:
    if _require_all():
        pytest.fail(f"{message} (COVET_TEST_REQUIRE_ALL=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


async def _bootstrap(url: str) -> Database:
    db = Database(url, alias=f"bootstrap_{secrets.token_hex(4)}", min_size=1, max_size=1)
    try:
        await db.connect()
    except (DatabaseError, OSError) as exc:
        _unavailable(f"Cannot connect to {db.url}: {exc}")
    return db


@contextlib.asynccontextmanager
async def private_database(
    backend: str, prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    """Make a throw-away database on ``backend`` named ``<prefix>_<random>``; drop it after.

    A schema (PostgreSQL) or a database (MySQL), made with the backend's own test-database
    DDL through a bootstrap connection to the server's URL, or a file (SQLite). Skips, or
    fails under ``COVET_TEST_REQUIRE_ALL=1``, when the server's URL is unset or unreachable.
    Used by this package's ``database`` fixture and by :func:`models_database`.
    """
    name = f"{prefix}_{secrets.token_hex(6)}"
    if backend == "sqlite":
        path = tmp_path_factory.mktemp(prefix) / "test.db"
        yield Target(backend, f"sqlite:///{path}", name=name)
        return
    url = os.environ.get(ENV_VARS[backend], "")
    if not url:
        _unavailable(f"{ENV_VARS[backend]} is not set; {backend} tests are skipped")
    admin = await _bootstrap(url)
    creation = admin.backend.creation
    for sql in creation.create_test_database_sql(name):
        await admin.execute(sql)
    # Disconnect so that the test database, not the admin one, becomes the default.
    await admin.disconnect()
    try:
        yield Target(backend, creation.test_database_url(url, name), name=name, admin_url=url)
    finally:
        await admin.connect()
        for sql in creation.drop_test_database_sql(name):
            await admin.execute(sql)
        await admin.disconnect()


@contextlib.asynccontextmanager
async def models_database(
    backend: str, prefix: str, tmp_path_factory: pytest.TempPathFactory, models: list[Any]
) -> AsyncIterator[Database]:
    """Yield a connected default Database in a :func:`private_database`, with ``models``' tables.

    The package-scoped ``database`` fixtures of the admin, GraphQL and auth suites: the
    tables are created on entry and dropped (while still connected) before the
    throw-away schema or database goes.
    """
    from covet.db import create_all, drop_all

    async with private_database(backend, prefix, tmp_path_factory) as target:
        db = Database(target.url, **target.options)
        try:
            await db.connect()
            await drop_all(models)
            await create_all(models)
            yield db
        finally:
            if db.is_connected:
                await drop_all(models)
            await db.disconnect()


@pytest_asyncio.fixture(scope="package", loop_scope="session", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """Yield a connected default Database on each backend, in a private schema/database."""
    backend: str = request.param
    async with private_database(backend, "covet_t", tmp_path_factory) as target:
        TARGETS[backend] = target
        db = Database(target.url, **target.options)
        try:
            await db.connect()
            yield db
        finally:
            await db.disconnect()
            TARGETS.pop(backend, None)


@pytest.fixture
def target(database: Database) -> Target:
    """Return where the current backend's test database lives."""
    return TARGETS[database.vendor]


@pytest_asyncio.fixture(loop_scope="session")
async def make_database(target: Target) -> AsyncIterator[Callable[..., Awaitable[Database]]]:
    """Open extra connected Databases on the current backend; all are closed afterwards.

    ``make(pool_only=True, ...)`` runs every statement on the pool, SQLite's
    included (``shared_connection=False``), for tests of the pool itself.
    """
    opened: list[Database] = []

    async def make(*, pool_only: bool = False, **options: Any) -> Database:
        options.setdefault("alias", f"extra_{secrets.token_hex(4)}")
        if pool_only and target.backend == "sqlite":
            options["shared_connection"] = False
        db = Database(target.url, **{**target.options, **options})
        await db.connect()
        opened.append(db)
        return db

    yield make
    for db in opened:
        await db.disconnect()


@pytest_asyncio.fixture(loop_scope="session")
async def scratch(database: Database) -> AsyncIterator[Callable[[str, str], Awaitable[str]]]:
    """Create tables for one test (``await scratch("t", "id INT, ...")``) and drop them after."""
    created: list[str] = []

    async def create(name: str, columns: str) -> str:
        table = f"{name}_{secrets.token_hex(3)}"
        quoted = database.ops.quote_name(table)
        await database.execute(
            f"CREATE TABLE {quoted} ({columns}) {database.ops.create_table_suffix()}"
        )
        created.append(table)
        return table

    yield create
    for table in reversed(created):
        await database.execute(f"DROP TABLE {database.ops.quote_name(table)}")


@pytest.fixture(autouse=True)
def _requires_feature(request: pytest.FixtureRequest) -> None:
    """Skip a test marked ``requires(flag)`` when the backend's features lack the flag."""
    marker = request.node.get_closest_marker("requires")
    if marker is None or "database" not in request.fixturenames:
        return
    db: Database = request.getfixturevalue("database")
    for flag in marker.args:
        if not hasattr(db.features, flag):
            pytest.fail(f"Unknown feature flag {flag!r} in @pytest.mark.requires.")
        if not getattr(db.features, flag):
            pytest.skip(f"{db.vendor} does not have features.{flag}")
