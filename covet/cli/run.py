"""``covet run``: serve the project's application with uvicorn.

The app is imported once in this process first, so a broken app gives a
one-line error instead of a server that keeps dying. The server gets the
limits of ``DEFAULTS.md`` (bounded concurrency, keep-alive and shutdown
timeouts, websocket message and incomplete-event sizes) and trusts proxy
headers only from 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from covet.cli._common import fail, import_app, info, warn
from covet.config import Settings, find_project_root, load_settings
from covet.exceptions import CovetError, ImproperlyConfigured

if TYPE_CHECKING:
    from types import FrameType

__all__ = ("RELOAD_INCLUDES", "SERVER_LIMITS", "preflight", "run_command", "server_options")

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
    if reload:
        options["reload"] = True
        options["reload_dirs"] = [str(root)]
        options["reload_includes"] = list(RELOAD_INCLUDES)
        options["reload_excludes"] = [
            str(root / name) for name in _RELOAD_EXCLUDED_DIRS if (root / name).is_dir()
        ]
    return options


async def _ping_database(url: str) -> None:
    from covet.db import Database

    database = Database(url, alias="covet-run-check", min_size=1, max_size=1)
    await database.connect()
    await database.disconnect()


def preflight(settings: Settings) -> None:
    """Check the project's database before starting the server.

    A server whose startup fails prints a traceback per worker; checking in
    this process first turns the usual mistakes into one line: the database
    cannot be reached, or migrations are pending (a warning in debug mode,
    where the app itself only warns too).

    Raises:
        CovetError: The database cannot be reached (``OperationalError``) or,
            outside debug mode, migrations are pending (``ImproperlyConfigured``).
    """
    if settings.database_url is None:
        return
    try:
        asyncio.run(_ping_database(settings.database_url))
    except CovetError as exc:
        raise ImproperlyConfigured(
            f"Cannot connect to the database {_safe_url(settings.database_url)!r}: {exc}. "
            "Check DATABASE_URL and that the database server is running."
        ) from exc
    if not (settings.migrations / "env.py").is_file():
        return
    from covet.db.migrations import check_pending

    pending = check_pending(settings)
    if pending:
        count = len(pending)
        message = (
            f"{count} migration{'s are' if count != 1 else ' is'} not applied to the "
            f"database: {', '.join(pending)}. Run `covet migrate` first."
        )
        if not settings.debug:
            raise ImproperlyConfigured(message)
        warn(message)


def _safe_url(url: str) -> str:
    from covet.db.database import DatabaseURL

    try:
        return DatabaseURL(url).render_as_string(hide_password=True)
    except CovetError:
        return url


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
def run_command(
    host: str,
    port: int,
    reload: bool,
    workers: int,
    app_path: str | None,
    log_level: str,
    forwarded_allow_ips: str,
    check: bool,
) -> None:
    """Serve the application with uvicorn.

    SIGINT (Ctrl+C) or SIGTERM stop the server gracefully, with exit status 0.
    """
    # Checked before importing anything, so the mistake is reported first.
    if reload and workers > 1:
        server_options("", root=Path.cwd(), reload=reload, workers=workers)
    settings: Settings | None = load_settings() if find_project_root() is not None else None
    root = settings.root if settings is not None else Path.cwd()
    app_path, _ = import_app(app_path, settings)
    if settings is not None and check:
        preflight(settings)
    options = server_options(
        app_path,
        root=root,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        log_level=log_level,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    info(f"Serving {app_path} from {root}")
    import uvicorn

    # uvicorn restores the previous handlers after a graceful shutdown and
    # re-raises the signal it caught; with these no-op handlers that ends the
    # process normally (exit status 0) instead of as KeyboardInterrupt/SIGTERM.
    previous = {sig: signal.signal(sig, _ignore_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.run(**options)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
