"""Database faults under load, on private servers: kills, exhausted pools, statement timeouts.

Each test drives an in-process covet app (same event loop as the clients, so the
loop's lag is measured where the app runs) over a private PostgreSQL and
MariaDB server (``private_server``), which it may kill sessions on. The full-size
runs and figures are ``benchmarks/reliability/run.py`` and docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING

import pytest

from covet.db import Database, DatabaseError, OperationalError, transaction
from tests.reliability.faults import (
    KILL_SQL,
    SERVER_ID_SQL,
    SESSIONS_SQL,
    SLEEP_SQL,
    admin,
    client_for,
    measuring_lag,
    open_transactions,
    pair_app,
    rows_by_key,
    settled_state,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.reliability.servers import PrivateServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def pair_table(private_server: PrivateServer) -> AsyncIterator[tuple[Database, str]]:
    """An admin pool on the private server and a fresh ``(k, n)`` table, dropped afterwards."""
    db = await admin(private_server)
    table = f"pairs_{secrets.token_hex(4)}"
    await db.execute(f"CREATE TABLE {table} (k VARCHAR(40) NOT NULL, n INTEGER NOT NULL)")
    yield db, table
    await db.execute(f"DROP TABLE {table}")
    await db.disconnect()


def _ok_or_unavailable(status: int, headers: dict[str, str]) -> bool:
    return status in (200, 201) or (status == 503 and headers.get("retry-after", "").isdigit())


async def test_sessions_killed_mid_transaction_answer_503_and_commit_nothing_half(
    private_server: PrivateServer, pair_table: tuple[Database, str]
) -> None:
    admin_db, table = pair_table
    vendor = private_server.backend
    db = Database(private_server.url, alias=f"app_{secrets.token_hex(4)}", min_size=2,
                  max_size=4, timeout=2)  # fmt: skip
    await db.connect()
    app = pair_app(db, table, pause=0.02)
    statuses: dict[int, int] = {}
    bad: list[str] = []
    acknowledged: set[str] = set()
    killed = 0
    stop = asyncio.Event()

    async def killer() -> None:
        nonlocal killed
        while not stop.is_set():
            await asyncio.sleep(0.03)
            for (victim,) in await admin_db.fetch_all(SESSIONS_SQL[vendor]):
                try:
                    await admin_db.execute(KILL_SQL[vendor], {"id": victim})
                    killed += 1
                except DatabaseError:
                    pass  # it ended by itself meanwhile

    async def writer(client: object, number: int) -> None:
        for i in range(25):
            key = f"{number}-{i}-{secrets.token_hex(3)}"
            response = await client.post(f"/pair/{key}")  # type: ignore[attr-defined]
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 201:
                acknowledged.add(key)
            elif not _ok_or_unavailable(response.status_code, dict(response.headers)):
                bad.append(f"{response.status_code} {response.text[:200]}")

    async with client_for(app) as client, measuring_lag() as lag:
        kill_task = asyncio.create_task(killer())
        await asyncio.gather(*(writer(client, n) for n in range(8)))
        stop.set()
        await kill_task
        # No app restart: the next requests succeed on new connections.
        after = [(await client.post(f"/pair/after-{n}")).status_code for n in range(4)]
    rows = await rows_by_key(admin_db, table)
    state = await settled_state(admin_db, vendor, db.pool_stats().size)
    print(f"\nkill figures [{vendor}]: statuses={statuses} kills={killed} lag={lag.worst:.3f}s")
    await db.disconnect()
    assert bad == []
    assert killed > 0 and statuses.get(503, 0) > 0, (killed, statuses)
    assert after == [201] * 4
    # Atomicity: every key has both rows or none; every acknowledged key has both.
    assert {k for k, ns in rows.items() if ns != {1, 2}} == set()
    assert acknowledged - set(rows) == set()
    assert state["open_transactions"] == 0 and state["running"] == 0, state


async def test_pool_exhausted_by_slow_queries_answers_503_in_time_and_the_loop_stays_responsive(
    private_server: PrivateServer, pair_table: tuple[Database, str]
) -> None:
    admin_db, table = pair_table
    vendor = private_server.backend
    db = Database(private_server.url, alias=f"app_{secrets.token_hex(4)}", min_size=2,
                  max_size=2, timeout=0.5)  # fmt: skip
    await db.connect()
    app = pair_app(db, table)
    async with client_for(app) as client, measuring_lag() as lag:
        slow = [asyncio.create_task(client.get("/slow", params={"s": 3})) for _ in range(2)]
        await asyncio.sleep(0.3)  # both connections are now busy sleeping on the server
        started = time.perf_counter()
        waiting = await asyncio.gather(*(client.get("/fast") for _ in range(20)))
        waited = time.perf_counter() - started
        pings = []
        for _ in range(10):
            t = time.perf_counter()
            assert (await client.get("/ping")).status_code == 200
            pings.append(time.perf_counter() - t)
        slow_responses = await asyncio.gather(*slow)
    print(
        f"\npool figures [{vendor}]: 20 waiting answered in {waited:.3f}s, "
        f"ping max {max(pings) * 1000:.1f}ms, loop lag max {lag.worst * 1000:.1f}ms"
    )
    assert [r.status_code for r in waiting] == [503] * 20
    assert all(r.headers["retry-after"].isdigit() for r in waiting)
    assert [r.status_code for r in slow_responses] == [200, 200]
    # Bounds far above the measured figures (a shared 2-core machine): what they rule
    # out is a hang (a 503 only after the slow queries end, 3 s) and a blocked loop.
    assert waited < 2.5
    assert lag.worst < 1.0
    state = await settled_state(admin_db, vendor, db.pool_stats().size)
    await db.disconnect()
    assert state["open_transactions"] == 0 and state["running"] == 0, state


async def test_statement_timeout_cancels_on_the_server_and_keeps_the_pool(
    private_server: PrivateServer, pair_table: tuple[Database, str]
) -> None:
    admin_db, table = pair_table
    vendor = private_server.backend
    db = Database(private_server.url, alias=f"app_{secrets.token_hex(4)}", min_size=1,
                  max_size=1, timeout=5, command_timeout=0.5)  # fmt: skip
    await db.connect()
    started = time.perf_counter()
    with pytest.raises(OperationalError, match="timed out"):
        await db.fetch_val(SLEEP_SQL[vendor], {"s": 5})
    took = time.perf_counter() - started
    # Inside a transaction: the timeout rolls the transaction back.
    with pytest.raises(OperationalError, match="timed out"):
        async with transaction(using=db.alias):
            await db.execute(f"INSERT INTO {table} (k, n) VALUES ('t', 1)")  # noqa: S608
            await db.fetch_val(SLEEP_SQL[vendor], {"s": 5})
    assert await db.fetch_val("SELECT 7") == 7  # the pool's one connection still serves
    app_id = await db.fetch_val(SERVER_ID_SQL[vendor])
    state = await settled_state(admin_db, vendor, db.pool_stats().size)
    detail = await open_transactions(admin_db, vendor)
    await db.disconnect()
    assert took < 3, took
    assert await rows_by_key(admin_db, table) == {}
    assert state["open_transactions"] == 0 and state["running"] == 0, (state, app_id, detail)
