"""The route decorators shared by :class:`~covet.routing.Router` and :class:`covet.Covet`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from covet.params.signature import INFER

if TYPE_CHECKING:
    from covet.requests import RequestLimits
    from covet.routing.routes import Route, WebSocketRoute

__all__ = ("RouteDecorators",)


F = TypeVar("F", bound=Callable[..., Any])


class RouteDecorators:
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
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
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
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function as the handler of ``path``.

        Args:
            path: The path pattern, for example ``"/items/{item_id:int}"``.
            methods: The HTTP methods to serve (default ``["GET"]``).
            name: The route name for ``url_path_for()``.
            limits: Request limits for this route (a ``RequestLimits``).
            response_model: The type the return value is serialised as (by
                default the return annotation when it names a model; None: off).
            status_code: The status of responses built from return values.
            tags: OpenAPI tags grouping the operation in the API reference.
            include_in_schema: False leaves the route out of the OpenAPI
                document (and ``/docs``).

        Returns:
            A decorator that registers the function and returns it unchanged.
        """

        def decorator(func: F) -> F:
            self.add_route(
                path,
                func,
                methods=methods,
                name=name,
                limits=limits,
                response_model=response_model,
                status_code=status_code,
                tags=tags,
                include_in_schema=include_in_schema,
            )
            return func

        return decorator

    def get(
        self,
        path: str,
        *,
        name: str | None = None,
        limits: RequestLimits | None = None,
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``GET`` (and ``HEAD``) on ``path``."""
        return self.route(
            path,
            methods=["GET"],
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=tags,
            include_in_schema=include_in_schema,
        )

    def post(
        self,
        path: str,
        *,
        name: str | None = None,
        limits: RequestLimits | None = None,
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``POST`` on ``path``."""
        return self.route(
            path,
            methods=["POST"],
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=tags,
            include_in_schema=include_in_schema,
        )

    def put(
        self,
        path: str,
        *,
        name: str | None = None,
        limits: RequestLimits | None = None,
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``PUT`` on ``path``."""
        return self.route(
            path,
            methods=["PUT"],
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=tags,
            include_in_schema=include_in_schema,
        )

    def patch(
        self,
        path: str,
        *,
        name: str | None = None,
        limits: RequestLimits | None = None,
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``PATCH`` on ``path``."""
        return self.route(
            path,
            methods=["PATCH"],
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=tags,
            include_in_schema=include_in_schema,
        )

    def delete(
        self,
        path: str,
        *,
        name: str | None = None,
        limits: RequestLimits | None = None,
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``DELETE`` on ``path``."""
        return self.route(
            path,
            methods=["DELETE"],
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=tags,
            include_in_schema=include_in_schema,
        )

    def options(
        self,
        path: str,
        *,
        name: str | None = None,
        limits: RequestLimits | None = None,
        response_model: Any = INFER,
        status_code: int | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``OPTIONS`` on ``path``."""
        return self.route(
            path,
            methods=["OPTIONS"],
            name=name,
            limits=limits,
            response_model=response_model,
            status_code=status_code,
            tags=tags,
            include_in_schema=include_in_schema,
        )

    def websocket(self, path: str, *, name: str | None = None) -> Callable[[F], F]:
        """Register the decorated async function as the websocket handler of ``path``."""

        def decorator(func: F) -> F:
            self.add_websocket_route(path, func, name=name)
            return func

        return decorator
