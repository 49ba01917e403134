"""Failures to connect: one covet error per cause, on every backend and every connect path.

Each fault is real: a closed port on 127.0.0.1, a database name the server
does not have, a user it does not know, a directory that does not exist. The
paths covered are ``connect()`` (pool creation), a checkout that must open a
new connection, the ping of an idle connection, and ``disconnect()`` after
the server went away. The error is always :class:`covet.db.OperationalError`
chained to the driver's own, never the driver's class (issue 23).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest

from covet.db import Database
from covet.db.exceptions import DatabaseUnavailableError, OperationalError
from covet.exceptions import ImproperlyConfigured, MissingDependencyError
from tests.cli.conftest import free_port
from tests.db.conftest import ENV_VARS, _unavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

SERVERS = ("postgres", "mysql")
DISPLAY = {"postgres": "PostgreSQL", "mysql": "MySQL"}
DRIVER_MODULES = {"postgres": "asyncpg", "mysql": "pymysql", "sqlite": "sqlite3"}
URL_HINT = "the database URL (DATABASE_URL)"
# An option that makes every checkout ping its connection first.
PING_ALWAYS: dict[str, dict[str, Any]] = {
    "postgres": {"pre_ping_after": 0},
    "mysql": {"ping_interval": 0},
}


def _alias() -> str:
    return f"connect_errors_{secrets.token_hex(4)}"


def _replace(
    url: str,
    *,
    host: str | None = None,
    port: int | None = None,
    user: str | None = None,
    database: str | None = None,
) -> str:
    """Return ``url`` with some of its parts replaced (no password, no query)."""
    parts = urllib.parse.urlsplit(url)
    netloc = f"{user or parts.username}@{host or parts.hostname}:{port or parts.port}"
    path = "/" + (database if database is not None else parts.path.lstrip("/"))
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Return a server backend's name and the URL of its test database."""
    backend: str = request.param
    url = os.environ.get(ENV_VARS[backend], "")
    if not url:
        _unavailable(f"{ENV_VARS[backend]} is not set; {backend} tests are skipped")
    return backend, url


def _assert_translated(info: pytest.ExceptionInfo[OperationalError], backend: str) -> None:
    """The error is covet's own class, chained to the driver's error.

    A server that cannot be reached or went away is temporary
    (:class:`DatabaseUnavailableError`, answered 503); a bad name, user or
    file is not (a plain :class:`OperationalError`).
    """
    message = str(info.value)
    temporary = message.startswith(("Cannot connect to ", "The connection to "))
    assert type(info.value) is (DatabaseUnavailableError if temporary else OperationalError)
    cause = info.value.__cause__
    assert cause is not None
    chain = [cause, *([cause.__cause__] if cause.__cause__ is not None else [])]
    modules = {type(error).__module__.split(".")[0] for error in chain}
    # The driver's error, or the OS error it gave up on (refused, unknown host).
    assert modules & {DRIVER_MODULES[backend], "builtins", "socket", "aiomysql"}, modules


# -- malformed URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgres://ann:s3cret@127.0.0.1:99999/app",
            "Invalid port '99999' in the database URL 'postgres://ann:***@127.0.0.1:99999/app'. "
            "Use postgres://USER:PASSWORD@HOST:PORT/DATABASE, with PORT a number from 1 to "
            "65535.",
        ),
        (
            "mysql://root@127.0.0.1:abc/app",
            "Invalid port 'abc' in the database URL 'mysql://root@127.0.0.1:abc/app'. Use "
            "mysql://USER:PASSWORD@HOST:PORT/DATABASE, with PORT a number from 1 to 65535.",
        ),
        (
            "postgresql://ann@127.0.0.1:0/app",
            "Invalid port '0' in the database URL 'postgresql://ann@127.0.0.1:0/app'. Use "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with PORT a number from 1 to 65535.",
        ),
        (
            "postgresql://ann:s3cret@127.0.0.1:5432/",
            "The database URL 'postgresql://ann:***@127.0.0.1:5432/' names no database. Use "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE.",
        ),
        (
            "mysql://root@127.0.0.1",
            "The database URL 'mysql://root@127.0.0.1' names no database. Use "
            "mysql://USER:PASSWORD@HOST:PORT/DATABASE.",
        ),
        (
            "postgress://ann:s3cret@db/app",
            "Unknown database URL scheme 'postgress' in the database URL "
            "'postgress://ann:***@db/app'. Use sqlite:///PATH, "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE or "
            "mysql://USER:PASSWORD@HOST:PORT/DATABASE (known schemes: mariadb, "
            "mariadb+aiomysql, mysql, mysql+aiomysql, postgres, postgresql, "
            "postgresql+asyncpg, sqlite, sqlite+aiosqlite).",
        ),
        (
            "sqlite://",
            "The SQLite URL 'sqlite://' names no file. Use sqlite:///app.db (relative to the "
            "current directory), sqlite:////abs/path/app.db (absolute) or sqlite:///:memory:.",
        ),
    ],
)
def test_malformed_url_names_the_masked_url_and_the_expected_form(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        Database(url)
    assert str(info.value) == message
    assert "s3cret" not in str(info.value)


# -- connect() --------------------------------------------------------------------------------


@pytest.mark.parametrize("min_size", [0, 1])
async def test_closed_port_is_unreachable(server: tuple[str, str], min_size: int) -> None:
    backend, url = server
    port = free_port()
    db = Database(_replace(url, port=port), alias=_alias(), min_size=min_size, timeout=5)
    with pytest.raises(OperationalError) as info:
        await db.connect()
    assert str(info.value) == (
        f"Cannot connect to {DISPLAY[backend]} at 127.0.0.1:{port}: connection refused. "
        f"Start the database server, or fix the host and port in {URL_HINT}."
    )
    _assert_translated(info, backend)
    assert not db.is_connected


async def test_missing_database_gives_the_command_that_creates_it(
    server: tuple[str, str],
) -> None:
    backend, url = server
    parts = urllib.parse.urlsplit(url)
    host, port, user = parts.hostname, parts.port, parts.username
    name = f"covet_missing_{secrets.token_hex(4)}"
    db = Database(_replace(url, database=name), alias=_alias(), min_size=1)
    with pytest.raises(OperationalError) as info:
        await db.connect()
    command = {
        "postgres": f"createdb -h {host} -p {port} -U {user} {name}",
        "mysql": (
            f"mysql -h {host} -P {port} -u {user} -e 'CREATE DATABASE {name} CHARACTER SET utf8mb4'"
        ),
    }[backend]
    assert str(info.value) == (
        f"The {DISPLAY[backend]} database {name!r} does not exist on {host}:{port}. Fix the "
        f"database name in {URL_HINT}, or create the database with: {command}"
    )
    _assert_translated(info, backend)


async def test_unknown_user_is_a_refused_login_naming_the_user(server: tuple[str, str]) -> None:
    backend, url = server
    parts = urllib.parse.urlsplit(url)
    user = f"covet_nobody_{secrets.token_hex(4)}"
    db = Database(_replace(url, user=user), alias=_alias(), min_size=1)
    with pytest.raises(OperationalError) as info:
        await db.connect()
    message = str(info.value)
    assert message.startswith(
        f"{DISPLAY[backend]} at {parts.hostname}:{parts.port} refused the login of user {user!r}: "
    )
    assert user in message.partition(": ")[2]  # the server's own words name the user too
    assert message.endswith(f". Fix the user name and password in {URL_HINT}.")
    assert ".." not in message
    _assert_translated(info, backend)


async def test_missing_sqlite_directory_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "missing" / "dir"
    db = Database(f"sqlite:///{directory / 'app.db'}", alias=_alias())
    with pytest.raises(OperationalError) as info:
        await db.connect()
    assert str(info.value) == (
        f"The directory {str(directory)!r} of the SQLite database "
        f"{'sqlite:///' + str(directory / 'app.db')!r} does not exist. Create it (mkdir -p "
        f"{directory}), or fix the path in {URL_HINT}."
    )
    _assert_translated(info, "sqlite")


async def test_sqlite_path_that_is_a_directory_is_named(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}", alias=_alias())
    with pytest.raises(OperationalError, match=r"is a directory\. Name a file inside it"):
        await db.connect()


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgresql://u@127.0.0.1/app", "asyncpg", "postgres"),
        ("mysql://u@127.0.0.1/app", "aiomysql", "mysql"),
    ],
)
async def test_missing_driver_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str
) -> None:
    # None in sys.modules makes `import module` raise ImportError: the driver is not installed.
    monkeypatch.setitem(sys.modules, module, None)
    db = Database(url, alias=_alias())
    with pytest.raises(MissingDependencyError) as info:
        await db.connect()
    assert str(info.value).endswith(f"Run: pip install 'covet-web[{extra}]'")


# -- after connect(): checkout, ping, close (issue 23) ----------------------------------------


class TCPRelay:
    """Relay 127.0.0.1:port to a real database server, and cut the way on demand.

    :meth:`refuse_new` closes the listening socket, so new connections to the
    port are refused like those to a stopped server; :meth:`cut_all` also
    resets the connections already relayed, as a server that went away would.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.ensure_future(pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def refuse_new(self) -> None:
        assert self._server is not None
        self._server.close()

    def cut_all(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.refuse_new()
        self.cut_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def relay(server: tuple[str, str]) -> AsyncIterator[TCPRelay]:
    parts = urllib.parse.urlsplit(server[1])
    relay = TCPRelay(parts.hostname or "127.0.0.1", parts.port or 0)
    await relay.start()
    yield relay
    await relay.stop()


def _refused(backend: str, port: int) -> str:
    return (
        f"Cannot connect to {DISPLAY[backend]} at 127.0.0.1:{port}: connection refused. "
        f"Start the database server, or fix the host and port in {URL_HINT}."
    )


async def test_checkout_opening_a_connection_to_a_closed_port(
    server: tuple[str, str], relay: TCPRelay
) -> None:
    backend, url = server
    db = Database(
        _replace(url, host="127.0.0.1", port=relay.port),
        alias=_alias(),
        min_size=1,
        max_size=2,
        timeout=5,
    )
    await db.connect()
    try:
        async with db.connection() as held:
            assert await held.fetch_val("SELECT 1") == 1
            relay.refuse_new()
            # The only open connection is held: this checkout must open a new one.
            with pytest.raises(OperationalError) as info:
                await db.fetch_val("SELECT 1")
        assert str(info.value) == _refused(backend, relay.port)
        _assert_translated(info, backend)
        # The held connection still works and went back to the pool.
        assert await db.fetch_val("SELECT 2") == 2
    finally:
        await db.disconnect()


async def test_checkout_whose_ping_fails_then_cannot_reconnect(
    server: tuple[str, str], relay: TCPRelay
) -> None:
    backend, url = server
    db = Database(
        _replace(url, host="127.0.0.1", port=relay.port),
        alias=_alias(),
        min_size=1,
        max_size=1,
        timeout=5,
        **PING_ALWAYS[backend],
    )
    await db.connect()
    try:
        assert await db.fetch_val("SELECT 1") == 1
        relay.refuse_new()
        relay.cut_all()
        await asyncio.sleep(0.05)  # let the event loop see the reset
        with pytest.raises(OperationalError) as info:
            await db.fetch_val("SELECT 1")
        assert str(info.value) == _refused(backend, relay.port)
        _assert_translated(info, backend)
    finally:
        await db.disconnect()


async def test_disconnect_after_the_server_went_away_does_not_raise(
    server: tuple[str, str], relay: TCPRelay
) -> None:
    _, url = server
    db = Database(
        _replace(url, host="127.0.0.1", port=relay.port), alias=_alias(), min_size=2, timeout=5
    )
    await db.connect()
    relay.refuse_new()
    relay.cut_all()
    await asyncio.sleep(0.05)
    await db.disconnect()
    assert not db.is_connected


async def test_sqlite_checkout_after_the_directory_was_removed(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    url = f"sqlite:///{directory / 'app.db'}"
    # Without the shared connection, which is open already: the statement needs a new one.
    db = Database(url, alias=_alias(), min_size=1, max_size=2, shared_connection=False)
    await db.connect()
    try:
        async with db.connection() as held:
            assert await held.fetch_val("SELECT 1") == 1
            shutil.rmtree(directory)
            with pytest.raises(OperationalError) as info:
                await db.fetch_val("SELECT 1")
        assert str(info.value) == (
            f"The directory {str(directory)!r} of the SQLite database {url!r} does not exist. "
            f"Create it (mkdir -p {directory}), or fix the path in {URL_HINT}."
        )
        _assert_translated(info, "sqlite")
    finally:
        await db.disconnect()
