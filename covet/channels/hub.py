"""The per-event-loop dispatcher: one backend listener, many local subscribers.

However many subscribers a process has on a channel, it listens to the
channel once; the :class:`Hub` receives each ``(channel, id, payload)`` from
the backend, checks the id against the last one it delivered and fans a
single :class:`~covet.channels.Message` out to every local subscriber.

The ids are contiguous, so the hub notices what the connection lost: an id
that jumps, or (after the backend reconnects) a channel whose last id moved
on while nothing arrived. It then reads the channel's history, delivers
what history still holds in order, and hands every subscriber a
:class:`~covet.channels.Gap` for what it does not. Duplicates (a message
both replayed and received live) are dropped by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from covet.channels.backends.base import BrokerUnavailableError
from covet.channels.messages import Gap, Message

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from covet.channels.backends.base import ChannelBackend
    from covet.channels.subscription import Subscription

__all__ = ("Hub",)

logger = logging.getLogger("covet.channels")

#: Live messages held per channel while its history is being read; beyond this
#: the oldest are let go (they are read back from history, or signalled).
MAX_BUFFER = 10_000

#: Waits between attempts to read history while the broker is unreachable.
_RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class _ChannelState:
    """What the hub knows about one channel it listens to."""

    __slots__ = ("buffer", "last", "name", "ready", "subscribers", "syncing", "task")

    def __init__(self, name: str) -> None:
        self.name = name
        self.last = 0
        self.subscribers: dict[Subscription, None] = {}
        # Until the listen is confirmed and the last id read, live messages wait here.
        self.syncing = True
        self.buffer: dict[int, bytes] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Hub:
    """Dispatch one event loop's channel traffic to its subscribers.

    Args:
        make_backend: Builds this loop's backend, given the hub.
    """

    def __init__(self, make_backend: Callable[[Hub], ChannelBackend]) -> None:
        self.loop = asyncio.get_running_loop()
        self.states: dict[str, _ChannelState] = {}
        self.backend = make_backend(self)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- subscribers ------------------------------------------------------------------

    async def attach(self, subscription: Subscription, channel: str) -> int:
        """Add ``subscription`` to ``channel``; return the id live delivery starts after."""
        state = self.states.get(channel)
        if state is None:
            state = self.states[channel] = _ChannelState(channel)
            state.subscribers[subscription] = None
            try:
                await self.backend.listen(channel)
                state.last = await self.backend.last_id(channel)
            except BaseException:
                state.subscribers.pop(subscription, None)
                self._forget(state)
                state.ready.set()
                raise
            self._flush(state, {}, upper=state.last, replay=False)
            state.ready.set()
            return state.last
        state.subscribers[subscription] = None
        if not state.ready.is_set():
            await state.ready.wait()
            if self.states.get(channel) is not state:
                # The first subscriber's listen failed; try again as the first.
                state.subscribers.pop(subscription, None)
                return await self.attach(subscription, channel)
        # Mid-sync, live delivery resumes after the current last id as well.
        return state.last

    def detach(self, subscription: Subscription, channel: str) -> None:
        """Remove ``subscription`` from ``channel``; stop listening when none is left."""
        state = self.states.get(channel)
        if state is None:
            return
        state.subscribers.pop(subscription, None)
        if not state.subscribers and state.ready.is_set():
            self._forget(state)
            self._spawn(self._unlisten(channel))

    def _forget(self, state: _ChannelState) -> None:
        if self.states.get(state.name) is state:
            del self.states[state.name]
        if state.task is not None:
            state.task.cancel()

    async def _unlisten(self, channel: str) -> None:
        if channel in self.states:
            return  # Someone subscribed again meanwhile.
        try:
            await self.backend.unlisten(channel)
        except BrokerUnavailableError:
            pass  # The reconnect listens only to the channels still wanted.

    async def history(self, channel: str, after: int) -> list[Message]:
        """Return the kept messages of ``channel`` after id ``after``."""
        entries = await self.backend.history(channel, after)
        return [Message(channel, id_, payload) for id_, payload in entries]

    # -- backend callbacks ------------------------------------------------------------

    def on_live(self, channel: str, id_: int, payload: bytes) -> None:
        """Handle one message the backend received (never blocks)."""
        state = self.states.get(channel)
        if state is None:
            return
        if state.syncing:
            self._buffer(state, id_, payload)
            return
        if id_ <= state.last:
            return  # A duplicate, or older than this process's subscription.
        if id_ == state.last + 1:
            state.last = id_
            self._fan_out(state, Message(channel, id_, payload))
            return
        # A hole: what came in between was lost on the way (a reconnect).
        self._buffer(state, id_, payload)
        self._sync(state, upper=id_ - 1)

    def on_reconnect(self, marks: Mapping[str, int]) -> None:
        """Catch every channel up after the backend reconnected and listened again.

        Args:
            marks: Per channel, the last id read after listening took effect.
        """
        for channel, mark in marks.items():
            state = self.states.get(channel)
            if state is None or not state.ready.is_set():
                continue
            if mark < state.last:
                # The broker forgot the channel (restarted empty): ids start over.
                self._fan_out(state, Gap(channel, state.last, None, "reset"))
                logger.warning(
                    "Channel %r restarted at id %d after %d; subscribers were sent a gap.",
                    channel,
                    mark,
                    state.last,
                )
                state.last = 0
                state.buffer = {k: v for k, v in state.buffer.items() if k <= mark}
            self._sync(state, upper=mark)

    # -- catching up ------------------------------------------------------------------

    def _buffer(self, state: _ChannelState, id_: int, payload: bytes) -> None:
        buffer = state.buffer
        buffer[id_] = payload
        if len(buffer) > MAX_BUFFER:
            del buffer[min(buffer)]

    def _sync(self, state: _ChannelState, upper: int) -> None:
        state.syncing = True
        if state.task is not None and not state.task.done():
            # The running catch-up reads history again when it finishes.
            state.task.add_done_callback(lambda _: self._resync(state, upper))
            return
        state.task = self.loop.create_task(self._catch_up(state, upper))

    def _resync(self, state: _ChannelState, upper: int) -> None:
        if self.states.get(state.name) is state and upper > state.last:
            self._sync(state, upper)

    async def _catch_up(self, state: _ChannelState, upper: int) -> None:
        attempt = 0
        entries: list[tuple[int, bytes]] = []
        while True:
            try:
                entries = await self.backend.history(state.name, state.last)
                break
            except BrokerUnavailableError as exc:
                delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
                if attempt == 0:
                    logger.warning("Reading the history of %r failed: %s", state.name, exc)
                attempt += 1
                await asyncio.sleep(delay)
        self._flush(state, dict(entries), upper=upper, replay=True)

    def _flush(
        self, state: _ChannelState, found: dict[int, bytes], *, upper: int, replay: bool
    ) -> None:
        """Deliver history ``found`` and the buffer in id order, with gaps below ``upper``.

        Ids up to ``upper`` that neither holds are lost: a Gap says so. On the
        first listen (``replay=False``) ids up to ``upper`` predate the
        subscription and are not delivered.
        """
        found.update(state.buffer)
        state.buffer = {}
        expected = state.last + 1
        if not replay:
            expected = upper + 1
        for id_ in sorted(found):
            if id_ < expected:
                continue
            if id_ > expected:
                self._fan_out(state, Gap(state.name, expected - 1, id_ - expected, "unavailable"))
            self._fan_out(state, Message(state.name, id_, found[id_]))
            expected = id_ + 1
        if replay and expected <= upper:
            missed = upper - expected + 1
            self._fan_out(state, Gap(state.name, expected - 1, missed, "unavailable"))
            expected = upper + 1
        state.last = max(state.last, expected - 1)
        state.syncing = False

    def _fan_out(self, state: _ChannelState, item: Message | Gap) -> None:
        for subscription in tuple(state.subscribers):
            subscription.push(item)

    # -- housekeeping -----------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the hub's tasks and close the backend's connections."""
        for state in list(self.states.values()):
            self._forget(state)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.backend.close()
