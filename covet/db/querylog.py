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
and tracing use it); :func:`observe_query_durations` one that gets only each
statement's database, duration and outcome, for less (query metrics use it).
"""

from __future__ import annotations

import collections
import contextvars
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import TracebackType

__all__ = (
    "CapturedQuery",
    "QueryLog",
    "capture_queries",
    "is_transaction_control",
    "observe_queries",
    "observe_query_durations",
)

#: The innermost open :class:`QueryLog` of this context, or None (not recording).
current_log: contextvars.ContextVar[QueryLog | None] = contextvars.ContextVar(
    "covet_query_log", default=None
)

# What BaseConnection runs without SQL text of its own: transaction control.
_TRANSACTION_METHODS = {"_begin": "BEGIN", "_commit": "COMMIT", "_rollback": "ROLLBACK"}
_TRANSACTION_PREFIXES = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "START")
# is_transaction_control()'s answers, by statement (bounded in size and in entries).
_TRANSACTION_SQL: dict[str, bool] = {}
_TRANSACTION_SQL_LENGTH = 2_000
_TRANSACTION_SQL_SIZE = 4_096


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
    """The outermost log while anything observes queries: it hands each statement on.

    ``callbacks`` get a :class:`CapturedQuery` per statement; ``timers`` get
    ``(database, seconds, failed)`` per statement that is not transaction
    control, and the statement is built into a :class:`CapturedQuery` only
    when a callback wants one (metrics, in every scaffolded project, only time).
    """

    __slots__ = ("callbacks", "timers")

    def __init__(self) -> None:
        super().__init__(limit=1, transactions=True)
        self.callbacks: list[Callable[[CapturedQuery], None]] = []
        self.timers: list[Callable[[str, float, bool], None]] = []

    def _keep(self, query: CapturedQuery) -> None:
        # A statement recorded into a capture_queries() block reaches here through add().
        if not query.transaction:
            for timer in self.timers:
                timer(query.database, query.duration, query.failed)
        for callback in self.callbacks:
            callback(query)

    def update(self) -> None:
        """Make connections find this log while anything observes, and only then."""
        observers.log = self if self.callbacks or self.timers else None


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
    return _observe(_observer_log.callbacks, callback)


def observe_query_durations(callback: Callable[[str, float, bool], None]) -> Callable[[], None]:
    """Call ``callback(database, seconds, failed)`` after every statement run in this process.

    The cheap form of :func:`observe_queries` for code that needs only the
    timing (query metrics): no :class:`CapturedQuery` is built for it, and
    transaction control (``BEGIN``, ``COMMIT``, ``ROLLBACK``, savepoints) is
    left out. It runs in the task that ran the statement, right after it; it
    must be quick and must not raise.

    Args:
        callback: Called with the alias of the database that ran the statement,
            the seconds from sending it to its result, and whether the database
            refused it.

    Returns:
        A function that removes the callback again.
    """
    return _observe(_observer_log.timers, callback)


def _observe(callbacks: list[Any], callback: Callable[..., None]) -> Callable[[], None]:
    callbacks.append(callback)
    _observer_log.update()

    def remove() -> None:
        if callback in callbacks:
            callbacks.remove(callback)
        _observer_log.update()

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
    duration = perf_counter() - started
    name = getattr(method, "__name__", "")
    label = _TRANSACTION_METHODS.get(name)
    if label is not None:
        sql, params, many, transaction = label, (), False, True
    else:
        sql = args[0] if args else name
        if type(sql) is not str:
            sql = str(sql)
        params = args[1] if len(args) > 1 else ()
        many = name == "_execute_many"
        # is_transaction_control(), its usual case inline.
        known = _TRANSACTION_SQL.get(sql)
        transaction = is_transaction_control(sql) if known is None else known
    if log is not _observer_log:  # a capture_queries() block is open
        log.add(_captured(sql, params, duration, many, transaction, failed, database))
        return
    # Observers only (metrics, in every scaffolded project): what _ObserverLog._keep() does,
    # building the CapturedQuery only when a callback wants one.
    if not transaction:
        for timer in _observer_log.timers:
            timer(database, duration, failed)
    callbacks = _observer_log.callbacks
    if callbacks:
        query = _captured(sql, params, duration, many, transaction, failed, database)
        for callback in callbacks:
            callback(query)


def is_transaction_control(sql: str) -> bool:
    """Tell whether ``sql`` is transaction control (``BEGIN``, ``COMMIT``, savepoints...)."""
    known = _TRANSACTION_SQL.get(sql)
    if known is None:
        known = sql.lstrip()[:10].upper().startswith(_TRANSACTION_PREFIXES)
        # The ORM sends the same few statement strings again and again (their hashes are
        # cached), so a dict answers for them. Long ones are not kept, and a full dict
        # starts again, so that the statements sent now get their place back.
        if len(sql) <= _TRANSACTION_SQL_LENGTH:
            if len(_TRANSACTION_SQL) >= _TRANSACTION_SQL_SIZE:
                _TRANSACTION_SQL.clear()
            _TRANSACTION_SQL[sql] = known
    return known
