"""``redis://``: channels across processes and hosts over Redis pub/sub and streams.

Publishing runs one Lua script, so three things happen atomically: the
channel's id counter is incremented, the message is appended to the
channel's stream (trimmed to its history size) under that id, and the
message is published as ``"<id>:<json>"``. Because Redis runs scripts one at
a time, every subscriber receives a channel's messages in id order.

Each event loop holds one dedicated pub/sub connection, opened from the
pool of :class:`covet.redis.RedisConnection` but with redis-py's transparent
retries turned off: covet must *know* when the connection dropped, so it
can re-subscribe, read each channel's last id once the subscription is
confirmed, and let the hub replay from the streams what was published in
between (or signal a gap). An idle connection is pinged every few seconds,
so a silently dead one (a half-open TCP connection) is noticed too.

Keys, with the ``{channel}`` hash tag so a channel's keys share a cluster slot:
``<prefix>{<channel>}:id`` (the counter), ``<prefix>{<channel>}:history``
(the stream), ``<prefix>presence:{<room>}`` (a sorted set of members by
expiry time) and ``<prefix>presence:{<room>}:info``; pub/sub channel
``<prefix><channel>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from covet.channels.backends.base import BrokerUnavailableError, ChannelBackend
from covet.redis import RedisConnection

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    from covet.channels.hub import Hub

__all__ = ("RedisBackend",)

logger = logging.getLogger("covet.channels")

#: Ping an idle pub/sub connection after this many seconds without traffic ...
PING_INTERVAL = 5.0
#: ... and consider it dead after this many seconds without any answer.
DEAD_AFTER = 15.0
#: Waits between reconnection attempts.
_BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
#: How long listen() waits for Redis to confirm a SUBSCRIBE.
SUBSCRIBE_TIMEOUT = 10.0

_PUBLISH_LUA = """
local id = redis.call('INCR', KEYS[1])
local keep = tonumber(ARGV[2])
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', keep, id .. '-0', 'm', ARGV[1])
end
redis.call('PUBLISH', ARGV[3], id .. ':' .. ARGV[1])
return id
"""

# Expiry is computed from the Redis server's clock, so workers on hosts whose
# clocks disagree still agree on who is present.
_PRESENCE_SET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[3])) + 60)
return 1
"""

_PRESENCE_LIST_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for i, member in ipairs(members) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('HGET', KEYS[2], member) or ''
end
return out
"""


@contextlib.asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    """Turn a lost or refused Redis connection into :class:`BrokerUnavailableError`."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise BrokerUnavailableError(f"Redis is unreachable while {what}: {exc}") from exc


def _connected(pubsub: PubSub) -> bool:
    connection: object = pubsub.connection  # None until the first subscribe
    return connection is not None


class RedisBackend(ChannelBackend):
    """Channels over Redis for one event loop.

    The ``Channels`` URL is the Redis URL (``redis://``, ``rediss://`` or
    ``unix://``); the prefix defaults to ``"covet:channels:"``.
    """

    def __init__(self, url: str, *, prefix: str, hub: Hub, shared: object) -> None:
        super().__init__(url, prefix=prefix, hub=hub, shared=shared)
        assert isinstance(shared, RedisConnection)  # noqa: S101 - built by create_shared
        self._redis = shared
        self._scripts: dict[str, Any] = {}
        self._wanted: set[str] = set()
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._closed = False
        self._failures = 0

    @classmethod
    def create_shared(cls, url: str, prefix: str) -> object:
        """Return the :class:`RedisConnection` every loop's backend opens clients from."""
        return RedisConnection(url, None, owner="Channels")

    # -- keys -------------------------------------------------------------------------

    def _key(self, channel: str, kind: str) -> str:
        return f"{self.prefix}{{{channel}}}:{kind}"

    def _topic(self, channel: str) -> str:
        return f"{self.prefix}{channel}"

    def _script(self, client: Redis, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    # -- publishing and history -------------------------------------------------------

    async def publish(self, channel: str, payload: bytes, history: int) -> int:
        """Run the publish script; return the message's id."""
        client = self._redis.get()
        keys = [self._key(channel, "id"), self._key(channel, "history")]
        async with _translated(f"publishing on {channel!r}"):
            id_ = await self._script(client, _PUBLISH_LUA)(
                keys=keys, args=[payload, history, self._topic(channel)]
            )
        return int(id_)

    async def history(self, channel: str, after: int) -> list[tuple[int, bytes]]:
        """Read the channel's stream after ``after``."""
        client = self._redis.get()
        async with _translated(f"reading the history of {channel!r}"):
            entries: Any = await client.xrange(self._key(channel, "history"), min=f"{after + 1}-0")
        return [(int(entry_id.split(b"-")[0]), fields[b"m"]) for entry_id, fields in entries]

    async def last_id(self, channel: str) -> int:
        """Read the channel's id counter."""
        client = self._redis.get()
        async with _translated(f"reading the last id of {channel!r}"):
            value = await client.get(self._key(channel, "id"))
        return int(value or 0)

    async def delete(self, channel: str) -> None:
        """Delete the channel's counter and stream."""
        client = self._redis.get()
        async with _translated(f"deleting {channel!r}"):
            await client.delete(self._key(channel, "id"), self._key(channel, "history"))

    # -- presence ---------------------------------------------------------------------

    def _presence_keys(self, room: str) -> list[str]:
        base = f"{self.prefix}presence:{{{room}}}"
        return [base, base + ":info"]

    async def presence_set(self, room: str, member: str, info: bytes, ttl: float) -> None:
        """Add or refresh ``member`` with an expiry ``ttl`` seconds ahead."""
        client = self._redis.get()
        async with _translated(f"updating presence in {room!r}"):
            await self._script(client, _PRESENCE_SET_LUA)(
                keys=self._presence_keys(room), args=[member, info, ttl]
            )

    async def presence_remove(self, room: str, member: str) -> None:
        """Remove ``member`` from ``room``."""
        client = self._redis.get()
        zset, info = self._presence_keys(room)
        async with (
            _translated(f"updating presence in {room!r}"),
            client.pipeline(transaction=True) as pipe,
        ):
            pipe.zrem(zset, member)  # type: ignore[unused-awaitable]  # queued, not sent
            pipe.hdel(info, member)  # type: ignore[unused-awaitable]  # queued, not sent
            await pipe.execute()

    async def presence_list(self, room: str) -> list[tuple[str, bytes]]:
        """Return unexpired members, removing expired ones."""
        client = self._redis.get()
        async with _translated(f"reading presence in {room!r}"):
            flat = await self._script(client, _PRESENCE_LIST_LUA)(
                keys=self._presence_keys(room), args=[]
            )
        return [(flat[i].decode("utf-8"), flat[i + 1]) for i in range(0, len(flat), 2)]

    # -- listening --------------------------------------------------------------------

    async def listen(self, channel: str) -> None:
        """Subscribe, and wait until Redis confirmed the subscription."""
        if self._closed:
            raise BrokerUnavailableError("This Channels was closed; create a new one.")
        self._wanted.add(channel)
        confirmed = self._confirmed.get(channel)
        if confirmed is None or confirmed.done():
            confirmed = self._confirmed[channel] = asyncio.get_running_loop().create_future()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._run())
        pubsub = self._pubsub
        if pubsub is not None and _connected(pubsub):
            with contextlib.suppress(Exception):  # A failure here is the reader's to handle.
                await pubsub.subscribe(self._topic(channel))
        self._changed.set()
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT)
        except TimeoutError as exc:
            self._wanted.discard(channel)
            raise BrokerUnavailableError(
                f"Redis did not confirm the subscription to {channel!r} within "
                f"{SUBSCRIBE_TIMEOUT:g} s. Check that Redis at {self._redis.url!r} is reachable."
            ) from exc

    async def unlisten(self, channel: str) -> None:
        """Unsubscribe from ``channel``."""
        self._wanted.discard(channel)
        self._confirmed.pop(channel, None)
        pubsub = self._pubsub
        if pubsub is not None and _connected(pubsub):
            async with _translated(f"unsubscribing from {channel!r}"):
                await pubsub.unsubscribe(self._topic(channel))

    def _pubsub_client(self) -> Redis:
        """Return a client whose single connection does not retry behind covet's back."""
        from redis.asyncio import ConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = self._redis.get().connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["retry"] = Retry(NoBackoff(), 0)
        kwargs.pop("retry_on_error", None)
        kwargs["retry_on_timeout"] = False
        kwargs["socket_connect_timeout"] = kwargs.get("socket_connect_timeout") or 5.0
        return Redis(
            connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs)
        )

    async def _run(self) -> None:
        """Keep one pub/sub connection up, re-subscribing and catching up after each drop."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self._failures = 0
        connected_before = False
        while not self._closed:
            if not self._wanted:
                self._changed.clear()
                await self._changed.wait()
                continue
            client = self._pubsub_client()
            pubsub = client.pubsub()
            try:
                topics = {self._topic(c): c for c in self._wanted}
                reconnected = connected_before
                await pubsub.subscribe(*topics)
                # From here on a drop is a reconnect: the hub must catch channels up.
                connected_before = True
                self._pubsub = pubsub
                await self._read(pubsub, pending=set(topics), reconnected=reconnected)
            except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
                if self._failures == 0:
                    logger.warning("Channels lost its Redis pub/sub connection: %s", exc)
                delay = _BACKOFF[min(self._failures, len(_BACKOFF) - 1)]
                self._failures += 1
                await asyncio.sleep(delay)
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose(close_connection_pool=True)

    async def _read(self, pubsub: PubSub, *, pending: set[str], reconnected: bool) -> None:
        """Dispatch messages until the connection fails (raises) or nothing is wanted."""
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        prefix_len = len(self.prefix)
        while True:
            message = await pubsub.get_message(timeout=PING_INTERVAL)
            now = loop.time()
            if message is None:
                if now - last_heard > DEAD_AFTER:
                    raise TimeoutError(f"no answer from Redis for {DEAD_AFTER:g} s")
                if not self._wanted and not pubsub.subscribed:
                    return
                await pubsub.ping()
                continue
            last_heard = now
            kind = message["type"]
            if kind == "message":
                channel = message["channel"].decode("utf-8")[prefix_len:]
                head, _, payload = message["data"].partition(b":")
                self.hub.on_live(channel, int(head), payload)
            elif kind == "subscribe":
                topic = message["channel"].decode("utf-8")
                channel = topic[prefix_len:]
                pending.discard(topic)
                self._failures = 0
                if reconnected and channel in self._wanted:
                    # Everything above this id arrives live on the new connection.
                    self.hub.on_reconnect({channel: await self.last_id(channel)})
                confirmed = self._confirmed.get(channel)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)
                if not pending:
                    reconnected = False

    async def close(self) -> None:
        """Stop the reader and close this loop's clients."""
        self._closed = True
        self._changed.set()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self._redis.aclose()
