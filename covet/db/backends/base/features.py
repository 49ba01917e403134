"""The capability flags of a database, with ANSI defaults."""

from __future__ import annotations

__all__ = ("BaseFeatures",)


class BaseFeatures:
    """Capabilities of a database; the compiler asks these instead of vendor names."""

    # Can INSERT/UPDATE/DELETE ... RETURNING hand back rows?
    supports_returning: bool = True
    # Does a multi-row INSERT ... RETURNING return one row per inserted row?
    can_return_rows_from_bulk_insert: bool = True
    # Can an upsert name the unique columns whose conflict it handles (ON CONFLICT (a, b)),
    # so that a conflict on another unique key still fails? (MySQL/MariaDB: ON DUPLICATE KEY
    # UPDATE fires on a conflict with any unique key; bulk_create() then refuses unique_fields
    # that would not decide alone)
    supports_update_conflicts_with_target: bool = True
    # Do CREATE/ALTER/DROP run inside a transaction and roll back with it?
    supports_transactional_ddl: bool = False
    # Can ALTER TABLE change or drop a column in place? (If not, migrations rebuild the
    # table in alembic's batch mode, which needs the live table and so no --sql downgrade.)
    can_alter_columns: bool = True
    # Does the SQL covet writes depend on the server (flavour, version, collations), so
    # that the operations are only complete once connected?
    has_server_dependent_ops: bool = False
    # Is SELECT ... FOR UPDATE meaningful?
    supports_select_for_update: bool = False
    # Can SELECT ... FOR UPDATE skip the rows other transactions locked (SKIP LOCKED), so
    # that many workers take different rows of one queue without waiting for each other?
    has_select_for_update_skip_locked: bool = False
    # Does a deadlock (TransactionRollbackError) roll the whole transaction back and drop
    # its savepoints? (InnoDB: yes, so ROLLBACK TO SAVEPOINT would fail; PostgreSQL only
    # aborts the transaction, and rolling back to a savepoint recovers it)
    rollback_error_ends_transaction: bool = False
    # Can a transaction choose READ COMMITTED / REPEATABLE READ / SERIALIZABLE?
    supports_isolation_levels: bool = False
    # Does a failed statement abort the whole transaction until it is rolled back?
    transaction_aborts_on_error: bool = False
    # Can one INSERT take each column's values as one array parameter (INSERT ... SELECT
    # FROM unnest(...)), so that a bulk insert is a short, cacheable statement of a few
    # parameters whatever its row count? (ops.array_insert_sql() renders it)
    can_bulk_insert_arrays: bool = False
    # Can one UPDATE take each column's new values as one array parameter (UPDATE ... FROM
    # unnest(...)), so that bulk_update() is one short statement joined on the key?
    # (ops.array_update_sql() renders it)
    can_bulk_update_arrays: bool = False
    # Do the rows of one multi-row INSERT get consecutive auto-increment keys, this far
    # apart, the first reported as the statement's last insert id? (None: not known to.
    # MySQL/MariaDB with innodb_autoinc_lock_mode 0 or 1, set at connect: bulk_create()
    # then reads no RETURNING rows)
    bulk_insert_id_step: int | None = None
    # Does a multi-row INSERT report its last row's key as its last insert id, the rows'
    # keys consecutive whenever the table has no triggers and room below the largest key?
    # (SQLite: rowids; bulk_create() checks both with ops.bulk_key_check_sql() in its
    # transaction, then counts the keys back from the last instead of reading RETURNING)
    bulk_insert_counts_keys_back: bool = False
    # How many bound parameters may one statement carry?
    max_query_params: int = 999
    # How many bytes may one statement be on the wire? (None: no limit below the parameter
    # count; MySQL: max_allowed_packet, read at connect, as its driver inlines the values)
    max_statement_bytes: int | None = None
    # How long may a statement be for the driver to keep it prepared? (None: any length)
    max_cacheable_statement_size: int | None = None
    # How many significant digits of a decimal does the database keep exactly? (None: all
    # the column's max_digits; a backend with a limit refuses longer values, never rounds)
    max_exact_decimal_digits: int | None = None
    # Are writes serialized by a queue inside one process, so that several worker
    # processes contend for the database's single write lock? (`covet check --deploy`)
    serializes_writes_per_process: bool = False
    # Can text and JSON values hold the NUL character U+0000? (If not, storing one is a
    # DataError that says so.)
    supports_nul_in_text: bool = True
    # Can an aggregate take FILTER (WHERE ...)? (SQL:2003; PostgreSQL 9.4+, SQLite 3.30+.
    # If not, Count("x", filter=Q(...)) becomes COUNT(CASE WHEN ... THEN x END).)
    supports_aggregate_filter_clause: bool = True
    # Can a SELECT use window functions, ``expr OVER (...)``? (PostgreSQL, MySQL 8 and
    # MariaDB 10.2+ can: covet's minimum versions; SQLite from 3.25)
    supports_over_clause: bool = True
    # Can SELECT DISTINCT ON (expr, ...) keep the first row of each group? (PostgreSQL only)
    can_distinct_on_fields: bool = False
    # Can JSONField(index=True) index its column? (PostgreSQL: a GIN index with
    # jsonb_path_ops, serving `contains`; SQLite: a plain index on the text; MySQL/MariaDB
    # cannot index a JSON/LONGTEXT column without a prefix length, so the field is refused)
    can_index_json_field: bool = True
    # Has the database array columns (ArrayField, with contains/overlap/len lookups)?
    supports_array_field: bool = False
    # The oldest server version covet supports, as a tuple.
    minimum_version: tuple[int, ...] = ()
