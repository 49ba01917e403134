"""Fixtures for the channels tests: a ``Channels`` per backend, with unique names per run.

Redis and PostgreSQL are shared with other test runs: every ``Channels`` made
here gets a random prefix (keys ``chtest<hex>:...``, tables ``chtest<hex>_...``)
and everything under it is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from covet.channels import Channels

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("COVET_TEST_POSTGRES_URL", "")


def unavailable(reason: str) -> None:
    """Skip, or fail where ``COVET_TEST_REQUIRE_ALL=1`` says every backend must run."""
    if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason} (COVET_TEST_REQUIRE_ALL=1)")
    pytest.skip(reason)


async def require_redis() -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis_asyncio.RedisError) as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()


def require_postgres() -> str:
    if not POSTGRES_URL:
        unavailable("COVET_TEST_POSTGRES_URL is not set; PostgreSQL channels tests are skipped")
    return POSTGRES_URL


def backend_url(backend: str) -> str:
    return {"memory": "memory://", "redis": REDIS_URL, "postgres": POSTGRES_URL}[backend]


def unique_prefix(backend: str) -> str:
    tag = f"chtest{secrets.token_hex(5)}"
    return f"{tag}_" if backend == "postgres" else f"{tag}:"


async def drop_prefix(backend: str, prefix: str) -> None:
    """Delete every Redis key or PostgreSQL table a test's Channels made."""
    if backend == "redis":
        import redis.asyncio as redis_asyncio

        client = redis_asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
    elif backend == "postgres":
        import asyncpg

        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            for suffix in ("messages", "sequences", "presence"):
                await connection.execute(f'DROP TABLE IF EXISTS "{prefix}{suffix}"')
        finally:
            await connection.close()


@pytest.fixture(params=["memory", "redis", "postgres"])
async def make_channels(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Channels]]:
    """Yield a factory of ``Channels`` on one backend, all sharing one unique prefix."""
    backend: str = request.param
    if backend == "redis":
        await require_redis()
    elif backend == "postgres":
        require_postgres()
    prefix = unique_prefix(backend)
    made: list[Channels] = []

    def make(**options: Any) -> Channels:
        options.setdefault("prefix", prefix)
        made.append(Channels(backend_url(backend), **options))
        return made[-1]

    make.backend = backend  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for channels in made:
            with contextlib.suppress(Exception):
                await channels.close()
        await drop_prefix(backend, prefix)
