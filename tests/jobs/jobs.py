"""Jobs the tests enqueue, importable by `covet worker` subprocesses as ``tests.jobs.jobs``.

In-process tests read :data:`RUNS`; worker subprocesses record each run as a
:class:`JobRun` row in the project's database, so the test can count them.
"""

from __future__ import annotations

import asyncio
import logging
import os

from covet.db import Model, fields
from covet.jobs import current_job, job

logger = logging.getLogger("tests.jobs")

#: (label, attempt) of every run in this process.
RUNS: list[tuple[str, int]] = []
#: Labels whose run should fail this many more times.
FAILURES: dict[str, int] = {}


class JobRun(Model):
    """One run of a job in a worker subprocess."""

    job_id = fields.CharField(max_length=32)
    label = fields.CharField(max_length=100)
    attempt = fields.IntegerField()
    pid = fields.IntegerField()
    tick = fields.FloatField(null=True)

    class Meta:
        table = "jobtest_runs"


async def _record(label: str) -> None:
    running = current_job()
    assert running is not None
    RUNS.append((label, running.attempt))
    if os.environ.get("JOBTEST_RECORD") == "1":
        await JobRun.objects.create(
            job_id=running.job_id,
            label=label,
            attempt=running.attempt,
            pid=os.getpid(),
            tick=running.run_at,
        )


@job(retries=0)
async def record(label: str, pause: float = 0.0) -> None:
    """Record a run (after ``pause`` seconds)."""
    if pause:
        await asyncio.sleep(pause)
    await _record(label)


@job(retries=3, backoff=0.05)
async def flaky(label: str) -> None:
    """Fail while FAILURES[label] > 0, then succeed."""
    await _record(label)
    left = FAILURES.get(label, 0)
    if left > 0:
        FAILURES[label] = left - 1
        raise RuntimeError(f"planned failure of {label}")


@job(retries=1, backoff=0.01, timeout=0.2)
async def slow(seconds: float) -> None:
    """Sleep ``seconds`` (beyond its 0.2 s timeout when asked)."""
    await asyncio.sleep(seconds)
    await _record("slow")


@job(retries=2)
async def long_first_attempt(label: str, seconds: float) -> None:
    """Record the start, then sleep ``seconds`` on the first attempt only."""
    await _record(label)
    running = current_job()
    assert running is not None
    if running.attempt == 1:
        await asyncio.sleep(seconds)


@job(unique=True, retries=0)
async def once(key: str) -> None:
    """A unique job (one per argument while it waits)."""
    await _record(f"once:{key}")


@job(retries=0)
async def tick() -> None:
    """A scheduled job: records its tick."""
    await _record("tick")


@job(retries=0)
async def chatty(word: str) -> None:
    """Log a line (the test checks its job and request ids)."""
    logger.info("job says %s", word)
    await _record("chatty")


def reset() -> None:
    """Forget the runs and planned failures of earlier tests."""
    RUNS.clear()
    FAILURES.clear()


def runs(label: str) -> list[int]:
    """Return the attempts of the recorded runs with ``label``."""
    return [attempt for name, attempt in RUNS if name == label]


@job(retries=0)
async def broken(label: str) -> None:
    """Always fail."""
    raise ValueError(f"broken {label}")
