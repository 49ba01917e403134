from __future__ import annotations

import os
import uuid

import pytest

from covet import Covet
from covet.exceptions import ImproperlyConfigured
from covet.ratelimit import (
    MemoryBackend,
    Rate,
    RateLimitBackend,
    RateLimiter,
    RateLimitResult,
    RedisBackend,
    client_ip,
    key_by_ip,
    key_by_user,
    key_by_user_and_ip,
    parse_rate,
    rate_limit,
)
from covet.requests import Request
from covet.testing import TestClient

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = 1_200_000.0  # a multiple of 60 and 3600: the start of a window


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def backend(request):
    if request.param == "memory":
        yield MemoryBackend()
        return
    from tests.test_sessions import redis_available

    await redis_available()
    prefix = f"covet-test:{uuid.uuid4().hex}:"
    redis_backend = RedisBackend(REDIS_URL, prefix=prefix)
    try:
        yield redis_backend
    finally:
        client = redis_backend._redis.get()
        keys = await client.keys(prefix + "*")
        if keys:
            await client.delete(*keys)
        await redis_backend.aclose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/minute", Rate(100, 60)),
        ("5/second", Rate(5, 1)),
        ("5/s", Rate(5, 1)),
        ("10/15 minutes", Rate(10, 900)),
        ("1000 per day", Rate(1000, 86400)),
        (" 3 / hours ", Rate(3, 3600)),
        ("2/2h", Rate(2, 7200)),
    ],
)
def test_parse_rate(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "100", "abc/minute", "10/fortnight", "0/minute", "-1/s", "1.5/s", "10/0 seconds", 10],
)
def test_parse_rate_refuses_nonsense_clearly(text):
    with pytest.raises(ImproperlyConfigured, match=r"[Rr]ate"):
        parse_rate(text)


def test_limiter_validates_algorithm_and_backend():
    with pytest.raises(ImproperlyConfigured, match="algorithm"):
        RateLimiter("1/s", algorithm="leaky")  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="backend"):
        RateLimiter("1/s", backend=object())  # type: ignore[arg-type]
    assert isinstance(MemoryBackend(), RateLimitBackend)


async def test_fixed_window(backend):
    clock = Clock()
    limiter = RateLimiter("3/minute", algorithm="fixed-window", backend=backend, clock=clock)
    results = [await limiter.hit("k") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert results[3].retry_after == pytest.approx(60)
    clock.now = T0 + 59.5
    refused = await limiter.hit("k")
    assert not refused.allowed and refused.retry_after == pytest.approx(0.5)
    # Another key has its own budget.
    assert (await limiter.hit("other")).allowed
    # A new window resets the count: the boundary burst fixed windows allow.
    clock.now = T0 + 60
    assert [(await limiter.hit("k")).allowed for _ in range(4)] == [True, True, True, False]


async def test_sliding_window(backend):
    clock = Clock()
    limiter = RateLimiter("10/minute", algorithm="sliding-window", backend=backend, clock=clock)
    allowed = [(await limiter.hit("k")).allowed for _ in range(11)]
    assert allowed == [True] * 10 + [False]
    # At the next window's start the previous one still counts fully...
    clock.now = T0 + 60
    refused = await limiter.hit("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(6)
    clock.now = T0 + 65.9
    assert not (await limiter.hit("k")).allowed
    # ...and fades linearly: 10% of the window later one hit fits again.
    clock.now = T0 + 66
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    # No burst at a window boundary, unlike a fixed window.
    clock.now = T0 + 240
    assert sum([(await limiter.hit("b")).allowed for _ in range(20)]) == 10
    clock.now = T0 + 300
    assert sum([(await limiter.hit("b")).allowed for _ in range(20)]) == 0


async def test_sliding_window_refused_in_a_full_current_window(backend):
    clock = Clock()
    clock.now = T0 + 30
    limiter = RateLimiter("4/minute", algorithm="sliding-window", backend=backend, clock=clock)
    assert [(await limiter.hit("k")).allowed for _ in range(5)] == [True] * 4 + [False]
    refused = await limiter.hit("k")
    # Next window starts in 30 s; the 4 hits then weigh 4*(1-x) <= 3 once x >= 1/4: 15 s more.
    assert refused.retry_after == pytest.approx(45)
    clock.now = T0 + 30 + 45
    assert (await limiter.hit("k")).allowed


async def test_token_bucket(backend):
    clock = Clock()
    limiter = RateLimiter("5/10 seconds", algorithm="token-bucket", backend=backend, clock=clock)
    results = [await limiter.hit("k") for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert results[4].remaining == 0
    assert results[5].retry_after == pytest.approx(2)  # one token every 2 s
    clock.now = T0 + 1.9
    assert not (await limiter.hit("k")).allowed
    clock.now = T0 + 2
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    # A long pause refills the bucket, but never beyond its capacity.
    clock.now = T0 + 1000
    assert [(await limiter.hit("k")).allowed for _ in range(6)] == [True] * 5 + [False]


async def test_refused_hits_are_not_counted(backend):
    clock = Clock()
    limiter = RateLimiter("2/minute", algorithm="sliding-window", backend=backend, clock=clock)
    for _ in range(50):
        await limiter.hit("k")
    clock.now = T0 + 120  # two windows later everything has faded
    assert (await limiter.hit("k")).allowed


def test_result_headers():
    result = RateLimitResult(
        allowed=False, limit=5, remaining=0, reset_after=12.2, retry_after=3.1, period=60
    )
    headers = result.headers(now=1000.0)
    assert headers == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "13",
        "RateLimit-Policy": "5;w=60",
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1013",
        "Retry-After": "4",
    }


async def test_memory_backend_is_bounded():
    memory = MemoryBackend(max_keys=10)
    limiter = RateLimiter("1/minute", backend=memory)
    for i in range(100):
        await limiter.hit(f"k{i}")
    assert len(memory) <= 10


def connection(client=("10.0.0.5", 1234), headers=(), user=None) -> Request:
    scope = {
        "type": "http",
        "client": client,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }
    if user is not None:
        scope["user"] = user
    return Request(scope)


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies():
    forwarded = [("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.7")]
    assert client_ip(connection(headers=forwarded)) == "10.0.0.5"
    assert client_ip(connection(headers=forwarded), ["10.0.0.0/8"]) == "1.2.3.4"
    assert client_ip(connection(headers=forwarded), ["192.168.0.1"]) == "10.0.0.5"
    assert client_ip(connection(client=None)) == "unknown"
    assert client_ip(connection(), ["10.0.0.0/8"]) == "10.0.0.5"
    with pytest.raises(ImproperlyConfigured, match="proxy"):
        key_by_ip(trusted_proxies=["not-an-ip"])


class User:
    def __init__(self, id: int, authenticated: bool = True) -> None:
        self.id = id
        self.is_authenticated = authenticated


def test_key_functions():
    assert key_by_ip()(connection()) == "ip:10.0.0.5"
    assert key_by_user()(connection(user=User(7))) == "user:7"
    assert key_by_user()(connection(user=User(7, authenticated=False))) == "ip:10.0.0.5"
    assert key_by_user()(connection()) == "ip:10.0.0.5"
    assert key_by_user_and_ip()(connection(user=User(7))) == "ip:10.0.0.5|user:7"
    assert key_by_user_and_ip()(connection()) == "ip:10.0.0.5|user:-"


def make_app(clock: Clock) -> Covet:
    app = Covet(allowed_hosts=["testserver"])

    @app.post("/login")
    @rate_limit("2/minute", clock=clock)
    async def login(request):
        return {"ok": True}

    @app.get("/sync")
    @rate_limit("1/minute", algorithm="token-bucket", clock=clock)
    def sync_handler(request):
        return "sync"

    @app.get("/item/{item_id:int}")
    @rate_limit("1/minute", key=lambda request: None, clock=clock)
    async def item(request, item_id: int):
        return {"id": item_id}

    return app


def test_rate_limit_decorator():
    clock = Clock()
    client = TestClient(make_app(clock))
    first = client.post("/login")
    assert first.status_code == 200
    assert first.headers["ratelimit-remaining"] == "1"
    assert first.headers["x-ratelimit-limit"] == "2"
    assert client.post("/login").status_code == 200
    refused = client.post("/login")
    assert refused.status_code == 429
    # Sliding window: the next window starts in 60 s, where the two hits weigh
    # 2 * (1 - x) <= 1 once x >= 1/2: 30 s more.
    assert refused.headers["retry-after"] == "90"
    assert refused.headers["ratelimit-remaining"] == "0"
    clock.now += 120
    assert client.post("/login").status_code == 200


def test_rate_limit_decorator_on_sync_handlers_and_path_params():
    clock = Clock()
    client = TestClient(make_app(clock))
    assert client.get("/sync").text == "sync"
    assert client.get("/sync").status_code == 429
    # A key function returning None never limits.
    assert [client.get("/item/3").json() for _ in range(3)] == [{"id": 3}] * 3
