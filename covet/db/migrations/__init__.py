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

The package is laid out by concern: ``config`` (configuration, template,
models), ``connection`` (engine and connections), ``locking`` (the migration
lock), ``runtime`` (what ``env.py`` runs), ``drift`` (debug mode's comparison of
the models with the schema, in a child process), ``autogen`` (renames and
backfills), ``destructive`` (operations that lose data) and ``commands``.
Import the public names from ``covet.db.migrations`` itself.
"""

from __future__ import annotations

from covet.db.migrations.commands import (
    check,
    check_pending,
    current,
    destructive_operations,
    downgrade,
    ensure_migrated,
    heads,
    history,
    init_project_migrations,
    load_history,
    load_scripts,
    merge,
    pending_migrations,
    revision,
    upgrade,
)
from covet.db.migrations.config import (
    MERGE_HINT,
    MigrationError,
    RenameRequiredError,
    RevisionInfo,
    init,
    make_config,
    project_models,
    target_metadata,
    template_directory,
)
from covet.db.migrations.destructive import (
    DestructiveMigrationError,
    DestructiveOperation,
    scan_revision,
)
from covet.db.migrations.runtime import run_env

__all__ = (
    "MERGE_HINT",
    "DestructiveMigrationError",
    "DestructiveOperation",
    "MigrationError",
    "RenameRequiredError",
    "RevisionInfo",
    "check",
    "check_pending",
    "current",
    "destructive_operations",
    "downgrade",
    "ensure_migrated",
    "heads",
    "history",
    "init",
    "init_project_migrations",
    "load_history",
    "load_scripts",
    "make_config",
    "merge",
    "pending_migrations",
    "project_models",
    "revision",
    "run_env",
    "scan_revision",
    "target_metadata",
    "template_directory",
    "upgrade",
)
