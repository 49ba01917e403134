"""Gzip response compression middleware.

Compresses response bodies for clients that accept ``gzip``
(RFC 9110 section 8.4.1.3). Whole bodies are compressed in one go and get an
exact ``Content-Length``; streamed bodies are compressed chunk by chunk and
flushed after each chunk, so a client sees every chunk as soon as the
application sends it and memory stays flat however long the stream runs.

Security note: compressing a response that reflects attacker-controlled input
next to a secret (a CSRF token, a session identifier) over HTTPS enables the
BREACH attack. covet masks its CSRF token per response, which defeats BREACH
for that token; for other secrets, decide per route whether compression is
worth it.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING

from covet.datastructures import add_vary_to_raw
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("DEFAULT_EXCLUDED_MEDIA_TYPES", "GZipMiddleware", "accepts_gzip")

# Formats that are already compressed (gzip would only cost CPU) or that must
# reach the client unbuffered (server-sent events). "type/*" matches a whole
# top-level type. image/svg+xml is text and is deliberately not listed.
DEFAULT_EXCLUDED_MEDIA_TYPES: tuple[str, ...] = (
    "text/event-stream",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heic",
    "audio/*",
    "video/*",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/vnd.rar",
)

_ACCEPT_GZIP_RE = re.compile(
    r"(?:^|,)\s*(?P<coding>x-gzip|gzip|\*)\s*(?:;\s*q\s*=\s*(?P<q>[0-9.]+))?\s*(?=,|$)",
    re.IGNORECASE | re.ASCII,
)
# Statuses without a body, or whose body must stay byte-for-byte the stored
# representation: 206 Partial Content ranges refer to the identity encoding.
_UNTOUCHED_STATUSES = frozenset({101, 103, 204, 206, 304})
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib writes a gzip header and trailer


def accepts_gzip(accept_encoding: str) -> bool:
    """Return whether an ``Accept-Encoding`` value allows a gzip response.

    ``gzip`` (or its legacy alias ``x-gzip``) with a non-zero quality wins;
    otherwise a ``*`` with a non-zero quality allows it.

    Args:
        accept_encoding: The request's ``Accept-Encoding`` header value.

    Returns:
        ``True`` when the client accepts gzip.
    """
    wildcard: bool | None = None
    for match in _ACCEPT_GZIP_RE.finditer(accept_encoding):
        quality = match.group("q")
        try:
            acceptable = quality is None or float(quality) > 0
        except ValueError:
            acceptable = False
        if match.group("coding") == "*":
            wildcard = acceptable
        else:
            return acceptable
    return bool(wildcard)


class GZipMiddleware:
    """Compress responses with gzip when the client accepts it.

    A response is left as it is when the request is ``HEAD``; the status is
    1xx, 204, 206 or 304; it already has a ``Content-Encoding`` or a
    ``Content-Range``; its media type is excluded; or its whole body is
    smaller than ``minimum_size``. Compressed responses get
    ``Content-Encoding: gzip``, a recomputed (or, when streamed, removed)
    ``Content-Length``, a weakened ``ETag`` and no ``Accept-Ranges``.
    Every compressible response carries ``Vary: Accept-Encoding`` so that
    caches keep the two encodings apart.

    Args:
        app: The ASGI application to wrap.
        minimum_size: Bodies smaller than this many bytes are sent as they are.
        compresslevel: The zlib level, 1 (fastest) to 9 (smallest).
        exclude_media_types: Media types never compressed; ``"video/*"``
            matches a whole top-level type. Defaults to
            :data:`DEFAULT_EXCLUDED_MEDIA_TYPES`.

    Raises:
        ImproperlyConfigured: If an option is out of range.
    """

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = 500,
        compresslevel: int = 9,
        exclude_media_types: Sequence[str] = DEFAULT_EXCLUDED_MEDIA_TYPES,
    ) -> None:
        if type(minimum_size) is not int or minimum_size < 0:
            raise ImproperlyConfigured(
                f"GZipMiddleware minimum_size must be a non-negative number of bytes, "
                f"not {minimum_size!r}."
            )
        if type(compresslevel) is not int or compresslevel not in range(1, 10):
            raise ImproperlyConfigured(
                f"GZipMiddleware compresslevel must be an integer from 1 to 9, "
                f"not {compresslevel!r}."
            )
        if isinstance(exclude_media_types, str):
            raise ImproperlyConfigured(
                f"GZipMiddleware exclude_media_types must be a sequence, not the string "
                f"{exclude_media_types!r}. Wrap it in a list: [{exclude_media_types!r}]."
            )
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        exact: set[str] = set()
        prefixes: list[str] = []
        for media_type in exclude_media_types:
            text = media_type.strip().lower()
            if text.endswith("/*"):
                prefixes.append(text[:-1])
            else:
                exact.add(text)
        self._excluded = frozenset(exact)
        self._excluded_prefixes = tuple(prefixes)

    def is_excluded(self, content_type: bytes) -> bool:
        """Return whether a ``Content-Type`` value names an excluded media type.

        Args:
            content_type: The response's ``Content-Type`` header value.

        Returns:
            ``True`` when responses of this type must not be compressed.
        """
        media_type = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
        return media_type in self._excluded or (
            bool(self._excluded_prefixes) and media_type.startswith(self._excluded_prefixes)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection, compressing its response when possible."""
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        accept = b""
        for key, value in scope["headers"]:
            if key == b"accept-encoding":
                accept = accept + b"," + value if accept else bytes(value)
        if accept and accepts_gzip(accept.decode("latin-1")):
            responder = _GZipResponder(self, send)
            await self.app(scope, receive, responder.send)
        else:
            await self.app(scope, receive, _IdentityResponder(self, send).send)

    def _compressible(self, message: Message) -> bool:
        """Return whether a response start describes a body gzip may encode."""
        if message.get("status", 200) in _UNTOUCHED_STATUSES:
            return False
        for key, value in message.get("headers", ()):
            name = key.lower()
            if name in (b"content-encoding", b"content-range"):
                return False
            if name == b"content-type" and self.is_excluded(value):
                return False
        return True


class _IdentityResponder:
    """Send the response unchanged, adding ``Vary`` when gzip would have applied."""

    __slots__ = ("middleware", "next_send")

    def __init__(self, middleware: GZipMiddleware, send: Send) -> None:
        self.middleware = middleware
        self.next_send = send

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and self.middleware._compressible(message):
            headers = list(message.get("headers", ()))
            add_vary_to_raw(headers, b"Accept-Encoding")
            message["headers"] = headers
        await self.next_send(message)


class _GZipResponder:
    """Hold the response start until the first body chunk decides the encoding."""

    __slots__ = ("compressor", "middleware", "mode", "next_send", "start")

    def __init__(self, middleware: GZipMiddleware, send: Send) -> None:
        self.middleware = middleware
        self.next_send = send
        self.start: Message | None = None
        self.mode = "pending"  # "pending" -> "gzip" | "identity"
        self.compressor: zlib._Compress | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.mode == "identity":
            await self.next_send(message)
        elif kind == "http.response.start":
            if self.middleware._compressible(message):
                self.start = message
            else:
                self.mode = "identity"
                await self.next_send(message)
        elif kind == "http.response.body" and self.start is not None:
            if self.mode == "pending":
                await self._first_body(self.start, message)
            else:
                await self._next_body(message)
        elif self.start is not None and self.mode == "pending":
            # An extension message (e.g. http.response.pathsend) bypasses the
            # body: send the response as it is.
            self.mode = "identity"
            await self.next_send(self.start)
            await self.next_send(message)
        else:
            await self.next_send(message)

    async def _first_body(self, start: Message, message: Message) -> None:
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        headers = list(start.get("headers", ()))
        add_vary_to_raw(headers, b"Accept-Encoding")
        declared = self._declared_length(headers)
        size = declared if more_body and declared is not None else len(body)
        if (not more_body or declared is not None) and size < self.middleware.minimum_size:
            self.mode = "identity"
            start["headers"] = headers
            await self.next_send(start)
            await self.next_send(message)
            return

        self.mode = "gzip"
        compressor = zlib.compressobj(self.middleware.compresslevel, zlib.DEFLATED, _GZIP_WBITS)
        headers = self._encoded_headers(headers)
        if more_body:
            self.compressor = compressor
            data = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
        else:
            data = compressor.compress(body) + compressor.flush(zlib.Z_FINISH)
            headers.append((b"content-length", str(len(data)).encode("latin-1")))
        start["headers"] = headers
        await self.next_send(start)
        await self.next_send({"type": "http.response.body", "body": data, "more_body": more_body})

    async def _next_body(self, message: Message) -> None:
        compressor = self.compressor
        if compressor is None:
            # The body was already complete: let the server report the app's
            # protocol error rather than hiding it.
            await self.next_send(message)
            return
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if more_body:
            if not body:
                return
            # Z_SYNC_FLUSH ends the deflate block on a byte boundary, so the
            # client can decode everything sent so far (the streaming promise).
            data = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
        else:
            data = compressor.compress(body) + compressor.flush(zlib.Z_FINISH)
            self.compressor = None
        await self.next_send({"type": "http.response.body", "body": data, "more_body": more_body})

    @staticmethod
    def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
        for key, value in headers:
            if key.lower() == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    @staticmethod
    def _encoded_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """Rewrite response headers for the gzip representation."""
        result: list[tuple[bytes, bytes]] = []
        for key, value in headers:
            name = key.lower()
            if name in (b"content-length", b"accept-ranges"):
                # Length is recomputed (or chunked); byte ranges would refer to
                # the identity representation, so stop advertising them.
                continue
            if name == b"etag" and not value.startswith(b"W/"):
                # A strong ETag names exact bytes; the gzip bytes differ
                # (RFC 9110 section 8.8.3), so it becomes weak.
                value = b"W/" + value
            result.append((key, value))
        result.append((b"content-encoding", b"gzip"))
        return result
