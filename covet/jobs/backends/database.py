r"""Jobs in the application's own database: :class:`DatabaseBackend` (the default).

The queue is the ``covet_jobs`` table (:mod:`covet.jobs.models`). Enqueueing is
an ``INSERT`` on the connection of the running ``transaction()``, if any, so a
job exists only if the transaction commits.

A worker claims jobs in a short transaction: ``SELECT ... FOR UPDATE SKIP
LOCKED`` picks due rows no other worker is claiming (PostgreSQL, MySQL 8,
MariaDB 10.6+), and an ``UPDATE`` marks them running under the worker's lease.
On MySQL the claim runs at READ COMMITTED, so it locks only the rows it takes
(no gap locks holding up concurrent inserts). SQLite has no row locks:
its ``BEGIN IMMEDIATE`` serializes claims, which suits the one worker a SQLite
site runs. A database without SKIP LOCKED falls back to ``FOR UPDATE``: still
correct, but workers wait for each other's claims.

Clocks: lease and due times come from the workers' clocks (Unix time), so
hosts sharing a queue should keep time with NTP.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from covet.db import Database, MissingSchemaObjectError, get_database
from covet.jobs.backends.base import JOB_STATUSES, LOST_ERROR, JobBackend
from covet.jobs.core import ClaimedJob, JobInfo, JobsError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from covet.db.backends.base.records import Record
    from covet.jobs.core import NewJob

__all__ = ("DatabaseBackend",)

_JOBS = "covet_jobs"
_SCHEDULES = "covet_job_schedules"
_INSERT_COLUMNS = (
    "id",
    "queue",
    "name",
    "payload",
    "status",
    "run_at",
    "attempts",
    "max_attempts",
    "unique_key",
    "request_id",
    "enqueued_at",
)
_CLAIM_COLUMNS = (
    "id",
    "name",
    "queue",
    "payload",
    "attempts",
    "max_attempts",
    "run_at",
    "enqueued_at",
    "request_id",
)
_INFO_COLUMNS = (
    "id",
    "name",
    "queue",
    "status",
    "attempts",
    "max_attempts",
    "run_at",
    "enqueued_at",
    "finished_at",
    "error",
    "worker",
    "payload",
)


@contextlib.contextmanager
def _table_hint() -> Iterator[None]:
    """Turn "no such table" into the steps that create it."""
    try:
        yield
    except MissingSchemaObjectError as exc:
        raise JobsError(
            f'The job tables are missing ({exc}). Add "covet.jobs.models" to models in '
            "[tool.covet], then run `covet makemigrations -m jobs` and `covet migrate`."
        ) from exc


def _names(prefix: str, values: Sequence[Any], params: dict[str, Any]) -> str:
    """Bind ``values`` as ``:prefix0, :prefix1, ...`` and return that list for ``IN (...)``."""
    for index, value in enumerate(values):
        params[f"{prefix}{index}"] = value
    return ", ".join(f":{prefix}{index}" for index in range(len(values)))


class DatabaseBackend(JobBackend):
    """Keep jobs in the ``covet_jobs`` table of a database covet is connected to.

    Args:
        using: The database (an alias, or a :class:`~covet.db.Database`); the
            default database by default.
    """

    kind = "database"

    def __init__(self, using: str | Database | None = None) -> None:
        self.using = using
        self._idle = True

    def __repr__(self) -> str:
        return f"DatabaseBackend(using={self.using!r})"

    def database(self) -> Database:
        """Return the database the jobs live in (it must be connected)."""
        if isinstance(self.using, Database):
            return self.using
        return get_database(self.using)

    def _claim_transaction(self, db: Database) -> Any:
        # READ COMMITTED where there is a choice: InnoDB then locks only the rows the claim
        # takes, with no gap locks that would stall concurrent enqueues.
        isolation = "read committed" if db.features.supports_isolation_levels else None
        return db.transaction(isolation=isolation)

    async def check(self) -> None:
        """Raise :class:`JobsError` when the job tables are missing (with the fix)."""
        db = self.database()
        q = db.ops.quote_name
        with _table_hint():
            await db.fetch_val(
                f"SELECT {q('id')} FROM {q(_JOBS)} WHERE {q('id')} = :id", {"id": ""}
            )
            await db.fetch_val(
                f"SELECT {q('name')} FROM {q(_SCHEDULES)} WHERE {q('name')} = :name", {"name": ""}
            )

    # -- enqueueing ---------------------------------------------------------------------------

    async def enqueue(self, job: NewJob) -> str:
        """Insert ``job``; with a unique key already waiting or running, return that job's id."""
        db = self.database()
        run_at = job.run_at if job.run_at is not None else time.time() + job.delay
        with _table_hint():
            return await self._insert(db, job, run_at)

    async def _insert(self, db: Database, job: NewJob, run_at: float) -> str:
        q = db.ops.quote_name
        columns = ", ".join(q(name) for name in _INSERT_COLUMNS)
        values = ", ".join(f":{name}" for name in _INSERT_COLUMNS)
        params = {
            "id": job.id,
            "queue": job.queue,
            "name": job.name,
            "payload": job.payload,
            "status": "queued",
            "run_at": run_at,
            "attempts": 0,
            "max_attempts": job.max_attempts,
            "unique_key": job.unique_key,
            "request_id": job.request_id,
            "enqueued_at": job.enqueued_at or time.time(),
        }
        sql = f"INSERT INTO {q(_JOBS)} ({columns}) VALUES ({values})"
        if job.unique_key is None:
            await db.execute(sql, params)
            return job.id
        # Insert-or-ignore on the key, then read whose job holds it: a row count cannot
        # tell (MySQL's FOUND_ROWS counts a kept duplicate as one row too).
        sql += " " + db.ops.upsert(["unique_key"], [])
        lookup = f"SELECT {q('id')} FROM {q(_JOBS)} WHERE {q('unique_key')} = :key"
        for _ in range(5):
            await db.execute(sql, params)
            holder = await db.fetch_val(lookup, {"key": job.unique_key})
            if holder is not None:
                return str(holder)
            # The holder finished between the two statements: the key is free again.
        return job.id

    # -- claiming and finishing ---------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], limit: int, worker: str, lease: float
    ) -> list[ClaimedJob]:
        """Take up to ``limit`` due jobs of ``queues`` under ``worker``'s lease."""
        if limit <= 0 or not queues:
            return []
        db = self.database()
        q = db.ops.quote_name
        now = time.time()
        params: dict[str, Any] = {"queued": "queued", "now": now}
        where = (
            f"{q('status')} = :queued AND {q('queue')} IN ({_names('q', queues, params)}) "
            f"AND {q('run_at')} <= :now"
        )
        with _table_hint():
            if self._idle:
                # Nothing was due last time: look without a transaction (and without
                # SQLite's write lock) before claiming.
                probe = f"SELECT {q('id')} FROM {q(_JOBS)} WHERE {where} LIMIT 1"
                if await db.fetch_val(probe, params) is None:
                    return []
            lock = ""
            if db.features.supports_select_for_update:
                skip = db.features.has_select_for_update_skip_locked
                lock = " " + db.ops.for_update_sql(skip_locked=skip)
            columns = ", ".join(q(name) for name in _CLAIM_COLUMNS)
            select = (
                f"SELECT {columns} FROM {q(_JOBS)} WHERE {where} "
                f"ORDER BY {q('run_at')}, {q('id')} LIMIT {int(limit)}{lock}"
            )
            async with self._claim_transaction(db):
                rows = await db.fetch_all(select, params)
                if rows:
                    update: dict[str, Any] = {
                        "running": "running",
                        "worker": worker,
                        "lease": now + lease,
                    }
                    ids = _names("i", [row[0] for row in rows], update)
                    await db.execute(
                        f"UPDATE {q(_JOBS)} SET {q('status')} = :running, "
                        f"{q('worker')} = :worker, {q('lease_until')} = :lease, "
                        f"{q('attempts')} = {q('attempts')} + 1 WHERE {q('id')} IN ({ids})",
                        update,
                    )
        self._idle = not rows
        return [
            ClaimedJob(
                id=row[0],
                name=row[1],
                queue=row[2],
                payload=row[3],
                attempt=int(row[4]) + 1,
                max_attempts=int(row[5]),
                run_at=float(row[6]),
                enqueued_at=float(row[7]),
                request_id=row[8],
            )
            for row in rows
        ]

    def _owned(self, db: Database, params: dict[str, Any], job: ClaimedJob, worker: str) -> str:
        q = db.ops.quote_name
        params.update(id=job.id, worker=worker, attempt=job.attempt, running="running")
        return (
            f"{q('id')} = :id AND {q('worker')} = :worker AND {q('attempts')} = :attempt "
            f"AND {q('status')} = :running"
        )

    async def heartbeat(self, worker: str, jobs: Sequence[ClaimedJob], lease: float) -> None:
        """Extend ``worker``'s leases on ``jobs``."""
        if not jobs:
            return
        db = self.database()
        q = db.ops.quote_name
        params: dict[str, Any] = {
            "lease": time.time() + lease,
            "worker": worker,
            "running": "running",
        }
        ids = _names("i", [job.id for job in jobs], params)
        await db.execute(
            f"UPDATE {q(_JOBS)} SET {q('lease_until')} = :lease WHERE {q('worker')} = :worker "
            f"AND {q('status')} = :running AND {q('id')} IN ({ids})",
            params,
        )

    async def recover(self) -> int:
        """Requeue jobs whose lease ran out; fail those that used their last attempt."""
        db = self.database()
        q = db.ops.quote_name
        now = time.time()
        expired = f"{q('status')} = :running AND {q('lease_until')} < :now"
        params = {"running": "running", "now": now}
        failed = await db.execute(
            f"UPDATE {q(_JOBS)} SET {q('status')} = :failed, {q('error')} = :error, "
            f"{q('finished_at')} = :now, {q('worker')} = NULL, {q('lease_until')} = NULL, "
            f"{q('unique_key')} = NULL "
            f"WHERE {expired} AND {q('attempts')} >= {q('max_attempts')}",
            {**params, "failed": "failed", "error": LOST_ERROR},
        )
        requeued = await db.execute(
            f"UPDATE {q(_JOBS)} SET {q('status')} = :queued, {q('worker')} = NULL, "
            f"{q('lease_until')} = NULL, {q('run_at')} = :now WHERE {expired}",
            {**params, "queued": "queued"},
        )
        return failed + requeued

    async def complete(self, job: ClaimedJob, worker: str) -> bool:
        """Delete ``job``, which succeeded, if ``worker`` still holds its lease."""
        db = self.database()
        params: dict[str, Any] = {}
        owned = self._owned(db, params, job, worker)
        sql = f"DELETE FROM {db.ops.quote_name(_JOBS)} WHERE {owned}"
        return await db.execute(sql, params) == 1

    async def complete_many(self, jobs: Sequence[ClaimedJob], worker: str) -> set[str]:
        """Delete the succeeded ``jobs`` still leased by ``worker`` in one statement."""
        if len(jobs) == 1:
            return {jobs[0].id} if await self.complete(jobs[0], worker) else set()
        db = self.database()
        q = db.ops.quote_name
        params: dict[str, Any] = {"worker": worker, "running": "running"}
        matches = []
        for index, job in enumerate(jobs):
            params[f"i{index}"], params[f"a{index}"] = job.id, job.attempt
            matches.append(f"({q('id')} = :i{index} AND {q('attempts')} = :a{index})")
        deleted = await db.execute(
            f"DELETE FROM {q(_JOBS)} WHERE {q('worker')} = :worker AND {q('status')} = :running "
            f"AND ({' OR '.join(matches)})",
            params,
        )
        ids = {job.id for job in jobs}
        if deleted == len(jobs):
            return ids
        # Some lease was lost: the jobs still there belong to another run now.
        lookup: dict[str, Any] = {}
        names = _names("i", sorted(ids), lookup)
        rows = await db.fetch_all(
            f"SELECT {q('id')} FROM {q(_JOBS)} WHERE {q('id')} IN ({names})", lookup
        )
        return ids - {str(row[0]) for row in rows}

    async def retry(self, job: ClaimedJob, worker: str, delay: float, error: str) -> bool:
        """Requeue ``job`` due in ``delay`` seconds, keeping ``error``."""
        db = self.database()
        q = db.ops.quote_name
        params: dict[str, Any] = {"queued": "queued", "at": time.time() + delay, "error": error}
        owned = self._owned(db, params, job, worker)
        sql = (
            f"UPDATE {q(_JOBS)} SET {q('status')} = :queued, {q('run_at')} = :at, "
            f"{q('error')} = :error, {q('worker')} = NULL, {q('lease_until')} = NULL "
            f"WHERE {owned}"
        )
        return await db.execute(sql, params) == 1

    async def fail(self, job: ClaimedJob, worker: str, error: str) -> bool:
        """Keep ``job`` as failed, with ``error``; its unique key is freed."""
        db = self.database()
        q = db.ops.quote_name
        params: dict[str, Any] = {"failed": "failed", "now": time.time(), "error": error}
        owned = self._owned(db, params, job, worker)
        sql = (
            f"UPDATE {q(_JOBS)} SET {q('status')} = :failed, {q('error')} = :error, "
            f"{q('finished_at')} = :now, {q('worker')} = NULL, {q('lease_until')} = NULL, "
            f"{q('unique_key')} = NULL WHERE {owned}"
        )
        return await db.execute(sql, params) == 1

    async def release(self, job: ClaimedJob, worker: str) -> bool:
        """Requeue ``job`` now, giving its attempt back."""
        db = self.database()
        q = db.ops.quote_name
        params: dict[str, Any] = {"queued": "queued"}
        owned = self._owned(db, params, job, worker)
        sql = (
            f"UPDATE {q(_JOBS)} SET {q('status')} = :queued, {q('worker')} = NULL, "
            f"{q('lease_until')} = NULL, {q('attempts')} = {q('attempts')} - 1 WHERE {owned}"
        )
        return await db.execute(sql, params) == 1

    # -- schedules ----------------------------------------------------------------------------

    async def fire_schedule(self, name: str, tick: float, job: NewJob) -> bool:
        """Move schedule ``name`` to ``tick`` and enqueue ``job``, in one transaction."""
        db = self.database()
        q = db.ops.quote_name
        table, name_col, tick_col = q(_SCHEDULES), q("name"), q("last_tick")
        params = {"name": name, "tick": tick}
        with _table_hint():
            last = await db.fetch_val(
                f"SELECT {tick_col} FROM {table} WHERE {name_col} = :name", {"name": name}
            )
            if last is None:
                # A new schedule starts at its next tick; of several workers meeting it at
                # once, one row wins and the others' inserts are ignored.
                await db.execute(
                    f"INSERT INTO {table} ({name_col}, {tick_col}) VALUES (:name, :tick) "
                    + db.ops.upsert(["name"], []),
                    params,
                )
                return False
            if float(last) >= tick:
                return False
            async with db.transaction():
                # Only one worker can move the tick forward (the others match no row), and
                # the job is inserted in the same transaction: a crash loses neither.
                moved = await db.execute(
                    f"UPDATE {table} SET {tick_col} = :tick "
                    f"WHERE {name_col} = :name AND {tick_col} < :tick",
                    params,
                )
                if moved != 1:
                    return False
                await self._insert(db, job, tick)
        return True

    # -- inspection and maintenance -----------------------------------------------------------

    def _info(self, row: Record) -> JobInfo:
        return JobInfo(
            id=row[0],
            name=row[1],
            queue=row[2],
            status=row[3],
            attempts=int(row[4]),
            max_attempts=int(row[5]),
            run_at=float(row[6]),
            enqueued_at=float(row[7]),
            finished_at=None if row[8] is None else float(row[8]),
            error=row[9],
            worker=row[10],
            payload=row[11],
        )

    async def list_jobs(
        self, *, status: str | None = None, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        """Return up to ``limit`` jobs, oldest first."""
        db = self.database()
        q = db.ops.quote_name
        conditions, params = self._filters(db, status=status, queue=queue)
        columns = ", ".join(q(name) for name in _INFO_COLUMNS)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with _table_hint():
            rows = await db.fetch_all(
                f"SELECT {columns} FROM {q(_JOBS)}{where} "
                f"ORDER BY {q('enqueued_at')}, {q('id')} LIMIT {max(0, int(limit))}",
                params,
            )
        return [self._info(row) for row in rows]

    def _filters(
        self,
        db: Database,
        *,
        status: str | None = None,
        queue: str | None = None,
        older_than: float | None = None,
    ) -> tuple[list[str], dict[str, Any]]:
        q = db.ops.quote_name
        conditions: list[str] = []
        params: dict[str, Any] = {}
        if status is not None:
            if status not in JOB_STATUSES:
                raise JobsError(
                    f"Unknown job status {status!r}. Use one of: {', '.join(JOB_STATUSES)}."
                )
            conditions.append(f"{q('status')} = :status")
            params["status"] = status
        if queue is not None:
            conditions.append(f"{q('queue')} = :queue")
            params["queue"] = queue
        if older_than is not None:
            conditions.append(f"{q('enqueued_at')} < :cutoff")
            params["cutoff"] = time.time() - older_than
        return conditions, params

    async def get_job(self, job_id: str) -> JobInfo | None:
        """Return job ``job_id``, or None."""
        db = self.database()
        q = db.ops.quote_name
        columns = ", ".join(q(name) for name in _INFO_COLUMNS)
        with _table_hint():
            row = await db.fetch_one(
                f"SELECT {columns} FROM {q(_JOBS)} WHERE {q('id')} = :id", {"id": job_id}
            )
        return None if row is None else self._info(row)

    async def retry_failed(self, ids: Sequence[str] | None = None) -> int:
        """Requeue failed jobs (``ids``, or all of them) with fresh attempts."""
        db = self.database()
        q = db.ops.quote_name
        params: dict[str, Any] = {"failed": "failed", "queued": "queued", "now": time.time()}
        where = f"{q('status')} = :failed"
        if ids is not None:
            if not ids:
                return 0
            where += f" AND {q('id')} IN ({_names('i', list(ids), params)})"
        with _table_hint():
            return await db.execute(
                f"UPDATE {q(_JOBS)} SET {q('status')} = :queued, {q('attempts')} = 0, "
                f"{q('run_at')} = :now, {q('finished_at')} = NULL WHERE {where}",
                params,
            )

    async def purge(
        self,
        *,
        status: str = "failed",
        queue: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete the jobs matching the filters; return how many."""
        db = self.database()
        conditions, params = self._filters(db, status=status, queue=queue, older_than=older_than)
        with _table_hint():
            return await db.execute(
                f"DELETE FROM {db.ops.quote_name(_JOBS)} WHERE {' AND '.join(conditions)}",
                params,
            )

    async def counts(self) -> Mapping[tuple[str, str], int]:
        """Return the number of jobs per (queue, status)."""
        db = self.database()
        q = db.ops.quote_name
        with _table_hint():
            rows = await db.fetch_all(
                f"SELECT {q('queue')}, {q('status')}, COUNT(*) FROM {q(_JOBS)} "
                f"GROUP BY {q('queue')}, {q('status')}"
            )
        return {(str(row[0]), str(row[1])): int(row[2]) for row in rows}
