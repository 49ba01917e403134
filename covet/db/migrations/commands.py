"""The migration commands: upgrade, downgrade, revision, check, history, merge.

Plain synchronous functions over the configuration of
:func:`covet.db.migrations.make_config`, plus the startup checks
(:func:`check_pending`, :func:`ensure_migrated`) that keep new code from
running against an old schema.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet.db.migrations.autogen import _Rewriter
from covet.db.migrations.config import (
    _BLANK,
    _COMMAND,
    MigrationError,
    RevisionInfo,
    _echo,
    _files,
    _script_directory,
    _settings,
    _single_head,
    make_config,
)
from covet.db.migrations.connection import _database_heads, _run_async, _target
from covet.db.migrations.destructive import (
    DestructiveMigrationError,
    DestructiveOperation,
    scan_revision,
)
from covet.db.migrations.history import LinearHistory, read_linear_history
from covet.db.migrations.replay import replay_sqlite
from covet.db.migrations.runtime import _failed_revision
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from covet.config import Settings
    from covet.db.database import Database

__all__ = (
    "check",
    "check_pending",
    "current",
    "destructive_operations",
    "downgrade",
    "ensure_migrated",
    "heads",
    "history",
    "init_project_migrations",
    "load_history",
    "load_scripts",
    "merge",
    "pending_migrations",
    "revision",
    "upgrade",
)

logger = logging.getLogger("covet.db.migrations")


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


# -- commands -------------------------------------------------------------------------------


def _translate(error: Exception) -> MigrationError:
    message = str(error).strip()
    if not message.endswith("."):
        message += "."
    if "revision" in message.lower() and "history" not in message:
        message += " Run `covet migrations history` to list the revisions."
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
                f"`--sql` cannot render {where}: it rebuilds a table (batch mode with "
                "recreate='always'), which needs the live database to read the table "
                "from. Pass the table to batch_alter_table(copy_from=...), run `covet "
                "migrate` against the database instead, or print a range that stops "
                "before it (`covet migrate FROM:TO --sql`)."
            ) from exc
        if "Target database is not up to date" in str(exc):
            raise MigrationError(
                "The database is not at the newest revision, so the models cannot be "
                "compared with it. Run `covet migrate` first."
            ) from exc
        raise _translate(exc) from exc
    finally:
        config.attributes.pop(_COMMAND, None)


def upgrade(
    config: Config, revision: str = "head", *, sql: bool = False, allow_destructive: bool = True
) -> None:
    """Upgrade the database to ``revision`` (default: the newest).

    Args:
        config: From :func:`make_config`.
        revision: A revision id (or unique prefix), ``head``, ``+1``; with
            ``sql``, also ``FROM:TO``.
        sql: Write the SQL to the config's stdout instead of running it (from
            the base unless ``revision`` is a ``FROM:TO`` range).
        allow_destructive: False refuses, before anything runs, when a
            revision to apply drops a table or a column or narrows a type
            (see :func:`destructive_operations`).

    Raises:
        MigrationError: There are two heads, the revision is unknown, or a
            revision failed (the message names it and the statement).
        DestructiveMigrationError: ``allow_destructive`` is False and a
            revision to apply would destroy data (nothing was applied).
    """
    from alembic import command

    script = _script_directory(config)
    if revision in ("head", "heads") or revision.endswith(":head"):
        _single_head(script)
    if not allow_destructive:
        _refuse_destructive(config, revision, sql=sql)
    with _command(config, "upgrade"):
        if sql and _is_sqlite(config):
            start, _, destination = revision.rpartition(":")
            replay_sqlite(config, "upgrade", start or None, destination)
        else:
            command.upgrade(config, revision, sql=sql)


def destructive_operations(
    config: Config, revision: str = "head", *, sql: bool = False
) -> dict[str, list[DestructiveOperation]]:
    """Return the data-destroying operations of the revisions an upgrade would apply.

    Reads the revision files (no revision runs): every ``drop_table``,
    ``drop_column`` and type-narrowing ``alter_column`` in their
    ``upgrade()``, hand-written ones included.

    Args:
        config: From :func:`make_config`.
        revision: The upgrade's target, as for :func:`upgrade`.
        sql: Start from the base, or from ``FROM`` of a ``FROM:TO`` range,
            instead of from the revision the database is at (which is not read).

    Returns:
        ``{revision id: operations}`` for the revisions that have any, in the
        order they would be applied.

    Raises:
        MigrationError: A revision is unknown or is not valid Python.
    """
    from alembic.script.revision import RevisionError

    script = _script_directory(config)
    if sql:
        start, _, destination = revision.rpartition(":")
        applied: tuple[str, ...] = (start,) if start and start != "base" else ()
    else:
        destination = revision
        applied = tuple(current(config))
    try:
        scripts = list(script.iterate_revisions(destination, applied, implicit_base=True))
    except RevisionError as exc:
        raise _translate(exc) from exc
    found: dict[str, list[DestructiveOperation]] = {}
    for item in reversed(scripts):
        try:
            operations = scan_revision(Path(item.path))
        except SyntaxError as exc:
            raise MigrationError(
                f"Revision {item.revision!r} ({item.path}) is not valid Python: {exc.msg} "
                f"on line {exc.lineno}. Fix the file."
            ) from exc
        if operations:
            found[item.revision] = operations
    return found


def _refuse_destructive(config: Config, revision: str, *, sql: bool) -> None:
    found = destructive_operations(config, revision, sql=sql)
    if not found:
        return
    described = "; ".join(
        f"revision {rev!r}: {', '.join(f'{item} on line {item.line}' for item in items)}"
        for rev, items in found.items()
    )
    count = len(found)
    raise DestructiveMigrationError(
        f"{count} revision{'s' if count != 1 else ''} would destroy data, so nothing was "
        f"applied: {described}. Back the database up and copy what you need to keep, then "
        "run `covet migrate` without --no-destructive.",
        found,
    )


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
        if sql and _is_sqlite(config):
            start, _, destination = revision.rpartition(":")
            replay_sqlite(config, "downgrade", start, destination)
        else:
            command.downgrade(config, revision, sql=sql)


def _is_sqlite(config: Config) -> bool:
    # Batch mode (table rebuilds) needs the live table, so offline SQL is replayed.
    return not _target(_settings(config)).features.can_alter_columns


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
            path = Path(item.path)
            for operation in scan_revision(path):
                _echo(config, f"Warning: the revision destroys data: {operation}.")
            return path
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
            _warn_unknown(rev)
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


def load_scripts(settings: Settings) -> ScriptDirectory | None:
    """Read the project's migration scripts (alembic imports each), or None without any.

    For callers that check pending migrations repeatedly (``/ready``): read once,
    pass to :func:`pending_migrations` as ``script=``.
    """
    if not (settings.migrations / "env.py").is_file():
        return None
    return _script_directory(make_config(settings))


async def pending_migrations(
    database: Database,
    settings: Settings,
    *,
    script: ScriptDirectory | LinearHistory | None = None,
) -> list[str]:
    """Return the revisions not yet applied to ``database``, oldest first, over its own pool.

    The async twin of :func:`check_pending` for code that already holds a
    connected database (start-up, the ``/ready`` check): one ``SELECT`` of
    ``alembic_version`` plus a walk of the scripts' graph.

    Args:
        database: A connected :class:`~covet.db.Database`.
        settings: The project settings (finds the migration scripts).
        script: The project's scripts, read once by the caller (they do not
            change while the process runs, see :func:`load_history`); read
            here when None.
    """
    from covet.db.exceptions import DatabaseError

    if script is None:
        script = load_history(settings)
        if script is None:
            return []
    try:
        rows = await database.fetch_all("SELECT version_num FROM alembic_version")
    except DatabaseError:
        rows = []  # no version table yet: nothing has been applied
    applied = [str(row[0]) for row in rows]
    if isinstance(script, LinearHistory):
        return _pending_linear(script, applied)
    return _pending(script, _known(script, applied))


def load_history(settings: Settings) -> ScriptDirectory | LinearHistory | None:
    """Read the migration history for the start-up and readiness checks, or None without any.

    A single chain of literal revision ids is read without alembic (see
    :mod:`covet.db.migrations.history`), so a worker does not import alembic and
    SQLAlchemy just to compare two ids; any other history goes through alembic.
    Pass the result to :func:`pending_migrations` as ``script=``.

    Args:
        settings: The project settings (finds the migration scripts).

    Returns:
        A :class:`~covet.db.migrations.history.LinearHistory`, alembic's
        ``ScriptDirectory`` for any other history, or None without a migrations
        directory.
    """
    if not (settings.migrations / "env.py").is_file():
        return None
    return read_linear_history(settings.migrations / "versions") or load_scripts(settings)


def _pending_linear(history: LinearHistory, applied: Sequence[str]) -> list[str]:
    """Return the revisions after the newest applied one; :func:`_pending` for one chain."""
    position = {rev: i for i, rev in enumerate(history.revisions)}
    reached = -1
    for rev in applied:
        if rev not in position:
            _warn_unknown(rev)
            continue
        reached = max(reached, position[rev])
    return list(history.revisions[reached + 1 :])


def _warn_unknown(rev: str) -> None:
    logger.warning(
        "The database is at revision %r, which is not among the project's "
        "migrations (newer code migrated it?); it is ignored.",
        rev,
    )


async def ensure_migrated(database: Database, settings: Settings, debug: bool) -> list[str]:
    """Refuse to run against an old schema: raise in production, log a warning in debug.

    Call it at startup with the app's connected database. In debug mode it
    also starts comparing the models with the live schema (see
    :func:`~covet.db.migrations.runtime.model_drift`) in a child process,
    in the background, which logs one line naming the first model that
    differs, with the commands that fix it. The comparison needs SQLAlchemy
    and alembic; in the child, the worker never loads them.

    Args:
        database: A connected :class:`~covet.db.Database` (reads ``alembic_version``).
        settings: The project settings (finds the migration scripts).
        debug: Warn instead of raising.

    Returns:
        The pending revisions (empty when the database is up to date).

    Raises:
        ImproperlyConfigured: Migrations are pending and ``debug`` is False.
    """
    if not (settings.migrations / "env.py").is_file():
        return []
    pending = await pending_migrations(database, settings)
    message = ""
    if pending:
        count = len(pending)
        message = (
            f"{count} migration{'s are' if count != 1 else ' is'} pending: "
            f"{', '.join(pending)}; run `covet migrate`."
        )
        if not debug:
            raise ImproperlyConfigured(message)
        logger.warning(message)
    if debug:
        # Debug only: a model edited without a migration would otherwise show up as
        # "no such column" errors on every page.
        from covet.db.migrations.drift import start_drift_check

        start_drift_check(database, settings, pending_message=message)
    return pending
