"""The :class:`Channels` object: publish, subscribe, history, by URL."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from covet import _json
from covet.channels.backends import backend_class
from covet.channels.hub import Hub
from covet.channels.messages import ChannelsError, Message, check_channel_name
from covet.channels.messages import history_size as _history_size
from covet.channels.rooms import ChannelSocket, Member, PresenceKeeper, user_key
from covet.channels.sse import DEFAULT_KEEPALIVE, EventSourceResponse, InvalidEventIdError
from covet.channels.subscription import DEFAULT_MAX_QUEUE, OverflowPolicy, Subscription
from covet.exceptions import HTTPException

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from covet.channels.backends.base import ChannelBackend
    from covet.requests import Request
    from covet.websockets import WebSocket

__all__ = ("DEFAULT_HISTORY", "DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_PRESENCE_TTL", "Channels")

#: Messages kept per channel by default, for resuming clients.
DEFAULT_HISTORY = 100
#: The largest encoded message accepted by publish(), in bytes (like a websocket's 1 MiB).
DEFAULT_MAX_MESSAGE_SIZE = 1_048_576
#: Seconds a presence record lives without a refresh (a dead worker's members vanish then).
DEFAULT_PRESENCE_TTL = 30.0

_DEFAULT_PREFIX = {
    "covet.channels.backends.postgres": "covet_channels",
}


class Channels:
    """Publish messages to named channels and subscribe to them, in and across processes.

    The URL picks the backend: ``"memory://"`` (one process, the default),
    ``"redis://host:6379/0"`` (pub/sub, with streams for history) or
    ``"postgresql://user@host/db"`` (LISTEN/NOTIFY, with a table for history
    and for messages too large for a notification). Connections open on first
    use, one set per event loop; close them with :meth:`close` (for example in
    ``app.on_shutdown``).

    Every message of a channel gets the next id (1, 2, 3, ...). The last
    ``history`` messages are kept, so a client that reconnects can resume
    from the last id it saw; what history no longer holds is signalled with a
    :class:`~covet.channels.Gap`, never dropped silently.

    Args:
        url: The backend URL.
        history: Messages kept per channel (0 keeps none), or a mapping of
            :mod:`fnmatch` patterns to sizes (first match wins, others keep none).
        prefix: Prepended to every Redis key or PostgreSQL table name, so
            several applications can share one server.
        max_queue: The default bound of each subscriber's queue.
        on_overflow: The default policy when a queue is full: ``"drop_oldest"``
            (with a Gap) or ``"disconnect"`` (close code 1013).
        presence_ttl: Seconds a websocket's presence in a room outlives the
            last refresh from its worker.
        max_message_size: The largest encoded message publish() accepts.

    Raises:
        ImproperlyConfigured: For an unsupported URL scheme.
        MissingDependencyError: If the backend's driver (``redis``, ``asyncpg``)
            is not installed.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        history: int | Mapping[str, int] = DEFAULT_HISTORY,
        prefix: str | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        on_overflow: OverflowPolicy = "drop_oldest",
        presence_ttl: float = DEFAULT_PRESENCE_TTL,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        sizes: list[object] = [history] if isinstance(history, int) else list(history.values())
        if any(not isinstance(size, int) or size < 0 for size in sizes):
            raise ChannelsError(
                f"history must be a non-negative integer (or a mapping to them), got {history!r}."
            )
        if on_overflow not in ("drop_oldest", "disconnect"):
            raise ChannelsError(
                f"Unknown overflow policy {on_overflow!r}. Use 'drop_oldest' or 'disconnect'."
            )
        bound: object = max_queue
        if not isinstance(bound, int) or isinstance(bound, bool) or bound < 1:
            raise ChannelsError(f"max_queue must be a positive integer, got {max_queue!r}.")
        if not presence_ttl > 0:
            raise ChannelsError(f"presence_ttl must be positive seconds, got {presence_ttl!r}.")
        self.url = url
        self._backend_class = backend_class(url)
        if prefix is None:
            prefix = _DEFAULT_PREFIX.get(self._backend_class.__module__, "covet:channels:")
        self.prefix = prefix
        self.history_sizes = history
        self.max_queue = max_queue
        self.on_overflow: OverflowPolicy = on_overflow
        self.presence_ttl = float(presence_ttl)
        self.max_message_size = max_message_size
        self._shared = self._backend_class.create_shared(url, prefix)
        self._hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
            weakref.WeakKeyDictionary()
        )
        self._keepers: weakref.WeakKeyDictionary[Hub, PresenceKeeper] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"Channels({_masked(self.url)!r})"

    # -- the loop's dispatcher ----------------------------------------------------------

    def hub(self) -> Hub:
        """Return the running event loop's dispatcher, creating it on first use."""
        loop = asyncio.get_running_loop()
        hub = self._hubs.get(loop)
        if hub is None:
            hub = self._hubs[loop] = Hub(self._make_backend)
        return hub

    def _make_backend(self, hub: Hub) -> ChannelBackend:
        return self._backend_class(self.url, prefix=self.prefix, hub=hub, shared=self._shared)

    async def close(self) -> None:
        """Close the running loop's connections and end its subscriptions' listening."""
        hub = self._hubs.pop(asyncio.get_running_loop(), None)
        if hub is None:
            return
        keeper = self._keepers.pop(hub, None)
        if keeper is not None:
            await keeper.close()
        await hub.close()

    # -- publishing ---------------------------------------------------------------------

    def history_size(self, channel: str) -> int:
        """Return how many messages of ``channel`` are kept."""
        return _history_size(self.history_sizes, channel)

    def encode(self, data: Any) -> bytes:
        """Encode ``data`` as covet's JSON, checking the size limit.

        Raises:
            TypeError: If ``data`` holds a value with no JSON form.
            ChannelsError: If the encoding is larger than ``max_message_size``.
        """
        payload = _json.dumps(data)
        if len(payload) > self.max_message_size:
            raise ChannelsError(
                f"The message is {len(payload)} bytes, above max_message_size="
                f"{self.max_message_size}. Send a reference (an id) instead, or raise the limit."
            )
        return payload

    async def publish(self, channel: str, data: Any) -> int:
        """Publish ``data`` (any JSON-compatible value) on ``channel``.

        Returns immediately once the broker accepted it: slow subscribers
        never hold a publisher up.

        Returns:
            The message's id in the channel.

        Raises:
            ChannelsError: For an invalid channel name or a message too large.
            BrokerUnavailableError: If the broker cannot be reached.
        """
        check_channel_name(channel)
        payload = self.encode(data)
        return await self.hub().backend.publish(channel, payload, self.history_size(channel))

    # -- subscribing --------------------------------------------------------------------

    def subscribe(
        self,
        channels: str | Iterable[str] = (),
        *,
        last_ids: Mapping[str, int] | None = None,
        max_queue: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> Subscription:
        """Return a subscription to ``channels``; use it with ``async with``.

        Args:
            channels: A channel name or several; more can be added later with
                :meth:`Subscription.subscribe`.
            last_ids: For a resuming client, per channel, the last id it saw:
                later messages are replayed from history first.
            max_queue: This subscriber's queue bound (default: the ``Channels``').
            on_overflow: This subscriber's overflow policy (default: the ``Channels``').
        """
        names = [channels] if isinstance(channels, str) else list(channels)
        return Subscription(
            self.hub(),
            names,
            last_ids=last_ids,
            max_queue=self.max_queue if max_queue is None else max_queue,
            on_overflow=self.on_overflow if on_overflow is None else on_overflow,
        )

    async def history(self, channel: str, *, after: int = 0) -> list[Message]:
        """Return the kept messages of ``channel`` with an id above ``after``, oldest first."""
        check_channel_name(channel)
        return await self.hub().history(channel, after)

    async def last_id(self, channel: str) -> int:
        """Return the id of the last message published on ``channel`` (0 if none)."""
        check_channel_name(channel)
        return await self.hub().backend.last_id(channel)

    async def delete(self, channel: str) -> None:
        """Forget ``channel``'s history and ids, when a room is closed for good.

        Its next message gets id 1 again; a subscriber still listening sees a
        ``"reset"`` gap when its connection next catches up, and a client
        resuming from an older id is sent one.
        """
        check_channel_name(channel)
        await self.hub().backend.delete(channel)

    # -- websockets, presence, users, event streams -------------------------------------

    def socket(
        self,
        websocket: WebSocket,
        *,
        user_channel: bool = True,
        login_required: bool = False,
        presence: Mapping[str, Any] | None = None,
        max_queue: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> ChannelSocket:
        """Return a :class:`~covet.channels.rooms.ChannelSocket` for an accepted ``websocket``.

        Use it with ``async with``; ``join(room)`` forwards a room's messages
        to the socket and records its presence. See :mod:`covet.channels.rooms`.
        """
        return ChannelSocket(
            self,
            websocket,
            user_channel=user_channel,
            login_required=login_required,
            presence=presence,
            max_queue=max_queue,
            on_overflow=on_overflow,
        )

    def presence_keeper(self) -> PresenceKeeper:
        """Return the running loop's presence keeper (internal to the socket helpers)."""
        hub = self.hub()
        keeper = self._keepers.get(hub)
        if keeper is None:
            keeper = self._keepers[hub] = PresenceKeeper(hub.backend, self.presence_ttl)
        return keeper

    async def presence(self, room: str) -> list[Member]:
        """Return the sockets present in ``room`` on every worker, oldest refresh first.

        A worker that died stops refreshing its sockets, which drop out of the
        list within ``presence_ttl`` seconds.
        """
        check_channel_name(room)
        records = await self.hub().backend.presence_list(room)
        return [Member(member, _json.loads(info) if info else {}) for member, info in records]

    def user_channel(self, user: object) -> str:
        """Return the personal channel (``"user:<pk>"``) of a user object or primary key."""
        return user_key(user)

    async def notify_user(self, user: object, data: Any) -> int:
        """Publish ``data`` to every socket of ``user`` (a user object or primary key)."""
        return await self.publish(user_key(user), data)

    def event_stream(
        self,
        request: Request,
        channels: str | Iterable[str],
        *,
        keepalive: float = DEFAULT_KEEPALIVE,
        max_queue: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> EventSourceResponse:
        """Return a server-sent events response relaying ``channels`` to the client.

        The client's ``Last-Event-ID`` header (or a ``last_event_id`` query
        parameter, for clients that cannot set headers) resumes the stream.

        Raises:
            HTTPException: 400 for an id this stream never issued.
        """
        last_event_id = request.headers.get("last-event-id")
        if last_event_id is None:
            last_event_id = request.query_params.get("last_event_id")
        try:
            return EventSourceResponse(
                self,
                channels,
                last_event_id=last_event_id,
                keepalive=keepalive,
                max_queue=max_queue,
                on_overflow=on_overflow,
            )
        except InvalidEventIdError as exc:
            # The client sent it: a 400 that says why, not a bare "Bad Request".
            raise HTTPException(400, str(exc)) from exc


def _masked(url: str) -> str:
    """Hide a password in ``url`` for repr() and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"
