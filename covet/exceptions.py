"""The exception hierarchy of covet.

Every error covet raises on purpose derives from :class:`CovetError`, so an
application can catch "anything covet complained about" in one place. Where a
built-in exception describes the same situation, the covet error inherits from
it as well (``ImproperlyConfigured`` is a ``ValueError``), so generic handlers
keep working.
"""

from __future__ import annotations

import http
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "DISTRIBUTION",
    "CovetError",
    "HTTPException",
    "ImproperlyConfigured",
    "MissingDependencyError",
    "WebSocketDisconnect",
    "WebSocketException",
)

#: The name covet is installed under (``pip install covet-web``); the import name
#: stays ``covet``. The name ``covet`` on the package index belongs to an
#: unrelated project, so every install hint must use this one.
DISTRIBUTION = "covet-web"


class CovetError(Exception):
    """Root of every exception raised deliberately by covet."""


class ImproperlyConfigured(CovetError, ValueError):  # noqa: N818 - Django's well-known name
    """The application, a route or a setting is configured in a way that cannot work."""


class MissingDependencyError(CovetError, ImportError):
    """An optional dependency needed for a feature is not installed.

    Args:
        package: The distribution that is missing (``"asyncpg"``).
        extra: The covet extra that installs it (``"postgres"``), if any.
    """

    def __init__(self, package: str, *, extra: str | None = None) -> None:
        self.package = package
        self.extra = extra
        hint = f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"The {package!r} package is required for this feature. Run: {hint}")


class HTTPException(CovetError):  # noqa: N818 - the name every ASGI framework uses
    """Abort the current request with an HTTP error response.

    Raise it anywhere inside a handler or middleware; covet turns it into a
    response with ``status_code``. ``detail`` becomes the body (plain text, or
    JSON when the client asked for JSON) and ``headers`` are added to it.

    Args:
        status_code: The HTTP status code, for example ``404``.
        detail: A human-readable explanation; defaults to the status phrase.
        headers: Extra response headers, for example ``{"Retry-After": "30"}``.
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = http.HTTPStatus(status_code).phrase
            except ValueError:
                detail = "Error"
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None
        super().__init__(status_code, detail)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class WebSocketException(CovetError):  # noqa: N818 - pairs with HTTPException
    """Close the current websocket with ``code`` and ``reason``.

    Args:
        code: A websocket close code (RFC 6455 section 7.4), e.g. ``1008``.
        reason: A short reason sent to the client in the close frame.
    """

    def __init__(self, code: int, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        super().__init__(code, self.reason)


class WebSocketDisconnect(CovetError):  # noqa: N818 - the Starlette name users expect
    """The websocket client went away; raised by receive calls after a disconnect.

    Args:
        code: The close code the client sent (1000 for a normal close).
        reason: The close reason the client sent, if any.
    """

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        super().__init__(code, self.reason)
