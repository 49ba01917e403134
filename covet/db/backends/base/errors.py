"""Builders for the errors every backend raises the same way."""

from __future__ import annotations

from covet.db.exceptions import OperationalError, PoolTimeout, TransactionManagementError

__all__ = ("aborted_transaction_error", "disconnect_error", "pool_timeout_error")


def pool_timeout_error(name: str, timeout: float, max_size: int) -> PoolTimeout:
    """Build the error for a checkout that waited ``timeout`` seconds in vain."""
    return PoolTimeout(
        f"No connection to {name} became free within {timeout:g}s: all {max_size} "
        f"connections of the pool (max_size={max_size}) are in use. Raise max_size or "
        "timeout, or look for connections held too long (a leaked connection() block or a "
        "long transaction)."
    )


def disconnect_error(exc: BaseException, display_name: str) -> OperationalError:
    """Build the OperationalError for a lost connection."""
    return OperationalError(f"The connection to {display_name} was lost: {exc}")


def aborted_transaction_error(message: str) -> TransactionManagementError:
    """Build the error for a statement run inside a transaction that already failed."""
    return TransactionManagementError(
        f"{message}. A statement failed earlier in this transaction, so the database "
        "ignores everything until it is rolled back. Wrap the statement that may fail in "
        "a nested `async with transaction():` block (a savepoint) and catch the error "
        "outside that block."
    )
