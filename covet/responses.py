"""Response classes: ASGI callables that send a status, headers and a body.

Every response is an ASGI application: ``await response(scope, receive, send)``.
Handlers usually return one (or a dict, list, str or bytes that covet wraps in
one). All of them answer a ``HEAD`` request with the headers of the ``GET``
response, including the real ``Content-Length``, and no body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import re
import stat
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Set
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from covet import _json
from covet.datastructures import URL, Headers, MutableHeaders, _encode_value

if TYPE_CHECKING:
    import io

    from covet.background import BackgroundTask
    from covet.types import Message, Receive, Scope, Send

__all__ = (
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
    "cookie_header",
    "format_cookie",
)

#: Ranges accepted in one ``Range`` header; more and it is ignored (Apache's MaxRanges,
#: the CVE-2011-3192 "Apache Killer" defence).
_MAX_RANGES = 200

# Expires of a deleted cookie.
_COOKIE_EPOCH = datetime.fromtimestamp(0, tz=UTC)

# Fixes for what the platform's mimetypes database gets wrong or lacks (it varies by OS).
_MEDIA_TYPE_FIXES = {
    ".js": "text/javascript",  # RFC 9239
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".ico": "image/vnd.microsoft.icon",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".xml": "application/xml",
    ".pdf": "application/pdf",
}

# RFC 6265 section 4.1.1: cookie-name is an RFC 2616 token, cookie-octet excludes
# CTLs, whitespace, DQUOTE, comma, semicolon and backslash.
_COOKIE_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE_RE = re.compile(
    r'[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*|"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"'
)
_COOKIE_ATTR_FORBIDDEN_RE = re.compile(r"[\x00-\x1f\x7f;]")
_SAMESITE_VALUES = {"lax": "Lax", "strict": "Strict", "none": "None"}
_FORBIDDEN_HEADER_BYTES = re.compile(rb"[\r\n\x00]")
_NO_NAMES: frozenset[bytes] = frozenset()

_CHUNK_SIZE = 64 * 1024


def _guess_media_type(path: str | os.PathLike[str]) -> str:
    """Return the media type of a file from its name, ``application/octet-stream`` if unknown."""
    import mimetypes  # imported late: only file responses need it
    import pathlib

    name = os.fspath(path)
    fixed = _MEDIA_TYPE_FIXES.get(pathlib.PurePath(name).suffix.lower())
    if fixed is not None:
        return fixed
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def _needs_charset(media_type: str) -> bool:
    return "charset=" not in media_type.lower() and (
        media_type.startswith("text/") or media_type == "application/javascript"
    )


@functools.lru_cache(maxsize=256)
def _content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    """Return the encoded, checked ``Content-Type`` header, cached per media type and charset."""
    if _needs_charset(media_type):
        media_type = f"{media_type}; charset={charset}"
    return (b"content-type", _encode_value(media_type))


# The Content-Length headers of small bodies, built once each (formatting an int
# as bytes costs more than the rest of building the header list).
_LENGTHS_CACHED = 4096
_LENGTHS: list[tuple[bytes, bytes] | None] = [None] * _LENGTHS_CACHED


def _length_header(size: int) -> tuple[bytes, bytes]:
    """Return the ``Content-Length`` header for ``size``, remembering the small ones."""
    header = (b"content-length", b"%d" % size)
    if size < _LENGTHS_CACHED:
        _LENGTHS[size] = header
    return header


#: The response classes that send themselves as :class:`Response` does (a start
#: message with the checked headers, then the whole body): the app sends these inline.
SENDS_PLAIN: set[type[Response]] = set()


def check_raw_headers(raw: list[tuple[bytes, bytes]]) -> None:
    # One regex pass over all the bytes; the loop below only runs to name the culprit.
    if _FORBIDDEN_HEADER_BYTES.search(b"".join(map(b"".join, raw))) is None:
        return
    for name, value in raw:
        if _FORBIDDEN_HEADER_BYTES.search(value) or _FORBIDDEN_HEADER_BYTES.search(name):
            raise ValueError(
                f"Header {name!r} has the value {value!r} with CR, LF or NUL in it. "
                "Remove them; they would let a value inject extra headers."
            )


class Response:
    """A response with the whole body in memory.

    Args:
        content: The body: ``bytes``, ``str`` (encoded with :attr:`charset`), or None.
        status_code: The HTTP status code.
        headers: Extra headers. ``Content-Length`` and ``Content-Type`` are added
            unless given here.
        media_type: The ``Content-Type`` without parameters; ``text/*`` types get
            ``; charset=utf-8`` appended.
        background: A task to run after the response is sent.

    Raises:
        ValueError: If a header name or value is invalid (CR/LF/NUL, not latin-1).
        TypeError: If ``content`` is of a type this class cannot encode.
    """

    media_type: str | None = None
    charset = "utf-8"
    # The MutableHeaders view over _raw is built on the first access to .headers. Until
    # then (or until .raw_headers hands the list out), _raw holds only values checked by
    # init_headers(), so sending skips the CR/LF/NUL scan.
    _raw: list[tuple[bytes, bytes]]
    _header_view: MutableHeaders | None = None
    _raw_checked = True
    # Derived by _derive_fast_path() for each class, so that __init__ need not derive
    # it per response: None, or the encoded Content-Type header and whether a str
    # body may be encoded with str.encode() (utf-8, render() not overridden).
    _fast: ClassVar[tuple[tuple[bytes, bytes], bool] | None]

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.status_code = status_code
        self.background = background
        if media_type is None:
            fast = self._fast
        else:
            fast = None
            self.media_type = media_type
        # The common case, inline (this runs for every response): the class's media
        # type (fast), a 200 and no extra headers.
        if fast is not None and fast[1] and type(content) is str:
            body = self.body = content.encode()
        else:
            body = self.body = self.render(content)
        if fast is not None and headers is None and status_code == 200:
            size = len(body)
            length = _LENGTHS[size] if size < _LENGTHS_CACHED else None
            self._raw = [length or _length_header(size), fast[0]]
            self._raw_checked = True  # an instance attribute is quicker to read
        else:
            self.init_headers(headers)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._derive_fast_path()

    @classmethod
    def _derive_fast_path(cls) -> None:
        """Derive what ``__init__`` reuses from the class's ``media_type`` and ``charset``.

        Read when the class is created. A class without a media type, or
        whose ``__init__`` or ``init_headers`` is its own (it may set
        ``media_type`` or ``charset`` per instance, or build headers
        differently), takes the general path, which reads them per response.
        This also records whether the class sends itself as ``Response``
        does, so that the app may send it inline (:data:`SENDS_PLAIN`).
        """
        charset = cls.charset
        fast = None
        plain = cls.__init__ is Response.__init__ and cls.init_headers is Response.init_headers
        if plain and cls.media_type is not None:
            try:
                content_type = _content_type_header(cls.media_type, charset)
            except (TypeError, ValueError, AttributeError):
                pass  # an invalid media type or charset: init_headers() raises per response
            else:
                utf8 = charset.lower().replace("_", "-") in ("utf-8", "utf8")
                fast = (content_type, utf8 and cls.render is Response.render)
        cls._fast = fast
        if cls.__call__ is Response.__call__:
            SENDS_PLAIN.add(cls)
        else:
            SENDS_PLAIN.discard(cls)

    def render(self, content: Any) -> bytes:
        """Encode ``content`` to the response body.

        Args:
            content: ``None``, ``bytes``-like or ``str``.

        Returns:
            The body bytes.

        Raises:
            TypeError: If ``content`` is of another type.
        """
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, bytes):
            return content
        if content is None:
            return b""
        if isinstance(content, bytearray | memoryview):
            return bytes(content)
        raise TypeError(
            f"{type(self).__name__} content must be bytes or str, not {type(content).__name__!r}. "
            "Use JSONResponse for data, or encode the content first."
        )

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Build :attr:`headers` from ``headers`` plus ``Content-Length`` and ``Content-Type``.

        Args:
            headers: The headers given to the constructor.

        Raises:
            ValueError: If a header name or value is invalid.
        """
        body = getattr(self, "body", None)
        status_code = self.status_code
        media_type = self.media_type
        # (__init__ builds the common case, a 200 with no extra headers, itself.)
        raw: list[tuple[bytes, bytes]]
        given: Set[bytes]
        if headers:
            raw = Headers(headers=headers).raw  # names lowercased, names and values checked
            given = {name for name, _ in raw}
        else:
            raw = []
            given = _NO_NAMES
        if (
            body is not None
            and status_code >= 200
            and status_code != 204
            and status_code != 304
            and b"content-length" not in given
        ):
            raw.append(_length_header(len(body)))
        if media_type is not None and b"content-type" not in given:
            raw.append(_content_type_header(media_type, self.charset))
        self._raw = raw
        if not self._raw_checked:  # called again after the old list was handed out
            self._header_view = None
            self._raw_checked = True

    @property
    def headers(self) -> MutableHeaders:
        """Return the response headers; changes made through it are sent."""
        view = self._header_view
        if view is None:
            # Whoever holds the view can reach the raw list: check it again when sending.
            self._raw_checked = False
            view = self._header_view = MutableHeaders(raw=self._raw)
        return view

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Return the headers as the ASGI list of ``(name, value)`` byte pairs."""
        self._raw_checked = False
        return self._raw

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | float | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header.

        Args:
            key: The cookie name, an RFC 6265 token.
            value: The value; characters outside RFC 6265 ``cookie-octet`` (space, comma,
                semicolon, backslash, double quote, non-ASCII) are refused, so encode the
                value first (URL-encoding or base64).
            max_age: Lifetime in seconds (``Max-Age``); ``0`` expires it now.
            expires: When it expires: an aware ``datetime`` (naive ones are taken as
                UTC), or a number of seconds from now.
            path: The ``Path`` attribute; ``None`` leaves it out.
            domain: The ``Domain`` attribute; ``None`` leaves it out (host-only cookie).
            secure: Send only over HTTPS (``Secure``).
            httponly: Hide from JavaScript (``HttpOnly``); on by default.
            samesite: ``"lax"`` (default), ``"strict"``, ``"none"`` or ``None`` to omit.
            partitioned: Add ``Partitioned`` (CHIPS); requires ``secure=True``.

        Raises:
            ValueError: If the name, value or an attribute is invalid, or the
                combination is one browsers reject.
        """
        self.headers.append(
            "set-cookie",
            format_cookie(
                key,
                value,
                max_age=max_age,
                expires=expires,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly,
                samesite=samesite,
                partitioned=partitioned,
            ),
        )

    def delete_cookie(
        self,
        key: str,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Tell the client to drop a cookie (an empty value that has already expired).

        ``path``, ``domain`` and ``partitioned`` must match those the cookie was set
        with, or the browser keeps the original.

        Args:
            key: The cookie name.
            path: The cookie's ``Path``.
            domain: The cookie's ``Domain``.
            secure: Add ``Secure`` (needed to delete ``__Secure-``/``__Host-`` cookies).
            httponly: Add ``HttpOnly``.
            samesite: The ``SameSite`` attribute.
            partitioned: Add ``Partitioned``.
        """
        self.set_cookie(
            key,
            "",
            max_age=0,
            expires=datetime.fromtimestamp(0, tz=UTC),
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )

    def _start_message(self, scope: Scope, *, status: int | None = None) -> Message:
        raw = self._raw
        if not self._raw_checked:
            check_raw_headers(raw)
        return {
            "type": "websocket.http.response.start"
            if scope.get("type") == "websocket"
            else "http.response.start",
            "status": self.status_code if status is None else status,
            "headers": raw,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response (as an ASGI application)."""
        raw = self._raw
        if not self._raw_checked:
            check_raw_headers(raw)
        # The start message is built inline (not via _start_message): this is the hot path.
        if scope.get("type") == "websocket":
            start_type, body_type = "websocket.http.response.start", "websocket.http.response.body"
        else:
            start_type, body_type = "http.response.start", "http.response.body"
        await send({"type": start_type, "status": self.status_code, "headers": raw})
        body = b"" if scope.get("method") == "HEAD" else self.body
        # more_body is left out: False is its default (ASGI), and the key costs per response.
        await send({"type": body_type, "body": body})
        if self.background is not None:
            await self.background()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r})"


def format_cookie(
    key: str,
    value: str = "",
    *,
    max_age: int | None = None,
    expires: datetime | float | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: Literal["lax", "strict", "none"] | None = "lax",
    partitioned: bool = False,
) -> str:
    """Return the value of a ``Set-Cookie`` header, validated.

    :meth:`Response.set_cookie` adds it to a response; middleware that writes
    raw ASGI headers (sessions, CSRF) uses it directly, so every cookie covet
    sets is checked by the same rules.

    Args:
        key: The cookie name, an RFC 6265 token.
        value: The value; characters outside RFC 6265 ``cookie-octet`` (space, comma,
            semicolon, backslash, double quote, non-ASCII) are refused, so encode the
            value first (URL-encoding or base64).
        max_age: Lifetime in seconds (``Max-Age``); ``0`` expires it now.
        expires: When it expires: an aware ``datetime`` (naive ones are taken as
            UTC), or a number of seconds from now.
        path: The ``Path`` attribute; ``None`` leaves it out.
        domain: The ``Domain`` attribute; ``None`` leaves it out (host-only cookie).
        secure: Send only over HTTPS (``Secure``).
        httponly: Hide from JavaScript (``HttpOnly``); on by default.
        samesite: ``"lax"`` (default), ``"strict"``, ``"none"`` or ``None`` to omit.
        partitioned: Add ``Partitioned`` (CHIPS); requires ``secure=True``.

    Returns:
        The header value, for example ``"sid=abc; Path=/; HttpOnly; SameSite=lax"``.

    Raises:
        ValueError: If the name, value or an attribute is invalid, or the
            combination is one browsers reject.
    """
    if not _COOKIE_NAME_RE.fullmatch(key):
        raise ValueError(
            f"Invalid cookie name {key!r}. Use letters, digits and !#$%&'*+-.^_`|~ only."
        )
    if not _COOKIE_VALUE_RE.fullmatch(value):
        raise ValueError(
            f"Invalid cookie value {value!r}: spaces, commas, semicolons, backslashes, "
            "double quotes, control and non-ASCII characters are not allowed. "
            "Encode the value first, e.g. with urllib.parse.quote() or base64."
        )
    samesite_value: str | None = None
    if samesite is not None:
        samesite_value = _SAMESITE_VALUES.get(str(samesite).lower())
        if samesite_value is None:
            raise ValueError(
                f"Invalid samesite value {samesite!r}. Use 'lax', 'strict', 'none' or None."
            )
        if samesite_value == "None" and not secure:
            raise ValueError(
                f"Cookie {key!r} has samesite='none' without secure=True, which browsers "
                "reject. Pass secure=True."
            )
    if partitioned and not secure:
        raise ValueError(
            f"Cookie {key!r} is partitioned without secure=True, which browsers reject. "
            "Pass secure=True."
        )
    if key.startswith("__Secure-") and not secure:
        raise ValueError(f"Cookie {key!r} has the __Secure- prefix and needs secure=True.")
    if key.startswith("__Host-") and (not secure or path != "/" or domain is not None):
        raise ValueError(
            f"Cookie {key!r} has the __Host- prefix and needs secure=True, path='/' and no domain."
        )
    parts = [f"{key}={value}"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        parts.append(f"Expires={_cookie_date(expires)}")
    for name, attribute in (("Path", path), ("Domain", domain)):
        if attribute is None:
            continue
        if _COOKIE_ATTR_FORBIDDEN_RE.search(attribute):
            raise ValueError(
                f"Invalid cookie {name.lower()} {attribute!r}: control characters and "
                "semicolons are not allowed. Remove them."
            )
        parts.append(f"{name}={attribute}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite_value is not None:
        parts.append(f"SameSite={samesite_value}")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


def cookie_header(
    key: str,
    value: str,
    *,
    max_age: int | None,
    path: str | None,
    domain: str | None,
    secure: bool,
    httponly: bool,
    samesite: Literal["lax", "strict", "none"] | None,
) -> tuple[bytes, bytes]:
    """Return a validated ``Set-Cookie`` header as a raw ASGI pair.

    For middleware that writes raw headers (sessions, CSRF). ``max_age=0``
    deletes the cookie the way :meth:`Response.delete_cookie` does.
    """
    expires = _COOKIE_EPOCH if max_age == 0 else None
    text = format_cookie(
        key,
        "" if max_age == 0 else value,
        max_age=max_age,
        expires=expires,
        path=path,
        domain=domain,
        secure=secure,
        httponly=httponly,
        samesite=samesite,
    )
    return b"set-cookie", text.encode("latin-1")


def _cookie_date(expires: datetime | float) -> str:
    import email.utils  # imported late (~5 ms): only dates need it

    if isinstance(expires, datetime):
        moment = expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC)
        return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)
    return email.utils.formatdate(time.time() + float(expires), usegmt=True)


Response._derive_fast_path()


class HTMLResponse(Response):
    """A ``text/html; charset=utf-8`` response."""

    media_type = "text/html"


class PlainTextResponse(Response):
    """A ``text/plain; charset=utf-8`` response."""

    media_type = "text/plain"


class JSONResponse(Response):
    """A JSON response, encoded by covet's JSON encoder (orjson when installed).

    See :mod:`covet._json` for the types accepted: besides dicts, lists and
    scalars, datetimes, UUIDs, Decimals, Enums and dataclasses.

    Args:
        content: The data to encode.
        status_code: The HTTP status code.
        headers: Extra headers.
        media_type: Overrides ``application/json`` (e.g. ``application/problem+json``).
        background: A task to run after the response is sent.

    Raises:
        TypeError: If ``content`` holds a value with no JSON form.
    """

    media_type = "application/json"

    if TYPE_CHECKING:  # the signature (content is required); at runtime Response.__init__ runs

        def __init__(
            self,
            content: Any,
            status_code: int = 200,
            headers: Mapping[str, str] | None = None,
            media_type: str | None = None,
            background: BackgroundTask | None = None,
        ) -> None: ...

        def render(self, content: Any) -> bytes:
            """Encode ``content`` as compact UTF-8 JSON."""

    else:
        # render(content) is covet's JSON encoder itself: one call less per response.
        render = staticmethod(_json.dumps)


class RedirectResponse(Response):
    """Redirect the client to ``url`` (307 by default, which keeps the method and body).

    The URL is percent-encoded where needed (spaces, non-ASCII, control
    characters), so it cannot inject headers.

    Args:
        url: Where to redirect: absolute, or relative to the request URL.
        status_code: 301, 302, 303, 307 or 308.
        headers: Extra headers.
        background: A task to run after the response is sent.
    """

    def __init__(
        self,
        url: str | URL,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(
            content=b"", status_code=status_code, headers=headers, background=background
        )
        self.headers["location"] = quote(str(url), safe=":/%#?=@[]!$&'()*+,;~")


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


# -- files ----------------------------------------------------------------------------------------


def _parse_http_date(value: str) -> float | None:
    import email.utils  # imported late (~5 ms): only dates need it

    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _etag_list(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def _weak_match(header: str, etag: str) -> bool:
    bare = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == bare for tag in _etag_list(header))


def _strong_match(header: str, etag: str) -> bool:
    if etag.startswith("W/"):
        return False
    return any(tag == "*" or tag == etag for tag in _etag_list(header))


def _parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Args:
        header: The ``Range`` header value, e.g. ``"bytes=0-99,-500"``.
        size: The length of the full representation.

    Returns:
        ``None`` when the header must be ignored (malformed, another unit, or more
        than 200 ranges); otherwise the satisfiable ranges as
        inclusive ``(first, last)`` pairs, sorted and with overlapping or adjacent
        ranges merged. An empty list means none is satisfiable (416).
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    elements = [element.strip() for element in spec.split(",")]
    elements = [element for element in elements if element]
    if not elements or len(elements) > _MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for element in elements:
        first_text, dash, last_text = element.partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        if not dash or not (first_text.isdigit() or last_text.isdigit()):
            return None
        if (first_text and not first_text.isascii()) or (last_text and not last_text.isascii()):
            return None
        if not first_text:
            # Suffix range: the last N bytes.
            if not last_text.isdigit():
                return None
            length = int(last_text)
            if length > 0 and size > 0:
                ranges.append((max(size - length, 0), size - 1))
            continue
        if not first_text.isdigit() or (last_text and not last_text.isdigit()):
            return None
        first = int(first_text)
        if last_text and int(last_text) < first:
            return None  # RFC 9110 14.1.1: an invalid range-spec makes the header invalid.
        if first < size:
            last = int(last_text) if last_text else size - 1
            ranges.append((first, min(last, size - 1)))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for first, last in ranges:
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


class FileResponse(Response):
    """Send a file from disk, with validators, conditional requests and byte ranges.

    The response carries ``Content-Length``, ``Last-Modified``, a strong ``ETag``
    (from the modification time and size) and ``Accept-Ranges: bytes``. For a
    ``200`` response it answers conditional requests: ``If-Match`` and
    ``If-Unmodified-Since`` (412), ``If-None-Match`` and ``If-Modified-Since``
    (304), and ``Range`` (206, ``multipart/byteranges`` for several ranges, 416
    when none is satisfiable) guarded by ``If-Range``. A malformed ``Range``, or
    one with more than 200 ranges, is ignored.

    The file is read in chunks in a worker thread, or handed to the server when it
    supports the ``http.response.pathsend`` extension.

    Args:
        path: The file to send.
        status_code: The HTTP status code; conditional requests and ranges only
            apply to ``200``.
        headers: Extra headers.
        media_type: The ``Content-Type``; guessed from ``filename`` or ``path`` if None.
        background: A task to run after the response is sent.
        filename: Adds ``Content-Disposition`` with this name (RFC 6266, with an
            RFC 5987 ``filename*`` for non-ASCII names).
        stat_result: An ``os.stat()`` result for ``path`` if you already have one.
        content_disposition_type: ``"attachment"`` (download) or ``"inline"``.

    Raises:
        FileNotFoundError: When sent, if ``path`` does not exist (any more).
        IsADirectoryError: When sent, if ``path`` is not a regular file.
    """

    chunk_size = _CHUNK_SIZE

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        content_disposition_type: Literal["attachment", "inline"] = "attachment",
    ) -> None:
        self.path = os.fspath(path)
        self.status_code = status_code
        self.filename = filename
        self.background = background
        self.media_type = media_type or _guess_media_type(filename or self.path)
        self.init_headers(headers)
        self._given = {key.lower() for key in headers} if headers else set()
        if filename is not None:
            self.headers.setdefault(
                "content-disposition", _content_disposition(content_disposition_type, filename)
            )
        self.stat_result = stat_result
        if stat_result is not None:
            self._set_stat_headers(stat_result)

    def _set_stat_headers(self, stat_result: os.stat_result) -> None:
        import email.utils  # imported late (~5 ms): only dates need it

        values = {
            "content-length": str(stat_result.st_size),
            "last-modified": email.utils.formatdate(stat_result.st_mtime, usegmt=True),
            "etag": f'"{stat_result.st_mtime_ns:x}-{stat_result.st_size:x}"',
            "accept-ranges": "bytes",
        }
        for name, value in values.items():
            if name not in self._given:
                self.headers[name] = value

    def _open(self) -> tuple[io.BufferedReader | None, os.stat_result]:
        """Open and stat the file (called in a worker thread)."""
        import pathlib  # imported late: only file responses need it

        try:
            handle = pathlib.Path(self.path).open("rb")  # noqa: SIM115 - closed by __call__
        except FileNotFoundError:
            raise FileNotFoundError(
                f"File at path {self.path!r} does not exist. Check the path, or catch "
                "FileNotFoundError and return a 404."
            ) from None
        except IsADirectoryError:
            raise IsADirectoryError(
                f"Path {self.path!r} is a directory, not a file. Pass the path of a file."
            ) from None
        try:
            result = os.fstat(handle.fileno())
            if not stat.S_ISREG(result.st_mode):
                raise IsADirectoryError(
                    f"Path {self.path!r} is not a regular file. Pass the path of a file."
                )
        except BaseException:
            handle.close()
            raise
        return handle, result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the file, or a 304/206/412/416 answer to a conditional request."""
        handle, result = await asyncio.to_thread(self._open)
        try:
            await self._respond(scope, receive, _guarded(send), handle, result)
        except _ClientGoneError:
            pass
        finally:
            if handle is not None:
                await asyncio.to_thread(handle.close)
        if self.background is not None:
            await self.background()

    async def _respond(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handle: io.BufferedReader | None,
        result: os.stat_result,
    ) -> None:
        # Trust the fstat() of the open file over a stat_result taken earlier.
        self.stat_result = result
        self._set_stat_headers(result)
        size = result.st_size
        method = scope.get("method", "GET")
        request_headers = _request_headers(scope)
        if self.status_code == 200:
            status = self._precondition_status(request_headers, method)
            if status is not None:
                await self._send_bodiless(scope, send, status)
                return
            range_header = request_headers.get("range")
            if range_header is not None and method == "GET" and self._if_range_ok(request_headers):
                ranges = _parse_range(range_header, size)
                if ranges == []:
                    await self._send_unsatisfiable(scope, send, size)
                    return
                if ranges is not None:
                    await self._send_ranges(scope, receive, send, handle, ranges, size)
                    return
        self.headers["content-length"] = str(size)
        await send(self._start_message(scope))
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if "http.response.pathsend" in scope.get("extensions", {}):
            path = await asyncio.to_thread(os.path.abspath, self.path)  # getcwd() is a syscall
            await send({"type": "http.response.pathsend", "path": path})
            return
        assert handle is not None  # noqa: S101 - _open() always returns a handle
        await self._send_file(send, receive, handle, [(0, size - 1)] if size else [], None)

    def _precondition_status(self, headers: dict[str, str], method: str) -> int | None:
        """Evaluate the preconditions of RFC 9110 section 13.2.2, in its order."""
        etag = self.headers["etag"]
        mtime = math.floor(self.stat_result.st_mtime) if self.stat_result else 0
        if_match = headers.get("if-match")
        if if_match is not None:
            if not _strong_match(if_match, etag):
                return 412
        else:
            since = headers.get("if-unmodified-since")
            if since is not None:
                moment = _parse_http_date(since)
                if moment is not None and mtime > moment:
                    return 412
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None:
            if _weak_match(if_none_match, etag):
                return 304 if method in ("GET", "HEAD") else 412
        elif method in ("GET", "HEAD"):
            since = headers.get("if-modified-since")
            if since is not None:
                moment = _parse_http_date(since)
                if moment is not None and mtime <= moment:
                    return 304
        return None

    def _if_range_ok(self, headers: dict[str, str]) -> bool:
        if_range = headers.get("if-range")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith(('"', "W/")):
            return _strong_match(if_range, self.headers["etag"]) and if_range != "*"
        moment = _parse_http_date(if_range)
        stat_result = self.stat_result
        return (
            moment is not None
            and stat_result is not None
            and (math.floor(stat_result.st_mtime) == moment)
        )

    async def _send_bodiless(self, scope: Scope, send: Send, status: int) -> None:
        if status == 304:
            # RFC 9110 15.4.5: keep only the fields a cache needs to update its entry.
            keep = {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
            keep.add(b"last-modified")
            raw = [(k, v) for k, v in self.headers.raw if k in keep]
        else:
            raw = [(k, v) for k, v in self.headers.raw if k not in _REPRESENTATION_HEADERS]
            raw.append((b"content-length", b"0"))
        self.headers.raw[:] = raw
        await send(self._start_message(scope, status=status))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_unsatisfiable(self, scope: Scope, send: Send, size: int) -> None:
        raw = [(k, v) for k, v in self.headers.raw if k not in _REPRESENTATION_HEADERS]
        raw.append((b"content-range", f"bytes */{size}".encode("latin-1")))
        raw.append((b"content-length", b"0"))
        self.headers.raw[:] = raw
        await send(self._start_message(scope, status=416))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_ranges(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handle: io.BufferedReader | None,
        ranges: list[tuple[int, int]],
        size: int,
    ) -> None:
        assert handle is not None  # noqa: S101 - _open() always returns a handle
        if len(ranges) == 1:
            first, last = ranges[0]
            self.headers["content-range"] = f"bytes {first}-{last}/{size}"
            self.headers["content-length"] = str(last - first + 1)
            await send(self._start_message(scope, status=206))
            await self._send_file(send, receive, handle, ranges, None)
            return
        import secrets  # imported late: only multi-range answers need it

        boundary = secrets.token_hex(16)
        part_type = self.headers.get("content-type") or "application/octet-stream"
        headers = [
            (
                f"--{boundary}\r\nContent-Type: {part_type}\r\n"
                f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
            ).encode("latin-1")
            for first, last in ranges
        ]
        trailer = f"--{boundary}--\r\n".encode("latin-1")
        length = sum(
            len(h) + (last - first + 1) + 2
            for h, (first, last) in zip(headers, ranges, strict=True)
        )
        self.headers["content-type"] = f"multipart/byteranges; boundary={boundary}"
        self.headers["content-length"] = str(length + len(trailer))
        await send(self._start_message(scope, status=206))
        await self._send_file(send, receive, handle, ranges, (headers, trailer))

    async def _send_file(
        self,
        send: Send,
        receive: Receive,
        handle: io.BufferedReader,
        ranges: list[tuple[int, int]],
        multipart: tuple[list[bytes], bytes] | None,
    ) -> None:
        chunk_size = self.chunk_size

        async def body() -> AsyncIterator[None]:
            for index, (first, last) in enumerate(ranges):
                if multipart is not None:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": multipart[0][index],
                            "more_body": True,
                        }
                    )
                await asyncio.to_thread(handle.seek, first)
                remaining = last - first + 1
                while remaining > 0:
                    data = await asyncio.to_thread(handle.read, min(chunk_size, remaining))
                    if not data:
                        # The file shrank while being sent; the length promised can't be met.
                        raise _TruncatedFileError(
                            f"File {self.path!r} got shorter while being sent; the response "
                            "is incomplete."
                        )
                    remaining -= len(data)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                    yield None
                if multipart is not None:
                    await send({"type": "http.response.body", "body": b"\r\n", "more_body": True})
            final = multipart[1] if multipart is not None else b""
            await send({"type": "http.response.body", "body": final, "more_body": False})

        await _until_disconnected(body(), receive)


_REPRESENTATION_HEADERS = frozenset(
    {b"content-length", b"content-type", b"content-range", b"content-disposition"}
)


def _request_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        # Combine repeated fields as RFC 9110 5.3 allows for list-valued ones.
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _content_disposition(disposition_type: str, filename: str) -> str:
    if any(ch in filename for ch in "\r\n\x00"):
        raise ValueError(f"Invalid filename {filename!r}: CR, LF and NUL are not allowed.")
    quoted = quote(filename, safe="")
    if quoted != filename or '"' in filename or "\\" in filename:
        # RFC 6266 4.3: a plain ASCII fallback plus the exact name as RFC 5987 filename*.
        fallback = filename.encode("ascii", "replace").decode("ascii").replace("\\", "_")
        fallback = fallback.replace('"', "_")
        fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F else "_" for ch in fallback)
        return f"{disposition_type}; filename=\"{fallback}\"; filename*=utf-8''{quoted}"
    return f'{disposition_type}; filename="{filename}"'
