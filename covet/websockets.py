"""The WebSocket connection object handed to websocket handlers.

A handler receives a :class:`WebSocket`, accepts it, then exchanges text,
binary or JSON messages until one side closes::

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

When the client goes away, the ``receive_*`` methods raise
:class:`WebSocketDisconnect`. Letting it escape the handler is the normal way
for a handler to end; covet does not report it as an error. The ``iter_*``
helpers simply stop.

Inbound messages larger than ``max_message_size`` (1 MiB by default) close the
connection with code 1009 ("message too big"). A message of the wrong kind
(binary where text was expected) or JSON that does not parse closes it with
1003 or 1007, by raising :class:`~covet.exceptions.WebSocketException`, which
the framework turns into that close frame.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from covet import _json
from covet.exceptions import WebSocketDisconnect, WebSocketException
from covet.requests import HTTPConnection

if TYPE_CHECKING:
    from covet.types import Message, Receive, Scope, Send

__all__ = (
    "DEFAULT_MAX_MESSAGE_SIZE",
    "WebSocket",
    "WebSocketClose",
    "WebSocketDisconnect",
    "WebSocketState",
)

#: Largest inbound message accepted by default, in bytes (DEFAULTS.md: 1 MiB).
DEFAULT_MAX_MESSAGE_SIZE = 1_048_576

# RFC 6455 section 7.4.1 close codes used here.
_CLOSE_UNSUPPORTED_DATA = 1003
_CLOSE_ABNORMAL = 1006
_CLOSE_INVALID_PAYLOAD = 1007
_CLOSE_MESSAGE_TOO_BIG = 1009

_JSONMode = Literal["text", "binary"]


class WebSocketState(enum.Enum):
    """The life cycle of one side of a websocket connection."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2


def _text_size_exceeds(text: str, limit: int) -> bool:
    # Encoding is only needed when the character count alone cannot decide:
    # UTF-8 uses between 1 and 4 bytes per character.
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit


class WebSocket(HTTPConnection):
    """One websocket connection, from the application's side.

    ``client_state`` follows what the client did (connect, disconnect) and
    ``application_state`` what the handler did (accept, close).

    Args:
        scope: The ASGI ``websocket`` scope.
        receive: The ASGI receive callable.
        send: The ASGI send callable.
        max_message_size: The largest inbound message, in bytes, before the
            connection is closed with code 1009.
    """

    __slots__ = ("_send", "application_state", "client_state", "max_message_size")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(
                f"WebSocket needs an ASGI 'websocket' scope, got type {scope.get('type')!r}. "
                "Use Request for HTTP scopes."
            )
        super().__init__(scope, receive)
        self._receive = receive
        self._send = send
        self.max_message_size = max_message_size
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING

    # -- raw ASGI messages -----------------------------------------------------

    async def receive(self) -> Message:
        """Return the next raw ASGI message from the client.

        Returns:
            A ``websocket.connect``, ``websocket.receive`` or
            ``websocket.disconnect`` message.

        Raises:
            RuntimeError: If called again after a disconnect was received.
            WebSocketDisconnect: If the message exceeds ``max_message_size``;
                the connection is closed with 1009 first.
        """
        if self.client_state is WebSocketState.DISCONNECTED:
            raise RuntimeError(
                "Cannot call receive() once the client has disconnected. "
                "Stop reading when WebSocketDisconnect is raised."
            )
        message = await self._receive()
        kind = message.get("type")
        if self.client_state is WebSocketState.CONNECTING:
            if kind == "websocket.connect":
                self.client_state = WebSocketState.CONNECTED
            elif kind == "websocket.disconnect":
                self.client_state = WebSocketState.DISCONNECTED
            else:
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.connect', got {kind!r}. "
                    "The server violated the ASGI websocket protocol."
                )
            return message
        if kind == "websocket.disconnect":
            self.client_state = WebSocketState.DISCONNECTED
        elif kind == "websocket.receive":
            await self._check_size(message)
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.receive' or 'websocket.disconnect', "
                f"got {kind!r}. The server violated the ASGI websocket protocol."
            )
        return message

    async def _check_size(self, message: Message) -> None:
        text, data = message.get("text"), message.get("bytes")
        limit = self.max_message_size
        if text is not None:
            too_big = _text_size_exceeds(text, limit)
        else:
            too_big = data is not None and len(data) > limit
        if not too_big:
            return
        reason = f"Message larger than {limit} bytes"
        if self.application_state is WebSocketState.CONNECTED:
            await self.close(_CLOSE_MESSAGE_TOO_BIG, reason)
        self.client_state = WebSocketState.DISCONNECTED
        raise WebSocketDisconnect(_CLOSE_MESSAGE_TOO_BIG, reason)

    async def send(self, message: Message) -> None:
        """Send a raw ASGI message to the client.

        Args:
            message: A ``websocket.accept``, ``websocket.send`` or
                ``websocket.close`` message.

        Raises:
            RuntimeError: If the message is not valid in the current state.
            WebSocketDisconnect: If the client is gone (code 1006).
        """
        kind = message.get("type")
        state = self.application_state
        if state is WebSocketState.DISCONNECTED:
            raise RuntimeError(
                f"Cannot send {kind!r} after the connection was closed. "
                "Stop sending once close() was called or WebSocketDisconnect was raised."
            )
        allowed = (
            ("websocket.accept", "websocket.close")
            if state is WebSocketState.CONNECTING
            else ("websocket.send", "websocket.close")
        )
        if kind not in allowed:
            hint = "Call accept() first." if state is WebSocketState.CONNECTING else ""
            raise RuntimeError(
                f"Cannot send {kind!r} while the websocket is {state.name.lower()}; "
                f"expected one of {allowed!r}. {hint}".rstrip()
            )
        if kind == "websocket.close":
            self.application_state = WebSocketState.DISCONNECTED
        elif kind == "websocket.accept":
            self.application_state = WebSocketState.CONNECTED
        try:
            await self._send(message)
        except OSError as exc:
            # ASGI 2.4: servers raise an OSError subclass when sending on a
            # connection the client already closed.
            self.application_state = WebSocketState.DISCONNECTED
            self.client_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(_CLOSE_ABNORMAL, "The client disconnected.") from exc

    # -- handshake and close ---------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Accept the connection, completing the handshake.

        Args:
            subprotocol: The subprotocol to speak; it must be one the client
                offered (``websocket.scope["subprotocols"]``).
            headers: Extra handshake response headers.

        Raises:
            ValueError: If ``subprotocol`` was not offered by the client.
            WebSocketDisconnect: If the client left before the handshake.
        """
        if subprotocol is not None and subprotocol not in self.scope.get("subprotocols", ()):
            raise ValueError(
                f"Subprotocol {subprotocol!r} was not offered by the client, which offered "
                f"{list(self.scope.get('subprotocols', ()))!r}. Pick one of those or None."
            )
        if self.client_state is WebSocketState.CONNECTING:
            await self.receive()
        if self.client_state is WebSocketState.DISCONNECTED:
            raise WebSocketDisconnect(_CLOSE_ABNORMAL, "The client left before the handshake.")
        raw_headers: list[tuple[bytes, bytes]] = []
        if isinstance(headers, Mapping):
            raw_headers = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ]
        elif headers is not None:
            raw_headers = [(bytes(name).lower(), bytes(value)) for name, value in headers]
        await self.send(
            {"type": "websocket.accept", "subprotocol": subprotocol, "headers": raw_headers}
        )

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection with ``code`` (before accept this rejects it).

        Args:
            code: The RFC 6455 close code; 1000 is a normal closure.
            reason: A short reason for the client (at most 123 UTF-8 bytes).
        """
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})

    # -- typed receive -------------------------------------------------------

    async def _receive_data(self) -> Message:
        if self.application_state is not WebSocketState.CONNECTED:
            raise RuntimeError(
                "The websocket is not connected. Call accept() before receiving messages."
            )
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(int(message.get("code", 1000)), message.get("reason") or None)
        return message

    async def receive_text(self) -> str:
        """Return the next text message.

        Raises:
            WebSocketDisconnect: If the client disconnected.
            WebSocketException: Code 1003 if a binary message arrived instead.
        """
        message = await self._receive_data()
        text = message.get("text")
        if text is None:
            raise WebSocketException(
                _CLOSE_UNSUPPORTED_DATA, "Expected a text message, got a binary one."
            )
        return str(text)

    async def receive_bytes(self) -> bytes:
        """Return the next binary message.

        Raises:
            WebSocketDisconnect: If the client disconnected.
            WebSocketException: Code 1003 if a text message arrived instead.
        """
        message = await self._receive_data()
        data = message.get("bytes")
        if data is None:
            raise WebSocketException(
                _CLOSE_UNSUPPORTED_DATA, "Expected a binary message, got a text one."
            )
        return bytes(data)

    async def receive_json(self, mode: _JSONMode = "text") -> Any:
        """Return the next message parsed as JSON.

        Args:
            mode: ``"text"`` to read JSON from text messages, ``"binary"`` to
                read UTF-8 JSON from binary messages.

        Raises:
            WebSocketDisconnect: If the client disconnected.
            WebSocketException: Code 1003 for the wrong message kind, 1007 for
                a message that is not valid JSON.
        """
        raw: str | bytes
        if mode == "text":
            raw = await self.receive_text()
        elif mode == "binary":
            raw = await self.receive_bytes()
        else:
            raise ValueError(f"Unsupported JSON mode {mode!r}. Use 'text' or 'binary'.")
        try:
            return _json.loads(raw)
        except ValueError as exc:
            raise WebSocketException(
                _CLOSE_INVALID_PAYLOAD, f"Invalid JSON message: {str(exc)[:80]}"
            ) from exc

    async def iter_text(self) -> AsyncIterator[str]:
        """Yield text messages until the client disconnects."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            return

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield binary messages until the client disconnects."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            return

    async def iter_json(self, mode: _JSONMode = "text") -> AsyncIterator[Any]:
        """Yield JSON messages (see :meth:`receive_json`) until the client disconnects."""
        try:
            while True:
                yield await self.receive_json(mode)
        except WebSocketDisconnect:
            return

    # -- typed send ------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self.send({"type": "websocket.send", "bytes": bytes(data)})

    async def send_json(self, data: Any, mode: _JSONMode = "text") -> None:
        """Send ``data`` as compact JSON, in a text or a binary message.

        Raises:
            TypeError: If ``data`` holds a value with no JSON form.
        """
        if mode not in ("text", "binary"):
            raise ValueError(f"Unsupported JSON mode {mode!r}. Use 'text' or 'binary'.")
        encoded = _json.dumps(data)
        if mode == "text":
            await self.send_text(encoded.decode("utf-8"))
        else:
            await self.send_bytes(encoded)


class WebSocketClose:
    """An ASGI app that closes (before accept: rejects) a websocket with ``code``.

    Args:
        code: The close code, 1000 by default.
        reason: A short reason for the client.
    """

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the close message."""
        await send({"type": "websocket.close", "code": self.code, "reason": self.reason})
