"""What every database backend provides: features, operations, connections, pool.

A dialect module (``sqlite``, ``postgres``, ``mysql``) subclasses the four base
classes below. ``BaseFeatures`` and ``BaseOperations`` hold ANSI defaults and
are pure data/string functions that never touch a server, so the SQL compiler
and the compile-only tests use them without a connection. ``BaseConnection``
is the thin, hot-path wrapper the ORM runs statements on; ``BaseBackend`` owns
the pool. :class:`ConnectionPool` is the pool every backend uses (through
:class:`PooledBackend`): no driver's own pool gives a checkout of a few
microseconds with covet's timeouts, cancellation hand-over and reset rules.

The package holds one concept per module: ``features``, ``operations``,
``creation`` (migration engine and lock, test databases), ``records``,
``connection``, ``pool``, ``backend`` and ``errors``.
"""

from __future__ import annotations

from covet.db.backends.base.backend import BaseBackend, Option, PooledBackend
from covet.db.backends.base.connection import BaseConnection
from covet.db.backends.base.creation import BaseCreation, url_with_option, url_with_path
from covet.db.backends.base.errors import (
    aborted_transaction_error,
    connect_failure_reason,
    disconnect_error,
    login_refused_error,
    missing_database_error,
    pool_timeout_error,
    server_address,
    statement_timeout_error,
    unreachable_error,
)
from covet.db.backends.base.features import BaseFeatures
from covet.db.backends.base.operations import (
    LIKE_LOOKUPS,
    LOOKUPS,
    BaseOperations,
    ColumnAdapter,
    Converter,
    json_from_db,
    json_to_db,
    to_bool,
    to_bytes,
    to_decimal,
    to_uuid,
    utc_datetimes,
)
from covet.db.backends.base.pool import ConnectionPool, PoolStats, released
from covet.db.backends.base.records import Record, is_read_only_sql, make_index

__all__ = (
    "LIKE_LOOKUPS",
    "LOOKUPS",
    "BaseBackend",
    "BaseConnection",
    "BaseCreation",
    "BaseFeatures",
    "BaseOperations",
    "ColumnAdapter",
    "ConnectionPool",
    "Converter",
    "Option",
    "PoolStats",
    "PooledBackend",
    "Record",
    "aborted_transaction_error",
    "connect_failure_reason",
    "disconnect_error",
    "is_read_only_sql",
    "json_from_db",
    "json_to_db",
    "login_refused_error",
    "make_index",
    "missing_database_error",
    "pool_timeout_error",
    "released",
    "server_address",
    "statement_timeout_error",
    "to_bool",
    "to_bytes",
    "to_decimal",
    "to_uuid",
    "unreachable_error",
    "url_with_option",
    "url_with_path",
    "utc_datetimes",
)
