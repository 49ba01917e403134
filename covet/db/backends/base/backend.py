"""The backend: a database server's features, operations, pool and error translation."""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from covet.db.backends.base.creation import BaseCreation
from covet.db.backends.base.errors import pool_timeout_error
from covet.db.backends.base.features import BaseFeatures
from covet.db.backends.base.operations import BaseOperations
from covet.db.exceptions import DatabaseError, InterfaceError, PoolTimeout
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from covet.db.backends.base.connection import BaseConnection
    from covet.db.backends.base.pool import ConnectionPool, PoolStats
    from covet.db.database import DatabaseURL

__all__ = ("BaseBackend", "Option", "PooledBackend")

ConnT = TypeVar("ConnT", bound="BaseConnection")


@dataclass(frozen=True, slots=True)
class Option:
    """Describe one backend option: its type, default and meaning.

    Options come from ``Database(url, **options)`` or the URL query string;
    strings from the URL are parsed into ``type``.
    """

    type: type
    default: Any
    help: str


class BaseBackend(abc.ABC):
    """A database server: its features, operations, creation, pool and error translation.

    Args:
        url: The parsed database URL.
        min_size: Connections kept open (None: the backend default).
        max_size: The most connections open at once (None: the backend default).
        timeout: Seconds to wait for a free connection.
        options: Backend options, already parsed and validated.
    """

    vendor: ClassVar[str]
    display_name: ClassVar[str]
    features_class: ClassVar[type[BaseFeatures]] = BaseFeatures
    operations_class: ClassVar[type[BaseOperations]] = BaseOperations
    creation_class: ClassVar[type[BaseCreation]] = BaseCreation
    default_min_size: ClassVar[int] = 1
    default_max_size: ClassVar[int] = 10
    #: Options accepted by this backend beyond min_size/max_size/timeout.
    options: ClassVar[Mapping[str, Option]] = {}
    #: URL query keys handed to the driver untouched (e.g. PostgreSQL's sslmode).
    driver_query_keys: ClassVar[frozenset[str]] = frozenset()
    #: The shape of this backend's URLs, shown when one is malformed (``{scheme}`` is filled in).
    url_form: ClassVar[str] = "{scheme}://USER:PASSWORD@HOST:PORT/DATABASE"
    #: Whether the URL must name a database (a server backend does; SQLite names a file).
    requires_database_name: ClassVar[bool] = True

    def __init__(
        self,
        url: DatabaseURL,
        *,
        min_size: int | None,
        max_size: int | None,
        timeout: float,
        options: Mapping[str, Any],
    ) -> None:
        self.url = url
        #: The alias of the Database that owns this backend (set by Database), named in
        #: recorded queries so per-database metrics can tell pools apart.
        self.alias = "default"
        if self.requires_database_name and not url.database:
            raise ImproperlyConfigured(
                f"The database URL {str(url)!r} names no database. Use "
                f"{self.url_form.format(scheme=url.scheme)}."
            )
        self.max_size = self.default_max_size if max_size is None else max_size
        # The default min_size shrinks to a small max_size; an explicit one must fit.
        self.min_size = min(self.default_min_size, self.max_size) if min_size is None else min_size
        if self.max_size < 1 or not 0 <= self.min_size <= self.max_size:
            raise ValueError(
                f"Invalid pool size min_size={min_size!r}, max_size={max_size!r}. "
                "Use 0 <= min_size <= max_size and max_size >= 1."
            )
        self.timeout = timeout
        self.settings = dict(options)
        self.features = self.features_class()
        self.ops = self.operations_class(self.features)
        self.creation = self.creation_class(self)

    @abc.abstractmethod
    async def connect(self) -> None:
        """Import the driver, open the pool and detect the server's capabilities."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close every connection."""

    @abc.abstractmethod
    async def acquire(self) -> BaseConnection:
        """Check out a connection from the pool."""

    @abc.abstractmethod
    async def release(self, conn: BaseConnection) -> None:
        """Return a connection to the pool (safe under cancellation)."""

    def checkout_now(self, sql: str) -> BaseConnection | None:
        """Return a connection to run ``sql`` on now, without waiting or I/O, or None.

        The statement helpers (:mod:`covet.db.execution`) try this first for a
        statement outside a transaction: a plain call instead of
        :meth:`acquire`'s coroutine. On None they await :meth:`acquire`, which
        waits for a slot, pings or opens as needed. The statement's ``_run()``
        hands the connection back (``release=True``). A pooled backend returns
        the pool's ready connection; SQLite may return its shared connection.
        """
        return None

    def checkin_now(self, conn: BaseConnection) -> bool:
        """Return ``conn`` to the pool when that needs no I/O; tell whether it did.

        On False the caller awaits :meth:`release`, which resets or discards it.
        """
        return False

    @abc.abstractmethod
    async def replace_raw(self, conn: BaseConnection) -> None:
        """Swap the dead driver connection inside ``conn`` for a new one."""

    @abc.abstractmethod
    def stats(self) -> PoolStats:
        """Return the pool's size, idle count and maximum."""

    @abc.abstractmethod
    def translate_error(self, exc: BaseException) -> DatabaseError:
        """Map a driver exception to the covet exception class."""

    def translate_connect_error(self, exc: BaseException) -> DatabaseError:
        """Map an error raised while opening a connection to a covet exception.

        Opening a connection fails for reasons of its own: the server cannot be
        reached, the database does not exist, the login is refused. A dialect
        recognises its driver's errors for these and builds the message with
        :func:`~covet.db.backends.base.errors.unreachable_error` and its
        siblings, so each cause reads the same on every backend; anything else
        goes through :meth:`translate_error`.
        """
        return exc if isinstance(exc, DatabaseError) else self.translate_error(exc)

    @abc.abstractmethod
    def is_disconnect(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` means the connection (or server) is gone."""

    def not_sent(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` proves the statement never reached the server."""
        return False

    def on_disconnect(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """React to a lost connection: have every idle connection re-checked before use."""

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Translate driver exceptions raised in the block into covet exceptions."""
        try:
            yield
        except DatabaseError:
            raise
        except Exception as exc:
            raise self.translate_error(exc) from exc

    def pool_timeout_error(self) -> PoolTimeout:
        """Build the PoolTimeout raised when no connection became free in time."""
        return pool_timeout_error(str(self.url), self.timeout, self.max_size)


class PooledBackend(BaseBackend, Generic[ConnT]):
    """A backend whose connections live in covet's :class:`ConnectionPool` (all three do).

    The subclass creates the pool in :meth:`connect` and drops it in
    :meth:`disconnect`; this class holds it and answers for it meanwhile.
    """

    _pool: ConnectionPool[ConnT] | None = None

    def _require_pool(self) -> ConnectionPool[ConnT]:
        if self._pool is None:
            raise InterfaceError(f"The database {self.url} is not connected. Call connect().")
        return self._pool

    def stats(self) -> PoolStats:
        """Return the pool statistics."""
        return self._require_pool().stats()

    def checkout_now(self, sql: str) -> ConnT | None:
        """Return the pool's ready connection (see ``ConnectionPool.try_acquire()``), or None."""
        pool = self._pool
        return None if pool is None else pool.try_acquire()

    def checkin_now(self, conn: BaseConnection) -> bool:
        """Return ``conn`` to the pool when it needs no reset (``ConnectionPool.try_release()``)."""
        pool = self._pool
        return pool is not None and pool.try_release(conn)  # type: ignore[arg-type]
