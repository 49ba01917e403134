"""covet's async ORM: models, querysets, transactions and schema creation.

``import covet.db`` is light: database drivers and SQLAlchemy are imported
only when a database connects or a schema is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covet.db import fields, functions
from covet.db.database import Database, get_database
from covet.db.exceptions import (
    DatabaseError,
    DatabaseUnavailableError,
    FieldError,
    IntegrityError,
    MissingSchemaObjectError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
    OperationalError,
    PoolTimeout,
    ProtectedError,
    RelationNotLoaded,
    TransactionManagementError,
    TransactionRollbackError,
    ValidationError,
)
from covet.db.expressions import (
    Avg,
    Case,
    Count,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from covet.db.fields import CASCADE, PROTECT, RESTRICT, SET_NULL
from covet.db.models import Model
from covet.db.querylog import CapturedQuery, QueryLog, capture_queries
from covet.db.schemas import model_schema
from covet.db.transactions import transaction

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = (
    "CASCADE",
    "PROTECT",
    "RESTRICT",
    "SET_NULL",
    "Avg",
    "CapturedQuery",
    "Case",
    "Count",
    "Database",
    "DatabaseError",
    "DatabaseUnavailableError",
    "Exists",
    "F",
    "FieldError",
    "IntegrityError",
    "Max",
    "Min",
    "MissingSchemaObjectError",
    "Model",
    "MultipleObjectsReturned",
    "ObjectDoesNotExist",
    "OperationalError",
    "OuterRef",
    "PoolTimeout",
    "ProtectedError",
    "Q",
    "QueryLog",
    "RelationNotLoaded",
    "Subquery",
    "Sum",
    "TransactionManagementError",
    "TransactionRollbackError",
    "ValidationError",
    "Value",
    "When",
    "capture_queries",
    "create_all",
    "drop_all",
    "fields",
    "functions",
    "get_database",
    "model_schema",
    "transaction",
)


async def create_all(
    models: Iterable[type[Model]] | None = None,
    *,
    using: str | None = None,
    if_not_exists: bool = True,
) -> None:
    """Create the tables of ``models`` (default: every model) on the database ``using``.

    Args:
        models: Model classes; many-to-many join tables are included automatically.
        using: The database alias (default: the default database).
        if_not_exists: Skip tables and indexes that already exist.
    """
    from covet.db import schema

    await schema.create_all(get_database(using), models, if_not_exists=if_not_exists)


async def drop_all(
    models: Iterable[type[Model]] | None = None,
    *,
    using: str | None = None,
    if_exists: bool = True,
) -> None:
    """Drop the tables of ``models`` (default: every model) from the database ``using``."""
    from covet.db import schema

    await schema.drop_all(get_database(using), models, if_exists=if_exists)
