"""One Redis connection helper for every covet feature that talks to Redis.

Sessions (:class:`~covet.sessions.RedisStore`), rate limits
(:class:`~covet.ratelimit.RedisBackend`) and the features built on them share
:class:`RedisConnection`, so the rules below live in one place:

- A ``redis.asyncio`` client belongs to the event loop it was opened on. An
  app driven by several loops (test clients, threads) gets one client per loop,
  created on first use and closed with :meth:`RedisConnection.aclose`.
- A client passed in by the application is used as is and never closed here.
- The ``redis`` package is an optional dependency (``covet-web[redis]``); a
  missing package is reported when the feature is configured, not at the first
  request.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from covet.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ("RedisConnection", "redis_connections")

# Every RedisConnection made in this process, for the /ready check (weakly: a
# feature that is dropped stops being checked).
_made: weakref.WeakSet[RedisConnection] = weakref.WeakSet()


def redis_connections() -> tuple[RedisConnection, ...]:
    """Return the Redis connections configured in this process (sessions, rate limits, channels...).

    ``/ready`` (:mod:`covet.health`) pings each, so a Redis that a configured
    feature depends on makes the process unready when it does not answer.
    """
    return tuple(_made)


class RedisConnection:
    """Give each event loop its own ``redis.asyncio`` client for one URL.

    Args:
        url: A Redis URL, for example ``"redis://127.0.0.1:6379/0"``.
        client: An existing ``redis.asyncio.Redis`` client, instead of ``url``.
        owner: The name of the feature using the connection, shown in errors.

    Raises:
        ValueError: Unless exactly one of ``url`` and ``client`` is given.
        MissingDependencyError: If ``url`` is given and ``redis`` is not installed.
    """

    def __init__(self, url: str | None, client: Redis | None, *, owner: str) -> None:
        if (url is None) == (client is None):
            raise ValueError(
                f"{owner} needs exactly one of url= or client=, got url={url!r} and "
                f"client={client!r}. Pass url='redis://127.0.0.1:6379/0'."
            )
        if client is None:
            try:
                import redis.asyncio  # noqa: F401 - fail now, not at the first request
            except ImportError as exc:
                raise MissingDependencyError("redis", extra="redis") from exc
        self.url = url
        self.owner = owner
        self._client = client
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = (
            weakref.WeakKeyDictionary()
        )
        _made.add(self)

    @property
    def address(self) -> str:
        """Return where this connection points, ``host:port/db``, never with a password."""
        if self._client is not None:
            kwargs = self._client.connection_pool.connection_kwargs
            if "path" in kwargs:
                return f"{kwargs['path']}/{kwargs.get('db', 0)}"
            host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
            return f"{host}:{port}/{kwargs.get('db', 0)}"
        from urllib.parse import urlsplit

        assert self.url is not None  # noqa: S101 - checked in __init__
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return parts.path
        db = parts.path.lstrip("/") or "0"
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"

    async def ping(self) -> None:
        """Ask Redis for ``PING``; raise when it does not answer.

        It uses the running loop's client when the feature has opened one, and
        otherwise a client of its own that it closes again: a probe must not
        leave connections behind on a loop the feature never used.
        """
        client = self._client or self._clients.get(asyncio.get_running_loop())
        if client is not None:
            await client.ping()
            return
        from redis.asyncio import Redis

        assert self.url is not None  # noqa: S101 - checked in __init__
        probe = Redis.from_url(self.url)
        try:
            await probe.ping()
        finally:
            await probe.aclose()

    def get(self) -> Redis:
        """Return the client for the running loop, opening it on first use."""
        if self._client is not None:
            return self._client
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from redis.asyncio import Redis

            assert self.url is not None  # noqa: S101 - checked in __init__
            client = Redis.from_url(self.url)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the client of the running loop (a client passed in is left open)."""
        if self._client is not None:
            return
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
