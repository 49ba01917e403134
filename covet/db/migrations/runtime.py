"""The alembic environment of a covet project (what ``migrations/env.py`` runs).

:func:`run_env` imports the project's models, describes them with
:func:`covet.db.schema.build_metadata`, and runs alembic offline (``--sql``)
or online over the async driver, under the migration lock, with one
transaction per revision (atomic on PostgreSQL and SQLite), batch mode on
SQLite and type comparison on. A failing revision is reported with its id,
its statement and where the database was left.

:func:`model_drift` compares the project's models with the live schema the
way ``covet makemigrations`` does (same options), for the start-up check of
debug mode.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

from covet.db.migrations.config import (
    _BLANK,
    _COMMAND,
    _LOCK_TIMEOUT,
    _MEMORY,
    _MODELS,
    LOCK_TIMEOUT,
    MYSQL_WARNING,
    MigrationError,
    _echo,
    _settings,
    project_models,
)
from covet.db.migrations.connection import (
    _connect,
    _engine,
    _read_heads,
    _run_async,
    _server_ops,
    _Target,
    _target,
)
from covet.db.migrations.locking import _acquire_server_lock, _file_lock, _release_server_lock
from covet.db.migrations.replay import _RECORD, install_recorder

if TYPE_CHECKING:
    from collections.abc import Mapping

    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from covet.config import Settings
    from covet.db.database import Database
    from covet.db.models import Model

__all__ = ("model_drift", "run_env")

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
        if target.features.has_server_dependent_ops:
            # MySQL's collation comes from the server when it can be reached; else the default.
            with contextlib.suppress(Exception):
                ops = _run_async(lambda: _server_ops(target))
        _configure(context, config, settings, target, ops, connection=None)
        with context.begin_transaction():
            context.run_migrations()
        return
    with _file_lock(target.creation.migration_lock_file(), lock_timeout):
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
        "render_as_batch": not target.features.can_alter_columns,
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
    if type_ == "type":
        # The variant keyed by the dialect being rendered is rendered as that dialect's type.
        variants = getattr(obj, "_variant_mapping", {})
        rendered = autogen_context.dialect.name
        if any(type(v).__name__ == "JSONB" for k, v in variants.items() if k != rendered):
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
        server = target.features.has_server_dependent_ops
        ops = await _server_ops(target) if server else target.database.ops
    engine = _engine(target)
    record = config.attributes.get(_RECORD)
    if record is not None:
        install_recorder(engine, record)
    command = config.attributes.get(_COMMAND)
    try:
        async with _connect(engine, target) as connection:
            await connection.run_sync(_acquire_server_lock, target, lock_timeout)
            try:
                rolls_back = target.features.supports_transactional_ddl
                if not rolls_back and command in ("upgrade", "downgrade"):
                    _echo(config, MYSQL_WARNING)
                await connection.run_sync(_run_migrations, context, config, settings, target, ops)
            except MigrationError:
                raise
            except Exception as exc:
                if command not in ("upgrade", "downgrade") or _bad_argument(exc):
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


def _bad_argument(exc: BaseException) -> bool:
    """Tell whether alembic refused the command's revision argument before any revision ran."""
    from alembic.util import CommandError

    return isinstance(exc, CommandError) and _failed_revision(exc) is None


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
    if not target.features.supports_transactional_ddl:
        text += (
            f" {target.database.backend.display_name} cannot roll back DDL: the statements of "
            "this revision before the failing one stay applied, and the database is recorded "
            f"at revision {state}. Undo those "
            "statements by hand (or make the revision skip them), fix the revision, then run "
            "`covet migrate` again."
        )
    else:
        text += (
            f" The revision was rolled back; the database is at revision {state}. Fix the "
            "revision, then run `covet migrate` again."
        )
    return text


# -- models against the live schema (debug start-up) ----------------------------------------


async def model_drift(database: Database, settings: Settings) -> list[tuple[str, str]]:
    """Compare the project's models with the schema of ``database``, as autogenerate would.

    Reflects the live schema once (no revision scripts are involved) with the
    options ``covet makemigrations`` uses, so it reports a difference exactly
    when a new revision would contain something.

    Args:
        database: The app's connected database.
        settings: The project settings (names the model modules).

    Returns:
        ``(model, difference)`` pairs, most useful first: the model's class
        name (empty for a table no model describes) and what differs, e.g.
        ``("Post", "field 'subtitle' has no column post.subtitle")``. Empty when
        the schema matches, or for an in-memory SQLite database (not reachable
        from a second connection).
    """
    from covet.db.schema import build_metadata, expand_models

    models = expand_models(project_models(settings))
    metadata = build_metadata(models, ops=database.ops)
    target = _target(settings, url_override=database.url.render_as_string(hide_password=False))
    engine = target.creation.inspection_engine()
    if engine is None:
        return []
    try:
        async with _connect(engine, target) as connection:
            diffs = await connection.run_sync(_compare, metadata)
    finally:
        await engine.dispose()
    described = [_describe(diff, models) for diff in _flatten(diffs)]
    # Differences naming a model first: they are what breaks queries.
    return sorted(described, key=lambda item: not item[0])


def _compare(connection: Connection, metadata: Any) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection,
        opts={
            "target_metadata": metadata,
            "compare_type": _compare_type,
            "include_name": _include_name,
        },
    )
    try:
        return list(compare_metadata(context, metadata))
    finally:
        if connection.in_transaction():
            connection.rollback()


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    # Column modifications come grouped in lists, one list per column.
    return [item for diff in diffs for item in (diff if isinstance(diff, list) else [diff])]


def _describe(diff: tuple[Any, ...], models: list[type[Model]]) -> tuple[str, str]:
    """Return ``(model name, what differs)`` for one autogenerate difference."""
    by_table = {model._meta.table: model for model in models}
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        table = diff[1].name
        model = by_table.get(table)
        if kind == "add_table":
            return _name(model), f"has no table {table!r} in the database"
        return "", f"table {table!r} in the database belongs to no model"
    if kind in ("add_column", "remove_column"):
        table, column = diff[2], diff[3].name
        model = by_table.get(table)
        if kind == "add_column":
            return _name(model), f"{_field(model, column)} has no column {table}.{column}"
        return _name(model), f"the database has column {table}.{column}, which no field maps"
    if kind.startswith("modify_"):
        table, column = diff[2], diff[3]
        model = by_table.get(table)
        what = kind.removeprefix("modify_").replace("_", " ")
        return _name(model), f"{_field(model, column)}: the {what} of {table}.{column} differs"
    # Indexes, constraints, foreign keys: name the table they belong to.
    item = diff[1] if len(diff) > 1 else None
    table = getattr(getattr(item, "table", None), "name", None) or getattr(item, "parent", None)
    table_name = str(getattr(table, "name", table) or "")
    model = by_table.get(table_name)
    label = getattr(item, "name", None) or type(item).__name__
    return _name(model), f"{kind.replace('_', ' ')} {label} on table {table_name!r}"


def _name(model: type[Model] | None) -> str:
    return model.__name__ if model is not None else ""


def _field(model: type[Model] | None, column: str) -> str:
    if model is not None:
        for field in model._meta.concrete_fields:
            if field.column == column:
                return f"field {field.name!r}"
    return f"column {column!r}"
