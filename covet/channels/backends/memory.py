"""``memory://``: channels inside one process, shared by all of its event loops.

The embedded default, for development, tests and single-process deployments.
Nothing crosses a process boundary: with several workers, use Redis or
PostgreSQL. A message published on one event loop (a thread running the
shell, a test) reaches subscribers on every other loop of the process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from covet.channels.backends.base import ChannelBackend

if TYPE_CHECKING:
    from covet.channels.hub import Hub

__all__ = ("MemoryBackend", "MemoryBroker")


class MemoryBroker:
    """The state of one ``Channels("memory://")``: ids, history, presence, listeners."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, int] = {}
        self.kept: dict[str, deque[tuple[int, bytes]]] = {}
        self.listeners: dict[str, dict[Hub, None]] = {}
        self.presence: dict[str, dict[str, tuple[bytes, float]]] = {}

    def publish(self, channel: str, payload: bytes, history: int) -> int:
        """Give ``payload`` the channel's next id, keep it, and hand it to every listening loop."""
        with self.lock:
            id_ = self.last.get(channel, 0) + 1
            self.last[channel] = id_
            if history > 0:
                kept = self.kept.get(channel)
                if kept is None or kept.maxlen != history:
                    kept = self.kept[channel] = deque(kept or (), maxlen=history)
                kept.append((id_, payload))
            else:
                self.kept.pop(channel, None)
            hubs = list(self.listeners.get(channel, ()))
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for hub in hubs:
            if hub.loop is running:
                hub.on_live(channel, id_, payload)
            elif not hub.loop.is_closed():
                hub.loop.call_soon_threadsafe(hub.on_live, channel, id_, payload)
        return id_


class MemoryBackend(ChannelBackend):
    """The in-process backend of one event loop."""

    def __init__(self, url: str, *, prefix: str, hub: Hub, shared: object) -> None:
        super().__init__(url, prefix=prefix, hub=hub, shared=shared)
        assert isinstance(shared, MemoryBroker)  # noqa: S101 - built by create_shared
        self.broker = shared

    @classmethod
    def create_shared(cls, url: str, prefix: str) -> object:
        """Return the process-wide broker of one ``Channels``."""
        return MemoryBroker()

    async def publish(self, channel: str, payload: bytes, history: int) -> int:
        """Append and deliver to every listening loop."""
        return self.broker.publish(channel, payload, history)

    async def listen(self, channel: str) -> None:
        """Register this loop's hub for ``channel``."""
        with self.broker.lock:
            self.broker.listeners.setdefault(channel, {})[self.hub] = None

    async def unlisten(self, channel: str) -> None:
        """Unregister this loop's hub from ``channel``."""
        with self.broker.lock:
            hubs = self.broker.listeners.get(channel)
            if hubs is not None:
                hubs.pop(self.hub, None)
                if not hubs:
                    del self.broker.listeners[channel]

    async def history(self, channel: str, after: int) -> list[tuple[int, bytes]]:
        """Return kept messages after ``after``."""
        with self.broker.lock:
            return [entry for entry in self.broker.kept.get(channel, ()) if entry[0] > after]

    async def last_id(self, channel: str) -> int:
        """Return the channel's last id."""
        with self.broker.lock:
            return self.broker.last.get(channel, 0)

    async def delete(self, channel: str) -> None:
        """Forget the channel's counter and history."""
        with self.broker.lock:
            self.broker.last.pop(channel, None)
            self.broker.kept.pop(channel, None)

    async def presence_set(self, room: str, member: str, info: bytes, ttl: float) -> None:
        """Record ``member`` until ``ttl`` seconds from now."""
        with self.broker.lock:
            self.broker.presence.setdefault(room, {})[member] = (info, time.monotonic() + ttl)

    async def presence_remove(self, room: str, member: str) -> None:
        """Forget ``member``."""
        with self.broker.lock:
            members = self.broker.presence.get(room)
            if members is not None:
                members.pop(member, None)
                if not members:
                    del self.broker.presence[room]

    async def presence_list(self, room: str) -> list[tuple[str, bytes]]:
        """Return unexpired members, dropping expired ones."""
        now = time.monotonic()
        with self.broker.lock:
            members = self.broker.presence.get(room, {})
            for member in [m for m, (_, expires) in members.items() if expires <= now]:
                del members[member]
            return [(member, info) for member, (info, _) in members.items()]

    async def close(self) -> None:
        """Unregister this loop's hub from every channel."""
        with self.broker.lock:
            for channel, hubs in list(self.broker.listeners.items()):
                hubs.pop(self.hub, None)
                if not hubs:
                    del self.broker.listeners[channel]
