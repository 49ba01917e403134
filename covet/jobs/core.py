"""The ``@job`` decorator, the job registry and what a job looks like on the queue.

A job is an ``async def`` function registered under a name (by default
``"module:qualname"``, which the worker can import). Its arguments are stored
as JSON, so they must be JSON values: checked at enqueue time, naming the
argument that is not.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import math
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

from covet import _json
from covet._context import JobContext, current_request
from covet._context import current_job as _current_job
from covet.exceptions import CovetError, ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Mapping

    from covet.jobs.backends.base import JobBackend

__all__ = (
    "DEFAULT_QUEUE",
    "ClaimedJob",
    "Job",
    "JobArgumentError",
    "JobCall",
    "JobInfo",
    "JobObserver",
    "JobsError",
    "NewJob",
    "UnknownJobError",
    "add_observer",
    "current_job",
    "find_job",
    "job",
    "new_job_id",
    "registered_jobs",
    "remove_observer",
)

P = ParamSpec("P")
R = TypeVar("R")

#: The queue of a job that names none.
DEFAULT_QUEUE = "default"
#: The longest queue name, job name and unique key (the database columns' sizes).
MAX_QUEUE_LENGTH = 100
MAX_NAME_LENGTH = 255
MAX_UNIQUE_KEY_LENGTH = 255
#: Retry delays never exceed this many seconds, however many attempts failed.
MAX_BACKOFF = 3600.0


class JobsError(CovetError):
    """A background job could not be defined, enqueued or found."""


class JobArgumentError(JobsError, TypeError):
    """A job was given an argument that cannot be stored as JSON, or a wrong signature."""


class UnknownJobError(JobsError, LookupError):
    """A worker was handed a job whose name no imported module defines."""


def new_job_id() -> str:
    """Return a new job id: 32 hex digits, milliseconds first, so ids sort by creation."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job about to be put on a queue (what a backend's ``enqueue`` stores).

    Attributes:
        id: The job id (:func:`new_job_id`).
        name: The registered name of the job function.
        queue: The queue it goes to.
        payload: The arguments as JSON text (``{"args": [...], "kwargs": {...}}``).
        max_attempts: How many times it may run (retries + 1).
        run_at: When it may run (Unix time); None for "now" (the backend's clock).
        delay: Seconds to wait from the backend's "now" (used when ``run_at`` is None).
        unique_key: While a job with this key waits or runs, no other is added.
        request_id: The id of the request that enqueued it.
        enqueued_at: When it was enqueued (Unix time).
    """

    id: str
    name: str
    queue: str
    payload: str
    max_attempts: int
    run_at: float | None = None
    delay: float = 0.0
    unique_key: str | None = None
    request_id: str | None = None
    enqueued_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker took from its queue, under a lease.

    Attributes:
        id: The job id.
        name: The registered name of the job function.
        queue: Its queue.
        payload: The arguments as JSON text.
        attempt: Which attempt this is (1 for the first run); it also identifies
            the lease, so a worker that lost it cannot finish someone else's run.
        max_attempts: How many attempts it has in all.
        run_at: When it was due (Unix time).
        enqueued_at: When it was enqueued (Unix time).
        request_id: The id of the request that enqueued it.
    """

    id: str
    name: str
    queue: str
    payload: str
    attempt: int
    max_attempts: int
    run_at: float
    enqueued_at: float
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job as ``covet jobs list`` shows it.

    Attributes:
        id: The job id.
        name: The job function's name.
        queue: Its queue.
        status: ``"queued"`` (waiting, maybe until ``run_at``), ``"running"`` or ``"failed"``.
        attempts: How many times it started.
        max_attempts: How many times it may start.
        run_at: When it is (or was) due, Unix time.
        enqueued_at: When it was enqueued, Unix time.
        finished_at: When it failed for good, Unix time, or None.
        error: The traceback of its last failure, or None.
        worker: The worker running it, or None.
        payload: The arguments as JSON text.
    """

    id: str
    name: str
    queue: str
    status: str
    attempts: int
    max_attempts: int
    run_at: float
    enqueued_at: float
    finished_at: float | None = None
    error: str | None = None
    worker: str | None = None
    payload: str = "{}"


class JobObserver(Protocol):
    """Something told about jobs: enqueued (any process), started and finished (workers).

    Methods must not raise. :class:`covet.jobs.metrics.JobMetrics` is one.
    """

    def job_enqueued(self, name: str, queue: str) -> None:
        """Note that a job ``name`` was put on ``queue``."""

    def job_started(self, job: ClaimedJob) -> None:
        """Note that a worker started ``job`` (``time.time() - job.run_at`` is its wait)."""

    def job_finished(self, job: ClaimedJob, outcome: str, duration: float) -> None:
        """Note that ``job`` ended: ``outcome`` is succeeded, retried, failed or released."""


_observers: list[JobObserver] = []


def add_observer(observer: JobObserver) -> None:
    """Tell ``observer`` about every job of this process from now on."""
    if observer not in _observers:
        _observers.append(observer)


def remove_observer(observer: JobObserver) -> None:
    """Stop telling ``observer`` (nothing happens when it was not added)."""
    if observer in _observers:
        _observers.remove(observer)


def observers() -> tuple[JobObserver, ...]:
    """Return the observers added with :func:`add_observer`."""
    return tuple(_observers)


# -- arguments --------------------------------------------------------------------------------


def _find_unserialisable(value: Any, path: str, depth: int = 0) -> tuple[str, Any] | None:
    """Return (where, value) of the first part of ``value`` that is not a JSON value."""
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if depth > 100:
        return (path, value)
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unserialisable(item, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (f"{path} key {key!r}", key)
            found = _find_unserialisable(item, f"{path}[{key!r}]", depth + 1)
            if found is not None:
                return found
        return None
    return (path, value)


def encode_arguments(name: str, arguments: Mapping[str, Any], signature: inspect.Signature) -> str:
    """Return the JSON payload for the bound ``arguments`` of job ``name``.

    Raises:
        JobArgumentError: Naming the argument (and the part of it) that is not
            a JSON value: None, bool, int, finite float, str, list/tuple, or
            dict with string keys.
    """
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter_name, value in arguments.items():
        found = _find_unserialisable(value, "")
        if found is not None:
            where, bad = found
            inside = f" (at {where.strip()})" if where else ""
            raise JobArgumentError(
                f"Argument {parameter_name!r}{inside} of job {name!r} is {bad!r} "
                f"({type(bad).__name__}), which "
                "cannot be stored as JSON. Pass JSON values (str, int, float, bool, None, "
                "lists, dicts with str keys): an id instead of a model instance, an ISO "
                "string instead of a datetime."
            )
        kind = signature.parameters[parameter_name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        elif kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[parameter_name] = value
    return _json.dumps({"args": args, "kwargs": kwargs}).decode("utf-8")


def decode_arguments(payload: str) -> tuple[list[Any], dict[str, Any]]:
    """Return the positional and keyword arguments stored in ``payload``."""
    data = _json.loads(payload)
    return list(data.get("args", ())), dict(data.get("kwargs", {}))


def _as_delay(value: float | datetime.timedelta, what: str) -> float:
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise JobArgumentError(f"{what} must be a number of seconds or a timedelta, got {value!r}.")
    if not math.isfinite(seconds) or seconds < 0:
        raise JobArgumentError(f"{what} must be zero or more seconds, got {value!r}.")
    return float(seconds)


def _as_timestamp(when: datetime.datetime) -> float:
    if not isinstance(when, datetime.datetime):
        raise JobArgumentError(
            f"enqueue_at() needs a datetime, got {when!r}. Pass an aware datetime such as "
            "datetime.now(UTC) + timedelta(hours=1), or use enqueue_in(seconds)."
        )
    if when.tzinfo is None:
        raise JobArgumentError(
            f"enqueue_at() got the naive datetime {when!r}, whose time zone is unknown. "
            "Pass an aware one, e.g. datetime(..., tzinfo=UTC)."
        )
    return when.timestamp()


def _origin_request_id() -> str | None:
    request = current_request.get()
    if request is not None:
        return request.request_id
    running = _current_job.get()
    return None if running is None else running.request_id


def current_job() -> JobContext | None:
    """Return the job running in this task (id, name, queue, attempt, request id, due time).

    None outside a job. A job can read which attempt it is on, or its
    schedule's tick (``run_at``) when a schedule enqueued it.
    """
    return _current_job.get()


# -- the decorator ----------------------------------------------------------------------------

_registry: dict[str, Job[..., Any]] = {}


def registered_jobs() -> Mapping[str, Job[..., Any]]:
    """Return the jobs defined so far in this process, by name."""
    return dict(_registry)


def find_job(name: str) -> Job[..., Any]:
    """Return the job called ``name``, importing its module when it is ``"module:qualname"``.

    Raises:
        UnknownJobError: No such job is defined, naming what to import.
    """
    found = _registry.get(name)
    if found is not None:
        return found
    from covet.config import import_from_string

    try:
        obj = import_from_string(name)
    except ImproperlyConfigured as exc:
        raise UnknownJobError(
            f"No job called {name!r} is defined in this worker ({exc}). Import the module "
            "that defines it: list it in [tool.covet.jobs] modules, or import it from the app."
        ) from exc
    found = _registry.get(name)
    if found is None and isinstance(obj, Job):
        found = obj
    if found is None:
        raise UnknownJobError(f"{name!r} is {obj!r}, not a job. Decorate the function with @job().")
    return found


def _check_name(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ImproperlyConfigured(
            f"{what} must be a non-empty string of at most {limit} characters, got {value!r}."
        )
    return value


class JobCall(Generic[P]):
    """A job with options for one enqueue: ``await send.options(queue="mail").enqueue(...)``.

    Args:
        job: The job.
        queue: The queue, instead of the job's.
        unique_key: An idempotency key: while a job with this key waits or runs,
            enqueueing another returns the waiting one's id instead.
        backend: Where to enqueue, instead of the configured backend.
    """

    def __init__(
        self,
        job: Job[P, Any],
        *,
        queue: str | None = None,
        unique_key: str | None = None,
        backend: JobBackend | None = None,
    ) -> None:
        self.job: Job[P, Any] = job
        self.queue: str = (
            job.queue if queue is None else _check_name(queue, "queue", MAX_QUEUE_LENGTH)
        )
        if unique_key is not None:
            _check_name(unique_key, "unique_key", MAX_UNIQUE_KEY_LENGTH)
        self.unique_key = unique_key
        self.backend = backend

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Put a run of the job with these arguments on its queue; return the job id.

        Inside ``transaction()`` the job is part of the transaction on the
        database backend and sent at commit on Redis: after a rollback there is
        no job.

        Raises:
            JobArgumentError: The arguments do not fit the function or are not JSON values.
        """
        return await self._enqueue(None, 0.0, args, kwargs)

    async def enqueue_in(
        self, delay: float | datetime.timedelta, /, *args: P.args, **kwargs: P.kwargs
    ) -> str:
        """Like :meth:`enqueue`, to run ``delay`` (seconds or a timedelta) from now."""
        return await self._enqueue(None, _as_delay(delay, "enqueue_in() delay"), args, kwargs)

    async def enqueue_at(
        self, when: datetime.datetime, /, *args: P.args, **kwargs: P.kwargs
    ) -> str:
        """Like :meth:`enqueue`, to run at ``when`` (an aware datetime) or as soon after."""
        return await self._enqueue(_as_timestamp(when), 0.0, args, kwargs)

    def build(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        run_at: float | None = None,
        delay: float = 0.0,
    ) -> NewJob:
        """Return the :class:`NewJob` for a call with ``args`` and ``kwargs`` (nothing is sent).

        Raises:
            JobArgumentError: The arguments do not fit the function or are not JSON values.
        """
        job = self.job
        try:
            bound = job.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise JobArgumentError(
                f"Job {job.name!r} cannot be called with these arguments: {exc}. Pass what "
                f"the function takes: {job.name.rpartition(':')[2]}{job.signature}."
            ) from None
        payload = encode_arguments(job.name, bound.arguments, job.signature)
        unique_key = self.unique_key
        if unique_key is None and job.unique is not False:
            unique_key = job.unique_key_for(args, kwargs, payload)
        return NewJob(
            id=new_job_id(),
            name=job.name,
            queue=self.queue,
            payload=payload,
            max_attempts=job.retries + 1,
            run_at=run_at,
            delay=delay,
            unique_key=unique_key,
            request_id=_origin_request_id(),
            enqueued_at=time.time(),
        )

    async def _enqueue(
        self,
        run_at: float | None,
        delay: float,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> str:
        new = self.build(args, kwargs, run_at=run_at, delay=delay)
        backend = self.backend
        if backend is None:
            from covet.jobs.settings import get_backend

            backend = get_backend()
        job_id = await backend.enqueue(new)
        for observer in _observers:
            observer.job_enqueued(new.name, new.queue)
        return job_id


class Job(JobCall[P], Generic[P, R]):
    """An ``async def`` function that can also be run later by a worker (see :func:`job`).

    Calling it runs the function now, in this process; :meth:`enqueue`,
    :meth:`enqueue_in` and :meth:`enqueue_at` put a run on its queue.

    Attributes:
        func: The decorated function.
        name: The name it is registered and stored under.
        retries: How many times a failed run is tried again.
        backoff: Seconds before the first retry, doubled at each further one;
            or a function of the failed attempt's number returning seconds.
        timeout: Seconds a run may take before it is cancelled and counted as
            failed (None: no limit).
        unique: False, True (one waiting job per set of arguments), or a
            function of the arguments returning a key.
    """

    def __init__(
        self,
        func: Callable[P, Awaitable[R]],
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        retries: int = 3,
        backoff: float | Callable[[int], float] = 10.0,
        timeout: float | None = 300.0,
        unique: bool | Callable[..., str] = False,
    ) -> None:
        if not inspect.iscoroutinefunction(func):
            raise ImproperlyConfigured(
                f"@job() decorates async functions, and {func!r} is not one. Write it as "
                "`async def`."
            )
        self.func = func
        self.name = _check_name(
            name or f"{func.__module__}:{func.__qualname__}", "The job name", MAX_NAME_LENGTH
        )
        given: object = retries
        if isinstance(given, bool) or not isinstance(given, int) or given < 0:
            raise ImproperlyConfigured(
                f"Job {self.name!r} got retries={retries!r}. Pass a whole number, 0 or more."
            )
        amount: object = backoff
        if not callable(amount) and (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not 0 <= amount < math.inf
        ):
            raise ImproperlyConfigured(
                f"Job {self.name!r} got backoff={backoff!r}. Pass seconds (doubled at each "
                "retry) or a function of the attempt number returning seconds."
            )
        limit: object = timeout
        if limit is not None and (
            isinstance(limit, bool)
            or not isinstance(limit, (int, float))
            or not 0 < limit < math.inf
        ):
            raise ImproperlyConfigured(
                f"Job {self.name!r} got timeout={timeout!r}. Pass seconds, or None for no limit."
            )
        if not isinstance(unique, bool) and not callable(unique):
            raise ImproperlyConfigured(
                f"Job {self.name!r} got unique={unique!r}. Pass True, False, or a function "
                "of the job's arguments returning a key."
            )
        self.retries = retries
        self.backoff = backoff
        self.timeout = None if timeout is None else float(timeout)
        self.unique = unique
        self.signature = inspect.signature(func)
        super().__init__(self, queue=_check_name(queue, "queue", MAX_QUEUE_LENGTH))
        functools.update_wrapper(self, func)
        existing = _registry.get(self.name)
        if existing is not None and existing.func.__module__ != func.__module__:
            raise ImproperlyConfigured(
                f"Two jobs are called {self.name!r}: {existing.func!r} and {func!r}. Give "
                "one of them another name with @job(name=...)."
            )
        # A module imported again (a reload, a test) replaces its own jobs.
        _registry[self.name] = self

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Run the function now, in this process (no queue, no retries)."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Job {self.name} queue={self.queue!r}>"

    def options(
        self,
        *,
        queue: str | None = None,
        unique_key: str | None = None,
        backend: JobBackend | None = None,
    ) -> JobCall[P]:
        """Return the job with options for one enqueue (see :class:`JobCall`)."""
        return JobCall(self, queue=queue, unique_key=unique_key, backend=backend)

    def retry_delay(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt ``attempt`` (1-based)."""
        backoff = self.backoff
        if callable(backoff):
            delay = float(backoff(attempt))
        else:
            delay = float(backoff) * 2.0 ** min(attempt - 1, 60)
        return min(max(delay, 0.0), MAX_BACKOFF)

    def unique_key_for(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], payload: str) -> str:
        """Return the idempotency key of a call: the job's ``unique`` function, else its arguments.

        Raises:
            JobArgumentError: The ``unique`` function did not return a non-empty string.
        """
        unique = self.unique
        if callable(unique):
            made: object = unique(*args, **kwargs)
            if not isinstance(made, str) or not made:
                raise JobArgumentError(
                    f"The unique= function of job {self.name!r} returned {made!r}. Return a "
                    "non-empty string."
                )
            key = f"{self.name}:{made}"
        else:
            digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
            key = f"{self.name}:{digest}"
        if len(key) > MAX_UNIQUE_KEY_LENGTH:
            key = f"{self.name[:150]}:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"
        return key


@overload
def job(func: Callable[P, Coroutine[Any, Any, R]], /) -> Job[P, R]: ...


@overload
def job(
    *,
    name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    retries: int = 3,
    backoff: float | Callable[[int], float] = 10.0,
    timeout: float | None = 300.0,
    unique: bool | Callable[..., str] = False,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Job[P, R]]: ...


def job(
    func: Callable[P, Coroutine[Any, Any, R]] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    retries: int = 3,
    backoff: float | Callable[[int], float] = 10.0,
    timeout: float | None = 300.0,
    unique: bool | Callable[..., str] = False,
) -> Job[P, R] | Callable[[Callable[P, Coroutine[Any, Any, R]]], Job[P, R]]:
    """Make an ``async def`` function a background job; ``@job`` or ``@job(...)``.

    ::

        @job(queue="mail", retries=5)
        async def send_welcome(user_id: int) -> None: ...

        await send_welcome.enqueue(user.id)

    Args:
        func: The function (when used as ``@job`` without parentheses).
        name: The stored name; by default ``"module:qualname"``, which a
            worker imports when it meets the job first.
        queue: The queue its runs go to (a worker serves the queues it is given).
        retries: How many times a failed run is tried again (so ``retries + 1``
            attempts in all); a worker killed mid-run counts as an attempt.
        backoff: Seconds before the first retry, doubled for each further one
            (at most an hour); or a function of the failed attempt number.
        timeout: Seconds a run may take before it is cancelled and counts as
            failed; None for no limit.
        unique: True keeps one waiting-or-running job per set of arguments
            (enqueueing a duplicate returns the existing job's id); a function
            of the arguments returning a string picks the key itself.

    Raises:
        ImproperlyConfigured: For a function that is not ``async def`` or an invalid option.
    """

    def decorate(function: Callable[P, Coroutine[Any, Any, R]]) -> Job[P, R]:
        return Job(
            function,
            name=name,
            queue=queue,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            unique=unique,
        )

    if func is not None:
        return decorate(func)
    return decorate
