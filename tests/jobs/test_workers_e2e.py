"""Real `covet worker` processes sharing a queue on PostgreSQL and MariaDB.

- Three workers: 150 jobs each run exactly once, and a schedule firing every
  second fires each tick exactly once, then SIGTERM stops all three (exit 0).
- Two workers: the one running a job is SIGKILLed mid-job; the other runs the
  job again once the dead one's lease runs out (at least once).
- SIGTERM: a running job finishes; one that outlives --shutdown-timeout is put
  back on its queue with its attempt given back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from covet.jobs.backends.database import DatabaseBackend
from tests.cli.conftest import start_covet_logged
from tests.jobs import jobs as test_jobs
from tests.jobs.conftest import drop_private_database, private_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.jobs.conftest import Store

pytestmark = pytest.mark.slow

PROJECT = """\
[project]
name = "jobsite"
version = "0"

[tool.covet]

[tool.covet.jobs]
modules = ["tests.jobs.jobs"]
poll_interval = 0.05
visibility_timeout = 1.5
concurrency = 4

[tool.covet.jobs.schedules.every-second]
cron = "* * * * * *"
job = "tests.jobs.jobs:tick"
"""


@pytest_asyncio.fixture(loop_scope="session", params=["postgres", "mysql"])
async def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    store = await private_database(request.param, tmp_path_factory)
    try:
        yield store
    finally:
        await drop_private_database(store)


class Workers:
    """`covet worker` subprocesses of one project, their logs in files."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.processes: list[subprocess.Popen[str]] = []
        (root / "pyproject.toml").write_text(PROJECT, "utf-8")

    def start(self, *args: str) -> subprocess.Popen[str]:
        log = self.root / f"worker{len(self.processes)}.log"
        process = start_covet_logged(
            log, "worker", *args, cwd=self.root, DATABASE_URL=self.url, JOBTEST_RECORD="1"
        )
        process.log = log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def output(self, process: subprocess.Popen[str]) -> str:
        return process.log.read_text("utf-8")  # type: ignore[attr-defined, no-any-return]

    async def ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes:
            while "serving" not in self.output(process):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"worker did not start:\n{self.output(process)}")
                await asyncio.sleep(0.05)

    def stop(self, process: subprocess.Popen[str], timeout: float = 15) -> int:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"worker did not stop on SIGTERM:\n{self.output(process)}")

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


async def runs(store: Store, label_prefix: str = "") -> list[Any]:
    return list(
        await test_jobs.JobRun.objects.using(store.database.alias)
        .filter(label__startswith=label_prefix)
        .order_by("id")
    )


async def wait_for(condition: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        await asyncio.sleep(0.05)


async def test_three_workers_run_each_job_and_each_tick_exactly_once(
    shared: Store, tmp_path: Path
) -> None:
    workers = Workers(tmp_path, shared.url)
    backend = DatabaseBackend(shared.database)
    try:
        for _ in range(3):
            workers.start()
        await workers.ready()
        record = test_jobs.record.options(backend=backend)
        for n in range(150):
            await record.enqueue(f"r{n}", pause=0.02)
        started = time.monotonic()

        async def all_done() -> bool:
            ticks = await runs(shared, "tick")
            return (
                len(await runs(shared, "r")) >= 150
                and not await backend.list_jobs(status="queued")
                and len(ticks) >= 4
                and time.monotonic() - started > 1
            )

        await wait_for(all_done, 30, "the jobs and ticks did not all run")
        codes = [workers.stop(process) for process in workers.processes]
        outputs = "\n".join(workers.output(process) for process in workers.processes)
        assert codes == [0, 0, 0], outputs
    finally:
        workers.kill_all()

    done = await runs(shared, "r")
    labels = sorted(run.label for run in done)
    assert labels == sorted(f"r{n}" for n in range(150)), "a job ran twice or never"
    assert len({run.job_id for run in done}) == 150
    assert len({run.pid for run in done}) >= 2, "the workers did not share the queue"
    ticks = sorted(run.tick for run in await runs(shared, "tick"))
    assert len(ticks) == len(set(ticks)), f"a tick fired twice: {ticks}"
    assert ticks == [ticks[0] + n for n in range(len(ticks))], f"a tick was skipped: {ticks}"
    assert await backend.list_jobs() == []


async def test_job_of_a_killed_worker_runs_again_on_another(shared: Store, tmp_path: Path) -> None:
    workers = Workers(tmp_path, shared.url)
    backend = DatabaseBackend(shared.database)
    try:
        first, second = workers.start("--no-schedules"), workers.start("--no-schedules")
        await workers.ready()
        job_id = await test_jobs.long_first_attempt.options(backend=backend).enqueue("k", 60)

        async def started() -> bool:
            return len(await runs(shared, "k")) == 1

        await wait_for(started, 10, "the job never started")
        [run] = await runs(shared, "k")
        victim, survivor = (first, second) if run.pid == first.pid else (second, first)
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)

        async def rerun() -> bool:
            return len(await runs(shared, "k")) == 2 and await backend.get_job(job_id) is None

        await wait_for(rerun, 15, f"the job did not run again:\n{workers.output(survivor)}")
        assert workers.stop(survivor) == 0
    finally:
        workers.kill_all()
    again = (await runs(shared, "k"))[1]
    assert (again.job_id, again.attempt, again.pid) == (job_id, 2, survivor.pid)
    assert "stopped renewing its lease" in workers.output(survivor)


@pytest.mark.parametrize("shared", ["postgres"], indirect=True)
async def test_sigterm_finishes_short_jobs_and_puts_back_long_ones(
    shared: Store, tmp_path: Path
) -> None:
    workers = Workers(tmp_path, shared.url)
    backend = DatabaseBackend(shared.database)
    try:
        process = workers.start("--no-schedules", "--shutdown-timeout", "1")
        await workers.ready()
        record = test_jobs.record.options(backend=backend)
        await record.enqueue("finish", pause=0.5)
        stuck = await record.enqueue("stuck", pause=60)

        async def both_running() -> bool:
            return len(await backend.list_jobs(status="running")) == 2

        await wait_for(both_running, 10, "the jobs did not start")
        stopping = time.monotonic()
        assert workers.stop(process) == 0
        assert time.monotonic() - stopping < 5
    finally:
        workers.kill_all()
    assert [run.label for run in await runs(shared)] == ["finish"]
    info = await backend.get_job(stuck)
    assert info is not None
    assert (info.status, info.attempts, info.worker) == ("queued", 0, None)
    assert "put back on queue 'default'" in workers.output(process)
    assert os.environ.get("JOBTEST_RECORD") is None  # only the subprocesses record rows
