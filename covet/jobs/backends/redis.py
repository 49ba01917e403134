"""Jobs in Redis: :class:`RedisBackend`, a reliable queue with leases.

Every change of a job's state is one Lua script, so it is atomic, and every
time the scripts compare comes from the Redis server's clock (``TIME``):
workers on hosts whose clocks disagree still agree on leases.

Keys, under the prefix (``covet:jobs:`` by default):

- ``job:<id>``: a hash with the job's fields (name, queue, payload, status,
  attempts, worker, error...);
- ``queue:<name>``: a sorted set of the queue's waiting job ids, scored by the
  time they are due (delayed jobs and retries wait here too);
- ``leases``: a sorted set of running job ids, scored by when their lease ends.
  A claim moves ids from a queue to it; a heartbeat pushes the score forward;
  recovery moves ids whose lease ended back to their queue;
- ``failed``: a sorted set of failed job ids, scored by when they failed;
- ``unique:<key>``: the id of the waiting or running job holding an
  idempotency key;
- ``ticks``: a hash of each schedule's last fired tick;
- ``wake:<queue>``: a short list an enqueue pushes to, which idle workers
  block on (``BLPOP``), so a new job starts without waiting for a poll;
- ``queues``: the set of queue names seen.

Inside ``transaction()`` on a connected database, a job is sent when the
transaction commits (``transaction.on_commit``) and never after a rollback.
The scripts name keys they compute, so this backend needs a single Redis
server (or a primary), not Redis Cluster.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from covet.jobs.backends.base import JOB_STATUSES, LOST_ERROR, JobBackend
from covet.jobs.core import ClaimedJob, JobInfo, JobsError
from covet.redis import RedisConnection

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from redis.asyncio import Redis

    from covet.jobs.core import NewJob

__all__ = ("RedisBackend",)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# The Lua function shared by enqueueing and schedules: store the job, unless its unique key
# is held by a job that still exists.
_ENQUEUE_FUNCTION = """
local function enqueue(p, now, id, queue, name, payload, max_attempts, run_at, unique,
                       request_id, enqueued_at)
  if unique ~= '' then
    local holder = redis.call('GET', p .. 'unique:' .. unique)
    if holder and redis.call('EXISTS', p .. 'job:' .. holder) == 1 then
      return holder
    end
    redis.call('SET', p .. 'unique:' .. unique, id)
  end
  redis.call('HSET', p .. 'job:' .. id, 'id', id, 'queue', queue, 'name', name,
    'payload', payload, 'status', 'queued', 'attempts', 0, 'max_attempts', max_attempts,
    'run_at', string.format('%.6f', run_at), 'unique_key', unique, 'request_id', request_id,
    'enqueued_at', enqueued_at)
  redis.call('ZADD', p .. 'queue:' .. queue, run_at, id)
  redis.call('SADD', p .. 'queues', queue)
  if run_at <= now then
    redis.call('LPUSH', p .. 'wake:' .. queue, 1)
    redis.call('LTRIM', p .. 'wake:' .. queue, 0, 63)
  end
  return id
end
"""

# ARGV: prefix, id, queue, name, payload, max_attempts, run_at ('' = now), delay, unique,
# request_id, enqueued_at
_ENQUEUE_LUA = (
    _NOW
    + _ENQUEUE_FUNCTION
    + """
local run_at = now + tonumber(ARGV[8])
if ARGV[7] ~= '' then run_at = tonumber(ARGV[7]) end
local enqueued_at = ARGV[11]
if enqueued_at == '' then enqueued_at = string.format('%.6f', now) end
return enqueue(ARGV[1], now, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], run_at, ARGV[9],
  ARGV[10], enqueued_at)
"""
)

# ARGV: prefix, worker, lease seconds, limit, queue...
_CLAIM_LUA = (
    _NOW
    + """
local p, worker, lease, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 5, #ARGV do
  if #out >= limit then break end
  local qkey = p .. 'queue:' .. ARGV[i]
  local ids = redis.call('ZRANGEBYSCORE', qkey, '-inf', now, 'LIMIT', 0, limit - #out)
  for _, id in ipairs(ids) do
    redis.call('ZREM', qkey, id)
    local key = p .. 'job:' .. id
    if redis.call('EXISTS', key) == 1 then
      local attempts = redis.call('HINCRBY', key, 'attempts', 1)
      local until_ = string.format('%.6f', now + lease)
      redis.call('HSET', key, 'status', 'running', 'worker', worker, 'lease_until', until_)
      redis.call('ZADD', p .. 'leases', now + lease, id)
      local f = redis.call('HMGET', key, 'name', 'queue', 'payload', 'max_attempts', 'run_at',
        'enqueued_at', 'request_id')
      out[#out + 1] = {id, f[1], f[2], f[3], attempts, f[4], f[5], f[6], f[7]}
    end
  end
end
return out
"""
)

# ARGV: prefix, worker, lease seconds, id...
_HEARTBEAT_LUA = (
    _NOW
    + """
local p, worker, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV do
  local key = p .. 'job:' .. ARGV[i]
  if redis.call('HGET', key, 'worker') == worker then
    redis.call('ZADD', p .. 'leases', 'XX', now + lease, ARGV[i])
    redis.call('HSET', key, 'lease_until', string.format('%.6f', now + lease))
  end
end
return 1
"""
)

_FREE_UNIQUE = """
local function free_unique(p, key, id)
  local unique = redis.call('HGET', key, 'unique_key')
  if unique and unique ~= '' then
    if redis.call('GET', p .. 'unique:' .. unique) == id then
      redis.call('DEL', p .. 'unique:' .. unique)
    end
    redis.call('HSET', key, 'unique_key', '')
  end
end
"""

# ARGV: prefix, lost error
_RECOVER_LUA = (
    _NOW
    + _FREE_UNIQUE
    + """
local p = ARGV[1]
local expired = redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', p .. 'leases', id)
  local key = p .. 'job:' .. id
  if redis.call('EXISTS', key) == 1 then
    local f = redis.call('HMGET', key, 'attempts', 'max_attempts', 'queue')
    if tonumber(f[1]) >= tonumber(f[2]) then
      redis.call('HSET', key, 'status', 'failed', 'error', ARGV[2], 'worker', '',
        'lease_until', '', 'finished_at', string.format('%.6f', now))
      redis.call('ZADD', p .. 'failed', now, id)
      free_unique(p, key, id)
    else
      redis.call('HSET', key, 'status', 'queued', 'worker', '', 'lease_until', '',
        'run_at', string.format('%.6f', now))
      redis.call('ZADD', p .. 'queue:' .. f[3], now, id)
    end
  end
end
return #expired
"""
)

# ARGV: prefix, id, worker, attempt, action (complete/retry/fail/release), delay, error
_FINISH_LUA = (
    _NOW
    + _FREE_UNIQUE
    + """
local p, id, worker, attempt, action = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local key = p .. 'job:' .. id
local f = redis.call('HMGET', key, 'worker', 'attempts', 'status', 'queue')
if f[1] ~= worker or tonumber(f[2]) ~= attempt or f[3] ~= 'running' then
  return 0
end
redis.call('ZREM', p .. 'leases', id)
if action == 'complete' then
  free_unique(p, key, id)
  redis.call('DEL', key)
elseif action == 'retry' then
  local at = now + tonumber(ARGV[6])
  redis.call('HSET', key, 'status', 'queued', 'worker', '', 'lease_until', '',
    'error', ARGV[7], 'run_at', string.format('%.6f', at))
  redis.call('ZADD', p .. 'queue:' .. f[4], at, id)
elseif action == 'fail' then
  redis.call('HSET', key, 'status', 'failed', 'worker', '', 'lease_until', '',
    'error', ARGV[7], 'finished_at', string.format('%.6f', now))
  redis.call('ZADD', p .. 'failed', now, id)
  free_unique(p, key, id)
else
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HSET', key, 'status', 'queued', 'worker', '', 'lease_until', '')
  redis.call('ZADD', p .. 'queue:' .. f[4], now, id)
  redis.call('LPUSH', p .. 'wake:' .. f[4], 1)
  redis.call('LTRIM', p .. 'wake:' .. f[4], 0, 63)
end
return 1
"""
)

# ARGV: prefix, schedule name, tick, then the enqueue arguments (id ... enqueued_at)
_FIRE_LUA = (
    _NOW
    + _ENQUEUE_FUNCTION
    + """
local p, name, tick = ARGV[1], ARGV[2], tonumber(ARGV[3])
local last = redis.call('HGET', p .. 'ticks', name)
if last and tonumber(last) >= tick then return 0 end
redis.call('HSET', p .. 'ticks', name, ARGV[3])
-- A new schedule starts at its next tick.
if not last then return 0 end
enqueue(p, now, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], tick, ARGV[9], ARGV[10], ARGV[11])
return 1
"""
)

# ARGV: prefix, id...  Requeue failed jobs with fresh attempts.
_RETRY_FAILED_LUA = (
    _NOW
    + """
local p = ARGV[1]
local count = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local key = p .. 'job:' .. id
  local f = redis.call('HMGET', key, 'status', 'queue')
  redis.call('ZREM', p .. 'failed', id)
  if f[1] == 'failed' then
    redis.call('HSET', key, 'status', 'queued', 'attempts', 0, 'finished_at', '',
      'run_at', string.format('%.6f', now))
    redis.call('ZADD', p .. 'queue:' .. f[2], now, id)
    count = count + 1
  end
end
return count
"""
)

# ARGV: prefix, status, id...  Delete jobs still in that status.
_PURGE_LUA = (
    _FREE_UNIQUE
    + """
local p, status = ARGV[1], ARGV[2]
local count = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = p .. 'job:' .. id
  local f = redis.call('HMGET', key, 'status', 'queue')
  if f[1] == status then
    free_unique(p, key, id)
    redis.call('DEL', key)
    redis.call('ZREM', p .. 'queue:' .. f[2], id)
    redis.call('ZREM', p .. 'leases', id)
    redis.call('ZREM', p .. 'failed', id)
    count = count + 1
  elseif not f[1] then
    redis.call('ZREM', p .. 'failed', id)
    redis.call('ZREM', p .. 'leases', id)
  end
end
return count
"""
)

_FIELDS = (
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


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _optional(value: Any) -> str | None:
    if value is None:
        return None
    text = _text(value)
    return text or None


def _float(value: Any, default: float = 0.0) -> float:
    text = _optional(value)
    return default if text is None else float(text)


class RedisBackend(JobBackend):
    """Keep jobs in Redis.

    Args:
        url: A Redis URL, e.g. ``"redis://127.0.0.1:6379/0"``.
        client: An existing ``redis.asyncio.Redis`` client instead of ``url``.
        prefix: Prepended to every key, so several apps can share a server.
        using: The database whose ``transaction()`` delays sends to its commit
            (the default database by default).

    Raises:
        MissingDependencyError: When the ``redis`` package is not installed.
    """

    kind = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        prefix: str = "covet:jobs:",
        using: str | None = None,
    ) -> None:
        self.redis = RedisConnection(url, client, owner="RedisBackend")
        self.prefix = prefix
        self.using = using
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RedisBackend({self.redis.url!r}, prefix={self.prefix!r})"

    async def _run(self, source: str, args: Sequence[Any]) -> Any:
        client = self.redis.get()
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return await script(keys=[], args=[self.prefix, *args], client=client)

    async def check(self) -> None:
        """Raise when the Redis server does not answer."""
        await self.redis.get().ping()

    async def aclose(self) -> None:
        """Close this event loop's Redis client."""
        await self.redis.aclose()

    # -- enqueueing ---------------------------------------------------------------------------

    def _enqueue_args(self, job: NewJob) -> list[Any]:
        return [
            job.id,
            job.queue,
            job.name,
            job.payload,
            job.max_attempts,
            "" if job.run_at is None else repr(job.run_at),
            repr(job.delay),
            job.unique_key or "",
            job.request_id or "",
            repr(job.enqueued_at) if job.enqueued_at else "",
        ]

    async def enqueue(self, job: NewJob) -> str:
        """Send ``job`` now, or when the running ``transaction()`` commits."""
        from covet.db import TransactionManagementError
        from covet.db.database import connected_databases
        from covet.db.transactions import on_commit

        if connected_databases():
            try:
                on_commit(lambda: self._send(job), self.using)
            except TransactionManagementError:
                pass  # no transaction: send now
            else:
                return job.id
        return await self._send(job)

    async def _send(self, job: NewJob) -> str:
        return _text(await self._run(_ENQUEUE_LUA, self._enqueue_args(job)))

    # -- claiming and finishing ---------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], limit: int, worker: str, lease: float
    ) -> list[ClaimedJob]:
        """Take up to ``limit`` due jobs of ``queues`` under ``worker``'s lease."""
        if limit <= 0 or not queues:
            return []
        rows = await self._run(_CLAIM_LUA, [worker, lease, limit, *queues])
        return [
            ClaimedJob(
                id=_text(row[0]),
                name=_text(row[1]),
                queue=_text(row[2]),
                payload=_text(row[3]),
                attempt=int(row[4]),
                max_attempts=int(_text(row[5])),
                run_at=_float(row[6]),
                enqueued_at=_float(row[7]),
                request_id=_optional(row[8]),
            )
            for row in rows
        ]

    async def heartbeat(self, worker: str, jobs: Sequence[ClaimedJob], lease: float) -> None:
        """Extend ``worker``'s leases on ``jobs``."""
        if jobs:
            await self._run(_HEARTBEAT_LUA, [worker, lease, *(job.id for job in jobs)])

    async def recover(self) -> int:
        """Requeue jobs whose lease ran out; fail those that used their last attempt."""
        return int(await self._run(_RECOVER_LUA, [LOST_ERROR]))

    async def _finish(
        self, job: ClaimedJob, worker: str, action: str, delay: float = 0.0, error: str = ""
    ) -> bool:
        args = [job.id, worker, job.attempt, action, delay, error]
        return bool(int(await self._run(_FINISH_LUA, args)))

    async def complete(self, job: ClaimedJob, worker: str) -> bool:
        """Delete ``job``, which succeeded, if ``worker`` still holds its lease."""
        return await self._finish(job, worker, "complete")

    async def retry(self, job: ClaimedJob, worker: str, delay: float, error: str) -> bool:
        """Requeue ``job`` due in ``delay`` seconds, keeping ``error``."""
        return await self._finish(job, worker, "retry", delay, error)

    async def fail(self, job: ClaimedJob, worker: str, error: str) -> bool:
        """Keep ``job`` as failed, with ``error``; its unique key is freed."""
        return await self._finish(job, worker, "fail", 0.0, error)

    async def release(self, job: ClaimedJob, worker: str) -> bool:
        """Requeue ``job`` now, giving its attempt back."""
        return await self._finish(job, worker, "release")

    async def fire_schedule(self, name: str, tick: float, job: NewJob) -> bool:
        """Move schedule ``name`` to ``tick`` and enqueue ``job``, in one script."""
        args = [name, repr(tick), *self._enqueue_args(job)]
        return bool(int(await self._run(_FIRE_LUA, args)))

    async def wait(self, queues: Sequence[str], seconds: float) -> None:
        """Block until an enqueue pushes to a queue's wake list, or ``seconds`` pass."""
        client = self.redis.get()
        keys = [f"{self.prefix}wake:{queue}" for queue in queues]
        await client.blpop(keys, timeout=max(seconds, 0.01))

    # -- inspection and maintenance -----------------------------------------------------------

    async def _queues(self, client: Redis) -> list[str]:
        return sorted(_text(name) for name in await client.smembers(f"{self.prefix}queues"))

    async def _ids(self, client: Redis, status: str, queue: str | None, limit: int) -> list[str]:
        if status == "queued":
            names = [queue] if queue is not None else await self._queues(client)
            keys = [f"{self.prefix}queue:{name}" for name in names]
        else:
            keys = [f"{self.prefix}{'leases' if status == 'running' else 'failed'}"]
        ids: list[str] = []
        for key in keys:
            end = -1 if limit < 0 else limit - 1
            ids.extend(_text(item) for item in await client.zrange(key, 0, end))
        return ids

    async def _load(self, client: Redis, ids: Sequence[str]) -> list[JobInfo]:
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            _ = pipe.hmget(f"{self.prefix}job:{job_id}", list(_FIELDS))
        found = []
        for values in await pipe.execute():
            if values[0] is None:
                continue
            data = dict(zip(_FIELDS, values, strict=True))
            found.append(
                JobInfo(
                    id=_text(data["id"]),
                    name=_text(data["name"]),
                    queue=_text(data["queue"]),
                    status=_text(data["status"]),
                    attempts=int(_text(data["attempts"])),
                    max_attempts=int(_text(data["max_attempts"])),
                    run_at=_float(data["run_at"]),
                    enqueued_at=_float(data["enqueued_at"]),
                    finished_at=None
                    if _optional(data["finished_at"]) is None
                    else _float(data["finished_at"]),
                    error=_optional(data["error"]),
                    worker=_optional(data["worker"]),
                    payload=_text(data["payload"]),
                )
            )
        return found

    def _check_status(self, status: str) -> None:
        if status not in JOB_STATUSES:
            raise JobsError(
                f"Unknown job status {status!r}. Use one of: {', '.join(JOB_STATUSES)}."
            )

    async def list_jobs(
        self, *, status: str | None = None, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        """Return up to ``limit`` jobs, oldest first."""
        client = self.redis.get()
        statuses = JOB_STATUSES if status is None else (status,)
        ids: list[str] = []
        for item in statuses:
            self._check_status(item)
            ids.extend(await self._ids(client, item, queue, limit))
        jobs = [
            info
            for info in await self._load(client, ids)
            if (queue is None or info.queue == queue) and (status is None or info.status == status)
        ]
        jobs.sort(key=lambda info: (info.enqueued_at, info.id))
        return jobs[: max(0, limit)]

    async def get_job(self, job_id: str) -> JobInfo | None:
        """Return job ``job_id``, or None."""
        found = await self._load(self.redis.get(), [job_id])
        return found[0] if found else None

    async def retry_failed(self, ids: Sequence[str] | None = None) -> int:
        """Requeue failed jobs (``ids``, or all of them) with fresh attempts."""
        client = self.redis.get()
        chosen = list(ids) if ids is not None else await self._ids(client, "failed", None, -1)
        total = 0
        for start in range(0, len(chosen), 500):
            total += int(await self._run(_RETRY_FAILED_LUA, chosen[start : start + 500]))
        return total

    async def purge(
        self,
        *,
        status: str = "failed",
        queue: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete the jobs matching the filters; return how many."""
        self._check_status(status)
        client = self.redis.get()
        ids = await self._ids(client, status, queue, -1)
        if queue is not None or older_than is not None:
            cutoff = None if older_than is None else time.time() - older_than
            ids = [
                info.id
                for info in await self._load(client, ids)
                if (queue is None or info.queue == queue)
                and (cutoff is None or info.enqueued_at < cutoff)
            ]
        total = 0
        for start in range(0, len(ids), 500):
            total += int(await self._run(_PURGE_LUA, [status, *ids[start : start + 500]]))
        return total

    async def counts(self) -> Mapping[tuple[str, str], int]:
        """Return the number of jobs per (queue, status)."""
        client = self.redis.get()
        counts: dict[tuple[str, str], int] = {}
        for name in await self._queues(client):
            waiting = int(await client.zcard(f"{self.prefix}queue:{name}"))
            if waiting:
                counts[(name, "queued")] = waiting
        for status in ("running", "failed"):
            for info in await self._load(client, await self._ids(client, status, None, -1)):
                key = (info.queue, status)
                counts[key] = counts.get(key, 0) + 1
        return counts
