"""A global rate limit for every HTTP request of the app.

``RateLimitMiddleware`` counts each request against a key (by default the
client IP address) and answers ``429 Too Many Requests`` with ``Retry-After``
once the key is over the limit. Every limited response carries
``RateLimit-*`` and ``X-RateLimit-*`` headers. Limit single routes more
strictly with :func:`covet.ratelimit.rate_limit`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from covet.errorpages import error_response
from covet.exceptions import ImproperlyConfigured
from covet.ratelimit.limiter import (
    Algorithm,
    KeyFunction,
    MemoryBackend,
    Rate,
    RateLimitBackend,
    RateLimiter,
    key_by_ip,
)
from covet.requests import HTTPConnection

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("RateLimitMiddleware",)


class RateLimitMiddleware:
    """Limit the request rate of each client across the whole app.

    Args:
        app: The ASGI app to wrap.
        limit: ``"100/minute"`` (the default) or a :class:`~covet.ratelimit.Rate`.
        key: ``key(connection)`` naming the bucket a request counts against,
            or None to not limit it. Default: the client IP address, from the
            server's peer address (see ``trusted_proxies``).
        backend: Where counters live. The default :class:`~covet.ratelimit.MemoryBackend`
            counts per process: with several workers use
            :class:`~covet.ratelimit.RedisBackend`.
        algorithm: ``"sliding-window"`` (default), ``"fixed-window"`` or ``"token-bucket"``.
        exempt_paths: Paths never limited: exact paths, or prefixes ending in ``/``
            (health checks, static files).
        trusted_proxies: Proxy addresses or networks whose ``X-Forwarded-For``
            is believed, for the default key.
        clock: Returns the current Unix time; inject a fake one in tests.

    Raises:
        ImproperlyConfigured: For an invalid rate, algorithm, backend or path.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: str | Rate = "100/minute",
        key: KeyFunction | None = None,
        backend: RateLimitBackend | None = None,
        algorithm: Algorithm = "sliding-window",
        exempt_paths: Iterable[str] = (),
        trusted_proxies: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.limiter = RateLimiter(
            limit,
            algorithm=algorithm,
            backend=MemoryBackend() if backend is None else backend,
            clock=clock,
        )
        self.key = key_by_ip(trusted_proxies=trusted_proxies) if key is None else key
        if isinstance(exempt_paths, str):
            raise ImproperlyConfigured(
                f"RateLimitMiddleware exempt_paths={exempt_paths!r} is a string. Pass a list."
            )
        paths = list(exempt_paths)
        for path in paths:
            if not path.startswith("/"):
                raise ImproperlyConfigured(
                    f"RateLimitMiddleware exempt path {path!r} must start with '/'."
                )
        self.exempt_exact = frozenset(p for p in paths if not p.endswith("/"))
        self.exempt_prefixes = tuple(p for p in paths if p.endswith("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request; refuse it with 429 past the limit, else add the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.exempt_exact or path.startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        bucket = self.key(HTTPConnection(scope))
        if bucket is None:
            await self.app(scope, receive, send)
            return
        result = await self.limiter.hit("global:" + bucket)
        headers = result.headers()
        if not result.allowed:
            response = await error_response(
                HTTPConnection(scope),
                429,
                f"Too many requests. Retry in {headers['Retry-After']} seconds.",
                headers=headers,
            )
            await response(scope, receive, send)
            return
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                current = list(message.get("headers", ()))
                present = {name for name, _ in current}
                current.extend(item for item in extra if item[0] not in present)
                message["headers"] = current
            await send(message)

        await self.app(scope, receive, send_with_headers)
