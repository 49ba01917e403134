"""What a channels backend provides, and the connection errors it raises.

A backend moves bytes; the ordering, gap detection, replay and fan-out logic
lives once in :class:`covet.channels.hub.Hub`. One backend object serves one
event loop. It must:

- give each published message the next id of its channel (1, 2, 3, ... with
  no holes) atomically, keep the last ``history`` messages of the channel, and
  deliver ``(channel, id, payload)`` to every listening process in id order;
- call ``hub.on_live(channel, id, payload)`` for each delivered message, and
  after a lost connection is re-established and every channel re-listened,
  ``hub.on_reconnect(marks)`` with each channel's last id read *after* the
  listen took effect (anything newer arrives live; anything older that did not
  arrive is replayed from history or signalled as a gap);
- keep presence records that expire unless refreshed.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from covet.channels.messages import ChannelsError

if TYPE_CHECKING:
    from covet.channels.hub import Hub

__all__ = ("BrokerUnavailableError", "ChannelBackend")


class BrokerUnavailableError(ChannelsError, ConnectionError):
    """The broker (Redis, PostgreSQL) cannot be reached right now; retry later."""


class ChannelBackend(abc.ABC):
    """The transport under :class:`~covet.channels.Channels` for one event loop.

    Args:
        url: The ``Channels`` URL.
        prefix: Prepended to every key, table or notification name.
        hub: The loop's dispatcher, to call back with live messages.
        shared: The object :meth:`create_shared` returned for this ``Channels``.
    """

    def __init__(self, url: str, *, prefix: str, hub: Hub, shared: object) -> None:
        self.url = url
        self.prefix = prefix
        self.hub = hub

    @classmethod
    def create_shared(cls, url: str, prefix: str) -> object:
        """Return state shared by the backends of every loop of one ``Channels``."""
        return None

    @abc.abstractmethod
    async def publish(self, channel: str, payload: bytes, history: int) -> int:
        """Append ``payload`` to ``channel`` keeping ``history`` messages; return its id."""

    @abc.abstractmethod
    async def listen(self, channel: str) -> None:
        """Start delivering ``channel``'s messages to the hub."""

    @abc.abstractmethod
    async def unlisten(self, channel: str) -> None:
        """Stop delivering ``channel``'s messages."""

    @abc.abstractmethod
    async def history(self, channel: str, after: int) -> list[tuple[int, bytes]]:
        """Return the kept messages of ``channel`` with an id above ``after``, oldest first."""

    @abc.abstractmethod
    async def last_id(self, channel: str) -> int:
        """Return the id of the last message published on ``channel`` (0 if none)."""

    @abc.abstractmethod
    async def delete(self, channel: str) -> None:
        """Forget ``channel``'s history and id counter (its next message gets id 1)."""

    @abc.abstractmethod
    async def presence_set(self, room: str, member: str, info: bytes, ttl: float) -> None:
        """Record (or refresh) ``member`` in ``room`` for ``ttl`` seconds."""

    @abc.abstractmethod
    async def presence_remove(self, room: str, member: str) -> None:
        """Remove ``member`` from ``room``."""

    @abc.abstractmethod
    async def presence_list(self, room: str) -> list[tuple[str, bytes]]:
        """Return the unexpired ``(member, info)`` records of ``room``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close this loop's connections; later calls may open them again."""
