"""Rate limiting: rates, algorithms, storage backends, key functions and ``@rate_limit``.

A :class:`RateLimiter` counts hits per key (a client IP, a user id...) with one
of three algorithms:

- ``"fixed-window"``: at most N hits per calendar window (``12:00:00-12:00:59``).
  Cheapest; allows a burst of 2N across a window boundary.
- ``"sliding-window"`` (default): the previous window's count, weighted by how
  much of it still overlaps the last period, plus the current count (the
  Cloudflare approximation). No boundary burst; two counters per key.
- ``"token-bucket"``: a bucket of N tokens refilled at N per period; each hit
  takes one. Allows bursts of N, then a steady rate.

Counts live in a backend: :class:`MemoryBackend` (one process) or
:class:`RedisBackend` (shared by every worker and server; each update is one
atomic Lua script). Use :class:`~covet.ratelimit.RateLimitMiddleware`
for a global limit and :func:`rate_limit` for one route.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import math
import re
import time
import weakref
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

from covet._utils import call_maybe_async, callable_name, to_response
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.redis import RedisConnection

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from covet.requests import HTTPConnection
    from covet.responses import Response

__all__ = (
    "Algorithm",
    "KeyFunction",
    "MemoryBackend",
    "Rate",
    "RateLimitBackend",
    "RateLimitResult",
    "RateLimiter",
    "RedisBackend",
    "client_ip",
    "key_by_ip",
    "key_by_user",
    "key_by_user_and_ip",
    "parse_rate",
    "rate_limit",
)

F = TypeVar("F", bound="Callable[..., Any]")

Algorithm = Literal["fixed-window", "sliding-window", "token-bucket"]
#: ``key(connection)`` returns the bucket a request counts against, or None to not limit it.
KeyFunction: TypeAlias = "Callable[[HTTPConnection], str | None]"

_ALGORITHMS: tuple[str, ...] = ("fixed-window", "sliding-window", "token-bucket")
_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE_RE = re.compile(r"(\d+)\s*(?:/|\s+per\s+)\s*(\d+)?\s*([a-z]+?)s?", re.IGNORECASE)
# Floating-point slack when comparing token counts and estimates.
_EPSILON = 1e-9


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` hits per ``period`` seconds.

    Attributes:
        limit: The number of hits allowed.
        period: The length of the period, in seconds.
    """

    limit: int
    period: int

    def __post_init__(self) -> None:
        if not _positive(self.limit) or not _positive(self.period):
            raise ImproperlyConfigured(
                f"Rate(limit={self.limit!r}, period={self.period!r}) needs positive integers. "
                "Write it like '100/minute'."
            )

    def __str__(self) -> str:
        return f"{self.limit}/{self.period}s"


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse_rate(rate: str | Rate) -> Rate:
    """Parse ``"100/minute"``, ``"5/second"``, ``"10/5 minutes"`` or ``"1000 per day"``.

    Units: second, minute, hour, day (or s, sec, m, min, h, d), singular or plural.

    Raises:
        ImproperlyConfigured: If the text is not a rate.
    """
    if isinstance(rate, Rate):
        return rate
    text: object = rate
    match = _RATE_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    unit = _UNITS.get(match.group(3).lower()) if match else None
    if match is None or unit is None:
        raise ImproperlyConfigured(
            f"Invalid rate {rate!r}. Write '<count>/<unit>' or '<count>/<n> <unit>s', "
            "for example '100/minute', '5/second' or '10/15 minutes' "
            "(units: second, minute, hour, day)."
        )
    multiple = int(match.group(2)) if match.group(2) else 1
    return Rate(int(match.group(1)), multiple * unit)


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The verdict for one hit.

    Attributes:
        allowed: Whether the hit is within the limit.
        limit: The rate's limit.
        remaining: Hits left now (0 when refused).
        reset_after: Seconds until the quota is fully restored.
        retry_after: Seconds until a refused client may try again (0 when allowed).
        period: The rate's period, in seconds.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    period: int

    def headers(self, now: float | None = None) -> dict[str, str]:
        """Return the ``RateLimit-*``, ``X-RateLimit-*`` (and, refused, ``Retry-After``) headers.

        ``RateLimit-Reset`` counts seconds (IETF draft); ``X-RateLimit-Reset``
        is a Unix time, the convention of GitHub and most APIs.
        """
        reset = max(0, math.ceil(self.reset_after))
        moment = time.time() if now is None else now
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{self.limit};w={self.period}",
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(moment + self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


# ----------------------------------------------------------------- algorithm arithmetic
#
# The backends only keep and atomically update the counters; turning counters into
# a result is shared here, so memory and Redis answer identically.


def _fixed_result(rate: Rate, now: float, count: int, allowed: bool) -> RateLimitResult:
    window_end = (math.floor(now / rate.period) + 1) * rate.period
    reset_after = window_end - now
    return RateLimitResult(
        allowed=allowed,
        limit=rate.limit,
        remaining=max(0, rate.limit - count),
        reset_after=reset_after,
        retry_after=0.0 if allowed else reset_after,
        period=rate.period,
    )


def _sliding_estimate(rate: Rate, now: float, current: int, previous: int) -> float:
    start = math.floor(now / rate.period) * rate.period
    return previous * (1 - (now - start) / rate.period) + current


def _sliding_result(
    rate: Rate, now: float, current: int, previous: int, allowed: bool
) -> RateLimitResult:
    period, limit = rate.period, rate.limit
    start = math.floor(now / period) * period
    estimate = previous * (1 - (now - start) / period) + current
    retry_after = 0.0
    if not allowed:
        if current + 1 <= limit and previous > 0:
            # The weighted previous count shrinks linearly; find when one more fits.
            fraction = 1 - (limit - current - 1) / previous
            retry_after = start + period * fraction - now
        else:
            # Only in the next window, where this window's count becomes "previous".
            fraction = max(0.0, 1 - (limit - 1) / current) if current else 0.0
            retry_after = start + period * (1 + fraction) - now
        retry_after = max(retry_after, 0.0)
    reset_after = max(retry_after, start + (2 if current else 1) * period - now)
    return RateLimitResult(
        allowed=allowed,
        limit=limit,
        remaining=max(0, math.floor(limit - estimate + _EPSILON)),
        reset_after=reset_after,
        retry_after=retry_after,
        period=period,
    )


def _bucket_result(rate: Rate, tokens: float, allowed: bool) -> RateLimitResult:
    per_second = rate.limit / rate.period
    return RateLimitResult(
        allowed=allowed,
        limit=rate.limit,
        remaining=max(0, math.floor(tokens + _EPSILON)),
        reset_after=max(0.0, (rate.limit - tokens) / per_second),
        retry_after=0.0 if allowed else max(0.0, (1 - tokens) / per_second),
        period=rate.period,
    )


# ----------------------------------------------------------------------------- backends


@runtime_checkable
class RateLimitBackend(Protocol):
    """Storage for rate-limit counters. Each ``hit`` must be atomic."""

    async def hit(self, key: str, rate: Rate, algorithm: Algorithm, now: float) -> RateLimitResult:
        """Record one hit on ``key`` at time ``now`` (unless refused) and return the verdict."""
        ...


class MemoryBackend:
    """Keep counters in this process: one worker only (tests, development, single process).

    Memory is bounded: expired keys are swept regularly, and beyond
    ``max_keys`` the least recently hit keys are dropped.

    Args:
        max_keys: The most keys kept at once.
    """

    _SWEEP_EVERY = 1024

    def __init__(self, *, max_keys: int = 100_000) -> None:
        if not _positive(max_keys):
            raise ImproperlyConfigured(f"MemoryBackend max_keys must be >= 1, got {max_keys!r}.")
        self.max_keys = max_keys
        # key -> (expires at, state...); insertion order is recency order.
        self._entries: dict[str, tuple[Any, ...]] = {}
        self._hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: str, now: float) -> tuple[Any, ...] | None:
        entry = self._entries.pop(key, None)
        if entry is None or entry[0] <= now:
            return None
        return entry

    def _put(self, key: str, entry: tuple[Any, ...], now: float) -> None:
        entries = self._entries
        entries[key] = entry
        self._hits += 1
        if self._hits % self._SWEEP_EVERY == 0 or len(entries) > self.max_keys:
            for stale in [k for k, value in entries.items() if value[0] <= now]:
                del entries[stale]
            while len(entries) > self.max_keys:
                del entries[next(iter(entries))]

    async def hit(self, key: str, rate: Rate, algorithm: Algorithm, now: float) -> RateLimitResult:
        """Record one hit on ``key`` (no await inside: atomic on the event loop)."""
        period, limit = rate.period, rate.limit
        window = math.floor(now / period)
        name = f"{algorithm}:{rate.limit}/{rate.period}:{key}"
        entry = self._get(name, now)
        if algorithm == "fixed-window":
            count = entry[2] if entry is not None and entry[1] == window else 0
            allowed = count < limit
            count += allowed
            self._put(name, ((window + 1) * period, window, count), now)
            return _fixed_result(rate, now, count, allowed)
        if algorithm == "sliding-window":
            current = previous = 0
            if entry is not None:
                if entry[1] == window:
                    current, previous = entry[2], entry[3]
                elif entry[1] == window - 1:
                    previous = entry[2]
            allowed = _sliding_estimate(rate, now, current, previous) + 1 <= limit + _EPSILON
            current += allowed
            self._put(name, ((window + 2) * period, window, current, previous), now)
            return _sliding_result(rate, now, current, previous, allowed)
        tokens, last = (float(limit), now) if entry is None else (entry[1], entry[2])
        tokens = min(float(limit), tokens + max(0.0, now - last) * limit / period)
        allowed = tokens >= 1 - _EPSILON
        if allowed:
            tokens = max(0.0, tokens - 1)
        self._put(name, (now + period, tokens, max(now, last)), now)
        return _bucket_result(rate, tokens, allowed)


_FIXED_LUA = """
local limit = tonumber(ARGV[1])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= limit then
  return {0, count}
end
count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {1, count}
"""

_SLIDING_LUA = """
local limit = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * weight + current + 1 > limit + 1e-9 then
  return {0, current, previous}
end
current = redis.call('INCR', KEYS[1])
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, current, previous}
"""

_BUCKET_LUA = """
local limit = tonumber(ARGV[1])
local per_second = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = limit
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then
  elapsed = 0
end
tokens = math.min(limit, tokens + elapsed * per_second)
local allowed = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
  allowed = 1
end
if now > ts then
  ts = now
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts',
           string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {allowed, string.format('%.17g', tokens)}
"""


class RedisBackend:
    """Keep counters in Redis, shared by every worker process and server.

    Each hit runs one Lua script, so concurrent workers never over-count.
    Worker clocks should agree (NTP); the window is computed from the
    limiter's clock. Call :meth:`aclose` at shutdown.

    Args:
        url: A Redis URL, for example ``"redis://127.0.0.1:6379/0"``.
        client: An existing ``redis.asyncio.Redis`` client, instead of ``url``.
        prefix: Prepended to every key.

    Raises:
        MissingDependencyError: If the ``redis`` package is not installed.
        ValueError: Unless exactly one of ``url`` and ``client`` is given.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        prefix: str = "covet:ratelimit:",
    ) -> None:
        self._redis = RedisConnection(url, client, owner="RedisBackend")
        self.prefix = prefix
        self._scripts: weakref.WeakKeyDictionary[Redis, tuple[AsyncScript, ...]] = (
            weakref.WeakKeyDictionary()
        )

    def _scripts_for(self, client: Redis) -> tuple[AsyncScript, ...]:
        scripts = self._scripts.get(client)
        if scripts is None:
            scripts = tuple(
                client.register_script(source) for source in (_FIXED_LUA, _SLIDING_LUA, _BUCKET_LUA)
            )
            self._scripts[client] = scripts
        return scripts

    async def hit(self, key: str, rate: Rate, algorithm: Algorithm, now: float) -> RateLimitResult:
        """Record one hit on ``key`` atomically in Redis."""
        client = self._redis.get()
        fixed, sliding, bucket = self._scripts_for(client)
        period, limit = rate.period, rate.limit
        window = math.floor(now / period)
        base = f"{self.prefix}{algorithm}:{limit}/{period}:{key}"
        if algorithm == "fixed-window":
            ttl_ms = math.ceil(((window + 1) * period - now) * 1000) + 1000
            allowed, count = await fixed(keys=[f"{base}:{window}"], args=[limit, ttl_ms])
            return _fixed_result(rate, now, int(count), bool(allowed))
        if algorithm == "sliding-window":
            weight = 1 - (now - window * period) / period
            ttl_ms = math.ceil(((window + 2) * period - now) * 1000) + 1000
            allowed, current, previous = await sliding(
                keys=[f"{base}:{window}", f"{base}:{window - 1}"],
                args=[limit, repr(weight), ttl_ms],
            )
            return _sliding_result(rate, now, int(current), int(previous), bool(allowed))
        ttl_ms = period * 1000 + 1000
        allowed, tokens = await bucket(
            keys=[base], args=[limit, repr(limit / period), repr(now), ttl_ms]
        )
        return _bucket_result(rate, float(tokens), bool(allowed))

    async def aclose(self) -> None:
        """Close the connections this backend opened on the running event loop."""
        await self._redis.aclose()


# ------------------------------------------------------------------------------ limiter


class RateLimiter:
    """Count hits per key against one rate.

    Args:
        rate: ``"100/minute"`` or a :class:`Rate`.
        algorithm: ``"sliding-window"`` (default), ``"fixed-window"`` or ``"token-bucket"``.
        backend: Where counters live (default: a new :class:`MemoryBackend`).
        clock: Returns the current Unix time; inject a fake one in tests.

    Raises:
        ImproperlyConfigured: For an invalid rate, algorithm or backend.
    """

    def __init__(
        self,
        rate: str | Rate,
        *,
        algorithm: Algorithm = "sliding-window",
        backend: RateLimitBackend | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rate = parse_rate(rate)
        if algorithm not in _ALGORITHMS:
            raise ImproperlyConfigured(
                f"Unknown rate-limit algorithm {algorithm!r}. Use one of: {', '.join(_ALGORITHMS)}."
            )
        self.algorithm: Algorithm = algorithm
        self.backend: RateLimitBackend = MemoryBackend() if backend is None else backend
        if not isinstance(self.backend, RateLimitBackend):
            raise ImproperlyConfigured(
                f"Rate-limit backend {backend!r} has no async hit() method. "
                "Pass a MemoryBackend or RedisBackend."
            )
        self.clock = clock

    async def hit(self, key: str) -> RateLimitResult:
        """Record a hit on ``key`` and return the verdict (refused hits are not counted)."""
        return await self.backend.hit(key, self.rate, self.algorithm, self.clock())


# -------------------------------------------------------------------------- key functions


def _networks(
    trusted_proxies: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if isinstance(trusted_proxies, str):
        raise ImproperlyConfigured(
            f"trusted_proxies={trusted_proxies!r} is a string. Pass a list, such as ['10.0.0.1']."
        )
    result = []
    for proxy in trusted_proxies:
        try:
            result.append(ipaddress.ip_network(proxy.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"Invalid trusted proxy {proxy!r}. Pass IP addresses or networks "
                "such as '10.0.0.1' or '10.0.0.0/8'."
            ) from None
    return tuple(result)


def _is_trusted(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(connection: HTTPConnection, trusted_proxies: Iterable[str] = ()) -> str:
    """Return the client's IP address, looking through trusted proxies only.

    Without ``trusted_proxies`` it is the connection's peer address as the
    server reports it (uvicorn already applies ``X-Forwarded-For`` from
    ``--forwarded-allow-ips``, by default only from 127.0.0.1). With them,
    when the peer is a trusted proxy, ``X-Forwarded-For`` is read from the
    right, skipping trusted proxies: the first other address is the client.
    Addresses further left are client-supplied and never trusted.

    Returns:
        The address, or ``"unknown"`` when the server reports none (a Unix socket).
    """
    client = connection.client
    peer = client.host if client is not None else "unknown"
    networks = _networks(trusted_proxies)
    if not networks or not _is_trusted(peer, networks):
        return peer
    hops = [
        hop.strip()
        for header in connection.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
    ]
    for hop in reversed(hops):
        if hop and not _is_trusted(hop, networks):
            return hop
    return peer


def _user_id(connection: HTTPConnection) -> str | None:
    user = connection.scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    for attribute in ("id", "pk", "identity"):
        value = getattr(user, attribute, None)
        if value is not None:
            return str(value)
    return None


def key_by_ip(*, trusted_proxies: Iterable[str] = ()) -> KeyFunction:
    """Return a key function counting each client IP address separately."""
    proxies = tuple(trusted_proxies)
    _networks(proxies)

    def key(connection: HTTPConnection) -> str | None:
        return "ip:" + client_ip(connection, proxies)

    return key


def key_by_user(*, trusted_proxies: Iterable[str] = ()) -> KeyFunction:
    """Return a key function counting per authenticated user, else per IP address.

    The user is ``scope["user"]`` when its ``is_authenticated`` is true; its
    ``id`` (or ``pk``, or ``identity``) names the bucket.
    """
    proxies = tuple(trusted_proxies)
    _networks(proxies)

    def key(connection: HTTPConnection) -> str | None:
        user = _user_id(connection)
        return f"user:{user}" if user is not None else "ip:" + client_ip(connection, proxies)

    return key


def key_by_user_and_ip(*, trusted_proxies: Iterable[str] = ()) -> KeyFunction:
    """Return a key function counting each (IP address, user) pair separately."""
    proxies = tuple(trusted_proxies)
    _networks(proxies)

    def key(connection: HTTPConnection) -> str | None:
        user = _user_id(connection)
        return f"ip:{client_ip(connection, proxies)}|user:{user or '-'}"

    return key


# ---------------------------------------------------------------------------- decorator


def rate_limit(
    rate: str | Rate,
    *,
    key: KeyFunction | None = None,
    algorithm: Algorithm = "sliding-window",
    backend: RateLimitBackend | None = None,
    clock: Callable[[], float] = time.time,
    name: str | None = None,
) -> Callable[[F], F]:
    """Limit how often one route's handler runs; put it below the route decorator.

    ::

        @app.post("/login")
        @rate_limit("5/minute")
        async def login(request): ...

    A refused request gets ``429 Too Many Requests`` with ``Retry-After``;
    every limited response carries ``RateLimit-*`` and ``X-RateLimit-*`` headers.

    Args:
        rate: ``"5/minute"`` or a :class:`Rate`.
        key: ``key(request)`` naming the bucket, None to skip (default: per client IP).
        algorithm: The counting algorithm (see :class:`RateLimiter`).
        backend: Where counters live (default: in this process).
        clock: Returns the current Unix time.
        name: The counter namespace; defaults to the handler's qualified name.

    Returns:
        The decorator.

    Raises:
        ImproperlyConfigured: For an invalid rate, algorithm or backend.
    """
    limiter = RateLimiter(rate, algorithm=algorithm, backend=backend, clock=clock)
    key_function = key_by_ip() if key is None else key

    def decorator(func: F) -> F:
        namespace = name or f"{getattr(func, '__module__', '')}.{callable_name(func)}"

        @functools.wraps(func)
        async def limited(request: HTTPConnection, /, *args: Any, **kwargs: Any) -> Response:
            bucket = key_function(request)
            if bucket is None:
                return to_response(await call_maybe_async(func, request, *args, **kwargs), func)
            result = await limiter.hit(f"{namespace}:{bucket}")
            headers = result.headers()
            if not result.allowed:
                raise HTTPException(
                    429,
                    f"Too many requests. Retry in {headers['Retry-After']} seconds.",
                    headers=headers,
                )
            response = to_response(await call_maybe_async(func, request, *args, **kwargs), func)
            for header, value in headers.items():
                response.headers.setdefault(header, value)
            return response

        return limited  # type: ignore[return-value]

    return decorator
