"""Every backend (SQLite, PostgreSQL, MySQL, Redis) keeps the same contract.

Enqueue, claim under a lease, heartbeats, recovery of expired leases, the
lease check on completion, retries, releases, unique keys, schedules' one
winner per tick, transactions, and the maintenance operations of ``covet jobs``.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import TYPE_CHECKING

import pytest

from covet.jobs import JobsError
from covet.jobs.backends.base import LOST_ERROR
from tests.jobs import jobs as test_jobs

if TYPE_CHECKING:
    from covet.jobs import ClaimedJob, JobBackend
    from tests.jobs.conftest import Store

QUEUES = ("default",)


async def claim_one(backend: JobBackend, worker: str = "w1", lease: float = 30.0) -> ClaimedJob:
    claimed = await backend.claim(QUEUES, 1, worker, lease)
    assert len(claimed) == 1
    return claimed[0]


async def test_enqueue_claim_complete(backend: JobBackend) -> None:
    job_id = await test_jobs.record.options(backend=backend).enqueue("a", pause=0.5)
    [job] = await backend.list_jobs()
    assert (job.id, job.status, job.attempts, job.max_attempts) == (job_id, "queued", 0, 1)
    assert job.payload == '{"args":[],"kwargs":{"label":"a","pause":0.5}}'

    claimed = await claim_one(backend)
    assert (claimed.id, claimed.name, claimed.attempt) == (job_id, "tests.jobs.jobs:record", 1)
    assert await backend.claim(QUEUES, 5, "w2", 30.0) == []  # leased: invisible to others
    assert (await backend.get_job(job_id)).status == "running"  # type: ignore[union-attr]

    assert await backend.complete(claimed, "w2") is False  # not its lease
    assert await backend.complete(claimed, "w1") is True
    assert await backend.get_job(job_id) is None
    assert await backend.counts() == {}


async def test_claim_takes_due_jobs_in_order_up_to_the_limit(backend: JobBackend) -> None:
    record = test_jobs.record.options(backend=backend)
    ids = [await record.enqueue(str(n)) for n in range(5)]
    later = await record.enqueue_in(60, "later")
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    await record.enqueue_at(at, "at")
    other = await test_jobs.record.options(queue="other", backend=backend).enqueue("elsewhere")

    first = await backend.claim(QUEUES, 3, "w1", 30.0)
    second = await backend.claim(QUEUES, 10, "w1", 30.0)
    assert [job.id for job in first + second] == ids
    assert await backend.claim(QUEUES, 10, "w1", 30.0) == []
    assert [job.id for job in await backend.claim(("other",), 10, "w1", 30.0)] == [other]
    waiting = {info.id for info in await backend.list_jobs(status="queued")}
    assert later in waiting
    counts = await backend.counts()
    assert counts[("default", "running")] == 5
    assert counts[("default", "queued")] == 2


async def test_expired_lease_is_recovered_and_the_old_worker_cannot_finish(
    backend: JobBackend,
) -> None:
    await test_jobs.flaky.options(backend=backend).enqueue("x")  # 4 attempts
    lost = await claim_one(backend, "dead", lease=0.2)
    assert await backend.recover() == 0
    await asyncio.sleep(0.3)
    assert await backend.recover() == 1
    again = await claim_one(backend, "alive")
    assert (again.id, again.attempt) == (lost.id, 2)
    # The killed worker's late answers change nothing.
    assert await backend.complete(lost, "dead") is False
    assert await backend.retry(lost, "dead", 0, "late") is False
    assert await backend.fail(lost, "dead", "late") is False
    assert await backend.release(lost, "dead") is False
    assert await backend.complete(again, "alive") is True


async def test_heartbeat_keeps_the_lease(backend: JobBackend) -> None:
    await test_jobs.record.options(backend=backend).enqueue("x")
    job = await claim_one(backend, "w1", lease=0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        await backend.heartbeat("w1", [job], 0.3)
        assert await backend.recover() == 0
    await backend.heartbeat("other", [job], 60)  # another worker cannot extend it
    await asyncio.sleep(0.35)
    assert await backend.recover() == 1


async def test_lost_lease_on_the_last_attempt_fails_the_job(backend: JobBackend) -> None:
    job_id = await test_jobs.record.options(backend=backend).enqueue("x")  # retries=0
    await claim_one(backend, "dead", lease=0.1)
    await asyncio.sleep(0.2)
    assert await backend.recover() == 1
    info = await backend.get_job(job_id)
    assert info is not None
    assert (info.status, info.error, info.attempts) == ("failed", LOST_ERROR, 1)
    assert info.finished_at is not None


async def test_retry_fail_and_release(backend: JobBackend) -> None:
    flaky = test_jobs.flaky.options(backend=backend)
    job_id = await flaky.enqueue("f")
    job = await claim_one(backend)
    assert await backend.retry(job, "w1", 0.3, "Traceback: boom") is True
    assert await backend.claim(QUEUES, 1, "w1", 30.0) == []  # not due yet
    info = await backend.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts, info.error) == ("queued", 1, "Traceback: boom")
    await asyncio.sleep(0.35)
    job = await claim_one(backend)
    assert job.attempt == 2
    assert await backend.release(job, "w1") is True  # back at once, attempt given back
    job = await claim_one(backend)
    assert job.attempt == 2
    assert await backend.fail(job, "w1", "Traceback: final") is True
    failed = await backend.list_jobs(status="failed")
    assert [(i.id, i.error, i.attempts) for i in failed] == [(job_id, "Traceback: final", 2)]


async def test_unique_keys_hold_while_waiting_or_running(backend: JobBackend) -> None:
    once = test_jobs.once.options(backend=backend)
    first = await once.enqueue("k")
    assert await once.enqueue("k") == first
    other = await once.enqueue("other")
    assert other != first
    keyed = test_jobs.record.options(backend=backend, unique_key="invoice-7")
    mine = await keyed.enqueue("a")
    assert await keyed.enqueue("b") == mine  # the key, not the arguments, decides
    assert len(await backend.list_jobs()) == 3

    jobs = await backend.claim(QUEUES, 10, "w1", 30.0)
    assert await once.enqueue("k") == first  # still running
    for job in jobs:
        assert await backend.complete(job, "w1")
    assert await once.enqueue("k") != first  # done: the key is free again


async def test_failed_job_frees_its_unique_key(backend: JobBackend) -> None:
    once = test_jobs.once.options(backend=backend)
    first = await once.enqueue("k")
    job = await claim_one(backend)
    await backend.fail(job, "w1", "boom")
    assert await once.enqueue("k") != first


async def test_schedule_tick_fires_once_among_concurrent_workers(backend: JobBackend) -> None:
    build = test_jobs.tick.options(backend=backend)
    start = float(int(time.time()))

    async def fire(tick: float) -> list[bool]:
        new = build.build((), {}, run_at=tick)
        return list(
            await asyncio.gather(*(backend.fire_schedule("every", tick, new) for _ in range(3)))
        )

    assert await fire(start) == [False, False, False]  # a new schedule starts at its next tick
    assert sorted(await fire(start + 1)) == [False, False, True]
    assert await fire(start + 1) == [False, False, False]
    assert await fire(start) == [False, False, False]  # never backwards
    assert sorted(await fire(start + 3)) == [False, False, True]
    jobs = await backend.list_jobs()
    assert sorted(job.run_at for job in jobs) == [start + 1, start + 3]


async def test_enqueue_in_a_transaction_commits_or_vanishes(
    backend: JobBackend, store: Store
) -> None:
    record = test_jobs.record.options(backend=backend)
    with pytest.raises(RuntimeError):
        async with store.database.transaction():
            await record.enqueue("rolled back")
            raise RuntimeError("roll back")
    assert await backend.list_jobs() == []

    async with store.database.transaction():
        kept = await record.enqueue("committed")
        if store.kind == "redis":
            assert await backend.list_jobs() == []  # sent when the transaction commits
    assert [job.id for job in await backend.list_jobs()] == [kept]


async def test_retry_failed_and_purge(backend: JobBackend) -> None:
    record = test_jobs.record.options(backend=backend)
    ids = [await record.enqueue(str(n)) for n in range(3)]
    for job in await backend.claim(QUEUES, 3, "w1", 30.0):
        await backend.fail(job, "w1", "boom")
    assert await backend.retry_failed([ids[0], "0" * 32]) == 1
    requeued = await backend.get_job(ids[0])
    assert requeued is not None
    assert (requeued.status, requeued.attempts) == ("queued", 0)
    assert await backend.retry_failed() == 2
    assert len(await backend.list_jobs(status="queued")) == 3

    for job in await backend.claim(QUEUES, 3, "w1", 30.0):
        await backend.fail(job, "w1", "boom")
    assert await backend.purge(status="failed", older_than=3600) == 0
    assert await backend.purge(status="failed", queue="other") == 0
    assert await backend.purge(status="failed") == 3
    assert await backend.list_jobs() == []
    with pytest.raises(JobsError, match="Unknown job status 'done'"):
        await backend.purge(status="done")


async def test_complete_many_removes_only_the_jobs_still_leased(backend: JobBackend) -> None:
    flaky = test_jobs.flaky.options(backend=backend)
    for label in "abc":
        await flaky.enqueue(label)
    jobs = await backend.claim(QUEUES, 3, "w1", 0.2)
    await asyncio.sleep(0.3)
    await backend.heartbeat("w1", jobs[:2], 30)  # too late for the third
    assert await backend.recover() == 1
    stolen = await claim_one(backend, "w2")
    assert stolen.id == jobs[2].id
    assert await backend.complete_many(jobs, "w1") == {jobs[0].id, jobs[1].id}
    assert [info.id for info in await backend.list_jobs()] == [stolen.id]
    assert await backend.complete_many([stolen], "w2") == {stolen.id}
