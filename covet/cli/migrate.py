"""``covet makemigrations``, ``covet migrate`` and ``covet migrations ...``.

Thin click wrappers over :mod:`covet.db.migrations`: they read the project
(``pyproject.toml`` ``[tool.covet]``, ``.env``, ``DATABASE_URL``), call one
function, and turn a :class:`~covet.exceptions.CovetError` into a one-line
error with exit status 1.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

import click

from covet.exceptions import CovetError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from alembic.config import Config

    from covet.config import Settings

__all__ = ("makemigrations_command", "migrate_command", "migrations_group")


def _config(*, sql: bool = False, settings: Settings | None = None) -> Config:
    from covet.config import load_settings
    from covet.db.migrations import make_config

    # With --sql, stdout carries only SQL; progress and warnings go to stderr.
    def echo(message: str) -> None:
        click.echo(message, err=sql or message.startswith("Warning:"))

    return make_config(settings or load_settings(), echo=echo, stdout=sys.stdout)


def _traceback_requested() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("traceback"):
            return True
        ctx = ctx.parent
    return False


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Report covet errors as one line (exit status 1), unless ``--traceback`` is given."""
    try:
        yield
    except CovetError as exc:
        if _traceback_requested():
            raise
        raise click.ClickException(" ".join(str(exc).split())) from exc


def _parse_renames(values: tuple[str, ...]) -> dict[str, str]:
    renames: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new or "." in new:
            raise click.BadParameter(
                f"{value!r} is not OLD=NEW. Write --rename posts.title=headline for a column "
                "or --rename old_table=new_table for a table.",
                param_hint="--rename",
            )
        renames[old] = new
    return renames


def _interactive() -> bool:
    """Tell whether a person can answer questions (stdin is a terminal)."""
    return sys.stdin.isatty()


def _confirm() -> Callable[[str], bool] | None:
    if _interactive():
        return lambda question: click.confirm(question, default=False)
    return None


@click.command("makemigrations")
@click.option("-m", "--message", default="auto", show_default=True, help="What the change does.")
@click.option("--empty", is_flag=True, help="Write an empty revision for a data migration.")
@click.option(
    "--rename",
    "renames",
    multiple=True,
    metavar="OLD=NEW",
    help="Record a rename: table.old_column=new_column or old_table=new_table (repeatable).",
)
@click.option(
    "--no-rename",
    "not_renamed",
    multiple=True,
    metavar="OLD",
    help="table.column or table that really was dropped, not renamed (repeatable).",
)
def makemigrations_command(
    message: str, empty: bool, renames: tuple[str, ...], not_renamed: tuple[str, ...]
) -> None:
    """Write a new revision from the changes in the models.

    Compares the models with the database (migrated to the newest revision)
    and writes the difference into migrations/versions/. Prints "No changes
    detected" and writes nothing when they agree. A column (or table) that
    disappears while a compatible one appears is asked about in a terminal;
    elsewhere pass --rename or --no-rename.
    """
    from covet.db.migrations import revision

    parsed = _parse_renames(renames)
    with _errors():
        path = revision(
            _config(),
            message,
            autogenerate=not empty,
            renames=parsed,
            not_renamed=set(not_renamed),
            confirm=_confirm(),
        )
    if path is not None:
        click.echo(f"Created {path}")


@click.command("migrate")
@click.argument("revision", required=False)
@click.option("--down", metavar="REV", help="Downgrade to REV (a revision id, -1 or base).")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.option(
    "--check",
    is_flag=True,
    help="Exit with status 1 when the models have changes no revision covers (for CI).",
)
@click.option(
    "--no-destructive",
    "no_destructive",
    is_flag=True,
    help="Refuse, applying nothing, when a revision to apply drops a table or a column "
    "or narrows a column's type.",
)
def migrate_command(
    revision: str | None, down: str | None, sql: bool, check: bool, no_destructive: bool
) -> None:
    """Upgrade the database to the newest revision, or to REVISION.

    --down REV downgrades instead; --sql prints the SQL without touching the
    database (from the base, or give a FROM:TO range); --check only compares.
    --no-destructive first reads the revisions to apply and exits with status
    1, naming each revision and operation, when one would destroy data.
    """
    from covet.db import migrations

    if down is not None and revision is not None:
        raise click.UsageError("Give either REVISION or --down REV, not both.")
    if check and (sql or down is not None or revision is not None):
        raise click.UsageError("--check takes no revision and no --sql.")
    if no_destructive and (check or down is not None):
        raise click.UsageError(
            "--no-destructive checks the revisions an upgrade applies; it takes no --check "
            "and no --down (a downgrade removes what revisions added)."
        )
    with _errors():
        config = _config(sql=sql)
        if check:
            changes = migrations.check(config)
            if changes:
                for change in changes:
                    click.echo(f"  {change}", err=True)
                raise click.ClickException(
                    f"The models have {len(changes)} change(s) that no migration covers. "
                    'Run `covet makemigrations -m "..."` and commit the revision.'
                )
            click.echo("No changes: the migrations cover the models.")
            return
        if down is not None:
            migrations.downgrade(config, down, sql=sql)
        else:
            migrations.upgrade(
                config, revision or "head", sql=sql, allow_destructive=not no_destructive
            )
        if not sql:
            at = migrations.current(config)
            click.echo(f"Database at {', '.join(at) if at else 'base (no revision)'}.")


@click.group("migrations")
def migrations_group() -> None:
    """Inspect the migration history and join branches."""


@migrations_group.command("history")
def history_command() -> None:
    """List the revisions, newest first."""
    from covet.db.migrations import history

    with _errors():
        revisions = history(_config())
    if not revisions:
        click.echo("No revisions yet.")
    for item in revisions:
        click.echo(str(item))


@migrations_group.command("current")
def current_command() -> None:
    """Show the revision the database is at."""
    from covet.config import load_settings
    from covet.db.migrations import check_pending, current

    with _errors():
        settings = load_settings()
        at = current(_config(settings=settings))
        pending = check_pending(settings)
    click.echo(", ".join(at) if at else "base (no revision applied)")
    if pending:
        click.echo(f"{len(pending)} pending: {', '.join(pending)}; run `covet migrate`.")
    else:
        click.echo("Up to date.")


@migrations_group.command("heads")
def heads_command() -> None:
    """List the head revisions; two or more are branches to merge."""
    from covet.db.migrations import MERGE_HINT, heads

    with _errors():
        found = heads(_config())
    for item in found:
        click.echo(str(item))
    if len(found) > 1:
        click.echo(f"There are {len(found)} heads. Join them with `{MERGE_HINT}`.", err=True)


@migrations_group.command("merge")
@click.option("-m", "--message", default="merge", show_default=True, help="The merge message.")
@click.argument("revisions", nargs=-1)
def merge_command(message: str, revisions: tuple[str, ...]) -> None:
    """Write a revision joining REVISIONS (default: all heads) into one head."""
    from covet.db.migrations import merge

    with _errors():
        path = merge(_config(), message, revisions or ("heads",))
    click.echo(f"Created {path}")
