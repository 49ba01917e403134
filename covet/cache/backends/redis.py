"""A cache in Redis, shared by every worker and host: :class:`RedisBackend`.

Each operation is one Redis command (``GET``, ``MGET``, ``SET PX``, ``SET NX
PX``, ``DEL``, ``PEXPIRE``) or, where a check and a write must be one step,
a short Lua script run atomically by the server (``incr`` on an existing key
only, and releasing a lock only if it still holds our token). Connections
come from :class:`covet.redis.RedisConnection`, one client per event loop.

Keys are stored exactly as the cache makes them (``prefix:version:key``);
:meth:`RedisBackend.clear` walks ``SCAN MATCH prefix*`` and deletes in
batches, so clearing one cache leaves other data in the same Redis alone.
Connection failures raise :class:`~covet.cache.CacheUnavailableError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import TYPE_CHECKING, Any

from covet.cache.exceptions import CacheUnavailableError, CacheValueError
from covet.redis import RedisConnection

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from redis.asyncio import Redis

__all__ = ("RedisBackend",)

# INCRBY creates a missing key; the cache API (like Django's) refuses instead.
_INCR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""
# Delete the lock only if it is still ours (it may have expired and been taken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_DELETE_BATCH = 500


def _millis(ttl: float) -> int:
    # Redis expiries are whole milliseconds; never round a positive TTL down to 0.
    return max(1, round(ttl * 1000))


class RedisBackend:
    """Store cache entries in Redis.

    Args:
        url: A Redis URL (``redis://127.0.0.1:6379/0``, ``rediss://``, ``unix://``).
        client: An existing ``redis.asyncio.Redis`` client, instead of ``url``.

    Raises:
        MissingDependencyError: If the ``redis`` package is not installed.
        ValueError: Unless exactly one of ``url`` and ``client`` is given.
    """

    def __init__(self, url: str | None = None, *, client: Redis | None = None) -> None:
        self._redis = RedisConnection(url, client, owner="RedisBackend")
        self._scripts: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Redis]:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            yield self._redis.get()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise CacheUnavailableError(
                f"The Redis cache at {self._redis.url or 'the given client'} cannot be reached "
                f"({type(exc).__name__}: {exc}). Check that Redis is running."
            ) from exc

    async def _script(self, client: Redis, source: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        sha = self._scripts.get(source)
        if sha is None:
            sha = self._scripts[source] = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        try:
            return await client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(source, len(keys), *keys, *args)

    async def get(self, key: str) -> bytes | None:
        """``GET key``."""
        async with self._client() as client:
            value: Any = await client.get(key)
            return value  # type: ignore[no-any-return]  # bytes: the client does not decode

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """``MGET keys``."""
        if not keys:
            return {}
        async with self._client() as client:
            values: list[Any] = await client.mget(list(keys))
        return {
            key: bytes(value) for key, value in zip(keys, values, strict=True) if value is not None
        }

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """``SET key value [PX ttl]``."""
        async with self._client() as client:
            await client.set(key, value, px=None if ttl is None else _millis(ttl))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        """One pipelined ``SET`` per item (not a transaction: each is atomic by itself)."""
        if not items:
            return
        px = None if ttl is None else _millis(ttl)
        async with self._client() as client:
            pipe = client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, value, px=px)  # type: ignore[unused-awaitable]  # queued, not sent
            await pipe.execute()

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        """``SET key value NX [PX ttl]``."""
        async with self._client() as client:
            done = await client.set(key, value, nx=True, px=None if ttl is None else _millis(ttl))
        return bool(done)

    async def delete(self, key: str) -> bool:
        """``DEL key``."""
        async with self._client() as client:
            return bool(await client.delete(key))

    async def delete_many(self, keys: Sequence[str]) -> int:
        """``DEL keys``."""
        if not keys:
            return 0
        async with self._client() as client:
            return int(await client.delete(*keys))

    async def touch(self, key: str, ttl: float | None) -> bool:
        """``PEXPIRE key ttl``, or ``PERSIST`` for no expiry (checking that the key exists)."""
        async with self._client() as client:
            if ttl is not None:
                return bool(await client.pexpire(key, _millis(ttl)))
            pipe = client.pipeline(transaction=True)
            pipe.exists(key)  # type: ignore[unused-awaitable]  # queued, not sent
            pipe.persist(key)  # type: ignore[unused-awaitable]  # queued, not sent
            exists, _ = await pipe.execute()
            return bool(exists)

    async def incr(self, key: str, delta: int) -> int:
        """``INCRBY`` on an existing key, in one script (the TTL is kept)."""
        from redis.exceptions import ResponseError

        async with self._client() as client:
            try:
                result = await self._script(client, _INCR, [key], [delta])
            except ResponseError as exc:
                raise CacheValueError(
                    f"Cache key {key!r} does not hold an integer within 64 bits, so it cannot be "
                    f"incremented ({exc}). Store an int there."
                ) from None
        if result is None:
            raise CacheValueError(
                f"Cache key {key!r} has no value to increment. Set it first, for example "
                "with await cache.add(key, 0)."
            )
        return int(result)

    async def clear(self, prefix: str) -> None:
        """Delete every key matching ``prefix*`` (``SCAN`` then ``UNLINK`` in batches)."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        async with self._client() as client:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= _DELETE_BATCH:
                    await client.unlink(*batch)
                    batch.clear()
            if batch:
                await client.unlink(*batch)

    async def release(self, key: str, token: bytes) -> bool:
        """Delete ``key`` if it still holds ``token`` (one script: check and delete)."""
        async with self._client() as client:
            return bool(await self._script(client, _RELEASE, [key], [token]))

    async def close(self) -> None:
        """Close this event loop's client (a client passed in is left open)."""
        await self._redis.aclose()
