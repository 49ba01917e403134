"""Cross-site request forgery protection (Django's design).

Every visitor gets a random 32-byte secret, kept in the session when
:class:`~covet.sessions.SessionMiddleware` runs before this
middleware (recommended), else in the ``csrftoken`` cookie. Pages embed a
*token*: the secret masked with a fresh random pad at every call (``token =
mask + (mask XOR secret)``, base64url), so the token changes with every render
and cannot be recovered through compression side channels (BREACH).

Requests with an unsafe method (anything but GET, HEAD, OPTIONS and TRACE) must
then pass, in order:

1. the ``Origin`` header, when sent, names this site or a trusted origin;
2. on HTTPS without ``Origin``, the ``Referer`` names this site or a trusted
   origin over HTTPS;
3. a token from the ``X-CSRF-Token`` header or the ``csrf_token`` form field
   unmasks to the visitor's secret (constant-time comparison). The raw secret
   itself is refused.

A failure answers ``403``. Handlers decorated with :func:`csrf_exempt` and
paths in ``exempt_paths`` are not checked, and their body is never read here.

To find a form field, the middleware reads the body ahead within the route's
limits (``max_body_size``, ``max_multipart_size``: beyond them ``413``) and
hands it to the app unchanged. A multipart body is read only up to the end of
the token field, so an upload placed after ``csrf_input()`` still streams to
the handler; what is read ahead stays in memory up to ``spool_max_size`` and
goes to an anonymous temporary file beyond it. Large uploads from JavaScript
should send the ``X-CSRF-Token`` header, which needs no reading ahead at all.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import tempfile
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from python_multipart.multipart import parse_options_header

from covet.cookies import cookie_header
from covet.datastructures import URL, UploadFile
from covet.errorpages import error_response
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.formparsers import MultipartScanner, parse_content_type
from covet.requests import (
    DEFAULT_LIMITS,
    PARSED_FORM_KEY,
    ClientDisconnect,
    HTTPConnection,
    Request,
    RequestLimits,
)
from covet.routing import Route, Router

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping

    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("CSRFMiddleware", "csrf_exempt", "get_csrf_token", "rotate_csrf_token")

F = TypeVar("F", bound="Callable[..., Any]")

_SECRET_BYTES = 32
_SECRET_LENGTH = 43  # base64url of 32 bytes, unpadded
_TOKEN_LENGTH = 86  # base64url of mask + masked secret (64 bytes), unpadded
_SESSION_KEY = "_csrf_secret"
_SCOPE_KEY = "covet.csrf"
_EXEMPT_ATTRIBUTE = "csrf_exempt"
_ONE_YEAR = 365 * 24 * 60 * 60
_DEFAULT_PORTS = {"http": 80, "https": 443}
_GENERIC_FAILURE = "CSRF verification failed."
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# A token field longer than this cannot hold a token: keep no more of it.
_MAX_TOKEN_FIELD = 256
# The size of the messages that replay a body read ahead.
_REPLAY_CHUNK = 65_536


def csrf_exempt(func: F) -> F:
    """Mark a handler as exempt from CSRF checks (for webhooks signed another way).

    Returns:
        ``func`` itself, marked.
    """
    setattr(func, _EXEMPT_ATTRIBUTE, True)
    return func


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _xor(left: bytes, right: bytes) -> bytes:
    if len(left) != len(right):
        raise ValueError(f"Cannot XOR {len(left)} bytes with {len(right)} bytes.")
    # One big-integer XOR instead of a Python loop over the 32 bytes.
    size = len(left)
    return (int.from_bytes(left, "big") ^ int.from_bytes(right, "big")).to_bytes(size, "big")


def _mask(secret: bytes) -> str:
    """Return a new token for ``secret``: a fresh random pad, then the padded secret."""
    pad = secrets.token_bytes(_SECRET_BYTES)
    return _b64encode(pad + _xor(pad, secret))


def _unmask(token: str) -> bytes | None:
    """Return the secret inside ``token``, or None when it is not a well-formed token."""
    if len(token) != _TOKEN_LENGTH:
        return None
    raw = _b64decode(token)
    if raw is None or len(raw) != 2 * _SECRET_BYTES:
        return None
    return _xor(raw[:_SECRET_BYTES], raw[_SECRET_BYTES:])


def _origin_of(url: str) -> str | None:
    """Return ``scheme://host[:port]`` of ``url`` (default port omitted, lowercased)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class _TrustedOrigins:
    """Origins accepted besides the request's own: exact, or ``scheme://*.domain``."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.wildcards: list[tuple[str, str]] = []  # (scheme, ".domain[:port]")
        for origin in origins:
            scheme, sep, rest = origin.partition("://")
            if not sep or scheme.lower() not in _DEFAULT_PORTS or not rest or "/" in rest:
                raise ImproperlyConfigured(
                    f"CSRFMiddleware trusted origin {origin!r} is not scheme://host[:port]. "
                    "Write it with its scheme, for example 'https://example.com' or "
                    "'https://*.example.com'."
                )
            if rest.startswith("*."):
                self.wildcards.append((scheme.lower(), rest[1:].lower()))
                continue
            normalized = _origin_of(origin)
            if normalized is None:
                raise ImproperlyConfigured(
                    f"CSRFMiddleware trusted origin {origin!r} is not a valid origin. "
                    "Write it as 'https://example.com'."
                )
            self.exact.add(normalized)

    def allows(self, origin: str) -> bool:
        if origin in self.exact:
            return True
        scheme, _, rest = origin.partition("://")
        return any(
            scheme == wanted and rest.endswith(suffix) and len(rest) > len(suffix)
            for wanted, suffix in self.wildcards
        )


class _CSRFState:
    """The CSRF secret of one request; ``scope["covet.csrf"]`` holds it.

    The secret is read (from the session or the cookie) when first needed: a
    safe request whose page takes no token never reads it.
    """

    __slots__ = (
        "_loader",
        "_secret",
        "cookie_token",
        "field_name",
        "header_name",
        "scope",
        "used",
    )

    def __init__(
        self,
        scope: Scope,
        loader: Callable[[Scope], bytes | None] | None,
        field_name: str,
        header_name: str,
    ):
        self.scope = scope
        self._loader = loader
        self._secret: bytes | None = None
        self.field_name = field_name
        self.header_name = header_name
        #: A masked token to store in the cookie with the response, if any.
        self.cookie_token: str | None = None
        #: Whether a token was handed out (the response then varies by cookie).
        self.used = False

    @property
    def secret(self) -> bytes | None:
        loader = self._loader
        if loader is not None:
            self._loader = None
            self._secret = loader(self.scope)
        return self._secret

    def _persist(self, secret: bytes) -> None:
        self._loader = None
        self._secret = secret
        session = self.scope.get("session")
        if isinstance(session, dict):
            session[_SESSION_KEY] = _b64encode(secret)
        # The cookie is also set in session mode: JavaScript reads it for the header.
        self.cookie_token = _mask(secret)

    def get_token(self) -> str:
        """Return a new masked token, creating the secret on first use."""
        secret = self.secret
        if secret is None:
            secret = secrets.token_bytes(_SECRET_BYTES)
            self._persist(secret)
        self.used = True
        return _mask(secret)

    def rotate(self) -> None:
        """Replace the secret: tokens handed out before stop working."""
        self._persist(secrets.token_bytes(_SECRET_BYTES))


def _state(request: HTTPConnection) -> _CSRFState:
    state = request.scope.get(_SCOPE_KEY)
    if not isinstance(state, _CSRFState):
        raise ImproperlyConfigured(
            "CSRF tokens need CSRFMiddleware, which is not installed. "
            "Add it with app.add_middleware(CSRFMiddleware) (after SessionMiddleware)."
        )
    return state


def get_csrf_token(request: HTTPConnection) -> str:
    """Return a CSRF token for ``request`` (a new mask at every call).

    Send it back in the ``X-CSRF-Token`` header or the ``csrf_token`` form field.

    Raises:
        ImproperlyConfigured: If CSRFMiddleware is not installed.
    """
    return _state(request).get_token()


def rotate_csrf_token(request: HTTPConnection) -> None:
    """Give the visitor a new CSRF secret; call it at login.

    Raises:
        ImproperlyConfigured: If CSRFMiddleware is not installed.
    """
    _state(request).rotate()


class _Rejected(Exception):  # noqa: N818 - internal control flow, never escapes
    def __init__(
        self, reason: str, status: int = 403, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = headers

    @classmethod
    def from_http(cls, exc: HTTPException) -> _Rejected:
        """Carry a body reader's 400/413 (and its ``Connection: close``) to the client."""
        return cls(str(exc.detail), exc.status_code, exc.headers)


def _bearer_authenticated(scope: Scope) -> bool:
    """Return whether the auth middleware verified a bearer token for this request.

    ``scope["auth"]`` is covet.auth's ``AuthInfo``; it is read by attribute so
    that this module does not import the auth package.
    """
    return getattr(scope.get("auth"), "method", None) == "bearer"


def _find_route(scope: Scope) -> Route | None:
    """Return the route the app will dispatch ``scope`` to, if covet's router can say.

    The exemption marker is on the handler, and the router picks the handler
    only after the middleware ran, so the middleware asks the router first.
    """
    router = getattr(scope.get("app"), "router", None)
    if not isinstance(router, Router):
        return None
    route = router.resolve(scope)
    return route if isinstance(route, Route) else None


class CSRFMiddleware:
    """Refuse unsafe requests that do not prove they come from this site's own pages.

    Add it after :class:`~covet.sessions.SessionMiddleware` so the
    secret lives in the session (and is replaced when the session is flushed).

    Args:
        app: The ASGI app to wrap.
        cookie_name: The cookie holding a token (always set, readable by
            JavaScript, ``SameSite=Lax``, one year).
        header_name: The request header checked for the token.
        field_name: The form field checked for the token.
        trusted_origins: Other origins allowed to post here, with their
            scheme: ``"https://example.com"`` or ``"https://*.example.com"``.
        safe_methods: Methods that are never checked (they must not change state).
        exempt_paths: Paths not checked: exact paths, or prefixes ending in ``/``.
        exempt_bearer: Skip the check for a request that
            :class:`~covet.auth.AuthenticationMiddleware` (added *before* this
            one) authenticated with ``Authorization: Bearer <token>``. No browser
            adds that header on its own, so such a request cannot be forged by
            another site; API clients have no page to read a token from. A
            missing, wrong or expired token authenticates nothing and is
            checked like any other request. On by default.

    Raises:
        ImproperlyConfigured: For an invalid trusted origin or name.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cookie_name: str = "csrftoken",
        header_name: str = "X-CSRF-Token",
        field_name: str = "csrf_token",
        trusted_origins: Iterable[str] = (),
        safe_methods: Iterable[str] = ("GET", "HEAD", "OPTIONS", "TRACE"),
        exempt_paths: Iterable[str] = (),
        exempt_bearer: bool = True,
    ) -> None:
        self.app = app
        self.exempt_bearer = exempt_bearer
        if isinstance(trusted_origins, str) or isinstance(exempt_paths, str):
            raise ImproperlyConfigured(
                "CSRFMiddleware trusted_origins= and exempt_paths= take lists of strings, "
                "not a single string. Wrap the value in a list."
            )
        # Fail now for a cookie name browsers would reject.
        cookie_header(
            cookie_name,
            "x",
            max_age=1,
            path="/",
            domain=None,
            secure=True,
            httponly=False,
            samesite="lax",
        )
        self.cookie_name = cookie_name
        self.header_name = header_name
        self.field_name = field_name
        self.trusted_origins = _TrustedOrigins(trusted_origins)
        self.safe_methods = frozenset(method.upper() for method in safe_methods)
        paths = list(exempt_paths)
        for path in paths:
            if not path.startswith("/"):
                raise ImproperlyConfigured(
                    f"CSRFMiddleware exempt path {path!r} must start with '/'."
                )
        self.exempt_exact = frozenset(p for p in paths if not p.endswith("/"))
        self.exempt_prefixes = tuple(p for p in paths if p.endswith("/"))

    def _load_secret(self, scope: Scope) -> bytes | None:
        """Return the visitor's secret from the session (or, without one, the cookie)."""
        session = scope.get("session")
        if isinstance(session, dict):
            stored = session.get(_SESSION_KEY)
            if not isinstance(stored, str) or len(stored) != _SECRET_LENGTH:
                return None
            secret = _b64decode(stored)
            return secret if secret is not None and len(secret) == _SECRET_BYTES else None
        cookie = HTTPConnection(scope).cookies.get(self.cookie_name)
        return None if cookie is None else _unmask(cookie)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Check unsafe requests, then run the app and set the CSRF cookie when needed.

        A safe request (GET, HEAD, OPTIONS) is not checked: this layer then
        hands back the app's awaitable without a coroutine of its own, and
        reads the visitor's secret only if the page asks for a token.
        """
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        state = _CSRFState(scope, self._load_secret, self.field_name, self.header_name)
        scope[_SCOPE_KEY] = state
        if scope["method"] in self.safe_methods:
            return self.app(scope, receive, self._cookie_send(scope, send, state))
        return self._checked(scope, receive, send, state)

    async def _checked(self, scope: Scope, receive: Receive, send: Send, state: _CSRFState) -> None:
        """Check an unsafe request (unless exempt), then run the app."""
        connection = HTTPConnection(scope)
        read_ahead: list[UploadFile] = []
        try:
            if not self._path_exempt(scope) and not (
                self.exempt_bearer and _bearer_authenticated(scope)
            ):
                route = _find_route(scope)
                if route is None or not getattr(route.endpoint, _EXEMPT_ATTRIBUTE, False):
                    limits = (
                        route.effective_limits if route is not None else self._app_limits(scope)
                    )
                    try:
                        receive = await self._check(
                            scope, receive, connection, state, limits, read_ahead
                        )
                    except _Rejected as rejected:
                        await self._reject(scope, receive, send, rejected)
                        return
                    except ClientDisconnect:
                        return  # gone before the token was read: nobody to answer
            await self.app(scope, receive, self._cookie_send(scope, send, state))
        finally:
            for spool in read_ahead:
                await spool.close()

    def _cookie_send(self, scope: Scope, send: Send, state: _CSRFState) -> Send:
        """Wrap ``send`` to add the CSRF cookie and ``Vary: Cookie`` when a token was used."""

        def send_with_cookie(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start" and (
                state.used or state.cookie_token is not None
            ):
                headers = list(message.get("headers", ()))
                if state.used:
                    headers.append((b"vary", b"Cookie"))
                if state.cookie_token is not None:
                    headers.append(
                        cookie_header(
                            self.cookie_name,
                            state.cookie_token,
                            max_age=_ONE_YEAR,
                            path="/",
                            domain=None,
                            secure=scope.get("scheme") == "https",
                            httponly=False,
                            samesite="lax",
                        )
                    )
                message["headers"] = headers
            return send(message)

        return send_with_cookie

    def _path_exempt(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return path in self.exempt_exact or path.startswith(self.exempt_prefixes)

    @staticmethod
    def _app_limits(scope: Scope) -> RequestLimits:
        limits = getattr(scope.get("app"), "limits", None)
        return limits if isinstance(limits, RequestLimits) else DEFAULT_LIMITS

    async def _reject(self, scope: Scope, receive: Receive, send: Send, exc: _Rejected) -> None:
        if exc.status != 403:
            text = exc.reason
        elif getattr(scope.get("app"), "debug", False):
            text = f"{_GENERIC_FAILURE} {exc.reason}"
        else:
            text = _GENERIC_FAILURE
        # The same page, JSON or text as any other error, in the client's format.
        response = await error_response(
            HTTPConnection(scope), exc.status, text, headers=exc.headers
        )
        await response(scope, receive, send)

    async def _check(
        self,
        scope: Scope,
        receive: Receive,
        connection: HTTPConnection,
        state: _CSRFState,
        limits: RequestLimits,
        read_ahead: list[UploadFile],
    ) -> Receive:
        """Verify the request; return the receive callable the app must use.

        A body read ahead to find the token is appended to ``read_ahead``; the
        caller closes it once the app is done.
        """
        self._check_origin(scope, connection)
        secret = state.secret
        if secret is None:
            where = "session" if isinstance(scope.get("session"), dict) else "cookie"
            raise _Rejected(
                f"CSRF {where} secret not set: load a page with a form first "
                "(a token is issued by csrf_token() or csrf_input())."
            )
        token = connection.headers.get(self.header_name)
        if token is None:
            token, receive = await self._token_from_form(
                scope, receive, connection, limits, read_ahead
            )
        if token is None:
            raise _Rejected(
                f"CSRF token missing: send it in the {self.header_name!r} header or the "
                f"{self.field_name!r} form field."
            )
        token = token.strip()
        if len(token) == _SECRET_LENGTH:
            raise _Rejected("CSRF token is the unmasked secret; send a token from csrf_token().")
        candidate = _unmask(token)
        if candidate is None:
            raise _Rejected("CSRF token has an invalid length or format.")
        if not hmac.compare_digest(candidate, secret):
            raise _Rejected("CSRF token incorrect (from another session, or rotated).")
        return receive

    def _check_origin(self, scope: Scope, connection: HTTPConnection) -> None:
        url = URL(scope=scope)
        own = _origin_of(f"{url.scheme}://{url.netloc}")
        origin = connection.headers.get("origin")
        if origin is not None:
            normalized = _origin_of(origin)
            if normalized is None or (
                normalized != own and not self.trusted_origins.allows(normalized)
            ):
                raise _Rejected(f"Origin checking failed: {origin!r} is not a trusted origin.")
            return
        if scope.get("scheme") != "https":
            return
        # Without Origin on HTTPS, insist on a Referer from this site (a MITM on
        # plain HTTP could forge it anyway, so only HTTPS is checked; Django does the same).
        referer = connection.headers.get("referer")
        if referer is None:
            raise _Rejected("Referer checking failed: no Referer on a secure request.")
        referer_origin = _origin_of(referer)
        if referer_origin is None:
            raise _Rejected(f"Referer checking failed: {referer!r} is malformed.")
        if not referer_origin.startswith("https://"):
            raise _Rejected(f"Referer checking failed: {referer!r} is not secure.")
        if referer_origin != own and not self.trusted_origins.allows(referer_origin):
            raise _Rejected(
                f"Referer checking failed: {referer!r} does not match a trusted origin."
            )

    async def _token_from_form(
        self,
        scope: Scope,
        receive: Receive,
        connection: HTTPConnection,
        limits: RequestLimits,
        read_ahead: list[UploadFile],
    ) -> tuple[str | None, Receive]:
        """Read the token from a form body; return it and a receive that replays the body.

        The body is read through :class:`~covet.requests.Request`, so the same
        size limits and Content-Length checks apply as when the app reads it.

        Raises:
            _Rejected: 400 or 413 when the body breaks a limit or is malformed.
            ClientDisconnect: The client left while sending the body.
        """
        header = connection.headers.get("content-type") or ""
        content_type = header.split(";")[0].strip().lower()
        if content_type not in _FORM_TYPES:
            return None, receive
        try:
            if content_type == "multipart/form-data":
                return await self._token_from_multipart(header, scope, receive, limits, read_ahead)
            request = Request({**scope, "covet.limits": limits}, receive)
            body = await request.body()
            form = await request.form()
        except HTTPException as exc:
            raise _Rejected.from_http(exc) from exc
        try:
            value = form.get(self.field_name)
        finally:
            await form.close()
        replay = _replay(body, receive)
        # An urlencoded form holds no files: the handler's request.form() may reuse it
        # rather than parse the same body again.
        scope[PARSED_FORM_KEY] = (replay, limits, form)
        return (value if isinstance(value, str) else None), replay

    async def _token_from_multipart(
        self,
        header: str,
        scope: Scope,
        receive: Receive,
        limits: RequestLimits,
        read_ahead: list[UploadFile],
    ) -> tuple[str | None, Receive]:
        """Read a multipart body up to the end of the token field, spooling what was read.

        The rest of the body is not read here: the app receives the spooled
        part again, then the remaining chunks as they arrive, through the same
        size-limited reader.
        """
        finder = _TokenFinder(
            parse_content_type(header)[1].get("boundary", ""), self.field_name, limits
        )
        # The whole multipart body counts against max_multipart_size, as in request.form().
        request = Request(
            {**scope, "covet.limits": replace(limits, max_body_size=limits.max_multipart_size)},
            receive,
        )
        spool = UploadFile(
            tempfile.SpooledTemporaryFile(max_size=limits.spool_max_size),  # type: ignore[arg-type]  # noqa: SIM115 - closed by the caller
            size=0,
        )
        read_ahead.append(spool)
        chunks = aiter(request.stream())
        complete = False
        while not finder.found:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                complete = True
                break
            await spool.write(chunk)
            finder.write(chunk)
        await spool.seek(0)
        return finder.token, _replay_spooled(spool, None if complete else chunks)


class _TokenFinder(MultipartScanner):
    """Watch a multipart body for the token field, keeping nothing else.

    Part headers are bounded by the route's limits (python-multipart enforces
    them) and the token field by :data:`_MAX_TOKEN_FIELD`; file data is skipped.
    """

    def __init__(self, boundary: str, field_name: str, limits: RequestLimits) -> None:
        super().__init__(boundary, limits)
        self.field_name = field_name.encode("utf-8")
        self.found = False
        self.token: str | None = None
        self._in_token = False
        self._data = bytearray()

    def start_part(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Note whether this part is the token field (a field, not a file)."""
        self._data.clear()
        disposition = next((v for k, v in headers if k == b"content-disposition"), b"")
        options = parse_options_header(disposition)[1]
        self._in_token = options.get(b"name") == self.field_name and b"filename" not in options

    def part_data(self, data: bytes, start: int, end: int) -> None:
        """Keep the token field's data, up to one byte past the longest token."""
        if self._in_token and len(self._data) <= _MAX_TOKEN_FIELD:
            self._data.extend(data[start : min(end, start + _MAX_TOKEN_FIELD + 1)])

    def end_part(self) -> None:
        """Take the token from the first token field."""
        if not self._in_token or self.found:
            return
        self.found = True
        raw = bytes(self._data)
        # Too long or not ASCII: no token, and it then fails as malformed.
        self.token = raw.decode("ascii") if len(raw) <= _MAX_TOKEN_FIELD and raw.isascii() else ""


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a receive callable giving ``body`` in one message, then ``receive``'s messages."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _replay_spooled(spool: UploadFile, rest: AsyncIterator[bytes] | None) -> Receive:
    """Return a receive callable giving the spooled body, then the rest of it.

    Args:
        spool: The body read so far, rewound.
        rest: The reader of the rest of the body, or ``None`` when the spool
            holds all of it.
    """
    remaining = spool.size or 0

    async def replay() -> Message:
        nonlocal remaining, rest
        if remaining > 0:
            chunk = await spool.read(min(remaining, _REPLAY_CHUNK))
            remaining -= len(chunk)
            if remaining <= 0 or not chunk:
                remaining = 0
                await spool.close()
                return {"type": "http.request", "body": chunk, "more_body": rest is not None}
            return {"type": "http.request", "body": chunk, "more_body": True}
        if rest is None:
            return {"type": "http.disconnect"}
        try:
            chunk = await anext(rest)
        except StopAsyncIteration:
            rest = None
            return {"type": "http.request", "body": b"", "more_body": False}
        except ClientDisconnect:
            rest = None
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    return replay
