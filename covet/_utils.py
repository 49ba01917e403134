"""Small helpers shared by the application, the router and the error middleware.

Everything here is private API: import it from covet's own modules only.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import TYPE_CHECKING, Any, TypeGuard

from covet.responses import JSONResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from covet.types import Scope

__all__ = (
    "call_maybe_async",
    "callable_name",
    "get_route_path",
    "is_async_callable",
    "to_response",
)


def is_async_callable(obj: Any) -> TypeGuard[Callable[..., Awaitable[Any]]]:
    """Return whether calling ``obj`` returns an awaitable coroutine.

    Sees through :func:`functools.partial` and objects whose ``__call__`` is
    ``async def``.
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(getattr(obj, "__call__", None))  # noqa: B004
    )


def callable_name(obj: Any) -> str:
    """Return a readable name for a handler, for error messages."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return str(name) if name else type(obj).__name__


async def call_maybe_async(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func``: await it when it is async, else run it in a worker thread.

    A plain ``def`` is run with :func:`asyncio.to_thread` so blocking code in
    it (file or database I/O, CPU work) does not stall the event loop. Should
    a sync callable return an awaitable anyway, it is awaited.
    """
    if is_async_callable(func):
        return await func(*args, **kwargs)
    result = await asyncio.to_thread(func, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def to_response(value: Any, handler: Any) -> Response:
    """Convert a handler's return value into a :class:`~covet.responses.Response`.

    - a ``Response`` passes through;
    - ``dict`` and ``list`` become a :class:`~covet.responses.JSONResponse`;
    - ``str`` becomes a :class:`~covet.responses.PlainTextResponse`;
    - ``bytes`` becomes an ``application/octet-stream`` response;
    - ``None`` becomes an empty ``204 No Content``.

    Args:
        value: What the handler returned.
        handler: The handler, named in the error message.

    Returns:
        The response to send.

    Raises:
        TypeError: For any other type: a bug in the handler, so a 500.
    """
    if isinstance(value, Response):
        return value
    if isinstance(value, dict | list):
        return JSONResponse(value)
    if isinstance(value, str):
        return PlainTextResponse(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return Response(bytes(value), media_type="application/octet-stream")
    if value is None:
        return Response(status_code=204)
    raise TypeError(
        f"Handler {callable_name(handler)!r} returned {value!r} of type "
        f"{type(value).__name__!r}. Return a Response, dict, list, str, bytes or None."
    )


def get_route_path(scope: Scope) -> str:
    """Return the part of ``scope["path"]`` below ``scope["root_path"]``.

    ASGI servers put the full request path in ``path`` and the mount point in
    ``root_path`` (``uvicorn --root-path``, or a :class:`~covet.routing.Mount`),
    so routing matches what is left after removing the mount point.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if len(path) == len(root_path):
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    # "/static" is not the root of "/staticfiles/x": keep the full path.
    return path
