"""``covet jobs list|show|retry|purge``: look at and repair the job queues.

Every command starts the project the way ``covet worker`` does (the app's
lifespan, so its database is connected and its backend configured), runs one
operation and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from covet.cli._common import LifespanManager, echo, fail, import_app, project_settings, success
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from covet.config import Settings
    from covet.jobs.backends.base import JobBackend
    from covet.jobs.core import JobInfo
    from covet.jobs.settings import JobsSettings

__all__ = ("JobsRuntime", "jobs_group", "jobs_runtime", "parse_duration")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Return seconds for ``"90"``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"7d"``.

    Raises:
        click.BadParameter: For anything else.
    """
    match = _DURATION.match(text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration. Write 90, 90s, 15m, 2h or 7d.")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class JobsRuntime:
    """What a jobs command works with once the project is started."""

    settings: Settings | None
    jobs: JobsSettings
    backend: JobBackend


@contextlib.asynccontextmanager
async def jobs_runtime(app_path: str | None) -> AsyncIterator[JobsRuntime]:
    """Start the project (app lifespan, job modules, backend, database) for a jobs command.

    Raises:
        ImproperlyConfigured: For invalid settings, or a database backend with
            no database to connect to.
    """
    from covet.db import Database
    from covet.db.database import connected_databases
    from covet.jobs import settings as jobs_settings_module
    from covet.jobs.backends.database import DatabaseBackend
    from covet.jobs.settings import JobsSettings, backend_from_url, configure

    settings = project_settings(app_path)
    jobs = JobsSettings.from_settings(settings) if settings is not None else JobsSettings()
    lifespan: LifespanManager | None = None
    if app_path is not None or (settings is not None and settings.app is not None):
        _path, app = import_app(app_path, settings)
        lifespan = LifespanManager(app)
        await lifespan.startup()
    opened: Database | None = None
    backend: JobBackend | None = None
    if settings is not None and str(settings.root) not in sys.path:
        sys.path.insert(0, str(settings.root))
    try:
        for module in jobs.modules:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"[tool.covet.jobs] modules lists {module!r}, which cannot be imported: "
                    f"{exc}. Fix the module path."
                ) from exc
        backend = jobs_settings_module.configured_backend()
        if backend is None:
            backend = configure(backend_from_url(jobs.url or "database"))
        if (
            isinstance(backend, DatabaseBackend)
            and backend.using is None
            and not (connected_databases())
        ):
            if settings is None or not settings.database_url:
                raise ImproperlyConfigured(
                    "Jobs are kept in the database, but no database is connected and "
                    "DATABASE_URL is not set. Set DATABASE_URL (or connect the database in "
                    "the app's startup), or set [tool.covet.jobs] url to a Redis URL."
                )
            opened = Database(settings.database_url)
            await opened.connect()
        yield JobsRuntime(settings, jobs, backend)
    finally:
        if backend is not None:
            await backend.aclose()
        if opened is not None:
            await opened.disconnect()
        if lifespan is not None:
            await lifespan.shutdown()


def _run(app_path: str | None, action: Callable[[JobsRuntime], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with jobs_runtime(app_path) as runtime:
            return await action(runtime)

    return asyncio.run(main())


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _last_line(error: str | None) -> str:
    if not error:
        return ""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:80] if lines else ""


def _table(jobs: list[JobInfo]) -> list[str]:
    rows = [("ID", "STATUS", "QUEUE", "NAME", "TRIES", "DUE (UTC)", "LAST ERROR")]
    for info in jobs:
        status = info.status
        when = info.finished_at if status == "failed" else info.run_at
        rows.append(
            (
                info.id,
                status,
                info.queue,
                info.name,
                f"{info.attempts}/{info.max_attempts}",
                _when(when),
                _last_line(info.error),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        padded = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False))
        lines.append(f"{padded}  {row[-1]}".rstrip())
    return lines


_APP = click.option(
    "--app",
    "app_path",
    default=None,
    metavar="MODULE:ATTR",
    help="The application to start (default: [tool.covet] app).",
)
_STATUS = click.Choice(["queued", "running", "failed"])


@click.group("jobs")
def jobs_group() -> None:
    """List, inspect, retry and purge background jobs."""


@jobs_group.command("list")
@_APP
@click.option("--status", type=_STATUS, default=None, help="Only jobs with this status.")
@click.option("--queue", default=None, help="Only jobs of this queue.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
def list_command(app_path: str | None, status: str | None, queue: str | None, limit: int) -> None:
    """List jobs, oldest first, with the last line of their last error."""

    async def action(runtime: JobsRuntime) -> tuple[list[JobInfo], dict[tuple[str, str], int]]:
        jobs = await runtime.backend.list_jobs(status=status, queue=queue, limit=limit)
        return jobs, dict(await runtime.backend.counts())

    jobs, counts = _run(app_path, action)
    if not jobs:
        echo("No jobs.")
    else:
        for line in _table(jobs):
            echo(line)
    totals: dict[str, int] = {}
    for (_queue, job_status), count in counts.items():
        totals[job_status] = totals.get(job_status, 0) + count
    summary = ", ".join(f"{totals.get(name, 0)} {name}" for name in ("queued", "running", "failed"))
    echo(f"In all: {summary}.")


@jobs_group.command("show")
@_APP
@click.argument("job_id")
def show_command(app_path: str | None, job_id: str) -> None:
    """Show one job: its arguments, attempts and the traceback of its last failure."""

    async def action(runtime: JobsRuntime) -> JobInfo | None:
        return await runtime.backend.get_job(job_id)

    info = _run(app_path, action)
    if info is None:
        fail(
            f"No job {job_id!r}: it succeeded (finished jobs are deleted), was purged, or the id "
            "is wrong. Run `covet jobs list` to see the jobs there are."
        )
    echo(f"id:        {info.id}")
    echo(f"name:      {info.name}")
    echo(f"queue:     {info.queue}")
    echo(f"status:    {info.status}")
    echo(f"attempts:  {info.attempts} of {info.max_attempts}")
    echo(f"due:       {_when(info.run_at)} UTC")
    echo(f"enqueued:  {_when(info.enqueued_at)} UTC")
    if info.finished_at is not None:
        echo(f"failed:    {_when(info.finished_at)} UTC")
    if info.worker:
        echo(f"worker:    {info.worker}")
    echo(f"arguments: {info.payload}")
    if info.error:
        echo("last error:")
        echo(info.error.rstrip())


@jobs_group.command("retry")
@_APP
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_failed", is_flag=True, help="Retry every failed job.")
def retry_command(app_path: str | None, job_ids: tuple[str, ...], all_failed: bool) -> None:
    """Put failed jobs back on their queues with fresh attempts."""
    if not job_ids and not all_failed:
        fail("Name the failed jobs to retry (`covet jobs retry ID...`), or pass --all.")
    if job_ids and all_failed:
        fail("Pass job ids or --all, not both.")

    async def action(runtime: JobsRuntime) -> int:
        return await runtime.backend.retry_failed(None if all_failed else list(job_ids))

    count = _run(app_path, action)
    if job_ids and count < len(job_ids):
        fail(
            f"Requeued {count} of {len(job_ids)} job(s): the others are not failed jobs. "
            "Run `covet jobs list --status failed` to see which are."
        )
    success(f"Requeued {count} failed job(s).")


@jobs_group.command("purge")
@_APP
@click.option(
    "--status", type=_STATUS, default="failed", show_default=True, help="Which jobs to delete."
)
@click.option("--queue", default=None, help="Only jobs of this queue.")
@click.option(
    "--older-than",
    default=None,
    metavar="DURATION",
    help="Only jobs enqueued longer ago than this (90s, 15m, 2h, 7d).",
)
def purge_command(
    app_path: str | None, status: str, queue: str | None, older_than: str | None
) -> None:
    """Delete jobs: the failed ones by default."""
    seconds = None if older_than is None else parse_duration(older_than)

    async def action(runtime: JobsRuntime) -> int:
        return await runtime.backend.purge(status=status, queue=queue, older_than=seconds)

    count = _run(app_path, action)
    success(f"Deleted {count} {status} job(s).")
