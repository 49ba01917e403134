"""URL routing: map request paths to handlers, and names back to paths.

A :class:`Router` holds three kinds of routes:

- :class:`Route` - an HTTP handler for one path pattern and a set of methods;
- :class:`WebSocketRoute` - a websocket handler for one path pattern;
- :class:`Mount` - any ASGI application served below a path prefix.

Path patterns use ``{name}`` or ``{name:converter}`` placeholders (see
:mod:`covet.convertors`). Matching is indexed so its cost does not grow with
the number of routes:

1. paths without placeholders are one dictionary lookup;
2. other patterns are grouped by their first path segment when it is
   literal (``/users/{id}`` is in group ``users``), and each group is
   compiled into a single regular expression, so one ``fullmatch`` call
   finds the route;
3. patterns whose first segment holds a placeholder (``/{lang}/about``) form
   one last group, tried when nothing more specific matched.

Within a group, routes are tried in registration order.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from covet._utils import (
    call_maybe_async,
    callable_name,
    get_route_path,
    is_async_callable,
    to_response,
)
from covet.convertors import CONVERTOR_TYPES, Convertor, PathConvertor
from covet.exceptions import CovetError, HTTPException, ImproperlyConfigured
from covet.requests import DEFAULT_LIMITS, Request, RequestLimits
from covet.responses import PlainTextResponse, Response
from covet.websockets import WebSocket

if TYPE_CHECKING:
    from covet.types import ASGIApp, Receive, Scope, Send

__all__ = (
    "HTTP_METHODS",
    "Mount",
    "NoMatchFound",
    "Route",
    "Router",
    "WebSocketRoute",
)

F = TypeVar("F", bound=Callable[..., Any])

#: The methods a route may declare. TRACE is deliberately absent: it echoes
#: the request (headers and cookies included) and is disabled everywhere
#: (OWASP ASVS 13.4), so covet never routes it.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT"})

# Characters left unescaped by url_path_for(): RFC 3986 "pchar" minus "%",
# so every value round-trips through the decoding the server applies.
_SAFE_SEGMENT = "!$&'()*+,;=:@"
_SAFE_PATH = _SAFE_SEGMENT + "/"
_PARAM_RE = re.compile(r"\{([^{}]*)\}")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NoMatchFound(CovetError, LookupError):  # noqa: N818 - Starlette's well-known name
    """No route has the given name, or it needs other path parameters.

    Raised by ``url_path_for()`` and ``Request.url_for()``.
    """


class _PathPattern:
    """A compiled route path: its regular expression, parameters and reverse format."""

    __slots__ = (
        "convertors",
        "first_segment",
        "is_static",
        "param_names",
        "parts",
        "path",
        "regex",
        "source",
    )

    def __init__(self, path: str, *, what: str, tail: str = "") -> None:
        if "?" in path or "#" in path:
            raise ImproperlyConfigured(
                f"{what} path {path!r} contains '?' or '#'. Route paths match the URL path "
                "only; read query parameters from request.query_params."
            )
        sources: list[str] = []
        parts: list[str | int] = []
        names: list[str] = []
        convertors: list[Convertor[Any]] = []
        position = 0
        for match in _PARAM_RE.finditer(path):
            literal = path[position : match.start()]
            self._check_literal(path, literal, what)
            sources.append(re.escape(literal))
            parts.append(literal)
            name, colon, convertor_name = match.group(1).partition(":")
            if _IDENTIFIER_RE.fullmatch(name) is None:
                raise ImproperlyConfigured(
                    f"{what} path {path!r} has an invalid parameter name {name!r}. "
                    "Use a Python identifier such as '{item_id}' or '{item_id:int}'."
                )
            if name in names:
                raise ImproperlyConfigured(
                    f"{what} path {path!r} uses the parameter {name!r} twice. "
                    "Give each parameter a distinct name."
                )
            if not colon:
                convertor_name = "str"
            convertor = CONVERTOR_TYPES.get(convertor_name)
            if convertor is None:
                known = ", ".join(sorted(CONVERTOR_TYPES))
                raise ImproperlyConfigured(
                    f"{what} path {path!r} uses the unknown converter {convertor_name!r}. "
                    f"Use one of: {known}; or register one with "
                    "covet.convertors.register_convertor()."
                )
            sources.append(f"({convertor.regex})")
            parts.append(len(names))
            names.append(name)
            convertors.append(convertor)
            position = match.end()
        literal = path[position:]
        self._check_literal(path, literal, what)
        sources.append(re.escape(literal))
        parts.append(literal)
        self.path = path
        self.source = "".join(sources) + tail
        self.regex = re.compile(self.source)
        self.param_names = tuple(names)
        self.convertors = tuple(convertors)
        self.parts = tuple(part for part in parts if part != "")
        self.is_static = not names and not tail
        first = path[1:].split("/", 1)[0]
        self.first_segment: str | None = None if "{" in first else first

    @staticmethod
    def _check_literal(path: str, literal: str, what: str) -> None:
        if "{" in literal or "}" in literal:
            raise ImproperlyConfigured(
                f"{what} path {path!r} has an unbalanced '{{' or '}}'. "
                "Write parameters as '{name}' or '{name:converter}'."
            )

    def convert(self, raw: Sequence[str]) -> dict[str, Any]:
        """Convert matched strings into handler values; raise ValueError on a bad value."""
        if len(raw) == 1:  # the common single-parameter case, without the comprehension
            return {self.param_names[0]: self.convertors[0].convert(raw[0])}
        return {
            name: convertor.convert(value)
            for name, convertor, value in zip(self.param_names, self.convertors, raw, strict=True)
        }

    def format(self, route_name: str, params: Mapping[str, Any]) -> str:
        """Build the path for ``params``, which must hold exactly the parameters."""
        if params.keys() != set(self.param_names):
            raise NoMatchFound(_params_message(route_name, self.param_names, params))
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            name = self.param_names[part]
            convertor = self.convertors[part]
            try:
                text = convertor.to_string(params[name])
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"Cannot build the path of route {route_name!r}: parameter {name!r} "
                    f"is {params[name]!r}, which its converter refuses ({exc})"
                ) from exc
            safe = _SAFE_PATH if isinstance(convertor, PathConvertor) else _SAFE_SEGMENT
            pieces.append(quote(text, safe=safe))
        return "".join(pieces)


def _params_message(name: str, expected: Sequence[str], params: Mapping[str, Any]) -> str:
    missing = [p for p in expected if p not in params]
    extra = sorted(p for p in params if p not in expected)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"unexpected {', '.join(map(repr, extra))}")
    return (
        f"Route {name!r} takes the path parameters {list(expected)!r}, "
        f"got {sorted(params)!r} ({'; '.join(problems)}). Pass exactly its parameters."
    )


def _default_name(endpoint: Any) -> str:
    """Name a route after its handler function (``read_item``), like Starlette."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    name = getattr(endpoint, "__name__", None)
    return name if isinstance(name, str) else type(endpoint).__name__


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

    def with_prefix(self, prefix: str, limits: RequestLimits | None = None) -> BaseRoute:
        """Return a copy of this route whose path starts with ``prefix``."""
        raise NotImplementedError(f"{type(self).__name__} must implement with_prefix().")


class Route(BaseRoute):
    """An HTTP handler for one path pattern and a set of methods.

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

    Raises:
        ImproperlyConfigured: For an invalid path, method or handler.
    """

    __slots__ = ("_is_async", "_name_given", "effective_limits", "endpoint", "limits", "methods")

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        limits: RequestLimits | None = None,
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
        self._pattern = _PathPattern(path, what="Route")
        _check_handler_params(endpoint, self._pattern.param_names, path)
        self.methods = method_set
        self._name_given = name is not None
        self.name = name if name is not None else _default_name(endpoint)
        self.limits = limits
        self.effective_limits = limits or DEFAULT_LIMITS
        self._is_async = is_async_callable(endpoint)

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

    def with_prefix(self, prefix: str, limits: RequestLimits | None = None) -> Route:
        """Return a copy under ``prefix``; ``limits`` apply when the route sets none."""
        route = Route(
            prefix + self.path,
            self.endpoint,
            methods=self.methods,
            name=self.name,
            limits=self.limits or limits,
        )
        route._name_given = self._name_given
        return route

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, params: dict[str, Any]
    ) -> None:
        """Call the handler for a matched request and send its response.

        The router sets ``scope["path_params"]`` and ``scope["covet.limits"]``
        before calling this.

        Args:
            scope: The request scope.
            receive: The ASGI receive callable.
            send: The ASGI send callable.
            params: The converted path parameters, passed as keyword arguments.
        """
        request = Request(scope, receive)
        try:
            if self._is_async:
                endpoint = self.endpoint
                # No ** call for parameterless routes: it would copy the empty dict.
                result = await (endpoint(request, **params) if params else endpoint(request))
            else:
                result = await call_maybe_async(self.endpoint, request, **params)
            # The isinstance() test first saves a call for handlers returning a Response.
            response = (
                result if isinstance(result, Response) else to_response(result, self.endpoint)
            )
            await response(scope, receive, send)
        finally:
            # Uploaded files spooled by request.form() must be closed even when the
            # handler forgot to (or raised); otherwise temp files live until GC.
            if request._form is not None:  # checked here to skip an await per request
                await request.close()


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

    def with_prefix(self, prefix: str, limits: RequestLimits | None = None) -> WebSocketRoute:
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

    def with_prefix(self, prefix: str, limits: RequestLimits | None = None) -> Mount:
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


class _RootMountPattern(_PathPattern):
    """The pattern of a mount at the root: every path, all of it the remainder."""

    def __init__(self) -> None:
        self.path = ""
        self.source = "(/.*)"
        self.regex = re.compile(self.source)
        self.param_names = ()
        self.convertors = ()
        self.parts = ()
        self.is_static = False
        self.first_segment = None


# --------------------------------------------------------------------------- index


class _Entry:
    """One alternative of the index: a path pattern and what it leads to.

    For HTTP, ``methods`` maps each allowed method to its route and ``allow``
    is the precomputed ``Allow`` header; for websockets, ``methods`` has the
    single key ``"WEBSOCKET"``. A mount has ``mount`` set and matches any method.
    """

    __slots__ = ("allow", "methods", "mount", "pattern")

    def __init__(self, pattern: _PathPattern, mount: Mount | None = None) -> None:
        self.pattern = pattern
        self.methods: dict[str, BaseRoute] = {}
        self.mount = mount
        self.allow = ""


class _Group:
    """Entries tried in order, compiled into one alternation regex."""

    __slots__ = ("entries", "regex", "slots")

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        sources: list[str] = []
        # Maps the index of each alternative's outer group to its entry and
        # the slice of Match.groups() holding its parameters; Match.lastindex
        # names the outer group because it closes last.
        self.slots: dict[int, tuple[_Entry, slice]] = {}
        group = 0
        for entry in entries:
            group += 1
            outer = group
            count = len(entry.pattern.param_names) + (1 if entry.mount is not None else 0)
            # groups()[outer] is group number outer + 1, the first parameter.
            self.slots[outer] = (entry, slice(outer, outer + count))
            group += count
            sources.append(f"({entry.pattern.source})")
        self.regex = re.compile("|".join(sources))

    def match(self, path: str) -> tuple[_Entry, tuple[str, ...]] | None:
        """Return the first entry whose pattern matches ``path``, with the raw values."""
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        entry, values = self.slots[found.lastindex or 0]
        return entry, found.groups()[values]


class _Index:
    """The lookup structure for one scope type (``http`` or ``websocket``)."""

    __slots__ = ("groups", "static", "wildcard")

    def __init__(self, entries: list[_Entry]) -> None:
        self.static: dict[str, _Entry] = {}
        by_segment: dict[str, list[_Entry]] = {}
        wildcard: list[_Entry] = []
        for entry in entries:
            pattern = entry.pattern
            if pattern.is_static and entry.mount is None:
                self.static[pattern.path] = entry
            elif pattern.first_segment is None:
                wildcard.append(entry)
            else:
                by_segment.setdefault(pattern.first_segment, []).append(entry)
        self.groups = {segment: _Group(group) for segment, group in by_segment.items()}
        self.wildcard = _Group(wildcard) if wildcard else None

    def candidates(self, path: str) -> list[_Entry]:
        """Return every entry that might match ``path``, in precedence order."""
        result: list[_Entry] = []
        static = self.static.get(path)
        if static is not None:
            result.append(static)
        end = path.find("/", 1)
        group = self.groups.get(path[1:end] if end != -1 else path[1:])
        if group is not None:
            result.extend(group.entries)
        if self.wildcard is not None:
            result.extend(self.wildcard.entries)
        return result

    def find(self, path: str) -> tuple[_Entry, tuple[str, ...]] | None:
        """Return the first entry matching ``path`` (ignoring methods), with raw values."""
        static = self.static.get(path)
        if static is not None:
            return static, ()
        end = path.find("/", 1)
        group = self.groups.get(path[1:end] if end != -1 else path[1:])
        if group is not None:
            found = group.match(path)
            if found is not None:
                return found
        if self.wildcard is not None:
            return self.wildcard.match(path)
        return None


def _build_entries(routes: Sequence[BaseRoute], kind: type[BaseRoute]) -> list[_Entry]:
    """Merge routes sharing a path pattern into entries, keeping first-seen order."""
    entries: list[_Entry] = []
    by_path: dict[str, _Entry] = {}
    for route in routes:
        if isinstance(route, Mount):
            entries.append(_Entry(route._pattern, mount=route))
            continue
        if not isinstance(route, kind):
            continue
        entry = by_path.get(route.path)
        if entry is None:
            entry = by_path[route.path] = _Entry(route._pattern)
            entries.append(entry)
        if isinstance(route, Route):
            for method in route.methods:
                entry.methods.setdefault(method, route)
        else:
            entry.methods.setdefault("WEBSOCKET", route)
    for entry in entries:
        entry.allow = ", ".join(sorted(entry.methods))
    return entries


_Resolved = tuple[_Entry | None, BaseRoute | None, dict[str, Any], str]

# --------------------------------------------------------------------------- router


class _RouteDecorators:
    """The decorator sugar shared by :class:`Router` and :class:`covet.Covet`.

    Every decorator ends in :meth:`add_route` or :meth:`add_websocket_route`,
    where all validation happens.
    """

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        limits: RequestLimits | None = None,
    ) -> Route:
        """Register ``endpoint`` for ``path`` and ``methods``; see :class:`Route`."""
        raise NotImplementedError(f"{type(self).__name__} must implement add_route().")

    def add_websocket_route(
        self, path: str, endpoint: Callable[..., Any], *, name: str | None = None
    ) -> WebSocketRoute:
        """Register a websocket ``endpoint`` for ``path``; see :class:`WebSocketRoute`."""
        raise NotImplementedError(f"{type(self).__name__} must implement add_websocket_route().")

    def route(
        self,
        path: str,
        *,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        limits: RequestLimits | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function as the handler of ``path``.

        Args:
            path: The path pattern, for example ``"/items/{item_id:int}"``.
            methods: The HTTP methods to serve (default ``["GET"]``).
            name: The route name for ``url_path_for()``.
            limits: Request limits for this route (a ``RequestLimits``).

        Returns:
            A decorator that registers the function and returns it unchanged.
        """

        def decorator(func: F) -> F:
            self.add_route(path, func, methods=methods, name=name, limits=limits)
            return func

        return decorator

    def get(
        self, path: str, *, name: str | None = None, limits: RequestLimits | None = None
    ) -> Callable[[F], F]:
        """Register the decorated function for ``GET`` (and ``HEAD``) on ``path``."""
        return self.route(path, methods=["GET"], name=name, limits=limits)

    def post(
        self, path: str, *, name: str | None = None, limits: RequestLimits | None = None
    ) -> Callable[[F], F]:
        """Register the decorated function for ``POST`` on ``path``."""
        return self.route(path, methods=["POST"], name=name, limits=limits)

    def put(
        self, path: str, *, name: str | None = None, limits: RequestLimits | None = None
    ) -> Callable[[F], F]:
        """Register the decorated function for ``PUT`` on ``path``."""
        return self.route(path, methods=["PUT"], name=name, limits=limits)

    def patch(
        self, path: str, *, name: str | None = None, limits: RequestLimits | None = None
    ) -> Callable[[F], F]:
        """Register the decorated function for ``PATCH`` on ``path``."""
        return self.route(path, methods=["PATCH"], name=name, limits=limits)

    def delete(
        self, path: str, *, name: str | None = None, limits: RequestLimits | None = None
    ) -> Callable[[F], F]:
        """Register the decorated function for ``DELETE`` on ``path``."""
        return self.route(path, methods=["DELETE"], name=name, limits=limits)

    def options(
        self, path: str, *, name: str | None = None, limits: RequestLimits | None = None
    ) -> Callable[[F], F]:
        """Register the decorated function for ``OPTIONS`` on ``path``."""
        return self.route(path, methods=["OPTIONS"], name=name, limits=limits)

    def websocket(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        """Register the decorated async function as the websocket handler of ``path``."""

        def decorator(func: F) -> F:
            self.add_websocket_route(path, func, name=name)
            return func

        return decorator


class Router(_RouteDecorators):
    """A collection of routes, and the ASGI app that dispatches to them.

    Args:
        prefix: A path prefix for every route added through this router
            (``"/api"``); it must start with ``/`` and not end with one.
        routes: Routes to start with (:class:`Route`, :class:`WebSocketRoute`,
            :class:`Mount`); the prefix is not applied to them.
        redirect_slashes: Redirect ``/x`` to ``/x/`` (and back) when only the
            other spelling has a route.
        limits: Default request limits for this router's routes.

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
        self._routes: list[BaseRoute] = []
        self._names: dict[str, BaseRoute] = {}
        self._mounts: list[Mount] = []
        self._frozen: str | None = None
        self._http: _Index | None = None
        self._websocket: _Index | None = None
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

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        limits: RequestLimits | None = None,
    ) -> Route:
        """Register ``endpoint`` for ``path`` (after this router's prefix).

        Args:
            path: The path pattern, starting with ``/``.
            endpoint: The handler, ``(request, **path_params) -> response``.
            methods: The HTTP methods to serve (default ``["GET"]``).
            name: The route name; explicit names must be unique.
            limits: Request limits for this route.

        Returns:
            The new :class:`Route`.

        Raises:
            ImproperlyConfigured: For an invalid path, handler, method or
                name, a duplicate, or a router that no longer accepts routes.
        """
        self._check_mutable(f"route {path!r}")
        _check_route_path(path, "Route")
        route = Route(self.prefix + path, endpoint, methods=methods, name=name, limits=limits)
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

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Copy every route of ``router`` into this one, under ``prefix``.

        The routes keep their names. ``router`` is frozen afterwards: adding to
        it later would not reach this router, so it raises instead.

        Args:
            router: The router to include.
            prefix: An extra prefix, put before this router's prefix and the
                included router's own prefix.

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
        full_prefix = self.prefix + prefix
        for route in router._routes:
            self._add(route.with_prefix(full_prefix, router.limits))
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
        self._http = _Index(_build_entries(self._routes, Route))
        self._websocket = _Index(_build_entries(self._routes, WebSocketRoute))
        return self._http, self._websocket

    def _resolve(self, index: _Index, path: str, method: str) -> _Resolved:
        """Find the route for ``path`` and ``method``.

        Returns ``(entry, route, params, remainder)``: a route when fully
        matched, only the entry when the path matched but not the method (a
        405), neither when nothing matched; ``remainder`` is the path left for
        a mount. The fast path is one dict lookup and at most two regex calls;
        the scan below only runs for 405s, converter failures and overlapping
        patterns.
        """
        found = index.find(path)
        if found is not None:
            entry, raw = found
            route = entry.mount or entry.methods.get(method)
            if route is not None:
                if not raw:  # a static path: nothing to convert
                    return entry, route, {}, ""
                pattern = entry.pattern
                count = len(pattern.param_names)
                try:
                    params = pattern.convert(raw[:count]) if count else {}
                except ValueError:
                    pass
                else:
                    return entry, route, params, raw[count] if entry.mount is not None else ""
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch an ASGI connection to the matching route."""
        kind = scope["type"]
        if kind == "http":
            index = self._http or self._build()[0]
            method = scope["method"]
        elif kind == "websocket":
            index = self._websocket or self._build()[1]
            method = "WEBSOCKET"
        elif kind == "lifespan":
            await _answer_lifespan(receive, send)
            return
        else:
            raise RuntimeError(f"Unsupported ASGI scope type {kind!r}.")
        path = scope["path"] if not scope.get("root_path") else get_route_path(scope)
        # Fast path, inlined: a static path served for this method is one dict lookup.
        entry = index.static.get(path)
        route = None if entry is None else entry.methods.get(method)
        if route is not None:
            params: dict[str, Any] = {}
            remainder = ""
        else:
            entry, route, params, remainder = self._resolve(index, path, method)
            if route is None:
                await self._no_route(scope, receive, send, entry, index, path)
                return
        if "path_params" in scope:
            merged = dict(scope["path_params"])
            merged.update(params)
            scope["path_params"] = merged
        else:
            scope["path_params"] = params
        if isinstance(route, Route):
            scope["covet.limits"] = route.effective_limits
            scope["route"] = route
            scope["endpoint"] = route.endpoint
            await route.handle(scope, receive, send, params)
        elif isinstance(route, WebSocketRoute):
            scope["route"] = route
            scope["endpoint"] = route.endpoint
            await route.handle(scope, receive, send, params)
        else:
            assert isinstance(route, Mount)  # noqa: S101 - internal invariant
            await route.handle(scope, receive, send, path, remainder)

    async def _no_route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        entry: _Entry | None,
        index: _Index,
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
            if not location.startswith("//") and self._serves(index, alternative, scope["method"]):
                query: bytes = scope.get("query_string", b"")
                if query:
                    location += "?" + query.decode("latin-1")
                await _send_redirect(send, location)
                return
        await self._error(scope, receive, send, 404, None)

    def _serves(self, index: _Index, path: str, method: str) -> bool:
        # Redirect only where the other spelling would really be served: its
        # converters accept the values and it answers this method.
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
