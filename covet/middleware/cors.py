"""Cross-Origin Resource Sharing (CORS) middleware.

Implements the server side of the Fetch standard's CORS protocol
(https://fetch.spec.whatwg.org/#http-cors-protocol): preflight ``OPTIONS``
requests are answered here without reaching the application, and actual
requests from an allowed origin get the ``Access-Control-*`` response headers
that let the browser hand the response to the calling script.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from covet.datastructures import add_vary_to_raw
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("CORSMiddleware",)

_ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# Request headers a browser may send cross-origin without the server listing
# them (Fetch "CORS-safelisted request-header"); Content-Type is in the list
# because browsers still name it in Access-Control-Request-Headers when its
# value is not form/text (e.g. application/json).
_SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ORIGIN_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#@\s]+", re.ASCII)

_VARY_ORIGIN = (b"vary", b"Origin")


def _as_tuple(value: Sequence[str], option: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ImproperlyConfigured(
            f"CORSMiddleware {option} must be a sequence of strings, not the string {value!r}. "
            f"Wrap it in a list: {option}=[{value!r}]."
        )
    return tuple(value)


def _header_value(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class CORSMiddleware:
    r"""Answer CORS preflight requests and add CORS headers to responses.

    Args:
        app: The ASGI application to wrap.
        allow_origins: Origins allowed to read responses, written as
            ``"https://example.com"`` (scheme, host and optional port, no
            path), or ``["*"]`` for any origin. The opaque origin ``"null"``
            (sandboxed iframes, ``file:`` pages) is allowed only when listed.
        allow_origin_regex: A regular expression that allowed origins must
            match in full, for example ``r"https://[a-z0-9-]+\.example\.com"``.
        allow_methods: Methods allowed on cross-origin requests, or ``["*"]``.
        allow_headers: Request headers allowed on cross-origin requests
            beyond the CORS-safelisted ones, or ``["*"]`` for any.
        allow_credentials: Whether browsers may send cookies and HTTP
            authentication and expose the response to the script.
        expose_headers: Response headers the script may read beyond the
            safelisted ones, for example ``["X-Request-ID"]``.
        max_age: Seconds the browser may cache a preflight answer.

    Raises:
        ImproperlyConfigured: If an option is malformed, or if
            ``allow_credentials=True`` is combined with ``allow_origins=["*"]``
            (browsers reject a credentialed response to ``*``; list the
            origins, or use ``allow_origin_regex``, instead).
    """

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Sequence[str] = (),
        allow_origin_regex: str | None = None,
        allow_methods: Sequence[str] = ("GET",),
        allow_headers: Sequence[str] = (),
        allow_credentials: bool = False,
        expose_headers: Sequence[str] = (),
        max_age: int = 600,
    ) -> None:
        origins = _as_tuple(allow_origins, "allow_origins")
        methods = _as_tuple(allow_methods, "allow_methods")
        headers = _as_tuple(allow_headers, "allow_headers")
        exposed = _as_tuple(expose_headers, "expose_headers")
        self.app = app
        self.allow_all_origins = "*" in origins
        if self.allow_all_origins and allow_credentials:
            raise ImproperlyConfigured(
                "CORSMiddleware cannot combine allow_origins=['*'] with allow_credentials=True: "
                "browsers reject credentialed responses to any origin. List the trusted origins "
                "or use allow_origin_regex."
            )
        self.allow_origins = frozenset(self._normalize_origin(o) for o in origins if o != "*")
        self.allow_origin_regex = re.compile(allow_origin_regex) if allow_origin_regex else None
        self.allow_all_methods = "*" in methods
        for name in (*methods, *headers, *exposed):
            if name != "*" and _TOKEN_RE.fullmatch(name) is None:
                raise ImproperlyConfigured(
                    f"CORSMiddleware got {name!r}, which is not a valid HTTP method or header "
                    "name. Use names such as 'POST' or 'X-Requested-With'."
                )
        self.allow_methods = frozenset(m.upper() for m in methods if m != "*")
        self.allow_all_headers = "*" in headers
        self.allow_headers = _SAFELISTED_HEADERS | {h.lower() for h in headers if h != "*"}
        self.allow_credentials = allow_credentials
        if type(max_age) is not int or max_age < 0:
            raise ImproperlyConfigured(
                f"CORSMiddleware max_age must be a non-negative number of seconds, not {max_age!r}."
            )
        # The answer depends on the Origin whenever it is not a blanket "*".
        self._varies = not self.allow_all_origins

        simple: list[tuple[bytes, bytes]] = []
        if allow_credentials:
            simple.append((b"access-control-allow-credentials", b"true"))
        if exposed:
            simple.append((b"access-control-expose-headers", ", ".join(exposed).encode("latin-1")))
        self._simple_headers = tuple(simple)

        preflight: list[tuple[bytes, bytes]] = [
            (b"access-control-max-age", str(max_age).encode("latin-1")),
        ]
        if allow_credentials:
            preflight.append((b"access-control-allow-credentials", b"true"))
        self._preflight_headers = tuple(preflight)
        method_list = _ALL_METHODS if self.allow_all_methods else sorted(self.allow_methods)
        self._allow_methods_value = ", ".join(method_list).encode("latin-1")
        self._allow_headers_value = ", ".join(sorted(self.allow_headers)).encode("latin-1")

    @staticmethod
    def _normalize_origin(origin: str) -> str:
        text = origin.strip().lower().removesuffix("/")
        if text != "null" and _ORIGIN_RE.fullmatch(text) is None:
            raise ImproperlyConfigured(
                f"CORSMiddleware allow_origins entry {origin!r} is not an origin. Write the "
                "scheme, host and optional port only, such as 'https://example.com:8443'."
            )
        return text

    def is_allowed_origin(self, origin: str) -> bool:
        """Return whether ``origin`` (an ``Origin`` header value) is allowed.

        Args:
            origin: The request's ``Origin`` header, for example ``"https://example.com"``.

        Returns:
            ``True`` when the origin is listed, matches the regex, or any origin is allowed.
        """
        if self.allow_all_origins:
            return True
        if origin.lower() in self.allow_origins:
            return True
        return self.allow_origin_regex is not None and bool(
            self.allow_origin_regex.fullmatch(origin)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection: answer preflights, decorate other responses."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_origin = _header_value(scope, b"origin")
        if raw_origin is None:
            if self._varies:
                await self.app(scope, receive, self._vary_only(send))
            else:
                await self.app(scope, receive, send)
            return
        origin = raw_origin.decode("latin-1")
        if scope["method"] == "OPTIONS":
            requested_method = _header_value(scope, b"access-control-request-method")
            if requested_method is not None:
                await self._preflight(scope, send, origin, requested_method)
                return
        await self.app(scope, receive, self._decorate(send, origin))

    def _vary_only(self, send: Send) -> Send:
        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                add_vary_to_raw(headers, b"Origin")
                message["headers"] = headers
            await send(message)

        return send_with_vary

    def _decorate(self, send: Send, origin: str) -> Send:
        allowed = self.is_allowed_origin(origin)
        cors: list[tuple[bytes, bytes]] = []
        if allowed:
            echo = self.allow_credentials or not self.allow_all_origins
            value = origin.encode("latin-1") if echo else b"*"
            cors = [(b"access-control-allow-origin", value), *self._simple_headers]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (key, value)
                    for key, value in message.get("headers", ())
                    if not (cors and key.lower().startswith(b"access-control-"))
                ]
                headers.extend(cors)
                if self._varies:
                    add_vary_to_raw(headers, b"Origin")
                message["headers"] = headers
            await send(message)

        return send_with_cors

    async def _preflight(
        self, scope: Scope, send: Send, origin: str, requested_method: bytes
    ) -> None:
        problems: list[str] = []
        if not self.is_allowed_origin(origin):
            problems.append("origin")
        method = requested_method.decode("latin-1").strip()
        if _TOKEN_RE.fullmatch(method) is None or (
            not self.allow_all_methods and method.upper() not in self.allow_methods
        ):
            problems.append("method")
        requested = _header_value(scope, b"access-control-request-headers") or b""
        requested_names = [
            name for name in requested.decode("latin-1").lower().replace(" ", "").split(",") if name
        ]
        if any(
            _TOKEN_RE.fullmatch(name) is None
            or not (self.allow_all_headers or name in self.allow_headers)
            for name in requested_names
        ):
            problems.append("headers")

        headers: list[tuple[bytes, bytes]] = []
        if self._varies:
            headers.append(_VARY_ORIGIN)
        if problems:
            body = f"Disallowed CORS {', '.join(problems)}.".encode()
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
            status = 400
        else:
            body = b"OK"
            echo = self.allow_credentials or not self.allow_all_origins
            headers.append(
                (b"access-control-allow-origin", origin.encode("latin-1") if echo else b"*")
            )
            headers.append((b"access-control-allow-methods", self._allow_methods_value))
            if self.allow_all_headers:
                # Echo the request instead of "*": browsers ignore a "*" wildcard
                # on credentialed requests, and Authorization never matches it.
                allow_headers = ", ".join(requested_names).encode("latin-1")
            else:
                allow_headers = self._allow_headers_value
            if allow_headers:
                headers.append((b"access-control-allow-headers", allow_headers))
            headers.extend(self._preflight_headers)
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
            status = 200
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
