"""``covet shell``: an asyncio REPL with the app, the database and the models loaded.

The shell runs the application's lifespan startup first, so whatever the app
sets up (its database connection, above all) is ready, and ``await`` works
at the top level::

    >>> await Note.objects.count()
    3

The event loop runs in a background thread and every awaited statement is
run on it, so connections opened at startup stay usable for the whole
session. With IPython installed, IPython is used (its ``autoawait`` runs on
the same loop); ``--interface python`` forces the plain console.
"""

from __future__ import annotations

import ast
import asyncio
import code
import contextlib
import importlib
import importlib.util
import inspect
import logging
import sys
import threading
import traceback
import types
from typing import TYPE_CHECKING, Any

import click

from covet.cli._common import LifespanManager, fail, import_app, one_line, project_settings
from covet.exceptions import CovetError

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator

    from covet.config import Settings

__all__ = ("AsyncConsole", "EventLoopThread", "build_namespace", "shell_command")


class EventLoopThread:
    """An asyncio event loop running in a daemon thread, for a synchronous caller."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="covet-shell-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the loop and return its result (Ctrl+C cancels it).

        Raises:
            KeyboardInterrupt: When interrupted; the coroutine is cancelled.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop, wait for its thread and close it."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class AsyncConsole(code.InteractiveConsole):
    """A ``code.InteractiveConsole`` that accepts top-level ``await``.

    Args:
        namespace: The variables of the session.
        runner: The loop thread that runs awaited statements.
    """

    def __init__(self, namespace: dict[str, Any], runner: EventLoopThread) -> None:
        super().__init__(namespace, filename="<covet shell>")
        # The same flag `python -m asyncio` uses: `await` compiles at top level
        # and makes the code object a coroutine function body.
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.runner = runner

    def runcode(self, code: types.CodeType) -> None:
        """Run one compiled statement, on the event loop when it awaits."""
        function = types.FunctionType(code, self.locals)
        try:
            result = function()
            if inspect.iscoroutine(result):
                self.runner.run(result)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            self.write("\nKeyboardInterrupt\n")
        except BaseException:  # noqa: BLE001 - show the user's error and keep the session alive
            self.showtraceback()


def _model_classes(module: types.ModuleType) -> Iterator[tuple[str, type[Any]]]:
    from covet.db import Model

    for name, value in vars(module).items():
        if (
            isinstance(value, type)
            and issubclass(value, Model)
            and value is not Model
            and not value._meta.abstract
            and not name.startswith("_")
        ):
            yield name, value


def build_namespace(settings: Settings | None, app: Any) -> dict[str, Any]:
    """Return the shell's variables: ``app``, ``settings``, ``asyncio`` and every model.

    Models are the :class:`covet.db.Model` subclasses found in the modules of
    ``[tool.covet] models``.

    Raises:
        CommandError: When a models module cannot be imported.
    """
    namespace: dict[str, Any] = {
        "__name__": "__console__",
        "__doc__": None,
        "app": app,
        "asyncio": asyncio,
        "settings": settings,
    }
    for module_name in settings.models if settings is not None else ():
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - reported as a one-line error
            fail(
                f"Could not import the models module {module_name!r}: {type(exc).__name__}: {exc}."
            )
        namespace.update(_model_classes(module))
    return namespace


class _OneLineFormatter(logging.Formatter):
    """Log records as one line, without the traceback (the CLI reports the error)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {one_line(record.getMessage())}"


@contextlib.contextmanager
def _quiet_covet_logging(show_tracebacks: bool) -> Iterator[None]:
    logger = logging.getLogger("covet")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    if not show_tracebacks:
        handler.setFormatter(_OneLineFormatter())
        # covet.error logs a startup failure with its traceback; the CLI
        # turns the same error into its own one-line message instead.
        handler.addFilter(lambda record: record.name != "covet.error")
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


async def _connect_database(settings: Settings | None) -> tuple[Any, bool]:
    """Return the database the app connected at startup, or connect ``DATABASE_URL``.

    Returns:
        The database (``None`` without one) and whether the shell connected
        it itself (and must disconnect it).
    """
    from covet.db import Database, get_database

    with contextlib.suppress(CovetError):
        return get_database(), False
    if settings is None or settings.database_url is None:
        return None, False
    database = Database(settings.database_url)
    await database.connect()
    return database, True


def _banner(namespace: dict[str, Any]) -> str:
    models = sorted(
        name
        for name, value in namespace.items()
        if isinstance(value, type) and name not in ("asyncio",)
    )
    lines = [
        f"covet shell (Python {sys.version.split()[0]}); top-level await works.",
        "Loaded: app, settings, db" + (", " + ", ".join(models) if models else "") + ".",
    ]
    if namespace.get("db") is None:
        lines.append("No database is configured (set DATABASE_URL), so db is None.")
    return "\n".join(lines)


def _run_ipython(namespace: dict[str, Any], runner: EventLoopThread, banner: str) -> None:
    # Imported by name: IPython is optional and ships no type information.
    embed: Any = importlib.import_module("IPython.terminal.embed")
    shell = embed.InteractiveShellEmbed(banner1=banner, user_ns=namespace)
    shell.autoawait = True
    # IPython calls loop_runner(coroutine) for a cell with a top-level await;
    # run it on the loop that owns the database connections.
    shell.loop_runner = runner.run
    shell()


def _run_command(source: str, namespace: dict[str, Any], runner: EventLoopThread) -> None:
    compiled = compile(
        source, "<covet shell -c>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    try:
        result = eval(compiled, namespace)  # noqa: S307 - the user's own code, on purpose
        if inspect.iscoroutine(result):
            runner.run(result)
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - the user's code failed: show its traceback
        traceback.print_exc()
        raise click.exceptions.Exit(1) from None


@click.command("shell")
@click.option(
    "--app",
    "app_path",
    metavar="MODULE:ATTR",
    help="The application to load; defaults to [tool.covet] app.",
)
@click.option(
    "-c",
    "--command",
    "source",
    metavar="CODE",
    help="Run CODE (top-level await allowed) instead of starting an interactive session.",
)
@click.option(
    "--interface",
    type=click.Choice(["auto", "ipython", "python"]),
    default="auto",
    show_default=True,
    help="auto uses IPython when it is installed, else the standard console.",
)
@click.pass_context
def shell_command(
    ctx: click.Context, app_path: str | None, source: str | None, interface: str
) -> None:
    """Open an asyncio-aware Python shell with app, db and the models loaded."""
    use_ipython = interface == "ipython"
    if interface == "auto" and source is None:
        use_ipython = importlib.util.find_spec("IPython") is not None
    if use_ipython and importlib.util.find_spec("IPython") is None:
        fail("--interface ipython needs IPython, which is not installed. Run: pip install ipython")
    settings = project_settings(app_path)
    _, app = import_app(app_path, settings)
    namespace = build_namespace(settings, app)
    show_tracebacks = bool(ctx.find_root().params.get("traceback"))
    runner = EventLoopThread()
    lifespan = LifespanManager(app)
    database: Any = None
    owned = False
    try:
        with _quiet_covet_logging(show_tracebacks):
            runner.run(lifespan.startup())
            database, owned = runner.run(_connect_database(settings))
        namespace["db"] = database
        if source is not None:
            _run_command(source, namespace, runner)
        elif use_ipython:
            _run_ipython(namespace, runner, _banner(namespace))
        else:
            AsyncConsole(namespace, runner).interact(banner=_banner(namespace), exitmsg="")
    finally:
        with _quiet_covet_logging(show_tracebacks):
            try:
                if owned:
                    runner.run(database.disconnect())
                runner.run(lifespan.shutdown())
            finally:
                runner.close()
