"""Fixtures for the jobs tests: a job backend on every store, with private names per run.

The database stores run in a throw-away schema (PostgreSQL) or database (MySQL)
named ``covet_jobs_<hex>``, or a temp SQLite file, with the job tables created
from :mod:`covet.jobs.models`; they are emptied after each test. Redis gets a
random key prefix per test, deleted afterwards. Unset or unreachable servers
skip, or fail under ``COVET_TEST_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from covet.db import Database, create_all
from covet.db.exceptions import DatabaseError
from covet.jobs import settings as jobs_settings
from covet.jobs.backends.database import DatabaseBackend
from covet.jobs.backends.redis import RedisBackend
from covet.jobs.models import JobSchedule, QueuedJob
from tests.jobs import jobs as test_jobs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from covet.jobs.backends.base import JobBackend

STORES = ("sqlite", "postgres", "mysql", "redis")
ENV_VARS = {"postgres": "COVET_TEST_POSTGRES_URL", "mysql": "COVET_TEST_MYSQL_URL"}
REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(message: str) -> None:
    """Skip, or fail where ``COVET_TEST_REQUIRE_ALL=1`` says every backend must run."""
    if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"{message} (COVET_TEST_REQUIRE_ALL=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


@dataclass
class Store:
    """Where one parametrization keeps its jobs."""

    kind: str
    database: Database
    url: str = ""
    admin_url: str = ""
    name: str = ""

    def backend(self) -> JobBackend:
        if self.kind == "redis":
            return RedisBackend(
                self.url, prefix=f"jobtest{secrets.token_hex(5)}:", using=self.database.alias
            )
        return DatabaseBackend(self.database)


async def private_database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Create and connect a private database (schema) of ``kind`` with the job tables."""
    name = f"covet_jobs_{secrets.token_hex(5)}"
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("jobs") / "jobs.sqlite3"
        url, admin_url = f"sqlite:///{path}", ""
    else:
        admin_url = os.environ.get(ENV_VARS[kind], "")
        if not admin_url:
            unavailable(f"{ENV_VARS[kind]} is not set; {kind} job tests are skipped")
        admin = Database(admin_url, alias=f"jobs_admin_{secrets.token_hex(3)}", max_size=1)
        try:
            await admin.connect()
        except (DatabaseError, OSError) as exc:
            unavailable(f"Cannot connect to {admin_url}: {exc}")
        try:
            for sql in admin.backend.creation.create_test_database_sql(name):
                await admin.execute(sql)
            url = admin.backend.creation.test_database_url(admin_url, name)
        finally:
            await admin.disconnect()
    database = Database(url, alias=f"jobs_{kind}_{secrets.token_hex(3)}", max_size=12)
    await database.connect()
    await create_all([QueuedJob, JobSchedule, test_jobs.JobRun], using=database.alias)
    return Store(kind, database, url=url, admin_url=admin_url, name=name)


async def drop_private_database(store: Store) -> None:
    """Disconnect and drop what :func:`private_database` made."""
    await store.database.disconnect()
    if store.admin_url:
        admin = Database(store.admin_url, alias=f"jobs_admin_{secrets.token_hex(3)}", max_size=1)
        await admin.connect()
        try:
            for sql in admin.backend.creation.drop_test_database_sql(store.name):
                await admin.execute(sql)
        finally:
            await admin.disconnect()


async def delete_prefix(prefix: str) -> None:
    """Delete every Redis key under ``prefix``."""
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest_asyncio.fixture(scope="package", loop_scope="session", params=STORES)
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    """Yield a store of each kind (Redis: with a SQLite database for transactions)."""
    kind: str = request.param
    if kind == "redis":
        import redis.asyncio as redis_asyncio

        client = redis_asyncio.Redis.from_url(REDIS_URL)
        try:
            await client.ping()
        except (OSError, redis_asyncio.RedisError) as exc:
            unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
        finally:
            await client.aclose()
        sqlite = await private_database("sqlite", tmp_path_factory)
        store = Store("redis", sqlite.database, url=REDIS_URL)
    else:
        store = await private_database(kind, tmp_path_factory)
    try:
        yield store
    finally:
        await drop_private_database(store)


@pytest_asyncio.fixture(loop_scope="session")
async def backend(store: Store) -> AsyncIterator[Any]:
    """Yield a fresh backend on the store; its jobs are deleted afterwards."""
    made = store.backend()
    test_jobs.reset()
    try:
        yield made
    finally:
        if isinstance(made, RedisBackend):
            await made.aclose()
            await delete_prefix(made.prefix)
        db = store.database
        for table in ("covet_jobs", "covet_job_schedules", "jobtest_runs"):
            await db.execute(f"DELETE FROM {db.ops.quote_name(table)}")  # noqa: S608 - our tables


@pytest.fixture(autouse=True)
def _no_configured_backend() -> Iterator[None]:
    """Each test starts with no process-wide jobs backend configured."""
    jobs_settings.reset()
    yield
    jobs_settings.reset()
