"""Reject requests whose ``Host`` header is malformed or not on an allowlist.

Applications build absolute URLs (redirects, password-reset links, the
``url_for`` of templates) from the ``Host`` header, so a forged host poisons
caches and e-mails. This middleware checks the header against the RFC 3986
host grammar and an allowlist before the application sees the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from covet._hosts import HostGuard, HostPatterns, find_host, reject_host, split_host

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.types import ASGIApp, Receive, Scope, Send

__all__ = ("TrustedHostMiddleware",)

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class TrustedHostMiddleware:
    """Answer 400 to HTTP requests (and close websockets) with an untrusted ``Host``.

    The ``Host`` value must be a valid ``host[:port]`` (a DNS name, IPv4
    address or bracketed IPv6 address, no userinfo or path), exactly one
    ``Host`` header must be present (RFC 9112 section 3.2), and the host must
    match ``allowed_hosts``. Even with the default ``["*"]`` a malformed host
    is rejected. A websocket with a bad host is closed with code 1008
    (policy violation) before it is accepted, which the server turns into an
    HTTP 403.

    Args:
        app: The ASGI application to wrap.
        allowed_hosts: Host patterns as in Django's ``ALLOWED_HOSTS``:
            ``"example.com"``, ``".example.com"`` (the domain and its
            subdomains), ``"*.example.com"`` (subdomains only) or ``"*"``.
        www_redirect: When the host is not allowed but ``www.<host>`` is,
            redirect (301) to the ``www.`` host instead of answering 400.

    Raises:
        ImproperlyConfigured: If a pattern is malformed.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] = ("*",),
        www_redirect: bool = True,
    ) -> None:
        self.app = app
        self.allowed_hosts = HostPatterns(allowed_hosts)
        self._guard = HostGuard(self.allowed_hosts)
        self.www_redirect = www_redirect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the ``Host`` of HTTP and websocket connections, then call the app."""
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host_value, duplicated = find_host(scope["headers"])
        if not duplicated and self._guard.allows(host_value):
            await self.app(scope, receive, send)
            return
        parsed = None
        if host_value is not None and not duplicated:
            parsed = split_host(host_value.decode("latin-1"))
        if parsed is not None:
            host, port = parsed
            if (
                self.www_redirect
                and kind == "http"
                and not host.startswith(("www.", "["))
                and self.allowed_hosts.match("www." + host)
            ):
                await self._redirect_to_www(scope, send, host, port)
                return
        await reject_host(scope, send)

    async def _redirect_to_www(self, scope: Scope, send: Send, host: str, port: int | None) -> None:
        scheme: str = scope.get("scheme", "http")
        netloc = "www." + host
        if port is not None and port != _DEFAULT_PORTS.get(scheme):
            netloc = f"{netloc}:{port}"
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope.get("path", "/"))
        query: bytes = scope.get("query_string", b"")
        location = f"{scheme}://{netloc}{path}"
        if query:
            location = f"{location}?{query.decode('latin-1')}"
        await send(
            {
                "type": "http.response.start",
                "status": 301,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
