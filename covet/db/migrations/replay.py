"""``--sql`` on SQLite: run the revisions on a scratch database and print what ran.

Alembic's offline mode cannot render SQLite's batch mode: a table rebuild
reflects the live table to copy it. So on SQLite covet replays the requested
range on a scratch database in a temporary directory (first bringing it,
silently, to the start of the range) and records every statement that changes
it, parameters rendered as SQL literals, one transaction per revision. The
output is a plain script for the ``sqlite3`` client, and the project's own
database is never opened.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from covet.db.migrations.config import _COMMAND, MigrationError, _settings, make_config

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.config import Config

__all__ = ()

#: Key of Config.attributes: the stream the statements of a replayed run go to.
_RECORD: Final = "covet.record"
# Statements that only read (reflection by batch mode and alembic's own
# bookkeeping) leave the schema unchanged, so they are not part of the script.
_READS: Final = ("SELECT", "PRAGMA", "EXPLAIN")


def replay_sqlite(config: Config, command_name: str, start: str | None, destination: str) -> None:
    """Write the SQL of ``command_name`` from ``start`` to ``destination`` to the config's output.

    Args:
        config: From :func:`covet.db.migrations.make_config`, on a SQLite project.
        command_name: ``"upgrade"`` or ``"downgrade"``.
        start: The revision the scratch database is brought to first (None or
            ``base``: an empty database).
        destination: The revision the recorded run goes to.

    Raises:
        MigrationError: A revision failed on the scratch database.
    """
    from alembic import command

    settings = _settings(config)
    out: TextIO = config.output_buffer or config.stdout
    # Buffered, so that a failure prints no partial script.
    script = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="covet-sql-") as directory:
        scratch_url = f"sqlite:///{Path(directory) / 'scratch.db'}"
        scratch = make_config(
            dataclasses.replace(settings, database_url=scratch_url), echo=lambda message: None
        )
        scratch.attributes[_COMMAND] = command_name
        try:
            if start not in (None, "", "base"):
                command.upgrade(scratch, start)
            scratch.attributes[_RECORD] = script
            if command_name == "upgrade":
                command.upgrade(scratch, destination)
            else:
                command.downgrade(scratch, destination)
        except MigrationError as exc:
            raise MigrationError(
                "Cannot print the SQL: covet runs the revisions on a scratch SQLite database "
                f"to record it (table rebuilds need a live table), and that failed. {exc}"
            ) from exc
    out.write(script.getvalue())


def install_recorder(engine: Any, out: TextIO) -> None:
    """Write every statement that changes the database of ``engine`` to ``out``.

    Args:
        engine: The async SQLite engine of a replayed run.
        out: Where the script goes.
    """
    from sqlalchemy import event

    sync_engine = engine.sync_engine
    # BEGIN is written lazily, before a transaction's first change, so that the
    # transactions that only read (alembic's bookkeeping) leave no trace.
    state = {"begun": False, "open": False}

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _statement(
        connection: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        text = statement.strip().rstrip(";").strip()
        if not text:
            return
        keyword = text.split(None, 1)[0].upper()
        if keyword == "BEGIN":
            # The BEGIN IMMEDIATE of covet's SQLite engine: one transaction per revision.
            state["begun"], state["open"] = True, False
            return
        if keyword in _READS:
            return
        if state["begun"] and not state["open"]:
            out.write("BEGIN;\n\n")
            state["open"] = True
        groups = parameters if executemany else [parameters]
        for group in groups:
            out.write(f"{_inline(text, group)};\n\n")

    @event.listens_for(sync_engine, "commit")
    def _commit(connection: Any) -> None:
        if state["open"]:
            out.write("COMMIT;\n\n")
        state["begun"] = state["open"] = False

    @event.listens_for(sync_engine, "rollback")
    def _rollback(connection: Any) -> None:
        if state["open"]:
            out.write("ROLLBACK;\n\n")
        state["begun"] = state["open"] = False


def _inline(statement: str, parameters: Sequence[Any] | None) -> str:
    """Return ``statement`` with its ``?`` placeholders replaced by SQL literals.

    Quoted strings and identifiers are skipped, so a ``?`` inside them stays.

    Raises:
        MigrationError: The number of placeholders and values differ.
    """
    values = list(parameters or ())
    if not values:
        return statement
    pieces: list[str] = []
    quote: str | None = None
    used = 0
    for char in statement:
        if quote is not None:
            if char == quote:
                quote = None
            pieces.append(char)
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
            pieces.append(char)
        elif char == "?":
            if used == len(values):
                break
            pieces.append(_literal(values[used]))
            used += 1
        else:
            pieces.append(char)
    if used != len(values) or len(pieces) != len(statement):
        raise MigrationError(
            f"Cannot render the statement {statement!r} with {len(values)} value(s) as a "
            "script. Write this revision's SQL by hand, or run `covet migrate` instead."
        )
    return "".join(pieces)


def _literal(value: Any) -> str:
    """Render one bound value the way SQLite reads it in a script."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise MigrationError(
                f"Cannot write the float {value!r} as a SQLite literal. Store it as NULL or "
                "text in the revision instead."
            )
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"X'{bytes(value).hex()}'"
    text = str(value).replace("'", "''")
    return f"'{text}'"
