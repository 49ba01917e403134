"""Test helpers for projects using the ORM.

* :func:`assert_num_queries` counts the SQL statements the ORM sends inside
  a block (the count includes every ORM statement: SELECT, INSERT, UPDATE,
  DELETE and DDL, not BEGIN/COMMIT/SAVEPOINT).
* :func:`rollback_after` wraps a block (a test) in a transaction that is
  always rolled back, so each test starts from the same data. Use it in an
  ``autouse`` fixture::

      @pytest.fixture(autouse=True)
      async def isolated(database):
          async with rollback_after(database.alias):
              yield
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from covet.db.execution import query_log

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("QueryCounter", "assert_num_queries", "capture_queries", "rollback_after")


class QueryCounter:
    """The statements captured by :func:`capture_queries`."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def count(self) -> int:
        """Return the number of statements captured."""
        return len(self.queries)


@contextlib.asynccontextmanager
async def capture_queries() -> AsyncIterator[QueryCounter]:
    """Capture the SQL the ORM sends in the block (nested captures each see everything)."""
    counter = QueryCounter()
    parent = query_log.get()
    log: list[str] = []
    token = query_log.set(log)
    try:
        yield counter
    finally:
        query_log.reset(token)
        counter.queries.extend(log)
        if parent is not None:
            parent.extend(log)


@contextlib.asynccontextmanager
async def assert_num_queries(n: int, using: str | None = None) -> AsyncIterator[QueryCounter]:
    """Fail with the list of statements unless the block sends exactly ``n`` statements.

    Args:
        n: The expected number of SQL statements.
        using: Accepted for symmetry with the ORM API; statements to every database count.

    Raises:
        AssertionError: A different number of statements ran.
    """
    async with capture_queries() as counter:
        yield counter
    if counter.count != n:
        listing = "\n".join(f"  {i}. {sql}" for i, sql in enumerate(counter.queries, 1))
        raise AssertionError(
            f"Expected {n} queries, but {counter.count} ran:\n{listing or '  (none)'}"
        )


class _RollbackRequestedError(Exception):
    """Raised to roll the test transaction back."""


@contextlib.asynccontextmanager
async def rollback_after(using: str | None = None) -> AsyncIterator[None]:
    """Run the block in a transaction that is rolled back at the end, whatever happens."""
    from covet.db.transactions import transaction

    with contextlib.suppress(_RollbackRequestedError):
        async with transaction(using) as tx:
            state = tx._state
            if state is not None:
                # A fixture opens this block in its own task and the test runs in
                # another: let the test's task (one at a time) nest savepoints in it.
                state.owner = None
                state.adoptable = True
            yield
            raise _RollbackRequestedError
