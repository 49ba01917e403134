"""What a job backend does: the contract the worker, ``enqueue`` and the CLI rely on.

Delivery is at least once. A worker *claims* jobs under a lease (the
visibility timeout) and renews it with heartbeats while they run; a job whose
lease ran out (its worker was killed, or lost the network) is given to another
worker. A claim counts an attempt, and the attempt number identifies the
lease: a worker that lost a lease cannot complete, retry or fail the run that
replaced it.
"""

from __future__ import annotations

import abc
import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from covet.jobs.core import ClaimedJob, JobInfo, NewJob

__all__ = ("JOB_STATUSES", "JobBackend")

#: The statuses a stored job can have.
JOB_STATUSES = ("queued", "running", "failed")

#: The error stored on a job whose worker stopped renewing its lease once too often.
LOST_ERROR = (
    "The worker running this job stopped renewing its lease (it was killed, or lost its "
    "connection) on the last allowed attempt."
)


class JobBackend(abc.ABC):
    """Store jobs, hand them to workers under leases, and keep the failed ones."""

    #: A short name for logs and ``covet jobs``: "database" or "redis".
    kind: str = ""

    @abc.abstractmethod
    async def enqueue(self, job: NewJob) -> str:
        """Store ``job``; return its id (the waiting job's id for a duplicate unique key)."""

    @abc.abstractmethod
    async def claim(
        self, queues: Sequence[str], limit: int, worker: str, lease: float
    ) -> list[ClaimedJob]:
        """Take up to ``limit`` due jobs of ``queues`` for ``worker``, leased ``lease`` seconds."""

    @abc.abstractmethod
    async def heartbeat(self, worker: str, jobs: Sequence[ClaimedJob], lease: float) -> None:
        """Extend the leases ``worker`` still holds on ``jobs`` to ``lease`` seconds from now."""

    @abc.abstractmethod
    async def recover(self) -> int:
        """Requeue the jobs whose lease ran out (fail those out of attempts); return how many."""

    @abc.abstractmethod
    async def complete(self, job: ClaimedJob, worker: str) -> bool:
        """Remove ``job``, which succeeded; False if ``worker`` no longer held its lease."""

    async def complete_many(self, jobs: Sequence[ClaimedJob], worker: str) -> set[str]:
        """Remove the succeeded ``jobs`` whose lease ``worker`` holds; return their ids.

        A worker hands over every job that finished while the previous call was
        running, so under load one statement (one commit) removes several.
        """
        return {job.id for job in jobs if await self.complete(job, worker)}

    @abc.abstractmethod
    async def retry(self, job: ClaimedJob, worker: str, delay: float, error: str) -> bool:
        """Requeue ``job`` after a failure, due in ``delay`` seconds; False if the lease is gone."""

    @abc.abstractmethod
    async def fail(self, job: ClaimedJob, worker: str, error: str) -> bool:
        """Keep ``job`` as failed with ``error`` (its traceback); False if the lease was lost."""

    @abc.abstractmethod
    async def release(self, job: ClaimedJob, worker: str) -> bool:
        """Requeue ``job`` at once without counting its attempt (a worker shutting down)."""

    @abc.abstractmethod
    async def fire_schedule(self, name: str, tick: float, job: NewJob) -> bool:
        """Enqueue ``job`` for tick ``tick`` of schedule ``name`` unless a worker did; True if so.

        The first call for a schedule only records ``tick`` (a new schedule
        starts at its next tick); a later call enqueues when ``tick`` is newer
        than the last one fired. Exactly one of many workers wins each tick.
        """

    @abc.abstractmethod
    async def list_jobs(
        self, *, status: str | None = None, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        """Return up to ``limit`` jobs, oldest first, of one status and queue (or all)."""

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> JobInfo | None:
        """Return the job ``job_id``, or None when there is none (it succeeded, or was purged)."""

    @abc.abstractmethod
    async def retry_failed(self, ids: Sequence[str] | None = None) -> int:
        """Put failed jobs (``ids``, or all) back on their queues with fresh attempts."""

    @abc.abstractmethod
    async def purge(
        self,
        *,
        status: str = "failed",
        queue: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete jobs of ``status`` (and ``queue``) enqueued over ``older_than`` seconds ago."""

    @abc.abstractmethod
    async def counts(self) -> Mapping[tuple[str, str], int]:
        """Return the number of jobs per ``(queue, status)``."""

    async def check(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Raise a clear error when the backend cannot be used (a worker calls it at start)."""

    async def wait(self, queues: Sequence[str], seconds: float) -> None:
        """Return when new jobs may have arrived on ``queues``, or after ``seconds``."""
        await asyncio.sleep(seconds)

    async def aclose(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Release what the backend holds in this event loop (connections)."""
