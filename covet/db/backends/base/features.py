"""The capability flags of a database, with ANSI defaults."""

from __future__ import annotations

__all__ = ("BaseFeatures",)


class BaseFeatures:
    """Capabilities of a database; the compiler asks these instead of vendor names."""

    # Can INSERT/UPDATE/DELETE ... RETURNING hand back rows?
    supports_returning: bool = True
    # Does a multi-row INSERT ... RETURNING return one row per inserted row?
    can_return_rows_from_bulk_insert: bool = True
    # Are SAVEPOINT / ROLLBACK TO SAVEPOINT available (nested transaction())?
    supports_savepoints: bool = True
    # Do CREATE/ALTER/DROP run inside a transaction and roll back with it?
    supports_transactional_ddl: bool = False
    # Can a result be streamed from the server instead of buffered client-side?
    supports_server_side_cursors: bool = False
    # Is SELECT ... FOR UPDATE meaningful?
    supports_select_for_update: bool = False
    # Can a transaction choose READ COMMITTED / REPEATABLE READ / SERIALIZABLE?
    supports_isolation_levels: bool = False
    # Is there a native UUID column type?
    has_native_uuid: bool = False
    # Is there a native JSON column type with JSON operators?
    has_native_json: bool = False
    # Is there a native BOOLEAN type (rather than 0/1 integers)?
    has_native_bool: bool = False
    # Is there a case-insensitive ILIKE operator?
    supports_ilike: bool = False
    # Does UNIQUE accept NULLS [NOT] DISTINCT?
    supports_nulls_distinct: bool = False
    # Does a failed statement abort the whole transaction until it is rolled back?
    transaction_aborts_on_error: bool = False
    # How many bound parameters may one statement carry?
    max_query_params: int = 999
    # How long may a statement be for the driver to keep it prepared? (None: any length)
    max_cacheable_statement_size: int | None = None
    # How many significant digits of a decimal does the database keep exactly? (None: all
    # the column's max_digits; a backend with a limit refuses longer values, never rounds)
    max_exact_decimal_digits: int | None = None
    # The oldest server version covet supports, as a tuple.
    minimum_version: tuple[int, ...] = ()
