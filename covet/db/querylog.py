"""Record the SQL statements run in a block: the ORM's query counter and the debug page's log.

>>> async with capture_queries() as queries:       # doctest: +SKIP
...     await Post.objects.select_related("author")
>>> queries.count                                 # doctest: +SKIP
1

Every statement sent through a pooled connection (ORM queries, raw SQL,
``create_all()`` DDL, streamed queries) is recorded with its parameters and
duration by :class:`~covet.db.backends.base.BaseConnection`, into the
:class:`QueryLog` of the innermost :func:`capture_queries` block of the
current task (and of the blocks around it). Tasks started inside the block
(``asyncio.gather``) inherit it. Outside any block, the connection's only cost
is one context variable lookup per statement.

:func:`observe_queries` registers a process-wide callback that sees every
statement, in or out of a block (the slow-query log of :mod:`covet.logging`
uses it; query metrics can too).
"""

from __future__ import annotations

import collections
import contextvars
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import TracebackType

__all__ = ("CapturedQuery", "QueryLog", "capture_queries", "observe_queries")

#: The innermost open :class:`QueryLog` of this context, or None (not recording).
current_log: contextvars.ContextVar[QueryLog | None] = contextvars.ContextVar(
    "covet_query_log", default=None
)

# What BaseConnection runs without SQL text of its own: transaction control.
_TRANSACTION_METHODS = {"_begin": "BEGIN", "_commit": "COMMIT", "_rollback": "ROLLBACK"}
_TRANSACTION_PREFIXES = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "START")


@dataclass(frozen=True, slots=True)
class CapturedQuery:
    """One statement run inside :func:`capture_queries`.

    Attributes:
        sql: The statement, in the dialect's placeholder style.
        params: Its parameters; for ``execute_many()``, one sequence per run.
        duration: Seconds from sending the statement to its result (for a
            streamed query, until the last row was read).
        many: Whether it ran once per parameter sequence (``execute_many()``).
        transaction: Whether it is transaction control (``BEGIN``,
            ``COMMIT``, ``ROLLBACK``, savepoints).
        failed: Whether the database refused it (the error was raised).
        database: The alias of the :class:`~covet.db.Database` that ran it.
    """

    sql: str
    params: Sequence[Any]
    duration: float
    many: bool = False
    transaction: bool = False
    failed: bool = False
    database: str = "default"


# record() builds a CapturedQuery per statement while anything observes queries (metrics
# do, in every scaffolded project). The frozen dataclass's own __init__ sets each field
# through object.__setattr__() and costs about twice what setting them through their slot
# descriptors does (7,300 instructions per statement, measured under callgrind). Same
# object, same fields: tests/db/test_querylog.py checks _captured() against the class.
_CAPTURED_FIELDS = ("sql", "params", "duration", "many", "transaction", "failed", "database")
(_set_sql, _set_params, _set_duration, _set_many, _set_transaction, _set_failed, _set_database) = (
    CapturedQuery.__dict__[name].__set__ for name in _CAPTURED_FIELDS
)
_new_object = object.__new__


def _captured(
    sql: str,
    params: Sequence[Any],
    duration: float,
    many: bool,
    transaction: bool,
    failed: bool,
    database: str,
) -> CapturedQuery:
    """Return ``CapturedQuery(sql, params, duration, many, transaction, failed, database)``."""
    query: CapturedQuery = _new_object(CapturedQuery)
    _set_sql(query, sql)
    _set_params(query, params)
    _set_duration(query, duration)
    _set_many(query, many)
    _set_transaction(query, transaction)
    _set_failed(query, failed)
    _set_database(query, database)
    return query


class QueryLog:
    """The statements recorded by one :func:`capture_queries` block.

    Iterating gives :class:`CapturedQuery` items, oldest first; ``len()`` and
    :attr:`count` give how many statements ran, even when ``limit`` kept only
    the latest ones.

    Args:
        limit: Keep only the last ``limit`` statements (None keeps every one).
        transactions: Record transaction control (``BEGIN``, ``COMMIT``,
            ``ROLLBACK``, savepoints) too. Off by default, so a count is the
            number of queries the code under test wrote, however the
            transactions around it are arranged.
    """

    __slots__ = ("_parent", "_token", "captured", "count", "limit", "transactions")

    def __init__(self, *, limit: int | None = None, transactions: bool = False) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"Invalid query log limit {limit!r}. Use a positive number or None.")
        self.limit = limit
        self.transactions = transactions
        #: The statements kept, oldest first.
        self.captured: collections.deque[CapturedQuery] = collections.deque(maxlen=limit)
        #: How many statements ran in the block (including any no longer kept).
        self.count = 0
        self._parent: QueryLog | None = None
        self._token: contextvars.Token[QueryLog | None] | None = None

    @property
    def queries(self) -> list[str]:
        """Return the SQL of the statements kept, oldest first."""
        return [query.sql for query in self.captured]

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[CapturedQuery]:
        return iter(list(self.captured))

    def __repr__(self) -> str:
        return f"<QueryLog count={self.count}>"

    def add(self, query: CapturedQuery) -> None:
        """Record ``query`` here and in every enclosing log that wants it."""
        log: QueryLog | None = self
        while log is not None:
            log._keep(query)
            log = log._parent

    def _keep(self, query: CapturedQuery) -> None:
        if self.transactions or not query.transaction:
            self.count += 1
            self.captured.append(query)

    def start(self) -> QueryLog:
        """Start recording in the current context (what ``with`` does); return the log."""
        if self._token is not None:
            raise RuntimeError(f"{self!r} is already recording. Use a new capture_queries().")
        self._parent = current_log.get(observers.log)
        self._token = current_log.set(self)
        return self

    def stop(self) -> None:
        """Stop recording (what leaving the ``with`` block does)."""
        token, self._token = self._token, None
        if token is not None:
            current_log.reset(token)

    def __enter__(self) -> QueryLog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> QueryLog:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def capture_queries(*, limit: int | None = None, transactions: bool = False) -> QueryLog:
    """Record the statements run inside the block, with parameters and durations.

    Use it as ``async with`` (or plain ``with``): the log stays readable after
    the block. Blocks nest; an outer block also sees what inner ones record.

    Args:
        limit: Keep only the last ``limit`` statements (the count goes on).
        transactions: Record ``BEGIN``/``COMMIT``/``ROLLBACK``/savepoints too.

    Returns:
        The :class:`QueryLog` the block fills.
    """
    return QueryLog(limit=limit, transactions=transactions)


class _ObserverLog(QueryLog):
    """The outermost log while callbacks observe queries: it hands each statement to them."""

    __slots__ = ("callbacks",)

    def __init__(self) -> None:
        super().__init__(limit=1, transactions=True)
        self.callbacks: list[Callable[[CapturedQuery], None]] = []

    def _keep(self, query: CapturedQuery) -> None:
        for callback in self.callbacks:
            callback(query)


class _Observers:
    """Where connections find the process-wide observer log (``log`` is None without one)."""

    __slots__ = ("log",)

    def __init__(self) -> None:
        self.log: QueryLog | None = None


#: Read by connections as ``current_log.get(observers.log)``: the log of the innermost
#: capture_queries() block, else the observer log, else None (nothing to record).
observers = _Observers()
_observer_log = _ObserverLog()


def observe_queries(callback: Callable[[CapturedQuery], None]) -> Callable[[], None]:
    """Call ``callback(query)`` after every statement run in this process.

    It runs in the task that ran the statement, right after it (so
    ``sys._getframe()`` shows the code that asked for it). It must be quick
    and must not raise.

    Args:
        callback: Called with each :class:`CapturedQuery`, transaction control included.

    Returns:
        A function that removes the callback again.
    """
    _observer_log.callbacks.append(callback)
    observers.log = _observer_log

    def remove() -> None:
        if callback in _observer_log.callbacks:
            _observer_log.callbacks.remove(callback)
        if not _observer_log.callbacks:
            observers.log = None

    return remove


def record(
    log: QueryLog,
    method: Callable[..., Any],
    args: Sequence[Any],
    started: float,
    failed: bool,
    database: str = "default",
) -> None:
    """Record one statement a connection ran (called by the connection while ``log`` is open).

    Args:
        log: The current log (``current_log.get()``).
        method: The connection method that ran it (``_execute``, ``_begin``...).
        args: Its arguments: the SQL and parameters, or none for transaction control.
        started: ``time.perf_counter()`` when it was sent.
        failed: Whether it raised.
        database: The alias of the database that ran it.
    """
    duration = time.perf_counter() - started
    name = getattr(method, "__name__", "")
    label = _TRANSACTION_METHODS.get(name)
    if label is not None:
        log.add(_captured(label, (), duration, False, True, failed, database))
        return
    sql = str(args[0]) if args else name
    params = args[1] if len(args) > 1 else ()
    head = sql.lstrip()[:10].upper()
    many = name == "_execute_many"
    transaction = head.startswith(_TRANSACTION_PREFIXES)
    log.add(_captured(sql, params, duration, many, transaction, failed, database))
