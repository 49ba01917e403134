"""A live app keeps its promises while its database server restarts (issue 23).

``covet run --workers 2`` serves an app inserting one row per request; eight
clients post inserts over kept-alive connections while PostgreSQL, then
MariaDB, is restarted for real. The test asserts: every acknowledged write is
in the table, every response is a 2xx or a 503 with Retry-After, no client
connection fails or is reopened, the server log holds no traceback and no
driver exception, and the app answers 2xx again within 1 s of the database
server answering.

The restart stops the shared database servers, so it runs only with
``COVET_TEST_ALLOW_SERVER_RESTART=1`` (set by ``.ci/run``). The figures of
``docs/reliability.md`` come from this test::

    COVET_TEST_ALLOW_SERVER_RESTART=1 pytest -s tests/cli/test_outage_e2e.py
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

from covet.db import Database, DatabaseUnavailableError
from tests.cli.conftest import (
    free_port,
    start_covet_logged,
    stop_server,
    wait_for_server,
    write_project,
)
from tests.db.conftest import ENV_VARS, _unavailable

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("COVET_TEST_ALLOW_SERVER_RESTART", "") != "1",
        reason="restarts the shared database servers; set COVET_TEST_ALLOW_SERVER_RESTART=1",
    ),
]

CLIENTS = 8
PAUSE = 0.03  # seconds between one client's requests
TRAFFIC_BEFORE = 1.0  # seconds of traffic before the restart
TRAFFIC_AFTER = 2.0  # seconds of traffic after the server answers again
RECOVERY = 1.0  # the app answers 2xx again within this many seconds of the server

APP = """
import os

from covet import Covet, JSONResponse, Request
from covet.db import Database

db = Database(os.environ["OUTAGE_DATABASE_URL"], alias="default", min_size=2, max_size=4,
              timeout=1)
table = os.environ["OUTAGE_TABLE"]
app = Covet()


@app.on_startup
async def connect() -> None:
    await db.connect()


@app.on_shutdown
async def disconnect() -> None:
    await db.disconnect()


@app.post("/items/{key}")
async def create(request: Request, key: str) -> JSONResponse:
    await db.execute(f"INSERT INTO {table} (k) VALUES (:k)", {"k": key})
    return JSONResponse({"key": key}, status_code=201)
"""


@dataclass
class Tally:
    """What the clients saw."""

    acknowledged: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # wrong statuses, 503s without Retry-After
    errors: list[str] = field(default_factory=list)  # client connection errors
    #: (time received, status) of every response.
    timeline: list[tuple[float, int]] = field(default_factory=list)
    #: Client address of each connection a client used (one each, when kept alive).
    connections: dict[int, set[object]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(number: int, base: str, stop: threading.Event, tally: Tally) -> None:
    addresses: set[object] = set()
    with httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_connections=1)) as c:
        while not stop.is_set():
            key = f"{number}-{secrets.token_hex(6)}"
            try:
                response = c.post(f"/items/{key}", headers={"accept": "application/json"})
            except httpx.HTTPError as exc:
                with tally.lock:
                    tally.errors.append(f"client {number}: {type(exc).__name__}: {exc}")
                continue
            stream = response.extensions.get("network_stream")
            if stream is not None:
                addresses.add(stream.get_extra_info("client_addr"))
            with tally.lock:
                status = response.status_code
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
                tally.timeline.append((time.monotonic(), status))
                if status == 201:
                    tally.acknowledged.add(key)
                elif status != 503 or not response.headers.get("retry-after", "").isdigit():
                    tally.bad.append(f"{status} {dict(response.headers)} {response.text[:200]}")
            time.sleep(PAUSE)
    with tally.lock:
        tally.connections[number] = addresses


def _restart_postgres() -> None:
    version = sorted(p.name for p in pathlib.Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=60,
    )


def _restart_mariadb() -> None:
    pids = subprocess.run(["pidof", "mariadbd"], capture_output=True, text=True, check=True)
    [pid] = [int(p) for p in pids.stdout.split()]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while pathlib.Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "mariadbd did not stop within 60 s"
        time.sleep(0.05)
    subprocess.run(
        [
            "start-stop-daemon",
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ],
        check=True,
        timeout=60,
    )


RESTART = {"postgres": _restart_postgres, "mysql": _restart_mariadb}


async def _answers(url: str) -> bool:
    db = Database(url, alias=f"probe_{secrets.token_hex(4)}", min_size=0, max_size=1, timeout=1)
    try:
        await db.connect()
    except Exception:  # noqa: BLE001 - not answering yet
        return False
    try:
        return bool(await db.fetch_val("SELECT 1") == 1)
    except DatabaseUnavailableError:
        # Connected just before the server went down (its shutdown notice arrives on the
        # new connection): not answering yet either.
        return False
    finally:
        await db.disconnect()


def _restart(backend: str, url: str) -> tuple[float, float]:
    """Restart the server while probing it; return (restart started, server answers again).

    The server answers again at the first successful probe after a failed one
    (or after the restart command returned, for a restart too quick to see).
    """
    restart = threading.Thread(target=RESTART[backend])
    started = time.monotonic()
    restart.start()
    went_down = False
    answering = None
    while time.monotonic() < started + 60:
        up = asyncio.run(_answers(url))
        if not up:
            went_down = True
        elif went_down or not restart.is_alive():
            answering = time.monotonic()
            break
        time.sleep(0.02)
    restart.join(timeout=60)
    if answering is None:
        pytest.fail("the database server did not answer within 60 s of its restart")
    return started, answering


async def _sql(url: str, statement: str) -> list[str]:
    async with Database(url, alias=f"setup_{secrets.token_hex(4)}") as db:
        if statement.startswith("SELECT"):
            return [str(row[0]) for row in await db.fetch_all(statement)]
        await db.execute(statement)
        return []


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
def test_inserts_survive_a_database_server_restart(backend: str, tmp_path: Path) -> None:
    url = os.environ.get(ENV_VARS[backend], "")
    if not url:
        _unavailable(f"{ENV_VARS[backend]} is not set; {backend} tests are skipped")
    table = f"outage_e2e_{secrets.token_hex(4)}"
    asyncio.run(_sql(url, f"CREATE TABLE {table} (k VARCHAR(40) PRIMARY KEY)"))
    root = write_project(tmp_path, "outage", APP)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    tally = Tally()
    stop = threading.Event()
    process = start_covet_logged(
        log_path, "run", "--port", str(port), "--workers", "2", "--no-check",
        cwd=root, OUTAGE_DATABASE_URL=url, OUTAGE_TABLE=table,
    )  # fmt: skip
    try:
        wait_for_server(f"{base}/items/warm-up", process)
        threads = [
            threading.Thread(target=_client, args=(n, base, stop, tally)) for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(TRAFFIC_BEFORE)
        restart_started, answering = _restart(backend, url)
        time.sleep(TRAFFIC_AFTER)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()
        code, _, _ = stop_server(process, signal.SIGTERM)
    server_log = log_path.read_text("utf-8")
    stored = set(asyncio.run(_sql(url, f"SELECT k FROM {table}")))  # noqa: S608 - the test's table
    asyncio.run(_sql(url, f"DROP TABLE {table}"))

    unavailable = [t for t, status in tally.timeline if status == 503]
    last_503 = max(unavailable, default=restart_started)
    first_ok_after = min(
        (t for t, status in tally.timeline if status == 201 and t >= answering), default=None
    )
    figures = {
        "backend": backend,
        "requests": sum(tally.statuses.values()),
        "statuses": tally.statuses,
        "lost_writes": len(tally.acknowledged - stored),
        "outage_s": round(answering - restart_started, 2),
        "last_503_after_answering_s": round(last_503 - answering, 3),
        "first_2xx_after_answering_s": None
        if first_ok_after is None
        else round(first_ok_after - answering, 3),
    }
    print(f"\noutage figures: {figures}")
    assert code == 0, server_log[-3000:]
    assert tally.errors == [], tally.errors[:5]
    assert tally.bad == [], tally.bad[:5]
    assert tally.acknowledged - stored == set()
    assert all(len(addresses) == 1 for addresses in tally.connections.values()), tally.connections
    assert len(tally.connections) == CLIENTS
    assert unavailable, "the restart was not noticed: no 503 was answered"
    assert last_503 - answering <= RECOVERY, figures
    assert first_ok_after is not None
    assert first_ok_after - answering <= RECOVERY, figures
    assert "Traceback" not in server_log, server_log[-3000:]
    # What the records say, not which logger wrote them: the one-line notice of
    # asyncpg's pool is emitted on its own logger ("asyncpg.pool") by design.
    said = _without_logger_names(server_log)
    for driver in ("asyncpg", "pymysql", "aiomysql", "InternalClientError"):
        assert driver not in said, server_log[-3000:]


def _without_logger_names(log: str) -> str:
    """Return the server log with each JSON record's logger name left out."""
    kept = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if isinstance(record, dict):
            record.pop("logger", None)
            kept.append(json.dumps(record))
        else:
            kept.append(line)
    return "\n".join(kept)
