"""The :class:`Covet` application: routes, middleware, error handling and lifespan.

A ``Covet`` instance is the ASGI 3 application you hand to the server::

    app = Covet()

    @app.get("/")
    async def index(request):
        return "Hello, world!"

Each connection passes through, outermost first: the Host check,
:class:`~covet.middleware.errors.ServerErrorMiddleware`, your middleware (the
first added is the outermost) and the :class:`~covet.routing.Router`, which is
covet's one dispatch: it calls the matched route, sends its response and
hands the route's exceptions to the handlers registered with
:meth:`Covet.add_exception_handler` itself (what
:class:`~covet.middleware.errors.ExceptionMiddleware` does, without a wrapper
per request). Without middleware of yours, the app dispatches itself (its
``__call__`` is the router's, so no coroutine sits between the server and the
route) and the router hands unhandled exceptions straight to the 500 layer
(same behaviour, no error-layer coroutine per request). The stack is built once,
when the app starts serving; from then on the app is frozen and registering
routes, middleware, handlers or hooks raises
:class:`~covet.exceptions.ImproperlyConfigured`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from time import perf_counter
from types import FunctionType
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from covet._context import RequestContext, RequestObserver, current_request
from covet._hosts import HostGuard, HostPatterns, find_host, reject_host, split_host
from covet.datastructures import State
from covet.exceptions import ImproperlyConfigured
from covet.middleware.errors import (
    ExceptionHandler,
    ExceptionMiddleware,
    ServerErrorMiddleware,
    check_exception_handler,
)
from covet.params.errors import RequestValidationError, request_validation_error_handler
from covet.params.signature import INFER
from covet.routing import BaseRoute, Mount, Route, RouteDecorators, Router, WebSocketRoute

if TYPE_CHECKING:
    from covet.errorreports import ErrorReporter
    from covet.openapi.config import OpenAPIConfig
    from covet.requests import RequestLimits
    from covet.templates import Templates
    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("Covet", "Lifespan", "Middleware")

P = ParamSpec("P")
H = TypeVar("H", bound=Callable[..., Any])

#: ``lifespan(app)`` returns an async context manager entered at startup and
#: exited at shutdown; what it yields (a mapping, or None) is merged into the
#: per-request ``request.state``.
Lifespan = Callable[["Covet"], AbstractAsyncContextManager[Mapping[str, Any] | None]]

logger = logging.getLogger("covet")
error_logger = logging.getLogger("covet.error")

_SERVING = "the app has started serving requests"


class _Unbuilt(tuple[Any, ...]):
    """The type of :data:`_UNBUILT`: a tuple that no built app holds."""

    __slots__ = ()


_UNBUILT: tuple[RequestObserver, ...] = _Unbuilt()
_OPENAPI_DEFAULT: Any = object()  # Covet(openapi=...) default: OpenAPIConfig()


class _MiddlewareFactory(Protocol[P]):
    def __call__(self, app: ASGIApp, /, *args: P.args, **kwargs: P.kwargs) -> ASGIApp: ...


class Middleware:
    """A middleware class and its options, for ``Covet(middleware=[...])``.

    ``Middleware(CORSMiddleware, allow_origins=["https://example.com"])`` is
    the same as ``app.add_middleware(CORSMiddleware, allow_origins=[...])``.

    Args:
        cls: The middleware class, called as ``cls(app, *args, **kwargs)``.
        *args: Positional options.
        **kwargs: Keyword options.
    """

    __slots__ = ("args", "cls", "kwargs")

    def __init__(self, cls: _MiddlewareFactory[P], /, *args: P.args, **kwargs: P.kwargs) -> None:
        if not callable(cls):
            raise ImproperlyConfigured(
                f"Middleware {cls!r} is not callable. Pass a class taking (app, **options)."
            )
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        name = getattr(self.cls, "__name__", repr(self.cls))
        options = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Middleware({', '.join([name, *options])})"


class Covet(RouteDecorators):
    """A covet web application (an ASGI 3 callable).

    Args:
        debug: Show tracebacks for unhandled errors. Never in production.
        routes: Initial routes (:class:`~covet.routing.Route`, ``WebSocketRoute``, ``Mount``).
        middleware: Middleware to install, as :class:`Middleware` objects;
            the first is the outermost.
        exception_handlers: Handlers keyed by exception class or status code.
        lifespan: ``lifespan(app)`` returning an async context manager that
            spans the app's life (entered after the startup hooks).
        on_startup: Callables (sync or async, no arguments) run at startup.
        on_shutdown: Callables run at shutdown.
        allowed_hosts: Host patterns (``["example.com", "*.example.com"]``);
            requests for any other Host get a 400. Without it any
            well-formed Host is accepted and, outside debug, a warning is
            logged at startup.
        limits: Default request size limits (a
            :class:`~covet.requests.RequestLimits`) for every route.
        redirect_slashes: Redirect ``/x`` to ``/x/`` (or back) with a 307
            when only the other spelling has a route.
        websocket_origins: Extra origins (``["https://app.example.com"]``, or
            ``["*"]`` for any) allowed to open websockets. A browser handshake
            whose ``Origin`` is neither one of these, nor on the ``Host`` of
            the request, nor on a host of ``allowed_hosts`` is refused (403),
            so other sites cannot use a visitor's cookies on your websockets.
            Handshakes without ``Origin`` (non-browser clients) are accepted.
        error_templates: A :class:`~covet.templates.Templates` whose
            ``errors/<status>.html`` (else ``errors/default.html``) renders
            the HTML error pages browsers get for 404, 403, 500 and every
            other error status. Missing or failing templates fall back to
            covet's built-in page; see :mod:`covet.errorpages`.
        openapi: An :class:`~covet.openapi.OpenAPIConfig` (title, version, paths);
            by default ``/openapi.json`` and ``/docs`` are served, None: neither.

    Raises:
        ImproperlyConfigured: For invalid routes, handlers or host patterns.
    """

    def __init__(
        self,
        debug: bool = False,
        *,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[type[BaseException] | int, ExceptionHandler] | None = None,
        lifespan: Lifespan | None = None,
        on_startup: Sequence[Callable[[], Any]] | None = None,
        on_shutdown: Sequence[Callable[[], Any]] | None = None,
        allowed_hosts: Iterable[str] | None = None,
        limits: RequestLimits | None = None,
        redirect_slashes: bool = True,
        websocket_origins: Iterable[str] | None = None,
        error_templates: Templates | None = None,
        openapi: OpenAPIConfig | None = _OPENAPI_DEFAULT,
    ) -> None:
        from covet.openapi.config import check_config

        self.debug = debug
        self.openapi_config = check_config(openapi)
        self._openapi_document: dict[str, Any] | None = None
        if error_templates is not None and not callable(getattr(error_templates, "render", None)):
            raise ImproperlyConfigured(
                f"error_templates={error_templates!r} is not a Templates object. Pass "
                "Templates(directory='templates') from covet.templates."
            )
        self.error_templates = error_templates
        self.state = State()
        self.router = Router(routes=routes, redirect_slashes=redirect_slashes, limits=limits)
        self.limits = limits
        self._middleware: list[Middleware] = []
        self._exception_handlers: dict[type[BaseException] | int, ExceptionHandler] = {}
        self._on_startup: list[Callable[[], Any]] = []
        self._on_shutdown: list[Callable[[], Any]] = []
        self._lifespan = lifespan
        self._lifespan_state: dict[str, Any] | None = None
        #: True once the process is stopping: from SIGTERM on under a server that
        #: handles it in Python (uvicorn, ``covet run``), else from lifespan shutdown.
        #: ``/ready`` answers 503 from then on (see :mod:`covet.shutdown`).
        self.draining = False
        self._frozen: str | None = None
        self._stack: ASGIApp | None = None
        # What __call__ calls: the stack's bound __call__ once built (see _build()).
        self._serve: ASGIApp | None = None
        # What __call__ (the router's dispatch, see Router.__call__) reads first: the
        # app itself (None on a router); whether each connection takes the general
        # path, _serve_connection() (until built, with observers or a lifespan state
        # to copy); and the router when it is the whole stack (no middleware, no debug).
        self._app: Covet | None = self
        self._general = True
        self._direct: Router | None = None
        self._request_observers: list[RequestObserver] = []
        self._error_reporters: list[tuple[ErrorReporter, float]] = []
        # The observers each request reports to: None when there are none; _UNBUILT
        # until _build() decides (so the first request also builds the app).
        self._observe: tuple[RequestObserver, ...] | None = _UNBUILT
        self.allowed_hosts = None if allowed_hosts is None else HostPatterns(allowed_hosts)
        self._host_guard = HostGuard(self.allowed_hosts)
        self._hosts_accepted = self._host_guard.accepted  # read on every request
        self.websocket_origins = _check_origins(websocket_origins or ())
        for item in middleware or ():
            if not isinstance(item, Middleware):
                raise ImproperlyConfigured(
                    f"middleware= got {item!r}. Wrap each class in Middleware(cls, **options)."
                )
            self._middleware.append(item)
        for key, handler in (exception_handlers or {}).items():
            self.add_exception_handler(key, handler)
        for hook in on_startup or ():
            self.on_startup(hook)
        for hook in on_shutdown or ():
            self.on_shutdown(hook)

    # ------------------------------------------------------------ registration

    def _check_mutable(self, what: str) -> None:
        if self._frozen is not None:
            raise ImproperlyConfigured(
                f"Cannot add {what}: {self._frozen}. Configure the app before it serves."
            )

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """Return the app's routes, in registration order."""
        return self.router.routes

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
        """Register ``endpoint`` for ``path``; see :meth:`covet.routing.Router.add_route`.

        Raises:
            ImproperlyConfigured: For an invalid route or once the app has started.
        """
        self._check_mutable(f"route {path!r}")
        return self.router.add_route(
            path,
            endpoint,
            methods=methods,
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=tags,
            include_in_schema=include_in_schema,
        )

    def add_websocket_route(
        self, path: str, endpoint: Callable[..., Any], *, name: str | None = None
    ) -> WebSocketRoute:
        """Register a websocket ``endpoint`` for ``path``.

        Raises:
            ImproperlyConfigured: For an invalid route or once the app has started.
        """
        self._check_mutable(f"websocket route {path!r}")
        return self.router.add_websocket_route(path, endpoint, name=name)

    def include_router(
        self,
        router: Router,
        prefix: str = "",
        *,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> None:
        """Copy the routes of ``router`` into the app; see :meth:`Router.include_router`.

        Raises:
            ImproperlyConfigured: For a clash or once the app has started.
        """
        self._check_mutable(f"the routes of {router!r}")
        self.router.include_router(router, prefix, tags=tags, include_in_schema=include_in_schema)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> Mount:
        """Serve the ASGI ``app`` below ``path`` (for example static files).

        Raises:
            ImproperlyConfigured: For an invalid path or once the app has started.
        """
        self._check_mutable(f"mount {path!r}")
        return self.router.mount(path, app, name=name)

    def openapi(self) -> dict[str, Any]:
        """Return the OpenAPI 3.1 document, built from the routes (cached once started)."""
        document = self._openapi_document
        if document is None:
            from covet.openapi.document import build_document

            document = build_document(self, self.openapi_config)
            self._openapi_document = document if self._frozen else None  # routes are final
        return document

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """Return the path of the route called ``name``.

        Raises:
            covet.routing.NoMatchFound: If no route has that name or it takes
                other parameters.
        """
        return self.router.url_path_for(name, **params)

    def add_middleware(
        self, cls: _MiddlewareFactory[P], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Wrap the app in the middleware ``cls(app, *args, **kwargs)``.

        The first middleware added is the outermost: it sees the request
        first and the response last.

        Raises:
            ImproperlyConfigured: Once the app has started.
        """
        self._check_mutable(f"middleware {getattr(cls, '__name__', cls)!r}")
        self._middleware.append(Middleware(cls, *args, **kwargs))

    def add_exception_handler(
        self, exc_class_or_status: type[BaseException] | int, handler: ExceptionHandler
    ) -> None:
        """Handle an exception class (and subclasses) or an HTTP status code.

        ``handler(request, exc)`` may be sync or async and returns a response
        (or anything a route may return). A handler for ``500`` or
        ``Exception`` builds the response for unhandled errors (outside debug
        mode); they are still logged.

        Raises:
            ImproperlyConfigured: For an invalid key or handler, or once the app has started.
        """
        self._check_mutable(f"an exception handler for {exc_class_or_status!r}")
        # Validate now, not at startup, so the error points at this call.
        check_exception_handler(exc_class_or_status, handler)
        self._exception_handlers[exc_class_or_status] = handler

    def exception_handler(self, exc_class_or_status: type[BaseException] | int) -> Callable[[H], H]:
        """Register the decorated function with :meth:`add_exception_handler`."""

        def decorator(func: H) -> H:
            self.add_exception_handler(exc_class_or_status, func)
            return func

        return decorator

    def on_startup(self, func: H) -> H:
        """Run ``func`` (sync or async, no arguments) at startup; usable as a decorator.

        Raises:
            ImproperlyConfigured: If it is not callable, or once the app has started.
        """
        self._check_mutable(f"startup hook {func!r}")
        if not callable(func):
            raise ImproperlyConfigured(f"Startup hook {func!r} is not callable. Pass a function.")
        self._on_startup.append(func)
        return func

    def on_shutdown(self, func: H) -> H:
        """Run ``func`` (sync or async, no arguments) at shutdown; usable as a decorator.

        Raises:
            ImproperlyConfigured: If it is not callable, or once the app has started.
        """
        self._check_mutable(f"shutdown hook {func!r}")
        if not callable(func):
            raise ImproperlyConfigured(f"Shutdown hook {func!r} is not callable. Pass a function.")
        self._on_shutdown.append(func)
        return func

    def add_observer(self, observer: RequestObserver) -> None:
        """Tell ``observer`` when each HTTP request and websocket connection starts and ends.

        The access log is one (metrics and tracing plug in the same way); see
        :class:`covet._context.RequestObserver` for the two methods, and the
        optional third, ``websocket_accepted(context)``.

        Raises:
            ImproperlyConfigured: For an object without the two methods, or once the app
                has started.
        """
        self._check_mutable(f"observer {observer!r}")
        if not all(
            callable(getattr(observer, name, None))
            for name in ("request_started", "request_finished")
        ):
            raise ImproperlyConfigured(
                f"Observer {observer!r} lacks request_started()/request_finished(). "
                "Pass an object with both methods."
            )
        self._request_observers.append(observer)

    def add_error_reporter(self, reporter: ErrorReporter, *, timeout: float | None = None) -> None:
        """Call ``reporter(exc, report)`` with each unhandled exception and its request.

        ``report`` is a :class:`covet.errorreports.ErrorReport` (method, path,
        route name, request id, user id, headers, query and form with secrets
        masked). The reporter runs after the error was logged and answered,
        sync in a worker thread or async; one that raises or takes longer than
        ``timeout`` seconds (default :data:`covet.errorreports.DEFAULT_TIMEOUT`)
        is logged and does not affect the response. See :mod:`covet.errorreports`
        for what is reported.

        Raises:
            ImproperlyConfigured: For a reporter that is not callable with two
                arguments or a timeout that is not a positive number, or once the
                app has started.
        """
        self._check_mutable(f"error reporter {reporter!r}")
        from covet.errorreports import DEFAULT_TIMEOUT  # loaded by apps that report only

        given: object = reporter  # checked at run time, whatever the annotation says
        if not callable(given) or not _takes_two_arguments(given):
            raise ImproperlyConfigured(
                f"Error reporter {reporter!r} cannot be called as reporter(exc, report). "
                "Pass a function taking the exception and the ErrorReport."
            )
        seconds: object = DEFAULT_TIMEOUT if timeout is None else timeout
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ImproperlyConfigured(
                f"Error reporter timeout={timeout!r} is not a positive number of seconds. "
                "Pass for example timeout=5."
            )
        self._error_reporters.append((reporter, float(seconds)))

    # ----------------------------------------------------------------- serving

    def _build(self, reason: str) -> ASGIApp:
        """Freeze the configuration and build the middleware stack (once)."""
        if self._stack is not None:
            return self._stack
        if self.openapi_config is not None:
            from covet.openapi.views import add_docs_routes

            add_docs_routes(self, self.openapi_config)
        self._frozen = reason
        self.router.freeze(reason)
        handlers = dict(self._exception_handlers)
        # Typed handlers' invalid input: a JSON 422 whatever Accept says (API clients parse it).
        handlers.setdefault(RequestValidationError, request_validation_error_handler)
        # A handler for Exception must not run below the error middleware: it
        # would swallow every error before it is logged.
        catch_all = handlers.pop(Exception, None)
        error_handler = handlers.get(500) or catch_all
        exceptions = ExceptionMiddleware(self.router, handlers=handlers, debug=self.debug)
        # The router is the innermost app and the one dispatch: it calls the matched
        # route and hands the route's exceptions to the error layer itself, so no
        # wrapper of the error layers runs per request unless something fails.
        reporters = tuple(self._error_reporters)
        error_layer = functools.partial(
            ServerErrorMiddleware,
            debug=self.debug,
            handler=error_handler,
            exceptions=exceptions,
            reporters=reporters,
        )
        app: ASGIApp
        if self._middleware:
            # Below the middleware: what has a handler is answered there, the rest goes
            # up through the middleware to the 500 layer outside it.
            self.router.handle_errors(exceptions.failed)
            app = self.router
            for item in reversed(self._middleware):
                app = item.cls(app, *item.args, **item.kwargs)
            # Handlers answer errors from user middleware too (a session store down: 503).
            app = error_layer(app)
        else:
            # Nothing sits between the router and the error layer: the router hands
            # exceptions to it directly, and the app calls the router.
            errors = error_layer(self.router)
            self.router.handle_errors(errors.failed)
            app = self.router
        if not self.debug and self.allowed_hosts is None:
            logger.warning(
                "The app runs with debug=False and no allowed_hosts, so it accepts any Host "
                "header. Pass allowed_hosts=['example.com'] to Covet()."
            )
        if self.debug:
            # The debug page lists the SQL each request ran: record it around everything.
            from covet._debug import QueryRecordingMiddleware

            app = QueryRecordingMiddleware(app)
        observers = list(self._request_observers)
        if logging.getLogger("covet.access").isEnabledFor(logging.INFO):
            # Imported only when the access log is on: it costs nothing otherwise.
            from covet.logging import AccessLog

            observers.insert(0, AccessLog())
        self._observe = tuple(observers) or None
        self._stack = app
        self._direct = self.router if app is self.router else None
        self._general = self._observe is not None or self._lifespan_state is not None
        # Calling an instance looks its __call__ up on every call; the bound method
        # skips that (a few hundred instructions per request).
        self._serve = _bound_call(app)
        return app

    async def _observed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        observers: tuple[RequestObserver, ...],
    ) -> None:
        """Serve one request in its :class:`RequestContext`, telling ``observers``.

        This is covet's one instrumentation point per request: everything that
        wants the status, size, duration, route or user of each request
        (access log, metrics, tracing) observes it here.
        """
        context = RequestContext(scope, perf_counter())
        scope["covet.context"] = context
        token = current_request.set(context)
        for observer in observers:
            observer.request_started(context)
        websocket = scope["type"] == "websocket"

        # A plain function handing back send()'s awaitable: no coroutine of its own per message.
        def observing_send(message: Message) -> Awaitable[None]:
            kind = message["type"]
            if kind == "http.response.body":
                context.sent += len(message.get("body", b""))
            elif kind == "http.response.start":
                context.status = message["status"]
            elif websocket and context.status == 0:
                if kind == "websocket.accept":
                    context.status = 101
                    for observer in observers:
                        accepted = getattr(observer, "websocket_accepted", None)
                        if accepted is not None:
                            accepted(context)
                elif kind in ("websocket.close", "websocket.http.response.start"):
                    context.status = message.get("status", 403)
            return send(message)

        try:
            await self._serve_connection(scope, receive, observing_send)
        except BaseException:
            if context.status == 0:
                context.status = 500
            raise
        finally:
            context.duration = perf_counter() - context.started
            try:
                for observer in observers:
                    observer.request_finished(context)
            finally:
                current_request.reset(token)

    #: Serve one ASGI connection (``http``, ``websocket`` or ``lifespan``). This is
    #: the router's dispatch function itself (see :meth:`covet.Router.__call__`):
    #: an app whose router is its whole stack serves HTTP without a coroutine
    #: between the server and the route; the rest goes to :meth:`_serve_connection`.
    __call__ = Router.__call__

    def _serve_connection(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Serve a connection the direct path does not: the general form of ``__call__``.

        Lifespan, websockets, observed requests, requests of an app not yet
        built and of one whose lifespan state is copied into each request.
        Checks the Host, then hands back the awaitable of the stack built once
        at startup (or of the answer that refuses the connection). A plain
        function, not a coroutine: every branch ends in one awaitable, and an
        observed request passes here twice (around :meth:`_observed`), so this
        saves two coroutine frames per observed request.
        """
        scope["app"] = self
        kind = scope["type"]
        if kind == "lifespan":
            return self._lifespan_protocol(scope, receive, send)
        observe = self._observe
        if observe is not None and "covet.context" not in scope:
            if observe is _UNBUILT:
                self._build(_SERVING)
                observe = self._observe
            if observe is not None:
                return self._observed(scope, receive, send, observe)
        lifespan_state = self._lifespan_state
        if lifespan_state is not None and "state" not in scope:
            # The server has no lifespan state: give each request a copy of the app's.
            # (Otherwise request.state creates scope["state"] when first used.)
            scope["state"] = dict(lifespan_state)
        host, duplicated = find_host(scope["headers"])
        if duplicated or (host not in self._hosts_accepted and not self._host_guard.allows(host)):
            return reject_host(scope, send)
        if kind == "websocket" and not self._origin_allowed(scope, host):
            # Closing before accept makes the server refuse the handshake (403).
            return send({"type": "websocket.close", "code": 1008, "reason": "Origin not allowed"})
        return (self._serve or self._build(_SERVING))(scope, receive, send)

    def _origin_allowed(self, scope: Scope, host: bytes | None) -> bool:
        """Decide whether a websocket handshake's ``Origin`` may connect (CSWSH defence)."""
        origin: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
                break
        if origin is None:
            return True  # not a browser: there are no ambient cookies to abuse
        allowed = self.websocket_origins
        text = origin.decode("latin-1").strip().lower()
        if "*" in allowed or text in allowed:
            return True
        scheme, separator, authority = text.partition("://")
        if not separator or scheme not in ("http", "https"):
            return False  # "null" (sandboxed frames, file://) and anything unparsable
        parsed = split_host(authority)
        if parsed is None:
            return False
        origin_host = parsed[0]
        if host is not None:
            own = split_host(host.decode("latin-1"))
            if own is not None and own[0] == origin_host:
                return True  # same host as the request
        return self.allowed_hosts is not None and self.allowed_hosts.match(origin_host)

    async def _lifespan_protocol(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run startup, wait for shutdown, run shutdown (ASGI lifespan protocol)."""
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        context: AbstractAsyncContextManager[Mapping[str, Any] | None] | None = None
        # Imported here: only a served app needs it, not `import covet`.
        from covet.shutdown import drain_on_sigterm, drain_seconds_from_environ

        try:
            drain_seconds = drain_seconds_from_environ()
            self._build("the app has started (lifespan startup ran)")
            for hook in self._on_startup:
                await _run_hook(hook)
            if self._lifespan is not None:
                context = self._lifespan(self)
                if not hasattr(context, "__aenter__"):
                    raise ImproperlyConfigured(
                        f"lifespan= returned {context!r}, not an async context manager. "
                        "Decorate the function with @contextlib.asynccontextmanager."
                    )
                yielded = await context.__aenter__()
                if yielded is not None:
                    self._store_lifespan_state(scope, yielded)
        except BaseException as exc:
            error_logger.error("Application startup failed", exc_info=exc)
            await send({"type": "lifespan.startup.failed", "message": _exc_message(exc)})
            raise
        await send({"type": "lifespan.startup.complete"})
        # From now on SIGTERM marks the app draining at once (/ready answers 503),
        # not only when the server gets to lifespan shutdown after its in-flight
        # requests; see covet.shutdown for the whole sequence.
        restore_signal = drain_on_sigterm(self, drain_seconds=drain_seconds)
        try:
            message = await receive()
        finally:
            if restore_signal is not None:
                restore_signal()
        self.draining = True
        try:
            if context is not None:
                await context.__aexit__(None, None, None)
            for hook in self._on_shutdown:
                await _run_hook(hook)
        except BaseException as exc:
            error_logger.error("Application shutdown failed", exc_info=exc)
            await send({"type": "lifespan.shutdown.failed", "message": _exc_message(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})

    def _store_lifespan_state(self, scope: Scope, yielded: Mapping[str, Any]) -> None:
        if not isinstance(yielded, Mapping):
            raise ImproperlyConfigured(
                f"The lifespan context yielded {yielded!r}. Yield a mapping of state (or nothing)."
            )
        server_state = scope.get("state")
        if isinstance(server_state, dict):
            # The server copies this into every request scope (ASGI lifespan state).
            server_state.update(yielded)
        else:
            self._lifespan_state = dict(yielded)
            self._general = True  # each request gets a copy: the general path does that


def _check_origins(origins: Iterable[str]) -> frozenset[str]:
    """Validate and normalise ``websocket_origins`` to lowercase ``scheme://host[:port]``."""
    if isinstance(origins, str):
        raise ImproperlyConfigured(
            f"websocket_origins={origins!r} is a string. Pass a list: [{origins!r}]."
        )
    result: set[str] = set()
    for origin in origins:
        value = str(origin).strip().lower()
        scheme, separator, authority = value.partition("://")
        if value != "*" and (
            not separator or scheme not in ("http", "https") or split_host(authority) is None
        ):
            raise ImproperlyConfigured(
                f"websocket_origins entry {origin!r} is not an origin. Write it as "
                "'https://app.example.com' (scheme and host, no path), or '*' for any."
            )
        result.add(value)
    return frozenset(result)


def _bound_call(app: ASGIApp) -> ASGIApp:
    """Return what calls ``app`` quickest: a function itself, else its bound ``__call__``."""
    if isinstance(app, FunctionType):
        return app
    # getattr: mypy cannot bind __call__ on a Callable type; at run time it is the method.
    bound: ASGIApp = getattr(app, "__call__")  # noqa: B004, B009 - binding, not a callable test
    return bound


def _takes_two_arguments(func: Callable[..., Any]) -> bool:
    try:
        inspect.signature(func).bind(None, None)
    except TypeError:
        return False
    except ValueError:
        return True  # no signature to inspect (some builtins): trust the caller
    return True


async def _run_hook(hook: Callable[[], Any]) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result


def _exc_message(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
