"""Where jobs go, and how workers run: :func:`configure`, ``[tool.covet.jobs]``, ``COVET_JOBS_URL``.

The backend is, in this order: the one given to :func:`configure` (in the
app's code); else the URL in ``COVET_JOBS_URL`` (environment, then ``.env``)
or ``[tool.covet.jobs] url``; else the default database. URLs are
``"database"`` (the default database), ``"database://ALIAS"`` (another
connected one) or a Redis URL (``"redis://127.0.0.1:6379/0"``)::

    [tool.covet.jobs]
    url = "database"
    queues = ["default", "mail"]     # what `covet worker` serves by default
    concurrency = 10
    visibility_timeout = 30          # seconds a job's lease lasts between heartbeats
    modules = ["mysite.jobs"]        # imported by the worker (besides the app)

    [tool.covet.jobs.schedules.nightly-report]
    cron = "0 3 * * *"
    job = "mysite.jobs:nightly_report"
    timezone = "Europe/Paris"
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from covet.exceptions import ImproperlyConfigured
from covet.jobs.core import DEFAULT_QUEUE, MAX_QUEUE_LENGTH
from covet.jobs.schedules import Schedule

if TYPE_CHECKING:
    from collections.abc import Mapping

    from covet.config import Settings
    from covet.jobs.backends.base import JobBackend

__all__ = (
    "JobsSettings",
    "backend_from_url",
    "configure",
    "configured_backend",
    "get_backend",
    "reset",
)

_URL_VARIABLE = "COVET_JOBS_URL"
_KEYS = (
    "concurrency",
    "modules",
    "poll_interval",
    "queues",
    "schedules",
    "shutdown_timeout",
    "url",
    "visibility_timeout",
)
_SCHEDULE_KEYS = ("args", "cron", "job", "kwargs", "timezone")

_backend: JobBackend | None = None


def backend_from_url(url: str, *, prefix: str | None = None) -> JobBackend:
    """Return the backend for ``url``: ``database``, ``database://ALIAS`` or ``redis://...``.

    Args:
        url: The backend URL.
        prefix: The Redis key prefix (Redis only; ``"covet:jobs:"`` by default).

    Raises:
        ImproperlyConfigured: For any other URL.
    """
    from covet.jobs.backends.database import DatabaseBackend

    text = url.strip()
    if text in ("database", "database://", "db"):
        return DatabaseBackend()
    if text.startswith("database://"):
        return DatabaseBackend(text[len("database://") :])
    if text.startswith(("redis://", "rediss://", "unix://")):
        from covet.jobs.backends.redis import RedisBackend

        return RedisBackend(text, prefix=prefix) if prefix is not None else RedisBackend(text)
    raise ImproperlyConfigured(
        f"Unknown jobs backend URL {url!r}. Use 'database' (the default database), "
        "'database://ALIAS', or a Redis URL such as 'redis://127.0.0.1:6379/0'."
    )


def configure(backend: JobBackend | str) -> JobBackend:
    """Send this process's jobs to ``backend`` (a backend, or a URL for :func:`backend_from_url`).

    Call it once at startup, for example where the app is built; it wins over
    the project's settings.

    Returns:
        The backend.
    """
    global _backend
    _backend = backend_from_url(backend) if isinstance(backend, str) else backend
    return _backend


def configured_backend() -> JobBackend | None:
    """Return the backend chosen so far (by :func:`configure` or a first job), or None."""
    return _backend


def reset() -> None:
    """Forget the configured backend (tests): the next job goes to the project's default."""
    global _backend
    _backend = None


def get_backend() -> JobBackend:
    """Return the backend jobs go to (configured, else the project's settings, else the database).

    Raises:
        ImproperlyConfigured: The project's jobs settings are invalid.
    """
    global _backend
    if _backend is None:
        from covet.config import find_project_root, load_settings

        url = os.environ.get(_URL_VARIABLE)
        if url is None and find_project_root() is not None:
            url = JobsSettings.from_settings(load_settings()).url
        _backend = backend_from_url(url or "database")
    return _backend


def _number(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ImproperlyConfigured(f"{where} {key} must be a positive number, got {value!r}.")
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{where} {key} must be finite, got {value!r}.")
    return float(value)


def _strings(table: Mapping[str, Any], key: str, default: tuple[str, ...], where: str) -> Any:
    value = table.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ImproperlyConfigured(
            f'{where} {key} must be a list of strings, got {value!r}. Write it like ["a", "b"].'
        )
    return tuple(value)


@dataclass(frozen=True, slots=True)
class JobsSettings:
    """The ``[tool.covet.jobs]`` table, checked, with ``COVET_JOBS_URL`` applied.

    Attributes:
        url: The backend URL (see :func:`backend_from_url`), or None for the default.
        queues: The queues a worker serves when given no ``--queue``.
        concurrency: How many jobs one worker runs at once.
        visibility_timeout: Seconds a lease lasts; heartbeats renew it every third of that.
        poll_interval: Seconds an idle worker waits before looking for jobs again.
        shutdown_timeout: Seconds a stopping worker lets running jobs finish
            before it cancels them and puts them back on their queues.
        modules: Modules the worker imports at start (where jobs and schedules live).
        schedules: The cron schedules.
    """

    url: str | None = None
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    concurrency: int = 10
    visibility_timeout: float = 30.0
    poll_interval: float = 0.5
    shutdown_timeout: float = 20.0
    modules: tuple[str, ...] = ()
    schedules: tuple[Schedule, ...] = ()

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> JobsSettings:
        """Read ``settings.jobs`` (``[tool.covet.jobs]``) and ``COVET_JOBS_URL``.

        Raises:
            ImproperlyConfigured: For an unknown key or a value of the wrong type.
        """
        table = settings.jobs
        where = "[tool.covet.jobs]:"
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            raise ImproperlyConfigured(
                f"{where} unknown key(s) {', '.join(map(repr, unknown))}. Known keys are: "
                f"{', '.join(_KEYS)}."
            )
        env = {**settings.env_file, **(os.environ if environ is None else environ)}
        url = env.get(_URL_VARIABLE) or table.get("url")
        if url is not None and not isinstance(url, str):
            raise ImproperlyConfigured(f"{where} url must be a string, got {url!r}.")
        concurrency = table.get("concurrency", 10)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ImproperlyConfigured(
                f"{where} concurrency must be a whole number, 1 or more, got {concurrency!r}."
            )
        queues = _strings(table, "queues", (DEFAULT_QUEUE,), where)
        for queue in queues:
            if len(queue) > MAX_QUEUE_LENGTH:
                raise ImproperlyConfigured(f"{where} queue name {queue!r} is too long.")
        return cls(
            url=url,
            queues=queues or (DEFAULT_QUEUE,),
            concurrency=concurrency,
            visibility_timeout=_number(table, "visibility_timeout", 30.0, where),
            poll_interval=_number(table, "poll_interval", 0.5, where),
            shutdown_timeout=_number(table, "shutdown_timeout", 20.0, where),
            modules=_strings(table, "modules", (), where),
            schedules=_schedules(table.get("schedules", {}), where),
        )


def _schedules(table: Any, where: str) -> tuple[Schedule, ...]:
    if not isinstance(table, dict):
        raise ImproperlyConfigured(
            f"{where} schedules must be a table of tables, got {table!r}. Write "
            '[tool.covet.jobs.schedules.NAME] with cron = "..." and job = "module:function".'
        )
    found = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(
                f"{where} schedule {name!r} must be a table, got {entry!r}. Write "
                f'[tool.covet.jobs.schedules.{name}] with cron = "..." and job = "module:function".'
            )
        unknown = sorted(set(entry) - set(_SCHEDULE_KEYS))
        missing = [key for key in ("cron", "job") if key not in entry]
        if unknown or missing:
            raise ImproperlyConfigured(
                f"{where} schedule {name!r} has unknown key(s) {unknown} or lacks {missing}. "
                f"It takes: {', '.join(_SCHEDULE_KEYS)} (cron and job are required)."
            )
        args, kwargs = entry.get("args", []), entry.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ImproperlyConfigured(
                f"{where} schedule {name!r}: args must be a list and kwargs a table."
            )
        if not isinstance(entry["job"], str) or ":" not in entry["job"]:
            raise ImproperlyConfigured(
                f"{where} schedule {name!r}: job must be 'module:function', got {entry['job']!r}."
            )
        found.append(
            Schedule(
                name,
                entry["cron"],
                entry["job"],
                args=tuple(args),
                kwargs=kwargs,
                timezone=entry.get("timezone", "UTC"),
            )
        )
    return tuple(found)
