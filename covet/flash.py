"""Flash messages: one-time notices carried by the session to the next page.

``flash(request, "Saved.")`` stores a message; the next request that calls
:func:`get_flashed_messages` (usually a template, through the
``get_flashed_messages()`` global) receives it, and it is gone afterwards.
Needs :class:`~covet.sessions.SessionMiddleware`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, overload

if TYPE_CHECKING:
    from collections.abc import Iterable

    from covet.requests import HTTPConnection

__all__ = ("flash", "get_flashed_messages")

_SESSION_KEY = "_flashes"
_SCOPE_KEY = "covet.flashes"


def flash(request: HTTPConnection, message: str, category: str = "info") -> None:
    """Store ``message`` in the session, to be shown on a later page.

    Args:
        request: The current request.
        message: The text (HTML is escaped when a template shows it).
        category: A label such as ``"info"``, ``"success"``, ``"warning"`` or ``"error"``.

    Raises:
        ImproperlyConfigured: If no session middleware is installed.
        TypeError: If ``message`` or ``category`` is not a string.
    """
    if not all(isinstance(value, str) for value in (message, category)):
        raise TypeError(
            f"flash() takes string messages and categories, got {message!r} and {category!r}. "
            "Convert the value with str() first."
        )
    session = request.session
    # Reassign (rather than append in place) so the session sees the change.
    session[_SESSION_KEY] = [*session.get(_SESSION_KEY, ()), [category, message]]


@overload
def get_flashed_messages(
    request: HTTPConnection,
    with_categories: Literal[False] = False,
    category_filter: Iterable[str] = (),
) -> list[str]: ...


@overload
def get_flashed_messages(
    request: HTTPConnection,
    with_categories: Literal[True],
    category_filter: Iterable[str] = (),
) -> list[tuple[str, str]]: ...


def get_flashed_messages(
    request: HTTPConnection,
    with_categories: bool = False,
    category_filter: Iterable[str] = (),
) -> list[str] | list[tuple[str, str]]:
    """Return the pending messages, oldest first, and remove them from the session.

    Every message is taken from the session at the first call of a request;
    later calls in the same request see the same messages, so a template may
    call it more than once (with different filters).

    Args:
        request: The current request.
        with_categories: Return ``(category, message)`` pairs instead of messages.
        category_filter: Only return messages of these categories.

    Returns:
        The messages, or ``(category, message)`` pairs.

    Raises:
        ImproperlyConfigured: If no session middleware is installed.
    """
    scope = request.scope
    flashes: list[tuple[str, str]] | None = scope.get(_SCOPE_KEY)
    if flashes is None:
        session = request.session
        stored = session.pop(_SESSION_KEY, None) if _SESSION_KEY in session else None
        flashes = []
        if isinstance(stored, list):
            for item in stored:
                if isinstance(item, list | tuple) and len(item) == 2:
                    flashes.append((str(item[0]), str(item[1])))
        scope[_SCOPE_KEY] = flashes
    wanted = frozenset(category_filter)
    selected = [item for item in flashes if not wanted or item[0] in wanted]
    if with_categories:
        return selected
    return [message for _, message in selected]
