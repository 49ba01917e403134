"""Exceptions raised by ``covet.db``.

Driver errors are translated once, inside each backend, into these classes, so
application code catches ``covet.db.IntegrityError`` whatever the database.
The hierarchy follows PEP 249 (DB-API 2.0) names under one root,
:class:`DatabaseError`, which itself derives from :class:`covet.exceptions.CovetError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from covet.exceptions import CovetError

__all__ = (
    "DataError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "FieldError",
    "IntegrityError",
    "InterfaceError",
    "MissingSchemaObjectError",
    "MultipleObjectsReturned",
    "NotSupportedError",
    "ObjectDoesNotExist",
    "OperationalError",
    "PoolTimeout",
    "ProgrammingError",
    "ProtectedError",
    "RelationNotLoaded",
    "TransactionManagementError",
    "TransactionRollbackError",
    "ValidationError",
)


class DatabaseError(CovetError):
    """Root of every error raised by the ORM and the database adapters."""


class InterfaceError(DatabaseError):
    """The adapter was misused: not connected, closed, or used from the wrong place."""


class OperationalError(DatabaseError):
    """The server could not do the operation: connection lost, timeout, lock, server gone."""


class DatabaseUnavailableError(OperationalError):
    """The database cannot be reached for now: refused, lost, shutting down, pool exhausted.

    A temporary condition, unlike a wrong password or a missing database: the
    same request will likely work a few seconds later. The web layer answers
    it with ``503 Service Unavailable`` and a ``Retry-After`` header instead of
    a 500, and logs one line instead of a traceback. It reads the two class
    attributes below (duck-typed, so ``covet.app`` never imports ``covet.db``):

    * ``status_code``: the HTTP status to answer, ``503``.
    * ``retry_after``: the seconds sent in ``Retry-After``. Change it for the
      whole app with ``DatabaseUnavailableError.retry_after = 5``.

    Register an exception handler for this class (or for ``503``) to answer
    differently.
    """

    status_code = 503
    retry_after = 2


class TransactionRollbackError(OperationalError):
    """The database rolled back work to resolve a deadlock or a serialization failure.

    Retry the whole transaction: the same work usually succeeds once the other
    transaction finished. PostgreSQL only aborts the transaction (a nested
    ``transaction()`` block rolls back to its savepoint and the transaction goes
    on); MySQL/MariaDB (InnoDB) roll the whole transaction back and drop its
    savepoints, so the enclosing ``transaction()`` blocks refuse further
    statements until the outermost one exits.
    """


class PoolTimeout(DatabaseUnavailableError, TimeoutError):  # noqa: N818 - reads as a condition
    """No connection became free in the pool within the acquire timeout."""


class IntegrityError(DatabaseError):
    """A constraint failed: unique, foreign key, not-null or check."""


class NotSupportedError(DatabaseError):
    """The database (or this version of it) does not support the requested operation."""


class DataError(DatabaseError):
    """A value did not fit its column: too long, out of range, or of the wrong type."""


class ProgrammingError(DatabaseError):
    """The SQL was invalid or referred to something that does not exist."""


class MissingSchemaObjectError(ProgrammingError):
    """The SQL names a table or column that the database does not have.

    Raised for SQLite's "no such table/column", PostgreSQL's undefined table
    or column and MySQL's unknown column or missing table. For ORM queries it
    usually means that a model changed and its migration was not made
    (``covet makemigrations``) or not applied (``covet migrate``).
    """


class TransactionManagementError(DatabaseError):
    """A transaction was used wrongly, e.g. used again after it failed or shared across tasks."""


class FieldError(DatabaseError, LookupError):
    """A query named a field, lookup or relation that the model does not have."""


class ObjectDoesNotExist(DatabaseError, LookupError):  # noqa: N818 - Django's well-known name
    """Base of every model's ``DoesNotExist``: a ``get()`` found no row."""


class MultipleObjectsReturned(DatabaseError, LookupError):  # noqa: N818 - Django's well-known name
    """A ``get()`` matched more than one row."""


class ProtectedError(IntegrityError):
    """A delete was refused because rows still reference the object with ``on_delete=PROTECT``."""


class RelationNotLoaded(DatabaseError, AttributeError):  # noqa: N818 - reads as a condition
    """A related object was accessed without being loaded; the ORM never does hidden I/O."""


class ValidationError(DatabaseError, ValueError):
    """One or more values failed validation.

    Args:
        errors: Either a message, a list of messages, or a mapping of field name
            to a list of messages (``{"email": ["Enter a valid email address."]}``).
    """

    def __init__(self, errors: str | Sequence[str] | Mapping[str, Sequence[str]]) -> None:
        if isinstance(errors, str):
            self.error_dict: dict[str, list[str]] = {"__all__": [errors]}
        elif isinstance(errors, Mapping):
            self.error_dict = {key: list(value) for key, value in errors.items()}
        else:
            self.error_dict = {"__all__": list(errors)}
        parts = [f"{field}: {'; '.join(msgs)}" for field, msgs in self.error_dict.items()]
        super().__init__(". ".join(parts))

    @property
    def messages(self) -> list[str]:
        """Return every message, flattened in field order."""
        return [msg for msgs in self.error_dict.values() for msg in msgs]
