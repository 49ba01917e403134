"""Dialect SQL fragments and value adaptation, with ANSI defaults.

:class:`BaseOperations` is pure string and data functions that never touch a
server, so the SQL compiler and the compile-only tests use it without a
connection. The ``to_*`` helpers are the value converters the dialects share.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from covet import _json
from covet.db.backends.base.functions import FunctionOperations
from covet.db.backends.base.lookups import LookupOperations
from covet.db.exceptions import NotSupportedError

if TYPE_CHECKING:
    from covet.db.backends.base.features import BaseFeatures
    from covet.db.params import ParamStyle

__all__ = (
    "LIKE_LOOKUPS",
    "LOOKUPS",
    "BaseOperations",
    "ColumnAdapter",
    "Converter",
    "json_from_db",
    "json_to_db",
    "to_bool",
    "to_bytes",
    "to_decimal",
    "to_uuid",
    "utc_datetimes",
)


Converter = Callable[[Any], Any]
#: Adapts a column of values at once (see BaseOperations.get_column_adapter()).
ColumnAdapter = Callable[[list[Any]], list[Any]]

_tzinfo = operator.attrgetter("tzinfo")


def utc_datetimes(values: Sequence[Any]) -> bool:
    """Tell, in C loops, whether every value is a ``datetime`` whose zone is ``datetime.UTC``.

    By identity, as ``full_clean()`` leaves them (an equal offset-zero zone is not UTC
    itself): the column adapters and ``bulk_create()``'s checks take such a column whole.
    False for an empty sequence.
    """
    return set(map(type, values)) == {datetime.datetime} and set(map(id, map(_tzinfo, values))) == {
        id(datetime.UTC)
    }


#: The comparison lookups :meth:`BaseOperations.lookup_sql` renders.
LOOKUPS = (
    "exact",
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "gt",
    "gte",
    "lt",
    "lte",
)
#: The lookups that compile to ``LIKE`` and need :meth:`BaseOperations.prepare_lookup_value`.
LIKE_LOOKUPS = frozenset(
    {"contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"}
)


class BaseOperations(FunctionOperations, LookupOperations):
    """Dialect SQL fragments and value adaptation, with ANSI defaults.

    Every method returns SQL text and never interpolates values: values
    travel as parameters in the dialect's placeholder style.

    Args:
        features: The feature flags of the same backend.
    """

    #: The driver's DB-API paramstyle, used to translate raw ``:name`` SQL.
    param_style: ClassVar[ParamStyle] = "qmark"
    #: The quote character around identifiers.
    identifier_quote: ClassVar[str] = '"'
    #: The escape character used in LIKE patterns and how it is written in SQL.
    like_escape_sql: ClassVar[str] = "'\\'"
    #: The binary (case- and accent-sensitive) collation text columns use, if any.
    text_collation: str | None = None
    #: The ``sqlalchemy.dialects`` module that compiles this backend's DDL (schema and
    #: migrations only; queries never go through SQLAlchemy).
    sqlalchemy_dialect: ClassVar[str] = ""
    #: The database's name in OpenTelemetry's semantic conventions (``db.system.name``),
    #: which :mod:`covet.tracing` puts on each statement's span.
    telemetry_name: str = "other_sql"
    #: The operator of ``int / int``: integer division truncating toward zero.
    integer_division_operator: ClassVar[str] = "/"
    #: SQL turning the number ``{}`` into an integer by dropping its fraction (toward
    #: zero), for a decimal or float result stored in an integer column by ``update()``.
    truncate_to_integer_sql: ClassVar[str] = "CAST(TRUNC({}) AS BIGINT)"

    _isolation_levels: ClassVar[Mapping[str, str]] = {}

    def __init__(self, features: BaseFeatures) -> None:
        self.features = features
        self._quoted: dict[str, str] = {}

    # -- identifiers and placeholders ------------------------------------------------------

    def quote_name(self, name: str) -> str:
        """Quote an identifier, doubling any quote character inside it.

        Args:
            name: A table, column, index or savepoint name.

        Returns:
            The quoted identifier, e.g. ``"my ""odd"" name"``.
        """
        quoted = self._quoted.get(name)
        if quoted is None:
            q = self.identifier_quote
            quoted = q + name.replace(q, q + q) + q
            self._quoted[name] = quoted
        return quoted

    def placeholder(self, index: int) -> str:
        """Return the placeholder for the 1-based parameter ``index``."""
        return "?"

    # -- expressions -----------------------------------------------------------------------

    def concat(self, lhs_sql: str, rhs_sql: str) -> str:
        """Return SQL concatenating two string expressions."""
        return f"({lhs_sql} || {rhs_sql})"

    def cast_to_text(self, sql: str) -> str:
        """Return SQL casting an expression to text."""
        return f"CAST({sql} AS TEXT)"

    def cast_param(self, placeholder: str, internal_type: str) -> str:
        """Return SQL for a parameter that must keep the type of its Python value.

        A plain number in arithmetic (``F("quantity") * Decimal("2.5")``) has no
        field to type it, so the compiler asks for it to be typed as
        ``internal_type``. SQLite and MySQL type a parameter by the value bound,
        so the default returns ``placeholder`` unchanged; a database that infers
        a parameter's type from the other operand overrides this with a cast.

        Args:
            placeholder: The parameter's placeholder, from :meth:`placeholder`.
            internal_type: ``"int"`` (64-bit), ``"float"`` (double) or ``"decimal"``.

        Returns:
            SQL standing for the parameter with that type.
        """
        return placeholder

    def random_function(self) -> str:
        """Return the SQL for a random number (``ORDER BY ?`` shuffles)."""
        return "RANDOM()"

    def lookup_sql(self, lookup: str, lhs: str, rhs: str) -> str:
        """Render a comparison lookup.

        ``exact``/``contains``/``startswith``/``endswith`` are case-sensitive and
        the ``i*`` variants case-insensitive on every backend. The LIKE family
        expects ``rhs`` bound to :meth:`prepare_lookup_value` of the value.

        Args:
            lookup: One of :data:`LOOKUPS`.
            lhs: SQL of the left side, usually a quoted column.
            rhs: SQL of the right side, usually a placeholder.

        Returns:
            The SQL condition.

        Raises:
            NotSupportedError: ``lookup`` is not one of :data:`LOOKUPS`.
        """
        if lookup == "exact":
            return f"{lhs} = {rhs}"
        if lookup == "gt":
            return f"{lhs} > {rhs}"
        if lookup == "gte":
            return f"{lhs} >= {rhs}"
        if lookup == "lt":
            return f"{lhs} < {rhs}"
        if lookup == "lte":
            return f"{lhs} <= {rhs}"
        if lookup == "iexact":
            return f"LOWER({lhs}) = LOWER({rhs})"
        if lookup in LIKE_LOOKUPS:
            if lookup[0] == "i":
                return self.ilike_sql(lhs, rhs)
            return f"{lhs} LIKE {rhs} ESCAPE {self.like_escape_sql}"
        raise NotSupportedError(
            f"Unsupported lookup {lookup!r}. Use one of: {', '.join(LOOKUPS)}, in, isnull, range."
        )

    def ilike_sql(self, lhs: str, rhs: str) -> str:
        """Render a case-insensitive LIKE (the pattern comes from prepare_lookup_value)."""
        return f"LOWER({lhs}) LIKE LOWER({rhs}) ESCAPE {self.like_escape_sql}"

    def prepare_lookup_value(self, lookup: str, value: Any) -> Any:
        """Turn a lookup value into the parameter the lookup SQL expects.

        For the LIKE family, escape the wildcard characters ``%`` and ``_`` and
        the escape character itself, then add the wildcards the lookup needs;
        other lookups get ``value`` unchanged.
        """
        if lookup not in LIKE_LOOKUPS:
            return value
        text = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if lookup.endswith("contains"):
            return f"%{text}%"
        if lookup.endswith("startswith"):
            return f"{text}%"
        return f"%{text}"

    def in_sql(self, lhs: str, placeholders: Sequence[str]) -> str:
        """Render ``lhs IN (...)``; an empty list is a condition that is never true."""
        if not placeholders:
            return "1 = 0"
        return f"{lhs} IN ({', '.join(placeholders)})"

    def isnull_sql(self, lhs: str, is_null: bool) -> str:
        """Render ``IS NULL`` or ``IS NOT NULL``."""
        return f"{lhs} IS NULL" if is_null else f"{lhs} IS NOT NULL"

    def range_sql(self, lhs: str, lo: str, hi: str) -> str:
        """Render an inclusive range, ``lhs BETWEEN lo AND hi``."""
        return f"{lhs} BETWEEN {lo} AND {hi}"

    # -- clauses ----------------------------------------------------------------------------

    def limit_offset(self, limit: int | None, offset: int | None) -> str:
        """Render LIMIT/OFFSET (empty when both are None).

        Raises:
            ValueError: ``limit`` or ``offset`` is negative or not an int.
        """
        for label, value in (("limit", limit), ("offset", offset)):
            # Values are inlined into the SQL, so anything but a plain int is refused.
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"Invalid {label} {value!r}. Use a non-negative integer or None.")
        if limit is None and not offset:
            return ""
        if limit is None:
            return self._offset_only(offset or 0)
        if offset:
            return f"LIMIT {limit} OFFSET {offset}"
        return f"LIMIT {limit}"

    def _offset_only(self, offset: int) -> str:
        return f"OFFSET {offset}"

    def returning(self, columns: Sequence[str]) -> str:
        """Render ``RETURNING col, ...`` for unquoted column names.

        Raises:
            NotSupportedError: The database has no RETURNING.
        """
        features = self.features
        if not (features.supports_returning or features.can_return_rows_from_bulk_insert):
            raise NotSupportedError(
                "This database does not support RETURNING. Check "
                "features.supports_returning before asking for it."
            )
        return "RETURNING " + ", ".join(self.quote_name(column) for column in columns)

    def upsert(self, conflict_columns: Sequence[str], update_columns: Sequence[str]) -> str:
        """Render the clause that turns ``INSERT INTO t (...) VALUES (...)`` into an upsert.

        Args:
            conflict_columns: The unique columns whose conflict triggers the update.
            update_columns: Columns to overwrite with the inserted values; empty means
                "keep the existing row" (insert-or-ignore).

        Returns:
            ``ON CONFLICT (...) DO UPDATE SET col = EXCLUDED.col`` or ``... DO NOTHING``.
        """
        target = ", ".join(self.quote_name(column) for column in conflict_columns)
        conflict = f"ON CONFLICT ({target})" if target else "ON CONFLICT"
        if not update_columns:
            return f"{conflict} DO NOTHING"
        sets = ", ".join(
            f"{self.quote_name(column)} = EXCLUDED.{self.quote_name(column)}"
            for column in update_columns
        )
        return f"{conflict} DO UPDATE SET {sets}"

    def ignore_conflicts_sql(self, conflict_columns: Sequence[str], noop_column: str) -> str:
        """Render the clause that makes an INSERT skip the rows that hit a unique constraint.

        Args:
            conflict_columns: The unique columns whose conflict is skipped; empty means
                a conflict with any unique constraint.
            noop_column: A column of the table, for dialects that spell "skip" as an
                assignment of a column to itself.

        Returns:
            ``ON CONFLICT (...) DO NOTHING`` (``ON CONFLICT DO NOTHING`` without columns).
        """
        return self.upsert(conflict_columns, [])

    def case_value(self, placeholder: str, internal_type: str) -> str:
        """Return a ``THEN`` value of the ``CASE`` that ``bulk_update()`` writes (as is here).

        A dialect that infers a parameter's type from its context overrides this:
        the branches of a CASE give it none.
        """
        return placeholder

    def explain_prefix(self, analyze: bool = False) -> str:
        """Return the prefix that turns a query into its plan."""
        return "EXPLAIN ANALYZE" if analyze else "EXPLAIN"

    def for_update_sql(
        self, *, nowait: bool = False, skip_locked: bool = False, of: Sequence[str] = ()
    ) -> str:
        """Render ``FOR UPDATE [OF ...] [NOWAIT | SKIP LOCKED]``.

        Raises:
            NotSupportedError: ``nowait`` and ``skip_locked`` were both asked for.
        """
        if nowait and skip_locked:
            raise NotSupportedError(
                "select_for_update() got both nowait=True and skip_locked=True. Choose one."
            )
        sql = "FOR UPDATE"
        if of:
            sql += " OF " + ", ".join(self.quote_name(name) for name in of)
        if nowait:
            sql += " NOWAIT"
        elif skip_locked:
            sql += " SKIP LOCKED"
        return sql

    def distinct_sql(self, fields: Sequence[str] = ()) -> str:
        """Render DISTINCT; ``fields`` (rendered SQL, DISTINCT ON) only where the dialect has it.

        Raises:
            NotSupportedError: ``fields`` were given and the dialect has no DISTINCT ON.
        """
        if fields:
            raise NotSupportedError(
                f"distinct(*fields) (DISTINCT ON) is not supported on {self.telemetry_name}: "
                "only PostgreSQL has it. Use distinct() without fields, or values(...)"
                ".distinct() on the fields."
            )
        return "DISTINCT"

    def bulk_batch_size(self, n_fields: int, n_objs: int) -> int:
        """Return how many rows one multi-row INSERT may carry within the parameter limit."""
        per_row = max(n_fields, 1)
        return max(1, min(n_objs, self.features.max_query_params // per_row))

    def array_insert_sql(
        self, table_sql: str, columns_sql: Sequence[str], internal_types: Sequence[str]
    ) -> str | None:
        """Render an INSERT whose parameter ``i`` is the array of column ``i``'s values.

        Used by ``bulk_create()`` where ``features.can_bulk_insert_arrays``. Returns
        None when a column's type has no array form here: the caller then falls back
        to a multi-row ``VALUES``.

        Raises:
            NotImplementedError: The backend has no array insert (check the feature first).
        """
        raise NotImplementedError(
            f"{type(self).__name__}.array_insert_sql() is not implemented: this database "
            "has no array parameters. Check features.can_bulk_insert_arrays first."
        )

    def bulk_insert_params(self, columns: list[list[Any]]) -> Sequence[Any]:
        """Return a multi-row INSERT's parameters, row by row, from its values column by column.

        A backend whose driver writes values into the statement may return a
        sequence that also carries the columns, so it can escape a column at a
        time (MySQL: ``mysql.driver.InsertRows``).
        """
        if len(columns) == 1:
            return columns[0]
        return list(itertools.chain.from_iterable(zip(*columns, strict=True)))

    def bulk_key_check_sql(self, table_sql: str, pk_sql: str) -> str:
        """Render the check before counting a bulk INSERT's keys back from its last one.

        Used where ``features.bulk_insert_counts_keys_back``: one row of the
        table's largest key and whether any trigger is defined on the table
        (whose own INSERTs could take keys between the statement's rows); the
        table's name is the statement's one parameter.

        Raises:
            NotImplementedError: The backend does not count keys back.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.bulk_key_check_sql() is not implemented: check "
            "features.bulk_insert_counts_keys_back first."
        )

    def json_insert_sql(
        self, table_sql: str, columns_sql: Sequence[str], internal_types: Sequence[str]
    ) -> str | None:
        """Render an INSERT whose parameter ``i`` is column ``i``'s values as a JSON array.

        A faster form of :meth:`array_insert_sql` where the driver's array encoder
        costs more than writing JSON (PostgreSQL); None here and wherever a
        column's type has no JSON form.
        """
        return None

    def json_columns(self, columns: Sequence[list[Any]], types: Sequence[str]) -> list[str] | None:
        """Write each column as the JSON text :meth:`json_insert_sql` takes, or None (arrays)."""
        return None

    def array_update_sql(
        self, table_sql: str, pk_sql: str, columns_sql: Sequence[str], internal_types: Sequence[str]
    ) -> str | None:
        """Render an UPDATE taking the keys and each column's new values as arrays, or None.

        Used by ``bulk_update()`` where ``features.can_bulk_update_arrays``; None when
        a type has no array form (the caller then writes a ``CASE``).

        Raises:
            NotImplementedError: The backend has no array parameters.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.array_update_sql() is not implemented: this database "
            "has no array parameters. Check features.can_bulk_update_arrays first."
        )

    def max_literal_bytes(self, value: Any) -> int:
        """Return an upper bound of the bytes ``value`` takes written into a statement.

        Only asked where ``features.max_statement_bytes`` is set (drivers that inline
        values client-side): ``bulk_create()`` cuts its statements below that limit.
        """
        if value is None:
            return 4
        if isinstance(value, str):
            # UTF-8 takes up to 4 bytes a character; an escaped quote or backslash takes 2.
            return 4 * len(value) + 2
        if isinstance(value, (bytes, bytearray, memoryview)):
            return 2 * len(value) + 12  # hexadecimal, as _binary X'...'
        return 48  # numbers, dates, times, UUIDs as text

    def get_array_adapter(self, internal_type: str) -> Converter | None:
        """Return what turns a value into an element of :meth:`array_insert_sql`'s arrays."""
        return None

    def insert_default_values(self, table_sql: str) -> str:
        """Render an INSERT of a row made only of column defaults."""
        return f"INSERT INTO {table_sql} DEFAULT VALUES"

    def create_table_suffix(self) -> str:
        """Return what goes after ``CREATE TABLE t (...)`` (engine, charset, collation)."""
        return ""

    # -- transactions -----------------------------------------------------------------------

    def savepoint_sql(self, name: str) -> str:
        """Render the statement creating savepoint ``name``."""
        return f"SAVEPOINT {self.quote_name(name)}"

    def release_savepoint_sql(self, name: str) -> str:
        """Render the statement releasing savepoint ``name``."""
        return f"RELEASE SAVEPOINT {self.quote_name(name)}"

    def rollback_to_savepoint_sql(self, name: str) -> str:
        """Render the statement rolling back to savepoint ``name``."""
        return f"ROLLBACK TO SAVEPOINT {self.quote_name(name)}"

    def normalize_isolation(self, level: str | None) -> str | None:
        """Validate a transaction isolation level and return its canonical spelling.

        Raises:
            NotSupportedError: The backend does not offer ``level``.
        """
        if level is None:
            return None
        key = " ".join(level.lower().replace("_", " ").split())
        canonical = self._isolation_levels.get(key)
        if canonical is None:
            choices = ", ".join(repr(name) for name in self._isolation_levels) or "none"
            raise NotSupportedError(
                f"Unsupported transaction isolation level {level!r} for this database. "
                f"Use one of: {choices}."
            )
        return canonical

    # -- values -----------------------------------------------------------------------------

    def get_adapter(self, internal_type: str) -> Converter | None:
        """Return the function turning a canonical Python value into a driver value.

        ``None`` means the driver takes the value as it is (the fast path).
        """
        return None

    def get_column_adapter(self, internal_type: str) -> ColumnAdapter | None:
        """Return what adapts a whole column of cleaned values at once, or None.

        ``bulk_create()`` asks for it before :meth:`get_adapter`: where the
        values of a column are all of one canonical kind (UTC datetimes), a
        backend may adapt them in C loops instead of a call per value, with the
        same result as ``get_adapter()``'s function applied to each (None kept).
        """
        return None

    def get_converter(self, internal_type: str) -> Converter | None:
        """Return the function turning a driver value back into the canonical value.

        ``None`` means the driver already returns the canonical value.
        """
        return None


# -- shared value helpers ------------------------------------------------------------------


def to_decimal(value: Any) -> Any:
    """Convert an int/float/str from the driver into a Decimal (None stays None)."""
    if value is None or type(value) is decimal.Decimal:
        return value
    return decimal.Decimal(str(value))


def json_to_db(value: Any) -> Any:
    """Serialize a value for a text JSON column (SQLite, MySQL); None stays SQL NULL."""
    return None if value is None else _json.dumps(value).decode()


def json_from_db(value: Any) -> Any:
    """Parse a JSON column's text (None stays None)."""
    return None if value is None else _json.loads(value)


def to_bool(value: Any) -> Any:
    """Convert 0/1 into False/True (None stays None)."""
    return None if value is None else bool(value)


def to_uuid(value: Any) -> Any:
    """Convert a str, bytes or UUID subclass into a plain :class:`uuid.UUID`."""
    if value is None or type(value) is uuid.UUID:
        return value
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=value.int)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return uuid.UUID(bytes=raw) if len(raw) == 16 else uuid.UUID(raw.decode("ascii"))
    return uuid.UUID(str(value))


def to_bytes(value: Any) -> Any:
    """Convert memoryview/bytearray into bytes (None stays None)."""
    if value is None or type(value) is bytes:
        return value
    return bytes(value)
