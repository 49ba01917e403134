"""The tables of the database job backend: ``covet_jobs`` and ``covet_job_schedules``.

List ``"covet.jobs.models"`` in ``[tool.covet] models`` so ``covet makemigrations``
creates them, then run ``covet migrate``::

    [tool.covet]
    models = ["mysite.models", "covet.jobs.models"]

Times are Unix timestamps (double precision seconds), so every dialect
compares them the same way and workers on hosts in different time zones agree.
"""

from __future__ import annotations

from covet.db import Model, fields

__all__ = ("JobSchedule", "QueuedJob")


class QueuedJob(Model):
    """One job: waiting (``queued``, due at ``run_at``), ``running`` under a lease, or ``failed``.

    A job that succeeds is deleted; a failed one stays, with its traceback,
    until ``covet jobs retry`` or ``covet jobs purge``.

    Attributes:
        id: 32 hex digits, time-ordered (:func:`covet.jobs.core.new_job_id`).
        queue: The queue it waits on.
        name: The job function's registered name.
        payload: Its arguments as JSON.
        status: ``queued``, ``running`` or ``failed``.
        run_at: When it may run next (Unix time).
        attempts: How many times a worker took it.
        max_attempts: How many times it may be taken (retries + 1).
        lease_until: While running: when its lease ends unless renewed.
        worker: While running: the worker holding the lease.
        unique_key: The idempotency key, while the job waits or runs.
        request_id: The id of the request that enqueued it.
        error: The traceback of its last failure.
        enqueued_at: When it was enqueued (Unix time).
        finished_at: When it failed for good (Unix time).
    """

    id = fields.CharField(max_length=32, primary_key=True)
    queue = fields.CharField(max_length=100)
    name = fields.CharField(max_length=255)
    payload = fields.TextField()
    status = fields.CharField(max_length=10)
    run_at = fields.FloatField()
    attempts = fields.IntegerField(default=0)
    max_attempts = fields.IntegerField(default=1)
    lease_until = fields.FloatField(null=True)
    worker = fields.CharField(max_length=100, null=True)
    unique_key = fields.CharField(max_length=255, null=True, unique=True)
    request_id = fields.CharField(max_length=64, null=True)
    error = fields.TextField(null=True)
    enqueued_at = fields.FloatField()
    finished_at = fields.FloatField(null=True)

    class Meta:
        """Claims read ``(status, queue, run_at)``; lease recovery ``(status, lease_until)``."""

        table = "covet_jobs"
        indexes = (("status", "queue", "run_at"), ("status", "lease_until"))


class JobSchedule(Model):
    """The last tick fired of one schedule, shared by every worker.

    Attributes:
        name: The schedule's name.
        last_tick: The tick fired last (Unix time); a worker fires a newer
            tick only by moving this forward, which one worker alone can do.
    """

    name = fields.CharField(max_length=200, primary_key=True)
    last_tick = fields.FloatField()

    class Meta:
        """One row per schedule."""

        table = "covet_job_schedules"
