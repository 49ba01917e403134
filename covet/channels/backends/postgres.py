"""``postgresql://``: channels across processes over LISTEN/NOTIFY, history in a table.

Publishing is one statement: it takes the channel's next id from
``<prefix>sequences`` (the row lock orders concurrent publishers, so
notifications are committed, and delivered, in id order), keeps the message
in ``<prefix>messages`` when the channel has history, trims what falls out
of it, and sends ``pg_notify(<name>, '<id>:<json>')``.

A notification payload must stay under 8000 bytes. A larger message is kept
in ``<prefix>messages`` (for at least :data:`REFERENCE_TTL` seconds, whatever
the channel's history) and notified as ``'<id>:'``; listeners read it from the
table by id. Notification names are derived from the prefix and the channel
(a hash, since identifiers are limited to 63 bytes).

Each event loop listens on one dedicated connection (outside any pool:
LISTEN belongs to a session). When it drops, it is reopened with backoff,
every channel is listened to again, and the hub replays from the table what
was published meanwhile or signals a gap. An idle listener runs ``SELECT 1``
every few seconds, so a silently dead connection is noticed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

from covet.channels.backends.base import BrokerUnavailableError, ChannelBackend
from covet.exceptions import ImproperlyConfigured, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.channels.hub import Hub

__all__ = ("PostgresBackend",)

logger = logging.getLogger("covet.channels")

#: Payloads (``"<id>:<json>"``) at or above this many bytes are sent by reference.
NOTIFY_LIMIT = 7900
#: Seconds a by-reference message is kept even when its channel has no history.
REFERENCE_TTL = 300
#: Health check period of the listening connection, and how long a check may take.
PING_INTERVAL = 5.0
PING_TIMEOUT = 10.0
_BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,40}\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {p}sequences (
    channel text PRIMARY KEY,
    seq bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {p}messages (
    channel text NOT NULL,
    seq bigint NOT NULL,
    payload text NOT NULL,
    by_ref boolean NOT NULL DEFAULT false,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, seq)
);
CREATE TABLE IF NOT EXISTS {p}presence (
    room text NOT NULL,
    member text NOT NULL,
    info text NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (room, member)
);
"""

_PUBLISH = """
WITH s AS (
    INSERT INTO {p}sequences AS t (channel, seq) VALUES ($1, 1)
    ON CONFLICT (channel) DO UPDATE SET seq = t.seq + 1
    RETURNING t.seq
), kept AS (
    INSERT INTO {p}messages (channel, seq, payload, by_ref)
    SELECT $1, s.seq, $2, $4 FROM s WHERE $3 > 0 OR $4
    RETURNING 1
), trimmed AS (
    DELETE FROM {p}messages AS m USING s
    WHERE m.channel = $1 AND m.seq <= s.seq - $3
      AND (NOT m.by_ref OR m.created < now() - make_interval(secs => $6))
    RETURNING 1
)
SELECT s.seq, pg_notify($5, s.seq::text || ':' || CASE WHEN $4 THEN '' ELSE $2 END) FROM s
"""

_PRESENCE_SET = """
INSERT INTO {p}presence (room, member, info, expires)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (room, member) DO UPDATE SET info = excluded.info, expires = excluded.expires
"""

# The server's clock decides expiry, so workers whose clocks disagree still agree.
_PRESENCE_LIST = """
WITH gone AS (DELETE FROM {p}presence WHERE room = $1 AND expires <= now() RETURNING 1)
SELECT member, info FROM {p}presence WHERE room = $1 AND expires > now() ORDER BY expires
"""


_STATEMENTS = {
    "publish": _PUBLISH,
    "history": "SELECT seq, payload FROM {p}messages WHERE channel = $1 AND seq > $2 ORDER BY seq",
    "message": "SELECT payload FROM {p}messages WHERE channel = $1 AND seq = $2",
    "last_id": "SELECT seq FROM {p}sequences WHERE channel = $1",
    "delete_messages": "DELETE FROM {p}messages WHERE channel = $1",
    "delete_sequence": "DELETE FROM {p}sequences WHERE channel = $1",
    "presence_set": _PRESENCE_SET,
    "presence_remove": "DELETE FROM {p}presence WHERE room = $1 AND member = $2",
    "presence_list": _PRESENCE_LIST,
}


def _import_asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError as exc:
        raise MissingDependencyError("asyncpg", extra="postgres") from exc
    return asyncpg


@contextlib.asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    """Turn a lost or refused PostgreSQL connection into :class:`BrokerUnavailableError`."""
    asyncpg = _import_asyncpg()
    lost = (
        OSError,
        TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
    )
    try:
        yield
    except lost as exc:
        raise BrokerUnavailableError(f"PostgreSQL is unreachable while {what}: {exc}") from exc


class PostgresBackend(ChannelBackend):
    """Channels over PostgreSQL for one event loop.

    The prefix (default ``"covet_channels"``, a ``_`` is added) names the
    tables, which are created on first use.
    """

    def __init__(self, url: str, *, prefix: str, hub: Hub, shared: object) -> None:
        super().__init__(url, prefix=prefix, hub=hub, shared=shared)
        self.asyncpg = _import_asyncpg()
        self.tables = prefix if prefix.endswith("_") else prefix + "_"
        self._sql = {name: sql.format(p=self.tables) for name, sql in _STATEMENTS.items()}
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._listener: Any = None
        self._listener_lock = asyncio.Lock()
        self._names: dict[str, str] = {}
        self._wanted: set[str] = set()
        self._inbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._lost = asyncio.Event()
        self._closed = False

    @classmethod
    def create_shared(cls, url: str, prefix: str) -> object:
        """Check the prefix and that asyncpg is installed."""
        if not _PREFIX.match(prefix):
            raise ImproperlyConfigured(
                f"Channels prefix {prefix!r} cannot name PostgreSQL tables. Use lowercase "
                "letters, digits and underscores, e.g. prefix='chat_channels'."
            )
        _import_asyncpg()
        return None

    def _notify_name(self, channel: str) -> str:
        digest = hashlib.sha256(f"{self.tables}\0{channel}".encode()).hexdigest()
        return f"covet_{digest[:40]}"

    # -- connections ------------------------------------------------------------------

    async def _get_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                async with _translated("connecting"):
                    pool = await self.asyncpg.create_pool(
                        self.url, min_size=0, max_size=5, timeout=10
                    )
                try:
                    # Serialise concurrent CREATE TABLE IF NOT EXISTS between
                    # processes: racing ones can fail on the catalog's unique index.
                    async with (
                        _translated("creating the channels tables"),
                        pool.acquire() as conn,
                        conn.transaction(),
                    ):
                        await conn.execute(
                            "SELECT pg_advisory_xact_lock(hashtext($1))", self.tables
                        )
                        await conn.execute(_SCHEMA.format(p=self.tables))
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[Any]:
        pool = await self._get_pool()
        async with _translated(what), pool.acquire() as connection:
            yield connection

    # -- publishing and history -------------------------------------------------------

    async def publish(self, channel: str, payload: bytes, history: int) -> int:
        """Run the publish statement; return the message's id."""
        text = payload.decode("utf-8")
        by_ref = len(payload) + 21 >= NOTIFY_LIMIT
        async with self._connection(f"publishing on {channel!r}") as conn:
            row = await conn.fetchrow(
                self._sql["publish"],
                channel,
                text,
                history,
                by_ref,
                self._notify_name(channel),
                float(REFERENCE_TTL),
            )
        return int(row[0])

    async def history(self, channel: str, after: int) -> list[tuple[int, bytes]]:
        """Read the kept messages after ``after``."""
        async with self._connection(f"reading the history of {channel!r}") as conn:
            rows = await conn.fetch(self._sql["history"], channel, after)
        return [(int(row[0]), row[1].encode("utf-8")) for row in rows]

    async def last_id(self, channel: str) -> int:
        """Read the channel's sequence."""
        async with self._connection(f"reading the last id of {channel!r}") as conn:
            value = await conn.fetchval(self._sql["last_id"], channel)
        return int(value or 0)

    async def delete(self, channel: str) -> None:
        """Delete the channel's sequence row and kept messages."""
        async with self._connection(f"deleting {channel!r}") as conn, conn.transaction():
            await conn.execute(self._sql["delete_messages"], channel)
            await conn.execute(self._sql["delete_sequence"], channel)

    # -- presence ---------------------------------------------------------------------

    async def presence_set(self, room: str, member: str, info: bytes, ttl: float) -> None:
        """Upsert ``member`` with an expiry ``ttl`` seconds from the server's now."""
        async with self._connection(f"updating presence in {room!r}") as conn:
            await conn.execute(
                self._sql["presence_set"], room, member, info.decode("utf-8"), float(ttl)
            )

    async def presence_remove(self, room: str, member: str) -> None:
        """Delete ``member``'s record."""
        async with self._connection(f"updating presence in {room!r}") as conn:
            await conn.execute(self._sql["presence_remove"], room, member)

    async def presence_list(self, room: str) -> list[tuple[str, bytes]]:
        """Return unexpired members, deleting expired ones."""
        async with self._connection(f"reading presence in {room!r}") as conn:
            rows = await conn.fetch(self._sql["presence_list"], room)
        return [(row[0], row[1].encode("utf-8")) for row in rows]

    # -- listening --------------------------------------------------------------------

    async def listen(self, channel: str) -> None:
        """LISTEN on ``channel``'s notification name on the dedicated connection."""
        if self._closed:
            raise BrokerUnavailableError("This Channels was closed; create a new one.")
        await self._get_pool()  # The tables exist before anything is notified.
        name = self._notify_name(channel)
        self._names[name] = channel
        self._wanted.add(channel)
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._dispatch()), loop.create_task(self._watch())]
        async with self._listener_lock:
            if self._listener is None:
                await self._open_listener()
            else:
                async with _translated(f"listening to {channel!r}"):
                    await self._listener.add_listener(name, self._on_notify)

    async def unlisten(self, channel: str) -> None:
        """UNLISTEN ``channel``."""
        self._wanted.discard(channel)
        name = self._notify_name(channel)
        async with self._listener_lock:
            if self._listener is not None:
                async with _translated(f"unlistening {channel!r}"):
                    await self._listener.remove_listener(name, self._on_notify)

    async def _open_listener(self) -> None:
        """Connect and LISTEN to every wanted channel (the caller holds the lock)."""
        async with _translated("opening the listening connection"):
            connection = await self.asyncpg.connect(self.url, timeout=10)
            try:
                for channel in list(self._wanted):
                    await connection.add_listener(self._notify_name(channel), self._on_notify)
            except BaseException:
                connection.terminate()
                raise
        connection.add_termination_listener(self._on_terminated)
        self._lost.clear()
        self._listener = connection

    def _on_terminated(self, connection: object) -> None:
        self._lost.set()  # Wake the watcher now rather than at the next health check.

    def _on_notify(self, connection: object, pid: int, name: str, payload: str) -> None:
        self._inbox.put_nowait((name, payload))

    async def _dispatch(self) -> None:
        """Hand notifications to the hub in order, reading by-reference payloads."""
        while True:
            name, payload = await self._inbox.get()
            channel = self._names.get(name)
            if channel is None or channel not in self._wanted:
                continue
            head, _, body = payload.partition(":")
            id_ = int(head)
            if body:
                self.hub.on_live(channel, id_, body.encode("utf-8"))
                continue
            try:
                async with self._connection(f"reading message {id_} of {channel!r}") as conn:
                    text = await conn.fetchval(self._sql["message"], channel, id_)
            except BrokerUnavailableError as exc:
                # Not delivered: the next message's id jumps, and the hub catches up.
                logger.warning("Could not read message %d of %r: %s", id_, channel, exc)
                continue
            if text is not None:
                self.hub.on_live(channel, id_, text.encode("utf-8"))

    async def _watch(self) -> None:
        """Check the listening connection; reopen it and catch up when it was lost."""
        failures = 0
        while not self._closed:
            if failures:
                await asyncio.sleep(_BACKOFF[failures - 1])
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), PING_INTERVAL)
            async with self._listener_lock:
                listener = self._listener
                try:
                    if listener is None or listener.is_closed():
                        raise ConnectionError("the listening connection was closed")
                    await asyncio.wait_for(listener.fetchval("SELECT 1"), PING_TIMEOUT)
                    failures = 0
                    continue
                except (OSError, TimeoutError, self.asyncpg.PostgresError) as exc:
                    if failures == 0:
                        logger.warning("Channels lost its PostgreSQL listener: %s", exc)
                except self.asyncpg.InterfaceError as exc:
                    if failures == 0:
                        logger.warning("Channels lost its PostgreSQL listener: %s", exc)
                if listener is not None:
                    listener.terminate()
                self._listener = None
                try:
                    await self._open_listener()
                    marks = {channel: await self.last_id(channel) for channel in self._wanted}
                except BrokerUnavailableError:
                    failures = min(failures + 1, len(_BACKOFF))
                    continue
            failures = 0
            # Everything above each mark arrives live on the new connection.
            self.hub.on_reconnect(marks)

    async def close(self) -> None:
        """Stop listening and close this loop's connections."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), 5)
            self._listener = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), 5)
            self._pool = None
