"""Static type pins for covet.jobs (checked by mypy; nothing runs under pytest)."""

from __future__ import annotations

import datetime
from typing import assert_type

from covet._context import JobContext
from covet.jobs import Job, JobCall, Worker, current_job, job


@job
async def plain(user_id: int, *, note: str = "") -> bool:
    return bool(user_id)


@job(queue="mail", retries=1)
async def configured(address: str) -> None:
    return None


async def uses() -> None:
    assert isinstance(plain, Job)
    assert_type(await plain(1, note="x"), bool)
    assert_type(await plain.enqueue(1, note="x"), str)
    assert_type(await configured.enqueue_in(5.0, "a@example.com"), str)
    when = datetime.datetime.now(datetime.UTC)
    assert_type(await configured.enqueue_at(when, "a@example.com"), str)
    call = configured.options(queue="urgent")
    assert isinstance(call, JobCall)
    assert_type(await call.enqueue("a@example.com"), str)
    await call.enqueue(3)  # type: ignore[arg-type]
    await configured.enqueue(3)  # type: ignore[arg-type]
    await plain.enqueue(1, other=2)  # type: ignore[call-arg]
    assert_type(current_job(), JobContext | None)
    worker = Worker(queues=["mail"])
    assert_type(worker.queues, tuple[str, ...])
    await worker.run(burst=True)
