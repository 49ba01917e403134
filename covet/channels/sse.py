"""Server-sent events fed from channels, resumable with ``Last-Event-ID``.

Each message is sent as::

    id: 42
    event: message
    data: {"type":"message","channel":"news","id":42,"data":{...}}

Browsers' ``EventSource`` reconnects on its own after a dropped connection and
sends the last ``id`` back in the ``Last-Event-ID`` header; the stream then
resumes from the channel's history, and a ``gap`` event says what history no
longer holds. A comment line (``: keep-alive``) is sent after ``keepalive``
seconds without traffic, so proxies do not time the stream out. A stream
subscribed to several channels carries all their positions in its event id
(``a=4&b=17``, URL-encoded).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import TYPE_CHECKING, ClassVar

from covet.channels.messages import ChannelsError, Message, SlowConsumerError
from covet.responses.streaming import StreamingResponse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Mapping

    from covet.channels.core import Channels
    from covet.channels.subscription import OverflowPolicy

__all__ = ("DEFAULT_KEEPALIVE", "EventSourceResponse", "InvalidEventIdError")

#: Seconds without an event before a keep-alive comment is sent.
DEFAULT_KEEPALIVE = 15.0


class InvalidEventIdError(ChannelsError, ValueError):
    """The ``Last-Event-ID`` a client sent is not one this stream could have issued."""

    #: Answered as a 400 Bad Request.
    status_code: ClassVar[int] = 400


def parse_event_id(value: str | None, channels: list[str]) -> dict[str, int]:
    """Return the per-channel last ids encoded in ``value`` (a ``Last-Event-ID``).

    Raises:
        InvalidEventIdError: If ``value`` is not an id this stream issues.
    """
    if value is None or not value.strip():
        return {}
    value = value.strip()
    if len(channels) == 1:
        if value.isdigit() and len(value) < 19:
            return {channels[0]: int(value)}
    else:
        try:
            pairs = urllib.parse.parse_qsl(value, strict_parsing=True, max_num_fields=100)
        except ValueError:
            pairs = []
        if pairs and all(c in channels and i.isdigit() and len(i) < 19 for c, i in pairs):
            return {c: int(i) for c, i in pairs}
    raise InvalidEventIdError(
        f"Last-Event-ID {value[:60]!r} is not an id of this event stream. Reconnect without "
        "it to start from now."
    )


class EventSourceResponse(StreamingResponse):
    """A ``text/event-stream`` response that relays channel messages until the client leaves.

    Args:
        channels: The :class:`~covet.channels.Channels`.
        names: The channel (or channels) to relay.
        last_event_id: The client's ``Last-Event-ID``, to resume from.
        keepalive: Seconds without traffic before a ``: keep-alive`` comment.
        retry: The reconnection delay (ms) suggested to the browser; None sends none.
        headers: Extra response headers.
        max_queue: The stream's queue bound (default: the ``Channels``').
        on_overflow: ``"drop_oldest"`` (a ``gap`` event) or ``"disconnect"``
            (the stream ends; the browser reconnects and resumes).

    Raises:
        InvalidEventIdError: (a 400) for a ``Last-Event-ID`` this stream never issued.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        channels: Channels,
        names: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        keepalive: float = DEFAULT_KEEPALIVE,
        retry: int | None = 3000,
        headers: Mapping[str, str] | None = None,
        max_queue: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> None:
        self.names = [names] if isinstance(names, str) else list(names)
        if not self.names:
            raise ChannelsError("An event stream needs at least one channel name.")
        self.channels = channels
        self.last_ids = parse_event_id(last_event_id, self.names)
        self.keepalive = keepalive
        self.retry = retry
        self._queue_options = (max_queue, on_overflow)
        merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        merged.update(headers or {})
        super().__init__(self._events(), headers=merged, media_type=self.media_type)

    def _event_id(self, positions: dict[str, int]) -> str:
        if len(self.names) == 1:
            return str(positions[self.names[0]])
        return urllib.parse.urlencode(sorted(positions.items()))

    async def _events(self) -> AsyncIterator[str]:
        if self.retry is not None:
            yield f"retry: {int(self.retry)}\n\n"
        positions = dict(self.last_ids)
        max_queue, on_overflow = self._queue_options
        subscription = self.channels.subscribe(
            self.names, last_ids=self.last_ids, max_queue=max_queue, on_overflow=on_overflow
        )
        async with subscription:
            while True:
                try:
                    item = await asyncio.wait_for(subscription.get(), self.keepalive)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                except SlowConsumerError:
                    return  # The browser reconnects with Last-Event-ID and resumes.
                if isinstance(item, Message):
                    positions[item.channel] = item.id
                    yield f"id: {self._event_id(positions)}\nevent: message\ndata: {item.text}\n\n"
                else:
                    yield f"event: gap\ndata: {item.text}\n\n"
