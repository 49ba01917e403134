"""GET /up and GET /ready: database pings, extra checks, timeouts, draining."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
import urllib.parse
from typing import TYPE_CHECKING

import httpx
import pytest

from covet import Covet
from covet.db import Database
from covet.exceptions import ImproperlyConfigured
from covet.health import Health, health_router
from covet.redis import redis_connections
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


def _app(**options: object) -> Covet:
    # Redis connections other tests made live on in this process: not these tests' to ping.
    options.setdefault("redis", False)
    app = Covet()
    app.include_router(health_router(**options))  # type: ignore[arg-type]
    return app


@contextlib.asynccontextmanager
async def _client(app: Covet) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@contextlib.asynccontextmanager
async def _sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    alias = f"health_{secrets.token_hex(4)}"
    database = Database(f"sqlite:///{tmp_path / 'health.sqlite3'}", alias=alias)
    await database.connect()
    try:
        yield database
    finally:
        await database.disconnect()


def test_up_answers_without_io() -> None:
    with TestClient(_app()) as client:
        response = client.get("/up")
        assert response.status_code == 200
        assert response.text == "ok"
        assert response.headers["cache-control"] == "no-store"
        assert client.head("/up").status_code == 200
        assert client.post("/up").status_code == 405
        assert client.post("/ready").status_code == 405


async def test_ready_pings_each_connected_database(tmp_path: Path) -> None:
    async with _sqlite(tmp_path) as database, _client(_app()) as client:
        response = await client.get("/ready")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok"
        result = body["checks"][f"db:{database.alias}"]
        assert result["ok"] is True
        assert result["error"] is None
        assert isinstance(result["ms"], float)
    # Once disconnected, the database is no longer checked.
    async with _client(_app()) as client:
        body = (await client.get("/ready")).json()
        assert f"db:{database.alias}" not in body["checks"]


async def test_failing_extra_check_makes_ready_503(tmp_path: Path) -> None:
    async def redis_down() -> None:
        raise ConnectionRefusedError("Connection refused by 127.0.0.1:6390")

    async def fine() -> bool:
        return True

    app = _app(checks={"redis": redis_down, "queue": fine}, retry_after=7)
    async with _sqlite(tmp_path) as database, _client(app) as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["redis"] == {
            "ok": False,
            "ms": body["checks"]["redis"]["ms"],
            "error": "ConnectionRefusedError: Connection refused by 127.0.0.1:6390",
        }
        assert body["checks"]["queue"]["ok"] is True
        assert body["checks"][f"db:{database.alias}"]["ok"] is True


async def test_a_hanging_check_times_out() -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)

    async def ignores_cancellation() -> None:
        for _ in range(30):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.1)

    app = _app(checks={"hangs": hangs, "stubborn": ignores_cancellation}, timeout=0.3)
    async with _client(app) as client:
        started = time.perf_counter()
        response = await client.get("/ready")
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert elapsed < 1.5, elapsed
    checks = response.json()["checks"]
    for name in ("hangs", "stubborn"):
        assert checks[name]["ok"] is False
        assert checks[name]["error"] == "timed out after 0.3 s"
        assert checks[name]["ms"] >= 300


REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


async def test_ready_pings_the_redis_servers_features_use() -> None:
    pytest.importorskip("redis")
    from covet.ratelimit import RedisBackend
    from covet.sessions import RedisStore

    # Sessions and rate limits on one server are one check; a dead one fails /ready.
    sessions, limits = RedisStore(url=REDIS_URL), RedisBackend(url=REDIS_URL)
    dead_port = _free_port()
    dead = RedisStore(url=f"redis://user:hunter2@127.0.0.1:{dead_port}/3")
    parts = urllib.parse.urlsplit(REDIS_URL)
    live = f"redis:{parts.hostname}:{parts.port or 6379}/{parts.path.lstrip('/') or '0'}"
    async with _client(_app(redis=True)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503, response.text
    checks = response.json()["checks"]
    assert checks[live]["ok"] is True
    failed = checks[f"redis:127.0.0.1:{dead_port}/3"]
    assert failed["ok"] is False and failed["error"]
    assert "hunter2" not in response.text  # the address never carries the password
    for connection in redis_connections():
        await connection.aclose()
    async with _client(_app(redis=False)) as client:
        checks = (await client.get("/ready")).json()["checks"]
        assert not any(name.startswith("redis:") for name in checks)

    def configure_and_drop() -> None:
        RedisStore(url=f"redis://127.0.0.1:{dead_port}/4")

    configure_and_drop()
    # A feature dropped is no longer checked: the registry holds connections weakly.
    assert not any(c.address.endswith(f":{dead_port}/4") for c in redis_connections())
    del sessions, limits, dead  # alive until here, so checked above


def test_ready_answers_503_once_shutdown_starts() -> None:
    seen: list[tuple[int, str]] = []
    app = _app(databases=False)

    @app.on_shutdown
    async def probe() -> None:
        async with _client(app) as client:
            response = await client.get("/ready")
            seen.append((response.status_code, response.json()["status"]))

    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
    assert app.draining is True
    assert seen == [(503, "draining")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"checks": {"redis": "ping"}}, "Readiness check 'redis' is 'ping', not callable"),
        ({"timeout": 0}, "Health got timeout=0. Pass a positive number"),
        ({"retry_after": -1}, "Health got retry_after=-1."),
    ],
)
def test_invalid_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        Health(**options)  # type: ignore[arg-type]


class _Proxy:
    """A TCP proxy to a real server that a test can black-hole, stop and start again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.blackholed = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.blackholed = False
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.blackholed:
            return  # accepted, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.blackholed:
                    continue  # swallow: the other side waits forever
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


async def _ready(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/ready")


async def test_ready_follows_a_postgres_server_that_goes_away_and_returns() -> None:
    url = os.environ.get("COVET_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail("COVET_TEST_POSTGRES_URL is not set (COVET_TEST_REQUIRE_ALL=1)")
        pytest.skip("COVET_TEST_POSTGRES_URL is not set")
    parts = urllib.parse.urlsplit(url)
    proxy = _Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    proxied = urllib.parse.urlunsplit(
        parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host)
    )
    database = Database(proxied, alias=f"health_pg_{secrets.token_hex(4)}", max_size=2)
    await database.connect()
    key = f"db:{database.alias}"
    try:
        async with _client(_app(timeout=0.5)) as client:
            first = await _ready(client)
            assert first.status_code == 200, first.text
            assert first.json()["checks"][key]["ok"] is True

            # Black-holed: packets vanish, the ping would wait forever.
            proxy.blackholed = True
            started = time.perf_counter()
            hung = await _ready(client)
            assert time.perf_counter() - started < 2
            assert hung.status_code == 503, hung.text
            assert hung.headers["retry-after"] == "5"
            assert hung.json()["checks"][key] == {
                "ok": False,
                "ms": hung.json()["checks"][key]["ms"],
                "error": "timed out after 0.5 s",
            }

            # Stopped: connections are cut and new ones refused.
            await proxy.stop()
            down = await _ready(client)
            assert down.status_code == 503, down.text
            assert down.json()["checks"][key]["ok"] is False

            await proxy.start()
            deadline = time.monotonic() + 10
            while (back := await _ready(client)).status_code != 200:
                assert time.monotonic() < deadline, back.text
                await asyncio.sleep(0.2)
            assert back.json()["checks"][key]["ok"] is True
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(database.disconnect(), 10)
        with contextlib.suppress(Exception):
            await proxy.stop()
