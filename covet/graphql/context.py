"""The resolver context: the request, its session and user, and the per-request loaders.

Every resolver gets it as ``info.context``::

    @strawberry.field
    async def me(self, info: strawberry.Info) -> UserType | None:
        user = info.context.user
        return user if user.is_authenticated else None

A websocket subscription gets one context for the connection, with the
websocket as ``request`` and fresh :class:`~covet.graphql.loaders.Loaders`
for each event it sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from covet.exceptions import ImproperlyConfigured
from covet.graphql.loaders import Loaders

if TYPE_CHECKING:
    from covet.auth.models import AbstractUser, AnonymousUser
    from covet.requests import HTTPConnection
    from covet.sessions import Session

__all__ = ("GraphQLContext", "loaders_of")


@dataclass
class GraphQLContext:
    """What resolvers see as ``info.context``.

    Attributes:
        request: The HTTP request, or the websocket of a subscription.
        loaders: The batched loaders of this request (:class:`Loaders`).
        state: Free room for the application's own per-request values.
    """

    request: HTTPConnection
    loaders: Loaders = field(default_factory=Loaders)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def session(self) -> Session:
        """Return ``request.session`` (needs SessionMiddleware)."""
        return self.request.session

    @property
    def user(self) -> AbstractUser | AnonymousUser:
        """Return ``request.user`` (needs covet.auth's AuthenticationMiddleware)."""
        return self.request.user


def loaders_of(info: Any) -> Loaders:
    """Return the request's loaders from a resolver's ``info``.

    Raises:
        ImproperlyConfigured: The context is not a GraphQLContext (a custom
            ``context_getter`` returned something else without ``loaders``).
    """
    loaders = getattr(info.context, "loaders", None)
    if not isinstance(loaders, Loaders):
        raise ImproperlyConfigured(
            f"The GraphQL context {info.context!r} has no 'loaders'. Return a GraphQLContext "
            "(or a subclass) from GraphQL(context_getter=...)."
        )
    return loaders
