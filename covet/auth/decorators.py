"""Route guards: ``@login_required`` and ``@requires``, and safe ``next=`` redirects.

Put the guard below the route decorator::

    @app.get("/account")
    @login_required
    async def account(request): ...

    @app.post("/posts/{id:int}/edit")
    @requires("posts.edit")
    async def edit(request, id): ...

An anonymous visitor of an HTML page is redirected to the login page with
``?next=<the page>``; an API client (``Accept: application/json``, an
``Authorization`` header or ``X-Requested-With``) gets ``401`` instead. A
logged-in user without the permission gets ``403``. On websockets the
connection is closed with code 1008 (policy violation).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import quote, urlsplit

from covet._utils import call_maybe_async, callable_name
from covet.auth.login import get_auth_config
from covet.exceptions import HTTPException, ImproperlyConfigured, WebSocketException
from covet.responses import RedirectResponse

if TYPE_CHECKING:
    from collections.abc import Callable

    from covet.requests import HTTPConnection

__all__ = (
    "check_permission_names",
    "login_required",
    "requires",
    "safe_redirect_url",
    "wants_json",
)

F = TypeVar("F", bound="Callable[..., Any]")

_MAX_NEXT_LENGTH = 2048
_POLICY_VIOLATION = 1008


def safe_redirect_url(connection: HTTPConnection, url: str | None, default: str = "/") -> str:
    r"""Return ``url`` if it is a safe place to redirect to after login, else ``default``.

    Only paths on this site are accepted: they start with a single ``/`` and
    contain no backslash, no whitespace and no control character. That
    refuses ``//evil.com`` and ``/\evil.com`` (browsers read both as another
    host), ``https://evil.com``, ``javascript:...`` and header-splitting
    tricks.

    Args:
        connection: The request (reserved for host-aware checks; unused today).
        url: The candidate, usually ``request.query_params.get("next")``.
        default: Returned when ``url`` is missing or unsafe.
    """
    del connection  # the rule needs no request data: only relative paths pass
    if not isinstance(url, str) or not url or len(url) > _MAX_NEXT_LENGTH:
        return default
    if not url.startswith("/") or url.startswith("//"):
        return default
    if "\\" in url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return default
    try:
        parts = urlsplit(url)
    except ValueError:
        return default
    if parts.scheme or parts.netloc:
        return default
    return url


def wants_json(connection: HTTPConnection) -> bool:
    """Return whether the client is an API client rather than a browser page.

    True with an ``Authorization`` header, ``X-Requested-With``, or an
    ``Accept`` header that names JSON but not HTML.
    """
    headers = connection.headers
    if "authorization" in headers or "x-requested-with" in headers:
        return True
    accept = headers.get("accept", "").lower()
    return "json" in accept and "text/html" not in accept


def _current_user(connection: HTTPConnection) -> Any:
    try:
        return connection.scope["user"]
    except KeyError:
        raise ImproperlyConfigured(
            "login_required and requires need AuthenticationMiddleware, which did not set "
            "scope['user']. Add it with "
            "app.add_middleware(AuthenticationMiddleware, user_model=User)."
        ) from None


def _login_path(connection: HTTPConnection, login_url: str) -> str:
    if login_url.startswith(("/", "http://", "https://")):
        return login_url
    app = connection.scope.get("app")
    if app is None or not hasattr(app, "url_path_for"):
        raise ImproperlyConfigured(
            f"login_url={login_url!r} is not a path, and the app cannot resolve route names. "
            "Pass a path such as '/login'."
        )
    return str(app.url_path_for(login_url))


def _deny_anonymous(connection: HTTPConnection, login_url: str, field: str) -> Any:
    """Return the redirect to the login page, or raise 401 / a websocket close."""
    if connection.scope["type"] == "websocket":
        raise WebSocketException(_POLICY_VIOLATION, "Authentication required.")
    if wants_json(connection):
        config = get_auth_config(connection)
        headers = {"WWW-Authenticate": "Bearer"} if config is not None and config.bearer else None
        raise HTTPException(401, "Authentication required.", headers=headers)
    url = connection.url
    target = url.path + (f"?{url.query}" if url.query else "")
    path = _login_path(connection, login_url)
    separator = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{separator}{field}={quote(target, safe='/')}", status_code=303)


def _connection_finder(handler: Any) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """Return ``(args, kwargs) -> connection`` for calls of ``handler``.

    Plain routes pass the request first and positionally; typed handlers (see
    :mod:`covet.params`) get every argument by keyword, the request under the
    handler's own parameter name.
    """
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    keyword = parameters[0].name if parameters else None
    if parameters and parameters[0].kind is inspect.Parameter.POSITIONAL_ONLY:
        keyword = None
    name = callable_name(handler)

    def find(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args:
            return args[0]
        if keyword is not None and keyword in kwargs:
            return kwargs[keyword]
        raise TypeError(
            f"{name!r} is guarded by login_required/requires but was called without the request. "
            "Declare the request as its first parameter (request: Request)."
        )

    return find


@overload
def login_required(func: F, /) -> F: ...
@overload
def login_required(
    *, login_url: str = "/login", redirect_field: str = "next"
) -> Callable[[F], F]: ...
def login_required(
    func: F | None = None, /, *, login_url: str = "/login", redirect_field: str = "next"
) -> F | Callable[[F], F]:
    """Let only logged-in users run the handler.

    Use it bare (``@login_required``) or with options
    (``@login_required(login_url="login")``).

    Args:
        func: The handler, when used bare.
        login_url: The login page: a path, or a route name.
        redirect_field: The query parameter carrying the page to come back to.

    Returns:
        The guarded handler, or a decorator making one.
    """

    def decorator(handler: F) -> F:
        connection_of = _connection_finder(handler)

        @functools.wraps(handler)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            connection: HTTPConnection = connection_of(args, kwargs)
            if not getattr(_current_user(connection), "is_authenticated", False):
                return _deny_anonymous(connection, login_url, redirect_field)
            return await call_maybe_async(handler, *args, **kwargs)

        guarded.__covet_guard__ = "login"  # type: ignore[attr-defined] # read by covet.openapi
        return guarded  # type: ignore[return-value]

    if func is not None:
        return decorator(func)
    return decorator


def check_permission_names(permissions: tuple[object, ...], *, example: str) -> None:
    """Refuse a ``requires(...)`` call without permission names, or with a non-string one.

    Shared by :func:`requires` and :func:`covet.graphql.requires`, so both refuse
    the same mistakes with the same words.

    Args:
        permissions: The positional arguments ``requires()`` got.
        example: A correct call, quoted in the message.

    Raises:
        ImproperlyConfigured: When ``permissions`` is empty or holds anything but
            non-empty strings.
    """
    if not permissions or not all(isinstance(p, str) and p for p in permissions):
        raise ImproperlyConfigured(
            f"requires() got {permissions!r}. Pass one or more permission names, "
            f"for example {example}."
        )


def requires(
    *permissions: str, login_url: str = "/login", redirect_field: str = "next"
) -> Callable[[F], F]:
    """Let only users holding every permission run the handler (else ``403``).

    Anonymous visitors are treated as by :func:`login_required`.

    Args:
        permissions: Permission names, such as ``"posts.edit"``.
        login_url: The login page for anonymous visitors: a path or a route name.
        redirect_field: The query parameter carrying the page to come back to.

    Returns:
        The decorator.

    Raises:
        ImproperlyConfigured: Without permission names.
    """
    check_permission_names(permissions, example="@requires('posts.edit')")

    def decorator(handler: F) -> F:
        connection_of = _connection_finder(handler)

        @functools.wraps(handler)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            connection: HTTPConnection = connection_of(args, kwargs)
            user = _current_user(connection)
            if not getattr(user, "is_authenticated", False):
                return _deny_anonymous(connection, login_url, redirect_field)
            if not user.has_perms(permissions):
                if connection.scope["type"] == "websocket":
                    raise WebSocketException(_POLICY_VIOLATION, "Permission denied.")
                raise HTTPException(403, "You do not have permission to do this.")
            return await call_maybe_async(handler, *args, **kwargs)

        guarded.__covet_guard__ = permissions  # type: ignore[attr-defined] # read by covet.openapi
        return guarded  # type: ignore[return-value]

    return decorator
