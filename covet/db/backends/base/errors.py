"""Builders for the errors every backend raises the same way.

The connect errors (:func:`unreachable_error`, :func:`missing_database_error`,
:func:`login_refused_error`) give each cause one message on every backend;
each dialect's ``translate_connect_error()`` decides which cause a driver
error is and fills in the server address, user and fix.
"""

from __future__ import annotations

import errno
import re
import socket

from covet.db.exceptions import (
    DatabaseUnavailableError,
    OperationalError,
    PoolTimeout,
    TransactionManagementError,
)

__all__ = (
    "aborted_transaction_error",
    "connect_failure_reason",
    "disconnect_error",
    "login_refused_error",
    "missing_database_error",
    "pool_timeout_error",
    "server_address",
    "statement_timeout_error",
    "unreachable_error",
)

# Told after every "cannot connect" and "login refused" message: DATABASE_URL is where a
# project sets the URL (covet's CLI, .env); ORM users passed the URL themselves.
_URL_HINT = "the database URL (DATABASE_URL)"
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def pool_timeout_error(name: str, timeout: float, max_size: int) -> PoolTimeout:
    """Build the error for a checkout that waited ``timeout`` seconds in vain."""
    return PoolTimeout(
        f"No connection to {name} became free within {timeout:g}s: all {max_size} "
        f"connections of the pool (max_size={max_size}) are in use. Raise max_size or "
        "timeout, or look for connections held too long (a leaked connection() block or a "
        "long transaction)."
    )


def disconnect_error(exc: BaseException, display_name: str) -> DatabaseUnavailableError:
    """Build the error for a lost connection or a server shutting down (temporary)."""
    return DatabaseUnavailableError(f"The connection to {display_name} was lost: {exc}")


def statement_timeout_error(display_name: str, seconds: float) -> OperationalError:
    """Build the error for a statement that ran past ``command_timeout``."""
    return OperationalError(
        f"A statement on {display_name} timed out (command_timeout={seconds:g}s). Make the "
        "query cheaper or raise command_timeout."
    )


def aborted_transaction_error(message: str) -> TransactionManagementError:
    """Build the error for a statement run inside a transaction that already failed."""
    return TransactionManagementError(
        f"{message}. A statement failed earlier in this transaction, so the database "
        "ignores everything until it is rolled back. Wrap the statement that may fail in "
        "a nested `async with transaction():` block (a savepoint) and catch the error "
        "outside that block."
    )


def server_address(host: str | None, port: int | None, default_port: int) -> str:
    """Return ``host:port`` for messages (``[::1]:5432`` for an IPv6 address)."""
    name = host or "localhost"
    if ":" in name:
        name = f"[{name}]"
    return f"{name}:{port or default_port}"


def connect_failure_reason(exc: BaseException, timeout: float) -> str | None:
    """Say why a connection attempt failed at the network level, or None when it did not.

    Args:
        exc: The error the driver raised (or the OS error it wrapped).
        timeout: The connect timeout in seconds, named when it expired.

    Returns:
        ``"connection refused"``, ``"the host name is unknown"``, ``"no answer
        within 10s"``, the OS's own words for another socket error, or None when
        ``exc`` is not a network error.
    """
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, socket.gaierror):
        return "the host name is unknown (DNS lookup failed)"
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
    ):
        return "connection refused"
    if isinstance(exc, OSError):
        # asyncio's "Multiple exceptions: [Errno 111] Connect call failed ..." when every
        # address of a name (::1 and 127.0.0.1 for localhost) refused.
        text = str(exc)
        codes = set(_ERRNO.findall(text))
        if exc.errno is None and codes == {str(errno.ECONNREFUSED)}:
            return "connection refused"
        return exc.strerror.lower() if exc.strerror else text.rstrip(".")
    return None


def unreachable_error(display_name: str, address: str, reason: str) -> DatabaseUnavailableError:
    """Build the error for a server that cannot be reached (refused, unknown host, timeout)."""
    return DatabaseUnavailableError(
        f"Cannot connect to {display_name} at {address}: {reason}. Start the database "
        f"server, or fix the host and port in {_URL_HINT}."
    )


def missing_database_error(
    display_name: str, name: str, address: str, command: str
) -> OperationalError:
    """Build the error for a server that has no database ``name``; ``command`` creates it."""
    return OperationalError(
        f"The {display_name} database {name!r} does not exist on {address}. Fix the database "
        f"name in {_URL_HINT}, or create the database with: {command}"
    )


def login_refused_error(
    display_name: str, user: str | None, address: str, detail: str
) -> OperationalError:
    """Build the error for a server that refused the login (unknown user, wrong password)."""
    who = f"user {user!r}" if user else "the default user (no user in the URL)"
    return OperationalError(
        f"{display_name} at {address} refused the login of {who}: {detail.rstrip('.')}. "
        f"Fix the user name and password in {_URL_HINT}."
    )
