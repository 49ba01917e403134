"""The incoming HTTP request: ``Request`` and its websocket-shared base ``HTTPConnection``.

Everything is lazy: constructing a :class:`Request` only stores the scope and
the ``receive`` callable, and each property parses its part of the scope on
first use and caches it. The body is read only when asked for, and always
under the size limits of :class:`RequestLimits` (:attr:`Request.limits`: those
of the matched route, else :data:`DEFAULT_LIMITS`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import TYPE_CHECKING, Any

from covet._json import loads
from covet.datastructures import (
    URL,
    Address,
    FormData,
    Headers,
    QueryParams,
    State,
    _quote_path,
    _scope_origin,
)
from covet.exceptions import CovetError, HTTPException, ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.auth.models import AbstractUser, AnonymousUser
    from covet.sessions.stores import Session
    from covet.types import Message, Receive, Scope

__all__ = (
    "DEFAULT_LIMITS",
    "ClientDisconnect",
    "HTTPConnection",
    "Request",
    "RequestLimits",
    "StreamConsumedError",
    "check_json_items",
    "parse_cookies",
)

_BOM = b"\xef\xbb\xbf"
_COOKIE_ESCAPE = re.compile(r"\\(?:([0-7]{3})|(.))")
_UNSET: Any = object()


@dataclasses.dataclass(frozen=True, slots=True)
class RequestLimits:
    """Size and count limits applied while reading a request body.

    Every limit that is hit answers ``413 Content Too Large``; nothing is
    buffered past a limit. Set them per app with ``Covet(limits=...)`` and per
    route with ``@app.post(..., limits=...)``; ``dataclasses.replace()`` derives
    one set from another.

    Attributes:
        max_body_size: Bytes read by ``body()``, ``stream()`` and urlencoded ``form()``.
        max_json_size: Bytes read by ``json()``.
        max_json_items: Commas and opening brackets in a JSON body (an upper bound
            on its values, strings included, counted in about a millisecond per
            MiB). Decoding costs about a microsecond per value, on the event
            loop, so this keeps one request from stalling every other (413).
        max_multipart_size: Bytes of a whole ``multipart/form-data`` body.
        max_part_size: Bytes of one non-file multipart part.
        max_fields: Number of non-file form fields.
        max_files: Number of uploaded files.
        max_part_header_size: Bytes of one multipart part header line.
        max_part_headers: Number of headers of one multipart part.
        max_boundary_length: Bytes of the multipart boundary (longer is a 400).
        spool_max_size: Bytes of one upload kept in memory before it moves to a temporary file.
    """

    max_body_size: int = 2_621_440
    max_json_size: int = 2_621_440
    max_json_items: int = 100_000
    max_multipart_size: int = 10_485_760
    max_part_size: int = 1_048_576
    max_fields: int = 1000
    max_files: int = 100
    max_part_header_size: int = 4224
    max_part_headers: int = 8
    max_boundary_length: int = 256
    spool_max_size: int = 1_048_576

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ImproperlyConfigured(
                    f"RequestLimits.{field.name} must be a positive int, got {value!r}. "
                    "Pass a number of bytes (or items) greater than zero."
                )


DEFAULT_LIMITS = RequestLimits()
"""The limits used when neither the app nor the route sets any (see DEFAULTS.md)."""


class ClientDisconnect(CovetError):  # noqa: N818 - the name users know from Starlette
    """The client went away before the request body was fully received.

    There is nobody left to answer, so the app sends no response for it.
    """


class StreamConsumedError(CovetError, RuntimeError):
    """The request body was already read by ``stream()`` and cannot be read again."""


def _unquote_cookie(value: str) -> str:
    """Undo the double quotes and backslash/octal escapes of a quoted cookie value."""
    value = value[1:-1]
    if "\\" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        octal, char = match.groups()
        return chr(int(octal, 8)) if octal else char

    value = _COOKIE_ESCAPE.sub(replace, value)
    try:
        # Python's own http.cookies escapes UTF-8 bytes as octal: put the bytes back together.
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def parse_cookies(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header the way browsers send it, never raising.

    Pairs are split on ``;`` and on the first ``=``; whitespace around names
    and values is dropped, and a quoted value is unquoted. A piece without
    ``=`` is a nameless cookie stored under ``""`` (RFC 6265bis section 5.6).
    When a name repeats, the first value wins: browsers list the cookie with
    the most specific path first (RFC 6265 section 5.4).

    Args:
        header: The ``Cookie`` header value.

    Returns:
        A dict of cookie names to values.
    """
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        name, sep, value = chunk.partition("=")
        if not sep:
            name, value = "", name
        name = name.strip()
        value = value.strip()
        if not name and not value:
            continue
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = _unquote_cookie(value)
        if name not in cookies:
            cookies[name] = value
    return cookies


#: ``scope[PARSED_FORM_KEY] = (receive, limits, form)``: a middleware that parsed an
#: urlencoded body and hands it on through ``receive`` (see :meth:`Request.form`).
PARSED_FORM_KEY = "covet.parsed_form"


async def _no_receive() -> Message:
    raise ImproperlyConfigured(
        "This request has no receive channel, so its body cannot be read. "
        "Pass the ASGI receive callable: Request(scope, receive)."
    )


class HTTPConnection:
    """What an HTTP request and a websocket have in common: the scope, parsed lazily.

    Args:
        scope: The ASGI connection scope.
        receive: The ASGI receive callable.
    """

    # Lazily computed values live as class-level defaults, so constructing a connection
    # (once per request, on the hot path) only stores the scope and the receive callable.
    _url: URL | None = None
    _base_url: URL | None = None
    _headers: Headers | None = None
    _query_params: QueryParams | None = None
    _cookies: dict[str, str] | None = None
    _state: State | None = None

    def __init__(self, scope: Scope, receive: Receive | None = None) -> None:
        self.scope = scope
        self._receive: Receive = _no_receive if receive is None else receive

    @property
    def app(self) -> Any:
        """Return the application serving this connection (``scope["app"]``)."""
        try:
            return self.scope["app"]
        except KeyError:
            raise ImproperlyConfigured(
                "scope['app'] is not set, so request.app is unavailable. "
                "Serve the request through a covet.Covet application."
            ) from None

    @property
    def url(self) -> URL:
        """Return the full URL, honouring ``root_path`` and the ``Host`` header."""
        if self._url is None:
            self._url = URL(scope=self.scope)
        return self._url

    @property
    def base_url(self) -> URL:
        """Return the URL of the application root, with a trailing slash."""
        if self._base_url is None:
            scope = self.scope
            root_path: str = scope.get("app_root_path", scope.get("root_path", ""))
            self._base_url = URL(_scope_origin(scope) + _quote_path(root_path.rstrip("/")) + "/")
        return self._base_url

    @property
    def headers(self) -> Headers:
        """Return the request headers: case-insensitive and multi-valued."""
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        """Return the query string parameters as an immutable multidict."""
        if self._query_params is None:
            self._query_params = QueryParams(self.scope.get("query_string", b""))
        return self._query_params

    @property
    def path_params(self) -> dict[str, Any]:
        """Return the converted path parameters of the matched route."""
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @property
    def cookies(self) -> dict[str, str]:
        """Return the request cookies (see :func:`parse_cookies`), from every ``Cookie`` header."""
        if self._cookies is None:
            # HTTP/2 and HTTP/3 may split cookies over several header fields (RFC 9113 8.2.3).
            raw = [value for key, value in self.headers.raw if key == b"cookie"]
            if not raw:
                self._cookies = {}
            else:
                joined = b"; ".join(raw)
                try:
                    text = joined.decode("utf-8")
                except UnicodeDecodeError:
                    text = joined.decode("latin-1")
                self._cookies = parse_cookies(text)
        return self._cookies

    @property
    def client(self) -> Address | None:
        """Return the client's ``(host, port)``, or ``None`` when the server does not know it."""
        client = self.scope.get("client")
        if not client:
            return None
        return Address(client[0], client[1])

    @property
    def state(self) -> State:
        """Return the per-request state bag, stored in ``scope["state"]``."""
        if self._state is None:
            state = self.scope.setdefault("state", {})
            self._state = state if isinstance(state, State) else State(state)
        return self._state

    @property
    def session(self) -> Session:
        """Return the session set up by the session middleware.

        Raises:
            ImproperlyConfigured: If no session middleware is installed.
        """
        try:
            session: Session = self.scope["session"]
        except KeyError:
            raise ImproperlyConfigured(
                "request.session needs SessionMiddleware, which is not installed. "
                "Add it with app.add_middleware(SessionMiddleware, secret_key=...)."
            ) from None
        return session

    @property
    def user(self) -> AbstractUser | AnonymousUser:
        """Return the user set by the authentication middleware.

        The logged-in user is an instance of the project's user model (a
        subclass of :class:`~covet.auth.AbstractUser`); check
        ``request.user.is_authenticated`` before using its fields.

        Raises:
            ImproperlyConfigured: If no middleware has set ``scope["user"]``.
        """
        try:
            user: AbstractUser | AnonymousUser = self.scope["user"]
        except KeyError:
            raise ImproperlyConfigured(
                "request.user needs an authentication middleware, and none set scope['user']. "
                "Add SessionMiddleware and covet.auth's middleware with app.add_middleware()."
            ) from None
        return user

    def url_for(self, name: str, /, **params: Any) -> URL:
        """Return the absolute URL of the route called ``name``.

        Args:
            name: The route name.
            **params: The route's path parameters.

        Returns:
            The URL, on the same scheme and host as this request.
        """
        path = str(self.app.url_path_for(name, **params))
        return URL(str(self.base_url).rstrip("/") + path)


class Request(HTTPConnection):
    """An incoming HTTP request.

    The body can be read once, as a whole (``body()``, ``json()``,
    ``form()``, which cache it) or as a stream (``stream()``, which does not).

    Args:
        scope: The ASGI ``http`` scope.
        receive: The ASGI receive callable.
    """

    _body: bytes | None = None
    _consumed = False
    _complete = False
    _disconnected = False
    _pending: Message | None = None
    _form: FormData | None = None
    _json: Any = _UNSET

    @property
    def method(self) -> str:
        """Return the request method, for example ``"GET"``."""
        method: str = self.scope["method"]
        return method

    @property
    def receive(self) -> Receive:
        """Return the ASGI receive callable."""
        return self._receive

    @property
    def limits(self) -> RequestLimits:
        """Return the body limits in force.

        Those of the matched route (its own, else its router's, else the
        app's), unless ``scope["covet.limits"]`` overrides them (middleware
        that reads a body before routing sets it); :data:`DEFAULT_LIMITS`
        when no route matched.
        """
        scope = self.scope
        limits: RequestLimits | None = scope.get("covet.limits")
        if limits is None:
            # A covet Route; the route is looked up per call, not per request.
            limits = getattr(scope.get("route"), "effective_limits", None)
        return DEFAULT_LIMITS if limits is None else limits

    def _check_content_length(self, limit: int, setting: str) -> None:
        # The scope's own list (what request.headers wraps), without building the view.
        values = [value for key, value in self.scope["headers"] if key == b"content-length"]
        if not values:
            return
        # "Content-Length: 5, 5" and repeated identical headers are allowed (RFC 9110 8.6).
        numbers = {part.strip() for value in values for part in value.split(b",")}
        if len(numbers) != 1:
            raise HTTPException(
                400, f"Conflicting Content-Length values {b', '.join(values).decode('latin-1')!r}."
            )
        number = numbers.pop()
        if not number.isdigit():
            raise HTTPException(
                400,
                f"Invalid Content-Length {number.decode('latin-1')!r}. "
                "Send the body size as a non-negative integer.",
            )
        digits = number.lstrip(b"0")
        if len(digits) > 19 or int(number) > limit:  # never int() a 1000-digit header
            raise self._refuse_body(
                _too_large(limit, setting, int(digits) if len(digits) <= 19 else None)
            )

    async def _next_chunk(self) -> tuple[bytes, bool]:
        """Return the next body chunk and whether more follow."""
        message = self._pending
        if message is None:
            message = await self._receive()
        else:
            self._pending = None
        while True:
            kind = message["type"]
            if kind == "http.request":
                more: bool = message.get("more_body", False)
                if not more:
                    self._complete = True
                return message.get("body", b""), more
            if kind == "http.disconnect":
                self._disconnected = True
                raise ClientDisconnect("The client disconnected while sending the request body.")
            message = await self._receive()

    def _refuse_body(self, exc: HTTPException) -> HTTPException:
        """Make the error response close an HTTP/1 connection whose body is left unread.

        Otherwise the server keeps the connection alive and reads (and throws
        away) the rest of the body, which may be gigabytes or, chunked, endless.
        ``Connection: close`` makes uvicorn close the connection after the
        response instead. HTTP/2 and HTTP/3 forbid the header and can reset a
        single stream, so it is only added for HTTP/1.x.
        """
        if not self._complete and self.scope.get("http_version", "1.1") in ("1.0", "1.1"):
            headers = exc.headers if exc.headers is not None else {}
            if not any(name.lower() == "connection" for name in headers):
                headers["Connection"] = "close"
            exc.headers = headers
        return exc

    def _start_reading(self, limit: int, setting: str) -> None:
        if self._consumed:
            raise StreamConsumedError(
                "The request body was already consumed by request.stream() (or by a read that "
                "failed part-way). Call body() first if you need the body more than once."
            )
        self._consumed = True
        self._check_content_length(limit, setting)

    async def _chunks(self, limit: int, setting: str) -> AsyncIterator[bytes]:
        if self._body is not None:
            if self._body:
                yield self._body
            return
        self._start_reading(limit, setting)
        received = 0
        more = True
        while more:
            chunk, more = await self._next_chunk()
            if chunk:
                received += len(chunk)
                if received > limit:
                    raise self._refuse_body(_too_large(limit, setting))
                yield chunk

    async def _read(self, limit: int, setting: str) -> bytes:
        if self._body is not None:
            return self._body
        self._start_reading(limit, setting)
        chunk, more = await self._next_chunk()
        received = len(chunk)
        if received > limit:
            raise self._refuse_body(_too_large(limit, setting))
        if more:
            chunks = [chunk]
            while more:
                chunk, more = await self._next_chunk()
                received += len(chunk)
                if received > limit:
                    raise self._refuse_body(_too_large(limit, setting))
                chunks.append(chunk)
            chunk = b"".join(chunks)
        self._body = chunk
        return chunk

    def stream(self) -> AsyncIterator[bytes]:
        """Iterate over the body as it arrives, without keeping it.

        After ``body()`` (or ``json()``/``form()``) it replays the cached body.
        Otherwise the stream can be consumed only once. ``max_body_size``
        applies; raise it on routes that take large uploads.

        Returns:
            An async iterator of non-empty ``bytes`` chunks.

        Raises:
            StreamConsumedError: If the body was already streamed.
            HTTPException: 413 past ``max_body_size``; 400 for a bad Content-Length.
            ClientDisconnect: If the client goes away mid-body.
        """
        return self._chunks(self.limits.max_body_size, "max_body_size")

    async def body(self) -> bytes:
        """Read the whole body (at most ``max_body_size`` bytes) and cache it.

        Returns:
            The body.

        Raises:
            StreamConsumedError: If the body was already streamed.
            HTTPException: 413 past ``max_body_size``; 400 for a bad Content-Length.
            ClientDisconnect: If the client goes away mid-body.
        """
        if self._body is not None:
            return self._body
        return await self._read(self.limits.max_body_size, "max_body_size")

    async def json(self) -> Any:
        """Parse the body as JSON (at most ``max_json_size`` bytes) and cache the result.

        The ``Content-Type`` is not checked. The body must be UTF-8; a leading
        byte order mark is ignored.

        Returns:
            The decoded document.

        Raises:
            HTTPException: 400 for an empty, non-UTF-8 or malformed body (the
                detail gives the line and column); 413 past ``max_json_size``.
        """
        if self._json is _UNSET:
            body = await self._read(self.limits.max_json_size, "max_json_size")
            check_json_items(body, self.limits.max_json_items)
            self._json = _decode_json(body)
        return self._json

    async def form(self) -> FormData:
        """Parse an urlencoded or multipart form body and cache the result.

        A request without ``Content-Type`` and without a body gives an empty
        form. ``await request.close()`` (or ``await form.close()``) closes the
        uploaded files, deleting any that were spooled to disk.

        Returns:
            The form fields; files are :class:`~covet.datastructures.UploadFile`.

        Raises:
            HTTPException: 415 for any other content type; 400 for a malformed
                body or an unknown charset; 413 when a limit is hit.
        """
        if self._form is None:
            parsed = self.scope.get(PARSED_FORM_KEY)
            # A form a middleware already parsed from this body (the CSRF check reads
            # the token from it), reused only when this request reads exactly what that
            # middleware hands on (its receive, not a wrapper that might change the body)
            # under the same limits: then parsing again could only give the same fields.
            if parsed is not None and parsed[0] is self._receive and parsed[1] is self.limits:
                self._form = parsed[2]
            else:
                self._form = await self._parse_form()
        return self._form

    async def _parse_form(self) -> FormData:
        # Imported on first use: the parsers pull in python-multipart and tempfile, which
        # an app that never reads a form should not pay for at import.
        from covet.formparsers import (
            check_charset,
            parse_content_type,
            parse_multipart,
            parse_urlencoded,
        )

        limits = self.limits
        content_type = self.headers.get("content-type")
        if content_type is None:
            if await self._read(limits.max_body_size, "max_body_size"):
                raise _unsupported_form(content_type)
            return FormData()
        media_type, options = parse_content_type(content_type)
        try:
            charset = check_charset(options.get("charset", "utf-8"))
            if media_type == "application/x-www-form-urlencoded":
                return await parse_urlencoded(
                    self._chunks(limits.max_body_size, "max_body_size"),
                    charset=charset,
                    limits=limits,
                )
            if media_type == "multipart/form-data":
                return await parse_multipart(
                    self._chunks(limits.max_multipart_size, "max_multipart_size"),
                    boundary=options.get("boundary", ""),
                    charset=charset,
                    limits=limits,
                )
            raise _unsupported_form(content_type)
        except HTTPException as exc:
            # A form refused part-way (too many fields, a malformed part) leaves body unread.
            self._refuse_body(exc)
            raise

    async def close(self) -> None:
        """Release what the request holds: close the form's uploaded files."""
        if self._form is not None:
            await self._form.close()

    async def is_disconnected(self) -> bool:
        """Return whether the client has disconnected, without blocking.

        A body message that arrives while checking is kept for the body readers.

        Returns:
            ``True`` once an ``http.disconnect`` has been received.
        """
        if self._disconnected or self._pending is not None:
            return self._disconnected
        task = asyncio.ensure_future(self._receive())
        # One turn of the loop lets a receive() that has a message ready finish.
        await asyncio.sleep(0)
        if not task.done():
            task.cancel()
        try:
            message = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return False
        if message["type"] == "http.disconnect":
            self._disconnected = True
        self._pending = message
        return self._disconnected


def _too_large(limit: int, setting: str, size: int | None = None) -> HTTPException:
    sent = "is larger" if size is None else f"of {size} bytes is larger"
    return HTTPException(
        413, f"Request body {sent} than the {limit}-byte limit ({setting}). Send less data."
    )


def check_json_items(body: bytes, limit: int) -> None:
    """Refuse a JSON body with more than ``limit`` commas and opening brackets.

    Each value of a JSON document costs the decoder about a microsecond, on
    the event loop: 2.5 MiB of ``[],`` is 800,000 lists and a second during
    which no other request is served. Counting separators is a few passes of
    ``bytes.count()`` (about a millisecond per MiB) and bounds the values from
    above; separators inside strings count too, so a document of long texts
    full of commas may need ``max_json_items`` raised.

    Args:
        body: The raw JSON body.
        limit: ``RequestLimits.max_json_items``.

    Raises:
        HTTPException: 413 when the count is past ``limit``.
    """
    # A body shorter than the limit cannot hold more separators than bytes.
    if len(body) <= limit:
        return
    items = body.count(b",") + body.count(b"[") + body.count(b"{")
    if items > limit:
        raise HTTPException(
            413,
            f"JSON body has {items} commas and brackets, more than the {limit} allowed "
            "(max_json_items). Send fewer values per request.",
        )


def _unsupported_form(content_type: str | None) -> HTTPException:
    return HTTPException(
        415,
        f"Cannot parse a form from Content-Type {content_type!r}. "
        "Send application/x-www-form-urlencoded or multipart/form-data.",
    )


def _decode_json(body: bytes) -> Any:
    if body.startswith(_BOM):
        body = body[3:]
    if not body.strip():
        raise HTTPException(400, "Request body is empty. Send a JSON document.")
    try:
        return loads(body)
    except RecursionError:
        raise HTTPException(400, "JSON body is nested too deeply.") from None
    except ValueError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise HTTPException(
                400,
                f"JSON body is not valid UTF-8 (byte {decode_error.start}). "
                "Encode JSON as UTF-8 (RFC 8259).",
            ) from None
        message = str(getattr(exc, "msg", exc)).rstrip(".")
        line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        where = f" at line {line}, column {column}" if line is not None else ""
        raise HTTPException(400, f"Malformed JSON{where}: {message}.") from None
