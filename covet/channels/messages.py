"""What a subscriber receives: :class:`Message` and :class:`Gap`.

Every message published on a channel gets the next id of that channel: 1, 2,
3, ... with no holes. Ids are what make "never silently lost" checkable: a
subscriber that sees id 7 after id 5 knows one message is missing, and covet
either replays it from the channel's history or hands the subscriber a
:class:`Gap` saying how many are gone and after which id, so the client can
ask for them again (:meth:`Channels.history`) or reload its state.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Literal

from covet import _json
from covet.exceptions import CovetError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "ChannelsError",
    "Gap",
    "GapReason",
    "Message",
    "SlowConsumerError",
    "check_channel_name",
    "history_size",
)

#: Why a :class:`Gap` was signalled.
#:
#: - ``"overflow"``: this subscriber was too slow; its queue was full and the
#:   oldest messages were dropped (the ``"drop_oldest"`` policy).
#: - ``"unavailable"``: messages were published while the connection to the
#:   broker was down (or before a resume id), and the channel's history no
#:   longer holds them (history disabled, or trimmed past them).
#: - ``"reset"``: the broker lost the channel's state (a Redis restarted
#:   without persistence): ids start again from 1.
GapReason = Literal["overflow", "unavailable", "reset"]

#: The longest channel name accepted, in characters.
MAX_CHANNEL_NAME = 200


class ChannelsError(CovetError):
    """A channels operation cannot be carried out (bad name, closed subscription, ...)."""


class SlowConsumerError(ChannelsError):
    """The subscriber's queue overflowed under the ``"disconnect"`` policy.

    Websocket helpers close the socket with :attr:`close_code` (1013, "try
    again later"): the client reconnects and resumes from its last id.
    """

    #: RFC 6455 / IANA close code 1013: "Try Again Later".
    close_code = 1013


class Message:
    """One published message, as a subscriber receives it.

    The same object is handed to every subscriber of the channel in a process:
    the payload is decoded at most once, and :attr:`text` (the JSON a
    websocket or an event stream sends) is built at most once.

    Attributes:
        channel: The channel it was published on.
        id: Its position in the channel: 1 for the first message, no holes.
        raw: The JSON encoding of :attr:`data`, as published.
    """

    __slots__ = ("_data", "_text", "channel", "id", "raw")

    _UNSET: Any = object()

    def __init__(self, channel: str, id: int, raw: bytes) -> None:
        self.channel = channel
        self.id = id
        self.raw = raw
        self._data: Any = Message._UNSET
        self._text: str | None = None

    @property
    def data(self) -> Any:
        """The published value, decoded from JSON on first access."""
        if self._data is Message._UNSET:
            self._data = _json.loads(self.raw)
        return self._data

    @property
    def text(self) -> str:
        """``{"channel": ..., "id": ..., "data": ...}`` as compact JSON text."""
        if self._text is None:
            channel = _json.dumps(self.channel).decode("utf-8")
            self._text = (
                f'{{"type":"message","channel":{channel},"id":{self.id},'
                f'"data":{self.raw.decode("utf-8")}}}'
            )
        return self._text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.channel, self.id, self.raw) == (other.channel, other.id, other.raw)

    def __hash__(self) -> int:
        return hash((self.channel, self.id))

    def __repr__(self) -> str:
        return f"Message(channel={self.channel!r}, id={self.id!r}, data={self.data!r})"


class Gap:
    """A signal that messages of ``channel`` were not delivered to this subscriber.

    Attributes:
        channel: The channel that has the hole.
        after: The id after which messages are missing; resume from here with
            ``Channels.history(channel, after=gap.after)`` if history may still hold them.
        missed: How many messages are missing, or None when unknown (``"reset"``).
        reason: Why they are missing; see :data:`GapReason`.
    """

    __slots__ = ("after", "channel", "missed", "reason")

    def __init__(self, channel: str, after: int, missed: int | None, reason: GapReason) -> None:
        self.channel = channel
        self.after = after
        self.missed = missed
        self.reason = reason

    @property
    def text(self) -> str:
        """The gap as compact JSON text, ``{"type": "gap", ...}``, for websockets."""
        return _json.dumps(
            {
                "type": "gap",
                "channel": self.channel,
                "after": self.after,
                "missed": self.missed,
                "reason": self.reason,
            }
        ).decode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Gap):
            return NotImplemented
        return (self.channel, self.after, self.missed, self.reason) == (
            other.channel,
            other.after,
            other.missed,
            other.reason,
        )

    def __hash__(self) -> int:
        return hash((self.channel, self.after, self.missed, self.reason))

    def __repr__(self) -> str:
        return (
            f"Gap(channel={self.channel!r}, after={self.after!r}, missed={self.missed!r}, "
            f"reason={self.reason!r})"
        )


def check_channel_name(name: object) -> str:
    """Return ``name`` if it is a usable channel name, else raise ``ChannelsError``."""
    if not isinstance(name, str) or not name:
        raise ChannelsError(
            f"A channel name must be a non-empty string, got {name!r}. Use e.g. 'room:lobby'."
        )
    if len(name) > MAX_CHANNEL_NAME or any(ord(c) < 32 for c in name):
        raise ChannelsError(
            f"Channel name {name[:40]!r} is longer than {MAX_CHANNEL_NAME} characters or holds "
            "control characters. Use a short printable name."
        )
    return name


def history_size(history: int | Mapping[str, int], channel: str) -> int:
    """Return how many messages of ``channel`` to keep, from ``Channels(history=...)``.

    A mapping's keys are :mod:`fnmatch` patterns; the first that matches wins and
    an unmatched channel keeps none.
    """
    if isinstance(history, int):
        return history
    for pattern, size in history.items():
        if fnmatch.fnmatchcase(channel, pattern):
            return size
    return 0
