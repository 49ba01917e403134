"""Fixtures for the auth tests: cheap hashers, and a database on every backend.

The ``database`` fixture here is package-scoped (unlike the session-scoped one
of ``tests/db``), so its connection is closed when the auth tests end and it
never holds the ``default`` alias while another directory's database needs it.
It reuses the helpers of ``tests/db/conftest.py``: SQLite always runs,
PostgreSQL and MySQL when ``COVET_TEST_POSTGRES_URL`` / ``COVET_TEST_MYSQL_URL``
are set, each in a throw-away schema or database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
import pytest_asyncio

from covet.auth import Argon2PasswordHasher, PBKDF2PasswordHasher, set_hashers
from covet.sessions import DatabaseSession
from tests.auth.models import APIToken, AuthUser, NamedUser
from tests.db.conftest import BACKENDS, models_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from covet.db.database import Database

MODELS = [AuthUser, NamedUser, APIToken, DatabaseSession]
#: Fast parameters for tests; test_hashers checks the real defaults separately.
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 1024}
CHEAP_PBKDF2 = 1000


@pytest.fixture(autouse=True)
def cheap_hashers() -> Iterator[None]:
    """Hash with cheap parameters so that the tests stay fast."""
    set_hashers(
        [Argon2PasswordHasher(**CHEAP_ARGON2), PBKDF2PasswordHasher(iterations=CHEAP_PBKDF2)]
    )
    yield
    set_hashers(None)


@pytest_asyncio.fixture(scope="package", loop_scope="session", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """Yield a connected default Database with the auth tables, on each backend."""
    async with models_database(request.param, "covet_a", tmp_path_factory, MODELS) as db:
        yield db


@pytest_asyncio.fixture(loop_scope="session")
async def db(database: Database) -> AsyncIterator[Database]:
    """Yield ``database`` with every auth table empty."""
    for model in (APIToken, DatabaseSession, AuthUser, NamedUser):
        await model.objects.all().delete()
    yield database


def client_for(app: object, **kwargs: object) -> httpx.AsyncClient:
    """Return an httpx client calling ``app`` in the test's own event loop.

    covet's TestClient runs the app in a background loop, but a database pool
    belongs to the loop that opened it (the test's), so ORM-backed apps are
    called through httpx's ASGITransport instead.
    """
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://testserver",
        **kwargs,  # type: ignore[arg-type]
    )
