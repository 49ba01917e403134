"""The migration lock: two ``covet migrate`` runs apply each revision once.

The backend's ``creation`` takes a session-level lock on the server
(PostgreSQL's advisory lock, MySQL's ``GET_LOCK``), or names a file
(SQLite's database) whose ``<file>.migrate.lock`` a run holds exclusively.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet.db.migrations.config import MigrationError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection

    from covet.db.migrations.connection import _Target

__all__ = ()


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
    """Take the backend's session-level migration lock, then commit.

    The commit ends the transaction that the lock query began, so alembic
    sees a clean connection and opens one transaction per revision; the lock
    belongs to the session and outlives the commit.
    """
    if not target.creation.acquire_migration_lock(connection, timeout):
        raise MigrationError(
            f"Another migration run has held the migration lock on {target.display} for "
            f"more than {timeout:g} s. Wait for it to finish and try again."
        )
    connection.commit()


def _release_server_lock(connection: Connection, target: _Target) -> None:
    # Closing the connection releases the lock too, so a failure here is harmless.
    with contextlib.suppress(Exception):
        if connection.in_transaction():
            connection.rollback()
        target.creation.release_migration_lock(connection)
        connection.commit()
