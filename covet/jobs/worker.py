"""The worker: takes jobs from queues, runs them, retries them, fires schedules.

:class:`Worker` is what ``covet worker`` runs; it can also run inside any
event loop (``await Worker(...).run(burst=True)`` processes what is due and
returns, which suits tests and scripts).

- It claims up to ``concurrency`` jobs at a time, under leases of
  ``visibility_timeout`` seconds, renewed by a heartbeat every third of that.
  A job whose worker died is taken again by another once its lease ran out.
- A job that raises (or outlives its ``timeout``) is retried after its backoff
  while it has attempts left, then kept as failed with its traceback.
- :meth:`Worker.stop` (``covet worker`` calls it on SIGTERM or Ctrl+C) stops
  claiming and lets running jobs finish for ``shutdown_timeout`` seconds; jobs
  still running then are cancelled and put back on their queues at once, without
  spending an attempt. A second stop does that immediately.
- While a job runs, log records carry its ``job_id`` and, as ``request_id``,
  the id of the request that enqueued it (:class:`covet.logging.RequestContextFilter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
import traceback
from typing import TYPE_CHECKING, Any

from covet._context import JobContext, current_job, current_request
from covet.exceptions import ImproperlyConfigured
from covet.jobs import core
from covet.jobs.core import DEFAULT_QUEUE, ClaimedJob, decode_arguments, find_job
from covet.jobs.schedules import Schedule, registered_schedules, sleep_until

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.jobs.backends.base import JobBackend

__all__ = ("Worker",)

logger = logging.getLogger("covet.jobs")

#: Seconds between two attempts to reach a backend that failed.
_ERROR_PAUSE = (0.1, 0.5, 1.0, 2.0, 5.0)
#: How often (seconds) the queue-depth gauge of observers is refreshed.
_COUNTS_EVERY = 15.0


def _worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Run jobs from ``queues`` on ``backend``.

    Args:
        backend: Where the jobs are; the configured backend by default.
        queues: The queues to serve, in no particular order.
        concurrency: How many jobs run at once.
        visibility_timeout: Seconds a claimed job stays invisible to other
            workers without a heartbeat; a dead worker's jobs run again after it.
        poll_interval: Seconds an idle worker waits before looking again.
        shutdown_timeout: Seconds running jobs get to finish after :meth:`stop`.
        schedules: Cron schedules to fire (besides the ones registered in code,
            unless ``run_schedules`` is False).
        run_schedules: Fire schedules at all.

    Raises:
        ImproperlyConfigured: For an invalid option.
    """

    def __init__(
        self,
        backend: JobBackend | None = None,
        *,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        concurrency: int = 10,
        visibility_timeout: float = 30.0,
        poll_interval: float = 0.5,
        shutdown_timeout: float = 20.0,
        schedules: Sequence[Schedule] = (),
        run_schedules: bool = True,
    ) -> None:
        given: object = concurrency
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise ImproperlyConfigured(
                f"Worker got concurrency={concurrency!r}. Pass a whole number, 1 or more."
            )
        for name, value in (
            ("visibility_timeout", visibility_timeout),
            ("poll_interval", poll_interval),
            ("shutdown_timeout", shutdown_timeout),
        ):
            if not value > 0:
                raise ImproperlyConfigured(f"Worker got {name}={value!r}. Pass seconds, above 0.")
        if not queues:
            raise ImproperlyConfigured("Worker got no queues. Pass at least one, e.g. ['default'].")
        if backend is None:
            from covet.jobs.settings import get_backend

            backend = get_backend()
        self.backend = backend
        self.queues = tuple(dict.fromkeys(queues))
        self.concurrency = concurrency
        self.visibility_timeout = float(visibility_timeout)
        self.poll_interval = float(poll_interval)
        self.shutdown_timeout = float(shutdown_timeout)
        self.run_schedules = run_schedules
        self._extra_schedules = tuple(schedules)
        self.id = _worker_id()
        self._running: dict[str, tuple[ClaimedJob, asyncio.Task[None]]] = {}
        self._user_tasks: dict[str, asyncio.Task[Any]] = {}
        self._stopping: asyncio.Event | None = None
        self._slot = asyncio.Event()
        self._wake = asyncio.Event()
        self._completed: list[tuple[ClaimedJob, asyncio.Future[bool]]] = []
        self._completer: asyncio.Task[None] | None = None
        self._releasing = False
        self._stop_requests = 0
        self.processed = 0

    def __repr__(self) -> str:
        return f"<Worker {self.id} queues={list(self.queues)} backend={self.backend!r}>"

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """Return the schedules this worker fires: its own, then the registered ones."""
        if not self.run_schedules:
            return ()
        found = {item.name: item for item in self._extra_schedules}
        for item in registered_schedules():
            found.setdefault(item.name, item)
        return tuple(found.values())

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; the first call lets running jobs finish (up to ``shutdown_timeout``).

        A second call cancels the running jobs at once and puts them back on their queues.
        """
        self._stop_requests += 1
        if self._stopping is not None:
            self._stopping.set()
        self._slot.set()
        if self._stop_requests > 1:
            self._cancel_running()

    def _cancel_running(self) -> None:
        self._releasing = True
        for task in self._user_tasks.values():
            task.cancel()

    async def run(self, *, burst: bool = False) -> None:
        """Serve the queues until :meth:`stop` (or, with ``burst``, until nothing is due).

        Raises:
            JobsError: The backend cannot be used (the job tables are missing, say).
        """
        await self.backend.check()
        self._stopping = stopping = asyncio.Event()
        if self._stop_requests:
            stopping.set()
        schedules = self.schedules
        logger.info(
            "Worker %s serving %s (concurrency %d) on %s",
            self.id,
            ", ".join(self.queues),
            self.concurrency,
            self.backend.kind,
            extra={"worker": self.id, "queues": list(self.queues)},
        )
        helpers = [asyncio.create_task(self._heartbeat_loop())]
        if schedules and not burst:
            helpers.append(asyncio.create_task(self._schedule_loop(schedules)))
        try:
            await self._fetch_loop(burst)
        finally:
            stopping.set()
            await self._drain()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            logger.info("Worker %s stopped", self.id, extra={"worker": self.id})

    async def _drain(self) -> None:
        """Let running jobs finish for ``shutdown_timeout``, then cancel and release them."""
        tasks = [task for _job, task in self._running.values()]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.shutdown_timeout)
        if pending:
            logger.warning(
                "%d job(s) still running after %.0f s: cancelling them and putting them back "
                "on their queues",
                len(pending),
                self.shutdown_timeout,
            )
            self._cancel_running()
            await asyncio.wait(pending, timeout=max(5.0, self.visibility_timeout))

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, waking early when the worker is stopped."""
        assert self._stopping is not None  # noqa: S101 - set by run()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    # -- claiming -----------------------------------------------------------------------------

    async def _fetch_loop(self, burst: bool) -> None:
        assert self._stopping is not None  # noqa: S101 - set by run()
        errors = 0
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            if free <= 0:
                self._slot.clear()
                await self._slot.wait()
                continue
            try:
                claimed = await self.backend.claim(
                    self.queues, free, self.id, self.visibility_timeout
                )
            except Exception:
                pause = _ERROR_PAUSE[min(errors, len(_ERROR_PAUSE) - 1)]
                errors += 1
                logger.warning(
                    "Could not take jobs from the %s backend; trying again in %.1f s",
                    self.backend.kind,
                    pause,
                    exc_info=True,
                )
                await self._pause(pause)
                continue
            errors = 0
            for claimed_job in claimed:
                task = asyncio.create_task(self._execute(claimed_job))
                self._running[claimed_job.id] = (claimed_job, task)
                task.add_done_callback(functools.partial(self._finished, claimed_job.id))
            if len(claimed) < free:
                if burst:
                    if not self._running:
                        return
                    self._slot.clear()
                    await self._slot.wait()
                    continue
                await self._idle_wait()

    async def _idle_wait(self) -> None:
        assert self._stopping is not None  # noqa: S101 - set by run()
        if self._wake.is_set():
            self._wake.clear()
            return
        waiter = asyncio.ensure_future(self.backend.wait(self.queues, self.poll_interval))
        stopper = asyncio.ensure_future(self._stopping.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        futures = (waiter, stopper, woken)
        try:
            await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in futures:
                future.cancel()
            await asyncio.gather(*futures, return_exceptions=True)
            self._wake.clear()

    def _finished(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._slot.set()

    # -- running one job ----------------------------------------------------------------------

    async def _execute(self, job: ClaimedJob) -> None:
        context = JobContext(job.id, job.name, job.queue, job.attempt, job.request_id, job.run_at)
        current_request.set(None)
        current_job.set(context)
        started = time.time()
        for observer in core.observers():
            observer.job_started(job)
        outcome = "failed"
        try:
            outcome = await self._attempt(job)
        finally:
            duration = time.time() - started
            self.processed += 1
            for observer in core.observers():
                observer.job_finished(job, outcome, duration)

    async def _attempt(self, job: ClaimedJob) -> str:
        """Run ``job`` once and record the result; return the outcome."""
        definition = None
        try:
            definition = find_job(job.name)
            args, kwargs = decode_arguments(job.payload)
            runner = asyncio.create_task(
                self._call(definition.func, definition.timeout, args, kwargs)
            )
            self._user_tasks[job.id] = runner
            try:
                await runner
            finally:
                self._user_tasks.pop(job.id, None)
        except asyncio.CancelledError:
            if not self._releasing:
                raise
            released = await self._record(self.backend.release(job, self.id), job)
            logger.warning(
                "Job %s (%s) was interrupted by the worker stopping and put back on queue %r",
                job.id,
                job.name,
                job.queue,
                extra={"released": released},
            )
            return "released"
        except Exception as exc:  # noqa: BLE001 - a job's failure is recorded, never raised
            return await self._failed(job, definition, exc)
        if not await self._record(self._complete(job), job):
            logger.warning(
                "Job %s (%s) succeeded after its lease ran out: another worker may run it "
                "again. Raise visibility_timeout above the longest pause between heartbeats.",
                job.id,
                job.name,
            )
        logger.debug("Job %s (%s) succeeded", job.id, job.name)
        return "succeeded"

    async def _complete(self, job: ClaimedJob) -> bool:
        """Remove ``job`` with the others that finish meanwhile (one statement per batch)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._completed.append((job, done))
        if self._completer is None or self._completer.done():
            self._completer = asyncio.create_task(self._complete_batches())
        return await done

    async def _complete_batches(self) -> None:
        while self._completed:
            batch, self._completed = self._completed, []
            try:
                removed = await self.backend.complete_many([job for job, _ in batch], self.id)
            except Exception as exc:  # noqa: BLE001 - handed to each job's _record(), which logs it
                for _job, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for job, done in batch:
                if not done.done():
                    done.set_result(job.id in removed)

    @staticmethod
    async def _call(
        func: Any, limit: float | None, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        async with asyncio.timeout(limit):
            await func(*args, **kwargs)

    async def _failed(self, job: ClaimedJob, definition: Any, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError) and definition is not None:
            summary = f"timed out after {definition.timeout:g} s"
        else:
            summary = f"{type(exc).__name__}: {exc}"
        error = "".join(traceback.format_exception(exc))
        if isinstance(exc, TimeoutError) and definition is not None:
            error += f"\nThe job timed out after {definition.timeout:g} s (@job(timeout=...)).\n"
        if definition is not None and job.attempt < job.max_attempts:
            delay = definition.retry_delay(job.attempt)
            await self._record(self.backend.retry(job, self.id, delay, error), job)
            logger.warning(
                "Job %s (%s) failed on attempt %d of %d (%s); retrying in %.1f s",
                job.id,
                job.name,
                job.attempt,
                job.max_attempts,
                summary,
                delay,
            )
            return "retried"
        await self._record(self.backend.fail(job, self.id, error), job)
        logger.error(
            "Job %s (%s) failed on attempt %d of %d (%s); kept as failed",
            job.id,
            job.name,
            job.attempt,
            job.max_attempts,
            summary,
            exc_info=exc,
        )
        return "failed"

    async def _record(self, operation: Any, job: ClaimedJob) -> bool:
        """Await a backend call that records a job's end, never letting cancellation cut it.

        A failed call is logged: the lease then runs out and the job runs again.
        """
        task = asyncio.ensure_future(operation)
        try:
            return bool(await asyncio.shield(task))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            raise
        except Exception:
            logger.warning(
                "Could not record the end of job %s (%s); it will run again once its lease "
                "runs out",
                job.id,
                job.name,
                exc_info=True,
            )
            return False

    # -- heartbeats and schedules -------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.visibility_timeout / 3
        last_counts = 0.0
        while True:
            await asyncio.sleep(interval)
            jobs = [job for job, _task in self._running.values()]
            try:
                await self.backend.heartbeat(self.id, jobs, self.visibility_timeout)
                recovered = await self.backend.recover()
                if recovered:
                    logger.warning(
                        "Put back %d job(s) whose worker stopped renewing its lease", recovered
                    )
                watchers = [o for o in core.observers() if hasattr(o, "queue_counts")]
                if watchers and time.monotonic() - last_counts >= _COUNTS_EVERY:
                    last_counts = time.monotonic()
                    counts = await self.backend.counts()
                    for watcher in watchers:
                        watcher.queue_counts(counts)
            except Exception:
                logger.warning("Job heartbeat failed", exc_info=True)

    async def _schedule_loop(self, schedules: tuple[Schedule, ...]) -> None:
        seen: dict[str, float] = {}
        while True:
            now = time.time()
            for item in schedules:
                tick = item.latest_tick(now)
                if seen.get(item.name) == tick:
                    continue
                try:
                    if await self._fire(item, tick):
                        logger.info("Schedule %r fired for its tick at %.0f", item.name, tick)
                        self._wake.set()  # its job is due now: look without waiting
                    seen[item.name] = tick
                except Exception:
                    logger.warning("Schedule %r could not fire", item.name, exc_info=True)
            # Wake just after the next tick; clocks may jitter by a few milliseconds.
            await asyncio.sleep(sleep_until(time.time(), schedules, 60.0) + 0.01)

    async def _fire(self, item: Schedule, tick: float) -> bool:
        definition = find_job(item.job)
        call = definition.options(unique_key=f"schedule:{item.name}:{tick:.0f}")
        new = call.build(item.args, item.kwargs, run_at=tick)
        return await self.backend.fire_schedule(item.name, tick, new)
