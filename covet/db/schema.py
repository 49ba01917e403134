"""Models to SQLAlchemy ``MetaData``, and ``create_all``/``drop_all`` from it.

This module (with the migrations glue) is the only place covet imports
SQLAlchemy, and it does so lazily. :func:`build_metadata` describes every
table exactly as :func:`create_all` creates it, so alembic's autogenerate
compares against the same schema:

* column types are SQLAlchemy generic types, with per-dialect variants only
  through ``with_variant`` (SQLite ``INTEGER`` auto keys so they alias the
  rowid, PostgreSQL ``JSONB``, MySQL ``DATETIME(6)``/``TIME(6)``/``LONGTEXT``/
  ``LONGBLOB``, ``CHAR(36)`` UUIDs where there is no native type);
* primary keys, NOT NULL, unique constraints, ``unique_together``, indexes
  (foreign key columns are indexed), foreign keys with their ON DELETE action
  (``PROTECT`` has none in the database: it is checked in Python first);
* MySQL tables carry the engine/charset/collation of
  ``db.ops.create_table_suffix()`` as ``mysql_*`` table options;
* constraint and index names follow :data:`NAMING_CONVENTION`.

DDL is compiled with the SQLAlchemy dialect matching the database and run
through covet's own connection; no SQLAlchemy engine is created.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Final

from covet.db.exceptions import NotSupportedError
from covet.db.execution import run_execute
from covet.db.fields import (
    ArrayField,
    AutoField,
    BigIntegerField,
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    Field,
    FloatField,
    ForeignKey,
    IntegerField,
    JSONField,
    SmallIntegerField,
    TextField,
    TimeField,
    UUIDField,
)
from covet.db.models import Model, registered_models
from covet.exceptions import ImproperlyConfigured, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import sqlalchemy as sa

    from covet.db.database import Database

__all__ = (
    "NAMING_CONVENTION",
    "build_metadata",
    "create_all",
    "create_ddl",
    "drop_all",
    "drop_ddl",
    "expand_models",
    "sqlalchemy_dialect",
)

#: Constraint and index names (alembic needs stable names to diff).
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
_ON_DELETE_SQL: Final = {"CASCADE": "CASCADE", "SET_NULL": "SET NULL", "RESTRICT": "RESTRICT"}
# Keys of ops.create_table_suffix() ("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=x").
_SUFFIX_OPTION: Final = re.compile(r"(ENGINE|CHARSET|COLLATE)\s*=\s*([A-Za-z0-9_]+)", re.I)
_SUFFIX_KWARG: Final = {"ENGINE": "engine", "CHARSET": "charset", "COLLATE": "collate"}
_MAX_NAME: Final = 60


def _sa() -> Any:
    try:
        import sqlalchemy
    except ImportError as exc:  # pragma: no cover - sqlalchemy is a core dependency
        raise MissingDependencyError("sqlalchemy") from exc
    return sqlalchemy


def expand_models(models: Iterable[Any] | None) -> list[type[Model]]:
    """Return the concrete models plus the automatic many-to-many join models.

    ``None`` means every concrete model defined so far.
    """
    source = registered_models() if models is None else list(models)
    out: dict[type[Model], None] = {}
    for model in source:
        if not (isinstance(model, type) and issubclass(model, Model)):
            raise ImproperlyConfigured(f"{model!r} is not a Model subclass.")
        if model._meta.abstract:
            continue
        out[model] = None
        for m2m in model._meta.many_to_many:
            if m2m.through_model is None:
                raise ImproperlyConfigured(
                    f"{model.__name__}.{m2m.name} points to {m2m.to!r}, which is not defined. "
                    "Define or import it before creating tables."
                )
            out[m2m.through_model] = None
    return list(out)


def _column_type(field: Field[Any]) -> Any:
    sa = _sa()
    from sqlalchemy.dialects import mysql, postgresql

    if isinstance(field, ForeignKey):
        target = field.target_field
        if isinstance(target, AutoField):
            return sa.BigInteger()
        return _column_type(target)
    if isinstance(field, AutoField):
        # SQLite only auto-increments an "INTEGER PRIMARY KEY" (a rowid alias).
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    if isinstance(field, EnumField):
        if field.internal_type == "int":
            return sa.Integer()
        return sa.String(field.max_length)
    simple: list[tuple[type[Field[Any]], Any]] = [
        (SmallIntegerField, sa.SmallInteger),
        (BigIntegerField, sa.BigInteger),
        (IntegerField, sa.Integer),
        (FloatField, sa.Double),
        (BooleanField, sa.Boolean),
        (DateField, sa.Date),
    ]
    for cls, sa_type in simple:
        if isinstance(field, cls):
            return sa_type()
    if isinstance(field, DecimalField):
        return sa.Numeric(field.max_digits, field.decimal_places, asdecimal=True)
    if isinstance(field, CharField):
        return sa.String(field.max_length)
    if isinstance(field, TextField):
        return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    if isinstance(field, DateTimeField):
        return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    if isinstance(field, TimeField):
        return sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
    if isinstance(field, UUIDField):
        return sa.Uuid().with_variant(sa.CHAR(36), "mysql", "mariadb", "sqlite")
    if isinstance(field, ArrayField):
        # PostgreSQL only: build_metadata() refuses it for another database first.
        return postgresql.ARRAY(_column_type(field.base_field))
    if isinstance(field, JSONField):
        # SQLite: TEXT affinity keeps '123' a string (a JSON column type would be NUMERIC).
        return (
            sa.JSON()
            .with_variant(postgresql.JSONB(), "postgresql")
            .with_variant(sa.Text(), "sqlite")
        )
    if isinstance(field, BinaryField):
        return sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
    raise ImproperlyConfigured(
        f"No column type for {field!r} ({type(field).__name__}). Use a covet field class."
    )


def _index_name(prefix: str, table: str, columns: Sequence[str]) -> str:
    name = f"{prefix}_{table}_{'_'.join(columns)}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


def _table_kwargs(ops: Any) -> dict[str, str]:
    if ops is None:
        return {}
    suffix = str(ops.create_table_suffix())
    return {
        f"mysql_{_SUFFIX_KWARG[key.upper()]}": value
        for key, value in _SUFFIX_OPTION.findall(suffix)
    }


def build_metadata(models: Iterable[type[Model]] | None = None, *, ops: Any = None) -> sa.MetaData:
    """Return SQLAlchemy ``MetaData`` describing the tables of ``models``.

    Args:
        models: Model classes (None: every model defined); join models are added.
        ops: The database's operations, for MySQL table options (optional).
    """
    sqla = _sa()
    metadata = sqla.MetaData(naming_convention=NAMING_CONVENTION)
    table_kwargs = _table_kwargs(ops)
    for model in expand_models(models):
        meta = model._meta
        items: list[Any] = []
        for field in meta.concrete_fields:
            gin = isinstance(field, ArrayField | JSONField)
            _check_support(model, field, ops)
            args: list[Any] = [field.column, _column_type(field)]
            if isinstance(field, ForeignKey):
                target = field.related_model
                args.append(
                    sqla.ForeignKey(
                        f"{target._meta.table}.{target._meta.pk.column}",
                        ondelete=_ON_DELETE_SQL.get(field.on_delete),
                    )
                )
            items.append(
                sqla.Column(
                    *args,
                    primary_key=field.primary_key,
                    nullable=field.null and not field.primary_key,
                    autoincrement=bool(field.auto_created),
                    unique=True if field.unique and not field.primary_key else None,
                    index=True
                    if (field.index or isinstance(field, ForeignKey))
                    and not field.unique
                    and not gin
                    else None,
                )
            )
            if gin and field.index:
                # PostgreSQL: a GIN index serves the array operators (@>, <@, &&) and jsonb
                # containment (@>, with the smaller jsonb_path_ops); a B-tree would serve
                # neither. Other databases ignore the postgresql_* options: SQLite makes a
                # plain index (MySQL refused the field in _check_support()).
                name = _index_name("ix", meta.table, [field.column])
                opclass = {field.column: "jsonb_path_ops"} if isinstance(field, JSONField) else {}
                items.append(
                    sqla.Index(name, field.column, postgresql_using="gin", postgresql_ops=opclass)
                )
        for names in meta.unique_together:
            cols = [meta.get_field(n).column for n in names]
            items.append(sqla.UniqueConstraint(*cols, name=_index_name("uq", meta.table, cols)))
        for names in meta.indexes:
            cols = [meta.get_field(n).column for n in names]
            items.append(sqla.Index(_index_name("ix", meta.table, cols), *cols))
        sqla.Table(meta.table, metadata, *items, **table_kwargs)
    result: sa.MetaData = metadata
    return result


def _check_support(model: type[Model], field: Field[Any], ops: Any) -> None:
    """Refuse a field the database of ``ops`` cannot create (no check without ``ops``)."""
    if ops is None:
        return
    name = f"{model.__name__}.{field.name}"
    if isinstance(field, ArrayField) and not ops.features.supports_array_field:
        raise NotSupportedError(
            f"{name} is an ArrayField, which only PostgreSQL supports. Use a JSONField, or "
            "keep this model on a PostgreSQL database."
        )
    if isinstance(field, JSONField) and field.index and not ops.features.can_index_json_field:
        raise NotSupportedError(
            f"{name} is a JSONField with index=True, but {ops.sqlalchemy_dialect} cannot "
            "index a JSON column (it has no order, and a text index needs a prefix length). "
            "Remove index=True, or index a generated column holding the key you filter by, "
            "in a migration."
        )


def sqlalchemy_dialect(db: Database) -> Any:
    """Return the SQLAlchemy dialect instance for ``db`` (for compiling DDL only)."""
    name = db.ops.sqlalchemy_dialect
    if not name:
        raise ImproperlyConfigured(
            f"The {type(db.ops).__name__} of {db.url} names no SQLAlchemy dialect. "
            "Set its sqlalchemy_dialect attribute."
        )
    import importlib

    module = importlib.import_module(f"sqlalchemy.dialects.{name}")
    return module.dialect()


def create_ddl(metadata: sa.MetaData, dialect: Any, *, if_not_exists: bool = True) -> list[str]:
    """Return the CREATE TABLE / CREATE INDEX statements, in dependency order."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    out: list[str] = []
    for table in metadata.sorted_tables:
        out.append(str(CreateTable(table, if_not_exists=if_not_exists).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            out.append(
                str(CreateIndex(index, if_not_exists=if_not_exists).compile(dialect=dialect))
            )
    return [sql.strip() for sql in out]


def drop_ddl(metadata: sa.MetaData, dialect: Any, *, if_exists: bool = True) -> list[str]:
    """Return the DROP TABLE statements, dependents first."""
    from sqlalchemy.schema import DropTable

    return [
        str(DropTable(table, if_exists=if_exists).compile(dialect=dialect)).strip()
        for table in reversed(metadata.sorted_tables)
    ]


async def create_all(
    db: Database, models: Iterable[type[Model]] | None = None, *, if_not_exists: bool = True
) -> None:
    """Create the tables (and indexes) of ``models`` on ``db``; idempotent by default."""
    metadata = build_metadata(models, ops=db.ops)
    for sql in create_ddl(metadata, sqlalchemy_dialect(db), if_not_exists=if_not_exists):
        await run_execute(db, sql, ())


async def drop_all(
    db: Database, models: Iterable[type[Model]] | None = None, *, if_exists: bool = True
) -> None:
    """Drop the tables of ``models`` from ``db`` (dependents first)."""
    metadata = build_metadata(models, ops=db.ops)
    for sql in drop_ddl(metadata, sqlalchemy_dialect(db), if_exists=if_exists):
        await run_execute(db, sql, ())
