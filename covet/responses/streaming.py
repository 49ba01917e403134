"""Streamed responses: a body from an iterator, and the disconnect handling files share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from covet.responses.base import Response

if TYPE_CHECKING:
    from covet.background import BackgroundTask
    from covet.types import Message, Receive, Scope, Send

__all__ = ("StreamingResponse",)


class _ClientGoneError(Exception):
    """The server reported (ASGI 2.4: ``send()`` raised ``OSError``) that the client left."""


class _TruncatedFileError(RuntimeError):
    """A file got shorter while it was being sent."""


def _guarded(send: Send) -> Send:
    """Wrap ``send`` so that a disconnect surfaces as :class:`_ClientGoneError`.

    Only errors of ``send()`` itself are translated, so an ``OSError`` raised by
    the application's own body iterator still propagates.
    """

    async def guarded_send(message: Message) -> None:
        try:
            await send(message)
        except OSError as exc:
            raise _ClientGoneError from exc

    return guarded_send


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _until_disconnected(body: AsyncIterator[Any], receive: Receive) -> bool:
    """Run ``body`` to completion unless the client disconnects first.

    Returns:
        True if the body finished, False if the client went away.
    """
    sender: asyncio.Future[Any] = asyncio.ensure_future(_drain(body))
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, watcher):
            task.cancel()
        await asyncio.gather(sender, watcher, return_exceptions=True)
    if sender.cancelled():
        error = None if watcher.cancelled() else watcher.exception()
        if error is not None:
            raise error  # receive() itself failed.
        return False
    sender.result()  # Re-raise an error of the body.
    return True


async def _drain(body: AsyncIterator[Any]) -> None:
    async for _ in body:
        pass


class StreamingResponse(Response):
    """A response whose body comes from an iterator, sent chunk by chunk.

    ``content`` is an async iterable, or a plain iterable (a generator, say) that is
    advanced in a worker thread so blocking reads do not stall the event loop.
    Chunks may be ``bytes`` or ``str`` (encoded with :attr:`charset`). When the
    client disconnects, iteration stops (async generators get ``CancelledError``).

    Args:
        content: The body chunks.
        status_code: The HTTP status code.
        headers: Extra headers (no ``Content-Length`` is added: the body is chunked).
        media_type: The ``Content-Type``.
        background: A task to run after the response is sent (also after a disconnect).
    """

    def __init__(
        self,
        content: AsyncIterable[str | bytes] | Iterable[str | bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        checked: object = content
        if not isinstance(checked, AsyncIterable | Iterable) or isinstance(checked, str | bytes):
            raise TypeError(
                f"StreamingResponse content must be an iterable of chunks, got "
                f"{type(content).__name__!r}. Use Response for a body held in memory."
            )
        self.content = content
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.init_headers(headers)

    def _encode(self, chunk: object) -> bytes:
        if isinstance(chunk, bytes):
            return chunk
        if isinstance(chunk, str):
            return chunk.encode(self.charset)
        if isinstance(chunk, bytearray | memoryview):
            return bytes(chunk)
        raise TypeError(
            f"StreamingResponse chunks must be bytes or str, got {type(chunk).__name__!r}. "
            "Encode each chunk before yielding it."
        )

    async def _chunks(self) -> AsyncIterator[str | bytes]:
        content = self.content
        if isinstance(content, AsyncIterable):
            async for chunk in content:
                yield chunk
            return
        iterator = iter(content)
        done = object()
        while True:
            chunk = await asyncio.to_thread(_next_or, iterator, done)
            if chunk is done:
                return
            yield chunk

    async def _send_body(self, send: Send, prefix: str) -> AsyncIterator[None]:
        async for chunk in self._chunks():
            data = self._encode(chunk)
            if data:
                await send({"type": prefix + "http.response.body", "body": data, "more_body": True})
            yield None
        await send({"type": prefix + "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, then each chunk, until the body ends or the client leaves."""
        prefix = "websocket." if scope.get("type") == "websocket" else ""
        send = _guarded(send)
        try:
            await send(self._start_message(scope))
            if scope.get("method") == "HEAD":
                await send({"type": prefix + "http.response.body", "body": b"", "more_body": False})
            else:
                await _until_disconnected(self._send_body(send, prefix), receive)
        except _ClientGoneError:
            pass
        finally:
            await _close_iterable(self.content)
        if self.background is not None:
            await self.background()


def _next_or(iterator: Iterator[Any], default: object) -> Any:
    return next(iterator, default)


async def _close_iterable(content: object) -> None:
    aclose = getattr(content, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(RuntimeError):
            await aclose()
        return
    close = getattr(content, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):  # "generator already executing" in a thread.
            close()
