"""covet's login and permission checks as strawberry permission classes.

::

    @strawberry.type
    class Mutation:
        @strawberry.mutation(permission_classes=[LoginRequired])
        async def add_comment(self, info: strawberry.Info, post_id: strawberry.ID, text: str) -> ...

        @strawberry.mutation(permission_classes=[requires("posts.delete")])
        async def delete_post(self, info: strawberry.Info, id: strawberry.ID) -> bool: ...

They apply the same rules as :func:`covet.auth.login_required` and
:func:`covet.auth.requires` (``user.is_authenticated``, ``user.has_perms()``),
but answer the GraphQL way: the field resolves to null with an error whose
``extensions.code`` is ``UNAUTHENTICATED`` or ``FORBIDDEN``, and the rest of
the response is still served.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission

from covet.auth.decorators import check_permission_names
from covet.exceptions import ImproperlyConfigured

__all__ = ("LoginRequired", "requires")


def _user(info: Any) -> Any:
    request = getattr(info.context, "request", None)
    if request is None:
        raise ImproperlyConfigured(
            "covet.graphql permissions read info.context.request, which this context lacks. "
            "Use GraphQLContext (the default context)."
        )
    return request.scope.get("user")


class LoginRequired(BasePermission):
    """Let only logged-in users resolve the field (else ``UNAUTHENTICATED``)."""

    message = "Authentication required."
    error_extensions = {"code": "UNAUTHENTICATED"}  # noqa: RUF012 - strawberry's class attribute

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        """Return whether the request's user is authenticated."""
        return bool(getattr(_user(info), "is_authenticated", False))


def requires(*permissions: str) -> type[BasePermission]:
    """Return a permission class requiring every one of ``permissions``.

    Anonymous users get ``UNAUTHENTICATED``; logged-in users missing a
    permission get ``FORBIDDEN``.

    Raises:
        ImproperlyConfigured: Without permission names.
    """
    check_permission_names(permissions, example="requires('posts.edit')")

    def has_permission(self: BasePermission, source: Any, info: Any, **kwargs: Any) -> bool:
        user = _user(info)
        if not getattr(user, "is_authenticated", False):
            # Anonymous: the same answer as LoginRequired, not a misleading FORBIDDEN.
            raise GraphQLError(LoginRequired.message, extensions=LoginRequired.error_extensions)
        return bool(user.has_perms(permissions))

    # The class name becomes a schema directive name: give each permission set its own.
    suffix = "_".join("".join(ch if ch.isalnum() else "_" for ch in p) for p in permissions)
    return type(
        f"Requires_{suffix}",
        (BasePermission,),
        {
            "message": "You do not have permission to do this.",
            "error_extensions": {"code": "FORBIDDEN"},
            "has_permission": has_permission,
            "__doc__": f"Require the permissions {', '.join(permissions)}.",
        },
    )
