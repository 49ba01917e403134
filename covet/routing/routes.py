"""The route kinds: :class:`Route`, :class:`WebSocketRoute` and :class:`Mount`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from covet._utils import call_maybe_async, callable_name, is_async_callable
from covet.exceptions import ImproperlyConfigured
from covet.params.signature import INFER, Signature, inspect_handler
from covet.requests import DEFAULT_LIMITS, Request, RequestLimits
from covet.routing.patterns import (
    _SAFE_PATH,
    NoMatchFound,
    _params_message,
    _PathPattern,
    _RootMountPattern,
)
from covet.websockets import WebSocket

if TYPE_CHECKING:
    from covet.types import ASGIApp, Receive, Scope, Send

__all__ = ("HTTP_METHODS", "BaseRoute", "Mount", "Route", "WebSocketRoute")


#: The methods a route may declare. TRACE is deliberately absent: it echoes
#: the request (headers and cookies included) and is disabled everywhere
#: (OWASP ASVS 13.4), so covet never routes it.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT"})


def _default_name(endpoint: Any) -> str:
    """Name a route after its handler function (``read_item``), like Starlette."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    name = getattr(endpoint, "__name__", None)
    return name if isinstance(name, str) else type(endpoint).__name__


def check_tags(tags: Sequence[str] | None, what: str) -> tuple[str, ...]:
    """Return ``tags`` as a tuple without repeats, refusing a bare string or a non-string."""
    if tags is None:
        return ()
    items: list[object] = [] if isinstance(tags, str) else list(tags)  # callers may be untyped
    if (not items and tags) or not all(isinstance(tag, str) and tag for tag in items):
        raise ImproperlyConfigured(
            f"{what} got tags={tags!r}. Pass a list of non-empty strings, for example "
            "tags=['items']."
        )
    return tuple(dict.fromkeys(tags))


def _check_route_path(path: str, what: str) -> None:
    given: object = path  # callers are untyped: check the runtime type
    if not isinstance(given, str) or not given.startswith("/"):
        raise ImproperlyConfigured(f"{what} path {path!r} must start with '/'.")


def _check_handler_params(endpoint: Any, names: Sequence[str], path: str) -> None:
    """Refuse at registration a handler that could not accept the path parameters."""
    try:
        signature = inspect.signature(endpoint)
    except (TypeError, ValueError):
        return  # Builtins and some C callables have no signature: trust them.
    parameters = list(signature.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    missing = [name for name in names if name not in accepted]
    if missing:
        raise ImproperlyConfigured(
            f"Handler {callable_name(endpoint)!r} for path {path!r} does not accept the path "
            f"parameter(s) {', '.join(map(repr, missing))}. Add them to its signature."
        )
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    has_var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    if not positional and not has_var_positional:
        raise ImproperlyConfigured(
            f"Handler {callable_name(endpoint)!r} for path {path!r} takes no positional "
            "argument. Handlers are called as handler(request, **path_params)."
        )


class BaseRoute:
    """Common attributes of :class:`Route`, :class:`WebSocketRoute` and :class:`Mount`."""

    __slots__ = ("_pattern", "name", "path")

    path: str
    name: str | None
    _pattern: _PathPattern

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """Return the path for the route called ``name`` with ``params``.

        Raises:
            NoMatchFound: If this route is not called ``name`` or the
                parameters do not fit.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement url_path_for().")

    def with_prefix(
        self,
        prefix: str,
        limits: RequestLimits | None = None,
        tags: Sequence[str] = (),
        include_in_schema: bool = True,
    ) -> BaseRoute:
        """Return a copy of this route whose path starts with ``prefix``.

        ``limits``, ``tags`` and ``include_in_schema`` come from an including
        router; routes that have no use for them ignore them.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement with_prefix().")


class Route(BaseRoute):
    """An HTTP handler for one path pattern and a set of methods.

    The handler's signature is read once, here (see
    :mod:`covet.params.signature`, kept as :attr:`signature`). A handler taking
    only the request and its path parameters is called as
    ``handler(request, **path_params)``; one declaring typed parameters (query,
    headers, cookies, a body model, dependencies) or a response model has them
    read and validated first, and invalid input is a 422.

    Args:
        path: The path pattern, for example ``"/items/{item_id:int}"``.
        endpoint: ``async def handler(request, **path_params)``, or a plain
            ``def`` (run in a worker thread). Its return value is converted
            to a response (see :func:`covet._utils.to_response`).
        methods: The HTTP methods served (default ``["GET"]``). ``HEAD`` is
            added for every ``GET`` route. ``TRACE`` is refused.
        name: The name for reverse routing; defaults to the handler's name.
        limits: Request size limits for this route, overriding the
            application's.
        response_model: The type the return value is validated and serialised
            as (fields it does not declare are left out). By default the
            return annotation, when it names a model; None turns it off.
        status_code: The status of responses built from return values.
        tags: OpenAPI tags grouping the operation in the API reference.
        include_in_schema: False leaves the route out of the OpenAPI document.

    Raises:
        ImproperlyConfigured: For an invalid path, method or handler.
    """

    __slots__ = (
        "_invoke",
        "_is_async",
        "_name_given",
        "effective_limits",
        "endpoint",
        "include_in_schema",
        "limits",
        "methods",
        "response_model",
        "signature",
        "status_code",
        "tags",
    )

    _invoke: Callable[[Request, dict[str, Any]], Awaitable[Any]]

    def __init__(
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
    ) -> None:
        _check_route_path(path, "Route")
        if not callable(endpoint):
            raise ImproperlyConfigured(
                f"The handler for route {path!r} is {endpoint!r}, which is not callable. "
                "Pass a function."
            )
        if limits is not None and not isinstance(limits, RequestLimits):
            raise ImproperlyConfigured(
                f"Route {path!r} got limits={limits!r}. Pass a covet.requests.RequestLimits."
            )
        method_set = self._methods(path, ["GET"] if methods is None else methods)
        self.path = path
        self.endpoint = endpoint
        self._pattern = pattern = _PathPattern(path, what="Route")
        status: object = status_code  # callers may be untyped: check the runtime type
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise ImproperlyConfigured(
                f"Route {path!r} got status_code={status_code!r}. Pass an HTTP status (100-599)."
            )
        convertors = dict(zip(pattern.param_names, pattern.convertors, strict=True))
        #: What the handler declares: parameters, body, dependencies, response model.
        self.signature: Signature = inspect_handler(
            endpoint, path, convertors, response_model=response_model, status_code=status_code
        )
        self.response_model = response_model
        self.status_code = status_code
        #: OpenAPI tags, in order, without repeats.
        self.tags: tuple[str, ...] = check_tags(tags, f"Route {path!r}")
        self.include_in_schema = bool(include_in_schema)
        self.methods = method_set
        self._name_given = name is not None
        self.name = name if name is not None else _default_name(endpoint)
        self.limits = limits
        self.effective_limits = limits or DEFAULT_LIMITS
        # _is_async: an async handler called as handler(request, **params) by the router's
        # dispatch. Every other route goes through _invoke(request, params): a sync handler (run
        # in a thread), or a typed one (its parameters validated first).
        if self.signature.plain:
            self._is_async = is_async_callable(endpoint)
            self._invoke = self._call_sync
        else:
            from covet.params.binding import Invoker  # the engines load with it

            self._is_async = False
            self._invoke = Invoker(self.signature, pattern.param_names)

    @staticmethod
    def _methods(path: str, methods: Iterable[str]) -> frozenset[str]:
        if isinstance(methods, str):
            raise ImproperlyConfigured(
                f"Route {path!r} got methods={methods!r}, a string. Pass a list: [{methods!r}]."
            )
        result = {str(method).upper() for method in methods}
        if not result:
            raise ImproperlyConfigured(f"Route {path!r} has no methods. Pass at least one.")
        if "TRACE" in result:
            raise ImproperlyConfigured(
                f"Route {path!r} asks for TRACE, which covet never routes because it reflects "
                "credentials back to the client. Remove it."
            )
        unknown = sorted(result - HTTP_METHODS)
        if unknown:
            raise ImproperlyConfigured(
                f"Route {path!r} has unknown HTTP method(s) {unknown!r}. "
                f"Use: {', '.join(sorted(HTTP_METHODS))}."
            )
        if "GET" in result:
            result.add("HEAD")
        return frozenset(result)

    def __repr__(self) -> str:
        methods = sorted(self.methods)
        return f"Route(path={self.path!r}, name={self.name!r}, methods={methods!r})"

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """Return this route's path for ``params`` when ``name`` is its name.

        Raises:
            NoMatchFound: If the name differs or the parameters do not fit.
        """
        if name != self.name:
            raise NoMatchFound(f"Route {self.path!r} is named {self.name!r}, not {name!r}.")
        return self._pattern.format(name, params)

    async def _call_sync(self, request: Request, params: dict[str, Any]) -> Any:
        """Call a plain ``def`` handler in a worker thread."""
        return await call_maybe_async(self.endpoint, request, **params)

    def with_prefix(
        self,
        prefix: str,
        limits: RequestLimits | None = None,
        tags: Sequence[str] = (),
        include_in_schema: bool = True,
    ) -> Route:
        """Return a copy under ``prefix``; ``limits`` apply when the route sets none.

        ``tags`` (an including router's) come before the route's own, and
        ``include_in_schema=False`` hides the copy from the OpenAPI document.
        """
        route = Route(
            prefix + self.path,
            self.endpoint,
            methods=self.methods,
            name=self.name,
            limits=self.limits or limits,
            response_model=self.response_model,
            status_code=self.status_code,
            tags=(*tags, *self.tags),
            include_in_schema=self.include_in_schema and include_in_schema,
        )
        route._name_given = self._name_given
        return route


class WebSocketRoute(BaseRoute):
    """A websocket handler for one path pattern.

    Args:
        path: The path pattern, for example ``"/ws/{room}"``.
        endpoint: ``async def handler(websocket, **path_params)``.
        name: The name for reverse routing; defaults to the handler's name.

    Raises:
        ImproperlyConfigured: For an invalid path or a handler that is not async.
    """

    __slots__ = ("_name_given", "endpoint")

    def __init__(self, path: str, endpoint: Callable[..., Any], *, name: str | None = None) -> None:
        _check_route_path(path, "WebSocket route")
        if not is_async_callable(endpoint):
            raise ImproperlyConfigured(
                f"The websocket handler {endpoint!r} for {path!r} is not an async function. "
                "Declare it with 'async def'."
            )
        self.path = path
        self.endpoint = endpoint
        self._pattern = _PathPattern(path, what="WebSocket route")
        _check_handler_params(endpoint, self._pattern.param_names, path)
        self._name_given = name is not None
        self.name = name if name is not None else _default_name(endpoint)

    def __repr__(self) -> str:
        return f"WebSocketRoute(path={self.path!r}, name={self.name!r})"

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """Return this route's path for ``params`` when ``name`` is its name.

        Raises:
            NoMatchFound: If the name differs or the parameters do not fit.
        """
        if name != self.name:
            raise NoMatchFound(f"Route {self.path!r} is named {self.name!r}, not {name!r}.")
        return self._pattern.format(name, params)

    def with_prefix(
        self,
        prefix: str,
        limits: RequestLimits | None = None,
        tags: Sequence[str] = (),
        include_in_schema: bool = True,
    ) -> WebSocketRoute:
        """Return a copy of this route under ``prefix``."""
        route = WebSocketRoute(prefix + self.path, self.endpoint, name=self.name)
        route._name_given = self._name_given
        return route

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, params: dict[str, Any]
    ) -> None:
        """Call the websocket handler for a matched connection.

        Args:
            scope: The websocket scope.
            receive: The ASGI receive callable.
            send: The ASGI send callable.
            params: The converted path parameters, passed as keyword arguments.
        """
        websocket = WebSocket(scope, receive, send)
        await self.endpoint(websocket, **params)


class Mount(BaseRoute):
    """Serve any ASGI application below a path prefix.

    The mounted application receives the scope with ``root_path`` extended by
    the matched prefix and ``path`` unchanged (the ASGI convention also used by
    uvicorn's ``--root-path`` and Starlette), so it reads the remaining path as
    ``path[len(root_path):]``; covet's own routers and static files do this.
    Parameters in the prefix (``/users/{user_id:int}``) are converted and
    added to ``scope["path_params"]``.

    Args:
        path: The prefix, for example ``"/static"`` (``""`` or ``"/"`` for the root).
        app: The ASGI application to serve.
        name: The name for reverse routing: ``url_path_for(name, path="/x")``
            gives the path of ``/x`` inside the mount, and ``"name:child"``
            reaches a named route of a mounted covet app or router.

    Raises:
        ImproperlyConfigured: For an invalid prefix or an app that is not callable.
    """

    __slots__ = ("app",)

    def __init__(self, path: str, app: ASGIApp, *, name: str | None = None) -> None:
        if path == "/":
            path = ""
        if path:
            _check_route_path(path, "Mount")
            if path.endswith("/"):
                raise ImproperlyConfigured(
                    f"Mount path {path!r} must not end with '/'. Use {path.rstrip('/')!r}."
                )
        if not callable(app):
            raise ImproperlyConfigured(
                f"Mount {path!r} got {app!r}, which is not an ASGI application. "
                "Pass a callable app(scope, receive, send)."
            )
        self.path = path
        self.app = app
        self.name = name
        # The remainder is one extra group at the end, always starting with "/".
        self._pattern = (
            _PathPattern(path, what="Mount", tail="(/.*)") if path else _RootMountPattern()
        )

    def __repr__(self) -> str:
        return f"Mount(path={self.path!r}, name={self.name!r}, app={self.app!r})"

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """Return the routes of the mounted app when it is a router or covet app."""
        routes = getattr(self.app, "routes", None)
        return list(routes) if isinstance(routes, Sequence) else []

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """Return a path inside this mount.

        ``name`` is the mount's own name (with a ``path`` parameter), or
        ``"<mount name>:<route name>"`` for a route of the mounted app. An
        unnamed mount looks the name up in the mounted app directly.

        Raises:
            NoMatchFound: If nothing in this mount has that name.
        """
        pattern = self._pattern
        if self.name is not None and name == self.name:
            if "path" not in params:
                raise NoMatchFound(_params_message(name, [*pattern.param_names, "path"], params))
            own = {k: v for k, v in params.items() if k != "path"}
            prefix = pattern.format(name, own)
            remainder = str(params["path"]).lstrip("/")
            return f"{prefix}/{quote(remainder, safe=_SAFE_PATH)}"
        if self.name is None:
            child_name = name
        elif name.startswith(self.name + ":"):
            child_name = name[len(self.name) + 1 :]
        else:
            raise NoMatchFound(f"Mount {self.path!r} has no route named {name!r}.")
        reverse = getattr(self.app, "url_path_for", None)
        if not callable(reverse):
            raise NoMatchFound(f"The app mounted at {self.path!r} has no named routes.")
        own = {k: v for k, v in params.items() if k in pattern.param_names}
        rest = {k: v for k, v in params.items() if k not in pattern.param_names}
        child_path = str(reverse(child_name, **rest))
        return pattern.format(name, own) + child_path

    def with_prefix(
        self,
        prefix: str,
        limits: RequestLimits | None = None,
        tags: Sequence[str] = (),
        include_in_schema: bool = True,
    ) -> Mount:
        """Return a copy of this mount under ``prefix``."""
        return Mount(prefix + self.path, self.app, name=self.name)

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, route_path: str, remainder: str
    ) -> None:
        """Forward a matched connection to the mounted application.

        Args:
            scope: The connection scope; the app gets a copy with ``root_path``
                extended by the matched prefix.
            receive: The ASGI receive callable.
            send: The ASGI send callable.
            route_path: The path the router matched (below its own root).
            remainder: The part of ``route_path`` after the prefix, starting with ``/``.
        """
        matched = route_path[: len(route_path) - len(remainder)]
        root_path = scope.get("root_path", "")
        child = dict(scope)
        child["app_root_path"] = scope.get("app_root_path", root_path)
        child["root_path"] = root_path + matched
        await self.app(child, receive, send)
