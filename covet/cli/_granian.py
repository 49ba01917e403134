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

Not mapped, because granian has no such setting: uvicorn's keep-alive
timeout, websocket message size limit and incomplete-event size, the
per-part head limits of :class:`covet.protocol.HTTPProtocol` (request line,
header field) and its body timeout, and the SIGTERM drain
(``--drain-seconds``): granian's main process stops its workers itself, so
the worker never sees the SIGTERM a drain hooks into.

The workers are spawned (not forked) and import the app through
:func:`application` (a factory), which reads the app path and trusted proxies
from the environment this process sets, so they need no command line of
their own.
"""

from __future__ import annotations

import fnmatch
import importlib
import math
import multiprocessing
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet.cli._common import fail

if TYPE_CHECKING:
    from covet.types import ASGIApp

__all__ = (
    "APP_VARIABLE",
    "FORWARDED_VARIABLE",
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
    return wrapped


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

    saved = {name: os.environ.get(name) for name in (APP_VARIABLE, FORWARDED_VARIABLE)}
    os.environ[APP_VARIABLE] = app_path
    os.environ[FORWARDED_VARIABLE] = forwarded_allow_ips
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
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
