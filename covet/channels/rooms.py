"""Websocket rooms: join, leave, forward, presence and per-user channels.

:meth:`Channels.socket() <covet.channels.Channels.socket>` ties a
:class:`~covet.WebSocket` to a subscription: every room the socket joins is
forwarded to it as JSON text (``{"type": "message", "channel": ..., "id":
..., "data": ...}``, or ``{"type": "gap", ...}`` when something was lost),
and a logged-in user's socket also receives its personal channel
(``user:<pk>``), so ``channels.notify_user(user, data)`` reaches every tab
the user has open, on any worker.

A broadcast is just a publish: ``await channels.publish("room:lobby", data)``
works from a request handler, a background job or the shell.

Presence: a joined room records the socket in the broker with an expiry
(``Channels(presence_ttl=30)``). Each process refreshes its own records
every third of that time, so when a worker dies, its sockets disappear from
``await channels.presence(room)`` within ``presence_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from typing import TYPE_CHECKING, Any

from covet import _json
from covet.channels.backends.base import BrokerUnavailableError
from covet.channels.messages import ChannelsError, SlowConsumerError
from covet.exceptions import WebSocketDisconnect, WebSocketException

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from covet.channels.backends.base import ChannelBackend
    from covet.channels.core import Channels
    from covet.channels.subscription import OverflowPolicy, Subscription
    from covet.websockets import WebSocket

__all__ = ("ChannelSocket", "Member", "PresenceKeeper", "user_key")

logger = logging.getLogger("covet.channels")

#: RFC 6455 close code 1008 (policy violation): a socket that must be logged in is not.
CLOSE_LOGIN_REQUIRED = 1008


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """One socket present in a room.

    Attributes:
        id: The socket's presence id (random, one per :class:`ChannelSocket`).
        info: What the socket published about itself (``{"user_id": 3}``, a name, ...).
    """

    id: str
    info: dict[str, Any]


def user_key(user: object) -> str:
    """Return the personal channel of ``user`` (a user object or a primary key)."""
    pk = getattr(user, "pk", user)
    if pk is None or isinstance(pk, bool | float) or not isinstance(pk, int | str):
        raise ChannelsError(
            f"Cannot make a user channel from {user!r}: pass a saved user or its primary key."
        )
    return f"user:{pk}"


class PresenceKeeper:
    """Keep one event loop's presence records alive in the broker.

    Args:
        backend: The loop's backend.
        ttl: Seconds a record lives without a refresh.
    """

    def __init__(self, backend: ChannelBackend, ttl: float) -> None:
        self.backend = backend
        self.ttl = ttl
        self.records: dict[tuple[str, str], bytes] = {}
        self._task: asyncio.Task[None] | None = None

    async def add(self, room: str, member: str, info: bytes) -> None:
        """Record ``member`` in ``room`` now, and keep refreshing it."""
        self.records[room, member] = info
        await self.backend.presence_set(room, member, info, self.ttl)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def remove(self, room: str, member: str) -> None:
        """Stop refreshing ``member`` and remove it from ``room``."""
        if self.records.pop((room, member), None) is None:
            return
        try:
            await self.backend.presence_remove(room, member)
        except BrokerUnavailableError as exc:
            # It expires on its own within ttl seconds.
            logger.warning("Could not remove %r from room %r: %s", member, room, exc)

    async def _refresh(self) -> None:
        while self.records:
            await asyncio.sleep(self.ttl / 3)
            for (room, member), info in list(self.records.items()):
                try:
                    await self.backend.presence_set(room, member, info, self.ttl)
                except BrokerUnavailableError as exc:
                    logger.warning("Presence refresh of room %r failed: %s", room, exc)
                    break

    async def close(self) -> None:
        """Remove every record this keeper holds and stop refreshing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for room, member in list(self.records):
            await self.remove(room, member)


class ChannelSocket:
    """A websocket joined to channels; use it with ``async with``.

    Create it with :meth:`Channels.socket() <covet.channels.Channels.socket>`.

    Args:
        channels: The :class:`~covet.channels.Channels`.
        websocket: An accepted websocket.
        user_channel: Also subscribe a logged-in user's socket to ``user:<pk>``.
        login_required: Close the socket with 1008 unless ``websocket.user`` is
            logged in (needs ``AuthenticationMiddleware``).
        presence: What :meth:`Channels.presence` shows about this socket; by
            default ``{"user_id": pk}`` for a logged-in user, else ``{}``.
        max_queue: The socket's queue bound (default: the ``Channels``').
        on_overflow: ``"drop_oldest"`` (clients get a gap message) or
            ``"disconnect"`` (the socket is closed with 1013).
    """

    def __init__(
        self,
        channels: Channels,
        websocket: WebSocket,
        *,
        user_channel: bool = True,
        login_required: bool = False,
        presence: Mapping[str, Any] | None = None,
        max_queue: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> None:
        self.channels = channels
        self.websocket = websocket
        self.id = secrets.token_hex(8)
        self.user = websocket.scope.get("user")
        self.authenticated = bool(getattr(self.user, "is_authenticated", False))
        self.login_required = login_required
        self.user_channel = user_key(self.user) if self.authenticated and user_channel else None
        if presence is None:
            presence = {"user_id": getattr(self.user, "pk", None)} if self.authenticated else {}
        self.presence_info = _json.dumps(dict(presence))
        self.subscription: Subscription = channels.subscribe(
            (), max_queue=max_queue, on_overflow=on_overflow
        )
        self._rooms: set[str] = set()
        self._forwarder: asyncio.Task[None] | None = None

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this socket has joined."""
        return frozenset(self._rooms)

    async def __aenter__(self) -> ChannelSocket:
        if self.login_required and not self.authenticated:
            raise WebSocketException(CLOSE_LOGIN_REQUIRED, "Log in to use this channel.")
        await self.subscription.start()
        if self.user_channel is not None:
            await self.subscription.subscribe(self.user_channel)
        self._forwarder = asyncio.get_running_loop().create_task(self._forward())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def join(self, room: str, *, last_id: int | None = None, presence: bool = True) -> None:
        """Forward ``room`` to the socket and record the socket's presence there.

        Args:
            room: The room's channel name.
            last_id: The last id of ``room`` the client saw: later messages are
                replayed (or a gap message says what cannot be).
            presence: Record this socket in :meth:`Channels.presence` for ``room``.
        """
        await self.subscription.subscribe(
            room, last_ids=None if last_id is None else {room: last_id}
        )
        self._rooms.add(room)
        if presence:
            await self.channels.presence_keeper().add(room, self.id, self.presence_info)

    async def leave(self, room: str) -> None:
        """Stop forwarding ``room`` and remove the socket's presence there."""
        self._rooms.discard(room)
        await self.subscription.unsubscribe(room)
        await self.channels.presence_keeper().remove(room, self.id)

    async def close(self) -> None:
        """Leave every room and stop forwarding; the websocket itself stays as it is."""
        for room in list(self._rooms):
            with contextlib.suppress(BrokerUnavailableError):
                await self.leave(room)
        await self.subscription.close()
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._forwarder

    async def _forward(self) -> None:
        websocket = self.websocket
        try:
            async for item in self.subscription:
                await websocket.send_text(item.text)
        except SlowConsumerError as exc:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.close(exc.close_code, "Too slow: reconnect and resume.")
        except (WebSocketDisconnect, RuntimeError):
            # The client left (or the handler closed the socket): nothing to forward to.
            await self.subscription.close()
