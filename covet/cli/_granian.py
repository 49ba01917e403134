"""``covet run --server granian``: serve the project with granian, the Rust HTTP server.

granian runs the app over its ASGI interface, with lifespan (startup and
shutdown hooks run in every worker), in one or more worker processes, and
restarts them on file changes under ``--reload``. What ``covet run`` gives
uvicorn is mapped to granian where granian has an equivalent:

- ``--host``, ``--port``, ``--workers``, ``--reload`` (the same watched file
  patterns and ignored directories), ``--log-level`` and covet's logging;
- proxy headers trusted only from ``--forwarded-allow-ips`` (granian's own
  ``wrap_asgi_with_proxy_headers``, applied in each worker);
- at most 1000 requests handled at once per worker (granian's backpressure:
  further requests wait for a slot instead of getting uvicorn's 503);
- 10 s to read request headers (DEFAULTS.md) and ``--graceful-timeout`` as
  the time workers get to stop before they are killed;
- a request head of at most 64 KiB (:data:`covet.protocol.MAX_HEAD_SIZE`,
  granian's ``max_buffer_size``; granian's default, 408 KiB, let a single
  70,000-byte header through) and 100 header fields (granian's own limit),
  both answered with ``431``.

What granian has no setting for but the ASGI messages show is enforced by
:class:`ProtocolLimits` around the app in each worker, with
:class:`covet.protocol.HTTPProtocol`'s limits and answers: a request line of
at most 4094 bytes (else ``414``), header fields of at most 8190 bytes (else
``431``), and the body's slow-client timeout (``408``).

Not mapped, because granian has no such setting: uvicorn's keep-alive
timeout, websocket message size limit and incomplete-event size, and the
SIGTERM drain (``--drain-seconds``): granian's main process stops its
workers itself, so the worker never sees the SIGTERM a drain hooks into.

The workers are spawned (not forked) and import the app through
:func:`application` (a factory), which reads the app path and trusted proxies
from the environment this process sets, so they need no command line of
their own.
"""

from __future__ import annotations

import asyncio
import fnmatch
import importlib
import logging
import math
import multiprocessing
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet.cli._common import fail, set_environ

if TYPE_CHECKING:
    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "APP_VARIABLE",
    "FORWARDED_VARIABLE",
    "ProtocolLimits",
    "application",
    "granian_options",
    "require_granian",
    "serve",
)

#: The environment variable naming the app (``module:attribute``) the workers import.
APP_VARIABLE = "COVET_GRANIAN_APP"
#: The environment variable holding the addresses whose ``X-Forwarded-*`` are trusted.
FORWARDED_VARIABLE = "COVET_GRANIAN_FORWARDED_ALLOW_IPS"
#: Requests a worker handles at once (uvicorn's ``limit_concurrency`` in DEFAULTS.md).
BACKPRESSURE = 1000
#: Milliseconds granted to read a request's headers (DEFAULTS.md: 10 s).
HEADER_READ_TIMEOUT_MS = 10_000

logger = logging.getLogger("covet.server")


class ProtocolLimits:
    """Enforce :class:`covet.protocol.HTTPProtocol`'s per-request limits on the ASGI messages.

    granian parses requests itself, so the limits covet's uvicorn protocol
    applies while a request streams in are applied here, to what granian hands
    over, with the same answers:

    * a request target (path and query) longer than ``max_request_line``
      bytes is answered ``414``, and a header field (name and value) longer
      than ``max_header_field_size`` bytes ``431``, before the app sees the
      request (granian has already bounded the whole head at 64 KiB);
    * a body gets ``body_timeout`` seconds, plus one for every
      ``body_min_rate`` bytes received, counted only while the app waits in
      ``receive()`` until the body is complete (time it spends not reading is
      not the client's, nor a later wait for the disconnect). Past
      that the request is answered ``408`` if its response has not started,
      and the app's ``receive()`` returns ``http.disconnect``, as for a client
      that went away; what the app sends afterwards is dropped.

    Args:
        app: The ASGI app.
        max_request_line: Longest request target in bytes.
        max_header_field_size: Longest header field, name and value, in bytes.
        body_timeout: Seconds of waiting for the body, before the rate extension.
        body_min_rate: Bytes of body that earn one more second.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_request_line: int | None = None,
        max_header_field_size: int | None = None,
        body_timeout: float | None = None,
        body_min_rate: int | None = None,
    ) -> None:
        from covet import protocol  # the limits live there; imported here, not per request

        self.app = app
        self.max_request_line = max_request_line or protocol.MAX_REQUEST_LINE
        self.max_header_field_size = max_header_field_size or protocol.MAX_HEADER_FIELD_SIZE
        self.body_timeout = body_timeout or protocol.BODY_TIMEOUT
        self.body_min_rate = body_min_rate or protocol.BODY_MIN_RATE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an oversized request head, and serve the rest with a timed body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = len(scope.get("raw_path") or scope["path"].encode())
        query = scope.get("query_string")
        if query:
            target += 1 + len(query)
        if target > self.max_request_line:
            logger.warning("Request line longer than %d bytes.", self.max_request_line)
            await _refuse(send, 414)
            return
        limit = self.max_header_field_size
        body = False
        for name, value in scope["headers"]:
            if len(name) + len(value) > limit:
                logger.warning("Request header field larger than %d bytes.", limit)
                await _refuse(send, 431)
                return
            if name == b"content-length" or name == b"transfer-encoding":
                body = body or value.strip() not in (b"", b"0")
        if not body:
            await self.app(scope, receive, send)
            return
        await _TimedBody(self, receive, send).serve(scope)


async def _refuse(send: Send, status: int) -> None:
    """Answer ``status`` with covet.protocol's wording and close the connection."""
    from covet.protocol import REASONS  # loaded already: ProtocolLimits reads its limits

    body = REASONS[status]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TimedBody:
    """One request whose body is read under :class:`ProtocolLimits`' slow-client timeout."""

    __slots__ = (
        "_receive",
        "_send",
        "complete",
        "limits",
        "received",
        "started",
        "timed_out",
        "waited",
    )

    def __init__(self, limits: ProtocolLimits, receive: Receive, send: Send) -> None:
        self.limits = limits
        self._receive = receive
        self._send = send
        self.waited = 0.0  # seconds spent in receive() waiting for the body
        self.received = 0  # body bytes received
        self.complete = False  # the whole body arrived: later receive() calls are not timed
        self.started = False  # the response has started
        self.timed_out = False

    async def serve(self, scope: Scope) -> None:
        await self.limits.app(scope, self.receive, self.send)

    async def receive(self) -> Message:
        if self.complete:
            # Waiting for the disconnect (a streamed response): that is not the body's time.
            return await self._receive()
        if self.timed_out:
            return {"type": "http.disconnect"}
        limits = self.limits
        allowed = limits.body_timeout + self.received / limits.body_min_rate - self.waited
        began = time.monotonic()
        try:
            async with asyncio.timeout(max(allowed, 0.0)):
                message = await self._receive()
        except TimeoutError:
            self.timed_out = True
            logger.warning(
                "Request body not received in time (%d bytes in %.0f s).",
                self.received,
                self.waited + time.monotonic() - began,
            )
            if not self.started:
                self.started = True
                await _refuse(self._send, 408)
            return {"type": "http.disconnect"}
        self.waited += time.monotonic() - began
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        else:  # http.disconnect: nothing more will come
            self.complete = True
        return message

    async def send(self, message: Message) -> None:
        if self.timed_out:
            return  # the 408 (or the started response, cut short) was the answer
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def require_granian() -> None:
    """Fail with the install command when granian is not installed.

    Raises:
        CommandError: granian cannot be imported.
    """
    try:
        import granian  # noqa: F401
    except ImportError:
        fail(
            "--server granian needs the granian package, which is not installed. "
            "Run: pip install 'covet-web[granian]' (or drop --server granian to use uvicorn)."
        )


def application() -> ASGIApp:
    """Import the app named by ``COVET_GRANIAN_APP``, behind the trusted-proxy headers.

    Around both sits :class:`ProtocolLimits`.

    Called by granian in each worker (the target is a factory).

    Raises:
        ImproperlyConfigured: The variable is missing: this is not a worker of ``covet run``.
    """
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    from covet.exceptions import ImproperlyConfigured

    target = os.environ.get(APP_VARIABLE, "")
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ImproperlyConfigured(
            f"{APP_VARIABLE} is {target!r}, not 'module:attribute'. Start the server with "
            "`covet run --server granian`, which sets it."
        )
    app: Any = importlib.import_module(module_name)
    for name in attribute.split("."):
        app = getattr(app, name)
    trusted = os.environ.get(FORWARDED_VARIABLE, "127.0.0.1")
    wrapped: ASGIApp = wrap_asgi_with_proxy_headers(app, trusted_hosts=trusted)
    return ProtocolLimits(wrapped)


def _reload_filter(patterns: tuple[str, ...], excluded: tuple[str, ...]) -> type[Any]:
    """Return a watchfiles filter class passing only files matching ``patterns``.

    A new class each time: granian extends the class's ignore lists in place.
    """
    from watchfiles import DefaultFilter

    class CovetReloadFilter(DefaultFilter):
        ignore_dirs = (*DefaultFilter.ignore_dirs, *excluded)

        def __call__(self, change: Any, path: str) -> bool:
            name = Path(path).name
            if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
                return False
            return bool(super().__call__(change, path))

    return CovetReloadFilter


def granian_options(
    app_path: str,
    *,
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload: bool = False,
    workers: int = 1,
    log_level: str = "info",
    logging_config: dict[str, Any] | None = None,
    graceful_timeout: float | None = None,
) -> dict[str, Any]:
    """Return the keyword arguments for granian's ``Server``, and the environment the workers need.

    Args:
        app_path: The application's import string (``"mysite.app:app"``), set in
            :data:`APP_VARIABLE` for the workers.
        root: The project directory: the workers' working directory (on
            ``sys.path``) and what ``reload`` watches.
        host: The interface to bind.
        port: The TCP port to bind.
        reload: Restart the workers when code, templates, ``pyproject.toml`` or ``.env`` change.
        workers: The number of worker processes.
        log_level: The log level (``trace`` is granian's ``debug``).
        logging_config: covet's :func:`~covet.logging.logging_config`, applied in every worker.
        graceful_timeout: Seconds workers get to stop before they are killed.

    Returns:
        The options; the app path itself travels in the environment.
    """
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from covet.cli.run import _RELOAD_EXCLUDED_DIRS, RELOAD_INCLUDES
    from covet.protocol import MAX_HEAD_SIZE  # here: granian's workers need no uvicorn

    options: dict[str, Any] = {
        "target": f"{__name__}:application",
        "factory": True,
        "address": host,
        "port": port,
        "interface": Interfaces.ASGI,
        "workers": workers,
        "loop": Loops.auto,
        "working_dir": root,
        "backpressure": BACKPRESSURE,
        "http1_settings": HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS, max_buffer_size=MAX_HEAD_SIZE
        ),
        "log_level": LogLevels("debug" if log_level == "trace" else log_level),
        "log_access": False,  # covet writes its own access log
    }
    if logging_config is not None:
        config = dict(logging_config)
        # granian logs on "_granian"; let it propagate to covet's root handler.
        config["loggers"] = {
            **config.get("loggers", {}),
            "_granian": {"handlers": [], "propagate": True},
            "granian.access": {"handlers": [], "propagate": True, "level": "CRITICAL"},
        }
        options["log_dictconfig"] = config
    if graceful_timeout is not None:
        options["workers_kill_timeout"] = max(1, math.ceil(graceful_timeout))
    if reload:
        options["reload"] = True
        options["reload_paths"] = [root]
        options["reload_filter"] = _reload_filter(RELOAD_INCLUDES, _RELOAD_EXCLUDED_DIRS)
    return options


def serve(app_path: str, options: dict[str, Any], forwarded_allow_ips: str) -> None:
    """Serve with granian until it is stopped (SIGINT or SIGTERM), then return.

    Args:
        app_path: The application's import string.
        options: From :func:`granian_options`.
        forwarded_allow_ips: Comma-separated proxy addresses whose
            ``X-Forwarded-*`` headers are trusted.
    """
    from granian.server import Server

    restore = set_environ({APP_VARIABLE: app_path, FORWARDED_VARIABLE: forwarded_allow_ips})
    # granian starts its workers with multiprocessing's start method, "fork" by default
    # on Linux before Python 3.14. A forked worker would inherit this process's import of
    # the app (made to report a broken app in one line): after --reload it would serve
    # the old code, and prometheus-client, imported before PROMETHEUS_MULTIPROC_DIR was
    # set, would keep each worker's samples to itself. Spawned workers import afresh,
    # as uvicorn's do.
    method = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)
    try:
        Server(**options).serve()
    finally:
        multiprocessing.set_start_method(method, force=True)
        restore()
