"""The :class:`Router`: registration, reverse routing and ASGI dispatch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from covet._hosts import reject_host
from covet._utils import callable_name, get_route_path, to_response
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.middleware.errors import TrackedSend
from covet.params.signature import INFER
from covet.requests import DEFAULT_LIMITS, Request, RequestLimits
from covet.responses import SENDS_PLAIN, PlainTextResponse, Response, check_raw_headers
from covet.routing.decorators import RouteDecorators
from covet.routing.index import _build_entries, _Entry, _Index, _Resolved
from covet.routing.patterns import _SAFE_PATH, NoMatchFound
from covet.routing.routes import (
    BaseRoute,
    Mount,
    Route,
    WebSocketRoute,
    _check_route_path,
    check_tags,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from covet.app import Covet
    from covet.datastructures import FormData
    from covet.types import ASGIApp, Receive, Scope, Send

__all__ = ("Dispatcher", "FailureHandler", "Router")


class FailureHandler(Protocol):
    """What a router hands the exceptions of its routes to (see :meth:`Router.handle_errors`)."""

    def __call__(
        self,
        exc: Exception,
        scope: Scope,
        receive: Receive,
        send: Send,
        /,
        *,
        started: bool,
        closed: bool = False,
    ) -> Awaitable[None]:
        """Answer ``exc``, raised while serving ``scope``, or re-raise it."""
        ...


class Dispatcher(Protocol):
    """What :meth:`Router.__call__` is the ``__call__`` of: a :class:`Router` or a ``Covet``.

    ``_app`` is None on a router and the app itself on a :class:`~covet.Covet`.
    """

    @property
    def _app(self) -> Covet | None: ...


class Router(RouteDecorators):
    """A collection of routes, and the ASGI app that dispatches to them.

    Args:
        prefix: A path prefix for every route added through this router
            (``"/api"``); it must start with ``/`` and not end with one.
        routes: Routes to start with (:class:`Route`, :class:`WebSocketRoute`,
            :class:`Mount`); the prefix is not applied to them.
        redirect_slashes: Redirect ``/x`` to ``/x/`` (and back) when only the
            other spelling has a route.
        limits: Default request limits for this router's routes.
        tags: OpenAPI tags given to every route added through this router
            (before each route's own tags).
        include_in_schema: False leaves every route of this router out of
            the OpenAPI document.

    Raises:
        ImproperlyConfigured: For an invalid prefix or route.
    """

    def __init__(
        self,
        prefix: str = "",
        routes: Sequence[BaseRoute] | None = None,
        *,
        redirect_slashes: bool = True,
        limits: RequestLimits | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ImproperlyConfigured(
                f"Router prefix {prefix!r} must start with '/' and not end with '/', "
                "for example '/api'."
            )
        if limits is not None and not isinstance(limits, RequestLimits):
            raise ImproperlyConfigured(
                f"Router got limits={limits!r}. Pass a covet.requests.RequestLimits."
            )
        self.prefix = prefix
        self.redirect_slashes = redirect_slashes
        self.limits = limits
        self.tags = check_tags(tags, f"Router {prefix!r}")
        self.include_in_schema = bool(include_in_schema)
        self._routes: list[BaseRoute] = []
        self._names: dict[str, BaseRoute] = {}
        self._mounts: list[Mount] = []
        self._frozen: str | None = None
        self._http: _Index | None = None
        self._websocket: _Index | None = None
        # The static paths one HTTP route serves ({path: route}), filled by _build().
        self._plain: dict[str, Route] = {}
        self._failed: FailureHandler | None = None
        # None: this is a router (Covet, whose __call__ is Router.__call__, holds itself).
        self._app: Covet | None = None
        for route in routes or ():
            self._add(route)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """Return the registered routes, in registration order."""
        return tuple(self._routes)

    def freeze(self, reason: str) -> None:
        """Refuse further registration, explaining ``reason`` in the error.

        Args:
            reason: Why the router is frozen, for example "the app has started".
        """
        if self._frozen is None:
            self._frozen = reason
        for route in self._routes:
            if isinstance(route, Mount) and isinstance(route.app, Router):
                route.app.freeze(reason)

    def _check_mutable(self, what: str) -> None:
        if self._frozen is not None:
            raise ImproperlyConfigured(
                f"Cannot add {what}: {self._frozen}. Register every route before that."
            )

    def _add(self, route: BaseRoute) -> None:
        if not isinstance(route, BaseRoute):
            raise ImproperlyConfigured(
                f"{route!r} is not a route. Pass Route, WebSocketRoute or Mount instances."
            )
        self._check_mutable(f"route {route.path!r}")
        if isinstance(route, Route):
            for other in self._routes:
                if isinstance(other, Route) and other.path == route.path:
                    overlap = sorted((other.methods & route.methods) - {"HEAD"})
                    if overlap:
                        raise ImproperlyConfigured(
                            f"Route {route.path!r} is already registered for {overlap!r} "
                            f"(handler {callable_name(other.endpoint)!r}). Remove one of them."
                        )
        elif isinstance(route, WebSocketRoute):
            for other in self._routes:
                if isinstance(other, WebSocketRoute) and other.path == route.path:
                    raise ImproperlyConfigured(
                        f"WebSocket route {route.path!r} is already registered. Remove one."
                    )
        name = route.name
        given = not isinstance(route, Route | WebSocketRoute) or route._name_given
        if name is not None:
            current = self._names.get(name)
            if current is None:
                self._names[name] = route
            elif given:
                current_given = not isinstance(current, Route | WebSocketRoute) or (
                    current._name_given
                )
                if current_given:
                    raise ImproperlyConfigured(
                        f"Route name {name!r} is already used by {current.path!r}. "
                        "Give each route a unique name."
                    )
                # An explicit name wins over a default handler name.
                self._names[name] = route
        if isinstance(route, Mount):
            self._mounts.append(route)
        self._routes.append(route)
        self._http = self._websocket = None
        self._plain = {}

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        limits: RequestLimits | None = None,
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Route:
        """Register ``endpoint`` for ``path`` (after this router's prefix).

        Args:
            path: The path pattern, starting with ``/``.
            endpoint: The handler, ``(request, **path_params) -> response``, or
                one with typed parameters (see :mod:`covet.params`).
            methods: The HTTP methods to serve (default ``["GET"]``).
            name: The route name; explicit names must be unique.
            limits: Request limits for this route.
            response_model: The type the return value is serialised as; see
                :class:`Route`.
            status_code: The status of responses built from return values.
            tags: OpenAPI tags, after the router's own.
            include_in_schema: False leaves the route out of the OpenAPI document.

        Returns:
            The new :class:`Route`.

        Raises:
            ImproperlyConfigured: For an invalid path, handler, method or
                name, a duplicate, or a router that no longer accepts routes.
        """
        self._check_mutable(f"route {path!r}")
        _check_route_path(path, "Route")
        route = Route(
            self.prefix + path,
            endpoint,
            methods=methods,
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=(*self.tags, *check_tags(tags, f"Route {path!r}")),
            include_in_schema=self.include_in_schema and include_in_schema,
        )
        self._add(route)
        return route

    def add_websocket_route(
        self, path: str, endpoint: Callable[..., Any], *, name: str | None = None
    ) -> WebSocketRoute:
        """Register a websocket ``endpoint`` for ``path`` (after this router's prefix).

        Returns:
            The new :class:`WebSocketRoute`.

        Raises:
            ImproperlyConfigured: For an invalid path or handler, or a duplicate.
        """
        self._check_mutable(f"websocket route {path!r}")
        _check_route_path(path, "WebSocket route")
        route = WebSocketRoute(self.prefix + path, endpoint, name=name)
        self._add(route)
        return route

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> Mount:
        """Serve the ASGI ``app`` below ``path`` (after this router's prefix).

        Returns:
            The new :class:`Mount`.

        Raises:
            ImproperlyConfigured: For an invalid path or app.
        """
        self._check_mutable(f"mount {path!r}")
        if path not in ("", "/"):
            _check_route_path(path, "Mount")
        full = self.prefix + ("" if path == "/" else path)
        route = Mount(full, app, name=name)
        self._add(route)
        return route

    def include_router(
        self,
        router: Router,
        prefix: str = "",
        *,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> None:
        """Copy every route of ``router`` into this one, under ``prefix``.

        The routes keep their names. ``router`` is frozen afterwards: adding to
        it later would not reach this router, so it raises instead.

        Args:
            router: The router to include.
            prefix: An extra prefix, put before this router's prefix and the
                included router's own prefix.
            tags: OpenAPI tags put before the included routes' own.
            include_in_schema: False leaves the included routes out of the
                OpenAPI document.

        Raises:
            ImproperlyConfigured: For an invalid prefix, a route that clashes
                with an existing one, or including a router into itself.
        """
        if router is self:
            raise ImproperlyConfigured("A router cannot include itself. Include another Router.")
        if not isinstance(router, Router):
            raise ImproperlyConfigured(
                f"include_router() got {router!r}. Pass a covet.Router; use mount() for "
                "other ASGI apps."
            )
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ImproperlyConfigured(
                f"Include prefix {prefix!r} must start with '/' and not end with '/', "
                "for example '/api'."
            )
        self._check_mutable(f"the routes of {router!r}")
        extra_tags = check_tags(tags, f"include_router({router!r})")
        full_prefix = self.prefix + prefix
        for route in router._routes:
            self._add(
                route.with_prefix(
                    full_prefix,
                    router.limits,
                    (*self.tags, *extra_tags),
                    self.include_in_schema and include_in_schema,
                )
            )
        router.freeze(
            "this router was included with include_router(), which copies its routes at that moment"
        )

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """Return the path of the route called ``name`` with ``params`` filled in.

        Names of routes in mounted covet apps and routers are reached as
        ``"<mount name>:<route name>"``; a named mount itself takes a
        ``path`` parameter (``url_path_for("static", path="/css/a.css")``).

        Args:
            name: The route name.
            **params: The path parameters, converted with the route's converters.

        Returns:
            The path, percent-encoded, for example ``"/items/3"``.

        Raises:
            NoMatchFound: If no route has that name or it takes other parameters.
            ValueError: If a converter refuses a value (``-1`` for ``int``).
        """
        route = self._names.get(name)
        if route is not None:
            return route.url_path_for(name, **params)
        for mount in self._mounts:
            try:
                return mount.url_path_for(name, **params)
            except NoMatchFound:
                continue
        known = sorted(self._names)
        hint = f" Known names: {', '.join(map(repr, known[:20]))}." if known else ""
        raise NoMatchFound(f"No route is named {name!r}.{hint}")

    def resolve(self, scope: Scope) -> Route | WebSocketRoute | None:
        """Return the route this router would dispatch ``scope`` to, without calling it.

        Mounted routers (and mounted covet apps) are followed down to the
        final route. Middleware that must decide something from the handler
        before the router runs (CSRF exemptions, for instance) uses this.

        Args:
            scope: An ``http`` or ``websocket`` scope.

        Returns:
            The matching route, or ``None`` when nothing matches (a 404 or 405)
            or the path leads into a mounted app that is not a covet router.
        """
        router: Router = self
        path = scope["path"] if not scope.get("root_path") else get_route_path(scope)
        websocket = scope["type"] == "websocket"
        method = "WEBSOCKET" if websocket else scope["method"]
        while True:
            http, ws = router._http, router._websocket
            if http is None or ws is None:
                http, ws = router._build()
            _, route, _, remainder = router._resolve(ws if websocket else http, path, method)
            if isinstance(route, Route | WebSocketRoute):
                return route
            if not isinstance(route, Mount):
                return None
            child = getattr(route.app, "router", route.app)
            if not isinstance(child, Router):
                return None
            router, path = child, remainder

    # ----------------------------------------------------------------- dispatch

    def _build(self) -> tuple[_Index, _Index]:
        """Compile the lookup indexes and resolve each route's effective limits."""
        default = self.limits or DEFAULT_LIMITS
        for route in self._routes:
            if isinstance(route, Route):
                route.effective_limits = route.limits or default
        http = self._http = _Index(_build_entries(self._routes, Route))
        self._websocket = _Index(_build_entries(self._routes, WebSocketRoute))
        plain: dict[str, Route] = {}
        for path, entry in http.static.items():
            routes = {id(route): route for route in entry.methods.values()}
            if len(routes) == 1:
                (route,) = routes.values()
                if isinstance(route, Route):
                    plain[path] = route
        self._plain = plain
        return http, self._websocket

    def _resolve(self, index: _Index, path: str, method: str) -> _Resolved:
        """Find the route for ``path`` and ``method``.

        Returns ``(entry, route, params, remainder)``: a route when fully
        matched, only the entry when the path matched but not the method (a
        405), neither when nothing matched; ``remainder`` is the path left for
        a mount. The fast path is one dict lookup and at most two regex calls
        (inline: this runs for every parametrised request); the scan below
        only runs for 405s, converter failures and overlapping patterns.
        """
        entry: _Entry | None = index.static.get(path)
        raw: tuple[str, ...] = ()
        if entry is None:
            # The group of the first path segment, then the patterns with none.
            end = path.find("/", 1)
            group = index.groups.get(path[1:end] if end != -1 else path[1:])
            if group is not None and (match := group.regex.fullmatch(path)) is not None:
                entry, values = group.slots[match.lastindex or 0]
                raw = match.groups()[values]
            elif index.wildcard is not None and (found := index.wildcard.match(path)):
                entry, raw = found
        if entry is not None:
            route = entry.mount or entry.methods.get(method)
            if route is not None:
                if not raw:  # a static path: nothing to convert
                    return entry, route, {}, ""
                pattern = entry.pattern
                try:
                    if entry.mount is None:  # raw holds exactly the route's parameters
                        return entry, route, pattern.convert(raw), ""
                    count = len(pattern.param_names)  # then the mount's remainder
                    return entry, route, pattern.convert(raw[:count]) if count else {}, raw[count]
                except ValueError:
                    pass
        partial: _Entry | None = None
        for entry in index.candidates(path):
            match = entry.pattern.regex.fullmatch(path)
            if match is None:
                continue
            raw = match.groups()
            count = len(entry.pattern.param_names)
            try:
                params = entry.pattern.convert(raw[:count])
            except ValueError:
                continue
            route = entry.mount or entry.methods.get(method)
            if route is not None:
                return entry, route, params, raw[count] if entry.mount is not None else ""
            if partial is None:
                partial = entry
        return partial, None, {}, ""

    def handle_errors(self, failed: FailureHandler | None) -> None:
        """Hand the exceptions of the routes to ``failed`` instead of raising them.

        :class:`~covet.Covet` calls this once, when it builds its stack: with
        the error layer's :meth:`~covet.middleware.errors.ServerErrorMiddleware.failed`
        when no middleware sits between the two, else with
        :meth:`~covet.middleware.errors.ExceptionMiddleware.failed`, which
        answers the exceptions that have a handler and re-raises the others to
        the middleware outside. A router served on its own (or mounted) has
        none and lets exceptions propagate.

        Args:
            failed: ``failed(exc, scope, receive, send, started=..., closed=...)``,
                or None to raise.
        """
        self._failed = failed

    async def __call__(self: Dispatcher, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch an ASGI connection to the matching route and send its response.

        This is covet's one dispatch, and the ``__call__`` of both
        :class:`Router` and :class:`~covet.Covet` (one function, so that an
        app without middleware serves a request without a coroutine between
        the server and the route). Called on a router (``self._app`` is
        None: the innermost app of a middleware stack, a mounted or a
        stand-alone router), it dispatches. Called on an app, it sets
        ``scope["app"]``, checks the Host header, and then dispatches with the
        app's router itself when that router is the whole stack, or awaits the
        middleware stack; lifespan, websockets, observers and an app not yet
        built take the app's general path (``Covet._serve_connection()``).

        For HTTP it matches the route, builds the
        :class:`~covet.requests.Request`, awaits the handler, and sends a
        plain :class:`~covet.responses.Response` (see
        :data:`~covet.responses.SENDS_PLAIN`) inline, without a coroutine of
        its own; exceptions go to the handler set by :meth:`handle_errors`.
        """
        app = self._app
        if app is None:
            # _app is None only on a Router (an annotation, not a cast() call per request).
            router: Router = self  # type: ignore[assignment]
            if scope["type"] != "http":
                await router._serve_other(scope, receive, send)
                return
        else:
            scope["app"] = app
            if app._general or scope["type"] != "http":
                await app._serve_connection(scope, receive, send)
                return
            # The Host check runs on every request, so the header scan is find_host()
            # inlined (a call costs ~700 instructions here): find the one Host header...
            host: bytes | None = None
            for name, value in scope["headers"]:
                if name == b"host":
                    if host is not None:  # RFC 9112 section 3.2: more than one Host is a 400.
                        await reject_host(scope, send)
                        return
                    host = value
            # ...and look it up among the accepted ones before parsing it.
            if host not in app._hosts_accepted and not app._host_guard.allows(host):
                await reject_host(scope, send)
                return
            direct = app._direct
            if direct is None:  # middleware (or the debug layer) between the app and its router
                stack = app._serve
                assert stack is not None  # noqa: S101 - built, or _general would be set
                await stack(scope, receive, send)
                return
            router = direct
        # Below a root_path (uvicorn --root-path, or a Mount), routes match what follows it.
        path = scope["path"] if not scope.get("root_path") else get_route_path(scope)
        method = scope["method"]
        route = router._plain.get(path)  # a static path served by one route: one dict lookup
        if route is None or method not in route.methods:
            index = router._http or router._build()[0]
            entry, found, params, remainder = router._resolve(index, path, method)
            if not isinstance(found, Route):  # a mount, a 404, a 405 or a redirect
                await router._serve_rest(
                    scope, receive, send, entry, found, params, path, remainder
                )
                return
            route = found
        else:
            params = {}
        if scope.setdefault("path_params", params) is not params:
            # Below a router that matched parameters of its own (a Host pattern, a mount).
            scope["path_params"] = {**scope["path_params"], **params}
        scope["route"] = route
        endpoint = scope["endpoint"] = route.endpoint
        # Request(scope, receive), without the class call's __init__ dispatch.
        request = _new_object(Request)
        request.scope = scope
        request._receive = receive
        request._form = _NO_FORM  # read in the finally clause; cheaper as an instance attribute
        try:
            try:
                if route._is_async:
                    # No ** call for parameterless routes: it would copy the empty dict.
                    result = await (endpoint(request, **params) if params else endpoint(request))
                else:  # a sync handler, or a typed one (covet.params validates its input)
                    result = await route._invoke(request, params)
                # One set lookup answers both "a Response?" and "sent inline?" for the
                # usual response classes.
                plain = type(result) in SENDS_PLAIN
                if plain:
                    response = result
                else:
                    response = (
                        result if isinstance(result, Response) else to_response(result, endpoint)
                    )
                    plain = type(response) in SENDS_PLAIN
            except Exception as exc:
                failed = router._failed
                if failed is None:
                    raise
                await failed(exc, scope, receive, send, started=False)
                return
            if plain:
                # Response.__call__() for HTTP, inline. It sends its start message first,
                # so whatever fails here fails after the response started.
                try:
                    raw = response._raw
                    if not response._raw_checked:
                        check_raw_headers(raw)
                    status = response.status_code
                    await send({"type": "http.response.start", "status": status, "headers": raw})
                    body = b"" if method == "HEAD" else response.body
                    await send({"type": "http.response.body", "body": body})
                    if response.background is not None:
                        await response.background()
                except Exception as exc:
                    failed = router._failed
                    if failed is None:
                        raise
                    await failed(exc, scope, receive, send, started=True)
            else:
                tracked = TrackedSend(send)
                try:
                    await response(scope, receive, tracked)
                except Exception as exc:
                    failed = router._failed
                    if failed is None:
                        raise
                    await failed(exc, scope, receive, send, started=tracked.started)
        finally:
            # Uploaded files spooled by request.form() must be closed even when the
            # handler forgot to (or raised); otherwise temp files live until GC.
            if request._form is not None:  # checked here to skip an await per request
                await request.close()

    async def _serve_other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch a websocket connection, or answer a lifespan one."""
        kind = scope["type"]
        if kind == "websocket":
            index = self._websocket or self._build()[1]
        elif kind == "lifespan":
            await _answer_lifespan(receive, send)
            return
        else:
            raise RuntimeError(f"Unsupported ASGI scope type {kind!r}.")
        path = scope["path"] if not scope.get("root_path") else get_route_path(scope)
        entry, route, params, remainder = self._resolve(index, path, "WEBSOCKET")
        await self._serve_rest(scope, receive, send, entry, route, params, path, remainder)

    async def _serve_rest(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        entry: _Entry | None,
        route: BaseRoute | None,
        params: dict[str, Any],
        path: str,
        remainder: str,
    ) -> None:
        """Serve what is not an HTTP route: a websocket route, a mount, or no route at all."""
        failed = self._failed
        tracked = TrackedSend(send)
        try:
            if route is None:
                await self._no_route(scope, receive, tracked, entry, path)
                return
            if scope.setdefault("path_params", params) is not params:
                scope["path_params"] = {**scope["path_params"], **params}
            if isinstance(route, WebSocketRoute):
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                await route.handle(scope, receive, tracked, params)
            else:
                assert isinstance(route, Mount)  # noqa: S101 - internal invariant
                await route.handle(scope, receive, tracked, path, remainder)
        except Exception as exc:
            if failed is None:
                raise
            await failed(exc, scope, receive, send, started=tracked.started, closed=tracked.closed)

    async def _no_route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        entry: _Entry | None,
        path: str,
    ) -> None:
        if scope["type"] == "websocket":
            # Closing before accept makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
            return
        if entry is not None:
            await self._error(scope, receive, send, 405, {"Allow": entry.allow})
            return
        if self.redirect_slashes and path not in ("", "/"):
            full: str = scope["path"]
            target = full[:-1] if full.endswith("/") else full + "/"
            alternative = path[:-1] if path.endswith("/") else path + "/"
            location = quote(target, safe=_SAFE_PATH)
            # "//evil.example" is a scheme-relative URL: never redirect there.
            if not location.startswith("//") and self._serves(alternative, scope["method"]):
                query: bytes = scope.get("query_string", b"")
                if query:
                    location += "?" + query.decode("latin-1")
                await _send_redirect(send, location)
                return
        await self._error(scope, receive, send, 404, None)

    def _serves(self, path: str, method: str) -> bool:
        # Redirect only where the other spelling would really be served: its
        # converters accept the values and it answers this method.
        index = self._http or self._build()[0]
        return self._resolve(index, path, method)[1] is not None

    @staticmethod
    async def _error(
        scope: Scope, receive: Receive, send: Send, status: int, headers: dict[str, str] | None
    ) -> None:
        if "app" in scope:
            # Inside an app, let its exception handlers shape the response.
            raise HTTPException(status, headers=headers)
        exc = HTTPException(status)
        response = PlainTextResponse(str(exc.detail), status_code=status, headers=headers)
        await response(scope, receive, send)


async def _send_redirect(send: Send, location: str) -> None:
    """Send a body-less 307, which keeps the method and body (RFC 9110 section 15.4.8)."""
    await send(
        {
            "type": "http.response.start",
            "status": 307,
            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    """Complete startup and shutdown for a router served on its own."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_new_object = object.__new__
_NO_FORM: FormData | None = None
