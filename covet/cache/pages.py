"""``@cache_page(ttl)``: cache a handler's whole response.

The key is the method and the full URL (scheme, host, path and query), plus
the values of the request headers the response names in ``Vary``, as in
Django: each response for a URL adds its ``Vary`` header names to the URL's
list, and requests look their page up under the values of those headers. A
response with ``Content-Encoding`` varies on ``Accept-Encoding`` too. ``HEAD``
requests are also answered from the ``GET`` entry.

Only what is safe for everyone is cached. A response is stored when:

- the request is ``GET`` or ``HEAD``, and the response a ``200`` whose body is
  in memory (not streamed, not a file);
- it sets no cookie, and its ``Cache-Control`` is not ``private``,
  ``no-store``, ``no-cache`` or ``max-age=0``; its ``Vary`` is not ``*``;
- the request has no logged-in user and no session data, and the handler
  neither handed out a CSRF token (the page would carry one visitor's token)
  nor changed the session.

Requests with a logged-in user or session data bypass the cache (no read, no
write), unless ``authenticated=True``: then their pages are cached per
visitor, keyed on the ``Cookie`` header as well, and marked
``Cache-Control: private``.

When the cache cannot be reached (:class:`~covet.cache.CacheUnavailableError`),
the handler answers uncached and a warning is logged: a page cache that is
down slows the site, it does not take it down.

A stored response gets ``Cache-Control: max-age=<ttl>`` (``private,`` for
per-visitor pages) unless it has one; a ``max-age`` it has sets the TTL (as
Django does). A response served from the cache carries ``Age``: the seconds
since it was stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import struct
from typing import TYPE_CHECKING, Any, TypeVar

from covet._utils import call_maybe_async, to_response
from covet.cache.core import DEFAULT_TIMEOUT, TTL, Cache
from covet.cache.exceptions import CacheUnavailableError
from covet.cache.registry import DEFAULT_CACHE_ALIAS, caches
from covet.responses import Response
from covet.responses.base import SENDS_PLAIN

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from covet.requests import Request

__all__ = ("cache_page",)

F = TypeVar("F", bound="Callable[..., Any]")

_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
_REFUSED_DIRECTIVES = frozenset({"private", "no-store", "no-cache"})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_HEAD = struct.Struct("!I")
logger = logging.getLogger("covet.cache")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _is_private(request: Request) -> bool:
    """Whether the request carries someone: a logged-in user or session data."""
    user = request.scope.get("user")
    if getattr(user, "is_authenticated", False):
        return True
    return bool(request.scope.get("session"))


def _handled_private_data(request: Request) -> bool:
    """Whether the handler did something that makes its page one visitor's."""
    csrf = request.scope.get("covet.csrf")
    if getattr(csrf, "used", False):
        return True  # the page holds a CSRF token tied to this visitor
    session = request.scope.get("session")
    return bool(getattr(session, "modified", False))


def _directives(value: str) -> set[str]:
    return {part.split("=", 1)[0].strip().lower() for part in value.split(",") if part.strip()}


def _vary_names(response: Response) -> list[str] | None:
    """Return the request headers the response varies on, or None for ``Vary: *``."""
    names: list[str] = []
    for value in response.headers.getlist("vary"):
        for part in value.split(","):
            name = part.strip().lower()
            if name == "*":
                return None
            if name and name not in names:
                names.append(name)
    if "content-encoding" in response.headers and "accept-encoding" not in names:
        names.append("accept-encoding")
    return sorted(names)


def _storable_ttl(response: Response, ttl: float | None) -> tuple[bool, float | None]:
    """Return whether ``response`` may be stored, and for how long."""
    if response.status_code != 200 or type(response) not in SENDS_PLAIN:
        return False, None
    if "set-cookie" in response.headers:
        return False, None
    control = ", ".join(response.headers.getlist("cache-control"))
    if _directives(control) & _REFUSED_DIRECTIVES:
        return False, None
    max_age = _MAX_AGE.search(control)
    if max_age is not None:
        ttl = float(max_age.group(1))
    return (ttl is None or ttl > 0), ttl


def _pack(response: Response, stored_at: float) -> bytes:
    head = json.dumps(
        {
            "status": response.status_code,
            "stored_at": stored_at,
            "headers": [
                [k.decode("latin-1"), v.decode("latin-1")] for k, v in response.raw_headers
            ],
        },
        separators=(",", ":"),
    ).encode("utf-8")
    return _HEAD.pack(len(head)) + head + response.body


def _unpack(data: bytes, now: float) -> Response | None:
    try:
        (size,) = _HEAD.unpack_from(data)
        head = json.loads(data[_HEAD.size : _HEAD.size + size])
        body = data[_HEAD.size + size :]
        response = Response(body, status_code=int(head["status"]))
        response.raw_headers[:] = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in head["headers"]
        ]
        age = max(0, int(now - float(head["stored_at"])))
    except (ValueError, KeyError, TypeError, struct.error):
        return None  # not a page this decorator stored: treat as a miss
    response.headers["age"] = str(age)
    return response


class _PageCache:
    """The lookups and stores of one decorated handler."""

    def __init__(
        self, ttl: TTL, using: Cache | str | None, key_prefix: str, authenticated: bool
    ) -> None:
        self.ttl = ttl
        self.using = using
        self.key_prefix = key_prefix
        self.authenticated = authenticated

    def cache(self) -> Cache:
        if isinstance(self.using, Cache):
            return self.using
        return caches[self.using or DEFAULT_CACHE_ALIAS]

    def index_key(self, request: Request) -> str:
        return f"covet.page.vary.{self.key_prefix}.{_digest(str(request.url))}"

    def page_key(self, request: Request, method: str, names: Sequence[str], private: bool) -> str:
        headers = request.headers
        if private and "cookie" not in names:
            names = [*names, "cookie"]
        values = [f"{name}={','.join(headers.getlist(name))}" for name in names]
        return f"covet.page.{self.key_prefix}.{method}.{_digest(str(request.url), *values)}"

    async def lookup(self, cache: Cache, request: Request, private: bool) -> Response | None:
        names = await cache.get(self.index_key(request))
        if not isinstance(names, list):
            return None
        methods = ["HEAD", "GET"] if request.method == "HEAD" else [request.method]
        for method in methods:
            data = await cache.get(self.page_key(request, method, names, private))
            if isinstance(data, bytes):
                return _unpack(data, cache.clock())
        return None

    async def store(
        self, cache: Cache, request: Request, response: Response, private: bool
    ) -> None:
        if _handled_private_data(request) or (_is_private(request) and not private):
            return
        ok, ttl = _storable_ttl(response, cache.resolve_ttl(self.ttl))
        names = _vary_names(response)
        if not ok or names is None:
            return
        if "cache-control" not in response.headers and ttl is not None:
            scope = "private, " if private else ""
            response.headers["cache-control"] = f"{scope}max-age={int(ttl)}"
        data = _pack(response, cache.clock())
        # Keep the header names earlier responses for this URL varied on: a response
        # that does not name a header its siblings vary on must not mask them.
        index = self.index_key(request)
        known = await cache.get(index)
        if isinstance(known, list) and not set(known) <= set(names):
            names = sorted(set(names) | {name for name in known if isinstance(name, str)})
        await cache.set(index, names, ttl)
        await cache.set(self.page_key(request, request.method, names, private), data, ttl)


def cache_page(
    ttl: TTL = DEFAULT_TIMEOUT,
    *,
    cache: Cache | str | None = None,
    key_prefix: str = "",
    authenticated: bool = False,
) -> Callable[[F], F]:
    """Cache the responses of the decorated handler (see the module docs for the rules).

    Put it under the route decorator::

        @app.get("/prices")
        @cache_page(60)
        async def prices(request): ...

    Args:
        ttl: Seconds a page is kept (the cache's default timeout by default); a
            ``max-age`` in the response's ``Cache-Control`` wins.
        cache: The cache: a :class:`Cache`, the name of a configured one, or
            None for the default cache (looked up at each request).
        key_prefix: Separates this handler's pages from others on the same URL.
        authenticated: Also cache pages of requests with a logged-in user or
            session data, per visitor (keyed on ``Cookie``).

    Returns:
        The decorator.
    """

    def decorator(handler: F) -> F:
        pages = _PageCache(ttl, cache, key_prefix, authenticated)

        @functools.wraps(handler)
        async def cached(request: Request, /, *args: Any, **kwargs: Any) -> Any:
            if request.method not in _CACHEABLE_METHODS:
                return await call_maybe_async(handler, request, *args, **kwargs)
            private = _is_private(request)
            if private and not authenticated:
                return await call_maybe_async(handler, request, *args, **kwargs)
            store = pages.cache()
            try:
                hit = await pages.lookup(store, request, private)
            except CacheUnavailableError as exc:
                logger.warning("Serving %s without the page cache: %s", request.url.path, exc)
                return await call_maybe_async(handler, request, *args, **kwargs)
            if hit is not None:
                return hit
            response = to_response(
                await call_maybe_async(handler, request, *args, **kwargs), handler
            )
            try:
                await pages.store(store, request, response, private)
            except CacheUnavailableError as exc:
                logger.warning("Could not store %s in the page cache: %s", request.url.path, exc)
            return response

        return cached  # type: ignore[return-value]

    return decorator
