"""Structured logging: one configuration for the app, the access log and the slow-query log.

Nothing happens on import. Call :func:`configure_logging` once, early (the
scaffolded ``app.py`` does; ``covet run`` hands the same configuration to
every worker)::

    from covet.logging import LoggingOptions, configure_logging

    configure_logging(LoggingOptions(debug=False, slow_query_ms=200))

It is plain :mod:`logging` underneath: :func:`logging_config` returns the
:func:`logging.config.dictConfig` dictionary, which you may extend. It gives

- one line of JSON per record in production, readable lines in debug;
- ``request_id`` and ``user_id`` on every record emitted while a request is
  served (ORM, background tasks and your own loggers included), from
  :data:`covet._context.current_request`;
- the access log, on the ``covet.access`` logger (method, path, route name,
  status, duration, bytes, request id, user id, client), written by covet
  itself at the end of each request; ``covet run`` turns uvicorn's off;
- the slow-query log, on the ``covet.db.slow`` logger: each statement slower
  than ``slow_query_ms``, with its SQL (never its parameters), duration and
  the line of your code that ran it.

The access log is on while the ``covet.access`` logger is enabled for
``INFO`` when the app starts; otherwise a request pays one attribute check.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from covet._context import RequestContext, current_job, current_request
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType

    from covet.config import Settings
    from covet.db.querylog import CapturedQuery

__all__ = (
    "AccessLog",
    "DevFormatter",
    "JSONFormatter",
    "LoggingOptions",
    "RequestContextFilter",
    "SlowQueryFilter",
    "StreamHandler",
    "configure_logging",
    "logging_config",
)

access_logger = logging.getLogger("covet.access")
slow_query_logger = logging.getLogger("covet.db.slow")

_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "user_id", "taskName", "context"}
    # uvicorn's copy of the message with terminal colour codes: noise in a JSON line.
    | {"color_message"}
)
#: What a JSON line never copies from a record's attributes: the record's own and
#: the line's fixed keys (an ``extra`` named ``time`` does not replace the time).
_FORMATTED_ATTRIBUTES = _RECORD_ATTRIBUTES | {"time", "level", "logger"}


@dataclass(frozen=True, slots=True)
class LoggingOptions:
    """What :func:`configure_logging` sets up.

    Attributes:
        debug: Development mode: readable lines (unless ``format`` says otherwise).
        level: The level of the root logger (``"INFO"``, ``"DEBUG"``...).
        format: ``"json"`` or ``"text"``; None picks text in debug, JSON otherwise.
        access_log: Write covet's access log (and switch uvicorn's off).
        slow_query_ms: Log statements taking at least this many milliseconds
            on ``covet.db.slow``; None turns the slow-query log off.
    """

    debug: bool = False
    level: str = "INFO"
    format: Literal["json", "text"] | None = None
    access_log: bool = True
    slow_query_ms: float | None = None

    def __post_init__(self) -> None:
        if self.level.upper() not in _LEVELS:
            raise ImproperlyConfigured(
                f"Invalid log level {self.level!r}. Use one of {', '.join(_LEVELS)}."
            )
        if self.format not in (None, "json", "text"):
            raise ImproperlyConfigured(f"Invalid log format {self.format!r}. Use 'json' or 'text'.")
        if self.slow_query_ms is not None and not self.slow_query_ms >= 0:
            raise ImproperlyConfigured(
                f"Invalid slow_query_ms {self.slow_query_ms!r}. Use a number of "
                "milliseconds (0 logs every statement), or None to turn it off."
            )

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> LoggingOptions:
        """Read the options from project settings and the environment.

        ``debug`` comes from the settings; ``COVET_LOG_LEVEL``,
        ``COVET_LOG_FORMAT``, ``COVET_ACCESS_LOG`` (``0``/``1``) and
        ``COVET_SLOW_QUERY_MS`` from the environment, else the project's ``.env``.

        Raises:
            ImproperlyConfigured: For a value that does not parse.
        """
        env = {**settings.env_file, **(os.environ if environ is None else environ)}
        level = env.get("COVET_LOG_LEVEL", "INFO").upper()
        fmt = env.get("COVET_LOG_FORMAT", "").lower() or None
        access = env.get("COVET_ACCESS_LOG", "1").strip().lower()
        if access not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ImproperlyConfigured(
                f"Invalid COVET_ACCESS_LOG {access!r}. Use 1 (on) or 0 (off)."
            )
        slow = env.get("COVET_SLOW_QUERY_MS", "").strip()
        try:
            slow_ms = float(slow) if slow else None
        except ValueError:
            raise ImproperlyConfigured(
                f"Invalid COVET_SLOW_QUERY_MS {slow!r}. Use a number of milliseconds."
            ) from None
        return cls(
            debug=settings.debug,
            level=level,
            format=fmt,  # type: ignore[arg-type]  # checked in __post_init__
            access_log=access in ("1", "true", "yes", "on"),
            slow_query_ms=slow_ms,
        )


def logging_config(options: LoggingOptions | None = None) -> dict[str, Any]:
    """Return the :func:`logging.config.dictConfig` dictionary for ``options``.

    One stderr handler on the root logger, with the request-context filter
    and the JSON or text formatter; uvicorn's loggers propagate to it and
    ``uvicorn.access`` is silenced when covet writes the access log.

    Args:
        options: The options; the defaults when None.

    Returns:
        A dictionary for :func:`logging.config.dictConfig` (or uvicorn's ``log_config``).
    """
    options = options or LoggingOptions()
    fmt = options.format or ("text" if options.debug else "json")
    formatter = "covet.logging.JSONFormatter" if fmt == "json" else "covet.logging.DevFormatter"
    slow: dict[str, Any] = {"level": "WARNING" if options.slow_query_ms is not None else "CRITICAL"}
    filters: dict[str, Any] = {"request_context": {"()": "covet.logging.RequestContextFilter"}}
    if options.slow_query_ms is not None:
        filters["slow_query"] = {
            "()": "covet.logging.SlowQueryFilter",
            "threshold_ms": options.slow_query_ms,
        }
        slow["filters"] = ["slow_query"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": filters,
        "formatters": {"covet": {"()": formatter}},
        "handlers": {
            "covet": {
                "class": "covet.logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "covet",
                "filters": ["request_context"],
            }
        },
        "root": {"level": options.level.upper(), "handlers": ["covet"]},
        "loggers": {
            # uvicorn's default configuration gives these handlers of their own and stops
            # propagation: route them through ours instead.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {
                "handlers": [],
                "propagate": True,
                "level": "CRITICAL" if options.access_log else "INFO",
            },
            "covet.access": {"level": "INFO" if options.access_log else "CRITICAL"},
            # alembic narrates each start-up check at INFO ("setup plugin ..."); its
            # warnings still show. `covet migrate` reports what it applied itself.
            "alembic": {"level": "WARNING"},
            "covet.db.slow": slow,
        },
    }


def configure_logging(settings_or_options: Settings | LoggingOptions | None = None) -> None:
    """Configure :mod:`logging` for a covet app (see the module docs).

    Call it before the app starts serving: whether the access log is on is
    read when it starts.

    Args:
        settings_or_options: Project :class:`~covet.config.Settings` (read
            with :meth:`LoggingOptions.from_settings`), options, or None for
            the defaults.

    Raises:
        ImproperlyConfigured: For invalid options.
    """
    if settings_or_options is None or isinstance(settings_or_options, LoggingOptions):
        options = settings_or_options or LoggingOptions()
    else:
        options = LoggingOptions.from_settings(settings_or_options)
    if options.slow_query_ms is None:
        SlowQueryFilter.uninstall()
    logging.config.dictConfig(logging_config(options))


class RequestContextFilter(logging.Filter):
    """Put ``request_id`` and ``user_id`` on every record (None outside a request).

    A record written while a background job runs (``covet worker``) gets the
    job's ``job_id`` and, as ``request_id``, the id of the request that
    enqueued the job.

    Attach it to handlers (:func:`logging_config` does): filters on a handler
    see the records of every logger propagating to it. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.request_id`` and ``record.user_id`` and keep the record."""
        context = current_request.get()
        if context is None:
            job = current_job.get()
            if job is not None:
                record.job_id = job.job_id
                record.request_id = job.request_id
                record.user_id = getattr(record, "user_id", None)
                return True
            record.request_id = getattr(record, "request_id", None)
            record.user_id = getattr(record, "user_id", None)
        else:
            record.request_id = context.request_id
            record.user_id = context.user_id
        return True


_last_second: list[Any] = [None, ""]  # [whole second, its formatted text]: records come in runs


#: ".000Z" to ".999Z": the end of every timestamp, indexed by its milliseconds. The
#: extra ".999Z" at 1000 catches a fraction a hair under 1 that rounds up when scaled.
_MILLIS = (*(f".{ms:03d}Z" for ms in range(1000)), ".999Z")


def _iso_time(created: float) -> str:
    """Return ``created`` as UTC ISO 8601 with milliseconds (``2026-12-06T04:33:15.123Z``)."""
    whole = int(created)
    last = _last_second
    if last[0] != whole:
        last[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        last[0] = whole
    # Truncated, as LogRecord.msecs is: a record never reads as later than it was made.
    date_and_time: str = last[1]
    return date_and_time + _MILLIS[int((created - whole) * 1000)]


# One encoder for every line: json.dumps() with options builds a new one per call.
_stdlib_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode

try:  # orjson (the ``fast`` extra) writes a log line ten times faster than the stdlib.
    import orjson
except ImportError:  # pragma: no cover - covered by the job without orjson
    orjson = None  # type: ignore[assignment]

#: Encode log lines with orjson when it is importable. Tests flip this to compare paths.
USE_ORJSON: bool = orjson is not None


def _encode(data: dict[str, Any]) -> str:
    """Return ``data`` as one line of JSON (values JSON cannot hold as their ``str()``)."""
    if USE_ORJSON:
        try:
            # Dates and dataclasses go through default=str as on the stdlib path.
            options = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            return orjson.dumps(data, default=str, option=options).decode()
        except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, say
            pass
    return _stdlib_encode(data)


class JSONFormatter(logging.Formatter):
    """Format each record as one line of JSON.

    Keys: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``request_id`` and ``user_id`` (when the filter set them), every field
    passed with ``extra=``, and ``exc_info``/``stack_info`` as text.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for ``record``."""
        data: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "user_id"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        # Every field passed with extra=, in the order given; a comprehension is about
        # three times cheaper than a loop over the record's 25-odd attributes.
        skipped = _FORMATTED_ATTRIBUTES
        data.update({key: value for key, value in record.__dict__.items() if key not in skipped})
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return _encode(data)


class StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard stream handler, writing each line in one locked section.

    :class:`logging.StreamHandler` flushes through :meth:`flush`, which takes
    the handler's lock a second time for every record; :meth:`emit` already
    runs under it (:meth:`logging.Handler.handle` holds it), so this one
    flushes the stream directly. Every access-log line passes here.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record``, formatted, and a newline to the stream, then flush it."""
        try:
            stream = self.stream
            stream.write(self.format(record) + self.terminator)
            flush = getattr(stream, "flush", None)
            if flush is not None:
                flush()
        except RecursionError:  # as the standard handler: a runaway recursion is not logged
            raise
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise into the caller
            self.handleError(record)


class DevFormatter(logging.Formatter):
    """Format records as readable lines: ``12:00:01 INFO covet.access [3f2a] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(context)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        """Return the line for ``record``, with ``[request id user]`` when in a request."""
        request_id = getattr(record, "request_id", None)
        user_id = getattr(record, "user_id", None)
        job_id = getattr(record, "job_id", None)
        parts = [request_id[:8]] if request_id else []
        if user_id is not None:
            parts.append(f"user={user_id}")
        if job_id is not None:
            parts.append(f"job={job_id[:12]}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


class AccessLog:
    """The request observer writing the access log to ``covet.access``.

    Each finished request gives one ``INFO`` record whose message reads
    ``GET /items/3 200 1.9ms`` and whose fields are ``method``, ``path``
    (without the query string, which may carry secrets), ``route``,
    ``status``, ``duration_ms``, ``bytes``, ``client`` (and ``request_id``,
    ``user_id`` from the filter). Websocket connections log ``WS`` as the
    method and their whole duration.
    """

    __slots__ = ()

    def request_started(self, context: RequestContext) -> None:
        """Do nothing: the line is written when the request ends."""

    def request_finished(self, context: RequestContext) -> None:
        """Write the access-log record for ``context``.

        The record is made and handed to the logger's handlers directly: what
        :meth:`logging.Logger.info` adds on top is the search for the calling
        frame (always this method), which costs more than the rest of the
        record. Level checks, filters, handlers and the record factory apply
        as usual.
        """
        logger = access_logger
        if not logger.isEnabledFor(logging.INFO):
            return
        scope = context.scope
        method = scope.get("method", "WS")
        path = scope.get("path", "")
        status = context.status
        duration_ms = round(context.duration * 1_000_000) / 1000  # round(ms, 3), at half the cost
        record = logging.getLogRecordFactory()(
            logger.name,
            logging.INFO,
            __file__,
            0,
            "%s %s %s %.1fms",
            (method, path, status, duration_ms),
            None,
            "request_finished",
        )
        fields = record.__dict__
        fields["method"] = method
        fields["path"] = path
        fields["route"] = context.route_name
        fields["status"] = status
        fields["duration_ms"] = duration_ms
        fields["bytes"] = context.sent
        fields["client"] = context.client
        logger.handle(record)


_COVET_DIR = str(Path(__file__).resolve().parent) + os.sep
_SKIPPED_DIRS = (_COVET_DIR, str(Path(logging.__file__).resolve().parent.parent / "asyncio"))
_SPACES = re.compile(r"\s+")


def _caller(frame: FrameType | None) -> str | None:
    """Return ``file:line in function`` for the first frame outside covet and asyncio."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_SKIPPED_DIRS) and not filename.startswith("<frozen"):
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return None


class SlowQueryFilter(logging.Filter):
    """Hold the slow-query threshold and install the statement observer that uses it.

    :func:`logging_config` attaches it to the ``covet.db.slow`` logger, so
    each process applying the configuration (each ``covet run`` worker)
    installs the observer. Records below the threshold are dropped.

    Args:
        threshold_ms: Statements taking at least this many milliseconds are logged.
    """

    _remove: Any = None
    _threshold_s: float = 0.0

    def __init__(self, threshold_ms: float = 200.0) -> None:
        super().__init__()
        self.threshold_ms = float(threshold_ms)
        cls = type(self)
        cls._threshold_s = self.threshold_ms / 1000
        if cls._remove is None:
            from covet.db.querylog import observe_queries

            cls._remove = observe_queries(_log_if_slow)

    @classmethod
    def uninstall(cls) -> None:
        """Stop observing statements (a later configuration has no slow-query log)."""
        if cls._remove is not None:
            cls._remove()
            cls._remove = None

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep records at least as slow as the threshold (or without a duration)."""
        duration = getattr(record, "duration_ms", None)
        return duration is None or duration >= self.threshold_ms


def _log_if_slow(query: CapturedQuery) -> None:
    if query.duration < SlowQueryFilter._threshold_s or not slow_query_logger.isEnabledFor(
        logging.WARNING
    ):
        return
    sql = _SPACES.sub(" ", query.sql).strip()
    if len(sql) > 2000:
        sql = sql[:2000] + "..."
    duration_ms = round(query.duration * 1000, 3)
    caller = _caller(sys._getframe(1))
    slow_query_logger.warning(
        "Slow query (%.1fms) at %s: %s",
        duration_ms,
        caller or "?",
        sql,
        extra={
            "sql": sql,
            "duration_ms": duration_ms,
            "caller": caller,
            "failed": query.failed,
        },
    )
