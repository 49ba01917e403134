"""The worker on every backend: runs, retries with backoff, timeouts, graceful stops, logs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import pytest

from covet._context import RequestContext, current_request
from covet.jobs import Worker, job
from covet.logging import RequestContextFilter
from tests.jobs import jobs as test_jobs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from covet.jobs import JobBackend


def make_worker(backend: JobBackend, **options: Any) -> Worker:
    options.setdefault("visibility_timeout", 2.0)
    options.setdefault("poll_interval", 0.02)
    options.setdefault("run_schedules", False)
    return Worker(backend, **options)


async def test_burst_runs_every_due_job_once(backend: JobBackend) -> None:
    record = test_jobs.record.options(backend=backend)
    for n in range(25):
        await record.enqueue(f"r{n}")
    worker = make_worker(backend, concurrency=4)
    await worker.run(burst=True)
    assert sorted(label for label, _attempt in test_jobs.RUNS) == sorted(f"r{n}" for n in range(25))
    assert worker.processed == 25
    assert await backend.list_jobs() == []


async def test_failed_runs_are_retried_with_backoff_then_kept(backend: JobBackend) -> None:
    flaky = test_jobs.flaky.options(backend=backend)
    test_jobs.FAILURES.update(twice=2, always=10)
    twice = await flaky.enqueue("twice")
    always = await flaky.enqueue("always")
    worker = make_worker(backend)
    started = time.monotonic()
    runner = asyncio.create_task(worker.run())
    while len(test_jobs.runs("always")) < 4 or len(test_jobs.runs("twice")) < 3:
        assert time.monotonic() - started < 10, test_jobs.RUNS
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    worker.stop()
    await runner
    assert test_jobs.runs("twice") == [1, 2, 3]
    assert test_jobs.runs("always") == [1, 2, 3, 4]  # retries=3: four attempts
    # Backoff 0.05 s doubled: 0.05 + 0.1 + 0.2 s before the fourth attempt.
    assert time.monotonic() - started >= 0.35
    assert await backend.get_job(twice) is None
    info = await backend.get_job(always)
    assert info is not None
    assert (info.status, info.attempts) == ("failed", 4)
    assert info.error is not None
    assert "RuntimeError: planned failure of always" in info.error
    assert 'in flaky\n    raise RuntimeError(f"planned failure of {label}")' in info.error


async def test_timeout_fails_the_run(backend: JobBackend) -> None:
    job_id = await test_jobs.slow.options(backend=backend).enqueue(5.0)
    worker = make_worker(backend)
    started = time.monotonic()
    await worker.run(burst=True)
    await asyncio.sleep(0.05)  # the 0.01 s backoff before the second attempt
    await worker.run(burst=True)
    assert time.monotonic() - started < 2
    info = await backend.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts) == ("failed", 2)
    assert info.error is not None
    assert "TimeoutError" in info.error
    assert "The job timed out after 0.2 s" in info.error
    assert test_jobs.RUNS == []


async def test_stop_lets_running_jobs_finish(backend: JobBackend) -> None:
    record = test_jobs.record.options(backend=backend)
    await record.enqueue("finishing", pause=0.3)
    worker = make_worker(backend, shutdown_timeout=5)
    runner = asyncio.create_task(worker.run())
    await _wait_running(backend)
    worker.stop()
    await runner
    assert test_jobs.runs("finishing") == [1]
    assert await backend.list_jobs() == []


async def test_stop_puts_back_jobs_that_outlive_the_shutdown_timeout(backend: JobBackend) -> None:
    job_id = await test_jobs.record.options(backend=backend).enqueue("stuck", pause=30)
    worker = make_worker(backend, shutdown_timeout=0.2)
    runner = asyncio.create_task(worker.run())
    await _wait_running(backend)
    started = time.monotonic()
    worker.stop()
    await runner
    assert time.monotonic() - started < 2
    info = await backend.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts, info.worker) == ("queued", 0, None)
    assert test_jobs.RUNS == []


async def test_second_stop_releases_at_once(backend: JobBackend) -> None:
    job_id = await test_jobs.record.options(backend=backend).enqueue("stuck", pause=30)
    worker = make_worker(backend, shutdown_timeout=60)
    runner = asyncio.create_task(worker.run())
    await _wait_running(backend)
    worker.stop()
    await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(runner, 5)
    info = await backend.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts) == ("queued", 0)


async def _wait_running(backend: JobBackend) -> None:
    for _ in range(500):
        if await backend.list_jobs(status="running"):
            return
        await asyncio.sleep(0.01)
    pytest.fail("the job never started")


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[Any] = []
        self.addFilter(RequestContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("tests.jobs")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_job_logs_carry_the_job_and_request_ids(
    backend: JobBackend, captured: Captured
) -> None:
    context = RequestContext({"type": "http", "covet.request_id": "req-42"})
    token = current_request.set(context)
    try:
        job_id = await test_jobs.chatty.options(backend=backend).enqueue("hello")
    finally:
        current_request.reset(token)
    await make_worker(backend).run(burst=True)
    [record] = [r for r in captured.records if r.getMessage() == "job says hello"]
    assert (record.job_id, record.request_id) == (job_id, "req-42")


async def test_unknown_job_fails_with_a_clear_error(backend: JobBackend) -> None:
    @job(name="tests.jobs.nowhere:missing", retries=0)
    async def missing() -> None: ...

    job_id = await missing.options(backend=backend).enqueue()
    from covet.jobs import core

    del core._registry["tests.jobs.nowhere:missing"]
    await make_worker(backend).run(burst=True)
    info = await backend.get_job(job_id)
    assert info is not None
    assert info.status == "failed"
    assert info.error is not None
    assert "No job called 'tests.jobs.nowhere:missing' is defined in this worker" in info.error
