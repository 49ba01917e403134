"""ASGI middleware shipped with covet.

Every middleware is a class ``cls(app, **options)`` whose instances are ASGI
applications, so they wrap covet, any other ASGI app, or each other. Add them
with ``app.add_middleware(CORSMiddleware, allow_origins=[...])``.

The names are loaded on first use (PEP 562): importing this package does not
import every middleware, so each can live in the package of its concept
(sessions in :mod:`covet.sessions`, rate limits in :mod:`covet.ratelimit`,
authentication in :mod:`covet.auth`) without import cycles.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from covet.auth.middleware import AuthenticationMiddleware
    from covet.middleware.cors import CORSMiddleware
    from covet.middleware.csrf import CSRFMiddleware, csrf_exempt
    from covet.middleware.gzip import GZipMiddleware
    from covet.middleware.requestid import RequestIDMiddleware
    from covet.middleware.security import SecurityHeadersMiddleware
    from covet.middleware.trustedhost import TrustedHostMiddleware
    from covet.ratelimit.middleware import RateLimitMiddleware
    from covet.sessions.middleware import SessionMiddleware

__all__ = (
    "AuthenticationMiddleware",
    "CORSMiddleware",
    "CSRFMiddleware",
    "GZipMiddleware",
    "RateLimitMiddleware",
    "RequestIDMiddleware",
    "SecurityHeadersMiddleware",
    "SessionMiddleware",
    "TrustedHostMiddleware",
    "csrf_exempt",
)

#: Where each exported name lives.
_HOMES = {
    "AuthenticationMiddleware": "covet.auth.middleware",
    "CORSMiddleware": "covet.middleware.cors",
    "CSRFMiddleware": "covet.middleware.csrf",
    "GZipMiddleware": "covet.middleware.gzip",
    "RateLimitMiddleware": "covet.ratelimit.middleware",
    "RequestIDMiddleware": "covet.middleware.requestid",
    "SecurityHeadersMiddleware": "covet.middleware.security",
    "SessionMiddleware": "covet.sessions.middleware",
    "TrustedHostMiddleware": "covet.middleware.trustedhost",
    "csrf_exempt": "covet.middleware.csrf",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'covet.middleware' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
