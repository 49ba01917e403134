"""Background jobs: ``@job`` functions run later by ``covet worker``, with retries and schedules.

::

    from covet.jobs import job

    @job(queue="mail", retries=5, timeout=60)
    async def send_welcome(user_id: int) -> None: ...

    await send_welcome.enqueue(user.id)              # as soon as a worker is free
    await send_welcome.enqueue_in(3600, user.id)     # in an hour

Jobs live in the application's database by default (``covet_jobs``, list
``"covet.jobs.models"`` in ``[tool.covet] models``), or in Redis
(``configure("redis://...")`` or ``[tool.covet.jobs] url``). Delivery is at
least once. See ``docs/jobs.md``.

:class:`Worker`, :class:`DatabaseBackend` and :class:`RedisBackend` are
imported on first use, so ``import covet.jobs`` loads no database or Redis code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.jobs.backends.base import JobBackend
from covet.jobs.core import (
    DEFAULT_QUEUE,
    ClaimedJob,
    Job,
    JobArgumentError,
    JobCall,
    JobInfo,
    JobObserver,
    JobsError,
    NewJob,
    UnknownJobError,
    add_observer,
    current_job,
    find_job,
    job,
    registered_jobs,
    remove_observer,
)
from covet.jobs.schedules import Schedule, registered_schedules, schedule
from covet.jobs.settings import JobsSettings, backend_from_url, configure, get_backend

if TYPE_CHECKING:
    from covet.jobs.backends.database import DatabaseBackend
    from covet.jobs.backends.redis import RedisBackend
    from covet.jobs.worker import Worker

__all__ = (
    "DEFAULT_QUEUE",
    "ClaimedJob",
    "DatabaseBackend",
    "Job",
    "JobArgumentError",
    "JobBackend",
    "JobCall",
    "JobInfo",
    "JobObserver",
    "JobsError",
    "JobsSettings",
    "NewJob",
    "RedisBackend",
    "Schedule",
    "UnknownJobError",
    "Worker",
    "add_observer",
    "backend_from_url",
    "configure",
    "current_job",
    "find_job",
    "get_backend",
    "job",
    "registered_jobs",
    "registered_schedules",
    "remove_observer",
    "schedule",
)

_LAZY = {
    "DatabaseBackend": "covet.jobs.backends.database",
    "RedisBackend": "covet.jobs.backends.redis",
    "Worker": "covet.jobs.worker",
}


def __getattr__(name: str) -> Any:
    # PEP 562: the backends and the worker import the ORM or redis, loaded when asked for.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'covet.jobs' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
