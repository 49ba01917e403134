"""A first-come-first-served counting semaphore whose uncontended acquire is one decrement.

The connection pool (``max_size`` slots) and the per-connection statement lock
(one slot) both take one on the path of every statement.
``asyncio.Semaphore`` and ``asyncio.Lock`` (3.11) build generators in
``locked()``/``acquire()`` to skip cancelled waiters, which cost as much as the
rest of a checkout; this does the same job with a counter and a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ("FifoSlots",)


class FifoSlots:
    """``count`` slots handed out first come, first served.

    A release hands its slot straight to the first live waiter instead of
    incrementing :attr:`free`, so waiters only ever queue while ``free == 0``:
    ``free > 0`` therefore proves the queue is empty, and a caller may take a
    slot inline with ``free -= 1`` without jumping it. Otherwise it awaits
    :meth:`wait` (under whatever timeout it arms), which returns holding a slot.
    """

    __slots__ = ("free", "waiters")

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiters: deque[asyncio.Future[bool]] = deque()

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - see below
        """Queue until a release hands this task a slot, or ``timeout`` seconds pass.

        Returns:
            True holding a slot; False when the time ran out first (no slot taken).
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiters.append(waiter)
        # One timer on the waiter itself: asyncio.timeout() around the await costs three
        # times as much (its context manager, task bookkeeping and state checks), and a
        # pool that runs dry pays it on every statement.
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                # Handed a slot, then cancelled before running: pass it on, or the slot
                # would leak.
                self.release()
            else:
                with contextlib.suppress(ValueError):  # release() may have dropped it already
                    self.waiters.remove(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not handed:
            with contextlib.suppress(ValueError):  # timed out: leave the queue
                self.waiters.remove(waiter)
        return handed

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the free count."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        self.free += 1


def _expire(waiter: asyncio.Future[bool]) -> None:
    """End a wait that ran out of time, unless a release handed it a slot first."""
    if not waiter.done():
        waiter.set_result(False)
