"""Test helpers for projects using the ORM.

* :func:`assert_num_queries` counts the SQL statements sent inside a block
  (every statement: ORM queries, raw SQL and DDL, not BEGIN/COMMIT/SAVEPOINT);
  :func:`capture_queries` (also :func:`covet.db.capture_queries`) records them.
* :func:`rollback_after` wraps a block (a test) in a transaction that is
  always rolled back, so each test starts from the same data. Use it in an
  ``autouse`` fixture::

      @pytest.fixture(autouse=True)
      async def isolated(database):
          async with rollback_after(database.alias):
              yield

* :func:`isolated_models` keeps the models defined inside it out of the
  registry, so ``create_all()`` without a model list does not see them.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from covet.db.models import isolated_models
from covet.db.querylog import QueryLog, capture_queries

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = (
    "QueryCounter",
    "assert_num_queries",
    "capture_queries",
    "isolated_models",
    "rollback_after",
)


#: The former name of :class:`~covet.db.querylog.QueryLog`, kept for existing code.
QueryCounter = QueryLog


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
