"""Checkout health on MySQL/MariaDB: a free socket check every time, a ping only after idling.

The pool discards a connection whose socket the server closed (``KILL``, a
restart, ``wait_timeout``) without any round trip, and sends ``COM_PING`` only
to a connection idle for ``ping_interval`` seconds (default 1). Pings are
counted twice: by a spy around the real ``MySQLConnection.ping`` (every
attempt, even on a dead connection) and by the server's per-session
``Com_admin_commands`` counter (the pings that reached it).

Behind a proxy that keeps the client's socket open when the server side
closes, the socket check cannot see the close: :class:`HidingProxy` plays such
a proxy, to show what ``ping_interval=0`` and the retry rule are for.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from covet.db.database import Database
from covet.db.exceptions import OperationalError
from covet.db.transactions import transaction
from tests.db.models import Author
from tests.db.test_pool import _admin_commands

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

SERVER_IDS_SQL = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :name"


def _require_mysql(database: Database) -> None:
    if database.vendor != "mysql":
        pytest.skip("the socket check and ping_interval belong to the MySQL/MariaDB backend")


class PingSpy:
    """Count ``ping()`` calls made for one Database (the real ping still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, db: Database) -> None:
        from covet.db.backends.mysql import MySQLConnection

        self.calls = 0
        self.disconnects = 0
        real_ping = MySQLConnection.ping
        real_on_disconnect = db.backend.on_disconnect

        async def ping(conn: MySQLConnection) -> None:
            if conn.backend is db.backend:
                self.calls += 1
            await real_ping(conn)

        def on_disconnect() -> None:
            self.disconnects += 1
            real_on_disconnect()

        monkeypatch.setattr(MySQLConnection, "ping", ping)
        monkeypatch.setattr(db.backend, "on_disconnect", on_disconnect)


async def _server_ids(database: Database, name: str) -> set[int]:
    """Return the server's connection ids on the test database ``name``."""
    return {int(row[0]) for row in await database.fetch_all(SERVER_IDS_SQL, {"name": name})}


async def _held_ids(db: Database, count: int) -> set[int]:
    """Check out ``count`` connections at once and return their server ids."""
    async with contextlib.AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(db.connection()) for _ in range(count)]
        return {int(await conn.fetch_val("SELECT CONNECTION_ID()")) for conn in conns}


async def _wait_until_gone(database: Database, name: str, ids: set[int]) -> None:
    """Wait (up to 10 s) until the server no longer lists any of ``ids``."""
    for _ in range(1000):
        if not ids & await _server_ids(database, name):
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"The server still lists connections {sorted(ids)} after 10 s.")


async def test_mysql_default_ping_interval_is_one_second(database, make_database):
    _require_mysql(database)
    db = await make_database(min_size=1, max_size=1)
    assert db.settings["ping_interval"] == 1.0


async def test_mysql_killed_pool_is_replaced_without_a_round_trip(
    database, orm, make_database, target, monkeypatch
):
    _require_mysql(database)
    db = await make_database(min_size=3, max_size=3)
    killed = await _held_ids(db, 3)
    assert len(killed) == 3
    spy = PingSpy(monkeypatch, db)
    for server_id in killed:
        await database.execute("KILL :id", {"id": server_id})
    # Right after the kills, with default settings: ORM writes, reads and transactions,
    # alone and concurrently. None of them may fail, retry or ping.
    using = Author.objects.using(db.alias)
    ann = await using.create(name="Ann", email="ann@example.com")
    assert (await using.get(pk=ann.pk)).name == "Ann"

    async def work(i: int) -> int:
        author = await using.create(name=f"a{i}", email=f"a{i}@example.com")
        async with transaction(using=db.alias):
            await using.filter(pk=author.pk).update(age=i)
        return (await using.get(pk=author.pk)).age or 0

    assert await asyncio.gather(*(work(i) for i in range(1, 10))) == list(range(1, 10))
    assert await using.count() == 10
    # Every dead connection was dropped by the socket check: no ping was even attempted,
    # and no statement met a dead connection (which would have expired the pool).
    assert (spy.calls, spy.disconnects) == (0, 0)
    fresh = await _held_ids(db, 3)
    assert len(fresh) == 3
    assert not fresh & killed
    # The server holds exactly the pool's connections again: the killed ones are gone
    # and nothing leaked.
    stats = db.pool_stats()
    assert stats.size == stats.idle == 3
    server = await _server_ids(database, target.name)
    assert fresh <= server
    assert len(server) == stats.size + database.pool_stats().size


async def test_mysql_connection_closed_by_wait_timeout_is_dropped_before_any_ping(
    database, make_database, target, scratch, monkeypatch
):
    _require_mysql(database)
    table = database.ops.quote_name(await scratch("timed_out", "id INTEGER"))
    db = await make_database(min_size=1, max_size=1)
    async with db.connection() as conn:
        victim = int(await conn.fetch_val("SELECT CONNECTION_ID()"))
        await conn.execute("SET SESSION wait_timeout = 1")
    spy = PingSpy(monkeypatch, db)
    await _wait_until_gone(database, target.name, {victim})
    # Idle past ping_interval, so this checkout would ping, but the socket check sees the
    # server's close first: even a write (never re-sent) runs, on a new connection.
    assert await db.execute(f"INSERT INTO {table} (id) VALUES (1)") == 1  # noqa: S608
    assert int(await db.fetch_val("SELECT CONNECTION_ID()")) != victim
    assert (spy.calls, spy.disconnects) == (0, 0)
    assert db.pool_stats().size == 1


async def test_mysql_pings_only_connections_idle_past_ping_interval(
    database, make_database, monkeypatch
):
    _require_mysql(database)
    busy = await make_database(min_size=1, max_size=1)
    busy_spy = PingSpy(monkeypatch, busy)
    first_id, before = await _admin_commands(busy)
    for _ in range(20):
        assert await busy.fetch_val("SELECT 1") == 1
    same_id, after = await _admin_commands(busy)
    # One connection, reused well within the default 1 s: not one ping, by either count.
    assert (same_id, after, busy_spy.calls) == (first_id, before, 0)

    idle = await make_database(min_size=1, max_size=1, ping_interval=0.05)
    idle_spy = PingSpy(monkeypatch, idle)
    first_id, before = await _admin_commands(idle)
    pings_before = idle_spy.calls
    await asyncio.sleep(0.1)
    same_id, after = await _admin_commands(idle)
    # Idle for twice the interval: exactly one ping, and it reached the server.
    assert (same_id, after, idle_spy.calls - pings_before) == (first_id, before + 1, 1)


async def test_mysql_ping_interval_zero_pings_every_checkout(database, make_database):
    _require_mysql(database)
    db = await make_database(min_size=1, max_size=1, ping_interval=0)
    first_id, before = await _admin_commands(db)
    for _ in range(5):
        assert await db.fetch_val("SELECT 1") == 1
    same_id, after = await _admin_commands(db)
    assert same_id == first_id
    # Five statements plus the checkout that reads the counter: six pings.
    assert after - before == 6


class HidingProxy:
    """A TCP proxy that hides the server's close from the client, as some proxies do.

    When the server ends a connection, the proxy keeps the client's socket open,
    so the client's socket check passes; the client learns of the close only
    when it next sends something, which the proxy answers with a reset.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on a free local port and return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        up_reader, upstream = await asyncio.open_connection(self.host, self.port)
        self._writers |= {client, upstream}
        to_client = asyncio.ensure_future(self._to_client(up_reader, client))
        self._tasks.add(to_client)
        try:
            with contextlib.suppress(ConnectionError):
                while data := await client_reader.read(65536):
                    if up_reader.at_eof():
                        # The server is gone: the client finds out now, not when it closed.
                        client.transport.abort()
                        return
                    upstream.write(data)
                    await upstream.drain()
        finally:
            upstream.close()
            client.close()

    @staticmethod
    async def _to_client(up_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await up_reader.read(65536):
                client.write(data)
                await client.drain()
        # The server closed: say nothing to the client.

    async def close(self) -> None:
        """Stop listening and drop every proxied connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest_asyncio.fixture
async def behind_proxy(target) -> AsyncIterator[Callable[..., Awaitable[Database]]]:
    """Open Databases that reach the test database through a :class:`HidingProxy`."""
    parts = urllib.parse.urlsplit(target.url)
    proxy = HidingProxy(parts.hostname or "127.0.0.1", parts.port or 3306)
    port = await proxy.start()
    user = f"{parts.username}@" if parts.username else ""
    url = urllib.parse.urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))
    opened: list[Database] = []

    async def make(**options: Any) -> Database:
        db = Database(url, alias=f"proxied_{secrets.token_hex(4)}", **options)
        await db.connect()
        opened.append(db)
        return db

    try:
        yield make
    finally:
        for db in opened:
            await db.disconnect()
        await proxy.close()


async def test_mysql_ping_interval_zero_catches_a_close_a_proxy_hides(
    database, behind_proxy, scratch, monkeypatch
):
    _require_mysql(database)
    table = database.ops.quote_name(await scratch("proxied", "id INTEGER"))
    db = await behind_proxy(min_size=1, max_size=1, ping_interval=0)
    spy = PingSpy(monkeypatch, db)
    victim = await db.fetch_val("SELECT CONNECTION_ID()")
    await database.execute("KILL :id", {"id": victim})
    # The socket check passes (the proxy kept it open); the ping fails, the connection is
    # replaced, and even a write runs.
    assert await db.execute(f"INSERT INTO {table} (id) VALUES (1)") == 1  # noqa: S608
    assert await db.fetch_val(f"SELECT COUNT(*) FROM {table}") == 1  # noqa: S608
    assert await db.fetch_val("SELECT CONNECTION_ID()") != victim
    assert spy.disconnects == 0
    assert spy.calls == 4
    assert db.pool_stats().size == 1


async def test_mysql_hidden_close_within_ping_interval_follows_the_retry_rule(
    database, behind_proxy, scratch
):
    _require_mysql(database)
    table = database.ops.quote_name(await scratch("unpinged", "id INTEGER"))
    db = await behind_proxy(min_size=1, max_size=1, ping_interval=60)
    victim = await db.fetch_val("SELECT CONNECTION_ID()")
    await database.execute("KILL :id", {"id": victim})
    # Not pinged, and the proxy hid the close: a read meets the dead connection and is
    # retried once on a new one.
    replacement = await db.fetch_val("SELECT CONNECTION_ID()")
    assert replacement != victim
    # The lost connection had every idle one marked for a ping at its next checkout: once.
    _, before = await _admin_commands(db)
    _, after = await _admin_commands(db)
    assert after == before
    # A write is sent, the connection turns out dead, and it is never re-sent.
    await database.execute("KILL :id", {"id": replacement})
    with pytest.raises(OperationalError, match="lost"):
        await db.execute(f"INSERT INTO {table} (id) VALUES (1)")  # noqa: S608
    assert await db.fetch_val(f"SELECT COUNT(*) FROM {table}") == 0  # noqa: S608
    assert db.pool_stats().size == 1
