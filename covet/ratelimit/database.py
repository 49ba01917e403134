"""Rate-limit counters in the application's database: :class:`DatabaseBackend`.

For deployments with several workers and no Redis: every worker counts in
the same table (``covet_ratelimit``), and each hit is decided by one
conditional ``UPDATE`` (``... SET count = count + 1 WHERE ... AND count < :n``),
which the database applies atomically, so concurrent workers never let more
hits through than the limit. The token bucket uses optimistic concurrency
(a version column) instead, retried when another worker won the race.

::

    from covet.auth import LoginThrottle
    from covet.ratelimit import DatabaseBackend

    throttle = LoginThrottle("5/minute", backend=DatabaseBackend())

Add ``"covet.ratelimit.database"`` to ``models`` in ``[tool.covet]`` so migrations
create the table. Expired rows are deleted as hits come in (about every
thousandth hit) and by :meth:`DatabaseBackend.clear_expired`.

Redis remains the better home for busy global limits: a database write per
request is costly. This backend suits low-volume, high-value limits such as
login attempts and password resets.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

from covet.db import F, IntegrityError, Model, fields
from covet.ratelimit.limiter import (
    _EPSILON,
    Algorithm,
    Rate,
    RateLimitResult,
    _bucket_result,
    _fixed_result,
    _sliding_result,
)

if TYPE_CHECKING:
    from covet.db.queryset import QuerySet

__all__ = ("DatabaseBackend", "RateLimitCounter")

# The token bucket keeps one row per key, in this pseudo-window.
_BUCKET_WINDOW = -1
_MAX_RETRIES = 20


class RateLimitCounter(Model):
    """One counter: a key's hits in one window (or its token bucket).

    Attributes:
        key: SHA-256 of the algorithm, rate and limiter key.
        window: The window number (Unix time // period); -1 for a token bucket.
        count: Hits counted in the window.
        tokens: Tokens left in the bucket.
        stamp: When the bucket was last refilled (Unix time).
        version: Bumped at each bucket update (optimistic concurrency).
        expires_at: When the row can be deleted (Unix time).
    """

    key = fields.CharField(max_length=64)
    window = fields.BigIntegerField()
    count = fields.IntegerField(default=0)
    tokens = fields.FloatField(default=0.0)
    stamp = fields.FloatField(default=0.0)
    version = fields.IntegerField(default=0)
    expires_at = fields.FloatField(index=True)

    class Meta:
        """One row per key and window."""

        table = "covet_ratelimit"
        unique_together = (("key", "window"),)


class DatabaseBackend:
    """Keep rate-limit counters in a database table shared by every worker.

    Worker clocks should agree (NTP): windows are computed from the limiter's clock.

    Args:
        using: The database alias (default: the default database).
        sweep_every: Delete expired rows after about this many hits (per process).
    """

    def __init__(self, *, using: str | None = None, sweep_every: int = 1000) -> None:
        self.using = using
        self.sweep_every = max(1, sweep_every)
        self._hits = 0

    def _rows(self) -> QuerySet[RateLimitCounter]:
        return RateLimitCounter.objects.using(self.using)

    async def clear_expired(self, now: float) -> int:
        """Delete counters that expired before ``now``; return how many."""
        return await self._rows().filter(expires_at__lte=now).delete()

    async def hit(self, key: str, rate: Rate, algorithm: Algorithm, now: float) -> RateLimitResult:
        """Record one hit on ``key`` (unless refused) and return the verdict."""
        name = hashlib.sha256(f"{algorithm}:{rate.limit}/{rate.period}:{key}".encode()).hexdigest()
        self._hits += 1
        if self._hits % self.sweep_every == 0:
            await self.clear_expired(now)
        if algorithm == "fixed-window":
            return await self._fixed(name, rate, now)
        if algorithm == "sliding-window":
            return await self._sliding(name, rate, now)
        return await self._bucket(name, rate, now)

    async def _count(self, name: str, window: int) -> int:
        value = (
            await self._rows()
            .filter(key=name, window=window)
            .values_list("count", flat=True)
            .first()
        )
        return int(value) if value is not None else 0

    async def _increment(self, name: str, window: int, below: int, expires_at: float) -> bool:
        """Add one to the window's count if it is below ``below``; return whether it did."""
        if below <= 0:
            return False
        rows = self._rows().filter(key=name, window=window)
        if await rows.filter(count__lt=below).update(count=F("count") + 1):
            return True
        try:
            await self._rows().create(key=name, window=window, count=1, expires_at=expires_at)
        except IntegrityError:
            # The row exists: it is full, or another worker created it a moment ago.
            return bool(await rows.filter(count__lt=below).update(count=F("count") + 1))
        return True

    async def _fixed(self, name: str, rate: Rate, now: float) -> RateLimitResult:
        window = math.floor(now / rate.period)
        expires_at = (window + 1) * rate.period + 1
        allowed = await self._increment(name, window, rate.limit, expires_at)
        return _fixed_result(rate, now, await self._count(name, window), allowed)

    async def _sliding(self, name: str, rate: Rate, now: float) -> RateLimitResult:
        period, limit = rate.period, rate.limit
        window = math.floor(now / period)
        previous = await self._count(name, window - 1)
        weight = 1 - (now - window * period) / period
        # Allowed while previous * weight + current + 1 <= limit, i.e. current < below.
        below = math.floor(limit - previous * weight + _EPSILON)
        expires_at = (window + 2) * period + 1
        allowed = await self._increment(name, window, below, expires_at)
        current = await self._count(name, window)
        return _sliding_result(rate, now, current, previous, allowed)

    async def _bucket(self, name: str, rate: Rate, now: float) -> RateLimitResult:
        limit, per_second = rate.limit, rate.limit / rate.period
        rows = self._rows().filter(key=name, window=_BUCKET_WINDOW)
        for _ in range(_MAX_RETRIES):
            row = await rows.values_list("tokens", "stamp", "version").first()
            state: Any = row
            if state is None:
                tokens, stamp, version = float(limit), now, None
            else:
                tokens, stamp, version = float(state[0]), float(state[1]), int(state[2])
            tokens = min(float(limit), tokens + max(0.0, now - stamp) * per_second)
            allowed = tokens >= 1 - _EPSILON
            if allowed:
                tokens = max(0.0, tokens - 1)
            values = {
                "tokens": tokens,
                "stamp": max(now, stamp),
                "expires_at": now + rate.period + 1,
            }
            if version is None:
                try:
                    await self._rows().create(key=name, window=_BUCKET_WINDOW, version=1, **values)
                except IntegrityError:
                    continue  # another worker created it: read it and try again
                return _bucket_result(rate, tokens, allowed)
            if await rows.filter(version=version).update(version=version + 1, **values):
                return _bucket_result(rate, tokens, allowed)
        # Contention this heavy on one key means it is being hammered: refuse.
        return _bucket_result(rate, 0.0, False)
