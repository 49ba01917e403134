from __future__ import annotations

import asyncio

import pytest

from covet.auth import LoginThrottle
from covet.db import create_all, drop_all
from covet.exceptions import HTTPException
from covet.ratelimit import (
    DatabaseBackend,
    MemoryBackend,
    RateLimitBackend,
    RateLimitCounter,
    RateLimiter,
)
from covet.requests import Request


@pytest.fixture
async def counters(db):
    await drop_all([RateLimitCounter])
    await create_all([RateLimitCounter])
    yield
    await drop_all([RateLimitCounter])


pytestmark = pytest.mark.usefixtures("counters")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("algorithm", ["fixed-window", "sliding-window", "token-bucket"])
async def test_answers_like_the_memory_backend(algorithm):
    clock = Clock()
    backend = DatabaseBackend()
    assert isinstance(backend, RateLimitBackend)
    database = RateLimiter("3/minute", algorithm=algorithm, backend=backend, clock=clock)
    memory = RateLimiter("3/minute", algorithm=algorithm, backend=MemoryBackend(), clock=clock)
    for step in [0, 1, 1, 1, 5, 20, 30, 45, 61, 0, 1, 90, 1, 1]:
        clock.now += step
        expected = await memory.hit("k")
        actual = await database.hit("k")
        assert actual == expected, (step, clock.now)


async def test_keys_are_counted_separately():
    limiter = RateLimiter("1/minute", algorithm="fixed-window", backend=DatabaseBackend())
    assert (await limiter.hit("a")).allowed
    assert (await limiter.hit("b")).allowed
    assert not (await limiter.hit("a")).allowed


@pytest.mark.parametrize("algorithm", ["fixed-window", "sliding-window", "token-bucket"])
async def test_concurrent_hits_never_exceed_the_limit(algorithm):
    clock = Clock(1_800_000_010.0)
    limiter = RateLimiter("5/minute", algorithm=algorithm, backend=DatabaseBackend(), clock=clock)
    results = await asyncio.gather(*(limiter.hit("busy") for _ in range(20)))
    assert sum(result.allowed for result in results) == 5


async def test_expired_counters_are_swept():
    clock = Clock()
    backend = DatabaseBackend(sweep_every=2)
    limiter = RateLimiter("5/second", algorithm="fixed-window", backend=backend, clock=clock)
    await limiter.hit("a")
    clock.now += 10
    await limiter.hit("b")  # the second hit sweeps the first window away
    assert await RateLimitCounter.objects.count() == 1
    clock.now += 10
    assert await backend.clear_expired(clock.now) == 1


async def test_login_throttle_on_the_database():
    throttle = LoginThrottle("2/minute", backend=DatabaseBackend())
    request = Request({"type": "http", "headers": [], "client": ("10.1.1.1", 5)})
    await throttle.check(request, "ann")
    await throttle.check(request, "ann")
    with pytest.raises(HTTPException) as info:
        await throttle.check(request, "ann")
    assert info.value.status_code == 429
