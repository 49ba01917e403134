"""Shared plumbing of the ``covet`` commands: errors, output, project loading, lifespan.

Every command reports a user mistake as one line on stderr and a non-zero
exit status. :class:`CovetGroup` does that once for all commands: a
:class:`~covet.exceptions.CovetError` (or any other exception) escaping a
command becomes a :class:`CommandError`, unless the global ``--traceback``
flag asks for the full traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from covet.config import Settings, find_project_root, import_from_string, load_settings
from covet.exceptions import CovetError, ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from covet.types import ASGIApp, Message

__all__ = (
    "CommandError",
    "CovetGroup",
    "LifespanManager",
    "describe_error",
    "echo",
    "fail",
    "import_app",
    "info",
    "one_line",
    "project_settings",
    "set_environ",
    "set_verbose",
    "success",
    "warn",
)

_META_VERBOSE = "covet.verbose"
_META_PROJECT_COMMANDS = "covet.project_commands"


# A sentence end doubled by joining "...file." + ". Do this" (not "..", "/.." or "...").
_DOUBLE_PERIOD = re.compile(r"(?<![./])\.\.(?=\s|$)")
_ERROR_PREFIX = "Error: "


class CommandError(click.ClickException):
    """A user mistake reported as one line (``Error: ...``) with exit status 1.

    click prints the ``Error:`` prefix itself, so a message that starts with
    one already loses it (no ``Error: Error: ...``).
    """

    def __init__(self, message: str) -> None:
        text = one_line(message)
        while text.startswith(_ERROR_PREFIX):
            text = text[len(_ERROR_PREFIX) :]
        super().__init__(text)


def one_line(message: str) -> str:
    """Return ``message`` on one line: whitespace runs collapsed, no doubled final periods."""
    return _DOUBLE_PERIOD.sub(".", " ".join(message.split()))


def describe_error(exc: BaseException) -> str:
    """Return ``"TypeName: message"`` for an unexpected error, as one sentence.

    A class called just ``Error`` (``shutil.Error``, ``binascii.Error``) is
    named with its module, so the line never reads ``Error: Error: ...``.
    """
    kind = type(exc)
    name = kind.__qualname__
    if name == "Error":
        name = f"{kind.__module__}.{name}"
    text = str(exc).strip()
    sentence = f"{name}: {text}" if text else name
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def project_settings(app_path: str | None) -> Settings | None:
    """Return the settings of the project around the current directory.

    Args:
        app_path: The ``--app`` option. With it, a command may run outside a
            project (``None`` is returned then); without it, it needs one.

    Raises:
        ImproperlyConfigured: No project and no ``--app``: the same message
            every command gives outside a project (``covet migrate`` too), or
            the project's settings are invalid.
    """
    if app_path is not None and find_project_root() is None:
        return None
    return load_settings()


def fail(message: str) -> NoReturn:
    """Abort the current command with a one-line error.

    Raises:
        CommandError: Always.
    """
    raise CommandError(message)


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_META_VERBOSE, False))


def echo(message: str) -> None:
    """Print ``message`` on stdout, always (results the user asked for)."""
    click.echo(message)


def info(message: str) -> None:
    """Print a progress detail on stdout, only with the global ``--verbose`` flag."""
    if _verbose():
        click.secho(message, dim=True)


def success(message: str) -> None:
    """Print a short green confirmation on stdout."""
    click.secho(message, fg="green")


def warn(message: str) -> None:
    """Print a yellow one-line warning on stderr."""
    click.secho(f"Warning: {one_line(message)}", fg="yellow", err=True)


def import_app(app_path: str | None, settings: Settings | None) -> tuple[str, Any]:
    """Import the application once, to report any problem as a one-line error.

    Args:
        app_path: An explicit ``"module:attribute"`` (``--app``), or ``None``
            to use ``[tool.covet] app``.
        settings: The project's settings, or ``None`` outside a project (the
            current directory is then put on ``sys.path``).

    Returns:
        The import string used and the application object.

    Raises:
        ImproperlyConfigured: When no application is configured, the import
            fails (the underlying error is named and chained, whatever it is: a
            syntax error in the app is a user mistake too) or the object is not
            callable.
    """
    if app_path is None:
        if settings is None or settings.app is None:
            raise ImproperlyConfigured(
                "No application to load: there is no [tool.covet] app in pyproject.toml. "
                'Pass --app package.module:app, or add app = "package.module:app" to '
                "[tool.covet]."
            )
        app_path = settings.app
    root = str(settings.root if settings is not None else Path.cwd())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        app = import_from_string(app_path)
    except CovetError:
        raise
    except Exception as exc:
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({exc.filename}, line {exc.lineno})"
        raise ImproperlyConfigured(
            f"Could not import the application {app_path!r}{where}: {describe_error(exc)} "
            "Fix the error, or run `covet --traceback ...` to see where it happened."
        ) from exc
    if not callable(app):
        raise ImproperlyConfigured(
            f"{app_path!r} is {app!r}, which is not an ASGI application. Point to the app object."
        )
    return app_path, app


class CovetGroup(click.Group):
    """A click group that adds project commands and turns errors into one line.

    Commands listed in ``[tool.covet] commands`` of the project around the
    current directory are added next to the built-in ones (which win on a
    name clash), so they appear in ``covet --help``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen command, reporting failures as one-line errors.

        Raises:
            CommandError: For an error raised by the command, unless
                ``--traceback`` was given (then the error propagates as is).
        """
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except CovetError as exc:
            if ctx.params.get("traceback"):
                raise
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            if ctx.params.get("traceback"):
                raise
            raise CommandError(
                f"{describe_error(exc)} Run `covet --traceback ...` to see where it happened."
            ) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the built-in and the project's command names, sorted."""
        names = set(super().list_commands(ctx)) | set(self._project_commands(ctx))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the built-in command ``cmd_name``, else the project's one."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return self._project_commands(ctx).get(cmd_name)

    def _project_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        root_ctx = ctx.find_root()
        cached: dict[str, click.Command] | None = root_ctx.meta.get(_META_PROJECT_COMMANDS)
        if cached is None:
            cached = self._load_project_commands()
            root_ctx.meta[_META_PROJECT_COMMANDS] = cached
        return cached

    def _load_project_commands(self) -> dict[str, click.Command]:
        try:
            if find_project_root() is None:
                return {}
            settings = load_settings()
        except CovetError as exc:
            warn(f"Project commands were not loaded: {exc}")
            return {}
        if not settings.commands:
            return {}
        root = str(settings.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        commands: dict[str, click.Command] = {}
        for path in settings.commands:
            try:
                command = import_from_string(path)
            except Exception as exc:  # noqa: BLE001 - a broken project command must not break covet
                warn(f"Project command {path!r} was not loaded: {exc}")
                continue
            if not isinstance(command, click.Command):
                warn(
                    f"Project command {path!r} is {command!r}, not a click command. "
                    "Decorate it with @click.command()."
                )
                continue
            name = command.name or path.rpartition(":")[2]
            if name in self.commands:
                warn(
                    f"Project command {path!r} is called {name!r}, like a built-in command, "
                    "and is hidden by it. Give it another name."
                )
                continue
            commands[name] = command
        return commands


def set_verbose(ctx: click.Context, verbose: bool) -> None:
    """Record the global ``--verbose`` flag for :func:`info`."""
    ctx.meta[_META_VERBOSE] = verbose


class LifespanManager:
    """Run an ASGI application's lifespan startup and shutdown outside a server.

    ``covet shell`` uses it so that everything the app sets up at startup
    (the database connection above all) is ready in the shell.

    Args:
        app: The ASGI application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._receive: asyncio.Queue[Message] = asyncio.Queue()
        self._sent: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.state: dict[str, Any] = {}

    async def _send(self, message: Message) -> None:
        await self._sent.put(message)

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive.get, self._send)
        except Exception as exc:  # noqa: BLE001 - reported to the waiting side below
            await self._sent.put({"type": "covet.lifespan.error", "error": exc})
        else:
            await self._sent.put({"type": "covet.lifespan.finished"})

    async def _expect(self, expected: str, phase: str) -> None:
        message = await self._sent.get()
        kind = message["type"]
        if kind == expected:
            return
        if kind == "covet.lifespan.finished" and phase == "startup":
            # The app does not implement the lifespan protocol: nothing to set up.
            return
        detail = message.get("message", kind)
        if kind == f"lifespan.{phase}.failed":
            # Covet reports the failure, then re-raises: the error itself follows.
            follow = await self._sent.get()
            if follow["type"] == "covet.lifespan.error":
                message = follow
        if message["type"] == "covet.lifespan.error":
            error: BaseException = message["error"]
            if isinstance(error, CovetError):
                raise error
            raise ImproperlyConfigured(
                f"The application's lifespan {phase} failed: {describe_error(error)} "
                "Fix the startup code of the app."
            ) from error
        raise ImproperlyConfigured(
            f"The application's lifespan {phase} failed: {detail!r}. "
            "Fix the startup code of the app."
        )

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the app to finish starting.

        Raises:
            CovetError: The error the app's startup raised, when it is covet's
                own (an unreachable database, say).
            ImproperlyConfigured: For any other startup failure.
        """
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._receive.put({"type": "lifespan.startup"})
        await self._expect("lifespan.startup.complete", "startup")

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the app to finish shutting down."""
        task = self._task
        if task is None:
            return
        self._task = None
        if task.done():
            return
        await self._receive.put({"type": "lifespan.shutdown"})
        try:
            await self._expect("lifespan.shutdown.complete", "shutdown")
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def set_environ(values: Mapping[str, str]) -> Callable[[], None]:
    """Set environment variables (for the server's workers); return what puts the old ones back.

    Call the returned function in a ``finally`` clause: a variable that was
    unset is removed again, one that was set gets its old value.
    """
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)

    def restore() -> None:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore
