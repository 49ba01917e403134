"""Job queue throughput: covet.jobs on each store beside arq (Redis) and procrastinate (PG).

Every system is run the same way, in this process, on uvloop:

- **enqueue**: one coroutine enqueues ``--jobs`` no-op jobs one after the other
  (one round trip each, no batching), timed from the first to the last;
- **process**: then one worker with ``--concurrency`` slots runs them all, in
  burst mode (it stops when the queue is empty), timed from its start to its end.
  Each system deletes a job when it succeeds (arq: ``keep_result=0``;
  procrastinate: ``delete_jobs="successful"``), and every worker polls every 10 ms.

Rounds are interleaved across systems and the median of ``--rounds`` is reported,
with the ratio to covet on the same store. Each run uses a private schema,
database or key prefix, dropped afterwards.

    python -m benchmarks.jobs.run --jobs 5000 --rounds 3

Needs the ``bench`` extra (arq, procrastinate) in an environment of its own:
arq pins ``redis<6``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "COVET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("COVET_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")

SYSTEMS = (
    "covet-sqlite",
    "covet-postgres",
    "covet-mysql",
    "covet-redis",
    "arq-redis",
    "procrastinate-postgres",
)
PEERS = {"arq-redis": "covet-redis", "procrastinate-postgres": "covet-postgres"}


# -- covet ------------------------------------------------------------------------------------


async def _covet_store(kind: str, workdir: Path) -> tuple[Any, Any]:
    """Return (database or None, backend) for a private covet store of ``kind``."""
    from covet.db import Database, create_all
    from covet.jobs.backends.database import DatabaseBackend
    from covet.jobs.backends.redis import RedisBackend
    from covet.jobs.models import JobSchedule, QueuedJob

    if kind == "redis":
        return None, RedisBackend(REDIS_URL, prefix=f"bench{secrets.token_hex(4)}:")
    name = f"covet_bench_{secrets.token_hex(4)}"
    if kind == "sqlite":
        url = f"sqlite:///{workdir / (name + '.sqlite3')}"
    else:
        admin = Database(POSTGRES_URL if kind == "postgres" else MYSQL_URL, alias="bench_admin")
        await admin.connect()
        for sql in admin.backend.creation.create_test_database_sql(name):
            await admin.execute(sql)
        url = admin.backend.creation.test_database_url(str(admin.url), name)
        await admin.disconnect()
    database = Database(url, alias=f"bench_{kind}", max_size=12)
    database.bench_name = name  # type: ignore[attr-defined]
    await database.connect()
    await create_all([QueuedJob, JobSchedule], using=database.alias)
    return database, DatabaseBackend(database)


async def _covet_drop(kind: str, database: Any, backend: Any) -> None:
    from covet.db import Database

    if kind == "redis":
        client = backend.redis.get()
        keys = [key async for key in client.scan_iter(match=f"{backend.prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await backend.aclose()
        return
    await database.disconnect()
    if kind != "sqlite":
        admin = Database(POSTGRES_URL if kind == "postgres" else MYSQL_URL, alias="bench_admin")
        await admin.connect()
        for sql in admin.backend.creation.drop_test_database_sql(database.bench_name):
            await admin.execute(sql)
        await admin.disconnect()


async def run_covet(kind: str, jobs: int, concurrency: int, workdir: Path) -> tuple[float, float]:
    from covet.jobs import Worker, job

    @job(name="bench:noop", retries=0)
    async def noop(i: int) -> None:
        return None

    database, backend = await _covet_store(kind, workdir)
    try:
        call = noop.options(backend=backend)
        started = time.perf_counter()
        for i in range(jobs):
            await call.enqueue(i)
        enqueue = time.perf_counter() - started
        worker = Worker(backend, concurrency=concurrency, poll_interval=0.01, run_schedules=False)
        started = time.perf_counter()
        await worker.run(burst=True)
        process = time.perf_counter() - started
        left = await backend.counts()
        assert worker.processed == jobs and not left, (worker.processed, left)
    finally:
        await _covet_drop(kind, database, backend)
    return jobs / enqueue, jobs / process


# -- arq --------------------------------------------------------------------------------------


async def run_arq(jobs: int, concurrency: int) -> tuple[float, float]:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    async def noop(ctx: dict[str, Any], i: int) -> None:
        return None

    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    queue = f"bench:arq:{secrets.token_hex(4)}"
    try:
        started = time.perf_counter()
        for i in range(jobs):
            await pool.enqueue_job("noop", i, _queue_name=queue)
        enqueue = time.perf_counter() - started
        worker = Worker(
            functions=[func(noop, name="noop")],
            redis_pool=pool,
            queue_name=queue,
            burst=True,
            max_jobs=concurrency,
            keep_result=0,
            poll_delay=0.01,
            handle_signals=False,
            log_results=False,
            max_tries=1,
        )
        started = time.perf_counter()
        await worker.main()
        process = time.perf_counter() - started
        assert worker.jobs_complete == jobs, worker.jobs_complete
        await worker.close()
    finally:
        keys = [key async for key in pool.scan_iter(match=f"{queue}*", count=1000)]
        keys += [key async for key in pool.scan_iter(match="arq:job:*", count=1000)]
        if keys:
            await pool.delete(*keys)
        await pool.aclose()
    return jobs / enqueue, jobs / process


# -- procrastinate ----------------------------------------------------------------------------


async def run_procrastinate(jobs: int, concurrency: int) -> tuple[float, float]:
    import asyncpg
    from procrastinate import App, PsycopgConnector

    name = f"covet_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conninfo = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    app = App(connector=PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop")
    async def noop(i: int) -> None:
        return None

    try:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            started = time.perf_counter()
            for i in range(jobs):
                await noop.defer_async(i=i)
            enqueue = time.perf_counter() - started
            started = time.perf_counter()
            await app.run_worker_async(
                concurrency=concurrency,
                wait=False,
                delete_jobs="successful",
                install_signal_handlers=False,
                fetch_job_polling_interval=0.01,
                listen_notify=False,
            )
            process = time.perf_counter() - started
            async with app.connector.pool.connection() as connection:  # type: ignore[attr-defined]
                cursor = await connection.execute("SELECT count(*) FROM procrastinate_jobs")
                left = (await cursor.fetchone())[0]
            assert left == 0, left
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return jobs / enqueue, jobs / process


# -- the run ----------------------------------------------------------------------------------


async def run_one(system: str, jobs: int, concurrency: int, workdir: Path) -> tuple[float, float]:
    if system == "arq-redis":
        return await run_arq(jobs, concurrency)
    if system == "procrastinate-postgres":
        return await run_procrastinate(jobs, concurrency)
    return await run_covet(system.removeprefix("covet-"), jobs, concurrency, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--only", default=",".join(SYSTEMS), help="Comma-separated systems.")
    args = parser.parse_args()
    systems = [name for name in args.only.split(",") if name]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    logging.basicConfig(level=logging.WARNING)
    # procrastinate warns that its App lives in __main__, which is what a benchmark wants.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    import uvloop

    results: dict[str, list[tuple[float, float]]] = {name: [] for name in systems}
    with (
        tempfile.TemporaryDirectory() as tmp,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        for round_number in range(1, args.rounds + 1):
            for system in systems:
                rates = runner.run(run_one(system, args.jobs, args.concurrency, Path(tmp)))
                results[system].append(rates)
                print(
                    f"round {round_number} {system:24s} enqueue {rates[0]:8.0f}/s  "
                    f"process {rates[1]:8.0f}/s",
                    flush=True,
                )
    print()
    print(f"{args.jobs} no-op jobs, worker concurrency {args.concurrency}, median of {args.rounds}")
    print(f"{'system':24s} {'enqueue/s':>10s} {'process/s':>10s}   vs covet on the same store")
    medians = {
        name: (
            statistics.median(rate[0] for rate in rates),
            statistics.median(rate[1] for rate in rates),
        )
        for name, rates in results.items()
    }
    for name, (enqueue, process) in medians.items():
        peer = PEERS.get(name)
        ratio = ""
        if peer in medians:
            ratio = (
                f"   covet x{medians[peer][0] / enqueue:.2f} enqueue, "
                f"x{medians[peer][1] / process:.2f} process"
            )
        print(f"{name:24s} {enqueue:10.0f} {process:10.0f}{ratio}")


if __name__ == "__main__":
    main()
