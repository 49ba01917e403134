"""Requests cancelled mid-query and mid-transaction leak no connection and no transaction.

Two ways a request ends early, 1,000 requests each, on a private PostgreSQL and
MariaDB server, checked on the server afterwards (``pg_stat_activity``;
``information_schema.PROCESSLIST`` and ``INNODB_TRX``):

* the request's task is cancelled (what a server that cancels on disconnect,
  a timeout or a shutdown does): in-process, at a random point between
  checkout, the statement, the transaction and the response;
* the client closes its socket mid-request under ``covet run --workers 2``
  (uvicorn lets the handler finish; nothing may be left behind either way).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import struct
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from covet.db import Database
from tests.cli.conftest import free_port, start_covet_logged, write_project
from tests.reliability.faults import (
    admin,
    client_for,
    open_transactions,
    pair_app,
    rows_by_key,
    settled_state,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.reliability.servers import PrivateServer

pytestmark = pytest.mark.slow

REQUESTS = 1000
BATCH = 50


async def test_a_thousand_cancelled_requests_leave_nothing_open(
    private_server: PrivateServer,
) -> None:
    vendor = private_server.backend
    admin_db = await admin(private_server)
    table = f"cancel_{secrets.token_hex(4)}"
    await admin_db.execute(f"CREATE TABLE {table} (k VARCHAR(40) NOT NULL, n INTEGER NOT NULL)")
    db = Database(private_server.url, alias=f"app_{secrets.token_hex(4)}", min_size=2,
                  max_size=4, timeout=10)  # fmt: skip
    await db.connect()
    app = pair_app(db, table, pause=0.01)
    rng = random.Random(16)
    outcomes = {"cancelled": 0, "completed": 0}
    completed_keys: set[str] = set()
    async with client_for(app) as client:

        async def request(i: int) -> None:
            key = f"c{i}"
            kind = i % 3
            if kind == 0:
                response = await client.get("/slow", params={"s": 0.02})  # mid-query
            elif kind == 1:
                response = await client.get(f"/tx-slow/{key}", params={"s": 0.02})  # mid-tx
            else:
                response = await client.post(f"/pair/{key}")  # between two statements
            assert response.status_code in (200, 201), response.text
            if kind:
                completed_keys.add(key)

        for start in range(0, REQUESTS, BATCH):
            tasks = [asyncio.create_task(request(i)) for i in range(start, start + BATCH)]
            await asyncio.sleep(rng.random() * 0.06)
            for task in tasks:
                if rng.random() < 0.9:
                    task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert [r for r in results if isinstance(r, Exception)] == []
            for r in results:
                outcomes["cancelled" if isinstance(r, asyncio.CancelledError) else "completed"] += 1
        # The pool is whole: a burst of max_size concurrent requests is served.
        burst = await asyncio.gather(*(client.get("/fast") for _ in range(8)))
    stats = db.pool_stats()
    state = await settled_state(admin_db, vendor, stats.size)
    rows = await rows_by_key(admin_db, table)
    print(f"\ncancellation figures [{vendor}]: {outcomes} pool={stats} server={state}")
    await db.disconnect()
    await admin_db.execute(f"DROP TABLE {table}")
    await admin_db.disconnect()
    assert outcomes["cancelled"] > REQUESTS // 2
    assert [r.status_code for r in burst] == [200] * 8
    assert stats.idle == stats.size <= stats.max_size
    # What the server sees: exactly the pool's connections, no transaction, no statement.
    assert state == {"sessions": stats.size, "open_transactions": 0, "running": 0}
    # Cancelled transactions rolled back whole; completed ones are all there.
    assert {k for k, ns in rows.items() if ns not in ({1}, {1, 2})} == set()
    assert {k for k, ns in rows.items() if k.startswith("c") and int(k[1:]) % 3 == 2
            and ns != {1, 2}} == set()  # fmt: skip
    assert completed_keys - set(rows) == set()


APP = """
import asyncio
import os

from covet import Covet, Request
from covet.db import Database, transaction

db = Database(os.environ["CANCEL_DATABASE_URL"], alias="default", min_size=1, max_size=4,
              timeout=1)
table = os.environ["CANCEL_TABLE"]
sleep = {"postgres": "SELECT pg_sleep(:s)", "mysql": "SELECT SLEEP(:s)"}[db.vendor]
app = Covet()


@app.on_startup
async def connect() -> None:
    await db.connect()


@app.on_shutdown
async def disconnect() -> None:
    await db.disconnect()


@app.get("/q")
async def query(request: Request) -> dict:
    return {"slept": await db.fetch_val(sleep, {"s": 0.03})}


@app.get("/tx/{key}")
async def tx(request: Request, key: str) -> dict:
    async with transaction():
        await db.execute(f"INSERT INTO {table} (k, n) VALUES (:k, 1)", {"k": key})
        await db.fetch_val(sleep, {"s": 0.03})
    return {"key": key}


@app.get("/fast")
async def fast(request: Request) -> dict:
    return {"one": await db.fetch_val("SELECT 1")}
"""


async def _hang_up(port: int, path: str, delay: float, reset: bool) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(delay)
    sock = writer.get_extra_info("socket")
    if reset and sock is not None:
        # SO_LINGER 0: the close sends RST, the abrupt end of a killed client.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def test_a_thousand_clients_hanging_up_mid_request_leave_nothing_open(
    private_server: PrivateServer, tmp_path: Path
) -> None:
    vendor = private_server.backend
    admin_db = await admin(private_server)
    table = f"hangup_{secrets.token_hex(4)}"
    await admin_db.execute(f"CREATE TABLE {table} (k VARCHAR(40) NOT NULL, n INTEGER NOT NULL)")
    root = write_project(tmp_path, "cancelsite", APP)
    port = free_port()
    log_path = tmp_path / "server.log"
    rng = random.Random(16)
    process = start_covet_logged(
        log_path, "run", "--port", str(port), "--workers", "2", "--no-check",
        cwd=root, CANCEL_DATABASE_URL=private_server.url, CANCEL_TABLE=table,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/fast")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.1)
            for start in range(0, REQUESTS, BATCH):
                await asyncio.gather(*(
                    _hang_up(
                        port,
                        "/q" if i % 2 else f"/tx/h{i}",
                        rng.random() * 0.05,
                        reset=bool(i % 4 < 2),
                    )
                    for i in range(start, start + BATCH)
                ))  # fmt: skip
            await asyncio.sleep(0.5)  # the last handlers finish
            # Each worker's pool is whole: bursts of requests are all served.
            statuses = [
                r.status_code
                for r in await asyncio.gather(*(client.get("/fast") for _ in range(40)))
            ]
            state = await settled_state(admin_db, vendor, -1, timeout=2)
            # What is open, if anything, for the assertion message below.
            still_open = await open_transactions(admin_db, vendor)
    finally:
        process.terminate()
        process.wait(30)
    rows = await rows_by_key(admin_db, table)
    await admin_db.execute(f"DROP TABLE {table}")
    await admin_db.disconnect()
    server_log = log_path.read_text("utf-8", "replace")
    print(f"\nhang-up figures [{vendor}]: server={state} transactions committed={len(rows)}")
    assert statuses == [200] * 40
    assert state["open_transactions"] == 0 and state["running"] == 0, (state, still_open)
    assert state["sessions"] <= 2 * 4, state  # two workers' pools, nothing more
    assert "Traceback" not in server_log, server_log[-3000:]
    assert process.returncode == 0, server_log[-3000:]
    assert {k for k, ns in rows.items() if ns != {1}} == set()
    assert len(rows) > 0  # handlers ran: the hang-ups landed mid-request, not before
