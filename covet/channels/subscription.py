"""A subscriber's bounded queue, and what happens when the subscriber is too slow.

A publisher never waits for subscribers: delivering a message to a
:class:`Subscription` appends it to the subscription's queue and returns. The
queue holds at most ``max_queue`` items; when a slow consumer lets it fill up,
the subscription's ``on_overflow`` policy decides:

- ``"drop_oldest"`` (the default): the oldest queued message is dropped, and
  before the next item the consumer receives a :class:`~covet.channels.Gap`
  (reason ``"overflow"``) saying how many messages of which channel were
  dropped and after which id, so it can fetch them from history or reload.
- ``"disconnect"``: the subscription ends; iterating raises
  :class:`~covet.channels.SlowConsumerError` and the websocket helpers close
  the socket with code 1013 ("try again later"). The client reconnects and
  resumes from its last id.

Either way memory stays bounded by ``max_queue`` items per subscriber, and no
message is dropped without a signal.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Literal

from covet.channels.messages import (
    ChannelsError,
    Gap,
    Message,
    SlowConsumerError,
    check_channel_name,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Mapping
    from types import TracebackType

    from covet.channels.hub import Hub

__all__ = ("DEFAULT_MAX_QUEUE", "OverflowPolicy", "Subscription")

#: What a full subscriber queue does; see the module documentation.
OverflowPolicy = Literal["drop_oldest", "disconnect"]

#: Items a subscriber may have waiting before its overflow policy applies.
DEFAULT_MAX_QUEUE = 256

_POLICIES = ("drop_oldest", "disconnect")

Item = Message | Gap


class Subscription:
    """Messages of one or more channels, delivered in order per channel.

    Create it with :meth:`Channels.subscribe() <covet.channels.Channels.subscribe>`
    and use it as an async context manager; iterate it for :class:`Message`
    and :class:`Gap` items::

        async with channels.subscribe(["room:lobby"]) as subscription:
            async for item in subscription:
                if isinstance(item, Message):
                    print(item.id, item.data)

    Args:
        hub: The event loop's dispatcher (internal).
        channels: The channels to listen to.
        last_ids: For a resuming client: per channel, the last id it received;
            what was published after it is replayed from history first (or
            signalled as a :class:`Gap` if history no longer has it).
        max_queue: The most items waiting to be read.
        on_overflow: ``"drop_oldest"`` or ``"disconnect"``.
    """

    __slots__ = (
        "__weakref__",
        "_catching",
        "_channels",
        "_error",
        "_floor",
        "_hub",
        "_initial",
        "_overflow",
        "_queue",
        "_started",
        "_waiter",
        "closed",
        "max_queue",
        "on_overflow",
    )

    def __init__(
        self,
        hub: Hub,
        channels: Iterable[str],
        *,
        last_ids: Mapping[str, int] | None,
        max_queue: int,
        on_overflow: OverflowPolicy,
    ) -> None:
        bound: object = max_queue
        if not isinstance(bound, int) or isinstance(bound, bool) or bound < 1:
            raise ChannelsError(f"max_queue must be a positive integer, got {max_queue!r}.")
        if on_overflow not in _POLICIES:
            raise ChannelsError(
                f"Unknown overflow policy {on_overflow!r}. Use 'drop_oldest' or 'disconnect'."
            )
        names = [check_channel_name(name) for name in channels]
        self._hub = hub
        self._initial = (names, dict(last_ids or {}))
        self.max_queue = max_queue
        self.on_overflow: OverflowPolicy = on_overflow
        self._channels: set[str] = set()
        self._queue: deque[Item] = deque()
        self._overflow: dict[str, list[int]] = {}
        self._catching: dict[str, list[Item]] = {}
        self._floor: dict[str, int] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._error: SlowConsumerError | None = None
        self._started = False
        self.closed = False

    @property
    def channels(self) -> frozenset[str]:
        """The channels this subscription currently listens to."""
        return frozenset(self._channels)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening to the channels given at creation (``async with`` calls this)."""
        if self._started:
            return
        self._started = True
        names, last_ids = self._initial
        await self.subscribe(*names, last_ids=last_ids)

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening to every channel and end iteration; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        channels, self._channels = self._channels, set()
        for channel in channels:
            self._hub.detach(self, channel)
        self._wake()

    # -- channels ---------------------------------------------------------------------

    async def subscribe(self, *channels: str, last_ids: Mapping[str, int] | None = None) -> None:
        """Start listening to more ``channels``, resuming after ``last_ids`` where given.

        Raises:
            ChannelsError: If the subscription is closed or a name is invalid.
        """
        if self.closed:
            raise ChannelsError("This subscription is closed. Create a new one to subscribe.")
        self._started = True
        for channel in map(check_channel_name, channels):
            if channel in self._channels:
                continue
            self._channels.add(channel)
            resume = (last_ids or {}).get(channel)
            self._catching[channel] = []
            try:
                baseline = await self._hub.attach(self, channel)
                if resume is not None:
                    await self._catch_up(channel, resume, baseline)
            except BaseException:
                self._channels.discard(channel)
                self._hub.detach(self, channel)
                raise
            finally:
                pending = self._catching.pop(channel, [])
            for item in pending:
                self.push(item)

    async def unsubscribe(self, *channels: str) -> None:
        """Stop listening to ``channels``; items of theirs already queued are still read."""
        for channel in channels:
            if channel in self._channels:
                self._channels.discard(channel)
                self._hub.detach(self, channel)

    async def _catch_up(self, channel: str, after: int, baseline: int) -> None:
        """Queue what was published on ``channel`` in ``(after, baseline]``, or a Gap."""
        if after > baseline:
            # The client saw ids this broker never issued: its state was reset.
            self._enqueue(Gap(channel, after, None, "reset"))
            return
        if after == baseline:
            return
        found = [m for m in await self._hub.history(channel, after) if m.id <= baseline]
        expected = after + 1
        for message in found:
            if message.id > expected:
                self._enqueue(Gap(channel, expected - 1, message.id - expected, "unavailable"))
            self._enqueue(message)
            expected = message.id + 1
        if expected <= baseline:
            self._enqueue(Gap(channel, expected - 1, baseline - expected + 1, "unavailable"))
        self._floor[channel] = baseline

    # -- delivery (called by the hub, never blocks) -------------------------------------

    def push(self, item: Item) -> None:
        """Queue ``item`` for the consumer, applying the overflow policy; never blocks."""
        channel = item.channel
        if self.closed or channel not in self._channels:
            return
        pending = self._catching.get(channel)
        if pending is not None:
            pending.append(item)
            return
        floor = self._floor.get(channel)
        if floor is not None and isinstance(item, Message):
            if item.id <= floor:
                return  # Already replayed from history.
            del self._floor[channel]
        self._enqueue(item)

    def _enqueue(self, item: Item) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue:
            if self.on_overflow == "disconnect":
                self._fail(item)
                return
            self._drop(queue.popleft())
        queue.append(item)
        self._wake()

    def _drop(self, item: Item) -> None:
        record = self._overflow.get(item.channel)
        if isinstance(item, Message):
            after, missed = item.id - 1, 1
        else:
            after, missed = item.after, (item.missed if item.missed is not None else -1)
        if record is None:
            self._overflow[item.channel] = [after, missed]
            return
        record[0] = min(record[0], after)
        # -1 marks "unknown" (a dropped reset Gap): the count can no longer be told.
        record[1] = -1 if -1 in (record[1], missed) else record[1] + missed

    def _fail(self, item: Item) -> None:
        self._error = SlowConsumerError(
            f"The subscriber of {item.channel!r} fell {self.max_queue} messages behind and was "
            "disconnected (on_overflow='disconnect'). Resume from its last id, or raise "
            "max_queue."
        )
        self._queue.clear()
        self._overflow.clear()
        channels, self._channels = self._channels, set()
        for channel in channels:
            self._hub.detach(self, channel)
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- consumption ------------------------------------------------------------------

    def get_nowait(self) -> Item | None:
        """Return the next item if one is waiting, else None.

        Raises:
            SlowConsumerError: If the subscription was disconnected for being too slow.
        """
        if self._overflow:
            channel, (after, missed) = next(iter(self._overflow.items()))
            del self._overflow[channel]
            return Gap(channel, after, None if missed < 0 else missed, "overflow")
        if self._queue:
            return self._queue.popleft()
        if self._error is not None:
            raise self._error
        return None

    async def get(self) -> Item:
        """Wait for and return the next item.

        Raises:
            SlowConsumerError: If the subscription was disconnected for being too slow.
            ChannelsError: If the subscription is closed and nothing is left to read.
        """
        if not self._started:
            await self.start()
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self.closed:
                raise ChannelsError("The subscription is closed; nothing more will arrive.")
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Item]:
        while True:
            try:
                item = await self.get()
            except SlowConsumerError:
                raise
            except ChannelsError:
                if self.closed:
                    return
                raise
            yield item

    def __len__(self) -> int:
        return len(self._queue) + len(self._overflow)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Subscription {sorted(self._channels)!r} {state}, {len(self._queue)} queued>"
