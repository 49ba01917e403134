"""``covet run``: serve the project's application with uvicorn (or granian: ``--server granian``).

The app is imported once in this process first, so a broken app gives a
one-line error instead of a server that keeps dying. The server gets the
limits of ``DEFAULTS.md`` (bounded concurrency, keep-alive and shutdown
timeouts, websocket message and incomplete-event sizes) and trusts proxy
headers only from 127.0.0.1 unless told otherwise. SIGTERM starts the graceful
shutdown of :mod:`covet.shutdown`: drain, stop accepting, finish in-flight
requests within the graceful timeout, close pools.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import logging
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from covet.cli._common import fail, import_app, info, project_settings, set_environ, warn
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.config import Settings
    from covet.logging import LoggingOptions
    from covet.shutdown import ShutdownOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import FrameType

__all__ = (
    "RELOAD_INCLUDES",
    "SERVER_LIMITS",
    "bind_error_message",
    "check_address",
    "preflight",
    "run_command",
    "server_options",
)

#: Limits passed to uvicorn (see DEFAULTS.md); each is a uvicorn.run() keyword.
SERVER_LIMITS: dict[str, Any] = {
    "limit_concurrency": 1000,
    "timeout_keep_alive": 5,
    "timeout_graceful_shutdown": 30,
    "ws_max_size": 1024 * 1024,
    "h11_max_incomplete_event_size": 16 * 1024,
}

#: File patterns whose change restarts the server under ``--reload``.
RELOAD_INCLUDES: tuple[str, ...] = (
    "*.py",
    "*.html",
    "*.jinja",
    "*.jinja2",
    "*.txt",
    "*.toml",
    ".env",
)

# Directories under the project that never hold code to reload.
_RELOAD_EXCLUDED_DIRS = (".venv", "venv", ".git", "node_modules", "__pycache__", ".mypy_cache")


def server_options(
    app_path: str,
    *,
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload: bool = False,
    workers: int = 1,
    log_level: str = "info",
    forwarded_allow_ips: str = "127.0.0.1",
    logging_options: LoggingOptions | None = None,
    graceful_timeout: float | None = None,
) -> dict[str, Any]:
    """Return the keyword arguments for ``uvicorn.run()``.

    Args:
        app_path: The application's import string (``"mysite.app:app"``).
        root: The project directory: put on ``sys.path`` and watched by ``reload``.
        host: The interface to bind.
        port: The TCP port to bind.
        reload: Restart the server when code, templates, ``pyproject.toml`` or ``.env`` change.
        workers: The number of worker processes.
        log_level: uvicorn's log level.
        forwarded_allow_ips: Comma-separated addresses whose ``X-Forwarded-*``
            headers are trusted.
        logging_options: covet's logging (:mod:`covet.logging`), applied by
            uvicorn in every worker; uvicorn's access log is off when covet's is on.
        graceful_timeout: Seconds in-flight requests get to finish at shutdown
            (the default of :data:`SERVER_LIMITS` when None).

    Returns:
        The options, with :data:`SERVER_LIMITS` included.

    Raises:
        CommandError: For ``reload`` together with more than one worker.
    """
    if reload and workers > 1:
        fail(
            f"--reload cannot be combined with --workers {workers}: the reloader runs one "
            "process. Drop one of the two options."
        )
    options: dict[str, Any] = {
        "app": app_path,
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": log_level,
        "app_dir": str(root),
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
        "server_header": False,
        **SERVER_LIMITS,
    }
    # uvicorn's httptools protocol bounds neither the request head nor slow clients;
    # covet's subclass does (covet.protocol, DEFAULTS.md).
    from covet.protocol import HTTPProtocol

    options["http"] = HTTPProtocol
    if graceful_timeout is not None:
        options["timeout_graceful_shutdown"] = graceful_timeout
    if logging_options is not None:
        from covet.logging import logging_config

        options["log_config"] = logging_config(logging_options)
        options["access_log"] = not logging_options.access_log
    if reload:
        options["reload"] = True
        options["reload_dirs"] = [str(root)]
        options["reload_includes"] = list(RELOAD_INCLUDES)
        options["reload_excludes"] = [
            str(root / name) for name in _RELOAD_EXCLUDED_DIRS if (root / name).is_dir()
        ]
    return options


async def _pending_on(settings: Settings, url: str) -> list[str]:
    """Connect to ``url`` (the ping) and return the migrations not applied to it.

    One short-lived connection through covet's own adapter. A single chain of
    revisions (what ``covet makemigrations`` writes) is read without alembic, so
    the server that runs in this process afterwards (``covet run`` without
    ``--workers`` or ``--reload``) does not carry alembic, Mako and SQLAlchemy
    (about 35 MB) for the whole of its life; see
    :func:`covet.db.migrations.load_history`.
    """
    from covet.db import Database

    database = Database(url, alias="covet-run-check", min_size=1, max_size=1)
    await database.connect()
    try:
        if not (settings.migrations / "env.py").is_file():
            return []
        from covet.db.migrations import pending_migrations

        return await pending_migrations(database, settings)
    finally:
        await database.disconnect()


def preflight(settings: Settings) -> None:
    """Check the project's database before starting the server.

    A server whose startup fails prints a traceback per worker; checking in
    this process first turns the usual mistakes into one line: the database
    URL is malformed, the server cannot be reached, the database does not
    exist, the login is refused, the driver is not installed (each error says
    so itself), or migrations are pending (a warning in debug mode, where the
    app itself only warns too).

    Raises:
        CovetError: The database cannot be used (``ImproperlyConfigured``,
            ``OperationalError``, ``MissingDependencyError``) or, outside
            debug mode, migrations are pending (``ImproperlyConfigured``).
    """
    if settings.database_url is None:
        return
    pending = asyncio.run(_pending_on(settings, settings.database_url))
    if pending:
        count = len(pending)
        message = (
            f"{count} migration{'s are' if count != 1 else ' is'} not applied to the "
            f"database: {', '.join(pending)}. Run `covet migrate` first."
        )
        if not settings.debug:
            raise ImproperlyConfigured(message)
        warn(message)


def _logging_options(settings: Settings | None) -> LoggingOptions:
    """Return covet's logging options for the project (the defaults outside one)."""
    from covet.config import Settings
    from covet.logging import LoggingOptions

    try:
        if settings is None:
            return LoggingOptions.from_settings(Settings(root=Path.cwd()))
        return LoggingOptions.from_settings(settings)
    except ImproperlyConfigured as exc:
        fail(str(exc))


def _shutdown_options(
    settings: Settings | None, drain_seconds: float | None, graceful_timeout: float | None
) -> ShutdownOptions:
    """Return the shutdown options: the command line's, else the environment's or ``.env``'s."""
    from covet.config import Settings
    from covet.shutdown import ShutdownOptions

    try:
        found = ShutdownOptions.from_settings(settings or Settings(root=Path.cwd()))
        return ShutdownOptions(
            drain_seconds=found.drain_seconds if drain_seconds is None else drain_seconds,
            graceful_timeout=(
                found.graceful_timeout if graceful_timeout is None else graceful_timeout
            ),
        )
    except ImproperlyConfigured as exc:
        fail(str(exc))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind(host: str, port: int) -> OSError | None:
    """Bind every address of ``host:port`` as the server will, and return the first failure."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return exc
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            # The options uvicorn's sockets have: SO_REUSEADDR lets a port whose old
            # connections linger in TIME_WAIT be bound, as uvicorn then will.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                return exc
    return None


def _free_port_after(host: str, port: int) -> int | None:
    for candidate in range(port + 1, min(port + 50, 65536)):
        if _bind(host, candidate) is None:
            return candidate
    return None


def bind_error_message(host: str, port: int, exc: OSError) -> str:
    """Return the one-line explanation of why ``host:port`` cannot be served on.

    Args:
        host: The ``--host`` value.
        port: The ``--port`` value.
        exc: The error binding the address raised.
    """
    where = _address(host, port)
    if isinstance(exc, socket.gaierror):
        return (
            f"Cannot serve on {where}: the host name {host!r} is unknown. Pass --host 127.0.0.1 "
            "(this machine only) or --host 0.0.0.0 (every interface)."
        )
    if exc.errno == errno.EADDRINUSE:
        free = _free_port_after(host, port)
        example = f", e.g. --port {free}" if free is not None else " with --port"
        return (
            f"Cannot serve on {where}: the address is already in use by another program. Stop "
            f"that program, or choose another port{example}."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"Cannot serve on {where}: {host!r} is not an address of this machine. Pass --host "
            "127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)."
        )
    if exc.errno == errno.EACCES:
        return (
            f"Cannot serve on {where}: permission denied (ports below 1024 need root). Choose "
            "another port, e.g. --port 8000."
        )
    reason = (exc.strerror or str(exc)).rstrip(".")
    return f"Cannot serve on {where}: {reason}. Choose another --host or --port."


def check_address(host: str, port: int) -> None:
    """Fail with one line when the server could not listen on ``host:port``.

    Checked before the app is imported and the database checked, so a port
    taken by another server is reported at once, not after a startup that
    looked complete. Port 0 (any free port) is not checked.

    Raises:
        CommandError: The address is in use, not local, or not allowed.
    """
    if port == 0:
        return
    exc = _bind(host, port)
    if exc is not None:
        fail(bind_error_message(host, port, exc))


class _BindErrorCatcher(logging.Filter):
    """Catch the bind error uvicorn logs before exiting, so it is reported as one line.

    uvicorn logs ``[Errno 98] ... address already in use`` on ``uvicorn.error``
    and exits when the port was taken between :func:`check_address` and its
    own bind (in the worker with one process, in the supervisor with
    ``--workers`` or ``--reload``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.error: OSError | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, OSError) and record.msg.errno in _BIND_ERRNOS:
            self.error = record.msg
            return False
        return True


_BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def worker_environment(workers: int, values: Mapping[str, str]) -> Callable[[], None]:
    """Set what the server's workers read from the environment; return what undoes it.

    Besides ``values``: ``WEB_CONCURRENCY`` tells each worker how many there are, so
    that it sizes what is per machine (the password hashing pool:
    :func:`covet.auth.hashers.default_hashing_workers`) by its share. With several
    workers, their Prometheus samples meet in a shared directory
    (:func:`metrics_multiprocess_dir`) and debug mode's model comparison runs in one
    worker only (:data:`covet.db.migrations.drift.CLAIM_VARIABLE`). The returned
    function puts the environment back and removes the directories made here.
    """
    from covet.db.migrations.drift import CLAIM_VARIABLE

    shared = metrics_multiprocess_dir(workers)
    claims = tempfile.mkdtemp(prefix="covet-drift-") if workers > 1 else None
    extra = {CLAIM_VARIABLE: claims} if claims is not None else {}
    restore_environ = set_environ({**values, "WEB_CONCURRENCY": str(workers), **extra})

    def restore() -> None:
        restore_environ()
        if shared is not None and shared[1]:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
            shutil.rmtree(shared[0], ignore_errors=True)
        if claims is not None:
            shutil.rmtree(claims, ignore_errors=True)

    return restore


def metrics_multiprocess_dir(workers: int) -> tuple[str, bool] | None:
    """Prepare the directory where the workers' Prometheus samples meet.

    With more than one worker and prometheus-client installed (``COVET_METRICS=0``
    opts out), every worker must write its samples where a scrape answered by
    any of them can add them up: ``PROMETHEUS_MULTIPROC_DIR``. When it is set
    already, its samples of an earlier run are removed (they would be added to
    this one's); otherwise a new temporary directory is made. The variable is
    set in this process, so the workers inherit it.

    Returns:
        The directory and whether it was made here (and is removed at exit),
        or None when nothing is shared.
    """
    if workers < 2 or os.environ.get("COVET_METRICS", "").strip() == "0":
        return None
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        return str(directory), False
    made = tempfile.mkdtemp(prefix="covet-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made, True


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """Swallow the signal uvicorn re-raises after its graceful shutdown."""


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind."
)
@click.option(
    "--reload",
    is_flag=True,
    help="Restart when .py files, templates, pyproject.toml or .env change (development).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of worker processes.",
)
@click.option(
    "--app",
    "app_path",
    metavar="MODULE:ATTR",
    help="The application to serve; defaults to [tool.covet] app.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]),
    help="Server log level.",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="Comma-separated proxy addresses whose X-Forwarded-* headers are trusted.",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Before serving, check that the database answers and has no pending migrations.",
)
@click.option(
    "--server",
    type=click.Choice(["uvicorn", "granian"]),
    default="uvicorn",
    show_default=True,
    envvar="COVET_SERVER",
    help="The HTTP server: uvicorn, or granian (Rust; pip install 'covet-web[granian]'). "
    "Also read from COVET_SERVER.",
)
@click.option(
    "--drain-seconds",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="After SIGTERM, keep serving this long, with /ready answering 503, before refusing "
    "new connections (for a load balancer to notice).  [default: COVET_DRAIN_SECONDS, else 0]",
)
@click.option(
    "--graceful-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="At shutdown, how long in-flight requests and websockets may take to finish before "
    "they are cancelled.  [default: COVET_GRACEFUL_TIMEOUT, else 30]",
)
def run_command(
    host: str,
    port: int,
    reload: bool,
    workers: int,
    app_path: str | None,
    log_level: str,
    forwarded_allow_ips: str,
    check: bool,
    server: str,
    drain_seconds: float | None,
    graceful_timeout: float | None,
) -> None:
    """Serve the application with uvicorn (or granian, with --server granian).

    SIGINT (Ctrl+C) or SIGTERM stop the server gracefully, with exit status 0:
    SIGTERM after the drain (``--drain-seconds``, uvicorn only), SIGINT at once.
    """
    # Checked before importing anything, so the mistake is reported first.
    if reload and workers > 1:
        server_options("", root=Path.cwd(), reload=reload, workers=workers)
    if server == "granian":
        from covet.cli._granian import require_granian

        require_granian()
    settings = project_settings(app_path)
    check_address(host, port)
    root = settings.root if settings is not None else Path.cwd()
    app_path, _ = import_app(app_path, settings)
    if settings is not None and check:
        preflight(settings)
    shutdown = _shutdown_options(settings, drain_seconds, graceful_timeout)
    drain = shutdown.drain_seconds
    if reload and drain > 0:
        # The reloader restarts the server with SIGTERM on every change.
        warn(f"The drain of {drain:g} s is not used with --reload: it would delay every reload.")
        drain = 0.0
    if server == "granian":
        if drain > 0:
            warn(
                f"The drain of {drain:g} s is not used with --server granian: granian stops its "
                "workers itself, so /ready cannot answer 503 first. Use uvicorn for a drain."
            )
        _serve_granian(
            app_path,
            root=root,
            host=host,
            port=port,
            reload=reload,
            workers=workers,
            log_level=log_level,
            forwarded_allow_ips=forwarded_allow_ips,
            settings=settings,
            graceful_timeout=shutdown.graceful_timeout,
        )
        return
    options = server_options(
        app_path,
        root=root,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        log_level=log_level,
        forwarded_allow_ips=forwarded_allow_ips,
        logging_options=_logging_options(settings),
        graceful_timeout=shutdown.graceful_timeout,
    )
    info(f"Serving {app_path} from {root}")
    import uvicorn

    from covet.shutdown import DRAIN_VARIABLE

    # uvicorn restores the previous handlers after a graceful shutdown and
    # re-raises the signal it caught; with these no-op handlers that ends the
    # process normally (exit status 0) instead of as KeyboardInterrupt/SIGTERM.
    previous = {sig: signal.signal(sig, _ignore_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # The app reads the drain when its lifespan starts, in every worker.
    restore = worker_environment(workers, {DRAIN_VARIABLE: f"{drain:g}"})
    catcher = _BindErrorCatcher()
    uvicorn_logger = logging.getLogger("uvicorn.error")
    uvicorn_logger.addFilter(catcher)
    try:
        if workers > 1:
            from covet.cli._workers import serve_workers

            serve_workers(options)
        else:
            uvicorn.run(**options)
    except SystemExit:
        if catcher.error is not None:
            fail(bind_error_message(host, port, catcher.error))
        raise
    finally:
        restore()
        uvicorn_logger.removeFilter(catcher)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_granian(
    app_path: str,
    *,
    root: Path,
    host: str,
    port: int,
    reload: bool,
    workers: int,
    log_level: str,
    forwarded_allow_ips: str,
    settings: Settings | None,
    graceful_timeout: float,
) -> None:
    """Serve ``app_path`` with granian (see :mod:`covet.cli._granian`) until it stops."""
    from covet.cli._granian import granian_options, serve
    from covet.logging import logging_config

    options = granian_options(
        app_path,
        root=root,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        log_level=log_level,
        logging_config=logging_config(_logging_options(settings)),
        graceful_timeout=graceful_timeout,
    )
    info(f"Serving {app_path} from {root} with granian")
    from covet.shutdown import DRAIN_VARIABLE

    # granian stops a worker with SIGTERM once it has stopped accepting: no drain then.
    restore = worker_environment(workers, {DRAIN_VARIABLE: "0"})
    try:
        serve(app_path, options, forwarded_allow_ips)
    finally:
        restore()
