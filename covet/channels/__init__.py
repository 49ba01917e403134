"""Channels: publish/subscribe across workers and hosts, for websockets and server-sent events.

::

    from covet.channels import Channels

    channels = Channels("redis://127.0.0.1:6379/0")   # or "memory://", "postgresql://..."
    await channels.publish("room:lobby", {"text": "hi"})

    async with channels.subscribe(["room:lobby"]) as subscription:
        async for item in subscription:       # Message, or Gap when something was lost
            ...

See ``docs/channels.md``.
"""

from __future__ import annotations

from covet.channels.backends.base import BrokerUnavailableError
from covet.channels.core import Channels
from covet.channels.messages import ChannelsError, Gap, GapReason, Message, SlowConsumerError
from covet.channels.rooms import ChannelSocket, Member
from covet.channels.sse import EventSourceResponse, InvalidEventIdError
from covet.channels.subscription import OverflowPolicy, Subscription

__all__ = (
    "BrokerUnavailableError",
    "ChannelSocket",
    "Channels",
    "ChannelsError",
    "EventSourceResponse",
    "Gap",
    "GapReason",
    "InvalidEventIdError",
    "Member",
    "Message",
    "OverflowPolicy",
    "SlowConsumerError",
    "Subscription",
)
