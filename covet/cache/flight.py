"""get_or_set's stampede protection: single flight, a cross-process lock, early refresh.

When a popular key expires, every request that misses would recompute it at
once (a "cache stampede" or "dog-pile"), which is exactly when the database
is least able to take it. :func:`get_or_set` makes the recomputation happen
once:

1. **In-process single flight.** The first caller of a key on an event loop
   becomes its leader and registers a future; every other caller for that key
   awaits the future instead of producing. A leader that fails passes its
   exception to the waiters; one that is cancelled hands leadership on (a
   waiter retries and becomes the next leader).
2. **Cross-process lock.** The leader then takes a lock in the backend
   (``add()`` of a lock key with a random token, ``lock_timeout`` seconds; on
   the memory backend only the process itself shares it). The winner reads the
   key once more (another process may have just stored it), produces, stores
   and releases the lock (deleted only if it still holds its token). Losers
   poll the key with a backoff from 5 ms to 100 ms and return the value as soon
   as it appears; if the winner dies, its lock expires and the next poll takes
   it over. A producer slower than ``lock_timeout`` may thus run twice.
3. **Probabilistic early expiration** (XFetch: Vattani, Chierichetti and
   Lowenstein, "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015).
   A value stored by get_or_set carries its expiry time and how long it took
   to produce (``delta``). A reader refreshes it early when
   ``now - delta * early * ln(U) >= expiry`` for a uniform ``U`` in (0, 1]:
   rarely at first, almost surely in the last ``delta`` seconds, so on a busy
   key one reader (holding the lock; the others keep the current value)
   recomputes before the value ever expires, and no reader waits.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
import secrets
import time
from typing import TYPE_CHECKING, Any

from covet.cache.serializers import MISSING, unwrap, wrap

if TYPE_CHECKING:
    from covet.cache.core import Cache

__all__ = ("get_or_set",)

_POLL_START = 0.005
_POLL_MAX = 0.1
_uniform = random.Random()  # noqa: S311 - a refresh probability, not a secret


async def get_or_set(
    cache: Cache,
    stored: str,
    key: str,
    default: Any,
    ttl: float | None,
    *,
    lock: bool,
    lock_timeout: float,
    early: float,
) -> Any:
    """Return the value of ``stored``, producing it once when missing (see the module docs)."""
    flights = cache.flights()
    while True:
        data = await cache.backend.get(stored)
        value = MISSING if data is None else cache.codec.decode(data, stored)
        if value is not MISSING:
            assert data is not None  # noqa: S101 - a value was decoded from it
            header = unwrap(data)
            if header is None or not _refresh_now(cache, header[0], header[1], early):
                return value
            if stored in flights:
                return value  # a refresh is already running here: keep the current value
            return await _lead(
                cache, flights, stored, key, default, ttl, lock, lock_timeout, early, value
            )
        running = flights.get(stored)
        if running is None:
            return await _lead(
                cache, flights, stored, key, default, ttl, lock, lock_timeout, early, MISSING
            )
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            if not running.cancelled():
                raise  # this caller was cancelled
            # The leader was cancelled: go round again, and lead if nobody else does.


def _refresh_now(cache: Cache, expires_at: float, delta: float, early: float) -> bool:
    if early <= 0:
        return False
    chance = 1.0 - _uniform.random()  # in (0, 1], so the logarithm is defined
    return cache.clock() - delta * early * math.log(chance) >= expires_at


async def _lead(
    cache: Cache,
    flights: dict[str, asyncio.Future[Any]],
    stored: str,
    key: str,
    default: Any,
    ttl: float | None,
    lock: bool,
    lock_timeout: float,
    early: float,
    current: Any,
) -> Any:
    """Produce the value as this loop's leader for ``stored``, sharing the outcome."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    flights[stored] = future
    try:
        if current is MISSING:
            value = await _produce_locked(
                cache, stored, key, default, ttl, lock, lock_timeout, early
            )
        else:
            value = await _refresh(
                cache, stored, key, default, ttl, lock, lock_timeout, early, current
            )
    except Exception as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" log when nobody waited
        raise
    except BaseException:
        future.cancel()
        raise
    else:
        future.set_result(value)
        return value
    finally:
        if flights.get(stored) is future:
            del flights[stored]


async def _produce(
    cache: Cache, stored: str, key: str, default: Any, ttl: float | None, early: float
) -> Any:
    """Call the producer and store its value (with the early-expiration header)."""
    started = time.monotonic()
    value = default() if callable(default) else default
    if inspect.isawaitable(value):
        value = await value
    delta = time.monotonic() - started
    data = cache.encode(key, value)
    if ttl is None:
        await cache.backend.set(stored, data, None)
    elif ttl > 0:
        if early > 0:
            data = wrap(data, cache.clock() + ttl, delta)
        await cache.backend.set(stored, data, ttl)
    return value


async def _read(cache: Cache, stored: str) -> Any:
    """Return the value stored under ``stored``, or MISSING (absent, or not decodable)."""
    data = await cache.backend.get(stored)
    return MISSING if data is None else cache.codec.decode(data, stored)


async def _produce_locked(
    cache: Cache,
    stored: str,
    key: str,
    default: Any,
    ttl: float | None,
    lock: bool,
    lock_timeout: float,
    early: float,
) -> Any:
    """Produce under the cross-process lock, or wait for the process that holds it."""
    if not lock:
        return await _produce(cache, stored, key, default, ttl, early)
    lock_key = cache.lock_key(stored)
    token = secrets.token_hex(16).encode("ascii")
    delay = _POLL_START
    while True:
        if await cache.backend.add(lock_key, token, lock_timeout):
            try:
                # Another process may have stored the value between our miss and our lock.
                value = await _read(cache, stored)
                if value is not MISSING:
                    return value
                return await _produce(cache, stored, key, default, ttl, early)
            finally:
                # Shielded: a cancelled producer must still let the others in now,
                # not after lock_timeout.
                await asyncio.shield(cache.backend.release(lock_key, token))
        await asyncio.sleep(delay)
        delay = min(delay * 2, _POLL_MAX)
        value = await _read(cache, stored)
        if value is not MISSING:
            return value


async def _refresh(
    cache: Cache,
    stored: str,
    key: str,
    default: Any,
    ttl: float | None,
    lock: bool,
    lock_timeout: float,
    early: float,
    current: Any,
) -> Any:
    """Recompute a value before it expires, unless another process already is."""
    if not lock:
        return await _produce(cache, stored, key, default, ttl, early)
    lock_key = cache.lock_key(stored)
    token = secrets.token_hex(16).encode("ascii")
    if not await cache.backend.add(lock_key, token, lock_timeout):
        return current  # another process is refreshing it: the current value is still good
    try:
        return await _produce(cache, stored, key, default, ttl, early)
    finally:
        await asyncio.shield(cache.backend.release(lock_key, token))
