"""Response classes: ASGI callables that send a status, headers and a body.

Every response is an ASGI application: ``await response(scope, receive, send)``.
Handlers usually return one (or a dict, list, str or bytes that covet wraps in
one). All of them answer a ``HEAD`` request with the headers of the ``GET``
response, including the real ``Content-Length``, and no body.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from covet import _json
from covet.cookies import format_cookie
from covet.datastructures import URL, Headers, MutableHeaders, encode_header_value

if TYPE_CHECKING:
    from collections.abc import Mapping, Set

    from covet.background import BackgroundTask
    from covet.types import Message, Receive, Scope, Send

__all__ = (
    "SENDS_PLAIN",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "check_raw_headers",
)

_FORBIDDEN_HEADER_BYTES = re.compile(rb"[\r\n\x00]")
_NO_NAMES: frozenset[bytes] = frozenset()


def _needs_charset(media_type: str) -> bool:
    return "charset=" not in media_type.lower() and (
        media_type.startswith("text/") or media_type == "application/javascript"
    )


@functools.lru_cache(maxsize=256)
def _content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    """Return the encoded, checked ``Content-Type`` header, cached per media type and charset."""
    if _needs_charset(media_type):
        media_type = f"{media_type}; charset={charset}"
    return (b"content-type", encode_header_value(media_type))


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
    """Refuse headers whose names or values hold CR, LF or NUL (header injection).

    Raises:
        ValueError: Naming the first offending header.
    """
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
        # The common case, inline (this runs for every response): the class's media
        # type (fast), a 200 and no extra headers.
        if media_type is None and headers is None and status_code == 200:
            fast = self._fast
            if fast is not None:
                body = self.body = (
                    content.encode() if fast[1] and type(content) is str else self.render(content)
                )
                try:
                    length = _LENGTHS[len(body)]
                except IndexError:  # a body of 4 KiB or more
                    length = None
                self._raw = [length or _length_header(len(body)), fast[0]]
                self._raw_checked = True  # an instance attribute is quicker to read
                return
        if media_type is not None:
            self.media_type = media_type
        self.body = self.render(content)
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
