"""``covet worker``: run background jobs and fire schedules until stopped.

It starts the project like ``covet shell`` does (the app's lifespan, so the
database is connected and whatever the app configures is in place), imports
``[tool.covet.jobs] modules``, then serves the queues. SIGTERM or Ctrl+C stops
it gracefully: no new jobs are taken, running ones get ``--shutdown-timeout``
seconds to finish, then are cancelled and put back on their queues; a second
signal does that at once. The exit status is 0 after a graceful stop.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Any

import click

from covet.cli.jobs import jobs_runtime

if TYPE_CHECKING:
    from collections.abc import Callable

    from covet.jobs.worker import Worker

__all__ = ("worker_command",)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _configure_logging(settings: Any) -> None:
    from pathlib import Path

    from covet.config import Settings
    from covet.logging import LoggingOptions, configure_logging

    options = LoggingOptions.from_settings(settings or Settings(root=Path.cwd()))
    configure_logging(options)


async def _serve(
    app_path: str | None,
    options: dict[str, Any],
    burst: bool,
) -> None:
    from covet.jobs.worker import Worker

    async with jobs_runtime(app_path) as runtime:
        jobs = runtime.jobs
        worker: Worker = Worker(
            runtime.backend,
            queues=options["queues"] or jobs.queues,
            concurrency=options["concurrency"] or jobs.concurrency,
            visibility_timeout=options["visibility_timeout"] or jobs.visibility_timeout,
            poll_interval=options["poll_interval"] or jobs.poll_interval,
            shutdown_timeout=options["shutdown_timeout"] or jobs.shutdown_timeout,
            schedules=jobs.schedules,
            run_schedules=not options["no_schedules"],
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        try:
            await worker.run(burst=burst)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


@click.command("worker")
@click.option(
    "--app",
    "app_path",
    default=None,
    metavar="MODULE:ATTR",
    help="The application to start (default: [tool.covet] app).",
)
@click.option(
    "-q",
    "--queue",
    "queues",
    multiple=True,
    metavar="QUEUE",
    help="A queue to serve; repeat for several (default: [tool.covet.jobs] queues, or default).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 10000),
    default=None,
    help="How many jobs run at once (default: [tool.covet.jobs] concurrency, or 10).",
)
@click.option(
    "--visibility-timeout",
    type=click.FloatRange(0.1, min_open=False),
    default=None,
    metavar="SECONDS",
    help="How long a job's lease lasts between heartbeats; a dead worker's jobs run again "
    "after it (default 30).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.01),
    default=None,
    metavar="SECONDS",
    help="How long an idle worker waits before looking for jobs again (default 0.5).",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(0.0),
    default=None,
    metavar="SECONDS",
    help="After SIGTERM, how long running jobs may take before they are put back (default 20).",
)
@click.option("--no-schedules", is_flag=True, help="Do not fire cron schedules in this worker.")
@click.option("--burst", is_flag=True, help="Run the jobs that are due, then exit.")
def worker_command(
    app_path: str | None,
    queues: tuple[str, ...],
    concurrency: int | None,
    visibility_timeout: float | None,
    poll_interval: float | None,
    shutdown_timeout: float | None,
    no_schedules: bool,
    burst: bool,
) -> None:
    """Run background jobs (and cron schedules) until SIGTERM or Ctrl+C."""
    from covet.cli._common import project_settings

    _configure_logging(project_settings(app_path))
    options = {
        "queues": queues,
        "concurrency": concurrency,
        "visibility_timeout": visibility_timeout,
        "poll_interval": poll_interval,
        "shutdown_timeout": shutdown_timeout if shutdown_timeout != 0 else 0.001,
        "no_schedules": no_schedules,
    }
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(app_path, options, burst))
