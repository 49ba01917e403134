"""Shared pieces of the fault tests: the app under test, an event-loop lag probe, server SQL."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from covet import Covet, JSONResponse, Request
from covet.db import Database, transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.reliability.servers import PrivateServer

SLEEP_SQL = {"postgres": "SELECT pg_sleep(:s)", "mysql": "SELECT SLEEP(:s)"}
SERVER_ID_SQL = {"postgres": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
KILL_SQL = {"postgres": "SELECT pg_terminate_backend(:id)", "mysql": "KILL :id"}
#: The app's connections: on a private server, every session but the asking one's.
SESSIONS_SQL = {
    "postgres": (
        "SELECT pid FROM pg_stat_activity WHERE datname = 'test' AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    ),
    "mysql": (
        "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND USER = 'root' AND COMMAND <> 'Daemon'"
    ),
}
#: Sessions inside a transaction (open, or idle in one).
OPEN_TRANSACTIONS_SQL = {
    "postgres": (
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = 'test' "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    ),
    # Client sessions' only: thread 0 is InnoDB's own (persistent statistics updates,
    # seen COMMITTING for seconds on a loaded machine).
    "mysql": (
        "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> 0 "
        "AND trx_mysql_thread_id <> CONNECTION_ID()"
    ),
}
#: Statements running (not idle) in other sessions.
RUNNING_SQL = {
    "postgres": (
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = 'test' "
        "AND pid <> pg_backend_pid() AND state <> 'idle'"
    ),
    "mysql": (
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND USER = 'root' AND COMMAND NOT IN ('Sleep', 'Daemon')"
    ),
}


@dataclass
class LoopLag:
    """How late a 5 ms sleep on the event loop wakes up: the loop's responsiveness."""

    interval: float = 0.005
    samples: list[float] = field(default_factory=list)

    @property
    def worst(self) -> float:
        """The largest lag seen, in seconds."""
        return max(self.samples, default=0.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set."""
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(time.perf_counter() - before - self.interval)


@contextlib.asynccontextmanager
async def measuring_lag() -> AsyncIterator[LoopLag]:
    """Measure the event loop's lag while the block runs."""
    lag = LoopLag()
    stop = asyncio.Event()
    task = asyncio.create_task(lag.run(stop))
    try:
        yield lag
    finally:
        stop.set()
        await task


async def admin(server: PrivateServer) -> Database:
    """Open a one-connection pool on ``server`` for inspecting and killing sessions."""
    db = Database(server.url, alias=f"admin_{secrets.token_hex(4)}", min_size=1, max_size=1)
    await db.connect()
    return db


async def server_state(admin_db: Database, vendor: str) -> dict[str, int]:
    """Return the server's count of the app's sessions, open transactions and running statements."""
    return {
        "sessions": len(await admin_db.fetch_all(SESSIONS_SQL[vendor])),
        "open_transactions": int(await admin_db.fetch_val(OPEN_TRANSACTIONS_SQL[vendor])),
        "running": int(await admin_db.fetch_val(RUNNING_SQL[vendor])),
    }


#: What the open transactions are, for an assertion message.
OPEN_TRANSACTIONS_DETAIL_SQL = {
    "postgres": (
        "SELECT pid, state, xact_start, query FROM pg_stat_activity WHERE datname = 'test' "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    ),
    "mysql": (
        "SELECT trx_mysql_thread_id, trx_state, trx_started, trx_query, trx_rows_modified, "
        "p.COMMAND, p.TIME, p.STATE, p.INFO "
        "FROM information_schema.INNODB_TRX "
        "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = trx_mysql_thread_id "
        "WHERE trx_mysql_thread_id <> 0 AND trx_mysql_thread_id <> CONNECTION_ID()"
    ),
}


async def open_transactions(admin_db: Database, vendor: str) -> list[tuple[object, ...]]:
    """Return the server's open transactions (for an assertion message)."""
    return [tuple(row) for row in await admin_db.fetch_all(OPEN_TRANSACTIONS_DETAIL_SQL[vendor])]


async def settled_state(
    admin_db: Database, vendor: str, sessions: int, timeout: float = 10
) -> dict[str, int]:
    """Wait until the server shows ``sessions`` idle sessions and nothing open; return the state."""
    deadline = time.monotonic() + timeout
    # InnoDB answers INNODB_TRX from a snapshot it refreshes only when the table has not
    # been read for 0.1 s: polled faster, a transaction committed after the first read
    # stays listed for good (seen: a committed row visible, its transaction still "open").
    interval = 0.15 if vendor == "mysql" else 0.05
    state = await server_state(admin_db, vendor)
    while time.monotonic() < deadline:
        if state == {"sessions": sessions, "open_transactions": 0, "running": 0}:
            break
        await asyncio.sleep(interval)
        state = await server_state(admin_db, vendor)
    return state


def pair_app(db: Database, table: str, *, pause: float = 0.02) -> Covet:
    """An app whose ``POST /pair/{key}`` writes two rows in one transaction, ``pause`` apart.

    Also ``GET /slow?s=N`` (a server-side sleep), ``GET /fast`` (one quick
    query), ``GET /ping`` (no database) and ``GET /tx-slow?s=N`` (a sleep
    inside a transaction that wrote a row).
    """
    app = Covet()
    q = db.ops.quote_name(table)
    insert = f"INSERT INTO {q} (k, n) VALUES (:k, :n)"  # noqa: S608 - the test's own table
    sleep_sql = SLEEP_SQL[db.vendor]

    @app.post("/pair/{key}")
    async def pair(request: Request, key: str) -> JSONResponse:
        async with transaction(using=db.alias):
            await db.execute(insert, {"k": key, "n": 1})
            await asyncio.sleep(pause)
            await db.execute(insert, {"k": key, "n": 2})
        return JSONResponse({"key": key}, status_code=201)

    @app.get("/slow")
    async def slow(request: Request) -> dict[str, Any]:
        return {"slept": await db.fetch_val(sleep_sql, {"s": float(request.query_params["s"])})}

    @app.get("/tx-slow/{key}")
    async def tx_slow(request: Request, key: str) -> dict[str, Any]:
        async with transaction(using=db.alias):
            await db.execute(insert, {"k": key, "n": 1})
            await db.fetch_val(sleep_sql, {"s": float(request.query_params["s"])})
        return {"key": key}

    @app.get("/fast")
    async def fast(request: Request) -> dict[str, Any]:
        return {"one": await db.fetch_val("SELECT 1")}

    @app.get("/ping")
    async def ping(request: Request) -> str:
        return "pong"

    return app


def client_for(app: Covet) -> httpx.AsyncClient:
    """An in-process HTTP client for ``app`` (same event loop, so its lag is measurable)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    )


async def rows_by_key(db: Database, table: str) -> dict[str, set[int]]:
    """Return ``{key: {n, ...}}`` for every row of the pair table."""
    q = db.ops.quote_name(table)
    found: dict[str, set[int]] = {}
    for k, n in await db.fetch_all(f"SELECT k, n FROM {q}"):  # noqa: S608 - the test's table
        found.setdefault(str(k), set()).add(int(n))
    return found
