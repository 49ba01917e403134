"""``covet check``: configuration sanity, and with ``--deploy`` the production checks.

``covet check`` loads the settings, imports the application and the models,
builds the middleware stack (which validates every middleware's options) and
reads the migration heads. ``covet check --deploy`` adds the checks a
production deployment must pass: debug off, a strong ``SECRET_KEY``, an
``allowed_hosts`` list, Secure session cookies with an idle timeout, HSTS and
a Content-Security-Policy where the project serves HTML, no pending
migrations, no SQLite under several worker processes, and no unprotected
metrics endpoint.

Each problem is one line: its ID, its level, what is wrong and the fix::

    covet.E101 ERROR: Debug mode is on (COVET_DEBUG or [tool.covet] debug). Fix: ...

The exit status is 1 when a problem reaches ``--fail-level`` (``ERROR`` by
default), else 0. ``--skip ID`` silences a check that does not apply (HSTS
set by the reverse proxy, say).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import click

from covet.cli._common import describe_error, echo, import_app, project_settings
from covet.exceptions import CovetError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from covet.config import Settings

__all__ = (
    "PLACEHOLDER_SECRET_KEYS",
    "CheckContext",
    "Problem",
    "check_command",
    "deploy_checks",
    "run_checks",
    "weak_secret_key",
)

Level = Literal["ERROR", "WARNING"]

#: Django's rule for a strong key: at least 50 characters, at least 5 different ones.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5

#: Values copied from documentation and examples, refused whatever their length.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "change me",
        "change-me-to-a-long-random-value",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "your-secret-key-here",
        "dotenv secret",
        "old-key",
        "insecure",
        "development",
        "dev",
        "test",
    }
)

#: Seconds ``--deploy`` waits for the database before reporting it unreachable.
DEFAULT_DB_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of ``covet check``.

    Attributes:
        id: A stable identifier (``"covet.E101"``) that ``--skip`` accepts.
        level: ``"ERROR"`` or ``"WARNING"``.
        message: What is wrong, as a sentence.
        fix: What to do, as a sentence.
    """

    id: str
    level: Level
    message: str
    fix: str

    def line(self) -> str:
        """Return the problem as the one line ``covet check`` prints."""
        return f"{self.id} {self.level}: {self.message} Fix: {self.fix}"


@dataclass(slots=True)
class CheckContext:
    """What the checks inspect: the settings, the real app and its built middleware.

    Attributes:
        settings: The project settings (``None`` for ``--app`` outside a project).
        app: The imported application object.
        middleware: The middleware instances of the built stack, outermost first.
        workers: The number of worker processes the deployment runs.
        db_timeout: Seconds to wait for the database.
    """

    settings: Settings | None
    app: Any
    middleware: list[Any] = field(default_factory=list)
    workers: int = 1
    db_timeout: float = DEFAULT_DB_TIMEOUT

    @classmethod
    def for_app(
        cls,
        app: Any,
        settings: Settings | None = None,
        *,
        workers: int = 1,
        db_timeout: float = DEFAULT_DB_TIMEOUT,
    ) -> CheckContext:
        """Build the context for ``app``: its middleware stack is built (and frozen) here.

        Raises:
            Exception: Whatever an invalid middleware option raises.
        """
        context = cls(settings, app, workers=workers, db_timeout=db_timeout)
        context.middleware = _build_stack(app)
        return context

    def instances(self, cls: type[Any]) -> list[Any]:
        """Return the installed middleware instances of ``cls``."""
        return [item for item in self.middleware if isinstance(item, cls)]


def _error(id_: str, message: str, fix: str) -> Problem:
    return Problem(id_, "ERROR", message, fix)


def _warning(id_: str, message: str, fix: str) -> Problem:
    return Problem(id_, "WARNING", message, fix)


# -- plain checks: the project loads ------------------------------------------------------


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Keep ``name``'s records off stderr: the checks report them as problem lines."""
    logger = logging.getLogger(name)
    handler = logging.NullHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _build_stack(app: Any) -> list[Any]:
    """Build the app's middleware stack (validating it) and return its layers, outermost first."""
    from covet.app import Covet

    if not isinstance(app, Covet):
        return []
    with _quiet_logger("covet"):
        layer: Any = app._build("`covet check` inspected the app")
    layers: list[Any] = []
    while layer is not None and layer is not app.router and layer not in layers:
        layers.append(layer)
        layer = getattr(layer, "app", None)
    return layers


def _load(
    app_path: str | None, workers: int, db_timeout: float
) -> tuple[CheckContext | None, list[Problem]]:
    """Load the settings, the app, the models and the stack; report what fails."""
    try:
        settings = project_settings(app_path)
    except CovetError as exc:
        return None, [_error("covet.E001", f"The settings do not load: {exc}", "Fix them.")]
    try:
        _, app = import_app(app_path, settings)
    except CovetError as exc:
        return None, [_error("covet.E002", str(exc), "Fix the application module.")]
    problems: list[Problem] = []
    context = CheckContext(settings, app, workers=workers, db_timeout=db_timeout)
    if settings is not None and settings.models:
        from covet.db.migrations import project_models

        try:
            project_models(settings)
        except Exception as exc:  # noqa: BLE001 - any import error is the user's to fix
            problems.append(
                _error(
                    "covet.E003",
                    f"The models do not import: {describe_error(exc)}",
                    "Fix the modules listed in [tool.covet] models.",
                )
            )
    try:
        context.middleware = _build_stack(app)
    except Exception as exc:  # noqa: BLE001 - a middleware's invalid option, reported as a line
        problems.append(
            _error(
                "covet.E004",
                f"The middleware stack does not build: {describe_error(exc)}",
                "Fix the options passed to add_middleware() or Middleware().",
            )
        )
    if settings is not None and (settings.migrations / "env.py").is_file():
        from covet.db.migrations import MERGE_HINT, heads, make_config

        try:
            found = heads(make_config(settings))
        except Exception as exc:  # noqa: BLE001 - a broken revision file, reported as a line
            problems.append(
                _error(
                    "covet.E005",
                    f"The migration scripts do not load: {describe_error(exc)}",
                    f"Fix the revision files in {str(settings.migrations)!r}.",
                )
            )
        else:
            if len(found) > 1:
                names = ", ".join(item.revision for item in found)
                problems.append(
                    _error("covet.E006", f"The migrations have several heads: {names}.", MERGE_HINT)
                )
    return context, problems


# -- deploy checks --------------------------------------------------------------------------


def weak_secret_key(key: str) -> str | None:
    """Say why ``key`` is too weak for production, or return ``None`` when it is strong.

    A key is weak when it is a known placeholder, shorter than 50 characters
    or made of fewer than 5 different characters (Django's rule).
    """
    if key.strip().lower() in PLACEHOLDER_SECRET_KEYS or key.lower().startswith(
        ("django-insecure", "insecure-", "change-me", "changeme")
    ):
        return "is a placeholder value from documentation or examples"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"has {len(key)} characters, fewer than {SECRET_KEY_MIN_LENGTH}"
    unique = len(set(key))
    if unique < SECRET_KEY_MIN_UNIQUE:
        return f"has only {unique} different characters, fewer than {SECRET_KEY_MIN_UNIQUE}"
    return None


def _middleware_secret_keys(app: Any) -> Iterator[str]:
    for record in getattr(app, "_middleware", ()):
        value = record.kwargs.get("secret_key")
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            yield from (item for item in value if isinstance(item, str))


def check_debug(context: CheckContext) -> Iterator[Problem]:
    """Report debug mode, which shows tracebacks and SQL to anyone who triggers an error."""
    settings_debug = context.settings is not None and context.settings.debug
    if settings_debug or getattr(context.app, "debug", False) is True:
        yield _error(
            "covet.E101",
            "Debug mode is on: error pages show tracebacks, local variables and SQL to "
            "every visitor.",
            "Set COVET_DEBUG=0 in the production environment (and debug = false in [tool.covet]).",
        )


def check_secret_key(context: CheckContext) -> Iterator[Problem]:
    """Report a missing or weak key for signing sessions and tokens."""
    keys: list[tuple[str, str]] = []
    if context.settings is not None and context.settings.secret_key:
        keys.append(("SECRET_KEY", context.settings.secret_key))
    keys.extend(("middleware", key) for key in _middleware_secret_keys(context.app))
    if not keys:
        if context.settings is not None:
            yield _error(
                "covet.E102",
                "SECRET_KEY is not set.",
                'Set SECRET_KEY to the output of `python -c "import secrets; '
                'print(secrets.token_urlsafe(50))"`.',
            )
        return
    seen: set[str] = set()
    for source, key in keys:
        if key in seen:
            continue
        seen.add(key)
        reason = weak_secret_key(key)
        if reason is not None:
            where = "SECRET_KEY" if source == "SECRET_KEY" else "A middleware's secret_key"
            yield _error(
                "covet.E103",
                f"{where} is weak: it {reason}.",
                'Generate a new one with `python -c "import secrets; '
                'print(secrets.token_urlsafe(50))"` and keep it out of the repository.',
            )


def check_allowed_hosts(context: CheckContext) -> Iterator[Problem]:
    """Report an empty host allowlist: the app then answers any Host header."""
    from covet.app import Covet

    if isinstance(context.app, Covet):
        patterns = () if context.app.allowed_hosts is None else context.app.allowed_hosts.patterns
    elif context.settings is not None:
        patterns = context.settings.allowed_hosts
    else:
        return
    if not patterns:
        yield _error(
            "covet.E104",
            "allowed_hosts is empty: the app answers requests for any Host header, which "
            "lets attackers poison caches and password-reset links.",
            "Set ALLOWED_HOSTS=example.com (comma-separated) and pass "
            "allowed_hosts=settings.allowed_hosts to Covet().",
        )
    elif "*" in patterns:
        yield _warning(
            "covet.W105",
            "allowed_hosts contains '*', which accepts any Host header.",
            "List the site's host names instead (ALLOWED_HOSTS=example.com,www.example.com).",
        )


def check_sessions(context: CheckContext) -> Iterator[Problem]:
    """Report session cookies that are not always Secure, and sessions with no idle timeout."""
    from covet.sessions import SessionMiddleware

    for session in context.instances(SessionMiddleware):
        if session.https_only is False:
            yield _error(
                "covet.E106",
                "SessionMiddleware has https_only=False: the session cookie is never "
                "Secure, so browsers also send it over plain HTTP where it can be stolen.",
                "Pass https_only=True to SessionMiddleware (the site is served over HTTPS).",
            )
        elif session.https_only is None:
            yield _warning(
                "covet.W107",
                "SessionMiddleware decides the Secure flag per request (https_only=None): "
                "behind a reverse proxy the cookie is Secure only if the proxy's "
                "X-Forwarded-Proto is trusted (covet run --forwarded-allow-ips).",
                "Pass https_only=True to SessionMiddleware.",
            )
        if session.idle_timeout is None:
            yield _warning(
                "covet.W108",
                "SessionMiddleware has no idle_timeout: a session left open on a shared "
                f"computer stays valid for its whole max_age ({session.max_age} s).",
                "Pass idle_timeout=1800 (seconds) or another limit to SessionMiddleware.",
            )


def _serves_html(context: CheckContext) -> bool:
    """Guess whether the project renders HTML pages (templates, forms, error pages)."""
    from covet.middleware import CSRFMiddleware
    from covet.templates import Templates

    if getattr(context.app, "error_templates", None) is not None:
        return True
    if context.instances(CSRFMiddleware):
        return True
    root = str(context.settings.root) if context.settings is not None else None
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None) or ""
        if root is None or not filename.startswith(root):
            continue
        if any(isinstance(value, Templates) for value in vars(module).values()):
            return True
    return False


def check_security_headers(context: CheckContext) -> Iterator[Problem]:
    """Report HTML served without HSTS (HTTP downgrade) or a CSP (a second line against XSS)."""
    from covet.middleware import SecurityHeadersMiddleware

    if not _serves_html(context):
        return
    found = context.instances(SecurityHeadersMiddleware)
    names = {name for item in found for name, _ in item.headers}
    hsts = [item.hsts for item in found if item.hsts is not None]
    if not hsts or all(value.startswith(b"max-age=0") for value in hsts):
        yield _error(
            "covet.E109",
            "The project serves HTML without HSTS (Strict-Transport-Security): a visitor's "
            "first plain-HTTP request can be intercepted and downgraded.",
            "app.add_middleware(SecurityHeadersMiddleware) (HSTS is on by default; do not pass "
            "hsts_max_age=None or 0), or --skip covet.E109 if the proxy sets HSTS.",
        )
    if b"content-security-policy" not in names:
        yield _error(
            "covet.E110",
            "The project serves HTML without a Content-Security-Policy.",
            "app.add_middleware(SecurityHeadersMiddleware) (its default CSP allows only the "
            "site's own scripts), or --skip covet.E110 if the proxy sets one.",
        )


def _single_writer(database_url: str) -> tuple[bool, str | None]:
    """Return (writes queued per process, database file or None when in memory).

    Raises:
        CovetError: For an invalid URL, or a database file whose directory is missing.
    """
    from covet.db import Database

    database = Database(database_url, alias=f"covet-check-{id(database_url)}")
    if not database.features.serializes_writes_per_process:
        return False, None
    return True, database.backend.creation.migration_lock_file()


def check_workers(context: CheckContext) -> Iterator[Problem]:
    """Report SQLite under several workers: covet's write queue is per process only."""
    settings = context.settings
    if context.workers <= 1 or settings is None or not settings.database_url:
        return
    try:
        single_writer, path = _single_writer(settings.database_url)
    except Exception:  # noqa: BLE001 - an invalid URL is reported by check_migrations
        return
    if not single_writer:
        return
    if path is None:
        yield _error(
            "covet.E114",
            f"DATABASE_URL is an in-memory SQLite database and the run has "
            f"{context.workers} workers: each worker process gets its own empty database.",
            "Use a SQLite file with --workers 1, or PostgreSQL/MySQL.",
        )
        return
    yield _error(
        "covet.E114",
        f"DATABASE_URL is SQLite and the run has {context.workers} workers: covet queues "
        "writes only within one process, so the worker processes contend for SQLite's "
        "database-wide write lock and writes fail with 'database is locked' once one waits "
        "longer than busy_timeout (5 s by default).",
        "Run one worker (--workers 1), or move to PostgreSQL or MySQL.",
    )


def _call_with_timeout(function: Callable[[], Any], timeout: float) -> Any:
    """Call ``function`` in a daemon thread; raise TimeoutError if it takes too long."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="covet-check-database", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def check_migrations(context: CheckContext) -> Iterator[Problem]:
    """Report an unreachable database and migrations not applied to it."""
    from pathlib import Path

    from covet.db.migrations import check_pending

    settings = context.settings
    if settings is None or not (settings.migrations / "env.py").is_file():
        return
    if not settings.database_url:
        yield _error(
            "covet.E112",
            "DATABASE_URL is not set, so the pending migrations cannot be checked.",
            "Set DATABASE_URL in the production environment.",
        )
        return
    try:
        _, path = _single_writer(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - reported as a line
        yield _error("covet.E112", f"The database cannot be used: {exc}", "Fix DATABASE_URL.")
        return
    if path is not None and not Path(path).is_file():
        # Connecting would create an empty file: report it instead.
        yield _error(
            "covet.E112",
            f"The SQLite database {path!r} does not exist.",
            "Check DATABASE_URL, then run `covet migrate` to create it.",
        )
        return
    try:
        pending: list[str] = _call_with_timeout(lambda: check_pending(settings), context.db_timeout)
    except TimeoutError:
        yield _error(
            "covet.E112",
            f"The database did not answer within {context.db_timeout:g} s, so the pending "
            "migrations cannot be checked.",
            "Check that the server is up and reachable from this machine (or raise --db-timeout).",
        )
        return
    except Exception as exc:  # noqa: BLE001 - an unreachable database is one problem line
        yield _error(
            "covet.E112",
            f"The database cannot be reached: {exc}",
            "Check DATABASE_URL and that the server is up.",
        )
        return
    if pending:
        count = len(pending)
        yield _error(
            "covet.E111",
            f"{count} migration{'s are' if count != 1 else ' is'} not applied to the "
            f"database: {', '.join(pending)}. covet refuses to serve an old schema.",
            "Run `covet migrate` before starting the new release.",
        )


def _metrics_endpoints(routes: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """Yield (path, app) for every mounted metrics endpoint, descending into mounts."""
    from covet.routing import Mount, Route

    for route in routes:
        target: Any = None
        if isinstance(route, Mount):
            target = route.app
            children = route.routes
            if children:
                for path, found in _metrics_endpoints(children):
                    yield route.path + path, found
                continue
        elif isinstance(route, Route):
            target = route.endpoint
        if target is not None and _is_metrics(target):
            yield route.path, target


def _is_metrics(target: Any) -> bool:
    kind = type(target)
    return kind.__name__ == "MetricsApp" or kind.__module__.startswith("covet.metrics")


def check_metrics(context: CheckContext) -> Iterator[Problem]:
    """Report a metrics endpoint that anyone can read (routes, traffic, errors).

    A metrics endpoint is a mounted app or route endpoint whose class is
    called ``MetricsApp`` (or comes from ``covet.metrics``). It is unprotected
    unless its ``protected`` attribute is ``True``. Without one, nothing is
    reported.
    """
    for path, endpoint in _metrics_endpoints(getattr(context.app, "routes", ())):
        if getattr(endpoint, "protected", False) is not True:
            yield _error(
                "covet.E115",
                f"The metrics endpoint at {path!r} is public: anyone can read the app's "
                "routes, traffic and error rates.",
                "Protect it (a token or an IP allowlist), or serve it on an internal port only.",
            )


#: The production checks, in the order their lines are printed.
DEPLOY_CHECKS: tuple[Callable[[CheckContext], Iterable[Problem]], ...] = (
    check_debug,
    check_secret_key,
    check_allowed_hosts,
    check_sessions,
    check_security_headers,
    check_migrations,
    check_workers,
    check_metrics,
)


def deploy_checks(context: CheckContext) -> list[Problem]:
    """Run every production check on ``context`` and return the problems found."""
    return [problem for check in DEPLOY_CHECKS for problem in check(context)]


def run_checks(
    app_path: str | None,
    *,
    deploy: bool = False,
    workers: int = 1,
    db_timeout: float = DEFAULT_DB_TIMEOUT,
) -> list[Problem]:
    """Run ``covet check`` (and with ``deploy`` the production checks) for the project.

    Args:
        app_path: An explicit ``"module:attribute"``, or ``None`` for ``[tool.covet] app``.
        deploy: Add the production checks.
        workers: The number of worker processes the deployment runs.
        db_timeout: Seconds to wait for the database.

    Returns:
        The problems, errors and warnings, in check order.
    """
    context, problems = _load(app_path, workers, db_timeout)
    if context is not None and deploy:
        problems.extend(deploy_checks(context))
    return problems


@click.command("check")
@click.option(
    "--app",
    "app_path",
    metavar="MODULE:ATTR",
    help="The application to check; defaults to [tool.covet] app.",
)
@click.option("--deploy", is_flag=True, help="Also run the production checks.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="The number of worker processes production runs (as given to `covet run`).",
)
@click.option(
    "--fail-level",
    type=click.Choice(["ERROR", "WARNING"], case_sensitive=False),
    default="ERROR",
    show_default=True,
    help="Exit with status 1 when a problem of this level (or worse) is found.",
)
@click.option(
    "--skip",
    "skipped",
    multiple=True,
    metavar="ID",
    help="Silence a check by its ID (covet.E109); repeatable.",
)
@click.option(
    "--db-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_DB_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the database before reporting it unreachable.",
)
@click.pass_context
def check_command(
    ctx: click.Context,
    app_path: str | None,
    deploy: bool,
    workers: int,
    fail_level: str,
    skipped: tuple[str, ...],
    db_timeout: float,
) -> None:
    """Check the project loads; with --deploy, check it is ready for production.

    Prints one line per problem (ID, level, what is wrong, the fix) and exits
    with status 1 when a problem reaches --fail-level.
    """
    problems = [
        problem
        for problem in run_checks(app_path, deploy=deploy, workers=workers, db_timeout=db_timeout)
        if problem.id not in skipped
    ]
    for problem in problems:
        click.secho(problem.line(), fg="red" if problem.level == "ERROR" else "yellow")
    errors = sum(problem.level == "ERROR" for problem in problems)
    warnings = len(problems) - errors
    what = "covet check --deploy" if deploy else "covet check"
    if not problems:
        echo(f"{what}: no problems found.")
        return
    echo(
        f"{what}: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}."
    )
    if errors or (fail_level.upper() == "WARNING" and warnings):
        ctx.exit(1)
