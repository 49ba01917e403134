"""Alembic glue: configuration, commands, rename detection, locking and pending checks.

covet runs alembic without an ``alembic.ini``: :func:`make_config` builds its
configuration from the project settings (``[tool.covet]`` and
``DATABASE_URL``), and the project's ``migrations/env.py`` only calls
:func:`run_env`, which

* imports the project's model modules and describes them with
  :func:`covet.db.schema.build_metadata` (the same tables ``create_all`` makes);
* connects over the async driver of the database URL (``aiosqlite``,
  ``asyncpg``, ``aiomysql``) with a ``NullPool`` and runs alembic through
  ``run_sync``;
* runs each revision in its own transaction (``transaction_per_migration``),
  which is atomic on PostgreSQL and SQLite; MySQL cannot roll DDL back, so a
  warning is printed and a failure names the revision and statement;
* holds a migration lock (``pg_advisory_lock``, ``GET_LOCK``, or a lock file
  beside a SQLite database) so concurrent runs apply each revision once;
* uses batch mode (table rebuilds) on SQLite and compares column types.

The command functions (:func:`upgrade`, :func:`revision`, ...) are plain,
synchronous functions over that configuration. The async part runs on a
private event loop in a worker thread, so they may be called from anywhere,
including from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from covet.exceptions import CovetError, ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Callable,
        Collection,
        Coroutine,
        Iterator,
        Mapping,
        Sequence,
    )

    import sqlalchemy as sa
    from alembic.config import Config
    from alembic.operations import ops as alembic_ops
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

    from covet.config import Settings
    from covet.db.database import Database
    from covet.db.models import Model

__all__ = (
    "MERGE_HINT",
    "MigrationError",
    "RenameRequiredError",
    "RevisionInfo",
    "check",
    "check_pending",
    "current",
    "downgrade",
    "ensure_migrated",
    "heads",
    "history",
    "init",
    "init_project_migrations",
    "make_config",
    "merge",
    "project_models",
    "revision",
    "run_env",
    "target_metadata",
    "template_directory",
    "upgrade",
)

logger = logging.getLogger("covet.db.migrations")

#: The command that joins two heads; shown whenever more than one head exists.
MERGE_HINT: Final = 'covet migrations merge -m "merge"'
#: The file name pattern of new revisions: they sort by creation time.
FILE_TEMPLATE: Final = (
    "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"
)
#: Seconds a run waits for another run's migration lock before giving up.
LOCK_TIMEOUT: Final = 600.0
MYSQL_WARNING: Final = (
    "Warning: MySQL cannot roll back DDL, so a revision that fails part-way stays partly applied."
)

# Keys of Config.attributes through which covet passes Python objects to env.py.
_SETTINGS: Final = "covet.settings"
_ECHO: Final = "covet.echo"
_COMMAND: Final = "covet.command"
_MODELS: Final = "covet.models"
_LOCK_TIMEOUT: Final = "covet.lock_timeout"
_BLANK: Final = "covet.blank"
_MEMORY: Final = "sqlite:///:memory:"
_T = TypeVar("_T")


class MigrationError(CovetError):
    """A migration command failed; the message says what happened and what to do."""


class RenameRequiredError(MigrationError):
    """Autogenerate found a possible rename and no one said whether it is one."""


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """One revision script, as listed by :func:`history` and :func:`heads`.

    Attributes:
        revision: The revision id.
        down_revisions: The revisions it follows (two or more for a merge).
        message: Its message (the first line of its docstring).
        is_head: Whether no revision follows it.
        is_branch_point: Whether two or more revisions follow it.
        path: The script file.
    """

    revision: str
    down_revisions: tuple[str, ...]
    message: str
    is_head: bool
    is_branch_point: bool
    path: Path

    @property
    def is_merge(self) -> bool:
        """Tell whether this revision joins two or more branches."""
        return len(self.down_revisions) > 1

    def __str__(self) -> str:
        parents = ", ".join(self.down_revisions) or "<base>"
        marks = "".join(
            mark
            for flag, mark in (
                (self.is_head, " (head)"),
                (self.is_branch_point, " (branchpoint)"),
                (self.is_merge, " (merge)"),
            )
            if flag
        )
        return f"{parents} -> {self.revision}{marks}, {self.message}"


# -- project, template and configuration ----------------------------------------------------


def template_directory() -> Path:
    """Return the directory of the migrations template shipped with covet.

    In a wheel it is ``covet/migrations_template``; in a source checkout it
    is ``migrations_template`` at the top of the repository.

    Raises:
        ImproperlyConfigured: The template is missing from the installation.
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "migrations_template", package.parent / "migrations_template"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ImproperlyConfigured(
        f"The migrations template is missing from the covet installation at {str(package)!r}. "
        "Reinstall covet."
    )


def init(settings: Settings) -> Path:
    """Create the project's migrations directory from the template, if it is missing.

    Copies ``env.py``, ``script.py.mako`` and ``README`` and creates an
    empty ``versions/`` directory. Existing files are left alone.

    Args:
        settings: The project settings (``settings.migrations`` is the target).

    Returns:
        The migrations directory.
    """
    directory = settings.migrations
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    source = template_directory()
    for name in ("env.py", "script.py.mako", "README"):
        target = directory / name
        if not target.exists():
            shutil.copyfile(source / name, target)
    return directory


def init_project_migrations(directory: Path, *, message: str = "initial") -> list[Path]:
    """Create a new project's migrations directory and its first revision.

    The revision is generated from the project's models against an empty
    database, so the project's own database need not exist yet.

    Args:
        directory: The project root (where ``pyproject.toml`` is).
        message: The first revision's message.

    Returns:
        The files created, relative to ``directory``.
    """
    from covet.config import load_settings

    settings = load_settings(directory)
    before = set(_files(settings.migrations))
    config = make_config(settings, echo=lambda message: None)
    config.attributes[_BLANK] = True
    revision(config, message)
    root = settings.root
    return sorted(path.relative_to(root) for path in _files(settings.migrations) - before)


def _files(directory: Path) -> set[Path]:
    if not directory.is_dir():
        return set()
    return {
        path for path in directory.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }


def _default_echo(message: str) -> None:
    sys.stderr.write(message + "\n")


def make_config(
    settings: Settings,
    *,
    echo: Callable[[str], None] | None = None,
    stdout: Any = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Config:
    """Build alembic's configuration for the project (no ``alembic.ini`` needed).

    Args:
        settings: The project settings (from :func:`covet.config.load_settings`).
        echo: Where notices and warnings go (default: standard error).
        stdout: Where SQL of ``--sql`` runs goes (default: standard output).
        lock_timeout: Seconds to wait for another run's migration lock.

    Returns:
        An :class:`alembic.config.Config`; pass it to the commands of this module.
    """
    import argparse

    from alembic.config import Config

    out = stdout if stdout is not None else sys.stdout
    # quiet: covet reports through ``echo``; the SQL of --sql runs goes to ``out``.
    config = Config(stdout=out, output_buffer=out, cmd_opts=argparse.Namespace(quiet=True))
    config.set_main_option("script_location", str(settings.migrations))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("truncate_slug_length", "40")
    config.attributes[_SETTINGS] = settings
    config.attributes[_ECHO] = echo or _default_echo
    config.attributes[_LOCK_TIMEOUT] = lock_timeout
    return config


def _settings(config: Config) -> Settings:
    settings = config.attributes.get(_SETTINGS)
    if settings is None:
        from covet.config import load_settings

        settings = load_settings()
        config.attributes[_SETTINGS] = settings
    return settings


def _echo(config: Config, message: str) -> None:
    echo: Callable[[str], None] = config.attributes.get(_ECHO, _default_echo)
    echo(message)


def _script_directory(config: Config, *, create: bool = False) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    settings = _settings(config)
    if not (settings.migrations / "env.py").is_file():
        if not create:
            raise MigrationError(
                f"There is no migrations directory at {str(settings.migrations)!r}. "
                'Create the first revision with `covet makemigrations -m "initial"`.'
            )
        init(settings)
        _echo(config, f"Created the migrations directory {str(settings.migrations)!r}.")
    return ScriptDirectory.from_config(config)


def _single_head(script: ScriptDirectory) -> None:
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"There are {len(heads)} heads ({', '.join(sorted(heads))}): two branches of "
            f"migrations were made in parallel. Join them with `{MERGE_HINT}`, then run the "
            "command again."
        )


# -- models and metadata --------------------------------------------------------------------


def project_models(settings: Settings) -> list[type[Model]]:
    """Import the project's model modules and return their concrete models.

    Models are the :class:`~covet.db.Model` subclasses found in the modules
    named by ``settings.models``, plus every model they reference through a
    foreign key (many-to-many join models are added by the schema builder).

    Raises:
        ImproperlyConfigured: A module cannot be imported.
    """
    import importlib

    from covet.db.fields import ForeignKey
    from covet.db.models import Model

    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    found: dict[type[Model], None] = {}
    for name in settings.models:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Could not import the models module {name!r}: {type(exc).__name__}: {exc}. "
                "Check [tool.covet] models in pyproject.toml."
            ) from exc
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Model)
                and value is not Model
                and not value._meta.abstract
            ):
                found[value] = None
    queue = list(found)
    while queue:
        model = queue.pop()
        for item in model._meta.concrete_fields:
            if isinstance(item, ForeignKey) and item.related_model not in found:
                found[item.related_model] = None
                queue.append(item.related_model)
    return list(found)


def target_metadata(settings: Settings, *, ops: Any = None) -> sa.MetaData:
    """Return the SQLAlchemy ``MetaData`` of the project's models (what autogenerate targets).

    Args:
        settings: The project settings.
        ops: The database's operations, for MySQL table options.
    """
    from covet.db.schema import build_metadata

    return build_metadata(project_models(settings), ops=ops)


# -- connecting -----------------------------------------------------------------------------


@dataclass
class _Target:
    """How alembic reaches the project's database."""

    vendor: str
    dialect_name: str
    url: str
    display: str
    database: Database
    lock_key: int = 0
    lock_name: str = ""
    sqlite_path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _target(settings: Settings, *, url_override: str | None = None) -> _Target:
    from covet.db.database import Database

    database_url = url_override or settings.database_url
    if not database_url:
        raise ImproperlyConfigured(
            "No database is configured for migrations. Set DATABASE_URL (in the environment "
            "or .env) or database_url in [tool.covet]."
        )
    # An unconnected Database parses the URL and options exactly as the app does.
    database = Database(database_url, alias=f"covet-migrations-{id(settings)}")
    url = database.url
    vendor = database.vendor
    options = dict(database.settings)
    names = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}
    if vendor not in names:
        raise ImproperlyConfigured(
            f"Migrations do not support the {vendor!r} backend of {url}. "
            "Use SQLite, PostgreSQL or MySQL."
        )
    scope = f"{url.host}:{url.port}/{url.database}/{options.get('search_path') or ''}"
    digest = hashlib.sha256(f"covet.migrations:{scope}".encode()).digest()
    target = _Target(
        vendor=vendor,
        dialect_name=names[vendor],
        url=url.render_as_string(hide_password=False),
        display=str(url),
        database=database,
        lock_key=int.from_bytes(digest[:8], "big", signed=True),
        # MySQL lock names are at most 64 characters.
        lock_name=f"covet_migrations_{digest.hex()[:32]}",
        options=options,
    )
    if vendor == "sqlite" and url.database != ":memory:":
        target.sqlite_path = str(Path(url.database).resolve())
    return target


def _engine(target: _Target) -> Any:
    """Create an async engine (NullPool) whose connections match the app's driver setup."""
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    options = target.options
    if target.vendor == "sqlite":
        path = target.sqlite_path or ":memory:"
        engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            poolclass=NullPool,
            connect_args={"timeout": options.get("busy_timeout", 5000) / 1000},
        )

        # pysqlite would not BEGIN before DDL, so a failing revision could not be
        # rolled back; take over transaction control (SQLAlchemy's documented recipe).
        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if target.vendor == "postgres":
        return create_async_engine(
            "postgresql+asyncpg://", poolclass=NullPool, async_creator=_postgres_creator(target)
        )
    return create_async_engine(
        "mysql+aiomysql://", poolclass=NullPool, async_creator=_mysql_creator(target)
    )


def _postgres_creator(target: _Target) -> Callable[[], Coroutine[Any, Any, Any]]:
    import urllib.parse

    from covet.db.backends.postgres import PostgresBackend

    url = target.database.url
    options = target.options
    # Like the app's pool: driver keys (sslmode...) stay in the DSN, covet's options go.
    passthrough = {k: v for k, v in url.query.items() if k in PostgresBackend.driver_query_keys}
    dsn = url.without_query().replace("postgresql+asyncpg://", "postgresql://", 1)
    dsn = dsn.replace("postgres://", "postgresql://", 1)
    if passthrough:
        dsn += "?" + urllib.parse.urlencode(passthrough)
    server_settings = dict(options.get("server_settings") or {})
    if options.get("search_path"):
        server_settings["search_path"] = options["search_path"]
    server_settings.setdefault("application_name", "covet-migrations")

    async def create() -> Any:
        import asyncpg

        return await asyncpg.connect(dsn, server_settings=server_settings)

    return create


def _mysql_creator(target: _Target) -> Callable[[], Coroutine[Any, Any, Any]]:
    url = target.database.url
    options = target.options

    async def create() -> Any:
        import aiomysql

        kwargs: dict[str, Any] = {
            "user": url.username or "root",
            "password": url.password or "",
            "db": url.database,
            "charset": "utf8mb4",
            "connect_timeout": options.get("connect_timeout", 10.0),
            "local_infile": False,
            "init_command": f"SET SESSION sql_mode = '{options.get('sql_mode', '')}'",
        }
        if options.get("unix_socket"):
            kwargs["unix_socket"] = options["unix_socket"]
        else:
            kwargs["host"] = url.host or "127.0.0.1"
            kwargs["port"] = url.port or 3306
        return await aiomysql.connect(**kwargs)

    return create


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine on a private event loop in a worker thread and return its result.

    A worker thread works both from plain code and from inside a running loop
    (an app's startup, an async test), and leaves the caller's loop alone.
    """
    outcome: dict[str, Any] = {}

    def main() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=main, name="covet-migrations", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def _file_lock(path: str | None, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.migrate.lock`` (SQLite's migration lock)."""
    if path is None:
        yield
        return
    lock_path = f"{path}.migrate.lock"
    deadline = time.monotonic() + timeout
    with Path(lock_path).open("a+b") as handle:
        while True:
            try:
                _try_lock_file(handle)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise MigrationError(
                        f"Another migration run has held the lock {lock_path!r} for more "
                        f"than {timeout:g} s. Wait for it to finish, or remove the file if "
                        "no migration is running."
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            _unlock_file(handle)


def _try_lock_file(handle: Any) -> None:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_file(handle: Any) -> None:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire_server_lock(connection: Connection, target: _Target, timeout: float) -> None:
    """Take the session-level migration lock on PostgreSQL or MySQL, then commit.

    The commit ends the transaction that the lock query began, so alembic
    sees a clean connection and opens one transaction per revision; both
    locks belong to the session and outlive the commit.
    """
    from sqlalchemy import text

    if target.vendor == "postgres":
        deadline = time.monotonic() + timeout
        query = text("SELECT pg_try_advisory_lock(:key)")
        while not connection.execute(query, {"key": target.lock_key}).scalar():
            connection.commit()
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"Another migration run has held the migration lock on {target.display} "
                    f"for more than {timeout:g} s. Wait for it to finish and try again."
                )
            time.sleep(0.1)
    elif target.vendor == "mysql":
        got = connection.execute(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": target.lock_name, "timeout": int(timeout)},
        ).scalar()
        if got != 1:
            raise MigrationError(
                f"Another migration run has held the migration lock on {target.display} for "
                f"more than {timeout:g} s. Wait for it to finish and try again."
            )
    connection.commit()


def _release_server_lock(connection: Connection, target: _Target) -> None:
    from sqlalchemy import text

    # Closing the connection releases the lock too, so a failure here is harmless.
    with contextlib.suppress(Exception):
        if connection.in_transaction():
            connection.rollback()
        if target.vendor == "postgres":
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": target.lock_key})
        elif target.vendor == "mysql":
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": target.lock_name})
        connection.commit()


async def _mysql_ops(target: _Target) -> Any:
    """Return MySQL operations refined from the server (its binary collation)."""
    from covet.db.database import Database

    probe = Database(target.url, alias=f"covet-migrations-probe-{id(target)}", min_size=1)
    await probe.connect()
    try:
        return probe.ops
    finally:
        await probe.disconnect()


def _read_heads(connection: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    if connection.in_transaction():
        connection.rollback()
    return heads


@contextlib.asynccontextmanager
async def _connect(engine: Any, target: _Target) -> AsyncIterator[Any]:
    """Open a connection, turning a failure to connect into a clear MigrationError."""
    connection = engine.connect()
    try:
        await connection.start()
    except Exception as exc:
        # OSError, or the driver's / SQLAlchemy's own class for a refused login.
        raise _unreachable(target, exc) from exc
    try:
        yield connection
    finally:
        await connection.close()


def _unreachable(target: _Target, exc: BaseException) -> MigrationError:
    error = getattr(exc, "orig", None) or exc
    return MigrationError(
        f"Cannot connect to the database {target.display}: {type(error).__name__}: {error}. "
        "Check DATABASE_URL and that the database server is running."
    )


async def _database_heads(target: _Target) -> tuple[str, ...]:
    engine = _engine(target)
    try:
        async with _connect(engine, target) as connection:
            heads: tuple[str, ...] = await connection.run_sync(_read_heads)
            return heads
    finally:
        await engine.dispose()


# -- env.py ---------------------------------------------------------------------------------


def run_env() -> None:
    """Run alembic's environment for a covet project (what ``migrations/env.py`` calls).

    Loads the settings (from the config covet built, else from the current
    directory), the models and the database URL, then runs the migrations
    offline (``--sql``) or online under the migration lock.
    """
    from alembic import context

    config = context.config
    settings = _settings(config)
    if config.attributes.get(_BLANK):
        # The first revision of a new project: compare with an empty database, but
        # describe the tables for the project's own database (MySQL table options).
        ops = _target(settings, url_override=settings.database_url or _MEMORY).database.ops
        blank = _target(settings, url_override=_MEMORY)
        _run_async(lambda: _run_online(context, config, settings, blank, 0.0, ops=ops))
        return
    target = _target(settings)
    lock_timeout = float(config.attributes.get(_LOCK_TIMEOUT, LOCK_TIMEOUT))
    if context.is_offline_mode():
        ops = target.database.ops
        if target.vendor == "mysql":
            # The collation comes from the server when it can be reached; else the default.
            with contextlib.suppress(Exception):
                ops = _run_async(lambda: _mysql_ops(target))
        _configure(context, config, settings, target, ops, connection=None)
        with context.begin_transaction():
            context.run_migrations()
        return
    with _file_lock(target.sqlite_path, lock_timeout):
        _run_async(lambda: _run_online(context, config, settings, target, lock_timeout))


def _configure(
    context: Any,
    config: Config,
    settings: Settings,
    target: _Target,
    ops: Any,
    *,
    connection: Connection | None,
) -> None:
    models = project_models(settings)
    from covet.db.schema import build_metadata

    metadata = build_metadata(models, ops=ops)
    config.attributes[_MODELS] = models
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "render_as_batch": target.vendor == "sqlite",
        "compare_type": _compare_type,
        "transaction_per_migration": True,
        "include_name": _include_name,
        "on_version_apply": functools.partial(_applied, config),
        "render_item": _render_item,
    }
    if connection is None:
        options.update(
            dialect_name=target.dialect_name,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
    else:
        options["connection"] = connection
    context.configure(**options)


def _applied(config: Config, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    if ctx.as_sql or getattr(step, "is_stamp", False):
        return
    script = step.up_revision
    doc = (getattr(script, "doc", "") or "").strip().splitlines()
    label = f"{step.up_revision_id}" + (f" ({doc[0]})" if doc else "")
    _echo(config, f"{'Applied' if step.is_upgrade else 'Reverted'} {label}.")


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Add the imports alembic's default rendering needs but does not write.

    Rendered away from PostgreSQL, ``JSONB(astext_type=Text())`` names a bare
    ``Text``; the JSON columns of ``build_metadata`` carry such a variant.
    """
    if type_ == "type" and autogen_context.dialect.name != "postgresql":
        variants = getattr(obj, "_variant_mapping", {}).values()
        if any(type(variant).__name__ == "JSONB" for variant in variants):
            autogen_context.imports.add("from sqlalchemy import Text")
    return False


def _include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    # SQLite's own bookkeeping tables are never the project's.
    return not (type_ == "table" and name is not None and name.startswith("sqlite_"))


def _compare_type(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: Any,
    metadata_type: Any,
) -> bool | None:
    """Report a type change only where the column's storage really differs.

    Returns False for reflections that name the same storage differently
    (MySQL ``TINYINT(1)`` for booleans, MariaDB ``LONGTEXT`` for JSON) and None
    to let alembic decide everything else.
    """
    import sqlalchemy as sa

    dialect = context.dialect
    resolved = metadata_type.dialect_impl(dialect)
    if isinstance(resolved, sa.Boolean) and isinstance(inspected_type, sa.Integer):
        return False
    if isinstance(resolved, sa.JSON) and isinstance(inspected_type, sa.Text | sa.JSON):
        return False
    return None


async def _run_online(
    context: Any,
    config: Config,
    settings: Settings,
    target: _Target,
    lock_timeout: float,
    *,
    ops: Any = None,
) -> None:
    if ops is None:
        ops = await _mysql_ops(target) if target.vendor == "mysql" else target.database.ops
    engine = _engine(target)
    command = config.attributes.get(_COMMAND)
    try:
        async with _connect(engine, target) as connection:
            await connection.run_sync(_acquire_server_lock, target, lock_timeout)
            try:
                if target.vendor == "mysql" and command in ("upgrade", "downgrade"):
                    _echo(config, MYSQL_WARNING)
                await connection.run_sync(_run_migrations, context, config, settings, target, ops)
            except MigrationError:
                raise
            except Exception as exc:
                if command not in ("upgrade", "downgrade"):
                    raise
                at = await connection.run_sync(_heads_after_failure)
                raise MigrationError(_failure_message(exc, target, at)) from exc
            finally:
                await connection.run_sync(_release_server_lock, target)
    finally:
        await engine.dispose()


def _run_migrations(
    connection: Connection,
    context: Any,
    config: Config,
    settings: Settings,
    target: _Target,
    ops: Any,
) -> None:
    _configure(context, config, settings, target, ops, connection=connection)
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


def _heads_after_failure(connection: Connection) -> tuple[str, ...] | None:
    with contextlib.suppress(Exception):
        if connection.in_transaction():
            connection.rollback()
        return _read_heads(connection)
    return None


def _failed_revision(exc: BaseException) -> str | None:
    """Return the id of the revision script in whose code ``exc`` was raised."""
    failed = None
    traceback = exc.__traceback__
    while traceback is not None:
        module_globals = traceback.tb_frame.f_globals
        if "down_revision" in module_globals and isinstance(module_globals.get("revision"), str):
            failed = module_globals["revision"]
        traceback = traceback.tb_next
    return failed


def _failure_message(exc: BaseException, target: _Target, at: tuple[str, ...] | None) -> str:
    failed = _failed_revision(exc)
    statement = None
    cause: BaseException | None = exc
    while cause is not None and statement is None:
        statement = getattr(cause, "statement", None)
        cause = cause.__cause__ or cause.__context__
    error = getattr(exc, "orig", None) or exc
    where = f"Revision {failed!r}" if failed else "A revision"
    text = f"{where} failed"
    if statement:
        text += f" on the statement {' '.join(str(statement).split())!r}"
    text += f": {type(error).__name__}: {error}."
    state = ", ".join(at) if at else "base (no revision)"
    if at is None:
        state = "unknown"
    if target.vendor == "mysql":
        text += (
            f" MySQL cannot roll back DDL: the statements of this revision before the failing "
            f"one stay applied, and the database is recorded at revision {state}. Undo those "
            "statements by hand (or make the revision skip them), fix the revision, then run "
            "`covet migrate` again."
        )
    else:
        text += (
            f" The revision was rolled back; the database is at revision {state}. Fix the "
            "revision, then run `covet migrate` again."
        )
    return text


# -- commands -------------------------------------------------------------------------------


def _translate(error: Exception) -> MigrationError:
    message = str(error).strip()
    if not message.endswith("."):
        message += "."
    return MigrationError(message)


@contextlib.contextmanager
def _command(config: Config, name: str) -> Iterator[None]:
    from alembic.util import CommandError

    config.attributes[_COMMAND] = name
    try:
        yield
    except CommandError as exc:
        if "requires a live database connection" in str(exc):
            failed = _failed_revision(exc)
            where = f"revision {failed!r}" if failed else "a revision"
            raise MigrationError(
                f"`--sql` cannot render {where} on SQLite: it rebuilds a table (batch "
                "mode), which needs the live database to read the table from. Run "
                "`covet migrate` against the database instead, or print a range that "
                "stops before it (`covet migrate FROM:TO --sql`)."
            ) from exc
        if "Target database is not up to date" in str(exc):
            raise MigrationError(
                "The database is not at the newest revision, so the models cannot be "
                "compared with it. Run `covet migrate` first."
            ) from exc
        raise _translate(exc) from exc
    finally:
        config.attributes.pop(_COMMAND, None)


def upgrade(config: Config, revision: str = "head", *, sql: bool = False) -> None:
    """Upgrade the database to ``revision`` (default: the newest).

    Args:
        config: From :func:`make_config`.
        revision: A revision id (or unique prefix), ``head``, ``+1``; with
            ``sql``, also ``FROM:TO``.
        sql: Write the SQL to the config's stdout instead of running it (from
            the base unless ``revision`` is a ``FROM:TO`` range).

    Raises:
        MigrationError: There are two heads, the revision is unknown, or a
            revision failed (the message names it and the statement).
    """
    from alembic import command

    script = _script_directory(config)
    if revision in ("head", "heads") or revision.endswith(":head"):
        _single_head(script)
    with _command(config, "upgrade"):
        command.upgrade(config, revision, sql=sql)


def downgrade(config: Config, revision: str, *, sql: bool = False) -> None:
    """Downgrade the database to ``revision`` (``base`` removes every revision).

    Args:
        config: From :func:`make_config`.
        revision: A revision id, ``base`` or ``-1``; with ``sql`` the range
            starts at ``head`` unless ``revision`` is ``FROM:TO``.
        sql: Write the SQL instead of running it.

    Raises:
        MigrationError: The revision is unknown or a revision failed.
    """
    from alembic import command

    _script_directory(config)
    if sql and ":" not in revision:
        revision = f"head:{revision}"
    with _command(config, "downgrade"):
        command.downgrade(config, revision, sql=sql)


def revision(
    config: Config,
    message: str,
    *,
    autogenerate: bool = True,
    renames: Mapping[str, str] | None = None,
    not_renamed: Collection[str] = (),
    confirm: Callable[[str], bool] | None = None,
) -> Path | None:
    """Write a new revision script, by default autogenerated from the models.

    When the models drop a column and add one of a compatible type to the
    same table (or drop a table and add one like it), covet does not guess:
    ``renames`` (``{"posts.title": "headline", "author": "writer"}``) and
    ``not_renamed`` (``{"posts.title"}``) answer, else ``confirm`` is asked
    "Did you rename ...?", else :class:`RenameRequiredError` is raised.

    Args:
        config: From :func:`make_config`.
        message: The revision's message (its docstring and file name).
        autogenerate: Compare the models with the database; False writes an
            empty revision for a hand-written (data) migration.
        renames: Known renames, ``"table.old": "new"`` or ``"old_table": "new_table"``.
        not_renamed: Columns (``table.column``) or tables that really were dropped.
        confirm: Asks a yes/no question (interactive runs).

    Returns:
        The new script's path, or None when the models and the database agree.

    Raises:
        MigrationError: The database is behind the newest revision, there are
            two heads, or a rename answer matches nothing.
        RenameRequiredError: A possible rename was left unanswered.
    """
    from alembic import command

    script_directory = _script_directory(config, create=True)
    _single_head(script_directory)
    rewriter = _Rewriter(config, dict(renames or {}), set(not_renamed), confirm)
    with _command(config, "revision"):
        if autogenerate:
            result = command.revision(
                config,
                message,
                autogenerate=True,
                process_revision_directives=rewriter,
            )
        else:
            result = command.revision(config, message)
    scripts = result if isinstance(result, list) else [result]
    for item in scripts:
        if item is not None:
            return Path(item.path)
    return None


def check(config: Config) -> list[str]:
    """Return the schema changes in the models that no revision covers (empty: none).

    Raises:
        MigrationError: The database is not at the newest revision (run
            :func:`upgrade` first), or there are two heads.
    """
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected

    _single_head(_script_directory(config))
    with _command(config, "check"):
        try:
            command.check(config)
        except AutogenerateDiffsDetected as exc:
            return [_describe_diff(diff) for diff in exc.diffs]
    return []


def _describe_diff(diff: Any) -> str:
    if isinstance(diff, list):
        return "; ".join(_describe_diff(item) for item in diff)
    kind = diff[0]
    names = []
    for item in diff[1:]:
        name = getattr(item, "name", None)
        table = getattr(getattr(item, "table", None), "name", None)
        if name is not None:
            names.append(f"{table}.{name}" if table and table != name else str(name))
        elif isinstance(item, str):
            names.append(item)
    return f"{kind} {' '.join(names[:3])}".strip()


def current(config: Config) -> list[str]:
    """Return the revisions the database is at (empty: none applied yet)."""
    target = _target(_settings(config))
    return list(_run_async(lambda: _database_heads(target)))


def history(config: Config) -> list[RevisionInfo]:
    """Return every revision script, newest first (no database needed)."""
    script = _script_directory(config)
    return [_info(item) for item in script.walk_revisions()]


def heads(config: Config) -> list[RevisionInfo]:
    """Return the head revisions (more than one means branches to merge)."""
    script = _script_directory(config)
    return [_info(item) for item in script.get_revisions("heads")]


def _info(item: Any) -> RevisionInfo:
    down = item.down_revision
    downs = () if down is None else (down,) if isinstance(down, str) else tuple(down)
    return RevisionInfo(
        revision=item.revision,
        down_revisions=downs,
        message=(item.doc or "").strip().splitlines()[0] if (item.doc or "").strip() else "",
        is_head=bool(item.is_head),
        is_branch_point=bool(item.is_branch_point),
        path=Path(item.path),
    )


def merge(config: Config, message: str, revisions: Sequence[str] = ("heads",)) -> Path:
    """Write a revision that joins ``revisions`` (default: all heads) into one head.

    Raises:
        MigrationError: There is only one head to merge.
    """
    from alembic import command

    script = _script_directory(config)
    if list(revisions) == ["heads"] and len(script.get_heads()) < 2:
        raise MigrationError("There is only one head, so there is nothing to merge.")
    with _command(config, "merge"):
        result = command.merge(config, list(revisions), message=message)
    if result is None:
        raise MigrationError("alembic wrote no merge revision. Check the revisions given.")
    return Path(result.path)


# -- pending migrations at startup ----------------------------------------------------------


def _pending(script: ScriptDirectory, applied: Sequence[str]) -> list[str]:
    """Return the revisions between ``applied`` and the heads, oldest first."""
    done: set[str] = set()
    stack = list(applied)
    while stack:
        rev = stack.pop()
        if rev in done:
            continue
        item = script.revision_map.get_revision(rev)
        if item is None:
            continue
        done.add(item.revision)
        stack.extend(item._all_down_revisions)
    ordered = [item.revision for item in script.walk_revisions()]
    return [rev for rev in reversed(ordered) if rev not in done]


def _known(script: ScriptDirectory, applied: Sequence[str]) -> list[str]:
    from alembic.script.revision import RevisionError

    known = []
    for rev in applied:
        try:
            script.revision_map.get_revision(rev)
        except RevisionError:
            logger.warning(
                "The database is at revision %r, which is not among the project's "
                "migrations (newer code migrated it?); it is ignored.",
                rev,
            )
            continue
        known.append(rev)
    return known


def check_pending(settings: Settings) -> list[str]:
    """Return the revisions not yet applied to the database, oldest first.

    Cheap: it reads ``alembic_version`` and the scripts, without autogenerate.
    A project without a migrations directory has nothing pending.
    """
    if not (settings.migrations / "env.py").is_file():
        return []
    config = make_config(settings)
    script = _script_directory(config)
    target = _target(settings)
    applied = _run_async(lambda: _database_heads(target))
    return _pending(script, _known(script, applied))


async def ensure_migrated(database: Database, settings: Settings, debug: bool) -> list[str]:
    """Refuse to run against an old schema: raise in production, log a warning in debug.

    Call it at startup with the app's connected database.

    Args:
        database: A connected :class:`~covet.db.Database` (reads ``alembic_version``).
        settings: The project settings (finds the migration scripts).
        debug: Warn instead of raising.

    Returns:
        The pending revisions (empty when the database is up to date).

    Raises:
        ImproperlyConfigured: Migrations are pending and ``debug`` is False.
    """
    from covet.db.exceptions import DatabaseError

    if not (settings.migrations / "env.py").is_file():
        return []
    script = _script_directory(make_config(settings))
    try:
        rows = await database.fetch_all("SELECT version_num FROM alembic_version")
    except DatabaseError:
        rows = []  # no version table yet: nothing has been applied
    pending = _pending(script, _known(script, [str(row[0]) for row in rows]))
    if pending:
        count = len(pending)
        message = (
            f"{count} migration{'s are' if count != 1 else ' is'} pending: "
            f"{', '.join(pending)}; run `covet migrate`."
        )
        if not debug:
            raise ImproperlyConfigured(message)
        logger.warning(message)
    return pending


# -- autogenerate rewriting: renames and NOT NULL backfills ---------------------------------


class _Rewriter:
    """The ``process_revision_directives`` hook of :func:`revision`."""

    def __init__(
        self,
        config: Config,
        renames: dict[str, str],
        not_renamed: set[str],
        confirm: Callable[[str], bool] | None,
    ) -> None:
        self.config = config
        self.renames = renames
        self.not_renamed = not_renamed
        self.confirm = confirm
        self.used: set[str] = set()
        self.unanswered: list[tuple[str, str]] = []

    def __call__(self, context: MigrationContext, rev: Any, directives: list[Any]) -> None:
        from alembic.operations import ops

        _extensions()
        script = directives[0]
        upgrade_ops = script.upgrade_ops
        if upgrade_ops.is_empty():
            directives[:] = []
            _echo(self.config, "No changes detected.")
            return
        import sqlalchemy as sa

        inspector = sa.inspect(context.connection)
        new_ops = self._tables(upgrade_ops.ops, inspector)
        new_ops = [
            part
            for op in new_ops
            for part in (self._columns(op) if isinstance(op, ops.ModifyTableOps) else [op])
        ]
        self._finish()
        new_ops = _backfills(new_ops, self.config.attributes.get(_MODELS, []))
        upgrade_ops.ops[:] = _prune_table_drops(new_ops)
        script.downgrade_ops.ops[:] = _prune_table_drops(_reverse_all(new_ops))

    def _answer(self, key: str, new: str, question: str) -> bool:
        if self.renames.get(key) == new:
            self.used.add(key)
            return True
        if key in self.renames:
            return False
        if key in self.not_renamed:
            self.used.add(key)
            return False
        if self.confirm is not None:
            return self.confirm(question)
        self.unanswered.append((key, new))
        return False

    def _tables(self, items: list[Any], inspector: Any) -> list[Any]:
        from alembic.operations import ops

        drops = [op for op in items if isinstance(op, ops.DropTableOp)]
        creates = [op for op in items if isinstance(op, ops.CreateTableOp)]
        replaced: dict[int, list[Any]] = {}
        removed: set[int] = set()
        for create in creates:
            new_table = create.to_table()
            for drop in drops:
                if id(drop) in removed or not _like_tables(inspector, drop.table_name, new_table):
                    continue
                old, new = drop.table_name, create.table_name
                question = f"Did you rename the table {old} to {new}?"
                if self._answer(old, new, question):
                    removed.add(id(drop))
                    replaced[id(create)] = [
                        ops.RenameTableOp(old, new, schema=drop.schema),
                        *_renamed_table_fixups(inspector, old, new_table),
                    ]
                    break
        if not replaced:
            return items
        renamed = {drop.table_name for drop in drops if id(drop) in removed}
        out: list[Any] = []
        hoisted: list[Any] = []
        for op in items:
            if id(op) in removed:
                continue
            if isinstance(op, ops.ModifyTableOps):
                if op.table_name in renamed:
                    # What alembic would remove from the old table (MySQL lists its
                    # unique indexes) is handled by the rename's own fixups.
                    continue
                # Foreign keys to the old name go before the rename, so that the
                # downgrade (the reverse order) recreates them after renaming back.
                fk_drops = [
                    sub
                    for sub in op.ops
                    if isinstance(sub, ops.DropConstraintOp) and sub.constraint_type == "foreignkey"
                ]
                if fk_drops:
                    hoisted.append(ops.ModifyTableOps(op.table_name, fk_drops, schema=op.schema))
                    kept = [sub for sub in op.ops if sub not in fk_drops]
                    if not kept:
                        continue
                    op = ops.ModifyTableOps(op.table_name, kept, schema=op.schema)
            out.extend(replaced.get(id(op), [op]))
        return [*hoisted, *out]

    def _columns(self, container: Any) -> list[Any]:
        """Return ``container`` split so that its renames become real renames."""
        from alembic.operations import ops

        table = container.table_name
        items = list(container.ops)
        drops = [op for op in items if isinstance(op, ops.DropColumnOp)]
        adds = [op for op in items if isinstance(op, ops.AddColumnOp)]
        renames: list[Any] = []
        removed: set[int] = set()
        for add in adds:
            for drop in drops:
                if id(drop) in removed:
                    continue
                old_column = drop.to_column()
                if not _compatible(old_column.type, add.column.type):
                    continue
                key = f"{table}.{drop.column_name}"
                question = (
                    f"Did you rename {table}.{drop.column_name} to {table}.{add.column.name}?"
                )
                if self._answer(key, add.column.name, question):
                    removed.update((id(drop), id(add)))
                    renames.append(
                        ops.AlterColumnOp(
                            table,
                            drop.column_name,
                            schema=container.schema,
                            modify_name=add.column.name,
                            existing_type=old_column.type,
                            existing_nullable=old_column.nullable,
                            modify_nullable=add.column.nullable
                            if add.column.nullable != old_column.nullable
                            else None,
                        )
                    )
                    break
        rest = [op for op in items if id(op) not in removed]
        if not renames:
            return [container]
        # Three steps, so that each index or constraint operation names columns that
        # exist at that moment (and the downgrade, their reverse, does too): drop what
        # names the old columns, rename, then add and create the rest.
        removals = [op for op in rest if isinstance(op, ops.DropIndexOp | ops.DropConstraintOp)]
        others = [op for op in rest if op not in removals]
        steps = [removals, renames, others]
        return [ops.ModifyTableOps(table, step, schema=container.schema) for step in steps if step]

    def _finish(self) -> None:
        unused = sorted(set(self.renames) - self.used)
        if unused:
            raise MigrationError(
                f"--rename {', '.join(f'{k}={self.renames[k]}' for k in unused)} matches no "
                "dropped and added column (table.old=new) or table (old=new) of compatible "
                "type in this change. Check the names against the models."
            )
        if self.unanswered:
            lines = "; ".join(
                f"{key} -> {new!r} (--rename {key}={new} or --no-rename {key})"
                for key, new in self.unanswered
            )
            raise RenameRequiredError(
                f"The models drop and add columns or tables that may be renames: {lines}. "
                "covet does not guess: run makemigrations in a terminal to be asked, or pass "
                "--rename OLD=NEW for a rename and --no-rename OLD for a real drop."
            )


def _compatible(old: Any, new: Any) -> bool:
    """Tell whether data in a column of type ``old`` fits one of type ``new`` unchanged."""
    affinity_old = getattr(old, "_type_affinity", type(old))
    affinity_new = getattr(new, "_type_affinity", type(new))
    if affinity_old is None or affinity_new is None:
        return False
    return bool(issubclass(affinity_old, affinity_new) or issubclass(affinity_new, affinity_old))


def _like_tables(inspector: Any, old: str, new_table: Any) -> bool:
    """Tell whether the database table ``old`` has the columns of ``new_table``."""
    columns = {column["name"]: column["type"] for column in inspector.get_columns(old)}
    if set(columns) != {column.name for column in new_table.columns}:
        return False
    return all(_compatible(columns[column.name], column.type) for column in new_table.columns)


def _renamed_table_fixups(inspector: Any, old: str, new_table: Any) -> list[Any]:
    """Return the index/unique operations that give a renamed table its new names.

    Index and constraint names contain the table name (NAMING_CONVENTION), so
    the old ones are dropped and the new ones created after the rename.
    """
    import sqlalchemy as sa
    from alembic.operations import ops

    new = new_table.name
    reflected_uniques = {
        item["name"]: item["column_names"]
        for item in inspector.get_unique_constraints(old)
        if item["name"]
    }
    reflected_indexes = {
        item["name"]: (item["column_names"], bool(item["unique"]))
        for item in inspector.get_indexes(old)
        if item["name"]
        and item["name"] not in reflected_uniques
        and not item.get("duplicates_constraint")
    }
    wanted_indexes = {str(index.name): index for index in new_table.indexes}
    wanted_uniques = {
        str(constraint.name): constraint
        for constraint in new_table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    }
    # The old index and constraint objects, on the table's new name, so the
    # operations can be reversed for the downgrade.
    scratch = sa.Table(new, sa.MetaData(), *(sa.Column(c.name, c.type) for c in new_table.c))
    creates: list[Any] = [
        ops.CreateIndexOp.from_index(index)
        for name, index in sorted(wanted_indexes.items())
        if name not in reflected_indexes
    ]
    creates += [
        ops.AddConstraintOp.from_constraint(constraint)
        for name, constraint in sorted(wanted_uniques.items())
        if name not in reflected_uniques
    ]
    drops: list[Any] = []
    for name, (columns, unique) in sorted(reflected_indexes.items()):
        if name not in wanted_indexes:
            index = sa.Index(name, *(scratch.c[c] for c in columns), unique=unique)
            drops.append(ops.DropIndexOp.from_index(index))
    for name, columns in sorted(reflected_uniques.items()):
        if name not in wanted_uniques:
            constraint = sa.UniqueConstraint(*(scratch.c[c] for c in columns), name=name)
            drops.append(ops.DropConstraintOp.from_constraint(constraint))
    if not creates and not drops:
        return []
    return [ops.ModifyTableOps(new, [*creates, *drops])]


def _backfills(items: list[Any], models: Sequence[type[Model]]) -> list[Any]:
    """Add NOT NULL columns that have a constant default as nullable, fill them, then tighten.

    An existing table may hold rows, and covet's defaults live in Python, so
    a plain ``ADD COLUMN ... NOT NULL`` would fail there.
    """
    import sqlalchemy as sa
    from alembic.operations import ops

    defaults: dict[tuple[str, str], Any] = {}
    for model in models:
        for item in model._meta.concrete_fields:
            if item.has_default() and not callable(item.default):
                value = item.get_default()
                if type(value) in (bool, int, float, str):
                    defaults[(model._meta.table, item.column)] = value
    out: list[Any] = []
    for op in items:
        if not isinstance(op, ops.ModifyTableOps):
            out.append(op)
            continue
        fills = [
            sub
            for sub in op.ops
            if isinstance(sub, ops.AddColumnOp)
            and not sub.column.nullable
            and sub.column.server_default is None
            and (op.table_name, sub.column.name) in defaults
        ]
        if not fills:
            out.append(op)
            continue
        first: list[Any] = []
        for sub in op.ops:
            if sub in fills:
                column = sa.Column(sub.column.name, sub.column.type, nullable=True)
                first.append(ops.AddColumnOp(op.table_name, column, schema=op.schema))
            else:
                first.append(sub)
        out.append(ops.ModifyTableOps(op.table_name, first, schema=op.schema))
        for sub in fills:
            value = defaults[(op.table_name, sub.column.name)]
            out.append(_make_backfill(op.table_name, sub.column.name, value))
        out.append(
            ops.ModifyTableOps(
                op.table_name,
                [
                    ops.AlterColumnOp(
                        op.table_name,
                        sub.column.name,
                        schema=op.schema,
                        existing_type=sub.column.type,
                        existing_nullable=True,
                        modify_nullable=False,
                    )
                    for sub in fills
                ],
                schema=op.schema,
            )
        )
    return out


def _prune_table_drops(items: list[Any]) -> list[Any]:
    """Leave out index and unique drops on tables that are dropped anyway.

    Dropping a table drops its indexes; dropping them one by one first fails
    on MySQL, which refuses to drop the index a foreign key uses.
    """
    from alembic.operations import ops

    dropped = {op.table_name for op in items if isinstance(op, ops.DropTableOp)}
    if not dropped:
        return items

    def doomed(op: Any) -> bool:
        if isinstance(op, ops.DropIndexOp):
            return op.table_name in dropped
        return (
            isinstance(op, ops.DropConstraintOp)
            and op.constraint_type == "unique"
            and op.table_name in dropped
        )

    out: list[Any] = []
    for op in items:
        if doomed(op):
            continue
        if isinstance(op, ops.ModifyTableOps) and op.table_name in dropped:
            kept = [sub for sub in op.ops if not doomed(sub)]
            if not kept:
                continue
            op = ops.ModifyTableOps(op.table_name, kept, schema=op.schema)
        out.append(op)
    return out


def _reverse_all(items: Sequence[Any]) -> list[Any]:
    """Return the downgrade of ``items`` (renames reverse to renames; backfills vanish)."""
    from alembic.operations import ops

    out: list[Any] = []
    for op in reversed(items):
        if _is_backfill(op):
            continue
        if isinstance(op, ops.RenameTableOp):
            out.append(ops.RenameTableOp(op.new_table_name, op.table_name, schema=op.schema))
        elif isinstance(op, ops.ModifyTableOps):
            out.append(ops.ModifyTableOps(op.table_name, _reverse_all(op.ops), schema=op.schema))
        elif isinstance(op, ops.AlterColumnOp) and op.modify_name:
            out.append(
                ops.AlterColumnOp(
                    op.table_name,
                    op.modify_name,
                    schema=op.schema,
                    modify_name=op.column_name,
                    existing_type=op.existing_type,
                    existing_nullable=op.existing_nullable
                    if op.modify_nullable is None
                    else op.modify_nullable,
                    modify_nullable=None if op.modify_nullable is None else op.existing_nullable,
                )
            )
        else:
            out.append(op.reverse())
    return out


def _backfill_op_class() -> type[alembic_ops.MigrateOperation]:
    from alembic.autogenerate import renderers
    from alembic.operations import ops

    class BackfillOp(ops.MigrateOperation):
        """Set a new column to its default in every existing row."""

        def __init__(self, table_name: str, column_name: str, value: Any) -> None:
            self.table_name = table_name
            self.column_name = column_name
            self.value = value

        def reverse(self) -> ops.MigrateOperation:
            """Return itself: the column it fills is dropped by the downgrade anyway."""
            return self

        def to_diff_tuple(self) -> tuple[Any, ...]:
            """Describe the backfill for alembic's diff listings."""
            return ("backfill_column", self.table_name, self.column_name, self.value)

    @renderers.dispatch_for(ops.RenameTableOp)
    def render_rename_table(autogen_context: Any, op: ops.RenameTableOp) -> str:
        # alembic can run rename_table but has no autogenerate renderer for it.
        schema = f", schema={op.schema!r}" if op.schema else ""
        return f"op.rename_table({op.table_name!r}, {op.new_table_name!r}{schema})"

    @renderers.dispatch_for(BackfillOp)
    def render(autogen_context: Any, op: BackfillOp) -> str:
        table, column = op.table_name, op.column_name
        # A typed column, so that --sql can render the value as a literal.
        kind = {bool: "Boolean", int: "Integer", float: "Float"}.get(type(op.value), "String")
        return (
            f"op.execute(\n    sa.table({table!r}, sa.column({column!r}, sa.{kind}()))\n"
            f"    .update()\n    .values({{{column!r}: {op.value!r}}})\n)"
        )

    return BackfillOp


_BACKFILL_CLASS: list[type[Any]] = []


def _extensions() -> type[Any]:
    """Register covet's autogenerate renderers once and return the backfill op class."""
    if not _BACKFILL_CLASS:
        _BACKFILL_CLASS.append(_backfill_op_class())
    return _BACKFILL_CLASS[0]


def _make_backfill(table_name: str, column_name: str, value: Any) -> Any:
    return _extensions()(table_name, column_name, value)


def _is_backfill(op: Any) -> bool:
    return bool(_BACKFILL_CLASS) and isinstance(op, _BACKFILL_CLASS[0])
